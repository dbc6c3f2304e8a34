//! Typed settings: defaults, then a TOML file, then `FLOE_*` environment variables, validated at start.
//!
//! An environment variable `FLOE_A__B` sets key `b` of table `a` (`FLOE_LISTEN` sets `listen`,
//! `FLOE_AUTH__TOKEN_TTL_SECS` sets `auth.token_ttl_secs`). Errors name the setting that is wrong.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::storage::StorageProfile;

/// Everything Floe reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address to listen on.
    pub listen: String,
    /// Directory of the sled store, signing key and default warehouse.
    pub data_dir: PathBuf,
    /// URL clients use to reach this server (for links in responses); defaults to `http://{listen}`.
    pub public_url: Option<String>,
    /// Largest accepted request body, in bytes (413 above it).
    #[serde(deserialize_with = "lenient")]
    pub max_body_bytes: usize,
    /// Largest page a list returns, whatever `pageSize` asks for.
    #[serde(deserialize_with = "lenient")]
    pub max_page_size: usize,
    /// How long an `Idempotency-Key` answer is replayed, in seconds.
    #[serde(deserialize_with = "lenient")]
    pub idempotency_lifetime_secs: u64,
    /// Audit events older than this many days are deleted.
    #[serde(deserialize_with = "lenient")]
    pub audit_retention_days: u32,
    /// Denials of one principal audited one by one per minute; more are audited as one count.
    #[serde(deserialize_with = "lenient")]
    pub audit_denials_per_minute: u32,
    /// Denials of one tenant audited one by one per day (UTC); more are audited as counts.
    /// Management changes are always audited.
    #[serde(deserialize_with = "lenient")]
    pub audit_denials_per_day: u32,
    /// Attempts of a commit that loses a race but whose requirements still hold.
    #[serde(deserialize_with = "lenient")]
    pub commit_retries: u32,
    /// Longest a commit may take before its table's pointer moves, in milliseconds: one that
    /// would move it later does not, and answers 503 (it did not land; retrying is safe).
    #[serde(deserialize_with = "lenient")]
    pub commit_deadline_ms: u64,
    /// Longest a read (GET, HEAD) may take, in milliseconds: past it the request's work stops and
    /// it answers 503 with `Retry-After`. A write may take `commit_deadline_ms` plus 5 s.
    #[serde(deserialize_with = "lenient")]
    pub request_deadline_ms: u64,
    /// How long a dropped table or view stays in its warehouse's recycle bin, restorable, in
    /// seconds (0: a drop without purge is final at once).
    #[serde(deserialize_with = "lenient")]
    pub drop_retention_secs: u64,
    /// How often each replica looks for dropped objects whose time is up, in milliseconds.
    #[serde(deserialize_with = "lenient")]
    pub purge_interval_ms: u64,
    /// How long a replica purging a dropped object holds it before another may take over (a
    /// replica that died mid-purge), in seconds.
    #[serde(deserialize_with = "lenient")]
    pub purge_lease_secs: u64,
    /// How long a staged create holds its table's location for its commit, in seconds: at least
    /// 43200, so it outlives every credential vended with the stage (12 h at most).
    #[serde(deserialize_with = "lenient")]
    pub staged_create_ttl_secs: u64,
    /// How long a stopping server (SIGTERM, SIGINT) lets in-flight requests finish, in seconds;
    /// commits stop landing a second before it ends.
    #[serde(deserialize_with = "lenient")]
    pub shutdown_grace_secs: u64,
    /// Most requests one server works on at once; past it a request answers 503 with
    /// `Retry-After` at once instead of queueing. A request counts once its body is read.
    #[serde(deserialize_with = "lenient")]
    pub max_in_flight: usize,
    /// How long a client may take to send a request's headers, in milliseconds; a slower one's
    /// connection is closed (408).
    #[serde(deserialize_with = "lenient")]
    pub request_head_timeout_ms: u64,
    /// How long a client may take to send a request's body once its headers are in, in
    /// milliseconds; a slower one answers 408 and its connection is closed. Bodies being read do
    /// not count against `max_in_flight`.
    #[serde(deserialize_with = "lenient")]
    pub request_body_timeout_ms: u64,
    /// Most connections open at once from one client address; requests on more answer 503 and
    /// their connection is closed.
    #[serde(deserialize_with = "lenient")]
    pub max_connections_per_address: u32,
    /// HTTP worker threads (0 = one per core).
    #[serde(deserialize_with = "lenient")]
    pub workers: usize,
    /// Memory for parsed metadata files, in bytes (each weighed by what it occupies parsed).
    #[serde(deserialize_with = "lenient")]
    pub metadata_cache_bytes: u64,
    /// Memory for what scan planning keeps, in bytes, in all: parsed manifests (six eighths),
    /// manifest lists (an eighth), each weighed by what it occupies parsed, and rendered plan
    /// answers (an eighth).
    #[serde(deserialize_with = "lenient")]
    pub manifest_cache_bytes: u64,
    /// Largest table or view metadata file the server reads or writes, in bytes: registering a
    /// larger file, or a commit whose metadata would be larger, is refused with a 400.
    #[serde(deserialize_with = "lenient")]
    pub max_metadata_file_bytes: u64,
    /// Where the catalog lives: `sled` (embedded, in `data_dir`; the default) or `postgres`
    /// (shared by replicas; see `[postgres]`).
    pub store: StoreKind,
    /// The PostgreSQL store (`[postgres]`), used when `store = "postgres"`.
    pub postgres: PostgresSettings,
    /// Free space the sled store's filesystem must keep, in bytes: a write that finds less is
    /// refused with 507 before it starts (0: no check).
    #[serde(deserialize_with = "lenient")]
    pub min_free_disk_bytes: u64,
    /// sled's page cache, in bytes (sled's own default is 1 GiB).
    #[serde(deserialize_with = "lenient")]
    pub store_cache_bytes: u64,
    /// Key that encrypts secrets at rest (base64 of 32 bytes); generated into the data dir when unset.
    pub master_key: Option<Secret>,
    /// Environment variables that `env:NAME` credential references may read, comma-separated.
    pub secret_env_allowlist: String,
    /// Directories whose files `file:/path` credential references may read, comma-separated
    /// (never the data directory). Empty: no `file:` references.
    pub secret_file_dirs: String,
    /// ARN and name prefixes that `aws-secretsmanager:` and `aws-ssm:` references may read,
    /// comma-separated. Empty: no AWS references.
    pub secret_aws_allowlist: String,
    /// Root principal's client id; generated on first start when unset.
    pub root_client_id: Option<String>,
    /// Root principal's secret; generated on first start when unset.
    pub root_client_secret: Option<Secret>,
    /// Log filter (`info`, `floe=debug`, ...).
    pub log: String,
    /// `text` or `json`.
    pub log_format: String,
    pub auth: AuthSettings,
    /// Credential vending (`[vending]`).
    pub vending: VendingSettings,
    /// Scan planning's limits (`[planning]`).
    pub planning: PlanningSettings,
    /// Connect and total timeouts of every outbound call, per kind (`[timeouts]`, milliseconds).
    pub timeouts: crate::outbound::OutboundTimeouts,
    /// Each tenant's request rate (`[limits]`).
    pub limits: TenantLimitSettings,
    /// External OpenID Connect issuers whose tokens are accepted (`[[oidc]]`).
    pub oidc: Vec<crate::identity::oidc::OidcIssuer>,
    /// Warehouses created (or updated) in the default tenant at start.
    pub warehouses: Vec<WarehouseSettings>,
}

