//! Credential vending: storage access for one table, for one caller, for a short while.
//!
//! Owns: choosing what a caller gets for a table (nothing, STS session, static keys, remote
//! signing), session policies, the session cache, presigned URLs and the remote signer's checks.
//! Must not touch: HTTP types or the store. Every credential is scoped to the table location,
//! which is checked to lie inside its warehouse first; anything else fails closed.

pub mod adls;
pub mod gcs;
pub mod presign;
mod s3;
pub mod s3_policy;
pub mod signer;
pub mod sts;
pub mod table_storage;
pub mod validate;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use uuid::Uuid;

use crate::authz::DataAccess;
use crate::catalog::{CatalogError, CatalogResult, ErrorType, Warehouse};
use crate::domain::CredentialKind;
use crate::identity::Caller;
use crate::store::{AdlsProfile, GcsProfile, S3Profile, S3Vending, StorageProfile, now_ms};
use crate::warehouse_io::{is_inside, normalize_location};
pub use gcs::gcs_object;
pub use s3::{check_s3_profile, role_for, s3_client_config, split_s3, table_prefix};
use s3_policy::{PolicyScope, session_policy};
use sts::{AssumeRole, SessionError, SessionKey, StsSessions, StsTarget, TempCredentials};

/// Knobs of vending.
#[derive(Debug, Clone)]
pub struct VendingOptions {
    /// Sessions are renewed when less than this is left, and never handed out with less.
    pub refresh_margin: Duration,
    /// Lifetime of presigned URLs.
    pub presign_ttl: Duration,
}

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

/// Credentials for one table location: the spec's `StorageCredential`, also pre-rendered as JSON
/// (load-table splices it into its answer instead of serializing it again).
#[derive(Clone)]
pub struct VendedCredential {
    /// The table location with a trailing `/`.
    pub prefix: String,
    pub config: BTreeMap<String, String>,
    /// `config` as a JSON object.
    pub config_json: Bytes,
    /// `{"prefix": .., "config": ..}`.
    pub credential_json: Bytes,
    /// When the credentials stop working, if they do.
    pub expires_at_ms: Option<i64>,
}

/// Shows where and until when, and which keys the config has: never their values.
impl std::fmt::Debug for VendedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendedCredential")
            .field("prefix", &self.prefix)
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl VendedCredential {
    fn new(prefix: String, config: BTreeMap<String, String>, expires_at_ms: Option<i64>) -> Self {
        let config_json = Bytes::from(serde_json::to_vec(&config).expect("maps serialize"));
        let credential_json = Bytes::from(
            serde_json::to_vec(&serde_json::json!({"prefix": prefix, "config": config}))
                .expect("maps serialize"),
        );
        Self {
            prefix,
            config,
            config_json,
            credential_json,
            expires_at_ms,
        }
    }
}

/// What a rendered credential is for: the session's identity plus the table's refresh endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RenderKey {
    warehouse: Uuid,
    profile: u64,
    location: String,
    access: DataAccess,
    principal: Uuid,
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

/// What a caller gets for one table.
pub struct TableAccess<'a> {
    pub warehouse: &'a Warehouse,
    /// The table's location (normalized, no trailing `/`).
    pub location: &'a str,
    pub access: DataAccess,
    pub caller: &'a Caller,
    /// Name of the caller's tenant, for session names.
    pub tenant_name: &'a str,
    /// Absolute URL of this table's `/credentials`.
    pub refresh_endpoint: String,
}

/// The vending service.
pub struct Vending {
    sts: StsSessions,
    http: reqwest::Client,
    rendered: moka::future::Cache<RenderKey, Arc<VendedCredential>>,
    options: VendingOptions,
    static_warned: moka::sync::Cache<Uuid, ()>,
}

impl Vending {
    /// A vending service with empty caches.
    pub fn new(options: VendingOptions) -> Self {
        Self {
            sts: StsSessions::new(options.refresh_margin),
            http: reqwest::Client::new(),
            rendered: moka::future::Cache::builder()
                .max_capacity(100_000)
                .expire_after(RenderedExpiry {
                    margin_ms: options.refresh_margin.as_millis() as i64,
                })
                .build(),
            static_warned: moka::sync::Cache::builder()
                .time_to_live(Duration::from_secs(300))
                .build(),
            options,
        }
    }

    /// The options in force.
    pub fn options(&self) -> &VendingOptions {
        &self.options
    }

