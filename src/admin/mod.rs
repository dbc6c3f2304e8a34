//! Tenancy use-cases: every management change, below the HTTP layer.
//!
//! Owns: each mutation of tenants' roles, role assignments and grants (more areas move here from
//! `api::management` step by step), the checks that keep it inside the caller's tenant, its audit
//! event, and the one typed [`AccessChange`] it emits, which clears the caches it affects. Must not
//! touch: HTTP types. Authorization (may the caller administer this tenant?) stays with the
//! handler, which asks [`crate::authz`] before it calls here.

mod roles;

use std::sync::Arc;

use uuid::Uuid;

use crate::authz::Authorizer;
use crate::catalog::{CatalogError, CatalogResult, ErrorType};
use crate::identity::Caller;
use crate::store::{AuditEvent, CatalogStore, TenantRecord, now_ms};

pub use roles::{GrantView, ObjectName};

/// What a management change changed, for the caches that hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessChange {
    /// Roles, role assignments or grants: every cached authorization decision.
    Grants,
}

/// The tenancy use-cases.
pub struct Admin {
    store: Arc<dyn CatalogStore>,
    authz: Arc<Authorizer>,
}

/// `what` does not exist (or is another tenant's, which the caller must not learn).
pub fn not_found(what: &str) -> CatalogError {
    CatalogError::new(ErrorType::NotFound, format!("{what} does not exist"))
}

impl Admin {
    pub fn new(store: Arc<dyn CatalogStore>, authz: Arc<Authorizer>) -> Self {
        Self { store, authz }
    }

    /// Clears what `change` makes stale on this replica (other replicas learn it from the store's
    /// change notification).
    fn changed(&self, change: AccessChange) {
        match change {
            AccessChange::Grants => self.authz.invalidate(),
        }
    }

    /// The tenant at `id` if the caller may see it (root, or a member); other tenants are 404.
    pub async fn visible_tenant(&self, caller: &Caller, id: Uuid) -> CatalogResult<TenantRecord> {
        if !caller.may_access_tenant(id) {
            return Err(not_found(&format!("tenant {id}")));
        }
        self.store
            .get_tenant(id)
            .await?
            .ok_or_else(|| not_found(&format!("tenant {id}")))
    }

    /// Records a management change as an audit event (log and store).
    pub async fn audit(&self, caller: &Caller, tenant: Uuid, action: &str, resource: String) {
        let event = AuditEvent {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            at_ms: now_ms(),
            actor: caller.principal_id,
            action: action.to_owned(),
            resource,
            outcome: "ok".into(),
        };
        crate::authz::record_audit(self.store.as_ref(), &event).await;
    }

    /// A tenant's audit events, newest first: 1 to 1000 of them.
    pub async fn audit_events(&self, tenant: Uuid, limit: i64) -> CatalogResult<Vec<AuditEvent>> {
        let limit = match limit {
            n @ 1..=1000 => n as usize,
            n => {
                return Err(CatalogError::bad_request(format!(
                    "limit must be 1 to 1000, not {n}"
                )));
            }
        };
        Ok(self.store.list_audit(tenant, limit).await?)
    }
}
