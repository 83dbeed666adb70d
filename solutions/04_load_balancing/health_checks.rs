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

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sdlings_kit::backend::{self, Backend, Behaviour};
use sdlings_kit::clock::{Clock, SystemClock};
use sdlings_kit::lab::{Table, bar_chart, quantile};

/// Backends are numbered 0..n in the order they were configured.
pub type BackendId = usize;

/// What every balancer in this topic offers. `pick` chooses a backend for the next request, or
/// `None` when no backend can take it.
pub trait Balancer {
    fn pick(&mut self) -> Option<BackendId>;
    fn on_start(&mut self, _id: BackendId) {}
    fn on_finish(&mut self, _id: BackendId) {}
}

/// One health probe of one backend, e.g. `GET /health` with a short timeout: `true` if it passed.
pub trait Probe {
    fn check(&mut self, id: BackendId) -> bool;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthConfig {
    /// Time between two probes of the same backend.
    pub interval: Duration,
    /// Consecutive failed probes that eject a healthy backend (at least 1).
    pub fall: u32,
    /// Consecutive successful probes that readmit an ejected backend (at least 1).
    pub rise: u32,
}

/// A change of state, reported by `record` when it happens (and only then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Ejected,
    Readmitted,
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

// ---- Your part -------------------------------------------------------------------------------

impl HealthCheckedPool {
    /// The backends due for a probe now (`now >= next_probe`), in id order. Schedules each of them
    /// for `now + interval`.
    pub fn due(&mut self) -> Vec<BackendId> {
        let now = self.clock.now();
        let interval = self.config.interval;
        let mut due = Vec::new();
        for (id, backend) in self.backends.iter_mut().enumerate() {
            if now >= backend.next_probe {
                // From *now*, not from the missed deadline: after a stall, one probe per backend,
                // then back to the normal rhythm (no burst of catch-up probes).
                backend.next_probe = now + interval;
                due.push(id);
            }
        }
        due
    }

    /// Records one probe result for `id` and returns the transition it caused, if any.
    pub fn record(&mut self, id: BackendId, ok: bool) -> Option<Transition> {
        let HealthConfig { fall, rise, .. } = self.config;
        let backend = &mut self.backends[id];
        if backend.healthy {
            if ok {
                // Only *consecutive* failures count: any success wipes the streak.
                backend.failures = 0;
                return None;
            }
            backend.failures += 1;
            if backend.failures >= fall {
                backend.healthy = false;
                backend.failures = 0;
                backend.successes = 0;
                return Some(Transition::Ejected);
            }
        } else {
            if !ok {
                backend.successes = 0;
                return None;
            }
            backend.successes += 1;
            if backend.successes >= rise {
                backend.healthy = true;
                backend.failures = 0;
                backend.successes = 0;
                return Some(Transition::Readmitted);
            }
        }
        None
    }
}

impl Balancer for HealthCheckedPool {
    /// Round robin over the healthy backends; `None` if every backend is ejected.
    fn pick(&mut self) -> Option<BackendId> {
        let n = self.backends.len();
        for step in 0..n {
            let id = (self.next + step) % n;
            if self.backends[id].healthy {
                self.next = id + 1;
                return Some(id);
            }
        }
        None
    }
}

// ---- Lab --------------------------------------------------------------------------------------
// Real HTTP servers on 127.0.0.1. Requests arrive every REQUEST_EVERY; each goes to the backend
// your pool picks (GET /work). A checker task probes GET /health on the schedule your `due()`
// gives and feeds the results to `record()`. The same scenario runs twice: without health checks
// (nobody calls the checker) and with yours.

const BACKENDS: usize = 4;
const REQUESTS: usize = 400;
const REQUEST_EVERY: Duration = Duration::from_millis(2);
/// Backend 3 crashes when this request is sent (connections refused from then on).
const CRASH_AT_REQUEST: usize = 100;
const CRASHING: BackendId = 3;
/// Backend 1 answers 503 to everything, /health included, between these requests.
const FAILING_FROM_REQUEST: usize = 200;
const FAILING_UNTIL_REQUEST: usize = 320;
const FAILING: BackendId = 1;
/// The health checker's knobs. Try 10 ms / 100 ms, FALL 1, RISE 5.
const CHECK_INTERVAL: Duration = Duration::from_millis(25);
const FALL: u32 = 3;
const RISE: u32 = 2;
const PROBE_TIMEOUT: Duration = Duration::from_millis(50);
const LATENCY: Duration = Duration::from_millis(2);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);

struct Sample {
    seq: usize,
    backend: Option<BackendId>,
    latency: Duration,
    ok: bool,
}

