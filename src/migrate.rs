//! `floe migrate sled-to-postgres`: copies a whole catalog from one store into another, then
//! checks the copy.
//!
//! Idempotent: records already in the target are left as they are, or brought up to date where
//! the source moved on (a table's newer metadata location, changed properties), so the command can
//! run again after a partial run or just before switching over. Sealed secrets are copied sealed:
//! the PostgreSQL replicas need the master key the sled installation used. Idempotency-Key replay
//! records are not copied (they expire within minutes). Each write announces the change the
//! management API's would, so replicas already listening drop what it made stale.

use std::collections::BTreeMap;
use std::fmt;

use uuid::Uuid;

use crate::domain::WarehouseId;
use crate::domain::{PrincipalId, RoleId};

use crate::changes::Change;
use crate::domain::NamespaceIdent;
use crate::store::*;

/// Everything a store holds that a migration copies, read through [`CatalogStore`] only.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub tenants: Vec<TenantRecord>,
    pub warehouses: Vec<WarehouseRecord>,
    pub principals: Vec<PrincipalRecord>,
    pub roles: Vec<RoleRecord>,
    /// (principal, role)
    pub assignments: Vec<(PrincipalId, RoleId)>,
    pub grants: Vec<GrantRecord>,
    pub storage_credentials: Vec<StorageCredentialRecord>,
    pub signing_keys: Vec<SigningKeyRecord>,
    /// Parents before children.
    pub namespaces: Vec<(WarehouseId, NamespaceRecord)>,
    pub tabulars: Vec<(WarehouseId, TabularRecord)>,
    pub audit: Vec<AuditEvent>,
}

impl Snapshot {
    /// Reads every record of `store`.
    pub async fn read(store: &dyn CatalogStore) -> StoreResult<Self> {
        let mut s = Snapshot {
            tenants: store.list_tenants().await?,
            signing_keys: store.list_signing_keys().await?,
            ..Default::default()
        };
        for tenant in &s.tenants {
            let t = tenant.id;
            s.warehouses.extend(store.list_warehouses(t).await?);
            s.principals.extend(store.list_principals(t).await?);
            s.roles.extend(store.list_roles(t).await?);
            s.grants.extend(store.list_grants(t, None).await?);
            s.storage_credentials
                .extend(store.list_storage_credentials(t).await?);
            s.audit.extend(store.list_audit(t, usize::MAX).await?);
        }
        for p in &s.principals {
            for role in store.roles_of(p.id).await? {
                s.assignments.push((p.id, role));
            }
        }
        for wh in &s.warehouses {
            let mut level: Vec<Option<NamespaceIdent>> = vec![None];
            while let Some(parent) = level.pop() {
                let children = store
                    .list_namespaces(wh.id, parent.as_ref(), &PageRequest::default())
                    .await?
                    .items;
                for ns in children {
                    let record = store
                        .get_namespace(wh.id, &ns)
                        .await?
                        .ok_or_else(|| StoreError::NoSuchNamespace(ns.clone()))?;
                    for kind in [TabularKind::Table, TabularKind::View] {
                        let all = PageRequest::default();
                        for ident in store.list_tabulars(wh.id, &ns, kind, &all).await?.items {
                            if let Some(t) = store.get_tabular(wh.id, &ident).await? {
                                s.tabulars.push((wh.id, t));
                            }
                        }
                    }
                    s.namespaces.push((wh.id, record));
                    level.push(Some(ns));
                }
            }
        }
        Ok(s)
    }

    /// How many records of each kind.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let views = self
            .tabulars
            .iter()
            .filter(|(_, t)| t.kind == TabularKind::View)
            .count();
        BTreeMap::from([
            ("tenants", self.tenants.len()),
            ("warehouses", self.warehouses.len()),
            ("principals", self.principals.len()),
            ("roles", self.roles.len()),
            ("role assignments", self.assignments.len()),
            ("grants", self.grants.len()),
            ("storage credentials", self.storage_credentials.len()),
            ("signing keys", self.signing_keys.len()),
            ("namespaces", self.namespaces.len()),
            ("tables", self.tabulars.len() - views),
            ("views", views),
            ("audit events", self.audit.len()),
        ])
    }

    fn metadata_locations(&self) -> BTreeMap<(WarehouseId, String), &str> {
        self.tabulars
            .iter()
            .map(|(wh, t)| ((*wh, t.ident.to_string()), t.metadata_location.as_str()))
            .collect()
    }
}

/// What a migration did and found.
#[derive(Debug, Default)]
pub struct Report {
    /// Records written to the target (new or brought up to date).
    pub written: usize,
    /// Records the target already had as they are.
    pub unchanged: usize,
    /// Counts by kind, equal in source and target after a successful run.
    pub counts: BTreeMap<&'static str, usize>,
    /// Tables and views whose metadata location was compared (all of them).
    pub locations_checked: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "copied: {} records written, {} already present",
            self.written, self.unchanged
        )?;
        for (kind, n) in &self.counts {
            writeln!(f, "  {kind}: {n} in both")?;
        }
        write!(
            f,
            "verified: {} metadata locations match",
            self.locations_checked
        )
    }
}

/// A migration that failed, or whose copy does not match its source.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the copy does not match its source: {0}")]
    Mismatch(String),
}

