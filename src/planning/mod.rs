//! Server-side scan planning: which data files (with the delete files each needs and what is
//! left of the filter for it) a scan of a table reads.
//!
//! Owns: resolving what a plan scans (the current snapshot of `main`, a snapshot, or the appends
//! between two snapshots), reading its manifest list and manifests through the manifest cache
//! (only files under the table's own location: [`manifests::TableFiles`]), pruning by partition
//! summaries, partition values and column metrics ([`prune`]), matching delete files
//! ([`deletes`]) and rendering the spec's `FileScanTask`s ([`render`]). Must not touch: HTTP, the
//! store, or who may plan (the caller was authorized for `TABLE_READ_DATA` before).
//!
//! A plan's whole work (reading, parsing, pruning, rendering) runs on the planning runtime's
//! low-priority threads ([`runtime`]), never on a request thread, so it uses what CPU requests
//! leave. The memory plans in flight hold is bounded ([`budget`]).
//!
//! A plan's id and its plan tasks are tokens signed with the server's keys (every replica
//! verifies them), bound to the table, the snapshot, the request, the principal and an expiry:
//! a client can neither forge nor alter one, nor use another principal's or another table's.
//! A plan that reads more data manifests than `planning.manifests_per_task` is answered as plan
//! tasks. At most `planning.max_in_flight` plans are computed at once and their answers hold at
//! most `planning.max_bytes_in_flight`; past either a plan answers 503 with `Retry-After`. When
//! the operator sets `planning.submitted_after_ms`, a plan not done by then answers `submitted`
//! and finishes in the background ([`submitted`]).

pub mod budget;
pub mod deletes;
pub mod filter;
pub mod manifests;
pub mod prune;
pub mod render;
pub mod rendered;
pub mod runtime;
pub mod submitted;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use iceberg::spec::{
    ManifestContentType, ManifestFile, ManifestStatus, Operation, SnapshotRef, TableMetadata,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{CatalogError, CatalogResult, ErrorType, LoadedTable};
use crate::config::PlanningSettings;
use crate::domain::PrincipalId;
use crate::identity::{SignedFor, TokenService};
use crate::storage::WarehouseIo;
use budget::{PlanBudget, Reservation};
use filter::Filter;
use manifests::{ManifestCache, TableFiles};
use prune::{PruningFilter, SpecFilter};
use render::StatsFields;
use rendered::{Rendered, RenderedPlans};
use runtime::PlanningRuntime;
use submitted::{Progress, Submitted};

/// Manifests read at once for one plan.
const READS_AT_ONCE: usize = 16;

/// The largest filter a plan may have, as JSON: its plan id and every plan task carry it.
pub const MAX_FILTER_BYTES: usize = 64 * 1024;

/// What a plan scans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Scope {
    /// The current snapshot of `main`.
    Current,
    /// One snapshot.
    Snapshot(i64),
    /// The data files appended after snapshot `after` up to and including `through`.
    Appended { after: i64, through: i64 },
}

/// A plan request, validated in its shape (the table decides the rest).
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub scope: Scope,
    /// Columns the client reads (checked against the scanned schema).
    pub select: Option<Vec<String>>,
    pub filter: Filter,
    pub case_sensitive: bool,
    /// Scan with the snapshot's schema rather than the table's current one.
    pub use_snapshot_schema: bool,
    /// Columns whose metrics each task carries.
    pub stats_fields: Option<Vec<String>>,
}

/// A plan's tasks, rendered off the request threads: the spec's `ScanTasks`.
#[derive(Debug)]
pub struct ScanTasks {
    /// The `delete-files` array, when a task references one.
    pub delete_files: Option<bytes::Bytes>,
    /// The `file-scan-tasks` array.
    pub file_scan_tasks: bytes::Bytes,
    /// Parts of the plan to fetch with `POST .../tasks`, each a signed token.
    pub plan_tasks: Vec<String>,
    /// The memory these tasks hold against the bound on plans in flight, until their answer is
    /// sent (the answer's body keeps it).
    pub reservation: Option<Reservation>,
}

impl Default for ScanTasks {
    fn default() -> Self {
        Self {
            delete_files: None,
            file_scan_tasks: bytes::Bytes::from_static(b"[]"),
            plan_tasks: Vec::new(),
            reservation: None,
        }
    }
}

/// A JSON array written one element at a time.
struct JsonArray(Vec<u8>);

