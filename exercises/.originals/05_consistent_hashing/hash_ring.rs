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

use std::collections::BTreeMap;

use sdlings_kit::lab::{Table, bar_chart, percent};

// ---- Given: a stable hash --------------------------------------------------------------------

/// FNV-1a, 64-bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3). Tiny and fully
/// specified, so every client, in every language and every version, computes the same value.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The SplitMix64 finaliser: every input bit affects every output bit, so keys that differ in
/// one character ("user:41", "user:42") land far apart.
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The hash this whole topic uses: FNV-1a, then the SplitMix64 finaliser. Not std's
/// `DefaultHasher`, whose output may change between Rust releases: every client must place a
/// key on the same node, today and after the next upgrade.
pub fn stable_hash(data: impl AsRef<[u8]>) -> u64 {
    mix64(fnv1a64(data.as_ref()))
}

/// The size of the circle: 2^64 positions.
const RING_SIZE: f64 = 18_446_744_073_709_551_616.0;

/// A node's place on the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// `stable_hash(node)`.
    pub position: u64,
    pub node: String,
}

#[derive(Debug, Default, Clone)]
pub struct HashRing {
    /// One point per node, sorted by `position` (ties, which need a 64-bit collision, by name).
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

/// Routes every key; returns each key's owner.
fn placement(ring: &HashRing, keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| ring.route(k).expect("a non-empty ring").to_string())
        .collect()
}

/// Keys that change owner under mod-N placement (`nodes[hash % len]`) between two node lists.
fn mod_n_owner<'a>(key: &str, nodes: &'a [String]) -> &'a str {
    &nodes[(stable_hash(key) % nodes.len() as u64) as usize]
}

/// Keys that change owner under mod-N placement (`nodes[hash % len]`) between two node lists.
fn mod_n_moves(keys: &[String], before: &[String], after: &[String]) -> usize {
    keys.iter()
        .filter(|k| mod_n_owner(k, before) != mod_n_owner(k, after))
        .count()
}

