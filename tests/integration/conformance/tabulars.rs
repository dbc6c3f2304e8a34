//! Tables and views: names, compare-and-swap commits, renames, lookup by id.

use std::sync::Arc;

use floe::changes::Change;
use floe::store::*;

use super::fixtures::*;

pub async fn tables_and_views_share_names(store: Arc<dyn CatalogStore>) {
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

pub async fn metadata_swap_is_compare_and_swap(store: Arc<dyn CatalogStore>) {
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

pub async fn multi_table_swap_is_all_or_nothing(store: Arc<dyn CatalogStore>) {
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

pub async fn rename_moves_across_namespaces(store: Arc<dyn CatalogStore>) {
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
        .rename_tabular(
            wh,
            TabularKind::Table,
            &from,
            &ident(&["nope"], "t"),
            &Change::Renamed { warehouse: wh },
        )
        .await;
    assert!(matches!(missing_ns, Err(StoreError::NoSuchNamespace(_))));
    store
        .rename_tabular(
            wh,
            TabularKind::Table,
            &from,
            &to,
            &Change::Renamed { warehouse: wh },
        )
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
        .rename_tabular(
            wh,
            TabularKind::Table,
            &other,
            &to,
            &Change::Renamed { warehouse: wh },
        )
        .await;
    assert!(matches!(taken, Err(StoreError::AlreadyExists(_))));
    let gone = store
        .rename_tabular(
            wh,
            TabularKind::Table,
            &from,
            &ident(&["dst"], "x"),
            &Change::Renamed { warehouse: wh },
        )
        .await;
    assert!(matches!(gone, Err(StoreError::NoSuchTabular(..))));
}

pub async fn concurrent_swaps_lose_nothing(store: Arc<dyn CatalogStore>) {
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

pub async fn tables_are_found_by_id(store: Arc<dyn CatalogStore>) {
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
        .rename_tabular(
            wh,
            TabularKind::Table,
            &t.ident,
            &ident(&["b"], "moved"),
            &Change::Renamed { warehouse: wh },
        )
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
