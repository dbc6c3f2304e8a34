//! The loops startup itself runs in the background (each started through `Background` with its
//! stop signal): the summaries of repeated denials, and the expiry of idempotency records and old
//! audit events (which see only the [`IdempotencyStore`] and the [`AuditStore`]).

use std::sync::Arc;
use std::time::Duration;

use crate::background::StopSignal;
use crate::store::{AuditStore, IdempotencyStore, now_ms};

/// Audits the counts of repeated denials once their minute is over, every 10 seconds, and once
/// more when the server stops.
pub(super) async fn denial_summaries(authz: Arc<crate::authz::Authorizer>, mut stop: StopSignal) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        let stopping = tokio::select! {
            () = stop.stopped() => true,
            _ = tick.tick() => false,
        };
        authz.record_denial_summaries().await;
        if stopping {
            return;
        }
    }
}

/// Deletes expired idempotency records and audit events older than the retention, every 5 minutes.
pub(super) async fn expiry(
    idempotency: Arc<dyn IdempotencyStore>,
    audit: Arc<dyn AuditStore>,
    audit_retention_days: u32,
    mut stop: StopSignal,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tokio::select! {
            () = stop.stopped() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = idempotency.purge_idempotency(now_ms()).await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "idempotency purge failed"
            );
        }
        let horizon = now_ms() - i64::from(audit_retention_days) * 86_400_000;
        if let Err(e) = audit.purge_audit(horizon).await {
            tracing::warn!(error = &e as &dyn std::error::Error, "audit purge failed");
        }
    }
}
