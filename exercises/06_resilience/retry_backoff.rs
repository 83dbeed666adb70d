// Retries with exponential backoff, full jitter and a retry budget.
//
// Retrying hides a dependency's transient failures (a dropped connection, a 503 from an
// instance being restarted) from your users. Done naively it becomes the outage: every client
// retries at once, the struggling service gets 3-5x its normal traffic exactly when it can serve
// least, and it cannot recover (a "retry storm"). AWS's September 2015 DynamoDB outage was
// prolonged that way: storage servers kept retrying against an overloaded metadata service.
//
// Build the four defences, then `retry`, which runs an async operation with them:
// - retry only what can succeed next time: timeouts, refused connections, 408, 429 and the 5xx
//   that mean "not now"; never a 400 or a 404, nor a 501 or a 505 (the same request will fail the
//   same way);
// - exponential backoff: wait up to base x 2^attempt between tries, capped at `cap`;
// - full jitter: wait a uniformly random time in [0, that ceiling], so clients that failed
//   together do not come back together (AWS Architecture Blog, "Exponential Backoff And Jitter");
// - a retry budget: retries may be at most ~10-20% of requests, so that when the
//   dependency is down the client stops multiplying its load (gRPC retry throttling, Finagle).
//
// Lab (real HTTP server on localhost, flaky then down for a while): turn BUDGET_PERCENT,
// FAILURE_RATE, MAX_ATTEMPTS, BASE and CAP. Watch the load on the backend during the outage, the
// success rate, and the bar charts of lock-step retries without jitter.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

#[allow(unused_imports)] // for your `delay` (and the tests)
use rand::RngExt;
use rand::rngs::StdRng;
use sdlings_kit::resilience::retrying::{self, Attempted, Failure, Op, Strategy, Which};
use sdlings_kit::workload::seeded_rng;

/// How a failed call failed, as the caller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// The server answered with an error status.
    Status(u16),
    /// No answer in time.
    TimedOut,
    /// The connection was refused or dropped before an answer.
    ConnectionFailed,
}

// ---- Your part -------------------------------------------------------------------------------

impl CallError {
    /// Whether the same request may succeed if sent again: timeouts, failed connections, 408
    /// (the server gave up waiting for the request), 429 (throttled: try again later) and 5xx (the
    /// server's trouble), except 501 Not Implemented and 505 HTTP Version Not Supported, which
    /// the server will answer the same way every time. Any other status, such as 400, 401, 403,
    /// 404 or 409, is the caller's own problem and will fail again.
    pub fn is_retryable(&self) -> bool {
        todo!("is {self:?} worth retrying?")
    }
}

// Given: the backoff's description. Yours: its `ceiling` and `delay`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Wait exactly the ceiling: every client that failed together retries together.
    None,
    /// Wait a uniformly random time between zero and the ceiling.
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's wait.
    pub base: Duration,
    /// No wait is ever longer than this.
    pub cap: Duration,
    pub jitter: Jitter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first try included: 1 means "never retry".
    pub max_attempts: u32,
    pub backoff: Backoff,
}

impl Backoff {
    /// The longest wait before retry number `attempt` (0 = the first retry): base x 2^attempt,
    /// but never more than `cap`. Must not overflow or panic for any `attempt`, u32::MAX
    /// included.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        todo!("min(cap, base x 2^{attempt}), without overflow")
    }

    /// The wait before retry number `attempt`: the ceiling itself without jitter; with full
    /// jitter, uniformly random in [0, ceiling], drawn from `rng` (one draw per call).
    pub fn delay(&self, attempt: u32, rng: &mut StdRng) -> Duration {
        let _ = rng; // (only silences "unused variable" until you use `rng`: delete it)
        todo!(
            "the wait before retry {attempt}, with {:?} jitter",
            self.jitter
        )
    }
}

// Given: the budget's state (its constructor comes after your part). Yours: the updates.

