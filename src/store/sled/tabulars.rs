//! Live tables and views in sled ([`TabularStore`]): records by name, the id index, location
//! claims, staged creates' reservations, and metadata pointer swaps.
//!
//! Owns: the `tabulars`, `tabular_ids` and `reservations` trees. Must not touch: the recycle bin
//! but the check that an id is no dropped object's.

use ::sled::transaction::{TransactionalTree, abort};
use async_trait::async_trait;

use super::claims::{claim_location, release_location};
use super::keys::{
    location_key, namespace_key, pair_key, tabular_id_key, tabular_key, tabular_prefix,
};
use super::namespaces::bump_children;
use super::*;
use crate::domain::WarehouseId;
use crate::domain::{NamespaceIdent, ObjectName, TableIdent};
use crate::store::locations::{LocationClaim, OwnerKind};

#[async_trait]
impl TabularStore for SledStore {
    async fn create_tabular(
        &self,
        warehouse: WarehouseId,
        record: &TabularRecord,
    ) -> StoreResult<()> {
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

    async fn reserve_location(
        &self,
        warehouse: WarehouseId,
        claim: &LocationClaim,
    ) -> StoreResult<()> {
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
            let warehouse = WarehouseId::from_slice(&key[..16]).map_err(backend)?;
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
        warehouse: WarehouseId,
        ident: &TableIdent,
    ) -> StoreResult<Option<TabularRecord>> {
        self.tabular_at(&tabular_key(warehouse, ident))
    }

    async fn get_tabular_by_id(
        &self,
        warehouse: WarehouseId,
        id: TabularId,
    ) -> StoreResult<Option<TabularRecord>> {
        match self
            .tabular_ids
            .get(tabular_id_key(warehouse, id))
            .map_err(backend)?
        {
            Some(key) => Ok(self.tabular_at(&key)?.filter(|record| record.id == id)),
            None => Ok(None),
        }
    }

    async fn list_tabulars(
        &self,
        warehouse: WarehouseId,
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
        warehouse: WarehouseId,
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
        warehouse: WarehouseId,
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
                    release_location(
                        locations,
                        below,
                        warehouse,
                        &record.location,
                        record.id.uuid(),
                    )?;
                    Ok(record)
                }),
        )?;
        self.durable().await?;
        Ok(record)
    }

    async fn rename_tabular(
        &self,
        warehouse: WarehouseId,
        kind: TabularKind,
        from: &TableIdent,
        to: &TableIdent,
        _change: &Change,
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
}

/// Takes table or view `ident` (of `kind`) out of its namespace inside a transaction: its name
/// and id are free again; its location claim is the caller's to release or keep.
pub(super) fn take_tabular(
    nss: &TransactionalTree,
    tabs: &TransactionalTree,
    ids: &TransactionalTree,
    warehouse: WarehouseId,
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
