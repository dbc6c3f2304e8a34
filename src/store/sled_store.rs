//! The embedded default backend: sled trees, transactions across trees, and a flush before every
//! acknowledged write (sled would otherwise lose up to its flush interval of commits on a crash),
//! shared by the writers that wait for it at the same time (group commit).
//!
//! Keys: namespaces are `warehouse(16) | depth(1) | level\0level...`, so the direct children of a
//! namespace are one prefix scan; tables and views are `warehouse(16) | level\0level | \0\0 | name`.
//! Each namespace stores how many children (namespaces, tables, views) it has: every create or drop
//! reads and writes its parent's record inside the transaction, so a drop of a non-empty namespace and
//! a create inside a namespace being dropped can never both succeed.
//!
//! Locations (see [`super::locations`]): `locations` maps `warehouse(16) | location` to its claim,
//! and `locations_below` counts, for every location enclosing a claim, the claims inside it. A claim
//! reads its own key, its count and every enclosing key inside the transaction that writes it, so
//! two overlapping claims conflict in sled and one of them sees the other. Warehouse storage roots
//! are claimed the same way, across all tenants, in `warehouse_roots` and `warehouse_roots_below`.
//! `tabular_ids` maps `warehouse(16) | id(16)` to a table's or view's key, for grants by id.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree, abort};
use sled::{Transactional, Tree};
use uuid::Uuid;

use super::locations::{LocationClaim, OwnerKind, enclosing, refusal};
use super::*;
use crate::domain::{NamespaceIdent, ObjectName, TableIdent};

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
    db: sled::Db,
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
    /// Staged creates' reservations: `warehouse(16) | table id(16)` → their [`LocationClaim`]
    /// (also in `locations`), so lapsed ones are found without reading every claim.
    reservations: Tree,
    meta: Tree,
}

/// The `meta` key set once every existing table and view has its location claimed.
const LOCATIONS_BACKFILLED: &[u8] = b"locations-v1";
/// The `meta` key set once every table and view is in `tabular_ids` and every warehouse's root in
/// `warehouse_roots`.
const IDS_AND_ROOTS_BACKFILLED: &[u8] = b"ids-and-roots-v1";
/// The `meta` key set once every recycle-bin entry holds its location claim.
const BIN_CLAIMS_BACKFILLED: &[u8] = b"bin-claims-v1";

