// UUIDv7 — 128-bit ids that sort by creation time, minted anywhere without coordination.
//
// Random (v4) UUIDs scatter inserts over a database index, each dirtying a different page. UUIDv7
// (RFC 9562, 2024; PostgreSQL 18's `uuidv7()`) starts with a 48-bit Unix-millisecond timestamp,
// so new ids land at the end of the index like an auto-increment key, yet any process mints them.
//
// Build `Uuid::v7` (the RFC's layout: unix_ts_ms, version 7, rand_a, variant 0b10, rand_b, each
// field cut to its width), the canonical text form (8-4-4-4-12 lowercase hex) and
// `UuidV7Gen::next`. The property: a generator's ids strictly increase, as bytes and as text,
// within a millisecond and when the clock steps back. rand_a is a 12-bit counter (§6.2, method
// 1): a new millisecond seeds it at random below 0x800; otherwise it adds one (keeping the last
// timestamp if the clock is behind it); past 0xFFF the timestamp moves a millisecond ahead and
// the counter is seeded again. rand_b is fresh from the injected rng for every id.
//
// Lab: inserts into a simulated index; compare the pages v4 and v7 keys touch (PAGE_KEYS, BATCH).

use std::fmt;

#[allow(unused_imports)] // for your generator (random numbers from `self.rng`)
use rand::{Rng, RngExt};
use sdlings_kit::ids_and_clocks::{IndexKnobs, StepClock, WallClock, index_lab};

/// A UUID: 16 bytes, most significant first, so comparing bytes compares the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(pub [u8; 16]);

// ---- Your part -------------------------------------------------------------------------------

#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct UuidV7Gen<C: WallClock, R: Rng> {
    clock: C,
    rng: R,
    /// The (unix_ts_ms, counter) of the last id made; `None` before the first.
    last: Option<(u64, u16)>,
}

impl Uuid {
    /// The UUIDv7 with these fields: the low 48 bits of `unix_ts_ms`, the low 12 of `rand_a`,
    /// the low 62 of `rand_b`.
    pub fn v7(unix_ts_ms: u64, rand_a: u16, rand_b: u64) -> Uuid {
        todo!("lay out {unix_ts_ms:#x}, the version, {rand_a:#x}, the variant and {rand_b:#x}")
    }
}

impl fmt::Display for Uuid {
    /// The canonical form: 32 lowercase hex digits in groups of 8-4-4-4-12.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f; // (only silences "unused variable" until you use `f`: delete it)
        todo!("write the 16 bytes as hex, with hyphens between the groups")
    }
}

impl<C: WallClock, R: Rng> UuidV7Gen<C, R> {
    pub fn new(clock: C, rng: R) -> Self {
        UuidV7Gen {
            clock,
            rng,
            last: None,
        }
    }

