// Phi accrual failure detector — how suspicious is this silence, given how this node usually
// sends its heartbeats?
//
// A fixed timeout ("dead after 500 ms without a heartbeat") is wrong twice: too long on a calm
// network (a crash goes unnoticed) and too short on a jittery one (a live node is declared dead,
// its shards move, and the cluster thrashes). Hayashibara et al.'s φ accrual detector, used by
// Akka and Cassandra, outputs a level instead: φ = -log10 P(a heartbeat arrives later than now),
// with P from the mean and standard deviation of the recent intervals between heartbeats.
//
// Build `heartbeat` and `phi`. The property: φ grows with the silence since the LAST heartbeat,
// adapts to the observed intervals (a sliding window of the last `window` of them), and at the
// same mean detection time it raises fewer false suspicions than a fixed timeout.
//
// Lab: turn THRESHOLDS and WINDOW; watch false suspicions (φ vs a fixed timeout with the same
// detection time) fall as the threshold rises, and the detection time grow with it.

use std::collections::VecDeque;
use std::time::Duration;

use sdlings_kit::gossip::phi_accrual_detector::{lab, normal_tail};

// ---- Your part -------------------------------------------------------------------------------

pub struct PhiAccrual {
    /// How many intervals the window keeps (the oldest is dropped beyond that).
    window: usize,
    /// The floor under the standard deviation, in ms: perfectly regular heartbeats would
    /// otherwise make any late millisecond infinitely suspicious.
    min_std_dev_ms: f64,
    /// The last `window` intervals between heartbeats, in ms, oldest first.
    intervals: VecDeque<f64>,
    /// When the last heartbeat arrived (`None` before the first).
    last: Option<Duration>,
}

impl PhiAccrual {
    /// A detector over the last `window` intervals (at least 2). Before real intervals arrive,
    /// the window holds two made-up ones, `first_estimate` ± a quarter of it, as Akka's does:
    /// real intervals push them out.
    pub fn new(window: usize, min_std_dev: Duration, first_estimate: Duration) -> Self {
        assert!(
            window >= 2,
            "the window holds at least the two bootstrap intervals"
        );
        let mean = first_estimate.as_secs_f64() * 1000.0;
        PhiAccrual {
            window,
            min_std_dev_ms: min_std_dev.as_secs_f64() * 1000.0,
            intervals: VecDeque::from([mean - mean / 4.0, mean + mean / 4.0]),
            last: None,
        }
    }

    /// A heartbeat arrived at `at` (times never decrease).
    pub fn heartbeat(&mut self, at: Duration) {
        // The first heartbeat only starts the clock: there is no interval before it.
        if let Some(last) = self.last {
            if self.intervals.len() == self.window {
                self.intervals.pop_front();
            }
            self.intervals.push_back((at - last).as_secs_f64() * 1000.0);
        }
        self.last = Some(at);
    }

