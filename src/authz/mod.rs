//! May the caller do this, and with what data access?
//!
//! Owns: the fixed set of privileges, what each implies, how grants on a container reach what is
//! inside it, and a short-lived cache of each principal's grants. Must not touch: HTTP types, or
//! the store but to read (audit events aside, which [`record_audit`] appends to the
//! [`AuditStore`]).
//! A principal's grants (and whether it is still enabled) are re-read at once after a change made
//! through this process, as soon as another replica's change notification arrives (PostgreSQL),
//! and at most [`DECISION_CACHE_SECS`] after any change. Requests that find a principal's grants
//! missing at the same moment share one read of them. Denials are audited, a few per principal
//! and minute one by one and the rest as a count ([`denials`]).

pub mod denials;
pub mod operations;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde::Deserialize;
use uuid::Uuid;

use crate::domain::PrincipalId;
use crate::domain::TabularId;
use crate::domain::WarehouseId;

use crate::domain::access::{DataAccess, GrantResource, Privilege};
use crate::domain::{NamespaceIdent, TableIdent};
use crate::identity::Caller;
use crate::store::{AuditStore, CatalogStore, TabularKind};

/// Why a request was not allowed, or could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    /// The caller does not hold what the request needs (audited).
    #[error("{0}")]
    Denied(String),
    /// The caller's principal is disabled or gone: its token no longer stands for anyone.
    #[error("this principal is disabled or no longer exists")]
    Inactive,
    /// Grants could not be read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Shorthand for authorization results.
pub type AuthzResult<T> = Result<T, AuthzError>;

/// How long a principal's grants are trusted without reading them again.
pub const DECISION_CACHE_SECS: u64 = 5;

fn namespace_contains(outer: &NamespaceIdent, inner: &NamespaceIdent) -> bool {
    outer == inner || inner.is_inside(outer)
}

/// What a request acts on, named as the request names it (and what a grant to create names, on
/// the management API's wire: `kind` says which).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Target {
    Tenant,
    Warehouse {
        warehouse: WarehouseId,
    },
    Namespace {
        warehouse: WarehouseId,
        namespace: NamespaceIdent,
    },
    Table {
        warehouse: WarehouseId,
        table: TableIdent,
    },
    View {
        warehouse: WarehouseId,
        view: TableIdent,
    },
}

impl Target {
    /// The warehouse the target is in; `None` for the tenant.
    pub fn warehouse(&self) -> Option<WarehouseId> {
        match self {
            Target::Tenant => None,
            Target::Warehouse { warehouse }
            | Target::Namespace { warehouse, .. }
            | Target::Table { warehouse, .. }
            | Target::View { warehouse, .. } => Some(*warehouse),
        }
    }

    /// The table or view this names, with its kind.
    fn object(&self) -> Option<(WarehouseId, TabularKind, &TableIdent)> {
        match self {
            Target::Table { warehouse, table } => Some((*warehouse, TabularKind::Table, table)),
            Target::View { warehouse, view } => Some((*warehouse, TabularKind::View, view)),
            _ => None,
        }
    }
}

/// Where a held grant reaches. A grant on a table or view holds the object's id and the name the
/// object had when the grants were read; a decision on it checks the id again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    Tenant,
    Warehouse(WarehouseId),
    Namespace(WarehouseId, NamespaceIdent),
    Object {
        warehouse: WarehouseId,
        kind: TabularKind,
        id: TabularId,
        ident: TableIdent,
    },
}

impl Reach {
    /// True when the grant reaches `target` by name: the same resource, or something inside it.
    /// For an object grant the caller must still check that `target` is that object (its id).
    pub fn contains(&self, target: &Target) -> bool {
        match self {
            Reach::Tenant => true,
            Reach::Warehouse(w) => target.warehouse() == Some(*w),
            Reach::Namespace(w, namespace) => {
                target.warehouse() == Some(*w)
                    && match target {
                        Target::Namespace { namespace: n, .. } => namespace_contains(namespace, n),
                        Target::Table { table: t, .. } | Target::View { view: t, .. } => {
                            namespace_contains(namespace, &t.namespace)
                        }
                        _ => false,
                    }
            }
            Reach::Object {
                warehouse,
                kind,
                ident,
                ..
            } => target
                .object()
                .is_some_and(|(w, k, t)| w == *warehouse && k == *kind && t == ident),
        }
    }

