//! `floe serve` stopping on SIGTERM, as a process: its background loops (the purge queue, the
//! signing-key reloads, PostgreSQL's change listener, ...) are told to stop and are joined before
//! the store closes, within the grace, and a purge stopped that way is finished by the next start.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{ROOT_ID, ROOT_SECRET, fetch_token};
use crate::pg_support::TestDatabase;

const GRACE_SECS: u64 = 3;

/// `floe serve` on a free port and `data_dir`, with `env` added; its log goes to `log`.
async fn serve(data_dir: &Path, log: &Path, env: &[(&str, String)]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_floe"));
    command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .env("FLOE_ROOT_CLIENT_ID", ROOT_ID)
        .env("FLOE_ROOT_CLIENT_SECRET", ROOT_SECRET)
        .env("FLOE_SHUTDOWN_GRACE_SECS", GRACE_SECS.to_string())
        .env("FLOE_PURGE_INTERVAL_MS", "100")
        .env("FLOE_PURGE_LEASE_SECS", "1")
        .env("FLOE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("floe starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/health/ready")).send().await
            && r.status() == 200
        {
            return (child, base);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "floe did not become ready: {}",
        std::fs::read_to_string(log).unwrap()
    );
}

async fn call(
    client: &reqwest::Client,
    token: &str,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> Value {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Sends SIGTERM and waits for the process to exit; returns how long it took.
fn stop(child: &mut Child) -> Duration {
    let started = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "floe exited with {status}");
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(GRACE_SECS + 5),
            "floe did not exit within its grace"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the log says about stopping: every background loop stopped (none aborted) before the
/// store closed and `Floe stopped` was logged, nothing ran after that, and nothing warned.
fn assert_stopped_cleanly(log: &Path, loops: &[&str]) {
    let text = without_colours(&std::fs::read_to_string(log).unwrap());
    let joined = text
        .lines()
        .position(|l| l.contains("background tasks stopped"))
        .unwrap_or_else(|| panic!("the loops were not joined:\n{text}"));
    let line = text.lines().nth(joined).unwrap();
    for name in loops {
        assert!(line.contains(name), "{name} did not stop: {line}");
    }
    assert!(line.contains("aborted=[]"), "{line}");
    let stopped = text
        .lines()
        .position(|l| l.contains("Floe stopped"))
        .unwrap_or_else(|| panic!("no stop:\n{text}"));
    assert!(joined < stopped, "{text}");
    // (actix's own workers may still say they closed idle connections.)
    let after: Vec<&str> = text
        .lines()
        .skip(stopped + 1)
        .filter(|l| l.contains(" floe"))
        .collect();
    assert!(after.is_empty(), "Floe ran after the stop: {after:#?}");
    assert!(!text.contains("ERROR"), "{text}");
    // Nothing failed on the way down: before the loops were joined, a signing-key reload set off
    // by the change listener losing its connection ran on the closed pool and warned.
    let stopping = text
        .lines()
        .position(|l| l.contains("stopping: no new connections"))
        .unwrap();
    let warnings: Vec<&str> = text
        .lines()
        .skip(stopping)
        .filter(|l| l.contains(" WARN "))
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}

/// `text` without its ANSI colour codes (`ESC [ ... m`).
fn without_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// Starts Floe (with `env`), drops a table of `files` files with a purge, asks for the purge now
/// and stops Floe at once; then starts it again on the same data directory and waits for the
/// purge to be done. Returns the stop's duration.
async fn purge_interrupted_by_a_stop(env: &[(&str, String)], loops: &[&str]) -> Duration {
    let data_dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let (first_log, second_log) = (
        logs.path().join("first.log"),
        logs.path().join("second.log"),
    );
    let (mut floe, base) = serve(data_dir.path(), &first_log, env).await;
    let client = reqwest::Client::new();
    let token = fetch_token(&client, &base, ROOT_ID, ROOT_SECRET).await;
    let whoami = call(
        &client,
        &token,
        Method::GET,
        &format!("{base}/management/v1/whoami"),
        None,
    )
    .await;
    let tenant = whoami["tenant_id"].as_str().unwrap().to_owned();
    let warehouse = call(
        &client,
        &token,
        Method::POST,
        &format!("{base}/management/v1/tenants/{tenant}/warehouses"),
        Some(json!({"name": "wh", "storage": {"kind": "local"}})),
    )
    .await;
    let prefix = warehouse["id"].as_str().unwrap().to_owned();
    let v1 = format!("{base}/v1/{prefix}");
    call(
        &client,
        &token,
        Method::POST,
        &format!("{v1}/namespaces"),
        Some(json!({"namespace": ["ns"]})),
    )
    .await;
    let schema = json!({"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": false}]});
    let table = call(
        &client,
        &token,
        Method::POST,
        &format!("{v1}/namespaces/ns/tables"),
        Some(json!({"name": "t", "schema": schema})),
    )
    .await;
    let location = table["metadata"]["location"].as_str().unwrap().to_owned();
    let directory = std::path::PathBuf::from(location.strip_prefix("file://").unwrap());
    let data = directory.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..20_000 {
        std::fs::write(data.join(format!("f{i}.parquet")), b"x").unwrap();
    }
    let response = client
        .delete(format!("{v1}/namespaces/ns/tables/t?purgeRequested=true"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let bin = format!("{base}/management/v1/tenants/{tenant}/warehouses/{prefix}/dropped");
    let dropped = call(&client, &token, Method::GET, &bin, None).await;
    let id = dropped["dropped"][0]["id"].as_str().unwrap().to_owned();
    let response = client
        .delete(format!("{bin}/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    let took = stop(&mut floe);
    assert_stopped_cleanly(&first_log, loops);

    // The next start finishes what the stop left (the purge's lease runs out after a second).
    let (mut floe, base) = serve(data_dir.path(), &second_log, env).await;
    let token = fetch_token(&client, &base, ROOT_ID, ROOT_SECRET).await;
    let bin = format!("{base}/management/v1/tenants/{tenant}/warehouses/{prefix}/dropped");
    let mut left = Value::Null;
    for _ in 0..150 {
        left = call(&client, &token, Method::GET, &bin, None).await;
        if left["dropped"].as_array().is_some_and(Vec::is_empty) && !directory.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left["dropped"], json!([]), "the purge was not finished");
    assert!(!directory.exists(), "the table's files are still there");
    stop(&mut floe);
    assert_stopped_cleanly(&second_log, loops);
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_a_purge_joins_every_loop_within_the_grace_on_sled() {
    let took = purge_interrupted_by_a_stop(
        &[],
        &[
            "purge queue",
            "signing-key reloads",
            "denial summaries",
            "expiry",
        ],
    )
    .await;
    assert!(took < Duration::from_secs(GRACE_SECS + 2), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_a_purge_joins_every_loop_within_the_grace_on_postgres() {
    let db = TestDatabase::create().await;
    let env = [
        ("FLOE_STORE", "postgres".to_owned()),
        ("FLOE_POSTGRES__URL", db.url.clone()),
        // 32 bytes, base64: replicas on PostgreSQL share a master key.
        (
            "FLOE_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
    ];
    let took = purge_interrupted_by_a_stop(
        &env,
        &[
            "purge queue",
            "signing-key reloads",
            "change listener",
            "expiry",
        ],
    )
    .await;
    assert!(took < Duration::from_secs(GRACE_SECS + 2), "{took:?}");
}
