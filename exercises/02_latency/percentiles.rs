// Percentiles: p50, p99 and the mean of raw latency samples, and why the mean lies
//
// Build `nearest_rank` and `Samples`: latency samples (µs) copied and sorted once, so that every
// percentile afterwards is a lookup. The p-th percentile (0 <= p <= 100) of n samples is the one
// at 1-based rank ceil(p × n / 100), at least 1: p0 is the minimum, p100 the maximum, and the
// answer is always a latency some request really had, never an interpolation. No samples gives
// `None`; a p outside 0..=100 (or NaN) is the caller's bug and panics. The rank must be exact for
// p with decimals and n up to a million, which floating point does not give for free: in f64,
// 16.1 × 1000 / 100 is 161.00000000000003, and its bare ceiling is the wrong rank.
//
// Why it matters: SLOs are written on percentiles ("p99 under 300 ms") because latency is skewed,
// often in humps (cache hit, cache miss, timeout), and its mean describes almost no request.
//
// Lab: raise MISS_RATE or TIMEOUT_RATE. The mean climbs while p50 does not move, and almost no
// request is anywhere near the mean; with TIMEOUT_RATE above 1%, p99 jumps to 1 s.

use sdlings_kit::latency;
pub use sdlings_kit::latency::assert_valid_percentile;

// ---- Your part -------------------------------------------------------------------------------

/// A batch of latency samples in microseconds, sorted once.
#[derive(Debug, Clone)]
pub struct Samples {
    /// The samples, ascending.
    sorted: Vec<u64>,
}

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
        todo!("p{p} of {} samples", self.sorted.len())
    }

    /// The arithmetic mean, or `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        todo!()
    }
}

// ---- Lab: a cached service, 100 000 requests ---------------------------------------------------

/// Share of requests that miss the cache and query the database (40–120 ms); hits take 0.6–1.8 ms.
const MISS_RATE: f64 = 0.08;
/// Share of requests whose database call times out after 1 s.
const TIMEOUT_RATE: f64 = 0.002;
const SAMPLES: usize = 100_000;
const SEED: u64 = 7;

