//! `POST /v1/oauth/tokens` (client credentials and token exchange) and the published JWKS.
//!
//! Client authentication is accepted as form fields (PyIceberg, Iceberg Java) or HTTP Basic
//! (DuckDB, PyIceberg's newer auth manager). Failures answer OAuth2 errors, not Iceberg ones.

use std::sync::LazyLock;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::AppState;
use super::types::{OAuthError, OAuthTokenRequest, OAuthTokenResponse};
use crate::identity::{ClientSecrets, HashKind};
use crate::store::PrincipalRecord;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(get_token).service(jwks);
}

const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Secret hashes checked at once: argon2 takes 19 MiB and tens of milliseconds each, and the token
/// endpoint is open to anyone, so the work is bounded by the cores there are.
static SECRET_CHECKS: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::sync::Semaphore::new(cores.max(2))
});
/// How long a token request waits for a turn before it is told to come back (429).
const SECRET_CHECK_WAIT: Duration = Duration::from_secs(2);

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
    // The principal, and for an exchange when its session began.
    let (principal, session_began) = match form.grant_type.as_str() {
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
            if let Some(wait) = state.sign_ins.wait(&client_id, address) {
                metrics::counter!("floe_sign_ins_backed_off_total").increment(1);
                return come_back_later(wait, "too many failed sign-ins; retry later");
            }
            match check_client(&state, &client_id, &secret).await {
                Ok(Some(p)) => {
                    state.sign_ins.succeeded(&client_id);
                    (p, None)
                }
                Ok(None) => {
                    state.sign_ins.failed(&client_id, address);
                    return invalid_client();
                }
                Err(response) => return response,
            }
        }
        TOKEN_EXCHANGE => {
            let Some(subject) = form.subject_token else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "token exchange needs subject_token",
                );
            };
            let Ok(caller) = state.tokens.verify(&subject) else {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "subject_token is not a valid token",
                );
            };
            match state
                .catalog
                .store()
                .get_principal(caller.principal_id)
                .await
            {
                Ok(Some(p)) if !p.disabled => (p, Some(caller.authenticated_at)),
                Ok(_) => return invalid_client(),
                Err(e) => {
                    tracing::error!(error = %e, "store failure during token exchange");
                    return oauth_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "temporarily_unavailable",
                        "store unavailable",
                    );
                }
            }
        }
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type '{other}' is not supported (use client_credentials)"),
            );
        }
    };
    let issued = match session_began {
        None => state.tokens.issue(&principal),
        Some(began) => match state.tokens.renew(&principal, began) {
            Ok(issued) => issued,
            Err(e) => {
                return oauth_error(StatusCode::UNAUTHORIZED, "invalid_grant", &e.to_string());
            }
        },
    };
    tracing::info!(principal = %principal.id, tenant = %principal.tenant_id, "issued token");
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(OAuthTokenResponse {
            access_token: issued.access_token,
            token_type: "bearer".into(),
            expires_in: issued.expires_in,
            issued_token_type: ACCESS_TOKEN_TYPE.into(),
        })
}

/// The principal owning `client_id` when `secret` is right. Successful checks are remembered
/// briefly (argon2 is deliberately slow; clients fetch tokens in bursts).
async fn check_client(
    state: &AppState,
    client_id: &str,
    secret: &str,
) -> Result<Option<PrincipalRecord>, HttpResponse> {
    let unavailable = |e: crate::store::StoreError| {
        tracing::error!(error = %e, "store failure during token issue");
        oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "store unavailable",
        )
    };
    let principal = state
        .catalog
        .store()
        .get_principal_by_client_id(client_id)
        .await
        .map_err(unavailable)?
        .filter(|p| !p.disabled);
    let secrets = state.client_secrets.as_ref();
    let Some(principal) = principal else {
        check_secret(secrets, secret, secrets.decoy()).await?;
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
    if state.verified_secrets.get(&fingerprint).await == Some(principal.id) {
        return Ok(Some(principal));
    }
    if !check_secret(secrets, secret, &principal.secret_hash).await? {
        return Ok(None);
    }
    state
        .verified_secrets
        .insert(fingerprint, principal.id)
        .await;
    Ok(Some(principal))
}

/// Verifies a secret against its hash: a keyed hash at once, an argon2 one on the blocking pool, at
/// most [`SECRET_CHECKS`] at once; a request that cannot get a turn within [`SECRET_CHECK_WAIT`]
/// answers 429 with `Retry-After`.
async fn check_secret(
    secrets: &ClientSecrets,
    secret: &str,
    hash: &str,
) -> Result<bool, HttpResponse> {
    metrics::counter!("floe_secret_checks_total").increment(1);
    if ClientSecrets::kind(hash) == HashKind::Keyed {
        return Ok(secrets.verify(secret, hash));
    }
    let Ok(Ok(_permit)) = tokio::time::timeout(SECRET_CHECK_WAIT, SECRET_CHECKS.acquire()).await
    else {
        metrics::counter!("floe_secret_checks_shed_total").increment(1);
        return Err(come_back_later(
            Duration::from_secs(1),
            "too many token requests at once; retry shortly",
        ));
    };
    metrics::counter!("floe_slow_secret_checks_total").increment(1);
    let (secret, hash) = (secret.to_owned(), hash.to_owned());
    Ok(
        tokio::task::spawn_blocking(move || crate::identity::verify_argon2(&secret, &hash))
            .await
            .unwrap_or(false),
    )
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
