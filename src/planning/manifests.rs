//! The manifest lists and manifests planning reads: only from under the planned table's own
//! location ([`TableFiles`], the one place that decides it), parsed once, and kept by location in
//! a cache bounded in bytes. Both are immutable once written, so a cached one is never stale.
//!
//! Floe reads them with the server's own storage access, which reaches the whole warehouse: a
//! writer who rewrote its table's metadata to name another table's manifest list or manifests
//! would otherwise be planned that table's files and statistics.

use std::sync::Arc;

use bytes::Bytes;
use iceberg::spec::{
    Datum, FormatVersion, Manifest, ManifestFile, ManifestList, ManifestStatus, PrimitiveLiteral,
};

use crate::catalog::{CatalogError, CatalogResult, ErrorType};
use crate::storage::WarehouseIo;
use crate::storage::location::{is_inside, normalize_location};

type FastHash = foldhash::fast::RandomState;

/// A table's own files, as planning may read them.
pub struct TableFiles<'a> {
    io: &'a dyn WarehouseIo,
    /// The table's recorded location, normalized.
    location: String,
    /// When the catalog recorded the table: what is kept of its files is kept for it alone (a
    /// table recorded later at its location, after it was purged, is another table).
    recorded_at_ms: i64,
}

impl<'a> TableFiles<'a> {
    pub fn new(
        io: &'a dyn WarehouseIo,
        table_location: &str,
        recorded_at_ms: i64,
    ) -> CatalogResult<Self> {
        let location = normalize_location(table_location).map_err(CatalogError::internal)?;
        Ok(Self {
            io,
            location,
            recorded_at_ms,
        })
    }

    /// `location`, when it lies under the table's location; refused otherwise, naming neither
    /// the file's owner nor anything about it.
    pub fn own(&self, location: &str, what: &str) -> CatalogResult<String> {
        match normalize_location(location) {
            Ok(normalized)
                if is_inside(&normalized, &self.location) && normalized != self.location =>
            {
                Ok(normalized)
            }
            _ => {
                tracing::warn!(table_location = %self.location, file = %location, "planning refused a {what} outside its table's location");
                Err(CatalogError::new(
                    ErrorType::Forbidden,
                    format!(
                        "the table's metadata names a {what} outside the table's location; \
                         it is not read"
                    ),
                ))
            }
        }
    }

    async fn read(&self, location: &str, what: &str, max_bytes: u64) -> CatalogResult<Bytes> {
        let own = self.own(location, what)?;
        Ok(self.io.read(&own, max_bytes).await?)
    }
}

/// A manifest list or manifest as kept: the parsed value and what it occupies.
struct Kept<T> {
    value: Arc<T>,
    weight: u32,
}

impl<T> Clone for Kept<T> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            weight: self.weight,
        }
    }
}

/// Parsed manifest lists and manifests by location, within a byte budget.
pub struct ManifestCache {
    /// By the table's record (when it was recorded), location and format version.
    lists: moka::sync::Cache<(i64, String, FormatVersion), Kept<ManifestList>, FastHash>,
    /// By the table's record and location.
    manifests: moka::sync::Cache<(i64, String), Kept<Manifest>, FastHash>,
    /// Largest manifest list or manifest read.
    max_file_bytes: u64,
}

/// What a hash map of `n` entries of `slot` bytes occupies: hashbrown keeps a power-of-two
/// number of buckets at most 7/8 full, a control byte each and a group of 16 more.
fn map_bytes(n: usize, slot: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let buckets = match n {
        0..4 => 4,
        4..8 => 8,
        _ => (n * 8 / 7).next_power_of_two(),
    };
    buckets * (slot + 1) + 16
}

/// What a value's own heap part occupies beyond its slot (text and bytes, with the allocator's
/// 16 bytes).
fn heap_bytes(value: &Datum) -> usize {
    match value.literal() {
        PrimitiveLiteral::String(s) => s.len() + 16,
        PrimitiveLiteral::Binary(b) => b.len() + 16,
        _ => 0,
    }
}

/// What a parsed manifest list occupies: per manifest its entry, its path and its partition
/// summaries. Calibrated against the allocator's count (`tests/integration/memory.rs`), with a
/// twentieth more so it is never lighter than it is.
fn list_weight(list: &ManifestList) -> u32 {
    const BASE: usize = 2400;
    const PER_MANIFEST: usize = 450;
    const PER_SUMMARY: usize = 96;
    let bytes = BASE
        + list
            .entries()
            .iter()
            .map(|m| {
                PER_MANIFEST
                    + m.manifest_path.len()
                    + m.partitions.as_ref().map_or(0, |p| {
                        p.iter()
                            .map(|s| {
                                PER_SUMMARY
                                    + s.lower_bound.as_ref().map_or(0, |b| b.len())
                                    + s.upper_bound.as_ref().map_or(0, |b| b.len())
                            })
                            .sum()
                    })
            })
            .sum::<usize>();
    u32::try_from(bytes + bytes / 20).unwrap_or(u32::MAX)
}

