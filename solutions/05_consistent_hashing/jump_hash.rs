// Jump consistent hash — a consistent hash in a few lines, no memory, no ring
//
// Lamping and Veach (Google, 2014) asked: if buckets are numbered 0..n and only ever added or
// removed at the end, can a key's bucket be computed with no data structure at all? Their
// `jump(key, n)` has the two properties that make a hash consistent: balance (each bucket gets
// 1/n of the keys) and monotonicity (going from n to n + 1 buckets, a key either stays where it
// is or moves to the new bucket n, so only ~1/(n+1) of the keys move, the least possible). It
// needs no memory and about ln(n) steps: it follows the key as buckets are added one by one,
// but skips straight to the next bucket count at which the key jumps.
//
// Implement `jump(key, buckets)`. Its answers must be exactly those of the paper's reference
// code, bit for bit, as every port's are (Guava's `Hashing.consistentHash`, the Go and C++
// ones): services written in different languages then agree on every key's shard. The key's
// pseudo-random stream is the paper's 64-bit linear congruential generator, whose multiplier is
// given below as `LCG_MULTIPLIER`; the hints walk through the steps. If `buckets` < 1, panic
// with a message that says it needs "at least one bucket".
//
// Lab: BUCKETS shards, KEYS keys: growing one shard at a time moves ~1/(n+1) of the keys, all
// onto the new shard; the load is even with no vnodes; lookups cost ~ln(n). Then DEAD_SHARD
// dies: jump can only drop the *last* bucket, so removing one in the middle renumbers the rest
// and moves far more. That is why jump hash suits storage shards that are replicated and never
// vanish (the paper's use case), not a fleet of cache nodes that crash at random.

use sdlings_kit::hashing::jump::{Knobs, run};

/// The multiplier of the 64-bit linear congruential generator that drives each key's jumps in
/// the paper's reference code.
pub const LCG_MULTIPLIER: u64 = 2_862_933_555_777_941_757;

// ---- Your part -------------------------------------------------------------------------------

/// The bucket in `0..buckets` for `key`, by Lamping and Veach's jump consistent hash.
pub fn jump(key: u64, buckets: i32) -> i32 {
    assert!(
        buckets >= 1,
        "jump needs at least one bucket, got {buckets}"
    );
    let mut key = key;
    // i64: the candidate can reach (b + 1) × 2^31, far beyond i32.
    let mut bucket: i64 = -1;
    let mut next: i64 = 0;
    while next < i64::from(buckets) {
        bucket = next;
        key = key.wrapping_mul(LCG_MULTIPLIER).wrapping_add(1);
        // r = ((key >> 33) + 1) / 2^31 is in (0, 1]; the next jump lands at (bucket + 1) / r.
        let inverse_r = (1u64 << 31) as f64 / ((key >> 33) + 1) as f64;
        next = ((bucket + 1) as f64 * inverse_r) as i64;
    }
    // `bucket` is a candidate that was below `buckets`, so it fits an i32.
    bucket as i32
}

// ---- Lab -------------------------------------------------------------------------------------

/// Shards at the end of the growth table (and in the load and failure tables).
const BUCKETS: i32 = 10;
/// Distinct keys (hashed with the topic's `stable_hash` before they are jumped).
const KEYS: usize = 100_000;
/// The shard that dies in the failure table.
const DEAD_SHARD: usize = 3;

