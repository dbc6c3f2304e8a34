//! Authentication as clients meet it: token requests in every style real clients use, and every
//! catalog route refusing missing, bad or forged tokens.

use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn token_endpoint_accepts_form_and_basic_client_auth() {
    let app = spawn_app().await;
    let url = format!("{}/v1/oauth/tokens", app.base);
    // PyIceberg / Iceberg Java: credentials in the form, scope=catalog.
    let r = app
        .client
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ROOT_ID),
            ("client_secret", ROOT_SECRET),
            ("scope", "catalog"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    // DuckDB: HTTP Basic with Polaris' scope.
    let r = app
        .client
        .post(&url)
        .basic_auth(ROOT_ID, Some(ROOT_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "PRINCIPAL_ROLE:ALL"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Token exchange with a valid token (Iceberg Java's refresh).
    let r = app
        .client
        .post(&url)
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", app.token.as_str()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn token_endpoint_refuses_bad_clients_with_oauth_errors() {
    let app = spawn_app().await;
    let url = format!("{}/v1/oauth/tokens", app.base);
    for (id, secret) in [(ROOT_ID, "wrong-secret"), ("nobody", ROOT_SECRET)] {
        let r = token_request(&app, id, secret).await;
        assert_eq!(r.status(), 401);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }
    let r = app
        .client
        .post(&url)
        .basic_auth(ROOT_ID, Some("nope"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .post(&url)
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
}

#[tokio::test]
async fn catalog_routes_refuse_missing_and_bad_tokens() {
    let app = spawn_app().await;
    app.create_namespace(&["ns"]).await;
    app.create_table("ns", "t").await;
    let parts: Vec<String> = app.token.split('.').map(str::to_owned).collect();
    let none_alg = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let tampered = format!("{}.{}A.{}", parts[0], parts[1], parts[2]);
    let bad_tokens: Vec<Option<String>> = vec![
        None,
        Some("None".into()),
        Some("garbage".into()),
        Some(none_alg),
        Some(tampered),
    ];
    let routes = [
        (Method::GET, "/v1/config?warehouse=demo".to_string()),
        (Method::GET, format!("/v1/{}/namespaces", app.prefix)),
        (Method::POST, format!("/v1/{}/namespaces", app.prefix)),
        (
            Method::GET,
            format!("/v1/{}/namespaces/ns/tables/t", app.prefix),
        ),
        (
            Method::POST,
            format!("/v1/{}/namespaces/ns/tables/t", app.prefix),
        ),
        (
            Method::DELETE,
            format!("/v1/{}/namespaces/ns/tables/t", app.prefix),
        ),
        (
            Method::GET,
            format!("/v1/{}/namespaces/ns/views", app.prefix),
        ),
        (
            Method::POST,
            format!("/v1/{}/transactions/commit", app.prefix),
        ),
    ];
    for token in &bad_tokens {
        for (method, path) in &routes {
            let mut req = app
                .client
                .request(method.clone(), format!("{}{path}", app.base))
                .header("content-type", "application/json")
                .body("{}");
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{method} {path} with {token:?}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["type"], "NotAuthorizedException");
        }
    }
    // Nothing was changed by the refused requests.
    assert_eq!(app.get("/namespaces/ns/tables/t").await.status(), 200);
}

#[tokio::test]
async fn tokens_expire() {
    let app = spawn_app_with(|s| s.auth.token_ttl_secs = 60).await;
    let r = app
        .client
        .post(format!("{}/v1/oauth/tokens", app.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ROOT_ID),
            ("client_secret", ROOT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["expires_in"], 60);
}

#[tokio::test]
async fn unknown_and_foreign_warehouses_are_not_found() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/v1/config?warehouse=nope", app.base))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "NoSuchWarehouseException").await;
    let r = app
        .client
        .get(format!(
            "{}/v1/{}/namespaces",
            app.base,
            uuid::Uuid::new_v4()
        ))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "NoSuchWarehouseException").await;
    let r = app
        .client
        .get(format!("{}/v1/not-a-uuid/namespaces", app.base))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "NoSuchWarehouseException").await;
}

#[tokio::test]
async fn health_and_jwks_answer_without_a_token() {
    let app = spawn_app().await;
    for path in [
        "/health/live",
        "/health/ready",
        "/.well-known/jwks.json",
        "/openapi.json",
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let jwks: Value = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
}

#[tokio::test]
async fn signing_keys_rotate_and_old_tokens_verify_until_expiry() {
    let app = spawn_app().await;
    let kid = |token: &str| {
        let header = token.split('.').next().unwrap();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    let old = app.token.clone();
    let r = app
        .client
        .post(format!("{}/management/v1/signing-keys/rotate", app.base))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let new_kid = r.json::<Value>().await.unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_kid, kid(&old));
    let fresh = fetch_token(&app.client, &app.base, ROOT_ID, ROOT_SECRET).await;
    assert_eq!(kid(&fresh), new_kid);
    for token in [&old, &fresh] {
        let r = app
            .client
            .get(format!("{}/management/v1/whoami", app.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "both the old and the new key verify");
    }
    let jwks: Value = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&new_kid.as_str()) && kids.contains(&kid(&old).as_str()),
        "{kids:?}"
    );
    let r = app
        .client
        .post(format!("{}/management/v1/tenants", app.base))
        .bearer_auth(&fresh)
        .json(&serde_json::json!({"name": "t2"}))
        .send()
        .await
        .unwrap();
    let tenant = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p: Value = app
        .client
        .post(format!(
            "{}/management/v1/tenants/{tenant}/principals",
            app.base
        ))
        .bearer_auth(&fresh)
        .json(&serde_json::json!({"name": "p"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other = fetch_token(
        &app.client,
        &app.base,
        p["client_id"].as_str().unwrap(),
        p["client_secret"].as_str().unwrap(),
    )
    .await;
    let r = app
        .client
        .post(format!("{}/management/v1/signing-keys/rotate", app.base))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "only root rotates keys");
}

/// Rotating in a loop would keep every retired key in the JWKS until its tokens expire (a fuzzing
/// run grew it to 62 keys): rotations are at most one per `auth.min_key_rotation_secs`.
#[tokio::test]
async fn signing_key_rotations_are_rate_limited_so_the_jwks_stays_small() {
    let rotate = |app: &TestApp| {
        app.client
            .post(format!("{}/management/v1/signing-keys/rotate", app.base))
            .bearer_auth(&app.token)
            .send()
    };
    let jwks_len = |app: &TestApp| {
        let request = app
            .client
            .get(format!("{}/.well-known/jwks.json", app.base))
            .send();
        async move {
            let jwks: Value = request.await.unwrap().json().await.unwrap();
            jwks["keys"].as_array().unwrap().len()
        }
    };
    let app = spawn_app().await;
    assert_eq!(rotate(&app).await.unwrap().status(), 200);
    for _ in 0..5 {
        let r = rotate(&app).await.unwrap();
        assert_eq!(r.status(), 429);
        let wait: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=300).contains(&wait), "Retry-After {wait}");
        assert_error(r, 429, "TooManyRequestsException").await;
    }
    assert_eq!(
        jwks_len(&app).await,
        2,
        "the first key and its successor only"
    );

    let unlimited = spawn_app_with(|s| s.auth.min_key_rotation_secs = 0).await;
    for _ in 0..3 {
        assert_eq!(rotate(&unlimited).await.unwrap().status(), 200);
    }
    assert_eq!(jwks_len(&unlimited).await, 4);
}

#[tokio::test]
async fn a_documented_path_asked_with_another_method_answers_405_with_allow() {
    let app = spawn_app().await;
    let r = app
        .client
        .request(Method::TRACE, format!("{}/v1/config", app.base))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["allow"], "GET");
    assert_error(r, 405, "MethodNotAllowedException").await;
    let r = app
        .client
        .request(
            Method::PATCH,
            format!("{}/v1/{}/namespaces/ns/tables/t", app.base, app.prefix),
        )
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["allow"], "GET, POST, DELETE, HEAD");
    assert_error(r, 405, "MethodNotAllowedException").await;
}

