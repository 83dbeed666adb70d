//! Machinery shared by the caching exercises: lab drivers, fakes and simulators the learner never
//! edits. One section per exercise; nothing here solves one.

use std::future::Future;
use std::time::Duration;

/// Awaits `fut` in a test, failing the test if it is still waiting after a minute. Under
/// tokio's paused time that minute passes at once when every task is blocked, so a hang (a
/// key stuck on a load nobody will finish, a write never released) fails fast with `what`.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{what} was still waiting after a minute: is something stuck waiting for a \
                 result that will never come (a load nobody finishes, a lost wake-up)?"
            )
        })
}

/// The `ttl_cache` lab: a database whose rows change over time, read through TTL caches.
pub mod ttl {
    use std::time::Duration;

    use rand::RngExt;

    use crate::clock::{Clock, ManualClock};
    use crate::lab::{Table, percent};
    use crate::workload::{ZipfKeys, seeded_rng};

    /// What the lab's cache stores: which version of the row was loaded, and when.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Loaded {
        pub version: u64,
        pub loaded_at: Duration,
    }

    /// What the lab needs from a TTL cache of `u64 → Loaded`.
    pub trait LabCache {
        fn lookup(&mut self, key: u64) -> Option<Loaded>;
        fn store(&mut self, key: u64, row: Loaded);
        fn purge(&mut self);
        fn entries_held(&self) -> usize;
    }

    pub struct Knobs {
        /// The TTLs to compare, in seconds.
        pub ttls: Vec<u64>,
        /// Each key's row changes once per this many seconds.
        pub update_every: u64,
        pub key_space: usize,
        pub skew: f64,
        pub requests: usize,
        /// Requests arrive every 0..2×mean_gap_ms milliseconds.
        pub mean_gap_ms: u64,
        /// How often the active sweep runs.
        pub purge_every: Duration,
        pub seed: u64,
    }

    /// Runs the same seeded read stream through a fresh cache per TTL (`make(clock, ttl)`) and
    /// prints hit rate, database loads, stale reads, the oldest value served and peak memory.
    pub fn run<C: LabCache>(k: &Knobs, make: impl Fn(ManualClock, Duration) -> C) {
        println!(
            "TTL cache in front of a database: {} reads over {} keys (skew {:.1}); each row \
             changes every {} s\n",
            k.requests, k.key_space, k.skew, k.update_every
        );
        // Each key changes on its own schedule: a seeded phase shift per key.
        let mut rng = seeded_rng(k.seed);
        let period = Duration::from_secs(k.update_every).as_nanos();
        let phases: Vec<u128> = (0..k.key_space)
            .map(|_| rng.random_range(0..period))
            .collect();
        let db_version = |key: u64, now: Duration| (now.as_nanos() + phases[key as usize]) / period;
        let mut table = Table::new(&[
            "TTL",
            "hit rate",
            "DB loads",
            "stale reads",
            "oldest value served",
            "peak entries held",
        ]);
        for &ttl in &k.ttls {
            let clock = ManualClock::new();
            let mut cache = make(clock.clone(), Duration::from_secs(ttl));
            let mut keys = ZipfKeys::new(k.key_space, k.skew, k.seed);
            let mut gaps = seeded_rng(k.seed + 1);
            let (mut hits, mut loads, mut stale) = (0u64, 0u64, 0u64);
            let (mut oldest, mut next_purge, mut peak_held) = (Duration::ZERO, k.purge_every, 0);
            for _ in 0..k.requests {
                clock.advance(Duration::from_millis(
                    gaps.random_range(0..2 * k.mean_gap_ms),
                ));
                let now = clock.now();
                if now >= next_purge {
                    cache.purge();
                    next_purge += k.purge_every;
                }
                let key = keys.next_key();
                let current = db_version(key, now) as u64;
                match cache.lookup(key) {
                    Some(served) => {
                        hits += 1;
                        oldest = oldest.max(now - served.loaded_at);
                        stale += u64::from(served.version != current);
                    }
                    None => {
                        loads += 1;
                        let row = Loaded {
                            version: current,
                            loaded_at: now,
                        };
                        cache.store(key, row);
                    }
                }
                peak_held = peak_held.max(cache.entries_held());
            }
            table.row(&[
                format!("{ttl} s"),
                percent(hits, k.requests as u64),
                loads.to_string(),
                percent(stale, k.requests as u64),
                format!("{:.1} s", oldest.as_secs_f64()),
                peak_held.to_string(),
            ]);
        }
        table.print();
        println!(
            "\nstale reads: served a version the database had already replaced (share of all \
             reads)"
        );
    }
}

/// The `lru_cache` arena: storage for the list nodes. Nodes refer to each other by `NodeId` (an index into the
/// slab), so the borrow checker never sees two `&mut` to one node. Freed slots are reused.
pub mod arena {
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

        pub fn is_empty(&self) -> bool {
            self.live == 0
        }

        pub fn touches(&self) -> u64 {
            self.touches.get()
        }

        fn touch(&self) {
            self.touches.set(self.touches.get() + 1);
        }

