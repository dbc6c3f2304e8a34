//! Every Rust integration test, in one binary (one link of the crate instead of one per file).
//!
//! - `common`: a real Floe on a free port with a fresh data directory, and the HTTP helpers the
//!   API tests share; `pg_support`: a fresh PostgreSQL database per run.
//! - `api_*`: the catalog and management APIs over HTTP, each file one area, with the attack tests
//!   for that area.
//! - `conformance`: the store conformance suite, one test per check per backend (sled,
//!   PostgreSQL, PostgreSQL with its pointer cache); `store_sled`, `store_postgres`: what only
//!   one backend shows (reopening; replicas sharing a database, notifications).
//! - `migrate_sled_to_postgres`: the `floe migrate` command.
//! - `shutdown`: `floe serve` as a process, stopped by SIGTERM during a purge (sled, PostgreSQL).
//! - `openapi`: the committed OpenAPI document is current and matches the vendored Iceberg spec.
//! - `properties`: proptest properties of the signer, session policies, names and page tokens.
//! - `memory`: what a cached metadata file really occupies (this binary counts its allocations),
//!   against the weight the cache gives it.
//!
//! Run one area with a filter: `cargo nextest run --test integration api_tables::`.

mod common;
mod conformance;
mod pg_support;

mod api_auth;
mod api_escapes;
mod api_failures;
mod api_limits;
mod api_namespaces;
mod api_oidc;
mod api_recycle_bin;
mod api_tables;
mod api_tenancy;
mod api_vending;
mod api_views;
mod memory;
mod migrate_sled_to_postgres;
mod openapi;
mod properties;
mod recycle_bin_model;
mod shutdown;
mod store_postgres;
mod store_sled;
