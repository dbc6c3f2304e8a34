//! Metadata files: their names, reading them through a cache, and writing new ones.
//!
//! A metadata file is never rewritten, so the cache is keyed by location and never invalidated; it
//! also keeps the serialized JSON, so a warm load-table copies bytes instead of serializing.
//!
//! The name of every file Floe writes carries the SHA-256 of its content (128 bits of it, after
//! the version and a uuid): the pointer the store records at each commit thus records what the file
//! held. A file read back (the cache was cold) whose content no longer matches its name was
//! changed by someone holding the table's write keys, and is not served. Files Floe did not write
//! (registered ones, and its own from before names carried digests) have no digest to check.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use iceberg::spec::{TableMetadata, ViewMetadata};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{CatalogError, CatalogResult, ErrorType};
use crate::storage::{IoError, WarehouseIo};

/// Which snapshots a load-table returns (`snapshots=all|refs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotsMode {
    All,
    Refs,
}

/// Parsed table metadata with its JSON, as served.
pub struct CachedTable {
    pub metadata: Arc<TableMetadata>,
    pub json: Bytes,
    refs_json: OnceLock<Bytes>,
    etags: [OnceLock<String>; 2],
    location_json: OnceLock<Bytes>,
    weight: u32,
}

/// What a cached metadata file occupies, in bytes, measured with a counting allocator
/// (`tests/integration/memory.rs` checks it against new, typical, wide, nested, long and
/// property-heavy files; it is never lighter and at most half again heavier). Parsed, each field of
/// a schema carries several indexes (by id, name, lower-case name, accessor), each snapshot its
/// summary map, each property and metadata-log entry its strings; the JSON is held once and the
/// `snapshots=refs` JSON (a part of it) may be built beside it; the base is the entry, its key and the rest.
struct Shape {
    json_len: usize,
    fields: usize,
    snapshots: usize,
    properties: usize,
    log_entries: usize,
}

fn weight(shape: Shape) -> u32 {
    const BASE: usize = 2560;
    const PER_FIELD: usize = 1100;
    const PER_SNAPSHOT: usize = 2300;
    const PER_PROPERTY: usize = 175;
    const PER_LOG_ENTRY: usize = 250;
    let bytes = BASE
        + shape.json_len * 3 / 2
        + PER_FIELD * shape.fields
        + PER_SNAPSHOT * shape.snapshots
        + PER_PROPERTY * shape.properties
        + PER_LOG_ENTRY * shape.log_entries;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Fields of all of a table's or view's schemas, nested ones included.
fn field_count<'a>(schemas: impl Iterator<Item = &'a iceberg::spec::SchemaRef>) -> usize {
    schemas.map(|s| s.field_id_to_fields().len()).sum()
}

impl CachedTable {
    pub(crate) fn new(metadata: TableMetadata, json: Bytes) -> Self {
        let weight = weight(Shape {
            json_len: json.len(),
            fields: field_count(metadata.schemas_iter()),
            snapshots: metadata.snapshots().len(),
            properties: metadata.properties().len(),
            log_entries: metadata.metadata_log().len() + metadata.history().len(),
        });
        Self {
            metadata: Arc::new(metadata),
            json,
            refs_json: OnceLock::new(),
            etags: Default::default(),
            location_json: OnceLock::new(),
            weight,
        }
    }

    /// Reads a metadata file's bytes as the cache holds them (parsed, and serialized again).
    pub fn parse(location: &str, bytes: &[u8]) -> CatalogResult<Self> {
        let metadata: TableMetadata =
            serde_json::from_slice(bytes).map_err(|e| parse_error(location, e))?;
        let json =
            Bytes::from(serde_json::to_vec(&metadata).map_err(|e| parse_error(location, e))?);
        Ok(Self::new(metadata, json))
    }

