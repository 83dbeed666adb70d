// Timeouts — never wait forever, cancel what you gave up on, and give a whole call ONE budget.
//
// A call without a timeout waits as long as its dependency does. When that dependency hangs (a
// stuck process, a lost packet, a full accept queue), every caller hangs with it and holds what
// it holds meanwhile: a socket, a task, a thread, a database connection, a slot in a pool. A few
// hundred stuck requests later the caller is out of resources too and the outage has spread one
// level up: a web server with 200 worker threads that calls a hung cache node without a timeout
// serves nobody after its 200th request, not even the pages that never needed the cache.
//
// Build, on tokio:
// - `with_timeout(step, limit, work)`: the answer of `work` if it finishes within `limit`, else
//   `TimedOut`. Giving up must CANCEL the work (in Rust: drop the future), or the socket and the
//   task stay busy with an answer nobody will read.
// - `Budget`: ONE time limit for a call made of several steps (connect, send, read the reply; or
//   three sub-calls in a row). Each step gets only what is left. A fresh full timeout per step
//   lets a 3-step call take 3 x the timeout, long after its own caller gave up.
//
// Lab (real HTTP servers on localhost: healthy, slow with a long tail, hung): calls without a
// timeout vs with TIMEOUT, then 3-step requests with a full TIMEOUT per step vs one budget.
// Turn TIMEOUT down (fewer stuck callers, more slow-but-fine calls cut off) and SLOW_FRACTION up.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::RngExt;
use sdlings_kit::backend::{self, Backend, Behaviour};
use sdlings_kit::lab::{Table, bar_chart, percent};
use sdlings_kit::workload::seeded_rng;
use tokio::time::Instant;

/// Why a call (or one step of it) did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<E> {
    /// `step` did not finish in time and was cancelled. `after`: how long the caller had been
    /// waiting for the whole call when it gave up (for a `Budget`, measured from its start).
    TimedOut { step: &'static str, after: Duration },
    /// `step` finished in time, with an error of its own (connection refused, a 503...).
    Failed { step: &'static str, error: E },
}

/// One time budget for a whole multi-step call. It starts when created; every step run through
/// `step` gets only the time that is left, so the call as a whole never takes longer than `total`.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    started: Instant,
    total: Duration,
}

impl Budget {
    /// A budget of `total`, starting now (tokio's clock: paused time in tests).
    pub fn start(total: Duration) -> Budget {
        Budget {
            started: Instant::now(),
            total,
        }
    }

    pub fn total(&self) -> Duration {
        self.total
    }

    /// Time since the budget started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

// ---- Your part -------------------------------------------------------------------------------
// The `Send + 'static` bounds are the usual ones for a request future in a tokio server.

/// Runs `work` for at most `limit`.
/// - It finishes in time with `Ok(v)`: `Ok(v)`, as soon as it is ready (not when `limit` is up).
/// - It finishes in time with `Err(e)`: `Failed { step, error: e }`.
/// - `limit` passes first: `TimedOut { step, after: limit }`, and `work` is cancelled (dropped)
///   before this returns.
///
/// A call that finishes at exactly `limit` made it in time.
pub async fn with_timeout<T, E, F>(
    step: &'static str,
    limit: Duration,
    work: F,
) -> Result<T, CallError<E>>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let _ = &work; // (only silences "unused variable" until you use `work`: delete it)
    todo!("run step {step:?} for at most {limit:?}; cancel it if the limit passes first")
}

impl Budget {
    /// The time left: `total` minus the time elapsed since the start, and zero (never a panic)
    /// once the budget is spent.
    pub fn remaining(&self) -> Duration {
        todo!("the time left of {:?}", self.total)
    }

    /// Runs one step of the call with whatever time is left, with `with_timeout`'s rules. Two
    /// differences: a timeout reports `after` = the time since the budget started (how long the
    /// caller really waited); and when nothing is left, the step is not started at all (`work` is
    /// dropped without being polled): `TimedOut` at once.
    pub async fn step<T, E, F>(&self, step: &'static str, work: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let _ = &work; // (only silences "unused variable" until you use `work`: delete it)
        todo!("run step {step:?} with the time that is left")
    }
}

