// Consistent hash ring — a node joining or leaving moves only the keys it has to
//
// Picture the 64-bit hash space as a circle. Each node sits on it at `stable_hash(name)`; each
// key at `stable_hash(key)`. A key belongs to the first node clockwise from it (a node at
// exactly the key's position counts), wrapping past the top of the circle back to the lowest
// point. Because a node owns only the arc between its predecessor and itself, a node joining
// takes keys from one neighbour and nobody else, and a node leaving hands its keys to its
// successor: about 1/N of the keys move, where `hash % N` moved nearly all of them.
//
// Build `HashRing`: `add_node` and `remove_node` keep the points in a Vec sorted by position, so
// that `route` can binary-search the first point at or after the key; `ownership` reports the
// share of the circle each node owns, the "Owns" column of Cassandra's `nodetool status`.
// Decision: adding a node that is already on the ring is a no-op that returns `false`
// (idempotent, so a membership update delivered twice is harmless); removing an absent node
// returns `false` too. An empty ring routes nowhere: `None`.
//
// Lab: NODES nodes, KEYS keys; one node joins, then one leaves. Expect the ring to move ~1/N of
// the keys where mod-N moves ~all, every moved key to go to (or come from) a single node, and a
// lopsided load: with one point per node, some nodes own several times the arc of others. Turn
// NODES up and watch the spread stay bad: the next exercise, virtual nodes, fixes it.

use sdlings_kit::hashing::ring::{Knobs, run};
use sdlings_kit::hashing::{Point, RING_SIZE, stable_hash};

#[derive(Debug, Default, Clone)]
pub struct HashRing {
    /// One point per node (at `stable_hash(node)`), sorted by position (ties, which need a 64-bit
    /// collision, by name). `Point::position()` counts its reads: the tests check that `route`
    /// looks at O(log n) of them.
    points: Vec<Point>,
}

impl HashRing {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nodes on the ring.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The points, in ring order (ascending position).
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// The nodes, in ring order.
    pub fn nodes(&self) -> Vec<&str> {
        self.points.iter().map(|p| p.node.as_str()).collect()
    }

    // ---- Your part ---------------------------------------------------------------------------

    /// Puts `node` on the ring at `stable_hash(node)`, keeping `points` sorted. Returns `false`
    /// and changes nothing if the node is already there.
    pub fn add_node(&mut self, node: &str) -> bool {
        todo!("insert a point at stable_hash(node), keeping points sorted; no duplicates")
    }

    /// Takes `node` off the ring. Returns `false` if it was not there.
    pub fn remove_node(&mut self, node: &str) -> bool {
        todo!("remove the node's point")
    }

    /// The node owning `key`: the first point clockwise from `stable_hash(key)`, i.e. the first
    /// point whose position is >= the key's, wrapping around to the first point of the ring when
    /// the key lies past the last one. `None` on an empty ring.
    pub fn route(&self, key: &str) -> Option<&str> {
        todo!("binary-search the first point at or after stable_hash(key); wrap around")
    }

