//! Azure Data Lake Storage Gen2 (and Blob): the profile and its rules, the server's own IO over
//! the Blob REST API ([`io`]) with SAS it signs itself ([`sas`], keys from [`auth`]), and what a
//! reader of a table gets: SAS tokens for the table's directory (hierarchical namespace), or for
//! the whole container where the profile explicitly allows that unscoped fallback, and SAS URLs
//! for single blobs; plus the client settings and validation.

pub mod auth;
pub mod io;
pub mod sas;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use self::auth::AzureSigner;
use self::io::{AzureIo, encode_blob_path};
use self::sas::{SasRequest, SasResource};
use super::access::{
    PresignMethod, TableAccess, VendedCredential, WarehouseStorage, file_inside, inside_warehouse,
};
use super::fields::{Field, required};
use super::validation::{Steps, Validation, failure};
use super::{
    IoError, Issuer, ServerAccessParts, StorageKind, StorageProfile, StorageSecret, VendingError,
    VendingResult, normalize_location, refused,
};
use crate::domain::CredentialKind;
use crate::domain::access::DataAccess;
use crate::outbound::OutboundTimeouts;

/// An Azure Data Lake Storage Gen2 (or Blob) warehouse: where it is and how clients get access.
/// The server signs with the account key of the warehouse's `azure-shared-key` credential; that
/// key never leaves the server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdlsProfile {
    pub account: String,
    /// The container (ADLS Gen2 filesystem).
    pub container: String,
    /// Paths of the warehouse start with this (no leading or trailing `/`).
    #[serde(default)]
    pub key_prefix: String,
    /// Blob endpoint override including the account for emulators
    /// (`http://127.0.0.1:10000/devstoreaccount1`) and sovereign clouds; Azure public otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The account has a hierarchical namespace: SAS tokens are scoped to the table's directory.
    #[serde(default = "super::yes")]
    pub hierarchical_namespace: bool,
    /// Without a hierarchical namespace no SAS can be scoped to a directory; only with this set
    /// are container-wide (UNSCOPED) tokens handed out.
    #[serde(default)]
    pub allow_container_scope: bool,
    /// Lifetime of vended SAS tokens, 60..=604800 seconds (7 days).
    #[serde(default = "default_sas_secs")]
    pub sas_duration_secs: u32,
    /// Hand out SAS tokens (`true`, the default) or nothing.
    #[serde(default = "super::yes")]
    pub vending: bool,
    /// Entra ID authority for `azure-client-secret` credentials; `https://login.microsoftonline.com`
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_host: Option<String>,
}

fn default_sas_secs() -> u32 {
    3600
}

impl AdlsProfile {
    /// The blob endpoint, e.g. `https://acct.blob.core.windows.net` (no trailing `/`).
    pub fn blob_endpoint(&self) -> String {
        match &self.endpoint {
            Some(ep) => ep.trim_end_matches('/').to_owned(),
            None => format!("https://{}.blob.core.windows.net", self.account),
        }
    }

    /// The `abfss://` authority of the warehouse's locations.
    pub fn authority(&self) -> String {
        format!("{}@{}.dfs.core.windows.net", self.container, self.account)
    }
}

pub(crate) const SHARED_KEY_FIELDS: &[Field] = &[required("account_key", &[])];
pub(crate) const CLIENT_SECRET_FIELDS: &[Field] = &[
    required("tenant_id", &[]),
    required("client_id", &[]),
    required("client_secret", &[]),
];

/// Longest SAS lifetime Floe signs (Azure allows any, Floe caps at 7 days).
pub const MAX_SAS_SECS: u32 = 7 * 24 * 3600;

/// The blob path of a location inside the warehouse (no leading or trailing `/`).
pub fn blob_path(
    wh: WarehouseStorage<'_>,
    profile: &AdlsProfile,
    location: &str,
) -> VendingResult<String> {
    let location = inside_warehouse(wh, location)?;
    let prefix = format!("abfss://{}/", profile.authority());
    location
        .strip_prefix(&prefix)
        .map(str::to_owned)
        .ok_or_else(|| VendingError::invalid(format!("{location} is not in {prefix}")))
}

/// Permissions by access level, in Azure's order.
fn permissions(access: DataAccess) -> &'static str {
    match access {
        DataAccess::ReadWrite => "racwdl",
        _ => "rl",
    }
}

/// Signs `req` with the warehouse's key (account key or user-delegation key).
async fn sign_for(wh: WarehouseStorage<'_>, req: SasRequest<'_>) -> VendingResult<(String, i64)> {
    let signer = wh.azure_signer().ok_or_else(|| {
        VendingError::misconfigured(format!(
            "warehouse '{}' has no Azure credential to sign with; an operator must give it one",
            wh.name
        ))
    })?;
    metrics::counter!("floe_sas_tokens_total").increment(1);
    let (token, expiry) = signer.sign(req).await.map_err(|e| {
        metrics::counter!("floe_sas_failures_total").increment(1);
        VendingError::from_call(wh.name, "Azure (signing a SAS)", e)
    })?;
    Ok((token, expiry.timestamp_millis()))
}

