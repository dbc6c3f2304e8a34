//! Storage credentials: sealed under the master key when given by value, or references resolved at
//! each use with the server's own identity: `env:NAME`, `file:/path`,
//! `aws-secretsmanager:ARN[#json.path]` and `aws-ssm:/parameter/name` (endpoints and credentials from
//! the AWS default chain, e.g. `AWS_ENDPOINT_URL`). A tenant admin may reference only what the
//! operator allowed ([`ReferencePolicy`]): allow-listed variables, files inside allowed directories
//! (after resolving symlinks, and never inside the data directory), and allow-listed ARN or name
//! prefixes. The policy is checked when a reference is registered and again at every use. Errors
//! name the credential, the reference and the rule, never the value.

use std::sync::Arc;

use super::MasterKey;
use crate::domain::TenantId;
use crate::storage::{CredentialFields, normalize_fields};
use crate::store::{CredentialValue, StorageCredentialRecord};

/// What credential references may read: the server operator's allow-lists.
#[derive(Debug, Clone, Default)]
pub struct ReferencePolicy {
    env: Vec<String>,
    /// Canonical directories whose files may be read.
    file_dirs: Vec<std::path::PathBuf>,
    aws_prefixes: Vec<String>,
    /// The canonical data directory: never readable, whatever `file_dirs` says.
    data_dir: Option<std::path::PathBuf>,
}

impl ReferencePolicy {
    /// The policy from the settings' lists (`file_dirs` are resolved now; one that does not exist
    /// allows nothing).
    pub fn new(
        env: Vec<String>,
        file_dirs: Vec<String>,
        aws_prefixes: Vec<String>,
        data_dir: &std::path::Path,
    ) -> Self {
        Self {
            env,
            file_dirs: file_dirs
                .iter()
                .filter_map(|d| std::fs::canonicalize(d).ok())
                .collect(),
            aws_prefixes,
            data_dir: std::fs::canonicalize(data_dir)
                .ok()
                .or_else(|| Some(data_dir.to_owned())),
        }
    }

    /// Whether `path` (absolute, already free of `..`) lies in an allowed directory and outside the
    /// data directory.
    fn file_allowed(&self, path: &std::path::Path) -> Result<(), String> {
        if self.data_dir.as_ref().is_some_and(|d| path.starts_with(d)) {
            return Err(
                "files in the server's data directory are never readable by references, whatever secret_file_dirs says".into(),
            );
        }
        if self.file_dirs.iter().any(|d| path.starts_with(d)) {
            return Ok(());
        }
        Err(format!(
            "file references may read only files inside the directories on secret_file_dirs ({})",
            if self.file_dirs.is_empty() {
                "none are set".to_owned()
            } else {
                self.file_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))
    }

    fn aws_allowed(&self, id: &str) -> Result<(), String> {
        if self.aws_prefixes.iter().any(|p| id.starts_with(p.as_str())) {
            return Ok(());
        }
        Err(format!(
            "'{id}' does not start with a prefix on secret_aws_allowlist ({})",
            if self.aws_prefixes.is_empty() {
                "none are set".to_owned()
            } else {
                self.aws_prefixes.join(", ")
            }
        ))
    }
}

/// Seals, checks and resolves storage credentials.
pub struct CredentialResolver {
    master: Arc<MasterKey>,
    policy: ReferencePolicy,
    aws: tokio::sync::OnceCell<aws_config::SdkConfig>,
    timeouts: crate::outbound::OutboundTimeouts,
}

fn purpose(tenant: TenantId, name: &str) -> String {
    format!("floe-storage-credential:{tenant}:{name}")
}

impl CredentialResolver {
    /// A resolver sealing with `master`; references may read only what `policy` allows.
    pub fn new(master: Arc<MasterKey>, policy: ReferencePolicy) -> Self {
        Self {
            master,
            policy,
            aws: tokio::sync::OnceCell::new(),
            timeouts: Default::default(),
        }
    }