        /// The keys met walking from `head` along `next` links. Panics if the links are
        /// inconsistent: a `prev` that does not point back, a cycle, or a walk that does not end
        /// at `tail`.
        pub fn keys_from(&self, head: Option<NodeId>, tail: Option<NodeId>) -> Vec<K>
        where
            K: Clone,
        {
            let mut keys = Vec::new();
            let mut prev: Option<NodeId> = None;
            let mut cursor = head;
            while let Some(id) = cursor {
                let node = self.node(id);
                assert_eq!(
                    node.prev, prev,
                    "node {id}'s prev link should point at the node before it in the list"
                );
                assert!(
                    keys.len() < self.len(),
                    "walking the list from head never ends: it has a cycle"
                );
                keys.push(node.key.clone());
                prev = Some(id);
                cursor = node.next;
            }
            assert_eq!(
                tail, prev,
                "tail should be the last node reached by walking from head"
            );
            keys
        }
    }

    fn stale(id: NodeId) -> ! {
        panic!(
            "NodeId {id} refers to a freed slot: is a key still in the map, or a link still \
             pointing at a node that was evicted?"
        )
    }
}

/// The `lru_cache` lab: Zipf traffic through LRU caches of several capacities.
pub mod lru {
    use crate::lab::{Table, bar_chart, percent};
    use crate::workload::ZipfKeys;

    /// What the lab needs from an LRU cache of `u64 → u64`.
    pub trait LabCache {
        fn lookup(&mut self, key: u64) -> bool;
        fn insert(&mut self, key: u64, value: u64);
        fn evictions(&self) -> u64;
        /// Arena nodes touched so far.
        fn touches(&self) -> u64;
    }

    /// Replays one seeded Zipf stream (a miss loads the key and puts it) through a fresh cache
    /// per capacity and prints hit rate, evictions and nodes touched per request.
    pub fn run<C: LabCache>(
        capacities: &[usize],
        key_space: usize,
        skew: f64,
        requests: usize,
        make: impl Fn(usize) -> C,
    ) {
        println!(
            "LRU under Zipf traffic: {requests} requests over {key_space} keys, skew {skew:.1} \
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
        for &capacity in capacities {
            let mut cache = make(capacity);
            // Same seed for every capacity: each cache sees exactly the same request stream.
            let mut keys = ZipfKeys::new(key_space, skew, 42);
            let mut hits = 0u64;
            for _ in 0..requests {
                let key = keys.next_key();
                if cache.lookup(key) {
                    hits += 1;
                } else {
                    cache.insert(key, key * 2);
                }
            }
            table.row(&[
                capacity.to_string(),
                percent(capacity as u64, key_space as u64),
                percent(hits, requests as u64),
                cache.evictions().to_string(),
                format!("{:.1}", cache.touches() as f64 / requests as f64),
            ]);
            let rate = (hits as f64 * 1000.0 / requests as f64).round() / 10.0;
            bars.push((format!("cap {capacity}"), rate));
        }
        table.print();
        println!("\nhit rate (%) by capacity\n{}", bar_chart(&bars, 40));
    }
}

/// The `write_policies` store and lab: a durable "database" and a crash test for each policy.
pub mod write_policies {
    use std::collections::HashMap;

    use crate::lab::{Table, bar_chart, percent};
    use crate::workload::ZipfKeys;

    pub type Key = u64;
    pub type Value = u64;

    /// The backing store: the "database". In real life it is slow and durable; here it is a map that
    /// counts what the cache costs it. Whatever it holds survives a crash.
    #[derive(Debug, Default)]
    pub struct Store {
        rows: HashMap<Key, Value>,
        writes: u64,
        writes_per_key: HashMap<Key, u64>,
        /// Every write, in the order it happened.
        log: Vec<(Key, Value)>,
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
            self.log.push((key, value));
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

        /// Every write so far, oldest first: (key, value written).
        pub fn log(&self) -> &[(Key, Value)] {
            &self.log
        }

        /// Reads so far.
        pub fn reads(&self) -> u64 {
            self.reads
        }
    }

    /// What the lab needs from a write cache.
    pub trait LabCache: Sized {
        fn put(&mut self, key: Key, value: Value);
        fn get(&mut self, key: Key) -> Option<Value>;
        fn flush(&mut self);
        fn dirty(&self) -> usize;
        fn store(&self) -> &Store;
        /// The process dies: only what the store holds survives.
        fn crash(self) -> Store;
    }

    pub struct Knobs {
        /// Operations (puts) between two flushes of the write-back cache.
        pub flush_every: u64,
        /// Zipf skew of the keys written.
        pub skew: f64,
        /// Puts before the process crashes.
        pub puts_before_crash: u64,
        pub keys: usize,
        pub seed: u64,
    }

    struct Outcome {
        store_writes: u64,
        dirty_at_crash: usize,
        /// Keys whose last acknowledged value is not what the store holds after the crash.
        keys_lost: u64,
    }

