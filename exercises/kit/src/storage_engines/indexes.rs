//! Machinery of the index exercises (`bloom_filter`, `lsm_tree`, `b_plus_tree`): the hash a Bloom
//! filter derives its bit positions from, keys that count their comparisons, immutable sorted runs
//! that count their "disk reads", a pager that counts page reads, and one lab driver per exercise.
//! Everything is in memory: the figures are counts (reads, comparisons, entries written), the same
//! on every machine. Nothing here is an answer: the filter, the merge, the memtable and the tree
//! are always the learner's code, passed in.

use std::cell::Cell;
use std::cmp::Ordering;

use rand::RngExt;

use crate::hashing::{fnv1a64, mix64, unit_interval};
use crate::lab::{Table, bar_chart, percent};
use crate::workload::seeded_rng;

thread_local! {
    static COMPARISONS: Cell<u64> = const { Cell::new(0) };
    static DISK_READS: Cell<u64> = const { Cell::new(0) };
    static ENTRIES_WRITTEN: Cell<u64> = const { Cell::new(0) };
    static PAGE_READS: Cell<u64> = const { Cell::new(0) };
    static NEXT_RUN_ID: Cell<u64> = const { Cell::new(0) };
    static FILTER_FP: Cell<f64> = const { Cell::new(1.0) };
}

fn bump(counter: &'static std::thread::LocalKey<Cell<u64>>, by: u64) {
    counter.with(|c| c.set(c.get() + by));
}

// ---- Hashing (bloom_filter) ----------------------------------------------------------------------

/// The 128-bit hash of a key, as its two 64-bit halves `(h1, h2)`: FNV-1a-64 of the bytes, then
/// two different SplitMix64 finalisers. Fixed and fully specified, so a filter built by one
/// process can be read by another (RocksDB and Cassandra store their filters on disk).
pub fn hash128(key: &[u8]) -> (u64, u64) {
    let raw = fnv1a64(key);
    (mix64(raw), mix64(raw ^ 0x9e37_79b9_7f4a_7c15))
}

// ---- Counted keys, runs and disk reads (lsm_tree) -------------------------------------------------

/// A key whose every comparison (`==`, `<`, `cmp`...) is counted, per thread: the tests and the
/// lab read [`comparisons`] to see how much work a merge or a lookup did.
#[derive(Debug, Clone, Copy)]
pub struct Key(pub u64);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        bump(&COMPARISONS, 1);
        self.0 == other.0
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        bump(&COMPARISONS, 1);
        self.0.cmp(&other.0)
    }
}

/// Key comparisons made on this thread so far.
pub fn comparisons() -> u64 {
    COMPARISONS.with(Cell::get)
}

/// Runs that answered a point read on this thread so far: every read that got past the run's
/// filter (or every read, with no filter) costs one.
pub fn disk_reads() -> u64 {
    DISK_READS.with(Cell::get)
}

/// Entries written into new runs on this thread so far (flushes and compactions alike).
pub fn entries_written() -> u64 {
    ENTRIES_WRITTEN.with(Cell::get)
}

/// Gives every run made from now on (on this thread) a filter with false-positive rate `p`: a
/// point read of a key the run does not hold costs a disk read with probability `p` only. 1.0 (the
/// default) means no filter. The filter is modelled by its rate (the `bloom_filter` exercise
/// builds a real one): a run answers "maybe" for its own keys and for a fixed pseudo-random share
/// `p` of the others.
pub fn set_filter_false_positive_rate(p: f64) {
    assert!((0.0..=1.0).contains(&p), "a rate is between 0 and 1");
    FILTER_FP.with(|c| c.set(p));
}

/// One entry of a run: a key and its value, or `None` for a tombstone (the key was deleted).
pub type Entry = (Key, Option<u64>);

/// An immutable sorted run (an SSTable): entries in strictly increasing key order, written once.
/// Think of it as a file on disk with its index (and filter) in memory: a point read costs one
/// disk read, counted by [`disk_reads`]; making one counts its entries in [`entries_written`].
#[derive(Debug)]
pub struct Run {
    entries: Vec<Entry>,
    id: u64,
    filter_fp: f64,
}

