//! `Idempotency-Key`s: each key runs its mutation once, and its final answer is replayed for the
//! advertised lifetime.
//!
//! Owns: what a key belongs to (its principal: another principal's same key is another key), the
//! reservation in the store before the mutation runs (so of two requests with one key only one
//! runs), and keeping or releasing the answer. Must not touch: HTTP types (the API layer decides
//! what an answer is and runs the mutation), or the store beyond its [`IdempotencyStore`].

use std::sync::Arc;

use uuid::Uuid;

use crate::identity::Caller;
use crate::store::{IdempotencyRecord, IdempotencyStore, StoreError, now_ms};

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
    store: Arc<dyn IdempotencyStore>,
    lifetime_secs: u64,
    /// How long a reservation holds its key while its request runs: no longer than a request may
    /// run, so a request that was stopped (its deadline, its client gone, a crash) leaves the key
    /// free again soon.
    running_for: std::time::Duration,
}

impl IdempotencyKeys {
    pub fn new(
        store: Arc<dyn IdempotencyStore>,
        lifetime_secs: u64,
        running_for: std::time::Duration,
    ) -> Self {
        Self {
            store,
            lifetime_secs,
            running_for,
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
            expires_at_ms: now + self.running_for.as_millis() as i64,
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
                expires_at_ms: now_ms() + self.lifetime_secs as i64 * 1000,
                ..key.pending
            };
            self.store.put_idempotency(&key.store_key, &record).await
        };
        if let Err(e) = kept {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "could not record or release an idempotency key"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::{CatalogStore, SledStore};

    fn caller() -> Caller {
        Caller {
            principal_id: crate::domain::PrincipalId::now_v7(),
            tenant_id: crate::domain::TenantId::now_v7(),
            name: "p".into(),
            root: false,
            expires_at: i64::MAX,
            authenticated_at: 0,
        }
    }

    #[tokio::test]
    async fn a_request_stopped_before_it_finished_frees_its_key_once_it_could_no_longer_run() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn CatalogStore> = Arc::new(SledStore::open(dir.path()).unwrap());
        let keys = IdempotencyKeys::new(store, 1800, Duration::from_millis(200));
        let (caller, key) = (caller(), Uuid::now_v7());
        let op = || "POST /v1/x".to_owned();
        // The first run is dropped (its deadline passed, its client went away): never finished.
        assert!(matches!(
            keys.reserve(&caller, key, op()).await.unwrap(),
            Reservation::Run(_)
        ));
        assert!(matches!(
            keys.reserve(&caller, key, op()).await.unwrap(),
            Reservation::Running
        ));
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Reservation::Run(reserved) = keys.reserve(&caller, key, op()).await.unwrap() else {
            panic!("the key is free once its first run can no longer be running");
        };
        // A finished answer is replayed for the whole lifetime, not just the running time.
        keys.finish(reserved, 200, "{}".into()).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(matches!(
            keys.reserve(&caller, key, op()).await.unwrap(),
            Reservation::Replay { status: 200, .. }
        ));
    }
}
