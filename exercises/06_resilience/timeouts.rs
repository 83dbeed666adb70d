// Timeouts — never wait forever, cancel what you gave up on, and give a whole call ONE budget.
//
// A call without a timeout waits as long as its dependency does. When that dependency hangs (a
// stuck process, a lost packet, a full accept queue), every caller hangs with it, holding a
// socket, a task, a thread or a pooled connection meanwhile: a web server with 200 worker
// threads that calls a hung cache node without a timeout serves nobody after its 200th request,
// not even the pages that never needed the cache. The outage has spread one level up.
//
// Build `with_timeout`: the answer of `work` if it comes within `limit`, else `TimedOut`; giving
// up must CANCEL the work (in Rust: drop the future), or its socket and task stay busy for an
// answer nobody reads. Then `Budget`: ONE time limit for a call of several steps (connect, send,
// read), each step getting only what is left: a fresh timeout per step lets a 3-step call take 3
// x the timeout, long after its own caller gave up.
//
// Lab (real HTTP servers on localhost: healthy, slow with a long tail, hung): calls without a
// timeout vs with TIMEOUT, then 3-step requests with a full TIMEOUT per step vs one budget.
// Turn TIMEOUT down (fewer stuck callers, more slow-but-fine calls cut off) and SLOW_FRACTION up.

use std::future::Future;
use std::time::Duration;

// Given: `CallError`, `TimedOut { step, after }` or `Failed { step, error }` (see its docs in the
// kit). The `Send + 'static` bounds are the usual ones for a request future in a tokio server.
use sdlings_kit::resilience::timeouts::{self, CallError, Pending, Work};
use tokio::time::Instant;

// ---- Your part -------------------------------------------------------------------------------

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

// Given: the budget's state. Yours: its `remaining` and `step`.

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
        let started = Instant::now();
        Budget { started, total }
    }

    /// Time since the budget started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

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

// ---- Lab: real HTTP backends on localhost (see the header) -----------------------------------

/// The caller's timeout (part 1), and the whole request's budget (part 2).
const TIMEOUT: Duration = Duration::from_millis(100);
/// The share of the slow backend's calls that hit its long tail.
const SLOW_FRACTION: f64 = 0.1;
/// How long a call in the tail takes: uniform in this range, in ms.
const TAIL_MS: (u64, u64) = (150, 600);
/// Part 2: the slow backend is degraded and every sub-call takes this long (uniform, in ms):
/// each one under TIMEOUT, three in a row usually not.
const DEGRADED_MS: (u64, u64) = (10, 60);
/// Calls to each backend, one every CALL_EVERY.
const CALLS: usize = 200;
const CALL_EVERY: Duration = Duration::from_millis(2);

fn main() {
    timeouts::run(&timeouts::Knobs {
        timeout: TIMEOUT,
        slow_fraction: SLOW_FRACTION,
        tail_ms: TAIL_MS,
        calls: CALLS,
        call_every: CALL_EVERY,
        degraded_ms: DEGRADED_MS,
        call: |step, limit, work| Box::pin(with_timeout(step, limit, work)),
        request: one_budget,
    });
}

