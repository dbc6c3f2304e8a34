//! Named storage credentials of a tenant. Values are write-only: given at creation or rotation,
//! sealed (or kept as a reference), and never returned by any API.

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{admin_tenant, audit};
use crate::api::openapi::CommonErrors;
use crate::api::types::IcebergErrorResponse;
use crate::api::{ApiResult, AppState, Authenticated};
use crate::catalog::CatalogError;
use crate::domain::{CredentialKind, check_resource_name};
use crate::identity::storage_credentials::normalize_fields;
use crate::store::{CredentialValue, StorageCredentialRecord, now_ms};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(create_credential)
        .service(list_credentials)
        .service(rotate_credential)
        .service(delete_credential);
}

/// A storage credential's value: its fields, or a reference resolved at each use.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialRequest {
    #[schema(value_type = CredentialKindName)]
    pub kind: String,
    /// The fields, sealed under the master key. `s3-access-key`: `access_key_id` (or
    /// `aws_access_key_id`, `key_id`), `secret_access_key` (or `aws_secret_access_key`,
    /// `secret_key`, `secret`), optional `session_token` and `region`. `azure-shared-key`:
    /// `account_key`. `azure-client-secret`: `tenant_id`, `client_id`, `client_secret`.
    /// `gcs-service-account`: the key file itself, the key file under `data`, or
    /// `service_account_json` holding its text.
    #[schema(value_type = Option<Object>)]
    pub value: Option<serde_json::Value>,
    /// Instead of a value: `env:NAME` (allow-listed names only) or `file:/path`, holding the fields as JSON.
    pub reference: Option<String>,
}

/// A storage credential to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredentialRequest {
    pub name: String,
    #[schema(value_type = CredentialKindName)]
    pub kind: String,
    /// As in `CredentialRequest`.
    #[schema(value_type = Option<Object>)]
    pub value: Option<serde_json::Value>,
    /// As in `CredentialRequest`.
    pub reference: Option<String>,
}

/// A credential kind as a request may name it: a canonical name, or `google_service_account` or
/// `gcp` for `gcs-service-account`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKindName {
    S3AccessKey,
    AzureSharedKey,
    AzureClientSecret,
    GcsServiceAccount,
    #[serde(rename = "google_service_account")]
    GoogleServiceAccount,
    #[serde(rename = "gcp")]
    Gcp,
}

/// A storage credential, by name and kind only.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialInfo {
    pub name: String,
    /// The canonical kind.
    #[schema(value_type = CredentialKindName)]
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
) -> ApiResult<(CredentialKind, CredentialValue)> {
    let kind = CredentialKind::parse(&req.kind).map_err(CatalogError::bad_request)?;
    let value = match (req.value, req.reference) {
        (Some(value), None) => {
            let fields = normalize_fields(kind, &value).map_err(CatalogError::bad_request)?;
            state.credentials.seal(tenant, name, &fields)
        }
        (None, Some(reference)) => {
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
    Ok((kind, value))
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
    let credential = CredentialRequest {
        kind: body.kind,
        value: body.value,
        reference: body.reference,
    };
    let (kind, value) = value_of(&state, tenant.id, &body.name, credential)?;
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
        kind: record.kind.to_string(),
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
                kind: c.kind.to_string(),
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
        kind: record.kind.to_string(),
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
