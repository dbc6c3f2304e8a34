//! Tables over HTTP: create, stage-create, load (ETag, snapshots=refs), commit and its conflicts,
//! concurrent appenders, transactions, rename, register, and guarded locations (drops and purges:
//! `api_recycle_bin`).

use std::path::PathBuf;

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn local_path(location: &str) -> PathBuf {
    PathBuf::from(location.strip_prefix("file://").unwrap())
}

#[tokio::test]
async fn create_load_and_list_tables() {
    let app = spawn_app().await;
    app.create_namespace(&["ns"]).await;
    let created = app.create_table("ns", "t").await;
    let location = created["metadata-location"].as_str().unwrap();
    assert!(location.contains("/metadata/00000-"), "{location}");
    assert!(
        local_path(location).exists(),
        "the metadata file is written"
    );
    assert_eq!(created["metadata"]["properties"]["owner"], "tests");
    assert_eq!(
        created["metadata"]["partition-specs"][0]["fields"][0]["transform"],
        "day"
    );
    let table_dir = created["metadata"]["location"].as_str().unwrap();
    assert!(table_dir.starts_with(
        &format!("file://{}", std::fs::canonicalize(app.data_dir.path()).unwrap().display())
    ));

    let r = app.post("/namespaces/ns/tables", table_request("t")).await;
    assert_error(r, 409, "AlreadyExistsException").await;
    let r = app
        .post("/namespaces/nope/tables", table_request("t"))
        .await;
    assert_error(r, 404, "NoSuchNamespaceException").await;
    assert_error(
        app.get("/namespaces/ns/tables/missing").await,
        404,
        "NoSuchTableException",
    )
    .await;
    assert_eq!(
        app.catalog(Method::HEAD, "/namespaces/ns/tables/t")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        app.catalog(Method::HEAD, "/namespaces/ns/tables/x")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    app.create_table("ns", "u").await;
    let listed: Value = app.get("/namespaces/ns/tables").await.json().await.unwrap();
    assert_eq!(
        listed["identifiers"],
        json!([{"namespace": ["ns"], "name": "t"}, {"namespace": ["ns"], "name": "u"}])
    );
    assert_error(
        app.get("/namespaces/nope/tables").await,
        404,
        "NoSuchNamespaceException",
    )
    .await;
}

#[tokio::test]
async fn load_table_answers_304_for_the_current_etag() {
    let app = spawn_app().await;
    app.create_namespace(&["ns"]).await;
    app.create_table("ns", "t").await;
    let r = app.get("/namespaces/ns/tables/t").await;
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let r = app
        .catalog(Method::GET, "/namespaces/ns/tables/t")
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let refs = app
        .catalog(Method::GET, "/namespaces/ns/tables/t?snapshots=refs")
        .send()
        .await
        .unwrap();
    assert_ne!(
        refs.headers()["etag"].to_str().unwrap(),
        etag,
        "refs and all are different representations"
    );
    let metadata = app.load_table("ns", "t").await["metadata"].clone();
    assert_eq!(
        app.post("/namespaces/ns/tables/t", append_commit(&metadata, 11))
            .await
            .status(),
        200
    );
    let r = app
        .catalog(Method::GET, "/namespaces/ns/tables/t")
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a commit changes the ETag");
    assert_error(
        app.get("/namespaces/ns/tables/t?snapshots=some").await,
        400,
        "BadRequestException",
    )
    .await;
}

#[tokio::test]
async fn snapshots_refs_returns_only_referenced_snapshots() {
    let app = spawn_app().await;
    app.create_namespace(&["ns"]).await;
    app.create_table("ns", "t").await;
    for id in [1, 2] {
        let md = app.load_table("ns", "t").await["metadata"].clone();
        assert_eq!(
            app.post("/namespaces/ns/tables/t", append_commit(&md, id))
                .await
                .status(),
            200
        );
    }
    let all = app.load_table("ns", "t").await;
    assert_eq!(all["metadata"]["snapshots"].as_array().unwrap().len(), 2);
    let refs: Value = app
        .get("/namespaces/ns/tables/t?snapshots=refs")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<i64> = refs["metadata"]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshot-id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![2]);
}

