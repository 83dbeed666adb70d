// Jump consistent hash — a consistent hash in a few lines, no memory, no ring
//
// Lamping and Veach (Google, 2014) asked: if buckets are numbered 0..n and only ever added or
// removed at the end, can a key's bucket be computed with no data structure at all? Follow one
// key as the bucket count grows 1, 2, 3...: to stay balanced, when bucket j is added the key
// must jump to it with probability exactly 1/(j+1), and otherwise stay put. Simulating every
// step would be O(n); instead, draw the key's next jump directly. If the key last jumped to
// bucket b, the chance that it is still there once there are i buckets is (b+1)/(b+2) × ... ×
// (i-1)/i = (b+1)/i. So with r uniform in (0, 1], the key stays put for every count i up to
// (b+1)/r, and its next jump lands on bucket floor((b+1)/r). Keep jumping until a jump lands
// at or beyond the bucket count; the last bucket landed on is the answer. About ln(n) jumps,
// no memory.
//
// Implement `jump(key, buckets)` from that idea. To give the same answer as every other
// implementation, the key's random stream must be the paper's: before each jump, advance the
// key as a 64-bit LCG, key = key × 2862933555777941757 + 1 (wrapping), and take r =
// ((key >> 33) + 1) / 2^31; compute the landing bucket in f64 as (b + 1) × (2^31 / ((key >> 33)
// + 1)), truncated. The first jump is from "nowhere" (b = -1) to bucket 0. If `buckets` < 1,
// panic with a message that says it needs "at least one bucket".
//
// Lab: BUCKETS shards, KEYS keys: growing one shard at a time moves ~1/(n+1) of the keys, all
// onto the new shard; the load is even with no vnodes; lookups cost ~ln(n). Then DEAD_SHARD
// dies: jump can only drop the *last* bucket, so removing one in the middle renumbers the rest
// and moves far more. That is why jump hash suits storage shards that are replicated and never
// vanish (the paper's use case), not a fleet of cache nodes that crash at random.

use std::hint::black_box;
use std::time::Instant;

use sdlings_kit::lab::{Table, bar_chart, percent};

// ---- Given: a stable hash --------------------------------------------------------------------

/// FNV-1a, 64-bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3). Tiny and fully
/// specified, so every client, in every language and every version, computes the same value.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The SplitMix64 finaliser: every input bit affects every output bit, so keys that differ in
/// one character ("user:41", "user:42") land far apart.
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The hash this whole topic uses: FNV-1a, then the SplitMix64 finaliser. Jump hash takes a
/// 64-bit key, so string keys go through this first. (Small or sequential integers should too:
/// key 0, for one, always lands in bucket 0.)
pub fn stable_hash(data: impl AsRef<[u8]>) -> u64 {
    mix64(fnv1a64(data.as_ref()))
}

/// A sharded store's routing table: shard names in bucket order. New shards are appended.
pub struct Shards {
    names: Vec<String>,
}

impl Shards {
    pub fn new(names: Vec<String>) -> Self {
        Shards { names }
    }

    /// The shard holding `key`.
    pub fn route(&self, key: &str) -> &str {
        let buckets = i32::try_from(self.names.len()).expect("fewer than 2^31 shards");
        &self.names[jump(stable_hash(key), buckets) as usize]
    }
}

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
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
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
/// Distinct keys.
const KEYS: usize = 100_000;
/// The shard that dies in the failure table.
const DEAD_SHARD: usize = 3;

fn main() {
    let hashes: Vec<u64> = (0..KEYS)
        .map(|i| stable_hash(format!("user:{i}")))
        .collect();

    println!("Growing one shard at a time, {KEYS} keys\n");
    let mut growth = Table::new(&[
        "shards",
        "moved",
        "ideal 1/(n+1)",
        "moved onto the new shard",
    ]);
    let mut current: Vec<i32> = hashes.iter().map(|&h| jump(h, 1)).collect();
    for n in 1..BUCKETS {
        let next: Vec<i32> = hashes.iter().map(|&h| jump(h, n + 1)).collect();
        let moved = current.iter().zip(&next).filter(|(a, b)| a != b).count();
        let onto_new = current
            .iter()
            .zip(&next)
            .filter(|(a, b)| a != b && **b == n)
            .count();
        growth.row(&[
            format!("{n} -> {}", n + 1),
            percent(moved as u64, KEYS as u64),
            format!("{:.1}%", 100.0 / f64::from(n + 1)),
            percent(onto_new as u64, moved as u64),
        ]);
        current = next;
    }
    growth.print();

    let mut counts = vec![0usize; BUCKETS as usize];
    for &bucket in &current {
        counts[bucket as usize] += 1;
    }
    let mean = KEYS as f64 / f64::from(BUCKETS);
    let max = counts.iter().copied().max().unwrap_or(0) as f64;
    let bars: Vec<(String, f64)> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| (format!("shard-{i}"), c as f64))
        .collect();
    println!(
        "\nkeys per shard with {BUCKETS} shards (busiest: {:.2}x the mean; no vnodes, no \
         memory)\n{}\n",
        max / mean,
        bar_chart(&bars, 40)
    );

    let names: Vec<String> = (0..BUCKETS).map(|i| format!("shard-{i}")).collect();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("user:{i}")).collect();
    let all = Shards::new(names.clone());
    let without_last = Shards::new(names[..names.len() - 1].to_vec());
    let dead = names[DEAD_SHARD.min(names.len() - 1)].clone();
    let without_dead = Shards::new(names.iter().filter(|n| **n != dead).cloned().collect());
    let moved = |after: &Shards| {
        keys.iter()
            .filter(|k| all.route(k) != after.route(k))
            .count()
    };
    let mut failure = Table::new(&["shard lost", "keys moved", "ideal"]);
    failure.row(&[
        format!("{} (the last one)", names[names.len() - 1]),
        percent(moved(&without_last) as u64, KEYS as u64),
        format!("{:.1}%", 100.0 / f64::from(BUCKETS)),
    ]);
    failure.row(&[
        format!("{dead} (in the middle)"),
        percent(moved(&without_dead) as u64, KEYS as u64),
        format!("{:.1}%", 100.0 / f64::from(BUCKETS)),
    ]);
    failure.print();
    println!(
        "\n(jump only knows bucket numbers: dropping {dead} shifts every later shard down by one)\n"
    );

    let mut cost = Table::new(&["buckets", "time per lookup (debug build)"]);
    for buckets in [10, 1_000, 1_000_000, i32::MAX] {
        let started = Instant::now();
        for &h in &hashes[..20_000] {
            black_box(jump(black_box(h), buckets));
        }
        let each = started.elapsed() / 20_000;
        cost.row(&[buckets.to_string(), format!("{each:.1?}")]);
    }
    cost.print();
    println!(
        "\nThe cost grows with ln(buckets): about one more jump each time n is multiplied by e."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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
                "jump({key:#x}, {buckets}): every implementation must agree. Check the LCG \
                 (key * 2862933555777941757 + 1, wrapping), the top 31 bits (key >> 33) + 1, \
                 and that the candidate is computed in f64 as (b + 1) * (2^31 / ((key >> 33) + 1))"
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

    #[test]
    fn shards_route_string_keys_through_jump() {
        let shards = Shards::new((0..5).map(|i| format!("shard-{i}")).collect());
        assert_eq!(
            shards.route("user:42"),
            format!("shard-{}", jump(stable_hash("user:42"), 5)),
            "the shard is names[jump(stable_hash(key), len)]"
        );
    }
}