    fn run<C: LabCache>(
        k: &Knobs,
        make: &impl Fn(Store) -> C,
        flush_every: Option<u64>,
    ) -> Outcome {
        let mut keys = ZipfKeys::new(k.keys, k.skew, k.seed);
        let mut cache = make(Store::new());
        // What each client was told: "saved".
        let mut acknowledged: HashMap<Key, Value> = HashMap::new();
        for op in 1..=k.puts_before_crash {
            let key = keys.next_key();
            cache.put(key, op); // the value is the operation number, so every put is distinct
            acknowledged.insert(key, op);
            if flush_every.is_some_and(|every| op % every == 0) {
                cache.flush();
            }
        }
        let store_writes = cache.store().writes();
        let dirty_at_crash = cache.dirty();
        // Restart with a cold cache over what survived, and read back every acknowledged key.
        let mut restarted = make(cache.crash());
        let keys_lost = acknowledged
            .iter()
            .filter(|&(&key, &value)| restarted.get(key) != Some(value))
            .count() as u64;
        Outcome {
            store_writes,
            dirty_at_crash,
            keys_lost,
        }
    }

    /// Many puts with hot keys, then a crash: what did each policy cost, and what did it lose?
    /// `through`, `back` and `around` make a cache of each policy over a given store.
    pub fn run_lab<C: LabCache>(
        k: &Knobs,
        through: impl Fn(Store) -> C,
        back: impl Fn(Store) -> C,
        around: impl Fn(Store) -> C,
    ) {
        println!(
            "{} puts over {} keys (Zipf skew {:.1}), then a crash.\n",
            k.puts_before_crash, k.keys, k.skew
        );
        let mut table = Table::new(&[
            "policy",
            "puts",
            "store writes",
            "writes coalesced",
            "dirty at crash",
            "keys lost in crash",
        ]);
        for (name, o) in [
            ("write-through".to_string(), run(k, &through, None)),
            (
                format!("write-back, flush every {}", k.flush_every),
                run(k, &back, Some(k.flush_every)),
            ),
            ("write-around".to_string(), run(k, &around, None)),
        ] {
            let coalesced = k.puts_before_crash - o.store_writes;
            table.row(&[
                name,
                k.puts_before_crash.to_string(),
                o.store_writes.to_string(),
                format!("{coalesced} ({})", percent(coalesced, k.puts_before_crash)),
                o.dirty_at_crash.to_string(),
                o.keys_lost.to_string(),
            ]);
        }
        table.print();

        println!("\nThe trade-off, write-back with other flush intervals:\n");
        let mut sweep = Table::new(&["flush every", "store writes", "keys lost in crash"]);
        let mut chart = Vec::new();
        for every in [1, 10, 100, 1_000, 10_000] {
            let o = run(k, &back, Some(every));
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
            "\nWrite-back never loses more keys than the cache holds: a dirty entry is written \
             back when it is evicted, so only what is still cached can be lost."
        );
    }
}

/// The `stampede` loader and lab: a slow database, the naive baseline, and a burst of requests.
pub mod stampede {
    use std::collections::{HashMap, VecDeque};
    use std::fmt;
    use std::future::Future;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use rand::RngExt;
    use tokio::task::JoinSet;
    use tokio::time::Instant;

    use crate::lab::{Table, bar_chart, millis, nearest_rank, percent};
    use crate::workload::{ZipfKeys, seeded_rng};

    pub type Key = u64;
    pub type Value = String;

    /// Why a load failed. `Clone`, because one failed load is reported to every caller waiting on it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LoadError(pub String);