// ---- Lab: real HTTP backends on localhost -----------------------------------------------------
// Part 1: three backends, CALLS calls to each (one every CALL_EVERY) from two callers at once:
// one with no timeout, one through your `with_timeout(TIMEOUT)`. Part 2: requests made of 3
// sub-calls in a row to the slow backend, with a full TIMEOUT per sub-call vs one `Budget` of
// TIMEOUT for the whole request (again both at once).

/// The caller's timeout (part 1), and the whole request's budget (part 2).
const TIMEOUT: Duration = Duration::from_millis(100);
/// The share of the slow backend's calls that hit its long tail.
const SLOW_FRACTION: f64 = 0.1;
/// How long a call in the tail takes: uniform in this range, in ms.
const TAIL_MS: (u64, u64) = (150, 600);
const HEALTHY_LATENCY: Duration = Duration::from_millis(2);
const CALLS: usize = 200;
const CALL_EVERY: Duration = Duration::from_millis(2);
/// "No timeout" still needs an end, or the lab would never finish against the hung backend: the
/// calls give up after this much. Real code without a timeout can wait for hours (until TCP
/// keepalive notices) or forever.
const SAFETY_LIMIT: Duration = Duration::from_millis(1000);
/// Part 2: the slow backend is degraded and every sub-call takes this long (uniform, in ms):
/// each one under TIMEOUT, three in a row usually not.
const DEGRADED_MS: (u64, u64) = (10, 60);
/// Timer and scheduling slack when counting answers that came after TIMEOUT.
const SLACK: Duration = Duration::from_millis(1);
const SUB_CALLS: [&str; 3] = ["auth", "profile", "feed"];
const SEED: u64 = 6;

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
    /// No timeout, and the call was still waiting at SAFETY_LIMIT.
    Stuck,
    Failed,
}

struct Sample {
    latency: Duration,
    outcome: Outcome,
}

/// One GET whose socket is counted by `gauge` for as long as the future lives.
fn get(
    addr: SocketAddr,
    path: String,
    gauge: &Arc<Gauge>,
) -> impl Future<Output = Result<(), std::io::Error>> + Send + 'static {
    let gauge = Arc::clone(gauge);
    async move {
        // Counted from the first poll (the call starts) to the drop (finished or cancelled).
        let _held = gauge.enter();
        let response = backend::get(addr, &path, SAFETY_LIMIT).await?;
        if response.status == 200 {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("status {}", response.status)))
        }
    }
}

fn outcome_of<E>(result: Result<(), CallError<E>>) -> Outcome {
    match result {
        Ok(()) => Outcome::Ok,
        Err(CallError::TimedOut { .. }) => Outcome::TimedOut,
        Err(CallError::Failed { .. }) => Outcome::Failed,
    }
}

/// The path of one call to the slow backend: usually quick, in the tail SLOW_FRACTION of the time.
fn slow_path(rng: &mut rand::rngs::StdRng) -> String {
    let ms = if rng.random_bool(SLOW_FRACTION) {
        rng.random_range(TAIL_MS.0..=TAIL_MS.1)
    } else {
        rng.random_range(0..=10)
    };
    format!("/work?ms={ms}")
}

