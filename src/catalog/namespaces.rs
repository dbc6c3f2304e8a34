//! Namespace use-cases.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{Catalog, CatalogError, CatalogResult, ErrorType, Warehouse};
use crate::domain::NamespaceIdent;
use crate::store::{NamespaceRecord, Page, PageRequest, now_ms};

/// What an update of namespace properties changed.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertiesUpdate {
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    pub missing: Vec<String>,
}

/// Namespace property keys the server manages itself.
const RESERVED_PROPERTIES: &[&str] = &["location"];

impl Catalog {
    /// Creates a namespace; its parent must exist.
    pub async fn create_namespace(
        &self,
        wh: &Warehouse,
        ident: NamespaceIdent,
        properties: BTreeMap<String, String>,
    ) -> CatalogResult<NamespaceRecord> {
        if let Some(key) = properties
            .keys()
            .find(|k| RESERVED_PROPERTIES.contains(&k.as_str()))
        {
            return Err(CatalogError::bad_request(format!(
                "namespace property '{key}' is managed by the server"
            )));
        }
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
        if let Some(key) = updates
            .keys()
            .chain(&removals)
            .find(|k| RESERVED_PROPERTIES.contains(&k.as_str()))
        {
            return Err(CatalogError::bad_request(format!(
                "namespace property '{key}' is managed by the server"
            )));
        }
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
