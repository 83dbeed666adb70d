// Circuit breaker — stop calling a dependency that is down: fail fast, then probe for recovery.
//
// When a dependency dies, every call to it still waits out its timeout. A payment provider goes
// down at peak: each checkout holds a worker and a connection for the full 2 s timeout, users
// wait, the pool runs dry, and the retries hammer a provider trying to restart. A circuit breaker
// notices the failures and fails fast instead. Build `CircuitBreaker`, a three-state machine on
// an injected clock:
// - Closed (normal): calls go through. `failure_threshold` CONSECUTIVE failures trip it open; a
//   success resets the count. (Polly's classic breaker counts like this; resilience4j uses a
//   failure ratio over a sliding window of calls instead.)
// - Open: every call is rejected at once, without touching the dependency, with `retry_in`: the
//   time left until `open_for` has elapsed since the breaker OPENED (not since the first failure).
// - Half-open (as soon as `now >= opened + open_for`): admits `trial_calls` trial calls and
//   rejects the rest. All trials succeed: closed again, counts reset. The first trial failure
//   re-opens it, for a fresh `open_for` from now.
// Every admitted call gets a `Permit` that must come back through `record`. Rejections are not
// failures, and the outcome of a call admitted before the last state change says nothing new (a
// slow call that fails after the trip must not restart the timer): `record` ignores it.
// A trial may never come back: an outer timeout cancels the call and its permit is dropped, or
// the call hangs. Half-open must not wait for it forever (no call would ever be admitted again):
// once the breaker has been half-open for `open_for` with a trial still out, that trial counts
// as failed and the breaker re-opens from that moment. (resilience4j bounds half-open the same
// way, with `maxWaitDurationInHalfOpenState`.)
//
// Lab (real sockets): a backend hangs for OUTAGE, then recovers. Without a breaker each call
// waits CALL_TIMEOUT; with yours they fail in microseconds and the backend sees one trial every
// OPEN_FOR. Turn OPEN_FOR up: fewer trials, slower to notice the recovery. Turn FAILURE_THRESHOLD
// up: more calls wasted before it trips. Hystrix, resilience4j, Polly and Finagle all ship one.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sdlings_kit::backend::{self, Backend, Behaviour};
use sdlings_kit::clock::{Clock, SystemClock};
use sdlings_kit::lab::{Table, bar_chart, latency, millis, percent, quantile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures, while closed, that trip the breaker open (at least 1).
    pub failure_threshold: u32,
    /// How long the breaker stays open, counted from the moment it opened.
    pub open_for: Duration,
    /// Trial calls admitted while half-open (at least 1). All of them must succeed to close.
    pub trial_calls: u32,
}

/// What the outside world sees (dashboards, metrics, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

/// How an admitted call went, as the caller judges it. A `404 Not Found` or a `400` caused by
/// the caller's own input is a *success* for the breaker: the dependency is up and answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

/// Why `try_acquire` turned a call away. The dependency was not called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The breaker is open: a trial call will be admitted in `retry_in`.
    Open { retry_in: Duration },
    /// Half-open, and every trial call has been handed out already: wait for their verdict.
    TrialsInFlight,
}

/// A ticket for one admitted call. It must come back through `record` with the call's outcome.
/// It remembers the breaker's generation when it was issued, so `record` can tell a current call
/// from one admitted before the last state change.
#[must_use = "report the call's outcome with CircuitBreaker::record(permit, outcome)"]
#[derive(Debug, PartialEq, Eq)]
pub struct Permit {
    generation: u64,
}

/// The breaker's state, with what each state needs to remember.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `failures`: consecutive failures so far.
    Closed { failures: u32 },
    /// `since`: the clock reading when the breaker opened.
    Open { since: Duration },
    /// `since`: the clock reading when the breaker became half-open; `admitted`: trial permits
    /// handed out; `succeeded`: trials that came back successful.
    HalfOpen {
        since: Duration,
        admitted: u32,
        succeeded: u32,
    },
}

impl Phase {
    fn state(self) -> State {
        match self {
            Phase::Closed { .. } => State::Closed,
            Phase::Open { .. } => State::Open,
            Phase::HalfOpen { .. } => State::HalfOpen,
        }
    }
}

