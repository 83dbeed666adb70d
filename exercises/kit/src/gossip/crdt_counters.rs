//! `crdt_counters`: a cluster of nodes that apply client updates to a counter and gossip its
//! whole state to a few peers every tick, the clients that drive it, and the lab.
//!
//! The node is given: it applies each client update once (clients retry until acknowledged and
//! name each update, so a duplicated or retried request is not counted twice: that is another
//! lesson) and merges whatever state it receives. The counter is the learner's.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::rc::Rc;
use std::time::Duration;

use rand::RngExt;
use rand::rngs::StdRng;

use crate::cluster::{Cluster, Config, Ctx, FaultPlan, NetStats, Node, NodeId};
use crate::lab::Table;

/// What the cluster needs of a counter (the exercise implements it for its counters).
pub trait Counter: Clone + Debug + Default + 'static {
    /// Replica `me` adds `delta` (a grow-only counter is only given `delta >= 0`).
    fn update(&mut self, me: NodeId, delta: i64);
    /// Folds in the state another replica sent.
    fn merge_from(&mut self, other: &Self);
    /// The counter's value as this replica sees it.
    fn read(&self) -> i64;
}

/// What the nodes and clients send each other.
#[derive(Clone, Debug)]
pub enum Msg<C> {
    /// A client's update, named by the client's request number.
    Update { req: u64, delta: i64 },
    /// The update `req` is applied.
    Ack { req: u64 },
    /// A node's whole counter state, gossiped to a peer.
    State(C),
    /// One update, shipped as is (the lab's foil).
    Delta(i64),
}

/// A node: one replica of the counter.
pub struct CounterNode<C> {
    pub counter: C,
    fanout: usize,
    ship_deltas: bool,
    applied: BTreeSet<(NodeId, u64)>,
}

impl<C: Counter> CounterNode<C> {
    pub fn new(fanout: usize, ship_deltas: bool) -> Self {
        CounterNode {
            counter: C::default(),
            fanout,
            ship_deltas,
            applied: BTreeSet::new(),
        }
    }
}

impl<C: Counter> Node for CounterNode<C> {
    type Msg = Msg<C>;

    fn on_message(&mut self, from: NodeId, msg: Msg<C>, ctx: &mut Ctx<'_, Msg<C>>) {
        match msg {
            Msg::Update { req, delta } => {
                if self.applied.insert((from, req)) {
                    self.counter.update(ctx.me(), delta);
                    if self.ship_deltas {
                        for peer in ctx.peers() {
                            ctx.send(peer, Msg::Delta(delta));
                        }
                    }
                }
                ctx.send(from, Msg::Ack { req });
            }
            Msg::State(state) => self.counter.merge_from(&state),
            Msg::Delta(delta) => self.counter.update(ctx.me(), delta),
            Msg::Ack { .. } => {}
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Msg<C>>) {
        if self.ship_deltas {
            return;
        }
        let mut peers: Vec<NodeId> = ctx.peers().collect();
        for _ in 0..self.fanout.min(peers.len()) {
            let i = ctx.rng().random_range(0..peers.len());
            let peer = peers.swap_remove(i);
            ctx.send(peer, Msg::State(self.counter.clone()));
        }
    }
}

/// One run's shape: the cluster, the updates, the faults, and how long to gossip afterwards.
#[derive(Clone, Debug)]
pub struct Run {
    pub config: Config,
    pub fanout: usize,
    /// Each client's updates, in order: (node to send it to, delta).
    pub clients: Vec<Vec<(NodeId, i64)>>,
    pub faults: FaultPlan,
    /// Time to keep gossiping after the last update is acknowledged.
    pub settle: Duration,
    /// Ship each update to every peer once instead of gossiping states (the lab's foil).
    pub ship_deltas: bool,
}

impl Run {
    /// A random run over `nodes` nodes with loss, duplication and partitions: two clients, each
    /// sending `updates` updates to random nodes; deltas drawn from `deltas`.
    pub fn random(rng: &mut StdRng, nodes: usize, updates: usize, deltas: (i64, i64)) -> Self {
        let config = Config {
            nodes,
            loss: rng.random_range(0.0..0.2),
            duplicate: rng.random_range(0.1..0.5),
            limit: Duration::from_secs(5),
            ..Config::default()
        };
        let clients = (0..2)
            .map(|_| {
                (0..updates)
                    .map(|_| {
                        let to = rng.random_range(0..nodes);
                        (to, rng.random_range(deltas.0..=deltas.1))
                    })
                    .collect()
            })
            .collect();
        let faults = match nodes {
            1 => FaultPlan::new(),
            _ => FaultPlan::random(rng, nodes, Duration::from_millis(300), false),
        };
        Run {
            config,
            fanout: 1,
            clients,
            faults,
            settle: Duration::from_millis(400),
            ship_deltas: false,
        }
    }

    /// The sum of every update: the value every replica must end up showing.
    pub fn total(&self) -> i64 {
        self.clients.iter().flatten().map(|&(_, d)| d).sum()
    }
}

/// What a run left behind.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Each node's value at the end.
    pub values: Vec<i64>,
    /// Every value each node showed, in order, after each event it handled.
    pub seen: Vec<Vec<i64>>,
    /// When every replica first showed the true total, if it did (ms after the last ack).
    pub converged_after: Option<Duration>,
    pub stats: NetStats,
}

