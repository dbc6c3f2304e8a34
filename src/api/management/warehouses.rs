//! Warehouses inside a tenant: tenant admins create, update and delete them; anyone holding
//! something in a warehouse can see it. `validate` writes, reads and deletes a probe file.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use uuid::Uuid;

use super::{admin_tenant, not_found, visible_tenant};
use crate::admin::{NewStorage, WarehouseChanges};
use crate::api::doc_parts::{CommonErrors, tagged_union, with_tag};
use crate::api::types::IcebergErrorResponse;
use crate::api::{ApiResult, AppState, Authenticated};
use crate::authz::on_warehouse;
use crate::domain::TenantId;
use crate::domain::WarehouseId;
use crate::domain::access::Privilege;
use crate::domain::{ResourceName, ScanPlanningMode};
use crate::identity::Caller;
use crate::storage::validation::ValidationReport;
use crate::storage::{AdlsProfile, GcsProfile, S3Profile, S3Vending, StorageProfile};
use crate::store::WarehouseRecord;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(create_warehouse)
        .service(list_warehouses)
        .service(get_warehouse)
        .service(update_warehouse)
        .service(delete_warehouse)
        .service(validate_warehouse)
        .service(warehouse_health);
}

/// A warehouse.
#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseInfo {
    /// The Iceberg `prefix` of this warehouse.
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    /// `{"kind": "local", "root": "file:///..."}` or `{"kind": "s3", "bucket", "key_prefix",
    /// "region", "endpoint", "path_style", "read_role_arn", ...}` (see `S3Profile`).
    #[schema(value_type = Object)]
    pub storage: StorageProfile,
    /// Name of the storage credential in use, if any (never its value).
    pub credential: Option<String>,
    /// Where engines plan scans of its tables, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_planning_mode: Option<ScanPlanningMode>,
}

impl From<WarehouseRecord> for WarehouseInfo {
    fn from(w: WarehouseRecord) -> Self {
        Self {
            id: w.id.uuid(),
            tenant_id: w.tenant_id.uuid(),
            name: w.name,
            storage: w.storage,
            credential: w.credential,
            scan_planning_mode: w.scan_planning_mode,
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
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
// Built once per warehouse change and kept behind an `Arc`: size does not matter here.
#[allow(clippy::large_enum_variant)]
pub enum StorageRequest {
    Local {
        root: Option<String>,
    },
    /// An S3 bucket; see docs/vending.md ("Credential vending on S3") for every setting.
    S3(S3Profile),
    /// An Azure container; see docs/vending.md ("Credential vending on ADLS").
    Adls(AdlsProfile),
    /// A Google Cloud Storage bucket; see docs/vending.md ("Credential vending on GCS").
    Gcs(GcsProfile),
}

// Written by hand: the derived schema nests the S3 variant in `allOf`, which client generators
// cannot read inside a `oneOf`. Here each variant is one named plain object with its `kind`.
impl utoipa::PartialSchema for StorageRequest {
    fn schema() -> RefOr<Schema> {
        tagged_union(
            "kind",
            &[
                ("local", "LocalStorage"),
                ("s3", "S3Storage"),
                ("adls", "AdlsStorage"),
                ("gcs", "GcsStorage"),
            ],
            "Where a new warehouse keeps its files; `kind` says which storage.",
        )
    }
}

impl ToSchema for StorageRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        let local = ObjectBuilder::new()
            .property(
                "root",
                ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                        Type::String,
                        Type::Null,
                    ]))
                    .description(Some("file:///absolute/path (root principal only)")),
            )
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ));
        schemas.extend([
            (
                S3Vending::name().into(),
                <S3Vending as utoipa::PartialSchema>::schema(),
            ),
            (
                "LocalStorage".into(),
                with_tag(
                    "kind",
                    "local",
                    Schema::Object(local.build()).into(),
                    "A directory on the server's disk",
                ),
            ),
            (
                "S3Storage".into(),
                with_tag(
                    "kind",
                    "s3",
                    <S3Profile as utoipa::PartialSchema>::schema(),
                    "An S3 bucket (docs/vending.md: \"Credential vending on S3\")",
                ),
            ),
            (
                "AdlsStorage".into(),
                with_tag(
                    "kind",
                    "adls",
                    <AdlsProfile as utoipa::PartialSchema>::schema(),
                    "An Azure container (docs/vending.md: \"Credential vending on ADLS\")",
                ),
            ),
            (
                "GcsStorage".into(),
                with_tag(
                    "kind",
                    "gcs",
                    <GcsProfile as utoipa::PartialSchema>::schema(),
                    "A GCS bucket (docs/vending.md: \"Credential vending on GCS\")",
                ),
            ),
        ]);
    }
}

/// A warehouse to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWarehouseRequest {
    #[schema(value_type = crate::api::types::Name)]
    pub name: String,
    pub storage: StorageRequest,
    /// Name of the tenant's storage credential the server reaches the storage with.
    pub credential: Option<String>,
    /// Where engines plan scans of its tables (`/v1/config` and load-table say so); a table's
    /// `scan-planning-mode` property wins. Unset: as each engine chooses.
    pub scan_planning_mode: Option<ScanPlanningMode>,
}

/// Changes to a warehouse.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWarehouseRequest {
    #[schema(value_type = Option<crate::api::types::Name>)]
    pub name: Option<String>,
    pub storage: Option<StorageRequest>,
    /// Name of the tenant's storage credential to use from now on.
    pub credential: Option<String>,
    /// Where engines plan scans of its tables; `null` unsets it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<ScanPlanningMode>)]
    pub scan_planning_mode: Option<Option<ScanPlanningMode>>,
}