impl JsonArray {
    fn new() -> Self {
        Self(vec![b'['])
    }

    fn push(&mut self, value: &Value) {
        if self.0.len() > 1 {
            self.0.push(b',');
        }
        serde_json::to_writer(&mut self.0, value).expect("JSON values serialize");
    }

    fn is_empty(&self) -> bool {
        self.0.len() == 1
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn done(mut self) -> bytes::Bytes {
        self.0.push(b']');
        bytes::Bytes::from(self.0)
    }
}

/// Where a plan is, as its answer says.
#[derive(Debug)]
pub enum PlanStatus {
    /// Done: its tasks.
    Completed(ScanTasks),
    /// Still planning in the background: poll its plan id.
    Submitted,
    /// Cancelled by its client.
    Cancelled,
    /// Planning it failed in the background.
    Failed(CatalogError),
}

/// A planned scan: its id (a signed token naming what to plan again) and where it is.
pub struct Plan {
    pub id: String,
    pub status: PlanStatus,
}

/// What planning needs of a table, owned (a plan may outlive the request that asked for it).
#[derive(Clone)]
pub struct PlannedTable {
    /// The table's recorded location: planning reads nothing outside it.
    pub location: String,
    pub metadata: Arc<TableMetadata>,
    /// When the catalog recorded the table (what planning keeps is kept for this table alone).
    pub recorded_at_ms: i64,
}

impl PlannedTable {
    pub fn of(table: &LoadedTable) -> Self {
        Self {
            location: table.location.clone(),
            metadata: table.table.metadata.clone(),
            recorded_at_ms: table.created_at_ms,
        }
    }
}

/// What a plan id or a plan task carries, signed: the table (its Iceberg UUID, so a table
/// dropped and created again under the same name is another table), the snapshot resolved when
/// it was planned, the request, and for a plan task the part of the manifest list it covers.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Signed {
    table: uuid::Uuid,
    scope: Scope,
    filter: Value,
    select: Option<Vec<String>>,
    case_sensitive: bool,
    use_snapshot_schema: bool,
    stats_fields: Option<Vec<String>>,
    /// Positions in the manifest list: `[from, to)`.
    manifests: Option<(usize, usize)>,
    /// Tells apart two plans of the same request (each is polled and cancelled on its own).
    #[serde(default)]
    nonce: u64,
}

impl Signed {
    fn request(&self) -> CatalogResult<PlanRequest> {
        Ok(PlanRequest {
            scope: self.scope.clone(),
            select: self.select.clone(),
            filter: Filter::parse(&self.filter).map_err(|e| CatalogError::internal(e.0))?,
            case_sensitive: self.case_sensitive,
            use_snapshot_schema: self.use_snapshot_schema,
            stats_fields: self.stats_fields.clone(),
        })
    }
}

/// What every plan shares: the manifest cache, the keys that sign plan ids and tasks, the
/// limits.
struct Shared {
    manifests: ManifestCache,
    rendered: RenderedPlans,
    tokens: Arc<TokenService>,
    settings: PlanningSettings,
    in_flight: Arc<tokio::sync::Semaphore>,
    budget: PlanBudget,
}

/// The planner: what plans share, the runtime they run on, and this replica's background plans.
pub struct Planner {
    shared: Arc<Shared>,
    runtime: PlanningRuntime,
    submitted: Submitted,
}

fn bad_request(message: impl Into<String>) -> CatalogError {
    CatalogError::bad_request(message)
}

