//! Principals, roles, role assignments and grants in sled ([`AccessStore`]).
//!
//! Owns: the `principals`, `client_ids`, `roles`, `role_names`, `assignments` and `grants` trees.
//! Must not touch: tenants (their deletion calls here for their principals and roles).

use ::sled::Transactional;
use ::sled::transaction::abort;
use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::TenantId;
use crate::domain::{PrincipalId, RoleId};

use super::keys::{grant_key, pair_key, warehouse_name_key};
use super::*;

#[async_trait]
impl AccessStore for SledStore {
    async fn create_principal(&self, p: &PrincipalRecord, _change: &Change) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let what = format!("principal with client id '{}'", p.client_id);
        self.insert_named(
            (&self.principals, &self.client_ids),
            p.id.uuid(),
            p.client_id.as_bytes(),
            what,
            p,
        )
        .await
    }

    async fn update_principal(&self, p: &PrincipalRecord, _change: &Change) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let value = encode(p)?;
        unwrap_tx(self.principals.transaction(|ids| {
            let Some(old) = ids.get(p.id.as_bytes())? else {
                return abort(StoreError::failure(format!(
                    "principal {} does not exist",
                    p.id
                )));
            };
            let old: PrincipalRecord = tx_decode(&old)?;
            if old.client_id != p.client_id {
                return abort(StoreError::failure("a principal's client id cannot change"));
            }
            ids.insert(p.id.as_bytes().as_slice(), value.as_slice())?;
            Ok(())
        }))?;
        self.durable().await
    }

    async fn get_principal(&self, id: PrincipalId) -> StoreResult<Option<PrincipalRecord>> {
        Self::get_json(&self.principals, id.as_bytes())
    }

    async fn get_principal_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<PrincipalRecord>> {
        Self::get_by_name(&self.principals, &self.client_ids, client_id.as_bytes())
    }

    async fn list_principals(&self, tenant: TenantId) -> StoreResult<Vec<PrincipalRecord>> {
        let mut out = Vec::new();
        for entry in self.principals.iter() {
            let p: PrincipalRecord = decode(&entry.map_err(backend)?.1)?;
            if p.tenant_id == tenant {
                out.push(p);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn delete_principal(&self, id: PrincipalId, _change: &Change) -> StoreResult<()> {
        let writing = self.writing().await?;
        self.remove_principal(&writing, id).await
    }

    async fn create_role(&self, role: &RoleRecord, _change: &Change) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let what = format!("role '{}'", role.name);
        let name = warehouse_name_key(role.tenant_id, &role.name);
        self.insert_named(
            (&self.roles, &self.role_names),
            role.id.uuid(),
            &name,
            what,
            role,
        )
        .await
    }

    async fn get_role(&self, id: RoleId) -> StoreResult<Option<RoleRecord>> {
        Self::get_json(&self.roles, id.as_bytes())
    }

    async fn list_roles(&self, tenant: TenantId) -> StoreResult<Vec<RoleRecord>> {
        let mut out = Vec::new();
        for entry in self.role_names.scan_prefix(tenant.as_bytes()) {
            if let Some(role) = Self::get_json(&self.roles, &entry.map_err(backend)?.1)? {
                out.push(role);
            }
        }
        Ok(out)
    }

    async fn delete_role(&self, id: RoleId, _change: &Change) -> StoreResult<()> {
        let writing = self.writing().await?;
        self.remove_role(&writing, id).await
    }

    async fn assign_role(
        &self,
        principal: PrincipalId,
        role: RoleId,
        _change: &Change,
    ) -> StoreResult<()> {
        let _writing = self.writing().await?;
        self.assignments
            .insert(pair_key(principal.uuid(), role.uuid()), &[])
            .map_err(backend)?;
        self.durable().await
    }

    async fn unassign_role(
        &self,
        principal: PrincipalId,
        role: RoleId,
        _change: &Change,
    ) -> StoreResult<()> {
        let _writing = self.writing().await?;
        if self
            .assignments
            .remove(pair_key(principal.uuid(), role.uuid()))
            .map_err(backend)?
            .is_none()
        {
            return Err(StoreError::NotFound(format!(
                "assignment of role {role} to principal {principal}"
            )));
        }
        self.durable().await
    }

    async fn roles_of(&self, principal: PrincipalId) -> StoreResult<Vec<RoleId>> {
        let mut out = Vec::new();
        for entry in self.assignments.scan_prefix(principal.as_bytes()) {
            let (key, _) = entry.map_err(backend)?;
            out.push(RoleId::from_slice(&key[16..]).map_err(backend)?);
        }
        Ok(out)
    }

    async fn create_grant(&self, grant: &GrantRecord, _change: &Change) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let existing = self
            .list_grants(grant.tenant_id, Some(grant.role_id))
            .await?;
        if existing
            .iter()
            .any(|g| g.resource == grant.resource && g.privilege == grant.privilege)
        {
            return Err(StoreError::AlreadyExists(format!(
                "grant of {:?} on this resource to role {}",
                grant.privilege, grant.role_id
            )));
        }
        self.grants
            .insert(grant_key(grant.tenant_id, grant.id), encode(grant)?)
            .map_err(backend)?;
        self.durable().await
    }

    async fn delete_grant(
        &self,
        tenant: TenantId,
        id: Uuid,
        _change: &Change,
    ) -> StoreResult<Option<GrantRecord>> {
        let _writing = self.writing().await?;
        let Some(value) = self.grants.remove(grant_key(tenant, id)).map_err(backend)? else {
            return Ok(None);
        };
        self.durable().await?;
        Ok(Some(decode(&value)?))
    }

    async fn list_grants(
        &self,
        tenant: TenantId,
        role: Option<RoleId>,
    ) -> StoreResult<Vec<GrantRecord>> {
        let mut out = Vec::new();
        for entry in self.grants.scan_prefix(tenant.as_bytes()) {
            let grant: GrantRecord = decode(&entry.map_err(backend)?.1)?;
            if role.is_none_or(|r| r == grant.role_id) {
                out.push(grant);
            }
        }
        Ok(out)
    }
}

