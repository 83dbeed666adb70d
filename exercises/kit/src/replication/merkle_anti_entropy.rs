//! `merkle_anti_entropy`: the hashes, the messages, two replicas driven against each other
//! directly (to count what a sync exchanges), a cluster of diverged replicas (to check that
//! they converge under faults), and the lab.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::RngExt;
use rand::rngs::StdRng;

use crate::cluster::{Cluster, Config, FaultPlan, Node, NodeId, Probe};
use crate::hashing::mix64;
use crate::lab::Table;

/// One key's version at a replica; `value: None` is a tombstone (a delete, kept so that it wins
/// over the older value it deleted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub version: u64,
    pub value: Option<u64>,
}

/// The bucket (leaf) of `key` in a tree of `depth`: the top `depth` bits of the key's hash.
pub fn bucket(key: u64, depth: u32) -> usize {
    match depth {
        0 => 0,
        _ => (mix64(key) >> (64 - depth)) as usize,
    }
}

/// The hash of one key's entry; a leaf's hash is the XOR of its entries' hashes (0 if empty).
pub fn entry_hash(key: u64, entry: &Entry) -> u64 {
    let value = entry.value.map_or(u64::MAX, mix64);
    mix64(mix64(key) ^ mix64(entry.version ^ 0x5bd1_e995) ^ value)
}

/// The hash of an inner node, from its two children's.
pub fn pair_hash(left: u64, right: u64) -> u64 {
    mix64(left ^ mix64(right ^ 0x9e37_79b9_7f4a_7c15))
}

/// What replicas send each other during a sync.
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    /// "My hashes of these nodes of level `level`" (level 0 is the root; index within the level).
    Hashes {
        level: u32,
        nodes: Vec<(usize, u64)>,
    },
    /// Every entry of some buckets; `reply`: the receiver answers with its own entries of the
    /// same buckets.
    Entries {
        buckets: Vec<usize>,
        entries: Vec<(u64, Entry)>,
        reply: bool,
    },
}

/// What a sync sent, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub messages: u64,
    pub hashes: u64,
    pub keys: u64,
}

impl Traffic {
    fn count(&mut self, msg: &Msg) {
        self.messages += 1;
        match msg {
            Msg::Hashes { nodes, .. } => self.hashes += nodes.len() as u64,
            Msg::Entries { entries, .. } => self.keys += entries.len() as u64,
        }
    }
}

/// Syncs `a` (node 0) with `b` (node 1) without a network: `a` ticks once (and starts a sync
/// with its only peer), then every message is delivered, in order, until none is left.
/// Returns what was sent.
pub fn sync_pair<N: Node<Msg = Msg>>(a: &mut N, b: &mut N) -> Traffic {
    let mut probes = [Probe::new(0, 2), Probe::new(1, 2)];
    let mut traffic = Traffic::default();
    let mut queue: Vec<(NodeId, NodeId, Msg)> = probes[0]
        .tick(a)
        .into_iter()
        .map(|(to, m)| (0, to, m))
        .collect();
    let mut next = 0;
    while next < queue.len() {
        assert!(next < 10_000, "a sync of two replicas never ended");
        let (from, to, msg) = queue[next].clone();
        next += 1;
        traffic.count(&msg);
        let sent = match to {
            0 => probes[0].deliver(a, from, msg),
            _ => probes[1].deliver(b, from, msg),
        };
        queue.extend(sent.into_iter().map(|(t, m)| (to, t, m)));
    }
    traffic
}

