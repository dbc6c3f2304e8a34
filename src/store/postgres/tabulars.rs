//! Live tables and views in PostgreSQL ([`TabularStore`]): rows by namespace and name, location
//! claims, staged creates' reservations (`staged_locations`), and metadata pointer swaps (one at a
//! time through [`super::group_commit`], several in one transaction taking rows in a fixed order).
//! Every pointer change sends its notice in its own transaction.
//!
//! Owns: the `tabulars` and `staged_locations` tables and what reads and writes one row of them.
//! Must not touch: the recycle bin but the check that an id is no dropped object's.

use async_trait::async_trait;
use sqlx::postgres::PgConnection;

use super::claims::{check_claim, lock_locations};
use super::common::{
    backend, fetch_limit, is_foreign_key_violation, is_unique_violation, kind_text, page_of,
    tabular_from_row,
};
use super::group_commit::set_metadata;
use super::*;
use crate::changes::Change;
use crate::domain::WarehouseId;
use crate::domain::{NamespaceIdent, ObjectName, TableIdent};
use crate::store::locations::{LocationClaim, refusal};

/// One page of a namespace's tables or views (namespace id, kind, the page's last name or none,
/// rows): an index-only scan of `tabulars_listing` (public for the test that checks the plan).
pub const LIST_TABULARS: &str = "SELECT name FROM tabulars WHERE namespace_id = $1 AND kind = $2 \
     AND name > COALESCE($3::text, '') ORDER BY name LIMIT $4";

