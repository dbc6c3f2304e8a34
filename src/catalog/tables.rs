//! Table use-cases: create (and stage-create), load, commit with in-server retries, multi-table
//! transactions, drop (with purge), rename and register.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use iceberg::spec::{Schema, SortOrder, TableMetadata, TableMetadataBuilder, UnboundPartitionSpec};
use iceberg::{TableCreation, TableRequirement, TableUpdate};
use uuid::Uuid;

use super::metadata::CurrentFile;
use super::properties::{DEFAULT_FORMAT_VERSION, split_reserved, updates_without_reserved};
use super::{
    CachedTable, Catalog, CatalogError, CatalogResult, CommitDeadline, CommitError, ErrorType,
    Warehouse,
};
use crate::domain::{NamespaceIdent, ObjectName, TableIdent};
use crate::storage::{is_inside, normalize_location};
use crate::store::locations::{LocationClaim, NAMESPACE_LOCATION};
use crate::store::{MetadataSwap, NamespaceRecord, TabularKind, TabularRecord, now_ms};

/// Table properties that redirect where files are written; they must stay inside the table.
const PATH_PROPERTIES: &[&str] = &[
    "write.data.path",
    "write.metadata.path",
    "write.object-storage.path",
    "write.folder-storage.path",
];

/// A create-table request, as the spec's `CreateTableRequest`.
pub struct CreateTable {
    pub name: ObjectName,
    pub location: Option<String>,
    pub schema: Schema,
    pub partition_spec: Option<UnboundPartitionSpec>,
    pub write_order: Option<SortOrder>,
    pub stage_create: bool,
    pub properties: HashMap<String, String>,
}

/// One table's requirements and updates, as the spec's `CommitTableRequest`.
pub struct TableChange {
    pub ident: TableIdent,
    pub requirements: Vec<TableRequirement>,
    pub updates: Vec<TableUpdate>,
}

/// A table as load-table returns it. `metadata_location` is `None` for a staged create.
pub struct LoadedTable {
    pub ident: TableIdent,
    /// The location the catalog recorded and claimed for the table (a staged create's reserved
    /// one): the only location anything is vended, signed or presigned for. The metadata file
    /// names the same location, or it is not served.
    pub location: String,
    pub metadata_location: Option<String>,
    pub table: Arc<CachedTable>,
    /// When the catalog recorded this table (0 for a staged create, not recorded yet): tells it
    /// apart from a table recorded later at its location, even under its UUID (what is kept by
    /// location for one must never answer for the other).
    pub created_at_ms: i64,
}

impl LoadedTable {
    /// `metadata-location` as JSON: the file's location as a string, or `null` for a staged
    /// create, which has no file yet.
    pub fn metadata_location_json(&self) -> Bytes {
        match &self.metadata_location {
            Some(location) => self.table.location_json(location).clone(),
            None => Bytes::from_static(b"null"),
        }
    }
}

impl Catalog {
    /// Creates a table, or with `stage_create` only returns the metadata it would have.
    pub async fn create_table(
        &self,
        wh: &Warehouse,
        ns: &NamespaceIdent,
        req: CreateTable,
    ) -> CatalogResult<LoadedTable> {
        let namespace = self.load_namespace(wh, ns).await?;
        let ident = TableIdent::new(ns.clone(), req.name.clone());
        if let Some(existing) = self.store.get_tabular(wh.record.id, &ident).await? {
            return Err(already_exists(&existing));
        }
        let uuid = Uuid::now_v7();
        let location = match &req.location {
            Some(l) => checked_object_location(wh, &namespace, l)?,
            None => default_location(wh, &namespace, uuid),
        };
        let properties = split_reserved(req.properties)?;
        check_path_properties(&location, &properties.persisted)?;
        let creation = TableCreation::builder()
            .name(req.name.to_string())
            .location(location.clone())
            .schema(req.schema)
            .partition_spec_opt(req.partition_spec)
            .sort_order_opt(req.write_order)
            .properties(properties.persisted)
            .format_version(properties.format_version.unwrap_or(DEFAULT_FORMAT_VERSION))
            .build();
        let metadata = TableMetadataBuilder::from_table_creation(creation)?
            .assign_uuid(uuid)
            .build()?
            .metadata;
        if req.stage_create {
            // Held for this stage alone before anything is vended, signed or presigned for it;
            // its commit (the same id, in this namespace) turns the reservation into its claim.
            let expires_at_ms = now_ms() + self.options.staged_create_ttl.as_millis() as i64;
            let claim = LocationClaim::staged(location.clone(), uuid, ns.clone(), expires_at_ms);
            self.store.reserve_location(wh.record.id, &claim).await?;
            wh.io().prepare_table_location(&location).await?;
            let json =
                serde_json::to_vec(&metadata).map_err(|e| CatalogError::internal(e.to_string()))?;
            let table = Arc::new(CachedTable::new(metadata, json.into()));
            return Ok(LoadedTable {
                ident,
                location,
                metadata_location: None,
                table,
                created_at_ms: 0,
            });
        }
        self.insert_table(wh, ident, uuid, location, metadata).await
    }