impl SledStore {
    /// Deletes a principal and its role assignments (also for a tenant being deleted). The
    /// caller holds the write gate: taking it again here could wait forever behind a snapshot
    /// queued for it meanwhile (tokio's lock lets a waiting writer go first).
    pub(super) async fn remove_principal(
        &self,
        _writing: &WriteGate<'_>,
        id: PrincipalId,
    ) -> StoreResult<()> {
        let Some(p) = self.get_principal(id).await? else {
            return Err(StoreError::NotFound(format!("principal {id}")));
        };
        for entry in self.assignments.scan_prefix(id.as_bytes()) {
            self.assignments
                .remove(entry.map_err(backend)?.0)
                .map_err(backend)?;
        }
        unwrap_tx(
            (&self.principals, &self.client_ids).transaction(|(ids, clients)| {
                ids.remove(id.as_bytes().as_slice())?;
                clients.remove(p.client_id.as_bytes())?;
                Ok(())
            }),
        )?;
        self.durable().await
    }

    /// Deletes a role with its grants and assignments (also for a tenant being deleted). The
    /// caller holds the write gate, as for [`SledStore::remove_principal`].
    pub(super) async fn remove_role(
        &self,
        _writing: &WriteGate<'_>,
        id: RoleId,
    ) -> StoreResult<()> {
        let Some(role) = self.get_role(id).await? else {
            return Err(StoreError::NotFound(format!("role {id}")));
        };
        for grant in self.list_grants(role.tenant_id, Some(id)).await? {
            self.grants
                .remove(grant_key(role.tenant_id, grant.id))
                .map_err(backend)?;
        }
        for entry in self.assignments.iter() {
            let (key, _) = entry.map_err(backend)?;
            if key.ends_with(id.as_bytes()) {
                self.assignments.remove(key).map_err(backend)?;
            }
        }
        unwrap_tx((&self.roles, &self.role_names).transaction(|(ids, names)| {
            ids.remove(id.as_bytes().as_slice())?;
            names.remove(warehouse_name_key(role.tenant_id, &role.name))?;
            Ok(())
        }))?;
        self.durable().await
    }
}
