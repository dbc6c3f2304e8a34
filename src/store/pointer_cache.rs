//! What a PostgreSQL replica remembers of table and view pointers, so load-table reads memory.
//!
//! Owns: the cached [`TabularRecord`] of each table or view a replica has read by name, how long
//! one may be served, and the rules that keep it no staler than its bound. Must not touch: SQL or
//! the listener's connection (the PostgreSQL store reads through and feeds it notices), and
//! nothing above the store.
//!
//! Every change to a pointer (a commit, rename, drop, bin, restore) sends a [`PointerNotice`] on
//! [`POINTERS_CHANNEL`] inside the transaction that makes it, so every replica hears of it once it
//! is committed, within the notification's delay. A replica applies a notice as a compare-and-swap
//! (the pointer moves only from the location it had), and forgets the entry when it cannot tell.
//! So an entry is at most the notification's delay behind the database while the listener is up,
//! and never older than `max_age` whatever happens. While the listener is down nothing is served
//! or filled: every read goes to the database until it is back. A read that started before a
//! notice was applied never fills (its answer may predate the change), which the generation
//! counter decides. Absent names are never cached, so a create needs no notice.
//!
//! Reads that miss together share one: an entry's expiry under load finds every request in flight
//! for the table, and each reading the database itself would send them all to the pool at once.
//! A read is shared only among requests that took their ticket at the same generation (so no
//! request joins a read that began before a notice it has seen, its own replica's commit
//! included), and only when it finds the name: an absent name is read again by each request
//! that waited, since a create sends no notice.
//!
//! Commits stay correct whatever is cached: the database's compare-and-swap decides, and a
//! refused swap forgets the entry so the retry reads the database.

use std::collections::HashMap;
use std::future::Future;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{StoreError, StoreResult, TabularRecord};
use crate::domain::TableIdent;
use crate::domain::TabularId;
use crate::domain::WarehouseId;

/// The channel pointer notices travel on (apart from the management changes' channel, so
/// replicas that do not cache pointers are not woken by every commit).
pub const POINTERS_CHANNEL: &str = "floe_pointers";

/// Longest location pair a notice carries; a longer one is sent as "forget" (a notification's
/// payload must stay under 8000 bytes).
pub const MAX_NOTICE_LOCATIONS: usize = 7000;

/// Whether a replica serves pointers from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PointerCacheMode {
    /// Cached, kept current by notices, never older than the cache's `max_age`.
    #[default]
    Notify,
    /// Every load reads the database.
    Strict,
}

/// A pointer change as it travels between replicas: the table or view (by id) moved from one
/// metadata location to another, or (both absent) left its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointerNotice {
    #[serde(rename = "w")]
    pub warehouse: WarehouseId,
    pub id: TabularId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// Proof that a read-through began at a given generation; it fills the cache only if no notice
/// was applied since.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

struct Entry {
    record: TabularRecord,
    read_at: Instant,
    weight: u64,
}

/// Maps hashed with foldhash, seeded at random per map (as the verified-token cache is): lookups
/// are on load-table's hot path, and SipHash over a name's parts costs more than the rest.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Entries {
    /// Warehouse → name → entry (looked up without building a key).
    by_name: Map<WarehouseId, Map<TableIdent, Entry>>,
    /// Table or view id → its warehouse and name in `by_name`.
    names: Map<TabularId, (WarehouseId, TableIdent)>,
    bytes: u64,
}

impl Entries {
    fn get_mut(&mut self, warehouse: WarehouseId, ident: &TableIdent) -> Option<&mut Entry> {
        self.by_name.get_mut(&warehouse)?.get_mut(ident)
    }

    fn remove_id(&mut self, id: TabularId) {
        if let Some((warehouse, ident)) = self.names.get(&id).cloned() {
            self.remove_name(warehouse, &ident);
        }
    }

    fn remove_name(&mut self, warehouse: WarehouseId, ident: &TableIdent) {
        let Some(tables) = self.by_name.get_mut(&warehouse) else {
            return;
        };
        if let Some(entry) = tables.remove(ident) {
            self.names.remove(&entry.record.id);
            self.bytes -= entry.weight;
        }
        if tables.is_empty() {
            self.by_name.remove(&warehouse);
        }
    }

    /// Any one entry, to make room.
    fn any(&self) -> Option<(WarehouseId, TableIdent)> {
        let (warehouse, tables) = self.by_name.iter().next()?;
        Some((*warehouse, tables.keys().next()?.clone()))
    }

