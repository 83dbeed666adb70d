// Bulkhead — cap the concurrency of each dependency, so one slow dependency cannot sink the ship.
//
// A service has a fixed number of workers (threads, connections, or just memory for in-flight
// requests). When one dependency turns slow, the requests that call it hold their workers for as
// long as it takes, new ones pile in behind them, and soon every worker waits on that dependency:
// requests that never touch it queue up and time out too. A bulkhead, like the watertight
// compartments of a ship, gives each dependency its own cap on concurrent calls: a slow one fills
// its own compartment and gets rejected at once, while everything else keeps its workers.
//
// Build `Bulkhead::run`: run the call if fewer than `max_concurrent` are running; otherwise wait
// for a slot if fewer than `max_waiting` calls are waiting already (0: no queue), else return
// `Rejected` at once without running the call. A slot is held until the call completes, and comes
// back however the call ends: done, failed, panicked, or cancelled (its future dropped by a
// timeout). A waiting call that is cancelled leaves the queue. Keep the `Stats` up to date. Then
// `Bulkheads::get`: one bulkhead per dependency name, the same one every time.
//
// Real systems: Hystrix's thread-pool and semaphore isolation, resilience4j's Bulkhead, Envoy's
// per-cluster max_requests / max_pending_requests. Lab (real sockets): a service with WORKERS
// workers calls a fast and a slow backend. Without bulkheads, the slow one takes every worker and
// the fast requests' p99 explodes. Turn SLOW_MS up, SLOW_LIMIT down or WORKERS up and compare.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sdlings_kit::resilience::bulkheads::{self, Limits, Rejected, Stats};
use tokio::sync::Semaphore;

/// Caps the concurrent calls to one dependency.
pub struct Bulkhead {
    limits: Limits,
    /// One permit per call allowed to run: `max_concurrent` of them. tokio's semaphore is fair
    /// (first come, first served) and hands a released permit straight to the oldest waiter.
    permits: Semaphore,
    // The counters behind `stats()`, kept up to date by `run`.
    in_flight: AtomicUsize,
    waiting: AtomicUsize,
    peak_in_flight: AtomicUsize,
    rejected: AtomicU64,
}

/// A bulkhead per dependency name, created on first use with that dependency's limits.
pub struct Bulkheads {
    default: Limits,
    /// Limits for particular dependencies; the others get `default`.
    overrides: HashMap<String, Limits>,
    bulkheads: Mutex<HashMap<String, Arc<Bulkhead>>>,
}

// ---- Your part -------------------------------------------------------------------------------
// Add any helper type you need here.

/// Decrements a counter when dropped: on completion, on panic (unwinding drops it) and on
/// cancellation (dropping the future drops it). A decrement written after an `.await` runs only
/// in the first case, and every cancelled call would leak a slot until the bulkhead is shut.
struct Count<'a>(&'a AtomicUsize);

impl<'a> Count<'a> {
    fn enter(counter: &'a AtomicUsize) -> (Self, usize) {
        let now = counter.fetch_add(1, Ordering::SeqCst) + 1;
        (Count(counter), now)
    }
}

impl Drop for Count<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Bulkhead {
    /// Runs `call` if a slot is free, waits for one if the queue has room, or returns `Rejected`
    /// at once (without running `call`). The slot is held until `call` completes, and comes back
    /// however it ends (returned, panicked, or dropped by the caller).
    pub async fn run<F: Future>(&self, call: F) -> Result<F::Output, Rejected> {
        let permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                // Full. Take a place in the queue only if there is one: check and increment in
                // one atomic step, or two callers could both see `max_waiting - 1` and both join.
                let joined = self
                    .waiting
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
                        (w < self.limits.max_waiting).then_some(w + 1)
                    });
                if joined.is_err() {
                    // Failing fast is the point: the caller gets an answer (a fallback, a 503)
                    // in microseconds and its worker is free for requests that can succeed.
                    self.rejected.fetch_add(1, Ordering::SeqCst);
                    return Err(Rejected);
                }
                // Leaves the queue when dropped: when the permit comes, or when this caller
                // gives up waiting (its future is dropped here, mid-await).
                let _queued = Count(&self.waiting);
                self.permits
                    .acquire()
                    .await
                    .expect("the semaphore is never closed")
            }
        };
        // The permit (and the in-flight count) live until the end of this function, i.e. until
        // `call` completes or this future is dropped: never `let _ = ...`, which drops at once.
        let (_running, now) = Count::enter(&self.in_flight);
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        let output = call.await;
        drop(permit);
        Ok(output)
    }
}

