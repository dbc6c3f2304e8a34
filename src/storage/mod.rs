//! Where warehouses keep their files, and everything that reaches them: one folder per storage
//! kind, behind one trait.
//!
//! Owns: the [`StorageProfile`] a warehouse is configured with and [`kind_of`], the one place that
//! picks a storage kind's code for it; the [`StorageKind`] trait each kind implements (its
//! profile rules, the credentials it takes, the server's own IO, what a reader of a table gets,
//! presigned URLs, the remote signer and validation); the machinery those share ([`Issuer`]:
//! token-service clients, STS sessions, options); and the rules for locations ([`location`]).
//! Each kind lives in its own folder or file: [`s3`], [`adls`], [`gcs`], [`local`].
//! Must not touch: the store, HTTP types or grants (a caller's data access comes in decided).
//! Nothing outside this folder matches on a storage kind.

pub mod access;
pub mod adls;
mod error;
pub mod fields;
pub mod gcs;
pub mod io;
pub mod local;
pub mod location;
pub mod s3;
pub mod secret;
pub mod validation;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::domain::CredentialKind;
use crate::domain::WarehouseId;
use crate::outbound::OutboundTimeouts;
use fields::Field;

pub use access::{
    PresignMethod, RemoteSign, Requester, ServerAccess, TableAccess, TableEndpoints,
    VendedCredential, WarehouseStorage,
};
pub use adls::AdlsProfile;
pub use error::{VendingError, VendingResult};
pub use gcs::GcsProfile;
pub use io::{IoError, WarehouseIo};
pub use location::{is_inside, normalize_location};
pub use s3::{S3Profile, S3Vending};
pub use secret::{CredentialFields, StorageSecret};

/// Where a warehouse keeps its files and how the server itself reaches them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
// Built once per warehouse change and kept behind an `Arc`: size does not matter here.
#[allow(clippy::large_enum_variant)]
pub enum StorageProfile {
    /// A directory on the server's own disk (`file:///abs/path`).
    Local { root: String },
    /// An S3 bucket (or S3-compatible store) under an optional key prefix.
    S3(S3Profile),
    /// An Azure storage container (ADLS Gen2 filesystem) under an optional prefix.
    Adls(AdlsProfile),
    /// A Google Cloud Storage bucket under an optional prefix.
    Gcs(GcsProfile),
}

impl StorageProfile {
    /// The warehouse root as a URL without a trailing slash, e.g. `s3://bucket/prefix`.
    pub fn root_location(&self) -> String {
        kind_of(self).root_location()
    }

    /// A directory on the server's disk, if the warehouse is one (where local warehouses may
    /// live is the server's own rule).
    pub fn local_root(&self) -> Option<&str> {
        match self {
            StorageProfile::Local { root } => Some(root),
            _ => None,
        }
    }
}

/// The code of a profile's storage kind: the one place that matches on the kind.
pub fn kind_of(profile: &StorageProfile) -> &dyn StorageKind {
    match profile {
        StorageProfile::S3(p) => p,
        StorageProfile::Adls(p) => p,
        StorageProfile::Gcs(p) => p,
        StorageProfile::Local { root } => local::LocalStorage::of(root),
    }
}

/// One kind of storage: the rules its profiles follow, how the server reaches it, and what a
/// reader of one of its tables gets. Each kind answers in its own folder ([`s3`], [`adls`],
/// [`gcs`], [`local`]); callers pick the kind with [`kind_of`].
#[async_trait::async_trait]
pub trait StorageKind: Sync {
    /// The warehouse root as a URL without a trailing slash.
    fn root_location(&self) -> String;
    /// The profile in its one written form (key prefixes without surrounding `/`).
    fn tidied(&self) -> StorageProfile;
    /// The kinds of credential the server may reach this storage with.
    fn credential_kinds(&self) -> &'static [CredentialKind];
    /// Checks the profile's settings; `has_credential` says whether the server has a credential.
    fn check(&self, has_credential: bool) -> Result<(), String>;
    /// The non-secret client settings (region, endpoints, account names).
    fn client_config(&self) -> BTreeMap<String, String>;
    /// Whether clients may ask this storage for delegated access at all (vended credentials or
    /// the remote signer); a directory on the server hands out neither.
    fn may_delegate(&self) -> bool {
        true
    }
    /// Whether tables of this storage get vended credentials at all.
    fn vends(&self) -> bool;

    /// The server's own IO for this storage, built with its secret (on S3 without one, the AWS
    /// default chain), and for ADLS the SAS signer it shares with vending. A secret that is
    /// missing or of another kind is misconfigured (`warehouse` names it).
    async fn open(
        &self,
        secret: Option<&StorageSecret>,
        warehouse: &str,
        timeouts: &OutboundTimeouts,
    ) -> Result<ServerAccessParts, IoError>;

