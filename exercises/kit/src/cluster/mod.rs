//! A cluster of nodes on a simulated network: the platform of the distributed topics (11–14).
//!
//! Each node is a state machine the learner writes ([`Node`]): it reacts to a message or to a
//! tick of its clock and says what to send. The cluster runs every node as a host of a
//! [turmoil](https://docs.rs/turmoil) simulation: messages cross a simulated network with random
//! latency (so they reorder), partitions, loss and duplication; nodes crash, restart from what
//! they persisted, pause (a long GC) or run on a drifting clock. One seed gives one run: the same
//! seed replays the same messages in the same order, so a failing seed can be debugged.
//!
//! Why state machines rather than async code over sockets: the protocol is the lesson, not the
//! plumbing; and it is how production consensus libraries are built (etcd's raft and raft-rs are
//! driven the same way: step a message in, take the messages out).
//!
//! Keep anything whose order reaches the network in a `Vec` or `BTreeMap`: a `HashMap`'s
//! iteration order changes from one process to the next, and a replayed seed would not repeat.

mod faults;
mod history;
mod mailroom;
mod probe;
mod sim;

pub use faults::{Fault, FaultPlan};
pub use history::{History, KvModel, KvOp, KvRet, Model, Recorded, linearizable};
pub use probe::Probe;
pub use sim::{Client, Cluster, Config, Disk, NetStats};

use std::fmt::Debug;
use std::ops::Range;
use std::time::Duration;

use rand::rngs::StdRng;

/// A node's address. Nodes are `0..cluster size`; clients get the addresses after them, so a
/// node answers a client exactly as it answers a peer: `ctx.send(from, reply)`.
pub type NodeId = usize;

/// One node of a distributed protocol, as a state machine: the cluster calls it for each message
/// that arrives and for each tick of its clock, and sends whatever it put in the [`Ctx`].
pub trait Node: 'static {
    /// What nodes (and clients) send each other.
    type Msg: Clone + Debug + 'static;

    /// A message arrived from `from` (a node or a client).
    fn on_message(&mut self, from: NodeId, msg: Self::Msg, ctx: &mut Ctx<'_, Self::Msg>);

    /// The node's clock ticked (every [`Config::tick`] of its own time): the place for timeouts,
    /// heartbeats and retries.
    fn on_tick(&mut self, ctx: &mut Ctx<'_, Self::Msg>) {
        let _ = ctx;
    }
}

/// What a node can see and do while it handles one event.
pub struct Ctx<'a, M> {
    me: NodeId,
    nodes: usize,
    now: Duration,
    outbox: &'a mut Vec<(NodeId, M)>,
    rng: &'a mut StdRng,
}

impl<'a, M> Ctx<'a, M> {
    pub(crate) fn new(
        me: NodeId,
        nodes: usize,
        now: Duration,
        outbox: &'a mut Vec<(NodeId, M)>,
        rng: &'a mut StdRng,
    ) -> Self {
        Ctx {
            me,
            nodes,
            now,
            outbox,
            rng,
        }
    }

    /// This node's address.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Every node's address, this one's included (`0..cluster size`).
    pub fn nodes(&self) -> Range<NodeId> {
        0..self.nodes
    }

    /// Every other node's address, in order.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + use<M> {
        let me = self.me;
        (0..self.nodes).filter(move |&n| n != me)
    }

    /// This node's clock: time since the run started, as this node sees it. A node's clock may
    /// drift (run fast or slow) or be offset; nothing else in the cluster shares it.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Sends `msg` to `to` (a node or a client). Delivery is not guaranteed: the network may
    /// delay, reorder, drop or duplicate it, and nothing is sent back unless the receiver answers.
    pub fn send(&mut self, to: NodeId, msg: M) {
        self.outbox.push((to, msg));
    }

    /// This node's random source, seeded from the run's seed: the same seed, the same draws.
    pub fn rng(&mut self) -> &mut StdRng {
        self.rng
    }
}

#[cfg(test)]
mod tests;
