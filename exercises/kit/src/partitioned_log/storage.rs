//! The storage side of the partitioned log: what `segmented_log` and `log_compaction` are given.
//!
//! - For `segmented_log`: the on-disk record frame (length, CRC-32, offset, key, value), a
//!   [`SegmentFile`] that stands in for one segment's `.log` file and counts every byte a read
//!   goes through ([`ByteMeter`]), the [`LogConfig`] knobs, and the lab that measures bytes
//!   scanned per read against the index interval.
//! - For `log_compaction`: a keyed log of in-memory segments ([`TopicLog`]) that appends, rolls
//!   and reads, and the lab that compacts it and replays lagging consumers.
//!
//! Nothing here finds a record by offset through an index, and nothing here compacts: that is
//! always the learner's code, passed in.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rand::RngExt;

use crate::clock::{Clock, ManualClock};
use crate::lab::{Table, bar_chart, percent};
use crate::workload::{ZipfKeys, seeded_rng};

// ---- Records and their frame -------------------------------------------------------------------

/// One record of a log: its offset (its position in the whole log, from 0), a key and a value
/// (`None` is a tombstone: "this key is deleted").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// Bytes of a frame before its body: the body's length (u32) and the body's CRC-32 (u32).
pub const FRAME_HEADER: u64 = 8;
/// Bytes of a body besides the key and the value: offset (u64), key length (u32), value length
/// (i32, -1 for a tombstone).
const BODY_FIXED: u64 = 16;

/// The size on disk of a record with this key and value: what it adds to its segment.
pub fn frame_len(key: &[u8], value: Option<&[u8]>) -> u64 {
    FRAME_HEADER + BODY_FIXED + key.len() as u64 + value.map_or(0, |v| v.len() as u64)
}

fn encode(offset: u64, key: &[u8], value: Option<&[u8]>, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity((frame_len(key, value) - FRAME_HEADER) as usize);
    body.extend_from_slice(&offset.to_be_bytes());
    body.extend_from_slice(&(key.len() as u32).to_be_bytes());
    body.extend_from_slice(key);
    match value {
        Some(v) => {
            body.extend_from_slice(&(v.len() as i32).to_be_bytes());
            body.extend_from_slice(v);
        }
        None => body.extend_from_slice(&(-1_i32).to_be_bytes()),
    }
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().expect("4 bytes"))
}

// ---- One segment file --------------------------------------------------------------------------

/// Counts the bytes that reads go through: each [`SegmentFile::read_at`] adds the size of the
/// frame it read. Clones share the count, so a test or a lab keeps one and gives one to the log.
#[derive(Debug, Clone, Default)]
pub struct ByteMeter {
    bytes: Arc<AtomicU64>,
}

impl ByteMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes read so far, through every segment file that shares this meter.
    pub fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn add(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
}

/// One segment's `.log` file: frames appended back to back, read one frame at a time from a
/// byte position. Kept in memory (a real broker has a file and the page cache); every read is
/// counted by the [`ByteMeter`] it was made with.
#[derive(Debug)]
pub struct SegmentFile {
    bytes: Vec<u8>,
    meter: ByteMeter,
}

impl SegmentFile {
    /// An empty file whose reads count on `meter`.
    pub fn new(meter: ByteMeter) -> Self {
        SegmentFile {
            bytes: Vec::new(),
            meter,
        }
    }

    /// The file's size in bytes: where the next frame will start.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Appends the frame of a record at the end of the file and returns the byte position where
    /// it starts. Its size is [`frame_len`]`(key, value)`.
    pub fn append(&mut self, offset: u64, key: &[u8], value: Option<&[u8]>) -> u64 {
        let position = self.len();
        encode(offset, key, value, &mut self.bytes);
        position
    }

    /// Reads the frame that starts at byte `position`: the record and the position of the next
    /// frame; `None` at (or past) the end of the file. Panics if `position` is not the start of
    /// a frame (its checksum does not match): positions must come from `append` or from a
    /// previous `read_at`. Adds the frame's size to the meter.
    pub fn read_at(&self, position: u64) -> Option<(Record, u64)> {
        let start = usize::try_from(position).ok()?;
        if start >= self.bytes.len() {
            return None;
        }
        let frame = &self.bytes[start..];
        assert!(
            frame.len() >= FRAME_HEADER as usize,
            "position {position} is not the start of a frame (the file ends 8 bytes after it)"
        );
        let body_len = be_u32(frame) as usize;
        let body = frame
            .get(FRAME_HEADER as usize..FRAME_HEADER as usize + body_len)
            .filter(|body| {
                body.len() >= BODY_FIXED as usize && crc32fast::hash(body) == be_u32(&frame[4..])
            })
            .unwrap_or_else(|| {
                panic!("position {position} is not the start of a frame: its CRC-32 does not match")
            });
        self.meter.add(FRAME_HEADER + body_len as u64);
        let offset = u64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
        let key_len = be_u32(&body[8..]) as usize;
        let key = Bytes::copy_from_slice(&body[12..12 + key_len]);
        let rest = &body[12 + key_len..];
        let value_len = i32::from_be_bytes(rest[..4].try_into().expect("4 bytes"));
        let value = (value_len >= 0).then(|| Bytes::copy_from_slice(&rest[4..]));
        let next = position + FRAME_HEADER + body_len as u64;
        Some((Record { offset, key, value }, next))
    }
}

