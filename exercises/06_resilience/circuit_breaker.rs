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

use std::time::Duration;

use sdlings_kit::backend::Behaviour;
use sdlings_kit::clock::{Clock, SystemClock};
use sdlings_kit::resilience::breakers::{self, BreakerConfig, Outcome, Rejected, State};

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

pub struct CircuitBreaker<C: Clock> {
    config: BreakerConfig,
    clock: C,
    phase: Phase,
    /// Bumped on every state change (by `enter`). A `Permit` from an older generation is stale.
    generation: u64,
    /// Every state change: (clock reading, new state).
    transitions: Vec<(Duration, State)>,
}

// ---- Your part -------------------------------------------------------------------------------
// Given after your part: `new`, `state()` (it calls `refresh`), and `enter`: change state only so.

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

// ---- Given: construction, state, transitions ---------------------------------------------

impl Phase {
    fn state(self) -> State {
        match self {
            Phase::Closed { .. } => State::Closed,
            Phase::Open { .. } => State::Open,
            Phase::HalfOpen { .. } => State::HalfOpen,
        }
    }
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
/// How the backend misbehaves during its outage. Try `Behaviour::Failing { latency:
/// Duration::from_millis(1) }`: 503s come back fast, so latency hardly changes, but the breaker
/// still spares the backend the load.
const OUTAGE_BEHAVIOUR: Behaviour = Behaviour::Hung;
/// How long the outage lasts (from 300 ms into the run), and the client's timeout on one call.
const OUTAGE: Duration = Duration::from_millis(1000);
const CALL_TIMEOUT: Duration = Duration::from_millis(100);

fn main() {
    let knobs = breakers::Knobs {
        config: BreakerConfig {
            failure_threshold: FAILURE_THRESHOLD,
            open_for: OPEN_FOR,
            trial_calls: TRIAL_CALLS,
        },
        outage_start: Duration::from_millis(300),
        outage: OUTAGE,
        outage_behaviour: OUTAGE_BEHAVIOUR,
        run: Duration::from_millis(1800),
        request_every: Duration::from_millis(2),
        call_timeout: CALL_TIMEOUT,
        backend_latency: Duration::from_millis(2),
        bar: Duration::from_millis(100),
    };
    breakers::run(&knobs, |config| {
        CircuitBreaker::new(config, SystemClock::new())
    });
}

impl breakers::Breaker for CircuitBreaker<SystemClock> {
    type Permit = Permit;

    fn admit(&mut self) -> Option<Permit> {
        self.try_acquire().ok()
    }

    fn report(&mut self, permit: Permit, outcome: Outcome) {
        self.record(permit, outcome);
    }

    fn state_changes(&self) -> Vec<(Duration, State)> {
        self.transitions().to_vec()
    }
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

    // --- any configuration, any sequence ---

    /// The reference breaker, straight from the rules in the header, on whole milliseconds.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Model {
        Closed {
            failures: u32,
        },
        Open {
            since: u64,
        },
        HalfOpen {
            since: u64,
            admitted: u32,
            succeeded: u32,
        },
    }

    struct Reference {
        threshold: u32,
        open_for: u64,
        trials: u32,
        phase: Model,
        generation: u64,
        transitions: Vec<(Duration, State)>,
    }

    impl Reference {
        fn enter(&mut self, now: u64, phase: Model) {
            self.phase = phase;
            self.generation += 1;
            let state = match phase {
                Model::Closed { .. } => State::Closed,
                Model::Open { .. } => State::Open,
                Model::HalfOpen { .. } => State::HalfOpen,
            };
            self.transitions.push((Duration::from_millis(now), state));
        }

        fn state(&mut self, now: u64) -> State {
            match self.phase {
                Model::Open { since } if now >= since + self.open_for => self.enter(
                    now,
                    Model::HalfOpen {
                        since: now,
                        admitted: 0,
                        succeeded: 0,
                    },
                ),
                Model::HalfOpen {
                    since,
                    admitted,
                    succeeded,
                } if admitted > succeeded && now >= since + self.open_for => {
                    self.enter(now, Model::Open { since: now })
                }
                _ => {}
            }
            match self.phase {
                Model::Closed { .. } => State::Closed,
                Model::Open { .. } => State::Open,
                Model::HalfOpen { .. } => State::HalfOpen,
            }
        }

