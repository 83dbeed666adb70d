//! Machinery shared by the latency exercises: lab drivers and simulators the learner never edits.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::RngExt;
use rand::rngs::StdRng;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::backend::{self, Backend, Behaviour, Response};
use crate::lab::{Table, bar_chart, millis, nearest_rank, percent};
use crate::workload::seeded_rng;

/// Panics unless `p` is a percentile, 0 to 100 inclusive (NaN is not). Call it first in anything
/// that takes a percentile: asking for p150 is a bug, even when there is no data to answer with.
pub fn assert_valid_percentile(p: f64) {
    assert!(
        (0.0..=100.0).contains(&p),
        "a percentile must be within 0..=100, got {p}"
    );
}

// ---- percentiles -------------------------------------------------------------------------------

/// `samples` latencies in microseconds of a cached service: cache hits take 0.6–1.8 ms, a share
/// `miss_rate` of requests miss and query the database (40–120 ms), and a share `timeout_rate`
/// wait for a database call that times out after 1 s. Same seed, same samples.
pub fn cached_service_latencies(
    samples: usize,
    miss_rate: f64,
    timeout_rate: f64,
    seed: u64,
) -> Vec<u64> {
    let mut rng = seeded_rng(seed);
    (0..samples)
        .map(|_| {
            let roll: f64 = rng.random();
            if roll < timeout_rate {
                1_000_000
            } else if roll < timeout_rate + miss_rate {
                rng.random_range(40_000..120_000)
            } else {
                rng.random_range(600..1_800)
            }
        })
        .collect()
}

fn ms(us: f64) -> String {
    format!("{:.1} ms", us / 1000.0)
}

/// Prints the percentiles lab for the `raw` samples of [`cached_service_latencies`] with
/// `(miss_rate, timeout_rate)`: the learner's `mean` beside their `percentile(p)` (in µs) at p0,
/// p50, p90, p99, p99.9 and p100, how many samples are anywhere near the mean, and a chart of
/// latency bands.
pub fn print_mean_vs_percentiles(
    raw: &[u64],
    (miss_rate, timeout_rate): (f64, f64),
    mean: f64,
    percentile: impl Fn(f64) -> u64,
) {
    println!(
        "{} requests to a cached service: {:.1}% cache misses (40-120 ms), {:.1}% timeouts (1 s), \
         the rest cache hits (0.6-1.8 ms)\n",
        raw.len(),
        miss_rate * 100.0,
        timeout_rate * 100.0
    );
    let figures = [
        ("min", 0.0),
        ("p50", 50.0),
        ("p90", 90.0),
        ("p99", 99.0),
        ("p99.9", 99.9),
        ("max", 100.0),
    ];
    let n = raw.len() as u64;
    let near_mean = raw
        .iter()
        .filter(|&&v| (v as f64 - mean).abs() <= 0.25 * mean)
        .count() as u64;
    let above_mean = raw.iter().filter(|&&v| v as f64 > mean).count() as u64;
    let mut table = Table::new(&["statistic", "value"]);
    table.row(&["mean".to_string(), ms(mean)]);
    for (name, p) in figures {
        table.row(&[name.to_string(), ms(percentile(p) as f64)]);
    }
    table
        .row(&[
            "requests within ±25% of the mean".to_string(),
            percent(near_mean, n),
        ])
        .row(&[
            "requests slower than the mean".to_string(),
            percent(above_mean, n),
        ]);
    table.print();

    let bands: [(&str, u64, u64); 6] = [
        ("< 2 ms", 0, 2_000),
        ("2-10 ms", 2_000, 10_000),
        ("10-40 ms", 10_000, 40_000),
        ("40-120 ms", 40_000, 120_000),
        ("120-999 ms", 120_000, 1_000_000),
        (">= 1 s", 1_000_000, u64::MAX),
    ];
    let bars: Vec<(&str, f64)> = bands
        .iter()
        .map(|&(label, lo, hi)| {
            let count = raw.iter().filter(|&&v| v >= lo && v < hi).count();
            (label, count as f64)
        })
        .collect();
    println!(
        "\nrequests per latency band: how many are anywhere near the mean of {}?\n{}",
        ms(mean),
        bar_chart(&bars, 50)
    );
}

// ---- latency_histogram -------------------------------------------------------------------------

/// The percentiles the fleet lab reports for every source: p50, p99, p99.9 and p100 (the max).
pub const FLEET_PERCENTILES: [f64; 4] = [50.0, 99.0, 99.9, 100.0];

