//! Request metrics: `floe_http_requests_total{method, route, status}` and the latency histogram
//! `floe_http_request_seconds{method, route, status}`. The route is the matched pattern
//! (`/v1/{prefix}/namespaces/{namespace}/tables/{table}`), never the raw path, so names of
//! tenants' tables do not become label values; unmatched paths are counted as `unmatched`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// The middleware: `App::new().wrap(from_fn(http_metrics))`.
pub async fn http_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let res = next.call(req).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let request = res.request();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let labels = [
        ("method", method_label(request.method())),
        ("route", route.into()),
        ("status", res.status().as_u16().to_string().into()),
    ];
    metrics::counter!("floe_http_requests_total", &labels).increment(1);
    metrics::histogram!("floe_http_request_seconds", &labels).record(elapsed);
    Ok(res)
}

fn method_label(method: &actix_web::http::Method) -> metrics::SharedString {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET".into(),
        Method::POST => "POST".into(),
        Method::PUT => "PUT".into(),
        Method::DELETE => "DELETE".into(),
        Method::HEAD => "HEAD".into(),
        Method::PATCH => "PATCH".into(),
        _ => "OTHER".into(),
    }
}
