//! One-off upgrades of a sled store written by an earlier release, each run once at open and
//! marked done in `meta`: location claims, the id index and storage-root claims, and the claims
//! of recycle-bin entries.
//!
//! Owns: those backfills and their `meta` keys. Must not touch: anything a running store writes
//! (they run before the store serves).

use crate::domain::WarehouseId;

use super::claims::{claim_location, claim_root};
use super::keys::{location_key, tabular_id_key};
use super::*;
use crate::store::locations::LocationClaim;
use ::sled::Transactional;

/// The `meta` key set once every existing table and view has its location claimed.
const LOCATIONS_BACKFILLED: &[u8] = b"locations-v1";

/// The `meta` key set once every table and view is in `tabular_ids` and every warehouse's root in
/// `warehouse_roots`.
const IDS_AND_ROOTS_BACKFILLED: &[u8] = b"ids-and-roots-v1";

/// The `meta` key set once every recycle-bin entry holds its location claim.
const BIN_CLAIMS_BACKFILLED: &[u8] = b"bin-claims-v1";

impl SledStore {
    /// Claims the locations of recycle-bin entries dropped without purge before every bin entry
    /// kept its claim (once). An entry whose location another owner took meanwhile is left
    /// unclaimed, and logged: a purge of it is refused.
    pub(super) fn backfill_bin_claims(self) -> StoreResult<Self> {
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
    pub(super) fn backfill_ids_and_roots(self) -> StoreResult<Self> {
        self.once(IDS_AND_ROOTS_BACKFILLED, Self::index_ids_and_claim_roots)
    }

    fn index_ids_and_claim_roots(&self) -> StoreResult<()> {
        for entry in self.tabulars.iter() {
            let (key, value) = entry.map_err(backend)?;
            let record: TabularRecord = decode(&value)?;
            let warehouse = WarehouseId::from_slice(&key[..16]).map_err(backend)?;
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
    pub(super) fn backfill_locations(self) -> StoreResult<Self> {
        self.once(LOCATIONS_BACKFILLED, Self::claim_existing_locations)
    }

    fn claim_existing_locations(&self) -> StoreResult<()> {
        let mut claims: Vec<(WarehouseId, LocationClaim)> = Vec::new();
        for entry in self.tabulars.iter() {
            let (key, value) = entry.map_err(backend)?;
            let record: TabularRecord = decode(&value)?;
            claims.push((
                WarehouseId::from_slice(&key[..16]).map_err(backend)?,
                LocationClaim::of_tabular(&record),
            ));
        }
        for entry in self.namespaces.iter() {
            let (key, value) = entry.map_err(backend)?;
            let stored: StoredNamespace = decode(&value)?;
            if let Some(claim) = LocationClaim::of_namespace(&stored.record) {
                claims.push((WarehouseId::from_slice(&key[..16]).map_err(backend)?, claim));
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
}
