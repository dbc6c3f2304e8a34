//! The scale-out backend: one PostgreSQL database shared by any number of Floe replicas.
//!
//! Migrations are embedded (`migrations/`) and applied at start under sqlx's advisory lock, so
//! replicas starting together do not race. Commits are a conditional
//! `UPDATE ... WHERE metadata_location = $expected` per table: single-table commits that arrive
//! together share one statement ([`super::pg_group_commit`]); a multi-table commit is one
//! transaction taking its rows in a fixed order, so two of them cannot deadlock. "Only when empty" rules rest on foreign keys,
//! which stay correct whatever another replica does at the same moment.
//!
//! Locations (see [`super::locations`]) are the rows' own `location` columns and namespace
//! properties, indexed in byte order; a claim takes a per-warehouse advisory lock first (before any
//! row lock, so claims cannot deadlock with each other) and then reads the overlapping ones.
//!
//! Every change to something replicas cache (tenants, warehouses, principals, roles, grants,
//! storage credentials, signing keys, and renames of tables and views) sends `NOTIFY floe_changes` in its transaction, carrying
//! the typed [`Change`]; [`PgStore::watch`] publishes each one on every replica's change bus.
//!
//! Table and view pointers are served from each replica's [`PointerCache`]: every commit, rename,
//! drop, bin and restore sends a [`PointerNotice`] on [`POINTERS_CHANNEL`] in its own transaction
//! (a single-table commit is one statement: the conditional update and its notice), and the
//! listener applies every replica's notices; see [`super::pointer_cache`] for the bound.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::locations::{LocationClaim, NAMESPACE_LOCATION, OwnerKind, enclosing, refusal};
use super::pg_common::{backend, kind_text};
use super::pg_group_commit::{GroupCommit, set_metadata};
use super::pointer_cache::{POINTERS_CHANNEL, PointerCache, PointerNotice};
use super::*;
use crate::background::StopSignal;
use crate::changes::{Change, Changes};
use crate::domain::{NamespaceIdent, ObjectName, TableIdent};

/// The first key of the advisory locks that serialize location claims (ASCII "Floe").
const LOCATION_LOCK_CLASS: i32 = 0x466c_6f65;

/// Serializes location claims in one warehouse until the transaction ends. Taken before any row
/// lock by everything that claims a location.
async fn lock_locations(conn: &mut PgConnection, warehouse: Uuid) -> StoreResult<()> {
    let bytes = warehouse.as_bytes();
    let key = i32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCATION_LOCK_CLASS)
        .bind(key)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// The second key of the advisory lock that serializes warehouse storage-root claims across all
/// tenants. A warehouse whose location lock has the same key only waits longer; it never deadlocks,
/// since no transaction takes both.
const ROOTS_LOCK_KEY: i32 = 0;

/// Serializes warehouse storage-root claims until the transaction ends.
async fn lock_roots(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCATION_LOCK_CLASS)
        .bind(ROOTS_LOCK_KEY)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Refuses `root` when another warehouse's root equals it, lies inside it or encloses it. Call
/// with the roots lock held.
async fn check_root(conn: &mut PgConnection, warehouse: Uuid, root: &str) -> StoreResult<()> {
    let mut candidates: Vec<&str> = enclosing(root);
    candidates.push(root);
    let taken: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM warehouses WHERE id <> $1 AND (root = ANY($2) \
         OR (root >= $3 AND root < $4)))",
    )
    .bind(warehouse)
    .bind(&candidates)
    .bind(format!("{root}/"))
    .bind(format!("{root}0"))
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    if taken {
        return Err(StoreError::StorageTaken(root.to_owned()));
    }
    Ok(())
}

