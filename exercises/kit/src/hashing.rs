//! Machinery shared by the hashing exercises: the topic's stable hash, the ring point, and one
//! lab driver per exercise. Nothing here solves an exercise: each lab takes the learner's
//! functions as arguments.

use std::cell::Cell;

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

/// The hash the whole topic uses: FNV-1a, then the SplitMix64 finaliser.
///
/// Not std's `DefaultHasher`: its algorithm may change between Rust releases (and a HashMap's
/// `RandomState` is even seeded differently in every process). That is fine inside one HashMap
/// and fatal for routing, where every client, every restart and every deploy must send a key to
/// the same node.
pub fn stable_hash(data: impl AsRef<[u8]>) -> u64 {
    mix64(fnv1a64(data.as_ref()))
}

/// Maps a raw 64-bit score to a float strictly between 0 and 1: the top 52 bits, centred in
/// their bucket, so that even `u64::MAX` stays below 1 (with 53 bits, 1 - 2^-54 would round up
/// to exactly 1.0). Never 0 (ln 0 = -inf) and never 1 (ln 1 = 0, and -w/0 = -inf would be the
/// *lowest* score, for the highest hash).
pub fn unit_interval(raw: u64) -> f64 {
    ((raw >> 12) as f64 + 0.5) / (1u64 << 52) as f64
}

/// The size of the ring: 2^64 positions.
pub const RING_SIZE: f64 = 18_446_744_073_709_551_616.0;

thread_local! {
    static POSITION_READS: Cell<u64> = const { Cell::new(0) };
}

/// A point on a hash ring: a node (or one virtual node of a node) at a 64-bit position.
///
/// The position is read through [`Point::position`], which counts every read (per thread), so
/// the tests and the labs can show how much of the ring a lookup looks at: a binary search reads
/// about log2(points) positions, a scan from the start reads about half of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    position: u64,
    /// The physical node this point belongs to.
    pub node: String,
}

impl Point {
    pub fn new(position: u64, node: impl Into<String>) -> Self {
        Point {
            position,
            node: node.into(),
        }
    }

    /// Where the point sits on the ring (counted: see [`position_reads`]).
    pub fn position(&self) -> u64 {
        POSITION_READS.with(|reads| reads.set(reads.get() + 1));
        self.position
    }
}

/// How many times this thread has read a [`Point::position`] so far. Take the difference around
/// a lookup to see how many points it looked at.
pub fn position_reads() -> u64 {
    POSITION_READS.with(Cell::get)
}

/// The `jump_hash` lab: growing a sharded store one shard at a time, losing a shard, and the cost
/// of a lookup.
pub mod jump {
    use std::hint::black_box;
    use std::time::Instant;

    use super::stable_hash;
    use crate::lab::{Table, bar_chart, percent};

    pub struct Knobs {
        /// Shards at the end of the growth table (and in the load and failure tables).
        pub buckets: i32,
        /// Distinct keys.
        pub keys: usize,
        /// The shard that dies in the failure table.
        pub dead_shard: usize,
    }

    /// A sharded store's routing table: shard names in bucket order, routed by `jump`.
    struct Shards {
        jump: fn(u64, i32) -> i32,
        names: Vec<String>,
    }

    impl Shards {
        fn new(jump: fn(u64, i32) -> i32, names: Vec<String>) -> Self {
            Shards { jump, names }
        }

        fn route(&self, key: &str) -> &str {
            let buckets = i32::try_from(self.names.len()).expect("fewer than 2^31 shards");
            &self.names[(self.jump)(stable_hash(key), buckets) as usize]
        }
    }

