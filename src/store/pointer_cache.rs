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
//! Commits stay correct whatever is cached: the database's compare-and-swap decides, and a
//! refused swap forgets the entry so the retry reads the database.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TabularRecord;
use crate::domain::TableIdent;

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
    pub warehouse: Uuid,
    pub id: Uuid,
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
    by_name: Map<Uuid, Map<TableIdent, Entry>>,
    /// Table or view id → its warehouse and name in `by_name`.
    names: Map<Uuid, (Uuid, TableIdent)>,
    bytes: u64,
}

impl Entries {
    fn get_mut(&mut self, warehouse: Uuid, ident: &TableIdent) -> Option<&mut Entry> {
        self.by_name.get_mut(&warehouse)?.get_mut(ident)
    }

    fn remove_id(&mut self, id: Uuid) {
        if let Some((warehouse, ident)) = self.names.get(&id).cloned() {
            self.remove_name(warehouse, &ident);
        }
    }

    fn remove_name(&mut self, warehouse: Uuid, ident: &TableIdent) {
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
    fn any(&self) -> Option<(Uuid, TableIdent)> {
        let (warehouse, tables) = self.by_name.iter().next()?;
        Some((*warehouse, tables.keys().next()?.clone()))
    }

    fn insert(&mut self, warehouse: Uuid, entry: Entry) {
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
}

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
    pub fn get(&self, warehouse: Uuid, ident: &TableIdent) -> Option<TabularRecord> {
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
    pub fn fill(&self, ticket: Ticket, warehouse: Uuid, record: &TabularRecord) {
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
    pub fn forget_name(&self, warehouse: Uuid, ident: &TableIdent) {
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
            id: Uuid::now_v7(),
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

    fn moved(w: Uuid, r: &TabularRecord, from: &str, to: &str) -> PointerNotice {
        PointerNotice {
            warehouse: w,
            id: r.id,
            from: Some(from.into()),
            to: Some(to.into()),
        }
    }

    #[test]
    fn a_notice_moves_the_pointer_only_from_where_it_was() {
        let (cache, w) = (live_cache(), Uuid::now_v7());
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
        let (cache, w) = (live_cache(), Uuid::now_v7());
        let t = record("t", "m1");
        let before = cache.ticket().unwrap();
        cache.apply(&moved(w, &record("other", "x"), "x", "y"));
        cache.fill(before, w, &t);
        assert!(cache.get(w, &t.ident).is_none());
    }

    #[test]
    fn nothing_is_served_or_filled_while_the_listener_is_down_and_it_restarts_empty() {
        let (cache, w) = (live_cache(), Uuid::now_v7());
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
        let (cache, w) = (live_cache(), Uuid::now_v7());
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

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let w = Uuid::now_v7();
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
