// Bulkhead — cap the concurrency of each dependency, so one slow dependency cannot sink the ship.
//
// A service has a fixed number of workers (threads, connections, memory). When one dependency
// turns slow, the requests that call it hold their workers as long as it takes, and soon every
// worker waits on it: requests that never touch it time out too. A bulkhead, like a ship's
// watertight compartments, caps each dependency's concurrent calls: a slow one fills its own
// compartment and is rejected at once, while everything else keeps its workers.
//
// Build `Bulkhead::run`: run the call if fewer than `max_concurrent` are running, else wait for a
// slot if fewer than `max_waiting` are waiting (0: no queue), else `Rejected` at once without
// running it. A slot is held until the call completes and comes back however it ends: done,
// panicked, or cancelled (its future dropped by a timeout); a cancelled waiter leaves the queue.
// Keep the `Stats` up to date. Then `Bulkheads::get`: one bulkhead per dependency name.
//
// Real systems: Hystrix's thread-pool and semaphore isolation, resilience4j's Bulkhead, Envoy's
// per-cluster max_requests / max_pending_requests. Lab (real sockets): a service with WORKERS
// workers calls a fast and a slow backend, without bulkheads (the slow one takes every worker
// and the fast requests' p99 explodes) and with yours. Turn SLOW_MS up, SLOW_LIMIT down or
// WORKERS up and compare.

use std::collections::HashMap;
use std::future::Future;
#[allow(unused_imports)] // yours to use
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sdlings_kit::resilience::bulkheads::{self, Counters, Limits, Rejected, Stats};
use tokio::sync::Semaphore;