/// Refuses `claim` when another owner's location equals it, lies inside it, or encloses it
/// without being its namespace: live tables and views, namespaces, recycle-bin entries (but the
/// claimant's own) and reservations that have not lapsed (but the one the claimant commits).
/// Call with the warehouse's location lock held.
async fn check_claim(
    conn: &mut PgConnection,
    warehouse: Uuid,
    claim: &LocationClaim,
) -> StoreResult<()> {
    let mut candidates: Vec<&str> = enclosing(&claim.location);
    candidates.push(&claim.location);
    let (inside_from, inside_to) = (
        format!("{}/", claim.location),
        format!("{}0", claim.location),
    );
    let rows = sqlx::query(
        "SELECT t.id AS owner, t.kind AS kind, t.location AS location, n.levels AS levels \
           FROM tabulars t JOIN namespaces n ON n.id = t.namespace_id \
          WHERE n.warehouse_id = $1 AND ((t.location COLLATE \"C\") = ANY($2) \
                OR ((t.location COLLATE \"C\") >= $3 AND (t.location COLLATE \"C\") < $4)) \
         UNION ALL \
         SELECT d.id, d.tabular ->> 'kind', d.location, d.levels FROM dropped_tabulars d \
          WHERE d.warehouse_id = $1 AND d.id <> $5 \
            AND (d.location = ANY($2) OR (d.location >= $3 AND d.location < $4)) \
         UNION ALL \
         SELECT s.owner, 'staged', s.location, s.levels FROM staged_locations s \
          WHERE s.warehouse_id = $1 AND s.expires_at_ms > $6 \
            AND NOT (s.owner = $5 AND $7 AND s.levels = $8) \
            AND (s.location = ANY($2) OR (s.location >= $3 AND s.location < $4)) \
         UNION ALL \
         SELECT n.id, 'namespace', n.properties ->> 'location', n.levels FROM namespaces n \
          WHERE n.warehouse_id = $1 AND n.properties ? 'location' \
            AND (((n.properties ->> 'location') COLLATE \"C\") = ANY($2) \
                 OR (((n.properties ->> 'location') COLLATE \"C\") >= $3 \
                     AND ((n.properties ->> 'location') COLLATE \"C\") < $4))",
    )
    .bind(warehouse)
    .bind(&candidates)
    .bind(&inside_from)
    .bind(&inside_to)
    .bind(claim.owner)
    .bind(now_ms())
    .bind(claim.kind == OwnerKind::Table)
    .bind(claim.namespace.parts())
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    for row in rows {
        let owner: Uuid = row.try_get("owner").map_err(backend)?;
        let kind: String = row.try_get("kind").map_err(backend)?;
        // A namespace moving its location still has its old one in its row. Tables are never
        // skipped: a registered copy of a table's metadata carries that table's id.
        if kind == "namespace" && claim.kind == OwnerKind::Namespace && owner == claim.owner {
            continue;
        }
        let location: String = row.try_get("location").map_err(backend)?;
        let levels: Vec<String> = row.try_get("levels").map_err(backend)?;
        let other = LocationClaim {
            kind: match kind.as_str() {
                "namespace" => OwnerKind::Namespace,
                "view" => OwnerKind::View,
                "staged" => OwnerKind::Staged,
                _ => OwnerKind::Table,
            },
            owner,
            namespace: NamespaceIdent::new(levels).map_err(backend)?,
            location,
            expires_at_ms: None,
        };
        let encloses = other.location.len() < claim.location.len();
        if !encloses || !claim.may_lie_inside(&other) {
            return Err(refusal(&claim.location));
        }
    }
    Ok(())
}

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

/// The channel replicas listen on for cache invalidations.
pub const CHANGES_CHANNEL: &str = "floe_changes";

