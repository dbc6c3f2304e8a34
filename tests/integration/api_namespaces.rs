//! Namespaces over HTTP: create, nest, list with pages, properties, drop, and bad input.

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn namespaces_nest_list_and_drop() {
    let app = spawn_app().await;
    app.create_namespace(&["sales"]).await;
    app.create_namespace(&["sales", "eu"]).await;
    app.create_namespace(&["sales", "us"]).await;
    let r = app
        .post("/namespaces", json!({"namespace": ["sales"]}))
        .await;
    assert_error(r, 409, "AlreadyExistsException").await;
    let r = app
        .post("/namespaces", json!({"namespace": ["missing", "child"]}))
        .await;
    assert_error(r, 404, "NoSuchNamespaceException").await;

    let top: Value = app.get("/namespaces").await.json().await.unwrap();
    assert_eq!(top["namespaces"], json!([["sales"]]));
    assert_eq!(top["next-page-token"], Value::Null);
    let children: Value = app
        .get("/namespaces?parent=sales")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        children["namespaces"],
        json!([["sales", "eu"], ["sales", "us"]])
    );
    let r = app.get("/namespaces?parent=nope").await;
    assert_error(r, 404, "NoSuchNamespaceException").await;

    let loaded: Value = app
        .get("/namespaces/sales%1Feu")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(loaded["namespace"], json!(["sales", "eu"]));
    assert_eq!(
        app.catalog(Method::HEAD, "/namespaces/sales%1Feu")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        app.catalog(Method::HEAD, "/namespaces/sales%1Fxx")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    assert_error(
        app.delete("/namespaces/sales").await,
        409,
        "NamespaceNotEmptyException",
    )
    .await;
    assert_eq!(app.delete("/namespaces/sales%1Feu").await.status(), 204);
    assert_error(
        app.delete("/namespaces/sales%1Feu").await,
        404,
        "NoSuchNamespaceException",
    )
    .await;
    app.create_table("sales%1Fus", "orders").await;
    assert_error(
        app.delete("/namespaces/sales%1Fus").await,
        409,
        "NamespaceNotEmptyException",
    )
    .await;
}

