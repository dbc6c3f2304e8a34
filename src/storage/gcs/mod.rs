//! Google Cloud Storage: the profile and its rules, the server's own IO over the JSON API
//! ([`io`]), and what a reader of a table gets: the service account's token exchanged at Google's
//! STS for one downscoped by a credential access boundary to the table's prefix, and V4 signed
//! URLs for single objects; plus the client settings and validation.

pub mod io;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use self::io::{GcsIo, GcsServiceAccount};
use super::access::{
    PresignMethod, TableAccess, VendedCredential, WarehouseStorage, file_inside, inside_warehouse,
};
use super::fields::{Field, required};
use super::validation::{Steps, Validation};
use super::{
    IoError, Issuer, ServerAccessParts, StorageKind, StorageProfile, StorageSecret, VendingError,
    VendingResult, normalize_location, refused, unavailable,
};
use crate::domain::CredentialKind;
use crate::domain::access::DataAccess;
use crate::domain::now_ms;
use crate::outbound::{CallError, OutboundTimeouts};
use crate::reachability::Failure;

/// A Google Cloud Storage warehouse. The server reaches it, and downscopes tokens for clients,
/// with the service account of the warehouse's `gcs-service-account` credential.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GcsProfile {
    pub bucket: String,
    /// Object names of the warehouse start with this (no leading or trailing `/`).
    #[serde(default)]
    pub key_prefix: String,
    /// Handed to clients as `gcs.project-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Storage endpoint override (emulators); `https://storage.googleapis.com` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Google STS token-exchange URL; `https://sts.googleapis.com/v1/token` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_endpoint: Option<String>,
    /// Hand out downscoped tokens (`true`, the default) or nothing.
    #[serde(default = "super::yes")]
    pub vending: bool,
}

impl GcsProfile {
    /// The storage endpoint without a trailing `/`.
    pub fn storage_endpoint(&self) -> String {
        self.endpoint
            .as_deref()
            .unwrap_or("https://storage.googleapis.com")
            .trim_end_matches('/')
            .to_owned()
    }
}

pub(crate) const SERVICE_ACCOUNT_FIELDS: &[Field] = &[required("service_account_json", &[])];

