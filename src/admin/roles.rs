//! Roles, their assignment to principals, and grants of privileges on resources to roles.

use uuid::Uuid;

use crate::domain::{PrincipalId, RoleId};
use crate::domain::{TenantId, WarehouseId};

use super::{Admin, not_found};
use super::{AdminError, AdminResult};
use crate::authz::Target;
use crate::changes::Change;
use crate::domain::access::GrantResource;
use crate::domain::access::Privilege;
use crate::domain::{ResourceName, TableIdent};
use crate::identity::Caller;
use crate::store::{GrantRecord, RoleRecord, TabularKind, now_ms};

/// The current name of the table or view a grant names by id.
pub type ObjectName = Option<TableIdent>;

/// A grant with the current name of its table or view (`None` once the object is gone).
pub struct GrantView {
    pub grant: GrantRecord,
    pub object: ObjectName,
}

impl Admin {
    /// The tenant's role `id`; 404 for a missing one or another tenant's.
    pub async fn role(&self, tenant: TenantId, id: RoleId) -> AdminResult<RoleRecord> {
        self.store
            .get_role(id)
            .await?
            .filter(|r| r.tenant_id == tenant)
            .ok_or_else(|| not_found(&format!("role {id}")))
    }

    pub async fn create_role(
        &self,
        caller: &Caller,
        tenant: TenantId,
        name: ResourceName,
    ) -> AdminResult<RoleRecord> {
        let name = name.into_string();
        let role = RoleRecord {
            id: RoleId::now_v7(),
            tenant_id: tenant,
            name,
            created_at_ms: now_ms(),
        };
        // Other replicas hear of it; no grant on this one names a role not yet created.
        self.store.create_role(&role, &Change::Grants).await?;
        self.audit(caller, tenant, "create-role", format!("role {}", role.id))
            .await;
        Ok(role)
    }

    pub async fn roles(&self, tenant: TenantId) -> AdminResult<Vec<RoleRecord>> {
        Ok(self.store.list_roles(tenant).await?)
    }

    /// Deletes a role with its grants and assignments.
    pub async fn delete_role(
        &self,
        caller: &Caller,
        tenant: TenantId,
        id: RoleId,
    ) -> AdminResult<()> {
        self.role(tenant, id).await?;
        let change = Change::Grants;
        self.store.delete_role(id, &change).await?;
        let what = format!("role {id}");
        self.grants_changed(caller, tenant, change, "delete-role", what)
            .await;
        Ok(())
    }

    /// Gives the tenant's role to the tenant's principal.
    pub async fn assign_role(
        &self,
        caller: &Caller,
        tenant: TenantId,
        role: RoleId,
        principal: PrincipalId,
    ) -> AdminResult<()> {
        self.role(tenant, role).await?;
        self.store
            .get_principal(principal)
            .await?
            .filter(|p| p.tenant_id == tenant)
            .ok_or_else(|| not_found(&format!("principal {principal}")))?;
        let change = Change::Grants;
        self.store.assign_role(principal, role, &change).await?;
        let what = format!("role {role} principal {principal}");
        self.grants_changed(caller, tenant, change, "assign-role", what)
            .await;
        Ok(())
    }

    pub async fn unassign_role(
        &self,
        caller: &Caller,
        tenant: TenantId,
        role: RoleId,
        principal: PrincipalId,
    ) -> AdminResult<()> {
        self.role(tenant, role).await?;
        let change = Change::Grants;
        self.store.unassign_role(principal, role, &change).await?;
        let what = format!("role {role} principal {principal}");
        self.grants_changed(caller, tenant, change, "unassign-role", what)
            .await;
        Ok(())
    }

    /// Publishes `change` (roles, assignments or grants changed), then records `action` on `what`.
    async fn grants_changed(
        &self,
        caller: &Caller,
        tenant: TenantId,
        change: Change,
        action: &str,
        what: String,
    ) {
        self.changed(change).await;
        self.audit(caller, tenant, action, what).await;
    }

