// mod-N rehashing — why `hash(key) % N` falls apart the day you add a node
//
// The obvious way to spread keys over N cache nodes is `node = hash(key) % N`: even, fast, and
// stateless. Then traffic grows and you add a fifth node: `% 4` becomes `% 5`, and almost every
// key now maps to a different node. For a cache tier that is a near-total miss storm on the
// database at the worst possible moment (you were adding capacity because load was high); for a
// sharded store it means copying almost all the data, not a fifth of it.
//
// Measure it. Write `node_for(key, nodes)`, which routes a key with the topic's `stable_hash`;
// `measure_resize(keys, from, to)`, which counts the keys whose node changes when the node
// count goes from `from` to `to`, and how many of those moves were needless (between two nodes
// that exist both before and after, so no scheme had to make them); and
// `ideal_moved_fraction(from, to)`, the least any scheme could move.
//
// Lab: the table resizes clusters of NODE_COUNTS nodes by one, up and down, over KEYS keys.
// Expect about N/(N+1) of the keys to move on a join where 1/(N+1) would do, nearly all of them
// needlessly; the gap widens with N (100 → 101 moves 99% instead of 1%). "hit rate after" is
// what a cache tier keeps right after the resize. Fixing that is the rest of this topic.

use sdlings_kit::hashing::mod_n::{Resize, run};
use sdlings_kit::hashing::stable_hash;

// ---- Your part -------------------------------------------------------------------------------

/// The node (in `0..nodes`) that owns `key` under mod-N placement: the key's `stable_hash`
/// modulo the node count. `nodes` must be at least 1.
pub fn node_for(key: &str, nodes: usize) -> usize {
    // `usize` is at most 64 bits, so the remainder always fits back into one.
    (stable_hash(key) % nodes as u64) as usize
}

/// Routes every key with `from` nodes and again with `to` nodes (both at least 1) and counts
/// the keys whose node changed, and among them the needless moves: the old and the new node
/// are both below `min(from, to)`, so both exist in both layouts. `Resize` is given (kit):
/// `Resize { keys, moved, needless }`, all counts.
pub fn measure_resize(keys: &[String], from: usize, to: usize) -> Resize {
    let surviving = from.min(to);
    let mut moved = 0;
    let mut needless = 0;
    for key in keys {
        let before = node_for(key, from);
        let after = node_for(key, to);
        if before != after {
            moved += 1;
            // A key leaving a removed node, or landing on a new one, had to move; a key going
            // from one surviving node to another only moved because `% N` renumbered the world.
            if before < surviving && after < surviving {
                needless += 1;
            }
        }
    }
    Resize {
        keys: keys.len(),
        moved,
        needless,
    }
}

/// The smallest share of keys any placement must move when the node count goes from `from` to
/// `to` (both at least 1), assuming every node holds an equal share before and after. Joins:
/// the new nodes must end up with their share of the *new* total; leaves: the keys of the
/// removed nodes, their share of the *old* total. Either way: |to − from| / max(from, to).
pub fn ideal_moved_fraction(from: usize, to: usize) -> f64 {
    from.abs_diff(to) as f64 / from.max(to) as f64
}

// ---- Lab -------------------------------------------------------------------------------------

/// Cluster sizes to resize by one node, up (a join) and down (a leave).
const NODE_COUNTS: [usize; 9] = [2, 3, 4, 5, 8, 10, 16, 32, 100];
/// Distinct keys placed on the cluster (e.g. cached user profiles).
const KEYS: usize = 100_000;

