//! The recycle bin: what its entries hold, leases on expired drops, restores and purges.

use std::sync::Arc;

use floe::changes::Change;
use floe::storage::StorageProfile;
use floe::store::*;
use uuid::Uuid;

use super::fixtures::*;

pub async fn the_recycle_bin_keeps_a_location_until_it_forgets(store: Arc<dyn CatalogStore>) {
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
        .bin_tabular(wh, TabularKind::Table, &t, now_ms(), later, true)
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
        store
            .delete_warehouse(wh, &Change::Warehouse { warehouse: wh })
            .await,
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
        store
            .restore_dropped(
                wh,
                original.id,
                &t,
                now_ms(),
                &Change::Renamed { warehouse: wh }
            )
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        store
            .restore_dropped(
                wh,
                original.id,
                &ident(&["gone"], "t"),
                now_ms(),
                &Change::Renamed { warehouse: wh }
            )
            .await,
        Err(StoreError::NoSuchNamespace(_))
    ));
    assert_eq!(store.list_dropped(wh).await.unwrap(), vec![dropped.clone()]);
    // Restored under a new name: same id, location and metadata file, findable by id again.
    let back = ident(&["n"], "back");
    let restored = store
        .restore_dropped(
            wh,
            original.id,
            &back,
            now_ms(),
            &Change::Renamed { warehouse: wh },
        )
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
        .bin_tabular(wh, TabularKind::Table, &back, now_ms(), later, false)
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
            .restore_dropped(
                wh,
                original.id,
                &back,
                now_ms(),
                &Change::Renamed { warehouse: wh }
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn one_lease_per_expired_drop(store: Arc<dyn CatalogStore>) {
    let (wh, t) = warehouse_with_table(store.as_ref()).await;
    let now = now_ms();
    let dropped = store
        .bin_tabular(wh, TabularKind::Table, &t, now_ms(), now + 60_000, false)
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
pub async fn a_dropped_objects_id_stays_its_own(store: Arc<dyn CatalogStore>) {
    let (wh, t) = warehouse_with_table(store.as_ref()).await;
    let original = store.get_tabular(wh, &t).await.unwrap().unwrap();
    let dropped = store
        .bin_tabular(
            wh,
            TabularKind::Table,
            &t,
            now_ms(),
            now_ms() + 60_000,
            false,
        )
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
        .bin_tabular(
            wh,
            TabularKind::Table,
            &t,
            now_ms(),
            now_ms() + 60_000,
            false,
        )
        .await
        .unwrap();
    store
        .restore_dropped(
            wh,
            again.tabular.id,
            &t,
            now_ms(),
            &Change::Renamed { warehouse: wh },
        )
        .await
        .unwrap();
    store.forget_dropped(wh, again.tabular.id).await.unwrap();
    assert!(location_taken(store.as_ref(), wh, &ident(&["n"], "x"), "file:///wh/n/t").await);
}

/// Issue 23, escape 4: a restore right after purge-now succeeded, and the purge already running
/// deleted the restored table's files. Once a purge is due the object cannot come back.
pub async fn an_object_whose_purge_is_due_is_not_restored(store: Arc<dyn CatalogStore>) {
    let (wh, t) = warehouse_with_table(store.as_ref()).await;
    let now = now_ms();
    let dropped = store
        .bin_tabular(wh, TabularKind::Table, &t, now_ms(), now + 60_000, true)
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
        store
            .restore_dropped(wh, id, &t, now, &Change::Renamed { warehouse: wh })
            .await,
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
        .bin_tabular(wh, TabularKind::Table, &u, now_ms(), now + 60_000, true)
        .await
        .unwrap();
    store
        .restore_dropped(
            wh,
            waiting.tabular.id,
            &u,
            now,
            &Change::Renamed { warehouse: wh },
        )
        .await
        .unwrap();
}

/// Issue 23, escape 7: a tenant admin changed its warehouse's storage while its bin held
/// objects (only namespaces were counted): their purges failed for ever, and a restore could put
/// a table of the old storage into the new one.
pub async fn storage_stays_while_the_bin_holds_objects(store: Arc<dyn CatalogStore>) {
    let (wh, t) = warehouse_with_table(store.as_ref()).await;
    let dropped = store
        .bin_tabular(
            wh,
            TabularKind::Table,
            &t,
            now_ms(),
            now_ms() + 60_000,
            false,
        )
        .await
        .unwrap();
    store.drop_namespace(wh, &ns(&["n"])).await.unwrap();
    let mut record = store.get_warehouse(wh).await.unwrap().unwrap();
    record.storage = StorageProfile::Local {
        root: format!("file:///tmp/moved-{}", Uuid::new_v4()),
    };
    assert!(matches!(
        store
            .update_warehouse(
                &record,
                &Change::Warehouse {
                    warehouse: record.id
                }
            )
            .await,
        Err(StoreError::NotEmpty(..))
    ));
    store
        .expire_dropped(wh, dropped.tabular.id, now_ms(), false)
        .await
        .unwrap();
    store.forget_dropped(wh, dropped.tabular.id).await.unwrap();
    store
        .update_warehouse(
            &record,
            &Change::Warehouse {
                warehouse: record.id,
            },
        )
        .await
        .unwrap();
}
