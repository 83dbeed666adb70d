// Bounded loads — consistent hashing that never lets one node carry more than c × its share
//
// A ring balances *keys*, not *load*. When one key is hot (a viral video, a celebrity's profile,
// the config blob every service polls), every request for it lands on the same node, and the
// ring happily melts that node while its neighbours idle. Consistent hashing with bounded loads
// (Mirrokni, Thorup & Zadimoghaddam, Google, 2017) caps every node: with balance factor c >= 1,
// no node may hold more than ⌈c × average load⌉ assignments in flight. A request goes to its
// usual home (the first point clockwise, as in `hash_ring`) unless that node is full; then it
// walks on clockwise to the first node with room. Vimeo did this in front of its video caches,
// and it became HAProxy's `hash-balance-factor` (c in percent: 125 means 1.25); Envoy's ring
// hash and Maglev balancers have a `hash_balance_factor` too. Overflow always walks the same
// clockwise path, so a hot key's extra requests warm the caches of the same few neighbours, in
// the same order, instead of landing anywhere.
//
// Build `BoundedRing`: `new` rejects a balance factor that is not a finite number >= 1 (with
// c < 1 the nodes' capacities add up to less than the load: requests would have nowhere to go);
// `capacity` is the bound for the *next* assignment, counting it: ⌈c × (total_load + 1) / nodes⌉
// (so an idle ring has capacity 1, not 0, and nodes × capacity > total_load: some node always
// has room, and `assign` never fails on a non-empty ring); `assign` places one request and
// records it; `release` frees one assignment on a node when its request finishes.
//
// Lab: a Zipf-skewed stream of requests (SKEW), IN_FLIGHT of them at a time, over NODES nodes,
// with a plain ring and with bounded loads for several balance factors. Expect the plain ring's
// busiest node to carry ~2x the mean, and the bound to hold it at c; the price is the column
// "requests off home": the smaller c, the more requests leave their home node (a cache miss
// there). Turn BALANCE_FACTOR (the bar chart) towards 1.0 and SKEW up to 1.5 to see both grow.

use std::collections::BTreeMap;
use std::fmt;

use sdlings_kit::hashing::bounded::{Knobs, LabBoundedRing, run};
use sdlings_kit::hashing::{Point, stable_hash};

// ---- Your part -------------------------------------------------------------------------------

/// `BoundedRing::new` was given a balance factor that is not a number >= 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InvalidBalanceFactor(pub f64);

#[derive(Debug, Clone)]
pub struct BoundedRing {
    /// c: no node may hold more than ⌈c × average load⌉ assignments.
    balance_factor: f64,
    /// Every virtual node of every node, sorted by (position, node).
    points: Vec<Point>,
    /// Assignments in flight per physical node (every node has an entry, 0 when idle).
    loads: BTreeMap<String, usize>,
    /// Sum of `loads`.
    total_load: usize,
}

impl BoundedRing {
    /// An empty ring whose nodes may each hold at most ⌈balance_factor × average load⌉
    /// assignments. The factor must be a finite number >= 1: anything else (0.9, NaN,
    /// infinity) is `Err(InvalidBalanceFactor(balance_factor))`.
    pub fn new(balance_factor: f64) -> Result<Self, InvalidBalanceFactor> {
        // Accept when `c >= 1.0` holds rather than reject when `c < 1.0`: NaN compares false
        // with everything, so only the positive form keeps it out. Infinity would silently turn
        // the bound off.
        let valid = balance_factor.is_finite() && balance_factor >= 1.0;
        if !valid {
            return Err(InvalidBalanceFactor(balance_factor));
        }
        Ok(BoundedRing {
            balance_factor,
            points: Vec::new(),
            loads: BTreeMap::new(),
            total_load: 0,
        })
    }

    /// The most assignments a node may hold once the next assignment is placed:
    /// ⌈c × (total_load + 1) / number of nodes⌉, where the `+ 1` is that next assignment and
    /// nodes are physical nodes (not points). Computed in f64 as `(c × m / n).ceil()`, in that
    /// order. 0 on an empty ring. (It is f64 arithmetic: 1.1 has no exact binary form, so
    /// 1.1 × 400 / 8 comes out a hair above 55 and rounds up to 56. HAProxy takes the factor as
    /// an integer percentage, `hash-balance-factor 110`, and stays exact.)
    pub fn capacity(&self) -> usize {
        let nodes = self.loads.len();
        if nodes == 0 {
            return 0;
        }
        let with_next = (self.total_load + 1) as f64;
        (self.balance_factor * with_next / nodes as f64).ceil() as usize
    }

