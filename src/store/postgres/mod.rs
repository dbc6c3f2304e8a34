//! The scale-out backend: one PostgreSQL database shared by any number of Floe replicas.
//!
//! Migrations are embedded (`migrations/`) and applied at start under sqlx's advisory lock, so
//! replicas starting together do not race. Commits are a conditional
//! `UPDATE ... WHERE metadata_location = $expected` per table: single-table commits that arrive
//! together share one statement (`group_commit.rs`); a multi-table commit is one transaction taking
//! its rows in a fixed order, so two of them cannot deadlock. "Only when empty" rules rest on
//! foreign keys, which stay correct whatever another replica does at the same moment.
//!
//! Locations (see [`crate::store::locations`]) are the rows' own `location` columns and namespace
//! properties, indexed in byte order; a claim takes a per-warehouse advisory lock first (before any
//! row lock, so claims cannot deadlock with each other) and then reads the overlapping ones.
//!
//! Every change to something replicas cache (tenants, warehouses, principals, roles, grants,
//! storage credentials, signing keys, and renames and restores of tables and views) sends
//! `NOTIFY floe_changes` in its transaction, carrying exactly the typed [`Change`] its caller
//! handed to the write (the store decides none itself); [`PgStore::watch`] publishes each one on
//! every replica's change bus.
//!
//! Table and view pointers are served from each replica's [`PointerCache`]: every commit, rename,
//! drop, bin and restore sends a [`PointerNotice`] on [`POINTERS_CHANNEL`] in its own transaction
//! (a single-table commit is one statement: the conditional update and its notice), and the
//! listener applies every replica's notices; see [`crate::store::pointer_cache`] for the bound.
//!
//! One file per area of the store, each holding that area's trait `impl` and its private helpers:
//! `tenancy.rs`, `access.rs`, `namespaces.rs`, `tabulars.rs`, `recycle_bin.rs`, `secrets.rs`,
//! `audit.rs`, `idempotency.rs`; location and root claims in `claims.rs`, row conversions in
//! `common.rs`, group commit in `group_commit.rs`. This file holds the store itself: connecting,
//! migrations, the change and pointer notifications and their listener, and [`StoreLifecycle`].
//!
//! Owns: everything PostgreSQL. Must not touch: anything above the store, nor which change a
//! write announces (that is its caller's to decide).

mod access;
mod audit;
mod claims;
mod common;
mod group_commit;
mod idempotency;
mod namespaces;
mod recycle_bin;
mod secrets;
mod tabulars;
mod tenancy;

pub use tabulars::LIST_TABULARS;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use self::common::{backend, record, records};
use self::group_commit::GroupCommit;
use super::*;
use crate::background::StopSignal;
use crate::changes::{Change, Changes};
use crate::domain::TabularId;
use crate::domain::WarehouseId;
use crate::store::pointer_cache::{POINTERS_CHANNEL, PointerCache, PointerNotice};

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
    /// can close). After a lost connection it publishes that anything may have changed, since
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
                changes.publish_missed().await;
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
fn moved(warehouse: WarehouseId, id: TabularId, swap: &MetadataSwap) -> PointerNotice {
    PointerNotice {
        warehouse,
        id,
        from: Some(swap.expected.clone()),
        to: Some(swap.new.clone()),
    }
}

/// The notice of a table or view that left its name (dropped, binned, renamed, restored).
fn left(warehouse: WarehouseId, id: TabularId) -> PointerNotice {
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
    changes.publish_missed().await;
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
                changes.publish_wire(n.payload()).await;
            }
            // The connection was lost; notifications sent meanwhile are gone.
            None => return Ok(()),
        }
    }
}

#[async_trait]
impl StoreLifecycle for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
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
}