    fn insert(&mut self, warehouse: WarehouseId, entry: Entry) {
        self.bytes += entry.weight;
        self.names
            .insert(entry.record.id, (warehouse, entry.record.ident.clone()));
        self.by_name
            .entry(warehouse)
            .or_default()
            .insert(entry.record.ident.clone(), entry);
    }
}

/// What an entry occupies: its two maps' slots, the key's and the record's strings (the name is
/// held twice, in the key and in the record, and once more in the id map).
fn weight(record: &TabularRecord) -> u64 {
    const SLOTS: u64 = 320;
    let name: usize = record
        .ident
        .namespace
        .parts()
        .iter()
        .map(|p| p.len() + 24)
        .sum::<usize>()
        + record.ident.name.as_str().len();
    SLOTS + 3 * name as u64 + (record.location.len() + record.metadata_location.len()) as u64
}

/// The replica's pointer cache (see the module's documentation).
pub struct PointerCache {
    mode: PointerCacheMode,
    max_age: Duration,
    capacity_bytes: u64,
    /// Whether the listener is up, so notices arrive.
    live: AtomicBool,
    /// Bumped by every notice applied and every clear.
    generation: AtomicU64,
    entries: RwLock<Entries>,
    /// Reads in flight, by name and the generation their tickets were taken at.
    flights: moka::future::Cache<(WarehouseId, TableIdent, u64), TabularRecord>,
    /// Reads of the database this cache asked for (for tests).
    reads: AtomicU64,
}

/// How a shared read ended other than finding the name.
enum FlightEnd {
    Absent,
    Failed(StoreError),
}

/// Names read at once that may share their reads (one kept per name being read).
const FLIGHTS: u64 = 10_000;

impl PointerCache {
    /// A cache of about `capacity_bytes`, serving an entry at most `max_age` after it was read. It
    /// serves nothing until [`PointerCache::listening`].
    pub fn new(mode: PointerCacheMode, max_age: Duration, capacity_bytes: u64) -> Self {
        Self {
            mode,
            max_age,
            capacity_bytes,
            live: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            entries: RwLock::new(Entries::default()),
            flights: moka::future::Cache::builder()
                .max_capacity(FLIGHTS)
                .time_to_live(max_age.max(Duration::from_millis(1)))
                .build(),
            reads: AtomicU64::new(0),
        }
    }

    /// A cache that never serves (strict mode).
    pub fn strict() -> Self {
        Self::new(PointerCacheMode::Strict, Duration::ZERO, 0)
    }

    fn serving(&self) -> bool {
        self.mode == PointerCacheMode::Notify && self.live.load(Ordering::Acquire)
    }

    /// The cached record of `ident`, when the listener is up and it is young enough.
    pub fn get(&self, warehouse: WarehouseId, ident: &TableIdent) -> Option<TabularRecord> {
        if !self.serving() {
            return None;
        }
        let entries = self.entries.read().expect("pointer cache lock");
        let entry = entries.by_name.get(&warehouse)?.get(ident)?;
        (entry.read_at.elapsed() < self.max_age).then(|| entry.record.clone())
    }

    /// Taken before reading the database; `None` when what is read must not be cached.
    pub fn ticket(&self) -> Option<Ticket> {
        self.serving()
            .then(|| Ticket(self.generation.load(Ordering::Acquire)))
    }

    /// Caches what a read begun with `ticket` found, unless a notice was applied meanwhile.
    pub fn fill(&self, ticket: Ticket, warehouse: WarehouseId, record: &TabularRecord) {
        let weight = weight(record);
        if weight > self.capacity_bytes {
            return;
        }
        let mut entries = self.entries.write().expect("pointer cache lock");
        // Checked under the lock every notice takes, so none slips in between.
        if self.generation.load(Ordering::Acquire) != ticket.0 || !self.serving() {
            return;
        }
        entries.remove_name(warehouse, &record.ident);
        entries.remove_id(record.id);
        while entries.bytes + weight > self.capacity_bytes {
            let Some((w, victim)) = entries.any() else {
                break;
            };
            entries.remove_name(w, &victim);
        }
        entries.insert(
            warehouse,
            Entry {
                record: record.clone(),
                read_at: Instant::now(),
                weight,
            },
        );
    }