/// A SAS for the table at `location` and the config keys clients read, with its expiry.
pub async fn table_sas(
    wh: WarehouseStorage<'_>,
    profile: &AdlsProfile,
    location: &str,
    access: DataAccess,
    refresh_endpoint: &str,
) -> VendingResult<(BTreeMap<String, String>, i64)> {
    let path = blob_path(wh, profile, location)?;
    let resource = if profile.hierarchical_namespace {
        SasResource::Directory { path }
    } else if profile.allow_container_scope {
        SasResource::Container
    } else {
        return Err(VendingError::refused(format!(
            "warehouse '{}' has no hierarchical namespace, so no SAS can be scoped to a table; container-wide tokens need allow_container_scope",
            wh.name
        )));
    };
    let now = Utc::now();
    let expiry = now + Duration::seconds(profile.sas_duration_secs.into());
    let (token, expires_at_ms) = sign_for(
        wh,
        SasRequest {
            account: &profile.account,
            container: &profile.container,
            resource,
            permissions: permissions(access),
            start: now - Duration::minutes(5),
            expiry,
            protocol: protocol(profile),
        },
    )
    .await?;
    let host = format!("{}.dfs.core.windows.net", profile.account);
    let mut config = adls_client_config(profile);
    config.insert(format!("adls.sas-token.{host}"), token.clone());
    config.insert(format!("adls.sas-token.{}", profile.account), token.clone());
    // pyarrow's Azure filesystem (PyIceberg) reads only this key and needs the leading `?`.
    config.insert("adls.sas-token".into(), format!("?{token}"));
    config.insert(
        format!("adls.sas-token-expires-at-ms.{host}"),
        expires_at_ms.to_string(),
    );
    // With an endpoint override (emulators, sovereign clouds) fsspec/adlfs needs the endpoint
    // and the SAS together: a SAS connection string (it holds no account key).
    if let Some(ep) = &profile.endpoint {
        config.insert(
            "adls.connection-string".into(),
            format!(
                "BlobEndpoint={};SharedAccessSignature={token}",
                ep.trim_end_matches('/')
            ),
        );
    }
    config.insert(
        "adls.refresh-credentials-endpoint".into(),
        refresh_endpoint.to_owned(),
    );
    config.insert("adls.refresh-credentials-enabled".into(), "true".into());
    Ok((config, expires_at_ms))
}

/// `https` only, unless the endpoint is plain HTTP (emulators).
fn protocol(profile: &AdlsProfile) -> &'static str {
    match &profile.endpoint {
        Some(ep) if ep.starts_with("http://") => "https,http",
        _ => "https",
    }
}

/// The non-secret client settings of an ADLS warehouse: account name and endpoint overrides.
pub fn adls_client_config(profile: &AdlsProfile) -> BTreeMap<String, String> {
    let mut config = BTreeMap::new();
    config.insert("adls.account-name".into(), profile.account.clone());
    if let Some(ep) = &profile.endpoint
        && let Ok(url) = url::Url::parse(ep)
    {
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        for service in ["blob", "dfs"] {
            config.insert(
                format!("adls.{service}-storage-authority"),
                authority.clone(),
            );
            config.insert(
                format!("adls.{service}-storage-scheme"),
                url.scheme().into(),
            );
        }
    }
    config
}

/// A SAS URL for one blob: read for GET, create and write for PUT.
pub async fn presigned_blob_url(
    wh: WarehouseStorage<'_>,
    profile: &AdlsProfile,
    path: &str,
    write: bool,
    ttl: std::time::Duration,
) -> VendingResult<String> {
    let now = Utc::now();
    let (token, _) = sign_for(
        wh,
        SasRequest {
            account: &profile.account,
            container: &profile.container,
            resource: SasResource::Blob {
                path: path.to_owned(),
            },
            permissions: if write { "cw" } else { "r" },
            start: now - Duration::minutes(5),
            expiry: now + Duration::milliseconds(ttl.as_millis() as i64),
            protocol: protocol(profile),
        },
    )
    .await?;
    Ok(format!(
        "{}/{}/{}?{token}",
        profile.blob_endpoint(),
        profile.container,
        encode_blob_path(path)
    ))
}

