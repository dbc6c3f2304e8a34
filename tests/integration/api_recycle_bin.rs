//! The recycle bin over HTTP: a drop (with or without purge) keeps the table restorable and its
//! location taken; restoring brings back its metadata and grants; a purge deletes only its files;
//! only the warehouse's admins see and work the bin, and never another tenant's.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn path_of(location: &str) -> PathBuf {
    PathBuf::from(location.strip_prefix("file://").unwrap())
}

async fn tenant_of(root: &Session<'_>) -> String {
    let me = root.ok(Method::GET, "/management/v1/whoami", None).await;
    me["tenant_id"].as_str().unwrap().to_owned()
}

fn bin(tenant: &str, wh: &str) -> String {
    format!("/management/v1/tenants/{tenant}/warehouses/{wh}/dropped")
}

async fn dropped(root: &Session<'_>, tenant: &str, wh: &str) -> Vec<Value> {
    let list = root.ok(Method::GET, &bin(tenant, wh), None).await;
    list["dropped"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_dropped_table_waits_in_the_bin_and_comes_back_with_its_metadata_and_grants() {
    let app = spawn_app().await;
    let root = Session::root(&app);
    let tenant = tenant_of(&root).await;
    let wh = app.prefix.clone();
    app.create_namespace(&["ns"]).await;
    let table = app.create_table("ns", "t").await;
    let location = table["metadata"]["location"].as_str().unwrap().to_owned();
    let metadata_location = table["metadata-location"].as_str().unwrap().to_owned();
    let (reader_id, reader_secret, reader_pid) = principal(&root, &tenant, "reader").await;
    role_with(
        &root,
        &tenant,
        "readers",
        vec![(
            json!({"kind": "table", "warehouse": wh, "table": {"namespace": ["ns"], "name": "t"}}),
            "TABLE_READ_DATA",
        )],
        &reader_pid,
    )
    .await;
    let reader = Session::login(&app, &reader_id, &reader_secret).await;
    let t = format!("/v1/{wh}/namespaces/ns/tables/t");
    assert_eq!(reader.status(Method::GET, &t, None).await, 200);

    // Dropped with purge: gone from the namespace, its files and location kept for the bin.
    assert_eq!(
        root.status(Method::DELETE, &format!("{t}?purgeRequested=true"), None)
            .await,
        204
    );
    assert_error(
        app.get("/namespaces/ns/tables/t").await,
        404,
        "NoSuchTableException",
    )
    .await;
    assert!(
        path_of(&metadata_location).exists(),
        "the files wait in the bin"
    );
    let listed = dropped(&root, &tenant, &wh).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["name"], "t");
    assert_eq!(listed[0]["kind"], "table");
    assert_eq!(listed[0]["purge_files"], true);
    let week = 7 * 86_400_000_i64;
    let left =
        listed[0]["expires_at_ms"].as_i64().unwrap() - listed[0]["dropped_at_ms"].as_i64().unwrap();
    assert_eq!(left, week, "kept for the default drop_retention of 7 days");
    // Nobody may take its location meanwhile.
    let mut squatter = table_request("squatter");
    squatter["location"] = json!(location);
    let message = assert_error(
        app.post("/namespaces/ns/tables", squatter).await,
        400,
        "BadRequestException",
    )
    .await;
    assert!(message.contains("overlaps"), "{message}");
    // The reader cannot see the bin; neither can it restore.
    assert_eq!(
        reader.status(Method::GET, &bin(&tenant, &wh), None).await,
        403
    );
    let restore = format!("{}/{id}/restore", bin(&tenant, &wh));
    assert_eq!(reader.status(Method::POST, &restore, None).await, 403);

    // Its name is free: a new table takes it, so restoring under it is a conflict.
    app.create_table("ns", "t").await;
    let r = root.send(Method::POST, &restore, None).await;
    let message = assert_error(r, 409, "ConflictException").await;
    assert!(message.contains("another name"), "{message}");
    // Restored under a new name: the same metadata file, and the reader's grant (by id) again.
    let restored = root
        .ok(Method::POST, &restore, Some(json!({"name": "t_restored"})))
        .await;
    assert_eq!(restored["name"], "t_restored");
    let loaded = app.load_table("ns", "t_restored").await;
    assert_eq!(loaded["metadata-location"], metadata_location.as_str());
    let back = format!("/v1/{wh}/namespaces/ns/tables/t_restored");
    assert_eq!(
        reader.status(Method::GET, &back, None).await,
        200,
        "the grant came back"
    );
    assert!(dropped(&root, &tenant, &wh).await.is_empty());
    assert_error(
        root.send(Method::POST, &restore, None).await,
        404,
        "NotFoundException",
    )
    .await;
}

#[tokio::test]
async fn a_purge_deletes_the_dropped_tables_files_and_no_others() {
    let app = spawn_app_with(|s| s.purge_interval_ms = 100).await;
    let root = Session::root(&app);
    let tenant = tenant_of(&root).await;
    let wh = app.prefix.clone();
    app.create_namespace(&["ns"]).await;
    let purged = app.create_table("ns", "purged").await;
    let kept = app.create_table("ns", "kept").await;
    let location = purged["metadata"]["location"].as_str().unwrap().to_owned();
    // A sibling directory whose name starts with the purged table's: not inside its location.
    let sibling = PathBuf::from(format!("{}-sibling", path_of(&location).display()));
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(sibling.join("keep.txt"), b"x").unwrap();
    std::fs::write(path_of(&location).join("data.parquet"), b"x").unwrap();

    assert_eq!(
        app.delete("/namespaces/ns/tables/purged").await.status(),
        204
    );
    let id = dropped(&root, &tenant, &wh).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = root
        .send(Method::DELETE, &format!("{}/{id}", bin(&tenant, &wh)), None)
        .await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["purge_files"], true,
        "a purge asked for deletes the files"
    );
    let started = std::time::Instant::now();
    while path_of(&location).exists() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !path_of(&location).exists(),
        "the purge deleted the table's files"
    );
    assert!(sibling.join("keep.txt").exists(), "and nothing beside them");
    assert!(path_of(kept["metadata-location"].as_str().unwrap()).exists());
    while !dropped(&root, &tenant, &wh).await.is_empty()
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        dropped(&root, &tenant, &wh).await.is_empty(),
        "it left the bin"
    );
    // Its location is free again.
    let mut reuse = table_request("reuse");
    reuse["location"] = json!(location);
    assert_eq!(app.post("/namespaces/ns/tables", reuse).await.status(), 200);
}

