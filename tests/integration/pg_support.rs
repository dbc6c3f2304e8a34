//! A fresh PostgreSQL database per test run, on the server at `FLOE_TEST_POSTGRES_URL`
//! (default: the local trust-auth server, database `test`), dropped when the run ends.

use std::sync::atomic::{AtomicU32, Ordering};

use std::sync::Arc;
use std::time::Duration;

use floe::background::StopSignal;
use floe::changes::Changes;
use floe::store::pointer_cache::{PointerCache, PointerCacheMode};
use floe::store::{CatalogStore, PgStore};
use sqlx::{Connection, PgConnection};

/// The server tests connect to (any database on it; it is used to create others).
pub fn admin_url() -> String {
    std::env::var("FLOE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database created for this test run; dropped (with its connections) on drop.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    schemas: AtomicU32,
}

impl TestDatabase {
    /// Creates `floe_test_<random>`.
    pub async fn create() -> Self {
        let admin = admin_url();
        let name = format!("floe_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL is reachable (set FLOE_TEST_POSTGRES_URL)");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let url = with_database(&admin, &name);
        Self {
            name,
            url,
            schemas: AtomicU32::new(0),
        }
    }

    /// The URL of a new, empty schema in this database (for a fresh store without a new database).
    pub async fn fresh_schema_url(&self) -> String {
        let schema = format!("s{}", self.schemas.fetch_add(1, Ordering::SeqCst));
        let mut conn = PgConnection::connect(&self.url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{schema}", self.url)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (admin_url(), self.name.clone());
        // Drop runs outside any runtime's async context; use a short-lived one.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("a postgres:// URL");
    parsed.set_path(&format!("/{name}"));
    parsed.to_string()
}

/// Lets go of a check's pool: kept, they add up past the server's connection limit. Closing
/// waits for connections in use, and a change listener may hold one: its idle ones are closed at
/// once, the rest when they come back.
pub async fn close(store: Arc<dyn CatalogStore>) {
    let _ = tokio::time::timeout(Duration::from_secs(2), store.close()).await;
}

/// A replica's store with its pointer cache up (its listener heard), as `floe serve` runs it.
pub async fn caching_replica(url: &str, max_staleness: Duration) -> PgStore {
    let store = PgStore::connect(url, 4)
        .await
        .unwrap()
        .with_pointer_cache(PointerCache::new(
            PointerCacheMode::Notify,
            max_staleness,
            1 << 20,
        ));
    tokio::spawn(store.watch(Arc::new(Changes::new()), StopSignal::never()));
    for _ in 0..100 {
        if store.pointers().ticket().is_some() {
            return store;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the listener did not come up within 2 s");
}
