//! Issue 23's escapes, each tried as the attacker did, through the public API only, on a local
//! warehouse (the vending ones also run against SeaweedFS with enforced session policies, in
//! `tests/e2e/test_escapes.py`). Where a store is involved, on sled and on PostgreSQL.

use std::net::IpAddr;
use std::time::Duration;

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn tenant_of(root: &Session<'_>) -> String {
    let me = root.ok(Method::GET, "/management/v1/whoami", None).await;
    me["tenant_id"].as_str().unwrap().to_owned()
}

/// The demo warehouse's storage root (`file://.../warehouse`).
fn warehouse_root(app: &TestApp) -> String {
    format!("file://{}", app.data_dir.path().join("warehouse").display())
}

fn namespace_resource(app: &TestApp, ns: &str) -> Value {
    json!({"kind": "namespace", "warehouse": app.prefix, "namespace": [ns]})
}

/// A principal of the demo tenant holding `privileges` on namespace `ns` only.
async fn insider<'a>(app: &'a TestApp, name: &str, ns: &str, privileges: &[&str]) -> Session<'a> {
    let root = Session::root(app);
    let tenant = tenant_of(&root).await;
    let (client_id, secret, id) = principal(&root, &tenant, name).await;
    let grants = privileges
        .iter()
        .map(|p| (namespace_resource(app, ns), *p))
        .collect();
    role_with(&root, &tenant, &format!("{name}-role"), grants, &id).await;
    Session::login(app, &client_id, &secret).await
}

fn bin(tenant: &str, wh: &str) -> String {
    format!("/management/v1/tenants/{tenant}/warehouses/{wh}/dropped")
}

/// The bin entry of the table last dropped under `name`.
async fn binned_id(root: &Session<'_>, tenant: &str, wh: &str, name: &str) -> String {
    let list = root.ok(Method::GET, &bin(tenant, wh), None).await;
    let entry = list["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the bin: {list}"));
    entry["id"].as_str().unwrap().to_owned()
}

/// Escape 1: a principal with create rights in its own namespace staged a create at (inside,
/// above) another namespace's table, and was vended credentials for those files.
async fn a_staged_create_cannot_take_another_tables_location(store: Store) {
    let app = spawn_app_on(store).await;
    let root = warehouse_root(&app);
    app.create_namespace(&["victim"]).await;
    app.create_namespace(&["att"]).await;
    let mut payroll = table_request("payroll");
    payroll["location"] = json!(format!("{root}/shared/payroll"));
    let r = app.post("/namespaces/victim/tables", payroll).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let attacker = insider(&app, "att", "att", &["TABLE_CREATE", "TABLE_WRITE_DATA"]).await;
    let stage = |location: String| {
        let mut req = table_request("s");
        req["stage-create"] = json!(true);
        req["location"] = json!(location);
        req
    };
    let tables = format!("/v1/{}/namespaces/att/tables", app.prefix);
    for location in [
        format!("{root}/shared/payroll"),
        format!("{root}/shared/payroll/data"),
        format!("{root}/shared"),
    ] {
        let r = attacker
            .send(Method::POST, &tables, Some(stage(location.clone())))
            .await;
        let message = assert_error(r, 400, "BadRequestException").await;
        assert!(message.contains("overlaps"), "{location}: {message}");
    }
    // Its own location is reserved for it: no other stage or table takes it meanwhile.
    let mine = format!("{root}/att-own/s");
    let r = attacker
        .send(Method::POST, &tables, Some(stage(mine.clone())))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let staged: Value = r.json().await.unwrap();
    let r = app
        .post("/namespaces/att/tables", stage(mine.clone()))
        .await;
    assert_error(r, 400, "BadRequestException").await;
    let mut squatter = table_request("squatter");
    squatter["location"] = json!(format!("{mine}/data"));
    let r = app.post("/namespaces/victim/tables", squatter).await;
    assert_error(r, 400, "BadRequestException").await;
    // Its commit turns the reservation into the table's claim.
    let md = &staged["metadata"];
    let commit = json!({"requirements": [{"type": "assert-create"}], "updates": [
        {"action": "assign-uuid", "uuid": md["table-uuid"]},
        {"action": "upgrade-format-version", "format-version": md["format-version"]},
        {"action": "add-schema", "schema": md["schemas"][0]},
        {"action": "set-current-schema", "schema-id": -1},
        {"action": "add-spec", "spec": md["partition-specs"][0]},
        {"action": "set-default-spec", "spec-id": -1},
        {"action": "add-sort-order", "sort-order": md["sort-orders"][0]},
        {"action": "set-default-sort-order", "sort-order-id": -1},
        {"action": "set-location", "location": mine}]});
    let r = attacker
        .send(Method::POST, &format!("{tables}/s"), Some(commit))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(
        app.load_table("att", "s").await["metadata"]["location"],
        mine.as_str()
    );
}

