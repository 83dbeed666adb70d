// Bitcask — a key-value store that appends every write to a log and keeps the index in memory.
//
// Riak's default storage engine (Sheehy & Smith, Basho, 2010): each put or delete appends one
// record to the active data file; an in-memory "keydir" maps every live key to the file, offset
// and size of its latest value, so a get is one read. Overwritten values and deletes leave dead
// records behind; `merge` rewrites the live ones into a new file and drops the old files.
//
// Build `Bitcask` on `Storage` (the record format is given below). The properties: a put or
// delete is durable when it returns; restarting rebuilds the keydir by scanning the files, and the
// newest record of a key wins (a delete stays deleted, across merges and restarts); a get does
// one read of the storage, not a scan; after a merge the files hold only the live records; and a
// crash at any point of a merge loses nothing (old files go only once the new one is safe).
// Keep every file of the store in `fs`; return errors with `?`, never panic on them.
//
// Lab: puts and deletes on real files, a merge per round. Turn KEYS up: each merge copies more
// live data, so write amplification grows while the space a merge reclaims shrinks.

use std::collections::HashMap;
use std::io;

use sdlings_kit::storage_engines::durable::{KvLabKnobs, KvOps, Storage, kv_lab};

// ---- Your part -------------------------------------------------------------------------------

/// Where a key's latest value lives.
#[derive(Debug, Clone)]
struct Location {
    file: u64,
    offset: u64,
    len: u64,
}

pub struct Bitcask<S: Storage> {
    fs: S,
    keydir: HashMap<Vec<u8>, Location>,
    /// The generation of the file appends go to; data files are named `data.<generation>`.
    active: u64,
}

fn data_file(generation: u64) -> String {
    format!("data.{generation}")
}

fn generation(file: &str) -> Option<u64> {
    file.strip_prefix("data.")?.parse().ok()
}

impl<S: Storage> Bitcask<S> {
    /// Opens the store in `fs` (empty or not), rebuilding the keydir from the data files.
    pub fn open(fs: S) -> io::Result<Self> {
        let mut generations: Vec<u64> = fs.list()?.iter().filter_map(|n| generation(n)).collect();
        // Replay oldest first, so a key's newest record wins; numerically (data.10 > data.9).
        generations.sort_unstable();
        let mut keydir = HashMap::new();
        for &generation in &generations {
            let name = data_file(generation);
            let mut data = vec![0; fs.file_len(&name)? as usize];
            let n = fs.read_at(&name, 0, &mut data)?;
            let mut pos = 0;
            // A torn or corrupt record ends the file: it was never acknowledged.
            while let Some((key, value, len)) = decode(&data[pos..n]) {
                match value {
                    Some(v) => {
                        let offset = (pos + len - v.len()) as u64;
                        let (file, len) = (generation, v.len() as u64);
                        keydir.insert(key.to_vec(), Location { file, offset, len })
                    }
                    None => keydir.remove(key),
                };
                pos += len;
            }
        }
        // Never append after a possibly torn tail: writes go to a new file, whose name must be
        // durable before anything in it can be.
        let active = generations.last().map_or(0, |g| g + 1);
        fs.append(&data_file(active), &[])?;
        fs.sync(&data_file(active))?;
        fs.sync_dir()?;
        Ok(Bitcask { fs, keydir, active })
    }