/// Token issuing and checking.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub issuer: String,
    pub audience: String,
    #[serde(deserialize_with = "lenient")]
    pub token_ttl_secs: u64,
    /// How long a chain of token exchanges may renew a session after the client last showed its
    /// secret, in seconds; then it must authenticate again.
    #[serde(deserialize_with = "lenient")]
    pub max_session_secs: u64,
    /// Shortest time between two signing-key rotations, in seconds (0: no limit). Each retired
    /// key stays in the JWKS until the tokens it signed expire.
    #[serde(deserialize_with = "lenient")]
    pub min_key_rotation_secs: u64,
}

/// Fewest characters of a root secret chosen by the operator (generated secrets are 256-bit).
pub const MIN_ROOT_SECRET_CHARS: usize = 16;

/// Which backend keeps the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Embedded sled in `data_dir`: one process.
    #[default]
    Sled,
    /// A PostgreSQL database shared by any number of replicas.
    Postgres,
}

/// The PostgreSQL store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresSettings {
    /// `postgres://user:password@host:port/database` (may carry a password, so never logged).
    pub url: Option<Secret>,
    /// Connections this replica keeps at most.
    #[serde(deserialize_with = "lenient")]
    pub max_connections: u32,
    /// `notify`: table and view pointers are served from memory, kept current by every replica's
    /// notices; `strict`: every load reads the database.
    pub pointer_cache: crate::store::pointer_cache::PointerCacheMode,
    /// The longest a cached pointer is served after it was read, whatever the notices say (they
    /// normally arrive within milliseconds).
    #[serde(deserialize_with = "lenient")]
    pub pointer_max_staleness_ms: u64,
    /// Memory the pointer cache may hold.
    #[serde(deserialize_with = "lenient")]
    pub pointer_cache_bytes: u64,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
            pointer_cache: Default::default(),
            pointer_max_staleness_ms: 5_000,
            pointer_cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What a plan reserves of `planning.max_bytes_in_flight` when it starts (its request and the
/// state it builds), and so the least that setting may be.
pub const PLAN_START_BYTES: u64 = 64 * 1024;

/// Scan planning (`[planning]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlanningSettings {
    /// A plan that would read more data manifests than this is split into plan tasks of at most
    /// this many, fetched with `POST .../tasks`.
    #[serde(deserialize_with = "lenient")]
    pub manifests_per_task: usize,
    /// How long a plan id and its plan tasks stay valid, in seconds.
    #[serde(deserialize_with = "lenient")]
    pub task_ttl_secs: u64,
    /// Plans computed at once on this replica; one more answers 503 with `Retry-After`.
    #[serde(deserialize_with = "lenient")]
    pub max_in_flight: usize,
    /// Memory the answers of plans in flight may hold on this replica, in bytes; a plan that
    /// would pass it answers 503 with `Retry-After`.
    #[serde(deserialize_with = "lenient")]
    pub max_bytes_in_flight: u64,
    /// Threads that compute plans (reading, parsing, pruning, rendering); default: one per core.
    #[serde(deserialize_with = "lenient")]
    pub threads: usize,
    /// The planning threads' `nice` (0 to 19): 19 lets plans use only the CPU requests leave,
    /// so planning never delays load-table.
    #[serde(deserialize_with = "lenient")]
    pub nice: i32,
    /// Unset (the default): every plan answers `completed` (PyIceberg 0.12 cannot poll). Set: a
    /// plan not done after this many milliseconds answers `submitted` and finishes in the
    /// background, polled with `GET .../plan/{plan-id}` (0: every plan answers `submitted`).
    #[serde(deserialize_with = "lenient_option")]
    pub submitted_after_ms: Option<u64>,
}