pub struct CircuitBreaker<C: Clock> {
    config: BreakerConfig,
    clock: C,
    phase: Phase,
    /// Bumped on every state change (by `enter`). A `Permit` from an older generation is stale.
    generation: u64,
    /// Every state change: (clock reading, new state).
    transitions: Vec<(Duration, State)>,
}

impl<C: Clock> CircuitBreaker<C> {
    /// A closed breaker with no failures.
    pub fn new(config: BreakerConfig, clock: C) -> Self {
        assert!(
            config.failure_threshold >= 1 && config.trial_calls >= 1,
            "failure_threshold and trial_calls are at least 1"
        );
        CircuitBreaker {
            config,
            clock,
            phase: Phase::Closed { failures: 0 },
            generation: 0,
            transitions: Vec::new(),
        }
    }

    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    /// The state right now (an open breaker whose `open_for` is over is half-open).
    pub fn state(&mut self) -> State {
        self.refresh();
        self.phase.state()
    }

    /// Every state change so far: (clock reading, new state), oldest first.
    pub fn transitions(&self) -> &[(Duration, State)] {
        &self.transitions
    }

    /// Moves to `phase`: starts a new generation (every permit issued before is now stale) and
    /// logs the transition. Make every state change through here.
    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.generation += 1;
        self.transitions.push((self.clock.now(), phase.state()));
    }
}

// ---- Your part -------------------------------------------------------------------------------

impl<C: Clock> CircuitBreaker<C> {
    /// If the breaker is open and `open_for` has elapsed since it opened (`now >= since +
    /// open_for`), it becomes half-open, with no trial handed out yet. If it is half-open with a
    /// trial handed out and not yet back, and `open_for` has elapsed since it became half-open,
    /// that trial counts as failed: it re-opens from now. Otherwise nothing changes.
    fn refresh(&mut self) {
        todo!("open -> half-open after open_for; a trial out for open_for -> open again")
    }

    /// Admits a call (closed; or half-open with a trial left) or rejects it without calling the
    /// dependency (open: with the time left until a trial; half-open: every trial is taken).
    /// A rejection changes nothing: it is not a failure.
    pub fn try_acquire(&mut self) -> Result<Permit, Rejected> {
        todo!("admit the call with a Permit, or say why not")
    }

    /// Records the outcome of an admitted call. Ignored if the permit is stale (issued before the
    /// last state change). Closed: a failure adds to the streak (tripping at the threshold), a
    /// success resets it. Half-open: a failure re-opens (timer from now); the last of
    /// `trial_calls` successes closes.
    pub fn record(&mut self, permit: Permit, outcome: Outcome) {
        todo!("update the state with {outcome:?} for {permit:?}")
    }
}

// ---- Lab --------------------------------------------------------------------------------------
// Two identical HTTP backends on 127.0.0.1 and two identical clients, run side by side in real
// time: one client calls its backend directly, the other through your breaker. Both backends go
// down at the same moment and recover at the same moment.

/// Consecutive failures that trip the breaker.
const FAILURE_THRESHOLD: u32 = 5;
/// How long the breaker stays open before a trial call.
const OPEN_FOR: Duration = Duration::from_millis(250);
/// Trial calls in half-open; all must succeed to close.
const TRIAL_CALLS: u32 = 1;
/// When the outage starts and how long it lasts.
const OUTAGE_START: Duration = Duration::from_millis(300);
const OUTAGE: Duration = Duration::from_millis(1000);
/// How the backend misbehaves during the outage. Try `Behaviour::Failing { latency:
/// Duration::from_millis(1) }`: 503s come back fast, so latency hardly changes, but the breaker
/// still spares the backend the load.
const OUTAGE_BEHAVIOUR: Behaviour = Behaviour::Hung;
/// The whole run.
const RUN: Duration = Duration::from_millis(1800);
/// A request every REQUEST_EVERY, from each client.
const REQUEST_EVERY: Duration = Duration::from_millis(2);
/// The client's timeout on one call.
const CALL_TIMEOUT: Duration = Duration::from_millis(100);
const BACKEND_LATENCY: Duration = Duration::from_millis(2);
/// Width of one bar of the timeline.
const BAR: Duration = Duration::from_millis(100);

