// Fan-out: how a backend's rare slow call becomes the common case for requests
//
// A search page or a feed sends N calls in parallel (to N index shards or services) and answers
// once they are back: its latency is the MAX of N latencies, not their mean. If each backend is
// slow 1% of the time (its p99: a GC pause, a cache miss), a request that waits for 100 of them
// meets a slow call 63% of the time (1 − 0.99^100): the backend's rare tail has become the
// request's common case. Google's "The Tail at Scale" is about exactly this.
//
// Build `fan_out_latency` (waiting for the fastest k of the calls; k = N is all of them),
// `p_at_least_one_slow`, `backend_percentile_for` (the backend percentile behind a fan-out's q-th
// percentile), and `fastest_k`: run the calls concurrently with tokio, return the first k answers
// in completion order, and cancel the stragglers (the mitigation: quorum reads, hedging).
//
// Lab (real sockets): 12 HTTP backends on localhost, one slow. Raise FAN_OUTS or
// SLOW_BACKEND_LATENCY: waiting for all N, the p99 and then the p50 become the slow backend's
// latency; waiting for the fastest N−1 brings both back near the healthy latency.

use std::future::Future;
use std::time::Duration;

pub use sdlings_kit::latency::BackendLatency;
use sdlings_kit::latency::{self, FanOutLab};

// ---- Your part -------------------------------------------------------------------------------

/// The latency of a request that sends all of `calls` in parallel and completes as soon as the
/// fastest `k` have answered: the k-th smallest call latency (k = `calls.len()` is the slowest).
/// Panics unless 1 <= k <= `calls.len()`.
pub fn fan_out_latency(calls: &[Duration], k: usize) -> Duration {
    assert!(
        (1..=calls.len()).contains(&k),
        "k must be within 1..={}, got {k}",
        calls.len()
    );
    // Only the order matters, and a request has at most a few hundred calls: a sort is fine.
    // (`select_nth_unstable` would do it in O(n).)
    let mut sorted = calls.to_vec();
    sorted.sort_unstable();
    // The k-th smallest is at 0-based index k - 1.
    sorted[k - 1]
}

/// The probability that at least one of `n` independent calls is slow, when each is slow with
/// probability `p_slow`.
pub fn p_at_least_one_slow(n: u32, p_slow: f64) -> f64 {
    // The complement of "every call is fast". Adding up n × p_slow instead would count the
    // requests with two slow calls twice, and passes 100% at n = 1 / p_slow.
    1.0 - (1.0 - p_slow).powf(f64::from(n))
}

/// A request that waits for `n` independent calls is at or under a latency x only if every call
/// is. So its `q`-th percentile (0 < q < 100) is each backend's percentile 100 × (q / 100)^(1/n):
/// the backend percentile to look at (or to put an SLO on) to keep the request's p`q` there.
pub fn backend_percentile_for(q: f64, n: u32) -> f64 {
    100.0 * (q / 100.0).powf(1.0 / f64::from(n))
}

/// Runs every call concurrently and returns the outputs of the first `k` to finish, in the order
/// they finished. The calls still running then are cancelled: a real client closes those
/// connections so the backends stop working on answers nobody will read. `k = 0` returns at once
/// and starts no call. Panics if `k > calls.len()`, or if a call panics (with that call's panic).
pub async fn fastest_k<T, F>(calls: Vec<F>, k: usize) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    assert!(
        k <= calls.len(),
        "asked for {k} answers from {} calls",
        calls.len()
    );
    let mut answers = Vec::with_capacity(k);
    if k == 0 {
        return answers;
    }
    // One task per call: they all run at once, and a JoinSet yields them as they finish.
    let mut running = tokio::task::JoinSet::new();
    for call in calls {
        running.spawn(call);
    }
    while answers.len() < k {
        match running.join_next().await {
            Some(Ok(answer)) => answers.push(answer),
            Some(Err(error)) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Some(Err(error)) => panic!("a call was cancelled: {error}"),
            None => unreachable!("k <= calls.len(), so the set cannot run dry first"),
        }
    }
    // Dropping the JoinSet aborts every task still running: the stragglers are cancelled.
    drop(running);
    answers
}

// ---- Lab: real HTTP backends on localhost ----------------------------------------------------

/// Backends in the fleet (shards of an index, say); backend-0 is the slow one.
const FLEET: usize = 12;
const HEALTHY_LATENCY: Duration = Duration::from_millis(5);
const SLOW_BACKEND_LATENCY: Duration = Duration::from_millis(40);
/// How many backends each request calls: N different ones, picked at random.
const FAN_OUTS: [usize; 4] = [1, 3, 6, 12];
/// Requests per fan-out and strategy, and how many are in flight at once.
const REQUESTS: usize = 200;
const IN_FLIGHT: usize = 20;
const SEED: u64 = 99;

fn main() {
    let lab = FanOutLab {
        fleet: FLEET,
        healthy_latency: HEALTHY_LATENCY,
        slow_backend_latency: SLOW_BACKEND_LATENCY,
        fan_outs: FAN_OUTS.to_vec(),
        requests: REQUESTS,
        in_flight: IN_FLIGHT,
        seed: SEED,
    };
    latency::run_fan_out_lab(&lab, |calls, k| fastest_k(calls, k));
    latency::print_tail_law(p_at_least_one_slow, backend_percentile_for);
}

