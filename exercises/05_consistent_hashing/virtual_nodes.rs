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

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sdlings_kit::backend::{self, Backend, Behaviour};
use sdlings_kit::lab::{Table, bar_chart, percent};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

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

/// One virtual node's place on the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub position: u64,
    /// The physical node this virtual node belongs to.
    pub node: String,
}

#[derive(Debug, Clone)]
pub struct VnodeRing {
    /// Virtual nodes per unit of weight.
    vnodes: usize,
    /// Every virtual node of every node, sorted by (position, node).
    points: Vec<Point>,
    /// The physical nodes and their weights.
    weights: BTreeMap<String, u32>,
}

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

    // ---- Your part ---------------------------------------------------------------------------

    /// Puts `node` on the ring with `weight × vnodes` virtual nodes, indices `0..weight × vnodes`,
    /// each at `vnode_position(node, index)`, keeping `points` sorted by (position, node) and
    /// recording the weight. `weight` must be at least 1. Returns `false` and changes nothing if
    /// the node is already on the ring.
    pub fn add_weighted_node(&mut self, node: &str, weight: u32) -> bool {
        todo!("weight x vnodes points at vnode_position(node, i), sorted; record the weight")
    }

    /// Takes `node` and every one of its virtual nodes off the ring. Returns `false` if it was
    /// not there.
    pub fn remove_node(&mut self, node: &str) -> bool {
        todo!("remove the node and every one of its points")
    }

    /// The physical node owning `key`: the node of the first point whose position is >=
    /// `stable_hash(key)`, wrapping around to the first point. `None` on an empty ring.
    pub fn route(&self, key: &str) -> Option<&str> {
        todo!("first point at or after stable_hash(key), wrapping; answer its node")
    }
}

/// Where virtual node `index` of `node` sits on the ring: `stable_hash` of the label
/// `"{node}#{index}"`, e.g. `"cache-a#0"`, `"cache-a#1"`.
pub fn vnode_position(node: &str, index: usize) -> u64 {
    todo!("stable_hash of the label \"{node}#{index}\"")
}

// ---- Given: load statistics ------------------------------------------------------------------

