//! Also the types the exercise re-exports as given (`Jitter`, `Stop`, `Outcome`), the poison-
//! tolerant `lock`, a scripted dependency for its tests (`Scripted`), and the lab's third part: a
//! simulated server that sheds load with 503 and a Retry-After, ignored and then honoured.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::RngExt;
use tokio::time::Instant;

use crate::backend::{self, Backend, Behaviour};
use crate::lab::{Table, bar_chart, percent, whole_millis};
use crate::workload::seeded_rng;

/// Why a call failed, as the backend client sees it (the exercise maps it to its `CallError`):
/// an error status, with the server's Retry-After in seconds if it sent one (the lab's real
/// backends never do; part 3's simulated server does), no answer in time, or no connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Status(u16, Option<Duration>),
    TimedOut,
    ConnectionFailed,
}

/// One call to the backend, made again on every retry; it fails with the exercise's error `E`,
/// made from the client's [`Failure`].
pub type Op<E> = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Result<(), E>> + Send>> + Send>;

/// How a backoff spreads the clients that failed together (the exercise's `Backoff::delay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Wait exactly the ceiling: every client that failed together retries together.
    None,
    /// Wait a uniformly random time between zero and the ceiling.
    Full,
}

/// Why the exercise's `retry` stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Succeeded,
    /// The last error was not worth retrying.
    NotRetryable,
    /// `max_attempts` attempts were made.
    OutOfAttempts,
    /// The next retry could not have started before the deadline.
    OutOfTime,
    /// The retry budget refused the next retry.
    OutOfBudget,
}

/// What the exercise's `retry` reports (`E`: its `CallError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<T, E> {
    /// The last attempt's result.
    pub result: Result<T, E>,
    /// Attempts made, the first try included.
    pub attempts: u32,
    /// Total time slept between attempts.
    pub waited: Duration,
    pub stop: Stop,
}

impl<T, E> Outcome<T, E> {
    /// The fields in order: result, attempts, waited, stop.
    pub fn new(result: Result<T, E>, attempts: u32, waited: Duration, stop: Stop) -> Self {
        Outcome {
            result,
            attempts,
            waited,
            stop,
        }
    }
}

/// How one request of the lab ended: why `retry` stopped, and the time it slept in all.
#[derive(Debug, Clone, Copy)]
pub struct Attempted {
    pub stop: Stop,
    pub waited: Duration,
}

impl Attempted {
    /// What the exercise's strategy reports: its outcome's `stop` and `waited`.
    pub fn new(stop: Stop, waited: Duration) -> Self {
        Attempted { stop, waited }
    }

    fn succeeded(&self) -> bool {
        self.stop == Stop::Succeeded
    }
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

/// One request running through a [`Strategy`].
pub type Running<'a> = Pin<Box<dyn Future<Output = Attempted> + Send + 'a>>;

/// A retry strategy: runs one request's `op` with the learner's `retry` (its own rng seed).
pub trait Strategy: Send + Sync + 'static {
    /// The exercise's error type.
    type Error: From<Failure> + Send + 'static;

    fn run(&self, seed: u64, op: Op<Self::Error>) -> Running<'_>;
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
    /// Part 3: clients sending at the same instant to a server that sheds load for `shed_for`,
    /// answering 503 with this Retry-After (whole seconds, as the header carries them).
    pub shedding_clients: usize,
    pub shed_for: Duration,
    pub retry_after: Duration,
    pub seed: u64,
}

impl Default for Knobs {
    /// The lab's schedule: a request every millisecond, 503s in patches of 2 ms and an outage
    /// from 100 to 250 ms; part 2's restart lasts 50 ms. The retry knobs are the exercise's.
    fn default() -> Self {
        Knobs {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
            max_attempts: 5,
            budget_percent: 20,
            budget_reserve: 10,
            failure_rate: 0.1,
            flap_every: Duration::from_millis(2),
            requests: 400,
            request_every: Duration::from_millis(1),
            outage_from: Duration::from_millis(100),
            outage_until: Duration::from_millis(250),
            burst: 100,
            burst_restart: Duration::from_millis(50),
            slot: Duration::from_millis(20),
            call_timeout: Duration::from_millis(500),
            shedding_clients: 100,
            shed_for: Duration::from_millis(1_500),
            retry_after: Duration::from_secs(1),
            seed: 42,
        }
    }
}

/// Locks state shared by concurrent requests (such as a retry budget), carrying on if another
/// request panicked while it held the lock: the numbers inside are intact. Hold the guard for the
/// update only, never across an `.await`.
pub fn lock<T>(shared: &Mutex<T>) -> MutexGuard<'_, T> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A scripted dependency for the tests, on tokio's paused clock: its calls answer `answers` in
/// order, then `then` for ever, each after `latency`. It records when each call started.
pub struct Scripted<A> {
    answers: Mutex<VecDeque<A>>,
    then: A,
    latency: Duration,
    start: Instant,
    calls: Mutex<Vec<Duration>>,
}

