//! What the checks build their stores from: records, a seeded warehouse, claims.

use std::collections::BTreeMap;

use floe::changes::Change;
use floe::domain::{NamespaceIdent, ObjectName, TableIdent};
use floe::domain::{TenantId, WarehouseId};
use floe::storage::StorageProfile;
use floe::store::*;
use uuid::Uuid;

pub fn ns(parts: &[&str]) -> NamespaceIdent {
    NamespaceIdent::new(parts.iter().map(|s| s.to_string()).collect()).unwrap()
}

/// A table or view name in namespace `parts`.
pub fn ident(parts: &[&str], name: &str) -> TableIdent {
    TableIdent::new(ns(parts), ObjectName::new(name).unwrap())
}

/// A namespace record without properties.
pub fn namespace(parts: &[&str]) -> NamespaceRecord {
    NamespaceRecord {
        id: Uuid::new_v4(),
        ident: ns(parts),
        properties: BTreeMap::new(),
        created_at_ms: 1,
    }
}

/// A table or view record with a fresh id and location.
pub fn tabular(kind: TabularKind, id: &TableIdent, metadata: &str) -> TabularRecord {
    TabularRecord {
        id: floe::domain::TabularId::new_v4(),
        kind,
        ident: id.clone(),
        location: format!("file:///wh/{}", Uuid::new_v4()),
        metadata_location: metadata.to_owned(),
        created_at_ms: 1,
    }
}

/// A tenant with one warehouse; returns the warehouse id.
pub async fn seed_warehouse(store: &dyn CatalogStore) -> WarehouseId {
    let tenant = TenantRecord {
        id: TenantId::new_v4(),
        name: format!("t-{}", Uuid::new_v4()),
        created_at_ms: 1,
    };
    store
        .create_tenant(&tenant, &Change::Tenant { tenant: tenant.id })
        .await
        .unwrap();
    let wh = WarehouseRecord {
        id: WarehouseId::new_v4(),
        tenant_id: tenant.id,
        name: "wh".into(),
        storage: StorageProfile::Local {
            root: format!("file:///tmp/wh-{}", Uuid::new_v4()),
        },
        created_at_ms: 1,
        credential: None,
        scan_planning_mode: None,
    };
    store
        .create_warehouse(&wh, &Change::Warehouse { warehouse: wh.id })
        .await
        .unwrap();
    wh.id
}

/// An enabled human principal of `tenant`, named and identified by `client_id`.
pub fn principal(tenant: TenantId, client_id: &str) -> PrincipalRecord {
    PrincipalRecord {
        id: floe::domain::PrincipalId::new_v4(),
        tenant_id: tenant,
        name: client_id.into(),
        kind: PrincipalKind::Human,
        client_id: client_id.into(),
        secret_hash: String::new(),
        root: false,
        disabled: false,
        created_at_ms: 1,
        sessions_valid_from_ms: 0,
    }
}

pub fn at(kind: TabularKind, id: &TableIdent, location: &str) -> TabularRecord {
    TabularRecord {
        location: location.to_owned(),
        ..tabular(kind, id, &format!("{location}/metadata/00000.json"))
    }
}

pub async fn place(
    store: &dyn CatalogStore,
    warehouse: WarehouseId,
    kind: TabularKind,
    id: &TableIdent,
    location: &str,
) -> StoreResult<()> {
    store
        .create_tabular(warehouse, &at(kind, id, location))
        .await
}

pub fn located(parts: &[&str], location: &str) -> NamespaceRecord {
    let mut record = namespace(parts);
    record
        .properties
        .insert("location".into(), location.to_owned());
    record
}

pub fn taken(r: StoreResult<()>) -> bool {
    matches!(r, Err(StoreError::LocationTaken(_)))
}

/// Whether a new table `name` at `location` is refused because the location is taken.
pub async fn location_taken(
    store: &dyn CatalogStore,
    wh: WarehouseId,
    name: &TableIdent,
    location: &str,
) -> bool {
    taken(place(store, wh, TabularKind::Table, name, location).await)
}

pub fn local_warehouse(tenant: TenantId, name: &str, root: &str) -> WarehouseRecord {
    WarehouseRecord {
        id: WarehouseId::new_v4(),
        tenant_id: tenant,
        name: name.into(),
        storage: StorageProfile::Local {
            root: root.to_owned(),
        },
        credential: None,
        scan_planning_mode: None,
        created_at_ms: 1,
    }
}

pub async fn tenant(store: &dyn CatalogStore) -> TenantId {
    let t = TenantRecord {
        id: TenantId::new_v4(),
        name: format!("t-{}", Uuid::new_v4()),
        created_at_ms: 1,
    };
    store
        .create_tenant(&t, &Change::Tenant { tenant: t.id })
        .await
        .unwrap();
    t.id
}

pub fn storage_taken(r: StoreResult<()>) -> bool {
    matches!(r, Err(StoreError::StorageTaken(_)))
}

/// A fresh warehouse holding namespace `n` and table `n.t` at `file:///wh/n/t`.
pub async fn warehouse_with_table(store: &dyn CatalogStore) -> (WarehouseId, TableIdent) {
    let wh = seed_warehouse(store).await;
    store
        .create_namespace(wh, &namespace(&["n"]))
        .await
        .unwrap();
    let t = ident(&["n"], "t");
    place(store, wh, TabularKind::Table, &t, "file:///wh/n/t")
        .await
        .unwrap();
    (wh, t)
}