/// How evenly keys are spread: (max / mean, min / mean, standard deviation / mean) of the
/// per-node key counts. A perfect spread is (1, 1, 0).
pub fn spread(counts: &[usize]) -> (f64, f64, f64) {
    let n = counts.len().max(1) as f64;
    let mean = counts.iter().sum::<usize>() as f64 / n;
    if mean == 0.0 {
        return (0.0, 0.0, 0.0);
    }
    let max = counts.iter().copied().max().unwrap_or(0) as f64;
    let min = counts.iter().copied().min().unwrap_or(0) as f64;
    let variance = counts
        .iter()
        .map(|&c| (c as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (max / mean, min / mean, variance.sqrt() / mean)
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
/// Requests in flight at once, and how long one may take.
const CONCURRENCY: usize = 32;
const TIMEOUT: Duration = Duration::from_secs(2);

fn sweep() {
    println!(
        "In-process: {NODES} nodes, {SWEEP_KEYS} keys; then cache-0 leaves. \
         (loads relative to the mean: 1.00 is a fair share)\n"
    );
    let keys: Vec<String> = (0..SWEEP_KEYS).map(|i| format!("user:{i}")).collect();
    let names: Vec<String> = (0..NODES).map(|i| format!("cache-{i}")).collect();
    let mut table = Table::new(&[
        "vnodes/node",
        "points",
        "max/mean",
        "min/mean",
        "std-dev/mean",
        "heirs of cache-0",
        "biggest heir's share",
    ]);
    let mut bars = Vec::new();
    for &v in &VNODE_SWEEP {
        let mut ring = VnodeRing::new(v);
        for name in &names {
            ring.add_node(name);
        }
        let before: Vec<String> = keys
            .iter()
            .map(|k| ring.route(k).unwrap_or_default().to_string())
            .collect();
        let counts: Vec<usize> = names
            .iter()
            .map(|n| before.iter().filter(|o| *o == n).count())
            .collect();
        let (max, min, sd) = spread(&counts);
        let points = ring.points().len();
        ring.remove_node("cache-0");
        let mut heirs: HashMap<&str, usize> = HashMap::new();
        for (key, owner) in keys.iter().zip(&before) {
            if owner == "cache-0" {
                *heirs
                    .entry(ring.route(key).unwrap_or_default())
                    .or_default() += 1;
            }
        }
        let handed_over: usize = heirs.values().sum();
        let biggest = heirs.values().copied().max().unwrap_or(0);
        table.row(&[
            v.to_string(),
            points.to_string(),
            format!("{max:.2}"),
            format!("{min:.2}"),
            format!("{sd:.2}"),
            format!("{} of {}", heirs.len(), NODES - 1),
            percent(biggest as u64, handed_over as u64),
        ]);
        bars.push((format!("V = {v}"), (max * 100.0).round() / 100.0));
    }
    table.print();
    println!(
        "\nmost loaded node / mean (1.00 = perfectly even)\n{}\n",
        bar_chart(&bars, 40)
    );
}

/// Sends `GET /session?id=<scheme>-<key>` for every key to the server named by `owners[i]`,
/// and returns, per key, how many times that server has now seen it (`None`: the request
/// failed). The session endpoint counts per key per server, so 1 means a first sighting.
async fn send_all(
    scheme: &str,
    keys: &[String],
    owners: &[String],
    addrs: &HashMap<String, SocketAddr>,
) -> Vec<Option<u64>> {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    for (i, (key, owner)) in keys.iter().zip(owners).enumerate() {
        let addr = addrs[owner];
        let path = format!("/session?id={scheme}-{key}");
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            let seen = match backend::get(addr, &path, TIMEOUT).await {
                // The body is "<server name> <times this server saw the key>".
                Ok(response) if response.status == 200 => response
                    .body
                    .rsplit(' ')
                    .next()
                    .and_then(|count| count.parse().ok()),
                _ => None,
            };
            (i, seen)
        });
    }
    let mut seen = vec![None; keys.len()];
    while let Some(joined) = tasks.join_next().await {
        let (i, count) = joined.expect("request task panicked");
        seen[i] = count;
    }
    seen
}

/// One phase of one scheme, summarised.
struct Phase {
    ok: usize,
    failed: usize,
    /// Keys whose server changed since the previous phase.
    moved: usize,
    /// Answered by a server that had never seen the key: a miss the resize caused.
    cold: usize,
    /// Moved keys that landed on a server holding a copy from an earlier layout: a hit on a
    /// copy nobody invalidated, possibly stale.
    old_copy: usize,
}

fn summarise(seen: &[Option<u64>], before: &[String], after: &[String]) -> Phase {
    let mut phase = Phase {
        ok: 0,
        failed: 0,
        moved: 0,
        cold: 0,
        old_copy: 0,
    };
    for ((count, old), new) in seen.iter().zip(before).zip(after) {
        let moved = old != new;
        phase.moved += usize::from(moved);
        match count {
            None => phase.failed += 1,
            Some(count) => {
                phase.ok += 1;
                phase.cold += usize::from(*count == 1);
                phase.old_copy += usize::from(moved && *count > 1);
            }
        }
    }
    phase
}

fn mod_n_owners(keys: &[String], servers: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| servers[(stable_hash(k) % servers.len() as u64) as usize].clone())
        .collect()
}

fn ring_owners(keys: &[String], ring: &VnodeRing) -> Vec<String> {
    keys.iter()
        .map(|k| ring.route(k).expect("servers are up").to_string())
        .collect()
}

fn per_node(owners: &[String], names: &[String]) -> Vec<usize> {
    names
        .iter()
        .map(|n| owners.iter().filter(|o| *o == n).count())
        .collect()
}

/// Both schemes' current placement of the keys.
struct Layouts {
    ring: Vec<String>,
    mod_n: Vec<String>,
}

