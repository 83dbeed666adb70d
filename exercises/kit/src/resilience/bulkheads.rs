use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::RngExt;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::testing::Gated;

use crate::backend::{self, Backend, Behaviour};
use crate::lab::{Table, bar_chart, latency, millis, nearest_rank, percent};
use crate::workload::seeded_rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Calls allowed to run at the same time (at least 1).
    pub max_concurrent: usize,
    /// Calls allowed to wait for a slot when all are taken; 0 rejects at once when full.
    pub max_waiting: usize,
}

impl Limits {
    pub const fn new(max_concurrent: usize, max_waiting: usize) -> Limits {
        Limits {
            max_concurrent,
            max_waiting,
        }
    }
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

/// The counters behind a bulkhead's `Stats`: plain atomics, which the bulkhead keeps up to date.
#[derive(Debug, Default)]
pub struct Counters {
    pub in_flight: AtomicUsize,
    pub waiting: AtomicUsize,
    pub peak_in_flight: AtomicUsize,
    pub rejected: AtomicU64,
}

impl Counters {
    /// What they say right now.
    pub fn stats(&self) -> Stats {
        Stats {
            in_flight: self.in_flight.load(Ordering::SeqCst),
            waiting: self.waiting.load(Ordering::SeqCst),
            peak_in_flight: self.peak_in_flight.load(Ordering::SeqCst),
            rejected: self.rejected.load(Ordering::SeqCst),
        }
    }
}

// ---- Tests: a scripted run ------------------------------------------------------------------

/// One event of a scripted run (see `drive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The next call (numbered from 0 in order of arrival) is made through the bulkhead.
    Arrive,
    /// The dependency lets the oldest call running inside it finish.
    Complete,
    /// The caller of this call gives up: its task is aborted (its future dropped).
    Cancel(usize),
}

/// What a scripted run shows after one op: (calls that ever reached the dependency, calls running
/// inside it now, then the bulkhead's `Stats`: in_flight, waiting, peak_in_flight, rejected).
pub type Seen = (usize, usize, usize, usize, usize, u64);

/// Runs `script` on tokio's paused clock: each `Arrive` spawns call `i` to a `Gated` dependency
/// through `spawn(i, dependency)`. After each op, once every task has settled: what is `Seen`. At
/// the end, releases everything and returns each call's result (`None`: cancelled).
#[allow(clippy::type_complexity)]
pub async fn drive(
    script: &[Op],
    spawn: impl Fn(usize, &Arc<Gated>) -> JoinHandle<Result<usize, Rejected>>,
    stats: impl Fn() -> Stats,
) -> (Vec<Seen>, Vec<Option<Result<usize, Rejected>>>) {
    let dependency = Gated::new();
    let (mut calls, mut steps) = (Vec::new(), Vec::new());
    for &op in script {
        match op {
            Op::Arrive => calls.push(Some(spawn(calls.len(), &dependency))),
            Op::Complete => dependency.release(1),
            Op::Cancel(id) => calls[id].take().expect("cancelled once").abort(),
        }
        // Time is paused: tokio advances it only once every task is idle, so when this sleep
        // returns, every task has run as far as it can.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let Stats {
            in_flight,
            waiting,
            peak_in_flight,
            rejected,
        } = stats();
        let (started, running) = (dependency.started(), dependency.running());
        steps.push((
            started,
            running,
            in_flight,
            waiting,
            peak_in_flight,
            rejected,
        ));
    }
    dependency.release(calls.len());
    let mut results = Vec::new();
    for call in calls {
        results.push(match call {
            Some(call) => Some(call.await.expect("no panic")),
            None => None,
        });
    }
    (steps, results)
}

// ---- Lab --------------------------------------------------------------------------------------

/// A request every ARRIVAL_EVERY during TRAFFIC.
const ARRIVAL_EVERY: Duration = Duration::from_millis(2);
const TRAFFIC: Duration = Duration::from_secs(1);
/// The client gives up after this (time waiting for a worker included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
const SEED: u64 = 7;

/// A call to a dependency, as the lab makes it.
pub type Call<'a> = Pin<Box<dyn Future<Output = Verdict> + Send + 'a>>;
/// A call through a bulkhead, as the lab makes it: `None` if it was rejected.
pub type Guarded<'a> = Pin<Box<dyn Future<Output = Option<Verdict>> + Send + 'a>>;

