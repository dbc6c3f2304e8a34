//! Tenants, principals, roles and grants as tenant admins use them, and the walls between tenants.
//! Every test runs on sled and on PostgreSQL (`on_sled::`, `on_postgres::`).

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// A tenant set up by root: a warehouse, an admin (TENANT_ADMIN) and a principal with no grants.
struct Tenant {
    id: String,
    warehouse: String,
    admin: (String, String),
    member: (String, String),
    member_id: String,
}

async fn tenant(root: &Session<'_>, name: &str) -> Tenant {
    let t = root
        .ok(
            Method::POST,
            "/management/v1/tenants",
            Some(json!({"name": name})),
        )
        .await;
    let id = t["id"].as_str().unwrap().to_owned();
    let wh = root
        .ok(
            Method::POST,
            &format!("/management/v1/tenants/{id}/warehouses"),
            Some(json!({"name": "main", "storage": {"kind": "local"}})),
        )
        .await;
    let (admin_id, admin_secret, admin_pid) = principal(root, &id, "admin").await;
    role_with(
        root,
        &id,
        "admins",
        vec![(json!({"kind": "tenant"}), "TENANT_ADMIN")],
        &admin_pid,
    )
    .await;
    let (member_id, member_secret, member_pid) = principal(root, &id, "member").await;
    Tenant {
        id,
        warehouse: wh["id"].as_str().unwrap().to_owned(),
        admin: (admin_id, admin_secret),
        member: (member_id, member_secret),
        member_id: member_pid,
    }
}

async fn tenants_never_see_each_other(store: Store) {
    let app = spawn_app_on(store).await;
    let root = Session::root(&app);
    let (a, b) = (tenant(&root, "alpha").await, tenant(&root, "beta").await);
    let admin_a = Session::login(&app, &a.admin.0, &a.admin.1).await;
    let admin_b = Session::login(&app, &b.admin.0, &b.admin.1).await;
    admin_b
        .ok(
            Method::POST,
            &format!("/v1/{}/namespaces", b.warehouse),
            Some(json!({"namespace": ["secret"]})),
        )
        .await;
    admin_b
        .ok(
            Method::POST,
            &format!("/v1/{}/namespaces/secret/tables", b.warehouse),
            Some(table_request("t")),
        )
        .await;

    // Tenant A's admin, on every route that names tenant B or its warehouse: 404, never 403.
    let wb = &b.warehouse;
    for (method, path) in [
        (Method::GET, format!("/v1/{wb}/namespaces")),
        (Method::POST, format!("/v1/{wb}/namespaces")),
        (Method::GET, format!("/v1/{wb}/namespaces/secret")),
        (Method::GET, format!("/v1/{wb}/namespaces/secret/tables")),
        (Method::GET, format!("/v1/{wb}/namespaces/secret/tables/t")),
        (Method::POST, format!("/v1/{wb}/namespaces/secret/tables/t")),
        (
            Method::DELETE,
            format!("/v1/{wb}/namespaces/secret/tables/t"),
        ),
        (Method::POST, format!("/v1/{wb}/transactions/commit")),
        (Method::GET, format!("/management/v1/tenants/{}", b.id)),
        (
            Method::GET,
            format!("/management/v1/tenants/{}/warehouses", b.id),
        ),
        (
            Method::GET,
            format!("/management/v1/tenants/{}/warehouses/{wb}", b.id),
        ),
        (
            Method::DELETE,
            format!("/management/v1/tenants/{}/warehouses/{wb}", b.id),
        ),
        (
            Method::GET,
            format!("/management/v1/tenants/{}/principals", b.id),
        ),
        (
            Method::POST,
            format!("/management/v1/tenants/{}/principals", b.id),
        ),
        (
            Method::POST,
            format!("/management/v1/tenants/{}/roles", b.id),
        ),
        (
            Method::GET,
            format!("/management/v1/tenants/{}/grants", b.id),
        ),
    ] {
        let body = if path.starts_with("/management") {
            Some(json!({"name": "x"}))
        } else {
            Some(
                json!({"namespace": ["x"], "requirements": [], "updates": [], "table-changes": []}),
            )
        };
        assert_eq!(
            admin_a.status(method.clone(), &path, body).await,
            404,
            "{method} {path}"
        );
    }
    let r = admin_a
        .send(Method::GET, "/v1/config?warehouse=main", None)
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["overrides"]["prefix"],
        a.warehouse.as_str(),
        "a name resolves in the caller's tenant"
    );
    // Nothing of B was changed, and B's admin still sees its table.
    admin_b
        .ok(
            Method::GET,
            &format!("/v1/{}/namespaces/secret/tables/t", b.warehouse),
            None,
        )
        .await;
    // Tenant admins manage only their own tenant, and cannot make tenants.
    assert_eq!(
        admin_a
            .status(
                Method::POST,
                "/management/v1/tenants",
                Some(json!({"name": "gamma"}))
            )
            .await,
        403
    );
    assert_eq!(
        admin_a
            .status(Method::GET, "/management/v1/tenants", None)
            .await,
        403
    );
    let me = admin_a.ok(Method::GET, "/management/v1/whoami", None).await;
    assert_eq!(
        (me["tenant_name"].as_str(), me["roles"].clone()),
        (Some("alpha"), json!(["admins"]))
    );
}

