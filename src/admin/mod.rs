//! Tenancy use-cases: every management change, below the HTTP layer.
//!
//! Owns: each mutation of tenants and of tenants' principals, roles, role assignments and grants (more areas move here from
//! `api::management` step by step), the checks that keep it inside the caller's tenant, its audit
//! event, and the one typed [`AccessChange`] it emits, which clears the caches it affects. Must not
//! touch: HTTP types. Authorization (may the caller administer this tenant?) stays with the
//! handler, which asks [`crate::authz`] before it calls here.

mod principals;
mod roles;
mod tenants;

use std::sync::{Arc, RwLock};

use uuid::Uuid;

use crate::catalog::{CatalogError, CatalogResult, ErrorType};
use crate::identity::{Caller, ClientSecrets};
use crate::store::{AuditEvent, CatalogStore, TenantRecord, now_ms};

pub use principals::WithSecret;
pub use roles::{GrantView, ObjectName};
pub use tenants::Identity;

/// What a management change changed, for the caches that hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessChange {
    /// Roles, role assignments or grants: cached authorization decisions.
    Grants,
    /// A principal was disabled, enabled, given a new secret or deleted: cached decisions and
    /// remembered secret checks.
    Principal,
    /// A tenant was renamed or deleted: cached decisions, warehouses and tenant names.
    Tenant,
}

/// Something that holds a cache a change can make stale.
type Subscriber = Box<dyn Fn(AccessChange) + Send + Sync>;

/// The tenancy use-cases.
pub struct Admin {
    store: Arc<dyn CatalogStore>,
    secrets: Arc<ClientSecrets>,
    subscribers: RwLock<Vec<Subscriber>>,
}

/// `what` does not exist (or is another tenant's, which the caller must not learn).
pub fn not_found(what: &str) -> CatalogError {
    CatalogError::new(ErrorType::NotFound, format!("{what} does not exist"))
}

impl Admin {
    pub fn new(store: Arc<dyn CatalogStore>, secrets: Arc<ClientSecrets>) -> Self {
        Self {
            store,
            secrets,
            subscribers: RwLock::new(Vec::new()),
        }
    }

    /// Calls `on_change` after every change made here, so the cache it clears never outlives
    /// the change on this replica (other replicas learn it from the store's change notification).
    pub fn subscribe(&self, on_change: impl Fn(AccessChange) + Send + Sync + 'static) {
        self.subscribers
            .write()
            .expect("subscribers lock")
            .push(Box::new(on_change));
    }

    fn changed(&self, change: AccessChange) {
        for subscriber in self.subscribers.read().expect("subscribers lock").iter() {
            subscriber(change);
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