#[tokio::test]
async fn commits_check_requirements_and_keep_history() {
    let app = spawn_app().await;
    app.create_namespace(&["ns"]).await;
    let created = app.create_table("ns", "t").await;
    let first = created["metadata"].clone();
    let r = app
        .post("/namespaces/ns/tables/t", append_commit(&first, 1))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["metadata-location"]
            .as_str()
            .unwrap()
            .contains("/metadata/00001-")
    );
    assert_eq!(body["metadata"]["current-snapshot-id"], 1);
    assert_eq!(
        body["metadata"]["metadata-log"].as_array().unwrap().len(),
        1
    );
    // A second writer that saw the old state loses: its requirement fails against the new metadata.
    let r = app
        .post("/namespaces/ns/tables/t", append_commit(&first, 2))
        .await;
    let message = assert_error(r, 409, "CommitFailedException").await;
    assert!(message.contains("main"), "{message}");
    let r = app.post("/namespaces/ns/tables/t", json!({"requirements": [{"type": "assert-table-uuid", "uuid": uuid::Uuid::new_v4()}], "updates": []})).await;
    assert_error(r, 409, "CommitFailedException").await;
    // Changes that do not depend on the snapshot apply on top of newer metadata.
    let r = app.post("/namespaces/ns/tables/t", json!({"requirements": [], "updates": [{"action": "set-properties", "updates": {"k": "v"}}]})).await;
    assert_eq!(r.status(), 200);
    let md = app.load_table("ns", "t").await["metadata"].clone();
    assert_eq!(
        (
            md["current-snapshot-id"].as_i64(),
            md["properties"]["k"].as_str()
        ),
        (Some(1), Some("v"))
    );
    // Schema evolution.
    let evolve = json!({"requirements": [{"type": "assert-current-schema-id", "current-schema-id": 0}], "updates": [
        {"action": "add-schema", "schema": {"type": "struct", "schema-id": 1, "fields": [
            {"id": 1, "name": "id", "type": "long", "required": true},
            {"id": 2, "name": "ts", "type": "timestamptz", "required": false},
            {"id": 3, "name": "note", "type": "string", "required": false}]}, "last-column-id": 3},
        {"action": "set-current-schema", "schema-id": -1}]});
    let r = app.post("/namespaces/ns/tables/t", evolve).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(
        app.load_table("ns", "t").await["metadata"]["current-schema-id"],
        1
    );
    assert_error(
        app.post("/namespaces/ns/tables/none", append_commit(&first, 3))
            .await,
        404,
        "NoSuchTableException",
    )
    .await;
    let r = app
        .post(
            "/namespaces/ns/tables/t",
            json!({"requirements": [], "updates": [{"action": "frobnicate"}]}),
        )
        .await;
    assert_error(r, 400, "BadRequestException").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_appenders_lose_nothing() {
    let app = std::sync::Arc::new(spawn_app().await);
    app.create_namespace(&["ns"]).await;
    app.create_table("ns", "t").await;
    let (writers, per_writer) = (8i64, 6i64);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for i in 0..per_writer {
                loop {
                    let md = app.load_table("ns", "t").await["metadata"].clone();
                    let r = app
                        .post(
                            "/namespaces/ns/tables/t",
                            append_commit(&md, 1000 * (w + 1) + i),
                        )
                        .await;
                    match r.status().as_u16() {
                        200 => break,
                        409 => conflicts += 1,
                        other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
                    }
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let md = app.load_table("ns", "t").await["metadata"].clone();
    // Walk the chain from the current snapshot: every acknowledged append is on it.
    let snapshots: std::collections::HashMap<i64, Option<i64>> = md["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["snapshot-id"].as_i64().unwrap(),
                s["parent-snapshot-id"].as_i64(),
            )
        })
        .collect();
    let mut chain = 0;
    let mut cursor = md["current-snapshot-id"].as_i64();
    while let Some(id) = cursor {
        chain += 1;
        cursor = snapshots[&id];
    }
    assert_eq!(chain, writers * per_writer);
}