impl Default for PlanningSettings {
    fn default() -> Self {
        Self {
            manifests_per_task: 64,
            task_ttl_secs: 3600,
            max_in_flight: 8,
            max_bytes_in_flight: 256 * 1024 * 1024,
            threads: std::thread::available_parallelism().map_or(2, usize::from),
            nice: 19,
            submitted_after_ms: None,
        }
    }
}

/// Credential vending knobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VendingSettings {
    /// Vended sessions are renewed when less than this many seconds remain, and never handed out
    /// with less (below 900, the shortest STS session).
    #[serde(deserialize_with = "lenient")]
    pub refresh_margin_secs: u64,
    /// Lifetime of presigned URLs, in seconds (1..=3600).
    #[serde(deserialize_with = "lenient")]
    pub presign_ttl_secs: u64,
}

impl Default for VendingSettings {
    fn default() -> Self {
        Self {
            refresh_margin_secs: 300,
            presign_ttl_secs: 300,
        }
    }
}

/// A warehouse declared in configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseSettings {
    pub name: String,
    pub storage: StorageProfile,
    /// Static S3 keys for the server's own access; otherwise the AWS default chain is used.
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<Secret>,
}

/// A configuration value that must never be printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The value itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8181".into(),
            data_dir: PathBuf::from("./floe-data"),
            public_url: None,
            max_body_bytes: 10 * 1024 * 1024,
            max_page_size: 1000,
            idempotency_lifetime_secs: 1800,
            commit_retries: 32,
            commit_deadline_ms: 60_000,
            request_deadline_ms: 30_000,
            drop_retention_secs: 7 * 86_400,
            purge_interval_ms: 10_000,
            purge_lease_secs: 300,
            staged_create_ttl_secs: 86_400,
            shutdown_grace_secs: 25,
            max_in_flight: 1024,
            request_head_timeout_ms: 5_000,
            request_body_timeout_ms: 10_000,
            max_connections_per_address: 512,
            audit_retention_days: 90,
            audit_denials_per_minute: crate::authz::DEFAULT_DENIALS_PER_MINUTE,
            audit_denials_per_day: crate::authz::DEFAULT_DENIALS_PER_DAY,
            workers: 0,
            metadata_cache_bytes: 256 * 1024 * 1024,
            manifest_cache_bytes: 512 * 1024 * 1024,
            max_metadata_file_bytes: 64 * 1024 * 1024,
            store: StoreKind::Sled,
            postgres: PostgresSettings::default(),
            store_cache_bytes: 128 * 1024 * 1024,
            min_free_disk_bytes: 64 * 1024 * 1024,
            master_key: None,
            secret_env_allowlist: String::new(),
            secret_file_dirs: String::new(),
            secret_aws_allowlist: String::new(),
            root_client_id: None,
            root_client_secret: None,
            log: "info".into(),
            log_format: "text".into(),
            auth: AuthSettings::default(),
            vending: VendingSettings::default(),
            planning: PlanningSettings::default(),
            timeouts: Default::default(),
            limits: Default::default(),
            oidc: Vec::new(),
            warehouses: Vec::new(),
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            issuer: "floe".into(),
            audience: "floe".into(),
            token_ttl_secs: 3600,
            max_session_secs: 12 * 3600,
            min_key_rotation_secs: 300,
        }
    }
}

