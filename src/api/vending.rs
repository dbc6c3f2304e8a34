//! Storage access for tables over HTTP: the storage part of table answers, `/credentials`,
//! presigned URLs and remote signing. Each route parses, checks the caller's data access, and makes
//! one call to [`crate::vending`], which decides what the caller gets for the table's storage.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::doc_parts::CommonErrors;
use super::paths::TablePath;
use super::types::{IcebergErrorResponse, StorageCredential};
use super::{ApiError, ApiResult, AppState, Authenticated};
use crate::authz::on_table;
use crate::catalog::{LoadedTable, Warehouse};
use crate::domain::TableIdent;
use crate::domain::access::{DataAccess, Privilege};
use crate::identity::Caller;
use crate::storage::access::SIGNER_TABLE;
use crate::storage::s3::signer::{Needs, SignRequest};
use crate::storage::{PresignMethod, RemoteSign, Requester, TableAccess, TableEndpoints};
use crate::vending::Delegation;
pub use crate::vending::table_storage::{AccessAsked, TableStorage};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(load_credentials)
        .service(presign_file)
        .service(sign_request)
        .service(sign_s3_request);
}

/// A path segment as clients send it (namespace levels joined by `%1F`).
fn segment(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// The namespace and table segments of this table's paths.
fn segments(ident: &TableIdent) -> (String, String) {
    (
        segment(&ident.namespace.parts().join("\u{1f}")),
        segment(ident.name.as_str()),
    )
}

/// `{prefix}/{namespace}/{table}` as in this table's paths.
fn table_scope(wh: &Warehouse, ident: &TableIdent) -> String {
    let (ns, table) = segments(ident);
    format!("{}/{ns}/{table}", wh.record.id)
}

/// Where this server serves the table's storage routes.
fn endpoints(state: &AppState, wh: &Warehouse, ident: &TableIdent) -> TableEndpoints {
    TableEndpoints {
        signer_uri: state.public_url.clone(),
        signer_endpoint: format!("{}/sign", table_path(wh, ident)),
        signer_scope: table_scope(wh, ident),
    }
}

/// `v1/{prefix}/namespaces/{ns}/tables/{table}` (no leading slash).
fn table_path(wh: &Warehouse, ident: &TableIdent) -> String {
    let (ns, table) = segments(ident);
    format!("v1/{}/namespaces/{ns}/tables/{table}", wh.record.id)
}

/// The caller's tenant name (cached), for STS session names.
pub async fn tenant_name(state: &AppState, caller: &Caller) -> ApiResult<Arc<str>> {
    Ok(state.catalog.tenant_name(caller.tenant_id).await?)
}

/// What vending needs to know of the caller and the table.
async fn table_access<'a>(
    state: &AppState,
    caller: &'a Caller,
    wh: &'a Warehouse,
    ident: &TableIdent,
    loaded: &'a LoadedTable,
    data: DataAccess,
    tenant_name: &'a str,
) -> TableAccess<'a> {
    TableAccess {
        warehouse: wh.storage(),
        location: &loaded.location,
        access: data,
        caller: Requester {
            principal_id: caller.principal_id,
            name: &caller.name,
        },
        tenant_name,
        refresh_endpoint: format!("{}/{}/credentials", state.public_url, table_path(wh, ident)),
    }
}

/// The delegation asked for in `X-Iceberg-Access-Delegation` and the caller's data access.
pub async fn access_asked(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    wh: &Warehouse,
    ident: &TableIdent,
) -> ApiResult<AccessAsked> {
    // Local warehouses hand out nothing: load-table on them never looks at the header.
    if !AccessAsked::may_delegate(wh.storage()) {
        return Ok(AccessAsked::PLAIN);
    }
    let delegation = Delegation::parse(
        req.headers()
            .get("X-Iceberg-Access-Delegation")
            .and_then(|v| v.to_str().ok()),
    );
    if !delegation.any() {
        return Ok(AccessAsked::PLAIN);
    }
    let data = state.authz.data_access(caller, wh.record.id, ident).await?;
    Ok(AccessAsked::new(wh.storage(), delegation, data))
}