/// Retry tokens, shared by all the requests of one client. Every request (its first try)
/// deposits `percent` hundredths of a retry; every retry withdraws a whole one. So over time
/// retries are at most `percent`% of requests, plus the `reserve` the budget starts with and can
/// save up to, which lets a quiet client still retry a few blips.
///
/// Counted in hundredths of a retry, in integers: ten deposits at 10% make exactly one retry (ten
/// additions of 0.1 in floating point make 0.9999999999999999, which is not one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryBudget {
    /// Hundredths of a retry earned per request.
    percent: u64,
    /// The most the budget can hold, in hundredths (`reserve` whole retries).
    max_balance: u64,
    /// Available now, in hundredths of a retry.
    balance: u64,
}

impl RetryBudget {
    /// A request was made (its first try): earn `percent` hundredths of a retry, up to the cap.
    pub fn deposit(&mut self) {
        todo!("earn {} hundredths of a retry", self.percent)
    }

    /// Takes one whole retry from the budget if there is one: `true` if the retry may go ahead.
    pub fn try_withdraw(&mut self) -> bool {
        todo!(
            "take one retry from the {} hundredths available",
            self.balance
        )
    }
}

// Given: what `retry` reports. Yours: `retry`.

/// Why `retry` stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Succeeded,
    /// The last error was not worth retrying.
    NotRetryable,
    /// `max_attempts` attempts were made.
    OutOfAttempts,
    /// The retry budget refused the next retry.
    OutOfBudget,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<T> {
    /// The last attempt's result.
    pub result: Result<T, CallError>,
    /// Attempts made, the first try included.
    pub attempts: u32,
    /// Total time slept between attempts.
    pub waited: Duration,
    pub stop: Stop,
}

/// Runs `op` until it succeeds or a defence says stop:
/// 1. deposit into the budget (if any): this is a new request;
/// 2. call `op`; on success stop (`Succeeded`);
/// 3. on failure stop if the error is not retryable (`NotRetryable`), else if `max_attempts`
///    attempts were made (`OutOfAttempts`), else if the budget (if any) refuses a retry
///    (`OutOfBudget`): a retry is charged only when it is about to be made;
/// 4. otherwise sleep `policy.backoff.delay(n, rng)` (n = 0 before the first retry, 1 before the
///    second...) with `tokio::time::sleep`, and go to 2.
///
/// Never sleeps after the last attempt. `waited` is the sum of the sleeps.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    budget: Option<&Mutex<RetryBudget>>,
    rng: &mut StdRng,
    mut op: F,
) -> Outcome<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let _ = (budget, rng, &mut op); // (only silences "unused variable" warnings: delete it)
    todo!("run op, retrying at most {} attempts", policy.max_attempts)
}

// ---- Given: the budget's constructor, and its lock ------------------------------------------

impl RetryBudget {
    /// A budget that earns `percent`% of a retry per request and holds at most `reserve` retries;
    /// it starts full.
    pub fn new(percent: u32, reserve: u32) -> Self {
        let max_balance = u64::from(reserve) * 100;
        RetryBudget {
            percent: u64::from(percent),
            max_balance,
            balance: max_balance,
        }
    }

    /// Whole and partial retries available now (2.5 = two retries, and half of the next).
    pub fn retries_available(&self) -> f64 {
        self.balance as f64 / 100.0
    }
}

/// Locks a budget shared by concurrent requests. Hold the guard for the update only, never across
/// an `.await`.
pub fn lock(budget: &Mutex<RetryBudget>) -> MutexGuard<'_, RetryBudget> {
    // A panic in another request while it held the lock leaves the numbers intact: carry on.
    budget
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---- Lab: a real HTTP backend on localhost -----------------------------------------------------
// Part 1: REQUESTS requests, one every millisecond, each run through your `retry` with one of
// four strategies. The backend fails FAILURE_RATE of the time (503, in short flaky patches) and
// is down (503 to everything) from 100 to 250 ms. Each strategy gets its own backend, run at the
// same time with exactly the same flaky patches and outage.
// Part 2: BURST clients send a request at the same instant while the backend restarts; their
// retries, per time slot, without and with jitter.

