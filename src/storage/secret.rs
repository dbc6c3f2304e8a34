//! The secrets the server reaches storage with: [`StorageSecret`], what a resolved storage
//! credential stands for, built from its fields as [`super::normalize_fields`] made them.
//! Sealing and references are [`crate::identity::storage_credentials`]'s.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::adls::auth::AzureAuth;
use super::gcs::io::GcsServiceAccount;
use super::s3::io::S3StaticCredentials;
use crate::domain::CredentialKind;
use crate::outbound::{Outbound, OutboundTimeouts};

/// The secret a warehouse's storage credential resolves to.
#[derive(Clone)]
pub enum StorageSecret {
    /// S3 access keys.
    S3(S3StaticCredentials),
    /// An Azure account key or Entra ID application.
    Azure(AzureAuth),
    /// A Google service account (its key file).
    Gcs(Arc<GcsServiceAccount>),
}

/// A storage credential's fields under their canonical names, checked against its kind's field
/// table: only [`super::normalize_fields`] makes one. It is what is sealed, what a resolved
/// credential is, and what becomes the server's [`StorageSecret`]; its values never show in
/// `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialFields {
    kind: CredentialKind,
    fields: BTreeMap<String, String>,
}

impl CredentialFields {
    pub(super) fn new(kind: CredentialKind, fields: BTreeMap<String, String>) -> Self {
        Self { kind, fields }
    }

    pub fn kind(&self) -> CredentialKind {
        self.kind
    }

    /// The value of one field, by its canonical name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The fields as the JSON object that is sealed (canonical names).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.fields).expect("string map serializes")
    }

    /// A keyed hash of the kind and the values, for telling a credential's values apart in
    /// memory (never shown or stored; the key is new in every process).
    pub fn fingerprint(&self) -> u64 {
        fingerprint_values(
            std::iter::once(("kind", self.kind.as_str()))
                .chain(self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        )
    }

    /// The secret these fields stand for.
    pub fn into_secret(self, timeouts: &OutboundTimeouts) -> Result<StorageSecret, String> {
        StorageSecret::from_fields(self.kind, self.fields, timeouts)
    }
}

/// Shows the kind and which fields are set: never their values.
impl std::fmt::Debug for CredentialFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialFields")
            .field("kind", &self.kind)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A keyed hash of named values (see [`CredentialFields::fingerprint`]).
pub fn fingerprint_values<'a>(values: impl IntoIterator<Item = (&'a str, &'a str)>) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static KEY: std::sync::LazyLock<std::collections::hash_map::RandomState> =
        std::sync::LazyLock::new(Default::default);
    let mut h = KEY.build_hasher();
    for (name, value) in values {
        h.write(name.as_bytes());
        h.write_u8(0);
        h.write(value.as_bytes());
        h.write_u8(0);
    }
    h.finish()
}

impl StorageSecret {
    /// The secret a resolved credential of `kind` stands for.
    fn from_fields(
        kind: CredentialKind,
        mut fields: BTreeMap<String, String>,
        timeouts: &OutboundTimeouts,
    ) -> Result<Self, String> {
        let mut take = |name: &str| fields.remove(name).unwrap_or_default();
        Ok(match kind {
            CredentialKind::AzureSharedKey => {
                Self::Azure(AzureAuth::AccountKey(take("account_key")))
            }
            CredentialKind::AzureClientSecret => Self::Azure(AzureAuth::ClientSecret {
                tenant_id: take("tenant_id"),
                client_id: take("client_id"),
                client_secret: take("client_secret"),
            }),
            CredentialKind::GcsServiceAccount => Self::Gcs(Arc::new(
                GcsServiceAccount::from_json(&take("service_account_json"))?
                    .with_deadline(timeouts.total(Outbound::Identity)),
            )),
            CredentialKind::S3AccessKey => {
                let (access_key_id, secret_access_key) =
                    (take("access_key_id"), take("secret_access_key"));
                Self::S3(S3StaticCredentials {
                    access_key_id,
                    secret_access_key,
                    session_token: fields.remove("session_token"),
                })
            }
        })
    }
}

