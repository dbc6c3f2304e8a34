//! The OpenAPI document, generated from the handlers' annotations and served at `/openapi.json`.
//! The committed copy lives in `openapi/floe.json`; a test fails when it is stale.

use actix_web::{HttpResponse, get, web};
use utoipa::openapi::RefOr;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

use super::doc_parts::{CommonErrors, error_response};
use super::{config, health, management, namespaces, oauth, planning, tables, vending, views};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(openapi_json);
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Makes the document say every status a route can answer, whatever its annotation forgot:
/// an authenticated route answers the common errors, a route with path parameters answers 404
/// when they name nothing, a route taking `Idempotency-Key` answers 422 when the key was used for
/// another operation (and 409 while a request with the key is still running). Header parameters are never `null` (a header is absent or a string).
struct EveryAnswerDocumented;

impl Modify for EveryAnswerDocumented {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let common = CommonErrors::responses();
        let error = error_response;
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.head,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                let params = op.parameters.get_or_insert_with(Vec::new);
                let mut in_path = false;
                let mut idempotent = false;
                for p in params.iter_mut() {
                    let RefOr::T(p) = p else { continue };
                    in_path |= p.parameter_in == ParameterIn::Path;
                    idempotent |= p.name == "Idempotency-Key";
                    if p.parameter_in == ParameterIn::Header
                        && let Some(RefOr::T(Schema::Object(o))) = p.schema.as_mut()
                        && let SchemaType::Array(types) = &o.schema_type
                    {
                        let types: Vec<Type> = types
                            .iter()
                            .filter(|t| **t != Type::Null)
                            .cloned()
                            .collect();
                        o.schema_type = match types.as_slice() {
                            [one] => SchemaType::Type(one.clone()),
                            _ => SchemaType::Array(types),
                        };
                    }
                }
                if params.is_empty() {
                    op.parameters = None;
                }
                let responses = &mut op.responses.responses;
                if op.security.is_some() {
                    for (status, response) in &common {
                        responses
                            .entry(status.clone())
                            .or_insert_with(|| response.clone());
                    }
                }
                if in_path {
                    responses
                        .entry("404".into())
                        .or_insert_with(|| error("What the path names does not exist").into());
                }
                if idempotent {
                    responses.entry("422".into()).or_insert_with(|| {
                        error("The Idempotency-Key was used for another operation").into()
                    });
                    responses.entry("409".into()).or_insert_with(|| {
                        error("A request with this Idempotency-Key is still running").into()
                    });
                }
            }
        }
    }
}

/// Floe's API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Floe", description = "Multi-tenant Apache Iceberg REST catalog that vends table-scoped credentials."),
    modifiers(&BearerAuth, &EveryAnswerDocumented),
    components(schemas(
        management::PrincipalAction, tables::SnapshotsParam, vending::PresignMethodName,
    )),
    paths(
        health::live, health::ready, health::metrics,
        oauth::get_token, oauth::jwks, config::get_config,
        namespaces::list_namespaces, namespaces::create_namespace, namespaces::load_namespace,
        namespaces::namespace_exists, namespaces::drop_namespace, namespaces::update_properties,
        tables::list_tables, tables::create_table, tables::load_table, tables::table_exists,
        tables::update_table, tables::drop_table, tables::register_table, tables::report_metrics,
        tables::rename_table, tables::commit_transaction,
        planning::plan_table_scan, planning::fetch_planning_result, planning::cancel_planning,
        planning::fetch_scan_tasks,
        vending::load_credentials, vending::presign_file, vending::sign_request, vending::sign_s3_request,
        views::list_views, views::create_view, views::load_view, views::view_exists,
        views::replace_view, views::drop_view, views::rename_view, views::register_view,
        management::whoami, management::list_audit, management::rotate_signing_key, management::snapshot,
        management::create_tenant, management::list_tenants, management::get_tenant,
        management::rename_tenant, management::delete_tenant,
        management::create_warehouse, management::list_warehouses, management::get_warehouse,
        management::update_warehouse, management::delete_warehouse, management::validate_warehouse,
        management::warehouse_health, management::list_dropped, management::restore_dropped,
        management::purge_dropped,
        management::create_principal, management::list_principals, management::get_principal,
        management::set_enabled, management::rotate_secret, management::delete_principal,
        management::create_role, management::list_roles, management::delete_role,
        management::assign_role, management::unassign_role,
        management::create_grant, management::list_grants, management::delete_grant,
        management::create_credential, management::list_credentials, management::rotate_credential,
        management::delete_credential,
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON (what `openapi/floe.json` holds).
pub fn document_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
        + "\n"
}

/// The OpenAPI document.
#[get("/openapi.json")]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document_json())
}
