//! `floe migrate sled-to-postgres` on a catalog with several tenants, namespaces, tables and views:
//! everything arrives, a second run changes nothing, and a run after the source moved on brings
//! the target up to date.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::pg_support::TestDatabase;
use floe::changes::Change;
use floe::domain::access::{GrantResource, Privilege};
use floe::domain::{NamespaceIdent, ObjectName, TableIdent};
use floe::migrate::{Snapshot, migrate};
use floe::storage::StorageProfile;
use floe::store::*;
use uuid::Uuid;

fn ns(parts: &[&str]) -> NamespaceIdent {
    NamespaceIdent::new(parts.iter().map(|s| s.to_string()).collect()).unwrap()
}

fn ident(parts: &[&str], name: &str) -> TableIdent {
    TableIdent::new(ns(parts), ObjectName::new(name).unwrap())
}

/// Two tenants, each with two warehouses of nested namespaces holding tables and views, plus
/// principals, roles, grants, credentials, audit events and a signing key.
async fn fill(store: &dyn CatalogStore) -> Vec<(floe::domain::WarehouseId, TableIdent)> {
    let mut tables = Vec::new();
    for t in ["acme", "globex"] {
        let tenant = TenantRecord {
            id: floe::domain::TenantId::now_v7(),
            name: t.into(),
            created_at_ms: 1,
        };
        store
            .create_tenant(&tenant, &Change::Tenant { tenant: tenant.id })
            .await
            .unwrap();
        store
            .put_storage_credential(
                &StorageCredentialRecord {
                    id: Uuid::now_v7(),
                    tenant_id: tenant.id,
                    name: "keys".into(),
                    kind: floe::domain::CredentialKind::S3AccessKey,
                    value: CredentialValue::Sealed {
                        sealed: "sealed-bytes".into(),
                    },
                    created_at_ms: 1,
                },
                false,
                &Change::StorageCredential {
                    tenant: tenant.id,
                    name: "keys".into(),
                },
            )
            .await
            .unwrap();
        let role = RoleRecord {
            id: floe::domain::RoleId::now_v7(),
            tenant_id: tenant.id,
            name: "readers".into(),
            created_at_ms: 1,
        };
        store.create_role(&role, &Change::Grants).await.unwrap();
        for p in ["ann", "bob"] {
            let principal = PrincipalRecord {
                id: floe::domain::PrincipalId::now_v7(),
                tenant_id: tenant.id,
                name: p.into(),
                kind: PrincipalKind::Human,
                client_id: format!("{t}-{p}"),
                secret_hash: "$argon2id$...".into(),
                root: false,
                disabled: false,
                created_at_ms: 1,
                sessions_valid_from_ms: 0,
            };
            store
                .create_principal(
                    &principal,
                    &Change::Principal {
                        principal: principal.id,
                    },
                )
                .await
                .unwrap();
            store
                .assign_role(principal.id, role.id, &Change::Grants)
                .await
                .unwrap();
            store
                .append_audit(&AuditEvent {
                    id: Uuid::now_v7(),
                    tenant_id: tenant.id,
                    at_ms: floe::store::now_ms(),
                    actor: principal.id,
                    action: "create-principal".into(),
                    resource: p.into(),
                    outcome: "ok".into(),
                })
                .await
                .unwrap();
        }
        for w in ["sales", "ops"] {
            let wh = WarehouseRecord {
                id: floe::domain::WarehouseId::now_v7(),
                tenant_id: tenant.id,
                name: w.into(),
                storage: StorageProfile::Local {
                    root: format!("file:///tmp/{t}/{w}"),
                },
                credential: None,
                scan_planning_mode: None,
                created_at_ms: 1,
            };
            store
                .create_warehouse(&wh, &Change::Warehouse { warehouse: wh.id })
                .await
                .unwrap();
            store
                .create_grant(
                    &GrantRecord {
                        id: Uuid::now_v7(),
                        tenant_id: tenant.id,
                        role_id: role.id,
                        resource: GrantResource::Warehouse { warehouse: wh.id },
                        privilege: Privilege::TableReadData,
                        created_at_ms: 1,
                    },
                    &Change::Grants,
                )
                .await
                .unwrap();
            for parts in [&["a"][..], &["a", "b"], &["a", "b", "c"], &["z"]] {
                let record = NamespaceRecord {
                    id: Uuid::now_v7(),
                    ident: ns(parts),
                    properties: BTreeMap::from([("owner".into(), format!("{t}-{w}"))]),
                    created_at_ms: 1,
                };
                store.create_namespace(wh.id, &record).await.unwrap();
                for (kind, name) in [
                    (TabularKind::Table, "orders"),
                    (TabularKind::Table, "items"),
                    (TabularKind::View, "recent"),
                ] {
                    let id = ident(parts, name);
                    store
                        .create_tabular(
                            wh.id,
                            &TabularRecord {
                                id: floe::domain::TabularId::now_v7(),
                                kind,
                                ident: id.clone(),
                                location: format!("file:///tmp/{t}/{w}/{}", Uuid::now_v7()),
                                metadata_location: format!("file:///tmp/{t}/{w}/{name}/v1.json"),
                                created_at_ms: 1,
                            },
                        )
                        .await
                        .unwrap();
                    if kind == TabularKind::Table {
                        tables.push((wh.id, id));
                    }
                }
            }
        }
    }
    store
        .put_signing_key(
            &SigningKeyRecord {
                kid: "k1".into(),
                sealed_seed: "sealed".into(),
                created_at_ms: 1,
                retired_at_ms: None,
            },
            &Change::SigningKeys,
        )
        .await
        .unwrap();
    tables
}

