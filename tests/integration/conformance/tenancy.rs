//! Tenants, warehouses, principals, signing keys and the audit trail.

use std::sync::Arc;

use floe::changes::Change;
use floe::storage::StorageProfile;
use floe::store::*;
use uuid::Uuid;

use super::fixtures::*;

pub async fn tenants_and_warehouses(store: Arc<dyn CatalogStore>) {
    let tenant = TenantRecord {
        id: floe::domain::TenantId::new_v4(),
        name: "acme".into(),
        created_at_ms: 1,
    };
    store
        .create_tenant(&tenant, &Change::Tenant { tenant: tenant.id })
        .await
        .unwrap();
    let dup = TenantRecord {
        id: floe::domain::TenantId::new_v4(),
        ..tenant.clone()
    };
    assert!(matches!(
        store
            .create_tenant(&dup, &Change::Tenant { tenant: dup.id })
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        store.get_tenant(tenant.id).await.unwrap(),
        Some(tenant.clone())
    );
    assert_eq!(
        store.get_tenant_by_name("acme").await.unwrap(),
        Some(tenant.clone())
    );
    assert_eq!(store.list_tenants().await.unwrap(), vec![tenant.clone()]);

    let mut wh = WarehouseRecord {
        id: floe::domain::WarehouseId::new_v4(),
        tenant_id: tenant.id,
        name: "sales".into(),
        storage: StorageProfile::Local {
            root: "file:///tmp/sales".into(),
        },
        created_at_ms: 1,
        credential: None,
        scan_planning_mode: None,
    };
    store
        .create_warehouse(&wh, &Change::Warehouse { warehouse: wh.id })
        .await
        .unwrap();
    let dup = WarehouseRecord {
        id: floe::domain::WarehouseId::new_v4(),
        ..wh.clone()
    };
    assert!(matches!(
        store
            .create_warehouse(&dup, &Change::Warehouse { warehouse: dup.id })
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        store
            .get_warehouse_by_name(tenant.id, "sales")
            .await
            .unwrap(),
        Some(wh.clone())
    );
    assert_eq!(
        store
            .get_warehouse_by_name(floe::domain::TenantId::new_v4(), "sales")
            .await
            .unwrap(),
        None
    );

    wh.name = "sales2".into();
    store
        .update_warehouse(&wh, &Change::Warehouse { warehouse: wh.id })
        .await
        .unwrap();
    assert_eq!(
        store
            .get_warehouse_by_name(tenant.id, "sales")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_warehouse(wh.id).await.unwrap(), Some(wh.clone()));
    assert_eq!(store.list_warehouses(tenant.id).await.unwrap(), vec![wh]);
}

pub async fn principals_by_client_id(store: Arc<dyn CatalogStore>) {
    let p = PrincipalRecord {
        id: floe::domain::PrincipalId::new_v4(),
        tenant_id: floe::domain::TenantId::new_v4(),
        name: "etl".into(),
        kind: PrincipalKind::Service,
        client_id: "client-1".into(),
        secret_hash: "$argon2id$...".into(),
        root: false,
        disabled: false,
        created_at_ms: 1,
        sessions_valid_from_ms: 0,
    };
    store
        .create_principal(&p, &Change::Principal { principal: p.id })
        .await
        .unwrap();
    assert_eq!(store.get_principal(p.id).await.unwrap(), Some(p.clone()));
    assert_eq!(
        store.get_principal_by_client_id("client-1").await.unwrap(),
        Some(p.clone())
    );
    let disabled = PrincipalRecord {
        disabled: true,
        ..p.clone()
    };
    store
        .update_principal(
            &disabled,
            &Change::Principal {
                principal: disabled.id,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_principal_by_client_id("client-1").await.unwrap(),
        Some(disabled)
    );
    let dup = PrincipalRecord {
        id: floe::domain::PrincipalId::new_v4(),
        ..p
    };
    assert!(matches!(
        store
            .create_principal(&dup, &Change::Principal { principal: dup.id })
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
}

pub async fn only_empty_warehouses_and_tenants_delete(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    let tenant = store.get_warehouse(wh).await.unwrap().unwrap().tenant_id;
    store
        .create_namespace(wh, &namespace(&["n"]))
        .await
        .unwrap();
    assert!(matches!(
        store
            .delete_warehouse(wh, &Change::Warehouse { warehouse: wh })
            .await,
        Err(StoreError::NotEmpty(..))
    ));
    assert!(matches!(
        store
            .delete_tenant(tenant, &Change::Tenant { tenant })
            .await,
        Err(StoreError::NotEmpty(..))
    ));
    store.drop_namespace(wh, &ns(&["n"])).await.unwrap();
    store
        .delete_warehouse(wh, &Change::Warehouse { warehouse: wh })
        .await
        .unwrap();
    assert!(store.get_warehouse(wh).await.unwrap().is_none());
    assert!(store.list_warehouses(tenant).await.unwrap().is_empty());
    store
        .create_principal(&principal(tenant, "gone"), &Change::Everything)
        .await
        .unwrap();
    store
        .rename_tenant(tenant, "renamed", &Change::Tenant { tenant })
        .await
        .unwrap();
    assert_eq!(
        store
            .get_tenant_by_name("renamed")
            .await
            .unwrap()
            .unwrap()
            .id,
        tenant
    );
    store
        .delete_tenant(tenant, &Change::Tenant { tenant })
        .await
        .unwrap();
    assert!(store.get_tenant(tenant).await.unwrap().is_none());
    assert!(
        store
            .get_principal_by_client_id("gone")
            .await
            .unwrap()
            .is_none(),
        "a tenant's principals go with it"
    );
    assert!(matches!(
        store
            .delete_tenant(tenant, &Change::Tenant { tenant })
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn audit_events_list_newest_first(store: Arc<dyn CatalogStore>) {
    let (tenant, other) = (
        floe::domain::TenantId::new_v4(),
        floe::domain::TenantId::new_v4(),
    );
    let event = |tenant, action: &str| AuditEvent {
        id: Uuid::now_v7(),
        tenant_id: tenant,
        at_ms: 1,
        actor: floe::domain::PrincipalId::new_v4(),
        action: action.into(),
        resource: "r".into(),
        outcome: "ok".into(),
    };
    for action in ["first", "second", "third"] {
        store.append_audit(&event(tenant, action)).await.unwrap();
    }
    store
        .append_audit(&event(other, "elsewhere"))
        .await
        .unwrap();
    let listed: Vec<String> = store
        .list_audit(tenant, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(listed, ["third", "second"]);
    assert_eq!(store.list_audit(other, 10).await.unwrap().len(), 1);
    let old = AuditEvent {
        at_ms: 0,
        ..event(tenant, "ancient")
    };
    store.append_audit(&old).await.unwrap();
    assert_eq!(
        store.purge_audit(1).await.unwrap(),
        1,
        "only the older event goes"
    );
    assert_eq!(store.list_audit(tenant, 10).await.unwrap().len(), 3);
}

pub async fn signing_keys_are_kept_in_order(store: Arc<dyn CatalogStore>) {
    let key = |kid: &str, at| SigningKeyRecord {
        kid: kid.into(),
        sealed_seed: "sealed".into(),
        created_at_ms: at,
        retired_at_ms: None,
    };
    store
        .put_signing_key(&key("b", 2), &Change::SigningKeys)
        .await
        .unwrap();
    store
        .put_signing_key(&key("a", 1), &Change::SigningKeys)
        .await
        .unwrap();
    store
        .put_signing_key(
            &SigningKeyRecord {
                retired_at_ms: Some(3),
                ..key("a", 1)
            },
            &Change::SigningKeys,
        )
        .await
        .unwrap();
    let keys = store.list_signing_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(keys[0].retired_at_ms, Some(3));
    store
        .delete_signing_key("a", &Change::SigningKeys)
        .await
        .unwrap();
    assert_eq!(store.list_signing_keys().await.unwrap().len(), 1);
}

pub async fn warehouses_are_isolated(store: Arc<dyn CatalogStore>) {
    let (a, b) = (
        seed_warehouse(store.as_ref()).await,
        seed_warehouse(store.as_ref()).await,
    );
    store.create_namespace(a, &namespace(&["n"])).await.unwrap();
    store
        .create_tabular(a, &tabular(TabularKind::Table, &ident(&["n"], "t"), "m"))
        .await
        .unwrap();
    assert!(store.get_namespace(b, &ns(&["n"])).await.unwrap().is_none());
    assert!(
        store
            .get_tabular(b, &ident(&["n"], "t"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .list_namespaces(b, None, &PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    store.create_namespace(b, &namespace(&["n"])).await.unwrap();
}