    impl fmt::Display for LoadError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "load failed: {}", self.0)
        }
    }

    impl std::error::Error for LoadError {}

    /// Where values come from on a miss: a database query, an RPC, a page render.
    pub trait Loader: Send + Sync + 'static {
        fn load(&self, key: Key) -> impl Future<Output = Result<Value, LoadError>> + Send;
    }

    /// The "slow database" behind the cache. Every `load` takes `latency` of tokio time (so tests
    /// and the lab run on paused, virtual time: instant and exactly repeatable) plus `contention`
    /// for each query already running — a real database slows down as concurrent queries pile up.
    /// It counts every query, and can be told to fail or panic on the next load of a key.
    #[derive(Debug)]
    pub struct SlowDb {
        latency: Duration,
        /// Keys slower (or quicker) than `latency`.
        latency_for: HashMap<Key, Duration>,
        contention: Duration,
        calls: AtomicU64,
        calls_per_key: Mutex<HashMap<Key, u64>>,
        running: AtomicU64,
        peak_running: AtomicU64,
        faults: Mutex<HashMap<Key, VecDeque<Fault>>>,
    }

    #[derive(Debug)]
    enum Fault {
        Fail(String),
        Panic,
    }

    impl SlowDb {
        pub fn new(latency: Duration) -> Self {
            SlowDb {
                latency,
                latency_for: HashMap::new(),
                contention: Duration::ZERO,
                calls: AtomicU64::new(0),
                calls_per_key: Mutex::new(HashMap::new()),
                running: AtomicU64::new(0),
                peak_running: AtomicU64::new(0),
                faults: Mutex::new(HashMap::new()),
            }
        }

        /// Each query already running adds `per_running_query` to a new query's latency.
        pub fn with_contention(mut self, per_running_query: Duration) -> Self {
            self.contention = per_running_query;
            self
        }

        /// Loads of `key` take `latency` instead of the default.
        pub fn with_latency_for(mut self, key: Key, latency: Duration) -> Self {
            self.latency_for.insert(key, latency);
            self
        }

        /// The next load of `key` fails with `error` (faults queue up, one per load).
        pub fn fail_next(&self, key: Key, error: &str) {
            self.push_fault(key, Fault::Fail(error.to_string()));
        }

        /// The next load of `key` panics, as buggy code sometimes does.
        pub fn panic_next(&self, key: Key) {
            self.push_fault(key, Fault::Panic);
        }

        /// Queries started so far, all keys.
        pub fn calls(&self) -> u64 {
            self.calls.load(Ordering::SeqCst)
        }

        /// Queries started so far for `key`.
        pub fn calls_for(&self, key: Key) -> u64 {
            let per_key = self.calls_per_key.lock().expect("not poisoned");
            per_key.get(&key).copied().unwrap_or(0)
        }

        /// The most queries that were ever running at the same time.
        pub fn peak_concurrency(&self) -> u64 {
            self.peak_running.load(Ordering::SeqCst)
        }

        fn push_fault(&self, key: Key, fault: Fault) {
            let mut faults = self.faults.lock().expect("not poisoned");
            faults.entry(key).or_default().push_back(fault);
        }
    }

    /// Counts a query as running until it is dropped (finished, failed, panicked or cancelled).
    struct Running<'a>(&'a AtomicU64);

    impl Drop for Running<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl Loader for SlowDb {
        async fn load(&self, key: Key) -> Result<Value, LoadError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            *self
                .calls_per_key
                .lock()
                .expect("not poisoned")
                .entry(key)
                .or_default() += 1;
            let fault = {
                let mut faults = self.faults.lock().expect("not poisoned");
                faults.get_mut(&key).and_then(VecDeque::pop_front)
            };
            let already_running = self.running.fetch_add(1, Ordering::SeqCst);
            self.peak_running
                .fetch_max(already_running + 1, Ordering::SeqCst);
            let _running = Running(&self.running);
            let slowdown = self.contention * u32::try_from(already_running).unwrap_or(u32::MAX);
            let latency = self.latency_for.get(&key).copied().unwrap_or(self.latency);
            tokio::time::sleep(latency + slowdown).await;
            match fault {
                None => Ok(format!("row {key}")),
                Some(Fault::Fail(error)) => Err(LoadError(error)),
                Some(Fault::Panic) => panic!("SlowDb: the query for key {key} panicked"),
            }
        }
    }

    /// BASELINE FOR COMPARISON, NOT AN ANSWER: the naive check-then-load cache. Each miss runs its
    /// own load, so every request that arrives before the first load finishes goes to the database.
    pub struct NaiveCache<L: Loader> {
        loader: Arc<L>,
        values: Mutex<HashMap<Key, Value>>,
    }

    /// What the lab needs from a cache.
    pub trait LabCache: Send + Sync + 'static {
        fn lookup(&self, key: Key) -> impl Future<Output = Result<Value, LoadError>> + Send;
    }

    impl<L: Loader> LabCache for NaiveCache<L> {
        async fn lookup(&self, key: Key) -> Result<Value, LoadError> {
            if let Some(value) = self.values.lock().expect("not poisoned").get(&key) {
                return Ok(value.clone());
            }
            let value = self.loader.load(key).await?;
            let mut values = self.values.lock().expect("not poisoned");
            values.insert(key, value.clone());
            Ok(value)
        }
    }

    struct Report {
        requests: u64,
        loads: u64,
        peak_queries: u64,
        /// Each request's latency, sorted.
        latencies: Vec<Duration>,
    }

    impl Report {
        fn latency_quantile(&self, q: f64) -> Duration {
            nearest_rank(&self.latencies, q).expect("at least one request")
        }
    }

    /// Replays the same seeded burst of `concurrency` requests against a fresh cache.
    async fn burst<C: LabCache>(
        k: &Knobs,
        make: impl FnOnce(Arc<SlowDb>) -> C,
        concurrency: usize,
    ) -> Report {
        let db = Arc::new(SlowDb::new(k.db_latency).with_contention(k.db_contention));
        let cache = Arc::new(make(Arc::clone(&db)));
        let mut keys = ZipfKeys::new(k.keys, 1.0, k.seed);
        // A different seed from the keys', or arrival times would be correlated with the keys.
        let mut rng = seeded_rng(k.seed + 1);
        let window = k.arrival_window.as_micros() as u64;
        let start = Instant::now();
        let mut requests = JoinSet::new();
        for _ in 0..concurrency {
            let key = keys.next_key();
            let arrival = start + Duration::from_micros(rng.random_range(0..window));
            let cache = Arc::clone(&cache);
            requests.spawn(async move {
                tokio::time::sleep_until(arrival).await;
                let began = Instant::now();
                cache
                    .lookup(key)
                    .await
                    .expect("the lab's database never fails");
                began.elapsed()
            });
        }
        let mut latencies: Vec<Duration> = requests.join_all().await.into_iter().collect();
        latencies.sort();
        Report {
            requests: concurrency as u64,
            loads: db.calls(),
            peak_queries: db.peak_concurrency(),
            latencies,
        }
    }

    impl<L: Loader> NaiveCache<L> {
        pub fn new(loader: Arc<L>) -> Self {
            NaiveCache {
                loader,
                values: Mutex::new(HashMap::new()),
            }
        }
    }

    pub struct Knobs {
        /// Requests arriving during the burst.
        pub concurrency: usize,
        /// Distinct keys they ask for (Zipf-skewed: a few are hot).
        pub keys: usize,
        /// Every request arrives within this window.
        pub arrival_window: Duration,
        /// One query on an idle database.
        pub db_latency: Duration,
        /// Extra latency per query already running.
        pub db_contention: Duration,
        pub seed: u64,
    }

    /// A burst of requests on a cold cache (just deployed, or just flushed), through the naive
    /// baseline and through `make`'s cache, on tokio's paused virtual time: the lab runs in a blink
    /// and the figures are the same on every run.
    pub fn run_lab<C: LabCache>(k: &Knobs, make: impl Fn(Arc<SlowDb>) -> C) {
        let runtime = crate::lab::simulated_runtime();
        runtime.block_on(async {
            println!(
                "{} requests for {} keys arrive within {} on a cold cache; the database takes {} \
                 per query, +{} per query already running.\n",
                k.concurrency,
                k.keys,
                millis(k.arrival_window),
                millis(k.db_latency),
                millis(k.db_contention),
            );
            let naive = burst(k, NaiveCache::new, k.concurrency).await;
            let coalescing = burst(k, &make, k.concurrency).await;
            let mut table = Table::new(&[
                "cache",
                "requests",
                "DB loads",
                "loads saved",
                "peak DB queries",
                "p50",
                "p99",
                "max",
            ]);
            for (name, r) in [
                ("naive (baseline)", &naive),
                ("coalescing (yours)", &coalescing),
            ] {
                let saved = r.requests - r.loads;
                table.row(&[
                    name.to_string(),
                    r.requests.to_string(),
                    r.loads.to_string(),
                    format!("{saved} ({})", percent(saved, r.requests)),
                    r.peak_queries.to_string(),
                    millis(r.latency_quantile(0.5)),
                    millis(r.latency_quantile(0.99)),
                    millis(*r.latencies.last().expect("at least one request")),
                ]);
            }
            table.print();

            println!("\nDatabase loads as the burst grows:\n");
            let mut chart = Vec::new();
            for concurrency in [10, 100, k.concurrency] {
                let naive = burst(k, NaiveCache::new, concurrency).await;
                let coalescing = burst(k, &make, concurrency).await;
                chart.push((format!("naive, {concurrency} requests"), naive.loads as f64));
                chart.push((
                    format!("coalescing, {concurrency} requests"),
                    coalescing.loads as f64,
                ));
            }
            println!("{}", bar_chart(&chart, 50));
        });
    }
}