fn main() {
    run(measure_resize, ideal_moved_fraction, &NODE_COUNTS, KEYS);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use sdlings_kit::property::for_seeds;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("user:{i}")).collect()
    }

    #[test]
    fn node_for_routes_with_the_stable_hash_so_every_client_agrees() {
        let expected = [
            ("user:42", 10, 2),
            ("user:42", 7, 4),
            ("cart:7", 3, 0),
            ("session:abc", 16, 3),
            ("", 5, 3),
        ];
        for (key, nodes, node) in expected {
            assert_eq!(
                node_for(key, nodes),
                node,
                "node_for({key:?}, {nodes}): take stable_hash(key) % nodes. Every client must \
                 compute the same node, so the hash must be the given, fully specified one (not \
                 DefaultHasher, whose output can change between Rust versions)"
            );
        }
    }

    #[test]
    fn node_for_returns_every_node_and_only_nodes_in_range() {
        let keys = keys(2_000);
        for nodes in 1..=12 {
            let mut used = vec![false; nodes];
            for key in &keys {
                let node = node_for(key, nodes);
                assert!(
                    node < nodes,
                    "node_for({key:?}, {nodes}) = {node}, but nodes are numbered 0..{nodes}"
                );
                used[node] = true;
            }
            assert!(
                used.iter().all(|&u| u),
                "with {nodes} nodes and 2000 keys every node should own some keys; unused: {:?} \
                 (an off-by-one in the modulus leaves the last node empty)",
                (0..nodes).filter(|&n| !used[n]).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn node_for_spreads_keys_evenly() {
        let mut counts = [0usize; 10];
        for key in keys(50_000) {
            counts[node_for(&key, 10)] += 1;
        }
        for (node, &count) in counts.iter().enumerate() {
            assert!(
                (4_500..=5_500).contains(&count),
                "node {node} got {count} of 50000 keys over 10 nodes; a good hash gives each \
                 about 5000 (all counts: {counts:?})"
            );
        }
    }

    #[test]
    fn measure_resize_counts_the_keys_that_changed_node() {
        let keys = keys(1_000);
        assert_eq!(
            measure_resize(&keys, 4, 5),
            Resize {
                keys: 1_000,
                moved: 804,
                needless: 600,
            },
            "4 -> 5 nodes over user:0..user:999"
        );
        assert_eq!(
            measure_resize(&keys, 3, 2),
            Resize {
                keys: 1_000,
                moved: 652,
                needless: 332,
            },
            "3 -> 2 nodes over user:0..user:999"
        );
    }

    #[test]
    fn an_unchanged_node_count_moves_nothing() {
        let keys = keys(1_000);
        for n in [1, 4, 9] {
            let resize = measure_resize(&keys, n, n);
            assert_eq!(
                (resize.keys, resize.moved, resize.needless),
                (1_000, 0, 0),
                "{n} -> {n} nodes: same layout, every key stays"
            );
        }
        assert_eq!(
            measure_resize(&[], 3, 4).moved_fraction(),
            0.0,
            "no keys, nothing moved"
        );
    }

    #[test]
    fn a_join_from_n_to_n_plus_one_moves_about_n_out_of_n_plus_one_keys() {
        let keys = keys(20_000);
        for n in [1, 2, 4, 9] {
            let fraction = measure_resize(&keys, n, n + 1).moved_fraction();
            let expected = n as f64 / (n + 1) as f64;
            assert!(
                (fraction - expected).abs() < 0.02,
                "{n} -> {} nodes moved {:.1}% of the keys; with mod-N a key stays only if \
                 h % {n} == h % {}, which happens for 1 in {} keys, so about {:.1}% move",
                n + 1,
                fraction * 100.0,
                n + 1,
                n + 1,
                expected * 100.0
            );
        }
    }

    #[test]
    fn on_a_join_every_move_not_onto_the_new_node_is_needless() {
        let keys = keys(5_000);
        let resize = measure_resize(&keys, 4, 5);
        let onto_new_node = keys.iter().filter(|k| node_for(k, 5) == 4).count();
        assert_eq!(
            resize.moved - resize.needless,
            onto_new_node,
            "going from 4 to 5 nodes, the only moves anyone must make are onto node 4 (the new \
             one); every other move is between nodes 0..=3 that exist before and after"
        );
        assert!(
            resize.needless > resize.moved / 2,
            "most mod-N moves are needless: {} of {} moved",
            resize.needless,
            resize.moved
        );
    }

    #[test]
    fn on_a_leave_every_move_not_off_the_removed_node_is_needless() {
        let keys = keys(5_000);
        let resize = measure_resize(&keys, 5, 4);
        let off_removed_node = keys.iter().filter(|k| node_for(k, 5) == 4).count();
        assert_eq!(
            resize.moved - resize.needless,
            off_removed_node,
            "going from 5 to 4 nodes, only the keys of node 4 (removed) must move; a key moving \
             between nodes 0..=3 is needless, whichever direction you resize in"
        );
    }

    #[test]
    fn the_ideal_for_a_join_is_one_share_of_the_new_node_count() {
        for (from, to, ideal) in [(4, 5, 0.2), (9, 10, 0.1), (1, 2, 0.5), (4, 8, 0.5)] {
            let got = ideal_moved_fraction(from, to);
            assert!(
                (got - ideal).abs() < 1e-12,
                "{from} -> {to} nodes: the new nodes must end up with {to} - {from} shares of \
                 {to}, so at least {ideal} of the keys move; got {got}"
            );
        }
    }

    #[test]
    fn the_ideal_for_a_leave_is_the_removed_nodes_share_of_the_old_count() {
        for (from, to, ideal) in [(5, 4, 0.2), (10, 9, 0.1), (2, 1, 0.5), (8, 4, 0.5)] {
            let got = ideal_moved_fraction(from, to);
            assert!(
                (got - ideal).abs() < 1e-12,
                "{from} -> {to} nodes: only the keys of the {} removed node(s) must move, \
                 {ideal} of all keys; got {got}",
                from - to
            );
        }
        assert_eq!(ideal_moved_fraction(6, 6), 0.0, "no resize, no move");
    }

    #[test]
    fn measure_resize_agrees_with_a_direct_count_for_any_resize() {
        for_seeds(60, |rng| {
            let from = rng.random_range(1..13);
            let to = rng.random_range(1..13);
            let keys: Vec<String> = (0..rng.random_range(0..300))
                .map(|_| format!("key-{}", rng.random::<u32>()))
                .collect();
            let (mut moved, mut needless) = (0, 0);
            for key in &keys {
                let (before, after) =
                    (stable_hash(key) % from as u64, stable_hash(key) % to as u64);
                if before != after {
                    moved += 1;
                    if before.max(after) < from.min(to) as u64 {
                        needless += 1;
                    }
                }
            }
            assert_eq!(
                measure_resize(&keys, from, to),
                Resize {
                    keys: keys.len(),
                    moved,
                    needless,
                },
                "{from} -> {to} nodes over {} keys: a move is needless when both its old and new \
                 node exist in both layouts (both below min({from}, {to})), also when several \
                 nodes join or leave at once",
                keys.len()
            );
        });
    }

    #[test]
    fn the_ideal_is_the_changed_nodes_share_of_the_larger_cluster_for_any_resize() {
        for from in 1..=12_usize {
            for to in 1..=12_usize {
                let (changed, larger) = (from.abs_diff(to), from.max(to));
                let expected = changed as f64 / larger as f64;
                let got = ideal_moved_fraction(from, to);
                assert!(
                    (got - expected).abs() < 1e-12,
                    "{from} -> {to} nodes: {} node(s) change out of the {} in the larger layout, \
                     so the least any scheme moves is {expected}; got {got}",
                    changed,
                    larger
                );
            }
        }
    }
}
