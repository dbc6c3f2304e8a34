//! Issues Floe's JWTs and checks bearer tokens.
//!
//! Checking is on every request's path, so a verified token is cached (keyed by the token itself)
//! for at most [`VERIFIED_TOKEN_CACHE_SECS`] and never past its `exp`; a cache hit costs a hash
//! lookup, not a signature check.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Caller, SigningKey};
use crate::domain::TenantId;
use crate::store::PrincipalRecord;

/// How long a verified token is trusted without checking it again.
pub const VERIFIED_TOKEN_CACHE_SECS: u64 = 60;
/// Memory the verified tokens may hold (each weighed by its text and its caller).
pub const VERIFIED_TOKEN_CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    tenant: TenantId,
    name: String,
    #[serde(default)]
    root: bool,
    exp: i64,
    nbf: i64,
    iat: i64,
    /// When the session began (the secret was shown); tokens from before this claim existed
    /// count from their `iat`.
    #[serde(default)]
    auth_time: Option<i64>,
    jti: String,
}

/// Why a token was refused. Messages are safe to show to the caller.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    #[error(
        "missing bearer token: send 'Authorization: Bearer <token>' (get one at /v1/oauth/tokens)"
    )]
    Missing,
    #[error("invalid bearer token: {0}")]
    Invalid(String),
    #[error("bearer token expired")]
    Expired,
}

/// What a token Floe signs for itself (not an access token) is for. Each purpose is its own
/// audience, so a token of one purpose is never accepted as another, nor as an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedFor {
    /// A plan's id: what to plan again, for whom.
    Plan,
    /// One plan task: a part of a plan, for whom.
    PlanTask,
}

impl SignedFor {
    fn audience(self) -> &'static str {
        match self {
            SignedFor::Plan => "floe:plan",
            SignedFor::PlanTask => "floe:plan-task",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SignedClaims<T> {
    iss: String,
    aud: String,
    sub: String,
    exp: i64,
    nbf: i64,
    data: T,
}

/// Why a signed token's checks refused it.
fn refused(e: jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
        kind => AuthError::Invalid(format!("{kind:?}")),
    }
}

/// A freshly issued token.
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u64,
}

/// The keys in use: one signs, all (including retired ones whose tokens may still live) verify.
struct KeySet {
    active: Arc<SigningKey>,
    verifying: HashMap<String, Arc<SigningKey>>,
}

/// Issues and verifies Floe's tokens.
pub struct TokenService {
    keys: RwLock<KeySet>,
    issuer: String,
    audience: String,
    ttl_secs: u64,
    max_session_secs: u64,
    validation: Validation,
    /// Keyed with foldhash, seeded per process: hashing a token with SipHash cost about 3% of a
    /// load-table, and only verified tokens are ever inserted, so no client can fill a bucket.
    verified: moka::sync::Cache<Arc<str>, Arc<Caller>, foldhash::fast::RandomState>,
}

impl TokenService {
    /// A service signing with `key`; tokens live `ttl_secs`.
    pub fn new(key: SigningKey, issuer: &str, audience: &str, ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let verified = moka::sync::Cache::builder()
            .max_capacity(VERIFIED_TOKEN_CACHE_BYTES)
            .weigher(|token: &Arc<str>, _: &Arc<Caller>| {
                // The entry, the caller it stands for and the token's text.
                u32::try_from(384 + token.len()).unwrap_or(u32::MAX)
            })
            .time_to_live(Duration::from_secs(VERIFIED_TOKEN_CACHE_SECS))
            .build_with_hasher(foldhash::fast::RandomState::default());
        let key = Arc::new(key);
        let keys = KeySet {
            verifying: HashMap::from([(key.kid.clone(), key.clone())]),
            active: key,
        };
        Self {
            keys: RwLock::new(keys),
            issuer: issuer.into(),
            audience: audience.into(),
            ttl_secs,
            max_session_secs: 12 * 3600,
            validation,
            verified,
        }
    }

    /// Sessions renewed by token exchange end this long after they began.
    pub fn with_max_session_secs(mut self, secs: u64) -> Self {
        self.max_session_secs = secs;
        self
    }

    /// Signs a token for `principal`, who has just shown its secret: a new session.
    pub fn issue(&self, principal: &PrincipalRecord) -> IssuedToken {
        let now = chrono::Utc::now().timestamp();
        self.sign(principal, now, now + self.ttl_secs as i64)
    }