pub(crate) fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + Deserialize<'de>,
    T::Err: fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NativeOrText<T> {
        Native(T),
        Text(String),
    }
    match NativeOrText::<T>::deserialize(d)? {
        NativeOrText::Native(v) => Ok(v),
        NativeOrText::Text(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// [`lenient`] for a setting that may be unset.
pub(crate) fn lenient_option<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + Deserialize<'de>,
    T::Err: fmt::Display,
{
    lenient(d).map(Some)
}

/// A setting that could not be used, with its name.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Loads defaults, then the TOML file at `file` (if any), then `FLOE_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut doc = toml::Table::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!("cannot read config file {}: {e}", path.display()))
            })?;
            doc = text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?;
        }
        for (name, value) in env {
            let Some(key) = name.strip_prefix("FLOE_") else {
                continue;
            };
            if key == "CONFIG" {
                continue;
            }
            let path: Vec<String> = key
                .to_ascii_lowercase()
                .split("__")
                .map(str::to_owned)
                .collect();
            set_path(&mut doc, &path, value).map_err(|e| ConfigError(format!("{name}: {e}")))?;
        }
        let settings: Settings = serde_path_to_error::deserialize(toml::Value::Table(doc))
            .map_err(|e| ConfigError(format!("{}: {}", e.path(), e.inner().message())))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |what: &str| Err(ConfigError(what.to_owned()));
        if self.planning.threads == 0 || !(0..=19).contains(&self.planning.nice) {
            return bad("planning.threads: must be at least 1; planning.nice: between 0 and 19");
        }
        if self.planning.max_bytes_in_flight < PLAN_START_BYTES {
            return bad(
                "planning.max_bytes_in_flight: must be at least 65536 (what a plan reserves to start)",
            );
        }
        if self.planning.manifests_per_task == 0 || self.planning.max_in_flight == 0 {
            return bad(
                "planning.manifests_per_task and planning.max_in_flight: must be at least 1",
            );
        }
        if !(60..=86_400).contains(&self.planning.task_ttl_secs) {
            return bad("planning.task_ttl_secs: must be between 60 and 86400");
        }
        if self.listen.parse::<SocketAddr>().is_err() {
            return bad(&format!(
                "listen: '{}' is not an address like 127.0.0.1:8181",
                self.listen
            ));
        }
        if self.max_body_bytes < 1024 {
            return bad("max_body_bytes: must be at least 1024");
        }
        if self.max_page_size == 0 {
            return bad("max_page_size: must be at least 1");
        }
        if self.max_metadata_file_bytes < 64 * 1024 {
            return bad("max_metadata_file_bytes: must be at least 65536");
        }
        if !(60..=86_400).contains(&self.auth.token_ttl_secs) {
            return bad("auth.token_ttl_secs: must be between 60 and 86400");
        }
        if self.vending.refresh_margin_secs >= 900 {
            return bad(
                "vending.refresh_margin_secs: must be below 900 (the shortest STS session)",
            );
        }
        if !(1..=3_600_000).contains(&self.commit_deadline_ms) {
            return bad("commit_deadline_ms: must be 1 to 3600000");
        }
        if self.drop_retention_secs > 366 * 86_400 {
            return bad("drop_retention_secs: must be at most 31622400 (366 days)");
        }
        if !(100..=3_600_000).contains(&self.purge_interval_ms) {
            return bad("purge_interval_ms: must be 100 to 3600000");
        }
        if !(2..=3600).contains(&self.shutdown_grace_secs) {
            return bad("shutdown_grace_secs: must be 2 to 3600");
        }
        if !(1..=86_400).contains(&self.purge_lease_secs) {
            return bad("purge_lease_secs: must be 1 to 86400");
        }
        if !(43_200..=30 * 86_400).contains(&self.staged_create_ttl_secs) {
            return bad(
                "staged_create_ttl_secs: must be 43200 (the longest vended credential) to 2592000",
            );
        }
        if !(1..=3_600_000).contains(&self.request_deadline_ms) {
            return bad("request_deadline_ms: must be 1 to 3600000");
        }
        if self.auth.min_key_rotation_secs > 86_400 {
            return bad("auth.min_key_rotation_secs: must be at most 86400");
        }
        if let Err(e) = self.timeouts.check() {
            return bad(&e);
        }
        if let Err(e) = self.limits.check() {
            return bad(&e);
        }
        if !(1..=10_000).contains(&self.audit_denials_per_minute) {
            return bad("audit_denials_per_minute: must be 1 to 10000");
        }
        if !(1..=100_000_000).contains(&self.audit_denials_per_day) {
            return bad("audit_denials_per_day: must be 1 to 100000000");
        }
        if !(1..=1_000_000).contains(&self.max_in_flight) {
            return bad("max_in_flight: must be 1 to 1000000");
        }
        if !(100..=600_000).contains(&self.request_head_timeout_ms) {
            return bad("request_head_timeout_ms: must be 100 to 600000");
        }
        if !(100..=600_000).contains(&self.request_body_timeout_ms) {
            return bad("request_body_timeout_ms: must be 100 to 600000");
        }
        if !(1..=1_000_000).contains(&self.max_connections_per_address) {
            return bad("max_connections_per_address: must be 1 to 1000000");
        }
        if !(1..=3600).contains(&self.vending.presign_ttl_secs) {
            return bad("vending.presign_ttl_secs: must be between 1 and 3600");
        }
        if self.auth.issuer.is_empty() || self.auth.audience.is_empty() {
            return bad("auth.issuer and auth.audience must not be empty");
        }
        if self.store == StoreKind::Postgres {
            if self.postgres.url.is_none() {
                return bad("postgres.url: required with store = \"postgres\"");
            }
            // Replicas must open each other's sealed secrets and signing keys.
            if self.master_key.is_none() {
                return bad(
                    "master_key: required with store = \"postgres\" (every replica needs the same key)",
                );
            }
            if self.postgres.max_connections == 0 {
                return bad("postgres.max_connections: must be at least 1");
            }
        }
        if !["text", "json"].contains(&self.log_format.as_str()) {
            return bad("log_format: must be 'text' or 'json'");
        }
        if self.root_client_id.is_some() != self.root_client_secret.is_some() {
            return bad("root_client_id and root_client_secret: set both or neither");
        }
        if let Some(secret) = &self.root_client_secret
            && secret.expose().chars().count() < MIN_ROOT_SECRET_CHARS
        {
            return bad(&format!(
                "root_client_secret: must be at least {MIN_ROOT_SECRET_CHARS} characters (sign-in \
                 back-off is per address: a secret's strength is what stops guesses from many)"
            ));
        }
        for (i, issuer) in self.oidc.iter().enumerate() {
            if issuer.tenant.is_some() == issuer.tenant_claim.is_some() {
                return bad(&format!(
                    "oidc[{i}]: set exactly one of tenant and tenant_claim"
                ));
            }
            if issuer.issuer == self.auth.issuer {
                return bad(&format!("oidc[{i}].issuer: must differ from auth.issuer"));
            }
            if issuer.algorithms.is_empty()
                || !issuer
                    .algorithms
                    .iter()
                    .all(|a| crate::identity::oidc::is_asymmetric(*a))
            {
                return bad(&format!(
                    "oidc[{i}].algorithms: name at least one, and only asymmetric ones (RS256, ES256, EdDSA, ...)"
                ));
            }
        }
        for (i, wh) in self.warehouses.iter().enumerate() {
            crate::domain::check_resource_name("warehouse name", &wh.name)
                .map_err(|e| ConfigError(format!("warehouses[{i}].name: {e}")))?;
            if wh.s3_access_key_id.is_some() != wh.s3_secret_access_key.is_some() {
                return bad(&format!(
                    "warehouses[{i}]: set both s3_access_key_id and s3_secret_access_key or neither"
                ));
            }
        }
        Ok(())
    }

    /// The base URL clients reach this server at.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }
}