/// What a parsed manifest occupies: its schema (with the schema's lookup maps) and spec, and per
/// entry the data file with its path, partition values, and its metrics maps as hashbrown lays
/// them out (a count is 16 bytes a slot, a bound 63). Calibrated against the allocator's count
/// (`tests/integration/memory.rs`), with a twentieth more so it is never lighter than it is.
fn manifest_weight(manifest: &Manifest) -> u32 {
    const BASE: usize = 2048;
    const PER_SCHEMA_FIELD: usize = 940;
    const PER_ENTRY: usize = 1700;
    const PER_PARTITION_VALUE: usize = 48;
    const COUNT_SLOT: usize = 16;
    const BOUND_SLOT: usize = 63;
    let schema_fields = manifest.metadata().schema.field_id_to_fields().len();
    let bytes = BASE
        + PER_SCHEMA_FIELD * schema_fields
        + manifest
            .entries()
            .iter()
            .map(|e| {
                let f = &e.data_file;
                let bounds = |m: &std::collections::HashMap<i32, Datum>| {
                    map_bytes(m.len(), BOUND_SLOT) + m.values().map(heap_bytes).sum::<usize>()
                };
                PER_ENTRY
                    + f.file_path().len()
                    + PER_PARTITION_VALUE * f.partition().fields().len()
                    + map_bytes(f.column_sizes().len(), COUNT_SLOT)
                    + map_bytes(f.value_counts().len(), COUNT_SLOT)
                    + map_bytes(f.null_value_counts().len(), COUNT_SLOT)
                    + map_bytes(f.nan_value_counts().len(), COUNT_SLOT)
                    + bounds(f.lower_bounds())
                    + bounds(f.upper_bounds())
            })
            .sum::<usize>();
    u32::try_from(bytes + bytes / 20).unwrap_or(u32::MAX)
}

impl ManifestCache {
    /// A cache of about `manifest_bytes` of parsed manifests and `list_bytes` of manifest lists.
    pub fn new(manifest_bytes: u64, list_bytes: u64, max_file_bytes: u64) -> Self {
        Self {
            lists: moka::sync::Cache::builder()
                .max_capacity(list_bytes)
                .weigher(|_, v: &Kept<ManifestList>| v.weight)
                .build_with_hasher(FastHash::default()),
            manifests: moka::sync::Cache::builder()
                .max_capacity(manifest_bytes)
                .weigher(|_, v: &Kept<Manifest>| v.weight)
                .build_with_hasher(FastHash::default()),
            max_file_bytes,
        }
    }

    /// What the cache holds now, in bytes (its weights).
    pub fn occupied_bytes(&self) -> u64 {
        self.lists.run_pending_tasks();
        self.manifests.run_pending_tasks();
        self.lists.weighted_size() + self.manifests.weighted_size()
    }

    /// After an insert: evicts what no longer fits at once (moka applies inserts in batches, and
    /// a batch of large manifests waiting would hold memory past the bound) and publishes the
    /// occupancy as `floe_manifest_cache_bytes`.
    fn kept(&self) {
        self.lists.run_pending_tasks();
        self.manifests.run_pending_tasks();
        metrics::gauge!("floe_manifest_cache_bytes")
            .set((self.lists.weighted_size() + self.manifests.weighted_size()) as f64);
    }

    /// A snapshot's manifest list.
    pub async fn list(
        &self,
        files: &TableFiles<'_>,
        location: &str,
        version: FormatVersion,
    ) -> CatalogResult<Arc<ManifestList>> {
        let own = files.own(location, "manifest list")?;
        let key = (files.recorded_at_ms, own, version);
        if let Some(hit) = self.lists.get(&key) {
            return Ok(hit.value);
        }
        let bytes = files
            .read(&key.1, "manifest list", self.max_file_bytes)
            .await?;
        let (list, weight) = tokio::task::spawn_blocking(move || parsed_list(&bytes, version))
            .await
            .map_err(|e| CatalogError::internal(e.to_string()))?
            .map_err(|e| unreadable(location, "manifest list", e))?;
        let kept = Kept {
            weight,
            value: Arc::new(list),
        };
        self.lists.insert(key, kept.clone());
        self.kept();
        Ok(kept.value)
    }

    /// A manifest named by a manifest list, with what its entries inherit from it (snapshot id
    /// and sequence numbers) filled in.
    pub async fn manifest(
        &self,
        files: &TableFiles<'_>,
        file: &ManifestFile,
    ) -> CatalogResult<Arc<Manifest>> {
        let own = files.own(&file.manifest_path, "manifest")?;
        let key = (files.recorded_at_ms, own);
        if let Some(hit) = self.manifests.get(&key) {
            return Ok(hit.value);
        }
        let bytes = files.read(&key.1, "manifest", self.max_file_bytes).await?;
        let named_by = file.clone();
        let (manifest, weight) =
            tokio::task::spawn_blocking(move || parsed_manifest(&bytes, &named_by))
                .await
                .map_err(|e| CatalogError::internal(e.to_string()))?
                .map_err(|e| unreadable(&file.manifest_path, "manifest", e))?;
        let kept = Kept {
            weight,
            value: Arc::new(manifest),
        };
        self.manifests.insert(key, kept.clone());
        self.kept();
        Ok(kept.value)
    }
}

