//! Upgrades of stored records the tenancy use-cases run at start, through the store's traits like
//! any other change (so each write announces its change to other replicas).
//!
//! Owns: rewriting grants stored by table or view name to name the object's id. Must not touch:
//! how any backend keeps grants.

use crate::changes::Change;
use crate::domain::access::GrantResource;
use crate::store::{CatalogStore, GrantRecord, StoreError, StoreResult, TabularKind};

/// Rewrites grants stored by table or view name to name the object's id, and deletes those whose
/// object no longer exists (so a future object of that name does not inherit them). Runs at start.
pub async fn upgrade_name_keyed_grants(store: &dyn CatalogStore) -> StoreResult<usize> {
    // Other replicas drop decisions made on the old grants; this one has made none yet.
    let change = Change::Grants;
    let mut upgraded = 0;
    for tenant in store.list_tenants().await? {
        for grant in store.list_grants(tenant.id, None).await? {
            let (warehouse, ident, kind) = match &grant.resource {
                GrantResource::TableByName { warehouse, table } => {
                    (*warehouse, table, TabularKind::Table)
                }
                GrantResource::ViewByName { warehouse, view } => {
                    (*warehouse, view, TabularKind::View)
                }
                _ => continue,
            };
            let object = store
                .get_tabular(warehouse, ident)
                .await?
                .filter(|r| r.kind == kind);
            store.delete_grant(tenant.id, grant.id, &change).await?;
            if let Some(object) = object {
                let resource = match kind {
                    TabularKind::Table => GrantResource::Table {
                        warehouse,
                        table: object.id,
                    },
                    TabularKind::View => GrantResource::View {
                        warehouse,
                        view: object.id,
                    },
                };
                match store
                    .create_grant(&GrantRecord { resource, ..grant }, &change)
                    .await
                {
                    Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            upgraded += 1;
        }
    }
    Ok(upgraded)
}
