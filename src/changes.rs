//! Change events: what a management change changed, for the caches that hold it.
//!
//! Owns: the typed [`Change`] every management mutation (and a rename) emits, its wire form (the PostgreSQL
//! `NOTIFY` payload other replicas receive), and the [`Changes`] bus that hands each event to
//! every cache that subscribed. Must not touch: the store, HTTP types, or any cache itself: each
//! cache lives beside the service that uses it, and that service decides what an event clears.
//!
//! A mutation's caller builds its change once and hands that value both to the store write (which
//! sends it to other replicas, on PostgreSQL in the write's own transaction) and, once the write
//! returned, to [`Changes::publish`]. So one event reaches a replica's caches in two ways, both
//! through the bus: the replica that made the change publishes it as soon as its store call
//! returned, and every replica (that one too) publishes what the store's change notification
//! carries ([`Changes::publish_wire`], or [`Changes::publish_missed`] after a lost connection).

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{PrincipalId, TenantId, WarehouseId};

/// What changed. Only what a cache needs to find its entries: never a value or a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// A tenant was created, renamed or deleted.
    Tenant { tenant: TenantId },
    /// A warehouse was created, changed (storage, credential, name) or deleted.
    Warehouse { warehouse: WarehouseId },
    /// A storage credential was created, rotated or deleted.
    StorageCredential { tenant: TenantId, name: String },
    /// A principal was created, disabled, enabled, given a new secret or deleted.
    Principal { principal: PrincipalId },
    /// Roles, role assignments or grants changed.
    Grants,
    /// A table or view of the warehouse was renamed, or restored from the recycle bin: decisions
    /// cached under its old name (or none).
    Renamed { warehouse: WarehouseId },
    /// Token signing keys were added, retired or pruned.
    SigningKeys,
    /// Anything may have changed: notifications were missed (a listener reconnected) or one
    /// could not be read.
    Everything,
}

impl Change {
    /// The notification payload other replicas read with [`Change::from_wire`].
    pub fn to_wire(&self) -> String {
        serde_json::to_string(self).expect("changes serialize")
    }

    /// Reads a notification payload; one that cannot be read is [`Change::Everything`] (a cache
    /// cleared too often is slower, one cleared too rarely is wrong).
    pub fn from_wire(payload: &str) -> Change {
        serde_json::from_str(payload).unwrap_or(Change::Everything)
    }
}

/// A service that keeps a cache some changes make stale.
#[async_trait]
pub trait Subscriber: Send + Sync {
    /// Drops what `change` made stale. Returns once it is gone, so a request that follows the
    /// change never reads the old value from this cache.
    async fn changed(&self, change: &Change);
}

/// Hands each change to every subscriber, in the order they subscribed.
#[derive(Default)]
pub struct Changes {
    subscribers: RwLock<Vec<Arc<dyn Subscriber>>>,
}

impl Changes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a cache's owner; it sees every change published from now on.
    pub fn subscribe(&self, subscriber: Arc<dyn Subscriber>) {
        self.subscribers
            .write()
            .expect("subscribers lock")
            .push(subscriber);
    }

    /// Tells every subscriber about `change` and waits until each has dropped what it made stale.
    pub async fn publish(&self, change: &Change) {
        let subscribers = self.subscribers.read().expect("subscribers lock").clone();
        for subscriber in subscribers {
            subscriber.changed(change).await;
        }
    }

    /// Publishes a change another replica sent, read from its wire form (see
    /// [`Change::from_wire`]).
    pub async fn publish_wire(&self, payload: &str) {
        self.publish(&Change::from_wire(payload)).await;
    }

    /// Publishes that anything may have changed: a listener (re)connected, so notifications sent
    /// while it was not listening are gone.
    pub async fn publish_missed(&self) {
        self.publish(&Change::Everything).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_reads_back_from_its_wire_form_and_garbage_means_everything() {
        let changes = [
            Change::Tenant {
                tenant: TenantId::now_v7(),
            },
            Change::Warehouse {
                warehouse: WarehouseId::now_v7(),
            },
            Change::StorageCredential {
                tenant: TenantId::now_v7(),
                name: "prod-keys".into(),
            },
            Change::Principal {
                principal: crate::domain::PrincipalId::now_v7(),
            },
            Change::Grants,
            Change::Renamed {
                warehouse: WarehouseId::now_v7(),
            },
            Change::SigningKeys,
            Change::Everything,
        ];
        for change in changes {
            assert_eq!(Change::from_wire(&change.to_wire()), change);
        }
        // What replicas of the previous release send, and anything else unreadable.
        for payload in ["access", "signing-keys", "", "{\"change\":\"new-kind\"}"] {
            assert_eq!(Change::from_wire(payload), Change::Everything, "{payload}");
        }
    }

    #[tokio::test]
    async fn every_subscriber_has_dropped_its_entry_when_publish_returns() {
        struct Seen(std::sync::Mutex<Vec<Change>>);
        #[async_trait]
        impl Subscriber for Seen {
            async fn changed(&self, change: &Change) {
                tokio::task::yield_now().await;
                self.0.lock().unwrap().push(change.clone());
            }
        }
        let changes = Changes::new();
        let (a, b) = (
            Arc::new(Seen(Default::default())),
            Arc::new(Seen(Default::default())),
        );
        changes.subscribe(a.clone());
        changes.subscribe(b.clone());
        changes.publish(&Change::Grants).await;
        assert_eq!(*a.0.lock().unwrap(), vec![Change::Grants]);
        assert_eq!(*b.0.lock().unwrap(), vec![Change::Grants]);
    }
}
