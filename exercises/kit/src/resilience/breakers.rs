use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::{self, Backend, Behaviour};
use crate::lab::{Table, bar_chart, latency, millis, percent, quantile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures, while closed, that trip the breaker open (at least 1).
    pub failure_threshold: u32,
    /// How long the breaker stays open, counted from the moment it opened.
    pub open_for: Duration,
    /// Trial calls admitted while half-open (at least 1). All of them must succeed to close.
    pub trial_calls: u32,
}

impl BreakerConfig {
    /// `failure_threshold`, `open_for`, `trial_calls`, in that order.
    pub const fn new(failure_threshold: u32, open_for: Duration, trial_calls: u32) -> Self {
        BreakerConfig {
            failure_threshold,
            open_for,
            trial_calls,
        }
    }
}

/// What the outside world sees (dashboards, metrics, tests). A new breaker is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

/// How an admitted call went, as the caller judges it. A `404 Not Found` or a `400` caused by
/// the caller's own input is a *success* for the breaker: the dependency is up and answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

/// Why `try_acquire` turned a call away. The dependency was not called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The breaker is open: a trial call will be admitted in `retry_in`.
    Open { retry_in: Duration },
    /// Half-open, and every trial call has been handed out already: wait for their verdict.
    TrialsInFlight,
}

/// One step of a scripted scenario in the exercise's tests, which play it on the learner's
/// breaker (with a `ManualClock`) and check every expectation it states.
#[derive(Debug)]
pub enum Step {
    /// The clock reads this.
    At(Duration),
    /// This many complete calls, each admitted and reported at once with this outcome.
    Calls(u32, Outcome),
    /// A call is admitted and keeps running: its permit is held, numbered from 0.
    Take,
    /// A call is turned away, so.
    Turned(Rejected),
    /// Held permit `i` comes back with this outcome.
    Back(usize, Outcome),
    /// Held permit `i` is dropped without a result (an outer timeout cancelled the call).
    Lose(usize),
    /// The state is this.
    Is(State),
    /// Every state change so far: (whole seconds, new state).
    Log(&'static [(u64, State)]),
}

// ---- Lab --------------------------------------------------------------------------------------

/// What the lab needs from a breaker (the exercise's `CircuitBreaker`, through `Driven`).
pub trait Breaker: Send + 'static {
    type Permit: Send;
    /// A permit, or `None` if the call is rejected.
    fn admit(&mut self) -> Option<Self::Permit>;
    fn report(&mut self, permit: Self::Permit, outcome: Outcome);
    /// Every state change so far: (time since the breaker was made, new state).
    fn state_changes(&self) -> Vec<(Duration, State)>;
}

/// The exercise's breaker, seen by the lab through three of its functions (a `Breaker` without
/// an impl block in the exercise).
pub struct Driven<B, P> {
    pub breaker: B,
    /// `try_acquire`, keeping only whether the call was admitted.
    pub admit: fn(&mut B) -> Option<P>,
    /// `record`.
    pub report: fn(&mut B, P, Outcome),
    /// The state changes so far.
    pub transitions: fn(&B) -> Vec<(Duration, State)>,
}

impl<B: Send + 'static, P: Send + 'static> Breaker for Driven<B, P> {
    type Permit = P;

    fn admit(&mut self) -> Option<P> {
        (self.admit)(&mut self.breaker)
    }

    fn report(&mut self, permit: P, outcome: Outcome) {
        (self.report)(&mut self.breaker, permit, outcome)
    }

    fn state_changes(&self) -> Vec<(Duration, State)> {
        (self.transitions)(&self.breaker)
    }
}

pub struct Knobs {
    pub config: BreakerConfig,
    /// When the outage starts and how long it lasts.
    pub outage_start: Duration,
    pub outage: Duration,
    /// How the backend misbehaves during the outage.
    pub outage_behaviour: Behaviour,
    /// The whole run.
    pub run: Duration,
    /// A request every this long, from each client.
    pub request_every: Duration,
    /// The client's timeout on one call.
    pub call_timeout: Duration,
    pub backend_latency: Duration,
    /// Width of one bar of the timeline.
    pub bar: Duration,
}

