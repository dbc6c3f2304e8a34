//! What only a shared PostgreSQL database shows (the conformance suite runs in `conformance`): two stores (two replicas) on one database, and notifications.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::conformance::{ident, namespace, principal, seed_warehouse, tabular};
use crate::pg_support::{TestDatabase, caching_replica};
use floe::background::StopSignal;
use floe::changes::{Change, Changes, Subscriber};
use floe::domain::access::{GrantResource, Privilege};
use floe::store::pointer_cache::{PointerCache, PointerCacheMode};
use floe::store::*;

/// A warehouse holding one table, `ns.t`, pointing at `m0`.
async fn one_table(store: &PgStore) -> (floe::domain::WarehouseId, floe::domain::TableIdent) {
    let wh = seed_warehouse(store).await;
    store
        .create_namespace(wh, &namespace(&["ns"]))
        .await
        .unwrap();
    let t = ident(&["ns"], "t");
    store
        .create_tabular(wh, &tabular(TabularKind::Table, &t, "m0"))
        .await
        .unwrap();
    (wh, t)
}

/// A caching replica on a database of its own, holding one table `ns.t` whose pointer (`m0`) it
/// has read, so it is cached. Bind `_db` by name: the database is dropped with it.
struct WarmReplica {
    _db: TestDatabase,
    url: String,
    store: PgStore,
    wh: floe::domain::WarehouseId,
    t: floe::domain::TableIdent,
}

async fn warm_replica(max_staleness: Duration) -> WarmReplica {
    let db = TestDatabase::create().await;
    let url = db.fresh_schema_url().await;
    let store = caching_replica(&url, max_staleness).await;
    let (wh, t) = one_table(&store).await;
    assert_eq!(pointer(&store, wh, &t).await, "m0");
    WarmReplica {
        _db: db,
        url,
        store,
        wh,
        t,
    }
}

/// Where `store` says `ident` points now.
async fn pointer(
    store: &PgStore,
    wh: floe::domain::WarehouseId,
    ident: &floe::domain::TableIdent,
) -> String {
    let record = store.get_tabular(wh, ident).await.unwrap().unwrap();
    record.metadata_location
}

/// Moves table `t`'s pointer in the database behind every replica's back (no notice).
async fn move_unheard(store: &PgStore, to: &str) {
    sqlx::query("UPDATE tabulars SET metadata_location = $1 WHERE name = 't'")
        .bind(to)
        .execute(store.pool())
        .await
        .unwrap();
}