async fn readers_read_and_grants_open_and_close_access(store: Store) {
    let app = spawn_app_on(store).await;
    let root = Session::root(&app);
    let t = tenant(&root, "acme").await;
    let admin = Session::login(&app, &t.admin.0, &t.admin.1).await;
    let wh = &t.warehouse;
    for ns in ["sales", "hr"] {
        admin.create_namespace(wh, ns).await;
        admin
            .ok(
                Method::POST,
                &format!("/v1/{wh}/namespaces/{ns}/tables"),
                Some(table_request("t")),
            )
            .await;
    }
    let member = Session::login(&app, &t.member.0, &t.member.1).await;
    // No grants yet: nothing is readable, the warehouse is not even visible.
    assert_eq!(
        member
            .status(
                Method::GET,
                &format!("/v1/{wh}/namespaces/sales/tables/t"),
                None
            )
            .await,
        403
    );
    assert_eq!(
        member
            .status(Method::GET, "/v1/config?warehouse=main", None)
            .await,
        404
    );

    // A read grant on the namespace opens every table in it, and only there.
    let grants = role_with(
        &admin,
        &t.id,
        "sales-readers",
        vec![(
            json!({"kind": "namespace", "warehouse": wh, "namespace": ["sales"]}),
            "TABLE_READ_DATA",
        )],
        &t.member_id,
    )
    .await;
    let table = format!("/v1/{wh}/namespaces/sales/tables/t");
    let loaded = member.ok(Method::GET, &table, None).await;
    assert_eq!(
        member
            .status(
                Method::GET,
                &format!("/v1/{wh}/namespaces/hr/tables/t"),
                None
            )
            .await,
        403
    );
    // Reading is not writing, dropping or creating.
    assert_eq!(
        member
            .status(
                Method::POST,
                &table,
                Some(append_commit(&loaded["metadata"], 1))
            )
            .await,
        403
    );
    assert_eq!(member.status(Method::DELETE, &table, None).await, 403);
    assert_eq!(
        member
            .status(
                Method::POST,
                &format!("/v1/{wh}/namespaces/sales/tables"),
                Some(table_request("u"))
            )
            .await,
        403
    );
    assert_eq!(
        member
            .status(
                Method::POST,
                &format!("/v1/{wh}/namespaces"),
                Some(json!({"namespace": ["mine"]}))
            )
            .await,
        403
    );
    // Lists show only what the member holds something on.
    let listed = member
        .ok(Method::GET, &format!("/v1/{wh}/namespaces"), None)
        .await;
    assert_eq!(listed["namespaces"], json!([["sales"]]));
    let tables = member
        .ok(
            Method::GET,
            &format!("/v1/{wh}/namespaces/sales/tables"),
            None,
        )
        .await;
    assert_eq!(
        tables["identifiers"],
        json!([{"namespace": ["sales"], "name": "t"}])
    );
    assert_eq!(
        member
            .status(Method::GET, &format!("/v1/{wh}/namespaces/hr/tables"), None)
            .await,
        403
    );
    let warehouses = member
        .ok(
            Method::GET,
            &format!("/management/v1/tenants/{}/warehouses", t.id),
            None,
        )
        .await;
    assert_eq!(warehouses["warehouses"].as_array().unwrap().len(), 1);
    // Members are not tenant admins.
    assert_eq!(
        member
            .status(
                Method::GET,
                &format!("/management/v1/tenants/{}/principals", t.id),
                None
            )
            .await,
        403
    );

    // Write access lets the member commit; the table's metadata changes.
    role_with(&admin, &t.id, "sales-writers", vec![(json!({"kind": "table", "warehouse": wh, "table": {"namespace": ["sales"], "name": "t"}}), "TABLE_WRITE_DATA")], &t.member_id).await;
    member
        .ok(
            Method::POST,
            &table,
            Some(append_commit(&loaded["metadata"], 1)),
        )
        .await;

    // Revoking the namespace grant closes reading of other tables at once on this replica.
    admin
        .ok(
            Method::POST,
            &format!("/v1/{wh}/namespaces/sales/tables"),
            Some(table_request("other")),
        )
        .await;
    member
        .ok(
            Method::GET,
            &format!("/v1/{wh}/namespaces/sales/tables/other"),
            None,
        )
        .await;
    assert_eq!(
        admin
            .status(
                Method::DELETE,
                &format!("/management/v1/tenants/{}/grants/{}", t.id, grants[0]),
                None
            )
            .await,
        204
    );
    assert_eq!(
        member
            .status(
                Method::GET,
                &format!("/v1/{wh}/namespaces/sales/tables/other"),
                None
            )
            .await,
        403
    );
    member.ok(Method::GET, &table, None).await;

    // The audit trail has the changes and the denials, newest first; members may not read it.
    let audit = admin
        .ok(
            Method::GET,
            &format!("/management/v1/tenants/{}/audit?limit=1000", t.id),
            None,
        )
        .await;
    let events = audit["events"].as_array().unwrap();
    let has = |action: &str, outcome: &str| {
        events.iter().any(|e| {
            e["action"] == action && e["outcome"] == outcome && e["tenant_id"] == t.id.as_str()
        })
    };
    assert!(
        has("create-grant", "ok") && has("delete-grant", "ok") && has("assign-role", "ok"),
        "{audit}"
    );
    assert!(
        has("TableWriteData", "denied") && has("TableDrop", "denied"),
        "{audit}"
    );
    let denial = events.iter().find(|e| e["outcome"] == "denied").unwrap();
    assert_eq!(denial["actor"], t.member_id.as_str());
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["id"].as_str() > w[1]["id"].as_str()),
        "newest first"
    );
    assert_eq!(
        member
            .status(
                Method::GET,
                &format!("/management/v1/tenants/{}/audit", t.id),
                None
            )
            .await,
        403
    );
}