fn open_sled(dir: &Path) -> SledStore {
    // sled's background flusher may hold the lock a moment after the previous owner let go.
    for _ in 0..50 {
        if let Ok(store) = SledStore::open(dir) {
            return store;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    SledStore::open(dir).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_catalog_moves_to_postgres_whole_and_again_without_change() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog");
    let tables = {
        let sled = SledStore::open(&catalog).unwrap();
        fill(&sled).await
    };
    let db = TestDatabase::create().await;
    let url = db.fresh_schema_url().await;

    // The command itself, as an operator runs it.
    let mut run = None;
    for _ in 0..50 {
        let out = Command::new(env!("CARGO_BIN_EXE_floe"))
            .args(["migrate", "sled-to-postgres", "--data-dir"])
            .arg(dir.path())
            .args(["--postgres-url", &url])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if !out.status.success() && stderr.contains("lock") {
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        }
        run = Some((
            out.status,
            String::from_utf8_lossy(&out.stdout).to_string(),
            stderr,
        ));
        break;
    }
    let (status, stdout, stderr) = run.expect("the sled lock was released");
    assert!(status.success(), "migrate failed: {stderr}\n{stdout}");
    println!("{stdout}");
    assert!(stdout.contains("tables: 32 in both"), "{stdout}");
    assert!(stdout.contains("views: 16 in both"), "{stdout}");
    assert!(stdout.contains("namespaces: 16 in both"), "{stdout}");
    assert!(stdout.contains("tenants: 2 in both"), "{stdout}");
    assert!(
        stdout.contains("verified: 48 metadata locations match"),
        "{stdout}"
    );

    let pg = PgStore::connect(&url, 4).await.unwrap();
    let sled = open_sled(&catalog);
    let (want, got) = (
        Snapshot::read(&sled).await.unwrap(),
        Snapshot::read(&pg).await.unwrap(),
    );
    assert_eq!(want.counts(), got.counts());
    assert_eq!(want.principals, got.principals);
    assert_eq!(want.grants, got.grants);
    assert_eq!(want.warehouses, got.warehouses);
    assert_eq!(want.storage_credentials, got.storage_credentials);
    assert_eq!(want.audit, got.audit);

    // Again: nothing to write.
    let again = migrate(&sled, &pg).await.unwrap();
    assert_eq!(again.written, 0, "{again}");
    assert_eq!(
        again.unchanged,
        again.counts.values().sum::<usize>(),
        "{again}"
    );

    // The source moves on (a commit, a property change); a third run carries that over.
    let (wh, table) = &tables[0];
    let before = sled.get_tabular(*wh, table).await.unwrap().unwrap();
    let swap = MetadataSwap {
        ident: table.clone(),
        expected: before.metadata_location.clone(),
        new: "file:///tmp/v2.json".into(),
    };
    sled.swap_metadata(*wh, TabularKind::Table, &[swap])
        .await
        .unwrap();
    let updates = BTreeMap::from([("owner".to_string(), "someone-else".to_string())]);
    sled.update_namespace_properties(*wh, &table.namespace, &updates, &[])
        .await
        .unwrap();
    let third = migrate(&sled, &pg).await.unwrap();
    assert_eq!(third.written, 2, "{third}");
    let moved = pg.get_tabular(*wh, table).await.unwrap().unwrap();
    assert_eq!(moved.metadata_location, "file:///tmp/v2.json");
    assert_eq!(moved.id, before.id);
}