/// Part 1: CALLS calls to each backend, with or without your timeout.
async fn single_calls(
    backends: &[(&str, SocketAddr)],
    timeout: Option<Duration>,
) -> (Vec<Vec<Sample>>, usize) {
    let gauge = Arc::new(Gauge::default());
    let mut rng = seeded_rng(SEED);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CALLS {
        for (b, &(name, addr)) in backends.iter().enumerate() {
            let path = if name.starts_with("slow") {
                slow_path(&mut rng)
            } else {
                "/work".to_string()
            };
            let work = get(addr, path, &gauge);
            let at = start + CALL_EVERY * i as u32;
            tasks.spawn(async move {
                tokio::time::sleep_until(at).await;
                let began = Instant::now();
                let outcome = match timeout {
                    Some(limit) => outcome_of(with_timeout("GET", limit, work).await),
                    None => match work.await {
                        Ok(()) => Outcome::Ok,
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Outcome::Stuck,
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

/// Part 2: requests of 3 sub-calls in a row, each sub-call with its own full TIMEOUT (`budget =
/// false`) or all three inside one Budget of TIMEOUT.
async fn multi_step(addr: SocketAddr, plan: &[Vec<String>], budget: bool) -> Vec<Sample> {
    let gauge = Arc::new(Gauge::default());
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, paths) in plan.iter().enumerate() {
        let paths = paths.clone();
        let gauge = Arc::clone(&gauge);
        let at = start + CALL_EVERY * i as u32;
        tasks.spawn(async move {
            tokio::time::sleep_until(at).await;
            let began = Instant::now();
            let request = Budget::start(TIMEOUT);
            let mut result = Ok(());
            for (step, path) in SUB_CALLS.into_iter().zip(paths) {
                let work = get(addr, path, &gauge);
                result = if budget {
                    request.step(step, work).await
                } else {
                    with_timeout(step, TIMEOUT, work).await
                };
                if result.is_err() {
                    break;
                }
            }
            Sample {
                latency: began.elapsed(),
                outcome: outcome_of(result),
            }
        });
    }
    tasks.join_all().await
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Nearest-rank percentile of the latencies.
fn pct(samples: &[Sample], p: f64) -> Duration {
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort_unstable();
    let rank = ((p * latencies.len() as f64 / 100.0).ceil() as usize).clamp(1, latencies.len());
    latencies[rank - 1]
}

fn count(samples: &[Sample], outcome: Outcome) -> usize {
    samples.iter().filter(|s| s.outcome == outcome).count()
}

fn main() {
    let runtime = sdlings_kit::lab::runtime();
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
            "Part 1. {CALLS} calls to each of 3 backends on 127.0.0.1, one every {CALL_EVERY:?}.\n\
             The slow one answers in 0-10 ms, but {:.0}% of its calls take {}-{} ms; the hung \
             one never answers.\n",
            SLOW_FRACTION * 100.0,
            TAIL_MS.0,
            TAIL_MS.1
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
        // Both callers at the same time, against the same backends, with the same seeded calls.
        let (without, with) = tokio::join!(
            single_calls(&backends, None),
            single_calls(&backends, Some(TIMEOUT))
        );
        for (label, (per_backend, peak)) in [
            ("no timeout*".to_string(), without),
            (format!("timeout {}", fmt_ms(TIMEOUT)), with),
        ] {
            for ((name, _), samples) in backends.iter().zip(&per_backend) {
                let timed_out = count(samples, Outcome::TimedOut) + count(samples, Outcome::Stuck);
                let stuck: Duration = samples.iter().map(|s| s.latency).sum();
                table.row(&[
                    format!("{name} / {label}"),
                    percent(count(samples, Outcome::Ok) as u64, samples.len() as u64),
                    timed_out.to_string(),
                    fmt_ms(pct(samples, 50.0)),
                    fmt_ms(pct(samples, 99.0)),
                    fmt_ms(pct(samples, 100.0)),
                    format!("{:.1} s", stuck.as_secs_f64()),
                ]);
            }
            peaks.push((label.to_string(), peak as f64));
        }
        table.print();
        println!(
            "* bounded by a {} safety limit so that the lab ends: the hung backend's calls would \
             otherwise wait forever.\n",
            fmt_ms(SAFETY_LIMIT)
        );
        println!(
            "calls open at once at the peak (each holds a socket and a task)\n{}\nWithout a \
             timeout they pile up for as long as the backend stays hung; with one they stop \
             growing at about\n(calls per second) x TIMEOUT.\n",
            bar_chart(&peaks, 40)
        );

        // Part 2: the same random plan for both modes, so they face exactly the same slow calls.
        let mut rng = seeded_rng(SEED + 1);
        let plan: Vec<Vec<String>> = (0..CALLS)
            .map(|_| {
                SUB_CALLS
                    .iter()
                    .map(|_| {
                        let ms = rng.random_range(DEGRADED_MS.0..=DEGRADED_MS.1);
                        format!("/work?ms={ms}")
                    })
                    .collect()
            })
            .collect();
        let slow = fleet[1].addr();
        println!(
            "Part 2. The slow backend degrades: every call now takes {}-{} ms. {CALLS} requests, \
             each 3 sub-calls in a row\n({}). The request's own caller gives up after {}.\n",
            DEGRADED_MS.0,
            DEGRADED_MS.1,
            SUB_CALLS.join(", "),
            fmt_ms(TIMEOUT)
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
            multi_step(slow, &plan, false),
            multi_step(slow, &plan, true)
        );
        for (label, samples) in [
            (format!("{} per sub-call", fmt_ms(TIMEOUT)), per_step),
            (format!("one budget of {}", fmt_ms(TIMEOUT)), budget),
        ] {
            // A little slack for the timer and the scheduler: "late" means really late.
            let late = samples
                .iter()
                .filter(|s| s.outcome == Outcome::Ok && s.latency > TIMEOUT + SLACK)
                .count();
            let stuck: Duration = samples.iter().map(|s| s.latency).sum();
            table.row(&[
                label,
                (count(&samples, Outcome::Ok) - late).to_string(),
                late.to_string(),
                count(&samples, Outcome::TimedOut).to_string(),
                fmt_ms(pct(&samples, 50.0)),
                fmt_ms(pct(&samples, 99.0)),
                fmt_ms(pct(&samples, 100.0)),
                format!("{:.1} s", stuck.as_secs_f64()),
            ]);
        }
        table.print();
        println!(
            "\n\"ok too late\": answered after the caller had given up ({}): work wasted. With a \
             full timeout per sub-call\na request may run up to {} x {}; one budget ends every \
             request by {}.\n(lab wall time {:.1} s)",
            fmt_ms(TIMEOUT),
            SUB_CALLS.len(),
            fmt_ms(TIMEOUT),
            fmt_ms(TIMEOUT),
            wall.elapsed().as_secs_f64()
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    type Answer = Result<u32, &'static str>;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A dependency that answers `value` after `after_ms` (paused time: exactly then).
    async fn answers(after_ms: u64, value: u32) -> Answer {
        tokio::time::sleep(ms(after_ms)).await;
        Ok(value)
    }

    /// A dependency that fails with `error` after `after_ms`.
    async fn fails(after_ms: u64, error: &'static str) -> Answer {
        tokio::time::sleep(ms(after_ms)).await;
        Err(error)
    }

    /// A dependency that never answers (a hung server).
    async fn hangs() -> Answer {
        std::future::pending().await
    }

    /// Watches a piece of work: whether it was ever polled (started), whether it ran to the end,
    /// and whether it was dropped (cancelled, or finished and cleaned up).
    #[derive(Default)]
    struct Watch {
        started: Arc<AtomicBool>,
        finished: Arc<AtomicBool>,
        dropped: Arc<AtomicBool>,
    }

    struct SetOnDrop(Arc<AtomicBool>);

    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    impl Watch {
        fn work<F>(&self, work: F) -> impl Future<Output = F::Output> + Send + 'static
        where
            F: Future + Send + 'static,
        {
            // Created outside the async block, so dropping the future unpolled drops it too.
            let guard = SetOnDrop(Arc::clone(&self.dropped));
            let (started, finished) = (Arc::clone(&self.started), Arc::clone(&self.finished));
            async move {
                let _guard = guard;
                started.store(true, Ordering::SeqCst);
                let output = work.await;
                finished.store(true, Ordering::SeqCst);
                output
            }
        }

        fn started(&self) -> bool {
            self.started.load(Ordering::SeqCst)
        }

        fn finished(&self) -> bool {
            self.finished.load(Ordering::SeqCst)
        }

        fn dropped(&self) -> bool {
            self.dropped.load(Ordering::SeqCst)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_call_returns_its_answer_as_soon_as_it_is_ready() {
        let started = Instant::now();
        let result = with_timeout("get", Duration::from_secs(1), answers(20, 7)).await;
        assert_eq!(result, Ok(7));
        assert_eq!(
            started.elapsed(),
            ms(20),
            "the answer came after 20 ms and must be returned then, not when the 1 s limit is up: \
             a timeout bounds the wait, it does not add to it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_fails_on_its_own_reports_failed_not_timed_out() {
        let started = Instant::now();
        let result = with_timeout("connect", ms(500), fails(30, "connection refused")).await;
        assert_eq!(
            result,
            Err(CallError::Failed {
                step: "connect",
                error: "connection refused"
            }),
            "the call ended within its limit with an error of its own: that error is the answer"
        );
        assert_eq!(started.elapsed(), ms(30), "returned when the call failed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_answers_times_out_after_exactly_the_limit() {
        let started = Instant::now();
        let result = with_timeout("read reply", ms(250), hangs()).await;
        assert_eq!(
            result,
            Err(CallError::TimedOut {
                step: "read reply",
                after: ms(250)
            }),
            "a hung dependency must not hang the caller: give up after the limit"
        );
        assert_eq!(started.elapsed(), ms(250));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_call_is_abandoned_at_the_limit_not_awaited_to_the_end() {
        let started = Instant::now();
        let result = with_timeout("get", ms(100), answers(5_000, 1)).await;
        assert_eq!(
            result,
            Err(CallError::TimedOut {
                step: "get",
                after: ms(100)
            })
        );
        assert_eq!(
            started.elapsed(),
            ms(100),
            "the call would answer after 5 s; the caller stops waiting at 100 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_timed_out_work_is_cancelled_before_with_timeout_returns() {
        let watch = Watch::default();
        let result = with_timeout("get", ms(100), watch.work(answers(1_000, 1))).await;
        assert!(matches!(result, Err(CallError::TimedOut { .. })));
        assert!(
            watch.dropped(),
            "with_timeout returned TimedOut but the work is still alive: cancel it by dropping \
             its future. A spawned task is NOT cancelled when its JoinHandle is dropped, it keeps \
             its socket and runs on for an answer nobody will read"
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(
            !watch.finished(),
            "the abandoned work ran to completion in the background: it must be cancelled"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_answers_exactly_at_the_limit_made_it_in_time() {
        let result = with_timeout("get", ms(100), answers(100, 9)).await;
        assert_eq!(
            result,
            Ok(9),
            "the answer is ready at 100 ms and the limit is 100 ms: within the limit. (tokio's \
             `select!` picks at random among ready branches unless it is `biased`, and \
             `tokio::time::timeout` checks the work before the timer)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn remaining_shrinks_with_time_and_stops_at_zero() {
        let budget = Budget::start(ms(100));
        assert_eq!(budget.remaining(), ms(100), "nothing spent yet");
        tokio::time::sleep(ms(30)).await;
        assert_eq!(budget.remaining(), ms(70), "30 ms of 100 ms spent");
        tokio::time::sleep(ms(100)).await;
        assert_eq!(
            budget.remaining(),
            Duration::ZERO,
            "130 ms of 100 ms spent: nothing is left (and `Duration` subtraction below zero panics)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_of_fast_steps_returns_as_soon_as_its_last_step_is_done() {
        let budget = Budget::start(Duration::from_secs(1));
        let started = Instant::now();
        assert_eq!(budget.step("connect", answers(10, 1)).await, Ok(1));
        assert_eq!(budget.step("send", answers(20, 2)).await, Ok(2));
        assert_eq!(budget.step("read", answers(30, 3)).await, Ok(3));
        assert_eq!(
            started.elapsed(),
            ms(60),
            "10 + 20 + 30 ms of work: the call is done after 60 ms, whatever the budget"
        );
        assert_eq!(budget.remaining(), ms(940));
    }

    #[tokio::test(start_paused = true)]
    async fn steps_share_one_budget_instead_of_getting_a_full_timeout_each() {
        let budget = Budget::start(ms(200));
        let started = Instant::now();
        assert_eq!(budget.step("connect", answers(80, 1)).await, Ok(1));
        assert_eq!(budget.step("send", answers(80, 2)).await, Ok(2));
        let result = budget.step("read", answers(80, 3)).await;
        assert_eq!(
            result,
            Err(CallError::TimedOut {
                step: "read",
                after: ms(200)
            }),
            "three steps of 80 ms each fit a 200 ms timeout one by one, but not together: the \
             third step had only the 40 ms the first two left. `after` is how long the caller \
             waited in all (200 ms), not the step's share"
        );
        assert_eq!(
            started.elapsed(),
            ms(200),
            "the whole call must end at its 200 ms budget"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_step_gets_only_the_time_the_earlier_steps_left() {
        let budget = Budget::start(ms(300));
        let started = Instant::now();
        assert_eq!(budget.step("connect", answers(100, 1)).await, Ok(1));
        let result = budget.step("send", hangs()).await;
        assert_eq!(
            result,
            Err(CallError::TimedOut {
                step: "send",
                after: ms(300)
            }),
            "the hung step is the one to report, and the caller waited 300 ms in all"
        );
        assert_eq!(
            started.elapsed(),
            ms(300),
            "connect took 100 ms of the 300 ms budget, so the hung step may wait 200 ms, not a \
             fresh 300 ms (that would make the call last 400 ms)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_that_fails_reports_its_own_error_and_name() {
        let budget = Budget::start(ms(300));
        assert_eq!(budget.step("connect", answers(10, 1)).await, Ok(1));
        assert_eq!(
            budget.step("send", fails(10, "connection reset")).await,
            Err(CallError::Failed {
                step: "send",
                error: "connection reset"
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_timed_out_step_is_cancelled() {
        let budget = Budget::start(ms(150));
        let watch = Watch::default();
        let result = budget.step("read", watch.work(answers(1_000, 1))).await;
        assert!(matches!(result, Err(CallError::TimedOut { .. })));
        assert!(
            watch.dropped(),
            "the step timed out but its work is still alive: it must be cancelled (dropped)"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!watch.finished(), "the abandoned step ran on to the end");
    }

    #[tokio::test(start_paused = true)]
    async fn steps_that_end_exactly_at_the_deadline_made_it_in_time() {
        let budget = Budget::start(ms(200));
        assert_eq!(budget.step("connect", answers(100, 1)).await, Ok(1));
        assert_eq!(
            budget.step("read", answers(100, 2)).await,
            Ok(2),
            "100 + 100 ms in a 200 ms budget: the answer arrives exactly at the deadline, in time"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_is_not_started_once_the_budget_is_spent() {
        let budget = Budget::start(ms(100));
        tokio::time::sleep(ms(120)).await; // the caller spent the budget on something else
        let watch = Watch::default();
        let started = Instant::now();
        let result = budget.step("connect", watch.work(answers(0, 1))).await;
        assert_eq!(
            result,
            Err(CallError::TimedOut {
                step: "connect",
                after: ms(120)
            }),
            "120 ms into a 100 ms budget nothing is left: fail at once, reporting the 120 ms the \
             caller has waited"
        );
        assert_eq!(started.elapsed(), Duration::ZERO, "at once");
        assert!(
            !watch.started(),
            "with no time left the step must not even start (a connection opened only to be \
             abandoned is load on the server for nothing)"
        );
        assert!(watch.dropped(), "the unstarted work is dropped, not kept");
    }
}