impl Planner {
    pub fn new(
        settings: PlanningSettings,
        cache_bytes: u64,
        max_file_bytes: u64,
        tokens: Arc<TokenService>,
    ) -> std::io::Result<Self> {
        let runtime = PlanningRuntime::new(settings.threads, settings.nice)?;
        Ok(Self {
            submitted: Submitted::new(std::time::Duration::from_secs(settings.task_ttl_secs)),
            shared: Arc::new(Shared {
                // Of the planning cache's bytes: six eighths for manifests, an eighth for
                // manifest lists, an eighth for rendered answers.
                manifests: ManifestCache::new(cache_bytes / 8 * 6, cache_bytes / 8, max_file_bytes),
                rendered: RenderedPlans::new(cache_bytes / 8),
                in_flight: Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight)),
                budget: PlanBudget::new(settings.max_bytes_in_flight),
                settings,
                tokens,
            }),
            runtime,
        })
    }

    /// Bytes of parsed manifests kept.
    pub fn cached_bytes(&self) -> u64 {
        self.shared.manifests.occupied_bytes()
    }

    /// Bytes free for plans in flight.
    pub fn free_plan_bytes(&self) -> u64 {
        self.shared.budget.free_bytes()
    }

    /// Plans a scan of `table` for `caller`, reading its files with the server's `io`: the
    /// tasks, or plan tasks when it reads more manifests than one task holds; `submitted` when
    /// the operator lets plans finish in the background and this one is not done in time.
    pub async fn plan(
        &self,
        caller: PrincipalId,
        io: Arc<dyn WarehouseIo>,
        table: &LoadedTable,
        request: &PlanRequest,
    ) -> CatalogResult<Plan> {
        let metadata = &table.table.metadata;
        // The snapshot is fixed now: the plan's tasks read it whatever the table does next.
        let scope = match &request.scope {
            Scope::Current => match current(metadata) {
                Some(s) => Scope::Snapshot(s.snapshot_id()),
                None => Scope::Current,
            },
            other => other.clone(),
        };
        let filter = request.filter.to_json();
        if filter.to_string().len() > MAX_FILTER_BYTES {
            return Err(bad_request(format!(
                "the filter is larger than the {MAX_FILTER_BYTES} bytes a plan may have"
            )));
        }
        let signed = Signed {
            table: metadata.uuid(),
            scope,
            filter,
            select: request.select.clone(),
            case_sensitive: request.case_sensitive,
            use_snapshot_schema: request.use_snapshot_schema,
            stats_fields: request.stats_fields.clone(),
            manifests: None,
            nonce: rand::random(),
        };
        let id = self.shared.tokens.sign_for(
            SignedFor::Plan,
            caller,
            self.shared.settings.task_ttl_secs,
            &signed,
        );
        if let Some(tasks) = self.shared.reused(table, &signed) {
            return Ok(Plan {
                id,
                status: PlanStatus::Completed(tasks),
            });
        }
        let request = PlanRequest {
            scope: signed.scope.clone(),
            ..request.clone()
        };
        let job = self.start(caller, io, table, request, signed)?;
        let status = self.completed_or_submitted(&id, job).await?;
        Ok(Plan { id, status })
    }

    /// The plan `job` computes, completed; or, when the operator lets plans finish in the
    /// background and it is not done in time, kept under `id` and `submitted`.
    async fn completed_or_submitted(&self, id: &str, mut job: Job) -> CatalogResult<PlanStatus> {
        let Some(wait) = self.shared.settings.submitted_after_ms else {
            return Ok(PlanStatus::Completed(finished(job.await)?));
        };
        let wait = std::time::Duration::from_millis(wait);
        if !wait.is_zero()
            && let Ok(done) = tokio::time::timeout(wait, &mut job).await
        {
            return Ok(PlanStatus::Completed(finished(done)?));
        }
        self.submitted.keep(id, job.detach(), &self.runtime);
        Ok(PlanStatus::Submitted)
    }

    /// Where the plan a plan id names is: this replica's background plan when it holds it, else
    /// the plan planned again (it is signed, so any replica can), in the background as a new plan
    /// would be.
    pub async fn poll(
        &self,
        caller: PrincipalId,
        io: Arc<dyn WarehouseIo>,
        table: &LoadedTable,
        plan_id: &str,
    ) -> CatalogResult<PlanStatus> {
        let signed = self.plan_named(caller, table, plan_id)?;
        match self.submitted.poll(plan_id) {
            Some(Progress::Running) => return Ok(PlanStatus::Submitted),
            Some(Progress::Cancelled) => return Ok(PlanStatus::Cancelled),
            Some(Progress::Done(Ok(tasks))) => return Ok(PlanStatus::Completed(tasks)),
            Some(Progress::Done(Err(e))) => return Ok(PlanStatus::Failed(e)),
            None => {}
        }
        if let Some(tasks) = self.shared.reused(table, &signed) {
            return Ok(PlanStatus::Completed(tasks));
        }
        let request = signed.request()?;
        let job = self.start(caller, io, table, request, signed)?;
        self.completed_or_submitted(plan_id, job).await
    }

    /// Cancels the plan a plan id names: stops it if this replica plans it in the background.
    pub fn cancel(
        &self,
        caller: PrincipalId,
        table: &LoadedTable,
        plan_id: &str,
    ) -> CatalogResult<()> {
        self.plan_named(caller, table, plan_id)?;
        self.submitted.cancel(plan_id);
        Ok(())
    }

    /// Checks that `plan_id` is a plan of `table` made for `caller`.
    pub fn check_plan_id(
        &self,
        caller: PrincipalId,
        table: &LoadedTable,
        plan_id: &str,
    ) -> CatalogResult<()> {
        self.plan_named(caller, table, plan_id).map(|_| ())
    }

    fn plan_named(
        &self,
        caller: PrincipalId,
        table: &LoadedTable,
        plan_id: &str,
    ) -> CatalogResult<Signed> {
        self.verified(SignedFor::Plan, caller, table, plan_id)
            .ok_or_else(|| CatalogError::new(ErrorType::NoSuchPlanId, "the plan id does not exist"))
    }

    /// One plan task's file scan tasks.
    pub async fn task(
        &self,
        caller: PrincipalId,
        io: Arc<dyn WarehouseIo>,
        table: &LoadedTable,
        token: &str,
    ) -> CatalogResult<ScanTasks> {
        let signed = self
            .verified(SignedFor::PlanTask, caller, table, token)
            .filter(|s| s.manifests.is_some())
            .ok_or_else(|| {
                CatalogError::new(ErrorType::NoSuchPlanTask, "the plan task does not exist")
            })?;
        if let Some(tasks) = self.shared.reused(table, &signed) {
            return Ok(tasks);
        }
        let request = signed.request()?;
        finished(self.start(caller, io, table, request, signed)?.await)
    }

    /// What a signed token carries, when it is one of `purpose`, made for `caller`, on this
    /// very table; a forged, altered, expired or misdirected token is nothing.
    fn verified(
        &self,
        purpose: SignedFor,
        caller: PrincipalId,
        table: &LoadedTable,
        token: &str,
    ) -> Option<Signed> {
        match self.shared.tokens.verify_for::<Signed>(purpose, token) {
            Ok((subject, signed))
                if subject == caller && signed.table == table.table.metadata.uuid() =>
            {
                Some(signed)
            }
            Ok(_) => {
                tracing::warn!(table = %table.ident, "a plan token of another principal or table was refused");
                None
            }
            Err(_) => None,
        }
    }

    /// Starts planning `request` (the part `signed` names, if it names one) on the planning
    /// runtime, within the bounds on plans in flight; refused at once past them.
    fn start(
        &self,
        caller: PrincipalId,
        io: Arc<dyn WarehouseIo>,
        table: &LoadedTable,
        request: PlanRequest,
        signed: Signed,
    ) -> CatalogResult<Job> {
        let Ok(permit) = self.shared.in_flight.clone().try_acquire_owned() else {
            return Err(CatalogError::new(
                ErrorType::ServiceUnavailable,
                "this server is computing as many plans as it may; retry shortly",
            ));
        };
        let reservation = self.shared.budget.reserve(budget::START_BYTES)?;
        let shared = self.shared.clone();
        let table = PlannedTable::of(table);
        Ok(Job(Some(self.runtime.spawn(async move {
            let _permit = permit;
            shared
                .run(caller, io, table, request, signed, reservation)
                .await
        }))))
    }
}

