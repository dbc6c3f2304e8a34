//! Principals of a tenant: created with a generated secret (shown once), enabled or disabled,
//! given a new secret, deleted. The root principal is neither disabled nor deleted.

use uuid::Uuid;

use crate::domain::PrincipalId;
use crate::domain::TenantId;

use super::{Admin, not_found};
use super::{AdminError, AdminResult};
use crate::changes::Change;
use crate::domain::ResourceName;
use crate::identity::Caller;
use crate::store::{PrincipalKind, PrincipalRecord, now_ms};

/// A principal with the secret it was just given (the only time the secret is seen).
pub struct WithSecret {
    pub principal: PrincipalRecord,
    pub secret: String,
}

impl Admin {
    /// The tenant's principal `id`; 404 for a missing one or another tenant's.
    pub async fn principal(
        &self,
        tenant: TenantId,
        id: PrincipalId,
    ) -> AdminResult<PrincipalRecord> {
        self.store
            .get_principal(id)
            .await?
            .filter(|p| p.tenant_id == tenant)
            .ok_or_else(|| not_found(&format!("principal {id}")))
    }

    pub async fn principals(&self, tenant: TenantId) -> AdminResult<Vec<PrincipalRecord>> {
        Ok(self.store.list_principals(tenant).await?)
    }

    /// A new principal with a generated secret, stored only as its keyed hash.
    pub async fn create_principal(
        &self,
        caller: &Caller,
        tenant: TenantId,
        name: ResourceName,
        kind: PrincipalKind,
    ) -> AdminResult<WithSecret> {
        let name = name.into_string();
        let (secret, secret_hash) = self.secrets.generate();
        let principal = PrincipalRecord {
            id: PrincipalId::now_v7(),
            tenant_id: tenant,
            name,
            kind,
            client_id: format!("floe-{}", Uuid::new_v4().simple()),
            secret_hash,
            root: false,
            disabled: false,
            created_at_ms: now_ms(),
            sessions_valid_from_ms: 0,
        };
        // Other replicas hear of it; no cache on this one can hold a principal not yet created.
        let change = Change::Principal {
            principal: principal.id,
        };
        self.store.create_principal(&principal, &change).await?;
        let what = format!("principal {}", principal.id);
        self.audit(caller, tenant, "create-principal", what).await;
        Ok(WithSecret { principal, secret })
    }

    /// Disables (its tokens stop working) or re-enables the tenant's principal.
    pub async fn set_enabled(
        &self,
        caller: &Caller,
        tenant: TenantId,
        id: PrincipalId,
        enabled: bool,
    ) -> AdminResult<PrincipalRecord> {
        let mut p = self.principal(tenant, id).await?;
        if p.root {
            return Err(AdminError::Conflict(
                "the root principal cannot be disabled".into(),
            ));
        }
        if enabled && p.disabled {
            // Sessions from before it was disabled do not come back with it.
            p.sessions_valid_from_ms = now_ms();
        }
        p.disabled = !enabled;
        let change = Change::Principal { principal: id };
        self.store.update_principal(&p, &change).await?;
        self.changed(change).await;
        let action = if enabled { "enable" } else { "disable" };
        let what = format!("principal {id}");
        self.audit(caller, tenant, &format!("{action}-principal"), what)
            .await;
        Ok(p)
    }

    /// A new secret for the tenant's principal; the old one stops working at once for new tokens.
    pub async fn rotate_secret(
        &self,
        caller: &Caller,
        tenant: TenantId,
        id: PrincipalId,
    ) -> AdminResult<WithSecret> {
        let mut principal = self.principal(tenant, id).await?;
        let (secret, secret_hash) = self.secrets.generate();
        principal.secret_hash = secret_hash;
        // Sessions begun with the old secret are not renewed any more.
        principal.sessions_valid_from_ms = now_ms();
        let change = Change::Principal { principal: id };
        self.store.update_principal(&principal, &change).await?;
        self.changed(change).await;
        self.audit(caller, tenant, "rotate-secret", format!("principal {id}"))
            .await;
        Ok(WithSecret { principal, secret })
    }

    pub async fn delete_principal(
        &self,
        caller: &Caller,
        tenant: TenantId,
        id: PrincipalId,
    ) -> AdminResult<()> {
        let p = self.principal(tenant, id).await?;
        if p.root {
            return Err(AdminError::Conflict(
                "the root principal cannot be deleted".into(),
            ));
        }
        let change = Change::Principal { principal: id };
        self.store.delete_principal(id, &change).await?;
        self.changed(change).await;
        let what = format!("principal {id}");
        self.audit(caller, tenant, "delete-principal", what).await;
        Ok(())
    }
}
