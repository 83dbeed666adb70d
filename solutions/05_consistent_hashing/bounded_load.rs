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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use sdlings_kit::lab::{Table, bar_chart, percent};
use sdlings_kit::workload::ZipfKeys;

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

// ---- Given: a ring with virtual nodes --------------------------------------------------------

/// Points each node puts on the ring, at `stable_hash("{node}#{index}")` as in `virtual_nodes`.
pub const VNODES_PER_NODE: usize = 8;

/// One virtual node's place on the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub position: u64,
    /// The physical node this virtual node belongs to.
    pub node: String,
}

/// `BoundedRing::new` was given a balance factor that is not a number >= 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InvalidBalanceFactor(pub f64);

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
        self.points.extend((0..VNODES_PER_NODE).map(|index| Point {
            position: stable_hash(format!("{node}#{index}")),
            node: node.to_string(),
        }));
        self.points
            .sort_by(|a, b| (a.position, &a.node).cmp(&(b.position, &b.node)));
        true
    }

    /// Index in `points` of the key's home point: the first point whose position is >=
    /// `stable_hash(key)`, wrapping around to 0 past the last point. `None` on an empty ring.
    pub fn home_index(&self, key: &str) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let hash = stable_hash(key);
        let i = self.points.partition_point(|p| p.position < hash);
        Some(if i == self.points.len() { 0 } else { i })
    }

    /// The node a plain ring would send `key` to, whatever the loads.
    pub fn home(&self, key: &str) -> Option<&str> {
        self.home_index(key).map(|i| self.points[i].node.as_str())
    }

    // ---- Your part ---------------------------------------------------------------------------

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

/// What one run of the workload saw.
struct Run {
    /// The most requests any node held at once.
    peak: usize,
    /// The largest (busiest node / mean) seen once IN_FLIGHT requests are open.
    peak_ratio: f64,
    /// (busiest node / mean), averaged over the same steps.
    mean_ratio: f64,
    /// Requests that did not go to their key's home node.
    off_home: usize,
    /// Distinct keys requested, and those served off their home at least once.
    keys_seen: usize,
    keys_moved: usize,
    /// How many different nodes served the hottest key.
    hot_key_nodes: usize,
    /// Requests in flight per node at the end of the run, by node name.
    final_loads: Vec<(String, usize)>,
}

/// Runs the workload. `None`: a plain ring (every request to its home, no bound); `Some(c)`:
/// your `BoundedRing` with balance factor c.
fn run(balance_factor: Option<f64>) -> Run {
    let mut ring = BoundedRing::new(balance_factor.unwrap_or(1.0)).expect("a valid factor");
    for i in 0..NODES {
        ring.add_node(&format!("cache-{i}"));
    }
    // The plain ring's own bookkeeping (it uses only `home`).
    let mut plain_loads: BTreeMap<String, usize> = BTreeMap::new();
    let mut zipf = ZipfKeys::new(KEYS, SKEW, 42);
    let mut open: VecDeque<String> = VecDeque::new();
    let (mut peak, mut peak_ratio, mut ratio_sum, mut steps, mut off_home) = (0, 0.0, 0.0, 0, 0);
    let mut seen = BTreeSet::new();
    let mut moved = BTreeSet::new();
    let mut hot_key_nodes = BTreeSet::new();
    for _ in 0..REQUESTS {
        if open.len() == IN_FLIGHT {
            let done = open.pop_front().expect("IN_FLIGHT > 0");
            match balance_factor {
                Some(_) => {
                    ring.release(&done);
                }
                None => *plain_loads.get_mut(&done).expect("assigned before") -= 1,
            }
        }
        let k = zipf.next_key();
        let key = format!("video:{k}");
        let home = ring.home(&key).expect("nodes on the ring").to_string();
        let node = match balance_factor {
            Some(_) => ring.assign(&key).expect("a non-empty ring always assigns"),
            None => {
                *plain_loads.entry(home.clone()).or_default() += 1;
                home.clone()
            }
        };
        seen.insert(k);
        if node != home {
            off_home += 1;
            moved.insert(k);
        }
        if k == 0 {
            hot_key_nodes.insert(node.clone());
        }
        open.push_back(node);
        let busiest = match balance_factor {
            Some(_) => ring.nodes().iter().map(|n| ring.load(n)).max(),
            None => plain_loads.values().copied().max(),
        }
        .unwrap_or(0);
        peak = peak.max(busiest);
        if open.len() == IN_FLIGHT {
            let ratio = busiest as f64 * NODES as f64 / IN_FLIGHT as f64;
            peak_ratio = f64::max(peak_ratio, ratio);
            ratio_sum += ratio;
            steps += 1;
        }
    }
    let final_loads = (0..NODES)
        .map(|i| {
            let name = format!("cache-{i}");
            let load = match balance_factor {
                Some(_) => ring.load(&name),
                None => plain_loads.get(&name).copied().unwrap_or(0),
            };
            (name, load)
        })
        .collect();
    Run {
        peak,
        peak_ratio,
        mean_ratio: ratio_sum / steps.max(1) as f64,
        off_home,
        keys_seen: seen.len(),
        keys_moved: moved.len(),
        hot_key_nodes: hot_key_nodes.len(),
        final_loads,
    }
}