    /// What this entry occupies in the cache, in bytes.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The HTTP ETag of this file served in `mode`: a hash of its location and the mode, computed
    /// once (a metadata file never changes, so neither does its tag).
    pub fn etag(&self, location: &str, mode: SnapshotsMode) -> &str {
        self.etags[mode as usize].get_or_init(|| {
            let digest = Sha256::new()
                .chain_update(location.as_bytes())
                .chain_update([mode as u8])
                .finalize();
            format!("\"{}\"", hex::encode(&digest[..16]))
        })
    }

    /// This file's location as a JSON string, escaped once (a file is cached by its location, so
    /// the location asked for never changes).
    pub fn location_json(&self, location: &str) -> &Bytes {
        self.location_json
            .get_or_init(|| Bytes::from(serde_json::to_vec(location).expect("a string serializes")))
    }

    /// The metadata JSON for `mode`: everything, or only snapshots that a branch or tag points at.
    pub fn json_for(&self, mode: SnapshotsMode) -> Bytes {
        match mode {
            SnapshotsMode::All => self.json.clone(),
            SnapshotsMode::Refs => self.refs_json.get_or_init(|| self.refs_only()).clone(),
        }
    }

    fn refs_only(&self) -> Bytes {
        let mut value: serde_json::Value =
            serde_json::from_slice(&self.json).expect("cached metadata is JSON");
        let referenced: HashSet<i64> = value
            .get("refs")
            .and_then(|r| r.as_object())
            .map(|refs| {
                refs.values()
                    .filter_map(|r| r.get("snapshot-id").and_then(|i| i.as_i64()))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(snapshots) = value.get_mut("snapshots").and_then(|s| s.as_array_mut()) {
            snapshots.retain(|s| {
                s.get("snapshot-id")
                    .and_then(|i| i.as_i64())
                    .is_some_and(|i| referenced.contains(&i))
            });
        }
        Bytes::from(serde_json::to_vec(&value).expect("metadata JSON serializes"))
    }
}

/// Parsed view metadata with its JSON.
pub struct CachedView {
    pub metadata: Arc<ViewMetadata>,
    pub json: Bytes,
    weight: u32,
}

impl CachedView {
    fn new(metadata: ViewMetadata, json: Bytes) -> Self {
        // Views: versions are small and few; their JSON stands in for them.
        let weight = weight(Shape {
            json_len: 2 * json.len(),
            fields: field_count(metadata.schemas_iter()),
            snapshots: 0,
            properties: metadata.properties().len(),
            log_entries: 0,
        });
        Self {
            metadata: Arc::new(metadata),
            json,
            weight,
        }
    }

    /// Reads a view metadata file's bytes as the cache holds them.
    pub fn parse(location: &str, bytes: Bytes) -> CatalogResult<Self> {
        let metadata: ViewMetadata =
            serde_json::from_slice(&bytes).map_err(|e| parse_error(location, e))?;
        Ok(Self::new(metadata, bytes))
    }

    /// What this entry occupies in the cache, in bytes.
    pub fn weight(&self) -> u32 {
        self.weight
    }
}

/// A cache by location: synchronous (a hit is a lookup, with no future to hold) and keyed with
/// foldhash, not SipHash (locations are the server's own names, and a lookup is on every load).
type ByLocation<V> = moka::sync::Cache<String, V, foldhash::fast::RandomState>;

/// Metadata files by location.
pub struct MetadataCache {
    tables: ByLocation<Arc<CachedTable>>,
    views: ByLocation<Arc<CachedView>>,
    /// Largest file read or written.
    max_file_bytes: u64,
}

fn parse_error(location: &str, e: impl std::fmt::Display) -> CatalogError {
    CatalogError::new(
        ErrorType::Internal,
        format!("metadata file {location} cannot be read as Iceberg metadata: {e}"),
    )
}

impl MetadataCache {
    /// A cache of about `bytes` of table metadata (and a quarter of that for views), of files no
    /// larger than `max_file_bytes`.
    pub fn new(bytes: u64, max_file_bytes: u64) -> Self {
        Self {
            tables: moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|_, v: &Arc<CachedTable>| v.weight)
                .build_with_hasher(foldhash::fast::RandomState::default()),
            views: moka::sync::Cache::builder()
                .max_capacity(bytes / 4)
                .weigher(|_, v: &Arc<CachedView>| v.weight)
                .build_with_hasher(foldhash::fast::RandomState::default()),
            max_file_bytes,
        }
    }

    /// Caches a table file and evicts what no longer fits at once: moka applies inserts (and so
    /// evicts) in batches, and a batch of large files waiting would hold memory past the bound.
    fn keep_table(&self, location: &str, cached: Arc<CachedTable>) {
        self.tables.insert(location.to_owned(), cached);
        self.tables.run_pending_tasks();
    }

    fn keep_view(&self, location: &str, cached: Arc<CachedView>) {
        self.views.insert(location.to_owned(), cached);
        self.views.run_pending_tasks();
    }

    /// Refuses metadata that would be larger than the server reads.
    fn check_written_size(&self, location: &str, json: &Bytes) -> CatalogResult<()> {
        if json.len() as u64 > self.max_file_bytes {
            return Err(CatalogError::bad_request(format!(
                "the new metadata for {location} would be {} bytes, more than the {} this server \
                 reads (max_metadata_file_bytes); expire snapshots or remove old metadata first",
                json.len(),
                self.max_file_bytes
            )));
        }
        Ok(())
    }

    /// The table metadata at `location`, read once and then served from memory.
    pub async fn table(
        &self,
        io: &dyn WarehouseIo,
        location: &str,
    ) -> CatalogResult<Arc<CachedTable>> {
        if let Some(hit) = self.tables.get(location) {
            // A handle kept once: load-table is the hot path.
            static HITS: std::sync::LazyLock<metrics::Counter> =
                std::sync::LazyLock::new(|| metrics::counter!("floe_metadata_cache_hits_total"));
            HITS.increment(1);
            return Ok(hit);
        }
        metrics::counter!("floe_metadata_cache_misses_total").increment(1);
        // Boxed: the read's state stays out of every load's future (actix moves it whole).
        Box::pin(self.table_from_storage(io, location)).await
    }

    /// The table metadata at `location` as storage holds it now, whatever the cache holds (a
    /// file being registered must exist: a purged table's files stay cached after they are gone).
    pub async fn table_from_storage(
        &self,
        io: &dyn WarehouseIo,
        location: &str,
    ) -> CatalogResult<Arc<CachedTable>> {
        let bytes = io.read(location, self.max_file_bytes).await?;
        check_digest(location, &bytes)?;
        let cached = Arc::new(CachedTable::parse(location, &bytes)?);
        self.keep_table(location, cached.clone());
        Ok(cached)
    }

    /// The view metadata at `location`.
    pub async fn view(
        &self,
        io: &dyn WarehouseIo,
        location: &str,
    ) -> CatalogResult<Arc<CachedView>> {
        if let Some(hit) = self.views.get(location) {
            return Ok(hit);
        }
        self.view_from_storage(io, location).await
    }

    /// The view metadata at `location` as storage holds it now, whatever the cache holds.
    pub async fn view_from_storage(
        &self,
        io: &dyn WarehouseIo,
        location: &str,
    ) -> CatalogResult<Arc<CachedView>> {
        let bytes = io.read(location, self.max_file_bytes).await?;
        check_digest(location, &bytes)?;
        let cached = Arc::new(CachedView::parse(location, bytes)?);
        self.keep_view(location, cached.clone());
        Ok(cached)
    }

    /// Writes new table metadata under `table_location`, one version past `current`, and caches
    /// it; returns the new file's location (whose name carries the content's digest).
    pub async fn write_table(
        &self,
        io: &dyn WarehouseIo,
        table_location: &str,
        current: Option<&CurrentFile<'_>>,
        metadata: TableMetadata,
    ) -> CatalogResult<(String, Arc<CachedTable>)> {
        let json = to_json(&metadata, current.map_or(0, |c| c.bytes))?;
        let current = current.map(|c| c.location);
        let location = next_metadata_location(table_location, current, &json);
        self.check_written_size(&location, &json)?;
        io.write(&location, json.clone()).await?;
        let cached = Arc::new(CachedTable::new(metadata, json));
        self.keep_table(&location, cached.clone());
        Ok((location, cached))
    }

    /// Writes new view metadata under `view_location`, one version past `current`, and caches it;
    /// returns the new file's location.
    pub async fn write_view(
        &self,
        io: &dyn WarehouseIo,
        view_location: &str,
        current: Option<&str>,
        metadata: ViewMetadata,
    ) -> CatalogResult<(String, Arc<CachedView>)> {
        let json = to_json(&metadata, 0)?;
        let location = next_metadata_location(view_location, current, &json);
        self.check_written_size(&location, &json)?;
        io.write(&location, json.clone()).await?;
        let cached = Arc::new(CachedView::new(metadata, json));
        self.keep_view(&location, cached.clone());
        Ok((location, cached))
    }

    /// Deletes a metadata file that lost its commit race (never referenced by the store).
    pub async fn discard(&self, io: &dyn WarehouseIo, location: &str) {
        self.tables.invalidate(location);
        self.views.invalidate(location);
        if let Err(e) = io.delete(location).await {
            tracing::warn!(%location, error = &e as &dyn std::error::Error, "could not delete an unreferenced metadata file");
        }
    }
}

/// The metadata file a commit starts from: where it is and how large, so the next one is written
/// into a buffer of about its size instead of one that regrows while it is filled.
pub struct CurrentFile<'a> {
    pub location: &'a str,
    pub bytes: usize,
}

