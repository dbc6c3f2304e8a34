//! Signing in at the token endpoint: a client id and secret, or a Floe token to exchange, become
//! a new token.
//!
//! Owns: finding the principal, checking its secret (keyed hashes at once, argon2 a few at a
//! time), the short-lived memory of secrets that checked out, back-off after failures, and the
//! renewal bound of exchanges. Must not touch: HTTP types (the token endpoint renders
//! [`SignInError`] as OAuth2 errors), or the store beyond reading principals ([`AccessStore`]).

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{ClientSecrets, HashKind, IssuedToken, SignInBackoff, TokenService};
use crate::changes::{Change, Subscriber};
use crate::store::{AccessStore, PrincipalRecord, StoreError};

/// Secret hashes checked at once: argon2 takes 19 MiB and tens of milliseconds each, and the token
/// endpoint is open to anyone, so the work is bounded by the cores there are.
static SECRET_CHECKS: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::sync::Semaphore::new(cores.max(2))
});
/// How long a sign-in waits for a turn at the secret check before it is told to come back.
const SECRET_CHECK_WAIT: Duration = Duration::from_secs(2);
/// How long a secret that checked out is remembered (clients fetch tokens in bursts).
const VERIFIED_SECS: u64 = 60;

/// Why no token was issued.
#[derive(Debug)]
pub enum SignInError {
    /// Unknown client, wrong secret, disabled principal (which one is not said).
    InvalidClient,
    /// The subject token of an exchange is not a valid Floe token.
    InvalidSubject,
    /// An exchange past the session's renewal bound.
    SessionOver(String),
    /// Too many failed sign-ins for this client id or from this address.
    BackedOff(Duration),
    /// Too many secret checks at once.
    Busy(Duration),
    /// The store did not answer.
    Unavailable(StoreError),
}

/// The token endpoint's use-cases.
pub struct SignIn {
    store: Arc<dyn AccessStore>,
    tokens: Arc<TokenService>,
    secrets: Arc<ClientSecrets>,
    backoff: SignInBackoff,
    /// Successful secret checks, by hash of (client id, secret, stored hash), for a short while.
    verified: moka::future::Cache<[u8; 32], crate::domain::PrincipalId>,
}

impl SignIn {
    pub fn new(
        store: Arc<dyn AccessStore>,
        tokens: Arc<TokenService>,
        secrets: Arc<ClientSecrets>,
    ) -> Self {
        Self {
            store,
            tokens,
            secrets,
            backoff: SignInBackoff::new(),
            verified: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(VERIFIED_SECS))
                .build(),
        }
    }

    /// A token for the principal owning `client_id`, when `secret` is right and neither the
    /// client id nor the address is backed off.
    pub async fn with_client_secret(
        &self,
        client_id: &str,
        secret: &str,
        address: Option<IpAddr>,
    ) -> Result<IssuedToken, SignInError> {
        if let Some(wait) = self.backoff.wait(client_id, address) {
            metrics::counter!("floe_sign_ins_backed_off_total").increment(1);
            return Err(SignInError::BackedOff(wait));
        }
        match self.check_client(client_id, secret).await? {
            Some(principal) => {
                self.backoff.succeeded(client_id, address);
                Ok(self.issued(&principal, self.tokens.issue(&principal)))
            }
            None => {
                self.backoff.failed(client_id, address);
                Err(SignInError::InvalidClient)
            }
        }
    }

    /// A new token for the principal of a valid Floe token, within the renewal bound of the
    /// session that began with its secret.
    pub async fn exchange(&self, subject_token: &str) -> Result<IssuedToken, SignInError> {
        let caller = self
            .tokens
            .verify(subject_token)
            .map_err(|_| SignInError::InvalidSubject)?;
        let principal = self
            .store
            .get_principal(caller.principal_id)
            .await
            .map_err(SignInError::Unavailable)?
            .filter(|p| !p.disabled)
            .ok_or(SignInError::InvalidClient)?;
        // A session that began before the secret was rotated (or before the principal was
        // disabled and enabled again) ends here. Tokens count time in whole seconds: one begun in
        // the very second of the rotation is still renewed.
        if caller.authenticated_at < principal.sessions_valid_from_ms.div_euclid(1000) {
            return Err(SignInError::SessionOver(
                "the session began before the principal's secret was rotated or it was \
                 re-enabled: authenticate with the client secret again"
                    .into(),
            ));
        }
        let renewed = self
            .tokens
            .renew(&principal, caller.authenticated_at)
            .map_err(|e| SignInError::SessionOver(e.to_string()))?;
        Ok(self.issued(&principal, renewed))
    }

    fn issued(&self, principal: &PrincipalRecord, token: IssuedToken) -> IssuedToken {
        tracing::info!(principal = %principal.id, tenant = %principal.tenant_id, "issued token");
        token
    }

    /// The principal owning `client_id` when `secret` is right. Unknown ids cost the same check
    /// as known ones.
    async fn check_client(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<Option<PrincipalRecord>, SignInError> {
        let principal = self
            .store
            .get_principal_by_client_id(client_id)
            .await
            .map_err(SignInError::Unavailable)?
            .filter(|p| !p.disabled);
        let Some(principal) = principal else {
            self.check_secret(secret, self.secrets.decoy()).await?;
            return Ok(None);
        };
        let fingerprint: [u8; 32] = Sha256::new()
            .chain_update(client_id.as_bytes())
            .chain_update([0])
            .chain_update(secret.as_bytes())
            .chain_update([0])
            .chain_update(principal.secret_hash.as_bytes())
            .finalize()
            .into();
        if self.verified.get(&fingerprint).await == Some(principal.id) {
            return Ok(Some(principal));
        }
        if !self.check_secret(secret, &principal.secret_hash).await? {
            return Ok(None);
        }
        self.verified.insert(fingerprint, principal.id).await;
        Ok(Some(principal))
    }

    /// Verifies a secret against its hash: a keyed hash at once, an argon2 one on the blocking
    /// pool, at most [`SECRET_CHECKS`] at once, waiting at most [`SECRET_CHECK_WAIT`] for a turn.
    async fn check_secret(&self, secret: &str, hash: &str) -> Result<bool, SignInError> {
        metrics::counter!("floe_secret_checks_total").increment(1);
        if ClientSecrets::kind(hash) == HashKind::Keyed {
            return Ok(self.secrets.verify(secret, hash));
        }
        let Ok(Ok(_permit)) =
            tokio::time::timeout(SECRET_CHECK_WAIT, SECRET_CHECKS.acquire()).await
        else {
            metrics::counter!("floe_secret_checks_shed_total").increment(1);
            return Err(SignInError::Busy(Duration::from_secs(1)));
        };
        metrics::counter!("floe_slow_secret_checks_total").increment(1);
        let (secret, hash) = (secret.to_owned(), hash.to_owned());
        Ok(
            tokio::task::spawn_blocking(move || super::verify_argon2(&secret, &hash))
                .await
                .unwrap_or(false),
        )
    }
}

/// A principal that changed (or a tenant deleted with its principals) is checked again at once.
#[async_trait]
impl Subscriber for SignIn {
    async fn changed(&self, change: &Change) {
        match change {
            Change::Principal { .. } | Change::Tenant { .. } | Change::Everything => {
                self.verified.invalidate_all()
            }
            Change::Warehouse { .. }
            | Change::StorageCredential { .. }
            | Change::Grants
            | Change::Renamed { .. }
            | Change::SigningKeys => {}
        }
    }
}
