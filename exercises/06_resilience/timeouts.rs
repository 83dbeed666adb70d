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
use std::time::Duration;

use sdlings_kit::resilience::timeouts::{self, Pending, Verdict, Work};
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

// Given: the budget's state. Yours: its `remaining` and `step`, just below.

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

    /// Time since the budget started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
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
/// Part 2: the slow backend is degraded and every sub-call takes this long (uniform, in ms):
/// each one under TIMEOUT, three in a row usually not.
const DEGRADED_MS: (u64, u64) = (10, 60);
const CALLS: usize = 200;
const CALL_EVERY: Duration = Duration::from_millis(2);

fn main() {
    timeouts::run(&timeouts::Knobs {
        timeout: TIMEOUT,
        slow_fraction: SLOW_FRACTION,
        tail_ms: TAIL_MS,
        healthy_latency: Duration::from_millis(2),
        calls: CALLS,
        call_every: CALL_EVERY,
        // Without a timeout, the lab still needs an end (real code may wait for hours).
        safety_limit: Duration::from_millis(1000),
        degraded_ms: DEGRADED_MS,
        sub_calls: vec!["auth", "profile", "feed"],
        seed: 6,
        call: |step, limit, work| {
            Box::pin(async move { verdict(with_timeout(step, limit, work).await) })
        },
        request: one_budget,
    });
}