impl Run {
    /// A run of `entries`. Panics unless the keys strictly increase.
    pub fn new(entries: Vec<Entry>) -> Run {
        assert!(
            entries.windows(2).all(|w| w[0].0.0 < w[1].0.0),
            "a run's keys must strictly increase (sorted, each key once)"
        );
        bump(&ENTRIES_WRITTEN, entries.len() as u64);
        let id = NEXT_RUN_ID.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        Run {
            entries,
            id,
            filter_fp: FILTER_FP.with(Cell::get),
        }
    }

    /// The entries, in key order: what a merge or a scan reads sequentially.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A point read: `None` if the run has no entry for `key`, `Some(None)` if it holds a
    /// tombstone, `Some(Some(v))` for a value. Costs one disk read unless the filter rules the key
    /// out. (Its index search is in memory and not counted as comparisons.)
    pub fn get(&self, key: Key) -> Option<Option<u64>> {
        let found = self.entries.binary_search_by(|e| e.0.0.cmp(&key.0)).ok();
        let maybe = found.is_some()
            || self.filter_fp >= 1.0
            || unit_interval(mix64(key.0 ^ mix64(self.id))) < self.filter_fp;
        if maybe {
            bump(&DISK_READS, 1);
        }
        found.map(|i| self.entries[i].1)
    }
}

// ---- Pages (b_plus_tree) ----------------------------------------------------------------------

/// The index of a page in a [`Pager`].
pub type PageId = usize;

/// The tree's pages, as a buffer pool would hold them: every `read` or `write` of a page is
/// counted ([`page_reads`]), as a database counts buffer accesses. `inspect` is for tests and
/// labs that look at the shape of the tree, and is not counted: the tree itself uses `read` and
/// `write`.
#[derive(Debug, Default)]
pub struct Pager<T> {
    pages: Vec<T>,
}

impl<T> Pager<T> {
    pub fn new() -> Self {
        Pager { pages: Vec::new() }
    }

    /// Stores a new page and returns its id.
    pub fn alloc(&mut self, page: T) -> PageId {
        self.pages.push(page);
        self.pages.len() - 1
    }

    /// Reads page `id` (counted).
    pub fn read(&self, id: PageId) -> &T {
        bump(&PAGE_READS, 1);
        &self.pages[id]
    }

    /// Opens page `id` for writing (counted as an access, like `read`).
    pub fn write(&mut self, id: PageId) -> &mut T {
        bump(&PAGE_READS, 1);
        &mut self.pages[id]
    }

    /// Looks at page `id` without counting: for tests and labs, not for the tree.
    pub fn inspect(&self, id: PageId) -> &T {
        &self.pages[id]
    }

    /// Pages allocated so far.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }
}

/// A page of a B+ tree of order `order`: a leaf holds at most order − 1 keys, an internal node
/// at most order children (and one separator fewer).
#[derive(Debug)]
pub enum Node {
    /// `keys[i]` has `values[i]`; `next` is the leaf to the right.
    Leaf {
        keys: Vec<u64>,
        values: Vec<u64>,
        next: Option<PageId>,
    },
    /// `children[i]` holds the keys k with `keys[i - 1] <= k < keys[i]`.
    Internal {
        keys: Vec<u64>,
        children: Vec<PageId>,
    },
}

impl Node {
    /// An empty leaf, with no right neighbour.
    pub fn empty_leaf() -> Node {
        Node::Leaf {
            keys: Vec::new(),
            values: Vec::new(),
            next: None,
        }
    }
}

/// The tree under `root` as text, for test messages: a leaf is `[k k]`, an internal node
/// `{s s: child child}`.
pub fn tree_shape(pager: &Pager<Node>, root: PageId) -> String {
    match pager.inspect(root) {
        Node::Leaf { keys, .. } => format!("{keys:?}").replace(',', ""),
        Node::Internal { keys, children } => {
            let kids: Vec<String> = children.iter().map(|&c| tree_shape(pager, c)).collect();
            let keys = format!("{keys:?}").replace([',', '[', ']'], "");
            format!("{{{keys}: {}}}", kids.join(" "))
        }
    }
}

