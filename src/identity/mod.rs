//! Who is calling: token issuing and checking, client secrets, and the authenticated [`Caller`].
//!
//! Owns: Floe's Ed25519 signing keys (kept sealed in the store, rotated, reloaded on change), JWT
//! claims and their verification (cached by token until a short bound), sign-in at the token
//! endpoint ([`SignIn`]: client-secret hashes, keyed for generated secrets and argon2 for chosen
//! ones, and back-off after failures), external OIDC callers, and sealed storage credentials.
//! Must not touch: HTTP types or warehouse storage.

mod backoff;
pub mod key_store;
mod keys;
pub mod oidc;
mod sealing;
mod secrets;
mod sign_in;
pub mod storage_credentials;
mod tokens;

use crate::domain::{PrincipalId, TenantId};

pub use backoff::SignInBackoff;
pub use keys::{SigningKey, owner_only_file};
pub use sealing::{MasterKey, SealError, hmac_sha256};
pub use secrets::{ClientSecrets, HashKind, generate_secret, hash_secret, verify_argon2};
pub use sign_in::{SignIn, SignInError};
pub use tokens::{AuthError, IssuedToken, SignedFor, TokenService};

/// The authenticated principal behind a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub principal_id: PrincipalId,
    pub tenant_id: TenantId,
    pub name: String,
    /// The root principal may act in every tenant.
    pub root: bool,
    /// Token expiry, seconds since the epoch.
    pub expires_at: i64,
    /// When the client last authenticated with its secret (or the external issuer), seconds since
    /// the epoch: token exchanges renew a session only so long after it.
    pub authenticated_at: i64,
}

impl Caller {
    /// Floe itself, acting on its configuration at startup (declared warehouses): the root's
    /// powers, no principal (its audit events name the nil id as their actor).
    pub fn system(tenant: TenantId) -> Self {
        Self {
            principal_id: PrincipalId::nil(),
            tenant_id: tenant,
            name: "floe (configuration)".into(),
            root: true,
            expires_at: i64::MAX,
            authenticated_at: 0,
        }
    }

    /// True when the caller may act inside `tenant`.
    pub fn may_access_tenant(&self, tenant: TenantId) -> bool {
        self.root || self.tenant_id == tenant
    }
}
