//! Named storage credentials of a tenant. Values are write-only: given at creation or rotation,
//! sealed (or kept as a reference), and never returned by any API.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{admin_tenant, audit};
use crate::api::openapi::CommonErrors;
use crate::api::types::IcebergErrorResponse;
use crate::api::{ApiResult, AppState, Authenticated};
use crate::catalog::CatalogError;
use crate::domain::check_resource_name;
use crate::identity::storage_credentials::{check_fields, check_kind};
use crate::store::{CredentialValue, StorageCredentialRecord, now_ms};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(create_credential)
        .service(list_credentials)
        .service(rotate_credential)
        .service(delete_credential);
}

/// A storage credential's value: its fields, or a reference resolved at each use.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialRequest {
    /// `s3-access-key`.
    pub kind: String,
    /// The fields (`access_key_id`, `secret_access_key`); sealed under the master key.
    pub value: Option<BTreeMap<String, String>>,
    /// Instead of a value: `env:NAME` (allow-listed names only) or `file:/path`, holding the fields as JSON.
    pub reference: Option<String>,
}

/// A storage credential to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredentialRequest {
    pub name: String,
    #[serde(flatten)]
    pub credential: CredentialRequest,
}

/// A storage credential, by name and kind only.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialInfo {
    pub name: String,
    pub kind: String,
}

/// Storage credentials.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialList {
    pub credentials: Vec<CredentialInfo>,
}

fn value_of(
    state: &AppState,
    tenant: Uuid,
    name: &str,
    req: CredentialRequest,
) -> ApiResult<(String, CredentialValue)> {
    let value = match (req.value, req.reference) {
        (Some(fields), None) => {
            check_fields(&req.kind, &fields).map_err(CatalogError::bad_request)?;
            state.credentials.seal(tenant, name, &fields)
        }
        (None, Some(reference)) => {
            check_kind(&req.kind).map_err(CatalogError::bad_request)?;
            state
                .credentials
                .check_reference(&reference)
                .map_err(CatalogError::bad_request)?;
            CredentialValue::Reference { reference }
        }
        _ => {
            return Err(
                CatalogError::bad_request("give exactly one of 'value' and 'reference'").into(),
            );
        }
    };
    Ok((req.kind, value))
}

/// Create a named storage credential.
#[utoipa::path(post, path = "/management/v1/tenants/{tenant}/storage-credentials", operation_id = "createStorageCredential", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id")), request_body = CreateCredentialRequest,
    responses((status = 201, description = "Created (its value is never returned)", body = CredentialInfo),
              (status = 409, description = "Name taken", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/management/v1/tenants/{tenant}/storage-credentials")]
async fn create_credential(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<Uuid>,
    body: web::Json<CreateCredentialRequest>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let body = body.into_inner();
    check_resource_name("credential name", &body.name)?;
    let (kind, value) = value_of(&state, tenant.id, &body.name, body.credential)?;
    let record = StorageCredentialRecord {
        id: Uuid::now_v7(),
        tenant_id: tenant.id,
        name: body.name,
        kind,
        value,
        created_at_ms: now_ms(),
    };
    state
        .catalog
        .store()
        .put_storage_credential(&record, false)
        .await?;
    audit(
        &state,
        &auth.0,
        tenant.id,
        "create-storage-credential",
        format!("storage credential {}", record.name),
    )
    .await;
    Ok(HttpResponse::Created().json(CredentialInfo {
        name: record.name,
        kind: record.kind,
    }))
}

/// List storage credentials (names and kinds only).
#[utoipa::path(get, path = "/management/v1/tenants/{tenant}/storage-credentials", operation_id = "listStorageCredentials", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, description = "Credentials", body = CredentialList), CommonErrors),
    security(("bearer" = [])))]
#[get("/management/v1/tenants/{tenant}/storage-credentials")]
async fn list_credentials(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let credentials = state
        .catalog
        .store()
        .list_storage_credentials(tenant.id)
        .await?;
    Ok(HttpResponse::Ok().json(CredentialList {
        credentials: credentials
            .into_iter()
            .map(|c| CredentialInfo {
                name: c.name,
                kind: c.kind,
            })
            .collect(),
    }))
}

/// Replace a credential's value (rotation); warehouses using it pick up the new value at once.
#[utoipa::path(put, path = "/management/v1/tenants/{tenant}/storage-credentials/{name}", operation_id = "rotateStorageCredential", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("name" = String, Path, description = "Credential name")),
    request_body = CredentialRequest,
    responses((status = 200, description = "Rotated", body = CredentialInfo),
              (status = 404, description = "No such credential", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[put("/management/v1/tenants/{tenant}/storage-credentials/{name}")]
async fn rotate_credential(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(Uuid, String)>,
    body: web::Json<CredentialRequest>,
) -> ApiResult<HttpResponse> {
    let (tenant, name) = path.into_inner();
    let tenant = admin_tenant(&state, &auth.0, tenant).await?;
    let (kind, value) = value_of(&state, tenant.id, &name, body.into_inner())?;
    let record = StorageCredentialRecord {
        id: Uuid::now_v7(),
        tenant_id: tenant.id,
        name: name.clone(),
        kind,
        value,
        created_at_ms: now_ms(),
    };
    state
        .catalog
        .store()
        .put_storage_credential(&record, true)
        .await?;
    state.catalog.forget_credentials_of(tenant.id).await?;
    audit(
        &state,
        &auth.0,
        tenant.id,
        "rotate-storage-credential",
        format!("storage credential {name}"),
    )
    .await;
    Ok(HttpResponse::Ok().json(CredentialInfo {
        name,
        kind: record.kind,
    }))
}

/// Delete a credential no warehouse uses.
#[utoipa::path(delete, path = "/management/v1/tenants/{tenant}/storage-credentials/{name}", operation_id = "deleteStorageCredential", tag = "Management API",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("name" = String, Path, description = "Credential name")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such credential", body = IcebergErrorResponse),
              (status = 409, description = "A warehouse uses it", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[delete("/management/v1/tenants/{tenant}/storage-credentials/{name}")]
async fn delete_credential(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(Uuid, String)>,
) -> ApiResult<HttpResponse> {
    let (tenant, name) = path.into_inner();
    let tenant = admin_tenant(&state, &auth.0, tenant).await?;
    state
        .catalog
        .store()
        .delete_storage_credential(tenant.id, &name)
        .await?;
    audit(
        &state,
        &auth.0,
        tenant.id,
        "delete-storage-credential",
        format!("storage credential {name}"),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}