    /// Places one request for `key` and records it: the node of the first point, walking
    /// clockwise from the key's home point (included) and wrapping past the end, whose node's
    /// load is below `capacity()`. Its load and the total grow by one. `None` on an empty ring.
    pub fn assign(&mut self, key: &str) -> Option<String> {
        let start = self.home_index(key)?;
        let capacity = self.capacity();
        let len = self.points.len();
        // Walk the points, not the nodes: a full node's other vnodes are simply skipped, and
        // going once round the whole ring visits every node. Since nodes × capacity >
        // total_load, some node is below capacity and the walk always finds it.
        let node = (0..len)
            .map(|step| &self.points[(start + step) % len].node)
            .find(|node| self.loads[node.as_str()] < capacity)
            .expect("nodes × capacity > total load, so some node has room")
            .clone();
        *self
            .loads
            .get_mut(&node)
            .expect("every point's node has a load") += 1;
        self.total_load += 1;
        Some(node)
    }

    /// One assignment on `node` finished: its load and the total shrink by one. Returns
    /// `false` and changes nothing if `node` holds no assignment (idle, or not on the ring).
    pub fn release(&mut self, node: &str) -> bool {
        match self.loads.get_mut(node) {
            Some(load) if *load > 0 => {
                *load -= 1;
                self.total_load -= 1;
                true
            }
            _ => false,
        }
    }
}

// ---- Given -----------------------------------------------------------------------------------

/// Points each node puts on the ring, at `stable_hash("{node}#{index}")` as in `virtual_nodes`.
pub const VNODES_PER_NODE: usize = 8;

impl fmt::Display for InvalidBalanceFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "balance factor {} is invalid: it must be a finite number >= 1",
            self.0
        )
    }
}

impl std::error::Error for InvalidBalanceFactor {}

impl BoundedRing {
    pub fn balance_factor(&self) -> f64 {
        self.balance_factor
    }

    /// Every virtual node, in ring order.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// The physical nodes, by name.
    pub fn nodes(&self) -> Vec<&str> {
        self.loads.keys().map(String::as_str).collect()
    }

    /// Assignments in flight on `node` (0 for a node that is not on the ring).
    pub fn load(&self, node: &str) -> usize {
        self.loads.get(node).copied().unwrap_or(0)
    }

    /// Assignments in flight on all nodes together.
    pub fn total_load(&self) -> usize {
        self.total_load
    }

    /// Puts `node` on the ring with `VNODES_PER_NODE` points and no load. Returns `false` and
    /// changes nothing if it is already there.
    pub fn add_node(&mut self, node: &str) -> bool {
        if self.loads.contains_key(node) {
            return false;
        }
        self.loads.insert(node.to_string(), 0);
        self.points.extend(
            (0..VNODES_PER_NODE)
                .map(|index| Point::new(stable_hash(format!("{node}#{index}")), node)),
        );
        self.points
            .sort_by(|a, b| (a.position(), &a.node).cmp(&(b.position(), &b.node)));
        true
    }

