//! Each tenant's request rate: a tenant over it waits for its turn, then gets 429 with
//! Retry-After; another tenant is not held up.

use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_tenant_over_its_rate_waits_then_gets_429_and_another_tenant_does_not_wait() {
    let app = spawn_app_with(|s| {
        s.limits.tenant_requests_per_sec = 10;
        s.limits.tenant_burst = 1;
        s.limits.tenant_max_wait_ms = 300;
    })
    .await;
    let root = Session::root(&app);
    // Another tenant with a principal of its own (set up before the root's tenant is busy).
    let other = root
        .ok(
            Method::POST,
            "/management/v1/tenants",
            Some(json!({"name": "quiet"})),
        )
        .await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    let (client_id, secret, _) = principal(&root, &other_id, "quiet-reader").await;
    // A quiet spell: the root's tenant starts with its burst.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let quiet = Session::login(&app, &client_id, &secret).await;

    // The root's tenant sends 8 requests at once: 2 pass at once, 3 wait their turn (100, 200,
    // 300 ms), the rest are refused.
    let started = Instant::now();
    let sends = (0..8).map(|_| root.send(Method::GET, "/management/v1/whoami", None));
    let answers = futures::future::join_all(sends).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    let passed = statuses.iter().filter(|s| **s == 200).count();
    let refused: Vec<_> = answers.iter().filter(|r| r.status() == 429).collect();
    assert_eq!(passed + refused.len(), 8, "{statuses:?}");
    assert!((4..=6).contains(&passed), "{statuses:?}");
    assert!(
        refused
            .iter()
            .all(|r| r.headers().contains_key("retry-after"))
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the passed ones waited their turn"
    );
    let body: serde_json::Value = answers
        .into_iter()
        .find(|r| r.status() == 429)
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["type"], "TooManyRequestsException", "{body}");

    // Meanwhile the quiet tenant is answered at once.
    let started = Instant::now();
    assert_eq!(
        quiet
            .status(Method::GET, "/management/v1/whoami", None)
            .await,
        200
    );
    assert!(started.elapsed() < Duration::from_millis(100));
}
