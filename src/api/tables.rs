//! Table routes. Load-table is the hot path: its body is assembled from the cached metadata JSON.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, guard, post, route, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::doc_parts::CommonErrors;
use super::namespaces::PageQuery;
use super::paths::{NamespacePath, Table, TablePath, WarehousePath, is_load_table};
use super::types::*;
use super::{
    ApiError, ApiResult, AppState, Authenticated, JsonBody, Reply, idempotent, identifier,
    list_objects, metadata_body,
};
use crate::authz::operations::Operation;
use crate::catalog::{CreateTable, LoadedTable, SnapshotsMode, TableChange};
use crate::domain::access::Privilege;
use crate::domain::{ObjectName, TableIdent};
use crate::table_answers::{CommittedStorage, LoadAnswer};
use crate::vending::Delegation;
use crate::vending::table_storage::TableStorage;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Load-table is routed by a split of its path, not by actix's regex per route (the regex
    // and its captures cost about 9% of a load): a `/v1` scope (a prefix compared, no regex)
    // that only takes what `is_load_table` takes. Anything else goes on to the routes below.
    cfg.service(
        web::scope("/v1")
            .guard(guard::fn_guard(|ctx| {
                is_load_table(&ctx.head().method, ctx.head().uri.path())
            }))
            .default_service(web::to(load_table)),
    )
    .service(list_tables)
    .service(create_table)
    .service(table_exists)
    .service(update_table)
    .service(drop_table)
    .service(register_table)
    .service(report_metrics)
    .service(rename_table)
    .service(commit_transaction);
}

/// Which snapshots load-table returns.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum SnapshotsParam {
    All,
    Refs,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoadTableQuery {
    /// `all` (default) or `refs`: only snapshots that a branch or tag points at.
    #[param(value_type = Option<SnapshotsParam>)]
    snapshots: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DropTableQuery {
    /// Also delete the table's files.
    #[serde(rename = "purgeRequested")]
    #[param(rename = "purgeRequested", value_type = Option<bool>)]
    purge_requested: Option<String>,
}

impl DropTableQuery {
    /// `true`/`false` in any case (PyIceberg sends `True`).
    fn purge(&self) -> ApiResult<bool> {
        match self
            .purge_requested
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "purgeRequested must be true or false, not '{other}'"
            ))),
        }
    }
}

fn load_result_body(loaded: &LoadedTable, mode: SnapshotsMode, access: &TableStorage) -> JsonBody {
    metadata_body(
        loaded.metadata_location_json(),
        &loaded.table.json_for(mode),
        Some(&access.config_json),
        access.credential_json.as_ref(),
        access.remote_signing_json.as_ref(),
    )
}

/// A create or register answer; an idempotent replay of it carries no credentials, and one whose
/// credentials were withheld says so.
fn table_reply(loaded: &LoadedTable, committed: &CommittedStorage, plain: TableStorage) -> Reply {
    let body = load_result_body(loaded, SnapshotsMode::All, &committed.storage);
    let reply = if committed.storage.credential_json.is_none() {
        Reply::json_body(body)
    } else {
        Reply::json_with_secrets(body, load_result_body(loaded, SnapshotsMode::All, &plain))
    };
    if committed.withheld {
        return reply.credentials_withheld(
            "the table was committed but credentials could not be vended; load the table to get them",
        );
    }
    reply
}

/// The spec's header for the delegation modes a client asks for.
const ACCESS_DELEGATION: header::HeaderName =
    header::HeaderName::from_static("x-iceberg-access-delegation");

/// What the client asked for in `X-Iceberg-Access-Delegation`.
pub(super) fn delegation(req: &HttpRequest) -> Delegation {
    // A named constant: looking up by a `&str` parses and lowercases the name per request.
    Delegation::parse(
        req.headers()
            .get(ACCESS_DELEGATION)
            .and_then(|v| v.to_str().ok()),
    )
}

fn commit_body(loaded: &LoadedTable) -> JsonBody {
    metadata_body(
        loaded.metadata_location_json(),
        &loaded.table.json,
        None,
        None,
        None,
    )
}

