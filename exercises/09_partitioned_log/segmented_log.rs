// segmented_log — a partition's log as Kafka stores it: segments of framed records and a sparse
// offset index, so a read by offset touches a few kilobytes of a multi-gigabyte log.
//
// A Kafka partition is an append-only log cut into segment files (1 GiB by default,
// `segment.bytes`). A consumer fetches "from offset 4 182 337": the broker finds the segment
// whose base offset is the largest one not above it, looks the offset up in that segment's
// sparse index (an entry every `index.interval.bytes`, 4 KiB by default) and scans forward from
// there. Whole segments are also the unit of retention and compaction.
//
// Build `append` and `read`. The property: offsets are contiguous from 0 across segments;
// `read(o)` returns exactly the record appended at `o` (`None` at or past the end); a segment
// rolls when the next record would take it past `segment_bytes` or it holds `segment_records`;
// the index stays sparse, and a read scans (through `SegmentFile::read_at`) at most one index
// interval of bytes plus the record itself, never the whole segment.
//
// Lab: turn INDEX_INTERVALS and watch bytes scanned per read trade against the index's size.

use sdlings_kit::partitioned_log::storage::{
    ByteMeter, LogConfig, Record, SegmentFile, SegmentLabKnobs, SegmentLabLog, frame_len,
    segment_lab,
};

// ---- Your part -------------------------------------------------------------------------------

/// One segment: its file, the offset of its first record, and its sparse index.
#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct Segment {
    base_offset: u64,
    file: SegmentFile,
    /// (offset, byte position in `file`) of some of the segment's records, in offset order.
    index: Vec<(u64, u64)>,
    records: u64,
    /// Bytes appended since the last index entry (or the segment's start).
    bytes_since_index: u64,
}

#[allow(dead_code)]
pub struct SegmentedLog {
    config: LogConfig,
    meter: ByteMeter,
    /// In base-offset order; the last one is the active segment, the one appends go to.
    segments: Vec<Segment>,
    next_offset: u64,
}

impl Segment {
    fn new(base_offset: u64, meter: ByteMeter) -> Self {
        Segment {
            base_offset,
            file: SegmentFile::new(meter),
            index: Vec::new(),
            records: 0,
            bytes_since_index: 0,
        }
    }
}

impl SegmentedLog {
    /// An empty log: one empty active segment at base offset 0. Its segment files count the
    /// bytes reads go through on `meter`.
    pub fn new(config: LogConfig, meter: ByteMeter) -> Self {
        let segments = vec![Segment::new(0, meter.clone())];
        SegmentedLog {
            config,
            meter,
            segments,
            next_offset: 0,
        }
    }

    /// Appends a record and returns its offset. Rolls first when the active segment is not
    /// empty and the record would take it past `segment_bytes`, or it already holds
    /// `segment_records`: the record then starts a new segment (a record larger than
    /// `segment_bytes` gets a segment of its own). Adds an index entry for the record when more
    /// than `index_interval_bytes` have been appended to the segment since its last entry.
    pub fn append(&mut self, key: &[u8], value: Option<&[u8]>) -> u64 {
        let _ = frame_len(key, value); // (the record's size on disk: you will need it)
        todo!("roll if the active segment is full, add an index entry if it is due, append")
    }

    /// The record at `offset`, or `None` if the log has none there (at or past its end).
    pub fn read(&self, offset: u64) -> Option<Record> {
        todo!("find the segment of {offset}, then the index entry to scan from")
    }
}

impl SegmentedLog {
    /// The offset the next append will get.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// The base offset of every segment, oldest first (the active one last).
    pub fn segment_base_offsets(&self) -> Vec<u64> {
        self.segments.iter().map(|s| s.base_offset).collect()
    }

