//! The recycle bin's state machine, driven by proptest over HTTP on both stores: random
//! sequences of create (at default or shared locations, with chosen uuids), drop (with and without
//! purge), restore, purge-now, expiry (retention of 1 s, the purge queue running every 100 ms) and
//! register, from two principals (the tenant's root and a creator with rights in one namespace).
//! After every step, and once the queue has drained:
//! - every live table loads, and its current metadata file is still on disk (no live table's
//!   files were deleted);
//! - no location has two owners: no live table's location equals, contains or lies inside another
//!   live table's or a bin entry's;
//! - at the end, every bin entry can be restored (or has left, or is being purged) and purged.
//!
//! Cases: `PROPTEST_CASES` (default 10 on sled, 5 on PostgreSQL).

use std::time::Duration;

use proptest::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

#[derive(Debug, Clone)]
enum Op {
    /// A table `c{name}` by the creator in `att`, or `a{name}` by root in `adm`, at its default
    /// location, `shared/s0`, `shared/s1` or `shared` (above both).
    Create {
        creator: bool,
        name: u8,
        at: Option<u8>,
    },
    Drop {
        creator: bool,
        name: u8,
        purge: bool,
    },
    Restore(u8),
    PurgeNow(u8),
    /// The creator registers the metadata file of a table created earlier (live or dropped).
    Register(u8),
    /// The creator creates a table with the uuid of a table created earlier (`assign-uuid`).
    CreateWithUuid(u8),
    /// Time passes: drops expire and the queue purges them.
    Wait,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 0..3u8, prop::option::of(0..3u8))
            .prop_map(|(creator, name, at)| Op::Create { creator, name, at }),
        3 => (any::<bool>(), 0..3u8, any::<bool>())
            .prop_map(|(creator, name, purge)| Op::Drop { creator, name, purge }),
        2 => any::<u8>().prop_map(Op::Restore),
        2 => any::<u8>().prop_map(Op::PurgeNow),
        1 => any::<u8>().prop_map(Op::Register),
        1 => any::<u8>().prop_map(Op::CreateWithUuid),
        1 => Just(Op::Wait),
    ]
}

struct World<'a> {
    app: &'a TestApp,
    root: Session<'a>,
    creator: Session<'a>,
    tenant: String,
    /// Every table ever created: its uuid, metadata file and first schema.
    known: Vec<(Value, String, Value)>,
    restored: usize,
}

fn path_of(location: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(location.strip_prefix("file://").unwrap())
}

fn overlaps(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
}