impl Bulkheads {
    /// The bulkhead of `dependency`: created on first use (with its limits, or the default),
    /// the same one on every later call, so every caller of a dependency shares its cap.
    pub fn get(&self, dependency: &str) -> Arc<Bulkhead> {
        let mut bulkheads = self.bulkheads.lock().expect("never poisoned");
        let bulkhead = bulkheads.entry(dependency.to_string()).or_insert_with(|| {
            let limits = self.overrides.get(dependency).copied();
            Arc::new(Bulkhead::new(limits.unwrap_or(self.default)))
        });
        Arc::clone(bulkhead)
    }
}

// ---- Given: constructors and stats -------------------------------------------------------

impl Bulkhead {
    pub fn new(limits: Limits) -> Self {
        assert!(
            limits.max_concurrent >= 1,
            "a bulkhead lets at least 1 call run"
        );
        Bulkhead {
            limits,
            permits: Semaphore::new(limits.max_concurrent),
            in_flight: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn stats(&self) -> Stats {
        Stats {
            in_flight: self.in_flight.load(Ordering::SeqCst),
            waiting: self.waiting.load(Ordering::SeqCst),
            peak_in_flight: self.peak_in_flight.load(Ordering::SeqCst),
            rejected: self.rejected.load(Ordering::SeqCst),
        }
    }
}

impl Bulkheads {
    pub fn new(default: Limits) -> Self {
        Bulkheads {
            default,
            overrides: HashMap::new(),
            bulkheads: Mutex::new(HashMap::new()),
        }
    }

    /// Gives `dependency` its own limits instead of the default.
    pub fn with_limits(mut self, dependency: &str, limits: Limits) -> Self {
        self.overrides.insert(dependency.to_string(), limits);
        self
    }
}

// ---- Lab --------------------------------------------------------------------------------------
// Real HTTP backends on 127.0.0.1: "fast" answers in FAST_MS, "slow" (a dependency in trouble) in
// SLOW_MS. A service with WORKERS request handlers serves a stream of requests, SLOW_SHARE of
// which need the slow dependency; the client gives up after a second. The same traffic runs
// twice, side by side: without bulkheads, and with yours.

/// The service's request handlers (a thread pool, a connection pool...).
const WORKERS: usize = 32;
/// Concurrent calls allowed to each dependency, and how many may queue for a slot.
const SLOW_LIMIT: usize = 8;
const FAST_LIMIT: usize = 24;
const QUEUE: usize = 0;
/// The dependencies' latencies.
const FAST_MS: u64 = 2;
const SLOW_MS: u64 = 400;
/// The share of requests that need "slow" (one request every 2 ms for a second).
const SLOW_SHARE: f64 = 0.2;

fn main() {
    let knobs = bulkheads::Knobs {
        workers: WORKERS,
        slow_limit: SLOW_LIMIT,
        fast_limit: FAST_LIMIT,
        queue: QUEUE,
        fast_ms: FAST_MS,
        slow_ms: SLOW_MS,
        arrival_every: Duration::from_millis(2),
        traffic: Duration::from_secs(1),
        slow_share: SLOW_SHARE,
        request_timeout: Duration::from_secs(1),
        seed: 7,
    };
    bulkheads::run(&knobs, |fast, slow| {
        Bulkheads::new(fast).with_limits("slow", slow)
    });
}

impl bulkheads::Guard for Bulkheads {
    fn run<'a>(
        &'a self,
        dependency: &'a str,
        call: bulkheads::Call<'a>,
    ) -> std::pin::Pin<Box<dyn Future<Output = Option<bulkheads::Verdict>> + Send + 'a>> {
        Box::pin(async move { self.get(dependency).run(call).await.ok() })
    }