    /// The same resolver, with secret-store calls cut off at `timeouts`.
    pub fn with_timeouts(mut self, timeouts: crate::outbound::OutboundTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Seals a credential's fields for storage.
    pub fn seal(&self, tenant: TenantId, name: &str, fields: &CredentialFields) -> CredentialValue {
        let json = fields.to_json();
        CredentialValue::Sealed {
            sealed: self.master.seal(&json, &purpose(tenant, name)),
        }
    }

    /// Checks a reference's form and the operator's policy (not its value, which is read at use).
    pub fn check_reference(&self, reference: &str) -> Result<(), String> {
        match reference.split_once(':') {
            Some(("env", name)) if self.policy.env.iter().any(|a| a == name) => Ok(()),
            Some(("env", name)) => Err(format!(
                "environment variable '{name}' is not on the allow-list (setting secret_env_allowlist)"
            )),
            Some(("file", path)) if path.starts_with('/') => {
                let path = std::path::Path::new(path);
                if path.components().any(|c| {
                    !matches!(
                        c,
                        std::path::Component::RootDir | std::path::Component::Normal(_)
                    )
                }) {
                    return Err(format!("'{reference}' must not contain '.' or '..'"));
                }
                self.policy.file_allowed(path)
            }
            Some(("aws-secretsmanager", id)) if !id.is_empty() && !id.starts_with('#') => {
                let id = id.split_once('#').map_or(id, |(id, _)| id);
                self.policy.aws_allowed(id)
            }
            Some(("aws-ssm", name)) if name.starts_with('/') || name.starts_with("arn:") => {
                self.policy.aws_allowed(name)
            }
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
    ) -> Result<CredentialFields, String> {
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
        let value: serde_json::Value = serde_json::from_slice(&json)
            .map_err(|_| fail("the value is not a JSON object".into()))?;
        normalize_fields(record.kind, &value).map_err(fail)
    }

    async fn read_reference(&self, reference: &str) -> Result<Vec<u8>, String> {
        match reference.split_once(':') {
            Some(("env", var)) => Ok(std::env::var(var).unwrap_or_default().into_bytes()),
            Some(("file", path)) => {
                // Symlinks are resolved before the policy is checked again: a link inside an
                // allowed directory may not lead out of it.
                let real = std::fs::canonicalize(path)
                    .map_err(|e| format!("cannot read {reference}: {}", e.kind()))?;
                self.policy.file_allowed(&real)?;
                std::fs::read(&real).map_err(|e| format!("cannot read {reference}: {}", e.kind()))
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
            .get_or_init(|| {
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .timeout_config(self.timeouts.aws(crate::outbound::Outbound::Secrets))
                    .load()
            })
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
    use crate::domain::CredentialKind;

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
            id: uuid::Uuid::nil(),
            tenant_id: TenantId::nil(),
            name: "lake".into(),
            kind: CredentialKind::S3AccessKey,
            value,
            created_at_ms: 0,
        }
    }

    fn fields() -> CredentialFields {
        normalize_fields(
            CredentialKind::S3AccessKey,
            &serde_json::json!({"access_key_id": "AKIA1", "secret_access_key": "s3cr3t-value"}),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn sealed_credentials_resolve_and_never_show_their_value() {
        let r = CredentialResolver::new(
            Arc::new(MasterKey::from_bytes(&[3; 32])),
            ReferencePolicy::default(),
        );
        let sealed = r.seal(TenantId::nil(), "lake", &fields());
        assert!(!format!("{sealed:?}").contains("s3cr3t-value"));
        assert_eq!(r.resolve(&record(sealed)).await.unwrap(), fields());
    }

    #[tokio::test]
    async fn references_fail_closed_and_name_the_reference_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let r = CredentialResolver::new(
            Arc::new(MasterKey::from_bytes(&[3; 32])),
            ReferencePolicy::new(
                vec!["FLOE_TEST_CRED".into()],
                vec![dir.path().display().to_string()],
                vec!["/x".into()],
                data.path(),
            ),
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
        let path = std::fs::canonicalize(dir.path()).unwrap().join("cred.json");
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

    #[test]
    fn credential_kinds_take_their_aliases() {
        for name in ["gcs-service-account", "google_service_account", "gcp"] {
            assert_eq!(
                CredentialKind::parse(name).unwrap(),
                CredentialKind::GcsServiceAccount
            );
        }
        assert_eq!(
            CredentialKind::parse("s3-access-key").unwrap(),
            CredentialKind::S3AccessKey
        );
        let err = CredentialKind::parse("s3").unwrap_err();
        assert!(
            err.contains("gcp") && err.contains("s3-access-key"),
            "{err}"
        );
    }

    /// Issue: a tenant admin registered references to the server's own files and secrets
    /// (`file:/etc/passwd`, the data directory's master key, `..` paths, any ARN) and got their
    /// contents back as warehouse keys.
    #[tokio::test]
    async fn references_reach_only_what_the_operator_allowed() {
        let allowed = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let allowed_dir = std::fs::canonicalize(allowed.path()).unwrap();
        let data_dir = std::fs::canonicalize(data.path()).unwrap();
        let keys = r#"{"access_key_id": "AKIA1", "secret_access_key": "s3cr3t-value"}"#;
        std::fs::write(data_dir.join("master.key"), keys).unwrap();
        std::fs::write(allowed_dir.join("ok.json"), keys).unwrap();
        std::os::unix::fs::symlink(data_dir.join("master.key"), allowed_dir.join("link.json"))
            .unwrap();
        let strict = CredentialResolver::new(
            Arc::new(MasterKey::from_bytes(&[3; 32])),
            ReferencePolicy::new(vec![], vec![], vec![], &data_dir),
        );
        for reference in [
            "file:/etc/passwd".to_owned(),
            format!("file:{}/master.key", data_dir.display()),
            "aws-secretsmanager:arn:aws:secretsmanager:us-east-1:1:secret:prod".to_owned(),
            "aws-ssm:/prod/db".to_owned(),
        ] {
            let refused = strict.check_reference(&reference).unwrap_err();
            assert!(refused.contains("secret_"), "{reference}: {refused}");
        }
        // The data directory stays closed even when an operator lists it or a parent of it.
        let loose = CredentialResolver::new(
            Arc::new(MasterKey::from_bytes(&[3; 32])),
            ReferencePolicy::new(
                vec![],
                vec![
                    allowed_dir.display().to_string(),
                    data_dir.display().to_string(),
                ],
                vec![
                    "/floe/".into(),
                    "arn:aws:secretsmanager:us-east-1:1:secret:floe-".into(),
                ],
                &data_dir,
            ),
        );
        assert!(
            loose
                .check_reference(&format!("file:{}/master.key", data_dir.display()))
                .is_err()
        );
        assert!(
            loose
                .check_reference(&format!("file:{}/../x/ok.json", allowed_dir.display()))
                .is_err()
        );
        assert!(loose.check_reference("aws-ssm:/floe/lake").is_ok());
        assert!(loose.check_reference("aws-ssm:/prod/lake").is_err());
        assert!(
            loose
                .check_reference(
                    "aws-secretsmanager:arn:aws:secretsmanager:us-east-1:1:secret:floe-lake#k"
                )
                .is_ok()
        );
        let ok = format!("file:{}/ok.json", allowed_dir.display());
        assert!(
            loose
                .resolve(&record(CredentialValue::Reference { reference: ok }))
                .await
                .is_ok()
        );
        // A symlink inside an allowed directory that leads into the data directory is refused at use.
        let link = format!("file:{}/link.json", allowed_dir.display());
        assert!(
            loose.check_reference(&link).is_ok(),
            "the link itself lies in the allowed directory"
        );
        let refused = loose
            .resolve(&record(CredentialValue::Reference { reference: link }))
            .await
            .unwrap_err();
        assert!(
            refused.contains("data directory") && !refused.contains("s3cr3t"),
            "{refused}"
        );
    }
}