/// The `single_flight_cancellation` lab (06_resilience): a burst on a cold cache where some
/// clients are impatient, each request cancelled when its own timeout fires.
pub mod single_flight {
    use std::sync::Arc;
    use std::time::Duration;

    use rand::RngExt;
    use tokio::task::JoinSet;
    use tokio::time::{Instant, timeout};

    use super::stampede::{LabCache, SlowDb};
    use crate::lab::{Table, bar_chart, millis, percent};
    use crate::workload::{ZipfKeys, seeded_rng};

    pub struct Knobs {
        pub requests: usize,
        pub keys: usize,
        /// Every request arrives within this window.
        pub arrival_window: Duration,
        /// One query on an idle database.
        pub db_latency: Duration,
        /// The timeout of an impatient client (a patient one waits up to `patient_timeout`).
        pub impatient_timeout: Duration,
        pub patient_timeout: Duration,
        /// Shares of impatient clients to compare, in percent.
        pub impatient_percent: Vec<u32>,
        pub seed: u64,
    }

    #[derive(Default)]
    struct Report {
        answered: u64,
        timed_out: u64,
        failed: u64,
        loads: u64,
        /// Keys that still did not answer a patient caller after the burst.
        stuck: u64,
    }

    async fn burst<C: LabCache>(
        k: &Knobs,
        make: &impl Fn(Arc<SlowDb>) -> C,
        impatient: u32,
    ) -> Report {
        let db = Arc::new(SlowDb::new(k.db_latency));
        let cache = Arc::new(make(Arc::clone(&db)));
        let mut keys = ZipfKeys::new(k.keys, 1.0, k.seed);
        let mut rng = seeded_rng(k.seed + 1);
        let window = k.arrival_window.as_micros() as u64;
        let start = Instant::now();
        let mut requests = JoinSet::new();
        for _ in 0..k.requests {
            let key = keys.next_key();
            let arrival = start + Duration::from_micros(rng.random_range(0..window));
            let limit = if rng.random_range(0..100) < impatient {
                k.impatient_timeout
            } else {
                k.patient_timeout
            };
            let cache = Arc::clone(&cache);
            requests.spawn(async move {
                tokio::time::sleep_until(arrival).await;
                timeout(limit, cache.lookup(key)).await
            });
        }
        let mut report = Report::default();
        while let Some(joined) = requests.join_next().await {
            match joined {
                Ok(Ok(Ok(_))) => report.answered += 1,
                Ok(Err(_)) => report.timed_out += 1,
                // An error (the lab's database never fails) or a panic: a caller failed
                // because of someone else's timeout.
                Ok(Ok(Err(_))) | Err(_) => report.failed += 1,
            }
        }
        report.loads = db.calls();
        for key in 0..k.keys as u64 {
            let patient = timeout(k.patient_timeout, cache.lookup(key)).await;
            if !matches!(patient, Ok(Ok(_))) {
                report.stuck += 1;
            }
        }
        report
    }