    /// True when the grant lies inside `target` (so the caller may see `target`'s name).
    pub fn lies_inside(&self, target: &Target) -> bool {
        let (warehouse, inner) = match self {
            Reach::Tenant => return false,
            Reach::Warehouse(_) => return target == &Target::Tenant,
            Reach::Namespace(w, n) => (*w, n),
            Reach::Object {
                warehouse, ident, ..
            } => (*warehouse, &ident.namespace),
        };
        match target {
            Target::Tenant => true,
            Target::Warehouse { warehouse: w } => *w == warehouse,
            Target::Namespace {
                warehouse: w,
                namespace,
            } => *w == warehouse && namespace_contains(namespace, inner),
            Target::Table { .. } | Target::View { .. } => false,
        }
    }
}

/// A grant held by the caller through one of its roles.
type Held = Vec<(Reach, Privilege)>;

/// Denials of one principal audited one by one each minute, unless configured.
pub const DEFAULT_DENIALS_PER_MINUTE: u32 = 10;
/// Denials of one tenant audited one by one each day, unless configured.
pub const DEFAULT_DENIALS_PER_DAY: u32 = 10_000;

/// Memory the principals' cached grants may hold (each weighed by its grant count).
pub const HELD_CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// Principals whose grant reads take turns at once (one kept per principal read lately).
const READ_TURNS: u64 = 10_000;

/// Grant-cache hits, counted on every request (a handle kept once).
static GRANT_CACHE_HITS: LazyLock<metrics::Counter> =
    LazyLock::new(|| metrics::counter!("floe_grant_cache_hits_total"));

/// Decides and caches.
pub struct Authorizer {
    store: Arc<dyn CatalogStore>,
    held: moka::sync::Cache<PrincipalId, Arc<Option<Held>>, foldhash::fast::RandomState>,
    /// One turn per principal at reading its grants, so requests that miss together share one
    /// read (the hit path stays a plain synchronous lookup).
    reads: moka::sync::Cache<PrincipalId, Arc<tokio::sync::Mutex<()>>>,
    /// Which denials are audited one by one.
    denials: denials::DenialLog,
}

impl Authorizer {
    /// An authorizer reading grants from `store`.
    pub fn new(store: Arc<dyn CatalogStore>) -> Self {
        let held = moka::sync::Cache::builder()
            .max_capacity(HELD_CACHE_BYTES)
            .weigher(|_: &PrincipalId, held: &Arc<Option<Held>>| {
                let grants = held.as_ref().as_ref().map_or(0, Vec::len);
                u32::try_from(128 + 160 * grants).unwrap_or(u32::MAX)
            })
            .time_to_live(Duration::from_secs(DECISION_CACHE_SECS))
            // Keyed by the server's own ids: foldhash, not SipHash, on every request.
            .build_with_hasher(foldhash::fast::RandomState::default());
        let reads = moka::sync::Cache::builder()
            .max_capacity(READ_TURNS)
            .time_to_idle(Duration::from_secs(DECISION_CACHE_SECS))
            .build();
        Self {
            store,
            held,
            reads,
            denials: denials::DenialLog::new(DEFAULT_DENIALS_PER_MINUTE, DEFAULT_DENIALS_PER_DAY),
        }
    }

    /// Audits at most `per_minute` denials of a principal a minute, and `per_day` of a tenant a
    /// day, one by one; the rest as counts.
    pub fn with_denial_budget(mut self, per_minute: u32, per_day: u32) -> Self {
        self.denials = denials::DenialLog::new(per_minute, per_day);
        self
    }

    /// Audits the counts of denials whose minute is over (run every few seconds).
    pub async fn record_denial_summaries(&self) {
        for summary in self.denials.due_summaries(crate::store::now_ms()) {
            record_audit(self.store.as_ref(), &summary).await;
        }
    }

    /// Forgets every cached decision.
    fn invalidate(&self) {
        self.held.invalidate_all();
    }