/// Checks every invariant of the B+ tree of `order` under `root` and panics with a message
/// naming the one broken: keys sorted and unique in every node; a value per leaf key; one child
/// more than separators; every key within the bounds its separators set; every node within its
/// fill limits (non-root leaves ⌈(order−1)/2⌉ to order−1 keys, non-root internal nodes
/// ⌈order/2⌉ to order children, an internal root at least 2); every leaf at the same depth; the
/// leaf chain linking every leaf, left to right. Returns the height and the leaves, left to right.
pub fn check_tree(pager: &Pager<Node>, root: PageId, order: usize) -> (usize, Vec<PageId>) {
    let mut leaves = Vec::new();
    let tree = || tree_shape(pager, root);
    let height = check_node(pager, order, root, (None, None), true, &mut leaves, &tree);
    let (mut chain, mut at) = (Vec::new(), leaves.first().copied());
    while let Some(id) = at {
        chain.push(id);
        let Node::Leaf { next, .. } = pager.inspect(id) else {
            panic!("the leaf chain links to an internal node: {}", tree())
        };
        at = *next;
        assert!(
            chain.len() <= leaves.len(),
            "the leaf chain loops: {}",
            tree()
        );
    }
    assert_eq!(
        chain,
        leaves,
        "following `next` from the leftmost leaf must visit every leaf, in key order: {}",
        tree()
    );
    (height, leaves)
}

fn check_node(
    pager: &Pager<Node>,
    order: usize,
    id: PageId,
    (lo, hi): (Option<u64>, Option<u64>),
    root: bool,
    leaves: &mut Vec<PageId>,
    tree: &dyn Fn() -> String,
) -> usize {
    let (keys, kids) = match pager.inspect(id) {
        Node::Leaf { keys, values, .. } => {
            assert_eq!(
                keys.len(),
                values.len(),
                "a leaf has a value per key: {}",
                tree()
            );
            (keys, None)
        }
        Node::Internal { keys, children } => (keys, Some(children)),
    };
    let sorted = keys.windows(2).all(|w| w[0] < w[1]);
    assert!(sorted, "keys sorted, each once, in {keys:?}: {}", tree());
    let in_bounds = keys
        .iter()
        .all(|&k| lo.is_none_or(|lo| k >= lo) && hi.is_none_or(|hi| k < hi));
    assert!(
        in_bounds,
        "{keys:?} must lie in [{lo:?}, {hi:?}), the bounds the separators above set: {}",
        tree()
    );
    let Some(children) = kids else {
        let min = if root { 0 } else { (order - 1).div_ceil(2) };
        assert!(
            (min..order).contains(&keys.len()),
            "order {order}: a leaf holds {min} to {} keys, {keys:?} does not: {}",
            order - 1,
            tree()
        );
        leaves.push(id);
        return 1;
    };
    assert_eq!(
        children.len(),
        keys.len() + 1,
        "an internal node has one child more than separators: {}",
        tree()
    );
    let min = if root { 2 } else { order.div_ceil(2) };
    assert!(
        (min..=order).contains(&children.len()),
        "order {order}: an internal node has {min} to {order} children, {keys:?} has {}: {}",
        children.len(),
        tree()
    );
    let depths: Vec<usize> = (0..children.len())
        .map(|i| {
            let lo = if i == 0 { lo } else { Some(keys[i - 1]) };
            let hi = if i == keys.len() { hi } else { Some(keys[i]) };
            check_node(pager, order, children[i], (lo, hi), false, leaves, tree)
        })
        .collect();
    assert!(
        depths.iter().all(|&d| d == depths[0]),
        "every leaf at the same depth: {}",
        tree()
    );
    depths[0] + 1
}

/// Pages read or written on this thread so far.
pub fn page_reads() -> u64 {
    PAGE_READS.with(Cell::get)
}

// ---- Lab: bloom_filter ----------------------------------------------------------------------------

/// The knobs of the Bloom filter lab.
#[derive(Debug, Clone)]
pub struct BloomKnobs {
    /// Keys inserted in every filter.
    pub keys: usize,
    /// Absent keys queried to measure the false-positive rate.
    pub queries: usize,
    /// The bits per key of the first table.
    pub bits_per_key: Vec<f64>,
    /// The target false-positive rates of the second table.
    pub targets: Vec<f64>,
}