/// Copies `from` into `to`, then reads both back and compares counts and every table's and view's
/// metadata location.
pub async fn migrate(
    from: &dyn CatalogStore,
    to: &dyn CatalogStore,
) -> Result<Report, MigrateError> {
    let source = Snapshot::read(from).await?;
    let mut report = Report::default();
    copy(&source, to, &mut report).await?;
    let target = Snapshot::read(to).await?;
    let (want, got) = (source.counts(), target.counts());
    if want != got {
        return Err(MigrateError::Mismatch(format!(
            "counts differ: source {want:?}, target {got:?}"
        )));
    }
    let (want, got) = (source.metadata_locations(), target.metadata_locations());
    for (key, location) in &want {
        if got.get(key) != Some(location) {
            return Err(MigrateError::Mismatch(format!(
                "{} in warehouse {}: source at {location}, target at {:?}",
                key.1,
                key.0,
                got.get(key)
            )));
        }
    }
    report.counts = source.counts();
    report.locations_checked = want.len();
    Ok(report)
}

/// Tallies one write: `Ok(true)` written, `Ok(false)` already there; other errors stop the run.
fn tally(report: &mut Report, result: StoreResult<bool>) -> StoreResult<()> {
    match result {
        Ok(true) => report.written += 1,
        Ok(false) | Err(StoreError::AlreadyExists(_)) => report.unchanged += 1,
        Err(e) => return Err(e),
    }
    Ok(())
}

async fn copy(s: &Snapshot, to: &dyn CatalogStore, report: &mut Report) -> StoreResult<()> {
    for t in &s.tenants {
        let change = Change::Tenant { tenant: t.id };
        let r = to.create_tenant(t, &change).await.map(|_| true);
        tally(report, r)?;
    }
    for w in &s.warehouses {
        let change = Change::Warehouse { warehouse: w.id };
        let r = match to.get_warehouse(w.id).await? {
            Some(existing) if existing == *w => Ok(false),
            Some(_) => to.update_warehouse(w, &change).await.map(|_| true),
            None => to.create_warehouse(w, &change).await.map(|_| true),
        };
        tally(report, r)?;
    }
    for p in &s.principals {
        let change = Change::Principal { principal: p.id };
        let r = match to.get_principal(p.id).await? {
            Some(existing) if existing == *p => Ok(false),
            Some(_) => to.update_principal(p, &change).await.map(|_| true),
            None => to.create_principal(p, &change).await.map(|_| true),
        };
        tally(report, r)?;
    }
    for role in &s.roles {
        let r = to.create_role(role, &Change::Grants).await.map(|_| true);
        tally(report, r)?;
    }
    for (principal, role) in &s.assignments {
        let had = to.roles_of(*principal).await?.contains(role);
        let r = if had {
            Ok(false)
        } else {
            to.assign_role(*principal, *role, &Change::Grants)
                .await
                .map(|_| true)
        };
        tally(report, r)?;
    }
    for g in &s.grants {
        let r = to.create_grant(g, &Change::Grants).await.map(|_| true);
        tally(report, r)?;
    }
    for c in &s.storage_credentials {
        let change = Change::StorageCredential {
            tenant: c.tenant_id,
            name: c.name.clone(),
        };
        let r = match to.get_storage_credential(c.tenant_id, &c.name).await? {
            Some(existing) if existing == *c => Ok(false),
            Some(_) => to
                .put_storage_credential(c, true, &change)
                .await
                .map(|_| true),
            None => to
                .put_storage_credential(c, false, &change)
                .await
                .map(|_| true),
        };
        tally(report, r)?;
    }
    let keys = to.list_signing_keys().await?;
    for k in &s.signing_keys {
        let r = if keys.contains(k) {
            Ok(false)
        } else {
            to.put_signing_key(k, &Change::SigningKeys)
                .await
                .map(|_| true)
        };
        tally(report, r)?;
    }
    for (wh, ns) in &s.namespaces {
        let r = copy_namespace(to, *wh, ns).await;
        tally(report, r)?;
    }
    for (wh, t) in &s.tabulars {
        let r = copy_tabular(to, *wh, t).await;
        tally(report, r)?;
    }
    let audit: Vec<Uuid> = {
        let mut ids = Vec::new();
        for t in &s.tenants {
            ids.extend(to.list_audit(t.id, usize::MAX).await?.iter().map(|e| e.id));
        }
        ids
    };
    for e in &s.audit {
        let r = if audit.contains(&e.id) {
            Ok(false)
        } else {
            to.append_audit(e).await.map(|_| true)
        };
        tally(report, r)?;
    }
    Ok(())
}

async fn copy_namespace(
    to: &dyn CatalogStore,
    wh: WarehouseId,
    ns: &NamespaceRecord,
) -> StoreResult<bool> {
    let Some(existing) = to.get_namespace(wh, &ns.ident).await? else {
        to.create_namespace(wh, ns).await?;
        return Ok(true);
    };
    if existing.properties == ns.properties {
        return Ok(false);
    }
    let removals: Vec<String> = existing
        .properties
        .keys()
        .filter(|k| !ns.properties.contains_key(*k))
        .cloned()
        .collect();
    to.update_namespace_properties(wh, &ns.ident, &ns.properties, &removals)
        .await?;
    Ok(true)
}

async fn copy_tabular(
    to: &dyn CatalogStore,
    wh: WarehouseId,
    t: &TabularRecord,
) -> StoreResult<bool> {
    let Some(existing) = to.get_tabular(wh, &t.ident).await? else {
        to.create_tabular(wh, t).await?;
        return Ok(true);
    };
    if existing.metadata_location == t.metadata_location {
        return Ok(false);
    }
    if existing.kind != t.kind || existing.id != t.id {
        return Err(StoreError::failure(format!(
            "the target holds a different {} {}",
            existing.kind.noun(),
            t.ident
        )));
    }
    // The source moved on since the last run: bring the pointer forward.
    let swap = MetadataSwap {
        ident: t.ident.clone(),
        expected: existing.metadata_location,
        new: t.metadata_location.clone(),
    };
    to.swap_metadata(wh, t.kind, &[swap]).await?;
    Ok(true)
}
