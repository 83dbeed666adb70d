// Partitioner — which partition each record goes to: keyed records by their key's hash, keyless
// ones stuck to one partition until its batch is sent.
//
// A topic is split into partitions, and Kafka only orders records within a partition. An orders
// service keys each event by order id so that "created, paid, shipped" of one order land on one
// partition and are read in that order, whichever producer instance sent them. Keyless records
// (clickstream, logs) may go anywhere: what matters is that they travel in full batches.
//
// Build `partition_for_key` (the property: exactly Kafka's default, murmur2 of the key's bytes
// made positive, modulo the partitions, so every producer, in any language, agrees) and
// `StickyPartitioner` (KIP-480): a keyless record goes to the current sticky partition; when the
// producer starts a new batch on that partition it switches to another one, chosen at random.
// An empty key is a key.
//
// Lab: turn LINGER_TICKS up or PARTITIONS up and watch round-robin's batches shrink while the
// sticky partitioner keeps them full; KEYED_PERCENT at 100 makes both the same.

#[allow(unused_imports)] // yours to use
use rand::RngExt;
use rand::rngs::StdRng;
#[allow(unused_imports)] // yours to use
use sdlings_kit::partitioned_log::clients::murmur2;
use sdlings_kit::partitioned_log::clients::{Partitioner, ProducerKnobs, partitioner_lab};
use sdlings_kit::workload::seeded_rng;

// ---- Your part -------------------------------------------------------------------------------

/// The partition of a record with this key, as Kafka's default partitioner computes it, in
/// `0..partitions`. `murmur2` (from the kit) is Kafka's hash, returning Java's signed `int`.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    todo!("Kafka's default: murmur2 of the key, made positive, modulo the partitions")
}

#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct StickyPartitioner {
    partitions: u32,
    rng: StdRng,
    /// The partition keyless records go to; `None` until the first one.
    sticky: Option<u32>,
}

impl StickyPartitioner {
    /// A partitioner for a topic of `partitions` (at least 1) partitions; `seed` seeds its choices.
    pub fn new(partitions: u32, seed: u64) -> Self {
        StickyPartitioner {
            partitions,
            rng: seeded_rng(seed),
            sticky: None,
        }
    }
}

impl Partitioner for StickyPartitioner {
    /// Keyed records by `partition_for_key`; keyless ones to the sticky partition.
    fn partition(&mut self, key: Option<&[u8]>) -> u32 {
        todo!("a key decides alone; no key: the sticky partition (chosen at random the first time)")
    }