impl std::fmt::Debug for StorageSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::S3(k) => k.fmt(f),
            Self::Azure(a) => a.fmt(f),
            Self::Gcs(sa) => write!(f, "Gcs({})", sa.client_email),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::normalize_fields;
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn s3_keys_are_taken_under_every_common_spelling() {
        use serde_json::json;
        let canonical = BTreeMap::from([
            ("access_key_id".to_owned(), "AKIA1".to_owned()),
            ("secret_access_key".to_owned(), "s3cr3t".to_owned()),
        ]);
        for (id, secret) in [
            ("access_key_id", "secret_access_key"),
            ("aws_access_key_id", "aws_secret_access_key"),
            ("key_id", "secret_key"),
            ("key_id", "secret"),
        ] {
            let got = normalize_fields(
                CredentialKind::S3AccessKey,
                &json!({id: "AKIA1", secret: "s3cr3t"}),
            )
            .unwrap();
            assert_eq!(got.fields, canonical, "{id}/{secret}");
        }
        let full = normalize_fields(
            CredentialKind::S3AccessKey,
            &json!({"key_id": "AKIA1", "secret": "s3cr3t", "region": "eu-west-1", "session_token": "tok"}),
        )
        .unwrap();
        assert_eq!(full.get("region"), Some("eu-west-1"));
        assert_eq!(full.get("session_token"), Some("tok"));
    }

    #[test]
    fn unknown_duplicate_and_missing_fields_are_named_without_values() {
        use serde_json::json;
        let kind = CredentialKind::S3AccessKey;
        let dup = normalize_fields(
            kind,
            &json!({"access_key_id": "AKIA1", "key_id": "AKIA2", "secret": "s3cr3t"}),
        )
        .unwrap_err();
        assert!(
            dup.contains("'access_key_id' twice") && !dup.contains("AKIA"),
            "{dup}"
        );
        let unknown = normalize_fields(
            kind,
            &json!({"key_id": "AKIA1", "secret": "s", "token": "x"}),
        )
        .unwrap_err();
        assert!(unknown.contains("no field 'token'"), "{unknown}");
        let missing = normalize_fields(kind, &json!({"key_id": "AKIA1"})).unwrap_err();
        assert!(missing.contains("'secret_access_key'"), "{missing}");
        let not_string = normalize_fields(kind, &json!({"key_id": 1, "secret": "s"})).unwrap_err();
        assert!(not_string.contains("must be a string"), "{not_string}");
    }

    #[test]
    fn a_service_account_key_file_is_taken_whole_or_under_data() {
        use serde_json::json;
        let key_file = json!({"type": "service_account", "project_id": "p", "private_key": "-----BEGIN",
                              "client_email": "sa@p.iam.gserviceaccount.com", "token_uri": "http://127.0.0.1/token"});
        let kind = CredentialKind::GcsServiceAccount;
        let whole = normalize_fields(kind, &key_file).unwrap();
        let nested = normalize_fields(kind, &json!({"data": key_file})).unwrap();
        let nested_text = normalize_fields(kind, &json!({"data": key_file.to_string()})).unwrap();
        let canonical =
            normalize_fields(kind, &json!({"service_account_json": key_file.to_string()})).unwrap();
        assert_eq!(whole, canonical);
        assert_eq!(nested, canonical);
        assert_eq!(nested_text, canonical);
        let parsed: serde_json::Value =
            serde_json::from_str(canonical.get("service_account_json").unwrap()).unwrap();
        assert_eq!(parsed, key_file);
        assert!(normalize_fields(kind, &json!({"type": "authorized_user"})).is_err());
        assert!(normalize_fields(kind, &json!({"data": key_file, "extra": "x"})).is_err());
    }
}