    /// The next id: greater than every id this generator made before.
    pub fn next(&mut self) -> Uuid {
        todo!("pick the timestamp and counter from the clock and the last id, then draw rand_b")
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Keys inserted in all, in batches of BATCH (one batch ~ one checkpoint of dirty pages).
const KEYS: usize = 100_000;
const BATCH: usize = 1_000;
/// Keys per leaf page (an 8 KiB page of 16-byte keys plus row pointers holds a few hundred).
const PAGE_KEYS: usize = 200;
/// Ids made per millisecond by the v7 generator.
const IDS_PER_MS: usize = 20;

fn main() {
    let clock = StepClock::at(1_767_225_600_000);
    let mut ids = UuidV7Gen::new(clock.clone(), sdlings_kit::workload::seeded_rng(7));
    let mut made = 0;
    let v7 = move || {
        made += 1;
        if made % IDS_PER_MS == 0 {
            clock.advance(1);
        }
        u128::from_be_bytes(ids.next().0)
    };
    let knobs = IndexKnobs {
        keys: KEYS,
        batch: BATCH,
        page_keys: PAGE_KEYS,
    };
    index_lab(knobs, v7);
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use sdlings_kit::workload::seeded_rng;

    use super::*;

    /// (unix_ts_ms, version, rand_a, variant, rand_b), read straight from the bytes.
    fn fields(id: Uuid) -> (u64, u8, u16, u8, u64) {
        let v = u128::from_be_bytes(id.0);
        let ts = (v >> 80) as u64;
        let rand_b = v as u64 & ((1 << 62) - 1);
        (
            ts,
            (v >> 76) as u8 & 0xF,
            (v >> 64) as u16 & 0xFFF,
            (v >> 62) as u8 & 0b11,
            rand_b,
        )
    }

    /// The reference text form: the same bytes as the ecosystem's `uuid::Uuid` prints them
    /// (canonical, lowercase).
    fn text(id: Uuid) -> String {
        uuid::Uuid::from_bytes(id.0).hyphenated().to_string()
    }

    fn generator(ms: u64, seed: u64) -> (StepClock, UuidV7Gen<StepClock, rand::rngs::StdRng>) {
        let clock = StepClock::at(ms);
        (clock.clone(), UuidV7Gen::new(clock, seeded_rng(seed)))
    }

    #[test]
    fn matches_the_rfc_9562_example() {
        // RFC 9562, appendix A.6: 2022-02-22T19:22:22Z, rand_a 0xCC3, rand_b 0x18C4DC0C0C07398F.
        let id = Uuid::v7(0x017F_22E2_79B0, 0xCC3, 0x18C4_DC0C_0C07_398F);
        assert_eq!(id.to_string(), "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
        let theirs = uuid::Uuid::from_bytes(id.0);
        assert_eq!(
            (theirs.get_version_num(), theirs.get_variant()),
            (7, uuid::Variant::RFC4122),
            "the `uuid` crate reads these bytes as version 7, RFC variant"
        );
        assert_eq!(
            u128::from_be_bytes(id.0),
            0x017F22E2_79B0_7CC3_98C4_DC0C0C07398F
        );
    }

    #[test]
    fn the_text_form_keeps_leading_zeros_and_sets_version_and_variant_whatever_the_fields() {
        let cases = [
            ((0, 0, 0), "00000000-0000-7000-8000-000000000000"),
            (
                (u64::MAX, u16::MAX, u64::MAX),
                "ffffffff-ffff-7fff-bfff-ffffffffffff",
            ),
            (
                (1 << 48 | 0x0A, 0x1_00B, 1 << 62 | 0xC),
                "00000000-000a-700b-8000-00000000000c",
            ),
            (
                (0x0102_0304_0506, 0x708, 0x090A_0B0C_0D0E_0F10),
                "01020304-0506-7708-890a-0b0c0d0e0f10",
            ),
        ];
        for ((ts, a, b), expected) in cases {
            let id = Uuid::v7(ts, a, b);
            assert_eq!(text(id), expected, "the `uuid` crate prints these bytes so");
            assert_eq!(
                id.to_string(),
                expected,
                "v7({ts:#x}, {a:#x}, {b:#x}): each field keeps only its low bits (48, 12, 62), \
                 so the version (7) and variant (0b10) bits are never overwritten"
            );
        }
    }

    #[test]
    fn ids_in_one_millisecond_count_up_and_sort_as_bytes_and_as_text() {
        let (_clock, mut ids) = generator(1_700_000_000_000, 1);
        let batch: Vec<Uuid> = (0..50).map(|_| ids.next()).collect();
        let (ts, _, first, _, _) = fields(batch[0]);
        assert_eq!(
            ts, 1_700_000_000_000,
            "the timestamp is the clock's reading"
        );
        assert!(
            first < 0x800,
            "a new millisecond seeds the counter below 0x800, got {first:#x}"
        );
        for (i, pair) in batch.windows(2).enumerate() {
            assert_eq!(
                fields(pair[1]).2,
                first + i as u16 + 1,
                "the counter adds one per id"
            );
            assert!(
                pair[0] < pair[1],
                "ids made in one millisecond must increase as bytes"
            );
            assert!(pair[0].to_string() < pair[1].to_string(), "and as text");
        }
        let rand_b: HashSet<u64> = batch.iter().map(|&id| fields(id).4).collect();
        assert_eq!(
            rand_b.len(),
            50,
            "rand_b is fresh randomness for every id, not per ms"
        );
    }

    #[test]
    fn a_counter_past_0xfff_moves_the_timestamp_a_millisecond_ahead() {
        let mut reseeded = HashSet::new();
        for seed in 0..8 {
            let (clock, mut ids) = generator(5_000, seed);
            let start = fields(ids.next()).2;
            let mut last = ids.next();
            for _ in start + 2..=0xFFF {
                last = ids.next();
            }
            assert_eq!(
                fields(last).2,
                0xFFF,
                "the counter counts up to 0xFFF in one ms"
            );
            let ahead = ids.next();
            let (ts, _, counter, _, _) = fields(ahead);
            assert_eq!(
                ts, 5_001,
                "the counter is used up: run the timestamp one ms ahead"
            );
            assert!(
                counter < 0x800,
                "and seed the counter again, below 0x800, not {counter:#x}"
            );
            assert!(last < ahead);
            reseeded.insert(counter);
            clock.advance(1);
            assert_eq!(
                fields(ids.next()).2,
                counter + 1,
                "the clock has only caught up with the timestamp in use: the counter goes on"
            );
        }
        assert!(
            reseeded.len() > 4,
            "after a rollover the counter is seeded at random: {reseeded:?}"
        );
    }

    #[test]
    fn a_clock_that_steps_back_keeps_the_last_timestamp_and_counts_on() {
        let (clock, mut ids) = generator(9_000, 3);
        let a = ids.next();
        clock.step_back(1_000);
        let b = ids.next();
        assert_eq!(
            fields(b).0,
            9_000,
            "never a timestamp below one already used"
        );
        assert_eq!(fields(b).2, fields(a).2 + 1);
        assert!(a < b, "and so the ids still increase");
    }

    #[test]
    fn counters_and_rand_b_come_from_the_injected_rng_and_use_all_their_bits() {
        let (clock, mut ids) = generator(1, 4);
        let (mut starts, mut seen_b) = (Vec::new(), 0u64);
        for _ in 0..10_000 {
            clock.advance(1);
            let id = ids.next();
            starts.push(fields(id).2);
            seen_b |= fields(id).4;
        }
        let distinct: HashSet<u16> = starts.iter().copied().collect();
        assert!(
            distinct.len() > 1_900,
            "a new millisecond's counter is random over 0..0x800: {} distinct seeds in 10000",
            distinct.len()
        );
        let top = starts.iter().max();
        assert_eq!(
            top,
            Some(&0x7FF),
            "seeded over all of 0..0x800, the top value included, never 0x800 itself"
        );
        assert_eq!(seen_b, (1 << 62) - 1, "rand_b draws all 62 bits");
        let first_ids = |seed| {
            let (clock, mut ids) = generator(1, seed);
            (0..3)
                .map(|_| (clock.advance(1), ids.next()).1)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            first_ids(4),
            first_ids(4),
            "the same seed gives the same ids"
        );
        assert_ne!(first_ids(4), first_ids(5), "another seed gives other ids");
    }

    #[test]
    fn strictly_increasing_ids_over_random_clocks_as_the_counter_rules_say() {
        sdlings_kit::property::for_seeds(50, |rng| {
            let start = rng.random_range(10..1 << 47);
            let (clock, mut ids) = generator(start, rng.random());
            // One case in five has a burst that rolls the counter over.
            let burst_at = if rng.random_range(0..5) == 0 {
                rng.random_range(0..40)
            } else {
                40
            };
            let mut last: Option<(u64, u16, Uuid)> = None;
            let mut last_text = String::new();
            for step in 0..40 {
                match rng.random_range(0..8) {
                    0..3 => clock.advance(rng.random_range(1..3)),
                    3 => clock.advance(rng.random_range(10..10_000)),
                    4 => clock.step_back(rng.random_range(1..5)),
                    _ => {}
                }
                let calls = if step == burst_at {
                    4_200
                } else {
                    rng.random_range(1..8)
                };
                for _ in 0..calls {
                    let now = clock.now_ms();
                    let id = ids.next();
                    let (ts, version, counter, variant, _) = fields(id);
                    let why = || {
                        format!(
                            "step {step}, clock {now}, last id (ts, counter, id) {last:?}, then ({ts}, {counter:#x}) {id:?}"
                        )
                    };
                    assert_eq!((version, variant), (7, 0b10), "{}", why());
                    let expected_counter_ok = match last {
                        None => ts == now && counter < 0x800,
                        Some((lts, _, _)) if now > lts => ts == now && counter < 0x800,
                        Some((lts, 0xFFF, _)) => ts == lts + 1 && counter < 0x800,
                        Some((lts, lc, _)) => ts == lts && counter == lc + 1,
                    };
                    assert!(
                        expected_counter_ok,
                        "{}: a clock past the last timestamp starts it again with a counter \
                         below 0x800; otherwise keep the timestamp and add one to the counter, \
                         or past 0xFFF move a millisecond ahead with a counter below 0x800",
                        why()
                    );
                    assert!(
                        last.is_none_or(|l| l.2 < id),
                        "{}: ids must increase",
                        why()
                    );
                    if calls < 100 {
                        let text_form = id.to_string();
                        assert_eq!(text_form, text(id), "the canonical text form");
                        assert!(last_text < text_form, "{}: also as text", why());
                        last_text = text_form;
                    }
                    last = Some((ts, counter, id));
                }
            }
        });
    }
}