/// A service account key file given whole (`{"type": "service_account", ...}`) or under `data`
/// (as an object or as JSON text), as compact JSON text; `None` for the canonical form.
pub(crate) fn service_account_key_file(
    object: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<String>, String> {
    let key_file = match object.get("data") {
        Some(data) if object.len() == 1 => match data {
            serde_json::Value::String(text) => serde_json::from_str(text).map_err(|_| {
                "a gcs-service-account credential's 'data' is not a JSON key file".to_string()
            })?,
            other => other.clone(),
        },
        Some(_) => {
            return Err(
                "a gcs-service-account credential with 'data' must have nothing beside it".into(),
            );
        }
        None if object.contains_key("service_account_json") => return Ok(None),
        None => serde_json::Value::Object(object.clone()),
    };
    let is_key_file = key_file.get("type").and_then(|t| t.as_str()) == Some("service_account")
        && ["client_email", "private_key"].iter().all(|k| {
            key_file
                .get(k)
                .and_then(|v| v.as_str())
                .is_some_and(|v| !v.is_empty())
        });
    if !is_key_file {
        return Err(
            "a gcs-service-account credential is a service account key file \
             (\"type\": \"service_account\" with client_email and private_key), the same under \
             'data', or {\"service_account_json\": \"<key file text>\"}"
                .into(),
        );
    }
    Ok(Some(key_file.to_string()))
}

/// Google's STS token-exchange endpoint.
pub const GOOGLE_STS: &str = "https://sts.googleapis.com/v1/token";

/// The object name of a location inside a GCS warehouse (no trailing `/`), and the location
/// normalized. Refuses locations outside the warehouse.
pub fn gcs_object(
    wh: WarehouseStorage<'_>,
    profile: &GcsProfile,
    location: &str,
) -> VendingResult<(String, String)> {
    let location = inside_warehouse(wh, location)?;
    let name = location
        .strip_prefix(&format!("gs://{}/", profile.bucket))
        .ok_or_else(|| VendingError::invalid(format!("{location} is not in the bucket")))?
        .to_owned();
    Ok((name, location))
}

/// Escapes a string for a single-quoted CEL literal: nothing in it can end the literal.
pub fn cel_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The credential access boundary for `prefix` (object names, ending in `/`) of `bucket`:
/// objects under the prefix, readable (and writable for read-write), and lists of that prefix only.
pub fn access_boundary(bucket: &str, prefix: &str, access: DataAccess) -> serde_json::Value {
    debug_assert!(prefix.ends_with('/'));
    let role = match access {
        DataAccess::ReadWrite => "inRole:roles/storage.objectAdmin",
        _ => "inRole:roles/storage.objectViewer",
    };
    let objects = format!("projects/_/buckets/{bucket}/objects/{prefix}");
    let expression = format!(
        "resource.name.startsWith({}) || api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith({})",
        cel_string(&objects),
        cel_string(prefix)
    );
    json!({"accessBoundary": {"accessBoundaryRules": [{
        "availableResource": format!("//storage.googleapis.com/projects/_/buckets/{bucket}"),
        "availablePermissions": [role],
        "availabilityCondition": {"expression": expression},
    }]}})
}

/// A downscoped token and when it expires.
pub struct DownscopedToken {
    pub token: String,
    pub expires_at_ms: i64,
}

/// Exchanges the service account's token for one limited by `boundary` (RFC 8693 at Google STS).
pub async fn downscope(
    http: &reqwest::Client,
    profile: &GcsProfile,
    account: &GcsServiceAccount,
    boundary: &serde_json::Value,
    at_least: std::time::Duration,
) -> Result<DownscopedToken, CallError> {
    #[derive(Deserialize)]
    struct Answer {
        access_token: String,
        expires_in: Option<i64>,
    }
    let source = account
        .token_lasting(at_least)
        .await
        .map_err(CallError::transient)?;
    metrics::counter!("floe_gcs_token_exchanges_total").increment(1);
    let url = profile.sts_endpoint.as_deref().unwrap_or(GOOGLE_STS);
    let r = http
        .post(url)
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", source.as_str()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("options", &boundary.to_string()),
        ])
        .send()
        .await
        .map_err(|e| CallError::transient(format!("token exchange at {url} failed: {e}")))?;
    if !r.status().is_success() {
        metrics::counter!("floe_gcs_token_exchange_failures_total").increment(1);
        return Err(CallError::from_status(
            r.status().as_u16(),
            format!("token exchange at {url} answered HTTP {}", r.status()),
        ));
    }
    let answer: Answer = r.json().await.map_err(|e| {
        CallError::transient(format!("token exchange at {url}: unreadable answer: {e}"))
    })?;
    // A downscoped token lives as long as its source token.
    let expires_at_ms = match answer.expires_in {
        Some(secs) => Utc::now().timestamp_millis() + secs * 1000,
        None => source.expires_at().timestamp_millis(),
    };
    Ok(DownscopedToken {
        token: answer.access_token,
        expires_at_ms,
    })
}

/// The config keys clients read for a downscoped token.
pub fn token_config(
    profile: &GcsProfile,
    token: &DownscopedToken,
    refresh_endpoint: &str,
) -> BTreeMap<String, String> {
    let mut config = gcs_client_config(profile);
    config.insert("gcs.oauth2.token".into(), token.token.clone());
    config.insert(
        "gcs.oauth2.token-expires-at".into(),
        token.expires_at_ms.to_string(),
    );
    config.insert(
        "gcs.oauth2.refresh-credentials-endpoint".into(),
        refresh_endpoint.to_owned(),
    );
    config.insert(
        "gcs.oauth2.refresh-credentials-enabled".into(),
        "true".into(),
    );
    config
}

