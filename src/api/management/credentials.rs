//! Named storage credentials of a tenant. Values are write-only: given at creation or rotation,
//! sealed (or kept as a reference), and never returned by any API.

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::admin_tenant;
use crate::admin::NewCredentialValue;
use crate::api::doc_parts::CommonErrors;
use crate::api::types::{IcebergErrorResponse, Name};
use crate::api::{ApiError, ApiResult, AppState, Authenticated};
use crate::domain::CredentialKind;
use crate::domain::ResourceName;
use crate::domain::TenantId;
use crate::store::StorageCredentialRecord;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(create_credential)
        .service(list_credentials)
        .service(rotate_credential)
        .service(delete_credential);
}

/// A storage credential's value: its fields, or a reference resolved at each use.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialRequest {
    pub kind: String,
    pub value: Option<serde_json::Value>,
    pub reference: Option<String>,
}

/// A storage credential to create.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCredentialRequest {
    pub name: String,
    pub kind: String,
    pub value: Option<serde_json::Value>,
    pub reference: Option<String>,
}

const VALUE_DOC: &str = "The fields, sealed under the master key. `s3-access-key`: \
    `access_key_id` (or `aws_access_key_id`, `key_id`), `secret_access_key` (or \
    `aws_secret_access_key`, `secret_key`, `secret`), optional `session_token` and `region`. \
    `azure-shared-key`: `account_key`. `azure-client-secret`: `tenant_id`, `client_id`, \
    `client_secret`. `gcs-service-account`: the key file itself, the key file under `data`, or \
    `service_account_json` holding its text.";
const REFERENCE_DOC: &str = "Instead of a value: `env:NAME` (allow-listed names only) or \
    `file:/path`, holding the fields as JSON.";

/// The forms `CredentialResolver::check_reference` accepts (which `env:` names and files are
/// allowed is the server's configuration, not the schema's).
const REFERENCE_PATTERN: &str = "^(env:.+|file:/.*|aws-secretsmanager:[^#].*|aws-ssm:(/|arn:).*)$";

/// One way of giving a credential: by `value` or by `reference`, with or without its name.
fn credential_schema(with_name: bool, by_value: bool, description: &str) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new().description(Some(description));
    if with_name {
        object = object
            .property("name", Ref::from_schema_name("Name"))
            .required("name");
    }
    object = object
        .property("kind", Ref::from_schema_name("CredentialKindName"))
        .required("kind");
    // The other of the two may be given as `null`, which means absent.
    let null = || ObjectBuilder::new().schema_type(Type::Null);
    object = if by_value {
        object
            .property(
                "value",
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some(VALUE_DOC)),
            )
            .required("value")
            .property("reference", null())
    } else {
        object
            .property(
                "reference",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(REFERENCE_PATTERN))
                    .description(Some(REFERENCE_DOC)),
            )
            .required("reference")
            .property("value", null())
    };
    object
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

fn credential_schemas(schemas: &mut Vec<(String, RefOr<Schema>)>, with_name: bool) {
    let (by_value, by_reference) = if with_name {
        ("NewCredentialByValue", "NewCredentialByReference")
    } else {
        ("CredentialByValue", "CredentialByReference")
    };
    schemas.extend([
        (
            by_value.to_owned(),
            credential_schema(with_name, true, "A credential given by its fields."),
        ),
        (
            by_reference.to_owned(),
            credential_schema(with_name, false, "A credential given by a reference."),
        ),
        (
            "CredentialKindName".to_owned(),
            <CredentialKindName as PartialSchema>::schema(),
        ),
        ("Name".to_owned(), Name::schema()),
    ]);
}

fn one_of(names: [&str; 2], description: &str) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(Ref::from_schema_name(names[0]))
        .item(Ref::from_schema_name(names[1]))
        .description(Some(description))
        .into()
}

impl PartialSchema for CredentialRequest {
    fn schema() -> RefOr<Schema> {
        one_of(
            ["CredentialByValue", "CredentialByReference"],
            "A storage credential's new value: its fields, or a reference resolved at each use.",
        )
    }
}

impl ToSchema for CredentialRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        credential_schemas(schemas, false);
    }
}

impl PartialSchema for CreateCredentialRequest {
    fn schema() -> RefOr<Schema> {
        one_of(
            ["NewCredentialByValue", "NewCredentialByReference"],
            "A storage credential to create: its fields, or a reference resolved at each use.",
        )
    }
}

impl ToSchema for CreateCredentialRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        credential_schemas(schemas, true);
    }
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

/// The kind and value a request gives: exactly one of `value` and `reference`.
fn parse_value(
    kind: &str,
    value: Option<serde_json::Value>,
    reference: Option<String>,
) -> ApiResult<(CredentialKind, NewCredentialValue)> {
    let kind = CredentialKind::parse(kind).map_err(ApiError::bad_request)?;
    let value = match (value, reference) {
        (Some(fields), None) => NewCredentialValue::Fields(fields),
        (None, Some(reference)) => NewCredentialValue::Reference(reference),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of 'value' and 'reference'",
            ));
        }
    };
    Ok((kind, value))
}

fn info(record: &StorageCredentialRecord) -> CredentialInfo {
    CredentialInfo {
        name: record.name.clone(),
        kind: record.kind.to_string(),
    }
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
    path: web::Path<TenantId>,
    body: web::Json<CreateCredentialRequest>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let body = body.into_inner();
    let (kind, value) = parse_value(&body.kind, body.value, body.reference)?;
    let record = state
        .admin
        .create_credential(
            &auth.0,
            tenant.id,
            ResourceName::new("credential name", body.name)?,
            kind,
            value,
        )
        .await?;
    Ok(HttpResponse::Created().json(info(&record)))
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
    path: web::Path<TenantId>,
) -> ApiResult<HttpResponse> {
    let tenant = admin_tenant(&state, &auth.0, path.into_inner()).await?;
    let credentials = state.admin.credentials(tenant.id).await?;
    Ok(HttpResponse::Ok().json(CredentialList {
        credentials: credentials.iter().map(info).collect(),
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
    path: web::Path<(TenantId, String)>,
    body: web::Json<CredentialRequest>,
) -> ApiResult<HttpResponse> {
    let (tenant, name) = path.into_inner();
    let tenant = admin_tenant(&state, &auth.0, tenant).await?;
    let body = body.into_inner();
    let (kind, value) = parse_value(&body.kind, body.value, body.reference)?;
    let record = state
        .admin
        .rotate_credential(&auth.0, tenant.id, name, kind, value)
        .await?;
    Ok(HttpResponse::Ok().json(info(&record)))
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
    path: web::Path<(TenantId, String)>,
) -> ApiResult<HttpResponse> {
    let (tenant, name) = path.into_inner();
    let tenant = admin_tenant(&state, &auth.0, tenant).await?;
    state
        .admin
        .delete_credential(&auth.0, tenant.id, &name)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