/// The commit that completes a staged create, as Iceberg Java sends it: `assert-create` and the
/// staged metadata's uuid, schema, spec, sort order and location, with `properties`.
fn create_commit(md: &Value, properties: Value) -> Value {
    json!({
        "requirements": [{"type": "assert-create"}],
        "updates": [
            {"action": "assign-uuid", "uuid": md["table-uuid"]},
            {"action": "upgrade-format-version", "format-version": 2},
            {"action": "add-schema", "schema": md["schemas"][0], "last-column-id": 2},
            {"action": "set-current-schema", "schema-id": -1},
            {"action": "add-spec", "spec": md["partition-specs"][0]},
            {"action": "set-default-spec", "spec-id": -1},
            {"action": "add-sort-order", "sort-order": md["sort-orders"][0]},
            {"action": "set-default-sort-order", "sort-order-id": -1},
            {"action": "set-location", "location": md["location"]},
            {"action": "set-properties", "updates": properties}
        ]
    })
}

#[tokio::test]
async fn stage_create_then_commit_creates_the_table() {
    let app = spawn_app().await;
    app.create_namespace(&["ns"]).await;
    let mut req = table_request("staged");
    req["stage-create"] = json!(true);
    let r = app.post("/namespaces/ns/tables", req).await;
    assert_eq!(r.status(), 200);
    let staged: Value = r.json().await.unwrap();
    assert_eq!(staged["metadata-location"], Value::Null);
    assert_error(
        app.get("/namespaces/ns/tables/staged").await,
        404,
        "NoSuchTableException",
    )
    .await;
    let md = &staged["metadata"];
    let commit = create_commit(md, json!({"owner": "tests"}));
    let r = app
        .post("/namespaces/ns/tables/staged", commit.clone())
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let loaded = app.load_table("ns", "staged").await;
    assert_eq!(loaded["metadata"]["table-uuid"], md["table-uuid"]);
    assert_error(
        app.post("/namespaces/ns/tables/staged", commit).await,
        409,
        "CommitFailedException",
    )
    .await;
}

/// The `demo` warehouse's root, as the server names it.
fn demo_root(app: &TestApp) -> String {
    let dir = std::fs::canonicalize(app.data_dir.path()).unwrap();
    format!("file://{}", dir.join("warehouse").display())
}

#[tokio::test]
async fn locations_outside_the_warehouse_are_refused() {
    let app = spawn_app().await;
    app.create_namespace(&["ns"]).await;
    let root = demo_root(&app);
    for location in [
        "file:///tmp/elsewhere".to_string(),
        format!("{root}/../escape"),
        format!("{root}x/sibling"),
        "s3://other/bucket".into(),
    ] {
        let mut req = table_request("t");
        req["location"] = json!(location);
        assert_error(
            app.post("/namespaces/ns/tables", req).await,
            400,
            "BadRequestException",
        )
        .await;
    }
    let mut req = table_request("t");
    req["location"] = json!(format!("{root}/custom/t"));
    assert_eq!(app.post("/namespaces/ns/tables", req).await.status(), 200);
    let mut req = table_request("u");
    req["properties"] = json!({"write.data.path": "file:///tmp/steal"});
    assert_error(
        app.post("/namespaces/ns/tables", req).await,
        400,
        "BadRequestException",
    )
    .await;
    let r = app.post("/namespaces/ns/tables/t", json!({"requirements": [], "updates": [{"action": "set-properties", "updates": {"write.metadata.path": "file:///tmp/x"}}]})).await;
    assert_error(r, 400, "BadRequestException").await;
    let r = app.post("/namespaces/ns/tables/t", json!({"requirements": [], "updates": [{"action": "set-location", "location": "file:///tmp/x"}]})).await;
    assert_error(r, 400, "BadRequestException").await;
    let r = app
        .post(
            "/namespaces/ns/tables",
            json!({"name": "a/b", "schema": table_request("x")["schema"]}),
        )
        .await;
    assert_error(r, 400, "BadRequestException").await;
}

