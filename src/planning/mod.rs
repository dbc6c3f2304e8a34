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
//! Parsing and pruning run on the blocking pool, never on a request thread.
//!
//! Not built yet (issue 26 goes on): plan tasks for large plans, `submitted` plans and their
//! ids, the `tasks` and `plan/{plan-id}` routes, and per-warehouse or per-table
//! `scan-planning-mode`.

pub mod deletes;
pub mod filter;
pub mod manifests;
pub mod prune;
pub mod render;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use iceberg::spec::{
    ManifestContentType, ManifestFile, ManifestStatus, Operation, SnapshotRef, TableMetadata,
};
use serde_json::Value;

use crate::catalog::{CatalogError, CatalogResult, ErrorType, LoadedTable};
use crate::storage::WarehouseIo;
use filter::Filter;
use manifests::{ManifestCache, TableFiles};
use prune::{PruningFilter, SpecFilter};
use render::StatsFields;

/// Manifests read at once for one plan.
const READS_AT_ONCE: usize = 16;

/// What a plan scans.
#[derive(Debug, Clone, PartialEq)]
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

/// A plan's tasks, rendered: the `delete-files` and `file-scan-tasks` of the spec's `ScanTasks`.
#[derive(Debug, Default)]
pub struct ScanTasks {
    pub delete_files: Vec<Value>,
    pub file_scan_tasks: Vec<Value>,
}

/// The planner: its manifest cache and where it reads.
pub struct Planner {
    manifests: ManifestCache,
}

fn bad_request(message: impl Into<String>) -> CatalogError {
    CatalogError::bad_request(message)
}

impl Planner {
    pub fn new(cache_bytes: u64, max_file_bytes: u64) -> Self {
        Self {
            manifests: ManifestCache::new(cache_bytes, max_file_bytes),
        }
    }

    /// Bytes of parsed manifests kept.
    pub fn cached_bytes(&self) -> u64 {
        self.manifests.occupied_bytes()
    }

    /// Plans a scan of `table`, reading its files with the server's `io`.
    pub async fn plan(
        &self,
        io: &dyn WarehouseIo,
        table: &LoadedTable,
        request: &PlanRequest,
    ) -> CatalogResult<ScanTasks> {
        let metadata = table.table.metadata.clone();
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

        let files = TableFiles::new(io, &table.location)?;
        let list = self
            .manifests
            .list(&files, snapshot.manifest_list(), metadata.format_version())
            .await?;
        let mut specs: HashMap<i32, Option<SpecFilter>> = HashMap::new();
        let mut wanted: Vec<ManifestFile> = Vec::new();
        for manifest in list.entries() {
            if let Some(appended) = &appended {
                // An incremental scan reads the data manifests its appends wrote, no deletes.
                if manifest.content != ManifestContentType::Data
                    || !appended.contains(&manifest.added_snapshot_id)
                {
                    continue;
                }
            }
            let spec = specs
                .entry(manifest.partition_spec_id)
                .or_insert_with(|| spec_filter(&metadata, &pruning, manifest.partition_spec_id));
            if spec
                .as_ref()
                .is_none_or(|s| s.manifest_may_match(manifest.partitions.as_deref()))
            {
                wanted.push(manifest.clone());
            }
        }
        let files = &files;
        let read: Vec<(ManifestFile, Arc<iceberg::spec::Manifest>)> = futures::stream::iter(wanted)
            .map(|m| async move {
                let read = self.manifests.manifest(files, &m).await?;
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
        tokio::task::spawn_blocking(move || scope.tasks(&read))
            .await
            .map_err(|e| CatalogError::internal(format!("planning stopped: {e}")))?
    }
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
        Scope::Current => metadata
            .snapshot_for_ref("main")
            .or_else(|| metadata.current_snapshot())
            .map(|s| (s.clone(), None)),
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
        let mut out = ScanTasks::default();
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
                                out.delete_files.push(render::content_file(
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
                out.file_scan_tasks.push(Value::Object(task));
            }
        }
        Ok(out)
    }

    /// Whether a file of spec `spec_id` in `partition` may hold a match.
    fn may_hold(&self, spec_id: i32, partition: &iceberg::spec::Struct) -> bool {
        match self.specs.get(&spec_id) {
            Some(Some(spec)) => spec.partition_may_match(partition),
            _ => true,
        }
    }
}