#[derive(Serialize, Deserialize)]
struct StoredNamespace {
    record: NamespaceRecord,
    children: u64,
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// A sled (or decoding) failure as the store's, with the error as its cause.
fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    let what = if (&e as &dyn std::any::Any).is::<sled::Error>() {
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

fn join_levels(parts: &[String]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

fn namespace_key(warehouse: Uuid, ns: &NamespaceIdent) -> Vec<u8> {
    let mut key = warehouse.as_bytes().to_vec();
    key.push(ns.parts().len() as u8);
    key.extend(join_levels(ns.parts()));
    key
}

fn namespace_children_prefix(warehouse: Uuid, parent: Option<&NamespaceIdent>) -> Vec<u8> {
    let mut key = warehouse.as_bytes().to_vec();
    match parent {
        None => key.push(1),
        Some(p) => {
            key.push(p.parts().len() as u8 + 1);
            key.extend(join_levels(p.parts()));
            key.push(0);
        }
    }
    key
}

fn tabular_prefix(warehouse: Uuid, ns: &NamespaceIdent) -> Vec<u8> {
    let mut key = warehouse.as_bytes().to_vec();
    key.extend(join_levels(ns.parts()));
    key.extend([0, 0]);
    key
}

fn tabular_key(warehouse: Uuid, ident: &TableIdent) -> Vec<u8> {
    let mut key = tabular_prefix(warehouse, &ident.namespace);
    key.extend(ident.name.as_str().as_bytes());
    key
}

fn pair_key(a: Uuid, b: Uuid) -> Vec<u8> {
    [a.as_bytes().as_slice(), b.as_bytes().as_slice()].concat()
}

fn grant_key(tenant: Uuid, grant: Uuid) -> Vec<u8> {
    pair_key(tenant, grant)
}

/// `tenant(16) | name`: unique names inside a tenant (warehouses, roles).
fn warehouse_name_key(tenant: Uuid, name: &str) -> Vec<u8> {
    let mut key = tenant.as_bytes().to_vec();
    key.extend(name.as_bytes());
    key
}

/// `warehouse(16) | location`: the key of a location's claim and of its count of claims inside.
fn location_key(warehouse: Uuid, location: &str) -> Vec<u8> {
    let mut key = warehouse.as_bytes().to_vec();
    key.extend(location.as_bytes());
    key
}

fn bump_below(below: &TransactionalTree, key: &[u8], delta: i64) -> TxResult<()> {
    let count = below
        .get(key)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes)
        .saturating_add_signed(delta);
    if count == 0 {
        below.remove(key)?;
    } else {
        below.insert(key, count.to_be_bytes().to_vec())?;
    }
    Ok(())
}

/// `warehouse(16) | id(16)`: the key of a table's or view's entry in `tabular_ids`.
fn tabular_id_key(warehouse: Uuid, id: Uuid) -> Vec<u8> {
    pair_key(warehouse, id)
}

/// Claims a warehouse's storage root inside a transaction, or aborts with `StorageTaken` when
/// another warehouse's root equals it, lies inside it or encloses it.
fn claim_root(
    roots: &TransactionalTree,
    below: &TransactionalTree,
    root: &str,
    owner: Uuid,
) -> TxResult<()> {
    let taken = || abort(StoreError::StorageTaken(root.to_owned()));
    if let Some(existing) = roots.get(root.as_bytes())? {
        return if existing.as_ref() == owner.as_bytes() {
            Ok(())
        } else {
            taken()
        };
    }
    if below.get(root.as_bytes())?.is_some() {
        return taken();
    }
    let outers = enclosing(root);
    for outer in &outers {
        if roots.get(outer.as_bytes())?.is_some() {
            return taken();
        }
    }
    roots.insert(root.as_bytes(), owner.as_bytes().as_slice())?;
    for outer in &outers {
        bump_below(below, outer.as_bytes(), 1)?;
    }
    Ok(())
}

/// Releases `owner`'s claim on a storage root inside a transaction (nothing when it is not theirs).
fn release_root(
    roots: &TransactionalTree,
    below: &TransactionalTree,
    root: &str,
    owner: Uuid,
) -> TxResult<()> {
    match roots.get(root.as_bytes())? {
        Some(existing) if existing.as_ref() == owner.as_bytes() => {}
        _ => return Ok(()),
    }
    roots.remove(root.as_bytes())?;
    for outer in enclosing(root) {
        bump_below(below, outer.as_bytes(), -1)?;
    }
    Ok(())
}

/// Claims a location inside a transaction, or aborts with `LocationTaken` when another claim has
/// it (whoever owns it: a registered copy of a table's metadata carries that table's id), has one
/// inside it, or encloses it without being its namespace (the rules of [`super::locations`]). A
/// lapsed reservation, or the reservation of the staged create this claim commits, gives way.
fn claim_location(
    claims: &TransactionalTree,
    below: &TransactionalTree,
    warehouse: Uuid,
    claim: &LocationClaim,
) -> TxResult<()> {
    let now = now_ms();
    let key = location_key(warehouse, &claim.location);
    if let Some(bytes) = claims.get(&key)? {
        let existing: LocationClaim = tx_decode(&bytes)?;
        if !existing.gives_way_to(claim, now) {
            return abort(refusal(&claim.location));
        }
        release_location(claims, below, warehouse, &existing.location, existing.owner)?;
    }
    if below.get(&key)?.is_some() {
        return abort(refusal(&claim.location));
    }
    let outers = enclosing(&claim.location);
    for outer in &outers {
        if let Some(bytes) = claims.get(location_key(warehouse, outer))? {
            let outer: LocationClaim = tx_decode(&bytes)?;
            if !outer.lapsed(now) && !claim.may_lie_inside(&outer) {
                return abort(refusal(&claim.location));
            }
        }
    }
    claims.insert(key, tx_encode(claim)?)?;
    for outer in &outers {
        bump_below(below, &location_key(warehouse, outer), 1)?;
    }
    Ok(())
}

/// Releases `owner`'s claim on a location inside a transaction (nothing when it is not theirs).
fn release_location(
    claims: &TransactionalTree,
    below: &TransactionalTree,
    warehouse: Uuid,
    location: &str,
    owner: Uuid,
) -> TxResult<()> {
    let key = location_key(warehouse, location);
    let Some(bytes) = claims.get(&key)? else {
        return Ok(());
    };
    let existing: LocationClaim = tx_decode(&bytes)?;
    if existing.owner != owner {
        return Ok(());
    }
    claims.remove(key)?;
    for outer in enclosing(location) {
        bump_below(below, &location_key(warehouse, outer), -1)?;
    }
    Ok(())
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

/// Takes table or view `ident` (of `kind`) out of its namespace inside a transaction: its name
/// and id are free again; its location claim is the caller's to release or keep.
fn take_tabular(
    nss: &TransactionalTree,
    tabs: &TransactionalTree,
    ids: &TransactionalTree,
    warehouse: Uuid,
    kind: TabularKind,
    ident: &TableIdent,
) -> TxResult<TabularRecord> {
    let key = tabular_key(warehouse, ident);
    let Some(bytes) = tabs.get(&key)? else {
        return abort(StoreError::NoSuchTabular(kind, ident.clone()));
    };
    let record: TabularRecord = tx_decode(&bytes)?;
    if record.kind != kind {
        return abort(StoreError::NoSuchTabular(kind, ident.clone()));
    }
    let ns_key = namespace_key(warehouse, &ident.namespace);
    bump_children(nss, &ns_key, &ident.namespace, -1)?;
    tabs.remove(key.as_slice())?;
    ids.remove(tabular_id_key(warehouse, record.id))?;
    Ok(record)
}

/// Adds `delta` to a namespace's child count inside a transaction; fails when it does not exist.
fn bump_children(
    tree: &TransactionalTree,
    key: &[u8],
    ns: &NamespaceIdent,
    delta: i64,
) -> TxResult<()> {
    let Some(bytes) = tree.get(key)? else {
        return abort(StoreError::NoSuchNamespace(ns.clone()));
    };
    let mut stored: StoredNamespace = tx_decode(&bytes)?;
    stored.children = stored.children.saturating_add_signed(delta);
    tree.insert(key, tx_encode(&stored)?)?;
    Ok(())
}

impl SledStore {
    /// Builds a new store in `dir` from a snapshot file (see [`super::sled_snapshot`]); refuses a
    /// `dir` that holds anything, and a damaged file, before writing anything. Returns how many
    /// entries it restored.
    pub fn restore_snapshot(dir: &Path, file: &[u8]) -> StoreResult<u64> {
        if dir.exists() && dir.read_dir().map_err(backend)?.next().is_some() {
            return Err(StoreError::failure(format!(
                "{} is not empty: a snapshot is restored only into a new directory",
                dir.display()
            )));
        }
        let collections = super::sled_snapshot::decode(file)?;
        let entries = collections.iter().map(|(_, _, e)| e.len() as u64).sum();
        let db = sled::Config::new().path(dir).open().map_err(backend)?;
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
        let db = sled::Config::new()
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
            db,
        })
        .and_then(Self::backfill_locations)
        .and_then(Self::backfill_ids_and_roots)
        .and_then(Self::backfill_bin_claims)
    }

    /// Claims the locations of recycle-bin entries dropped without purge before every bin entry
    /// kept its claim (once). An entry whose location another owner took meanwhile is left
    /// unclaimed, and logged: a purge of it is refused.
    fn backfill_bin_claims(self) -> StoreResult<Self> {
        self.once(BIN_CLAIMS_BACKFILLED, Self::claim_bin_locations)
    }

    fn claim_bin_locations(&self) -> StoreResult<()> {
        for entry in self.dropped.iter() {
            let (_, value) = entry.map_err(backend)?;
            let dropped: DroppedRecord = decode(&value)?;
            let claim = LocationClaim::of_tabular(&dropped.tabular);
            let key = location_key(dropped.warehouse, &claim.location);
            let claimed = unwrap_tx((&self.locations, &self.locations_below).transaction(
                |(locations, below)| {
                    if let Some(bytes) = locations.get(&key)? {
                        let existing: LocationClaim = tx_decode(&bytes)?;
                        if existing.owner == claim.owner {
                            return Ok(());
                        }
                    }
                    claim_location(locations, below, dropped.warehouse, &claim)
                },
            ));
            if let Err(e) = claimed {
                tracing::warn!(id = %dropped.tabular.id, location = %claim.location, error = &e as &dyn std::error::Error, "a dropped object's location is another's; it will not be purged");
            }
        }
        Ok(())
    }

    /// Indexes tables and views by id and claims warehouse roots written before either existed
    /// (once). Overlapping roots among existing warehouses are kept as they were, and logged.
    fn backfill_ids_and_roots(self) -> StoreResult<Self> {
        self.once(IDS_AND_ROOTS_BACKFILLED, Self::index_ids_and_claim_roots)
    }

    fn index_ids_and_claim_roots(&self) -> StoreResult<()> {
        for entry in self.tabulars.iter() {
            let (key, value) = entry.map_err(backend)?;
            let record: TabularRecord = decode(&value)?;
            let warehouse = Uuid::from_slice(&key[..16]).map_err(backend)?;
            self.tabular_ids
                .insert(tabular_id_key(warehouse, record.id), key)
                .map_err(backend)?;
        }
        for entry in self.warehouses.iter() {
            let (_, value) = entry.map_err(backend)?;
            let wh: WarehouseRecord = decode(&value)?;
            let root = wh.storage.root_location();
            let claimed = unwrap_tx(
                (&self.warehouse_roots, &self.warehouse_roots_below)
                    .transaction(|(roots, below)| claim_root(roots, below, &root, wh.id)),
            );
            if let Err(e) = claimed {
                tracing::warn!(warehouse = %wh.id, error = &e as &dyn std::error::Error, "an existing warehouse's storage overlaps another's; left as it was");
            }
        }
        Ok(())
    }

    /// Runs `work` once in the life of the store: not again once `key` is set in `meta`.
    fn once(self, key: &[u8], work: impl FnOnce(&Self) -> StoreResult<()>) -> StoreResult<Self> {
        if self.meta.get(key).map_err(backend)?.is_some() {
            return Ok(self);
        }
        work(&self)?;
        self.meta.insert(key, b"1".as_slice()).map_err(backend)?;
        self.db.flush().map_err(backend)?;
        Ok(self)
    }

    /// Claims the locations of tables, views and namespaces written before locations were
    /// claimed (once). Overlaps among them are kept as they were, and logged.
    fn backfill_locations(self) -> StoreResult<Self> {
        self.once(LOCATIONS_BACKFILLED, Self::claim_existing_locations)
    }

    fn claim_existing_locations(&self) -> StoreResult<()> {
        let mut claims = Vec::new();
        for entry in self.tabulars.iter() {
            let (key, value) = entry.map_err(backend)?;
            let record: TabularRecord = decode(&value)?;
            claims.push((
                Uuid::from_slice(&key[..16]).map_err(backend)?,
                LocationClaim::of_tabular(&record),
            ));
        }
        for entry in self.namespaces.iter() {
            let (key, value) = entry.map_err(backend)?;
            let stored: StoredNamespace = decode(&value)?;
            if let Some(claim) = LocationClaim::of_namespace(&stored.record) {
                claims.push((Uuid::from_slice(&key[..16]).map_err(backend)?, claim));
            }
        }
        for (warehouse, claim) in &claims {
            let claimed = unwrap_tx((&self.locations, &self.locations_below).transaction(
                |(locations, below)| claim_location(locations, below, *warehouse, claim),
            ));
            if let Err(e) = claimed {
                tracing::warn!(location = %claim.location, error = &e as &dyn std::error::Error, "an existing location overlaps another; left as it was");
            }
        }
        Ok(())
    }

    /// The same store, refusing writes while its filesystem has less than `bytes` free.
    pub fn with_min_free_bytes(mut self, bytes: u64) -> Self {
        self.min_free_bytes = bytes;
        self
    }

    /// Holds the write gate shared, once the disk has room for the write.
    async fn writing(&self) -> StoreResult<tokio::sync::RwLockReadGuard<'_, ()>> {
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
impl CatalogStore for SledStore {
    async fn create_tenant(&self, tenant: &TenantRecord) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let what = format!("tenant '{}'", tenant.name);
        self.insert_named(
            (&self.tenants, &self.tenant_names),
            tenant.id,
            tenant.name.as_bytes(),
            what,
            tenant,
        )
        .await
    }

    async fn get_tenant(&self, id: Uuid) -> StoreResult<Option<TenantRecord>> {
        Self::get_json(&self.tenants, id.as_bytes())
    }

    async fn get_tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
        Self::get_by_name(&self.tenants, &self.tenant_names, name.as_bytes())
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantRecord>> {
        let mut out: Vec<TenantRecord> = Vec::new();
        for entry in self.tenants.iter() {
            out.push(decode(&entry.map_err(backend)?.1)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn create_warehouse(&self, wh: &WarehouseRecord) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let name = warehouse_name_key(wh.tenant_id, &wh.name);
        let value = encode(wh)?;
        let root = wh.storage.root_location();
        unwrap_tx(
            (
                &self.warehouses,
                &self.warehouse_names,
                &self.warehouse_roots,
                &self.warehouse_roots_below,
            )
                .transaction(|(ids, names, roots, below)| {
                    if names.get(&name)?.is_some() || ids.get(wh.id.as_bytes())?.is_some() {
                        return abort(StoreError::AlreadyExists(format!(
                            "warehouse '{}'",
                            wh.name
                        )));
                    }
                    claim_root(roots, below, &root, wh.id)?;
                    names.insert(name.as_slice(), wh.id.as_bytes().as_slice())?;
                    ids.insert(wh.id.as_bytes().as_slice(), value.as_slice())?;
                    Ok(())
                }),
        )?;
        self.durable().await
    }

    async fn update_warehouse(&self, wh: &WarehouseRecord) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let value = encode(wh)?;
        let new_name = warehouse_name_key(wh.tenant_id, &wh.name);
        let new_root = wh.storage.root_location();
        let holds_namespaces = self
            .namespaces
            .scan_prefix(wh.id.as_bytes())
            .next()
            .is_some()
            || self.dropped.scan_prefix(wh.id.as_bytes()).next().is_some();
        unwrap_tx(
            (
                &self.warehouses,
                &self.warehouse_names,
                &self.warehouse_roots,
                &self.warehouse_roots_below,
            )
                .transaction(|(ids, names, roots, below)| {
                    let Some(old) = ids.get(wh.id.as_bytes())? else {
                        return abort(StoreError::failure(format!(
                            "warehouse {} does not exist",
                            wh.id
                        )));
                    };
                    let old: WarehouseRecord = tx_decode(&old)?;
                    if old.name != wh.name {
                        if names.get(&new_name)?.is_some() {
                            return abort(StoreError::AlreadyExists(format!(
                                "warehouse '{}'",
                                wh.name
                            )));
                        }
                        names.remove(warehouse_name_key(old.tenant_id, &old.name))?;
                        names.insert(new_name.as_slice(), wh.id.as_bytes().as_slice())?;
                    }
                    let old_root = old.storage.root_location();
                    if old_root != new_root {
                        if holds_namespaces {
                            return abort(storage_in_use(&old.name));
                        }
                        release_root(roots, below, &old_root, wh.id)?;
                        claim_root(roots, below, &new_root, wh.id)?;
                    }
                    ids.insert(wh.id.as_bytes().as_slice(), value.as_slice())?;
                    Ok(())
                }),
        )?;
        self.durable().await
    }

    async fn get_warehouse(&self, id: Uuid) -> StoreResult<Option<WarehouseRecord>> {
        Self::get_json(&self.warehouses, id.as_bytes())
    }

    async fn get_warehouse_by_name(
        &self,
        tenant: Uuid,
        name: &str,
    ) -> StoreResult<Option<WarehouseRecord>> {
        Self::get_by_name(
            &self.warehouses,
            &self.warehouse_names,
            &warehouse_name_key(tenant, name),
        )
    }

    async fn list_warehouses(&self, tenant: Uuid) -> StoreResult<Vec<WarehouseRecord>> {
        let mut out = Vec::new();
        for entry in self.warehouse_names.scan_prefix(tenant.as_bytes()) {
            let (_, id) = entry.map_err(backend)?;
            if let Some(wh) = Self::get_json(&self.warehouses, &id)? {
                out.push(wh);
            }
        }
        Ok(out)
    }

    async fn delete_warehouse(&self, id: Uuid) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let Some(wh) = self.get_warehouse(id).await? else {
            return Err(StoreError::NotFound(format!("warehouse {id}")));
        };
        if self.namespaces.scan_prefix(id.as_bytes()).next().is_some() {
            return Err(StoreError::NotEmpty(
                format!("warehouse '{}'", wh.name),
                "drop its namespaces first".into(),
            ));
        }
        if self.dropped.scan_prefix(id.as_bytes()).next().is_some() {
            return Err(StoreError::NotEmpty(
                format!("warehouse '{}'", wh.name),
                "its recycle bin holds dropped tables or views: purge them first".into(),
            ));
        }
        let root = wh.storage.root_location();
        unwrap_tx(
            (
                &self.warehouses,
                &self.warehouse_names,
                &self.warehouse_roots,
                &self.warehouse_roots_below,
            )
                .transaction(|(ids, names, roots, below)| {
                    ids.remove(id.as_bytes().as_slice())?;
                    names.remove(warehouse_name_key(wh.tenant_id, &wh.name))?;
                    release_root(roots, below, &root, id)?;
                    Ok(())
                }),
        )?;
        self.durable().await
    }

    async fn rename_tenant(&self, id: Uuid, name: &str) -> StoreResult<()> {
        let _writing = self.writing().await?;
        unwrap_tx(
            (&self.tenants, &self.tenant_names).transaction(|(ids, names)| {
                let Some(bytes) = ids.get(id.as_bytes())? else {
                    return abort(StoreError::NotFound(format!("tenant {id}")));
                };
                let mut tenant: TenantRecord = tx_decode(&bytes)?;
                if tenant.name == name {
                    return Ok(());
                }
                if names.get(name.as_bytes())?.is_some() {
                    return abort(StoreError::AlreadyExists(format!("tenant '{name}'")));
                }
                names.remove(tenant.name.as_bytes())?;
                names.insert(name.as_bytes(), id.as_bytes().as_slice())?;
                tenant.name = name.to_owned();
                ids.insert(id.as_bytes().as_slice(), tx_encode(&tenant)?)?;
                Ok(())
            }),
        )?;
        self.durable().await
    }

    async fn delete_tenant(&self, id: Uuid) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let Some(tenant) = self.get_tenant(id).await? else {
            return Err(StoreError::NotFound(format!("tenant {id}")));
        };
        if self
            .warehouse_names
            .scan_prefix(id.as_bytes())
            .next()
            .is_some()
        {
            return Err(StoreError::NotEmpty(
                format!("tenant '{}'", tenant.name),
                "delete its warehouses first".into(),
            ));
        }
        for p in self.list_principals(id).await? {
            self.delete_principal(p.id).await?;
        }
        for r in self.list_roles(id).await? {
            self.delete_role(r.id).await?;
        }
        unwrap_tx(
            (&self.tenants, &self.tenant_names).transaction(|(ids, names)| {
                ids.remove(id.as_bytes().as_slice())?;
                names.remove(tenant.name.as_bytes())?;
                Ok(())
            }),
        )?;
        self.durable().await
    }

