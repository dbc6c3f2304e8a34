//! What a storage kind hands out access for, and with: one table of one warehouse, for one caller
//! ([`TableAccess`]), the warehouse's storage as the server reaches it ([`WarehouseStorage`],
//! [`ServerAccess`]), the credentials handed out ([`VendedCredential`]), and the rules every kind
//! applies before making anything: a location lies inside its warehouse, a file inside its table.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::adls::auth::AzureSigner;
use super::gcs::io::GcsServiceAccount;
use super::s3::io::S3StaticCredentials;
use super::s3::signer::SignRequest;
use super::{
    StorageProfile, StorageSecret, VendingError, VendingResult, WarehouseIo, is_inside,
    normalize_location,
};
use crate::domain::access::DataAccess;

/// How the server reaches a warehouse's storage: its IO, the secret it was built with, and for
/// ADLS the SAS signer it shares with vending. Built once per warehouse and cached above.
pub struct ServerAccess {
    pub io: Arc<dyn WarehouseIo>,
    /// The server's own secret for this storage, if it has one (else, on S3, the AWS default
    /// chain).
    pub secret: Option<Arc<StorageSecret>>,
    /// Signs SAS tokens for an ADLS warehouse (shared with its IO, so keys are fetched once).
    pub azure: Option<Arc<AzureSigner>>,
    /// Says which value of the server's secret the IO was built with (a keyed hash of it, 0
    /// without one). Vending keys its caches by it, so nothing built from a rotated or
    /// re-pointed credential's old value is served after the IO is rebuilt.
    pub secret_fingerprint: u64,
}

/// One warehouse's storage, as storage kinds see it: its id and name (for cache keys and
/// messages), its profile and the server's access to it.
#[derive(Clone, Copy)]
pub struct WarehouseStorage<'a> {
    pub id: crate::domain::WarehouseId,
    pub name: &'a str,
    pub profile: &'a StorageProfile,
    pub server: &'a ServerAccess,
}

impl<'a> WarehouseStorage<'a> {
    /// The warehouse root, normalized (`s3://bucket/prefix`, `file:///dir`).
    pub fn root(&self) -> String {
        self.profile.root_location()
    }

    /// The server's IO.
    pub fn io(&self) -> &'a Arc<dyn WarehouseIo> {
        &self.server.io
    }

    /// Which value of the server's secret the IO was built with.
    pub fn secret_fingerprint(&self) -> u64 {
        self.server.secret_fingerprint
    }

    /// The server's static S3 keys, if any.
    pub fn s3_keys(&self) -> Option<&'a S3StaticCredentials> {
        match self.server.secret.as_deref() {
            Some(StorageSecret::S3(k)) => Some(k),
            _ => None,
        }
    }

    /// The Google service account, if the warehouse has one.
    pub fn gcs_account(&self) -> Option<&'a Arc<GcsServiceAccount>> {
        match self.server.secret.as_deref() {
            Some(StorageSecret::Gcs(sa)) => Some(sa),
            _ => None,
        }
    }

    /// The SAS signer of an ADLS warehouse.
    pub fn azure_signer(&self) -> Option<&'a Arc<AzureSigner>> {
        self.server.azure.as_ref()
    }
}

/// Who access is handed to: the principal's id (cache keys) and name (session names, logs).
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub principal_id: crate::domain::PrincipalId,
    pub name: &'a str,
}

/// What a caller gets for one table.
pub struct TableAccess<'a> {
    pub warehouse: WarehouseStorage<'a>,
    /// The table's location (normalized, no trailing `/`).
    pub location: &'a str,
    pub access: DataAccess,
    pub caller: Requester<'a>,
    /// Name of the caller's tenant, for session names.
    pub tenant_name: &'a str,
    /// Absolute URL of this table's `/credentials`.
    pub refresh_endpoint: String,
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
    pub(crate) fn new(
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

/// A request a client wants signed, with what the spec's `RemoteSignRequest` says of it.
pub struct RemoteSign<'a> {
    pub request: SignRequest<'a>,
    pub region: &'a str,
    pub provider: Option<&'a str>,
}

/// `location`, normalized, when it lies strictly below the warehouse root; 403 otherwise (no
/// credential or URL is ever made for anything outside its warehouse).
pub fn inside_warehouse(wh: WarehouseStorage<'_>, location: &str) -> VendingResult<String> {
    let location = normalize_location(location).map_err(VendingError::invalid)?;
    let root = wh.root();
    if location == root || !is_inside(&location, &root) {
        return Err(VendingError::refused(format!(
            "{location} is not inside warehouse '{}'; no credentials",
            wh.name
        )));
    }
    Ok(location)
}

/// What a presigned URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresignMethod {
    Get,
    Put,
}

impl PresignMethod {
    /// `GET` or `PUT` (any case).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Ok(Self::Get),
            "PUT" => Ok(Self::Put),
            other => Err(format!("method must be GET or PUT, not '{other}'")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
        }
    }
}

/// `location`, normalized, when it lies strictly inside `table_location` (both are checked after
/// normalizing: `..`, empty segments, `%` escapes and sibling prefixes are refused).
pub fn file_inside(location: &str, table_location: &str) -> Result<String, String> {
    let object = normalize_location(location)?;
    let table = normalize_location(table_location)?;
    if object == table || !is_inside(&object, &table) {
        return Err(format!(
            "{location} is not a file inside the table ({table}/)"
        ));
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