    /// Replays the same seeded burst with more and more impatient clients, on paused virtual
    /// time, and prints what happened to the requests and how many loads the database ran.
    pub fn run_lab<C: LabCache>(k: &Knobs, make: impl Fn(Arc<SlowDb>) -> C) {
        let runtime = crate::lab::simulated_runtime();
        runtime.block_on(async {
            println!(
                "{} requests for {} keys arrive within {} on a cold cache; a query takes {}. An \
                 impatient client gives up after {}, a patient one after {}.\n",
                k.requests,
                k.keys,
                millis(k.arrival_window),
                millis(k.db_latency),
                millis(k.impatient_timeout),
                millis(k.patient_timeout),
            );
            let mut table = Table::new(&[
                "impatient",
                "answered",
                "timed out",
                "failed by another's timeout",
                "DB loads",
                "keys stuck afterwards",
            ]);
            let mut chart = Vec::new();
            for &impatient in &k.impatient_percent {
                let r = burst(k, &make, impatient).await;
                let total = k.requests as u64;
                table.row(&[
                    format!("{impatient}%"),
                    format!("{} ({})", r.answered, percent(r.answered, total)),
                    r.timed_out.to_string(),
                    r.failed.to_string(),
                    r.loads.to_string(),
                    r.stuck.to_string(),
                ]);
                chart.push((format!("DB loads, {impatient}% impatient"), r.loads as f64));
            }
            table.print();
            println!("\n{}", bar_chart(&chart, 50));
        });
    }
}

/// The `cache_aside` database, cache and lab: a fake database that can fail, take time and hold
/// a write in flight; the shared cache; many concurrent clients.
pub mod cache_aside {
    use std::collections::{HashMap, VecDeque};
    use std::future::Future;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use rand::RngExt;
    use rand::rngs::StdRng;
    use tokio::sync::watch;
    use tokio::task::JoinSet;
    use tokio::time::Instant;

    use crate::lab::{Table, bar_chart, millis};
    use crate::workload::{ZipfKeys, seeded_rng};

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct User {
        pub id: u64,
        pub name: String,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum DbError {
        /// The call was refused: nothing happened.
        Unavailable,
        /// No answer in time: the operation may or may not have been applied.
        Timeout,
    }

    /// The storage the repository talks to (think: a SQL table of users). Every call is a round trip
    /// over the network: it takes time, and other requests run meanwhile.
    pub trait Database: Send + Sync + 'static {
        /// `Ok(None)` when no row has this id.
        fn find(&self, id: u64) -> impl Future<Output = Result<Option<User>, DbError>> + Send;
        /// Inserts or replaces the row with `user.id`.
        fn upsert(&self, user: User) -> impl Future<Output = Result<(), DbError>> + Send;
        fn delete(&self, id: u64) -> impl Future<Output = Result<(), DbError>> + Send;
    }

    /// Given: the cache, shared by every request in flight (think: a Redis client). Each call is one
    /// quick, atomic step. `None` as a value is a negative entry: "the database has no such row".
    #[derive(Debug, Default)]
    pub struct Cache {
        entries: Mutex<HashMap<u64, Option<User>>>,
    }

    impl Cache {
        /// `None`: nothing cached for `id`. `Some(None)`: cached as missing. `Some(Some(user))`: cached.
        pub fn get(&self, id: u64) -> Option<Option<User>> {
            self.entries.lock().expect("not poisoned").get(&id).cloned()
        }

        pub fn set(&self, id: u64, row: Option<User>) {
            self.entries.lock().expect("not poisoned").insert(id, row);
        }

        pub fn delete(&self, id: u64) {
            self.entries.lock().expect("not poisoned").remove(&id);
        }

        pub fn contains(&self, id: u64) -> bool {
            self.entries.lock().expect("not poisoned").contains_key(&id)
        }
    }

    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct CacheStats {
        /// Reads answered from the cache (a cached "missing" included).
        pub hits: u64,
        /// Reads that had to ask the database (failed ones included).
        pub misses: u64,
    }

    impl CacheStats {
        /// hits / (hits + misses); 0.0 before the first read.
        pub fn hit_ratio(&self) -> f64 {
            let total = self.hits + self.misses;
            if total == 0 {
                0.0
            } else {
                self.hits as f64 / total as f64
            }
        }
    }

    /// A user row at a given version (the lab and the tests build rows with it).
    pub fn user(id: u64, version: u64) -> User {
        User {
            id,
            name: format!("user {id} v{version}"),
        }
    }

    /// Given: an in-memory database that counts its queries, can be told to fail, can take time
    /// (each leg of a round trip, request and reply, a random share of `one_way`), and can hold a
    /// write in flight while other requests run.
    #[derive(Debug)]
    pub struct FakeDb {
        state: Mutex<DbState>,
        one_way: Duration,
        rng: Mutex<StdRng>,
    }

    #[derive(Debug, Default)]
    struct DbState {
        rows: HashMap<u64, User>,
        queries: u64,
        writes: u64,
        /// Failures to inject into the next calls, in order.
        failures: VecDeque<DbError>,
        /// Writes to hold before applying them: (tell the test it arrived, wait for its release).
        holds: VecDeque<(watch::Sender<bool>, watch::Receiver<bool>)>,
    }

