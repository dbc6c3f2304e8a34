//! Roles, their assignment to principals, and grants of privileges on resources to roles.

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, schema::Schema};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{admin_tenant, audit, not_found};
use crate::api::openapi::{CommonErrors, tagged_union, with_tag};
use crate::api::types::IcebergErrorResponse;
use crate::api::{ApiResult, AppState, Authenticated};
use crate::authz::{Privilege, Target};
use crate::catalog::CatalogError;
use crate::domain::{NamespaceIdent, TableIdent, check_resource_name};
use crate::store::{GrantRecord, GrantResource, RoleRecord, TabularKind, now_ms};

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
            id: r.id,
            tenant_id: r.tenant_id,
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
        warehouse: Uuid,
    },
    Namespace {
        warehouse: Uuid,
        namespace: NamespaceIdent,
    },
    Table {
        warehouse: Uuid,
        table_id: Uuid,
        #[serde(skip_serializing_if = "Option::is_none")]
        table: Option<TableIdent>,
    },
    View {
        warehouse: Uuid,
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
async fn grant_info(state: &AppState, g: GrantRecord) -> ApiResult<GrantInfo> {
    let store = state.catalog.store();
    let name_of = |warehouse: Uuid, id: Uuid, kind: TabularKind| async move {
        let found = store.get_tabular_by_id(warehouse, id).await?;
        Ok::<_, crate::store::StoreError>(found.filter(|o| o.kind == kind).map(|o| o.ident))
    };
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
            table_id: table,
            table: name_of(warehouse, table, TabularKind::Table).await?,
        },
        GrantResource::View { warehouse, view } => GrantedResource::View {
            warehouse,
            view_id: view,
            view: name_of(warehouse, view, TabularKind::View).await?,
        },
        // Rewritten at start; shown as what they name until then.
        GrantResource::TableByName { warehouse, table } => GrantedResource::Table {
            warehouse,
            table_id: Uuid::nil(),
            table: Some(table),
        },
        GrantResource::ViewByName { warehouse, view } => GrantedResource::View {
            warehouse,
            view_id: Uuid::nil(),
            view: Some(view),
        },
    };
    Ok(GrantInfo {
        id: g.id,
        role_id: g.role_id,
        resource,
        privilege: g.privilege,
    })
}