    pub fn run(jump: fn(u64, i32) -> i32, knobs: Knobs) {
        let Knobs {
            buckets,
            keys: key_count,
            dead_shard,
        } = knobs;

        let hashes: Vec<u64> = (0..key_count)
            .map(|i| stable_hash(format!("user:{i}")))
            .collect();

        println!("Growing one shard at a time, {key_count} keys\n");
        let mut growth = Table::new(&[
            "shards",
            "moved",
            "ideal 1/(n+1)",
            "moved onto the new shard",
        ]);
        let mut current: Vec<i32> = hashes.iter().map(|&h| jump(h, 1)).collect();
        for n in 1..buckets {
            let next: Vec<i32> = hashes.iter().map(|&h| jump(h, n + 1)).collect();
            let moved = current.iter().zip(&next).filter(|(a, b)| a != b).count();
            let onto_new = current
                .iter()
                .zip(&next)
                .filter(|(a, b)| a != b && **b == n)
                .count();
            growth.row(&[
                format!("{n} -> {}", n + 1),
                percent(moved as u64, key_count as u64),
                format!("{:.1}%", 100.0 / f64::from(n + 1)),
                percent(onto_new as u64, moved as u64),
            ]);
            current = next;
        }
        growth.print();

        let mut counts = vec![0usize; buckets as usize];
        for &bucket in &current {
            counts[bucket as usize] += 1;
        }
        let mean = key_count as f64 / f64::from(buckets);
        let max = counts.iter().copied().max().unwrap_or(0) as f64;
        let bars: Vec<(String, f64)> = counts
            .iter()
            .enumerate()
            .map(|(i, &c)| (format!("shard-{i}"), c as f64))
            .collect();
        println!(
            "\nkeys per shard with {buckets} shards (busiest: {:.2}x the mean; no vnodes, no \
             memory)\n{}\n",
            max / mean,
            bar_chart(&bars, 40)
        );

        let names: Vec<String> = (0..buckets).map(|i| format!("shard-{i}")).collect();
        let keys: Vec<String> = (0..key_count).map(|i| format!("user:{i}")).collect();
        let all = Shards::new(jump, names.clone());
        let without_last = Shards::new(jump, names[..names.len() - 1].to_vec());
        let dead = names[dead_shard.min(names.len() - 1)].clone();
        let without_dead = Shards::new(
            jump,
            names.iter().filter(|n| **n != dead).cloned().collect(),
        );
        let moved = |after: &Shards| {
            keys.iter()
                .filter(|k| all.route(k) != after.route(k))
                .count()
        };
        let mut failure = Table::new(&["shard lost", "keys moved", "ideal"]);
        failure.row(&[
            format!("{} (the last one)", names[names.len() - 1]),
            percent(moved(&without_last) as u64, key_count as u64),
            format!("{:.1}%", 100.0 / f64::from(buckets)),
        ]);
        failure.row(&[
            format!("{dead} (in the middle)"),
            percent(moved(&without_dead) as u64, key_count as u64),
            format!("{:.1}%", 100.0 / f64::from(buckets)),
        ]);
        failure.print();
        println!(
            "\n(jump only knows bucket numbers: dropping {dead} shifts every later shard down by one)\n"
        );

        let mut cost = Table::new(&["buckets", "time per lookup (debug build)"]);
        for buckets in [10, 1_000, 1_000_000, i32::MAX] {
            let started = Instant::now();
            for &h in &hashes[..20_000] {
                black_box(jump(black_box(h), buckets));
            }
            let each = started.elapsed() / 20_000;
            cost.row(&[buckets.to_string(), format!("{each:.1?}")]);
        }
        cost.print();
        println!(
            "\nThe cost grows with ln(buckets): about one more jump each time n is multiplied by e."
        );
    }
}

/// The `mod_n_rehashing` lab: resizing clusters by one node under mod-N placement.
pub mod mod_n {
    use crate::lab::{Table, bar_chart, percent};

