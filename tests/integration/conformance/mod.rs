//! One behavioural suite for every `CatalogStore` backend, so sled and PostgreSQL are held to
//! exactly the same contract.
//!
//! Each check takes a fresh, empty store and panics on a violation. The checks live in one file
//! per area of the store; [`suite!`] turns each into one test per backend, so a failure names its
//! check and backend and nextest runs one alone:
//! `cargo nextest run --test integration conformance::on_postgres::locations::`.
//! - `on_sled`: a store in a new directory;
//! - `on_postgres`: a store on a new database;
//! - `on_postgres_with_cached_pointers`: the same, with the pointer cache `floe serve` runs
//!   (its change listener up).

mod fixtures;
mod grants;
mod idempotency;
mod locations;
mod namespaces;
mod recycle_bin;
mod tabulars;
mod tenancy;

pub use fixtures::{ident, namespace, principal, seed_warehouse, tabular};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use floe::store::{CatalogStore, PgStore, SledStore};

use crate::pg_support::{TestDatabase, caching_replica, close};

/// Runs `check` on a sled store in a new directory.
pub async fn on_sled<F: Future<Output = ()>>(check: impl FnOnce(Arc<dyn CatalogStore>) -> F) {
    let dir = tempfile::tempdir().unwrap();
    check(Arc::new(SledStore::open(dir.path()).unwrap())).await;
}

/// Runs `check` on a PostgreSQL store on a new database.
pub async fn on_postgres<F: Future<Output = ()>>(check: impl FnOnce(Arc<dyn CatalogStore>) -> F) {
    let db = TestDatabase::create().await;
    let store: Arc<dyn CatalogStore> = Arc::new(PgStore::connect(&db.url, 8).await.unwrap());
    check(store.clone()).await;
    close(store).await;
}

/// Runs `check` on a PostgreSQL store whose pointer cache is up, as a replica runs it.
pub async fn on_postgres_with_cached_pointers<F: Future<Output = ()>>(
    check: impl FnOnce(Arc<dyn CatalogStore>) -> F,
) {
    let db = TestDatabase::create().await;
    let store: Arc<dyn CatalogStore> =
        Arc::new(caching_replica(&db.url, Duration::from_secs(60)).await);
    check(store.clone()).await;
    close(store).await;
}

/// One test per check per backend: `on_<backend>::<area>::<check>`.
macro_rules! suite {
    ($($area:ident: [$($check:ident),* $(,)?]),* $(,)?) => {
        suite!(@backend on_sled; $($area: [$($check),*]),*);
        suite!(@backend on_postgres; $($area: [$($check),*]),*);
        suite!(@backend on_postgres_with_cached_pointers; $($area: [$($check),*]),*);
    };
    (@backend $backend:ident; $($area:ident: [$($check:ident),*]),*) => {
        mod $backend {
            $(
                mod $area {
                    $(
                        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                        async fn $check() {
                            super::super::$backend(super::super::$area::$check).await;
                        }
                    )*
                }
            )*
        }
    };
}

suite! {
    tenancy: [
        tenants_and_warehouses,
        principals_by_client_id,
        only_empty_warehouses_and_tenants_delete,
        audit_events_list_newest_first,
        signing_keys_are_kept_in_order,
        warehouses_are_isolated,
    ],
    namespaces: [
        namespaces_nest_and_list,
        namespace_pages_are_stable,
        namespace_properties_update,
        only_empty_namespaces_drop,
    ],
    tabulars: [
        tables_and_views_share_names,
        metadata_swap_is_compare_and_swap,
        multi_table_swap_is_all_or_nothing,
        rename_moves_across_namespaces,
        concurrent_swaps_lose_nothing,
        tables_are_found_by_id,
    ],
    grants: [roles_grants_and_assignments, name_keyed_grants_upgrade_to_ids],
    idempotency: [idempotency_records_expire],
    locations: [
        locations_never_overlap,
        namespace_locations_hold_their_own,
        concurrent_claims_cannot_both_win,
        warehouse_storage_never_overlaps,
        concurrent_warehouse_roots_cannot_both_win,
        a_reservation_holds_its_location_for_its_commit,
        a_lapsed_reservation_holds_nothing,
    ],
    recycle_bin: [
        the_recycle_bin_keeps_a_location_until_it_forgets,
        one_lease_per_expired_drop,
        a_dropped_objects_id_stays_its_own,
        an_object_whose_purge_is_due_is_not_restored,
        storage_stays_while_the_bin_holds_objects,
    ],
}
