use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use tokio::time::Instant;

use crate::backend::{self, Backend, Behaviour};
use crate::lab::{Table, bar_chart, percent, whole_millis};
use crate::workload::seeded_rng;

/// Why a call failed, as the backend client sees it (the exercise maps it to its `CallError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Status(u16),
    TimedOut,
    ConnectionFailed,
}

/// One call to the backend, made again on every retry.
pub type Op = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>> + Send>;

/// How one request ended.
#[derive(Debug, Clone, Copy)]
pub struct Attempted {
    pub succeeded: bool,
    pub out_of_budget: bool,
    /// The total time slept between attempts.
    pub waited: Duration,
}

/// The strategies the lab compares (the exercise builds each from its knobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    NoRetries,
    AtOnce,
    NoJitter,
    FullJitter,
    FullJitterAndBudget,
}

/// A retry strategy: runs one request's `op` with the learner's `retry` (its own rng seed).
pub trait Strategy: Send + Sync + 'static {
    fn run(&self, seed: u64, op: Op) -> Pin<Box<dyn Future<Output = Attempted> + Send + '_>>;
}

pub struct Knobs {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
    /// Retries allowed per 100 requests, and the retries a client can save up.
    pub budget_percent: u32,
    pub budget_reserve: u32,
    /// The share of time the backend answers 503 outside the outage (patches of flap_every).
    pub failure_rate: f64,
    pub flap_every: Duration,
    pub requests: usize,
    pub request_every: Duration,
    pub outage_from: Duration,
    pub outage_until: Duration,
    /// Part 2: clients sending at the same instant, while the backend restarts for this long.
    pub burst: usize,
    pub burst_restart: Duration,
    /// Width of a slot of part 2's chart.
    pub slot: Duration,
    pub call_timeout: Duration,
    pub seed: u64,
}

async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    let handles: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    // Poll them all together: each run has its own backend and clock-driven schedule.
    let mut handles: Vec<Option<Pin<Box<F>>>> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..handles.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, slot) in handles.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.expect("every run finished")));
    out
}

/// One attempt: when it was sent (time since `start`) and whether it was a retry.
type Attempt = (Duration, bool);

/// One call to the backend, logged so the lab can count the load per time slot.
async fn call(
    addr: SocketAddr,
    start: Instant,
    retry: bool,
    log: Arc<Mutex<Vec<Attempt>>>,
    timeout: Duration,
) -> Result<(), Failure> {
    log.lock()
        .expect("not poisoned")
        .push((start.elapsed(), retry));
    match backend::get(addr, "/work", timeout).await {
        Ok(response) if response.status == 200 => Ok(()),
        Ok(response) => Err(Failure::Status(response.status)),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(Failure::TimedOut),
        Err(_) => Err(Failure::ConnectionFailed),
    }
}

struct Run {
    /// Per request, in arrival order: the outcome and the request's latency.
    outcomes: Vec<(Attempted, Duration)>,
    attempts: Vec<Attempt>,
}

/// Sends `arrivals.len()` requests (the i-th at `arrivals[i]` after start) through `retry`.
async fn run_one(
    k: &Knobs,
    addr: SocketAddr,
    strategy: Box<dyn Strategy>,
    arrivals: Vec<Duration>,
    start: Instant,
) -> Run {
    let log = Arc::new(Mutex::new(Vec::new()));
    let strategy: Arc<dyn Strategy> = Arc::from(strategy);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, at) in arrivals.into_iter().enumerate() {
        let (log, strategy, timeout, seed) = (
            Arc::clone(&log),
            Arc::clone(&strategy),
            k.call_timeout,
            k.seed,
        );
        tasks.spawn(async move {
            tokio::time::sleep_until(start + at).await;
            let began = Instant::now();
            let mut tries = 0;
            let op: Op = Box::new(move || {
                tries += 1;
                Box::pin(call(addr, start, tries > 1, Arc::clone(&log), timeout))
            });
            let outcome = strategy.run(seed + i as u64, op).await;
            (i, outcome, began.elapsed())
        });
    }
    // join_all gives completion order: put the outcomes back in the order the requests arrived.
    let mut finished = tasks.join_all().await;
    finished.sort_by_key(|(i, _, _)| *i);
    let outcomes = finished.into_iter().map(|(_, o, l)| (o, l)).collect();
    let attempts = log.lock().expect("not poisoned").clone();
    Run { outcomes, attempts }
}

