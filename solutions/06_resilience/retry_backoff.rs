// Retries with exponential backoff, full jitter, a retry budget, a deadline and Retry-After.
//
// Retrying hides a dependency's transient failures (a dropped connection, a 503 from a restarting
// instance) from your users. Done naively it becomes the outage: every client retries at once and
// the struggling service gets 3-5x its traffic when it can serve least (a "retry storm": AWS's
// September 2015 DynamoDB outage was prolonged that way). Build the defences, then `retry`: retry
// only what can pass next time; wait up to base x 2^attempt, capped, and a random time below that
// (full jitter), so that clients that failed together come back apart; spend at most ~10-20% of
// requests on retries (a budget); wait at least the server's Retry-After; never sleep past the
// deadline. Lab (a real HTTP server on localhost, flaky, then down; then a simulated one shedding
// load with Retry-After): turn BUDGET_PERCENT, FAILURE_RATE, MAX_ATTEMPTS, BASE, CAP, DEADLINE;
// watch the load in the outage, the success rate, lock-step retries without jitter, fail-fast.

use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use sdlings_kit::resilience::retrying::{self, Attempted, Failure, Op, Running, Strategy, Which};
#[allow(unused_imports)] // for your `delay` and `retry` (and the tests)
use {rand::RngExt, retrying::lock, tokio::time::Instant};

// Given, in the kit: `Jitter` (None or Full) and `Stop` (why `retry` stopped).
pub use sdlings_kit::resilience::retrying::{Jitter, Stop};

/// How a failed call failed, as the caller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// The server answered with an error status, and perhaps a Retry-After: how long it asks
    /// clients to wait before trying again (RFC 9110 §10.2.3; sent with 503, and with 429 by
    /// RFC 6585). Only the header's delay-seconds form is a duration: the client that builds
    /// this error drops an HTTP-date (reading one would need its own clock).
    Status(u16, Option<Duration>),
    TimedOut,         // no answer in time
    ConnectionFailed, // refused, or dropped before an answer
}

// ---- Your part -------------------------------------------------------------------------------

impl CallError {
    /// Whether the same request may succeed if sent again: timeouts, failed connections, 408
    /// (the server gave up waiting for the request), 429 (throttled) and 5xx (the server's
    /// trouble), except 501 Not Implemented and 505 HTTP Version Not Supported, which the server
    /// will answer the same way every time. Any other status (400, 404, 409...) will fail again.
    pub fn is_retryable(&self) -> bool {
        match *self {
            CallError::TimedOut | CallError::ConnectionFailed => true,
            CallError::Status(501 | 505, _) => false,
            CallError::Status(status, _) => {
                status == 408 || status == 429 || (500..600).contains(&status)
            }
        }
    }
}

// Given: the backoff's description. Yours: its `ceiling` and `delay`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's wait.
    pub base: Duration,
    /// No backoff is ever longer than this (a server's Retry-After may be).
    pub cap: Duration,
    pub jitter: Jitter,
}

impl Backoff {
    /// The longest wait before retry number `attempt` (0 = the first retry): base x 2^attempt,
    /// but never more than `cap`. No overflow or panic for any `attempt`, u32::MAX included.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        // Double step by step and stop as soon as the cap (or zero) is reached: at most ~64
        // doublings for any base and cap, and no 2^attempt to overflow (`1u32 << attempt` and
        // `2u32.pow(attempt)` both panic from attempt 32 on, in a debug build).
        let mut ceiling = self.base;
        for _ in 0..attempt {
            if ceiling.is_zero() || ceiling >= self.cap {
                break;
            }
            ceiling = ceiling.saturating_mul(2);
        }
        ceiling.min(self.cap)
    }

    /// The wait before retry number `attempt`: the ceiling itself without jitter; with full
    /// jitter, uniformly random in [0, ceiling], drawn from `rng` (one draw per call).
    pub fn delay(&self, attempt: u32, rng: &mut StdRng) -> Duration {
        let ceiling = self.ceiling(attempt);
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => {
                // Inclusive range, so a zero ceiling is fine (`0..0` would panic). The whole
                // range, from zero: "equal jitter" (ceiling/2 + random up to ceiling/2) keeps half
                // of every wait fixed, and clients that failed together stay bunched.
                let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(rng.random_range(0..=nanos))
            }
        }
    }
}

