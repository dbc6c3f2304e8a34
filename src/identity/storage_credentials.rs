//! Storage credentials: sealed under the master key when given by value, or references resolved at
//! each use: `env:NAME` (names on the configured allow-list), `file:/path`,
//! `aws-secretsmanager:ARN[#json.path]` and `aws-ssm:/parameter/name` (endpoints and credentials from
//! the AWS default chain, e.g. `AWS_ENDPOINT_URL`). Errors name the credential and the reference,
//! never the value.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use super::MasterKey;
use crate::store::{CredentialValue, StorageCredentialRecord};

/// The kinds of storage credential and the fields each must have.
pub const KINDS: &[(&str, &[&str])] = &[
    ("s3-access-key", &["access_key_id", "secret_access_key"]),
    ("azure-shared-key", &["account_key"]),
    (
        "azure-client-secret",
        &["tenant_id", "client_id", "client_secret"],
    ),
    ("gcs-service-account", &["service_account_json"]),
];

/// Seals, checks and resolves storage credentials.
pub struct CredentialResolver {
    master: Arc<MasterKey>,
    env_allowlist: Vec<String>,
    aws: tokio::sync::OnceCell<aws_config::SdkConfig>,
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
            format!("storage credential kind '{kind}' is not supported (supported: s3-access-key, azure-shared-key, azure-client-secret, gcs-service-account)")
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
            aws: tokio::sync::OnceCell::new(),
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
            Some(("aws-secretsmanager", id)) if !id.is_empty() && !id.starts_with('#') => Ok(()),
            Some(("aws-ssm", name)) if name.starts_with('/') || name.starts_with("arn:") => Ok(()),
            _ => Err(format!(
                "reference '{reference}' is not env:NAME, file:/absolute/path, \
                 aws-secretsmanager:ARN[#json.path] or aws-ssm:/name"
            )),
        }
    }

    /// The credential's fields, read now (references are resolved at every call).
    pub async fn resolve(
        &self,
        record: &StorageCredentialRecord,
    ) -> Result<BTreeMap<String, String>, String> {
        let name = &record.name;
        let fail = |e: String| format!("storage credential '{name}': {e}");
        let json = match &record.value {
            CredentialValue::Sealed { sealed } => self
                .master
                .open(sealed, &purpose(record.tenant_id, name))
                .map_err(|e| fail(e.to_string()))?,
            CredentialValue::Reference { reference } => {
                self.check_reference(reference).map_err(fail)?;
                let value = self.read_reference(reference).await.map_err(fail)?;
                if value.iter().all(u8::is_ascii_whitespace) {
                    return Err(fail(format!("{reference} is empty")));
                }
                value
            }
        };
        let fields: BTreeMap<String, String> = serde_json::from_slice(&json)
            .map_err(|_| fail("the value is not a JSON object of strings".into()))?;
        check_fields(&record.kind, &fields).map_err(fail)?;
        Ok(fields)
    }

    async fn read_reference(&self, reference: &str) -> Result<Vec<u8>, String> {
        match reference.split_once(':') {
            Some(("env", var)) => Ok(std::env::var(var).unwrap_or_default().into_bytes()),
            Some(("file", path)) => {
                std::fs::read(path).map_err(|e| format!("cannot read {reference}: {}", e.kind()))
            }
            Some(("aws-secretsmanager", rest)) => {
                let (id, path) = rest
                    .split_once('#')
                    .map_or((rest, None), |(id, p)| (id, Some(p)));
                let config = self.aws_config(region_of(id)).await;
                let client = aws_sdk_secretsmanager::Client::new(&config);
                let out = client
                    .get_secret_value()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "cannot read {reference}: {}",
                            aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                        )
                    })?;
                let text = out
                    .secret_string()
                    .ok_or_else(|| format!("{reference} has no string value"))?;
                select_json_path(text, path).map_err(|e| format!("{reference}: {e}"))
            }
            Some(("aws-ssm", name)) => {
                let config = self.aws_config(region_of(name)).await;
                let client = aws_sdk_ssm::Client::new(&config);
                let out = client
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "cannot read {reference}: {}",
                            aws_sdk_ssm::error::DisplayErrorContext(e)
                        )
                    })?;
                Ok(out
                    .parameter()
                    .and_then(|p| p.value())
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec())
            }
            _ => Err(format!("reference '{reference}' cannot be read")),
        }
    }

    /// The AWS configuration from the default chain (loaded once), in `region` when the ARN names one.
    async fn aws_config(&self, region: Option<String>) -> aws_config::SdkConfig {
        let shared = self
            .aws
            .get_or_init(|| aws_config::defaults(aws_config::BehaviorVersion::latest()).load())
            .await;
        match region {
            Some(r) => shared
                .to_builder()
                .region(aws_config::Region::new(r))
                .build(),
            None => shared.clone(),
        }
    }
}