/// A plan's outcome once its work is done (a panic's message goes to the log, not the client).
fn finished(
    done: Result<CatalogResult<ScanTasks>, tokio::task::JoinError>,
) -> CatalogResult<ScanTasks> {
    done.map_err(|e| {
        tracing::error!(error = %e, "a plan's work stopped");
        CatalogError::internal("planning stopped")
    })?
}

/// A plan's work, stopped when dropped: a client that goes away does not leave its plan
/// holding the planning threads and a place among the plans in flight.
struct Job(Option<tokio::task::JoinHandle<CatalogResult<ScanTasks>>>);

impl Job {
    /// The work, no longer stopped when this is dropped (kept in the background).
    fn detach(mut self) -> tokio::task::JoinHandle<CatalogResult<ScanTasks>> {
        self.0.take().expect("a job is detached once")
    }
}

impl std::future::Future for Job {
    type Output = Result<CatalogResult<ScanTasks>, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let handle = self.0.as_mut().expect("a detached job is not awaited");
        std::pin::Pin::new(handle).poll(cx)
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

impl Shared {
    /// The answer rendered before for this very plan, if one is kept: answered on the calling
    /// thread (a lookup), the planning threads are not woken for it. Its request was checked when
    /// the answer was rendered, against the same schema.
    fn reused(&self, table: &LoadedTable, signed: &Signed) -> Option<ScanTasks> {
        let key = rendered_key(&PlannedTable::of(table), signed)?;
        let hit = self.rendered.get(&key)?;
        Some(ScanTasks {
            delete_files: hit.delete_files,
            file_scan_tasks: hit.file_scan_tasks,
            plan_tasks: Vec::new(),
            reservation: None,
        })
    }

