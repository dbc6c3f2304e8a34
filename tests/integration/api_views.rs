//! Views over HTTP: create, load, replace, rename, register, drop, and their shared name space
//! with tables.

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn view_request(name: &str, sql: &str) -> Value {
    json!({
        "name": name,
        "schema": {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": false}]},
        "view-version": {
            "version-id": 1, "timestamp-ms": 1700000000000i64, "schema-id": 0,
            "summary": {"engine-name": "tests"},
            "representations": [{"type": "sql", "sql": sql, "dialect": "spark"}],
            "default-namespace": ["ns"]
        },
        "properties": {"comment": "a view"}
    })
}

#[tokio::test]
async fn views_live_beside_tables() {
    let app = spawn_app().await;
    app.create_namespace(&["ns"]).await;
    app.create_table("ns", "t").await;
    let r = app
        .post(
            "/namespaces/ns/views",
            view_request("v", "select id from ns.t"),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_error(
        app.post("/namespaces/ns/views", view_request("t", "select 1"))
            .await,
        409,
        "AlreadyExistsException",
    )
    .await;
    assert_error(
        app.post("/namespaces/ns/views", view_request("v", "select 1"))
            .await,
        409,
        "AlreadyExistsException",
    )
    .await;
    let views: Value = app.get("/namespaces/ns/views").await.json().await.unwrap();
    assert_eq!(
        views["identifiers"],
        json!([{"namespace": ["ns"], "name": "v"}])
    );
    let tables: Value = app.get("/namespaces/ns/tables").await.json().await.unwrap();
    assert_eq!(
        tables["identifiers"],
        json!([{"namespace": ["ns"], "name": "t"}])
    );
    let loaded: Value = app
        .get("/namespaces/ns/views/v")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        loaded["metadata"]["versions"][0]["representations"][0]["sql"],
        "select id from ns.t"
    );
    assert_error(
        app.get("/namespaces/ns/views/t").await,
        404,
        "NoSuchViewException",
    )
    .await;
    assert_error(
        app.get("/namespaces/ns/tables/v").await,
        404,
        "NoSuchTableException",
    )
    .await;
    assert_eq!(
        app.catalog(Method::HEAD, "/namespaces/ns/views/v")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        app.catalog(Method::HEAD, "/namespaces/ns/views/t")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn replace_rename_register_and_drop_views() {
    // Without a recycle bin: a binned view's id is its own until it leaves the bin.
    let app = spawn_app_with(|s| s.drop_retention_secs = 0).await;
    app.create_namespace(&["ns"]).await;
    app.create_namespace(&["other"]).await;
    let created: Value = app
        .post("/namespaces/ns/views", view_request("v", "select 1"))
        .await
        .json()
        .await
        .unwrap();
    let uuid = created["metadata"]["view-uuid"].clone();
    let replace = json!({
        "requirements": [{"type": "assert-view-uuid", "uuid": uuid}],
        "updates": [
            {"action": "add-view-version", "view-version": {
                "version-id": 2, "timestamp-ms": 1700000001000i64, "schema-id": 0, "summary": {"engine-name": "tests"},
                "representations": [{"type": "sql", "sql": "select 2", "dialect": "spark"}], "default-namespace": ["ns"]}},
            {"action": "set-current-view-version", "view-version-id": -1},
            {"action": "set-properties", "updates": {"owner": "ann"}}
        ]
    });
    let r = app.post("/namespaces/ns/views/v", replace).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["metadata"]["current-version-id"], 2);
    assert_eq!(body["metadata"]["properties"]["owner"], "ann");
    let wrong = json!({"requirements": [{"type": "assert-view-uuid", "uuid": uuid::Uuid::new_v4()}], "updates": []});
    assert_error(
        app.post("/namespaces/ns/views/v", wrong).await,
        409,
        "CommitFailedException",
    )
    .await;

    let rename = json!({"source": {"namespace": ["ns"], "name": "v"}, "destination": {"namespace": ["other"], "name": "w"}});
    assert_eq!(
        app.post("/views/rename", rename.clone()).await.status(),
        204
    );
    assert_error(
        app.post("/views/rename", rename).await,
        404,
        "NoSuchViewException",
    )
    .await;
    let moved: Value = app
        .get("/namespaces/other/views/w")
        .await
        .json()
        .await
        .unwrap();
    let location = moved["metadata-location"].as_str().unwrap().to_owned();

    assert_eq!(app.delete("/namespaces/other/views/w").await.status(), 204);
    assert_error(
        app.delete("/namespaces/other/views/w").await,
        404,
        "NoSuchViewException",
    )
    .await;
    let r = app
        .post(
            "/namespaces/ns/register-view",
            json!({"name": "back", "metadata-location": location}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let back: Value = app
        .get("/namespaces/ns/views/back")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(back["metadata"]["current-version-id"], 2);
}