/// Metadata as the JSON of its file, written into a buffer of `expected` bytes plus room to
/// grow (a commit's metadata is its predecessor and a little more).
fn to_json(metadata: &impl serde::Serialize, expected: usize) -> CatalogResult<Bytes> {
    let mut json = Vec::with_capacity(expected + expected / 8 + 1024);
    serde_json::to_writer(&mut json, metadata)
        .map_err(|e| CatalogError::internal(e.to_string()))?;
    Ok(Bytes::from(json))
}

/// Hex digits of a metadata file's SHA-256 its name carries (128 bits).
const DIGEST_HEX: usize = 32;

fn digest_of(json: &[u8]) -> String {
    hex::encode(&Sha256::digest(json)[..DIGEST_HEX / 2])
}

/// `{location}/metadata/{version:05}-{uuid}-{digest}.metadata.json`, one past the version of
/// `current`, for a file holding `json`.
pub fn next_metadata_location(table_location: &str, current: Option<&str>, json: &[u8]) -> String {
    let version = current.map_or(0, |c| version_of(c).map_or(1, |v| v + 1));
    format!(
        "{}/metadata/{version:05}-{}-{}.metadata.json",
        table_location.trim_end_matches('/'),
        Uuid::now_v7(),
        digest_of(json)
    )
}

