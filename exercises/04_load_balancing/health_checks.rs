// Active health checks — eject a dead backend before your users find it, readmit it carefully.
//
// Without health checks a balancer keeps routing to a crashed backend, failing a share of all
// requests until a human notices. Active checking probes each backend on a schedule (`GET
// /health` every few seconds). One failed probe proves little (a lost packet, a GC pause), so a
// backend is *ejected* after `fall` consecutive failures and *readmitted* after `rise` consecutive
// successes, so a flapping backend does not bounce in and out (HAProxy's `fall`/`rise`, Envoy's
// `unhealthy_threshold`/`healthy_threshold`).
//
// Build `HealthCheckedPool`, checker and balancer in one:
// - `due()`: the backends due for a probe, each rescheduled `interval` after *now* (a checker
//   that wakes up late probes once, not once per missed interval).
// - `record(id, ok)`: healthy: a failure extends the failure streak, a success resets it, `fall`
//   in a row ejects. Ejected: a success extends the success streak, a failure resets it, `rise`
//   in a row readmits. Each transition starts the streaks afresh and is returned exactly once.
// - `pick()`: round robin over the healthy backends; `None` if all are ejected.
// Decision: backends start healthy, so a new pool serves at once. `tick(probe)` is given.
//
// Lab: real HTTP backends; one crashes, another answers 503 for a while, then recovers. Without
// checks a quarter of the requests fail from the crash on; with yours only those sent during the
// detection window (about FALL x CHECK_INTERVAL). Turn CHECK_INTERVAL and FALL up: fewer probes,
// more failures. FALL = 1 ejects fastest, and also on any single blip.

use std::sync::Arc;
use std::time::Duration;

