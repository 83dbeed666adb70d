// Write policies: write-through vs write-back
//
// A cache in front of a database has to decide *when* a write reaches the database.
// Write-through writes the database on every `put`, before returning: every write costs a round
// trip, but nothing the client was told is saved can be lost. Write-back only updates the cache
// and marks the entry *dirty*; dirty entries reach the database later, in a `flush` or when they
// are evicted. Fifty updates to a hot key then cost one database write instead of fifty — that is
// how view counters, game leaderboards and the OS page cache stay fast — but whatever is still
// dirty when the process crashes is gone.
//
// Build `WriteCache`: `put`, `get` (cache first, then the store), `flush` (each dirty entry
// written once, then clean) and `evict_oldest` (a full cache evicts first-in-first-out, and a
// dirty victim must be written back first, or its data silently disappears).
//
// Lab: raise FLUSH_EVERY (operations between flushes) → fewer store writes but more lost on a
// crash: the durability/throughput trade-off. Raise SKEW → hotter keys, more writes coalesced.

use std::collections::{HashMap, VecDeque};

use sdlings_kit::lab::{Table, bar_chart, percent};
use sdlings_kit::workload::ZipfKeys;

pub type Key = u64;
pub type Value = u64;

/// The backing store: the "database". In real life it is slow and durable; here it is a map that
/// counts what the cache costs it. Whatever it holds survives a crash.
#[derive(Debug, Default)]
pub struct Store {
    rows: HashMap<Key, Value>,
    writes: u64,
    writes_per_key: HashMap<Key, u64>,
    reads: u64,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that already holds `rows` (they were there before the cache existed, so they are
    /// not counted as writes).
    pub fn with_rows(rows: impl IntoIterator<Item = (Key, Value)>) -> Self {
        Store {
            rows: rows.into_iter().collect(),
            ..Self::default()
        }
    }

    /// One durable write: a round trip to the database.
    pub fn write(&mut self, key: Key, value: Value) {
        self.writes += 1;
        *self.writes_per_key.entry(key).or_default() += 1;
        self.rows.insert(key, value);
    }

    /// One read: a round trip to the database.
    pub fn read(&mut self, key: Key) -> Option<Value> {
        self.reads += 1;
        self.rows.get(&key).copied()
    }

    /// What the store durably holds for `key`, without counting a read (for inspection only).
    pub fn peek(&self, key: Key) -> Option<Value> {
        self.rows.get(&key).copied()
    }

    /// Writes so far, all keys.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Writes so far to `key`.
    pub fn writes_of(&self, key: Key) -> u64 {
        self.writes_per_key.get(&key).copied().unwrap_or(0)
    }

    /// Reads so far.
    pub fn reads(&self) -> u64 {
        self.reads
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePolicy {
    /// `put` writes the store before returning; cached entries are never dirty.
    WriteThrough,
    /// `put` only updates the cache and marks the entry dirty; the store is written on `flush`
    /// or when a dirty entry is evicted.
    WriteBack,
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

// ---------------------------------------------------------------------------------------------
// Your part.
// ---------------------------------------------------------------------------------------------

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

    /// Writes every dirty entry to the store, once each, and marks it clean. Returns how many
    /// entries were written.
    pub fn flush(&mut self) -> usize {
        let mut written = 0;
        // In insertion order, so the store sees the same sequence of writes on every run.
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

// ---------------------------------------------------------------------------------------------
// Lab: many writes with hot keys, then a crash. What did each policy cost, and what did it lose?
// ---------------------------------------------------------------------------------------------

/// Operations (puts) between two flushes of the write-back cache.
const FLUSH_EVERY: u64 = 500;
/// Zipf skew of the keys written: 0 = uniform, 1 = typical web traffic, 2 = a few very hot keys.
const SKEW: f64 = 1.0;
/// Puts before the process crashes (deliberately not a multiple of FLUSH_EVERY).
const PUTS_BEFORE_CRASH: u64 = 9_973;
const KEYS: usize = 1_000;
const CACHE_CAPACITY: usize = 200;
const SEED: u64 = 7;

struct Outcome {
    puts: u64,
    store_writes: u64,
    dirty_at_crash: usize,
    /// Keys whose last acknowledged value is not what the store holds after the crash.
    keys_lost: u64,
}

fn run(policy: WritePolicy, flush_every: Option<u64>) -> Outcome {
    let mut keys = ZipfKeys::new(KEYS, SKEW, SEED);
    let mut cache = WriteCache::new(policy, CACHE_CAPACITY, Store::new());
    // What each client was told: "saved".
    let mut acknowledged: HashMap<Key, Value> = HashMap::new();
    for op in 1..=PUTS_BEFORE_CRASH {
        let key = keys.next_key();
        cache.put(key, op); // the value is the operation number, so every put is distinct
        acknowledged.insert(key, op);
        if let Some(every) = flush_every
            && op % every == 0
        {
            cache.flush();
        }
    }
    let store_writes = cache.store().writes();
    let dirty_at_crash = cache.dirty_count();
    let store = cache.crash();

    // Restart with a cold cache over what survived, and read back every acknowledged key.
    let mut restarted = WriteCache::new(policy, CACHE_CAPACITY, store);
    let keys_lost = acknowledged
        .iter()
        .filter(|&(&key, &value)| restarted.get(key) != Some(value))
        .count() as u64;
    Outcome {
        puts: PUTS_BEFORE_CRASH,
        store_writes,
        dirty_at_crash,
        keys_lost,
    }
}

fn main() {
    println!(
        "{PUTS_BEFORE_CRASH} puts over {KEYS} keys (Zipf skew {SKEW:.1}), cache of {CACHE_CAPACITY} \
         entries, then a crash.\n"
    );
    let through = run(WritePolicy::WriteThrough, None);
    let back = run(WritePolicy::WriteBack, Some(FLUSH_EVERY));
    let mut table = Table::new(&[
        "policy",
        "puts",
        "store writes",
        "writes coalesced",
        "dirty at crash",
        "keys lost in crash",
    ]);
    for (name, o) in [
        ("write-through".to_string(), &through),
        (format!("write-back, flush every {FLUSH_EVERY}"), &back),
    ] {
        let coalesced = o.puts - o.store_writes;
        table.row(&[
            name,
            o.puts.to_string(),
            o.store_writes.to_string(),
            format!("{coalesced} ({})", percent(coalesced, o.puts)),
            o.dirty_at_crash.to_string(),
            o.keys_lost.to_string(),
        ]);
    }
    table.print();

    println!("\nThe trade-off, write-back with other flush intervals:\n");
    let mut sweep = Table::new(&["flush every", "store writes", "keys lost in crash"]);
    let mut chart = Vec::new();
    for every in [1, 10, 100, 1_000, 10_000] {
        let o = run(WritePolicy::WriteBack, Some(every));
        sweep.row(&[
            every.to_string(),
            o.store_writes.to_string(),
            o.keys_lost.to_string(),
        ]);
        chart.push((format!("lost, flush every {every}"), o.keys_lost as f64));
    }
    sweep.print();
    println!("\n{}", bar_chart(&chart, 40));
    println!(
        "\nWrite-back never loses more than CACHE_CAPACITY ({CACHE_CAPACITY}) keys: a dirty entry \
         is written back when it is evicted, so only what is still cached can be lost."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(policy: WritePolicy, capacity: usize) -> WriteCache {
        WriteCache::new(policy, capacity, Store::new())
    }

    // --- write-through ---

    #[test]
    fn write_through_put_writes_the_store_before_returning() {
        let mut c = cache(WritePolicy::WriteThrough, 10);
        c.put(1, 100);
        assert_eq!(
            c.store().peek(1),
            Some(100),
            "write-through: the store must hold the value as soon as put returns"
        );
        assert_eq!(c.store().writes(), 1, "one put, one store write");
        assert_eq!(
            c.get(1),
            Some(100),
            "a value just put must be readable back"
        );
        assert_eq!(
            c.store().reads(),
            0,
            "put must also update the cache, so get is served without reading the store"
        );
        assert_eq!(
            c.dirty_count(),
            0,
            "write-through entries are never dirty: the store is never behind"
        );
    }

    #[test]
    fn write_through_writes_the_store_on_every_put() {
        let mut c = cache(WritePolicy::WriteThrough, 10);
        for v in 1..=5 {
            c.put(7, v);
        }
        assert_eq!(
            c.store().writes(),
            5,
            "write-through does not coalesce: five puts are five store writes"
        );
        assert_eq!(c.store().peek(7), Some(5), "the store holds the last value");
    }

    #[test]
    fn write_through_is_durable_across_a_crash() {
        let mut c = cache(WritePolicy::WriteThrough, 10);
        c.put(1, 10);
        c.put(2, 20);
        c.put(1, 11);
        let store = c.crash();
        assert_eq!(
            (store.peek(1), store.peek(2)),
            (Some(11), Some(20)),
            "every acknowledged write-through put must survive a crash, with its latest value"
        );
    }

    #[test]
    fn write_through_flush_has_nothing_to_write() {
        let mut c = cache(WritePolicy::WriteThrough, 10);
        c.put(1, 10);
        c.put(2, 20);
        assert_eq!(
            c.flush(),
            0,
            "under write-through nothing is dirty, so flush must write nothing"
        );
        assert_eq!(
            c.store().writes(),
            2,
            "flush must not rewrite clean entries: only the two puts wrote the store"
        );
    }

    // --- write-back ---

    #[test]
    fn write_back_put_does_not_touch_the_store_until_flush() {
        let mut c = WriteCache::new(WritePolicy::WriteBack, 10, Store::with_rows([(1, 5)]));
        c.put(1, 100);
        assert_eq!(
            c.store().writes(),
            0,
            "write-back: put only updates the cache and marks the entry dirty"
        );
        assert_eq!(
            c.store().peek(1),
            Some(5),
            "the store is behind until a flush"
        );
        assert_eq!(c.dirty_count(), 1, "the entry must be marked dirty");
        assert_eq!(
            c.get(1),
            Some(100),
            "get must serve the cached (newer) value, not the store's stale one"
        );
        assert_eq!(c.flush(), 1, "flush writes the one dirty entry");
        assert_eq!(
            c.store().peek(1),
            Some(100),
            "after flush the store is current"
        );
    }

    #[test]
    fn write_back_coalesces_many_puts_to_one_key_into_one_store_write() {
        let mut c = cache(WritePolicy::WriteBack, 10);
        for v in 1..=50 {
            c.put(42, v);
        }
        assert_eq!(
            c.store().writes(),
            0,
            "no store write may happen before flush under write-back"
        );
        c.flush();
        assert_eq!(
            c.store().writes_of(42),
            1,
            "50 puts to one key before a flush must cost exactly 1 store write"
        );
        assert_eq!(
            c.store().peek(42),
            Some(50),
            "the one write carries the latest value"
        );
    }

    #[test]
    fn flush_writes_each_dirty_entry_once_and_skips_clean_ones() {
        let store = Store::with_rows([(3, 30)]);
        let mut c = WriteCache::new(WritePolicy::WriteBack, 10, store);
        c.put(1, 10);
        c.put(2, 20);
        c.put(1, 11);
        assert_eq!(
            c.get(3),
            Some(30),
            "key 3 is in the store, so get reads it from there"
        );
        assert_eq!(
            c.flush(),
            2,
            "two keys are dirty (1 and 2); key 3 was only read, so it is clean"
        );
        assert_eq!(
            c.store().writes_of(1),
            1,
            "key 1 is written once, not once per put"
        );
        assert_eq!(c.store().writes_of(2), 1, "key 2 is written once");
        assert_eq!(
            c.store().writes_of(3),
            0,
            "key 3 was read from the store and never changed: writing it back is wasted work"
        );
        assert_eq!(
            c.store().peek(1),
            Some(11),
            "key 1 flushed with its latest value"
        );
    }

    #[test]
    fn a_second_flush_writes_nothing_because_flush_clears_dirty_marks() {
        let mut c = cache(WritePolicy::WriteBack, 10);
        c.put(1, 10);
        c.put(2, 20);
        c.flush();
        assert_eq!(c.dirty_count(), 0, "after flush every entry is clean");
        assert_eq!(
            c.flush(),
            0,
            "nothing changed since the last flush, so there is nothing to write"
        );
        assert_eq!(
            c.store().writes(),
            2,
            "two dirty keys, two writes in total: flush must clear the dirty marks"
        );
        assert_eq!(c.get(1), Some(10), "flushed entries stay cached");
        assert_eq!(c.store().reads(), 0, "... so get does not need the store");
    }

    #[test]
    fn an_entry_changed_after_a_flush_is_dirty_again() {
        let mut c = cache(WritePolicy::WriteBack, 10);
        c.put(1, 10);
        c.flush();
        c.put(1, 11);
        assert_eq!(
            c.dirty_count(),
            1,
            "a put after a flush makes the entry dirty again"
        );
        assert_eq!(c.flush(), 1, "so the next flush writes it");
        assert_eq!(c.store().peek(1), Some(11));
        assert_eq!(
            c.store().writes_of(1),
            2,
            "one write per flush that found it dirty"
        );
    }

    #[test]
    fn write_back_loses_unflushed_writes_in_a_crash_and_keeps_flushed_ones() {
        let mut c = cache(WritePolicy::WriteBack, 10);
        c.put(1, 10);
        c.put(2, 20);
        c.flush();
        c.put(1, 11); // acknowledged, but only in memory
        c.put(3, 30); // same
        let store = c.crash();
        assert_eq!(
            store.peek(1),
            Some(10),
            "key 1's flushed value survives; its unflushed update (11) dies with the process"
        );
        assert_eq!(store.peek(2), Some(20), "key 2 was flushed, so it survives");
        assert_eq!(
            store.peek(3),
            None,
            "key 3 was never flushed: write-back cannot make it durable"
        );
    }

    // --- get ---

    #[test]
    fn get_falls_back_to_the_store_and_then_serves_from_the_cache() {
        let store = Store::with_rows([(1, 10)]);
        let mut c = WriteCache::new(WritePolicy::WriteBack, 10, store);
        assert_eq!(c.get(1), Some(10), "a miss is answered from the store");
        assert_eq!(c.get(1), Some(10));
        assert_eq!(
            c.store().reads(),
            1,
            "the first get caches the value, so the second is served without reading the store"
        );
        assert_eq!(
            c.get(2),
            None,
            "a key in neither the cache nor the store is absent"
        );
        assert_eq!(c.store().writes(), 0, "reads never write the store");
    }

    // --- capacity and eviction ---

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let store = Store::with_rows((100..110).map(|k| (k, k)));
        let mut c = WriteCache::new(WritePolicy::WriteBack, 3, store);
        for k in 0..10 {
            c.put(k, k);
        }
        for k in 100..110 {
            c.get(k);
        }
        assert_eq!(
            c.len(),
            3,
            "puts and get-fills of new keys must evict to stay within capacity 3"
        );
    }

    #[test]
    fn overwriting_a_cached_key_does_not_evict_anything() {
        let mut c = cache(WritePolicy::WriteBack, 2);
        c.put(1, 10);
        c.put(2, 20);
        c.put(1, 11); // key 1 is already cached: no new room is needed
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.store().writes(),
            0,
            "nothing was evicted, so nothing had to be written back"
        );
        assert_eq!(c.dirty_count(), 2, "both keys are still cached and dirty");
    }

    #[test]
    fn evicting_a_dirty_entry_writes_it_back_first() {
        let mut c = cache(WritePolicy::WriteBack, 2);
        c.put(1, 10);
        c.put(2, 20);
        c.put(3, 30); // full: key 1 entered first, so it is the victim
        assert_eq!(
            c.store().peek(1),
            Some(10),
            "key 1 was dirty when evicted: its value must be written back, or it is lost"
        );
        assert_eq!(
            c.store().writes(),
            1,
            "only the victim is written; keys 2 and 3 stay dirty in the cache"
        );
        assert_eq!(c.dirty_count(), 2);
        assert_eq!(
            c.get(1),
            Some(10),
            "an evicted key is still readable (from the store)"
        );
        let store = c.crash();
        assert_eq!(
            store.peek(1),
            Some(10),
            "a write-back caused by eviction is durable"
        );
    }

    #[test]
    fn evicting_a_clean_entry_costs_no_store_write() {
        let store = Store::with_rows([(1, 10), (2, 20), (3, 30)]);
        let mut c = WriteCache::new(WritePolicy::WriteBack, 2, store);
        c.get(1);
        c.get(2);
        c.get(3); // evicts key 1, which the store already has
        assert_eq!(
            c.store().writes(),
            0,
            "a clean victim already matches the store: writing it back is wasted work"
        );

        let mut c = cache(WritePolicy::WriteThrough, 2);
        c.put(1, 10);
        c.put(2, 20);
        c.put(3, 30);
        assert_eq!(
            c.store().writes(),
            3,
            "write-through: three puts, three writes; the evicted entry was clean"
        );
    }

    #[test]
    fn dirty_entries_survive_a_long_run_of_evictions() {
        let mut c = cache(WritePolicy::WriteBack, 4);
        for k in 0..20 {
            c.put(k, k * 10);
        }
        c.flush();
        let store = c.crash();
        for k in 0..20 {
            assert_eq!(
                store.peek(k),
                Some(k * 10),
                "key {k}: evicted or flushed, every write must reach the store"
            );
            assert_eq!(
                store.writes_of(k),
                1,
                "key {k} must be written exactly once"
            );
        }
    }
}
