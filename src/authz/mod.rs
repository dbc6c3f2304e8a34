//! May the caller do this, and with what data access?
//!
//! Owns: the fixed set of privileges, what each implies, how grants on a container reach what is
//! inside it, and a short-lived cache of each principal's grants. Must not touch: HTTP types.
//! A principal's grants (and whether it is still enabled) are re-read at once after a change made
//! through this process, as soon as another replica's change notification arrives (PostgreSQL),
//! and at most [`DECISION_CACHE_SECS`] after any change.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::catalog::{CatalogError, CatalogResult, ErrorType};
use crate::domain::{NamespaceIdent, TableIdent};
use crate::identity::Caller;
use crate::store::{CatalogStore, GrantResource};

/// How long a principal's grants are trusted without reading them again.
pub const DECISION_CACHE_SECS: u64 = 5;

/// What a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Privilege {
    /// Everything in the tenant, including its management API.
    TenantAdmin,
    /// Everything in a warehouse.
    WarehouseAdmin,
    NamespaceCreate,
    NamespaceDrop,
    NamespaceList,
    NamespaceRead,
    NamespaceWrite,
    TableCreate,
    TableDrop,
    TableList,
    TableReadMetadata,
    TableReadData,
    TableWriteData,
    ViewCreate,
    ViewDrop,
    ViewList,
    ViewRead,
    ViewWrite,
}

impl Privilege {
    /// True when holding `self` also gives `wanted`.
    pub fn implies(self, wanted: Privilege) -> bool {
        use Privilege::*;
        self == wanted
            || match self {
                TenantAdmin => true,
                WarehouseAdmin => wanted != TenantAdmin,
                TableWriteData => matches!(wanted, TableReadData | TableReadMetadata),
                TableReadData => wanted == TableReadMetadata,
                NamespaceWrite => wanted == NamespaceRead,
                ViewWrite => wanted == ViewRead,
                _ => false,
            }
    }
}

/// A table's data access for vending: from the caller's grants on it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DataAccess {
    None,
    Read,
    ReadWrite,
}

fn namespace_contains(outer: &NamespaceIdent, inner: &NamespaceIdent) -> bool {
    outer == inner || inner.is_inside(outer)
}

/// True when a grant on `grant` reaches `target` (the same resource, or something inside it).
pub fn contains(grant: &GrantResource, target: &GrantResource) -> bool {
    use GrantResource::*;
    let warehouse_of = |r: &GrantResource| match r {
        Tenant => None,
        Warehouse { warehouse }
        | Namespace { warehouse, .. }
        | Table { warehouse, .. }
        | View { warehouse, .. } => Some(*warehouse),
    };
    match grant {
        Tenant => true,
        Warehouse { warehouse } => warehouse_of(target) == Some(*warehouse),
        Namespace {
            warehouse,
            namespace,
        } => {
            warehouse_of(target) == Some(*warehouse)
                && match target {
                    Namespace { namespace: n, .. } => namespace_contains(namespace, n),
                    Table { table: t, .. } | View { view: t, .. } => {
                        namespace_contains(namespace, &t.namespace)
                    }
                    _ => false,
                }
        }
        Table { .. } | View { .. } => grant == target,
    }
}

/// A grant held by the caller through one of its roles.
type Held = Vec<(GrantResource, Privilege)>;

/// Decides and caches.
pub struct Authorizer {
    store: Arc<dyn CatalogStore>,
    held: moka::sync::Cache<Uuid, Arc<Option<Held>>>,
}

