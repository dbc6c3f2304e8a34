//! `Idempotency-Key` records.

use std::sync::Arc;

use floe::store::*;

pub async fn idempotency_records_expire(store: Arc<dyn CatalogStore>) {
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
