//! Namespaces: nesting, pages, properties, dropping.

use std::collections::BTreeMap;
use std::sync::Arc;

use floe::store::*;

use super::fixtures::*;

pub async fn namespaces_nest_and_list(store: Arc<dyn CatalogStore>) {
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

pub async fn namespace_pages_are_stable(store: Arc<dyn CatalogStore>) {
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

pub async fn namespace_properties_update(store: Arc<dyn CatalogStore>) {
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

pub async fn only_empty_namespaces_drop(store: Arc<dyn CatalogStore>) {
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
