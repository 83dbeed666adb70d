// Click analytics — unique visitors per link in 16 KiB, whatever the traffic: a HyperLogLog.
//
// "How many different people clicked this link today?" An exact answer keeps every visitor id:
// 8 MB per link at a million visitors, for every link and every day. A HyperLogLog (Flajolet et
// al., 2007; Redis's PFADD/PFCOUNT) keeps 2^14 small registers instead and answers within about
// 1% (1.04/√16384 ≈ 0.81% standard error), and two of them merge into the counter of the union
// (site-wide uniques from per-link counters, or today from 24 hourly ones).
//
// The layout (fixed, so the tests can check it): hash the visitor with `hash64`; the top 14 bits
// pick the register, the rank is the position of the first 1 in the remaining 50 bits counted
// from the top (1 to 51); each register keeps the largest rank it saw. One byte per register: 16 KiB (Redis packs
// 6 bits each: 12 KiB). The property: duplicates never count; estimates within 2% from 0 to a
// million (exact for 0 and 1); merge gives exactly the registers of the union's counter.
//
// Lab: exact sets against the HyperLogLog at growing VISITORS: error and memory.

use sdlings_kit_shortener::clicks::hash64;

/// Bits of the hash that pick a register.
pub const P: u32 = 14;
/// 2^14 registers.
pub const REGISTERS: usize = 1 << P;

#[derive(Debug, Clone, PartialEq)]
pub struct HyperLogLog {
    /// One byte per register: the largest rank seen (0: none yet).
    registers: Vec<u8>,
}

impl Default for HyperLogLog {
    fn default() -> Self {
        Self::new()
    }
}

// ---- Your part -------------------------------------------------------------------------------

impl HyperLogLog {
    pub fn new() -> Self {
        HyperLogLog {
            registers: vec![0; REGISTERS],
        }
    }

    /// Counts one click by `visitor` (any id: a user id, a hashed IP...).
    pub fn add(&mut self, visitor: u64) {
        // Ids are not random (user 41, user 42): only their hash has random-looking bits.
        self.add_hash(hash64(visitor));
    }

    /// Records one hash: the top `P` bits pick the register, the rank of the rest goes in it.
    pub fn add_hash(&mut self, hash: u64) {
        let index = (hash >> (64 - P)) as usize;
        // The remaining 64 - P bits, moved to the top: the rank is the position of their first
        // 1 bit. All zeros (shifted in from the right) would count up to 64; the cap keeps the
        // rank within the 50 bits that were really drawn.
        let rest = hash << P;
        let rank = (rest.leading_zeros() + 1).min(64 - P + 1) as u8;
        let register = &mut self.registers[index];
        *register = (*register).max(rank);
    }

