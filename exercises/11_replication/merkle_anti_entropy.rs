// Merkle anti-entropy — find what two replicas disagree on without sending what they agree on.
//
// Replicas drift: a write missed a replica that was down, a hint was lost. Dynamo, Cassandra
// (`nodetool repair`) and Riak repair them in the background by comparing Merkle trees: each
// replica hashes its keys into buckets (the leaves) and hashes pairs of hashes up to a root.
// Equal roots: nothing to do. Different: compare the children, and go down only where they
// differ, until the buckets that differ; only their keys cross the network.
//
// Build the tree's update (a write changes one bucket and the path above it) and the sync: a
// replica that receives hashes answers with the next level under the differing ones, or, at the
// buckets, with their entries. The property: after syncs, replicas agree, and per key the newest
// version wins (a delete is a tombstone with a version); a sync sends hashes and keys in
// proportion to the differences (times the depth, times a bucket's size), not to the data.
// Lab: grow KEYS and DIFFERENCES and watch the keys sent; DEPTH trades hashes for keys.

use std::collections::BTreeMap;

use sdlings_kit::cluster::{Ctx, Node, NodeId};
use sdlings_kit::replication::merkle_anti_entropy::{
    Entry, Msg, bucket, entry_hash, lab, pair_hash,
};

/// A Merkle tree of `depth` levels under the root: level `l` has `2^l` nodes; the `2^depth`
/// leaves are the buckets. Node `i` of level `l` is `nodes[(1 << l) + i]`; its children are
/// nodes `2i` and `2i + 1` of level `l + 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleTree {
    depth: u32,
    nodes: Vec<u64>,
}

impl MerkleTree {
    /// The tree of an empty store: every bucket hashes to 0.
    pub fn new(depth: u32) -> Self {
        let mut nodes = vec![0; 2 << depth];
        for i in (1..1usize << depth).rev() {
            nodes[i] = pair_hash(nodes[2 * i], nodes[2 * i + 1]);
        }
        MerkleTree { depth, nodes }
    }

    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// The hash of node `index` of `level` (0: the root).
    pub fn hash(&self, level: u32, index: usize) -> u64 {
        self.nodes[(1 << level) + index]
    }
}

/// One replica: its data and the tree over it. It syncs with a random peer every tick.
pub struct Replica {
    pub data: BTreeMap<u64, Entry>,
    pub tree: MerkleTree,
}

impl Replica {
    /// Every entry of `bucket`, in key order.
    #[allow(dead_code)] // (silences "never used" until you use it)
    fn bucket_entries(&self, bucket_index: usize) -> Vec<(u64, Entry)> {
        let depth = self.tree.depth();
        let in_bucket = |k: &u64| bucket(*k, depth) == bucket_index;
        self.data
            .iter()
            .filter(|(k, _)| in_bucket(k))
            .map(|(&k, &e)| (k, e))
            .collect()
    }
}

// ---- Your part -------------------------------------------------------------------------------

impl MerkleTree {
    /// `key`'s entry changed from `old` (`None`: the key was absent) to `new`: update the tree.
    pub fn update(&mut self, key: u64, old: Option<Entry>, new: Entry) {
        todo!("key {key} went from {old:?} to {new:?}: update its bucket and the path above")
    }
}

impl Replica {
    /// Stores `entry` for `key` if it is newer than what this replica has. Returns whether it was.
    pub fn put(&mut self, key: u64, entry: Entry) -> bool {
        todo!("store {entry:?} for key {key} if it is newer")
    }
}

