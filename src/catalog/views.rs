//! View use-cases. The `iceberg` crate has no `ViewRequirement` and no `ViewUpdate::apply`, so both
//! are here: each update maps onto one `ViewMetadataBuilder` call.

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::ViewUpdate;
use iceberg::spec::{Schema, ViewFormatVersion, ViewMetadata, ViewMetadataBuilder, ViewVersion};
use serde::Deserialize;
use uuid::Uuid;

use super::tables::{checked_location, checked_object_location, default_location};
use super::{
    CachedView, Catalog, CatalogError, CatalogResult, CommitDeadline, CommitError, ErrorType,
    Warehouse,
};
use crate::domain::TabularId;
use crate::domain::{NamespaceIdent, ObjectName, TableIdent};
use crate::store::{MetadataSwap, TabularKind, TabularRecord, now_ms};

/// A requirement of a view commit (the spec knows only `assert-view-uuid`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type")]
pub enum ViewRequirement {
    #[serde(rename = "assert-view-uuid")]
    AssertViewUuid { uuid: Uuid },
}

/// A create-view request.
pub struct CreateView {
    pub name: ObjectName,
    pub location: Option<String>,
    pub schema: Schema,
    pub view_version: ViewVersion,
    pub properties: HashMap<String, String>,
}

/// A view as load-view returns it.
pub struct LoadedView {
    pub metadata_location: String,
    pub view: Arc<CachedView>,
}

impl Catalog {
    /// Creates a view.
    pub async fn create_view(
        &self,
        wh: &Warehouse,
        ns: &NamespaceIdent,
        req: CreateView,
    ) -> CatalogResult<LoadedView> {
        let namespace = self.load_namespace(wh, ns).await?;
        let ident = TableIdent::new(ns.clone(), req.name);
        if let Some(existing) = self.store.get_tabular(wh.record.id, &ident).await? {
            return Err(CatalogError::new(
                ErrorType::AlreadyExists,
                format!("{} {ident} already exists", existing.kind.noun()),
            ));
        }
        let id = TabularId::now_v7();
        let location = match &req.location {
            Some(l) => checked_object_location(wh, &namespace, l)?,
            None => default_location(wh, &namespace, id.uuid()),
        };
        let metadata = ViewMetadataBuilder::new(
            location.clone(),
            req.schema,
            req.view_version,
            ViewFormatVersion::V1,
            req.properties,
        )?
        .assign_uuid(id.uuid())
        .build()?
        .metadata;
        let (metadata_location, view) = self
            .metadata
            .write_view(wh.io().as_ref(), &location, None, metadata)
            .await?;
        let kind = TabularKind::View;
        self.record_new(wh, id, kind, ident, location, &metadata_location)
            .await?;
        Ok(LoadedView {
            metadata_location,
            view,
        })
    }

    async fn view_record(
        &self,
        wh: &Warehouse,
        ident: &TableIdent,
    ) -> CatalogResult<TabularRecord> {
        match self.store.get_tabular(wh.record.id, ident).await? {
            Some(r) if r.kind == TabularKind::View => Ok(r),
            _ => Err(CatalogError::no_such(TabularKind::View, ident)),
        }
    }

    /// The view's current metadata.
    pub async fn load_view(&self, wh: &Warehouse, ident: &TableIdent) -> CatalogResult<LoadedView> {
        let record = self.view_record(wh, ident).await?;
        let view = self
            .metadata
            .view(wh.io().as_ref(), &record.metadata_location)
            .await?;
        Ok(LoadedView {
            metadata_location: record.metadata_location,
            view,
        })
    }

    /// Replaces a view's metadata (commit), retrying lost races while requirements hold.
    pub async fn replace_view(
        &self,
        wh: &Warehouse,
        ident: &TableIdent,
        requirements: Vec<ViewRequirement>,
        updates: Vec<ViewUpdate>,
    ) -> CatalogResult<LoadedView> {
        // Replaces of one view from this process queue here, as table commits do.
        let deadline = self.commit_deadline(self.options.commit_deadline);
        let record = self.view_record(wh, ident).await?;
        let lock = self.commit_lock(wh.record.id, record.id);
        let _guard = lock.lock().await;
        self.with_commit_retries(&deadline, || {
            self.replace_view_once(wh, ident, &requirements, &updates, &deadline)
        })
        .await
    }

