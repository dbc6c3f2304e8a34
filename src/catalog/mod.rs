//! The catalog's use-cases: namespaces, tables and views, checked and committed.
//!
//! Owns: resolving a caller's warehouse, each warehouse's own storage IO and the secret it was
//! built with (dropped when the warehouse or its credential changes), table locations, metadata
//! files (named, written, cached), commits with in-server retries, renames (and the one
//! [`Change`] a rename makes: handed to the store write, then published here), and the rules a
//! request must follow. Must not touch: HTTP types.
//! Metadata files never change once written, so parsed metadata is cached by location for good.

mod error;
pub mod metadata;
mod namespaces;
mod properties;
mod recycle_bin;
mod tables;
mod views;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use error::{CatalogError, CatalogResult, Cause, ErrorType};
pub use metadata::{
    CachedTable, CachedView, MetadataCache, SnapshotsMode, decode_page_token, encode_page_token,
};
pub use namespaces::PropertiesUpdate;
pub use tables::{CreateTable, LoadedTable, TableChange};
pub use views::{CreateView, LoadedView, ViewRequirement};

use crate::changes::Change;
use crate::domain::TabularId;
use crate::domain::{TenantId, WarehouseId};
use crate::identity::Caller;
use crate::identity::storage_credentials::CredentialResolver;
use crate::storage::s3::io::S3StaticCredentials;
use crate::storage::{
    IoError, ServerAccess, StorageSecret, WarehouseIo, WarehouseStorage, kind_of,
};
use crate::store::{CatalogStore, PageRequest, StoreError, WarehouseRecord};

/// How long a warehouse's storage client (and the credential it was built with) is reused.
const IO_CACHE_SECS: u64 = 300;
/// Warehouses whose storage clients are kept (an S3, Azure or GCS client with its connection
/// pool costs up to a few hundred KiB; one not kept is rebuilt on its next use).
const IO_CACHE_ENTRIES: u64 = 1_024;
/// How long a warehouse record is served from memory before it is read again.
const WAREHOUSE_CACHE_SECS: u64 = 10;

/// A warehouse the caller may use, with the server's access to its files.
#[derive(Clone)]
pub struct Warehouse {
    pub record: Arc<WarehouseRecord>,
    /// How the server reaches its storage (built once, cached, rebuilt when its credential
    /// changes).
    pub server: Arc<ServerAccess>,
}

impl Warehouse {
    /// Its storage, as storage kinds and vending see it.
    pub fn storage(&self) -> WarehouseStorage<'_> {
        WarehouseStorage {
            id: self.record.id,
            name: &self.record.name,
            profile: &self.record.storage,
            server: &self.server,
        }
    }

    /// The server's IO for its files.
    pub fn io(&self) -> &Arc<dyn WarehouseIo> {
        &self.server.io
    }
}

/// How the server reaches a warehouse's storage, built once and cached, with the credential it
/// was built with.
struct ServerStorage {
    access: Arc<ServerAccess>,
    /// The tenant and name of the storage credential it was built with, if any.
    credential: Option<(TenantId, String)>,
}

impl Warehouse {
    /// The warehouse root, normalized (`s3://bucket/prefix`, `file:///dir`).
    pub fn root(&self) -> String {
        self.record.storage.root_location()
    }
}

/// Limits and knobs of the catalog.
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    pub max_page_size: usize,
    /// Signs page tokens, so a client cannot make one up (derived from the master key, so every
    /// replica accepts every replica's tokens).
    pub page_token_key: [u8; 32],
    pub commit_retries: u32,
    /// Longest a commit may take before its pointer moves (it does not move later).
    pub commit_deadline: Duration,
    pub metadata_cache_bytes: u64,
    /// Largest metadata file read or written.
    pub max_metadata_file_bytes: u64,
    /// Deadlines of the server's own storage calls.
    pub timeouts: crate::outbound::OutboundTimeouts,
    /// How long a dropped table or view stays in its warehouse's recycle bin (0: a drop without
    /// purge is final at once; one with purge is purged at once, from the queue).
    pub drop_retention: Duration,
    /// How long a replica purging a dropped object holds it before another may take over.
    pub purge_lease: Duration,
    /// How long a staged create holds its table's location for its commit.
    pub staged_create_ttl: Duration,
}

