// Latency histogram: percentiles in fixed memory, with a bounded relative error, mergeable
//
// A server handling 50 000 requests a second cannot keep every latency to sort at the end of the
// minute, and a fleet of 200 servers cannot ship them all to a dashboard. Real monitoring keeps a
// histogram instead: a fixed array of counters, one per latency range ("bucket"). Build
// `LatencyHistogram` with log-linear buckets, the layout of HdrHistogram:
//
//   - values 0..=255 get one bucket each (exact);
//   - above that, each power of two [2^e, 2^(e+1)) is split into 128 equal buckets, so a bucket's
//     width is 2^(e-7) and never more than 1/128 of the values in it. With shift = e - 7, the
//     bucket of v is  shift × 128 + (v >> shift),  and the 7424 buckets cover all of u64.
//
// `value_at_percentile(p)` finds the bucket holding the sample at nearest rank ceil(p × n / 100)
// (`nearest_rank` is given) and returns that bucket's HIGHEST value, capped at the largest value
// recorded. So the answer is never below the exact percentile and at most 1/128 (0.78%) above it:
// a histogram may over-report a latency a little, never hide one. `merge` adds another
// histogram's counts, so per-server histograms combine into an exact fleet view.
//
// Lab: raise SLOW_SERVER_PAUSE_RATE or add SERVERS. The merged fleet p99 stays within 0.78% of the
// exact one, in the same 58 KiB, while "the average of the servers' p99s" is a number no request
// had (it is too high here; with a rate above 4% it becomes too low).

pub use sdlings_kit::latency::assert_valid_percentile;
use sdlings_kit::latency::{self, FLEET_PERCENTILES};

/// Bits of precision: each power of two is split into 2^7 = 128 sub-buckets.
pub const PRECISION_BITS: u32 = 7;
/// Sub-buckets per power of two.
pub const SUB_BUCKETS: usize = 1 << PRECISION_BITS;
/// Buckets needed to cover every u64: 0..=255 one each, then 128 for each of the powers of two
/// 2^8 .. 2^63. The histogram's memory is this many counters, whatever it records.
pub const BUCKET_COUNT: usize = (64 - PRECISION_BITS as usize + 1) * SUB_BUCKETS;
/// The most `value_at_percentile` may exceed the exact percentile, relative to it.
pub const MAX_RELATIVE_ERROR: f64 = 1.0 / SUB_BUCKETS as f64;

/// Latencies (any unit; the lab uses microseconds) counted in log-linear buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    /// `counts[i]`: how many recorded values fell in bucket `i`. Always `BUCKET_COUNT` long.
    counts: Vec<u64>,
    /// Values recorded in total (the sum of `counts`).
    total: u64,
    /// The smallest and largest values recorded, exactly. `u64::MAX` and 0 while empty.
    min: u64,
    max: u64,
}

// ---- Your part -------------------------------------------------------------------------------

/// The bucket holding `value`: `value` itself below 256; above, with e the position of the
/// highest set bit (`value.ilog2()`) and shift = e - 7, it is `shift × 128 + (value >> shift)`.
pub fn bucket_index(value: u64) -> usize {
    todo!("the bucket of {value}")
}

/// The smallest and largest value (both inclusive) that fall in bucket `index`.
pub fn bucket_range(index: usize) -> (u64, u64) {
    todo!("the values in bucket {index}")
}

impl LatencyHistogram {
    /// Counts one value. O(1), and allocates nothing.
    pub fn record(&mut self, value: u64) {
        todo!("count {value}")
    }

    /// How many values were recorded (merges included).
    pub fn count(&self) -> u64 {
        todo!()
    }

    /// The p-th percentile: the highest value of the bucket holding the sample at nearest rank,
    /// capped at the largest value recorded. `None` when empty. Panics if `p` is not within
    /// 0..=100, even when empty.
    pub fn value_at_percentile(&self, p: f64) -> Option<u64> {
        todo!("p{p}")
    }

    /// Adds `other`'s counts to this histogram, as if every value recorded there had been
    /// recorded here too.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        todo!("add {} values", other.total)
    }
}

// ---- Given ------------------------------------------------------------------------------------

