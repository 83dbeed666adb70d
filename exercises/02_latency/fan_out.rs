// Fan-out: how a backend's rare slow call becomes the common case for requests
//
// A search query, a news feed or a product page is rarely served by one backend: the frontend
// sends N calls in parallel (to N index shards, or to N microservices) and answers only when
// they are all back. Its latency is the MAX of N backend latencies, not their mean. If a backend
// is slow 1% of the time (its p99: a GC pause, a cache miss, a compaction), a request that waits
// for 100 of them hits at least one slow call with probability 1 − 0.99^100 ≈ 63%: the backend's
// rare tail has become the request's common case. Google's "The Tail at Scale" is about exactly
// this.
//
// Build:
//   - `fan_out_latency(calls, k)`: the latency of a request that completes when the fastest k of
//     its calls have answered, i.e. the k-th smallest; k = N is "wait for all" (the maximum);
//   - `p_at_least_one_slow(n, p_slow)`: the chance that at least one of n independent calls is
//     slow;
//   - `backend_percentile_for(q, n)`: which backend percentile a request's q-th percentile
//     corresponds to when it waits for n calls;
//   - `fastest_k(calls, k)`: run the calls concurrently with tokio, return the first k results
//     in completion order, and cancel the stragglers: the mitigation (quorum reads, hedging).
//
// Lab (real sockets): 12 HTTP backends on localhost, one of them slow. Raise the fan-outs in
// FAN_OUTS or SLOW_BACKEND_LATENCY: waiting for all N calls, the request's p99 and then (once
// half the requests call the slow backend) even its p50 become the slow backend's latency;
// waiting for the fastest N−1 brings both back near the healthy latency.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngExt;
use rand::rngs::StdRng;
use sdlings_kit::backend::{self, Backend, Behaviour};
use sdlings_kit::lab::{Table, bar_chart, percent};
use sdlings_kit::workload::seeded_rng;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// A backend's latency for one call: usually about `fast` (anywhere from half to one and a half
/// times it), but with probability `p_slow` the call hits a slow path and takes `slow`.
#[derive(Debug, Clone, Copy)]
pub struct BackendLatency {
    pub fast: Duration,
    pub slow: Duration,
    pub p_slow: f64,
}

impl BackendLatency {
    pub fn sample(&self, rng: &mut StdRng) -> Duration {
        if rng.random_bool(self.p_slow) {
            self.slow
        } else {
            self.fast.mul_f64(rng.random_range(0.5..1.5))
        }
    }
}

// ---- Your part -------------------------------------------------------------------------------

/// The latency of a request that sends all of `calls` in parallel and completes as soon as the
/// fastest `k` have answered: the k-th smallest call latency (k = `calls.len()` is the slowest).
/// Panics unless 1 <= k <= `calls.len()`.
pub fn fan_out_latency(calls: &[Duration], k: usize) -> Duration {
    todo!("the latency of waiting for {k} of {} calls", calls.len())
}

/// The probability that at least one of `n` independent calls is slow, when each is slow with
/// probability `p_slow`.
pub fn p_at_least_one_slow(n: u32, p_slow: f64) -> f64 {
    todo!("P(at least one of {n} calls is slow), each slow with probability {p_slow}")
}

/// A request that waits for `n` independent calls is at or under a latency x only if every call
/// is. So its `q`-th percentile (0 < q < 100) is each backend's percentile 100 × (q / 100)^(1/n):
/// the backend percentile to look at (or to put an SLO on) to keep the request's p`q` there.
pub fn backend_percentile_for(q: f64, n: u32) -> f64 {
    todo!("the backend percentile behind a {n}-way fan-out's p{q}")
}

/// Runs every call concurrently and returns the outputs of the first `k` to finish, in the order
/// they finished. The calls still running then are cancelled: a real client closes those
/// connections so the backends stop working on answers nobody will read. `k = 0` returns at once.
/// Panics if `k > calls.len()`, or if a call panics.
pub async fn fastest_k<T, F>(calls: Vec<F>, k: usize) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    todo!(
        "run {} calls, keep the first {k} answers, cancel the rest",
        calls.len()
    )
}

// ---- Lab: real HTTP backends on localhost ----------------------------------------------------

/// Backends in the fleet (shards of an index, say); backend-0 is the slow one.
const FLEET: usize = 12;
const HEALTHY_LATENCY: Duration = Duration::from_millis(5);
const SLOW_BACKEND_LATENCY: Duration = Duration::from_millis(40);
/// How many backends each request calls: N different ones, picked at random.
const FAN_OUTS: [usize; 4] = [1, 3, 6, 12];
/// Requests per fan-out and strategy.
const REQUESTS: usize = 200;
/// Requests in flight at once.
const IN_FLIGHT: usize = 20;
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
const SEED: u64 = 99;

