//! Scan planning: `POST .../plan` (answered `completed` with a plan id, the file scan tasks or
//! plan tasks, and, when asked for and allowed, credentials for the files they name; or
//! `submitted` when the operator lets plans finish in the background), `GET .../plan/{plan-id}`
//! (`completed`, `submitted`, `cancelled` or `failed`), `DELETE .../plan/{plan-id}` and
//! `POST .../tasks`. Every route needs `TABLE_READ_DATA`.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use bytes::Bytes;
use serde::Deserialize;
use utoipa::ToSchema;

use super::doc_parts::CommonErrors;
use super::paths::TablePath;
use super::types::IcebergErrorResponse;
use super::{ApiError, ApiResult, AppState, Authenticated, JsonBody};
use crate::domain::access::Privilege;
use crate::planning::budget::Reservation;
use crate::planning::filter::Filter;
use crate::planning::{PlanRequest, PlanStatus, ScanTasks, Scope};
use crate::vending::table_storage::TableStorage;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(plan_table_scan)
        .service(fetch_planning_result)
        .service(cancel_planning)
        .service(fetch_scan_tasks);
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

/// A JSON object of `members` (each `"key":value` without a comma) in order.
fn object(members: Vec<Vec<Bytes>>) -> JsonBody {
    let mut pieces = vec![Bytes::from_static(b"{")];
    for (i, member) in members.into_iter().enumerate() {
        if i > 0 {
            pieces.push(Bytes::from_static(b","));
        }
        pieces.extend(member);
    }
    pieces.push(Bytes::from_static(b"}"));
    JsonBody::of(pieces)
}

fn json<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("JSON values serialize"))
}

/// The spec's `ScanTasks` members: `delete-files` (only beside the tasks that reference them),
/// `file-scan-tasks` (always: Iceberg Java refuses an answer with neither it nor `plan-tasks`),
/// `plan-tasks`, and the credential.
fn scan_tasks(tasks: ScanTasks, credential: Option<Bytes>) -> Vec<Vec<Bytes>> {
    let mut members = Vec::new();
    if let Some(deletes) = tasks.delete_files {
        members.push(vec![Bytes::from_static(b"\"delete-files\":"), deletes]);
    }
    members.push(vec![
        Bytes::from_static(b"\"file-scan-tasks\":"),
        tasks.file_scan_tasks,
    ]);
    if !tasks.plan_tasks.is_empty() {
        members.push(vec![
            Bytes::from_static(b"\"plan-tasks\":"),
            json(&tasks.plan_tasks),
        ]);
    }
    if let Some(credential) = credential {
        members.push(vec![
            Bytes::from_static(b"\"storage-credentials\":["),
            credential,
            Bytes::from_static(b"]"),
        ]);
    }
    members
}

/// A plan's answer, holding its tasks' memory reservation until it is sent and dropped: the
/// answer counts against the bound on plan memory until it leaves (a slow reader holds it).
struct PlanBody {
    body: JsonBody,
    _held: Option<Reservation>,
}

impl MessageBody for PlanBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// `members` as an object that holds the tasks' memory reservation until it is sent.
fn tasks_answer(members: Vec<Vec<Bytes>>, held: Option<Reservation>) -> PlanBody {
    PlanBody {
        body: object(members),
        _held: held,
    }
}

/// A completed plan's answer: `status`, the plan id when given, and its tasks.
fn completed(plan_id: Option<&str>, mut tasks: ScanTasks, credential: Option<Bytes>) -> PlanBody {
    let held = tasks.reservation.take();
    let mut members = vec![vec![Bytes::from_static(b"\"status\":\"completed\"")]];
    if let Some(id) = plan_id {
        members.push(vec![
            Bytes::from_static(b"\"plan-id\":"),
            super::json_string(id),
        ]);
    }
    members.extend(scan_tasks(tasks, credential));
    tasks_answer(members, held)
}

/// A plan's answer as its status says: `plan_id` is sent with a new plan's answer.
fn status(plan_id: Option<&str>, status: PlanStatus, storage: Option<TableStorage>) -> PlanBody {
    let id = |members: &mut Vec<Vec<Bytes>>| {
        if let Some(id) = plan_id {
            members.push(vec![
                Bytes::from_static(b"\"plan-id\":"),
                super::json_string(id),
            ]);
        }
    };
    match status {
        PlanStatus::Completed(tasks) => {
            completed(plan_id, tasks, storage.and_then(|s| s.credential_json))
        }
        PlanStatus::Submitted => {
            let mut members = vec![vec![Bytes::from_static(b"\"status\":\"submitted\"")]];
            id(&mut members);
            tasks_answer(members, None)
        }
        PlanStatus::Cancelled => tasks_answer(
            vec![vec![Bytes::from_static(b"\"status\":\"cancelled\"")]],
            None,
        ),
        PlanStatus::Failed(e) => {
            let e = ApiError::from(e);
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "a plan failed in the background"
            );
            tasks_answer(
                vec![
                    vec![Bytes::from_static(b"\"status\":\"failed\"")],
                    vec![Bytes::from_static(b"\"error\":"), json(&e.body().error)],
                ],
                None,
            )
        }
    }
}

fn no_store(body: PlanBody) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .content_type("application/json")
        .body(body)
}