    /// A credential that reaches only the table's files, for the caller's data access (only
    /// asked when [`StorageKind::vends`]).
    async fn vend(&self, issuer: &Issuer, t: &TableAccess<'_>) -> VendingResult<VendedCredential>;
    /// A URL for one file inside the table, and how long it works.
    async fn presign(
        &self,
        issuer: &Issuer,
        t: &TableAccess<'_>,
        file: &str,
        method: PresignMethod,
    ) -> VendingResult<(String, Duration)>;

    /// Checks, against the real storage, that what this kind hands out does what it should for a
    /// sample table and nothing more; records each step, and warns of settings that work but
    /// weaken isolation. Nothing by default (the server's own write/read/delete probe runs for
    /// every kind).
    async fn validate(
        &self,
        _check: &validation::Validation<'_>,
        _steps: &mut validation::Steps,
        _warnings: &mut Vec<String>,
    ) {
    }

    /// Where the storage offers the remote signer: adds its settings to `config` and returns the
    /// `remote-signing-config` object. None by default.
    fn remote_signing(
        &self,
        _config: &mut BTreeMap<String, String>,
        _endpoints: &TableEndpoints,
    ) -> Option<Bytes> {
        None
    }

    /// Checks a request the remote signer is asked to sign (only S3 offers the signer).
    fn check_sign(
        &self,
        _issuer: &Issuer,
        t: &TableAccess<'_>,
        _sign: &RemoteSign,
    ) -> VendingResult<s3::signer::CheckedRequest> {
        Err(nothing_to_sign(t.warehouse))
    }

    /// Signs a request [`StorageKind::check_sign`] accepted: the URI and headers to send.
    async fn sign(
        &self,
        _issuer: &Issuer,
        t: &TableAccess<'_>,
        _sign: &RemoteSign<'_>,
        _checked: &s3::signer::CheckedRequest,
    ) -> VendingResult<(String, BTreeMap<String, Vec<String>>)> {
        Err(nothing_to_sign(t.warehouse))
    }
}

/// What [`StorageKind::open`] builds: the server's IO, and for ADLS its SAS signer.
pub type ServerAccessParts = (Arc<dyn WarehouseIo>, Option<Arc<adls::auth::AzureSigner>>);

/// What a request for signing on storage without a signer answers.
fn nothing_to_sign(wh: WarehouseStorage<'_>) -> VendingError {
    VendingError::invalid(format!(
        "warehouse '{}' is not on S3: nothing to presign or sign",
        wh.name
    ))
}

/// Knobs of handing out storage access.
#[derive(Debug, Clone)]
pub struct VendingOptions {
    /// Sessions are renewed when less than this is left, and never handed out with less.
    pub refresh_margin: Duration,
    /// Lifetime of presigned URLs.
    pub presign_ttl: Duration,
    /// Deadlines of the calls vending makes (STS, Google's token exchange, validation probes).
    pub timeouts: OutboundTimeouts,
}

/// What every storage kind hands out access with: the options, the token-service client, S3's
/// STS session cache, and where token-service outcomes are noted. Caches of rendered answers are
/// [`crate::vending`]'s, above this.
pub struct Issuer {
    pub(crate) sts: s3::sts::StsSessions,
    pub(crate) http: reqwest::Client,
    pub(crate) options: VendingOptions,
    static_warned: moka::sync::Cache<crate::domain::WarehouseId, ()>,
    /// Where every token-service call's outcome is noted, per warehouse.
    reachability: Arc<crate::reachability::Reachability>,
}

impl Issuer {
    /// An issuer with empty caches.
    pub fn new(
        options: VendingOptions,
        reachability: Arc<crate::reachability::Reachability>,
    ) -> Self {
        Self {
            sts: s3::sts::StsSessions::new(
                options.refresh_margin,
                options.timeouts,
                reachability.clone(),
            ),
            reachability,
            http: options
                .timeouts
                .http_client(crate::outbound::Outbound::TokenService),
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

    /// Notes a token-service call's outcome for `warehouse` (kinds that call one say so).
    fn note_token_service(
        &self,
        warehouse: WarehouseId,
        outcome: Result<(), crate::reachability::Failure>,
    ) {
        self.reachability.record(
            warehouse,
            crate::reachability::Upstream::TokenService,
            outcome,
        );
    }

    /// Logs, at most every 5 minutes per warehouse, that it hands out unscoped access.
    fn warn_unscoped(&self, wh: WarehouseStorage<'_>, what: &str) {
        if self.static_warned.get(&wh.id).is_none() {
            self.static_warned.insert(wh.id, ());
            tracing::warn!(warehouse = %wh.name, "vending {what}: UNSCOPED, every client reaches the whole bucket or container");
        }
    }
}

/// The fields of each kind, with the spellings credential stores commonly use.
fn fields_of(kind: CredentialKind) -> &'static [Field] {
    match kind {
        CredentialKind::S3AccessKey => s3::ACCESS_KEY_FIELDS,
        CredentialKind::AzureSharedKey => adls::SHARED_KEY_FIELDS,
        CredentialKind::AzureClientSecret => adls::CLIENT_SECRET_FIELDS,
        CredentialKind::GcsServiceAccount => gcs::SERVICE_ACCOUNT_FIELDS,
    }
}

/// The credential's fields under their canonical names, from a value as people write it: the
/// canonical or alias spellings, and for a Google service account also the key file itself or the
/// key file nested under `data`. Unknown fields, a field given twice under two spellings, and
/// missing or empty required fields are errors that name the field, never its value.
pub fn normalize_fields(
    kind: CredentialKind,
    value: &serde_json::Value,
) -> Result<CredentialFields, String> {
    let object = value
        .as_object()
        .ok_or_else(|| format!("a {kind} credential's value must be a JSON object"))?;
    if kind == CredentialKind::GcsServiceAccount
        && let Some(key_file) = gcs::service_account_key_file(object)?
    {
        return Ok(CredentialFields::new(
            kind,
            BTreeMap::from([("service_account_json".to_owned(), key_file)]),
        ));
    }
    let fields = fields_of(kind);
    let mut out = BTreeMap::new();
    for (given, v) in object {
        let field = fields
            .iter()
            .find(|f| f.name == given || f.aliases.contains(&given.as_str()))
            .ok_or_else(|| {
                let names: Vec<&str> = fields
                    .iter()
                    .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
                    .collect();
                format!(
                    "a {kind} credential has no field '{given}' (its fields: {})",
                    names.join(", ")
                )
            })?;
        let v = v
            .as_str()
            .ok_or_else(|| format!("a {kind} credential's '{given}' must be a string"))?;
        if out.insert(field.name.to_owned(), v.to_owned()).is_some() {
            return Err(format!(
                "a {kind} credential gives '{}' twice (under two of its names: {})",
                field.name,
                std::iter::once(field.name)
                    .chain(field.aliases.iter().copied())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    for f in fields {
        match out.get(f.name) {
            Some(v) if v.is_empty() => {
                return Err(format!(
                    "a {kind} credential needs a non-empty '{}'",
                    f.name
                ));
            }
            None if f.required => {
                return Err(format!(
                    "a {kind} credential needs a non-empty '{}'",
                    f.name
                ));
            }
            _ => {}
        }
    }
    Ok(CredentialFields::new(kind, out))
}

/// Checks a warehouse's storage profile with the kind of credential the server will reach it
/// with, and gives it its one written form (key prefixes without surrounding `/`). Each kind's
/// rules are its module's: which credentials fit it and what its settings must be.
pub fn check_storage(
    profile: &mut StorageProfile,
    credential: Option<CredentialKind>,
) -> VendingResult<()> {
    *profile = kind_of(profile).tidied();
    // The root must be a usable location (no `..`, empty segments or odd characters).
    normalize_location(&profile.root_location()).map_err(VendingError::invalid)?;
    let storage = kind_of(profile);
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

/// The non-secret client settings of a warehouse's storage (region, endpoints, account names).
pub fn client_config(storage: &StorageProfile) -> BTreeMap<String, String> {
    kind_of(storage).client_config()
}

/// A hash of what a session depends on: the warehouse's storage settings and the value of the
/// server's secret (its [`ServerAccess::secret_fingerprint`]). A changed profile or a rotated
/// credential gives new cache keys, so nothing made with the old ones is handed out again.
pub fn fingerprint(profile: &impl Hash, secret_fingerprint: u64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    profile.hash(&mut h);
    secret_fingerprint.hash(&mut h);
    h.finish()
}

/// What a vending result says about the token service it needed: answered, or failed how. A
/// request vending refused itself (outside the table) still reached it.
fn call_outcome<T>(result: &VendingResult<T>) -> Result<(), crate::reachability::Failure> {
    use crate::reachability::Failure;
    match result {
        Err(VendingError::Misconfigured(..)) => Err(Failure::Refused),
        Err(VendingError::Unavailable(..)) => Err(Failure::Unavailable),
        _ => Ok(()),
    }
}

/// Refused: outside the table, or not offered.
fn refused(message: impl Into<String>) -> VendingError {
    VendingError::refused(message)
}

fn unavailable(message: String) -> VendingError {
    VendingError::unavailable(message)
}

/// The default of settings that are on unless turned off.
fn yes() -> bool {
    true
}

/// `scheme://authority[/prefix]`: a warehouse root.
fn join_root(scheme: &str, authority: &str, prefix: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}/{prefix}")
    }
}