/// The bound with IN_FLIGHT requests open: ⌈c × IN_FLIGHT / NODES⌉.
fn bound(c: f64) -> String {
    format!("{}", (c * IN_FLIGHT as f64 / NODES as f64).ceil())
}

fn main() {
    println!(
        "{REQUESTS} requests over {KEYS} keys (Zipf skew {SKEW}), {IN_FLIGHT} in flight at a \
         time, {NODES} nodes with {VNODES_PER_NODE} vnodes each: a fair share is {} in flight \
         per node.\n",
        IN_FLIGHT / NODES
    );
    let mut table = Table::new(&[
        "scheme",
        "bound",
        "busiest node (peak)",
        "max/mean (peak)",
        "max/mean (avg)",
        "requests off home",
        "keys ever moved",
        "nodes serving key 0",
    ]);
    let mut runs = vec![("plain ring".to_string(), None)];
    runs.extend(
        COMPARED
            .iter()
            .map(|&c| (format!("bounded c={c}"), Some(c))),
    );
    if !COMPARED.contains(&BALANCE_FACTOR) {
        runs.push((format!("bounded c={BALANCE_FACTOR}"), Some(BALANCE_FACTOR)));
    }
    let mut plain_final = Vec::new();
    let mut chosen_final = Vec::new();
    for (label, factor) in &runs {
        let r = run(*factor);
        table.row(&[
            label.clone(),
            factor.map_or("none".to_string(), bound),
            r.peak.to_string(),
            format!("{:.2}", r.peak_ratio),
            format!("{:.2}", r.mean_ratio),
            percent(r.off_home as u64, REQUESTS as u64),
            format!(
                "{} of {} ({})",
                r.keys_moved,
                r.keys_seen,
                percent(r.keys_moved as u64, r.keys_seen as u64)
            ),
            r.hot_key_nodes.to_string(),
        ]);
        match factor {
            None => plain_final = r.final_loads,
            Some(c) if *c == BALANCE_FACTOR => chosen_final = r.final_loads,
            _ => {}
        }
    }
    table.print();

    let mut bars = Vec::new();
    for ((node, plain), (_, bounded)) in plain_final.iter().zip(&chosen_final) {
        bars.push((format!("{node} plain"), *plain as f64));
        bars.push((format!("{node} c={BALANCE_FACTOR}"), *bounded as f64));
    }
    println!(
        "\nrequests in flight per node at the end (fair share {}, bound at c={BALANCE_FACTOR}: \
         {})\n{}\n",
        IN_FLIGHT / NODES,
        bound(BALANCE_FACTOR),
        bar_chart(&bars, 40)
    );
    println!(
        "The plain ring sends every request for a hot key to one node; the bound caps it and \
         spills the excess to the next node clockwise. A smaller c evens the load more but \
         moves more requests off their home node, where the cache is cold."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use sdlings_kit::workload::seeded_rng;

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

    /// What `assign(key)` must answer now: the first node clockwise from home below capacity.
    fn expected_node(ring: &BoundedRing, key: &str) -> String {
        let capacity = ring.capacity();
        clockwise_nodes(ring, key)
            .into_iter()
            .find(|n| ring.load(n) < capacity)
            .expect("some node has room")
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
    fn a_request_whose_home_has_room_goes_home_and_is_recorded() {
        let mut ring = ring_of(1.25, &NODES);
        let home = ring.home("video:7").unwrap().to_string();
        assert_eq!(
            ring.assign("video:7").as_deref(),
            Some(home.as_str()),
            "the ring is idle, so video:7 goes to its usual node, the first point clockwise"
        );
        assert_eq!(ring.load(&home), 1, "assign records the request on {home}");
        assert_eq!(ring.total_load(), 1, "and in the total");
        for node in NODES.iter().filter(|n| **n != home) {
            assert_eq!(ring.load(node), 0, "{node} received nothing");
        }
    }

    #[test]
    fn a_hot_key_never_pushes_a_node_past_the_capacity() {
        let mut ring = ring_of(1.25, &NODES);
        for i in 1..=100 {
            let capacity = ring.capacity();
            let node = ring.assign("video:hot").expect("non-empty ring");
            assert!(
                ring.load(&node) <= capacity,
                "request {i} for the hot key went to {node}, which now holds {} requests, over \
                 the capacity of {capacity}: a full node must be skipped, however hot the key",
                ring.load(&node)
            );
        }
        for node in NODES {
            assert!(
                ring.load(node) <= 32,
                "after 100 requests on 4 nodes with c = 1.25 no node may hold more than \
                 ⌈1.25 × 100 / 4⌉ = 32; {node} holds {}",
                ring.load(node)
            );
        }
        let home = ring.home("video:hot").unwrap();
        assert!(
            ring.load(home) >= 30,
            "the hot key's home {home} should be filled (nearly) to the bound before requests \
             spill over; it holds {}",
            ring.load(home)
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
    fn release_frees_capacity_so_the_next_request_goes_home_again() {
        let mut ring = ring_of(1.0, &NODES);
        let order = clockwise_nodes(&ring, "video:hot");
        for _ in 0..4 {
            ring.assign("video:hot").expect("non-empty ring");
        }
        let home = order[0].as_str();
        assert!(ring.release(home), "{home} holds one request");
        assert_eq!(ring.load(home), 0, "release takes the request off {home}");
        assert_eq!(
            ring.total_load(),
            3,
            "release takes it off the total too, or the capacity would keep growing"
        );
        assert_eq!(
            ring.capacity(),
            1,
            "3 requests in flight on 4 nodes, c = 1: ⌈4 / 4⌉ = 1"
        );
        assert_eq!(
            ring.assign("video:hot").as_deref(),
            Some(home),
            "{home} has room again after the release: the hot key goes home"
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

    #[test]
    fn adding_a_node_spreads_the_bound_over_more_nodes() {
        let mut ring = ring_of(1.5, &NODES);
        for i in 0..11 {
            ring.assign(&format!("video:{i}")).unwrap();
        }
        assert_eq!(ring.capacity(), 5, "⌈1.5 × 12 / 4⌉ = ⌈4.5⌉ = 5");
        ring.add_node("cache-e");
        assert_eq!(
            ring.capacity(),
            4,
            "a fifth node lowers the bound: ⌈1.5 × 12 / 5⌉ = ⌈3.6⌉ = 4"
        );
    }

    #[test]
    fn every_assignment_follows_the_bounded_rule_under_a_skewed_workload() {
        let nodes: Vec<String> = (0..6).map(|i| format!("cache-{i}")).collect();
        let names: Vec<&str> = nodes.iter().map(String::as_str).collect();
        let mut ring = ring_of(1.25, &names);
        let mut zipf = ZipfKeys::new(200, 1.2, 7);
        let mut rng = seeded_rng(11);
        let mut open: Vec<String> = Vec::new();
        let (mut home_hits, mut assigned) = (0, 0);
        for step in 0..4_000 {
            if !open.is_empty() && (open.len() >= 60 || rng.random_range(0..10) < 4) {
                let done = open.swap_remove(rng.random_range(0..open.len()));
                assert!(ring.release(&done), "step {step}: {done} holds a request");
                continue;
            }
            let key = format!("video:{}", zipf.next_key());
            let home = ring.home(&key).unwrap().to_string();
            let capacity = ring.capacity();
            let home_load = ring.load(&home);
            let home_had_room = home_load < capacity;
            let expected = expected_node(&ring, &key);
            let got = ring.assign(&key).expect("non-empty ring");
            if home_had_room {
                assert_eq!(
                    got, home,
                    "step {step}: {key}'s home {home} held {home_load} < capacity {capacity}, so \
                     the request must stay home (moving it costs a cold cache)"
                );
                home_hits += 1;
            } else {
                assert_eq!(
                    got, expected,
                    "step {step}: {key}'s home {home} is full (capacity {capacity}); the first \
                     node with room walking clockwise from it is {expected}"
                );
            }
            assert!(
                ring.load(&got) <= capacity,
                "step {step}: {got} exceeds the capacity {capacity}"
            );
            assigned += 1;
            open.push(got);
            assert_eq!(ring.total_load(), open.len(), "step {step}: total load");
        }
        assert!(
            home_hits * 10 > assigned * 6,
            "with c = 1.25 most requests should still find room at home: {home_hits} of \
             {assigned}"
        );
        assert!(
            home_hits < assigned,
            "test setup: the hot keys must overflow sometimes"
        );
    }
}