impl Default for Knobs {
    /// A 1.8 s run, a request every 2 ms from each client, a 1 s hang from 300 ms, 100 ms
    /// timeouts, and the breaker: 5 failures, open 250 ms, 1 trial.
    fn default() -> Self {
        Knobs {
            config: BreakerConfig::new(5, Duration::from_millis(250), 1),
            outage_start: Duration::from_millis(300),
            outage: Duration::from_millis(1000),
            outage_behaviour: Behaviour::Hung,
            run: Duration::from_millis(1800),
            request_every: Duration::from_millis(2),
            call_timeout: Duration::from_millis(100),
            backend_latency: Duration::from_millis(2),
            bar: Duration::from_millis(100),
        }
    }
}

struct Sample {
    sent_at: Duration,
    /// The call reached the backend (it was not rejected by the breaker).
    reached: bool,
    ok: bool,
    latency: Duration,
}

/// One call, through the breaker if there is one. The breaker lock is held only for the
/// bookkeeping, never across the network call.
async fn call<B: Breaker>(
    addr: SocketAddr,
    breaker: Option<&Mutex<B>>,
    timeout: Duration,
) -> (bool, bool) {
    let permit = match breaker {
        Some(breaker) => match breaker.lock().expect("not poisoned").admit() {
            Some(permit) => Some(permit),
            None => return (false, false), // fast fail: the backend is not called
        },
        None => None,
    };
    let result: io::Result<backend::Response> = backend::get(addr, "/work", timeout).await;
    let ok = matches!(&result, Ok(r) if r.status == 200);
    if let (Some(breaker), Some(permit)) = (breaker, permit) {
        let outcome = if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        breaker
            .lock()
            .expect("not poisoned")
            .report(permit, outcome);
    }
    (true, ok)
}

struct Run {
    samples: Vec<Sample>,
    transitions: Vec<(Duration, State)>,
}

async fn scenario<B: Breaker>(k: &Knobs, breaker: Option<B>) -> Run {
    let backend = Backend::start(
        "dependency",
        Behaviour::Healthy {
            latency: k.backend_latency,
        },
    )
    .await
    .expect("start a backend on 127.0.0.1");
    let backend = Arc::new(backend);
    // The breaker's clock starts with the run, so its transition times line up with the lab's.
    let breaker = breaker.map(|b| Arc::new(Mutex::new(b)));
    let started = Instant::now();

    // The outage, on its own schedule.
    let chaos = {
        let backend = Arc::clone(&backend);
        let (start, outage, behaviour, latency) = (
            k.outage_start,
            k.outage,
            k.outage_behaviour.clone(),
            k.backend_latency,
        );
        tokio::spawn(async move {
            tokio::time::sleep_until((started + start).into()).await;
            backend.set_behaviour(behaviour);
            tokio::time::sleep_until((started + start + outage).into()).await;
            backend.set_behaviour(Behaviour::Healthy { latency });
        })
    };

    let mut requests = tokio::task::JoinSet::new();
    let count = (k.run.as_nanos() / k.request_every.as_nanos()) as u32;
    for i in 0..count {
        let sent_at = k.request_every * i;
        tokio::time::sleep_until((started + sent_at).into()).await;
        let (addr, breaker, timeout) = (backend.addr(), breaker.clone(), k.call_timeout);
        requests.spawn(async move {
            let began = Instant::now();
            let (reached, ok) = call(addr, breaker.as_deref(), timeout).await;
            Sample {
                sent_at,
                reached,
                ok,
                latency: began.elapsed(),
            }
        });
    }
    let mut samples = requests.join_all().await;
    samples.sort_by_key(|s| s.sent_at);
    chaos.await.expect("the chaos task does not panic");
    let transitions = breaker.map_or_else(Vec::new, |b| {
        b.lock().expect("not poisoned").state_changes()
    });
    Run {
        samples,
        transitions,
    }
}

