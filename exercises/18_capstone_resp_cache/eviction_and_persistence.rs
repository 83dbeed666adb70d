// Eviction and persistence — a memory bound with sampled LRU, and an append-only file.
//
// A cache without a memory bound grows until the machine kills it. Redis's `maxmemory` with
// `allkeys-lru` evicts keys when a write would cross the bound, choosing by sampling: it looks
// at a few random keys (`maxmemory-samples`, 5) and evicts the least recently used of them: no
// list to maintain, and close to true LRU. To survive a restart, every write is appended to the
// append-only file (AOF) in RESP; on start the file is replayed. A crash can tear the last
// record: Redis loads everything before it and drops the tail. A TTL is logged as an absolute
// time (`PXAT`), or a replay would give every key a fresh TTL.
//
// Build `Cache`. The property: `used_memory` never exceeds the bound; with more samples, keys
// used recently survive better than under random eviction (1 sample); `restore` of the AOF gives
// back exactly the live keys, expiries included, whatever byte the file was torn at.
//
// Lab: a skewed workload against caches of 1, 3, 5 and 10 samples; turn MAX_MEMORY and watch
// the hit rate of each.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[allow(unused_imports)] // yours to use
use rand::RngExt;
use rand::rngs::StdRng;
use sdlings_kit::clock::{Clock, ManualClock};
use sdlings_kit::lab::{Table, percent};
use sdlings_kit::workload::{ZipfKeys, seeded_rng};
use sdlings_kit_resp::Frame;
use sdlings_kit_resp::conn::{parse_prefix, to_bytes};

/// The memory an entry costs beyond its key and value bytes (the map slot, pointers, lengths).
pub const ENTRY_OVERHEAD: usize = 32;

/// A write refused because even an empty cache could not hold it (Redis: `-OOM ...`).
#[derive(Debug, PartialEq, Eq)]
pub struct OutOfMemory;

// ---- Your part -------------------------------------------------------------------------------

#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
struct Entry {
    value: Vec<u8>,
    /// The absolute deadline on the clock: the key is alive while `now <= expires_at`.
    expires_at: Option<Duration>,
    /// When the key was last written or read, on a counter of accesses: higher is more recent.
    last_used: u64,
}

#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct Cache {
    max_memory: usize,
    samples: usize,
    clock: Arc<dyn Clock>,
    rng: StdRng,
    data: HashMap<Vec<u8>, Entry>,
    aof: Vec<u8>,
    // More state as you need it: the bytes used, the access counter, a way to sample keys.
}

impl Cache {
    pub fn new(max_memory: usize, samples: usize, clock: Arc<dyn Clock>, rng: StdRng) -> Self {
        Cache {
            max_memory,
            samples,
            clock,
            rng,
            data: HashMap::new(),
            aof: Vec::new(),
        }
    }

    /// The bytes held: for each key, its length, its value's length and ENTRY_OVERHEAD.
    pub fn used_memory(&self) -> usize {
        todo!("the bytes held")
    }

    /// The append-only file so far.
    pub fn aof(&self) -> &[u8] {
        &self.aof
    }

