//! A warehouse's recycle bin (warehouse admins): list what was dropped, restore one under its
//! name or a new one, purge one now. The catalog owns what each does.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::warehouses::visible_warehouse;
use crate::api::doc_parts::CommonErrors;
use crate::api::types::IcebergErrorResponse;
use crate::api::{ApiError, ApiResult, AppState, Authenticated};
use crate::authz::on_warehouse;
use crate::catalog::Warehouse;
use crate::domain::TabularId;
use crate::domain::TenantId;
use crate::domain::WarehouseId;
use crate::domain::access::Privilege;
use crate::domain::{NamespaceIdent, ObjectName};
use crate::identity::Caller;
use crate::store::{DroppedRecord, TabularKind};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_dropped)
        .service(restore_dropped)
        .service(purge_dropped);
}

/// A dropped table or view.
#[derive(Debug, Serialize, ToSchema)]
pub struct DroppedInfo {
    /// Its id: what restoring and purging name it by (and what its grants name).
    pub id: Uuid,
    /// `table` or `view`.
    pub kind: String,
    pub namespace: Vec<String>,
    pub name: String,
    pub location: String,
    pub metadata_location: String,
    pub dropped_at_ms: i64,
    /// When it leaves the bin unless restored first.
    pub expires_at_ms: i64,
    /// Whether its files are deleted when it leaves.
    pub purge_files: bool,
}

impl From<DroppedRecord> for DroppedInfo {
    fn from(d: DroppedRecord) -> Self {
        Self {
            id: d.tabular.id.uuid(),
            kind: match d.tabular.kind {
                TabularKind::Table => "table",
                TabularKind::View => "view",
            }
            .into(),
            namespace: d.tabular.ident.namespace.parts().to_vec(),
            name: d.tabular.ident.name.as_str().to_owned(),
            location: d.tabular.location,
            metadata_location: d.tabular.metadata_location,
            dropped_at_ms: d.dropped_at_ms,
            expires_at_ms: d.expires_at_ms,
            purge_files: d.purge_files,
        }
    }
}

/// A warehouse's recycle bin.
#[derive(Debug, Serialize, ToSchema)]
pub struct DroppedList {
    pub dropped: Vec<DroppedInfo>,
}

/// Where a restored object goes: the namespace and name it had, unless given.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    pub namespace: Option<Vec<String>>,
    pub name: Option<String>,
}

/// The body of a restore: none (or only whitespace) restores where the object was; anything
/// else must be a [`RestoreRequest`], or the restore is refused with a 400 (a typo never restores
/// under the old name).
fn restore_request(body: &[u8]) -> ApiResult<RestoreRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RestoreRequest::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid restore request: {e}")))
}

/// The restored object's name.
#[derive(Debug, Serialize, ToSchema)]
pub struct Restored {
    pub id: Uuid,
    pub namespace: Vec<String>,
    pub name: String,
}

/// The warehouse, when the caller administers it.
async fn administered(
    state: &AppState,
    caller: &Caller,
    tenant: TenantId,
    id: WarehouseId,
) -> ApiResult<Warehouse> {
    visible_warehouse(state, caller, tenant, id).await?;
    state
        .authz
        .require(caller, &on_warehouse(id), Privilege::WarehouseAdmin)
        .await?;
    Ok(state.catalog.warehouse(caller, &id.to_string()).await?)
}

/// List the warehouse's dropped tables and views, oldest drop first.
#[utoipa::path(get, path = "/management/v1/tenants/{tenant}/warehouses/{warehouse}/dropped", operation_id = "listDropped", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("warehouse" = Uuid, Path, description = "Warehouse id")),
    responses((status = 200, description = "The recycle bin", body = DroppedList),
              (status = 404, description = "No such warehouse", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/management/v1/tenants/{tenant}/warehouses/{warehouse}/dropped")]
async fn list_dropped(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(TenantId, WarehouseId)>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    let wh = administered(&state, &auth.0, tenant, id).await?;
    let dropped = state.catalog.dropped(&wh).await?;
    Ok(HttpResponse::Ok().json(DroppedList {
        dropped: dropped.into_iter().map(DroppedInfo::from).collect(),
    }))
}

/// Restore a dropped table or view with its metadata and grants, under its name or the one given.
#[utoipa::path(post, path = "/management/v1/tenants/{tenant}/warehouses/{warehouse}/dropped/{id}/restore", operation_id = "restoreDropped", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("warehouse" = Uuid, Path, description = "Warehouse id"),
           ("id" = Uuid, Path, description = "The dropped object's id")),
    request_body(content = RestoreRequest, description = "Optional namespace and name", content_type = "application/json"),
    responses((status = 200, description = "Restored", body = Restored),
              (status = 404, description = "No such dropped object, warehouse or namespace", body = IcebergErrorResponse),
              (status = 409, description = "The name is taken", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/management/v1/tenants/{tenant}/warehouses/{warehouse}/dropped/{id}/restore")]
async fn restore_dropped(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(TenantId, WarehouseId, TabularId)>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let (tenant, warehouse, id) = path.into_inner();
    let body = restore_request(&body)?;
    let wh = administered(&state, &auth.0, tenant, warehouse).await?;
    let namespace = body.namespace.map(NamespaceIdent::new).transpose()?;
    let name = body.name.map(ObjectName::new).transpose()?;
    let restored = state.catalog.restore(&wh, id, namespace, name).await?;
    Ok(HttpResponse::Ok().json(Restored {
        id: restored.id.uuid(),
        namespace: restored.ident.namespace.parts().to_vec(),
        name: restored.ident.name.as_str().to_owned(),
    }))
}

/// Purge a dropped table or view now: its files are deleted and it leaves the bin shortly.
#[utoipa::path(delete, path = "/management/v1/tenants/{tenant}/warehouses/{warehouse}/dropped/{id}", operation_id = "purgeDropped", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("warehouse" = Uuid, Path, description = "Warehouse id"),
           ("id" = Uuid, Path, description = "The dropped object's id")),
    responses((status = 202, description = "The purge is queued", body = DroppedInfo),
              (status = 404, description = "No such dropped object or warehouse", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[delete("/management/v1/tenants/{tenant}/warehouses/{warehouse}/dropped/{id}")]
async fn purge_dropped(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(TenantId, WarehouseId, TabularId)>,
) -> ApiResult<HttpResponse> {
    let (tenant, warehouse, id) = path.into_inner();
    let wh = administered(&state, &auth.0, tenant, warehouse).await?;
    let dropped = state.catalog.purge_dropped(&wh, id).await?;
    Ok(HttpResponse::Accepted().json(DroppedInfo::from(dropped)))
}
