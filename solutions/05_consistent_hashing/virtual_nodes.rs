// Virtual nodes — many points per node, for an even load and a shared handover
//
// A ring with one point per node is lopsided: N random points cut the circle into very unequal
// arcs, so one node can own several times its fair share, and when a node leaves, its single
// successor inherits its whole arc at once. The fix used by Cassandra (`num_tokens`), Riak,
// Dynamo and the ketama Memcached clients is virtual nodes: each physical node puts V points on
// the ring, so it owns V small arcs scattered around the circle. Its load is the sum of V random
// arcs (the spread shrinks roughly like 1/√V), and when it leaves, each of its arcs goes to a
// different neighbour, so the whole cluster shares the handover. Weights come for free: a node
// with twice the memory gets twice the points.
//
// Build `VnodeRing`: `vnode_position` places virtual node `index` of `node` at
// `stable_hash("{node}#{index}")` (so the label must involve both); `add_weighted_node` puts
// `weight × vnodes` points on the ring (indices 0, 1, 2...) keeping them sorted; `remove_node`
// takes every one of them away; `route` finds the first point clockwise, as in `hash_ring`, and
// answers with that point's physical node. Adding a node that is already there is a no-op
// returning `false`.
//
// Lab: first an in-process sweep over VNODE_SWEEP: watch max/mean load fall towards 1 and the
// handover of a leaving node spread over every survivor. Then real sockets: NODES cache servers
// on localhost, KEYS keys sent as HTTP requests through your ring (VNODES points per node) and
// through mod-N; a server joins, then one crashes and is removed. "cold misses" counts requests
// that land on a server that has never seen that key: a cache miss the resize caused. Expect
// the ring to cause ~1/N cold misses per event, where mod-N makes almost every key cold. Turn
// VNODES down to 1: the keys-per-server table goes lopsided, and a single server inherits all
// of the crashed one's keys.

use std::collections::BTreeMap;

use sdlings_kit::hashing::vnodes::{Knobs, LabVnodeRing, run};
use sdlings_kit::hashing::{Point, stable_hash};

// ---- Your part -------------------------------------------------------------------------------

/// Where virtual node `index` of `node` sits on the ring: `stable_hash` of the label
/// `"{node}#{index}"`, e.g. `"cache-a#0"`, `"cache-a#1"`.
pub fn vnode_position(node: &str, index: usize) -> u64 {
    // Both parts matter: the index alone would stack every node's vnodes on the same V points,
    // the name alone would stack a node's V vnodes on one point.
    stable_hash(format!("{node}#{index}"))
}

#[derive(Debug, Clone)]
pub struct VnodeRing {
    /// Virtual nodes per unit of weight.
    vnodes: usize,
    /// Every virtual node of every node, sorted by (position, node). `Point::position()` counts
    /// its reads: the tests check that `route` looks at O(log points) of them.
    points: Vec<Point>,
    /// The physical nodes and their weights.
    weights: BTreeMap<String, u32>,
}

impl VnodeRing {
    /// Puts `node` on the ring with `weight × vnodes` virtual nodes, indices `0..weight × vnodes`,
    /// each at `vnode_position(node, index)`, keeping `points` sorted by (position, node) and
    /// recording the weight. Returns `false` and changes nothing if the node is already on the
    /// ring. A weight of 0 is a caller bug: panic with a message saying the node needs "a weight
    /// of at least 1" (with no points it would be listed on the ring yet never receive a key).
    pub fn add_weighted_node(&mut self, node: &str, weight: u32) -> bool {
        assert!(weight >= 1, "a node needs a weight of at least 1");
        if self.weights.contains_key(node) {
            return false;
        }
        let count = weight as usize * self.vnodes;
        self.points.reserve(count);
        for index in 0..count {
            self.points
                .push(Point::new(vnode_position(node, index), node));
        }
        // One sort after the batch: O((P + V) log(P + V)), where V sorted inserts would each
        // shift the tail of the Vec.
        self.points
            .sort_unstable_by(|a, b| (a.position(), &a.node).cmp(&(b.position(), &b.node)));
        self.weights.insert(node.to_string(), weight);
        true
    }

    /// Takes `node` and every one of its virtual nodes off the ring. Returns `false` if it was
    /// not there.
    pub fn remove_node(&mut self, node: &str) -> bool {
        if self.weights.remove(node).is_none() {
            return false;
        }
        // All of its points, whatever its weight was: a forgotten vnode keeps attracting keys
        // to a node that is gone.
        self.points.retain(|p| p.node != node);
        true
    }