impl Authorizer {
    /// An authorizer reading grants from `store`.
    pub fn new(store: Arc<dyn CatalogStore>) -> Self {
        let held = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_secs(DECISION_CACHE_SECS))
            .build();
        Self { store, held }
    }

    /// Forgets every cached decision (after a change to grants, roles or principals).
    pub fn invalidate(&self) {
        self.held.invalidate_all();
    }

    /// The caller's grants; `None` when the principal is gone or disabled.
    async fn held(&self, caller: &Caller) -> CatalogResult<Arc<Option<Held>>> {
        static HITS: LazyLock<metrics::Counter> =
            LazyLock::new(|| metrics::counter!("floe_grant_cache_hits_total"));
        if let Some(hit) = self.held.get(&caller.principal_id) {
            HITS.increment(1);
            return Ok(hit);
        }
        metrics::counter!("floe_grant_cache_misses_total").increment(1);
        let principal = self.store.get_principal(caller.principal_id).await?;
        let held = match principal {
            Some(p) if !p.disabled && p.tenant_id == caller.tenant_id => {
                let roles = self.store.roles_of(p.id).await?;
                let grants = self.store.list_grants(p.tenant_id, None).await?;
                Some(
                    grants
                        .into_iter()
                        .filter(|g| roles.contains(&g.role_id))
                        .map(|g| (g.resource, g.privilege))
                        .collect(),
                )
            }
            _ => None,
        };
        let held = Arc::new(held);
        self.held.insert(caller.principal_id, held.clone());
        Ok(held)
    }

    async fn active_grants(&self, caller: &Caller) -> CatalogResult<Arc<Option<Held>>> {
        let held = self.held(caller).await?;
        if held.is_none() {
            return Err(CatalogError::new(
                ErrorType::NotAuthorized,
                "this principal is disabled or no longer exists",
            ));
        }
        Ok(held)
    }

    /// True when the caller holds `wanted` on `target` (root holds everything).
    pub async fn allows(
        &self,
        caller: &Caller,
        target: &GrantResource,
        wanted: Privilege,
    ) -> CatalogResult<bool> {
        let held = self.active_grants(caller).await?;
        if caller.root {
            return Ok(true);
        }
        let held = held.as_ref().as_ref().expect("checked active");
        Ok(held
            .iter()
            .any(|(resource, privilege)| privilege.implies(wanted) && contains(resource, target)))
    }

    /// Fails with 403 unless the caller holds `wanted` on `target`.
    pub async fn require(
        &self,
        caller: &Caller,
        target: &GrantResource,
        wanted: Privilege,
    ) -> CatalogResult<()> {
        if self.allows(caller, target, wanted).await? {
            return Ok(());
        }
        let event = crate::store::AuditEvent {
            id: Uuid::now_v7(),
            tenant_id: caller.tenant_id,
            at_ms: crate::store::now_ms(),
            actor: caller.principal_id,
            action: format!("{wanted:?}"),
            resource: describe(target),
            outcome: "denied".into(),
        };
        record_audit(self.store.as_ref(), &event).await;
        Err(CatalogError::new(
            ErrorType::Forbidden,
            format!(
                "not allowed: this needs {wanted:?} on the {}",
                describe(target)
            ),
        ))
    }

    /// True when the caller holds anything on `target`, inside it or above it: enough to see its name.
    pub async fn sees(&self, caller: &Caller, target: &GrantResource) -> CatalogResult<bool> {
        let held = self.active_grants(caller).await?;
        if caller.root {
            return Ok(true);
        }
        let held = held.as_ref().as_ref().expect("checked active");
        Ok(held
            .iter()
            .any(|(resource, _)| contains(resource, target) || contains(target, resource)))
    }

    /// The caller's data access to a table: read-write, read, or none.
    pub async fn data_access(
        &self,
        caller: &Caller,
        warehouse: Uuid,
        table: &TableIdent,
    ) -> CatalogResult<DataAccess> {
        let target = GrantResource::Table {
            warehouse,
            table: table.clone(),
        };
        if self
            .allows(caller, &target, Privilege::TableWriteData)
            .await?
        {
            Ok(DataAccess::ReadWrite)
        } else if self
            .allows(caller, &target, Privilege::TableReadData)
            .await?
        {
            Ok(DataAccess::Read)
        } else {
            Ok(DataAccess::None)
        }
    }
}

