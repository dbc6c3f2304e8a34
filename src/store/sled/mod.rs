//! The embedded default backend: sled trees, transactions across trees, and a flush before every
//! acknowledged write (sled would otherwise lose up to its flush interval of commits on a crash),
//! shared by the writers that wait for it at the same time (group commit).
//!
//! Keys: namespaces are `warehouse(16) | depth(1) | level\0level...`, so the direct children of a
//! namespace are one prefix scan; tables and views are `warehouse(16) | level\0level | \0\0 | name`.
//! Each namespace stores how many children (namespaces, tables, views) it has: every create or drop
//! reads and writes its parent's record inside the transaction, so a drop of a non-empty namespace and
//! a create inside a namespace being dropped can never both succeed. A table's or view's record is
//! decoded once per stored version (`decoded.rs`): a warm load reads sled but decodes no JSON.
//!
//! Locations (see [`crate::store::locations`]): `locations` maps `warehouse(16) | location` to its
//! claim, and `locations_below` counts, for every location enclosing a claim, the claims inside
//! it. A claim reads its own key, its count and every enclosing key inside the transaction that
//! writes it, so two overlapping claims conflict in sled and one of them sees the other. Warehouse storage roots
//! are claimed the same way, across all tenants, in `warehouse_roots` and `warehouse_roots_below`.
//! `tabular_ids` maps `warehouse(16) | id(16)` to a table's or view's key, for grants by id.
//!
//! One file per area of the store, each holding that area's trait `impl` and its private helpers:
//! `tenancy.rs`, `access.rs`, `namespaces.rs`, `tabulars.rs`, `recycle_bin.rs`, `secrets.rs`,
//! `audit.rs`, `idempotency.rs`; keys in `keys.rs`, location and root claims in `claims.rs`,
//! one-off upgrades of older stores in `backfill.rs`. This file holds the store itself: its trees,
//! opening, the write gate, group commit, and [`StoreLifecycle`].
//!
//! Owns: everything sled. Must not touch: anything above the store. The `change` a write is
//! handed is ignored: one process has no other replica to tell.

mod access;
mod audit;
mod backfill;
mod claims;
mod decoded;
mod idempotency;
mod keys;
mod namespaces;
mod recycle_bin;
mod secrets;
mod tabulars;
mod tenancy;

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ::sled::transaction::{ConflictableTransactionError, TransactionError, abort};
use ::sled::{Transactional, Tree};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::*;

/// How much memory records decoded from the `tabulars` tree may hold (about 30,000 tables).
const DECODED_TABULARS_BYTES: u64 = 16 * 1024 * 1024;

/// Writers' turns at the flush that makes their writes durable (see [`SledStore::durable`]).
#[derive(Default)]
struct GroupCommit {
    /// Writes applied in memory, numbered in order.
    written: AtomicU64,
    /// Every write numbered up to this is on disk.
    flushed: AtomicU64,
    flushing: tokio::sync::Mutex<()>,
}

/// sled-backed [`CatalogStore`].
pub struct SledStore {
    db: ::sled::Db,
    tenants: Tree,
    tenant_names: Tree,
    warehouses: Tree,
    warehouse_names: Tree,
    principals: Tree,
    client_ids: Tree,
    namespaces: Tree,
    tabulars: Tree,
    idempotency: Tree,
    roles: Tree,
    role_names: Tree,
    assignments: Tree,
    grants: Tree,
    audit: Tree,
    signing_keys: Tree,
    storage_credentials: Tree,
    locations: Tree,
    locations_below: Tree,
    tabular_ids: Tree,
    warehouse_roots: Tree,
    warehouse_roots_below: Tree,
    /// Every write holds this shared; a snapshot holds it alone, so it sees no write half done.
    writes: tokio::sync::RwLock<()>,
    group: GroupCommit,
    /// Where the store lives, and the free space its filesystem must keep: a write that finds
    /// less is refused before it starts (sled fails for good on a full disk).
    dir: std::path::PathBuf,
    min_free_bytes: u64,
    /// The recycle bins: `warehouse(16) | id(16)` → [`DroppedRecord`]. A dropped object's
    /// location claim stays in `locations` until it is forgotten.
    dropped: Tree,
    /// Staged creates' reservations: `warehouse(16) | table id(16)` → their
    /// [`LocationClaim`](crate::store::locations::LocationClaim)
    /// (also in `locations`), so lapsed ones are found without reading every claim.
    reservations: Tree,
    meta: Tree,
    /// Table and view records as last decoded, answered only for the very bytes sled holds.
    decoded: decoded::DecodedTabulars,
}

#[derive(Serialize, Deserialize)]
struct StoredNamespace {
    record: NamespaceRecord,
    children: u64,
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// A sled (or decoding) failure as the store's, with the error as its cause.
fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    let what = if (&e as &dyn std::any::Any).is::<::sled::Error>() {
        "sled"
    } else {
        "a stored record"
    };
    StoreError::caused(what, e)
}