#[tokio::test]
async fn unknown_routes_and_principal_actions_answer_a_json_404() {
    let app = spawn_app().await;
    let whoami = app.get_json("/management/v1/whoami").await;
    let (tenant, principal) = (&whoami["tenant_id"], &whoami["principal_id"]);
    for path in [
        format!(
            "/management/v1/tenants/{}/principals/{}/explode",
            tenant.as_str().unwrap(),
            principal.as_str().unwrap()
        ),
        "/v2/nothing".to_owned(),
    ] {
        let r = app
            .client
            .post(format!("{}{path}", app.base))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        assert_error(r, 404, "NotFoundException").await;
    }
}

/// The value of an unlabelled counter on /metrics.
async fn counter(app: &TestApp, name: &str) -> f64 {
    app.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// A principal created over the management API; returns its client id and secret.
async fn service_principal(app: &TestApp, name: &str) -> (String, String) {
    let who = app.get_json("/management/v1/whoami").await;
    let tenant = who["tenant_id"].as_str().unwrap();
    let r = app
        .post_root(
            &format!("/management/v1/tenants/{tenant}/principals"),
            json!({"name": name}),
        )
        .await;
    let p: Value = r.json().await.unwrap();
    (
        p["client_id"].as_str().unwrap().to_owned(),
        p["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// Issue: a known client id with a wrong secret cost an argon2 check (~20 ms) and an unknown one
/// answered at once, so the answer time told which client ids exist; and every attempt ran argon2.
#[tokio::test]
async fn unknown_and_known_client_ids_cost_the_same_secret_check() {
    let app = spawn_app().await;
    let (generated, _) = service_principal(&app, "etl").await;
    for (client_id, secret, slow) in [
        ("no-such-client", "whatever", 0.0),
        (generated.as_str(), "wrong-secret", 0.0),
        ("also-unknown", "x", 0.0),
        // The root secret in these tests is chosen in the configuration: argon2.
        (ROOT_ID, "wrong-secret", 1.0),
    ] {
        let before = counter(&app, "floe_secret_checks_total").await;
        let slow_before = counter(&app, "floe_slow_secret_checks_total").await;
        assert_eq!(token_status(&app, client_id, secret).await, 401);
        let after = counter(&app, "floe_secret_checks_total").await;
        let slow_after = counter(&app, "floe_slow_secret_checks_total").await;
        assert_eq!(after - before, 1.0, "{client_id}: one check either way");
        assert_eq!(
            slow_after - slow_before,
            slow,
            "{client_id}: argon2 only for a secret a person chose"
        );
    }
}

/// Issue: nothing slowed down guessing a client's secret, from one address or many.
#[tokio::test]
async fn guessing_a_client_secret_backs_off_per_client_and_per_address() {
    let app = spawn_app().await;
    let (client, secret) = service_principal(&app, "victim").await;
    for _ in 0..6 {
        assert_eq!(token_status(&app, &client, "guess").await, 401);
    }
    let r = token_request(&app, &client, "guess").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(
        token_status(&app, &client, &secret).await,
        429,
        "while the door is shut no secret is checked"
    );
    assert!(counter(&app, "floe_sign_ins_backed_off_total").await >= 2.0);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(token_status(&app, &client, &secret).await, 200);
    assert_eq!(
        token_status(&app, &client, "guess").await,
        401,
        "a success starts the client afresh"
    );

    // Spraying many client ids from one address shuts that address once it has failed 20 times
    // freely (7 of them above).
    let mut refused = Vec::new();
    for i in 0..16 {
        refused.push(token_status(&app, &format!("sprayed-{i}"), "guess").await);
    }
    assert_eq!(refused[..14], [401; 14]);
    assert_eq!(refused[14..], [429, 429]);
}