/// Writes an audit event to the log and the store (a store failure is logged, not raised).
pub async fn record_audit(store: &dyn CatalogStore, event: &crate::store::AuditEvent) {
    tracing::info!(
        target: "floe::audit",
        tenant = %event.tenant_id, actor = %event.actor, action = %event.action,
        resource = %event.resource, outcome = %event.outcome, "audit"
    );
    if let Err(e) = store.append_audit(event).await {
        tracing::warn!(error = %e, "could not store an audit event");
    }
}

/// The grant target of a warehouse.
pub fn on_warehouse(warehouse: Uuid) -> GrantResource {
    GrantResource::Warehouse { warehouse }
}

/// The grant target of a namespace.
pub fn on_namespace(warehouse: Uuid, namespace: &NamespaceIdent) -> GrantResource {
    GrantResource::Namespace {
        warehouse,
        namespace: namespace.clone(),
    }
}

/// The grant target of a table.
pub fn on_table(warehouse: Uuid, table: &TableIdent) -> GrantResource {
    GrantResource::Table {
        warehouse,
        table: table.clone(),
    }
}

/// The grant target of a view.
pub fn on_view(warehouse: Uuid, view: &TableIdent) -> GrantResource {
    GrantResource::View {
        warehouse,
        view: view.clone(),
    }
}

fn describe(target: &GrantResource) -> String {
    match target {
        GrantResource::Tenant => "tenant".into(),
        GrantResource::Warehouse { warehouse } => format!("warehouse {warehouse}"),
        GrantResource::Namespace { namespace, .. } => format!("namespace {namespace}"),
        GrantResource::Table { table, .. } => format!("table {table}"),
        GrantResource::View { view, .. } => format!("view {view}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ObjectName;

    fn ns(parts: &[&str]) -> NamespaceIdent {
        NamespaceIdent::new(parts.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    #[test]
    fn grants_reach_inside_their_container_only() {
        let (w, other) = (Uuid::new_v4(), Uuid::new_v4());
        let t = TableIdent::new(ns(&["a", "b"]), ObjectName::new("t").unwrap());
        let table = GrantResource::Table {
            warehouse: w,
            table: t.clone(),
        };
        assert!(contains(&GrantResource::Tenant, &table));
        assert!(contains(&GrantResource::Warehouse { warehouse: w }, &table));
        assert!(!contains(
            &GrantResource::Warehouse { warehouse: other },
            &table
        ));
        assert!(contains(
            &GrantResource::Namespace {
                warehouse: w,
                namespace: ns(&["a"])
            },
            &table
        ));
        assert!(!contains(
            &GrantResource::Namespace {
                warehouse: w,
                namespace: ns(&["ab"])
            },
            &table
        ));
        assert!(!contains(
            &GrantResource::Namespace {
                warehouse: w,
                namespace: ns(&["a", "b", "c"])
            },
            &table
        ));
        let t10 = GrantResource::Table {
            warehouse: w,
            table: TableIdent::new(ns(&["a", "b"]), ObjectName::new("t10").unwrap()),
        };
        assert!(!contains(&table, &t10));
        let view = GrantResource::View {
            warehouse: w,
            view: t,
        };
        assert!(
            !contains(&table, &view),
            "a table grant does not reach a view of the same name"
        );
    }

    #[test]
    fn privileges_imply_weaker_ones() {
        use Privilege::*;
        assert!(TableWriteData.implies(TableReadData));
        assert!(TableWriteData.implies(TableReadMetadata));
        assert!(!TableReadData.implies(TableWriteData));
        assert!(!TableReadMetadata.implies(TableReadData));
        assert!(WarehouseAdmin.implies(TableDrop));
        assert!(!WarehouseAdmin.implies(TenantAdmin));
        assert!(TenantAdmin.implies(TenantAdmin));
    }
}