/// Checks an ADLS profile; the message names the setting at fault.
pub fn check_adls_profile(p: &AdlsProfile, has_credential: bool) -> Result<(), String> {
    let name_ok = |s: &str, max: usize| {
        (3..=max).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !name_ok(&p.account, 24) || p.account.contains('-') {
        return Err(format!(
            "account '{}' is not a storage account name (3-24 lowercase letters and digits)",
            p.account
        ));
    }
    if !name_ok(&p.container, 63) {
        return Err(format!(
            "container '{}' is not a container name (3-63 lowercase letters, digits and '-')",
            p.container
        ));
    }
    if let Some(ep) = &p.endpoint
        && !(ep.starts_with("http://") || ep.starts_with("https://"))
    {
        return Err("endpoint must be an http:// or https:// URL".into());
    }
    if !(60..=MAX_SAS_SECS).contains(&p.sas_duration_secs) {
        return Err(format!(
            "sas_duration_secs must be between 60 and {MAX_SAS_SECS} (7 days), not {}",
            p.sas_duration_secs
        ));
    }
    if !has_credential {
        return Err(
            "an ADLS warehouse needs an azure-shared-key or azure-client-secret storage credential"
                .into(),
        );
    }
    if p.vending && !p.hierarchical_namespace && !p.allow_container_scope {
        return Err("without a hierarchical namespace no SAS can be scoped to a table: set allow_container_scope (UNSCOPED container-wide tokens) or vending = false".into());
    }
    Ok(())
}

#[async_trait::async_trait]
impl StorageKind for AdlsProfile {
    fn root_location(&self) -> String {
        super::join_root("abfss", &self.authority(), &self.key_prefix)
    }

    fn tidied(&self) -> StorageProfile {
        StorageProfile::Adls(Self {
            key_prefix: self.key_prefix.trim_matches('/').to_owned(),
            ..self.clone()
        })
    }

    /// The server's Blob client and the SAS signer it shares with vending, with the account key
    /// or Entra ID application of the warehouse's credential.
    async fn open(
        &self,
        secret: Option<&StorageSecret>,
        warehouse: &str,
        timeouts: &OutboundTimeouts,
    ) -> Result<ServerAccessParts, IoError> {
        let Some(StorageSecret::Azure(auth)) = secret else {
            return Err(IoError::Misconfigured(
                warehouse.to_owned(),
                "an ADLS warehouse needs an azure-shared-key or azure-client-secret credential"
                    .into(),
            ));
        };
        let signer = Arc::new(AzureSigner::new(self, auth.clone(), timeouts));
        Ok((
            Arc::new(AzureIo::new(self, signer.clone(), timeouts)),
            Some(signer),
        ))
    }

    fn credential_kinds(&self) -> &'static [CredentialKind] {
        &[
            CredentialKind::AzureSharedKey,
            CredentialKind::AzureClientSecret,
        ]
    }

    fn check(&self, has_credential: bool) -> Result<(), String> {
        check_adls_profile(self, has_credential)
    }

    fn client_config(&self) -> BTreeMap<String, String> {
        adls_client_config(self)
    }

    fn vends(&self) -> bool {
        self.vending
    }

    /// A SAS token for the table's directory (hierarchical namespace), or for the whole container
    /// where the profile allows that unscoped fallback (logged).
    async fn vend(&self, issuer: &Issuer, t: &TableAccess<'_>) -> VendingResult<VendedCredential> {
        let profile = self;
        if !profile.hierarchical_namespace {
            issuer.warn_unscoped(t.warehouse, "container-wide SAS tokens");
        }
        let signed = table_sas(
            t.warehouse,
            profile,
            t.location,
            t.access,
            &t.refresh_endpoint,
        )
        .await;
        // Only a user-delegation key is asked of a token service (Entra ID); an account key signs
        // here.
        if t.warehouse
            .azure_signer()
            .is_some_and(|s| s.asks_a_token_service())
        {
            issuer.note_token_service(t.warehouse.id, super::call_outcome(&signed));
        }
        let (config, expires_at_ms) = signed?;
        let location = normalize_location(t.location).map_err(VendingError::invalid)?;
        Ok(VendedCredential::new(
            format!("{location}/"),
            config,
            Some(expires_at_ms),
        ))
    }

    /// Signs a read-only SAS for a sample table and checks what it allows; a container without a
    /// hierarchical namespace is warned of.
    async fn validate(
        &self,
        check: &Validation<'_>,
        steps: &mut Steps,
        warnings: &mut Vec<String>,
    ) {
        if !self.hierarchical_namespace {
            let w =
                "no hierarchical namespace: vended SAS tokens reach the whole container (UNSCOPED)";
            tracing::warn!(warehouse = %check.warehouse.name, "{w}");
            warnings.push(w.to_owned());
        }
        let http = check
            .issuer
            .options
            .timeouts
            .http_client(crate::outbound::Outbound::Storage);
        validate_sas(&http, check.warehouse, self, steps).await;
    }

    /// A SAS URL for one blob inside the table.
    async fn presign(
        &self,
        issuer: &Issuer,
        t: &TableAccess<'_>,
        file: &str,
        method: PresignMethod,
    ) -> VendingResult<(String, std::time::Duration)> {
        let ttl = issuer.options.presign_ttl;
        let file = file_inside(file, t.location).map_err(refused)?;
        let path = blob_path(t.warehouse, self, &file)?;
        let put = method == PresignMethod::Put;
        let url = presigned_blob_url(t.warehouse, self, &path, put, ttl).await?;
        Ok((url, ttl))
    }
}

