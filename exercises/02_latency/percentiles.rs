// Percentiles: p50, p99 and the mean of raw latency samples, and why the mean lies
//
// Build `nearest_rank` and `Samples`: a batch of latency samples (in microseconds), copied and
// sorted once so that every percentile query afterwards is a lookup. Use the nearest-rank method:
//
//     sort the n samples ascending; the p-th percentile (0 <= p <= 100) is the sample at 1-based
//     rank r = ceil(p × n / 100), raised to 1 when it comes out as 0.
//
// So p0 is the minimum, p100 the maximum, and the answer is always a latency that some request
// really had, never an interpolation between two samples. No samples gives `None` (a quiet minute
// is not a crash). A p outside 0..=100 is a bug in the caller and panics. Mind floating point:
// `p / 100.0 * n` turns p99.9 of 1000 samples into 999.0000000000001, and ceil makes that rank
// 1000; compute p × n first, then divide.
//
// Why it matters: SLOs are written on percentiles ("p99 under 300 ms") because a latency
// distribution is skewed, often with several humps (cache hit, cache miss, timeout), and its mean
// describes almost no request. A dashboard showing only the average hides the 1% of users who
// wait a second.
//
// Lab: raise MISS_RATE or TIMEOUT_RATE. The mean climbs while p50 does not move, and almost no
// request has a latency anywhere near the mean; with TIMEOUT_RATE above 1%, p99 jumps to 1 s.

use rand::RngExt;
use sdlings_kit::lab::{Table, bar_chart, percent};
use sdlings_kit::workload::seeded_rng;

/// Panics unless `p` is a percentile, 0 to 100 inclusive (NaN is not). Call it first in anything
/// that takes a percentile: asking for p150 is a bug, even when there is no data to answer with.
pub fn assert_valid_percentile(p: f64) {
    assert!(
        (0.0..=100.0).contains(&p),
        "a percentile must be within 0..=100, got {p}"
    );
}

/// A latency dashboard's view of one batch of samples, all in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub mean: f64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// A batch of latency samples in microseconds, sorted once.
#[derive(Debug, Clone)]
pub struct Samples {
    /// The samples, ascending.
    sorted: Vec<u64>,
}

impl Samples {
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Everything a dashboard shows, or `None` when there are no samples.
    pub fn summary(&self) -> Option<Summary> {
        Some(Summary {
            count: self.len(),
            mean: self.mean()?,
            min: self.percentile(0.0)?,
            p50: self.percentile(50.0)?,
            p90: self.percentile(90.0)?,
            p99: self.percentile(99.0)?,
            p999: self.percentile(99.9)?,
            max: self.percentile(100.0)?,
        })
    }
}

// ---- Your part -------------------------------------------------------------------------------

/// The 1-based nearest rank of the `p`-th percentile among `n` sorted samples:
/// `ceil(p × n / 100)`, but at least 1. For `n == 0` there is no rank: returns 0.
/// Panics if `p` is not within 0..=100 (use `assert_valid_percentile`).
pub fn nearest_rank(p: f64, n: usize) -> usize {
    todo!("the rank of p{p} among {n} samples")
}

impl Samples {
    /// Copies and sorts `samples`. It takes a slice, so the caller's data (often in arrival
    /// order, which they may still need) is never reordered.
    pub fn new(samples: &[u64]) -> Self {
        todo!("copy and sort {} samples", samples.len())
    }

    /// The `p`-th percentile by nearest rank: always one of the samples. `None` when empty.
    /// Panics if `p` is not within 0..=100, even when empty.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        todo!("p{p}")
    }

    /// The arithmetic mean, or `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        todo!()
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Requests in the sample.
const SAMPLES: usize = 100_000;
/// Share of requests that miss the cache and query the database (40–120 ms).
const MISS_RATE: f64 = 0.08;
/// Share of requests whose database call times out after 1 s.
const TIMEOUT_RATE: f64 = 0.002;
/// Cache hits take 0.6–1.8 ms.
const HIT_LATENCY_US: std::ops::Range<u64> = 600..1_800;
const MISS_LATENCY_US: std::ops::Range<u64> = 40_000..120_000;
const TIMEOUT_US: u64 = 1_000_000;
const SEED: u64 = 7;

