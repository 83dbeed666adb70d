// Write policies: write-through, write-back and write-around
//
// A cache in front of a database has to decide *when* a write reaches the database.
// Write-through writes the database on every `put`, before returning: every write costs a round
// trip, but nothing the client was told is saved can be lost. Write-back only updates the cache
// and marks the entry *dirty*; dirty entries reach the database later, in a `flush` or when they
// are evicted. Fifty updates to a hot key then cost one database write instead of fifty — that is
// how view counters, game leaderboards and the OS page cache stay fast — but whatever is still
// dirty when the process crashes is gone. Write-around writes the database only and drops any
// cached copy (it would now be stale): data written once and rarely read never takes cache room.
//
// Build `WriteCache`: `put`, `get` (cache first, then the store), `flush` (each dirty entry
// written once, oldest first, then clean) and `evict_oldest` (a full cache evicts
// first-in-first-out, and a dirty victim must be written back first, or its data silently
// disappears).
//
// Lab (runs once the tests pass): raise FLUSH_EVERY (operations between flushes) → fewer store
// writes but more lost on a crash: the durability/throughput trade-off. Raise SKEW → hotter
// keys, more writes coalesced.

use std::collections::{HashMap, VecDeque};

use sdlings_kit::caching::write_policies::{self as lab, Key, Store, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePolicy {
    /// `put` writes the store before returning; cached entries are never dirty.
    WriteThrough,
    /// `put` only updates the cache and marks the entry dirty; the store is written on `flush`
    /// or when a dirty entry is evicted.
    WriteBack,
    /// `put` writes the store and drops the key's cached copy, if any; only `get` fills the
    /// cache.
    WriteAround,
}

#[derive(Debug)]
struct Entry {
    value: Value,
    /// The cache holds a newer value than the store.
    dirty: bool,
}

/// A bounded cache in front of a [`Store`], with a write policy.
#[derive(Debug)]
pub struct WriteCache {
    policy: WritePolicy,
    capacity: usize,
    entries: HashMap<Key, Entry>,
    /// Keys in the order they entered the cache. The front is the next eviction victim: eviction
    /// is first-in-first-out, because *which* key to evict is the LRU exercise's subject; here
    /// what matters is what happens to the victim's data.
    order: VecDeque<Key>,
    store: Store,
}

// ---- Your part -------------------------------------------------------------------------------

impl WriteCache {
    /// Stores `value` under `key`, following the policy. A new key may need room: evict first.
    pub fn put(&mut self, key: Key, value: Value) {
        let dirty = match self.policy {
            WritePolicy::WriteThrough => {
                // Store first: once the database has it, the write is safe, and only then does
                // the cache (and the caller) see it.
                self.store.write(key, value);
                false
            }
            // Just remember that the store is behind. Further puts to this key overwrite the
            // cached value for free: that is the coalescing.
            WritePolicy::WriteBack => true,
            WritePolicy::WriteAround => {
                self.store.write(key, value);
                // A cached copy now holds the old value: drop it, from the FIFO order too. The
                // next get reads the new value from the store.
                if self.entries.remove(&key).is_some() {
                    self.order.retain(|&k| k != key);
                }
                return;
            }
        };
        if let Some(entry) = self.entries.get_mut(&key) {
            // Already cached: overwrite in place, no eviction needed.
            entry.value = value;
            entry.dirty = dirty;
        } else {
            self.insert(key, Entry { value, dirty });
        }
    }

    /// The value for `key`: from the cache if it is there (it is never older than the store),
    /// otherwise read from the store and cached as a clean entry.
    pub fn get(&mut self, key: Key) -> Option<Value> {
        if let Some(entry) = self.entries.get(&key) {
            return Some(entry.value);
        }
        let value = self.store.read(key)?;
        // Clean: the store already has this exact value, so it must never be written back.
        self.insert(
            key,
            Entry {
                value,
                dirty: false,
            },
        );
        Some(value)
    }

    /// Writes every dirty entry to the store, once each, oldest first (in the order the keys
    /// entered the cache), and marks it clean. Returns how many entries were written.
    pub fn flush(&mut self) -> usize {
        let mut written = 0;
        // Oldest first (the order keys entered the cache, the order eviction would write them),
        // so the store sees the same sequence of writes on every run.
        for key in &self.order {
            let entry = self
                .entries
                .get_mut(key)
                .expect("order and entries hold the same keys");
            if entry.dirty {
                self.store.write(*key, entry.value);
                entry.dirty = false;
                written += 1;
            }
        }
        written
    }

    /// Removes the oldest entry to make room. A dirty victim holds the only copy of its newest
    /// value, so it is written back before it is dropped.
    fn evict_oldest(&mut self) {
        let Some(key) = self.order.pop_front() else {
            return;
        };
        let entry = self
            .entries
            .remove(&key)
            .expect("order and entries hold the same keys");
        if entry.dirty {
            self.store.write(key, entry.value);
        }
    }

    /// Adds a key that is not cached yet, evicting first if the cache is full.
    fn insert(&mut self, key: Key, entry: Entry) {
        debug_assert!(!self.entries.contains_key(&key));
        if self.entries.len() >= self.capacity {
            self.evict_oldest();
        }
        self.order.push_back(key);
        self.entries.insert(key, entry);
    }
}

// ---- Given -----------------------------------------------------------------------------------

impl WriteCache {
    pub fn new(policy: WritePolicy, capacity: usize, store: Store) -> Self {
        assert!(capacity > 0, "a cache needs room for at least one entry");
        WriteCache {
            policy,
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
            store,
        }
    }

    /// Entries currently cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries whose newest value has not reached the store yet.
    pub fn dirty_count(&self) -> usize {
        self.entries.values().filter(|e| e.dirty).count()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The process dies: the cache's memory is gone, and what survives is exactly what the store
    /// holds. (No flush here — a crash does not ask first.)
    pub fn crash(self) -> Store {
        self.store
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Operations (puts) between two flushes of the write-back cache.
const FLUSH_EVERY: u64 = 500;
/// Zipf skew of the keys written: 0 = uniform, 1 = typical web traffic, 2 = a few very hot keys.
const SKEW: f64 = 1.0;
const CACHE_CAPACITY: usize = 200;

fn main() {
    let knobs = lab::Knobs {
        flush_every: FLUSH_EVERY,
        skew: SKEW,
        puts_before_crash: 9_973, // deliberately not a multiple of FLUSH_EVERY
        keys: 1_000,
        seed: 7,
    };
    let with = |policy| move |store| WriteCache::new(policy, CACHE_CAPACITY, store);
    use WritePolicy::*;
    lab::run_lab(
        &knobs,
        with(WriteThrough),
        with(WriteBack),
        with(WriteAround),
    );
}

/// The lab drives the cache through this trait (in the kit).
impl lab::LabCache for WriteCache {
    fn put(&mut self, key: Key, value: Value) {
        WriteCache::put(self, key, value);
    }

    fn get(&mut self, key: Key) -> Option<Value> {
        WriteCache::get(self, key)
    }

    fn flush(&mut self) {
        WriteCache::flush(self);
    }

    fn dirty(&self) -> usize {
        self.dirty_count()
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn crash(self) -> Store {
        self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use WritePolicy::{WriteAround, WriteBack, WriteThrough};

    fn cache(policy: WritePolicy, capacity: usize) -> WriteCache {
        WriteCache::new(policy, capacity, Store::new())
    }

    // --- write-through ---

    #[test]
    fn write_through_put_writes_the_store_before_returning_and_caches_clean() {
        let mut c = cache(WriteThrough, 10);
        c.put(1, 100);
        let why = "the store holds it once put returns";
        assert_eq!(c.store().peek(1), Some(100), "{why}");
        assert_eq!(c.get(1), Some(100), "a value just put is readable back");
        let why = "put also caches it: get needs no store read";
        assert_eq!(c.store().reads(), 0, "{why}");
        assert_eq!(c.dirty_count(), 0, "write-through entries are never dirty");
        assert_eq!(c.flush(), 0, "so flush has nothing to write");
    }

    #[test]
    fn write_through_writes_the_store_on_every_put() {
        let mut c = cache(WriteThrough, 10);
        for v in 1..=5 {
            c.put(7, v);
        }
        let why = "write-through does not coalesce: 5 puts, 5 writes";
        assert_eq!(c.store().writes(), 5, "{why}");
        let store = c.crash();
        assert_eq!(store.peek(7), Some(5), "the latest value survives a crash");
    }

    // --- write-back ---

    #[test]
    fn write_back_coalesces_puts_until_a_flush_writes_the_latest_value_once() {
        let mut c = WriteCache::new(WriteBack, 10, Store::with_rows([(1, 5)]));
        for v in 1..=50 {
            c.put(1, v);
        }
        let why = "write-back: put only updates the cache";
        assert_eq!(c.store().writes(), 0, "{why}");
        assert_eq!(c.dirty_count(), 1, "... and marks the entry dirty");
        let why = "get serves the cached (newer) value, not the store's";
        assert_eq!(c.get(1), Some(50), "{why}");
        assert_eq!(c.flush(), 1, "flush writes the one dirty entry");
        let why = "50 puts, one store write: the latest value";
        assert_eq!(c.store().log(), [(1, 50)], "{why}");
    }

    #[test]
    fn a_second_flush_writes_nothing_because_flush_clears_dirty_marks() {
        let mut c = WriteCache::new(WriteBack, 10, Store::with_rows([(3, 30)]));
        c.put(1, 10);
        c.put(2, 20);
        let why = "key 3 is read from the store: a clean entry";
        assert_eq!(c.get(3), Some(30), "{why}");
        assert_eq!(c.flush(), 2, "keys 1 and 2 are dirty; key 3 is clean");
        let why = "nothing changed since the last flush";
        assert_eq!((c.dirty_count(), c.flush()), (0, 0), "{why}");
        let why = "each dirty key written once, 3 never";
        assert_eq!(c.store().log(), [(1, 10), (2, 20)], "{why}");
        assert_eq!(c.get(1), Some(10), "flushed entries stay cached");
        let why = "... so get does not read the store again";
        assert_eq!(c.store().reads(), 1, "{why}");
    }

    #[test]
    fn an_entry_changed_after_a_flush_is_dirty_again() {
        let mut c = cache(WriteBack, 10);
        c.put(1, 10);
        c.flush();
        c.put(1, 11);
        let why = "a put after a flush dirties it again";
        assert_eq!((c.dirty_count(), c.flush()), (1, 1), "{why}");
        let why = "one write per flush that found it dirty";
        assert_eq!(c.store().log(), [(1, 10), (1, 11)], "{why}");
    }

    #[test]
    fn write_back_loses_unflushed_writes_in_a_crash_and_keeps_flushed_ones() {
        let mut c = cache(WriteBack, 10);
        c.put(1, 10);
        c.put(2, 20);
        c.flush();
        c.put(1, 11); // acknowledged, but only in memory
        c.put(3, 30); // same
        let store = c.crash();
        assert_eq!(
            (store.peek(1), store.peek(2), store.peek(3)),
            (Some(10), Some(20), None),
            "flushed values survive; the unflushed update of 1 and all of 3 die with the process"
        );
    }

    // --- write-around ---

    #[test]
    fn write_around_writes_the_store_and_leaves_the_cache_to_reads() {
        let mut c = cache(WriteAround, 10);
        c.put(1, 100);
        let why = "the store holds it once put returns";
        assert_eq!(c.store().peek(1), Some(100), "{why}");
        assert_eq!(c.len(), 0, "write-around does not cache what it writes");
        assert_eq!((c.get(1), c.get(1)), (Some(100), Some(100)));
        assert_eq!(c.store().reads(), 1, "the first read loads and caches it");
        assert_eq!(c.flush(), 0, "write-around never leaves anything dirty");
    }

    #[test]
    fn write_around_drops_the_cached_copy_it_would_make_stale() {
        let mut c = WriteCache::new(WriteAround, 2, Store::with_rows([(1, 10), (2, 20)]));
        c.get(1);
        c.get(2);
        c.put(1, 11);
        let why = "key 1 was cached as 10 when put wrote 11 to the store: the cached copy must go";
        assert_eq!(c.get(1), Some(11), "{why}");
        c.put(2, 21);
        c.put(3, 30);
        let why = "reads see every put";
        assert_eq!((c.get(2), c.get(3)), (Some(21), Some(30)), "{why}");
        let why = "(store reads, writes)";
        assert_eq!((c.store().reads(), c.store().writes()), (5, 3), "{why}");
    }

    // --- get, capacity and eviction ---

    #[test]
    fn get_falls_back_to_the_store_and_then_serves_from_the_cache() {
        let mut c = WriteCache::new(WriteBack, 2, Store::with_rows([(1, 10), (2, 20), (3, 30)]));
        let why = "a miss is answered by the store";
        assert_eq!((c.get(1), c.get(1)), (Some(10), Some(10)), "{why}");
        let why = "the first get caches it; the second is a hit";
        assert_eq!(c.store().reads(), 1, "{why}");
        let why = "a key in neither the cache nor the store is absent";
        assert_eq!(c.get(4), None, "{why}");
        c.get(2);
        c.get(3); // evicts key 1, clean: the store already has it
        let why = "reads never write the store, nor do clean victims";
        assert_eq!(c.store().writes(), 0, "{why}");
    }

    #[test]
    fn overwriting_a_cached_key_does_not_evict_anything() {
        let mut c = cache(WriteBack, 2);
        c.put(1, 10);
        c.put(2, 20);
        c.put(1, 11); // key 1 is already cached: no new room is needed
        let why = "both keys still cached and dirty";
        assert_eq!((c.len(), c.dirty_count()), (2, 2), "{why}");
        let why = "nothing was evicted, so nothing written back";
        assert_eq!(c.store().writes(), 0, "{why}");
    }

    #[test]
    fn evicting_a_dirty_entry_writes_it_back_first() {
        let mut c = cache(WriteBack, 2);
        c.put(1, 10);
        c.put(2, 20);
        c.put(3, 30); // full: key 1 entered first, so it is the victim
        assert_eq!(
            c.store().log(),
            [(1, 10)],
            "key 1 was dirty when evicted: it must be written back, or it is lost; keys 2 and \
             3 stay dirty in the cache (never more than capacity 2)"
        );
        let why = "an evicted key is read from the store";
        assert_eq!((c.len(), c.get(1)), (2, Some(10)), "{why}");
    }

    #[test]
    fn flush_writes_dirty_entries_oldest_first() {
        let mut c = WriteCache::new(WriteBack, 20, Store::with_rows([(50, 0)]));
        for key in [7, 3, 9, 1] {
            c.put(key, key * 10);
        }
        c.get(50); // clean: entered the cache between 1 and 8, never written
        for key in [8, 2, 6, 4, 5] {
            c.put(key, key * 10);
        }
        c.put(3, 31); // an update does not make key 3 newer in the FIFO order
        assert_eq!(c.flush(), 9, "nine dirty keys");
        let order: Vec<Key> = c.store().log().iter().map(|w| w.0).collect();
        assert_eq!(
            order,
            [7, 3, 9, 1, 8, 2, 6, 4, 5],
            "flush writes dirty entries oldest first, in the order their keys entered the cache"
        );
        assert_eq!(c.store().peek(3), Some(31), "each with its latest value");
    }

    /// A deliberately simple model: (key, value, dirty) from oldest to newest, and the store.
    struct Model {
        cache: Vec<(Key, Value, bool)>,
        store: HashMap<Key, Value>,
        log: Vec<(Key, Value)>,
        reads: u64,
    }

    impl Model {
        fn write(&mut self, key: Key, value: Value) {
            self.store.insert(key, value);
            self.log.push((key, value));
        }

        fn insert(&mut self, capacity: usize, key: Key, value: Value, dirty: bool) {
            if self.cache.len() == capacity {
                let (k, v, d) = self.cache.remove(0);
                if d {
                    self.write(k, v);
                }
            }
            self.cache.push((key, value, dirty));
        }
    }

    /// Random puts, gets, flushes and crashes (restarting on what the store kept), for the
    /// three policies and small capacities: every answer, and every store write in order, must
    /// match the model.
    #[test]
    fn random_operations_match_a_simple_model_write_for_write() {
        use rand::RngExt;
        sdlings_kit::property::for_seeds(300, |rng| {
            let policy = [WriteThrough, WriteBack, WriteAround][rng.random_range(0..3)];
            let capacity = rng.random_range(1..=4);
            let rows = [(0, 1), (2, 1), (4, 1)];
            let mut c = WriteCache::new(policy, capacity, Store::with_rows(rows));
            let store = rows.into_iter().collect();
            let mut m = Model {
                cache: vec![],
                store,
                log: vec![],
                reads: 0,
            };
            let mut log = vec![format!("{policy:?}, capacity {capacity}")];
            for step in 0..60 {
                let key = rng.random_range(0..6);
                match rng.random_range(0..20) {
                    0..=8 => {
                        log.push(format!("put({key}, {step})"));
                        c.put(key, step);
                        if policy != WriteBack {
                            m.write(key, step);
                        }
                        let dirty = policy == WriteBack;
                        let cached = m.cache.iter_mut().find(|e| e.0 == key);
                        match (policy, cached) {
                            (WriteAround, _) => m.cache.retain(|e| e.0 != key),
                            (_, Some(e)) => (e.1, e.2) = (step, dirty),
                            (_, None) => m.insert(capacity, key, step, dirty),
                        }
                    }
                    9..=16 => {
                        log.push(format!("get({key})"));
                        let hit = m.cache.iter().find(|e| e.0 == key).map(|e| e.1);
                        let expected = hit.or_else(|| {
                            m.reads += 1;
                            let value = *m.store.get(&key)?;
                            m.insert(capacity, key, value, false);
                            Some(value)
                        });
                        assert_eq!(c.get(key), expected, "after {log:?}: get");
                    }
                    17 | 18 => {
                        log.push("flush()".to_string());
                        let dirty: Vec<_> =
                            m.cache.iter().filter(|e| e.2).map(|e| (e.0, e.1)).collect();
                        dirty.iter().for_each(|&(k, v)| m.write(k, v));
                        m.cache.iter_mut().for_each(|e| e.2 = false);
                        assert_eq!(c.flush(), dirty.len(), "after {log:?}: entries flushed");
                    }
                    _ => {
                        log.push("crash and restart".to_string());
                        c = WriteCache::new(policy, capacity, c.crash());
                        m.cache.clear();
                    }
                }
                let dirty = m.cache.iter().filter(|e| e.2).count();
                assert_eq!(
                    c.store().log(),
                    m.log,
                    "after {log:?}: store writes, in order"
                );
                assert_eq!(
                    (c.len(), c.dirty_count(), c.store().reads()),
                    (m.cache.len(), dirty, m.reads),
                    "after {log:?}: (entries cached, dirty entries, store reads)"
                );
            }
        });
    }
}
