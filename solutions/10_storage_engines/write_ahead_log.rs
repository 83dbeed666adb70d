// Write-ahead log — append records durably, and after a crash get back every one acknowledged.
//
// PostgreSQL, SQLite (in WAL mode) and etcd write each change to a log and fsync it before they
// answer "committed"; after a power failure they replay the log. A crash can tear the last write
// or leave garbage after it, so every record is framed: `[length: u32 LE][CRC-32 of the payload:
// u32 LE][payload]` (crc32fast's CRC-32, the IEEE polynomial).
//
// Build `Wal`. The property: a record is acknowledged (counted by `durable()`) only once it has
// been fsynced, and after any crash `open` returns every acknowledged record, in order, followed
// by nothing that was never appended. A torn or corrupt record ends the log: it and everything
// after it are cut off the file (so later appends can be read back), every record before it is
// kept; a garbage length neither panics nor reads past the end of the file. The knob `group`:
// 1 fsyncs every record; n fsyncs once n records are waiting (group commit), or on `flush`.
//
// Lab: GROUPS compares group sizes. Acknowledged records lost per crash must stay 0; appends/s on
// real files grows with the group, and so do the unacknowledged records a crash takes with it.

use std::io;

use sdlings_kit::storage_engines::durable::{Storage, WalLabKnobs, WalOps, wal_lab};

/// Bytes before each payload: its length, then its CRC-32.
pub const HEADER: usize = 8;

// ---- Your part -------------------------------------------------------------------------------

pub struct Wal<S: Storage> {
    fs: S,
    name: String,
    /// Fsync once this many records wait (1: every record).
    group: usize,
    /// Records in the log (recovered, then appended) and how many of them are fsynced.
    appended: u64,
    durable: u64,
}

impl<S: Storage> Wal<S> {
    /// Opens (or creates) the log `name` in `fs` and recovers it: returns the log and every valid
    /// record, in order. Whatever it returns is durable when it returns. Panics if `group` is 0.
    pub fn open(fs: S, name: &str, group: usize) -> io::Result<(Self, Vec<Vec<u8>>)> {
        assert!(group >= 1, "group must be at least 1 record");
        let records = if fs.list()?.iter().any(|n| n == name) {
            let mut data = vec![0; fs.file_len(name)? as usize];
            let n = fs.read_at(name, 0, &mut data)?;
            data.truncate(n);
            let (records, valid) = parse(&data);
            // Cut the torn or corrupt tail, so the next append follows the last good record.
            if valid < data.len() {
                fs.truncate(name, valid as u64)?;
            }
            // Records read back may still sit only in the page cache (a restart without a
            // crash): make them durable before calling them so.
            fs.sync(name)?;
            records
        } else {
            // A new file: its data and its name in the directory must both be made durable.
            fs.append(name, &[])?;
            fs.sync(name)?;
            fs.sync_dir()?;
            Vec::new()
        };
        let wal = Wal {
            fs,
            name: name.to_string(),
            group,
            appended: records.len() as u64,
            durable: records.len() as u64,
        };
        Ok((wal, records))
    }

    /// Appends `record` and returns its index in the log (0 for the first record ever). It is
    /// acknowledged only when `durable()` counts it.
    pub fn append(&mut self, record: &[u8]) -> io::Result<u64> {
        let len = u32::try_from(record.len()).expect("a record fits in 4 GiB");
        let mut frame = Vec::with_capacity(HEADER + record.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(record).to_le_bytes());
        frame.extend_from_slice(record);
        self.fs.append(&self.name, &frame)?;
        let index = self.appended;
        self.appended += 1;
        if self.appended - self.durable >= self.group as u64 {
            self.flush()?;
        }
        Ok(index)
    }

    /// Fsyncs every record appended so far.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.durable < self.appended {
            self.fs.sync(&self.name)?;
            // Only now, after the fsync returned, are these records acknowledged.
            self.durable = self.appended;
        }
        Ok(())
    }

    /// How many records are acknowledged: the first `durable()` records survive any crash.
    pub fn durable(&self) -> u64 {
        self.durable
    }
}

