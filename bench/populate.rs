//! Benchmark helper (not a test): fills a catalog through the store API, as `floe serve` would
//! find it, for `bench/scale.py`. Tenants, each with one local warehouse, namespaces and tables;
//! tenant 0's warehouse also holds a namespace `big` of `--big` tables. Every `--sample`-th table
//! (and every table of `big`) gets a real metadata file and is listed in `<out>/sample.txt`
//! (`warehouse-id namespace table` per line) for the loads; the rest point at files never read.
//!
//! `cargo run --release --example populate -- --store sled --data-dir D --files F ...`
//! `cargo run --release --example populate -- --store postgres --url URL --files F ...`

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::Parser;
use futures::StreamExt;
use uuid::Uuid;

use floe::changes::Change;
use floe::domain::{NamespaceIdent, ObjectName, TableIdent};
use floe::storage::StorageProfile;
use floe::store::{
    CatalogStore, NamespaceRecord, PgStore, SledStore, TabularKind, TabularRecord, TenantRecord,
    WarehouseRecord,
};

#[derive(Parser)]
struct Args {
    /// `sled` or `postgres`.
    #[arg(long)]
    store: String,
    /// sled: the data directory `floe serve --data-dir` will be given.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// PostgreSQL: the database URL.
    #[arg(long)]
    url: Option<String>,
    /// Where the warehouses' files go.
    #[arg(long)]
    files: PathBuf,
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    #[arg(long, default_value_t = 100)]
    tables: usize,
    #[arg(long, default_value_t = 10_000)]
    big: usize,
    #[arg(long, default_value_t = 50)]
    sample: usize,
    /// Store calls in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

fn metadata_json(id: Uuid, location: &str) -> String {
    format!(
        r#"{{"format-version":2,"table-uuid":"{id}","location":"{location}","last-sequence-number":0,"last-updated-ms":1700000000000,"last-column-id":2,"current-schema-id":0,"schemas":[{{"type":"struct","schema-id":0,"fields":[{{"id":1,"name":"id","required":true,"type":"long"}},{{"id":2,"name":"city","required":false,"type":"string"}}]}}],"default-spec-id":0,"partition-specs":[{{"spec-id":0,"fields":[]}}],"last-partition-id":999,"default-sort-order-id":0,"sort-orders":[{{"order-id":0,"fields":[]}}],"properties":{{}},"snapshots":[],"snapshot-log":[],"metadata-log":[]}}"#
    )
}

struct Table {
    warehouse: floe::domain::WarehouseId,
    namespace: String,
    name: String,
    location: String,
    with_file: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store: Arc<dyn CatalogStore> = match args.store.as_str() {
        "sled" => {
            let dir = args.data_dir.clone().expect("--data-dir").join("catalog");
            Arc::new(SledStore::open_with_cache(&dir, 128 * 1024 * 1024)?)
        }
        "postgres" => Arc::new(PgStore::connect(args.url.as_deref().expect("--url"), 32).await?),
        other => anyhow::bail!("unknown store {other}"),
    };
    let started = Instant::now();
    let mut tables = Vec::new();
    for t in 0..args.tenants {
        let tenant = TenantRecord {
            id: floe::domain::TenantId::now_v7(),
            name: format!("bench-{t:05}"),
            created_at_ms: 1,
        };
        let change = Change::Tenant { tenant: tenant.id };
        store.create_tenant(&tenant, &change).await?;
        let root = format!("file://{}/t{t:05}", args.files.display());
        let warehouse = WarehouseRecord {
            id: floe::domain::WarehouseId::now_v7(),
            tenant_id: tenant.id,
            name: "w".into(),
            storage: StorageProfile::Local { root: root.clone() },
            credential: None,
            scan_planning_mode: None,
            created_at_ms: 1,
        };
        let change = Change::Warehouse {
            warehouse: warehouse.id,
        };
        store.create_warehouse(&warehouse, &change).await?;
        let mut namespaces: Vec<(String, usize)> = (0..args.namespaces)
            .map(|n| (format!("ns{n:03}"), args.tables))
            .collect();
        if t == 0 && args.big > 0 {
            namespaces.push(("big".into(), args.big));
        }
        for (namespace, count) in namespaces {
            store
                .create_namespace(
                    warehouse.id,
                    &NamespaceRecord {
                        id: Uuid::now_v7(),
                        ident: NamespaceIdent::new(vec![namespace.clone()])?,
                        properties: Default::default(),
                        created_at_ms: 1,
                    },
                )
                .await?;
            for k in 0..count {
                let name = format!("table{k:05}");
                tables.push(Table {
                    warehouse: warehouse.id,
                    location: format!("{root}/{namespace}/{name}"),
                    with_file: namespace == "big" || tables.len() % args.sample == 0,
                    namespace: namespace.clone(),
                    name,
                });
            }
        }
    }
    // Spread over tenants and namespaces, as real traffic is (creates in one namespace contend on
    // its record and its location's counts).
    tables.sort_by_cached_key(|t| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (t.warehouse, &t.namespace, &t.name).hash(&mut h);
        h.finish()
    });
    let setup = started.elapsed();
    let total = tables.len();
    let done = Arc::new(AtomicU64::new(0));
    let sample = Arc::new(std::sync::Mutex::new(Vec::new()));
    futures::stream::iter(tables)
        .for_each_concurrent(args.concurrency, |table| {
            let (store, done, sample) = (store.clone(), done.clone(), sample.clone());
            async move {
                let id = Uuid::now_v7();
                let metadata_location =
                    format!("{}/metadata/00000-{id}.metadata.json", table.location);
                if table.with_file {
                    let path = metadata_location.trim_start_matches("file://").to_owned();
                    let json = metadata_json(id, &table.location);
                    tokio::task::spawn_blocking(move || {
                        let path = std::path::Path::new(&path);
                        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                        std::fs::write(path, json).unwrap();
                    })
                    .await
                    .unwrap();
                    sample.lock().unwrap().push(format!(
                        "{} {} {}",
                        table.warehouse, table.namespace, table.name
                    ));
                }
                let record = TabularRecord {
                    id: id.into(),
                    kind: TabularKind::Table,
                    ident: TableIdent::new(
                        NamespaceIdent::new(vec![table.namespace]).unwrap(),
                        ObjectName::new(&table.name).unwrap(),
                    ),
                    location: table.location,
                    metadata_location,
                    created_at_ms: 1,
                };
                store
                    .create_tabular(table.warehouse, &record)
                    .await
                    .unwrap();
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % 100_000 == 0 {
                    eprintln!("{n} tables after {:.0} s", started.elapsed().as_secs_f64());
                }
            }
        })
        .await;
    store.close().await?;
    let took = started.elapsed();
    std::fs::write(
        args.files.join("sample.txt"),
        sample.lock().unwrap().join("\n"),
    )?;
    println!(
        "{{\"tables\": {total}, \"setup_secs\": {:.1}, \"secs\": {:.1}, \"tables_per_sec\": {:.0}}}",
        setup.as_secs_f64(),
        took.as_secs_f64(),
        total as f64 / (took - setup).as_secs_f64()
    );
    Ok(())
}