/// List tables in a namespace.
#[utoipa::path(get, path = "/v1/{prefix}/namespaces/{namespace}/tables", operation_id = "listTables", tag = "Catalog API",
    params(NamespacePath, PageQuery),
    responses((status = 200, description = "Table identifiers", body = ListTablesResponse),
              (status = 404, description = "No such namespace", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/v1/{prefix}/namespaces/{namespace}/tables")]
async fn list_tables(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: NamespacePath,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    list_objects::<Table>(&state, &auth.0, path, &page).await
}

/// Create a table (or stage its creation). The server assigns its location inside the warehouse.
#[utoipa::path(post, path = "/v1/{prefix}/namespaces/{namespace}/tables", operation_id = "createTable", tag = "Catalog API",
    params(NamespacePath,
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "UUID that makes retries safe")),
    request_body = CreateTableRequest,
    responses((status = 200, description = "The new table", body = LoadTableResult, headers(("Floe-Credentials-Withheld" = String, description = "Present when credentials were asked for but could not be vended after the table was committed: why; load the table to get them"))),
              (status = 404, description = "No such namespace", body = IcebergErrorResponse),
              (status = 409, description = "Already exists", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/namespaces/{namespace}/tables")]
async fn create_table(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: NamespacePath,
    body: web::Json<CreateTableRequest>,
) -> HttpResponse {
    let run = async {
        let (wh, ns) = path
            .authorized(&state, &auth.0, Privilege::TableCreate)
            .await?;
        idempotent(&state, &auth.0, &req, async {
            let body = body.into_inner();
            let request = CreateTable {
                name: ObjectName::new(body.name)?,
                location: body.location,
                schema: body.schema,
                partition_spec: body.partition_spec,
                write_order: body.write_order,
                stage_create: body.stage_create,
                properties: body.properties,
            };
            let (loaded, committed) = state
                .answers
                .create(&auth.0, &wh, ns, request, delegation(&req))
                .await?;
            Ok(table_reply(
                &loaded,
                &committed,
                TableStorage::plain(wh.storage()),
            ))
        })
        .await
    };
    run.await.unwrap_or_else(Reply::from).respond()
}

/// Load a table's metadata; `If-None-Match` with the last ETag answers 304 when unchanged.
#[utoipa::path(get, path = "/v1/{prefix}/namespaces/{namespace}/tables/{table}", operation_id = "loadTable", tag = "Catalog API",
    params(TablePath, LoadTableQuery,
           ("If-None-Match" = Option<String>, Header, description = "ETag of a previous load"),
           ("X-Iceberg-Access-Delegation" = Option<String>, Header, description = "vended-credentials and/or remote-signing")),
    responses((status = 200, description = "The table", body = LoadTableResult, headers(("ETag" = String, description = "Version of the metadata"))),
              (status = 304, description = "Not modified"),
              (status = 404, description = "No such table", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
async fn load_table(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: TablePath,
    query: web::Query<LoadTableQuery>,
) -> ApiResult<HttpResponse> {
    let mode = match query.snapshots.as_deref() {
        None | Some("all") => SnapshotsMode::All,
        Some("refs") => SnapshotsMode::Refs,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "snapshots must be 'all' or 'refs', not '{other}'"
            )));
        }
    };
    let (wh, ident) = path
        .authorized(&state, &auth.0, Privilege::TableReadMetadata)
        .await?;
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let answer = state
        .answers
        .load(&auth.0, &wh, &ident, mode, delegation(&req), if_none_match)
        .await?;
    Ok(match answer {
        LoadAnswer::NotModified { tag } => HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .finish(),
        LoadAnswer::Table {
            tag,
            loaded,
            storage,
        } => HttpResponse::Ok()
            .insert_header((header::ETAG, tag))
            .content_type("application/json")
            .body(load_result_body(&loaded, mode, &storage)),
    })
}

/// Whether a table exists.
#[utoipa::path(head, path = "/v1/{prefix}/namespaces/{namespace}/tables/{table}", operation_id = "tableExists", tag = "Catalog API",
    params(TablePath),
    responses((status = 204, description = "Exists"), (status = 404, description = "Does not exist"), CommonErrors),
    security(("bearer" = [])))]
#[route("/v1/{prefix}/namespaces/{namespace}/tables/{table}", method = "HEAD")]
async fn table_exists(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: TablePath,
) -> ApiResult<HttpResponse> {
    let (wh, ident) = path
        .authorized(&state, &auth.0, Privilege::TableReadMetadata)
        .await?;
    let kind = crate::store::TabularKind::Table;
    Ok(match state.catalog.exists(&wh, &ident, kind).await? {
        true => HttpResponse::NoContent().finish(),
        false => HttpResponse::NotFound().finish(),
    })
}