/// Diverged data for `nodes` replicas: `keys` keys everywhere, then `changes` writes and deletes,
/// each applied to a random subset of the replicas, with increasing versions.
pub fn diverged(
    rng: &mut StdRng,
    nodes: usize,
    keys: u64,
    changes: usize,
) -> Vec<Vec<(u64, Entry)>> {
    let base: Vec<(u64, Entry)> = (0..keys)
        .map(|k| {
            let entry = Entry {
                version: 1,
                value: Some(rng.random()),
            };
            (k * 7 + 3, entry)
        })
        .collect();
    let mut data = vec![base; nodes];
    for c in 0..changes {
        let key = match rng.random_bool(0.8) {
            true => rng.random_range(0..keys.max(1)) * 7 + 3,
            false => rng.random_range(0..keys.max(1)) * 7 + 5,
        };
        let entry = Entry {
            version: 2 + c as u64,
            value: rng.random_bool(0.75).then(|| rng.random()),
        };
        for replica in data.iter_mut() {
            if rng.random_bool(0.5) {
                replica.push((key, entry));
            }
        }
    }
    data
}

/// What every replica must hold after a sync: per key, the newest version any replica had.
pub fn newest(data: &[Vec<(u64, Entry)>]) -> BTreeMap<u64, Entry> {
    let mut out: BTreeMap<u64, Entry> = BTreeMap::new();
    for &(k, e) in data.iter().flatten() {
        let slot = out.entry(k).or_insert(e);
        if e.version > slot.version {
            *slot = e;
        }
    }
    out
}

/// Runs a cluster of `data.len()` replicas, built by `build(id, entries)`, with loss,
/// duplication, reordering and random partitions for `faulty`, then healed for `settle`; returns
/// each replica's data at the end (read by `data_of`).
pub fn simulate<N: Node<Msg = Msg>>(
    data: &[Vec<(u64, Entry)>],
    rng: &mut StdRng,
    build: impl Fn(NodeId, &[(u64, Entry)]) -> N + 'static,
    data_of: impl Fn(&N) -> BTreeMap<u64, Entry>,
) -> Vec<BTreeMap<u64, Entry>> {
    let nodes = data.len();
    let config = Config {
        nodes,
        loss: rng.random_range(0.0..0.2),
        duplicate: rng.random_range(0.0..0.3),
        ..Config::default()
    };
    let faulty = Duration::from_millis(300);
    let plan = match nodes {
        1 => FaultPlan::new(),
        _ => FaultPlan::random(rng, nodes, faulty, false),
    };
    let data = data.to_vec();
    let mut cluster = Cluster::new(config, rng.random(), move |id| build(id, &data[id]));
    cluster.faults(plan);
    cluster.run_until(faulty + Duration::from_millis(400));
    (0..nodes)
        .map(|id| cluster.node(id, &data_of).unwrap_or_default())
        .collect()
}

/// The lab: keys and hashes one sync of two replicas exchanges, against the data size and the
/// number of differing keys, next to what sending every key would cost.
pub fn lab<N: Node<Msg = Msg>>(
    depth: u32,
    sizes: &[u64],
    differences: &[usize],
    build: impl Fn(NodeId, &[(u64, Entry)]) -> N,
) {
    println!(
        "one sync of two replicas, tree depth {depth} ({} buckets)\n",
        1u64 << depth
    );
    let mut table = Table::new(&[
        "keys",
        "keys differing",
        "messages",
        "hashes sent",
        "keys sent",
        "keys a full scan sends",
    ]);
    let mut rng = crate::workload::seeded_rng(11);
    for &size in sizes {
        for &diff in differences {
            let mut data = diverged(&mut rng, 1, size, 0);
            let mut other = data[0].clone();
            for i in 0..diff as u64 {
                other.push((
                    i * 7 + 3,
                    Entry {
                        version: 9,
                        value: None,
                    },
                ));
            }
            data.push(other);
            let (mut a, mut b) = (build(0, &data[0]), build(1, &data[1]));
            let traffic = sync_pair(&mut a, &mut b);
            table.row(&[
                size,
                diff as u64,
                traffic.messages,
                traffic.hashes,
                traffic.keys,
                2 * size,
            ]);
        }
    }
    table.print();
    println!("\nKeys sent grow with the differences (times a bucket's size), not with the data.");
}
