//! `version_vectors`: replicas of one key that take reads and writes from clients and sync their
//! state with a random peer every tick; the clients that read, think, then write what they saw;
//! a last-write-wins register as the lab's foil; and the lab.
//!
//! The node is given; the register's rules (what a write replaces, what a sync keeps) are the
//! learner's. Clients retry until answered and name each request, and a replica applies a
//! retried write once (exactly-once delivery is another exercise's lesson).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::rc::Rc;
use std::time::Duration;

use rand::RngExt;
use rand::rngs::StdRng;

use crate::cluster::{Client, Cluster, Config, Ctx, FaultPlan, Node, NodeId};
use crate::lab::Table;

/// What the cluster needs of a replicated register (the exercise implements it for its
/// sibling sets).
pub trait Register: Clone + Debug + Default + 'static {
    /// What a read hands the client, for it to send back with its next write.
    type Context: Clone + Debug + Default + 'static;
    /// The values a client reads (several if writes conflicted) and the context to write with.
    fn read(&self) -> (Vec<u64>, Self::Context);
    /// Replica `me`, whose own clock reads `now`, writes `value` for a client that had read
    /// `context`.
    fn write(&mut self, me: NodeId, now: Duration, value: u64, context: &Self::Context);
    /// Folds in a peer's state.
    fn sync(&mut self, other: &Self);
}

/// What replicas and clients send each other.
#[derive(Clone, Debug)]
pub enum Msg<R: Register> {
    Read {
        req: u64,
    },
    ReadOk {
        req: u64,
        values: Vec<u64>,
        context: R::Context,
    },
    Write {
        req: u64,
        value: u64,
        context: R::Context,
    },
    WriteOk {
        req: u64,
    },
    Sync(R),
}

/// One replica of the key.
pub struct Replica<R> {
    pub register: R,
    applied: BTreeSet<(NodeId, u64)>,
}

impl<R: Register> Node for Replica<R> {
    type Msg = Msg<R>;

    fn on_message(&mut self, from: NodeId, msg: Msg<R>, ctx: &mut Ctx<'_, Msg<R>>) {
        match msg {
            Msg::Read { req } => {
                let (values, context) = self.register.read();
                ctx.send(
                    from,
                    Msg::ReadOk {
                        req,
                        values,
                        context,
                    },
                );
            }
            Msg::Write {
                req,
                value,
                context,
            } => {
                if self.applied.insert((from, req)) {
                    let (me, now) = (ctx.me(), ctx.now());
                    self.register.write(me, now, value, &context);
                }
                ctx.send(from, Msg::WriteOk { req });
            }
            Msg::Sync(other) => self.register.sync(&other),
            Msg::ReadOk { .. } | Msg::WriteOk { .. } => {}
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Msg<R>>) {
        let peers: Vec<NodeId> = ctx.peers().collect();
        if !peers.is_empty() {
            let peer = peers[ctx.rng().random_range(0..peers.len())];
            ctx.send(peer, Msg::Sync(self.register.clone()));
        }
    }
}

/// One run's shape.
#[derive(Clone, Debug)]
pub struct Run {
    pub config: Config,
    pub clients: usize,
    /// Read-then-write rounds per client.
    pub rounds: usize,
    /// How long a client thinks between its read and its write (drawn up to this).
    pub think: Duration,
    pub faults: FaultPlan,
    /// Each node's clock: (offset ahead of true time, rate).
    pub clocks: Vec<(Duration, f64)>,
    /// Time to keep syncing after the last write is acknowledged.
    pub settle: Duration,
}

impl Run {
    /// A random run: `nodes` replicas, a few clients, loss, duplication, reordering and
    /// partitions during the writes, healed for the last part.
    pub fn random(rng: &mut StdRng, nodes: usize) -> Self {
        let config = Config {
            nodes,
            loss: rng.random_range(0.0..0.15),
            duplicate: rng.random_range(0.0..0.3),
            limit: Duration::from_secs(5),
            ..Config::default()
        };
        let faults = match nodes {
            1 => FaultPlan::new(),
            _ => FaultPlan::random(rng, nodes, Duration::from_millis(400), false),
        };
        Run {
            config,
            clients: rng.random_range(2..=3),
            rounds: rng.random_range(2..=4),
            think: Duration::from_millis(rng.random_range(0..=60)),
            faults,
            clocks: Vec::new(),
            settle: Duration::from_millis(300),
        }
    }
}

/// One acknowledged write: its value and the values the client had read before it (what it saw
/// and meant to replace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub value: u64,
    pub saw: Vec<u64>,
}

