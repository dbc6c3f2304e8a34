//! Namespaces in sled ([`NamespaceStore`]): each record counts its children, so a drop of a
//! non-empty namespace and a create inside one being dropped never both succeed; a `location`
//! property is claimed in the transaction that sets it.
//!
//! Owns: the `namespaces` tree and the child counts (also bumped by tables, views and restores).
//! Must not touch: tables and views but their parent's count.

use std::collections::BTreeMap;

use ::sled::transaction::{TransactionalTree, abort};
use async_trait::async_trait;

use super::claims::{claim_location, release_location};
use super::keys::{namespace_children_prefix, namespace_key};
use super::*;
use crate::domain::NamespaceIdent;
use crate::domain::WarehouseId;
use crate::store::locations::LocationClaim;

#[async_trait]
impl NamespaceStore for SledStore {
    async fn create_namespace(
        &self,
        warehouse: WarehouseId,
        ns: &NamespaceRecord,
    ) -> StoreResult<()> {
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
        warehouse: WarehouseId,
        ns: &NamespaceIdent,
    ) -> StoreResult<Option<NamespaceRecord>> {
        let stored: Option<StoredNamespace> =
            Self::get_json(&self.namespaces, &namespace_key(warehouse, ns))?;
        Ok(stored.map(|s| s.record))
    }

    async fn list_namespaces(
        &self,
        warehouse: WarehouseId,
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
        warehouse: WarehouseId,
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

    async fn drop_namespace(&self, warehouse: WarehouseId, ns: &NamespaceIdent) -> StoreResult<()> {
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
}

/// Adds `delta` to a namespace's child count inside a transaction; fails when it does not exist.
pub(super) fn bump_children(
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