/// The valid records at the start of `data`, and the byte length they fill.
fn parse(data: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut records = Vec::new();
    let mut pos = 0;
    while data.len() - pos >= HEADER {
        let word = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"));
        let (len, crc) = (word(pos) as usize, word(pos + 4));
        // Compare with what is left, never compute with a length that may be garbage.
        if len > data.len() - pos - HEADER {
            break;
        }
        let payload = &data[pos + HEADER..pos + HEADER + len];
        if crc32fast::hash(payload) != crc {
            break;
        }
        records.push(payload.to_vec());
        pos += HEADER + len;
    }
    (records, pos)
}

// ---- Lab -------------------------------------------------------------------------------------

/// Group sizes to compare (1 = fsync every record).
const GROUPS: [usize; 4] = [1, 8, 64, 512];
/// Up to this many records are appended between two simulated crashes.
const RECORDS_PER_CRASH: usize = 2_000;
const CRASHES: u64 = 40;
const RECORD_BYTES: usize = 64;
/// Seconds of appends on real files, per group size.
const REAL_SECONDS: f64 = 0.3;

fn main() {
    let knobs = WalLabKnobs {
        groups: GROUPS.to_vec(),
        records_per_crash: RECORDS_PER_CRASH,
        crashes: CRASHES,
        record_bytes: RECORD_BYTES,
        real_seconds: REAL_SECONDS,
    };
    let ops = WalOps {
        open: |fs: Box<dyn Storage>, group| {
            let (wal, records) = Wal::open(fs, "wal", group).expect("open the log");
            (wal, records.len() as u64)
        },
        append: |wal: &mut Wal<Box<dyn Storage>>, record: &[u8]| {
            wal.append(record).expect("append");
        },
        durable: |wal: &Wal<Box<dyn Storage>>| wal.durable(),
    };
    wal_lab(&knobs, ops);
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::storage_engines::durable::SimFs;

    use super::*;

    fn open(fs: &SimFs, group: usize) -> (Wal<SimFs>, Vec<Vec<u8>>) {
        Wal::open(fs.clone(), "log", group).expect("open the log")
    }

    fn recs(names: &[&str]) -> Vec<Vec<u8>> {
        names.iter().map(|n| n.as_bytes().to_vec()).collect()
    }

    /// A log with these records, all fsynced; returns the byte offset where each one starts.
    fn log_with(fs: &SimFs, records: &[&str]) -> Vec<u64> {
        let (mut wal, _) = open(fs, 1);
        let mut starts = vec![];
        for r in records {
            starts.push(fs.contents("log").unwrap().len() as u64);
            wal.append(r.as_bytes()).unwrap();
        }
        starts
    }

    #[test]
    fn records_are_framed_as_length_then_crc32_then_payload() {
        let fs = SimFs::new();
        let (mut wal, recovered) = open(&fs, 1);
        assert!(recovered.is_empty(), "a new log has no records");
        assert_eq!(wal.append(b"hello").unwrap(), 0);
        assert_eq!(wal.append(b"").unwrap(), 1, "indexes count records");
        // CRC-32 (IEEE) of "hello" is 0x3610a686; of nothing, 0.
        let mut expected = vec![5, 0, 0, 0, 0x86, 0xa6, 0x10, 0x36];
        expected.extend_from_slice(b"hello");
        expected.extend_from_slice(&[0; 8]);
        assert_eq!(
            fs.contents("log").unwrap(),
            expected,
            "u32 length (little-endian), u32 CRC-32 of the payload, the payload; nothing else"
        );
    }

    #[test]
    fn every_acknowledged_record_survives_a_crash_from_a_brand_new_log() {
        let fs = SimFs::new();
        let (mut wal, _) = open(&fs, 1);
        wal.append(b"first").unwrap();
        assert_eq!(
            wal.durable(),
            1,
            "group 1: acknowledged as soon as append returns"
        );
        fs.crash();
        assert_eq!(
            open(&fs, 1).1,
            recs(&["first"]),
            "the record was acknowledged, so it must survive; a new file's name is durable only \
             once the directory is fsynced"
        );
    }

    #[test]
    fn an_empty_log_can_be_reopened_after_a_crash() {
        let fs = SimFs::new();
        drop(open(&fs, 1));
        fs.crash();
        let (mut wal, recovered) = open(&fs, 1);
        assert!(recovered.is_empty());
        wal.append(b"x").unwrap();
        assert_eq!(open(&fs, 1).1, recs(&["x"]));
    }

    #[test]
    fn a_record_is_not_acknowledged_when_its_fsync_fails() {
        let fs = SimFs::new();
        let (mut wal, _) = open(&fs, 1);
        wal.append(b"safe").unwrap();
        fs.fail_after(1); // the next append's write succeeds, its fsync fails
        assert!(
            wal.append(b"lost").is_err(),
            "the fsync failed: append must say so"
        );
        assert_eq!(
            wal.durable(),
            1,
            "a record counts as durable only after its fsync returned"
        );
    }

    #[test]
    fn group_commit_fsyncs_once_per_group_and_acknowledges_only_then() {
        let fs = SimFs::new();
        let (mut wal, _) = open(&fs, 4);
        fs.reset_stats();
        for i in 0..3 {
            wal.append(&[i]).unwrap();
        }
        assert_eq!(wal.durable(), 0, "3 records wait for a group of 4");
        assert_eq!(fs.stats().syncs, 0, "no fsync before the group is full");
        wal.append(&[3]).unwrap();
        assert_eq!(
            wal.durable(),
            4,
            "the 4th record fills the group: one fsync for all 4"
        );
        for i in 4..12 {
            wal.append(&[i]).unwrap();
        }
        assert_eq!(fs.stats().syncs, 3, "12 records, groups of 4: 3 fsyncs");
        wal.append(&[12]).unwrap();
        wal.flush().unwrap();
        assert_eq!(
            wal.durable(),
            13,
            "flush fsyncs and acknowledges what waits"
        );
        wal.flush().unwrap();
        assert_eq!(
            fs.stats().syncs,
            4,
            "a flush with nothing waiting does not fsync"
        );
    }

    #[test]
    fn a_crash_may_lose_unacknowledged_records_but_never_invents_any() {
        let fs = SimFs::new();
        let (mut wal, _) = open(&fs, 3);
        for r in ["a", "b", "c", "d"] {
            wal.append(r.as_bytes()).unwrap();
        }
        fs.crash();
        assert_eq!(
            open(&fs, 3).1,
            recs(&["a", "b", "c"]),
            "d was never fsynced"
        );
    }

    #[test]
    fn reopening_continues_the_indexes_and_makes_recovered_records_durable() {
        let fs = SimFs::new();
        let (mut wal, _) = open(&fs, 10);
        wal.append(b"a").unwrap();
        wal.append(b"b").unwrap();
        drop(wal); // a clean restart: the records are in the file, not yet fsynced
        let (mut wal, recovered) = open(&fs, 10);
        assert_eq!(recovered, recs(&["a", "b"]));
        assert_eq!(wal.durable(), 2, "open returns records it has made durable");
        assert_eq!(
            wal.append(b"c").unwrap(),
            2,
            "the third record of the log has index 2"
        );
        fs.crash();
        assert_eq!(open(&fs, 10).1, recs(&["a", "b"]));
    }

    #[test]
    fn a_big_record_and_an_empty_one_at_the_end_are_read_back() {
        let (fs, big) = (SimFs::new(), "x".repeat(100_000));
        log_with(&fs, &["a", &big, ""]);
        assert_eq!(
            open(&fs, 1).1,
            recs(&["a", &big, ""]),
            "a 100 000-byte record (read the whole file), then an empty one: a bare header"
        );
    }

    #[test]
    fn a_corrupt_record_ends_the_log_and_is_cut_so_new_records_can_be_read() {
        for (what, byte, bit) in [("payload", 8, 3), ("crc", 4, 0), ("length", 0, 2)] {
            let fs = SimFs::new();
            let starts = log_with(&fs, &["zero", "one", "two", "three"]);
            fs.flip_bit("log", starts[2] + byte, bit);
            let (mut wal, recovered) = open(&fs, 1);
            assert_eq!(
                recovered,
                recs(&["zero", "one"]),
                "a flipped bit in record 2's {what}: keep the records before it, and nothing from \
                 it on (not the bad record, not the ones after it)"
            );
            assert_eq!(
                fs.contents("log").unwrap().len() as u64,
                starts[2],
                "cut at record 2"
            );
            wal.append(b"four").unwrap();
            assert_eq!(
                open(&fs, 1).1,
                recs(&["zero", "one", "four"]),
                "after the cut, a new record follows the last good one"
            );
        }
    }

    #[test]
    fn a_huge_garbage_length_ends_the_log_without_panicking_or_reading_past_the_end() {
        for len in [20, 1 << 30, u32::MAX] {
            let fs = SimFs::new();
            let starts = log_with(&fs, &["kept", "torn"]);
            let mut data = fs.contents("log").unwrap();
            for (i, b) in len.to_le_bytes().iter().enumerate() {
                for bit in 0..8 {
                    if (data[starts[1] as usize + i] ^ b) & (1 << bit) != 0 {
                        fs.flip_bit("log", starts[1] + i as u64, bit);
                    }
                }
            }
            data = fs.contents("log").unwrap();
            fs.reset_stats();
            let (_, recovered) = open(&fs, 1);
            assert_eq!(
                recovered,
                recs(&["kept"]),
                "length {len} runs past the end of the file"
            );
            assert!(
                fs.stats().largest_read <= data.len() as u64,
                "length {len}: read at most the file's {} bytes, not what a garbage length says",
                data.len()
            );
        }
    }

    #[test]
    fn a_torn_tail_is_cut_and_every_record_before_it_kept() {
        for seed in 0..40 {
            let fs = SimFs::new();
            let (mut wal, _) = open(&fs, 100);
            wal.append(b"one").unwrap();
            wal.append(b"two").unwrap();
            wal.flush().unwrap();
            wal.append(b"three, never fsynced").unwrap();
            fs.crash_torn(seed);
            let (mut wal, recovered) = open(&fs, 1);
            assert!(
                recovered == recs(&["one", "two"])
                    || recovered == recs(&["one", "two", "three, never fsynced"]),
                "seed {seed}: the acknowledged records, then at most the whole third: {recovered:?}"
            );
            wal.append(b"four").unwrap();
            let after = open(&fs, 1).1;
            assert_eq!(
                after.last().unwrap(),
                b"four",
                "seed {seed}: the new record is readable"
            );
        }
    }

    #[test]
    fn recovers_exactly_an_acknowledged_prefix_over_random_crashes() {
        sdlings_kit::property::for_seeds(60, |rng| {
            let fs = SimFs::new();
            let group = [1, 2, 3, 5, 8][rng.random_range(0..5)];
            let (mut wal, _) = open(&fs, group);
            // The model: every record in the log, how many are acknowledged, how many wait.
            let (mut log, mut acked, mut waiting): (Vec<Vec<u8>>, u64, u64) = (vec![], 0, 0);
            for step in 0..40 {
                match rng.random_range(0..20) {
                    0..14 => {
                        let len = rng.random_range(0..30);
                        let record: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                        let index = wal.append(&record).unwrap();
                        assert_eq!(index, log.len() as u64, "group {group}, step {step}: index");
                        log.push(record);
                        waiting += 1;
                        if waiting == group as u64 {
                            (acked, waiting) = (log.len() as u64, 0);
                        }
                    }
                    14 => {
                        wal.flush().unwrap();
                        (acked, waiting) = (log.len() as u64, 0);
                    }
                    k => {
                        drop(wal);
                        match k {
                            15 | 16 => fs.crash(),
                            17 | 18 => fs.crash_torn(rng.random()),
                            _ => {} // a restart without a crash
                        }
                        let recovered;
                        (wal, recovered) = open(&fs, group);
                        assert!(
                            recovered.len() as u64 >= acked && log.starts_with(&recovered),
                            "group {group}, step {step}: {acked} acknowledged of {} appended, \
                             recovered {} that must be a prefix of what was appended",
                            log.len(),
                            recovered.len()
                        );
                        log = recovered;
                        (acked, waiting) = (log.len() as u64, 0);
                    }
                }
                assert_eq!(
                    wal.durable(),
                    acked,
                    "group {group}, step {step}: durable()"
                );
            }
        });
    }
}