/// What a run left behind.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Every acknowledged write, in the order acknowledged.
    pub writes: Vec<Write>,
    /// Each replica's values at the end, sorted.
    pub finals: Vec<Vec<u64>>,
    /// The most values any read returned.
    pub most_siblings: usize,
}

impl Outcome {
    /// The acknowledged writes no acknowledged write saw: every one must survive.
    pub fn unreplaced(&self) -> Vec<u64> {
        let seen: BTreeSet<u64> = self.writes.iter().flat_map(|w| w.saw.clone()).collect();
        let mut out: Vec<u64> = self
            .writes
            .iter()
            .map(|w| w.value)
            .filter(|v| !seen.contains(v))
            .collect();
        out.sort_unstable();
        out
    }
}

/// Runs `run` on replicas of the register `R`, with `seed`.
pub fn simulate<R: Register>(run: &Run, seed: u64) -> Outcome {
    let nodes = run.config.nodes;
    let mut cluster = Cluster::new(run.config.clone(), seed, |_| Replica {
        register: R::default(),
        applied: BTreeSet::new(),
    });
    cluster.faults(run.faults.clone());
    for (id, &(offset, rate)) in run.clocks.iter().enumerate() {
        cluster.set_clock(id, offset, rate);
    }
    let writes = Rc::new(RefCell::new(Vec::new()));
    let most = Rc::new(RefCell::new(0));
    for c in 0..run.clients {
        let (writes, most) = (Rc::clone(&writes), Rc::clone(&most));
        let (rounds, think) = (run.rounds, run.think);
        let mut rng: StdRng = rand::SeedableRng::seed_from_u64(seed ^ (c as u64 + 1) << 40);
        cluster.client(move |client| async move {
            let mut req = 0;
            for round in 0..rounds {
                req += 1;
                let to = rng.random_range(0..nodes);
                let Msg::ReadOk {
                    values, context, ..
                } = call(&client, to, Msg::Read { req }, req).await
                else {
                    unreachable!("a read is answered with its values")
                };
                let most_yet = *most.borrow();
                *most.borrow_mut() = values.len().max(most_yet);
                client
                    .sleep(Duration::from_millis(
                        rng.random_range(0..=think.as_millis() as u64),
                    ))
                    .await;
                let value = (c as u64 + 1) * 1000 + round as u64;
                let to = rng.random_range(0..nodes);
                req += 1;
                let write = Msg::Write {
                    req,
                    value,
                    context,
                };
                call(&client, to, write, req).await;
                writes.borrow_mut().push(Write { value, saw: values });
            }
        });
    }
    cluster.run();
    let until = cluster.now() + run.settle;
    cluster.run_until(until);
    let finals = (0..nodes)
        .map(|id| {
            let mut values = cluster
                .node(id, |n| n.register.read().0)
                .unwrap_or_default();
            values.sort_unstable();
            values
        })
        .collect();
    let writes = writes.borrow().clone();
    let most_siblings = *most.borrow();
    Outcome {
        writes,
        finals,
        most_siblings,
    }
}

/// Sends `msg` to `to` and waits for the answer to `req`, sending again every 80 ms; answers to
/// earlier requests (late or duplicated) are skipped.
async fn call<R: Register>(client: &Client<Msg<R>>, to: NodeId, msg: Msg<R>, req: u64) -> Msg<R> {
    loop {
        client.send(to, msg.clone());
        let deadline = client.now() + Duration::from_millis(80);
        while let Some(left) = deadline.checked_sub(client.now()).filter(|d| !d.is_zero()) {
            match client.recv(left).await {
                Some((_, reply @ (Msg::ReadOk { req: r, .. } | Msg::WriteOk { req: r })))
                    if r == req =>
                {
                    return reply;
                }
                Some(_) => continue,
                None => break,
            }
        }
    }
}