    /// Where a stored grant reaches now; `None` when its table or view is gone (or the grant
    /// predates grants by id).
    async fn reach(&self, resource: GrantResource) -> AuthzResult<Option<Reach>> {
        let (warehouse, kind, id) = match resource {
            GrantResource::Tenant => return Ok(Some(Reach::Tenant)),
            GrantResource::Warehouse { warehouse } => return Ok(Some(Reach::Warehouse(warehouse))),
            GrantResource::Namespace {
                warehouse,
                namespace,
            } => return Ok(Some(Reach::Namespace(warehouse, namespace))),
            GrantResource::Table { warehouse, table } => (warehouse, TabularKind::Table, table),
            GrantResource::View { warehouse, view } => (warehouse, TabularKind::View, view),
            GrantResource::TableByName { .. } | GrantResource::ViewByName { .. } => {
                return Ok(None);
            }
        };
        let object = self.store.get_tabular_by_id(warehouse, id).await?;
        Ok(object.filter(|o| o.kind == kind).map(|o| Reach::Object {
            warehouse,
            kind,
            id,
            ident: o.ident,
        }))
    }

    /// The caller's grants; `None` when the principal is gone or disabled.
    async fn held(&self, caller: &Caller) -> AuthzResult<Arc<Option<Held>>> {
        if let Some(hit) = self.held.get(&caller.principal_id) {
            GRANT_CACHE_HITS.increment(1);
            return Ok(hit);
        }
        // Boxed: the read's state stays out of every request's future (actix moves it whole).
        Box::pin(self.held_missed(caller)).await
    }

    /// The caller's grants after a cache miss.
    async fn held_missed(&self, caller: &Caller) -> AuthzResult<Arc<Option<Held>>> {
        // Requests that miss together share one read: under load an entry's expiry finds every
        // request in flight for the principal, and each reading the grants itself would send
        // them all to the store at once (on PostgreSQL, a burst of new connections). The first
        // reads; the others wait for its turn to end and find what it cached.
        let turn = self.reads.get_with(caller.principal_id, || {
            Arc::new(tokio::sync::Mutex::new(()))
        });
        let _turn = turn.lock().await;
        if let Some(hit) = self.held.get(&caller.principal_id) {
            GRANT_CACHE_HITS.increment(1);
            return Ok(hit);
        }
        metrics::counter!("floe_grant_cache_misses_total").increment(1);
        let held = Arc::new(self.read_held(caller).await?);
        self.held.insert(caller.principal_id, held.clone());
        Ok(held)
    }

    /// Reads the caller's grants from the store.
    async fn read_held(&self, caller: &Caller) -> AuthzResult<Option<Held>> {
        let principal = self.store.get_principal(caller.principal_id).await?;
        Ok(match principal {
            Some(p) if !p.disabled && p.tenant_id == caller.tenant_id => {
                let roles = self.store.roles_of(p.id).await?;
                let grants = self.store.list_grants(p.tenant_id, None).await?;
                let mut held = Vec::new();
                for grant in grants.into_iter().filter(|g| roles.contains(&g.role_id)) {
                    if let Some(reach) = self.reach(grant.resource).await? {
                        held.push((reach, grant.privilege));
                    }
                }
                Some(held)
            }
            _ => None,
        })
    }

    async fn active_grants(&self, caller: &Caller) -> AuthzResult<Arc<Option<Held>>> {
        let held = self.held(caller).await?;
        if held.is_none() {
            return Err(AuthzError::Inactive);
        }
        Ok(held)
    }

