//! The catalog's persistent state behind one async trait per area, gathered by [`CatalogStore`].
//!
//! Owns: the store's contract: the area traits ([`TenancyStore`], [`AccessStore`],
//! [`NamespaceStore`], [`TabularStore`], [`RecycleBinStore`], [`SecretStore`], [`AuditStore`],
//! [`IdempotencyStore`], [`StoreLifecycle`]), the records they pass ([`records`], re-exported
//! here), the atomic operations the catalog needs (compare-and-swap of metadata locations,
//! renames, multi-table commits), the claims that keep locations and warehouse storage roots from
//! overlapping, and [`StoreError`].
//! Must not touch: HTTP, metadata files, or cloud SDKs. Keys and encodings are private to each backend;
//! every backend passes the same conformance suite (`tests/integration/conformance/`). An `Ok` from a
//! write means the write is durable.
//!
//! A write that changes something replicas cache takes the [`Change`] its caller publishes on its
//! own replica (its `change` argument): a backend shared by replicas (PostgreSQL) sends exactly
//! that value to the others in the write's own transaction; a backend serving one process (sled)
//! ignores it. No backend decides which change a write makes.

pub mod locations;
pub mod metered;
pub mod pointer_cache;
pub mod postgres;
pub mod records;
pub mod sled;
pub mod sled_snapshot;

use std::collections::BTreeMap;

use async_trait::async_trait;
use uuid::Uuid;

use crate::changes::Change;
use crate::domain::{
    NamespaceIdent, PrincipalId, RoleId, TableIdent, TabularId, TenantId, WarehouseId,
};

pub use self::sled::SledStore;
pub use metered::MeteredStore;
pub use postgres::PgStore;
pub use records::*;

/// What went wrong in the store, in terms the catalog can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("namespace {0} does not exist")]
    NoSuchNamespace(NamespaceIdent),
    #[error("{kind} {1} does not exist", kind = .0.noun())]
    NoSuchTabular(TabularKind, TableIdent),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("namespace {0} is not empty")]
    NamespaceNotEmpty(NamespaceIdent),
    #[error("{0} was changed by another commit")]
    Conflict(TableIdent),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} is not empty: {1}")]
    NotEmpty(String, String),
    /// The location equals, contains or lies inside another table's, view's or namespace's.
    #[error(
        "location {0} overlaps the location of another table, view or namespace (a location may \
         lie inside only its own namespace's location)"
    )]
    LocationTaken(String),
    /// The warehouse's storage root equals, contains or lies inside another warehouse's.
    #[error(
        "storage {0} overlaps another warehouse's storage (no warehouse's root may equal, contain \
         or lie inside another's)"
    )]
    StorageTaken(String),
    /// A dropped object whose purge is due or running: it cannot be restored any more.
    #[error("dropped object {0} is being purged")]
    Purging(TabularId),
    /// The store's disk has less free space than the server keeps in reserve: writes are
    /// refused before they start, so none is half done.
    #[error("{0}")]
    Full(String),
    /// The store's own machinery failed (its database, its disk, a record that no longer
    /// decodes); the backend's error is its source.
    #[error(transparent)]
    Backend(BackendError),
}

impl StoreError {
    /// A failure of the store's machinery with no error to name as its cause.
    pub fn failure(what: impl Into<String>) -> Self {
        Self::Backend(BackendError {
            what: what.into(),
            source: None,
        })
    }

    /// A failure of the store's machinery, caused by `source`.
    pub fn caused(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Backend(BackendError {
            what: what.into(),
            source: Some(std::sync::Arc::new(source)),
        })
    }
}

