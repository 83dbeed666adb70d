//! A key-value service on the replication harness: nodes that persist their term and log on a
//! [`Disk`], hand client requests and committed entries to the learner's state machine
//! ([`KvMachine`]), answer the clients it says to answer; clients that retry; the runs and the lab.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::replication::{Board, Entry, Index, Msg, Peer, Raft, Rules, Term};
use crate::cluster::{
    Cluster, Config, Ctx, Disk, FaultPlan, History, KvOp, KvRet, NetStats, Node, NodeId,
};
use crate::lab::Table;

/// A client's command, as it goes in the log: who asked, its request number, the operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub client: NodeId,
    pub seq: u64,
    pub op: KvOp,
}

/// A node's answer to a client's request `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Done: the operation's result.
    Done(KvRet),
    /// This node is not the leader: try another.
    NotLeader,
}

/// What goes over the network: Raft's messages, and clients' requests and answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvMsg {
    Raft(Msg<Command>),
    Request { seq: u64, op: KvOp },
    Response { seq: u64, answer: Answer },
}

/// The state machine the learner writes.
pub trait KvMachine: Default + 'static {
    /// A client's request arrived: answer now (`Some`) or append it to the log (`None`; the answer
    /// comes when it is applied).
    fn on_request(&mut self, raft: &mut Raft<Command>, cmd: Command) -> Option<Answer>;
    /// Applies what is newly committed; returns each applied entry's index and answer.
    fn apply_committed(&mut self, raft: &Raft<Command>) -> Vec<(Index, KvRet)>;
    /// The map as it stands (for checks and the lab).
    fn get(&self, key: u64) -> Option<u64>;
}

/// What a node keeps on its disk: its term and its log (Raft figure 2's persistent state).
#[derive(Clone, Debug, Default)]
pub struct Persisted {
    pub term: Term,
    pub log: Vec<Entry<Command>>,
}

/// A key-value node: a Raft peer with the rules `R`, the state machine `K`, and a disk.
pub struct KvNode<R, K> {
    pub peer: Peer<Command, R>,
    pub kv: K,
    disk: Disk<Persisted>,
    /// Requests this node appended, by index, to answer once applied.
    pending: BTreeMap<Index, Command>,
    stats: Rc<RefCell<KvStats>>,
}

/// Counted over a run, for the lab.
#[derive(Clone, Debug, Default)]
pub struct KvStats {
    /// Requests answered from a session (a retry of an applied request), and entries applied.
    pub answered_from_session: u64,
    pub applied: u64,
}

impl<R: Rules<Command>, K: KvMachine> KvNode<R, K> {
    /// A node rebuilt from `disk` (empty at first): its term and log survive, the rest is rebuilt.
    pub fn new(me: NodeId, nodes: usize, disk: Disk<Persisted>, board: Board) -> Self {
        let mut raft = Raft::new(me, nodes);
        (raft.term, raft.log) = disk.read(|d| (d.term, d.log.clone()));
        KvNode {
            peer: Peer::new(raft, board),
            kv: K::default(),
            disk,
            pending: BTreeMap::new(),
            stats: Rc::default(),
        }
    }

    fn persist(&self) {
        let raft = &self.peer.raft;
        let changed = self.disk.read(|d| {
            d.term != raft.term
                || d.log.len() != raft.log.len()
                || d.log.last().map(|e| e.term) != raft.log.last().map(|e| e.term)
        });
        if changed {
            self.disk
                .write(|d| (d.term, d.log) = (raft.term, raft.log.clone()));
        }
    }

    /// After every event: persist, then apply, then answer the requests that were applied.
    fn settle(&mut self, ctx: &mut Ctx<'_, KvMsg>) {
        self.persist();
        let applied = self.kv.apply_committed(&self.peer.raft);
        self.stats.borrow_mut().applied += applied.len() as u64;
        for (index, ret) in applied {
            let Some(cmd) = self.pending.remove(&index) else {
                continue;
            };
            if self.peer.raft.entry(index).map(|e| &e.cmd) == Some(&cmd) {
                let answer = Answer::Done(ret);
                ctx.send(
                    cmd.client,
                    KvMsg::Response {
                        seq: cmd.seq,
                        answer,
                    },
                );
            }
        }
    }
}