    fn stats(&self, dependency: &str) -> Stats {
        self.get(dependency).stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use sdlings_kit::resilience::testing::{Gated, paused};
    use tokio::time::timeout;

    fn limits(max_concurrent: usize, max_waiting: usize) -> Limits {
        Limits {
            max_concurrent,
            max_waiting,
        }
    }

    /// Lets every spawned task run until it blocks. Time is paused: tokio advances it only when
    /// every task is idle, so when this sleep returns, nothing is left to do.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    /// A fake dependency whose calls run until the test releases them, one by one.
    type FakeDependency = Gated;

    type Call = tokio::task::JoinHandle<Result<usize, Rejected>>;

    /// Starts a task that calls `dependency` through `bulkhead`.
    fn spawn_call(bulkhead: &Arc<Bulkhead>, dependency: &Arc<FakeDependency>, id: usize) -> Call {
        let (bulkhead, dependency) = (Arc::clone(bulkhead), Arc::clone(dependency));
        tokio::spawn(async move { bulkhead.run(dependency.call(id)).await })
    }

    /// A call that must be rejected at once: no time may pass, and the call must not run.
    async fn assert_rejected_at_once(bulkhead: &Bulkhead, dependency: &FakeDependency, why: &str) {
        let started = dependency.started();
        let result = timeout(Duration::ZERO, bulkhead.run(dependency.call(99))).await;
        assert_eq!(
            dependency.started(),
            started,
            "{why}, yet the call was run: it must be rejected without calling the dependency"
        );
        assert_eq!(
            result,
            Ok(Err(Rejected)),
            "{why}: the call must be rejected at once (Ok(Err(Rejected))), not wait for a slot \
             (Err(Elapsed))"
        );
    }

    // --- behaviour ---

    #[tokio::test(start_paused = true)]
    async fn runs_the_call_and_returns_its_output() {
        let bulkhead = Bulkhead::new(limits(2, 0));
        assert_eq!(bulkhead.run(async { 42 }).await, Ok(42));
        assert_eq!(
            bulkhead.run(async { Err::<u8, &str>("boom") }).await,
            Ok(Err("boom")),
            "the call's own error is the caller's business: pass it through untouched"
        );
        assert_eq!(
            bulkhead.stats(),
            Stats {
                in_flight: 0,
                waiting: 0,
                peak_in_flight: 1,
                rejected: 0
            },
            "two calls, one after the other: at most 1 ever ran at once, none is running now"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn never_runs_more_than_max_concurrent_calls_at_once() {
        let bulkhead = Arc::new(Bulkhead::new(limits(3, 100)));
        let dependency = Gated::new();
        let calls: Vec<Call> = (0..10)
            .map(|id| spawn_call(&bulkhead, &dependency, id))
            .collect();
        settle().await;
        assert_eq!(
            dependency.running(),
            3,
            "10 calls arrive, max_concurrent = 3: exactly 3 may be running (more means the slot \
             is not held until the call completes: a permit or guard dropped too early, e.g. by \
             `let _ = ...`)"
        );
        assert_eq!(
            (bulkhead.stats().in_flight, bulkhead.stats().waiting),
            (3, 7),
            "stats: 3 calls in flight, 7 waiting"
        );
        for finished in 1..=7 {
            dependency.release(1);
            settle().await;
            assert_eq!(
                (dependency.started(), dependency.running()),
                (3 + finished, 3),
                "each call that finishes lets exactly one waiting call start, straight away (a \
                 waiter gets the freed slot at once: it waits in the semaphore's queue, it does \
                 not poll)"
            );
        }
        dependency.release(3);
        for (id, call) in calls.into_iter().enumerate() {
            assert_eq!(
                call.await.expect("no panic"),
                Ok(id),
                "every call ran in the end"
            );
        }
        assert_eq!(dependency.peak(), 3, "never more than 3 at once");
        let stats = bulkhead.stats();
        assert_eq!(
            (stats.in_flight, stats.waiting, stats.peak_in_flight),
            (0, 0, 3),
            "all done: nothing in flight or waiting, and the peak was 3"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_queue_the_call_beyond_the_limit_is_rejected_at_once() {
        let bulkhead = Arc::new(Bulkhead::new(limits(2, 0)));
        let dependency = Gated::new();
        let running = [0, 1].map(|id| spawn_call(&bulkhead, &dependency, id));
        settle().await;
        assert_eq!(dependency.running(), 2, "the first 2 calls run");
        assert_rejected_at_once(&bulkhead, &dependency, "2 of 2 slots taken, no queue").await;
        assert_rejected_at_once(&bulkhead, &dependency, "still full").await;
        assert_eq!(bulkhead.stats().rejected, 2, "stats: 2 calls rejected");
        dependency.release(2);
        for call in running {
            assert!(call.await.expect("no panic").is_ok());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_beyond_the_limit_wait_in_a_bounded_queue() {
        let bulkhead = Arc::new(Bulkhead::new(limits(2, 2)));
        let dependency = Gated::new();
        let calls: Vec<Call> = (0..4)
            .map(|id| spawn_call(&bulkhead, &dependency, id))
            .collect();
        settle().await;
        assert_eq!(dependency.running(), 2, "2 calls run");
        assert_eq!(
            bulkhead.stats().waiting,
            2,
            "the 2 others wait for a slot (max_waiting = 2), not rejected"
        );
        assert_rejected_at_once(
            &bulkhead,
            &dependency,
            "2 running and 2 waiting, max_waiting = 2: the queue is full (an unbounded queue \
             only moves the pile-up from the workers into the queue)",
        )
        .await;
        dependency.release(1);
        settle().await;
        assert_eq!(
            (dependency.started(), bulkhead.stats().waiting),
            (3, 1),
            "one call finished: the first waiting call runs, one still waits"
        );
        let late = spawn_call(&bulkhead, &dependency, 4);
        settle().await;
        assert_eq!(
            bulkhead.stats().waiting,
            2,
            "a place in the queue came free, so a new call waits instead of being rejected"
        );
        dependency.release(10);
        for (id, call) in calls.into_iter().chain([late]).enumerate() {
            assert_eq!(call.await.expect("no panic"), Ok(id));
        }
        assert_eq!(bulkhead.stats().rejected, 1);
    }

    // --- the slot always comes back ---

    #[tokio::test(start_paused = true)]
    async fn a_call_cancelled_while_running_gives_its_slot_back() {
        let bulkhead = Bulkhead::new(limits(1, 0));
        let dependency = Gated::new();
        // The caller's timeout fires while the call runs: its future is dropped mid-call.
        let cancelled = timeout(Duration::from_millis(50), bulkhead.run(dependency.call(0))).await;
        assert!(
            cancelled.is_err(),
            "the call never finished: the timeout fired"
        );
        assert_eq!(dependency.running(), 0);
        assert_eq!(
            bulkhead.stats().in_flight,
            0,
            "the cancelled call is no longer in flight (a counter decremented after `.await` \
             never runs when the future is dropped: use a guard whose Drop decrements it)"
        );
        assert_eq!(
            timeout(Duration::ZERO, bulkhead.run(async { 7 })).await,
            Ok(Ok(7)),
            "its slot came back: the next call runs at once. A leaked slot closes the bulkhead \
             a little more with every timeout, until it rejects everything"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_call_that_is_cancelled_leaves_the_queue() {
        let bulkhead = Arc::new(Bulkhead::new(limits(1, 1)));
        let dependency = Gated::new();
        let first = spawn_call(&bulkhead, &dependency, 0);
        settle().await;
        let gave_up = timeout(Duration::from_millis(50), bulkhead.run(dependency.call(1))).await;
        assert!(
            gave_up.is_err(),
            "the second call waited, then its caller gave up"
        );
        assert_eq!(
            bulkhead.stats().waiting,
            0,
            "the caller gave up: it is no longer waiting"
        );
        let third = spawn_call(&bulkhead, &dependency, 2);
        settle().await;
        assert_eq!(
            bulkhead.stats().waiting,
            1,
            "the queue's one place came free, so the third call waits rather than being rejected"
        );
        dependency.release(2);
        assert_eq!(first.await.expect("no panic"), Ok(0));
        assert_eq!(third.await.expect("no panic"), Ok(2));
        assert_eq!(dependency.started(), 2, "the call that gave up never ran");
        assert_eq!(bulkhead.stats().rejected, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_panics_gives_its_slot_back() {
        let bulkhead = Arc::new(Bulkhead::new(limits(1, 0)));
        let crashing = {
            let bulkhead = Arc::clone(&bulkhead);
            tokio::spawn(async move {
                bulkhead
                    .run(async { panic!("a bug in the client library (expected by this test)") })
                    .await
            })
        };
        assert!(crashing.await.is_err(), "the call panicked");
        assert_eq!(
            bulkhead.stats().in_flight,
            0,
            "the panicked call is no longer in flight"
        );
        assert_eq!(
            timeout(Duration::ZERO, bulkhead.run(async { 7 })).await,
            Ok(Ok(7)),
            "the panicked call's slot came back: the next call runs at once"
        );
    }

    // --- any limits, any sequence ---

    #[test]
    fn any_sequence_of_arrivals_completions_and_cancellations_matches_a_fifo_model() {
        sdlings_kit::property::for_seeds(150, |rng| {
            let (max_concurrent, max_waiting) = (rng.random_range(1..=3), rng.random_range(0..=3));
            let ops: Vec<u8> = (0..30).map(|_| rng.random_range(0..7)).collect();
            let picks: Vec<usize> = (0..30).map(|_| rng.random_range(0..100)).collect();
            paused(async {
                let bulkhead = Arc::new(Bulkhead::new(limits(max_concurrent, max_waiting)));
                let dependency = Gated::new();
                // The model: calls running (in the order they reached the dependency) and calls
                // waiting (in arrival order; the queue is first come, first served).
                let (mut running, mut waiting) = (Vec::<usize>::new(), Vec::<usize>::new());
                let (mut peak, mut rejected) = (0, 0_u64);
                let mut calls: Vec<Option<Call>> = Vec::new();
                let mut log = format!("limits({max_concurrent}, {max_waiting}):");
                for (op, pick) in ops.into_iter().zip(picks) {
                    match op {
                        0..=3 => {
                            let id = calls.len();
                            calls.push(Some(spawn_call(&bulkhead, &dependency, id)));
                            log += &format!(" call {id} arrives;");
                            if running.len() < max_concurrent {
                                running.push(id);
                            } else if waiting.len() < max_waiting {
                                waiting.push(id);
                            } else {
                                rejected += 1;
                            }
                        }
                        4 | 5 if !running.is_empty() => {
                            let id = running.remove(0);
                            log += &format!(" call {id} completes;");
                            dependency.release(1);
                            settle().await;
                            let call = calls[id].take().expect("not awaited yet");
                            assert_eq!(
                                call.await.expect("no panic"),
                                Ok(id),
                                "{log} the oldest running call was let through and must have \
                                 completed"
                            );
                        }
                        6 if !(running.is_empty() && waiting.is_empty()) => {
                            let queue: Vec<usize> =
                                running.iter().chain(&waiting).copied().collect();
                            let id = queue[pick % queue.len()];
                            log += &format!(" call {id} is cancelled by its caller;");
                            calls[id].take().expect("still pending").abort();
                            running.retain(|&c| c != id);
                            waiting.retain(|&c| c != id);
                        }
                        _ => continue,
                    }
                    // A freed slot goes to the oldest waiting call, at once.
                    while running.len() < max_concurrent && !waiting.is_empty() {
                        running.push(waiting.remove(0));
                    }
                    peak = peak.max(running.len());
                    settle().await;
                    assert_eq!(
                        dependency.running(),
                        running.len(),
                        "{log} calls running inside the dependency now (at most \
                         max_concurrent = {max_concurrent}; a freed slot is taken at once by the \
                         oldest waiting call)"
                    );
                    assert_eq!(
                        bulkhead.stats(),
                        Stats {
                            in_flight: running.len(),
                            waiting: waiting.len(),
                            peak_in_flight: peak,
                            rejected
                        },
                        "{log} the stats now. A cancelled call leaves (slot or queue place \
                         given back); peak_in_flight is the most ever running at once; rejected \
                         counts every call turned away"
                    );
                }
                dependency.release(1_000);
                for (id, call) in calls.into_iter().enumerate() {
                    if let Some(call) = call {
                        let result = call.await.expect("no panic");
                        assert!(
                            result == Ok(id) || result == Err(Rejected),
                            "{log} call {id} ended with {result:?}"
                        );
                    }
                }
            });
        });
    }

    // --- one bulkhead per dependency ---

    #[tokio::test(start_paused = true)]
    async fn a_full_bulkhead_does_not_affect_other_dependencies() {
        let bulkheads = Bulkheads::new(limits(1, 0));
        let slow = Gated::new();
        let stuck = spawn_call(&bulkheads.get("slow"), &slow, 0);
        settle().await;
        assert_rejected_at_once(&bulkheads.get("slow"), &slow, "\"slow\" is full").await;
        let fast = Gated::new();
        fast.release(1);
        assert_eq!(
            timeout(Duration::ZERO, bulkheads.get("fast").run(fast.call(1))).await,
            Ok(Ok(1)),
            "\"slow\" being full must not stop calls to \"fast\": each dependency has its own \
             bulkhead (one shared limit would let the slow dependency take every slot)"
        );
        slow.release(1);
        assert_eq!(stuck.await.expect("no panic"), Ok(0));
    }

    #[tokio::test(start_paused = true)]
    async fn every_caller_of_a_dependency_shares_its_bulkhead() {
        let bulkheads = Bulkheads::new(limits(2, 0));
        let a = bulkheads.get("payments");
        let b = bulkheads.get("payments");
        assert!(
            Arc::ptr_eq(&a, &b),
            "get(\"payments\") twice must give the same bulkhead: a new one per call caps nothing"
        );
        let dependency = Gated::new();
        let calls = [
            spawn_call(&a, &dependency, 0),
            spawn_call(&a, &dependency, 1),
        ];
        settle().await;
        assert_rejected_at_once(
            &bulkheads.get("payments"),
            &dependency,
            "2 calls to \"payments\" are running, through another handle to its bulkhead",
        )
        .await;
        dependency.release(2);
        for call in calls {
            assert!(call.await.expect("no panic").is_ok());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dependency_gets_its_own_limits_or_the_default() {
        let bulkheads = Bulkheads::new(limits(10, 5)).with_limits("slow", limits(2, 0));
        assert_eq!(bulkheads.get("slow").limits(), limits(2, 0));
        assert_eq!(
            bulkheads.get("fast").limits(),
            limits(10, 5),
            "no limits were set for \"fast\": it gets the default"
        );
        assert_eq!(bulkheads.get("slow").limits(), limits(2, 0));
    }
}
