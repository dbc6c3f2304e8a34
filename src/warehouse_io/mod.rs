//! Reading and writing a warehouse's metadata files with the server's own storage access.
//!
//! Owns: the [`WarehouseIo`] trait and its local-directory, S3, Azure Blob and GCS backends;
//! [`open_io`], the one place the server's IO is built for a storage profile and its secret;
//! [`StorageSecret`], what a resolved storage credential stands for; and the rules for which
//! locations lie inside a warehouse. Must not touch: the store or HTTP.

mod azure;
pub mod azure_auth;
pub mod azure_sas;
mod gcs;
mod local;
mod s3;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::domain::CredentialKind;
use crate::domain::storage::StorageProfile;
use crate::outbound::{Outbound, OutboundTimeouts};
use azure_auth::AzureSigner;

pub use azure::{AzureIo, encode_blob_path};
pub use gcs::{GcsIo, GcsServiceAccount};
pub use local::LocalIo;
pub use s3::{S3Io, S3StaticCredentials};

/// The secret a warehouse's storage credential resolves to.
#[derive(Clone)]
pub enum StorageSecret {
    /// S3 access keys.
    S3(S3StaticCredentials),
    /// An Azure account key or Entra ID application.
    Azure(azure_auth::AzureAuth),
    /// A Google service account (its key file).
    Gcs(Arc<GcsServiceAccount>),
}