    /// Index in `points` of the key's home point: the first point whose position is >=
    /// `stable_hash(key)`, wrapping around to 0 past the last point. `None` on an empty ring.
    pub fn home_index(&self, key: &str) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let hash = stable_hash(key);
        let i = self.points.partition_point(|p| p.position() < hash);
        Some(if i == self.points.len() { 0 } else { i })
    }

    /// The node a plain ring would send `key` to, whatever the loads.
    pub fn home(&self, key: &str) -> Option<&str> {
        self.home_index(key).map(|i| self.points[i].node.as_str())
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Nodes on the ring: "cache-0".."cache-{NODES-1}".
const NODES: usize = 8;
/// Distinct keys in the workload; key 0 is the hottest.
const KEYS: usize = 10_000;
/// Zipf skew of the workload (0: uniform, 1: typical web traffic, 1.5: a few very hot keys).
const SKEW: f64 = 1.1;
/// Requests served at once: each new request releases the oldest one once this many are open.
const IN_FLIGHT: usize = 400;
/// Requests in each run.
const REQUESTS: usize = 40_000;
/// The balance factor drawn in the bar chart.
const BALANCE_FACTOR: f64 = 1.25;
/// The balance factors compared in the table.
const COMPARED: [f64; 3] = [1.1, 1.25, 2.0];

fn main() {
    run::<BoundedRing>(Knobs {
        nodes: NODES,
        vnodes_per_node: VNODES_PER_NODE,
        keys: KEYS,
        skew: SKEW,
        in_flight: IN_FLIGHT,
        requests: REQUESTS,
        balance_factor: BALANCE_FACTOR,
        compared: COMPARED.to_vec(),
    });
}

impl LabBoundedRing for BoundedRing {
    fn with_factor(balance_factor: f64) -> Self {
        BoundedRing::new(balance_factor).expect("a valid balance factor")
    }
    fn add(&mut self, node: &str) {
        self.add_node(node);
    }
    fn home(&self, key: &str) -> Option<&str> {
        BoundedRing::home(self, key)
    }
    fn assign(&mut self, key: &str) -> Option<String> {
        BoundedRing::assign(self, key)
    }
    fn release(&mut self, node: &str) -> bool {
        BoundedRing::release(self, node)
    }
    fn load(&self, node: &str) -> usize {
        BoundedRing::load(self, node)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use rand::RngExt;
    use sdlings_kit::property::for_seeds;

    const NODES: [&str; 4] = ["cache-a", "cache-b", "cache-c", "cache-d"];

    fn ring_of(balance_factor: f64, nodes: &[&str]) -> BoundedRing {
        let mut ring = BoundedRing::new(balance_factor)
            .unwrap_or_else(|e| panic!("{balance_factor} is a valid balance factor: {e}"));
        for node in nodes {
            assert!(ring.add_node(node), "{node} is new");
        }
        ring
    }

    /// The distinct nodes met walking clockwise from `key`'s home point, in order.
    fn clockwise_nodes(ring: &BoundedRing, key: &str) -> Vec<String> {
        let start = ring.home_index(key).expect("non-empty");
        let points = ring.points();
        let mut order: Vec<String> = Vec::new();
        for step in 0..points.len() {
            let node = &points[(start + step) % points.len()].node;
            if !order.contains(node) {
                order.push(node.clone());
            }
        }
        order
    }

    #[test]
    fn new_rejects_a_balance_factor_below_one_or_not_a_number() {
        for bad in [0.9, 0.0, -1.25, f64::NAN, f64::INFINITY] {
            assert!(
                BoundedRing::new(bad).is_err(),
                "balance factor {bad} must be rejected: below 1 the capacities add up to less \
                 than the load (requests would find every node full); NaN fails every \
                 comparison, so `c < 1.0` lets it through: accept only when `c >= 1.0` holds; \
                 infinity is no bound at all"
            );
        }
        for good in [1.0, 1.25, 2.0] {
            let ring = BoundedRing::new(good)
                .unwrap_or_else(|e| panic!("{good} is a valid balance factor, got {e}"));
            assert_eq!(ring.balance_factor(), good);
            assert_eq!(ring.total_load(), 0, "a new ring carries no load");
            assert!(ring.nodes().is_empty(), "a new ring has no nodes");
        }
    }

    #[test]
    fn an_empty_ring_has_no_capacity_and_assigns_nowhere() {
        let mut ring = ring_of(1.25, &[]);
        assert_eq!(ring.capacity(), 0, "no nodes, no capacity");
        assert_eq!(ring.assign("video:1"), None, "no nodes to assign to");
        assert_eq!(ring.total_load(), 0, "a failed assign records nothing");
    }

    #[test]
    fn capacity_is_the_ceiling_of_c_times_the_average_load_counting_the_next_assignment() {
        let mut ring = ring_of(1.25, &NODES);
        let expect = |ring: &BoundedRing, capacity: usize, why: &str| {
            assert_eq!(
                ring.capacity(),
                capacity,
                "c = 1.25, 4 nodes, total load {}: {why}",
                ring.total_load()
            );
        };
        expect(
            &ring,
            1,
            "⌈1.25 × (0 + 1) / 4⌉ = ⌈0.3125⌉ = 1; counting the next assignment, an idle ring \
             has room for it (⌈1.25 × 0 / 4⌉ = 0, or rounding down, would leave no room at all)",
        );
        for i in 0..3 {
            ring.assign(&format!("video:{i}")).expect("non-empty ring");
        }
        expect(
            &ring,
            2,
            "⌈1.25 × (3 + 1) / 4⌉ = ⌈1.25⌉ = 2: round up, and count the assignment being placed \
             (⌈1.25 × 3 / 4⌉ would be 1); divide by the 4 nodes, not by their 32 points",
        );
        for i in 3..7 {
            ring.assign(&format!("video:{i}")).expect("non-empty ring");
        }
        expect(
            &ring,
            3,
            "⌈1.25 × (7 + 1) / 4⌉ = ⌈2.5⌉ = 3 (rounding down would give 2)",
        );
        for i in 7..12 {
            ring.assign(&format!("video:{i}")).expect("non-empty ring");
        }
        expect(
            &ring,
            5,
            "⌈1.25 × (12 + 1) / 4⌉ = ⌈4.0625⌉ = 5 (⌈1.25 × 12 / 4⌉ = 4 forgets the next \
             assignment)",
        );
        let mut wide = ring_of(2.0, &NODES);
        for i in 0..4 {
            wide.assign(&format!("video:{i}")).expect("non-empty ring");
        }
        assert_eq!(
            wide.capacity(),
            3,
            "c = 2, 4 nodes, total load 4: ⌈2 × 5 / 4⌉ = ⌈2.5⌉ = 3"
        );
    }

    #[test]
    fn a_full_home_overflows_to_the_next_nodes_clockwise_past_the_full_nodes_vnodes() {
        // Pick a key whose first 4 points clockwise do not belong to 4 different nodes: with
        // c = 1 the 4th request must walk past repeated vnodes of full nodes to find the last
        // node with room, further than 4 points away.
        let mut ring = ring_of(1.0, &NODES);
        let key = (0..1_000)
            .map(|i| format!("video:{i}"))
            .find(|key| {
                let start = ring.home_index(key).unwrap();
                let points = ring.points();
                let near: BTreeSet<&str> = (0..4)
                    .map(|s| points[(start + s) % points.len()].node.as_str())
                    .collect();
                near.len() < 4
            })
            .expect("test setup: some key has repeated vnodes right after its home");
        let order = clockwise_nodes(&ring, &key);
        for (i, expected) in order.iter().enumerate() {
            let got = ring.assign(&key);
            assert_eq!(
                got.as_deref(),
                Some(expected.as_str()),
                "c = 1 and 4 nodes: each of the first 4 requests for {key} fills a node \
                 (capacity ⌈{} / 4⌉ = 1), so request {} must go to the next node with room \
                 walking clockwise from the key's home: {order:?}. Walk every point (not just \
                 4 of them), skip points of full nodes, and don't jump to another node",
                i + 1,
                i + 1
            );
        }
        assert_eq!(
            ring.assign(&key).as_deref(),
            Some(order[0].as_str()),
            "the 5th request has capacity ⌈5 / 4⌉ = 2: the home has room again"
        );
    }

    #[test]
    fn the_walk_wraps_around_past_the_last_point() {
        let mut ring = ring_of(1.0, &NODES);
        let points = ring.points().to_vec();
        let last = points.len() - 1;
        let key = (0..100_000)
            .map(|i| format!("video:{i}"))
            .find(|key| ring.home_index(key) == Some(last))
            .expect("test setup: some key's home is the last point");
        let home = points[last].node.clone();
        let next = points
            .iter()
            .find(|p| p.node != home)
            .map(|p| p.node.clone())
            .unwrap();
        assert_eq!(
            ring.assign(&key),
            Some(home.clone()),
            "{key} goes home first"
        );
        assert_eq!(
            ring.assign(&key),
            Some(next.clone()),
            "{key}'s home is the last point on the ring and {home} is full (capacity \
             ⌈2 / 4⌉ = 1): the walk continues from the lowest point, wrapping around, and the \
             first node with room there is {next}"
        );
    }

    #[test]
    fn releasing_a_node_with_nothing_in_flight_returns_false_and_changes_nothing() {
        let mut ring = ring_of(1.25, &NODES);
        let node = ring.assign("video:1").unwrap();
        let idle = NODES.iter().find(|n| **n != node).unwrap();
        assert!(!ring.release(idle), "{idle} holds nothing to release");
        assert!(!ring.release("cache-z"), "cache-z is not on the ring");
        assert_eq!(ring.load(idle), 0, "a load never goes below zero");
        assert_eq!(ring.total_load(), 1, "the total is untouched");
        assert!(ring.release(&node), "{node} holds video:1");
        assert!(!ring.release(&node), "released already: nothing left");
        assert_eq!(ring.total_load(), 0);
    }

    /// The bound, as `capacity` documents it: ⌈c × (in flight + 1) / nodes⌉, in that order.
    fn reference_capacity(c: f64, in_flight: usize, nodes: usize) -> usize {
        (c * (in_flight + 1) as f64 / nodes as f64).ceil() as usize
    }

    #[test]
    fn assignments_and_releases_follow_a_reference_model_for_many_factors_and_node_counts() {
        const FACTORS: [f64; 8] = [1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0, 100.0];
        for_seeds(48, |rng| {
            let c = FACTORS[rng.random_range(0..FACTORS.len())];
            let count = rng.random_range(1..8);
            let names: Vec<String> = (0..count).map(|i| format!("cache-{i}")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut ring = ring_of(c, &names);
            // The model: loads per node, and the assignments in flight.
            let mut loads: BTreeMap<String, usize> =
                names.iter().map(|n| (n.to_string(), 0)).collect();
            let mut open: Vec<String> = Vec::new();
            let hot_keys = rng.random_range(1..20);
            for step in 0..150 {
                let roll = rng.random_range(0..100);
                if roll < 2 {
                    let joiner = format!("late-{step}");
                    ring.add_node(&joiner);
                    loads.insert(joiner, 0);
                } else if roll < 35 && !open.is_empty() {
                    let done = open.swap_remove(rng.random_range(0..open.len()));
                    assert!(
                        ring.release(&done),
                        "c = {c}, step {step}: {done} holds a request, release returns true"
                    );
                    *loads.get_mut(&done).unwrap() -= 1;
                } else {
                    let key = format!("video:{}", rng.random_range(0..hot_keys));
                    let capacity = reference_capacity(c, open.len(), loads.len());
                    assert_eq!(
                        ring.capacity(),
                        capacity,
                        "c = {c}, {} nodes, {} in flight: the capacity for the next assignment \
                         is ⌈c × ({} + 1) / {}⌉ = {capacity}",
                        loads.len(),
                        open.len(),
                        open.len(),
                        loads.len()
                    );
                    let start = ring.home_index(&key).unwrap();
                    let points = ring.points();
                    let expected = (0..points.len())
                        .map(|s| points[(start + s) % points.len()].node.clone())
                        .find(|n| loads[n] < capacity)
                        .expect("some node has room");
                    let got = ring.assign(&key);
                    assert_eq!(
                        got.as_deref(),
                        Some(expected.as_str()),
                        "c = {c}, step {step}: {key}'s request goes to the first node with room \
                         (load below {capacity}) walking clockwise from its home point; loads \
                         before it: {loads:?}"
                    );
                    *loads.get_mut(&expected).unwrap() += 1;
                    open.push(expected);
                }
                for (node, &load) in &loads {
                    assert_eq!(
                        ring.load(node),
                        load,
                        "c = {c}, step {step}: {node}'s load after the same assigns and releases"
                    );
                }
                assert_eq!(
                    ring.total_load(),
                    open.len(),
                    "c = {c}, step {step}: total load"
                );
            }
        });
    }

    #[test]
    fn a_single_node_takes_every_request_whatever_the_factor() {
        for c in [1.0, 1.5, 7.0] {
            let mut ring = ring_of(c, &["solo"]);
            for i in 0..20 {
                assert_eq!(
                    ring.assign(&format!("video:{}", i % 3)).as_deref(),
                    Some("solo"),
                    "c = {c}: one node, and its capacity ⌈c × (m + 1) / 1⌉ always has room"
                );
            }
            assert_eq!(ring.load("solo"), 20);
        }
    }

    #[test]
    fn with_a_factor_of_exactly_one_every_node_fills_evenly() {
        let mut ring = ring_of(1.0, &NODES);
        for round in 1..=5 {
            for _ in 0..4 {
                ring.assign("video:hot").expect("non-empty ring");
            }
            for node in NODES {
                assert_eq!(
                    ring.load(node),
                    round,
                    "c = 1: after {} requests for one hot key on 4 nodes the bound ⌈m / 4⌉ \
                     forces every node to hold exactly {round}",
                    round * 4
                );
            }
        }
    }
}