impl Node for Replica {
    type Msg = Msg;

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        let _ = (from, ctx); // (only silences "unused variable": delete it)
        match msg {
            Msg::Hashes { level, nodes } => {
                todo!("compare {nodes:?} of level {level} with ours; answer where they differ")
            }
            Msg::Entries {
                buckets,
                entries,
                reply,
            } => {
                todo!("take the newer of {entries:?}; if {reply}, send ours of {buckets:?}")
            }
        }
    }

    // Given: start a sync with a random peer, by sending it our root.
    fn on_tick(&mut self, ctx: &mut Ctx<'_, Msg>) {
        use rand::RngExt;
        let peers: Vec<NodeId> = ctx.peers().collect();
        if !peers.is_empty() {
            let peer = peers[ctx.rng().random_range(0..peers.len())];
            let root = self.tree.hash(0, 0);
            ctx.send(
                peer,
                Msg::Hashes {
                    level: 0,
                    nodes: vec![(0, root)],
                },
            );
        }
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// The tree's depth (2^DEPTH buckets), the data sizes and the numbers of differing keys.
const DEPTH: u32 = 8;
const KEYS: [u64; 3] = [1_000, 10_000, 100_000];
const DIFFERENCES: [usize; 3] = [0, 1, 10];

fn main() {
    lab(DEPTH, &KEYS, &DIFFERENCES, |_, entries| {
        replica(DEPTH, entries)
    });
}

/// A replica of `depth` holding `entries`.
pub fn replica(depth: u32, entries: &[(u64, Entry)]) -> Replica {
    let mut r = Replica {
        data: BTreeMap::new(),
        tree: MerkleTree::new(depth),
    };
    for &(k, e) in entries {
        r.put(k, e);
    }
    r
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::property::for_seeds;
    use sdlings_kit::replication::merkle_anti_entropy::{diverged, newest, simulate, sync_pair};

    use super::*;

    const SEEDS: u64 = 100;

    fn e(version: u64, value: Option<u64>) -> Entry {
        Entry { version, value }
    }

    /// The reference: the tree of `data`, built from scratch.
    fn reference(depth: u32, data: &BTreeMap<u64, Entry>) -> Vec<Vec<u64>> {
        let mut levels = vec![vec![0u64; 1 << depth]];
        for (&k, entry) in data {
            levels[0][bucket(k, depth)] ^= entry_hash(k, entry);
        }
        while levels.last().unwrap().len() > 1 {
            let below = levels.last().unwrap();
            let up = below.chunks(2).map(|p| pair_hash(p[0], p[1])).collect();
            levels.push(up);
        }
        levels.reverse();
        levels
    }

    fn assert_tree_matches(r: &Replica, why: &str) {
        let depth = r.tree.depth();
        for (level, hashes) in reference(depth, &r.data).iter().enumerate() {
            for (i, &h) in hashes.iter().enumerate() {
                assert_eq!(
                    r.tree.hash(level as u32, i),
                    h,
                    "{why}: node {i} of level {level} must hash what is under it (a leaf: the XOR \
                     of its entries' hashes; above: the pair hash of its two children)"
                );
            }
        }
    }

    #[test]
    fn a_write_changes_its_bucket_and_every_node_above_it_and_nothing_else() {
        let mut r = replica(3, &[]);
        let empty = r.tree.clone();
        assert!(r.put(42, e(1, Some(7))));
        assert_tree_matches(&r, "after one write");
        let b = bucket(42, 3);
        for level in 0..=3u32 {
            for i in 0..1usize << level {
                let above = i == b >> (3 - level);
                assert_eq!(
                    r.tree.hash(level, i) != empty.hash(level, i),
                    above,
                    "level {level} node {i}: only the path from bucket {b} to the root changes"
                );
            }
        }
        assert!(r.put(42, e(2, None)));
        assert_tree_matches(
            &r,
            "after the key's delete (a tombstone replaces the value)",
        );
        assert!(
            !r.put(42, e(1, Some(9))),
            "version 1 is older than the tombstone's 2"
        );
        assert_eq!(r.data[&42], e(2, None), "the newer version stays");
    }

    #[test]
    fn the_tree_always_equals_a_tree_built_from_scratch() {
        for_seeds(200, |rng| {
            let depth = rng.random_range(0..6);
            let mut r = replica(depth, &[]);
            for _ in 0..rng.random_range(0..40) {
                let key = rng.random_range(0..20);
                let value = rng.random_bool(0.7).then(|| rng.random_range(0..3));
                r.put(key, e(rng.random_range(1..6), value));
            }
            assert_tree_matches(&r, &format!("depth {depth}, data {:?}", r.data));
        });
    }

    #[test]
    fn two_replicas_with_the_same_data_exchange_only_their_roots() {
        let data = [(1, e(1, Some(1))), (2, e(3, None)), (99, e(2, Some(5)))];
        let (mut a, mut b) = (replica(4, &data), replica(4, &data));
        let traffic = sync_pair(&mut a, &mut b);
        assert_eq!(
            (traffic.messages, traffic.hashes, traffic.keys),
            (1, 1, 0),
            "equal roots: one message with one hash, and no key sent"
        );
    }

    #[test]
    fn a_sync_makes_two_replicas_agree_and_the_newest_version_of_each_key_wins() {
        for_seeds(200, |rng| {
            let depth = rng.random_range(0..7);
            let (keys, changes) = (rng.random_range(0..60), rng.random_range(0..12));
            let data = diverged(rng, 2, keys, changes);
            let (mut a, mut b) = (replica(depth, &data[0]), replica(depth, &data[1]));
            sync_pair(&mut a, &mut b);
            let expected = newest(&data);
            assert_eq!(
                a.data, expected,
                "replica a after one sync: the newest of each key, \
                deletes (tombstones) included"
            );
            assert_eq!(b.data, expected, "replica b after one sync, the same");
            assert_tree_matches(&a, "a's tree after the sync");
            assert_eq!(
                sync_pair(&mut a, &mut b).keys,
                0,
                "a second sync finds nothing"
            );
        });
    }

    #[test]
    fn a_sync_sends_keys_of_the_differing_buckets_only_and_hashes_down_their_paths() {
        for_seeds(100, |rng| {
            let depth = rng.random_range(3..8);
            let (keys, changes) = (rng.random_range(100..300), rng.random_range(1..6));
            let data = diverged(rng, 2, keys, changes);
            let (mut a, mut b) = (replica(depth, &data[0]), replica(depth, &data[1]));
            let differing: Vec<usize> = (0..1usize << depth)
                .filter(|&i| a.tree.hash(depth, i) != b.tree.hash(depth, i))
                .collect();
            let in_differing = |r: &Replica| {
                r.data
                    .keys()
                    .filter(|&&k| differing.contains(&bucket(k, depth)))
                    .count() as u64
            };
            let keys_bound = in_differing(&a) + in_differing(&b);
            let traffic = sync_pair(&mut a, &mut b);
            assert!(
                traffic.keys <= keys_bound,
                "{} keys sent; the {} differing buckets hold {keys_bound} keys on both sides \
                 together, and nothing else needs to cross",
                traffic.keys,
                differing.len()
            );
            let hashes_bound = 1 + 2 * differing.len() as u64 * depth as u64;
            assert!(
                traffic.hashes <= hashes_bound,
                "{} hashes sent: a sync goes down only under differing nodes, so at most 2 hashes \
                 per level per differing bucket, plus the root ({hashes_bound})",
                traffic.hashes
            );
        });
    }

    #[test]
    fn replicas_on_a_faulty_cluster_converge_to_the_newest_version_of_every_key() {
        for_seeds(SEEDS, |rng| {
            let nodes = rng.random_range(2..=3);
            let depth = rng.random_range(2..6);
            let changes = rng.random_range(1..15);
            let data = diverged(rng, nodes, 80, changes);
            let expected = newest(&data);
            let finals = simulate(
                &data,
                rng,
                move |_, d| replica(depth, d),
                |r| r.data.clone(),
            );
            for (id, held) in finals.iter().enumerate() {
                assert_eq!(
                    held, &expected,
                    "replica {id} after the partitions healed and syncs went on: it must hold \
                     the newest version of every key any replica had (deletes as tombstones)"
                );
            }
        });
    }
}