/// Escape 2: with its write keys, a writer rewrote its table's current metadata file to name the
/// victim's location; once the metadata cache was cold, Floe vended, presigned and signed for the
/// victim's files. The catalog's own record decides the location; such a file is not served.
async fn a_metadata_file_naming_another_location_is_not_served(store: Store) {
    // A cache that keeps nothing: every load reads the file, as after a restart.
    let app = spawn_app_on_with(store, |s| s.metadata_cache_bytes = 1).await;
    app.create_namespace(&["victim"]).await;
    app.create_namespace(&["att"]).await;
    let victim = app.create_table("victim", "payroll").await;
    let mine = app.create_table("att", "mine").await;
    let path = mine["metadata-location"]
        .as_str()
        .unwrap()
        .strip_prefix("file://")
        .unwrap()
        .to_owned();
    let mut rewritten: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    rewritten["location"] = victim["metadata"]["location"].clone();
    std::fs::write(&path, serde_json::to_vec(&rewritten).unwrap()).unwrap();
    for (method, path) in [
        (Method::GET, "/namespaces/att/tables/mine"),
        (Method::GET, "/namespaces/att/tables/mine/credentials"),
    ] {
        let r = app.catalog(method, path).send().await.unwrap();
        let message = assert_error(r, 500, "InternalServerError").await;
        assert!(message.contains("not served"), "{path}: {message}");
    }
    let r = app
        .post("/namespaces/att/tables/mine", append_commit(&rewritten, 7))
        .await;
    assert_error(r, 500, "InternalServerError").await;
    app.load_table("victim", "payroll").await;
    // Rewritten with its own location but other content (a snapshot's manifest list pointing
    // elsewhere, say): not the file the catalog wrote, so not served either.
    let other = app.create_table("att", "other").await;
    let path = other["metadata-location"]
        .as_str()
        .unwrap()
        .strip_prefix("file://")
        .unwrap()
        .to_owned();
    let mut rewritten: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    rewritten["properties"]["owner"] = json!("attacker");
    std::fs::write(&path, serde_json::to_vec(&rewritten).unwrap()).unwrap();
    let r = app.get("/namespaces/att/tables/other").await;
    let message = assert_error(r, 500, "InternalServerError").await;
    assert!(
        message.contains("not the file the catalog wrote"),
        "{message}"
    );
}

/// Escape 4: purge-now (202) and a restore right after (200): the purge already running deleted
/// every file of the table that had come back.
async fn a_table_being_purged_cannot_be_restored(store: Store) {
    let app = spawn_app_on(store).await;
    let root = Session::root(&app);
    let tenant = tenant_of(&root).await;
    let wh = app.prefix.clone();
    app.create_namespace(&["ns"]).await;
    let table = app.create_table("ns", "t").await;
    let metadata = table["metadata-location"].as_str().unwrap().to_owned();
    assert_eq!(app.delete("/namespaces/ns/tables/t").await.status(), 204);
    let id = binned_id(&root, &tenant, &wh, "t").await;
    let purge = format!("{}/{id}", bin(&tenant, &wh));
    assert_eq!(root.status(Method::DELETE, &purge, None).await, 202);
    let restore = format!("{}/{id}/restore", bin(&tenant, &wh));
    // Refused while the purge runs (409), or gone once it is done (404): never restored.
    let r = root.send(Method::POST, &restore, None).await;
    if r.status() == 404 {
        assert_error(r, 404, "NotFoundException").await;
    } else {
        let message = assert_error(r, 409, "ConflictException").await;
        assert!(message.contains("being purged"), "{message}");
    }
    // The purge goes on alone: nothing live is left at its location.
    let path = std::path::PathBuf::from(metadata.strip_prefix("file://").unwrap());
    for _ in 0..200 {
        if !path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!path.exists(), "the purge ran");
    assert_error(
        app.get("/namespaces/ns/tables/t").await,
        404,
        "NoSuchTableException",
    )
    .await;
}

