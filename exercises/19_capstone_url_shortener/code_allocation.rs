// Code allocation — short codes from id ranges leased off one shared counter.
//
// A shortener turns an id into a short code: id 1,000,000 is `4c92` in base 62 (digits, a–z,
// A–Z); seven characters cover 3.5 trillion links. Ids must never repeat across servers, but
// asking a shared store for each one makes it the bottleneck of every write. So each server
// leases a whole range (say 1,000 ids) with one compare-and-set on a versioned counter (as
// topic 13's `cas_election` took a leader key) and hands ids out from memory.
//
// The property: over any interleaving of allocations, renewals, a rival server leasing between
// your read and your write, and crashes, no id is handed out twice; a crash wastes the rest of
// its range, never reuses it; one store write per `lease` ids. Codes are plain base 62 of the id
// (consecutive links get consecutive codes: stated, not hidden); no leading zeros.
//
// Lab: turn LEASES: small leases cost a store write every few codes, big ones waste more ids
// per crash.

use std::sync::Arc;

use sdlings_kit_shortener::alloc::CounterStore;

// ---- Your part -------------------------------------------------------------------------------

/// Digits of base 62, by value: '0'..'9' are 0..9, 'a'..'z' 10..35, 'A'..'Z' 36..61.
pub const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The base-62 code of `id`, most significant digit first ("0" for 0).
pub fn encode(id: u64) -> String {
    todo!("the digits of {id} in base 62, most significant first")
}

/// The id of `code`; `None` if it is not the code of any id: empty, a character outside the
/// alphabet, a leading zero ("007" is not how 7 is spelled), or a value beyond `u64::MAX`.
pub fn decode(code: &str) -> Option<u64> {
    todo!("the id of {code:?}, refusing anything encode would never produce")
}

/// One server's allocator: hands out ids from the range it leased last, and leases the next
/// range from the shared counter when that one is used up.
#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct RangeAllocator {
    store: Arc<CounterStore>,
    /// How many ids one lease takes.
    lease: u64,
    /// The next id to hand out, and the end (exclusive) of the leased range: empty at first.
    next: u64,
    end: u64,
}

impl RangeAllocator {
    pub fn new(store: Arc<CounterStore>, lease: u64) -> Self {
        assert!(lease > 0, "a lease of zero ids would never hand one out");
        RangeAllocator {
            store,
            lease,
            next: 0,
            end: 0,
        }
    }

    /// A fresh id, never handed out before by any server.
    pub fn next_id(&mut self) -> u64 {
        todo!(
            "hand out the next id of the leased range; lease a new range (store.read, store.compare_and_set) when it is used up"
        )
    }

