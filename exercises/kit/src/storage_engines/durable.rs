//! A crash-injecting simulated file system, the `Storage` trait the storage exercises program
//! against, the same trait on a real directory, and the labs of `write_ahead_log` and `bitcask`.
//!
//! # The model (`SimFs`)
//!
//! One flat directory of named files of bytes. Each file has its current content (what reads
//! see) and its *durable* content (what survives a crash): `sync(name)` makes the current content
//! durable, as fsync(2) does for a file's data. The directory has its current names and its
//! durable names: `sync_dir()` makes every name (creations, renames, removals) durable, as an
//! fsync of the directory does on Linux. This is the strict POSIX reading, stricter than ext4
//! usually is in practice: a file created, renamed or removed since the last `sync_dir` goes back
//! to its old name (or away) in a crash, whatever was fsynced inside it. So "forgot to fsync",
//! "forgot to fsync the directory" and "renamed before the data was fsynced" all lose data here.
//!
//! `crash()` rolls every file back to its durable content and the directory to its durable names.
//! `crash_torn(seed)` does the same, except that a file whose changes since its last sync are
//! appends only keeps a seeded random prefix of them, the last few bytes of which may be garbage
//! (a torn write: the sectors in flight when power failed). Synced bytes are never touched.
//! `flip_bit` corrupts a byte durably (bit rot). `fail_after(n)` lets the next `n` mutating
//! operations succeed, then fails every operation (as if the process had died there) until the
//! next crash: it places a crash between any two steps of a protocol. Everything is deterministic.
//!
//! `list()` returns names in a fixed but unsorted order, as readdir(3) does: sort them yourself.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rand::RngExt;

use crate::lab::Table;
use crate::workload::seeded_rng;

/// A directory of files, as the storage exercises see it. Names are plain file names (no `/`).
/// Every method takes `&self`: a handle can be shared, as a file system is.
pub trait Storage {
    /// Appends `data` to the end of `name`, creating the file if it does not exist.
    fn append(&self, name: &str, data: &[u8]) -> io::Result<()>;
    /// Reads into `buf` from `offset`, as pread(2): returns how many bytes were read, fewer than
    /// `buf.len()` only at the end of the file. `NotFound` if the file does not exist.
    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// The file's length in bytes; `NotFound` if it does not exist.
    fn file_len(&self, name: &str) -> io::Result<u64>;
    /// Cuts the file to `len` bytes (never longer).
    fn truncate(&self, name: &str, len: u64) -> io::Result<()>;
    /// fsync(2) of the file: its current content survives a crash (its name does not, yet).
    fn sync(&self, name: &str) -> io::Result<()>;
    /// fsync(2) of the directory: every creation, rename and removal so far survives a crash.
    fn sync_dir(&self) -> io::Result<()>;
    /// rename(2): atomically gives `from`'s file the name `to`, replacing any file called `to`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes the name (and the file).
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Every file name, in no particular order.
    fn list(&self) -> io::Result<Vec<String>>;
}

impl<T: Storage + ?Sized> Storage for Box<T> {
    fn append(&self, name: &str, data: &[u8]) -> io::Result<()> {
        (**self).append(name, data)
    }
    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(name, offset, buf)
    }
    fn file_len(&self, name: &str) -> io::Result<u64> {
        (**self).file_len(name)
    }
    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        (**self).truncate(name, len)
    }
    fn sync(&self, name: &str) -> io::Result<()> {
        (**self).sync(name)
    }
    fn sync_dir(&self) -> io::Result<()> {
        (**self).sync_dir()
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        (**self).rename(from, to)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        (**self).remove(name)
    }
    fn list(&self) -> io::Result<Vec<String>> {
        (**self).list()
    }
}

/// What a `SimFs` has been asked to do since the last `reset_stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// `read_at` calls, the bytes they returned, and the largest buffer one was given.
    pub reads: u64,
    pub bytes_read: u64,
    pub largest_read: u64,
    /// `append` calls and the bytes they wrote.
    pub appends: u64,
    pub bytes_written: u64,
    /// `sync` and `sync_dir` calls.
    pub syncs: u64,
    pub dir_syncs: u64,
}

