//! What a reader of a table on S3 gets: an STS session narrowed by a session policy to the
//! table's prefix (or, where the profile says so, the warehouse's static keys), presigned URLs
//! and the keys the remote signer signs with; plus which role a session assumes, the table's key
//! prefix, the client settings and the checks of an S3 profile.

use uuid::Uuid;

use super::validate::VALIDATION_READ_BYTES;
use crate::identity::Caller;
use crate::warehouse_io::{S3Io, S3StaticCredentials, WarehouseIo};
use std::collections::BTreeMap;

use std::sync::Arc;
use std::time::Duration;

use super::presign::{PresignMethod, object_key, presigned_url};
use super::s3_policy::{PolicyScope, S3Access, session_policy};
use super::signer::SigningKeys;
use super::sts::{AssumeRole, SessionError, SessionKey, StsTarget, TempCredentials};
use super::table_storage::{SIGNER_TABLE, TableEndpoints};
use super::validate::{Steps, Validation};
use super::{
    StorageVendor, TableAccess, VendedCredential, Vending, inside_warehouse, refused, unavailable,
};
use super::{VendingError, VendingResult};
use crate::catalog::Warehouse;
use crate::domain::CredentialKind;
use crate::domain::access::DataAccess;
use crate::domain::storage::{S3Profile, S3Vending, StorageProfile};
use crate::store::now_ms;
use bytes::Bytes;

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
    wh: &Warehouse,
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
impl StorageVendor for S3Profile {
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
    async fn vend(
        &self,
        vending: &Vending,
        t: &TableAccess<'_>,
    ) -> VendingResult<VendedCredential> {
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
                        t.warehouse.record.name
                    ))
                })?;
                vending.warn_unscoped(t.warehouse, "the warehouse's static keys");
                config.insert("s3.access-key-id".into(), keys.access_key_id.clone());
                config.insert(
                    "s3.secret-access-key".into(),
                    keys.secret_access_key.clone(),
                );
            }
            S3Vending::Sts => {
                let creds = vending
                    .sts_session(t, profile, &bucket, &key_prefix)
                    .await?;
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
                tracing::warn!(warehouse = %wh.record.name, "{w}");
                warnings.push(w.to_owned());
            }
            S3Vending::Sts => {
                validate_sts(check.vending, check.caller, wh, check.tenant, steps).await;
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

    /// A SigV4 presigned URL, signed with the caller's table-scoped session where the warehouse
    /// has a role (the URL never outlives it), else with the warehouse's keys.
    async fn presign(
        &self,
        vending: &Vending,
        t: &TableAccess<'_>,
        file: &str,
        method: PresignMethod,
    ) -> VendingResult<(String, Duration)> {
        table_key_prefix(t.warehouse, self, t.location)?;
        let key = object_key(file, t.location).map_err(refused)?;
        let (keys, keys_expire) = vending.signing_keys(t).await?;
        let mut ttl = vending.options.presign_ttl;
        if let Some(expires) = keys_expire {
            ttl = ttl.min(Duration::from_millis((expires - now_ms()).max(1) as u64));
        }
        let url = presigned_url(self, &key, method, &keys, ttl).map_err(VendingError::invalid)?;
        Ok((url, ttl))
    }
}

impl Vending {
    /// The keys that sign for a caller on a table: its table-scoped STS session when the
    /// warehouse has a role, else the warehouse's own keys (the request itself is checked to stay
    /// in the table). Also returns when the keys expire, if they do.
    pub(super) async fn signing_keys(
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
                t.warehouse.record.name
            ))),
        }
    }

    /// The temporary keys of the caller's session for a table (used by presign and the signer).
    pub(super) async fn table_session(
        &self,
        t: &TableAccess<'_>,
    ) -> VendingResult<Option<Arc<TempCredentials>>> {
        let StorageProfile::S3(profile) = &t.warehouse.record.storage else {
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
                t.warehouse.record.name
            ))
        })?;
        let key = SessionKey {
            warehouse: t.warehouse.record.id,
            profile: super::fingerprint(profile, t.warehouse.secret_fingerprint),
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
            let name = super::sts::session_name(t.tenant_name, &t.caller.name);
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
                SessionError::Misconfigured(m) => {
                    tracing::error!(warehouse = %t.warehouse.record.name, error = %m, "STS refuses the server's role");
                    VendingError::Misconfigured(format!(
                        "warehouse '{}': the token service (STS) refuses the server's role; an operator must fix the warehouse's role or its trust policy (the server log has the details)",
                        t.warehouse.record.name
                    ))
                }
                // The detail (the SDK's error chain, the STS address, the role) goes to the log;
                // the client learns only that the token service failed.
                SessionError::Unavailable(m) => {
                    tracing::error!(warehouse = %t.warehouse.record.name, error = %m, "STS session failed");
                    unavailable(format!(
                        "warehouse '{}': the token service (STS) failed or did not answer in time; the server log has the details",
                        t.warehouse.record.name
                    ))
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

/// Assumes the roles the way vending does, for a sample table, and checks what the sessions can
/// and cannot do: read-write inside the sample table, nothing beside it, no writes when read-only.
pub(super) async fn validate_sts(
    vending: &Vending,
    caller: &Caller,
    wh: &Warehouse,
    tenant: &str,
    steps: &mut Steps,
) {
    let StorageProfile::S3(profile) = &wh.record.storage else {
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
        let session = vending
            .table_session(&table)
            .await
            .map_err(|e| e.to_string())
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
            &vending.options.timeouts,
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
        } else if let Err(e) = wh.io.write(&inside, body.clone()).await {
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
                    Ok(()) if wh.io.read(&inside, VALIDATION_READ_BYTES).await.is_err() => Err(
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
                    let _ = wh.io.delete(&beside).await;
                    Err("the session wrote outside its table: session policies are not enforced by this store".into())
                }
                Err(_) => Ok(()),
            },
        );
        let _ = wh.io.delete(&inside).await;
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
