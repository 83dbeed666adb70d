// LRU cache — O(1) get and put, evicting the least recently used entry.
//
// Build `LruCache<K, V>`: a bounded map that, when full, makes room by evicting the entry used
// longest ago. "Used" means read by `get` or written by `put`. Every operation must be O(1): a
// HashMap finds a key's node, and a doubly linked list keeps the nodes in recency order (most
// recent at the head, least recent at the tail), so refreshing a key and evicting the tail never
// scan anything. A capacity-0 cache stores nothing (a handy way to switch caching off).
//
// Why it matters: LRU is the idea every eviction policy starts from, and Redis approximates it
// under `maxmemory-policy allkeys-lru`. Plain LRU lets one big scan flush the hot set, so most
// buffer pools and modern in-process caches use scan-resistant variants built on it
// (PostgreSQL's clock-sweep, InnoDB's midpoint insertion, Caffeine's W-TinyLFU). A cache that
// scans its entries on every eviction is fine at 100 entries and melts at 10 million.
//
// The arena (`sdlings_kit::caching::arena`) is given: a Vec of nodes linked by index instead of
// by pointer, the idiomatic way to build a linked list in safe Rust. Your part is the list logic
// and the cache on top.
//
// Lab (runs once the tests pass): turn CAPACITIES, KEY_SPACE and SKEW. Under Zipf traffic the
// hit rate climbs steeply for small capacities, then flattens: the hot keys fit early and the
// long tail is rarely worth its memory. With SKEW = 0.0 (uniform keys) the hit rate is just
// capacity / key space. "nodes touched/request" stays flat at any size: that is what O(1) means.

use std::collections::HashMap;
use std::hash::Hash;

use sdlings_kit::caching::arena::{Node, NodeId, Slab};
use sdlings_kit::caching::lru;

pub struct LruCache<K, V> {
    capacity: usize,
    /// Where each key's node lives in the slab.
    map: HashMap<K, NodeId>,
    slab: Slab<K, V>,
    /// Most recently used node.
    head: Option<NodeId>,
    /// Least recently used node: the next one to evict.
    tail: Option<NodeId>,
    evictions: u64,
}

// ---- Your part -------------------------------------------------------------------------------

impl<K: Hash + Eq + Clone, V> LruCache<K, V> {
    /// Takes node `id` out of the list: its neighbours are linked to each other, `head`/`tail`
    /// are fixed if `id` was at an end, and the node's own `prev`/`next` are set to `None`.
    /// The node stays in the slab.
    fn unlink(&mut self, id: NodeId) {
        let (prev, next) = {
            let node = self.slab.node_mut(id);
            (node.prev.take(), node.next.take())
        };
        match prev {
            Some(p) => self.slab.node_mut(p).next = next,
            None => self.head = next,
        }
        match next {
            Some(n) => self.slab.node_mut(n).prev = prev,
            None => self.tail = prev,
        }
    }

    /// Puts node `id` (which must not be in the list) at the head: the most recently used spot.
    fn push_front(&mut self, id: NodeId) {
        let old_head = self.head;
        {
            let node = self.slab.node_mut(id);
            node.prev = None;
            node.next = old_head;
        }
        match old_head {
            Some(h) => self.slab.node_mut(h).prev = Some(id),
            // The list was empty: the new node is both ends.
            None => self.tail = Some(id),
        }
        self.head = Some(id);
    }

    /// Removes the least recently used entry (the tail) from the list, the map and the slab,
    /// counts the eviction, and returns it. `None` if the cache is empty.
    fn evict_lru(&mut self) -> Option<(K, V)> {
        let id = self.tail?;
        self.unlink(id);
        let node = self.slab.remove(id);
        // Forgetting this line leaves the map pointing at a freed slot that the next insert
        // reuses: the evicted key would then "hit" and return someone else's value.
        self.map.remove(&node.key);
        self.evictions += 1;
        Some((node.key, node.value))
    }

    /// Returns the value for `key` and marks it as the most recently used.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        let id = *self.map.get(key)?;
        if self.head != Some(id) {
            self.unlink(id);
            self.push_front(id);
        }
        Some(&self.slab.node(id).value)
    }

    /// Inserts or updates `key`, making it the most recently used. Returns the previous value
    /// when the key was already present. Inserting into a full cache first evicts the least
    /// recently used entry. A capacity-0 cache stores nothing and returns `None`.
    pub fn put(&mut self, key: K, value: V) -> Option<V> {
        if let Some(&id) = self.map.get(&key) {
            // An update is a use too: refresh recency, keep the node (no eviction needed).
            if self.head != Some(id) {
                self.unlink(id);
                self.push_front(id);
            }
            return Some(std::mem::replace(&mut self.slab.node_mut(id).value, value));
        }
        if self.capacity == 0 {
            return None;
        }
        if self.map.len() >= self.capacity {
            self.evict_lru();
        }
        let id = self.slab.insert(Node {
            key: key.clone(),
            value,
            prev: None,
            next: None,
        });
        self.push_front(id);
        self.map.insert(key, id);
        None
    }
}