// Given: the budget's state and constructor. Yours: the updates.

/// Retry tokens, shared by all the requests of one client. Every request (its first try)
/// deposits `percent` hundredths of a retry; every retry withdraws a whole one. So over time
/// retries are at most `percent`% of requests, plus the `reserve` the budget starts with and can
/// save up to. In integer hundredths: ten 0.1s added in floating point make 0.9999999999999999.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryBudget {
    percent: u64,     // hundredths of a retry earned per request
    max_balance: u64, // the most it can hold: `reserve` whole retries
    balance: u64,     // available now, in hundredths of a retry
}

impl RetryBudget {
    /// A request was made (its first try): earn `percent` hundredths of a retry, up to the cap.
    pub fn deposit(&mut self) {
        self.balance = (self.balance + self.percent).min(self.max_balance);
    }

    /// Takes one whole retry from the budget if there is one: `true` if the retry may go ahead.
    pub fn try_withdraw(&mut self) -> bool {
        if self.balance >= 100 {
            self.balance -= 100;
            true
        } else {
            false
        }
    }

    // Given: the constructor, and what the tests read.
    /// A budget that earns `percent`% of a retry per request and holds at most `reserve` retries.
    pub fn new(percent: u32, reserve: u32) -> Self {
        let (percent, max_balance) = (u64::from(percent), u64::from(reserve) * 100);
        let balance = max_balance; // it starts full
        RetryBudget {
            percent,
            max_balance,
            balance,
        }
    }

    /// Whole and partial retries available now (2.5 = two retries, and half of the next).
    pub fn retries_available(&self) -> f64 {
        self.balance as f64 / 100.0
    }
}

// Given: the policy and what `retry` reports. Yours: `retry`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first try included: 1 means "never retry".
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// How long `retry` may take, from its call: every retry must start before then.
    pub deadline: Duration,
}

/// The last attempt's `result`, the `attempts` made (the first try included), the time `waited`
/// in all between them, and why it stopped: `Stop::Succeeded`, `NotRetryable`, `OutOfAttempts`,
/// `OutOfTime` or `OutOfBudget`.
pub type Outcome<T> = retrying::Outcome<T, CallError>;

/// Runs `op` until it succeeds or a defence says stop:
/// 1. deposit into the budget (if any): this is a new request;
/// 2. call `op`; on success stop (`Succeeded`);
/// 3. on failure stop if the error is not retryable (`NotRetryable`, whatever its Retry-After
///    says), else if `max_attempts` attempts were made (`OutOfAttempts`);
/// 4. the wait before retry n (0 for the first retry) is `policy.backoff.delay(n, rng)` (one
///    draw per retry), or the error's Retry-After if that is longer, even beyond the cap;
/// 5. stop if after that wait the deadline would have come (`OutOfTime`: give up now rather than
///    sleep past it; the attempts' own time counts), else if the budget (if any) refuses a retry
///    (`OutOfBudget`): a retry is charged only when it is about to be made;
/// 6. sleep the wait with `tokio::time::sleep`, and go to 2.
///
/// Never sleeps after the last attempt. Hold the budget's `lock` only for an update.
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
    // The budget is shared by concurrent requests: lock it only for the update, never across an
    // await (a request sleeping in backoff must not block the others).
    if let Some(budget) = budget {
        lock(budget).deposit();
    }
    let start = Instant::now();
    let (mut attempts, mut waited) = (0, Duration::ZERO);
    loop {
        attempts += 1;
        let error = match op().await {
            Ok(value) => return Outcome::new(Ok(value), attempts, waited, Stop::Succeeded),
            Err(error) => error,
        };
        let give_up = move |stop| Outcome::new(Err(error), attempts, waited, stop);
        if !error.is_retryable() {
            return give_up(Stop::NotRetryable);
        }
        if attempts >= policy.max_attempts {
            return give_up(Stop::OutOfAttempts);
        }
        // Draw even when the server's wait is longer: one draw per retry, whatever happens.
        let backoff = policy.backoff.delay(attempts - 1, rng);
        let wait = match error {
            CallError::Status(_, Some(after)) => backoff.max(after),
            _ => backoff,
        };
        // Against the time left, not `elapsed + wait`: a Retry-After of u64::MAX seconds would
        // overflow the sum (and panic).
        if wait >= policy.deadline.saturating_sub(start.elapsed()) {
            return give_up(Stop::OutOfTime);
        }
        if budget.is_some_and(|budget| !lock(budget).try_withdraw()) {
            return give_up(Stop::OutOfBudget);
        }
        tokio::time::sleep(wait).await;
        waited += wait;
    }
}