struct Sample {
    sent_at: Duration,
    /// The call reached the backend (it was not rejected by the breaker).
    reached: bool,
    ok: bool,
    latency: Duration,
}

/// One call, through the breaker if there is one. The breaker lock is held only for the
/// bookkeeping, never across the network call.
async fn call(
    addr: SocketAddr,
    breaker: Option<&Mutex<CircuitBreaker<SystemClock>>>,
) -> (bool, bool) {
    let permit = match breaker {
        Some(breaker) => match breaker.lock().expect("not poisoned").try_acquire() {
            Ok(permit) => Some(permit),
            Err(_) => return (false, false), // fast fail: the backend is not called
        },
        None => None,
    };
    let result: io::Result<backend::Response> = backend::get(addr, "/work", CALL_TIMEOUT).await;
    let ok = matches!(&result, Ok(r) if r.status == 200);
    if let (Some(breaker), Some(permit)) = (breaker, permit) {
        let outcome = if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        breaker
            .lock()
            .expect("not poisoned")
            .record(permit, outcome);
    }
    (true, ok)
}

struct Run {
    samples: Vec<Sample>,
    transitions: Vec<(Duration, State)>,
}

async fn scenario(with_breaker: bool) -> Run {
    let backend = Backend::start(
        "dependency",
        Behaviour::Healthy {
            latency: BACKEND_LATENCY,
        },
    )
    .await
    .expect("start a backend on 127.0.0.1");
    let backend = Arc::new(backend);
    let config = BreakerConfig {
        failure_threshold: FAILURE_THRESHOLD,
        open_for: OPEN_FOR,
        trial_calls: TRIAL_CALLS,
    };
    // The breaker's clock starts with the run, so its transition times line up with the lab's.
    let breaker =
        with_breaker.then(|| Arc::new(Mutex::new(CircuitBreaker::new(config, SystemClock::new()))));
    let started = Instant::now();

    // The outage, on its own schedule.
    let chaos = {
        let backend = Arc::clone(&backend);
        tokio::spawn(async move {
            tokio::time::sleep_until((started + OUTAGE_START).into()).await;
            backend.set_behaviour(OUTAGE_BEHAVIOUR);
            tokio::time::sleep_until((started + OUTAGE_START + OUTAGE).into()).await;
            backend.set_behaviour(Behaviour::Healthy {
                latency: BACKEND_LATENCY,
            });
        })
    };

    let mut requests = tokio::task::JoinSet::new();
    let count = (RUN.as_nanos() / REQUEST_EVERY.as_nanos()) as u32;
    for i in 0..count {
        let sent_at = REQUEST_EVERY * i;
        tokio::time::sleep_until((started + sent_at).into()).await;
        let (addr, breaker) = (backend.addr(), breaker.clone());
        requests.spawn(async move {
            let began = Instant::now();
            let (reached, ok) = call(addr, breaker.as_deref()).await;
            Sample {
                sent_at,
                reached,
                ok,
                latency: began.elapsed(),
            }
        });
    }
    let mut samples = requests.join_all().await;
    samples.sort_by_key(|s| s.sent_at);
    chaos.await.expect("the chaos task does not panic");
    let transitions = breaker.map_or_else(Vec::new, |b| {
        b.lock().expect("not poisoned").transitions().to_vec()
    });
    Run {
        samples,
        transitions,
    }
}

