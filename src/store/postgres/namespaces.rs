//! Namespaces in PostgreSQL ([`NamespaceStore`]): "only when empty" rests on foreign keys; a
//! `location` property is claimed under the warehouse's location lock.
//!
//! Owns: the `namespaces` table and [`PgStore::namespace_id`]. Must not touch: tables and views.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::claims::{check_claim, lock_locations};
use super::common::{
    backend, fetch_limit, is_foreign_key_violation, is_unique_violation, json, namespace_ident,
    page_of,
};
use super::*;
use crate::domain::NamespaceIdent;
use crate::domain::WarehouseId;
use crate::store::locations::{LocationClaim, NAMESPACE_LOCATION, OwnerKind};

impl PgStore {
    /// The id of a namespace; with `share`, locked against being dropped until the transaction ends.
    pub(super) async fn namespace_id(
        conn: &mut PgConnection,
        warehouse: WarehouseId,
        ns: &NamespaceIdent,
        share: bool,
    ) -> StoreResult<Uuid> {
        let sql = if share {
            "SELECT id FROM namespaces WHERE warehouse_id = $1 AND levels = $2 FOR SHARE"
        } else {
            "SELECT id FROM namespaces WHERE warehouse_id = $1 AND levels = $2"
        };
        sqlx::query_scalar(sql)
            .bind(warehouse)
            .bind(ns.parts())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::NoSuchNamespace(ns.clone()))
    }
}

#[async_trait]
impl NamespaceStore for PgStore {
    async fn create_namespace(
        &self,
        warehouse: WarehouseId,
        ns: &NamespaceRecord,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        if let Some(claim) = LocationClaim::of_namespace(ns) {
            lock_locations(&mut tx, warehouse).await?;
            check_claim(&mut tx, warehouse, &claim).await?;
        }
        let parent = match ns.ident.parent() {
            Some(parent) => Some(Self::namespace_id(&mut tx, warehouse, &parent, true).await?),
            None => None,
        };
        let name = ns.ident.parts().last().cloned().unwrap_or_default();
        let inserted = sqlx::query(
            "INSERT INTO namespaces (id, warehouse_id, parent_id, levels, name, properties, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(ns.id)
        .bind(warehouse)
        .bind(parent)
        .bind(ns.ident.parts())
        .bind(name)
        .bind(json(&ns.properties))
        .bind(ns.created_at_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(format!("namespace {}", ns.ident)));
            }
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(StoreError::NotFound(format!("warehouse {warehouse}")));
            }
            r => r.map_err(backend)?,
        };
        tx.commit().await.map_err(backend)
    }

    async fn get_namespace(
        &self,
        warehouse: WarehouseId,
        ns: &NamespaceIdent,
    ) -> StoreResult<Option<NamespaceRecord>> {
        let row = sqlx::query(
            "SELECT id, properties, created_at_ms FROM namespaces WHERE warehouse_id = $1 AND levels = $2",
        )
        .bind(warehouse)
        .bind(ns.parts())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let Json(properties): Json<BTreeMap<String, String>> =
            row.try_get("properties").map_err(backend)?;
        Ok(Some(NamespaceRecord {
            id: row.try_get("id").map_err(backend)?,
            ident: ns.clone(),
            properties,
            created_at_ms: row.try_get("created_at_ms").map_err(backend)?,
        }))
    }

    async fn list_namespaces(
        &self,
        warehouse: WarehouseId,
        parent: Option<&NamespaceIdent>,
        page: &PageRequest,
    ) -> StoreResult<Page<NamespaceIdent>> {
        let after = page.after.as_deref();
        let rows = match parent {
            None => sqlx::query(
                "SELECT name, levels FROM namespaces \
                 WHERE warehouse_id = $1 AND parent_id IS NULL AND name > COALESCE($2::text, '') \
                 ORDER BY name LIMIT $3",
            )
            .bind(warehouse)
            .bind(after)
            .bind(fetch_limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?,
            Some(p) => {
                let mut tx = self.begin().await?;
                let parent_id = Self::namespace_id(&mut tx, warehouse, p, false).await?;
                sqlx::query(
                    "SELECT name, levels FROM namespaces \
                     WHERE warehouse_id = $1 AND parent_id = $2 AND name > COALESCE($3::text, '') \
                     ORDER BY name LIMIT $4",
                )
                .bind(warehouse)
                .bind(parent_id)
                .bind(after)
                .bind(fetch_limit(page))
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?
            }
        };
        let items = rows
            .iter()
            .map(|row| {
                let name: String = row.try_get("name").map_err(backend)?;
                let levels: Vec<String> = row.try_get("levels").map_err(backend)?;
                Ok((name, namespace_ident(levels)?))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page_of(items, page))
    }

    async fn update_namespace_properties(
        &self,
        warehouse: WarehouseId,
        ns: &NamespaceIdent,
        updates: &BTreeMap<String, String>,
        removals: &[String],
    ) -> StoreResult<(BTreeMap<String, String>, BTreeMap<String, String>)> {
        let mut tx = self.begin().await?;
        let moves_location = updates.contains_key(NAMESPACE_LOCATION)
            || removals.iter().any(|k| k == NAMESPACE_LOCATION);
        if moves_location {
            lock_locations(&mut tx, warehouse).await?;
        }
        let row = sqlx::query(
            "SELECT id, properties FROM namespaces WHERE warehouse_id = $1 AND levels = $2 FOR UPDATE",
        )
        .bind(warehouse)
        .bind(ns.parts())
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?
        .ok_or_else(|| StoreError::NoSuchNamespace(ns.clone()))?;
        let id: Uuid = row.try_get("id").map_err(backend)?;
        let Json(before): Json<BTreeMap<String, String>> =
            row.try_get("properties").map_err(backend)?;
        let mut after = before.clone();
        for k in removals {
            after.remove(k);
        }
        for (k, v) in updates {
            after.insert(k.clone(), v.clone());
        }
        if let Some(location) = after.get(NAMESPACE_LOCATION)
            && before.get(NAMESPACE_LOCATION) != Some(location)
        {
            let claim = LocationClaim {
                location: location.clone(),
                owner: id,
                kind: OwnerKind::Namespace,
                namespace: ns.clone(),
                expires_at_ms: None,
            };
            check_claim(&mut tx, warehouse, &claim).await?;
        }
        sqlx::query("UPDATE namespaces SET properties = $2 WHERE id = $1")
            .bind(id)
            .bind(json(&after))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok((before, after))
    }

    async fn drop_namespace(&self, warehouse: WarehouseId, ns: &NamespaceIdent) -> StoreResult<()> {
        // Child namespaces and tables reference the row: the delete fails while any exist.
        let deleted = sqlx::query("DELETE FROM namespaces WHERE warehouse_id = $1 AND levels = $2")
            .bind(warehouse)
            .bind(ns.parts())
            .execute(&self.pool)
            .await;
        match deleted {
            Ok(r) if r.rows_affected() == 0 => Err(StoreError::NoSuchNamespace(ns.clone())),
            Err(e) if is_foreign_key_violation(&e) => {
                Err(StoreError::NamespaceNotEmpty(ns.clone()))
            }
            r => r.map(|_| ()).map_err(backend),
        }
    }
}
