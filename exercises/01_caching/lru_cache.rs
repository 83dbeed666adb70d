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
// The arena below is given: a Vec of nodes linked by index instead of by pointer, the idiomatic
// way to build a linked list in safe Rust. Your part is the list logic and the cache on top.
//
// Lab (runs once the tests pass): turn CAPACITIES, KEY_SPACE and SKEW. Under Zipf traffic the
// hit rate climbs steeply for small capacities, then flattens: the hot keys fit early and the
// long tail is rarely worth its memory. With SKEW = 0.0 (uniform keys) the hit rate is just
// capacity / key space. "nodes touched/request" stays flat at any size: that is what O(1) means.

use std::collections::HashMap;
use std::hash::Hash;

use arena::{Node, NodeId, Slab};
use sdlings_kit::lab::{Table, bar_chart, percent};
use sdlings_kit::workload::ZipfKeys;

/// Given: storage for the list nodes. Nodes refer to each other by `NodeId` (an index into the
/// slab), so the borrow checker never sees two `&mut` to one node. Freed slots are reused.
mod arena {
    use std::cell::Cell;

    pub type NodeId = usize;

    #[derive(Debug)]
    pub struct Node<K, V> {
        pub key: K,
        pub value: V,
        /// The neighbour towards the head (more recently used); `None` for the head.
        pub prev: Option<NodeId>,
        /// The neighbour towards the tail (less recently used); `None` for the tail.
        pub next: Option<NodeId>,
    }

    #[derive(Debug)]
    pub struct Slab<K, V> {
        slots: Vec<Option<Node<K, V>>>,
        free: Vec<NodeId>,
        live: usize,
        /// How many times a node was read, written, inserted or removed. The tests and the lab
        /// use it to show that every cache operation does a constant amount of work.
        touches: Cell<u64>,
    }

    impl<K, V> Slab<K, V> {
        pub fn with_capacity(capacity: usize) -> Self {
            Slab {
                slots: Vec::with_capacity(capacity),
                free: Vec::new(),
                live: 0,
                touches: Cell::new(0),
            }
        }

        /// Stores `node` in a free slot (reusing a freed one if there is any) and returns its id.
        pub fn insert(&mut self, node: Node<K, V>) -> NodeId {
            self.touch();
            self.live += 1;
            match self.free.pop() {
                Some(id) => {
                    self.slots[id] = Some(node);
                    id
                }
                None => {
                    self.slots.push(Some(node));
                    self.slots.len() - 1
                }
            }
        }

        /// Removes the node and frees its slot. The id must not be used again.
        pub fn remove(&mut self, id: NodeId) -> Node<K, V> {
            self.touch();
            let node = self.slots.get_mut(id).and_then(Option::take);
            let node = node.unwrap_or_else(|| stale(id));
            self.free.push(id);
            self.live -= 1;
            node
        }

        pub fn node(&self, id: NodeId) -> &Node<K, V> {
            self.touch();
            self.slots
                .get(id)
                .and_then(Option::as_ref)
                .unwrap_or_else(|| stale(id))
        }

        pub fn node_mut(&mut self, id: NodeId) -> &mut Node<K, V> {
            self.touch();
            self.slots
                .get_mut(id)
                .and_then(Option::as_mut)
                .unwrap_or_else(|| stale(id))
        }

        /// Nodes currently stored (not freed).
        pub fn len(&self) -> usize {
            self.live
        }

        pub fn touches(&self) -> u64 {
            self.touches.get()
        }

        fn touch(&self) {
            self.touches.set(self.touches.get() + 1);
        }
    }

