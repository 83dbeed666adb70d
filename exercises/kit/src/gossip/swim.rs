//! Scaffolding for `swim`: the protocol's messages and membership entries, its timing, and the
//! lab that runs a cluster with a lossy link and a crash.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use crate::cluster::{Cluster, Config, Fault, FaultPlan, Node, NodeId};
use crate::lab::Table;

/// What a member believes of another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Alive,
    Suspect,
    Dead,
}

/// One entry of a membership view: `node` is in `state` as of its `incarnation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub node: NodeId,
    pub state: State,
    pub incarnation: u64,
}

/// SWIM's messages; each carries the sender's view (the piggybacked dissemination).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// Are you alive? Answer `Ack` with the same `seq`.
    Ping { seq: u64, view: Vec<Member> },
    /// Please ping `target` for me and pass its `Ack` back with my `seq`.
    PingReq {
        seq: u64,
        target: NodeId,
        view: Vec<Member>,
    },
    /// The answer to the `Ping` (or the relayed answer to the `PingReq`) numbered `seq`.
    Ack { seq: u64, view: Vec<Member> },
}

/// The protocol's clocks and its indirect fanout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// One protocol period: one member probed per period.
    pub period: Duration,
    /// How long to wait for a direct ack before asking others to ping.
    pub ack_timeout: Duration,
    /// How long a suspicion stands before the member is declared dead.
    pub suspicion: Duration,
    /// How many members to ask for an indirect ping (k).
    pub indirect: usize,
}

/// The lab's knobs.
pub struct SwimKnobs<'a> {
    pub nodes: usize,
    pub loss: f64,
    pub lossy_link: f64,
    pub indirect: &'a [usize],
    pub timing: Timing,
    pub seeds: u64,
}

/// The lab: for each k, over several seeds, a cluster with one lossy link (nodes 0 and 1) and a
/// crash of the last node at 1 s: false suspicions and false deaths of live nodes, and how long
/// until every live node holds the crashed one dead.
pub fn lab<N: Node<Msg = Msg>>(
    knobs: SwimKnobs<'_>,
    make: impl Fn(NodeId, usize, Timing) -> N + Copy + 'static,
    state: fn(&N, NodeId) -> State,
) {
    let n = knobs.nodes;
    let crashed = n - 1;
    let crash_at = Duration::from_secs(1);
    let mut table = Table::new(&[
        "k (indirect)",
        "false suspicions",
        "false deaths",
        "crash known to all after",
        "messages per node per period",
    ]);
    for &k in knobs.indirect {
        let timing = Timing {
            indirect: k,
            ..knobs.timing
        };
        let (mut suspicions, mut deaths, mut detect, mut detected, mut sent) = (0, 0, 0.0, 0, 0);
        for seed in 0..knobs.seeds {
            let config = Config {
                nodes: n,
                loss: knobs.loss,
                ..Config::default()
            };
            let mut cluster = Cluster::new(config, seed, move |id| make(id, n, timing));
            cluster.faults(
                FaultPlan::new()
                    .at(Duration::ZERO, Fault::LossyLink(0, 1, knobs.lossy_link))
                    .at(crash_at, Fault::Crash(crashed)),
            );
            let seen: Rc<RefCell<BTreeMap<(NodeId, NodeId), State>>> = Rc::default();
            let all_dead_at: Rc<RefCell<BTreeMap<NodeId, Duration>>> = Rc::default();
            let (log, dead_log) = (Rc::clone(&seen), Rc::clone(&all_dead_at));
            let (mut s, mut d) = (0, 0);
            let counts = Rc::new(RefCell::new((0, 0)));
            let c = Rc::clone(&counts);
            cluster.observe(move |id, node, now| {
                for other in (0..n).filter(|&o| o != id) {
                    let st = state(node, other);
                    let before = log.borrow_mut().insert((id, other), st);
                    if before != Some(st) && other != crashed {
                        match st {
                            State::Suspect => c.borrow_mut().0 += 1,
                            State::Dead => c.borrow_mut().1 += 1,
                            State::Alive => {}
                        }
                    }
                    if other == crashed && st == State::Dead {
                        dead_log.borrow_mut().entry(id).or_insert(now);
                    }
                }
            });
            cluster.run_until(crash_at + Duration::from_secs(3));
            (s, d) = (s + counts.borrow().0, d + counts.borrow().1);
            suspicions += s;
            deaths += d;
            let all = all_dead_at.borrow();
            if all.len() == n - 1 {
                detect += (*all.values().max().unwrap() - crash_at).as_secs_f64();
                detected += 1;
            }
            sent += cluster.stats().sent_by_nodes;
        }
        let periods =
            (crash_at + Duration::from_secs(3)).as_secs_f64() / timing.period.as_secs_f64();
        table.row(&[
            k.to_string(),
            suspicions.to_string(),
            deaths.to_string(),
            if detected > 0 {
                format!(
                    "{:.0} ms ({detected}/{} runs)",
                    detect * 1000.0 / detected as f64,
                    knobs.seeds
                )
            } else {
                "never".to_string()
            },
            format!(
                "{:.1}",
                sent as f64 / knobs.seeds as f64 / n as f64 / periods
            ),
        ]);
    }
    println!(
        "{n} nodes, {:.0}% loss everywhere, {:.0}% on the link 0–1, node {crashed} crashes at 1 s; {} runs each:\n",
        knobs.loss * 100.0,
        knobs.lossy_link * 100.0,
        knobs.seeds
    );
    table.print();
}