/// Caps the concurrent calls to one dependency.
pub struct Bulkhead {
    limits: Limits,
    /// One permit per call allowed to run: `max_concurrent` of them. tokio's semaphore is fair
    /// (first come, first served) and hands a released permit straight to the oldest waiter.
    permits: Semaphore,
    /// The atomics behind `stats()` (in flight, waiting, peak, rejected), kept up to date by `run`.
    counters: Counters,
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

impl Bulkhead {
    /// Runs `call` if a slot is free, waits for one if the queue has room, or returns `Rejected`
    /// at once (without running `call`). The slot is held until `call` completes, and comes back
    /// however it ends (returned, panicked, or dropped by the caller).
    pub async fn run<F: Future>(&self, call: F) -> Result<F::Output, Rejected> {
        todo!("run the call within the limits, or reject it at once")
    }
}

impl Bulkheads {
    /// The bulkhead of `dependency`: created on first use (with its limits, or the default),
    /// the same one on every later call, so every caller of a dependency shares its cap.
    pub fn get(&self, dependency: &str) -> Arc<Bulkhead> {
        todo!("the bulkhead of {dependency:?}")
    }
}

// ---- Given: constructors and stats -------------------------------------------------------

impl Bulkhead {
    pub fn new(limits: Limits) -> Self {
        assert!(limits.max_concurrent >= 1, "at least 1 call must run");
        Bulkhead {
            limits,
            permits: Semaphore::new(limits.max_concurrent),
            counters: Counters::default(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn stats(&self) -> Stats {
        self.counters.stats()
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

// ---- Lab: real HTTP backends on localhost (see the header) ---------------------------------

/// The service's request handlers (a thread pool, a connection pool...).
const WORKERS: usize = 32;
/// Concurrent calls allowed to each dependency, and how many may queue for a slot.
const SLOW_LIMIT: usize = 8;
const FAST_LIMIT: usize = 24;
const QUEUE: usize = 0;
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
        slow_share: SLOW_SHARE,
    };
    bulkheads::run(&knobs, |fast, slow| {
        Bulkheads::new(fast).with_limits("slow", slow)
    });
}

impl bulkheads::Guard for Bulkheads {
    fn run<'a>(&'a self, dependency: &'a str, call: bulkheads::Call<'a>) -> bulkheads::Guarded<'a> {
        Box::pin(async move { self.get(dependency).run(call).await.ok() })
    }

    fn stats(&self, dependency: &str) -> Stats {
        self.get(dependency).stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkheads::{Op, Op::*, drive};
    use rand::RngExt;
    use sdlings_kit::resilience::testing::{Gated, paused};
    use std::time::Duration;
    use tokio::time::timeout;

    type Call = tokio::task::JoinHandle<Result<usize, Rejected>>;

    /// Starts a task that calls `dependency` (released by the test, first come first served).
    fn spawn_call(bulkhead: &Arc<Bulkhead>, dependency: &Arc<Gated>, id: usize) -> Call {
        let (bulkhead, dependency) = (Arc::clone(bulkhead), Arc::clone(dependency));
        tokio::spawn(async move { bulkhead.run(dependency.call(id)).await })
    }

    // --- behaviour ---

    #[tokio::test(start_paused = true)]
    async fn runs_the_call_and_returns_its_output() {
        let bulkhead = Bulkhead::new(Limits::new(2, 0));
        assert_eq!(bulkhead.run(async { 42 }).await, Ok(42));
        assert_eq!(
            bulkhead.run(async { Err::<u8, &str>("boom") }).await,
            Ok(Err("boom")),
            "the call's own error is the caller's business: pass it through untouched"
        );
        assert_eq!(
            bulkhead.stats(),
            Stats {
                peak_in_flight: 1,
                ..Stats::default()
            },
            "two calls, one after the other: at most 1 ever ran at once, none is running now"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn calls_beyond_the_limit_wait_in_a_bounded_queue_and_the_rest_are_rejected_at_once() {
        // Limits::new(2, 1). After each op: (calls that ever reached the dependency, running
        // inside it, then the stats: in_flight, waiting, peak_in_flight, rejected).
        #[rustfmt::skip]
        let timeline = [
            (Arrive, (1, 1, 1, 0, 1, 0), "call 0 runs"),
            (Arrive, (2, 2, 2, 0, 2, 0), "call 1 runs too: both slots are taken, each held until \
                                          its call completes (not dropped early by `let _ = ...`)"),
            (Arrive, (2, 2, 2, 1, 2, 0), "call 2 waits for a slot in the queue (max_waiting = 1)"),
            (Arrive, (2, 2, 2, 1, 2, 1), "call 3 is rejected at once without reaching the \
                                          dependency: the queue is full (an unbounded queue only \
                                          moves the pile-up from the workers into the queue)"),
            (Cancel(2), (2, 2, 2, 0, 2, 1), "call 2 gives up waiting: it leaves the queue"),
            (Arrive, (2, 2, 2, 1, 2, 1), "call 4 takes the queue place that came free"),
            (Complete, (3, 2, 2, 0, 2, 1), "call 0 completes: its slot goes to the waiting call 4 \
                                            at once (it queues in the semaphore, no polling)"),
            (Cancel(1), (3, 1, 1, 0, 2, 1), "call 1's caller gives up while it runs: slot back"),
            (Complete, (3, 0, 0, 0, 2, 1), "call 4 completes: all done, and the peak stays 2"),
        ];
        let script: Vec<Op> = timeline.iter().map(|&(op, ..)| op).collect();
        let bulkhead = Arc::new(Bulkhead::new(Limits::new(2, 1)));
        let spawn = |id, dependency: &Arc<Gated>| spawn_call(&bulkhead, dependency, id);
        let (seen, results) = drive(&script, spawn, || bulkhead.stats()).await;
        for ((op, expected, what), seen) in timeline.into_iter().zip(seen) {
            assert_eq!(seen, expected, "after {op:?}: {what}");
        }
        let calls = [Some(Ok(0)), None, None, Some(Err(Rejected)), Some(Ok(4))];
        assert_eq!(results, calls, "each call's result (None: cancelled)");
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_times_out_or_panics_gives_its_slot_back() {
        let bulkhead = Arc::new(Bulkhead::new(Limits::new(1, 1)));
        let dependency = Gated::new();
        // The caller's timeout fires while the call runs: its future is dropped mid-call.
        let cancelled = timeout(Duration::from_millis(50), bulkhead.run(dependency.call(0))).await;
        assert!(cancelled.is_err(), "the caller's timeout fired mid-call");
        assert_eq!(
            bulkhead.stats().in_flight,
            0,
            "the cancelled call is no longer in flight (a counter decremented after `.await` \
             never runs when the future is dropped: use a guard whose Drop decrements it)"
        );
        let bug = "a bug in the client library (expected by this test)";
        let crashing = Arc::clone(&bulkhead);
        let crashed = tokio::spawn(async move { crashing.run(async { panic!("{bug}") }).await });
        let crashed = timeout(Duration::from_secs(1), crashed).await;
        assert!(
            matches!(crashed, Ok(Err(_))),
            "the cancelled call's slot came back, so the next call ran at once (and panicked): a \
             leaked slot closes the bulkhead a little more with every timeout"
        );
        assert_eq!(bulkhead.stats().in_flight, 0, "the panicked call left");
        assert_eq!(
            timeout(Duration::ZERO, bulkhead.run(async { 7 })).await,
            Ok(Ok(7)),
            "the panicked call's slot came back too: the next call runs at once"
        );
    }

    // --- any limits, any sequence ---

    #[test]
    fn any_sequence_of_arrivals_completions_and_cancellations_matches_a_fifo_model() {
        sdlings_kit::property::for_seeds(150, |rng| {
            let (max_concurrent, max_waiting) = (rng.random_range(1..=3), rng.random_range(0..=3));
            // The model: calls running (in the order they reached the dependency) and waiting
            // (in arrival order: first come, first served); after each op, what must be seen.
            let (mut running, mut waiting) = (Vec::<usize>::new(), Vec::<usize>::new());
            let (mut started, mut peak, mut rejected, mut results) = (0, 0, 0, Vec::new());
            let (mut script, mut expected) = (Vec::new(), Vec::new());
            for _ in 0..30 {
                match rng.random_range(0..7) {
                    0..=3 => {
                        let id = results.len();
                        results.push(Some(Ok(id)));
                        if running.len() < max_concurrent {
                            running.push(id);
                            started += 1;
                        } else if waiting.len() < max_waiting {
                            waiting.push(id);
                        } else {
                            rejected += 1;
                            results[id] = Some(Err(Rejected));
                        }
                        script.push(Arrive);
                    }
                    4 | 5 if !running.is_empty() => {
                        running.remove(0);
                        script.push(Complete);
                    }
                    6 if !(running.is_empty() && waiting.is_empty()) => {
                        let queue: Vec<usize> = running.iter().chain(&waiting).copied().collect();
                        let id = queue[rng.random_range(0..queue.len())];
                        running.retain(|&c| c != id);
                        waiting.retain(|&c| c != id);
                        results[id] = None;
                        script.push(Cancel(id));
                    }
                    _ => continue,
                }
                // A freed slot goes to the oldest waiting call, at once.
                while running.len() < max_concurrent && !waiting.is_empty() {
                    running.push(waiting.remove(0));
                    started += 1;
                }
                peak = peak.max(running.len());
                let now = running.len();
                expected.push((started, now, now, waiting.len(), peak, rejected));
            }
            paused(async {
                let bulkhead = Arc::new(Bulkhead::new(Limits::new(max_concurrent, max_waiting)));
                let spawn = |id, dependency: &Arc<Gated>| spawn_call(&bulkhead, dependency, id);
                let (seen, got) = drive(&script, spawn, || bulkhead.stats()).await;
                for (i, (seen, expected)) in seen.iter().zip(&expected).enumerate() {
                    assert_eq!(
                        seen,
                        expected,
                        "max_concurrent {max_concurrent}, max_waiting {max_waiting}, after \
                         {:?}: (calls that reached the dependency, running inside it, in_flight, \
                         waiting, peak_in_flight, rejected). At most max_concurrent run; a freed \
                         slot goes at once to the oldest waiting call; a cancelled call gives back \
                         its slot or queue place; a rejected call never reaches the dependency",
                        &script[..=i]
                    );
                }
                assert_eq!(got, results, "{script:?}: the results (None: cancelled)");
            });
        });
    }

    // --- one bulkhead per dependency ---

    #[tokio::test(start_paused = true)]
    async fn each_dependency_has_one_bulkhead_shared_by_its_callers_with_its_own_limits() {
        let bulkheads = Bulkheads::new(Limits::new(1, 0)).with_limits("search", Limits::new(10, 5));
        assert!(
            Arc::ptr_eq(&bulkheads.get("slow"), &bulkheads.get("slow")),
            "get(\"slow\") twice must give the same bulkhead: a new one per call caps nothing"
        );
        let limits = [
            bulkheads.get("slow").limits(),
            bulkheads.get("search").limits(),
        ];
        assert_eq!(
            limits,
            [Limits::new(1, 0), Limits::new(10, 5)],
            "\"search\" was given its own limits; \"slow\" gets the default"
        );
        let slow = Gated::new();
        let stuck = spawn_call(&bulkheads.get("slow"), &slow, 0);
        tokio::time::sleep(Duration::from_millis(1)).await; // paused time: the call has started
        assert_eq!(
            timeout(Duration::ZERO, bulkheads.get("slow").run(slow.call(1))).await,
            Ok(Err(Rejected)),
            "\"slow\" is full (1 call running, no queue), seen through another handle to its \
             bulkhead: reject at once"
        );
        assert_eq!(
            timeout(Duration::ZERO, bulkheads.get("fast").run(async { 2 })).await,
            Ok(Ok(2)),
            "\"slow\" being full must not stop calls to \"fast\": each dependency has its own \
             bulkhead (one shared limit would let the slow dependency take every slot)"
        );
        slow.release(1);
        assert_eq!(stuck.await.expect("no panic"), Ok(0));
        assert_eq!(slow.started(), 1, "the rejected call never reached it");
    }
}
