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

use std::future::Future;
use std::time::Duration;

// Given: the policy and answer types, the hedge budget (a token bucket) and `InFlight`, which
// races attempts (see their docs in the kit).
#[allow(unused_imports)]
use sdlings_kit::resilience::hedging::{self, Call, HedgeBudget, HedgePolicy, Hedged, InFlight};

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

// ---- Lab: real HTTP backends on localhost (see the header) -----------------------------------

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

fn main() {
    hedging::run(&hedging::Knobs {
        replicas: 3,
        fast_ms: FAST_MS,
        slow_fraction: SLOW_FRACTION,
        slow_ms: SLOW_MS,
        hedge_percentile: HEDGE_PERCENTILE,
        budget_percent: BUDGET_PERCENT,
        budget_burst: BUDGET_BURST,
        // In the slowdown scenario every attempt takes this much extra (an overloaded fleet).
        slowdown_ms: 25,
        requests: 400,
        in_flight: 50,
        call_timeout: Duration::from_secs(2),
        seed: 11,
        hedged: lab_hedged,
    });
}

fn lab_hedged(
    replicas: usize,
    policy: HedgePolicy,
    budget: &HedgeBudget,
    call: Call,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Hedged<String>, String>> + Send + '_>> {
    Box::pin(hedged(replicas, policy, budget, call))
}

