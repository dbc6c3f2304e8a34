//! What a caller gets to reach one table's files: the one place that decides it, for every storage
//! kind. The API layer parses the request, authorizes it, and calls one of these:
//! - [`Vending::table_storage`]: the storage part of a table answer (plain settings, vended
//!   credentials, or the remote signer's settings), from the delegation asked for and the caller's
//!   data access;
//! - [`Vending::refresh_credentials`]: the `/credentials` answer;
//! - [`Vending::presign`]: a URL for one file inside the table (S3, ADLS, GCS);
//! - [`Vending::check_sign`] then [`Vending::sign`]: the remote signer.
//!
//! Must not touch: HTTP types, the store or grants (the caller's data access comes in decided).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::presign::{PresignMethod, file_inside, object_key, presigned_url};
use super::signer::{Needs, SignRequest, SigningKeys, check_request, sign_headers};
use super::{Delegation, TableAccess, VendedCredential, Vending, client_config, table_prefix};
use crate::authz::DataAccess;
use crate::catalog::{CatalogError, CatalogResult, ErrorType, Warehouse};
use crate::store::{S3Profile, StorageProfile, now_ms};

/// Where a table's storage routes are, as the API serves them (URL shapes are the API's).
#[derive(Debug, Clone)]
pub struct TableEndpoints {
    /// The server's public URL (`s3.signer.uri`).
    pub signer_uri: String,
    /// The table's sign path below it (`s3.signer.endpoint`).
    pub signer_endpoint: String,
    /// What clients of the global `/v1/aws/s3/sign` pass back to name the table.
    pub signer_scope: String,
}

/// The `RemoteSignRequest.properties` key that names the table a global sign request is for.
pub const SIGNER_TABLE: &str = "floe.table";

/// The storage part of a table answer, as JSON.
pub struct TableStorage {
    /// The `config` object.
    pub config_json: Bytes,
    /// The one `storage-credentials` entry, if any.
    pub credential_json: Option<Bytes>,
    /// The `remote-signing-config` object, when the client is to sign remotely.
    pub remote_signing_json: Option<Bytes>,
}

impl TableStorage {
    /// The warehouse's plain client settings: no credentials, no signer.
    pub fn plain(wh: &Warehouse) -> Self {
        Self {
            config_json: Bytes::from(
                serde_json::to_vec(&client_config(&wh.record.storage)).expect("maps serialize"),
            ),
            credential_json: None,
            remote_signing_json: None,
        }
    }
}

/// What the storage part of a table answer depends on: the delegation the client asked for and
/// the caller's data access (nothing for a local warehouse, which hands out neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessAsked {
    delegation: Delegation,
    data: DataAccess,
}

impl AccessAsked {
    /// Nothing asked: plain settings.
    pub const PLAIN: AccessAsked = AccessAsked {
        delegation: Delegation {
            vended_credentials: false,
            remote_signing: false,
        },
        data: DataAccess::None,
    };

    /// What `delegation` asks of `wh` for a caller with `data` access.
    pub fn new(wh: &Warehouse, delegation: Delegation, data: DataAccess) -> Self {
        if matches!(wh.record.storage, StorageProfile::Local { .. }) || !delegation.any() {
            return Self::PLAIN;
        }
        Self { delegation, data }
    }

    /// The caller's data access this was decided for.
    pub fn data(&self) -> DataAccess {
        self.data
    }

    /// Whether the answer depends on the caller's data access (so it must be looked up).
    pub fn needs_data_access(wh: &Warehouse, delegation: Delegation) -> bool {
        !matches!(wh.record.storage, StorageProfile::Local { .. }) && delegation.any()
    }

    /// `tag` (a quoted ETag) made specific to this access, so a client that asks with other
    /// delegation or holds other grants never gets a 304 for an answer it was not given.
    pub fn etag(&self, tag: &str) -> String {
        let mode = match (
            self.delegation.vended_credentials,
            self.delegation.remote_signing,
        ) {
            (false, false) => 'p',
            (true, false) => 'v',
            (false, true) => 's',
            (true, true) => 'b',
        };
        let data = match self.data {
            DataAccess::None => 'n',
            DataAccess::Read => 'r',
            DataAccess::ReadWrite => 'w',
        };
        format!("{}-{mode}{data}\"", tag.trim_end_matches('"'))
    }
}