fn set_path(doc: &mut toml::Table, path: &[String], value: String) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty name")?;
    let mut table = doc;
    for part in parents {
        let entry = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| format!("'{part}' is not a table"))?;
    }
    table.insert(last.clone(), toml::Value::String(value));
    Ok(())
}

/// `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantLimitSettings {
    /// Requests per second each tenant may make (0: no limit).
    #[serde(deserialize_with = "lenient")]
    pub tenant_requests_per_sec: u32,
    /// Requests a tenant may make at once above its rate, after a quiet spell.
    #[serde(deserialize_with = "lenient")]
    pub tenant_burst: u32,
    /// Longest a request above its tenant's rate waits for its turn before it is refused (429).
    #[serde(deserialize_with = "lenient")]
    pub tenant_max_wait_ms: u64,
}

impl Default for TenantLimitSettings {
    fn default() -> Self {
        Self {
            tenant_requests_per_sec: 0,
            tenant_burst: 200,
            tenant_max_wait_ms: 1000,
        }
    }
}

impl TenantLimitSettings {
    pub fn check(&self) -> Result<(), String> {
        if self.tenant_requests_per_sec > 1_000_000 {
            return Err("limits.tenant_requests_per_sec: must be at most 1000000".into());
        }
        if self.tenant_burst == 0 {
            return Err("limits.tenant_burst: must be at least 1".into());
        }
        if self.tenant_max_wait_ms > 60_000 {
            return Err("limits.tenant_max_wait_ms: must be at most 60000".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_docker_compose_configuration_loads() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/floe.toml");
        let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let s = Settings::load(Some(&file), env(&[("FLOE_MASTER_KEY", key)])).unwrap();
        assert_eq!(s.store, StoreKind::Postgres);
        assert_eq!(s.warehouses.len(), 1);
        let without_key = Settings::load(Some(&file), env(&[])).unwrap_err();
        assert!(without_key.0.contains("master_key"), "{without_key}");
    }

    #[test]
    fn postgres_needs_a_url() {
        let e = Settings::load(None, env(&[("FLOE_STORE", "postgres")])).unwrap_err();
        assert!(e.0.contains("postgres.url"), "{e}");
        let e = Settings::load(None, env(&[("FLOE_STORE", "mysql")])).unwrap_err();
        assert!(e.0.contains("store"), "{e}");
    }

    #[test]
    fn environment_overrides_defaults_with_types() {
        let s = Settings::load(
            None,
            env(&[
                ("FLOE_LISTEN", "0.0.0.0:9000"),
                ("FLOE_AUTH__TOKEN_TTL_SECS", "120"),
                ("FLOE_ROOT_CLIENT_ID", "root"),
                ("FLOE_ROOT_CLIENT_SECRET", "0123456789abcdef"),
                ("FLOE_LIMITS__TENANT_REQUESTS_PER_SEC", "2000"),
                ("FLOE_LIMITS__TENANT_MAX_WAIT_MS", "500"),
                ("FLOE_MIN_FREE_DISK_BYTES", "1048576"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.limits.tenant_requests_per_sec, 2000);
        assert_eq!(s.limits.tenant_max_wait_ms, 500);
        assert_eq!(s.min_free_disk_bytes, 1_048_576);
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert_eq!(s.auth.token_ttl_secs, 120);
        assert_eq!(s.root_client_secret.unwrap().expose(), "0123456789abcdef");
    }

    #[test]
    fn errors_name_the_bad_setting() {
        let e = Settings::load(None, env(&[("FLOE_LISTEN", "nope")])).unwrap_err();
        assert!(e.to_string().contains("listen"), "{e}");
        let e = Settings::load(None, env(&[("FLOE_MAX_PAGE_SIZE", "lots")])).unwrap_err();
        assert!(e.to_string().contains("max_page_size"), "{e}");
        let e = Settings::load(None, env(&[("FLOE_NO_SUCH", "1")])).unwrap_err();
        assert!(e.to_string().contains("no_such"), "{e}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter22");
        assert!(!format!("{s:?}").contains("hunter22"));
    }
}
