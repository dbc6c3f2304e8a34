//! Group commit on PostgreSQL: single-table commits that arrive together land in one statement.
//!
//! Owns: the queue of pending single-table compare-and-swaps and the task that applies them in
//! batches, each batch one statement in one transaction (one WAL flush, one turn at the
//! notification queue's lock, which PostgreSQL holds through the flush of every transaction that
//! notifies). Must not touch: anything but `tabulars` and the pointer notices; what a swap that did
//! not move means (a conflict, a missing table) is the store's to find out.
//!
//! A batch never holds two swaps of the same table (the second waits for the next batch), so each
//! swap's outcome is its own. A swap whose caller gave up before its batch formed is skipped, so it
//! never lands after its request was answered.

use std::collections::{HashSet, VecDeque};

use serde::Serialize;
use sqlx::postgres::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::common::{backend, kind_text};
use crate::domain::TableIdent;
use crate::domain::WarehouseId;
use crate::store::pointer_cache::{MAX_NOTICE_LOCATIONS, POINTERS_CHANNEL};
use crate::store::{MetadataSwap, StoreError, StoreResult, TabularKind};

/// Most swaps in one statement.
const MAX_BATCH: usize = 64;
/// Most swaps waiting (callers wait for room beyond it).
const MAX_QUEUED: usize = 4096;

/// What a swap's batch says: the table's id when the pointer moved, `None` when it did not.
type Outcome = Result<Option<Uuid>, StoreError>;

struct Pending {
    warehouse: WarehouseId,
    kind: TabularKind,
    swap: MetadataSwap,
    done: oneshot::Sender<Outcome>,
}

/// The queue single-table commits go through.
pub struct GroupCommit {
    queue: mpsc::Sender<Pending>,
}

impl GroupCommit {
    /// Starts the task that applies queued swaps on `pool` (it ends when this is dropped).
    pub fn start(pool: PgPool) -> Self {
        let (queue, pending) = mpsc::channel(MAX_QUEUED);
        tokio::spawn(run(pool, pending));
        Self { queue }
    }