fn encode<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(backend)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(backend)
}

fn tx_encode<T: Serialize>(value: &T) -> TxResult<Vec<u8>> {
    encode(value).map_err(ConflictableTransactionError::Abort)
}

fn tx_decode<T: DeserializeOwned>(bytes: &[u8]) -> TxResult<T> {
    decode(bytes).map_err(ConflictableTransactionError::Abort)
}

fn unwrap_tx<T>(r: Result<T, TransactionError<StoreError>>) -> StoreResult<T> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => backend(e),
    })
}

/// The bytes an unprivileged process may still write on the filesystem holding `dir`.
fn fs_free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `stat` is written by statvfs before it is read.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The write gate held shared by one write (a snapshot holds it alone).
type WriteGate<'a> = tokio::sync::RwLockReadGuard<'a, ()>;

impl SledStore {
    /// Builds a new store in `dir` from a snapshot file (see [`crate::store::sled_snapshot`]); refuses a
    /// `dir` that holds anything, and a damaged file, before writing anything. Returns how many
    /// entries it restored.
    pub fn restore_snapshot(dir: &Path, file: &[u8]) -> StoreResult<u64> {
        if dir.exists() && dir.read_dir().map_err(backend)?.next().is_some() {
            return Err(StoreError::failure(format!(
                "{} is not empty: a snapshot is restored only into a new directory",
                dir.display()
            )));
        }
        let collections = crate::store::sled_snapshot::decode(file)?;
        let entries = collections.iter().map(|(_, _, e)| e.len() as u64).sum();
        let db = ::sled::Config::new().path(dir).open().map_err(backend)?;
        db.import(
            collections
                .into_iter()
                .map(|(kind, name, entries)| (kind, name, entries.into_iter()))
                .collect(),
        );
        db.flush().map_err(backend)?;
        Ok(entries)
    }