struct RunReport {
    samples: Vec<Sample>,
    /// (ms since start, backend, transition)
    transitions: Vec<(u128, BackendId, Transition)>,
}

async fn scenario(health_checks: bool) -> RunReport {
    let fleet: Arc<Vec<Backend>> = Arc::new(
        backend::start_fleet(BACKENDS, LATENCY)
            .await
            .expect("start the backends on 127.0.0.1"),
    );
    let config = HealthConfig {
        interval: CHECK_INTERVAL,
        fall: FALL,
        rise: RISE,
    };
    let pool = Arc::new(Mutex::new(HealthCheckedPool::new(
        BACKENDS,
        config,
        Arc::new(SystemClock::new()),
    )));
    let started = Instant::now();
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(tokio::sync::Notify::new());

    // The checker: wakes up often, probes whatever `due()` says, records the results.
    let checker = health_checks.then(|| {
        let (pool, fleet, transitions, done) = (
            Arc::clone(&pool),
            Arc::clone(&fleet),
            Arc::clone(&transitions),
            Arc::clone(&done),
        );
        tokio::spawn(async move {
            loop {
                let due = pool.lock().expect("not poisoned").due();
                let mut probes = tokio::task::JoinSet::new();
                for id in due {
                    let addr = fleet[id].addr();
                    probes.spawn(async move {
                        let result = backend::get(addr, "/health", PROBE_TIMEOUT).await;
                        (id, matches!(result, Ok(r) if r.status == 200))
                    });
                }
                for (id, ok) in probes.join_all().await {
                    if let Some(t) = pool.lock().expect("not poisoned").record(id, ok) {
                        let at = started.elapsed().as_millis();
                        transitions.lock().expect("not poisoned").push((at, id, t));
                    }
                }
                tokio::select! {
                    _ = done.notified() => return,
                    _ = tokio::time::sleep(Duration::from_millis(2)) => {}
                }
            }
        })
    });

    let mut requests = tokio::task::JoinSet::new();
    for seq in 0..REQUESTS {
        tokio::time::sleep_until((started + REQUEST_EVERY * seq as u32).into()).await;
        if seq == CRASH_AT_REQUEST {
            fleet[CRASHING].crash();
        }
        if seq == FAILING_FROM_REQUEST {
            fleet[FAILING].set_behaviour(Behaviour::Failing { latency: LATENCY });
        }
        if seq == FAILING_UNTIL_REQUEST {
            fleet[FAILING].set_behaviour(Behaviour::Healthy { latency: LATENCY });
        }
        let picked = pool.lock().expect("not poisoned").pick();
        let fleet = Arc::clone(&fleet);
        requests.spawn(async move {
            let began = Instant::now();
            let ok = match picked {
                Some(id) => matches!(
                    backend::get(fleet[id].addr(), "/work", CLIENT_TIMEOUT).await,
                    Ok(r) if r.status == 200
                ),
                None => false,
            };
            Sample {
                seq,
                backend: picked,
                latency: began.elapsed(),
                ok,
            }
        });
    }
    let samples = requests.join_all().await;
    done.notify_one();
    if let Some(checker) = checker {
        let _ = checker.await;
    }
    let transitions = transitions.lock().expect("not poisoned").clone();
    RunReport {
        samples,
        transitions,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let ms = |seq: usize| (REQUEST_EVERY * seq as u32).as_millis();
        println!(
            "{BACKENDS} backends on 127.0.0.1, a request every {REQUEST_EVERY:?} ({REQUESTS} in \
             all).\nbackend-{CRASHING} crashes at t={} ms; backend-{FAILING} answers 503 from \
             t={} ms to t={} ms.\nChecker: every {CHECK_INTERVAL:?}, eject after {FALL} failures, \
             readmit after {RISE} successes.\n",
            ms(CRASH_AT_REQUEST),
            ms(FAILING_FROM_REQUEST),
            ms(FAILING_UNTIL_REQUEST),
        );
        let mut per_backend = Table::new(&["run / backend", "requests", "errors", "p50", "p99"]);
        let mut summary = Table::new(&[
            "run",
            "requests",
            "failed",
            &format!("failed on backend-{CRASHING}"),
            &format!("failed on backend-{FAILING}"),
        ]);
        let mut bars = Vec::new();
        for (name, checks) in [("no checks", false), ("your checks", true)] {
            let report = scenario(checks).await;
            for id in 0..BACKENDS {
                let mine: Vec<&Sample> = report
                    .samples
                    .iter()
                    .filter(|s| s.backend == Some(id))
                    .collect();
                let mut latencies: Vec<Duration> = mine.iter().map(|s| s.latency).collect();
                per_backend.row(&[
                    format!("{name} / backend-{id}"),
                    mine.len().to_string(),
                    mine.iter().filter(|s| !s.ok).count().to_string(),
                    quantile(&mut latencies, 0.5),
                    quantile(&mut latencies, 0.99),
                ]);
                if checks {
                    bars.push((format!("backend-{id}"), mine.len() as f64));
                }
            }
            let failed_on = |id| {
                report
                    .samples
                    .iter()
                    .filter(|s| s.backend == Some(id) && !s.ok)
                    .count()
            };
            summary.row(&[
                name.to_string(),
                report.samples.len().to_string(),
                report.samples.iter().filter(|s| !s.ok).count().to_string(),
                failed_on(CRASHING).to_string(),
                failed_on(FAILING).to_string(),
            ]);
            if checks {
                println!("health transitions (your checker):");
                for (at, id, t) in &report.transitions {
                    println!("  t={at:>4} ms  backend-{id}  {t:?}");
                }
                let after_crash = report
                    .samples
                    .iter()
                    .filter(|s| s.seq >= CRASH_AT_REQUEST && s.backend == Some(CRASHING))
                    .count();
                let ejected_at = report
                    .transitions
                    .iter()
                    .find(|(_, id, t)| *id == CRASHING && *t == Transition::Ejected)
                    .map_or("never".to_string(), |(at, _, _)| {
                        format!(
                            "{} ms after the crash",
                            at.saturating_sub(ms(CRASH_AT_REQUEST))
                        )
                    });
                println!(
                    "  backend-{CRASHING} ejected {ejected_at}; requests sent to it in between: \
                     {after_crash}\n"
                );
            }
        }
        per_backend.print();
        println!();
        summary.print();
        println!(
            "\nrequests per backend, with your checks\n{}",
            bar_chart(&bars, 40)
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdlings_kit::clock::ManualClock;
    use std::collections::HashMap;

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
    fn a_single_failed_probe_does_not_eject() {
        let (mut pool, _) = pool(2, 3, 2);
        assert_eq!(pool.record(0, false), None);
        assert!(
            pool.is_healthy(0),
            "one failed probe out of fall = 3 proves little (a lost packet, a GC pause): the \
             backend must stay in rotation"
        );
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
    fn an_ejected_backend_needs_rise_consecutive_successes() {
        let (mut pool, _) = pool(1, 2, 3);
        feed(&mut pool, 0, "FF");
        assert!(!pool.is_healthy(0));
        assert_eq!(
            feed(&mut pool, 0, "SS"),
            vec![],
            "two successes are not enough with rise = 3: a backend that just came back may still \
             be warming up or flapping"
        );
        assert!(!pool.is_healthy(0));
        assert_eq!(feed(&mut pool, 0, "S"), vec![(0, Transition::Readmitted)]);
        assert!(pool.is_healthy(0));
    }

    #[test]
    fn a_failure_while_ejected_resets_the_success_streak() {
        let (mut pool, _) = pool(1, 1, 3);
        feed(&mut pool, 0, "F");
        assert_eq!(
            feed(&mut pool, 0, "SSFSS"),
            vec![],
            "S S F S S: never 3 successes in a row, so it stays ejected"
        );
        assert!(!pool.is_healthy(0));
        assert_eq!(feed(&mut pool, 0, "S"), vec![(0, Transition::Readmitted)]);
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
    fn fall_and_rise_of_one_flip_on_every_change() {
        let (mut pool, _) = pool(1, 1, 1);
        assert_eq!(
            feed(&mut pool, 0, "SFFSSF"),
            vec![
                (1, Transition::Ejected),
                (3, Transition::Readmitted),
                (5, Transition::Ejected)
            ]
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

    /// A fake fleet for `tick`: each backend is dead during the given time ranges.
    struct ScriptedProbe {
        clock: ManualClock,
        dead: HashMap<BackendId, Vec<(Duration, Duration)>>,
        probes: Vec<(Duration, BackendId)>,
    }

    impl Probe for ScriptedProbe {
        fn check(&mut self, id: BackendId) -> bool {
            let now = self.clock.now();
            self.probes.push((now, id));
            let dead = self.dead.get(&id).is_some_and(|ranges| {
                ranges
                    .iter()
                    .any(|&(from, until)| now >= from && now < until)
            });
            !dead
        }
    }

    #[test]
    fn a_dead_backend_is_ejected_after_fall_probes_and_readmitted_after_rise() {
        let secs = Duration::from_secs;
        let (mut pool, clock) = pool(3, 3, 2);
        let mut probe = ScriptedProbe {
            clock: clock.clone(),
            dead: HashMap::from([(2, vec![(secs(9), secs(29))])]),
            probes: Vec::new(),
        };
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
}
