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
    let _ = &mut call; // (only silences "unused variable" until you use `call`: delete it)
    todo!("call(0) now; hedge per {policy:?} over {replicas} replicas, within {budget:?}")
}

// ---- Lab: real HTTP backends on localhost ----------------------------------------------------
// 3 backends; each attempt is slow (SLOW_MS) on a random SLOW_FRACTION of attempts. No hedging,
// hedging at the measured HEDGE_PERCENTILE, hedging at 0 ms, then a global slowdown with and
// without the budget.

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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
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
                replicas.cancelled(),
                1,
                "latencies {script:?}: the attempt that lost the race must be dropped (which \
                 closes its connection), not left running (a spawned task that nobody aborts)"
            );
            assert_eq!(
                replicas.completed(),
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

    #[tokio::test(start_paused = true)]
    async fn after_a_failure_the_next_hedge_waits_one_delay_from_the_attempt_just_sent() {
        let replicas = Replicas::new(&[(2, Err("r0 is down")), (100, Ok("r1")), (5, Ok("r2"))]);
        let (answer, took) = request(&replicas, policy(10, 2), &HedgeBudget::unlimited()).await;
        assert_eq!(
            replicas.calls(),
            vec![(0, 0), (1, 2), (2, 12)],
            "replica 0 failed at 2 ms, so replica 1 was asked at once; replica 1 then had its \
             full 10 ms before the next hedge (at 12 ms, not at 20 ms: the delay counts from the \
             last attempt sent, not from the first)"
        );
        assert_eq!(answer, won("r2", 2, 3));
        assert_eq!(took, ms(17));
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
        assert_eq!(replicas.cancelled(), 2, "both losers are cancelled");
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

    // --- Any policy, any replicas ---

    /// The reference: what a hedged request must do, event by event, in whole ms. Returns the
    /// calls (replica, ms), the answer (replica or the index of the last failure), when, and how
    /// many attempts were cancelled; `None` when two events land on the same ms (either order
    /// is then allowed).
    #[allow(clippy::type_complexity)]
    fn model(
        script: &[(u64, bool)],
        hedge_after: u64,
        max_hedges: usize,
        mut tokens: u64,
    ) -> Option<(
        Vec<(usize, u128)>,
        Result<(usize, usize), usize>,
        u64,
        usize,
    )> {
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
                        let answer = Ok((replica, sent));
                        return Some((calls, answer, now, in_flight.len()));
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
        const OK: [&str; 4] = ["r0", "r1", "r2", "r3"];
        const DOWN: [&str; 4] = ["r0 is down", "r1 is down", "r2 is down", "r3 is down"];
        let mut checked = 0;
        sdlings_kit::property::for_seeds(400, |rng| {
            let n = rng.random_range(1..=4);
            let script: Vec<(u64, bool)> = (0..n)
                .map(|_| (rng.random_range(1..=60), rng.random_bool(0.6)))
                .collect();
            let hedge_after = rng.random_range(1..=30);
            let max_hedges = rng.random_range(0..=3);
            let tokens = rng.random_range(0..=3);
            let Some((calls, answer, at, cancelled)) =
                model(&script, hedge_after, max_hedges, tokens)
            else {
                return;
            };
            checked += 1;
            let what = format!(
                "replicas (latency ms, succeeds) {script:?}, hedge after {hedge_after} ms, \
                 max_hedges {max_hedges}, budget of {tokens} hedges"
            );
            paused(async {
                let replicas = Replicas::new(
                    &script
                        .iter()
                        .enumerate()
                        .map(|(i, &(latency, ok))| {
                            (latency, if ok { Ok(OK[i]) } else { Err(DOWN[i]) })
                        })
                        .collect::<Vec<_>>(),
                );
                let budget = HedgeBudget::new(0, tokens as u32);
                let (got, took) =
                    request(&replicas, policy(hedge_after, max_hedges), &budget).await;
                assert_eq!(
                    replicas.calls(),
                    calls,
                    "{what}: the attempts sent (replica, ms). A hedge goes to the next replica \
                     when hedge_after has passed since the last attempt was sent, or at once \
                     when an attempt fails; only while replicas, max_hedges and the budget allow"
                );
                let expected = match answer {
                    Ok((replica, attempts)) => won(OK[replica], replica, attempts),
                    Err(replica) => Err(DOWN[replica]),
                };
                assert_eq!(got, expected, "{what}: the answer");
                assert_eq!(took, ms(at), "{what}: when the answer came");
                tokio::time::sleep(ms(1_000)).await;
                assert_eq!(
                    replicas.cancelled(),
                    cancelled,
                    "{what}: attempts still in flight when the answer came must be cancelled"
                );
            });
        });
        assert!(checked > 300, "only {checked} cases without ties");
    }
}