/// Polls `b` until it no longer finds `ident`, for at most a second.
async fn forgotten(
    b: &PgStore,
    wh: floe::domain::WarehouseId,
    ident: &floe::domain::TableIdent,
    what: &str,
) {
    let started = std::time::Instant::now();
    while b.get_tabular(wh, ident).await.unwrap().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B still serves {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Polls `b` until `ident` points at `want`; how long that took.
async fn seen(
    b: &PgStore,
    wh: floe::domain::WarehouseId,
    ident: &floe::domain::TableIdent,
    want: &str,
) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let now = b.get_tabular(wh, ident).await.unwrap().unwrap();
        if now.metadata_location == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "replica b still serves {} 3 s after the change to {want}",
            now.metadata_location
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pointer_moved_on_one_replica_reaches_the_others_cache_within_milliseconds() {
    let db = TestDatabase::create().await;
    let url = db.fresh_schema_url().await;
    let a = caching_replica(&url, Duration::from_secs(60)).await;
    let b = caching_replica(&url, Duration::from_secs(60)).await;
    let (wh, t) = one_table(&a).await;
    assert_eq!(pointer(&b, wh, &t).await, "m0");

    // B serves from memory: a change made behind every replica's back (no notice) is not seen.
    move_unheard(&a, "behind").await;
    assert_eq!(pointer(&b, wh, &t).await, "m0");
    // And a commit B makes from what it cached is refused by the database, not lost or forced;
    // the refusal forgets the entry, so the retry reads the truth.
    let stale = MetadataSwap {
        ident: t.clone(),
        expected: "m0".into(),
        new: "from-b".into(),
    };
    assert!(matches!(
        b.swap_metadata(wh, TabularKind::Table, &[stale]).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(pointer(&b, wh, &t).await, "behind");

    // Commits on A reach B through the notices.
    let mut delays = Vec::new();
    let mut current = "behind".to_owned();
    for i in 0..50 {
        let next = format!("m{}", i + 1);
        let swap = MetadataSwap {
            ident: t.clone(),
            expected: current.clone(),
            new: next.clone(),
        };
        a.swap_metadata(wh, TabularKind::Table, &[swap])
            .await
            .unwrap();
        delays.push(seen(&b, wh, &t, &next).await);
        current = next;
    }
    delays.sort();
    println!(
        "a commit on A was served by B after p50 {:?}, max {:?}",
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    assert!(delays[delays.len() - 1] < Duration::from_secs(1));

    // A rename and a drop on A make B forget the old name.
    let u = ident(&["ns"], "u");
    a.rename_tabular(
        wh,
        TabularKind::Table,
        &t,
        &u,
        &Change::Renamed { warehouse: wh },
    )
    .await
    .unwrap();
    forgotten(&b, wh, &t, "the old name").await;
    assert_eq!(pointer(&b, wh, &u).await, current);
    a.drop_tabular(wh, TabularKind::Table, &u).await.unwrap();
    forgotten(&b, wh, &u, "the dropped table").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cached_pointer_never_answers_for_another_tenants_warehouse() {
    // An insider of tenant B names exactly the table tenant A's loads keep warm: the cache is
    // keyed by warehouse, so B gets its own warehouse's answer (nothing, then its own table).
    let WarmReplica {
        _db,
        store: replica,
        wh: ours,
        t,
        ..
    } = warm_replica(Duration::from_secs(60)).await;
    assert_eq!(replica.pointers().occupancy().0, 1, "A's pointer is cached");
    let theirs = seed_warehouse(&replica).await;
    assert!(replica.get_tabular(theirs, &t).await.unwrap().is_none());
    replica
        .create_namespace(theirs, &namespace(&["ns"]))
        .await
        .unwrap();
    replica
        .create_tabular(theirs, &tabular(TabularKind::Table, &t, "theirs"))
        .await
        .unwrap();
    assert_eq!(pointer(&replica, theirs, &t).await, "theirs");
    assert_eq!(pointer(&replica, ours, &t).await, "m0");
    // A's commit moves only A's pointer.
    let swap = MetadataSwap {
        ident: t.clone(),
        expected: "m0".into(),
        new: "m1".into(),
    };
    replica
        .swap_metadata(ours, TabularKind::Table, &[swap])
        .await
        .unwrap();
    assert_eq!(pointer(&replica, ours, &t).await, "m1");
    assert_eq!(pointer(&replica, theirs, &t).await, "theirs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_lost_its_listener_reads_the_database_and_strict_never_caches() {
    let WarmReplica {
        _db,
        url,
        store: b,
        wh,
        t,
        ..
    } = warm_replica(Duration::from_secs(60)).await;
    move_unheard(&b, "unheard").await;
    assert_eq!(pointer(&b, wh, &t).await, "m0");
    // The listener's connection goes away: notices sent meanwhile are lost, so B must stop
    // trusting what it cached.
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(b.pool())
    .await
    .unwrap();
    assert_eq!(killed, 1, "one listener per replica");
    // Within half a second: before the listener reconnects (after 1 s), so by reading through.
    assert!(seen(&b, wh, &t, "unheard").await < Duration::from_millis(500));

    // Strict: every read goes to the database, listener or not.
    let strict = PgStore::connect(&url, 2)
        .await
        .unwrap()
        .with_pointer_cache(PointerCache::new(
            PointerCacheMode::Strict,
            Duration::from_secs(60),
            1 << 20,
        ));
    tokio::spawn(strict.watch(Arc::new(Changes::new()), StopSignal::never()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(pointer(&strict, wh, &t).await, "unheard");
    move_unheard(&b, "strict").await;
    assert_eq!(pointer(&strict, wh, &t).await, "strict");
    assert_eq!(strict.pointers().occupancy().0, 0);
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
    tokio::spawn(b.watch(changes, StopSignal::never()));
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
    a.put_storage_credential(
        &credential,
        false,
        &Change::StorageCredential {
            tenant: credential.tenant_id,
            name: credential.name.clone(),
        },
    )
    .await
    .unwrap();
    a.put_storage_credential(
        &credential,
        true,
        &Change::StorageCredential {
            tenant: credential.tenant_id,
            name: credential.name.clone(),
        },
    )
    .await
    .unwrap();
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
    a.put_signing_key(&key, &Change::SigningKeys).await.unwrap();
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

/// A page of a namespace's tables reads the listing index only: no table rows, which lie spread
/// over the heap (one page read per name when they are not in memory: 11 ms a page at a million
/// tables). Checked on the statement's generic plan, which is what a pooled connection runs after
/// a few pages, with scans other than by index turned off (at this size the planner would read
/// the whole table instead, as it would not at a million rows).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_of_a_namespace_reads_only_the_listing_index() {
    use futures::StreamExt;
    let db = TestDatabase::create().await;
    let store = PgStore::connect(&db.url, 8).await.unwrap();
    let wh = seed_warehouse(&store).await;
    for ns in ["big", "a", "b", "c"] {
        store.create_namespace(wh, &namespace(&[ns])).await.unwrap();
    }
    // Interleaved, so the big namespace's rows are spread over the heap's pages.
    let records: Vec<_> = (0..300)
        .flat_map(|i| ["big", "a", "b", "c"].map(|ns| ident(&[ns], &format!("t{i:04}"))))
        .collect();
    futures::stream::iter(&records)
        .for_each_concurrent(8, |t| {
            let store = &store;
            async move {
                let record = tabular(TabularKind::Table, t, "m0");
                store.create_tabular(wh, &record).await.unwrap();
            }
        })
        .await;
    sqlx::query("VACUUM ANALYZE tabulars")
        .execute(store.pool())
        .await
        .unwrap();
    let big: uuid::Uuid = sqlx::query_scalar("SELECT id FROM namespaces WHERE name = 'big'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let mut conn = store.pool().acquire().await.unwrap();
    for set in [
        "SET plan_cache_mode = force_generic_plan",
        "SET enable_seqscan = off",
        "SET enable_bitmapscan = off",
    ] {
        sqlx::query(set).execute(&mut *conn).await.unwrap();
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "PREPARE page(uuid, text, text, bigint) AS {}",
        floe::store::postgres::LIST_TABULARS
    )))
    .execute(&mut *conn)
    .await
    .unwrap();
    let plan: sqlx::types::Json<serde_json::Value> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE page('{big}', 'table', 't0150', 101)"
        )))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let scan = &plan.0[0]["Plan"]["Plans"][0];
    assert_eq!(scan["Node Type"], "Index Only Scan", "{plan:?}");
    assert_eq!(scan["Index Name"], "tabulars_listing");
    assert_eq!(scan["Heap Fetches"], 0, "no table row was read");
    assert_eq!(scan["Actual Rows"], 101);
}

/// An entry's expiry under load finds every load of the table in flight; they share one read
/// of the database instead of each taking a connection (in the two-replica benchmark, loads
/// waited past the pool's 3 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loads_that_miss_a_cached_pointer_together_share_one_read() {
    let WarmReplica {
        _db,
        store: b,
        wh,
        t,
        ..
    } = warm_replica(Duration::from_millis(200)).await;
    let first = b.pointers().reads();
    tokio::time::sleep(Duration::from_millis(300)).await; // the entry is too old to serve
    let loads = futures::future::join_all((0..8).map(|_| b.get_tabular(wh, &t))).await;
    assert!(
        loads
            .iter()
            .all(|l| l.as_ref().unwrap().as_ref().unwrap().metadata_location == "m0")
    );
    assert_eq!(b.pointers().reads() - first, 1, "eight misses, one read");
}

/// The misses `floe_grant_cache_misses_total` counted in `run`, with a recorder of its own.
fn grant_cache_misses_in(run: impl std::future::Future<Output = ()>) -> u64 {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run)
    });
    handle
        .render()
        .lines()
        .filter(|l| l.starts_with("floe_grant_cache_misses_total"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// Under load an entry's expiry finds every request in flight for the principal; if each read
/// the grants itself, they would all go to the database at once (a burst of new connections
/// that held loads of a hot table for seconds, some past the pool's 3 s, in the million-table
/// benchmark). They share one read.
#[test]
fn requests_that_miss_the_grant_cache_together_share_one_read() {
    let misses = grant_cache_misses_in(async {
        let db = TestDatabase::create().await;
        let store: Arc<dyn CatalogStore> = Arc::new(PgStore::connect(&db.url, 16).await.unwrap());
        let warehouse = seed_warehouse(store.as_ref()).await;
        let tenant = store
            .get_warehouse(warehouse)
            .await
            .unwrap()
            .unwrap()
            .tenant_id;
        let principal = principal(tenant, "reader");
        store
            .create_principal(
                &principal,
                &Change::Principal {
                    principal: principal.id,
                },
            )
            .await
            .unwrap();
        let role = RoleRecord {
            id: floe::domain::RoleId::new_v4(),
            tenant_id: tenant,
            name: "readers".into(),
            created_at_ms: 1,
        };
        store.create_role(&role, &Change::Grants).await.unwrap();
        store
            .assign_role(principal.id, role.id, &Change::Grants)
            .await
            .unwrap();
        store
            .create_grant(
                &GrantRecord {
                    id: uuid::Uuid::new_v4(),
                    tenant_id: tenant,
                    role_id: role.id,
                    resource: GrantResource::Warehouse { warehouse },
                    privilege: Privilege::TableReadData,
                    created_at_ms: 1,
                },
                &Change::Grants,
            )
            .await
            .unwrap();
        let authz = floe::authz::Authorizer::new(store);
        let caller = floe::identity::Caller {
            principal_id: principal.id,
            tenant_id: tenant,
            name: "reader".into(),
            root: false,
            expires_at: i64::MAX,
            authenticated_at: 0,
        };
        let table = floe::authz::on_table(warehouse, &ident(&["ns"], "t"));
        let decisions = futures::future::join_all(
            (0..8).map(|_| authz.allows(&caller, &table, Privilege::TableReadData)),
        )
        .await;
        assert!(
            decisions.into_iter().all(|d| d.unwrap()),
            "the grant allows"
        );
    });
    assert_eq!(
        misses, 1,
        "eight requests missing together read the grants once"
    );
}
