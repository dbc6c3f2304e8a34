//! `/health/live` (the process answers) and `/health/ready` (the store answers too).

use actix_web::{HttpResponse, get, web};

use super::AppState;
use super::types::HealthStatus;
use crate::store::StoreError;

/// How long readiness waits for the store.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(live).service(ready).service(metrics);
}

/// The process is up.
#[utoipa::path(get, path = "/health/live", operation_id = "healthLive", tag = "Health",
    responses((status = 200, description = "Alive", body = HealthStatus)))]
#[get("/health/live")]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus {
        status: "ok".into(),
    })
}

/// The store is reachable.
#[utoipa::path(get, path = "/health/ready", operation_id = "healthReady", tag = "Health",
    responses((status = 200, description = "Ready", body = HealthStatus),
              (status = 503, description = "Store unreachable", body = HealthStatus)))]
#[get("/health/ready")]
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    // A store that does not answer in time is as unready as one that refuses.
    let ping = tokio::time::timeout(READY_TIMEOUT, state.catalog.ping()).await;
    match ping.unwrap_or_else(|_| Err(StoreError::failure("no answer in time"))) {
        Ok(()) => HttpResponse::Ok().json(HealthStatus {
            status: "ready".into(),
        }),
        Err(e) => {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "readiness check failed"
            );
            HttpResponse::ServiceUnavailable().json(HealthStatus {
                status: "store unavailable".into(),
            })
        }
    }
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "Health",
    responses((status = 200, description = "Metrics in Prometheus text format", body = String)))]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
