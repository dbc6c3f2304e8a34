//! Idempotency records in PostgreSQL ([`IdempotencyStore`]): a reservation is one conditional
//! upsert.
//!
//! Owns: the `idempotency` table. Must not touch: anything else.

use async_trait::async_trait;

use super::common::{backend, json};
use super::*;

#[async_trait]
impl IdempotencyStore for PgStore {
    async fn put_idempotency(&self, key: &str, rec: &IdempotencyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO idempotency (key, expires_at_ms, record) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET expires_at_ms = EXCLUDED.expires_at_ms, record = EXCLUDED.record",
        )
        .bind(key)
        .bind(rec.expires_at_ms)
        .bind(json(rec))
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn get_idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        self.fetch_record(sqlx::query("SELECT record FROM idempotency WHERE key = $1").bind(key))
            .await
    }

    async fn reserve_idempotency(
        &self,
        key: &str,
        pending: &IdempotencyRecord,
        now_ms: i64,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        loop {
            let reserved = sqlx::query(
                "INSERT INTO idempotency (key, expires_at_ms, record) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET expires_at_ms = EXCLUDED.expires_at_ms, \
                 record = EXCLUDED.record WHERE idempotency.expires_at_ms <= $4",
            )
            .bind(key)
            .bind(pending.expires_at_ms)
            .bind(json(pending))
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
            if reserved.rows_affected() == 1 {
                return Ok(None);
            }
            // A live record holds the key; it may have expired or gone since: then try again.
            if let Some(existing) = self.get_idempotency(key).await?
                && existing.expires_at_ms > now_ms
            {
                return Ok(Some(existing));
            }
        }
    }

    async fn delete_idempotency(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM idempotency WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
    }

    async fn purge_idempotency(&self, now: i64) -> StoreResult<u64> {
        sqlx::query("DELETE FROM idempotency WHERE expires_at_ms < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(backend)
    }
}