    /// Grants `privilege` on `target` (in this tenant) to the tenant's role. A table or view is
    /// looked up now and named by its id: the grant follows that object through renames, and a new
    /// object under its name after a drop does not get it.
    pub async fn create_grant(
        &self,
        caller: &Caller,
        tenant: TenantId,
        role: RoleId,
        target: Target,
        privilege: Privilege,
    ) -> AdminResult<GrantView> {
        self.role(tenant, role).await?;
        if let Some(id) = target.warehouse() {
            self.store
                .get_warehouse(id)
                .await?
                .filter(|w| w.tenant_id == tenant)
                .ok_or_else(|| not_found(&format!("warehouse {id}")))?;
        }
        match (privilege, &target) {
            (Privilege::TenantAdmin, Target::Tenant) => {}
            (Privilege::TenantAdmin, _) => {
                return Err(AdminError::invalid("TENANT_ADMIN is granted on the tenant"));
            }
            (Privilege::WarehouseAdmin, Target::Tenant | Target::Warehouse { .. }) => {}
            (Privilege::WarehouseAdmin, _) => {
                return Err(AdminError::invalid(
                    "WAREHOUSE_ADMIN is granted on a warehouse or the tenant",
                ));
            }
            _ => {}
        }
        let grant = GrantRecord {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            role_id: role,
            resource: self.grant_resource(target).await?,
            privilege,
            created_at_ms: now_ms(),
        };
        let change = Change::Grants;
        self.store.create_grant(&grant, &change).await?;
        let what = format!("grant {}", grant.id);
        self.grants_changed(caller, tenant, change, "create-grant", what)
            .await;
        self.view(grant).await
    }

    /// The tenant's grants (only `role`'s with one), each with its object's current name.
    pub async fn grants(
        &self,
        tenant: TenantId,
        role: Option<RoleId>,
    ) -> AdminResult<Vec<GrantView>> {
        let grants = self.store.list_grants(tenant, role).await?;
        let mut views = Vec::with_capacity(grants.len());
        for grant in grants {
            views.push(self.view(grant).await?);
        }
        Ok(views)
    }

    /// Revokes the tenant's grant `id`.
    pub async fn delete_grant(
        &self,
        caller: &Caller,
        tenant: TenantId,
        id: Uuid,
    ) -> AdminResult<()> {
        let change = Change::Grants;
        if self
            .store
            .delete_grant(tenant, id, &change)
            .await?
            .is_none()
        {
            return Err(not_found(&format!("grant {id}")));
        }
        let what = format!("grant {id}");
        self.grants_changed(caller, tenant, change, "delete-grant", what)
            .await;
        Ok(())
    }

    async fn view(&self, grant: GrantRecord) -> AdminResult<GrantView> {
        let (warehouse, id, kind) = match &grant.resource {
            GrantResource::Table { warehouse, table } => (*warehouse, *table, TabularKind::Table),
            GrantResource::View { warehouse, view } => (*warehouse, *view, TabularKind::View),
            GrantResource::TableByName { table, .. } => {
                let object = Some(table.clone());
                return Ok(GrantView { grant, object });
            }
            GrantResource::ViewByName { view, .. } => {
                let object = Some(view.clone());
                return Ok(GrantView { grant, object });
            }
            _ => {
                return Ok(GrantView {
                    grant,
                    object: None,
                });
            }
        };
        let found = self.store.get_tabular_by_id(warehouse, id).await?;
        let object = found.filter(|o| o.kind == kind).map(|o| o.ident);
        Ok(GrantView { grant, object })
    }

    async fn grant_resource(&self, target: Target) -> AdminResult<GrantResource> {
        let object_id = |warehouse: WarehouseId, ident: TableIdent, kind: TabularKind| async move {
            self.store
                .get_tabular(warehouse, &ident)
                .await?
                .filter(|o| o.kind == kind)
                .map(|o| o.id)
                .ok_or_else(|| not_found(&format!("{} {ident}", kind.noun())))
        };
        Ok(match target {
            Target::Tenant => GrantResource::Tenant,
            Target::Warehouse { warehouse } => GrantResource::Warehouse { warehouse },
            Target::Namespace {
                warehouse,
                namespace,
            } => GrantResource::Namespace {
                warehouse,
                namespace,
            },
            Target::Table { warehouse, table } => GrantResource::Table {
                warehouse,
                table: object_id(warehouse, table, TabularKind::Table).await?,
            },
            Target::View { warehouse, view } => GrantResource::View {
                warehouse,
                view: object_id(warehouse, view, TabularKind::View).await?,
            },
        })
    }
}
