// Storage and cache — the read path: an LRU with expiry and single-flight in front of a slow store.
//
// Redirects outnumber creations a hundred to one, and a viral link gets thousands of clicks a
// second: the read path needs a cache (topic 01) whose misses are coalesced, so the thousand
// requests that miss an expired hot entry at once cause ONE store read, not a stampede. Unknown
// codes are cached too ("negative" entries: bots probe random codes), in their own small LRU so
// a scan of junk cannot push real links out.
//
// The property: a hit while the entry lives (`ttl` from the end of its load, `negative_ttl`
// for an unknown code); one store read per code per expiry, however many ask at once (callers
// that miss during a load get its result, even at capacity 0); loads of different codes in
// parallel; a caller that gives up strands no one; each LRU holds at most its capacity and
// evicts its least recently used entry.
//
// Lab: real HTTP at RATE req/s, open loop. Turn TTL_MS and CAPACITY; watch store reads/s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sdlings_kit_shortener::links::SlowStore;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub capacity: usize,
    pub ttl: Duration,
    pub negative_capacity: usize,
    pub negative_ttl: Duration,
}

// ---- Your part -------------------------------------------------------------------------------

/// An LRU whose entries expire: at most `capacity` entries; `Some(url)` or `None` (unknown code).
#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
#[derive(Debug)]
pub struct Lru {
    capacity: usize,
    entries: HashMap<String, Entry>,
    /// Bumped on every use: the entry with the smallest `used` is the least recently used.
    clock: u64,
}

#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
#[derive(Debug)]
struct Entry {
    value: Option<String>,
    expires: Instant,
    used: u64,
}

impl Lru {
    pub fn new(capacity: usize) -> Self {
        Lru {
            capacity,
            entries: HashMap::new(),
            clock: 0,
        }
    }

    /// A hit: `Some(value)` if `code` is here and `now` is before its expiry (it becomes the most
    /// recently used). A miss: `None` (an expired entry is dropped).
    pub fn get(&mut self, code: &str, now: Instant) -> Option<Option<String>> {
        todo!("look {code:?} up at {now:?}")
    }