    /// Credentials for the table, or `None` when the caller has no data access or the warehouse
    /// hands none out (local warehouses, vending `off`).
    pub async fn credentials(
        &self,
        t: &TableAccess<'_>,
    ) -> CatalogResult<Option<Arc<VendedCredential>>> {
        if t.access == DataAccess::None {
            return Ok(None);
        }
        let credential = t.warehouse.secret_fingerprint;
        let profile_hash = match &t.warehouse.record.storage {
            StorageProfile::S3(p) if p.vending_mode() != S3Vending::Off => {
                fingerprint(p, credential)
            }
            StorageProfile::Adls(p) if p.vending => fingerprint(p, credential),
            StorageProfile::Gcs(p) if p.vending => fingerprint(p, credential),
            _ => return Ok(None),
        };
        let key = RenderKey {
            warehouse: t.warehouse.record.id,
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
                    let rendered = match &t.warehouse.record.storage {
                        StorageProfile::S3(profile) => Box::pin(self.render(t, profile)).await?,
                        StorageProfile::Adls(profile) => {
                            Box::pin(self.render_adls(t, profile)).await?
                        }
                        StorageProfile::Gcs(profile) => {
                            Box::pin(self.render_gcs(t, profile)).await?
                        }
                        StorageProfile::Local { .. } => {
                            unreachable!("local warehouses vend nothing")
                        }
                    };
                    Ok::<_, CatalogError>(Arc::new(rendered))
                }),
            )
            .await
            .map_err(|e| (*e).clone())?;
        Ok(Some(rendered))
    }

    async fn render_gcs(
        &self,
        t: &TableAccess<'_>,
        profile: &GcsProfile,
    ) -> CatalogResult<VendedCredential> {
        let (prefix, _) = gcs_object(t.warehouse, profile, t.location)?;
        let account = t.warehouse.gcs_account().ok_or_else(|| {
            unavailable(format!(
                "warehouse '{}' has no gcs-service-account credential",
                t.warehouse.record.name
            ))
        })?;
        let prefix = format!("{prefix}/");
        let boundary = gcs::access_boundary(&profile.bucket, &prefix, t.access);
        // A few seconds beyond the margin: the exchange itself takes a moment.
        let at_least = self.options.refresh_margin + Duration::from_secs(30);
        let token = gcs::downscope(&self.http, profile, account, &boundary, at_least)
            .await
            .map_err(|e| {
                tracing::error!(warehouse = %t.warehouse.record.name, error = %e, "GCS token exchange failed");
                unavailable(e)
            })?;
        let left = token.expires_at_ms - now_ms();
        if left < self.options.refresh_margin.as_millis() as i64 {
            return Err(unavailable(format!(
                "the downscoped token expires in {} s, less than the refresh margin",
                left / 1000
            )));
        }
        let config = gcs::token_config(profile, &token, &t.refresh_endpoint);
        let location = normalize_location(t.location).map_err(CatalogError::bad_request)?;
        Ok(VendedCredential::new(
            format!("{location}/"),
            config,
            Some(token.expires_at_ms),
        ))
    }

    async fn render_adls(
        &self,
        t: &TableAccess<'_>,
        profile: &AdlsProfile,
    ) -> CatalogResult<VendedCredential> {
        if !profile.hierarchical_namespace {
            self.warn_unscoped(t.warehouse, "container-wide SAS tokens");
        }
        let (config, expires_at_ms) = adls::table_sas(
            t.warehouse,
            profile,
            t.location,
            t.access,
            &t.refresh_endpoint,
        )
        .await?;
        let location = normalize_location(t.location).map_err(CatalogError::bad_request)?;
        Ok(VendedCredential::new(
            format!("{location}/"),
            config,
            Some(expires_at_ms),
        ))
    }

    /// Logs, at most every 5 minutes per warehouse, that it hands out unscoped access.
    fn warn_unscoped(&self, wh: &Warehouse, what: &str) {
        if self.static_warned.get(&wh.record.id).is_none() {
            self.static_warned.insert(wh.record.id, ());
            tracing::warn!(warehouse = %wh.record.name, "vending {what}: UNSCOPED, every client reaches the whole bucket or container");
        }
    }

    async fn render(
        &self,
        t: &TableAccess<'_>,
        profile: &S3Profile,
    ) -> CatalogResult<VendedCredential> {
        let (bucket, key_prefix) = table_prefix(t.warehouse, profile, t.location)?;
        let mut config = s3_client_config(profile);
        let mut expires_at_ms = None;
        match profile.vending_mode() {
            S3Vending::Off => unreachable!("checked by the caller"),
            S3Vending::Static => {
                let keys = t.warehouse.s3_keys().ok_or_else(|| {
                    unavailable(format!(
                        "warehouse '{}' vends static keys but has no storage credential",
                        t.warehouse.record.name
                    ))
                })?;
                self.warn_unscoped(t.warehouse, "the warehouse's static keys");
                config.insert("s3.access-key-id".into(), keys.access_key_id.clone());
                config.insert(
                    "s3.secret-access-key".into(),
                    keys.secret_access_key.clone(),
                );
            }
            S3Vending::Sts => {
                let creds = self.sts_session(t, profile, &bucket, &key_prefix).await?;
                config.insert("s3.access-key-id".into(), creds.access_key_id.clone());
                config.insert(
                    "s3.secret-access-key".into(),
                    creds.secret_access_key.clone(),
                );
                config.insert("s3.session-token".into(), creds.session_token.clone());
                config.insert(
                    "s3.session-token-expires-at-ms".into(),
                    creds.expires_at_ms.to_string(),
                );
                expires_at_ms = Some(creds.expires_at_ms);
                config.insert("client.refresh-credentials-enabled".into(), "true".into());
                config.insert(
                    "client.refresh-credentials-endpoint".into(),
                    t.refresh_endpoint.clone(),
                );
            }
        }
        Ok(VendedCredential::new(
            format!("{}/", t.location),
            config,
            expires_at_ms,
        ))
    }

    /// The temporary keys of the caller's session for a table (used by presign and the signer).
    pub async fn table_session(
        &self,
        t: &TableAccess<'_>,
    ) -> CatalogResult<Option<Arc<TempCredentials>>> {
        let StorageProfile::S3(profile) = &t.warehouse.record.storage else {
            return Ok(None);
        };
        if t.access == DataAccess::None || profile.read_role_arn.is_none() {
            return Ok(None);
        }
        let (bucket, key_prefix) = table_prefix(t.warehouse, profile, t.location)?;
        Ok(Some(
            self.sts_session(t, profile, &bucket, &key_prefix).await?,
        ))
    }

    async fn sts_session(
        &self,
        t: &TableAccess<'_>,
        profile: &S3Profile,
        bucket: &str,
        key_prefix: &str,
    ) -> CatalogResult<Arc<TempCredentials>> {
        let (role, access) = role_for(profile, t.access).ok_or_else(|| {
            unavailable(format!(
                "warehouse '{}' has no read_role_arn to vend STS sessions with",
                t.warehouse.record.name
            ))
        })?;
        let key = SessionKey {
            warehouse: t.warehouse.record.id,
            profile: fingerprint(profile, t.warehouse.secret_fingerprint),
            bucket: bucket.to_owned(),
            prefix: key_prefix.to_owned(),
            access,
            principal: t.caller.principal_id,
        };
        let target = StsTarget {
            region: &profile.region,
            endpoint: profile.sts_endpoint.as_deref(),
            keys: t.warehouse.s3_keys(),
        };
        let make = || {
            let policy = session_policy(&PolicyScope {
                bucket,
                prefix: key_prefix,
                access,
                kms_key_arn: profile.kms_key_arn.as_deref(),
            })
            .map_err(SessionError::Refused)?;
            let name = sts::session_name(t.tenant_name, &t.caller.name);
            Ok(AssumeRole {
                role_arn: role,
                source_identity: profile.source_identity.then(|| name.clone()),
                session_name: name,
                policy: policy.json,
                duration_secs: profile.session_duration_secs,
                external_id: profile.external_id.as_deref(),
            })
        };
        let creds = self
            .sts
            .session(key, target, make)
            .await
            .map_err(|e| match e {
                SessionError::Refused(m) => CatalogError::bad_request(m),
                SessionError::Unavailable(m) => {
                    tracing::error!(warehouse = %t.warehouse.record.name, error = %m, "STS session failed");
                    unavailable(m)
                }
            })?;
        let margin = self.options.refresh_margin.as_millis() as i64;
        if creds.expires_at_ms - now_ms() < margin {
            return Err(unavailable(
                "the cached STS session is too close to expiry".into(),
            ));
        }
        Ok(creds)
    }
}