    /// The latest value of `key`, if it has one.
    pub fn get(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let Some(loc) = self.keydir.get(key) else {
            return Ok(None);
        };
        let name = data_file(loc.file);
        let mut value = vec![0; loc.len as usize];
        let n = self.fs.read_at(&name, loc.offset, &mut value)?;
        if n < value.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "value cut short",
            ));
        }
        Ok(Some(value))
    }

    /// Sets `key` to `value`, durably.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        let offset = self.append(&encode(key, Some(value)))? + (RECORD_HEADER + key.len()) as u64;
        let (file, len) = (self.active, value.len() as u64);
        self.keydir
            .insert(key.to_vec(), Location { file, offset, len });
        Ok(())
    }

    /// Deletes `key`, durably: a tombstone record, so that restarts do not bring it back.
    pub fn delete(&mut self, key: &[u8]) -> io::Result<()> {
        if self.keydir.contains_key(key) {
            self.append(&encode(key, None))?;
            self.keydir.remove(key);
        }
        Ok(())
    }

    /// Appends and fsyncs a record to the active file; returns the offset it starts at.
    fn append(&mut self, record: &[u8]) -> io::Result<u64> {
        let name = data_file(self.active);
        let offset = self.fs.file_len(&name)?;
        self.fs.append(&name, record)?;
        self.fs.sync(&name)?;
        Ok(offset)
    }

    /// Rewrites the live records into one new file and removes the old files.
    pub fn merge(&mut self) -> io::Result<()> {
        const TMP: &str = "merge.tmp";
        let merged = self.active + 1;
        if self.fs.list()?.iter().any(|n| n == TMP) {
            self.fs.remove(TMP)?; // left by a merge that failed
        }
        let mut keys: Vec<&Vec<u8>> = self.keydir.keys().collect();
        keys.sort();
        let (mut keydir, mut offset) = (HashMap::new(), 0);
        let mut batch = Vec::new();
        for key in keys {
            let value = self.get(key)?.expect("a key in the keydir has a value");
            let record = encode(key, Some(&value));
            let value_at = offset + (RECORD_HEADER + key.len()) as u64;
            let len = value.len() as u64;
            keydir.insert(
                key.clone(),
                Location {
                    file: merged,
                    offset: value_at,
                    len,
                },
            );
            offset += record.len() as u64;
            batch.extend_from_slice(&record);
        }
        // 1. the new file's data is durable; 2. it takes its name atomically, durably; 3. only
        // then may the old files go. A crash before 2 leaves the old files; after it, both.
        self.fs.append(TMP, &batch)?;
        self.fs.sync(TMP)?;
        self.fs.rename(TMP, &data_file(merged))?;
        self.fs.sync_dir()?;
        for name in self.fs.list()? {
            if generation(&name).is_some_and(|g| g < merged) {
                self.fs.remove(&name)?;
            }
        }
        self.fs.sync_dir()?;
        self.keydir = keydir;
        self.active = merged;
        Ok(())
    }
}

// ---- Given: the record format ----------------------------------------------------------------

/// `[CRC-32 of the rest: u32][key length: u32][value length: u32, or TOMBSTONE][key][value]`,
/// little-endian.
pub const RECORD_HEADER: usize = 12;
const TOMBSTONE: u32 = u32::MAX;

/// A put (`Some(value)`) or a delete (`None`) of `key`, as bytes to append.
pub fn encode(key: &[u8], value: Option<&[u8]>) -> Vec<u8> {
    let value_len = value.map_or(TOMBSTONE, |v| v.len() as u32);
    let mut record = vec![0; 4];
    record.extend_from_slice(&(key.len() as u32).to_le_bytes());
    record.extend_from_slice(&value_len.to_le_bytes());
    record.extend_from_slice(key);
    record.extend_from_slice(value.unwrap_or_default());
    let crc = crc32fast::hash(&record[4..]);
    record[..4].copy_from_slice(&crc.to_le_bytes());
    record
}

/// The record at the start of `buf`: its key, its value (`None`: a tombstone) and its length in
/// bytes; `None` if `buf` does not start with a whole, intact record.
pub fn decode(buf: &[u8]) -> Option<(&[u8], Option<&[u8]>, usize)> {
    let word = |i: usize| Some(u32::from_le_bytes(buf.get(i..i + 4)?.try_into().ok()?));
    let (crc, key_len, value_len) = (word(0)?, word(4)? as usize, word(8)?);
    let stored = if value_len == TOMBSTONE {
        0
    } else {
        value_len as usize
    };
    let len = RECORD_HEADER.checked_add(key_len)?.checked_add(stored)?;
    let body = buf.get(4..len)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    let key = &buf[RECORD_HEADER..RECORD_HEADER + key_len];
    let value = (value_len != TOMBSTONE).then(|| &buf[RECORD_HEADER + key_len..len]);
    Some((key, value, len))
}

// ---- Lab -------------------------------------------------------------------------------------

/// Distinct keys written, bytes per value, writes between two merges (each one fsynced: a few
/// milliseconds apiece on many disks), and merges.
const KEYS: u64 = 40;
const VALUE_BYTES: usize = 100;
const WRITES_PER_ROUND: usize = 120;
const ROUNDS: usize = 3;
/// The share of writes that are deletes.
const DELETE_SHARE: f64 = 0.1;

