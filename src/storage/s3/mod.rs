//! S3 (and S3-compatible stores such as SeaweedFS): the profile and its rules, the server's own
//! IO ([`io`]), and what a reader of a table gets: an STS session narrowed by a session policy to
//! the table's prefix ([`sts`], [`policy`]) or, where the profile says so, the warehouse's static
//! keys; presigned URLs ([`presign`]) and the remote signer ([`signer`]); and which role a session
//! assumes, the table's key prefix, the client settings and validation with real sessions.

pub mod io;
pub mod policy;
pub mod presign;
pub mod signer;
pub mod sts;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use self::io::{S3Io, S3StaticCredentials};
use self::policy::{PolicyScope, S3Access, session_policy};
use self::presign::{object_key, presigned_url};
use self::signer::{CheckedRequest, SigningKeys, check_request, sign_headers};
use self::sts::{AssumeRole, SessionError, SessionKey, StsTarget, TempCredentials};
use super::access::{
    PresignMethod, RemoteSign, Requester, SIGNER_TABLE, TableAccess, TableEndpoints,
    VendedCredential, WarehouseStorage, inside_warehouse,
};
use super::fields::{Field, optional, required};
use super::validation::{Steps, VALIDATION_READ_BYTES, Validation, failure};
use super::{
    IoError, Issuer, ServerAccessParts, StorageKind, StorageProfile, StorageSecret, VendingError,
    VendingResult, WarehouseIo, refused, unavailable,
};
use crate::domain::CredentialKind;
use crate::domain::access::DataAccess;
use crate::domain::now_ms;
use crate::outbound::{CallError, OutboundTimeouts};

/// How clients get access to the files of an S3 warehouse's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum S3Vending {
    /// Table-scoped STS sessions (AssumeRole with a session policy naming the table's prefix).
    Sts,
    /// The warehouse's own keys, unscoped: every client reaches the whole bucket.
    Static,
    /// No credentials are handed out; clients bring their own storage access.
    Off,
}

/// An S3 warehouse: where it is, how the server reaches it, and how clients get access.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct S3Profile {
    pub bucket: String,
    /// Keys of the warehouse start with this (no leading or trailing `/`).
    #[serde(default)]
    pub key_prefix: String,
    pub region: String,
    /// S3 endpoint for S3-compatible stores (`http://host:port`); AWS when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), as most S3-compatible stores need.
    #[serde(default)]
    pub path_style: bool,
    /// STS endpoint; AWS's regional STS when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_endpoint: Option<String>,
    /// Role assumed for read access (and for write access when no write role is set and
    /// `write_uses_read_role` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_role_arn: Option<String>,
    /// Role assumed for read-write access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_role_arn: Option<String>,
    /// Without a write role, assume the read role for read-write sessions too. When false and no
    /// write role is set, writers get read-only credentials.
    #[serde(default)]
    pub write_uses_read_role: bool,
    /// `ExternalId` sent with AssumeRole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Lifetime of vended sessions, 900..=43200 seconds.
    #[serde(default = "default_session_secs")]
    pub session_duration_secs: u32,
    /// KMS key the bucket encrypts with; sessions may use it (decrypt; encrypt for writers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// Also send `SourceIdentity` (the principal) with AssumeRole; the role's trust policy must
    /// allow `sts:SetSourceIdentity`.
    #[serde(default)]
    pub source_identity: bool,
    /// `sts` (the default when a read role is set), `static`, or `off` (the default otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vending: Option<S3Vending>,
    /// Offer remote signing (`s3.remote-signing-enabled`) to clients that ask for it.
    #[serde(default)]
    pub remote_signing: bool,
    /// Whether the remote signer signs batch deletes (`POST ?delete`). It checks every key of the
    /// body and signs that body's SHA-256, which binds the body only where the storage verifies
    /// `x-amz-content-sha256` (AWS S3 does; SeaweedFS does not: any body could be sent with the
    /// signature). Unset: on for AWS (no `endpoint`), off for any other endpoint; clients then
    /// delete one object at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_batch_deletes: Option<bool>,
}

fn default_session_secs() -> u32 {
    3600
}