    async fn list_principals(&self, tenant: Uuid) -> StoreResult<Vec<PrincipalRecord>> {
        let mut out = Vec::new();
        for entry in self.principals.iter() {
            let p: PrincipalRecord = decode(&entry.map_err(backend)?.1)?;
            if p.tenant_id == tenant {
                out.push(p);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn delete_principal(&self, id: Uuid) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let Some(p) = self.get_principal(id).await? else {
            return Err(StoreError::NotFound(format!("principal {id}")));
        };
        for entry in self.assignments.scan_prefix(id.as_bytes()) {
            self.assignments
                .remove(entry.map_err(backend)?.0)
                .map_err(backend)?;
        }
        unwrap_tx(
            (&self.principals, &self.client_ids).transaction(|(ids, clients)| {
                ids.remove(id.as_bytes().as_slice())?;
                clients.remove(p.client_id.as_bytes())?;
                Ok(())
            }),
        )?;
        self.durable().await
    }

    async fn create_role(&self, role: &RoleRecord) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let what = format!("role '{}'", role.name);
        let name = warehouse_name_key(role.tenant_id, &role.name);
        self.insert_named((&self.roles, &self.role_names), role.id, &name, what, role)
            .await
    }

    async fn get_role(&self, id: Uuid) -> StoreResult<Option<RoleRecord>> {
        Self::get_json(&self.roles, id.as_bytes())
    }

    async fn list_roles(&self, tenant: Uuid) -> StoreResult<Vec<RoleRecord>> {
        let mut out = Vec::new();
        for entry in self.role_names.scan_prefix(tenant.as_bytes()) {
            if let Some(role) = Self::get_json(&self.roles, &entry.map_err(backend)?.1)? {
                out.push(role);
            }
        }
        Ok(out)
    }

    async fn delete_role(&self, id: Uuid) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let Some(role) = self.get_role(id).await? else {
            return Err(StoreError::NotFound(format!("role {id}")));
        };
        for grant in self.list_grants(role.tenant_id, Some(id)).await? {
            self.grants
                .remove(grant_key(role.tenant_id, grant.id))
                .map_err(backend)?;
        }
        for entry in self.assignments.iter() {
            let (key, _) = entry.map_err(backend)?;
            if key.ends_with(id.as_bytes()) {
                self.assignments.remove(key).map_err(backend)?;
            }
        }
        unwrap_tx((&self.roles, &self.role_names).transaction(|(ids, names)| {
            ids.remove(id.as_bytes().as_slice())?;
            names.remove(warehouse_name_key(role.tenant_id, &role.name))?;
            Ok(())
        }))?;
        self.durable().await
    }

