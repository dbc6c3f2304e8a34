//! Builds a running server from [`Settings`]: opens the store, bootstraps what a fresh data
//! directory needs (default tenant, root principal, `demo` warehouse), and binds the listener.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use uuid::Uuid;

use crate::admin::{Admin, AdminParts};
use crate::api::{self, AppState};
use crate::background::{Background, StopSignal};
use crate::catalog::{Catalog, CatalogOptions};
use crate::changes::Changes;
use crate::config::{Settings, StoreKind};
use crate::domain::storage::StorageProfile;
use crate::idempotency::IdempotencyKeys;
use crate::identity::SignIn;
use crate::identity::storage_credentials::{CredentialResolver, ReferencePolicy};
use crate::identity::{Caller, MasterKey, SigningKey, TokenService, hash_secret, key_store};
use crate::store::pointer_cache::PointerCache;
use crate::store::{
    CatalogStore, MeteredStore, PgStore, PrincipalKind, PrincipalRecord, SledStore, StoreError,
    TenantRecord, now_ms,
};
use crate::vending::{Vending, VendingOptions};
use crate::warehouse_io::S3StaticCredentials;

/// Name of the tenant a fresh data directory starts with.
pub const DEFAULT_TENANT: &str = "default";
/// Name of the warehouse a fresh data directory starts with.
pub const DEMO_WAREHOUSE: &str = "demo";
/// Client id of the generated root principal.
pub const GENERATED_ROOT_CLIENT_ID: &str = "root";

/// A bound, not yet awaited server.
pub struct Application {
    pub port: u16,
    pub server: Server,
    pub catalog: Arc<Catalog>,
    /// How long in-flight requests may finish once the server is stopping.
    pub shutdown_grace: Duration,
    /// Every request's limits; they count what is in flight.
    limits: web::Data<api::RequestLimits>,
    /// Where generated root credentials were written, when they were generated.
    pub root_credentials_file: Option<PathBuf>,
    /// The background loops, stopped with the server.
    background: Arc<Background>,
}

/// Whatever went wrong while starting, said plainly.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(pub String);

fn fail(what: &str) -> impl Fn(&dyn std::fmt::Display) -> StartupError + '_ {
    move |e| StartupError(format!("{what}: {e}"))
}

