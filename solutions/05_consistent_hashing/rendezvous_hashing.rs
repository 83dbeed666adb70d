// Rendezvous hashing (highest random weight) — every key holds an election
//
// No ring at all: for each key, score every node with a hash of (key, node) and send the key to
// the node with the highest score. A node leaving only matters to the keys it was winning (each
// of them falls to its runner-up, which is a different node for different keys, so the load
// spreads evenly over all survivors); a node joining only wins the keys where it now scores
// highest. The spread is even without virtual nodes, there is no state beyond the node list,
// and the ranking gives a replica set for free: the top N nodes are a key's N replicas (N as in
// Dynamo). The price is one hash per node per lookup, fine for tens of nodes. Used by Twitter's
// EventBus, Apache Ignite's affinity function and GitHub's load balancer, among others.
//
// Build it: `score(key, node)` is the `stable_hash` of the key's bytes, one 0 byte (so "ab"+"c"
// and "a"+"bc" differ) and the node's bytes: every client must compute exactly the same scores.
// `weighted_score(raw, weight)` turns a raw score into -weight / ln(u), with u the raw score
// mapped into (0, 1) by the given `unit_interval`: a node with twice the weight then wins twice
// the keys. `route` picks the highest weighted score; on a tie (identical scores) the node whose
// name sorts first wins, so every client agrees whatever order it learned the nodes in.
// `route_replicas` returns the top-n nodes, highest first.
//
// Lab: NODES nodes and KEYS keys: the load is even with no virtual nodes; LEAVING leaves and
// its keys spread over every survivor; HEAVY_WEIGHT gives node-0 more weight and its share grows
// in proportion. The last table shows the cost: lookup time grows linearly with the node count.

use sdlings_kit::hashing::rendezvous::{Knobs, LabCluster, run};
use sdlings_kit::hashing::{stable_hash, unit_interval};

// ---- Your part -------------------------------------------------------------------------------

/// The raw score of `node` for `key`: `stable_hash` of the key's bytes, then a single 0 byte,
/// then the node's bytes.
pub fn score(key: &str, node: &str) -> u64 {
    // One hash over the whole pair: every bit of the key and of the node reaches every bit of
    // the score. Hashing both separately and adding them would rank the nodes in the same
    // rotated order for every key, which is a ring with one point per node.
    let mut bytes = Vec::with_capacity(key.len() + 1 + node.len());
    bytes.extend_from_slice(key.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(node.as_bytes());
    stable_hash(bytes)
}

/// The weighted score: `-weight / ln(u)` with `u = unit_interval(raw)`. Higher raw scores give
/// higher weighted scores, and doubling the weight doubles it.
pub fn weighted_score(raw: u64, weight: f64) -> f64 {
    // ln(u) < 0 for u in (0, 1), so the result is positive and grows with u. Why it is fair:
    // -ln(u) / w is exponentially distributed with rate w, and the smallest of independent
    // exponentials is the one with rate w_i with probability w_i / Σw. Inverting it turns
    // "smallest" into "highest".
    -weight / unit_interval(raw).ln()
}

/// How a (key, node) pair is scored; tests swap it to force ties.
pub type Scorer = fn(key: &str, node: &str) -> u64;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    /// Relative capacity: a node of weight 2 should get twice the keys of a node of weight 1.
    pub weight: f64,
}

#[derive(Debug, Clone)]
pub struct Rendezvous {
    nodes: Vec<Node>,
    scorer: Scorer,
}

impl Rendezvous {
    /// The node with the highest `weighted_score(scorer(key, node), weight)`; on equal scores the
    /// node whose name sorts first. `None` when there are no nodes.
    pub fn route(&self, key: &str) -> Option<&str> {
        let mut best: Option<(f64, &str)> = None;
        for node in &self.nodes {
            let score = weighted_score((self.scorer)(key, &node.name), node.weight);
            let wins = match best {
                None => true,
                // Comparing names on a tie makes the answer independent of the Vec's order.
                Some((top, name)) => score > top || (score == top && node.name.as_str() < name),
            };
            if wins {
                best = Some((score, &node.name));
            }
        }
        best.map(|(_, name)| name)
    }