    /// What one change of the node count did to a set of keys.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Resize {
        /// Keys measured.
        pub keys: usize,
        /// Keys whose node changed.
        pub moved: usize,
        /// Moved keys whose old node and new node both exist before *and* after the resize: moves
        /// no scheme was forced to make (a good one makes none).
        pub needless: usize,
    }

    impl Resize {
        /// Share of the keys that moved, in 0.0..=1.0.
        pub fn moved_fraction(&self) -> f64 {
            if self.keys == 0 {
                0.0
            } else {
                self.moved as f64 / self.keys as f64
            }
        }
    }

    pub fn run(
        measure_resize: fn(&[String], usize, usize) -> Resize,
        ideal_moved_fraction: fn(usize, usize) -> f64,
        node_counts: &[usize],
        key_count: usize,
    ) {
        let keys: Vec<String> = (0..key_count).map(|i| format!("user:{i}")).collect();
        println!("mod-N placement of {key_count} keys: what one node joining or leaving costs\n");
        let mut table = Table::new(&[
            "join",
            "moved",
            "ideal",
            "needless",
            "hit rate after",
            "leave",
            "moved",
            "ideal",
            "needless",
        ]);
        let mut bars = Vec::new();
        for &n in node_counts {
            let join = measure_resize(&keys, n, n + 1);
            let leave = measure_resize(&keys, n, n - 1);
            table.row(&[
                format!("{n} -> {}", n + 1),
                percent(join.moved as u64, key_count as u64),
                format!("{:.1}%", ideal_moved_fraction(n, n + 1) * 100.0),
                percent(join.needless as u64, key_count as u64),
                percent((join.keys - join.moved) as u64, key_count as u64),
                format!("{n} -> {}", n - 1),
                percent(leave.moved as u64, key_count as u64),
                format!("{:.1}%", ideal_moved_fraction(n, n - 1) * 100.0),
                percent(leave.needless as u64, key_count as u64),
            ]);
            let round = |f: f64| (f * 1000.0).round() / 10.0;
            bars.push((
                format!("{n}->{} mod-N", n + 1),
                round(join.moved_fraction()),
            ));
            bars.push((
                format!("{n}->{} ideal", n + 1),
                round(ideal_moved_fraction(n, n + 1)),
            ));
        }
        table.print();
        println!(
            "\n(a leave here removes the last node; with mod-N, removing any other node renumbers \
             the ones after it and moves even more)\n"
        );
        println!("keys moved on a join (%)\n{}", bar_chart(&bars, 40));
    }
}

/// The `hash_ring` lab: a node joins, then one leaves; the ring against mod-N.
pub mod ring {
    use std::collections::BTreeMap;

    use super::stable_hash;
    use crate::lab::{Table, bar_chart, percent};

    /// What the lab uses of a ring.
    pub trait LabRing {
        fn add(&mut self, node: &str);
        fn remove(&mut self, node: &str);
        fn owner(&self, key: &str) -> Option<&str>;
        /// Each node's share of the circle, in ring order.
        fn shares(&self) -> Vec<(&str, f64)>;
    }