    /// The producer is about to start a new batch on `previous`.
    fn on_new_batch(&mut self, previous: u32) {
        todo!("if that is the sticky partition, switch to another one, at random")
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const PARTITIONS: u32 = 12;
/// Records per batch (Kafka's batch.size, counted in records here) and how long a batch may wait
/// for more (linger.ms; one record arrives per tick).
const BATCH_RECORDS: usize = 16;
const LINGER_TICKS: u64 = 40;
const KEYED_PERCENT: u32 = 10;
const RECORDS: u64 = 200_000;

fn main() {
    let knobs = ProducerKnobs {
        partitions: PARTITIONS,
        batch_records: BATCH_RECORDS,
        linger_ticks: LINGER_TICKS,
        keyed_percent: KEYED_PERCENT,
        records: RECORDS,
    };
    partitioner_lab(
        &knobs,
        StickyPartitioner::new(PARTITIONS, 1),
        partition_for_key,
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::RngExt;
    use sdlings_kit::partitioned_log::clients::{Producer, RoundRobin};

    use super::*;

    /// Kafka's `UtilsTest.testMurmur2`: keys and the `int` Java's `Utils.murmur2` returns.
    const KAFKA_VECTORS: [(&[u8], i32); 6] = [
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        (b"abc", 479_470_107),
    ];

    /// The reference: BuiltInPartitioner.partitionForKey, `toPositive(murmur2(key)) % n`.
    fn kafka(hash: i32, partitions: u32) -> u32 {
        (hash & 0x7fff_ffff) as u32 % partitions
    }

    #[test]
    fn keys_go_where_kafkas_default_partitioner_puts_them() {
        for (key, hash) in KAFKA_VECTORS {
            assert_eq!(murmur2(key), hash, "the kit's murmur2 is Kafka's");
            for n in [1, 2, 3, 4, 5, 7, 10, 12, 100, 1000] {
                assert_eq!(
                    partition_for_key(key, n),
                    kafka(hash, n),
                    "key {:?}, {n} partitions: murmur2 is {hash}; Kafka clears the sign bit \
                     (hash & 0x7fffffff, not abs) and takes it modulo {n}",
                    String::from_utf8_lossy(key)
                );
            }
        }
    }

    #[test]
    fn every_key_and_partition_count_agrees_with_kafka() {
        sdlings_kit::property::for_seeds(200, |rng| {
            let n = rng.random_range(1..300);
            for _ in 0..50 {
                let len = rng.random_range(0..12);
                let key: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                assert_eq!(
                    partition_for_key(&key, n),
                    kafka(murmur2(&key), n),
                    "key {key:?}, {n} partitions"
                );
            }
        });
    }

    #[test]
    fn keyed_records_ignore_the_sticky_partition_and_an_empty_key_is_a_key() {
        let mut p = StickyPartitioner::new(8, 3);
        let sticky = p.partition(None);
        for key in [&b""[..], b"21", b"abc"] {
            for _ in 0..3 {
                assert_eq!(
                    p.partition(Some(key)),
                    kafka(murmur2(key), 8),
                    "key {key:?} is hashed: an empty key is a key (hashed), not a missing one"
                );
            }
        }
        assert_eq!(
            p.partition(None),
            sticky,
            "keyed records leave the sticky partition alone"
        );
    }

    #[test]
    fn keyless_records_stick_to_one_partition_until_it_starts_a_new_batch() {
        sdlings_kit::property::for_seeds(50, |rng| {
            let n = rng.random_range(2..20);
            let mut p = StickyPartitioner::new(n, rng.random());
            let mut sticky = p.partition(None);
            for _ in 0..20 {
                for _ in 0..rng.random_range(1..20) {
                    assert_eq!(
                        p.partition(None),
                        sticky,
                        "no new batch yet: keyless records stay on partition {sticky}"
                    );
                }
                p.on_new_batch(sticky);
                let next = p.partition(None);
                assert!(
                    next < n && next != sticky,
                    "{n} partitions: after a new batch on {sticky} keyless records move to \
                     another partition, got {next}"
                );
                sticky = next;
            }
        });
    }

    #[test]
    fn a_new_batch_on_another_partition_does_not_move_the_sticky_one() {
        let mut p = StickyPartitioner::new(6, 4);
        let sticky = p.partition(None);
        for other in (0..6).filter(|&q| q != sticky) {
            p.on_new_batch(other);
            assert_eq!(
                p.partition(None),
                sticky,
                "a keyed record opened a batch on {other}: the sticky partition {sticky} keeps \
                 filling its own batch"
            );
        }
    }

    #[test]
    fn with_one_partition_everything_goes_to_partition_0() {
        let mut p = StickyPartitioner::new(1, 5);
        for _ in 0..10 {
            assert_eq!(p.partition(None), 0);
            p.on_new_batch(0);
            assert_eq!(
                p.partition(None),
                0,
                "there is no other partition to switch to"
            );
            assert_eq!(p.partition(Some(b"k")), 0);
        }
    }

    #[test]
    fn per_key_order_survives_interleaved_producers() {
        sdlings_kit::property::for_seeds(20, |rng| {
            let n = rng.random_range(1..10);
            let mut producers: Vec<Producer<StickyPartitioner>> = (0..3)
                .map(|i| Producer::new(StickyPartitioner::new(n, i), n, 8, 30))
                .collect();
            // The broker's log: per partition, (producer, key, value) in arrival order.
            let mut log: Vec<Vec<(usize, Option<Vec<u8>>, u64)>> = vec![Vec::new(); n as usize];
            for v in 0..600 {
                let who = rng.random_range(0..3);
                let key = (rng.random_range(0..3) > 0).then(|| vec![rng.random_range(0..20u8)]);
                producers[who].send(key.as_deref(), v);
                if v == 599 {
                    producers.iter_mut().for_each(|p| p.flush());
                }
                for (i, producer) in producers.iter_mut().enumerate() {
                    for batch in producer.take_sent() {
                        let log = &mut log[batch.partition as usize];
                        log.extend(batch.records.into_iter().map(|(k, v)| (i, k, v)));
                    }
                }
            }
            let mut home: HashMap<Vec<u8>, usize> = HashMap::new();
            let mut last: HashMap<(usize, Vec<u8>), u64> = HashMap::new();
            for (partition, records) in log.iter().enumerate() {
                for (who, key, value) in records {
                    let Some(key) = key else { continue };
                    let at = *home.entry(key.clone()).or_insert(partition);
                    assert_eq!(
                        at, partition,
                        "key {key:?} is on partitions {at} and {partition}"
                    );
                    let prev = last.insert((*who, key.clone()), *value);
                    assert!(
                        prev < Some(*value),
                        "producer {who} sent key {key:?} as {prev:?} then {value}: the partition \
                         must hold them in that order"
                    );
                }
            }
        });
    }

    fn keyless_batches<P: Partitioner>(p: P, n: u32) -> Vec<usize> {
        let mut producer = Producer::new(p, n, 16, 24);
        for v in 0..4_000 {
            producer.send(None, v);
        }
        producer.flush();
        producer
            .take_sent()
            .iter()
            .map(|b| b.records.len())
            .collect()
    }

    #[test]
    fn keyless_records_fill_fewer_fuller_batches_than_round_robin() {
        let by_key = partition_for_key;
        let rr = keyless_batches(
            RoundRobin {
                partitions: 8,
                next: 0,
                by_key,
            },
            8,
        );
        let sticky = keyless_batches(StickyPartitioner::new(8, 11), 8);
        assert_eq!(
            sticky.iter().sum::<usize>(),
            4_000,
            "every record is sent once"
        );
        assert_eq!(
            sticky.len(),
            250,
            "4000 keyless records, batches of 16 filled in 16 ticks before the 24-tick linger: \
             250 full batches (round-robin sent {})",
            rr.len()
        );
    }

    #[test]
    fn keyless_records_spread_over_all_partitions_over_time() {
        for seed in 0..3 {
            let mut producer = Producer::new(StickyPartitioner::new(4, seed), 4, 16, 100);
            let mut per = [0u32; 4];
            for v in 0..16_000 {
                per[producer.send(None, v) as usize] += 1;
            }
            for (partition, &n) in per.iter().enumerate() {
                assert!(
                    (2_400..=5_600).contains(&n),
                    "seed {seed}: partition {partition} got {n} of 16000 keyless records, \
                     expected about a quarter: {per:?}; the next partition is chosen at random"
                );
            }
        }
    }

    #[test]
    fn the_first_and_every_next_sticky_partition_is_drawn_uniformly_at_random() {
        let firsts: std::collections::HashSet<u32> = (0..40)
            .map(|seed| StickyPartitioner::new(8, seed).partition(None))
            .collect();
        assert!(
            firsts.len() >= 5,
            "40 partitioners of 8 partitions all started on {firsts:?}: the first is random"
        );
        // Each switch steps (new - old) mod 5 partitions on: 1, 2, 3, 4 about 1000 times each.
        let (mut p, mut steps) = (StickyPartitioner::new(5, 7), [0u32; 5]);
        let mut old = p.partition(None);
        for _ in 0..4_000 {
            p.on_new_batch(old);
            let new = p.partition(None);
            steps[((new + 5 - old) % 5) as usize] += 1;
            old = new;
        }
        assert!(
            steps[1..].iter().all(|n| (880..=1_120).contains(n)),
            "5 partitions, 4000 switches by step 0..5: {steps:?}; each of the 4 others is \
             equally likely, not the next in turn nor the one after the old"
        );
    }
}