/// Escapes 5 and 6: a table registered from a dropped table's metadata (or created with its id by
/// `assign-uuid`) took over the dropped table's id: its bin entry, its grants, and at expiry the
/// release of its location. An id stays the dropped object's: 409.
async fn a_dropped_tables_id_cannot_be_taken(store: Store) {
    let app = spawn_app_on(store).await;
    let root = Session::root(&app);
    let tenant = tenant_of(&root).await;
    let wh = app.prefix.clone();
    app.create_namespace(&["admin"]).await;
    app.create_namespace(&["att"]).await;
    let table = app.create_table("admin", "t").await;
    let uuid = table["metadata"]["table-uuid"].clone();
    let metadata = table["metadata-location"].as_str().unwrap().to_owned();
    assert_eq!(app.delete("/namespaces/admin/tables/t").await.status(), 204);
    let id = binned_id(&root, &tenant, &wh, "t").await;
    // Registering its metadata again (its uuid rides along).
    let r = app
        .post(
            "/namespaces/admin/register",
            json!({"name": "t2", "metadata-location": metadata}),
        )
        .await;
    let message = assert_error(r, 409, "AlreadyExistsException").await;
    assert!(message.contains("recycle bin"), "{message}");
    // A creator choosing its uuid.
    let attacker = insider(&app, "att", "att", &["TABLE_CREATE", "TABLE_WRITE_DATA"]).await;
    let commit = json!({"requirements": [{"type": "assert-create"}], "updates": [
        {"action": "assign-uuid", "uuid": uuid},
        {"action": "add-schema", "schema": table["metadata"]["schemas"][0]},
        {"action": "set-current-schema", "schema-id": -1}]});
    let r = attacker
        .send(
            Method::POST,
            &format!("/v1/{wh}/namespaces/att/tables/mine"),
            Some(commit),
        )
        .await;
    assert_error(r, 409, "AlreadyExistsException").await;
    // The admin's table is still theirs to restore.
    let restore = format!("{}/{id}/restore", bin(&tenant, &wh));
    root.ok(Method::POST, &restore, None).await;
    assert_eq!(
        app.load_table("admin", "t").await["metadata"]["table-uuid"],
        uuid
    );
}

/// Escape 7: a tenant admin moved its warehouse's storage while its bin held objects (only
/// namespaces were counted); their purges then failed for ever and held up every tenant's queue.
async fn storage_cannot_move_under_a_recycle_bin(store: Store) {
    let app = spawn_app_on(store).await;
    let root = Session::root(&app);
    let tenant = tenant_of(&root).await;
    let created = root
        .ok(
            Method::POST,
            &format!("/management/v1/tenants/{tenant}/warehouses"),
            Some(json!({"name": "w2", "storage": {"kind": "local"}})),
        )
        .await;
    let wh = created["id"].as_str().unwrap().to_owned();
    root.create_namespace(&wh, "ns").await;
    root.ok(
        Method::POST,
        &format!("/v1/{wh}/namespaces/ns/tables"),
        Some(table_request("t")),
    )
    .await;
    for path in [
        format!("/v1/{wh}/namespaces/ns/tables/t"),
        format!("/v1/{wh}/namespaces/ns"),
    ] {
        assert_eq!(
            root.status(Method::DELETE, &path, None).await,
            204,
            "{path}"
        );
    }
    let elsewhere = format!("file://{}/moved", app.data_dir.path().display());
    let patch = json!({"storage": {"kind": "local", "root": elsewhere}});
    let r = root
        .send(
            Method::PATCH,
            &format!("/management/v1/tenants/{tenant}/warehouses/{wh}"),
            Some(patch),
        )
        .await;
    let message = assert_error(r, 409, "ConflictException").await;
    assert!(message.contains("recycle bin"), "{message}");
}

