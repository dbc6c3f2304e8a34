//! The management API under `/management/v1`: tenants (root only), and inside a tenant its
//! warehouses, principals, roles, role assignments and grants (tenant admins), plus `whoami`.
//! Each handler authorizes and calls one [`crate::admin`] use-case, which owns the change.

mod credentials;
mod dropped;
mod principals;
mod roles;
mod tenants;
mod warehouses;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ApiResult, AppState, Authenticated};
use crate::authz::Target;
use crate::domain::TenantId;
use crate::domain::access::Privilege;
use crate::identity::Caller;
use crate::store::TenantRecord;

pub use credentials::*;
pub use dropped::*;
pub use principals::*;
pub use roles::*;
pub use tenants::*;
pub use warehouses::*;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(whoami).service(list_audit);
    tenants::routes(cfg);
    credentials::routes(cfg);
    warehouses::routes(cfg);
    dropped::routes(cfg);
    principals::routes(cfg);
    roles::routes(cfg);
}

use crate::admin::not_found;

/// The tenant at `id` if the caller may see it (root, or a member); other tenants are 404.
async fn visible_tenant(
    state: &AppState,
    caller: &Caller,
    id: TenantId,
) -> ApiResult<TenantRecord> {
    Ok(state.admin.visible_tenant(caller, id).await?)
}

/// The tenant at `id`, when the caller administers it.
async fn admin_tenant(state: &AppState, caller: &Caller, id: TenantId) -> ApiResult<TenantRecord> {
    let tenant = visible_tenant(state, caller, id).await?;
    state
        .authz
        .require(caller, &Target::Tenant, Privilege::TenantAdmin)
        .await?;
    Ok(tenant)
}

/// Audit events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub events: Vec<AuditEventInfo>,
}

/// Something that happened: a management change or an authorization denial.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEvent)]
pub struct AuditEventInfo {
    /// Time-ordered id (UUIDv7).
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub at_ms: i64,
    /// The principal who acted (the nil id: Floe itself, acting on its configuration at start).
    pub actor: Uuid,
    pub action: String,
    pub resource: String,
    /// `ok` or `denied`.
    pub outcome: String,
}

impl From<crate::store::AuditEvent> for AuditEventInfo {
    fn from(e: crate::store::AuditEvent) -> Self {
        Self {
            id: e.id,
            tenant_id: e.tenant_id.uuid(),
            at_ms: e.at_ms,
            actor: e.actor.uuid(),
            action: e.action,
            resource: e.resource,
            outcome: e.outcome,
        }
    }
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At most this many events: 1 to 1000, default 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A tenant's audit events: management changes and authorization denials, newest first.
#[utoipa::path(get, path = "/management/v1/tenants/{tenant}/audit", operation_id = "listAuditEvents", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), AuditQuery),
    responses((status = 200, description = "Events", body = AuditList),
              (status = 404, description = "No such tenant", body = super::types::IcebergErrorResponse)),
    security(("bearer" = [])))]
#[get("/management/v1/tenants/{tenant}/audit")]
async fn list_audit(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<TenantId>,
    query: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let limit = query.limit.unwrap_or(100);
    let events = state.admin.audit_events(tenant.id, limit).await?;
    let events = events.into_iter().map(AuditEventInfo::from).collect();
    Ok(HttpResponse::Ok().json(AuditList { events }))
}

/// Who is calling.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    pub principal_id: Uuid,
    pub name: String,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub root: bool,
    /// Names of the roles assigned to the caller.
    pub roles: Vec<String>,
}

/// The caller's principal, tenant and roles.
#[utoipa::path(get, path = "/management/v1/whoami", operation_id = "whoami", tag = "Management API",
    responses((status = 200, description = "The caller", body = WhoAmI),
              (status = 401, description = "Missing or bad token", body = super::types::IcebergErrorResponse)),
    security(("bearer" = [])))]
#[get("/management/v1/whoami")]
async fn whoami(state: web::Data<AppState>, auth: Authenticated) -> ApiResult<HttpResponse> {
    let me = state.admin.identity(&auth.0).await?;
    Ok(HttpResponse::Ok().json(WhoAmI {
        principal_id: me.principal.id.uuid(),
        name: me.principal.name,
        tenant_id: me.tenant.id.uuid(),
        tenant_name: me.tenant.name,
        root: me.principal.root,
        roles: me.roles,
    }))
}