/// One healthy request's latency in microseconds: log-normal around 3 ms (σ = 0.5).
fn healthy_latency_us(rng: &mut StdRng) -> u64 {
    // Box-Muller: two uniforms in (0, 1] give one standard normal.
    let u1 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (3_000.0 * (0.5 * z).exp()) as u64
}

/// The latencies (µs) seen by each of `servers` servers, `requests` each: healthy requests are
/// log-normal around 3 ms, and the LAST server stalls behind its slow disk on a share
/// `pause_rate` of its requests, for 150–400 ms more. Same seed, same latencies.
pub fn fleet_latencies(
    servers: usize,
    requests: usize,
    pause_rate: f64,
    seed: u64,
) -> Vec<Vec<u64>> {
    let mut rng = seeded_rng(seed);
    (0..servers)
        .map(|server| {
            let slow = server == servers - 1;
            (0..requests)
                .map(|_| {
                    let mut latency = healthy_latency_us(&mut rng);
                    if slow && rng.random_bool(pause_rate) {
                        latency += rng.random_range(150_000..400_000);
                    }
                    latency
                })
                .collect()
        })
        .collect()
}

/// What one source of figures reports: how many requests it counted, and its value at each of
/// [`FLEET_PERCENTILES`], in microseconds.
pub type FleetFigures = (u64, [u64; 4]);

/// Prints the histogram lab for the per-server `latencies` of [`fleet_latencies`] (the last
/// server stalling on a share `pause_rate` of its requests): each server's histogram figures, the
/// merged histograms' figures, the exact ones (from every sample, sorted), the average of the
/// servers' p99s for contrast, the merged p99's error against `max_relative_error`, and the memory
/// of one histogram of `buckets` counters.
pub fn print_fleet_report(
    latencies: &[Vec<u64>],
    pause_rate: f64,
    per_server: &[FleetFigures],
    merged: FleetFigures,
    buckets: usize,
    max_relative_error: f64,
) {
    println!(
        "{} servers × {} requests; server-{} stalls on {:.1}% of its requests (150-400 ms)\n",
        latencies.len(),
        latencies[0].len(),
        latencies.len() - 1,
        pause_rate * 100.0
    );
    let mut everything: Vec<Duration> = latencies
        .concat()
        .into_iter()
        .map(Duration::from_micros)
        .collect();
    everything.sort_unstable();
    let exact_value = |p: f64| {
        nearest_rank(&everything, p / 100.0)
            .expect("samples")
            .as_micros() as u64
    };
    let exact = (everything.len() as u64, FLEET_PERCENTILES.map(exact_value));
    let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
    let mut table = Table::new(&["source", "requests", "p50", "p99", "p99.9", "max"]);
    let mut row = |source: String, (count, values): FleetFigures| {
        let mut cells = vec![source, count.to_string()];
        cells.extend(values.map(ms));
        table.row(&cells);
    };
    for (server, &figures) in per_server.iter().enumerate() {
        row(format!("server-{server}"), figures);
    }
    row("fleet: merged histograms".to_string(), merged);
    row("fleet: exact (every sample sorted)".to_string(), exact);
    let average_p99 = per_server.iter().map(|(_, v)| v[1]).sum::<u64>() / per_server.len() as u64;
    let dash = || "-".to_string();
    table.row(&[
        "average of the servers' p99s (wrong!)".to_string(),
        dash(),
        dash(),
        ms(average_p99),
        dash(),
        dash(),
    ]);
    table.print();

    let (merged_p99, exact_p99) = (merged.1[1] as f64, exact.1[1] as f64);
    println!(
        "\nmerged p99 is {:.3}% above the exact p99 (bound: {:.3}%)",
        (merged_p99 - exact_p99) / exact_p99 * 100.0,
        max_relative_error * 100.0
    );
    println!(
        "memory: one histogram = {buckets} buckets × 8 B = {} KiB, whatever it records; the raw \
         samples = {} × 8 B = {} KiB, and growing",
        buckets * 8 / 1024,
        exact.0,
        exact.0 * 8 / 1024
    );
}

// ---- fan_out -----------------------------------------------------------------------------------

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

/// One call of the fan-out lab: an HTTP GET to one backend, not started until polled.
pub type Call = Pin<Box<dyn Future<Output = io::Result<Response>> + Send>>;

/// The fan-out lab's setup: a fleet of HTTP backends on localhost, backend-0 slower than the
/// rest, and requests that each call `n` different backends picked at random.
#[derive(Debug, Clone)]
pub struct FanOutLab {
    pub fleet: usize,
    pub healthy_latency: Duration,
    pub slow_backend_latency: Duration,
    /// The fan-outs N to try, one row each.
    pub fan_outs: Vec<usize>,
    /// Requests per fan-out and strategy.
    pub requests: usize,
    /// Requests in flight at once.
    pub in_flight: usize,
    pub seed: u64,
}

