//! Warehouses of a tenant: created, renamed, given new storage or a new credential, deleted.
//! Whether a profile and its credential make sense is the storage's own rule
//! ([`crate::storage::check_storage`]); where local warehouses may live is decided here.

use super::{Admin, not_found};
use super::{AdminError, AdminResult};
use crate::changes::Change;
use crate::domain::TenantId;
use crate::domain::WarehouseId;
use crate::domain::{CredentialKind, ResourceName, ScanPlanningMode};
use crate::identity::Caller;
use crate::storage::StorageProfile;
use crate::storage::normalize_location;
use crate::store::StoreError;
use crate::store::{WarehouseRecord, now_ms};

/// Where a warehouse keeps its files, as asked.
// Made once per management request: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum NewStorage {
    /// A directory on the server: in its data directory unless the root principal names one.
    Local { root: Option<String> },
    /// A profile as given (cloud storage), checked by its kind's rules.
    Profile(StorageProfile),
}

/// Changes to a warehouse; `None` keeps what it has.
pub struct WarehouseChanges {
    pub name: Option<ResourceName>,
    pub storage: Option<NewStorage>,
    pub credential: Option<String>,
    /// Where engines plan scans; `Some(None)` unsets it.
    pub scan_planning_mode: Option<Option<ScanPlanningMode>>,
}

/// A warehouse to create, once its name is checked.
struct NewWarehouse {
    name: String,
    storage: NewStorage,
    credential: Option<String>,
    scan_planning_mode: Option<ScanPlanningMode>,
}

/// One warehouse and what recent calls said about reaching its upstreams.
pub struct WarehouseReachability {
    pub warehouse: WarehouseRecord,
    pub storage: crate::reachability::UpstreamRecord,
    pub token_service: crate::reachability::UpstreamRecord,
}

impl Admin {
    /// A new warehouse of `tenant`; its storage must fit its credential and claim a root no other
    /// warehouse (of any tenant) holds.
    pub async fn create_warehouse(
        &self,
        caller: &Caller,
        tenant: TenantId,
        name: ResourceName,
        storage: NewStorage,
        credential: Option<String>,
        scan_planning_mode: Option<ScanPlanningMode>,
    ) -> AdminResult<WarehouseRecord> {
        let name = name.into_string();
        let kind = self.credential_kind(tenant, credential.as_deref()).await?;
        let new = NewWarehouse {
            name,
            storage,
            credential,
            scan_planning_mode,
        };
        self.create_warehouse_with(caller, tenant, new, kind).await
    }

    /// [`Admin::create_warehouse`] once the credential's kind is known.
    async fn create_warehouse_with(
        &self,
        caller: &Caller,
        tenant: TenantId,
        new: NewWarehouse,
        kind: Option<CredentialKind>,
    ) -> AdminResult<WarehouseRecord> {
        let id = WarehouseId::now_v7();
        let record = WarehouseRecord {
            id,
            tenant_id: tenant,
            name: new.name,
            storage: self.storage_profile(caller, id, new.storage, kind)?,
            created_at_ms: now_ms(),
            credential: new.credential,
            scan_planning_mode: new.scan_planning_mode,
        };
        let change = Change::Warehouse { warehouse: id };
        self.store.create_warehouse(&record, &change).await?;
        self.changed(change).await;
        self.audit(
            caller,
            tenant,
            "create-warehouse",
            format!("warehouse {id}"),
        )
        .await;
        Ok(record)
    }

    /// A warehouse declared in the server's configuration, created or given the declared storage
    /// with the same checks and audit as the API's; `has_keys`: the configuration gives the
    /// server's S3 keys for it (they count as its credential). Another replica starting at the
    /// same time may create it first: its record is then the answer.
    pub async fn declare_warehouse(
        &self,
        caller: &Caller,
        tenant: TenantId,
        name: ResourceName,
        profile: StorageProfile,
        has_keys: bool,
    ) -> AdminResult<WarehouseRecord> {
        let name = name.into_string();
        let storage = match profile.local_root() {
            Some(root) => NewStorage::Local {
                root: Some(root.to_owned()),
            },
            None => NewStorage::Profile(profile),
        };
        let server_keys = has_keys.then_some(CredentialKind::S3AccessKey);
        match self.store.get_warehouse_by_name(tenant, &name).await? {
            Some(existing) => {
                let kind = match server_keys {
                    Some(kind) => Some(kind),
                    None => {
                        self.credential_kind(tenant, existing.credential.as_deref())
                            .await?
                    }
                };
                let storage = self.storage_profile(caller, existing.id, storage, kind)?;
                if existing.storage == storage {
                    return Ok(existing);
                }
                let changes = WarehouseChanges {
                    name: None,
                    storage: Some(NewStorage::Profile(storage)),
                    credential: None,
                    scan_planning_mode: None,
                };
                self.update_warehouse_with(caller, tenant, existing.id, changes, server_keys)
                    .await
            }
            None => match self
                .create_warehouse_with(
                    caller,
                    tenant,
                    NewWarehouse {
                        name: name.clone(),
                        storage,
                        credential: None,
                        scan_planning_mode: None,
                    },
                    server_keys,
                )
                .await
            {
                Err(AdminError::Store(StoreError::AlreadyExists(_))) => self
                    .store
                    .get_warehouse_by_name(tenant, &name)
                    .await?
                    .ok_or_else(|| not_found(&format!("warehouse '{name}'"))),
                created => created,
            },
        }
    }

