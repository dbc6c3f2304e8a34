//! What a client and the log see when the store fails underneath a request: the client a 503 in
//! the spec's shape that names nothing of the backend; the log one line, with the request id and
//! the failure's whole chain down to PostgreSQL's own error and its SQLSTATE.

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::Method;

use crate::common::*;

/// Everything the process logs, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_is_logged_once_with_its_cause_and_never_sent() {
    let log = Captured::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish(),
    )
    .unwrap();
    let app = spawn_app_on(Store::Postgres).await;
    app.create_namespace(&["ns"]).await;
    // The store breaks underneath the server: its namespaces table is gone.
    let database = app.database.as_ref().unwrap();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&database.url)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE namespaces RENAME TO namespaces_gone")
        .execute(&mut conn)
        .await
        .unwrap();

    let response = app
        .client
        .request(
            Method::GET,
            format!("{}/v1/{}/namespaces", app.base, app.prefix),
        )
        .bearer_auth(&app.token)
        .header("X-Request-Id", "failing-request-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert!(body.contains("the catalog store is unavailable"), "{body}");
    for detail in ["SQLSTATE", "namespaces", "relation", "PostgreSQL"] {
        assert!(
            !body.contains(detail),
            "the answer names the backend: {body}"
        );
    }

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("failing-request-1"))
        .collect();
    assert_eq!(lines.len(), 1, "logged once: {text}");
    let line = lines[0];
    assert!(line.contains("request failed"), "{line}");
    // The chain: the store's failure, PostgreSQL's refusal with its code (42P01: no such
    // relation), and PostgreSQL's own message.
    assert!(line.contains("SQLSTATE 42P01"), "{line}");
    assert!(line.contains("namespaces\" does not exist"), "{line}");
}
