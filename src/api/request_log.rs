//! One log line per request (method, path, status, latency, request id), and a request-id span
//! around the handler so its own events carry the id (the id is [`super::guard`]'s). Costs
//! nothing when INFO is filtered out: the span is checked first, before any id or field is made
//! (load-table is the hot path).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing::Instrument;

/// The middleware: `App::new().wrap(from_fn(request_log))`.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let span = tracing::info_span!("request", request_id = tracing::field::Empty);
    if span.is_disabled() {
        return next.call(req).await;
    }
    let request_id = super::request_id::request_id().unwrap_or_default();
    span.record("request_id", request_id.as_str());
    let (method, path, start) = (req.method().clone(), req.path().to_owned(), Instant::now());
    let res = next.call(req).instrument(span.clone()).await?;
    let status = res.status().as_u16();
    let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(%method, %path, status, elapsed_ms, "http request"));
    Ok(res)
}