    /// The value of a live key; a read makes the key the most recently used.
    pub fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        todo!("read {key:?}, refreshing its recency")
    }

    /// Sets `key` (with a TTL, or none), evicting sampled least-recently-used keys first until it
    /// fits under the bound. Logged to the AOF, the TTL as an absolute time.
    pub fn set(
        &mut self,
        key: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), OutOfMemory> {
        let _ = (
            &mut self.rng,
            self.samples,
            self.clock.now(),
            to_bytes(&Frame::ok()),
        );
        todo!("set {key:?} = {value:?} (ttl {ttl:?}) under the bound, and log it")
    }

    /// Deletes `key`; says whether a live key was there.
    pub fn del(&mut self, key: &[u8]) -> bool {
        todo!("delete {key:?}, and log it")
    }

    /// A cache rebuilt from an AOF after a restart: every complete record is replayed in order
    /// (keys whose absolute deadline has passed stay dead); a torn last record is dropped, and
    /// cut from the new AOF so later records do not follow garbage. `Err` for a record that
    /// is complete but not a valid command: that file is corrupt, not torn.
    pub fn restore(
        aof: &[u8],
        max_memory: usize,
        samples: usize,
        clock: Arc<dyn Clock>,
        rng: StdRng,
    ) -> Result<Self, String> {
        let _ = (
            Cache::new(max_memory, samples, clock, rng),
            parse_prefix(aof),
        );
        todo!("replay the {} bytes of the AOF", aof.len())
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// The bound, in bytes (each key here costs about 50), and the workload: Zipf-distributed reads
/// over KEYS keys, a miss followed by a SET, as a cache-aside application does.
const MAX_MEMORY: usize = 50 * 1_000;
const KEYS: usize = 10_000;
const REQUESTS: usize = 200_000;

fn main() {
    println!(
        "{REQUESTS} Zipf reads over {KEYS} keys, a miss then a SET; room for about 1,000 keys:"
    );
    let mut table = Table::new(&["samples", "policy", "hit rate", "AOF bytes"]);
    for samples in [1, 3, 5, 10] {
        let mut cache = Cache::new(
            MAX_MEMORY,
            samples,
            Arc::new(ManualClock::new()),
            seeded_rng(1),
        );
        let mut zipf = ZipfKeys::new(KEYS, 1.0, 2);
        let mut hits = 0;
        for _ in 0..REQUESTS {
            let key = format!("k{:05}", zipf.next_key()).into_bytes();
            match cache.get(&key) {
                Some(_) => hits += 1,
                None => cache.set(&key, b"v", None).expect("fits"),
            }
        }
        let policy = if samples == 1 {
            "random"
        } else {
            "sampled LRU"
        };
        table.row(&[
            samples.to_string(),
            policy.into(),
            percent(hits, REQUESTS as u64),
            cache.aof().len().to_string(),
        ]);
    }
    table.print();
}

#[cfg(test)]
mod tests {
    use sdlings_kit::property::for_seeds;

    use super::*;

    fn cache(max: usize, samples: usize, seed: u64) -> (Cache, ManualClock) {
        let clock = ManualClock::new();
        (
            Cache::new(max, samples, Arc::new(clock.clone()), seeded_rng(seed)),
            clock,
        )
    }

    fn restored(c: &Cache, aof: &[u8], clock: &ManualClock) -> Cache {
        Cache::restore(
            aof,
            c.max_memory,
            5,
            Arc::new(clock.clone()),
            seeded_rng(99),
        )
        .expect("a valid AOF")
    }

    fn size(k: &[u8], v: &[u8]) -> usize {
        k.len() + v.len() + ENTRY_OVERHEAD
    }

    /// The live contents, as a sorted list, read without touching recency.
    fn contents(c: &mut Cache, keys: usize) -> Vec<(usize, Vec<u8>)> {
        (0..keys)
            .filter_map(|k| c.get(format!("k{k}").as_bytes()).map(|v| (k, v)))
            .collect()
    }

    #[test]
    fn used_memory_counts_keys_and_values_exactly_through_overwrites_and_deletes() {
        let (mut c, _) = cache(10_000, 5, 1);
        c.set(b"a", b"12345", None).unwrap();
        c.set(b"bb", b"1", None).unwrap();
        assert_eq!(c.used_memory(), size(b"a", b"12345") + size(b"bb", b"1"));
        c.set(b"a", b"1", None).unwrap();
        assert_eq!(
            c.used_memory(),
            size(b"a", b"1") + size(b"bb", b"1"),
            "an overwrite frees the old value's bytes"
        );
        assert!(c.del(b"bb"));
        assert!(!c.del(b"bb"), "deleted already");
        assert_eq!(c.used_memory(), size(b"a", b"1"));
        assert_eq!(
            c.set(b"big", &[0; 10_000], None),
            Err(OutOfMemory),
            "a value larger than the whole bound is refused"
        );
        assert_eq!(
            c.get(b"a"),
            Some(b"1".to_vec()),
            "and nothing was evicted for it"
        );
        let exact = vec![0; 10_000 - 3 - ENTRY_OVERHEAD];
        assert_eq!(
            c.set(b"big", &exact, None),
            Ok(()),
            "an entry exactly the size of the bound fits (evicting everything else)"
        );
        assert_eq!((c.used_memory(), c.get(b"a")), (10_000, None));
    }

    #[test]
    fn with_a_sample_larger_than_the_cache_eviction_is_exact_lru() {
        // Room for exactly `n` equal entries, and 200 samples: every key is looked at, so the
        // victim is the true least recently used. Reads and writes both make a key recent.
        for_seeds(60, |rng| {
            let n = rng.random_range(1..6);
            let (mut c, _) = cache(n * size(b"k0", b"v"), 200, rng.random());
            let mut lru: Vec<Vec<u8>> = Vec::new(); // least recent first
            for step in 0..200 {
                let key = format!("k{}", rng.random_range(0..8)).into_bytes();
                let held = lru.iter().position(|k| *k == key);
                match rng.random_range(0..3) {
                    0 => {
                        let got = c.get(&key).is_some();
                        assert_eq!(
                            got,
                            held.is_some(),
                            "step {step}: GET {key:?}; LRU order {lru:?}"
                        );
                        if let Some(i) = held {
                            let k = lru.remove(i);
                            lru.push(k);
                        }
                    }
                    1 => {
                        assert_eq!(c.del(&key), held.is_some(), "step {step}: DEL {key:?}");
                        held.map(|i| lru.remove(i));
                    }
                    _ => {
                        c.set(&key, b"v", None).unwrap();
                        match held {
                            Some(i) => _ = lru.remove(i),
                            None if lru.len() == n => _ = lru.remove(0),
                            None => {}
                        }
                        lru.push(key);
                    }
                }
                assert_eq!(
                    c.used_memory(),
                    lru.len() * size(b"k0", b"v"),
                    "step {step}: room for {n}, keys held by true LRU {lru:?}"
                );
            }
        });
    }

    #[test]
    fn the_memory_bound_holds_under_any_workload() {
        for_seeds(50, |rng| {
            let max = rng.random_range(200..3_000);
            let (mut c, _) = cache(max, rng.random_range(1..8), rng.random());
            let mut model: HashMap<Vec<u8>, usize> = HashMap::new();
            for _ in 0..500 {
                let key = format!("k{}", rng.random_range(0..60)).into_bytes();
                if rng.random_bool(0.2) {
                    c.del(&key);
                } else {
                    let value = vec![b'v'; rng.random_range(0..150)];
                    c.set(&key, &value, None).unwrap();
                    model.insert(key.clone(), size(&key, &value));
                }
                assert!(
                    c.used_memory() <= max,
                    "used {} > bound {max}",
                    c.used_memory()
                );
            }
            let live: usize = model
                .iter()
                .filter(|(k, _)| c.get(k).is_some())
                .map(|(_, s)| s)
                .sum();
            assert!(
                live <= c.used_memory(),
                "the keys still readable account for the memory used"
            );
        });
    }

    /// Share of reads of a hot set (the first 100 of 1,000 keys, read 6 times in 10) that hit.
    fn hot_hit_rate(samples: usize, seed: u64) -> f64 {
        let (mut c, _) = cache(200 * size(b"k000", b"v"), samples, seed);
        let mut rng = seeded_rng(seed);
        let (mut hot, mut hits) = (0, 0);
        for _ in 0..30_000 {
            let is_hot = rng.random_bool(0.6);
            let k = if is_hot {
                rng.random_range(0..100)
            } else {
                rng.random_range(100..1_000)
            };
            let key = format!("k{k:03}").into_bytes();
            let hit = c.get(&key).is_some();
            if !hit {
                c.set(&key, b"v", None).unwrap();
            }
            hot += usize::from(is_hot);
            hits += usize::from(is_hot && hit);
        }
        hits as f64 / hot as f64
    }

    #[test]
    fn recently_used_keys_survive_better_than_under_random_eviction() {
        for seed in 0..3 {
            let (random, lru5, lru10) = (
                hot_hit_rate(1, seed),
                hot_hit_rate(5, seed),
                hot_hit_rate(10, seed),
            );
            assert!(
                lru5 > random + 0.08,
                "hot keys hit {lru5:.2} with 5 samples, {random:.2} with 1 (random): evict the LEAST recently used of the sample, and let a read refresh a key"
            );
            assert!(
                lru10 >= lru5 - 0.02,
                "more samples come closer to true LRU: {lru10:.2} with 10, {lru5:.2} with 5"
            );
            assert!(
                lru5 > 0.75,
                "100 hot keys in room for 200: sampled LRU keeps nearly all of them ({lru5:.2})"
            );
        }
    }

    #[test]
    fn restore_replays_the_aof_to_the_same_live_keys_evictions_included() {
        for_seeds(30, |rng| {
            let (mut c, clock) = cache(rng.random_range(300..2_000), 5, rng.random());
            for _ in 0..300 {
                let key = format!("k{}", rng.random_range(0..40)).into_bytes();
                match rng.random_range(0..4) {
                    0 => _ = c.del(&key),
                    1 => c
                        .set(
                            &key,
                            b"ttl",
                            Some(Duration::from_millis(rng.random_range(1..500))),
                        )
                        .unwrap(),
                    _ => c
                        .set(&key, &vec![b'v'; rng.random_range(0..50)], None)
                        .unwrap(),
                }
                clock.advance(Duration::from_millis(rng.random_range(0..5)));
            }
            let mut back = restored(&c, c.aof(), &clock);
            assert_eq!(
                contents(&mut back, 40),
                contents(&mut c, 40),
                "replaying the AOF gives back exactly the live keys (evictions are logged as DELs)"
            );
        });
    }

    #[test]
    fn expiries_persist_as_absolute_times_across_a_restart() {
        let (mut c, clock) = cache(10_000, 5, 2);
        c.set(b"k", b"v", Some(Duration::from_secs(10))).unwrap();
        c.set(b"gone", b"v", Some(Duration::from_secs(2))).unwrap();
        c.set(b"edge", b"v", Some(Duration::from_secs(8))).unwrap();
        clock.advance(Duration::from_secs(8)); // the server is down for a while
        let mut back = restored(&c, c.aof(), &clock);
        assert_eq!(
            back.used_memory(),
            size(b"k", b"v") + size(b"edge", b"v"),
            "a key that expired before the restart is not loaded; one exactly at its deadline is"
        );
        assert_eq!(
            back.get(b"edge"),
            Some(b"v".to_vec()),
            "alive while now <= deadline"
        );
        assert_eq!(back.get(b"gone"), None, "expired while the server was down");
        assert!(!c.del(b"gone"), "an expired key is not there to delete");
        assert_eq!(back.get(b"k"), Some(b"v".to_vec()), "2 s left");
        clock.advance(Duration::from_millis(2_001));
        assert_eq!(
            back.get(b"k"),
            None,
            "10 s after the SET the key is gone: a relative TTL replayed would have given it 10 s more"
        );
    }

    #[test]
    fn a_torn_tail_is_dropped_and_everything_before_it_replays() {
        let (mut c, clock) = cache(10_000, 5, 3);
        for k in 0..5 {
            c.set(format!("k{k}").as_bytes(), b"v", None).unwrap();
        }
        let before = c.aof().len();
        c.set(b"k5", b"torn", Some(Duration::from_secs(5))).unwrap();
        let full = c.aof().to_vec();
        for cut in before..full.len() {
            let mut back = restored(&c, &full[..cut], &clock);
            assert_eq!(
                contents(&mut back, 6).len(),
                5,
                "AOF torn at byte {cut}: the five complete SETs replay, the torn one is dropped"
            );
            back.set(b"k6", b"after", None).unwrap();
            let mut again = restored(&c, back.aof(), &clock);
            assert_eq!(
                again.get(b"k6"),
                Some(b"after".to_vec()),
                "torn at {cut}: a write after the restart follows the last complete record, not the torn bytes"
            );
            assert_eq!(again.get(b"k4"), Some(b"v".to_vec()));
        }
    }

    #[test]
    fn a_corrupt_record_in_the_middle_is_an_error_not_a_silent_loss() {
        let (mut c, clock) = cache(10_000, 5, 4);
        c.set(b"a", b"1", None).unwrap();
        let bad: [&[u8]; 4] = [
            b"?garbage\r\n",
            b":1\r\n",
            b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n",
            b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n:1\r\n",
        ];
        for bytes in bad {
            let mut aof = c.aof().to_vec();
            aof.extend(bytes);
            aof.extend(to_bytes(&Frame::command(["SET", "b", "2"])));
            assert!(
                Cache::restore(&aof, 10_000, 5, Arc::new(clock.clone()), seeded_rng(1)).is_err(),
                "{:?} is not a record the cache writes, followed by more records: the file is corrupt, not torn",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
