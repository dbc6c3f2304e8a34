//! Dropped is not gone: every drop of a table or view (with or without `purgeRequested`) moves it
//! into its warehouse's recycle bin for `drop_retention_secs`; a tenant admin lists the bin,
//! restores an object (under its name or a new one) or purges it now.
//!
//! Owns: what a drop does, restoring (and the [`Change`] a restore makes: handed to the store
//! write, then published here), and the purge queue. A dropped object keeps its location
//! claimed and its id taken until it leaves the bin, so nothing else is created where it may come
//! back or where a purge will delete, and no other object takes its id (and with it its grants
//! and its restore). Once its purge is due it cannot be restored. The queue is the bin itself, in
//! the store: an object whose time is up is leased by one replica (for `purge_lease_secs`), which
//! deletes the files under that object's own location only (when the drop asked for a purge or
//! an admin did), then forgets it and frees its location. A purge that fails keeps its lease as
//! its back-off and the queue goes on with the next object, so one warehouse's failing storage
//! holds up no other. A replica killed mid-purge leaves its lease to run out; the next one starts
//! the purge again (deleting is idempotent). The same queue releases staged creates'
//! reservations that lapsed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{Catalog, CatalogError, CatalogResult, ErrorType, Warehouse};
use crate::background::StopSignal;
use crate::changes::Change;
use crate::domain::TabularId;
use crate::domain::{NamespaceIdent, ObjectName, TableIdent};
use crate::storage::{is_inside, normalize_location};
use crate::store::{DroppedRecord, StoreError, TabularKind, TabularRecord, now_ms};

impl Catalog {
    /// Drops a table or view into the bin; with `purge`, its files are deleted when it leaves
    /// the bin. With no retention and no purge it is gone at once, as before the bin existed.
    pub(super) async fn drop_tabular(
        &self,
        wh: &Warehouse,
        kind: TabularKind,
        ident: &TableIdent,
        purge: bool,
    ) -> CatalogResult<()> {
        let retention = self.options.drop_retention;
        if retention.is_zero() && !purge {
            self.store.drop_tabular(wh.record.id, kind, ident).await?;
            return Ok(());
        }
        // One clock reading for both: the entry is kept exactly its retention.
        let dropped_at_ms = now_ms();
        let expires_at_ms = dropped_at_ms + retention.as_millis() as i64;
        let dropped = self
            .store
            .bin_tabular(
                wh.record.id,
                kind,
                ident,
                dropped_at_ms,
                expires_at_ms,
                purge,
            )
            .await?;
        tracing::info!(
            warehouse = %wh.record.name,
            %ident,
            id = %dropped.tabular.id,
            expires_at_ms,
            purge,
            "dropped into the recycle bin"
        );
        if retention.is_zero() {
            self.purges_due.notify_one();
        }
        Ok(())
    }

    /// The warehouse's recycle bin, oldest drop first.
    pub async fn dropped(&self, wh: &Warehouse) -> CatalogResult<Vec<DroppedRecord>> {
        Ok(self.store.list_dropped(wh.record.id).await?)
    }

    /// Brings dropped object `id` back, into `namespace` as `name` (each defaulting to what it
    /// had): with its id, location, metadata file and so its grants (grants name tables and
    /// views by id).
    pub async fn restore(
        &self,
        wh: &Warehouse,
        id: TabularId,
        namespace: Option<NamespaceIdent>,
        name: Option<ObjectName>,
    ) -> CatalogResult<TabularRecord> {
        let dropped = self.dropped_object(wh, id).await?;
        let ident = TableIdent::new(
            namespace.unwrap_or(dropped.tabular.ident.namespace),
            name.unwrap_or(dropped.tabular.ident.name),
        );
        // Its grants name it by id; decisions cached before it came back are dropped everywhere.
        let change = Change::Renamed {
            warehouse: wh.record.id,
        };
        let restored = self
            .store
            .restore_dropped(wh.record.id, id, &ident, now_ms(), &change)
            .await
            .map_err(|e| match e {
                StoreError::Purging(_) => CatalogError::new(
                    ErrorType::Conflict,
                    format!("dropped object {id} is being purged: it cannot be restored"),
                ),
                StoreError::AlreadyExists(what) => CatalogError::new(
                    ErrorType::Conflict,
                    format!("{what} already exists: restore it under another name"),
                ),
                StoreError::LocationTaken(location) => CatalogError::new(
                    ErrorType::Conflict,
                    format!("its location {location} is now another table's, view's or namespace's: it cannot be restored"),
                ),
                StoreError::NoSuchNamespace(ns) => CatalogError::new(
                    ErrorType::NoSuchNamespace,
                    format!("namespace {ns} does not exist: create it, or restore under a name in another namespace"),
                ),
                e => e.into(),
            })?;
        self.changes.publish(&change).await;
        tracing::info!(warehouse = %wh.record.name, ident = %restored.ident, %id, "restored from the recycle bin");
        Ok(restored)
    }

