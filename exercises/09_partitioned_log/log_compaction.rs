// log_compaction — Kafka's log cleaner: keep the latest value of each key, drop what it replaced,
// and keep deletes long enough for slow readers to see them.
//
// A compacted topic is a table written as a changelog: Kafka keeps its consumer offsets that
// way (`__consumer_offsets`), Kafka Streams its state stores, Debezium a table's rows. A new
// consumer rebuilds the table by reading from offset 0, so the log needs the last value per key
// only. A delete is a *tombstone* (a null value), and it must outlive `delete.retention.ms`, or a
// consumer that has not read that far yet never learns the key is gone.
//
// Build `Cleaner::clean`. The property: in the closed segments (not the active, last one), a
// record stays if it is the latest of its key below the active segment, and, for a tombstone,
// if it was written less than `delete_retention` ago; everything stays at its original offset,
// in order; the active segment is untouched, and a consumer reading the cleaned log from 0 ends
// with the same table as one that read every record.
//
// Lab: turn DELETE_RETENTION_MS and watch consumers lagging longer than it keep deleted keys.

use std::collections::HashMap;
use std::time::Duration;

use sdlings_kit::clock::{Clock, ManualClock};
use sdlings_kit::partitioned_log::storage::{CompactionLabKnobs, TopicLog, compaction_lab};

// ---- Your part -------------------------------------------------------------------------------

/// The log cleaner: compacts a log's closed segments, reading the time from its clock.
#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct Cleaner<C: Clock> {
    delete_retention: Duration,
    clock: C,
}

impl<C: Clock> Cleaner<C> {
    /// A cleaner that keeps a tombstone until `delete_retention` after it was appended (Kafka's
    /// `delete.retention.ms`), by `clock`.
    pub fn new(delete_retention: Duration, clock: C) -> Self {
        Cleaner {
            delete_retention,
            clock,
        }
    }

