//! Warehouses inside a tenant: tenant admins create, update and delete them; anyone holding
//! something in a warehouse can see it. `validate` writes, reads and deletes a probe file.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{admin_tenant, audit, not_found, visible_tenant};
use crate::api::openapi::CommonErrors;
use crate::api::types::IcebergErrorResponse;
use crate::api::{ApiResult, AppState, Authenticated};
use crate::authz::{Privilege, on_warehouse};
use crate::catalog::CatalogError;
use crate::domain::check_resource_name;
use crate::identity::Caller;
use crate::store::{StorageProfile, WarehouseRecord, now_ms};
use crate::warehouse_io::normalize_location;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(create_warehouse)
        .service(list_warehouses)
        .service(get_warehouse)
        .service(update_warehouse)
        .service(delete_warehouse)
        .service(validate_warehouse);
}

/// A warehouse.
#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseInfo {
    /// The Iceberg `prefix` of this warehouse.
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    /// `{"kind": "local", "root": "file:///..."}` or
    /// `{"kind": "s3", "bucket", "key_prefix", "region", "endpoint", "path_style"}`.
    #[schema(value_type = Object)]
    pub storage: StorageProfile,
    /// Name of the storage credential in use, if any (never its value).
    pub credential: Option<String>,
}

impl From<WarehouseRecord> for WarehouseInfo {
    fn from(w: WarehouseRecord) -> Self {
        Self {
            id: w.id,
            tenant_id: w.tenant_id,
            name: w.name,
            storage: w.storage,
            credential: w.credential,
        }
    }
}

/// Warehouses.
#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseList {
    pub warehouses: Vec<WarehouseInfo>,
}

/// Where a new warehouse keeps its files. A local warehouse without `root` is placed in the
/// server's data directory; only the root principal may name a local directory itself.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StorageRequest {
    Local {
        root: Option<String>,
    },
    S3 {
        bucket: String,
        #[serde(default)]
        key_prefix: String,
        region: String,
        endpoint: Option<String>,
        #[serde(default)]
        path_style: bool,
    },
}

/// A warehouse to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWarehouseRequest {
    pub name: String,
    pub storage: StorageRequest,
    /// Name of the tenant's storage credential the server reaches the storage with.
    pub credential: Option<String>,
}

/// Changes to a warehouse.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWarehouseRequest {
    pub name: Option<String>,
    pub storage: Option<StorageRequest>,
    /// Name of the tenant's storage credential to use from now on.
    pub credential: Option<String>,
}

/// One step of a validation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationStep {
    pub step: String,
    pub ok: bool,
    pub detail: Option<String>,
}

/// What validating a warehouse found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationReport {
    pub ok: bool,
    pub steps: Vec<ValidationStep>,
}

async fn check_credential(state: &AppState, tenant: Uuid, name: &Option<String>) -> ApiResult<()> {
    if let Some(name) = name
        && state
            .catalog
            .store()
            .get_storage_credential(tenant, name)
            .await?
            .is_none()
    {
        return Err(not_found(&format!("storage credential '{name}'")).into());
    }
    Ok(())
}

fn storage_profile(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    req: StorageRequest,
) -> ApiResult<StorageProfile> {
    match req {
        StorageRequest::Local { root: None } => {
            let root = format!(
                "{}/{}",
                state.local_warehouse_base.trim_end_matches('/'),
                id.simple()
            );
            Ok(StorageProfile::Local { root })
        }
        StorageRequest::Local { root: Some(root) } => {
            if !caller.root {
                return Err(CatalogError::new(
                    crate::catalog::ErrorType::Forbidden,
                    "only the root principal may place a local warehouse in a directory of its choice; omit 'root'",
                )
                .into());
            }
            let root = normalize_location(&root).map_err(CatalogError::bad_request)?;
            if !root.starts_with("file:///") {
                return Err(CatalogError::bad_request(
                    "a local warehouse root must be file:///absolute/path",
                )
                .into());
            }
            Ok(StorageProfile::Local { root })
        }
        StorageRequest::S3 {
            bucket,
            key_prefix,
            region,
            endpoint,
            path_style,
        } => {
            let check = format!("s3://{bucket}/{}", key_prefix.trim_matches('/'));
            normalize_location(check.trim_end_matches('/')).map_err(CatalogError::bad_request)?;
            Ok(StorageProfile::S3 {
                bucket,
                key_prefix: key_prefix.trim_matches('/').to_owned(),
                region,
                endpoint,
                path_style,
            })
        }
    }
}

