// Hedged requests — cut the latency tail by asking a second replica, for a bounded extra load.
//
// Most requests to a replicated service are fast, but a few hit a GC pause, a cold cache or a
// busy disk and take 40x longer; at scale those few set your p99 ("The Tail at Scale", Dean &
// Barroso, 2013). A hedged request sends the request to one replica and, if no answer has come
// within a hedge delay (around the p95 latency), sends the same request to a second replica; the
// first answer wins and the other attempt is cancelled. Hedging after the p95 costs about 5%
// extra requests and removes most of the tail; hedging at once doubles the load. And when every
// replica is slow (an overload), hedging would double the load exactly when the system can least
// take it: so hedges draw on a budget (at most ~10% extra). Google's BigTable clients, gRPC's
// hedging policy (`hedgingDelay`, `maxAttempts`, retry throttling), Envoy's
// `hedge_on_per_try_timeout` and Cassandra's speculative retry all do this.
//
// Build `hedged`: the request to replica 0 at once; a hedge to the next replica after
// `hedge_after` without an answer, or at once when an attempt fails; the first success wins and
// the others are dropped; at most `max_hedges` hedges, each allowed by the budget.
//
// Lab (real sockets): 3 HTTP backends on localhost, each request slow (SLOW_MS) on a random
// SLOW_FRACTION of attempts. No hedging, hedging at the measured p95, hedging at 0 ms, then a
// global slowdown with and without the budget. Watch p99 and max fall, and the extra load column.
// Turn SLOW_FRACTION up, HEDGE_PERCENTILE down, BUDGET_PERCENT to 100.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use rand::RngExt;
use sdlings_kit::backend::{self, Backend, Behaviour};
use sdlings_kit::lab::{Table, bar_chart, millis, nearest_rank, percent};
use sdlings_kit::workload::seeded_rng;
use tokio::sync::Semaphore;

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

// ---- Your part -------------------------------------------------------------------------------

/// Sends one request, hedged over `replicas` replicas; `call(i)` sends it to replica `i`.
/// - Count the request in `budget` once, then send attempt 0 to replica 0 at once.
/// - The first attempt to succeed wins: return its value, replica and the number of attempts
///   sent. Every other attempt still in flight is cancelled (dropped) before returning.
/// - A hedge goes to the next replica not tried yet (1, then 2, ...). It is sent when
///   `hedge_after` has passed since the last attempt was sent with no answer, or at once when an
///   attempt fails. Only if a replica is left, fewer than `max_hedges` hedges were sent, and the
///   budget grants it (`try_hedge`, asked only then). Once the budget has refused, the timer
///   sends no more hedges for this request (a failure may still ask).
/// - When nothing is in flight and no hedge can be sent, return the last error.
///
/// Panics if `replicas` is 0.
pub async fn hedged<T, E, F, Fut>(
    replicas: usize,
    policy: HedgePolicy,
    budget: &HedgeBudget,
    mut call: F,
) -> Result<Hedged<T>, E>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    assert!(replicas > 0, "hedged needs at least one replica");
    budget.on_request();
    let mut in_flight = InFlight::new();
    in_flight.push(0, call(0));
    let mut sent = 1;
    let mut hedge_at = tokio::time::Instant::now() + policy.hedge_after;
    let mut timer_armed = true;
    let mut last_error = None;
    loop {
        // Never the same replica twice: a hedge is only useful if its latency is independent.
        let replica_left = sent < replicas && sent <= policy.max_hedges;
        let failed = tokio::select! {
            Some((replica, result)) = in_flight.next() => match result {
                // Returning drops `in_flight`, and with it the losers: their connections close.
                Ok(value) => return Ok(Hedged { value, replica, attempts: sent }),
                Err(error) => {
                    last_error = Some(error);
                    true
                }
            },
            _ = tokio::time::sleep_until(hedge_at), if timer_armed && replica_left => false,
        };
        // Either an attempt failed (why wait for the timer?) or the timer fired: hedge, if the
        // budget agrees. The budget is asked only now, so fast requests never spend it.
        if replica_left && budget.try_hedge() {
            in_flight.push(sent, call(sent));
            sent += 1;
            hedge_at = tokio::time::Instant::now() + policy.hedge_after;
        } else if !failed {
            // Refused at the timer: stop asking on every poll of this request.
            timer_armed = false;
        }
        if in_flight.is_empty() {
            return Err(last_error.expect("every attempt failed, so there is an error"));
        }
    }
}