/// What validation checks a sample table's SAS can and cannot do.
const SAS_CHECKS: &[&str] = &[
    "read a file of the sample table with the SAS",
    "the read-only SAS cannot write",
];

/// Signs a read-only SAS the way vending does for a sample table and checks what it allows: it
/// reads a file there and cannot write one.
async fn validate_sas(
    http: &reqwest::Client,
    wh: WarehouseStorage<'_>,
    profile: &AdlsProfile,
    steps: &mut Steps,
) {
    let sample = format!("{}/.floe-validate/{}", wh.root(), Uuid::now_v7());
    let probe = format!("{sample}/probe");
    let sas = table_sas(wh, profile, &sample, DataAccess::Read, "")
        .await
        .map(|(config, _)| config["adls.sas-token"].clone());
    let sas = match sas {
        Ok(t) => {
            steps.record("sign a read-only SAS for a sample table", Ok(()));
            t
        }
        Err(e) => {
            steps.record("sign a read-only SAS for a sample table", Err(failure(&e)));
            let why = "no SAS could be signed";
            steps.not_run(SAS_CHECKS, why);
            return;
        }
    };
    if let Err(e) = wh
        .io()
        .write(&probe, Bytes::from_static(b"floe SAS probe"))
        .await
    {
        let why = format!("the server could not write a file for it to read: {e}");
        steps.not_run(SAS_CHECKS, &why);
        return;
    }
    let url = |path: &str| {
        let blob = path
            .strip_prefix(&format!("abfss://{}/", profile.authority()))
            .unwrap_or(path);
        format!(
            "{}/{}/{}{sas}",
            profile.blob_endpoint(),
            profile.container,
            encode_blob_path(blob)
        )
    };
    let read = http
        .get(url(&probe))
        .header("x-ms-version", sas::SAS_VERSION)
        .send()
        .await;
    steps.record(
        "read a file of the sample table with the SAS",
        match read {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status())),
            Err(e) => Err(e.to_string()),
        },
    );
    let write = http
        .put(url(&format!("{sample}/written")))
        .header("x-ms-blob-type", "BlockBlob")
        .header("x-ms-version", sas::SAS_VERSION)
        .body("x")
        .send()
        .await;
    steps.record(
        "the read-only SAS cannot write",
        match write {
            Ok(r) if r.status().is_success() => {
                let _ = wh.io().delete(&format!("{sample}/written")).await;
                Err("a read-only SAS wrote a file".into())
            }
            _ => Ok(()),
        },
    );
    let _ = wh.io().delete(&probe).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> AdlsProfile {
        serde_json::from_value(serde_json::json!({"account": "acct", "container": "lake"})).unwrap()
    }

    #[test]
    fn profile_checks_name_the_setting() {
        let mut p = profile();
        assert!(p.hierarchical_namespace && p.vending, "defaults");
        assert!(check_adls_profile(&p, true).is_ok());
        assert!(
            check_adls_profile(&p, false)
                .unwrap_err()
                .contains("credential")
        );
        p.hierarchical_namespace = false;
        assert!(
            check_adls_profile(&p, true)
                .unwrap_err()
                .contains("allow_container_scope")
        );
        p.allow_container_scope = true;
        assert!(check_adls_profile(&p, true).is_ok());
        p.sas_duration_secs = MAX_SAS_SECS + 1;
        assert!(check_adls_profile(&p, true).unwrap_err().contains("7 days"));
        p.sas_duration_secs = 3600;
        p.account = "Bad_Account".into();
        assert!(
            check_adls_profile(&p, true)
                .unwrap_err()
                .contains("account")
        );
    }

    #[test]
    fn emulator_endpoints_become_client_authorities() {
        let mut p = profile();
        p.endpoint = Some("http://127.0.0.1:10000/devstoreaccount1".into());
        let c = adls_client_config(&p);
        assert_eq!(c["adls.blob-storage-authority"], "127.0.0.1:10000");
        assert_eq!(c["adls.dfs-storage-scheme"], "http");
        assert_eq!(c["adls.account-name"], "acct");
        assert!(!adls_client_config(&profile()).contains_key("adls.blob-storage-authority"));
    }
}