/// When a segment is full and how dense its index is (Kafka's `segment.bytes`, a record-count
/// cap, and `index.interval.bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// A segment takes no record that would make it larger than this (unless it is empty).
    pub segment_bytes: u64,
    /// A segment holds at most this many records.
    pub segment_records: u64,
    /// Bytes appended to a segment between two entries of its sparse index.
    pub index_interval_bytes: u64,
}

// ---- The segmented_log lab ---------------------------------------------------------------------

/// The segmented_log lab's workload and the index intervals it compares.
#[derive(Debug, Clone)]
pub struct SegmentLabKnobs {
    pub records: u64,
    pub keys: usize,
    pub zipf_s: f64,
    /// Values are drawn uniformly from this many bytes.
    pub value_bytes: std::ops::Range<usize>,
    pub segment_bytes: u64,
    pub segment_records: u64,
    pub index_intervals: Vec<u64>,
    pub reads: u64,
}

/// What the lab needs from a segmented log: append, read, and how many segments and index
/// entries it has.
pub struct SegmentLabLog<L> {
    pub make: fn(LogConfig, ByteMeter) -> L,
    pub append: fn(&mut L, &[u8], Option<&[u8]>) -> u64,
    pub read: fn(&L, u64) -> Option<Record>,
    pub segments_and_index_entries: fn(&L) -> (usize, usize),
}

/// For each index interval: fills a log with Zipf-keyed records, reads random offsets, and
/// prints the bytes each read scanned against the size of the index (Kafka's index entries are
/// 8 bytes: a 4-byte relative offset and a 4-byte position).
pub fn segment_lab<L>(knobs: &SegmentLabKnobs, log: SegmentLabLog<L>) {
    let mut table = Table::new(&[
        "index interval",
        "segments",
        "index entries",
        "index size",
        "bytes/read (mean)",
        "bytes/read (max)",
        "wrong reads",
    ]);
    let mut bars = Vec::new();
    for &interval in &knobs.index_intervals {
        let config = LogConfig {
            segment_bytes: knobs.segment_bytes,
            segment_records: knobs.segment_records,
            index_interval_bytes: interval,
        };
        let meter = ByteMeter::new();
        let mut l = (log.make)(config, meter.clone());
        let mut keys = ZipfKeys::new(knobs.keys, knobs.zipf_s, 1);
        let mut rng = seeded_rng(2);
        let mut written = Vec::new();
        for _ in 0..knobs.records {
            let key = format!("user-{}", keys.next_key()).into_bytes();
            let value = vec![b'v'; rng.random_range(knobs.value_bytes.clone())];
            let offset = (log.append)(&mut l, &key, Some(&value));
            written.push((offset, key.len() + value.len()));
        }
        let mut reads = seeded_rng(3);
        let (mut total, mut max, mut wrong) = (0, 0, 0);
        for _ in 0..knobs.reads {
            let (offset, len) = written[reads.random_range(0..written.len())];
            let before = meter.bytes_read();
            let got = (log.read)(&l, offset);
            let scanned = meter.bytes_read() - before;
            if got.is_none_or(|r| {
                r.offset != offset || r.key.len() + r.value.map_or(0, |v| v.len()) != len
            }) {
                wrong += 1;
            }
            total += scanned;
            max = max.max(scanned);
        }
        let (segments, entries) = (log.segments_and_index_entries)(&l);
        let mean = total / knobs.reads.max(1);
        table.row(&[
            if interval == u64::MAX {
                "none".to_string()
            } else {
                interval.to_string()
            },
            segments.to_string(),
            entries.to_string(),
            format!("{} KiB", entries * 8 / 1024),
            mean.to_string(),
            max.to_string(),
            wrong.to_string(),
        ]);
        let label = if interval == u64::MAX {
            "no index".to_string()
        } else {
            format!("interval {interval}")
        };
        bars.push((label, mean as f64));
    }
    println!(
        "{} records of {:?} value bytes, {} Zipf({}) keys; segments of {} bytes / {} records; {} random reads\n",
        knobs.records,
        knobs.value_bytes,
        knobs.keys,
        knobs.zipf_s,
        knobs.segment_bytes,
        knobs.segment_records,
        knobs.reads
    );
    table.print();
    println!("\nmean bytes scanned per read:\n{}", bar_chart(&bars, 50));
}

