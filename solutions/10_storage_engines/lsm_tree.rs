// LSM tree — writes go to memory, then to immutable sorted runs that are merged in the background.
//
// LevelDB, RocksDB, Cassandra and ScyllaDB never update data in place: a write lands in a sorted
// in-memory memtable, a full memtable is flushed as an immutable sorted run (an SSTable), and
// compaction merges runs to bound how many a read must look at. A delete writes a tombstone.
//
// Build `Lsm` (runs kept newest first) and the k-way `Merge` it uses for compaction and scans.
// The property: reads see the newest version of every key, and a tombstone hides every older
// value in gets and scans. Compaction drops a tombstone only when nothing older can be under it:
// when the merge includes the oldest run. The stated costs: a get stops at the newest run that
// has the key (each run it asks costs a disk read), merging k runs of N entries compares keys
// O(N · log k) times (the kit's `Key` counts), and a scan of `limit` entries reads only that far.
//
// Lab: write, read and space amplification against MAX_RUNS, and the disk reads a get costs
// with and without a Bloom filter per run. Turn FILTER_FP, MEMTABLE_ENTRIES or DELETE_SHARE.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use sdlings_kit::storage_engines::indexes::{Entry, Key, LsmApi, LsmKnobs, Run, lsm_lab};

/// A k-way merge of sorted runs, `sources[0]` the newest: it yields every key once, with its
/// newest entry (a tombstone too), in key order.
pub struct Merge<'a> {
    /// What is left of each source, its next entry first.
    sources: Vec<&'a [Entry]>,
    /// The next key of each non-empty source, with the source's index.
    heap: BinaryHeap<Reverse<(Key, usize)>>,
}

#[derive(Default)]
pub struct Lsm {
    memtable: BTreeMap<Key, Option<u64>>,
    /// Immutable sorted runs, the newest first.
    runs: Vec<Run>,
}

impl Lsm {
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }
}

// ---- Your part -------------------------------------------------------------------------------

pub fn merge(sources: Vec<&[Entry]>) -> Merge<'_> {
    let heap = sources
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.first().map(|e| Reverse((e.0, i))))
        .collect();
    Merge { sources, heap }
}

impl Merge<'_> {
    /// Takes the next entry of source `i` and queues the one after it.
    fn advance(&mut self, i: usize) -> Entry {
        let (first, rest) = self.sources[i].split_first().expect("queued, so not empty");
        self.sources[i] = rest;
        if let Some(next) = rest.first() {
            self.heap.push(Reverse((next.0, i)));
        }
        *first
    }
}

impl Iterator for Merge<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        // The smallest key; among equal keys the smallest index, which is the newest source.
        let Reverse((key, i)) = self.heap.pop()?;
        let newest = self.advance(i);
        // Older versions of the same key are shadowed: skip them.
        while let Some(&Reverse((k, j))) = self.heap.peek() {
            if k != key {
                break;
            }
            self.heap.pop();
            self.advance(j);
        }
        Some(newest)
    }
}

impl Lsm {
    pub fn put(&mut self, key: u64, value: u64) {
        self.memtable.insert(Key(key), Some(value));
    }

    pub fn delete(&mut self, key: u64) {
        // Not a removal: older runs may hold the key, and the tombstone must hide them.
        self.memtable.insert(Key(key), None);
    }

    pub fn get(&self, key: u64) -> Option<u64> {
        if let Some(entry) = self.memtable.get(&Key(key)) {
            return *entry;
        }
        // The first run that knows the key has its newest version: stop there.
        self.runs.iter().find_map(|run| run.get(Key(key))).flatten()
    }

    /// Writes the memtable out as the newest run (tombstones included), and empties it. An
    /// empty memtable makes no run.
    pub fn flush(&mut self) {
        if self.memtable.is_empty() {
            return;
        }
        let entries = std::mem::take(&mut self.memtable).into_iter().collect();
        self.runs.insert(0, Run::new(entries));
    }

    /// Merges the adjacent runs `first..first + count` (0 is the newest) into one run, in their
    /// place. Tombstones go only if the oldest run is in the merge; an empty result makes no run.
    pub fn compact(&mut self, first: usize, count: usize) {
        let end = first + count;
        assert!(
            count > 0 && end <= self.runs.len(),
            "no runs {first}..{end}"
        );
        // With no older run left outside the merge, a tombstone hides nothing any more.
        let bottom = end == self.runs.len();
        let sources = self.runs[first..end].iter().map(Run::entries).collect();
        let merged: Vec<Entry> = merge(sources)
            .filter(|(_, value)| !bottom || value.is_some())
            .collect();
        let replacement = (!merged.is_empty()).then(|| Run::new(merged));
        self.runs.splice(first..end, replacement);
    }

