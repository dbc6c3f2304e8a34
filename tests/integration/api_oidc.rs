//! Tokens from an external OIDC issuer, served by a small JWKS server in the test: they work, a key
//! rotation at the issuer keeps old tokens valid until expiry, and tokens of other issuers, other
//! audiences or expired ones are refused.

use std::sync::{Arc, Mutex};

use crate::common::*;
use actix_web::{App, HttpResponse, HttpServer, web};
use floe::identity::SigningKey;
use floe::identity::oidc::OidcIssuer;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

const ISSUER: &str = "https://idp.test";

/// A JWKS endpoint whose keys the test changes.
async fn jwks_server(keys: Arc<Mutex<Vec<SigningKey>>>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let keys = keys.clone();
        App::new().route(
            "/jwks",
            web::get().to(move || {
                let keys = keys.lock().unwrap();
                let list: Vec<Value> = keys
                    .iter()
                    .map(|k| json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": k.kid, "x": k.public_x}))
                    .collect();
                async move { HttpResponse::Ok().json(json!({ "keys": list })) }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}/jwks")
}

fn token(key: &SigningKey, iss: &str, aud: &str, sub: &str, exp_in: i64) -> String {
    let now = chrono_now();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    let claims = json!({"iss": iss, "aud": aud, "sub": sub, "exp": now + exp_in, "iat": now, "email": format!("{sub}@example.com")});
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn tokens_of_a_configured_issuer_work_and_survive_its_key_rotation() {
    let (k1, k2) = (
        SigningKey::from_seed([21; 32]),
        SigningKey::from_seed([22; 32]),
    );
    let keys = Arc::new(Mutex::new(vec![SigningKey::from_seed([21; 32])]));
    let jwks_url = jwks_server(keys.clone()).await;
    let app = spawn_app_with(|s| {
        s.oidc = vec![OidcIssuer {
            issuer: ISSUER.into(),
            audience: "floe-api".into(),
            jwks_url,
            tenant: Some("default".into()),
            tenant_claim: None,
            principal_claim: "email".into(),
            create_principals: true,
            jwks_min_refresh_secs: 0,
            algorithms: vec![Algorithm::EdDSA],
        }];
    })
    .await;
    let whoami = |t: String| {
        let app = &app;
        async move {
            app.client
                .get(format!("{}/management/v1/whoami", app.base))
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
        }
    };
    let old = token(&k1, ISSUER, "floe-api", "ann", 600);
    let r = whoami(old.clone()).await;
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(
        (me["name"].as_str(), me["tenant_name"].as_str()),
        (Some("ann@example.com"), Some("default"))
    );
    // The principal exists now, with no grants: it may not read the catalog.
    let r = app
        .client
        .get(format!("{}/v1/{}/namespaces", app.base, app.prefix))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The issuer rotates: new tokens carry the new key; old tokens verify until they expire.
    *keys.lock().unwrap() = vec![
        SigningKey::from_seed([22; 32]),
        SigningKey::from_seed([21; 32]),
    ];
    assert_eq!(
        whoami(token(&k2, ISSUER, "floe-api", "ann", 600))
            .await
            .status(),
        200
    );
    assert_eq!(
        whoami(token(&k1, ISSUER, "floe-api", "ann", 600))
            .await
            .status(),
        200
    );
    assert_eq!(
        whoami(token(&k1, ISSUER, "floe-api", "ann", -600))
            .await
            .status(),
        401,
        "expired"
    );
    // A key the issuer drops keeps verifying until the cached JWKS ages out (JWKS_MAX_AGE_SECS).

    // Other issuers, other audiences and foreign keys are refused.
    assert_eq!(
        whoami(token(&k2, "https://evil.test", "floe-api", "ann", 600))
            .await
            .status(),
        401
    );
    assert_eq!(
        whoami(token(&k2, ISSUER, "other-api", "ann", 600))
            .await
            .status(),
        401
    );
    assert_eq!(
        whoami(token(
            &SigningKey::from_seed([23; 32]),
            ISSUER,
            "floe-api",
            "ann",
            600
        ))
        .await
        .status(),
        401
    );
    // Root's own tokens still work beside the issuer's.
    assert_eq!(whoami(app.token.clone()).await.status(), 200);
}

#[tokio::test]
async fn unknown_principals_are_refused_unless_the_issuer_creates_them() {
    let keys = Arc::new(Mutex::new(vec![SigningKey::from_seed([31; 32])]));
    let jwks_url = jwks_server(keys.clone()).await;
    let app = spawn_app_with(|s| {
        s.oidc = vec![OidcIssuer {
            issuer: ISSUER.into(),
            audience: "floe-api".into(),
            jwks_url,
            tenant: None,
            tenant_claim: Some("tenant".into()),
            principal_claim: "sub".into(),
            create_principals: false,
            jwks_min_refresh_secs: 0,
            algorithms: vec![Algorithm::EdDSA],
        }];
    })
    .await;
    let t = token(
        &SigningKey::from_seed([31; 32]),
        ISSUER,
        "floe-api",
        "carl",
        600,
    );
    let r = app
        .client
        .get(format!("{}/management/v1/whoami", app.base))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no tenant claim and no principal yet");
}

/// Issue: the verifier took the algorithm from the token's own header.
#[tokio::test]
async fn a_token_is_verified_only_with_the_algorithms_its_issuer_is_pinned_to() {
    let key = SigningKey::from_seed([41; 32]);
    let jwks_url = jwks_server(Arc::new(Mutex::new(vec![SigningKey::from_seed([41; 32])]))).await;
    let issuer = |algorithms: Vec<Algorithm>, jwks_url: String| OidcIssuer {
        issuer: ISSUER.into(),
        audience: "floe-api".into(),
        jwks_url,
        tenant: Some("default".into()),
        tenant_claim: None,
        principal_claim: "sub".into(),
        create_principals: true,
        jwks_min_refresh_secs: 0,
        algorithms,
    };
    let whoami = |app: &TestApp, t: String| {
        let request = app
            .client
            .get(format!("{}/management/v1/whoami", app.base))
            .bearer_auth(t);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // Pinned to RS256 (the default): a valid EdDSA signature from a key in its JWKS is refused.
    let url = jwks_url.clone();
    let rs256_only =
        spawn_app_with(move |s| s.oidc = vec![issuer(vec![Algorithm::RS256], url)]).await;
    let good = token(&key, ISSUER, "floe-api", "dana", 600);
    assert_eq!(whoami(&rs256_only, good.clone()).await, 401);

    // Pinned to EdDSA: that token works, and an HMAC token keyed with the public key does not.
    let app =
        spawn_app_with(move |s| s.oidc = vec![issuer(vec![Algorithm::EdDSA], jwks_url)]).await;
    assert_eq!(whoami(&app, good).await, 200);
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    let now = chrono_now();
    let claims = json!({"iss": ISSUER, "aud": "floe-api", "sub": "dana", "exp": now + 600});
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.public_x.as_bytes()),
    )
    .unwrap();
    assert_eq!(whoami(&app, forged).await, 401);
}