/// Plays the backend's schedule: 503 during the outage and in a share of the flaky patches.
async fn play_schedule(
    backend: Arc<Backend>,
    schedule: Vec<bool>,
    start: Instant,
    flap_every: Duration,
) {
    const LATENCY: Duration = Duration::from_millis(1);
    for (i, failing) in schedule.into_iter().enumerate() {
        tokio::time::sleep_until(start + flap_every * i as u32).await;
        backend.set_behaviour(if failing {
            Behaviour::Failing { latency: LATENCY }
        } else {
            Behaviour::Healthy { latency: LATENCY }
        });
    }
    backend.set_behaviour(Behaviour::Healthy { latency: LATENCY });
}

fn in_outage(k: &Knobs, t: Duration) -> bool {
    t >= k.outage_from && t < k.outage_until
}

/// Retries sent per slot.
fn retries_per_slot(attempts: &[Attempt], slots: usize, slot_len: Duration) -> Vec<f64> {
    let mut counts = vec![0.0; slots];
    for (t, _) in attempts.iter().filter(|(_, retry)| *retry) {
        let slot = (t.as_nanos() / slot_len.as_nanos()) as usize;
        if slot < slots {
            counts[slot] += 1.0;
        }
    }
    counts
}

/// Runs both parts: four strategies against a flaky backend with an outage, then a synchronised
/// burst without and with jitter. `make` builds a fresh strategy (and budget) for each run.
pub fn run(k: &Knobs, make: impl Fn(Which) -> Box<dyn Strategy>) {
    const LATENCY: Duration = Duration::from_millis(1);
    let runtime = crate::lab::runtime();
    runtime.block_on(async {
        let wall = std::time::Instant::now();
        let strategies = [
            ("no retries", Which::NoRetries),
            ("retry at once", Which::AtOnce),
            ("backoff + full jitter", Which::FullJitter),
            ("full jitter + budget", Which::FullJitterAndBudget),
        ];

        // Part 1. The same schedule of flaky patches and outage for every strategy.
        let mut rng = seeded_rng(k.seed);
        let span = k.request_every * k.requests as u32 + k.cap * k.max_attempts;
        let schedule: Vec<bool> = (0..span.as_nanos() / k.flap_every.as_nanos())
            .map(|i| in_outage(k, k.flap_every * i as u32) || rng.random_bool(k.failure_rate))
            .collect();
        let arrivals: Vec<Duration> = (0..k.requests)
            .map(|i| k.request_every * i as u32)
            .collect();
        let in_outage_requests = arrivals.iter().filter(|t| in_outage(k, **t)).count();
        let outage_len = k.outage_until - k.outage_from;
        let start = Instant::now() + Duration::from_millis(20);
        let mut runs = Vec::new();
        let mut backends = Vec::new();
        for (index, &(_, which)) in strategies.iter().enumerate() {
            let backend = Arc::new(
                Backend::start(
                    &format!("backend-{index}"),
                    Behaviour::Healthy { latency: LATENCY },
                )
                .await
                .expect("start a backend on 127.0.0.1"),
            );
            tokio::spawn(play_schedule(
                Arc::clone(&backend),
                schedule.clone(),
                start,
                k.flap_every,
            ));
            let (addr, arrivals) = (backend.addr(), arrivals.clone());
            runs.push(run_one(k, addr, make(which), arrivals, start));
            let _ = index;
            backends.push(backend);
        }
        let mut results: Vec<(usize, Run)> = Vec::new();
        for (index, run) in join_all(runs).await.into_iter().enumerate() {
            results.push((index, run));
        }

        println!(
            "Part 1. {} requests, one every {:?}, to a backend on 127.0.0.1 that answers 503 \
             {:.0}% of the time\nin short patches, and to everything from {} to {} (an outage). \
             Retries: at most {} attempts, backoff base {}, cap {};\nbudget {}% of requests plus \
             a reserve of {}.\n",
            k.requests,
            k.request_every,
            k.failure_rate * 100.0,
            whole_millis(k.outage_from),
            whole_millis(k.outage_until),
            k.max_attempts,
            whole_millis(k.base),
            whole_millis(k.cap),
            k.budget_percent,
            k.budget_reserve,
        );
        let mut table = Table::new(&[
            "strategy",
            "load on backend",
            "x requests",
            "x in the outage",
            "ok outside outage",
            "ok in outage",
            "p99 latency",
            "time waiting",
            "out of budget",
        ]);
        for ((name, _), (_, run)) in strategies.iter().zip(&results) {
            let requests = run.outcomes.len() as u64;
            let load = run.attempts.len() as u64;
            let outage_load = run
                .attempts
                .iter()
                .filter(|(t, _)| in_outage(k, *t))
                .count();
            // Requests arrive in order, at a steady pace: outcome i arrived at arrivals[i].
            let ok = |outage: bool| {
                let matching = run
                    .outcomes
                    .iter()
                    .zip(&arrivals)
                    .filter(|(_, at)| in_outage(k, **at) == outage);
                let total = matching.clone().count() as u64;
                let ok = matching.filter(|((o, _), _)| o.succeeded).count() as u64;
                percent(ok, total)
            };
            let mut latencies: Vec<Duration> = run.outcomes.iter().map(|(_, l)| *l).collect();
            latencies.sort_unstable();
            let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
            let waited: Duration = run.outcomes.iter().map(|(o, _)| o.waited).sum();
            let out_of_budget = run.outcomes.iter().filter(|(o, _)| o.out_of_budget).count();
            table.row(&[
                name.to_string(),
                load.to_string(),
                format!("{:.2}", load as f64 / requests as f64),
                format!("{:.2}", outage_load as f64 / in_outage_requests as f64),
                ok(false),
                ok(true),
                whole_millis(p99),
                format!("{:.2} s", waited.as_secs_f64()),
                out_of_budget.to_string(),
            ]);
        }
        table.print();
        println!(
            "\n\"x in the outage\": attempts that reached the backend during the {} outage, per \
             request that arrived in it.\nThe budget lets the requests in the outage fail fast \
             (as without retries) and still retries the flaky\n503s outside it: the backend \
             sees little more than its normal load when it can least take it.",
            whole_millis(outage_len)
        );

        // Part 2. A synchronised burst: everybody fails at once, during a restart.
        drop(backends);
        println!(
            "\nPart 2. {} clients send a request at the same instant; the backend answers 503 for \
             the first {} (a restart).\nRetries reaching the backend per {} slot (first tries not \
             counted):\n",
            k.burst,
            whole_millis(k.burst_restart),
            whole_millis(k.slot)
        );
        let slots = ((k.burst_restart + k.cap).as_nanos() / k.slot.as_nanos()) as usize;
        for (name, which) in [
            ("backoff, no jitter", Which::NoJitter),
            ("backoff + full jitter", Which::FullJitter),
        ] {
            let backend = Arc::new(
                Backend::start("restarting", Behaviour::Failing { latency: LATENCY })
                    .await
                    .expect("start a backend on 127.0.0.1"),
            );
            let start = Instant::now() + Duration::from_millis(10);
            let restart = Arc::clone(&backend);
            let burst_restart = k.burst_restart;
            tokio::spawn(async move {
                tokio::time::sleep_until(start + burst_restart).await;
                restart.set_behaviour(Behaviour::Healthy { latency: LATENCY });
            });
            let run = run_one(
                k,
                backend.addr(),
                make(which),
                vec![Duration::ZERO; k.burst],
                start,
            )
            .await;
            let counts = retries_per_slot(&run.attempts, slots, k.slot);
            let failed = run.outcomes.iter().filter(|(o, _)| !o.succeeded).count();
            println!(
                "{name}: {} attempts in all, {failed} requests failed",
                run.attempts.len()
            );
            let bars: Vec<(String, f64)> = counts
                .into_iter()
                .enumerate()
                .map(|(i, n)| (format!("{:>3} ms", k.slot.as_millis() * i as u128), n))
                .collect();
            println!("{}\n", bar_chart(&bars, 40));
        }
        println!(
            "Without jitter the clients come back together, in waves with idle gaps between them; \
             full jitter spreads\nthe same retries out. It also waits half as long on average, \
             so the same MAX_ATTEMPTS covers a shorter\noutage: raise MAX_ATTEMPTS or BASE if \
             requests fail above.\n(lab wall time {:.1} s)",
            wall.elapsed().as_secs_f64()
        );
    });
}