/// Runs `run` on a cluster of counters `C`, with `seed`.
pub fn simulate<C: Counter>(run: &Run, seed: u64) -> Outcome {
    let nodes = run.config.nodes;
    let (fanout, ship) = (run.fanout, run.ship_deltas);
    let mut cluster = Cluster::new(run.config.clone(), seed, move |_| {
        CounterNode::<C>::new(fanout, ship)
    });
    cluster.faults(run.faults.clone());
    let seen = Rc::new(RefCell::new(vec![Vec::new(); nodes]));
    let record = Rc::clone(&seen);
    cluster.observe(move |id, node: &CounterNode<C>, _| {
        let mut seen = record.borrow_mut();
        if seen[id].last() != Some(&node.counter.read()) {
            seen[id].push(node.counter.read());
        }
    });
    for updates in run.clients.clone() {
        cluster.client(move |client| async move {
            for (req, (to, delta)) in updates.into_iter().enumerate() {
                let req = req as u64;
                'retry: loop {
                    client.send(to, Msg::Update { req, delta });
                    let deadline = client.now() + Duration::from_millis(80);
                    while let Some(left) =
                        deadline.checked_sub(client.now()).filter(|d| !d.is_zero())
                    {
                        // Late or duplicated acks of earlier updates are skipped.
                        match client.recv(left).await {
                            Some((_, Msg::Ack { req: r })) if r == req => break 'retry,
                            Some(_) => continue,
                            None => break,
                        }
                    }
                }
            }
        });
    }
    cluster.run();
    let done = cluster.now();
    let total = run.total();
    let quiet = run.faults.events().last().map_or(Duration::ZERO, |e| e.0);
    let mut converged_after = None;
    // Gossip on until every replica shows the total with the network healed (a wrong counter
    // never gets there, or leaves it again: run until `settle` then).
    while cluster.now() < done + run.settle {
        let values: Vec<Option<i64>> = (0..nodes)
            .map(|id| cluster.node(id, |n| n.counter.read()))
            .collect();
        if values.iter().all(|v| *v == Some(total)) {
            converged_after.get_or_insert(cluster.now() - done);
            if cluster.now() >= quiet + run.config.tick * 3 && !run.ship_deltas {
                break;
            }
        } else {
            converged_after = None;
        }
        let next = cluster.now() + run.config.tick;
        cluster.run_until(next);
    }
    let values = (0..nodes)
        .map(|id| cluster.node(id, |n| n.counter.read()).unwrap_or(0))
        .collect();
    let seen = seen.borrow().clone();
    Outcome {
        values,
        seen,
        converged_after,
        stats: cluster.stats(),
    }
}

/// The lab's foil: a total that adds up the deltas it is sent. Its nodes ship each update to
/// every peer once, as an operation log delivered "at least once" would.
#[derive(Clone, Debug, Default)]
pub struct AddingCounter(i64);

impl Counter for AddingCounter {
    fn update(&mut self, _me: NodeId, delta: i64) {
        self.0 += delta;
    }

    fn merge_from(&mut self, _other: &Self) {}

    fn read(&self) -> i64 {
        self.0
    }
}

/// The lab's knobs.
#[derive(Clone, Debug)]
pub struct Knobs {
    pub nodes: usize,
    pub fanout: usize,
    pub loss: f64,
    pub duplicate: f64,
    pub updates_per_client: usize,
}

/// Runs the same workload on the learner's counter and on an adding counter; prints each node's
/// value against the true total, the time to converge and the messages sent.
pub fn lab<C: Counter>(name: &str, knobs: Knobs, seed: u64) {
    let mut rng = crate::workload::seeded_rng(seed);
    let mut run = Run::random(&mut rng, knobs.nodes, knobs.updates_per_client, (-3, 5));
    run.config.loss = knobs.loss;
    run.config.duplicate = knobs.duplicate;
    run.fanout = knobs.fanout;
    run.settle = Duration::from_secs(1);
    let total = run.total();
    println!(
        "{} nodes, fanout {}, loss {:.0}%, duplicates {:.0}%, {} updates (true total {total}), \
         random partitions in the first 300 ms\n",
        knobs.nodes,
        knobs.fanout,
        knobs.loss * 100.0,
        knobs.duplicate * 100.0,
        run.clients.iter().map(Vec::len).sum::<usize>(),
    );
    let mut table = Table::new(&[
        "counter",
        "values at the end",
        "off by (worst)",
        "converged after",
        "messages",
    ]);
    let mine = simulate::<C>(&run, seed);
    // The adding counter ships each update once (its `fresh`), so it gossips once per update.
    run.ship_deltas = true;
    let adding = simulate::<AddingCounter>(&run, seed);
    for (label, out) in [(name, &mine), ("adds what it receives", &adding)] {
        let worst = out
            .values
            .iter()
            .map(|v| (v - total).abs())
            .max()
            .unwrap_or(0);
        let values: Vec<String> = out.values.iter().map(i64::to_string).collect();
        let converged = match out.converged_after {
            Some(t) => format!("{} ms", t.as_millis()),
            None => "never".to_string(),
        };
        table.row(&[
            label.to_string(),
            values.join(" "),
            worst.to_string(),
            converged,
            out.stats.sent_by_nodes.to_string(),
        ]);
    }
    table.print();
    println!(
        "\nA state-based counter's merge forgets how often it heard a state; adding deltas \
         counts every duplicate and misses every loss."
    );
}