/// What the lab needs from a set of bulkheads, one per dependency.
pub trait Guard: Send + Sync + 'static {
    /// Runs `call` through `dependency`'s bulkhead; `None` if it was rejected.
    fn run<'a>(&'a self, dependency: &'a str, call: Call<'a>) -> Guarded<'a>;
    fn stats(&self, dependency: &str) -> Stats;
}

pub struct Knobs {
    /// The service's request handlers (a thread pool, a connection pool...).
    pub workers: usize,
    /// Concurrent calls allowed to each dependency, and how many may queue for a slot.
    pub slow_limit: usize,
    pub fast_limit: usize,
    pub queue: usize,
    /// The dependencies' latencies.
    pub fast_ms: u64,
    pub slow_ms: u64,
    /// The share of requests that need "slow".
    pub slow_share: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dependency {
    Fast,
    Slow,
}

/// How a request ended, as the lab counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
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

async fn call_backend(addr: SocketAddr, in_flight: &InFlight, timeout: Duration) -> Verdict {
    let running = in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
    in_flight.peak.fetch_max(running, Ordering::SeqCst);
    let result = backend::get(addr, "/work", timeout).await;
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

async fn scenario<G: Guard>(k: &Knobs, bulkheads: Option<G>, plan: &[Dependency]) -> Run {
    let fast = Backend::start(
        "fast",
        Behaviour::Healthy {
            latency: Duration::from_millis(k.fast_ms),
        },
    );
    let slow = Backend::start(
        "slow",
        Behaviour::Healthy {
            latency: Duration::from_millis(k.slow_ms),
        },
    );
    let (fast, slow) = tokio::join!(fast, slow);
    let fast = fast.expect("start a backend on 127.0.0.1");
    let slow = slow.expect("start a backend on 127.0.0.1");
    let addrs = [fast.addr(), slow.addr()];
    let bulkheads = bulkheads.map(Arc::new);
    let workers = Arc::new(Semaphore::new(k.workers));
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
            bulkheads.clone(),
        );
        let timeout = REQUEST_TIMEOUT;
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
                let call = call_backend(addrs[index], &in_flight[index], timeout);
                let verdict = if let Some(bulkheads) = &bulkheads {
                    bulkheads
                        .run(name, Box::pin(call))
                        .await
                        .unwrap_or(Verdict::Rejected)
                } else {
                    call.await
                };
                busy.now.fetch_sub(1, Ordering::SeqCst);
                verdict
            };
            let verdict = tokio::time::timeout(timeout, handle)
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
    let stats = bulkheads
        .as_ref()
        .map(|b| [b.stats("fast"), b.stats("slow")]);
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

/// Runs the same traffic twice, side by side: without bulkheads, and through `make(fast
/// limits, slow limits)`.
pub fn run<G: Guard>(k: &Knobs, make: impl Fn(Limits, Limits) -> G) {
    let runtime = crate::lab::runtime();
    let mut rng = seeded_rng(SEED);
    let requests = (TRAFFIC.as_nanos() / ARRIVAL_EVERY.as_nanos()) as usize;
    let limits = |max_concurrent| Limits {
        max_concurrent,
        max_waiting: k.queue,
    };
    let guarded = make(limits(k.fast_limit), limits(k.slow_limit));
    let plan: Vec<Dependency> = (0..requests)
        .map(|_| {
            if rng.random_bool(k.slow_share) {
                Dependency::Slow
            } else {
                Dependency::Fast
            }
        })
        .collect();
    runtime.block_on(async {
        println!(
            "A service with {} workers gets a request every {:?} for {}; {:.0}% of them call \
             \"slow\" ({} ms), the rest \"fast\" ({} ms).\nBulkheads: slow {}, fast {} concurrent \
             calls, queue {}. Clients give up after {}.\n",
            k.workers,
            ARRIVAL_EVERY,
            millis(TRAFFIC),
            k.slow_share * 100.0,
            k.slow_ms,
            k.fast_ms,
            k.slow_limit,
            k.fast_limit,
            k.queue,
            millis(REQUEST_TIMEOUT),
        );
        let (plain, guarded) = tokio::join!(
            scenario::<G>(k, None, &plan),
            scenario(k, Some(guarded), &plan)
        );
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
            "\npeak busy workers: {} without bulkheads, {} with (of {})",
            plain.peak_workers, guarded.peak_workers, k.workers
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
