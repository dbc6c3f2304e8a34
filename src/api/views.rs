//! View routes.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, route, web};
use bytes::Bytes;

use super::doc_parts::CommonErrors;
use super::namespaces::PageQuery;
use super::paths::{NamespacePath, View, ViewPath, WarehousePath};
use super::types::*;
use super::{
    ApiError, ApiResult, AppState, Authenticated, JsonBody, Reply, idempotent, identifier,
    json_string, list_objects, metadata_body,
};
use crate::catalog::{CreateView, LoadedView};
use crate::domain::access::Privilege;
use crate::domain::{ObjectName, TableIdent};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_views)
        .service(create_view)
        .service(load_view)
        .service(view_exists)
        .service(replace_view)
        .service(drop_view)
        .service(rename_view)
        .service(register_view);
}

fn view_body(loaded: &LoadedView) -> JsonBody {
    metadata_body(
        json_string(&loaded.metadata_location),
        &loaded.view.json,
        Some(&Bytes::from_static(b"{}")),
        None,
        None,
    )
}

/// List views in a namespace.
#[utoipa::path(get, path = "/v1/{prefix}/namespaces/{namespace}/views", operation_id = "listViews", tag = "Catalog API",
    params(NamespacePath, PageQuery),
    responses((status = 200, description = "View identifiers", body = ListTablesResponse),
              (status = 404, description = "No such namespace", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/v1/{prefix}/namespaces/{namespace}/views")]
async fn list_views(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: NamespacePath,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    list_objects::<View>(&state, &auth.0, path, &page).await
}

/// Create a view.
#[utoipa::path(post, path = "/v1/{prefix}/namespaces/{namespace}/views", operation_id = "createView", tag = "Catalog API",
    params(NamespacePath,
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "UUID that makes retries safe")),
    request_body = CreateViewRequest,
    responses((status = 200, description = "The new view", body = LoadViewResult),
              (status = 404, description = "No such namespace", body = IcebergErrorResponse),
              (status = 409, description = "A table or view with this name exists", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/namespaces/{namespace}/views")]
async fn create_view(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: NamespacePath,
    body: web::Json<CreateViewRequest>,
) -> HttpResponse {
    let run = async {
        let (wh, ns) = path
            .authorized(&state, &auth.0, Privilege::ViewCreate)
            .await?;
        idempotent(&state, &auth.0, &req, async {
            let body = body.into_inner();
            let request = CreateView {
                name: ObjectName::new(body.name)?,
                location: body.location,
                schema: body.schema,
                view_version: body.view_version,
                properties: body.properties,
            };
            let loaded = state.catalog.create_view(&wh, &ns, request).await?;
            Ok(Reply::json_body(view_body(&loaded)))
        })
        .await
    };
    run.await.unwrap_or_else(Reply::from).respond()
}

/// Load a view.
#[utoipa::path(get, path = "/v1/{prefix}/namespaces/{namespace}/views/{view}", operation_id = "loadView", tag = "Catalog API",
    params(ViewPath),
    responses((status = 200, description = "The view", body = LoadViewResult),
              (status = 404, description = "No such view", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/v1/{prefix}/namespaces/{namespace}/views/{view}")]
async fn load_view(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: ViewPath,
) -> ApiResult<HttpResponse> {
    let (wh, ident) = path
        .authorized(&state, &auth.0, Privilege::ViewRead)
        .await?;
    let loaded = state.catalog.load_view(&wh, &ident).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(view_body(&loaded)))
}

/// Whether a view exists.
#[utoipa::path(head, path = "/v1/{prefix}/namespaces/{namespace}/views/{view}", operation_id = "viewExists", tag = "Catalog API",
    params(ViewPath),
    responses((status = 204, description = "Exists"), (status = 404, description = "Does not exist"), CommonErrors),
    security(("bearer" = [])))]
#[route("/v1/{prefix}/namespaces/{namespace}/views/{view}", method = "HEAD")]
async fn view_exists(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: ViewPath,
) -> ApiResult<HttpResponse> {
    let (wh, ident) = path
        .authorized(&state, &auth.0, Privilege::ViewRead)
        .await?;
    let kind = crate::store::TabularKind::View;
    Ok(match state.catalog.exists(&wh, &ident, kind).await? {
        true => HttpResponse::NoContent().finish(),
        false => HttpResponse::NotFound().finish(),
    })
}

/// Replace a view's metadata (add a version, change properties).
#[utoipa::path(post, path = "/v1/{prefix}/namespaces/{namespace}/views/{view}", operation_id = "replaceView", tag = "Catalog API",
    params(ViewPath,
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "UUID that makes retries safe")),
    request_body = CommitViewRequest,
    responses((status = 200, description = "The new view metadata", body = LoadViewResult),
              (status = 404, description = "No such view", body = IcebergErrorResponse),
              (status = 409, description = "A requirement failed", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/namespaces/{namespace}/views/{view}")]
async fn replace_view(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: ViewPath,
    body: web::Json<CommitViewRequest>,
) -> HttpResponse {
    let run = async {
        let (wh, ident) = path
            .authorized(&state, &auth.0, Privilege::ViewWrite)
            .await?;
        idempotent(&state, &auth.0, &req, async {
            let body = body.into_inner();
            if let Some(id) = &body.identifier
                && identifier(id)? != ident
            {
                return Err(ApiError::bad_request(
                    "the body's identifier does not match the view in the path",
                ));
            }
            let loaded = state
                .catalog
                .replace_view(&wh, &ident, body.requirements, body.updates)
                .await?;
            Ok(Reply::json_body(view_body(&loaded)))
        })
        .await
    };
    run.await.unwrap_or_else(Reply::from).respond()
}

/// Drop a view.
#[utoipa::path(delete, path = "/v1/{prefix}/namespaces/{namespace}/views/{view}", operation_id = "dropView", tag = "Catalog API",
    params(ViewPath,
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "UUID that makes retries safe")),
    responses((status = 204, description = "Dropped"),
              (status = 404, description = "No such view", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[delete("/v1/{prefix}/namespaces/{namespace}/views/{view}")]
async fn drop_view(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: ViewPath,
) -> HttpResponse {
    let run = async {
        let (wh, ident) = path
            .authorized(&state, &auth.0, Privilege::ViewDrop)
            .await?;
        idempotent(&state, &auth.0, &req, async {
            state.catalog.drop_view(&wh, &ident).await?;
            Ok(Reply::no_content())
        })
        .await
    };
    run.await.unwrap_or_else(Reply::from).respond()
}

/// Rename a view.
#[utoipa::path(post, path = "/v1/{prefix}/views/rename", operation_id = "renameView", tag = "Catalog API",
    params(WarehousePath,
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "UUID that makes retries safe")),
    request_body = RenameTableRequest,
    responses((status = 204, description = "Renamed"),
              (status = 404, description = "No such view or destination namespace", body = IcebergErrorResponse),
              (status = 409, description = "Destination exists", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/views/rename")]
async fn rename_view(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: WarehousePath,
    body: web::Json<RenameTableRequest>,
) -> HttpResponse {
    super::rename_object::<super::paths::View>(&state, &auth.0, &req, &path, &body).await
}

/// Register an existing view metadata file as a view.
#[utoipa::path(post, path = "/v1/{prefix}/namespaces/{namespace}/register-view", operation_id = "registerView", tag = "Catalog API",
    params(NamespacePath,
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "UUID that makes retries safe")),
    request_body = RegisterViewRequest,
    responses((status = 200, description = "The registered view", body = LoadViewResult),
              (status = 404, description = "No such namespace", body = IcebergErrorResponse),
              (status = 409, description = "Already exists", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/namespaces/{namespace}/register-view")]
async fn register_view(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: NamespacePath,
    body: web::Json<RegisterViewRequest>,
) -> HttpResponse {
    let run = async {
        let (wh, ns) = path
            .authorized(&state, &auth.0, Privilege::ViewCreate)
            .await?;
        let body = body.into_inner();
        let ident = TableIdent::new(ns, ObjectName::new(body.name)?);
        idempotent(&state, &auth.0, &req, async {
            let loaded = state
                .catalog
                .register_view(&wh, ident, &body.metadata_location)
                .await?;
            Ok(Reply::json_body(view_body(&loaded)))
        })
        .await
    };
    run.await.unwrap_or_else(Reply::from).respond()
}
