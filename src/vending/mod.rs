//! Credential vending: storage access for one table, for one caller, for a short while.
//!
//! Owns: choosing what a caller gets for a table (nothing, STS session, static keys, remote
//! signing), session policies, the session cache, presigned URLs and the remote signer's checks.
//! Must not touch: HTTP types or the store. Every credential is scoped to the table location,
//! which is checked to lie inside its warehouse first; anything else fails closed.

pub mod adls;
pub mod gcs;
pub mod presign;
pub mod s3_policy;
pub mod signer;
pub mod sts;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use uuid::Uuid;

use crate::authz::DataAccess;
use crate::catalog::{CatalogError, CatalogResult, ErrorType, Warehouse};
use crate::identity::Caller;
use crate::store::{AdlsProfile, GcsProfile, S3Profile, S3Vending, StorageProfile, now_ms};
use crate::warehouse_io::{is_inside, normalize_location};
use s3_policy::{PolicyScope, S3Access, session_policy};
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
#[derive(Debug, Clone)]
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

    /// Forgets cached sessions (a warehouse's profile or credential changed).
    pub fn forget_sessions(&self) {
        self.sts.clear();
        self.rendered.invalidate_all();
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
        let credential = t.warehouse.record.credential.as_deref();
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
            return Ok(Some(hit));
        }
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
            profile: fingerprint(profile, t.warehouse.record.credential.as_deref()),
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

/// The role and the access a session gets: writers use the write role, or the read role when the
/// profile allows it; otherwise they get read-only credentials. Never wider than granted.
fn role_for(profile: &S3Profile, access: DataAccess) -> Option<(&str, S3Access)> {
    let read = profile.read_role_arn.as_deref()?;
    match access {
        DataAccess::ReadWrite => match profile.write_role_arn.as_deref() {
            Some(write) => Some((write, S3Access::ReadWrite)),
            None if profile.write_uses_read_role => Some((read, S3Access::ReadWrite)),
            None => Some((read, S3Access::Read)),
        },
        _ => Some((read, S3Access::Read)),
    }
}