const BASE: Duration = Duration::from_millis(20);
const CAP: Duration = Duration::from_millis(200);
const MAX_ATTEMPTS: u32 = 5;
/// Retries allowed per 100 requests, and the retries a client can save up.
const BUDGET_PERCENT: u32 = 20;
const BUDGET_RESERVE: u32 = 10;
/// The share of time the backend answers 503 outside the outage (flaky patches of 2 ms).
const FAILURE_RATE: f64 = 0.1;
const REQUESTS: usize = 400;
const BURST: usize = 100;

fn main() {
    let knobs = retrying::Knobs {
        base: BASE,
        cap: CAP,
        max_attempts: MAX_ATTEMPTS,
        budget_percent: BUDGET_PERCENT,
        budget_reserve: BUDGET_RESERVE,
        failure_rate: FAILURE_RATE,
        flap_every: Duration::from_millis(2),
        requests: REQUESTS,
        request_every: Duration::from_millis(1),
        outage_from: Duration::from_millis(100),
        outage_until: Duration::from_millis(250),
        burst: BURST,
        burst_restart: Duration::from_millis(50),
        slot: Duration::from_millis(20),
        call_timeout: Duration::from_millis(500),
        seed: 42,
    };
    retrying::run(&knobs, |which| {
        let backoff = |jitter| Backoff {
            base: BASE,
            cap: CAP,
            jitter,
        };
        let at_once = Backoff {
            base: Duration::ZERO,
            cap: Duration::ZERO,
            jitter: Jitter::None,
        };
        let (max_attempts, backoff, budget) = match which {
            Which::NoRetries => (1, at_once, None),
            Which::AtOnce => (MAX_ATTEMPTS, at_once, None),
            Which::NoJitter => (MAX_ATTEMPTS, backoff(Jitter::None), None),
            Which::FullJitter => (MAX_ATTEMPTS, backoff(Jitter::Full), None),
            Which::FullJitterAndBudget => (
                MAX_ATTEMPTS,
                backoff(Jitter::Full),
                Some(RetryBudget::new(BUDGET_PERCENT, BUDGET_RESERVE)),
            ),
        };
        Box::new(LabStrategy {
            policy: RetryPolicy {
                max_attempts,
                backoff,
            },
            budget: budget.map(Mutex::new),
        })
    });
}

/// A policy and (perhaps) a budget, as the lab runs them: through your `retry`.
struct LabStrategy {
    policy: RetryPolicy,
    budget: Option<Mutex<RetryBudget>>,
}

