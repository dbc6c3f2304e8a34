//! One behavioural test suite for every [`CatalogStore`] backend.
//!
//! Each check takes a fresh, empty store and panics on a violation; `tests/integration/store_*.rs` run them all
//! against each backend, so sled and PostgreSQL are held to exactly the same contract.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use super::locations::LocationClaim;
use super::*;
use crate::domain::{NamespaceIdent, ObjectName, TableIdent};

/// One named check: it takes a fresh, empty store.
pub type Check = fn(Arc<dyn CatalogStore>) -> futures::future::BoxFuture<'static, ()>;

/// Every check in the suite, by name, for a test harness to run one by one.
pub fn checks() -> Vec<(&'static str, Check)> {
    use futures::FutureExt;
    vec![
        ("tenants_and_warehouses", |s| {
            tenants_and_warehouses(s).boxed()
        }),
        ("principals_by_client_id", |s| {
            principals_by_client_id(s).boxed()
        }),
        ("namespaces_nest_and_list", |s| {
            namespaces_nest_and_list(s).boxed()
        }),
        ("namespace_pages_are_stable", |s| {
            namespace_pages_are_stable(s).boxed()
        }),
        ("namespace_properties_update", |s| {
            namespace_properties_update(s).boxed()
        }),
        ("only_empty_namespaces_drop", |s| {
            only_empty_namespaces_drop(s).boxed()
        }),
        ("tables_and_views_share_names", |s| {
            tables_and_views_share_names(s).boxed()
        }),
        ("metadata_swap_is_compare_and_swap", |s| {
            metadata_swap_is_compare_and_swap(s).boxed()
        }),
        ("multi_table_swap_is_all_or_nothing", |s| {
            multi_table_swap_is_all_or_nothing(s).boxed()
        }),
        ("rename_moves_across_namespaces", |s| {
            rename_moves_across_namespaces(s).boxed()
        }),
        ("concurrent_swaps_lose_nothing", |s| {
            concurrent_swaps_lose_nothing(s).boxed()
        }),
        ("warehouses_are_isolated", |s| {
            warehouses_are_isolated(s).boxed()
        }),
        ("idempotency_records_expire", |s| {
            idempotency_records_expire(s).boxed()
        }),
        ("signing_keys_are_kept_in_order", |s| {
            signing_keys_are_kept_in_order(s).boxed()
        }),
        ("audit_events_list_newest_first", |s| {
            audit_events_list_newest_first(s).boxed()
        }),
        ("roles_grants_and_assignments", |s| {
            roles_grants_and_assignments(s).boxed()
        }),
        ("only_empty_warehouses_and_tenants_delete", |s| {
            only_empty_warehouses_and_tenants_delete(s).boxed()
        }),
        ("locations_never_overlap", |s| {
            locations_never_overlap(s).boxed()
        }),
        ("namespace_locations_hold_their_own", |s| {
            namespace_locations_hold_their_own(s).boxed()
        }),
        ("concurrent_claims_cannot_both_win", |s| {
            concurrent_claims_cannot_both_win(s).boxed()
        }),
        ("warehouse_storage_never_overlaps", |s| {
            warehouse_storage_never_overlaps(s).boxed()
        }),
        ("concurrent_warehouse_roots_cannot_both_win", |s| {
            concurrent_warehouse_roots_cannot_both_win(s).boxed()
        }),
        ("tables_are_found_by_id", |s| {
            tables_are_found_by_id(s).boxed()
        }),
        ("name_keyed_grants_upgrade_to_ids", |s| {
            name_keyed_grants_upgrade_to_ids(s).boxed()
        }),
        ("the_recycle_bin_keeps_a_location_until_it_forgets", |s| {
            the_recycle_bin_keeps_a_location_until_it_forgets(s).boxed()
        }),
        ("one_lease_per_expired_drop", |s| {
            one_lease_per_expired_drop(s).boxed()
        }),
        ("a_dropped_objects_id_stays_its_own", |s| {
            a_dropped_objects_id_stays_its_own(s).boxed()
        }),
        ("an_object_whose_purge_is_due_is_not_restored", |s| {
            an_object_whose_purge_is_due_is_not_restored(s).boxed()
        }),
        ("storage_stays_while_the_bin_holds_objects", |s| {
            storage_stays_while_the_bin_holds_objects(s).boxed()
        }),
        ("a_reservation_holds_its_location_for_its_commit", |s| {
            a_reservation_holds_its_location_for_its_commit(s).boxed()
        }),
        ("a_lapsed_reservation_holds_nothing", |s| {
            a_lapsed_reservation_holds_nothing(s).boxed()
        }),
    ]
}

fn ns(parts: &[&str]) -> NamespaceIdent {
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
        id: Uuid::new_v4(),
        kind,
        ident: id.clone(),
        location: format!("file:///wh/{}", Uuid::new_v4()),
        metadata_location: metadata.to_owned(),
        created_at_ms: 1,
    }
}

/// A tenant with one warehouse; returns the warehouse id.
pub async fn seed_warehouse(store: &dyn CatalogStore) -> Uuid {
    let tenant = TenantRecord {
        id: Uuid::new_v4(),
        name: format!("t-{}", Uuid::new_v4()),
        created_at_ms: 1,
    };
    store.create_tenant(&tenant).await.unwrap();
    let wh = WarehouseRecord {
        id: Uuid::new_v4(),
        tenant_id: tenant.id,
        name: "wh".into(),
        storage: StorageProfile::Local {
            root: format!("file:///tmp/wh-{}", Uuid::new_v4()),
        },
        created_at_ms: 1,
        credential: None,
    };
    store.create_warehouse(&wh).await.unwrap();
    wh.id
}

