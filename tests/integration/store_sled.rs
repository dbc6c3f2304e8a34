//! What only a file-backed store can show: reopening (the conformance suite runs in `conformance`).

use crate::conformance::seed_warehouse;
use floe::domain::{NamespaceIdent, ObjectName, TableIdent};
use floe::store::*;

#[tokio::test]
async fn acknowledged_writes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let ident = TableIdent::new(
        NamespaceIdent::new(vec!["n".into()]).unwrap(),
        ObjectName::new("t").unwrap(),
    );
    let wh = {
        let store = SledStore::open(dir.path()).unwrap();
        let wh = seed_warehouse(&store).await;
        let ns = NamespaceRecord {
            id: uuid::Uuid::new_v4(),
            ident: ident.namespace.clone(),
            properties: Default::default(),
            created_at_ms: 1,
        };
        store.create_namespace(wh, &ns).await.unwrap();
        let record = TabularRecord {
            id: uuid::Uuid::new_v4(),
            kind: TabularKind::Table,
            ident: ident.clone(),
            location: "file:///wh/t".into(),
            metadata_location: "m0".into(),
            created_at_ms: 1,
        };
        store.create_tabular(wh, &record).await.unwrap();
        let swap = [MetadataSwap {
            ident: ident.clone(),
            expected: "m0".into(),
            new: "m1".into(),
        }];
        store
            .swap_metadata(wh, TabularKind::Table, &swap)
            .await
            .unwrap();
        wh
    };
    // sled's background flusher may hold the file lock a moment after the store is dropped (a new
    // process never meets this), so reopening is retried briefly.
    let mut attempts = 0;
    let reopened = loop {
        match SledStore::open(dir.path()) {
            Ok(store) => break store,
            Err(e) if attempts < 50 => {
                attempts += 1;
                eprintln!("reopen attempt {attempts}: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the store does not reopen: {e}"),
        }
    };
    let record = reopened
        .get_tabular(wh, &ident)
        .await
        .unwrap()
        .expect("table survives");
    assert_eq!(record.metadata_location, "m1");
    assert!(matches!(
        reopened.drop_namespace(wh, &ident.namespace).await,
        Err(StoreError::NamespaceNotEmpty(_))
    ));
}