#[tokio::test]
async fn namespace_lists_page() {
    let app = spawn_app().await;
    for i in 0..7 {
        app.create_namespace(&[&format!("ns{i}")]).await;
    }
    let mut seen = Vec::new();
    let mut url = "/namespaces?pageToken=&pageSize=3".to_string();
    loop {
        let page: Value = app.get(&url).await.json().await.unwrap();
        let items = page["namespaces"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|n| n[0].as_str().unwrap().to_owned()));
        match page["next-page-token"].as_str() {
            Some(t) => url = format!("/namespaces?pageToken={t}&pageSize=3"),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("ns{i}")).collect::<Vec<_>>());
    assert_error(
        app.get("/namespaces?pageSize=0").await,
        400,
        "BadRequestException",
    )
    .await;
    assert_error(
        app.get("/namespaces?pageToken=%%%").await,
        400,
        "BadRequestException",
    )
    .await;
    // Without a page token every namespace comes back at once.
    let all: Value = app.get("/namespaces").await.json().await.unwrap();
    assert_eq!(all["namespaces"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn namespace_properties_update_and_report_missing() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/namespaces",
            json!({"namespace": ["p"], "properties": {"owner": "ann", "tier": "gold"}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post(
            "/namespaces/p/properties",
            json!({"updates": {"owner": "bob"}, "removals": ["tier", "absent"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["updated"], json!(["owner"]));
    assert_eq!(body["removed"], json!(["tier"]));
    assert_eq!(body["missing"], json!(["absent"]));
    let loaded: Value = app.get("/namespaces/p").await.json().await.unwrap();
    assert_eq!(loaded["properties"], json!({"owner": "bob"}));
    let r = app
        .post(
            "/namespaces/p/properties",
            json!({"updates": {"a": "1"}, "removals": ["a"]}),
        )
        .await;
    assert_error(r, 422, "UnprocessableEntityException").await;
    let r = app
        .post(
            "/namespaces/nope/properties",
            json!({"updates": {"a": "1"}}),
        )
        .await;
    assert_error(r, 404, "NoSuchNamespaceException").await;
}

#[tokio::test]
async fn bad_input_is_a_clear_400_and_stores_nothing() {
    let app = spawn_app().await;
    for body in [
        json!({"namespace": []}),
        json!({"namespace": ["a/b"]}),
        json!({"namespace": [".."]}),
        json!({"namespace": ["x".repeat(300)]}),
        json!({"namespace": "flat"}),
        json!({"nothing": 1}),
    ] {
        let r = app.post("/namespaces", body.clone()).await;
        assert_error(r, 400, "BadRequestException").await;
    }
    let r = app
        .catalog(Method::POST, "/namespaces")
        .header("content-type", "application/json")
        .body("{\"namespace\": [")
        .send()
        .await
        .unwrap();
    let message = assert_error(r, 400, "BadRequestException").await;
    assert!(message.contains("malformed"), "{message}");
    let r = app
        .catalog(Method::POST, "/namespaces")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequestException").await;
    let listed: Value = app.get("/namespaces").await.json().await.unwrap();
    assert_eq!(listed["namespaces"], json!([]));
}

#[tokio::test]
async fn oversize_bodies_are_refused_with_413() {
    let app = spawn_app_with(|s| s.max_body_bytes = 4096).await;
    let big = "v".repeat(8192);
    let r = app
        .post(
            "/namespaces",
            json!({"namespace": ["big"], "properties": {"k": big}}),
        )
        .await;
    assert_error(r, 413, "PayloadTooLargeException").await;
    assert_error(
        app.get("/namespaces/big").await,
        404,
        "NoSuchNamespaceException",
    )
    .await;
}

#[tokio::test]
async fn idempotency_key_replays_the_first_answer() {
    let app = spawn_app().await;
    let key = uuid::Uuid::now_v7().to_string();
    let send = || {
        app.catalog(Method::POST, "/namespaces")
            .header("Idempotency-Key", &key)
            .json(&json!({"namespace": ["once"]}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(
        again.status(),
        200,
        "a retry with the same key is not a conflict"
    );
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    // Without a key, the second create is a conflict.
    let r = app
        .post("/namespaces", json!({"namespace": ["once"]}))
        .await;
    assert_error(r, 409, "AlreadyExistsException").await;
    // The same key for another operation is refused.
    let r = app
        .catalog(Method::DELETE, "/namespaces/once")
        .header("Idempotency-Key", &key)
        .send()
        .await
        .unwrap();
    assert_error(r, 422, "UnprocessableEntityException").await;
    let r = app
        .catalog(Method::DELETE, "/namespaces/once")
        .header("Idempotency-Key", "not-a-uuid")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "BadRequestException").await;
}

/// Issue: a page token was base64 of a name, so a client could make one up and start a list
/// anywhere; tokens are now signed, and a forged or changed one is a 400.
#[tokio::test]
async fn a_made_up_or_changed_page_token_is_refused() {
    use base64::Engine;
    let app = spawn_app().await;
    for ns in ["a", "b", "c"] {
        app.create_namespace(&[ns]).await;
    }
    let first: Value = app
        .get("/namespaces?pageSize=1")
        .await
        .json()
        .await
        .unwrap();
    let token = first["next-page-token"].as_str().unwrap().to_owned();
    let next: Value = app
        .get(&format!("/namespaces?pageSize=1&pageToken={token}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["namespaces"], json!([["b"]]));
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("b");
    let (_, tag) = token.split_once('.').unwrap();
    for bad in [forged.clone(), format!("{forged}.{tag}")] {
        let r = app
            .get(&format!("/namespaces?pageSize=1&pageToken={bad}"))
            .await;
        let message = assert_error(r, 400, "BadRequestException").await;
        assert!(message.contains("pageToken"), "{message}");
    }
}