/// Given (you built it in `percentiles`): the 1-based nearest rank of the p-th percentile among
/// `n` samples, ceil(p × n / 100) and at least 1; 0 when `n` is 0. Panics on an invalid `p`.
pub fn nearest_rank(p: f64, n: u64) -> u64 {
    assert_valid_percentile(p);
    if n == 0 {
        return 0;
    }
    let exact = p * n as f64 / 100.0;
    let nearest = exact.round();
    let rank = if (exact - nearest).abs() <= 1e-12 * nearest.max(1.0) {
        nearest
    } else {
        exact.ceil()
    };
    (rank as u64).clamp(1, n)
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        LatencyHistogram {
            counts: vec![0; BUCKET_COUNT],
            total: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// The smallest value recorded, exactly.
    pub fn min(&self) -> Option<u64> {
        (self.total > 0).then_some(self.min)
    }

    /// The largest value recorded, exactly.
    pub fn max(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }

    /// How many counters the histogram holds: its memory, which must never grow.
    pub fn bucket_count(&self) -> usize {
        self.counts.len()
    }
}

// ---- Lab: four servers, one with a slow disk ---------------------------------------------------

/// Servers in the fleet; the last one has a slow disk and stalls now and then.
const SERVERS: usize = 4;
const REQUESTS_PER_SERVER: usize = 50_000;
/// Share of the slow server's requests that stall behind its disk (for 150–400 ms).
const SLOW_SERVER_PAUSE_RATE: f64 = 0.03;
const SEED: u64 = 2024;

fn main() {
    let latencies =
        latency::fleet_latencies(SERVERS, REQUESTS_PER_SERVER, SLOW_SERVER_PAUSE_RATE, SEED);
    let mut servers = vec![LatencyHistogram::new(); SERVERS];
    for (histogram, values) in servers.iter_mut().zip(&latencies) {
        values.iter().for_each(|&v| histogram.record(v));
    }
    let mut fleet = LatencyHistogram::new();
    servers.iter().for_each(|h| fleet.merge(h));
    let figures = |h: &LatencyHistogram| {
        let values = FLEET_PERCENTILES.map(|p| h.value_at_percentile(p).expect("recorded"));
        (h.count(), values)
    };
    let per_server: Vec<_> = servers.iter().map(figures).collect();
    latency::print_fleet_report(
        &latencies,
        SLOW_SERVER_PAUSE_RATE,
        &per_server,
        figures(&fleet),
        fleet.bucket_count(),
        MAX_RELATIVE_ERROR,
    );
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use rand::rngs::StdRng;
    use sdlings_kit::workload::seeded_rng;

    use super::*;

    /// The exact nearest-rank percentile of samples already sorted (as in `percentiles`).
    fn exact_percentile(sorted: &[u64], p: f64) -> u64 {
        let rank = nearest_rank(p, sorted.len() as u64);
        sorted[(rank - 1) as usize]
    }

    fn histogram_of(values: &[u64]) -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        for &v in values {
            h.record(v);
        }
        h
    }

    /// Log-uniform values from 1 µs to about 10 s: six orders of magnitude, like real latencies.
    fn wide_range_samples(seed: u64, n: usize) -> Vec<u64> {
        let mut rng = seeded_rng(seed);
        (0..n)
            .map(|_| 10f64.powf(rng.random_range(0.0..7.0)) as u64)
            .collect()
    }

    const PERCENTILES: [f64; 14] = [
        0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 99.999, 100.0,
    ];

    #[test]
    fn values_below_256_get_one_bucket_each() {
        for v in 0..256u64 {
            assert_eq!(
                bucket_index(v),
                v as usize,
                "small values are counted exactly: value {v} is bucket {v}"
            );
            assert_eq!(bucket_range(v as usize), (v, v));
        }
    }

    #[test]
    fn bucket_width_doubles_at_every_power_of_two() {
        for (value, index) in [
            (256u64, 256usize),
            (257, 256),
            (258, 257),
            (511, 383),
            (512, 384),
            (515, 384),
            (516, 385),
            (1_000, 506),
            (1_000_000, 1_780),
        ] {
            assert_eq!(
                bucket_index(value),
                index,
                "value {value}: shift = ilog2({value}) - 7, bucket = shift × 128 + ({value} >> \
                 shift)"
            );
        }
        assert_eq!(bucket_range(256), (256, 257), "2^8..2^9 has buckets 2 wide");
        assert_eq!(
            bucket_range(384),
            (512, 515),
            "2^9..2^10 has buckets 4 wide"
        );
        assert_eq!(bucket_range(506), (1_000, 1_003));
        assert_eq!(
            bucket_range(1_780),
            (999_424, 1_003_519),
            "around a million the buckets are 4096 wide: 0.4% of the value"
        );
    }

    #[test]
    fn the_whole_u64_range_fits_in_the_fixed_buckets() {
        assert_eq!(
            bucket_index(u64::MAX),
            BUCKET_COUNT - 1,
            "u64::MAX goes in the very last bucket"
        );
        assert_eq!(
            bucket_range(BUCKET_COUNT - 1),
            (255 << 56, u64::MAX),
            "the last bucket ends at u64::MAX (careful not to overflow computing it)"
        );
        assert_eq!(bucket_index(1 << 63), BUCKET_COUNT - SUB_BUCKETS);
    }

    #[test]
    fn buckets_tile_the_range_without_gaps_and_each_is_at_most_1_128th_wide() {
        let mut next = 0u64;
        for index in 0..BUCKET_COUNT {
            let (lowest, highest) = bucket_range(index);
            assert_eq!(
                lowest,
                next,
                "bucket {index} must start right after bucket {} ends",
                index.max(1) - 1
            );
            assert!(highest >= lowest, "bucket {index}: ({lowest}, {highest})");
            assert_eq!(
                (bucket_index(lowest), bucket_index(highest)),
                (index, index),
                "both ends of bucket {index} ({lowest}..={highest}) must map back to it"
            );
            assert!(
                (highest - lowest) as f64 <= lowest as f64 * MAX_RELATIVE_ERROR,
                "bucket {index} ({lowest}..={highest}) is wider than 1/128 of its values"
            );
            next = highest.wrapping_add(1);
        }
        assert_eq!(next, 0, "the last bucket ends at u64::MAX");
    }

    #[test]
    fn an_empty_histogram_has_no_percentiles_instead_of_panicking() {
        let h = LatencyHistogram::new();
        assert_eq!(h.count(), 0);
        assert_eq!(h.value_at_percentile(50.0), None);
        assert_eq!(h.value_at_percentile(100.0), None);
        assert_eq!((h.min(), h.max()), (None, None));
    }

    #[test]
    #[should_panic(expected = "0..=100")]
    fn an_invalid_percentile_panics() {
        histogram_of(&[1, 2, 3]).value_at_percentile(100.1);
    }

    #[test]
    fn small_values_give_exact_percentiles() {
        let values: Vec<u64> = (1..=100).rev().collect();
        let h = histogram_of(&values);
        for (p, expected) in [
            (0.0, 1),
            (1.0, 1),
            (10.0, 10),
            (50.0, 50),
            (50.5, 51),
            (99.0, 99),
            (100.0, 100),
        ] {
            assert_eq!(
                h.value_at_percentile(p),
                Some(expected),
                "values 1..=100 each have their own bucket, so p{p} is exact: stop at the first \
                 bucket whose running count reaches the rank, not the one after"
            );
        }
    }

    #[test]
    fn reports_the_bucket_upper_bound_so_it_never_under_reports() {
        let h = histogram_of(&[1_000_000, 2_000_000]);
        assert_eq!(
            h.value_at_percentile(50.0),
            Some(1_003_519),
            "1,000,000 sits in bucket 999,424..=1,003,519; the contract is the bucket's highest \
             value (not its lowest, nor its middle), so the answer is never below the truth"
        );
    }

    #[test]
    fn the_answer_is_capped_at_the_largest_value_recorded() {
        let h = histogram_of(&[1_000, 1_000_000]);
        assert_eq!(
            h.value_at_percentile(100.0),
            Some(1_000_000),
            "the max is known exactly: report it rather than its bucket's upper bound 1,003,519"
        );
        assert_eq!(
            histogram_of(&[u64::MAX]).value_at_percentile(99.0),
            Some(u64::MAX)
        );
        assert_eq!(histogram_of(&[0]).value_at_percentile(50.0), Some(0));
    }

    #[test]
    fn memory_stays_fixed_however_many_values_are_recorded() {
        let mut h = LatencyHistogram::new();
        let mut rng = seeded_rng(9);
        for _ in 0..100_000 {
            h.record(rng.random_range(0..u64::MAX / 2));
        }
        h.record(u64::MAX);
        assert_eq!(h.count(), 100_001);
        assert_eq!(
            h.bucket_count(),
            BUCKET_COUNT,
            "a histogram's memory is its fixed array of counters: it must never grow"
        );
    }

    #[test]
    fn merge_adds_counts_so_the_fleet_view_equals_one_histogram_of_everything() {
        let mut samples = wide_range_samples(2, 9_000);
        // Sorted, then rotated: the first server holds the middle third, so the fleet's min and
        // max both arrive through merge.
        samples.sort_unstable();
        samples.rotate_left(3_000);
        let mut servers: Vec<LatencyHistogram> = samples.chunks(3_000).map(histogram_of).collect();
        let mut fleet = servers.remove(0);
        for server in &servers {
            fleet.merge(server);
        }
        let all = histogram_of(&samples);
        assert_eq!(fleet.count(), 9_000, "merge must not lose counts");
        assert_eq!(
            (fleet.min(), fleet.max()),
            (all.min(), all.max()),
            "the merged min and max are the fleet's"
        );
        assert_eq!(
            fleet.counts, all.counts,
            "merging adds bucket by bucket: same counters as one histogram of everything"
        );
        for p in PERCENTILES {
            assert_eq!(
                fleet.value_at_percentile(p),
                all.value_at_percentile(p),
                "p{p} of the merged histogram"
            );
        }
    }

    #[test]
    fn merging_with_an_empty_histogram_changes_nothing() {
        let h = histogram_of(&[5, 900, 70_000]);
        let mut merged = h.clone();
        merged.merge(&LatencyHistogram::new());
        assert_eq!(merged, h, "merging an empty histogram in");
        let mut empty = LatencyHistogram::new();
        empty.merge(&h);
        assert_eq!(empty, h, "merging into an empty histogram");
        assert_eq!(empty.min(), Some(5), "the empty side's min must not win");
    }

    #[test]
    fn averaging_the_servers_p99s_is_not_the_fleet_p99() {
        // Server A: 1000 requests at 1 ms. Server B: 950 at 1 ms and 50 at 100 ms.
        let a = histogram_of(&[1_000; 1_000]);
        let mut b_values = vec![1_000u64; 950];
        b_values.extend([100_000; 50]);
        let b = histogram_of(&b_values);
        let average =
            (a.value_at_percentile(99.0).unwrap() + b.value_at_percentile(99.0).unwrap()) / 2;
        let mut fleet = a.clone();
        fleet.merge(&b);
        assert_eq!(
            fleet.value_at_percentile(99.0),
            Some(100_000),
            "50 of the fleet's 2000 requests (2.5%) took 100 ms, so the fleet p99 is 100 ms"
        );
        assert_eq!(
            average, 50_500,
            "the average of p99s is 50.5 ms, a latency no request had: percentiles do not \
             average, merge the histograms instead"
        );
    }

    /// A value from anywhere in u64, every power of two equally likely, with the awkward ones
    /// (0, 255, 256, powers of two and one below them, u64::MAX) drawn often.
    fn any_magnitude(rng: &mut StdRng) -> u64 {
        let e = rng.random_range(0..64u32);
        let lowest = 1u64 << e;
        let highest = lowest.wrapping_shl(1).wrapping_sub(1); // 2^(e+1) - 1, u64::MAX for e = 63
        match rng.random_range(0..8) {
            0 => lowest,
            1 => lowest - 1,
            2 => highest,
            3 => [0, 255, 256, u64::MAX][rng.random_range(0..4)],
            _ => rng.random_range(lowest..=highest),
        }
    }

    /// A percentile with 0 to 3 decimals (p0, p50, p99.9, p16.125), p0 and p100 often.
    fn any_percentile(rng: &mut StdRng) -> f64 {
        let scale = 10u64.pow(rng.random_range(0..=3));
        let units = match rng.random_range(0..8) {
            0 => 0,
            1 => 100 * scale,
            _ => rng.random_range(0..=100 * scale),
        };
        units as f64 / scale as f64
    }

    #[test]
    fn merged_percentiles_are_the_top_of_the_exact_percentiles_bucket_over_all_of_u64() {
        sdlings_kit::property::for_seeds(120, |rng| {
            let n = match rng.random_range(0..4) {
                0 => 1,
                1 => 2,
                _ => rng.random_range(3..=60),
            };
            // Spread over every magnitude, or crowded into a few neighbouring values (several
            // samples in one bucket, duplicates).
            let crowded = rng.random_bool(0.3);
            let base = any_magnitude(rng);
            let samples: Vec<u64> = (0..n)
                .map(|_| {
                    if crowded {
                        base.saturating_add(rng.random_range(0..4))
                    } else {
                        any_magnitude(rng)
                    }
                })
                .collect();
            // Recorded on 1 to 3 servers (some possibly empty), then merged.
            let servers = rng.random_range(1..=3);
            let mut parts = vec![LatencyHistogram::new(); servers];
            for &v in &samples {
                parts[rng.random_range(0..servers)].record(v);
            }
            let mut h = parts.remove(0);
            for part in &parts {
                h.merge(part);
            }
            let mut sorted = samples.clone();
            sorted.sort_unstable();
            assert_eq!(h.count(), n as u64, "every recorded value is counted once");
            assert_eq!(
                (h.min(), h.max()),
                (sorted.first().copied(), sorted.last().copied()),
                "min and max of {samples:?}"
            );
            for _ in 0..8 {
                let p = any_percentile(rng);
                let exact = exact_percentile(&sorted, p);
                let got = h.value_at_percentile(p).expect("recorded");
                assert!(
                    got >= exact && (got - exact) as f64 <= exact as f64 * MAX_RELATIVE_ERROR,
                    "p{p} of {sorted:?}: the exact percentile is {exact}, reported {got}: the \
                     answer must be at or above it, by at most 1/128 of it"
                );
                let (_, top) = bucket_range(bucket_index(exact));
                assert_eq!(
                    got,
                    top.min(sorted[n - 1]),
                    "p{p} of {sorted:?}: the exact percentile {exact} is in bucket {}, whose \
                     highest value is {top}; report that, capped at the largest value recorded",
                    bucket_index(exact)
                );
            }
        });
    }
}
