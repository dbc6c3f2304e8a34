//! A warehouse in an S3 bucket (or an S3-compatible store), reached with the server's own credentials.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use bytes::Bytes;

use crate::storage::{IoError, WarehouseIo};

/// Static keys for the server's own S3 access (vending to clients is separate).
#[derive(Clone)]
pub struct S3StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Set for temporary (STS) keys.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// S3 [`WarehouseIo`] for one bucket.
pub struct S3Io {
    client: Client,
    bucket: String,
}

impl S3Io {
    /// Builds a client; with no static keys the AWS default chain (env, profile, IMDS...) is used.
    pub async fn new(
        bucket: &str,
        region: &str,
        endpoint: Option<&str>,
        path_style: bool,
        credentials: Option<S3StaticCredentials>,
        timeouts: &crate::outbound::OutboundTimeouts,
    ) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .timeout_config(timeouts.aws(crate::outbound::Outbound::Storage));
        if let Some(c) = credentials {
            loader = loader.credentials_provider(Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                c.session_token,
                None,
                "floe-warehouse",
            ));
        }
        let shared = loader.load().await;
        let mut conf = aws_sdk_s3::config::Builder::from(&shared).force_path_style(path_style);
        if let Some(ep) = endpoint {
            conf = conf.endpoint_url(ep);
        }
        Self {
            client: Client::from_conf(conf.build()),
            bucket: bucket.to_owned(),
        }
    }

    fn key_of<'a>(&self, location: &'a str) -> Result<&'a str, IoError> {
        let rest = location
            .strip_prefix("s3://")
            .ok_or_else(|| IoError::BadLocation(location.into(), "not an s3:// location".into()))?;
        match rest.split_once('/') {
            Some((bucket, key)) if bucket == self.bucket && !key.is_empty() => Ok(key),
            _ => Err(IoError::BadLocation(
                location.into(),
                format!("not in bucket {}", self.bucket),
            )),
        }
    }
}

fn storage(location: &str, e: impl std::fmt::Display) -> IoError {
    IoError::storage(location, e)
}

/// What a failed S3 call means: the status of S3's answer decides (a refusal of the server's keys,
/// a missing bucket), and no answer at all is trouble.
fn s3_error<E>(
    location: &str,
    e: aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> IoError
where
    E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + Send + Sync + 'static,
{
    use aws_sdk_s3::error::ProvideErrorMetadata;
    let status = e.raw_response().map(|r| r.status().as_u16());
    let no_bucket = e.code() == Some("NoSuchBucket");
    let detail = aws_sdk_s3::error::DisplayErrorContext(e);
    match status {
        // A missing bucket is the warehouse's setup; a missing object is answered as such.
        _ if no_bucket => IoError::Refused(
            location.to_owned(),
            crate::storage::io::redact_urls(&detail.to_string()),
        ),
        Some(status) if status != 404 => IoError::from_status(location, status, detail),
        _ => storage(location, detail),
    }
}

#[async_trait]
impl WarehouseIo for S3Io {
    async fn write(&self, location: &str, bytes: Bytes) -> Result<(), IoError> {
        let key = self.key_of(location)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| s3_error(location, e))?;
        Ok(())
    }

    async fn read(&self, location: &str, max_bytes: u64) -> Result<Bytes, IoError> {
        let key = self.key_of(location)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    IoError::NotFound(location.into())
                } else {
                    s3_error(location, e)
                }
            })?;
        if let Some(len) = out.content_length() {
            crate::storage::io::check_size(location, len.max(0) as u64, max_bytes)?;
        }
        let mut body = out.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.try_next().await.map_err(|e| storage(location, e))? {
            crate::storage::io::check_size(
                location,
                (bytes.len() + chunk.len()) as u64,
                max_bytes,
            )?;
            bytes.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(bytes))
    }

    async fn delete(&self, location: &str) -> Result<(), IoError> {
        let key = self.key_of(location)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error(location, e))?;
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, IoError> {
        let key_prefix = format!("{}/", self.key_of(prefix)?.trim_end_matches('/'));
        let mut deleted = 0;
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&key_prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| s3_error(prefix, e))?;
            let ids: Vec<ObjectIdentifier> = page
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
                .collect();
            if !ids.is_empty() {
                deleted += ids.len() as u64;
                let delete = Delete::builder()
                    .set_objects(Some(ids))
                    .build()
                    .map_err(|e| storage(prefix, e))?;
                self.client
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(|e| s3_error(prefix, e))?;
            }
            match page.next_continuation_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(deleted),
            }
        }
    }
}
