//! Storage access for tables over HTTP: credentials in table answers, `/credentials`, presigned
//! URLs and remote signing. Every route checks the caller's data access to the table first.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use bytes::Bytes;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::openapi::CommonErrors;
use super::types::{IcebergErrorResponse, StorageCredential};
use super::{ApiError, ApiResult, AppState, Authenticated};
use crate::authz::{DataAccess, Privilege, on_table};
use crate::catalog::{CatalogError, ErrorType, LoadedTable, Warehouse};
use crate::domain::TableIdent;
use crate::identity::Caller;
use crate::store::{S3Profile, StorageProfile};
use crate::vending::presign::{PresignMethod, file_inside, object_key, presigned_url};
use crate::vending::signer::{Needs, SignRequest, SigningKeys, check_request, sign_headers};
use crate::vending::{Delegation, TableAccess, table_prefix};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(load_credentials)
        .service(presign_file)
        .service(sign_request)
        .service(sign_s3_request);
}

/// Table-specific client configuration and credentials for a table answer, as JSON.
pub struct StorageAccess {
    /// The `config` object.
    pub config_json: Bytes,
    /// The one `storage-credentials` entry, if any.
    pub credential_json: Option<Bytes>,
    /// The `remote-signing-config` object, when the client is to sign remotely.
    pub remote_signing_json: Option<Bytes>,
}

impl StorageAccess {
    /// The warehouse's plain client settings: no credentials, no signer.
    pub fn plain(wh: &Warehouse) -> Self {
        Self {
            config_json: Bytes::from(serde_json::to_vec(&base_config(wh)).expect("maps serialize")),
            credential_json: None,
            remote_signing_json: None,
        }
    }

    /// The same answer with no secrets (what an idempotent replay returns).
    pub fn without_secrets(&self, wh: &Warehouse) -> Self {
        Self::plain(wh)
    }
}

fn base_config(wh: &Warehouse) -> BTreeMap<String, String> {
    crate::vending::client_config(&wh.record.storage)
}

fn s3_profile(wh: &Warehouse) -> Option<&S3Profile> {
    match &wh.record.storage {
        StorageProfile::S3(p) => Some(p),
        _ => None,
    }
}

/// A path segment as clients send it (namespace levels joined by `%1F`).
fn segment(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// `v1/{prefix}/namespaces/{ns}/tables/{table}` (no leading slash).
fn table_path(wh: &Warehouse, ident: &TableIdent) -> String {
    format!(
        "v1/{}/namespaces/{}/tables/{}",
        wh.record.id,
        segment(&ident.namespace.parts().join("\u{1f}")),
        segment(ident.name.as_str())
    )
}

/// The caller's tenant name (cached), for STS session names.
pub async fn tenant_name(state: &AppState, caller: &Caller) -> ApiResult<Arc<str>> {
    if let Some(name) = state.tenant_names.get(&caller.tenant_id) {
        return Ok(name);
    }
    let name: Arc<str> = match state.catalog.store().get_tenant(caller.tenant_id).await? {
        Some(t) => t.name.into(),
        None => caller.tenant_id.simple().to_string().into(),
    };
    state.tenant_names.insert(caller.tenant_id, name.clone());
    Ok(name)
}

/// Configuration and credentials for a loaded table: credentials when the client asked for
/// `vended-credentials` and holds data access; the remote signer when the warehouse offers it and
/// the client asked for delegation; the storage's plain settings otherwise.
pub async fn storage_access(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    wh: &Warehouse,
    ident: &TableIdent,
    loaded: &LoadedTable,
) -> ApiResult<StorageAccess> {
    let asked = access_asked(state, caller, req, wh, ident).await?;
    storage_access_for(state, caller, wh, ident, loaded, asked).await
}

/// What the storage part of a table answer depends on: the delegation the client asked for and
/// the caller's data access (nothing for a local warehouse, which hands out neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessAsked {
    delegation: Delegation,
    data: DataAccess,
}

impl AccessAsked {
    const PLAIN: AccessAsked = AccessAsked {
        delegation: Delegation {
            vended_credentials: false,
            remote_signing: false,
        },
        data: DataAccess::None,
    };