#[tokio::test]
async fn rename_moves_tables_across_namespaces() {
    let app = spawn_app().await;
    app.create_namespace(&["a"]).await;
    app.create_namespace(&["b"]).await;
    let created = app.create_table("a", "t").await;
    app.create_table("b", "taken").await;
    let rename = |src: &str, dst_ns: &str, dst: &str| json!({"source": {"namespace": ["a"], "name": src}, "destination": {"namespace": [dst_ns], "name": dst}});
    assert_error(
        app.post("/tables/rename", rename("t", "b", "taken")).await,
        409,
        "AlreadyExistsException",
    )
    .await;
    assert_error(
        app.post("/tables/rename", rename("t", "zz", "t")).await,
        404,
        "NoSuchNamespaceException",
    )
    .await;
    assert_error(
        app.post("/tables/rename", rename("nope", "b", "x")).await,
        404,
        "NoSuchTableException",
    )
    .await;
    assert_eq!(
        app.post("/tables/rename", rename("t", "b", "moved"))
            .await
            .status(),
        204
    );
    let moved = app.load_table("b", "moved").await;
    assert_eq!(moved["metadata-location"], created["metadata-location"]);
    assert_error(
        app.get("/namespaces/a/tables/t").await,
        404,
        "NoSuchTableException",
    )
    .await;
    assert_eq!(
        app.delete("/namespaces/a").await.status(),
        204,
        "the source namespace is empty now"
    );
}