#[derive(Debug, Clone, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// Truncated since the last sync (otherwise only appended to: `durable` is a prefix of `data`).
    rewritten: bool,
}

#[derive(Debug, Clone, Default)]
struct Inner {
    inodes: HashMap<u64, Inode>,
    names: HashMap<String, u64>,
    durable_names: HashMap<String, u64>,
    next_inode: u64,
    stats: Stats,
    /// Mutating operations still allowed before the simulated process death.
    budget: Option<u64>,
    dead: bool,
}

/// The simulated file system: a cheap handle (clones share the same files).
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    inner: Arc<Mutex<Inner>>,
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file named {name:?}"))
}

/// A fixed, unsorted order for `list` (FNV-1a of the name).
fn scramble(name: &str) -> u64 {
    crate::hashing::fnv1a64(name.as_bytes())
}

impl Inner {
    fn inode(&mut self, name: &str) -> io::Result<&mut Inode> {
        let id = *self.names.get(name).ok_or_else(|| not_found(name))?;
        Ok(self.inodes.get_mut(&id).expect("a named inode exists"))
    }

    /// Every operation checks the process is alive; mutating ones spend the budget.
    fn alive(&mut self, mutating: bool) -> io::Result<()> {
        if mutating && !self.dead {
            match &mut self.budget {
                Some(0) => self.dead = true,
                Some(n) => *n -= 1,
                None => {}
            }
        }
        if self.dead {
            return Err(io::Error::other(
                "simulated crash: the process died here (SimFs::fail_after)",
            ));
        }
        Ok(())
    }

    fn collect_garbage(&mut self) {
        let live: Vec<u64> = self
            .names
            .values()
            .chain(self.durable_names.values())
            .copied()
            .collect();
        self.inodes.retain(|id, _| live.contains(id));
    }
}

impl SimFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An independent copy of this file system, in its current state (files, durability, stats).
    pub fn fork(&self) -> SimFs {
        SimFs {
            inner: Arc::new(Mutex::new(self.lock().clone())),
        }
    }

    /// A power failure: every file goes back to its content at its last `sync`, the directory to
    /// its names at the last `sync_dir`. Also ends a `fail_after`.
    pub fn crash(&self) {
        self.crash_with(None);
    }

    /// A power failure that tears writes: like `crash`, but a file with only appends since its
    /// last sync keeps a random prefix of them (chosen by `seed`), possibly ending in garbage.
    pub fn crash_torn(&self, seed: u64) {
        self.crash_with(Some(seed));
    }

    fn crash_with(&self, seed: Option<u64>) {
        let mut fs = self.lock();
        let mut rng = seeded_rng(seed.unwrap_or(0));
        fs.names = fs.durable_names.clone();
        fs.collect_garbage();
        let mut ids: Vec<u64> = fs.inodes.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let file = fs.inodes.get_mut(&id).expect("listed");
            let synced = file.durable.len();
            let appended_only = !file.rewritten && file.data.len() > synced;
            let mut survivor = file.durable.clone();
            if seed.is_some() && appended_only {
                let pending = &file.data[synced..];
                let keep = rng.random_range(0..=pending.len());
                survivor.extend_from_slice(&pending[..keep]);
                if rng.random_bool(0.5) {
                    let garbage = rng.random_range(0..=keep.min(8));
                    let len = survivor.len();
                    for b in &mut survivor[len - garbage..] {
                        *b = rng.random();
                    }
                }
            }
            file.data = survivor.clone();
            file.durable = survivor;
            file.rewritten = false;
        }
        fs.budget = None;
        fs.dead = false;
    }

    /// The next `n` mutating operations (append, truncate, sync, sync_dir, rename, remove)
    /// succeed; every operation after them fails, as if the process died, until a crash.
    pub fn fail_after(&self, n: u64) {
        let mut fs = self.lock();
        fs.budget = Some(n);
        fs.dead = false;
    }

    /// Flips bit `bit` (0..8) of byte `offset` of `name`, in its current and durable content.
    pub fn flip_bit(&self, name: &str, offset: u64, bit: u8) {
        let mut fs = self.lock();
        let file = fs.inode(name).expect("flip_bit: the file exists");
        let i = offset as usize;
        file.data[i] ^= 1 << bit;
        if i < file.durable.len() {
            file.durable[i] ^= 1 << bit;
        }
    }

    /// The current content of `name` (for tests and labs; counts as no read).
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        let mut fs = self.lock();
        fs.inode(name).ok().map(|f| f.data.clone())
    }

    /// The sum of the current lengths of all files.
    pub fn total_bytes(&self) -> u64 {
        let fs = self.lock();
        fs.names
            .values()
            .map(|id| fs.inodes[id].data.len() as u64)
            .sum()
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats
    }

    pub fn reset_stats(&self) {
        self.lock().stats = Stats::default();
    }
}