/// The Bloom filter lab: the measured false-positive rate against bits per key, then against
/// the target rates the sizing formula was given. `make(m, k)` builds a filter of `m` bits and
/// `k` hash functions; `sizing(n, p)` is the learner's `(m, k)`.
pub fn bloom_lab<F>(
    knobs: &BloomKnobs,
    make: impl Fn(u64, u32) -> F,
    insert: impl Fn(&mut F, &[u8]),
    may_contain: impl Fn(&F, &[u8]) -> bool,
    sizing: impl Fn(usize, f64) -> (u64, u32),
) {
    let measure = |m: u64, k: u32| {
        let mut filter = make(m, k);
        for i in 0..knobs.keys {
            insert(&mut filter, format!("user:{i}").as_bytes());
        }
        let positives = (0..knobs.queries)
            .filter(|i| may_contain(&filter, format!("absent:{i}").as_bytes()))
            .count();
        positives as u64
    };
    let n = knobs.keys as f64;
    println!(
        "{} keys per filter, false positives measured on {} absent keys\n",
        knobs.keys, knobs.queries
    );
    let mut table = Table::new(&["bits/key", "k", "theory FP", "measured FP", "memory"]);
    let mut bars = Vec::new();
    for &bpk in &knobs.bits_per_key {
        let m = (bpk * n).ceil().max(1.0) as u64;
        let k = (bpk * std::f64::consts::LN_2).round().max(1.0) as u32;
        let theory = (1.0 - (-f64::from(k) / bpk).exp()).powi(k as i32);
        let fp = measure(m, k);
        table.row(&[
            format!("{bpk}"),
            k.to_string(),
            format!("{:.2}%", theory * 100.0),
            percent(fp, knobs.queries as u64),
            format!("{:.1} KiB", m as f64 / 8192.0),
        ]);
        bars.push((
            format!("{bpk} bits/key"),
            (fp as f64 * 10_000.0 / knobs.queries as f64).round() / 100.0,
        ));
    }
    table.print();
    println!("\nmeasured false positives, %:\n{}\n", bar_chart(&bars, 40));
    let mut table = Table::new(&["target p", "m (bits)", "bits/key", "k", "measured FP"]);
    for &p in &knobs.targets {
        let (m, k) = sizing(knobs.keys, p);
        table.row(&[
            format!("{p}"),
            m.to_string(),
            format!("{:.1}", m as f64 / n),
            k.to_string(),
            percent(measure(m, k), knobs.queries as u64),
        ]);
    }
    table.print();
    println!(
        "\nEvery halving of the false-positive rate costs about 1.44 more bits per key; each \
         key costs ~1.44 · log2(1/p) bits whatever its size."
    );
}

// ---- Lab: lsm_tree --------------------------------------------------------------------------------

/// What the LSM lab drives: the learner's tree (made with `Default`), as its functions.
pub struct LsmApi<L> {
    pub put: fn(&mut L, u64, u64),
    pub delete: fn(&mut L, u64),
    pub get: fn(&L, u64) -> Option<u64>,
    pub flush: fn(&mut L),
    pub compact: fn(&mut L, usize, usize),
    pub runs: fn(&L) -> &[Run],
}

/// The knobs of the LSM lab.
#[derive(Debug, Clone)]
pub struct LsmKnobs {
    /// Distinct keys; writes pick keys uniformly, so most writes overwrite an older version.
    pub keys: u64,
    /// Writes (a share of them deletes).
    pub writes: u64,
    pub delete_share: f64,
    /// Writes between two flushes.
    pub memtable_entries: u64,
    /// The compaction policies compared: when more than this many runs exist, all are merged
    /// into one (1: compact on every flush; large: hardly ever).
    pub max_runs: Vec<usize>,
    /// Point reads measured at the end (half of them of keys never written).
    pub reads: u64,
    /// The false-positive rate of the per-run filters in the "with filter" column.
    pub filter_fp: f64,
}

