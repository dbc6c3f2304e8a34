//! A warehouse in an Azure storage container, reached over the Blob REST API with SAS tokens the
//! server signs itself with the account key (short-lived, container-wide, never handed out).

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{Duration, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use std::sync::Arc;

use super::AdlsProfile;
use super::auth::AzureSigner;
use super::sas::{SAS_VERSION, SasRequest, SasResource};
use crate::storage::{IoError, WarehouseIo};

/// Characters left as they are in a blob path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Blob paths are URL-encoded segment by segment.
pub fn encode_blob_path(path: &str) -> String {
    path.split('/')
        .map(|s| utf8_percent_encode(s, PATH_SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Azure [`WarehouseIo`] for one container.
pub struct AzureIo {
    http: reqwest::Client,
    profile: AdlsProfile,
    signer: Arc<AzureSigner>,
}

impl AzureIo {
    /// IO for the profile's container, with SAS tokens from `signer`.
    pub fn new(
        profile: &AdlsProfile,
        signer: Arc<AzureSigner>,
        timeouts: &crate::outbound::OutboundTimeouts,
    ) -> Self {
        Self {
            http: timeouts.http_client(crate::outbound::Outbound::Storage),
            profile: profile.clone(),
            signer,
        }
    }

    /// The blob path of an `abfss://container@account.dfs.core.windows.net/path` location.
    fn path_of<'a>(&self, location: &'a str) -> Result<&'a str, IoError> {
        let prefix = format!("abfss://{}/", self.profile.authority());
        location
            .strip_prefix(&prefix)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                IoError::BadLocation(
                    location.into(),
                    format!("not under abfss://{}", self.profile.authority()),
                )
            })
    }

    /// A container SAS for the server's own requests (read, add, create, write, delete, list).
    async fn sas(&self) -> Result<String, IoError> {
        let now = Utc::now();
        self.signer
            .sign(SasRequest {
                account: &self.profile.account,
                container: &self.profile.container,
                resource: SasResource::Container,
                permissions: "racwdl",
                start: now - Duration::minutes(5),
                expiry: now + Duration::minutes(30),
                protocol: "https,http",
            })
            .await
            .map(|(token, _)| token)
            .map_err(|e| IoError::from_call(self.profile.account.clone(), e))
    }

    /// A request for the blob at `location`, with a fresh SAS and the service version.
    async fn blob_request(
        &self,
        method: reqwest::Method,
        location: &str,
    ) -> Result<reqwest::RequestBuilder, IoError> {
        let url = self.blob_url(self.path_of(location)?).await?;
        Ok(self
            .http
            .request(method, url)
            .header("x-ms-version", SAS_VERSION))
    }

    async fn blob_url(&self, path: &str) -> Result<String, IoError> {
        Ok(format!(
            "{}/{}/{}?{}",
            self.profile.blob_endpoint(),
            self.profile.container,
            encode_blob_path(path),
            self.sas().await?
        ))
    }
}

fn storage(location: &str, e: impl std::fmt::Display) -> IoError {
    IoError::storage(location, e)
}

async fn check(location: &str, r: reqwest::Response) -> Result<reqwest::Response, IoError> {
    if r.status().is_success() {
        return Ok(r);
    }
    let status = r.status();
    let code = r
        .headers()
        .get("x-ms-error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Err(IoError::from_status(
        location,
        status.as_u16(),
        format!("HTTP {status} {code}"),
    ))
}

#[async_trait]
impl WarehouseIo for AzureIo {
    async fn write(&self, location: &str, bytes: Bytes) -> Result<(), IoError> {
        let r = self
            .blob_request(reqwest::Method::PUT, location)
            .await?
            .header("x-ms-blob-type", "BlockBlob")
            .header("content-type", "application/json")
            .body(bytes)
            .send()
            .await
            .map_err(|e| storage(location, e))?;
        check(location, r).await?;
        Ok(())
    }

    async fn read(&self, location: &str, max_bytes: u64) -> Result<Bytes, IoError> {
        let r = self
            .blob_request(reqwest::Method::GET, location)
            .await?
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
        let r = self
            .blob_request(reqwest::Method::DELETE, location)
            .await?
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
        let dir = format!("{}/", self.path_of(prefix)?.trim_end_matches('/'));
        let mut deleted = 0;
        let mut marker = String::new();
        loop {
            let url = format!(
                "{}/{}?restype=container&comp=list&prefix={}&marker={}&{}",
                self.profile.blob_endpoint(),
                self.profile.container,
                utf8_percent_encode(&dir, PATH_SEGMENT),
                utf8_percent_encode(&marker, PATH_SEGMENT),
                self.sas().await?
            );
            let r = self
                .http
                .get(url)
                .header("x-ms-version", SAS_VERSION)
                .send()
                .await
                .map_err(|e| storage(prefix, e))?;
            let body = check(prefix, r)
                .await?
                .text()
                .await
                .map_err(|e| storage(prefix, e))?;
            let (names, next) = parse_listing(&body).map_err(|e| storage(prefix, e))?;
            for name in names {
                self.delete(&format!("abfss://{}/{name}", self.profile.authority()))
                    .await?;
                deleted += 1;
            }
            match next {
                Some(m) if !m.is_empty() => marker = m,
                _ => return Ok(deleted),
            }
        }
    }
}

/// Blob names and the next marker of a `List Blobs` answer.
fn parse_listing(xml: &str) -> Result<(Vec<String>, Option<String>), String> {
    use aws_smithy_xml::decode::{Document, try_data};
    let mut doc = Document::new(xml);
    let mut root = doc.root_element().map_err(|e| e.to_string())?;
    let (mut names, mut next) = (Vec::new(), None);
    while let Some(mut el) = root.next_tag() {
        if el.start_el().matches("Blobs") {
            while let Some(mut blob) = el.next_tag() {
                while let Some(mut field) = blob.next_tag() {
                    if field.start_el().matches("Name") {
                        names.push(
                            try_data(&mut field)
                                .map_err(|e| e.to_string())?
                                .into_owned(),
                        );
                    }
                }
            }
        } else if el.start_el().matches("NextMarker") {
            next = Some(try_data(&mut el).map_err(|e| e.to_string())?.into_owned());
        }
    }
    Ok((names, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_parse() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="x" ContainerName="c"><Prefix>wh/</Prefix><Blobs><Blob><Name>wh/a b</Name><Properties><Content-Length>1</Content-Length></Properties></Blob><Blob><Name>wh/c</Name></Blob></Blobs><NextMarker>m2</NextMarker></EnumerationResults>"#;
        let (names, next) = parse_listing(xml).unwrap();
        assert_eq!(names, vec!["wh/a b".to_owned(), "wh/c".to_owned()]);
        assert_eq!(next.as_deref(), Some("m2"));
        assert_eq!(encode_blob_path("wh/a b/c+d"), "wh/a%20b/c%2Bd");
    }
}
