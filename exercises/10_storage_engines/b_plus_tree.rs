// B+ tree — the index of nearly every relational database: sorted, shallow, and scan-friendly.
//
// PostgreSQL's default index, InnoDB's tables, SQLite's tables and indexes are B-trees of pages:
// a node is a disk page with hundreds of keys, so a billion keys sit three or four levels deep
// and a lookup reads three or four pages. In a B+ tree the values live in the leaves only,
// internal nodes hold separators that route a search, and the leaves are linked left to right,
// so `WHERE k BETWEEN a AND b` walks down once and then sideways.
//
// Build `insert` (with splits), `get` and `range` on the pages of the kit's `Pager` (every page
// read is counted). The properties: every leaf at the same depth; every node but the root at
// least half full; separators bound their children; a range scan is sorted and complete across
// leaf boundaries; a lookup reads one page per level. Deletion is out of scope here.
//
// Lab: height and leaf fill against ORDERS, for random and for ascending inserts. Watch ascending
// keys leave every leaf half full, and the height grow like log base order of KEYS.

use sdlings_kit::storage_engines::indexes::{Node, PageId, Pager, TreeKnobs, tree_lab};

/// The pages are the kit's `Node`s: `Leaf { keys, values, next }` (next: the leaf to the right)
/// and `Internal { keys, children }` (children[i] holds the keys from keys[i − 1] up to, not
/// including, keys[i]). A leaf holds at most order − 1 keys, an internal node at most order
/// children. An overflowing leaf keeps its lower ⌊order/2⌋ keys and moves the others to a new
/// right sibling, whose first key goes up as the separator. An overflowing internal node keeps
/// its lower ⌊order/2⌋ + 1 children; the separator between the halves moves up. A root that
/// splits gets a new root above it.
#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct BPlusTree {
    order: usize,
    pager: Pager<Node>,
    root: PageId,
}

// ---- Your part -------------------------------------------------------------------------------

impl BPlusTree {
    /// Inserts or updates `key`; returns the value it replaced.
    pub fn insert(&mut self, key: u64, value: u64) -> Option<u64> {
        todo!("insert {key} = {value}, splitting what overflows on the way back up")
    }

    pub fn get(&self, key: u64) -> Option<u64> {
        todo!("walk down from the root to the leaf that would hold {key}")
    }

    /// The entries with `from <= key < to`, in key order.
    pub fn range(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        todo!("walk down to {from}'s leaf, then along the leaves until {to}")
    }
}

// ---- Given -----------------------------------------------------------------------------------

impl BPlusTree {
    /// An empty tree (one empty leaf) of the given order, at least 3.
    pub fn new(order: usize) -> Self {
        assert!(order >= 3, "a B+ tree needs an order of at least 3");
        let mut pager = Pager::new();
        let root = pager.alloc(Node::empty_leaf());
        BPlusTree { order, pager, root }
    }