    /// Entries in all the segments' indexes together.
    pub fn index_entries(&self) -> usize {
        self.segments.iter().map(|s| s.index.len()).sum()
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Index intervals to compare (Kafka's default is 4096 bytes); the last one indexes nothing.
const INDEX_INTERVALS: [u64; 5] = [256, 1024, 4096, 16_384, u64::MAX];
/// Segment size (Kafka's default segment.bytes is 1 GiB) and record cap (u64::MAX: none).
const SEGMENT_BYTES: u64 = 256 * 1024;
const SEGMENT_RECORDS: u64 = u64::MAX;
/// Records appended (values of 50..400 bytes, Zipf keys), then random reads by offset.
const RECORDS: u64 = 20_000;
const KEYS: usize = 1_000;
const ZIPF_S: f64 = 1.0;
const READS: u64 = 400;

fn main() {
    let knobs = SegmentLabKnobs {
        records: RECORDS,
        keys: KEYS,
        zipf_s: ZIPF_S,
        value_bytes: 50..400,
        segment_bytes: SEGMENT_BYTES,
        segment_records: SEGMENT_RECORDS,
        index_intervals: INDEX_INTERVALS.to_vec(),
        reads: READS,
    };
    segment_lab(
        &knobs,
        SegmentLabLog {
            make: SegmentedLog::new,
            append: SegmentedLog::append,
            read: SegmentedLog::read,
            segments_and_index_entries: |l| (l.segment_base_offsets().len(), l.index_entries()),
        },
    );
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    fn config(segment_bytes: u64, segment_records: u64, index_interval_bytes: u64) -> LogConfig {
        LogConfig {
            segment_bytes,
            segment_records,
            index_interval_bytes,
        }
    }

    fn new_log(c: LogConfig) -> (ByteMeter, SegmentedLog) {
        let meter = ByteMeter::new();
        (meter.clone(), SegmentedLog::new(c, meter))
    }

    fn value(n: usize) -> Vec<u8> {
        vec![b'x'; n]
    }

    /// Frame size of a record with a 1-byte key and an `n`-byte value.
    fn len(n: usize) -> u64 {
        frame_len(b"k", Some(&value(n)))
    }

    #[test]
    fn offsets_count_up_from_zero_and_each_reads_back_its_record() {
        let (_, mut log) = new_log(config(1 << 20, u64::MAX, 4096));
        assert_eq!(
            log.segment_base_offsets(),
            [0],
            "a new log has one empty active segment"
        );
        assert_eq!(log.read(0), None, "an empty log has no record at offset 0");
        for i in 0..3u8 {
            assert_eq!(log.append(&[b'k', i], Some(&[i; 3])), u64::from(i));
        }
        assert_eq!(
            log.append(b"gone", None),
            3,
            "a tombstone takes an offset too"
        );
        let r = log.read(1).expect("offset 1 was written");
        assert_eq!(
            (r.offset, &r.key[..], r.value.as_deref()),
            (1, &b"k\x01"[..], Some(&[1u8; 3][..]))
        );
        assert_eq!(
            log.read(3).expect("offset 3").value,
            None,
            "a tombstone reads as None"
        );
        assert_eq!(log.next_offset(), 4);
        assert_eq!(log.read(4), None, "reading at the end returns nothing");
        assert_eq!(
            log.read(1_000),
            None,
            "reading past the end returns nothing"
        );
    }

    #[test]
    fn a_segment_rolls_when_the_next_record_would_not_fit_and_reads_cross_the_roll() {
        // Records of len(100) bytes; a segment of 3.5 records takes 3.
        let (_, mut log) = new_log(config(len(100) * 7 / 2, u64::MAX, 0));
        for _ in 0..7 {
            log.append(b"k", Some(&value(100)));
        }
        assert_eq!(
            log.segment_base_offsets(),
            [0, 3, 6],
            "3 records per segment"
        );
        for offset in 0..7 {
            assert_eq!(log.read(offset).map(|r| r.offset), Some(offset));
        }
        // Exactly full: a record that ends the segment at segment_bytes still fits.
        let (_, mut exact) = new_log(config(len(100) * 2, u64::MAX, 0));
        for _ in 0..5 {
            exact.append(b"k", Some(&value(100)));
        }
        assert_eq!(
            exact.segment_base_offsets(),
            [0, 2, 4],
            "two records fill a segment of exactly twice their size"
        );
    }

    #[test]
    fn reading_the_base_offset_of_a_segment_just_after_a_roll_returns_that_record() {
        let (_, mut log) = new_log(config(len(10) * 2, u64::MAX, 4096));
        for i in 0..4u8 {
            log.append(b"k", Some(&[i; 10]));
            let last = u64::from(i);
            let r = log
                .read(last)
                .unwrap_or_else(|| panic!("offset {last} was just written"));
            assert_eq!(
                r.value.as_deref(),
                Some(&[i; 10][..]),
                "the record just appended at {last}"
            );
        }
        assert_eq!(log.segment_base_offsets(), [0, 2]);
        assert_eq!(
            log.read(2).map(|r| r.offset),
            Some(2),
            "offset 2 is the base of the second segment"
        );
    }

    #[test]
    fn a_segment_rolls_after_segment_records_records() {
        let (_, mut log) = new_log(config(u64::MAX, 3, 100));
        for _ in 0..7 {
            log.append(b"k", Some(&value(5)));
        }
        assert_eq!(log.segment_base_offsets(), [0, 3, 6]);
        let (_, mut one) = new_log(config(u64::MAX, 1, 100));
        for _ in 0..3 {
            one.append(b"k", None);
        }
        assert_eq!(
            one.segment_base_offsets(),
            [0, 1, 2],
            "segment_records 1: a segment per record"
        );
    }

    #[test]
    fn a_record_larger_than_a_segment_gets_a_segment_of_its_own_and_no_segment_stays_empty() {
        let (_, mut log) = new_log(config(100, u64::MAX, 0));
        for n in [500, 10, 500, 10] {
            log.append(b"k", Some(&value(n)));
        }
        assert_eq!(
            log.segment_base_offsets(),
            [0, 1, 2, 3],
            "each 500-byte record goes alone into a segment, the empty first one included, and \
             the next record rolls again: a segment is rolled only for a record that goes into \
             another one, so no segment is ever left empty behind the active one"
        );
        assert_eq!(
            log.read(2).and_then(|r| r.value).map(|v| v.len()),
            Some(500)
        );
    }

    #[test]
    fn a_read_scans_at_most_one_index_interval_not_the_whole_segment() {
        let interval = 8 * len(90);
        let (meter, mut log) = new_log(config(1 << 20, u64::MAX, interval));
        for _ in 0..1_000 {
            log.append(b"k", Some(&value(90)));
        }
        assert_eq!(
            log.segment_base_offsets(),
            [0],
            "one segment of about 115 KB"
        );
        for offset in [0, 1, 8, 9, 10, 11, 500, 998, 999] {
            let before = meter.bytes_read();
            assert_eq!(log.read(offset).map(|r| r.offset), Some(offset));
            let scanned = meter.bytes_read() - before;
            assert!(
                scanned <= interval + len(90),
                "reading offset {offset} scanned {scanned} bytes: find the last index entry at or \
                 before it (binary search) and scan from there, at most the index interval \
                 ({interval} bytes) plus the record itself"
            );
        }
        assert_eq!(
            log.index_entries(),
            111,
            "1000 records of {} bytes, an interval of 8 of them: a record is indexed once MORE \
             than the interval has been appended since the last entry (9 records), so records \
             9, 18, .., 999 are; the index is sparse",
            len(90)
        );
    }

    #[test]
    fn behaves_like_a_vec_of_records_over_random_appends_segment_sizes_and_index_intervals() {
        sdlings_kit::property::for_seeds(150, |rng| {
            let c = config(
                rng.random_range(1..1_500),
                if rng.random() {
                    rng.random_range(1..12)
                } else {
                    u64::MAX
                },
                if rng.random_range(0..4) == 0 {
                    rng.random_range(0..40)
                } else {
                    rng.random_range(0..800)
                },
            );
            let (meter, mut log) = new_log(c);
            // The model: every record, and the base offsets where segments start.
            let mut model: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
            let (mut bases, mut seg_bytes, mut seg_records) = (vec![0u64], 0u64, 0u64);
            let ops = rng.random_range(0..120);
            for _ in 0..ops {
                if rng.random_range(0..3) > 0 {
                    let key: Vec<u8> = (0..rng.random_range(0..12)).map(|_| rng.random()).collect();
                    let value = rng
                        .random_bool(0.8)
                        .then(|| value(rng.random_range(0..200)));
                    let n = frame_len(&key, value.as_deref());
                    let offset = model.len() as u64;
                    if seg_records > 0
                        && (seg_records >= c.segment_records || seg_bytes + n > c.segment_bytes)
                    {
                        bases.push(offset);
                        (seg_bytes, seg_records) = (0, 0);
                    }
                    (seg_bytes, seg_records) = (seg_bytes + n, seg_records + 1);
                    assert_eq!(
                        log.append(&key, value.as_deref()),
                        offset,
                        "{c:?}: offsets are contiguous"
                    );
                    model.push((key, value));
                } else {
                    let offset = rng.random_range(0..model.len() as u64 + 3);
                    let before = meter.bytes_read();
                    let got = log.read(offset);
                    let scanned = meter.bytes_read() - before;
                    let want = model.get(offset as usize);
                    match (want, &got) {
                        (None, _) => assert_eq!(
                            got,
                            None,
                            "{c:?}: offset {offset} is past the end ({})",
                            model.len()
                        ),
                        (Some((k, v)), Some(r)) => {
                            assert_eq!(
                                (r.offset, &r.key[..], r.value.as_deref()),
                                (offset, &k[..], v.as_deref()),
                                "{c:?}: the record at offset {offset}"
                            );
                            let bound = c
                                .index_interval_bytes
                                .saturating_add(frame_len(k, v.as_deref()));
                            assert!(
                                scanned <= bound,
                                "{c:?}: reading offset {offset} scanned {scanned} bytes, more than one \
                                 index interval plus the record ({bound})"
                            );
                        }
                        (Some(_), None) => {
                            panic!("{c:?}: offset {offset} was written, read returned None")
                        }
                    }
                }
                assert_eq!(
                    log.segment_base_offsets(),
                    bases,
                    "{c:?}: segments start where the rolls happen"
                );
            }
            let total: u64 = model.iter().map(|(k, v)| frame_len(k, v.as_deref())).sum();
            if c.index_interval_bytes > 0 {
                assert!(
                    log.index_entries() as u64
                        <= total / c.index_interval_bytes + bases.len() as u64,
                    "{c:?}: {} index entries for {total} bytes: at most about one per interval",
                    log.index_entries()
                );
            }
        });
    }
}
