use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::RngExt;
use tokio::time::Instant;

use crate::backend::{self, Backend, Behaviour};
use crate::lab::{Table, bar_chart, nearest_rank, percent, whole_millis};
use crate::workload::seeded_rng;

/// Why a call (or one step of it) did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<E> {
    /// `step` did not finish in time and was cancelled. `after`: how long the caller had been
    /// waiting for the whole call when it gave up (for a `Budget`, measured from its start).
    TimedOut { step: &'static str, after: Duration },
    /// `step` finished in time, with an error of its own (connection refused, a 503...).
    Failed { step: &'static str, error: E },
}

/// How a call ended, as the lab counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    TimedOut,
    Failed,
}

impl<E> From<Result<(), CallError<E>>> for Verdict {
    fn from(result: Result<(), CallError<E>>) -> Verdict {
        match result {
            Ok(()) => Verdict::Ok,
            Err(CallError::TimedOut { .. }) => Verdict::TimedOut,
            Err(CallError::Failed { .. }) => Verdict::Failed,
        }
    }
}

/// One GET to a backend, not started until first polled.
pub type Work = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;
/// A call (or a whole request) in progress, through the learner's code.
pub type Pending = Pin<Box<dyn Future<Output = Result<(), CallError<io::Error>>> + Send>>;

/// The healthy backend's latency.
const HEALTHY_LATENCY: Duration = Duration::from_millis(2);
/// "No timeout" still needs an end, or the lab would never finish against the hung backend
/// (real code may wait for hours): such calls give up after this much.
const SAFETY_LIMIT: Duration = Duration::from_millis(1000);
/// Part 2: the sub-calls of one request, in a row.
const SUB_CALLS: [&str; 3] = ["auth", "profile", "feed"];
const SEED: u64 = 6;