// ---- Given -----------------------------------------------------------------------------------

impl<K: Hash + Eq + Clone, V> LruCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        LruCache {
            capacity,
            map: HashMap::with_capacity(capacity),
            slab: Slab::with_capacity(capacity),
            head: None,
            tail: None,
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many entries were evicted to make room so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The keys from most to least recently used, read by walking the list from `head` along
    /// `next` links. Panics if the links are inconsistent.
    pub fn keys_by_recency(&self) -> Vec<K> {
        self.slab.keys_from(self.head, self.tail)
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const CAPACITIES: [usize; 7] = [10, 100, 250, 500, 1_000, 2_500, 5_000];
const KEY_SPACE: usize = 10_000;
/// Zipf skew of the keys: 0.0 is uniform, 1.0 typical web traffic.
const SKEW: f64 = 1.0;
const REQUESTS: usize = 100_000;

fn main() {
    lru::run(&CAPACITIES, KEY_SPACE, SKEW, REQUESTS, LruCache::new);
}

/// The lab drives the cache through this trait (in the kit).
impl lru::LabCache for LruCache<u64, u64> {
    fn lookup(&mut self, key: u64) -> bool {
        self.get(&key).is_some()
    }

    fn insert(&mut self, key: u64, value: u64) {
        self.put(key, value);
    }

    fn evictions(&self) -> u64 {
        self.evictions
    }

    fn touches(&self) -> u64 {
        self.slab.touches()
    }
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::workload::ZipfKeys;

    use super::*;

    fn filled(capacity: usize, keys: &[u32]) -> LruCache<u32, String> {
        let mut cache = LruCache::new(capacity);
        for &k in keys {
            cache.put(k, format!("v{k}"));
        }
        cache
    }

    #[test]
    fn get_returns_what_put_stored_and_put_returns_the_value_it_replaced() {
        let mut cache = filled(3, &[1, 2]);
        assert_eq!(cache.get(&1), Some(&"v1".to_string()));
        assert_eq!(cache.get(&7), None);
        assert_eq!(cache.put(2, "new".to_string()), Some("v2".to_string()));
        assert_eq!(cache.get(&2), Some(&"new".to_string()));
        let update = "an update adds no entry and evicts nothing";
        assert_eq!((cache.len(), cache.evictions()), (2, 0), "{update}");
    }

    #[test]
    fn push_front_and_unlink_keep_head_tail_and_links_consistent() {
        let mut cache: LruCache<u32, ()> = LruCache::new(4);
        let node = |key| Node {
            key,
            value: (),
            prev: None,
            next: None,
        };
        let ids: Vec<NodeId> = (1..=4).map(|key| cache.slab.insert(node(key))).collect();
        for &id in &ids {
            cache.push_front(id);
        }
        // keys_by_recency also checks every prev link, and that the walk ends at `tail`.
        let order = |cache: &LruCache<u32, ()>, keys: &[u32], what: &str| {
            assert_eq!(cache.keys_by_recency(), keys, "{what}");
        };
        order(&cache, &[4, 3, 2, 1], "push_front puts at the head");
        cache.unlink(ids[2]);
        order(&cache, &[4, 2, 1], "unlinking a middle node");
        cache.unlink(ids[0]);
        order(&cache, &[4, 2], "unlinking the tail");
        cache.unlink(ids[3]);
        order(&cache, &[2], "unlinking the head");
        cache.unlink(ids[1]);
        let ends = (cache.head, cache.tail);
        assert_eq!(ends, (None, None), "unlinking the last node leaves no ends");
        let cleared = cache.slab.node(ids[2]);
        let links = "unlink clears the node's own links so it can be pushed again";
        assert_eq!((cleared.prev, cleared.next), (None, None), "{links}");
        cache.push_front(ids[2]);
        order(&cache, &[3], "an unlinked node can be pushed back");
    }

    #[test]
    fn evicts_least_recently_used_not_least_recently_inserted() {
        let mut cache = filled(3, &[1, 2, 3]);
        let sizes = (cache.len(), cache.evictions());
        assert_eq!(sizes, (3, 0), "3 entries fit in 3");
        cache.get(&1);
        cache.put(4, "v4".to_string());
        let lru = "key 1 was read after 2 and 3, so 2 was the least recently used and goes";
        assert_eq!(cache.keys_by_recency(), [4, 1, 3], "{lru}");
        let sizes = (cache.len(), cache.evictions());
        assert_eq!(sizes, (3, 1), "one in, exactly one out");
    }

    #[test]
    fn updating_a_key_refreshes_its_recency() {
        let mut cache = filled(3, &[1, 2, 3]);
        cache.put(1, "v1 again".to_string());
        cache.put(4, "v4".to_string());
        let fresh = "key 1 was just written, so it is the most recently used and survives; 2 goes";
        assert_eq!(cache.keys_by_recency(), [4, 1, 3], "{fresh}");
    }

    #[test]
    fn an_evicted_key_is_gone_from_map_and_slab_even_after_its_slot_is_reused() {
        let mut cache = filled(2, &[1, 2]);
        cache.put(3, "v3".to_string()); // evicts 1; key 3's node reuses 1's slot
        let gone = "key 1 was evicted: its map entry must go too, or it points at key 3's node";
        assert_eq!(cache.get(&1), None, "{gone}");
        assert_eq!(cache.get(&3), Some(&"v3".to_string()));
        let slab = "evicted nodes leave the slab, or memory grows";
        assert_eq!(cache.slab.len(), 2, "{slab}");
    }

    #[test]
    fn evict_lru_returns_the_tail_entry_and_counts_it() {
        let mut cache = filled(3, &[1, 2, 3]);
        let tail = "key 1 was written first and never used since: it is the tail";
        assert_eq!(cache.evict_lru(), Some((1, "v1".to_string())), "{tail}");
        assert_eq!((cache.len(), cache.evictions()), (2, 1), "(len, evictions)");
        let left = "the evicted node leaves the list";
        assert_eq!(cache.keys_by_recency(), [3, 2], "{left}");
        let empty = filled(3, &[]).evict_lru();
        assert_eq!(empty, None, "nothing to evict in an empty cache");
    }

    #[test]
    fn capacity_zero_stores_nothing_and_capacity_one_keeps_only_the_latest_key() {
        let mut off = filled(0, &[1]);
        assert_eq!(off.put(1, "v1".to_string()), None);
        let got = off.get(&1).cloned();
        let nothing = "a capacity-0 cache is caching switched off: nothing stored or evicted";
        assert_eq!((got, off.len(), off.evictions()), (None, 0, 0), "{nothing}");
        let mut one = filled(1, &[1, 2]);
        let only = "key 2 needed the only slot: key 1 was evicted";
        assert_eq!(one.get(&1), None, "{only}");
        let got = (one.get(&2).cloned(), one.len(), one.evictions());
        assert_eq!(got, (Some("v2".to_string()), 1, 1), "{only}");
    }

    #[test]
    fn every_operation_does_constant_work_however_big_the_cache() {
        const CAP: usize = 20_000;
        let mut cache: LruCache<u64, u64> = LruCache::new(CAP);
        for k in 0..CAP as u64 {
            cache.put(k, k);
        }
        let mut keys = ZipfKeys::new(3 * CAP, 0.5, 7);
        let ops = 10_000u64;
        let before = cache.slab.touches();
        for i in 0..ops {
            let k = keys.next_key();
            if i % 2 == 0 {
                cache.get(&k);
            } else {
                cache.put(k, i);
            }
        }
        let per_op = (cache.slab.touches() - before) as f64 / ops as f64;
        assert!(
            per_op <= 12.0,
            "each get/put touched {per_op:.1} nodes on average in a cache of {CAP} entries; \
             O(1) operations touch a handful (the node and its neighbours), never scan the list"
        );
    }

    /// A deliberately simple O(n) LRU: (key, value) pairs from most to least recently used.
    fn reference_get(entries: &mut Vec<(u64, u64)>, key: u64) -> Option<u64> {
        let e = entries.remove(entries.iter().position(|e| e.0 == key)?);
        entries.insert(0, e);
        Some(e.1)
    }

    /// Random operations on small caches (capacity 0 to 6, a few more keys than fit), checked
    /// against the reference after every single operation.
    #[test]
    fn random_operations_match_a_simple_reference_lru_after_every_step() {
        sdlings_kit::property::for_seeds(200, |rng| {
            let capacity = rng.random_range(0..=6usize);
            let key_space = rng.random_range(1..=capacity as u64 * 2 + 2);
            let mut cache = LruCache::new(capacity);
            let (mut entries, mut evictions) = (Vec::new(), 0);
            let mut log = vec![format!("capacity {capacity}")];
            for step in 0..60u64 {
                let key = rng.random_range(0..key_space);
                match rng.random_range(0..10) {
                    0..4 => {
                        log.push(format!("put({key})"));
                        let old = reference_get(&mut entries, key);
                        if old.is_some() {
                            entries[0].1 = step;
                        } else if capacity > 0 {
                            if entries.len() == capacity {
                                entries.pop();
                                evictions += 1;
                            }
                            entries.insert(0, (key, step));
                        }
                        assert_eq!(cache.put(key, step), old, "{log:?}");
                    }
                    4..9 => {
                        log.push(format!("get({key})"));
                        let expected = reference_get(&mut entries, key);
                        assert_eq!(cache.get(&key).copied(), expected, "{log:?}");
                    }
                    _ => {
                        log.push("evict_lru()".to_string());
                        let expected = entries.pop();
                        evictions += u64::from(expected.is_some());
                        assert_eq!(cache.evict_lru(), expected, "{log:?}");
                    }
                }
                let keys: Vec<u64> = entries.iter().map(|e| e.0).collect();
                let (n, sizes) = (keys.len(), (cache.len(), cache.slab.len()));
                let recency = (cache.keys_by_recency(), cache.evictions());
                assert_eq!(recency, (keys, evictions), "{log:?}: (recency, evictions)");
                assert_eq!(sizes, (n, n), "{log:?}: (len, nodes in the slab)");
            }
        });
    }
}
