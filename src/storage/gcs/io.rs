//! A warehouse in a Google Cloud Storage bucket, reached over the JSON API with tokens of the
//! warehouse's service account (obtained by gcp_auth from the key's `token_uri`).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use gcp_auth::{CustomServiceAccount, TokenProvider};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::GcsProfile;
use crate::storage::{IoError, WarehouseIo};

/// Scope of the server's own tokens and the source of downscoped ones.
pub const STORAGE_SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// A service account: its token source and signer, and its e-mail (the signed-URL credential).
pub struct GcsServiceAccount {
    pub client_email: String,
    /// The key file, kept to start a fresh token cache when the cached token is too old.
    key_json: String,
    account: tokio::sync::RwLock<Arc<CustomServiceAccount>>,
    /// Longest a token fetch may take (gcp_auth's own client has no deadline).
    deadline: std::time::Duration,
}

impl GcsServiceAccount {
    /// Parses a service-account key file (JSON).
    pub fn from_json(json: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Key {
            client_email: String,
        }
        let key: Key = serde_json::from_str(json)
            .map_err(|e| format!("the service-account key is not valid JSON: {e}"))?;
        let account = CustomServiceAccount::from_json(json)
            .map_err(|e| format!("the service-account key cannot be used: {e}"))?;
        Ok(Self {
            client_email: key.client_email,
            key_json: json.to_owned(),
            account: tokio::sync::RwLock::new(Arc::new(account)),
            deadline: crate::outbound::OutboundTimeouts::default()
                .total(crate::outbound::Outbound::Identity),
        })
    }

    /// The same account, with token fetches cut off after `deadline`.
    pub fn with_deadline(mut self, deadline: std::time::Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Runs a token fetch within the deadline.
    async fn fetch(&self, account: &CustomServiceAccount) -> Result<Arc<gcp_auth::Token>, String> {
        match tokio::time::timeout(self.deadline, account.token(&[STORAGE_SCOPE])).await {
            Ok(token) => token.map_err(|e| format!("no token for {}: {e}", self.client_email)),
            Err(_) => Err(format!(
                "no token for {}: the token endpoint did not answer within {} ms",
                self.client_email,
                self.deadline.as_millis()
            )),
        }
    }

    /// An access token for the storage scope (cached by gcp_auth until it expires).
    pub async fn token(&self) -> Result<Arc<gcp_auth::Token>, String> {
        let account = self.account.read().await.clone();
        self.fetch(&account).await
    }

    /// A token with at least `at_least` of its life left: the cached one, or a new one (a
    /// downscoped token lives only as long as the token it was made from).
    pub async fn token_lasting(
        &self,
        at_least: std::time::Duration,
    ) -> Result<Arc<gcp_auth::Token>, String> {
        let token = self.token().await?;
        let until = chrono::Utc::now()
            + chrono::Duration::from_std(at_least).unwrap_or(chrono::Duration::zero());
        if token.expires_at() > until {
            return Ok(token);
        }
        let fresh = Arc::new(
            CustomServiceAccount::from_json(&self.key_json)
                .map_err(|e| format!("the service-account key cannot be used: {e}"))?,
        );
        let token = self.fetch(&fresh).await?;
        *self.account.write().await = fresh;
        Ok(token)
    }

    /// Signs `input` with the service account's private key (RSA-SHA256).
    pub async fn sign(&self, input: &[u8]) -> Result<Vec<u8>, String> {
        let account = self.account.read().await.clone();
        account
            .signer()
            .sign(input)
            .map_err(|e| format!("cannot sign with the service account's key: {e}"))
    }
}

/// GCS [`WarehouseIo`] for one bucket.
pub struct GcsIo {
    http: reqwest::Client,
    profile: GcsProfile,
    account: Arc<GcsServiceAccount>,
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn storage(location: &str, e: impl std::fmt::Display) -> IoError {
    IoError::storage(location, e)
}

impl GcsIo {
    /// IO for the profile's bucket with the service account's tokens.
    pub fn new(
        profile: &GcsProfile,
        account: Arc<GcsServiceAccount>,
        timeouts: &crate::outbound::OutboundTimeouts,
    ) -> Self {
        Self {
            http: timeouts.http_client(crate::outbound::Outbound::Storage),
            profile: profile.clone(),
            account,
        }
    }

