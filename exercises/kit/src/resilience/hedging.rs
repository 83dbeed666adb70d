use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use rand::RngExt;
use tokio::sync::Semaphore;

use crate::backend::{self, Backend, Behaviour};
use crate::lab::{Table, bar_chart, millis, nearest_rank, percent};
use crate::workload::seeded_rng;

/// When to hedge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HedgePolicy {
    /// How long to wait for an answer before sending the next attempt: around the p95 latency.
    pub hedge_after: Duration,
    /// At most this many extra attempts per request (gRPC's `maxAttempts` minus one).
    pub max_hedges: usize,
}

/// The winning answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hedged<T> {
    pub value: T,
    /// The replica that answered (the index given to `call`).
    pub replica: usize,
    /// Attempts sent for this request, the first one included (1: no hedge was sent).
    pub attempts: usize,
}

/// How many hedges the client may send, shared by all its requests: a token bucket filled by
/// requests. Every request adds `percent` hundredths of a token (up to `burst` tokens); a hedge
/// takes one whole token. So over time at most `percent`% of requests are hedged, whatever the
/// latency does: a global slowdown cannot double the load. (gRPC calls this retry throttling,
/// Finagle a RetryBudget.)
#[derive(Debug)]
pub struct HedgeBudget {
    percent: u32,
    burst: u32,
    /// Hundredths of a token; starts full.
    tokens: Mutex<u32>,
}

impl HedgeBudget {
    /// Hedges for at most `percent`% of requests, with up to `burst` in a row. Starts full.
    pub fn new(percent: u32, burst: u32) -> Self {
        HedgeBudget {
            percent,
            burst,
            tokens: Mutex::new(burst.saturating_mul(100)),
        }
    }

    /// No limit at all (what hedging without a budget amounts to).
    pub fn unlimited() -> Self {
        HedgeBudget::new(100, u32::MAX / 100)
    }

    /// Call once per request (not per attempt): earns `percent` hundredths of a token.
    pub fn on_request(&self) {
        let mut tokens = self.tokens.lock().expect("not poisoned");
        *tokens = tokens
            .saturating_add(self.percent)
            .min(self.burst.saturating_mul(100));
    }

    /// Takes a token for one hedge, if there is one. Ask only when about to send the hedge.
    pub fn try_hedge(&self) -> bool {
        let mut tokens = self.tokens.lock().expect("not poisoned");
        if *tokens >= 100 {
            *tokens -= 100;
            true
        } else {
            false
        }
    }
}

/// The attempts in flight, raced against each other (what `futures::FuturesUnordered` does; the
/// workbook has no `futures` crate). Dropping it drops, and so cancels, every attempt still in it.
pub struct InFlight<Fut> {
    attempts: Vec<(usize, Pin<Box<Fut>>)>,
}

impl<Fut: Future> InFlight<Fut> {
    pub fn new() -> Self {
        InFlight {
            attempts: Vec::new(),
        }
    }

    /// Adds the attempt sent to `replica`.
    pub fn push(&mut self, replica: usize, attempt: Fut) {
        self.attempts.push((replica, Box::pin(attempt)));
    }

    pub fn len(&self) -> usize {
        self.attempts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty()
    }

    /// Waits for the next attempt to finish and removes it: `(replica, its output)`. `None` at
    /// once if nothing is in flight. Cancel-safe: usable as a `tokio::select!` branch.
    pub async fn next(&mut self) -> Option<(usize, Fut::Output)> {
        if self.attempts.is_empty() {
            return None;
        }
        poll_fn(|cx| {
            for i in 0..self.attempts.len() {
                if let Poll::Ready(output) = self.attempts[i].1.as_mut().poll(cx) {
                    let (replica, _) = self.attempts.swap_remove(i);
                    return Poll::Ready(Some((replica, output)));
                }
            }
            Poll::Pending
        })
        .await
    }
}

impl<Fut: Future> Default for InFlight<Fut> {
    fn default() -> Self {
        Self::new()
    }
}

// ---- Lab --------------------------------------------------------------------------------------

/// One attempt: the backend that answered, or what went wrong.
pub type Attempt = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;
/// `call(i)`: sends the request to replica `i`.
pub type Call = Box<dyn FnMut(usize) -> Attempt + Send>;
/// The learner's `hedged`, boxed.
pub type Hedge =
    for<'a> fn(
        usize,
        HedgePolicy,
        &'a HedgeBudget,
        Call,
    ) -> Pin<Box<dyn Future<Output = Result<Hedged<String>, String>> + Send + 'a>>;