/// The hasher of the caches every load looks in: foldhash, not SipHash (their keys are the
/// server's own ids, so hash flooding is not a concern, and a lookup is on every request).
type FastHash = foldhash::fast::RandomState;

/// The catalog service shared by all request handlers.
pub struct Catalog {
    store: Arc<dyn CatalogStore>,
    options: CatalogOptions,
    /// Each warehouse's record with the server's access to it: one read per request. Its
    /// entries live shorter than the access they hold, so a rebuilt access is picked up.
    warehouses: moka::future::Cache<WarehouseId, Warehouse, FastHash>,
    io: moka::future::Cache<WarehouseId, Arc<ServerStorage>, FastHash>,
    s3_credentials: RwLock<HashMap<WarehouseId, S3StaticCredentials>>,
    metadata: MetadataCache,
    commit_locks: moka::sync::Cache<(WarehouseId, TabularId), Arc<tokio::sync::Mutex<()>>>,
    credentials: Arc<CredentialResolver>,
    tenant_names: moka::sync::Cache<TenantId, Arc<str>, FastHash>,
    /// Where the catalog's own changes that other caches hold (renames) are published.
    changes: Arc<crate::changes::Changes>,
    /// Where every storage call's outcome is noted, per warehouse.
    reachability: Arc<crate::reachability::Reachability>,
    /// Woken when this replica made a dropped object due for purging.
    purges_due: tokio::sync::Notify,
    /// Set when the server is stopping: no commit's pointer moves after this moment.
    stop_commits_by: Arc<std::sync::OnceLock<std::time::Instant>>,
}

