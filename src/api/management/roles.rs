//! Roles, their assignment to principals, and grants of privileges on resources to roles.

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, schema::Schema};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::admin_tenant;
use crate::admin::GrantView;
use crate::api::doc_parts::{CommonErrors, tagged_union, with_tag};
use crate::api::types::IcebergErrorResponse;
use crate::api::{ApiResult, AppState, Authenticated};
use crate::authz::Target;
use crate::domain::ResourceName;
use crate::domain::access::GrantResource;
use crate::domain::access::Privilege;
use crate::domain::{NamespaceIdent, TableIdent};
use crate::domain::{PrincipalId, RoleId};
use crate::domain::{TenantId, WarehouseId};
use crate::store::RoleRecord;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(create_role)
        .service(list_roles)
        .service(delete_role)
        .service(assign_role)
        .service(unassign_role)
        .service(create_grant)
        .service(list_grants)
        .service(delete_grant);
}

/// A role.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleInfo {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
}

impl From<RoleRecord> for RoleInfo {
    fn from(r: RoleRecord) -> Self {
        Self {
            id: r.id.uuid(),
            tenant_id: r.tenant_id.uuid(),
            name: r.name,
        }
    }
}

/// Roles.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleList {
    pub roles: Vec<RoleInfo>,
}

/// A role to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoleRequest {
    #[schema(value_type = crate::api::types::Name)]
    pub name: String,
}

/// A grant of one privilege on one resource to a role.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantInfo {
    pub id: Uuid,
    pub role_id: Uuid,
    #[schema(value_type = GrantedResourceSchema)]
    pub resource: GrantedResource,
    pub privilege: Privilege,
}

/// What a grant is on, in answers: a table or view by id, with its current name (absent once it
/// no longer exists; such a grant reaches nothing).
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GrantedResource {
    Tenant,
    Warehouse {
        warehouse: WarehouseId,
    },
    Namespace {
        warehouse: WarehouseId,
        namespace: NamespaceIdent,
    },
    Table {
        warehouse: WarehouseId,
        table_id: Uuid,
        #[serde(skip_serializing_if = "Option::is_none")]
        table: Option<TableIdent>,
    },
    View {
        warehouse: WarehouseId,
        view_id: Uuid,
        #[serde(skip_serializing_if = "Option::is_none")]
        view: Option<TableIdent>,
    },
}

/// The wire shapes of a grant's resource, one named schema per kind, for the OpenAPI document.
#[allow(dead_code)]
mod resource_schemas {
    use utoipa::ToSchema;
    use uuid::Uuid;

    use crate::api::types::TableIdentifier;

    /// The whole tenant.
    #[derive(ToSchema)]
    pub struct TenantResource {}

    /// A warehouse and everything in it.
    #[derive(ToSchema)]
    pub struct WarehouseResource {
        pub warehouse: Uuid,
    }

    /// A namespace (its levels) and everything in it.
    #[derive(ToSchema)]
    pub struct NamespaceResource {
        pub warehouse: Uuid,
        #[schema(value_type = crate::api::types::Namespace)]
        pub namespace: Vec<String>,
    }

    /// One table.
    #[derive(ToSchema)]
    pub struct TableResource {
        pub warehouse: Uuid,
        pub table: TableIdentifier,
    }

    /// One view.
    #[derive(ToSchema)]
    pub struct ViewResource {
        pub warehouse: Uuid,
        pub view: TableIdentifier,
    }

    /// One table, by id.
    #[derive(ToSchema)]
    pub struct GrantedTableResource {
        pub warehouse: Uuid,
        pub table_id: Uuid,
        /// Its current name; absent once the table no longer exists.
        pub table: Option<TableIdentifier>,
    }

    /// One view, by id.
    #[derive(ToSchema)]
    pub struct GrantedViewResource {
        pub warehouse: Uuid,
        pub view_id: Uuid,
        /// Its current name; absent once the view no longer exists.
        pub view: Option<TableIdentifier>,
    }
}

/// What a grant is on: `kind` says which resource; everything inside it inherits the grant.
pub struct GrantResourceSchema;

impl utoipa::PartialSchema for GrantResourceSchema {
    fn schema() -> RefOr<Schema> {
        tagged_union(
            "kind",
            &[
                ("tenant", "TenantResource"),
                ("warehouse", "WarehouseResource"),
                ("namespace", "NamespaceResource"),
                ("table", "TableResource"),
                ("view", "ViewResource"),
            ],
            "What a grant is on: `kind` says which resource; everything inside it inherits the grant.",
        )
    }
}