pub struct Knobs {
    /// Replicas of the service: HTTP backends.
    pub replicas: usize,
    /// A normal attempt: fast_ms plus up to 2 ms of jitter...
    pub fast_ms: u64,
    /// ...but this share of attempts hits the slow path...
    pub slow_fraction: f64,
    /// ...and takes this long.
    pub slow_ms: u64,
    /// Hedge after this percentile of the unhedged latencies (measured in the first run).
    pub hedge_percentile: f64,
    /// The hedge budget: at most this % of requests hedged, up to budget_burst in a row.
    pub budget_percent: u32,
    pub budget_burst: u32,
    /// In the slowdown scenario every attempt takes this much extra (an overloaded fleet).
    pub slowdown_ms: u64,
    pub requests: usize,
    pub in_flight: usize,
    pub call_timeout: Duration,
    pub seed: u64,
    pub hedged: Hedge,
}

async fn get(addr: SocketAddr, path: String, timeout: Duration) -> Result<String, String> {
    match backend::get(addr, &path, timeout).await {
        Ok(response) if response.status == 200 => Ok(response.backend.unwrap_or_default()),
        Ok(response) => Err(format!("status {}", response.status)),
        Err(error) => Err(error.to_string()),
    }
}

struct RunResult {
    /// Latencies of the requests, sorted.
    latencies: Vec<Duration>,
    failed: usize,
    hedged: usize,
    /// Requests the backends actually served (abandoned losers included).
    served: u64,
}

/// Runs the requests; `plan[r][i]` is how long attempt `i` of request `r` takes (ms).
/// Request r prefers replica r % replicas, then the next ones.
async fn run_one(
    k: &Knobs,
    fleet: &[Backend],
    plan: &[Vec<u64>],
    policy: HedgePolicy,
    budget: HedgeBudget,
) -> RunResult {
    let (replicas, hedged, call_timeout) = (k.replicas, k.hedged, k.call_timeout);
    let addrs: Arc<Vec<SocketAddr>> = Arc::new(fleet.iter().map(Backend::addr).collect());
    let served_before: u64 = fleet.iter().map(Backend::served).sum();
    let budget = Arc::new(budget);
    let gate = Arc::new(Semaphore::new(k.in_flight));
    let mut requests = tokio::task::JoinSet::new();
    for (r, attempt_ms) in plan.iter().cloned().enumerate() {
        let (addrs, budget, gate) = (Arc::clone(&addrs), Arc::clone(&budget), Arc::clone(&gate));
        requests.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("never closed");
            let started = std::time::Instant::now();
            let call: Call = Box::new(move |i| {
                let addr = addrs[(r + i) % replicas];
                let path = format!("/work?ms={}", attempt_ms[i]);
                Box::pin(get(addr, path, call_timeout))
            });
            let answer = hedged(replicas, policy, &budget, call).await;
            (started.elapsed(), answer)
        });
    }
    let mut result = RunResult {
        latencies: Vec::new(),
        failed: 0,
        hedged: 0,
        served: 0,
    };
    for (latency, answer) in requests.join_all().await {
        result.latencies.push(latency);
        match answer {
            Ok(answer) => result.hedged += usize::from(answer.attempts > 1),
            Err(_) => result.failed += 1,
        }
    }
    result.latencies.sort();
    // The losers were cancelled on our side, but a backend does not notice a closed connection
    // until it writes its answer: wait for it, then count what the fleet really did.
    while fleet.iter().any(|b| b.in_flight() > 0) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    result.served = fleet.iter().map(Backend::served).sum::<u64>() - served_before;
    result
}

/// Nearest-rank percentile (p from 0 to 100) of sorted latencies.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    nearest_rank(sorted, p / 100.0).expect("at least one request")
}

