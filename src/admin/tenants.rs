//! Tenants and token signing keys (the root principal's to manage), and who a caller is.

use super::{Admin, not_found};
use super::{AdminError, AdminResult};
use crate::changes::Change;
use crate::domain::ResourceName;
use crate::domain::TenantId;
use crate::identity::Caller;
use crate::identity::key_store::RotateError;
use crate::store::{PrincipalRecord, TenantRecord, now_ms};

/// Who a caller is: its principal, its tenant and the names of its roles (sorted).
pub struct Identity {
    pub principal: PrincipalRecord,
    pub tenant: TenantRecord,
    pub roles: Vec<String>,
}

impl Admin {
    pub async fn create_tenant(
        &self,
        caller: &Caller,
        name: ResourceName,
    ) -> AdminResult<TenantRecord> {
        let tenant = TenantRecord {
            id: TenantId::now_v7(),
            name: name.into_string(),
            created_at_ms: now_ms(),
        };
        let change = Change::Tenant { tenant: tenant.id };
        self.store.create_tenant(&tenant, &change).await?;
        self.changed(change).await;
        let what = format!("tenant {}", tenant.id);
        self.audit(caller, tenant.id, "create-tenant", what).await;
        Ok(tenant)
    }

    pub async fn tenants(&self) -> AdminResult<Vec<TenantRecord>> {
        Ok(self.store.list_tenants().await?)
    }

    pub async fn rename_tenant(
        &self,
        caller: &Caller,
        id: TenantId,
        name: &ResourceName,
    ) -> AdminResult<TenantRecord> {
        let change = Change::Tenant { tenant: id };
        self.store.rename_tenant(id, name.as_str(), &change).await?;
        self.changed(change).await;
        let tenant = self
            .store
            .get_tenant(id)
            .await?
            .ok_or_else(|| not_found("tenant"))?;
        self.audit(caller, id, "rename-tenant", format!("tenant {id}"))
            .await;
        Ok(tenant)
    }

    /// Deletes a tenant that has no warehouses; never the caller's own.
    pub async fn delete_tenant(&self, caller: &Caller, id: TenantId) -> AdminResult<()> {
        if id == caller.tenant_id {
            return Err(AdminError::Conflict(
                "the root principal's own tenant cannot be deleted".into(),
            ));
        }
        let change = Change::Tenant { tenant: id };
        self.store.delete_tenant(id, &change).await?;
        self.changed(change).await;
        self.audit(caller, id, "delete-tenant", format!("tenant {id}"))
            .await;
        Ok(())
    }

    /// Retires the token signing key and signs with a new one from now on; returns its kid.
    pub async fn rotate_signing_key(&self, caller: &Caller) -> AdminResult<String> {
        let change = Change::SigningKeys;
        let kid = self
            .signing_keys
            .rotate(&change)
            .await
            .map_err(|e| match e {
                RotateError::TooSoon(wait) => AdminError::TooSoon {
                    message: e.to_string(),
                    retry_after: wait,
                },
                RotateError::Store(e) => AdminError::Store(e),
            })?;
        self.changed(change).await;
        let what = format!("signing key {kid}");
        self.audit(caller, caller.tenant_id, "rotate-signing-key", what)
            .await;
        Ok(kid)
    }

    /// A consistent snapshot of the whole sled catalog while it serves (root only; writes wait
    /// for it), for `floe backup`. A PostgreSQL catalog is backed up with the database's tools.
    pub async fn snapshot(&self, caller: &Caller) -> AdminResult<Vec<u8>> {
        let file = self.store.snapshot().await?.ok_or_else(|| {
            AdminError::Unsupported(
                "this catalog is in PostgreSQL: back it up with PostgreSQL's own tools (pg_dump, \
                 or base backups with WAL archiving)"
                    .into(),
            )
        })?;
        let what = format!("catalog snapshot of {} bytes", file.len());
        self.audit(caller, caller.tenant_id, "snapshot", what).await;
        Ok(file)
    }

    /// The caller's principal, tenant and roles; 401 when the principal is disabled or gone.
    pub async fn identity(&self, caller: &Caller) -> AdminResult<Identity> {
        let principal = self
            .store
            .get_principal(caller.principal_id)
            .await?
            .filter(|p| !p.disabled)
            .ok_or_else(|| {
                AdminError::NotAuthorized("this principal is disabled or no longer exists".into())
            })?;
        let tenant = self
            .store
            .get_tenant(caller.tenant_id)
            .await?
            .ok_or_else(|| not_found("tenant"))?;
        let mut roles = Vec::new();
        for id in self.store.roles_of(principal.id).await? {
            if let Some(role) = self.store.get_role(id).await? {
                roles.push(role.name);
            }
        }
        roles.sort();
        Ok(Identity {
            principal,
            tenant,
            roles,
        })
    }
}
