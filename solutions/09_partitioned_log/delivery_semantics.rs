// Delivery semantics — what a consumer crash costs: a record lost, a record applied twice, or
// nothing, depending on when the consumer commits and whether its sink deduplicates.
//
// A consumer applies each record's effect (credits an account) and commits its offset so that,
// after a restart, its group resumes past it. The process can die between the two. A payments
// team that commits first loses a payment on a crash; one that commits after charges it twice,
// unless the sink remembers what it applied.
//
// Build `handle`: process one poll's records in order, committing each as you go (the committed
// offset is the next one to read). `AtMostOnce`: a crash may lose the record in flight, never
// repeat it. `AtLeastOnce`: may repeat it, never lose it. `ExactlyOnce`: each effect exactly once:
// the sink stores each partition's last applied offset atomically with the effect, and a record
// already applied is skipped. A crash (`Err(Crashed)`) ends the call at once.
//
// Lab (real sockets): a broker and a consumer group on localhost; turn CRASHES up and move
// CRASH_POINT, and compare duplicates and losses per mode.

use sdlings_kit::partitioned_log::clients::{
    Consumer, ConsumerRecord, CrashPoint, Crashed, DeliveryKnobs, Semantics, Sink, delivery_lab,
};

// ---- Your part -------------------------------------------------------------------------------

/// Processes `records` (one poll, in order) with the given semantics: applies each record's
/// effect to `sink` and commits it to `consumer`. Returns `Err(Crashed)` as soon as a call does.
pub fn handle(
    semantics: Semantics,
    records: &[ConsumerRecord],
    consumer: &mut Consumer,
    sink: &mut Sink,
) -> Result<(), Crashed> {
    for record in records {
        // Kafka commits the offset of the next record to read.
        let next = record.offset + 1;
        match semantics {
            Semantics::AtMostOnce => {
                // Committed first: a crash before the effect skips the record for good.
                consumer.commit(record.partition, next)?;
                sink.apply(record)?;
            }
            Semantics::AtLeastOnce => {
                // Applied first: a crash before the commit reads it (and applies it) again.
                sink.apply(record)?;
                consumer.commit(record.partition, next)?;
            }
            Semantics::ExactlyOnce => {
                // At least once, made idempotent: the sink knows the last offset it applied for
                // this partition (offsets only grow within a partition), in the same transaction
                // as the effect, so a redelivered record is recognised and skipped.
                let applied = sink.stored_offset(record.partition);
                if applied.is_none_or(|last| record.offset > last) {
                    sink.apply_and_store_offset(record)?;
                }
                consumer.commit(record.partition, next)?;
            }
        }
    }
    Ok(())
}

// ---- Lab -------------------------------------------------------------------------------------

const PARTITIONS: u32 = 6;
const CONSUMERS: usize = 3;
const RECORDS: u64 = 6_000;
/// Crashes injected into consumer 0, spread over its records, and where around a record.
const CRASHES: usize = 5;
const CRASH_POINT: CrashPoint = CrashPoint::AfterProcess;