    /// `tag` (a quoted ETag) made specific to this access, so a client that asks with other
    /// delegation or holds other grants never gets a 304 for an answer it was not given.
    pub fn etag(&self, tag: &str) -> String {
        let mode = match (
            self.delegation.vended_credentials,
            self.delegation.remote_signing,
        ) {
            (false, false) => 'p',
            (true, false) => 'v',
            (false, true) => 's',
            (true, true) => 'b',
        };
        let data = match self.data {
            DataAccess::None => 'n',
            DataAccess::Read => 'r',
            DataAccess::ReadWrite => 'w',
        };
        format!("{}-{mode}{data}\"", tag.trim_end_matches('"'))
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
    if matches!(wh.record.storage, StorageProfile::Local { .. }) {
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
    Ok(AccessAsked { delegation, data })
}

/// The storage part of a table answer for `asked`.
pub async fn storage_access_for(
    state: &AppState,
    caller: &Caller,
    wh: &Warehouse,
    ident: &TableIdent,
    loaded: &LoadedTable,
    asked: AccessAsked,
) -> ApiResult<StorageAccess> {
    let AccessAsked { delegation, data } = asked;
    if !delegation.any() || data == DataAccess::None {
        return Ok(StorageAccess::plain(wh));
    }
    let location = loaded.table.metadata.location();
    if delegation.vended_credentials {
        let tenant = tenant_name(state, caller).await?;
        let table = TableAccess {
            warehouse: wh,
            location,
            access: data,
            caller,
            tenant_name: &tenant,
            refresh_endpoint: format!("{}/{}/credentials", state.public_url, table_path(wh, ident)),
        };
        if let Some(c) = state.vending.credentials(&table).await? {
            return Ok(StorageAccess {
                config_json: c.config_json.clone(),
                credential_json: Some(c.credential_json.clone()),
                remote_signing_json: None,
            });
        }
    }
    let mut config = base_config(wh);
    let mut remote_signing_json = None;
    if let Some(profile) = s3_profile(wh)
        && profile.remote_signing
    {
        config.insert("s3.remote-signing-enabled".into(), "true".into());
        config.insert("s3.signer.uri".into(), state.public_url.clone());
        config.insert(
            "s3.signer.endpoint".into(),
            format!("{}/sign", table_path(wh, ident)),
        );
        config.insert("s3.signer".into(), "S3V4RestSigner".into());
        // Clients that post to the global `/v1/aws/s3/sign` pass these back: they name the table.
        let scope = serde_json::json!({"properties": {SIGNER_TABLE: table_scope(wh, ident)}});
        remote_signing_json = Some(Bytes::from(scope.to_string()));
    }
    Ok(StorageAccess {
        config_json: Bytes::from(serde_json::to_vec(&config).expect("maps serialize")),
        credential_json: None,
        remote_signing_json,
    })
}

/// The `RemoteSignRequest.properties` key that names the table a global sign request is for.
pub const SIGNER_TABLE: &str = "floe.table";

/// `{prefix}/{namespace}/{table}` as in this table's paths.
fn table_scope(wh: &Warehouse, ident: &TableIdent) -> String {
    format!(
        "{}/{}/{}",
        wh.record.id,
        segment(&ident.namespace.parts().join("\u{1f}")),
        segment(ident.name.as_str())
    )
}

/// Resolves a table for a storage route: the warehouse, the table, the caller's data access.
async fn table_for_data(
    state: &AppState,
    caller: &Caller,
    prefix: &str,
    ns: &str,
    table: &str,
) -> ApiResult<(Warehouse, TableIdent, LoadedTable, DataAccess)> {
    let (wh, ident) = super::tables::table_route(
        state,
        caller,
        prefix,
        ns,
        table,
        Privilege::TableReadMetadata,
    )
    .await?;
    let loaded = state.catalog.load_table(&wh, &ident).await?;
    let data = state
        .authz
        .data_access(caller, wh.record.id, &ident)
        .await?;
    if data == DataAccess::None {
        // Audited like every denial.
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
    params(("prefix" = String, Path, description = "Warehouse id"), ("namespace" = String, Path, description = "Levels separated by %1F"),
           ("table" = String, Path, description = "Table name"), LoadCredentialsQuery),
    responses((status = 200, description = "Credentials for the table's location", body = LoadCredentialsResponse),
              (status = 404, description = "No such table", body = IcebergErrorResponse),
              (status = 503, description = "The cloud's token service failed", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials")]
async fn load_credentials(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(String, String, String)>,
    _query: web::Query<LoadCredentialsQuery>,
) -> ApiResult<HttpResponse> {
    let (prefix, ns, table) = path.into_inner();
    let (wh, ident, loaded, data) = table_for_data(&state, &auth.0, &prefix, &ns, &table).await?;
    let tenant = tenant_name(&state, &auth.0).await?;
    let access = TableAccess {
        warehouse: &wh,
        location: loaded.table.metadata.location(),
        access: data,
        caller: &auth.0,
        tenant_name: &tenant,
        refresh_endpoint: format!(
            "{}/{}/credentials",
            state.public_url,
            table_path(&wh, &ident)
        ),
    };
    let storage_credentials = state
        .vending
        .credentials(&access)
        .await?
        .map(|c| StorageCredential {
            prefix: c.prefix.clone(),
            config: c.config.clone(),
        })
        .into_iter()
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(LoadCredentialsResponse {
            storage_credentials,
        }))
}

/// The keys that sign for a caller on a table: its table-scoped STS session when the warehouse
/// has a role, else the warehouse's own keys (the request itself is checked to stay in the table).
/// Also returns when the keys expire, if they do.
async fn signing_keys(
    state: &AppState,
    caller: &Caller,
    wh: &Warehouse,
    location: &str,
    data: DataAccess,
) -> ApiResult<(SigningKeys, Option<i64>)> {
    let tenant = tenant_name(state, caller).await?;
    let table = TableAccess {
        warehouse: wh,
        location,
        access: data,
        caller,
        tenant_name: &tenant,
        refresh_endpoint: String::new(),
    };
    if let Some(session) = state.vending.table_session(&table).await? {
        let keys = SigningKeys {
            access_key_id: session.access_key_id.clone(),
            secret_access_key: session.secret_access_key.clone(),
            session_token: Some(session.session_token.clone()),
        };
        return Ok((keys, Some(session.expires_at_ms)));
    }
    match wh.s3_keys() {
        Some(k) => Ok((
            SigningKeys {
                access_key_id: k.access_key_id.clone(),
                secret_access_key: k.secret_access_key.clone(),
                session_token: k.session_token.clone(),
            },
            None,
        )),
        None => Err(CatalogError::new(
            ErrorType::ServiceUnavailable,
            format!(
                "warehouse '{}' has neither a role nor keys to sign with",
                wh.record.name
            ),
        )
        .into()),
    }
}

fn forbidden(message: String) -> ApiError {
    CatalogError::new(ErrorType::Forbidden, message).into()
}

fn s3_only(wh: &Warehouse) -> ApiResult<&S3Profile> {
    s3_profile(wh).ok_or_else(|| {
        ApiError::bad_request(format!(
            "warehouse '{}' is not on S3: nothing to presign or sign",
            wh.record.name
        ))
    })
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
    params(("prefix" = String, Path, description = "Warehouse id"), ("namespace" = String, Path, description = "Levels separated by %1F"),
           ("table" = String, Path, description = "Table name"), PresignQuery),
    responses((status = 200, description = "A presigned URL", body = PresignResponse),
              (status = 404, description = "No such table", body = IcebergErrorResponse),
              (status = 503, description = "The cloud's token service failed", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/v1/{prefix}/namespaces/{namespace}/tables/{table}/presign")]
async fn presign_file(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(String, String, String)>,
    query: web::Query<PresignQuery>,
) -> ApiResult<HttpResponse> {
    let (prefix, ns, table) = path.into_inner();
    let method = PresignMethod::parse(query.method.as_deref().unwrap_or("GET"))
        .map_err(ApiError::bad_request)?;
    let (wh, ident, loaded, data) = table_for_data(&state, &auth.0, &prefix, &ns, &table).await?;
    let location = loaded.table.metadata.location();
    if method == PresignMethod::Put && data != DataAccess::ReadWrite {
        state
            .authz
            .require(
                &auth.0,
                &on_table(wh.record.id, &ident),
                Privilege::TableWriteData,
            )
            .await?;
    }
    let now = crate::store::now_ms();
    let mut ttl = state.vending.options().presign_ttl;
    if let StorageProfile::Adls(profile) = &wh.record.storage {
        let file = file_inside(&query.location, location).map_err(forbidden)?;
        let path = crate::vending::adls::blob_path(&wh, profile, &file)?;
        let url = crate::vending::adls::presigned_blob_url(
            &wh,
            profile,
            &path,
            method == PresignMethod::Put,
            ttl,
        )
        .await?;
        return Ok(presigned(
            &auth.0,
            &ident,
            url,
            method,
            now + ttl.as_millis() as i64,
        ));
    }
    if let StorageProfile::Gcs(profile) = &wh.record.storage {
        let file = file_inside(&query.location, location).map_err(forbidden)?;
        let (object, _) = crate::vending::gcs_object(&wh, profile, &file)?;
        let account = wh.gcs_account().ok_or_else(|| {
            CatalogError::new(
                ErrorType::ServiceUnavailable,
                "the warehouse has no service account to sign with",
            )
        })?;
        let method_name = if method == PresignMethod::Put {
            "PUT"
        } else {
            "GET"
        };
        let url = crate::vending::gcs::signed_url(
            account,
            &profile.bucket,
            &object,
            method_name,
            chrono::Utc::now(),
            ttl.as_secs().max(1),
        )
        .await
        .map_err(|e| CatalogError::new(ErrorType::ServiceUnavailable, e))?;
        return Ok(presigned(
            &auth.0,
            &ident,
            url,
            method,
            now + ttl.as_millis() as i64,
        ));
    }
    let profile = s3_only(&wh)?;
    table_prefix(&wh, profile, location)?;
    let key = object_key(&query.location, location).map_err(forbidden)?;
    let (keys, keys_expire) = signing_keys(&state, &auth.0, &wh, location, data).await?;
    if let Some(expires) = keys_expire {
        ttl = ttl.min(std::time::Duration::from_millis(
            (expires - now).max(1) as u64
        ));
    }
    let url = presigned_url(profile, &key, method, &keys, ttl).map_err(ApiError::bad_request)?;
    Ok(presigned(
        &auth.0,
        &ident,
        url,
        method,
        now + ttl.as_millis() as i64,
    ))
}

fn presigned(
    caller: &Caller,
    ident: &TableIdent,
    url: String,
    method: PresignMethod,
    expires_at_ms: i64,
) -> HttpResponse {
    tracing::info!(table = %ident, principal = %caller.name, method = ?method, "presigned a file URL");
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(PresignResponse {
            url,
            method: format!("{method:?}").to_uppercase(),
            expires_at_ms,
        })
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
    params(("prefix" = String, Path, description = "Warehouse id"), ("namespace" = String, Path, description = "Levels separated by %1F"),
           ("table" = String, Path, description = "Table name")),
    request_body = RemoteSignRequest,
    responses((status = 200, description = "Headers to send", body = RemoteSignResult),
              (status = 404, description = "No such table", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/namespaces/{namespace}/tables/{table}/sign")]
async fn sign_request(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(String, String, String)>,
    body: web::Json<RemoteSignRequest>,
) -> ApiResult<HttpResponse> {
    let (prefix, ns, table) = path.into_inner();
    sign_for_table(&state, &auth.0, &prefix, &ns, &table, &body).await
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
    sign_for_table(&state, &auth.0, prefix, ns, table, &body).await
}

async fn sign_for_table(
    state: &AppState,
    caller: &Caller,
    prefix: &str,
    ns: &str,
    table: &str,
    body: &RemoteSignRequest,
) -> ApiResult<HttpResponse> {
    let (wh, ident, loaded, data) = table_for_data(state, caller, prefix, ns, table).await?;
    let profile = s3_only(&wh)?;
    if !profile.remote_signing {
        return Err(forbidden(format!(
            "warehouse '{}' does not offer remote signing",
            wh.record.name
        )));
    }
    if body.provider.as_deref().is_some_and(|p| p != "s3") {
        return Err(ApiError::bad_request("only the s3 provider is signed"));
    }
    if body.region != profile.region {
        return Err(ApiError::bad_request(format!(
            "region '{}' is not the warehouse's region",
            body.region
        )));
    }
    let location = loaded.table.metadata.location();
    let (_, table_key_prefix) = table_prefix(&wh, profile, location)?;
    let request = SignRequest {
        method: &body.method,
        uri: &body.uri,
        headers: &body.headers,
        body: body.body.as_deref(),
    };
    let needs = check_request(profile, &request, &table_key_prefix).map_err(|e| {
        tracing::warn!(table = %ident, principal = %caller.name, error = %e, "refused to sign a request");
        forbidden(e)
    })?;
    if needs == Needs::Write && data != DataAccess::ReadWrite {
        state
            .authz
            .require(
                caller,
                &on_table(wh.record.id, &ident),
                Privilege::TableWriteData,
            )
            .await?;
    }
    let (keys, _) = signing_keys(state, caller, &wh, location, data).await?;
    let (uri, headers) =
        sign_headers(&request, &profile.region, &keys).map_err(ApiError::bad_request)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(RemoteSignResult { uri, headers }))
}
