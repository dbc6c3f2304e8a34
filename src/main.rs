//! The `floe` command: `floe serve` runs the catalog; `floe openapi` prints its API document;
//! `floe migrate` copies a sled catalog into PostgreSQL; `floe backup` and `floe restore` save a
//! serving sled catalog and build a data directory from the save.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc: the allocator is a few percent of every request on the hot path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process, before any thread starts. mimalloc asks for
/// them on its arenas, and then every region a thread touches is resident in 2 MiB units: 61 MiB
/// at start before any work (24 MiB without), and more for every thread that allocates. Memory
/// that stays within its stated bound matters more here than fewer TLB misses.
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and changes only this process's paging.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
use floe::config::Settings;
use floe::startup::{Application, init_tracing};

#[derive(Parser)]
#[command(
    name = "floe",
    version,
    about = "Multi-tenant Apache Iceberg REST catalog"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the catalog server.
    Serve {
        /// Address to listen on (FLOE_LISTEN; default 127.0.0.1:8181).
        #[arg(long)]
        listen: Option<String>,
        /// Data directory (FLOE_DATA_DIR; default ./floe-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// TOML configuration file (FLOE_CONFIG).
        #[arg(long, env = "FLOE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Copy a catalog between stores.
    #[command(subcommand)]
    Migrate(Migrate),
    /// Save a consistent snapshot of a serving sled catalog into a new directory (as the root
    /// principal). PostgreSQL catalogs are backed up with PostgreSQL's own tools.
    Backup {
        /// The new (or empty) backup directory.
        #[arg(long)]
        to: PathBuf,
        /// The serving Floe.
        #[arg(long, default_value = "http://127.0.0.1:8181")]
        url: String,
        /// The root principal's client id (FLOE_ROOT_CLIENT_ID).
        #[arg(long, env = "FLOE_ROOT_CLIENT_ID", default_value = "root")]
        client_id: String,
        /// The root principal's secret (FLOE_ROOT_CLIENT_SECRET).
        #[arg(long, env = "FLOE_ROOT_CLIENT_SECRET", hide_env_values = true)]
        client_secret: String,
        /// The server's data directory, to save its generated master key with the snapshot
        /// (without it, keep the master key yourself: restoring needs it).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Build a new data directory from a backup directory; then `floe serve --data-dir` it.
    Restore {
        /// The backup directory (`floe backup --to`).
        #[arg(long)]
        from: PathBuf,
        /// The new (or empty) data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum Migrate {
    /// Copy a sled catalog (stopped server's data directory) into PostgreSQL, then verify the
    /// copy. Safe to run again. The PostgreSQL replicas need the same master key.
    SledToPostgres {
        /// The sled server's data directory (holds `catalog/`).
        #[arg(long)]
        data_dir: PathBuf,
        /// Target database (FLOE_POSTGRES__URL).
        #[arg(long, env = "FLOE_POSTGRES__URL", hide_env_values = true)]
        postgres_url: String,
    },
}

fn main() -> std::process::ExitCode {
    without_huge_pages();
    match Cli::parse().command {
        Command::Openapi => {
            print!("{}", floe::api::openapi::document_json());
            std::process::ExitCode::SUCCESS
        }
        Command::Migrate(Migrate::SledToPostgres {
            data_dir,
            postgres_url,
        }) => match sled_to_postgres(&data_dir, &postgres_url) {
            Ok(report) => {
                println!("{report}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("floe migrate: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Backup {
            to,
            url,
            client_id,
            client_secret,
            data_dir,
        } => report(
            "backup",
            run_backup(&url, &client_id, &client_secret, &to, data_dir.as_deref()),
        ),
        Command::Restore { from, data_dir } => {
            report("restore", floe::backup::restore(&from, &data_dir))
        }
        Command::Serve {
            listen,
            data_dir,
            config,
        } => {
            let mut env: Vec<(String, String)> = std::env::vars().collect();
            if let Some(l) = listen {
                env.push(("FLOE_LISTEN".into(), l));
            }
            if let Some(d) = data_dir {
                env.push(("FLOE_DATA_DIR".into(), d.display().to_string()));
            }
            let settings = match Settings::load(config.as_deref(), env) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("floe: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            match serve(settings) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("floe: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}

/// Prints what a command did, or why it failed.
fn report(
    command: &str,
    done: Result<floe::backup::Report, Box<dyn std::error::Error>>,
) -> std::process::ExitCode {
    match done {
        Ok(report) => {
            println!("floe {command}: {report}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("floe {command}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run_backup(
    url: &str,
    client_id: &str,
    client_secret: &str,
    to: &std::path::Path,
    data_dir: Option<&std::path::Path>,
) -> Result<floe::backup::Report, Box<dyn std::error::Error>> {
    floe::backup::backup(url, client_id, client_secret, to, data_dir).await
}

#[tokio::main]
async fn sled_to_postgres(
    data_dir: &std::path::Path,
    url: &str,
) -> Result<floe::migrate::Report, Box<dyn std::error::Error>> {
    use floe::store::{PgStore, SledStore};
    let catalog = data_dir.join("catalog");
    if !catalog.is_dir() {
        return Err(format!("{} holds no sled catalog", catalog.display()).into());
    }
    let from = SledStore::open(&catalog)?;
    let to = PgStore::connect(url, 4).await?;
    Ok(floe::migrate::migrate(&from, &to).await?)
}

#[actix_web::main]
async fn serve(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    init_tracing(&settings.log, &settings.log_format);
    let public_url = settings.public_url();
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port, "Floe is listening");
    println!("Floe catalog at {public_url}");
    if let Some(file) = &app.root_credentials_file {
        println!(
            "Root credentials: {} (client_id=root; client_secret inside)",
            file.display()
        );
    }
    println!(
        "Connect PyIceberg: load_catalog('floe', uri='{public_url}', warehouse='demo', credential='<client_id>:<client_secret>')"
    );
    app.run_until_stopped().await?;
    Ok(())
}