// ---- Lab: 1. REQUESTS requests, one a ms, through `retry`, four strategies each on its own
// backend (same flaky patches, 503 FAILURE_RATE of the time, and outage at 100-250 ms). 2. BURST
// clients at once while the backend restarts, without/with jitter. 3. A server shedding load.

const BASE: Duration = Duration::from_millis(20);
const CAP: Duration = Duration::from_millis(200);
const MAX_ATTEMPTS: u32 = 5;
const DEADLINE: Duration = Duration::from_millis(1_000);
/// Retries allowed per 100 requests, and the retries a client can save up.
const BUDGET_PERCENT: u32 = 20;
const BUDGET_RESERVE: u32 = 10;
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
        requests: REQUESTS,
        burst: BURST,
        ..Default::default()
    };
    retrying::run(&knobs, |which| {
        use {Duration as D, Which::*};
        let (max_attempts, base, cap, jitter) = match which {
            NoRetries => (1, D::ZERO, D::ZERO, Jitter::None),
            AtOnce => (MAX_ATTEMPTS, D::ZERO, D::ZERO, Jitter::None),
            NoJitter => (MAX_ATTEMPTS, BASE, CAP, Jitter::None),
            FullJitter | FullJitterAndBudget => (MAX_ATTEMPTS, BASE, CAP, Jitter::Full),
        };
        let (backoff, deadline) = (Backoff { base, cap, jitter }, DEADLINE);
        let policy = RetryPolicy {
            max_attempts,
            backoff,
            deadline,
        };
        let budget = RetryBudget::new(BUDGET_PERCENT, BUDGET_RESERVE);
        let budget = (which == FullJitterAndBudget).then(|| Mutex::new(budget));
        Box::new(LabStrategy(policy, budget))
    });
}

/// A policy and (perhaps) a budget, as the lab runs them: through your `retry`.
struct LabStrategy(RetryPolicy, Option<Mutex<RetryBudget>>);

impl Strategy for LabStrategy {
    type Error = CallError;

    fn run(&self, seed: u64, op: Op<CallError>) -> Running<'_> {
        Box::pin(async move {
            let mut rng = sdlings_kit::workload::seeded_rng(seed);
            let outcome = retry(&self.0, self.1.as_ref(), &mut rng, op).await;
            Attempted::new(outcome.stop, outcome.waited)
        })
    }
}

