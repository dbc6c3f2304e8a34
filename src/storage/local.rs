//! A warehouse in a directory on the server's disk (`file:///abs/path`): the server's IO, and a
//! storage kind that hands clients nothing (they reach the directory with their own access).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::access::{PresignMethod, TableAccess, VendedCredential, WarehouseStorage};
use super::{
    IoError, Issuer, ServerAccessParts, StorageKind, StorageProfile, StorageSecret, VendingError,
    VendingResult, WarehouseIo,
};
use crate::domain::CredentialKind;
use crate::outbound::OutboundTimeouts;

/// A directory on the server as a storage kind: the root of a `Local` profile.
#[repr(transparent)]
pub struct LocalStorage(String);

impl LocalStorage {
    /// The kind of the local profile with this root.
    pub fn of(root: &String) -> &LocalStorage {
        // SAFETY: `LocalStorage` is `repr(transparent)` over `String`, so the two references
        // have the same layout and the same lifetime.
        unsafe { &*(root as *const String as *const LocalStorage) }
    }
}

#[async_trait]
impl StorageKind for LocalStorage {
    fn root_location(&self) -> String {
        self.0.trim_end_matches('/').to_owned()
    }

    fn tidied(&self) -> StorageProfile {
        StorageProfile::Local {
            root: self.0.clone(),
        }
    }

    fn credential_kinds(&self) -> &'static [CredentialKind] {
        &[]
    }

    fn check(&self, _: bool) -> Result<(), String> {
        Ok(())
    }

    fn client_config(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn may_delegate(&self) -> bool {
        false
    }

    fn vends(&self) -> bool {
        false
    }

    async fn open(
        &self,
        _: Option<&StorageSecret>,
        _: &str,
        _: &OutboundTimeouts,
    ) -> Result<ServerAccessParts, IoError> {
        Ok((Arc::new(LocalIo::new(&self.0)?), None))
    }

    async fn vend(&self, _: &Issuer, t: &TableAccess<'_>) -> VendingResult<VendedCredential> {
        Err(nothing_to_hand_out(t.warehouse))
    }

    async fn presign(
        &self,
        _: &Issuer,
        t: &TableAccess<'_>,
        _: &str,
        _: PresignMethod,
    ) -> VendingResult<(String, Duration)> {
        Err(nothing_to_hand_out(t.warehouse))
    }
}

/// What a request for storage access to a local warehouse answers.
fn nothing_to_hand_out(wh: WarehouseStorage<'_>) -> VendingError {
    VendingError::invalid(format!(
        "warehouse '{}' is not on S3: nothing to presign or sign",
        wh.name
    ))
}

/// Local-directory [`WarehouseIo`]; every path must lie under `root`.
pub struct LocalIo {
    root: PathBuf,
}

impl LocalIo {
    /// `root` is the warehouse directory as a `file://` URL.
    pub fn new(root_url: &str) -> Result<Self, IoError> {
        let root = Self::path_of(root_url)?;
        std::fs::create_dir_all(&root).map_err(|e| IoError::storage(root_url, e))?;
        Ok(Self { root })
    }

    fn path_of(location: &str) -> Result<PathBuf, IoError> {
        let path = location.strip_prefix("file://").ok_or_else(|| {
            IoError::BadLocation(location.into(), "not a file:// location".into())
        })?;
        if !path.starts_with('/') || path.split('/').any(|s| s == "..") {
            return Err(IoError::BadLocation(
                location.into(),
                "must be an absolute path".into(),
            ));
        }
        Ok(PathBuf::from(path))
    }

    fn checked_path(&self, location: &str) -> Result<PathBuf, IoError> {
        let path = Self::path_of(location)?;
        if !path.starts_with(&self.root) {
            return Err(IoError::BadLocation(
                location.into(),
                "outside the warehouse".into(),
            ));
        }
        Ok(path)
    }
}

fn storage(location: &str) -> impl Fn(std::io::Error) -> IoError + '_ {
    move |e| IoError::storage(location, e)
}

#[async_trait]
impl WarehouseIo for LocalIo {
    async fn write(&self, location: &str, bytes: Bytes) -> Result<(), IoError> {
        let path = self.checked_path(location)?;
        let owned = location.to_owned();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            let written = file.write_all(&bytes).and_then(|()| file.sync_data());
            if written.is_err() {
                // A file cut short (a full disk) is never left for a later read to find.
                let _ = std::fs::remove_file(&path);
            }
            written
        })
        .await
        .map_err(|e| IoError::storage(owned.clone(), e))?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::StorageFull => IoError::Full(location.to_owned()),
            _ => storage(location)(e),
        })
    }

    /// Creates `metadata/` and `data/`: engines writing to a local path (DuckDB) do not create
    /// the directories of a staged table themselves.
    async fn prepare_table_location(&self, location: &str) -> Result<(), IoError> {
        let path = self.checked_path(location)?;
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(path.join("metadata"))?;
            std::fs::create_dir_all(path.join("data"))
        })
        .await
        .map_err(|e| IoError::storage(location, e))?
        .map_err(storage(location))
    }

    async fn read(&self, location: &str, max_bytes: u64) -> Result<Bytes, IoError> {
        use tokio::io::AsyncReadExt;
        let path = self.checked_path(location)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(IoError::NotFound(location.into()));
            }
            Err(e) => return Err(storage(location)(e)),
        };
        let meta = file.metadata().await.map_err(storage(location))?;
        // A directory is no file to read: as absent as on object storage, never a failure of it.
        if meta.is_dir() {
            return Err(IoError::NotFound(location.into()));
        }
        let len = meta.len();
        super::io::check_size(location, len, max_bytes)?;
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(max_bytes + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(storage(location))?;
        super::io::check_size(location, bytes.len() as u64, max_bytes)?;
        Ok(Bytes::from(bytes))
    }

    async fn delete(&self, location: &str) -> Result<(), IoError> {
        let path = self.checked_path(location)?;
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(storage(location)(e)),
            _ => Ok(()),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, IoError> {
        let path = self.checked_path(prefix)?;
        if path == self.root {
            return Err(IoError::BadLocation(
                prefix.into(),
                "refusing to delete the warehouse root".into(),
            ));
        }
        let count = walk_count(&path);
        match tokio::fs::remove_dir_all(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(storage(prefix)(e)),
            _ => Ok(count),
        }
    }
}

fn walk_count(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk_count(&e.path())
            } else {
                1
            }
        })
        .sum()
}
