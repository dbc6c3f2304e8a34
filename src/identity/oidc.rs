//! Tokens from external OpenID Connect issuers: verified against the issuer's JWKS (cached, and
//! fetched again when a token names a key not seen yet, at most every `jwks_min_refresh_secs`),
//! then mapped to a tenant and a principal by configured claims (a principal created on first
//! sight is announced to other replicas as the management API's would be).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::AuthError;

/// Default shortest time between two JWKS fetches of one issuer.
pub const JWKS_MIN_REFRESH_SECS: u64 = 10;
/// Longest time a fetched JWKS is used before it is fetched again.
pub const JWKS_MAX_AGE_SECS: u64 = 600;

/// One trusted issuer, from configuration (`[[oidc]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuer {
    /// Must equal the token's `iss`.
    pub issuer: String,
    /// Must be in the token's `aud`.
    pub audience: String,
    pub jwks_url: String,
    /// The tenant (by name) every principal of this issuer belongs to...
    pub tenant: Option<String>,
    /// ...or the claim that names it.
    pub tenant_claim: Option<String>,
    /// The claim that identifies the principal (default `sub`).
    #[serde(default = "default_principal_claim")]
    pub principal_claim: String,
    /// Create a principal the first time one is seen (otherwise unknown principals are refused).
    #[serde(default)]
    pub create_principals: bool,
    /// Shortest time between two JWKS fetches, in seconds.
    #[serde(default = "default_min_refresh")]
    pub jwks_min_refresh_secs: u64,
    /// The signature algorithms this issuer's tokens may use (default `["RS256"]`); a token's
    /// own `alg` header is only a claim, checked against this list. Asymmetric ones only.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
}

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::RS256]
}

/// True for the algorithms an issuer may be pinned to: those with a public key. An HMAC one would
/// make the JWKS's public material a shared secret.
pub fn is_asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

fn default_min_refresh() -> u64 {
    JWKS_MIN_REFRESH_SECS
}

fn default_principal_claim() -> String {
    "sub".into()
}

/// Who an external token names, after verification.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalIdentity {
    pub issuer: String,
    pub subject: String,
    pub tenant_name: String,
    pub expires_at: i64,
    pub create_principals: bool,
}

struct CachedJwks {
    keys: JwkSet,
    fetched: Instant,
}

/// Verifies tokens of the configured issuers.
pub struct OidcVerifier {
    issuers: Vec<OidcIssuer>,
    /// Where tenants and principals are found (and principals created on first sight).
    store: std::sync::Arc<dyn crate::store::CatalogStore>,
    http: reqwest::Client,
    jwks: Vec<Mutex<Option<CachedJwks>>>,
}

/// The `iss` claim of a token, read without verifying it (to pick the verifier).
pub fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

impl OidcVerifier {
    /// A verifier for `issuers`.
    pub fn new(
        issuers: Vec<OidcIssuer>,
        store: std::sync::Arc<dyn crate::store::CatalogStore>,
        timeouts: &crate::outbound::OutboundTimeouts,
    ) -> Self {
        let jwks = issuers.iter().map(|_| Mutex::new(None)).collect();
        let http = timeouts.http_client(crate::outbound::Outbound::Identity);
        Self {
            issuers,
            store,
            http,
            jwks,
        }
    }

    /// True when `issuer` is configured.
    pub fn knows(&self, issuer: &str) -> bool {
        self.issuers.iter().any(|i| i.issuer == issuer)
    }

    async fn key_for(
        &self,
        index: usize,
        kid: &str,
        alg: Algorithm,
    ) -> Result<DecodingKey, AuthError> {
        let issuer = &self.issuers[index];
        let unknown = || AuthError::Invalid("unknown signing key of the issuer".into());
        // A key that names its algorithm is used with that one only.
        let usable = |jwk: &jsonwebtoken::jwk::Jwk| {
            if jwk
                .common
                .key_algorithm
                .is_some_and(|a| format!("{a:?}") != format!("{alg:?}"))
            {
                return Err(AuthError::Invalid(format!(
                    "the issuer's key {kid} is not for {alg:?}"
                )));
            }
            DecodingKey::from_jwk(jwk).map_err(|_| unknown())
        };
        // Use the cached set while it is young enough and knows the key; fetch again otherwise,
        // but not more often than every `jwks_min_refresh_secs`.
        let (known, may_fetch) = match self.jwks[index].lock().expect("jwks lock").as_ref() {
            Some(c) => {
                let age = c.fetched.elapsed();
                let known = (age < Duration::from_secs(JWKS_MAX_AGE_SECS))
                    .then(|| c.keys.find(kid).cloned())
                    .flatten();
                (
                    known,
                    age >= Duration::from_secs(issuer.jwks_min_refresh_secs),
                )
            }
            None => (None, true),
        };
        if let Some(jwk) = known {
            return usable(&jwk);
        }
        if !may_fetch {
            return Err(unknown());
        }
        let keys: JwkSet = self
            .http
            .get(&issuer.jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| {
                AuthError::Invalid(format!("cannot fetch the JWKS of {}: {e}", issuer.issuer))
            })?
            .json()
            .await
            .map_err(|e| {
                AuthError::Invalid(format!("the JWKS of {} is not valid: {e}", issuer.issuer))
            })?;
        let jwk = keys.find(kid).cloned();
        *self.jwks[index].lock().expect("jwks lock") = Some(CachedJwks {
            keys,
            fetched: Instant::now(),
        });
        usable(&jwk.ok_or_else(unknown)?)
    }