    /// Opens (or creates) the store in `dir` with sled's default page cache.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        Self::open_with_cache(dir, 1024 * 1024 * 1024)
    }

    /// Opens (or creates) the store in `dir` with a page cache of `cache_bytes`.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> StoreResult<Self> {
        let db = ::sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(|e| StoreError::caused(format!("cannot open sled at {}", dir.display()), e))?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        Ok(Self {
            tenants: tree("tenants")?,
            tenant_names: tree("tenant_names")?,
            warehouses: tree("warehouses")?,
            warehouse_names: tree("warehouse_names")?,
            principals: tree("principals")?,
            client_ids: tree("client_ids")?,
            namespaces: tree("namespaces")?,
            tabulars: tree("tabulars")?,
            idempotency: tree("idempotency")?,
            roles: tree("roles")?,
            role_names: tree("role_names")?,
            assignments: tree("assignments")?,
            grants: tree("grants")?,
            audit: tree("audit")?,
            signing_keys: tree("signing_keys")?,
            storage_credentials: tree("storage_credentials")?,
            locations: tree("locations")?,
            locations_below: tree("locations_below")?,
            tabular_ids: tree("tabular_ids")?,
            warehouse_roots: tree("warehouse_roots")?,
            warehouse_roots_below: tree("warehouse_roots_below")?,
            dropped: tree("dropped")?,
            reservations: tree("reservations")?,
            writes: tokio::sync::RwLock::new(()),
            group: GroupCommit::default(),
            dir: dir.to_path_buf(),
            min_free_bytes: 0,
            meta: tree("meta")?,
            decoded: decoded::DecodedTabulars::new(DECODED_TABULARS_BYTES),
            db,
        })
        .and_then(Self::backfill_locations)
        .and_then(Self::backfill_ids_and_roots)
        .and_then(Self::backfill_bin_claims)
    }

    /// The same store, refusing writes while its filesystem has less than `bytes` free.
    pub fn with_min_free_bytes(mut self, bytes: u64) -> Self {
        self.min_free_bytes = bytes;
        self
    }

    /// Holds the write gate shared, once the disk has room for the write. Taken once per write:
    /// a helper that is part of a larger write takes the caller's [`WriteGate`] instead.
    async fn writing(&self) -> StoreResult<WriteGate<'_>> {
        let guard = self.writes.read().await;
        if self.min_free_bytes > 0 {
            let free = fs_free_bytes(&self.dir).map_err(backend)?;
            if free < self.min_free_bytes {
                metrics::counter!("floe_writes_refused_disk_full_total").increment(1);
                return Err(StoreError::Full(format!(
                    "the catalog's filesystem has {free} bytes free, less than the {} kept in reserve",
                    self.min_free_bytes
                )));
            }
        }
        Ok(guard)
    }

    /// Makes the caller's write durable before it is acknowledged, sharing one flush among
    /// concurrent writers (group commit): writers queue for the flush, and one whose write a flush
    /// begun after it already covered returns without flushing again. sled 0.34's `flush_async`
    /// can stall under concurrent writers, so the blocking flush runs on tokio's blocking pool.
    async fn durable(&self) -> StoreResult<()> {
        static FLUSHES: std::sync::LazyLock<metrics::Counter> =
            std::sync::LazyLock::new(|| metrics::counter!("floe_store_flushes_total"));
        // The caller's write is in sled's memory: any flush that begins from now on holds it.
        let mine = self.group.written.fetch_add(1, Ordering::AcqRel) + 1;
        let _turn = self.group.flushing.lock().await;
        if self.group.flushed.load(Ordering::Acquire) >= mine {
            return Ok(());
        }
        let covers = self.group.written.load(Ordering::Acquire);
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(backend)?
            .map_err(backend)?;
        FLUSHES.increment(1);
        self.group.flushed.fetch_max(covers, Ordering::AcqRel);
        Ok(())
    }

    /// The table or view stored under `key` in `tabulars` (decoded once per stored version).
    fn tabular_at(&self, key: &[u8]) -> StoreResult<Option<TabularRecord>> {
        match self.tabulars.get(key).map_err(backend)? {
            Some(raw) => self.decoded.record(key, raw).map(Some),
            None => Ok(None),
        }
    }

    fn get_json<T: DeserializeOwned>(tree: &Tree, key: &[u8]) -> StoreResult<Option<T>> {
        tree.get(key)
            .map_err(backend)?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Inserts `record` under `id` and a unique secondary `name` key, atomically.
    async fn insert_named<T: Serialize>(
        &self,
        (by_id, by_name): (&Tree, &Tree),
        id: Uuid,
        name: &[u8],
        what: String,
        record: &T,
    ) -> StoreResult<()> {
        let value = encode(record)?;
        unwrap_tx((by_id, by_name).transaction(|(ids, names)| {
            if names.get(name)?.is_some() || ids.get(id.as_bytes())?.is_some() {
                return abort(StoreError::AlreadyExists(what.clone()));
            }
            names.insert(name, id.as_bytes().as_slice())?;
            ids.insert(id.as_bytes().as_slice(), value.as_slice())?;
            Ok(())
        }))?;
        self.durable().await
    }

    fn get_by_name<T: DeserializeOwned>(
        by_id: &Tree,
        by_name: &Tree,
        name: &[u8],
    ) -> StoreResult<Option<T>> {
        match by_name.get(name).map_err(backend)? {
            Some(id) => Self::get_json(by_id, &id),
            None => Ok(None),
        }
    }

    fn scan_page<T>(
        tree: &Tree,
        prefix: &[u8],
        page: &PageRequest,
        mut keep: impl FnMut(&str, &[u8]) -> StoreResult<Option<T>>,
    ) -> StoreResult<Page<T>> {
        let start = match &page.after {
            Some(after) => {
                let mut k = prefix.to_vec();
                k.extend(after.as_bytes());
                Bound::Excluded(k)
            }
            None => Bound::Included(prefix.to_vec()),
        };
        let mut items = Vec::new();
        let mut last_name = None;
        for entry in tree.range((start, Bound::Unbounded)) {
            let (key, value) = entry.map_err(backend)?;
            if !key.starts_with(prefix) {
                break;
            }
            let name = std::str::from_utf8(&key[prefix.len()..]).map_err(backend)?;
            if name.contains('\0') {
                continue;
            }
            if let Some(limit) = page.limit
                && items.len() == limit
            {
                return Ok(Page {
                    items,
                    next: last_name,
                });
            }
            if let Some(item) = keep(name, &value)? {
                items.push(item);
                last_name = Some(name.to_owned());
            }
        }
        Ok(Page { items, next: None })
    }
}

#[async_trait]
impl StoreLifecycle for SledStore {
    async fn ping(&self) -> StoreResult<()> {
        self.db.get(b"ping").map_err(backend)?;
        Ok(())
    }

    async fn snapshot(&self) -> StoreResult<Option<Vec<u8>>> {
        // Alone: every write holds `writes` shared, so none is half done while trees are read.
        let _alone = self.writes.write().await;
        let started = std::time::Instant::now();
        let db = self.db.clone();
        let file = tokio::task::spawn_blocking(move || {
            db.flush()?;
            let collections = db
                .export()
                .into_iter()
                .map(|(kind, name, entries)| (kind, name, entries.collect()))
                .collect::<Vec<_>>();
            Ok::<_, ::sled::Error>(crate::store::sled_snapshot::encode(collections))
        })
        .await
        .map_err(backend)?
        .map_err(backend)?;
        tracing::info!(
            bytes = file.len(),
            writes_paused_ms = started.elapsed().as_millis() as u64,
            "took a snapshot of the catalog"
        );
        Ok(Some(file))
    }

    async fn close(&self) -> StoreResult<()> {
        self.durable().await
    }
}