    /// The `n` nodes with the highest weighted scores for `key`, highest first (ties by name, as
    /// in `route`), or every node if there are fewer than `n`. The first one is `route(key)`.
    pub fn route_replicas(&self, key: &str, n: usize) -> Vec<&str> {
        let mut ranked: Vec<(f64, &str)> = self
            .nodes
            .iter()
            .map(|node| {
                let raw = (self.scorer)(key, &node.name);
                (weighted_score(raw, node.weight), node.name.as_str())
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        ranked.into_iter().take(n).map(|(_, name)| name).collect()
    }
}

// ---- Given: the cluster's membership ---------------------------------------------------------

impl Default for Rendezvous {
    fn default() -> Self {
        Self::new()
    }
}

impl Rendezvous {
    /// An empty cluster scored with `score`.
    pub fn new() -> Self {
        Self::with_scorer(score)
    }

    /// An empty cluster with another scoring function.
    pub fn with_scorer(scorer: Scorer) -> Self {
        Rendezvous {
            nodes: Vec::new(),
            scorer,
        }
    }

    /// Adds a node of weight 1. `false` if a node of that name is already there.
    pub fn add_node(&mut self, name: &str) -> bool {
        self.add_weighted_node(name, 1.0)
    }

    /// Adds a node with the given weight (finite and > 0). `false` if already there.
    pub fn add_weighted_node(&mut self, name: &str, weight: f64) -> bool {
        assert!(
            weight.is_finite() && weight > 0.0,
            "weight must be positive and finite"
        );
        if self.nodes.iter().any(|n| n.name == name) {
            return false;
        }
        self.nodes.push(Node {
            name: name.to_string(),
            weight,
        });
        true
    }

    /// Removes a node. `false` if it was not there.
    pub fn remove_node(&mut self, name: &str) -> bool {
        let before = self.nodes.len();
        self.nodes.retain(|n| n.name != name);
        self.nodes.len() != before
    }

    /// The nodes, in the order they were added.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Nodes in the cluster: "node-0".."node-{NODES-1}".
const NODES: usize = 8;
/// Distinct keys routed.
const KEYS: usize = 80_000;
/// The node that leaves in the second table.
const LEAVING: usize = 3;
/// node-0's weight in the third table (everyone else has 1).
const HEAVY_WEIGHT: f64 = 3.0;
/// Cluster sizes for the lookup-cost table.
const COST_SIZES: [usize; 4] = [3, 10, 100, 1_000];

fn main() {
    run::<Rendezvous>(Knobs {
        nodes: NODES,
        keys: KEYS,
        leaving: LEAVING,
        heavy_weight: HEAVY_WEIGHT,
        cost_sizes: COST_SIZES.to_vec(),
    });
}

impl LabCluster for Rendezvous {
    fn add(&mut self, node: &str) {
        self.add_node(node);
    }
    fn add_weighted(&mut self, node: &str, weight: f64) {
        self.add_weighted_node(node, weight);
    }
    fn remove(&mut self, node: &str) {
        self.remove_node(node);
    }
    fn owner(&self, key: &str) -> Option<&str> {
        self.route(key)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use rand::RngExt;
    use sdlings_kit::hashing::stable_hash;
    use sdlings_kit::property::for_seeds;

    fn cluster(nodes: &[&str]) -> Rendezvous {
        let mut cluster = Rendezvous::new();
        for node in nodes {
            assert!(cluster.add_node(node));
        }
        cluster
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("user:{i}")).collect()
    }

    fn ten() -> Vec<String> {
        (0..10).map(|i| format!("node-{i}")).collect()
    }

    fn cluster_of(names: &[String]) -> Rendezvous {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        cluster(&names)
    }

    #[test]
    fn score_hashes_the_key_a_zero_byte_and_the_node_in_one_go() {
        for (key, node, expected) in [
            ("user:1", "node-a", 0x236a_9c02_3934_85ab_u64),
            ("user:1", "node-b", 0x4314_2612_afdc_e65d),
            ("cart:9", "node-a", 0xa054_caab_2bf2_d2e5),
        ] {
            assert_eq!(
                score(key, node),
                expected,
                "score({key:?}, {node:?}) must be stable_hash of the bytes of {key:?}, a 0 byte, \
                 then the bytes of {node:?}: every client has to compute the same scores"
            );
        }
        assert_ne!(
            score("ab", "c"),
            score("a", "bc"),
            "the 0 byte keeps (\"ab\", \"c\") and (\"a\", \"bc\") apart"
        );
    }

    #[test]
    fn an_empty_cluster_routes_nowhere() {
        let cluster = Rendezvous::new();
        assert_eq!(cluster.route("user:1"), None);
        assert!(cluster.route_replicas("user:1", 3).is_empty());
    }

    #[test]
    fn a_single_node_wins_every_key() {
        let cluster = cluster(&["solo"]);
        for key in keys(100) {
            assert_eq!(cluster.route(&key), Some("solo"));
        }
    }

    #[test]
    fn the_winner_always_has_the_highest_score() {
        let names = ten();
        let cluster = cluster_of(&names);
        for key in keys(500) {
            let winner = cluster.route(&key).unwrap();
            let best = names.iter().max_by_key(|n| score(&key, n)).unwrap();
            assert_eq!(
                winner,
                best,
                "{key}: {winner} scores {:#018x} but {best} scores {:#018x}; the highest wins",
                score(&key, winner),
                score(&key, best)
            );
        }
    }

    #[test]
    fn ties_go_to_the_name_that_sorts_first_whatever_the_insertion_order() {
        fn constant(_key: &str, _node: &str) -> u64 {
            42
        }
        let mut forward = Rendezvous::with_scorer(constant);
        let mut backward = Rendezvous::with_scorer(constant);
        for name in ["b", "a", "c"] {
            forward.add_node(name);
        }
        for name in ["c", "a", "b"] {
            backward.add_node(name);
        }
        for cluster in [&forward, &backward] {
            assert_eq!(
                cluster.route("k"),
                Some("a"),
                "every node scores the same: the tie goes to the name that sorts first, so \
                 clients that learned the nodes in different orders still agree"
            );
            assert_eq!(
                cluster.route_replicas("k", 3),
                vec!["a", "b", "c"],
                "equal scores are ranked by name"
            );
        }
    }

    #[test]
    fn adding_a_node_moves_keys_only_onto_it() {
        let before = cluster_of(&ten());
        let mut after = before.clone();
        after.add_node("node-new");
        let mut moved = 0;
        for key in keys(5_000) {
            let (old, new) = (before.route(&key).unwrap(), after.route(&key).unwrap());
            if old != new {
                moved += 1;
                assert_eq!(new, "node-new", "{key} moved from {old} to {new}");
            }
        }
        assert!(
            (350..650).contains(&moved),
            "the 11th node should win about 1/11 of 5000 keys, won {moved}"
        );
    }

    #[test]
    fn load_is_even_without_virtual_nodes() {
        let names = ten();
        let cluster = cluster_of(&names);
        let mut counts = BTreeMap::new();
        for key in keys(20_000) {
            *counts
                .entry(cluster.route(&key).unwrap().to_string())
                .or_insert(0) += 1;
        }
        for name in &names {
            let got = counts.get(name).copied().unwrap_or(0);
            assert!(
                (1_850..=2_150).contains(&got),
                "{name} won {got} of 20000 keys over 10 nodes, expected 2000 +- 7.5%. If the key \
                 and the node are hashed separately and then combined (added, xored), nodes keep \
                 the same relative ranking for many keys and the load goes lopsided: {counts:?}"
            );
        }
    }

    #[test]
    fn a_leaving_nodes_keys_spread_evenly_over_all_survivors() {
        let full = cluster_of(&ten());
        let mut smaller = full.clone();
        smaller.remove_node("node-7");
        let mut heirs: BTreeMap<String, usize> = BTreeMap::new();
        for key in keys(15_000) {
            if full.route(&key) == Some("node-7") {
                *heirs
                    .entry(smaller.route(&key).unwrap().to_string())
                    .or_default() += 1;
            }
        }
        let total: usize = heirs.values().sum();
        assert_eq!(
            heirs.len(),
            9,
            "every survivor inherits some keys: {heirs:?}"
        );
        for (heir, &count) in &heirs {
            let share = count as f64 / total as f64;
            assert!(
                (0.075..0.15).contains(&share),
                "{heir} got {:.1}% of node-7's {total} keys; each key falls to its own runner-up, \
                 so each of the 9 survivors should get about 11%: {heirs:?}",
                share * 100.0
            );
        }
    }

    #[test]
    fn a_replica_set_only_changes_when_one_of_its_members_leaves() {
        let names = ten();
        let full = cluster_of(&names);
        let key = "user:42";
        let top = full.route_replicas(key, 3);
        let outsider = names.iter().find(|n| !top.contains(&n.as_str())).unwrap();
        let mut without_outsider = full.clone();
        without_outsider.remove_node(outsider);
        assert_eq!(
            without_outsider.route_replicas(key, 3),
            top,
            "{outsider} was not among {key}'s replicas {top:?}: removing it changes nothing"
        );
        let mut without_first = full.clone();
        without_first.remove_node(top[0]);
        let next = without_first.route_replicas(key, 3);
        assert_eq!(
            &next[..2],
            &top[1..],
            "with {} gone, the other two replicas move up and keep their order",
            top[0]
        );
        assert_eq!(
            next[2],
            full.route_replicas(key, 4)[3],
            "the fourth-ranked node becomes the new third replica"
        );
    }

    #[test]
    fn weighted_score_grows_with_the_raw_score_and_with_the_weight() {
        let raws = [0, 1 << 20, 1 << 62, 1 << 63, u64::MAX - (1 << 20), u64::MAX];
        for pair in raws.windows(2) {
            let (low, high) = (weighted_score(pair[0], 1.0), weighted_score(pair[1], 1.0));
            assert!(
                low < high,
                "a higher raw score must give a higher weighted score: {:#x} -> {low}, {:#x} -> \
                 {high} (with u in (0, 1), ln(u) < 0, so -w / ln(u) is positive and increasing)",
                pair[0],
                pair[1]
            );
        }
        for raw in raws {
            let one = weighted_score(raw, 1.0);
            assert!(one.is_finite() && one > 0.0, "{raw:#x} gives {one}");
            assert!(
                (weighted_score(raw, 2.5) - 2.5 * one).abs() <= 1e-9 * one,
                "the score is proportional to the weight"
            );
        }
        let half = weighted_score(1 << 63, 1.0);
        assert!(
            (half - 1.0 / std::f64::consts::LN_2).abs() < 1e-9,
            "u = 0.5 gives -1 / ln(0.5) = 1.4427, got {half}"
        );
    }

    #[test]
    fn a_node_with_weight_three_wins_about_three_times_the_keys() {
        let mut cluster = cluster(&["node-0", "node-1", "node-2", "node-3"]);
        cluster.add_weighted_node("big", 3.0);
        let keys = keys(20_000);
        let big = keys
            .iter()
            .filter(|k| cluster.route(k) == Some("big"))
            .count();
        let share = big as f64 / keys.len() as f64;
        assert!(
            (0.40..0.46).contains(&share),
            "big has weight 3 of a total 7, so it should win about 42.9% of the keys, won \
             {:.1}%",
            share * 100.0
        );
    }

    const WEIGHTS: [f64; 6] = [0.5, 1.0, 1.0, 1.7, 2.0, 3.0];

    /// The obviously correct model: every node's -w / ln(u) for the key, highest first, ties by
    /// name.
    fn reference_ranking(nodes: &[(String, f64)], key: &str) -> Vec<String> {
        let mut scored: Vec<(f64, &str)> = nodes
            .iter()
            .map(|(name, weight)| {
                let bytes = [key.as_bytes(), &[0], name.as_bytes()].concat();
                let u = unit_interval(stable_hash(bytes));
                (-weight / u.ln(), name.as_str())
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        scored
            .into_iter()
            .map(|(_, name)| name.to_string())
            .collect()
    }

    fn random_weighted_cluster(rng: &mut impl rand::Rng) -> (Rendezvous, Vec<(String, f64)>) {
        let count = rng.random_range(1..8);
        let mut cluster = Rendezvous::new();
        let mut nodes = Vec::new();
        for i in 0..count {
            let name = format!("node-{i}-{}", rng.random::<u16>());
            let weight = WEIGHTS[rng.random_range(0..WEIGHTS.len())];
            assert!(cluster.add_weighted_node(&name, weight));
            nodes.push((name, weight));
        }
        (cluster, nodes)
    }

    #[test]
    fn route_and_replicas_agree_with_a_reference_model_over_random_weighted_clusters() {
        for_seeds(60, |rng| {
            let (cluster, nodes) = random_weighted_cluster(rng);
            for _ in 0..40 {
                let key = format!("key-{}", rng.random::<u32>());
                let ranking = reference_ranking(&nodes, &key);
                assert_eq!(
                    cluster.route(&key),
                    Some(ranking[0].as_str()),
                    "{key} on nodes and weights {nodes:?}: the highest -weight / ln(u) wins"
                );
                let n = rng.random_range(0..nodes.len() + 2);
                let expected: Vec<&str> = ranking.iter().take(n).map(String::as_str).collect();
                assert_eq!(
                    cluster.route_replicas(&key, n),
                    expected,
                    "{key}: the top {n} nodes by WEIGHTED score, highest first, on {nodes:?} \
                     (replicas are ranked exactly like route ranks the owner)"
                );
            }
        });
    }

    #[test]
    fn removing_a_weighted_node_moves_only_its_keys_to_their_runner_up() {
        let keys = keys(300);
        for_seeds(20, |rng| {
            let (full, nodes) = random_weighted_cluster(rng);
            if nodes.len() < 2 {
                return;
            }
            let gone = nodes[rng.random_range(0..nodes.len())].0.clone();
            let mut smaller = full.clone();
            assert!(smaller.remove_node(&gone));
            for key in &keys {
                let (before, after) = (full.route(key).unwrap(), smaller.route(key).unwrap());
                if before == gone {
                    assert_eq!(
                        after,
                        full.route_replicas(key, 2)[1],
                        "{key} was on {gone}, which left: it falls to its runner-up ({nodes:?})"
                    );
                } else {
                    assert_eq!(
                        before, after,
                        "{key} was on {before}, which stayed ({nodes:?})"
                    );
                }
            }
        });
    }

    #[test]
    fn each_node_wins_a_share_of_the_keys_proportional_to_its_weight() {
        let keys = keys(4_000);
        for_seeds(6, |rng| {
            let (cluster, nodes) = random_weighted_cluster(rng);
            let total: f64 = nodes.iter().map(|(_, w)| w).sum();
            let mut wins: BTreeMap<&str, usize> = BTreeMap::new();
            for key in &keys {
                *wins.entry(cluster.route(key).unwrap()).or_default() += 1;
            }
            for (name, weight) in &nodes {
                let share = wins.get(name.as_str()).copied().unwrap_or(0) as f64 / 4_000.0;
                let expected = weight / total;
                assert!(
                    (share - expected).abs() < 0.035,
                    "{name} has weight {weight} of {total}, so it should win about {:.1}% of \
                     the keys, won {:.1}% (weights: {nodes:?})",
                    expected * 100.0,
                    share * 100.0
                );
            }
        });
    }
}