/// The non-secret client settings of a GCS warehouse.
pub fn gcs_client_config(profile: &GcsProfile) -> BTreeMap<String, String> {
    let mut config = BTreeMap::new();
    if let Some(p) = &profile.project_id {
        config.insert("gcs.project-id".into(), p.clone());
    }
    if let Some(ep) = &profile.endpoint {
        config.insert(
            "gcs.service.host".into(),
            ep.trim_end_matches('/').to_owned(),
        );
    }
    config
}

/// Characters left as they are in a V4 canonical URI segment and query value.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A V4 signed URL (GOOG4-RSA-SHA256) for one object, signed with the service account's key.
pub async fn signed_url(
    account: &GcsServiceAccount,
    bucket: &str,
    object: &str,
    method: &str,
    now: DateTime<Utc>,
    expires_secs: u64,
) -> Result<String, String> {
    let host = "storage.googleapis.com";
    let date = now.format("%Y%m%d").to_string();
    let timestamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{date}/auto/storage/goog4_request");
    let path = format!(
        "/{bucket}/{}",
        object
            .split('/')
            .map(|s| utf8_percent_encode(s, UNRESERVED).to_string())
            .collect::<Vec<_>>()
            .join("/")
    );
    let credential = format!("{}/{scope}", account.client_email);
    let query = [
        ("X-Goog-Algorithm", "GOOG4-RSA-SHA256".to_owned()),
        ("X-Goog-Credential", credential),
        ("X-Goog-Date", timestamp.clone()),
        ("X-Goog-Expires", expires_secs.to_string()),
        ("X-Goog-SignedHeaders", "host".to_owned()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, UNRESERVED)))
    .collect::<Vec<_>>()
    .join("&");
    let canonical = format!("{method}\n{path}\n{query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD");
    let to_sign = format!(
        "GOOG4-RSA-SHA256\n{timestamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let signature = account.sign(to_sign.as_bytes()).await?;
    Ok(format!(
        "https://{host}{path}?{query}&X-Goog-Signature={}",
        hex::encode(signature)
    ))
}

/// Checks a GCS profile; the message names the setting at fault.
pub fn check_gcs_profile(p: &GcsProfile, has_credential: bool) -> Result<(), String> {
    if !(3..=63).contains(&p.bucket.len())
        || !p
            .bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!("bucket '{}' is not a valid bucket name", p.bucket));
    }
    for (name, url) in [("endpoint", &p.endpoint), ("sts_endpoint", &p.sts_endpoint)] {
        if let Some(url) = url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!("{name} must be an http:// or https:// URL"));
        }
    }
    if !has_credential {
        return Err("a GCS warehouse needs a gcs-service-account storage credential".into());
    }
    Ok(())
}

#[async_trait::async_trait]
impl StorageKind for GcsProfile {
    fn root_location(&self) -> String {
        super::join_root("gs", &self.bucket, &self.key_prefix)
    }

    fn tidied(&self) -> StorageProfile {
        StorageProfile::Gcs(Self {
            key_prefix: self.key_prefix.trim_matches('/').to_owned(),
            ..self.clone()
        })
    }

    /// The server's JSON-API client, with the warehouse's service account.
    async fn open(
        &self,
        secret: Option<&StorageSecret>,
        warehouse: &str,
        timeouts: &OutboundTimeouts,
    ) -> Result<ServerAccessParts, IoError> {
        let Some(StorageSecret::Gcs(account)) = secret else {
            return Err(IoError::Misconfigured(
                warehouse.to_owned(),
                "a GCS warehouse needs a gcs-service-account storage credential".into(),
            ));
        };
        Ok((Arc::new(GcsIo::new(self, account.clone(), timeouts)), None))
    }

