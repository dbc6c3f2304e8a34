//! Who owns which location and which warehouse storage root: live objects, namespaces, staged creates' reservations.

use std::collections::BTreeMap;
use std::sync::Arc;

use floe::changes::Change;
use floe::storage::StorageProfile;
use floe::store::locations::LocationClaim;
use floe::store::*;
use uuid::Uuid;

use super::fixtures::*;

pub async fn locations_never_overlap(store: Arc<dyn CatalogStore>) {
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
        .rename_tabular(
            wh,
            TabularKind::Table,
            &u("u"),
            &t("moved"),
            &Change::Renamed { warehouse: wh },
        )
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

pub async fn namespace_locations_hold_their_own(store: Arc<dyn CatalogStore>) {
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

pub async fn concurrent_claims_cannot_both_win(store: Arc<dyn CatalogStore>) {
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

pub async fn warehouse_storage_never_overlaps(store: Arc<dyn CatalogStore>) {
    let (t1, t2) = (tenant(store.as_ref()).await, tenant(store.as_ref()).await);
    let base = format!("file:///tmp/roots-{}", Uuid::new_v4());
    let a = local_warehouse(t1, "a", &format!("{base}/a"));
    store
        .create_warehouse(&a, &Change::Warehouse { warehouse: a.id })
        .await
        .unwrap();
    for (tenant, root) in [
        (t1, format!("{base}/a")),
        (t2, format!("{base}/a")),
        (t2, format!("{base}/a/inside")),
        (t2, base.clone()),
    ] {
        let other = local_warehouse(tenant, "b", &root);
        assert!(
            storage_taken(
                store
                    .create_warehouse(
                        &other,
                        &Change::Warehouse {
                            warehouse: other.id
                        }
                    )
                    .await
            ),
            "{root} overlaps a's root"
        );
    }
    let mut b = local_warehouse(t2, "b", &format!("{base}/ab"));
    store
        .create_warehouse(&b, &Change::Warehouse { warehouse: b.id })
        .await
        .expect("a sibling whose name starts the same does not overlap");
    b.storage = StorageProfile::Local {
        root: format!("{base}/a/x"),
    };
    assert!(storage_taken(
        store
            .update_warehouse(&b, &Change::Warehouse { warehouse: b.id })
            .await
    ));
    b.storage = StorageProfile::Local {
        root: format!("{base}/b"),
    };
    store
        .update_warehouse(&b, &Change::Warehouse { warehouse: b.id })
        .await
        .expect("an empty warehouse may move");
    let c = local_warehouse(t1, "c", &format!("{base}/ab"));
    store
        .create_warehouse(&c, &Change::Warehouse { warehouse: c.id })
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
        store
            .update_warehouse(&b, &Change::Warehouse { warehouse: b.id })
            .await,
        Err(StoreError::NotEmpty(..))
    ));
    b.storage = StorageProfile::Local {
        root: format!("{base}/b"),
    };
    b.name = "renamed".into();
    store
        .update_warehouse(&b, &Change::Warehouse { warehouse: b.id })
        .await
        .expect("a warehouse holding namespaces may change what is not its storage");
    store
        .delete_warehouse(a.id, &Change::Warehouse { warehouse: a.id })
        .await
        .unwrap();
    let again = local_warehouse(t2, "again", &format!("{base}/a"));
    store
        .create_warehouse(
            &again,
            &Change::Warehouse {
                warehouse: again.id,
            },
        )
        .await
        .expect("a deleted warehouse's root is free");
}

pub async fn concurrent_warehouse_roots_cannot_both_win(store: Arc<dyn CatalogStore>) {
    let (t1, t2) = (tenant(store.as_ref()).await, tenant(store.as_ref()).await);
    let base = format!("file:///tmp/race-{}", Uuid::new_v4());
    for round in 0..8 {
        let outer = format!("{base}/r{round}");
        let inner = format!("{outer}/inner");
        let create = |tenant: floe::domain::TenantId, root: String| {
            let store = store.clone();
            tokio::spawn(async move {
                let wh = local_warehouse(tenant, &format!("w-{}", Uuid::new_v4()), &root);
                store
                    .create_warehouse(&wh, &Change::Warehouse { warehouse: wh.id })
                    .await
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

/// Issue 23, escape 1: a staged create was vended credentials for any location, even another
/// table's. Its location is reserved first, under the same rules as every claim, and the
/// reservation gives way only to the table its stage commits.
pub async fn a_reservation_holds_its_location_for_its_commit(store: Arc<dyn CatalogStore>) {
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
        id: floe::domain::TabularId::now_v7(),
        ..commit.clone()
    };
    assert!(taken(store.create_tabular(wh, &stranger).await));
    let elsewhere = TabularRecord {
        id: id.into(),
        ident: ident(&["victim"], "s"),
        ..commit.clone()
    };
    assert!(taken(store.create_tabular(wh, &elsewhere).await));
    // Its commit takes it over, and the table's claim holds it from then on, past the sweep.
    commit.id = id.into();
    store.create_tabular(wh, &commit).await.unwrap();
    store.release_lapsed_reservations(later + 1).await.unwrap();
    assert!(location_taken(store.as_ref(), wh, &other, "file:///wh/att/s").await);
    store
        .bin_tabular(
            wh,
            TabularKind::Table,
            &commit.ident,
            now_ms(),
            later,
            false,
        )
        .await
        .unwrap();
    assert!(location_taken(store.as_ref(), wh, &other, "file:///wh/att/s").await);
}

/// A stage never committed holds its location until its reservation lapses; after the sweep a
/// lapsed reservation holds nothing, above or at its location.
pub async fn a_lapsed_reservation_holds_nothing(store: Arc<dyn CatalogStore>) {
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