    /// The learner's ring with its operations, as the lab drives it.
    struct Ops<R> {
        ring: R,
        add: fn(&mut R, &str) -> bool,
        remove: fn(&mut R, &str) -> bool,
        route: for<'a> fn(&'a R, &str) -> Option<&'a str>,
        ownership: for<'a> fn(&'a R) -> Vec<(&'a str, f64)>,
    }

    impl<R> LabRing for Ops<R> {
        fn add(&mut self, node: &str) {
            (self.add)(&mut self.ring, node);
        }
        fn remove(&mut self, node: &str) {
            (self.remove)(&mut self.ring, node);
        }
        fn owner(&self, key: &str) -> Option<&str> {
            (self.route)(&self.ring, key)
        }
        fn shares(&self) -> Vec<(&str, f64)> {
            (self.ownership)(&self.ring)
        }
    }

    pub struct Knobs {
        /// Nodes on the ring at the start: "cache-0".."cache-{nodes-1}".
        pub nodes: usize,
        /// Distinct keys routed.
        pub keys: usize,
        /// Which node leaves in the second event (an index below `nodes`).
        pub leaving: usize,
    }

    /// Routes every key; returns each key's owner.
    fn placement<R: LabRing>(ring: &R, keys: &[String]) -> Vec<String> {
        keys.iter()
            .map(|k| ring.owner(k).expect("a non-empty ring").to_string())
            .collect()
    }

    /// A key's owner under mod-N placement (`nodes[hash % len]`).
    fn mod_n_owner<'a>(key: &str, nodes: &'a [String]) -> &'a str {
        &nodes[(stable_hash(key) % nodes.len() as u64) as usize]
    }

    /// Keys that change owner under mod-N placement (`nodes[hash % len]`) between two node lists.
    fn mod_n_moves(keys: &[String], before: &[String], after: &[String]) -> usize {
        keys.iter()
            .filter(|k| mod_n_owner(k, before) != mod_n_owner(k, after))
            .count()
    }

    /// Runs the lab on an empty `ring`, driven through the given operations.
    pub fn run<R>(
        ring: R,
        add: fn(&mut R, &str) -> bool,
        remove: fn(&mut R, &str) -> bool,
        route: for<'a> fn(&'a R, &str) -> Option<&'a str>,
        ownership: for<'a> fn(&'a R) -> Vec<(&'a str, f64)>,
        knobs: Knobs,
    ) {
        let mut ring = Ops {
            ring,
            add,
            remove,
            route,
            ownership,
        };
        let Knobs {
            nodes: node_count,
            keys: key_count,
            leaving,
        } = knobs;
        let keys: Vec<String> = (0..key_count).map(|i| format!("user:{i}")).collect();
        let mut names: Vec<String> = (0..node_count).map(|i| format!("cache-{i}")).collect();
        for name in &names {
            ring.add(name);
        }
        let before = placement(&ring, &keys);

        println!("{node_count} nodes, one point each, {key_count} keys\n");
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for owner in &before {
            *counts.entry(owner.as_str()).or_default() += 1;
        }
        let mut table = Table::new(&["node (ring order)", "owns", "keys", "keys / fair share"]);
        let mut bars = Vec::new();
        for (node, share) in ring.shares() {
            let n = counts.get(node).copied().unwrap_or(0);
            table.row(&[
                node.to_string(),
                format!("{:.1}%", share * 100.0),
                n.to_string(),
                format!("{:.2}", n as f64 * node_count as f64 / key_count as f64),
            ]);
            bars.push((node.to_string(), n as f64));
        }
        table.print();
        println!("\nkeys per node\n{}\n", bar_chart(&bars, 40));

        // Event 1: a node joins.
        let joining = format!("cache-{node_count}");
        ring.add(&joining);
        let names_before_join = names.clone();
        names.push(joining.clone());
        let after_join = placement(&ring, &keys);
        let moved_join: Vec<(&String, &String)> = before
            .iter()
            .zip(&after_join)
            .filter(|(a, b)| a != b)
            .collect();
        let onto_new = moved_join.iter().filter(|(_, b)| **b == joining).count();
        let donors: BTreeMap<&str, usize> =
            moved_join.iter().fold(BTreeMap::new(), |mut m, (a, _)| {
                *m.entry(a.as_str()).or_default() += 1;
                m
            });

        // Event 2: a node leaves (from the ring with the joiner).
        let leaving = format!("cache-{leaving}");
        ring.remove(&leaving);
        let names_before_leave = names.clone();
        names.retain(|n| *n != leaving);
        let after_leave = placement(&ring, &keys);
        let moved_leave: Vec<(&String, &String)> = after_join
            .iter()
            .zip(&after_leave)
            .filter(|(a, b)| a != b)
            .collect();
        let off_leaver = moved_leave.iter().filter(|(a, _)| **a == leaving).count();
        let heirs: BTreeMap<&str, usize> =
            moved_leave.iter().fold(BTreeMap::new(), |mut m, (_, b)| {
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
            percent(moved_join.len() as u64, key_count as u64),
            percent(onto_new as u64, key_count as u64),
            percent(
                mod_n_moves(&keys, &names_before_join, &names_before_leave) as u64,
                key_count as u64,
            ),
            format!("from {}", describe(&donors)),
        ]);
        events.row(&[
            format!("{leaving} leaves"),
            percent(moved_leave.len() as u64, key_count as u64),
            percent(off_leaver as u64, key_count as u64),
            percent(
                mod_n_moves(&keys, &names_before_leave, &names) as u64,
                key_count as u64,
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
                load as f64 * names.len() as f64 / key_count as f64,
                names.len()
            );
        }
    }
}

