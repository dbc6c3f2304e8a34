//! Signing keys kept in the store, sealed under the master key: loaded at start and every
//! [`KEY_RELOAD_SECS`] (so replicas pick up a rotation), generated when none is active, rotated on
//! request. A retired key keeps verifying until every token it signed has expired, then is deleted.
//!
//! Owns: the keys' life in the store, through its [`SecretStore`] only, and which change each of
//! its writes announces to other replicas ([`Change::SigningKeys`]; a rotation's caller hands it
//! in and publishes it here). Must not touch: the rest of the store, or how tokens are signed
//! (the [`TokenService`]'s).

use std::sync::Arc;
use std::time::Duration;

use super::{MasterKey, SigningKey, TokenService};
use crate::background::StopSignal;
use crate::changes::{Change, Subscriber};
use crate::store::{SecretStore, SigningKeyRecord, StoreError, now_ms};

/// How often each replica re-reads the signing keys.
pub const KEY_RELOAD_SECS: u64 = 30;

fn purpose(kid: &str) -> String {
    format!("floe-signing-key:{kid}")
}

fn open(master: &MasterKey, record: &SigningKeyRecord) -> Result<SigningKey, StoreError> {
    let seed = master
        .open(&record.sealed_seed, &purpose(&record.kid))
        .map_err(|e| StoreError::caused("a signing key does not open", e))?;
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| StoreError::failure("a signing key seed is not 32 bytes"))?;
    Ok(SigningKey::from_seed(seed))
}

async fn create(
    store: &dyn SecretStore,
    master: &MasterKey,
    change: &Change,
) -> Result<SigningKey, StoreError> {
    let (key, seed) = SigningKey::generate();
    let record = SigningKeyRecord {
        kid: key.kid.clone(),
        sealed_seed: master.seal(&seed, &purpose(&key.kid)),
        created_at_ms: now_ms(),
        retired_at_ms: None,
    };
    store.put_signing_key(&record, change).await?;
    tracing::info!(kid = %key.kid, "created a token signing key");
    Ok(key)
}

/// Loads the keys into `tokens`: the newest unretired key signs, unexpired retired keys verify.
/// Creates a key when none is active; deletes retired keys older than `token_ttl_secs` + a minute.
pub async fn load_keys(
    store: &dyn SecretStore,
    master: &MasterKey,
    tokens: &TokenService,
    token_ttl_secs: u64,
) -> Result<(), StoreError> {
    load(store, master, tokens, token_ttl_secs, true).await
}

/// Re-reads the keys into `tokens`, like [`load_keys`] but never creating one: while another
/// replica rotates, there is a moment with no active key, and that replica creates the next one.
pub async fn reload_keys(
    store: &dyn SecretStore,
    master: &MasterKey,
    tokens: &TokenService,
    token_ttl_secs: u64,
) -> Result<(), StoreError> {
    load(store, master, tokens, token_ttl_secs, false).await
}

async fn load(
    store: &dyn SecretStore,
    master: &MasterKey,
    tokens: &TokenService,
    token_ttl_secs: u64,
    create_missing: bool,
) -> Result<(), StoreError> {
    let horizon = now_ms() - (token_ttl_secs as i64 + 60) * 1000;
    // Other replicas reload their keys; this one installs them below.
    let change = Change::SigningKeys;
    let mut active = None;
    let mut others = Vec::new();
    for record in store.list_signing_keys().await? {
        match record.retired_at_ms {
            Some(at) if at < horizon => store.delete_signing_key(&record.kid, &change).await?,
            Some(_) => others.push(open(master, &record)?),
            None => {
                if let Some(previous) = active.replace(open(master, &record)?) {
                    others.push(previous);
                }
            }
        }
    }
    let active = match active {
        Some(key) => key,
        None if create_missing => create(store, master, &change).await?,
        None => return Ok(()),
    };
    tokens.install_keys(active, others);
    Ok(())
}