impl Catalog {
    /// A catalog over `store`.
    pub fn new(
        store: Arc<dyn CatalogStore>,
        options: CatalogOptions,
        credentials: Arc<CredentialResolver>,
        changes: Arc<crate::changes::Changes>,
        reachability: Arc<crate::reachability::Reachability>,
    ) -> Self {
        Self {
            changes,
            reachability,
            purges_due: tokio::sync::Notify::new(),
            stop_commits_by: Arc::new(std::sync::OnceLock::new()),
            store,
            warehouses: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(WAREHOUSE_CACHE_SECS))
                .build_with_hasher(FastHash::default()),
            // Rebuilt every few minutes, so credential references are resolved again.
            io: moka::future::Cache::builder()
                .max_capacity(IO_CACHE_ENTRIES)
                .time_to_live(Duration::from_secs(IO_CACHE_SECS))
                .build_with_hasher(FastHash::default()),
            s3_credentials: RwLock::new(HashMap::new()),
            tenant_names: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(60))
                .build_with_hasher(FastHash::default()),
            metadata: MetadataCache::new(
                options.metadata_cache_bytes,
                options.max_metadata_file_bytes,
            ),
            commit_locks: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(300))
                .build(),
            options,
            credentials,
        }
    }

    /// A commit's deadline, `limit` from now (taken before the commit queues on its lock).
    fn commit_deadline(&self, limit: Duration) -> CommitDeadline {
        CommitDeadline {
            at: std::time::Instant::now() + limit,
            limit,
            stop_by: self.stop_commits_by.clone(),
        }
    }

    /// The server is stopping: from `at` on, no commit moves a pointer (each answers 503, did
    /// not land), so none lands after the server has said it stopped.
    pub fn stop_commits_by(&self, at: std::time::Instant) {
        let _ = self.stop_commits_by.set(at);
    }

    /// The store behind the catalog (for start-up and tools; handlers call use-cases).
    pub fn store(&self) -> &Arc<dyn CatalogStore> {
        &self.store
    }

    /// Whether the store answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// Records a new table or view whose first metadata file is written, and says when; when the
    /// store refuses it (a name or location taken meanwhile), the file is deleted again.
    async fn record_new(
        &self,
        wh: &Warehouse,
        id: TabularId,
        kind: crate::store::TabularKind,
        ident: crate::domain::TableIdent,
        location: String,
        metadata_location: &str,
    ) -> CatalogResult<i64> {
        let record = crate::store::TabularRecord {
            id,
            kind,
            ident,
            location,
            metadata_location: metadata_location.to_owned(),
            created_at_ms: crate::store::now_ms(),
        };
        if let Err(e) = self.store.create_tabular(wh.record.id, &record).await {
            self.metadata
                .discard(wh.io().as_ref(), metadata_location)
                .await;
            return Err(e.into());
        }
        Ok(record.created_at_ms)
    }

    /// One page of the tables or views (by `kind`) in a namespace.
    pub async fn list(
        &self,
        wh: &Warehouse,
        ns: &crate::domain::NamespaceIdent,
        kind: crate::store::TabularKind,
        page: &PageRequest,
    ) -> CatalogResult<crate::store::Page<crate::domain::TableIdent>> {
        Ok(self
            .store
            .list_tabulars(wh.record.id, ns, kind, page)
            .await?)
    }

    /// Renames a table or view (by `kind`), possibly into another namespace. Grants follow it by
    /// id; decisions cached under its old name are dropped on every replica.
    pub async fn rename(
        &self,
        wh: &Warehouse,
        kind: crate::store::TabularKind,
        from: &crate::domain::TableIdent,
        to: &crate::domain::TableIdent,
    ) -> CatalogResult<()> {
        let warehouse = wh.record.id;
        let change = Change::Renamed { warehouse };
        self.store
            .rename_tabular(warehouse, kind, from, to, &change)
            .await?;
        self.changes.publish(&change).await;
        Ok(())
    }

    /// Whether the warehouse holds a table (or view, by `kind`) named `ident`.
    pub async fn exists(
        &self,
        wh: &Warehouse,
        ident: &crate::domain::TableIdent,
        kind: crate::store::TabularKind,
    ) -> CatalogResult<bool> {
        let found = self.store.get_tabular(wh.record.id, ident).await?;
        Ok(found.is_some_and(|r| r.kind == kind))
    }

    /// The catalog's limits.
    pub fn options(&self) -> &CatalogOptions {
        &self.options
    }

    /// Registers static S3 keys for the server's own access to a warehouse.
    pub fn set_s3_credentials(&self, warehouse: WarehouseId, creds: S3StaticCredentials) {
        self.s3_credentials
            .write()
            .expect("credential map lock")
            .insert(warehouse, creds);
    }

    /// Resolves a warehouse by its id as a route names it (the Iceberg `prefix`) for `caller`. A
    /// warehouse of another tenant is reported as missing, so ids do not leak across tenants.
    pub async fn warehouse(&self, caller: &Caller, id: &str) -> CatalogResult<Warehouse> {
        let missing = || {
            CatalogError::new(
                ErrorType::NoSuchWarehouse,
                format!("warehouse '{id}' does not exist"),
            )
        };
        let id: WarehouseId = id.parse().map_err(|_| missing())?;
        // One cache read answers the record and the server's access. A hit is read in place; a
        // miss runs boxed, so the request's future (which actix moves whole) holds a pointer,
        // not the loader's state.
        let warehouse = match self.warehouses.get(&id).await {
            Some(hit) => hit,
            None => Box::pin(self.read_warehouse(id))
                .await?
                .ok_or_else(missing)?,
        };
        if !caller.may_access_tenant(warehouse.record.tenant_id) {
            return Err(missing());
        }
        Ok(warehouse)
    }

    /// A warehouse's record from the store, with the server's access to it, into the cache;
    /// requests that miss together (the entry expired under load) share one read.
    async fn read_warehouse(&self, id: WarehouseId) -> CatalogResult<Option<Warehouse>> {
        let read = self
            .warehouses
            .try_get_with(id, async {
                let record = match self.store.get_warehouse(id).await {
                    Ok(Some(found)) => Arc::new(found),
                    Ok(None) => return Err(None),
                    Err(e) => return Err(Some(CatalogError::from(e))),
                };
                let server = self.io_for(&record).await.map_err(Some)?.access.clone();
                Ok(Warehouse { record, server })
            })
            .await;
        match read {
            Ok(warehouse) => Ok(Some(warehouse)),
            Err(e) => match &*e {
                None => Ok(None),
                Some(e) => Err(e.clone()),
            },
        }
    }

    /// Drops what is cached about a warehouse (after it changed or was deleted).
    async fn forget_warehouse(&self, id: WarehouseId) {
        self.warehouses.invalidate(&id).await;
        self.io.invalidate(&id).await;
        self.reachability.forget(id);
    }

    /// Drops what is cached about every warehouse and tenant name.
    fn forget_all_warehouses(&self) {
        self.warehouses.invalidate_all();
        self.io.invalidate_all();
        self.tenant_names.invalidate_all();
    }

    /// A tenant's name (cached), for STS session names; its id when the tenant is gone.
    pub async fn tenant_name(&self, tenant: TenantId) -> CatalogResult<Arc<str>> {
        if let Some(name) = self.tenant_names.get(&tenant) {
            return Ok(name);
        }
        let name: Arc<str> = match self.store.get_tenant(tenant).await? {
            Some(t) => t.name.into(),
            None => tenant.simple().to_string().into(),
        };
        self.tenant_names.insert(tenant, name.clone());
        Ok(name)
    }

    /// Finds a warehouse by name in the caller's tenant, or its only warehouse when `name` is `None`.
    pub async fn warehouse_by_name(
        &self,
        caller: &Caller,
        name: Option<&str>,
    ) -> CatalogResult<Arc<WarehouseRecord>> {
        match name {
            Some(name) => self
                .store
                .get_warehouse_by_name(caller.tenant_id, name)
                .await?
                .map(Arc::new)
                .ok_or_else(|| {
                    CatalogError::new(
                        ErrorType::NoSuchWarehouse,
                        format!("warehouse '{name}' does not exist"),
                    )
                }),
            None => {
                let mut all = self.store.list_warehouses(caller.tenant_id).await?;
                match all.len() {
                    1 => Ok(Arc::new(all.remove(0))),
                    0 => Err(CatalogError::new(
                        ErrorType::NoSuchWarehouse,
                        "this tenant has no warehouse",
                    )),
                    _ => Err(CatalogError::bad_request(
                        "this tenant has several warehouses: name one with ?warehouse=NAME (the client's 'warehouse' property)",
                    )),
                }
            }
        }
    }

    /// The server's own storage access for a warehouse: cached, or built (boxed, so the state of
    /// a build stays out of the futures of the requests that find it cached).
    async fn io_for(&self, record: &WarehouseRecord) -> CatalogResult<Arc<ServerStorage>> {
        match self.io.get(&record.id).await {
            Some(access) => Ok(access),
            None => Box::pin(self.build_io(record)).await,
        }
    }

    /// Builds a warehouse's storage access with its credential resolved now; requests that miss
    /// together share one build.
    async fn build_io(&self, record: &WarehouseRecord) -> CatalogResult<Arc<ServerStorage>> {
        let (secret, secret_fingerprint) = match &record.credential {
            Some(name) => {
                let (secret, fingerprint) = self.storage_credential(record, name).await?;
                (Some(secret), fingerprint)
            }
            None => {
                let keys = self
                    .s3_credentials
                    .read()
                    .expect("credential map lock")
                    .get(&record.id)
                    .cloned();
                let fingerprint = keys.as_ref().map_or(0, |k| {
                    crate::storage::secret::fingerprint_values([
                        ("access_key_id", k.access_key_id.as_str()),
                        ("secret_access_key", k.secret_access_key.as_str()),
                        ("session_token", k.session_token.as_deref().unwrap_or("")),
                    ])
                });
                (keys.map(StorageSecret::S3), fingerprint)
            }
        };
        let credential = record
            .credential
            .as_ref()
            .map(|name| (record.tenant_id, name.clone()));
        let storage = record.storage.clone();
        let name = record.name.clone();
        let timeouts = self.options.timeouts;
        let (warehouse, reachability) = (record.id, self.reachability.clone());
        self.io
            .try_get_with(record.id, async move {
                let (io, azure) = kind_of(&storage)
                    .open(secret.as_ref(), &name, &timeouts)
                    .await?;
                let io = crate::storage::io::ObservedIo::wrap(io, warehouse, reachability);
                Ok::<_, IoError>(Arc::new(ServerStorage {
                    access: Arc::new(ServerAccess {
                        io,
                        secret: secret.map(Arc::new),
                        azure,
                        secret_fingerprint,
                    }),
                    credential,
                }))
            })
            .await
            .map_err(|e| CatalogError::from((*e).clone()))
    }

    /// Resolves a warehouse's named storage credential now, with the fingerprint of its value;
    /// fails closed, naming the credential.
    async fn storage_credential(
        &self,
        record: &WarehouseRecord,
        name: &str,
    ) -> CatalogResult<(StorageSecret, u64)> {
        let unavailable = |e: String| {
            tracing::error!(warehouse = %record.name, error = %e, "storage credential unavailable");
            CatalogError::new(
                ErrorType::ServiceUnavailable,
                format!("warehouse '{}': {e}", record.name),
            )
        };
        let stored = self
            .store
            .get_storage_credential(record.tenant_id, name)
            .await?
            .ok_or_else(|| unavailable(format!("storage credential '{name}' does not exist")))?;
        let fields = self
            .credentials
            .resolve(&stored)
            .await
            .map_err(unavailable)?;
        let fingerprint = fields.fingerprint();
        let secret = fields
            .into_secret(&self.options.timeouts)
            .map_err(unavailable)?;
        Ok((secret, fingerprint))
    }

    /// Forgets the IO of every warehouse built with the tenant's credential `name` (it was
    /// rotated, re-pointed or deleted), so the next request resolves its new value.
    async fn forget_credential(&self, tenant: TenantId, name: &str) {
        let built_with_it: Vec<WarehouseId> = self
            .io
            .iter()
            .filter(|(_, access)| {
                access
                    .credential
                    .as_ref()
                    .is_some_and(|(t, n)| *t == tenant && n == name)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in built_with_it {
            self.io.invalidate(&id).await;
            self.warehouses.invalidate(&id).await;
        }
    }

    /// Turns a client's `pageToken` / `pageSize` into a store page request: at most `pageSize`
    /// items, never more than the configured maximum, which is also the size without `pageSize`.
    pub fn page_request(
        &self,
        token: Option<&str>,
        size: Option<i64>,
    ) -> CatalogResult<PageRequest> {
        let limit = match size {
            Some(n) if n < 1 => {
                return Err(CatalogError::bad_request("pageSize must be at least 1"));
            }
            Some(n) => Some((n as usize).min(self.options.max_page_size)),
            // Without a size a list is still paged: at most `max_page_size` per answer.
            None => Some(self.options.max_page_size),
        };
        let after = match token {
            None | Some("") => None,
            Some(t) => Some(metadata::decode_page_token(
                &self.options.page_token_key,
                t,
            )?),
        };
        Ok(PageRequest { after, limit })
    }

    /// The page token for a list that continues after `last`.
    pub fn encode_page_token(&self, last: &str) -> String {
        metadata::encode_page_token(&self.options.page_token_key, last)
    }

    /// Runs `attempt` until it commits, fails for another reason than a lost race, or has lost
    /// `commit_retries` races (with a short random pause before each retry). Every table and view
    /// commit goes through here; each attempt cleans up the files it wrote when it fails.
    async fn with_commit_retries<T, Attempt>(
        &self,
        deadline: &CommitDeadline,
        mut attempt: impl FnMut() -> Attempt,
    ) -> CatalogResult<T>
    where
        Attempt: std::future::Future<Output = Result<T, CommitError>>,
    {
        let mut retries = 0;
        loop {
            deadline.check().map_err(|e| e.error)?;
            let error = match attempt().await {
                Ok(committed) => return Ok(committed),
                Err(e) => e,
            };
            if error.lost_race {
                metrics::counter!("floe_commit_conflicts_total").increment(1);
            }
            if !error.lost_race || retries >= self.options.commit_retries {
                return Err(error.error);
            }
            metrics::counter!("floe_commit_retries_total").increment(1);
            retries += 1;
            let jitter = rand::random::<u64>() % (2 * retries as u64 + 1);
            tokio::time::sleep(Duration::from_millis(jitter)).await;
        }
    }

    /// The lock commits to one table or view from this process queue on (races with other
    /// replicas are still caught by the store's compare-and-swap).
    fn commit_lock(&self, warehouse: WarehouseId, table: TabularId) -> Arc<tokio::sync::Mutex<()>> {
        self.commit_locks
            .get_with((warehouse, table), || Arc::new(tokio::sync::Mutex::new(())))
    }
}

/// What a management change makes stale here: a changed warehouse's record and IO, the IO built
/// with a changed credential, and after a tenant changed (STS session names carry its name) or
/// when anything may have, every warehouse and tenant name.
#[async_trait::async_trait]
impl crate::changes::Subscriber for Catalog {
    async fn changed(&self, change: &Change) {
        match change {
            Change::Warehouse { warehouse } => self.forget_warehouse(*warehouse).await,
            Change::StorageCredential { tenant, name } => {
                self.forget_credential(*tenant, name).await
            }
            Change::Tenant { .. } | Change::Everything => self.forget_all_warehouses(),
            Change::Principal { .. }
            | Change::Grants
            | Change::Renamed { .. }
            | Change::SigningKeys => {}
        }
    }
}

/// When a commit must have moved its table's pointer, or not move it at all: checked before every
/// attempt and right before the swap, so a commit whose client was told it failed never lands.
#[derive(Debug, Clone)]
struct CommitDeadline {
    at: std::time::Instant,
    limit: Duration,
    /// When the server stops letting commits land, once it is stopping.
    stop_by: Arc<std::sync::OnceLock<std::time::Instant>>,
}

impl CommitDeadline {
    /// Fails once the deadline has passed, or the server is stopping and its last moment for
    /// commits has passed; the caller then does not swap.
    fn check(&self) -> Result<(), CommitError> {
        let now = std::time::Instant::now();
        if self.stop_by.get().is_some_and(|stop_by| now >= *stop_by) {
            metrics::counter!("floe_commits_stopped_by_shutdown_total").increment(1);
            return Err(CatalogError::new(
                ErrorType::ServiceUnavailable,
                "the server is stopping: the commit did not land; retry it",
            )
            .into());
        }
        if now < self.at {
            return Ok(());
        }
        metrics::counter!("floe_commit_deadlines_passed_total").increment(1);
        Err(CatalogError::new(
            ErrorType::ServiceUnavailable,
            format!(
                "the commit passed its deadline of {} ms before the table's pointer moved: it did not land; retry it",
                self.limit.as_millis()
            ),
        )
        .into())
    }
}

/// A failed commit attempt; `lost_race` when another commit moved a table first (worth a retry).
struct CommitError {
    error: CatalogError,
    lost_race: bool,
}

impl From<CatalogError> for CommitError {
    fn from(error: CatalogError) -> Self {
        CommitError {
            error,
            lost_race: false,
        }
    }
}

impl From<StoreError> for CommitError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(ident) => CommitError {
                error: CatalogError::commit_failed(format!(
                    "{ident} kept changing under this commit; retry the commit"
                )),
                lost_race: true,
            },
            other => CatalogError::from(other).into(),
        }
    }
}