/// The lab's request: its sub-calls in a row, inside one `Budget`.
fn one_budget(total: Duration, steps: Vec<(&'static str, Work)>) -> Pending {
    Box::pin(async move {
        let budget = Budget::start(total);
        for (step, work) in steps {
            let result = budget.step(step, work).await;
            if result.is_err() {
                return verdict(result);
            }
        }
        Verdict::Ok
    })
}

fn verdict<E>(result: Result<(), CallError<E>>) -> Verdict {
    match result {
        Ok(()) => Verdict::Ok,
        Err(CallError::TimedOut { .. }) => Verdict::TimedOut,
        Err(CallError::Failed { .. }) => Verdict::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use sdlings_kit::resilience::testing::{Watch, paused};

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

    /// A hung server: it answers only after a day, which is never at the scale of these tests
    /// (and a caller that waits for it anyway fails the test instead of hanging it).
    async fn hangs() -> Answer {
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        Err("answered after a day")
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
        // Many times over: a race that picks at random between two ready branches must not pass
        // by luck.
        for limit in 0..40 {
            let result = with_timeout("get", ms(limit), answers(limit, 9)).await;
            assert_eq!(
                result,
                Ok(9),
                "the answer is ready at {limit} ms and the limit is {limit} ms: within the \
                 limit. When the answer and the timer are ready at the same instant, the answer \
                 must win, every time"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_answers_just_after_the_limit_is_cut_off_at_the_limit() {
        let watch = Watch::default();
        let started = Instant::now();
        let result = with_timeout("get", ms(100), watch.work(answers(101, 1))).await;
        assert_eq!(
            result,
            Err(CallError::TimedOut {
                step: "get",
                after: ms(100)
            }),
            "the answer would come at 101 ms, 1 ms after the 100 ms limit: too late"
        );
        assert_eq!(
            started.elapsed(),
            ms(100),
            "give up at the limit, not at the answer"
        );
        assert!(watch.dropped(), "and cancel the work before returning");
        tokio::time::sleep(ms(10)).await;
        assert!(
            !watch.finished(),
            "the abandoned work must not run on to its answer"
        );
    }

    /// How a fake dependency behaves: answers after ms, fails after ms, or hangs.
    #[derive(Debug, Clone, Copy)]
    enum Fake {
        Answers(u64),
        Fails(u64),
        Hangs,
    }

    impl Fake {
        fn random(rng: &mut rand::rngs::StdRng, around: u64) -> Fake {
            let at = match rng.random_range(0..4) {
                0 => around.saturating_sub(1),
                1 => around,
                2 => around + 1,
                _ => rng.random_range(0..=around + 30),
            };
            match rng.random_range(0..10) {
                0 => Fake::Hangs,
                1 | 2 => Fake::Fails(at),
                _ => Fake::Answers(at),
            }
        }

        /// When it would end, if ever (in ms).
        fn ends(self) -> Option<u64> {
            match self {
                Fake::Answers(at) | Fake::Fails(at) => Some(at),
                Fake::Hangs => None,
            }
        }

        fn run(self, watch: &Watch) -> impl Future<Output = Answer> + Send + 'static {
            watch.work(async move {
                match self {
                    Fake::Answers(at) => answers(at, 1).await,
                    Fake::Fails(at) => fails(at, "refused").await,
                    Fake::Hangs => hangs().await,
                }
            })
        }

        /// Its answer if it ends in time.
        fn answer(self) -> Result<u32, CallError<&'static str>> {
            match self {
                Fake::Answers(_) => Ok(1),
                _ => Err(CallError::Failed {
                    step: "s",
                    error: "refused",
                }),
            }
        }
    }

    #[test]
    fn with_timeout_returns_the_answer_in_time_or_times_out_at_the_limit_for_any_limit() {
        sdlings_kit::property::for_seeds(300, |rng| {
            let limit = rng.random_range(0..=50);
            let fake = Fake::random(rng, limit);
            paused(async move {
                let watch = Watch::default();
                let started = Instant::now();
                let result = with_timeout("s", ms(limit), fake.run(&watch)).await;
                let took = started.elapsed();
                match fake.ends().filter(|&at| at <= limit) {
                    Some(at) => {
                        assert_eq!(
                            (result, took),
                            (fake.answer(), ms(at)),
                            "limit {limit} ms, dependency {fake:?}: it ends in time, so its \
                             answer (or its own error), as soon as it comes"
                        );
                    }
                    None => {
                        assert_eq!(
                            (result, took),
                            (
                                Err(CallError::TimedOut {
                                    step: "s",
                                    after: ms(limit)
                                }),
                                ms(limit)
                            ),
                            "limit {limit} ms, dependency {fake:?}: it does not end in time, so \
                             TimedOut, exactly at the limit"
                        );
                        assert!(
                            watch.dropped(),
                            "limit {limit} ms, dependency {fake:?}: the work must be cancelled \
                             (dropped) before with_timeout returns"
                        );
                    }
                }
            });
        });
    }

    #[test]
    fn a_budget_of_any_size_bounds_a_sequence_of_any_steps() {
        sdlings_kit::property::for_seeds(300, |rng| {
            let total = rng.random_range(0..=100);
            let steps = rng.random_range(1..=4);
            paused(async move {
                let budget = Budget::start(ms(total));
                let started = Instant::now();
                let mut now = 0; // the model's clock, ms since the start
                let mut what = format!("budget {total} ms");
                for i in 0..steps {
                    // Time the caller spends elsewhere first, then a dependency that often ends
                    // right at, just before or just after the budget's end.
                    let gap = if rng.random_bool(0.3) {
                        rng.random_range(0..=40)
                    } else {
                        0
                    };
                    tokio::time::sleep(ms(gap)).await;
                    now += gap;
                    let left = total.saturating_sub(now);
                    let fake = Fake::random(rng, left);
                    what += &format!(", then {gap} ms elsewhere and step {i}: {fake:?}");
                    let watch = Watch::default();
                    let result = budget.step("s", fake.run(&watch)).await;
                    let expected = match fake.ends() {
                        _ if left == 0 => Err(CallError::TimedOut {
                            step: "s",
                            after: ms(now),
                        }),
                        Some(at) if at <= left => {
                            now += at;
                            fake.answer()
                        }
                        _ => {
                            now = total;
                            Err(CallError::TimedOut {
                                step: "s",
                                after: ms(total),
                            })
                        }
                    };
                    assert_eq!(
                        result, expected,
                        "{what}: step {i} had {left} ms left. A step gets only what is left of \
                         the budget; `after` is the time since the budget started; with nothing \
                         left, the step is not started"
                    );
                    assert_eq!(started.elapsed(), ms(now), "{what}: time after step {i}");
                    if left == 0 {
                        assert!(
                            !watch.started(),
                            "{what}: step {i} had no time left and must not be started"
                        );
                    }
                    if result.is_err() {
                        break;
                    }
                }
            });
        });
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
        let spent = Budget::start(ms(100));
        tokio::time::sleep(ms(100)).await;
        let watch = Watch::default();
        assert_eq!(
            spent.step("connect", watch.work(answers(0, 1))).await,
            Err(CallError::TimedOut {
                step: "connect",
                after: ms(100)
            }),
            "100 ms into a 100 ms budget nothing is left (0 ms): do not start the step"
        );
        assert!(
            !watch.started(),
            "a budget spent to the last ms starts nothing"
        );
        tokio::time::sleep(ms(20)).await; // the caller spent the budget on something else
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