    /// Plans `request` (the part `signed` names, if it names one), holding `reservation` and
    /// growing it as the answer grows.
    async fn run(
        self: Arc<Self>,
        caller: PrincipalId,
        io: Arc<dyn WarehouseIo>,
        table: PlannedTable,
        request: PlanRequest,
        signed: Signed,
        reservation: Reservation,
    ) -> CatalogResult<ScanTasks> {
        let metadata = table.metadata.clone();
        let Some((snapshot, appended)) = scanned(&metadata, &request.scope)? else {
            return Ok(ScanTasks::default());
        };
        let schema = if request.use_snapshot_schema {
            snapshot
                .schema(&metadata)
                .map_err(|e| CatalogError::internal(format!("snapshot schema: {e}")))?
        } else {
            metadata.current_schema().clone()
        };
        let column = |name: &str| {
            let found = if request.case_sensitive {
                schema.field_by_name(name)
            } else {
                schema.field_by_name_case_insensitive(name)
            };
            found
                .map(|f| f.id)
                .ok_or_else(|| bad_request(format!("column '{name}' is not in the scanned schema")))
        };
        for name in request.select.iter().flatten() {
            column(name)?;
        }
        let stats: StatsFields = request
            .stats_fields
            .as_ref()
            .map(|names| {
                names
                    .iter()
                    .map(|n| column(n))
                    .collect::<CatalogResult<Vec<_>>>()
            })
            .transpose()?;
        let pruning = PruningFilter::new(
            request.filter.clone(),
            schema.clone(),
            request.case_sensitive,
        )
        .map_err(|e| bad_request(e.0))?;
        let key = rendered_key(&table, &signed);

        let files = TableFiles::new(io.as_ref(), &table.location, table.recorded_at_ms)?;
        let list = self
            .manifests
            .list(&files, snapshot.manifest_list(), metadata.format_version())
            .await?;
        let mut specs: HashMap<i32, Option<SpecFilter>> = HashMap::new();
        // Positions of the data manifests to read, and the delete manifests every part reads.
        let mut data: Vec<usize> = Vec::new();
        let mut deletes: Vec<usize> = Vec::new();
        for (at, manifest) in list.entries().iter().enumerate() {
            let is_data = manifest.content == ManifestContentType::Data;
            if let Some(appended) = &appended {
                // An incremental scan reads the data manifests its appends wrote, no deletes.
                if !is_data || !appended.contains(&manifest.added_snapshot_id) {
                    continue;
                }
            }
            if is_data
                && signed
                    .manifests
                    .is_some_and(|(from, to)| at < from || at >= to)
            {
                continue;
            }
            let spec = specs
                .entry(manifest.partition_spec_id)
                .or_insert_with(|| spec_filter(&metadata, &pruning, manifest.partition_spec_id));
            if spec
                .as_ref()
                .is_none_or(|s| s.manifest_may_match(manifest.partitions.as_deref()))
            {
                if is_data {
                    data.push(at)
                } else {
                    deletes.push(at)
                }
            }
        }
        if signed.manifests.is_none() && data.len() > self.settings.manifests_per_task {
            return Ok(ScanTasks {
                reservation: Some(reservation),
                ..self.plan_tasks(caller, &signed, &data)
            });
        }
        let files = &files;
        let wanted = deletes
            .into_iter()
            .chain(data)
            .map(|at| list.entries()[at].clone());
        let manifests = &self.manifests;
        let read: Vec<(ManifestFile, Arc<iceberg::spec::Manifest>)> = futures::stream::iter(wanted)
            .map(|m| async move {
                let read = manifests.manifest(files, &m).await?;
                Ok::<_, CatalogError>((m, read))
            })
            .buffered(READS_AT_ONCE)
            .try_collect()
            .await?;
        let scope = Scan {
            metadata,
            pruning,
            specs,
            appended,
            stats,
        };
        // On a planning thread already: rendering a large plan holds it, not a request thread.
        let tasks = scope.tasks(&read, reservation)?;
        if let Some(key) = key {
            self.rendered.keep(
                key,
                Rendered {
                    delete_files: tasks.delete_files.clone(),
                    file_scan_tasks: tasks.file_scan_tasks.clone(),
                },
            );
        }
        Ok(tasks)
    }