    /// After a miss: the record of `ident` as `read` finds it (one read for all requests that
    /// miss together at one generation), cached when it may be.
    pub async fn read_through<F, Fut>(
        &self,
        warehouse: WarehouseId,
        ident: &TableIdent,
        read: F,
    ) -> StoreResult<Option<TabularRecord>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = StoreResult<Option<TabularRecord>>>,
    {
        let Some(ticket) = self.ticket() else {
            self.reads.fetch_add(1, Ordering::Relaxed);
            return read().await;
        };
        let mut read = Some(read);
        let mut led = false;
        let key = (warehouse, ident.clone(), ticket.0);
        let shared = self
            .flights
            .try_get_with(key.clone(), async {
                led = true;
                self.reads.fetch_add(1, Ordering::Relaxed);
                match read.take().expect("one read per flight")().await {
                    Ok(Some(record)) => {
                        self.fill(ticket, warehouse, &record);
                        Ok(record)
                    }
                    Ok(None) => Err(FlightEnd::Absent),
                    Err(e) => Err(FlightEnd::Failed(e)),
                }
            })
            .await;
        if led {
            // Later requests find the filled entry (or, after a notice, read anew).
            self.flights.invalidate(&key).await;
        }
        match shared {
            Ok(record) => Ok(Some(record)),
            Err(end) => match (&*end, read) {
                (FlightEnd::Failed(e), _) => Err(e.clone()),
                (FlightEnd::Absent, None) => Ok(None),
                (FlightEnd::Absent, Some(read)) => {
                    self.reads.fetch_add(1, Ordering::Relaxed);
                    read().await
                }
            },
        }
    }

    /// Reads of the database [`PointerCache::read_through`] made.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Applies a pointer change, from this replica's own write or another's notice.
    pub fn apply(&self, notice: &PointerNotice) {
        let mut entries = self.entries.write().expect("pointer cache lock");
        self.generation.fetch_add(1, Ordering::AcqRel);
        let Some((warehouse, ident)) = entries.names.get(&notice.id).cloned() else {
            return;
        };
        let (Some(from), Some(to)) = (&notice.from, &notice.to) else {
            entries.remove_id(notice.id);
            return;
        };
        let entry = entries.get_mut(warehouse, &ident).expect("both maps agree");
        if entry.record.metadata_location == *from {
            entry.record.metadata_location.clone_from(to);
        } else if entry.record.metadata_location != *to {
            // Notices crossed (an older one after this replica's own newer write): unknown now.
            entries.remove_id(notice.id);
        }
    }

    /// Applies a notice's payload; one that cannot be read clears everything.
    pub fn apply_wire(&self, payload: &str) {
        match serde_json::from_str::<PointerNotice>(payload) {
            Ok(notice) => self.apply(&notice),
            Err(_) => self.clear(),
        }
    }

    /// Forgets `ident` (a swap the database refused: what is cached is behind).
    pub fn forget_name(&self, warehouse: WarehouseId, ident: &TableIdent) {
        let mut entries = self.entries.write().expect("pointer cache lock");
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove_name(warehouse, ident);
    }

    fn clear(&self) {
        let mut entries = self.entries.write().expect("pointer cache lock");
        self.generation.fetch_add(1, Ordering::AcqRel);
        *entries = Entries::default();
    }

    /// The listener is up (again): whatever changed while it was not is unknown, so start empty.
    pub fn listening(&self) {
        self.clear();
        self.live.store(true, Ordering::Release);
    }

    /// The listener is down: serve and fill nothing until it is back.
    pub fn deaf(&self) {
        self.live.store(false, Ordering::Release);
        self.clear();
    }