impl S3Profile {
    /// The vending mode in force: as set, else `sts` with a read role and `off` without.
    pub fn vending_mode(&self) -> S3Vending {
        self.vending.unwrap_or(if self.read_role_arn.is_some() {
            S3Vending::Sts
        } else {
            S3Vending::Off
        })
    }

    /// A profile for `bucket` with nothing but its place set.
    pub fn new(bucket: &str, key_prefix: &str, region: &str) -> Self {
        Self {
            bucket: bucket.to_owned(),
            key_prefix: key_prefix.trim_matches('/').to_owned(),
            region: region.to_owned(),
            endpoint: None,
            path_style: false,
            sts_endpoint: None,
            read_role_arn: None,
            write_role_arn: None,
            write_uses_read_role: false,
            external_id: None,
            session_duration_secs: default_session_secs(),
            kms_key_arn: None,
            source_identity: false,
            vending: None,
            remote_signing: false,
            sign_batch_deletes: None,
        }
    }

    /// Whether the remote signer signs batch deletes: as set, else only on AWS S3, which
    /// verifies a signed payload hash against the body it receives.
    pub fn signs_batch_deletes(&self) -> bool {
        self.sign_batch_deletes.unwrap_or(self.endpoint.is_none())
    }
}

pub(crate) const ACCESS_KEY_FIELDS: &[Field] = &[
    required("access_key_id", &["aws_access_key_id", "key_id"]),
    required(
        "secret_access_key",
        &["aws_secret_access_key", "secret_key", "secret"],
    ),
    optional("session_token"),
    optional("region"),
];

