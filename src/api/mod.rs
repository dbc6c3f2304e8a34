//! HTTP: thin handlers that extract and validate input, authorize it, call one use-case (catalog,
//! admin, vending, sign-in), and map the result or error to the spec's shapes.
//!
//! Owns: routes, typed path extractors, request/response bodies, authentication of each request,
//! running a mutation under its `Idempotency-Key`, the OpenAPI document. Must not touch: the
//! store, caches or storage SDKs (the services below own them).

mod auth;
mod config;
mod doc_parts;
mod error;
mod guard;
mod health;
mod http_metrics;
mod json_body;
mod management;
mod namespaces;
mod oauth;
pub mod openapi;
mod paths;
mod planning;
mod request_id;
mod request_log;
mod tables;
pub mod tenant_limits;
pub mod types;
mod unrouted;
pub(crate) mod vending;
mod views;

use std::future::Future;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde::Serialize;

pub use auth::Authenticated;
pub use config::ENDPOINTS;
pub use error::{ApiError, ApiResult};
pub use guard::{RequestLimits, guard, on_connect};
pub use json_body::{JsonBody, json_string, metadata_body};
pub use request_log::request_log;
pub use unrouted::unrouted;

use crate::catalog::{Catalog, ErrorType};
use crate::domain::{NamespaceIdent, ObjectName, TableIdent};
use crate::idempotency::Reservation;
use crate::identity::{Caller, TokenService};

/// Shared state of every handler: the services it calls. Caches live inside the services.
pub struct AppState {
    pub catalog: Arc<Catalog>,
    pub authz: Arc<crate::authz::Authorizer>,
    pub tokens: Arc<TokenService>,
    /// Verifies tokens of configured external OIDC issuers.
    pub oidc: Arc<crate::identity::oidc::OidcVerifier>,
    /// The token endpoint's use-cases.
    pub sign_in: Arc<crate::identity::SignIn>,
    /// `Idempotency-Key` reservations and replays.
    pub idempotency: Arc<crate::idempotency::IdempotencyKeys>,
    /// The answers that hand a table to a caller (load, create, register, credentials,
    /// presign, sign), one call each.
    pub answers: Arc<crate::table_answers::TableAnswers>,
    /// Tenancy use-cases (management changes).
    pub admin: Arc<crate::admin::Admin>,
    /// Validates warehouses against their storage.
    pub vending: Arc<crate::vending::Vending>,
    /// Renders the Prometheus metrics.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Each tenant's request rate.
    pub tenant_limits: tenant_limits::TenantLimits,
}

/// Registers every route and the body/query/path error mappers.
pub fn configure(max_body_bytes: usize) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(
            web::JsonConfig::default()
                .limit(max_body_bytes)
                .error_handler(error::json_error),
        )
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .app_data(web::FormConfig::default().limit(max_body_bytes))
        .app_data(web::PayloadConfig::default().limit(max_body_bytes));
        // actix tries routes in registration order, one regex each: the hot table routes
        // (load-table first) go first. Patterns are anchored and never overlap, so order only
        // changes cost, not which route answers.
        tables::routes(cfg);
        vending::routes(cfg);
        planning::routes(cfg);
        namespaces::routes(cfg);
        views::routes(cfg);
        config::routes(cfg);
        oauth::routes(cfg);
        health::routes(cfg);
        management::routes(cfg);
        openapi::routes(cfg);
    }
}

/// A finished answer that can be stored and replayed for an `Idempotency-Key`.
pub struct Reply {
    status: StatusCode,
    body: Option<JsonBody>,
    /// What an `Idempotency-Key` replay answers instead of `body` (e.g. without credentials, which
    /// must never be stored).
    replay_body: Option<JsonBody>,
    /// Why the answer holds no credentials although the client asked (never replayed).
    credentials_withheld: Option<String>,
}

/// The header saying why a table answer holds no credentials although the client asked for them.
pub const CREDENTIALS_WITHHELD: &str = "Floe-Credentials-Withheld";

impl Reply {
    /// 200 with a JSON body.
    pub fn json(value: &impl Serialize) -> Self {
        Self::json_body(JsonBody::whole(Bytes::from(
            serde_json::to_vec(value).expect("response bodies serialize"),
        )))
    }

    /// 200 with pre-serialized JSON.
    pub fn json_body(body: JsonBody) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            replay_body: None,
            credentials_withheld: None,
        }
    }

    /// The same reply, saying in [`CREDENTIALS_WITHHELD`] why it holds no credentials.
    pub fn credentials_withheld(mut self, why: impl Into<String>) -> Self {
        self.credentials_withheld = Some(why.into());
        self
    }

    /// 200 with a JSON body that holds secrets; a replay answers `replay` instead.
    pub fn json_with_secrets(body: JsonBody, replay: JsonBody) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            replay_body: Some(replay),
            credentials_withheld: None,
        }
    }

    /// 204.
    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: None,
            replay_body: None,
            credentials_withheld: None,
        }
    }

    /// The HTTP response.
    pub fn respond(self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if let Some(why) = self.credentials_withheld {
            r.insert_header((CREDENTIALS_WITHHELD, why));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.insert_header((
                actix_web::http::header::RETRY_AFTER,
                error::RETRY_AFTER_SECS,
            ));
        }
        match self.body {
            Some(body) => r.content_type("application/json").body(body),
            None => r.finish(),
        }
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        let status = actix_web::ResponseError::status_code(&e);
        Self {
            status,
            body: Some(JsonBody::whole(Bytes::from(
                serde_json::to_vec(&e.body()).expect("errors serialize"),
            ))),
            replay_body: None,
            credentials_withheld: None,
        }
    }
}