impl World<'_> {
    fn who(&self, creator: bool) -> (&Session<'_>, &'static str, char) {
        if creator {
            (&self.creator, "att", 'c')
        } else {
            (&self.root, "adm", 'a')
        }
    }

    fn tables(&self, ns: &str) -> String {
        format!("/v1/{}/namespaces/{ns}/tables", self.app.prefix)
    }

    fn bin(&self) -> String {
        format!(
            "/management/v1/tenants/{}/warehouses/{}/dropped",
            self.tenant, self.app.prefix
        )
    }

    async fn dropped(&self) -> Vec<Value> {
        let list = self.root.ok(Method::GET, &self.bin(), None).await;
        list["dropped"].as_array().unwrap().clone()
    }

    fn location(&self, at: u8) -> String {
        let root = format!(
            "file://{}",
            self.app.data_dir.path().join("warehouse").display()
        );
        match at {
            2 => format!("{root}/shared"),
            i => format!("{root}/shared/s{i}"),
        }
    }

    async fn apply(&mut self, op: &Op) {
        match *op {
            Op::Create { creator, name, at } => {
                let (session, ns, prefix) = self.who(creator);
                let mut req = table_request(&format!("{prefix}{name}"));
                if let Some(at) = at {
                    req["location"] = json!(self.location(at));
                }
                let r = session
                    .send(Method::POST, &self.tables(ns), Some(req))
                    .await;
                let status = r.status().as_u16();
                assert!([200, 400, 409].contains(&status), "create: {status}");
                if status == 200 {
                    let created: Value = r.json().await.unwrap();
                    self.known.push((
                        created["metadata"]["table-uuid"].clone(),
                        created["metadata-location"].as_str().unwrap().to_owned(),
                        created["metadata"]["schemas"][0].clone(),
                    ));
                }
            }
            Op::Drop {
                creator,
                name,
                purge,
            } => {
                let (session, ns, prefix) = self.who(creator);
                let path = format!("{}/{prefix}{name}?purgeRequested={purge}", self.tables(ns));
                let status = session.status(Method::DELETE, &path, None).await.as_u16();
                assert!([204, 404].contains(&status), "drop: {status}");
            }
            Op::Restore(pick) => {
                let dropped = self.dropped().await;
                if dropped.is_empty() {
                    return;
                }
                let entry = &dropped[pick as usize % dropped.len()];
                self.restored += 1;
                let path = format!("{}/{}/restore", self.bin(), entry["id"].as_str().unwrap());
                let body = json!({"name": format!("r{}", self.restored)});
                let r = self.root.send(Method::POST, &path, Some(body)).await;
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                // Gone meanwhile (404), or being purged (409): never anything else.
                assert!(
                    status == 200
                        || status == 404
                        || status == 409 && text.contains("being purged"),
                    "restore: {status} {text}"
                );
            }
            Op::PurgeNow(pick) => {
                let dropped = self.dropped().await;
                if dropped.is_empty() {
                    return;
                }
                let entry = &dropped[pick as usize % dropped.len()];
                let path = format!("{}/{}", self.bin(), entry["id"].as_str().unwrap());
                let status = self.root.status(Method::DELETE, &path, None).await.as_u16();
                assert!([202, 404].contains(&status), "purge: {status}");
            }
            Op::Register(pick) => {
                if self.known.is_empty() {
                    return;
                }
                let (_, metadata, _) = &self.known[pick as usize % self.known.len()];
                let body = json!({"name": format!("reg{pick}"), "metadata-location": metadata});
                let path = format!("/v1/{}/namespaces/att/register", self.app.prefix);
                let status = self
                    .creator
                    .status(Method::POST, &path, Some(body))
                    .await
                    .as_u16();
                assert!([200, 400, 403, 409].contains(&status), "register: {status}");
            }
            Op::CreateWithUuid(pick) => {
                if self.known.is_empty() {
                    return;
                }
                let (uuid, _, schema) = &self.known[pick as usize % self.known.len()];
                let commit = json!({"requirements": [{"type": "assert-create"}], "updates": [
                    {"action": "assign-uuid", "uuid": uuid},
                    {"action": "add-schema", "schema": schema},
                    {"action": "set-current-schema", "schema-id": -1}]});
                let path = format!("{}/u{pick}", self.tables("att"));
                let status = self
                    .creator
                    .status(Method::POST, &path, Some(commit))
                    .await
                    .as_u16();
                assert!([200, 409].contains(&status), "create with uuid: {status}");
            }
            Op::Wait => tokio::time::sleep(Duration::from_millis(1300)).await,
        }
    }

    /// Every live table: its location and current metadata file.
    async fn live(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for ns in ["adm", "att"] {
            let list = self.root.ok(Method::GET, &self.tables(ns), None).await;
            for ident in list["identifiers"].as_array().unwrap() {
                let name = ident["name"].as_str().unwrap();
                let path = format!("{}/{name}", self.tables(ns));
                let r = self.root.send(Method::GET, &path, None).await;
                let status = r.status();
                let text = r.text().await.unwrap();
                assert_eq!(status, 200, "live table {ns}.{name} does not load: {text}");
                let loaded: Value = serde_json::from_str(&text).unwrap();
                out.push((
                    format!("{ns}.{name}"),
                    loaded["metadata"]["location"].as_str().unwrap().to_owned(),
                    loaded["metadata-location"].as_str().unwrap().to_owned(),
                ));
            }
        }
        out
    }

    async fn check(&self) {
        let live = self.live().await;
        for (name, _, metadata) in &live {
            assert!(
                path_of(metadata).exists(),
                "live table {name}'s metadata file {metadata} was deleted"
            );
        }
        let dropped = self.dropped().await;
        let owners: Vec<(String, &str)> = live
            .iter()
            .map(|(name, location, _)| (name.clone(), location.as_str()))
            .chain(
                dropped
                    .iter()
                    .map(|d| (format!("bin {}", d["id"]), d["location"].as_str().unwrap())),
            )
            .collect();
        for (i, (a, la)) in owners.iter().enumerate() {
            for (b, lb) in &owners[i + 1..] {
                assert!(!overlaps(la, lb), "{a} at {la} and {b} at {lb} overlap");
            }
        }
    }

    /// Waits until nothing in the bin is due (the queue has worked through it).
    async fn drain(&self) {
        for _ in 0..100 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            let due = self
                .dropped()
                .await
                .iter()
                .any(|d| d["expires_at_ms"].as_i64().unwrap() <= now);
            if !due {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the purge queue did not drain in 10 s");
    }

    /// Every bin entry can leave: restored (or it has left, or is being purged) or purged, in
    /// turn; what was restored is live and whole, what was purged leaves the bin.
    async fn every_entry_can_leave(&mut self) {
        for (i, entry) in self.dropped().await.into_iter().enumerate() {
            let id = entry["id"].as_str().unwrap().to_owned();
            if i % 2 == 1 {
                let path = format!("{}/{id}", self.bin());
                let status = self.root.status(Method::DELETE, &path, None).await.as_u16();
                assert!(
                    [202, 404].contains(&status),
                    "bin entry {id} cannot be purged: {status}"
                );
                continue;
            }
            self.restored += 1;
            let name = format!("r{}", self.restored);
            let r = self
                .root
                .send(
                    Method::POST,
                    &format!("{}/{id}/restore", self.bin()),
                    Some(json!({"name": name})),
                )
                .await;
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert!(
                status == 200 || status == 404 || status == 409 && text.contains("being purged"),
                "bin entry {id} cannot be restored: {status} {text}"
            );
        }
        self.drain().await;
        self.check().await;
    }
}