fn main() {
    let runtime = sdlings_kit::lab::runtime();
    runtime.block_on(async {
        let recovery = OUTAGE_START + OUTAGE;
        println!(
            "A client sends GET /work every {REQUEST_EVERY:?} (timeout {CALL_TIMEOUT:?}) to a \
             backend on 127.0.0.1.\nThe backend is {OUTAGE_BEHAVIOUR:?} from t={} to t={}, healthy \
             otherwise. Breaker: trip after {FAILURE_THRESHOLD} failures in a row, open for \
             {OPEN_FOR:?}, {TRIAL_CALLS} trial call(s).\n",
            millis(OUTAGE_START),
            millis(recovery),
        );
        let (plain, guarded) = tokio::join!(scenario(false), scenario(true));

        let mut table = Table::new(&[
            "client",
            "requests",
            "reached backend in outage",
            "fast-failed",
            "failed",
            "outage p50",
            "outage p99",
            "time held by the dead backend",
            "first success after recovery",
        ]);
        for (name, run) in [("no breaker", &plain), ("your breaker", &guarded)] {
            let in_outage = |s: &&Sample| s.sent_at >= OUTAGE_START && s.sent_at < recovery;
            let mut outage_latencies: Vec<Duration> = run
                .samples
                .iter()
                .filter(in_outage)
                .map(|s| s.latency)
                .collect();
            let first_success = run
                .samples
                .iter()
                .filter(|s| s.ok && s.sent_at + s.latency >= recovery)
                .map(|s| s.sent_at + s.latency - recovery)
                .min()
                .map_or("never".to_string(), |d| format!("+{}", latency(d)));
            let reached_in_outage: Vec<&Sample> = run
                .samples
                .iter()
                .filter(in_outage)
                .filter(|s| s.reached)
                .collect();
            // Each call that reached the hung backend held a connection (in a thread-per-request
            // server: a thread) until its timeout.
            let held: Duration = reached_in_outage.iter().map(|s| s.latency).sum();
            table.row(&[
                name.to_string(),
                run.samples.len().to_string(),
                reached_in_outage.len().to_string(),
                run.samples
                    .iter()
                    .filter(|s| !s.reached)
                    .count()
                    .to_string(),
                run.samples.iter().filter(|s| !s.ok).count().to_string(),
                quantile(&mut outage_latencies, 0.5),
                quantile(&mut outage_latencies, 0.99),
                format!("{:.1} s", held.as_secs_f64()),
                first_success,
            ]);
        }
        table.print();

        let failed = |run: &Run| run.samples.iter().filter(|s| !s.ok).count() as u64;
        println!(
            "\nBoth clients fail about as many requests ({} vs {}): the backend is down either \
             way. The difference is\nwhat failing costs: how long each failure takes, and how \
             hard the dying backend is hit. The breaker\nfails a few more after the recovery: it \
             only finds out at its next trial, up to OPEN_FOR later.",
            percent(failed(&plain), plain.samples.len() as u64),
            percent(failed(&guarded), guarded.samples.len() as u64),
        );

        println!("\nyour breaker's transitions:");
        for (at, state) in &guarded.transitions {
            println!("  t={:>10}  {state:?}", millis(*at));
        }

        let bars = (RUN.as_nanos() / BAR.as_nanos()) as usize;
        let mut reached = vec![0u32; bars];
        for s in guarded.samples.iter().filter(|s| s.reached) {
            reached[((s.sent_at.as_nanos() / BAR.as_nanos()) as usize).min(bars - 1)] += 1;
        }
        let chart: Vec<(String, f64)> = reached
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let from = BAR * i as u32;
                let down = from + BAR > OUTAGE_START && from < recovery;
                let label = format!("{}{}", millis(from), if down { " (down)" } else { "" });
                (label, f64::from(n))
            })
            .collect();
        println!(
            "\ncalls that reached the backend per {BAR:?}, with your breaker (without: {} per \
             bar)\n{}",
            BAR.as_nanos() / REQUEST_EVERY.as_nanos(),
            bar_chart(&chart, 40)
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdlings_kit::clock::ManualClock;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    const NANO: Duration = Duration::from_nanos(1);

    fn breaker(
        failure_threshold: u32,
        open_for: Duration,
        trial_calls: u32,
    ) -> (ManualClock, CircuitBreaker<ManualClock>) {
        let clock = ManualClock::new();
        let config = BreakerConfig {
            failure_threshold,
            open_for,
            trial_calls,
        };
        (clock.clone(), CircuitBreaker::new(config, clock))
    }

    /// One complete call: asks for a permit and, if admitted, reports `outcome` at once.
    fn call(b: &mut CircuitBreaker<ManualClock>, outcome: Outcome) -> Result<(), Rejected> {
        let permit = b.try_acquire()?;
        b.record(permit, outcome);
        Ok(())
    }

    /// `n` calls that all fail (each must be admitted).
    fn fail(b: &mut CircuitBreaker<ManualClock>, n: u32) {
        for i in 0..n {
            call(b, Outcome::Failure).unwrap_or_else(|r| {
                panic!(
                    "failing call {} of {n} should have been admitted (the breaker should still \
                     be closed: count only failures in a row since the last success, or since it \
                     last closed), but got {r:?}",
                    i + 1
                )
            });
        }
    }

    fn admit(b: &mut CircuitBreaker<ManualClock>, what: &str) -> Permit {
        b.try_acquire()
            .unwrap_or_else(|r| panic!("{what} should be admitted, but got {r:?}"))
    }

    // --- closed ---

    #[test]
    fn a_new_breaker_is_closed_and_lets_calls_through() {
        let (_, mut b) = breaker(3, secs(10), 1);
        assert_eq!(b.state(), State::Closed);
        for _ in 0..100 {
            assert_eq!(call(&mut b, Outcome::Success), Ok(()));
        }
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.transitions(), &[], "nothing happened, so no transition");
    }

    #[test]
    fn trips_open_exactly_at_the_failure_threshold() {
        let (clock, mut b) = breaker(3, secs(10), 1);
        fail(&mut b, 2);
        assert_eq!(
            b.state(),
            State::Closed,
            "2 consecutive failures, threshold 3: not yet (the threshold is the number of \
             failures that trips it, not one more)"
        );
        clock.set(secs(1));
        fail(&mut b, 1);
        assert_eq!(
            b.state(),
            State::Open,
            "the 3rd consecutive failure trips it (not the 4th)"
        );
        assert_eq!(b.transitions(), &[(secs(1), State::Open)]);
    }

    #[test]
    fn a_threshold_of_one_trips_on_the_first_failure() {
        let (_, mut b) = breaker(1, secs(10), 1);
        fail(&mut b, 1);
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn a_success_resets_the_consecutive_failure_count() {
        let (_, mut b) = breaker(3, secs(10), 1);
        for outcome in [Outcome::Failure, Outcome::Failure, Outcome::Success] {
            call(&mut b, outcome).expect("closed: admitted");
        }
        fail(&mut b, 2);
        assert_eq!(
            b.state(),
            State::Closed,
            "F F S F F: never 3 failures in a row. Sporadic failures among successes are normal \
             for a healthy dependency and must not trip the breaker"
        );
        fail(&mut b, 1);
        assert_eq!(b.state(), State::Open, "F F F in a row: trips");
    }

    // --- open ---

    #[test]
    fn an_open_breaker_rejects_every_call_and_says_when_a_trial_is_due() {
        let (clock, mut b) = breaker(3, secs(10), 1);
        clock.set(secs(1));
        fail(&mut b, 3); // opens at t = 1 s
        clock.set(secs(4));
        for _ in 0..50 {
            assert_eq!(
                b.try_acquire(),
                Err(Rejected::Open { retry_in: secs(7) }),
                "opened at 1 s for 10 s: at 4 s every call is rejected, and a trial is due in 7 s"
            );
        }
        clock.set(Duration::from_millis(10_500));
        assert_eq!(
            b.try_acquire(),
            Err(Rejected::Open {
                retry_in: Duration::from_millis(500)
            }),
            "at 10.5 s: half a second to go"
        );
    }

    #[test]
    fn turns_half_open_exactly_when_open_for_has_elapsed() {
        let (clock, mut b) = breaker(3, secs(10), 1);
        clock.set(secs(1));
        fail(&mut b, 3); // opens at t = 1 s
        clock.set(secs(11) - NANO);
        assert_eq!(
            b.try_acquire(),
            Err(Rejected::Open { retry_in: NANO }),
            "1 ns before open_for is over: still open"
        );
        assert_eq!(b.state(), State::Open);
        clock.set(secs(11));
        assert_eq!(
            b.state(),
            State::HalfOpen,
            "opened at 1 s, open_for 10 s: half-open at 11 s exactly (now >= opened + open_for)"
        );
        assert_eq!(
            b.transitions(),
            &[(secs(1), State::Open), (secs(11), State::HalfOpen)]
        );
    }

    #[test]
    fn the_open_timer_starts_when_the_breaker_opens_not_at_the_first_failure() {
        let (clock, mut b) = breaker(3, secs(10), 1);
        for t in [0, 4, 8] {
            clock.set(secs(t));
            fail(&mut b, 1);
        }
        assert_eq!(
            b.state(),
            State::Open,
            "3 failures in a row (at 0, 4 and 8 s)"
        );
        clock.set(secs(10));
        assert_eq!(
            b.try_acquire(),
            Err(Rejected::Open { retry_in: secs(8) }),
            "the breaker opened at 8 s (the 3rd failure), so it stays open until 18 s; the first \
             failure at 0 s is not when it opened"
        );
        clock.set(secs(18));
        assert_eq!(b.state(), State::HalfOpen);
    }

    // --- half-open ---

    #[test]
    fn half_open_admits_only_the_trial_calls() {
        let (clock, mut b) = breaker(3, secs(10), 2);
        fail(&mut b, 3);
        clock.set(secs(10));
        let first = admit(&mut b, "the first trial call");
        let second = admit(&mut b, "the second trial call (trial_calls = 2)");
        for _ in 0..20 {
            assert_eq!(
                b.try_acquire(),
                Err(Rejected::TrialsInFlight),
                "half-open lets 2 trial calls through, not the whole traffic: a dependency that \
                 may still be down (or is cold after a restart) must not get the full load at once"
            );
        }
        assert_eq!(b.state(), State::HalfOpen);
        drop((first, second));
    }

    #[test]
    fn successful_trials_close_the_breaker() {
        let (clock, mut b) = breaker(3, secs(10), 2);
        fail(&mut b, 3);
        clock.set(secs(10));
        let first = admit(&mut b, "the first trial call");
        let second = admit(&mut b, "the second trial call");
        b.record(first, Outcome::Success);
        assert_eq!(
            b.state(),
            State::HalfOpen,
            "1 of 2 trials succeeded: still testing"
        );
        assert_eq!(
            b.try_acquire(),
            Err(Rejected::TrialsInFlight),
            "both trials were handed out; a trial that came back does not make room for a new one"
        );
        clock.set(secs(11));
        b.record(second, Outcome::Success);
        assert_eq!(b.state(), State::Closed, "both trials succeeded: closed");
        assert_eq!(
            b.transitions(),
            &[
                (Duration::ZERO, State::Open),
                (secs(10), State::HalfOpen),
                (secs(11), State::Closed)
            ]
        );
        for _ in 0..10 {
            assert_eq!(
                call(&mut b, Outcome::Success),
                Ok(()),
                "closed: all through"
            );
        }
    }

    #[test]
    fn after_closing_it_takes_a_full_threshold_of_new_failures_to_trip_again() {
        let (clock, mut b) = breaker(3, secs(10), 1);
        fail(&mut b, 3);
        clock.set(secs(10));
        call(&mut b, Outcome::Success).expect("the trial call");
        assert_eq!(b.state(), State::Closed);
        fail(&mut b, 2);
        assert_eq!(
            b.state(),
            State::Closed,
            "the failure count starts from zero when the breaker closes: the failures of the \
             outage that is over do not count again"
        );
        fail(&mut b, 1);
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn a_failed_trial_reopens_the_breaker_for_a_full_open_for_from_now() {
        let (clock, mut b) = breaker(3, secs(10), 1);
        fail(&mut b, 3); // opens at 0 s, half-open from 10 s
        clock.set(secs(13));
        let trial = admit(&mut b, "the trial call at 13 s");
        clock.set(secs(15));
        b.record(trial, Outcome::Failure);
        assert_eq!(
            b.state(),
            State::Open,
            "the trial failed: the dependency is still down, so the breaker re-opens"
        );
        assert_eq!(
            b.try_acquire(),
            Err(Rejected::Open { retry_in: secs(10) }),
            "re-opened at 15 s (when the trial failed) for a full 10 s; keeping the first \
             opening time would make it half-open again at once, probing on every call"
        );
        clock.set(secs(25) - NANO);
        assert_eq!(b.state(), State::Open);
        clock.set(secs(25));
        assert_eq!(b.state(), State::HalfOpen);
        assert_eq!(
            b.transitions(),
            &[
                (Duration::ZERO, State::Open),
                (secs(13), State::HalfOpen),
                (secs(15), State::Open),
                (secs(25), State::HalfOpen)
            ]
        );
    }

    #[test]
    fn one_failed_trial_is_enough_to_reopen() {
        let (clock, mut b) = breaker(3, secs(10), 3);
        fail(&mut b, 3);
        clock.set(secs(10));
        let trials: Vec<Permit> = (0..3).map(|_| admit(&mut b, "a trial call")).collect();
        let mut trials = trials.into_iter();
        b.record(trials.next().unwrap(), Outcome::Success);
        b.record(trials.next().unwrap(), Outcome::Failure);
        assert_eq!(
            b.state(),
            State::Open,
            "a trial failed: the dependency is not back, re-open at once (do not wait for the \
             other trials)"
        );
        b.record(trials.next().unwrap(), Outcome::Success);
        assert_eq!(
            b.state(),
            State::Open,
            "the third trial's success came after the breaker re-opened: it was admitted before \
             that change, so it is ignored (it must not close the breaker)"
        );
    }

    #[test]
    fn a_trial_that_never_comes_back_counts_as_failed_after_open_for() {
        let (clock, mut b) = breaker(3, secs(10), 1);
        fail(&mut b, 3); // opens at 0 s
        clock.set(secs(12));
        let trial = admit(&mut b, "the trial call at 12 s");
        drop(trial); // an outer timeout cancelled the call: no result will ever come
        clock.set(secs(22) - NANO);
        assert_eq!(
            b.try_acquire(),
            Err(Rejected::TrialsInFlight),
            "half-open since 12 s with the trial still out: until 22 s it may yet come back"
        );
        clock.set(secs(22));
        assert_eq!(
            b.state(),
            State::Open,
            "half-open for open_for (10 s) with the trial still out: its permit was dropped (or \
             the call hangs), so count it as failed and re-open; waiting for it would keep the \
             breaker half-open, rejecting every call, forever"
        );
        assert_eq!(
            b.try_acquire(),
            Err(Rejected::Open { retry_in: secs(10) }),
            "re-opened at 22 s, for a full open_for"
        );
        clock.set(secs(32));
        let next = admit(
            &mut b,
            "a new trial at 32 s, after the re-opened breaker waited",
        );
        b.record(next, Outcome::Success);
        assert_eq!(b.state(), State::Closed, "the new trial succeeded: closed");
        assert_eq!(
            b.transitions(),
            &[
                (Duration::ZERO, State::Open),
                (secs(12), State::HalfOpen),
                (secs(22), State::Open),
                (secs(32), State::HalfOpen),
                (secs(32), State::Closed)
            ]
        );
    }

    #[test]
    fn the_lost_trial_coming_back_late_changes_nothing() {
        let (clock, mut b) = breaker(3, secs(10), 1);
        fail(&mut b, 3);
        clock.set(secs(10));
        let trial = admit(&mut b, "the trial call at 10 s");
        clock.set(secs(20));
        assert_eq!(
            b.state(),
            State::Open,
            "the trial was out for open_for: re-opened"
        );
        clock.set(secs(25));
        b.record(trial, Outcome::Success);
        assert_eq!(
            b.state(),
            State::Open,
            "the trial was already counted as failed when the breaker re-opened at 20 s; its \
             late success belongs to an earlier state and must not close the breaker"
        );
        assert_eq!(
            b.try_acquire(),
            Err(Rejected::Open { retry_in: secs(5) }),
            "still open from 20 s until 30 s"
        );
    }

    #[test]
    fn a_half_open_breaker_nobody_has_called_waits_for_traffic_not_for_a_deadline() {
        let (clock, mut b) = breaker(3, secs(10), 2);
        fail(&mut b, 3);
        clock.set(secs(10));
        assert_eq!(
            b.state(),
            State::HalfOpen,
            "half-open from 10 s, no trial taken yet"
        );
        clock.set(secs(60));
        assert_eq!(
            b.state(),
            State::HalfOpen,
            "no trial was ever handed out, so none is missing: an idle half-open breaker stays \
             half-open"
        );
        let first = admit(&mut b, "the first trial at 60 s");
        b.record(first, Outcome::Success);
        clock.set(secs(75));
        assert_eq!(
            b.state(),
            State::HalfOpen,
            "the one trial handed out came back (a success) and the other was never taken: \
             nothing is outstanding, so there is nothing to give up on"
        );
        let second = admit(&mut b, "the second trial at 75 s");
        b.record(second, Outcome::Success);
        assert_eq!(b.state(), State::Closed);
    }

    // --- plausible mistakes ---

    #[test]
    fn rejected_calls_are_not_failures() {
        let (clock, mut b) = breaker(3, secs(10), 1);
        fail(&mut b, 3);
        clock.set(secs(5));
        for _ in 0..100 {
            assert!(b.try_acquire().is_err());
        }
        clock.set(secs(10));
        assert_eq!(
            b.state(),
            State::HalfOpen,
            "100 calls were rejected while open: they never reached the dependency, so they must \
             neither restart nor extend the open timer"
        );
        let trial = admit(&mut b, "the trial call");
        for _ in 0..5 {
            assert_eq!(
                b.try_acquire(),
                Err(Rejected::TrialsInFlight),
                "the one trial is in flight: other calls are turned away, which is not a failure"
            );
        }
        b.record(trial, Outcome::Success);
        assert_eq!(
            b.state(),
            State::Closed,
            "the only trial succeeded; the 5 calls turned away meanwhile are not failures and \
             must not re-open the breaker"
        );
    }

    #[test]
    fn a_late_failure_from_before_the_trip_does_not_restart_the_open_timer() {
        let (clock, mut b) = breaker(3, secs(10), 1);
        // Five slow calls are admitted while closed, and are still waiting for their timeout...
        let slow: Vec<Permit> = (0..5)
            .map(|_| admit(&mut b, "a call while closed"))
            .collect();
        // ...while three fast ones fail and trip the breaker at 1 s.
        clock.set(secs(1));
        fail(&mut b, 3);
        // The slow ones time out at 4 s.
        clock.set(secs(4));
        for permit in slow {
            b.record(permit, Outcome::Failure);
        }
        assert_eq!(
            b.try_acquire(),
            Err(Rejected::Open { retry_in: secs(7) }),
            "the breaker opened at 1 s; failures of calls admitted *before* it opened, reported \
             late, say nothing new and must not restart the timer"
        );
        clock.set(secs(11));
        assert_eq!(b.state(), State::HalfOpen);
    }

    #[test]
    fn a_late_success_from_before_the_trip_neither_closes_nor_takes_a_trial() {
        let (clock, mut b) = breaker(3, secs(10), 1);
        let slow = admit(&mut b, "a call while closed");
        fail(&mut b, 3);
        clock.set(secs(10));
        assert_eq!(b.state(), State::HalfOpen);
        b.record(slow, Outcome::Success);
        assert_eq!(
            b.state(),
            State::HalfOpen,
            "that success belongs to a call admitted before the breaker opened: it says how the \
             dependency was then, not now, so it must not close the breaker"
        );
        let trial = admit(
            &mut b,
            "the trial call (the stale success was not a trial and must not use one up)",
        );
        b.record(trial, Outcome::Failure);
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn the_breaker_cycles_through_its_states_over_an_outage() {
        let (clock, mut b) = breaker(2, secs(5), 1);
        let mut log = Vec::new();
        // One call per second for 30 s; the dependency is down from 3 s to 14 s (exclusive).
        for t in 0..30 {
            clock.set(secs(t));
            let down = (3..14).contains(&t);
            let outcome = if down {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            match call(&mut b, outcome) {
                Ok(()) => log.push((t, "called")),
                Err(_) => log.push((t, "rejected")),
            }
        }
        let called: Vec<u64> = log
            .iter()
            .filter(|(_, what)| *what == "called")
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(
            called,
            [vec![0, 1, 2, 3, 4, 9], (14..30).collect()].concat(),
            "down at 3 s: 3 and 4 fail and trip it (threshold 2) at 4 s; the trial at 9 s fails \
             and re-opens until 14 s; the trial at 14 s succeeds and closes it"
        );
        assert_eq!(
            b.transitions(),
            &[
                (secs(4), State::Open),
                (secs(9), State::HalfOpen),
                (secs(9), State::Open),
                (secs(14), State::HalfOpen),
                (secs(14), State::Closed)
            ]
        );
    }
}
