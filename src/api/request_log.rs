//! One log line per request (method, path, status, latency, request id), and a request-id span
//! around the handler so its own events carry the id. Costs nothing when INFO is filtered out: the
//! span is checked first, before any id or field is made (load-table is the hot path).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);
const REQUEST_ID: &str = "x-request-id";

/// A process-unique request id: a random per-process prefix and a counter.
fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(rand::random);
    format!("{prefix:08x}-{:x}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// The middleware: `App::new().wrap(from_fn(request_log))`.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let span = tracing::info_span!("request", request_id = tracing::field::Empty);
    if span.is_disabled() {
        return next.call(req).await;
    }
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    span.record("request_id", request_id.as_str());
    let (method, path, start) = (req.method().clone(), req.path().to_owned(), Instant::now());
    let mut res = next.call(req).instrument(span.clone()).await?;
    let status = res.status().as_u16();
    let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(%method, %path, status, elapsed_ms, "http request"));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), value);
    }
    Ok(res)
}