async fn run(store: Store, ops: Vec<Op>) {
    let app = spawn_app_on_with(store, |s| {
        s.drop_retention_secs = 1;
        s.purge_interval_ms = 100;
    })
    .await;
    app.create_namespace(&["adm"]).await;
    app.create_namespace(&["att"]).await;
    let root = Session::root(&app);
    let me = root.ok(Method::GET, "/management/v1/whoami", None).await;
    let tenant = me["tenant_id"].as_str().unwrap().to_owned();
    let (client_id, secret, id) = principal(&root, &tenant, "creator").await;
    let att = json!({"kind": "namespace", "warehouse": app.prefix, "namespace": ["att"]});
    let grants = [
        "TABLE_CREATE",
        "TABLE_DROP",
        "TABLE_WRITE_DATA",
        "TABLE_LIST",
    ]
    .into_iter()
    .map(|p| (att.clone(), p))
    .collect();
    role_with(&root, &tenant, "creators", grants, &id).await;
    let creator = Session::login(&app, &client_id, &secret).await;
    let mut world = World {
        app: &app,
        root,
        creator,
        tenant,
        known: Vec::new(),
        restored: 0,
    };
    for op in &ops {
        world.apply(op).await;
        world.check().await;
    }
    world.drain().await;
    world.check().await;
    world.every_entry_can_leave().await;
}

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    }
}

fn on(store: Store, ops: Vec<Op>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(store, ops));
}

proptest! {
    #![proptest_config(cases(10))]
    #[test]
    fn on_sled_no_sequence_loses_a_live_table(ops in prop::collection::vec(op(), 1..16)) {
        on(Store::Sled, ops);
    }
}

proptest! {
    #![proptest_config(cases(5))]
    #[test]
    fn on_postgres_no_sequence_loses_a_live_table(ops in prop::collection::vec(op(), 1..16)) {
        on(Store::Postgres, ops);
    }
}
