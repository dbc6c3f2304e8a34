//! The audit log in PostgreSQL ([`AuditStore`]).
//!
//! Owns: the `audit_events` table. Must not touch: anything else.

use crate::domain::TenantId;
use async_trait::async_trait;

use super::common::{backend, json, records};
use super::*;

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, tenant_id, at_ms, record) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(event.id)
        .bind(event.tenant_id)
        .bind(event.at_ms)
        .bind(json(event))
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn list_audit(&self, tenant: TenantId, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT record FROM audit_events WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(tenant)
        .bind(limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        records(&rows)
    }

    async fn purge_audit(&self, before_ms: i64) -> StoreResult<u64> {
        sqlx::query("DELETE FROM audit_events WHERE at_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(backend)
    }
}