/// The LSM lab: write, read and space amplification against the number of runs allowed, and the
/// disk reads a get costs with and without a Bloom filter per run.
pub fn lsm_lab<L: Default>(knobs: &LsmKnobs, api: LsmApi<L>) {
    let mut table = Table::new(&[
        "max runs",
        "write amp",
        "avg runs",
        "space amp",
        "reads/get",
        "reads/get (filter)",
        "reads/miss (filter)",
    ]);
    let mut bars = Vec::new();
    let flushes = (knobs.writes / knobs.memtable_entries).max(1);
    let reads_per_flush = (knobs.reads / flushes).max(2);
    for &max_runs in &knobs.max_runs {
        let mut cells = vec![max_runs.to_string()];
        let mut no_filter_reads = 0.0;
        for fp in [1.0, knobs.filter_fp] {
            set_filter_false_positive_rate(fp);
            let mut lsm = L::default();
            let mut rng = seeded_rng(10);
            let written_before = entries_written();
            let mut live = std::collections::HashSet::new();
            let (mut gets, mut get_reads, mut miss_reads) = (0u64, 0u64, 0u64);
            let (mut samples, mut runs_sum, mut space_sum) = (0u64, 0usize, 0.0);
            for i in 0..knobs.writes {
                let key = rng.random_range(0..knobs.keys);
                if rng.random::<f64>() < knobs.delete_share {
                    (api.delete)(&mut lsm, key);
                    live.remove(&key);
                } else {
                    (api.put)(&mut lsm, key, i);
                    live.insert(key);
                }
                if (i + 1) % knobs.memtable_entries != 0 {
                    continue;
                }
                (api.flush)(&mut lsm);
                if (api.runs)(&lsm).len() > max_runs {
                    let all = (api.runs)(&lsm).len();
                    (api.compact)(&mut lsm, 0, all);
                }
                // Between two flushes: the reads, with the memtable empty (a read the memtable
                // answers costs nothing, whatever the policy).
                let stored: usize = (api.runs)(&lsm).iter().map(Run::len).sum();
                samples += 1;
                runs_sum += (api.runs)(&lsm).len();
                space_sum += stored as f64 / live.len().max(1) as f64;
                for r in 0..reads_per_flush {
                    let miss = r % 2 == 1;
                    let key = rng.random_range(0..knobs.keys) + if miss { knobs.keys } else { 0 };
                    let before = disk_reads();
                    (api.get)(&lsm, key);
                    let cost = disk_reads() - before;
                    gets += 1;
                    get_reads += cost;
                    if miss {
                        miss_reads += cost;
                    }
                }
            }
            let written = entries_written() - written_before;
            let per_get = get_reads as f64 / gets.max(1) as f64;
            let per_miss = miss_reads as f64 / (gets / 2).max(1) as f64;
            if fp >= 1.0 {
                no_filter_reads = per_get;
                cells.push(format!("{:.1}", written as f64 / knobs.writes as f64));
                cells.push(format!("{:.1}", runs_sum as f64 / samples.max(1) as f64));
                cells.push(format!("{:.2}", space_sum / samples.max(1) as f64));
                cells.push(format!("{per_get:.2}"));
            } else {
                cells.push(format!("{per_get:.2}"));
                cells.push(format!("{per_miss:.3}"));
            }
        }
        table.row(&cells);
        bars.push((
            format!("max {max_runs} runs"),
            (no_filter_reads * 100.0).round() / 100.0,
        ));
    }
    set_filter_false_positive_rate(1.0);
    println!(
        "{} writes over {} keys ({:.0}% deletes), a flush every {} writes; after each flush {} \
         gets (half of them misses). Write amp: entries written per write; space amp: entries \
         stored per live key; both averaged over the flushes.\n",
        knobs.writes,
        knobs.keys,
        knobs.delete_share * 100.0,
        knobs.memtable_entries,
        reads_per_flush
    );
    table.print();
    println!(
        "\ndisk reads per get without filters:\n{}",
        bar_chart(&bars, 40)
    );
    println!(
        "\nFewer runs: cheaper reads, more rewriting (write amp). More runs: cheap writes, reads \
         that visit every run unless a filter (fp {}) rules most of them out.",
        knobs.filter_fp
    );
}

// ---- Lab: b_plus_tree -----------------------------------------------------------------------------

/// The knobs of the B+ tree lab.
#[derive(Debug, Clone)]
pub struct TreeKnobs {
    pub keys: u64,
    pub orders: Vec<usize>,
    pub lookups: u64,
}