fn main() {
    let knobs = KvLabKnobs {
        keys: KEYS,
        value_bytes: VALUE_BYTES,
        writes_per_round: WRITES_PER_ROUND,
        rounds: ROUNDS,
        delete_share: DELETE_SHARE,
    };
    type Db = Bitcask<Box<dyn Storage>>;
    let ops = KvOps {
        open: |fs: Box<dyn Storage>| Bitcask::open(fs).expect("open the store"),
        put: |db: &mut Db, key: &[u8], value: &[u8]| db.put(key, value).expect("put"),
        delete: |db: &mut Db, key: &[u8]| db.delete(key).expect("delete"),
        get: |db: &Db, key: &[u8]| db.get(key).expect("get"),
        merge: |db: &mut Db| db.merge().expect("merge"),
    };
    kv_lab(&knobs, ops);
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::storage_engines::durable::SimFs;

    use super::*;

    fn open(fs: &SimFs) -> Bitcask<SimFs> {
        Bitcask::open(fs.clone()).expect("open the store")
    }

    fn get(db: &Bitcask<SimFs>, key: &str) -> Option<String> {
        let value = db.get(key.as_bytes()).expect("get");
        value.map(|v| String::from_utf8(v).unwrap())
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    /// A store where `a` was overwritten, `b` deleted, `c` kept: the live records are a=3, c=1.
    fn churned(fs: &SimFs) -> Bitcask<SimFs> {
        let mut db = open(fs);
        for (k, v) in [("a", "1"), ("b", "1"), ("c", "1"), ("a", "2"), ("a", "3")] {
            db.put(k.as_bytes(), v.as_bytes()).unwrap();
        }
        db.delete(b"b").unwrap();
        db
    }

    fn check_churned(db: &Bitcask<SimFs>, why: &str) {
        let found = [get(db, "a"), get(db, "b"), get(db, "c")];
        assert_eq!(
            found,
            [some("3"), None, some("1")],
            "{why}: a=3, b deleted, c=1"
        );
    }

    #[test]
    fn put_get_overwrite_and_delete() {
        let fs = SimFs::new();
        let mut db = open(&fs);
        assert_eq!(get(&db, "k"), None, "a new store is empty");
        db.put(b"k", b"v1").unwrap();
        db.put(b"other", b"").unwrap();
        assert_eq!(get(&db, "k"), some("v1"));
        db.put(b"k", b"v2").unwrap();
        assert_eq!(get(&db, "k"), some("v2"), "the latest put wins");
        assert_eq!(
            get(&db, "other"),
            some(""),
            "an empty value is a value, not a delete"
        );
        db.delete(b"k").unwrap();
        db.delete(b"never-there").unwrap();
        assert_eq!(get(&db, "k"), None);
    }

    #[test]
    fn a_restart_rebuilds_the_keydir_and_deletes_stay_deleted() {
        let fs = SimFs::new();
        drop(churned(&fs));
        check_churned(&open(&fs), "after a restart");
        fs.crash();
        check_churned(
            &open(&fs),
            "after a crash: every put and delete returned, so is durable",
        );
    }

    #[test]
    fn the_newest_record_wins_across_many_files() {
        let fs = SimFs::new();
        for i in 0..12 {
            let mut db = open(&fs);
            assert_eq!(
                get(&db, "k"),
                (i > 0).then(|| (i - 1).to_string()),
                "restart {i}"
            );
            db.put(b"k", i.to_string().as_bytes()).unwrap();
            if i == 5 {
                db.delete(b"k").unwrap();
                db.put(b"k", b"5").unwrap();
            }
        }
        assert_eq!(
            get(&open(&fs), "k"),
            some("11"),
            "files listed in any order: replay by age"
        );
    }

    #[test]
    fn a_get_is_one_read_of_the_value_not_a_scan() {
        let fs = SimFs::new();
        let mut db = churned(&fs);
        for i in 0..50u32 {
            db.put(&i.to_le_bytes(), &[7; 40]).unwrap();
        }
        for db in [db, open(&fs)] {
            fs.reset_stats();
            assert_eq!(get(&db, "c"), some("1"));
            let stats = fs.stats();
            assert_eq!(
                stats.reads, 1,
                "one read per get, at the offset the keydir holds"
            );
            let record = encode(b"c", Some(b"1")).len() as u64;
            assert!(
                stats.bytes_read <= record,
                "read the value (or its record), not the file"
            );
        }
    }

    #[test]
    fn merge_keeps_only_the_live_records() {
        let fs = SimFs::new();
        let mut db = churned(&fs);
        fs.fail_after(1); // the merge writes its new file, then fails: the file stays behind
        assert!(db.merge().is_err(), "the merge's fsync failed");
        fs.fail_after(u64::MAX); // the error passes; merging again must start afresh
        db.merge().unwrap();
        check_churned(&db, "after a merge");
        let live = encode(b"a", Some(b"3")).len() + encode(b"c", Some(b"1")).len();
        assert_eq!(
            fs.total_bytes(),
            live as u64,
            "after a merge the files hold the two live records and nothing else (no old files, \
             no overwritten values, no tombstones)"
        );
        db.put(b"d", b"4").unwrap();
        db.delete(b"a").unwrap();
        fs.crash();
        let db = open(&fs);
        let found = [get(&db, "a"), get(&db, "b"), get(&db, "c"), get(&db, "d")];
        assert_eq!(
            found,
            [None, None, some("1"), some("4")],
            "writes after a merge are durable"
        );
    }

    #[test]
    fn a_crash_at_any_step_of_a_merge_loses_nothing() {
        for steps in 0.. {
            let fs = SimFs::new();
            let mut db = churned(&fs);
            fs.fail_after(steps);
            let merged = db.merge().is_ok();
            fs.crash();
            let mut db = open(&fs);
            check_churned(
                &db,
                &format!("a crash {steps} file operations into a merge"),
            );
            db.put(b"e", b"5").unwrap();
            fs.crash();
            let db = open(&fs);
            check_churned(
                &db,
                &format!("a crash {steps} operations into a merge, then a put"),
            );
            assert_eq!(get(&db, "e"), some("5"));
            if merged {
                break;
            }
        }
    }

    #[test]
    fn a_torn_put_is_dropped_and_later_writes_still_survive() {
        for seed in 0..30 {
            let fs = SimFs::new();
            drop(churned(&fs));
            let mut db = open(&fs);
            fs.fail_after(1); // the put's append succeeds, its fsync fails
            assert!(
                db.put(b"torn", &[9; 30]).is_err(),
                "a failed fsync fails the put"
            );
            assert_eq!(
                db.get(b"torn").ok(),
                Some(None),
                "a put that failed is not in the keydir (no read needed to say so)"
            );
            fs.crash_torn(seed);
            let mut db = Bitcask::open(fs.clone()).expect("a torn tail is not an error");
            check_churned(&db, &format!("seed {seed}: after a torn put"));
            db.put(b"after", b"ok").unwrap();
            fs.crash();
            let db = open(&fs);
            assert_eq!(
                get(&db, "after"),
                some("ok"),
                "seed {seed}: not hidden behind a torn tail"
            );
        }
    }

    #[test]
    fn matches_a_hash_map_over_random_puts_deletes_merges_and_crashes() {
        sdlings_kit::property::for_seeds(40, |rng| {
            let fs = SimFs::new();
            let mut db = open(&fs);
            let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            let keys = rng.random_range(1..8u8);
            for step in 0..60 {
                let key = vec![b'k', rng.random_range(0..keys)];
                match rng.random_range(0..20) {
                    0..10 => {
                        let value: Vec<u8> =
                            (0..rng.random_range(0..12)).map(|_| rng.random()).collect();
                        db.put(&key, &value).unwrap();
                        model.insert(key, value);
                    }
                    10..14 => {
                        db.delete(&key).unwrap();
                        model.remove(&key);
                    }
                    14 | 15 => db.merge().unwrap(),
                    16 => {
                        fs.fail_after(rng.random_range(0..12));
                        let _ = db.merge();
                        fs.crash();
                        db = open(&fs);
                    }
                    17 => {
                        drop(db);
                        db = open(&fs);
                    }
                    _ => {
                        fs.crash_torn(rng.random());
                        db = open(&fs);
                    }
                }
                for k in 0..keys {
                    let key = vec![b'k', k];
                    let expected = model.get(&key).cloned();
                    assert_eq!(db.get(&key).unwrap(), expected, "step {step}, key {key:?}");
                }
            }
        });
    }
}