    /// The estimated number of distinct visitors.
    pub fn estimate(&self) -> u64 {
        let m = REGISTERS as f64;
        // The harmonic mean of 2^register, times m and the bias constant αm (the paper's
        // 0.7213 / (1 + 1.079/m), for m ≥ 128): one register that saw a huge rank by luck
        // barely moves a harmonic mean, where it would wreck an arithmetic one.
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self
            .registers
            .iter()
            .map(|&r| 2f64.powi(-i32::from(r)))
            .sum();
        let raw = alpha * m * m / sum;
        // Small range: while some registers are still empty, their count is a far better gauge
        // (linear counting): with V empty registers of m, about m·ln(m/V) visitors were seen.
        let empty = self.registers.iter().filter(|&&r| r == 0).count();
        let estimate = if raw <= 2.5 * m && empty > 0 {
            m * (m / empty as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }

    /// Makes this the counter of the union: each register keeps the larger of the two.
    pub fn merge(&mut self, other: &HyperLogLog) {
        for (mine, theirs) in self.registers.iter_mut().zip(&other.registers) {
            *mine = (*mine).max(*theirs);
        }
    }
}

impl HyperLogLog {
    /// The registers (given: for the tests and the lab).
    pub fn registers(&self) -> &[u8] {
        &self.registers
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// The numbers of distinct visitors to try; each clicks twice on average.
const VISITORS: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];
const LINKS: usize = 10;

fn main() {
    use sdlings_kit::lab::Table;
    use sdlings_kit::workload::seeded_rng;
    use sdlings_kit_shortener::clicks::click_stream;

    let mut table = Table::new(&[
        "visitors",
        "clicks",
        "HLL estimate",
        "error",
        "HLL memory",
        "exact set memory",
        "merged from links",
    ]);
    for (i, &visitors) in VISITORS.iter().enumerate() {
        let stream = click_stream(&mut seeded_rng(i as u64), visitors, 2 * visitors);
        // One counter per link (a click's link is its position mod LINKS), merged for the site.
        let mut per_link = vec![HyperLogLog::new(); LINKS];
        let mut site = HyperLogLog::new();
        for (n, &visitor) in stream.iter().enumerate() {
            per_link[n % LINKS].add(visitor);
            site.add(visitor);
        }
        let mut merged = HyperLogLog::new();
        per_link.iter().for_each(|h| merged.merge(h));
        let exact = visitors; // the stream has exactly that many distinct visitors
        let estimate = site.estimate();
        let error = (estimate as f64 - exact as f64) / exact as f64 * 100.0;
        table.row(&[
            exact.to_string(),
            stream.len().to_string(),
            estimate.to_string(),
            format!("{error:+.2}%"),
            format!("{} KiB", site.registers().len() / 1024),
            format!("{} KiB", exact * 8 / 1024),
            merged.estimate().to_string(),
        ]);
    }
    table.print();
    println!("\n(an exact set costs at least 8 bytes per visitor; a HashSet about twice that)");
}

#[cfg(test)]
mod tests {
    use sdlings_kit::workload::seeded_rng;
    use sdlings_kit_shortener::clicks::click_stream;

    use super::*;

    /// A hash whose top 14 bits are `index` and whose other 50 bits are `rest`.
    fn hash(index: u64, rest: u64) -> u64 {
        assert!(index < 1 << 14 && rest < 1 << 50);
        index << 50 | rest
    }

    fn counter_of(visitors: impl IntoIterator<Item = u64>) -> HyperLogLog {
        let mut hll = HyperLogLog::new();
        visitors.into_iter().for_each(|v| hll.add(v));
        hll
    }

    fn assert_within(estimate: u64, exact: u64, share: f64, what: &str) {
        let error = (estimate as f64 - exact as f64).abs();
        assert!(
            error <= share * exact as f64,
            "{what}: estimated {estimate} for {exact} distinct visitors, off by {:.2}% (at most \
             {:.0}% allowed)",
            error * 100.0 / exact as f64,
            share * 100.0
        );
    }

    #[test]
    fn the_top_14_bits_pick_the_register_and_it_holds_the_rank_of_the_other_50() {
        let cases = [
            (5, 1 << 49, 1, "the first of the 50 bits is 1: rank 1"),
            (6, 1 << 40, 10, "nine 0s, then a 1: rank 10"),
            (16_383, 1, 50, "the 1 is the last of the 50 bits: rank 50"),
            (0, 0, 51, "all 50 bits are 0: rank 51, the largest possible"),
        ];
        for (index, rest, rank, why) in cases {
            let mut hll = HyperLogLog::new();
            hll.add_hash(hash(index, rest));
            let r = hll.registers();
            assert_eq!(r.len(), REGISTERS, "2^14 one-byte registers");
            assert_eq!(r[index as usize], rank, "register {index}: {why}");
            assert_eq!(r.iter().filter(|&&x| x != 0).count(), 1, "one register set");
            assert_eq!(
                hll.estimate(),
                1,
                "one hash, one visitor (whatever its rank)"
            );
        }
    }

    #[test]
    fn a_register_keeps_the_largest_rank_it_saw() {
        let mut hll = HyperLogLog::new();
        hll.add_hash(hash(7, 1 << 40)); // rank 10
        hll.add_hash(hash(7, 1 << 47)); // rank 3
        assert_eq!(
            hll.registers()[7],
            10,
            "a smaller rank later does not lower the register"
        );
        hll.add_hash(hash(7, 1 << 30)); // rank 20
        assert_eq!(hll.registers()[7], 20);
    }

    #[test]
    fn no_visitors_estimate_zero_and_one_visitor_however_often_estimates_one() {
        let mut hll = HyperLogLog::new();
        assert_eq!(hll.estimate(), 0, "an empty counter has seen nobody");
        hll.add(42);
        assert_eq!(hll.estimate(), 1);
        for _ in 0..1_000 {
            hll.add(42);
        }
        assert_eq!(
            hll.estimate(),
            1,
            "one visitor clicking 1,001 times is one visitor"
        );
    }

    #[test]
    fn duplicate_clicks_change_nothing() {
        let stream = click_stream(&mut seeded_rng(5), 2_000, 50_000);
        let mut distinct = stream.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let once = counter_of(distinct.iter().copied());
        let all = counter_of(stream);
        assert!(
            once == all,
            "50,000 clicks by 2,000 visitors: the registers of the 2,000 alone"
        );
        assert_within(all.estimate(), 2_000, 0.02, "2,000 visitors");
    }

    #[test]
    fn estimates_are_within_two_percent_from_a_hundred_to_a_million_over_several_seeds() {
        for seed in 0..3u64 {
            // Visitor ids as a database hands them out: consecutive, from some offset.
            let first = seed * 1_000_000_007;
            let mut hll = HyperLogLog::new();
            let mut added = 0;
            for target in [100, 10_000, 20_000, 1_000_000] {
                for id in first + added..first + target {
                    hll.add(id);
                }
                added = target;
                let what = format!("seed {seed}, consecutive ids from {first}");
                assert_within(hll.estimate(), target, 0.02, &what);
            }
        }
    }

    #[test]
    fn small_counts_are_nearly_exact() {
        for seed in 0..5 {
            let stream = click_stream(&mut seeded_rng(seed), 100, 300);
            let estimate = counter_of(stream).estimate();
            assert!(
                (99..=101).contains(&estimate),
                "seed {seed}: 100 visitors among 16,384 registers are counted almost exactly \
                 (empty registers tell: linear counting), got {estimate}"
            );
        }
    }

    #[test]
    fn a_merge_is_exactly_the_counter_of_the_union() {
        let mut a = counter_of(0..60_000);
        let b = counter_of(40_000..100_000);
        let union = counter_of(0..100_000);
        let a_alone = a.clone();
        a.merge(&b);
        assert!(
            a == union,
            "merged registers = the registers of one counter fed both streams"
        );
        assert_eq!(a.estimate(), union.estimate());
        let mut again = a.clone();
        again.merge(&a_alone);
        again.merge(&HyperLogLog::new());
        assert!(
            again == union,
            "merging a part again, or an empty counter, changes nothing"
        );
    }

    #[test]
    fn the_counter_stays_16_kib_however_many_visitors() {
        let hll = counter_of(0..200_000);
        assert_eq!(
            hll.registers().len(),
            16_384,
            "2^14 registers of one byte: 16 KiB"
        );
        assert!(
            hll.registers().iter().all(|&r| r <= 51),
            "a rank is at most 51"
        );
    }
}