impl Strategy for LabStrategy {
    fn run(&self, seed: u64, mut op: Op) -> Pin<Box<dyn Future<Output = Attempted> + Send + '_>> {
        Box::pin(async move {
            let mut rng = seeded_rng(seed);
            let outcome = retry(&self.policy, self.budget.as_ref(), &mut rng, || {
                let call = op();
                async move {
                    call.await.map_err(|failure| match failure {
                        Failure::Status(status) => CallError::Status(status),
                        Failure::TimedOut => CallError::TimedOut,
                        Failure::ConnectionFailed => CallError::ConnectionFailed,
                    })
                }
            })
            .await;
            Attempted {
                succeeded: outcome.stop == Stop::Succeeded,
                out_of_budget: outcome.stop == Stop::OutOfBudget,
                waited: outcome.waited,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdlings_kit::resilience::testing::paused;
    use std::collections::HashSet;
    use tokio::time::Instant;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    const UNAVAILABLE: CallError = CallError::Status(503);

    fn backoff(base: u64, cap: u64, jitter: Jitter) -> Backoff {
        Backoff {
            base: ms(base),
            cap: ms(cap),
            jitter,
        }
    }

    fn policy(max_attempts: u32, backoff: Backoff) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            backoff,
        }
    }

    /// Runs `retry` against a dependency that answers with `script`, in order (and 503 once the
    /// script is used up). Returns the outcome and when each attempt was made (time since start).
    async fn run_script(
        policy: &RetryPolicy,
        budget: Option<&Mutex<RetryBudget>>,
        seed: u64,
        script: &[Result<u32, CallError>],
    ) -> (Outcome<u32>, Vec<Duration>) {
        let start = Instant::now();
        let mut attempts_at = Vec::new();
        let mut script = script.iter().copied();
        let mut rng = seeded_rng(seed);
        let outcome = retry(policy, budget, &mut rng, || {
            attempts_at.push(start.elapsed());
            std::future::ready(script.next().unwrap_or(Err(UNAVAILABLE)))
        })
        .await;
        (outcome, attempts_at)
    }

    /// Asserts that each wait between attempts is the corresponding delay, to within the 1 ms
    /// tick of tokio's timer (it rounds a sleep up to the next millisecond).
    fn assert_gaps_match(attempts_at: &[Duration], delays: &[Duration]) {
        let gaps: Vec<Duration> = attempts_at.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(
            gaps.len(),
            delays.len(),
            "one sleep between each two attempts"
        );
        for (i, (gap, delay)) in gaps.iter().zip(delays).enumerate() {
            assert!(
                *gap >= *delay && *gap <= *delay + ms(1),
                "the wait before retry {i} was {gap:?}, expected delay({i}) = {delay:?} drawn \
                 from the rng (one draw per retry, attempt numbers from 0)"
            );
        }
    }

    #[test]
    fn the_ceiling_doubles_from_base_until_it_reaches_the_cap() {
        let b = backoff(100, 1_000, Jitter::Full);
        let ceilings: Vec<Duration> = (0..7).map(|a| b.ceiling(a)).collect();
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1_000, 1_000, 1_000].map(ms).to_vec(),
            "base x 2^attempt: 100, 200, 400, 800 ms, then capped at 1 s"
        );
    }

    #[test]
    fn huge_attempt_numbers_give_the_cap_without_overflowing() {
        let b = backoff(100, 30_000, Jitter::None);
        for attempt in [31, 32, 63, 64, 65, 1_000, u32::MAX] {
            assert_eq!(
                b.ceiling(attempt),
                ms(30_000),
                "attempt {attempt}: 2^{attempt} overflows every integer type (a `1 << attempt` \
                 panics from 32 on); the ceiling is simply the cap"
            );
        }
        assert_eq!(
            backoff(0, 1_000, Jitter::None).ceiling(1_000),
            Duration::ZERO,
            "with base 0 (retry at once) every ceiling is 0 x 2^attempt = 0"
        );
        assert_eq!(
            backoff(500, 200, Jitter::None).ceiling(0),
            ms(200),
            "even the first ceiling is capped"
        );
    }

    #[test]
    fn without_jitter_the_delay_is_the_ceiling() {
        let b = backoff(10, 100, Jitter::None);
        let mut rng = seeded_rng(1);
        for attempt in 0..8 {
            assert_eq!(b.delay(attempt, &mut rng), b.ceiling(attempt));
        }
    }

    #[test]
    fn full_jitter_delays_stay_between_zero_and_the_ceiling() {
        let b = backoff(10, 300, Jitter::Full);
        let mut rng = seeded_rng(2);
        for attempt in 0..10 {
            for _ in 0..500 {
                let delay = b.delay(attempt, &mut rng);
                assert!(
                    delay <= b.ceiling(attempt),
                    "retry {attempt}: a delay of {delay:?} is above the ceiling {:?}",
                    b.ceiling(attempt)
                );
            }
        }
    }

    #[test]
    fn full_jitter_spreads_delays_over_the_whole_range_from_zero() {
        let b = backoff(100, 10_000, Jitter::Full);
        let ceiling = b.ceiling(3); // 800 ms
        let mut rng = seeded_rng(3);
        let delays: Vec<Duration> = (0..10_000).map(|_| b.delay(3, &mut rng)).collect();
        let mean = delays.iter().sum::<Duration>() / 10_000;
        let low = delays.iter().filter(|d| **d < ceiling / 2).count();
        assert!(
            low > 4_500,
            "only {low} of 10 000 delays are below half the ceiling (400 ms): full jitter draws \
             uniformly from the whole range [0, ceiling], so about half are. (Drawing from \
             [ceiling/2, ceiling] is \"equal jitter\", which keeps clients bunched)"
        );
        assert!(
            mean > ms(380) && mean < ms(420),
            "the mean delay is {mean:?}; uniform in [0, 800 ms] averages 400 ms"
        );
        let min = delays.iter().min().expect("10 000 delays");
        let max = delays.iter().max().expect("10 000 delays");
        assert!(
            *min < ms(8) && *max > ms(792),
            "the delays run from {min:?} to {max:?}: uniform over [0, 800 ms] comes within 1% \
             of both ends in 10 000 draws"
        );
    }

    #[test]
    fn full_jitter_gives_clients_that_failed_together_different_delays() {
        let b = backoff(100, 10_000, Jitter::Full);
        let mut rng = seeded_rng(4);
        let distinct: HashSet<Duration> = (0..1_000).map(|_| b.delay(2, &mut rng)).collect();
        assert!(
            distinct.len() >= 100,
            "1000 clients drew only {} different delays: they come back in a few lock-step \
             waves. Draw a delay anywhere in [0, ceiling], not a whole number of `base`s",
            distinct.len()
        );
    }

    #[test]
    fn full_jitter_of_a_zero_ceiling_is_zero() {
        let b = backoff(0, 0, Jitter::Full);
        let mut rng = seeded_rng(5);
        assert_eq!(
            b.delay(3, &mut rng),
            Duration::ZERO,
            "nothing to draw from but 0 (and an empty range `0..0` would panic)"
        );
    }

    #[test]
    fn only_errors_that_may_pass_next_time_are_retryable() {
        for error in [
            CallError::TimedOut,
            CallError::ConnectionFailed,
            CallError::Status(408),
            CallError::Status(429),
            CallError::Status(500),
            CallError::Status(502),
            CallError::Status(503),
            CallError::Status(504),
            CallError::Status(599),
        ] {
            assert!(
                error.is_retryable(),
                "{error:?} is transient (the server's or the network's trouble): retry it"
            );
        }
        for error in [400, 401, 403, 404, 409, 422, 428, 430, 499].map(CallError::Status) {
            assert!(
                !error.is_retryable(),
                "{error:?} is the caller's own mistake: the same request fails the same way \
                 every time, and retrying only adds load"
            );
        }
        for error in [200, 204, 301, 304, 600].map(CallError::Status) {
            assert!(
                !error.is_retryable(),
                "{error:?} is not a server error: nothing says a second try would go differently"
            );
        }
        for error in [501, 505].map(CallError::Status) {
            assert!(
                !error.is_retryable(),
                "{error:?} says the server does not support the request at all (Not Implemented, \
                 HTTP Version Not Supported): it will answer the same way every time"
            );
        }
    }

    #[test]
    fn a_new_budget_holds_its_reserve_of_retries() {
        let mut budget = RetryBudget::new(10, 3);
        assert_eq!(budget.retries_available(), 3.0);
        let granted = (0..10).filter(|_| budget.try_withdraw()).count();
        assert_eq!(
            granted, 3,
            "a reserve of 3 retries allows 3 retries, no more"
        );
        assert_eq!(budget.retries_available(), 0.0);
    }

    #[test]
    fn each_request_earns_a_fraction_of_a_retry() {
        let mut budget = RetryBudget::new(10, 5);
        while budget.try_withdraw() {}
        for _ in 0..9 {
            budget.deposit();
        }
        assert!(
            !budget.try_withdraw(),
            "9 requests at 10% earn 0.9 of a retry: not enough for one"
        );
        budget.deposit();
        assert!(budget.try_withdraw(), "10 requests at 10% earn one retry");
        assert!(!budget.try_withdraw(), "and only one");
    }

    #[test]
    fn savings_are_capped_at_the_reserve() {
        let mut budget = RetryBudget::new(50, 2);
        for _ in 0..100 {
            budget.deposit();
        }
        assert_eq!(
            budget.retries_available(),
            2.0,
            "a long healthy spell must not bank 50 retries to spend in one burst when the \
             dependency goes down: savings stop at the reserve"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_succeeds_at_once_is_not_retried() {
        let p = policy(5, backoff(10, 100, Jitter::Full));
        let start = Instant::now();
        let (outcome, attempts_at) = run_script(&p, None, 1, &[Ok(7)]).await;
        assert_eq!(
            outcome,
            Outcome {
                result: Ok(7),
                attempts: 1,
                waited: Duration::ZERO,
                stop: Stop::Succeeded
            }
        );
        assert_eq!(attempts_at.len(), 1);
        assert_eq!(start.elapsed(), Duration::ZERO, "no failure, no wait");
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_after_jittered_backoff_until_success() {
        let p = policy(5, backoff(100, 1_000, Jitter::Full));
        let start = Instant::now();
        let (outcome, attempts_at) = run_script(
            &p,
            None,
            11,
            &[Err(UNAVAILABLE), Err(CallError::TimedOut), Ok(42)],
        )
        .await;
        let mut rng = seeded_rng(11);
        let delays = [p.backoff.delay(0, &mut rng), p.backoff.delay(1, &mut rng)];
        assert_eq!(outcome.result, Ok(42), "the third attempt succeeds");
        assert_eq!(outcome.attempts, 3);
        assert_eq!(outcome.stop, Stop::Succeeded);
        assert_gaps_match(&attempts_at, &delays);
        assert_eq!(
            outcome.waited,
            delays[0] + delays[1],
            "`waited` is the sum of the two delays slept"
        );
        let elapsed = start.elapsed();
        assert!(
            elapsed >= outcome.waited && elapsed <= outcome.waited + ms(2),
            "the call took {elapsed:?}, but slept {:?}: the time spent must be the sleeps",
            outcome.waited
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_jitter_the_waits_double_up_to_the_cap() {
        let p = policy(6, backoff(10, 50, Jitter::None));
        let start = Instant::now();
        let (outcome, attempts_at) = run_script(&p, None, 1, &[]).await;
        assert_eq!(
            attempts_at,
            [0, 10, 30, 70, 120, 170].map(ms).to_vec(),
            "waits of 10, 20, 40, then 50 and 50 ms (capped): the first retry waits `base` \
             (delay(0)), not 2 x base"
        );
        assert_eq!(outcome.waited, ms(170));
        assert_eq!(
            start.elapsed(),
            ms(170),
            "after the 6th and last attempt fails there is nothing to wait for: return at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn max_attempts_counts_the_first_try_and_is_honoured_exactly() {
        let p = policy(4, backoff(10, 100, Jitter::Full));
        let (outcome, attempts_at) = run_script(&p, None, 2, &[]).await;
        assert_eq!(
            attempts_at.len(),
            4,
            "max_attempts = 4 means 4 calls in all: the first try and 3 retries"
        );
        assert_eq!(outcome.attempts, 4);
        assert_eq!(outcome.stop, Stop::OutOfAttempts);
        assert_eq!(
            outcome.result,
            Err(UNAVAILABLE),
            "the last error is returned"
        );

        let once = policy(1, backoff(10, 100, Jitter::Full));
        let start = Instant::now();
        let (outcome, attempts_at) = run_script(&once, None, 2, &[]).await;
        assert_eq!(attempts_at.len(), 1, "max_attempts = 1: never retry");
        assert_eq!(outcome.stop, Stop::OutOfAttempts);
        assert_eq!(start.elapsed(), Duration::ZERO, "and never wait");
    }

    #[tokio::test(start_paused = true)]
    async fn a_non_retryable_error_is_returned_at_once() {
        let p = policy(5, backoff(10, 100, Jitter::Full));
        let start = Instant::now();
        let (outcome, _) = run_script(&p, None, 3, &[Err(CallError::Status(400))]).await;
        assert_eq!(
            outcome,
            Outcome {
                result: Err(CallError::Status(400)),
                attempts: 1,
                waited: Duration::ZERO,
                stop: Stop::NotRetryable
            },
            "a 400 Bad Request will be just as bad next time: return it at once"
        );
        assert_eq!(start.elapsed(), Duration::ZERO);
        let (outcome, _) = run_script(
            &p,
            None,
            3,
            &[Err(UNAVAILABLE), Err(CallError::Status(404))],
        )
        .await;
        assert_eq!(
            (outcome.attempts, outcome.stop),
            (2, Stop::NotRetryable),
            "a 503 is retried; the 404 that follows is final"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_exhausted_budget_stops_retries_and_says_so() {
        let budget = Mutex::new(RetryBudget::new(10, 2));
        let p = policy(5, backoff(10, 100, Jitter::Full));
        let (first, _) = run_script(&p, Some(&budget), 1, &[]).await;
        assert_eq!(
            (first.attempts, first.stop),
            (3, Stop::OutOfBudget),
            "a reserve of 2 retries: the first try and 2 retries, then the budget says no \
             (before max_attempts = 5)"
        );
        assert_eq!(first.result, Err(UNAVAILABLE));
        let (second, _) = run_script(&p, Some(&budget), 1, &[]).await;
        assert_eq!(
            (second.attempts, second.stop),
            (1, Stop::OutOfBudget),
            "the budget is empty (0.1 retry earned by this request): no retry at all"
        );
        assert_eq!(second.waited, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_is_charged_only_for_retries_actually_made() {
        let budget = Mutex::new(RetryBudget::new(10, 3));
        let p = policy(2, backoff(10, 100, Jitter::Full));
        let (outcome, _) = run_script(&p, Some(&budget), 1, &[]).await;
        assert_eq!(outcome.stop, Stop::OutOfAttempts);
        assert_eq!(
            lock(&budget).retries_available(),
            2.0,
            "max_attempts = 2: one retry was made, so one of the 3 is spent (the 0.1 deposit was \
             lost to the cap); do not charge for the retry that max_attempts forbids"
        );
        let (outcome, _) = run_script(&p, Some(&budget), 1, &[Err(CallError::Status(400))]).await;
        assert_eq!(outcome.stop, Stop::NotRetryable);
        assert!(
            (lock(&budget).retries_available() - 2.1).abs() < 1e-9,
            "a request deposits its 10% even when it is not retried, and a non-retryable error \
             costs nothing: 2.1 retries available, got {}",
            lock(&budget).retries_available()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_budget_a_dead_dependency_sees_little_extra_load() {
        let p = policy(5, backoff(10, 100, Jitter::Full));
        let mut without = 0;
        for seed in 0..100 {
            without += run_script(&p, None, seed, &[]).await.0.attempts;
        }
        assert_eq!(
            without, 500,
            "without a budget, 100 requests to a dead dependency make 5 attempts each"
        );
        let budget = Mutex::new(RetryBudget::new(10, 5));
        let mut with = 0;
        for seed in 0..100 {
            with += run_script(&p, Some(&budget), seed, &[]).await.0.attempts;
        }
        assert_eq!(
            with, 114,
            "with a 10% budget and a reserve of 5, 100 requests to a dead dependency make 114 \
             attempts, not 500: the reserve pays for 4 retries of the first request (max_attempts \
             = 5) and 1 of the second, then every 10 requests earn one more retry (requests 11, \
             21, ... 91: 9 retries). 100 + 5 + 9 = 114"
        );
    }

    // --- any parameters ---

    #[test]
    fn the_ceiling_is_min_of_cap_and_base_times_2_to_the_attempt_for_any_base_and_cap() {
        sdlings_kit::property::for_seeds(300, |rng| {
            // Whole and fractional milliseconds, zero included.
            let base = Duration::from_nanos(rng.random_range(0..=3_000_000_000));
            let cap = Duration::from_nanos(rng.random_range(0..=60_000_000_000));
            let b = Backoff {
                base,
                cap,
                jitter: Jitter::None,
            };
            for attempt in (0..70).chain([100, 1_000, u32::MAX]) {
                // base < 2^32 ns and 2^64 ns is far above any cap: no overflow in a u128.
                let doubled = base.as_nanos() << attempt.min(64);
                let expected = Duration::from_nanos(doubled.min(cap.as_nanos()) as u64);
                assert_eq!(
                    b.ceiling(attempt),
                    expected,
                    "base {base:?}, cap {cap:?}, attempt {attempt}: min(cap, base x 2^attempt)"
                );
            }
        });
    }

    #[test]
    fn any_budget_earns_percent_per_request_spends_whole_retries_and_saves_at_most_the_reserve() {
        sdlings_kit::property::for_seeds(300, |rng| {
            let (percent, reserve) = (rng.random_range(0..=100), rng.random_range(0..=5));
            let mut budget = RetryBudget::new(percent, reserve);
            let mut hundredths = u64::from(reserve) * 100; // the reference: starts full
            let mut log = format!("RetryBudget::new({percent}, {reserve}):");
            for _ in 0..60 {
                if rng.random_bool(0.6) {
                    budget.deposit();
                    hundredths = (hundredths + u64::from(percent)).min(u64::from(reserve) * 100);
                    log += " deposit;";
                } else {
                    let expected = hundredths >= 100;
                    if expected {
                        hundredths -= 100;
                    }
                    log += " withdraw;";
                    assert_eq!(
                        budget.try_withdraw(),
                        expected,
                        "{log} a retry is granted when a whole one is available"
                    );
                }
                assert!(
                    (budget.retries_available() - hundredths as f64 / 100.0).abs() < 1e-9,
                    "{log} {} retries should be available, not {}",
                    hundredths as f64 / 100.0,
                    budget.retries_available()
                );
            }
        });
    }

    #[test]
    fn any_policy_and_sequence_of_failures_matches_the_reference_retry_loop() {
        const ERRORS: [CallError; 5] = [
            CallError::TimedOut,
            CallError::ConnectionFailed,
            CallError::Status(503),
            CallError::Status(400),
            CallError::Status(501),
        ];
        sdlings_kit::property::for_seeds(200, |rng| {
            let jitter = if rng.random_bool(0.5) {
                Jitter::None
            } else {
                Jitter::Full
            };
            let p = policy(
                rng.random_range(1..=6),
                backoff(rng.random_range(0..=40), rng.random_range(0..=200), jitter),
            );
            let script: Vec<Result<u32, CallError>> = (0..rng.random_range(0..=7))
                .map(|i| {
                    if rng.random_bool(0.2) {
                        Ok(i)
                    } else {
                        Err(ERRORS[rng.random_range(0..ERRORS.len())])
                    }
                })
                .collect();
            let reserve = rng.random_bool(0.5).then(|| rng.random_range(0..=4));
            let seed = rng.random_range(0..1_000);
            // The reference: the same rng, one delay drawn per retry.
            let mut draws = seeded_rng(seed);
            let mut left = reserve.map(|r| r * 100);
            let (mut attempts, mut waited) = (0, Duration::ZERO);
            let mut delays = Vec::new();
            let (result, stop) = loop {
                let answer = script.get(attempts).copied().unwrap_or(Err(UNAVAILABLE));
                attempts += 1;
                let error = match answer {
                    Ok(v) => break (Ok(v), Stop::Succeeded),
                    Err(e) => e,
                };
                if !error.is_retryable() {
                    break (Err(error), Stop::NotRetryable);
                }
                if attempts as u32 >= p.max_attempts {
                    break (Err(error), Stop::OutOfAttempts);
                }
                if let Some(balance) = left.as_mut() {
                    if *balance < 100 {
                        break (Err(error), Stop::OutOfBudget);
                    }
                    *balance -= 100;
                }
                let delay = p.backoff.delay(attempts as u32 - 1, &mut draws);
                delays.push(delay);
                waited += delay;
            };
            let what = format!("{p:?}, budget reserve {reserve:?} at 0%, answers {script:?}");
            paused(async {
                let budget = reserve.map(|r| Mutex::new(RetryBudget::new(0, r)));
                let (outcome, attempts_at) = run_script(&p, budget.as_ref(), seed, &script).await;
                assert_eq!(
                    outcome,
                    Outcome {
                        result,
                        attempts: attempts as u32,
                        waited,
                        stop
                    },
                    "{what}: the outcome"
                );
                assert_gaps_match(&attempts_at, &delays);
            });
        });
    }
}