/// The `rendezvous_hashing` lab: load, a node leaving, a heavy node, and the cost of a lookup.
pub mod rendezvous {
    use std::collections::BTreeMap;
    use std::hint::black_box;
    use std::time::Instant;

    use crate::lab::{Table, bar_chart, percent};

    /// What the lab needs from a cluster.
    pub trait LabCluster: Clone + Default {
        fn add(&mut self, node: &str);
        fn add_weighted(&mut self, node: &str, weight: f64);
        fn remove(&mut self, node: &str);
        fn owner(&self, key: &str) -> Option<&str>;
    }

    pub struct Knobs {
        /// Nodes in the cluster: "node-0".."node-{nodes-1}".
        pub nodes: usize,
        /// Distinct keys.
        pub keys: usize,
        /// The node that leaves (an index below `nodes`).
        pub leaving: usize,
        /// node-0's weight in the weighted table.
        pub heavy_weight: f64,
        /// Cluster sizes for the lookup-cost table.
        pub cost_sizes: Vec<usize>,
    }

    fn owners<C: LabCluster>(cluster: &C, keys: &[String]) -> Vec<String> {
        keys.iter()
            .map(|k| cluster.owner(k).expect("non-empty").to_string())
            .collect()
    }

    fn tally<'a>(owners: impl IntoIterator<Item = &'a String>) -> BTreeMap<&'a str, usize> {
        let mut counts = BTreeMap::new();
        for owner in owners {
            *counts.entry(owner.as_str()).or_default() += 1;
        }
        counts
    }

    pub fn run<C: LabCluster>(knobs: Knobs) {
        let Knobs {
            nodes: node_count,
            keys: key_count,
            leaving,
            heavy_weight,
            cost_sizes,
        } = knobs;
        let keys: Vec<String> = (0..key_count).map(|i| format!("user:{i}")).collect();
        let names: Vec<String> = (0..node_count).map(|i| format!("node-{i}")).collect();
        let mut cluster = C::default();
        for name in &names {
            cluster.add(name);
        }
        let before = owners(&cluster, &keys);
        let counts = tally(&before);
        println!("{node_count} nodes, {key_count} keys, highest random weight, no virtual nodes\n");
        let bars: Vec<(String, f64)> = names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    counts.get(n.as_str()).copied().unwrap_or(0) as f64,
                )
            })
            .collect();
        let fair = key_count as f64 / node_count as f64;
        let max = bars.iter().map(|b| b.1).fold(0.0, f64::max);
        println!(
            "keys per node (busiest: {:.2}x a fair share)\n{}\n",
            max / fair,
            bar_chart(&bars, 40)
        );

        let leaving = format!("node-{leaving}");
        let mut smaller = cluster.clone();
        smaller.remove(&leaving);
        let after = owners(&smaller, &keys);
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        let heirs = tally(
            before
                .iter()
                .zip(&after)
                .filter(|(a, _)| **a == leaving)
                .map(|(_, b)| b),
        );
        let handed: usize = heirs.values().sum();
        println!(
            "{leaving} leaves: {} of the keys move (all of them its own); where they go:\n",
            percent(moved as u64, key_count as u64)
        );
        let mut table = Table::new(&["heir", "keys inherited", "share of the handover"]);
        for (heir, count) in &heirs {
            table.row(&[
                heir.to_string(),
                count.to_string(),
                percent(*count as u64, handed as u64),
            ]);
        }
        table.print();

        let mut weighted = C::default();
        for name in &names {
            let weight = if name == "node-0" { heavy_weight } else { 1.0 };
            weighted.add_weighted(name, weight);
        }
        let weighted_owners = owners(&weighted, &keys);
        let weighted_counts = tally(&weighted_owners);
        let total_weight = heavy_weight + (node_count - 1) as f64;
        let heavy = weighted_counts.get("node-0").copied().unwrap_or(0);
        let moved_by_weight = before
            .iter()
            .zip(&weighted_owners)
            .filter(|(a, b)| a != b)
            .count();
        println!(
            "\nnode-0 gets weight {heavy_weight}: it now wins {} of the keys (its weight share is \
             {:.1}%); {} of the keys moved, all onto node-0.\n",
            percent(heavy as u64, key_count as u64),
            heavy_weight * 100.0 / total_weight,
            percent(moved_by_weight as u64, key_count as u64),
        );

        println!("Lookup cost: every lookup scores every node.\n");
        let mut cost = Table::new(&[
            "nodes",
            "scores per lookup",
            "time per lookup (debug build)",
        ]);
        for &size in &cost_sizes {
            let mut big = C::default();
            for i in 0..size {
                big.add(&format!("node-{i}"));
            }
            let lookups = (200_000 / size).clamp(20, 2_000);
            let started = Instant::now();
            for key in keys.iter().take(lookups) {
                black_box(big.owner(black_box(key)));
            }
            let each = started.elapsed() / lookups as u32;
            cost.row(&[size.to_string(), size.to_string(), format!("{each:.1?}")]);
        }
        cost.print();
    }
}