    /// Stores `value` for `code` until `expires`, evicting the least recently used entry if the
    /// LRU is full. A capacity of 0 stores nothing.
    pub fn insert(&mut self, code: String, value: Option<String>, expires: Instant) {
        todo!("store {code:?} = {value:?} until {expires:?}")
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The cache in front of the store.
#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
#[derive(Debug)]
pub struct LinkCache {
    store: Arc<SlowStore>,
    config: Config,
    state: Mutex<State>,
}

#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
#[derive(Debug)]
struct State {
    found: Lru,
    missing: Lru,
    /// Loads in flight: whoever misses `code` while it is being loaded waits on its channel,
    /// which carries `Some(result)` once the load is done.
    loading: HashMap<String, watch::Receiver<Option<Option<String>>>>,
}

impl LinkCache {
    pub fn new(store: Arc<SlowStore>, config: Config) -> Arc<Self> {
        let state = State {
            found: Lru::new(config.capacity),
            missing: Lru::new(config.negative_capacity),
            loading: HashMap::new(),
        };
        Arc::new(LinkCache {
            store,
            config,
            state: Mutex::new(state),
        })
    }

    /// The URL of `code` (`None`: no such code), from the cache or from one load of the store.
    pub async fn get(self: &Arc<Self>, code: &str) -> Option<String> {
        todo!("a hit from either LRU, or join the load in flight, or start one ({code:?})")
    }

    /// Entries held: (links found, unknown codes).
    pub fn len(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap();
        (state.found.len(), state.missing.len())
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const RATE: f64 = 500.0;
const SECONDS: f64 = 2.0;
const CODES: usize = 2_000;
/// Of every 100 requests, this many ask for a code that does not exist.
const UNKNOWN_PERCENT: u64 = 5;
const TTL_MS: u64 = 1_000;
const CAPACITY: usize = 1_000;
const STORE_MS: u64 = 5;

fn main() {
    sdlings_kit::lab::runtime().block_on(lab());
}

async fn lab() {
    use axum::extract::{Path, State};
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use sdlings_kit::lab::{Table, latency, percent};
    use sdlings_kit::workload::ZipfKeys;
    use sdlings_kit_shortener::{http, load};
    use std::collections::HashSet;

    let store = Arc::new(SlowStore::new(Duration::from_millis(STORE_MS)));
    for i in 0..CODES {
        store.set(&format!("c{i}"), &format!("https://example.com/{i}"));
    }
    let config = Config {
        capacity: CAPACITY,
        ttl: Duration::from_millis(TTL_MS),
        negative_capacity: CAPACITY / 10,
        negative_ttl: Duration::from_millis(TTL_MS / 5),
    };
    let cache = LinkCache::new(store.clone(), config);
    async fn follow(
        State(cache): State<Arc<LinkCache>>,
        Path(code): Path<String>,
    ) -> axum::response::Response {
        match cache.get(&code).await {
            Some(url) => (StatusCode::FOUND, [(header::LOCATION, url)]).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let router = axum::Router::new()
        .route("/{code}", axum::routing::get(follow))
        .with_state(cache.clone());
    let server = http::Server::start(router).await.expect("a server");
    let addr = server.addr();
    let mut zipf = ZipfKeys::new(CODES, 1.0, 19);
    // The codes asked for in each TTL-long stretch of the schedule.
    let per_window = (RATE * TTL_MS as f64 / 1000.0).max(1.0) as u64;
    let mut windows: Vec<HashSet<String>> = Vec::new();
    let duration = Duration::from_secs_f64(SECONDS);
    let report = load::open_loop(RATE, duration, |i| {
        let code = match i % 100 < UNKNOWN_PERCENT {
            true => format!("junk{i}"),
            false => format!("c{}", zipf.next_key()),
        };
        let window = (i / per_window) as usize;
        windows.resize_with(windows.len().max(window + 1), HashSet::new);
        windows[window].insert(code.clone());
        async move {
            let answer = http::get(addr, &format!("/{code}")).await;
            matches!(answer, Ok(r) if r.status == 302 || r.status == 404)
        }
    })
    .await;
    let (sent, reads) = (report.sent(), store.reads());
    // The simple estimate: one load per code per TTL window it is asked in (if the cache is big
    // enough to keep it that long).
    let estimate = windows.iter().map(HashSet::len).sum::<usize>() as f64 / SECONDS;
    let mut table = Table::new(&["figure", "value"]);
    table
        .row(&["requests (open loop)", &sent.to_string()])
        .row(&["errors", &report.errors.to_string()])
        .row(&["p50 from the scheduled time", &latency(report.p50())])
        .row(&["p99 from the scheduled time", &latency(report.p99())])
        .row(&["cache hit rate", &percent(sent - reads, sent)])
        .row(&["store reads/s", &format!("{:.0}", reads as f64 / SECONDS)])
        .row(&[
            "estimate: codes per TTL window/s",
            &format!("{estimate:.0}"),
        ])
        .row(&["entries (found, unknown)", &format!("{:?}", cache.len())]);
    table.print();
    let most = windows.iter().map(HashSet::len).max().unwrap_or(0);
    println!("\nUp to {most} distinct codes per TTL window; the cache holds {CAPACITY}.");
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::property::for_seeds;

    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const LATENCY: Duration = Duration::from_millis(50);
    const CONFIG: Config = Config {
        capacity: 3,
        ttl: Duration::from_secs(10),
        negative_capacity: 2,
        negative_ttl: Duration::from_secs(1),
    };

    fn setup(config: Config, codes: &[&str]) -> (Arc<SlowStore>, Arc<LinkCache>) {
        let store = Arc::new(SlowStore::new(LATENCY));
        for code in codes {
            store.set(code, &format!("https://{code}.example"));
        }
        (store.clone(), LinkCache::new(store, config))
    }

    fn url(code: &str) -> Option<String> {
        Some(format!("https://{code}.example"))
    }

    /// `n` concurrent gets of `code`; every answer must be `expected`.
    async fn burst(cache: &Arc<LinkCache>, code: &str, n: usize, expected: Option<String>) {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (cache, code) = (cache.clone(), code.to_string());
            tasks.spawn(async move { cache.get(&code).await });
        }
        while let Some(answer) = tasks.join_next().await {
            assert_eq!(
                answer.unwrap(),
                expected,
                "every caller gets the loaded value"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_get_within_the_ttl_is_served_from_the_cache() {
        let (store, cache) = setup(CONFIG, &["a"]);
        assert_eq!(cache.get("a").await, url("a"));
        assert_eq!(cache.get("a").await, url("a"));
        assert_eq!(
            store.reads_of("a"),
            1,
            "the second get is a hit: no second store read"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_lives_exactly_ttl_from_the_end_of_its_load() {
        let (store, cache) = setup(CONFIG, &["a"]);
        cache.get("a").await; // loaded from t=0 to t=50ms: lives until 50ms + 10s
        store.set("a", "https://changed.example");
        tokio::time::advance(CONFIG.ttl - MS).await;
        assert_eq!(
            cache.get("a").await,
            url("a"),
            "1 ms before expiry: still a hit"
        );
        assert_eq!(
            store.reads_of("a"),
            1,
            "(the TTL counts from the end of the load, not its start)"
        );
        tokio::time::advance(MS).await;
        let fresh = Some("https://changed.example".to_string());
        assert_eq!(
            cache.get("a").await,
            fresh,
            "at exactly ttl it has expired: reload"
        );
        assert_eq!(store.reads_of("a"), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_viral_code_under_a_thousand_concurrent_requests_loads_once_per_expiry() {
        let (store, cache) = setup(CONFIG, &["hot"]);
        burst(&cache, "hot", 1_000, url("hot")).await;
        assert_eq!(
            store.reads_of("hot"),
            1,
            "1,000 concurrent misses, ONE store read"
        );
        burst(&cache, "hot", 1_000, url("hot")).await;
        assert_eq!(store.reads_of("hot"), 1, "then hits");
        tokio::time::advance(CONFIG.ttl).await;
        store.set("hot", "https://moved.example");
        burst(&cache, "hot", 1_000, Some("https://moved.example".into())).await;
        assert_eq!(
            store.reads_of("hot"),
            2,
            "after expiry, one more read for the whole burst"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_miss_during_a_load_joins_it_and_loads_of_different_codes_run_in_parallel() {
        let (store, cache) = setup(CONFIG, &["a", "b", "c"]);
        let start = Instant::now();
        let first = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get("a").await }
        });
        tokio::task::yield_now().await; // the first get starts its load at t=0
        tokio::time::advance(20 * MS).await;
        let (a, b, c) = tokio::join!(cache.get("a"), cache.get("b"), cache.get("c"));
        assert_eq!((a, b, c), (url("a"), url("b"), url("c")));
        assert_eq!(first.await.unwrap(), url("a"));
        assert_eq!(
            store.reads(),
            3,
            "the second miss of a joined the first load"
        );
        assert_eq!(
            start.elapsed(),
            20 * MS + LATENCY,
            "b and c load side by side (not one after the other, nor after a's load)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_gives_up_strands_no_one_waiting_on_its_load() {
        let (store, cache) = setup(CONFIG, &["a"]);
        let impatient = tokio::time::timeout(10 * MS, cache.get("a"));
        let patient = cache.get("a");
        let late = async {
            tokio::time::sleep(20 * MS).await; // after the first caller gave up, during its load
            cache.get("a").await
        };
        let (gave_up, waited, late) = tokio::join!(impatient, patient, late);
        assert!(gave_up.is_err(), "the first caller timed out after 10 ms");
        assert_eq!(
            (waited, late),
            (url("a"), url("a")),
            "the load it started must not leave the others stuck"
        );
        assert_eq!(
            store.reads_of("a"),
            1,
            "a miss after the first caller gave up, while its load still runs, joins that load"
        );
        let reads = store.reads_of("a");
        assert_eq!(cache.get("a").await, url("a"));
        assert_eq!(store.reads_of("a"), reads, "and the value is cached");
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_codes_are_cached_as_missing_for_the_negative_ttl() {
        let (store, cache) = setup(CONFIG, &[]);
        burst(&cache, "nope", 100, None).await;
        for _ in 0..100 {
            assert_eq!(cache.get("nope").await, None);
        }
        assert_eq!(
            store.reads_of("nope"),
            1,
            "200 asks for an unknown code, one store read"
        );
        store.set("nope", "https://new.example");
        tokio::time::advance(CONFIG.negative_ttl - MS).await;
        assert_eq!(
            cache.get("nope").await,
            None,
            "still cached as unknown (stated staleness)"
        );
        tokio::time::advance(MS).await;
        let created = Some("https://new.example".to_string());
        assert_eq!(
            cache.get("nope").await,
            created,
            "negative_ttl (1 s, not ttl) has passed"
        );
        assert_eq!(store.reads_of("nope"), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_least_recently_used_link_is_evicted_and_the_bound_holds() {
        let (store, cache) = setup(CONFIG, &["a", "b", "c", "d"]);
        for code in ["a", "b", "c"] {
            cache.get(code).await;
        }
        cache.get("a").await; // a is now the most recently used; b the least
        cache.get("d").await;
        assert_eq!(cache.len(), (3, 0), "capacity 3");
        cache.get("a").await;
        assert_eq!(store.reads_of("a"), 1, "a was used recently: kept");
        cache.get("b").await;
        assert_eq!(
            store.reads_of("b"),
            2,
            "b was the least recently used: evicted by d"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_scan_of_unknown_codes_cannot_push_real_links_out() {
        let hour = Duration::from_secs(3_600); // the scan takes 25 s: nothing expires during it
        let config = Config {
            ttl: hour,
            ..CONFIG
        };
        let (store, cache) = setup(config, &["a", "b", "c"]);
        for code in ["a", "b", "c"] {
            cache.get(code).await;
        }
        for i in 0..500 {
            cache.get(&format!("junk{i}")).await;
            let (found, missing) = cache.len();
            assert!(
                found <= 3 && missing <= 2,
                "each LRU holds its capacity: {found}, {missing}"
            );
        }
        for code in ["a", "b", "c"] {
            cache.get(code).await;
        }
        assert_eq!(
            store.reads() - 500,
            3,
            "the scan filled the unknown-code LRU only"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_capacity_of_zero_caches_nothing_but_still_coalesces() {
        let config = Config {
            capacity: 0,
            negative_capacity: 0,
            ..CONFIG
        };
        let (store, cache) = setup(config, &["a"]);
        cache.get("a").await;
        cache.get("a").await;
        assert_eq!(store.reads_of("a"), 2, "nothing is kept");
        assert_eq!(cache.len(), (0, 0));
        burst(&cache, "a", 50, url("a")).await;
        assert_eq!(
            store.reads_of("a"),
            3,
            "concurrent misses still share one load"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn store_reads_match_a_simple_model_over_random_sequences() {
        // One get at a time, random codes and pauses: the model is a list in recency order.
        // Half the cases are about recency (small LRUs, nothing expires), half about expiry
        // (nothing is evicted): which entry to evict when some have expired is yours to choose.
        let mut cases = Vec::new();
        for_seeds(40, |rng| {
            let hour = Duration::from_secs(3_600);
            let config = match rng.random_bool(0.5) {
                true => Config {
                    capacity: rng.random_range(0..5),
                    ttl: hour,
                    negative_capacity: rng.random_range(0..3),
                    negative_ttl: hour,
                },
                false => Config {
                    capacity: 5,
                    ttl: rng.random_range(1..400) * MS,
                    negative_capacity: 3,
                    negative_ttl: rng.random_range(1..200) * MS,
                },
            };
            let steps: Vec<(usize, u32)> = (0..150)
                .map(|_| (rng.random_range(0..8), rng.random_range(0..120)))
                .collect();
            cases.push((config, steps));
        });
        for (case, (config, steps)) in cases.into_iter().enumerate() {
            let (store, cache) = setup(config, &["k0", "k1", "k2", "k3", "k4"]);
            // (code, expires) per LRU, least recently used first.
            let mut model: [Vec<(String, Instant)>; 2] = [Vec::new(), Vec::new()];
            let mut expected_reads = 0;
            for (step, (k, pause)) in steps.into_iter().enumerate() {
                let code = format!("k{k}");
                let unknown = usize::from(k >= 5); // k0..k4 exist; k5..k7 do not
                let now = Instant::now();
                let lru = &mut model[unknown];
                let hit = lru.iter().position(|(c, e)| *c == code && now < *e);
                lru.retain(|(c, e)| *c != code || now < *e);
                match hit {
                    Some(i) => {
                        let entry = lru.remove(i);
                        lru.push(entry);
                    }
                    None => {
                        expected_reads += 1;
                        let (cap, ttl) = match unknown {
                            0 => (config.capacity, config.ttl),
                            _ => (config.negative_capacity, config.negative_ttl),
                        };
                        if cap > 0 {
                            if lru.len() >= cap {
                                lru.remove(0);
                            }
                            lru.push((code.clone(), now + LATENCY + ttl));
                        }
                    }
                }
                let answer = cache.get(&code).await;
                assert_eq!(answer, if k < 5 { url(&code) } else { None });
                assert_eq!(
                    store.reads(),
                    expected_reads,
                    "case {case} ({config:?}), step {step}: get {code} should be a {}",
                    if hit.is_some() { "hit" } else { "miss" }
                );
                tokio::time::advance(MS * pause).await;
            }
        }
    }
}