/// The region of an ARN (`arn:aws:service:REGION:account:...`).
fn region_of(id: &str) -> Option<String> {
    let parts: Vec<&str> = id.split(':').collect();
    (parts.len() > 4 && parts[0] == "arn" && !parts[3].is_empty()).then(|| parts[3].to_owned())
}

/// The JSON at a dot-separated path of a secret's JSON text (the whole text without a path). A
/// string found there is taken as JSON text itself.
fn select_json_path(text: &str, path: Option<&str>) -> Result<Vec<u8>, String> {
    let Some(path) = path else {
        return Ok(text.as_bytes().to_vec());
    };
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| "the secret is not JSON".to_string())?;
    for part in path.split('.') {
        value = value
            .get(part)
            .cloned()
            .ok_or_else(|| format!("the secret has no '{path}'"))?;
    }
    Ok(match value {
        serde_json::Value::String(s) => s.into_bytes(),
        other => serde_json::to_vec(&other).expect("JSON serializes"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_name_their_region_and_json_paths_select() {
        assert_eq!(
            region_of("arn:aws:secretsmanager:eu-west-1:123:secret:x").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_of("plain-name"), None);
        let text = r#"{"lake": {"access_key_id": "a", "secret_access_key": "b"}, "str": "{\"k\": \"v\"}"}"#;
        assert_eq!(
            select_json_path(text, Some("lake")).unwrap(),
            br#"{"access_key_id":"a","secret_access_key":"b"}"#
        );
        assert_eq!(
            select_json_path(text, Some("str")).unwrap(),
            br#"{"k": "v"}"#
        );
        assert!(select_json_path(text, Some("nope")).is_err());
    }

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

    #[tokio::test]
    async fn sealed_credentials_resolve_and_never_show_their_value() {
        let r = CredentialResolver::new(Arc::new(MasterKey::from_bytes(&[3; 32])), vec![]);
        let sealed = r.seal(Uuid::nil(), "lake", &fields());
        assert!(!format!("{sealed:?}").contains("s3cr3t-value"));
        assert_eq!(r.resolve(&record(sealed)).await.unwrap(), fields());
    }

    #[tokio::test]
    async fn references_fail_closed_and_name_the_reference_not_the_value() {
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
        assert!(r.check_reference("aws-ssm:/x").is_ok());
        assert!(r.check_reference("aws-ssm:x").is_err());
        assert!(r.check_reference("aws-secretsmanager:").is_err());
        let missing = r
            .resolve(&record(CredentialValue::Reference {
                reference: "env:FLOE_TEST_CRED".into(),
            }))
            .await
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
            .await
            .unwrap(),
            fields()
        );
        std::fs::write(&path, r#"{"access_key_id": "AKIA1"}"#).unwrap();
        let incomplete = r
            .resolve(&record(CredentialValue::Reference { reference }))
            .await
            .unwrap_err();
        assert!(
            incomplete.contains("secret_access_key") && !incomplete.contains("AKIA1"),
            "{incomplete}"
        );
    }
}