pub struct Knobs {
    /// The caller's timeout (part 1), and the whole request's budget (part 2).
    pub timeout: Duration,
    /// The share of the slow backend's calls that hit its long tail...
    pub slow_fraction: f64,
    /// ...and how long they take: uniform in this range, in ms.
    pub tail_ms: (u64, u64),
    pub calls: usize,
    pub call_every: Duration,
    /// Part 2: every sub-call to the degraded backend takes this long (uniform, in ms).
    pub degraded_ms: (u64, u64),
    /// `with_timeout(step, limit, work)`, as a verdict.
    pub call: fn(&'static str, Duration, Work) -> Pending,
    /// The sub-calls run in a row inside one budget of the given total, as a verdict.
    pub request: fn(Duration, Vec<(&'static str, Work)>) -> Pending,
}

/// Timer and scheduling slack when counting answers that came after the timeout.
const SLACK: Duration = Duration::from_millis(1);

/// Counts the calls open right now (each holds a socket and a task) and the peak.
#[derive(Default)]
struct Gauge {
    open: AtomicUsize,
    peak: AtomicUsize,
}

struct Held(Arc<Gauge>);

impl Gauge {
    fn enter(self: &Arc<Self>) -> Held {
        let now = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Held(Arc::clone(self))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Ok,
    TimedOut,
    /// No timeout, and the call was still waiting at the safety limit.
    Stuck,
    Failed,
}

impl From<Verdict> for Outcome {
    fn from(v: Verdict) -> Outcome {
        match v {
            Verdict::Ok => Outcome::Ok,
            Verdict::TimedOut => Outcome::TimedOut,
            Verdict::Failed => Outcome::Failed,
        }
    }
}

struct Sample {
    latency: Duration,
    outcome: Outcome,
}

/// One GET whose socket is counted by `gauge` for as long as the future lives.
fn get(addr: SocketAddr, path: String, gauge: &Arc<Gauge>, limit: Duration) -> Work {
    let gauge = Arc::clone(gauge);
    Box::pin(async move {
        // Counted from the first poll (the call starts) to the drop (finished or cancelled).
        let _held = gauge.enter();
        let response = backend::get(addr, &path, limit).await?;
        if response.status == 200 {
            Ok(())
        } else {
            Err(io::Error::other(format!("status {}", response.status)))
        }
    })
}

/// The path of one call to the slow backend: usually quick, sometimes in the tail.
fn slow_path(k: &Knobs, rng: &mut rand::rngs::StdRng) -> String {
    let ms = if rng.random_bool(k.slow_fraction) {
        rng.random_range(k.tail_ms.0..=k.tail_ms.1)
    } else {
        rng.random_range(0..=10)
    };
    format!("/work?ms={ms}")
}

/// Part 1: `calls` calls to each backend, with or without the learner's timeout.
async fn single_calls(
    k: &Knobs,
    backends: &[(&str, SocketAddr)],
    timeout: Option<Duration>,
) -> (Vec<Vec<Sample>>, usize) {
    let gauge = Arc::new(Gauge::default());
    let mut rng = seeded_rng(SEED);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..k.calls {
        for (b, &(name, addr)) in backends.iter().enumerate() {
            let path = if name.starts_with("slow") {
                slow_path(k, &mut rng)
            } else {
                "/work".to_string()
            };
            let work = get(addr, path, &gauge, SAFETY_LIMIT);
            let at = start + k.call_every * i as u32;
            let call = k.call;
            tasks.spawn(async move {
                tokio::time::sleep_until(at).await;
                let began = Instant::now();
                let outcome = match timeout {
                    Some(limit) => Verdict::from(call("GET", limit, work).await).into(),
                    None => match work.await {
                        Ok(()) => Outcome::Ok,
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => Outcome::Stuck,
                        Err(_) => Outcome::Failed,
                    },
                };
                let latency = began.elapsed();
                (b, Sample { latency, outcome })
            });
        }
    }
    let mut per_backend: Vec<Vec<Sample>> = backends.iter().map(|_| Vec::new()).collect();
    for (b, sample) in tasks.join_all().await {
        per_backend[b].push(sample);
    }
    (per_backend, gauge.peak.load(Ordering::SeqCst))
}

/// Part 2: requests of sub-calls in a row, each sub-call with its own full timeout (`budget
/// = false`) or all of them inside one budget of that timeout.
async fn multi_step(
    k: &Knobs,
    addr: SocketAddr,
    plan: &[Vec<String>],
    budget: bool,
) -> Vec<Sample> {
    let gauge = Arc::new(Gauge::default());
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, paths) in plan.iter().enumerate() {
        let works: Vec<(&'static str, Work)> = SUB_CALLS
            .iter()
            .zip(paths)
            .map(|(&step, path)| (step, get(addr, path.clone(), &gauge, SAFETY_LIMIT)))
            .collect();
        let at = start + k.call_every * i as u32;
        let (call, request, timeout) = (k.call, k.request, k.timeout);
        tasks.spawn(async move {
            tokio::time::sleep_until(at).await;
            let began = Instant::now();
            let verdict: Verdict = if budget {
                request(timeout, works).await.into()
            } else {
                let mut verdict = Verdict::Ok;
                for (step, work) in works {
                    verdict = call(step, timeout, work).await.into();
                    if verdict != Verdict::Ok {
                        break;
                    }
                }
                verdict
            };
            Sample {
                latency: began.elapsed(),
                outcome: verdict.into(),
            }
        });
    }
    tasks.join_all().await
}

/// Nearest-rank percentile of the latencies.
fn pct(samples: &[Sample], p: f64) -> Duration {
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort_unstable();
    nearest_rank(&latencies, p / 100.0).expect("at least one sample")
}

fn count(samples: &[Sample], outcome: Outcome) -> usize {
    samples.iter().filter(|s| s.outcome == outcome).count()
}

/// Runs both parts and prints their tables.
pub fn run(k: &Knobs) {
    let runtime = crate::lab::runtime();
    runtime.block_on(async {
        let wall = std::time::Instant::now();
        let healthy = Behaviour::Healthy {
            latency: HEALTHY_LATENCY,
        };
        let fleet = [
            Backend::start("healthy", healthy.clone()).await,
            Backend::start("slow (long tail)", healthy).await,
            Backend::start("hung", Behaviour::Hung).await,
        ]
        .map(|b| b.expect("start a backend on 127.0.0.1"));
        let backends: Vec<(&str, SocketAddr)> =
            fleet.iter().map(|b| (b.name(), b.addr())).collect();

        println!(
            "Part 1. {} calls to each of 3 backends on 127.0.0.1, one every {:?}.\n\
             The slow one answers in 0-10 ms, but {:.0}% of its calls take {}-{} ms; the hung \
             one never answers.\n",
            k.calls,
            k.call_every,
            k.slow_fraction * 100.0,
            k.tail_ms.0,
            k.tail_ms.1
        );
        let mut table = Table::new(&[
            "backend / caller",
            "ok",
            "timed out",
            "p50",
            "p99",
            "max",
            "caller time stuck",
        ]);
        let mut peaks = Vec::new();
        // Both callers at the same time, against the same backends, with the same calls.
        let (without, with) = tokio::join!(
            single_calls(k, &backends, None),
            single_calls(k, &backends, Some(k.timeout))
        );
        for (label, (per_backend, peak)) in [
            ("no timeout*".to_string(), without),
            (format!("timeout {}", whole_millis(k.timeout)), with),
        ] {
            for ((name, _), samples) in backends.iter().zip(&per_backend) {
                let timed_out = count(samples, Outcome::TimedOut) + count(samples, Outcome::Stuck);
                let stuck: Duration = samples.iter().map(|s| s.latency).sum();
                table.row(&[
                    format!("{name} / {label}"),
                    percent(count(samples, Outcome::Ok) as u64, samples.len() as u64),
                    timed_out.to_string(),
                    whole_millis(pct(samples, 50.0)),
                    whole_millis(pct(samples, 99.0)),
                    whole_millis(pct(samples, 100.0)),
                    format!("{:.1} s", stuck.as_secs_f64()),
                ]);
            }
            peaks.push((label.to_string(), peak as f64));
        }
        table.print();
        println!(
            "* bounded by a {} safety limit so that the lab ends: the hung backend's calls \
             would otherwise wait forever.\n",
            whole_millis(SAFETY_LIMIT)
        );
        println!(
            "calls open at once at the peak (each holds a socket and a task)\n{}\nWithout a \
             timeout they pile up for as long as the backend stays hung; with one they stop \
             growing at about\n(calls per second) x TIMEOUT.\n",
            bar_chart(&peaks, 40)
        );

        // Part 2: the same random plan for both modes: exactly the same slow calls.
        let mut rng = seeded_rng(SEED + 1);
        let plan: Vec<Vec<String>> = (0..k.calls)
            .map(|_| {
                SUB_CALLS
                    .iter()
                    .map(|_| {
                        let ms = rng.random_range(k.degraded_ms.0..=k.degraded_ms.1);
                        format!("/work?ms={ms}")
                    })
                    .collect()
            })
            .collect();
        let slow = fleet[1].addr();
        println!(
            "Part 2. The slow backend degrades: every call now takes {}-{} ms. {} requests, \
             each {} sub-calls in a row\n({}). The request's own caller gives up after {}.\n",
            k.degraded_ms.0,
            k.degraded_ms.1,
            k.calls,
            SUB_CALLS.len(),
            SUB_CALLS.join(", "),
            whole_millis(k.timeout)
        );
        let mut table = Table::new(&[
            "timeouts",
            "ok in time",
            "ok too late",
            "timed out",
            "p50",
            "p99",
            "max",
            "caller time stuck",
        ]);
        let (per_step, budget) = tokio::join!(
            multi_step(k, slow, &plan, false),
            multi_step(k, slow, &plan, true)
        );
        for (label, samples) in [
            (
                format!("{} per sub-call", whole_millis(k.timeout)),
                per_step,
            ),
            (format!("one budget of {}", whole_millis(k.timeout)), budget),
        ] {
            // A little slack for the timer and the scheduler: "late" means really late.
            let late = samples
                .iter()
                .filter(|s| s.outcome == Outcome::Ok && s.latency > k.timeout + SLACK)
                .count();
            let stuck: Duration = samples.iter().map(|s| s.latency).sum();
            table.row(&[
                label,
                (count(&samples, Outcome::Ok) - late).to_string(),
                late.to_string(),
                count(&samples, Outcome::TimedOut).to_string(),
                whole_millis(pct(&samples, 50.0)),
                whole_millis(pct(&samples, 99.0)),
                whole_millis(pct(&samples, 100.0)),
                format!("{:.1} s", stuck.as_secs_f64()),
            ]);
        }
        table.print();
        println!(
            "\n\"ok too late\": answered after the caller had given up ({}): work wasted. \
             With a full timeout per sub-call\na request may run up to {} x {}; one budget \
             ends every request by {}.\n(lab wall time {:.1} s)",
            whole_millis(k.timeout),
            SUB_CALLS.len(),
            whole_millis(k.timeout),
            whole_millis(k.timeout),
            wall.elapsed().as_secs_f64()
        );
    });
}
