// Circuit breaker — stop calling a dependency that is down: fail fast, then probe for recovery.
//
// When a dependency dies, every call to it still waits out its timeout. A payment provider goes
// down at peak: each checkout holds a worker and a connection for the full 2 s timeout, the pool
// runs dry, and the retries hammer a provider trying to restart. A breaker notices the failures
// and fails fast instead. Build `CircuitBreaker`, a three-state machine on an injected clock:
// - Closed: calls go through. `failure_threshold` CONSECUTIVE failures trip it open; a success
//   resets the count (Polly's classic breaker; resilience4j counts a failure ratio instead).
// - Open: every call is rejected at once with `retry_in`, the time left until `open_for` has
//   elapsed since the breaker OPENED (not since the first failure).
// - Half-open (once `now >= opened + open_for`): admits `trial_calls` trials, rejects the rest.
//   All trials succeed: closed, counts reset. The first trial failure re-opens it, from now.
// Every admitted call gets a `Permit` that must come back through `record`. Rejections are not
// failures, and `record` ignores a call admitted before the last state change (a slow call that
// fails after the trip must not restart the timer).
// A trial may never come back (an outer timeout dropped its permit, or the call hangs), and
// half-open must not wait for it forever. Once the oldest trial still out was admitted `open_for`
// ago, it counts as failed: re-open, from now. So a breaker idle in half-open for an hour that
// has just admitted a trial gives it a full `open_for`. (resilience4j's
// `maxWaitDurationInHalfOpenState` counts from entering half-open instead, idle or not.)
//
// Lab (real sockets): a backend hangs for OUTAGE, then recovers. Without a breaker each call
// waits CALL_TIMEOUT; with yours they fail in microseconds and the backend sees one trial every
// OPEN_FOR. Turn OPEN_FOR up: fewer trials, slower to notice the recovery. Turn FAILURE_THRESHOLD
// up: more calls wasted before it trips.

use std::time::Duration;

use sdlings_kit::backend::Behaviour;
use sdlings_kit::clock::{Clock, SystemClock};
use sdlings_kit::resilience::breakers::{self, BreakerConfig, Outcome, Rejected, State};

/// A ticket for one admitted call: it must come back through `record` with the call's outcome.
/// It carries the breaker's generation when it was issued (so `record` can tell a current call
/// from one admitted before the last state change) and the instant it was admitted.
#[must_use = "report the call's outcome with CircuitBreaker::record(permit, outcome)"]
#[derive(Debug, PartialEq, Eq)]
pub struct Permit {
    generation: u64,
    admitted_at: Duration,
}

/// The breaker's state, with what each state needs to remember.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// `failures`: consecutive failures so far.
    Closed { failures: u32 },
    /// `since`: the clock reading when the breaker opened.
    Open { since: Duration },
    /// `succeeded`: trials back with a success. `outstanding`: when each trial not back yet
    /// (a lost one included) was admitted, oldest first. A trial failure re-opens at once, so
    /// the trials handed out are `succeeded + outstanding.len()`.
    HalfOpen {
        succeeded: u32,
        outstanding: Vec<Duration>,
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
    /// Open, and `open_for` has elapsed since it opened (`now >= since + open_for`): half-open,
    /// no trial out yet. Half-open, and the oldest trial still out was admitted `open_for` ago
    /// or more: that trial counts as failed, re-open from now. Otherwise nothing changes.
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
    /// success resets it. Half-open: a success ends its own trial (trials come back in any
    /// order) and the last of `trial_calls` successes closes; a failure re-opens (timer from now).
    pub fn record(&mut self, permit: Permit, outcome: Outcome) {
        todo!("update the state with {outcome:?} for {permit:?}")
    }
}

// ---- Given: construction, state, transitions ---------------------------------------------

