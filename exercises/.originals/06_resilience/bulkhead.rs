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
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngExt;
use sdlings_kit::backend::{self, Backend, Behaviour};
use sdlings_kit::lab::{Table, bar_chart, latency, millis, nearest_rank, percent};
use sdlings_kit::workload::seeded_rng;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Calls allowed to run at the same time (at least 1).
    pub max_concurrent: usize,
    /// Calls allowed to wait for a slot when all are taken; 0 rejects at once when full.
    pub max_waiting: usize,
}

/// The bulkhead was full (every slot taken, and the queue too): the call was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected;

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bulkhead full: call rejected")
    }
}

impl std::error::Error for Rejected {}

/// What a dashboard shows for one bulkhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Calls running right now.
    pub in_flight: usize,
    /// Calls waiting for a slot right now.
    pub waiting: usize,
    /// The most calls that ever ran at the same time.
    pub peak_in_flight: usize,
    /// Calls rejected so far.
    pub rejected: u64,
}

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

/// A bulkhead per dependency name, created on first use with that dependency's limits.
pub struct Bulkheads {
    default: Limits,
    /// Limits for particular dependencies; the others get `default`.
    overrides: HashMap<String, Limits>,
    bulkheads: Mutex<HashMap<String, Arc<Bulkhead>>>,
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

// ---- Lab --------------------------------------------------------------------------------------
// Real HTTP backends on 127.0.0.1: "fast" answers in FAST_MS, "slow" (a dependency in trouble) in
// SLOW_MS. A service with WORKERS request handlers serves a stream of requests, SLOW_SHARE of
// which need the slow dependency. A request waits for a free worker, then makes its call; the
// client gives up after REQUEST_TIMEOUT. The same traffic runs twice, side by side: without
// bulkheads, and with yours (the call goes through `bulkheads.get(dependency).run(...)`).

/// The service's request handlers (a thread pool, a connection pool...).
const WORKERS: usize = 32;
/// Concurrent calls allowed to each dependency, and how many may queue for a slot.
const SLOW_LIMIT: usize = 8;
const FAST_LIMIT: usize = 24;
const QUEUE: usize = 0;
/// The dependencies' latencies.
const FAST_MS: u64 = 2;
const SLOW_MS: u64 = 400;
/// A request every ARRIVAL_EVERY during TRAFFIC; SLOW_SHARE of them need "slow".
const ARRIVAL_EVERY: Duration = Duration::from_millis(2);
const TRAFFIC: Duration = Duration::from_millis(1000);
const SLOW_SHARE: f64 = 0.2;
/// The client gives up after this (time waiting for a worker included).
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
const SEED: u64 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dependency {
    Fast,
    Slow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    /// Turned away by the bulkhead: a fast failure (the service answers with a fallback).
    Rejected,
    /// The client gave up: no worker in time, or the call took too long.
    TimedOut,
    /// The backend answered badly or not at all.
    Failed,
}

struct Sample {
    dependency: Dependency,
    verdict: Verdict,
    /// From arrival to answer, as the client sees it (queueing for a worker included).
    latency: Duration,
}

/// Calls in flight to one backend right now, and the most there ever were (measured by the lab,
/// the same way with or without bulkheads).
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
}

async fn call_backend(addr: SocketAddr, in_flight: &InFlight) -> Verdict {
    let running = in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
    in_flight.peak.fetch_max(running, Ordering::SeqCst);
    let result = backend::get(addr, "/work", REQUEST_TIMEOUT).await;
    in_flight.now.fetch_sub(1, Ordering::SeqCst);
    match result {
        Ok(response) if response.status == 200 => Verdict::Ok,
        _ => Verdict::Failed,
    }
}

struct Run {
    samples: Vec<Sample>,
    peak: [usize; 2],
    peak_workers: usize,
    stats: Option<[Stats; 2]>,
}

