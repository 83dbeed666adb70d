// Bloom filter — "definitely not here" or "maybe here", in about 10 bits per key.
//
// An LSM store (RocksDB, Cassandra, LevelDB) keeps one Bloom filter per on-disk run: a get asks
// each run's filter first and reads from disk only on a "maybe", so a miss costs almost no I/O.
// The filter is m bits and k hash functions; a key sets (and is checked against) k bit positions.
//
// Build `optimal_parameters` (m and k from the expected keys n and the target false-positive rate
// p: m = −n·ln p / (ln 2)² rounded up, k = (m/n)·ln 2 rounded to the nearest, both at least 1;
// n = 0 is sized as n = 1), `positions` (Kirsch–Mitzenmacher double hashing: position i, for i in
// 0..k, is (h1 + i·h2) mod m in exact integer arithmetic, h1 and h2 the halves of the kit's
// `hash128`), `insert` and `may_contain`. The property: never a false negative, and with n keys
// inserted the false-positive rate is close to p.
//
// Lab: the measured false-positive rate against bits per key and against target rates. Turn KEYS
// or BITS_PER_KEY and watch each extra ~4.8 bits per key divide the rate by 10.

use sdlings_kit::storage_engines::indexes::{BloomKnobs, bloom_lab, hash128};

// ---- Your part -------------------------------------------------------------------------------

/// The filter size `(m bits, k hashes)` for `n` keys at false-positive rate `p`. Panics (with a
/// message that says "false-positive rate") unless 0 < p < 1.
pub fn optimal_parameters(n: usize, p: f64) -> (u64, u32) {
    assert!(
        p > 0.0 && p < 1.0,
        "the false-positive rate must be strictly between 0 and 1, got {p}"
    );
    // An empty filter still needs a bit to hash into: size it for one key.
    let n = n.max(1) as f64;
    let ln2 = std::f64::consts::LN_2;
    // Round m up: fewer bits than the formula would miss the target rate.
    let m = (-n * p.ln() / (ln2 * ln2)).ceil().max(1.0);
    // k from the rounded m; at least one hash, or every query would answer "maybe".
    let k = (m / n * ln2).round().max(1.0);
    (m as u64, k as u32)
}

pub struct BloomFilter {
    /// The m bits: bit i is bit `i % 64` of `words[i / 64]`.
    words: Vec<u64>,
    m: u64,
    k: u32,
}

impl BloomFilter {
    /// The k bit positions of `key`, in order i = 0, 1, ..., k − 1.
    pub fn positions(&self, key: &[u8]) -> Vec<u64> {
        let (h1, h2) = hash128(key);
        // h1 + i·h2 overflows 64 bits; in 128 bits it cannot (i < 2^32).
        let (h1, h2, m) = (u128::from(h1), u128::from(h2), u128::from(self.m));
        (0..u128::from(self.k))
            .map(|i| ((h1 + i * h2) % m) as u64)
            .collect()
    }

    pub fn insert(&mut self, key: &[u8]) {
        for bit in self.positions(key) {
            self.set(bit);
        }
    }

    /// False: `key` was never inserted. True: it probably was.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.positions(key).into_iter().all(|bit| self.get(bit))
    }
}

// ---- Given -----------------------------------------------------------------------------------

impl BloomFilter {
    /// A filter sized for `n` keys at false-positive rate `p`.
    pub fn new(n: usize, p: f64) -> Self {
        let (m, k) = optimal_parameters(n, p);
        BloomFilter::with_parameters(m, k)
    }

    /// A filter of `m` bits (all clear) and `k` hash functions.
    pub fn with_parameters(m: u64, k: u32) -> Self {
        assert!(
            m >= 1 && k >= 1,
            "a filter needs at least one bit and one hash"
        );
        BloomFilter {
            words: vec![0; m.div_ceil(64) as usize],
            m,
            k,
        }
    }

    pub fn bits(&self) -> u64 {
        self.m
    }

    pub fn hashes(&self) -> u32 {
        self.k
    }

    fn set(&mut self, bit: u64) {
        self.words[(bit / 64) as usize] |= 1 << (bit % 64);
    }

