//! Starts a real Floe on a free port with a fresh data directory (and, on PostgreSQL, a fresh
//! database); tests talk HTTP to it.

use crate::pg_support::TestDatabase;
use floe::config::{Secret, Settings, StoreKind, WarehouseSettings};
use floe::startup::Application;
use floe::storage::StorageProfile;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

pub const ROOT_ID: &str = "test-root";
pub const ROOT_SECRET: &str = "test-root-secret";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub token: String,
    /// The `demo` warehouse's id (the Iceberg prefix).
    pub prefix: String,
    pub data_dir: tempfile::TempDir,
    /// The server's database when it runs on PostgreSQL (dropped with the app).
    pub database: Option<TestDatabase>,
}

/// The catalog store a test's server runs on.
#[derive(Debug, Clone, Copy)]
pub enum Store {
    Sled,
    Postgres,
}

/// Starts Floe with `adjust` applied to the default test settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: data_dir.path().to_path_buf(),
        workers: 2,
        root_client_id: Some(ROOT_ID.into()),
        root_client_secret: Some(Secret::new(ROOT_SECRET)),
        ..Settings::default()
    };
    adjust(&mut settings);
    let app = Application::build(settings).await.expect("Floe starts");
    let base = format!("http://127.0.0.1:{}", app.port);
    tokio::spawn(app.server);
    let client = reqwest::Client::new();
    let token = fetch_token(&client, &base, ROOT_ID, ROOT_SECRET).await;
    let config: Value = client
        .get(format!("{base}/v1/config?warehouse=demo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let prefix = config["overrides"]["prefix"].as_str().unwrap().to_owned();
    TestApp {
        base,
        client,
        token,
        prefix,
        data_dir,
        database: None,
    }
}

/// Starts Floe with the default test settings on `store`. On PostgreSQL it gets a database of its
/// own and the `demo` warehouse is configured (PostgreSQL makes none: a directory is one
/// machine's), in the data directory as on sled.
pub async fn spawn_app_on(store: Store) -> TestApp {
    spawn_app_on_with(store, |_| {}).await
}

/// [`spawn_app_on`] with `adjust` applied to the settings as well.
pub async fn spawn_app_on_with(store: Store, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let Store::Postgres = store else {
        return spawn_app_with(adjust).await;
    };
    let database = TestDatabase::create().await;
    let url = database.url.clone();
    let mut app = spawn_app_with(|s| {
        adjust(s);
        s.store = StoreKind::Postgres;
        s.postgres.url = Some(Secret::new(url));
        s.warehouses.push(WarehouseSettings {
            name: "demo".into(),
            storage: StorageProfile::Local {
                root: format!("file://{}", s.data_dir.join("warehouse").display()),
            },
            s3_access_key_id: None,
            s3_secret_access_key: None,
        });
    })
    .await;
    // The server's catalog really is in this database (its demo warehouse is there).
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&database.url)
        .await
        .unwrap();
    let demo: i64 = sqlx::query_scalar("SELECT count(*) FROM warehouses WHERE name = 'demo'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(demo, 1, "the server runs on the test's database");
    app.database = Some(database);
    app
}

/// Runs each `async fn NAME(store: Store)` named on sled and on PostgreSQL, as the tests
/// `on_sled::NAME` and `on_postgres::NAME`: walls that hold on one store are tried on the other.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod on_sled {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::common::Store::Sled).await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::common::Store::Postgres).await
                }
            )*
        }
    };
}
pub(crate) use on_both_stores;

