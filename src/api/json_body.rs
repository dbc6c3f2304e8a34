//! JSON answers sent as the shared pieces they are made of.
//!
//! Owns: [`JsonBody`] (an answer's bytes as a short list of shared `Bytes`, written out piece by
//! piece) and [`metadata_body`], the table and view answers assembled around the cached metadata.
//! Must not touch: what goes into an answer (the handlers and use-cases decide that).
//!
//! A table's metadata is cached as one `Bytes` and may be hundreds of kilobytes. An answer that
//! copied it into a new buffer would copy it twice on the way out, since actix's HTTP/1 encoder
//! copies every body chunk into its write buffer. Sent as pieces, it is copied once, by actix.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use bytes::Bytes;

/// A JSON answer's bytes: the concatenation of its pieces, in order.
#[derive(Debug, Clone)]
pub struct JsonBody {
    /// The pieces, last first (sending pops them).
    pieces: Vec<Bytes>,
    len: usize,
}

impl JsonBody {
    /// A body of one piece.
    pub fn whole(bytes: Bytes) -> Self {
        let len = bytes.len();
        Self {
            pieces: vec![bytes],
            len,
        }
    }

    /// A body of `pieces`, in order.
    pub fn of(mut pieces: Vec<Bytes>) -> Self {
        pieces.retain(|p| !p.is_empty());
        pieces.reverse();
        let len = pieces.iter().map(Bytes::len).sum();
        Self { pieces, len }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its bytes in one buffer: a copy, for keeping an answer (an idempotent replay) or reading
    /// it, never on the way out.
    pub fn to_bytes(&self) -> Bytes {
        match self.pieces.as_slice() {
            [one] => one.clone(),
            pieces => {
                let mut out = Vec::with_capacity(self.len);
                for piece in pieces.iter().rev() {
                    out.extend_from_slice(piece);
                }
                Bytes::from(out)
            }
        }
    }

    /// Its pieces, in order (what is written out, one after the other).
    pub fn pieces(&self) -> impl Iterator<Item = &Bytes> {
        self.pieces.iter().rev()
    }
}

impl MessageBody for JsonBody {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.len as u64)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let next = this.pieces.pop();
        if let Some(piece) = &next {
            this.len -= piece.len();
        }
        Poll::Ready(next.map(Ok))
    }

    fn try_into_bytes(mut self) -> Result<Bytes, Self> {
        match self.pieces.len() {
            0 => Ok(Bytes::new()),
            1 => Ok(self.pieces.pop().expect("one piece")),
            _ => Err(self),
        }
    }
}

/// `{"metadata-location": .., "metadata": <JSON as cached>, "config": {..},
/// "storage-credentials": [..], "remote-signing-config": {..}}`, made of the cached metadata and
/// the pre-rendered config, credential and signer JSON as they are, with the keys and brackets
/// between them (load-table is the hot path: nothing of the metadata is copied here).
///
/// `metadata_location` is JSON already (a string or `null`): a cached table keeps its location
/// escaped ([`crate::catalog::LoadedTable::metadata_location_json`]), see [`json_string`].
pub fn metadata_body(
    metadata_location: Bytes,
    metadata: &Bytes,
    config: Option<&Bytes>,
    credential: Option<&Bytes>,
    remote_signing: Option<&Bytes>,
) -> JsonBody {
    let mut pieces = Vec::with_capacity(12);
    pieces.push(Bytes::from_static(b"{\"metadata-location\":"));
    pieces.push(metadata_location);
    pieces.push(Bytes::from_static(b",\"metadata\":"));
    pieces.push(metadata.clone());
    if let Some(config) = config {
        pieces.push(Bytes::from_static(b",\"config\":"));
        pieces.push(config.clone());
    }
    if let Some(credential) = credential {
        pieces.push(Bytes::from_static(b",\"storage-credentials\":["));
        pieces.push(credential.clone());
        pieces.push(Bytes::from_static(b"]"));
    }
    if let Some(signing) = remote_signing {
        pieces.push(Bytes::from_static(b",\"remote-signing-config\":"));
        pieces.push(signing.clone());
    }
    pieces.push(Bytes::from_static(b"}"));
    JsonBody::of(pieces)
}

/// `value` as a JSON string.
pub fn json_string(value: &str) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("a string serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metadata goes out as the cached `Bytes` (the same memory), whatever its size: the
    /// only copy of it on the way out is actix's, into the connection's write buffer.
    #[test]
    fn the_metadata_is_sent_as_cached_not_copied() {
        let metadata = Bytes::from(format!(r#"{{"pad":"{}"}}"#, "x".repeat(100 * 1024)));
        let config = Bytes::from_static(br#"{"k":"v"}"#);
        let credential = Bytes::from_static(br#"{"prefix":"s3://b/t"}"#);
        let body = metadata_body(
            json_string("s3://b/t/metadata/1.json"),
            &metadata,
            Some(&config),
            Some(&credential),
            None,
        );
        let shared: Vec<_> = body
            .pieces()
            .filter(|p| p.as_ptr() == metadata.as_ptr())
            .collect();
        assert_eq!(shared.len(), 1, "the metadata is one piece, not a copy");
        assert!(
            body.pieces()
                .all(|p| p.len() < 100 || p.as_ptr() == metadata.as_ptr())
        );
        let json: serde_json::Value = serde_json::from_slice(&body.to_bytes()).unwrap();
        assert_eq!(json["metadata-location"], "s3://b/t/metadata/1.json");
        assert_eq!(
            json["metadata"]["pad"].as_str().map(str::len),
            Some(100 * 1024)
        );
        assert_eq!(json["config"]["k"], "v");
        assert_eq!(json["storage-credentials"][0]["prefix"], "s3://b/t");
    }

    /// What is written out is the whole answer, with its declared length.
    #[test]
    fn a_body_sends_its_pieces_in_order() {
        let metadata = Bytes::from_static(br#"{"format-version":2}"#);
        let mut body = metadata_body(Bytes::from_static(b"null"), &metadata, None, None, None);
        assert_eq!(body.size(), BodySize::Sized(body.to_bytes().len() as u64));
        let mut sent = Vec::new();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        while let Poll::Ready(Some(Ok(piece))) = Pin::new(&mut body).poll_next(&mut cx) {
            sent.extend_from_slice(&piece);
        }
        assert_eq!(
            sent,
            br#"{"metadata-location":null,"metadata":{"format-version":2}}"#
        );
        assert!(body.is_empty());
    }
}