impl ToSchema for GrantResourceSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "GrantResource".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        use resource_schemas::*;
        use utoipa::PartialSchema;
        TableResource::schemas(schemas);
        schemas.extend([
            (
                "TenantResource".to_owned(),
                with_tag(
                    "kind",
                    "tenant",
                    TenantResource::schema(),
                    "The whole tenant.",
                ),
            ),
            (
                "WarehouseResource".to_owned(),
                with_tag(
                    "kind",
                    "warehouse",
                    WarehouseResource::schema(),
                    "A warehouse and everything in it.",
                ),
            ),
            (
                "NamespaceResource".to_owned(),
                with_tag(
                    "kind",
                    "namespace",
                    NamespaceResource::schema(),
                    "A namespace (its levels) and everything in it.",
                ),
            ),
            (
                "TableResource".to_owned(),
                with_tag("kind", "table", TableResource::schema(), "One table."),
            ),
            (
                "ViewResource".to_owned(),
                with_tag("kind", "view", ViewResource::schema(), "One view."),
            ),
        ]);
    }
}

/// What a grant is on, in answers: a table or view by id and current name.
pub struct GrantedResourceSchema;

impl utoipa::PartialSchema for GrantedResourceSchema {
    fn schema() -> RefOr<Schema> {
        tagged_union(
            "kind",
            &[
                ("tenant", "TenantResource"),
                ("warehouse", "WarehouseResource"),
                ("namespace", "NamespaceResource"),
                ("table", "GrantedTableResource"),
                ("view", "GrantedViewResource"),
            ],
            "What a grant is on: a table or view by id, with its current name.",
        )
    }
}

impl ToSchema for GrantedResourceSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "GrantedResource".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        use resource_schemas::*;
        use utoipa::PartialSchema;
        GrantResourceSchema::schemas(schemas);
        schemas.extend([
            (
                "GrantedTableResource".to_owned(),
                with_tag(
                    "kind",
                    "table",
                    GrantedTableResource::schema(),
                    "One table, by id; `table` is its current name, absent once it no longer exists.",
                ),
            ),
            (
                "GrantedViewResource".to_owned(),
                with_tag(
                    "kind",
                    "view",
                    GrantedViewResource::schema(),
                    "One view, by id; `view` is its current name, absent once it no longer exists.",
                ),
            ),
        ]);
    }
}

/// A grant as answers show it: its table or view under its current name.
/// A grant as answers show it: its table or view by id, with its current name.
fn grant_info(view: GrantView) -> GrantInfo {
    let GrantView { grant: g, object } = view;
    let resource = match g.resource {
        GrantResource::Tenant => GrantedResource::Tenant,
        GrantResource::Warehouse { warehouse } => GrantedResource::Warehouse { warehouse },
        GrantResource::Namespace {
            warehouse,
            namespace,
        } => GrantedResource::Namespace {
            warehouse,
            namespace,
        },
        GrantResource::Table { warehouse, table } => GrantedResource::Table {
            warehouse,
            table_id: table.uuid(),
            table: object,
        },
        GrantResource::View { warehouse, view } => GrantedResource::View {
            warehouse,
            view_id: view.uuid(),
            view: object,
        },
        // Rewritten at start; shown as what they name until then.
        GrantResource::TableByName { warehouse, .. } => GrantedResource::Table {
            warehouse,
            table_id: Uuid::nil(),
            table: object,
        },
        GrantResource::ViewByName { warehouse, .. } => GrantedResource::View {
            warehouse,
            view_id: Uuid::nil(),
            view: object,
        },
    };
    GrantInfo {
        id: g.id,
        role_id: g.role_id.uuid(),
        resource,
        privilege: g.privilege,
    }
}

/// Grants.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantList {
    pub grants: Vec<GrantInfo>,
}

/// A grant to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrantRequest {
    pub role_id: Uuid,
    #[schema(value_type = GrantResourceSchema)]
    pub resource: Target,
    pub privilege: Privilege,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GrantQuery {
    /// Only the grants of this role.
    role: Option<Uuid>,
}

/// Create a role.
#[utoipa::path(post, path = "/management/v1/tenants/{tenant}/roles", operation_id = "createRole", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id")), request_body = CreateRoleRequest,
    responses((status = 201, description = "Created", body = RoleInfo),
              (status = 409, description = "Name taken", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/management/v1/tenants/{tenant}/roles")]
async fn create_role(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<TenantId>,
    body: web::Json<CreateRoleRequest>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let name = body.into_inner().name;
    let name = ResourceName::new("role name", name)?;
    let role = state.admin.create_role(&auth.0, tenant.id, name).await?;
    Ok(HttpResponse::Created().json(RoleInfo::from(role)))
}

/// List roles.
#[utoipa::path(get, path = "/management/v1/tenants/{tenant}/roles", operation_id = "listRoles", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, description = "Roles", body = RoleList), CommonErrors),
    security(("bearer" = [])))]