impl StorageSecret {
    /// The secret a resolved credential of `kind` stands for (its fields as
    /// [`crate::identity::storage_credentials`] normalized them).
    pub fn from_fields(
        kind: CredentialKind,
        mut fields: std::collections::BTreeMap<String, String>,
        timeouts: &OutboundTimeouts,
    ) -> Result<Self, String> {
        let mut take = |name: &str| fields.remove(name).unwrap_or_default();
        Ok(match kind {
            CredentialKind::AzureSharedKey => {
                Self::Azure(azure_auth::AzureAuth::AccountKey(take("account_key")))
            }
            CredentialKind::AzureClientSecret => Self::Azure(azure_auth::AzureAuth::ClientSecret {
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

/// The server's own IO for a warehouse's storage, built with its secret (on S3 without one, the
/// AWS default chain), and for ADLS the SAS signer it shares with vending. A storage kind whose
/// secret is missing or of another kind is misconfigured (`warehouse` names it).
pub async fn open_io(
    storage: &StorageProfile,
    secret: Option<&StorageSecret>,
    warehouse: String,
    timeouts: &OutboundTimeouts,
) -> Result<(Arc<dyn WarehouseIo>, Option<Arc<AzureSigner>>), IoError> {
    Ok(match (storage, secret) {
        (StorageProfile::Local { root }, _) => (Arc::new(LocalIo::new(root)?), None),
        (StorageProfile::S3(s3), secret) => {
            let keys = match secret {
                Some(StorageSecret::S3(k)) => Some(k.clone()),
                _ => None,
            };
            let io = S3Io::new(
                &s3.bucket,
                &s3.region,
                s3.endpoint.as_deref(),
                s3.path_style,
                keys,
                timeouts,
            )
            .await;
            (Arc::new(io), None)
        }
        (StorageProfile::Adls(a), Some(StorageSecret::Azure(auth))) => {
            let signer = Arc::new(AzureSigner::new(a, auth.clone(), timeouts));
            (
                Arc::new(AzureIo::new(a, signer.clone(), timeouts)),
                Some(signer),
            )
        }
        (StorageProfile::Gcs(g), Some(StorageSecret::Gcs(account))) => {
            (Arc::new(GcsIo::new(g, account.clone(), timeouts)), None)
        }
        (StorageProfile::Gcs(_), _) => {
            return Err(IoError::Misconfigured(
                warehouse,
                "a GCS warehouse needs a gcs-service-account storage credential".into(),
            ));
        }
        (StorageProfile::Adls(_), _) => {
            return Err(IoError::Misconfigured(
                warehouse,
                "an ADLS warehouse needs an azure-shared-key or azure-client-secret credential"
                    .into(),
            ));
        }
    })
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

/// Storage failures, named by location (never by credential).
#[derive(Debug, Clone, thiserror::Error)]
pub enum IoError {
    #[error("file {0} does not exist")]
    NotFound(String),
    #[error("location {0} is not usable here: {1}")]
    BadLocation(String, String),
    /// Trouble worth retrying: a timeout, a lost connection, throttling, a 5xx.
    #[error("storage error at {0}: {1}")]
    Storage(String, String),
    /// No space is left where the file was to go.
    #[error("no space left at {0}")]
    Full(String),
    /// The storage refuses the server itself (a rejected key or SAS, a missing permission, no
    /// such bucket or container): retrying does not help until an operator fixes the warehouse.
    #[error("storage refuses the server at {0}: {1}")]
    Refused(String, String),
    /// The warehouse cannot be reached as configured; the text says what to fix and holds no
    /// secret, URL or upstream answer.
    #[error("warehouse {0}: {1}")]
    Misconfigured(String, String),
    #[error("file {0} is larger than the {1} bytes this server reads")]
    TooLarge(String, u64),
}

/// `TooLarge` when a file of `size` bytes exceeds `max_bytes`.
pub fn check_size(location: &str, size: u64, max_bytes: u64) -> Result<(), IoError> {
    if size > max_bytes {
        return Err(IoError::TooLarge(location.to_owned(), max_bytes));
    }
    Ok(())
}

/// The body of an HTTP answer, refused as soon as it exceeds `max_bytes`.
pub async fn bounded_body(
    location: &str,
    mut r: reqwest::Response,
    max_bytes: u64,
) -> Result<Bytes, IoError> {
    if let Some(len) = r.content_length() {
        check_size(location, len, max_bytes)?;
    }
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(|e| IoError::storage(location, e))? {
        check_size(location, (body.len() + chunk.len()) as u64, max_bytes)?;
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

impl IoError {
    /// A storage failure at `location`. Any URL in `detail` loses its query string first: a
    /// request URL may carry a SAS or a presigned signature.
    pub fn storage(location: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        IoError::Storage(location.into(), redact_urls(&detail.to_string()))
    }

    /// What an HTTP answer with `status` (not a success) at `location` means: a refusal for a
    /// 4xx other than 404, 408 and 429 (those are not found, and trouble), trouble otherwise.
    pub fn from_status(
        location: impl Into<String>,
        status: u16,
        detail: impl std::fmt::Display,
    ) -> Self {
        let location = location.into();
        let detail = redact_urls(&detail.to_string());
        match status {
            404 => IoError::NotFound(location),
            400..=499 if status != 408 && status != 429 => IoError::Refused(location, detail),
            _ => IoError::Storage(location, detail),
        }
    }

    /// What a failed outbound call the storage needed (a token, a key) means for it.
    pub fn from_call(location: impl Into<String>, e: crate::outbound::CallError) -> Self {
        match e {
            crate::outbound::CallError::Refused(d) => {
                IoError::Refused(location.into(), redact_urls(&d))
            }
            crate::outbound::CallError::Transient(d) => IoError::storage(location, d),
        }
    }
}

/// `text` with the query string of every `http://` or `https://` URL in it replaced by `?…`, so
/// errors and logs never carry signatures or tokens from a URL.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = [rest.find("http://"), rest.find("https://")]
        .into_iter()
        .flatten()
        .min()
    {
        let end = rest[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | ','))
            .map_or(rest.len(), |e| start + e);
        let url = &rest[start..end];
        out.push_str(&rest[..start]);
        match url.split_once('?') {
            Some((base, _)) => {
                out.push_str(base);
                out.push_str("?…");
            }
            None => out.push_str(url),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// File access to one warehouse.
#[async_trait]
pub trait WarehouseIo: Send + Sync {
    /// Writes a new file; the file is durable when this returns.
    async fn write(&self, location: &str, bytes: Bytes) -> Result<(), IoError>;
    /// Reads a whole file of at most `max_bytes` (`TooLarge` otherwise, without reading it all).
    async fn read(&self, location: &str, max_bytes: u64) -> Result<Bytes, IoError>;
    /// Deletes one file; a missing file is not an error.
    async fn delete(&self, location: &str) -> Result<(), IoError>;
    /// Deletes every file under `prefix` (a directory location); returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, IoError>;
    /// Makes a new table's location ready for clients to write into before the server has written
    /// anything there (a staged create). Object stores have no directories: nothing to do.
    async fn prepare_table_location(&self, _location: &str) -> Result<(), IoError> {
        Ok(())
    }
}

/// Strips a trailing `/` and refuses `.`/`..`/empty segments after the scheme, so a location can be
/// compared to a warehouse root by plain prefix. Hadoop's `file:/path` (what Spark sends) is
/// `file:///path`.
pub fn normalize_location(location: &str) -> Result<String, String> {
    let hadoop_form;
    let location = match location.strip_prefix("file:") {
        Some(path) if path.starts_with('/') && !path.starts_with("//") => {
            hadoop_form = format!("file://{path}");
            hadoop_form.as_str()
        }
        _ => location,
    };
    let (scheme, rest) = location.split_once("://").ok_or_else(|| {
        format!("location '{location}' has no scheme (expected s3://, abfss:// or file://)")
    })?;
    let scheme = match scheme {
        "s3" | "s3a" | "s3n" => "s3",
        "abfss" | "abfs" => "abfss",
        "gs" => "gs",
        "file" => "file",
        other => return Err(format!("location scheme '{other}' is not supported")),
    };
    let rest = rest.trim_end_matches('/');
    let body = if scheme == "file" {
        rest.strip_prefix('/').unwrap_or(rest)
    } else {
        rest
    };
    if body.is_empty()
        || body
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!(
            "location '{location}' has an empty, '.' or '..' path segment"
        ));
    }
    if location.contains('\\') || location.chars().any(char::is_control) || location.contains('%') {
        return Err(format!(
            "location '{location}' contains characters that are not allowed"
        ));
    }
    Ok(format!("{scheme}://{rest}"))
}

/// True when `location` is `root` itself or lies below it (as a path, never as a sibling name:
/// `s3://b/t1` does not contain `s3://b/t10`). Both must be normalized.
pub fn is_inside(location: &str, root: &str) -> bool {
    location == root
        || location
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_prefixes_are_not_inside() {
        assert!(is_inside("s3://b/wh/t1/x", "s3://b/wh/t1"));
        assert!(!is_inside("s3://b/wh/t10", "s3://b/wh/t1"));
        assert!(is_inside("s3://b/wh", "s3://b/wh"));
    }

    #[test]
    fn urls_lose_their_query_strings() {
        let text = "error sending request for url (http://127.0.0.1:1/devstoreaccount1/c/x?sv=2022&sig=SECRET%3D) and https://h/y?X-Amz-Signature=abc, plain http://h/z";
        let redacted = redact_urls(text);
        assert!(
            !redacted.contains("SECRET") && !redacted.contains("abc"),
            "{redacted}"
        );
        assert_eq!(
            redacted,
            "error sending request for url (http://127.0.0.1:1/devstoreaccount1/c/x?…) and https://h/y?…, plain http://h/z"
        );
    }

    #[test]
    fn hadoop_file_paths_are_file_urls() {
        assert_eq!(
            normalize_location("file:/tmp/w/t/").unwrap(),
            "file:///tmp/w/t"
        );
        assert_eq!(
            normalize_location("file:///tmp/w/t").unwrap(),
            "file:///tmp/w/t"
        );
        assert!(normalize_location("file:relative").is_err());
    }

    #[test]
    fn traversal_and_odd_schemes_are_refused() {
        assert!(normalize_location("s3://b/wh/../other").is_err());
        assert!(normalize_location("s3://b/wh//x").is_err());
        assert!(normalize_location("http://b/wh").is_err());
        assert!(normalize_location("/tmp/x").is_err());
        assert!(normalize_location("s3://b/wh/%2e%2e/x").is_err());
        assert_eq!(normalize_location("s3a://b/wh/").unwrap(), "s3://b/wh");
        assert_eq!(
            normalize_location("file:///tmp/wh/").unwrap(),
            "file:///tmp/wh"
        );
    }
}