    async fn assign_role(&self, principal: Uuid, role: Uuid) -> StoreResult<()> {
        let _writing = self.writing().await?;
        self.assignments
            .insert(pair_key(principal, role), &[])
            .map_err(backend)?;
        self.durable().await
    }

    async fn unassign_role(&self, principal: Uuid, role: Uuid) -> StoreResult<()> {
        let _writing = self.writing().await?;
        if self
            .assignments
            .remove(pair_key(principal, role))
            .map_err(backend)?
            .is_none()
        {
            return Err(StoreError::NotFound(format!(
                "assignment of role {role} to principal {principal}"
            )));
        }
        self.durable().await
    }

    async fn roles_of(&self, principal: Uuid) -> StoreResult<Vec<Uuid>> {
        let mut out = Vec::new();
        for entry in self.assignments.scan_prefix(principal.as_bytes()) {
            let (key, _) = entry.map_err(backend)?;
            out.push(Uuid::from_slice(&key[16..]).map_err(backend)?);
        }
        Ok(out)
    }

    async fn create_grant(&self, grant: &GrantRecord) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let existing = self
            .list_grants(grant.tenant_id, Some(grant.role_id))
            .await?;
        if existing
            .iter()
            .any(|g| g.resource == grant.resource && g.privilege == grant.privilege)
        {
            return Err(StoreError::AlreadyExists(format!(
                "grant of {:?} on this resource to role {}",
                grant.privilege, grant.role_id
            )));
        }
        self.grants
            .insert(grant_key(grant.tenant_id, grant.id), encode(grant)?)
            .map_err(backend)?;
        self.durable().await
    }

    async fn delete_grant(&self, tenant: Uuid, id: Uuid) -> StoreResult<Option<GrantRecord>> {
        let _writing = self.writing().await?;
        let Some(value) = self.grants.remove(grant_key(tenant, id)).map_err(backend)? else {
            return Ok(None);
        };
        self.durable().await?;
        Ok(Some(decode(&value)?))
    }

    async fn list_grants(&self, tenant: Uuid, role: Option<Uuid>) -> StoreResult<Vec<GrantRecord>> {
        let mut out = Vec::new();
        for entry in self.grants.scan_prefix(tenant.as_bytes()) {
            let grant: GrantRecord = decode(&entry.map_err(backend)?.1)?;
            if role.is_none_or(|r| r == grant.role_id) {
                out.push(grant);
            }
        }
        Ok(out)
    }

    async fn create_principal(&self, p: &PrincipalRecord) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let what = format!("principal with client id '{}'", p.client_id);
        self.insert_named(
            (&self.principals, &self.client_ids),
            p.id,
            p.client_id.as_bytes(),
            what,
            p,
        )
        .await
    }

    async fn update_principal(&self, p: &PrincipalRecord) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let value = encode(p)?;
        unwrap_tx(self.principals.transaction(|ids| {
            let Some(old) = ids.get(p.id.as_bytes())? else {
                return abort(StoreError::failure(format!(
                    "principal {} does not exist",
                    p.id
                )));
            };
            let old: PrincipalRecord = tx_decode(&old)?;
            if old.client_id != p.client_id {
                return abort(StoreError::failure("a principal's client id cannot change"));
            }
            ids.insert(p.id.as_bytes().as_slice(), value.as_slice())?;
            Ok(())
        }))?;
        self.durable().await
    }

    async fn get_principal(&self, id: Uuid) -> StoreResult<Option<PrincipalRecord>> {
        Self::get_json(&self.principals, id.as_bytes())
    }

    async fn get_principal_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<PrincipalRecord>> {
        Self::get_by_name(&self.principals, &self.client_ids, client_id.as_bytes())
    }

    async fn create_namespace(&self, warehouse: Uuid, ns: &NamespaceRecord) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let key = namespace_key(warehouse, &ns.ident);
        let value = encode(&StoredNamespace {
            record: ns.clone(),
            children: 0,
        })?;
        let claim = LocationClaim::of_namespace(ns);
        unwrap_tx(
            (&self.namespaces, &self.locations, &self.locations_below).transaction(
                |(tree, locations, below)| {
                    if tree.get(&key)?.is_some() {
                        return abort(StoreError::AlreadyExists(format!("namespace {}", ns.ident)));
                    }
                    if let Some(parent) = ns.ident.parent() {
                        bump_children(tree, &namespace_key(warehouse, &parent), &parent, 1)?;
                    }
                    if let Some(claim) = &claim {
                        claim_location(locations, below, warehouse, claim)?;
                    }
                    tree.insert(key.as_slice(), value.as_slice())?;
                    Ok(())
                },
            ),
        )?;
        self.durable().await
    }

    async fn get_namespace(
        &self,
        warehouse: Uuid,
        ns: &NamespaceIdent,
    ) -> StoreResult<Option<NamespaceRecord>> {
        let stored: Option<StoredNamespace> =
            Self::get_json(&self.namespaces, &namespace_key(warehouse, ns))?;
        Ok(stored.map(|s| s.record))
    }

    async fn list_namespaces(
        &self,
        warehouse: Uuid,
        parent: Option<&NamespaceIdent>,
        page: &PageRequest,
    ) -> StoreResult<Page<NamespaceIdent>> {
        if let Some(p) = parent
            && self.get_namespace(warehouse, p).await?.is_none()
        {
            return Err(StoreError::NoSuchNamespace(p.clone()));
        }
        let prefix = namespace_children_prefix(warehouse, parent);
        Self::scan_page(&self.namespaces, &prefix, page, |_, value| {
            let stored: StoredNamespace = decode(value)?;
            Ok(Some(stored.record.ident))
        })
    }

    async fn update_namespace_properties(
        &self,
        warehouse: Uuid,
        ns: &NamespaceIdent,
        updates: &BTreeMap<String, String>,
        removals: &[String],
    ) -> StoreResult<(BTreeMap<String, String>, BTreeMap<String, String>)> {
        let _writing = self.writing().await?;
        let key = namespace_key(warehouse, ns);
        let result = unwrap_tx(
            (&self.namespaces, &self.locations, &self.locations_below).transaction(
                |(tree, locations, below)| {
                    let Some(bytes) = tree.get(&key)? else {
                        return abort(StoreError::NoSuchNamespace(ns.clone()));
                    };
                    let mut stored: StoredNamespace = tx_decode(&bytes)?;
                    let before_claim = LocationClaim::of_namespace(&stored.record);
                    let before = stored.record.properties.clone();
                    for k in removals {
                        stored.record.properties.remove(k);
                    }
                    for (k, v) in updates {
                        stored.record.properties.insert(k.clone(), v.clone());
                    }
                    let after_claim = LocationClaim::of_namespace(&stored.record);
                    if before_claim != after_claim {
                        if let Some(old) = &before_claim {
                            release_location(
                                locations,
                                below,
                                warehouse,
                                &old.location,
                                old.owner,
                            )?;
                        }
                        if let Some(new) = &after_claim {
                            claim_location(locations, below, warehouse, new)?;
                        }
                    }
                    tree.insert(key.as_slice(), tx_encode(&stored)?)?;
                    Ok((before, stored.record.properties))
                },
            ),
        )?;
        self.durable().await?;
        Ok(result)
    }

    async fn drop_namespace(&self, warehouse: Uuid, ns: &NamespaceIdent) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let key = namespace_key(warehouse, ns);
        unwrap_tx(
            (&self.namespaces, &self.locations, &self.locations_below).transaction(
                |(tree, locations, below)| {
                    let Some(bytes) = tree.get(&key)? else {
                        return abort(StoreError::NoSuchNamespace(ns.clone()));
                    };
                    let stored: StoredNamespace = tx_decode(&bytes)?;
                    if stored.children > 0 {
                        return abort(StoreError::NamespaceNotEmpty(ns.clone()));
                    }
                    if let Some(parent) = ns.parent() {
                        bump_children(tree, &namespace_key(warehouse, &parent), &parent, -1)?;
                    }
                    if let Some(claim) = LocationClaim::of_namespace(&stored.record) {
                        release_location(
                            locations,
                            below,
                            warehouse,
                            &claim.location,
                            claim.owner,
                        )?;
                    }
                    tree.remove(key.as_slice())?;
                    Ok(())
                },
            ),
        )?;
        self.durable().await
    }

    async fn create_tabular(&self, warehouse: Uuid, record: &TabularRecord) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let ns = &record.ident.namespace;
        let ns_key = namespace_key(warehouse, ns);
        let key = tabular_key(warehouse, &record.ident);
        let value = encode(record)?;
        let claim = LocationClaim::of_tabular(record);
        let id_key = tabular_id_key(warehouse, record.id);
        unwrap_tx(
            (
                &self.namespaces,
                &self.tabulars,
                &self.locations,
                &self.locations_below,
                &self.tabular_ids,
                &self.dropped,
            )
                .transaction(|(nss, tabs, locations, below, ids, bin)| {
                    if let Some(existing) = tabs.get(&key)? {
                        let existing: TabularRecord = tx_decode(&existing)?;
                        return abort(StoreError::AlreadyExists(format!(
                            "{} {}",
                            existing.kind.noun(),
                            record.ident
                        )));
                    }
                    bump_children(nss, &ns_key, ns, 1)?;
                    // A dropped object keeps its id: its grants and its restore stay its own.
                    if ids.get(&id_key)?.is_some() || bin.get(&id_key)?.is_some() {
                        return abort(id_taken_error(record));
                    }
                    claim_location(locations, below, warehouse, &claim)?;
                    tabs.insert(key.as_slice(), value.as_slice())?;
                    ids.insert(tabular_id_key(warehouse, record.id), key.as_slice())?;
                    Ok(())
                }),
        )?;
        self.durable().await
    }

    async fn reserve_location(&self, warehouse: Uuid, claim: &LocationClaim) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let key = pair_key(warehouse, claim.owner);
        let value = encode(claim)?;
        unwrap_tx(
            (&self.locations, &self.locations_below, &self.reservations).transaction(
                |(locations, below, reservations)| {
                    claim_location(locations, below, warehouse, claim)?;
                    reservations.insert(key.as_slice(), value.as_slice())?;
                    Ok(())
                },
            ),
        )?;
        self.durable().await
    }

    async fn release_lapsed_reservations(&self, now_ms: i64) -> StoreResult<u64> {
        let _writing = self.writing().await?;
        let mut released = 0;
        for entry in self.reservations.iter() {
            let (key, value) = entry.map_err(backend)?;
            let reserved: LocationClaim = decode(&value)?;
            if !reserved.lapsed(now_ms) {
                continue;
            }
            let warehouse = Uuid::from_slice(&key[..16]).map_err(backend)?;
            let claim_key = location_key(warehouse, &reserved.location);
            unwrap_tx(
                (&self.locations, &self.locations_below, &self.reservations).transaction(
                    |(locations, below, reservations)| {
                        // Committed, its claim is the table's now; lapsed, it is released.
                        if let Some(bytes) = locations.get(&claim_key)? {
                            let held: LocationClaim = tx_decode(&bytes)?;
                            if held.kind == OwnerKind::Staged && held.owner == reserved.owner {
                                release_location(
                                    locations,
                                    below,
                                    warehouse,
                                    &held.location,
                                    held.owner,
                                )?;
                            }
                        }
                        reservations.remove(&key)?;
                        Ok(())
                    },
                ),
            )?;
            released += 1;
        }
        if released > 0 {
            self.durable().await?;
        }
        Ok(released)
    }

    async fn get_tabular(
        &self,
        warehouse: Uuid,
        ident: &TableIdent,
    ) -> StoreResult<Option<TabularRecord>> {
        Self::get_json(&self.tabulars, &tabular_key(warehouse, ident))
    }

    async fn get_tabular_by_id(
        &self,
        warehouse: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<TabularRecord>> {
        match self
            .tabular_ids
            .get(tabular_id_key(warehouse, id))
            .map_err(backend)?
        {
            Some(key) => Ok(Self::get_json::<TabularRecord>(&self.tabulars, &key)?
                .filter(|record| record.id == id)),
            None => Ok(None),
        }
    }

    async fn list_tabulars(
        &self,
        warehouse: Uuid,
        ns: &NamespaceIdent,
        kind: TabularKind,
        page: &PageRequest,
    ) -> StoreResult<Page<TableIdent>> {
        if self.get_namespace(warehouse, ns).await?.is_none() {
            return Err(StoreError::NoSuchNamespace(ns.clone()));
        }
        let prefix = tabular_prefix(warehouse, ns);
        Self::scan_page(&self.tabulars, &prefix, page, |name, value| {
            let record: TabularRecord = decode(value)?;
            if record.kind != kind {
                return Ok(None);
            }
            let name = ObjectName::new(name).map_err(backend)?;
            Ok(Some(TableIdent::new(ns.clone(), name)))
        })
    }

    async fn swap_metadata(
        &self,
        warehouse: Uuid,
        kind: TabularKind,
        swaps: &[MetadataSwap],
    ) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let keys: Vec<Vec<u8>> = swaps
            .iter()
            .map(|s| tabular_key(warehouse, &s.ident))
            .collect();
        unwrap_tx(self.tabulars.transaction(|tree| {
            for (swap, key) in swaps.iter().zip(&keys) {
                let Some(bytes) = tree.get(key)? else {
                    return abort(StoreError::NoSuchTabular(kind, swap.ident.clone()));
                };
                let mut record: TabularRecord = tx_decode(&bytes)?;
                if record.kind != kind {
                    return abort(StoreError::NoSuchTabular(kind, swap.ident.clone()));
                }
                if record.metadata_location != swap.expected {
                    return abort(StoreError::Conflict(swap.ident.clone()));
                }
                record.metadata_location = swap.new.clone();
                tree.insert(key.as_slice(), tx_encode(&record)?)?;
            }
            Ok(())
        }))?;
        self.durable().await
    }

    async fn drop_tabular(
        &self,
        warehouse: Uuid,
        kind: TabularKind,
        ident: &TableIdent,
    ) -> StoreResult<TabularRecord> {
        let _writing = self.writing().await?;
        let record = unwrap_tx(
            (
                &self.namespaces,
                &self.tabulars,
                &self.locations,
                &self.locations_below,
                &self.tabular_ids,
            )
                .transaction(|(nss, tabs, locations, below, ids)| {
                    let record = take_tabular(nss, tabs, ids, warehouse, kind, ident)?;
                    release_location(locations, below, warehouse, &record.location, record.id)?;
                    Ok(record)
                }),
        )?;
        self.durable().await?;
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
        let _writing = self.writing().await?;
        let dropped = unwrap_tx(
            (
                &self.namespaces,
                &self.tabulars,
                &self.tabular_ids,
                &self.dropped,
            )
                .transaction(|(nss, tabs, ids, bin)| {
                    let record = take_tabular(nss, tabs, ids, warehouse, kind, ident)?;
                    // The bin entry keeps the location claim and the id; one entry per id.
                    if bin.get(pair_key(warehouse, record.id))?.is_some() {
                        return abort(id_taken_error(&record));
                    }
                    let dropped = DroppedRecord {
                        warehouse,
                        tabular: record,
                        dropped_at_ms,
                        expires_at_ms,
                        purge_files,
                        lease_until_ms: 0,
                    };
                    bin.insert(
                        pair_key(warehouse, dropped.tabular.id),
                        tx_encode(&dropped)?,
                    )?;
                    Ok(dropped)
                }),
        )?;
        self.durable().await?;
        Ok(dropped)
    }

    async fn list_dropped(&self, warehouse: Uuid) -> StoreResult<Vec<DroppedRecord>> {
        let mut all = self
            .dropped
            .scan_prefix(warehouse.as_bytes())
            .map(|entry| decode::<DroppedRecord>(&entry.map_err(backend)?.1))
            .collect::<StoreResult<Vec<_>>>()?;
        all.sort_by_key(|d| (d.dropped_at_ms, d.tabular.id));
        Ok(all)
    }

    async fn get_dropped(&self, warehouse: Uuid, id: Uuid) -> StoreResult<Option<DroppedRecord>> {
        Self::get_json(&self.dropped, &pair_key(warehouse, id))
    }

    async fn restore_dropped(
        &self,
        warehouse: Uuid,
        id: Uuid,
        ident: &TableIdent,
        now_ms: i64,
    ) -> StoreResult<TabularRecord> {
        let _writing = self.writing().await?;
        let bin_key = pair_key(warehouse, id);
        let ns_key = namespace_key(warehouse, &ident.namespace);
        let key = tabular_key(warehouse, ident);
        let restored = unwrap_tx(
            (
                &self.namespaces,
                &self.tabulars,
                &self.locations,
                &self.locations_below,
                &self.tabular_ids,
                &self.dropped,
            )
                .transaction(|(nss, tabs, locations, below, ids, bin)| {
                    let Some(bytes) = bin.get(&bin_key)? else {
                        return abort(StoreError::NotFound(format!("dropped object {id}")));
                    };
                    let dropped: DroppedRecord = tx_decode(&bytes)?;
                    if dropped.purge_due(now_ms) {
                        return abort(StoreError::Purging(id));
                    }
                    let record = TabularRecord {
                        ident: ident.clone(),
                        ..dropped.tabular.clone()
                    };
                    if let Some(existing) = tabs.get(&key)? {
                        let existing: TabularRecord = tx_decode(&existing)?;
                        return abort(StoreError::AlreadyExists(format!(
                            "{} {}",
                            existing.kind.noun(),
                            ident
                        )));
                    }
                    bump_children(nss, &ns_key, &ident.namespace, 1)?;
                    // Claimed again as the restored object's, in the namespace it returns to.
                    release_location(locations, below, warehouse, &record.location, id)?;
                    claim_location(
                        locations,
                        below,
                        warehouse,
                        &LocationClaim::of_tabular(&record),
                    )?;
                    if ids.get(tabular_id_key(warehouse, id))?.is_some() {
                        return abort(id_taken_error(&record));
                    }
                    tabs.insert(key.as_slice(), tx_encode(&record)?)?;
                    ids.insert(tabular_id_key(warehouse, id), key.as_slice())?;
                    bin.remove(bin_key.as_slice())?;
                    Ok(record)
                }),
        )?;
        self.durable().await?;
        Ok(restored)
    }

    async fn expire_dropped(
        &self,
        warehouse: Uuid,
        id: Uuid,
        expires_at_ms: i64,
        purge_files: bool,
    ) -> StoreResult<DroppedRecord> {
        let _writing = self.writing().await?;
        let key = pair_key(warehouse, id);
        let id_key = tabular_id_key(warehouse, id);
        let updated = unwrap_tx(
            (
                &self.locations,
                &self.locations_below,
                &self.dropped,
                &self.tabular_ids,
            )
                .transaction(|(locations, below, bin, ids)| {
                    let Some(bytes) = bin.get(&key)? else {
                        return abort(StoreError::NotFound(format!("dropped object {id}")));
                    };
                    let mut dropped: DroppedRecord = tx_decode(&bytes)?;
                    // Files are purged only from a location that is its own, and never while a
                    // live object holds its id (registered from its files before ids were kept).
                    if purge_files && !dropped.purge_files {
                        let claim = LocationClaim::of_tabular(&dropped.tabular);
                        let own = match locations.get(location_key(warehouse, &claim.location))? {
                            Some(bytes) => tx_decode::<LocationClaim>(&bytes)?.owner == id,
                            None => {
                                claim_location(locations, below, warehouse, &claim)?;
                                true
                            }
                        };
                        if !own || ids.get(&id_key)?.is_some() {
                            return abort(refusal(&claim.location));
                        }
                        dropped.purge_files = true;
                    }
                    dropped.expires_at_ms = expires_at_ms;
                    bin.insert(key.as_slice(), tx_encode(&dropped)?)?;
                    Ok(dropped)
                }),
        )?;
        self.durable().await?;
        Ok(updated)
    }

    async fn lease_expired_dropped(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        except: &[Uuid],
    ) -> StoreResult<Option<DroppedRecord>> {
        let _writing = self.writing().await?;
        for entry in self.dropped.iter() {
            let (key, value) = entry.map_err(backend)?;
            if except.iter().any(|w| key.starts_with(w.as_bytes())) {
                continue;
            }
            let mut dropped: DroppedRecord = decode(&value)?;
            if dropped.expires_at_ms > now_ms || dropped.lease_until_ms >= now_ms {
                continue;
            }
            dropped.lease_until_ms = lease_until_ms;
            let leased = self
                .dropped
                .compare_and_swap(&key, Some(value), Some(encode(&dropped)?))
                .map_err(backend)?;
            if leased.is_ok() {
                self.durable().await?;
                return Ok(Some(dropped));
            }
        }
        Ok(None)
    }

    async fn forget_dropped(&self, warehouse: Uuid, id: Uuid) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let key = pair_key(warehouse, id);
        let id_key = tabular_id_key(warehouse, id);
        unwrap_tx(
            (
                &self.locations,
                &self.locations_below,
                &self.dropped,
                &self.tabular_ids,
            )
                .transaction(|(locations, below, bin, ids)| {
                    let Some(bytes) = bin.get(&key)? else {
                        return Ok(());
                    };
                    let dropped: DroppedRecord = tx_decode(&bytes)?;
                    // A live object with its id (registered before ids were kept) owns the claim.
                    if ids.get(&id_key)?.is_none() {
                        release_location(
                            locations,
                            below,
                            warehouse,
                            &dropped.tabular.location,
                            id,
                        )?;
                    }
                    bin.remove(key.as_slice())?;
                    Ok(())
                }),
        )?;
        self.durable().await
    }

    async fn rename_tabular(
        &self,
        warehouse: Uuid,
        kind: TabularKind,
        from: &TableIdent,
        to: &TableIdent,
    ) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let (from_key, to_key) = (tabular_key(warehouse, from), tabular_key(warehouse, to));
        let from_ns = namespace_key(warehouse, &from.namespace);
        let to_ns = namespace_key(warehouse, &to.namespace);
        unwrap_tx(
            (&self.namespaces, &self.tabulars, &self.tabular_ids).transaction(
                |(nss, tabs, ids)| {
                    let Some(bytes) = tabs.get(&from_key)? else {
                        return abort(StoreError::NoSuchTabular(kind, from.clone()));
                    };
                    let mut record: TabularRecord = tx_decode(&bytes)?;
                    if record.kind != kind {
                        return abort(StoreError::NoSuchTabular(kind, from.clone()));
                    }
                    if from == to {
                        return Ok(());
                    }
                    if let Some(existing) = tabs.get(&to_key)? {
                        let existing: TabularRecord = tx_decode(&existing)?;
                        return abort(StoreError::AlreadyExists(format!(
                            "{} {to}",
                            existing.kind.noun()
                        )));
                    }
                    if from.namespace != to.namespace {
                        bump_children(nss, &to_ns, &to.namespace, 1)?;
                        bump_children(nss, &from_ns, &from.namespace, -1)?;
                    }
                    record.ident = to.clone();
                    tabs.remove(from_key.as_slice())?;
                    tabs.insert(to_key.as_slice(), tx_encode(&record)?)?;
                    ids.insert(tabular_id_key(warehouse, record.id), to_key.as_slice())?;
                    Ok(())
                },
            ),
        )?;
        self.durable().await
    }

    async fn put_storage_credential(
        &self,
        c: &StorageCredentialRecord,
        replace: bool,
    ) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let key = warehouse_name_key(c.tenant_id, &c.name);
        let value = encode(c)?;
        unwrap_tx(self.storage_credentials.transaction(|tree| {
            let exists = tree.get(&key)?.is_some();
            if exists && !replace {
                return abort(StoreError::AlreadyExists(format!(
                    "storage credential '{}'",
                    c.name
                )));
            }
            if !exists && replace {
                return abort(StoreError::NotFound(format!(
                    "storage credential '{}'",
                    c.name
                )));
            }
            tree.insert(key.as_slice(), value.as_slice())?;
            Ok(())
        }))?;
        self.durable().await
    }

    async fn get_storage_credential(
        &self,
        tenant: Uuid,
        name: &str,
    ) -> StoreResult<Option<StorageCredentialRecord>> {
        Self::get_json(&self.storage_credentials, &warehouse_name_key(tenant, name))
    }

    async fn list_storage_credentials(
        &self,
        tenant: Uuid,
    ) -> StoreResult<Vec<StorageCredentialRecord>> {
        let mut out = Vec::new();
        for entry in self.storage_credentials.scan_prefix(tenant.as_bytes()) {
            out.push(decode(&entry.map_err(backend)?.1)?);
        }
        Ok(out)
    }

    async fn delete_storage_credential(&self, tenant: Uuid, name: &str) -> StoreResult<()> {
        let _writing = self.writing().await?;
        let in_use = self
            .list_warehouses(tenant)
            .await?
            .into_iter()
            .find(|w| w.credential.as_deref() == Some(name));
        if let Some(wh) = in_use {
            return Err(StoreError::NotEmpty(
                format!("storage credential '{name}'"),
                format!("warehouse '{}' uses it", wh.name),
            ));
        }
        if self
            .storage_credentials
            .remove(warehouse_name_key(tenant, name))
            .map_err(backend)?
            .is_none()
        {
            return Err(StoreError::NotFound(format!("storage credential '{name}'")));
        }
        self.durable().await
    }

    async fn put_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let _writing = self.writing().await?;
        self.signing_keys
            .insert(key.kid.as_bytes(), encode(key)?)
            .map_err(backend)?;
        self.durable().await
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let mut keys: Vec<SigningKeyRecord> = Vec::new();
        for entry in self.signing_keys.iter() {
            keys.push(decode(&entry.map_err(backend)?.1)?);
        }
        keys.sort_by_key(|k| k.created_at_ms);
        Ok(keys)
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        let _writing = self.writing().await?;
        self.signing_keys.remove(kid.as_bytes()).map_err(backend)?;
        self.durable().await
    }

    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        let _writing = self.writing().await?;
        self.audit
            .insert(pair_key(event.tenant_id, event.id), encode(event)?)
            .map_err(backend)?;
        self.durable().await
    }

    async fn list_audit(&self, tenant: Uuid, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let mut out = Vec::new();
        for entry in self.audit.scan_prefix(tenant.as_bytes()).rev().take(limit) {
            out.push(decode(&entry.map_err(backend)?.1)?);
        }
        Ok(out)
    }

    async fn purge_audit(&self, before_ms: i64) -> StoreResult<u64> {
        let _writing = self.writing().await?;
        let mut removed = 0;
        for entry in self.audit.iter() {
            let (key, value) = entry.map_err(backend)?;
            let event: AuditEvent = decode(&value)?;
            if event.at_ms < before_ms {
                self.audit.remove(key).map_err(backend)?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.durable().await?;
        }
        Ok(removed)
    }

    async fn put_idempotency(&self, key: &str, record: &IdempotencyRecord) -> StoreResult<()> {
        let _writing = self.writing().await?;
        self.idempotency
            .insert(key.as_bytes(), encode(record)?)
            .map_err(backend)?;
        self.durable().await
    }

    async fn get_idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        Self::get_json(&self.idempotency, key.as_bytes())
    }

    async fn reserve_idempotency(
        &self,
        key: &str,
        pending: &IdempotencyRecord,
        now_ms: i64,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let _writing = self.writing().await?;
        let value = encode(pending)?;
        loop {
            let current = self.idempotency.get(key.as_bytes()).map_err(backend)?;
            if let Some(bytes) = &current {
                let existing: IdempotencyRecord = decode(bytes)?;
                if existing.expires_at_ms > now_ms {
                    return Ok(Some(existing));
                }
            }
            let swapped = self
                .idempotency
                .compare_and_swap(key.as_bytes(), current, Some(value.as_slice()))
                .map_err(backend)?;
            if swapped.is_ok() {
                self.durable().await?;
                return Ok(None);
            }
        }
    }

    async fn delete_idempotency(&self, key: &str) -> StoreResult<()> {
        let _writing = self.writing().await?;
        self.idempotency.remove(key.as_bytes()).map_err(backend)?;
        self.durable().await
    }

    async fn purge_idempotency(&self, now: i64) -> StoreResult<u64> {
        let _writing = self.writing().await?;
        let mut removed = 0;
        for entry in self.idempotency.iter() {
            let (key, value) = entry.map_err(backend)?;
            let record: IdempotencyRecord = decode(&value)?;
            if record.expires_at_ms < now {
                self.idempotency.remove(key).map_err(backend)?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.durable().await?;
        }
        Ok(removed)
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
            Ok::<_, sled::Error>(super::sled_snapshot::encode(collections))
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

    async fn ping(&self) -> StoreResult<()> {
        self.db.get(b"ping").map_err(backend)?;
        Ok(())
    }
}
