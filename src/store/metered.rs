//! A [`CatalogStore`] wrapper that measures every call: `floe_store_seconds{op}` (a histogram)
//! and `floe_store_errors_total{op}`. Both backends run behind it.
//!
//! Owns: the metrics of store calls, one `impl` per area trait. Must not touch: what a call does
//! (each is handed to the store inside unchanged, its answer handed back unchanged).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use async_trait::async_trait;
use metrics::Histogram;
use uuid::Uuid;

use crate::domain::{PrincipalId, RoleId};
use crate::domain::{TenantId, WarehouseId};

use super::*;
use crate::domain::{NamespaceIdent, TableIdent};

/// Times each call of the store inside.
pub struct MeteredStore {
    inner: Arc<dyn CatalogStore>,
}

impl MeteredStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn CatalogStore>) -> Self {
        Self { inner }
    }
}

fn observe<T>(seconds: &Histogram, op: &'static str, started: Instant, result: &StoreResult<T>) {
    seconds.record(started.elapsed().as_secs_f64());
    // Expected outcomes (not found, conflicts, ...) are answers, not failures of the store.
    if let Err(StoreError::Backend(_)) = result {
        metrics::counter!("floe_store_errors_total", "op" => op).increment(1);
    }
}

/// One `impl` per area trait, each method timed and counted under its own name.
macro_rules! metered {
    ($(impl $area:ident { $(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)* })*) => {
        $(
            #[async_trait]
            impl $area for MeteredStore {
                $(
                    async fn $name(&self, $($arg: $ty),*) -> $ret {
                        // One handle per operation, looked up once.
                        static SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
                            metrics::histogram!("floe_store_seconds", "op" => stringify!($name))
                        });
                        let started = Instant::now();
                        let result = self.inner.$name($($arg),*).await;
                        observe(&SECONDS, stringify!($name), started, &result);
                        result
                    }
                )*
            }
        )*
    };
}