impl PgStore {
    /// A table or view by name; with `for_update`, locked until the transaction ends.
    pub(super) async fn tabular_in(
        conn: &mut PgConnection,
        warehouse: WarehouseId,
        ident: &TableIdent,
        for_update: bool,
    ) -> StoreResult<Option<TabularRecord>> {
        let sql = if for_update {
            "SELECT t.id, t.kind, t.name, t.location, t.metadata_location, t.created_at_ms, n.levels \
             FROM tabulars t JOIN namespaces n ON n.id = t.namespace_id \
             WHERE n.warehouse_id = $1 AND n.levels = $2 AND t.name = $3 FOR UPDATE OF t"
        } else {
            "SELECT t.id, t.kind, t.name, t.location, t.metadata_location, t.created_at_ms, n.levels \
             FROM tabulars t JOIN namespaces n ON n.id = t.namespace_id \
             WHERE n.warehouse_id = $1 AND n.levels = $2 AND t.name = $3"
        };
        let row = sqlx::query(sql)
            .bind(warehouse)
            .bind(ident.namespace.parts())
            .bind(ident.name.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
        row.as_ref().map(tabular_from_row).transpose()
    }

    /// Takes table or view `ident` (of `kind`) out of its namespace inside `tx`.
    pub(super) async fn take_tabular(
        tx: &mut PgConnection,
        warehouse: WarehouseId,
        kind: TabularKind,
        ident: &TableIdent,
    ) -> StoreResult<TabularRecord> {
        let record = Self::tabular_in(&mut *tx, warehouse, ident, true)
            .await?
            .filter(|r| r.kind == kind)
            .ok_or_else(|| StoreError::NoSuchTabular(kind, ident.clone()))?;
        sqlx::query(
            "DELETE FROM tabulars t USING namespaces n \
             WHERE n.id = t.namespace_id AND n.warehouse_id = $1 AND n.levels = $2 AND t.name = $3",
        )
        .bind(warehouse)
        .bind(ident.namespace.parts())
        .bind(ident.name.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        send_notice(&mut *tx, &left(warehouse, record.id)).await?;
        Ok(record)
    }

    /// Inserts a table or view inside `tx` (the warehouse's location lock held): claims its
    /// location, checks its id and name are free and its namespace exists.
    pub(super) async fn insert_tabular(
        &self,
        tx: &mut PgConnection,
        warehouse: WarehouseId,
        record: &TabularRecord,
    ) -> StoreResult<()> {
        // A dropped object keeps its id: its grants and its restore stay its own.
        let id_taken: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM tabulars t JOIN namespaces n ON n.id = t.namespace_id \
             WHERE n.warehouse_id = $1 AND t.id = $2 AND NOT (n.levels = $3 AND t.name = $4)) \
             OR EXISTS (SELECT 1 FROM dropped_tabulars WHERE warehouse_id = $1 AND id = $2)",
        )
        .bind(warehouse)
        .bind(record.id)
        .bind(record.ident.namespace.parts())
        .bind(record.ident.name.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        if id_taken {
            return Err(id_taken_error(record));
        }
        check_claim(&mut *tx, warehouse, &LocationClaim::of_tabular(record)).await?;
        let ns_id = Self::namespace_id(&mut *tx, warehouse, &record.ident.namespace, true).await?;
        let inserted = sqlx::query(
            "INSERT INTO tabulars (namespace_id, name, id, kind, location, metadata_location, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(ns_id)
        .bind(record.ident.name.as_str())
        .bind(record.id)
        .bind(kind_text(record.kind))
        .bind(&record.location)
        .bind(&record.metadata_location)
        .bind(record.created_at_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                let existing = self.get_tabular(warehouse, &record.ident).await?;
                let noun = existing.map_or(record.kind, |r| r.kind).noun();
                return Err(StoreError::AlreadyExists(format!(
                    "{noun} {}",
                    record.ident
                )));
            }
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(StoreError::NoSuchNamespace(record.ident.namespace.clone()));
            }
            r => r.map_err(backend)?,
        };
        // A committed stage: its reservation became the table's own claim.
        sqlx::query("DELETE FROM staged_locations WHERE warehouse_id = $1 AND owner = $2")
            .bind(warehouse)
            .bind(record.id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// One table's compare-and-swap, made together with the others arriving at the same time.
    async fn swap_one(
        &self,
        warehouse: WarehouseId,
        kind: TabularKind,
        swap: &MetadataSwap,
    ) -> StoreResult<()> {
        if let Some(id) = self.commits.swap(warehouse, kind, swap).await? {
            self.pointers.apply(&moved(warehouse, id.into(), swap));
            return Ok(());
        }
        self.pointers.forget_name(warehouse, &swap.ident);
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        match Self::tabular_in(&mut conn, warehouse, &swap.ident, false).await? {
            Some(r) if r.kind == kind => Err(StoreError::Conflict(swap.ident.clone())),
            _ => Err(StoreError::NoSuchTabular(kind, swap.ident.clone())),
        }
    }
}

#[async_trait]
impl TabularStore for PgStore {
    async fn create_tabular(
        &self,
        warehouse: WarehouseId,
        record: &TabularRecord,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        lock_locations(&mut tx, warehouse).await?;
        self.insert_tabular(&mut tx, warehouse, record).await?;
        tx.commit().await.map_err(backend)
    }

    async fn reserve_location(
        &self,
        warehouse: WarehouseId,
        claim: &LocationClaim,
    ) -> StoreResult<()> {
        let expires_at_ms = claim
            .expires_at_ms
            .ok_or_else(|| StoreError::failure("a reservation needs an expiry"))?;
        let mut tx = self.begin().await?;
        lock_locations(&mut tx, warehouse).await?;
        check_claim(&mut tx, warehouse, claim).await?;
        sqlx::query(
            "INSERT INTO staged_locations (warehouse_id, owner, levels, location, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(warehouse)
        .bind(claim.owner)
        .bind(claim.namespace.parts())
        .bind(&claim.location)
        .bind(expires_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                StoreError::NotFound(format!("warehouse {warehouse}"))
            } else if is_unique_violation(&e) {
                refusal(&claim.location)
            } else {
                backend(e)
            }
        })?;
        tx.commit().await.map_err(backend)
    }

    async fn release_lapsed_reservations(&self, now_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM staged_locations WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn get_tabular(
        &self,
        warehouse: WarehouseId,
        ident: &TableIdent,
    ) -> StoreResult<Option<TabularRecord>> {
        static HITS: std::sync::LazyLock<metrics::Counter> =
            std::sync::LazyLock::new(|| metrics::counter!("floe_pointer_cache_hits_total"));
        static MISSES: std::sync::LazyLock<metrics::Counter> =
            std::sync::LazyLock::new(|| metrics::counter!("floe_pointer_cache_misses_total"));
        if let Some(hit) = self.pointers.get(warehouse, ident) {
            HITS.increment(1);
            return Ok(Some(hit));
        }
        MISSES.increment(1);
        self.pointers
            .read_through(warehouse, ident, || async {
                let row = sqlx::query(
                    "SELECT t.id, t.kind, t.name, t.location, t.metadata_location, t.created_at_ms, n.levels \
                     FROM tabulars t JOIN namespaces n ON n.id = t.namespace_id \
                     WHERE n.warehouse_id = $1 AND n.levels = $2 AND t.name = $3",
                )
                .bind(warehouse)
                .bind(ident.namespace.parts())
                .bind(ident.name.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
                row.as_ref().map(tabular_from_row).transpose()
            })
            .await
    }

    async fn get_tabular_by_id(
        &self,
        warehouse: WarehouseId,
        id: TabularId,
    ) -> StoreResult<Option<TabularRecord>> {
        let row = sqlx::query(
            "SELECT t.id, t.kind, t.name, t.location, t.metadata_location, t.created_at_ms, n.levels \
             FROM tabulars t JOIN namespaces n ON n.id = t.namespace_id \
             WHERE n.warehouse_id = $1 AND t.id = $2",
        )
        .bind(warehouse)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(tabular_from_row).transpose()
    }

    async fn list_tabulars(
        &self,
        warehouse: WarehouseId,
        ns: &NamespaceIdent,
        kind: TabularKind,
        page: &PageRequest,
    ) -> StoreResult<Page<TableIdent>> {
        let mut tx = self.begin().await?;
        let ns_id = Self::namespace_id(&mut tx, warehouse, ns, false).await?;
        let names: Vec<String> = sqlx::query_scalar(LIST_TABULARS)
            .bind(ns_id)
            .bind(kind_text(kind))
            .bind(page.after.as_deref())
            .bind(fetch_limit(page))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let items = names
            .into_iter()
            .map(|name| {
                let ident = TableIdent::new(ns.clone(), ObjectName::new(&name).map_err(backend)?);
                Ok((name, ident))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page_of(items, page))
    }

    async fn swap_metadata(
        &self,
        warehouse: WarehouseId,
        kind: TabularKind,
        swaps: &[MetadataSwap],
    ) -> StoreResult<()> {
        if let [swap] = swaps {
            return self.swap_one(warehouse, kind, swap).await;
        }
        // Rows are locked in one fixed order, so two multi-table commits cannot deadlock.
        let mut order: Vec<&MetadataSwap> = swaps.iter().collect();
        order.sort_by(|a, b| {
            (a.ident.namespace.parts(), a.ident.name.as_str())
                .cmp(&(b.ident.namespace.parts(), b.ident.name.as_str()))
        });
        let mut tx = self.begin().await?;
        let mut current = Vec::with_capacity(order.len());
        for swap in order {
            let record = Self::tabular_in(&mut tx, warehouse, &swap.ident, true).await?;
            current.push((&swap.ident, record));
        }
        for swap in swaps {
            let record = current
                .iter()
                .find(|(ident, _)| **ident == swap.ident)
                .and_then(|(_, r)| r.as_ref())
                .filter(|r| r.kind == kind);
            let refusal = match record {
                None => StoreError::NoSuchTabular(kind, swap.ident.clone()),
                Some(r) if r.metadata_location != swap.expected => {
                    StoreError::Conflict(swap.ident.clone())
                }
                Some(_) => continue,
            };
            self.pointers.forget_name(warehouse, &swap.ident);
            return Err(refusal);
        }
        let mut notices = Vec::with_capacity(swaps.len());
        for swap in swaps {
            let id = set_metadata(&mut *tx, warehouse, kind, swap)
                .await
                .map_err(backend)?
                .ok_or_else(|| StoreError::failure("a locked row did not move"))?;
            notices.push(moved(warehouse, id.into(), swap));
        }
        tx.commit().await.map_err(backend)?;
        for notice in &notices {
            self.pointers.apply(notice);
        }
        Ok(())
    }

    async fn drop_tabular(
        &self,
        warehouse: WarehouseId,
        kind: TabularKind,
        ident: &TableIdent,
    ) -> StoreResult<TabularRecord> {
        let mut tx = self.begin().await?;
        let record = Self::take_tabular(&mut tx, warehouse, kind, ident).await?;
        tx.commit().await.map_err(backend)?;
        self.pointers.apply(&left(warehouse, record.id));
        Ok(record)
    }

    async fn rename_tabular(
        &self,
        warehouse: WarehouseId,
        kind: TabularKind,
        from: &TableIdent,
        to: &TableIdent,
        change: &Change,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let record = Self::tabular_in(&mut tx, warehouse, from, true)
            .await?
            .filter(|r| r.kind == kind)
            .ok_or_else(|| StoreError::NoSuchTabular(kind, from.clone()))?;
        if from == to {
            return Ok(());
        }
        let from_ns = Self::namespace_id(&mut tx, warehouse, &from.namespace, false).await?;
        let to_ns = Self::namespace_id(&mut tx, warehouse, &to.namespace, true).await?;
        let moved = sqlx::query(
            "UPDATE tabulars SET namespace_id = $3, name = $4 WHERE namespace_id = $1 AND name = $2",
        )
        .bind(from_ns)
        .bind(from.name.as_str())
        .bind(to_ns)
        .bind(to.name.as_str())
        .execute(&mut *tx)
        .await;
        match moved {
            Err(e) if is_unique_violation(&e) => {
                drop(tx);
                let existing = self.get_tabular(warehouse, to).await?;
                let noun = existing.map_or(kind, |r| r.kind).noun();
                return Err(StoreError::AlreadyExists(format!("{noun} {to}")));
            }
            r => r.map_err(backend)?,
        };
        notify(&mut tx, change).await.map_err(backend)?;
        send_notice(&mut tx, &left(warehouse, record.id)).await?;
        tx.commit().await.map_err(backend)?;
        self.pointers.apply(&left(warehouse, record.id));
        Ok(())
    }
}