/// How the lab's client says a call failed.
impl From<Failure> for CallError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Status(status, retry_after) => CallError::Status(status, retry_after),
            Failure::TimedOut => CallError::TimedOut,
            Failure::ConnectionFailed => CallError::ConnectionFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallError::{ConnectionFailed, Status, TimedOut};
    use Stop::*;
    use sdlings_kit::property::for_seeds;
    use sdlings_kit::resilience::{retrying::Scripted, testing::paused};
    use sdlings_kit::workload::seeded_rng;

    const UNAVAILABLE: CallError = Status(503, None);
    const HOUR: u64 = 3_600_000; // ms: a deadline that never comes in these tests
    type Script<'a> = &'a [Result<u32, CallError>];

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `status`, with a Retry-After of `after` ms.
    fn after(status: u16, after: u64) -> CallError {
        Status(status, Some(ms(after)))
    }

    fn backoff(base: u64, cap: u64, jitter: Jitter) -> Backoff {
        let (base, cap) = (ms(base), ms(cap));
        Backoff { base, cap, jitter }
    }

    fn policy(max_attempts: u32, backoff: Backoff, deadline: Duration) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            backoff,
            deadline,
        }
    }

    /// Runs `retry` against a dependency that answers `script` in order (then 503), each attempt
    /// taking `latency` ms: the outcome, when each attempt began and when `retry` returned.
    async fn run(
        p: &RetryPolicy,
        budget: Option<&Mutex<RetryBudget>>,
        seed: u64,
        latency: u64,
        script: Script<'_>,
    ) -> (Outcome<u32>, Vec<Duration>, Duration) {
        let dependency = Scripted::new(script, Err(UNAVAILABLE), ms(latency));
        let outcome = retry(p, budget, &mut seeded_rng(seed), || dependency.call()).await;
        (outcome, dependency.calls(), dependency.elapsed())
    }

    fn answer(script: Script, n: usize) -> Result<u32, CallError> {
        script.get(n - 1).copied().unwrap_or(Err(UNAVAILABLE))
    }

    fn outcome(script: Script, attempts: usize, waited: Duration, stop: Stop) -> Outcome<u32> {
        Outcome::new(answer(script, attempts), attempts as u32, waited, stop)
    }

    #[test]
    fn only_errors_that_may_pass_next_time_are_retryable() {
        #[rustfmt::skip]
        let cases: [(bool, &str, &[u16]); 4] = [
            (true, "the server's trouble, or a throttle", &[408, 429, 500, 502, 503, 504, 599]),
            (false, "the caller's own mistake", &[400, 401, 403, 404, 409, 422, 428, 430, 499]),
            (false, "not a server error", &[200, 204, 301, 304, 600]),
            (false, "Not Implemented or HTTP Version Not Supported", &[501, 505]),
        ];
        for (retryable, why, statuses) in cases {
            for &status in statuses {
                for error in [Status(status, None), after(status, 9)] {
                    assert_eq!(
                        error.is_retryable(),
                        retryable,
                        "{error:?}: {why}. Only what may pass next time is worth the extra load \
                         of a retry, whatever the Retry-After says"
                    );
                }
            }
        }
        for error in [TimedOut, ConnectionFailed] {
            assert!(error.is_retryable(), "{error:?}: the network's trouble");
        }
    }

    #[test]
    fn the_ceiling_is_min_of_cap_and_base_times_2_to_the_attempt_for_any_base_and_cap() {
        let b = backoff(100, 1_000, Jitter::None);
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 40, u32::MAX].map(|attempt| b.ceiling(attempt)),
            [100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000].map(ms),
            "base x 2^attempt: 100, 200, 400, 800 ms, then capped at 1 s, for any attempt \
             (2^40 overflows a u32, 2^4294967295 every integer type: never compute it)"
        );
        for_seeds(300, |rng| {
            // Whole and fractional milliseconds; zero (one time in ten) and base > cap included.
            let [base, cap] = [3_000_000_000, 60_000_000_000]
                .map(|most| rng.random_range(0..=most) * u64::from(rng.random_bool(0.9)))
                .map(Duration::from_nanos);
            let jitter = Jitter::None;
            let b = Backoff { base, cap, jitter };
            for attempt in (0..70).chain([100, 1_000, u32::MAX]) {
                // base < 2^32 ns and 2^64 ns is far above any cap: no overflow in a u128.
                let doubled = base.as_nanos() << attempt.min(64);
                let expected = Duration::from_nanos(doubled.min(cap.as_nanos()) as u64);
                let what = format!(
                    "base {base:?}, cap {cap:?}, attempt {attempt}: min(cap, base x 2^attempt)"
                );
                assert_eq!(b.ceiling(attempt), expected, "{what}");
            }
        });
    }

    #[test]
    fn full_jitter_draws_uniformly_from_zero_to_the_ceiling_and_none_waits_the_ceiling() {
        let mut rng = seeded_rng(3);
        let none = backoff(10, 300, Jitter::None);
        let full = backoff(10, 300, Jitter::Full);
        for attempt in 0..10 {
            let (exact, ceiling) = (none.delay(attempt, &mut rng), none.ceiling(attempt));
            let most = (0..500).map(|_| full.delay(attempt, &mut rng)).max();
            assert!(
                exact == ceiling && most <= Some(ceiling),
                "retry {attempt}: without jitter the delay is the ceiling, {ceiling:?}, not \
                 {exact:?}; with full jitter it is never more, not {most:?}"
            );
        }
        let zero = backoff(0, 0, Jitter::Full).delay(3, &mut rng);
        assert_eq!(
            zero,
            Duration::ZERO,
            "a zero ceiling: 0 (`0..0` would panic)"
        );
        let b = backoff(100, 10_000, Jitter::Full); // ceiling(3) = 800 ms
        let delays: Vec<Duration> = (0..10_000).map(|_| b.delay(3, &mut rng)).collect();
        let mean = delays.iter().sum::<Duration>() / 10_000;
        let low = delays.iter().filter(|d| **d < ms(400)).count();
        let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        let distinct = delays[..1_000]
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len();
        assert!(
            low > 4_500 && mean > ms(380) && mean < ms(420) && *min < ms(8) && *max > ms(792),
            "{low} of 10 000 delays are below half the ceiling, from {min:?} to {max:?}, mean \
             {mean:?}: full jitter draws uniformly from the whole range [0, 800 ms], so about half \
             are, the mean is 400 ms and both ends come within 1%. (Drawing from [ceiling/2, \
             ceiling] is \"equal jitter\", which keeps clients bunched)"
        );
        assert!(
            distinct >= 100,
            "1000 clients drew only {distinct} different delays: they come back in a few \
             lock-step waves. Draw a delay anywhere in [0, ceiling], not a whole number of `base`s"
        );
    }

    #[test]
    fn a_reserve_of_one_allows_one_retry_and_ten_requests_at_10_percent_earn_exactly_one_more() {
        let mut budget = RetryBudget::new(10, 1);
        let (first, second) = (budget.try_withdraw(), budget.try_withdraw());
        assert!(first && !second, "a reserve of 1 allows one retry");
        (0..10).for_each(|_| budget.deposit());
        assert!(budget.try_withdraw(), "10 x 10% is exactly one retry");
    }

    #[test]
    fn any_budget_earns_percent_per_request_spends_whole_retries_and_saves_at_most_the_reserve() {
        for_seeds(300, |rng| {
            let (percent, reserve) = (rng.random_range(0..=100), rng.random_range(0..=5));
            let mut budget = RetryBudget::new(percent, reserve);
            // The reference, in hundredths of a retry: it starts full.
            let (full, mut left) = (u64::from(reserve) * 100, u64::from(reserve) * 100);
            let mut log = format!("RetryBudget::new({percent}, {reserve}):");
            // The first step deposits into a full budget: capped.
            for deposit in (0..60).map(|i| i == 0 || rng.random_bool(0.6)) {
                log += if deposit { " deposit;" } else { " withdraw;" };
                if deposit {
                    budget.deposit();
                    left = (left + u64::from(percent)).min(full);
                } else {
                    let expected = left >= 100;
                    left -= if expected { 100 } else { 0 };
                    let granted = budget.try_withdraw();
                    assert_eq!(granted, expected, "{log} granted if a whole retry is there");
                }
                assert_eq!(
                    budget.retries_available(),
                    left as f64 / 100.0,
                    "{log} retries available: a request earns {percent} hundredths (10 at 10% \
                     make exactly one), a retry takes 100, and savings stop at the reserve"
                );
            }
        });
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_the_backoff_or_a_longer_retry_after_until_a_defence_says_stop() {
        let (e503, huge) = (Err(UNAVAILABLE), Err(Status(503, Some(Duration::MAX))));
        // (what must hold, max attempts, (base, cap) ms, deadline ms, each attempt's latency ms,
        //  the answers (then 503), when the attempts start (ms), why `retry` stops)
        #[rustfmt::skip] #[allow(clippy::type_complexity)]
        let cases: [(&str, u32, (u64, u64), u64, u64, Script, &[u64], Stop); 14] = [
            ("a call that succeeds at once is neither retried nor delayed",
             5, (10, 100), HOUR, 0, &[Ok(7)], &[0], Succeeded),
            ("transient failures are retried until one succeeds",
             5, (100, 1_000), HOUR, 0, &[e503, Err(TimedOut), Ok(42)], &[0, 100, 300], Succeeded),
            ("the first retry waits `base` (delay(0)), then the waits double up to the cap",
             6, (10, 50), HOUR, 0, &[], &[0, 10, 30, 70, 120, 170], OutOfAttempts),
            ("a 503 is retried; the 404 that follows is final",
             5, (10, 100), HOUR, 0, &[e503, Err(Status(404, None))], &[0, 10], NotRetryable),
            ("a Retry-After longer than the backoff is waited in full",
             3, (10, 100), HOUR, 0, &[Err(after(503, 70))], &[0, 70, 90], OutOfAttempts),
            ("a Retry-After longer than the cap is still the server's word",
             3, (10, 100), HOUR, 0, &[Err(after(429, 500))], &[0, 500, 520], OutOfAttempts),
            ("a Retry-After shorter than the backoff does not shorten it",
             3, (100, 1_000), HOUR, 0, &[Err(after(503, 30))], &[0, 100, 300], OutOfAttempts),
            ("a Retry-After does not make a 501 worth retrying",
             5, (10, 100), HOUR, 0, &[Err(after(501, 10))], &[0], NotRetryable),
            ("a wait that would end past the deadline: give up now, without sleeping",
             5, (100, 1_000), 250, 0, &[], &[0, 100], OutOfTime),
            ("a Retry-After beyond the deadline: give up now, without sleeping",
             5, (10, 100), 1_000, 0, &[Err(after(503, 5_000))], &[0], OutOfTime),
            ("a Retry-After of u64::MAX seconds: give up, without overflowing",
             5, (10, 100), HOUR, 0, &[e503, huge], &[0, 10], OutOfTime),
            ("a retry must start before the deadline, not at it",
             5, (100, 1_000), 300, 0, &[], &[0, 100], OutOfTime),
            ("a retry that starts 1 ms before the deadline is made",
             5, (100, 1_000), 301, 0, &[], &[0, 100, 300], OutOfTime),
            ("the attempts' own time counts against the deadline, not only the sleeps",
             5, (10, 100), 250, 100, &[], &[0, 110, 230], OutOfTime),
        ];
        for (what, max_attempts, (base, cap), deadline, latency, script, starts, stop) in cases {
            let p = policy(max_attempts, backoff(base, cap, Jitter::None), ms(deadline));
            let (got, calls, end) = run(&p, None, 0, latency, script).await;
            let starts: Vec<Duration> = starts.iter().map(|&t| ms(t)).collect();
            let what = format!("{what} ({p:?}, answers {script:?})");
            assert_eq!(calls, starts, "{what}: when the attempts start");
            let (n, last) = (calls.len(), calls[calls.len() - 1]);
            let waited = last - ms(latency) * (n as u32 - 1); // the sum of the sleeps
            assert_eq!(got, outcome(script, n, waited, stop), "{what}: the outcome");
            assert_eq!(end, last + ms(latency), "{what}: return at once");
        }
    }

    #[test]
    fn any_policy_budget_deadline_and_answers_match_the_reference_retry_loop() {
        for_seeds(300, |rng| {
            let jitter = [Jitter::None, Jitter::Full][rng.random_range(0..2)];
            let b = backoff(rng.random_range(0..=40), rng.random_range(0..=200), jitter);
            let deadline = [HOUR, rng.random_range(0..=400)][rng.random_range(0..2)];
            let p = policy(rng.random_range(1..=6), b, ms(deadline));
            let (percent, reserve) = (rng.random_range(0..=50), rng.random_range(0..=3));
            let shared = rng.random_bool(0.6);
            let budget = shared.then(|| Mutex::new(RetryBudget::new(percent, reserve)));
            // The reference budget, in hundredths of a retry: it starts full.
            let mut left = budget.as_ref().map(|_| u64::from(reserve) * 100);
            for request in 0..3 {
                let script: Vec<_> = (0..rng.random_range(0..=6))
                    .map(|i| {
                        let status = [408, 429, 503, 400, 501][rng.random_range(0..5)];
                        let after = rng.random_bool(0.4).then(|| ms(rng.random_range(0..=300)));
                        let others = [Ok(i), Ok(i), Err(TimedOut), Err(ConnectionFailed)];
                        let other = others.get(rng.random_range(0..10)).copied();
                        other.unwrap_or(Err(Status(status, after)))
                    })
                    .collect();
                let seed = rng.random_range(0..1_000);
                // The reference loop: the same rng, one draw per retry; tokio's paused clock ends
                // each sleep on a whole millisecond.
                let mut draws = seeded_rng(seed);
                left = left.map(|left| (left + u64::from(percent)).min(u64::from(reserve) * 100));
                let (mut now, mut waited, mut starts) = (Duration::ZERO, Duration::ZERO, vec![]);
                let stop = loop {
                    starts.push(now);
                    let n = starts.len();
                    let Err(error) = answer(&script, n) else {
                        break Succeeded;
                    };
                    if !error.is_retryable() {
                        break NotRetryable;
                    } else if n as u32 >= p.max_attempts {
                        break OutOfAttempts;
                    }
                    let wait = match (p.backoff.delay(n as u32 - 1, &mut draws), error) {
                        (backoff, Status(_, Some(server))) => backoff.max(server),
                        (backoff, _) => backoff,
                    };
                    if now + wait >= p.deadline {
                        break OutOfTime;
                    } else if left.is_some_and(|left| left < 100) {
                        break OutOfBudget;
                    }
                    left = left.map(|left| left - 100);
                    waited += wait;
                    now += ms(wait.as_nanos().div_ceil(1_000_000) as u64);
                };
                let config = shared.then_some((percent, reserve));
                let what = format!("request {request}, budget {config:?}, {p:?}, {script:?}");
                paused(async {
                    let (got, calls, _) = run(&p, budget.as_ref(), seed, 0, &script).await;
                    let expected = outcome(&script, starts.len(), waited, stop);
                    assert_eq!(got, expected, "{what}: the outcome");
                    assert_eq!(calls, starts, "{what}: when the attempts start");
                });
                let saved = budget.as_ref().map(|b| lock(b).retries_available());
                assert_eq!(
                    saved,
                    left.map(|left| left as f64 / 100.0),
                    "{what}: the retries left: a request earns its share first, and a retry is \
                     charged only when it is about to be made"
                );
            }
        });
    }
}