/// The digest a metadata file's name carries, if it is a name Floe gave.
fn digest_in_name(location: &str) -> Option<&str> {
    let file = location
        .rsplit('/')
        .next()?
        .strip_suffix(".metadata.json")?;
    let (_, digest) = file.rsplit_once('-')?;
    (digest.len() == DIGEST_HEX && digest.bytes().all(|b| b.is_ascii_hexdigit())).then_some(digest)
}

/// Refuses a file whose content is not what its name says Floe wrote there.
fn check_digest(location: &str, bytes: &[u8]) -> CatalogResult<()> {
    match digest_in_name(location) {
        Some(named) if !named.eq_ignore_ascii_case(&digest_of(bytes)) => {
            tracing::warn!(%location, "a metadata file's content no longer matches its name; not served");
            Err(CatalogError::internal(format!(
                "metadata file {location} is not the file the catalog wrote (its content changed \
                 since): it is not served"
            )))
        }
        _ => Ok(()),
    }
}

fn version_of(location: &str) -> Option<u64> {
    let file = location.rsplit('/').next()?;
    let digits: String = file.chars().take_while(char::is_ascii_digit).collect();
    if let Ok(v) = digits.parse() {
        return Some(v);
    }
    // Hadoop-style `v12.metadata.json`.
    file.strip_prefix('v')?.split('.').next()?.parse().ok()
}