/// The stored form of a grant's resource. A table or view is looked up now and named by its id: the
/// grant then follows that object through renames, and a new object under its name after a drop
/// does not get it.
async fn grant_resource(state: &AppState, target: Target) -> ApiResult<GrantResource> {
    let store = state.catalog.store();
    let object_id = |warehouse: Uuid, ident: TableIdent, kind: TabularKind| async move {
        store
            .get_tabular(warehouse, &ident)
            .await?
            .filter(|o| o.kind == kind)
            .map(|o| o.id)
            .ok_or_else(|| not_found(&format!("{} {ident}", kind.noun())))
    };
    Ok(match target {
        Target::Tenant => GrantResource::Tenant,
        Target::Warehouse { warehouse } => GrantResource::Warehouse { warehouse },
        Target::Namespace {
            warehouse,
            namespace,
        } => GrantResource::Namespace {
            warehouse,
            namespace,
        },
        Target::Table { warehouse, table } => GrantResource::Table {
            warehouse,
            table: object_id(warehouse, table, TabularKind::Table).await?,
        },
        Target::View { warehouse, view } => GrantResource::View {
            warehouse,
            view: object_id(warehouse, view, TabularKind::View).await?,
        },
    })
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

async fn tenant_role(state: &AppState, tenant: Uuid, id: Uuid) -> ApiResult<RoleRecord> {
    let role = state
        .catalog
        .store()
        .get_role(id)
        .await?
        .filter(|r| r.tenant_id == tenant);
    Ok(role.ok_or_else(|| not_found(&format!("role {id}")))?)
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
    path: web::Path<Uuid>,
    body: web::Json<CreateRoleRequest>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    check_resource_name("role name", &body.name)?;
    let role = RoleRecord {
        id: Uuid::now_v7(),
        tenant_id: tenant.id,
        name: body.into_inner().name,
        created_at_ms: now_ms(),
    };
    state.catalog.store().create_role(&role).await?;
    audit(
        &state,
        &auth.0,
        tenant.id,
        "create-role",
        format!("role {}", role.id),
    )
    .await;
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
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let roles = state.catalog.store().list_roles(tenant.id).await?;
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
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    admin_tenant(&state, &auth.0, tenant).await?;
    tenant_role(&state, tenant, id).await?;
    state.catalog.store().delete_role(id).await?;
    state.authz.invalidate();
    audit(&state, &auth.0, tenant, "delete-role", format!("role {id}")).await;
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
    path: web::Path<(Uuid, Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (tenant, role, principal) = path.into_inner();
    admin_tenant(&state, &auth.0, tenant).await?;
    tenant_role(&state, tenant, role).await?;
    let store = state.catalog.store();
    store
        .get_principal(principal)
        .await?
        .filter(|p| p.tenant_id == tenant)
        .ok_or_else(|| not_found(&format!("principal {principal}")))?;
    store.assign_role(principal, role).await?;
    state.authz.invalidate();
    audit(
        &state,
        &auth.0,
        tenant,
        "assign-role",
        format!("role {role} principal {principal}"),
    )
    .await;
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
    path: web::Path<(Uuid, Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (tenant, role, principal) = path.into_inner();
    admin_tenant(&state, &auth.0, tenant).await?;
    tenant_role(&state, tenant, role).await?;
    state.catalog.store().unassign_role(principal, role).await?;
    state.authz.invalidate();
    audit(
        &state,
        &auth.0,
        tenant,
        "unassign-role",
        format!("role {role} principal {principal}"),
    )
    .await;
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
    path: web::Path<Uuid>,
    body: web::Json<CreateGrantRequest>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let body = body.into_inner();
    tenant_role(&state, tenant.id, body.role_id).await?;
    if let Some(id) = body.resource.warehouse() {
        let found = state
            .catalog
            .store()
            .get_warehouse(id)
            .await?
            .filter(|w| w.tenant_id == tenant.id);
        found.ok_or_else(|| not_found(&format!("warehouse {id}")))?;
    }
    match (body.privilege, &body.resource) {
        (Privilege::TenantAdmin, Target::Tenant) => {}
        (Privilege::TenantAdmin, _) => {
            return Err(CatalogError::bad_request("TENANT_ADMIN is granted on the tenant").into());
        }
        (Privilege::WarehouseAdmin, Target::Tenant | Target::Warehouse { .. }) => {}
        (Privilege::WarehouseAdmin, _) => {
            return Err(CatalogError::bad_request(
                "WAREHOUSE_ADMIN is granted on a warehouse or the tenant",
            )
            .into());
        }
        _ => {}
    }
    let grant = GrantRecord {
        id: Uuid::now_v7(),
        tenant_id: tenant.id,
        role_id: body.role_id,
        resource: grant_resource(&state, body.resource).await?,
        privilege: body.privilege,
        created_at_ms: now_ms(),
    };
    state.catalog.store().create_grant(&grant).await?;
    state.authz.invalidate();
    audit(
        &state,
        &auth.0,
        tenant.id,
        "create-grant",
        format!("grant {}", grant.id),
    )
    .await;
    Ok(HttpResponse::Created().json(grant_info(&state, grant).await?))
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
    path: web::Path<Uuid>,
    query: web::Query<GrantQuery>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let grants = state
        .catalog
        .store()
        .list_grants(tenant.id, query.role)
        .await?;
    let mut infos = Vec::with_capacity(grants.len());
    for grant in grants {
        infos.push(grant_info(&state, grant).await?);
    }
    Ok(HttpResponse::Ok().json(GrantList { grants: infos }))
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
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    admin_tenant(&state, &auth.0, tenant).await?;
    if state
        .catalog
        .store()
        .delete_grant(tenant, id)
        .await?
        .is_none()
    {
        return Err(not_found(&format!("grant {id}")).into());
    }
    state.authz.invalidate();
    audit(
        &state,
        &auth.0,
        tenant,
        "delete-grant",
        format!("grant {id}"),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}
