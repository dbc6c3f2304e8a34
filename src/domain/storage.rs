//! Where a warehouse keeps its files: one typed profile per storage kind (local disk, S3, ADLS,
//! GCS), as tenants write them and the store keeps them. What each kind hands out, and which
//! settings it accepts, is [`crate::vending`]'s; how the server reaches it, [`crate::warehouse_io`]'s.

use serde::{Deserialize, Serialize};

/// Where a warehouse keeps its files and how the server itself reaches them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
// Built once per warehouse change and kept behind an `Arc`: size does not matter here.
#[allow(clippy::large_enum_variant)]
pub enum StorageProfile {
    /// A directory on the server's own disk (`file:///abs/path`).
    Local { root: String },
    /// An S3 bucket (or S3-compatible store) under an optional key prefix.
    S3(S3Profile),
    /// An Azure storage container (ADLS Gen2 filesystem) under an optional prefix.
    Adls(AdlsProfile),
    /// A Google Cloud Storage bucket under an optional prefix.
    Gcs(GcsProfile),
}

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
    #[serde(default = "yes")]
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
    #[serde(default = "yes")]
    pub hierarchical_namespace: bool,
    /// Without a hierarchical namespace no SAS can be scoped to a directory; only with this set
    /// are container-wide (UNSCOPED) tokens handed out.
    #[serde(default)]
    pub allow_container_scope: bool,
    /// Lifetime of vended SAS tokens, 60..=604800 seconds (7 days).
    #[serde(default = "default_sas_secs")]
    pub sas_duration_secs: u32,
    /// Hand out SAS tokens (`true`, the default) or nothing.
    #[serde(default = "yes")]
    pub vending: bool,
    /// Entra ID authority for `azure-client-secret` credentials; `https://login.microsoftonline.com`
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_host: Option<String>,
}

fn yes() -> bool {
    true
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

/// How clients get access to the files of an S3 warehouse's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum S3Vending {
    /// Table-scoped STS sessions (AssumeRole with a session policy naming the table's prefix).
    Sts,
    /// The warehouse's own keys, unscoped: every client reaches the whole bucket.
    Static,
    /// No credentials are handed out; clients bring their own storage access.
    Off,
}

/// An S3 warehouse: where it is, how the server reaches it, and how clients get access.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct S3Profile {
    pub bucket: String,
    /// Keys of the warehouse start with this (no leading or trailing `/`).
    #[serde(default)]
    pub key_prefix: String,
    pub region: String,
    /// S3 endpoint for S3-compatible stores (`http://host:port`); AWS when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), as most S3-compatible stores need.
    #[serde(default)]
    pub path_style: bool,
    /// STS endpoint; AWS's regional STS when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_endpoint: Option<String>,
    /// Role assumed for read access (and for write access when no write role is set and
    /// `write_uses_read_role` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_role_arn: Option<String>,
    /// Role assumed for read-write access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_role_arn: Option<String>,
    /// Without a write role, assume the read role for read-write sessions too. When false and no
    /// write role is set, writers get read-only credentials.
    #[serde(default)]
    pub write_uses_read_role: bool,
    /// `ExternalId` sent with AssumeRole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Lifetime of vended sessions, 900..=43200 seconds.
    #[serde(default = "default_session_secs")]
    pub session_duration_secs: u32,
    /// KMS key the bucket encrypts with; sessions may use it (decrypt; encrypt for writers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// Also send `SourceIdentity` (the principal) with AssumeRole; the role's trust policy must
    /// allow `sts:SetSourceIdentity`.
    #[serde(default)]
    pub source_identity: bool,
    /// `sts` (the default when a read role is set), `static`, or `off` (the default otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vending: Option<S3Vending>,
    /// Offer remote signing (`s3.remote-signing-enabled`) to clients that ask for it.
    #[serde(default)]
    pub remote_signing: bool,
    /// Whether the remote signer signs batch deletes (`POST ?delete`). It checks every key of the
    /// body and signs that body's SHA-256, which binds the body only where the storage verifies
    /// `x-amz-content-sha256` (AWS S3 does; SeaweedFS does not: any body could be sent with the
    /// signature). Unset: on for AWS (no `endpoint`), off for any other endpoint; clients then
    /// delete one object at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_batch_deletes: Option<bool>,
}

fn default_session_secs() -> u32 {
    3600
}

impl S3Profile {
    /// The vending mode in force: as set, else `sts` with a read role and `off` without.
    pub fn vending_mode(&self) -> S3Vending {
        self.vending.unwrap_or(if self.read_role_arn.is_some() {
            S3Vending::Sts
        } else {
            S3Vending::Off
        })
    }

    /// A profile for `bucket` with nothing but its place set.
    pub fn new(bucket: &str, key_prefix: &str, region: &str) -> Self {
        Self {
            bucket: bucket.to_owned(),
            key_prefix: key_prefix.trim_matches('/').to_owned(),
            region: region.to_owned(),
            endpoint: None,
            path_style: false,
            sts_endpoint: None,
            read_role_arn: None,
            write_role_arn: None,
            write_uses_read_role: false,
            external_id: None,
            session_duration_secs: default_session_secs(),
            kms_key_arn: None,
            source_identity: false,
            vending: None,
            remote_signing: false,
            sign_batch_deletes: None,
        }
    }

    /// Whether the remote signer signs batch deletes: as set, else only on AWS S3, which
    /// verifies a signed payload hash against the body it receives.
    pub fn signs_batch_deletes(&self) -> bool {
        self.sign_batch_deletes.unwrap_or(self.endpoint.is_none())
    }
}

impl StorageProfile {
    /// The warehouse root as a URL without a trailing slash, e.g. `s3://bucket/prefix`.
    pub fn root_location(&self) -> String {
        match self {
            StorageProfile::Local { root } => root.trim_end_matches('/').to_owned(),
            StorageProfile::S3(s3) => join_root("s3", &s3.bucket, &s3.key_prefix),
            StorageProfile::Adls(a) => join_root("abfss", &a.authority(), &a.key_prefix),
            StorageProfile::Gcs(g) => join_root("gs", &g.bucket, &g.key_prefix),
        }
    }
}

fn join_root(scheme: &str, authority: &str, prefix: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}/{prefix}")
    }
}
