//! Vending over HTTP without a cloud: S3 profile settings are checked when a warehouse is created,
//! local warehouses hand out nothing, and the storage routes check access and input first.
//! (Scoping against a real STS is in `tests/e2e/test_s3_vending.py`.)

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn tenant_id(app: &TestApp) -> String {
    let who = app.get_json("/management/v1/whoami").await;
    who["tenant_id"].as_str().unwrap().to_owned()
}

async fn create_warehouse(app: &TestApp, tenant: &str, body: Value) -> reqwest::Response {
    app.client
        .post(format!(
            "{}/management/v1/tenants/{tenant}/warehouses",
            app.base
        ))
        .bearer_auth(&app.token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn s3(extra: Value) -> Value {
    let mut storage =
        json!({"kind": "s3", "bucket": "lake", "key_prefix": "wh", "region": "us-east-1"});
    for (k, v) in extra.as_object().unwrap() {
        storage[k] = v.clone();
    }
    storage
}

#[tokio::test]
async fn s3_profiles_are_checked_when_created() {
    let app = spawn_app().await;
    let tenant = tenant_id(&app).await;
    let role = "arn:aws:iam::123456789012:role/floe-read";
    for (extra, says) in [
        (json!({"vending": "sts"}), "read_role_arn"),
        (json!({"read_role_arn": "not-an-arn"}), "read_role_arn"),
        (
            json!({"read_role_arn": role, "session_duration_secs": 60}),
            "900",
        ),
        (
            json!({"read_role_arn": role, "session_duration_secs": 50000}),
            "43200",
        ),
        (json!({"vending": "static"}), "storage credential"),
        (
            json!({"write_role_arn": "arn:aws:iam::1:role/w"}),
            "read_role_arn",
        ),
        (json!({"sts_endpoint": "ftp://x"}), "sts_endpoint"),
        (json!({"bucket": "Not_A_Bucket"}), "bucket"),
        (json!({"vending": "sometimes"}), "sometimes"),
        (json!({"unknown_setting": true}), "unknown_setting"),
    ] {
        let r = create_warehouse(
            &app,
            &tenant,
            json!({"name": "w", "storage": s3(extra.clone())}),
        )
        .await;
        let message = assert_error(r, 400, "BadRequestException").await;
        assert!(message.contains(says), "{extra}: {message}");
    }
    let r = create_warehouse(
        &app,
        &tenant,
        json!({"name": "w", "storage": s3(json!({"read_role_arn": role, "external_id": "x", "kms_key_arn": "arn:aws:kms:us-east-1:1:key/k"}))}),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["storage"]["read_role_arn"], role);
    assert_eq!(created["storage"]["session_duration_secs"], 3600);
}

#[tokio::test]
async fn local_warehouses_vend_nothing_and_storage_routes_check_first() {
    let app = spawn_app().await;
    app.create_namespace(&["ns"]).await;
    app.create_table("ns", "t").await;

    let loaded: Value = app
        .catalog(Method::GET, "/namespaces/ns/tables/t")
        .header("X-Iceberg-Access-Delegation", "vended-credentials")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(loaded.get("storage-credentials").is_none());

    let r = app.get("/namespaces/ns/tables/t/credentials").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"storage-credentials": []}));

    let r = app.get("/namespaces/ns/tables/nope/credentials").await;
    assert_error(r, 404, "NoSuchTableException").await;
    let r = app
        .client
        .get(format!(
            "{}/v1/{}/namespaces/ns/tables/t/credentials",
            app.base, app.prefix
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = app
        .get("/namespaces/ns/tables/t/presign?location=file:///etc/passwd")
        .await;
    assert_error(r, 400, "BadRequestException").await;
    let r = app
        .get("/namespaces/ns/tables/t/presign?location=x&method=DELETE")
        .await;
    assert_error(r, 400, "BadRequestException").await;
    let sign = json!({"region": "us-east-1", "uri": "http://s3/x", "method": "GET", "headers": {}});
    let r = app.post("/namespaces/ns/tables/t/sign", sign).await;
    assert_error(r, 400, "BadRequestException").await;
}

#[tokio::test]
async fn config_tells_java_clients_to_ask_for_credentials() {
    let app = spawn_app().await;
    let config = app.get_json("/v1/config?warehouse=demo").await;
    assert_eq!(
        config["defaults"]["header.X-Iceberg-Access-Delegation"],
        "vended-credentials"
    );
    let endpoints: Vec<&str> = config["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        endpoints.contains(&"GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials")
    );
    assert!(endpoints.contains(&"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/sign"));
}

#[tokio::test]
async fn metrics_are_exposed_for_prometheus() {
    let app = spawn_app().await;
    app.create_namespace(&["m"]).await;
    app.create_table("m", "t").await;
    app.load_table("m", "t").await;
    let r = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    assert!(text.contains("floe_metadata_cache_hits_total"), "{text}");
}

#[tokio::test]
async fn a_credential_must_fit_the_warehouse_storage() {
    let app = spawn_app().await;
    let tenant = tenant_id(&app).await;
    let r = app
        .client
        .post(format!(
            "{}/management/v1/tenants/{tenant}/storage-credentials",
            app.base
        ))
        .bearer_auth(&app.token)
        .json(&json!({"name": "az", "kind": "azure-shared-key", "value": {"account_key": "a2V5"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = create_warehouse(
        &app,
        &tenant,
        json!({"name": "w", "storage": s3(json!({}))}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let wh: Value = r.json().await.unwrap();
    let r = app
        .client
        .patch(format!(
            "{}/management/v1/tenants/{tenant}/warehouses/{}",
            app.base,
            wh["id"].as_str().unwrap()
        ))
        .bearer_auth(&app.token)
        .json(&json!({"credential": "az"}))
        .send()
        .await
        .unwrap();
    let message = assert_error(r, 400, "BadRequestException").await;
    assert!(message.contains("does not fit"), "{message}");
    let r = create_warehouse(
        &app,
        &tenant,
        json!({"name": "w2", "credential": "az", "storage": s3(json!({}))}),
    )
    .await;
    assert_error(r, 400, "BadRequestException").await;
}