async fn scenario(with_bulkheads: bool, plan: &[Dependency]) -> Run {
    let fast = Backend::start(
        "fast",
        Behaviour::Healthy {
            latency: Duration::from_millis(FAST_MS),
        },
    );
    let slow = Backend::start(
        "slow",
        Behaviour::Healthy {
            latency: Duration::from_millis(SLOW_MS),
        },
    );
    let (fast, slow) = tokio::join!(fast, slow);
    let fast = fast.expect("start a backend on 127.0.0.1");
    let slow = slow.expect("start a backend on 127.0.0.1");
    let addrs = [fast.addr(), slow.addr()];
    let bulkheads = Arc::new(
        Bulkheads::new(Limits {
            max_concurrent: FAST_LIMIT,
            max_waiting: QUEUE,
        })
        .with_limits(
            "slow",
            Limits {
                max_concurrent: SLOW_LIMIT,
                max_waiting: QUEUE,
            },
        ),
    );
    let workers = Arc::new(Semaphore::new(WORKERS));
    let busy = Arc::new(InFlight::default());
    let in_flight = Arc::new([InFlight::default(), InFlight::default()]);
    let started = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for (i, &dependency) in plan.iter().enumerate() {
        tokio::time::sleep_until((started + ARRIVAL_EVERY * i as u32).into()).await;
        let (workers, busy, in_flight, bulkheads) = (
            Arc::clone(&workers),
            Arc::clone(&busy),
            Arc::clone(&in_flight),
            Arc::clone(&bulkheads),
        );
        requests.spawn(async move {
            let arrived = Instant::now();
            let (index, name) = match dependency {
                Dependency::Fast => (0, "fast"),
                Dependency::Slow => (1, "slow"),
            };
            let handle = async {
                let _worker = workers.acquire().await.expect("never closed");
                let now = busy.now.fetch_add(1, Ordering::SeqCst) + 1;
                busy.peak.fetch_max(now, Ordering::SeqCst);
                let call = call_backend(addrs[index], &in_flight[index]);
                let verdict = if with_bulkheads {
                    bulkheads
                        .get(name)
                        .run(call)
                        .await
                        .unwrap_or(Verdict::Rejected)
                } else {
                    call.await
                };
                busy.now.fetch_sub(1, Ordering::SeqCst);
                verdict
            };
            let verdict = tokio::time::timeout(REQUEST_TIMEOUT, handle)
                .await
                .unwrap_or(Verdict::TimedOut);
            Sample {
                dependency,
                verdict,
                latency: arrived.elapsed(),
            }
        });
    }
    let samples = requests.join_all().await;
    let stats =
        with_bulkheads.then(|| [bulkheads.get("fast").stats(), bulkheads.get("slow").stats()]);
    Run {
        samples,
        peak: [
            in_flight[0].peak.load(Ordering::SeqCst),
            in_flight[1].peak.load(Ordering::SeqCst),
        ],
        peak_workers: busy.peak.load(Ordering::SeqCst),
        stats,
    }
}