impl Storage for SimFs {
    fn append(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let mut fs = self.lock();
        fs.alive(true)?;
        fs.stats.appends += 1;
        fs.stats.bytes_written += data.len() as u64;
        if !fs.names.contains_key(name) {
            let id = fs.next_inode;
            fs.next_inode += 1;
            fs.inodes.insert(id, Inode::default());
            fs.names.insert(name.to_string(), id);
        }
        fs.inode(name)?.data.extend_from_slice(data);
        Ok(())
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut fs = self.lock();
        fs.alive(false)?;
        fs.stats.reads += 1;
        fs.stats.largest_read = fs.stats.largest_read.max(buf.len() as u64);
        let data = &fs.inode(name)?.data;
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        fs.stats.bytes_read += n as u64;
        Ok(n)
    }

    fn file_len(&self, name: &str) -> io::Result<u64> {
        let mut fs = self.lock();
        fs.alive(false)?;
        Ok(fs.inode(name)?.data.len() as u64)
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        let mut fs = self.lock();
        fs.alive(true)?;
        let file = fs.inode(name)?;
        file.data.truncate(len as usize);
        file.rewritten = true;
        Ok(())
    }

    fn sync(&self, name: &str) -> io::Result<()> {
        let mut fs = self.lock();
        fs.alive(true)?;
        fs.stats.syncs += 1;
        let file = fs.inode(name)?;
        if file.rewritten {
            file.durable = file.data.clone();
            file.rewritten = false;
        } else {
            // Only appends since the last sync: copy just them (keeps long logs cheap).
            let synced = file.durable.len();
            file.durable.extend_from_slice(&file.data[synced..]);
        }
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut fs = self.lock();
        fs.alive(true)?;
        fs.stats.dir_syncs += 1;
        fs.durable_names = fs.names.clone();
        fs.collect_garbage();
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut fs = self.lock();
        fs.alive(true)?;
        let id = fs.names.remove(from).ok_or_else(|| not_found(from))?;
        fs.names.insert(to.to_string(), id);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut fs = self.lock();
        fs.alive(true)?;
        fs.names.remove(name).ok_or_else(|| not_found(name))?;
        Ok(())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut fs = self.lock();
        fs.alive(false)?;
        let mut names: Vec<String> = fs.names.keys().cloned().collect();
        names.sort_by_key(|n| scramble(n));
        Ok(names)
    }
}

/// `Storage` on a real directory (a temporary one for the labs), with the real fsyncs.
pub struct RealDir {
    dir: tempfile::TempDir,
    open: Mutex<HashMap<String, File>>,
}

