//! Principals, roles, role assignments and grants in PostgreSQL ([`AccessStore`]); a role's grants
//! and assignments go with it by `ON DELETE CASCADE`.
//!
//! Owns: the `principals`, `roles`, `role_assignments` and `grants` tables. Must not touch:
//! tenants.

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::TenantId;
use crate::domain::{PrincipalId, RoleId};

use super::common::{
    backend, is_foreign_key_violation, is_unique_violation, json, record, records,
};
use super::*;
use crate::changes::Change;

#[async_trait]
impl AccessStore for PgStore {
    async fn create_principal(&self, p: &PrincipalRecord, change: &Change) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO principals (id, tenant_id, name, client_id, record) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(p.id)
        .bind(p.tenant_id)
        .bind(&p.name)
        .bind(&p.client_id)
        .bind(json(p));
        match self.changing(change, q).await {
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(format!(
                "principal with client id '{}'",
                p.client_id
            ))),
            r => r.map(|_| ()).map_err(backend),
        }
    }

    async fn update_principal(&self, p: &PrincipalRecord, change: &Change) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let client_id: Option<String> =
            sqlx::query_scalar("SELECT client_id FROM principals WHERE id = $1 FOR UPDATE")
                .bind(p.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        match client_id {
            None => {
                return Err(StoreError::failure(format!(
                    "principal {} does not exist",
                    p.id
                )));
            }
            Some(c) if c != p.client_id => {
                return Err(StoreError::failure("a principal's client id cannot change"));
            }
            Some(_) => {}
        }
        sqlx::query("UPDATE principals SET name = $2, record = $3 WHERE id = $1")
            .bind(p.id)
            .bind(&p.name)
            .bind(json(p))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        notify(&mut tx, change).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn get_principal(&self, id: PrincipalId) -> StoreResult<Option<PrincipalRecord>> {
        self.fetch_record(sqlx::query("SELECT record FROM principals WHERE id = $1").bind(id))
            .await
    }

    async fn get_principal_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<PrincipalRecord>> {
        self.fetch_record(
            sqlx::query("SELECT record FROM principals WHERE client_id = $1").bind(client_id),
        )
        .await
    }

    async fn list_principals(&self, tenant: TenantId) -> StoreResult<Vec<PrincipalRecord>> {
        self.fetch_records(
            "SELECT record FROM principals WHERE tenant_id = $1 ORDER BY name, id",
            tenant.uuid(),
        )
        .await
    }

    async fn delete_principal(&self, id: PrincipalId, change: &Change) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM principals WHERE id = $1").bind(id);
        match self.changing(change, q).await.map_err(backend)? {
            0 => Err(StoreError::NotFound(format!("principal {id}"))),
            _ => Ok(()),
        }
    }

    async fn create_role(&self, role: &RoleRecord, change: &Change) -> StoreResult<()> {
        let q =
            sqlx::query("INSERT INTO roles (id, tenant_id, name, record) VALUES ($1, $2, $3, $4)")
                .bind(role.id)
                .bind(role.tenant_id)
                .bind(&role.name)
                .bind(json(role));
        match self.changing(change, q).await {
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::AlreadyExists(format!("role '{}'", role.name)))
            }
            r => r.map(|_| ()).map_err(backend),
        }
    }

    async fn get_role(&self, id: RoleId) -> StoreResult<Option<RoleRecord>> {
        self.fetch_record(sqlx::query("SELECT record FROM roles WHERE id = $1").bind(id))
            .await
    }

    async fn list_roles(&self, tenant: TenantId) -> StoreResult<Vec<RoleRecord>> {
        self.fetch_records(
            "SELECT record FROM roles WHERE tenant_id = $1 ORDER BY name",
            tenant.uuid(),
        )
        .await
    }

    async fn delete_role(&self, id: RoleId, change: &Change) -> StoreResult<()> {
        // Grants and assignments go with it (ON DELETE CASCADE).
        let q = sqlx::query("DELETE FROM roles WHERE id = $1").bind(id);
        match self.changing(change, q).await.map_err(backend)? {
            0 => Err(StoreError::NotFound(format!("role {id}"))),
            _ => Ok(()),
        }
    }

    async fn assign_role(
        &self,
        principal: PrincipalId,
        role: RoleId,
        change: &Change,
    ) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO role_assignments (principal_id, role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(principal)
        .bind(role);
        match self.changing(change, q).await {
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound(format!(
                "principal {principal} or role {role}"
            ))),
            r => r.map(|_| ()).map_err(backend),
        }
    }

    async fn unassign_role(
        &self,
        principal: PrincipalId,
        role: RoleId,
        change: &Change,
    ) -> StoreResult<()> {
        let q =
            sqlx::query("DELETE FROM role_assignments WHERE principal_id = $1 AND role_id = $2")
                .bind(principal)
                .bind(role);
        match self.changing(change, q).await.map_err(backend)? {
            0 => Err(StoreError::NotFound(format!(
                "assignment of role {role} to principal {principal}"
            ))),
            _ => Ok(()),
        }
    }

    async fn roles_of(&self, principal: PrincipalId) -> StoreResult<Vec<RoleId>> {
        sqlx::query_scalar(
            "SELECT role_id FROM role_assignments WHERE principal_id = $1 ORDER BY role_id",
        )
        .bind(principal)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)
    }

    async fn create_grant(&self, grant: &GrantRecord, change: &Change) -> StoreResult<()> {
        let privilege = serde_json::to_value(grant.privilege).map_err(backend)?;
        let q = sqlx::query(
            "INSERT INTO grants (id, tenant_id, role_id, resource, privilege, record) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(grant.id)
        .bind(grant.tenant_id)
        .bind(grant.role_id)
        .bind(json(&grant.resource))
        .bind(privilege.as_str().unwrap_or_default().to_owned())
        .bind(json(grant));
        match self.changing(change, q).await {
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(format!(
                "grant of {:?} on this resource to role {}",
                grant.privilege, grant.role_id
            ))),
            Err(e) if is_foreign_key_violation(&e) => {
                Err(StoreError::NotFound(format!("role {}", grant.role_id)))
            }
            r => r.map(|_| ()).map_err(backend),
        }
    }

    async fn delete_grant(
        &self,
        tenant: TenantId,
        id: Uuid,
        change: &Change,
    ) -> StoreResult<Option<GrantRecord>> {
        let mut tx = self.begin().await?;
        let row =
            sqlx::query("DELETE FROM grants WHERE tenant_id = $1 AND id = $2 RETURNING record")
                .bind(tenant)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        notify(&mut tx, change).await.map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(record(&row)?))
    }

    async fn list_grants(
        &self,
        tenant: TenantId,
        role: Option<RoleId>,
    ) -> StoreResult<Vec<GrantRecord>> {
        let rows = sqlx::query(
            "SELECT record FROM grants WHERE tenant_id = $1 AND ($2::uuid IS NULL OR role_id = $2) \
             ORDER BY id",
        )
        .bind(tenant)
        .bind(role)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        records(&rows)
    }
}
