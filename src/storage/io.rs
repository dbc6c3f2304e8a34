//! The server's own file access to a warehouse: the [`WarehouseIo`] trait every storage kind
//! implements, [`ObservedIo`] (which records every call's outcome for the readiness detail), its errors ([`IoError`], named by location and never carrying a URL's query
//! string), and reading bounded bodies.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::domain::WarehouseId;
use crate::reachability::{Failure, Reachability, Upstream};

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

/// A warehouse's storage IO whose every call's outcome is recorded.
pub struct ObservedIo {
    inner: Arc<dyn WarehouseIo>,
    warehouse: WarehouseId,
    reachability: Arc<Reachability>,
}

impl ObservedIo {
    pub fn wrap(
        inner: Arc<dyn WarehouseIo>,
        warehouse: WarehouseId,
        reachability: Arc<Reachability>,
    ) -> Arc<dyn WarehouseIo> {
        Arc::new(Self {
            inner,
            warehouse,
            reachability,
        })
    }

    fn note<T>(&self, result: &Result<T, IoError>) {
        let outcome = match result {
            // The storage answered, whatever it said about the file.
            Ok(_)
            | Err(IoError::NotFound(_) | IoError::TooLarge(..) | IoError::BadLocation(..)) => {
                Ok(())
            }
            Err(IoError::Storage(..) | IoError::Full(..)) => Err(Failure::Unavailable),
            Err(IoError::Refused(..) | IoError::Misconfigured(..)) => Err(Failure::Refused),
        };
        self.reachability
            .record(self.warehouse, Upstream::Storage, outcome);
    }
}

#[async_trait]
impl WarehouseIo for ObservedIo {
    async fn write(&self, location: &str, bytes: Bytes) -> Result<(), IoError> {
        let result = self.inner.write(location, bytes).await;
        self.note(&result);
        result
    }

    async fn read(&self, location: &str, max_bytes: u64) -> Result<Bytes, IoError> {
        let result = self.inner.read(location, max_bytes).await;
        self.note(&result);
        result
    }

    async fn delete(&self, location: &str) -> Result<(), IoError> {
        let result = self.inner.delete(location).await;
        self.note(&result);
        result
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, IoError> {
        let result = self.inner.delete_prefix(prefix).await;
        self.note(&result);
        result
    }

    async fn prepare_table_location(&self, location: &str) -> Result<(), IoError> {
        let result = self.inner.prepare_table_location(location).await;
        self.note(&result);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
