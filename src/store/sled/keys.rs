//! How the sled store keys its records: namespaces, tables and views, pairs of ids, names unique
//! in a tenant, and location claims (the layout is described in [`super`]).
//!
//! Owns: the byte layout of every key. Must not touch: values, transactions, or the trees
//! themselves.

use uuid::Uuid;

use crate::domain::TabularId;
use crate::domain::{NamespaceIdent, TableIdent};
use crate::domain::{TenantId, WarehouseId};

pub(super) fn join_levels(parts: &[String]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

pub(super) fn namespace_key(warehouse: WarehouseId, ns: &NamespaceIdent) -> Vec<u8> {
    let mut key = warehouse.as_bytes().to_vec();
    key.push(ns.parts().len() as u8);
    key.extend(join_levels(ns.parts()));
    key
}

pub(super) fn namespace_children_prefix(
    warehouse: WarehouseId,
    parent: Option<&NamespaceIdent>,
) -> Vec<u8> {
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

pub(super) fn tabular_prefix(warehouse: WarehouseId, ns: &NamespaceIdent) -> Vec<u8> {
    let mut key = warehouse.as_bytes().to_vec();
    key.extend(join_levels(ns.parts()));
    key.extend([0, 0]);
    key
}

pub(super) fn tabular_key(warehouse: WarehouseId, ident: &TableIdent) -> Vec<u8> {
    let mut key = tabular_prefix(warehouse, &ident.namespace);
    key.extend(ident.name.as_str().as_bytes());
    key
}

pub(super) fn pair_key(a: impl AsRef<[u8]>, b: impl AsRef<[u8]>) -> Vec<u8> {
    [a.as_ref(), b.as_ref()].concat()
}

pub(super) fn grant_key(tenant: TenantId, grant: Uuid) -> Vec<u8> {
    pair_key(tenant, grant)
}

/// `tenant(16) | name`: unique names inside a tenant (warehouses, roles).
pub(super) fn warehouse_name_key(tenant: TenantId, name: &str) -> Vec<u8> {
    let mut key = tenant.as_bytes().to_vec();
    key.extend(name.as_bytes());
    key
}

/// `warehouse(16) | location`: the key of a location's claim and of its count of claims inside.
pub(super) fn location_key(warehouse: WarehouseId, location: &str) -> Vec<u8> {
    let mut key = warehouse.as_bytes().to_vec();
    key.extend(location.as_bytes());
    key
}

/// `warehouse(16) | id(16)`: the key of a table's or view's entry in `tabular_ids`.
pub(super) fn tabular_id_key(warehouse: WarehouseId, id: TabularId) -> Vec<u8> {
    pair_key(warehouse, id)
}