impl Application {
    /// Opens everything and binds `settings.listen` (port 0 picks a free port).
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        // First: a metric handle made before the recorder is installed (the store's counters are
        // made once, at first use, and the store is used at start) would count into nothing.
        let metrics = metrics_handle();
        std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
            fail("cannot create data_dir")(&format!("{}: {e}", settings.data_dir.display()))
        })?;
        let data_dir =
            std::fs::canonicalize(&settings.data_dir).map_err(|e| fail("data_dir")(&e))?;
        let (store, postgres) = open_store(&settings, &data_dir).await?;
        let master_key = Arc::new(load_master_key(&settings, &data_dir)?);
        let client_secrets = Arc::new(crate::identity::ClientSecrets::new(&master_key));
        let tokens = Arc::new(
            TokenService::new(
                SigningKey::generate().0,
                &settings.auth.issuer,
                &settings.auth.audience,
                settings.auth.token_ttl_secs,
            )
            .with_max_session_secs(settings.auth.max_session_secs),
        );
        key_store::load_keys(
            store.as_ref(),
            &master_key,
            &tokens,
            settings.auth.token_ttl_secs,
        )
        .await
        .map_err(|e| fail("signing keys")(&e))?;
        let signing_keys = Arc::new(
            key_store::SigningKeys::new(
                store.clone(),
                master_key.clone(),
                tokens.clone(),
                settings.auth.token_ttl_secs,
            )
            .with_min_rotation_interval(Duration::from_secs(settings.auth.min_key_rotation_secs)),
        );
        let background = Arc::new(Background::new());
        background.spawn("signing-key reloads", |stop| {
            signing_keys.reload_periodically(stop)
        });
        let changes = Arc::new(Changes::new());
        let list = |text: &str| -> Vec<String> {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let policy = ReferencePolicy::new(
            list(&settings.secret_env_allowlist),
            list(&settings.secret_file_dirs),
            list(&settings.secret_aws_allowlist),
            &settings.data_dir,
        );
        let credentials = Arc::new(
            CredentialResolver::new(master_key.clone(), policy).with_timeouts(settings.timeouts),
        );
        let reachability = Arc::new(crate::reachability::Reachability::new());
        let catalog = Arc::new(Catalog::new(
            store.clone(),
            CatalogOptions {
                max_page_size: settings.max_page_size,
                page_token_key: master_key.derive("floe-page-tokens"),
                commit_retries: settings.commit_retries,
                commit_deadline: Duration::from_millis(settings.commit_deadline_ms),
                metadata_cache_bytes: settings.metadata_cache_bytes,
                max_metadata_file_bytes: settings.max_metadata_file_bytes,
                timeouts: settings.timeouts,
                drop_retention: Duration::from_secs(settings.drop_retention_secs),
                purge_lease: Duration::from_secs(settings.purge_lease_secs),
                staged_create_ttl: Duration::from_secs(settings.staged_create_ttl_secs),
            },
            credentials.clone(),
            changes.clone(),
            reachability.clone(),
        ));

        let admin = Arc::new(Admin::new(AdminParts {
            store: store.clone(),
            secrets: client_secrets.clone(),
            credentials,
            signing_keys: signing_keys.clone(),
            changes: changes.clone(),
            local_warehouse_base: format!("file://{}", data_dir.join("warehouses").display()),
            reachability: reachability.clone(),
        }));
        let tenant = ensure_default_tenant(store.as_ref()).await?;
        let root_credentials_file = ensure_root_principal(
            store.as_ref(),
            &client_secrets,
            &settings,
            &data_dir,
            tenant.id,
        )
        .await?;
        ensure_warehouses(&admin, &catalog, &settings, &data_dir, tenant.id).await?;

        let listener = TcpListener::bind(&settings.listen)
            .map_err(|e| fail("listen")(&format!("{}: {e}", settings.listen)))?;
        let port = listener
            .local_addr()
            .map_err(|e| fail("listen")(&e))?
            .port();
        let public_url = match &settings.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!(
                "http://{}:{port}",
                listener.local_addr().map_err(|e| fail("listen")(&e))?.ip()
            ),
        };
        let authz = Arc::new(
            crate::authz::Authorizer::new(store.clone()).with_denial_budget(
                settings.audit_denials_per_minute,
                settings.audit_denials_per_day,
            ),
        );
        background.spawn("denial summaries", |stop| {
            denial_summaries(authz.clone(), stop)
        });
        let sign_in = Arc::new(SignIn::new(
            store.clone(),
            tokens.clone(),
            client_secrets.clone(),
        ));
        // Every cache's owner hears every change: this replica's own, and others' by way of the
        // store's notifications.
        changes.subscribe(authz.clone());
        changes.subscribe(catalog.clone());
        changes.subscribe(sign_in.clone());
        changes.subscribe(signing_keys.clone());
        let state = web::Data::new(AppState {
            catalog: catalog.clone(),
            admin: admin.clone(),
            authz,
            tokens,
            oidc: Arc::new(crate::identity::oidc::OidcVerifier::new(
                settings.oidc.clone(),
                store.clone(),
                &settings.timeouts,
            )),
            sign_in,
            idempotency: Arc::new(IdempotencyKeys::new(
                store.clone(),
                settings.idempotency_lifetime_secs,
                api::RequestLimits::from_settings(&settings).write,
            )),
            public_url,
            vending: Arc::new(Vending::new(
                VendingOptions {
                    refresh_margin: Duration::from_secs(settings.vending.refresh_margin_secs),
                    presign_ttl: Duration::from_secs(settings.vending.presign_ttl_secs),
                    timeouts: settings.timeouts,
                },
                reachability,
            )),
            metrics,
            tenant_limits: api::tenant_limits::TenantLimits::new(settings.limits),
        });
        background.spawn("expiry of idempotency records and audit events", |stop| {
            expiry(store.clone(), settings.audit_retention_days, stop)
        });
        background.spawn("purge queue", |stop| {
            catalog.purge_queue(Duration::from_millis(settings.purge_interval_ms), stop)
        });
        if let Some(pg) = &postgres {
            background.spawn("change listener", |stop| pg.watch(changes, stop));
        }

        let max_body = settings.max_body_bytes;
        // The log filter is fixed at start: without INFO for requests the middleware is left out
        // entirely (it would cost about a tenth of load-table's throughput for nothing).
        let log_requests =
            tracing::enabled!(target: "floe::api::request_log", tracing::Level::INFO);
        let limits = web::Data::new(api::RequestLimits::from_settings(&settings));
        let limits_for_app = limits.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::Condition::new(
                    log_requests,
                    actix_web::middleware::from_fn(api::request_log),
                ))
                .wrap(actix_web::middleware::from_fn(api::guard))
                .app_data(state.clone())
                .app_data(limits.clone())
                .configure(api::configure(max_body))
                .default_service(actix_web::web::to(api::unrouted))
        })
        .on_connect(api::on_connect(settings.max_connections_per_address))
        .client_request_timeout(Duration::from_millis(settings.request_head_timeout_ms))
        // Signals are ours (`run_until_stopped`): commits must stop landing before actix drops
        // what is still running.
        .disable_signals()
        .shutdown_timeout(settings.shutdown_grace_secs)
        // Blocking threads run local file IO and sled's flush; every thread keeps its own
        // allocator heap, so a few per worker, not tokio's 512.
        .worker_max_blocking_threads(BLOCKING_THREADS_PER_WORKER);
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        let server = server
            .listen(listener)
            .map_err(|e| fail("listen")(&e))?
            .run();
        Ok(Self {
            port,
            server,
            catalog,
            shutdown_grace: Duration::from_secs(settings.shutdown_grace_secs),
            limits: limits_for_app,
            root_credentials_file,
            background,
        })
    }
}