/// What failed in the store's machinery, and the backend's own error (a PostgreSQL or sled
/// error) as its source: logs show the whole chain, clients never see it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("store failure: {what}")]
pub struct BackendError {
    what: String,
    #[source]
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

/// Why a table or view may not take an id another one in its warehouse has (a registered copy of
/// a table's metadata carries that table's uuid).
pub fn id_taken_error(record: &TabularRecord) -> StoreError {
    StoreError::AlreadyExists(format!(
        "a table or view with uuid {} (live, or in the recycle bin: restore it from there) \
         (creating {})",
        record.id, record.ident
    ))
}

/// Why a warehouse's storage root may not change now.
pub fn storage_in_use(warehouse: &str) -> StoreError {
    StoreError::NotEmpty(
        format!("warehouse '{warehouse}'"),
        "its storage location can change only while it holds no namespaces and its recycle bin \
         is empty"
            .into(),
    )
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Tenants and their warehouses (with the storage-root claims that keep warehouses apart).
/// Its writes that other replicas must hear of take the `change` their caller publishes (see the
/// module's opening).
#[async_trait]
pub trait TenancyStore: Send + Sync {
    async fn create_tenant(&self, tenant: &TenantRecord, change: &Change) -> StoreResult<()>;
    async fn get_tenant(&self, id: TenantId) -> StoreResult<Option<TenantRecord>>;
    async fn get_tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>>;
    async fn list_tenants(&self) -> StoreResult<Vec<TenantRecord>>;
    /// Renames a tenant (names stay unique).
    async fn rename_tenant(&self, id: TenantId, name: &str, change: &Change) -> StoreResult<()>;
    /// Deletes a tenant that has no warehouses; its principals, roles and grants go with it.
    async fn delete_tenant(&self, id: TenantId, change: &Change) -> StoreResult<()>;
    /// Creates a warehouse; `StorageTaken` when its storage root overlaps any other warehouse's,
    /// in any tenant.
    async fn create_warehouse(
        &self,
        warehouse: &WarehouseRecord,
        change: &Change,
    ) -> StoreResult<()>;
    /// Replaces a warehouse's record (same id); its name stays unique in the tenant. A new storage
    /// root must not overlap another warehouse's (`StorageTaken`), and may change only while the
    /// warehouse has no namespaces (`NotEmpty`).
    async fn update_warehouse(
        &self,
        warehouse: &WarehouseRecord,
        change: &Change,
    ) -> StoreResult<()>;
    async fn get_warehouse(&self, id: WarehouseId) -> StoreResult<Option<WarehouseRecord>>;
    async fn get_warehouse_by_name(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> StoreResult<Option<WarehouseRecord>>;
    async fn list_warehouses(&self, tenant: TenantId) -> StoreResult<Vec<WarehouseRecord>>;
    /// Deletes a warehouse that has no namespaces.
    async fn delete_warehouse(&self, id: WarehouseId, change: &Change) -> StoreResult<()>;
}

/// Who may act: principals, roles, the assignment of roles to principals, and grants.
/// Its writes that other replicas must hear of take the `change` their caller publishes (see the
/// module's opening).
#[async_trait]
pub trait AccessStore: Send + Sync {
    async fn create_principal(
        &self,
        principal: &PrincipalRecord,
        change: &Change,
    ) -> StoreResult<()>;
    /// Replaces a principal's record (same id and client id).
    async fn update_principal(
        &self,
        principal: &PrincipalRecord,
        change: &Change,
    ) -> StoreResult<()>;
    async fn get_principal(&self, id: PrincipalId) -> StoreResult<Option<PrincipalRecord>>;
    async fn get_principal_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<PrincipalRecord>>;
    async fn list_principals(&self, tenant: TenantId) -> StoreResult<Vec<PrincipalRecord>>;
    /// Deletes a principal and its role assignments.
    async fn delete_principal(&self, id: PrincipalId, change: &Change) -> StoreResult<()>;
    async fn create_role(&self, role: &RoleRecord, change: &Change) -> StoreResult<()>;
    async fn get_role(&self, id: RoleId) -> StoreResult<Option<RoleRecord>>;
    async fn list_roles(&self, tenant: TenantId) -> StoreResult<Vec<RoleRecord>>;
    /// Deletes a role with its grants and assignments.
    async fn delete_role(&self, id: RoleId, change: &Change) -> StoreResult<()>;
    async fn assign_role(
        &self,
        principal: PrincipalId,
        role: RoleId,
        change: &Change,
    ) -> StoreResult<()>;
    async fn unassign_role(
        &self,
        principal: PrincipalId,
        role: RoleId,
        change: &Change,
    ) -> StoreResult<()>;
    /// The roles assigned to a principal.
    async fn roles_of(&self, principal: PrincipalId) -> StoreResult<Vec<RoleId>>;
    async fn create_grant(&self, grant: &GrantRecord, change: &Change) -> StoreResult<()>;
    /// Deletes a tenant's grant; `None` when the tenant has no grant with that id.
    async fn delete_grant(
        &self,
        tenant: TenantId,
        id: Uuid,
        change: &Change,
    ) -> StoreResult<Option<GrantRecord>>;
    /// Grants of a tenant, optionally only those of one role.
    async fn list_grants(
        &self,
        tenant: TenantId,
        role: Option<RoleId>,
    ) -> StoreResult<Vec<GrantRecord>>;
}

/// The namespaces of a warehouse and their properties (a `location` property is a claim under
/// the rules of [`locations`]).
#[async_trait]
pub trait NamespaceStore: Send + Sync {
    /// Creates a namespace; its parent must exist.
    async fn create_namespace(
        &self,
        warehouse: WarehouseId,
        ns: &NamespaceRecord,
    ) -> StoreResult<()>;
    async fn get_namespace(
        &self,
        warehouse: WarehouseId,
        ns: &NamespaceIdent,
    ) -> StoreResult<Option<NamespaceRecord>>;
    /// Direct children of `parent` (top-level namespaces when `None`).
    async fn list_namespaces(
        &self,
        warehouse: WarehouseId,
        parent: Option<&NamespaceIdent>,
        page: &PageRequest,
    ) -> StoreResult<Page<NamespaceIdent>>;
    /// Applies removals, then updates, atomically; returns the properties before and after.
    async fn update_namespace_properties(
        &self,
        warehouse: WarehouseId,
        ns: &NamespaceIdent,
        updates: &BTreeMap<String, String>,
        removals: &[String],
    ) -> StoreResult<(BTreeMap<String, String>, BTreeMap<String, String>)>;
    /// Drops an empty namespace (no child namespaces, tables or views).
    async fn drop_namespace(&self, warehouse: WarehouseId, ns: &NamespaceIdent) -> StoreResult<()>;
}

/// Live tables and views: their names, ids, locations (and staged creates' reservations) and
/// metadata pointers.
/// Its writes that other replicas must hear of take the `change` their caller publishes (see the
/// module's opening).
#[async_trait]
pub trait TabularStore: Send + Sync {
    /// Creates a table or view; its namespace must exist, its name be free for both kinds, its id
    /// be no other live or dropped object's, and its location fit the rules of [`locations`]
    /// (a staged create's own reservation gives way to it).
    async fn create_tabular(
        &self,
        warehouse: WarehouseId,
        record: &TabularRecord,
    ) -> StoreResult<()>;
    /// Reserves a staged create's location (a [`locations::LocationClaim::staged`] claim) under
    /// the rules of [`locations`]: `LocationTaken` when it overlaps any other claim.
    async fn reserve_location(
        &self,
        warehouse: WarehouseId,
        claim: &locations::LocationClaim,
    ) -> StoreResult<()>;
    /// Releases every reservation that lapsed at `now_ms`; returns how many.
    async fn release_lapsed_reservations(&self, now_ms: i64) -> StoreResult<u64>;
    /// The table or view with this name, whichever kind it is.
    async fn get_tabular(
        &self,
        warehouse: WarehouseId,
        ident: &TableIdent,
    ) -> StoreResult<Option<TabularRecord>>;
    /// The table or view with this id, whichever kind it is, under its current name.
    async fn get_tabular_by_id(
        &self,
        warehouse: WarehouseId,
        id: TabularId,
    ) -> StoreResult<Option<TabularRecord>>;
    async fn list_tabulars(
        &self,
        warehouse: WarehouseId,
        ns: &NamespaceIdent,
        kind: TabularKind,
        page: &PageRequest,
    ) -> StoreResult<Page<TableIdent>>;
    /// Swaps every metadata pointer, or none: a `Conflict` names the first that moved.
    async fn swap_metadata(
        &self,
        warehouse: WarehouseId,
        kind: TabularKind,
        swaps: &[MetadataSwap],
    ) -> StoreResult<()>;
    async fn drop_tabular(
        &self,
        warehouse: WarehouseId,
        kind: TabularKind,
        ident: &TableIdent,
    ) -> StoreResult<TabularRecord>;
    /// Moves a table or view to a new name, possibly in another namespace of the same warehouse.
    async fn rename_tabular(
        &self,
        warehouse: WarehouseId,
        kind: TabularKind,
        from: &TableIdent,
        to: &TableIdent,
        change: &Change,
    ) -> StoreResult<()>;
}

/// Each warehouse's recycle bin: dropped tables and views until they are restored or forgotten.
/// Its writes that other replicas must hear of take the `change` their caller publishes (see the
/// module's opening).
#[async_trait]
pub trait RecycleBinStore: Send + Sync {
    /// Moves a table or view into its warehouse's recycle bin (see [`DroppedRecord`]): gone from
    /// its namespace, its location still claimed if `purge_files`. `dropped_at_ms` and
    /// `expires_at_ms` as there (the caller reads the clock once for both).
    async fn bin_tabular(
        &self,
        warehouse: WarehouseId,
        kind: TabularKind,
        ident: &TableIdent,
        dropped_at_ms: i64,
        expires_at_ms: i64,
        purge_files: bool,
    ) -> StoreResult<DroppedRecord>;
    /// A warehouse's recycle bin, oldest drop first.
    async fn list_dropped(&self, warehouse: WarehouseId) -> StoreResult<Vec<DroppedRecord>>;
    async fn get_dropped(
        &self,
        warehouse: WarehouseId,
        id: TabularId,
    ) -> StoreResult<Option<DroppedRecord>>;
    /// Brings a dropped table or view back as `ident`, with its id, location and metadata file:
    /// its namespace must exist, the name be free, the location still fit the rules of
    /// [`locations`] there and the id be no other table's; `Purging` once its purge is due at
    /// `now_ms`. Atomic: refused, it stays in the bin.
    async fn restore_dropped(
        &self,
        warehouse: WarehouseId,
        id: TabularId,
        ident: &TableIdent,
        now_ms: i64,
        change: &Change,
    ) -> StoreResult<TabularRecord>;
    /// Makes a dropped object leave the bin at `expires_at_ms` (now, for a purge asked for),
    /// deleting its files first when `purge_files`: `LocationTaken` when another owner holds its
    /// location (an entry from before bin entries kept their claims).
    async fn expire_dropped(
        &self,
        warehouse: WarehouseId,
        id: TabularId,
        expires_at_ms: i64,
        purge_files: bool,
    ) -> StoreResult<DroppedRecord>;
    /// Leases one dropped object whose time is up at `now_ms` and whose lease (if any) ran out,
    /// until `lease_until_ms`, in none of the warehouses `except`: of replicas asking at once, one
    /// gets each object.
    async fn lease_expired_dropped(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        except: &[WarehouseId],
    ) -> StoreResult<Option<DroppedRecord>>;
    /// Forgets a dropped object for good, and releases its location (never a live object's).
    async fn forget_dropped(&self, warehouse: WarehouseId, id: TabularId) -> StoreResult<()>;
}

/// Secrets kept sealed: tenants' named storage credentials and the token-signing keys.
/// Its writes that other replicas must hear of take the `change` their caller publishes (see the
/// module's opening).
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Creates, or with `replace` replaces, a tenant's named storage credential.
    async fn put_storage_credential(
        &self,
        credential: &StorageCredentialRecord,
        replace: bool,
        change: &Change,
    ) -> StoreResult<()>;
    async fn get_storage_credential(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> StoreResult<Option<StorageCredentialRecord>>;
    async fn list_storage_credentials(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<StorageCredentialRecord>>;
    async fn delete_storage_credential(
        &self,
        tenant: TenantId,
        name: &str,
        change: &Change,
    ) -> StoreResult<()>;
    /// Inserts or replaces a signing key (by kid).
    async fn put_signing_key(&self, key: &SigningKeyRecord, change: &Change) -> StoreResult<()>;
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    async fn delete_signing_key(&self, kid: &str, change: &Change) -> StoreResult<()>;
}

/// The audit log: management changes and authorization denials, per tenant.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// A tenant's newest events first, at most `limit`.
    async fn list_audit(&self, tenant: TenantId, limit: usize) -> StoreResult<Vec<AuditEvent>>;
    /// Deletes events older than `before_ms`; returns how many.
    async fn purge_audit(&self, before_ms: i64) -> StoreResult<u64>;
}

/// The answers given to requests that carried an `Idempotency-Key`, and reservations of keys
/// still being worked on.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    async fn put_idempotency(&self, key: &str, record: &IdempotencyRecord) -> StoreResult<()>;
    async fn get_idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>>;
    /// Reserves `key` with `pending` unless a record that has not expired at `now_ms` holds it,
    /// which is returned instead. Atomic: of two concurrent reservations of one key, one wins.
    async fn reserve_idempotency(
        &self,
        key: &str,
        pending: &IdempotencyRecord,
        now_ms: i64,
    ) -> StoreResult<Option<IdempotencyRecord>>;
    /// Forgets a key (a reservation whose work failed with a server error).
    async fn delete_idempotency(&self, key: &str) -> StoreResult<()>;
    /// Deletes records that expired before `now_ms`; returns how many.
    async fn purge_idempotency(&self, now_ms: i64) -> StoreResult<u64>;
}

/// The store as a whole: readiness, snapshots, and letting go at shutdown.
#[async_trait]
pub trait StoreLifecycle: Send + Sync {
    /// True when the store can serve requests (for readiness).
    async fn ping(&self) -> StoreResult<()>;
    /// A consistent snapshot of the whole catalog, taken while it serves (writes wait for it), in
    /// the [`sled_snapshot`] format; `None` for a backend backed up with its own tools.
    async fn snapshot(&self) -> StoreResult<Option<Vec<u8>>>;
    /// Makes everything acknowledged durable and lets go of the backend (at shutdown, after the
    /// last request). Idempotent: a second call finds nothing left to do.
    async fn close(&self) -> StoreResult<()>;
}

/// The catalog's whole state: every area's trait. Methods that take `warehouse` act inside that
/// warehouse only. A service that uses one or two areas takes their traits instead
/// (`Arc<dyn CatalogStore>` coerces to `Arc<dyn IdempotencyStore>` and the like).
pub trait CatalogStore:
    TenancyStore
    + AccessStore
    + NamespaceStore
    + TabularStore
    + RecycleBinStore
    + SecretStore
    + AuditStore
    + IdempotencyStore
    + StoreLifecycle
    + 'static
{
}

impl<T> CatalogStore for T where
    T: TenancyStore
        + AccessStore
        + NamespaceStore
        + TabularStore
        + RecycleBinStore
        + SecretStore
        + AuditStore
        + IdempotencyStore
        + StoreLifecycle
        + ?Sized
        + 'static
{
}

pub use crate::domain::now_ms;
