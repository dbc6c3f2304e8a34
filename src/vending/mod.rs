//! Credential vending: storage access for one table, for one caller, for a short while.
//!
//! Owns: choosing what a caller gets for a table (nothing, STS session, static keys, SAS,
//! downscoped token, remote signing), session policies, the session and rendered-credential
//! caches (keyed by the storage settings and the server secret's value), presigned URLs, the
//! remote signer's checks, and each storage kind's profile rules. One [`StorageVendor`] per kind
//! answers for its storage (`s3.rs`, `adls.rs`, `gcs.rs`; local storage here); [`Vending`] is the
//! facade the API calls. Must not touch: HTTP types or the store. Every credential is scoped to the table location,
//! which is checked to lie inside its warehouse first; anything else fails closed.

pub mod adls;
mod error;
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

use crate::catalog::Warehouse;
use crate::domain::CredentialKind;
use crate::domain::access::DataAccess;
use crate::domain::storage::StorageProfile;
use crate::identity::Caller;
use crate::store::now_ms;
use crate::warehouse_io::{is_inside, normalize_location};
pub use error::{VendingError, VendingResult};
pub use gcs::gcs_object;
pub use s3::{check_s3_profile, role_for, s3_client_config, split_s3, table_key_prefix};
use sts::StsSessions;

/// Knobs of vending.
#[derive(Debug, Clone)]
pub struct VendingOptions {
    /// Sessions are renewed when less than this is left, and never handed out with less.
    pub refresh_margin: Duration,
    /// Lifetime of presigned URLs.
    pub presign_ttl: Duration,
    /// Deadlines of the calls vending makes (STS, Google's token exchange, validation probes).
    pub timeouts: crate::outbound::OutboundTimeouts,
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
    /// The locations it reaches: the table location with a trailing `/` (the spec's `prefix`).
    pub location_prefix: String,
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
            .field("location_prefix", &self.location_prefix)
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl VendedCredential {
    fn new(
        location_prefix: String,
        config: BTreeMap<String, String>,
        expires_at_ms: Option<i64>,
    ) -> Self {
        let config_json = Bytes::from(serde_json::to_vec(&config).expect("maps serialize"));
        let credential_json = Bytes::from(
            serde_json::to_vec(&serde_json::json!({"prefix": location_prefix, "config": config}))
                .expect("maps serialize"),
        );
        Self {
            location_prefix,
            config,
            config_json,
            credential_json,
            expires_at_ms,
        }
    }
}

/// Memory the rendered credentials may hold (each weighed by its strings).
pub const RENDERED_CACHE_BYTES: u64 = 16 * 1024 * 1024;

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
    /// Where every token-service call's outcome is noted, per warehouse.
    reachability: Arc<crate::reachability::Reachability>,
}

impl Vending {
    /// Notes a token-service call's outcome for `warehouse` (vendors that call one say so).
    fn note_token_service(
        &self,
        warehouse: Uuid,
        outcome: Result<(), crate::reachability::Failure>,
    ) {
        self.reachability.record(
            warehouse,
            crate::reachability::Upstream::TokenService,
            outcome,
        );
    }

    /// A vending service with empty caches.
    pub fn new(
        options: VendingOptions,
        reachability: Arc<crate::reachability::Reachability>,
    ) -> Self {
        Self {
            sts: StsSessions::new(
                options.refresh_margin,
                options.timeouts,
                reachability.clone(),
            ),
            reachability,
            http: options
                .timeouts
                .http_client(crate::outbound::Outbound::TokenService),
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
                .expire_after(RenderedExpiry {
                    margin_ms: options.refresh_margin.as_millis() as i64,
                })
                .build(),
            static_warned: moka::sync::Cache::builder()
                .max_capacity(10_000)
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
    ) -> VendingResult<Option<Arc<VendedCredential>>> {
        if t.access == DataAccess::None {
            return Ok(None);
        }
        let storage = vendor(&t.warehouse.record.storage);
        if !storage.vends() {
            return Ok(None);
        }
        let profile_hash = fingerprint(&t.warehouse.record.storage, t.warehouse.secret_fingerprint);
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
                    let rendered = storage.vend(self, t).await?;
                    Ok::<_, VendingError>(Arc::new(rendered))
                }),
            )
            .await
            .map_err(|e| (*e).clone())?;
        Ok(Some(rendered))
    }

    /// Logs, at most every 5 minutes per warehouse, that it hands out unscoped access.
    fn warn_unscoped(&self, wh: &Warehouse, what: &str) {
        if self.static_warned.get(&wh.record.id).is_none() {
            self.static_warned.insert(wh.record.id, ());
            tracing::warn!(warehouse = %wh.record.name, "vending {what}: UNSCOPED, every client reaches the whole bucket or container");
        }
    }
}

/// `location`, normalized, when it lies strictly below the warehouse root; 403 otherwise (no
/// credential or URL is ever made for anything outside its warehouse).
pub fn inside_warehouse(wh: &Warehouse, location: &str) -> VendingResult<String> {
    let location = normalize_location(location).map_err(VendingError::invalid)?;
    let root = wh.root();
    if location == root || !is_inside(&location, &root) {
        return Err(VendingError::refused(format!(
            "{location} is not inside warehouse '{}'; no credentials",
            wh.record.name
        )));
    }
    Ok(location)
}

/// The non-secret client settings of a warehouse's storage (region, endpoints, account names).
pub fn client_config(storage: &StorageProfile) -> BTreeMap<String, String> {
    vendor(storage).client_config()
}