fn main() {
    let knobs = DeliveryKnobs {
        partitions: PARTITIONS,
        consumers: CONSUMERS,
        records: RECORDS,
        crashes: CRASHES,
        crash_point: CRASH_POINT,
    };
    delivery_lab(&knobs, handle);
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use rand::RngExt;
    use sdlings_kit::partitioned_log::clients::{
        Crash, CrashPoint, Outcome, run_consumer, sample_log,
    };

    use super::*;

    const MODES: [Semantics; 3] = [
        Semantics::AtMostOnce,
        Semantics::AtLeastOnce,
        Semantics::ExactlyOnce,
    ];

    fn run(mode: Semantics, lengths: &[u64], poll_max: usize, crashes: &[Crash]) -> Outcome {
        let mut handler =
            |r: &[ConsumerRecord], c: &mut Consumer, s: &mut Sink| handle(mode, r, c, s);
        run_consumer(sample_log(lengths), poll_max, crashes, &mut handler)
    }

    fn offsets(o: &Outcome, partition: u32) -> Vec<u64> {
        let mine = o.effects.iter().filter(|r| r.partition == partition);
        mine.map(|r| r.offset).collect()
    }

    fn crash(point: CrashPoint, partition: u32, offset: u64) -> Crash {
        Crash {
            point,
            partition,
            offset,
        }
    }

    #[test]
    fn without_crashes_every_mode_applies_each_record_once_and_commits_the_next_offset() {
        for mode in MODES {
            let o = run(mode, &[4, 0, 3], 3, &[]);
            assert_eq!(
                offsets(&o, 0),
                [0, 1, 2, 3],
                "{mode:?}: partition 0, in order"
            );
            assert_eq!(offsets(&o, 2), [0, 1, 2], "{mode:?}: partition 2, in order");
            assert_eq!(
                o.committed,
                [4, 0, 3],
                "{mode:?}: the committed offset is the next record to read (last offset + 1)"
            );
        }
    }

    #[test]
    fn at_least_once_repeats_the_record_in_flight_when_the_crash_falls_between_process_and_commit()
    {
        let o = run(
            Semantics::AtLeastOnce,
            &[5],
            5,
            &[crash(CrashPoint::AfterProcess, 0, 2)],
        );
        assert_eq!(
            offsets(&o, 0),
            [0, 1, 2, 2, 3, 4],
            "record 2 was applied, then the process died before committing it: after the \
             restart it is read and applied again (one duplicate), nothing else"
        );
        let o = run(
            Semantics::AtLeastOnce,
            &[5],
            5,
            &[crash(CrashPoint::BeforeProcess, 0, 2)],
        );
        assert_eq!(
            offsets(&o, 0),
            [0, 1, 2, 3, 4],
            "died before applying 2: it is redone"
        );
        assert_eq!(
            o.restarts, 1,
            "a crash ends the call: return Err(Crashed) at once"
        );
    }

    #[test]
    fn at_most_once_loses_the_record_in_flight_when_the_crash_falls_between_commit_and_process() {
        for point in [CrashPoint::BeforeProcess, CrashPoint::AfterCommit] {
            let o = run(Semantics::AtMostOnce, &[5], 5, &[crash(point, 0, 2)]);
            assert_eq!(
                offsets(&o, 0),
                [0, 1, 3, 4],
                "{point:?} at record 2: its offset was committed before its effect, so the \
                 restart skips it (one loss), never repeats anything"
            );
        }
        let o = run(
            Semantics::AtMostOnce,
            &[5],
            2,
            &[crash(CrashPoint::AfterProcess, 0, 2)],
        );
        assert_eq!(
            offsets(&o, 0),
            [0, 1, 2, 3, 4],
            "died after applying 2: nothing lost"
        );
    }

    #[test]
    fn deduplicating_by_partition_and_offset_applies_every_record_exactly_once() {
        for point in [
            CrashPoint::BeforeProcess,
            CrashPoint::AfterProcess,
            CrashPoint::AfterCommit,
        ] {
            let crashes = [crash(point, 1, 1), crash(point, 0, 3)];
            let o = run(Semantics::ExactlyOnce, &[5, 3], 4, &crashes);
            assert_eq!(
                offsets(&o, 0),
                [0, 1, 2, 3, 4],
                "{point:?}: partition 0, once each"
            );
            assert_eq!(
                offsets(&o, 1),
                [0, 1, 2],
                "{point:?}: partition 1, once each"
            );
            assert_eq!(o.restarts, 2, "{point:?}: two crashes, two restarts");
            assert_eq!(o.committed, [5, 3]);
        }
    }

    #[test]
    fn over_many_seeded_crashes_each_mode_loses_or_repeats_exactly_what_it_promises() {
        const POINTS: [CrashPoint; 3] = [
            CrashPoint::BeforeProcess,
            CrashPoint::AfterProcess,
            CrashPoint::AfterCommit,
        ];
        sdlings_kit::property::for_seeds(150, |rng| {
            let lengths: Vec<u64> = (0..rng.random_range(1..5))
                .map(|_| rng.random_range(0..25))
                .collect();
            let poll_max = rng.random_range(1..9);
            let mut crashes: Vec<Crash> = Vec::new();
            let mut hit = HashSet::new();
            for _ in 0..rng.random_range(0..4) {
                let p = rng.random_range(0..lengths.len());
                if lengths[p] > 0 {
                    let at = (p as u32, rng.random_range(0..lengths[p]));
                    if hit.insert(at) {
                        crashes.push(crash(POINTS[rng.random_range(0..3)], at.0, at.1));
                    }
                }
            }
            for mode in MODES {
                let o = run(mode, &lengths, poll_max, &crashes);
                let why = format!("{mode:?}, lengths {lengths:?}, poll {poll_max}, {crashes:?}");
                let mut count: HashMap<(u32, u64), usize> = HashMap::new();
                for r in &o.effects {
                    *count.entry((r.partition, r.offset)).or_default() += 1;
                }
                for r in o.log.iter().flatten() {
                    let at = crashes
                        .iter()
                        .find(|c| (c.partition, c.offset) == (r.partition, r.offset));
                    let point = at.map(|c| c.point);
                    let want = match (mode, point) {
                        (Semantics::AtLeastOnce, Some(CrashPoint::AfterProcess)) => 2,
                        (Semantics::AtMostOnce, Some(CrashPoint::BeforeProcess))
                        | (Semantics::AtMostOnce, Some(CrashPoint::AfterCommit)) => 0,
                        _ => 1,
                    };
                    let got = count.get(&(r.partition, r.offset)).copied().unwrap_or(0);
                    assert_eq!(
                        got, want,
                        "{why}: effects of record {}/{} (crash {point:?})",
                        r.partition, r.offset
                    );
                }
                assert_eq!(
                    o.restarts,
                    crashes.len(),
                    "{why}: every crash stops the consumer"
                );
                assert_eq!(
                    o.committed, lengths,
                    "{why}: at the end everything is committed"
                );
                // Per key, the first application of each record follows the log's order.
                let mut seen = HashSet::new();
                let mut last: HashMap<u64, u64> = HashMap::new();
                for r in o
                    .effects
                    .iter()
                    .filter(|r| seen.insert((r.partition, r.offset)))
                {
                    let before = last.insert(r.key, r.value);
                    assert!(before < Some(r.value), "{why}: key {} reordered", r.key);
                }
            }
        });
    }
}