    /// A plan too large for one answer as plan tasks: each covers a run of consecutive manifest
    /// list positions holding at most `manifests_per_task` of the data manifests to read.
    fn plan_tasks(&self, caller: PrincipalId, signed: &Signed, data: &[usize]) -> ScanTasks {
        let plan_tasks = data
            .chunks(self.settings.manifests_per_task)
            .map(|part| {
                let task = Signed {
                    manifests: Some((part[0], part[part.len() - 1] + 1)),
                    ..signed.clone()
                };
                self.tokens.sign_for(
                    SignedFor::PlanTask,
                    caller,
                    self.settings.task_ttl_secs,
                    &task,
                )
            })
            .collect();
        ScanTasks {
            plan_tasks,
            ..ScanTasks::default()
        }
    }
}

/// What a plan's answer depends on beyond the immutable files it reads: the table, its record
/// (a table recorded later at its location, even under its UUID, is another) and its recorded
/// location (planning reads nothing outside it), the snapshot (fixed when it was
/// planned) and its manifest list, the current schema and format version, the request and the
/// part of the manifest list. `None` when the scan has no snapshot to fix, or its snapshot is no
/// longer the table's.
fn rendered_key(table: &PlannedTable, signed: &Signed) -> Option<String> {
    let metadata = &table.metadata;
    // The scope as the table is now: a snapshot since expired (or an incremental scan whose
    // ends no longer join) has no key, and is planned (and refused) again. Its manifest list
    // names the snapshot's content.
    let (snapshot, _) = scanned(metadata, &signed.scope).ok()??;
    if signed.scope == Scope::Current {
        return None;
    }
    let request = Signed {
        nonce: 0,
        ..signed.clone()
    };
    let key = (
        &table.location,
        table.recorded_at_ms,
        snapshot.manifest_list(),
        metadata.current_schema_id(),
        format!("{:?}", metadata.format_version()),
        request,
    );
    serde_json::to_string(&key).ok()
}

/// The current snapshot of `main`.
fn current(metadata: &TableMetadata) -> Option<&SnapshotRef> {
    metadata
        .snapshot_for_ref("main")
        .or_else(|| metadata.current_snapshot())
}

/// The spec filter of spec `id`, or `None` when the filter cannot be projected on it (nothing
/// of it is pruned then, and residuals are the whole filter).
fn spec_filter(metadata: &TableMetadata, pruning: &PruningFilter, id: i32) -> Option<SpecFilter> {
    let spec = metadata.partition_spec_by_id(id)?;
    pruning.on_spec(spec).ok()
}

/// The snapshot a scope reads, and for an incremental scan the appends it reads; `None` for a
/// table without snapshots.
fn scanned(
    metadata: &TableMetadata,
    scope: &Scope,
) -> CatalogResult<Option<(SnapshotRef, Option<HashSet<i64>>)>> {
    let snapshot = |id: i64| {
        metadata.snapshot_by_id(id).cloned().ok_or_else(|| {
            CatalogError::new(ErrorType::NotFound, format!("snapshot {id} does not exist"))
        })
    };
    Ok(match scope {
        Scope::Current => current(metadata).map(|s| (s.clone(), None)),
        Scope::Snapshot(id) => Some((snapshot(*id)?, None)),
        Scope::Appended { after, through } => {
            snapshot(*after)?;
            let end = snapshot(*through)?;
            let mut appended = HashSet::new();
            let mut at = Some(end.clone());
            loop {
                let Some(s) = at else {
                    return Err(bad_request(format!(
                        "snapshot {after} is not an ancestor of snapshot {through}"
                    )));
                };
                if s.snapshot_id() == *after {
                    break;
                }
                if s.summary().operation == Operation::Append {
                    appended.insert(s.snapshot_id());
                }
                at = s
                    .parent_snapshot_id()
                    .and_then(|p| metadata.snapshot_by_id(p).cloned());
            }
            Some((end, Some(appended)))
        }
    })
}

/// A manifest's partition type, as the manifest records its spec and schema.
fn partition_type(manifest: &iceberg::spec::Manifest) -> CatalogResult<iceberg::spec::StructType> {
    let meta = manifest.metadata();
    meta.partition_spec
        .partition_type(&meta.schema)
        .map_err(|e| CatalogError::internal(format!("a manifest's partition type: {e}")))
}

/// One plan's state once its manifests are read.
struct Scan {
    metadata: Arc<TableMetadata>,
    pruning: PruningFilter,
    specs: HashMap<i32, Option<SpecFilter>>,
    appended: Option<HashSet<i64>>,
    stats: StatsFields,
}

impl Scan {
    fn tasks(
        mut self,
        read: &[(ManifestFile, Arc<iceberg::spec::Manifest>)],
        mut reservation: Reservation,
    ) -> CatalogResult<ScanTasks> {
        let mut deletes = deletes::DeleteIndex::default();
        for (file, manifest) in read
            .iter()
            .filter(|(f, _)| f.content == ManifestContentType::Deletes)
        {
            let spec_id = file.partition_spec_id;
            let unpartitioned = self
                .metadata
                .partition_spec_by_id(spec_id)
                .is_none_or(|s| s.is_unpartitioned());
            let partition_type = Arc::new(partition_type(manifest)?);
            for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                if self.may_hold(spec_id, entry.data_file.partition()) {
                    deletes.add(
                        entry.clone(),
                        spec_id,
                        partition_type.clone(),
                        unpartitioned,
                    );
                }
            }
        }
        let (mut tasks, mut delete_files) = (JsonArray::new(), JsonArray::new());
        let mut delete_indexes: HashMap<usize, usize> = HashMap::new();
        for (file, manifest) in read
            .iter()
            .filter(|(f, _)| f.content == ManifestContentType::Data)
        {
            let spec_id = file.partition_spec_id;
            let partition_type = partition_type(manifest)?;
            for entry in manifest.entries() {
                let live = match &self.appended {
                    Some(appended) => {
                        entry.status == ManifestStatus::Added
                            && entry.snapshot_id.is_some_and(|s| appended.contains(&s))
                    }
                    None => entry.is_alive(),
                };
                if !live
                    || !self.may_hold(spec_id, entry.data_file.partition())
                    || !self.pruning.metrics_may_match(&entry.data_file)
                {
                    continue;
                }
                let mut task = serde_json::Map::new();
                task.insert(
                    "data-file".into(),
                    render::content_file(entry, spec_id, &partition_type, &self.stats),
                );
                let needed = if self.appended.is_some() {
                    Vec::new()
                } else {
                    deletes.for_data_file(entry, spec_id)
                };
                if !needed.is_empty() {
                    let references: Vec<usize> = needed
                        .into_iter()
                        .map(|at| {
                            let next = delete_indexes.len();
                            *delete_indexes.entry(at).or_insert_with(|| {
                                let d = deletes.file(at);
                                delete_files.push(&render::content_file(
                                    &d.entry,
                                    d.spec_id,
                                    &d.partition_type,
                                    &None,
                                ));
                                next
                            })
                        })
                        .collect();
                    task.insert("delete-file-references".into(), references.into());
                }
                let residual = match self.specs.get_mut(&spec_id).and_then(Option::as_mut) {
                    Some(spec) => self.pruning.residual(spec, entry.data_file.partition()),
                    None => self.pruning.whole(),
                };
                task.insert("residual-filter".into(), residual);
                tasks.push(&Value::Object(task));
                let held = (tasks.len() + delete_files.len()) as u64 + budget::START_BYTES;
                if held > reservation.bytes() {
                    reservation.grow_to(held)?;
                }
            }
        }
        Ok(ScanTasks {
            delete_files: (!delete_files.is_empty()).then(|| delete_files.done()),
            file_scan_tasks: tasks.done(),
            plan_tasks: Vec::new(),
            reservation: Some(reservation),
        })
    }

    /// Whether a file of spec `spec_id` in `partition` may hold a match.
    fn may_hold(&self, spec_id: i32, partition: &iceberg::spec::Struct) -> bool {
        match self.specs.get(&spec_id) {
            Some(Some(spec)) => spec.partition_may_match(partition),
            _ => true,
        }
    }
}
