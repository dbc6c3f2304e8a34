//! The recycle bins in PostgreSQL ([`RecycleBinStore`]): `dropped_tabulars` rows keep a dropped
//! object's id and location claim until it is restored or forgotten; the purge queue leases rows
//! with `SKIP LOCKED`.
//!
//! Owns: the `dropped_tabulars` table. Must not touch: live tables and views but through the
//! helpers of [`super::tabulars`] in its own transactions.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::types::Json;

use super::claims::{check_claim, lock_locations};
use super::common::{backend, json};
use super::*;
use crate::changes::Change;
use crate::domain::TableIdent;
use crate::domain::WarehouseId;
use crate::store::locations::LocationClaim;

/// `concat!`s a query around the columns [`dropped_from_row`] reads (a literal, as sqlx wants).
macro_rules! with_dropped_columns {
    ($before:literal, $after:literal) => {
        concat!(
            $before,
            " warehouse_id, tabular, dropped_at_ms, expires_at_ms, purge_files, lease_until_ms ",
            $after
        )
    };
}

fn dropped_from_row(row: &sqlx::postgres::PgRow) -> StoreResult<DroppedRecord> {
    let Json(tabular): Json<TabularRecord> = row.try_get("tabular").map_err(backend)?;
    Ok(DroppedRecord {
        warehouse: row.try_get("warehouse_id").map_err(backend)?,
        tabular,
        dropped_at_ms: row.try_get("dropped_at_ms").map_err(backend)?,
        expires_at_ms: row.try_get("expires_at_ms").map_err(backend)?,
        purge_files: row.try_get("purge_files").map_err(backend)?,
        lease_until_ms: row.try_get("lease_until_ms").map_err(backend)?,
    })
}

#[async_trait]
impl RecycleBinStore for PgStore {
    async fn bin_tabular(
        &self,
        warehouse: WarehouseId,
        kind: TabularKind,
        ident: &TableIdent,
        dropped_at_ms: i64,
        expires_at_ms: i64,
        purge_files: bool,
    ) -> StoreResult<DroppedRecord> {
        let mut tx = self.begin().await?;
        // The claim moves from the table's row to its bin row in this transaction; claims are
        // checked under this lock, so none is made in between.
        lock_locations(&mut tx, warehouse).await?;
        let record = Self::take_tabular(&mut tx, warehouse, kind, ident).await?;
        let dropped = DroppedRecord {
            warehouse,
            tabular: record,
            dropped_at_ms,
            expires_at_ms,
            purge_files,
            lease_until_ms: 0,
        };
        sqlx::query(
            "INSERT INTO dropped_tabulars (warehouse_id, id, tabular, levels, location, \
             dropped_at_ms, expires_at_ms, purge_files) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(warehouse)
        .bind(dropped.tabular.id)
        .bind(json(&dropped.tabular))
        .bind(ident.namespace.parts())
        .bind(&dropped.tabular.location)
        .bind(dropped.dropped_at_ms)
        .bind(expires_at_ms)
        .bind(purge_files)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        self.pointers.apply(&left(warehouse, dropped.tabular.id));
        Ok(dropped)
    }

    async fn list_dropped(&self, warehouse: WarehouseId) -> StoreResult<Vec<DroppedRecord>> {
        let rows = sqlx::query(with_dropped_columns!(
            "SELECT",
            "FROM dropped_tabulars WHERE warehouse_id = $1 \
             ORDER BY dropped_at_ms, id"
        ))
        .bind(warehouse)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(dropped_from_row).collect()
    }

    async fn get_dropped(
        &self,
        warehouse: WarehouseId,
        id: TabularId,
    ) -> StoreResult<Option<DroppedRecord>> {
        let row = sqlx::query(with_dropped_columns!(
            "SELECT",
            "FROM dropped_tabulars WHERE warehouse_id = $1 AND id = $2"
        ))
        .bind(warehouse)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(dropped_from_row).transpose()
    }

    async fn restore_dropped(
        &self,
        warehouse: WarehouseId,
        id: TabularId,
        ident: &TableIdent,
        now_ms: i64,
        change: &Change,
    ) -> StoreResult<TabularRecord> {
        let mut tx = self.begin().await?;
        lock_locations(&mut tx, warehouse).await?;
        let row = sqlx::query(with_dropped_columns!(
            "DELETE FROM dropped_tabulars WHERE warehouse_id = $1 AND id = $2 \
             RETURNING",
            ""
        ))
        .bind(warehouse)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("dropped object {id}")))?;
        let dropped = dropped_from_row(&row)?;
        if dropped.purge_due(now_ms) {
            return Err(StoreError::Purging(id));
        }
        let record = TabularRecord {
            ident: ident.clone(),
            ..dropped.tabular
        };
        // With its bin row gone, the location is claimed afresh where the object returns; any
        // refusal below rolls the whole restore back, bin row included.
        self.insert_tabular(&mut tx, warehouse, &record).await?;
        // Grants by id reach it again, under what may be a new name.
        notify(&mut tx, change).await.map_err(backend)?;
        send_notice(&mut tx, &left(warehouse, record.id)).await?;
        tx.commit().await.map_err(backend)?;
        self.pointers.apply(&left(warehouse, record.id));
        Ok(record)
    }

    async fn expire_dropped(
        &self,
        warehouse: WarehouseId,
        id: TabularId,
        expires_at_ms: i64,
        purge_files: bool,
    ) -> StoreResult<DroppedRecord> {
        let mut tx = self.begin().await?;
        lock_locations(&mut tx, warehouse).await?;
        let current = sqlx::query(with_dropped_columns!(
            "SELECT",
            "FROM dropped_tabulars WHERE warehouse_id = $1 AND id = $2 FOR UPDATE"
        ))
        .bind(warehouse)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("dropped object {id}")))?;
        let current = dropped_from_row(&current)?;
        // Files are purged only from a location no other owner holds (bin entries from before
        // every entry kept its claim may share theirs with an object created meanwhile).
        if purge_files && !current.purge_files {
            check_claim(
                &mut tx,
                warehouse,
                &LocationClaim::of_tabular(&current.tabular),
            )
            .await?;
        }
        let row = sqlx::query(with_dropped_columns!(
            "UPDATE dropped_tabulars SET expires_at_ms = $3, purge_files = purge_files OR $4 \
             WHERE warehouse_id = $1 AND id = $2 RETURNING",
            ""
        ))
        .bind(warehouse)
        .bind(id)
        .bind(expires_at_ms)
        .bind(purge_files)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        dropped_from_row(&row)
    }

    async fn lease_expired_dropped(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        except: &[WarehouseId],
    ) -> StoreResult<Option<DroppedRecord>> {
        // SKIP LOCKED: replicas asking at once take different rows, never the same one.
        let row = sqlx::query(with_dropped_columns!(
            "UPDATE dropped_tabulars SET lease_until_ms = $2 WHERE (warehouse_id, id) = \
             (SELECT warehouse_id, id FROM dropped_tabulars \
               WHERE expires_at_ms <= $1 AND lease_until_ms < $1 AND warehouse_id <> ALL($3) \
               ORDER BY expires_at_ms LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING",
            ""
        ))
        .bind(now_ms)
        .bind(lease_until_ms)
        .bind(except)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(dropped_from_row).transpose()
    }

    async fn forget_dropped(&self, warehouse: WarehouseId, id: TabularId) -> StoreResult<()> {
        sqlx::query("DELETE FROM dropped_tabulars WHERE warehouse_id = $1 AND id = $2")
            .bind(warehouse)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
