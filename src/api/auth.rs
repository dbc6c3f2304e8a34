//! The bearer-token extractor: a handler that takes [`Authenticated`] runs only for a verified caller.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use super::AppState;
use super::error::ApiError;
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

/// Verifies the request's bearer token.
pub fn authenticate(req: &HttpRequest) -> Result<Arc<Caller>, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered");
    let token = bearer_token(req)?.ok_or(AuthError::Missing)?;
    Ok(state.tokens.verify(token)?)
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).map(Authenticated))
    }
}