    fn credential_kinds(&self) -> &'static [CredentialKind] {
        &[CredentialKind::GcsServiceAccount]
    }

    fn check(&self, has_credential: bool) -> Result<(), String> {
        check_gcs_profile(self, has_credential)
    }

    fn client_config(&self) -> BTreeMap<String, String> {
        gcs_client_config(self)
    }

    fn vends(&self) -> bool {
        self.vending
    }

    /// The service account's token, exchanged at Google's STS for one downscoped by a credential
    /// access boundary to the table's prefix.
    async fn vend(&self, issuer: &Issuer, t: &TableAccess<'_>) -> VendingResult<VendedCredential> {
        let profile = self;
        let (prefix, _) = gcs_object(t.warehouse, profile, t.location)?;
        let account = t.warehouse.gcs_account().ok_or_else(|| {
            VendingError::misconfigured(format!(
                "warehouse '{}' has no gcs-service-account credential; an operator must give it one",
                t.warehouse.name
            ))
        })?;
        let prefix = format!("{prefix}/");
        let boundary = access_boundary(&profile.bucket, &prefix, t.access);
        // A few seconds beyond the margin: the exchange itself takes a moment.
        let at_least = issuer.options.refresh_margin + std::time::Duration::from_secs(30);
        let token = downscope(&issuer.http, profile, account, &boundary, at_least).await;
        issuer.note_token_service(
            t.warehouse.id,
            token.as_ref().map(|_| ()).map_err(Failure::from),
        );
        let token = token.map_err(|e| {
            VendingError::from_call(t.warehouse.name, "Google's token service (STS)", e)
        })?;
        let left = token.expires_at_ms - now_ms();
        if left < issuer.options.refresh_margin.as_millis() as i64 {
            return Err(unavailable(format!(
                "the downscoped token expires in {} s, less than the refresh margin",
                left / 1000
            )));
        }
        let config = token_config(profile, &token, &t.refresh_endpoint);
        let location = normalize_location(t.location).map_err(VendingError::invalid)?;
        Ok(VendedCredential::new(
            format!("{location}/"),
            config,
            Some(token.expires_at_ms),
        ))
    }

    /// Downscopes a token for a sample table and checks what it allows.
    async fn validate(
        &self,
        check: &Validation<'_>,
        steps: &mut Steps,
        _warnings: &mut Vec<String>,
    ) {
        validate_gcs(&check.issuer.http, check.warehouse, self, steps).await;
    }

    /// A V4 signed URL for one object inside the table.
    async fn presign(
        &self,
        issuer: &Issuer,
        t: &TableAccess<'_>,
        file: &str,
        method: PresignMethod,
    ) -> VendingResult<(String, std::time::Duration)> {
        let ttl = issuer.options.presign_ttl;
        let file = file_inside(file, t.location).map_err(refused)?;
        let (object, _) = gcs_object(t.warehouse, self, &file)?;
        let account = t.warehouse.gcs_account().ok_or_else(|| {
            unavailable("the warehouse has no service account to sign with".into())
        })?;
        let method_name = match method {
            PresignMethod::Put => "PUT",
            PresignMethod::Get => "GET",
        };
        let url = signed_url(
            account,
            &self.bucket,
            &object,
            method_name,
            Utc::now(),
            ttl.as_secs().max(1),
        )
        .await
        .map_err(unavailable)?;
        Ok((url, ttl))
    }
}

/// What validation checks a sample table's downscoped token can and cannot do.
const TOKEN_CHECKS: &[&str] = &[
    "read a file of the sample table with the token",
    "the read-only token cannot write beside the sample table",
];

