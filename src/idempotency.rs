//! `Idempotency-Key`s: each key runs its mutation once, and its final answer is replayed for the
//! advertised lifetime.
//!
//! Owns: what a key belongs to (its principal: another principal's same key is another key), the
//! reservation in the store before the mutation runs (so of two requests with one key only one
//! runs), and keeping or releasing the answer. Must not touch: HTTP types (the API layer decides
//! what an answer is and runs the mutation).

use std::sync::Arc;

use uuid::Uuid;

use crate::identity::Caller;
use crate::store::{CatalogStore, IdempotencyRecord, StoreError, now_ms};

/// What a request with a key may do.
pub enum Reservation {
    /// Run the mutation, then [`IdempotencyKeys::finish`] it.
    Run(ReservedKey),
    /// The key already ran this operation: answer this again.
    Replay { status: u16, body: String },
    /// A request with this key is still running.
    Running,
    /// The key was used for another operation.
    OtherOperation,
}

/// A key reserved for one run.
pub struct ReservedKey {
    store_key: String,
    pending: IdempotencyRecord,
}

/// The keys, kept in the store.
pub struct IdempotencyKeys {
    store: Arc<dyn CatalogStore>,
    lifetime_secs: u64,
}

impl IdempotencyKeys {
    pub fn new(store: Arc<dyn CatalogStore>, lifetime_secs: u64) -> Self {
        Self {
            store,
            lifetime_secs,
        }
    }

    /// How long a final answer is replayed.
    pub fn lifetime_secs(&self) -> u64 {
        self.lifetime_secs
    }

    /// Reserves the caller's `key` for `operation` (say, `POST /v1/.../tables/t`), or says why
    /// the mutation must not run now.
    pub async fn reserve(
        &self,
        caller: &Caller,
        key: Uuid,
        operation: String,
    ) -> Result<Reservation, StoreError> {
        let store_key = format!("{}/{}/{}", caller.tenant_id, caller.principal_id, key);
        let now = now_ms();
        let pending = IdempotencyRecord {
            operation,
            status: 0,
            body: String::new(),
            expires_at_ms: now + self.lifetime_secs as i64 * 1000,
            pending: true,
        };
        Ok(
            match self
                .store
                .reserve_idempotency(&store_key, &pending, now)
                .await?
            {
                Some(rec) if rec.operation != pending.operation => Reservation::OtherOperation,
                Some(rec) if rec.pending => Reservation::Running,
                Some(rec) => Reservation::Replay {
                    status: rec.status,
                    body: rec.body,
                },
                None => Reservation::Run(ReservedKey { store_key, pending }),
            },
        )
    }

    /// Keeps a final answer (2xx or 4xx) for replay, or releases the key after a server error, so
    /// the client may retry. A failure here is logged: the answer itself stands.
    pub async fn finish(&self, key: ReservedKey, status: u16, body: String) {
        let kept = if (500..600).contains(&status) {
            self.store.delete_idempotency(&key.store_key).await
        } else {
            let record = IdempotencyRecord {
                status,
                body,
                pending: false,
                ..key.pending
            };
            self.store.put_idempotency(&key.store_key, &record).await
        };
        if let Err(e) = kept {
            tracing::warn!(error = %e, "could not record or release an idempotency key");
        }
    }
}