/// The table's bucket and key prefix (ending in `/`), after checking that the location lies
/// inside the warehouse.
pub fn table_prefix(
    wh: &Warehouse,
    profile: &S3Profile,
    location: &str,
) -> CatalogResult<(String, String)> {
    let location = inside_warehouse(wh, location)?;
    let (bucket, key) = split_s3(&location)
        .ok_or_else(|| CatalogError::bad_request(format!("{location} is not an s3:// location")))?;
    if bucket != profile.bucket {
        return Err(CatalogError::new(
            ErrorType::Forbidden,
            format!("table location {location} is not in the warehouse's bucket"),
        ));
    }
    Ok((bucket.to_owned(), format!("{key}/")))
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

/// The object name of a location inside a GCS warehouse (no trailing `/`), and the location
/// normalized. Refuses locations outside the warehouse.
pub fn gcs_object(
    wh: &Warehouse,
    profile: &GcsProfile,
    location: &str,
) -> CatalogResult<(String, String)> {
    let location = inside_warehouse(wh, location)?;
    let name = location
        .strip_prefix(&format!("gs://{}/", profile.bucket))
        .ok_or_else(|| CatalogError::bad_request(format!("{location} is not in the bucket")))?
        .to_owned();
    Ok((name, location))
}

/// Splits `s3://bucket/key` into bucket and key.
pub fn split_s3(location: &str) -> Option<(&str, &str)> {
    location
        .strip_prefix("s3://")?
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
}

/// The non-secret client settings of an S3 warehouse: region, endpoint, addressing.
pub fn s3_client_config(profile: &S3Profile) -> BTreeMap<String, String> {
    let mut config = BTreeMap::new();
    config.insert("s3.region".into(), profile.region.clone());
    config.insert("client.region".into(), profile.region.clone());
    if let Some(ep) = &profile.endpoint {
        config.insert("s3.endpoint".into(), ep.clone());
    }
    config.insert(
        "s3.path-style-access".into(),
        profile.path_style.to_string(),
    );
    config.insert(
        "s3.force-virtual-addressing".into(),
        (!profile.path_style).to_string(),
    );
    config
}

/// A hash of what a session depends on in a warehouse's settings.
pub fn fingerprint(profile: &impl Hash, credential: Option<&str>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    profile.hash(&mut h);
    credential.hash(&mut h);
    h.finish()
}

fn unavailable(message: String) -> CatalogError {
    CatalogError::new(ErrorType::ServiceUnavailable, message)
}

/// Checks an S3 profile's vending settings; the message names the setting at fault.
pub fn check_s3_profile(p: &S3Profile, has_credential: bool) -> Result<(), String> {
    if p.bucket.len() < 3
        || p.bucket.len() > 63
        || !p
            .bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        return Err(format!(
            "bucket '{}' is not a valid S3 bucket name (3-63 lowercase letters, digits, '-' and '.')",
            p.bucket
        ));
    }
    if p.region.is_empty() {
        return Err("region must be set".into());
    }
    for (name, url) in [("endpoint", &p.endpoint), ("sts_endpoint", &p.sts_endpoint)] {
        if let Some(url) = url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!("{name} must be an http:// or https:// URL"));
        }
    }
    for (name, arn) in [
        ("read_role_arn", &p.read_role_arn),
        ("write_role_arn", &p.write_role_arn),
    ] {
        if let Some(arn) = arn
            && !(arn.starts_with("arn:") && arn.contains(":role/"))
        {
            return Err(format!(
                "{name} '{arn}' is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
            ));
        }
    }
    if !(900..=43200).contains(&p.session_duration_secs) {
        return Err(format!(
            "session_duration_secs must be between 900 and 43200, not {}",
            p.session_duration_secs
        ));
    }
    if p.write_role_arn.is_some() && p.read_role_arn.is_none() {
        return Err("write_role_arn needs a read_role_arn too".into());
    }
    match p.vending_mode() {
        S3Vending::Sts if p.read_role_arn.is_none() => {
            Err("vending 'sts' needs read_role_arn (or set vending to 'static' or 'off')".into())
        }
        S3Vending::Static if !has_credential => Err(
            "vending 'static' hands out the warehouse's own keys, so it needs a storage credential"
                .into(),
        ),
        _ => Ok(()),
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

    #[test]
    fn writers_never_get_more_than_the_profile_allows() {
        let mut p = S3Profile::new("lake", "wh", "us-east-1");
        assert!(
            role_for(&p, DataAccess::Read).is_none(),
            "no role, no session"
        );
        p.read_role_arn = Some("arn:aws:iam::1:role/r".into());
        assert_eq!(
            role_for(&p, DataAccess::ReadWrite),
            Some(("arn:aws:iam::1:role/r", S3Access::Read))
        );
        p.write_uses_read_role = true;
        assert_eq!(
            role_for(&p, DataAccess::ReadWrite),
            Some(("arn:aws:iam::1:role/r", S3Access::ReadWrite))
        );
        p.write_role_arn = Some("arn:aws:iam::1:role/w".into());
        assert_eq!(
            role_for(&p, DataAccess::ReadWrite),
            Some(("arn:aws:iam::1:role/w", S3Access::ReadWrite))
        );
        assert_eq!(
            role_for(&p, DataAccess::Read),
            Some(("arn:aws:iam::1:role/r", S3Access::Read))
        );
    }

    #[test]
    fn profile_checks_name_the_setting() {
        let mut p = S3Profile::new("lake", "wh", "us-east-1");
        assert!(
            check_s3_profile(&p, false).is_ok(),
            "vending off by default"
        );
        p.vending = Some(S3Vending::Sts);
        assert!(
            check_s3_profile(&p, false)
                .unwrap_err()
                .contains("read_role_arn")
        );
        p.read_role_arn = Some("arn:aws:iam::1:role/r".into());
        p.session_duration_secs = 60;
        assert!(check_s3_profile(&p, false).unwrap_err().contains("900"));
        p.session_duration_secs = 900;
        assert!(check_s3_profile(&p, false).is_ok());
        p.vending = Some(S3Vending::Static);
        assert!(
            check_s3_profile(&p, false)
                .unwrap_err()
                .contains("credential")
        );
        p.bucket = "Bad_Bucket".into();
        assert!(check_s3_profile(&p, true).unwrap_err().contains("bucket"));
    }

    #[test]
    fn s3_locations_split() {
        assert_eq!(split_s3("s3://b/k/x"), Some(("b", "k/x")));
        assert_eq!(split_s3("s3://b"), None);
        assert_eq!(split_s3("s3:///k"), None);
    }
}
