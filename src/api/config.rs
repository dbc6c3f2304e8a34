//! `GET /v1/config`: which warehouse (`prefix`) a client talks to and which endpoints exist.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::types::{CatalogConfig, IcebergErrorResponse};
use super::{ApiResult, AppState, auth};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(get_config);
}

/// Every catalog endpoint this server serves, in the spec's `<VERB> <path>` form.
pub const ENDPOINTS: &[&str] = &[
    "GET /v1/{prefix}/namespaces",
    "POST /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}",
    "HEAD /v1/{prefix}/namespaces/{namespace}",
    "DELETE /v1/{prefix}/namespaces/{namespace}",
    "POST /v1/{prefix}/namespaces/{namespace}/properties",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "POST /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/register",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan-id}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan-id}",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/tasks",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/sign",
    "POST /v1/{prefix}/tables/rename",
    "POST /v1/{prefix}/transactions/commit",
    "GET /v1/{prefix}/namespaces/{namespace}/views",
    "POST /v1/{prefix}/namespaces/{namespace}/views",
    "GET /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "POST /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "POST /v1/{prefix}/views/rename",
    "POST /v1/{prefix}/namespaces/{namespace}/register-view",
];

#[derive(Debug, Deserialize, IntoParams)]
pub struct ConfigQuery {
    /// Warehouse name in the caller's tenant; optional when the tenant has exactly one.
    warehouse: Option<String>,
}

/// Catalog configuration for the caller's warehouse.
#[utoipa::path(
    get, path = "/v1/config", operation_id = "getConfig", tag = "Configuration API",
    params(ConfigQuery),
    responses(
        (status = 200, description = "Server-specified configuration", body = CatalogConfig),
        (status = 400, description = "Several warehouses and none named", body = IcebergErrorResponse),
        (status = 401, description = "Missing or bad token", body = IcebergErrorResponse),
        (status = 404, description = "No such warehouse", body = IcebergErrorResponse),
    ),
    security(("bearer" = []))
)]
#[get("/v1/config")]
async fn get_config(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ConfigQuery>,
) -> ApiResult<HttpResponse> {
    let caller = auth::authenticate(&req).await?;
    let wh = state
        .catalog
        .warehouse_by_name(&caller, query.warehouse.as_deref())
        .await?;
    // A warehouse the caller holds nothing in is reported as missing.
    if !state
        .authz
        .sees(&caller, &crate::authz::on_warehouse(wh.id))
        .await?
    {
        let name = query.warehouse.as_deref().unwrap_or_default();
        return Err(super::ApiError::new(
            crate::catalog::ErrorType::NoSuchWarehouse,
            format!("warehouse '{name}' does not exist"),
        ));
    }
    let mut overrides = BTreeMap::from([("prefix".to_string(), wh.id.to_string())]);
    overrides.extend(crate::storage::client_config(&wh.storage));
    // PyIceberg reads where to plan only from here; a table's own property is in its load answer.
    if let Some(mode) = wh.scan_planning_mode {
        overrides.insert(
            crate::table_answers::SCAN_PLANNING_MODE.to_string(),
            mode.as_str().to_string(),
        );
    }
    // Iceberg Java sends `X-Iceberg-Access-Delegation` only when told to; PyIceberg always does.
    let defaults = BTreeMap::from([
        ("warehouse-name".to_string(), wh.name.clone()),
        (
            "header.X-Iceberg-Access-Delegation".to_string(),
            "vended-credentials".to_string(),
        ),
    ]);
    Ok(HttpResponse::Ok().json(CatalogConfig {
        defaults,
        overrides,
        endpoints: ENDPOINTS.iter().map(|s| s.to_string()).collect(),
        idempotency_key_lifetime: format!("PT{}S", state.idempotency.lifetime_secs()),
    }))
}