impl Application {
    /// Serves until SIGTERM or SIGINT, then stops: no new connections; in-flight requests get
    /// the grace period (commits stop landing a second before it ends, answering 503 "did not
    /// land"), what still runs after it is dropped, the store is made durable and closed, and only
    /// then does the log say the server stopped. No commit lands after that line.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let (catalog, grace, limits, background) = (
            self.catalog.clone(),
            self.shutdown_grace,
            self.limits.clone(),
            self.background.clone(),
        );
        tokio::spawn(async move {
            stop_signal().await;
            let started = std::time::Instant::now();
            tracing::info!(
                grace_ms = grace.as_millis() as u64,
                in_flight = limits.in_flight(),
                "stopping: no new connections; in-flight requests may finish within the grace period"
            );
            catalog.stop_commits_by(started + grace.saturating_sub(Duration::from_secs(1)));
            limits.stop();
            background.stop();
            handle.pause().await;
            // Every worker keeps running until the last request is done: a request may be using
            // a pooled connection another worker's runtime drives.
            while limits.in_flight() > 0 && started.elapsed() < grace {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let left = limits.in_flight();
            if left > 0 {
                tracing::warn!(
                    requests = left,
                    "the grace period ended: dropping what still runs"
                );
            }
            // The loops get what is left of the grace (at least a second), while the workers'
            // runtimes still drive the pooled connections they may be using; none touches the
            // store once it closes.
            let deadline =
                (started + grace).max(std::time::Instant::now() + Duration::from_secs(1));
            let joined = background.join(deadline).await;
            tracing::info!(stopped = ?joined.stopped, aborted = ?joined.aborted, "background tasks stopped");
            handle.stop(false).await;
        });
        self.server.await?;
        if let Err(e) = self.catalog.store().close().await {
            tracing::error!(
                error = &e as &dyn std::error::Error,
                "the store did not close cleanly"
            );
        }
        tracing::info!("Floe stopped");
        Ok(())
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Opens the configured store (the PostgreSQL one is also returned as such, for its
/// notifications) and rewrites grants stored by object name to name the object's id.
async fn open_store(
    settings: &Settings,
    data_dir: &Path,
) -> Result<(Arc<dyn CatalogStore>, Option<Arc<PgStore>>), StartupError> {
    let (store, pg) = open_backend(settings, data_dir).await?;
    let upgraded = crate::store::upgrade_name_keyed_grants(store.as_ref())
        .await
        .map_err(|e| fail("store")(&e))?;
    if upgraded > 0 {
        tracing::info!(upgraded, "grants on tables and views now name them by id");
    }
    Ok((store, pg))
}

async fn open_backend(
    settings: &Settings,
    data_dir: &Path,
) -> Result<(Arc<dyn CatalogStore>, Option<Arc<PgStore>>), StartupError> {
    match settings.store {
        StoreKind::Sled => {
            let sled =
                SledStore::open_with_cache(&data_dir.join("catalog"), settings.store_cache_bytes)
                    .map_err(|e| fail("store")(&e))?
                    .with_min_free_bytes(settings.min_free_disk_bytes);
            Ok((Arc::new(MeteredStore::new(Arc::new(sled))), None))
        }
        StoreKind::Postgres => {
            let url = settings.postgres.url.as_ref().expect("validated");
            let pg = Arc::new(
                PgStore::connect(url.expose(), settings.postgres.max_connections)
                    .await
                    .map_err(|e| fail("store")(&e))?
                    .with_pointer_cache(PointerCache::new(
                        settings.postgres.pointer_cache,
                        Duration::from_millis(settings.postgres.pointer_max_staleness_ms),
                        settings.postgres.pointer_cache_bytes,
                    )),
            );
            tracing::info!("catalog store: postgres");
            Ok((Arc::new(MeteredStore::new(pg.clone())), Some(pg)))
        }
    }
}

/// Threads each HTTP worker may run blocking work on (local file IO, sled's flush) at once.
const BLOCKING_THREADS_PER_WORKER: usize = 8;

/// Upper bounds of the latency histograms' buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The process-wide Prometheus recorder (installed once, shared by every server in the process).
fn metrics_handle() -> PrometheusHandle {
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

async fn ensure_default_tenant(store: &dyn CatalogStore) -> Result<TenantRecord, StartupError> {
    if let Some(t) = store
        .get_tenant_by_name(DEFAULT_TENANT)
        .await
        .map_err(|e| fail("store")(&e))?
    {
        return Ok(t);
    }
    let tenant = TenantRecord {
        id: Uuid::now_v7(),
        name: DEFAULT_TENANT.into(),
        created_at_ms: now_ms(),
    };
    match store.create_tenant(&tenant).await {
        Ok(()) => tracing::info!(tenant = %tenant.id, "created the default tenant"),
        // Another replica starting at the same time created it first.
        Err(StoreError::AlreadyExists(_)) => {
            return store
                .get_tenant_by_name(DEFAULT_TENANT)
                .await
                .map_err(|e| fail("store")(&e))?
                .ok_or_else(|| StartupError("the default tenant vanished".into()));
        }
        Err(e) => return Err(fail("store")(&e)),
    }
    Ok(tenant)
}

/// Makes sure a root principal exists: the configured one (its secret updated to the configured
/// value), or a generated one whose credentials go to a file only the owner can read.
async fn ensure_root_principal(
    store: &dyn CatalogStore,
    secrets: &crate::identity::ClientSecrets,
    settings: &Settings,
    data_dir: &Path,
    tenant: Uuid,
) -> Result<Option<PathBuf>, StartupError> {
    let err = fail("root principal");
    let (client_id, secret, generated) =
        match (&settings.root_client_id, &settings.root_client_secret) {
            (Some(id), Some(secret)) => (id.clone(), secret.expose().to_owned(), false),
            _ => (GENERATED_ROOT_CLIENT_ID.to_owned(), String::new(), true),
        };
    let existing = store
        .get_principal_by_client_id(&client_id)
        .await
        .map_err(|e| err(&e))?;
    let file = data_dir.join("root-credentials");
    match existing {
        Some(_) if generated => return Ok(file.exists().then_some(file)),
        Some(p) if secrets.verify(&secret, &p.secret_hash) && p.root => return Ok(None),
        Some(p) => {
            let updated = PrincipalRecord {
                secret_hash: hash_secret(&secret),
                root: true,
                disabled: false,
                // Sessions begun with the old secret are not renewed any more.
                sessions_valid_from_ms: now_ms(),
                ..p
            };
            store
                .update_principal(&updated)
                .await
                .map_err(|e| err(&e))?;
            tracing::info!(client_id = %client_id, "root principal's secret set from configuration");
            return Ok(None);
        }
        None => {}
    }
    // A generated secret cannot be guessed and gets a keyed hash; a chosen one gets argon2.
    let (secret, secret_hash) = if generated {
        secrets.generate()
    } else {
        let hash = hash_secret(&secret);
        (secret, hash)
    };
    let principal = PrincipalRecord {
        id: Uuid::now_v7(),
        tenant_id: tenant,
        name: "root".into(),
        kind: PrincipalKind::Service,
        client_id: client_id.clone(),
        secret_hash,
        root: true,
        disabled: false,
        created_at_ms: now_ms(),
        sessions_valid_from_ms: 0,
    };
    if generated {
        use std::io::Write;
        let _ = std::fs::remove_file(&file);
        let mut f = crate::identity::owner_only_file(&file).map_err(|e| err(&e))?;
        writeln!(f, "client_id={client_id}\nclient_secret={secret}").map_err(|e| err(&e))?;
    }
    match store.create_principal(&principal).await {
        Ok(()) => tracing::info!(client_id = %client_id, "created the root principal"),
        // Another replica starting at the same time created it first.
        Err(StoreError::AlreadyExists(_)) => {
            if generated {
                let _ = std::fs::remove_file(&file);
            }
            return Ok(None);
        }
        Err(e) => return Err(err(&e)),
    }
    Ok(generated.then_some(file))
}

async fn ensure_warehouses(
    admin: &Admin,
    catalog: &Catalog,
    settings: &Settings,
    data_dir: &Path,
    tenant: Uuid,
) -> Result<(), StartupError> {
    let err = fail("warehouses");
    let mut wanted: Vec<(String, StorageProfile)> = settings
        .warehouses
        .iter()
        .map(|w| (w.name.clone(), w.storage.clone()))
        .collect();
    // The demo warehouse is a directory on this machine: fine for one process, wrong for replicas.
    if settings.store == StoreKind::Sled && !wanted.iter().any(|(n, _)| n == DEMO_WAREHOUSE) {
        let root = format!("file://{}", data_dir.join("warehouse").display());
        if catalog
            .store()
            .get_warehouse_by_name(tenant, DEMO_WAREHOUSE)
            .await
            .map_err(|e| err(&e))?
            .is_none()
        {
            wanted.push((DEMO_WAREHOUSE.into(), StorageProfile::Local { root }));
        }
    }
    let system = Caller::system(tenant);
    for (name, storage) in wanted {
        let declared = settings.warehouses.iter().find(|w| w.name == name);
        let keys = declared.and_then(|w| {
            w.s3_access_key_id
                .as_ref()
                .zip(w.s3_secret_access_key.as_ref())
        });
        let record = admin
            .declare_warehouse(&system, tenant, name.clone(), storage, keys.is_some())
            .await
            .map_err(|e| StartupError(format!("warehouse '{name}': {e}")))?;
        if let Some((id, secret)) = keys {
            catalog.set_s3_credentials(
                record.id,
                S3StaticCredentials {
                    access_key_id: id.clone(),
                    secret_access_key: secret.expose().to_owned(),
                    session_token: None,
                },
            );
        }
    }
    Ok(())
}

/// The master key from configuration; without one, a key generated into `<data_dir>/master.key`
/// (mode 0600). That protects nothing from someone who can read the data directory: set
/// `FLOE_MASTER_KEY` from a secret store in production.
fn load_master_key(settings: &Settings, data_dir: &Path) -> Result<MasterKey, StartupError> {
    use base64::Engine;
    if let Some(key) = &settings.master_key {
        return MasterKey::from_base64(key.expose())
            .map_err(|e| StartupError(format!("master_key: {e}")));
    }
    let path = data_dir.join("master.key");
    if !path.exists() {
        use std::io::Write;
        let key: [u8; 32] = rand::random();
        let mut file =
            crate::identity::owner_only_file(&path).map_err(|e| fail("master key file")(&e))?;
        file.write_all(
            base64::engine::general_purpose::STANDARD
                .encode(key)
                .as_bytes(),
        )
        .and_then(|_| file.sync_all())
        .map_err(|e| fail("master key file")(&e))?;
        tracing::warn!(path = %path.display(), "generated a master key in the data directory; set FLOE_MASTER_KEY in production");
    }
    let text = std::fs::read_to_string(&path).map_err(|e| fail("master key file")(&e))?;
    MasterKey::from_base64(&text).map_err(|e| StartupError(format!("{}: {e}", path.display())))
}

/// Audits the counts of repeated denials once their minute is over, every 10 seconds, and once
/// more when the server stops.
async fn denial_summaries(authz: Arc<crate::authz::Authorizer>, mut stop: StopSignal) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        let stopping = tokio::select! {
            () = stop.stopped() => true,
            _ = tick.tick() => false,
        };
        authz.record_denial_summaries().await;
        if stopping {
            return;
        }
    }
}

/// Deletes expired idempotency records and audit events older than the retention, every 5 minutes.
async fn expiry(store: Arc<dyn CatalogStore>, audit_retention_days: u32, mut stop: StopSignal) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tokio::select! {
            () = stop.stopped() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = store.purge_idempotency(now_ms()).await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "idempotency purge failed"
            );
        }
        let horizon = now_ms() - i64::from(audit_retention_days) * 86_400_000;
        if let Err(e) = store.purge_audit(horizon).await {
            tracing::warn!(error = &e as &dyn std::error::Error, "audit purge failed");
        }
    }
}

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