    async fn insert_table(
        &self,
        wh: &Warehouse,
        ident: TableIdent,
        id: Uuid,
        location: String,
        metadata: TableMetadata,
    ) -> CatalogResult<LoadedTable> {
        let (metadata_location, table) = self
            .metadata
            .write_table(wh.io().as_ref(), &location, None, metadata)
            .await?;
        let kind = TabularKind::Table;
        let created_at_ms = self
            .record_new(
                wh,
                id.into(),
                kind,
                ident.clone(),
                location.clone(),
                &metadata_location,
            )
            .await?;
        Ok(LoadedTable {
            ident,
            location,
            metadata_location: Some(metadata_location),
            table,
            created_at_ms,
        })
    }

    async fn table_record(
        &self,
        wh: &Warehouse,
        ident: &TableIdent,
    ) -> CatalogResult<Option<TabularRecord>> {
        match self.store.get_tabular(wh.record.id, ident).await? {
            Some(r) if r.kind == TabularKind::Table => Ok(Some(r)),
            _ => Ok(None),
        }
    }

    /// The table's current metadata (from cache when warm).
    pub async fn load_table(
        &self,
        wh: &Warehouse,
        ident: &TableIdent,
    ) -> CatalogResult<LoadedTable> {
        let record = self
            .table_record(wh, ident)
            .await?
            .ok_or_else(|| CatalogError::no_such(TabularKind::Table, ident))?;
        let table = self.current_metadata(wh, &record).await?;
        Ok(LoadedTable {
            ident: ident.clone(),
            location: record.location,
            metadata_location: Some(record.metadata_location),
            table,
            created_at_ms: record.created_at_ms,
        })
    }

    /// The metadata file `record` points at, refused unless it names the location the catalog
    /// recorded and claimed for the table. Anyone holding the table's write keys can rewrite its
    /// files, so the file is never what decides where the table lives.
    async fn current_metadata(
        &self,
        wh: &Warehouse,
        record: &TabularRecord,
    ) -> CatalogResult<Arc<CachedTable>> {
        let table = self
            .metadata
            .table(wh.io().as_ref(), &record.metadata_location)
            .await?;
        let named = table.metadata.location();
        if named != record.location
            && normalize_location(named).ok().as_deref() != Some(record.location.as_str())
        {
            tracing::warn!(table = %record.ident, id = %record.id, "a metadata file names another location than its table's; not served");
            return Err(CatalogError::internal(format!(
                "table {}'s current metadata file names the location {named}, not the table's \
                 location {}: it was changed outside the catalog and is not served",
                record.ident, record.location
            )));
        }
        Ok(table)
    }

    /// Commits one table's changes. A lost race is retried while the requirements still hold; a
    /// failed requirement is a 409. With `assert-create` and no table, this creates the table
    /// (the second half of a staged create).
    pub async fn commit_table(
        &self,
        wh: &Warehouse,
        change: TableChange,
    ) -> CatalogResult<LoadedTable> {
        let Some(record) = self.table_record(wh, &change.ident).await? else {
            if change.requirements.contains(&TableRequirement::NotExist) {
                return self.create_from_updates(wh, change).await;
            }
            if let Some(other) = self.store.get_tabular(wh.record.id, &change.ident).await? {
                return Err(CatalogError::no_such(
                    TabularKind::Table,
                    format!("{} (it is a {})", change.ident, other.kind.noun()),
                ));
            }
            return Err(CatalogError::no_such(TabularKind::Table, &change.ident));
        };
        // Commits to one table from this process queue here instead of racing; races with other
        // replicas are still caught by the store's compare-and-swap.
        let deadline = self.commit_deadline(self.options.commit_deadline);
        let lock = self.commit_lock(wh.record.id, record.id);
        let _guard = lock.lock().await;
        let mut loaded = self
            .commit_tables(wh, std::slice::from_ref(&change), &deadline)
            .await?;
        Ok(loaded.remove(0))
    }