    /// True when one of `reaches` reaches `target`. A grant on a table or view counts only while
    /// `target` still is that object: a table created under a dropped table's name has another id.
    async fn any_reaches<'a>(
        &self,
        mut reaches: impl Iterator<Item = &'a Reach>,
        target: &Target,
    ) -> AuthzResult<bool> {
        let mut object_ids = Vec::new();
        for reach in reaches.by_ref() {
            if !reach.contains(target) {
                continue;
            }
            match reach {
                Reach::Object { id, .. } => object_ids.push(*id),
                _ => return Ok(true),
            }
        }
        let Some((warehouse, kind, ident)) = target.object() else {
            return Ok(false);
        };
        if object_ids.is_empty() {
            return Ok(false);
        }
        let current = self.store.get_tabular(warehouse, ident).await?;
        Ok(current.is_some_and(|o| o.kind == kind && object_ids.contains(&o.id)))
    }

    /// True when the caller holds `wanted` on `target` (root holds everything).
    pub async fn allows(
        &self,
        caller: &Caller,
        target: &Target,
        wanted: Privilege,
    ) -> AuthzResult<bool> {
        let held = self.active_grants(caller).await?;
        if caller.root {
            return Ok(true);
        }
        let held = held.as_ref().as_ref().expect("checked active");
        let reaches = held
            .iter()
            .filter(|(_, privilege)| privilege.implies(wanted))
            .map(|(reach, _)| reach);
        self.any_reaches(reaches, target).await
    }

    /// Fails with 403 unless the caller holds `wanted` on `target`.
    /// What a list in `container` shows the caller: everything with the `list` privilege on the
    /// container; otherwise only the items it holds something on, and a denial when it holds
    /// nothing on or in the container.
    pub async fn visible<T>(
        &self,
        caller: &Caller,
        container: &Target,
        list: Privilege,
        items: Vec<T>,
        resource_of: impl Fn(&T) -> Target,
    ) -> AuthzResult<Vec<T>> {
        if self.allows(caller, container, list).await? {
            return Ok(items);
        }
        if !self.sees(caller, container).await? {
            self.require(caller, container, list).await?;
        }
        let mut visible = Vec::with_capacity(items.len());
        for item in items {
            if self.sees(caller, &resource_of(&item)).await? {
                visible.push(item);
            }
        }
        Ok(visible)
    }

    /// Requires every privilege `operation` needs in `warehouse` ([`operations::Operation`]).
    pub async fn require_operation(
        &self,
        caller: &Caller,
        warehouse: WarehouseId,
        operation: operations::Operation<'_>,
    ) -> AuthzResult<()> {
        for (target, wanted) in operation.needs(warehouse) {
            self.require(caller, &target, wanted).await?;
        }
        Ok(())
    }

    pub async fn require(
        &self,
        caller: &Caller,
        target: &Target,
        wanted: Privilege,
    ) -> AuthzResult<()> {
        if self.allows(caller, target, wanted).await? {
            return Ok(());
        }
        // Boxed: the audit write's state stays out of every allowed request's future.
        Box::pin(self.deny(caller, target, wanted)).await
    }

    /// Audits a denial (one by one or as a count) and says what was missing.
    async fn deny(&self, caller: &Caller, target: &Target, wanted: Privilege) -> AuthzResult<()> {
        let event = crate::store::AuditEvent {
            id: Uuid::now_v7(),
            tenant_id: caller.tenant_id,
            at_ms: crate::store::now_ms(),
            actor: caller.principal_id,
            action: format!("{wanted:?}"),
            resource: describe(target),
            outcome: "denied".into(),
        };
        let to_record = self.denials.record(event);
        for event in to_record.summary.iter().chain(&to_record.event) {
            record_audit(self.store.as_ref(), event).await;
        }
        if to_record.event.is_none() {
            tracing::debug!(principal = %caller.principal_id, "denial counted, not recorded one by one");
        }
        Err(AuthzError::Denied(format!(
            "not allowed: this needs {wanted:?} on the {}",
            describe(target)
        )))
    }

    /// True when the caller holds anything on `target`, inside it or above it: enough to see its name.
    pub async fn sees(&self, caller: &Caller, target: &Target) -> AuthzResult<bool> {
        let held = self.active_grants(caller).await?;
        if caller.root {
            return Ok(true);
        }
        let held = held.as_ref().as_ref().expect("checked active");
        if held.iter().any(|(reach, _)| reach.lies_inside(target)) {
            return Ok(true);
        }
        self.any_reaches(held.iter().map(|(reach, _)| reach), target)
            .await
    }

    /// The caller's data access to a table: read-write, read, or none.
    pub async fn data_access(
        &self,
        caller: &Caller,
        warehouse: WarehouseId,
        table: &TableIdent,
    ) -> AuthzResult<DataAccess> {
        let target = on_table(warehouse, table);
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
pub async fn record_audit(store: &dyn AuditStore, event: &crate::store::AuditEvent) {
    tracing::info!(
        target: "floe::audit",
        tenant = %event.tenant_id, actor = %event.actor, action = %event.action,
        resource = %event.resource, outcome = %event.outcome, "audit"
    );
    if let Err(e) = store.append_audit(event).await {
        tracing::warn!(
            error = &e as &dyn std::error::Error,
            "could not store an audit event"
        );
    }
}

/// The target of a request on a warehouse.
pub fn on_warehouse(warehouse: WarehouseId) -> Target {
    Target::Warehouse { warehouse }
}

/// The target of a request on a namespace.
pub fn on_namespace(warehouse: WarehouseId, namespace: &NamespaceIdent) -> Target {
    Target::Namespace {
        warehouse,
        namespace: namespace.clone(),
    }
}

/// The target of a request on a table.
pub fn on_table(warehouse: WarehouseId, table: &TableIdent) -> Target {
    Target::Table {
        warehouse,
        table: table.clone(),
    }
}

/// The target of a request on a view.
pub fn on_view(warehouse: WarehouseId, view: &TableIdent) -> Target {
    Target::View {
        warehouse,
        view: view.clone(),
    }
}

fn describe(target: &Target) -> String {
    match target {
        Target::Tenant => "tenant".into(),
        Target::Warehouse { warehouse } => format!("warehouse {warehouse}"),
        Target::Namespace { namespace, .. } => format!("namespace {namespace}"),
        Target::Table { table, .. } => format!("table {table}"),
        Target::View { view, .. } => format!("view {view}"),
    }
}

/// Grants, roles, principals, tenants, warehouses and object names decide what a caller holds: a
/// change to any of them drops every cached decision (they are cheap to make again).
#[async_trait::async_trait]
impl crate::changes::Subscriber for Authorizer {
    async fn changed(&self, change: &crate::changes::Change) {
        use crate::changes::Change;
        match change {
            Change::Grants
            | Change::Principal { .. }
            | Change::Tenant { .. }
            | Change::Warehouse { .. }
            | Change::Renamed { .. }
            | Change::Everything => self.invalidate(),
            Change::StorageCredential { .. } | Change::SigningKeys => {}
        }
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
        let (w, other) = (WarehouseId::new_v4(), WarehouseId::new_v4());
        let t = TableIdent::new(ns(&["a", "b"]), ObjectName::new("t").unwrap());
        let table = on_table(w, &t);
        assert!(Reach::Tenant.contains(&table));
        assert!(Reach::Warehouse(w).contains(&table));
        assert!(!Reach::Warehouse(other).contains(&table));
        assert!(Reach::Namespace(w, ns(&["a"])).contains(&table));
        assert!(!Reach::Namespace(w, ns(&["ab"])).contains(&table));
        assert!(!Reach::Namespace(w, ns(&["a", "b", "c"])).contains(&table));
        assert!(!Reach::Namespace(other, ns(&["a"])).contains(&table));
        let on_t = Reach::Object {
            warehouse: w,
            kind: TabularKind::Table,
            id: TabularId::new_v4(),
            ident: t.clone(),
        };
        assert!(on_t.contains(&table));
        let t10 = TableIdent::new(ns(&["a", "b"]), ObjectName::new("t10").unwrap());
        assert!(!on_t.contains(&on_table(w, &t10)));
        assert!(
            !on_t.contains(&on_view(w, &t)),
            "a table grant does not reach a view of the same name"
        );
        assert!(!on_t.contains(&on_namespace(w, &ns(&["a", "b"]))));
    }

    #[test]
    fn a_grant_inside_a_container_shows_its_name() {
        let w = WarehouseId::new_v4();
        let t = TableIdent::new(ns(&["a", "b"]), ObjectName::new("t").unwrap());
        let on_t = Reach::Object {
            warehouse: w,
            kind: TabularKind::Table,
            id: TabularId::new_v4(),
            ident: t.clone(),
        };
        assert!(on_t.lies_inside(&Target::Tenant));
        assert!(on_t.lies_inside(&on_warehouse(w)));
        assert!(on_t.lies_inside(&on_namespace(w, &ns(&["a"]))));
        assert!(on_t.lies_inside(&on_namespace(w, &ns(&["a", "b"]))));
        assert!(!on_t.lies_inside(&on_namespace(w, &ns(&["c"]))));
        assert!(!on_t.lies_inside(&on_warehouse(WarehouseId::new_v4())));
        assert!(!Reach::Tenant.lies_inside(&on_warehouse(w)));
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