/// Runs the two clients side by side (one direct, one through `make(config)`'s breaker, made
/// when the run starts) and prints the table, the transitions and the timeline.
pub fn run<B: Breaker>(k: &Knobs, make: impl Fn(BreakerConfig) -> B) {
    let runtime = crate::lab::runtime();
    runtime.block_on(async {
        let (outage_start, recovery) = (k.outage_start, k.outage_start + k.outage);
        let c = k.config;
        println!(
            "A client sends GET /work every {:?} (timeout {:?}) to a backend on 127.0.0.1.\nThe \
             backend is {:?} from t={} to t={}, healthy otherwise. Breaker: trip after {} failures \
             in a row, open for {:?}, {} trial call(s).\n",
            k.request_every,
            k.call_timeout,
            k.outage_behaviour,
            millis(outage_start),
            millis(recovery),
            c.failure_threshold,
            c.open_for,
            c.trial_calls,
        );
        let (plain, guarded) = tokio::join!(scenario::<B>(k, None), scenario(k, Some(make(c))));

        let mut table = Table::new(&[
            "client",
            "requests",
            "reached backend in outage",
            "fast-failed",
            "failed",
            "outage p50",
            "outage p99",
            "time held by the dead backend",
            "first success after recovery",
        ]);
        for (name, run) in [("no breaker", &plain), ("your breaker", &guarded)] {
            let in_outage = |s: &&Sample| s.sent_at >= outage_start && s.sent_at < recovery;
            let mut outage_latencies: Vec<Duration> = run
                .samples
                .iter()
                .filter(in_outage)
                .map(|s| s.latency)
                .collect();
            let first_success = run
                .samples
                .iter()
                .filter(|s| s.ok && s.sent_at + s.latency >= recovery)
                .map(|s| s.sent_at + s.latency - recovery)
                .min()
                .map_or("never".to_string(), |d| format!("+{}", latency(d)));
            let reached_in_outage: Vec<&Sample> = run
                .samples
                .iter()
                .filter(in_outage)
                .filter(|s| s.reached)
                .collect();
            // Each call that reached the hung backend held a connection (in a thread-per-request
            // server: a thread) until its timeout.
            let held: Duration = reached_in_outage.iter().map(|s| s.latency).sum();
            table.row(&[
                name.to_string(),
                run.samples.len().to_string(),
                reached_in_outage.len().to_string(),
                run.samples
                    .iter()
                    .filter(|s| !s.reached)
                    .count()
                    .to_string(),
                run.samples.iter().filter(|s| !s.ok).count().to_string(),
                quantile(&mut outage_latencies, 0.5),
                quantile(&mut outage_latencies, 0.99),
                format!("{:.1} s", held.as_secs_f64()),
                first_success,
            ]);
        }
        table.print();

        let failed = |run: &Run| run.samples.iter().filter(|s| !s.ok).count() as u64;
        println!(
            "\nBoth clients fail about as many requests ({} vs {}): the backend is down either \
             way. The difference is\nwhat failing costs: how long each failure takes, and how \
             hard the dying backend is hit. The breaker\nfails a few more after the recovery: it \
             only finds out at its next trial, up to OPEN_FOR later.",
            percent(failed(&plain), plain.samples.len() as u64),
            percent(failed(&guarded), guarded.samples.len() as u64),
        );

        println!("\nyour breaker's transitions:");
        for (at, state) in &guarded.transitions {
            println!("  t={:>10}  {state:?}", millis(*at));
        }

        let bar = k.bar;
        let bars = (k.run.as_nanos() / bar.as_nanos()) as usize;
        let mut reached = vec![0u32; bars];
        for s in guarded.samples.iter().filter(|s| s.reached) {
            reached[((s.sent_at.as_nanos() / bar.as_nanos()) as usize).min(bars - 1)] += 1;
        }
        let chart: Vec<(String, f64)> = reached
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let from = bar * i as u32;
                let down = from + bar > outage_start && from < recovery;
                let label = format!("{}{}", millis(from), if down { " (down)" } else { "" });
                (label, f64::from(n))
            })
            .collect();
        println!(
            "\ncalls that reached the backend per {bar:?}, with your breaker (without: {} per \
             bar)\n{}",
            bar.as_nanos() / k.request_every.as_nanos(),
            bar_chart(&chart, 40)
        );
    });
}