// ---- A keyed log for log_compaction ------------------------------------------------------------

/// A record of a compacted topic: a key (compacted topics require one), a value or a tombstone
/// (`None`), and the time it was appended, by the log's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyedRecord {
    pub offset: u64,
    pub timestamp: Duration,
    pub key: u64,
    pub value: Option<u64>,
}

/// A segment of a [`TopicLog`]: the offset it starts at and its records, in offset order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSegment {
    pub base_offset: u64,
    pub records: Vec<KeyedRecord>,
}

/// A log of keyed records in segments of at most `segment_records` records. The last segment is
/// the *active* one, the only one appends go to; the others are closed. Appends stamp each record
/// with the clock's reading. The segments are public so a cleaner can rewrite the closed ones.
pub struct TopicLog {
    pub segments: Vec<LogSegment>,
    next_offset: u64,
    segment_records: usize,
    clock: Box<dyn Clock>,
}

impl TopicLog {
    /// An empty log (one empty active segment at offset 0) stamping records with `clock`.
    pub fn new(segment_records: usize, clock: impl Clock + 'static) -> Self {
        assert!(segment_records > 0, "a segment holds at least one record");
        TopicLog {
            segments: vec![LogSegment {
                base_offset: 0,
                records: Vec::new(),
            }],
            next_offset: 0,
            segment_records,
            clock: Box::new(clock),
        }
    }

    /// Appends a record to the active segment (rolling a new one first if it is full) and
    /// returns its offset.
    pub fn append(&mut self, key: u64, value: Option<u64>) -> u64 {
        let full = self
            .segments
            .last()
            .is_none_or(|s| s.records.len() >= self.segment_records);
        if full {
            self.segments.push(LogSegment {
                base_offset: self.next_offset,
                records: Vec::new(),
            });
        }
        let offset = self.next_offset;
        let timestamp = self.clock.now();
        let active = self
            .segments
            .last_mut()
            .expect("there is an active segment");
        active.records.push(KeyedRecord {
            offset,
            timestamp,
            key,
            value,
        });
        self.next_offset += 1;
        offset
    }

    /// The offset the next append will get.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// The base offset of the active segment: the first offset the cleaner must leave alone.
    pub fn active_base_offset(&self) -> u64 {
        self.segments
            .last()
            .map_or(self.next_offset, |s| s.base_offset)
    }

    /// Every record at `offset` or later, in offset order (what a consumer fetching from
    /// `offset` gets).
    pub fn read_from(&self, offset: u64) -> impl Iterator<Item = &KeyedRecord> {
        self.segments
            .iter()
            .flat_map(|s| &s.records)
            .skip_while(move |r| r.offset < offset)
    }