    /// Applies one swap together with whatever others are waiting; the table's id when its
    /// pointer moved (its notice sent in the same statement).
    pub async fn swap(
        &self,
        warehouse: WarehouseId,
        kind: TabularKind,
        swap: &MetadataSwap,
    ) -> StoreResult<Option<Uuid>> {
        let (done, outcome) = oneshot::channel();
        let pending = Pending {
            warehouse,
            kind,
            swap: swap.clone(),
            done,
        };
        let stopped = || StoreError::failure("the commit queue has stopped");
        self.queue.send(pending).await.map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

async fn run(pool: PgPool, mut queue: mpsc::Receiver<Pending>) {
    static BATCHES: std::sync::LazyLock<metrics::Counter> =
        std::sync::LazyLock::new(|| metrics::counter!("floe_commit_batches_total"));
    let mut waiting: VecDeque<Pending> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match queue.recv().await {
                Some(p) => waiting.push_back(p),
                None => return,
            }
        }
        while waiting.len() < 4 * MAX_BATCH {
            match queue.try_recv() {
                Ok(p) => waiting.push_back(p),
                Err(_) => break,
            }
        }
        let batch = take_batch(&mut waiting);
        if batch.is_empty() {
            continue;
        }
        BATCHES.increment(1);
        let outcome = if let [one] = batch.as_slice() {
            apply_one(&pool, one).await.map(|id| vec![id])
        } else {
            apply_many(&pool, &batch).await
        };
        match outcome {
            Ok(ids) => {
                for (p, id) in batch.into_iter().zip(ids) {
                    let _ = p.done.send(Ok(id));
                }
            }
            Err(e) => {
                let e = backend(e);
                for p in batch {
                    let _ = p.done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The next batch: at most [`MAX_BATCH`], one swap per table, none whose caller gave up.
fn take_batch(waiting: &mut VecDeque<Pending>) -> Vec<Pending> {
    let mut batch = Vec::new();
    let mut tables: HashSet<(WarehouseId, TableIdent)> = HashSet::new();
    let mut later = VecDeque::new();
    for p in waiting.drain(..) {
        if p.done.is_closed() {
            continue;
        }
        if batch.len() < MAX_BATCH && tables.insert((p.warehouse, p.swap.ident.clone())) {
            batch.push(p);
        } else {
            later.push_back(p);
        }
    }
    *waiting = later;
    batch
}

/// Whether a swap's notice carries its locations (a notification's payload is limited).
fn carries(swap: &MetadataSwap) -> bool {
    swap.expected.len() + swap.new.len() <= MAX_NOTICE_LOCATIONS
}

/// One swap as one statement: the conditional update and its notice.
async fn apply_one(pool: &PgPool, p: &Pending) -> Result<Option<Uuid>, sqlx::Error> {
    set_metadata(pool, p.warehouse, p.kind, &p.swap).await
}

/// Sets a metadata pointer if it still holds the expected value, sending its notice in the same
/// statement; the table's id when it moved, `None` when it did not.
pub(super) async fn set_metadata<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    warehouse: WarehouseId,
    kind: TabularKind,
    swap: &MetadataSwap,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH moved AS (UPDATE tabulars t SET metadata_location = $6 FROM namespaces n \
         WHERE n.id = t.namespace_id AND n.warehouse_id = $1 AND n.levels = $2 AND t.name = $3 \
         AND t.kind = $4 AND t.metadata_location = $5 RETURNING t.id) \
         SELECT id FROM moved, LATERAL pg_notify($7, CASE WHEN $8 \
         THEN json_build_object('w', $1::uuid, 'id', id, 'from', $5::text, 'to', $6::text) \
         ELSE json_build_object('w', $1::uuid, 'id', id) END::text)",
    )
    .bind(warehouse)
    .bind(swap.ident.namespace.parts())
    .bind(swap.ident.name.as_str())
    .bind(kind_text(kind))
    .bind(&swap.expected)
    .bind(&swap.new)
    .bind(POINTERS_CHANNEL)
    .bind(carries(swap))
    .fetch_optional(executor)
    .await
}

#[derive(Serialize)]
struct Row<'a> {
    i: usize,
    w: WarehouseId,
    levels: &'a [String],
    name: &'a str,
    kind: &'static str,
    expected: &'a str,
    new: &'a str,
    carries: bool,
}

/// Many swaps (of distinct tables) as one statement; each one's id when it moved.
async fn apply_many(pool: &PgPool, batch: &[Pending]) -> Result<Vec<Option<Uuid>>, sqlx::Error> {
    let rows: Vec<Row> = batch
        .iter()
        .enumerate()
        .map(|(i, p)| Row {
            i,
            w: p.warehouse,
            levels: p.swap.ident.namespace.parts(),
            name: p.swap.ident.name.as_str(),
            kind: kind_text(p.kind),
            expected: &p.swap.expected,
            new: &p.swap.new,
            carries: carries(&p.swap),
        })
        .collect();
    let moved: Vec<(i32, Uuid)> = sqlx::query_as(
        "WITH v AS (SELECT * FROM jsonb_to_recordset($1) AS v(i int, w uuid, levels text[], \
         name text, kind text, expected text, new text, carries bool)), \
         moved AS (UPDATE tabulars t SET metadata_location = v.new FROM namespaces n, v \
         WHERE n.id = t.namespace_id AND n.warehouse_id = v.w AND n.levels = v.levels \
         AND t.name = v.name AND t.kind = v.kind AND t.metadata_location = v.expected \
         RETURNING v.i, t.id, v.w, v.expected, v.new, v.carries) \
         SELECT i, id FROM moved, LATERAL pg_notify($2, CASE WHEN carries \
         THEN json_build_object('w', w, 'id', id, 'from', expected, 'to', new) \
         ELSE json_build_object('w', w, 'id', id) END::text)",
    )
    .bind(sqlx::types::Json(&rows))
    .bind(POINTERS_CHANNEL)
    .fetch_all(pool)
    .await?;
    let mut ids = vec![None; batch.len()];
    for (i, id) in moved {
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| ids.get_mut(i)) {
            *slot = Some(id);
        }
    }
    Ok(ids)
}
