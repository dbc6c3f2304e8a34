//! Namespace routes.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, route, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::doc_parts::CommonErrors;
use super::paths::{NamespacePath, WarehousePath};
use super::types::*;
use super::{ApiResult, AppState, Authenticated, Reply, idempotent, namespace_param};
use crate::authz::{on_namespace, on_warehouse};
use crate::domain::NamespaceIdent;
use crate::domain::access::Privilege;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_namespaces)
        .service(create_namespace)
        .service(load_namespace)
        .service(namespace_exists)
        .service(drop_namespace)
        .service(update_properties);
}

/// Paging of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Opaque token from a previous page's `next-page-token`; empty to start paging.
    #[serde(rename = "pageToken")]
    #[param(rename = "pageToken")]
    pub page_token: Option<String>,
    /// Upper bound of results in this page (capped by the server's `max_page_size`).
    #[serde(rename = "pageSize")]
    #[param(rename = "pageSize")]
    pub page_size: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ParentQuery {
    /// List only the children of this namespace (levels separated by `%1F`).
    pub parent: Option<String>,
}

/// List namespaces, optionally the children of a parent.
#[utoipa::path(get, path = "/v1/{prefix}/namespaces", operation_id = "listNamespaces", tag = "Catalog API",
    params(WarehousePath, PageQuery, ParentQuery),
    responses((status = 200, description = "Namespaces", body = ListNamespacesResponse),
              (status = 404, description = "No such warehouse or parent", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/v1/{prefix}/namespaces")]
async fn list_namespaces(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: WarehousePath,
    page: web::Query<PageQuery>,
    parent: web::Query<ParentQuery>,
) -> ApiResult<HttpResponse> {
    let wh = state.catalog.warehouse(&auth.0, &path.prefix).await?;
    let parent = match parent.parent.as_deref() {
        None | Some("") => None,
        Some(p) => Some(namespace_param(p)?),
    };
    let request = state
        .catalog
        .page_request(page.page_token.as_deref(), page.page_size)?;
    let container = match &parent {
        Some(p) => on_namespace(wh.record.id, p),
        None => on_warehouse(wh.record.id),
    };
    let mut listed = state
        .catalog
        .list_namespaces(&wh, parent.as_ref(), &request)
        .await?;
    let warehouse = wh.record.id;
    listed.items = state
        .authz
        .visible(
            &auth.0,
            &container,
            Privilege::NamespaceList,
            listed.items,
            |ns| on_namespace(warehouse, ns),
        )
        .await?;
    Ok(HttpResponse::Ok().json(ListNamespacesResponse {
        next_page_token: listed
            .next
            .as_deref()
            .map(|last| state.catalog.encode_page_token(last)),
        namespaces: listed.items.into_iter().map(Vec::from).collect(),
    }))
}

/// Create a namespace (its parent must exist).
#[utoipa::path(post, path = "/v1/{prefix}/namespaces", operation_id = "createNamespace", tag = "Catalog API",
    params(WarehousePath,
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "UUID that makes retries safe")),
    request_body = CreateNamespaceRequest,
    responses((status = 200, description = "Created", body = CreateNamespaceResponse),
              (status = 404, description = "No such warehouse or parent namespace", body = IcebergErrorResponse),
              (status = 409, description = "Already exists", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/namespaces")]
async fn create_namespace(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: WarehousePath,
    body: web::Json<CreateNamespaceRequest>,
) -> HttpResponse {
    let run = async {
        let wh = state.catalog.warehouse(&auth.0, &path.prefix).await?;
        let body = body.into_inner();
        let ident = NamespaceIdent::new(body.namespace)?;
        let container = match ident.parent() {
            Some(p) => on_namespace(wh.record.id, &p),
            None => on_warehouse(wh.record.id),
        };
        state
            .authz
            .require(&auth.0, &container, Privilege::NamespaceCreate)
            .await?;
        idempotent(&state, &auth.0, &req, async {
            let created = state
                .catalog
                .create_namespace(&wh, ident, body.properties)
                .await?;
            Ok(Reply::json(&CreateNamespaceResponse {
                namespace: created.ident.into(),
                properties: created.properties,
            }))
        })
        .await
    };
    run.await.unwrap_or_else(Reply::from).respond()
}

/// Load a namespace's properties.
#[utoipa::path(get, path = "/v1/{prefix}/namespaces/{namespace}", operation_id = "loadNamespaceMetadata", tag = "Catalog API",
    params(NamespacePath),
    responses((status = 200, description = "The namespace", body = GetNamespaceResponse),
              (status = 404, description = "No such namespace", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/v1/{prefix}/namespaces/{namespace}")]
async fn load_namespace(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: NamespacePath,
) -> ApiResult<HttpResponse> {
    let (wh, ident) = path
        .authorized(&state, &auth.0, Privilege::NamespaceRead)
        .await?;
    let record = state.catalog.load_namespace(&wh, &ident).await?;
    Ok(HttpResponse::Ok().json(GetNamespaceResponse {
        namespace: record.ident.into(),
        properties: record.properties,
    }))
}

/// Whether a namespace exists (204 or 404, no body).
#[utoipa::path(head, path = "/v1/{prefix}/namespaces/{namespace}", operation_id = "namespaceExists", tag = "Catalog API",
    params(NamespacePath),
    responses((status = 204, description = "Exists"), (status = 404, description = "Does not exist"), CommonErrors),
    security(("bearer" = [])))]
#[route("/v1/{prefix}/namespaces/{namespace}", method = "HEAD")]
async fn namespace_exists(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: NamespacePath,
) -> ApiResult<HttpResponse> {
    let wh = state.catalog.warehouse(&auth.0, &path.prefix).await?;
    let ident = path.namespace()?;
    if !state
        .authz
        .sees(&auth.0, &on_namespace(wh.record.id, &ident))
        .await?
    {
        state
            .authz
            .require(
                &auth.0,
                &on_namespace(wh.record.id, &ident),
                Privilege::NamespaceRead,
            )
            .await?;
    }
    state.catalog.load_namespace(&wh, &ident).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Drop an empty namespace.
#[utoipa::path(delete, path = "/v1/{prefix}/namespaces/{namespace}", operation_id = "dropNamespace", tag = "Catalog API",
    params(NamespacePath,
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "UUID that makes retries safe")),
    responses((status = 204, description = "Dropped"),
              (status = 404, description = "No such namespace", body = IcebergErrorResponse),
              (status = 409, description = "Not empty", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[delete("/v1/{prefix}/namespaces/{namespace}")]
async fn drop_namespace(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: NamespacePath,
) -> HttpResponse {
    let run = async {
        let (wh, ident) = path
            .authorized(&state, &auth.0, Privilege::NamespaceDrop)
            .await?;
        idempotent(&state, &auth.0, &req, async {
            state.catalog.drop_namespace(&wh, &ident).await?;
            Ok(Reply::no_content())
        })
        .await
    };
    run.await.unwrap_or_else(Reply::from).respond()
}

/// Set and remove namespace properties.
#[utoipa::path(post, path = "/v1/{prefix}/namespaces/{namespace}/properties", operation_id = "updateProperties", tag = "Catalog API",
    params(NamespacePath,
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "UUID that makes retries safe")),
    request_body = UpdateNamespacePropertiesRequest,
    responses((status = 200, description = "What changed", body = UpdateNamespacePropertiesResponse),
              (status = 404, description = "No such namespace", body = IcebergErrorResponse),
              (status = 422, description = "A key is both set and removed", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/namespaces/{namespace}/properties")]
async fn update_properties(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: NamespacePath,
    body: web::Json<UpdateNamespacePropertiesRequest>,
) -> HttpResponse {
    let run = async {
        let (wh, ident) = path
            .authorized(&state, &auth.0, Privilege::NamespaceWrite)
            .await?;
        idempotent(&state, &auth.0, &req, async {
            let body = body.into_inner();
            let changed = state
                .catalog
                .update_namespace_properties(&wh, &ident, body.updates, body.removals)
                .await?;
            Ok(Reply::json(&UpdateNamespacePropertiesResponse {
                updated: changed.updated,
                removed: changed.removed,
                missing: Some(changed.missing),
            }))
        })
        .await
    };
    run.await.unwrap_or_else(Reply::from).respond()
}