    /// A write held at the database by [`FakeDb::hold_next_write`]: it has not been applied, and
    /// will not be until [`HeldWrite::release`].
    pub struct HeldWrite {
        arrived: watch::Receiver<bool>,
        release: watch::Sender<bool>,
    }

    impl HeldWrite {
        /// Waits until the held write has reached the database (and waits there to be applied).
        pub async fn arrived(&mut self) {
            self.arrived
                .wait_for(|arrived| *arrived)
                .await
                .expect("the database was dropped before the held write reached it");
        }

        /// Lets the held write be applied and answered.
        pub fn release(&self) {
            self.release.send_replace(true);
        }
    }

    impl FakeDb {
        pub fn with_rows(rows: impl IntoIterator<Item = User>) -> Self {
            let state = DbState {
                rows: rows.into_iter().map(|u| (u.id, u)).collect(),
                ..DbState::default()
            };
            FakeDb {
                state: Mutex::new(state),
                one_way: Duration::ZERO,
                rng: Mutex::new(seeded_rng(0)),
            }
        }

        /// Each leg of a round trip (the request, then the reply) takes a random time in
        /// `0..=one_way` of tokio time; the row is read or written in between.
        pub fn with_latency(mut self, one_way: Duration, seed: u64) -> Self {
            self.one_way = one_way;
            self.rng = Mutex::new(seeded_rng(seed));
            self
        }

        /// Reads attempted (`find` calls), failed ones included.
        pub fn queries(&self) -> u64 {
            self.state().queries
        }

        /// Writes attempted (`upsert` and `delete` calls), failed ones included.
        pub fn writes(&self) -> u64 {
            self.state().writes
        }

        /// What the database holds for `id` right now, without counting a query (for inspection).
        pub fn row(&self, id: u64) -> Option<User> {
            self.state().rows.get(&id).cloned()
        }

        /// The next call fails with `Unavailable` and changes nothing.
        pub fn fail_next_call(&self) {
            self.state().failures.push_back(DbError::Unavailable);
        }

        /// The next call is applied, but the caller gets `Timeout` (the reply was lost).
        pub fn time_out_next_call_after_applying_it(&self) {
            self.state().failures.push_back(DbError::Timeout);
        }

        /// The next write (`upsert` or `delete`) reaches the database and waits there, not applied,
        /// until the returned handle releases it: meanwhile the test can run other requests.
        pub fn hold_next_write(&self) -> HeldWrite {
            let (arrived_tx, arrived_rx) = watch::channel(false);
            let (release_tx, release_rx) = watch::channel(false);
            self.state().holds.push_back((arrived_tx, release_rx));
            HeldWrite {
                arrived: arrived_rx,
                release: release_tx,
            }
        }

        fn state(&self) -> std::sync::MutexGuard<'_, DbState> {
            self.state.lock().expect("not poisoned")
        }

        /// One leg of a round trip over the network.
        async fn leg(&self) {
            if self.one_way > Duration::ZERO {
                let nanos = self.one_way.as_nanos() as u64;
                let wait = self
                    .rng
                    .lock()
                    .expect("not poisoned")
                    .random_range(0..=nanos);
                tokio::time::sleep(Duration::from_nanos(wait)).await;
            }
        }

