//! Storage credentials: sealed under the master key when given by value, or references resolved at
//! each use (`env:NAME` for names on the configured allow-list, `file:/path`). Errors name the
//! credential and the reference, never the value.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use super::MasterKey;
use crate::store::{CredentialValue, StorageCredentialRecord};

/// The kinds of storage credential and the fields each must have.
pub const KINDS: &[(&str, &[&str])] = &[("s3-access-key", &["access_key_id", "secret_access_key"])];

/// Seals, checks and resolves storage credentials.
pub struct CredentialResolver {
    master: Arc<MasterKey>,
    env_allowlist: Vec<String>,
}

fn purpose(tenant: Uuid, name: &str) -> String {
    format!("floe-storage-credential:{tenant}:{name}")
}

/// The fields a kind needs, or an error naming the kind.
fn required_fields(kind: &str) -> Result<&'static [&'static str], String> {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, f)| *f)
        .ok_or_else(|| {
            format!("storage credential kind '{kind}' is not supported (supported: s3-access-key)")
        })
}

/// Checks that `kind` is a supported kind of credential.
pub fn check_kind(kind: &str) -> Result<(), String> {
    required_fields(kind).map(|_| ())
}

/// Checks that `fields` has every field `kind` needs, non-empty, and nothing else.
pub fn check_fields(kind: &str, fields: &BTreeMap<String, String>) -> Result<(), String> {
    let required = required_fields(kind)?;
    for f in required {
        if fields.get(*f).is_none_or(|v| v.is_empty()) {
            return Err(format!("a {kind} credential needs a non-empty '{f}'"));
        }
    }
    if let Some(extra) = fields.keys().find(|k| !required.contains(&k.as_str())) {
        return Err(format!("a {kind} credential has no field '{extra}'"));
    }
    Ok(())
}

impl CredentialResolver {
    /// A resolver sealing with `master`; `env:` references may name only `env_allowlist`.
    pub fn new(master: Arc<MasterKey>, env_allowlist: Vec<String>) -> Self {
        Self {
            master,
            env_allowlist,
        }
    }

    /// Seals a credential's fields for storage.
    pub fn seal(
        &self,
        tenant: Uuid,
        name: &str,
        fields: &BTreeMap<String, String>,
    ) -> CredentialValue {
        let json = serde_json::to_vec(fields).expect("string map serializes");
        CredentialValue::Sealed {
            sealed: self.master.seal(&json, &purpose(tenant, name)),
        }
    }

    /// Checks a reference's form (not its value, which is read at use).
    pub fn check_reference(&self, reference: &str) -> Result<(), String> {
        match reference.split_once(':') {
            Some(("env", name)) if self.env_allowlist.iter().any(|a| a == name) => Ok(()),
            Some(("env", name)) => Err(format!(
                "environment variable '{name}' is not on the allow-list (setting secret_env_allowlist)"
            )),
            Some(("file", path)) if path.starts_with('/') => Ok(()),
            Some(("aws-secretsmanager" | "aws-ssm", _)) => Err(format!(
                "reference '{reference}': AWS Secrets Manager and SSM references are not supported yet"
            )),
            _ => Err(format!(
                "reference '{reference}' is not env:NAME or file:/absolute/path"
            )),
        }
    }

    /// The credential's fields, read now (references are resolved at every call).
    pub fn resolve(
        &self,
        record: &StorageCredentialRecord,
    ) -> Result<BTreeMap<String, String>, String> {
        let name = &record.name;
        let json = match &record.value {
            CredentialValue::Sealed { sealed } => self
                .master
                .open(sealed, &purpose(record.tenant_id, name))
                .map_err(|e| format!("storage credential '{name}': {e}"))?,
            CredentialValue::Reference { reference } => {
                self.check_reference(reference)
                    .map_err(|e| format!("storage credential '{name}': {e}"))?;
                let value = match reference.split_once(':') {
                    Some(("env", var)) => std::env::var(var).unwrap_or_default().into_bytes(),
                    Some(("file", path)) => std::fs::read(path).map_err(|e| {
                        format!(
                            "storage credential '{name}': cannot read {reference}: {}",
                            e.kind()
                        )
                    })?,
                    _ => unreachable!("checked above"),
                };
                if value.iter().all(u8::is_ascii_whitespace) {
                    return Err(format!("storage credential '{name}': {reference} is empty"));
                }
                value
            }
        };
        let fields: BTreeMap<String, String> = serde_json::from_slice(&json).map_err(|_| {
            format!("storage credential '{name}': the value is not a JSON object of strings")
        })?;
        check_fields(&record.kind, &fields)
            .map_err(|e| format!("storage credential '{name}': {e}"))?;
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(value: CredentialValue) -> StorageCredentialRecord {
        StorageCredentialRecord {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            name: "lake".into(),
            kind: "s3-access-key".into(),
            value,
            created_at_ms: 0,
        }
    }

    fn fields() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("access_key_id".into(), "AKIA1".into()),
            ("secret_access_key".into(), "s3cr3t-value".into()),
        ])
    }

    #[test]
    fn sealed_credentials_resolve_and_never_show_their_value() {
        let r = CredentialResolver::new(Arc::new(MasterKey::from_bytes(&[3; 32])), vec![]);
        let sealed = r.seal(Uuid::nil(), "lake", &fields());
        assert!(!format!("{sealed:?}").contains("s3cr3t-value"));
        assert_eq!(r.resolve(&record(sealed)).unwrap(), fields());
    }

    #[test]
    fn references_fail_closed_and_name_the_reference_not_the_value() {
        let r = CredentialResolver::new(
            Arc::new(MasterKey::from_bytes(&[3; 32])),
            vec!["FLOE_TEST_CRED".into()],
        );
        assert!(
            r.check_reference("env:HOME").is_err(),
            "not on the allow-list"
        );
        assert!(r.check_reference("env:FLOE_TEST_CRED").is_ok());
        assert!(r.check_reference("file:relative").is_err());
        assert!(r.check_reference("aws-ssm:/x").is_err());
        let missing = r
            .resolve(&record(CredentialValue::Reference {
                reference: "env:FLOE_TEST_CRED".into(),
            }))
            .unwrap_err();
        assert!(
            missing.contains("env:FLOE_TEST_CRED") && missing.contains("empty"),
            "{missing}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cred.json");
        std::fs::write(
            &path,
            r#"{"access_key_id": "AKIA1", "secret_access_key": "s3cr3t-value"}"#,
        )
        .unwrap();
        let reference = format!("file:{}", path.display());
        assert_eq!(
            r.resolve(&record(CredentialValue::Reference {
                reference: reference.clone()
            }))
            .unwrap(),
            fields()
        );
        std::fs::write(&path, r#"{"access_key_id": "AKIA1"}"#).unwrap();
        let incomplete = r
            .resolve(&record(CredentialValue::Reference { reference }))
            .unwrap_err();
        assert!(
            incomplete.contains("secret_access_key") && !incomplete.contains("AKIA1"),
            "{incomplete}"
        );
    }
}
