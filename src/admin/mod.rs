//! Tenancy use-cases: every management change, below the HTTP layer.
//!
//! Owns: each mutation of tenants, warehouses, storage credentials, principals, roles, role
//! assignments, grants and signing keys; the checks that keep it inside the caller's tenant; its
//! audit event; and the one typed [`Change`] it makes, decided here once: handed to the store
//! write (which sends it to other replicas) and published once the write returned, which clears
//! exactly the caches it affects on this replica. Also the start-time upgrade of grants stored by
//! name ([`upgrade_name_keyed_grants`]).
//! Must not touch: HTTP types or caches (each cache's owner subscribes to [`Changes`]).
//! Authorization (may the caller administer this tenant or warehouse?) stays with the handler,
//! which asks [`crate::authz`] before it calls here.

mod credentials;
mod error;
mod principals;
mod roles;
mod tenants;
mod upgrades;
mod warehouses;

use std::sync::Arc;

use uuid::Uuid;

use crate::changes::{Change, Changes};
use crate::domain::TenantId;
use crate::identity::key_store::SigningKeys;
use crate::identity::storage_credentials::CredentialResolver;
use crate::identity::{Caller, ClientSecrets};
use crate::store::{AuditEvent, CatalogStore, TenantRecord, now_ms};

pub use credentials::NewCredentialValue;
pub use error::{AdminError, AdminResult};
pub use principals::WithSecret;
pub use roles::{GrantView, ObjectName};
pub use tenants::Identity;
pub use upgrades::upgrade_name_keyed_grants;
pub use warehouses::{NewStorage, WarehouseChanges, WarehouseReachability};

/// What the tenancy use-cases work with.
pub struct AdminParts {
    pub store: Arc<dyn CatalogStore>,
    /// Hashes generated client secrets.
    pub secrets: Arc<ClientSecrets>,
    /// Seals storage credentials and checks references.
    pub credentials: Arc<CredentialResolver>,
    pub signing_keys: Arc<SigningKeys>,
    /// Where each change is published.
    pub changes: Arc<Changes>,
    /// Where local warehouses created without a root live (`file:///...`).
    pub local_warehouse_base: String,
    /// What recent calls said about reaching each warehouse's storage and token service.
    pub reachability: Arc<crate::reachability::Reachability>,
}

/// The tenancy use-cases.
pub struct Admin {
    store: Arc<dyn CatalogStore>,
    secrets: Arc<ClientSecrets>,
    credentials: Arc<CredentialResolver>,
    signing_keys: Arc<SigningKeys>,
    changes: Arc<Changes>,
    local_warehouse_base: String,
    reachability: Arc<crate::reachability::Reachability>,
}

/// `what` does not exist (or is another tenant's, which the caller must not learn).
pub fn not_found(what: &str) -> AdminError {
    AdminError::NotFound(what.to_owned())
}

impl Admin {
    pub fn new(parts: AdminParts) -> Self {
        Self {
            store: parts.store,
            secrets: parts.secrets,
            credentials: parts.credentials,
            signing_keys: parts.signing_keys,
            changes: parts.changes,
            local_warehouse_base: parts.local_warehouse_base,
            reachability: parts.reachability,
        }
    }

    /// Publishes a change made here; returns once every cache on this replica has dropped what
    /// it made stale, so the caller's next request never sees the old value.
    async fn changed(&self, change: Change) {
        self.changes.publish(&change).await;
    }

    /// The tenant at `id` if the caller may see it (root, or a member); other tenants are 404.
    pub async fn visible_tenant(&self, caller: &Caller, id: TenantId) -> AdminResult<TenantRecord> {
        if !caller.may_access_tenant(id) {
            return Err(not_found(&format!("tenant {id}")));
        }
        self.store
            .get_tenant(id)
            .await?
            .ok_or_else(|| not_found(&format!("tenant {id}")))
    }

    /// Records a management change as an audit event (log and store).
    pub async fn audit(&self, caller: &Caller, tenant: TenantId, action: &str, resource: String) {
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
    pub async fn audit_events(&self, tenant: TenantId, limit: i64) -> AdminResult<Vec<AuditEvent>> {
        let limit = match limit {
            n @ 1..=1000 => n as usize,
            n => {
                return Err(AdminError::invalid(format!(
                    "limit must be 1 to 1000, not {n}"
                )));
            }
        };
        Ok(self.store.list_audit(tenant, limit).await?)
    }
}
