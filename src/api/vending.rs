//! Storage access for tables over HTTP: `/credentials`, presigned URLs and remote signing. Each
//! route parses, authorizes the caller's view of the table, and makes one call to
//! [`crate::table_answers`], which checks the caller's data access and asks vending.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::doc_parts::CommonErrors;
use super::paths::TablePath;
use super::types::{IcebergErrorResponse, StorageCredential};
use super::{ApiError, ApiResult, AppState, Authenticated};
use crate::domain::access::Privilege;
use crate::identity::Caller;
use crate::storage::access::SIGNER_TABLE;
use crate::storage::s3::signer::SignRequest;
use crate::storage::{PresignMethod, RemoteSign};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(load_credentials)
        .service(presign_file)
        .service(sign_request)
        .service(sign_s3_request);
}

/// The spec's `LoadCredentialsResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoadCredentialsResponse {
    #[serde(rename = "storage-credentials")]
    pub storage_credentials: Vec<StorageCredential>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoadCredentialsQuery {
    /// The id of a scan plan whose files these credentials are for: it must be the caller's
    /// plan of this table (404 `NoSuchPlanIdException` otherwise).
    #[serde(rename = "planId")]
    #[param(rename = "planId")]
    plan_id: Option<String>,
}

/// Load vended credentials for a table (one entry for the table's location; none for warehouses
/// that vend nothing).
#[utoipa::path(get, path = "/v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials", operation_id = "loadCredentials", tag = "Catalog API",
    params(TablePath, LoadCredentialsQuery),
    responses((status = 200, description = "Credentials for the table's location", body = LoadCredentialsResponse),
              (status = 404, description = "No such table", body = IcebergErrorResponse),
              (status = 503, description = "The cloud's token service failed", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials")]
async fn load_credentials(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: TablePath,
    query: web::Query<LoadCredentialsQuery>,
) -> ApiResult<HttpResponse> {
    let (wh, ident) = path
        .authorized(&state, &auth.0, Privilege::TableReadMetadata)
        .await?;
    let credential = state
        .answers
        .credentials(&auth.0, &wh, &ident, query.plan_id.as_deref())
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(LoadCredentialsResponse {
            storage_credentials: credential
                .map(|c| StorageCredential {
                    prefix: c.location_prefix.clone(),
                    config: c.config.clone(),
                })
                .into_iter()
                .collect(),
        }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PresignQuery {
    /// `s3://bucket/key` of one file inside the table.
    location: String,
    /// `GET` (needs read access) or `PUT` (needs write access).
    #[param(value_type = Option<PresignMethodName>)]
    method: Option<String>,
}

/// What a presigned URL may do.
#[derive(Serialize, ToSchema)]
#[allow(dead_code, clippy::upper_case_acronyms)]
pub enum PresignMethodName {
    GET,
    PUT,
}

/// A presigned URL for one file.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresignResponse {
    pub url: String,
    pub method: String,
    /// When the URL stops working, milliseconds since the epoch.
    #[serde(rename = "expires-at-ms")]
    pub expires_at_ms: i64,
}

/// Presign one file of a table for GET or PUT. The file must lie inside the table's location.
#[utoipa::path(get, path = "/v1/{prefix}/namespaces/{namespace}/tables/{table}/presign", operation_id = "presignFile", tag = "Catalog API",
    params(TablePath, PresignQuery),
    responses((status = 200, description = "A presigned URL", body = PresignResponse),
              (status = 404, description = "No such table", body = IcebergErrorResponse),
              (status = 503, description = "The cloud's token service failed", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/v1/{prefix}/namespaces/{namespace}/tables/{table}/presign")]
async fn presign_file(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: TablePath,
    query: web::Query<PresignQuery>,
) -> ApiResult<HttpResponse> {
    let method = PresignMethod::parse(query.method.as_deref().unwrap_or("GET"))
        .map_err(ApiError::bad_request)?;
    let (wh, ident) = path
        .authorized(&state, &auth.0, Privilege::TableReadMetadata)
        .await?;
    let presigned = state
        .answers
        .presign(&auth.0, &wh, &ident, &query.location, method)
        .await?;
    tracing::info!(table = %ident, principal = %auth.0.name, method = ?method, "presigned a file URL");
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(PresignResponse {
            url: presigned.url,
            method: format!("{method:?}").to_uppercase(),
            expires_at_ms: presigned.expires_at_ms,
        }))
}

/// The spec's `RemoteSignRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RemoteSignRequest {
    pub region: String,
    pub uri: String,
    pub method: String,
    pub headers: BTreeMap<String, Vec<String>>,
    /// Pass-through properties from `remote-signing-config` (`floe.table` names the table for
    /// the global `/v1/aws/s3/sign`).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    pub body: Option<String>,
    /// `s3` (the default) is the only provider signed here.
    pub provider: Option<String>,
}

/// The spec's `RemoteSignResult`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemoteSignResult {
    pub uri: String,
    pub headers: BTreeMap<String, Vec<String>>,
}

/// Sign one S3 request for a client, after checking that every key it touches (object, list
/// prefix, each key of a DeleteObjects body) is inside the table and allowed for the caller.
#[utoipa::path(post, path = "/v1/{prefix}/namespaces/{namespace}/tables/{table}/sign", operation_id = "signRequest", tag = "Catalog API",
    params(TablePath),
    request_body = RemoteSignRequest,
    responses((status = 200, description = "Headers to send", body = RemoteSignResult),
              (status = 404, description = "No such table", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/namespaces/{namespace}/tables/{table}/sign")]
async fn sign_request(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: TablePath,
    body: web::Json<RemoteSignRequest>,
) -> ApiResult<HttpResponse> {
    sign_for_table(&state, &auth.0, path, &body).await
}

/// The older, global form of [`sign_request`]: the table comes from `properties["floe.table"]`,
/// which Floe hands out in `remote-signing-config` and clients pass back unchanged. Every check
/// of the per-table form applies, against the caller's own grants on that table.
#[utoipa::path(post, path = "/v1/aws/s3/sign", operation_id = "signS3Request", tag = "S3 Signer API",
    request_body = RemoteSignRequest,
    responses((status = 200, description = "Headers to send", body = RemoteSignResult),
              (status = 404, description = "No such table", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/aws/s3/sign")]
async fn sign_s3_request(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: web::Json<RemoteSignRequest>,
) -> ApiResult<HttpResponse> {
    let scope = body.properties.get(SIGNER_TABLE).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Floe signs only for a table: pass the '{SIGNER_TABLE}' property from the table's remote-signing-config"
        ))
    })?;
    let parts: Vec<String> = scope
        .split('/')
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let [prefix, ns, table] = parts.as_slice() else {
        return Err(ApiError::bad_request(format!(
            "'{SIGNER_TABLE}' must be warehouse/namespace/table"
        )));
    };
    let path = TablePath::new(prefix, ns, table);
    sign_for_table(&state, &auth.0, path, &body).await
}

async fn sign_for_table(
    state: &AppState,
    caller: &Caller,
    path: TablePath,
    body: &RemoteSignRequest,
) -> ApiResult<HttpResponse> {
    let (wh, ident) = path
        .authorized(state, caller, Privilege::TableReadMetadata)
        .await?;
    let sign = RemoteSign {
        request: SignRequest {
            method: &body.method,
            uri: &body.uri,
            headers: &body.headers,
            body: body.body.as_deref(),
        },
        region: &body.region,
        provider: body.provider.as_deref(),
    };
    let (uri, headers) = state.answers.sign(caller, &wh, &ident, &sign).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(RemoteSignResult { uri, headers }))
}