/// The lab's foil: last write wins, by the coordinating replica's own clock (ties by replica).
#[derive(Clone, Debug, Default)]
pub struct LastWriteWins {
    latest: Option<(Duration, NodeId, u64)>,
}

impl Register for LastWriteWins {
    type Context = ();

    fn read(&self) -> (Vec<u64>, ()) {
        (self.latest.iter().map(|l| l.2).collect(), ())
    }

    fn write(&mut self, me: NodeId, now: Duration, value: u64, _: &()) {
        self.latest = self.latest.max(Some((now, me, value)));
    }

    fn sync(&mut self, other: &Self) {
        self.latest = self.latest.max(other.latest);
    }
}

/// The lab's knobs.
#[derive(Clone, Debug)]
pub struct Knobs {
    pub nodes: usize,
    pub clients: usize,
    pub rounds: usize,
    pub think: Duration,
    pub partition: Duration,
    /// How far each node's clock runs ahead of the previous node's.
    pub clock_skew: Duration,
    pub runs: u64,
}

/// Runs the same workloads on the learner's register and on last-write-wins; prints writes
/// acknowledged, writes lost (acknowledged, replaced by no write that saw them, gone) and
/// siblings.
pub fn lab<R: Register>(name: &str, knobs: Knobs) {
    let mut totals: BTreeMap<&str, (usize, usize, usize, usize)> = BTreeMap::new();
    for seed in 0..knobs.runs {
        let half: Vec<NodeId> = (0..knobs.nodes / 2).collect();
        let rest: Vec<NodeId> = (knobs.nodes / 2..knobs.nodes).collect();
        let mut faults = FaultPlan::new();
        if knobs.partition > Duration::ZERO && !half.is_empty() {
            faults = faults
                .at(Duration::ZERO, crate::cluster::Fault::Partition(half, rest))
                .at(knobs.partition, crate::cluster::Fault::Heal);
        }
        let run = Run {
            config: Config {
                nodes: knobs.nodes,
                limit: Duration::from_secs(10),
                ..Config::default()
            },
            clients: knobs.clients,
            rounds: knobs.rounds,
            think: knobs.think,
            faults,
            clocks: (0..knobs.nodes)
                .map(|i| (knobs.clock_skew * i as u32, 1.0))
                .collect(),
            settle: Duration::from_millis(300),
        };
        let outcomes = [
            (name, simulate::<R>(&run, seed)),
            ("last write wins", simulate::<LastWriteWins>(&run, seed)),
        ];
        for (label, out) in outcomes {
            let kept: BTreeSet<u64> = out.finals.iter().flatten().copied().collect();
            let lost = out
                .unreplaced()
                .iter()
                .filter(|v| !kept.contains(v))
                .count();
            let t = totals.entry(label).or_default();
            t.0 += out.writes.len();
            t.1 += lost;
            t.2 += out.finals.first().map_or(0, Vec::len);
            t.3 = t.3.max(out.most_siblings);
        }
    }
    println!(
        "{} runs: {} replicas, {} clients x {} read-then-write rounds, think up to {} ms, \
         partition for the first {} ms, clocks {} ms apart\n",
        knobs.runs,
        knobs.nodes,
        knobs.clients,
        knobs.rounds,
        knobs.think.as_millis(),
        knobs.partition.as_millis(),
        knobs.clock_skew.as_millis()
    );
    let mut table = Table::new(&[
        "register",
        "writes acked",
        "acked writes lost",
        "values at the end (sum)",
        "most siblings read",
    ]);
    for label in [name, "last write wins"] {
        let (acked, lost, end, most) = totals[label];
        table.row(&[
            label.to_string(),
            acked.to_string(),
            lost.to_string(),
            end.to_string(),
            most.to_string(),
        ]);
    }
    table.print();
    println!(
        "\nA lost write was acknowledged to its client, then silently overwritten by a write that \
         never saw it."
    );
}
