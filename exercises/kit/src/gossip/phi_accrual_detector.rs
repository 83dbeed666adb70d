//! Scaffolding for `phi_accrual_detector`: the normal distribution's tail (a numerical helper,
//! not the lesson), seeded heartbeat traces of calm, busy and slow nodes, and the scoring of
//! detectors on them: false suspicions and detection time.

use std::time::Duration;

use rand::RngExt;
use rand::rngs::StdRng;

use crate::lab::{Table, bar_chart};

/// P(Z > y) for a standard normal Z, by the logistic approximation Akka's and Cassandra's
/// phi detectors use (`exp(-y(1.5976 + 0.070566 y²))`, error below 0.00014). Computed on the
/// side that keeps precision, so a tail of 1e-20 is not rounded to 0 by `1 - cdf`.
pub fn normal_tail(y: f64) -> f64 {
    let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
    if y > 0.0 {
        e / (1.0 + e)
    } else {
        1.0 - 1.0 / (1.0 + e)
    }
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut StdRng) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// How a monitored node's heartbeats arrive: every `every` on average, with a normal jitter of
/// standard deviation `jitter` (never less than 5 ms apart).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rhythm {
    pub every: Duration,
    pub jitter: Duration,
}

/// The nodes one monitor watches: a calm one on the same rack, a busy one whose heartbeats
/// queue behind traffic, and a far or overloaded one that beats slowly.
pub const RHYTHMS: [(&str, Rhythm); 3] = [
    (
        "calm (100 ± 3 ms)",
        Rhythm {
            every: Duration::from_millis(100),
            jitter: Duration::from_millis(3),
        },
    ),
    (
        "busy (100 ± 30 ms)",
        Rhythm {
            every: Duration::from_millis(100),
            jitter: Duration::from_millis(30),
        },
    ),
    (
        "slow (250 ± 20 ms)",
        Rhythm {
            every: Duration::from_millis(250),
            jitter: Duration::from_millis(20),
        },
    ),
];

/// The arrival times of `n` heartbeats of a node with this rhythm, the first at `every`.
pub fn heartbeats(rng: &mut StdRng, n: usize, rhythm: Rhythm) -> Vec<Duration> {
    let (mean, std) = (
        rhythm.every.as_secs_f64() * 1000.0,
        rhythm.jitter.as_secs_f64() * 1000.0,
    );
    let mut t = mean;
    (0..n)
        .map(|_| {
            let at = Duration::from_secs_f64(t / 1000.0);
            t += (mean + std * gaussian(rng)).max(5.0);
            at
        })
        .collect()
}

/// How a detector did on a trace of a node that never crashed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Gaps between heartbeats during which the detector suspected the (alive) node.
    pub false_suspicions: usize,
    /// The mean, over every heartbeat of the trace, of the time from that heartbeat until the
    /// detector would suspect the node had it crashed right after it.
    pub mean_detection: Duration,
}

/// Scores phi detectors with `threshold` on `traces` (one fresh detector from `make` per trace):
/// `heartbeat(d, at)` feeds one, `phi(d, now)` reads it. Detection times are found to the
/// millisecond (phi must not decrease with silence).
pub fn score_phi<D>(
    traces: &[Vec<Duration>],
    make: impl Fn() -> D,
    heartbeat: impl Fn(&mut D, Duration),
    phi: impl Fn(&D, Duration) -> f64,
    threshold: f64,
) -> Score {
    let (mut false_suspicions, mut detection_ms) = (0, 0u64);
    for trace in traces {
        let detector = &mut make();
        for (i, &at) in trace.iter().enumerate() {
            heartbeat(detector, at);
            let suspects = |d: &D, ms: u64| phi(d, at + Duration::from_millis(ms)) >= threshold;
            // The first millisecond of silence at which phi reaches the threshold (capped at 60 s).
            let (mut lo, mut hi) = (0u64, 1u64);
            while !suspects(detector, hi) && hi < 60_000 {
                (lo, hi) = (hi, hi * 2);
            }
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if suspects(detector, mid) {
                    hi = mid
                } else {
                    lo = mid
                }
            }
            detection_ms += hi;
            if let Some(&next) = trace.get(i + 1) {
                // Just before the next heartbeat lands: the longest silence of this gap.
                if phi(detector, next - Duration::from_micros(1)) >= threshold {
                    false_suspicions += 1;
                }
            }
        }
    }
    let beats: usize = traces.iter().map(Vec::len).sum();
    Score {
        false_suspicions,
        mean_detection: Duration::from_millis(detection_ms / beats.max(1) as u64),
    }
}

