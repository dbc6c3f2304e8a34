//! Builds a running server from [`Settings`] and stops it: opens the store, wires the services
//! and their change subscriptions, starts the background loops, binds the listener; on SIGTERM
//! stops requests, loops, workers and the store in that order.
//! - `bootstrap`: the default tenant, the root principal, the declared warehouses.
//! - `telemetry`: logging and metrics.
//! - `loops`: the background loops startup runs itself.

mod bootstrap;
mod loops;
mod telemetry;

pub use telemetry::init_tracing;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use bootstrap::{ensure_default_tenant, ensure_root_principal, ensure_warehouses};
use loops::{denial_summaries, expiry};
use telemetry::metrics_handle;

use crate::admin::{Admin, AdminParts};
use crate::api::{self, AppState};
use crate::background::Background;
use crate::catalog::{Catalog, CatalogOptions};
use crate::changes::Changes;
use crate::config::{Settings, StoreKind};
use crate::idempotency::IdempotencyKeys;
use crate::identity::SignIn;
use crate::identity::storage_credentials::{CredentialResolver, ReferencePolicy};
use crate::identity::{MasterKey, SigningKey, TokenService, key_store};
use crate::storage::VendingOptions;
use crate::store::pointer_cache::PointerCache;
use crate::store::{CatalogStore, MeteredStore, PgStore, SledStore};
use crate::table_answers::TableAnswers;
use crate::vending::Vending;

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
        let tenant = ensure_default_tenant(&admin, store.as_ref()).await?;
        let root_credentials_file = ensure_root_principal(
            &admin,
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
        let vending = Arc::new(Vending::new(
            VendingOptions {
                refresh_margin: Duration::from_secs(settings.vending.refresh_margin_secs),
                presign_ttl: Duration::from_secs(settings.vending.presign_ttl_secs),
                timeouts: settings.timeouts,
            },
            reachability,
        ));
        let planner = Arc::new(
            crate::planning::Planner::new(
                settings.planning.clone(),
                settings.manifest_cache_bytes,
                settings.max_metadata_file_bytes,
                tokens.clone(),
            )
            .map_err(|e| fail("cannot start the planning threads")(&e))?,
        );
        let answers = Arc::new(TableAnswers::new(
            catalog.clone(),
            authz.clone(),
            vending.clone(),
            planner,
            public_url,
        ));
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
            answers,
            vending,
            metrics,
            tenant_limits: api::tenant_limits::TenantLimits::new(settings.limits),
        });
        background.spawn("expiry of idempotency records and audit events", |stop| {
            expiry(
                store.clone(),
                store.clone(),
                settings.audit_retention_days,
                stop,
            )
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
    /// land"), the background loops are joined, the store is made durable and closed while the
    /// workers still run, what still runs is dropped, and only then does the log say the server
    /// stopped. No commit lands after that line.
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
            // The store closes before the workers stop: a pooled connection answers on the
            // runtime that opened it (often a worker's), and a connection going back to the pool
            // is tested there first. Closing waits for those tests and closes every connection
            // while each runtime still runs. Requests that come now answer 503 without the store.
            let left = (started + grace)
                .saturating_duration_since(std::time::Instant::now())
                .max(Duration::from_secs(1));
            match tokio::time::timeout(left, catalog.store().close()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "the store did not close cleanly"
                ),
                Err(_) => tracing::warn!("requests still held the store: closing it after them"),
            }
            handle.stop(false).await;
        });
        self.server.await?;
        // Closing is idempotent: this makes durable what dropped requests may have left, and
        // closes the store when the server ended without a stop signal.
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
    let upgraded = crate::admin::upgrade_name_keyed_grants(store.as_ref())
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