/// The `virtual_nodes` lab: an in-process sweep over vnode counts, then real cache servers on
/// localhost, routed through the learner's ring and through mod-N.
pub mod vnodes {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use tokio::sync::Semaphore;
    use tokio::task::JoinSet;

    use super::stable_hash;
    use crate::backend::{self, Backend, Behaviour};
    use crate::lab::{Table, bar_chart, percent};

    /// Requests in flight at once, and how long one may take.
    const CONCURRENCY: usize = 32;
    const TIMEOUT: Duration = Duration::from_secs(2);

    /// What the lab needs from a ring with virtual nodes.
    pub trait LabVnodeRing {
        fn with_vnodes(vnodes: usize) -> Self;
        fn add(&mut self, node: &str);
        fn remove(&mut self, node: &str);
        fn owner(&self, key: &str) -> Option<&str>;
        fn point_count(&self) -> usize;
    }

    pub struct Knobs {
        /// Cache servers started for the socket part (and nodes in the in-process sweep).
        pub nodes: usize,
        /// Virtual nodes per server in the socket part.
        pub vnodes: usize,
        /// Distinct keys sent as real HTTP requests in each phase of the socket part.
        pub keys: usize,
        /// Virtual-node counts compared in the in-process sweep, over `sweep_keys` keys.
        pub vnode_sweep: Vec<usize>,
        pub sweep_keys: usize,
    }

    pub fn run<R: LabVnodeRing>(knobs: Knobs) {
        sweep::<R>(&knobs);
        let runtime = crate::lab::runtime();
        if let Err(error) = runtime.block_on(socket_lab::<R>(&knobs)) {
            eprintln!("the socket lab could not run: {error}");
        }
    }

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