/// Downscopes a token for a sample table the way vending does and checks what it allows: it
/// reads a file there and cannot write beside it.
async fn validate_gcs(
    http: &reqwest::Client,
    wh: WarehouseStorage<'_>,
    profile: &GcsProfile,
    steps: &mut Steps,
) {
    use crate::storage::gcs;
    let Some(account) = wh.gcs_account() else {
        steps.record(
            "service account",
            Err("no gcs-service-account credential".into()),
        );
        return;
    };
    let sample = format!("{}/.floe-validate/{}", wh.root(), Uuid::now_v7());
    let Some(prefix) = sample.strip_prefix(&format!("gs://{}/", profile.bucket)) else {
        return;
    };
    let boundary = gcs::access_boundary(&profile.bucket, &format!("{prefix}/"), DataAccess::Read);
    let at_least = std::time::Duration::from_secs(60);
    let token = match gcs::downscope(http, profile, account, &boundary, at_least).await {
        Ok(t) => {
            steps.record(
                "exchange a read-only downscoped token for a sample table",
                Ok(()),
            );
            t.token
        }
        Err(e) => {
            steps.record(
                "exchange a read-only downscoped token for a sample table",
                Err(e.to_string()),
            );
            steps.not_run(TOKEN_CHECKS, "no downscoped token could be had");
            return;
        }
    };
    let probe = format!("{sample}/probe");
    if let Err(e) = wh
        .io()
        .write(&probe, Bytes::from_static(b"floe GCS probe"))
        .await
    {
        let why = format!("the server could not write a file for it to read: {e}");
        steps.not_run(TOKEN_CHECKS, &why);
        return;
    }
    let object_url = |name: &str| {
        let encoded: String =
            percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        format!(
            "{}/storage/v1/b/{}/o/{encoded}",
            profile.storage_endpoint(),
            profile.bucket
        )
    };
    let read = http
        .get(format!(
            "{}?alt=media",
            object_url(&format!("{prefix}/probe"))
        ))
        .bearer_auth(&token)
        .send()
        .await;
    steps.record(
        "read a file of the sample table with the token",
        match read {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status())),
            Err(e) => Err(e.to_string()),
        },
    );
    let beside = format!("{prefix}-beside/probe");
    let write = http
        .post(format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
            profile.storage_endpoint(),
            profile.bucket,
            percent_encoding::utf8_percent_encode(&beside, percent_encoding::NON_ALPHANUMERIC)
        ))
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body("x")
        .send()
        .await;
    steps.record(
        "the read-only token cannot write beside the sample table",
        match write {
            Ok(r) if r.status().is_success() => {
                let _ = wh.io().delete(&format!("gs://{}/{beside}", profile.bucket)).await;
                Err("the token wrote outside its table: this store does not enforce access boundaries".into())
            }
            _ => Ok(()),
        },
    );
    let _ = wh.io().delete(&probe).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cel_literals_cannot_be_broken_out_of() {
        assert_eq!(cel_string("a/b/"), "'a/b/'");
        assert_eq!(cel_string("it's"), r"'it\'s'");
        assert_eq!(
            cel_string(r"a\') || true || ('"),
            r"'a\\\') || true || (\''"
        );
        assert_eq!(cel_string("x\ny"), r"'x\ny'");
    }

    #[test]
    fn boundaries_name_the_prefix_and_the_role() {
        let b = access_boundary("lake", "wh/ns/t1/", DataAccess::Read);
        let rule = &b["accessBoundary"]["accessBoundaryRules"][0];
        assert_eq!(
            rule["availableResource"],
            "//storage.googleapis.com/projects/_/buckets/lake"
        );
        assert_eq!(
            rule["availablePermissions"],
            json!(["inRole:roles/storage.objectViewer"])
        );
        let expr = rule["availabilityCondition"]["expression"]
            .as_str()
            .unwrap();
        assert!(expr.contains("startsWith('projects/_/buckets/lake/objects/wh/ns/t1/')"));
        assert!(expr.contains("objectListPrefix', '').startsWith('wh/ns/t1/')"));
        let rw = access_boundary("lake", "wh/t/", DataAccess::ReadWrite);
        assert_eq!(
            rw["accessBoundary"]["accessBoundaryRules"][0]["availablePermissions"],
            json!(["inRole:roles/storage.objectAdmin"])
        );
    }
}