/// A manifest list parsed from its Avro `bytes`, and what it occupies parsed.
pub fn parsed_list(bytes: &[u8], version: FormatVersion) -> iceberg::Result<(ManifestList, u32)> {
    let list = ManifestList::parse_with_version(bytes, version)?;
    let weight = list_weight(&list);
    Ok((list, weight))
}

/// A manifest parsed from its Avro `bytes`, with what its entries inherit from `file` (the
/// manifest list's entry for it) filled in, and what it occupies parsed.
pub fn parsed_manifest(bytes: &[u8], file: &ManifestFile) -> iceberg::Result<(Manifest, u32)> {
    let manifest = inherited(Manifest::parse_avro(bytes)?, file);
    let weight = manifest_weight(&manifest);
    Ok((manifest, weight))
}

fn unreadable(location: &str, what: &str, e: iceberg::Error) -> CatalogError {
    tracing::warn!(file = %location, error = %e, "a {what} could not be read");
    CatalogError::new(
        ErrorType::Internal,
        format!("a {what} of the table cannot be read as one"),
    )
}

/// The spec's inheritance: an entry without a snapshot id takes its manifest's; one without
/// sequence numbers takes the manifest's when it was added by it (or the manifest is from v1).
fn inherited(manifest: Manifest, file: &ManifestFile) -> Manifest {
    let (entries, metadata) = manifest.into_parts();
    let entries = entries
        .into_iter()
        .map(|entry| {
            let mut entry = Arc::unwrap_or_clone(entry);
            entry.snapshot_id = entry.snapshot_id.or(Some(file.added_snapshot_id));
            let inherits = entry.status == ManifestStatus::Added || file.sequence_number == 0;
            if entry.sequence_number.is_none() && inherits {
                entry.sequence_number = Some(file.sequence_number);
            }
            if entry.file_sequence_number.is_none() && inherits {
                entry.file_sequence_number = Some(file.sequence_number);
            }
            entry
        })
        .collect();
    Manifest::new(metadata, entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::LocalIo;

    /// A table recorded at a location after another was purged from it, even naming the purged
    /// table's manifest list, is not answered from what was kept for the purged one.
    #[tokio::test]
    async fn what_is_kept_for_a_table_is_kept_for_its_record_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("file://{}", dir.path().display());
        let io = LocalIo::new(&root).unwrap();
        let table = format!("{root}/ns/t");
        let list = format!("{table}/metadata/snap-1.avro");
        let memory = iceberg::io::FileIO::new_with_memory();
        let writer = memory
            .new_output("memory:///l.avro")
            .unwrap()
            .writer()
            .await
            .unwrap();
        let mut written = iceberg::spec::ManifestListWriter::v2(writer, 1, None, 1);
        written.add_manifests(std::iter::empty()).unwrap();
        written.close().await.unwrap();
        let bytes = memory
            .new_input("memory:///l.avro")
            .unwrap()
            .read()
            .await
            .unwrap();
        std::fs::create_dir_all(dir.path().join("ns/t/metadata")).unwrap();
        std::fs::write(dir.path().join("ns/t/metadata/snap-1.avro"), &bytes).unwrap();

        let cache = ManifestCache::new(1 << 20, 1 << 20, 1 << 20);
        let first = TableFiles::new(&io, &table, 1).unwrap();
        cache.list(&first, &list, FormatVersion::V2).await.unwrap();
        // Purged: the file is gone; the table that had it is still answered from memory.
        std::fs::remove_file(dir.path().join("ns/t/metadata/snap-1.avro")).unwrap();
        cache.list(&first, &list, FormatVersion::V2).await.unwrap();
        // Another table recorded there later reads storage, and finds nothing.
        let later = TableFiles::new(&io, &table, 2).unwrap();
        let refused = cache
            .list(&later, &list, FormatVersion::V2)
            .await
            .unwrap_err();
        assert_eq!(refused.kind, ErrorType::NotFound);
    }

    #[tokio::test]
    async fn only_files_under_the_tables_location_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let io = LocalIo::new(&format!("file://{}", dir.path().display())).unwrap();
        let files = TableFiles::new(&io, "file:///w/ns/t", 1).unwrap();
        assert!(
            files
                .own("file:///w/ns/t/metadata/snap-1.avro", "manifest list")
                .is_ok()
        );
        for other in [
            "file:///w/ns/t2/metadata/snap-1.avro",
            "file:///w/ns/t/../u/metadata/m.avro",
            "file:///w/ns/t",
            "file:///w/ns/other/metadata/m.avro",
            "s3://bucket/w/ns/t/metadata/m.avro",
            "file:///w/ns/t/metadata/%2e%2e/x.avro",
        ] {
            let refused = files.own(other, "manifest").unwrap_err();
            assert_eq!(refused.kind, ErrorType::Forbidden, "{other}");
            assert!(
                !refused.message.contains("/w/"),
                "the answer names no path: {}",
                refused.message
            );
        }
    }
}