async fn disabled_principals_and_rotated_secrets_stop_working(store: Store) {
    let app = spawn_app_on(store).await;
    let root = Session::root(&app);
    let t = tenant(&root, "ops").await;
    let admin = Session::login(&app, &t.admin.0, &t.admin.1).await;
    let member = Session::login(&app, &t.member.0, &t.member.1).await;
    assert_eq!(
        member
            .status(Method::GET, "/management/v1/whoami", None)
            .await,
        200
    );
    let base = format!("/management/v1/tenants/{}/principals/{}", t.id, t.member_id);
    admin
        .ok(Method::POST, &format!("{base}/disable"), None)
        .await;
    assert_eq!(
        member
            .status(Method::GET, "/management/v1/whoami", None)
            .await,
        401
    );
    assert_eq!(
        member
            .status(
                Method::GET,
                &format!("/v1/{}/namespaces", t.warehouse),
                None
            )
            .await,
        401
    );
    assert_eq!(
        token_status(&app, t.member.0.as_str(), t.member.1.as_str()).await,
        401,
        "a disabled principal gets no token"
    );
    admin
        .ok(Method::POST, &format!("{base}/enable"), None)
        .await;
    let rotated = admin
        .ok(Method::POST, &format!("{base}/rotate-secret"), None)
        .await;
    assert_eq!(
        token_status(&app, t.member.0.as_str(), t.member.1.as_str()).await,
        401,
        "the old secret stops working"
    );
    let fresh = Session::login(
        &app,
        &t.member.0,
        rotated["client_secret"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        fresh
            .status(Method::GET, "/management/v1/whoami", None)
            .await,
        200
    );
    let listed = admin
        .ok(
            Method::GET,
            &format!("/management/v1/tenants/{}/principals", t.id),
            None,
        )
        .await;
    assert!(
        !listed
            .to_string()
            .contains(rotated["client_secret"].as_str().unwrap()),
        "no API returns a secret after creation"
    );
    assert_eq!(admin.status(Method::DELETE, &base, None).await, 204);
    assert_eq!(
        fresh
            .status(Method::GET, "/management/v1/whoami", None)
            .await,
        401
    );
}

async fn non_empty_tenants_and_warehouses_are_not_deleted(store: Store) {
    let app = spawn_app_on(store).await;
    let root = Session::root(&app);
    let t = tenant(&root, "keep").await;
    let admin = Session::login(&app, &t.admin.0, &t.admin.1).await;
    admin
        .ok(
            Method::POST,
            &format!("/v1/{}/namespaces", t.warehouse),
            Some(json!({"namespace": ["n"]})),
        )
        .await;
    let wh_path = format!("/management/v1/tenants/{}/warehouses/{}", t.id, t.warehouse);
    assert_eq!(admin.status(Method::DELETE, &wh_path, None).await, 409);
    assert_eq!(
        root.status(
            Method::DELETE,
            &format!("/management/v1/tenants/{}", t.id),
            None
        )
        .await,
        409
    );
    let report = admin
        .ok(Method::POST, &format!("{wh_path}/validate"), None)
        .await;
    assert_eq!(report["ok"], true, "{report}");
    // A tenant admin cannot point a local warehouse at a directory of its choice.
    let r = admin
        .status(
            Method::POST,
            &format!("/management/v1/tenants/{}/warehouses", t.id),
            Some(json!({"name": "evil", "storage": {"kind": "local", "root": "file:///etc"}})),
        )
        .await;
    assert_eq!(r, 403);
    admin
        .ok(
            Method::DELETE,
            &format!("/v1/{}/namespaces/n", t.warehouse),
            None,
        )
        .await;
    assert_eq!(admin.status(Method::DELETE, &wh_path, None).await, 204);
    assert_eq!(
        root.status(
            Method::DELETE,
            &format!("/management/v1/tenants/{}", t.id),
            None
        )
        .await,
        204
    );
    assert_eq!(
        token_status(&app, t.admin.0.as_str(), t.admin.1.as_str()).await,
        401,
        "a deleted tenant's principals are gone"
    );
}

async fn management_routes_refuse_bad_tokens(store: Store) {
    let app = spawn_app_on(store).await;
    for path in ["/management/v1/whoami", "/management/v1/tenants"] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .bearer_auth("None")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
}

impl Session<'_> {
    async fn send_with_key(&self, path: &str, body: Value, key: &str) -> reqwest::Response {
        self.app
            .client
            .post(format!("{}{path}", self.app.base))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

/// Issue: a principal of the same tenant with no grants replayed a tenant admin's create-table
/// with the same `Idempotency-Key` and got the full answer; and two requests with one key both ran.
async fn an_idempotency_replay_is_authorized_and_a_key_runs_once(store: Store) {
    let app = spawn_app_on(store).await;
    let root = Session::root(&app);
    let t = tenant(&root, "gamma").await;
    let admin = Session::login(&app, &t.admin.0, &t.admin.1).await;
    let member = Session::login(&app, &t.member.0, &t.member.1).await;
    let tables = format!("/v1/{}/namespaces/ns/tables", t.warehouse);
    admin
        .ok(
            Method::POST,
            &format!("/v1/{}/namespaces", t.warehouse),
            Some(json!({"namespace": ["ns"]})),
        )
        .await;
    let key = "0b8f3f6e-4f2a-4c1e-9d3b-7a6c5e4d3c2b";
    let r = admin.send_with_key(&tables, table_request("t"), key).await;
    assert_eq!(r.status(), 200);
    let first: Value = r.json().await.unwrap();
    // The same key from a principal without grants is authorized like any request: 403.
    let r = member.send_with_key(&tables, table_request("t"), key).await;
    let body = r.text().await.unwrap();
    assert!(body.contains("ForbiddenException"), "{body}");
    assert!(
        !body.contains(first["metadata-location"].as_str().unwrap()),
        "{body}"
    );
    // The admin's own replay answers the first answer.
    let r = admin.send_with_key(&tables, table_request("t"), key).await;
    assert_eq!(r.status(), 200);
    let replay: Value = r.json().await.unwrap();
    assert_eq!(replay["metadata-location"], first["metadata-location"]);

    // Eight concurrent creates with one fresh key: one runs, the others wait their turn (409)
    // or replay it; the table is created once.
    let key = "5e2d6c1a-8b7f-4e3d-a2c1-0f9e8d7c6b5a";
    let sends = (0..8).map(|_| admin.send_with_key(&tables, table_request("once"), key));
    let statuses: Vec<u16> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(
        statuses.iter().all(|s| [200, 409].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    let r = admin
        .send_with_key(&tables, table_request("once"), key)
        .await;
    assert_eq!(r.status(), 200, "the finished answer is replayed");
    let listed = admin.ok(Method::GET, &tables, None).await;
    let names: Vec<&str> = listed["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["once", "t"]);
}

/// Issue (as the insider it describes): a principal holding create and drop rights in its own
/// namespace only tries to put a table on a table of another namespace, to purge the victim's
/// files or read them through a registered copy. Every attempt is refused and the victim is whole.
async fn a_principal_with_create_rights_in_one_namespace_cannot_take_another_tables_location(
    store: Store,
) {
    let app = spawn_app_on(store).await;
    let root = Session::root(&app);
    let t = tenant(&root, "delta").await;
    let admin = Session::login(&app, &t.admin.0, &t.admin.1).await;
    let wh = &t.warehouse;
    for ns in ["victim", "mine"] {
        admin.create_namespace(wh, ns).await;
    }
    let victim = admin
        .ok(
            Method::POST,
            &format!("/v1/{wh}/namespaces/victim/tables"),
            Some(table_request("t")),
        )
        .await;
    let location = victim["metadata"]["location"].as_str().unwrap().to_owned();
    let metadata = victim["metadata-location"].as_str().unwrap().to_owned();
    let mine = json!({"kind": "namespace", "warehouse": wh, "namespace": ["mine"]});
    role_with(
        &admin,
        &t.id,
        "creators",
        vec![(mine.clone(), "TABLE_CREATE"), (mine, "TABLE_DROP")],
        &t.member_id,
    )
    .await;
    let member = Session::login(&app, &t.member.0, &t.member.1).await;
    for at in [location.clone(), format!("{location}/data")] {
        let mut req = table_request("evil");
        req["location"] = json!(at);
        let r = member
            .send(
                Method::POST,
                &format!("/v1/{wh}/namespaces/mine/tables"),
                Some(req),
            )
            .await;
        assert_eq!(r.status(), 400, "{at}: {}", r.text().await.unwrap());
    }
    let r = member
        .send(
            Method::POST,
            &format!("/v1/{wh}/namespaces/mine/register"),
            Some(json!({"name": "copy", "metadata-location": metadata})),
        )
        .await;
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
    // Its own table still works, and dropping it with purge leaves the victim loadable.
    member
        .ok(
            Method::POST,
            &format!("/v1/{wh}/namespaces/mine/tables"),
            Some(table_request("own")),
        )
        .await;
    let purge = format!("/v1/{wh}/namespaces/mine/tables/own?purgeRequested=true");
    assert_eq!(member.status(Method::DELETE, &purge, None).await, 204);
    let loaded = admin
        .ok(
            Method::GET,
            &format!("/v1/{wh}/namespaces/victim/tables/t"),
            None,
        )
        .await;
    assert_eq!(loaded["metadata-location"], metadata.as_str());
    let dir = location.strip_prefix("file://").unwrap();
    assert!(std::path::Path::new(dir).join("metadata").exists());
}

/// The tenant's grants on tables, as the management API lists them.
async fn table_grants(admin: &Session<'_>, tenant: &str) -> Vec<Value> {
    let listed = admin
        .ok(
            Method::GET,
            &format!("/management/v1/tenants/{tenant}/grants"),
            None,
        )
        .await;
    listed["grants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["resource"]["kind"] == "table")
        .cloned()
        .collect()
}

async fn a_grant_on_a_table_follows_the_table_not_its_name(store: Store) {
    let app = spawn_app_on(store).await;
    let root = Session::login(&app, ROOT_ID, ROOT_SECRET).await;
    let t = tenant(&root, "follow").await;
    let admin = Session::login(&app, &t.admin.0, &t.admin.1).await;
    let member = Session::login(&app, &t.member.0, &t.member.1).await;
    let wh = &t.warehouse;
    let tables = format!("/v1/{wh}/namespaces/sales/tables");
    admin.create_namespace(wh, "sales").await;
    admin
        .ok(Method::POST, &tables, Some(table_request("t")))
        .await;
    let on_t =
        json!({"kind": "table", "warehouse": wh, "table": {"namespace": ["sales"], "name": "t"}});
    role_with(
        &admin,
        &t.id,
        "t-readers",
        vec![(on_t, "TABLE_READ_DATA")],
        &t.member_id,
    )
    .await;
    member.ok(Method::GET, &format!("{tables}/t"), None).await;

    // A rename keeps the grant: it names the table, not the name.
    admin
        .ok(
            Method::POST,
            &format!("/v1/{wh}/tables/rename"),
            Some(json!({"source": {"namespace": ["sales"], "name": "t"},
                        "destination": {"namespace": ["sales"], "name": "renamed"}})),
        )
        .await;
    member
        .ok(Method::GET, &format!("{tables}/renamed"), None)
        .await;
    let on_table = table_grants(&admin, &t.id).await;
    assert_eq!(on_table.len(), 1, "{on_table:?}");
    assert_eq!(
        on_table[0]["resource"]["table"],
        json!({"namespace": ["sales"], "name": "renamed"}),
        "answers show the table's current name"
    );
    assert!(on_table[0]["resource"]["table_id"].is_string());

    // A new table under the old name does not inherit the grant.
    admin
        .ok(Method::POST, &tables, Some(table_request("t")))
        .await;
    assert_eq!(
        member
            .status(Method::GET, &format!("{tables}/t"), None)
            .await,
        403
    );

    // Nor does a table re-created after the granted one is dropped.
    assert_eq!(
        admin
            .status(Method::DELETE, &format!("{tables}/renamed"), None)
            .await,
        204
    );
    admin
        .ok(Method::POST, &tables, Some(table_request("renamed")))
        .await;
    assert_eq!(
        member
            .status(Method::GET, &format!("{tables}/renamed"), None)
            .await,
        403
    );
    let dropped = &table_grants(&admin, &t.id).await[0];
    assert!(
        dropped["resource"].get("table").is_none(),
        "a grant on a dropped table shows no name: {dropped}"
    );

    // A grant on a table that does not exist is refused, not kept for a future one.
    let role = admin
        .ok(
            Method::POST,
            &format!("/management/v1/tenants/{}/roles", t.id),
            Some(json!({"name": "future"})),
        )
        .await;
    let r = admin
        .send(
            Method::POST,
            &format!("/management/v1/tenants/{}/grants", t.id),
            Some(
                json!({"role_id": role["id"], "privilege": "TABLE_READ_DATA",
                        "resource": {"kind": "table", "warehouse": wh,
                                     "table": {"namespace": ["sales"], "name": "not-yet"}}}),
            ),
        )
        .await;
    assert_eq!(r.status(), 404, "{}", r.text().await.unwrap());
}

async fn a_tenant_admin_cannot_point_a_warehouse_at_another_warehouses_storage(store: Store) {
    let app = spawn_app_on(store).await;
    let root = Session::login(&app, ROOT_ID, ROOT_SECRET).await;
    let victim = tenant(&root, "victim").await;
    let attacker = tenant(&root, "attacker").await;
    let victim_admin = Session::login(&app, &victim.admin.0, &victim.admin.1).await;
    let attacker_admin = Session::login(&app, &attacker.admin.0, &attacker.admin.1).await;
    let s3 = |bucket: &str, prefix: &str| json!({"kind": "s3", "bucket": bucket, "key_prefix": prefix, "region": "us-east-1"});
    let victim_wh = victim_admin
        .ok(
            Method::POST,
            &format!("/management/v1/tenants/{}/warehouses", victim.id),
            Some(json!({"name": "lake", "storage": s3("victim-lake", "prod")})),
        )
        .await;
    let warehouses = format!("/management/v1/tenants/{}/warehouses", attacker.id);
    for (bucket, prefix) in [
        ("victim-lake", "prod"),
        ("victim-lake", "prod/inside"),
        ("victim-lake", ""),
        ("victim-lake", "/prod/"),
    ] {
        let r = attacker_admin
            .send(
                Method::POST,
                &warehouses,
                Some(json!({"name": "grab", "storage": s3(bucket, prefix)})),
            )
            .await;
        assert_eq!(
            r.status(),
            409,
            "{bucket}/{prefix}: {}",
            r.text().await.unwrap()
        );
    }
    let own = attacker_admin
        .ok(
            Method::POST,
            &warehouses,
            Some(json!({"name": "own", "storage": s3("victim-lake", "production")})),
        )
        .await;
    let own_path = format!("{warehouses}/{}", own["id"].as_str().unwrap());
    let r = attacker_admin
        .send(
            Method::PATCH,
            &own_path,
            Some(json!({"storage": s3("victim-lake", "prod/tables")})),
        )
        .await;
    assert_eq!(r.status(), 409, "{}", r.text().await.unwrap());

    // A warehouse holding namespaces keeps its storage: its tables' files are there.
    let wh = victim_wh["id"].as_str().unwrap();
    victim_admin.create_namespace(wh, "n").await;
    let r = victim_admin
        .send(
            Method::PATCH,
            &format!("/management/v1/tenants/{}/warehouses/{wh}", victim.id),
            Some(json!({"storage": s3("elsewhere", "prod")})),
        )
        .await;
    assert_eq!(r.status(), 409, "{}", r.text().await.unwrap());
}

/// Issue 14's new doors: another tenant's admin tries tenant B's recycle bin (by B's warehouse,
/// and by its own warehouse with B's dropped id), B's readiness detail and the catalog snapshot;
/// B's own member tries B's bin. None gets through, and B's dropped table stays restorable.
async fn the_recycle_bin_the_readiness_detail_and_the_snapshot_stay_in_their_lane(store: Store) {
    let app = spawn_app_on(store).await;
    let root = Session::root(&app);
    let (a, b) = (tenant(&root, "alpha").await, tenant(&root, "beta").await);
    let admin_a = Session::login(&app, &a.admin.0, &a.admin.1).await;
    let admin_b = Session::login(&app, &b.admin.0, &b.admin.1).await;
    let member_b = Session::login(&app, &b.member.0, &b.member.1).await;
    admin_b
        .ok(
            Method::POST,
            &format!("/v1/{}/namespaces", b.warehouse),
            Some(json!({"namespace": ["n"]})),
        )
        .await;
    admin_b
        .ok(
            Method::POST,
            &format!("/v1/{}/namespaces/n/tables", b.warehouse),
            Some(table_request("t")),
        )
        .await;
    let drop = format!(
        "/v1/{}/namespaces/n/tables/t?purgeRequested=true",
        b.warehouse
    );
    assert_eq!(admin_b.status(Method::DELETE, &drop, None).await, 204);
    let bin_b = format!(
        "/management/v1/tenants/{}/warehouses/{}/dropped",
        b.id, b.warehouse
    );
    let listed = admin_b.ok(Method::GET, &bin_b, None).await;
    let id = listed["dropped"][0]["id"].as_str().unwrap().to_owned();

    // Tenant A's admin: B's bin, by B's path or by A's own warehouse with B's id.
    let bin_a = format!(
        "/management/v1/tenants/{}/warehouses/{}/dropped",
        a.id, a.warehouse
    );
    for (method, path) in [
        (Method::GET, bin_b.clone()),
        (Method::POST, format!("{bin_b}/{id}/restore")),
        (Method::DELETE, format!("{bin_b}/{id}")),
        (Method::POST, format!("{bin_a}/{id}/restore")),
        (Method::DELETE, format!("{bin_a}/{id}")),
        (
            Method::GET,
            format!("/management/v1/tenants/{}/health", b.id),
        ),
    ] {
        assert_eq!(
            admin_a.status(method.clone(), &path, None).await,
            404,
            "{method} {path}"
        );
    }
    // B's member without grants: the warehouse is not even visible to it (404), the readiness
    // detail is for tenant admins (403); nobody but root takes a snapshot.
    assert_eq!(member_b.status(Method::GET, &bin_b, None).await, 404);
    assert_eq!(
        member_b
            .status(Method::DELETE, &format!("{bin_b}/{id}"), None)
            .await,
        404
    );
    assert_eq!(
        member_b
            .status(
                Method::GET,
                &format!("/management/v1/tenants/{}/health", b.id),
                None
            )
            .await,
        403
    );
    for admin in [&admin_a, &admin_b] {
        assert_eq!(
            admin
                .status(Method::GET, "/management/v1/snapshot", None)
                .await,
            403
        );
    }
    // Still in B's bin, and B's admin restores it.
    let restored = admin_b
        .ok(Method::POST, &format!("{bin_b}/{id}/restore"), None)
        .await;
    assert_eq!(restored["name"], "t");
}

on_both_stores!(
    tenants_never_see_each_other,
    readers_read_and_grants_open_and_close_access,
    disabled_principals_and_rotated_secrets_stop_working,
    non_empty_tenants_and_warehouses_are_not_deleted,
    management_routes_refuse_bad_tokens,
    an_idempotency_replay_is_authorized_and_a_key_runs_once,
    a_principal_with_create_rights_in_one_namespace_cannot_take_another_tables_location,
    a_grant_on_a_table_follows_the_table_not_its_name,
    a_tenant_admin_cannot_point_a_warehouse_at_another_warehouses_storage,
    the_recycle_bin_the_readiness_detail_and_the_snapshot_stay_in_their_lane,
);

/// A warehouse declared in the configuration goes through the same checks and audit as one made
/// over the API: a profile the API refuses stops the server from starting (an ADLS account name
/// Azure does not accept, an ADLS warehouse with nothing to sign with), and a declared warehouse's
/// creation is in its tenant's audit trail, by Floe itself (the nil principal), as are the default
/// tenant's and the root principal's.
#[tokio::test]
async fn declared_warehouses_are_held_to_the_apis_checks_and_audited() {
    use floe::config::{Settings, WarehouseSettings};
    use floe::startup::Application;
    use floe::storage::{AdlsProfile, StorageProfile};

    let adls = |account: &str| {
        let profile = serde_json::from_value::<AdlsProfile>(
            json!({"account": account, "container": "lake", "key_prefix": "wh"}),
        )
        .unwrap();
        WarehouseSettings {
            name: "lake".into(),
            storage: StorageProfile::Adls(profile),
            s3_access_key_id: None,
            s3_secret_access_key: None,
        }
    };
    for (declared, refusal) in [
        (adls("Not An Account"), "not a storage account name"),
        (adls("goodaccount"), "credential"),
    ] {
        let data_dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            listen: "127.0.0.1:0".into(),
            data_dir: data_dir.path().to_path_buf(),
            root_client_id: Some(ROOT_ID.into()),
            root_client_secret: Some(floe::config::Secret::new(ROOT_SECRET)),
            warehouses: vec![declared],
            ..Settings::default()
        };
        let Err(e) = Application::build(settings).await else {
            panic!("a declared warehouse the API would refuse started the server");
        };
        assert!(
            e.to_string().contains("warehouse 'lake'") && e.to_string().contains(refusal),
            "{e}"
        );
    }

    let app = spawn_app().await;
    let root = Session::root(&app);
    let me = root.ok(Method::GET, "/management/v1/whoami", None).await;
    let tenant = me["tenant_id"].as_str().unwrap();
    let audit = root
        .ok(
            Method::GET,
            &format!("/management/v1/tenants/{tenant}/audit?limit=1000"),
            None,
        )
        .await;
    let by_floe = |action: &str| {
        let event = audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} at start is not audited: {audit}"));
        assert_eq!(event["actor"], uuid::Uuid::nil().to_string(), "{event}");
        event["resource"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        by_floe("create-warehouse"),
        format!("warehouse {}", app.prefix)
    );
    assert_eq!(by_floe("create-tenant"), format!("tenant {tenant}"));
    let root_id = me["principal_id"].as_str().unwrap();
    assert_eq!(by_floe("create-principal"), format!("principal {root_id}"));
}