    /// Purges dropped object `id` now: one replica deletes its files and forgets it shortly.
    pub async fn purge_dropped(
        &self,
        wh: &Warehouse,
        id: TabularId,
    ) -> CatalogResult<DroppedRecord> {
        self.dropped_object(wh, id).await?;
        let dropped = self
            .store
            .expire_dropped(wh.record.id, id, now_ms(), true)
            .await
            .map_err(|e| match e {
                StoreError::LocationTaken(location) => CatalogError::new(
                    ErrorType::Conflict,
                    format!("its location {location} is now another table's, view's or namespace's: the files there are not its own to purge"),
                ),
                e => e.into(),
            })?;
        self.purges_due.notify_one();
        Ok(dropped)
    }

    async fn dropped_object(&self, wh: &Warehouse, id: TabularId) -> CatalogResult<DroppedRecord> {
        self.store
            .get_dropped(wh.record.id, id)
            .await?
            .ok_or_else(|| {
                CatalogError::new(
                    ErrorType::NotFound,
                    format!(
                        "warehouse '{}' has no dropped table or view {id}",
                        wh.record.name
                    ),
                )
            })
    }

    /// Works through every object whose time is up; returns how many left the bin. A failure
    /// leaves its object leased until `purge_lease_secs` pass (its back-off), and the rest of its
    /// warehouse waits for the next run: a warehouse whose storage fails costs each run one
    /// failure, and every other warehouse's objects go on. Lapsed reservations of staged creates
    /// are released first. Once the server is stopping, no further object is taken up.
    pub async fn purge_expired(&self, stop: &StopSignal) -> usize {
        match self.store.release_lapsed_reservations(now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "released lapsed staged-create reservations"),
            Err(e) => tracing::warn!(
                error = &e as &dyn std::error::Error,
                "cannot release lapsed reservations"
            ),
        }
        let mut done = 0;
        let mut failing = Vec::new();
        while !stop.is_stopping() {
            let now = now_ms();
            let lease_until = now + self.options.purge_lease.as_millis() as i64;
            let leased = self
                .store
                .lease_expired_dropped(now, lease_until, &failing)
                .await;
            let item = match leased {
                Ok(Some(item)) => item,
                Ok(None) => return done,
                Err(e) => {
                    tracing::warn!(
                        error = &e as &dyn std::error::Error,
                        "cannot read the recycle bins"
                    );
                    return done;
                }
            };
            match self.leave_bin(&item).await {
                Ok(()) => done += 1,
                // Left leased: another attempt comes when the lease has run out; the others go on.
                Err(e) => {
                    metrics::counter!("floe_purge_failures_total").increment(1);
                    tracing::warn!(id = %item.tabular.id, location = %item.tabular.location, error = &e as &dyn std::error::Error, "purge failed; it is retried when its lease runs out");
                    failing.push(item.warehouse);
                }
            }
        }
        done
    }

    /// Deletes a leased object's files (if asked) and forgets it.
    async fn leave_bin(&self, item: &DroppedRecord) -> CatalogResult<()> {
        let id = item.tabular.id;
        if item.purge_files {
            let record = self
                .store
                .get_warehouse(item.warehouse)
                .await?
                .ok_or_else(|| CatalogError::new(ErrorType::NotFound, "warehouse is gone"))?;
            let io = self.io_for(&record).await?;
            let root = record.storage.root_location();
            // Only the object's own location, strictly inside its warehouse: never the root.
            let location = normalize_location(&item.tabular.location)
                .ok()
                .filter(|l| is_inside(l, &root) && *l != root)
                .ok_or_else(|| {
                    CatalogError::new(
                        ErrorType::Internal,
                        format!(
                            "dropped object {id}'s location {} is not inside its warehouse; not purged",
                            item.tabular.location
                        ),
                    )
                })?;
            tracing::info!(%id, %location, "purging a dropped object's files");
            let files = io.access.io.delete_prefix(&location).await?;
            metrics::counter!("floe_purged_files_total").increment(files);
            tracing::info!(%id, %location, files, "purged a dropped object's files");
        }
        self.store.forget_dropped(item.warehouse, id).await?;
        metrics::counter!("floe_recycle_bin_departures_total").increment(1);
        tracing::info!(%id, ident = %item.tabular.ident, purged = item.purge_files, "left the recycle bin");
        Ok(())
    }

    /// The purge queue on this replica: a run every `interval`, and at once when a drop or a
    /// purge on this replica made something due, until the server stops.
    pub fn purge_queue(
        self: &Arc<Self>,
        interval: Duration,
        mut stop: StopSignal,
    ) -> impl Future<Output = ()> + Send + 'static {
        let catalog = self.clone();
        async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    () = stop.stopped() => return,
                    _ = tick.tick() => {}
                    () = catalog.purges_due.notified() => {}
                }
                catalog.purge_expired(&stop).await;
            }
        }
    }
}