/// A presigned URL for one file.
pub struct Presigned {
    pub url: String,
    /// When the URL stops working, milliseconds since the epoch.
    pub expires_at_ms: i64,
}

/// An S3 request a client wants signed, with what the spec's `RemoteSignRequest` says of it.
pub struct RemoteSign<'a> {
    pub request: SignRequest<'a>,
    pub region: &'a str,
    pub provider: Option<&'a str>,
}

fn refused(message: impl Into<String>) -> CatalogError {
    CatalogError::new(ErrorType::Forbidden, message)
}

fn not_s3(wh: &Warehouse) -> CatalogError {
    CatalogError::bad_request(format!(
        "warehouse '{}' is not on S3: nothing to presign or sign",
        wh.record.name
    ))
}

fn s3_only(wh: &Warehouse) -> CatalogResult<&S3Profile> {
    match &wh.record.storage {
        StorageProfile::S3(p) => Ok(p),
        _ => Err(not_s3(wh)),
    }
}

impl Vending {
    /// The storage part of a table answer: vended credentials when asked for and the caller has
    /// data access, else the remote signer when the warehouse offers it and delegation was asked
    /// for, else the storage's plain settings.
    pub async fn table_storage(
        &self,
        t: &TableAccess<'_>,
        asked: AccessAsked,
        endpoints: &TableEndpoints,
    ) -> CatalogResult<TableStorage> {
        let wh = t.warehouse;
        let AccessAsked { delegation, data } = asked;
        if !delegation.any() || data == DataAccess::None {
            return Ok(TableStorage::plain(wh));
        }
        if delegation.vended_credentials
            && let Some(c) = self.credentials(t).await?
        {
            return Ok(TableStorage {
                config_json: c.config_json.clone(),
                credential_json: Some(c.credential_json.clone()),
                remote_signing_json: None,
            });
        }
        let mut config = client_config(&wh.record.storage);
        let mut remote_signing_json = None;
        if let StorageProfile::S3(profile) = &wh.record.storage
            && profile.remote_signing
        {
            config.insert("s3.remote-signing-enabled".into(), "true".into());
            config.insert("s3.signer.uri".into(), endpoints.signer_uri.clone());
            config.insert(
                "s3.signer.endpoint".into(),
                endpoints.signer_endpoint.clone(),
            );
            config.insert("s3.signer".into(), "S3V4RestSigner".into());
            // Clients that post to the global `/v1/aws/s3/sign` pass these back: they name the table.
            let scope = serde_json::json!({"properties": {SIGNER_TABLE: endpoints.signer_scope}});
            remote_signing_json = Some(Bytes::from(scope.to_string()));
        }
        Ok(TableStorage {
            config_json: Bytes::from(serde_json::to_vec(&config).expect("maps serialize")),
            credential_json: None,
            remote_signing_json,
        })
    }

    /// The `/credentials` answer: the table's one credential, or none for warehouses that vend
    /// nothing.
    pub async fn refresh_credentials(
        &self,
        t: &TableAccess<'_>,
    ) -> CatalogResult<Option<Arc<VendedCredential>>> {
        self.credentials(t).await
    }

