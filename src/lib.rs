//! Floe: a multi-tenant Apache Iceberg REST catalog that vends table-scoped cloud credentials.
//!
//! Module map. Arrows point down only: `api` calls the use-case services (`table_answers`, `admin`,
//! `catalog`, `vending`, `identity`, `idempotency`) and asks `authz`; they call `store` and `storage`;
//! `domain` and `changes` are plain values every layer may use.
//! - [`config`]: typed settings from a TOML file and `FLOE_*` variables, validated at start.
//! - [`startup`]: opens the store, bootstraps tenant/root/warehouse, wires the services and
//!   their change subscriptions, starts the background loops, binds the HTTP server, and stops
//!   them all in order on SIGTERM; `startup::bootstrap` (default tenant, root principal, declared
//!   warehouses through `admin`), `startup::telemetry` (logs, metrics), `startup::loops`.
//! - [`background`]: the background loops' stop signal; each loop is joined before the store
//!   closes.
//! - [`api`]: actix-web routes of the Iceberg REST spec and `/management/v1`; typed path
//!   extractors; each handler parses, authorizes, makes one call and renders; errors as
//!   `IcebergErrorResponse` with the request id; the OpenAPI document; the guard every request
//!   passes (slow clients and connections per address, capacity, deadline, client gone, request
//!   id, metrics) and each tenant's request rate; answers written as the shared pieces they are
//!   made of (`api::json_body`: the cached metadata is never copied into a new buffer). Never
//!   calls the store.
//! - [`admin`]: tenancy use-cases: every management change (tenants, warehouses, storage
//!   credentials, principals, roles, grants, signing keys), its tenant checks, its audit event and
//!   the one typed [`changes::Change`] it hands to the store write and publishes; the start-time
//!   upgrade of grants stored by name.
//! - [`changes`]: the typed change events, their PostgreSQL `NOTIFY` form, and the bus every
//!   cache's owner subscribes to (on this replica and, through the store, on the others).
//! - [`identity`]: Floe's JWTs (issue, verify, cache), signing keys and their rotation, OIDC
//!   issuers, sign-in at the token endpoint (client secrets, back-off per address), sessions that
//!   end at a secret rotation, sealed storage credentials, the caller.
//! - [`idempotency`]: `Idempotency-Key` reservations and replays.
//! - [`authz`]: privileges, grants inherited downward (tables and views by id), cached decisions,
//!   data access per table, which denials are audited one by one and which as counts.
//! - [`catalog`]: use-cases for namespaces, tables and views (a staged create reserves its
//!   location; where a table lives is the location recorded for it, never its metadata file's);
//!   commits with retries (none lands past its deadline or once the server is stopping); the
//!   metadata cache, whose files are named for their content; each warehouse's own storage IO,
//!   rebuilt when its credential changes; the recycle bin and its purge queue.
//! - [`table_answers`]: the answers that hand a table to a caller, one call each: load-table (its
//!   ETag and 304), create, register, a scan plan, `/credentials`, presign, sign; composes the
//!   catalog's table, the caller's data access (`authz`), the plan (`planning`) and the storage
//!   part (`vending`).
//! - [`planning`]: server-side scan planning: what a scan reads (the current snapshot, a snapshot,
//!   or the appends between two), its manifests read only from under the table's own location and
//!   kept parsed in a byte-bounded cache, pruning by partition summaries, partition values and
//!   column metrics with the `iceberg` crate's binding and transforms, the delete files each data
//!   file needs, residual filters, and the spec's `FileScanTask` JSON; plans run on a
//!   low-priority runtime of their own, bounded in number and in bytes, and may finish in the
//!   background (`submitted`, polled, cancelled, expired).
//! - [`vending`]: what a reader of a table gets: the [`vending::Vending`] facade with its cache of
//!   rendered credentials, and the one place that decides the storage part of a table answer
//!   (plain settings, vended credentials or the remote signer), presigned URLs, signing and
//!   `validate`, each answered by the table's storage kind.
//! - [`store`]: the store's contract, one trait per area (tenancy, access, namespaces, tables and
//!   views, recycle bin, secrets, audit, idempotency, lifecycle) gathered by `CatalogStore`, the
//!   records they pass (`store::records`), and the sled and PostgreSQL backends, a folder each with
//!   a file per area (each replica's PostgreSQL pointer cache kept current by notices, loads that
//!   miss it together sharing one read; commits arriving together sharing one flush on both); who
//!   owns which location (live objects, recycle-bin entries, staged creates' reservations) and
//!   which warehouse storage root. A write that changes what replicas cache takes the
//!   [`changes::Change`] its caller decided, and PostgreSQL sends exactly that. Every backend
//!   passes one conformance suite (`tests/integration/conformance/`).
//! - [`storage`]: one folder per storage kind (`s3`, `adls`, `gcs`, `local`) behind one
//!   [`storage::StorageKind`] trait and one dispatch ([`storage::kind_of`]): each owns its profile
//!   and rules, its credential fields, the server's own IO, what it hands a reader (STS sessions
//!   narrowed by a session policy, directory SAS, downscoped tokens, nothing on local disk),
//!   presigned URLs, the remote signer (S3) and validation; plus the location rules.
//! - [`domain`]: validated names (namespaces, tables, views, and `ResourceName` for tenants,
//!   warehouses, principals, roles and credentials), typed ids (`TenantId`, `WarehouseId`,
//!   `PrincipalId`, `RoleId`, `TabularId`: two of them cannot be swapped), credential kinds.
//! - [`outbound`]: connect and total timeouts of every outbound call, per kind, and the clients
//!   built with them.
//! - [`reachability`]: what the latest calls say about reaching each warehouse's storage and
//!   token service (the readiness detail), recorded by the owners of those calls.
//! - [`backup`]: `floe backup` (a serving sled catalog's snapshot, saved) and `floe restore` (a
//!   new data directory built from it).
//! - [`migrate`]: `floe migrate`, copying a sled catalog into PostgreSQL.

pub mod admin;
pub mod api;
pub mod authz;
pub mod background;
pub mod backup;
pub mod catalog;
pub mod changes;
pub mod config;
pub mod domain;
pub mod idempotency;
pub mod identity;
pub mod migrate;
pub mod outbound;
pub mod planning;
pub mod reachability;
pub mod startup;
pub mod storage;
pub mod store;
pub mod table_answers;
pub mod vending;