/// Sends REQUESTS requests, each calling `n` different random backends and completing when `k`
/// of them have answered (through your `fastest_k`). Returns the request latencies, sorted, and
/// how many requests saw a failed call.
async fn run(addrs: &[SocketAddr], n: usize, k: usize, rng: &mut StdRng) -> (Vec<Duration>, usize) {
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut requests = JoinSet::new();
    for _ in 0..REQUESTS {
        let calls: Vec<_> = rand::seq::index::sample(rng, addrs.len(), n)
            .into_iter()
            .map(|b| backend::get(addrs[b], "/work", CALL_TIMEOUT))
            .collect();
        let gate = Arc::clone(&gate);
        requests.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("never closed");
            let started = Instant::now();
            let answers = fastest_k(calls, k).await;
            let failed = answers
                .iter()
                .any(|a| !matches!(a, Ok(r) if r.status == 200));
            (started.elapsed(), failed)
        });
    }
    let results = requests.join_all().await;
    let failed = results.iter().filter(|(_, failed)| *failed).count();
    let mut latencies: Vec<Duration> = results.into_iter().map(|(d, _)| d).collect();
    latencies.sort_unstable();
    (latencies, failed)
}

/// Nearest-rank percentile of sorted latencies, formatted in milliseconds.
fn pct(sorted: &[Duration], p: f64) -> String {
    let rank = ((p * sorted.len() as f64 / 100.0).ceil() as usize).clamp(1, sorted.len());
    format!("{:.1} ms", sorted[rank - 1].as_secs_f64() * 1000.0)
}

