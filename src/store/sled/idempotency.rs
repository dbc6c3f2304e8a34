//! Idempotency records in sled ([`IdempotencyStore`]): a reservation is one compare-and-swap.
//!
//! Owns: the `idempotency` tree. Must not touch: anything else.

use async_trait::async_trait;

use super::*;

#[async_trait]
impl IdempotencyStore for SledStore {
    async fn put_idempotency(&self, key: &str, record: &IdempotencyRecord) -> StoreResult<()> {
        let _writing = self.writing().await?;
        self.idempotency
            .insert(key.as_bytes(), encode(record)?)
            .map_err(backend)?;
        self.durable().await
    }

    async fn get_idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        Self::get_json(&self.idempotency, key.as_bytes())
    }

    async fn reserve_idempotency(
        &self,
        key: &str,
        pending: &IdempotencyRecord,
        now_ms: i64,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let _writing = self.writing().await?;
        let value = encode(pending)?;
        loop {
            let current = self.idempotency.get(key.as_bytes()).map_err(backend)?;
            if let Some(bytes) = &current {
                let existing: IdempotencyRecord = decode(bytes)?;
                if existing.expires_at_ms > now_ms {
                    return Ok(Some(existing));
                }
            }
            let swapped = self
                .idempotency
                .compare_and_swap(key.as_bytes(), current, Some(value.as_slice()))
                .map_err(backend)?;
            if swapped.is_ok() {
                self.durable().await?;
                return Ok(None);
            }
        }
    }

    async fn delete_idempotency(&self, key: &str) -> StoreResult<()> {
        let _writing = self.writing().await?;
        self.idempotency.remove(key.as_bytes()).map_err(backend)?;
        self.durable().await
    }

    async fn purge_idempotency(&self, now: i64) -> StoreResult<u64> {
        let _writing = self.writing().await?;
        let mut removed = 0;
        for entry in self.idempotency.iter() {
            let (key, value) = entry.map_err(backend)?;
            let record: IdempotencyRecord = decode(&value)?;
            if record.expires_at_ms < now {
                self.idempotency.remove(key).map_err(backend)?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.durable().await?;
        }
        Ok(removed)
    }
}
