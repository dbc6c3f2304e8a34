//! The records the store keeps and hands back: tenants, warehouses, principals, roles, grants,
//! namespaces, tables and views, recycle-bin entries, secrets, audit events and idempotency
//! answers, and the page and swap values its methods take.
//!
//! Owns: the shape of each record as the store traits pass it. Must not touch: how a backend
//! encodes or keys it (each backend's own business), HTTP types, or the API's answers (which have
//! their own types).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{PrincipalId, RoleId, TabularId, TenantId, WarehouseId};

use crate::domain::access::{GrantResource, Privilege};
use crate::domain::{NamespaceIdent, TableIdent};
use crate::storage::StorageProfile;

/// A tenant: the unit of isolation. Principals and warehouses belong to exactly one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    pub created_at_ms: i64,
}

/// Where a storage credential's value comes from: sealed in the store, or a reference resolved at
/// each use and never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum CredentialValue {
    /// JSON of the credential's fields, sealed under the master key.
    Sealed { sealed: String },
    /// `env:NAME` or `file:/path`, holding the same JSON.
    Reference { reference: String },
}

/// A named credential for a tenant's storage (e.g. S3 keys), referenced by warehouses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageCredentialRecord {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub name: String,
    /// Which storage it fits and which fields it has.
    pub kind: crate::domain::CredentialKind,
    pub value: CredentialValue,
    pub created_at_ms: i64,
}

/// A warehouse: a named catalog inside a tenant; its id is the Iceberg `prefix`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarehouseRecord {
    pub id: WarehouseId,
    pub tenant_id: TenantId,
    pub name: String,
    pub storage: StorageProfile,
    /// Name of the tenant's storage credential the server uses to reach this warehouse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// Where engines plan scans of its tables, unless a table's `scan-planning-mode` property
    /// says otherwise (unset: as each engine chooses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_planning_mode: Option<crate::domain::ScanPlanningMode>,
    pub created_at_ms: i64,
}

/// Whether a principal is a person or a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    Human,
    Service,
}

/// Someone who can authenticate. The secret is stored only as an argon2 hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrincipalRecord {
    pub id: PrincipalId,
    pub tenant_id: TenantId,
    pub name: String,
    pub kind: PrincipalKind,
    pub client_id: String,
    pub secret_hash: String,
    /// The root principal may act in every tenant.
    pub root: bool,
    pub disabled: bool,
    pub created_at_ms: i64,
    /// Sessions that began before this moment (ms since the epoch) are not renewed by token
    /// exchange: set when its secret changes and when it is enabled again, so a token leaked
    /// before either cannot keep itself alive.
    #[serde(default)]
    pub sessions_valid_from_ms: i64,
}

/// A named set of grants inside a tenant, assigned to principals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub id: RoleId,
    pub tenant_id: TenantId,
    pub name: String,
    pub created_at_ms: i64,
}

/// One privilege on one resource, given to a role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantRecord {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub role_id: RoleId,
    pub resource: GrantResource,
    pub privilege: Privilege,
    pub created_at_ms: i64,
}

/// Something that happened: a management change or an authorization denial (as stored; the API
/// answers with its own type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Time-ordered id (UUIDv7).
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub at_ms: i64,
    /// The principal who acted.
    pub actor: PrincipalId,
    pub action: String,
    pub resource: String,
    /// `ok` or `denied`.
    pub outcome: String,
}

/// A token-signing key, its seed sealed under the master key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub sealed_seed: String,
    pub created_at_ms: i64,
    /// Set when a newer key took over; the key still verifies until its tokens expire.
    pub retired_at_ms: Option<i64>,
}

/// A namespace and its properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamespaceRecord {
    pub id: Uuid,
    pub ident: NamespaceIdent,
    pub properties: BTreeMap<String, String>,
    pub created_at_ms: i64,
}

/// Tables and views share one name space inside a namespace; this says which one a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TabularKind {
    Table,
    View,
}

impl TabularKind {
    /// "table" or "view", for messages.
    pub fn noun(self) -> &'static str {
        match self {
            TabularKind::Table => "table",
            TabularKind::View => "view",
        }
    }
}

/// A table or view: where it lives and which metadata file is current.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TabularRecord {
    pub id: TabularId,
    pub kind: TabularKind,
    pub ident: TableIdent,
    pub location: String,
    pub metadata_location: String,
    pub created_at_ms: i64,
}

/// A dropped table or view in its warehouse's recycle bin. Its name is free again; its location
/// stays claimed and its id taken (nothing else may be created where it may come back or where a
/// purge will delete, and no other object takes its grants). It leaves the bin restored (never
/// once a purge is due), or at `expires_at_ms` forgotten, its files purged first when
/// `purge_files`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedRecord {
    pub warehouse: WarehouseId,
    /// The table or view as it was when dropped (its id, name, location, metadata file).
    pub tabular: TabularRecord,
    pub dropped_at_ms: i64,
    /// When it leaves the bin, unless restored first.
    pub expires_at_ms: i64,
    /// Whether the files under its location are deleted when it leaves (a drop with
    /// `purgeRequested`, or a purge asked for through the management API).
    pub purge_files: bool,
    /// Until when a replica is purging it (0: nobody); another replica may take over after.
    pub lease_until_ms: i64,
}

impl DroppedRecord {
    /// Whether its purge is due (or running) at `now_ms`: from then on it cannot be restored.
    pub fn purge_due(&self, now_ms: i64) -> bool {
        self.purge_files && self.expires_at_ms <= now_ms
    }
}

/// One compare-and-swap of a metadata pointer: succeeds only while the current value is `expected`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataSwap {
    pub ident: TableIdent,
    pub expected: String,
    pub new: String,
}

/// Which slice of a list to return: names strictly after `after`, at most `limit` of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: Option<usize>,
}

/// A slice of a list in stable (byte-wise name) order; `next` is the last name returned when more follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// The first final answer given to a request that carried an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Method and path of the request that created the record.
    pub operation: String,
    pub status: u16,
    pub body: String,
    pub expires_at_ms: i64,
    /// Reserved by a request still running: no answer yet.
    #[serde(default)]
    pub pending: bool,
}
