//! Seeded workload generators for the labs and tests.
//!
//! Real traffic is skewed: a few keys are hot and most are cold. [`ZipfKeys`] draws keys with a
//! Zipf distribution (key `k` is drawn with weight `1 / (k + 1)^s`), the usual model for cache and
//! database access patterns. The same seed always gives the same sequence.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// A random number generator that gives the same sequence for the same seed, on every run.
///
/// Give each independent random choice its own seed: two generators made from the same seed
/// (say, one drawing keys and one drawing arrival times) produce correlated streams, which can
/// quietly skew a lab (the hot keys always arriving first).
pub fn seeded_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Draws keys `0..n` with Zipf skew `s` (`s = 0`: uniform; `s ≈ 1`: typical web traffic;
/// larger: a few very hot keys).
#[derive(Debug)]
pub struct ZipfKeys {
    cumulative: Vec<f64>,
    rng: StdRng,
}

impl ZipfKeys {
    pub fn new(n: usize, s: f64, seed: u64) -> Self {
        assert!(n > 0, "ZipfKeys needs at least one key");
        assert!(s >= 0.0, "Zipf skew must not be negative");
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|k| {
                total += 1.0 / ((k + 1) as f64).powf(s);
                total
            })
            .collect();
        ZipfKeys {
            cumulative,
            rng: seeded_rng(seed),
        }
    }

    /// The next key, in `0..n`.
    pub fn next_key(&mut self) -> u64 {
        let total = *self.cumulative.last().expect("n > 0");
        let x = self.rng.random_range(0.0..total);
        self.cumulative.partition_point(|&c| c <= x) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_keys() {
        let a: Vec<u64> = {
            let mut z = ZipfKeys::new(100, 1.0, 7);
            (0..50).map(|_| z.next_key()).collect()
        };
        let mut z = ZipfKeys::new(100, 1.0, 7);
        let b: Vec<u64> = (0..50).map(|_| z.next_key()).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn skew_makes_key_zero_the_hottest_and_keys_stay_in_range() {
        let mut z = ZipfKeys::new(1000, 1.2, 1);
        let mut counts = vec![0u32; 1000];
        for _ in 0..20_000 {
            counts[z.next_key() as usize] += 1;
        }
        let hottest = counts
            .iter()
            .enumerate()
            .max_by_key(|(_, c)| **c)
            .unwrap()
            .0;
        assert_eq!(hottest, 0);
        assert!(counts[0] > 10 * counts[100]);
    }
}