    pub fn pages(&self) -> &Pager<Node> {
        &self.pager
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Keys per tree, the orders compared, and lookups timed (in pages read) per tree.
const KEYS: u64 = 100_000;
const ORDERS: [usize; 4] = [4, 16, 64, 256];
const LOOKUPS: u64 = 10_000;

fn main() {
    let knobs = TreeKnobs {
        keys: KEYS,
        orders: ORDERS.to_vec(),
        lookups: LOOKUPS,
    };
    let tree = (
        BPlusTree::new,
        BPlusTree::insert,
        BPlusTree::get,
        BPlusTree::pages,
    );
    tree_lab(&knobs, tree.0, tree.1, tree.2, tree.3);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::RngExt;
    use sdlings_kit::property::for_seeds;
    use sdlings_kit::storage_engines::indexes::{check_tree, page_reads, tree_shape};

    use super::*;

    fn tree(order: usize, keys: impl IntoIterator<Item = u64>) -> BPlusTree {
        let mut t = BPlusTree::new(order);
        for k in keys {
            t.insert(k, k * 10);
        }
        t
    }

    fn shape(t: &BPlusTree) -> String {
        tree_shape(&t.pager, t.root)
    }

    fn check(t: &BPlusTree) -> (usize, Vec<PageId>) {
        check_tree(&t.pager, t.root, t.order)
    }

    #[test]
    fn finds_what_was_inserted_and_updates_in_place() {
        let mut t = BPlusTree::new(4);
        assert_eq!((t.get(1), t.range(0, 100)), (None, vec![]), "an empty tree");
        assert_eq!(t.insert(2, 20), None);
        assert_eq!(t.insert(1, 10), None);
        assert_eq!(
            t.insert(2, 21),
            Some(20),
            "an update returns the value it replaced"
        );
        assert_eq!((t.get(1), t.get(2), t.get(3)), (Some(10), Some(21), None));
        assert_eq!(shape(&t), "[1 2]", "an update adds no key");
    }

    #[test]
    fn a_full_leaf_splits_and_its_right_half_first_key_goes_up() {
        let t = tree(4, [10, 20, 30]);
        assert_eq!(
            shape(&t),
            "[10 20 30]",
            "order 4: a leaf holds up to 3 keys"
        );
        let t = tree(4, [10, 20, 30, 40]);
        assert_eq!(
            shape(&t),
            "{30: [10 20] [30 40]}",
            "4 keys overflow: 2 stay, 2 move right, 30 is copied up"
        );
        assert_eq!(
            (t.get(30), t.get(20)),
            (Some(300), Some(200)),
            "30 is found right of its separator"
        );
        let t = tree(5, [5, 4, 3, 2, 1]);
        assert_eq!(
            shape(&t),
            "{3: [1 2] [3 4 5]}",
            "order 5: ⌊5/2⌋ = 2 keys stay"
        );
    }

    #[test]
    fn an_internal_split_moves_its_middle_separator_up_instead_of_copying_it() {
        let t = tree(3, 1..=5);
        assert_eq!(
            shape(&t),
            "{3: {2: [1] [2]} {4: [3] [4 5]}}",
            "order 3: the root {{2 3 4}} had 4 children: 2 children stay, 3 moves up into a new root"
        );
        check(&t);
    }

    #[test]
    fn invariants_hold_after_every_insert_and_it_behaves_like_a_sorted_map() {
        for_seeds(60, |rng| {
            let order = [3, 4, 5, rng.random_range(3..9)][rng.random_range(0..4)];
            let universe = rng.random_range(5..400);
            let mut t = BPlusTree::new(order);
            let mut model = BTreeMap::new();
            for step in 0..rng.random_range(1..250) {
                let key = rng.random_range(0..universe);
                let old = t.insert(key, step);
                assert_eq!(
                    old,
                    model.insert(key, step),
                    "order {order}, step {step}: insert {key} returns the old value"
                );
                check(&t);
                let probe = rng.random_range(0..universe);
                assert_eq!(
                    t.get(probe),
                    model.get(&probe).copied(),
                    "order {order}, get {probe}"
                );
            }
            let (from, to) = (
                rng.random_range(0..universe),
                rng.random_range(0..universe + 5),
            );
            let want: Vec<(u64, u64)> = model
                .range(from..to.max(from))
                .map(|(k, v)| (*k, *v))
                .collect();
            assert_eq!(
                t.range(from, to),
                want,
                "order {order}: range [{from}, {to})"
            );
            let all: Vec<(u64, u64)> = model.iter().map(|(k, v)| (*k, *v)).collect();
            assert_eq!(
                t.range(0, u64::MAX),
                all,
                "order {order}: a full scan, across every leaf"
            );
        });
    }

    #[test]
    fn ascending_and_descending_inserts_keep_every_leaf_at_one_depth() {
        for order in [3, 4, 7] {
            for keys in [(0..300).collect::<Vec<u64>>(), (0..300).rev().collect()] {
                let t = tree(order, keys);
                check(&t);
                let got = t.range(0, 300);
                assert_eq!(got.len(), 300, "order {order}: every key in the scan");
                assert!(
                    got.iter().enumerate().all(|(i, e)| e.0 == i as u64),
                    "order {order}: sorted and complete"
                );
            }
        }
    }

    #[test]
    fn a_range_across_a_split_boundary_is_sorted_and_complete() {
        let t = tree(4, [10, 20, 30, 40, 50, 60]);
        assert_eq!(shape(&t), "{30 50: [10 20] [30 40] [50 60]}");
        let want = [(20, 200), (30, 300), (40, 400), (50, 500)];
        assert_eq!(
            t.range(20, 60),
            want,
            "from 20 up to 60 (excluded), over three leaves"
        );
        assert_eq!(t.range(25, 26), [], "nothing between 25 and 26");
        assert_eq!(
            t.range(30, 31),
            [(30, 300)],
            "a separator key is in the scan, once"
        );
    }

    #[test]
    fn a_lookup_reads_one_page_per_level() {
        let mut rng = sdlings_kit::workload::seeded_rng(3);
        let t = tree(4, (0..2_000).map(|_| rng.random_range(0..100_000)));
        let (height, leaves) = check(&t);
        for key in [0, 500, 99_999, 100_001, rng.random_range(0..100_000)] {
            let before = page_reads();
            t.get(key);
            let reads = page_reads() - before;
            assert!(
                reads <= height as u64 + 1,
                "get({key}) read {reads} pages: the tree is {height} levels deep ({} leaves), and \
                 a lookup walks down one page per level",
                leaves.len()
            );
        }
    }

    #[test]
    fn a_range_reads_the_path_down_then_only_the_leaves_it_covers() {
        let t = tree(4, (0..3_000).map(|k| k * 2));
        let (height, _) = check(&t);
        let before = page_reads();
        let got = t.range(3_000, 3_020);
        let reads = page_reads() - before;
        assert_eq!(got.len(), 10);
        assert!(
            reads <= height as u64 + 6,
            "10 entries from a tree {height} levels deep took {reads} page reads: walk down to the \
             first leaf, then along the leaf chain (10 entries span at most 6 leaves of ≥ 2 keys)"
        );
    }
}