#[cfg(test)]
mod tests {
    use super::*;

    use rand::RngExt;
    use sdlings_kit::latency::FakeCalls;
    use sdlings_kit::workload::seeded_rng;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn waiting_for_all_calls_takes_as_long_as_the_slowest_not_the_average() {
        let calls = [ms(10), ms(12), ms(9), ms(200)];
        assert_eq!(
            fan_out_latency(&calls, 4),
            ms(200),
            "a request that needs all 4 answers waits for the 200 ms one; the mean (57.75 ms) \
             is a latency this request never had"
        );
        assert_eq!(fan_out_latency(&[ms(7)], 1), ms(7), "a single call");
    }

    #[test]
    fn waiting_for_the_fastest_k_takes_the_kth_smallest_latency() {
        let calls = [ms(50), ms(10), ms(90), ms(30)];
        for (k, expected) in [(1, 10), (2, 30), (3, 50), (4, 90)] {
            assert_eq!(
                fan_out_latency(&calls, k),
                ms(expected),
                "sorted the calls take 10, 30, 50, 90 ms; the fastest {k} are all back after \
                 the {k}th of those (index k - 1)"
            );
        }
    }

    #[test]
    fn the_chance_of_at_least_one_slow_call_is_one_minus_all_fast() {
        for (n, expected) in [
            (1, 0.01),
            (2, 0.0199),
            (10, 0.095_617_924_991_1),
            (100, 0.633_967_658_726_8),
            (500, 0.993_429_516_957_9),
        ] {
            let got = p_at_least_one_slow(n, 0.01);
            assert!(
                (got - expected).abs() < 1e-9,
                "n = {n}: 1 − 0.99^{n} = {expected}, got {got} (n × 0.01 overcounts requests \
                 with two slow calls, and passes 1 at n = 100)"
            );
        }
        assert_eq!(p_at_least_one_slow(0, 0.01), 0.0, "no calls, nothing slow");
        assert_eq!(p_at_least_one_slow(20, 0.0), 0.0);
        assert_eq!(p_at_least_one_slow(3, 1.0), 1.0);
    }

    #[test]
    fn a_fan_out_requests_p99_is_a_much_higher_backend_percentile() {
        // One call: the backend's own p99. 100 calls: each backend's p99.99. The median of a
        // 10-way fan-out: each backend's p93.3.
        for (q, n, expected) in [
            (99.0, 1, 99.0),
            (99.0, 100, 99.989_950_169_2),
            (50.0, 10, 93.303_299_153_7),
        ] {
            let p = backend_percentile_for(q, n);
            assert!(
                (p - expected).abs() < 1e-9,
                "waiting for {n} calls, the request's p{q} is each backend's 100 × ({q} / \
                 100)^(1/{n}) = p{expected}, got p{p}"
            );
        }
    }