    /// The physical node owning `key`: the node of the first point whose position is >=
    /// `stable_hash(key)`, wrapping around to the first point. `None` on an empty ring.
    pub fn route(&self, key: &str) -> Option<&str> {
        let first = self.points.first()?;
        let hash = stable_hash(key);
        let at = self.points.partition_point(|p| p.position() < hash);
        Some(&self.points.get(at).unwrap_or(first).node)
    }
}

// ---- Given -----------------------------------------------------------------------------------

impl VnodeRing {
    /// An empty ring giving each node `vnodes` points per unit of weight (at least 1).
    pub fn new(vnodes: usize) -> Self {
        assert!(
            vnodes >= 1,
            "each node needs at least one point on the ring"
        );
        VnodeRing {
            vnodes,
            points: Vec::new(),
            weights: BTreeMap::new(),
        }
    }

    pub fn vnodes(&self) -> usize {
        self.vnodes
    }

    /// Number of physical nodes.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Every virtual node, in ring order.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// A node's weight, or `None` if it is not on the ring.
    pub fn weight(&self, node: &str) -> Option<u32> {
        self.weights.get(node).copied()
    }

    /// The physical nodes, by name.
    pub fn nodes(&self) -> Vec<&str> {
        self.weights.keys().map(String::as_str).collect()
    }