/// Escape 12: a principal with view-create rights in one namespace put a view in another
/// namespace's server-assigned directory; the tenant admin could then create no table there.
async fn a_namespace_directory_cannot_be_squatted(store: Store) {
    let app = spawn_app_on(store).await;
    app.create_namespace(&["att"]).await;
    app.create_namespace(&["other"]).await;
    let probe = app.create_table("other", "probe").await;
    let probe_location = probe["metadata"]["location"].as_str().unwrap();
    let other_dir = probe_location.rsplit_once('/').unwrap().0.to_owned();
    let attacker = insider(&app, "att", "att", &["VIEW_CREATE"]).await;
    for location in [other_dir.clone(), format!("{other_dir}/future")] {
        let mut view = json!({
            "name": "squat",
            "location": location,
            "schema": {"type": "struct", "schema-id": 0, "fields": [
                {"id": 1, "name": "x", "type": "int", "required": false}]},
            "view-version": {"version-id": 1, "schema-id": 0, "timestamp-ms": 1,
                "summary": {"engine-name": "spark"}, "default-namespace": ["att"],
                "representations": [{"type": "sql", "sql": "select 1", "dialect": "spark"}]},
            "properties": {}
        });
        view["location"] = json!(location);
        let r = attacker
            .send(
                Method::POST,
                &format!("/v1/{}/namespaces/att/views", app.prefix),
                Some(view),
            )
            .await;
        let message = assert_error(r, 400, "BadRequestException").await;
        assert!(
            message.contains("another namespace's directory"),
            "{message}"
        );
    }
    app.create_table("other", "t").await;
}

/// Escape 13: a view's metadata registered as a table answered 500, a directory 503 (and marked
/// the warehouse's storage unavailable); a restore body with a typo restored under the old name.
async fn odd_input_is_refused_with_a_clear_400(store: Store) {
    let app = spawn_app_on(store).await;
    let root = Session::root(&app);
    let tenant = tenant_of(&root).await;
    let wh = app.prefix.clone();
    app.create_namespace(&["ns"]).await;
    let table = app.create_table("ns", "t").await;
    let table_metadata = table["metadata-location"].as_str().unwrap().to_owned();
    let view = json!({
        "name": "v",
        "schema": {"type": "struct", "schema-id": 0, "fields": [
            {"id": 1, "name": "x", "type": "int", "required": false}]},
        "view-version": {"version-id": 1, "schema-id": 0, "timestamp-ms": 1,
            "summary": {"engine-name": "spark"}, "default-namespace": ["ns"],
            "representations": [{"type": "sql", "sql": "select 1", "dialect": "spark"}]},
        "properties": {}
    });
    let r = app.post("/namespaces/ns/views", view).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let view: Value = r.json().await.unwrap();
    let view_metadata = view["metadata-location"].as_str().unwrap().to_owned();
    let directory = table["metadata"]["location"].as_str().unwrap().to_owned();
    for (path, file) in [
        ("/namespaces/ns/register", &view_metadata),
        ("/namespaces/ns/register-view", &table_metadata),
        ("/namespaces/ns/register", &directory),
        ("/namespaces/ns/register-view", &directory),
    ] {
        let r = app
            .post(path, json!({"name": "x", "metadata-location": file}))
            .await;
        let message = assert_error(r, 400, "BadRequestException").await;
        assert!(
            message.contains("cannot be registered"),
            "{path} {file}: {message}"
        );
    }
    let health = root
        .ok(
            Method::GET,
            &format!("/management/v1/tenants/{tenant}/health"),
            None,
        )
        .await;
    assert!(
        !health.to_string().contains("unavailable"),
        "storage marked unavailable: {health}"
    );
    // Restore bodies: a typo, a wrong type, invalid JSON.
    assert_eq!(app.delete("/namespaces/ns/tables/t").await.status(), 204);
    let id = binned_id(&root, &tenant, &wh, "t").await;
    let restore = format!("{}{}/{id}/restore", app.base, bin(&tenant, &wh));
    for body in [r#"{"nmae": "x"}"#, r#"{"name": 7}"#, "{not json"] {
        let r = app
            .client
            .post(&restore)
            .bearer_auth(&app.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "BadRequestException").await;
    }
    assert_error(
        app.get("/namespaces/ns/tables/t").await,
        404,
        "NoSuchTableException",
    )
    .await;
    // No body at all restores where it was.
    let r = app
        .client
        .post(&restore)
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    app.load_table("ns", "t").await;
}

