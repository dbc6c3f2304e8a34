//! `POST /v1/oauth/tokens` (client credentials and token exchange) and the published JWKS.
//!
//! Client authentication is accepted as form fields (PyIceberg, Iceberg Java) or HTTP Basic
//! (DuckDB, PyIceberg's newer auth manager). Failures answer OAuth2 errors, not Iceberg ones.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::AppState;
use super::types::{OAuthError, OAuthTokenRequest, OAuthTokenResponse};
use crate::identity::SignInError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(get_token).service(jwks);
}

const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status).json(OAuthError {
        error: error.into(),
        error_description: description.into(),
    })
}

/// 429 with `Retry-After` (whole seconds, at least 1).
fn come_back_later(after: Duration, description: &str) -> HttpResponse {
    let mut busy = oauth_error(
        StatusCode::TOO_MANY_REQUESTS,
        "temporarily_unavailable",
        description,
    );
    let secs = after.as_secs_f64().ceil().max(1.0) as u64;
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&secs.to_string()) {
        busy.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, value);
    }
    busy
}

fn invalid_client() -> HttpResponse {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "unknown client, wrong secret, or disabled principal",
    )
}

/// Client id and secret from an HTTP Basic header (each part form-url-encoded, per RFC 6749).
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()?
            .pop()
            .map(|(_, v)| v)
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// Exchange client credentials (or a valid Floe token) for an access token.
#[utoipa::path(
    post, path = "/v1/oauth/tokens", operation_id = "getToken", tag = "OAuth2 API",
    request_body(content = OAuthTokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An access token", body = OAuthTokenResponse),
        (status = 400, description = "Malformed request or unsupported grant", body = OAuthError),
        (status = 401, description = "Unknown client or wrong secret", body = OAuthError),
        (status = 429, description = "Too many token requests at once, or too many failed sign-ins for this client id or from this address; retry after `Retry-After` seconds", body = OAuthError),
        (status = 503, description = "The store is unavailable", body = OAuthError),
    )
)]
#[post("/v1/oauth/tokens")]
async fn get_token(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let form: OAuthTokenRequest = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("malformed form body: {e}"),
            );
        }
    };
    let issued = match form.grant_type.as_str() {
        "client_credentials" => {
            let creds = match (form.client_id, form.client_secret) {
                (Some(id), Some(secret)) => Some((id, secret)),
                _ => basic_credentials(&req),
            };
            let Some((client_id, secret)) = creds else {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "send client_id and client_secret (form fields or HTTP Basic)",
                );
            };
            let address = req.peer_addr().map(|a| a.ip());
            state
                .sign_in
                .with_client_secret(&client_id, &secret, address)
                .await
        }
        TOKEN_EXCHANGE => {
            let Some(subject) = form.subject_token else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "token exchange needs subject_token",
                );
            };
            state.sign_in.exchange(&subject).await
        }
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type '{other}' is not supported (use client_credentials)"),
            );
        }
    };
    match issued {
        Ok(issued) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(OAuthTokenResponse {
                access_token: issued.access_token,
                token_type: "bearer".into(),
                expires_in: issued.expires_in,
                issued_token_type: ACCESS_TOKEN_TYPE.into(),
            }),
        Err(e) => sign_in_error(e),
    }
}

/// The OAuth2 error a failed sign-in answers.
fn sign_in_error(e: SignInError) -> HttpResponse {
    match e {
        SignInError::InvalidClient => invalid_client(),
        SignInError::InvalidSubject => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "subject_token is not a valid token",
        ),
        SignInError::SessionOver(why) => {
            oauth_error(StatusCode::UNAUTHORIZED, "invalid_grant", &why)
        }
        SignInError::BackedOff(wait) => {
            come_back_later(wait, "too many failed sign-ins; retry later")
        }
        SignInError::Busy(wait) => {
            come_back_later(wait, "too many token requests at once; retry shortly")
        }
        SignInError::Unavailable(e) => {
            tracing::error!(
                error = &e as &dyn std::error::Error,
                "store failure during sign-in"
            );
            oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "store unavailable",
            )
        }
    }
}

/// The public keys that verify Floe's tokens.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", operation_id = "getJwks", tag = "OAuth2 API",
    responses((status = 200, description = "JSON Web Key Set", body = Object))
)]
#[get("/.well-known/jwks.json")]
async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.tokens.jwks())
}