impl<A: Clone> Scripted<A> {
    pub fn new(answers: &[A], then: A, latency: Duration) -> Self {
        Scripted {
            answers: Mutex::new(answers.iter().cloned().collect()),
            then,
            latency,
            start: Instant::now(),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// One call: the next answer, after the latency.
    pub fn call(&self) -> impl Future<Output = A> + use<A> {
        lock(&self.calls).push(self.start.elapsed());
        let answer = lock(&self.answers)
            .pop_front()
            .unwrap_or_else(|| self.then.clone());
        let latency = self.latency;
        async move {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            answer
        }
    }

    /// When each call started, since the dependency was created.
    pub fn calls(&self) -> Vec<Duration> {
        lock(&self.calls).clone()
    }

    /// The time since the dependency was created.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
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
        Ok(response) => Err(Failure::Status(response.status, None)),
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
async fn run_one<E: From<Failure> + Send + 'static>(
    k: &Knobs,
    addr: SocketAddr,
    strategy: Box<dyn Strategy<Error = E>>,
    arrivals: Vec<Duration>,
    start: Instant,
) -> Run {
    let log = Arc::new(Mutex::new(Vec::new()));
    let strategy: Arc<dyn Strategy<Error = E>> = Arc::from(strategy);
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
            let op: Op<E> = Box::new(move || {
                tries += 1;
                let attempt = call(addr, start, tries > 1, Arc::clone(&log), timeout);
                Box::pin(async move { attempt.await.map_err(E::from) })
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
pub fn run<E: From<Failure> + Send + 'static>(
    k: &Knobs,
    make: impl Fn(Which) -> Box<dyn Strategy<Error = E>>,
) {
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
            "out of time",
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
                let ok = matching.filter(|((o, _), _)| o.succeeded()).count() as u64;
                percent(ok, total)
            };
            let mut latencies: Vec<Duration> = run.outcomes.iter().map(|(_, l)| *l).collect();
            latencies.sort_unstable();
            let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
            let waited: Duration = run.outcomes.iter().map(|(o, _)| o.waited).sum();
            let out_of_budget = run
                .outcomes
                .iter()
                .filter(|(o, _)| o.stop == Stop::OutOfBudget)
                .count();
            let out_of_time = run
                .outcomes
                .iter()
                .filter(|(o, _)| o.stop == Stop::OutOfTime)
                .count();
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
                out_of_time.to_string(),
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
            let failed = run.outcomes.iter().filter(|(o, _)| !o.succeeded()).count();
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
    shedding(k, &make);
}

/// Part 3's runs, on a simulated clock: `k.shedding_clients` clients send one request each at
/// the same instant, through the full-jitter strategy, to a server that answers 503 with a
/// Retry-After for `k.shed_for` (and 1 ms after each attempt). With `honour` false the
/// Retry-After is stripped on the way, as a client that ignores it would see the answer. Returns
/// each request's outcome and when each attempt reached the server.
async fn shed<E: From<Failure> + Send + 'static>(
    k: &Knobs,
    make: &impl Fn(Which) -> Box<dyn Strategy<Error = E>>,
    honour: bool,
) -> (Vec<Attempted>, Vec<Duration>) {
    let strategy: Arc<dyn Strategy<Error = E>> = Arc::from(make(Which::FullJitter));
    let log = Arc::new(Mutex::new(Vec::new()));
    let (start, until) = (Instant::now(), k.shed_for);
    let retry_after = honour.then_some(k.retry_after);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..k.shedding_clients {
        let (strategy, log, seed) = (Arc::clone(&strategy), Arc::clone(&log), k.seed + i as u64);
        tasks.spawn(async move {
            let op: Op<E> = Box::new(move || {
                let log = Arc::clone(&log);
                Box::pin(async move {
                    lock(&log).push(start.elapsed());
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    if start.elapsed() < until {
                        Err(E::from(Failure::Status(503, retry_after)))
                    } else {
                        Ok(())
                    }
                })
            });
            strategy.run(seed, op).await
        });
    }
    let outcomes = tasks.join_all().await;
    let attempts = lock(&log).clone();
    (outcomes, attempts)
}

/// Part 3: a server shedding load with 503 and Retry-After, its answer ignored, then honoured.
fn shedding<E: From<Failure> + Send + 'static>(
    k: &Knobs,
    make: &impl Fn(Which) -> Box<dyn Strategy<Error = E>>,
) {
    println!(
        "Part 3 (simulated clock). {} clients send a request at the same instant to a server that \
         sheds load for {}:
it answers 503 with `Retry-After: {}` (seconds). Backoff + full \
         jitter, with the server's Retry-After stripped, then honoured:\n",
        k.shedding_clients,
        whole_millis(k.shed_for),
        k.retry_after.as_secs(),
    );
    let mut table = Table::new(&[
        "Retry-After",
        "attempts",
        "while shedding",
        "ok",
        "out of time",
        "mean wait",
        "last attempt at",
    ]);
    for (name, honour) in [("ignored", false), ("honoured", true)] {
        let (outcomes, attempts) = crate::lab::simulated_runtime().block_on(shed(k, make, honour));
        let shedding = attempts.iter().filter(|t| **t < k.shed_for).count();
        let ok = outcomes.iter().filter(|o| o.succeeded()).count() as u64;
        let out_of_time = outcomes
            .iter()
            .filter(|o| o.stop == Stop::OutOfTime)
            .count();
        let waited: Duration = outcomes.iter().map(|o| o.waited).sum();
        let last = attempts.iter().max().copied().unwrap_or_default();
        table.row(&[
            name.to_string(),
            attempts.len().to_string(),
            shedding.to_string(),
            percent(ok, outcomes.len() as u64),
            out_of_time.to_string(),
            whole_millis(waited / outcomes.len().max(1) as u32),
            whole_millis(last),
        ]);
    }
    table.print();
    println!(
        "\nIgnoring it, the clients spend their attempts on a server that asked for a pause. \
         Honouring it with a DEADLINE\nshorter than the wait, they give up at once (fail fast) \
         instead; raise DEADLINE to 3 s and they wait, come\nback after the shedding ends, and \
         succeed, all at the same instant: one Retry-After sent to all brings\nthem back \
         together."
    );
}