    /// The suspicion level at `now`: -log10 of the probability that the next heartbeat comes
    /// later than `now`, taking intervals as normal with the window's mean and (population)
    /// standard deviation, floored at the minimum. 0 before the first heartbeat.
    pub fn phi(&self, now: Duration) -> f64 {
        let Some(last) = self.last else {
            return 0.0;
        };
        let n = self.intervals.len() as f64;
        let mean = self.intervals.iter().sum::<f64>() / n;
        let variance = self
            .intervals
            .iter()
            .map(|x| (x - mean) * (x - mean))
            .sum::<f64>()
            / n;
        let std_dev = variance.sqrt().max(self.min_std_dev_ms);
        let elapsed = now.saturating_sub(last).as_secs_f64() * 1000.0;
        -normal_tail((elapsed - mean) / std_dev).log10()
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// The suspicion thresholds to compare (Akka's default is 8, Cassandra's `phi_convict_threshold` 8).
const THRESHOLDS: [f64; 4] = [1.0, 3.0, 8.0, 12.0];
/// Intervals in the window, and the floor under the standard deviation.
const WINDOW: usize = 50;
const MIN_STD_DEV: Duration = Duration::from_millis(10);
/// Heartbeats in the trace, and its seed.
const HEARTBEATS: usize = 1_500;
const SEED: u64 = 12;

fn main() {
    let make = || PhiAccrual::new(WINDOW, MIN_STD_DEV, Duration::from_millis(100));
    lab(
        HEARTBEATS,
        SEED,
        &THRESHOLDS,
        make,
        PhiAccrual::heartbeat,
        PhiAccrual::phi,
    );
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::gossip::phi_accrual_detector::{
        RHYTHMS, Rhythm, heartbeats, score_phi, score_timeout,
    };

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Heartbeats at `start`, `start + every`, ... (`count` of them).
    fn regular(d: &mut PhiAccrual, start: u64, every: u64, count: u64) -> Duration {
        for i in 0..count {
            d.heartbeat(ms(start + i * every));
        }
        ms(start + (count - 1) * every)
    }

    #[test]
    fn phi_matches_akkas_published_values_for_a_mean_of_1000_ms() {
        // Akka's PhiAccrualFailureDetectorSpec, "return realistic phi values": mean 1000 ms,
        // standard deviation 100 ms. Perfectly regular heartbeats have a deviation of 0, so
        // here the 100 ms comes from the floor.
        let mut d = PhiAccrual::new(10, ms(100), ms(1000));
        let last = regular(&mut d, 0, 1000, 20);
        for (silence, expected) in [
            (0, 0.0),
            (500, 0.1),
            (1000, 0.3),
            (1200, 1.6),
            (1400, 4.7),
            (1600, 10.8),
            (1700, 15.3),
        ] {
            let phi = d.phi(last + ms(silence));
            assert!(
                (phi - expected).abs() <= 0.1,
                "{silence} ms after the last of heartbeats every 1000 ms (deviation floored at \
                 100 ms), φ should be {expected} ± 0.1, got {phi}"
            );
        }
    }

    #[test]
    fn phi_is_zero_before_the_first_heartbeat_and_uses_the_estimate_after_it() {
        let mut d = PhiAccrual::new(100, ms(10), ms(1000));
        assert_eq!(
            d.phi(ms(5_000)),
            0.0,
            "no heartbeat yet: nothing to suspect"
        );
        d.heartbeat(ms(3_000));
        let at_estimate = d.phi(ms(4_000));
        assert!(
            (at_estimate - std::f64::consts::LOG10_2).abs() < 1e-3,
            "one heartbeat, no interval yet: the window's made-up intervals (750 and 1250 ms) \
             have mean 1000, so 1000 ms after it φ = -log10(0.5) ≈ 0.301, got {at_estimate}"
        );
        assert!(
            d.phi(ms(6_000)) > 8.0,
            "3 s of silence after one heartbeat, against an estimate of 1 s ± 250 ms: the node \
             must be suspected (φ > 8), even though it never sent a second heartbeat"
        );
    }

    #[test]
    fn phi_grows_with_silence_and_never_falls_until_the_next_heartbeat() {
        sdlings_kit::property::for_seeds(100, |rng| {
            let mut d = PhiAccrual::new(
                rng.random_range(2..40),
                ms(rng.random_range(1..20)),
                ms(100),
            );
            let count = rng.random_range(1..60);
            let rhythm = RHYTHMS[rng.random_range(0..3)].1;
            for at in heartbeats(rng, count, rhythm) {
                d.heartbeat(at);
            }
            let mut previous = -1.0;
            let start = rng.random_range(0..5_000u64);
            for step in 0..200u64 {
                let now = ms(start) + ms(step * 25);
                let phi = d.phi(now);
                assert!(
                    phi >= previous && !phi.is_nan(),
                    "φ must not decrease while the silence grows: {previous} then {phi} at {now:?}"
                );
                previous = phi;
            }
        });
    }

    #[test]
    fn a_node_that_usually_beats_slowly_is_less_suspicious_after_the_same_silence() {
        let (mut fast, mut slow) = (
            PhiAccrual::new(20, ms(10), ms(100)),
            PhiAccrual::new(20, ms(10), ms(100)),
        );
        let last_fast = regular(&mut fast, 0, 100, 40);
        let last_slow = regular(&mut slow, 0, 400, 40);
        let (f, s) = (fast.phi(last_fast + ms(350)), slow.phi(last_slow + ms(350)));
        assert!(
            f > 8.0 && s < 1.0,
            "350 ms of silence: far beyond a 100 ms rhythm (φ {f} should exceed 8), well within \
             a 400 ms one (φ {s} should be below 1). The detector learns each node's rhythm"
        );
    }

    #[test]
    fn the_window_forgets_old_intervals_so_the_detector_adapts_to_a_new_rhythm() {
        let mut d = PhiAccrual::new(10, ms(50), ms(100));
        let t = regular(&mut d, 0, 100, 200);
        // The sender slows down to one heartbeat every 400 ms; ten of them fill the window.
        let last = regular(&mut d, t.as_millis() as u64 + 400, 400, 10);
        let phi = d.phi(last + ms(450));
        assert!(
            phi < 3.0,
            "after 10 intervals of 400 ms, a window of 10 holds only those: 450 ms of silence is \
             unremarkable (φ {phi} should be below 3); a window that never drops the 200 old \
             100 ms intervals would still find it alarming"
        );
    }

    #[test]
    fn phi_is_exactly_what_a_reference_detector_computes_over_random_traces() {
        sdlings_kit::property::for_seeds(100, |rng| {
            let window = rng.random_range(2..30);
            let floor = rng.random_range(0..30u64);
            let estimate = rng.random_range(50..500u64);
            let mut d = PhiAccrual::new(window, ms(floor), ms(estimate));
            // The reference: every arrival kept; the window recomputed from scratch each time.
            let e = estimate as f64;
            let mut intervals = vec![e - e / 4.0, e + e / 4.0];
            let mut last: Option<Duration> = None;
            let count = rng.random_range(0..80);
            let rhythm = Rhythm {
                every: ms(rng.random_range(20..500)),
                jitter: ms(rng.random_range(0..60)),
            };
            let trace = heartbeats(rng, count, rhythm);
            let check = |d: &PhiAccrual,
                         intervals: &[f64],
                         last: Option<Duration>,
                         now: Duration| {
                let kept = &intervals[intervals.len().saturating_sub(window)..];
                let mean = kept.iter().sum::<f64>() / kept.len() as f64;
                let var = kept.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / kept.len() as f64;
                let std = var.sqrt().max(floor as f64);
                let expected = match last {
                    None => 0.0,
                    Some(last) => {
                        let elapsed = (now - last).as_secs_f64() * 1000.0;
                        -normal_tail((elapsed - mean) / std).log10()
                    }
                };
                let actual = d.phi(now);
                let why = format!(
                    "window {window}, floor {floor} ms, estimate {estimate} ms, after {} \
                     intervals, {:?} after the last heartbeat: φ should be {expected}, got {actual}",
                    intervals.len() - 2,
                    last.map(|l| now - l)
                );
                if expected > 30.0 {
                    assert!(actual > 25.0, "{why}");
                } else {
                    assert!(
                        (actual - expected).abs() <= 1e-6 * expected.max(1.0),
                        "{why}"
                    );
                }
            };
            for &at in &trace {
                if let Some(prev) = last {
                    intervals.push((at - prev).as_secs_f64() * 1000.0);
                }
                last = Some(at);
                d.heartbeat(at);
                for _ in 0..3 {
                    let now = at + Duration::from_micros(rng.random_range(0..400_000));
                    check(&d, &intervals, last, now);
                }
            }
            if trace.is_empty() {
                check(&d, &intervals, last, ms(1000));
            }
        });
    }

    #[test]
    fn at_the_same_detection_time_phi_raises_fewer_false_suspicions_than_a_fixed_timeout() {
        sdlings_kit::property::for_seeds(20, |rng| {
            // One monitor watching a calm, a busy and a slow node, none of which ever crashes.
            let traces: Vec<Vec<Duration>> = RHYTHMS
                .iter()
                .map(|(_, r)| heartbeats(rng, 100, *r))
                .collect();
            let threshold = [2.0, 3.0, 5.0, 8.0][rng.random_range(0..4)];
            let make = || PhiAccrual::new(20, ms(10), ms(100));
            let phi = score_phi(
                &traces,
                make,
                PhiAccrual::heartbeat,
                PhiAccrual::phi,
                threshold,
            );
            let fixed = score_timeout(&traces, phi.mean_detection);
            assert!(
                phi.false_suspicions * 2 <= fixed.false_suspicions && fixed.false_suspicions > 0,
                "φ ≥ {threshold} detects a crash after {:?} on average, and one fixed timeout of \
                 that length raised {} false suspicions on these live nodes: φ should raise at \
                 most half as many (it raised {}), because it waits long only for the nodes \
                 whose heartbeats are slow or jittery",
                phi.mean_detection,
                fixed.false_suspicions,
                phi.false_suspicions
            );
        });
    }
}