    fn name_of<'a>(&self, location: &'a str) -> Result<&'a str, IoError> {
        location
            .strip_prefix(&format!("gs://{}/", self.profile.bucket))
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                IoError::BadLocation(
                    location.into(),
                    format!("not in gs://{}", self.profile.bucket),
                )
            })
    }

    async fn bearer(&self, location: &str) -> Result<String, IoError> {
        let token = self
            .account
            .token()
            .await
            .map_err(|e| storage(location, e))?;
        Ok(format!("Bearer {}", token.as_str()))
    }

    fn object_url(&self, name: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.profile.storage_endpoint(),
            self.profile.bucket,
            encode(name)
        )
    }
}

async fn check(location: &str, r: reqwest::Response) -> Result<reqwest::Response, IoError> {
    if r.status().is_success() {
        Ok(r)
    } else {
        Err(IoError::from_status(
            location,
            r.status().as_u16(),
            format!("HTTP {}", r.status()),
        ))
    }
}

#[async_trait]
impl WarehouseIo for GcsIo {
    async fn write(&self, location: &str, bytes: Bytes) -> Result<(), IoError> {
        let name = self.name_of(location)?;
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
            self.profile.storage_endpoint(),
            self.profile.bucket,
            encode(name)
        );
        let r = self
            .http
            .post(url)
            .header("authorization", self.bearer(location).await?)
            // Not `application/json`: some emulators parse such bodies instead of storing them.
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .map_err(|e| storage(location, e))?;
        check(location, r).await?;
        Ok(())
    }

    async fn read(&self, location: &str, max_bytes: u64) -> Result<Bytes, IoError> {
        let name = self.name_of(location)?;
        let r = self
            .http
            .get(format!("{}?alt=media", self.object_url(name)))
            .header("authorization", self.bearer(location).await?)
            .send()
            .await
            .map_err(|e| storage(location, e))?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(IoError::NotFound(location.into()));
        }
        let r = check(location, r).await?;
        crate::storage::io::bounded_body(location, r, max_bytes).await
    }

    async fn delete(&self, location: &str) -> Result<(), IoError> {
        let name = self.name_of(location)?;
        let r = self
            .http
            .delete(self.object_url(name))
            .header("authorization", self.bearer(location).await?)
            .send()
            .await
            .map_err(|e| storage(location, e))?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        check(location, r).await?;
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, IoError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            items: Vec<Item>,
            #[serde(rename = "nextPageToken")]
            next: Option<String>,
        }
        #[derive(Deserialize)]
        struct Item {
            name: String,
        }
        let dir = format!("{}/", self.name_of(prefix)?.trim_end_matches('/'));
        let mut deleted = 0;
        let mut token: Option<String> = None;
        loop {
            let mut url = format!(
                "{}/storage/v1/b/{}/o?prefix={}",
                self.profile.storage_endpoint(),
                self.profile.bucket,
                encode(&dir)
            );
            if let Some(t) = &token {
                url.push_str(&format!("&pageToken={}", encode(t)));
            }
            let r = self
                .http
                .get(url)
                .header("authorization", self.bearer(prefix).await?)
                .send()
                .await
                .map_err(|e| storage(prefix, e))?;
            let page: Page = check(prefix, r)
                .await?
                .json()
                .await
                .map_err(|e| storage(prefix, e))?;
            for item in page.items {
                self.delete(&format!("gs://{}/{}", self.profile.bucket, item.name))
                    .await?;
                deleted += 1;
            }
            match page.next {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(deleted),
            }
        }
    }
}