    /// Commits several tables' changes atomically: all or none.
    pub async fn commit_transaction(
        &self,
        wh: &Warehouse,
        changes: Vec<TableChange>,
    ) -> CatalogResult<()> {
        let mut seen = std::collections::HashSet::new();
        for c in &changes {
            if !seen.insert(&c.ident) {
                return Err(CatalogError::bad_request(format!(
                    "table {} appears twice in one transaction",
                    c.ident
                )));
            }
        }
        if changes.is_empty() {
            return Err(CatalogError::bad_request(
                "a transaction needs at least one table change",
            ));
        }
        let deadline = self.commit_deadline(self.options.commit_deadline);
        self.commit_tables(wh, &changes, &deadline)
            .await
            .map(|_| ())
    }

    async fn commit_tables(
        &self,
        wh: &Warehouse,
        changes: &[TableChange],
        deadline: &CommitDeadline,
    ) -> CatalogResult<Vec<LoadedTable>> {
        self.with_commit_retries(deadline, || self.commit_tables_once(wh, changes, deadline))
            .await
    }

    /// One attempt: write every table's new metadata, then swap all pointers or none. A failed
    /// attempt deletes the files it wrote.
    async fn commit_tables_once(
        &self,
        wh: &Warehouse,
        changes: &[TableChange],
        deadline: &CommitDeadline,
    ) -> Result<Vec<LoadedTable>, CommitError> {
        let mut swaps = Vec::with_capacity(changes.len());
        let mut written = Vec::with_capacity(changes.len());
        let result = match self
            .prepare_commits(wh, changes, &mut swaps, &mut written)
            .await
        {
            Ok(()) => match deadline.check() {
                Ok(()) => self
                    .store
                    .swap_metadata(wh.record.id, TabularKind::Table, &swaps)
                    .await
                    .map_err(Into::into),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => Ok(written),
            Err(e) => {
                for t in &written {
                    if let Some(loc) = &t.metadata_location {
                        self.metadata.discard(wh.io().as_ref(), loc).await;
                    }
                }
                Err(e)
            }
        }
    }

    /// Checks and applies every change against current metadata and writes the new files.
    async fn prepare_commits(
        &self,
        wh: &Warehouse,
        changes: &[TableChange],
        swaps: &mut Vec<MetadataSwap>,
        written: &mut Vec<LoadedTable>,
    ) -> Result<(), CommitError> {
        for change in changes {
            let record = self
                .table_record(wh, &change.ident)
                .await?
                .ok_or_else(|| CatalogError::no_such(TabularKind::Table, &change.ident))?;
            let current = self.current_metadata(wh, &record).await?;
            let next = apply_changes(&current.metadata, &record, change)?;
            let (location, table) = self
                .metadata
                .write_table(
                    wh.io().as_ref(),
                    &record.location,
                    Some(&CurrentFile {
                        location: &record.metadata_location,
                        bytes: current.json.len(),
                    }),
                    next,
                )
                .await?;
            swaps.push(MetadataSwap {
                ident: change.ident.clone(),
                expected: record.metadata_location,
                new: location.clone(),
            });
            written.push(LoadedTable {
                ident: change.ident.clone(),
                location: record.location,
                metadata_location: Some(location),
                table,
                created_at_ms: record.created_at_ms,
            });
        }
        Ok(())
    }

    /// Creates a table from a create transaction's updates (`assert-create` + the initial changes).
    async fn create_from_updates(
        &self,
        wh: &Warehouse,
        change: TableChange,
    ) -> CatalogResult<LoadedTable> {
        let namespace = self.load_namespace(wh, &change.ident.namespace).await?;
        let updates = updates_without_reserved(change.updates)?;
        let mut uuid = None;
        let (mut location, mut schema, mut spec, mut order) = (None, None, None, None);
        let (mut format, mut properties) = (DEFAULT_FORMAT_VERSION, HashMap::new());
        for u in &updates {
            match u {
                TableUpdate::AssignUuid { uuid: u } => uuid = Some(*u),
                TableUpdate::SetLocation { location: l } => {
                    location = Some(checked_object_location(wh, &namespace, l)?)
                }
                TableUpdate::AddSchema { schema: s } if schema.is_none() => {
                    schema = Some(s.clone())
                }
                TableUpdate::AddSpec { spec: s } if spec.is_none() => spec = Some(s.clone()),
                TableUpdate::AddSortOrder { sort_order } if order.is_none() => {
                    order = Some(sort_order.clone())
                }
                TableUpdate::UpgradeFormatVersion { format_version } => format = *format_version,
                TableUpdate::SetProperties { updates } => properties.extend(updates.clone()),
                _ => {}
            }
        }
        let schema = schema
            .ok_or_else(|| CatalogError::bad_request("a create transaction must add a schema"))?;
        let uuid = uuid.unwrap_or_else(Uuid::now_v7);
        let location = location.unwrap_or_else(|| default_location(wh, &namespace, uuid));
        check_path_properties(&location, &properties)?;
        let base = TableMetadataBuilder::new(
            schema,
            spec.unwrap_or_else(|| UnboundPartitionSpec::builder().build()),
            order.unwrap_or_else(SortOrder::unsorted_order),
            location.clone(),
            format,
            properties,
        )?
        .assign_uuid(uuid)
        .build()?
        .metadata;
        for r in &change.requirements {
            if *r != TableRequirement::NotExist {
                r.check(Some(&base))?;
            }
        }
        let mut builder = base.into_builder(None);
        for u in updates {
            builder = u.apply(builder)?;
        }
        let metadata = builder.build()?.metadata;
        self.insert_table(wh, change.ident, uuid, location, metadata)
            .await
    }

    /// Drops a table into its warehouse's recycle bin; with `purge`, its files are deleted when
    /// it leaves the bin.
    pub async fn drop_table(
        &self,
        wh: &Warehouse,
        ident: &TableIdent,
        purge: bool,
    ) -> CatalogResult<()> {
        self.drop_tabular(wh, TabularKind::Table, ident, purge)
            .await
    }

    /// Registers an existing metadata file (inside the warehouse) as a table.
    pub async fn register_table(
        &self,
        wh: &Warehouse,
        ident: TableIdent,
        metadata_location: &str,
        overwrite: bool,
    ) -> CatalogResult<LoadedTable> {
        let namespace = self.load_namespace(wh, &ident.namespace).await?;
        let metadata_location = checked_location(wh, metadata_location)?;
        let table = self
            .metadata
            .table_from_storage(wh.io().as_ref(), &metadata_location)
            .await
            .map_err(|e| match e.kind {
                // Absent, or not table metadata (a view's, a directory, anything else): the
                // caller named the wrong file.
                ErrorType::NotFound | ErrorType::Internal => CatalogError::bad_request(format!(
                    "{metadata_location} cannot be registered as a table: {}",
                    e.message
                )),
                _ => e,
            })?;
        let location = checked_object_location(wh, &namespace, table.metadata.location())?;
        let created_at_ms = match self.store.get_tabular(wh.record.id, &ident).await? {
            Some(existing) if overwrite && existing.kind == TabularKind::Table => {
                // The location is what the table owns (and what readers get credentials for):
                // overwriting may point it at another metadata file, never at another location.
                if location != existing.location {
                    return Err(CatalogError::bad_request(format!(
                        "register with overwrite must keep table {ident}'s location {}; the \
                         metadata file names {location}",
                        existing.location
                    )));
                }
                let swap = [MetadataSwap {
                    ident: ident.clone(),
                    expected: existing.metadata_location,
                    new: metadata_location.clone(),
                }];
                self.store
                    .swap_metadata(wh.record.id, TabularKind::Table, &swap)
                    .await?;
                existing.created_at_ms
            }
            Some(existing) => return Err(already_exists(&existing)),
            None => {
                let record = TabularRecord {
                    id: table.metadata.uuid().into(),
                    kind: TabularKind::Table,
                    ident: ident.clone(),
                    location: location.clone(),
                    metadata_location: metadata_location.clone(),
                    created_at_ms: now_ms(),
                };
                self.record_registered(wh, &record).await?;
                record.created_at_ms
            }
        };
        Ok(LoadedTable {
            ident,
            location,
            metadata_location: Some(metadata_location),
            table,
            created_at_ms,
        })
    }
}

impl From<crate::storage::IoError> for CommitError {
    fn from(e: crate::storage::IoError) -> Self {
        CatalogError::from(e).into()
    }
}

impl From<iceberg::Error> for CommitError {
    fn from(e: iceberg::Error) -> Self {
        CatalogError::from(e).into()
    }
}

impl Catalog {
    /// Records a registered table or view, then makes sure its metadata file is still there. A
    /// purge of a dropped object at the same location may have deleted the file after it was
    /// read and left the bin before the record was made; a purge deletes before it leaves, so a
    /// file still there now stays (its location is claimed by this record from now on).
    pub(super) async fn record_registered(
        &self,
        wh: &Warehouse,
        record: &TabularRecord,
    ) -> CatalogResult<()> {
        self.store.create_tabular(wh.record.id, record).await?;
        let read = wh
            .io()
            .read(
                &record.metadata_location,
                self.options.max_metadata_file_bytes,
            )
            .await;
        if let Err(crate::storage::IoError::NotFound(_)) = read {
            self.store
                .drop_tabular(wh.record.id, record.kind, &record.ident)
                .await?;
            return Err(CatalogError::bad_request(format!(
                "{} was purged while it was being registered",
                record.metadata_location
            )));
        }
        Ok(())
    }
}

fn already_exists(existing: &TabularRecord) -> CatalogError {
    CatalogError::new(
        ErrorType::AlreadyExists,
        format!("{} {} already exists", existing.kind.noun(), existing.ident),
    )
}

/// `{namespace location}/{table id}` when the namespace has a location, else
/// `{warehouse}/{namespace id}/{table id}`: ids, not names, so a rename or a re-created name never
/// shares a location and no name can shape a path.
pub(super) fn default_location(wh: &Warehouse, namespace: &NamespaceRecord, id: Uuid) -> String {
    match namespace.properties.get(NAMESPACE_LOCATION) {
        Some(parent) => format!("{parent}/{}", id.simple()),
        None => format!("{}/{}/{}", wh.root(), namespace.id.simple(), id.simple()),
    }
}

/// The first path segment of `location` (inside the warehouse) under the warehouse's root: where
/// the server's own layout puts a namespace's id.
pub(super) fn first_segment<'a>(wh: &Warehouse, location: &'a str) -> &'a str {
    location[wh.root().len()..]
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
}

