//! Floe: a multi-tenant Apache Iceberg REST catalog that vends table-scoped cloud credentials.
//!
//! Module map (arrows point down only: api → identity/catalog → store/warehouse_io):
//! - [`config`]: typed settings from a TOML file and `FLOE_*` variables, validated at start.
//! - [`startup`]: opens the store, bootstraps tenant/root/warehouse, binds the HTTP server.
//! - [`api`]: actix-web routes of the Iceberg REST spec; errors as `IcebergErrorResponse`; OpenAPI.
//! - [`admin`]: tenancy use-cases: each management change (roles, assignments, grants so far),
//!   its tenant checks, audit event and the typed change that clears the caches it affects.
//! - [`identity`]: Floe's JWTs (issue, verify, cache), OIDC issuers, client secrets (keyed or
//!   argon2 hashes) and back-off after failed sign-ins, sealed storage credentials, the caller.
//! - [`authz`]: privileges, grants inherited downward (tables and views by id), cached decisions,
//!   data access per table.
//! - [`catalog`]: use-cases for namespaces, tables and views; commits; metadata cache.
//! - [`store`]: the `CatalogStore` trait, its sled and PostgreSQL backends, who owns which
//!   location and which warehouse storage root, and the conformance suite every backend passes.
//! - [`vending`]: table-scoped storage credentials (STS sessions), presigned URLs, remote signing.
//! - [`warehouse_io`]: reading and writing metadata files on local disk, S3, ADLS and GCS.
//! - [`domain`]: validated names (namespaces, tables, views, warehouses) and credential kinds.

pub mod admin;
pub mod api;
pub mod authz;
pub mod catalog;
pub mod changes;
pub mod config;
pub mod domain;
pub mod idempotency;
pub mod identity;
pub mod migrate;
pub mod startup;
pub mod store;
pub mod vending;
pub mod warehouse_io;