    /// One attempt: check the requirements against the current view, write its new metadata and
    /// swap the pointer. A failed attempt deletes the file it wrote.
    async fn replace_view_once(
        &self,
        wh: &Warehouse,
        ident: &TableIdent,
        requirements: &[ViewRequirement],
        updates: &[ViewUpdate],
        deadline: &CommitDeadline,
    ) -> Result<LoadedView, CommitError> {
        let record = self.view_record(wh, ident).await?;
        let current = self
            .metadata
            .view(wh.io().as_ref(), &record.metadata_location)
            .await?;
        for ViewRequirement::AssertViewUuid { uuid } in requirements {
            if *uuid != current.metadata.uuid() {
                return Err(CatalogError::commit_failed(format!(
                    "view {ident} has uuid {}, not {uuid}",
                    current.metadata.uuid()
                ))
                .into());
            }
        }
        let next = apply_view_updates(&current.metadata, &record, updates.to_vec())?;
        let (location, view) = self
            .metadata
            .write_view(
                wh.io().as_ref(),
                &record.location,
                Some(&record.metadata_location),
                next,
            )
            .await?;
        let swap = [MetadataSwap {
            ident: ident.clone(),
            expected: record.metadata_location,
            new: location.clone(),
        }];
        if let Err(e) = deadline.check() {
            self.metadata.discard(wh.io().as_ref(), &location).await;
            return Err(e);
        }
        match self
            .store
            .swap_metadata(wh.record.id, TabularKind::View, &swap)
            .await
        {
            Ok(()) => Ok(LoadedView {
                metadata_location: location,
                view,
            }),
            Err(e) => {
                self.metadata.discard(wh.io().as_ref(), &location).await;
                Err(e.into())
            }
        }
    }

    /// Drops a view (its files stay, as views have no purge in the spec).
    pub async fn drop_view(&self, wh: &Warehouse, ident: &TableIdent) -> CatalogResult<()> {
        self.drop_tabular(wh, TabularKind::View, ident, false).await
    }

    /// Registers an existing view metadata file (inside the warehouse) as a view.
    pub async fn register_view(
        &self,
        wh: &Warehouse,
        ident: TableIdent,
        metadata_location: &str,
    ) -> CatalogResult<LoadedView> {
        let namespace = self.load_namespace(wh, &ident.namespace).await?;
        let metadata_location = checked_location(wh, metadata_location)?;
        let view = self
            .metadata
            .view_from_storage(wh.io().as_ref(), &metadata_location)
            .await
            .map_err(|e| match e.kind {
                // Absent, or not view metadata: the caller named the wrong file.
                ErrorType::NotFound | ErrorType::Internal => CatalogError::bad_request(format!(
                    "{metadata_location} cannot be registered as a view: {}",
                    e.message
                )),
                _ => e,
            })?;
        let location = checked_object_location(wh, &namespace, view.metadata.location())?;
        let record = TabularRecord {
            id: view.metadata.uuid().into(),
            kind: TabularKind::View,
            ident,
            location,
            metadata_location: metadata_location.clone(),
            created_at_ms: now_ms(),
        };
        self.record_registered(wh, &record).await?;
        Ok(LoadedView {
            metadata_location,
            view,
        })
    }
}

fn apply_view_updates(
    current: &ViewMetadata,
    record: &TabularRecord,
    updates: Vec<ViewUpdate>,
) -> CatalogResult<ViewMetadata> {
    let mut builder = ViewMetadataBuilder::new_from_metadata(current.clone());
    for update in updates {
        builder = match update {
            ViewUpdate::AssignUuid { uuid } if uuid == current.uuid() => builder,
            ViewUpdate::AssignUuid { .. } => {
                return Err(CatalogError::bad_request("a view's uuid cannot be changed"));
            }
            ViewUpdate::UpgradeFormatVersion { format_version } => {
                builder.upgrade_format_version(format_version)?
            }
            ViewUpdate::AddSchema { schema, .. } => builder.add_schema(schema),
            ViewUpdate::SetLocation { location } => {
                if checked_location_eq(&location, &record.location) {
                    builder
                } else {
                    return Err(CatalogError::bad_request(
                        "a view's location cannot be changed",
                    ));
                }
            }
            ViewUpdate::SetProperties { updates } => builder.set_properties(updates)?,
            ViewUpdate::RemoveProperties { removals } => builder.remove_properties(&removals),
            ViewUpdate::AddViewVersion { view_version } => builder.add_version(view_version)?,
            ViewUpdate::SetCurrentViewVersion { view_version_id } => {
                builder.set_current_version_id(view_version_id)?
            }
        };
    }
    Ok(builder.build()?.metadata)
}

fn checked_location_eq(a: &str, b: &str) -> bool {
    crate::storage::normalize_location(a).is_ok_and(|a| a == b)
}