/// The B+ tree lab: height (pages read per lookup) and leaf fill against the order, for keys
/// inserted in random and in sequential order.
pub fn tree_lab<T>(
    knobs: &TreeKnobs,
    make: impl Fn(usize) -> T,
    insert: impl Fn(&mut T, u64, u64) -> Option<u64>,
    get: impl Fn(&T, u64) -> Option<u64>,
    pager: impl Fn(&T) -> &Pager<Node>,
) {
    let mut table = Table::new(&[
        "order",
        "inserts",
        "pages/lookup",
        "leaves",
        "leaf fill",
        "pages",
    ]);
    let mut bars = Vec::new();
    for &order in &knobs.orders {
        for sequential in [false, true] {
            let mut keys: Vec<u64> = (0..knobs.keys).collect();
            if !sequential {
                let mut rng = seeded_rng(order as u64);
                for i in (1..keys.len()).rev() {
                    keys.swap(i, rng.random_range(0..=i));
                }
            }
            let mut tree = make(order);
            for &k in &keys {
                insert(&mut tree, k, k * 10);
            }
            let mut rng = seeded_rng(99);
            let before = page_reads();
            for _ in 0..knobs.lookups {
                get(&tree, rng.random_range(0..knobs.keys));
            }
            let per_lookup = (page_reads() - before) as f64 / knobs.lookups as f64;
            let pager = pager(&tree);
            let (mut leaves, mut leaf_keys) = (0, 0);
            for id in 0..pager.len() {
                if let Node::Leaf { keys, .. } = pager.inspect(id) {
                    leaves += 1;
                    leaf_keys += keys.len();
                }
            }
            let fill = leaf_keys as f64 / (leaves * (order - 1)).max(1) as f64;
            let how = if sequential { "sequential" } else { "random" };
            table.row(&[
                order.to_string(),
                how.to_string(),
                format!("{per_lookup:.2}"),
                leaves.to_string(),
                format!("{:.0}%", fill * 100.0),
                pager.len().to_string(),
            ]);
            bars.push((
                format!("order {order:>3} {how:>10}"),
                (fill * 100.0).round(),
            ));
        }
    }
    println!("{} keys per tree, {} lookups\n", knobs.keys, knobs.lookups);
    table.print();
    println!("\nleaf fill, %:\n{}", bar_chart(&bars, 40));
    println!(
        "\nRandom inserts leave leaves about ln 2 ≈ 69% full; ascending keys split the rightmost \
         leaf forever, leaving every leaf half full (PostgreSQL splits such pages unevenly)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_count_their_comparisons() {
        let before = comparisons();
        let mut v = [Key(3), Key(1), Key(2)];
        v.sort();
        assert!(comparisons() > before);
        assert!(Key(1) == Key(1) && Key(1) < Key(2));
    }

    #[test]
    fn a_run_read_costs_one_disk_read_and_a_filter_saves_most_misses() {
        let run = Run::new(vec![(Key(1), Some(10)), (Key(2), None)]);
        let before = disk_reads();
        assert_eq!(run.get(Key(1)), Some(Some(10)));
        assert_eq!(run.get(Key(2)), Some(None));
        assert_eq!(run.get(Key(3)), None);
        assert_eq!(disk_reads() - before, 3, "no filter: every read costs");
        set_filter_false_positive_rate(0.01);
        let filtered = Run::new(vec![(Key(1), Some(10))]);
        let before = disk_reads();
        for k in 100..10_100 {
            filtered.get(Key(k));
        }
        let fp = disk_reads() - before;
        assert!(
            (50..200).contains(&fp),
            "about 1% of 10 000 misses, got {fp}"
        );
        set_filter_false_positive_rate(1.0);
    }

    #[test]
    #[should_panic(expected = "strictly increase")]
    fn a_run_must_be_sorted() {
        Run::new(vec![(Key(2), None), (Key(1), None)]);
    }

    #[test]
    fn pager_counts_reads_and_writes_but_not_inspection() {
        let mut pager = Pager::new();
        let id = pager.alloc(5);
        let before = page_reads();
        assert_eq!(*pager.read(id), 5);
        *pager.write(id) = 6;
        assert_eq!(*pager.inspect(id), 6);
        assert_eq!(page_reads() - before, 2);
    }

    #[test]
    fn hash128_is_fixed() {
        assert_eq!(hash128(b"apple"), hash128(b"apple"));
        assert_ne!(hash128(b"apple").0, hash128(b"apple").1);
    }
}