    /// Entries and their weight (for metrics and tests).
    pub fn occupancy(&self) -> (usize, u64) {
        let entries = self.entries.read().expect("pointer cache lock");
        (entries.names.len(), entries.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{NamespaceIdent, ObjectName};
    use crate::store::TabularKind;

    fn record(name: &str, metadata: &str) -> TabularRecord {
        TabularRecord {
            id: TabularId::now_v7(),
            kind: TabularKind::Table,
            ident: TableIdent::new(
                NamespaceIdent::new(vec!["ns".into()]).unwrap(),
                ObjectName::new(name).unwrap(),
            ),
            location: format!("s3://b/ns/{name}"),
            metadata_location: metadata.into(),
            created_at_ms: 0,
        }
    }

    fn live_cache() -> PointerCache {
        let cache = PointerCache::new(PointerCacheMode::Notify, Duration::from_secs(60), 1 << 20);
        cache.listening();
        cache
    }

    fn moved(w: WarehouseId, r: &TabularRecord, from: &str, to: &str) -> PointerNotice {
        PointerNotice {
            warehouse: w,
            id: r.id,
            from: Some(from.into()),
            to: Some(to.into()),
        }
    }

    #[test]
    fn a_notice_moves_the_pointer_only_from_where_it_was() {
        let (cache, w) = (live_cache(), WarehouseId::now_v7());
        let t = record("t", "m1");
        cache.fill(cache.ticket().unwrap(), w, &t);
        assert_eq!(cache.get(w, &t.ident).unwrap().metadata_location, "m1");
        cache.apply(&moved(w, &t, "m1", "m2"));
        assert_eq!(cache.get(w, &t.ident).unwrap().metadata_location, "m2");
        // The same change heard twice (own write, then the notice) is harmless.
        cache.apply(&moved(w, &t, "m1", "m2"));
        assert_eq!(cache.get(w, &t.ident).unwrap().metadata_location, "m2");
        // An older change heard after a newer one: the entry is dropped, not moved back.
        cache.apply(&moved(w, &t, "m0", "m1"));
        assert!(cache.get(w, &t.ident).is_none());
    }

    #[test]
    fn a_read_that_began_before_a_notice_does_not_fill() {
        let (cache, w) = (live_cache(), WarehouseId::now_v7());
        let t = record("t", "m1");
        let before = cache.ticket().unwrap();
        cache.apply(&moved(w, &record("other", "x"), "x", "y"));
        cache.fill(before, w, &t);
        assert!(cache.get(w, &t.ident).is_none());
    }

    #[test]
    fn nothing_is_served_or_filled_while_the_listener_is_down_and_it_restarts_empty() {
        let (cache, w) = (live_cache(), WarehouseId::now_v7());
        let t = record("t", "m1");
        cache.fill(cache.ticket().unwrap(), w, &t);
        cache.deaf();
        assert!(cache.get(w, &t.ident).is_none());
        assert!(cache.ticket().is_none());
        cache.listening();
        assert!(
            cache.get(w, &t.ident).is_none(),
            "what was cached before is forgotten"
        );
        let strict = PointerCache::strict();
        strict.listening();
        assert!(strict.ticket().is_none(), "strict mode never caches");
    }

    #[test]
    fn a_drop_an_unreadable_notice_and_age_all_forget() {
        let (cache, w) = (live_cache(), WarehouseId::now_v7());
        let (a, b) = (record("a", "m"), record("b", "m"));
        cache.fill(cache.ticket().unwrap(), w, &a);
        cache.fill(cache.ticket().unwrap(), w, &b);
        cache.apply(&PointerNotice {
            warehouse: w,
            id: a.id,
            from: None,
            to: None,
        });
        assert!(cache.get(w, &a.ident).is_none());
        assert!(cache.get(w, &b.ident).is_some());
        cache.apply_wire("not a notice");
        assert!(cache.get(w, &b.ident).is_none());
        let young = PointerCache::new(PointerCacheMode::Notify, Duration::from_millis(20), 1 << 20);
        young.listening();
        young.fill(young.ticket().unwrap(), w, &a);
        assert!(young.get(w, &a.ident).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(young.get(w, &a.ident).is_none(), "older than max_age");
    }

    /// A database read that finds `found` after `ms` milliseconds.
    async fn read_after(
        ms: u64,
        found: Option<TabularRecord>,
    ) -> StoreResult<Option<TabularRecord>> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(found)
    }

    /// Eight requests missing one name at once, each reading `found` after a pause.
    async fn eight_miss_together(
        cache: &PointerCache,
        w: WarehouseId,
        ident: &TableIdent,
        found: Option<TabularRecord>,
    ) -> Vec<Option<TabularRecord>> {
        let reads = (0..8).map(|_| cache.read_through(w, ident, || read_after(20, found.clone())));
        futures::future::join_all(reads)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect()
    }

    #[tokio::test]
    async fn requests_that_miss_together_share_one_read_of_a_name_that_exists() {
        let (cache, w) = (live_cache(), WarehouseId::now_v7());
        let t = record("t", "m1");
        let got = eight_miss_together(&cache, w, &t.ident, Some(t.clone())).await;
        assert!(got.iter().all(|r| r.as_ref() == Some(&t)));
        assert_eq!(cache.reads(), 1, "one read for eight misses");
        assert_eq!(cache.get(w, &t.ident), Some(t), "and it filled the cache");
    }

    #[tokio::test]
    async fn a_miss_never_joins_another_warehouses_read_of_the_same_name() {
        // Tenant B names exactly the table tenant A's loads are reading at that moment.
        let cache = live_cache();
        let (a, b) = (WarehouseId::now_v7(), WarehouseId::now_v7());
        let (ours, theirs) = (record("t", "a-metadata"), record("t", "b-metadata"));
        let (got_a, got_b) = tokio::join!(
            cache.read_through(a, &ours.ident, || read_after(20, Some(ours.clone()))),
            cache.read_through(b, &theirs.ident, || read_after(20, Some(theirs.clone()))),
        );
        assert_eq!(got_a.unwrap(), Some(ours));
        assert_eq!(
            got_b.unwrap(),
            Some(theirs),
            "B gets its own warehouse's answer"
        );
        assert_eq!(cache.reads(), 2);
    }

    #[tokio::test]
    async fn an_absent_name_and_a_cache_that_does_not_serve_are_read_by_each_request() {
        let (cache, w) = (live_cache(), WarehouseId::now_v7());
        let t = record("t", "m1");
        let got = eight_miss_together(&cache, w, &t.ident, None).await;
        assert!(got.iter().all(Option::is_none));
        assert_eq!(
            cache.reads(),
            8,
            "a create sends no notice: nobody shares a miss"
        );
        let deaf = PointerCache::new(PointerCacheMode::Notify, Duration::from_secs(60), 1 << 20);
        eight_miss_together(&deaf, w, &t.ident, Some(t.clone())).await;
        assert_eq!(
            deaf.reads(),
            8,
            "no listener, no ticket: every read goes through"
        );
    }

    #[tokio::test]
    async fn a_request_after_a_notice_does_not_join_a_read_that_began_before_it() {
        let (cache, w) = (live_cache(), WarehouseId::now_v7());
        let t = record("t", "m1");
        let slow_old_read = cache.read_through(w, &t.ident, || read_after(50, Some(t.clone())));
        let after_the_commit = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            // This replica's own commit applies its notice before it is acknowledged.
            cache.apply(&moved(w, &record("other", "x"), "x", "y"));
            let mut moved_on = t.clone();
            moved_on.metadata_location = "m2".into();
            cache
                .read_through(w, &t.ident, || async { Ok(Some(moved_on)) })
                .await
        };
        let (old, new) = tokio::join!(slow_old_read, after_the_commit);
        assert_eq!(old.unwrap().unwrap().metadata_location, "m1");
        assert_eq!(new.unwrap().unwrap().metadata_location, "m2", "read anew");
        assert_eq!(cache.reads(), 2);
        let cached = cache.get(w, &t.ident).unwrap();
        assert_eq!(cached.metadata_location, "m2", "the old read did not fill");
    }

    #[tokio::test]
    async fn a_failed_read_is_shared_and_the_next_request_reads_again() {
        let (cache, w) = (live_cache(), WarehouseId::now_v7());
        let t = record("t", "m1");
        let reads = (0..4).map(|_| {
            cache.read_through(w, &t.ident, || async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err(StoreError::failure("pool timed out"))
            })
        });
        let got = futures::future::join_all(reads).await;
        assert!(got.iter().all(Result::is_err));
        assert_eq!(cache.reads(), 1);
        let again = cache
            .read_through(w, &t.ident, || async { Ok(Some(t.clone())) })
            .await;
        assert_eq!(again.unwrap(), Some(t));
        assert_eq!(cache.reads(), 2, "a failure is not remembered");
    }

    #[tokio::test]
    async fn a_waiter_reads_itself_when_the_request_leading_its_read_hangs_up() {
        let (cache, w) = (live_cache(), WarehouseId::now_v7());
        let t = record("t", "m1");
        let leader = cache.read_through(w, &t.ident, || read_after(60_000, Some(t.clone())));
        let abandoned = tokio::time::timeout(Duration::from_millis(20), leader);
        let waiter = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            cache
                .read_through(w, &t.ident, || async { Ok(Some(t.clone())) })
                .await
        };
        let (gave_up, served) = tokio::join!(abandoned, waiter);
        assert!(gave_up.is_err(), "the leader's client hung up");
        assert_eq!(served.unwrap(), Some(t), "the waiter was not left hanging");
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let w = WarehouseId::now_v7();
        let one = weight(&record("t0000", "m"));
        let cache = PointerCache::new(PointerCacheMode::Notify, Duration::from_secs(60), one * 10);
        cache.listening();
        for i in 0..100 {
            cache.fill(
                cache.ticket().unwrap(),
                w,
                &record(&format!("t{i:04}"), "m"),
            );
        }
        let (count, bytes) = cache.occupancy();
        assert_eq!(count, 10);
        assert!(bytes <= one * 10);
    }
}
