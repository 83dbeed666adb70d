// Stampede protection: one load per key, however many callers
//
// When a hot key expires, or a cache restarts empty, every request for that key misses at the
// same moment and each one runs the same expensive query: a thundering herd (a "cache stampede",
// or "dogpile") that can take the database down exactly when traffic peaks. The fix is request
// coalescing, also called single flight: the first miss starts the load, and every later miss on
// that key waits for the same load and shares its result.
//
// Build `CoalescingCache::get`. A hit returns the cached value. The first miss on a key loads it
// through the `Loader`; concurrent misses on that key wait for that one load; different keys load
// in parallel. A failed load is delivered to everyone waiting for it and is NOT cached, so the
// next request tries again. (What happens when the caller running the load gives up or panics is
// the lesson of 06_resilience/single_flight_cancellation; here every caller waits to the end.)
//
// The slow database (`SlowDb`) and the `Loader` trait are given, in `sdlings_kit::caching::stampede`.
//
// Lab (runs once the tests pass): raise CONCURRENCY → the naive baseline's database loads grow
// linearly with it, yours stay at one per key. Change KEYS to see the loads follow the number of
// distinct keys instead.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sdlings_kit::caching::stampede::{self, Key, LoadError, Loader, Value};

// ---- Your part -------------------------------------------------------------------------------

/// A cache that loads each missing key once, however many callers ask for it at the same time.
pub struct CoalescingCache<L: Loader> {
    loader: Arc<L>,
    // TODO: add your state: the cached values, and the loads in flight that a caller can wait
    // on. Tokio gives you the tools: `tokio::sync::{watch, broadcast, Notify, Mutex}`. A
    // `std::sync::Mutex` is fine too, as long as it is never held across an `.await`.
}

impl<L: Loader> CoalescingCache<L> {
    pub fn new(loader: Arc<L>) -> Self {
        // TODO: initialise the state you added.
        CoalescingCache { loader }
    }