/// Retires the active key(s), creates a new one, and installs the result; each write announces
/// `change`. Returns the new kid.
async fn rotate(
    store: &dyn SecretStore,
    master: &MasterKey,
    tokens: &TokenService,
    token_ttl_secs: u64,
    change: &Change,
) -> Result<String, StoreError> {
    for mut record in store.list_signing_keys().await? {
        if record.retired_at_ms.is_none() {
            record.retired_at_ms = Some(now_ms());
            store.put_signing_key(&record, change).await?;
        }
    }
    let key = create(store, master, change).await?;
    let kid = key.kid.clone();
    load_keys(store, master, tokens, token_ttl_secs).await?;
    Ok(kid)
}

/// The signing keys of this replica: reloaded in the background periodically and whenever they
/// changed (here or, by the store's notification, on another replica), and rotated on request.
#[derive(Clone)]
pub struct SigningKeys {
    store: Arc<dyn SecretStore>,
    master: Arc<MasterKey>,
    tokens: Arc<TokenService>,
    token_ttl_secs: u64,
    /// Shortest time between two rotations: every retired key stays in the JWKS until the last
    /// token it signed has expired, so rotating in a loop would grow the JWKS without bound.
    min_rotation_interval: Duration,
}

/// Why a rotation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The last rotation was too recent; the next may happen after this long.
    #[error("the signing key was rotated moments ago; the next rotation is allowed in {} s", .0.as_secs().max(1))]
    TooSoon(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SigningKeys {
    /// The keys of `tokens`, kept in `store`.
    pub fn new(
        store: Arc<dyn SecretStore>,
        master: Arc<MasterKey>,
        tokens: Arc<TokenService>,
        token_ttl_secs: u64,
    ) -> Self {
        Self {
            store,
            master,
            tokens,
            token_ttl_secs,
            min_rotation_interval: Duration::ZERO,
        }
    }

    /// The same keys, rotated at most once per `interval` (on every replica: the last
    /// rotation's time is read from the store).
    pub fn with_min_rotation_interval(mut self, interval: Duration) -> Self {
        self.min_rotation_interval = interval;
        self
    }

    /// Retires the active key, signs with a new one from now on, and returns its kid; refused
    /// when the last rotation is less than the minimum interval ago. Each write announces `change`
    /// to other replicas (the caller publishes it on this one).
    pub async fn rotate(&self, change: &Change) -> Result<String, RotateError> {
        let (store, ttl) = (self.store.as_ref(), self.token_ttl_secs);
        let last = store
            .list_signing_keys()
            .await?
            .iter()
            .filter_map(|k| k.retired_at_ms)
            .max();
        if let Some(last) = last {
            let since = Duration::from_millis((now_ms() - last).max(0) as u64);
            if since < self.min_rotation_interval {
                return Err(RotateError::TooSoon(self.min_rotation_interval - since));
            }
        }
        Ok(rotate(store, &self.master, &self.tokens, ttl, change).await?)
    }

    /// Reloads every [`KEY_RELOAD_SECS`] until the server stops.
    pub fn reload_periodically(
        &self,
        mut stop: StopSignal,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let me = self.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(KEY_RELOAD_SECS));
            tick.tick().await;
            loop {
                tokio::select! {
                    () = stop.stopped() => return,
                    _ = tick.tick() => {}
                }
                me.reload_now().await;
            }
        }
    }

    async fn reload_now(&self) {
        let (store, ttl) = (self.store.as_ref(), self.token_ttl_secs);
        if let Err(e) = reload_keys(store, &self.master, &self.tokens, ttl).await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "reloading signing keys failed"
            );
        }
    }
}

#[async_trait::async_trait]
impl Subscriber for SigningKeys {
    async fn changed(&self, change: &Change) {
        if matches!(change, Change::SigningKeys | Change::Everything) {
            self.reload_now().await;
        }
    }
}