    /// Each node's share of the circle (0.0..=1.0), in ring order: the arc from the previous
    /// point (exclusive) to its own point (inclusive), the first node's arc wrapping around
    /// through 0, divided by `RING_SIZE`. The shares sum to 1 on a non-empty ring; an empty ring
    /// gives an empty Vec.
    pub fn ownership(&self) -> Vec<(&str, f64)> {
        todo!("each node's arc, from the previous point to its own, as a share of 2^64")
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Nodes on the ring at the start: "cache-0".."cache-{NODES-1}".
const NODES: usize = 5;
/// Distinct keys routed.
const KEYS: usize = 100_000;
/// Which node leaves in the second event (an index below NODES).
const LEAVING: usize = 0;

fn main() {
    let knobs = Knobs {
        nodes: NODES,
        keys: KEYS,
        leaving: LEAVING,
    };
    let (add, remove) = (HashRing::add_node, HashRing::remove_node);
    run(
        HashRing::new(),
        add,
        remove,
        HashRing::route,
        HashRing::ownership,
        knobs,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use sdlings_kit::hashing::{RING_SIZE, position_reads, stable_hash};
    use sdlings_kit::property::for_seeds;

    fn ring(nodes: &[&str]) -> HashRing {
        let mut ring = HashRing::new();
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

    const NODES: [&str; 4] = ["cache-a", "cache-b", "cache-c", "cache-d"];

    #[test]
    fn an_empty_ring_routes_nowhere() {
        let ring = HashRing::new();
        assert_eq!(ring.route("user:1"), None, "no nodes, no owner");
        assert!(ring.ownership().is_empty(), "no nodes own nothing");
    }

    #[test]
    fn a_key_exactly_on_a_node_point_belongs_to_that_node() {
        let ring = ring(&NODES);
        for node in NODES {
            // A key named like the node hashes to exactly the node's position.
            assert_eq!(
                ring.route(node),
                Some(node),
                "key {node:?} lies exactly on node {node}'s point: the first point at or \
                 after the key is the node itself (use >=, not >)"
            );
        }
    }

    #[test]
    fn keys_past_the_last_point_wrap_around_to_the_first_node() {
        let ring = ring(&NODES);
        let last = ring.points().last().unwrap().position();
        let first_node = ring.points()[0].node.clone();
        let past_the_end: Vec<String> = keys(5_000)
            .into_iter()
            .filter(|k| stable_hash(k) > last)
            .collect();
        assert!(
            !past_the_end.is_empty(),
            "test setup: some keys lie past the last point"
        );
        for key in &past_the_end {
            assert_eq!(
                ring.route(key),
                Some(first_node.as_str()),
                "{key} lies past the last point ({last:#018x}); clockwise, the next point is \
                 the lowest one on the ring, {first_node}"
            );
        }
    }

    #[test]
    fn adding_a_node_twice_is_a_no_op() {
        let mut ring = ring(&NODES);
        let before = ring.points().to_vec();
        assert!(
            !ring.add_node("cache-b"),
            "cache-b is already on the ring: add_node returns false"
        );
        assert_eq!(
            ring.points(),
            before.as_slice(),
            "a repeated add changes nothing: no second point for cache-b, so no key moves"
        );
    }

    #[test]
    fn a_single_node_owns_every_key_and_the_whole_circle() {
        let ring = ring(&["solo"]);
        for key in keys(200) {
            assert_eq!(ring.route(&key), Some("solo"), "{key}: only one node");
        }
        assert_eq!(
            ring.ownership(),
            vec![("solo", 1.0)],
            "alone on the ring, its arc goes all the way round (the wrapping distance from a \
             point to itself is 0, not the full circle)"
        );
    }

    /// The obviously correct model: every node's (position, name), sorted; a key's owner is the
    /// first one at or after its hash, else the lowest.
    fn reference_owner(nodes: &[(u64, String)], key: &str) -> Option<String> {
        let hash = stable_hash(key);
        nodes
            .iter()
            .find(|(position, _)| *position >= hash)
            .or(nodes.first())
            .map(|(_, name)| name.clone())
    }

    fn reference_points(names: &std::collections::BTreeSet<String>) -> Vec<(u64, String)> {
        let mut points: Vec<(u64, String)> =
            names.iter().map(|n| (stable_hash(n), n.clone())).collect();
        points.sort();
        points
    }

    #[test]
    fn route_agrees_with_a_sorted_list_model_through_random_joins_and_leaves() {
        for_seeds(40, |rng| {
            let mut ring = HashRing::new();
            let mut names = std::collections::BTreeSet::new();
            for step in 0..12 {
                let name = format!("node-{}", rng.random_range(0..10));
                if rng.random_range(0..3) < 2 {
                    let added = ring.add_node(&name);
                    assert_eq!(
                        added,
                        names.insert(name.clone()),
                        "step {step}: add_node({name:?}) returns true only for a new node"
                    );
                } else {
                    let removed = ring.remove_node(&name);
                    assert_eq!(
                        removed,
                        names.remove(&name),
                        "step {step}: remove_node({name:?}) returns true only if it was there"
                    );
                }
                let model = reference_points(&names);
                let got: Vec<(u64, String)> = ring
                    .points()
                    .iter()
                    .map(|p| (p.position(), p.node.clone()))
                    .collect();
                assert_eq!(
                    got, model,
                    "step {step}: the points must be exactly one per node, at stable_hash(name), \
                     sorted by position"
                );
                for k in 0..40 {
                    let key = format!("key-{}", rng.random::<u32>());
                    assert_eq!(
                        ring.route(&key).map(str::to_string),
                        reference_owner(&model, &key),
                        "step {step}, {key} at {:#018x}: the owner is the first point at or after \
                         the key, wrapping past the largest to the smallest; ring: {model:?} \
                         (key {k})",
                        stable_hash(&key)
                    );
                }
            }
        });
    }

    #[test]
    fn a_joining_node_takes_keys_only_from_its_clockwise_successor() {
        let keys = keys(3_000);
        for_seeds(30, |rng| {
            let count = rng.random_range(1..8);
            let names: Vec<String> = (0..count)
                .map(|i| format!("n{i}-{}", rng.random::<u16>()))
                .collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let before = ring(&names);
            let joiner = format!("joiner-{}", rng.random::<u32>());
            let mut after = before.clone();
            assert!(after.add_node(&joiner));
            let order = after.nodes();
            let at = order.iter().position(|n| *n == joiner).unwrap();
            let successor = order[(at + 1) % order.len()];
            for key in &keys {
                let (old, new) = (before.route(key).unwrap(), after.route(key).unwrap());
                if old != new {
                    assert_eq!(
                        (old, new),
                        (successor, joiner.as_str()),
                        "{key} moved from {old} to {new}: a joiner takes over part of its \
                         clockwise successor's arc ({successor}) and nothing else"
                    );
                }
            }
        });
    }

    #[test]
    fn route_reads_a_logarithmic_number_of_points_not_the_whole_ring() {
        let names: Vec<String> = (0..1_024).map(|i| format!("cache-{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let ring = ring(&names);
        let keys = keys(200);
        let before = position_reads();
        for key in &keys {
            ring.route(key);
        }
        let per_route = (position_reads() - before) as f64 / keys.len() as f64;
        assert!(
            per_route <= 24.0,
            "route read {per_route:.1} point positions per lookup on a ring of 1024 points; the \
             points are sorted, so a binary search reads about log2(1024) = 10 of them. Scanning \
             from the start reads hundreds: it is O(n), the promise is O(log n)"
        );
    }

    #[test]
    fn ownership_is_each_nodes_arc_from_its_predecessor_over_random_rings() {
        for_seeds(40, |rng| {
            let count = rng.random_range(2..10);
            let names: Vec<String> = (0..count)
                .map(|i| format!("n{i}-{}", rng.random::<u16>()))
                .collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let ring = ring(&names);
            let model = reference_points(&names.iter().map(|n| n.to_string()).collect());
            let shares = ring.ownership();
            assert_eq!(shares.len(), model.len(), "one share per node");
            for (i, ((node, share), (position, name))) in shares.iter().zip(&model).enumerate() {
                let previous = model[(i + model.len() - 1) % model.len()].0;
                let arc = position.wrapping_sub(previous) as f64 / RING_SIZE;
                assert_eq!(*node, name, "shares come in ring order");
                assert!(
                    (share - arc).abs() < 1e-12,
                    "{node} owns the arc from the previous point {previous:#018x} (exclusive, \
                     wrapping through 0 for the first node) to its own {position:#018x}: \
                     {arc}, got {share}"
                );
            }
        });
    }
}