    fn stale(id: NodeId) -> ! {
        panic!(
            "NodeId {id} refers to a freed slot: is a key still in the map, or a link still \
             pointing at a node that was evicted?"
        )
    }
}

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

    /// Looks at a value without counting as a use (monitoring, debugging, tests).
    pub fn peek(&self, key: &K) -> Option<&V> {
        let id = *self.map.get(key)?;
        Some(&self.slab.node(id).value)
    }

    /// The keys from most to least recently used, read by walking the list from `head` along
    /// `next` links. Panics if the links are inconsistent (a `prev` that does not point back, or
    /// a walk that does not end at `tail`).
    pub fn keys_by_recency(&self) -> Vec<K> {
        let mut keys = Vec::new();
        let mut prev: Option<NodeId> = None;
        let mut cursor = self.head;
        while let Some(id) = cursor {
            let node = self.slab.node(id);
            assert_eq!(
                node.prev, prev,
                "node {id}'s prev link should point at the node before it in the list"
            );
            assert!(
                keys.len() < self.slab.len(),
                "walking the list from head never ends: it has a cycle"
            );
            keys.push(node.key.clone());
            prev = Some(id);
            cursor = node.next;
        }
        assert_eq!(
            self.tail, prev,
            "tail should be the last node reached by walking from head"
        );
        keys
    }

    // ---- Your part -------------------------------------------------------------------------

    /// Takes node `id` out of the list: its neighbours are linked to each other, `head`/`tail`
    /// are fixed if `id` was at an end, and the node's own `prev`/`next` are set to `None`.
    /// The node stays in the slab.
    fn unlink(&mut self, id: NodeId) {
        todo!("detach node {id} from its neighbours")
    }

    /// Puts node `id` (which must not be in the list) at the head: the most recently used spot.
    fn push_front(&mut self, id: NodeId) {
        todo!("make node {id} the new head")
    }

    /// Removes the least recently used entry (the tail) from the list, the map and the slab,
    /// counts the eviction, and returns it. `None` if the cache is empty.
    fn evict_lru(&mut self) -> Option<(K, V)> {
        todo!("evict the tail")
    }

    /// Returns the value for `key` and marks it as the most recently used.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        todo!()
    }

    /// Inserts or updates `key`, making it the most recently used. Returns the previous value
    /// when the key was already present. Inserting into a full cache first evicts the least
    /// recently used entry. A capacity-0 cache stores nothing and returns `None`.
    pub fn put(&mut self, key: K, value: V) -> Option<V> {
        todo!()
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const CAPACITIES: [usize; 7] = [10, 100, 250, 500, 1_000, 2_500, 5_000];
const KEY_SPACE: usize = 10_000;
const SKEW: f64 = 1.0;
const REQUESTS: usize = 100_000;
const SEED: u64 = 42;

fn main() {
    println!(
        "LRU under Zipf traffic: {REQUESTS} requests over {KEY_SPACE} keys, skew {SKEW:.1} \
         (cache-aside: a miss loads the key and puts it)\n"
    );
    let mut table = Table::new(&[
        "capacity",
        "of keys",
        "hit rate",
        "evictions",
        "nodes touched/request",
    ]);
    let mut bars = Vec::new();
    for &capacity in &CAPACITIES {
        let mut cache = LruCache::new(capacity);
        // Same seed for every capacity: each cache sees exactly the same request stream.
        let mut keys = ZipfKeys::new(KEY_SPACE, SKEW, SEED);
        let mut hits = 0u64;
        for _ in 0..REQUESTS {
            let key = keys.next_key();
            if cache.get(&key).is_some() {
                hits += 1;
            } else {
                cache.put(key, key * 2);
            }
        }
        table.row(&[
            cache.capacity().to_string(),
            percent(capacity as u64, KEY_SPACE as u64),
            percent(hits, REQUESTS as u64),
            cache.evictions().to_string(),
            format!("{:.1}", cache.slab.touches() as f64 / REQUESTS as f64),
        ]);
        let rate = (hits as f64 * 1000.0 / REQUESTS as f64).round() / 10.0;
        bars.push((format!("cap {capacity}"), rate));
    }
    table.print();
    println!("\nhit rate (%) by capacity\n{}", bar_chart(&bars, 40));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(capacity: usize, keys: &[u32]) -> LruCache<u32, String> {
        let mut cache = LruCache::new(capacity);
        for &k in keys {
            cache.put(k, format!("v{k}"));
        }
        cache
    }

    #[test]
    fn get_returns_what_put_stored() {
        let mut cache = filled(3, &[1, 2]);
        assert_eq!(cache.get(&1), Some(&"v1".to_string()));
        assert_eq!(cache.get(&2), Some(&"v2".to_string()));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn get_of_a_missing_key_returns_none() {
        let mut cache = filled(3, &[1]);
        assert_eq!(cache.get(&7), None);
    }

    #[test]
    fn put_of_an_existing_key_replaces_the_value_and_returns_the_old_one() {
        let mut cache = filled(3, &[1, 2]);
        assert_eq!(cache.put(1, "new".to_string()), Some("v1".to_string()));
        assert_eq!(cache.get(&1), Some(&"new".to_string()));
        assert_eq!(cache.len(), 2, "an update must not add a second entry");
        assert_eq!(cache.evictions(), 0, "an update must not evict anything");
    }

    #[test]
    fn push_front_and_unlink_keep_head_tail_and_links_consistent() {
        let mut cache: LruCache<u32, ()> = LruCache::new(4);
        let ids: Vec<NodeId> = (1..=4)
            .map(|k| {
                cache.slab.insert(Node {
                    key: k,
                    value: (),
                    prev: None,
                    next: None,
                })
            })
            .collect();
        for &id in &ids {
            cache.push_front(id);
        }
        assert_eq!(
            cache.keys_by_recency(),
            vec![4, 3, 2, 1],
            "each push_front puts the node at the head"
        );
        cache.unlink(ids[2]); // key 3, in the middle
        assert_eq!(
            cache.keys_by_recency(),
            vec![4, 2, 1],
            "unlinking a middle node"
        );
        cache.unlink(ids[0]); // key 1, the tail
        assert_eq!(cache.keys_by_recency(), vec![4, 2], "unlinking the tail");
        cache.unlink(ids[3]); // key 4, the head
        assert_eq!(cache.keys_by_recency(), vec![2], "unlinking the head");
        cache.unlink(ids[1]); // key 2, the only node
        assert_eq!(
            cache.keys_by_recency(),
            Vec::<u32>::new(),
            "unlinking the last node"
        );
        assert_eq!(
            (cache.head, cache.tail),
            (None, None),
            "an empty list has no ends"
        );
        let node = cache.slab.node(ids[2]);
        assert_eq!(
            (node.prev, node.next),
            (None, None),
            "unlink clears the node's own links so it can be pushed again"
        );
        cache.push_front(ids[2]);
        assert_eq!(
            cache.keys_by_recency(),
            vec![3],
            "an unlinked node can be pushed back"
        );
    }

    #[test]
    fn holds_exactly_capacity_entries_before_evicting() {
        let mut cache = filled(3, &[1, 2, 3]);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.evictions(), 0, "3 entries fit in a capacity-3 cache");
        for k in 1..=3 {
            assert!(
                cache.get(&k).is_some(),
                "key {k} fits and must still be there"
            );
        }
        cache.put(4, "v4".to_string());
        assert_eq!(
            cache.len(),
            3,
            "the cache never holds more than its capacity"
        );
        assert_eq!(
            cache.evictions(),
            1,
            "the fourth key evicts exactly one entry"
        );
    }

    #[test]
    fn evicts_least_recently_used_not_least_recently_inserted() {
        let mut cache = filled(3, &[1, 2, 3]);
        cache.get(&1);
        cache.put(4, "v4".to_string());
        assert!(
            cache.peek(&1).is_some(),
            "key 1 was read after keys 2 and 3 were written, so it is not the least recently used"
        );
        assert!(
            cache.peek(&2).is_none(),
            "key 2 was the least recently used (1 was read since), so it should have been evicted"
        );
        assert_eq!(cache.keys_by_recency(), vec![4, 1, 3]);
    }

    #[test]
    fn updating_a_key_refreshes_its_recency() {
        let mut cache = filled(3, &[1, 2, 3]);
        cache.put(1, "v1 again".to_string());
        cache.put(4, "v4".to_string());
        assert_eq!(
            cache.peek(&1),
            Some(&"v1 again".to_string()),
            "key 1 was just written, so it is the most recently used and must survive"
        );
        assert!(
            cache.peek(&2).is_none(),
            "key 2 is the least recently used after key 1's update, so it is the one evicted"
        );
    }

    #[test]
    fn peek_does_not_refresh_recency() {
        let mut cache = filled(2, &[1, 2]);
        cache.peek(&1);
        cache.put(3, "v3".to_string());
        assert!(
            cache.peek(&1).is_none(),
            "peek is not a use; key 1 stays the LRU"
        );
    }

    #[test]
    fn a_miss_changes_nothing() {
        let mut cache = filled(3, &[1, 2, 3]);
        assert_eq!(cache.get(&9), None);
        assert_eq!(cache.keys_by_recency(), vec![3, 2, 1]);
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn keeps_the_list_in_recency_order() {
        let mut cache = filled(4, &[1, 2, 3, 4]);
        assert_eq!(cache.keys_by_recency(), vec![4, 3, 2, 1]);
        cache.get(&2);
        assert_eq!(
            cache.keys_by_recency(),
            vec![2, 4, 3, 1],
            "a get moves the key to the front"
        );
        cache.get(&1);
        assert_eq!(
            cache.keys_by_recency(),
            vec![1, 2, 4, 3],
            "the tail can move to the front"
        );
        cache.get(&1);
        assert_eq!(
            cache.keys_by_recency(),
            vec![1, 2, 4, 3],
            "the head stays at the front"
        );
        cache.put(4, "v4b".to_string());
        assert_eq!(
            cache.keys_by_recency(),
            vec![4, 1, 2, 3],
            "an update moves to the front"
        );
        cache.put(5, "v5".to_string());
        assert_eq!(
            cache.keys_by_recency(),
            vec![5, 4, 1, 2],
            "key 3 was the tail: evicted"
        );
    }

    #[test]
    fn evicted_key_is_gone_even_after_its_slot_is_reused() {
        let mut cache = filled(2, &[1, 2]);
        cache.put(3, "v3".to_string()); // evicts 1; key 3's node reuses 1's slot
        assert_eq!(
            cache.get(&1),
            None,
            "key 1 was evicted: its map entry must go too, or it points at key 3's node"
        );
        assert_eq!(cache.get(&3), Some(&"v3".to_string()));
        assert_eq!(cache.get(&2), Some(&"v2".to_string()));
        assert_eq!(
            cache.slab.len(),
            2,
            "evicted nodes must be removed from the slab, or memory grows forever"
        );
    }

    #[test]
    fn evict_lru_returns_the_tail_entry_and_counts_it() {
        let mut cache = filled(3, &[1, 2, 3]);
        assert_eq!(
            cache.evict_lru(),
            Some((1, "v1".to_string())),
            "key 1 was written first and never used since: it is the tail"
        );
        assert_eq!(cache.len(), 2, "the evicted key leaves the map");
        assert_eq!(cache.evictions(), 1, "each eviction is counted");
        assert_eq!(
            cache.keys_by_recency(),
            vec![3, 2],
            "the evicted node leaves the list"
        );
        let mut empty: LruCache<u32, String> = LruCache::new(3);
        assert_eq!(
            empty.evict_lru(),
            None,
            "nothing to evict in an empty cache"
        );
    }

    #[test]
    fn capacity_one_keeps_only_the_latest_key() {
        let mut cache = filled(1, &[1, 2]);
        assert_eq!(
            cache.get(&1),
            None,
            "key 2 needed the only slot, so key 1 was evicted"
        );
        assert_eq!(cache.get(&2), Some(&"v2".to_string()));
        assert_eq!(
            (cache.len(), cache.evictions()),
            (1, 1),
            "(len, evictions) after two puts into a capacity-1 cache"
        );
    }

    #[test]
    fn capacity_zero_stores_nothing() {
        let mut cache: LruCache<u32, String> = LruCache::new(0);
        assert_eq!(cache.put(1, "v1".to_string()), None);
        assert_eq!(
            cache.get(&1),
            None,
            "a capacity-0 cache is caching switched off"
        );
        assert_eq!(cache.len(), 0);
        assert_eq!(
            cache.evictions(),
            0,
            "nothing was stored, so nothing was evicted"
        );
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

    /// A deliberately simple O(n) LRU: a Vec ordered from most to least recently used.
    struct Reference {
        capacity: usize,
        entries: Vec<(u64, u64)>,
        evictions: u64,
    }

    impl Reference {
        fn get(&mut self, key: u64) -> Option<u64> {
            let i = self.entries.iter().position(|e| e.0 == key)?;
            let e = self.entries.remove(i);
            self.entries.insert(0, e);
            Some(e.1)
        }

        fn put(&mut self, key: u64, value: u64) -> Option<u64> {
            if let Some(i) = self.entries.iter().position(|e| e.0 == key) {
                let old = self.entries.remove(i).1;
                self.entries.insert(0, (key, value));
                return Some(old);
            }
            if self.capacity == 0 {
                return None;
            }
            if self.entries.len() == self.capacity {
                self.entries.pop();
                self.evictions += 1;
            }
            self.entries.insert(0, (key, value));
            None
        }
    }

    #[test]
    fn long_random_workload_matches_a_simple_reference_lru() {
        for capacity in [1, 2, 5, 16] {
            let mut cache = LruCache::new(capacity);
            let mut reference = Reference {
                capacity,
                entries: Vec::new(),
                evictions: 0,
            };
            let mut keys = ZipfKeys::new(40, 0.8, capacity as u64);
            for step in 0..4_000u64 {
                let key = keys.next_key();
                if step % 3 == 0 {
                    assert_eq!(
                        cache.put(key, step),
                        reference.put(key, step),
                        "capacity {capacity}, step {step}: put({key}) returned the wrong old value"
                    );
                } else {
                    assert_eq!(
                        cache.get(&key).copied(),
                        reference.get(key),
                        "capacity {capacity}, step {step}: get({key}) disagrees with a plain LRU"
                    );
                }
            }
            let expected: Vec<u64> = reference.entries.iter().map(|e| e.0).collect();
            assert_eq!(cache.keys_by_recency(), expected, "capacity {capacity}");
            assert_eq!(
                cache.evictions(),
                reference.evictions,
                "capacity {capacity}"
            );
            assert_eq!(cache.len(), expected.len(), "capacity {capacity}");
            assert_eq!(cache.slab.len(), expected.len(), "no leaked slab nodes");
        }
    }
}