    /// The value for `key`: cached, or loaded once however many callers ask concurrently.
    ///
    /// - A hit returns the cached value, without waiting.
    /// - The first miss on a key starts a load through `self.loader`; a miss while that load is
    ///   in flight waits for it and gets the same result. Different keys never wait for each
    ///   other.
    /// - An error is returned to every waiter, and not cached: the next `get` loads again.
    pub async fn get(&self, key: Key) -> Result<Value, LoadError> {
        todo!("get key {key}")
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Requests arriving during the burst.
const CONCURRENCY: usize = 1_000;
/// Distinct keys they ask for (Zipf-skewed: a few are hot).
const KEYS: usize = 10;

fn main() {
    let knobs = stampede::Knobs {
        concurrency: CONCURRENCY,
        keys: KEYS,
        arrival_window: Duration::from_millis(10),
        db_latency: Duration::from_millis(20),
        // A database under a herd slows down for everyone: this much per query already running.
        db_contention: Duration::from_micros(200),
        seed: 11,
    };
    stampede::run_lab(&knobs, CoalescingCache::new);
}

/// The lab drives the cache through this trait (in the kit).
impl<L: Loader> stampede::LabCache for CoalescingCache<L> {
    fn lookup(&self, key: Key) -> impl Future<Output = Result<Value, LoadError>> + Send {
        self.get(key)
    }
}

#[cfg(test)]
mod tests {
    use sdlings_kit::caching::stampede::SlowDb;
    use sdlings_kit::caching::within;
    use tokio::task::JoinSet;
    use tokio::time::Instant;

    use super::*;

    const LATENCY: Duration = Duration::from_millis(100);

    fn setup() -> (Arc<SlowDb>, Arc<CoalescingCache<SlowDb>>) {
        let db = Arc::new(SlowDb::new(LATENCY));
        let cache = Arc::new(CoalescingCache::new(Arc::clone(&db)));
        (db, cache)
    }

    /// Starts one concurrent `get` per key in `keys`, in that order.
    fn spawn_gets(
        cache: &Arc<CoalescingCache<SlowDb>>,
        keys: impl IntoIterator<Item = Key>,
    ) -> JoinSet<(Key, Result<Value, LoadError>)> {
        let mut set = JoinSet::new();
        for key in keys {
            let cache = Arc::clone(cache);
            set.spawn(async move { (key, cache.get(key).await) });
        }
        set
    }

    /// Waits for every spawned `get`; a panicking `get` fails the test.
    async fn results(
        set: JoinSet<(Key, Result<Value, LoadError>)>,
    ) -> Vec<(Key, Result<Value, LoadError>)> {
        within("a concurrent get", async {
            let mut set = set;
            let mut out = Vec::new();
            while let Some(joined) = set.join_next().await {
                out.push(joined.unwrap_or_else(|e| panic!("a get call panicked: {e}")));
            }
            out
        })
        .await
    }

    fn row(key: Key) -> Result<Value, LoadError> {
        Ok(format!("row {key}"))
    }

    // --- the happy path ---

    #[tokio::test(start_paused = true)]
    async fn a_miss_loads_the_value_from_the_database() {
        let (db, cache) = setup();
        assert_eq!(within("get(1)", cache.get(1)).await, row(1));
        assert_eq!(db.calls(), 1, "a miss loads exactly once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_loaded_value_is_cached_and_served_without_another_load() {
        let (db, cache) = setup();
        within("get(1)", cache.get(1)).await.unwrap();
        let start = Instant::now();
        assert_eq!(within("get(1)", cache.get(1)).await, row(1));
        assert_eq!(
            db.calls(),
            1,
            "the second get must be a cache hit, not a load"
        );
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "a hit returns at once, without waiting for the database"
        );
    }

    // --- the herd ---

    #[tokio::test(start_paused = true)]
    async fn a_hundred_concurrent_misses_on_one_key_cause_exactly_one_load() {
        let (db, cache) = setup();
        let out = results(spawn_gets(&cache, [7; 100])).await;
        assert_eq!(
            db.calls(),
            1,
            "100 callers missed key 7 at the same time: the first must load it and the other \
             99 must wait for that load (checking the cache, then loading, lets all 100 through)"
        );
        for (_, result) in out {
            assert_eq!(result, row(7), "every waiter gets the one load's value");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_arriving_mid_load_joins_it_instead_of_starting_another() {
        let (db, cache) = setup();
        let start = Instant::now();
        let first = spawn_gets(&cache, [1]);
        tokio::time::sleep(LATENCY / 2).await; // the load is now half done
        let second = spawn_gets(&cache, [1]);
        let out = results(second).await;
        assert_eq!(out[0].1, row(1));
        assert_eq!(
            db.calls(),
            1,
            "key 1 was already being loaded: the late caller must wait for that load, not start \
             its own"
        );
        assert_eq!(
            start.elapsed(),
            LATENCY,
            "the late caller waits only for the rest of the in-flight load"
        );
        results(first).await;
    }

    #[tokio::test(start_paused = true)]
    async fn different_keys_load_in_parallel_not_one_after_another() {
        let (db, cache) = setup();
        let start = Instant::now();
        // 20 callers for each of keys 1, 2 and 3, interleaved.
        let out = results(spawn_gets(&cache, (0..60).map(|i| i % 3 + 1))).await;
        for (key, result) in out {
            assert_eq!(result, row(key));
        }
        for key in 1..=3 {
            assert_eq!(
                db.calls_for(key),
                1,
                "key {key} must be loaded exactly once"
            );
        }
        assert_eq!(
            db.peak_concurrency(),
            3,
            "the three keys' loads must run at the same time; a lock held across the load \
             makes each key wait for the others"
        );
        assert!(
            start.elapsed() < 2 * LATENCY,
            "three independent loads of {LATENCY:?} each should finish together after \
             {LATENCY:?} of (virtual) time, not one after another; took {:?}",
            start.elapsed()
        );
    }

    // --- failures ---

    #[tokio::test(start_paused = true)]
    async fn a_failed_load_is_delivered_to_every_waiter() {
        let (db, cache) = setup();
        db.fail_next(1, "connection reset");
        let out = results(spawn_gets(&cache, [1; 10])).await;
        assert_eq!(
            db.calls(),
            1,
            "ten waiters share one load even when it fails (retrying once per waiter would \
             hammer a database that is already failing)"
        );
        for (_, result) in out {
            assert_eq!(
                result,
                Err(LoadError("connection reset".to_string())),
                "every waiter gets the loader's own error"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn errors_are_not_cached_so_the_next_request_retries() {
        let (db, cache) = setup();
        db.fail_next(1, "connection reset");
        assert!(within("get(1)", cache.get(1)).await.is_err());
        assert_eq!(
            within("the get after a failed load", cache.get(1)).await,
            row(1),
            "the failure was transient: the next request must load again, not get a cached error"
        );
        assert_eq!(db.calls(), 2, "one failed load, then one successful retry");
        assert_eq!(within("get(1)", cache.get(1)).await, row(1));
        assert_eq!(db.calls(), 2, "the successful retry is cached");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_on_one_key_does_not_affect_another() {
        let (db, cache) = setup();
        db.fail_next(1, "connection reset");
        let out = results(spawn_gets(&cache, [1, 2, 1, 2])).await;
        for (key, result) in out {
            if key == 1 {
                assert!(
                    result.is_err(),
                    "key 1's one load failed, so every caller waiting on key 1 gets that error"
                );
            } else {
                assert_eq!(result, row(2), "key 2's load succeeded independently");
            }
        }
        assert_eq!((db.calls_for(1), db.calls_for(2)), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_caller_joining_a_failing_load_gets_the_same_error() {
        let (db, cache) = setup();
        db.fail_next(1, "disk full");
        let early = spawn_gets(&cache, [1; 5]);
        tokio::time::sleep(LATENCY / 2).await; // the failing load is half done
        let late = spawn_gets(&cache, [1; 5]);
        for (_, result) in results(early).await.into_iter().chain(results(late).await) {
            assert_eq!(
                result,
                Err(LoadError("disk full".to_string())),
                "callers that arrived before and during the failing load all share its error"
            );
        }
        assert_eq!(db.calls(), 1, "one load, shared by all ten callers");
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_failure_the_next_herd_is_coalesced_into_one_retry() {
        let (db, cache) = setup();
        db.fail_next(1, "connection reset");
        results(spawn_gets(&cache, [1; 10])).await;
        let out = results(spawn_gets(&cache, [1; 10])).await;
        for (_, result) in out {
            assert_eq!(result, row(1), "the retry succeeded, for every caller");
        }
        assert_eq!(
            db.calls(),
            2,
            "the failed load, then exactly one retry for the ten callers that came after it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_load_on_one_key_does_not_hold_up_another_key() {
        // Key 1's load takes 100 times as long as any other key's.
        let db = Arc::new(SlowDb::new(LATENCY).with_latency_for(1, 100 * LATENCY));
        let cache = Arc::new(CoalescingCache::new(Arc::clone(&db)));
        let start = Instant::now();
        let slow = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.get(1).await })
        };
        tokio::time::sleep(LATENCY / 10).await; // key 1's slow load is running
        let quick = within("get(2) during key 1's slow load", cache.get(2)).await;
        assert_eq!(quick, row(2));
        assert_eq!(
            start.elapsed(),
            LATENCY / 10 + LATENCY,
            "key 2 needs one quick load; it must not wait for key 1's slow one (a lock held \
             across a load, or one queue for all keys, makes every key as slow as the slowest)"
        );
        let quick_again = within("a second get(2)", cache.get(2)).await;
        assert_eq!(quick_again, row(2), "key 2 is now cached");
        assert!(!slow.is_finished(), "key 1's load is still running");
        assert_eq!(within("get(1)", slow).await.expect("no panic"), row(1));
        assert_eq!(db.calls(), 2, "one load per key");
    }
}
