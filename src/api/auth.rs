//! The bearer-token extractor: a handler that takes [`Authenticated`] runs only for a verified caller.

use futures::future::LocalBoxFuture;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use super::AppState;
use super::error::ApiError;
use crate::identity::oidc::unverified_issuer;
use crate::identity::{AuthError, Caller};

/// The verified caller of a request.
pub struct Authenticated(pub Arc<Caller>);

/// The bearer token of a request, if it has an `Authorization: Bearer` header.
pub fn bearer_token(req: &HttpRequest) -> Result<Option<&str>, AuthError> {
    let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
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
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
        .clone();
    let token = bearer_token(req)?.ok_or(AuthError::Missing)?.to_owned();
    let own_error = match state.tokens.verify(&token) {
        Ok(caller) => return Ok(caller),
        Err(e) => e,
    };
    match unverified_issuer(&token) {
        Some(iss) if iss != state.tokens.issuer() && state.oidc.knows(&iss) => {
            let identity = state.oidc.verify(&token).await?;
            let store = state.catalog.store();
            let caller = Arc::new(state.oidc.caller_for(store.as_ref(), identity).await?);
            state.tokens.remember(&token, caller.clone());
            Ok(caller)
        }
        _ => Err(own_error.into()),
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await.map(Authenticated) })
    }
}