        async fn write(
            &self,
            apply: impl FnOnce(&mut HashMap<u64, User>) + Send,
        ) -> Result<(), DbError> {
            let (failure, hold) = {
                let mut state = self.state();
                state.writes += 1;
                (state.failures.pop_front(), state.holds.pop_front())
            };
            self.leg().await;
            if let Some((arrived, mut release)) = hold {
                arrived.send_replace(true);
                let _ = release.wait_for(|released| *released).await;
            }
            if failure != Some(DbError::Unavailable) {
                apply(&mut self.state().rows);
            }
            self.leg().await;
            failure.map_or(Ok(()), Err)
        }
    }

    impl Database for FakeDb {
        async fn find(&self, id: u64) -> Result<Option<User>, DbError> {
            let failure = {
                let mut state = self.state();
                state.queries += 1;
                state.failures.pop_front()
            };
            self.leg().await;
            let row = self.row(id);
            self.leg().await;
            match failure {
                Some(error) => Err(error),
                None => Ok(row),
            }
        }

        async fn upsert(&self, user: User) -> Result<(), DbError> {
            self.write(move |rows| {
                rows.insert(user.id, user);
            })
            .await
        }

        async fn delete(&self, id: u64) -> Result<(), DbError> {
            self.write(move |rows| {
                rows.remove(&id);
            })
            .await
        }
    }

    // ---- Lab ---------------------------------------------------------------------------------

    /// What the lab needs from a cache-aside repository over a [`FakeDb`].
    pub trait LabRepo: Send + Sync + 'static {
        fn read(&self, id: u64) -> impl Future<Output = Result<Option<User>, DbError>> + Send;
        fn write(&self, user: User) -> impl Future<Output = Result<(), DbError>> + Send;
        fn stats(&self) -> CacheStats;
        /// What the cache holds for `id`, without counting a read.
        fn peek(&self, id: u64) -> Option<Option<User>>;
        fn database(&self) -> &FakeDb;
    }

    pub struct Knobs {
        /// Share of operations that are writes, one run per value.
        pub write_percents: Vec<u64>,
        /// Clients sending requests at the same time, one run per value.
        pub clients: Vec<usize>,
        pub key_space: usize,
        pub skew: f64,
        pub operations: usize,
        /// Each leg of a database round trip takes a random 0..=one_way.
        pub one_way: Duration,
        /// A cache round trip, added to every read's latency.
        pub cache_time: Duration,
        /// Each client waits a random 0..2×think_time between two operations.
        pub think_time: Duration,
        pub seed: u64,
    }

    struct Run {
        reads: u64,
        stats: CacheStats,
        db_reads: u64,
        /// Reads that returned a row the database had replaced before the read began.
        stale_reads: u64,
        /// Cache entries that disagree with the database once every client is done.
        stale_entries: u64,
        read_time: Duration,
    }

    async fn run<R: LabRepo>(
        k: &Knobs,
        make: &impl Fn(FakeDb) -> R,
        clients: usize,
        write_percent: u64,
    ) -> Run {
        let rows = (0..k.key_space as u64)
            .filter(|id| id % 10 != 9)
            .map(|id| user(id, 0));
        let db = FakeDb::with_rows(rows).with_latency(k.one_way, k.seed);
        let repo = Arc::new(make(db));
        let versions = Arc::new(AtomicU64::new(1));
        let mut tasks = JoinSet::new();
        for client in 0..clients {
            let (repo, versions) = (Arc::clone(&repo), Arc::clone(&versions));
            let (ops, key_space, skew, seed) =
                (k.operations / clients, k.key_space, k.skew, k.seed);
            let (think_time, cache_time) = (k.think_time, k.cache_time);
            tasks.spawn(async move {
                let mut keys = ZipfKeys::new(key_space, skew, seed + client as u64);
                let mut rng = seeded_rng(seed * 1_000 + client as u64);
                let (mut reads, mut stale, mut read_time) = (0u64, 0u64, Duration::ZERO);
                for _ in 0..ops {
                    let think = rng.random_range(0..2 * think_time.as_micros() as u64);
                    tokio::time::sleep(Duration::from_micros(think)).await;
                    let id = keys.next_key();
                    if rng.random_range(0..100) < write_percent {
                        let version = versions.fetch_add(1, Ordering::SeqCst);
                        repo.write(user(id, version))
                            .await
                            .expect("the lab's database never fails");
                    } else {
                        reads += 1;
                        let (before, began) = (repo.database().row(id), Instant::now());
                        let got = repo.read(id).await.expect("the lab's database never fails");
                        read_time += began.elapsed() + cache_time;
                        // Stale: neither what the database held when the read began, nor what it
                        // holds now — a row that had already been replaced.
                        if got != before && got != repo.database().row(id) {
                            stale += 1;
                        }
                    }
                }
                (reads, stale, read_time)
            });
        }
        let (mut reads, mut stale_reads, mut read_time) = (0, 0, Duration::ZERO);
        for (r, s, t) in tasks.join_all().await {
            (reads, stale_reads, read_time) = (reads + r, stale_reads + s, read_time + t);
        }
        let stale_entries = (0..k.key_space as u64)
            .filter(|&id| {
                repo.peek(id)
                    .is_some_and(|row| row != repo.database().row(id))
            })
            .count() as u64;
        Run {
            reads,
            stats: repo.stats(),
            db_reads: repo.database().queries(),
            stale_reads,
            stale_entries,
            read_time,
        }
    }

    /// Runs every (clients, write share) pair against a fresh repository from `make` on tokio's
    /// paused virtual time, and prints hit ratio, reads saved, stale reads and read latency.
    pub fn run_lab<R: LabRepo>(k: &Knobs, make: impl Fn(FakeDb) -> R) {
        println!(
            "Cache-aside over a database: {} operations on {} ids (skew {:.1}; every 10th id has no \
             row); a query takes 0..{} ({} on average), a cache lookup {}\n",
            k.operations,
            k.key_space,
            k.skew,
            millis(2 * k.one_way),
            millis(k.one_way),
            millis(k.cache_time)
        );
        let mut table = Table::new(&[
            "clients",
            "writes",
            "hit ratio",
            "DB reads saved",
            "stale reads",
            "stale entries left",
            "mean read latency",
        ]);
        let mut bars = Vec::new();
        let runtime = crate::lab::simulated_runtime();
        for &clients in &k.clients {
            for &write_percent in &k.write_percents {
                let r = runtime.block_on(run(k, &make, clients, write_percent));
                table.row(&[
                    clients.to_string(),
                    format!("{write_percent}%"),
                    format!("{:.1}%", r.stats.hit_ratio() * 100.0),
                    (r.reads - r.db_reads).to_string(),
                    r.stale_reads.to_string(),
                    r.stale_entries.to_string(),
                    millis(r.read_time / r.reads.max(1) as u32),
                ]);
                let ratio = (r.stats.hit_ratio() * 1000.0).round() / 10.0;
                bars.push((format!("{clients} clients, {write_percent}% writes"), ratio));
            }
        }
        table.print();
        println!(
            "\nstale reads: returned a row the database had already replaced when the read began\n\
             stale entries left: wrong until the next write to that row (or, in production, a TTL)"
        );
        println!("\nhit ratio (%)\n{}", bar_chart(&bars, 40));
    }
}