use sdlings_kit::balancing::{BackendId, Balancer, HealthChecked, HealthLab, Probe, Transition};
use sdlings_kit::clock::{Clock, SystemClock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthConfig {
    /// Time between two probes of the same backend.
    pub interval: Duration,
    /// Consecutive failed probes that eject a healthy backend (at least 1).
    pub fall: u32,
    /// Consecutive successful probes that readmit an ejected backend (at least 1).
    pub rise: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendHealth {
    /// Receives traffic.
    pub healthy: bool,
    /// Failed probes in a row (counts while healthy).
    pub failures: u32,
    /// Passed probes in a row (counts while ejected).
    pub successes: u32,
    /// When the next probe is due (clock time).
    pub next_probe: Duration,
}

pub struct HealthCheckedPool {
    config: HealthConfig,
    clock: Arc<dyn Clock>,
    backends: Vec<BackendHealth>,
    /// Round robin cursor: the index where the next pick starts looking.
    next: usize,
}

// ---- Your part -------------------------------------------------------------------------------

impl HealthCheckedPool {
    /// The backends due for a probe now (`now >= next_probe`), in id order. Schedules each of them
    /// for `now + interval`.
    pub fn due(&mut self) -> Vec<BackendId> {
        todo!("the backends due for a probe; schedule their next one")
    }

    /// Records one probe result for `id` and returns the transition it caused, if any.
    pub fn record(&mut self, id: BackendId, ok: bool) -> Option<Transition> {
        todo!("update backend {id}'s streaks with ok = {ok}; eject or readmit")
    }
}

impl Balancer for HealthCheckedPool {
    /// Round robin over the healthy backends; `None` if every backend is ejected.
    fn pick(&mut self) -> Option<BackendId> {
        todo!("round robin over the healthy backends")
    }
}

// ---- Given: construction, inspection and the checker round --------------------------------

impl HealthCheckedPool {
    /// Backends `0..backends`, all healthy, all due for a first probe now.
    pub fn new(backends: usize, config: HealthConfig, clock: Arc<dyn Clock>) -> Self {
        assert!(
            config.fall >= 1 && config.rise >= 1,
            "fall and rise are at least 1"
        );
        let now = clock.now();
        HealthCheckedPool {
            config,
            clock,
            backends: vec![
                BackendHealth {
                    healthy: true,
                    failures: 0,
                    successes: 0,
                    next_probe: now,
                };
                backends
            ],
            next: 0,
        }
    }

    pub fn is_healthy(&self, id: BackendId) -> bool {
        self.backends[id].healthy
    }

    pub fn health(&self, id: BackendId) -> &BackendHealth {
        &self.backends[id]
    }

    pub fn healthy_count(&self) -> usize {
        self.backends.iter().filter(|b| b.healthy).count()
    }

    /// One round of the checker: probes every backend that is due and records the results.
    /// Returns the transitions that happened, in id order.
    pub fn tick(&mut self, probe: &mut impl Probe) -> Vec<(BackendId, Transition)> {
        let mut changes = Vec::new();
        for id in self.due() {
            let ok = probe.check(id);
            if let Some(transition) = self.record(id, ok) {
                changes.push((id, transition));
            }
        }
        changes
    }
}

impl HealthChecked for HealthCheckedPool {
    fn due(&mut self) -> Vec<BackendId> {
        HealthCheckedPool::due(self) // yours, above
    }
    fn record(&mut self, id: BackendId, ok: bool) -> Option<Transition> {
        HealthCheckedPool::record(self, id, ok) // yours, above
    }
}

// ---- Lab --------------------------------------------------------------------------------------
// Real HTTP servers on 127.0.0.1; a checker task probes GET /health on the schedule your `due()`
// gives and feeds `record()`. sdlings_kit::balancing runs it without checks, then with yours.

const BACKENDS: usize = 4;
/// The health checker's knobs. Try 10 ms / 100 ms, FALL 1, RISE 5.
const CHECK_INTERVAL: Duration = Duration::from_millis(25);
const FALL: u32 = 3;
const RISE: u32 = 2;

fn main() {
    let lab = HealthLab {
        backends: BACKENDS,
        requests: 400,
        request_every: Duration::from_millis(2),
        crashing: 3,
        crash_at_request: 100,
        failing: 1,
        failing_from: 200,
        failing_until: 320,
        check_interval: CHECK_INTERVAL,
        fall: FALL,
        rise: RISE,
        probe_timeout: Duration::from_millis(50),
        latency: Duration::from_millis(2),
        client_timeout: Duration::from_secs(1),
    };
    let config = HealthConfig {
        interval: CHECK_INTERVAL,
        fall: FALL,
        rise: RISE,
    };
    lab.run(|| HealthCheckedPool::new(BACKENDS, config, Arc::new(SystemClock::new())));
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdlings_kit::balancing::ScriptedProbe;
    use sdlings_kit::clock::ManualClock;

    const INTERVAL: Duration = Duration::from_secs(2);

    fn pool(backends: usize, fall: u32, rise: u32) -> (HealthCheckedPool, ManualClock) {
        let clock = ManualClock::new();
        let config = HealthConfig {
            interval: INTERVAL,
            fall,
            rise,
        };
        (
            HealthCheckedPool::new(backends, config, Arc::new(clock.clone())),
            clock,
        )
    }

    /// Feeds a sequence of probe results ('F' fail, 'S' success) for backend `id`; returns the
    /// transitions, with the index of the result that caused each.
    fn feed(
        pool: &mut HealthCheckedPool,
        id: BackendId,
        results: &str,
    ) -> Vec<(usize, Transition)> {
        results
            .chars()
            .enumerate()
            .filter_map(|(i, c)| pool.record(id, c == 'S').map(|t| (i, t)))
            .collect()
    }

    #[test]
    fn fall_consecutive_failures_eject_the_backend() {
        let (mut pool, _) = pool(2, 3, 2);
        assert_eq!(
            feed(&mut pool, 1, "FFF"),
            vec![(2, Transition::Ejected)],
            "the third consecutive failure (fall = 3) ejects, and it is reported once"
        );
        assert!(!pool.is_healthy(1));
        assert!(pool.is_healthy(0), "backend 0 is not affected");
        assert_eq!(
            feed(&mut pool, 1, "FFFF"),
            vec![],
            "further failures of an ejected backend are not new transitions"
        );
    }

    #[test]
    fn a_success_between_failures_resets_the_failure_streak() {
        let (mut pool, _) = pool(1, 3, 2);
        assert_eq!(
            feed(&mut pool, 0, "FFSFF"),
            vec![],
            "F F S F F: never 3 failures in a row, so the backend stays healthy"
        );
        assert!(pool.is_healthy(0));
        assert_eq!(
            feed(&mut pool, 0, "F"),
            vec![(0, Transition::Ejected)],
            "that makes F F F in a row: ejected"
        );
    }

    #[test]
    fn each_transition_starts_the_streaks_afresh() {
        let (mut pool, _) = pool(1, 3, 2);
        assert_eq!(feed(&mut pool, 0, "FFF"), vec![(2, Transition::Ejected)]);
        assert_eq!(feed(&mut pool, 0, "SS"), vec![(1, Transition::Readmitted)]);
        assert_eq!(
            feed(&mut pool, 0, "FF"),
            vec![],
            "after readmission the failure streak starts from zero: the 3 failures from before \
             the ejection do not count again"
        );
        assert_eq!(feed(&mut pool, 0, "F"), vec![(0, Transition::Ejected)]);
        assert_eq!(
            feed(&mut pool, 0, "S"),
            vec![],
            "after a new ejection the success streak starts from zero: one success is not \
             rise = 2"
        );
        assert_eq!(feed(&mut pool, 0, "S"), vec![(0, Transition::Readmitted)]);
        assert_eq!(
            pool.health(0),
            &BackendHealth {
                healthy: true,
                failures: 0,
                successes: 0,
                next_probe: Duration::ZERO,
            }
        );
    }

    #[test]
    fn every_backend_is_due_at_once_then_once_per_interval() {
        let (mut pool, clock) = pool(3, 3, 2);
        assert_eq!(pool.due(), vec![0, 1, 2], "never probed: all due now");
        assert_eq!(
            pool.due(),
            Vec::<BackendId>::new(),
            "just scheduled: nobody is due again at the same instant"
        );
        clock.advance(INTERVAL - Duration::from_millis(1));
        assert_eq!(
            pool.due(),
            Vec::<BackendId>::new(),
            "1 ms before the interval is over: not yet"
        );
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            pool.due(),
            vec![0, 1, 2],
            "exactly one interval later: due again"
        );
        assert_eq!(pool.health(1).next_probe, INTERVAL * 2);
    }

    #[test]
    fn a_late_checker_probes_each_backend_once_not_once_per_missed_interval() {
        let (mut pool, clock) = pool(2, 3, 2);
        pool.due();
        clock.advance(INTERVAL * 5 + Duration::from_millis(300)); // the checker stalled
        assert_eq!(
            pool.due(),
            vec![0, 1],
            "one probe per backend after the stall"
        );
        assert_eq!(
            pool.due(),
            Vec::<BackendId>::new(),
            "and no catch-up burst for the 4 missed intervals"
        );
        assert_eq!(
            pool.health(0).next_probe,
            clock.now() + INTERVAL,
            "the next probe is one interval after now, not after the missed deadline"
        );
    }

    #[test]
    fn routes_round_robin_over_the_healthy_backends() {
        let (mut pool, _) = pool(3, 1, 1);
        let picks: Vec<Option<BackendId>> = (0..6).map(|_| pool.pick()).collect();
        assert_eq!(
            picks,
            [0, 1, 2, 0, 1, 2].map(Some).to_vec(),
            "all healthy: plain round robin"
        );
    }

    #[test]
    fn never_routes_to_an_ejected_backend() {
        let (mut pool, _) = pool(4, 2, 2);
        feed(&mut pool, 1, "FF");
        let picks: Vec<Option<BackendId>> = (0..9).map(|_| pool.pick()).collect();
        assert_eq!(
            picks,
            [0, 2, 3, 0, 2, 3, 0, 2, 3].map(Some).to_vec(),
            "backend 1 is ejected: the others share its traffic, in turn"
        );
        feed(&mut pool, 1, "SS");
        let mut picks: Vec<Option<BackendId>> = (0..4).map(|_| pool.pick()).collect();
        picks.sort();
        assert_eq!(
            picks,
            [0, 1, 2, 3].map(Some).to_vec(),
            "readmitted: over the next 4 picks each of the 4 backends gets one request"
        );
    }

    #[test]
    fn with_every_backend_ejected_pick_returns_none() {
        let (mut pool, _) = pool(2, 1, 1);
        feed(&mut pool, 0, "F");
        feed(&mut pool, 1, "F");
        assert_eq!(pool.healthy_count(), 0);
        assert_eq!(pool.pick(), None, "nobody is healthy: refuse, do not guess");
        feed(&mut pool, 1, "S");
        assert_eq!(pool.pick(), Some(1));
    }

    #[test]
    fn an_empty_pool_has_nothing_due_and_nothing_to_pick() {
        let (mut pool, clock) = pool(0, 3, 2);
        assert_eq!(pool.due(), Vec::<BackendId>::new());
        assert_eq!(
            pool.pick(),
            None,
            "no backends at all: None, not a division by zero"
        );
        clock.advance(INTERVAL);
        assert_eq!(pool.due(), Vec::<BackendId>::new());
    }

    #[test]
    fn a_dead_backend_is_ejected_after_fall_probes_and_readmitted_after_rise() {
        let secs = Duration::from_secs;
        let (mut pool, clock) = pool(3, 3, 2);
        // Backend 2's probes fail from 9 s to 29 s.
        let mut probe =
            ScriptedProbe::new(Arc::new(clock.clone()), [(2, vec![(secs(9), secs(29))])]);
        let mut log = Vec::new();
        let mut routed_to_2_while_dead = 0;
        // The checker wakes up every 500 ms; a request arrives every 100 ms.
        for step in 0..400u64 {
            let now = Duration::from_millis(step * 100);
            clock.set(now);
            if step % 5 == 0 {
                for (id, t) in pool.tick(&mut probe) {
                    log.push((now, id, t));
                }
            }
            if pool.pick() == Some(2) && now >= secs(9) && now < secs(29) {
                routed_to_2_while_dead += 1;
            }
        }
        assert_eq!(
            log,
            vec![
                (secs(14), 2, Transition::Ejected),
                (secs(32), 2, Transition::Readmitted)
            ],
            "probes run every 2 s (0, 2, 4, ...): backend 2 dies at 9 s, fails the probes at 10, \
             12 and 14 s (ejected at 14 s), recovers at 29 s, passes at 30 and 32 s \
             (readmitted at 32 s)"
        );
        assert_eq!(
            probe.probes.iter().filter(|(_, id)| *id == 0).count(),
            20,
            "40 s of checks at one probe every 2 s: 20 probes per backend"
        );
        assert_eq!(
            routed_to_2_while_dead, 16,
            "requests still reach the dead backend during the detection window (9 s to 14 s: \
             a third of 50 requests), and none after the ejection"
        );
    }

    #[test]
    fn random_probe_results_match_a_reference_model_of_rise_and_fall() {
        // The reference keeps every result since the last transition: a healthy backend is
        // ejected when the last `fall` of them are all failures, an ejected one readmitted when
        // the last `rise` are all successes. Results are drawn so that backends flap.
        use rand::RngExt;
        sdlings_kit::property::for_seeds(300, |rng| {
            let fall = rng.random_range(1..=4);
            let rise = rng.random_range(1..=4);
            let (mut pool, _) = pool(2, fall, rise);
            let mut healthy = true;
            let mut since_transition: Vec<bool> = Vec::new();
            let mut fed = String::new();
            let p_ok = rng.random_range(2..=8);
            for step in 0..60 {
                let ok = rng.random_range(0..10) < p_ok;
                fed.push(if ok { 'S' } else { 'F' });
                since_transition.push(ok);
                let (needed, wanted) = if healthy { (fall, false) } else { (rise, true) };
                let needed = needed as usize;
                let flips = since_transition.len() >= needed
                    && since_transition[since_transition.len() - needed..]
                        .iter()
                        .all(|&r| r == wanted);
                let expected = flips.then(|| {
                    healthy = !healthy;
                    since_transition.clear();
                    if healthy {
                        Transition::Readmitted
                    } else {
                        Transition::Ejected
                    }
                });
                let got = pool.record(1, ok);
                assert_eq!(
                    got, expected,
                    "fall = {fall}, rise = {rise}, results fed to backend 1 so far: {fed} (step \
                     {step}): a healthy backend is ejected by `fall` failures in a row, an \
                     ejected one readmitted by `rise` successes in a row, counting only results \
                     since the last transition"
                );
                assert_eq!(pool.is_healthy(1), healthy, "after {fed}");
                assert!(
                    pool.is_healthy(0),
                    "backend 0 was never probed: still healthy"
                );
            }
        });
    }

    #[test]
    fn due_reschedules_only_the_backends_it_returns() {
        let (mut pool, clock) = pool(3, 3, 2);
        pool.due();
        // Stagger the schedule: backend 1 is due half an interval earlier than the others.
        pool.backends[1].next_probe = INTERVAL / 2;
        clock.advance(INTERVAL / 2);
        assert_eq!(
            pool.due(),
            vec![1],
            "only backend 1 is due half an interval in"
        );
        assert_eq!(
            pool.health(0).next_probe,
            INTERVAL,
            "backend 0 keeps its own schedule"
        );
        clock.advance(INTERVAL / 2);
        assert_eq!(
            pool.due(),
            vec![0, 2],
            "backends 0 and 2 are due one interval in; backend 1 was just probed"
        );
        assert_eq!(pool.health(1).next_probe, INTERVAL / 2 + INTERVAL);
    }

    #[test]
    fn the_first_pick_after_an_ejection_goes_on_from_where_the_rotation_was() {
        let (mut pool, _) = pool(4, 1, 1);
        assert_eq!(pool.pick(), Some(0));
        assert_eq!(pool.pick(), Some(1));
        feed(&mut pool, 2, "F");
        assert_eq!(
            (0..4).map(|_| pool.pick()).collect::<Vec<_>>(),
            [3, 0, 1, 3].map(Some).to_vec(),
            "backend 2 (next in turn) was ejected: the rotation goes on with 3, not back to 0"
        );
    }
}
