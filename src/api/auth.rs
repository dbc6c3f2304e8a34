//! The bearer-token extractor: a handler that takes [`Authenticated`] runs only for a verified caller.

use std::future::{Ready, ready};

use futures::future::{Either, LocalBoxFuture};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use super::AppState;
use super::error::ApiError;
use super::tenant_limits::Admission;
use crate::catalog::ErrorType;
use crate::identity::oidc::unverified_issuer;
use crate::identity::{AuthError, Caller};

/// The verified caller of a request.
pub struct Authenticated(pub Arc<Caller>);

/// The bearer token of a request, if it has an `Authorization: Bearer` header.
pub fn bearer_token(req: &HttpRequest) -> Result<Option<&str>, AuthError> {
    let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    // UTF-8 validation runs over the whole token at SIMD speed; `HeaderValue::to_str` checks it
    // byte by byte, which cost about 4% of a load-table. A token with other odd characters
    // matches no cached token and fails verification.
    let value = std::str::from_utf8(value.as_bytes())
        .map_err(|_| AuthError::Invalid("header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(AuthError::Invalid("expected 'Bearer <token>'".into())),
    }
}

/// Verifies the request's bearer token: Floe's own (cached), or one of a configured OIDC issuer.
pub async fn authenticate(req: &HttpRequest) -> Result<Arc<Caller>, ApiError> {
    match verify_own(req) {
        Ok(caller) => Ok(caller),
        Err(Some(token)) => verify_external(req, token).await,
        Err(None) => Err(own_error(req)),
    }
}

/// Floe's own token, synchronously. `Err(Some(token))` when the token may be an external issuer's.
fn verify_own(req: &HttpRequest) -> Result<Arc<Caller>, Option<String>> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered");
    let Ok(Some(token)) = bearer_token(req) else {
        return Err(None);
    };
    match state.tokens.verify(token) {
        Ok(caller) => Ok(caller),
        Err(_) => match unverified_issuer(token) {
            Some(iss) if iss != state.tokens.issuer() && state.oidc.knows(&iss) => {
                Err(Some(token.to_owned()))
            }
            _ => Err(None),
        },
    }
}

/// The error for a request whose token is not Floe's and not an external issuer's.
fn own_error(req: &HttpRequest) -> ApiError {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered");
    match bearer_token(req) {
        Err(e) => e.into(),
        Ok(None) => AuthError::Missing.into(),
        Ok(Some(token)) => state
            .tokens
            .verify(token)
            .err()
            .unwrap_or(AuthError::Missing)
            .into(),
    }
}

async fn verify_external(req: &HttpRequest, token: String) -> Result<Arc<Caller>, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
        .clone();
    let identity = state.oidc.verify(&token).await?;
    let caller = Arc::new(state.oidc.caller_for(identity).await?);
    state.tokens.remember(&token, caller.clone());
    Ok(caller)
}

/// What the extractor answers with: at once on the hot path, later otherwise.
type Verified = Either<
    Ready<Result<Authenticated, ApiError>>,
    LocalBoxFuture<'static, Result<Authenticated, ApiError>>,
>;

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Verified;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // The common case (Floe's own token, usually cached, and the tenant within its rate)
        // answers without a boxed future.
        match verify_own(req) {
            Ok(caller) => admitted(req, caller),
            Err(None) => Either::Left(ready(Err(own_error(req)))),
            Err(Some(token)) => {
                let req = req.clone();
                Either::Right(Box::pin(async move {
                    let caller = verify_external(&req, token).await?;
                    match admitted(&req, caller) {
                        Either::Left(now) => now.await,
                        Either::Right(later) => later.await,
                    }
                }))
            }
        }
    }
}

/// The caller once its tenant's rate lets it in: at once, after its turn comes (asleep), or a 429.
fn admitted(req: &HttpRequest, caller: Arc<Caller>) -> Verified {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered");
    if !state.tenant_limits.enabled() {
        return Either::Left(ready(Ok(Authenticated(caller))));
    }
    match state.tenant_limits.admit(caller.tenant_id) {
        Admission::Now => Either::Left(ready(Ok(Authenticated(caller)))),
        Admission::After(wait) => Either::Right(Box::pin(async move {
            tokio::time::sleep(wait).await;
            Ok(Authenticated(caller))
        })),
        Admission::Refused { retry_after_secs } => {
            let mut error = ApiError::new(
                ErrorType::TooManyRequests,
                "this tenant is over its request rate; retry later",
            );
            error.retry_after_secs = Some(retry_after_secs);
            Either::Left(ready(Err(error)))
        }
    }
}