/// The embedded schema migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// PostgreSQL-backed [`CatalogStore`].
pub struct PgStore {
    pool: PgPool,
    pointers: Arc<PointerCache>,
    commits: GroupCommit,
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

fn record<T: DeserializeOwned>(row: &PgRow) -> StoreResult<T> {
    let Json(value): Json<T> = row.try_get("record").map_err(backend)?;
    Ok(value)
}

fn records<T: DeserializeOwned>(rows: &[PgRow]) -> StoreResult<Vec<T>> {
    rows.iter().map(record).collect()
}

fn parse_kind(text: &str) -> StoreResult<TabularKind> {
    match text {
        "table" => Ok(TabularKind::Table),
        "view" => Ok(TabularKind::View),
        other => Err(StoreError::failure(format!(
            "unknown tabular kind '{other}'"
        ))),
    }
}

fn namespace_ident(levels: Vec<String>) -> StoreResult<NamespaceIdent> {
    NamespaceIdent::new(levels).map_err(backend)
}

fn tabular_from_row(row: &PgRow) -> StoreResult<TabularRecord> {
    let get = |c: &str| -> StoreResult<String> { row.try_get(c).map_err(backend) };
    let levels: Vec<String> = row.try_get("levels").map_err(backend)?;
    Ok(TabularRecord {
        id: row.try_get("id").map_err(backend)?,
        kind: parse_kind(&get("kind")?)?,
        ident: TableIdent::new(
            namespace_ident(levels)?,
            ObjectName::new(get("name")?).map_err(backend)?,
        ),
        location: get("location")?,
        metadata_location: get("metadata_location")?,
        created_at_ms: row.try_get("created_at_ms").map_err(backend)?,
    })
}

/// Applies a page request to rows already ordered by name: at most `limit`, `next` when more follow.
fn page_of<T>(mut items: Vec<(String, T)>, page: &PageRequest) -> Page<T> {
    let more = page.limit.is_some_and(|limit| items.len() > limit);
    if let Some(limit) = page.limit {
        items.truncate(limit);
    }
    let next = if more {
        items.last().map(|(name, _)| name.clone())
    } else {
        None
    };
    Page {
        items: items.into_iter().map(|(_, item)| item).collect(),
        next,
    }
}

/// One page of a namespace's tables or views (namespace id, kind, the page's last name or none,
/// rows): an index-only scan of `tabulars_listing` (public for the test that checks the plan).
pub const LIST_TABULARS: &str = "SELECT name FROM tabulars WHERE namespace_id = $1 AND kind = $2 \
     AND name > COALESCE($3::text, '') ORDER BY name LIMIT $4";

/// Rows to fetch for a page: one more than asked, to know whether more follow. (Pages start at
/// `name > COALESCE(after, '')`, which the `(parent, name)` indexes serve as a range, since names
/// are never empty; `after IS NULL OR name > after` made PostgreSQL read every earlier name for
/// every page: 12 ms a page at 10,000 tables. Tables and views are listed from
/// `tabulars_listing`, which holds the kind too, so a page reads no table rows.)
fn fetch_limit(page: &PageRequest) -> i64 {
    page.limit.map_or(i64::MAX, |l| l.saturating_add(1) as i64)
}

impl PgStore {
    /// Connects with at most `max_connections` and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::caused("the PostgreSQL URL", e))?
            .application_name("floe");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            // Fail fast while the database is down (a refused connection is retried until this),
            // rather than holding requests; a busy pool hands a connection back well within it.
            .acquire_timeout(Duration::from_secs(3))
            // No ping before every query (a second round trip on load-table's hot path): a
            // connection the server dropped fails one query and is discarded; idle ones are closed.
            .test_before_acquire(false)
            .idle_timeout(Duration::from_secs(60))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::caused("cannot connect to PostgreSQL", e))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::caused("PostgreSQL migrations", e))?;
        let store = Self {
            commits: GroupCommit::start(pool.clone()),
            pool,
            pointers: Arc::new(PointerCache::strict()),
        };
        store.backfill_roots().await?;
        Ok(store)
    }

    /// Records the storage root of warehouses created before roots were recorded.
    async fn backfill_roots(&self) -> StoreResult<()> {
        let rows: Vec<(Uuid, sqlx::types::Json<WarehouseRecord>)> =
            sqlx::query_as("SELECT id, record FROM warehouses WHERE root IS NULL")
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        for (id, wh) in rows {
            sqlx::query("UPDATE warehouses SET root = $2 WHERE id = $1")
                .bind(id)
                .bind(wh.storage.root_location())
                .execute(&self.pool)
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    /// The connection pool (for tools and tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The same store, serving pointers from `cache` once [`PgStore::watch`] listens (without it,
    /// and until then, every read goes to the database).
    pub fn with_pointer_cache(mut self, cache: PointerCache) -> Self {
        self.pointers = Arc::new(cache);
        self
    }

    /// This replica's pointer cache (for metrics and tests).
    pub fn pointers(&self) -> &PointerCache {
        &self.pointers
    }

    /// Publishes every change notification any replica sends on `changes`, on a connection of
    /// its own, until the server stops (then the connection goes back to the pool, so the pool
    /// can close). After a lost connection it publishes [`Change::Everything`], since
    /// notifications sent meanwhile are gone.
    pub fn watch(
        &self,
        changes: Arc<Changes>,
        mut stop: StopSignal,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (pool, pointers) = (self.pool.clone(), self.pointers.clone());
        async move {
            loop {
                tokio::select! {
                    () = stop.stopped() => return,
                    heard = listen(&pool, &changes, &pointers) => {
                        if let Err(e) = heard {
                            tracing::warn!(error = &e as &dyn std::error::Error, "change listener failed; retrying");
                        }
                    }
                }
                pointers.deaf();
                changes.publish(&Change::Everything).await;
                tokio::select! {
                    () = stop.stopped() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }

    async fn begin(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(backend)
    }

    /// Runs one statement that changes what replicas cache, with its notification, atomically.
    async fn changing(
        &self,
        change: &Change,
        query: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<u64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let done = query.execute(&mut *tx).await?.rows_affected();
        notify(&mut tx, change).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// The id of a namespace; with `share`, locked against being dropped until the transaction ends.
    async fn namespace_id(
        conn: &mut PgConnection,
        warehouse: Uuid,
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

    /// A table or view by name; with `for_update`, locked until the transaction ends.
    async fn tabular_in(
        conn: &mut PgConnection,
        warehouse: Uuid,
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
    async fn take_tabular(
        tx: &mut PgConnection,
        warehouse: Uuid,
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
    async fn insert_tabular(
        &self,
        tx: &mut PgConnection,
        warehouse: Uuid,
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
        warehouse: Uuid,
        kind: TabularKind,
        swap: &MetadataSwap,
    ) -> StoreResult<()> {
        if let Some(id) = self.commits.swap(warehouse, kind, swap).await? {
            self.pointers.apply(&moved(warehouse, id, swap));
            return Ok(());
        }
        self.pointers.forget_name(warehouse, &swap.ident);
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        match Self::tabular_in(&mut conn, warehouse, &swap.ident, false).await? {
            Some(r) if r.kind == kind => Err(StoreError::Conflict(swap.ident.clone())),
            _ => Err(StoreError::NoSuchTabular(kind, swap.ident.clone())),
        }
    }

    async fn fetch_records<T: DeserializeOwned>(
        &self,
        sql: &'static str,
        id: Uuid,
    ) -> StoreResult<Vec<T>> {
        let rows = sqlx::query(sql)
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        records(&rows)
    }

    async fn fetch_record<T: DeserializeOwned>(
        &self,
        query: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    ) -> StoreResult<Option<T>> {
        let row = query.fetch_optional(&self.pool).await.map_err(backend)?;
        row.as_ref().map(record).transpose()
    }
}

async fn notify(
    tx: &mut Transaction<'static, Postgres>,
    change: &Change,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(change.to_wire())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Sends a pointer notice inside the transaction `conn` is in.
async fn send_notice(conn: &mut PgConnection, notice: &PointerNotice) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(POINTERS_CHANNEL)
        .bind(serde_json::to_string(notice).map_err(backend)?)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// The notice of a swap that landed.
fn moved(warehouse: Uuid, id: Uuid, swap: &MetadataSwap) -> PointerNotice {
    PointerNotice {
        warehouse,
        id,
        from: Some(swap.expected.clone()),
        to: Some(swap.new.clone()),
    }
}

/// The notice of a table or view that left its name (dropped, binned, renamed, restored).
fn left(warehouse: Uuid, id: Uuid) -> PointerNotice {
    PointerNotice {
        warehouse,
        id,
        from: None,
        to: None,
    }
}

async fn listen(
    pool: &PgPool,
    changes: &Changes,
    pointers: &PointerCache,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([CHANGES_CHANNEL, POINTERS_CHANNEL])
        .await?;
    // Anything may have changed before the listener was up.
    pointers.listening();
    changes.publish(&Change::Everything).await;
    static POINTER_NOTICES: std::sync::LazyLock<metrics::Counter> =
        std::sync::LazyLock::new(|| metrics::counter!("floe_pointer_notices_total"));
    loop {
        match listener.try_recv().await? {
            Some(n) if n.channel() == POINTERS_CHANNEL => {
                POINTER_NOTICES.increment(1);
                pointers.apply_wire(n.payload());
            }
            Some(n) => {
                metrics::counter!("floe_change_notifications_total").increment(1);
                changes.publish(&Change::from_wire(n.payload())).await;
            }
            // The connection was lost; notifications sent meanwhile are gone.
            None => return Ok(()),
        }
    }
}

fn json<T: Serialize>(value: &T) -> Json<&T> {
    Json(value)
}

#[async_trait]
impl CatalogStore for PgStore {
    async fn create_tenant(&self, tenant: &TenantRecord) -> StoreResult<()> {
        let q = sqlx::query("INSERT INTO tenants (id, name, record) VALUES ($1, $2, $3)")
            .bind(tenant.id)
            .bind(&tenant.name)
            .bind(json(tenant));
        match self
            .changing(&Change::Tenant { tenant: tenant.id }, q)
            .await
        {
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(format!(
                "tenant '{}'",
                tenant.name
            ))),
            r => r.map(|_| ()).map_err(backend),
        }
    }

    async fn get_tenant(&self, id: Uuid) -> StoreResult<Option<TenantRecord>> {
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

    async fn create_warehouse(&self, wh: &WarehouseRecord) -> StoreResult<()> {
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
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(format!(
                    "warehouse '{}'",
                    wh.name
                )));
            }
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(StoreError::NotFound(format!("tenant {}", wh.tenant_id)));
            }
            r => r.map_err(backend)?,
        };
        check_root(&mut tx, wh.id, &root).await?;
        notify(&mut tx, &Change::Warehouse { warehouse: wh.id })
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn update_warehouse(&self, wh: &WarehouseRecord) -> StoreResult<()> {
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
        match updated {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(format!(
                    "warehouse '{}'",
                    wh.name
                )));
            }
            r => r.map_err(backend)?,
        };
        notify(&mut tx, &Change::Warehouse { warehouse: wh.id })
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn get_warehouse(&self, id: Uuid) -> StoreResult<Option<WarehouseRecord>> {
        self.fetch_record(sqlx::query("SELECT record FROM warehouses WHERE id = $1").bind(id))
            .await
    }

    async fn get_warehouse_by_name(
        &self,
        tenant: Uuid,
        name: &str,
    ) -> StoreResult<Option<WarehouseRecord>> {
        self.fetch_record(
            sqlx::query("SELECT record FROM warehouses WHERE tenant_id = $1 AND name = $2")
                .bind(tenant)
                .bind(name),
        )
        .await
    }

    async fn list_warehouses(&self, tenant: Uuid) -> StoreResult<Vec<WarehouseRecord>> {
        self.fetch_records(
            "SELECT record FROM warehouses WHERE tenant_id = $1 ORDER BY name",
            tenant,
        )
        .await
    }

    async fn delete_warehouse(&self, id: Uuid) -> StoreResult<()> {
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
        match self.changing(&Change::Warehouse { warehouse: id }, q).await {
            Ok(0) => Err(StoreError::NotFound(format!("warehouse {id}"))),
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotEmpty(
                format!("warehouse '{}'", wh.name),
                "drop its namespaces first".into(),
            )),
            r => r.map(|_| ()).map_err(backend),
        }
    }

    async fn rename_tenant(&self, id: Uuid, name: &str) -> StoreResult<()> {
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
        notify(&mut tx, &Change::Tenant { tenant: id })
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn delete_tenant(&self, id: Uuid) -> StoreResult<()> {
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
        notify(&mut tx, &Change::Tenant { tenant: id })
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn create_principal(&self, p: &PrincipalRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO principals (id, tenant_id, name, client_id, record) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(p.id)
        .bind(p.tenant_id)
        .bind(&p.name)
        .bind(&p.client_id)
        .bind(json(p));
        match self
            .changing(&Change::Principal { principal: p.id }, q)
            .await
        {
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(format!(
                "principal with client id '{}'",
                p.client_id
            ))),
            r => r.map(|_| ()).map_err(backend),
        }
    }

    async fn update_principal(&self, p: &PrincipalRecord) -> StoreResult<()> {
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
        notify(&mut tx, &Change::Principal { principal: p.id })
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn get_principal(&self, id: Uuid) -> StoreResult<Option<PrincipalRecord>> {
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

    async fn list_principals(&self, tenant: Uuid) -> StoreResult<Vec<PrincipalRecord>> {
        self.fetch_records(
            "SELECT record FROM principals WHERE tenant_id = $1 ORDER BY name, id",
            tenant,
        )
        .await
    }

    async fn delete_principal(&self, id: Uuid) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM principals WHERE id = $1").bind(id);
        match self
            .changing(&Change::Principal { principal: id }, q)
            .await
            .map_err(backend)?
        {
            0 => Err(StoreError::NotFound(format!("principal {id}"))),
            _ => Ok(()),
        }
    }

    async fn create_role(&self, role: &RoleRecord) -> StoreResult<()> {
        let q =
            sqlx::query("INSERT INTO roles (id, tenant_id, name, record) VALUES ($1, $2, $3, $4)")
                .bind(role.id)
                .bind(role.tenant_id)
                .bind(&role.name)
                .bind(json(role));
        match self.changing(&Change::Grants, q).await {
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::AlreadyExists(format!("role '{}'", role.name)))
            }
            r => r.map(|_| ()).map_err(backend),
        }
    }

    async fn get_role(&self, id: Uuid) -> StoreResult<Option<RoleRecord>> {
        self.fetch_record(sqlx::query("SELECT record FROM roles WHERE id = $1").bind(id))
            .await
    }

    async fn list_roles(&self, tenant: Uuid) -> StoreResult<Vec<RoleRecord>> {
        self.fetch_records(
            "SELECT record FROM roles WHERE tenant_id = $1 ORDER BY name",
            tenant,
        )
        .await
    }

    async fn delete_role(&self, id: Uuid) -> StoreResult<()> {
        // Grants and assignments go with it (ON DELETE CASCADE).
        let q = sqlx::query("DELETE FROM roles WHERE id = $1").bind(id);
        match self.changing(&Change::Grants, q).await.map_err(backend)? {
            0 => Err(StoreError::NotFound(format!("role {id}"))),
            _ => Ok(()),
        }
    }

    async fn assign_role(&self, principal: Uuid, role: Uuid) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO role_assignments (principal_id, role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(principal)
        .bind(role);
        match self.changing(&Change::Grants, q).await {
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound(format!(
                "principal {principal} or role {role}"
            ))),
            r => r.map(|_| ()).map_err(backend),
        }
    }

    async fn unassign_role(&self, principal: Uuid, role: Uuid) -> StoreResult<()> {
        let q =
            sqlx::query("DELETE FROM role_assignments WHERE principal_id = $1 AND role_id = $2")
                .bind(principal)
                .bind(role);
        match self.changing(&Change::Grants, q).await.map_err(backend)? {
            0 => Err(StoreError::NotFound(format!(
                "assignment of role {role} to principal {principal}"
            ))),
            _ => Ok(()),
        }
    }

    async fn roles_of(&self, principal: Uuid) -> StoreResult<Vec<Uuid>> {
        sqlx::query_scalar(
            "SELECT role_id FROM role_assignments WHERE principal_id = $1 ORDER BY role_id",
        )
        .bind(principal)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)
    }

    async fn create_grant(&self, grant: &GrantRecord) -> StoreResult<()> {
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
        match self.changing(&Change::Grants, q).await {
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

    async fn delete_grant(&self, tenant: Uuid, id: Uuid) -> StoreResult<Option<GrantRecord>> {
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
        notify(&mut tx, &Change::Grants).await.map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(record(&row)?))
    }

    async fn list_grants(&self, tenant: Uuid, role: Option<Uuid>) -> StoreResult<Vec<GrantRecord>> {
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

    async fn create_namespace(&self, warehouse: Uuid, ns: &NamespaceRecord) -> StoreResult<()> {
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
        warehouse: Uuid,
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
        warehouse: Uuid,
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
        warehouse: Uuid,
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

    async fn drop_namespace(&self, warehouse: Uuid, ns: &NamespaceIdent) -> StoreResult<()> {
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

    async fn create_tabular(&self, warehouse: Uuid, record: &TabularRecord) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        lock_locations(&mut tx, warehouse).await?;
        self.insert_tabular(&mut tx, warehouse, record).await?;
        tx.commit().await.map_err(backend)
    }

    async fn reserve_location(&self, warehouse: Uuid, claim: &LocationClaim) -> StoreResult<()> {
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
        warehouse: Uuid,
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
        warehouse: Uuid,
        id: Uuid,
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
        warehouse: Uuid,
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
        warehouse: Uuid,
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
            notices.push(moved(warehouse, id, swap));
        }
        tx.commit().await.map_err(backend)?;
        for notice in &notices {
            self.pointers.apply(notice);
        }
        Ok(())
    }

    async fn drop_tabular(
        &self,
        warehouse: Uuid,
        kind: TabularKind,
        ident: &TableIdent,
    ) -> StoreResult<TabularRecord> {
        let mut tx = self.begin().await?;
        let record = Self::take_tabular(&mut tx, warehouse, kind, ident).await?;
        tx.commit().await.map_err(backend)?;
        self.pointers.apply(&left(warehouse, record.id));
        Ok(record)
    }

    async fn bin_tabular(
        &self,
        warehouse: Uuid,
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

    async fn list_dropped(&self, warehouse: Uuid) -> StoreResult<Vec<DroppedRecord>> {
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

    async fn get_dropped(&self, warehouse: Uuid, id: Uuid) -> StoreResult<Option<DroppedRecord>> {
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
        warehouse: Uuid,
        id: Uuid,
        ident: &TableIdent,
        now_ms: i64,
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
        notify(&mut tx, &Change::Renamed { warehouse })
            .await
            .map_err(backend)?;
        send_notice(&mut tx, &left(warehouse, record.id)).await?;
        tx.commit().await.map_err(backend)?;
        self.pointers.apply(&left(warehouse, record.id));
        Ok(record)
    }

    async fn expire_dropped(
        &self,
        warehouse: Uuid,
        id: Uuid,
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
        except: &[Uuid],
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

    async fn forget_dropped(&self, warehouse: Uuid, id: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM dropped_tabulars WHERE warehouse_id = $1 AND id = $2")
            .bind(warehouse)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn rename_tabular(
        &self,
        warehouse: Uuid,
        kind: TabularKind,
        from: &TableIdent,
        to: &TableIdent,
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
        notify(&mut tx, &Change::Renamed { warehouse })
            .await
            .map_err(backend)?;
        send_notice(&mut tx, &left(warehouse, record.id)).await?;
        tx.commit().await.map_err(backend)?;
        self.pointers.apply(&left(warehouse, record.id));
        Ok(())
    }

    async fn put_storage_credential(
        &self,
        c: &StorageCredentialRecord,
        replace: bool,
    ) -> StoreResult<()> {
        let q = if replace {
            sqlx::query(
                "UPDATE storage_credentials SET record = $3 WHERE tenant_id = $1 AND name = $2",
            )
        } else {
            sqlx::query(
                "INSERT INTO storage_credentials (tenant_id, name, record) VALUES ($1, $2, $3)",
            )
        }
        .bind(c.tenant_id)
        .bind(&c.name)
        .bind(json(c));
        let change = Change::StorageCredential {
            tenant: c.tenant_id,
            name: c.name.clone(),
        };
        match self.changing(&change, q).await {
            Ok(0) => Err(StoreError::NotFound(format!(
                "storage credential '{}'",
                c.name
            ))),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(format!(
                "storage credential '{}'",
                c.name
            ))),
            r => r.map(|_| ()).map_err(backend),
        }
    }

    async fn get_storage_credential(
        &self,
        tenant: Uuid,
        name: &str,
    ) -> StoreResult<Option<StorageCredentialRecord>> {
        self.fetch_record(
            sqlx::query(
                "SELECT record FROM storage_credentials WHERE tenant_id = $1 AND name = $2",
            )
            .bind(tenant)
            .bind(name),
        )
        .await
    }

    async fn list_storage_credentials(
        &self,
        tenant: Uuid,
    ) -> StoreResult<Vec<StorageCredentialRecord>> {
        self.fetch_records(
            "SELECT record FROM storage_credentials WHERE tenant_id = $1 ORDER BY name",
            tenant,
        )
        .await
    }

    async fn delete_storage_credential(&self, tenant: Uuid, name: &str) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        // Locks the tenant's warehouses that use it, so none starts using it meanwhile unnoticed.
        let user: Option<String> = sqlx::query_scalar(
            "SELECT name FROM warehouses WHERE tenant_id = $1 AND credential = $2 ORDER BY name LIMIT 1 FOR UPDATE",
        )
        .bind(tenant)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        if let Some(wh) = user {
            return Err(StoreError::NotEmpty(
                format!("storage credential '{name}'"),
                format!("warehouse '{wh}' uses it"),
            ));
        }
        let deleted =
            sqlx::query("DELETE FROM storage_credentials WHERE tenant_id = $1 AND name = $2")
                .bind(tenant)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("storage credential '{name}'")));
        }
        let change = Change::StorageCredential {
            tenant,
            name: name.to_owned(),
        };
        notify(&mut tx, &change).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn put_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO signing_keys (kid, created_at_ms, record) VALUES ($1, $2, $3) \
             ON CONFLICT (kid) DO UPDATE SET created_at_ms = EXCLUDED.created_at_ms, record = EXCLUDED.record",
        )
        .bind(&key.kid)
        .bind(key.created_at_ms)
        .bind(json(key));
        self.changing(&Change::SigningKeys, q)
            .await
            .map(|_| ())
            .map_err(backend)
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query("SELECT record FROM signing_keys ORDER BY created_at_ms, kid")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        records(&rows)
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        let q = sqlx::query("DELETE FROM signing_keys WHERE kid = $1").bind(kid);
        self.changing(&Change::SigningKeys, q)
            .await
            .map(|_| ())
            .map_err(backend)
    }

    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, tenant_id, at_ms, record) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(event.id)
        .bind(event.tenant_id)
        .bind(event.at_ms)
        .bind(json(event))
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn list_audit(&self, tenant: Uuid, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT record FROM audit_events WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(tenant)
        .bind(limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        records(&rows)
    }

    async fn purge_audit(&self, before_ms: i64) -> StoreResult<u64> {
        sqlx::query("DELETE FROM audit_events WHERE at_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(backend)
    }

    async fn put_idempotency(&self, key: &str, rec: &IdempotencyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO idempotency (key, expires_at_ms, record) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET expires_at_ms = EXCLUDED.expires_at_ms, record = EXCLUDED.record",
        )
        .bind(key)
        .bind(rec.expires_at_ms)
        .bind(json(rec))
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn get_idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        self.fetch_record(sqlx::query("SELECT record FROM idempotency WHERE key = $1").bind(key))
            .await
    }

    async fn reserve_idempotency(
        &self,
        key: &str,
        pending: &IdempotencyRecord,
        now_ms: i64,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        loop {
            let reserved = sqlx::query(
                "INSERT INTO idempotency (key, expires_at_ms, record) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET expires_at_ms = EXCLUDED.expires_at_ms, \
                 record = EXCLUDED.record WHERE idempotency.expires_at_ms <= $4",
            )
            .bind(key)
            .bind(pending.expires_at_ms)
            .bind(json(pending))
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
            if reserved.rows_affected() == 1 {
                return Ok(None);
            }
            // A live record holds the key; it may have expired or gone since: then try again.
            if let Some(existing) = self.get_idempotency(key).await?
                && existing.expires_at_ms > now_ms
            {
                return Ok(Some(existing));
            }
        }
    }

    async fn delete_idempotency(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM idempotency WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
    }

    async fn purge_idempotency(&self, now: i64) -> StoreResult<u64> {
        sqlx::query("DELETE FROM idempotency WHERE expires_at_ms < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(backend)
    }

    /// PostgreSQL is backed up with its own tools (`pg_dump`, base backups and WAL archiving).
    async fn snapshot(&self) -> StoreResult<Option<Vec<u8>>> {
        Ok(None)
    }

    async fn close(&self) -> StoreResult<()> {
        // Waits for connections in use to come back: a query still running finishes first.
        self.pool.close().await;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
    }
}