    #[test]
    fn waiting_for_n_minus_1_hides_a_single_slow_call() {
        let (fast, slow) = (ms(10), ms(1_000));
        let backend = BackendLatency {
            fast,
            slow,
            p_slow: 0.01,
        };
        let (mut rng, n, requests) = (seeded_rng(23), 100, 600.0);
        let (mut slow_all, mut slow_quorum) = (0.0, 0.0);
        for _ in 0..requests as usize {
            let calls: Vec<Duration> = (0..n).map(|_| backend.sample(&mut rng)).collect();
            slow_all += f64::from(fan_out_latency(&calls, n) >= slow) / requests;
            slow_quorum += f64::from(fan_out_latency(&calls, n - 1) >= slow) / requests;
        }
        // Waiting for 99 of 100 is slow only when two or more calls are slow.
        let two_or_more = 1.0 - 0.99f64.powi(100) - 100.0 * 0.01 * 0.99f64.powi(99);
        assert!(
            (slow_all - 0.634).abs() < 0.06,
            "waiting for all 100: about 63% slow, got {slow_all:.3}"
        );
        assert!(
            (slow_quorum - two_or_more).abs() < 0.06,
            "waiting for the fastest 99: slow only with 2+ slow calls ({two_or_more:.3}), got \
             {slow_quorum:.3}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn fastest_k_returns_the_first_k_answers_in_the_order_they_arrived() {
        let fake = FakeCalls::default();
        let started = tokio::time::Instant::now();
        let answers = fastest_k(fake.delays(&[50, 10, 40, 20, 30]), 3).await;
        assert_eq!(answers, [10, 20, 30], "the 3 fastest, in completion order");
        assert_eq!(
            started.elapsed(),
            ms(30),
            "running concurrently, the 3rd answer arrives after 30 ms: not after 50 (waiting for \
             everyone) nor 150 (one call after another)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_stragglers_are_cancelled_once_k_answers_are_in() {
        let fake = FakeCalls::default();
        let answers = fastest_k(fake.delays(&[10, 20, 500, 600, 700]), 2).await;
        assert_eq!(answers, [10, 20]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            fake.finished(),
            2,
            "the 3 slower calls must be cancelled when fastest_k returns, not left running to \
             waste the backends' time on answers nobody reads"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn asking_for_zero_answers_returns_at_once_and_starts_nothing() {
        let fake = FakeCalls::default();
        let started = tokio::time::Instant::now();
        assert_eq!(fastest_k(fake.delays(&[10, 20]), 0).await, []);
        assert_eq!(started.elapsed(), Duration::ZERO, "nothing to wait for");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            fake.finished(),
            0,
            "no answer is wanted, so no call may be left running in the background"
        );
        assert_eq!(fastest_k(fake.delays(&[]), 0).await, [], "no calls at all");
    }

    #[tokio::test(start_paused = true)]
    async fn answers_come_back_in_completion_order_not_in_call_order_or_sorted() {
        let fake = FakeCalls::default();
        let calls = [(30, "a"), (10, "c"), (40, "b"), (20, "d")].map(|(d, a)| fake.answer(d, a));
        assert_eq!(
            fastest_k(calls.into(), 3).await,
            ["c", "d", "a"],
            "c answers after 10 ms, d after 20, a after 30: completion order, which is neither \
             the order the calls were given nor the answers sorted"
        );
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "shard 2 crashed")]
    async fn a_call_that_panics_makes_fastest_k_panic_instead_of_being_skipped() {
        let fake = FakeCalls::default();
        let calls = vec![
            fake.answer(30, 1),
            fake.crash(10, "shard 2 crashed"),
            fake.answer(20, 3),
        ];
        // Skipping the failed call would quietly return [3, 1], as if a crash were an answer.
        fastest_k(calls, 2).await;
    }

    #[test]
    fn fastest_k_matches_the_k_smallest_delays_for_any_n_and_k() {
        sdlings_kit::property::for_seeds(60, |rng| {
            let n = rng.random_range(1..=12usize);
            let k = rng.random_range(0..=n);
            // Distinct delays, so that the completion order is well defined.
            let mut delays: Vec<u64> = (1..=n as u64).map(|i| i * 7).collect();
            for i in (1..n).rev() {
                delays.swap(i, rng.random_range(0..=i));
            }
            let fake = FakeCalls::default();
            let (answers, elapsed) = sdlings_kit::lab::simulated_runtime().block_on(async {
                let started = tokio::time::Instant::now();
                let answers = fastest_k(fake.delays(&delays), k).await;
                let elapsed = started.elapsed();
                tokio::time::sleep(Duration::from_secs(10)).await;
                (answers, elapsed)
            });
            let mut ascending = delays.clone();
            ascending.sort_unstable();
            let case = format!("delays {delays:?}, k = {k}");
            assert_eq!(
                answers,
                ascending[..k],
                "{case}: the k fastest, in completion order"
            );
            assert_eq!(
                elapsed,
                ms(k.checked_sub(1).map_or(0, |i| ascending[i])),
                "{case}: running at once, the k-th answer arrives after the k-th smallest delay"
            );
            assert_eq!(fake.finished(), k, "{case}: the other calls are cancelled");
        });
    }

    #[test]
    fn fan_out_latency_is_the_kth_smallest_for_any_calls_and_k() {
        sdlings_kit::property::for_seeds(300, |rng| {
            let n = rng.random_range(1..=20);
            // Few distinct values, so ties are common.
            let calls: Vec<Duration> = (0..n).map(|_| ms(rng.random_range(1..=6))).collect();
            let k = rng.random_range(1..=n);
            let mut ascending = calls.clone();
            ascending.sort_unstable();
            assert_eq!(
                fan_out_latency(&calls, k),
                ascending[k - 1],
                "calls {calls:?}, waiting for the fastest {k}"
            );
        });
    }

    #[test]
    fn the_tail_arithmetic_holds_for_any_n_and_p() {
        sdlings_kit::property::for_seeds(300, |rng| {
            let n = rng.random_range(0..=300u32);
            let p_slow = match rng.random_range(0..6) {
                0 => 0.0,
                1 => 1.0,
                _ => rng.random_range(0.0..1.0),
            };
            // Every call fast, one after another: (1 - p) × (1 - p) × ... n times.
            let all_fast = (0..n).fold(1.0, |acc, _| acc * (1.0 - p_slow));
            let got = p_at_least_one_slow(n, p_slow);
            assert!(
                (got - (1.0 - all_fast)).abs() < 1e-9,
                "n = {n}, p_slow = {p_slow}: expected 1 − (1 − p_slow)^n = {}, got {got}",
                1.0 - all_fast
            );
            if n == 0 {
                return;
            }
            let q = rng.random_range(1.0..99.99);
            let b = backend_percentile_for(q, n);
            // Each of n calls under the backend's b-th percentile: (b / 100)^n of requests.
            let request = (0..n).fold(1.0, |acc, _| acc * b / 100.0) * 100.0;
            assert!(
                (request - q).abs() < 1e-6 && (q..=100.0).contains(&b),
                "n = {n}: the backend's p{b} gives requests that wait for all {n} calls a p{request}, \
                 not the p{q} asked for"
            );
        });
    }
}