// ---- Tests -----------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use sdlings_kit::resilience::testing::{Replicas, paused};
    use tokio::time::Instant;

    const UP: bool = true;
    const DOWN: bool = false;

    /// What one request must do: the calls sent (replica, ms), the answer (`Ok((replica,
    /// attempts))`, or `Err(replica)` whose error is returned), when (ms), and how many attempts
    /// were cancelled.
    type Outcome = (Vec<(usize, u128)>, Answer, u64, usize);
    type Answer = Result<(usize, usize), usize>;

    /// Runs one request, hedged per (hedge after ms, max_hedges); returns the answer and when.
    async fn run(
        replicas: &Replicas,
        (hedge_after, max_hedges): (u64, usize),
        budget: &HedgeBudget,
    ) -> (Result<Hedged<&'static str>, &'static str>, u64) {
        let hedge_after = Duration::from_millis(hedge_after);
        let policy = HedgePolicy {
            hedge_after,
            max_hedges,
        };
        let started = Instant::now();
        let answer = hedged(replicas.len(), policy, budget, |i| replicas.call(i)).await;
        (answer, started.elapsed().as_millis() as u64)
    }

    /// Runs one request over replicas scripted as (latency ms, succeeds), checks `expected`.
    async fn check(
        what: &str,
        script: &[(u64, bool)],
        policy: (u64, usize),
        budget: &HedgeBudget,
        (calls, answer, at, cancelled): Outcome,
    ) {
        let what = format!("{what} [replicas {script:?}, (hedge after, max_hedges) {policy:?}]");
        let replicas = Replicas::scripted(script);
        let (got, took) = run(&replicas, policy, budget).await;
        tokio::time::sleep(Duration::from_secs(1)).await; // whatever was left running ends
        assert_eq!(
            replicas.calls(),
            calls,
            "{what}: the attempts sent (replica, ms). A hedge goes to the next replica when \
             hedge_after has passed since the last attempt was sent, or at once when an attempt \
             fails; only while replicas, max_hedges and the budget allow"
        );
        let answer = match answer {
            Ok((replica, attempts)) => Ok(Hedged {
                value: replicas.answer(replica).unwrap(),
                replica,
                attempts,
            }),
            Err(replica) => Err(replicas.answer(replica).unwrap_err()),
        };
        assert_eq!(got, answer, "{what}: the answer");
        assert_eq!(took, at, "{what}: when the answer came (ms)");
        assert_eq!(
            (replicas.cancelled(), replicas.completed()),
            (cancelled, calls.len() - cancelled),
            "{what}: attempts (cancelled, run to the end). Those still in flight when the answer \
             came must be dropped (which closes their connections), not left running"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_scripted_request_hedges_and_answers_as_its_case_says() {
        // (what must hold, replicas (latency ms, succeeds), (hedge after ms, max_hedges), budget
        // tokens => calls (replica, ms), Ok((replica, attempts)) or Err(replica), ms, cancelled)
        #[rustfmt::skip] #[allow(clippy::type_complexity)]
        let cases: [(&str, &[(u64, bool)], (u64, usize), u32, Outcome); 12] = [
            ("a fast primary is used and no hedge is sent (hedging at once doubles the load)",
             &[(5, UP), (5, UP)], (10, 1), 9, (vec![(0, 0)], Ok((0, 1)), 5, 0)),
            ("a slow primary is hedged after the delay; the first answer is used at once",
             &[(100, UP), (5, UP)], (10, 1), 9, (vec![(0, 0), (1, 10)], Ok((1, 2)), 15, 1)),
            ("the primary still wins if it answers first: a hedge races it, not replaces it",
             &[(30, UP), (50, UP)], (10, 1), 9, (vec![(0, 0), (1, 10)], Ok((0, 2)), 30, 1)),
            ("each hedge goes to a new replica, one delay after the last attempt",
             &[(100, UP), (100, UP), (5, UP)], (10, 2), 9,
             (vec![(0, 0), (1, 10), (2, 20)], Ok((2, 3)), 25, 2)),
            ("max_hedges caps the extra attempts, even with a replica left",
             &[(100, UP), (100, UP), (5, UP)], (10, 1), 9,
             (vec![(0, 0), (1, 10)], Ok((0, 2)), 100, 1)),
            ("a single replica is never hedged: asking it twice would not help",
             &[(100, UP)], (10, 3), 9, (vec![(0, 0)], Ok((0, 1)), 100, 0)),
            ("the only replica's error is final at once",
             &[(3, DOWN)], (10, 3), 9, (vec![(0, 0)], Err(0), 3, 0)),
            ("a primary that fails fast is hedged at once, not at the hedge delay",
             &[(2, DOWN), (5, UP)], (50, 1), 9, (vec![(0, 0), (1, 2)], Ok((1, 2)), 7, 0)),
            ("when every attempt fails, the last error comes as soon as nothing is in flight",
             &[(2, DOWN), (3, DOWN)], (50, 1), 9, (vec![(0, 0), (1, 2)], Err(1), 5, 0)),
            ("an error while another attempt is still running is not final",
             &[(40, UP), (5, DOWN)], (10, 1), 9, (vec![(0, 0), (1, 10)], Ok((0, 2)), 40, 0)),
            ("after a failure, the next hedge is one delay after the attempt just sent",
             &[(2, DOWN), (100, UP), (5, UP)], (10, 2), 9,
             (vec![(0, 0), (1, 2), (2, 12)], Ok((2, 3)), 17, 1)),
            ("with the budget exhausted, a failed primary is final at once",
             &[(2, DOWN), (5, UP)], (50, 1), 0, (vec![(0, 0)], Err(0), 2, 0)),
        ];
        for (what, script, policy, tokens, expected) in cases {
            let reference = model(script, policy.0, policy.1, u64::from(tokens));
            assert_eq!(
                reference.as_ref(),
                Some(&expected),
                "the reference model agrees: {what}"
            );
            check(what, script, policy, &HedgeBudget::new(0, tokens), expected).await;
        }
    }

    // --- The budget, over many requests ---

    #[tokio::test(start_paused = true)]
    async fn the_budget_caps_hedges_at_its_share_of_requests() {
        let budget = HedgeBudget::new(10, 1);
        let mut hedged_requests = 0;
        for _ in 0..20 {
            let replicas = Replicas::scripted(&[(100, UP), (5, UP)]);
            let (answer, took) = run(&replicas, (10, 1), &budget).await;
            let sent_hedge = replicas.calls() == [(0, 0), (1, 10)];
            assert!(
                sent_hedge || replicas.calls() == [(0, 0)],
                "a denied hedge is not sent"
            );
            assert_eq!(
                (answer.unwrap().replica, took),
                if sent_hedge { (1, 15) } else { (0, 100) },
                "hedged: replica 1's answer at 15 ms; not hedged: wait for the primary"
            );
            hedged_requests += usize::from(sent_hedge);
        }
        assert_eq!(
            hedged_requests, 2,
            "every primary is slow, but a 10% budget (burst 1, starting full) allows 2 hedges in \
             20 requests: the first, then one per 10 requests. 20 means the budget is ignored; 1 \
             means `on_request` is not called for every request"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_is_spent_only_when_a_hedge_is_sent() {
        let budget = HedgeBudget::new(0, 1); // a single token, never refilled
        #[rustfmt::skip] #[allow(clippy::type_complexity)]
        let no_hedge: [(&str, &[(u64, bool)], Outcome); 2] = [
            ("a fast request", &[(5, UP), (5, UP)], (vec![(0, 0)], Ok((0, 1)), 5, 0)),
            ("a lone replica fails: no one to hedge", &[(5, DOWN)], (vec![(0, 0)], Err(0), 5, 0)),
        ];
        for (what, script, expected) in no_hedge.iter().cycle().take(6) {
            check(what, script, (10, 1), &budget, expected.clone()).await;
        }
        check(
            "the requests before could not use a hedge (fast, or no replica left), so the one \
             token is still there for this slow one: ask the budget only when about to hedge",
            &[(100, UP), (5, UP)],
            (10, 1),
            &budget,
            (vec![(0, 0), (1, 10)], Ok((1, 2)), 15, 1),
        )
        .await;
    }

    // --- Any policy, any replicas ---

    /// The reference: what a hedged request must do, event by event, in whole ms; `None` when two
    /// events land on the same ms (either order is then allowed).
    fn model(
        script: &[(u64, bool)],
        hedge_after: u64,
        max_hedges: usize,
        mut tokens: u64,
    ) -> Option<Outcome> {
        let mut calls = vec![(0, 0)];
        let mut in_flight = vec![(0, script[0].0)]; // (replica, finishes at)
        let (mut sent, mut hedge_at, mut armed) = (1, hedge_after, true);
        let mut last_error = None;
        loop {
            let replica_left = sent < script.len() && sent <= max_hedges;
            let timer = (armed && replica_left).then_some(hedge_at);
            let mut times: Vec<u64> = in_flight.iter().map(|&(_, at)| at).chain(timer).collect();
            times.sort_unstable();
            if times.len() > 1 && times[0] == times[1] {
                return None; // a tie
            }
            let now = times[0];
            let failed = match in_flight.iter().position(|&(_, at)| at == now) {
                Some(i) => {
                    let (replica, _) = in_flight.remove(i);
                    if script[replica].1 {
                        return Some((calls, Ok((replica, sent)), now, in_flight.len()));
                    }
                    last_error = Some(replica);
                    true
                }
                None => false,
            };
            if replica_left && tokens > 0 {
                tokens -= 1;
                calls.push((sent, u128::from(now)));
                in_flight.push((sent, now + script[sent].0));
                sent += 1;
                hedge_at = now + hedge_after;
            } else if !failed {
                armed = false;
            }
            if in_flight.is_empty() {
                return Some((calls, Err(last_error.expect("failed")), now, 0));
            }
        }
    }

    #[test]
    fn any_policy_budget_and_replica_latencies_match_the_reference() {
        let mut checked = 0;
        sdlings_kit::property::for_seeds(400, |rng| {
            let n = rng.random_range(1..=4);
            let script: Vec<(u64, bool)> = (0..n)
                .map(|_| (rng.random_range(1..=60), rng.random_bool(0.6)))
                .collect();
            let policy = (rng.random_range(1..=30), rng.random_range(0..=3));
            let tokens = rng.random_range(0..=3);
            let Some(expected) = model(&script, policy.0, policy.1, u64::from(tokens)) else {
                return;
            };
            checked += 1;
            let what = format!("a budget of {tokens} hedges");
            paused(check(
                &what,
                &script,
                policy,
                &HedgeBudget::new(0, tokens),
                expected,
            ));
        });
        assert!(checked > 300, "only {checked} cases without ties");
    }
}
