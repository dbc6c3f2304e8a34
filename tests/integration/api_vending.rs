//! Vending over HTTP without a cloud: S3 profile settings are checked when a warehouse is created,
//! local warehouses hand out nothing, and the storage routes check access and input first.
//! (Scoping against a real STS is in `tests/e2e/test_s3_vending.py`.)

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn tenant_id(app: &TestApp) -> String {
    let who = app.get_json("/management/v1/whoami").await;
    who["tenant_id"].as_str().unwrap().to_owned()
}

async fn create_warehouse(app: &TestApp, tenant: &str, body: Value) -> reqwest::Response {
    app.post_root(&format!("/management/v1/tenants/{tenant}/warehouses"), body)
        .await
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
        .post_root(
            &format!("/management/v1/tenants/{tenant}/storage-credentials"),
            json!({"name": "az", "kind": "azure-shared-key", "value": {"account_key": "a2V5"}}),
        )
        .await;
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

#[tokio::test]
async fn credentials_take_the_names_credential_stores_use_and_refuse_ambiguity() {
    let app = spawn_app().await;
    let tenant = tenant_id(&app).await;
    let url = format!(
        "{}/management/v1/tenants/{tenant}/storage-credentials",
        app.base
    );
    let post = |body: Value| {
        app.client
            .post(&url)
            .bearer_auth(&app.token)
            .json(&body)
            .send()
    };
    let key_file = json!({"type": "service_account", "project_id": "p", "private_key_id": "k1",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----\n",
        "client_email": "floe@p.iam.gserviceaccount.com", "token_uri": "http://127.0.0.1:1/token"});
    let accepted = [
        json!({"name": "s3-aws", "kind": "s3-access-key",
               "value": {"aws_access_key_id": "AKIA1", "aws_secret_access_key": "s3cr3t-1", "region": "eu-west-1"}}),
        json!({"name": "s3-short", "kind": "s3-access-key",
               "value": {"key_id": "AKIA2", "secret": "s3cr3t-2", "session_token": "tok"}}),
        json!({"name": "gcp-file", "kind": "gcp", "value": key_file}),
        json!({"name": "gcp-data", "kind": "google_service_account", "value": {"data": key_file}}),
        json!({"name": "gcs-text", "kind": "gcs-service-account",
               "value": {"service_account_json": key_file.to_string()}}),
    ];
    for body in accepted {
        let r = post(body.clone()).await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 201, "{body}: {text}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("MIIsecret"),
            "{text}"
        );
    }
    let listed = app
        .get_json(&format!(
            "/management/v1/tenants/{tenant}/storage-credentials"
        ))
        .await;
    let kinds: Vec<(&str, &str)> = listed["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("gcp-data", "gcs-service-account"),
            ("gcp-file", "gcs-service-account"),
            ("gcs-text", "gcs-service-account"),
            ("s3-aws", "s3-access-key"),
            ("s3-short", "s3-access-key"),
        ]
    );
    let refused = [
        (
            json!({"name": "dup", "kind": "s3-access-key",
                "value": {"access_key_id": "AKIA3", "key_id": "AKIA3", "secret": "s3cr3t-3"}}),
            "gives 'access_key_id' twice",
        ),
        (
            json!({"name": "dup2", "kind": "s3-access-key",
                "value": {"key_id": "AKIA3", "secret_key": "s3cr3t-3", "secret": "s3cr3t-3"}}),
            "gives 'secret_access_key' twice",
        ),
        (
            json!({"name": "unknown", "kind": "s3-access-key",
                "value": {"key_id": "AKIA3", "secret": "s3cr3t-3", "endpoint": "x"}}),
            "has no field 'endpoint'",
        ),
        (
            json!({"name": "kind", "kind": "aws", "value": {"key_id": "AKIA3", "secret": "s3cr3t-3"}}),
            "kind 'aws' is not supported",
        ),
        (
            json!({"name": "notfile", "kind": "gcp", "value": {"type": "authorized_user"}}),
            "service account key file",
        ),
    ];
    for (body, wanted) in refused {
        let r = post(body.clone()).await.unwrap();
        let message = assert_error(r, 400, "BadRequestException").await;
        assert!(message.contains(wanted), "{body}: {message}");
        assert!(
            !message.contains("s3cr3t") && !message.contains("AKIA3"),
            "{message}"
        );
    }
}