/// A field that may be sent as `null` (to unset) or left out (to keep).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl From<StorageRequest> for NewStorage {
    fn from(request: StorageRequest) -> Self {
        match request {
            StorageRequest::Local { root } => NewStorage::Local { root },
            StorageRequest::S3(p) => NewStorage::Profile(StorageProfile::S3(p)),
            StorageRequest::Adls(p) => NewStorage::Profile(StorageProfile::Adls(p)),
            StorageRequest::Gcs(p) => NewStorage::Profile(StorageProfile::Gcs(p)),
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
    path: web::Path<TenantId>,
    body: web::Json<CreateWarehouseRequest>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let body = body.into_inner();
    let record = state
        .admin
        .create_warehouse(
            &auth.0,
            tenant.id,
            ResourceName::new("warehouse name", body.name)?,
            body.storage.into(),
            body.credential,
            body.scan_planning_mode,
        )
        .await?;
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
    path: web::Path<TenantId>,
) -> ApiResult<HttpResponse> {
    let tenant = visible_tenant(&state, &auth.0, path.into_inner()).await?;
    let mut warehouses = Vec::new();
    for wh in state.admin.warehouses(tenant.id).await? {
        if state.authz.sees(&auth.0, &on_warehouse(wh.id)).await? {
            warehouses.push(WarehouseInfo::from(wh));
        }
    }
    Ok(HttpResponse::Ok().json(WarehouseList { warehouses }))
}

/// The tenant's warehouse `id` if the caller sees it; 404 otherwise.
pub(super) async fn visible_warehouse(
    state: &AppState,
    caller: &Caller,
    tenant: TenantId,
    id: WarehouseId,
) -> ApiResult<WarehouseRecord> {
    let tenant = visible_tenant(state, caller, tenant).await?;
    let wh = state.admin.warehouse(tenant.id, id).await?;
    if !state.authz.sees(caller, &on_warehouse(wh.id)).await? {
        return Err(not_found(&format!("warehouse {id}")).into());
    }
    Ok(wh)
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
    path: web::Path<(TenantId, WarehouseId)>,
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
    path: web::Path<(TenantId, WarehouseId)>,
    body: web::Json<UpdateWarehouseRequest>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    visible_warehouse(&state, &auth.0, tenant, id).await?;
    state
        .authz
        .require(&auth.0, &on_warehouse(id), Privilege::WarehouseAdmin)
        .await?;
    let body = body.into_inner();
    let changes = WarehouseChanges {
        name: body
            .name
            .map(|n| ResourceName::new("warehouse name", n))
            .transpose()?,
        storage: body.storage.map(NewStorage::from),
        credential: body.credential,
        scan_planning_mode: body.scan_planning_mode,
    };
    let wh = state
        .admin
        .update_warehouse(&auth.0, tenant, id, changes)
        .await?;
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
    path: web::Path<(TenantId, WarehouseId)>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    visible_warehouse(&state, &auth.0, tenant, id).await?;
    admin_tenant(&state, &auth.0, tenant).await?;
    state.admin.delete_warehouse(&auth.0, tenant, id).await?;
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
    path: web::Path<(TenantId, WarehouseId)>,
) -> ApiResult<HttpResponse> {
    let (tenant, id) = path.into_inner();
    visible_warehouse(&state, &auth.0, tenant, id).await?;
    state
        .authz
        .require(&auth.0, &on_warehouse(id), Privilege::WarehouseAdmin)
        .await?;
    let wh = state.catalog.warehouse(&auth.0, &id.to_string()).await?;
    let tenant = state.catalog.tenant_name(auth.0.tenant_id).await?;
    let report = state.vending.validate(wh.storage(), &auth.0, &tenant).await;
    Ok(HttpResponse::Ok().json(report))
}

/// What this replica's recent calls said about reaching one upstream of a warehouse.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamHealth {
    /// From the latest call: `reachable`, `unavailable` (trouble worth retrying), `refused` (an
    /// operator must fix the warehouse), or `unknown` (no call since this replica started).
    pub state: crate::reachability::State,
    #[serde(flatten)]
    pub record: crate::reachability::UpstreamRecord,
}

impl From<crate::reachability::UpstreamRecord> for UpstreamHealth {
    fn from(record: crate::reachability::UpstreamRecord) -> Self {
        Self {
            state: record.state(),
            record,
        }
    }
}

/// One warehouse's storage and token service, as recent calls found them.
#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseHealth {
    pub id: Uuid,
    pub name: String,
    pub storage: UpstreamHealth,
    /// STS, Google's token exchange or Entra ID: what vending asks for table-scoped credentials
    /// (`unknown` where the warehouse vends without one).
    pub token_service: UpstreamHealth,
}

/// The readiness detail of a tenant's warehouses.
#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseHealthList {
    pub warehouses: Vec<WarehouseHealth>,
}

/// The readiness detail: each warehouse's storage and token-service reachability, from this
/// replica's recent calls (it makes none to answer). Tenant admins only.
#[utoipa::path(get, path = "/management/v1/tenants/{tenant}/health", operation_id = "getWarehouseHealth", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, description = "Each warehouse's reachability", body = WarehouseHealthList),
              (status = 404, description = "No such tenant", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/management/v1/tenants/{tenant}/health")]
async fn warehouse_health(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<TenantId>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let warehouses = state
        .admin
        .warehouse_reachability(tenant.id)
        .await?
        .into_iter()
        .map(|r| WarehouseHealth {
            id: r.warehouse.id.uuid(),
            name: r.warehouse.name,
            storage: r.storage.into(),
            token_service: r.token_service.into(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(WarehouseHealthList { warehouses }))
}