fn ms(us: f64) -> String {
    format!("{:.1} ms", us / 1000.0)
}

fn main() {
    let mut rng = seeded_rng(SEED);
    let raw: Vec<u64> = (0..SAMPLES)
        .map(|_| {
            let roll: f64 = rng.random();
            if roll < TIMEOUT_RATE {
                TIMEOUT_US
            } else if roll < TIMEOUT_RATE + MISS_RATE {
                rng.random_range(MISS_LATENCY_US)
            } else {
                rng.random_range(HIT_LATENCY_US)
            }
        })
        .collect();
    let samples = Samples::new(&raw);
    let s = samples.summary().expect("the lab has samples");

    println!(
        "{SAMPLES} requests to a cached service: {:.1}% cache misses (40-120 ms), {:.1}% \
         timeouts (1 s), the rest cache hits (0.6-1.8 ms)\n",
        MISS_RATE * 100.0,
        TIMEOUT_RATE * 100.0
    );
    let near_mean = raw
        .iter()
        .filter(|&&v| (v as f64 - s.mean).abs() <= 0.25 * s.mean)
        .count();
    let above_mean = raw.iter().filter(|&&v| v as f64 > s.mean).count();
    let mut table = Table::new(&["statistic", "value"]);
    table
        .row(&["mean".to_string(), ms(s.mean)])
        .row(&["min".to_string(), ms(s.min as f64)])
        .row(&["p50".to_string(), ms(s.p50 as f64)])
        .row(&["p90".to_string(), ms(s.p90 as f64)])
        .row(&["p99".to_string(), ms(s.p99 as f64)])
        .row(&["p99.9".to_string(), ms(s.p999 as f64)])
        .row(&["max".to_string(), ms(s.max as f64)])
        .row(&[
            "requests within ±25% of the mean".to_string(),
            percent(near_mean as u64, SAMPLES as u64),
        ])
        .row(&[
            "requests slower than the mean".to_string(),
            percent(above_mean as u64, SAMPLES as u64),
        ]);
    table.print();

    let bands: [(&str, u64, u64); 6] = [
        ("< 2 ms", 0, 2_000),
        ("2-10 ms", 2_000, 10_000),
        ("10-40 ms", 10_000, 40_000),
        ("40-120 ms", 40_000, 120_000),
        ("120-999 ms", 120_000, 1_000_000),
        (">= 1 s", 1_000_000, u64::MAX),
    ];
    let bars: Vec<(&str, f64)> = bands
        .iter()
        .map(|&(label, lo, hi)| {
            let n = raw.iter().filter(|&&v| v >= lo && v < hi).count();
            (label, n as f64)
        })
        .collect();
    println!(
        "\nrequests per latency band: how many are anywhere near the mean of {}?\n{}",
        ms(s.mean),
        bar_chart(&bars, 50)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10, 20, ..., 100, shuffled.
    fn tens() -> Vec<u64> {
        vec![70, 10, 100, 40, 30, 90, 20, 60, 50, 80]
    }

    #[test]
    fn nearest_rank_is_the_ceiling_of_p_times_n_over_100_counted_from_one() {
        for (p, n, rank) in [
            (50.0, 10, 5),
            (90.0, 10, 9),
            (91.0, 10, 10),
            (95.0, 10, 10),
            (100.0, 10, 10),
            (25.0, 4, 1),
            (26.0, 4, 2),
            (99.0, 1000, 990),
            (100.0, 7, 7),
            (50.0, 1, 1),
        ] {
            assert_eq!(
                nearest_rank(p, n),
                rank,
                "p{p} of {n} samples: ceil({p} × {n} / 100) = {rank} (rounding up, never down, \
                 and counting from 1)"
            );
        }
    }

    #[test]
    fn nearest_rank_of_p0_is_the_first_sample_and_of_no_samples_is_zero() {
        assert_eq!(
            nearest_rank(0.0, 10),
            1,
            "ceil(0) is 0, but ranks start at 1: p0 is the smallest sample"
        );
        assert_eq!(nearest_rank(0.001, 10), 1);
        assert_eq!(nearest_rank(0.0, 1), 1);
        assert_eq!(
            nearest_rank(50.0, 0),
            0,
            "with no samples there is no rank to return"
        );
    }

    #[test]
    fn nearest_rank_is_exact_when_p_times_n_is_a_whole_number() {
        for p in 0..=100u32 {
            assert_eq!(
                nearest_rank(f64::from(p), 100),
                p.max(1) as usize,
                "p{p} of 100 samples is rank {p}: is floating point rounding pushing \
                 p / 100 × n a hair above a whole number before the ceiling?"
            );
        }
        for (p, n, rank) in [
            (99.9, 1_000, 999),
            (99.9, 10_000, 9_990),
            (99.9, 100_000, 99_900),
            (99.99, 10_000, 9_999),
            (99.99, 1_000_000, 999_900),
        ] {
            assert_eq!(
                nearest_rank(p, n),
                rank,
                "p{p} of {n} samples is rank {rank}; p / 100 × n gives a hair more than that and \
                 ceil rounds it up to the next rank: multiply p × n first"
            );
        }
    }

    #[test]
    fn percentile_of_ten_samples_picks_the_sample_at_the_nearest_rank() {
        let s = Samples::new(&tens());
        for (p, expected) in [
            (10.0, 10),
            (11.0, 20),
            (50.0, 50),
            (90.0, 90),
            (95.0, 100),
            (99.0, 100),
        ] {
            assert_eq!(
                s.percentile(p),
                Some(expected),
                "p{p} of 10, 20, ..., 100 is the sample at rank ceil({p} × 10 / 100)"
            );
        }
    }

    #[test]
    fn p0_is_the_minimum_and_p100_the_maximum() {
        let s = Samples::new(&tens());
        assert_eq!(s.percentile(0.0), Some(10), "p0 is the smallest sample");
        assert_eq!(
            s.percentile(100.0),
            Some(100),
            "p100 is the largest sample (rank n, index n - 1)"
        );
    }

    #[test]
    fn percentile_is_always_one_of_the_samples_never_interpolated() {
        let s = Samples::new(&[10, 20, 30, 40]);
        assert_eq!(
            s.percentile(50.0),
            Some(20),
            "p50 of 10, 20, 30, 40 is rank 2 = 20; 25 would be an interpolation, a latency no \
             request had"
        );
        assert_eq!(s.percentile(90.0), Some(40), "rank ceil(3.6) = 4");
        let two = Samples::new(&[1_000, 1]);
        assert_eq!(
            two.percentile(50.0),
            Some(1),
            "p50 of {{1, 1000}} is rank 1: the fast request, not something halfway"
        );
    }

    #[test]
    fn percentile_of_unsorted_samples_sorts_a_copy_and_leaves_the_callers_order_alone() {
        let arrival_order = vec![900, 5, 300, 5, 70, 1_200, 40];
        let s = Samples::new(&arrival_order);
        assert_eq!(
            s.percentile(50.0),
            Some(70),
            "samples arrive unsorted: sorted they are 5, 5, 40, 70, 300, 900, 1200, and p50 is \
             rank 4 = 70"
        );
        assert_eq!(s.percentile(0.0), Some(5));
        assert_eq!(s.percentile(100.0), Some(1_200));
        assert_eq!(
            arrival_order,
            vec![900, 5, 300, 5, 70, 1_200, 40],
            "the caller's samples keep their arrival order"
        );
    }

    #[test]
    fn repeated_latencies_count_once_each() {
        let s = Samples::new(&[5, 9, 5, 5]);
        assert_eq!(
            s.percentile(75.0),
            Some(5),
            "sorted 5, 5, 5, 9: rank 3 is 5"
        );
        assert_eq!(s.percentile(76.0), Some(9), "rank ceil(3.04) = 4 is 9");
    }

    #[test]
    fn a_single_sample_is_every_percentile() {
        let s = Samples::new(&[42]);
        for p in [0.0, 1.0, 50.0, 99.9, 100.0] {
            assert_eq!(s.percentile(p), Some(42), "p{p} of one sample");
        }
        assert_eq!(s.mean(), Some(42.0));
    }

    #[test]
    fn no_samples_means_no_percentile_and_no_mean_instead_of_a_panic() {
        let s = Samples::new(&[]);
        assert!(s.is_empty());
        assert_eq!(
            s.percentile(50.0),
            None,
            "an empty window (no traffic this minute) has no p50; it must not panic"
        );
        assert_eq!(s.percentile(0.0), None);
        assert_eq!(s.percentile(100.0), None);
        assert_eq!(
            s.mean(),
            None,
            "no samples, no mean (and no division by zero)"
        );
        assert_eq!(s.summary(), None);
    }

    #[test]
    #[should_panic(expected = "0..=100")]
    fn asking_for_p150_is_a_bug_and_panics() {
        Samples::new(&tens()).percentile(150.0);
    }

    #[test]
    #[should_panic(expected = "0..=100")]
    fn an_invalid_percentile_panics_even_with_no_samples() {
        Samples::new(&[]).percentile(-1.0);
    }

    #[test]
    fn mean_is_the_exact_average_not_an_integer_division() {
        let s = Samples::new(&[1, 2, 3, 4]);
        assert_eq!(
            s.mean(),
            Some(2.5),
            "(1 + 2 + 3 + 4) / 4 = 2.5: divide as floating point"
        );
    }

    #[test]
    fn mean_of_huge_latencies_does_not_overflow() {
        let s = Samples::new(&[u64::MAX, u64::MAX, u64::MAX]);
        assert_eq!(
            s.mean(),
            Some(u64::MAX as f64),
            "summing three u64::MAX in a u64 overflows; sum in a wider type (u128 or f64)"
        );
    }

    #[test]
    fn summary_of_one_to_a_thousand() {
        let raw: Vec<u64> = (1..=1_000).rev().collect();
        let summary = Samples::new(&raw).summary();
        assert_eq!(
            summary,
            Some(Summary {
                count: 1_000,
                mean: 500.5,
                min: 1,
                p50: 500,
                p90: 900,
                p99: 990,
                p999: 999,
                max: 1_000,
            }),
            "for the samples 1..=1000, the p-th percentile is p × 10"
        );
    }

    #[test]
    fn mean_of_a_bimodal_sample_is_a_latency_almost_no_request_had() {
        // 98 cache hits at 1 ms, 2 database timeouts at 500 ms.
        let mut raw = vec![1_000u64; 98];
        raw.extend([500_000, 500_000]);
        let s = Samples::new(&raw);
        let mean = s.mean().expect("samples");
        assert_eq!(mean, 10_980.0, "(98 × 1000 + 2 × 500000) / 100");
        assert_eq!(
            s.percentile(50.0),
            Some(1_000),
            "the typical request took 1 ms"
        );
        assert_eq!(
            s.percentile(99.0),
            Some(500_000),
            "1 in 100 requests took 500 ms"
        );
        assert!(
            raw.iter().all(|&v| (v as f64 - mean).abs() > 5.0 * 1_000.0),
            "no request took anywhere near the mean of 11 ms: it is 11× the median and 45× \
             smaller than the p99, describing neither"
        );
    }

    /// Nearest rank in integer arithmetic, for p given in hundredths (p99.9 = 9990).
    fn reference(samples: &[u64], p_hundredths: u64) -> u64 {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let n = sorted.len() as u64;
        let rank = (p_hundredths * n).div_ceil(10_000).max(1);
        sorted[(rank - 1) as usize]
    }

    #[test]
    fn matches_a_reference_nearest_rank_on_random_samples() {
        let mut rng = seeded_rng(3);
        for n in [1usize, 2, 3, 10, 99, 100, 101, 1_000, 4_321] {
            let raw: Vec<u64> = (0..n).map(|_| rng.random_range(0..50_000)).collect();
            let s = Samples::new(&raw);
            for p_hundredths in (0..=10_000).step_by(100).chain([9_950, 9_990, 9_999]) {
                let p = p_hundredths as f64 / 100.0;
                assert_eq!(
                    s.percentile(p),
                    Some(reference(&raw, p_hundredths)),
                    "p{p} of {n} random samples"
                );
            }
        }
    }
}
