//! Scaffolding for `broadcast`: the messages of the protocol (as Maelstrom's broadcast workload
//! names them), clients that submit values and retry until acknowledged, and the spread lab.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::cluster::{Cluster, Config, Node, NodeId};
use crate::lab::Table;

/// What clients and nodes send each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// Client → node: make `value` reach every node.
    Broadcast(u64),
    /// Node → client: the node holds `value` (and takes it from here).
    BroadcastOk(u64),
    /// Node → node: values the receiver may not hold yet.
    Gossip(Vec<u64>),
    /// Node → node: the receiver of a `Gossip` now holds these values.
    GossipOk(Vec<u64>),
}

/// Adds a client that submits each `(at, value)` (times since the start, in order) to a random
/// node of `0..nodes`, re-sending every `retry` until that value is acknowledged (by any node). Returns the
/// values acknowledged so far: only those must reach everyone.
pub fn submit<N: Node<Msg = Msg>>(
    cluster: &mut Cluster<N>,
    nodes: usize,
    seed: u64,
    values: Vec<(Duration, u64)>,
    retry: Duration,
) -> Rc<RefCell<Vec<u64>>> {
    let acked = Rc::new(RefCell::new(Vec::new()));
    let record = Rc::clone(&acked);
    cluster.client(move |c| async move {
        let mut rng = StdRng::seed_from_u64(seed);
        for (at, value) in values {
            if c.now() < at {
                c.sleep(at - c.now()).await;
            }
            'retry: loop {
                c.send(rng.random_range(0..nodes), Msg::Broadcast(value));
                let deadline = c.now() + retry;
                while c.now() < deadline {
                    match c.recv(deadline - c.now()).await {
                        Some((_, Msg::BroadcastOk(v))) if v == value => break 'retry,
                        Some(_) => {}
                        None => break,
                    }
                }
            }
            record.borrow_mut().push(value);
        }
    });
    acked
}

/// The lab's knobs.
pub struct SpreadKnobs<'a> {
    pub nodes: &'a [usize],
    pub fanouts: &'a [usize],
    pub loss: f64,
    pub values: u64,
    pub tick: Duration,
    pub seed: u64,
}

/// The lab: for each cluster size and fanout, how many gossip rounds (ticks) a value takes to
/// reach every node, and how many messages the nodes send per value.
pub fn spread_lab<N: Node<Msg = Msg>>(
    knobs: SpreadKnobs<'_>,
    make: impl Fn(usize) -> N + Copy + 'static,
    has: fn(&N, u64) -> bool,
) {
    let mut table = Table::new(&[
        "nodes",
        "fanout",
        "log2 N",
        "rounds to all (mean)",
        "rounds to all (max)",
        "messages per value",
        "reached all",
    ]);
    for &nodes in knobs.nodes {
        for &fanout in knobs.fanouts {
            let config = Config {
                nodes,
                tick: knobs.tick,
                loss: knobs.loss,
                limit: Duration::from_secs(5),
                ..Config::default()
            };
            let mut cluster = Cluster::new(config, knobs.seed, move |_| make(fanout));
            let gap = knobs.tick * 5;
            let values: Vec<(Duration, u64)> =
                (0..knobs.values).map(|v| (gap * v as u32, v)).collect();
            let submitted: BTreeMap<u64, Duration> = values.iter().map(|&(t, v)| (v, t)).collect();
            submit(&mut cluster, nodes, knobs.seed, values, knobs.tick * 3);
            // When each node first held each value.
            let first: Rc<RefCell<BTreeMap<(u64, NodeId), Duration>>> = Rc::default();
            let log = Rc::clone(&first);
            let count = knobs.values;
            cluster.observe(move |id, node, now| {
                for v in 0..count {
                    if has(node, v) {
                        log.borrow_mut().entry((v, id)).or_insert(now);
                    }
                }
            });
            let end = gap * knobs.values as u32 + knobs.tick * 60;
            cluster.run_until(end);
            let first = first.borrow();
            let mut rounds = Vec::new();
            for (&v, &at) in &submitted {
                let times: Vec<Duration> = (0..nodes)
                    .filter_map(|n| first.get(&(v, n)).copied())
                    .collect();
                if times.len() == nodes {
                    let last = *times.iter().max().unwrap();
                    rounds.push(last.saturating_sub(at).as_secs_f64() / knobs.tick.as_secs_f64());
                }
            }
            let mean = rounds.iter().sum::<f64>() / rounds.len().max(1) as f64;
            let max = rounds.iter().copied().fold(0.0, f64::max);
            table.row(&[
                nodes.to_string(),
                fanout.to_string(),
                format!("{:.1}", (nodes as f64).log2()),
                format!("{mean:.1}"),
                format!("{max:.1}"),
                format!(
                    "{:.0}",
                    cluster.stats().sent_by_nodes as f64 / knobs.values as f64
                ),
                format!("{}/{}", rounds.len(), knobs.values),
            ]);
        }
    }
    table.print();
}