async fn tenants_and_warehouses(store: Arc<dyn CatalogStore>) {
    let tenant = TenantRecord {
        id: Uuid::new_v4(),
        name: "acme".into(),
        created_at_ms: 1,
    };
    store.create_tenant(&tenant).await.unwrap();
    let dup = TenantRecord {
        id: Uuid::new_v4(),
        ..tenant.clone()
    };
    assert!(matches!(
        store.create_tenant(&dup).await,
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
        id: Uuid::new_v4(),
        tenant_id: tenant.id,
        name: "sales".into(),
        storage: StorageProfile::Local {
            root: "file:///tmp/sales".into(),
        },
        created_at_ms: 1,
        credential: None,
    };
    store.create_warehouse(&wh).await.unwrap();
    let dup = WarehouseRecord {
        id: Uuid::new_v4(),
        ..wh.clone()
    };
    assert!(matches!(
        store.create_warehouse(&dup).await,
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
            .get_warehouse_by_name(Uuid::new_v4(), "sales")
            .await
            .unwrap(),
        None
    );

    wh.name = "sales2".into();
    store.update_warehouse(&wh).await.unwrap();
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

async fn principals_by_client_id(store: Arc<dyn CatalogStore>) {
    let p = PrincipalRecord {
        id: Uuid::new_v4(),
        tenant_id: Uuid::new_v4(),
        name: "etl".into(),
        kind: PrincipalKind::Service,
        client_id: "client-1".into(),
        secret_hash: "$argon2id$...".into(),
        root: false,
        disabled: false,
        created_at_ms: 1,
        sessions_valid_from_ms: 0,
    };
    store.create_principal(&p).await.unwrap();
    assert_eq!(store.get_principal(p.id).await.unwrap(), Some(p.clone()));
    assert_eq!(
        store.get_principal_by_client_id("client-1").await.unwrap(),
        Some(p.clone())
    );
    let disabled = PrincipalRecord {
        disabled: true,
        ..p.clone()
    };
    store.update_principal(&disabled).await.unwrap();
    assert_eq!(
        store.get_principal_by_client_id("client-1").await.unwrap(),
        Some(disabled)
    );
    let dup = PrincipalRecord {
        id: Uuid::new_v4(),
        ..p
    };
    assert!(matches!(
        store.create_principal(&dup).await,
        Err(StoreError::AlreadyExists(_))
    ));
}

async fn namespaces_nest_and_list(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    assert!(matches!(
        store.create_namespace(wh, &namespace(&["a", "b"])).await,
        Err(StoreError::NoSuchNamespace(_))
    ));
    for parts in [
        &["a"][..],
        &["a", "b"],
        &["a", "c"],
        &["a", "b", "x"],
        &["z"],
        &["ab"],
    ] {
        store.create_namespace(wh, &namespace(parts)).await.unwrap();
    }
    assert!(matches!(
        store.create_namespace(wh, &namespace(&["a"])).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let all = PageRequest::default();
    let top = store.list_namespaces(wh, None, &all).await.unwrap();
    assert_eq!(top.items, vec![ns(&["a"]), ns(&["ab"]), ns(&["z"])]);
    assert_eq!(top.next, None);
    let children = store
        .list_namespaces(wh, Some(&ns(&["a"])), &all)
        .await
        .unwrap();
    assert_eq!(children.items, vec![ns(&["a", "b"]), ns(&["a", "c"])]);
    let missing = store.list_namespaces(wh, Some(&ns(&["nope"])), &all).await;
    assert!(matches!(missing, Err(StoreError::NoSuchNamespace(_))));
    assert!(
        store
            .get_namespace(wh, &ns(&["a", "b", "x"]))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .get_namespace(wh, &ns(&["a", "x"]))
            .await
            .unwrap()
            .is_none()
    );
}

async fn namespace_pages_are_stable(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    for i in 0..25 {
        store
            .create_namespace(wh, &namespace(&[&format!("ns{i:02}")]))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut page = PageRequest {
        after: None,
        limit: Some(10),
    };
    loop {
        let got = store.list_namespaces(wh, None, &page).await.unwrap();
        assert!(got.items.len() <= 10);
        seen.extend(got.items);
        match got.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    let expected: Vec<_> = (0..25).map(|i| ns(&[&format!("ns{i:02}")])).collect();
    assert_eq!(seen, expected);
}

async fn namespace_properties_update(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    let mut rec = namespace(&["p"]);
    rec.properties.insert("owner".into(), "ann".into());
    rec.properties.insert("tier".into(), "gold".into());
    store.create_namespace(wh, &rec).await.unwrap();
    let updates = BTreeMap::from([("owner".to_string(), "bob".to_string())]);
    let (before, after) = store
        .update_namespace_properties(wh, &ns(&["p"]), &updates, &["tier".into(), "absent".into()])
        .await
        .unwrap();
    assert_eq!(before.get("tier").map(String::as_str), Some("gold"));
    assert_eq!(after, updates);
    let loaded = store.get_namespace(wh, &ns(&["p"])).await.unwrap().unwrap();
    assert_eq!(loaded.properties, updates);
    let missing = store
        .update_namespace_properties(wh, &ns(&["q"]), &updates, &[])
        .await;
    assert!(matches!(missing, Err(StoreError::NoSuchNamespace(_))));
}

async fn only_empty_namespaces_drop(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    store
        .create_namespace(wh, &namespace(&["a"]))
        .await
        .unwrap();
    store
        .create_namespace(wh, &namespace(&["a", "b"]))
        .await
        .unwrap();
    assert!(matches!(
        store.drop_namespace(wh, &ns(&["a"])).await,
        Err(StoreError::NamespaceNotEmpty(_))
    ));
    let t = ident(&["a", "b"], "t");
    store
        .create_tabular(wh, &tabular(TabularKind::Table, &t, "m0"))
        .await
        .unwrap();
    assert!(matches!(
        store.drop_namespace(wh, &ns(&["a", "b"])).await,
        Err(StoreError::NamespaceNotEmpty(_))
    ));
    store
        .drop_tabular(wh, TabularKind::Table, &t)
        .await
        .unwrap();
    store.drop_namespace(wh, &ns(&["a", "b"])).await.unwrap();
    store.drop_namespace(wh, &ns(&["a"])).await.unwrap();
    assert!(matches!(
        store.drop_namespace(wh, &ns(&["a"])).await,
        Err(StoreError::NoSuchNamespace(_))
    ));
    // A namespace dropped and created again starts empty.
    store
        .create_namespace(wh, &namespace(&["a"]))
        .await
        .unwrap();
    store.drop_namespace(wh, &ns(&["a"])).await.unwrap();
}

async fn tables_and_views_share_names(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    let t = ident(&["n"], "t");
    assert!(matches!(
        store
            .create_tabular(wh, &tabular(TabularKind::Table, &t, "m0"))
            .await,
        Err(StoreError::NoSuchNamespace(_))
    ));
    store
        .create_namespace(wh, &namespace(&["n"]))
        .await
        .unwrap();
    store
        .create_tabular(wh, &tabular(TabularKind::Table, &t, "m0"))
        .await
        .unwrap();
    let clash = store
        .create_tabular(wh, &tabular(TabularKind::View, &t, "v0"))
        .await;
    assert!(matches!(clash, Err(StoreError::AlreadyExists(_))));
    let v = ident(&["n"], "v");
    store
        .create_tabular(wh, &tabular(TabularKind::View, &v, "v0"))
        .await
        .unwrap();
    let all = PageRequest::default();
    let tables = store
        .list_tabulars(wh, &ns(&["n"]), TabularKind::Table, &all)
        .await
        .unwrap();
    assert_eq!(tables.items, vec![t.clone()]);
    let views = store
        .list_tabulars(wh, &ns(&["n"]), TabularKind::View, &all)
        .await
        .unwrap();
    assert_eq!(views.items, vec![v.clone()]);
    assert!(matches!(
        store.drop_tabular(wh, TabularKind::View, &t).await,
        Err(StoreError::NoSuchTabular(TabularKind::View, _))
    ));
    assert_eq!(
        store.get_tabular(wh, &t).await.unwrap().unwrap().kind,
        TabularKind::Table
    );
}

async fn metadata_swap_is_compare_and_swap(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    store
        .create_namespace(wh, &namespace(&["n"]))
        .await
        .unwrap();
    let t = ident(&["n"], "t");
    store
        .create_tabular(wh, &tabular(TabularKind::Table, &t, "m0"))
        .await
        .unwrap();
    let swap = |expected: &str, new: &str| {
        vec![MetadataSwap {
            ident: t.clone(),
            expected: expected.into(),
            new: new.into(),
        }]
    };
    store
        .swap_metadata(wh, TabularKind::Table, &swap("m0", "m1"))
        .await
        .unwrap();
    let stale = store
        .swap_metadata(wh, TabularKind::Table, &swap("m0", "m2"))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))));
    assert_eq!(
        store
            .get_tabular(wh, &t)
            .await
            .unwrap()
            .unwrap()
            .metadata_location,
        "m1"
    );
    let wrong_kind = store
        .swap_metadata(wh, TabularKind::View, &swap("m1", "m2"))
        .await;
    assert!(matches!(wrong_kind, Err(StoreError::NoSuchTabular(..))));
}

async fn multi_table_swap_is_all_or_nothing(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    store
        .create_namespace(wh, &namespace(&["n"]))
        .await
        .unwrap();
    let (a, b) = (ident(&["n"], "a"), ident(&["n"], "b"));
    store
        .create_tabular(wh, &tabular(TabularKind::Table, &a, "a0"))
        .await
        .unwrap();
    store
        .create_tabular(wh, &tabular(TabularKind::Table, &b, "b0"))
        .await
        .unwrap();
    let swaps = vec![
        MetadataSwap {
            ident: a.clone(),
            expected: "a0".into(),
            new: "a1".into(),
        },
        MetadataSwap {
            ident: b.clone(),
            expected: "stale".into(),
            new: "b1".into(),
        },
    ];
    assert!(matches!(
        store.swap_metadata(wh, TabularKind::Table, &swaps).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .get_tabular(wh, &a)
            .await
            .unwrap()
            .unwrap()
            .metadata_location,
        "a0"
    );
    let swaps = vec![
        MetadataSwap {
            ident: a.clone(),
            expected: "a0".into(),
            new: "a1".into(),
        },
        MetadataSwap {
            ident: b.clone(),
            expected: "b0".into(),
            new: "b1".into(),
        },
    ];
    store
        .swap_metadata(wh, TabularKind::Table, &swaps)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_tabular(wh, &a)
            .await
            .unwrap()
            .unwrap()
            .metadata_location,
        "a1"
    );
    assert_eq!(
        store
            .get_tabular(wh, &b)
            .await
            .unwrap()
            .unwrap()
            .metadata_location,
        "b1"
    );
}

async fn rename_moves_across_namespaces(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    store
        .create_namespace(wh, &namespace(&["src"]))
        .await
        .unwrap();
    store
        .create_namespace(wh, &namespace(&["dst"]))
        .await
        .unwrap();
    let (from, to) = (ident(&["src"], "t"), ident(&["dst"], "t2"));
    let rec = tabular(TabularKind::Table, &from, "m0");
    store.create_tabular(wh, &rec).await.unwrap();
    let missing_ns = store
        .rename_tabular(wh, TabularKind::Table, &from, &ident(&["nope"], "t"))
        .await;
    assert!(matches!(missing_ns, Err(StoreError::NoSuchNamespace(_))));
    store
        .rename_tabular(wh, TabularKind::Table, &from, &to)
        .await
        .unwrap();
    assert!(store.get_tabular(wh, &from).await.unwrap().is_none());
    let moved = store.get_tabular(wh, &to).await.unwrap().unwrap();
    assert_eq!((moved.id, moved.ident.clone()), (rec.id, to.clone()));
    // The source namespace is empty now, the destination is not.
    store.drop_namespace(wh, &ns(&["src"])).await.unwrap();
    assert!(matches!(
        store.drop_namespace(wh, &ns(&["dst"])).await,
        Err(StoreError::NamespaceNotEmpty(_))
    ));
    let other = ident(&["dst"], "other");
    store
        .create_tabular(wh, &tabular(TabularKind::Table, &other, "o0"))
        .await
        .unwrap();
    let taken = store
        .rename_tabular(wh, TabularKind::Table, &other, &to)
        .await;
    assert!(matches!(taken, Err(StoreError::AlreadyExists(_))));
    let gone = store
        .rename_tabular(wh, TabularKind::Table, &from, &ident(&["dst"], "x"))
        .await;
    assert!(matches!(gone, Err(StoreError::NoSuchTabular(..))));
}

async fn concurrent_swaps_lose_nothing(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    store
        .create_namespace(wh, &namespace(&["n"]))
        .await
        .unwrap();
    let t = ident(&["n"], "t");
    store
        .create_tabular(wh, &tabular(TabularKind::Table, &t, "v0"))
        .await
        .unwrap();
    let (tasks, per_task) = (16, 25);
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (store, t) = (store.clone(), t.clone());
        handles.push(tokio::spawn(async move {
            let mut won = 0;
            while won < per_task {
                let current = store
                    .get_tabular(wh, &t)
                    .await
                    .unwrap()
                    .unwrap()
                    .metadata_location;
                let next = format!("{current}>{task}");
                let swap = [MetadataSwap {
                    ident: t.clone(),
                    expected: current,
                    new: next,
                }];
                match store.swap_metadata(wh, TabularKind::Table, &swap).await {
                    Ok(()) => won += 1,
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => panic!("unexpected store error: {e}"),
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let chain = store
        .get_tabular(wh, &t)
        .await
        .unwrap()
        .unwrap()
        .metadata_location;
    assert_eq!(
        chain.matches('>').count(),
        tasks * per_task,
        "every won swap is in the chain"
    );
}

async fn warehouses_are_isolated(store: Arc<dyn CatalogStore>) {
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

async fn idempotency_records_expire(store: Arc<dyn CatalogStore>) {
    let rec = IdempotencyRecord {
        operation: "POST /x".into(),
        status: 200,
        body: "{}".into(),
        expires_at_ms: 100,
        pending: false,
    };
    store.put_idempotency("k1", &rec).await.unwrap();
    store
        .put_idempotency(
            "k2",
            &IdempotencyRecord {
                expires_at_ms: 300,
                ..rec.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_idempotency("k1").await.unwrap(),
        Some(rec.clone())
    );
    assert_eq!(store.purge_idempotency(200).await.unwrap(), 1);
    assert_eq!(store.get_idempotency("k1").await.unwrap(), None);
    assert!(store.get_idempotency("k2").await.unwrap().is_some());

    // A reservation wins once while the key is live; an expired record gives way.
    let pending = IdempotencyRecord {
        pending: true,
        expires_at_ms: 1_000,
        ..rec.clone()
    };
    assert_eq!(
        store
            .reserve_idempotency("k3", &pending, 500)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .reserve_idempotency("k3", &pending, 600)
            .await
            .unwrap(),
        Some(pending.clone())
    );
    assert_eq!(
        store
            .reserve_idempotency("k2", &pending, 250)
            .await
            .unwrap(),
        store.get_idempotency("k2").await.unwrap()
    );
    assert_eq!(
        store
            .reserve_idempotency("k2", &pending, 400)
            .await
            .unwrap(),
        None
    );
    store.delete_idempotency("k3").await.unwrap();
    assert_eq!(
        store
            .reserve_idempotency("k3", &pending, 700)
            .await
            .unwrap(),
        None
    );
    // Of many concurrent reservations of one key, exactly one wins.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (store, pending) = (store.clone(), pending.clone());
            tokio::spawn(async move { store.reserve_idempotency("k4", &pending, 500).await })
        })
        .collect();
    let mut winners = 0;
    for r in racers {
        winners += usize::from(r.await.unwrap().unwrap().is_none());
    }
    assert_eq!(winners, 1);
}

/// An enabled human principal of `tenant`, named and identified by `client_id`.
pub fn principal(tenant: Uuid, client_id: &str) -> PrincipalRecord {
    PrincipalRecord {
        id: Uuid::new_v4(),
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

async fn roles_grants_and_assignments(store: Arc<dyn CatalogStore>) {
    let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
    let role = RoleRecord {
        id: Uuid::new_v4(),
        tenant_id: t1,
        name: "readers".into(),
        created_at_ms: 1,
    };
    store.create_role(&role).await.unwrap();
    let dup = RoleRecord {
        id: Uuid::new_v4(),
        ..role.clone()
    };
    assert!(matches!(
        store.create_role(&dup).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let other_tenant = RoleRecord {
        id: Uuid::new_v4(),
        tenant_id: t2,
        ..role.clone()
    };
    store.create_role(&other_tenant).await.unwrap();
    assert_eq!(store.list_roles(t1).await.unwrap(), vec![role.clone()]);

    let p = principal(t1, "ann");
    store.create_principal(&p).await.unwrap();
    store.create_principal(&principal(t2, "bob")).await.unwrap();
    assert_eq!(store.list_principals(t1).await.unwrap(), vec![p.clone()]);
    store.assign_role(p.id, role.id).await.unwrap();
    assert_eq!(store.roles_of(p.id).await.unwrap(), vec![role.id]);

    let grant = |resource: GrantResource, privilege| GrantRecord {
        id: Uuid::new_v4(),
        tenant_id: t1,
        role_id: role.id,
        resource,
        privilege,
        created_at_ms: 1,
    };
    let g1 = grant(
        GrantResource::Tenant,
        crate::domain::access::Privilege::TenantAdmin,
    );
    let g2 = grant(
        GrantResource::Namespace {
            warehouse: Uuid::new_v4(),
            namespace: ns(&["a"]),
        },
        crate::domain::access::Privilege::TableReadData,
    );
    store.create_grant(&g1).await.unwrap();
    store.create_grant(&g2).await.unwrap();
    let again = GrantRecord {
        id: Uuid::new_v4(),
        ..g1.clone()
    };
    assert!(matches!(
        store.create_grant(&again).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(store.list_grants(t1, Some(role.id)).await.unwrap().len(), 2);
    assert!(store.list_grants(t2, None).await.unwrap().is_empty());
    assert_eq!(
        store.delete_grant(t2, g1.id).await.unwrap(),
        None,
        "another tenant's id does not match"
    );
    assert_eq!(store.delete_grant(t1, g1.id).await.unwrap(), Some(g1));
    assert_eq!(store.list_grants(t1, None).await.unwrap(), vec![g2]);

    store.unassign_role(p.id, role.id).await.unwrap();
    assert!(store.roles_of(p.id).await.unwrap().is_empty());
    assert!(matches!(
        store.unassign_role(p.id, role.id).await,
        Err(StoreError::NotFound(_))
    ));
    store.assign_role(p.id, role.id).await.unwrap();
    store.delete_role(role.id).await.unwrap();
    assert!(
        store.roles_of(p.id).await.unwrap().is_empty(),
        "deleting a role removes its assignments"
    );
    assert!(
        store.list_grants(t1, None).await.unwrap().is_empty(),
        "and its grants"
    );
    store.delete_principal(p.id).await.unwrap();
    assert_eq!(store.get_principal_by_client_id("ann").await.unwrap(), None);
}

async fn only_empty_warehouses_and_tenants_delete(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    let tenant = store.get_warehouse(wh).await.unwrap().unwrap().tenant_id;
    store
        .create_namespace(wh, &namespace(&["n"]))
        .await
        .unwrap();
    assert!(matches!(
        store.delete_warehouse(wh).await,
        Err(StoreError::NotEmpty(..))
    ));
    assert!(matches!(
        store.delete_tenant(tenant).await,
        Err(StoreError::NotEmpty(..))
    ));
    store.drop_namespace(wh, &ns(&["n"])).await.unwrap();
    store.delete_warehouse(wh).await.unwrap();
    assert!(store.get_warehouse(wh).await.unwrap().is_none());
    assert!(store.list_warehouses(tenant).await.unwrap().is_empty());
    store
        .create_principal(&principal(tenant, "gone"))
        .await
        .unwrap();
    store.rename_tenant(tenant, "renamed").await.unwrap();
    assert_eq!(
        store
            .get_tenant_by_name("renamed")
            .await
            .unwrap()
            .unwrap()
            .id,
        tenant
    );
    store.delete_tenant(tenant).await.unwrap();
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
        store.delete_tenant(tenant).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn audit_events_list_newest_first(store: Arc<dyn CatalogStore>) {
    let (tenant, other) = (Uuid::new_v4(), Uuid::new_v4());
    let event = |tenant, action: &str| AuditEvent {
        id: Uuid::now_v7(),
        tenant_id: tenant,
        at_ms: 1,
        actor: Uuid::new_v4(),
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

async fn signing_keys_are_kept_in_order(store: Arc<dyn CatalogStore>) {
    let key = |kid: &str, at| SigningKeyRecord {
        kid: kid.into(),
        sealed_seed: "sealed".into(),
        created_at_ms: at,
        retired_at_ms: None,
    };
    store.put_signing_key(&key("b", 2)).await.unwrap();
    store.put_signing_key(&key("a", 1)).await.unwrap();
    store
        .put_signing_key(&SigningKeyRecord {
            retired_at_ms: Some(3),
            ..key("a", 1)
        })
        .await
        .unwrap();
    let keys = store.list_signing_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(keys[0].retired_at_ms, Some(3));
    store.delete_signing_key("a").await.unwrap();
    assert_eq!(store.list_signing_keys().await.unwrap().len(), 1);
}

fn at(kind: TabularKind, id: &TableIdent, location: &str) -> TabularRecord {
    TabularRecord {
        location: location.to_owned(),
        ..tabular(kind, id, &format!("{location}/metadata/00000.json"))
    }
}

async fn place(
    store: &dyn CatalogStore,
    warehouse: Uuid,
    kind: TabularKind,
    id: &TableIdent,
    location: &str,
) -> StoreResult<()> {
    store
        .create_tabular(warehouse, &at(kind, id, location))
        .await
}

fn located(parts: &[&str], location: &str) -> NamespaceRecord {
    let mut record = namespace(parts);
    record
        .properties
        .insert("location".into(), location.to_owned());
    record
}

fn taken(r: StoreResult<()>) -> bool {
    matches!(r, Err(StoreError::LocationTaken(_)))
}

/// Whether a new table `name` at `location` is refused because the location is taken.
async fn location_taken(
    store: &dyn CatalogStore,
    wh: Uuid,
    name: &TableIdent,
    location: &str,
) -> bool {
    taken(place(store, wh, TabularKind::Table, name, location).await)
}

async fn locations_never_overlap(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    let other_wh = seed_warehouse(store.as_ref()).await;
    for w in [wh, other_wh] {
        store.create_namespace(w, &namespace(&["a"])).await.unwrap();
        store.create_namespace(w, &namespace(&["b"])).await.unwrap();
    }
    let t = |name: &str| ident(&["a"], name);
    let u = |name: &str| ident(&["b"], name);
    place(
        store.as_ref(),
        wh,
        TabularKind::Table,
        &t("t"),
        "file:///tmp/wh/x/t",
    )
    .await
    .unwrap();
    // The same location, one inside it, one around it: refused, for tables and views alike.
    for location in [
        "file:///tmp/wh/x/t",
        "file:///tmp/wh/x/t/in",
        "file:///tmp/wh/x",
    ] {
        assert!(
            taken(place(store.as_ref(), wh, TabularKind::Table, &u("u"), location).await),
            "{location}"
        );
        assert!(
            taken(place(store.as_ref(), wh, TabularKind::View, &u("v"), location).await),
            "{location}"
        );
        assert!(
            taken(store.create_namespace(wh, &located(&["c"], location)).await),
            "{location}"
        );
    }
    assert!(store.get_tabular(wh, &u("u")).await.unwrap().is_none());
    assert!(
        store
            .get_namespace(wh, &ns(&["c"]))
            .await
            .unwrap()
            .is_none()
    );
    // A sibling whose name merely starts the same is not inside.
    place(
        store.as_ref(),
        wh,
        TabularKind::Table,
        &u("u"),
        "file:///tmp/wh/x/t2",
    )
    .await
    .unwrap();
    // Another warehouse's locations are its own.
    place(
        store.as_ref(),
        other_wh,
        TabularKind::Table,
        &t("t"),
        "file:///tmp/wh/x/t",
    )
    .await
    .unwrap();
    // Dropping frees the location, and a rename keeps it owned.
    store
        .rename_tabular(wh, TabularKind::Table, &u("u"), &t("moved"))
        .await
        .unwrap();
    assert!(taken(
        place(
            store.as_ref(),
            wh,
            TabularKind::Table,
            &u("w"),
            "file:///tmp/wh/x/t2"
        )
        .await
    ));
    store
        .drop_tabular(wh, TabularKind::Table, &t("t"))
        .await
        .unwrap();
    place(
        store.as_ref(),
        wh,
        TabularKind::View,
        &u("again"),
        "file:///tmp/wh/x/t",
    )
    .await
    .unwrap();
}

async fn namespace_locations_hold_their_own(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    store
        .create_namespace(wh, &located(&["a"], "file:///tmp/wh/sales"))
        .await
        .unwrap();
    store
        .create_namespace(wh, &namespace(&["b"]))
        .await
        .unwrap();
    // Its own tables and child namespaces may lie inside; others' may not.
    place(
        store.as_ref(),
        wh,
        TabularKind::Table,
        &ident(&["a"], "t"),
        "file:///tmp/wh/sales/t-1",
    )
    .await
    .unwrap();
    store
        .create_namespace(wh, &located(&["a", "eu"], "file:///tmp/wh/sales/eu"))
        .await
        .unwrap();
    place(
        store.as_ref(),
        wh,
        TabularKind::View,
        &ident(&["a", "eu"], "v"),
        "file:///tmp/wh/sales/eu/v",
    )
    .await
    .unwrap();
    assert!(taken(
        place(
            store.as_ref(),
            wh,
            TabularKind::Table,
            &ident(&["b"], "t"),
            "file:///tmp/wh/sales/b-t"
        )
        .await
    ));
    assert!(taken(
        store
            .create_namespace(wh, &located(&["c"], "file:///tmp/wh/sales/c"))
            .await
    ));
    assert!(taken(
        store
            .create_namespace(wh, &located(&["c"], "file:///tmp/wh"))
            .await
    ));
    // Moving a namespace's location checks the new one and frees the old.
    let to = |loc: &str| BTreeMap::from([("location".to_owned(), loc.to_owned())]);
    let moved = store
        .update_namespace_properties(wh, &ns(&["b"]), &to("file:///tmp/wh/sales/x"), &[])
        .await;
    assert!(
        matches!(moved, Err(StoreError::LocationTaken(_))),
        "{moved:?}"
    );
    store
        .update_namespace_properties(wh, &ns(&["b"]), &to("file:///tmp/wh/bought"), &[])
        .await
        .unwrap();
    store
        .update_namespace_properties(wh, &ns(&["b"]), &to("file:///tmp/wh/bought2"), &[])
        .await
        .unwrap();
    store
        .create_namespace(wh, &located(&["d"], "file:///tmp/wh/bought"))
        .await
        .unwrap();
    store
        .update_namespace_properties(wh, &ns(&["d"]), &BTreeMap::new(), &["location".to_owned()])
        .await
        .unwrap();
    store
        .create_namespace(wh, &located(&["e"], "file:///tmp/wh/bought"))
        .await
        .unwrap();
    // Dropping a namespace frees its location.
    store.drop_namespace(wh, &ns(&["e"])).await.unwrap();
    store
        .create_namespace(wh, &located(&["f"], "file:///tmp/wh/bought"))
        .await
        .unwrap();
}

async fn concurrent_claims_cannot_both_win(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    store
        .create_namespace(wh, &namespace(&["a"]))
        .await
        .unwrap();
    let root = store
        .get_warehouse(wh)
        .await
        .unwrap()
        .unwrap()
        .storage
        .root_location();
    for round in 0..8 {
        let outer = format!("{root}/r{round}");
        let inner = format!("{outer}/inner");
        let claim = |name: String, location: String| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = ident(&["a"], &name);
                place(store.as_ref(), wh, TabularKind::Table, &id, &location).await
            })
        };
        let first = claim(format!("o{round}"), outer);
        let second = claim(format!("i{round}"), inner);
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        assert!(
            first.is_ok() != second.is_ok(),
            "round {round}: {first:?} / {second:?}"
        );
        assert!(taken(if first.is_ok() { second } else { first }));
    }
}

fn local_warehouse(tenant: Uuid, name: &str, root: &str) -> WarehouseRecord {
    WarehouseRecord {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        name: name.into(),
        storage: StorageProfile::Local {
            root: root.to_owned(),
        },
        credential: None,
        created_at_ms: 1,
    }
}

async fn tenant(store: &dyn CatalogStore) -> Uuid {
    let t = TenantRecord {
        id: Uuid::new_v4(),
        name: format!("t-{}", Uuid::new_v4()),
        created_at_ms: 1,
    };
    store.create_tenant(&t).await.unwrap();
    t.id
}

fn storage_taken(r: StoreResult<()>) -> bool {
    matches!(r, Err(StoreError::StorageTaken(_)))
}

async fn warehouse_storage_never_overlaps(store: Arc<dyn CatalogStore>) {
    let (t1, t2) = (tenant(store.as_ref()).await, tenant(store.as_ref()).await);
    let base = format!("file:///tmp/roots-{}", Uuid::new_v4());
    let a = local_warehouse(t1, "a", &format!("{base}/a"));
    store.create_warehouse(&a).await.unwrap();
    for (tenant, root) in [
        (t1, format!("{base}/a")),
        (t2, format!("{base}/a")),
        (t2, format!("{base}/a/inside")),
        (t2, base.clone()),
    ] {
        let other = local_warehouse(tenant, "b", &root);
        assert!(
            storage_taken(store.create_warehouse(&other).await),
            "{root} overlaps a's root"
        );
    }
    let mut b = local_warehouse(t2, "b", &format!("{base}/ab"));
    store
        .create_warehouse(&b)
        .await
        .expect("a sibling whose name starts the same does not overlap");
    b.storage = StorageProfile::Local {
        root: format!("{base}/a/x"),
    };
    assert!(storage_taken(store.update_warehouse(&b).await));
    b.storage = StorageProfile::Local {
        root: format!("{base}/b"),
    };
    store
        .update_warehouse(&b)
        .await
        .expect("an empty warehouse may move");
    let c = local_warehouse(t1, "c", &format!("{base}/ab"));
    store
        .create_warehouse(&c)
        .await
        .expect("a moved warehouse's old root is free");
    store
        .create_namespace(b.id, &namespace(&["n"]))
        .await
        .unwrap();
    b.storage = StorageProfile::Local {
        root: format!("{base}/elsewhere"),
    };
    assert!(matches!(
        store.update_warehouse(&b).await,
        Err(StoreError::NotEmpty(..))
    ));
    b.storage = StorageProfile::Local {
        root: format!("{base}/b"),
    };
    b.name = "renamed".into();
    store
        .update_warehouse(&b)
        .await
        .expect("a warehouse holding namespaces may change what is not its storage");
    store.delete_warehouse(a.id).await.unwrap();
    let again = local_warehouse(t2, "again", &format!("{base}/a"));
    store
        .create_warehouse(&again)
        .await
        .expect("a deleted warehouse's root is free");
}

async fn concurrent_warehouse_roots_cannot_both_win(store: Arc<dyn CatalogStore>) {
    let (t1, t2) = (tenant(store.as_ref()).await, tenant(store.as_ref()).await);
    let base = format!("file:///tmp/race-{}", Uuid::new_v4());
    for round in 0..8 {
        let outer = format!("{base}/r{round}");
        let inner = format!("{outer}/inner");
        let create = |tenant: Uuid, root: String| {
            let store = store.clone();
            tokio::spawn(async move {
                let wh = local_warehouse(tenant, &format!("w-{}", Uuid::new_v4()), &root);
                store.create_warehouse(&wh).await
            })
        };
        let first = create(t1, outer);
        let second = create(t2, inner);
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        assert!(
            first.is_ok() != second.is_ok(),
            "round {round}: {first:?} / {second:?}"
        );
        assert!(storage_taken(if first.is_ok() { second } else { first }));
    }
}

async fn tables_are_found_by_id(store: Arc<dyn CatalogStore>) {
    let (wh, other) = (
        seed_warehouse(store.as_ref()).await,
        seed_warehouse(store.as_ref()).await,
    );
    for w in [wh, other] {
        store.create_namespace(w, &namespace(&["a"])).await.unwrap();
        store.create_namespace(w, &namespace(&["b"])).await.unwrap();
    }
    let t = tabular(TabularKind::Table, &ident(&["a"], "t"), "m");
    store.create_tabular(wh, &t).await.unwrap();
    assert_eq!(
        store.get_tabular_by_id(wh, t.id).await.unwrap(),
        Some(t.clone())
    );
    assert_eq!(store.get_tabular_by_id(other, t.id).await.unwrap(), None);
    let copy = TabularRecord {
        ident: ident(&["b"], "copy"),
        location: format!("{}-copy", t.location),
        ..t.clone()
    };
    assert!(
        matches!(
            store.create_tabular(wh, &copy).await,
            Err(StoreError::AlreadyExists(_))
        ),
        "two tables of one warehouse never share an id"
    );
    store
        .create_tabular(other, &copy)
        .await
        .expect("another warehouse may hold a table with the same uuid");
    store
        .rename_tabular(wh, TabularKind::Table, &t.ident, &ident(&["b"], "moved"))
        .await
        .unwrap();
    let found = store.get_tabular_by_id(wh, t.id).await.unwrap().unwrap();
    assert_eq!(
        found.ident,
        ident(&["b"], "moved"),
        "the id follows a rename"
    );
    store
        .drop_tabular(wh, TabularKind::Table, &found.ident)
        .await
        .unwrap();
    assert_eq!(store.get_tabular_by_id(wh, t.id).await.unwrap(), None);
    let recreated = tabular(TabularKind::Table, &ident(&["a"], "t"), "m");
    store.create_tabular(wh, &recreated).await.unwrap();
    assert_eq!(store.get_tabular_by_id(wh, t.id).await.unwrap(), None);
}

async fn name_keyed_grants_upgrade_to_ids(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    let tenant = store.get_warehouse(wh).await.unwrap().unwrap().tenant_id;
    store
        .create_namespace(wh, &namespace(&["a"]))
        .await
        .unwrap();
    let t = tabular(TabularKind::Table, &ident(&["a"], "t"), "m");
    let v = tabular(TabularKind::View, &ident(&["a"], "v"), "m");
    store.create_tabular(wh, &t).await.unwrap();
    store.create_tabular(wh, &v).await.unwrap();
    let role = RoleRecord {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        name: "r".into(),
        created_at_ms: 1,
    };
    store.create_role(&role).await.unwrap();
    let legacy = |resource| GrantRecord {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        role_id: role.id,
        resource,
        privilege: crate::domain::access::Privilege::TableReadData,
        created_at_ms: 1,
    };
    let on_table = legacy(GrantResource::TableByName {
        warehouse: wh,
        table: t.ident.clone(),
    });
    let on_view = legacy(GrantResource::ViewByName {
        warehouse: wh,
        view: v.ident.clone(),
    });
    let on_gone = legacy(GrantResource::TableByName {
        warehouse: wh,
        table: ident(&["a"], "gone"),
    });
    let on_view_as_table = legacy(GrantResource::TableByName {
        warehouse: wh,
        table: v.ident.clone(),
    });
    for g in [&on_table, &on_view, &on_gone, &on_view_as_table] {
        store.create_grant(g).await.unwrap();
    }
    assert_eq!(upgrade_name_keyed_grants(store.as_ref()).await.unwrap(), 4);
    let mut upgraded: Vec<_> = store
        .list_grants(tenant, None)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.id, g.resource))
        .collect();
    upgraded.sort_by_key(|(id, _)| *id);
    let mut expected = vec![
        (
            on_table.id,
            GrantResource::Table {
                warehouse: wh,
                table: t.id,
            },
        ),
        (
            on_view.id,
            GrantResource::View {
                warehouse: wh,
                view: v.id,
            },
        ),
    ];
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(upgraded, expected, "grants on missing objects are deleted");
    assert_eq!(upgrade_name_keyed_grants(store.as_ref()).await.unwrap(), 0);
}

async fn the_recycle_bin_keeps_a_location_until_it_forgets(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    store
        .create_namespace(wh, &namespace(&["n"]))
        .await
        .unwrap();
    let t = ident(&["n"], "t");
    let location = "file:///wh/n/t";
    place(store.as_ref(), wh, TabularKind::Table, &t, location)
        .await
        .unwrap();
    let original = store.get_tabular(wh, &t).await.unwrap().unwrap();
    let later = now_ms() + 60_000;
    let dropped = store
        .bin_tabular(wh, TabularKind::Table, &t, later, true)
        .await
        .unwrap();
    assert_eq!(
        (dropped.tabular.clone(), dropped.expires_at_ms),
        (original.clone(), later)
    );
    assert!(dropped.purge_files && dropped.lease_until_ms == 0);
    // Gone from its namespace, not from its location.
    assert!(store.get_tabular(wh, &t).await.unwrap().is_none());
    assert!(
        store
            .get_tabular_by_id(wh, original.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(location_taken(store.as_ref(), wh, &ident(&["n"], "x"), location).await);
    assert!(location_taken(store.as_ref(), wh, &ident(&["n"], "y"), "file:///wh/n/t/in").await);
    assert_eq!(store.list_dropped(wh).await.unwrap(), vec![dropped.clone()]);
    assert_eq!(
        store.get_dropped(wh, original.id).await.unwrap(),
        Some(dropped.clone())
    );
    assert!(matches!(
        store.delete_warehouse(wh).await,
        Err(StoreError::NotEmpty(..))
    ));
    // Its name is free for a new table; restoring under it is then refused, and nothing moves.
    place(
        store.as_ref(),
        wh,
        TabularKind::Table,
        &t,
        "file:///wh/n/t2",
    )
    .await
    .unwrap();
    assert!(matches!(
        store.restore_dropped(wh, original.id, &t, now_ms()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        store
            .restore_dropped(wh, original.id, &ident(&["gone"], "t"), now_ms())
            .await,
        Err(StoreError::NoSuchNamespace(_))
    ));
    assert_eq!(store.list_dropped(wh).await.unwrap(), vec![dropped.clone()]);
    // Restored under a new name: same id, location and metadata file, findable by id again.
    let back = ident(&["n"], "back");
    let restored = store
        .restore_dropped(wh, original.id, &back, now_ms())
        .await
        .unwrap();
    assert_eq!(
        restored,
        TabularRecord {
            ident: back.clone(),
            ..original.clone()
        }
    );
    assert_eq!(
        store.get_tabular(wh, &back).await.unwrap(),
        Some(restored.clone())
    );
    assert_eq!(
        store.get_tabular_by_id(wh, original.id).await.unwrap(),
        Some(restored)
    );
    assert!(store.list_dropped(wh).await.unwrap().is_empty());
    assert!(location_taken(store.as_ref(), wh, &ident(&["n"], "x"), location).await);
    // Dropped without purge, it keeps its location all the same (it may come back there, and a
    // purge may be asked for later).
    store
        .bin_tabular(wh, TabularKind::Table, &back, later, false)
        .await
        .unwrap();
    let squatter = ident(&["n"], "squatter");
    assert!(location_taken(store.as_ref(), wh, &squatter, location).await);
    assert!(location_taken(store.as_ref(), wh, &squatter, "file:///wh/n/t/in").await);
    let due = store
        .expire_dropped(wh, original.id, now_ms(), true)
        .await
        .unwrap();
    assert!(due.purge_files);
    let x = ident(&["n"], "x");
    assert!(location_taken(store.as_ref(), wh, &x, location).await);
    // Forgotten, its location is free.
    store.forget_dropped(wh, original.id).await.unwrap();
    assert!(store.get_dropped(wh, original.id).await.unwrap().is_none());
    place(
        store.as_ref(),
        wh,
        TabularKind::Table,
        &ident(&["n"], "x"),
        location,
    )
    .await
    .unwrap();
    assert!(matches!(
        store
            .restore_dropped(wh, original.id, &back, now_ms())
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// A fresh warehouse holding namespace `n` and table `n.t` at `file:///wh/n/t`.
async fn warehouse_with_table(store: &dyn CatalogStore) -> (Uuid, TableIdent) {
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

async fn one_lease_per_expired_drop(store: Arc<dyn CatalogStore>) {
    let (wh, t) = warehouse_with_table(store.as_ref()).await;
    let now = now_ms();
    let dropped = store
        .bin_tabular(wh, TabularKind::Table, &t, now + 60_000, false)
        .await
        .unwrap();
    let id = dropped.tabular.id;
    assert!(
        store
            .lease_expired_dropped(now, now + 1000, &[])
            .await
            .unwrap()
            .is_none(),
        "not due yet"
    );
    let due = store.expire_dropped(wh, id, now, true).await.unwrap();
    assert!(due.purge_files && due.expires_at_ms == now);
    // Eight replicas ask at once: one gets it.
    let mut asks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        asks.push(tokio::spawn(async move {
            store
                .lease_expired_dropped(now, now + 1000, &[])
                .await
                .unwrap()
        }));
    }
    let mut leased = Vec::new();
    for ask in asks {
        leased.extend(ask.await.unwrap());
    }
    assert_eq!(leased.len(), 1, "one lease: {leased:?}");
    assert_eq!(
        (leased[0].tabular.id, leased[0].lease_until_ms),
        (id, now + 1000)
    );
    // Once the lease has run out (its holder died), another replica takes it over.
    let later = now + 1001;
    // Not for a warehouse the caller skips (its purges are failing this run).
    assert!(
        store
            .lease_expired_dropped(later, later + 1000, &[wh])
            .await
            .unwrap()
            .is_none()
    );
    let again = store
        .lease_expired_dropped(later, later + 1000, &[])
        .await
        .unwrap();
    assert_eq!(again.map(|d| d.tabular.id), Some(id));
}

/// Issue 23, escapes 5 and 6: a table created with the id of a dropped one (`assign-uuid`, or a
/// re-registered copy of its metadata) took its bin entry, its grants, and at expiry released
/// the live table's location. An id stays its dropped object's until it leaves the bin.
async fn a_dropped_objects_id_stays_its_own(store: Arc<dyn CatalogStore>) {
    let (wh, t) = warehouse_with_table(store.as_ref()).await;
    let original = store.get_tabular(wh, &t).await.unwrap().unwrap();
    let dropped = store
        .bin_tabular(wh, TabularKind::Table, &t, now_ms() + 60_000, false)
        .await
        .unwrap();
    // The same id, elsewhere or at its own location, under its old name or another.
    for (name, location) in [("t", "file:///wh/n/t"), ("copy", "file:///wh/n/copy")] {
        let copy = TabularRecord {
            ident: ident(&["n"], name),
            location: location.into(),
            ..original.clone()
        };
        assert!(
            matches!(
                store.create_tabular(wh, &copy).await,
                Err(StoreError::AlreadyExists(_) | StoreError::LocationTaken(_))
            ),
            "{name} took a dropped object's id"
        );
    }
    assert_eq!(
        store.get_dropped(wh, original.id).await.unwrap(),
        Some(dropped),
        "the bin entry is untouched"
    );
    // Leaving the bin frees the id and the location together.
    store
        .expire_dropped(wh, original.id, now_ms(), false)
        .await
        .unwrap();
    store.forget_dropped(wh, original.id).await.unwrap();
    store.create_tabular(wh, &original).await.unwrap();
    // Forgetting an entry never frees a live object's location.
    let again = store
        .bin_tabular(wh, TabularKind::Table, &t, now_ms() + 60_000, false)
        .await
        .unwrap();
    store
        .restore_dropped(wh, again.tabular.id, &t, now_ms())
        .await
        .unwrap();
    store.forget_dropped(wh, again.tabular.id).await.unwrap();
    assert!(location_taken(store.as_ref(), wh, &ident(&["n"], "x"), "file:///wh/n/t").await);
}

/// Issue 23, escape 4: a restore right after purge-now succeeded, and the purge already running
/// deleted the restored table's files. Once a purge is due the object cannot come back.
async fn an_object_whose_purge_is_due_is_not_restored(store: Arc<dyn CatalogStore>) {
    let (wh, t) = warehouse_with_table(store.as_ref()).await;
    let now = now_ms();
    let dropped = store
        .bin_tabular(wh, TabularKind::Table, &t, now + 60_000, true)
        .await
        .unwrap();
    let id = dropped.tabular.id;
    // Purge asked for: due now, leased by a purging replica.
    store.expire_dropped(wh, id, now, true).await.unwrap();
    let leased = store
        .lease_expired_dropped(now, now + 60_000, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(leased.tabular.id, id);
    assert!(matches!(
        store.restore_dropped(wh, id, &t, now).await,
        Err(StoreError::Purging(_))
    ));
    assert!(store.get_tabular(wh, &t).await.unwrap().is_none());
    assert!(store.get_dropped(wh, id).await.unwrap().is_some());
    // A drop with purge may still be restored while its purge is not due.
    let u = ident(&["n"], "u");
    place(store.as_ref(), wh, TabularKind::Table, &u, "file:///wh/n/u")
        .await
        .unwrap();
    let waiting = store
        .bin_tabular(wh, TabularKind::Table, &u, now + 60_000, true)
        .await
        .unwrap();
    store
        .restore_dropped(wh, waiting.tabular.id, &u, now)
        .await
        .unwrap();
}

/// Issue 23, escape 7: a tenant admin changed its warehouse's storage while its bin held
/// objects (only namespaces were counted): their purges failed for ever, and a restore could put
/// a table of the old storage into the new one.
async fn storage_stays_while_the_bin_holds_objects(store: Arc<dyn CatalogStore>) {
    let (wh, t) = warehouse_with_table(store.as_ref()).await;
    let dropped = store
        .bin_tabular(wh, TabularKind::Table, &t, now_ms() + 60_000, false)
        .await
        .unwrap();
    store.drop_namespace(wh, &ns(&["n"])).await.unwrap();
    let mut record = store.get_warehouse(wh).await.unwrap().unwrap();
    record.storage = StorageProfile::Local {
        root: format!("file:///tmp/moved-{}", Uuid::new_v4()),
    };
    assert!(matches!(
        store.update_warehouse(&record).await,
        Err(StoreError::NotEmpty(..))
    ));
    store
        .expire_dropped(wh, dropped.tabular.id, now_ms(), false)
        .await
        .unwrap();
    store.forget_dropped(wh, dropped.tabular.id).await.unwrap();
    store.update_warehouse(&record).await.unwrap();
}

/// Issue 23, escape 1: a staged create was vended credentials for any location, even another
/// table's. Its location is reserved first, under the same rules as every claim, and the
/// reservation gives way only to the table its stage commits.
async fn a_reservation_holds_its_location_for_its_commit(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    for parts in [&["att"][..], &["victim"]] {
        store.create_namespace(wh, &namespace(parts)).await.unwrap();
    }
    let payroll = ident(&["victim"], "payroll");
    place(
        store.as_ref(),
        wh,
        TabularKind::Table,
        &payroll,
        "file:///wh/victim/payroll",
    )
    .await
    .unwrap();
    let later = now_ms() + 60_000;
    let stage = |location: &str, owner: Uuid| {
        LocationClaim::staged(location.into(), owner, ns(&["att"]), later)
    };
    // Equal to, inside, or above another table's location: refused.
    for location in [
        "file:///wh/victim/payroll",
        "file:///wh/victim/payroll/data",
        "file:///wh/victim",
    ] {
        assert!(
            taken(
                store
                    .reserve_location(wh, &stage(location, Uuid::now_v7()))
                    .await
            ),
            "{location} was reserved"
        );
    }
    let id = Uuid::now_v7();
    store
        .reserve_location(wh, &stage("file:///wh/att/s", id))
        .await
        .unwrap();
    // Held against other stages, tables and namespaces, inside and above.
    assert!(taken(
        store
            .reserve_location(wh, &stage("file:///wh/att/s/in", Uuid::now_v7()))
            .await
    ));
    let other = ident(&["att"], "other");
    for location in ["file:///wh/att/s", "file:///wh/att/s/in", "file:///wh/att"] {
        assert!(
            location_taken(store.as_ref(), wh, &other, location).await,
            "{location}"
        );
    }
    // Another id, or the same id in another namespace, does not commit it.
    let mut commit = at(
        TabularKind::Table,
        &ident(&["att"], "s"),
        "file:///wh/att/s",
    );
    let stranger = TabularRecord {
        id: Uuid::now_v7(),
        ..commit.clone()
    };
    assert!(taken(store.create_tabular(wh, &stranger).await));
    let elsewhere = TabularRecord {
        id,
        ident: ident(&["victim"], "s"),
        ..commit.clone()
    };
    assert!(taken(store.create_tabular(wh, &elsewhere).await));
    // Its commit takes it over, and the table's claim holds it from then on, past the sweep.
    commit.id = id;
    store.create_tabular(wh, &commit).await.unwrap();
    store.release_lapsed_reservations(later + 1).await.unwrap();
    assert!(location_taken(store.as_ref(), wh, &other, "file:///wh/att/s").await);
    store
        .bin_tabular(wh, TabularKind::Table, &commit.ident, later, false)
        .await
        .unwrap();
    assert!(location_taken(store.as_ref(), wh, &other, "file:///wh/att/s").await);
}

/// A stage never committed holds its location until its reservation lapses; after the sweep a
/// lapsed reservation holds nothing, above or at its location.
async fn a_lapsed_reservation_holds_nothing(store: Arc<dyn CatalogStore>) {
    let wh = seed_warehouse(store.as_ref()).await;
    store
        .create_namespace(wh, &namespace(&["n"]))
        .await
        .unwrap();
    let soon = now_ms() + 300;
    let claim =
        |location: &str| LocationClaim::staged(location.into(), Uuid::now_v7(), ns(&["n"]), soon);
    store
        .reserve_location(wh, &claim("file:///wh/n/a/s"))
        .await
        .unwrap();
    store
        .reserve_location(wh, &claim("file:///wh/n/b"))
        .await
        .unwrap();
    assert_eq!(
        store.release_lapsed_reservations(now_ms()).await.unwrap(),
        0
    );
    assert!(location_taken(store.as_ref(), wh, &ident(&["n"], "x"), "file:///wh/n/b").await);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    // Lapsed: at its very location it gives way at once.
    place(
        store.as_ref(),
        wh,
        TabularKind::Table,
        &ident(&["n"], "x"),
        "file:///wh/n/b",
    )
    .await
    .unwrap();
    // Above it, once swept.
    assert!(store.release_lapsed_reservations(now_ms()).await.unwrap() >= 1);
    place(
        store.as_ref(),
        wh,
        TabularKind::Table,
        &ident(&["n"], "y"),
        "file:///wh/n/a",
    )
    .await
    .unwrap();
    assert_eq!(
        store.release_lapsed_reservations(now_ms()).await.unwrap(),
        0
    );
}