/// Whether `segment` has the shape of a server-assigned directory (a namespace's or a table's
/// id in simple form).
pub(super) fn is_server_id(segment: &str) -> bool {
    segment.len() == 32 && segment.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A client-supplied location of a table or view in `namespace`, normalized: strictly inside the
/// warehouse and, inside the server's own layout (`{warehouse}/{namespace id}/...`), only in its
/// own namespace's directory. Another namespace's directory is where the server places that
/// namespace's tables; squatting it would refuse them.
pub(super) fn checked_object_location(
    wh: &Warehouse,
    namespace: &NamespaceRecord,
    location: &str,
) -> CatalogResult<String> {
    let location = checked_location(wh, location)?;
    let first = first_segment(wh, &location);
    if is_server_id(first) && !first.eq_ignore_ascii_case(&namespace.id.simple().to_string()) {
        return Err(CatalogError::bad_request(format!(
            "location {location} is inside another namespace's directory ({}/<namespace id>/...): \
             a table or view may use only its own namespace's",
            wh.root()
        )));
    }
    Ok(location)
}

/// A client-supplied location, normalized, which must lie strictly inside the warehouse.
pub(super) fn checked_location(wh: &Warehouse, location: &str) -> CatalogResult<String> {
    let normalized = normalize_location(location).map_err(CatalogError::bad_request)?;
    let root = wh.root();
    if !is_inside(&normalized, &root) || normalized == root {
        return Err(CatalogError::bad_request(format!(
            "location {location} is outside warehouse '{}' (it must lie under {root}/)",
            wh.record.name
        )));
    }
    Ok(normalized)
}

fn check_path_properties(
    location: &str,
    properties: &HashMap<String, String>,
) -> CatalogResult<()> {
    for key in PATH_PROPERTIES {
        if let Some(path) = properties.get(*key) {
            let ok = normalize_location(path).is_ok_and(|p| is_inside(&p, location));
            if !ok {
                return Err(CatalogError::bad_request(format!(
                    "table property {key}={path} points outside the table location {location}/"
                )));
            }
        }
    }
    Ok(())
}

/// Checks requirements against `current` and applies updates, refusing changes the server does
/// not allow (a new uuid, a new location, write paths outside the table).
fn apply_changes(
    current: &TableMetadata,
    record: &TabularRecord,
    change: &TableChange,
) -> CatalogResult<TableMetadata> {
    for r in &change.requirements {
        r.check(Some(current))?;
    }
    let mut builder = current
        .clone()
        .into_builder(Some(record.metadata_location.clone()));
    for u in &updates_without_reserved(change.updates.clone())? {
        match u {
            TableUpdate::AssignUuid { uuid } if *uuid != current.uuid() => {
                return Err(CatalogError::bad_request(
                    "a table's uuid cannot be changed",
                ));
            }
            TableUpdate::SetLocation { location }
                if normalize_location(location).ok().as_deref()
                    != Some(record.location.as_str()) =>
            {
                return Err(CatalogError::bad_request(
                    "a table's location cannot be changed",
                ));
            }
            TableUpdate::SetProperties { updates } => {
                check_path_properties(&record.location, updates)?
            }
            _ => {}
        }
        builder = u.clone().apply(builder)?;
    }
    Ok(builder.build()?.metadata)
}