/// Nearest-rank percentile of sorted latencies, formatted in milliseconds.
fn pct(sorted: &[Duration], p: f64) -> String {
    millis(nearest_rank(sorted, p / 100.0).expect("at least one request"))
}

/// Sends `lab.requests` requests, each calling `n` different random backends and completing
/// when `fastest_k(calls, k)` returns. The request latencies, sorted, and how many requests saw
/// a failed call.
async fn fan_out_requests<S, Fut>(
    lab: &FanOutLab,
    addrs: &[SocketAddr],
    (n, k): (usize, usize),
    rng: &mut StdRng,
    fastest_k: &S,
) -> (Vec<Duration>, usize)
where
    S: Fn(Vec<Call>, usize) -> Fut,
    Fut: Future<Output = Vec<io::Result<Response>>> + Send + 'static,
{
    let gate = Arc::new(Semaphore::new(lab.in_flight));
    let mut requests = JoinSet::new();
    for _ in 0..lab.requests {
        let calls: Vec<Call> = rand::seq::index::sample(rng, addrs.len(), n)
            .into_iter()
            .map(|b| Box::pin(backend::get(addrs[b], "/work", Duration::from_secs(2))) as Call)
            .collect();
        let request = fastest_k(calls, k);
        let gate = Arc::clone(&gate);
        requests.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("never closed");
            let started = Instant::now();
            let answers = request.await;
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

/// Runs the fan-out lab with real sockets: for each fan-out N, requests that wait for all N
/// calls and requests that wait for the fastest N − 1, both through `fastest_k`. Prints their
/// p50 and p99 and a chart of the wait-for-all p50.
pub fn run_fan_out_lab<S, Fut>(lab: &FanOutLab, fastest_k: S)
where
    S: Fn(Vec<Call>, usize) -> Fut,
    Fut: Future<Output = Vec<io::Result<Response>>> + Send + 'static,
{
    crate::lab::runtime().block_on(async {
        let fleet: Vec<Backend> = backend::start_fleet(lab.fleet, lab.healthy_latency)
            .await
            .expect("start the backends on 127.0.0.1");
        fleet[0].set_behaviour(Behaviour::Healthy {
            latency: lab.slow_backend_latency,
        });
        let addrs: Vec<SocketAddr> = fleet.iter().map(Backend::addr).collect();
        println!(
            "{} HTTP backends on 127.0.0.1: {} answer after {:?}, backend-0 after {:?}. Each \
             request calls N different backends at random; {} requests per cell, {} in flight.\n",
            lab.fleet,
            lab.fleet - 1,
            lab.healthy_latency,
            lab.slow_backend_latency,
            lab.requests,
            lab.in_flight
        );
        let mut rng = seeded_rng(lab.seed);
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
        for &n in &lab.fan_outs {
            let (all, all_failed) =
                fan_out_requests(lab, &addrs, (n, n), &mut rng, &fastest_k).await;
            failed += all_failed;
            let (quorum_p50, quorum_p99) = if n >= 2 {
                let (quorum, quorum_failed) =
                    fan_out_requests(lab, &addrs, (n, n - 1), &mut rng, &fastest_k).await;
                failed += quorum_failed;
                (pct(&quorum, 50.0), pct(&quorum, 99.0))
            } else {
                ("-".to_string(), "-".to_string())
            };
            table.row(&[
                n.to_string(),
                percent(n as u64, lab.fleet as u64),
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
        println!("\n(lab wall time {:.1} s)", wall.elapsed().as_secs_f64());
    });
}

/// Prints the tail-at-scale law for a backend slow 1% of the time (its p99), with the learner's
/// two formulas: the share of requests with a slow call, and the backend percentile that a
/// request's p99 corresponds to, for fan-outs of 1 to 1000.
pub fn print_tail_law(
    p_at_least_one_slow: fn(u32, f64) -> f64,
    backend_percentile_for: fn(f64, u32) -> f64,
) {
    println!("\nThe same law for a backend's own tail: each call slow 1% of the time (its p99)\n");
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
}

/// A fake backend call of the fan-out tests (see [`FakeCalls`]).
pub type FakeCall<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Fake backend calls for the fan-out tests: each answers after a delay of tokio time (paused in
/// the tests, so delays are exact) and counts itself once it has run to the end, so a test can
/// tell the calls that finished from those cancelled or never started.
#[derive(Debug, Default)]
pub struct FakeCalls {
    finished: Arc<AtomicUsize>,
}

impl FakeCalls {
    /// A call that answers `answer` after `delay_ms` milliseconds.
    pub fn answer<T: Send + 'static>(&self, delay_ms: u64, answer: T) -> FakeCall<T> {
        let finished = Arc::clone(&self.finished);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            finished.fetch_add(1, Ordering::SeqCst);
            answer
        })
    }

    /// One call per delay (ms), each answering its own delay.
    pub fn delays(&self, delays: &[u64]) -> Vec<FakeCall<u64>> {
        delays.iter().map(|&d| self.answer(d, d)).collect()
    }

    /// A call that panics with `message` after `delay_ms` milliseconds: a crashed shard.
    pub fn crash(&self, delay_ms: u64, message: &'static str) -> FakeCall<u64> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            panic!("{message}")
        })
    }

    /// How many calls have run to the end so far.
    pub fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

// ---- capacity_estimates ------------------------------------------------------------------------

/// `users` in millions, as a sheet writes them: "100M".
pub fn millions(users: u64) -> String {
    format!("{}M", users / 1_000_000)
}

fn rate(qps: f64) -> String {
    if qps >= 100.0 {
        format!("{qps:.0} /s")
    } else {
        format!("{qps:.1} /s")
    }
}

/// One estimate sheet's figures, computed by the learner's `estimate` (sizes already formatted
/// with their `si`).
#[derive(Debug, Clone)]
pub struct SheetFigures {
    pub daily_active_users: u64,
    pub average_qps: f64,
    pub peak_qps: f64,
    pub peak_write_qps: f64,
    pub peak_read_qps: f64,
    pub peak_in_flight: f64,
    pub storage_per_year: String,
    pub egress_at_peak: String,
    pub servers: u64,
}

/// Prints one estimate sheet: each figure with the formula it comes from.
pub fn print_estimate_sheet(f: &SheetFigures) {
    let mut sheet = Table::new(&["estimate", "value", "from"]);
    for (name, value, from) in [
        (
            "average QPS",
            rate(f.average_qps),
            "DAU × requests/user/day ÷ 86 400",
        ),
        ("peak QPS", rate(f.peak_qps), "average × peak factor"),
        (
            "  of which writes",
            rate(f.peak_write_qps),
            "peak ÷ (1 + reads/write)",
        ),
        ("  of which reads", rate(f.peak_read_qps), "peak − writes"),
        (
            "in flight at peak",
            format!("{:.0}", f.peak_in_flight),
            "Little's law: peak QPS × latency",
        ),
        (
            "storage per year",
            f.storage_per_year.clone(),
            "average writes × bytes × replicas × 365 d",
        ),
        (
            "egress at peak",
            f.egress_at_peak.clone(),
            "peak reads × response bytes × 8",
        ),
        (
            "servers",
            f.servers.to_string(),
            "peak QPS ÷ (capacity × utilisation), rounded up",
        ),
    ] {
        sheet.row(&[name, value.as_str(), from]);
    }
    sheet.print();
}

/// Prints how the same service grows: one row per sheet, and a chart of the servers needed.
pub fn print_growth(sheets: &[SheetFigures]) {
    println!("\nThe same service as it grows:\n");
    let mut growth = Table::new(&["DAU", "peak QPS", "in flight", "servers", "storage/year"]);
    let mut bars = Vec::new();
    for f in sheets {
        growth.row(&[
            millions(f.daily_active_users),
            rate(f.peak_qps),
            format!("{:.0}", f.peak_in_flight),
            f.servers.to_string(),
            f.storage_per_year.clone(),
        ]);
        bars.push((
            format!("{} DAU", millions(f.daily_active_users)),
            f.servers as f64,
        ));
    }
    growth.print();
    println!("\nservers needed\n{}", bar_chart(&bars, 40));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fake_call_counts_only_once_it_has_run_to_the_end() {
        crate::lab::simulated_runtime().block_on(async {
            let fake = FakeCalls::default();
            let started = tokio::time::Instant::now();
            assert_eq!(fake.answer(30, "a").await, "a");
            assert_eq!(started.elapsed(), Duration::from_millis(30));
            let mut pending = fake.answer(10, "b");
            let poll = futures_poll_once(&mut pending).await;
            assert!(poll.is_none(), "still sleeping");
            drop(pending);
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(fake.finished(), 1, "the dropped call never finished");
        });
    }

    /// Polls `f` once; `Some` if it was ready.
    async fn futures_poll_once<T>(f: &mut FakeCall<T>) -> Option<T> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match f.as_mut().poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