    /// The first `limit` live entries with a key at or after `from`, in key order.
    pub fn scan(&self, from: u64, limit: usize) -> Vec<(u64, u64)> {
        let memtable: Vec<Entry> = self
            .memtable
            .range(Key(from)..)
            .map(|(k, v)| (*k, *v))
            .collect();
        let mut sources = vec![memtable.as_slice()];
        for run in &self.runs {
            let entries = run.entries();
            // Seek: start each run at `from` instead of merging everything before it.
            sources.push(&entries[entries.partition_point(|e| e.0 < Key(from))..]);
        }
        merge(sources)
            .filter_map(|(key, value)| value.map(|v| (key.0, v)))
            .take(limit)
            .collect()
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Distinct keys and writes (a share of them deletes); a flush every MEMTABLE_ENTRIES writes.
const KEYS: u64 = 10_000;
const WRITES: u64 = 50_000;
const DELETE_SHARE: f64 = 0.1;
const MEMTABLE_ENTRIES: u64 = 1_000;
/// The policies compared: when a flush leaves more runs than this, all runs are merged into one.
const MAX_RUNS: [usize; 5] = [1, 2, 4, 8, 16];
/// Gets, spread between the flushes (half of them misses), and the per-run filters' rate.
const READS: u64 = 10_000;
const FILTER_FP: f64 = 0.01;

fn main() {
    let knobs = LsmKnobs {
        keys: KEYS,
        writes: WRITES,
        delete_share: DELETE_SHARE,
        memtable_entries: MEMTABLE_ENTRIES,
        max_runs: MAX_RUNS.to_vec(),
        reads: READS,
        filter_fp: FILTER_FP,
    };
    let api = LsmApi {
        put: Lsm::put,
        delete: Lsm::delete,
        get: Lsm::get,
        flush: Lsm::flush,
        compact: Lsm::compact,
        runs: Lsm::runs,
    };
    lsm_lab(&knobs, api);
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::property::for_seeds;
    use sdlings_kit::storage_engines::indexes::{comparisons, disk_reads};

    use super::*;

    /// Entries written as text: "1:10 2:-" is key 1 = 10 and a tombstone for key 2.
    fn entries(text: &str) -> Vec<Entry> {
        let entry = |e: &str| {
            let (k, v) = e.split_once(':').expect("key:value");
            (Key(k.parse().unwrap()), v.parse().ok())
        };
        text.split_whitespace().map(entry).collect()
    }

    fn text(entries: &[Entry]) -> String {
        let show = |(k, v): &Entry| format!("{}:{}", k.0, v.map_or("-".into(), |v| v.to_string()));
        entries.iter().map(show).collect::<Vec<_>>().join(" ")
    }

    /// The runs, newest first, as text.
    fn contents(lsm: &Lsm) -> Vec<String> {
        lsm.runs().iter().map(|r| text(r.entries())).collect()
    }

    /// An LSM whose runs, newest first, hold these entries.
    fn with_runs(runs: &[&str]) -> Lsm {
        let mut lsm = Lsm::default();
        for run in runs.iter().rev() {
            for (k, v) in entries(run) {
                match v {
                    Some(v) => lsm.put(k.0, v),
                    None => lsm.delete(k.0),
                }
            }
            lsm.flush();
        }
        lsm
    }

    #[test]
    fn a_get_sees_the_newest_version_across_the_memtable_and_the_runs() {
        let mut lsm = Lsm::default();
        lsm.put(1, 10);
        lsm.put(2, 20);
        lsm.flush();
        lsm.put(1, 11);
        lsm.flush();
        lsm.flush();
        assert_eq!(
            contents(&lsm),
            ["1:11", "1:10 2:20"],
            "newest first; no empty run"
        );
        assert_eq!(lsm.get(1), Some(11), "the newer run wins");
        lsm.put(1, 12);
        assert_eq!(lsm.get(1), Some(12), "the memtable is newer than every run");
        assert_eq!((lsm.get(2), lsm.get(3)), (Some(20), None));
    }

    #[test]
    fn a_tombstone_hides_older_values_in_gets_and_scans() {
        let mut lsm = with_runs(&["1:10 2:20 3:30"]);
        lsm.delete(2);
        assert_eq!(
            lsm.get(2),
            None,
            "deleted in the memtable, over a run's value"
        );
        assert_eq!(lsm.scan(0, 10), [(1, 10), (3, 30)]);
        lsm.flush();
        assert_eq!(
            contents(&lsm)[0],
            "2:-",
            "a flush keeps the tombstone: it hides 2:20"
        );
        assert_eq!((lsm.get(2), lsm.scan(0, 9)), (None, vec![(1, 10), (3, 30)]));
        lsm.put(2, 21);
        assert_eq!(lsm.get(2), Some(21), "a put after the delete brings 2 back");
    }

    #[test]
    fn a_get_asks_the_runs_newest_first_and_stops_at_the_first_that_has_the_key() {
        let lsm = with_runs(&["1:1", "5:-", "2:2", "5:5", "1:0 9:9"]);
        for (key, want, reads, why) in [
            (1, Some(1), 1, "the newest run has it"),
            (2, Some(2), 3, "the third run has it"),
            (5, None, 2, "the second run's tombstone answers: deleted"),
            (9, Some(9), 5, "only the oldest run has it"),
            (7, None, 5, "no run has it: all five are asked"),
        ] {
            let before = disk_reads();
            assert_eq!(lsm.get(key), want, "key {key}: {why}");
            let read = disk_reads() - before;
            assert_eq!(read, reads, "key {key}: {why}, so {reads} disk reads");
        }
    }

    #[test]
    fn merge_yields_each_key_once_with_its_newest_entry_in_key_order() {
        let (a, b, c) = (
            entries("2:- 5:50"),
            entries("1:1 2:20 5:51"),
            entries("2:21 3:3 9:9"),
        );
        assert_eq!(
            text(&merge(vec![&a, &[], &b, &c]).collect::<Vec<_>>()),
            "1:1 2:- 3:3 5:50 9:9",
            "sources newest first: key 2's newest entry is the first source's tombstone"
        );
        assert_eq!(merge(vec![]).count(), 0, "no sources, nothing to merge");
    }

    #[test]
    fn compaction_keeps_tombstones_while_an_older_run_outside_the_merge_may_hold_the_key() {
        let mut lsm = with_runs(&["1:-", "1:10 2:-", "1:5", "1:4"]);
        lsm.compact(1, 2);
        assert_eq!(
            contents(&lsm),
            ["1:-", "1:10 2:-", "1:4"],
            "runs 1 and 2 merge in place"
        );
        lsm.compact(0, 2);
        assert_eq!(
            contents(&lsm),
            ["1:- 2:-", "1:4"],
            "the oldest run is not in the merge: dropping the tombstones would bring back 1:4"
        );
        assert_eq!(lsm.get(1), None);
        lsm.compact(0, 2);
        assert!(
            lsm.runs().is_empty(),
            "merged down to the oldest run, the tombstones hide nothing any more and go, with \
             what they hid; nothing is left, so no run is left, got {:?}",
            contents(&lsm)
        );
    }

    #[test]
    fn merging_k_runs_compares_about_total_times_log_k_keys_not_a_full_sort() {
        let mut rng = sdlings_kit::workload::seeded_rng(7);
        let mut runs: Vec<Vec<Entry>> = vec![Vec::new(); 16];
        for k in 0..10_000 {
            runs[rng.random_range(0..16)].push((Key(k), Some(k)));
        }
        let before = comparisons();
        let merged = merge(runs.iter().map(Vec::as_slice).collect()).count();
        let used = comparisons() - before;
        assert_eq!(merged, 10_000);
        assert!(
            used <= 110_000,
            "merging 16 runs of 10 000 entries in all took {used} key comparisons: a heap of the \
             16 run heads needs a few per entry (log2 16 = 4 per heap operation), not a scan of \
             every head (15 per entry) nor a sort of everything (log2 10 000 ≈ 13 per entry)"
        );
    }

    #[test]
    fn a_scan_seeks_each_run_and_stops_at_its_limit() {
        let mut lsm = Lsm::default();
        for run in 0..8 {
            for k in 0..512 {
                lsm.put(k * 8 + run, k);
            }
            (run < 7).then(|| lsm.flush()); // the last 512 keys stay in the memtable
        }
        let before = comparisons();
        let got = lsm.scan(2_000, 10);
        let used = comparisons() - before;
        assert_eq!((got.len(), got[0]), (10, (2_000, 250)));
        assert!(
            used <= 400,
            "scanning 10 entries out of 7 runs and a memtable of 512 keys each took {used} key \
             comparisons: seek each source to the start key, merge until 10 entries are out"
        );
    }

    #[test]
    fn behaves_like_a_sorted_map_under_random_puts_deletes_flushes_and_compactions() {
        for_seeds(100, |rng| {
            let (mut lsm, mut model) = (Lsm::default(), BTreeMap::new());
            let keys = rng.random_range(4..60);
            for step in 0..250 {
                let key = rng.random_range(0..keys);
                let why = || format!("step {step}, key {key}, runs {:?}", contents(&lsm));
                match rng.random_range(0..20) {
                    0..8 => {
                        lsm.put(key, step);
                        model.insert(key, step);
                    }
                    8..11 => {
                        lsm.delete(key);
                        model.remove(&key);
                    }
                    11..13 => lsm.flush(),
                    13..15 if !lsm.runs().is_empty() => {
                        let first = rng.random_range(0..lsm.runs().len());
                        let count = rng.random_range(1..=lsm.runs().len() - first);
                        lsm.compact(first, count);
                    }
                    15..18 => assert_eq!(lsm.get(key), model.get(&key).copied(), "{}", why()),
                    _ => {
                        let limit = rng.random_range(0..8);
                        let want: Vec<_> = model.range(key..).take(limit).collect();
                        let want: Vec<_> = want.into_iter().map(|(k, v)| (*k, *v)).collect();
                        let scan = lsm.scan(key, limit);
                        assert_eq!(scan, want, "scan limit {limit}: {}", why());
                    }
                }
            }
            lsm.flush();
            if !lsm.runs().is_empty() {
                lsm.compact(0, lsm.runs().len());
            }
            let live: Vec<String> = model.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            assert_eq!(
                contents(&lsm).concat(),
                live.join(" "),
                "after a full compaction one run holds exactly the live keys: no tombstones, no \
                 shadowed versions"
            );
        });
    }
}