/// Plan a scan: the data files to read, the delete files each needs and the filter left for
/// each, or plan tasks to fetch them by when the plan is large. Needs `TABLE_READ_DATA` (a plan
/// names files and carries column bounds). Answered `completed` with a `plan-id`; `submitted`
/// (poll the `plan-id`) when the server lets plans finish in the background
/// (`planning.submitted_after_ms`) and this one is not done in time. 503 with `Retry-After`
/// when the server computes as many plans, or holds as much plan data, as it may.
#[utoipa::path(post, path = "/v1/{prefix}/namespaces/{namespace}/tables/{table}/plan", operation_id = "planTableScan", tag = "Catalog API",
    params(TablePath,
           ("X-Iceberg-Access-Delegation" = Option<String>, Header, description = "vended-credentials and/or remote-signing")),
    request_body = PlanTableScanRequest,
    responses((status = 200, description = "A completed plan (`status`, `plan-id`, `delete-files`, `file-scan-tasks`, `plan-tasks`, `storage-credentials`), or a submitted one (`status`, `plan-id`)"),
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
    let (plan, storage) = state
        .answers
        .plan(
            &auth.0,
            &wh,
            &ident,
            &request,
            super::tables::delegation(&req),
        )
        .await?;
    Ok(no_store(status(Some(&plan.id), plan.status, storage)))
}

/// The `plan-id` segment of a plan's routes.
fn plan_id(req: &HttpRequest) -> ApiResult<String> {
    req.match_info()
        .get("plan_id")
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request("no plan id"))
}

/// Fetch a plan's result: `submitted` while it plans in the background, then `completed` (its
/// answer is handed over once; a later fetch, or one on another replica, plans the id again),
/// `cancelled`, or `failed` with its error. A plan this replica does not hold is planned again.
#[utoipa::path(get, path = "/v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan-id}", operation_id = "fetchPlanningResult", tag = "Catalog API",
    params(TablePath, ("plan-id" = String, Path, description = "The plan's id"),
           ("X-Iceberg-Access-Delegation" = Option<String>, Header, description = "vended-credentials and/or remote-signing")),
    responses((status = 200, description = "The plan: `completed` with its tasks, `submitted`, `cancelled`, or `failed` with `error`"),
              (status = 404, description = "No such plan id (`NoSuchPlanIdException`), or no such table", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[get("/v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan_id}")]
async fn fetch_planning_result(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: TablePath,
) -> ApiResult<HttpResponse> {
    let id = plan_id(&req)?;
    let (wh, ident) = path
        .authorized(&state, &auth.0, Privilege::TableReadData)
        .await?;
    let (plan, storage) = state
        .answers
        .poll_plan(&auth.0, &wh, &ident, &id, super::tables::delegation(&req))
        .await?;
    Ok(no_store(status(None, plan, storage)))
}

/// Cancel a plan: one planned in the background stops and frees what it holds (a later fetch
/// answers `cancelled`); a completed plan holds nothing, so cancelling it only checks its id.
#[utoipa::path(delete, path = "/v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan-id}", operation_id = "cancelPlanning", tag = "Catalog API",
    params(TablePath, ("plan-id" = String, Path, description = "The plan's id")),
    responses((status = 204, description = "Cancelled"),
              (status = 404, description = "No such plan id (`NoSuchPlanIdException`), or no such table", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[delete("/v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan_id}")]
async fn cancel_planning(
    state: web::Data<AppState>,
    auth: Authenticated,
    req: HttpRequest,
    path: TablePath,
) -> ApiResult<HttpResponse> {
    let id = plan_id(&req)?;
    let (wh, ident) = path
        .authorized(&state, &auth.0, Privilege::TableReadData)
        .await?;
    state.answers.cancel_plan(&auth.0, &wh, &ident, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The spec's `FetchScanTasksRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FetchScanTasksRequest {
    /// A plan task from a plan's `plan-tasks`.
    #[serde(rename = "plan-task")]
    plan_task: String,
}

/// Fetch one plan task's file scan tasks.
#[utoipa::path(post, path = "/v1/{prefix}/namespaces/{namespace}/tables/{table}/tasks", operation_id = "fetchScanTasks", tag = "Catalog API",
    params(TablePath),
    request_body = FetchScanTasksRequest,
    responses((status = 200, description = "`delete-files` and `file-scan-tasks`"),
              (status = 404, description = "No such plan task (`NoSuchPlanTaskException`), or no such table", body = IcebergErrorResponse), CommonErrors),
    security(("bearer" = [])))]
#[post("/v1/{prefix}/namespaces/{namespace}/tables/{table}/tasks")]
async fn fetch_scan_tasks(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: TablePath,
    body: web::Json<FetchScanTasksRequest>,
) -> ApiResult<HttpResponse> {
    let (wh, ident) = path
        .authorized(&state, &auth.0, Privilege::TableReadData)
        .await?;
    let mut tasks = state
        .answers
        .plan_task(&auth.0, &wh, &ident, &body.plan_task)
        .await?;
    let held = tasks.reservation.take();
    Ok(no_store(tasks_answer(scan_tasks(tasks, None), held)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan's answer counts against the bound on plan memory until it is sent: its body holds
    /// the reservation through sending, and lets go when dropped.
    #[test]
    fn a_plan_answer_holds_its_memory_until_it_is_dropped() {
        let budget = crate::planning::budget::PlanBudget::new(1 << 20);
        let tasks = ScanTasks {
            reservation: Some(budget.reserve(512 * 1024).unwrap()),
            ..ScanTasks::default()
        };
        let mut body = completed(Some("id"), tasks, None);
        assert_eq!(budget.free_bytes(), 512 * 1024);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut sent = Vec::new();
        while let Poll::Ready(Some(Ok(piece))) = Pin::new(&mut body).poll_next(&mut cx) {
            sent.extend_from_slice(&piece);
        }
        let sent: serde_json::Value = serde_json::from_slice(&sent).unwrap();
        assert_eq!(sent["status"], "completed");
        assert_eq!(budget.free_bytes(), 512 * 1024, "sent, not yet dropped");
        drop(body);
        assert_eq!(budget.free_bytes(), 1 << 20);
    }
}
