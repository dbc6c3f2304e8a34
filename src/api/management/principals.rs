//! Principals inside a tenant: created with a client id and a secret shown once; disabled,
//! re-enabled, given a new secret or deleted by tenant admins. A disabled or deleted principal's
//! tokens stop working within the decision cache time (at once on this replica).

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::admin_tenant;
use crate::admin::WithSecret;
use crate::api::doc_parts::CommonErrors;
use crate::api::types::IcebergErrorResponse;
use crate::api::{ApiResult, AppState, Authenticated};
use crate::domain::PrincipalId;
use crate::domain::ResourceName;
use crate::domain::TenantId;
use crate::store::{PrincipalKind, PrincipalRecord};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(create_principal)
        .service(list_principals)
        .service(get_principal)
        .service(set_enabled)
        .service(rotate_secret)
        .service(delete_principal);
}

/// A principal (never with its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct PrincipalInfo {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    #[schema(value_type = PrincipalKindName)]
    pub kind: PrincipalKind,
    pub client_id: String,
    pub disabled: bool,
}

impl From<PrincipalRecord> for PrincipalInfo {
    fn from(p: PrincipalRecord) -> Self {
        Self {
            id: p.id.uuid(),
            tenant_id: p.tenant_id.uuid(),
            name: p.name,
            kind: p.kind,
            client_id: p.client_id,
            disabled: p.disabled,
        }
    }
}

/// Whether a principal is a person or a program.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum PrincipalKindName {
    Human,
    Service,
}

/// `disable` or `enable`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum PrincipalAction {
    Disable,
    Enable,
}

/// Principals.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrincipalList {
    pub principals: Vec<PrincipalInfo>,
}

/// A principal to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePrincipalRequest {
    #[schema(value_type = crate::api::types::Name)]
    pub name: String,
    /// `human` or `service` (default).
    #[schema(value_type = Option<PrincipalKindName>)]
    pub kind: Option<PrincipalKind>,
}

/// Credentials of a principal, shown only in this answer.
// No `Debug`: it holds the secret.
#[derive(Serialize, ToSchema)]
pub struct PrincipalCredentials {
    pub principal: PrincipalInfo,
    pub client_id: String,
    pub client_secret: String,
}

/// The answer holding a principal's new secret.
fn with_secret(created: WithSecret) -> PrincipalCredentials {
    let client_id = created.principal.client_id.clone();
    PrincipalCredentials {
        principal: created.principal.into(),
        client_id,
        client_secret: created.secret,
    }
}

/// Create a principal; its secret is returned once and stored only as a hash.
#[utoipa::path(post, path = "/management/v1/tenants/{tenant}/principals", operation_id = "createPrincipal", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id")), request_body = CreatePrincipalRequest,
    responses((status = 201, description = "Created, with its credentials", body = PrincipalCredentials),
              (status = 404, description = "No such tenant", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/management/v1/tenants/{tenant}/principals")]
async fn create_principal(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<TenantId>,
    body: web::Json<CreatePrincipalRequest>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let body = body.into_inner();
    let kind = body.kind.unwrap_or(PrincipalKind::Service);
    let created = state
        .admin
        .create_principal(
            &auth.0,
            tenant.id,
            ResourceName::new("principal name", body.name)?,
            kind,
        )
        .await?;
    Ok(HttpResponse::Created().json(with_secret(created)))
}

/// List a tenant's principals.
#[utoipa::path(get, path = "/management/v1/tenants/{tenant}/principals", operation_id = "listPrincipals", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, description = "Principals", body = PrincipalList), CommonErrors),
    security(("bearer" = [])))]
#[get("/management/v1/tenants/{tenant}/principals")]
async fn list_principals(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<TenantId>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let principals = state.admin.principals(tenant.id).await?;
    Ok(HttpResponse::Ok().json(PrincipalList {
        principals: principals.into_iter().map(Into::into).collect(),
    }))
}

/// Get a principal.
#[utoipa::path(get, path = "/management/v1/tenants/{tenant}/principals/{principal}", operation_id = "getPrincipal", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("principal" = Uuid, Path, description = "Principal id")),
    responses((status = 200, description = "The principal", body = PrincipalInfo),
              (status = 404, description = "No such principal", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/management/v1/tenants/{tenant}/principals/{principal}")]
async fn get_principal(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(TenantId, PrincipalId)>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    admin_tenant(&state, &auth.0, tenant).await?;
    let principal = state.admin.principal(tenant, id).await?;
    Ok(HttpResponse::Ok().json(PrincipalInfo::from(principal)))
}

/// Disable (`disable`) or re-enable (`enable`) a principal.
#[utoipa::path(post, path = "/management/v1/tenants/{tenant}/principals/{principal}/{action}", operation_id = "setPrincipalEnabled", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("principal" = Uuid, Path, description = "Principal id"),
           ("action" = PrincipalAction, Path, description = "`disable` or `enable`")),
    responses((status = 200, description = "The principal", body = PrincipalInfo),
              (status = 404, description = "No such principal", body = IcebergErrorResponse),
              (status = 409, description = "The root principal cannot be disabled", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/management/v1/tenants/{tenant}/principals/{principal}/{action:enable|disable}")]
async fn set_enabled(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(TenantId, PrincipalId, String)>,
) -> ApiResult<HttpResponse> {
    let (tenant, id, action) = path.into_inner();
    admin_tenant(&state, &auth.0, tenant).await?;
    let enabled = action == "enable";
    let p = state
        .admin
        .set_enabled(&auth.0, tenant, id, enabled)
        .await?;
    Ok(HttpResponse::Ok().json(PrincipalInfo::from(p)))
}

/// Give a principal a new secret; the old one stops working at once for new tokens.
#[utoipa::path(post, path = "/management/v1/tenants/{tenant}/principals/{principal}/rotate-secret", operation_id = "rotatePrincipalSecret", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("principal" = Uuid, Path, description = "Principal id")),
    responses((status = 200, description = "The new credentials", body = PrincipalCredentials),
              (status = 404, description = "No such principal", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/management/v1/tenants/{tenant}/principals/{principal}/rotate-secret")]
async fn rotate_secret(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(TenantId, PrincipalId)>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    admin_tenant(&state, &auth.0, tenant).await?;
    let rotated = state.admin.rotate_secret(&auth.0, tenant, id).await?;
    Ok(HttpResponse::Ok().json(with_secret(rotated)))
}

/// Delete a principal.
#[utoipa::path(delete, path = "/management/v1/tenants/{tenant}/principals/{principal}", operation_id = "deletePrincipal", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("principal" = Uuid, Path, description = "Principal id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such principal", body = IcebergErrorResponse),
              (status = 409, description = "The root principal cannot be deleted", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[delete("/management/v1/tenants/{tenant}/principals/{principal}")]
async fn delete_principal(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(TenantId, PrincipalId)>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    admin_tenant(&state, &auth.0, tenant).await?;
    state.admin.delete_principal(&auth.0, tenant, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