async fn socket_lab() -> std::io::Result<()> {
    let started = Instant::now();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("user:{i}")).collect();
    let mut fleet: Vec<Backend> = backend::start_fleet(NODES.max(2), Duration::ZERO).await?;
    let mut addrs: HashMap<String, SocketAddr> = fleet
        .iter()
        .map(|b| (b.name().to_string(), b.addr()))
        .collect();
    let mut ring = VnodeRing::new(VNODES);
    // The mod-N client's server list: a key goes to servers[hash % len].
    let mut servers: Vec<String> = fleet.iter().map(|b| b.name().to_string()).collect();
    for name in &servers {
        ring.add_node(name);
    }
    println!(
        "Real sockets: {} cache servers on 127.0.0.1, {KEYS} keys per phase, sent through your \
         ring ({VNODES} vnodes/server) and through mod-N (each scheme has its own keys on the \
         servers).\n",
        fleet.len()
    );
    let mut table = Table::new(&[
        "phase",
        "scheme",
        "servers",
        "ok",
        "failed",
        "keys moved",
        "cold misses",
        "old copies hit",
    ]);
    let mut requests = 0;
    let mut current = Layouts {
        ring: ring_owners(&keys, &ring),
        mod_n: mod_n_owners(&keys, &servers),
    };
    // Keys per server through the ring, after each change of membership.
    let mut history: Vec<(String, Vec<String>)> = vec![("start".into(), current.ring.clone())];
    for step in 1..=5 {
        let phase = match step {
            1 => "1 warm-up".to_string(),
            2 => "2 steady".to_string(),
            3 => {
                // A new process on a new port joins both layouts.
                let joiner = Backend::start(
                    &format!("backend-{}", fleet.len()),
                    Behaviour::Healthy {
                        latency: Duration::ZERO,
                    },
                )
                .await?;
                let name = joiner.name().to_string();
                addrs.insert(name.clone(), joiner.addr());
                fleet.push(joiner);
                ring.add_node(&name);
                servers.push(name.clone());
                format!("3 {name} joins")
            }
            4 => {
                // It crashes; nobody has noticed yet, so both layouts still send keys to it.
                fleet[1].crash();
                format!("4 {} crashes", fleet[1].name())
            }
            _ => {
                // A health check noticed: it leaves both layouts.
                let name = fleet[1].name().to_string();
                ring.remove_node(&name);
                servers.retain(|s| *s != name);
                format!("5 {name} removed")
            }
        };
        let next = Layouts {
            ring: ring_owners(&keys, &ring),
            mod_n: mod_n_owners(&keys, &servers),
        };
        let previous = std::mem::replace(&mut current, next);
        match step {
            3 => history.push((
                format!("+{}", servers[servers.len() - 1]),
                current.ring.clone(),
            )),
            5 => history.push((format!("-{}", fleet[1].name()), current.ring.clone())),
            _ => {}
        }
        for (scheme, before, after) in [
            ("ring", &previous.ring, &current.ring),
            ("mod-N", &previous.mod_n, &current.mod_n),
        ] {
            let seen = send_all(scheme, &keys, after, &addrs).await;
            requests += seen.len();
            let p = summarise(&seen, before, after);
            let label = if scheme == "ring" { phase.as_str() } else { "" };
            // In the warm-up every key is new everywhere: "moved" means nothing yet.
            let moved = if step == 1 {
                "-".to_string()
            } else {
                percent(p.moved as u64, KEYS as u64)
            };
            table.row(&[
                label.to_string(),
                scheme.to_string(),
                servers.len().to_string(),
                p.ok.to_string(),
                p.failed.to_string(),
                moved,
                format!("{} ({})", p.cold, percent(p.cold as u64, KEYS as u64)),
                p.old_copy.to_string(),
            ]);
        }
    }
    table.print();
    println!(
        "\n\"old copies hit\": a moved key landed on a server that held it under an earlier \
         layout; a cache would serve that copy, which nobody updated or invalidated meanwhile."
    );

    println!("\nKeys per server through your ring:\n");
    let all: Vec<String> = fleet.iter().map(|b| b.name().to_string()).collect();
    let mut header = vec!["server".to_string()];
    header.extend(history.iter().map(|(label, _)| label.clone()));
    let mut loads = Table::new(&header);
    let columns: Vec<Vec<usize>> = history.iter().map(|(_, o)| per_node(o, &all)).collect();
    for (i, name) in all.iter().enumerate() {
        let mut cells = vec![name.clone()];
        cells.extend(columns.iter().map(|c| c[i].to_string()));
        loads.row(&cells);
    }
    loads.print();
    println!(
        "\n{requests} requests over real sockets in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() {
    sweep();
    let runtime = sdlings_kit::lab::runtime();
    if let Err(error) = runtime.block_on(socket_lab()) {
        eprintln!("the socket lab could not run: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_vnode_of_every_node_gets_its_own_point() {
        let mut seen = HashMap::new();
        for node in ten_nodes() {
            for index in 0..100 {
                if let Some(other) =
                    seen.insert(vnode_position(&node, index), (node.clone(), index))
                {
                    panic!(
                        "{node}#{index} and {}#{} share a position: the label must combine the \
                         node's name and the vnode's index, or different nodes' vnodes (or one \
                         node's vnodes) pile up on the same points",
                        other.0, other.1
                    );
                }
            }
        }
    }

    #[test]
    fn add_node_places_vnodes_points_per_unit_of_weight_in_sorted_order() {
        let mut ring = ring(4, &["cache-a", "cache-b"]);
        assert!(ring.add_weighted_node("big", 3));
        assert_eq!(ring.len(), 3, "three physical nodes");
        assert_eq!(ring.weight("big"), Some(3));
        assert_eq!(ring.weight("cache-a"), Some(1));
        assert_eq!(
            ring.points().len(),
            4 + 4 + 12,
            "4 vnodes per unit of weight: 4 + 4 + 3 x 4 points"
        );
        let positions: Vec<u64> = ring.points().iter().map(|p| p.position).collect();
        assert!(
            positions.windows(2).all(|w| w[0] <= w[1]),
            "points must stay sorted by position for binary search"
        );
        for (node, count) in [("cache-a", 4), ("big", 12)] {
            let mut got: Vec<u64> = ring
                .points()
                .iter()
                .filter(|p| p.node == node)
                .map(|p| p.position)
                .collect();
            let mut want: Vec<u64> = (0..count).map(|i| vnode_position(node, i)).collect();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{node}'s points are its vnodes 0..{count}");
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
    fn route_finds_the_first_vnode_clockwise_and_answers_with_its_node() {
        let ring = ring(3, &["cache-a", "cache-b", "cache-c"]);
        let expected = [
            ("user:0", "cache-c"),
            ("user:1", "cache-a"),
            ("user:2", "cache-c"),
            ("user:3", "cache-a"),
            ("user:4", "cache-b"),
            ("user:5", "cache-c"),
            ("user:6", "cache-a"),
            ("user:7", "cache-c"),
        ];
        for (key, owner) in expected {
            assert_eq!(
                ring.route(key),
                Some(owner),
                "{key} sits at {:#018x}; the first vnode at or after it (wrapping) decides",
                stable_hash(key)
            );
        }
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
        let last = ring.points().last().unwrap().position;
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
    fn adding_a_node_moves_keys_only_onto_it_and_takes_them_from_many_nodes() {
        let names = ten_nodes();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let before = ring(100, &names);
        let mut after = before.clone();
        after.add_node("cache-new");
        let mut donors = BTreeMap::new();
        for key in keys(20_000) {
            let (old, new) = (before.route(&key).unwrap(), after.route(&key).unwrap());
            if old != new {
                assert_eq!(
                    new, "cache-new",
                    "{key} moved from {old} to {new}, not to the joiner"
                );
                *donors.entry(old).or_insert(0) += 1;
            }
        }
        assert!(
            donors.len() >= 9,
            "the joiner's 100 vnodes should take keys from (nearly) every node: {donors:?}"
        );
    }

    #[test]
    fn more_vnodes_per_node_even_out_the_load() {
        let names = ten_nodes();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let keys = keys(100_000);
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
            "with 100 vnodes per node, 10 nodes and 100000 keys, every node should carry between \
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
}