#[get("/management/v1/tenants/{tenant}/roles")]
async fn list_roles(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<TenantId>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let roles = state.admin.roles(tenant.id).await?;
    Ok(HttpResponse::Ok().json(RoleList {
        roles: roles.into_iter().map(Into::into).collect(),
    }))
}

/// Delete a role with its grants and assignments.
#[utoipa::path(delete, path = "/management/v1/tenants/{tenant}/roles/{role}", operation_id = "deleteRole", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("role" = Uuid, Path, description = "Role id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such role", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[delete("/management/v1/tenants/{tenant}/roles/{role}")]
async fn delete_role(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(TenantId, RoleId)>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    admin_tenant(&state, &auth.0, tenant).await?;
    state.admin.delete_role(&auth.0, tenant, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Assign a role to a principal.
#[utoipa::path(put, path = "/management/v1/tenants/{tenant}/roles/{role}/principals/{principal}", operation_id = "assignRole", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("role" = Uuid, Path, description = "Role id"),
           ("principal" = Uuid, Path, description = "Principal id")),
    responses((status = 204, description = "Assigned"),
              (status = 404, description = "No such role or principal", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[put("/management/v1/tenants/{tenant}/roles/{role}/principals/{principal}")]
async fn assign_role(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(TenantId, RoleId, PrincipalId)>,
) -> ApiResult<HttpResponse> {
    let (tenant, role, principal) = path.into_inner();
    admin_tenant(&state, &auth.0, tenant).await?;
    state
        .admin
        .assign_role(&auth.0, tenant, role, principal)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Take a role away from a principal.
#[utoipa::path(delete, path = "/management/v1/tenants/{tenant}/roles/{role}/principals/{principal}", operation_id = "unassignRole", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("role" = Uuid, Path, description = "Role id"),
           ("principal" = Uuid, Path, description = "Principal id")),
    responses((status = 204, description = "Unassigned"),
              (status = 404, description = "No such assignment", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[delete("/management/v1/tenants/{tenant}/roles/{role}/principals/{principal}")]
async fn unassign_role(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(TenantId, RoleId, PrincipalId)>,
) -> ApiResult<HttpResponse> {
    let (tenant, role, principal) = path.into_inner();
    admin_tenant(&state, &auth.0, tenant).await?;
    state
        .admin
        .unassign_role(&auth.0, tenant, role, principal)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Grant a privilege on a resource of this tenant to a role.
#[utoipa::path(post, path = "/management/v1/tenants/{tenant}/grants", operation_id = "createGrant", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id")), request_body = CreateGrantRequest,
    responses((status = 201, description = "Granted", body = GrantInfo),
              (status = 404, description = "No such role or warehouse", body = IcebergErrorResponse),
              (status = 409, description = "Already granted", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/management/v1/tenants/{tenant}/grants")]
async fn create_grant(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<TenantId>,
    body: web::Json<CreateGrantRequest>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let body = body.into_inner();
    let view = state
        .admin
        .create_grant(
            &auth.0,
            tenant.id,
            body.role_id.into(),
            body.resource,
            body.privilege,
        )
        .await?;
    Ok(HttpResponse::Created().json(grant_info(view)))
}

/// List grants.
#[utoipa::path(get, path = "/management/v1/tenants/{tenant}/grants", operation_id = "listGrants", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), GrantQuery),
    responses((status = 200, description = "Grants", body = GrantList), CommonErrors),
    security(("bearer" = [])))]
#[get("/management/v1/tenants/{tenant}/grants")]
async fn list_grants(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<TenantId>,
    query: web::Query<GrantQuery>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let grants = state
        .admin
        .grants(tenant.id, query.role.map(Into::into))
        .await?;
    Ok(HttpResponse::Ok().json(GrantList {
        grants: grants.into_iter().map(grant_info).collect(),
    }))
}

/// Revoke a grant.
#[utoipa::path(delete, path = "/management/v1/tenants/{tenant}/grants/{grant}", operation_id = "deleteGrant", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("grant" = Uuid, Path, description = "Grant id")),
    responses((status = 204, description = "Revoked"),
              (status = 404, description = "No such grant", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[delete("/management/v1/tenants/{tenant}/grants/{grant}")]
async fn delete_grant(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(TenantId, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    admin_tenant(&state, &auth.0, tenant).await?;
    state.admin.delete_grant(&auth.0, tenant, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