/// Scores one fixed timeout on `traces`: a gap longer than `timeout` is a false suspicion, and
/// every crash is detected exactly `timeout` after the last heartbeat.
pub fn score_timeout(traces: &[Vec<Duration>], timeout: Duration) -> Score {
    let false_suspicions = traces
        .iter()
        .map(|t| t.windows(2).filter(|w| w[1] - w[0] > timeout).count())
        .sum();
    Score {
        false_suspicions,
        mean_detection: timeout,
    }
}

/// The lab: for each threshold, the phi detectors' false suspicions on the three nodes of
/// [`RHYTHMS`] against those of one fixed timeout with the same mean detection time.
pub fn lab<D>(
    heartbeats_per_node: usize,
    seed: u64,
    thresholds: &[f64],
    make: impl Fn() -> D + Copy,
    heartbeat: impl Fn(&mut D, Duration) + Copy,
    phi: impl Fn(&D, Duration) -> f64 + Copy,
) {
    let mut rng = crate::workload::seeded_rng(seed);
    let traces: Vec<Vec<Duration>> = RHYTHMS
        .iter()
        .map(|(_, r)| heartbeats(&mut rng, heartbeats_per_node, *r))
        .collect();
    println!("One monitor, three nodes that never crash, {heartbeats_per_node} heartbeats each:");
    for (name, _) in RHYTHMS {
        println!("  {name}");
    }
    println!("Every suspicion is false. The fixed timeout is tuned to φ's mean detection time.\n");
    let mut table = Table::new(&[
        "threshold φ",
        "mean detection",
        "false: φ",
        "false: fixed timeout",
        "φ per node (calm/busy/slow)",
    ]);
    let mut bars = Vec::new();
    for &threshold in thresholds {
        let per_node: Vec<Score> = traces
            .iter()
            .map(|t| score_phi(std::slice::from_ref(t), make, heartbeat, phi, threshold))
            .collect();
        // Every trace has as many heartbeats, so the overall mean is the mean of the means.
        let s = Score {
            false_suspicions: per_node.iter().map(|s| s.false_suspicions).sum(),
            mean_detection: per_node.iter().map(|s| s.mean_detection).sum::<Duration>()
                / per_node.len() as u32,
        };
        let fixed = score_timeout(&traces, s.mean_detection);
        let per_node: Vec<String> = per_node
            .iter()
            .map(|s| format!("{} ms", s.mean_detection.as_millis()))
            .collect();
        table.row(&[
            format!("{threshold}"),
            format!("{} ms", s.mean_detection.as_millis()),
            s.false_suspicions.to_string(),
            fixed.false_suspicions.to_string(),
            per_node.join(" / "),
        ]);
        bars.push((format!("φ ≥ {threshold}"), s.false_suspicions as f64));
        bars.push((
            format!("timeout {} ms", s.mean_detection.as_millis()),
            fixed.false_suspicions as f64,
        ));
    }
    table.print();
    println!("\nfalse suspicions:\n{}", bar_chart(&bars, 40));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_a_half_at_zero_and_small_far_out() {
        assert!((normal_tail(0.0) - 0.5).abs() < 1e-12);
        assert!((normal_tail(1.0) - 0.1587).abs() < 2e-4);
        assert!((normal_tail(-2.0) - 0.9772).abs() < 2e-4);
        assert!(normal_tail(10.0) > 0.0 && normal_tail(10.0) < 1e-20);
    }

    #[test]
    fn a_fixed_timeout_flags_every_longer_gap() {
        let ms = Duration::from_millis;
        let traces = [vec![ms(0), ms(100), ms(300), ms(350)]];
        assert_eq!(score_timeout(&traces, ms(150)).false_suspicions, 1);
        assert_eq!(score_timeout(&traces, ms(50)).false_suspicions, 2);
    }
}