/// Runs the lab: no hedging, hedging at the measured percentile, hedging at once, then a global
/// slowdown with and without the budget; and one request while a backend fails.
pub fn run(k: &Knobs) {
    let runtime = crate::lab::runtime();
    let mut rng = seeded_rng(k.seed);
    let plan: Vec<Vec<u64>> = (0..k.requests)
        .map(|_| {
            (0..k.replicas)
                .map(|_| {
                    if rng.random_bool(k.slow_fraction) {
                        k.slow_ms
                    } else {
                        k.fast_ms + rng.random_range(0..=2)
                    }
                })
                .collect()
        })
        .collect();
    let slowdown: Vec<Vec<u64>> = plan
        .iter()
        .map(|attempts| attempts.iter().map(|ms| ms + k.slowdown_ms).collect())
        .collect();
    runtime.block_on(async {
        let fleet = backend::start_fleet(k.replicas, Duration::ZERO)
            .await
            .expect("start the backends on 127.0.0.1");
        println!(
            "{} HTTP backends on 127.0.0.1. Each attempt takes {}-{} ms, or {} ms on {:.0}% of \
             attempts. {} requests, {} in flight. Hedge budget: {}% of requests (burst {}).\n",
            k.replicas,
            k.fast_ms,
            k.fast_ms + 2,
            k.slow_ms,
            k.slow_fraction * 100.0,
            k.requests,
            k.in_flight,
            k.budget_percent,
            k.budget_burst,
        );
        let never = HedgePolicy {
            hedge_after: Duration::from_secs(3600),
            max_hedges: 0,
        };
        let baseline = run_one(k, &fleet, &plan, never, HedgeBudget::unlimited()).await;
        let p_hedge = pct(&baseline.latencies, k.hedge_percentile);
        let at_p = HedgePolicy {
            hedge_after: p_hedge,
            max_hedges: 1,
        };
        let at_zero = HedgePolicy {
            hedge_after: Duration::ZERO,
            max_hedges: 1,
        };
        let budget = || HedgeBudget::new(k.budget_percent, k.budget_burst);
        let runs = [
            ("normal", "no hedging".to_string(), baseline),
            (
                "normal",
                format!("hedge at p{} ({})", k.hedge_percentile, millis(p_hedge)),
                run_one(k, &fleet, &plan, at_p, budget()).await,
            ),
            (
                "normal",
                "hedge at 0 ms".to_string(),
                run_one(k, &fleet, &plan, at_zero, HedgeBudget::unlimited()).await,
            ),
            (
                "slowdown",
                "no hedging".to_string(),
                run_one(k, &fleet, &slowdown, never, HedgeBudget::unlimited()).await,
            ),
            (
                "slowdown",
                format!("hedge at {}, no budget", millis(p_hedge)),
                run_one(k, &fleet, &slowdown, at_p, HedgeBudget::unlimited()).await,
            ),
            (
                "slowdown",
                format!("hedge at {}, budget", millis(p_hedge)),
                run_one(k, &fleet, &slowdown, at_p, budget()).await,
            ),
        ];
        let mut table = Table::new(&[
            "fleet",
            "strategy",
            "p50",
            "p95",
            "p99",
            "max",
            "hedged",
            "backend requests",
            "extra load",
            "failed",
        ]);
        let mut chart = Vec::new();
        for (fleet_state, strategy, r) in &runs {
            let extra = r.served.saturating_sub((k.requests - r.failed) as u64);
            table.row(&[
                fleet_state.to_string(),
                strategy.clone(),
                millis(pct(&r.latencies, 50.0)),
                millis(pct(&r.latencies, 95.0)),
                millis(pct(&r.latencies, 99.0)),
                millis(pct(&r.latencies, 100.0)),
                percent(r.hedged as u64, k.requests as u64),
                r.served.to_string(),
                format!("+{}", percent(extra, k.requests as u64)),
                r.failed.to_string(),
            ]);
            let p99 = pct(&r.latencies, 99.0).as_secs_f64() * 1000.0;
            chart.push((
                format!("{fleet_state:>8}: {strategy}"),
                (p99 * 10.0).round() / 10.0,
            ));
        }
        table.print();
        println!("\np99 latency (ms)\n{}", bar_chart(&chart, 40));
        println!(
            "\nhedged: requests that sent a hedge. extra load: what the backends served beyond one \
             answer per request. The client drops each loser at once, but a backend that has \
             already read the request finishes the work anyway (only a hedge dropped before it \
             arrived is free).\nIn the slowdown every request is slower than the hedge delay: \
             without a budget the load doubles, which on a fleet slow BECAUSE it is overloaded \
             makes things worse; the budget holds it to about {}%.",
            k.budget_percent
        );
        // Keep the fleet alive until here; a failing backend shows what a hedge does on errors.
        fleet[0].set_behaviour(Behaviour::Failing {
            latency: Duration::ZERO,
        });
        let addrs: Vec<SocketAddr> = fleet.iter().map(Backend::addr).collect();
        let started = std::time::Instant::now();
        let call_timeout = k.call_timeout;
        let call: Call =
            Box::new(move |i| Box::pin(get(addrs[i], "/work?ms=5".into(), call_timeout)));
        let answer = (k.hedged)(k.replicas, at_p, &budget(), call).await;
        println!(
            "\nbackend-0 now answers 503: one request -> {:?} in {} (the 503 triggers the hedge \
             at once, without waiting {}).",
            answer.map(|a| (a.value, a.attempts)),
            millis(started.elapsed()),
            millis(p_hedge),
        );
    });
}
