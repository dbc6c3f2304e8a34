//! Tenants: created, renamed and deleted by the root principal only.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::visible_tenant;
use crate::api::doc_parts::CommonErrors;
use crate::api::types::IcebergErrorResponse;
use crate::api::{ApiError, ApiResult, AppState, Authenticated};
use crate::catalog::ErrorType;
use crate::domain::ResourceName;
use crate::domain::TenantId;
use crate::identity::Caller;
use crate::store::TenantRecord;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(rotate_signing_key)
        .service(snapshot)
        .service(create_tenant)
        .service(list_tenants)
        .service(get_tenant)
        .service(rename_tenant)
        .service(delete_tenant);
}

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantInfo {
    pub id: Uuid,
    pub name: String,
    pub created_at_ms: i64,
}

impl From<TenantRecord> for TenantInfo {
    fn from(t: TenantRecord) -> Self {
        Self {
            id: t.id.uuid(),
            name: t.name,
            created_at_ms: t.created_at_ms,
        }
    }
}

/// Tenants.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantInfo>,
}

/// A tenant's name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantRequest {
    #[schema(value_type = crate::api::types::Name)]
    pub name: String,
}

fn require_root(caller: &Caller) -> ApiResult<()> {
    if caller.root {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorType::Forbidden,
        "only the root principal manages tenants",
    ))
}

/// Create a tenant.
#[utoipa::path(post, path = "/management/v1/tenants", operation_id = "createTenant", tag = "Management API",
    request_body = TenantRequest,
    responses((status = 201, description = "Created", body = TenantInfo),
              (status = 409, description = "Name taken", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/management/v1/tenants")]
async fn create_tenant(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: web::Json<TenantRequest>,
) -> ApiResult<HttpResponse> {
    require_root(&auth.0)?;
    let tenant = state
        .admin
        .create_tenant(
            &auth.0,
            ResourceName::new("tenant name", body.into_inner().name)?,
        )
        .await?;
    Ok(HttpResponse::Created().json(TenantInfo::from(tenant)))
}

/// List tenants.
#[utoipa::path(get, path = "/management/v1/tenants", operation_id = "listTenants", tag = "Management API",
    responses((status = 200, description = "Tenants", body = TenantList), CommonErrors),
    security(("bearer" = [])))]
#[get("/management/v1/tenants")]
async fn list_tenants(state: web::Data<AppState>, auth: Authenticated) -> ApiResult<HttpResponse> {
    require_root(&auth.0)?;
    let tenants = state.admin.tenants().await?;
    Ok(HttpResponse::Ok().json(TenantList {
        tenants: tenants.into_iter().map(TenantInfo::from).collect(),
    }))
}

/// Get a tenant (root, or a member of it).
#[utoipa::path(get, path = "/management/v1/tenants/{tenant}", operation_id = "getTenant", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, description = "The tenant", body = TenantInfo),
              (status = 404, description = "No such tenant", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/management/v1/tenants/{tenant}")]
async fn get_tenant(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<TenantId>,
) -> ApiResult<HttpResponse> {
    let tenant = visible_tenant(&state, &auth.0, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(TenantInfo::from(tenant)))
}

/// Rename a tenant.
#[utoipa::path(patch, path = "/management/v1/tenants/{tenant}", operation_id = "renameTenant", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id")), request_body = TenantRequest,
    responses((status = 200, description = "Renamed", body = TenantInfo),
              (status = 404, description = "No such tenant", body = IcebergErrorResponse),
              (status = 409, description = "Name taken", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[patch("/management/v1/tenants/{tenant}")]
async fn rename_tenant(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<TenantId>,
    body: web::Json<TenantRequest>,
) -> ApiResult<HttpResponse> {
    require_root(&auth.0)?;
    let id = path.into_inner();
    let name = ResourceName::new("tenant name", body.name.clone())?;
    let tenant = state.admin.rename_tenant(&auth.0, id, &name).await?;
    Ok(HttpResponse::Ok().json(TenantInfo::from(tenant)))
}

/// Delete a tenant that has no warehouses.
#[utoipa::path(delete, path = "/management/v1/tenants/{tenant}", operation_id = "deleteTenant", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such tenant", body = IcebergErrorResponse),
              (status = 409, description = "The tenant still has warehouses", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[delete("/management/v1/tenants/{tenant}")]
async fn delete_tenant(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<TenantId>,
) -> ApiResult<HttpResponse> {
    require_root(&auth.0)?;
    state
        .admin
        .delete_tenant(&auth.0, path.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The new signing key.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    /// Key id of the key that signs new tokens; older keys keep verifying until their tokens expire.
    pub kid: String,
}

/// Rotate the token signing key (root only).
#[utoipa::path(post, path = "/management/v1/signing-keys/rotate", operation_id = "rotateSigningKey", tag = "Management API",
    responses((status = 200, description = "Rotated", body = RotatedKey),
              (status = 429, description = "The last rotation was less than `auth.min_key_rotation_secs` ago; retry after `Retry-After` seconds", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/management/v1/signing-keys/rotate")]
async fn rotate_signing_key(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> ApiResult<HttpResponse> {
    require_root(&auth.0)?;
    let kid = state.admin.rotate_signing_key(&auth.0).await?;
    Ok(HttpResponse::Ok().json(RotatedKey { kid }))
}

/// A consistent snapshot of the whole sled catalog, taken while it serves (root only): what
/// `floe backup` saves and `floe restore` builds a data directory from.
#[utoipa::path(get, path = "/management/v1/snapshot", operation_id = "getSnapshot", tag = "Management API",
    responses((status = 200, description = "The snapshot file", content_type = "application/octet-stream", body = Vec<u8>),
              (status = 406, description = "The catalog is in PostgreSQL: use its own backup tools", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/management/v1/snapshot")]
async fn snapshot(state: web::Data<AppState>, auth: Authenticated) -> ApiResult<HttpResponse> {
    require_root(&auth.0)?;
    let file = state.admin.snapshot(&auth.0).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .body(file))
}