/// The role and the access a session gets: writers use the write role, or the read role when the
/// profile allows it; otherwise they get read-only credentials. Never wider than granted.
pub fn role_for(profile: &S3Profile, access: DataAccess) -> Option<(&str, S3Access)> {
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
pub fn table_key_prefix(
    wh: WarehouseStorage<'_>,
    profile: &S3Profile,
    location: &str,
) -> VendingResult<(String, String)> {
    let location = inside_warehouse(wh, location)?;
    let (bucket, key) = split_s3(&location)
        .ok_or_else(|| VendingError::invalid(format!("{location} is not an s3:// location")))?;
    if bucket != profile.bucket {
        return Err(VendingError::refused(format!(
            "table location {location} is not in the warehouse's bucket"
        )));
    }
    Ok((bucket.to_owned(), format!("{key}/")))
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

#[async_trait::async_trait]
impl StorageKind for S3Profile {
    fn root_location(&self) -> String {
        super::join_root("s3", &self.bucket, &self.key_prefix)
    }

    fn tidied(&self) -> StorageProfile {
        StorageProfile::S3(Self {
            key_prefix: self.key_prefix.trim_matches('/').to_owned(),
            ..self.clone()
        })
    }

    /// The server's S3 client, with the warehouse's keys or else the AWS default chain.
    async fn open(
        &self,
        secret: Option<&StorageSecret>,
        _warehouse: &str,
        timeouts: &OutboundTimeouts,
    ) -> Result<ServerAccessParts, IoError> {
        let keys = match secret {
            Some(StorageSecret::S3(k)) => Some(k.clone()),
            _ => None,
        };
        let io = S3Io::new(
            &self.bucket,
            &self.region,
            self.endpoint.as_deref(),
            self.path_style,
            keys,
            timeouts,
        )
        .await;
        Ok((Arc::new(io), None))
    }

    fn credential_kinds(&self) -> &'static [CredentialKind] {
        &[CredentialKind::S3AccessKey]
    }

    fn check(&self, has_credential: bool) -> Result<(), String> {
        check_s3_profile(self, has_credential)
    }

    fn client_config(&self) -> BTreeMap<String, String> {
        s3_client_config(self)
    }

    fn vends(&self) -> bool {
        self.vending_mode() != S3Vending::Off
    }

    /// An STS session narrowed by a session policy to the table's prefix, or (where the profile
    /// says so, unscoped and logged) the warehouse's own static keys.
    async fn vend(&self, issuer: &Issuer, t: &TableAccess<'_>) -> VendingResult<VendedCredential> {
        let profile = self;
        let (bucket, key_prefix) = table_key_prefix(t.warehouse, profile, t.location)?;
        let mut config = s3_client_config(profile);
        let mut expires_at_ms = None;
        match profile.vending_mode() {
            S3Vending::Off => unreachable!("checked by the caller"),
            S3Vending::Static => {
                let keys = t.warehouse.s3_keys().ok_or_else(|| {
                    unavailable(format!(
                        "warehouse '{}' vends static keys but has no storage credential",
                        t.warehouse.name
                    ))
                })?;
                issuer.warn_unscoped(t.warehouse, "the warehouse's static keys");
                config.insert("s3.access-key-id".into(), keys.access_key_id.clone());
                config.insert(
                    "s3.secret-access-key".into(),
                    keys.secret_access_key.clone(),
                );
            }
            S3Vending::Sts => {
                let creds = issuer.sts_session(t, profile, &bucket, &key_prefix).await?;
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

    /// With STS vending, assumes the roles for a sample table and checks what the sessions can
    /// and cannot do; static keys and no vending are warned of.
    async fn validate(
        &self,
        check: &Validation<'_>,
        steps: &mut Steps,
        warnings: &mut Vec<String>,
    ) {
        let wh = check.warehouse;
        match self.vending_mode() {
            S3Vending::Static => {
                let w = "vending 'static' hands the warehouse's own keys to every client: UNSCOPED, they reach the whole bucket";
                tracing::warn!(warehouse = %wh.name, "{w}");
                warnings.push(w.to_owned());
            }
            S3Vending::Sts => {
                validate_sts(check.issuer, check.caller, wh, check.tenant, steps).await;
            }
            S3Vending::Off => {
                warnings.push("vending is off: clients need storage access of their own".to_owned())
            }
        }
    }

    /// The remote signer's settings, where the profile offers it: clients send every S3 request
    /// to Floe's per-table sign route, which checks it stays inside the table.
    fn remote_signing(
        &self,
        config: &mut BTreeMap<String, String>,
        endpoints: &TableEndpoints,
    ) -> Option<Bytes> {
        if !self.remote_signing {
            return None;
        }
        config.insert("s3.remote-signing-enabled".into(), "true".into());
        config.insert("s3.signer.uri".into(), endpoints.signer_uri.clone());
        config.insert(
            "s3.signer.endpoint".into(),
            endpoints.signer_endpoint.clone(),
        );
        config.insert("s3.signer".into(), "S3V4RestSigner".into());
        // Clients that post to the global `/v1/aws/s3/sign` pass these back: they name the table.
        let scope = serde_json::json!({"properties": {SIGNER_TABLE: endpoints.signer_scope}});
        Some(Bytes::from(scope.to_string()))
    }

    /// Checks a request the remote signer is asked to sign: the warehouse offers signing, the
    /// provider and region are its own, and every key it touches lies inside the table. Says
    /// whether it reads or writes (a write needs read-write access, which the caller checks), and
    /// what [`StorageKind::sign`] may then sign of it.
    fn check_sign(
        &self,
        _issuer: &Issuer,
        t: &TableAccess<'_>,
        sign: &RemoteSign,
    ) -> VendingResult<CheckedRequest> {
        let wh = t.warehouse;
        if !self.remote_signing {
            return Err(refused(format!(
                "warehouse '{}' does not offer remote signing",
                wh.name
            )));
        }
        if sign.provider.is_some_and(|p| p != "s3") {
            return Err(VendingError::invalid("only the s3 provider is signed"));
        }
        if sign.region != self.region {
            return Err(VendingError::invalid(format!(
                "region '{}' is not the warehouse's region",
                sign.region
            )));
        }
        let (_, table_key_prefix) = table_key_prefix(wh, self, t.location)?;
        check_request(self, &sign.request, &table_key_prefix).map_err(|e| {
            tracing::warn!(warehouse = %wh.name, principal = %t.caller.name, error = %e, "refused to sign a request");
            refused(e)
        })
    }

    /// Signs a request [`StorageKind::check_sign`] accepted, exactly as it was checked.
    async fn sign(
        &self,
        issuer: &Issuer,
        t: &TableAccess<'_>,
        sign: &RemoteSign<'_>,
        checked: &CheckedRequest,
    ) -> VendingResult<(String, BTreeMap<String, Vec<String>>)> {
        let (keys, _) = issuer.signing_keys(t).await?;
        sign_headers(&sign.request, checked, &self.region, &keys).map_err(VendingError::invalid)
    }

    /// A SigV4 presigned URL, signed with the caller's table-scoped session where the warehouse
    /// has a role (the URL never outlives it), else with the warehouse's keys.
    async fn presign(
        &self,
        issuer: &Issuer,
        t: &TableAccess<'_>,
        file: &str,
        method: PresignMethod,
    ) -> VendingResult<(String, Duration)> {
        table_key_prefix(t.warehouse, self, t.location)?;
        let key = object_key(file, t.location).map_err(refused)?;
        let (keys, keys_expire) = issuer.signing_keys(t).await?;
        let mut ttl = issuer.options.presign_ttl;
        if let Some(expires) = keys_expire {
            ttl = ttl.min(Duration::from_millis((expires - now_ms()).max(1) as u64));
        }
        let url = presigned_url(self, &key, method, &keys, ttl).map_err(VendingError::invalid)?;
        Ok((url, ttl))
    }
}

impl Issuer {
    /// The keys that sign for a caller on a table: its table-scoped STS session when the
    /// warehouse has a role, else the warehouse's own keys (the request itself is checked to stay
    /// in the table). Also returns when the keys expire, if they do.
    pub(crate) async fn signing_keys(
        &self,
        t: &TableAccess<'_>,
    ) -> VendingResult<(SigningKeys, Option<i64>)> {
        if let Some(session) = self.table_session(t).await? {
            let keys = SigningKeys {
                access_key_id: session.access_key_id.clone(),
                secret_access_key: session.secret_access_key.clone(),
                session_token: Some(session.session_token.clone()),
            };
            return Ok((keys, Some(session.expires_at_ms)));
        }
        match t.warehouse.s3_keys() {
            Some(k) => Ok((
                SigningKeys {
                    access_key_id: k.access_key_id.clone(),
                    secret_access_key: k.secret_access_key.clone(),
                    session_token: k.session_token.clone(),
                },
                None,
            )),
            None => Err(VendingError::unavailable(format!(
                "warehouse '{}' has neither a role nor keys to sign with",
                t.warehouse.name
            ))),
        }
    }

    /// The temporary keys of the caller's session for a table (used by presign and the signer).
    pub(crate) async fn table_session(
        &self,
        t: &TableAccess<'_>,
    ) -> VendingResult<Option<Arc<TempCredentials>>> {
        let StorageProfile::S3(profile) = &t.warehouse.profile else {
            return Ok(None);
        };
        if t.access == DataAccess::None || profile.read_role_arn.is_none() {
            return Ok(None);
        }
        let (bucket, key_prefix) = table_key_prefix(t.warehouse, profile, t.location)?;
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
    ) -> VendingResult<Arc<TempCredentials>> {
        let (role, access) = role_for(profile, t.access).ok_or_else(|| {
            unavailable(format!(
                "warehouse '{}' has no read_role_arn to vend STS sessions with",
                t.warehouse.name
            ))
        })?;
        let key = SessionKey {
            warehouse: t.warehouse.id,
            profile: super::fingerprint(profile, t.warehouse.secret_fingerprint()),
            bucket: bucket.to_owned(),
            key_prefix: key_prefix.to_owned(),
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
                key_prefix,
                access,
                kms_key_arn: profile.kms_key_arn.as_deref(),
            })
            .map_err(SessionError::Refused)?;
            let name = sts::session_name(t.tenant_name, t.caller.name);
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
                SessionError::Refused(m) => VendingError::invalid(m),
                // The detail (the SDK's error chain, the STS address, the role) is the source, for
                // the log; the client learns only whether the token service failed or refuses.
                SessionError::Misconfigured(m) => VendingError::Misconfigured(
                    format!(
                        "warehouse '{}': the token service (STS) refuses the server's role; an operator must fix the warehouse's role or its trust policy (the server log has the details)",
                        t.warehouse.name
                    ),
                    Some(Arc::new(CallError::Refused(m))),
                ),
                SessionError::Unavailable(m) => VendingError::Unavailable(
                    format!(
                        "warehouse '{}': the token service (STS) failed or did not answer in time; the server log has the details",
                        t.warehouse.name
                    ),
                    Some(Arc::new(CallError::Transient(m))),
                ),
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

/// Assumes the roles the way vending does, for a sample table, and checks what the sessions can
/// and cannot do: read-write inside the sample table, nothing beside it, no writes when read-only.
pub(super) async fn validate_sts(
    issuer: &Issuer,
    caller: Requester<'_>,
    wh: WarehouseStorage<'_>,
    tenant: &str,
    steps: &mut Steps,
) {
    let StorageProfile::S3(profile) = &wh.profile else {
        return;
    };
    let sample = format!("{}/.floe-validate/{}", wh.root(), Uuid::now_v7());
    let body = Bytes::from_static(b"floe vended-session probe");
    for access in [DataAccess::ReadWrite, DataAccess::Read] {
        let label = if access == DataAccess::Read {
            "read-only"
        } else {
            "read-write"
        };
        let table = TableAccess {
            warehouse: wh,
            location: &sample,
            access,
            caller,
            tenant_name: tenant,
            refresh_endpoint: String::new(),
        };
        let session = issuer
            .table_session(&table)
            .await
            .map_err(|e| failure(&e))
            .and_then(|s| s.ok_or_else(|| "no session".to_owned()));
        let session = match session {
            Ok(s) => {
                steps.record(
                    &format!("assume role for a {label} session on a sample table"),
                    Ok(()),
                );
                s
            }
            Err(e) => {
                steps.record(
                    &format!("assume role for a {label} session on a sample table"),
                    Err(e),
                );
                let needs = format!("the {label} session could not be had");
                let dependents: &[&str] = if access == DataAccess::ReadWrite {
                    &[
                        "write a file in the sample table with the session",
                        "read it back with the session",
                        "the read-write session cannot write beside the sample table",
                    ]
                } else {
                    &[
                        "read a file of the sample table with the read-only session",
                        "the read-only session cannot delete it",
                        "the read-only session cannot write beside the sample table",
                    ]
                };
                steps.not_run(dependents, &needs);
                continue;
            }
        };
        let io = S3Io::new(
            &profile.bucket,
            &profile.region,
            profile.endpoint.as_deref(),
            profile.path_style,
            Some(S3StaticCredentials {
                access_key_id: session.access_key_id.clone(),
                secret_access_key: session.secret_access_key.clone(),
                session_token: Some(session.session_token.clone()),
            }),
            &issuer.options.timeouts,
        )
        .await;
        let inside = format!("{sample}/probe-{label}");
        let beside = format!("{sample}-beside/probe-{label}");
        if access == DataAccess::ReadWrite {
            let wrote = steps.record(
                "write a file in the sample table with the session",
                io.write(&inside, body.clone())
                    .await
                    .map_err(|e| e.to_string()),
            );
            if !wrote {
                let why = "the session could not write the file";
                steps.not_run(&["read it back with the session"], why);
            } else {
                steps.record(
                    "read it back with the session",
                    io.read(&inside, VALIDATION_READ_BYTES)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                );
            }
        } else if let Err(e) = wh.io().write(&inside, body.clone()).await {
            let why = format!("the server could not write a file for it to read: {e}");
            steps.not_run(
                &[
                    "read a file of the sample table with the read-only session",
                    "the read-only session cannot delete it",
                ],
                &why,
            );
        } else {
            steps.record(
                "read a file of the sample table with the read-only session",
                io.read(&inside, VALIDATION_READ_BYTES)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            );
            steps.record(
                "the read-only session cannot delete it",
                match io.delete(&inside).await {
                    Ok(()) if wh.io().read(&inside, VALIDATION_READ_BYTES).await.is_err() => Err(
                        "a read-only session deleted a file: the role's policy is not narrowed"
                            .into(),
                    ),
                    _ => Ok(()),
                },
            );
        }
        steps.record(
            &format!("the {label} session cannot write beside the sample table"),
            match io.write(&beside, body.clone()).await {
                Ok(()) => {
                    let _ = wh.io().delete(&beside).await;
                    Err("the session wrote outside its table: session policies are not enforced by this store".into())
                }
                Err(_) => Ok(()),
            },
        );
        let _ = wh.io().delete(&inside).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
