//! The recycle bins in sled ([`RecycleBinStore`]): a dropped table or view keeps its id and its
//! location claim until it is restored or forgotten.
//!
//! Owns: the `dropped` tree. Must not touch: live tables and views but through the helpers of
//! [`super::tabulars`] inside its own transactions.

use ::sled::Transactional;
use ::sled::transaction::abort;
use async_trait::async_trait;

use super::claims::{claim_location, release_location};
use super::keys::{location_key, namespace_key, pair_key, tabular_id_key, tabular_key};
use super::namespaces::bump_children;
use super::tabulars::take_tabular;
use super::*;
use crate::domain::TableIdent;
use crate::domain::WarehouseId;
use crate::store::locations::{LocationClaim, refusal};

#[async_trait]
impl RecycleBinStore for SledStore {
    async fn bin_tabular(
        &self,
        warehouse: WarehouseId,
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

    async fn list_dropped(&self, warehouse: WarehouseId) -> StoreResult<Vec<DroppedRecord>> {
        let mut all = self
            .dropped
            .scan_prefix(warehouse.as_bytes())
            .map(|entry| decode::<DroppedRecord>(&entry.map_err(backend)?.1))
            .collect::<StoreResult<Vec<_>>>()?;
        all.sort_by_key(|d| (d.dropped_at_ms, d.tabular.id));
        Ok(all)
    }

    async fn get_dropped(
        &self,
        warehouse: WarehouseId,
        id: TabularId,
    ) -> StoreResult<Option<DroppedRecord>> {
        Self::get_json(&self.dropped, &pair_key(warehouse, id))
    }

    async fn restore_dropped(
        &self,
        warehouse: WarehouseId,
        id: TabularId,
        ident: &TableIdent,
        now_ms: i64,
        _change: &Change,
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
                    release_location(locations, below, warehouse, &record.location, id.uuid())?;
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
        warehouse: WarehouseId,
        id: TabularId,
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
                            Some(bytes) => tx_decode::<LocationClaim>(&bytes)?.owner == id.uuid(),
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
        except: &[WarehouseId],
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

    async fn forget_dropped(&self, warehouse: WarehouseId, id: TabularId) -> StoreResult<()> {
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
                            id.uuid(),
                        )?;
                    }
                    bin.remove(key.as_slice())?;
                    Ok(())
                }),
        )?;
        self.durable().await
    }
}