// ---- Lab: real HTTP backends on localhost ----------------------------------------------------

/// Replicas of the service: 3 HTTP backends.
const REPLICAS: usize = 3;
/// A normal attempt: FAST_MS plus up to 2 ms of jitter...
const FAST_MS: u64 = 5;
/// ...but this share of attempts hits the slow path (a GC pause, a cold cache)...
const SLOW_FRACTION: f64 = 0.05;
/// ...and takes this long.
const SLOW_MS: u64 = 150;
/// Hedge after this percentile of the unhedged latencies (measured in the first run).
const HEDGE_PERCENTILE: f64 = 95.0;
/// The hedge budget: at most this % of requests hedged, up to BUDGET_BURST in a row.
const BUDGET_PERCENT: u32 = 10;
const BUDGET_BURST: u32 = 10;
/// In the slowdown scenario every attempt takes this much extra (an overloaded fleet).
const SLOWDOWN_MS: u64 = 25;
const REQUESTS: usize = 400;
const IN_FLIGHT: usize = 50;
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
const SEED: u64 = 11;

struct RunResult {
    /// Latencies of the requests, sorted.
    latencies: Vec<Duration>,
    failed: usize,
    hedged: usize,
    /// Requests the backends actually served (abandoned losers included).
    served: u64,
}