fn main() {
    let runtime = sdlings_kit::lab::runtime();
    let mut rng = seeded_rng(SEED);
    let requests = (TRAFFIC.as_nanos() / ARRIVAL_EVERY.as_nanos()) as usize;
    let plan: Vec<Dependency> = (0..requests)
        .map(|_| {
            if rng.random_bool(SLOW_SHARE) {
                Dependency::Slow
            } else {
                Dependency::Fast
            }
        })
        .collect();
    runtime.block_on(async {
        println!(
            "A service with {WORKERS} workers gets a request every {ARRIVAL_EVERY:?} for {}; \
             {:.0}% of them call \"slow\" ({SLOW_MS} ms), the rest \"fast\" ({FAST_MS} ms).\n\
             Bulkheads: slow {SLOW_LIMIT}, fast {FAST_LIMIT} concurrent calls, queue {QUEUE}. \
             Clients give up after {}.\n",
            millis(TRAFFIC),
            SLOW_SHARE * 100.0,
            millis(REQUEST_TIMEOUT),
        );
        let (plain, guarded) = tokio::join!(scenario(false, &plan), scenario(true, &plan));
        let mut table = Table::new(&[
            "run / dependency",
            "requests",
            "ok",
            "rejected",
            "timed out",
            "failed",
            "p50",
            "p99",
            "peak calls in flight",
        ]);
        let mut chart = Vec::new();
        for (name, run) in [("no bulkheads", &plain), ("bulkheads", &guarded)] {
            for (index, dependency) in [(0, Dependency::Fast), (1, Dependency::Slow)] {
                let mine: Vec<&Sample> = run
                    .samples
                    .iter()
                    .filter(|s| s.dependency == dependency)
                    .collect();
                let count = |v: Verdict| mine.iter().filter(|s| s.verdict == v).count();
                let mut latencies: Vec<Duration> = mine.iter().map(|s| s.latency).collect();
                latencies.sort_unstable();
                let quantile = |q| nearest_rank(&latencies, q).unwrap_or_default();
                let (p50, p99) = (quantile(0.5), quantile(0.99));
                table.row(&[
                    format!("{name} / {dependency:?}").to_lowercase(),
                    mine.len().to_string(),
                    format!(
                        "{} ({})",
                        count(Verdict::Ok),
                        percent(count(Verdict::Ok) as u64, mine.len() as u64)
                    ),
                    count(Verdict::Rejected).to_string(),
                    count(Verdict::TimedOut).to_string(),
                    count(Verdict::Failed).to_string(),
                    latency(p50),
                    latency(p99),
                    run.peak[index].to_string(),
                ]);
                if dependency == Dependency::Fast {
                    let in_ms = |d: Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
                    chart.push((format!("{name}: p50"), in_ms(p50)));
                    chart.push((format!("{name}: p99"), in_ms(p99)));
                }
            }
        }
        table.print();
        println!(
            "\npeak busy workers: {} without bulkheads, {} with (of {WORKERS})",
            plain.peak_workers, guarded.peak_workers
        );
        if let Some([fast, slow]) = guarded.stats {
            println!("your bulkheads' stats: fast {fast:?}\n                       slow {slow:?}");
        }
        println!(
            "\nlatency of the requests to \"fast\" (ms), as their clients see it\n{}",
            bar_chart(&chart, 40)
        );
        println!(
            "\nWithout bulkheads every call to \"slow\" gets through, slowly, and holds a worker \
             while it does:\nthe requests to \"fast\" wait in line behind them. With bulkheads, \
             \"slow\" serves what its SLOW_LIMIT\nslots can and turns the rest away in \
             microseconds (the service answers with a fallback),\nand \"fast\" never notices."
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;
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

    /// A fake dependency whose calls run until the test releases them, one by one. It measures
    /// how many calls are inside it at once, independently of the bulkhead's own stats.
    struct FakeDependency {
        started: AtomicUsize,
        running: AtomicUsize,
        peak: AtomicUsize,
        gate: Semaphore,
    }

    /// Counts a call out of `running` however it ends (the test may cancel it).
    struct Leaving<'a>(&'a AtomicUsize);

    impl Drop for Leaving<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl FakeDependency {
        fn new() -> Arc<Self> {
            Arc::new(FakeDependency {
                started: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                gate: Semaphore::new(0),
            })
        }

        async fn call(&self, id: usize) -> usize {
            self.started.fetch_add(1, Ordering::SeqCst);
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            let _leaving = Leaving(&self.running);
            self.gate.acquire().await.expect("never closed").forget();
            id
        }

        /// Lets `n` running calls finish.
        fn release(&self, n: usize) {
            self.gate.add_permits(n);
        }

        fn started(&self) -> usize {
            self.started.load(Ordering::SeqCst)
        }

        fn running(&self) -> usize {
            self.running.load(Ordering::SeqCst)
        }
    }

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
        let dependency = FakeDependency::new();
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
        assert_eq!(
            dependency.peak.load(Ordering::SeqCst),
            3,
            "never more than 3 at once"
        );
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
        let dependency = FakeDependency::new();
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
        let dependency = FakeDependency::new();
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
        let dependency = FakeDependency::new();
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
        let dependency = FakeDependency::new();
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

    // --- one bulkhead per dependency ---

    #[tokio::test(start_paused = true)]
    async fn a_full_bulkhead_does_not_affect_other_dependencies() {
        let bulkheads = Bulkheads::new(limits(1, 0));
        let slow = FakeDependency::new();
        let stuck = spawn_call(&bulkheads.get("slow"), &slow, 0);
        settle().await;
        assert_rejected_at_once(&bulkheads.get("slow"), &slow, "\"slow\" is full").await;
        let fast = FakeDependency::new();
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
        let dependency = FakeDependency::new();
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