on_both_stores!(
    a_staged_create_cannot_take_another_tables_location,
    a_metadata_file_naming_another_location_is_not_served,
    a_table_being_purged_cannot_be_restored,
    a_dropped_tables_id_cannot_be_taken,
    storage_cannot_move_under_a_recycle_bin,
    a_namespace_directory_cannot_be_squatted,
    odd_input_is_refused_with_a_clear_400,
    repeated_denials_do_not_flood_the_audit_trail,
);

/// A client sending from `address` (any 127.x address reaches the server on loopback).
fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn token_status_from(client: &reqwest::Client, app: &TestApp, id: &str, secret: &str) -> u16 {
    token_request_from(client, app, id, secret)
        .await
        .status()
        .as_u16()
}

/// Escape 9: after 50 wrong secrets for one client id, from anywhere, its right secret was
/// refused with 429 from every address: anyone knowing an engine's client id kept it out.
#[tokio::test]
async fn someone_elses_failures_never_refuse_the_right_secret() {
    let app = spawn_app().await;
    let root = Session::root(&app);
    let tenant = tenant_of(&root).await;
    let (client_id, secret, _) = principal(&root, &tenant, "engine").await;
    let attacker = client_from("127.0.0.2");
    let engine = client_from("127.0.0.3");
    let mut statuses = Vec::new();
    for _ in 0..50 {
        statuses.push(token_status_from(&attacker, &app, &client_id, "wrong").await);
    }
    assert!(
        statuses.contains(&429),
        "the attacker is slowed: {statuses:?}"
    );
    assert_eq!(
        token_status_from(&engine, &app, &client_id, &secret).await,
        200
    );
    assert_eq!(
        token_status_from(&attacker, &app, &client_id, &secret).await,
        429,
        "the failing address stays slowed"
    );
}

async fn exchange(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/oauth/tokens", app.base))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", token),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ])
        .send()
        .await
        .unwrap()
}

/// Escape 10: after `rotate-secret`, a token issued before it was exchanged for one living past
/// the old token: a leaked token outlived the rotation meant to cut it off. The same after a
/// disable and enable.
#[tokio::test]
async fn a_rotation_or_a_disable_ends_the_sessions_before_it() {
    let app = spawn_app().await;
    let root = Session::root(&app);
    let tenant = tenant_of(&root).await;
    let (client_id, secret, id) = principal(&root, &tenant, "engine").await;
    let principal_path = format!("/management/v1/tenants/{tenant}/principals/{id}");
    let leaked = fetch_token(&app.client, &app.base, &client_id, &secret).await;
    assert_eq!(exchange(&app, &leaked).await.status(), 200);
    // Token times are whole seconds: a session begun in the second of the rotation is kept.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated = root
        .ok(
            Method::POST,
            &format!("{principal_path}/rotate-secret"),
            None,
        )
        .await;
    let r = exchange(&app, &leaked).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new_secret = rotated["client_secret"].as_str().unwrap();
    let fresh = fetch_token(&app.client, &app.base, &client_id, new_secret).await;
    assert_eq!(exchange(&app, &fresh).await.status(), 200);
    // Disabled and enabled again: the sessions from before do not come back.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for action in ["disable", "enable"] {
        root.ok(Method::POST, &format!("{principal_path}/{action}"), None)
            .await;
    }
    assert_eq!(exchange(&app, &fresh).await.status(), 401);
}