fn main() {
    let keys: Vec<String> = (0..KEYS).map(|i| format!("user:{i}")).collect();
    let mut names: Vec<String> = (0..NODES).map(|i| format!("cache-{i}")).collect();
    let mut ring = HashRing::new();
    for name in &names {
        ring.add_node(name);
    }
    let before = placement(&ring, &keys);

    println!("{NODES} nodes, one point each, {KEYS} keys\n");
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for owner in &before {
        *counts.entry(owner.as_str()).or_default() += 1;
    }
    let mut table = Table::new(&["node (ring order)", "owns", "keys", "keys / fair share"]);
    let mut bars = Vec::new();
    for (node, share) in ring.ownership() {
        let n = counts.get(node).copied().unwrap_or(0);
        table.row(&[
            node.to_string(),
            format!("{:.1}%", share * 100.0),
            n.to_string(),
            format!("{:.2}", n as f64 * NODES as f64 / KEYS as f64),
        ]);
        bars.push((node.to_string(), n as f64));
    }
    table.print();
    println!("\nkeys per node\n{}\n", bar_chart(&bars, 40));

    // Event 1: a node joins.
    let joining = format!("cache-{NODES}");
    ring.add_node(&joining);
    let names_before_join = names.clone();
    names.push(joining.clone());
    let after_join = placement(&ring, &keys);
    let moved_join: Vec<(&String, &String)> = before
        .iter()
        .zip(&after_join)
        .filter(|(a, b)| a != b)
        .collect();
    let onto_new = moved_join.iter().filter(|(_, b)| **b == joining).count();
    let donors: BTreeMap<&str, usize> = moved_join.iter().fold(BTreeMap::new(), |mut m, (a, _)| {
        *m.entry(a.as_str()).or_default() += 1;
        m
    });

    // Event 2: a node leaves (from the ring with the joiner).
    let leaving = format!("cache-{LEAVING}");
    ring.remove_node(&leaving);
    let names_before_leave = names.clone();
    names.retain(|n| *n != leaving);
    let after_leave = placement(&ring, &keys);
    let moved_leave: Vec<(&String, &String)> = after_join
        .iter()
        .zip(&after_leave)
        .filter(|(a, b)| a != b)
        .collect();
    let off_leaver = moved_leave.iter().filter(|(a, _)| **a == leaving).count();
    let heirs: BTreeMap<&str, usize> = moved_leave.iter().fold(BTreeMap::new(), |mut m, (_, b)| {
        *m.entry(b.as_str()).or_default() += 1;
        m
    });

    let mut events = Table::new(&[
        "event",
        "ring: moved",
        "of which must move",
        "mod-N: moved",
        "keys came from / went to",
    ]);
    let describe = |m: &BTreeMap<&str, usize>| {
        m.iter()
            .map(|(n, c)| format!("{n} ({c})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    events.row(&[
        format!("{joining} joins"),
        percent(moved_join.len() as u64, KEYS as u64),
        percent(onto_new as u64, KEYS as u64),
        percent(
            mod_n_moves(&keys, &names_before_join, &names_before_leave) as u64,
            KEYS as u64,
        ),
        format!("from {}", describe(&donors)),
    ]);
    events.row(&[
        format!("{leaving} leaves"),
        percent(moved_leave.len() as u64, KEYS as u64),
        percent(off_leaver as u64, KEYS as u64),
        percent(
            mod_n_moves(&keys, &names_before_leave, &names) as u64,
            KEYS as u64,
        ),
        format!("to {}", describe(&heirs)),
    ]);
    events.print();
    println!(
        "\nEvery move on the ring is one that had to happen, and each event involves a single \
         neighbour of the node that joined or left."
    );
    if let Some((heir, _)) = heirs.iter().max_by_key(|(_, c)| **c) {
        let load = after_leave.iter().filter(|o| o.as_str() == *heir).count();
        println!(
            "After {leaving} left, {heir} alone inherited its keys: it now holds {load} keys, \
             {:.2}x a fair share of {} nodes (virtual nodes spread that load; see virtual_nodes).",
            load as f64 * ring.len() as f64 / KEYS as f64,
            ring.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn routes<'a>(ring: &'a HashRing, keys: &[String]) -> Vec<Option<&'a str>> {
        keys.iter().map(|k| ring.route(k)).collect()
    }

    const NODES: [&str; 4] = ["cache-a", "cache-b", "cache-c", "cache-d"];

    #[test]
    fn an_empty_ring_routes_nowhere() {
        let ring = HashRing::new();
        assert_eq!(ring.route("user:1"), None, "no nodes, no owner");
        assert!(ring.ownership().is_empty(), "no nodes own nothing");
    }

    #[test]
    fn a_single_node_owns_every_key() {
        let ring = ring(&["solo"]);
        for key in keys(200) {
            assert_eq!(ring.route(&key), Some("solo"), "{key}: only one node");
        }
    }

    #[test]
    fn add_node_keeps_the_points_sorted_by_position() {
        let ring = ring(&NODES);
        assert_eq!(ring.len(), 4);
        let positions: Vec<u64> = ring.points().iter().map(|p| p.position).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "points must be sorted by position for binary search: {positions:?}"
        );
        for point in ring.points() {
            assert_eq!(
                point.position,
                stable_hash(&point.node),
                "a node sits at stable_hash(its name)"
            );
        }
    }

    #[test]
    fn route_picks_the_first_node_clockwise_from_the_key() {
        let ring = ring(&NODES);
        let expected = [
            ("user:0", "cache-b"),
            ("user:1", "cache-c"),
            ("user:2", "cache-b"),
            ("user:3", "cache-d"),
            ("user:4", "cache-a"),
            ("user:5", "cache-b"),
            ("user:6", "cache-d"),
            ("user:7", "cache-c"),
        ];
        for (key, owner) in expected {
            assert_eq!(
                ring.route(key),
                Some(owner),
                "{key} sits at {:#018x}; nodes (position, name) in ring order: {:?}",
                stable_hash(key),
                ring.points()
                    .iter()
                    .map(|p| (format!("{:#018x}", p.position), p.node.as_str()))
                    .collect::<Vec<_>>()
            );
        }
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
        let last = ring.points().last().unwrap().position;
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
        let keys = keys(1_000);
        let before_points = ring.points().to_vec();
        let before = routes(&ring, &keys)
            .into_iter()
            .map(|r| r.map(str::to_string))
            .collect::<Vec<_>>();
        assert!(
            !ring.add_node("cache-b"),
            "cache-b is already on the ring: add_node returns false"
        );
        assert_eq!(ring.len(), 4, "no second point for cache-b");
        assert_eq!(ring.points(), before_points.as_slice(), "points unchanged");
        let after = routes(&ring, &keys)
            .into_iter()
            .map(|r| r.map(str::to_string))
            .collect::<Vec<_>>();
        assert_eq!(before, after, "a repeated add moves no key");
    }

    #[test]
    fn removing_an_unknown_node_returns_false_and_changes_nothing() {
        let mut ring = ring(&NODES);
        assert!(!ring.remove_node("cache-z"), "cache-z was never added");
        assert_eq!(ring.len(), 4);
        assert!(ring.remove_node("cache-c"), "cache-c is on the ring");
        assert!(
            !ring.remove_node("cache-c"),
            "cache-c is gone: removing it again returns false"
        );
        assert_eq!(ring.len(), 3);
    }

    #[test]
    fn removing_a_node_moves_only_its_keys_all_to_its_clockwise_successor() {
        let keys = keys(5_000);
        let full = ring(&NODES);
        let mut ring = full.clone();
        assert!(ring.remove_node("cache-c"));
        let order = full.nodes();
        let i = order.iter().position(|n| *n == "cache-c").unwrap();
        let successor = order[(i + 1) % order.len()];
        let mut moved = 0;
        for key in &keys {
            let (before, after) = (full.route(key).unwrap(), ring.route(key).unwrap());
            assert_ne!(after, "cache-c", "{key}: cache-c was removed");
            if before == "cache-c" {
                moved += 1;
                assert_eq!(
                    after, successor,
                    "{key} belonged to cache-c; its arc now belongs to the next node clockwise"
                );
            } else {
                assert_eq!(
                    before, after,
                    "{key} belonged to {before}, which is still there: it must not move"
                );
            }
        }
        assert!(moved > 0, "test setup: cache-c owned some keys");
    }

    #[test]
    fn adding_a_node_moves_keys_only_onto_the_new_node() {
        let keys = keys(5_000);
        let before = ring(&NODES);
        let mut after = before.clone();
        assert!(after.add_node("cache-e"));
        let mut moved = 0;
        for key in &keys {
            let (old, new) = (before.route(key).unwrap(), after.route(key).unwrap());
            if old != new {
                moved += 1;
                assert_eq!(
                    new, "cache-e",
                    "{key} moved from {old} to {new}; a join may only move keys onto the joiner"
                );
            }
        }
        assert!(moved > 0, "test setup: cache-e took some keys");
    }

    #[test]
    fn placement_does_not_depend_on_the_order_nodes_were_added() {
        let keys = keys(2_000);
        let forward = ring(&NODES);
        let mut reversed_nodes = NODES;
        reversed_nodes.reverse();
        let reversed = ring(&reversed_nodes);
        assert_eq!(
            forward.points(),
            reversed.points(),
            "two clients that learned the nodes in different orders must build the same ring"
        );
        assert_eq!(routes(&forward, &keys), routes(&reversed, &keys));
    }

    #[test]
    fn a_node_that_leaves_and_comes_back_gets_exactly_its_keys_back() {
        let keys = keys(2_000);
        let original = ring(&NODES);
        let mut ring = original.clone();
        ring.remove_node("cache-a");
        ring.add_node("cache-a");
        assert_eq!(
            routes(&original, &keys),
            routes(&ring, &keys),
            "placement depends only on the set of nodes"
        );
    }

    #[test]
    fn a_single_node_owns_the_whole_circle() {
        let ring = ring(&["solo"]);
        assert_eq!(
            ring.ownership(),
            vec![("solo", 1.0)],
            "alone on the ring, its arc goes all the way round (the wrapping distance from a \
             point to itself is 0, not the full circle)"
        );
    }

    #[test]
    fn ownership_sums_to_one_and_matches_the_keys_each_node_receives() {
        let ring = ring(&NODES);
        let shares = ring.ownership();
        assert_eq!(
            shares.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            ring.nodes(),
            "one share per node, in ring order"
        );
        let total: f64 = shares.iter().map(|(_, s)| s).sum();
        assert!(
            (total - 1.0).abs() < 1e-9,
            "the arcs cover the circle once: {total}"
        );
        let keys = keys(50_000);
        for (node, share) in shares {
            let got = keys.iter().filter(|k| ring.route(k) == Some(node)).count();
            let fraction = got as f64 / keys.len() as f64;
            assert!(
                (fraction - share).abs() < 0.015,
                "{node} owns {:.1}% of the circle, so it should receive about that share of \
                 uniformly hashed keys, but received {:.1}%; its arc runs from the previous \
                 point (counter-clockwise) up to its own",
                share * 100.0,
                fraction * 100.0
            );
        }
    }
}