    /// The code of a fresh id.
    pub fn next_code(&mut self) -> String {
        encode(self.next_id())
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// The lease sizes to compare.
const LEASES: [u64; 5] = [1, 10, 100, 1_000, 10_000];
const SERVERS: usize = 4;
const CODES: u64 = 200_000;
/// One server crashes (and restarts with an empty range) every this many codes.
const CRASH_EVERY: u64 = 7_919;

fn main() {
    use sdlings_kit::lab::{Table, percent};
    println!("{CODES} codes from {SERVERS} servers taking turns, a crash every {CRASH_EVERY}:\n");
    let mut table = Table::new(&[
        "lease",
        "store writes",
        "writes / 1k codes",
        "ids leased, unused",
        "share wasted",
        "longest code",
    ]);
    for lease in LEASES {
        let store = CounterStore::new(0);
        let mut servers: Vec<_> = (0..SERVERS)
            .map(|_| RangeAllocator::new(store.clone(), lease))
            .collect();
        let mut longest = 0;
        for i in 0..CODES {
            let server = (i as usize) % SERVERS;
            if i > 0 && i % CRASH_EVERY == 0 {
                servers[server] = RangeAllocator::new(store.clone(), lease);
            }
            longest = longest.max(servers[server].next_code().len());
        }
        let leased = store.peek().value;
        table.row(&[
            lease.to_string(),
            store.writes().to_string(),
            format!("{:.1}", store.writes() as f64 * 1000.0 / CODES as f64),
            (leased - CODES).to_string(),
            percent(leased - CODES, leased),
            longest.to_string(),
        ]);
    }
    table.print();
    println!(
        "\nEvery crash throws away the rest of one range; seven characters cover {} ids.",
        62u64.pow(7)
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::RngExt;
    use sdlings_kit::property::for_seeds;
    use sdlings_kit::workload::seeded_rng;

    use super::*;

    #[test]
    fn encode_known_answers_most_significant_digit_first() {
        let cases = [
            (0, "0"),
            (9, "9"),
            (10, "a"),
            (35, "z"),
            (36, "A"),
            (61, "Z"),
            (62, "10"),
            (125, "21"),
            (3_843, "ZZ"),
            (3_844, "100"),
            (1_000_000, "4c92"),
            (56_800_235_583, "ZZZZZZ"),
            (u64::MAX, "lYGhA16ahyf"),
        ];
        for (id, code) in cases {
            assert_eq!(encode(id), code, "id {id} in base 62 (0-9, a-z, A-Z)");
            assert_eq!(decode(code), Some(id), "{code:?} decodes back to {id}");
        }
    }

    #[test]
    fn decode_refuses_what_is_not_a_code() {
        for bad in ["", "-", "ab-c", "a b", "é", "4c92/", "007", "00"] {
            assert_eq!(decode(bad), None, "{bad:?} is not the code of any id");
        }
        assert_eq!(decode("0"), Some(0), "\"0\" alone is the code of 0");
    }

    #[test]
    fn decode_refuses_values_beyond_u64_instead_of_wrapping() {
        assert_eq!(decode("lYGhA16ahyf"), Some(u64::MAX));
        for big in ["lYGhA16ahyg", "lYGhA16ahz0", "zzzzzzzzzzzz", "100000000000"] {
            assert_eq!(
                decode(big),
                None,
                "{big:?} is above u64::MAX: refuse, never wrap"
            );
        }
    }

    #[test]
    fn encode_and_decode_round_trip_over_random_ids() {
        for_seeds(20, |rng| {
            for _ in 0..500 {
                let bits = rng.random_range(0..=64u32);
                let id = rng.random::<u64>().checked_shr(64 - bits).unwrap_or(0);
                let code = encode(id);
                assert_eq!(decode(&code), Some(id), "{id} encodes to {code:?}");
            }
        });
    }

    #[test]
    fn one_server_hands_out_consecutive_ids_with_one_store_write_per_lease() {
        let store = CounterStore::new(0);
        let mut server = RangeAllocator::new(store.clone(), 1_000);
        let ids: Vec<u64> = (0..2_500).map(|_| server.next_id()).collect();
        assert_eq!(
            ids,
            (0..2_500).collect::<Vec<_>>(),
            "ids 0, 1, 2... from the leased ranges"
        );
        assert_eq!(
            store.writes(),
            3,
            "2,500 ids with leases of 1,000 take three leases, so three store writes"
        );
        assert_eq!(
            store.peek().value,
            3_000,
            "the counter sits after the third range"
        );
    }

    #[test]
    fn a_lease_of_one_id_still_works_at_one_write_per_id() {
        let store = CounterStore::new(7);
        let mut server = RangeAllocator::new(store.clone(), 1);
        let ids: Vec<u64> = (0..5).map(|_| server.next_id()).collect();
        assert_eq!(ids, vec![7, 8, 9, 10, 11], "the counter starts at 7");
        assert_eq!(store.writes(), 5);
        assert_eq!(server.next_code(), "c", "id 12 is \"c\"");
    }

    #[test]
    fn two_servers_take_disjoint_ranges() {
        let store = CounterStore::new(0);
        let mut a = RangeAllocator::new(store.clone(), 10);
        let mut b = RangeAllocator::new(store.clone(), 10);
        assert_eq!((a.next_id(), b.next_id(), a.next_id()), (0, 10, 1));
        let a_ids: Vec<u64> = (0..9).map(|_| a.next_id()).collect();
        assert_eq!(
            a_ids,
            vec![2, 3, 4, 5, 6, 7, 8, 9, 20],
            "a's range 0..10, then 20..30"
        );
    }

    #[test]
    fn a_crash_wastes_the_rest_of_its_range_and_never_reuses_it() {
        let store = CounterStore::new(0);
        let mut a = RangeAllocator::new(store.clone(), 10);
        assert_eq!(
            (0..3).map(|_| a.next_id()).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        drop(a); // crash: the range lived only in memory
        let mut restarted = RangeAllocator::new(store.clone(), 10);
        assert_eq!(
            restarted.next_id(),
            10,
            "ids 3..10 are lost with the crash; the restarted server leases 10..20, never 0..10"
        );
    }

    #[test]
    fn a_lost_compare_and_set_is_retried_from_the_counter_as_it_now_is() {
        // The rival leases 0..5 between our read and our write, every time.
        let store = CounterStore::with_rival(0, seeded_rng(0), 1.0, 5);
        let mut server = RangeAllocator::new(store.clone(), 10);
        assert_eq!(
            server.next_id(),
            5,
            "the rival took 0..5 first: our range is 5..15"
        );
        assert_eq!(store.rival_ranges(), vec![0..5]);
        assert_eq!(store.peek().value, 15);
    }

    #[test]
    fn no_id_is_ever_handed_out_twice_over_random_interleavings_rivals_and_crashes() {
        for_seeds(100, |rng| {
            let start = rng.random_range(0..1_000);
            let share = rng.random_range(0.0..0.6);
            let rival_lease = rng.random_range(1..20);
            let store =
                CounterStore::with_rival(start, seeded_rng(rng.random()), share, rival_lease);
            let leases: Vec<u64> = (0..3).map(|_| rng.random_range(1..15)).collect();
            let mut servers: Vec<_> = leases
                .iter()
                .map(|&l| RangeAllocator::new(store.clone(), l))
                .collect();
            let mut handed: HashSet<u64> = HashSet::new();
            let mut order = Vec::new();
            for _ in 0..600 {
                let s = rng.random_range(0..servers.len());
                if rng.random_bool(0.03) {
                    servers[s] = RangeAllocator::new(store.clone(), leases[s]);
                    order.push(format!("crash {s}"));
                    continue;
                }
                let id = servers[s].next_id();
                order.push(format!("{s}:{id}"));
                assert!(
                    handed.insert(id),
                    "id {id} was handed out twice (store leases {leases:?}, rival share {share:.2}); \
                     last steps: {:?}",
                    &order[order.len().saturating_sub(12)..]
                );
                assert!(
                    id >= start && id < store.peek().value,
                    "id {id} was handed out but the counter is at {}: only ids of a range won by \
                     compare-and-set are yours (the counter starts at {start})",
                    store.peek().value
                );
            }
            for range in store.rival_ranges() {
                if let Some(id) = range.clone().find(|id| handed.contains(id)) {
                    panic!(
                        "id {id} belongs to the rival's range {range:?}, leased between your read and write"
                    );
                }
            }
        });
    }
}