metered! {
impl TenancyStore {
    fn create_tenant(tenant: &TenantRecord, change: &Change) -> StoreResult<()>;
    fn get_tenant(id: TenantId) -> StoreResult<Option<TenantRecord>>;
    fn get_tenant_by_name(name: &str) -> StoreResult<Option<TenantRecord>>;
    fn list_tenants() -> StoreResult<Vec<TenantRecord>>;
    fn rename_tenant(id: TenantId, name: &str, change: &Change) -> StoreResult<()>;
    fn delete_tenant(id: TenantId, change: &Change) -> StoreResult<()>;
    fn create_warehouse(warehouse: &WarehouseRecord, change: &Change) -> StoreResult<()>;
    fn update_warehouse(warehouse: &WarehouseRecord, change: &Change) -> StoreResult<()>;
    fn get_warehouse(id: WarehouseId) -> StoreResult<Option<WarehouseRecord>>;
    fn get_warehouse_by_name(tenant: TenantId, name: &str) -> StoreResult<Option<WarehouseRecord>>;
    fn list_warehouses(tenant: TenantId) -> StoreResult<Vec<WarehouseRecord>>;
    fn delete_warehouse(id: WarehouseId, change: &Change) -> StoreResult<()>;
}
impl AccessStore {
    fn create_principal(principal: &PrincipalRecord, change: &Change) -> StoreResult<()>;
    fn update_principal(principal: &PrincipalRecord, change: &Change) -> StoreResult<()>;
    fn get_principal(id: PrincipalId) -> StoreResult<Option<PrincipalRecord>>;
    fn get_principal_by_client_id(client_id: &str) -> StoreResult<Option<PrincipalRecord>>;
    fn list_principals(tenant: TenantId) -> StoreResult<Vec<PrincipalRecord>>;
    fn delete_principal(id: PrincipalId, change: &Change) -> StoreResult<()>;
    fn create_role(role: &RoleRecord, change: &Change) -> StoreResult<()>;
    fn get_role(id: RoleId) -> StoreResult<Option<RoleRecord>>;
    fn list_roles(tenant: TenantId) -> StoreResult<Vec<RoleRecord>>;
    fn delete_role(id: RoleId, change: &Change) -> StoreResult<()>;
    fn assign_role(principal: PrincipalId, role: RoleId, change: &Change) -> StoreResult<()>;
    fn unassign_role(principal: PrincipalId, role: RoleId, change: &Change) -> StoreResult<()>;
    fn roles_of(principal: PrincipalId) -> StoreResult<Vec<RoleId>>;
    fn create_grant(grant: &GrantRecord, change: &Change) -> StoreResult<()>;
    fn delete_grant(tenant: TenantId, id: Uuid, change: &Change) -> StoreResult<Option<GrantRecord>>;
    fn list_grants(tenant: TenantId, role: Option<RoleId>) -> StoreResult<Vec<GrantRecord>>;
}
impl NamespaceStore {
    fn create_namespace(warehouse: WarehouseId, ns: &NamespaceRecord) -> StoreResult<()>;
    fn get_namespace(warehouse: WarehouseId, ns: &NamespaceIdent) -> StoreResult<Option<NamespaceRecord>>;
    fn list_namespaces(warehouse: WarehouseId, parent: Option<&NamespaceIdent>, page: &PageRequest) -> StoreResult<Page<NamespaceIdent>>;
    fn update_namespace_properties(warehouse: WarehouseId, ns: &NamespaceIdent, updates: &BTreeMap<String, String>, removals: &[String]) -> StoreResult<(BTreeMap<String, String>, BTreeMap<String, String>)>;
    fn drop_namespace(warehouse: WarehouseId, ns: &NamespaceIdent) -> StoreResult<()>;
}
impl TabularStore {
    fn create_tabular(warehouse: WarehouseId, record: &TabularRecord) -> StoreResult<()>;
    fn reserve_location(warehouse: WarehouseId, claim: &locations::LocationClaim) -> StoreResult<()>;
    fn release_lapsed_reservations(now_ms: i64) -> StoreResult<u64>;
    fn get_tabular(warehouse: WarehouseId, ident: &TableIdent) -> StoreResult<Option<TabularRecord>>;
    fn get_tabular_by_id(warehouse: WarehouseId, id: TabularId) -> StoreResult<Option<TabularRecord>>;
    fn list_tabulars(warehouse: WarehouseId, ns: &NamespaceIdent, kind: TabularKind, page: &PageRequest) -> StoreResult<Page<TableIdent>>;
    fn swap_metadata(warehouse: WarehouseId, kind: TabularKind, swaps: &[MetadataSwap]) -> StoreResult<()>;
    fn drop_tabular(warehouse: WarehouseId, kind: TabularKind, ident: &TableIdent) -> StoreResult<TabularRecord>;
    fn rename_tabular(warehouse: WarehouseId, kind: TabularKind, from: &TableIdent, to: &TableIdent, change: &Change) -> StoreResult<()>;
}
impl RecycleBinStore {
    fn bin_tabular(warehouse: WarehouseId, kind: TabularKind, ident: &TableIdent, dropped_at_ms: i64, expires_at_ms: i64, purge_files: bool) -> StoreResult<DroppedRecord>;
    fn list_dropped(warehouse: WarehouseId) -> StoreResult<Vec<DroppedRecord>>;
    fn get_dropped(warehouse: WarehouseId, id: TabularId) -> StoreResult<Option<DroppedRecord>>;
    fn restore_dropped(warehouse: WarehouseId, id: TabularId, ident: &TableIdent, now_ms: i64, change: &Change) -> StoreResult<TabularRecord>;
    fn expire_dropped(warehouse: WarehouseId, id: TabularId, expires_at_ms: i64, purge_files: bool) -> StoreResult<DroppedRecord>;
    fn lease_expired_dropped(now_ms: i64, lease_until_ms: i64, except: &[WarehouseId]) -> StoreResult<Option<DroppedRecord>>;
    fn forget_dropped(warehouse: WarehouseId, id: TabularId) -> StoreResult<()>;
}
impl SecretStore {
    fn put_storage_credential(credential: &StorageCredentialRecord, replace: bool, change: &Change) -> StoreResult<()>;
    fn get_storage_credential(tenant: TenantId, name: &str) -> StoreResult<Option<StorageCredentialRecord>>;
    fn list_storage_credentials(tenant: TenantId) -> StoreResult<Vec<StorageCredentialRecord>>;
    fn delete_storage_credential(tenant: TenantId, name: &str, change: &Change) -> StoreResult<()>;
    fn put_signing_key(key: &SigningKeyRecord, change: &Change) -> StoreResult<()>;
    fn list_signing_keys() -> StoreResult<Vec<SigningKeyRecord>>;
    fn delete_signing_key(kid: &str, change: &Change) -> StoreResult<()>;
}
impl AuditStore {
    fn append_audit(event: &AuditEvent) -> StoreResult<()>;
    fn list_audit(tenant: TenantId, limit: usize) -> StoreResult<Vec<AuditEvent>>;
    fn purge_audit(before_ms: i64) -> StoreResult<u64>;
}
impl IdempotencyStore {
    fn put_idempotency(key: &str, record: &IdempotencyRecord) -> StoreResult<()>;
    fn get_idempotency(key: &str) -> StoreResult<Option<IdempotencyRecord>>;
    fn reserve_idempotency(key: &str, pending: &IdempotencyRecord, now_ms: i64) -> StoreResult<Option<IdempotencyRecord>>;
    fn delete_idempotency(key: &str) -> StoreResult<()>;
    fn purge_idempotency(now_ms: i64) -> StoreResult<u64>;
}
impl StoreLifecycle {
    fn ping() -> StoreResult<()>;
    fn snapshot() -> StoreResult<Option<Vec<u8>>>;
    fn close() -> StoreResult<()>;
}
}
