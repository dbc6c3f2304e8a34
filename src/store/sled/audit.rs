//! The audit log in sled ([`AuditStore`]): events keyed by tenant and time-ordered id.
//!
//! Owns: the `audit` tree. Must not touch: anything else.

use crate::domain::TenantId;
use async_trait::async_trait;

use super::keys::pair_key;
use super::*;

#[async_trait]
impl AuditStore for SledStore {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        let _writing = self.writing().await?;
        self.audit
            .insert(pair_key(event.tenant_id, event.id), encode(event)?)
            .map_err(backend)?;
        self.durable().await
    }

    async fn list_audit(&self, tenant: TenantId, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let mut out = Vec::new();
        for entry in self.audit.scan_prefix(tenant.as_bytes()).rev().take(limit) {
            out.push(decode(&entry.map_err(backend)?.1)?);
        }
        Ok(out)
    }

    async fn purge_audit(&self, before_ms: i64) -> StoreResult<u64> {
        let _writing = self.writing().await?;
        let mut removed = 0;
        for entry in self.audit.iter() {
            let (key, value) = entry.map_err(backend)?;
            let event: AuditEvent = decode(&value)?;
            if event.at_ms < before_ms {
                self.audit.remove(key).map_err(backend)?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.durable().await?;
        }
        Ok(removed)
    }
}