/// `location`, normalized, when it lies strictly below the warehouse root; 403 otherwise (no
/// credential or URL is ever made for anything outside its warehouse).
pub fn inside_warehouse(wh: &Warehouse, location: &str) -> CatalogResult<String> {
    let location = normalize_location(location).map_err(CatalogError::bad_request)?;
    let root = wh.root();
    if location == root || !is_inside(&location, &root) {
        return Err(CatalogError::new(
            ErrorType::Forbidden,
            format!(
                "{location} is not inside warehouse '{}'; no credentials",
                wh.record.name
            ),
        ));
    }
    Ok(location)
}

/// The non-secret client settings of a warehouse's storage (region, endpoints, account names).
pub fn client_config(storage: &StorageProfile) -> BTreeMap<String, String> {
    match storage {
        StorageProfile::S3(p) => s3_client_config(p),
        StorageProfile::Adls(p) => adls::adls_client_config(p),
        StorageProfile::Gcs(p) => gcs::gcs_client_config(p),
        StorageProfile::Local { .. } => BTreeMap::new(),
    }
}

/// Checks a warehouse's storage profile with the kind of credential the server will reach it
/// with, and gives it its one written form (key prefixes without surrounding `/`). Each kind's
/// rules are its module's: which credentials fit it and what its settings must be.
pub fn check_storage(
    profile: &mut StorageProfile,
    credential: Option<CredentialKind>,
) -> CatalogResult<()> {
    use CredentialKind::*;
    let (key_prefix, fits): (Option<&mut String>, &[CredentialKind]) = match profile {
        StorageProfile::Local { .. } => (None, &[]),
        StorageProfile::S3(p) => (Some(&mut p.key_prefix), &[S3AccessKey]),
        StorageProfile::Adls(p) => (
            Some(&mut p.key_prefix),
            &[AzureSharedKey, AzureClientSecret],
        ),
        StorageProfile::Gcs(p) => (Some(&mut p.key_prefix), &[GcsServiceAccount]),
    };
    if let Some(key_prefix) = key_prefix {
        *key_prefix = key_prefix.trim_matches('/').to_owned();
    }
    // The root must be a usable location (no `..`, empty segments or odd characters).
    normalize_location(&profile.root_location()).map_err(CatalogError::bad_request)?;
    if let Some(kind) = credential
        && !fits.contains(&kind)
    {
        let wanted: Vec<_> = fits.iter().map(|k| k.as_str()).collect();
        let wanted = match wanted.as_slice() {
            [] => "none".to_owned(),
            kinds => kinds.join(" or "),
        };
        return Err(CatalogError::bad_request(format!(
            "a {kind} credential does not fit this warehouse's storage (it takes {wanted})"
        )));
    }
    let has_credential = credential.is_some();
    match profile {
        StorageProfile::Local { .. } => Ok(()),
        StorageProfile::S3(p) => check_s3_profile(p, has_credential),
        StorageProfile::Adls(p) => adls::check_adls_profile(p, has_credential),
        StorageProfile::Gcs(p) => gcs::check_gcs_profile(p, has_credential),
    }
    .map_err(CatalogError::bad_request)
}

