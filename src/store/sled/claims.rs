//! Location and storage-root claims in sled, inside the transactions that make them: claiming,
//! releasing, and counting the claims that lie inside each location.
//!
//! Owns: the rules of [`crate::store::locations`] as sled applies them (`locations`,
//! `locations_below`, `warehouse_roots`, `warehouse_roots_below`). Must not touch: the records of
//! the owners (each area's file writes its own trees and calls here in the same transaction).

use ::sled::transaction::{TransactionalTree, abort};
use uuid::Uuid;

use super::keys::location_key;
use super::*;
use crate::domain::WarehouseId;
use crate::store::locations::{LocationClaim, enclosing, refusal};

pub(super) fn bump_below(below: &TransactionalTree, key: &[u8], delta: i64) -> TxResult<()> {
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

/// Claims a warehouse's storage root inside a transaction, or aborts with `StorageTaken` when
/// another warehouse's root equals it, lies inside it or encloses it.
pub(super) fn claim_root(
    roots: &TransactionalTree,
    below: &TransactionalTree,
    root: &str,
    owner: WarehouseId,
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
pub(super) fn release_root(
    roots: &TransactionalTree,
    below: &TransactionalTree,
    root: &str,
    owner: WarehouseId,
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
/// inside it, or encloses it without being its namespace (the rules of [`crate::store::locations`]). A
/// lapsed reservation, or the reservation of the staged create this claim commits, gives way.
pub(super) fn claim_location(
    claims: &TransactionalTree,
    below: &TransactionalTree,
    warehouse: WarehouseId,
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
pub(super) fn release_location(
    claims: &TransactionalTree,
    below: &TransactionalTree,
    warehouse: WarehouseId,
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