/// Opens a TCP connection from `from` to the app and sends `head` (and nothing more).
async fn raw_connection(app: &TestApp, from: &str, head: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let address = app.base.strip_prefix("http://").unwrap().parse().unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Everything the server sends on `stream` until it closes it (or 5 s pass).
async fn answer_of(mut stream: tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Escape 8: unauthenticated sockets that sent the headers of a token request and part of its
/// body, then went quiet, held every in-flight slot for the write deadline: another tenant's
/// load-table and `/health/ready` answered 503. A body now has a short time to arrive, and a
/// request counts against capacity only once it is read.
#[tokio::test]
async fn slow_bodies_hold_no_capacity_and_time_out() {
    let app = spawn_app_with(|s| {
        s.max_in_flight = 4;
        s.request_body_timeout_ms = 1500;
    })
    .await;
    app.create_namespace(&["ns"]).await;
    app.create_table("ns", "t").await;
    let head = "POST /v1/oauth/tokens HTTP/1.1\r\nHost: floe\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4096\r\n\r\n\
                grant_type=client_credentials&client_id=";
    let mut slow = Vec::new();
    for _ in 0..16 {
        slow.push(raw_connection(&app, "127.0.0.6", head).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..8 {
        assert_eq!(app.get("/namespaces/ns/tables/t").await.status(), 200);
    }
    let ready = app
        .client
        .get(format!("{}/health/ready", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // Past the body timeout each slow request is answered 408 and its connection closed.
    let answers = futures::future::join_all(slow.into_iter().map(answer_of)).await;
    for answer in answers {
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("RequestTimeoutException"), "{answer}");
    }
}

/// One address may hold at most `max_connections_per_address` connections; requests on more are
/// refused and closed, and other addresses are served.
#[tokio::test]
async fn one_address_holds_a_bounded_number_of_connections() {
    let app = spawn_app_with(|s| s.max_connections_per_address = 3).await;
    let request = "GET /health/live HTTP/1.1\r\nHost: floe\r\nConnection: close\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(raw_connection(&app, "127.0.0.7", "").await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let over = raw_connection(&app, "127.0.0.7", request).await;
    let answer = answer_of(over).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("max_connections_per_address"), "{answer}");
    let elsewhere = raw_connection(&app, "127.0.0.8", request).await;
    let answer = answer_of(elsewhere).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = raw_connection(&app, "127.0.0.7", request).await;
    assert!(answer_of(again).await.starts_with("HTTP/1.1 200"));
}

/// Escape 11: a principal with one read grant made 2,000 denied requests in 2.3 s, and each
/// wrote and fsynced an audit event, until the shared disk reserve refused every tenant's writes.
/// A principal's repeated denials are recorded a few a minute, the rest as one count; management
/// changes are all recorded.
async fn repeated_denials_do_not_flood_the_audit_trail(store: Store) {
    let app = spawn_app_on(store).await;
    let root = Session::root(&app);
    let tenant = tenant_of(&root).await;
    app.create_namespace(&["ns"]).await;
    app.create_table("ns", "t").await;
    let reader = insider(&app, "flooder", "other", &["TABLE_READ_DATA"]).await;
    let denied = format!("/v1/{}/namespaces/ns/tables/t", app.prefix);
    for i in 0..200 {
        assert_eq!(reader.status(Method::GET, &denied, None).await, 403);
        if i == 100 {
            root.ok(
                Method::POST,
                &format!("/management/v1/tenants/{tenant}/roles"),
                Some(json!({"name": "made-meanwhile"})),
            )
            .await;
        }
    }
    let audit = root
        .ok(
            Method::GET,
            &format!("/management/v1/tenants/{tenant}/audit?limit=1000"),
            None,
        )
        .await;
    let events = audit["events"].as_array().unwrap();
    let denials = events.iter().filter(|e| e["outcome"] == "denied").count();
    assert_eq!(denials, 10, "a minute's worth one by one: {audit}");
    assert!(
        events.iter().any(|e| e["action"] == "create-role"),
        "management changes are all recorded: {audit}"
    );
}

/// The privileges of a rename and of a multi-table commit (decided in `authz::operations`): a
/// principal that may drop a table in its own namespace cannot move it into another it may not
/// create in, nor pull another's table into its own, nor write another's table by committing it
/// beside its own; nothing moves and nothing is written.
#[tokio::test]
async fn a_rename_or_a_transaction_cannot_reach_past_the_callers_grants() {
    let app = spawn_app().await;
    let root = Session::root(&app);
    let tenant = tenant_of(&root).await;
    let wh = app.prefix.clone();
    app.create_namespace(&["own"]).await;
    app.create_namespace(&["victim"]).await;
    let own = app.create_table("own", "t").await;
    let victim = app.create_table("victim", "v").await;
    let (id, secret, pid) = principal(&root, &tenant, "mover").await;
    let table = |ns: &str, name: &str| json!({"kind": "table", "warehouse": wh, "table": {"namespace": [ns], "name": name}});
    role_with(
        &root,
        &tenant,
        "movers",
        vec![
            (table("own", "t"), "TABLE_DROP"),
            (table("own", "t"), "TABLE_WRITE_DATA"),
            (
                json!({"kind": "namespace", "warehouse": wh, "namespace": ["own"]}),
                "TABLE_CREATE",
            ),
        ],
        &pid,
    )
    .await;
    let mover = Session::login(&app, &id, &secret).await;
    let rename = format!("/v1/{wh}/tables/rename");
    let moving = |from: (&str, &str), to: (&str, &str)| {
        json!({"source": {"namespace": [from.0], "name": from.1},
               "destination": {"namespace": [to.0], "name": to.1}})
    };
    // Out of its namespace: it may drop the source but not create in the destination.
    let r = mover
        .send(
            Method::POST,
            &rename,
            Some(moving(("own", "t"), ("victim", "t"))),
        )
        .await;
    assert_error(r, 403, "ForbiddenException").await;
    // Into its namespace: it may create there but not drop the victim's table.
    let r = mover
        .send(
            Method::POST,
            &rename,
            Some(moving(("victim", "v"), ("own", "v"))),
        )
        .await;
    assert_error(r, 403, "ForbiddenException").await;
    assert_eq!(app.get("/namespaces/own/tables/t").await.status(), 200);
    assert_eq!(app.get("/namespaces/victim/tables/v").await.status(), 200);
    assert_eq!(app.get("/namespaces/victim/tables/t").await.status(), 404);
    assert_eq!(app.get("/namespaces/own/tables/v").await.status(), 404);

    // A transaction writing its own table and the victim's: refused whole.
    let change = |ns: &str, name: &str, loaded: &Value, snapshot: i64| {
        let mut c = append_commit(&loaded["metadata"], snapshot);
        c["identifier"] = json!({"namespace": [ns], "name": name});
        c
    };
    let both =
        json!({"table-changes": [change("own", "t", &own, 1), change("victim", "v", &victim, 2)]});
    let r = mover
        .send(
            Method::POST,
            &format!("/v1/{wh}/transactions/commit"),
            Some(both),
        )
        .await;
    assert_error(r, 403, "ForbiddenException").await;
    for (ns, name, before) in [("own", "t", &own), ("victim", "v", &victim)] {
        assert_eq!(
            app.load_table(ns, name).await["metadata-location"],
            before["metadata-location"],
            "{ns}.{name} was written"
        );
    }
    // Its own table alone it may commit.
    let mine = json!({"table-changes": [change("own", "t", &own, 1)]});
    assert_eq!(
        mover
            .status(
                Method::POST,
                &format!("/v1/{wh}/transactions/commit"),
                Some(mine)
            )
            .await,
        204
    );
}