/// Create a warehouse.
#[utoipa::path(post, path = "/management/v1/tenants/{tenant}/warehouses", operation_id = "createWarehouse", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id")), request_body = CreateWarehouseRequest,
    responses((status = 201, description = "Created", body = WarehouseInfo),
              (status = 404, description = "No such tenant", body = IcebergErrorResponse),
              (status = 409, description = "Name taken", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/management/v1/tenants/{tenant}/warehouses")]
async fn create_warehouse(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<Uuid>,
    body: web::Json<CreateWarehouseRequest>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let body = body.into_inner();
    check_resource_name("warehouse name", &body.name)?;
    let id = Uuid::now_v7();
    let storage = storage_profile(&state, &auth.0, id, body.storage)?;
    check_credential(&state, tenant.id, &body.credential).await?;
    let record = WarehouseRecord {
        id,
        tenant_id: tenant.id,
        name: body.name,
        storage,
        created_at_ms: now_ms(),
        credential: body.credential,
    };
    state.catalog.store().create_warehouse(&record).await?;
    audit(
        &state,
        &auth.0,
        tenant.id,
        "create-warehouse",
        format!("warehouse {id}"),
    )
    .await;
    Ok(HttpResponse::Created().json(WarehouseInfo::from(record)))
}

/// List the warehouses the caller can see.
#[utoipa::path(get, path = "/management/v1/tenants/{tenant}/warehouses", operation_id = "listWarehouses", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, description = "Warehouses", body = WarehouseList),
              (status = 404, description = "No such tenant", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/management/v1/tenants/{tenant}/warehouses")]
async fn list_warehouses(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let tenant = visible_tenant(&state, &auth.0, path.into_inner()).await?;
    let mut warehouses = Vec::new();
    for wh in state.catalog.store().list_warehouses(tenant.id).await? {
        if state.authz.sees(&auth.0, &on_warehouse(wh.id)).await? {
            warehouses.push(WarehouseInfo::from(wh));
        }
    }
    Ok(HttpResponse::Ok().json(WarehouseList { warehouses }))
}

async fn visible_warehouse(
    state: &AppState,
    caller: &Caller,
    tenant: Uuid,
    id: Uuid,
) -> ApiResult<WarehouseRecord> {
    let tenant = visible_tenant(state, caller, tenant).await?;
    let wh = state
        .catalog
        .store()
        .get_warehouse(id)
        .await?
        .filter(|w| w.tenant_id == tenant.id);
    match wh {
        Some(wh) if state.authz.sees(caller, &on_warehouse(wh.id)).await? => Ok(wh),
        _ => Err(not_found(&format!("warehouse {id}")).into()),
    }
}

/// Get a warehouse.
#[utoipa::path(get, path = "/management/v1/tenants/{tenant}/warehouses/{warehouse}", operation_id = "getWarehouse", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("warehouse" = Uuid, Path, description = "Warehouse id")),
    responses((status = 200, description = "The warehouse", body = WarehouseInfo),
              (status = 404, description = "No such warehouse", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/management/v1/tenants/{tenant}/warehouses/{warehouse}")]
async fn get_warehouse(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    Ok(HttpResponse::Ok().json(WarehouseInfo::from(
        visible_warehouse(&state, &auth.0, tenant, id).await?,
    )))
}

/// Rename a warehouse or change its storage (warehouse admins).
#[utoipa::path(patch, path = "/management/v1/tenants/{tenant}/warehouses/{warehouse}", operation_id = "updateWarehouse", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("warehouse" = Uuid, Path, description = "Warehouse id")),
    request_body = UpdateWarehouseRequest,
    responses((status = 200, description = "Updated", body = WarehouseInfo),
              (status = 404, description = "No such warehouse", body = IcebergErrorResponse),
              (status = 409, description = "Name taken", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[patch("/management/v1/tenants/{tenant}/warehouses/{warehouse}")]
async fn update_warehouse(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<UpdateWarehouseRequest>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    let mut wh = visible_warehouse(&state, &auth.0, tenant, id).await?;
    state
        .authz
        .require(&auth.0, &on_warehouse(id), Privilege::WarehouseAdmin)
        .await?;
    let body = body.into_inner();
    if let Some(name) = body.name {
        check_resource_name("warehouse name", &name)?;
        wh.name = name;
    }
    if let Some(storage) = body.storage {
        wh.storage = storage_profile(&state, &auth.0, id, storage)?;
    }
    if body.credential.is_some() {
        check_credential(&state, tenant, &body.credential).await?;
        wh.credential = body.credential;
    }
    state.catalog.store().update_warehouse(&wh).await?;
    state.catalog.forget_warehouse(id).await;
    audit(
        &state,
        &auth.0,
        tenant,
        "update-warehouse",
        format!("warehouse {id}"),
    )
    .await;
    Ok(HttpResponse::Ok().json(WarehouseInfo::from(wh)))
}

/// Delete a warehouse that has no namespaces.
#[utoipa::path(delete, path = "/management/v1/tenants/{tenant}/warehouses/{warehouse}", operation_id = "deleteWarehouse", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("warehouse" = Uuid, Path, description = "Warehouse id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such warehouse", body = IcebergErrorResponse),
              (status = 409, description = "Not empty", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[delete("/management/v1/tenants/{tenant}/warehouses/{warehouse}")]
async fn delete_warehouse(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    visible_warehouse(&state, &auth.0, tenant, id).await?;
    admin_tenant(&state, &auth.0, tenant).await?;
    state.catalog.store().delete_warehouse(id).await?;
    state.catalog.forget_warehouse(id).await;
    audit(
        &state,
        &auth.0,
        tenant,
        "delete-warehouse",
        format!("warehouse {id}"),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

/// Check that the server reaches the warehouse's storage: write, read back and delete a probe file.
#[utoipa::path(post, path = "/management/v1/tenants/{tenant}/warehouses/{warehouse}/validate", operation_id = "validateWarehouse", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("warehouse" = Uuid, Path, description = "Warehouse id")),
    responses((status = 200, description = "Each step and its outcome", body = ValidationReport),
              (status = 404, description = "No such warehouse", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/management/v1/tenants/{tenant}/warehouses/{warehouse}/validate")]
async fn validate_warehouse(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    visible_warehouse(&state, &auth.0, tenant, id).await?;
    state
        .authz
        .require(&auth.0, &on_warehouse(id), Privilege::WarehouseAdmin)
        .await?;
    let wh = state.catalog.warehouse(&auth.0, &id.to_string()).await?;
    let probe = format!("{}/.floe-validate/{}", wh.root(), Uuid::now_v7());
    let body = Bytes::from_static(b"floe validation probe");
    let mut steps = Vec::new();
    let mut record = |step: &str, result: Result<(), String>| {
        let ok = result.is_ok();
        steps.push(ValidationStep {
            step: step.into(),
            ok,
            detail: result.err(),
        });
        ok
    };
    let wrote = record(
        "write probe",
        wh.io
            .write(&probe, body.clone())
            .await
            .map_err(|e| e.to_string()),
    );
    if wrote {
        let read = wh
            .io
            .read(&probe)
            .await
            .map_err(|e| e.to_string())
            .and_then(|b| {
                if b == body {
                    Ok(())
                } else {
                    Err("read back different bytes".into())
                }
            });
        record("read probe", read);
        record(
            "delete probe",
            wh.io.delete(&probe).await.map_err(|e| e.to_string()),
        );
    }
    let ok = steps.iter().all(|s| s.ok);
    Ok(HttpResponse::Ok().json(ValidationReport { ok, steps }))
}
