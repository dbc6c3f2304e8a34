//! What the server tells the outside: logging (text or JSON lines) and the Prometheus metrics,
//! with every counter on `/metrics` from the start.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Upper bounds of the latency histograms' buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The process-wide Prometheus recorder (installed once, shared by every server in the process).
pub(super) fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                // Real histograms (not summaries), so replicas' latencies can be added up.
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("the buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            // Counters appear on /metrics from the start, at zero until something happens.
            for name in COUNTERS {
                metrics::counter!(*name).increment(0);
            }
            handle
        })
        .clone()
}

/// Every counter Floe keeps (some also carry labels); a test keeps the list whole.
const COUNTERS: &[&str] = &[
    "floe_commit_conflicts_total",
    "floe_commit_retries_total",
    "floe_metadata_cache_hits_total",
    "floe_metadata_cache_misses_total",
    "floe_vended_cache_hits_total",
    "floe_vended_cache_misses_total",
    "floe_grant_cache_hits_total",
    "floe_grant_cache_misses_total",
    "floe_token_cache_hits_total",
    "floe_token_cache_misses_total",
    "floe_sts_calls_total",
    "floe_sts_failures_total",
    "floe_sas_tokens_total",
    "floe_sas_failures_total",
    "floe_azure_delegation_key_requests_total",
    "floe_gcs_token_exchanges_total",
    "floe_gcs_token_exchange_failures_total",
    "floe_change_notifications_total",
    "floe_store_errors_total",
    "floe_secret_checks_total",
    "floe_secret_checks_shed_total",
    "floe_slow_secret_checks_total",
    "floe_sign_ins_backed_off_total",
    "floe_commit_batches_total",
    "floe_commit_deadlines_passed_total",
    "floe_commits_stopped_by_shutdown_total",
    "floe_connections_refused_total",
    "floe_pointer_cache_hits_total",
    "floe_pointer_cache_misses_total",
    "floe_plan_answers_reused_total",
    "floe_pointer_notices_total",
    "floe_purge_failures_total",
    "floe_purged_files_total",
    "floe_recycle_bin_departures_total",
    "floe_request_bodies_timed_out_total",
    "floe_request_deadlines_passed_total",
    "floe_requests_abandoned_total",
    "floe_requests_shed_total",
    "floe_store_flushes_total",
    "floe_tenant_requests_delayed_total",
    "floe_tenant_requests_refused_total",
    "floe_writes_refused_disk_full_total",
];

/// Starts logging: text or JSON lines, filtered by `filter`.
pub fn init_tracing(filter: &str, format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::COUNTERS;

    /// Every `counter!("floe_...")` under `src/` is in [`COUNTERS`] (so it is on `/metrics` from
    /// the start), and every name there is still counted somewhere.
    #[test]
    fn the_counter_list_names_every_counter() {
        let mut counted = std::collections::BTreeSet::new();
        let mut dirs = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (at, _) in text.match_indices("counter!(") {
                        let rest = text[at + "counter!(".len()..].trim_start();
                        if let Some(name) = rest.strip_prefix('"').and_then(|r| r.split('"').next())
                        {
                            // (This test's own text names no counter.)
                            if name.starts_with("floe_")
                                && name.bytes().all(|b| {
                                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
                                })
                            {
                                counted.insert(name.to_owned());
                            }
                        }
                    }
                }
            }
        }
        let listed: std::collections::BTreeSet<String> =
            COUNTERS.iter().map(|n| (*n).to_owned()).collect();
        let unlisted: Vec<_> = counted.difference(&listed).collect();
        let stale: Vec<_> = listed.difference(&counted).collect();
        assert!(
            unlisted.is_empty(),
            "counted but not in COUNTERS: {unlisted:?}"
        );
        assert!(
            stale.is_empty(),
            "in COUNTERS but counted nowhere: {stale:?}"
        );
    }
}