    fn sweep<R: LabVnodeRing>(knobs: &Knobs) {
        let (nodes, sweep_keys) = (knobs.nodes, knobs.sweep_keys);
        println!(
            "In-process: {nodes} nodes, {sweep_keys} keys; then cache-0 leaves. \
             (loads relative to the mean: 1.00 is a fair share)\n"
        );
        let keys: Vec<String> = (0..sweep_keys).map(|i| format!("user:{i}")).collect();
        let names: Vec<String> = (0..nodes).map(|i| format!("cache-{i}")).collect();
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
        for &v in &knobs.vnode_sweep {
            let mut ring = R::with_vnodes(v);
            for name in &names {
                ring.add(name);
            }
            let before: Vec<String> = keys
                .iter()
                .map(|k| ring.owner(k).unwrap_or_default().to_string())
                .collect();
            let counts: Vec<usize> = names
                .iter()
                .map(|n| before.iter().filter(|o| *o == n).count())
                .collect();
            let (max, min, sd) = spread(&counts);
            let points = ring.point_count();
            ring.remove("cache-0");
            let mut heirs: HashMap<&str, usize> = HashMap::new();
            for (key, owner) in keys.iter().zip(&before) {
                if owner == "cache-0" {
                    *heirs
                        .entry(ring.owner(key).unwrap_or_default())
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
                format!("{} of {}", heirs.len(), nodes - 1),
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

    fn ring_owners<R: LabVnodeRing>(keys: &[String], ring: &R) -> Vec<String> {
        keys.iter()
            .map(|k| ring.owner(k).expect("servers are up").to_string())
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

    async fn socket_lab<R: LabVnodeRing>(knobs: &Knobs) -> std::io::Result<()> {
        let (nodes, vnodes, key_count) = (knobs.nodes, knobs.vnodes, knobs.keys);
        let started = Instant::now();
        let keys: Vec<String> = (0..key_count).map(|i| format!("user:{i}")).collect();
        let mut fleet: Vec<Backend> = backend::start_fleet(nodes.max(2), Duration::ZERO).await?;
        let mut addrs: HashMap<String, SocketAddr> = fleet
            .iter()
            .map(|b| (b.name().to_string(), b.addr()))
            .collect();
        let mut ring = R::with_vnodes(vnodes);
        // The mod-N client's server list: a key goes to servers[hash % len].
        let mut servers: Vec<String> = fleet.iter().map(|b| b.name().to_string()).collect();
        for name in &servers {
            ring.add(name);
        }
        println!(
            "Real sockets: {} cache servers on 127.0.0.1, {key_count} keys per phase, sent through your \
             ring ({vnodes} vnodes/server) and through mod-N (each scheme has its own keys on the \
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
                    ring.add(&name);
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
                    ring.remove(&name);
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
                    percent(p.moved as u64, key_count as u64)
                };
                table.row(&[
                    label.to_string(),
                    scheme.to_string(),
                    servers.len().to_string(),
                    p.ok.to_string(),
                    p.failed.to_string(),
                    moved,
                    format!("{} ({})", p.cold, percent(p.cold as u64, key_count as u64)),
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
}

/// The `bounded_load` lab: a Zipf-skewed stream of requests over a plain ring and over bounded
/// rings with several balance factors.
pub mod bounded {
    use std::collections::{BTreeMap, BTreeSet, VecDeque};

    use crate::lab::{Table, bar_chart, percent};
    use crate::workload::ZipfKeys;

    /// What the lab needs from a ring with bounded loads.
    pub trait LabBoundedRing {
        fn with_factor(balance_factor: f64) -> Self;
        fn add(&mut self, node: &str);
        /// The node a plain ring would send `key` to.
        fn home(&self, key: &str) -> Option<&str>;
        fn assign(&mut self, key: &str) -> Option<String>;
        fn release(&mut self, node: &str) -> bool;
        fn load(&self, node: &str) -> usize;
    }

    #[derive(Clone)]
    pub struct Knobs {
        /// Nodes on the ring: "cache-0".."cache-{nodes-1}".
        pub nodes: usize,
        /// Points each node puts on the ring (shown in the lab's title).
        pub vnodes_per_node: usize,
        /// Distinct keys, drawn with Zipf skew `skew`.
        pub keys: usize,
        pub skew: f64,
        /// Requests held open at once (the oldest finishes when a new one arrives).
        pub in_flight: usize,
        /// Requests in the whole run.
        pub requests: usize,
        /// The factor shown in the bar chart, and the factors compared in the table.
        pub balance_factor: f64,
        pub compared: Vec<f64>,
    }

    /// What one run of the workload saw.
    struct Run {
        /// The most requests any node held at once.
        peak: usize,
        /// The largest (busiest node / mean) seen once in_flight requests are open.
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
    fn run_one<R: LabBoundedRing>(knobs: &Knobs, balance_factor: Option<f64>) -> Run {
        let Knobs {
            nodes,
            keys: key_count,
            skew,
            in_flight,
            requests,
            ..
        } = *knobs;
        let mut ring = R::with_factor(balance_factor.unwrap_or(1.0));
        for i in 0..nodes {
            ring.add(&format!("cache-{i}"));
        }
        // The plain ring's own bookkeeping (it uses only `home`).
        let mut plain_loads: BTreeMap<String, usize> = BTreeMap::new();
        let mut zipf = ZipfKeys::new(key_count, skew, 42);
        let mut open: VecDeque<String> = VecDeque::new();
        let (mut peak, mut peak_ratio, mut ratio_sum, mut steps, mut off_home) =
            (0, 0.0, 0.0, 0, 0);
        let mut seen = BTreeSet::new();
        let mut moved = BTreeSet::new();
        let mut hot_key_nodes = BTreeSet::new();
        for _ in 0..requests {
            if open.len() == in_flight {
                let done = open.pop_front().expect("in_flight > 0");
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
                Some(_) => (0..nodes).map(|i| ring.load(&format!("cache-{i}"))).max(),
                None => plain_loads.values().copied().max(),
            }
            .unwrap_or(0);
            peak = peak.max(busiest);
            if open.len() == in_flight {
                let ratio = busiest as f64 * nodes as f64 / in_flight as f64;
                peak_ratio = f64::max(peak_ratio, ratio);
                ratio_sum += ratio;
                steps += 1;
            }
        }
        let final_loads = (0..nodes)
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

    /// The bound with `in_flight` requests open: ⌈c × in_flight / nodes⌉.
    fn bound(c: f64, in_flight: usize, nodes: usize) -> String {
        format!("{}", (c * in_flight as f64 / nodes as f64).ceil())
    }

    pub fn run<R: LabBoundedRing>(knobs: Knobs) {
        let Knobs {
            nodes,
            keys: key_count,
            skew,
            in_flight,
            requests,
            balance_factor,
            vnodes_per_node,
            ref compared,
        } = knobs;
        println!(
            "{requests} requests over {key_count} keys (Zipf skew {skew}), {in_flight} in flight at a \
             time, {nodes} nodes with {vnodes_per_node} vnodes each: a fair share is {} in flight \
             per node.\n",
            in_flight / nodes
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
            compared
                .iter()
                .map(|&c| (format!("bounded c={c}"), Some(c))),
        );
        if !compared.contains(&balance_factor) {
            runs.push((format!("bounded c={balance_factor}"), Some(balance_factor)));
        }
        let mut plain_final = Vec::new();
        let mut chosen_final = Vec::new();
        for (label, factor) in &runs {
            let r = run_one::<R>(&knobs, *factor);
            table.row(&[
                label.clone(),
                factor.map_or("none".to_string(), |c| bound(c, in_flight, nodes)),
                r.peak.to_string(),
                format!("{:.2}", r.peak_ratio),
                format!("{:.2}", r.mean_ratio),
                percent(r.off_home as u64, requests as u64),
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
                Some(c) if *c == balance_factor => chosen_final = r.final_loads,
                _ => {}
            }
        }
        table.print();

        let mut bars = Vec::new();
        for ((node, plain), (_, bounded)) in plain_final.iter().zip(&chosen_final) {
            bars.push((format!("{node} plain"), *plain as f64));
            bars.push((format!("{node} c={balance_factor}"), *bounded as f64));
        }
        println!(
            "\nrequests in flight per node at the end (fair share {}, bound at c={balance_factor}: \
             {})\n{}\n",
            in_flight / nodes,
            bound(balance_factor, in_flight, nodes),
            bar_chart(&bars, 40)
        );
        println!(
            "The plain ring sends every request for a hot key to one node; the bound caps it and \
             spills the excess to the next node clockwise. A smaller c evens the load more but \
             moves more requests off their home node, where the cache is cold."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_matches_its_published_test_vectors() {
        // FNV-1a("a") is a published test vector; SplitMix64 seeded with 0 famously starts with
        // 0xe220a8397b1dcdaf.
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(mix64(0x9e37_79b9_7f4a_7c15), 0xe220_a839_7b1d_cdaf);
        assert_eq!(RING_SIZE, 2f64.powi(64));
    }

    #[test]
    fn every_position_read_is_counted() {
        let point = Point::new(42, "cache-a");
        let before = position_reads();
        assert_eq!(point.position(), 42);
        assert_eq!(point.position(), 42);
        assert_eq!(position_reads() - before, 2);
        assert_eq!(point.node, "cache-a");
    }
}