/// The lab's request: its sub-calls in a row, inside one `Budget`.
fn one_budget(total: Duration, steps: Vec<(&'static str, Work)>) -> Pending {
    Box::pin(async move {
        let budget = Budget::start(total);
        for (step, work) in steps {
            budget.step(step, work).await?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use sdlings_kit::resilience::testing::{Fake, Fake::*, Watch, paused};

    type Outcome = Result<u64, CallError<&'static str>>;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn timed_out(step: &'static str, after: u64) -> Outcome {
        let after = ms(after);
        Err(CallError::TimedOut { step, after })
    }

    /// What `fake` gives when it ends in time: its answer, or its own error.
    fn in_time(fake: Fake, step: &'static str) -> Outcome {
        fake.outcome()
            .map_err(|error| CallError::Failed { step, error })
    }

    /// The work behind `result` was dropped before the caller got `result`, and, unless it ended
    /// in time, never runs on afterwards.
    async fn assert_cancelled_unless_in_time(watch: &Watch, result: &Outcome, what: &str) {
        let in_time = !matches!(result, Err(CallError::TimedOut { .. }));
        assert!(
            watch.dropped(),
            "{what}: the work must be dropped before returning"
        );
        tokio::time::sleep(Duration::from_secs(2 * 24 * 3600)).await;
        assert_eq!(
            watch.finished(),
            in_time,
            "{what}: work that missed its limit must be cancelled (dropped), not left running \
             for an answer nobody reads (a spawned task is NOT cancelled by dropping its handle)"
        );
    }

    // --- with_timeout ---

    /// `with_timeout("get", limit, fake)`: its result, when it returned, and checks cancellation.
    async fn call(limit: u64, fake: Fake) -> (Outcome, u64) {
        let (watch, started) = (Watch::default(), Instant::now());
        let result = with_timeout("get", ms(limit), watch.work(fake.call())).await;
        let took = started.elapsed().as_millis() as u64;
        let what = format!("with_timeout(\"get\", {limit} ms, {fake:?})");
        assert_cancelled_unless_in_time(&watch, &result, &what).await;
        (result, took)
    }

    #[tokio::test(start_paused = true)]
    async fn with_timeout_returns_the_answer_in_time_or_times_out_at_the_limit() {
        // (what must hold, limit ms, the dependency => the result, returned after ms)
        #[rustfmt::skip]
        let cases = [
            ("a fast answer is returned when ready: a timeout bounds the wait, never adds to it",
             1_000, Answers(20), Ok(20), 20),
            ("a call that fails on its own within the limit reports Failed, not TimedOut",
             500, Fails(30), Err(CallError::Failed { step: "get", error: "refused" }), 30),
            ("a hung dependency must not hang the caller: give up after exactly the limit",
             250, Hangs, timed_out("get", 250), 250),
            ("an answer 1 ms after the limit is too late: give up at the limit, not at the answer",
             100, Answers(101), timed_out("get", 100), 100),
            ("an answer exactly at the limit made it in time (the answer wins a tie)",
             100, Answers(100), Ok(100), 100),
        ];
        for (what, limit, fake, expected, took) in cases {
            assert_eq!(call(limit, fake).await, (expected, took), "{what}");
        }
    }

    #[test]
    fn with_timeout_answers_in_time_or_times_out_at_the_limit_for_any_limit() {
        // A tie between the answer and the timer comes up in about 1 case in 4: a `select!` that
        // picks at random among ready branches cannot pass by luck.
        sdlings_kit::property::for_seeds(300, |rng| {
            let limit = rng.random_range(0..=50);
            let fake = Fake::random(rng, limit);
            let expected = match fake.ends() {
                Some(at) if at <= limit => (in_time(fake, "get"), at),
                _ => (timed_out("get", limit), limit),
            };
            paused(async move {
                assert_eq!(
                    call(limit, fake).await,
                    expected,
                    "limit {limit} ms, dependency {fake:?}: (result, ms). In time: its answer or \
                     its own error, as soon as it comes; else TimedOut, exactly at the limit"
                );
            });
        });
    }

    // --- Budget ---

    #[tokio::test(start_paused = true)]
    async fn remaining_shrinks_with_time_and_stops_at_zero() {
        let budget = Budget::start(ms(100));
        assert_eq!(budget.remaining(), ms(100), "nothing spent yet");
        tokio::time::sleep(ms(30)).await;
        assert_eq!(budget.remaining(), ms(70), "30 ms of 100 ms spent");
        tokio::time::sleep(ms(100)).await;
        let why = "130 ms of 100 ms spent: none left (and `Duration` below zero panics)";
        assert_eq!(budget.remaining(), Duration::ZERO, "{why}");
    }

    const STEPS: [&str; 4] = ["connect", "send", "read", "close"];

    /// Runs steps `STEPS[i]` in one budget of `total` ms, each after `gap` ms spent elsewhere,
    /// until one fails. Per step: its result, ms since the start when it returned, whether its
    /// work was started; and checks that what missed the budget was cancelled.
    async fn in_one_budget(total: u64, script: &[(u64, Fake)]) -> Vec<(Outcome, u64, bool)> {
        let (budget, started) = (Budget::start(ms(total)), Instant::now());
        let (mut report, mut watches) = (Vec::new(), Vec::new());
        for (&(gap, fake), step) in script.iter().zip(STEPS) {
            tokio::time::sleep(ms(gap)).await;
            let watch = Watch::default();
            let result = budget.step(step, watch.work(fake.call())).await;
            let failed = result.is_err();
            report.push((
                result,
                started.elapsed().as_millis() as u64,
                watch.started(),
            ));
            watches.push(watch);
            if failed {
                break;
            }
        }
        let what = format!("budget {total} ms, steps (ms elsewhere first, dependency) {script:?}");
        for (watch, (result, ..)) in watches.iter().zip(&report) {
            assert_cancelled_unless_in_time(watch, result, &what).await;
        }
        report
    }

    #[tokio::test(start_paused = true)]
    async fn steps_share_one_budget_and_each_gets_only_what_is_left() {
        // (what must hold, budget ms, steps (ms elsewhere first, dependency) => per step: the
        // result, ms since the budget started when it returned, whether its work was started)
        #[rustfmt::skip] #[allow(clippy::type_complexity)]
        let cases: [(&str, u64, &[(u64, Fake)], &[(Outcome, u64, bool)]); 7] = [
            ("80 ms steps fit 200 ms one by one, not three together: the third gets the 40 ms \
              left, and `after` is the caller's whole wait, not the step's share",
             200, &[(0, Answers(80)), (0, Answers(80)), (0, Answers(80))],
             &[(Ok(80), 80, true), (Ok(80), 160, true), (timed_out("read", 200), 200, true)]),
            ("fast steps: the call returns as soon as its last step is done, whatever the budget",
             1_000, &[(0, Answers(10)), (0, Answers(20)), (0, Answers(30))],
             &[(Ok(10), 10, true), (Ok(20), 30, true), (Ok(30), 60, true)]),
            ("a hung step gets only the 200 ms connect left, not a fresh 300 ms",
             300, &[(0, Answers(100)), (0, Hangs)],
             &[(Ok(100), 100, true), (timed_out("send", 300), 300, true)]),
            ("a step that fails reports its own error and name",
             300, &[(0, Answers(10)), (0, Fails(10))],
             &[(Ok(10), 10, true),
               (Err(CallError::Failed { step: "send", error: "refused" }), 20, true)]),
            ("steps that end exactly at the deadline made it in time",
             200, &[(0, Answers(100)), (0, Answers(100))],
             &[(Ok(100), 100, true), (Ok(100), 200, true)]),
            ("a budget spent to the last ms starts nothing: 0 ms left",
             100, &[(100, Answers(0))],
             &[(timed_out("connect", 100), 100, false)]),
            ("an overspent budget fails at once without starting the step (a connection opened \
              only to be abandoned is load for nothing), reporting the 120 ms the caller waited",
             100, &[(120, Answers(0))],
             &[(timed_out("connect", 120), 120, false)]),
        ];
        for (what, total, script, expected) in cases {
            assert_eq!(in_one_budget(total, script).await, expected, "{what}");
        }
    }

    #[test]
    fn a_budget_of_any_size_bounds_a_sequence_of_any_steps() {
        sdlings_kit::property::for_seeds(300, |rng| {
            let total: u64 = rng.random_range(0..=100);
            // The model: its clock (ms since the start) and, per step, what must happen. The
            // dependencies often end right at, just before or just after the budget's end.
            let (mut now, mut script, mut expected) = (0, Vec::new(), Vec::new());
            for step in &STEPS[..rng.random_range(1..=4)] {
                // Time spent elsewhere first: 0-40 ms, 3 times in 10.
                let gap = rng.random_range(0..=40) * u64::from(rng.random_bool(0.3));
                now += gap;
                let left = total.saturating_sub(now);
                let fake = Fake::random(rng, left);
                script.push((gap, fake));
                let result = match fake.ends() {
                    _ if left == 0 => timed_out(step, now),
                    Some(at) if at <= left => {
                        now += at;
                        in_time(fake, step)
                    }
                    _ => {
                        now = total;
                        timed_out(step, total)
                    }
                };
                expected.push((result.clone(), now, left > 0));
                if result.is_err() {
                    break;
                }
            }
            paused(async move {
                assert_eq!(
                    in_one_budget(total, &script).await,
                    expected,
                    "budget {total} ms, steps (ms elsewhere first, dependency) {script:?}: per \
                     step (result, ms since the start, started). A step gets only what is left of \
                     the budget; `after` is the time since the budget started; with nothing left, \
                     the step is not started"
                );
            });
        });
    }
}
