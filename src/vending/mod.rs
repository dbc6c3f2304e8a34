//! Credential vending: storage access for one table, for one caller, for a short while.
//!
//! Owns: the [`Vending`] facade the API calls, the cache of rendered credentials (keyed by the
//! storage settings and the server secret's value), the delegation a client asks for, and
//! [`table_storage`], the one place that decides the storage part of a table answer. What each
//! storage kind hands out is its folder's under [`crate::storage`], picked by
//! [`crate::storage::kind_of`]. Must not touch: HTTP types or the store. Every credential is
//! scoped to the table location, which is checked to lie inside its warehouse first; anything
//! else fails closed.

pub mod table_storage;

use std::sync::Arc;
use std::time::Duration;

use crate::domain::WarehouseId;
use crate::domain::access::DataAccess;
use crate::domain::now_ms;
use crate::identity::Caller;
use crate::storage::validation::ValidationReport;
use crate::storage::{
    Issuer, Requester, TableAccess, VendedCredential, VendingError, VendingOptions, VendingResult,
    WarehouseStorage, fingerprint, kind_of,
};

/// What the client asked for in `X-Iceberg-Access-Delegation`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delegation {
    pub vended_credentials: bool,
    pub remote_signing: bool,
}

impl Delegation {
    /// Parses the comma-separated header value; unknown modes are ignored.
    pub fn parse(header: Option<&str>) -> Self {
        let mut d = Self::default();
        for mode in header.unwrap_or_default().split(',') {
            match mode.trim() {
                "vended-credentials" => d.vended_credentials = true,
                "remote-signing" => d.remote_signing = true,
                _ => {}
            }
        }
        d
    }

    /// True when any delegation was asked for.
    pub fn any(self) -> bool {
        self.vended_credentials || self.remote_signing
    }
}

/// Memory the rendered credentials may hold (each weighed by its strings).
pub const RENDERED_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// What a rendered credential is for: the session's identity plus the table's refresh endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RenderKey {
    warehouse: WarehouseId,
    profile: u64,
    location: String,
    access: DataAccess,
    principal: crate::domain::PrincipalId,
    refresh_endpoint: String,
}

/// Rendered credentials leave the cache when their session would be renewed (static keys: 5 min).
struct RenderedExpiry {
    margin_ms: i64,
}

impl moka::Expiry<RenderKey, Arc<VendedCredential>> for RenderedExpiry {
    fn expire_after_create(
        &self,
        _key: &RenderKey,
        value: &Arc<VendedCredential>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(match value.expires_at_ms {
            Some(at) => Duration::from_millis((at - now_ms() - self.margin_ms).max(0) as u64),
            None => Duration::from_secs(300),
        })
    }
}

/// The vending service.
pub struct Vending {
    issuer: Issuer,
    rendered: moka::future::Cache<RenderKey, Arc<VendedCredential>>,
}

impl Vending {
    /// A vending service with empty caches.
    pub fn new(
        options: VendingOptions,
        reachability: Arc<crate::reachability::Reachability>,
    ) -> Self {
        let margin_ms = options.refresh_margin.as_millis() as i64;
        Self {
            issuer: Issuer::new(options, reachability),
            rendered: moka::future::Cache::builder()
                .max_capacity(RENDERED_CACHE_BYTES)
                .weigher(|key: &RenderKey, v: &Arc<VendedCredential>| {
                    let strings = key.location.len()
                        + key.refresh_endpoint.len()
                        + v.location_prefix.len()
                        + v.config
                            .iter()
                            .map(|(k, v)| k.len() + v.len() + 64)
                            .sum::<usize>()
                        + v.config_json.len()
                        + v.credential_json.len();
                    u32::try_from(256 + strings).unwrap_or(u32::MAX)
                })
                .expire_after(RenderedExpiry { margin_ms })
                .build(),
        }
    }

    /// The options in force.
    pub fn options(&self) -> &VendingOptions {
        self.issuer.options()
    }

    /// Credentials for the table, or `None` when the caller has no data access or the warehouse
    /// hands none out (local warehouses, vending `off`).
    pub async fn credentials(
        &self,
        t: &TableAccess<'_>,
    ) -> VendingResult<Option<Arc<VendedCredential>>> {
        if t.access == DataAccess::None {
            return Ok(None);
        }
        let storage = kind_of(t.warehouse.profile);
        if !storage.vends() {
            return Ok(None);
        }
        let profile_hash = fingerprint(t.warehouse.profile, t.warehouse.secret_fingerprint());
        let key = RenderKey {
            warehouse: t.warehouse.id,
            profile: profile_hash,
            location: t.location.to_owned(),
            access: t.access,
            principal: t.caller.principal_id,
            refresh_endpoint: t.refresh_endpoint.clone(),
        };
        if let Some(hit) = self.rendered.get(&key).await {
            static HITS: std::sync::LazyLock<metrics::Counter> =
                std::sync::LazyLock::new(|| metrics::counter!("floe_vended_cache_hits_total"));
            HITS.increment(1);
            return Ok(Some(hit));
        }
        metrics::counter!("floe_vended_cache_misses_total").increment(1);
        // Concurrent misses for one key wait for a single render (and STS call).
        let rendered = self
            .rendered
            // Boxed: the cloud clients' futures are large, and debug builds keep them on the stack.
            .try_get_with(
                key,
                Box::pin(async {
                    let rendered = storage.vend(&self.issuer, t).await?;
                    Ok::<_, VendingError>(Arc::new(rendered))
                }),
            )
            .await
            .map_err(|e| (*e).clone())?;
        Ok(Some(rendered))
    }

    /// Validates a warehouse against its real storage (see [`crate::storage::validation`]).
    pub async fn validate(
        &self,
        wh: WarehouseStorage<'_>,
        caller: &Caller,
        tenant: &str,
    ) -> ValidationReport {
        let requester = Requester {
            principal_id: caller.principal_id,
            name: &caller.name,
        };
        self.issuer.validate(wh, requester, tenant).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegation_header_modes() {
        let d = Delegation::parse(Some("vended-credentials, remote-signing"));
        assert!(d.vended_credentials && d.remote_signing);
        assert!(!Delegation::parse(None).any());
        assert!(!Delegation::parse(Some("other")).any());
    }
}