fn main() {
    let raw = latency::cached_service_latencies(SAMPLES, MISS_RATE, TIMEOUT_RATE, SEED);
    let s = Samples::new(&raw);
    let mean = s.mean().expect("the lab has samples");
    let percentile = |p| s.percentile(p).expect("the lab has samples");
    latency::print_mean_vs_percentiles(&raw, (MISS_RATE, TIMEOUT_RATE), mean, percentile);
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    /// 10, 20, ..., 100 in arrival order, unsorted.
    const TENS: [u64; 10] = [70, 10, 100, 40, 30, 90, 20, 60, 50, 80];

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
            (0.0, 10, 1),
            (0.001, 10, 1),
            (0.0, 1, 1),
        ] {
            assert_eq!(
                nearest_rank(p, n),
                rank,
                "p{p} of {n} samples: rank {rank} = ceil({p} × {n} / 100), rounding up, never \
                 down; ranks count from 1, so p0 (ceil gives 0) is rank 1, the smallest sample"
            );
        }
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
    fn percentile_of_unsorted_samples_picks_the_sorted_sample_at_the_nearest_rank() {
        let s = Samples::new(&TENS);
        for (p, expected) in [
            (10.0, 10),
            (11.0, 20),
            (50.0, 50),
            (90.0, 90),
            (95.0, 100),
            (99.0, 100),
            (0.0, 10),
            (100.0, 100),
        ] {
            assert_eq!(
                s.percentile(p),
                Some(expected),
                "p{p} of 10, 20, ..., 100 is the sample at rank ceil({p} × 10 / 100), at least 1 \
                 (p0 is the smallest sample, p100 the largest: rank n, index n - 1)"
            );
        }
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
        assert_eq!(
            Samples::new(&[1_000, 1]).percentile(50.0),
            Some(1),
            "p50 of {{1, 1000}} is rank 1: the fast request, not something halfway"
        );
    }

    #[test]
    fn no_samples_means_no_percentile_and_no_mean_instead_of_a_panic() {
        assert_eq!(nearest_rank(50.0, 0), 0, "no samples, no rank");
        let s = Samples::new(&[]);
        assert_eq!(
            s.percentile(50.0),
            None,
            "an empty window (no traffic this minute) has no p50; it must not panic"
        );
        assert_eq!(s.percentile(0.0), None);
        assert_eq!(s.percentile(100.0), None);
        assert_eq!(s.mean(), None, "no samples, no mean (nor a division by 0)");
    }

    #[test]
    #[should_panic(expected = "0..=100")]
    fn asking_for_p150_is_a_bug_and_panics() {
        Samples::new(&TENS).percentile(150.0);
    }

    #[test]
    #[should_panic(expected = "0..=100")]
    fn a_nan_percentile_is_a_bug_and_panics() {
        // NaN fails every comparison, so a check written as `p < 0.0 || p > 100.0` lets it
        // through; ask whether p is inside the range instead.
        Samples::new(&TENS).percentile(f64::NAN);
    }

    #[test]
    #[should_panic(expected = "0..=100")]
    fn an_invalid_percentile_panics_even_with_no_samples() {
        Samples::new(&[]).percentile(-1.0);
    }

    #[test]
    fn mean_is_the_exact_average_without_integer_division_or_overflow() {
        assert_eq!(
            Samples::new(&[1, 2, 3, 4]).mean(),
            Some(2.5),
            "(1 + 2 + 3 + 4) / 4 = 2.5: divide as floating point"
        );
        assert_eq!(
            Samples::new(&[u64::MAX, u64::MAX, u64::MAX]).mean(),
            Some(u64::MAX as f64),
            "summing three u64::MAX in a u64 overflows; sum in a wider type (u128 or f64)"
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

    /// A percentile with 0 to 3 decimals, the way people write them (p0, p50, p99.9, p16.125),
    /// returned with its exact value as a fraction: `units / scale`.
    fn random_decimal_p(rng: &mut rand::rngs::StdRng) -> (f64, u64, u64) {
        let scale = 10u64.pow(rng.random_range(0..=3));
        let units = match rng.random_range(0..10) {
            0 => 0,
            1 => 100 * scale,
            _ => rng.random_range(0..=100 * scale),
        };
        (units as f64 / scale as f64, units, scale)
    }

    /// Nearest rank in exact integer arithmetic: ceil(units × n / (100 × scale)), at least 1.
    fn reference_rank(units: u64, scale: u64, n: u64) -> u64 {
        (units * n).div_ceil(100 * scale).max(1)
    }

    #[test]
    fn nearest_rank_is_exact_for_fractional_p_and_any_number_of_samples() {
        sdlings_kit::property::for_seeds(2_000, |rng| {
            let n: u64 = match rng.random_range(0..4) {
                0 => rng.random_range(1..=3),
                1 => [
                    10, 100, 200, 500, 1_000, 2_000, 10_000, 50_000, 100_000, 1_000_000,
                ][rng.random_range(0..10)],
                _ => 10f64.powf(rng.random_range(0.0..6.0)) as u64,
            };
            let (_, mut units, scale) = random_decimal_p(rng);
            // Half the cases sit right at a rank boundary, where rounding errors bite: the
            // largest p (at this many decimals) still at rank r, or the smallest one above it.
            let boundary = 100 * scale;
            let r = rng.random_range(1..=n);
            match rng.random_range(0..4) {
                0 => units = r * boundary / n,
                1 => units = ((r - 1) * boundary / n + 1).min(boundary),
                _ => {}
            }
            let p = units as f64 / scale as f64;
            assert_eq!(
                nearest_rank(p, n as usize) as u64,
                reference_rank(units, scale, n),
                "p{p} of {n} samples: the rank is ceil({p} × {n} / 100) counted exactly; \
                 floating point puts p × n / 100 a hair above or below a whole number, and a \
                 bare ceil or floor then picks the wrong rank"
            );
        });
    }

    #[test]
    fn percentile_and_mean_match_a_reference_on_small_unsorted_batches() {
        sdlings_kit::property::for_seeds(400, |rng| {
            let n = match rng.random_range(0..4) {
                0 => 1,
                1 => 2,
                _ => rng.random_range(3..=40),
            };
            // Few distinct values (many duplicates), everyday latencies, or huge ones.
            let top = [4, 1_000_000, u64::MAX][rng.random_range(0..3)];
            let raw: Vec<u64> = (0..n).map(|_| rng.random_range(0..=top)).collect();
            let mut sorted = raw.clone();
            sorted.sort_unstable();
            let s = Samples::new(&raw);
            for _ in 0..5 {
                let (p, units, scale) = random_decimal_p(rng);
                let rank = reference_rank(units, scale, n as u64);
                assert_eq!(
                    s.percentile(p),
                    Some(sorted[rank as usize - 1]),
                    "p{p} of {raw:?}: sorted {sorted:?}, rank {rank}"
                );
            }
            let exact_mean = raw.iter().map(|&v| v as u128).sum::<u128>() as f64 / n as f64;
            let mean = s.mean().expect("samples");
            assert!(
                (mean - exact_mean).abs() <= 1e-12 * exact_mean,
                "mean of {raw:?}: expected {exact_mean}, got {mean}"
            );
        });
    }
}