/// A hash of what a session depends on: the warehouse's storage settings and the value of the
/// server's secret (its [`Warehouse::secret_fingerprint`]). A changed profile or a rotated
/// credential gives new cache keys, so nothing made with the old ones is handed out again.
pub fn fingerprint(profile: &impl Hash, secret_fingerprint: u64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    profile.hash(&mut h);
    secret_fingerprint.hash(&mut h);
    h.finish()
}

fn unavailable(message: String) -> CatalogError {
    CatalogError::new(ErrorType::ServiceUnavailable, message)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_vended_credential_prints_its_keys_not_their_values() {
        let credential = VendedCredential::new(
            "s3://b/wh/t/".into(),
            BTreeMap::from([
                ("s3.access-key-id".to_owned(), "ASIAEXAMPLE".to_owned()),
                ("s3.secret-access-key".to_owned(), "s3cr3t-value".to_owned()),
                (
                    "s3.session-token".to_owned(),
                    "session-token-value".to_owned(),
                ),
            ]),
            Some(1),
        );
        let shown = format!("{credential:?}");
        assert!(
            shown.contains("s3.session-token") && shown.contains("s3://b/wh/t/"),
            "{shown}"
        );
        for secret in ["ASIAEXAMPLE", "s3cr3t-value", "session-token-value"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    use super::*;

    #[test]
    fn delegation_header_modes() {
        let d = Delegation::parse(Some("vended-credentials, remote-signing"));
        assert!(d.vended_credentials && d.remote_signing);
        assert!(!Delegation::parse(None).any());
        assert!(!Delegation::parse(Some("other")).any());
    }
}