    /// Adds `node` with weight 1: `vnodes` points.
    pub fn add_node(&mut self, node: &str) -> bool {
        self.add_weighted_node(node, 1)
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Cache servers started for the socket part (and nodes in the in-process sweep).
const NODES: usize = 5;
/// Virtual nodes per server in the socket part.
const VNODES: usize = 100;
/// Distinct keys sent as real HTTP requests in each phase of the socket part.
const KEYS: usize = 1_000;
/// Virtual-node counts compared in the in-process sweep, over SWEEP_KEYS keys.
const VNODE_SWEEP: [usize; 5] = [1, 10, 50, 100, 500];
const SWEEP_KEYS: usize = 50_000;

fn main() {
    run::<VnodeRing>(Knobs {
        nodes: NODES,
        vnodes: VNODES,
        keys: KEYS,
        vnode_sweep: VNODE_SWEEP.to_vec(),
        sweep_keys: SWEEP_KEYS,
    });
}

impl LabVnodeRing for VnodeRing {
    fn with_vnodes(vnodes: usize) -> Self {
        VnodeRing::new(vnodes)
    }
    fn add(&mut self, node: &str) {
        self.add_node(node);
    }
    fn remove(&mut self, node: &str) {
        self.remove_node(node);
    }
    fn owner(&self, key: &str) -> Option<&str> {
        self.route(key)
    }
    fn point_count(&self) -> usize {
        self.points.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use sdlings_kit::hashing::position_reads;
    use sdlings_kit::hashing::vnodes::spread;
    use sdlings_kit::property::for_seeds;

    fn ring(vnodes: usize, nodes: &[&str]) -> VnodeRing {
        let mut ring = VnodeRing::new(vnodes);
        for node in nodes {
            assert!(
                ring.add_node(node),
                "{node} is new, so add_node returns true"
            );
        }
        ring
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("user:{i}")).collect()
    }

    fn counts(ring: &VnodeRing, keys: &[String]) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for key in keys {
            *counts
                .entry(ring.route(key).expect("non-empty").to_string())
                .or_default() += 1;
        }
        counts
    }

    fn ten_nodes() -> Vec<String> {
        (0..10).map(|i| format!("cache-{i}")).collect()
    }

    #[test]
    fn vnode_position_hashes_the_node_name_and_the_index_together() {
        for (node, index, position) in [
            ("cache-a", 0, 0x460b_86c5_42b4_86cf_u64),
            ("cache-a", 1, 0x2589_62e6_5adf_98b1),
            ("cache-b", 0, 0xffe6_20c6_6199_080d),
        ] {
            assert_eq!(
                vnode_position(node, index),
                position,
                "vnode_position({node:?}, {index}) must be stable_hash(\"{node}#{index}\"): every \
                 client has to put the vnodes at the same places"
            );
        }
    }

    #[test]
    fn adding_a_node_twice_is_a_no_op() {
        let mut ring = ring(10, &["cache-a", "cache-b"]);
        let before = ring.points().to_vec();
        assert!(!ring.add_node("cache-a"), "cache-a is already on the ring");
        assert!(
            !ring.add_weighted_node("cache-b", 5),
            "cache-b is already on the ring, whatever weight is asked for"
        );
        assert_eq!(ring.points(), before.as_slice(), "no extra points");
        assert_eq!(ring.weight("cache-b"), Some(1), "weight unchanged");
    }

    #[test]
    fn an_empty_ring_routes_nowhere() {
        let mut ring = VnodeRing::new(10);
        assert_eq!(ring.route("user:1"), None);
        ring.add_node("cache-a");
        ring.remove_node("cache-a");
        assert_eq!(ring.route("user:1"), None, "the last node left");
        assert!(ring.points().is_empty());
    }

    #[test]
    fn a_key_exactly_on_a_vnode_belongs_to_that_vnodes_node() {
        let ring = ring(10, &["cache-a", "cache-b", "cache-c"]);
        for label in ["cache-b#7", "cache-c#0", "cache-a#9"] {
            let node = label.split('#').next().unwrap();
            assert_eq!(
                ring.route(label),
                Some(node),
                "key {label:?} hashes exactly onto {label}'s point: it belongs to {node} \
                 (the first point at or after the key, >= not >)"
            );
        }
    }

    #[test]
    fn keys_past_the_last_point_wrap_around_to_the_first() {
        let ring = ring(5, &["cache-a", "cache-b", "cache-c"]);
        let last = ring.points().last().unwrap().position();
        let first = ring.points()[0].node.clone();
        let wrapping: Vec<String> = keys(20_000)
            .into_iter()
            .filter(|k| stable_hash(k) > last)
            .collect();
        assert!(
            !wrapping.is_empty(),
            "test setup: some keys lie past the end"
        );
        for key in wrapping {
            assert_eq!(
                ring.route(&key),
                Some(first.as_str()),
                "{key} lies past the last point: it wraps to the lowest point, owned by {first}"
            );
        }
    }

    #[test]
    fn removing_a_node_takes_away_every_one_of_its_vnodes() {
        let mut ring = ring(20, &["cache-a", "cache-b"]);
        ring.add_weighted_node("big", 3);
        assert!(!ring.remove_node("cache-z"), "cache-z was never added");
        assert!(ring.remove_node("big"));
        assert!(!ring.remove_node("big"), "already removed");
        let left: Vec<&Point> = ring.points().iter().filter(|p| p.node == "big").collect();
        assert!(
            left.is_empty(),
            "{} of big's 60 vnodes are still on the ring; they would keep routing keys to a \
             node that is gone",
            left.len()
        );
        assert_eq!(
            ring.points().len(),
            40,
            "cache-a's and cache-b's 20 each remain"
        );
        assert_eq!(ring.weight("big"), None);
        assert_eq!(ring.len(), 2);
        for key in keys(2_000) {
            assert_ne!(
                ring.route(&key),
                Some("big"),
                "{key} routed to a removed node"
            );
        }
    }

    #[test]
    fn removing_a_node_moves_only_its_keys_and_spreads_them_over_the_survivors() {
        let names = ten_nodes();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let full = ring(100, &names);
        let mut ring = full.clone();
        ring.remove_node("cache-3");
        let mut heirs: BTreeMap<&str, usize> = BTreeMap::new();
        for key in keys(20_000) {
            let (before, after) = (full.route(&key).unwrap(), ring.route(&key).unwrap());
            if before == "cache-3" {
                *heirs.entry(after).or_default() += 1;
            } else {
                assert_eq!(
                    before, after,
                    "{key} was on {before}, which stayed: it must not move"
                );
            }
        }
        let total: usize = heirs.values().sum();
        assert_eq!(
            heirs.len(),
            9,
            "with 100 vnodes, cache-3's many small arcs go to many different neighbours: every \
             survivor should inherit some of its keys; heirs: {heirs:?}"
        );
        let biggest = heirs.values().copied().max().unwrap();
        assert!(
            biggest * 10 < total * 3,
            "one survivor took {biggest} of cache-3's {total} keys; virtual nodes should share \
             the handover (each under 30%): {heirs:?}"
        );
    }

    #[test]
    fn more_vnodes_per_node_even_out_the_load() {
        let names = ten_nodes();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let keys = keys(40_000);
        let one = counts(&ring(1, &names), &keys);
        let hundred = counts(&ring(100, &names), &keys);
        let (max_one, ..) = spread(&one.values().copied().collect::<Vec<_>>());
        let (max_hundred, min_hundred, _) = spread(&hundred.values().copied().collect::<Vec<_>>());
        assert!(
            max_one > 2.0,
            "with 1 point per node the busiest of 10 nodes carries {max_one:.2}x the mean here; \
             expected a clearly lopsided ring (> 2x): {one:?}"
        );
        assert_eq!(hundred.len(), 10, "every node gets keys: {hundred:?}");
        assert!(
            max_hundred < 1.35 && min_hundred > 0.7,
            "with 100 vnodes per node, 10 nodes and 40000 keys, every node should carry between \
             0.7x and 1.35x the mean, got {min_hundred:.2}x..{max_hundred:.2}x: {hundred:?}"
        );
    }

    #[test]
    fn a_node_with_weight_three_gets_about_three_times_the_keys() {
        let mut ring = ring(100, &["cache-0", "cache-1", "cache-2", "cache-3"]);
        ring.add_weighted_node("big", 3);
        let keys = keys(50_000);
        let counts = counts(&ring, &keys);
        let share = counts["big"] as f64 / keys.len() as f64;
        assert!(
            (0.38..0.48).contains(&share),
            "big has weight 3 among four weight-1 nodes: 3/7 = 42.9% of the points, so about \
             that share of the keys; it got {:.1}% ({counts:?})",
            share * 100.0
        );
    }

    /// The obviously correct model: every (position, node) of every vnode, sorted.
    fn reference_points(vnodes: usize, nodes: &BTreeMap<String, u32>) -> Vec<(u64, String)> {
        let mut points = Vec::new();
        for (node, &weight) in nodes {
            for index in 0..weight as usize * vnodes {
                let label = [node.as_str(), "#", &index.to_string()].concat();
                points.push((stable_hash(label), node.clone()));
            }
        }
        points.sort();
        points
    }

    fn reference_owner(points: &[(u64, String)], key: &str) -> Option<String> {
        let hash = stable_hash(key);
        points
            .iter()
            .find(|(position, _)| *position >= hash)
            .or(points.first())
            .map(|(_, node)| node.clone())
    }

    #[test]
    fn the_ring_agrees_with_a_sorted_list_model_over_random_weights_joins_and_leaves() {
        for_seeds(40, |rng| {
            let vnodes = rng.random_range(1..12);
            let mut ring = VnodeRing::new(vnodes);
            let mut model: BTreeMap<String, u32> = BTreeMap::new();
            for step in 0..10 {
                let name = format!("node-{}", rng.random_range(0..8));
                if rng.random_range(0..3) < 2 {
                    let weight = rng.random_range(1..5);
                    let fresh = !model.contains_key(&name);
                    assert_eq!(
                        ring.add_weighted_node(&name, weight),
                        fresh,
                        "step {step}: add_weighted_node({name:?}, {weight}) is true only for a \
                         node not yet on the ring"
                    );
                    model.entry(name.clone()).or_insert(weight);
                } else {
                    assert_eq!(
                        ring.remove_node(&name),
                        model.remove(&name).is_some(),
                        "step {step}: remove_node({name:?}) is true only if it was on the ring"
                    );
                }
                let expected = reference_points(vnodes, &model);
                let got: Vec<(u64, String)> = ring
                    .points()
                    .iter()
                    .map(|p| (p.position(), p.node.clone()))
                    .collect();
                assert_eq!(
                    got, expected,
                    "step {step}, {vnodes} vnodes per unit of weight, nodes and weights {model:?}: \
                     the points must be vnodes 0..weight x vnodes of every node, at \
                     stable_hash(\"node#index\"), sorted by position"
                );
                for (node, &weight) in &model {
                    assert_eq!(
                        ring.weight(node),
                        Some(weight),
                        "step {step}: {node}'s weight"
                    );
                }
                assert_eq!(ring.len(), model.len(), "step {step}: physical nodes");
                for _ in 0..30 {
                    let key = format!("key-{}", rng.random::<u32>());
                    assert_eq!(
                        ring.route(&key).map(str::to_string),
                        reference_owner(&expected, &key),
                        "step {step}: {key} at {:#018x} belongs to the node of the first vnode at \
                         or after it, wrapping past the largest to the smallest",
                        stable_hash(&key)
                    );
                }
            }
        });
    }

    #[test]
    fn route_reads_a_logarithmic_number_of_points_not_the_whole_ring() {
        let names = ten_nodes();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let ring = ring(200, &names);
        let keys = keys(200);
        let before = position_reads();
        for key in &keys {
            ring.route(key);
        }
        let per_route = (position_reads() - before) as f64 / keys.len() as f64;
        assert!(
            per_route <= 26.0,
            "route read {per_route:.1} point positions per lookup on a ring of 2000 vnodes; the \
             points are sorted, so a binary search reads about log2(2000) = 11 of them. A scan \
             reads hundreds: with vnodes the ring is large, and O(log n) is what keeps it cheap"
        );
    }

    #[test]
    fn a_single_node_with_many_vnodes_owns_every_key() {
        let mut ring = VnodeRing::new(50);
        assert!(ring.add_weighted_node("solo", 2));
        assert_eq!(ring.points().len(), 100, "weight 2 x 50 vnodes");
        for key in keys(300) {
            assert_eq!(ring.route(&key), Some("solo"), "{key}: only one node");
        }
    }

    #[test]
    #[should_panic(expected = "a weight of at least 1")]
    fn a_weight_of_zero_is_a_caller_bug() {
        let mut ring = VnodeRing::new(10);
        ring.add_weighted_node("empty", 0);
    }
}