#[tokio::test]
async fn with_no_retention_a_drop_is_final_and_a_purge_runs_at_once() {
    let app = spawn_app_with(|s| s.drop_retention_secs = 0).await;
    let root = Session::root(&app);
    let tenant = tenant_of(&root).await;
    app.create_namespace(&["ns"]).await;
    let kept = app.create_table("ns", "kept").await;
    let purged = app.create_table("ns", "purged").await;
    assert_eq!(app.delete("/namespaces/ns/tables/kept").await.status(), 204);
    assert!(
        path_of(kept["metadata-location"].as_str().unwrap()).exists(),
        "a drop without purge keeps the files"
    );
    assert_eq!(
        app.delete("/namespaces/ns/tables/purged?purgeRequested=true")
            .await
            .status(),
        204
    );
    let location = path_of(purged["metadata"]["location"].as_str().unwrap());
    let started = std::time::Instant::now();
    while location.exists() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!location.exists(), "the purge ran from the queue at once");
    // The files go first, then the bin forgets the table.
    while !dropped(&root, &tenant, &app.prefix).await.is_empty()
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dropped(&root, &tenant, &app.prefix).await.is_empty());
    assert_error(
        app.delete("/namespaces/ns/tables/purged").await,
        404,
        "NoSuchTableException",
    )
    .await;
}
