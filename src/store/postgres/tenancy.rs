//! Tenants and warehouses in PostgreSQL ([`TenancyStore`]). A warehouse's storage root is its
//! row's `root`, claimed under the roots' advisory lock across all tenants.
//!
//! Owns: the `tenants` and `warehouses` tables. Must not touch: principals and roles (a tenant's
//! are deleted with it in its transaction, the rest of access is [`AccessStore`]'s).

use async_trait::async_trait;

use super::claims::{check_root, lock_roots};
use super::common::{
    backend, is_foreign_key_violation, is_unique_violation, json, record, records,
};
use super::*;
use crate::changes::Change;
use crate::domain::TenantId;

#[async_trait]
impl TenancyStore for PgStore {
    async fn create_tenant(&self, tenant: &TenantRecord, change: &Change) -> StoreResult<()> {
        let q = sqlx::query("INSERT INTO tenants (id, name, record) VALUES ($1, $2, $3)")
            .bind(tenant.id)
            .bind(&tenant.name)
            .bind(json(tenant));
        match self.changing(change, q).await {
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(format!(
                "tenant '{}'",
                tenant.name
            ))),
            r => r.map(|_| ()).map_err(backend),
        }
    }

    async fn get_tenant(&self, id: TenantId) -> StoreResult<Option<TenantRecord>> {
        self.fetch_record(sqlx::query("SELECT record FROM tenants WHERE id = $1").bind(id))
            .await
    }

    async fn get_tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
        self.fetch_record(sqlx::query("SELECT record FROM tenants WHERE name = $1").bind(name))
            .await
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantRecord>> {
        let rows = sqlx::query("SELECT record FROM tenants ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        records(&rows)
    }

    async fn rename_tenant(&self, id: TenantId, name: &str, change: &Change) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT record FROM tenants WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("tenant {id}")));
        };
        let mut tenant: TenantRecord = record(&row)?;
        if tenant.name == name {
            return Ok(());
        }
        tenant.name = name.to_owned();
        let updated = sqlx::query("UPDATE tenants SET name = $2, record = $3 WHERE id = $1")
            .bind(id)
            .bind(name)
            .bind(json(&tenant))
            .execute(&mut *tx)
            .await;
        match updated {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(format!("tenant '{name}'")));
            }
            r => r.map_err(backend)?,
        };
        notify(&mut tx, change).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn delete_tenant(&self, id: TenantId, change: &Change) -> StoreResult<()> {
        let Some(tenant) = self.get_tenant(id).await? else {
            return Err(StoreError::NotFound(format!("tenant {id}")));
        };
        let mut tx = self.begin().await?;
        for sql in [
            "DELETE FROM principals WHERE tenant_id = $1",
            "DELETE FROM roles WHERE tenant_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        let deleted = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map(|r| r.rows_affected());
        match deleted {
            Ok(0) => return Err(StoreError::NotFound(format!("tenant {id}"))),
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(StoreError::NotEmpty(
                    format!("tenant '{}'", tenant.name),
                    "delete its warehouses first".into(),
                ));
            }
            r => r.map_err(backend)?,
        };
        notify(&mut tx, change).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn create_warehouse(&self, wh: &WarehouseRecord, change: &Change) -> StoreResult<()> {
        let root = wh.storage.root_location();
        let mut tx = self.begin().await?;
        lock_roots(&mut tx).await?;
        let inserted = sqlx::query(
            "INSERT INTO warehouses (id, tenant_id, name, credential, record, root) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(wh.id)
        .bind(wh.tenant_id)
        .bind(&wh.name)
        .bind(&wh.credential)
        .bind(json(wh))
        .bind(&root)
        .execute(&mut *tx)
        .await;
        warehouse_written(inserted, wh)?;
        check_root(&mut tx, wh.id, &root).await?;
        notify(&mut tx, change).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn update_warehouse(&self, wh: &WarehouseRecord, change: &Change) -> StoreResult<()> {
        let root = wh.storage.root_location();
        let mut tx = self.begin().await?;
        lock_roots(&mut tx).await?;
        let old: Option<(String, Option<String>, bool)> = sqlx::query_as(
            "SELECT name, root, EXISTS (SELECT 1 FROM namespaces WHERE warehouse_id = $1) \
             OR EXISTS (SELECT 1 FROM dropped_tabulars WHERE warehouse_id = $1) \
             FROM warehouses WHERE id = $1 FOR UPDATE",
        )
        .bind(wh.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some((old_name, old_root, holds_namespaces)) = old else {
            return Err(StoreError::failure(format!(
                "warehouse {} does not exist",
                wh.id
            )));
        };
        if old_root.as_deref() != Some(root.as_str()) {
            if holds_namespaces {
                return Err(storage_in_use(&old_name));
            }
            check_root(&mut tx, wh.id, &root).await?;
        }
        let updated = sqlx::query(
            "UPDATE warehouses SET name = $2, credential = $3, record = $4, root = $5 WHERE id = $1",
        )
        .bind(wh.id)
        .bind(&wh.name)
        .bind(&wh.credential)
        .bind(json(wh))
        .bind(&root)
        .execute(&mut *tx)
        .await;
        warehouse_written(updated, wh)?;
        notify(&mut tx, change).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn get_warehouse(&self, id: WarehouseId) -> StoreResult<Option<WarehouseRecord>> {
        self.fetch_record(sqlx::query("SELECT record FROM warehouses WHERE id = $1").bind(id))
            .await
    }

    async fn get_warehouse_by_name(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> StoreResult<Option<WarehouseRecord>> {
        self.fetch_record(
            sqlx::query("SELECT record FROM warehouses WHERE tenant_id = $1 AND name = $2")
                .bind(tenant)
                .bind(name),
        )
        .await
    }

    async fn list_warehouses(&self, tenant: TenantId) -> StoreResult<Vec<WarehouseRecord>> {
        self.fetch_records(
            "SELECT record FROM warehouses WHERE tenant_id = $1 ORDER BY name",
            tenant.uuid(),
        )
        .await
    }

    async fn delete_warehouse(&self, id: WarehouseId, change: &Change) -> StoreResult<()> {
        let Some(wh) = self.get_warehouse(id).await? else {
            return Err(StoreError::NotFound(format!("warehouse {id}")));
        };
        let binned: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM dropped_tabulars WHERE warehouse_id = $1)",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        if binned {
            return Err(StoreError::NotEmpty(
                format!("warehouse '{}'", wh.name),
                "its recycle bin holds dropped tables or views: purge them first".into(),
            ));
        }
        let q = sqlx::query("DELETE FROM warehouses WHERE id = $1").bind(id);
        match self.changing(change, q).await {
            Ok(0) => Err(StoreError::NotFound(format!("warehouse {id}"))),
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotEmpty(
                format!("warehouse '{}'", wh.name),
                "drop its namespaces first".into(),
            )),
            r => r.map(|_| ()).map_err(backend),
        }
    }
}

/// A warehouse row's insert or update, with a name already taken in the tenant and a tenant that
/// is gone said as such.
fn warehouse_written(
    written: Result<sqlx::postgres::PgQueryResult, sqlx::Error>,
    wh: &WarehouseRecord,
) -> StoreResult<()> {
    match written {
        Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(format!(
            "warehouse '{}'",
            wh.name
        ))),
        Err(e) if is_foreign_key_violation(&e) => {
            Err(StoreError::NotFound(format!("tenant {}", wh.tenant_id)))
        }
        r => r.map(drop).map_err(backend),
    }
}