fn table_change(ident: TableIdent, body: CommitTableRequest) -> ApiResult<TableChange> {
    if let Some(id) = &body.identifier
        && identifier(id)? != ident
    {
        return Err(ApiError::bad_request(
            "the body's identifier does not match the table in the path",
        ));
    }
    Ok(TableChange {
        ident,
        requirements: body.requirements,
        updates: body.updates,
    })
}

/// Commit updates to a table; requirements are checked against its current metadata.
#[utoipa::path(post, path = "/v1/{prefix}/namespaces/{namespace}/tables/{table}", operation_id = "updateTable", tag = "Catalog API",
    params(TablePath,
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "UUID that makes retries safe")),
    request_body = CommitTableRequest,
    responses((status = 200, description = "The new metadata", body = CommitTableResponse),
              (status = 404, description = "No such table", body = IcebergErrorResponse),
              (status = 409, description = "A requirement failed", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/namespaces/{namespace}/tables/{table}")]
async fn update_table(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: TablePath,
    body: web::Json<CommitTableRequest>,
) -> HttpResponse {
    let run = async {
        let wh = state.catalog.warehouse(&auth.0, &path.prefix).await?;
        let change = table_change(path.ident()?, body.into_inner())?;
        let commit = Operation::CommitTable {
            table: &change.ident,
            completes_staged_create: change
                .requirements
                .contains(&iceberg::TableRequirement::NotExist),
        };
        state
            .authz
            .require_operation(&auth.0, wh.record.id, commit)
            .await?;
        idempotent(&state, &auth.0, &req, async {
            let loaded = state.catalog.commit_table(&wh, change).await?;
            Ok(Reply::json_body(commit_body(&loaded)))
        })
        .await
    };
    run.await.unwrap_or_else(Reply::from).respond()
}

/// Drop a table; `purgeRequested=true` deletes its files too.
#[utoipa::path(delete, path = "/v1/{prefix}/namespaces/{namespace}/tables/{table}", operation_id = "dropTable", tag = "Catalog API",
    params(TablePath, DropTableQuery,
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "UUID that makes retries safe")),
    responses((status = 204, description = "Dropped"),
              (status = 404, description = "No such table", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[delete("/v1/{prefix}/namespaces/{namespace}/tables/{table}")]
async fn drop_table(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: TablePath,
    query: web::Query<DropTableQuery>,
) -> HttpResponse {
    let run = async {
        let (wh, ident) = path
            .authorized(&state, &auth.0, Privilege::TableDrop)
            .await?;
        idempotent(&state, &auth.0, &req, async {
            state
                .catalog
                .drop_table(&wh, &ident, query.purge()?)
                .await?;
            Ok(Reply::no_content())
        })
        .await
    };
    run.await.unwrap_or_else(Reply::from).respond()
}

/// Register an existing metadata file (inside the warehouse) as a table.
#[utoipa::path(post, path = "/v1/{prefix}/namespaces/{namespace}/register", operation_id = "registerTable", tag = "Catalog API",
    params(NamespacePath,
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "UUID that makes retries safe")),
    request_body = RegisterTableRequest,
    responses((status = 200, description = "The registered table", body = LoadTableResult, headers(("Floe-Credentials-Withheld" = String, description = "Present when credentials were asked for but could not be vended after the table was committed: why; load the table to get them"))),
              (status = 404, description = "No such namespace", body = IcebergErrorResponse),
              (status = 409, description = "Already exists", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/namespaces/{namespace}/register")]
async fn register_table(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: NamespacePath,
    body: web::Json<RegisterTableRequest>,
) -> HttpResponse {
    let run = async {
        let (wh, ns) = path
            .authorized(&state, &auth.0, Privilege::TableCreate)
            .await?;
        let body = body.into_inner();
        let ident = TableIdent::new(ns, ObjectName::new(body.name)?);
        idempotent(&state, &auth.0, &req, async {
            let (loaded, committed) = state
                .answers
                .register(
                    &auth.0,
                    &wh,
                    ident,
                    &body.metadata_location,
                    body.overwrite,
                    delegation(&req),
                )
                .await?;
            Ok(table_reply(
                &loaded,
                &committed,
                TableStorage::plain(wh.storage()),
            ))
        })
        .await
    };
    run.await.unwrap_or_else(Reply::from).respond()
}

/// Accept a scan or commit report (logged).
#[utoipa::path(post, path = "/v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics", operation_id = "reportMetrics", tag = "Catalog API",
    params(TablePath),
    request_body = ReportMetricsRequest,
    responses((status = 204, description = "Accepted"),
              (status = 404, description = "No such table", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics")]
async fn report_metrics(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: TablePath,
    body: web::Json<ReportMetricsRequest>,
) -> ApiResult<HttpResponse> {
    let (wh, ident) = path
        .authorized(&state, &auth.0, Privilege::TableReadMetadata)
        .await?;
    state.catalog.load_table(&wh, &ident).await?;
    tracing::info!(table = %ident, warehouse = %wh.record.name, report_type = %body.report_type, "metrics report");
    Ok(HttpResponse::NoContent().finish())
}

/// Rename a table, possibly into another namespace.
#[utoipa::path(post, path = "/v1/{prefix}/tables/rename", operation_id = "renameTable", tag = "Catalog API",
    params(WarehousePath,
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "UUID that makes retries safe")),
    request_body = RenameTableRequest,
    responses((status = 204, description = "Renamed"),
              (status = 404, description = "No such table or destination namespace", body = IcebergErrorResponse),
              (status = 409, description = "Destination exists", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/tables/rename")]
async fn rename_table(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: WarehousePath,
    body: web::Json<RenameTableRequest>,
) -> HttpResponse {
    super::rename_object::<super::paths::Table>(&state, &auth.0, &req, &path, &body).await
}

/// Commit changes to several tables atomically: all or none.
#[utoipa::path(post, path = "/v1/{prefix}/transactions/commit", operation_id = "commitTransaction", tag = "Catalog API",
    params(WarehousePath,
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "UUID that makes retries safe")),
    request_body = CommitTransactionRequest,
    responses((status = 204, description = "Committed"),
              (status = 404, description = "No such table", body = IcebergErrorResponse),
              (status = 409, description = "A requirement failed", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/transactions/commit")]
async fn commit_transaction(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: WarehousePath,
    body: web::Json<CommitTransactionRequest>,
) -> HttpResponse {
    let run = async {
        let wh = state.catalog.warehouse(&auth.0, &path.prefix).await?;
        let mut changes = Vec::new();
        for change in body.into_inner().table_changes {
            let id = change.identifier.as_ref().ok_or_else(|| {
                ApiError::bad_request("every table change in a transaction needs an identifier")
            })?;
            changes.push(table_change(identifier(id)?, change)?);
        }
        let tables: Vec<_> = changes.iter().map(|c| c.ident.clone()).collect();
        state
            .authz
            .require_operation(
                &auth.0,
                wh.record.id,
                Operation::CommitTransaction { tables: &tables },
            )
            .await?;
        idempotent(&state, &auth.0, &req, async {
            state.catalog.commit_transaction(&wh, changes).await?;
            Ok(Reply::no_content())
        })
        .await
    };
    run.await.unwrap_or_else(Reply::from).respond()
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;
    use crate::identity::Caller;

    /// The size of the future `make` would return, without making one.
    fn future_size<F: Future>(_make: impl FnOnce() -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// actix moves each request's whole future into a box, so every byte of load-table's future
    /// is copied on every load (26 KB of it before issue 25: a quarter of a load's
    /// instructions). What runs only on a miss or a denial is boxed where it starts, so the two
    /// calls the handler awaits stay small; this keeps them so.
    #[test]
    // The values are never made: only the futures' types are looked at.
    #[allow(unreachable_code, unused_variables, clippy::diverging_sub_expression)]
    fn load_tables_futures_stay_small() {
        const MOST: usize = 1536;
        let authorized = future_size(|| {
            let (path, state, caller): (TablePath, &'static AppState, &'static Caller) =
                unreachable!();
            path.authorized(state, caller, Privilege::TableReadMetadata)
        });
        let load = future_size(|| {
            let (state, caller, wh, ident): (
                &'static AppState,
                &'static Caller,
                &'static crate::catalog::Warehouse,
                &'static TableIdent,
            ) = unreachable!();
            state.answers.load(
                caller,
                wh,
                ident,
                SnapshotsMode::All,
                Delegation::default(),
                None,
            )
        });
        eprintln!("authorized: {authorized} bytes, load: {load} bytes");
        assert!(
            authorized <= MOST,
            "authorized's future is {authorized} bytes"
        );
        assert!(load <= MOST, "load's future is {load} bytes");
    }
}
