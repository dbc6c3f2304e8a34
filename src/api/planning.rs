//! Scan planning: `POST .../tables/{table}/plan`, answered `completed` at once with the plan's
//! file scan tasks and, when asked for and allowed, credentials for the files they name.

use actix_web::{HttpRequest, HttpResponse, post, web};
use bytes::Bytes;
use serde::Deserialize;
use utoipa::ToSchema;

use super::doc_parts::CommonErrors;
use super::paths::TablePath;
use super::types::IcebergErrorResponse;
use super::{ApiError, ApiResult, AppState, Authenticated, JsonBody};
use crate::domain::access::Privilege;
use crate::planning::filter::Filter;
use crate::planning::{PlanRequest, Scope};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(plan_table_scan);
}

/// The spec's `PlanTableScanRequest`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct PlanTableScanRequest {
    /// A point-in-time scan of this snapshot (not with the incremental fields).
    snapshot_id: Option<i64>,
    /// Columns read.
    select: Option<Vec<String>>,
    /// Rows read: an Iceberg expression, in either of the spec's JSON forms.
    #[schema(value_type = Option<Object>)]
    filter: Option<serde_json::Value>,
    /// A hint; the plan may hold fewer or more rows.
    #[allow(dead_code)]
    min_rows_requested: Option<i64>,
    /// Default `true`.
    case_sensitive: Option<bool>,
    /// Scan with the snapshot's schema (time travel) rather than the current one. Default `false`.
    use_snapshot_schema: Option<bool>,
    /// An incremental scan of the appends after this snapshot (exclusive)...
    start_snapshot_id: Option<i64>,
    /// ...up to this one (inclusive).
    end_snapshot_id: Option<i64>,
    /// Columns whose metrics each task carries.
    stats_fields: Option<Vec<String>>,
}

impl PlanTableScanRequest {
    fn parsed(self) -> ApiResult<PlanRequest> {
        let scope = match (
            self.snapshot_id,
            self.start_snapshot_id,
            self.end_snapshot_id,
        ) {
            (None, None, None) => Scope::Current,
            (Some(id), None, None) => Scope::Snapshot(id),
            (None, Some(after), Some(through)) => Scope::Appended { after, through },
            (Some(_), _, _) => {
                return Err(ApiError::bad_request(
                    "snapshot-id is a point-in-time scan: it cannot be sent with start-snapshot-id or end-snapshot-id",
                ));
            }
            _ => {
                return Err(ApiError::bad_request(
                    "an incremental scan needs both start-snapshot-id and end-snapshot-id",
                ));
            }
        };
        let filter = match &self.filter {
            None => Filter::True,
            Some(json) => Filter::parse(json).map_err(|e| ApiError::bad_request(e.to_string()))?,
        };
        Ok(PlanRequest {
            scope,
            select: self.select,
            filter,
            case_sensitive: self.case_sensitive.unwrap_or(true),
            use_snapshot_schema: self.use_snapshot_schema.unwrap_or(false),
            stats_fields: self.stats_fields,
        })
    }
}

/// Plan a scan: the data files to read, the delete files each needs and the filter left for
/// each. Needs `TABLE_READ_DATA` (a plan names files and carries column bounds). Answered
/// `completed` at once.
#[utoipa::path(post, path = "/v1/{prefix}/namespaces/{namespace}/tables/{table}/plan", operation_id = "planTableScan", tag = "Catalog API",
    params(TablePath,
           ("X-Iceberg-Access-Delegation" = Option<String>, Header, description = "vended-credentials and/or remote-signing")),
    request_body = PlanTableScanRequest,
    responses((status = 200, description = "A completed plan: `status`, `delete-files`, `file-scan-tasks`, `storage-credentials`"),
              (status = 404, description = "No such table, or no such snapshot", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/namespaces/{namespace}/tables/{table}/plan")]
async fn plan_table_scan(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: TablePath,
    body: web::Json<PlanTableScanRequest>,
) -> ApiResult<HttpResponse> {
    let request = body.into_inner().parsed()?;
    let (wh, ident) = path
        .authorized(&state, &auth.0, Privilege::TableReadData)
        .await?;
    let (tasks, storage) = state
        .answers
        .plan(
            &auth.0,
            &wh,
            &ident,
            &request,
            super::tables::delegation(&req),
        )
        .await?;
    let json = |v: &Vec<serde_json::Value>| {
        Bytes::from(serde_json::to_vec(v).expect("JSON values serialize"))
    };
    let mut pieces = vec![Bytes::from_static(b"{\"status\":\"completed\"")];
    if !tasks.delete_files.is_empty() {
        pieces.push(Bytes::from_static(b",\"delete-files\":"));
        pieces.push(json(&tasks.delete_files));
    }
    pieces.push(Bytes::from_static(b",\"file-scan-tasks\":"));
    pieces.push(json(&tasks.file_scan_tasks));
    if let Some(credential) = storage.credential_json {
        pieces.push(Bytes::from_static(b",\"storage-credentials\":["));
        pieces.push(credential);
        pieces.push(Bytes::from_static(b"]"));
    }
    pieces.push(Bytes::from_static(b"}"));
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .content_type("application/json")
        .body(JsonBody::of(pieces)))
}