    /// The caller an external identity stands for: its tenant by name, its principal by issuer and
    /// subject (created on first sight when the issuer allows it). Disabled principals are refused.
    pub async fn caller_for(&self, identity: ExternalIdentity) -> Result<super::Caller, AuthError> {
        use crate::changes::Change;
        use crate::store::{PrincipalKind, PrincipalRecord, now_ms};
        let store = self.store.as_ref();
        let unavailable = |_| AuthError::Invalid("the catalog store is unavailable".into());
        let tenant = store
            .get_tenant_by_name(&identity.tenant_name)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                AuthError::Invalid(format!("tenant '{}' does not exist", identity.tenant_name))
            })?;
        let client_id = format!("oidc:{}#{}", identity.issuer, identity.subject);
        let principal = match store
            .get_principal_by_client_id(&client_id)
            .await
            .map_err(unavailable)?
        {
            Some(p) => p,
            None if identity.create_principals => {
                let p = PrincipalRecord {
                    id: crate::domain::PrincipalId::now_v7(),
                    tenant_id: tenant.id,
                    name: identity.subject.clone(),
                    kind: PrincipalKind::Human,
                    client_id,
                    secret_hash: String::new(),
                    root: false,
                    disabled: false,
                    created_at_ms: now_ms(),
                    sessions_valid_from_ms: 0,
                };
                let change = Change::Principal { principal: p.id };
                store
                    .create_principal(&p, &change)
                    .await
                    .map_err(unavailable)?;
                tracing::info!(principal = %p.id, tenant = %tenant.id, issuer = %identity.issuer, "created a principal on first sight");
                p
            }
            None => {
                return Err(AuthError::Invalid(
                    "this principal is not known here".into(),
                ));
            }
        };
        if principal.disabled || principal.tenant_id != tenant.id {
            return Err(AuthError::Invalid(
                "this principal is disabled or belongs to another tenant".into(),
            ));
        }
        Ok(super::Caller {
            principal_id: principal.id,
            tenant_id: tenant.id,
            name: principal.name,
            root: false,
            expires_at: identity.expires_at,
            authenticated_at: chrono::Utc::now().timestamp(),
        })
    }

    /// Verifies a token of a configured issuer and reads who it names.
    pub async fn verify(&self, token: &str) -> Result<ExternalIdentity, AuthError> {
        let iss = unverified_issuer(token)
            .ok_or_else(|| AuthError::Invalid("token has no issuer".into()))?;
        let index = self
            .issuers
            .iter()
            .position(|i| i.issuer == iss)
            .ok_or_else(|| AuthError::Invalid("token from an issuer that is not trusted".into()))?;
        let issuer = &self.issuers[index];
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Invalid(format!("{:?}", e.kind())))?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid(format!(
                "token signed with {:?}; this issuer's tokens must use one of {:?}",
                header.alg, issuer.algorithms
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("token has no key id".into()))?;
        let key = self.key_for(index, &kid, header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_audience(&[&issuer.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 30;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                kind => AuthError::Invalid(format!("{kind:?}")),
            })?
            .claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let subject = text(&issuer.principal_claim).ok_or_else(|| {
            AuthError::Invalid(format!("token has no '{}' claim", issuer.principal_claim))
        })?;
        let tenant_name = match (&issuer.tenant, &issuer.tenant_claim) {
            (Some(t), _) => t.clone(),
            (None, Some(claim)) => text(claim)
                .ok_or_else(|| AuthError::Invalid(format!("token has no '{claim}' claim")))?,
            (None, None) => return Err(AuthError::Invalid("issuer has no tenant mapping".into())),
        };
        Ok(ExternalIdentity {
            issuer: issuer.issuer.clone(),
            subject,
            tenant_name,
            expires_at: claims
                .get("exp")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            create_principals: issuer.create_principals,
        })
    }
}
