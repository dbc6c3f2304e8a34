//! `floe backup` and `floe restore`: a sled catalog saved while its server serves, and a new data
//! directory built from it. PostgreSQL catalogs are backed up with PostgreSQL's own tools.
//!
//! A backup directory holds `catalog.snapshot` (the server's consistent snapshot, see
//! [`crate::store::sled_snapshot`]: checked before it is written) and, when the server's data
//! directory is given and holds one, a copy of its generated `master.key`: the restored catalog's
//! sealed secrets (signing keys, storage credentials) open only with the key they were sealed
//! with. Neither command overwrites anything.

use std::path::Path;

use crate::store::{SledStore, sled_snapshot};

/// The snapshot file inside a backup directory.
pub const SNAPSHOT_FILE: &str = "catalog.snapshot";
/// The master key file, in a data directory and in a backup directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// What a backup or a restore did.
#[derive(Debug)]
pub struct Report {
    pub bytes: u64,
    pub entries: u64,
    pub master_key: bool,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} entries, {} bytes{}",
            self.entries,
            self.bytes,
            if self.master_key {
                ", with the master key"
            } else {
                ""
            }
        )
    }
}

type Error = Box<dyn std::error::Error>;

/// A directory that does not exist yet, or is empty: the only places either command writes into.
fn fresh(dir: &Path) -> Result<(), Error> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(format!("{} is not empty: nothing is overwritten", dir.display()).into());
    }
    std::fs::create_dir_all(dir)?;
    Ok(())
}

/// Copies the master key file `from` to `to` (owner-only), when `from` exists.
fn copy_master_key(from: &Path, to: &Path) -> Result<bool, Error> {
    if !from.is_file() {
        return Ok(false);
    }
    use std::io::Write;
    let key = std::fs::read(from)?;
    let mut file = crate::identity::owner_only_file(to)?;
    file.write_all(&key)?;
    file.sync_all()?;
    Ok(true)
}

/// Fetches a snapshot from the server at `url` as the root principal and saves it in `to`.
pub async fn backup(
    url: &str,
    client_id: &str,
    client_secret: &str,
    to: &Path,
    data_dir: Option<&Path>,
) -> Result<Report, Error> {
    fresh(to)?;
    let http = reqwest::Client::new();
    let url = url.trim_end_matches('/');
    #[derive(serde::Deserialize)]
    struct Token {
        access_token: String,
    }
    let token: Token = http
        .post(format!("{url}/v1/oauth/tokens"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let r = http
        .get(format!("{url}/management/v1/snapshot"))
        .bearer_auth(&token.access_token)
        .send()
        .await?;
    if !r.status().is_success() {
        let status = r.status();
        return Err(format!("the server answered {status}: {}", r.text().await?).into());
    }
    let file = r.bytes().await?;
    let entries = sled_snapshot::decode(&file)?
        .iter()
        .map(|(_, _, e)| e.len() as u64)
        .sum();
    let part = to.join(format!("{SNAPSHOT_FILE}.part"));
    std::fs::write(&part, &file)?;
    std::fs::File::open(&part)?.sync_all()?;
    std::fs::rename(&part, to.join(SNAPSHOT_FILE))?;
    let master_key = match data_dir {
        Some(dir) => copy_master_key(&dir.join(MASTER_KEY_FILE), &to.join(MASTER_KEY_FILE))?,
        None => false,
    };
    Ok(Report {
        bytes: file.len() as u64,
        entries,
        master_key,
    })
}

/// Builds data directory `data_dir` (new or empty) from backup directory `from`.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Report, Error> {
    let file = std::fs::read(from.join(SNAPSHOT_FILE))
        .map_err(|e| format!("{}: {e}", from.join(SNAPSHOT_FILE).display()))?;
    fresh(data_dir)?;
    let entries = SledStore::restore_snapshot(&data_dir.join("catalog"), &file)?;
    let master_key = copy_master_key(&from.join(MASTER_KEY_FILE), &data_dir.join(MASTER_KEY_FILE))?;
    Ok(Report {
        bytes: file.len() as u64,
        entries,
        master_key,
    })
}