    /// Renews a session that began at `authenticated_at` (token exchange): the new token expires
    /// no later than the session's end, and a session past its end is refused.
    pub fn renew(
        &self,
        principal: &PrincipalRecord,
        authenticated_at: i64,
    ) -> Result<IssuedToken, AuthError> {
        let now = chrono::Utc::now().timestamp();
        let session_end = authenticated_at.saturating_add(self.max_session_secs as i64);
        if session_end <= now {
            return Err(AuthError::Invalid(
                "the session is older than its maximum lifetime (setting auth.max_session_secs): authenticate with the client secret again".into(),
            ));
        }
        Ok(self.sign(
            principal,
            authenticated_at,
            (now + self.ttl_secs as i64).min(session_end),
        ))
    }

    fn sign(&self, principal: &PrincipalRecord, auth_time: i64, exp: i64) -> IssuedToken {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: principal.id.to_string(),
            tenant: principal.tenant_id,
            name: principal.name.clone(),
            root: principal.root,
            exp,
            nbf: now,
            iat: now,
            auth_time: Some(auth_time),
            jti: Uuid::new_v4().to_string(),
        };
        let key = self.keys.read().expect("key set lock").active.clone();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        let access_token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .expect("Ed25519 signing cannot fail");
        IssuedToken {
            access_token,
            expires_in: (exp - now).max(0) as u64,
        }
    }

    /// The installed key that signed `token`, named by its key id.
    fn key_of(&self, token: &str) -> Result<Arc<SigningKey>, AuthError> {
        let kid = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Invalid(format!("{:?}", e.kind())))?
            .kid
            .ok_or_else(|| AuthError::Invalid("token has no key id".into()))?;
        self.keys
            .read()
            .expect("key set lock")
            .verifying
            .get(&kid)
            .cloned()
            .ok_or_else(|| AuthError::Invalid("unknown signing key".into()))
    }

    /// Signs `data` for `subject`, valid `ttl_secs`, for one purpose only. Every replica
    /// verifies it (the keys are the store's).
    pub fn sign_for<T: Serialize>(
        &self,
        purpose: SignedFor,
        subject: crate::domain::PrincipalId,
        ttl_secs: u64,
        data: &T,
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = SignedClaims {
            iss: self.issuer.clone(),
            aud: purpose.audience().to_owned(),
            sub: subject.to_string(),
            exp: now + ttl_secs as i64,
            nbf: now,
            data,
        };
        let key = self.keys.read().expect("key set lock").active.clone();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding).expect("Ed25519 signing cannot fail")
    }

    /// What a token signed by [`Self::sign_for`] for `purpose` carries, and for whom; refused when
    /// forged, altered, expired, signed by a key no longer installed, or made for another purpose.
    pub fn verify_for<T: serde::de::DeserializeOwned>(
        &self,
        purpose: SignedFor,
        token: &str,
    ) -> Result<(crate::domain::PrincipalId, T), AuthError> {
        let key = self.key_of(token)?;
        let mut validation = self.validation.clone();
        validation.set_audience(&[purpose.audience()]);
        let data = jsonwebtoken::decode::<SignedClaims<T>>(token, &key.decoding, &validation)
            .map_err(refused)?;
        let subject = data
            .claims
            .sub
            .parse()
            .map_err(|_| AuthError::Invalid("sub is not a principal id".into()))?;
        Ok((subject, data.claims.data))
    }

    /// The caller a bearer token stands for.
    pub fn verify(&self, token: &str) -> Result<Arc<Caller>, AuthError> {
        let now = chrono::Utc::now().timestamp();
        static HITS: std::sync::LazyLock<metrics::Counter> =
            std::sync::LazyLock::new(|| metrics::counter!("floe_token_cache_hits_total"));
        if let Some(caller) = self.verified.get(token) {
            HITS.increment(1);
            if caller.expires_at + LEEWAY_SECS as i64 >= now {
                return Ok(caller);
            }
            return Err(AuthError::Expired);
        }
        metrics::counter!("floe_token_cache_misses_total").increment(1);
        let key = self.key_of(token)?;
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation)
            .map_err(refused)?;
        let claims = data.claims;
        let principal_id: crate::domain::PrincipalId = claims
            .sub
            .parse()
            .map_err(|_| AuthError::Invalid("sub is not a principal id".into()))?;
        let caller = Arc::new(Caller {
            principal_id,
            tenant_id: claims.tenant,
            name: claims.name,
            root: claims.root,
            expires_at: claims.exp,
            authenticated_at: claims.auth_time.unwrap_or(claims.iat),
        });
        self.verified.insert(Arc::from(token), caller.clone());
        Ok(caller)
    }

    /// Remembers a caller verified elsewhere (an external issuer's token) like one of ours.
    pub fn remember(&self, token: &str, caller: Arc<Caller>) {
        self.verified.insert(Arc::from(token), caller);
    }

    /// The issuer of Floe's own tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Installs the keys in use: `active` signs; it and `others` verify. Tokens signed by a key
    /// that is no longer installed stop verifying (once out of the verified-token cache).
    pub fn install_keys(&self, active: SigningKey, others: Vec<SigningKey>) {
        let active = Arc::new(active);
        let mut verifying: HashMap<String, Arc<SigningKey>> = others
            .into_iter()
            .map(|k| (k.kid.clone(), Arc::new(k)))
            .collect();
        verifying.insert(active.kid.clone(), active.clone());
        *self.keys.write().expect("key set lock") = KeySet { active, verifying };
    }

    /// The key id that signs new tokens.
    pub fn active_kid(&self) -> String {
        self.keys.read().expect("key set lock").active.kid.clone()
    }

    /// The public keys that verify Floe's tokens, as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        let keys = self.keys.read().expect("key set lock");
        let mut list: Vec<_> = keys.verifying.values().collect();
        list.sort_by(|a, b| a.kid.cmp(&b.kid));
        let keys: Vec<_> = list
            .into_iter()
            .map(|k| {
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                                   "kid": k.kid, "x": k.public_x})
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::store::PrincipalKind;

    fn principal() -> PrincipalRecord {
        PrincipalRecord {
            id: crate::domain::PrincipalId::new_v4(),
            tenant_id: TenantId::new_v4(),
            name: "etl".into(),
            kind: PrincipalKind::Service,
            client_id: "c".into(),
            secret_hash: String::new(),
            root: false,
            disabled: false,
            created_at_ms: 0,
            sessions_valid_from_ms: 0,
        }
    }

    fn header_with_kid() -> Header {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(SigningKey::from_seed([7; 32]).kid);
        h
    }

    #[test]
    fn a_token_signed_for_one_purpose_is_good_for_it_alone() {
        let svc = service();
        let who = crate::domain::PrincipalId::new_v4();
        let task = svc.sign_for(SignedFor::PlanTask, who, 60, &vec![1, 2]);
        assert_eq!(
            svc.verify_for::<Vec<i32>>(SignedFor::PlanTask, &task)
                .unwrap(),
            (who, vec![1, 2])
        );
        assert!(svc.verify_for::<Vec<i32>>(SignedFor::Plan, &task).is_err());
        assert!(svc.verify(&task).is_err(), "not an access token");
        let access = svc.issue(&principal()).access_token;
        assert!(
            svc.verify_for::<serde_json::Value>(SignedFor::PlanTask, &access)
                .is_err()
        );
        // Altered claims, and another server's key.
        let (head, rest) = task.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged = serde_json::json!({"iss": "floe", "aud": "floe:plan-task", "sub": who.to_string(),
            "exp": chrono::Utc::now().timestamp() + 60, "nbf": 0, "data": [9]});
        let forged = format!(
            "{head}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(forged.to_string())
        );
        assert!(
            svc.verify_for::<Vec<i32>>(SignedFor::PlanTask, &forged)
                .is_err()
        );
        let elsewhere = TokenService::new(SigningKey::from_seed([9; 32]), "floe", "floe", 60);
        let theirs = elsewhere.sign_for(SignedFor::PlanTask, who, 60, &vec![1]);
        assert!(
            svc.verify_for::<Vec<i32>>(SignedFor::PlanTask, &theirs)
                .is_err()
        );
    }

    #[test]
    fn rotated_keys_keep_verifying_until_removed() {
        let svc = service();
        let old = svc.issue(&principal()).access_token;
        svc.install_keys(
            SigningKey::from_seed([9; 32]),
            vec![SigningKey::from_seed([7; 32])],
        );
        let new = svc.issue(&principal()).access_token;
        assert_ne!(
            jsonwebtoken::decode_header(&new).unwrap().kid,
            jsonwebtoken::decode_header(&old).unwrap().kid
        );
        assert!(svc.verify(&old).is_ok() && svc.verify(&new).is_ok());
        assert_eq!(svc.jwks()["keys"].as_array().unwrap().len(), 2);
        let fresh = TokenService::new(SigningKey::from_seed([9; 32]), "floe", "floe", 3600);
        assert!(
            fresh.verify(&old).is_err(),
            "a key no longer installed does not verify"
        );
        assert!(fresh.verify(&new).is_ok());
    }

    fn service() -> TokenService {
        TokenService::new(SigningKey::from_seed([7; 32]), "floe", "floe", 3600)
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_principal() {
        let svc = service();
        let p = principal();
        let caller = svc.verify(&svc.issue(&p).access_token).unwrap();
        assert_eq!((caller.principal_id, caller.tenant_id), (p.id, p.tenant_id));
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() {
        let svc = service();
        let token = svc.issue(&principal()).access_token;
        // Signed by another key.
        let other = TokenService::new(SigningKey::from_seed([8; 32]), "floe", "floe", 3600);
        assert!(matches!(
            svc.verify(&other.issue(&principal()).access_token),
            Err(AuthError::Invalid(_))
        ));
        // Wrong audience / issuer.
        let aud = TokenService::new(SigningKey::from_seed([7; 32]), "floe", "elsewhere", 3600);
        assert!(svc.verify(&aud.issue(&principal()).access_token).is_err());
        let iss = TokenService::new(SigningKey::from_seed([7; 32]), "evil", "floe", 3600);
        assert!(svc.verify(&iss.issue(&principal()).access_token).is_err());
        // alg: none with the same claims.
        let parts: Vec<&str> = token.split('.').collect();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(svc.verify(&format!("{none_header}.{}.", parts[1])).is_err());
        // HS256 signed with the public key as the secret (algorithm confusion).
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::from_slice::<serde_json::Value>(
                &URL_SAFE_NO_PAD.decode(parts[1]).unwrap(),
            )
            .unwrap(),
            &jsonwebtoken::EncodingKey::from_secret(
                SigningKey::from_seed([7; 32]).public_x.as_bytes(),
            ),
        )
        .unwrap();
        assert!(svc.verify(&hs).is_err());
        assert!(svc.verify("None").is_err());
        // A tampered payload.
        let tampered = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
        assert!(svc.verify(&tampered).is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let svc = service();
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: "floe".into(),
            aud: "floe".into(),
            sub: Uuid::new_v4().to_string(),
            tenant: TenantId::new_v4(),
            name: "x".into(),
            root: false,
            exp: now - 3600,
            nbf: now - 7200,
            iat: now - 7200,
            auth_time: None,
            jti: "j".into(),
        };
        let token = jsonwebtoken::encode(
            &header_with_kid(),
            &claims,
            &SigningKey::from_seed([7; 32]).encoding,
        )
        .unwrap();
        assert_eq!(svc.verify(&token), Err(AuthError::Expired));
    }

    /// Issue: any valid token was exchanged for a fresh full-lifetime token, again and again.
    #[test]
    fn renewals_end_with_the_session_that_began_with_the_secret() {
        let svc = service().with_max_session_secs(7200);
        let principal = PrincipalRecord {
            id: crate::domain::PrincipalId::new_v4(),
            tenant_id: TenantId::new_v4(),
            name: "etl".into(),
            kind: crate::store::PrincipalKind::Service,
            client_id: "etl".into(),
            secret_hash: String::new(),
            disabled: false,
            root: false,
            created_at_ms: 0,
            sessions_valid_from_ms: 0,
        };
        let now = chrono::Utc::now().timestamp();
        let fresh = svc.issue(&principal);
        let began = svc.verify(&fresh.access_token).unwrap().authenticated_at;
        assert!((now - began).abs() <= 1);
        // A renewal keeps the session's start, and does not outlive the session.
        let renewed = svc.renew(&principal, now - 7000).unwrap();
        assert!(renewed.expires_in <= 200, "{}", renewed.expires_in);
        let caller = svc.verify(&renewed.access_token).unwrap();
        assert_eq!(caller.authenticated_at, now - 7000);
        assert!(caller.expires_at <= now - 7000 + 7200);
        // Past the session's end there is no renewal at all.
        let Err(refused) = svc.renew(&principal, now - 7300) else {
            panic!("a session past its end was renewed");
        };
        assert!(
            refused.to_string().contains("max_session_secs"),
            "{refused}"
        );
    }
}