    /// Compacts every segment of `log` but the active one. Records at or past the active
    /// segment's base offset (the cleaner point) are neither removed nor taken into account.
    pub fn clean(&self, log: &mut TopicLog) {
        let _ = (log, HashMap::<u64, u64>::new()); // (silences "unused" warnings: delete it)
        todo!("keep the latest record of each key below the cleaner point, and young tombstones")
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// How long tombstones survive cleaning (Kafka's default delete.retention.ms: 86 400 000, a day).
const DELETE_RETENTION_MS: u64 = 5_000;
/// Records appended, one per millisecond, over KEYS Zipf(ZIPF_S) keys; a share of them deletes.
const RECORDS: u64 = 40_000;
const KEYS: usize = 2_000;
const ZIPF_S: f64 = 0.9;
const DELETE_SHARE: f64 = 0.05;
/// Records per segment, and records between two cleaner passes.
const SEGMENT_RECORDS: usize = 1_000;
const CLEAN_EVERY: u64 = 5_000;
/// Consumers that stopped this many ms (= records) before the end, then catch up.
const LAGS: [u64; 5] = [1_000, 4_000, 6_000, 10_000, 20_000];

fn main() {
    let knobs = CompactionLabKnobs {
        records: RECORDS,
        keys: KEYS,
        zipf_s: ZIPF_S,
        delete_share: DELETE_SHARE,
        segment_records: SEGMENT_RECORDS,
        clean_every: CLEAN_EVERY,
        delete_retention: Duration::from_millis(DELETE_RETENTION_MS),
        lags: LAGS.to_vec(),
    };
    compaction_lab(&knobs, Cleaner::new, |c: &Cleaner<ManualClock>, log| {
        c.clean(log)
    });
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::partitioned_log::storage::{KeyedRecord, apply};

    use super::*;

    const R: Duration = Duration::from_secs(60);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A log of `segment_records`-record segments, a cleaner with retention R, and their clock.
    fn setup(segment_records: usize) -> (ManualClock, TopicLog, Cleaner<ManualClock>) {
        let clock = ManualClock::new();
        let log = TopicLog::new(segment_records, clock.clone());
        (clock.clone(), log, Cleaner::new(R, clock))
    }

    /// The (offset, key, value) of every record in the log.
    fn contents(log: &TopicLog) -> Vec<(u64, u64, Option<u64>)> {
        log.read_from(0)
            .map(|r| (r.offset, r.key, r.value))
            .collect()
    }

    fn table<'a>(records: impl IntoIterator<Item = &'a KeyedRecord>) -> HashMap<u64, u64> {
        let mut state = HashMap::new();
        apply(&mut state, records);
        state
    }

    #[test]
    fn keeps_the_latest_value_of_each_key_at_its_original_offset() {
        let (_, mut log, cleaner) = setup(3);
        for (k, v) in [
            (1, 10),
            (2, 20),
            (1, 11),
            (3, 30),
            (2, 21),
            (1, 10),
            (4, 40),
        ] {
            log.append(k, Some(v));
        }
        cleaner.clean(&mut log);
        assert_eq!(
            contents(&log),
            [
                (3, 3, Some(30)),
                (4, 2, Some(21)),
                (5, 1, Some(10)),
                (6, 4, Some(40))
            ],
            "keys 1 and 2 keep only their latest records, at their original offsets 5 and 4 (a \
             consumer's position is an offset, so records never move); the 10 at offset 0 goes \
             too although key 1 is 10 again: the latest record is the one at 5, whatever the \
             value; offset 6 is the active segment's"
        );
        cleaner.clean(&mut log);
        assert_eq!(
            contents(&log).len(),
            4,
            "cleaning a clean log changes nothing"
        );
    }

    #[test]
    fn the_active_segment_is_neither_cleaned_nor_used_to_decide_what_goes() {
        let (_, mut log, cleaner) = setup(2);
        for (k, v) in [
            (1, Some(10)),
            (2, Some(20)),
            (1, Some(11)),
            (1, Some(12)),
            (2, None),
        ] {
            log.append(k, v);
        }
        // Segments: [0, 1] [2, 3] [4] (active).
        cleaner.clean(&mut log);
        assert_eq!(
            contents(&log),
            [(1, 2, Some(20)), (3, 1, Some(12)), (4, 2, None)],
            "below the cleaner point (offset 4, the active segment's base) key 1's latest is 12 \
             and key 2's is 20; the tombstone at 4 is in the active segment: it is not cleaned, \
             and it does not remove 20 yet (Kafka's offset map stops at the first uncleanable \
             offset)"
        );
        let (_, mut log, cleaner) = setup(10);
        for v in 0..5 {
            log.append(7, Some(v));
        }
        cleaner.clean(&mut log);
        assert_eq!(
            contents(&log).len(),
            5,
            "a log with only its active segment is not touched"
        );
    }

    #[test]
    fn a_tombstone_stays_for_delete_retention_so_a_lagging_consumer_sees_the_delete() {
        let (clock, mut log, cleaner) = setup(2);
        log.append(1, Some(10));
        clock.advance(ms(5));
        log.append(1, None); // the delete, written at 5 ms
        log.append(2, Some(20)); // active segment
        // A consumer read offset 0 (key 1 = 10) and stopped there.
        let lagging = table(log.read_from(0).take(1));
        clock.set(ms(5) + R - ms(1));
        cleaner.clean(&mut log);
        assert_eq!(
            contents(&log),
            [(1, 1, None), (2, 2, Some(20))],
            "the value at 0 is replaced by the tombstone; the tombstone is {:?} old, under the \
             retention of {R:?}, so it stays",
            R - ms(1)
        );
        let mut caught_up = lagging.clone();
        apply(&mut caught_up, log.read_from(1));
        assert_eq!(
            caught_up,
            HashMap::from([(2, 20)]),
            "the lagging consumer sees the delete"
        );
        clock.advance(ms(1));
        cleaner.clean(&mut log);
        assert_eq!(
            contents(&log),
            [(2, 2, Some(20))],
            "exactly delete_retention after it was written the tombstone goes, and with it the \
             last trace of key 1"
        );
    }

    #[test]
    fn an_expired_tombstone_takes_every_older_value_of_its_key_with_it() {
        let (clock, mut log, cleaner) = setup(4);
        log.append(1, Some(10));
        log.append(1, Some(11));
        log.append(1, None);
        log.append(2, Some(20));
        log.append(3, Some(30)); // active segment
        clock.advance(R * 2);
        cleaner.clean(&mut log);
        assert_eq!(
            contents(&log),
            [(3, 2, Some(20)), (4, 3, Some(30))],
            "first cleaned long after the delete: the tombstone is dropped, and the values it \
             deleted must not come back (a consumer from 0 would see key 1 = 11 again)"
        );
        assert_eq!(table(log.read_from(0)), HashMap::from([(2, 20), (3, 30)]));
    }

    #[test]
    fn values_never_expire_only_tombstones_do_and_a_replaced_tombstone_goes_at_once() {
        let (clock, mut log, cleaner) = setup(3);
        log.append(1, Some(10));
        log.append(2, None);
        log.append(2, Some(21)); // the key written again after its delete
        log.append(3, Some(30)); // active segment
        cleaner.clean(&mut log);
        assert_eq!(
            contents(&log),
            [(0, 1, Some(10)), (2, 2, Some(21)), (3, 3, Some(30))],
            "the tombstone at 1 was replaced by a newer value: it is not the latest record of \
             key 2, so it goes now, retention or not"
        );
        clock.advance(R * 10);
        cleaner.clean(&mut log);
        assert_eq!(
            contents(&log).len(),
            3,
            "latest values stay forever: delete.retention applies to tombstones only"
        );
    }

    #[test]
    fn cleaning_an_empty_log_does_nothing() {
        let (_, mut log, cleaner) = setup(1);
        cleaner.clean(&mut log);
        assert!(log.is_empty());
        log.append(1, None);
        cleaner.clean(&mut log);
        assert_eq!(
            contents(&log),
            [(0, 1, None)],
            "a lone tombstone in the active segment stays"
        );
    }

    #[test]
    fn matches_a_reference_cleaner_over_random_histories_and_cleaning_points() {
        sdlings_kit::property::for_seeds(200, |rng| {
            let retention = ms(rng.random_range(0..50));
            let segment_records = rng.random_range(1..6);
            let keys = rng.random_range(1..8);
            let clock = ManualClock::new();
            let mut log = TopicLog::new(segment_records, clock.clone());
            let cleaner = Cleaner::new(retention, clock.clone());
            let mut history: Vec<KeyedRecord> = Vec::new();
            for step in 0..rng.random_range(0..60) {
                clock.advance(ms(rng.random_range(0..6)));
                if rng.random_range(0..5) == 0 {
                    cleaner.clean(&mut log);
                    // The reference: below the cleaner point, the latest record of each key,
                    // unless it is a tombstone at least `retention` old; the rest untouched.
                    let (point, now) = (log.active_base_offset(), clock.now());
                    let mut latest = HashMap::new();
                    history.iter().filter(|r| r.offset < point).for_each(|r| {
                        latest.insert(r.key, r.offset);
                    });
                    let expected: Vec<_> = history
                        .iter()
                        .filter(|r| {
                            r.offset >= point
                                || (latest[&r.key] == r.offset
                                    && (r.value.is_some() || now < r.timestamp + retention))
                        })
                        .map(|r| (r.offset, r.key, r.value))
                        .collect();
                    let why = format!(
                        "step {step}: segments of {segment_records}, retention {retention:?}, \
                         cleaned at {now:?} with the cleaner point at offset {point}; history \
                         (offset, time, key, value): {:?}",
                        history
                            .iter()
                            .map(|r| (r.offset, r.timestamp, r.key, r.value))
                            .collect::<Vec<_>>()
                    );
                    assert_eq!(contents(&log), expected, "{why}");
                    assert_eq!(
                        table(log.read_from(0)),
                        table(&history),
                        "{why}: a consumer of the cleaned log must end with the same table"
                    );
                } else {
                    let key = rng.random_range(0..keys);
                    let value = rng.random_bool(0.7).then(|| rng.random_range(0..100));
                    let offset = log.append(key, value);
                    let timestamp = clock.now();
                    history.push(KeyedRecord {
                        offset,
                        timestamp,
                        key,
                        value,
                    });
                }
            }
        });
    }
}