    /// Records in the log, tombstones included.
    pub fn len(&self) -> usize {
        self.segments.iter().map(|s| s.records.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a consumer holds after applying `records` to `state`, in order: a value sets its key, a
/// tombstone removes it.
pub fn apply<'a>(
    state: &mut HashMap<u64, u64>,
    records: impl IntoIterator<Item = &'a KeyedRecord>,
) {
    for r in records {
        match r.value {
            Some(v) => state.insert(r.key, v),
            None => state.remove(&r.key),
        };
    }
}

// ---- The log_compaction lab --------------------------------------------------------------------

/// The log_compaction lab's workload: a record per millisecond, Zipf keys, some deletes, and a
/// cleaner pass every `clean_every` records.
#[derive(Debug, Clone)]
pub struct CompactionLabKnobs {
    pub records: u64,
    pub keys: usize,
    pub zipf_s: f64,
    pub delete_share: f64,
    pub segment_records: usize,
    pub clean_every: u64,
    pub delete_retention: Duration,
    /// Consumers that stopped this many records (= milliseconds) before the end and catch up
    /// after the last cleaner pass.
    pub lags: Vec<u64>,
}

/// Writes the workload through `TopicLog`, runs the learner's cleaner every `clean_every`
/// records, prints the log's size around each pass, then replays lagging consumers.
pub fn compaction_lab<Cl>(
    knobs: &CompactionLabKnobs,
    make: impl Fn(Duration, ManualClock) -> Cl,
    clean: impl Fn(&Cl, &mut TopicLog),
) {
    let clock = ManualClock::new();
    let cleaner = make(knobs.delete_retention, clock.clone());
    let mut log = TopicLog::new(knobs.segment_records, clock.clone());
    let mut keys = ZipfKeys::new(knobs.keys, knobs.zipf_s, 4);
    let mut rng = seeded_rng(5);
    let mut history = Vec::new();
    let mut passes = Table::new(&[
        "pass at",
        "records before",
        "after",
        "kept",
        "tombstones",
        "live keys",
    ]);
    for n in 1..=knobs.records {
        clock.advance(Duration::from_millis(1));
        let key = keys.next_key();
        let value = (!rng.random_bool(knobs.delete_share)).then_some(n);
        let offset = log.append(key, value);
        history.push(KeyedRecord {
            offset,
            timestamp: clock.now(),
            key,
            value,
        });
        if n % knobs.clean_every == 0 {
            let before = log.len();
            clean(&cleaner, &mut log);
            let after = log.len();
            let tombstones = log.read_from(0).filter(|r| r.value.is_none()).count();
            let mut live = HashMap::new();
            apply(&mut live, log.read_from(0));
            passes.row(&[
                format!("{} ms", clock.now().as_millis()),
                before.to_string(),
                after.to_string(),
                percent(after as u64, n),
                tombstones.to_string(),
                live.len().to_string(),
            ]);
        }
    }
    println!(
        "{} records, one per ms, {} Zipf({}) keys, {:.0}% deletes; segments of {} records; \
         delete.retention {} ms; a cleaner pass every {} records\n",
        knobs.records,
        knobs.keys,
        knobs.zipf_s,
        knobs.delete_share * 100.0,
        knobs.segment_records,
        knobs.delete_retention.as_millis(),
        knobs.clean_every
    );
    passes.print();

    let mut truth = HashMap::new();
    apply(&mut truth, &history);
    let mut lagging = Table::new(&[
        "consumer lag",
        "records to catch up",
        "keys wrong after",
        "deleted keys it still holds",
    ]);
    for &lag in &knobs.lags {
        let stopped_at = log.next_offset().saturating_sub(lag);
        let mut state = HashMap::new();
        apply(&mut state, &history[..stopped_at as usize]);
        let fetched = log.read_from(stopped_at).count();
        apply(&mut state, log.read_from(stopped_at));
        let wrong = truth
            .iter()
            .filter(|(k, v)| state.get(k) != Some(v))
            .count()
            + state.keys().filter(|k| !truth.contains_key(k)).count();
        let zombies = state.keys().filter(|k| !truth.contains_key(k)).count();
        lagging.row(&[
            format!("{lag} ms"),
            fetched.to_string(),
            wrong.to_string(),
            zombies.to_string(),
        ]);
    }
    println!(
        "\nconsumers that stopped reading LAG ms before the end, catching up after the last pass:\n"
    );
    lagging.print();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back_as_written_and_the_meter_counts_its_size() {
        let meter = ByteMeter::new();
        let mut file = SegmentFile::new(meter.clone());
        let a = file.append(7, b"key", Some(b"value"));
        let b = file.append(8, b"", None);
        assert_eq!((a, b), (0, frame_len(b"key", Some(b"value"))));
        assert_eq!(file.len(), b + frame_len(b"", None));
        let (r, next) = file.read_at(a).unwrap();
        assert_eq!(
            r,
            Record {
                offset: 7,
                key: Bytes::from_static(b"key"),
                value: Some(Bytes::from_static(b"value"))
            }
        );
        assert_eq!(next, b);
        assert_eq!(meter.bytes_read(), b);
        let (r, next) = file.read_at(b).unwrap();
        assert_eq!((r.offset, r.value, next), (8, None, file.len()));
        assert!(file.read_at(next).is_none());
        assert_eq!(meter.bytes_read(), file.len());
    }

    #[test]
    #[should_panic(expected = "not the start of a frame")]
    fn reading_from_the_middle_of_a_frame_is_caught_by_the_checksum() {
        let mut file = SegmentFile::new(ByteMeter::new());
        file.append(0, b"key", Some(b"a value long enough"));
        file.append(1, b"key", Some(b"another value"));
        file.read_at(3);
    }

    #[test]
    fn a_topic_log_rolls_by_record_count_and_reads_from_an_offset() {
        let mut log = TopicLog::new(2, ManualClock::new());
        for k in 0..5 {
            assert_eq!(log.append(k, Some(k * 10)), k);
        }
        let bases: Vec<u64> = log.segments.iter().map(|s| s.base_offset).collect();
        assert_eq!(bases, [0, 2, 4]);
        assert_eq!(log.active_base_offset(), 4);
        let from: Vec<u64> = log.read_from(3).map(|r| r.offset).collect();
        assert_eq!(from, [3, 4]);
        let mut state = HashMap::new();
        apply(&mut state, log.read_from(0));
        assert_eq!(state.len(), 5);
    }
}