impl Phase {
    fn state(&self) -> State {
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
        let phase = Phase::Closed { failures: 0 };
        let (generation, transitions) = (0, Vec::new());
        CircuitBreaker {
            config,
            clock,
            phase,
            generation,
            transitions,
        }
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
        let state = phase.state();
        self.phase = phase;
        self.generation += 1;
        self.transitions.push((self.clock.now(), state));
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
/// How the backend misbehaves in its outage. Try `Behaviour::Failing { latency: Duration::ZERO }`:
/// 503s come back at once, so latency hardly changes, but the breaker still spares the backend.
const OUTAGE_BEHAVIOUR: Behaviour = Behaviour::Hung;
/// How long the outage lasts (from 300 ms into the run), and the client's timeout on one call.
const OUTAGE: Duration = Duration::from_millis(1000);
const CALL_TIMEOUT: Duration = Duration::from_millis(100);

fn main() {
    let knobs = breakers::Knobs {
        config: BreakerConfig::new(FAILURE_THRESHOLD, OPEN_FOR, TRIAL_CALLS),
        outage: OUTAGE,
        outage_behaviour: OUTAGE_BEHAVIOUR,
        call_timeout: CALL_TIMEOUT,
        ..Default::default()
    };
    breakers::run(&knobs, |config| breakers::Driven {
        breaker: CircuitBreaker::new(config, SystemClock::new()),
        admit: |b| b.try_acquire().ok(),
        report: CircuitBreaker::record,
        transitions: |b| b.transitions().to_vec(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::{Failure as F, Success as S};
    use State::{Closed, HalfOpen, Open};
    use breakers::Step::{self, *};
    use sdlings_kit::clock::ManualClock;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }
    const NANO: Duration = Duration::from_nanos(1);
    const IN_FLIGHT: Rejected = Rejected::TrialsInFlight;
    fn open(retry_in: Duration) -> Rejected {
        Rejected::Open { retry_in }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn breaker(config: BreakerConfig) -> (ManualClock, CircuitBreaker<ManualClock>) {
        let clock = ManualClock::new();
        (clock.clone(), CircuitBreaker::new(config, clock))
    }

    /// Plays each case's script on a new breaker `[failure_threshold, open_for in s, trial_calls]`,
    /// checking every expectation; the case's first words say what must hold.
    fn play(cases: &[(&str, [u32; 3], &[Step])]) {
        for &(why, [threshold, open_for, trials], script) in cases {
            let admit = |b: &mut CircuitBreaker<_>, at: &str| {
                b.try_acquire()
                    .unwrap_or_else(|r| panic!("{at}: must be admitted, got {r:?}"))
            };
            let (clock, mut b) =
                breaker(BreakerConfig::new(threshold, secs(open_for.into()), trials));
            let mut held: Vec<Option<Permit>> = Vec::new();
            for (i, step) in script.iter().enumerate() {
                let at = format!("{why} (step {i}: {step:?}, at {:?})", clock.now());
                match *step {
                    At(t) => clock.set(t),
                    Calls(n, outcome) => (0..n).for_each(|_| {
                        let permit = admit(&mut b, &at);
                        b.record(permit, outcome)
                    }),
                    Take => held.push(Some(admit(&mut b, &at))),
                    Turned(r) => assert_eq!(b.try_acquire().err(), Some(r), "{at}"),
                    Back(k, outcome) => b.record(held[k].take().expect("held once"), outcome),
                    Lose(k) => drop(held[k].take()),
                    Is(state) => assert_eq!(b.state(), state, "{at}"),
                    Log(log) => {
                        let log: Vec<_> = log.iter().map(|&(t, s)| (secs(t), s)).collect();
                        assert_eq!(b.transitions(), log, "{at}: every state change");
                    }
                }
            }
        }
    }

    // --- the happy path, then each state's rules ---

    #[test]
    fn the_breaker_cycles_through_its_states_over_an_outage() {
        let (clock, mut b) = breaker(BreakerConfig::new(2, secs(5), 1));
        // One call per second for 30 s; the dependency is down from 3 s to 14 s (exclusive).
        let mut called = Vec::new();
        for t in 0..30 {
            clock.set(secs(t));
            if let Ok(permit) = b.try_acquire() {
                b.record(permit, if (3..14).contains(&t) { F } else { S });
                called.push(t);
            }
        }
        assert_eq!(
            called,
            [vec![0, 1, 2, 3, 4, 9], (14..30).collect()].concat(),
            "down at 3 s: 3 and 4 fail and trip it (threshold 2) at 4 s; the trial at 9 s fails \
             and re-opens until 14 s; the trial at 14 s succeeds and closes it"
        );
        #[rustfmt::skip]
        let log = [(4, Open), (9, HalfOpen), (9, Open), (14, HalfOpen), (14, Closed)];
        assert_eq!(b.transitions(), log.map(|(t, s)| (secs(t), s)));
    }

    #[test]
    #[rustfmt::skip]
    fn closed_counts_consecutive_failures_and_open_rejects_until_open_for_is_over() {
        play(&[
            ("a new breaker is closed, lets every call through and logs nothing", [3, 10, 1],
             &[Is(Closed), Calls(100, S), Is(Closed), Log(&[])]),
            ("3 consecutive failures trip a threshold of 3: not 2, not 4", [3, 10, 1],
             &[Calls(2, F), Is(Closed), At(secs(1)), Calls(1, F), Is(Open), Log(&[(1, Open)])]),
            ("a threshold of 1 trips on the first failure", [1, 10, 1], &[Calls(1, F), Is(Open)]),
            ("F F S F F is never 3 in a row: sporadic failures of a healthy dependency must not \
              trip it", [3, 10, 1],
             &[Calls(2, F), Calls(1, S), Calls(2, F), Is(Closed), Calls(1, F), Is(Open)]),
            ("opened at 1 s for 10 s: every call is rejected with the time left until a trial, \
              and rejections neither restart nor extend the wait", [3, 10, 1],
             &[At(secs(1)), Calls(3, F), At(secs(4)), Turned(open(secs(7))), Turned(open(secs(7))),
               At(ms(10_500)), Turned(open(ms(500)))]),
            ("half-open exactly when open_for is over (now >= opened + open_for), not 1 ns later",
             [3, 10, 1],
             &[At(secs(1)), Calls(3, F), At(secs(11) - NANO), Turned(open(NANO)), Is(Open),
               At(secs(11)), Is(HalfOpen), Log(&[(1, Open), (11, HalfOpen)])]),
            ("the open timer starts at the trip (the failure at 8 s), not at the first failure",
             [3, 10, 1],
             &[Calls(1, F), At(secs(4)), Calls(1, F), At(secs(8)), Calls(1, F), Is(Open),
               At(secs(10)), Turned(open(secs(8))), At(secs(18)), Is(HalfOpen)]),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn half_open_admits_only_the_trials_and_their_outcomes_decide() {
        play(&[
            ("2 trials and no more: a dependency that may still be down (or is cold after a \
              restart) must not get the full load; a trial back does not free a slot; both \
              succeed: closed", [3, 10, 2],
             &[Calls(3, F), At(secs(10)), Take, Take, Turned(IN_FLIGHT), Turned(IN_FLIGHT),
               Back(0, S), Is(HalfOpen), Turned(IN_FLIGHT), At(secs(11)), Back(1, S), Is(Closed),
               Calls(10, S), Log(&[(0, Open), (10, HalfOpen), (11, Closed)])]),
            ("after closing, the count starts from zero: the outage's failures do not count again",
             [3, 10, 1],
             &[Calls(3, F), At(secs(10)), Calls(1, S), Is(Closed), Calls(2, F), Is(Closed),
               Calls(1, F), Is(Open)]),
            ("a failed trial re-opens for a full open_for from the failure (keeping the old \
              opening time would probe on every call)", [3, 10, 1],
             &[Calls(3, F), At(secs(13)), Take, At(secs(15)), Back(0, F), Is(Open),
               Turned(open(secs(10))), At(secs(25) - NANO), Is(Open), At(secs(25)), Is(HalfOpen),
               Log(&[(0, Open), (13, HalfOpen), (15, Open), (25, HalfOpen)])]),
            ("one failed trial re-opens at once; a trial's success after that is stale, ignored",
             [3, 10, 3],
             &[Calls(3, F), At(secs(10)), Take, Take, Take, Back(0, S), Back(1, F), Is(Open),
               Back(2, S), Is(Open)]),
            ("calls turned away while open or half-open are not failures", [3, 10, 1],
             &[Calls(3, F), At(secs(5)), Turned(open(secs(5))), At(secs(10)), Is(HalfOpen), Take,
               Turned(IN_FLIGHT), Turned(IN_FLIGHT), Turned(IN_FLIGHT), Turned(IN_FLIGHT),
               Turned(IN_FLIGHT), Back(0, S), Is(Closed)]),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn outcomes_of_calls_admitted_before_the_last_state_change_are_ignored() {
        play(&[
            ("5 slow calls admitted while closed fail at 4 s, after the trip at 1 s: the breaker \
              already knows, so they must not restart its timer", [3, 10, 1],
             &[Take, Take, Take, Take, Take, At(secs(1)), Calls(3, F), At(secs(4)),
               Back(0, F), Back(1, F), Back(2, F), Back(3, F), Back(4, F),
               Turned(open(secs(7))), At(secs(11)), Is(HalfOpen)]),
            ("a success admitted before the trip says how the dependency was then: it neither \
              closes a half-open breaker nor uses up its trial", [3, 10, 1],
             &[Take, Calls(3, F), At(secs(10)), Is(HalfOpen), Back(0, S), Is(HalfOpen), Take,
               Back(1, F), Is(Open)]),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn a_trial_that_never_comes_back_counts_as_failed_open_for_after_its_admission() {
        play(&[
            ("the trial admitted at 12 s is dropped: until 22 s it may yet come back; from 22 s \
              it counts as failed and the breaker re-opens for a full open_for (waiting for it \
              would reject every call forever)", [3, 10, 1],
             &[Calls(3, F), At(secs(12)), Take, Lose(0), At(secs(22) - NANO), Turned(IN_FLIGHT),
               At(secs(22)), Is(Open), Turned(open(secs(10))), At(secs(32)), Calls(1, S),
               Is(Closed),
               Log(&[(0, Open), (12, HalfOpen), (22, Open), (32, HalfOpen), (32, Closed)])]),
            ("the lost trial coming back after the breaker gave up on it is stale", [3, 10, 1],
             &[Calls(3, F), At(secs(10)), Take, At(secs(20)), Is(Open), At(secs(25)), Back(0, S),
               Is(Open), Turned(open(secs(5)))]),
            ("a half-open breaker with no trial out waits for traffic, not for a deadline",
             [3, 10, 2],
             &[Calls(3, F), At(secs(10)), Is(HalfOpen), At(secs(60)), Is(HalfOpen), Take,
               Back(0, S), At(secs(75)), Is(HalfOpen), Take, Back(1, S), Is(Closed)]),
            ("trials A (60 s) and B (65 s) are out, C (66 s) came back: the oldest still out, A, \
              sets the deadline, so it re-opens at 70 s", [3, 10, 3],
             &[Calls(3, F), At(secs(60)), Take, At(secs(65)), Take, At(secs(66)), Take, Back(2, S),
               At(secs(70) - NANO), Is(HalfOpen), At(secs(70)), Is(Open)]),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn a_trial_admitted_after_a_long_idle_half_open_still_gets_a_full_open_for() {
        play(&[(
            "half-open since 10 s, idle until trial A at 60 s and B at 65 s: each may take \
             open_for from ITS admission; A comes back, so B's deadline (75 s) counts, not the \
             half-open entry's (20 s) nor A's (70 s)", [3, 10, 2],
            &[Calls(3, F), At(secs(10)), Is(HalfOpen), At(secs(60)), Take, At(secs(65)), Take,
              At(secs(66)), Back(0, S), At(secs(75) - NANO), Is(HalfOpen), Turned(IN_FLIGHT),
              At(secs(75)), Is(Open), Turned(open(secs(10)))],
        )]);
    }

    // --- any configuration, any sequence ---

    /// The reference breaker, straight from the rules in the header, on whole milliseconds.
    #[derive(Default)]
    struct Reference {
        threshold: u32,
        open_for: u64,
        trials: u32,
        state: State,
        generation: u64,
        transitions: Vec<(Duration, State)>,
        /// Closed: failures in a row. Open: when it opened. Half-open: trials back with a
        /// success, and when each trial still out was admitted.
        failures: u32,
        opened: u64,
        succeeded: u32,
        out: Vec<u64>,
    }

    impl Reference {
        fn enter(&mut self, now: u64, state: State) {
            (self.state, self.failures, self.opened, self.succeeded) = (state, 0, now, 0);
            self.out.clear();
            self.generation += 1;
            self.transitions.push((ms(now), state));
        }

        fn state(&mut self, now: u64) -> State {
            match self.state {
                Open if now >= self.opened + self.open_for => self.enter(now, HalfOpen),
                HalfOpen if self.out.first().is_some_and(|t| now >= t + self.open_for) => {
                    self.enter(now, Open)
                }
                _ => {}
            }
            self.state
        }

        /// A permit is (generation, admission instant).
        fn acquire(&mut self, now: u64) -> Result<(u64, u64), Rejected> {
            match self.state(now) {
                Closed => {}
                Open => return Err(open(ms(self.opened + self.open_for - now))),
                HalfOpen if self.succeeded + self.out.len() as u32 >= self.trials => {
                    return Err(IN_FLIGHT);
                }
                HalfOpen => self.out.push(now),
            }
            Ok((self.generation, now))
        }

        fn record(&mut self, now: u64, (generation, admitted): (u64, u64), success: bool) {
            if generation != self.generation {
                return;
            }
            match (self.state, success) {
                (Closed, true) => self.failures = 0,
                (Closed, false) => {
                    self.failures += 1;
                    if self.failures >= self.threshold {
                        self.enter(now, Open);
                    }
                }
                (HalfOpen, true) => {
                    let i = self.out.iter().position(|&t| t == admitted).expect("out");
                    self.out.remove(i);
                    self.succeeded += 1;
                    if self.succeeded >= self.trials {
                        self.enter(now, Closed);
                    }
                }
                (HalfOpen, false) => self.enter(now, Open),
                (Open, _) => {}
            }
        }
    }

    #[test]
    fn any_configuration_and_sequence_of_calls_matches_the_reference_breaker() {
        use rand::RngExt;
        sdlings_kit::property::for_seeds(300, |rng| {
            let (threshold, trials) = (rng.random_range(1..=4), rng.random_range(1..=3));
            let open_for = 100 * rng.random_range(1..=5);
            let (clock, mut b) = breaker(BreakerConfig::new(threshold, ms(open_for), trials));
            let mut reference = Reference {
                threshold,
                open_for,
                trials,
                ..Default::default()
            };
            let (mut now, mut held) = (0, Vec::<(Permit, (u64, u64))>::new());
            let mut log =
                format!("threshold {threshold}, open_for {open_for} ms, {trials} trials:");
            for _ in 0..60 {
                match rng.random_range(0..10) {
                    0..=1 => {
                        let by = 50 * rng.random_range(0..=12);
                        now += by;
                        clock.advance(ms(by));
                        log += &format!(" +{by} ms;");
                    }
                    2..=5 => {
                        let (got, expected) = (b.try_acquire(), reference.acquire(now));
                        log += &format!(" try_acquire at {now} ms;");
                        assert_eq!(
                            got.as_ref().err(),
                            expected.as_ref().err(),
                            "{log} the call must be admitted or rejected as the rules say"
                        );
                        if let (Ok(permit), Ok(token)) = (got, expected) {
                            held.push((permit, token));
                        }
                    }
                    6..=8 if !held.is_empty() => {
                        let (permit, token) = held.remove(rng.random_range(0..held.len()));
                        let success = rng.random_bool(0.5);
                        // Both look first, so an overdue trial is given up on before the answer.
                        (b.state(), reference.state(now));
                        b.record(permit, if success { S } else { F });
                        reference.record(now, token, success);
                        let what = if success { "success" } else { "failure" };
                        log += &format!(" call admitted at {} ms: a {what} at {now} ms;", token.1);
                    }
                    9 if !held.is_empty() => {
                        let (_, token) = held.remove(rng.random_range(0..held.len()));
                        log += &format!(" call admitted at {} ms cancelled;", token.1);
                    }
                    _ => continue,
                }
                assert_eq!(b.state(), reference.state(now), "{log} the state now");
            }
            assert_eq!(
                b.transitions(),
                reference.transitions,
                "{log} every state change, with its time"
            );
        });
    }
}