/// An opaque page token for the name a page ended at.
pub fn encode_page_token(key: &[u8; 32], last: &str) -> String {
    let mac = crate::identity::hmac_sha256(key, last.as_bytes());
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(last.as_bytes()),
        URL_SAFE_NO_PAD.encode(&mac[..16])
    )
}

/// The name a page token stands for; a token this server did not issue (or one changed since)
/// is a 400.
pub fn decode_page_token(key: &[u8; 32], token: &str) -> CatalogResult<String> {
    let refused = || CatalogError::bad_request("pageToken is not a token this server issued");
    let (name, mac) = token.split_once('.').ok_or_else(refused)?;
    let name = URL_SAFE_NO_PAD
        .decode(name)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(refused)?;
    let expected = crate::identity::hmac_sha256(key, name.as_bytes());
    let given = URL_SAFE_NO_PAD.decode(mac).map_err(|_| refused())?;
    // Constant-time comparison: the tag must not be guessable byte by byte.
    let same = given.len() == 16
        && given
            .iter()
            .zip(&expected[..16])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(refused());
    }
    Ok(name)
}

impl From<Arc<IoError>> for CatalogError {
    fn from(e: Arc<IoError>) -> Self {
        (*e).clone().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_versions_count_up() {
        let first = next_metadata_location("s3://b/t/", None, b"{}");
        assert!(first.starts_with("s3://b/t/metadata/00000-"), "{first}");
        let second = next_metadata_location("s3://b/t", Some(&first), b"{}");
        assert!(second.starts_with("s3://b/t/metadata/00001-"), "{second}");
        assert!(
            next_metadata_location(
                "s3://b/t",
                Some("s3://b/t/metadata/v7.metadata.json"),
                b"{}"
            )
            .contains("/00008-")
        );
    }

    /// Issue 23, escape 2: a writer rewrote its table's current metadata file with its vended
    /// keys. The name Floe gave the file says what it held; other content is not served.
    #[test]
    fn a_metadata_file_is_served_only_with_the_content_its_name_records() {
        let json = br#"{"format-version":2}"#;
        let location = next_metadata_location("s3://b/t", None, json);
        assert!(digest_in_name(&location).is_some(), "{location}");
        assert!(check_digest(&location, json).is_ok());
        let refused = check_digest(&location, br#"{"format-version":2} "#).unwrap_err();
        assert!(refused.message.contains("not served"), "{refused}");
        // Files Floe did not name (registered, or written by a client) carry nothing to check.
        let theirs = "s3://b/t/metadata/00003-0190b5b2-7c1a-7c6e-9a4f-2b1e5c3d4f5a.metadata.json";
        assert_eq!(digest_in_name(theirs), None);
        assert!(check_digest(theirs, b"anything").is_ok());
    }

    #[test]
    fn page_tokens_round_trip() {
        assert_eq!(
            decode_page_token(&[1; 32], &encode_page_token(&[1; 32], "ns/ä")).unwrap(),
            "ns/ä"
        );
        assert!(decode_page_token(&[1; 32], "***").is_err());
        // A token made by hand, or with another key, or changed, is refused.
        let forged = URL_SAFE_NO_PAD.encode("zzz");
        assert!(decode_page_token(&[1; 32], &forged).is_err());
        assert!(decode_page_token(&[1; 32], &encode_page_token(&[2; 32], "ns")).is_err());
        let token = encode_page_token(&[1; 32], "ns");
        let tampered = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("nt"),
            token.split_once('.').unwrap().1
        );
        assert!(decode_page_token(&[1; 32], &tampered).is_err());
    }
}