    fn get(&self, bit: u64) -> bool {
        self.words[(bit / 64) as usize] & 1 << (bit % 64) != 0
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Keys inserted in each filter, and absent keys queried to measure false positives.
const KEYS: usize = 10_000;
const QUERIES: usize = 100_000;
/// Bits per key of the first table (RocksDB's default is 10: about 1% false positives).
const BITS_PER_KEY: [f64; 6] = [2.0, 4.0, 6.0, 8.0, 10.0, 16.0];
/// Target rates of the second table, sized by your `optimal_parameters`.
const TARGETS: [f64; 4] = [0.1, 0.01, 0.001, 0.0001];

fn main() {
    let knobs = BloomKnobs {
        keys: KEYS,
        queries: QUERIES,
        bits_per_key: BITS_PER_KEY.to_vec(),
        targets: TARGETS.to_vec(),
    };
    bloom_lab(
        &knobs,
        BloomFilter::with_parameters,
        BloomFilter::insert,
        BloomFilter::may_contain,
        optimal_parameters,
    );
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::property::for_seeds;

    use super::*;

    const LN2: f64 = std::f64::consts::LN_2;

    /// The positions by the definition: (h1 + i·h2) mod m over the integers.
    fn reference_positions(key: &[u8], m: u64, k: u32) -> Vec<u64> {
        let (h1, h2) = hash128(key);
        (0..k)
            .map(|i| ((u128::from(h1) + u128::from(i) * u128::from(h2)) % u128::from(m)) as u64)
            .collect()
    }

    fn set_bits(f: &BloomFilter) -> Vec<u64> {
        (0..f.m).filter(|&b| f.get(b)).collect()
    }

    #[test]
    fn sizes_the_filter_with_the_textbook_formulas() {
        for (n, p, m, k, why) in [
            (
                1_000,
                0.01,
                9_586,
                7,
                "9585.06 bits round up; 6.64 hashes round to 7",
            ),
            (
                1_000,
                0.05,
                6_236,
                4,
                "6235.2 bits round up; 4.32 hashes round to 4",
            ),
            (10_000, 0.001, 143_776, 10, "143775.9 bits; 9.97 hashes"),
            (
                1_000,
                1e-12,
                57_511,
                40,
                "a tiny p: 57510.4 bits; 39.86 hashes",
            ),
        ] {
            assert_eq!(
                optimal_parameters(n, p),
                (m, k),
                "n = {n}, p = {p}: m = −n·ln p/(ln 2)² = {why}"
            );
        }
    }

    #[test]
    fn degenerate_sizes_still_give_a_usable_filter() {
        assert_eq!(
            optimal_parameters(0, 0.01),
            (10, 7),
            "n = 0 is sized as one key: 9.59 bits round up to 10, 6.93 hashes to 7"
        );
        assert_eq!(
            optimal_parameters(100, 0.9),
            (22, 1),
            "p near 1: (m/n)·ln 2 = 0.15 rounds to 0, but a filter needs at least one hash"
        );
        assert_eq!(
            optimal_parameters(20, 0.999),
            (1, 1),
            "0.04 bits round up to 1"
        );
        let mut empty = BloomFilter::new(0, 0.01);
        assert!(!empty.may_contain(b"anything"), "nothing inserted yet");
        empty.insert(b"one");
        assert!(empty.may_contain(b"one"));
    }

    #[test]
    #[should_panic(expected = "false-positive rate")]
    fn a_rate_of_zero_is_impossible() {
        optimal_parameters(10, 0.0);
    }

    #[test]
    #[should_panic(expected = "false-positive rate")]
    fn a_rate_of_one_is_not_a_filter() {
        optimal_parameters(10, 1.0);
    }

    #[test]
    fn sizing_keeps_the_predicted_rate_near_p_over_the_parameter_space() {
        for_seeds(300, |rng| {
            let n = if rng.random() {
                rng.random_range(1..50)
            } else {
                rng.random_range(50..2_000_000)
            };
            let p = 10f64.powf(-rng.random_range(0.3..12.0));
            let (m, k) = optimal_parameters(n, p);
            let exact = -(n as f64) * p.ln() / (LN2 * LN2);
            assert!(
                m as f64 >= exact && (m as f64) < exact + 1.0,
                "n = {n}, p = {p}: m = {m} must be {exact} rounded up"
            );
            let ideal = m as f64 / n as f64 * LN2;
            assert!(
                (f64::from(k) - ideal).abs() <= 0.5 && k >= 1,
                "n = {n}, p = {p}, m = {m}: k = {k} must be (m/n)·ln 2 = {ideal} rounded"
            );
            let predicted = (1.0 - (-f64::from(k) * n as f64 / m as f64).exp()).powi(k as i32);
            assert!(
                predicted <= 1.1 * p,
                "n = {n}, p = {p}: (m, k) = ({m}, {k}) predicts a rate of {predicted}"
            );
        });
    }

    #[test]
    fn positions_are_double_hashing_over_the_integers() {
        let f = BloomFilter::with_parameters(1_000, 5);
        assert_eq!(
            f.positions(b"apple"),
            [361, 740, 119, 498, 877],
            "(h1 + i·h2) mod 1000 for i = 0..5, h1 and h2 from hash128(\"apple\"); h1 + i·h2 \
             exceeds 64 bits, so it must not wrap around"
        );
        for_seeds(200, |rng| {
            let m = rng.random_range(1..100_000);
            let k = rng.random_range(1..30);
            let key: Vec<u8> = (0..rng.random_range(0..20)).map(|_| rng.random()).collect();
            assert_eq!(
                BloomFilter::with_parameters(m, k).positions(&key),
                reference_positions(&key, m, k),
                "m = {m}, k = {k}, key {key:?}: position i is (h1 + i·h2) mod m, i from 0"
            );
        });
    }

    #[test]
    fn inserting_a_key_sets_exactly_its_positions() {
        for_seeds(100, |rng| {
            let m = rng.random_range(1..300);
            let k = rng.random_range(1..12);
            let mut f = BloomFilter::with_parameters(m, k);
            let key = format!("key:{}", rng.random::<u32>());
            f.insert(key.as_bytes());
            let mut want = reference_positions(key.as_bytes(), m, k);
            want.sort();
            want.dedup();
            assert_eq!(
                set_bits(&f),
                want,
                "m = {m}, k = {k}: {key} sets its k positions"
            );
        });
    }

    #[test]
    fn a_key_is_reported_only_when_all_of_its_bits_are_set() {
        let mut f = BloomFilter::with_parameters(1_000, 5);
        let bits = reference_positions(b"apple", 1_000, 5);
        for &b in &bits[..4] {
            f.set(b);
        }
        assert!(
            !f.may_contain(b"apple"),
            "4 of apple's 5 bits set: one clear bit proves apple was never inserted"
        );
        f.set(bits[4]);
        assert!(f.may_contain(b"apple"), "all 5 set: maybe");
    }

    #[test]
    fn never_a_false_negative() {
        for_seeds(40, |rng| {
            let n = rng.random_range(0..400);
            let p = 10f64.powf(-rng.random_range(0.1..6.0));
            let mut f = BloomFilter::new(n, p);
            let keys: Vec<u64> = (0..n + 5).map(|_| rng.random()).collect();
            for key in &keys {
                f.insert(&key.to_le_bytes());
            }
            for key in &keys {
                assert!(
                    f.may_contain(&key.to_le_bytes()),
                    "n = {n}, p = {p}: {key} was inserted, so the filter must say maybe"
                );
            }
        });
    }

    #[test]
    fn the_measured_false_positive_rate_is_within_1_5x_of_the_target() {
        for (n, p, queries) in [
            (1_000, 0.01, 20_000),
            (2_000, 0.05, 10_000),
            (500, 0.2, 5_000),
            (3_000, 0.002, 50_000),
        ] {
            let mut f = BloomFilter::new(n, p);
            for i in 0..n {
                f.insert(format!("in:{i}").as_bytes());
            }
            let fp = (0..queries)
                .filter(|i| f.may_contain(format!("out:{i}").as_bytes()))
                .count();
            let rate = fp as f64 / queries as f64;
            assert!(
                rate <= 1.5 * p && rate >= p / 1.5,
                "n = {n} keys at target p = {p}: measured {rate} on {queries} absent keys, \
                 expected within 1.5× of p (too high: too few bits or hashes, or a check that \
                 passes on any set bit; too low: more bits than needed)"
            );
        }
    }
}