    /// Every warehouse of `tenant` (the handler shows only those the caller may see).
    pub async fn warehouses(&self, tenant: TenantId) -> AdminResult<Vec<WarehouseRecord>> {
        Ok(self.store.list_warehouses(tenant).await?)
    }

    /// What this replica's recent calls said about reaching each of the tenant's warehouses'
    /// storage and token service.
    pub async fn warehouse_reachability(
        &self,
        tenant: TenantId,
    ) -> AdminResult<Vec<WarehouseReachability>> {
        use crate::reachability::Upstream;
        Ok(self
            .store
            .list_warehouses(tenant)
            .await?
            .into_iter()
            .map(|w| WarehouseReachability {
                storage: self.reachability.of(w.id, Upstream::Storage),
                token_service: self.reachability.of(w.id, Upstream::TokenService),
                warehouse: w,
            })
            .collect())
    }

    /// The tenant's warehouse `id`; 404 for a missing one or another tenant's.
    pub async fn warehouse(
        &self,
        tenant: TenantId,
        id: WarehouseId,
    ) -> AdminResult<WarehouseRecord> {
        self.store
            .get_warehouse(id)
            .await?
            .filter(|w| w.tenant_id == tenant)
            .ok_or_else(|| not_found(&format!("warehouse {id}")))
    }

    /// Renames a warehouse, gives it new storage or a new credential. The credential must fit the
    /// storage it will have; a warehouse holding namespaces keeps its root (409).
    pub async fn update_warehouse(
        &self,
        caller: &Caller,
        tenant: TenantId,
        id: WarehouseId,
        changes: WarehouseChanges,
    ) -> AdminResult<WarehouseRecord> {
        self.update_warehouse_with(caller, tenant, id, changes, None)
            .await
    }

    /// [`Admin::update_warehouse`]; with `server_keys`, the configuration gives the server's
    /// keys for the warehouse, and they count as its credential.
    async fn update_warehouse_with(
        &self,
        caller: &Caller,
        tenant: TenantId,
        id: WarehouseId,
        changes: WarehouseChanges,
        server_keys: Option<CredentialKind>,
    ) -> AdminResult<WarehouseRecord> {
        let mut wh = self.warehouse(tenant, id).await?;
        if let Some(name) = changes.name {
            wh.name = name.into_string();
        }
        if changes.credential.is_some() {
            wh.credential = changes.credential;
        }
        if let Some(mode) = changes.scan_planning_mode {
            wh.scan_planning_mode = mode;
        }
        let kind = match server_keys {
            Some(kind) => Some(kind),
            None => {
                self.credential_kind(tenant, wh.credential.as_deref())
                    .await?
            }
        };
        let storage = changes
            .storage
            .unwrap_or(NewStorage::Profile(wh.storage.clone()));
        wh.storage = self.storage_profile(caller, id, storage, kind)?;
        let change = Change::Warehouse { warehouse: id };
        self.store.update_warehouse(&wh, &change).await?;
        self.changed(change).await;
        self.audit(
            caller,
            tenant,
            "update-warehouse",
            format!("warehouse {id}"),
        )
        .await;
        Ok(wh)
    }

    /// Deletes a warehouse that holds no namespaces (409 otherwise).
    pub async fn delete_warehouse(
        &self,
        caller: &Caller,
        tenant: TenantId,
        id: WarehouseId,
    ) -> AdminResult<()> {
        self.warehouse(tenant, id).await?;
        let change = Change::Warehouse { warehouse: id };
        self.store.delete_warehouse(id, &change).await?;
        self.changed(change).await;
        self.audit(
            caller,
            tenant,
            "delete-warehouse",
            format!("warehouse {id}"),
        )
        .await;
        Ok(())
    }

    /// The kind of the tenant's credential `name` (`None` without a name); 404 when it does not
    /// exist.
    async fn credential_kind(
        &self,
        tenant: TenantId,
        name: Option<&str>,
    ) -> AdminResult<Option<CredentialKind>> {
        let Some(name) = name else {
            return Ok(None);
        };
        match self.store.get_storage_credential(tenant, name).await? {
            Some(c) => Ok(Some(c.kind)),
            None => Err(not_found(&format!("storage credential '{name}'"))),
        }
    }

    /// The profile a warehouse gets for `storage`: a local one in the server's data directory (or,
    /// for the root principal only, a directory of its choice), or a cloud one its kind accepts
    /// with a credential of `kind`.
    fn storage_profile(
        &self,
        caller: &Caller,
        id: WarehouseId,
        storage: NewStorage,
        kind: Option<CredentialKind>,
    ) -> AdminResult<StorageProfile> {
        let mut profile = match storage {
            NewStorage::Local { root: None } => StorageProfile::Local {
                root: format!(
                    "{}/{}",
                    self.local_warehouse_base.trim_end_matches('/'),
                    id.simple()
                ),
            },
            NewStorage::Local { root: Some(root) } => {
                if !caller.root {
                    return Err(AdminError::Forbidden("only the root principal may place a local warehouse in a directory of its choice; omit 'root'".into()));
                }
                let root = normalize_location(&root).map_err(AdminError::invalid)?;
                if !root.starts_with("file:///") {
                    return Err(AdminError::invalid(
                        "a local warehouse root must be file:///absolute/path",
                    ));
                }
                StorageProfile::Local { root }
            }
            NewStorage::Profile(profile) => profile,
        };
        crate::storage::check_storage(&mut profile, kind)?;
        Ok(profile)
    }
}
