//! Each request's id: the client's `X-Request-Id` (up to 128 visible characters), or one made on
//! first use (an error body's `request-id`, the request log), held for the request's task by the
//! guard and answered back in `X-Request-Id`.

use std::cell::OnceCell;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderName, HeaderValue};

/// The request-id header, read from the client and answered back.
pub const REQUEST_ID: &str = "x-request-id";

/// The running request's id: the client's, or made on first use.
pub(super) struct RequestContext {
    pub(super) id: OnceCell<String>,
}

tokio::task_local! {
    pub(super) static REQUEST: RequestContext;
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A process-unique request id: a random per-process prefix and a counter.
fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(rand::random);
    format!("{prefix:08x}-{:x}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// The running request's id (made now if it has none yet); `None` outside a request.
pub fn request_id() -> Option<String> {
    REQUEST
        .try_with(|ctx| ctx.id.get_or_init(new_request_id).clone())
        .ok()
}

/// The header's name, made once (a `&str` key is parsed again on every lookup).
const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static(REQUEST_ID);

/// The id the client sent, if it is one we answer back.
pub(super) fn client_request_id(req: &ServiceRequest) -> Option<String> {
    let id = req.headers().get(&REQUEST_ID_HEADER)?.to_str().ok()?;
    (!id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| id.to_owned())
}

/// Sets the request id header of an answer, when the request has one.
pub(super) fn with_request_id(id: Option<&str>, headers: &mut actix_web::http::header::HeaderMap) {
    if let Some(id) = id
        && let Ok(value) = HeaderValue::from_str(id)
    {
        headers.insert(REQUEST_ID_HEADER, value);
    }
}