/// Issue: an Azure Blob request error carried its URL, with the container-wide SAS the server
/// signed for itself, into the 503 a client got (and into the log).
#[tokio::test]
async fn a_storage_failure_tells_the_client_nothing_of_the_servers_signed_urls() {
    let app = spawn_app().await;
    let tenant = tenant_id(&app).await;
    let r = app
        .post_root(
            &format!("/management/v1/tenants/{tenant}/storage-credentials"),
            json!({"name": "az", "kind": "azure-shared-key", "value": {"account_key": "a2V5a2V5a2V5"}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    // Nothing listens on port 9 of this machine: every blob request fails.
    let storage = json!({"kind": "adls", "account": "devstoreaccount1", "container": "lake",
                         "key_prefix": "wh", "endpoint": "http://127.0.0.1:9/devstoreaccount1"});
    let r = create_warehouse(
        &app,
        &tenant,
        json!({"name": "az", "credential": "az", "storage": storage}),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let wh: Value = r.json().await.unwrap();
    let prefix = wh["id"].as_str().unwrap();
    let r = app
        .post_root(
            &format!("/v1/{prefix}/namespaces"),
            json!({"namespace": ["ns"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post_root(
            &format!("/v1/{prefix}/namespaces/ns/tables"),
            table_request("t"),
        )
        .await;
    let message = assert_error(r, 503, "ServiceUnavailableException").await;
    for leak in ["sig=", "sv=", "se=", "127.0.0.1:9", "http"] {
        assert!(!message.contains(leak), "{leak} in {message}");
    }
}

/// Issue: the `method` label of request metrics came from the client, so any client could mint
/// new series (and grow the server's memory) with made-up methods.
#[tokio::test]
async fn clients_cannot_mint_metric_labels_with_made_up_methods() {
    let app = spawn_app().await;
    for i in 0..3 {
        let method = reqwest::Method::from_bytes(format!("MINTED{i}").as_bytes()).unwrap();
        let r = app
            .client
            .request(method, format!("{}/v1/config", app.base))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
    }
    let text = app.metrics().await;
    assert!(!text.contains("MINTED"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
}

/// Validation reports every step with its own outcome: when the probe cannot be written, the
/// steps that need it say they did not run (the report never just stops).
#[tokio::test]
async fn validation_reports_the_steps_a_failure_kept_from_running() {
    let app = spawn_app().await;
    let tenant = tenant_id(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let root = format!("file://{}", dir.path().display());
    let r = create_warehouse(
        &app,
        &tenant,
        json!({"name": "blocked", "storage": {"kind": "local", "root": root}}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let wh: Value = r.json().await.unwrap();
    // A file where the probe's directory would go: no one, not even root, can write below it.
    std::fs::write(dir.path().join(".floe-validate"), b"in the way").unwrap();
    let report: Value = app
        .post_root(
            &format!(
                "/management/v1/tenants/{tenant}/warehouses/{}/validate",
                wh["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["ok"], false, "{report}");
    let steps: Vec<(String, bool, bool)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_owned(),
                s["ok"].as_bool().unwrap(),
                s["ran"].as_bool().unwrap_or_else(|| panic!("{report}")),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("write probe".to_owned(), false, true),
            ("read probe".to_owned(), false, false),
            ("delete probe".to_owned(), false, false),
        ],
        "{report}"
    );
    assert!(
        report["steps"][1]["detail"]
            .as_str()
            .unwrap()
            .starts_with("not run:")
    );
}