/// One kind of storage as vending serves it: what a reader of its tables gets, and the rules
/// its profiles follow. Each kind answers in its own file (`s3.rs`, `adls.rs`, `gcs.rs`; local
/// storage, which hands out nothing, here); [`Vending`] and [`check_storage`] are the one
/// facade that picks the kind with [`vendor`].
#[async_trait::async_trait]
trait StorageVendor: Sync {
    /// The kinds of credential the server may reach this storage with.
    fn credential_kinds(&self) -> &'static [CredentialKind];
    /// Checks the profile's settings; `has_credential` says whether the server has a credential.
    fn check(&self, has_credential: bool) -> Result<(), String>;
    /// The non-secret client settings (region, endpoints, account names).
    fn client_config(&self) -> BTreeMap<String, String>;
    /// Whether tables of this storage get vended credentials at all.
    fn vends(&self) -> bool;
    /// A credential that reaches only the table's files, for the caller's data access (only
    /// asked when [`StorageVendor::vends`]).
    async fn vend(&self, vending: &Vending, t: &TableAccess<'_>)
    -> VendingResult<VendedCredential>;
    /// A URL for one file inside the table, and how long it works.
    async fn presign(
        &self,
        vending: &Vending,
        t: &TableAccess<'_>,
        file: &str,
        method: presign::PresignMethod,
    ) -> VendingResult<(String, Duration)>;

    /// Checks, against the real storage, that what this kind hands out does what it should for a
    /// sample table and nothing more; records each step, and warns of settings that work but
    /// weaken isolation. Nothing by default (the server's own write/read/delete probe runs for
    /// every kind).
    async fn validate(
        &self,
        _check: &validate::Validation<'_>,
        _steps: &mut validate::Steps,
        _warnings: &mut Vec<String>,
    ) {
    }

    /// Where the storage offers the remote signer: adds its settings to `config` and returns the
    /// `remote-signing-config` object. None by default.
    fn remote_signing(
        &self,
        _config: &mut BTreeMap<String, String>,
        _endpoints: &table_storage::TableEndpoints,
    ) -> Option<Bytes> {
        None
    }
}

/// The vendor of a warehouse's storage kind.
fn vendor(storage: &StorageProfile) -> &dyn StorageVendor {
    match storage {
        StorageProfile::S3(p) => p,
        StorageProfile::Adls(p) => p,
        StorageProfile::Gcs(p) => p,
        StorageProfile::Local { .. } => &LocalStorage,
    }
}

/// A directory on the server: clients reach it with their own access, so it hands out nothing.
struct LocalStorage;

#[async_trait::async_trait]
impl StorageVendor for LocalStorage {
    fn credential_kinds(&self) -> &'static [CredentialKind] {
        &[]
    }

    fn check(&self, _: bool) -> Result<(), String> {
        Ok(())
    }

    fn client_config(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn vends(&self) -> bool {
        false
    }

    async fn vend(&self, _: &Vending, t: &TableAccess<'_>) -> VendingResult<VendedCredential> {
        Err(nothing_to_hand_out(t.warehouse))
    }

    async fn presign(
        &self,
        _: &Vending,
        t: &TableAccess<'_>,
        _: &str,
        _: presign::PresignMethod,
    ) -> VendingResult<(String, Duration)> {
        Err(nothing_to_hand_out(t.warehouse))
    }
}

/// What a request for storage access to a local warehouse answers.
fn nothing_to_hand_out(wh: &Warehouse) -> VendingError {
    VendingError::invalid(format!(
        "warehouse '{}' is not on S3: nothing to presign or sign",
        wh.record.name
    ))
}

/// Checks a warehouse's storage profile with the kind of credential the server will reach it
/// with, and gives it its one written form (key prefixes without surrounding `/`). Each kind's
/// rules are its module's: which credentials fit it and what its settings must be.
pub fn check_storage(
    profile: &mut StorageProfile,
    credential: Option<CredentialKind>,
) -> VendingResult<()> {
    let key_prefix = match profile {
        StorageProfile::Local { .. } => None,
        StorageProfile::S3(p) => Some(&mut p.key_prefix),
        StorageProfile::Adls(p) => Some(&mut p.key_prefix),
        StorageProfile::Gcs(p) => Some(&mut p.key_prefix),
    };
    if let Some(key_prefix) = key_prefix {
        *key_prefix = key_prefix.trim_matches('/').to_owned();
    }
    // The root must be a usable location (no `..`, empty segments or odd characters).
    normalize_location(&profile.root_location()).map_err(VendingError::invalid)?;
    let storage = vendor(profile);
    let fits = storage.credential_kinds();
    if let Some(kind) = credential
        && !fits.contains(&kind)
    {
        let wanted: Vec<_> = fits.iter().map(|k| k.as_str()).collect();
        let wanted = match wanted.as_slice() {
            [] => "none".to_owned(),
            kinds => kinds.join(" or "),
        };
        return Err(VendingError::invalid(format!(
            "a {kind} credential does not fit this warehouse's storage (it takes {wanted})"
        )));
    }
    storage
        .check(credential.is_some())
        .map_err(VendingError::invalid)
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

/// Refused: outside the table, or not offered.
/// What a vending result says about the token service it needed: answered, or failed how. A
/// request vending refused itself (outside the table) still reached it.
fn call_outcome<T>(result: &VendingResult<T>) -> Result<(), crate::reachability::Failure> {
    use crate::reachability::Failure;
    match result {
        Err(VendingError::Misconfigured(_)) => Err(Failure::Refused),
        Err(VendingError::Unavailable(_)) => Err(Failure::Unavailable),
        _ => Ok(()),
    }
}

fn refused(message: impl Into<String>) -> VendingError {
    VendingError::refused(message)
}

fn unavailable(message: String) -> VendingError {
    VendingError::unavailable(message)
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