/// Runs a mutation once per `Idempotency-Key`. Call it after the request is authorized: a replay
/// is authorized exactly like a first run. A key belongs to the principal that sent it (another
/// principal's same key is another key), and it is reserved in the store before `work` runs, so
/// of two requests with one key only one runs; the other gets 409 while the first is running, and
/// the first final answer (2xx or 4xx) afterwards, within the advertised lifetime. A 5xx releases
/// the key, so the client may retry.
pub async fn idempotent(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    work: impl Future<Output = ApiResult<Reply>>,
) -> ApiResult<Reply> {
    let Some(key) = req.headers().get("Idempotency-Key") else {
        return work.await;
    };
    let key = key
        .to_str()
        .ok()
        .and_then(|k| uuid::Uuid::parse_str(k).ok())
        .ok_or_else(|| ApiError::bad_request("Idempotency-Key must be a UUID"))?;
    let operation = format!("{} {}", req.method(), req.path());
    match state.idempotency.reserve(caller, key, operation).await? {
        Reservation::OtherOperation => Err(ApiError::new(
            ErrorType::Unprocessable,
            "this Idempotency-Key was used for another operation",
        )),
        Reservation::Running => Err(ApiError::new(
            ErrorType::Conflict,
            "a request with this Idempotency-Key is still running; retry it shortly",
        )),
        Reservation::Replay { status, body } => Ok(Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            body: (!body.is_empty()).then(|| JsonBody::whole(Bytes::from(body))),
            replay_body: None,
            credentials_withheld: None,
        }),
        Reservation::Run(reserved) => {
            let reply = work.await.unwrap_or_else(Reply::from);
            let kept = reply
                .replay_body
                .as_ref()
                .or(reply.body.as_ref())
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            state
                .idempotency
                .finish(reserved, reply.status.as_u16(), kept)
                .await;
            Ok(reply)
        }
    }
}

/// One page of the tables or views (by `K`) in a namespace the caller may see. The warehouse is
/// resolved first, so an unknown one is 404 before the page parameters are checked.
pub async fn list_objects<K: paths::ObjectKind>(
    state: &AppState,
    caller: &Caller,
    path: paths::NamespacePath,
    page: &namespaces::PageQuery,
) -> ApiResult<HttpResponse> {
    let wh = state.catalog.warehouse(caller, &path.prefix).await?;
    let request = state
        .catalog
        .page_request(page.page_token.as_deref(), page.page_size)?;
    let ns = path.namespace()?;
    let mut listed = state.catalog.list(&wh, &ns, K::KIND, &request).await?;
    let warehouse = wh.record.id;
    let container = crate::authz::on_namespace(warehouse, &ns);
    listed.items = state
        .authz
        .visible(caller, &container, K::LIST, listed.items, |t| {
            K::target(warehouse, t)
        })
        .await?;
    Ok(HttpResponse::Ok().json(types::ListTablesResponse {
        next_page_token: listed
            .next
            .as_deref()
            .map(|last| state.catalog.encode_page_token(last)),
        identifiers: listed.items.iter().map(identifier_body).collect(),
    }))
}

/// Renames a table or view (by `K`), possibly into another namespace, for a caller who may drop
/// it and create in the destination; idempotent under the request's key.
pub async fn rename_object<K: paths::ObjectKind>(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    path: &paths::WarehousePath,
    body: &types::RenameTableRequest,
) -> HttpResponse {
    let run = async {
        let wh = state.catalog.warehouse(caller, &path.prefix).await?;
        let (from, to) = (identifier(&body.source)?, identifier(&body.destination)?);
        let rename = crate::authz::operations::Operation::Rename {
            kind: K::KIND,
            from: &from,
            to: &to,
        };
        state
            .authz
            .require_operation(caller, wh.record.id, rename)
            .await?;
        idempotent(state, caller, req, async {
            state.catalog.rename(&wh, K::KIND, &from, &to).await?;
            Ok(Reply::no_content())
        })
        .await
    };
    run.await.unwrap_or_else(Reply::from).respond()
}

/// Parses a namespace path segment.
pub fn namespace_param(segment: &str) -> ApiResult<NamespaceIdent> {
    Ok(NamespaceIdent::from_url_segment(segment)?)
}

/// Parses a namespace segment and a table or view name.
pub fn table_param(namespace: &str, name: &str) -> ApiResult<TableIdent> {
    Ok(TableIdent::new(
        namespace_param(namespace)?,
        ObjectName::new(name)?,
    ))
}

/// Parses a body's `TableIdentifier`.
pub fn identifier(id: &types::TableIdentifier) -> ApiResult<TableIdent> {
    Ok(TableIdent::new(
        NamespaceIdent::new(id.namespace.clone())?,
        ObjectName::new(id.name.clone())?,
    ))
}

/// The spec's `TableIdentifier` of a table.
pub fn identifier_body(ident: &TableIdent) -> types::TableIdentifier {
    types::TableIdentifier {
        namespace: ident.namespace.parts().to_vec(),
        name: ident.name.to_string(),
    }
}