#[tokio::test]
async fn register_takes_an_existing_metadata_file() {
    // Without a recycle bin: a binned table's id is its own, and its files come back by restore.
    let app = spawn_app_with(|s| s.drop_retention_secs = 0).await;
    app.create_namespace(&["ns"]).await;
    let created = app.create_table("ns", "orig").await;
    let location = created["metadata-location"].as_str().unwrap();
    assert_eq!(app.delete("/namespaces/ns/tables/orig").await.status(), 204);
    let r = app
        .post(
            "/namespaces/ns/register",
            json!({"name": "again", "metadata-location": location}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.load_table("ns", "again").await["metadata-location"],
        location
    );
    let r = app
        .post(
            "/namespaces/ns/register",
            json!({"name": "again", "metadata-location": location}),
        )
        .await;
    assert_error(r, 409, "AlreadyExistsException").await;
    let r = app
        .post(
            "/namespaces/ns/register",
            json!({"name": "again", "metadata-location": location, "overwrite": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post(
            "/namespaces/ns/register",
            json!({"name": "x", "metadata-location": "file:///etc/passwd"}),
        )
        .await;
    assert_error(r, 400, "BadRequestException").await;
}

#[tokio::test]
async fn transactions_commit_all_tables_or_none() {
    let app = spawn_app().await;
    app.create_namespace(&["ns"]).await;
    let a = app.create_table("ns", "a").await["metadata"].clone();
    let b = app.create_table("ns", "b").await["metadata"].clone();
    let change = |name: &str, md: &Value, id: i64| {
        let mut c = append_commit(md, id);
        c["identifier"] = json!({"namespace": ["ns"], "name": name});
        c
    };
    let stale_b = json!({"identifier": {"namespace": ["ns"], "name": "b"}, "requirements": [{"type": "assert-table-uuid", "uuid": uuid::Uuid::new_v4()}], "updates": []});
    let r = app
        .post(
            "/transactions/commit",
            json!({"table-changes": [change("a", &a, 1), stale_b]}),
        )
        .await;
    assert_error(r, 409, "CommitFailedException").await;
    assert_eq!(
        app.load_table("ns", "a").await["metadata"]["current-snapshot-id"],
        Value::Null,
        "nothing of a failed transaction is applied"
    );
    let r = app
        .post(
            "/transactions/commit",
            json!({"table-changes": [change("a", &a, 1), change("b", &b, 2)]}),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        app.load_table("ns", "a").await["metadata"]["current-snapshot-id"],
        1
    );
    assert_eq!(
        app.load_table("ns", "b").await["metadata"]["current-snapshot-id"],
        2
    );
    let no_id = append_commit(&a, 5);
    assert_error(
        app.post("/transactions/commit", json!({"table-changes": [no_id]}))
            .await,
        400,
        "BadRequestException",
    )
    .await;
}

#[tokio::test]
async fn metrics_reports_are_accepted() {
    let app = spawn_app().await;
    app.create_namespace(&["ns"]).await;
    app.create_table("ns", "t").await;
    let report = json!({"report-type": "scan-report", "table-name": "ns.t", "snapshot-id": 1, "filter": true, "schema-id": 0, "projected-field-ids": [1], "projected-field-names": ["id"], "metrics": {}});
    assert_eq!(
        app.post("/namespaces/ns/tables/t/metrics", report.clone())
            .await
            .status(),
        204
    );
    assert_error(
        app.post("/namespaces/ns/tables/none/metrics", report).await,
        404,
        "NoSuchTableException",
    )
    .await;
}

/// The requests Trino's Iceberg connector sends (read in its source; Trino cannot run here) for
/// `CREATE SCHEMA s WITH (location = ...)`, `CREATE TABLE s.orders ...` and `DROP TABLE`: the
/// namespace location, a staged create at `<location>/<table>-<uuid>` carrying `format-version`,
/// `write.format.default` and an empty compression codec, one commit with `assert-create` that
/// repeats the location and properties, then a drop with `purgeRequested=true`.
#[tokio::test]
async fn trinos_create_schema_with_location_create_table_and_drop_are_answered() {
    // No recycle bin: the purge runs from the queue at once.
    let app = spawn_app_with(|s| s.drop_retention_secs = 0).await;
    let root = demo_root(&app);
    let schema_location = format!("{root}/trino_sales");
    let r = app
        .post(
            "/namespaces",
            json!({"namespace": ["trino_sales"], "properties": {"location": schema_location}}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let loaded = app
        .get_json(&format!("/v1/{}/namespaces/trino_sales", app.prefix))
        .await;
    assert_eq!(loaded["properties"]["location"], schema_location.as_str());

    let location = format!("{schema_location}/orders-0f4c3a2b9d8e4f6a8b7c6d5e4f3a2b1c");
    let properties = json!({"format-version": "2", "write.format.default": "PARQUET",
                            "write.parquet.compression-codec": ""});
    let mut req = table_request("orders");
    req["stage-create"] = json!(true);
    req["location"] = json!(location);
    req["properties"] = properties.clone();
    let r = app.post("/namespaces/trino_sales/tables", req).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let staged: Value = r.json().await.unwrap();
    let md = &staged["metadata"];
    assert_eq!(md["location"], location.as_str());
    assert_eq!(md["format-version"], 2);
    let commit = create_commit(md, properties);
    let r = app
        .post("/namespaces/trino_sales/tables/orders", commit)
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let loaded = app.load_table("trino_sales", "orders").await;
    assert_eq!(loaded["metadata"]["location"], location.as_str());
    let props = &loaded["metadata"]["properties"];
    assert_eq!(props["write.format.default"], "PARQUET");
    assert_eq!(props["write.parquet.compression-codec"], "");
    assert!(props.get("format-version").is_none(), "{props}");

    // Another schema cannot take a location inside this one.
    let r = app
        .post(
            "/namespaces",
            json!({"namespace": ["other"], "properties": {"location": format!("{schema_location}/x")}}),
        )
        .await;
    let message = assert_error(r, 400, "BadRequestException").await;
    assert!(message.contains("overlaps the location"), "{message}");

    let r = app
        .delete("/namespaces/trino_sales/tables/orders?purgeRequested=true")
        .await;
    assert_eq!(r.status(), 204);
    let table_dir =
        std::path::Path::new(location.strip_prefix("file://").unwrap()).join("metadata");
    let started = std::time::Instant::now();
    while table_dir.exists() && started.elapsed() < std::time::Duration::from_secs(10) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!table_dir.exists(), "the purge deleted the table's files");
}

/// Issue: a principal with create rights in one namespace placed a table at (or inside) another
/// table's location, then purged its own table to delete the victim's files, or registered the
/// victim's metadata under its own namespace to read it without a grant.
#[tokio::test]
async fn an_attacker_cannot_create_or_register_a_table_on_another_tables_location() {
    let app = spawn_app().await;
    app.create_namespace(&["victim"]).await;
    app.create_namespace(&["attacker"]).await;
    let victim = app.create_table("victim", "t").await;
    let victim_location = victim["metadata"]["location"].as_str().unwrap().to_owned();
    let victim_metadata = victim["metadata-location"].as_str().unwrap().to_owned();
    for location in [
        victim_location.clone(),
        format!("{victim_location}/data"),
        format!("{victim_location}/metadata/../data"),
    ] {
        let mut req = table_request("mine");
        req["location"] = json!(location);
        let r = app.post("/namespaces/attacker/tables", req.clone()).await;
        assert_eq!(r.status(), 400, "create at {location}");
        // A staged create is refused alike: it reserves its location before anything is
        // vended for it (issue 23: it was answered, with credentials for the victim's files).
        req["stage-create"] = json!(true);
        let r = app.post("/namespaces/attacker/tables", req).await;
        let message = assert_error(r, 400, "BadRequestException").await;
        assert!(refused_location(&message), "{message}");
    }
    // A table around the victim's location, too.
    let around = victim_location.rsplit_once('/').unwrap().0.to_owned();
    let mut req = table_request("around");
    req["location"] = json!(around);
    assert_error(
        app.post("/namespaces/attacker/tables", req).await,
        400,
        "BadRequestException",
    )
    .await;
    // Registering the victim's metadata under another name is refused: its location is owned.
    let r = app
        .post(
            "/namespaces/attacker/register",
            json!({"name": "stolen", "metadata-location": victim_metadata}),
        )
        .await;
    let message = assert_error(r, 400, "BadRequestException").await;
    assert!(refused_location(&message), "{message}");
    let r = app.get("/namespaces/attacker/tables").await;
    let listed: Value = r.json().await.unwrap();
    assert_eq!(listed["identifiers"], json!([]));
    // The victim is intact.
    assert_eq!(
        app.load_table("victim", "t").await["metadata-location"],
        victim_metadata.as_str()
    );
}

/// Issue: `register` with `overwrite` pointed the attacker's own table at the victim's metadata
/// file, so load-table answered the victim's metadata and credentials for the victim's files.
#[tokio::test]
async fn an_attacker_cannot_overwrite_its_table_with_another_tables_metadata() {
    let app = spawn_app().await;
    app.create_namespace(&["victim"]).await;
    app.create_namespace(&["attacker"]).await;
    let victim = app.create_table("victim", "t").await;
    let victim_metadata = victim["metadata-location"].as_str().unwrap().to_owned();
    let mine = app.create_table("attacker", "mine").await;
    let r = app
        .post(
            "/namespaces/attacker/register",
            json!({"name": "mine", "metadata-location": victim_metadata, "overwrite": true}),
        )
        .await;
    let message = assert_error(r, 400, "BadRequestException").await;
    assert!(
        message.contains("must keep table") || refused_location(&message),
        "{message}"
    );
    assert_eq!(
        app.load_table("attacker", "mine").await["metadata-location"],
        mine["metadata-location"]
    );
}

/// Issue: a list without `pageSize` loaded and answered everything at once.
#[tokio::test]
async fn a_list_without_a_page_size_is_paged_at_max_page_size() {
    let app = spawn_app_with(|s| s.max_page_size = 2).await;
    app.create_namespace(&["ns"]).await;
    for name in ["a", "b", "c", "d", "e"] {
        app.create_table("ns", name).await;
    }
    let mut seen = Vec::new();
    let mut path = "/namespaces/ns/tables".to_owned();
    loop {
        let page = app.get_json(&format!("/v1/{}{path}", app.prefix)).await;
        let ids = page["identifiers"].as_array().unwrap();
        assert!(ids.len() <= 2, "{page}");
        seen.extend(ids.iter().map(|i| i["name"].as_str().unwrap().to_owned()));
        match page["next-page-token"].as_str() {
            Some(token) => path = format!("/namespaces/ns/tables?pageToken={token}"),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
}

/// Issue: metadata files of any size were read whole, and commits could write them.
#[tokio::test]
async fn metadata_files_larger_than_the_limit_are_neither_read_nor_written() {
    let app = spawn_app_with(|s| s.max_metadata_file_bytes = 64 * 1024).await;
    app.create_namespace(&["ns"]).await;
    let created = app.create_table("ns", "t").await;
    let big = "x".repeat(70 * 1024);
    let r = app
        .post(
            "/namespaces/ns/tables/t",
            json!({"requirements": [], "updates": [
                {"action": "set-properties", "updates": {"padding": big}}]}),
        )
        .await;
    let message = assert_error(r, 400, "BadRequestException").await;
    assert!(message.contains("max_metadata_file_bytes"), "{message}");
    assert_eq!(
        app.load_table("ns", "t").await["metadata-location"],
        created["metadata-location"],
        "the refused commit changed nothing"
    );

    // A file grown past the limit outside the catalog cannot be registered.
    let other = app.create_table("ns", "other").await;
    let location = other["metadata-location"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete("/namespaces/ns/tables/other").await.status(),
        204
    );
    let path = location.strip_prefix("file://").unwrap();
    let mut metadata: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    metadata["properties"]["padding"] = json!(big);
    let location = location.replace(".metadata.json", "-grown.metadata.json");
    let grown = location.strip_prefix("file://").unwrap();
    std::fs::write(grown, serde_json::to_vec(&metadata).unwrap()).unwrap();
    let r = app
        .post(
            "/namespaces/ns/register",
            json!({"name": "grown", "metadata-location": location}),
        )
        .await;
    let message = assert_error(r, 400, "BadRequestException").await;
    assert!(message.contains("larger than"), "{message}");
}

/// A location refused because another owner holds it, or because it lies in another namespace's
/// server-assigned directory.
fn refused_location(message: &str) -> bool {
    message.contains("overlaps the location")
        || message.contains("another namespace's directory")
        || message.contains("'..' path segment")
}

/// Load-table is routed by a split of its path, not by actix's pattern: it must answer exactly
/// the paths the pattern answers, decode names as every other route does, leave the other
/// methods and sub-resources of a table path to their routes, and be counted under its pattern.
#[tokio::test]
async fn load_table_is_routed_by_its_path_as_its_pattern_would_be() {
    let app = spawn_app().await;
    app.create_namespace(&["a b"]).await;
    app.create_namespace(&["a b", "c%d"]).await;
    app.create_table("a%20b%1Fc%25d", "t %x").await;
    let listed = app
        .get_json(&format!(
            "/v1/{}/namespaces/a%20b%1Fc%25d/tables",
            app.prefix
        ))
        .await;
    assert_eq!(listed["identifiers"][0]["name"], "t %x", "{listed}");
    app.load_table("a%20b%1Fc%25d", "t%20%25x").await;
    let undecoded = app
        .get("/namespaces/a%20b%1Fc%25d/tables/t%2520%2525x")
        .await;
    assert_error(undecoded, 404, "NoSuchTableException").await;

    app.create_namespace(&["ns"]).await;
    app.create_table("ns", "t").await;
    for other_shape in [
        "/namespaces/ns/tables/t/",
        "/namespaces//tables/t",
        "/namespaces/ns/tables/",
        "/namespaces/ns/views/t",
        "/namespace/ns/tables/t",
    ] {
        let r = app.get(other_shape).await;
        assert_ne!(r.status(), 200, "{other_shape} is not a table's path");
    }
    let r = app
        .client
        .get(format!("{}/v1//namespaces/ns/tables/t", app.base))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_ne!(
        r.status(),
        200,
        "an empty warehouse segment is not a table's path"
    );

    // The table's other routes still answer under the same path.
    let head = app
        .catalog(Method::HEAD, "/namespaces/ns/tables/t")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 204);
    let credentials = app.get("/namespaces/ns/tables/t/credentials").await;
    assert_eq!(
        credentials.status(),
        200,
        "{}",
        credentials.text().await.unwrap()
    );
    let missing = app.get("/namespaces/ns/tables/none").await;
    assert_error(missing, 404, "NoSuchTableException").await;

    let metrics = app.metrics().await;
    let route = r#"route="/v1/{prefix}/namespaces/{namespace}/tables/{table}""#;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("floe_http_request_seconds_count")
                && l.contains(route)
                && l.contains(r#"method="GET""#)
                && l.contains(r#"status="200""#)),
        "load-table is counted under its pattern:\n{metrics}"
    );
    assert!(
        !metrics.contains("%x") && !metrics.contains("/tables/t\""),
        "no table name is a label"
    );
}

/// Where engines are told to plan: a warehouse's `scan_planning_mode` is in `/v1/config` (where
/// PyIceberg reads it) and in every load answer (where Iceberg Java reads it), a table's
/// `scan-planning-mode` property wins in its load answer, changing the warehouse's setting
/// changes the ETag, and `null` unsets it.
#[tokio::test]
async fn the_scan_planning_mode_is_told_per_warehouse_and_per_table() {
    let app = spawn_app().await;
    app.create_namespace(&["ns"]).await;
    app.create_table("ns", "t").await;
    let mut told = table_request("told");
    told["properties"]["scan-planning-mode"] = json!("client");
    let r = app.post("/namespaces/ns/tables", told).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let config = |v: &Value| v["config"]["scan-planning-mode"].clone();
    assert_eq!(config(&app.load_table("ns", "t").await), Value::Null);
    assert_eq!(config(&app.load_table("ns", "told").await), json!("client"));
    let etag = app.get("/namespaces/ns/tables/t").await.headers()["etag"].clone();

    let whoami = app.get_json("/management/v1/whoami").await;
    let warehouse = format!(
        "{}/management/v1/tenants/{}/warehouses/{}",
        app.base,
        whoami["tenant_id"].as_str().unwrap(),
        app.prefix
    );
    let patch = |body: Value| {
        app.client
            .patch(&warehouse)
            .bearer_auth(&app.token)
            .json(&body)
            .send()
    };
    let r = patch(json!({"scan_planning_mode": "server"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(
        r.json::<Value>().await.unwrap()["scan_planning_mode"],
        "server"
    );
    let overrides = app.get_json("/v1/config").await["overrides"].clone();
    assert_eq!(overrides["scan-planning-mode"], "server");
    assert_eq!(config(&app.load_table("ns", "t").await), json!("server"));
    assert_eq!(config(&app.load_table("ns", "told").await), json!("client"));
    let r = app
        .catalog(Method::GET, "/namespaces/ns/tables/t")
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the warehouse's mode changed the answer");

    let r = patch(json!({"scan_planning_mode": "wherever"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
    let r = patch(json!({"scan_planning_mode": null})).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(
        app.get_json("/v1/config").await["overrides"]["scan-planning-mode"],
        Value::Null
    );
    assert_eq!(config(&app.load_table("ns", "t").await), Value::Null);
}