        fn acquire(&mut self, now: u64) -> Result<u64, Rejected> {
            self.state(now);
            match &mut self.phase {
                Model::Closed { .. } => {}
                Model::Open { since } => {
                    return Err(Rejected::Open {
                        retry_in: Duration::from_millis(*since + self.open_for - now),
                    });
                }
                Model::HalfOpen { admitted, .. } if *admitted >= self.trials => {
                    return Err(Rejected::TrialsInFlight);
                }
                Model::HalfOpen { admitted, .. } => *admitted += 1,
            }
            Ok(self.generation)
        }

        fn record(&mut self, now: u64, generation: u64, success: bool) {
            if generation != self.generation {
                return;
            }
            match (&mut self.phase, success) {
                (Model::Closed { failures }, true) => *failures = 0,
                (Model::Closed { failures }, false) => {
                    *failures += 1;
                    if *failures >= self.threshold {
                        self.enter(now, Model::Open { since: now });
                    }
                }
                (Model::HalfOpen { succeeded, .. }, true) => {
                    *succeeded += 1;
                    if *succeeded >= self.trials {
                        self.enter(now, Model::Closed { failures: 0 });
                    }
                }
                (Model::HalfOpen { .. }, false) => self.enter(now, Model::Open { since: now }),
                (Model::Open { .. }, _) => {}
            }
        }
    }

    #[test]
    fn any_configuration_and_sequence_of_calls_matches_the_reference_breaker() {
        use rand::RngExt;
        sdlings_kit::property::for_seeds(300, |rng| {
            let (threshold, trials) = (rng.random_range(1..=4), rng.random_range(1..=3));
            let open_for = 100 * rng.random_range(1..=5);
            let (clock, mut b) = breaker(threshold, Duration::from_millis(open_for), trials);
            let mut reference = Reference {
                threshold,
                open_for,
                trials,
                phase: Model::Closed { failures: 0 },
                generation: 0,
                transitions: Vec::new(),
            };
            let mut now = 0;
            let mut held: Vec<(Permit, u64)> = Vec::new();
            let mut log =
                format!("threshold {threshold}, open_for {open_for} ms, {trials} trials:");
            for _ in 0..60 {
                match rng.random_range(0..10) {
                    0..=1 => {
                        let by = 50 * rng.random_range(0..=12);
                        now += by;
                        clock.advance(Duration::from_millis(by));
                        log += &format!(" +{by} ms;");
                    }
                    2..=5 => {
                        let got = b.try_acquire();
                        let expected = reference.acquire(now);
                        log += &format!(" try_acquire at {now} ms;");
                        assert_eq!(
                            got.as_ref().map(|_| ()).map_err(|r| *r),
                            expected.map(|_| ()),
                            "{log} the call must be admitted or rejected as the rules say"
                        );
                        if let (Ok(permit), Ok(generation)) = (got, expected) {
                            held.push((permit, generation));
                        }
                    }
                    6..=8 if !held.is_empty() => {
                        let (permit, generation) = held.remove(rng.random_range(0..held.len()));
                        let success = rng.random_bool(0.5);
                        // Both look first, so an overdue trial is given up on before the answer.
                        b.state();
                        reference.state(now);
                        b.record(
                            permit,
                            if success {
                                Outcome::Success
                            } else {
                                Outcome::Failure
                            },
                        );
                        reference.record(now, generation, success);
                        log += &format!(
                            " a call admitted earlier records {} at {now} ms;",
                            if success { "a success" } else { "a failure" }
                        );
                    }
                    9 if !held.is_empty() => {
                        drop(held.remove(rng.random_range(0..held.len())).0);
                        log += " a call is cancelled (its permit dropped);";
                    }
                    _ => continue,
                }
                assert_eq!(b.state(), reference.state(now), "{log} the state now");
            }
            assert_eq!(
                b.transitions(),
                reference.transitions.as_slice(),
                "{log} every state change, with its time"
            );
        });
    }
}