/// Starts Floe with the default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn fetch_token(client: &reqwest::Client, base: &str, id: &str, secret: &str) -> String {
    let r: Value = client
        .post(format!("{base}/v1/oauth/tokens"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "catalog"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().expect("a token").to_owned()
}

/// A client-credentials token request with the id and secret as form fields.
pub async fn token_request(app: &TestApp, id: &str, secret: &str) -> Response {
    token_request_from(&app.client, app, id, secret).await
}

/// [`token_request`] sent by `client` (one bound to another source address, say).
pub async fn token_request_from(
    client: &reqwest::Client,
    app: &TestApp,
    id: &str,
    secret: &str,
) -> Response {
    client
        .post(format!("{}/v1/oauth/tokens", app.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap()
}

/// The status of a client-credentials token request.
pub async fn token_status(app: &TestApp, id: &str, secret: &str) -> u16 {
    token_request(app, id, secret).await.status().as_u16()
}

impl TestApp {
    /// POST a JSON body to `path` (from the server root) with the root token.
    pub async fn post_root(&self, path: &str, body: Value) -> Response {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// What `/metrics` shows now.
    pub async fn metrics(&self) -> String {
        let r = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    /// GET `path` (from the server root, e.g. `/management/v1/whoami`) with the root token, as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A request to `path` under `/v1/{prefix}` with the root token.
    pub fn catalog(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}/v1/{}{}", self.base, self.prefix, path))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.catalog(Method::GET, path).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.catalog(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.catalog(Method::DELETE, path).send().await.unwrap()
    }

    pub async fn create_namespace(&self, parts: &[&str]) {
        let r = self.post("/namespaces", json!({"namespace": parts})).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    /// Creates `ns.name` with an (id long, ts timestamptz) schema partitioned by day(ts).
    pub async fn create_table(&self, ns: &str, name: &str) -> Value {
        let r = self
            .post(&format!("/namespaces/{ns}/tables"), table_request(name))
            .await;
        assert_eq!(r.status(), 200, "create table: {}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    pub async fn load_table(&self, ns: &str, name: &str) -> Value {
        let r = self.get(&format!("/namespaces/{ns}/tables/{name}")).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

pub fn table_request(name: &str) -> Value {
    json!({
        "name": name,
        "schema": {"type": "struct", "schema-id": 0, "fields": [
            {"id": 1, "name": "id", "type": "long", "required": true},
            {"id": 2, "name": "ts", "type": "timestamptz", "required": false}
        ]},
        "partition-spec": {"spec-id": 0, "fields": [{"source-id": 2, "field-id": 1000, "transform": "day", "name": "ts_day"}]},
        "properties": {"owner": "tests"}
    })
}

/// An append commit on top of `metadata`: asserts main is where the client saw it.
pub fn append_commit(metadata: &Value, snapshot_id: i64) -> Value {
    let parent = metadata["current-snapshot-id"]
        .as_i64()
        .filter(|id| *id >= 0);
    let seq = metadata["last-sequence-number"].as_i64().unwrap_or(0) + 1;
    let location = metadata["location"].as_str().unwrap();
    let mut snapshot = json!({
        "snapshot-id": snapshot_id,
        "sequence-number": seq,
        "timestamp-ms": chrono_ms(),
        "manifest-list": format!("{location}/metadata/snap-{snapshot_id}.avro"),
        "summary": {"operation": "append"},
        "schema-id": 0
    });
    if let Some(p) = parent {
        snapshot["parent-snapshot-id"] = json!(p);
    }
    json!({
        "requirements": [{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": parent}],
        "updates": [
            {"action": "add-snapshot", "snapshot": snapshot},
            {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": snapshot_id}
        ]
    })
}

fn chrono_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Asserts an Iceberg error body of `status` and `kind`, carrying the request id its
/// `X-Request-Id` header names.
pub async fn assert_error(r: Response, status: u16, kind: &str) -> String {
    assert_eq!(r.status().as_u16(), status, "unexpected status");
    let header = r
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = r.json().await.expect("error bodies are JSON");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert_eq!(body["error"]["code"], status, "{body}");
    let id = body["error"]["request-id"].as_str();
    assert!(id.is_some_and(|id| !id.is_empty()), "no request id: {body}");
    assert_eq!(
        id.map(str::to_owned),
        header,
        "the body's request id is the header's"
    );
    body["error"]["message"].as_str().unwrap().to_owned()
}

/// A principal's session: its token and helpers for both APIs.
pub struct Session<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl<'a> Session<'a> {
    /// The root principal's session.
    pub fn root(app: &'a TestApp) -> Session<'a> {
        Session {
            app,
            token: app.token.clone(),
        }
    }

    pub async fn login(app: &'a TestApp, client_id: &str, secret: &str) -> Session<'a> {
        Session {
            app,
            token: fetch_token(&app.client, &app.base, client_id, secret).await,
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut req = self
            .app
            .client
            .request(method, format!("{}{path}", self.app.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let r = self.send(method.clone(), path, body).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Creates namespace `ns` (one level) in warehouse `wh`, asserting it worked.
    pub async fn create_namespace(&self, wh: &str, ns: &str) -> Value {
        let body = json!({"namespace": [ns]});
        self.ok(Method::POST, &format!("/v1/{wh}/namespaces"), Some(body))
            .await
    }

    pub async fn status(&self, method: Method, path: &str, body: Option<Value>) -> StatusCode {
        self.send(method, path, body).await.status()
    }
}

/// A new principal of `tenant`: its client id, secret and id.
pub async fn principal(admin: &Session<'_>, tenant: &str, name: &str) -> (String, String, String) {
    let p = admin
        .ok(
            Method::POST,
            &format!("/management/v1/tenants/{tenant}/principals"),
            Some(json!({"name": name})),
        )
        .await;
    (
        p["client_id"].as_str().unwrap().into(),
        p["client_secret"].as_str().unwrap().into(),
        p["principal"]["id"].as_str().unwrap().into(),
    )
}

/// A role holding `grants`, assigned to `principal`; returns the grants' ids.
pub async fn role_with(
    admin: &Session<'_>,
    tenant: &str,
    name: &str,
    grants: Vec<(Value, &str)>,
    principal: &str,
) -> Vec<String> {
    let role = admin
        .ok(
            Method::POST,
            &format!("/management/v1/tenants/{tenant}/roles"),
            Some(json!({"name": name})),
        )
        .await;
    let role_id = role["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for (resource, privilege) in grants {
        let g = admin
            .ok(
                Method::POST,
                &format!("/management/v1/tenants/{tenant}/grants"),
                Some(json!({"role_id": role_id, "resource": resource, "privilege": privilege})),
            )
            .await;
        ids.push(g["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        admin
            .status(
                Method::PUT,
                &format!("/management/v1/tenants/{tenant}/roles/{role_id}/principals/{principal}"),
                None
            )
            .await,
        204
    );
    ids
}
