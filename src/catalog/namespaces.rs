//! Namespace use-cases. A namespace may have a `location` (inside its warehouse, owned by no
//! other table, view or namespace): its new tables and views are placed under it.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::tables::{checked_location, first_segment, is_server_id};
use super::{Catalog, CatalogError, CatalogResult, ErrorType, Warehouse};
use crate::domain::NamespaceIdent;
use crate::store::locations::NAMESPACE_LOCATION;
use crate::store::{NamespaceRecord, Page, PageRequest, now_ms};

/// What an update of namespace properties changed.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertiesUpdate {
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    pub missing: Vec<String>,
}

/// A namespace's `location`, normalized: strictly inside the warehouse and outside the server's
/// own layout (`{warehouse}/{namespace id}/...`, where namespaces without a location keep their
/// tables). Whether another table, view or namespace already owns it is the store's to decide.
fn checked_namespace_location(wh: &Warehouse, location: &str) -> CatalogResult<String> {
    let location = checked_location(wh, location)
        .map_err(|e| CatalogError::bad_request(format!("namespace {}", e.message)))?;
    let first = first_segment(wh, &location);
    if is_server_id(first) {
        return Err(CatalogError::bad_request(format!(
            "namespace location {location} is inside the server's own layout ({}/<id>/...); \
             choose a path whose first segment under the warehouse is not a 32-digit id",
            wh.root()
        )));
    }
    Ok(location)
}

/// Normalizes a `location` among `properties`, if there is one.
fn with_checked_location(
    wh: &Warehouse,
    mut properties: BTreeMap<String, String>,
) -> CatalogResult<BTreeMap<String, String>> {
    if let Some(location) = properties.get_mut(NAMESPACE_LOCATION) {
        *location = checked_namespace_location(wh, location)?;
    }
    Ok(properties)
}

impl Catalog {
    /// Creates a namespace; its parent must exist.
    pub async fn create_namespace(
        &self,
        wh: &Warehouse,
        ident: NamespaceIdent,
        properties: BTreeMap<String, String>,
    ) -> CatalogResult<NamespaceRecord> {
        let properties = with_checked_location(wh, properties)?;
        let record = NamespaceRecord {
            id: Uuid::now_v7(),
            ident,
            properties,
            created_at_ms: now_ms(),
        };
        self.store.create_namespace(wh.record.id, &record).await?;
        Ok(record)
    }

    /// A namespace with its properties.
    pub async fn load_namespace(
        &self,
        wh: &Warehouse,
        ident: &NamespaceIdent,
    ) -> CatalogResult<NamespaceRecord> {
        self.store
            .get_namespace(wh.record.id, ident)
            .await?
            .ok_or_else(|| {
                CatalogError::new(
                    ErrorType::NoSuchNamespace,
                    format!("namespace {ident} does not exist"),
                )
            })
    }

    /// Direct children of `parent`, or the top level.
    pub async fn list_namespaces(
        &self,
        wh: &Warehouse,
        parent: Option<&NamespaceIdent>,
        page: &PageRequest,
    ) -> CatalogResult<Page<NamespaceIdent>> {
        Ok(self
            .store
            .list_namespaces(wh.record.id, parent, page)
            .await?)
    }

    /// Removes then sets properties; a key may not be in both lists.
    pub async fn update_namespace_properties(
        &self,
        wh: &Warehouse,
        ident: &NamespaceIdent,
        updates: BTreeMap<String, String>,
        removals: Vec<String>,
    ) -> CatalogResult<PropertiesUpdate> {
        if let Some(both) = removals.iter().find(|k| updates.contains_key(*k)) {
            return Err(CatalogError::new(
                ErrorType::Unprocessable,
                format!("property '{both}' is both updated and removed"),
            ));
        }
        let updates = with_checked_location(wh, updates)?;
        let (before, _) = self
            .store
            .update_namespace_properties(wh.record.id, ident, &updates, &removals)
            .await?;
        let (removed, missing) = removals.into_iter().partition(|k| before.contains_key(k));
        Ok(PropertiesUpdate {
            updated: updates.into_keys().collect(),
            removed,
            missing,
        })
    }

    /// Drops an empty namespace.
    pub async fn drop_namespace(
        &self,
        wh: &Warehouse,
        ident: &NamespaceIdent,
    ) -> CatalogResult<()> {
        Ok(self.store.drop_namespace(wh.record.id, ident).await?)
    }
}
