//! The store conformance suite on PostgreSQL (the same checks sled passes, unchanged), plus what
//! only a shared database shows: two stores (two replicas) on one database, and notifications.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::pg_support::TestDatabase;
use floe::changes::{Change, Changes, Subscriber};
use floe::store::conformance::{checks, seed_warehouse};
use floe::store::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_passes_the_store_conformance_suite() {
    let db = TestDatabase::create().await;
    for (name, check) in checks() {
        let url = db.fresh_schema_url().await;
        let store: Arc<dyn CatalogStore> = Arc::new(PgStore::connect(&url, 8).await.unwrap());
        println!("conformance: {name}");
        check(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_share_one_catalog_and_hear_each_others_changes() {
    let db = TestDatabase::create().await;
    let url = db.fresh_schema_url().await;
    let (a, b) = tokio::join!(PgStore::connect(&url, 4), PgStore::connect(&url, 4));
    let (a, b) = (a.unwrap(), b.unwrap());
    let heard = Arc::new(Heard::default());
    let changes = Arc::new(Changes::new());
    changes.subscribe(heard.clone());
    b.watch(changes);
    // The listener reports "everything" once it is up.
    wait_for(&heard, Change::Everything).await;

    // Each change arrives typed: which warehouse, which credential.
    let wh = seed_warehouse(&a).await;
    wait_for(&heard, Change::Warehouse { warehouse: wh }).await;
    let record = b
        .get_warehouse(wh)
        .await
        .unwrap()
        .expect("b sees a's warehouse");
    let credential = StorageCredentialRecord {
        id: uuid::Uuid::now_v7(),
        tenant_id: record.tenant_id,
        name: "keys".into(),
        kind: floe::domain::CredentialKind::S3AccessKey,
        value: CredentialValue::Reference {
            reference: "env:NONE".into(),
        },
        created_at_ms: 1,
    };
    a.put_storage_credential(&credential, false).await.unwrap();
    a.put_storage_credential(&credential, true).await.unwrap();
    for _ in 0..2 {
        wait_for(
            &heard,
            Change::StorageCredential {
                tenant: record.tenant_id,
                name: "keys".into(),
            },
        )
        .await;
    }

    let key = SigningKeyRecord {
        kid: "k1".into(),
        sealed_seed: "sealed".into(),
        created_at_ms: 1,
        retired_at_ms: None,
    };
    a.put_signing_key(&key).await.unwrap();
    wait_for(&heard, Change::SigningKeys).await;
    assert_eq!(b.list_signing_keys().await.unwrap(), vec![key]);
}

/// Every change published on the bus, in order.
#[derive(Default)]
struct Heard(Mutex<Vec<Change>>);

#[async_trait::async_trait]
impl Subscriber for Heard {
    async fn changed(&self, change: &Change) {
        self.0.lock().unwrap().push(change.clone());
    }
}

async fn wait_for(heard: &Heard, change: Change) {
    for _ in 0..100 {
        {
            let mut heard = heard.0.lock().unwrap();
            if let Some(i) = heard.iter().position(|c| *c == change) {
                heard.drain(..=i);
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {change:?} notification within 5 s");
}