/// Runs a Raft step with the Raft messages wrapped in [`KvMsg`].
fn raft_step<R: Rules<Command>>(
    peer: &mut Peer<Command, R>,
    ctx: &mut Ctx<'_, KvMsg>,
    f: impl FnOnce(&mut Peer<Command, R>, &mut Ctx<'_, Msg<Command>>),
) {
    let mut out = Vec::new();
    let mut rng = StdRng::seed_from_u64(ctx.rng().random());
    let mut inner = Ctx::new(ctx.me(), ctx.nodes().len(), ctx.now(), &mut out, &mut rng);
    f(peer, &mut inner);
    for (to, m) in out {
        ctx.send(to, KvMsg::Raft(m));
    }
}

impl<R: Rules<Command>, K: KvMachine> Node for KvNode<R, K> {
    type Msg = KvMsg;

    fn on_message(&mut self, from: NodeId, msg: KvMsg, ctx: &mut Ctx<'_, KvMsg>) {
        match msg {
            KvMsg::Raft(m) => raft_step(&mut self.peer, ctx, |p, c| p.on_message(from, m, c)),
            KvMsg::Request { seq, op } => {
                let board = self.peer.board().clone();
                board.sync(&mut self.peer.raft);
                let cmd = Command {
                    client: from,
                    seq,
                    op,
                };
                let before = self.peer.raft.last_index();
                match self.kv.on_request(&mut self.peer.raft, cmd.clone()) {
                    Some(answer) => {
                        if answer != Answer::NotLeader {
                            self.stats.borrow_mut().answered_from_session += 1;
                        }
                        ctx.send(from, KvMsg::Response { seq, answer });
                    }
                    None if self.peer.raft.last_index() > before => {
                        self.pending.insert(self.peer.raft.last_index(), cmd);
                    }
                    None => {}
                }
                board.publish(&self.peer.raft);
            }
            KvMsg::Response { .. } => {}
        }
        self.settle(ctx);
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, KvMsg>) {
        raft_step(&mut self.peer, ctx, |p, c| p.on_tick(c));
        self.settle(ctx);
    }
}

/// The shape of a key-value run.
#[derive(Clone, Debug)]
pub struct KvKnobs {
    pub nodes: usize,
    pub clients: usize,
    pub ops_per_client: usize,
    pub keys: u64,
    pub duration: Duration,
    pub loss: f64,
    pub duplicate: f64,
    pub partitions: bool,
    pub crashes: bool,
    pub elect_every_ms: (u64, u64),
    /// How long a client waits for an answer before retrying (at another node).
    pub retry_after: Duration,
}

impl Default for KvKnobs {
    fn default() -> Self {
        KvKnobs {
            nodes: 3,
            clients: 3,
            ops_per_client: 12,
            keys: 2,
            duration: Duration::from_millis(800),
            loss: 0.05,
            duplicate: 0.05,
            partitions: true,
            crashes: true,
            elect_every_ms: (60, 200),
            retry_after: Duration::from_millis(60),
        }
    }
}

/// What a key-value run did.
pub struct KvOutcome {
    pub history: History<KvOp, KvRet>,
    pub net: NetStats,
    pub elections: u64,
    pub stats: KvStats,
    /// Client requests sent, first tries and retries.
    pub requests: u64,
    pub retries: u64,
    /// Each node at the end: its commit index, what it applied, and its map on the keys.
    pub last: Vec<(Index, Vec<Option<u64>>)>,
}

/// Runs `knobs.clients` clients against a cluster of key-value nodes; the clients record the
/// history; faults and elections as in [`super::runs`], crashes too (what a node persisted
/// survives).
pub fn run<R: Rules<Command>, K: KvMachine>(seed: u64, knobs: &KvKnobs) -> KvOutcome {
    let n = knobs.nodes;
    let mut rng = StdRng::seed_from_u64(seed);
    let config = Config {
        nodes: n,
        loss: knobs.loss,
        duplicate: knobs.duplicate,
        limit: knobs.duration,
        ..Config::default()
    };
    let step = config.step;
    let board = Board::new(n);
    let stats = Rc::new(RefCell::new(KvStats::default()));
    let (b, s) = (board.clone(), Rc::clone(&stats));
    let mut cluster = Cluster::with_disks(config, seed, move |id, disk| {
        let mut node = KvNode::<R, K>::new(id, n, disk, b.clone());
        node.stats = Rc::clone(&s);
        node
    });
    if knobs.partitions || knobs.crashes {
        let span = knobs.duration.mul_f64(0.6);
        let plan = FaultPlan::random(&mut rng, n, span, knobs.crashes);
        let plan = plan.events().iter().filter(|(_, f)| {
            knobs.partitions || !matches!(f, crate::cluster::Fault::Partition(..))
        });
        let plan = plan.fold(FaultPlan::new(), |p, (t, f)| p.at(*t, f.clone()));
        cluster.faults(plan);
    }
    let history = History::new();
    let counts = Rc::new(RefCell::new((0u64, 0u64)));
    for c in 0..knobs.clients {
        let (history, counts, board) = (history.clone(), Rc::clone(&counts), board.clone());
        let mut crng = StdRng::seed_from_u64(seed ^ (0xc11e << 8) ^ c as u64);
        let k = knobs.clone();
        cluster.client(move |client| async move {
            let mut target = crng.random_range(0..k.nodes);
            for seq in 1..=k.ops_per_client as u64 {
                let key = crng.random_range(0..k.keys);
                let op = match crng.random_bool(0.5) {
                    true => KvOp::Put(key, client.id() as u64 * 1000 + seq),
                    false => KvOp::Get(key),
                };
                let h = history.invoke(client.id(), op.clone(), client.now());
                let mut tries = 0;
                loop {
                    counts.borrow_mut().0 += 1;
                    counts.borrow_mut().1 += u64::from(tries > 0);
                    tries += 1;
                    client.send(
                        target,
                        KvMsg::Request {
                            seq,
                            op: op.clone(),
                        },
                    );
                    let deadline = client.now() + k.retry_after;
                    let answer = loop {
                        let left = deadline.saturating_sub(client.now());
                        match client.recv(left).await {
                            Some((_, KvMsg::Response { seq: s, answer })) if s == seq => {
                                break Some(answer);
                            }
                            Some(_) => continue,
                            None => break None,
                        }
                    };
                    match answer {
                        Some(Answer::Done(ret)) => {
                            history.complete(h, ret, client.now());
                            break;
                        }
                        // Not the leader, or no answer: try the leader the cluster knows, or
                        // another node at random (a real client follows the leader hints).
                        _ => {
                            target = match (board.newest_leader(), crng.random_bool(0.7)) {
                                (Some(l), true) => l,
                                _ => crng.random_range(0..k.nodes),
                            };
                            if answer.is_some() {
                                client.sleep(Duration::from_millis(5)).await;
                            }
                        }
                    }
                }
            }
        });
    }
    let elect_until = knobs.duration.mul_f64(0.6);
    let mut next_election = Duration::ZERO;
    let mut now = Duration::ZERO;
    let mut finished = false;
    while now < knobs.duration && !finished {
        for id in 0..n {
            board.set_up(id, cluster.is_up(id));
        }
        if now >= next_election && now < elect_until {
            board.random_election(&mut rng);
            let (lo, hi) = knobs.elect_every_ms;
            next_election = now + Duration::from_millis(rng.random_range(lo..=hi));
        }
        now += step;
        cluster.run_until(now);
        finished = history
            .entries()
            .iter()
            .filter(|r| r.returned.is_some())
            .count()
            == knobs.clients * knobs.ops_per_client;
    }
    let keys: Vec<u64> = (0..knobs.keys).collect();
    let last = (0..n)
        .filter_map(|id| {
            cluster.node(id, |node| {
                let map = keys.iter().map(|&k| node.kv.get(k)).collect();
                (node.peer.raft.commit, map)
            })
        })
        .collect();
    let (requests, retries) = *counts.borrow();
    let stats = stats.borrow().clone();
    KvOutcome {
        history,
        net: cluster.stats(),
        elections: board.elections(),
        stats,
        requests,
        retries,
        last,
    }
}

/// The lab: one run per loss rate; client latency, retries, and requests answered twice-safe.
pub fn lab<R: Rules<Command>, K: KvMachine>(knobs: &KvKnobs, losses: &[f64], seed: u64) {
    let mut table = Table::new(&[
        "loss",
        "elections",
        "ops done",
        "op p50",
        "op p99",
        "retries",
        "answered from session",
        "linearizable",
    ]);
    for &loss in losses {
        let k = KvKnobs {
            loss,
            ..knobs.clone()
        };
        let out = run::<R, K>(seed, &k);
        let entries = out.history.entries();
        let mut lat: Vec<Duration> = entries
            .iter()
            .filter_map(|r| r.returned.as_ref().map(|(t, _)| *t - r.invoked))
            .collect();
        lat.sort();
        let pct = |q: f64| {
            lat.get(((lat.len() as f64 - 1.0) * q) as usize)
                .map_or("-".to_string(), |d| format!("{} ms", d.as_millis()))
        };
        table.row(&[
            format!("{:.0}%", loss * 100.0),
            out.elections.to_string(),
            format!("{}/{}", lat.len(), entries.len()),
            pct(0.5),
            pct(0.99),
            out.retries.to_string(),
            out.stats.answered_from_session.to_string(),
            match out.history.check_linearizable() {
                Ok(()) => "yes".to_string(),
                Err(_) => "NO".to_string(),
            },
        ]);
    }
    table.print();
}
