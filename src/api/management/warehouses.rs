//! Warehouses inside a tenant: tenant admins create, update and delete them; anyone holding
//! something in a warehouse can see it. `validate` writes, reads and deletes a probe file.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use uuid::Uuid;

use super::{admin_tenant, audit, not_found, visible_tenant};
use crate::api::openapi::{CommonErrors, tagged_union, with_tag};
use crate::api::types::IcebergErrorResponse;
use crate::api::{ApiResult, AppState, Authenticated};
use crate::authz::{Privilege, on_warehouse};
use crate::catalog::CatalogError;
use crate::domain::{CredentialKind, check_resource_name};
use crate::identity::Caller;
use crate::store::{
    AdlsProfile, GcsProfile, S3Profile, S3Vending, StorageProfile, WarehouseRecord, now_ms,
};
use crate::vending::validate::ValidationReport;
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
    /// `{"kind": "local", "root": "file:///..."}` or `{"kind": "s3", "bucket", "key_prefix",
    /// "region", "endpoint", "path_style", "read_role_arn", ...}` (see `S3Profile`).
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
}

/// The kind of the named storage credential (`None` without a name); 404 when it does not exist.
async fn credential_kind(
    state: &AppState,
    tenant: Uuid,
    name: &Option<String>,
) -> ApiResult<Option<CredentialKind>> {
    let Some(name) = name else {
        return Ok(None);
    };
    match state
        .catalog
        .store()
        .get_storage_credential(tenant, name)
        .await?
    {
        Some(c) => Ok(Some(c.kind)),
        None => Err(not_found(&format!("storage credential '{name}'")).into()),
    }
}

/// Checks that a profile's root is a usable location (no `..`, empty segments or odd characters).
fn check_root(profile: &StorageProfile) -> Result<(), CatalogError> {
    normalize_location(&profile.root_location())
        .map(|_| ())
        .map_err(CatalogError::bad_request)
}

/// Checks that a storage profile's credential is of the kind its storage needs.
fn check_kind(kind: Option<CredentialKind>, wanted: CredentialKind) -> Result<bool, CatalogError> {
    match kind {
        Some(k) if k != wanted => Err(CatalogError::bad_request(format!(
            "this storage needs a {wanted} credential, not {k}"
        ))),
        k => Ok(k.is_some()),
    }
}

fn storage_profile(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    req: StorageRequest,
    credential_kind: Option<CredentialKind>,
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
        StorageRequest::S3(mut s3) => {
            s3.key_prefix = s3.key_prefix.trim_matches('/').to_owned();
            check_root(&StorageProfile::S3(s3.clone()))?;
            let has_credential = check_kind(credential_kind, CredentialKind::S3AccessKey)?;
            crate::vending::check_s3_profile(&s3, has_credential)
                .map_err(CatalogError::bad_request)?;
            Ok(StorageProfile::S3(s3))
        }
        StorageRequest::Adls(mut adls) => {
            adls.key_prefix = adls.key_prefix.trim_matches('/').to_owned();
            check_root(&StorageProfile::Adls(adls.clone()))?;
            let has_credential = match credential_kind {
                Some(CredentialKind::AzureClientSecret) => true,
                kind => check_kind(kind, CredentialKind::AzureSharedKey)?,
            };
            crate::vending::adls::check_adls_profile(&adls, has_credential)
                .map_err(CatalogError::bad_request)?;
            Ok(StorageProfile::Adls(adls))
        }
        StorageRequest::Gcs(mut gcs) => {
            gcs.key_prefix = gcs.key_prefix.trim_matches('/').to_owned();
            check_root(&StorageProfile::Gcs(gcs.clone()))?;
            let has_credential = check_kind(credential_kind, CredentialKind::GcsServiceAccount)?;
            crate::vending::gcs::check_gcs_profile(&gcs, has_credential)
                .map_err(CatalogError::bad_request)?;
            Ok(StorageProfile::Gcs(gcs))
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
    let kind = credential_kind(&state, tenant.id, &body.credential).await?;
    let storage = storage_profile(&state, &auth.0, id, body.storage, kind)?;
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
    if body.credential.is_some() {
        wh.credential = body.credential;
    }
    let kind = credential_kind(&state, tenant, &wh.credential).await?;
    if let Some(storage) = body.storage {
        wh.storage = storage_profile(&state, &auth.0, id, storage, kind)?;
    } else if let Some(kind) = kind {
        // A new credential must still fit the storage the warehouse already has.
        let fits: &[CredentialKind] = match &wh.storage {
            StorageProfile::Local { .. } => &[],
            StorageProfile::S3(_) => &[CredentialKind::S3AccessKey],
            StorageProfile::Adls(_) => &[
                CredentialKind::AzureSharedKey,
                CredentialKind::AzureClientSecret,
            ],
            StorageProfile::Gcs(_) => &[CredentialKind::GcsServiceAccount],
        };
        if !fits.contains(&kind) {
            return Err(CatalogError::bad_request(format!(
                "a {kind} credential does not fit this warehouse's storage"
            ))
            .into());
        }
    }
    state.catalog.store().update_warehouse(&wh).await?;
    state.catalog.forget_warehouse(id).await;
    state.vending.forget_sessions();
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
    let tenant = state.catalog.tenant_name(auth.0.tenant_id).await?;
    let report = state.vending.validate(&wh, &auth.0, &tenant).await;
    Ok(HttpResponse::Ok().json(report))
}