fn main() {
    run(
        jump,
        Knobs {
            buckets: BUCKETS,
            keys: KEYS,
            dead_shard: DEAD_SHARD,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdlings_kit::hashing::mix64;

    /// Well-mixed 64-bit keys (small sequential integers are poor input for any hash).
    fn keys(n: u64) -> Vec<u64> {
        (0..n)
            .map(|i| mix64(i.wrapping_add(0x9e37_79b9_7f4a_7c15)))
            .collect()
    }

    #[test]
    fn matches_the_reference_implementation_on_known_inputs() {
        // Computed with the C++ code of the paper (Lamping & Veach 2014, figure 1); (256, 1024)
        // -> 520 is the example many jump hash libraries quote.
        let known: [(u64, i32, i32); 15] = [
            (256, 1_024, 520),
            (1, 10, 6),
            (1, 1_000, 549),
            (1, 65_536, 21_134),
            (2, 65_536, 3_927),
            (42, 2, 1),
            (42, 10, 2),
            (42, 65_536, 5_747),
            (0xdead_beef, 1_000, 285),
            (1_000_000_007, 10, 7),
            (1_000_000_007, i32::MAX, 794_687_178),
            (0x9e37_79b9_7f4a_7c15, 10, 3),
            (0x9e37_79b9_7f4a_7c15, 65_536, 56_183),
            (u64::MAX, 10, 9),
            (u64::MAX, i32::MAX, 699_554_662),
        ];
        for (key, buckets, expected) in known {
            assert_eq!(
                jump(key, buckets),
                expected,
                "jump({key:#x}, {buckets}): every implementation must agree. Check, in the \
                 hints' order: the generator step (wrapping) before each draw, the top 31 bits \
                 plus one, the division in f64, the truncation, and the strict loop condition"
            );
        }
    }

    #[test]
    fn matches_the_published_test_vectors_of_guava_and_go_jump() {
        // Guava's HashingTest (testConsistentHash_linearCongruentialGeneratorCompatibility):
        // jump(i, 100) for i in 0..20, then a few large keys and 100001 buckets.
        let golden_100 = [
            0, 55, 62, 8, 45, 59, 86, 97, 82, 59, 73, 37, 17, 56, 86, 21, 90, 37, 38, 83,
        ];
        for (key, expected) in golden_100.into_iter().enumerate() {
            assert_eq!(
                jump(key as u64, 100),
                expected,
                "jump({key}, 100): Guava's Hashing.consistentHash gives {expected}"
            );
        }
        // The same Guava test, then dgryski/go-jump's jump_test.go.
        let published: [(u64, i32, i32); 11] = [
            (10_863_919_174_838_991, 11, 6),
            (2_016_238_256_797_177_309, 11, 3),
            (1_673_758_223_894_951_030, 11, 5),
            (2, 100_001, 80_343),
            (2_201, 100_001, 22_152),
            (2_202, 100_001, 15_018),
            (1, 1, 0),
            (42, 57, 43),
            (0xdead_10cc, 1, 0),
            (0xdead_10cc, 666, 361),
            (256, 1_024, 520),
        ];
        for (key, buckets, expected) in published {
            assert_eq!(
                jump(key, buckets),
                expected,
                "jump({key}, {buckets}): the published reference answer is {expected}"
            );
        }
    }

    #[test]
    fn one_bucket_holds_every_key() {
        for key in keys(1_000) {
            assert_eq!(
                jump(key, 1),
                0,
                "with one bucket, bucket 0 is the only answer"
            );
        }
    }

    #[test]
    fn key_zero_stays_in_bucket_zero() {
        // The LCG maps 0 to 1, whose top bits are 0, so the first candidate is 2^31: a quirk
        // of the algorithm, and the reason keys should be hashed before they are jumped.
        for buckets in [1, 2, 100, i32::MAX] {
            assert_eq!(jump(0, buckets), 0, "jump(0, {buckets})");
        }
    }

    #[test]
    fn every_answer_is_a_valid_bucket() {
        let keys = keys(300);
        for buckets in (1..=300).chain([65_536, 1 << 30, i32::MAX]) {
            for &key in &keys {
                let bucket = jump(key, buckets);
                assert!(
                    (0..buckets).contains(&bucket),
                    "jump({key:#x}, {buckets}) = {bucket}, outside 0..{buckets}: return the \
                     last bucket *below* the count, not the candidate that went past it"
                );
            }
        }
    }

    #[test]
    fn growing_by_one_bucket_moves_keys_only_onto_the_new_bucket() {
        let keys = keys(2_000);
        for n in 1..=120 {
            for &key in &keys {
                let (before, after) = (jump(key, n), jump(key, n + 1));
                assert!(
                    after == before || after == n,
                    "jump({key:#x}, {n}) = {before} but jump({key:#x}, {}) = {after}: adding \
                     bucket {n} may only move keys to bucket {n}",
                    n + 1
                );
            }
        }
    }

    #[test]
    fn growing_by_one_bucket_moves_about_one_key_in_n_plus_one() {
        let keys = keys(40_000);
        for n in [1, 4, 9, 99] {
            let moved = keys
                .iter()
                .filter(|&&k| jump(k, n) != jump(k, n + 1))
                .count();
            let fraction = moved as f64 / keys.len() as f64;
            let ideal = 1.0 / f64::from(n + 1);
            assert!(
                (fraction - ideal).abs() < 0.01 + ideal * 0.1,
                "{n} -> {} buckets moved {:.2}% of the keys, expected about {:.2}%",
                n + 1,
                fraction * 100.0,
                ideal * 100.0
            );
        }
    }

    #[test]
    fn keys_spread_evenly_over_the_buckets() {
        let keys = keys(100_000);
        for buckets in [7, 10, 64] {
            let mut counts = vec![0usize; buckets as usize];
            for &key in &keys {
                counts[jump(key, buckets) as usize] += 1;
            }
            let mean = keys.len() as f64 / f64::from(buckets);
            for (bucket, &count) in counts.iter().enumerate() {
                assert!(
                    (count as f64 - mean).abs() < mean * 0.06,
                    "bucket {bucket} of {buckets} got {count} keys, expected {mean:.0} +- 6%: \
                     {counts:?}"
                );
            }
        }
    }

    #[test]
    fn shrinking_the_last_bucket_away_moves_only_its_keys() {
        let keys = keys(5_000);
        for &key in &keys {
            let (with, without) = (jump(key, 10), jump(key, 9));
            if with != 9 {
                assert_eq!(with, without, "{key:#x} was in bucket {with}, which stayed");
            }
        }
    }

    #[test]
    #[should_panic(expected = "at least one bucket")]
    fn zero_buckets_is_a_caller_bug() {
        jump(42, 0);
    }
}