/// Runs REQUESTS requests; `plan[r][i]` is how long attempt `i` of request `r` takes (ms).
/// Request r prefers replica r % REPLICAS, then the next ones.
async fn run(
    fleet: &[Backend],
    plan: &[[u64; REPLICAS]],
    policy: HedgePolicy,
    budget: HedgeBudget,
) -> RunResult {
    let addrs: Arc<Vec<SocketAddr>> = Arc::new(fleet.iter().map(Backend::addr).collect());
    let served_before: u64 = fleet.iter().map(Backend::served).sum();
    let budget = Arc::new(budget);
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut requests = tokio::task::JoinSet::new();
    for (r, &attempt_ms) in plan.iter().enumerate() {
        let (addrs, budget, gate) = (Arc::clone(&addrs), Arc::clone(&budget), Arc::clone(&gate));
        requests.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("never closed");
            let started = std::time::Instant::now();
            let answer = hedged(REPLICAS, policy, &budget, |i| {
                let addr = addrs[(r + i) % REPLICAS];
                let path = format!("/work?ms={}", attempt_ms[i]);
                async move {
                    match backend::get(addr, &path, CALL_TIMEOUT).await {
                        Ok(response) if response.status == 200 => Ok(()),
                        Ok(response) => Err(format!("status {}", response.status)),
                        Err(error) => Err(error.to_string()),
                    }
                }
            })
            .await;
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

fn main() {
    let runtime = sdlings_kit::lab::runtime();
    let mut rng = seeded_rng(SEED);
    let plan: Vec<[u64; REPLICAS]> = (0..REQUESTS)
        .map(|_| {
            std::array::from_fn(|_| {
                if rng.random_bool(SLOW_FRACTION) {
                    SLOW_MS
                } else {
                    FAST_MS + rng.random_range(0..=2)
                }
            })
        })
        .collect();
    let slowdown: Vec<[u64; REPLICAS]> = plan
        .iter()
        .map(|attempts| attempts.map(|ms| ms + SLOWDOWN_MS))
        .collect();
    runtime.block_on(async {
        let fleet = backend::start_fleet(REPLICAS, Duration::ZERO)
            .await
            .expect("start the backends on 127.0.0.1");
        println!(
            "{REPLICAS} HTTP backends on 127.0.0.1. Each attempt takes {FAST_MS}-{} ms, or {SLOW_MS} \
             ms on {:.0}% of attempts. {REQUESTS} requests, {IN_FLIGHT} in flight. Hedge \
             budget: {BUDGET_PERCENT}% of requests (burst {BUDGET_BURST}).\n",
            FAST_MS + 2,
            SLOW_FRACTION * 100.0
        );
        let never = HedgePolicy {
            hedge_after: Duration::from_secs(3600),
            max_hedges: 0,
        };
        let baseline = run(&fleet, &plan, never, HedgeBudget::unlimited()).await;
        let p_hedge = pct(&baseline.latencies, HEDGE_PERCENTILE);
        let at_p = HedgePolicy {
            hedge_after: p_hedge,
            max_hedges: 1,
        };
        let at_zero = HedgePolicy {
            hedge_after: Duration::ZERO,
            max_hedges: 1,
        };
        let budget = || HedgeBudget::new(BUDGET_PERCENT, BUDGET_BURST);
        let runs = [
            ("normal", "no hedging".to_string(), baseline),
            (
                "normal",
                format!("hedge at p{HEDGE_PERCENTILE} ({})", millis(p_hedge)),
                run(&fleet, &plan, at_p, budget()).await,
            ),
            (
                "normal",
                "hedge at 0 ms".to_string(),
                run(&fleet, &plan, at_zero, HedgeBudget::unlimited()).await,
            ),
            (
                "slowdown",
                "no hedging".to_string(),
                run(&fleet, &slowdown, never, HedgeBudget::unlimited()).await,
            ),
            (
                "slowdown",
                format!("hedge at {}, no budget", millis(p_hedge)),
                run(&fleet, &slowdown, at_p, HedgeBudget::unlimited()).await,
            ),
            (
                "slowdown",
                format!("hedge at {}, budget", millis(p_hedge)),
                run(&fleet, &slowdown, at_p, budget()).await,
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
            let extra = r.served.saturating_sub((REQUESTS - r.failed) as u64);
            table.row(&[
                fleet_state.to_string(),
                strategy.clone(),
                millis(pct(&r.latencies, 50.0)),
                millis(pct(&r.latencies, 95.0)),
                millis(pct(&r.latencies, 99.0)),
                millis(pct(&r.latencies, 100.0)),
                percent(r.hedged as u64, REQUESTS as u64),
                r.served.to_string(),
                format!("+{}", percent(extra, REQUESTS as u64)),
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
             makes things worse; the budget holds it to about {BUDGET_PERCENT}%."
        );
        // Keep the fleet alive until here; a failing backend shows what a hedge does on errors.
        fleet[0].set_behaviour(Behaviour::Failing {
            latency: Duration::ZERO,
        });
        let addrs: Vec<SocketAddr> = fleet.iter().map(Backend::addr).collect();
        let started = std::time::Instant::now();
        let answer = hedged(REPLICAS, at_p, &budget(), |i| {
            let addr = addrs[i];
            async move {
                match backend::get(addr, "/work?ms=5", CALL_TIMEOUT).await {
                    Ok(response) if response.status == 200 => Ok(response.backend),
                    Ok(response) => Err(format!("status {}", response.status)),
                    Err(error) => Err(error.to_string()),
                }
            }
        })
        .await;
        println!(
            "\nbackend-0 now answers 503: one request -> {:?} in {} (the 503 triggers the hedge \
             at once, without waiting {}).",
            answer.map(|a| (a.value, a.attempts)),
            millis(started.elapsed()),
            millis(p_hedge),
        );
    });
}

// ---- Tests -----------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::time::Instant;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Fake replicas: replica i answers `script[i]` after its latency. Records every call (which
    /// replica, when) and whether each attempt completed or was dropped half-way.
    #[derive(Clone)]
    struct Replicas {
        script: Arc<Vec<(Duration, Result<&'static str, &'static str>)>>,
        calls: Arc<Mutex<Vec<(usize, Duration)>>>,
        completed: Arc<AtomicUsize>,
        cancelled: Arc<AtomicUsize>,
        epoch: Instant,
    }

    /// Counts an attempt as cancelled if it is dropped before it finishes.
    struct Attempt {
        done: bool,
        completed: Arc<AtomicUsize>,
        cancelled: Arc<AtomicUsize>,
    }

    impl Drop for Attempt {
        fn drop(&mut self) {
            let counter = if self.done {
                &self.completed
            } else {
                &self.cancelled
            };
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Replicas {
        fn new(script: &[(u64, Result<&'static str, &'static str>)]) -> Self {
            Replicas {
                script: Arc::new(script.iter().map(|&(l, r)| (ms(l), r)).collect()),
                calls: Arc::default(),
                completed: Arc::default(),
                cancelled: Arc::default(),
                epoch: Instant::now(),
            }
        }

        fn len(&self) -> usize {
            self.script.len()
        }

        /// Sends the request to replica `i`.
        fn call(
            &self,
            i: usize,
        ) -> impl Future<Output = Result<&'static str, &'static str>> + Send + 'static {
            self.calls.lock().unwrap().push((i, self.epoch.elapsed()));
            let (latency, answer) = self.script[i];
            let attempt = Attempt {
                done: false,
                completed: Arc::clone(&self.completed),
                cancelled: Arc::clone(&self.cancelled),
            };
            async move {
                let mut attempt = attempt; // the whole guard lives in the future
                // Simulated latency on tokio's paused clock: deterministic, not synchronisation.
                tokio::time::sleep(latency).await;
                attempt.done = true;
                answer
            }
        }

        /// Every call so far: (replica, ms since the test began).
        fn calls(&self) -> Vec<(usize, u128)> {
            self.calls
                .lock()
                .unwrap()
                .iter()
                .map(|&(i, at)| (i, at.as_millis()))
                .collect()
        }
    }

    fn policy(hedge_after_ms: u64, max_hedges: usize) -> HedgePolicy {
        HedgePolicy {
            hedge_after: ms(hedge_after_ms),
            max_hedges,
        }
    }

    /// Runs one hedged request against `replicas`; returns the answer and how long it took.
    async fn request(
        replicas: &Replicas,
        policy: HedgePolicy,
        budget: &HedgeBudget,
    ) -> (Result<Hedged<&'static str>, &'static str>, Duration) {
        let started = Instant::now();
        let answer = hedged(replicas.len(), policy, budget, |i| replicas.call(i)).await;
        (answer, started.elapsed())
    }

    fn won(
        value: &'static str,
        replica: usize,
        attempts: usize,
    ) -> Result<Hedged<&'static str>, &'static str> {
        Ok(Hedged {
            value,
            replica,
            attempts,
        })
    }

    // --- The happy paths ---

    #[tokio::test(start_paused = true)]
    async fn a_fast_primary_is_used_and_no_hedge_is_sent() {
        let replicas = Replicas::new(&[(5, Ok("r0")), (5, Ok("r1"))]);
        let (answer, took) = request(&replicas, policy(10, 1), &HedgeBudget::unlimited()).await;
        assert_eq!(
            answer,
            won("r0", 0, 1),
            "replica 0 answers in 5 ms, before the 10 ms hedge delay: its answer, 1 attempt"
        );
        assert_eq!(took, ms(5), "and it is returned as soon as it arrives");
        tokio::time::sleep(ms(100)).await;
        assert_eq!(
            replicas.calls(),
            vec![(0, 0)],
            "replica 0 answered in 5 ms, before the 10 ms hedge delay: exactly one call. A hedge \
             sent at once doubles the load of every request"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_primary_is_hedged_after_the_delay_and_the_first_answer_wins() {
        let replicas = Replicas::new(&[(100, Ok("r0")), (5, Ok("r1"))]);
        let (answer, took) = request(&replicas, policy(10, 1), &HedgeBudget::unlimited()).await;
        assert_eq!(
            replicas.calls(),
            vec![(0, 0), (1, 10)],
            "replica 0 first, then, after 10 ms without an answer, replica 1"
        );
        assert_eq!(
            answer,
            won("r1", 1, 2),
            "replica 1, hedged at 10 ms, answers at 15 ms, long before replica 0 (100 ms)"
        );
        assert_eq!(
            took,
            ms(15),
            "the hedge, sent at 10 ms, answers at 15 ms: use it at once rather than wait for \
             the 100 ms primary"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_primary_still_wins_if_it_answers_before_the_hedge() {
        let replicas = Replicas::new(&[(30, Ok("r0")), (50, Ok("r1"))]);
        let (answer, took) = request(&replicas, policy(10, 1), &HedgeBudget::unlimited()).await;
        assert_eq!(
            answer,
            won("r0", 0, 2),
            "the hedge went out at 10 ms but the primary answered first (30 ms vs 60 ms): a \
             hedge races the primary, it does not replace it"
        );
        assert_eq!(took, ms(30));
    }

    #[tokio::test(start_paused = true)]
    async fn the_losing_attempt_is_cancelled_not_left_running() {
        // The primary loses, then the hedge loses.
        for (script, winner) in [
            ([(100, Ok("r0")), (5, Ok("r1"))], won("r1", 1, 2)),
            ([(30, Ok("r0")), (50, Ok("r1"))], won("r0", 0, 2)),
        ] {
            let replicas = Replicas::new(&script);
            let (answer, _) = request(&replicas, policy(10, 1), &HedgeBudget::unlimited()).await;
            assert_eq!(answer, winner, "latencies {script:?}, hedge after 10 ms");
            tokio::time::sleep(ms(500)).await;
            assert_eq!(
                replicas.cancelled.load(Ordering::SeqCst),
                1,
                "latencies {script:?}: the attempt that lost the race must be dropped (which \
                 closes its connection), not left running (a spawned task that nobody aborts)"
            );
            assert_eq!(
                replicas.completed.load(Ordering::SeqCst),
                1,
                "latencies {script:?}: only the winner runs to the end"
            );
        }
    }

    // --- Failures ---

    #[tokio::test(start_paused = true)]
    async fn a_primary_that_fails_fast_is_hedged_at_once() {
        let replicas = Replicas::new(&[(2, Err("r0 is down")), (5, Ok("r1"))]);
        let (answer, took) = request(&replicas, policy(50, 1), &HedgeBudget::unlimited()).await;
        assert_eq!(
            answer,
            won("r1", 1, 2),
            "replica 0 failed but replica 1 may still answer: an error is not the final word"
        );
        assert_eq!(
            replicas.calls(),
            vec![(0, 0), (1, 2)],
            "replica 0 failed at 2 ms: hedge then, not at the 50 ms hedge delay"
        );
        assert_eq!(took, ms(7));
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_attempt_fails_the_last_error_is_returned() {
        let replicas = Replicas::new(&[(2, Err("r0 is down")), (3, Err("r1 is down"))]);
        let (answer, took) = request(&replicas, policy(50, 1), &HedgeBudget::unlimited()).await;
        assert_eq!(answer, Err("r1 is down"), "both failed: the last error");
        assert_eq!(
            took,
            ms(5),
            "replica 1 was asked at 2 ms and failed at 5 ms: nothing is left to wait for"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_while_the_other_attempt_is_still_running_is_not_final() {
        let replicas = Replicas::new(&[(40, Ok("r0")), (5, Err("r1 is down"))]);
        let (answer, took) = request(&replicas, policy(10, 1), &HedgeBudget::unlimited()).await;
        assert_eq!(
            answer,
            won("r0", 0, 2),
            "the hedge failed at 15 ms, but the primary was still running and answered at 40 ms"
        );
        assert_eq!(took, ms(40));
    }

    // --- Several hedges ---

    #[tokio::test(start_paused = true)]
    async fn each_hedge_goes_to_a_new_replica_one_delay_after_the_last() {
        let replicas = Replicas::new(&[(100, Ok("r0")), (100, Ok("r1")), (5, Ok("r2"))]);
        let (answer, took) = request(&replicas, policy(10, 2), &HedgeBudget::unlimited()).await;
        assert_eq!(
            replicas.calls(),
            vec![(0, 0), (1, 10), (2, 20)],
            "one replica at a time, each hedge 10 ms after the previous attempt, never the same \
             replica twice"
        );
        assert_eq!(
            answer,
            won("r2", 2, 3),
            "replica 2, sent at 20 ms, answers at 25 ms"
        );
        assert_eq!(took, ms(25), "the first answer is returned at once");
        tokio::time::sleep(ms(500)).await;
        assert_eq!(
            replicas.cancelled.load(Ordering::SeqCst),
            2,
            "both losers are cancelled"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn max_hedges_caps_the_extra_attempts() {
        let replicas = Replicas::new(&[(100, Ok("r0")), (100, Ok("r1")), (5, Ok("r2"))]);
        let (answer, took) = request(&replicas, policy(10, 1), &HedgeBudget::unlimited()).await;
        assert_eq!(
            replicas.calls(),
            vec![(0, 0), (1, 10)],
            "max_hedges = 1: one hedge at most, even with a third replica available"
        );
        assert_eq!(
            answer,
            won("r0", 0, 2),
            "replica 0 (sent at 0) and replica 1 (sent at 10 ms) both take 100 ms: replica 0 \
             answers first, at 100 ms"
        );
        assert_eq!(took, ms(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_single_replica_is_never_hedged() {
        let replicas = Replicas::new(&[(100, Ok("r0"))]);
        let (answer, _) = request(&replicas, policy(10, 3), &HedgeBudget::unlimited()).await;
        assert_eq!(
            answer,
            won("r0", 0, 1),
            "one replica: wait for it, one attempt"
        );
        assert_eq!(
            replicas.calls(),
            vec![(0, 0)],
            "with one replica there is nobody to hedge to: asking it twice would not help"
        );
        let failing = Replicas::new(&[(3, Err("r0 is down"))]);
        let (answer, took) = request(&failing, policy(10, 3), &HedgeBudget::unlimited()).await;
        assert_eq!(
            answer,
            Err("r0 is down"),
            "the only replica failed: its error"
        );
        assert_eq!(took, ms(3), "its error is final at once");
    }

    // --- The budget ---

    #[tokio::test(start_paused = true)]
    async fn the_budget_caps_hedges_at_its_share_of_requests() {
        let budget = HedgeBudget::new(10, 1);
        let mut hedged_requests = 0;
        let mut slow = 0;
        for _ in 0..20 {
            let replicas = Replicas::new(&[(100, Ok("r0")), (5, Ok("r1"))]);
            let (answer, took) = request(&replicas, policy(10, 1), &budget).await;
            let answer = answer.expect("both replicas answer");
            if answer.attempts > 1 {
                hedged_requests += 1;
                assert_eq!(
                    took,
                    ms(15),
                    "a hedged request gets replica 1's answer at 15 ms"
                );
            } else {
                slow += 1;
                assert_eq!(
                    (answer.replica, took),
                    (0, ms(100)),
                    "no hedge: wait for the primary"
                );
                assert_eq!(replicas.calls(), vec![(0, 0)], "a denied hedge is not sent");
            }
        }
        assert_eq!(
            hedged_requests, 2,
            "every primary is slow, but a 10% budget (burst 1, starting full) allows 2 hedges in \
             20 requests: the first, then one per 10 requests. 20 means the budget is ignored; 1 \
             means `on_request` is not called for every request"
        );
        assert_eq!(slow, 18);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_is_spent_only_when_a_hedge_is_sent() {
        let budget = HedgeBudget::new(0, 1); // a single token, never refilled
        for _ in 0..5 {
            let fast = Replicas::new(&[(5, Ok("r0")), (5, Ok("r1"))]);
            request(&fast, policy(10, 1), &budget).await.0.unwrap();
        }
        let slow = Replicas::new(&[(100, Ok("r0")), (5, Ok("r1"))]);
        let (answer, _) = request(&slow, policy(10, 1), &budget).await;
        assert_eq!(
            answer,
            won("r1", 1, 2),
            "5 fast requests sent no hedge, so the one token is still there for the slow one: \
             ask the budget only when about to hedge"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_the_budget_exhausted_a_failed_primary_is_final_at_once() {
        let budget = HedgeBudget::new(0, 0); // no hedges at all
        let replicas = Replicas::new(&[(2, Err("r0 is down")), (5, Ok("r1"))]);
        let (answer, took) = request(&replicas, policy(50, 1), &budget).await;
        assert_eq!(
            answer,
            Err("r0 is down"),
            "the budget allows no hedge at all, not even after a failure"
        );
        assert_eq!(
            took,
            ms(2),
            "no hedge is allowed and nothing else is in flight: return the error now, not at the \
             hedge delay"
        );
        assert_eq!(replicas.calls(), vec![(0, 0)], "no hedge was allowed");
    }
}