/// The storage part of a table answer, for what the request asks.
pub async fn table_storage(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    wh: &Warehouse,
    ident: &TableIdent,
    loaded: &LoadedTable,
) -> ApiResult<TableStorage> {
    let asked = access_asked(state, caller, req, wh, ident).await?;
    table_storage_for(state, caller, wh, ident, loaded, asked).await
}

/// The storage part of a table answer for `asked`.
pub async fn table_storage_for(
    state: &AppState,
    caller: &Caller,
    wh: &Warehouse,
    ident: &TableIdent,
    loaded: &LoadedTable,
    asked: AccessAsked,
) -> ApiResult<TableStorage> {
    if asked == AccessAsked::PLAIN {
        return Ok(TableStorage::plain(wh.storage()));
    }
    let tenant = tenant_name(state, caller).await?;
    let t = table_access(state, caller, wh, ident, loaded, asked.data(), &tenant).await;
    Ok(state
        .vending
        .table_storage(&t, asked, &endpoints(state, wh, ident))
        .await?)
}

/// Resolves a table for a storage route: the warehouse, the table, the caller's data access
/// (403, audited, without read access).
async fn table_for_data(
    state: &AppState,
    caller: &Caller,
    path: TablePath,
) -> ApiResult<(Warehouse, TableIdent, LoadedTable, DataAccess)> {
    let (wh, ident) = path
        .authorized(state, caller, Privilege::TableReadMetadata)
        .await?;
    let loaded = state.catalog.load_table(&wh, &ident).await?;
    let data = state
        .authz
        .data_access(caller, wh.record.id, &ident)
        .await?;
    if data == DataAccess::None {
        state
            .authz
            .require(
                caller,
                &on_table(wh.record.id, &ident),
                Privilege::TableReadData,
            )
            .await?;
    }
    Ok((wh, ident, loaded, data))
}

/// Fails with 403 (audited) unless the caller may write the table.
async fn require_write(
    state: &AppState,
    caller: &Caller,
    wh: &Warehouse,
    ident: &TableIdent,
    data: DataAccess,
) -> ApiResult<()> {
    if data != DataAccess::ReadWrite {
        state
            .authz
            .require(
                caller,
                &on_table(wh.record.id, ident),
                Privilege::TableWriteData,
            )
            .await?;
    }
    Ok(())
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
    /// Server-side scan plan id (scan planning is not offered; ignored).
    #[serde(rename = "planId")]
    #[param(rename = "planId")]
    #[allow(dead_code)]
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
    _query: web::Query<LoadCredentialsQuery>,
) -> ApiResult<HttpResponse> {
    let (wh, ident, loaded, data) = table_for_data(&state, &auth.0, path).await?;
    let tenant = tenant_name(&state, &auth.0).await?;
    let t = table_access(&state, &auth.0, &wh, &ident, &loaded, data, &tenant).await;
    let credential = state.vending.refresh_credentials(&t).await?;
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
    let (wh, ident, loaded, data) = table_for_data(&state, &auth.0, path).await?;
    if method == PresignMethod::Put {
        require_write(&state, &auth.0, &wh, &ident, data).await?;
    }
    let tenant = tenant_name(&state, &auth.0).await?;
    let t = table_access(&state, &auth.0, &wh, &ident, &loaded, data, &tenant).await;
    let presigned = state.vending.presign(&t, &query.location, method).await?;
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
    let (wh, ident, loaded, data) = table_for_data(state, caller, path).await?;
    let tenant = tenant_name(state, caller).await?;
    let t = table_access(state, caller, &wh, &ident, &loaded, data, &tenant).await;
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
    let checked = state.vending.check_sign(&t, &sign)?;
    if checked.needs == Needs::Write {
        require_write(state, caller, &wh, &ident, data).await?;
    }
    let (uri, headers) = state.vending.sign(&t, &sign, &checked).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(RemoteSignResult { uri, headers }))
}