fn main() {
    let runtime = sdlings_kit::lab::runtime();
    runtime.block_on(async {
        let fleet: Vec<Backend> = backend::start_fleet(FLEET, HEALTHY_LATENCY)
            .await
            .expect("start the backends on 127.0.0.1");
        fleet[0].set_behaviour(Behaviour::Healthy {
            latency: SLOW_BACKEND_LATENCY,
        });
        let addrs: Vec<SocketAddr> = fleet.iter().map(Backend::addr).collect();
        println!(
            "{FLEET} HTTP backends on 127.0.0.1: {} answer after {HEALTHY_LATENCY:?}, backend-0 \
             after {SLOW_BACKEND_LATENCY:?}. Each request calls N different backends at random; \
             {REQUESTS} requests per cell, {IN_FLIGHT} in flight.\n",
            FLEET - 1
        );
        let mut rng = seeded_rng(SEED);
        let mut table = Table::new(&[
            "fan-out N",
            "requests calling backend-0",
            "wait for all: p50",
            "p99",
            "fastest N-1: p50",
            "p99",
        ]);
        let mut chart = Vec::new();
        let mut failed = 0;
        let wall = Instant::now();
        for &n in &FAN_OUTS {
            let (all, all_failed) = run(&addrs, n, n, &mut rng).await;
            failed += all_failed;
            let (quorum_p50, quorum_p99) = if n >= 2 {
                let (quorum, quorum_failed) = run(&addrs, n, n - 1, &mut rng).await;
                failed += quorum_failed;
                (pct(&quorum, 50.0), pct(&quorum, 99.0))
            } else {
                ("-".to_string(), "-".to_string())
            };
            table.row(&[
                n.to_string(),
                percent(n as u64, FLEET as u64),
                pct(&all, 50.0),
                pct(&all, 99.0),
                quorum_p50,
                quorum_p99,
            ]);
            let p50_ms = all[all.len().div_ceil(2) - 1].as_secs_f64() * 1000.0;
            chart.push((format!("N = {n}"), (p50_ms * 10.0).round() / 10.0));
        }
        table.print();
        println!(
            "\np50 (ms) of a request that waits for all N calls\n{}",
            bar_chart(&chart, 40)
        );
        if failed > 0 {
            println!("\n{failed} requests saw a failed call (timeouts or refused connections)");
        }

        println!(
            "\nThe same law for a backend's own tail: each call slow 1% of the time (its p99)\n"
        );
        let mut law = Table::new(&[
            "fan-out N",
            "requests with a slow call: 1 - 0.99^N",
            "request p99 = backend percentile",
        ]);
        for n in [1u32, 10, 100, 1_000] {
            law.row(&[
                n.to_string(),
                format!("{:.1}%", p_at_least_one_slow(n, 0.01) * 100.0),
                format!("p{:.4}", backend_percentile_for(99.0, n)),
            ]);
        }
        law.print();
        println!("\n(lab wall time {:.1} s)", wall.elapsed().as_secs_f64());
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
        assert_eq!(
            calls,
            [ms(50), ms(10), ms(90), ms(30)],
            "the caller's calls stay as they were"
        );
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
        assert!(
            (backend_percentile_for(99.0, 1) - 99.0).abs() < 1e-9,
            "with one call, the request p99 is the backend's p99"
        );
        let p = backend_percentile_for(99.0, 100);
        assert!(
            (p - 99.989_950_1).abs() < 1e-6,
            "waiting for 100 calls, the request p99 is each backend's p99.99 (100 × \
             0.99^(1/100) = 99.98995), got {p}"
        );
        let p = backend_percentile_for(50.0, 10);
        assert!(
            (p - 93.303_299).abs() < 1e-5,
            "the median of a 10-way fan-out is each backend's p93.3 (0.5^(1/10)), got {p}"
        );
    }

    #[test]
    fn simulated_fan_out_matches_the_analytic_probability() {
        let backend = BackendLatency {
            fast: ms(10),
            slow: ms(1_000),
            p_slow: 0.01,
        };
        let mut rng = seeded_rng(17);
        for n in [1u32, 10, 50, 100] {
            let requests = 4_000;
            let slow_requests = (0..requests)
                .filter(|_| {
                    let calls: Vec<Duration> = (0..n).map(|_| backend.sample(&mut rng)).collect();
                    fan_out_latency(&calls, n as usize) >= backend.slow
                })
                .count();
            let measured = slow_requests as f64 / requests as f64;
            let analytic = p_at_least_one_slow(n, backend.p_slow);
            assert!(
                (measured - analytic).abs() < 0.03,
                "fan-out {n}: {measured:.3} of simulated requests were slow, the formula says \
                 {analytic:.3}"
            );
        }
    }

    #[test]
    fn waiting_for_n_minus_1_hides_a_single_slow_call() {
        let backend = BackendLatency {
            fast: ms(10),
            slow: ms(1_000),
            p_slow: 0.01,
        };
        let mut rng = seeded_rng(23);
        let (n, requests) = (100usize, 2_000);
        let (mut slow_all, mut slow_quorum) = (0, 0);
        for _ in 0..requests {
            let calls: Vec<Duration> = (0..n).map(|_| backend.sample(&mut rng)).collect();
            slow_all += usize::from(fan_out_latency(&calls, n) >= backend.slow);
            slow_quorum += usize::from(fan_out_latency(&calls, n - 1) >= backend.slow);
        }
        // Waiting for 99 of 100 is slow only when two or more calls are slow.
        let two_or_more = 1.0 - 0.99f64.powi(100) - 100.0 * 0.01 * 0.99f64.powi(99);
        let (all, quorum) = (
            slow_all as f64 / requests as f64,
            slow_quorum as f64 / requests as f64,
        );
        assert!(
            (all - 0.634).abs() < 0.04,
            "waiting for all 100: about 63% slow, got {all:.3}"
        );
        assert!(
            (quorum - two_or_more).abs() < 0.04,
            "waiting for the fastest 99: slow only with 2+ slow calls ({two_or_more:.3}), got \
             {quorum:.3}"
        );
    }

    /// A call that answers `value` after `delay` of (paused) tokio time and counts itself done.
    fn call(
        delay: u64,
        done: &Arc<AtomicUsize>,
    ) -> impl Future<Output = u64> + Send + 'static + use<> {
        let done = Arc::clone(done);
        async move {
            tokio::time::sleep(ms(delay)).await;
            done.fetch_add(1, Ordering::SeqCst);
            delay
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fastest_k_returns_the_first_k_answers_in_the_order_they_arrived() {
        let done = Arc::new(AtomicUsize::new(0));
        let calls: Vec<_> = [50, 10, 40, 20, 30]
            .into_iter()
            .map(|d| call(d, &done))
            .collect();
        let started = tokio::time::Instant::now();
        let answers = fastest_k(calls, 3).await;
        assert_eq!(
            answers,
            vec![10, 20, 30],
            "the 3 fastest calls, in completion order"
        );
        assert_eq!(
            started.elapsed(),
            ms(30),
            "running concurrently, the 3rd answer arrives after 30 ms: not after 50 (waiting for \
             everyone) nor 150 (one call after another)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn fastest_k_with_k_equal_to_n_waits_for_the_slowest() {
        let done = Arc::new(AtomicUsize::new(0));
        let calls: Vec<_> = [50, 10, 40].into_iter().map(|d| call(d, &done)).collect();
        let started = tokio::time::Instant::now();
        let answers = fastest_k(calls, 3).await;
        assert_eq!(answers, vec![10, 40, 50]);
        assert_eq!(
            started.elapsed(),
            ms(50),
            "all three run at once: the slowest decides"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_stragglers_are_cancelled_once_k_answers_are_in() {
        let done = Arc::new(AtomicUsize::new(0));
        let calls: Vec<_> = [10, 20, 500, 600, 700]
            .into_iter()
            .map(|d| call(d, &done))
            .collect();
        assert_eq!(fastest_k(calls, 2).await, vec![10, 20]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            done.load(Ordering::SeqCst),
            2,
            "the 3 slower calls must be cancelled when fastest_k returns, not left running to \
             waste the backends' time on answers nobody reads"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn asking_for_zero_answers_returns_at_once() {
        let done = Arc::new(AtomicUsize::new(0));
        let calls: Vec<_> = [10, 20].into_iter().map(|d| call(d, &done)).collect();
        let started = tokio::time::Instant::now();
        assert_eq!(fastest_k(calls, 0).await, Vec::<u64>::new());
        assert_eq!(started.elapsed(), Duration::ZERO, "nothing to wait for");
    }
}