    /// A URL that lets its holder GET or PUT one file inside the table, for a short while.
    /// `PUT` needs read-write access (the caller checks it first).
    pub async fn presign(
        &self,
        t: &TableAccess<'_>,
        file: &str,
        method: PresignMethod,
    ) -> CatalogResult<Presigned> {
        let wh = t.warehouse;
        let now = now_ms();
        let mut ttl = self.options().presign_ttl;
        let url = match &wh.record.storage {
            StorageProfile::Adls(profile) => {
                let file = file_inside(file, t.location).map_err(refused)?;
                let path = super::adls::blob_path(wh, profile, &file)?;
                super::adls::presigned_blob_url(
                    wh,
                    profile,
                    &path,
                    method == PresignMethod::Put,
                    ttl,
                )
                .await?
            }
            StorageProfile::Gcs(profile) => {
                let file = file_inside(file, t.location).map_err(refused)?;
                let (object, _) = super::gcs_object(wh, profile, &file)?;
                let account = wh.gcs_account().ok_or_else(|| {
                    CatalogError::new(
                        ErrorType::ServiceUnavailable,
                        "the warehouse has no service account to sign with",
                    )
                })?;
                let method_name = match method {
                    PresignMethod::Put => "PUT",
                    PresignMethod::Get => "GET",
                };
                super::gcs::signed_url(
                    account,
                    &profile.bucket,
                    &object,
                    method_name,
                    chrono::Utc::now(),
                    ttl.as_secs().max(1),
                )
                .await
                .map_err(|e| CatalogError::new(ErrorType::ServiceUnavailable, e))?
            }
            StorageProfile::S3(profile) => {
                table_prefix(wh, profile, t.location)?;
                let key = object_key(file, t.location).map_err(refused)?;
                let (keys, keys_expire) = self.signing_keys(t).await?;
                if let Some(expires) = keys_expire {
                    ttl = ttl.min(Duration::from_millis((expires - now).max(1) as u64));
                }
                presigned_url(profile, &key, method, &keys, ttl)
                    .map_err(CatalogError::bad_request)?
            }
            StorageProfile::Local { .. } => return Err(not_s3(wh)),
        };
        Ok(Presigned {
            url,
            expires_at_ms: now + ttl.as_millis() as i64,
        })
    }

    /// Checks a request the remote signer is asked to sign: the warehouse offers signing, the
    /// provider and region are its own, and every key it touches lies inside the table. Says
    /// whether it reads or writes (a write needs read-write access, which the caller checks).
    pub fn check_sign(&self, t: &TableAccess<'_>, sign: &RemoteSign) -> CatalogResult<Needs> {
        let wh = t.warehouse;
        let profile = s3_only(wh)?;
        if !profile.remote_signing {
            return Err(refused(format!(
                "warehouse '{}' does not offer remote signing",
                wh.record.name
            )));
        }
        if sign.provider.is_some_and(|p| p != "s3") {
            return Err(CatalogError::bad_request("only the s3 provider is signed"));
        }
        if sign.region != profile.region {
            return Err(CatalogError::bad_request(format!(
                "region '{}' is not the warehouse's region",
                sign.region
            )));
        }
        let (_, table_key_prefix) = table_prefix(wh, profile, t.location)?;
        check_request(profile, &sign.request, &table_key_prefix).map_err(|e| {
            tracing::warn!(warehouse = %wh.record.name, principal = %t.caller.name, error = %e, "refused to sign a request");
            refused(e)
        })
    }

    /// Signs a request [`Vending::check_sign`] accepted: the URI and headers to send.
    pub async fn sign(
        &self,
        t: &TableAccess<'_>,
        sign: &RemoteSign<'_>,
    ) -> CatalogResult<(String, BTreeMap<String, Vec<String>>)> {
        let profile = s3_only(t.warehouse)?;
        let (keys, _) = self.signing_keys(t).await?;
        sign_headers(&sign.request, &profile.region, &keys).map_err(CatalogError::bad_request)
    }

    /// The keys that sign for a caller on a table: its table-scoped STS session when the
    /// warehouse has a role, else the warehouse's own keys (the request itself is checked to stay
    /// in the table). Also returns when the keys expire, if they do.
    async fn signing_keys(&self, t: &TableAccess<'_>) -> CatalogResult<(SigningKeys, Option<i64>)> {
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
            None => Err(CatalogError::new(
                ErrorType::ServiceUnavailable,
                format!(
                    "warehouse '{}' has neither a role nor keys to sign with",
                    t.warehouse.record.name
                ),
            )),
        }
    }
}
