//! Request and response bodies of the Iceberg REST API, named as in the spec. Iceberg's own
//! structures (schemas, metadata, updates) are the `iceberg` crate's types, shown as objects here.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::catalog::ViewRequirement;
use crate::domain::{MAX_NAME_CHARS, MAX_NAMESPACE_DEPTH, NAME_PATTERN};

/// A name as the server accepts it (namespace level, table, view, warehouse, tenant, role,
/// principal, credential): 1 to 255 characters, none of them a control character, `/` or `\`,
/// and not `.` or `..`.
pub struct Name;

impl PartialSchema for Name {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_NAME_CHARS))
            .pattern(Some(NAME_PATTERN))
            .description(Some(
                "1 to 255 characters; no control characters, '/' or '\\'; not '.' or '..'",
            ))
            .into()
    }
}

impl ToSchema for Name {}

/// A namespace: its levels, outermost first, 1 to 16 of them.
pub struct Namespace;

impl PartialSchema for Namespace {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(Ref::from_schema_name("Name"))
            .min_items(Some(1))
            .max_items(Some(MAX_NAMESPACE_DEPTH))
            .description(Some("Levels, outermost first"))
            .into()
    }
}

impl ToSchema for Namespace {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push(("Name".into(), Name::schema()));
    }
}

/// The grant types the token endpoint serves.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub enum GrantType {
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

/// The spec's error envelope.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IcebergErrorResponse {
    pub error: ErrorModel,
}

/// Details of an error.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorModel {
    pub message: String,
    /// The Iceberg exception type, e.g. `NoSuchTableException`.
    pub r#type: String,
    pub code: u16,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<String>,
    /// The request's id (also in `X-Request-Id`): what the server's log names this request by.
    #[serde(
        rename = "request-id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub request_id: Option<String>,
}

/// Server-provided configuration for the catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogConfig {
    pub defaults: BTreeMap<String, String>,
    pub overrides: BTreeMap<String, String>,
    pub endpoints: Vec<String>,
    #[serde(rename = "idempotency-key-lifetime")]
    pub idempotency_key_lifetime: String,
}

/// The token endpoint's answer.
#[derive(Serialize, ToSchema)]
pub struct OAuthTokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub issued_token_type: String,
}

/// The token endpoint's error.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthError {
    pub error: String,
    pub error_description: String,
}

/// The token endpoint's form fields (client credentials, or token exchange).
#[derive(Deserialize, ToSchema)]
pub struct OAuthTokenRequest {
    #[schema(value_type = GrantType)]
    pub grant_type: String,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
}

/// Without the token.
impl std::fmt::Debug for OAuthTokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthTokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Without the client secret or the subject token.
impl std::fmt::Debug for OAuthTokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthTokenRequest")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("subject_token_type", &self.subject_token_type)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateNamespaceRequest {
    #[schema(value_type = Namespace)]
    pub namespace: Vec<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreateNamespaceResponse {
    #[schema(value_type = Namespace)]
    pub namespace: Vec<String>,
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GetNamespaceResponse {
    #[schema(value_type = Namespace)]
    pub namespace: Vec<String>,
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListNamespacesResponse {
    #[serde(rename = "next-page-token")]
    pub next_page_token: Option<String>,
    #[schema(value_type = Vec<Namespace>)]
    pub namespaces: Vec<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateNamespacePropertiesRequest {
    #[serde(default)]
    pub removals: Vec<String>,
    #[serde(default)]
    pub updates: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UpdateNamespacePropertiesResponse {
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    pub missing: Option<Vec<String>>,
}

/// A table or view inside a namespace.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TableIdentifier {
    #[schema(value_type = Namespace)]
    pub namespace: Vec<String>,
    #[schema(value_type = Name)]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListTablesResponse {
    #[serde(rename = "next-page-token")]
    pub next_page_token: Option<String>,
    pub identifiers: Vec<TableIdentifier>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct CreateTableRequest {
    #[schema(value_type = Name)]
    pub name: String,
    pub location: Option<String>,
    #[schema(value_type = Object)]
    pub schema: iceberg::spec::Schema,
    #[schema(value_type = Option<Object>)]
    pub partition_spec: Option<iceberg::spec::UnboundPartitionSpec>,
    #[schema(value_type = Option<Object>)]
    pub write_order: Option<iceberg::spec::SortOrder>,
    #[serde(default)]
    pub stage_create: bool,
    #[serde(default)]
    pub properties: HashMap<String, String>,
}

/// Credentials for a storage location prefix.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StorageCredential {
    pub prefix: String,
    pub config: BTreeMap<String, String>,
}

/// A loaded table: metadata, its location, and table-specific client configuration.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoadTableResult {
    #[serde(rename = "metadata-location")]
    pub metadata_location: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub config: BTreeMap<String, String>,
    #[serde(
        rename = "storage-credentials",
        skip_serializing_if = "Option::is_none"
    )]
    pub storage_credentials: Option<Vec<StorageCredential>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CommitTableRequest {
    pub identifier: Option<TableIdentifier>,
    #[schema(value_type = Vec<Object>)]
    pub requirements: Vec<iceberg::TableRequirement>,
    #[schema(value_type = Vec<Object>)]
    pub updates: Vec<iceberg::TableUpdate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommitTableResponse {
    #[serde(rename = "metadata-location")]
    pub metadata_location: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CommitTransactionRequest {
    #[serde(rename = "table-changes")]
    pub table_changes: Vec<CommitTableRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RenameTableRequest {
    pub source: TableIdentifier,
    pub destination: TableIdentifier,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RegisterTableRequest {
    #[schema(value_type = Name)]
    pub name: String,
    pub metadata_location: String,
    #[serde(default)]
    pub overwrite: bool,
}

/// A scan or commit report; accepted and logged.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ReportMetricsRequest {
    pub report_type: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct CreateViewRequest {
    #[schema(value_type = Name)]
    pub name: String,
    pub location: Option<String>,
    #[schema(value_type = Object)]
    pub schema: iceberg::spec::Schema,
    #[schema(value_type = Object)]
    pub view_version: iceberg::spec::ViewVersion,
    pub properties: HashMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoadViewResult {
    #[serde(rename = "metadata-location")]
    pub metadata_location: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CommitViewRequest {
    pub identifier: Option<TableIdentifier>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub requirements: Vec<ViewRequirement>,
    #[schema(value_type = Vec<Object>)]
    pub updates: Vec<iceberg::ViewUpdate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RegisterViewRequest {
    #[schema(value_type = Name)]
    pub name: String,
    pub metadata_location: String,
}

/// Liveness or readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_requests_and_answers_never_print_their_secrets() {
        let request = OAuthTokenRequest {
            grant_type: "client_credentials".into(),
            client_id: Some("etl".into()),
            client_secret: Some("s3cr3t-value".into()),
            scope: None,
            subject_token: Some("eyJ.subject.token".into()),
            subject_token_type: None,
        };
        let answer = OAuthTokenResponse {
            access_token: "eyJ.access.token".into(),
            token_type: "bearer".into(),
            expires_in: 3600,
            issued_token_type: "urn:ietf:params:oauth:token-type:access_token".into(),
        };
        let shown = format!("{request:?} {answer:?}");
        assert!(shown.contains("etl"), "{shown}");
        for secret in ["s3cr3t-value", "subject.token", "access.token"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
