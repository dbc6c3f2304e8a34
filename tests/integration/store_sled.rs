//! What only a file-backed store can show: reopening (the conformance suite runs in `conformance`).

use crate::conformance::{principal, seed_warehouse};
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
            id: floe::domain::TabularId::new_v4(),
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

/// Issue 24 (found in review): deleting a tenant took the write gate again for each of its
/// principals and roles while already holding it, so a backup snapshot queued for the gate in
/// between waited for the deletion, and the deletion for the snapshot: both, and every write
/// after them, hung for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_taken_while_a_tenant_is_deleted_does_not_hang_the_store() {
    use floe::changes::Change;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let tenant = TenantRecord {
        id: floe::domain::TenantId::new_v4(),
        name: "doomed".into(),
        created_at_ms: 1,
    };
    store
        .create_tenant(&tenant, &Change::Tenant { tenant: tenant.id })
        .await
        .unwrap();
    for i in 0..60 {
        let principal = principal(tenant.id, &format!("client-{i}"));
        store
            .create_principal(
                &principal,
                &Change::Principal {
                    principal: principal.id,
                },
            )
            .await
            .unwrap();
    }
    let deleting = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .delete_tenant(tenant.id, &Change::Tenant { tenant: tenant.id })
                .await
        })
    };
    // Snapshots keep asking for the gate alone while the deletion removes principals one by one.
    let snapshots = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                store.snapshot().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
    };
    let both = async {
        deleting.await.unwrap().unwrap();
        snapshots.await.unwrap();
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), both)
        .await
        .expect("the deletion and the snapshots finish (no wait on each other's gate)");
    assert!(store.get_tenant(tenant.id).await.unwrap().is_none());
    assert!(store.list_principals(tenant.id).await.unwrap().is_empty());
}