impl RealDir {
    /// A fresh temporary directory, removed when this is dropped.
    pub fn temp() -> io::Result<Self> {
        Ok(RealDir {
            dir: tempfile::tempdir()?,
            open: Mutex::new(HashMap::new()),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `f` on the open file `name` (opened for reading and appending, created if `create`).
    fn with_file<T>(
        &self,
        name: &str,
        create: bool,
        f: impl FnOnce(&mut File) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if !open.contains_key(name) {
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(create)
                .open(self.path(name))?;
            open.insert(name.to_string(), file);
        }
        f(open.get_mut(name).expect("just opened"))
    }

    fn forget(&self, name: &str) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}

impl Storage for RealDir {
    fn append(&self, name: &str, data: &[u8]) -> io::Result<()> {
        self.with_file(name, true, |f| f.write_all(data))
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.with_file(name, false, |f| {
            f.seek(SeekFrom::Start(offset))?;
            let mut n = 0;
            while n < buf.len() {
                match f.read(&mut buf[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            Ok(n)
        })
    }

    fn file_len(&self, name: &str) -> io::Result<u64> {
        Ok(std::fs::metadata(self.path(name))?.len())
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        self.with_file(name, false, |f| f.set_len(len))
    }

    fn sync(&self, name: &str) -> io::Result<()> {
        self.with_file(name, false, |f| f.sync_data())
    }

    fn sync_dir(&self) -> io::Result<()> {
        // Directories cannot be opened (nor fsynced) on Windows; there rename is durable enough.
        match File::open(self.dir.path()) {
            Ok(dir) => dir.sync_all().or(Ok(())),
            Err(_) => Ok(()),
        }
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.forget(from);
        self.forget(to);
        std::fs::rename(self.path(from), self.path(to))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.forget(name);
        std::fs::remove_file(self.path(name))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        std::fs::read_dir(self.dir.path())?
            .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
            .collect()
    }
}

// ---- The write-ahead log's lab ---------------------------------------------------------------

/// The knobs of the `write_ahead_log` lab.
pub struct WalLabKnobs {
    /// Group sizes to compare (1 = fsync every record).
    pub groups: Vec<usize>,
    /// Records appended between two crashes, crashes per policy, and the record size.
    pub records_per_crash: usize,
    pub crashes: u64,
    pub record_bytes: usize,
    /// How long to append on real files per policy, for appends/s.
    pub real_seconds: f64,
}

/// The operations the lab needs from the learner's log, as closures: `open(storage, group)`
/// returns the log and the number of records it recovered; `append` appends one record;
/// `durable` is how many records are acknowledged as durable.
pub struct WalOps<W, O, A, D>
where
    O: Fn(Box<dyn Storage>, usize) -> (W, u64),
    A: Fn(&mut W, &[u8]),
    D: Fn(&W) -> u64,
{
    pub open: O,
    pub append: A,
    pub durable: D,
}

/// For each group size: acknowledged records lost per crash (simulated; must be 0), records
/// appended but not acknowledged when the crash came, fsyncs per record, and appends/s on real
/// files in a temporary directory (whole groups, so every record timed was fsynced).
pub fn wal_lab<W, O, A, D>(knobs: &WalLabKnobs, ops: WalOps<W, O, A, D>)
where
    O: Fn(Box<dyn Storage>, usize) -> (W, u64),
    A: Fn(&mut W, &[u8]),
    D: Fn(&W) -> u64,
{
    let mut table = Table::new(&[
        "group",
        "acked lost/crash",
        "unacked lost/crash",
        "fsyncs/record",
        "appends/s (real files)",
    ]);
    let mut bars = Vec::new();
    let record = vec![0xAB; knobs.record_bytes];
    for &group in &knobs.groups {
        let mut rng = seeded_rng(group as u64);
        let (mut acked_lost, mut unacked_lost, mut appended, mut syncs) = (0, 0, 0u64, 0);
        for c in 0..knobs.crashes {
            // A fresh log per crash keeps the files (and the lab) small.
            let fs = SimFs::new();
            let (mut wal, before) = (ops.open)(Box::new(fs.clone()), group);
            let n = rng.random_range(1..=knobs.records_per_crash);
            let syncs_before = fs.stats().syncs;
            for _ in 0..n {
                (ops.append)(&mut wal, &record);
            }
            syncs += fs.stats().syncs - syncs_before;
            appended += n as u64;
            let acked = (ops.durable)(&wal);
            drop(wal);
            fs.crash_torn(c);
            let (_, after) = (ops.open)(Box::new(fs.clone()), group);
            acked_lost += acked.saturating_sub(after);
            unacked_lost += (before + n as u64).saturating_sub(after.max(acked));
        }
        let syncs = syncs as f64 / appended as f64;
        let dir = RealDir::temp().expect("a temporary directory");
        let (mut wal, _) = (ops.open)(Box::new(dir), group);
        let (start, mut count) = (Instant::now(), 0u64);
        while start.elapsed().as_secs_f64() < knobs.real_seconds {
            for _ in 0..group {
                (ops.append)(&mut wal, &record);
            }
            count += group as u64;
        }
        let rate = (count as f64 / start.elapsed().as_secs_f64()).round();
        table.row(&[
            group.to_string(),
            format!("{:.2}", acked_lost as f64 / knobs.crashes as f64),
            format!("{:.2}", unacked_lost as f64 / knobs.crashes as f64),
            format!("{syncs:.4}"),
            format!("{rate:.0}"),
        ]);
        bars.push((format!("group {group}"), rate));
    }
    table.print();
    println!(
        "\nappends/s on real files:\n{}",
        crate::lab::bar_chart(&bars, 50)
    );
}

// ---- The bitcask lab -------------------------------------------------------------------------

/// A `Storage` that counts the bytes appended through it (the labs' write amplification).
pub struct Counted<S> {
    pub inner: Arc<S>,
    pub written: Arc<std::sync::atomic::AtomicU64>,
}

impl<S> Clone for Counted<S> {
    fn clone(&self) -> Self {
        Counted {
            inner: Arc::clone(&self.inner),
            written: Arc::clone(&self.written),
        }
    }
}

impl<S: Storage> Counted<S> {
    pub fn new(inner: S) -> Self {
        Counted {
            inner: Arc::new(inner),
            written: Arc::default(),
        }
    }

    /// Bytes appended so far.
    pub fn written(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The sum of the lengths of every file.
    pub fn disk_bytes(&self) -> io::Result<u64> {
        let mut total = 0;
        for name in self.inner.list()? {
            total += self.inner.file_len(&name)?;
        }
        Ok(total)
    }
}

impl<S: Storage> Storage for Counted<S> {
    fn append(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let n = data.len() as u64;
        self.written
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        self.inner.append(name, data)
    }
    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(name, offset, buf)
    }
    fn file_len(&self, name: &str) -> io::Result<u64> {
        self.inner.file_len(name)
    }
    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        self.inner.truncate(name, len)
    }
    fn sync(&self, name: &str) -> io::Result<()> {
        self.inner.sync(name)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.inner.sync_dir()
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
}

/// The knobs of the `bitcask` lab.
pub struct KvLabKnobs {
    /// Distinct keys (uniformly chosen), bytes per value, writes between merges, merges.
    pub keys: u64,
    pub value_bytes: usize,
    pub writes_per_round: usize,
    pub rounds: usize,
    /// The share of writes that are deletes.
    pub delete_share: f64,
}

/// The learner's store, as closures for the lab.
pub struct KvOps<D, O, P, X, G, M>
where
    O: Fn(Box<dyn Storage>) -> D,
    P: Fn(&mut D, &[u8], &[u8]),
    X: Fn(&mut D, &[u8]),
    G: Fn(&D, &[u8]) -> Option<Vec<u8>>,
    M: Fn(&mut D),
{
    pub open: O,
    pub put: P,
    pub delete: X,
    pub get: G,
    pub merge: M,
}

/// Rounds of puts and deletes on real files, a merge after each: the space on disk before and
/// after the merge against the live data, and the write amplification (bytes appended, merges
/// included, per byte of key and value the workload wrote). Checks every key against a model.
pub fn kv_lab<D, O, P, X, G, M>(knobs: &KvLabKnobs, ops: KvOps<D, O, P, X, G, M>)
where
    O: Fn(Box<dyn Storage>) -> D,
    P: Fn(&mut D, &[u8], &[u8]),
    X: Fn(&mut D, &[u8]),
    G: Fn(&D, &[u8]) -> Option<Vec<u8>>,
    M: Fn(&mut D),
{
    let fs = Counted::new(RealDir::temp().expect("a temporary directory"));
    let mut db = (ops.open)(Box::new(fs.clone()));
    let mut rng = seeded_rng(10);
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let (mut user_bytes, mut merge_time) = (0u64, 0.0);
    let mut table = Table::new(&[
        "round",
        "live data",
        "on disk before merge",
        "after merge",
        "write amplification",
    ]);
    let start = Instant::now();
    for round in 1..=knobs.rounds {
        for _ in 0..knobs.writes_per_round {
            let key = format!("key{:06}", rng.random_range(0..knobs.keys)).into_bytes();
            if rng.random_bool(knobs.delete_share) {
                (ops.delete)(&mut db, &key);
                user_bytes += key.len() as u64;
                model.remove(&key);
            } else {
                let value: Vec<u8> = (0..knobs.value_bytes).map(|_| rng.random()).collect();
                (ops.put)(&mut db, &key, &value);
                user_bytes += (key.len() + value.len()) as u64;
                model.insert(key, value);
            }
        }
        let before = fs.disk_bytes().expect("file sizes");
        let t = Instant::now();
        (ops.merge)(&mut db);
        merge_time += t.elapsed().as_secs_f64();
        let after = fs.disk_bytes().expect("file sizes");
        let live: u64 = model.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
        table.row(&[
            round.to_string(),
            format!("{} KiB", live / 1024),
            format!("{} KiB", before / 1024),
            format!("{} KiB", after / 1024),
            format!("{:.2}", fs.written() as f64 / user_bytes as f64),
        ]);
    }
    let total = start.elapsed().as_secs_f64();
    drop(db);
    let db = (ops.open)(Box::new(fs.clone()));
    let wrong = model
        .iter()
        .filter(|(k, v)| (ops.get)(&db, k).as_ref() != Some(*v))
        .count();
    table.print();
    println!(
        "\n{} writes in {total:.2} s ({:.2} s merging); after a restart, {wrong} of {} live keys wrong",
        knobs.writes_per_round * knobs.rounds,
        merge_time,
        model.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(fs: &impl Storage, name: &str) -> Vec<u8> {
        let mut buf = vec![0; fs.file_len(name).unwrap() as usize];
        assert_eq!(fs.read_at(name, 0, &mut buf).unwrap(), buf.len());
        buf
    }

    #[test]
    fn a_crash_loses_what_was_not_fsynced() {
        let fs = SimFs::new();
        fs.append("a", b"hello").unwrap();
        fs.sync("a").unwrap();
        fs.sync_dir().unwrap();
        fs.append("a", b" world").unwrap();
        assert_eq!(read_all(&fs, "a"), b"hello world");
        fs.crash();
        assert_eq!(read_all(&fs, "a"), b"hello");
    }

    #[test]
    fn a_new_file_needs_a_directory_fsync_to_survive() {
        let fs = SimFs::new();
        fs.append("a", b"x").unwrap();
        fs.sync("a").unwrap();
        fs.crash();
        assert!(
            fs.list().unwrap().is_empty(),
            "the name was never made durable"
        );
    }

    #[test]
    fn a_rename_before_the_data_fsync_exposes_an_empty_file() {
        let fs = SimFs::new();
        fs.append("tmp", b"data").unwrap();
        fs.rename("tmp", "final").unwrap();
        fs.sync_dir().unwrap();
        fs.crash();
        assert_eq!(read_all(&fs, "final"), b"");
        // The right order: data, fsync, rename, directory fsync.
        fs.append("tmp", b"data").unwrap();
        fs.sync("tmp").unwrap();
        fs.rename("tmp", "final").unwrap();
        fs.crash();
        assert_eq!(
            read_all(&fs, "final"),
            b"",
            "the rename was not durable yet"
        );
        assert_eq!(fs.list().unwrap(), ["final"]);
        fs.append("tmp", b"data").unwrap();
        fs.sync("tmp").unwrap();
        fs.rename("tmp", "final").unwrap();
        fs.sync_dir().unwrap();
        fs.crash();
        assert_eq!(read_all(&fs, "final"), b"data");
    }

    #[test]
    fn a_removal_is_undone_by_a_crash_before_the_directory_fsync() {
        let fs = SimFs::new();
        fs.append("a", b"x").unwrap();
        fs.sync("a").unwrap();
        fs.sync_dir().unwrap();
        fs.remove("a").unwrap();
        fs.crash();
        assert_eq!(read_all(&fs, "a"), b"x");
        fs.remove("a").unwrap();
        fs.sync_dir().unwrap();
        fs.crash();
        assert!(fs.list().unwrap().is_empty());
    }

    #[test]
    fn a_torn_crash_keeps_synced_bytes_and_a_prefix_of_the_rest() {
        let mut lengths = std::collections::HashSet::new();
        for seed in 0..50 {
            let fs = SimFs::new();
            fs.append("a", &[1; 10]).unwrap();
            fs.sync("a").unwrap();
            fs.sync_dir().unwrap();
            fs.append("a", &[2; 20]).unwrap();
            fs.crash_torn(seed);
            let data = read_all(&fs, "a");
            assert_eq!(data[..10], [1; 10]);
            assert!(data.len() <= 30);
            lengths.insert(data.len());
        }
        assert!(lengths.len() > 5, "the tear point varies with the seed");
    }

    #[test]
    fn fail_after_stops_the_process_between_two_steps() {
        let fs = SimFs::new();
        fs.fail_after(2);
        fs.append("a", b"1").unwrap();
        fs.sync("a").unwrap();
        assert!(fs.sync_dir().is_err());
        assert!(fs.list().is_err(), "a dead process reads nothing either");
        fs.crash();
        assert!(fs.list().unwrap().is_empty());
        fs.append("a", b"1").unwrap();
    }

    #[test]
    fn stats_count_reads_and_syncs_and_fork_is_independent() {
        let fs = SimFs::new();
        fs.append("a", b"abcdef").unwrap();
        let mut buf = [0; 4];
        assert_eq!(fs.read_at("a", 4, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"ef");
        fs.sync("a").unwrap();
        let s = fs.stats();
        assert_eq!(
            (s.reads, s.bytes_read, s.largest_read, s.syncs),
            (1, 2, 4, 1)
        );
        let copy = fs.fork();
        copy.append("a", b"g").unwrap();
        assert_eq!(fs.file_len("a").unwrap(), 6);
        fs.flip_bit("a", 0, 0);
        assert_eq!(fs.contents("a").unwrap()[0], b'a' ^ 1);
        assert_eq!(fs.total_bytes(), 6);
    }

    #[test]
    fn real_dir_behaves_like_the_simulation_without_crashes() {
        let dir = RealDir::temp().unwrap();
        dir.append("a", b"hello").unwrap();
        dir.sync("a").unwrap();
        dir.sync_dir().unwrap();
        dir.rename("a", "b").unwrap();
        dir.append("b", b"!").unwrap();
        assert_eq!(read_all(&dir, "b"), b"hello!");
        dir.truncate("b", 2).unwrap();
        assert_eq!(read_all(&dir, "b"), b"he");
        assert_eq!(dir.list().unwrap(), ["b"]);
        dir.remove("b").unwrap();
        assert!(dir.file_len("b").is_err());
    }
}
