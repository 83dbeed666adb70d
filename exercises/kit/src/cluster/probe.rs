//! One event at a time, without a network: for tests that put a node in an exact situation.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::{Ctx, Node, NodeId};

/// Delivers chosen messages and ticks to a node directly, at chosen times, and returns what it
/// sent: the way to test one rule of a protocol (a stale vote request is refused) before
/// testing the whole protocol on a cluster.
pub struct Probe {
    me: NodeId,
    nodes: usize,
    now: Duration,
    rng: StdRng,
}

impl Probe {
    /// A probe for node `me` of a cluster of `nodes`, at time zero.
    pub fn new(me: NodeId, nodes: usize) -> Self {
        Probe {
            me,
            nodes,
            now: Duration::ZERO,
            rng: StdRng::seed_from_u64(0),
        }
    }

    /// Sets the node's clock for the next events.
    pub fn at(&mut self, now: Duration) -> &mut Self {
        self.now = now;
        self
    }

    /// Delivers `msg` from `from`; returns what the node sent, in order.
    pub fn deliver<N: Node>(
        &mut self,
        node: &mut N,
        from: NodeId,
        msg: N::Msg,
    ) -> Vec<(NodeId, N::Msg)> {
        let mut outbox = Vec::new();
        let mut ctx = Ctx::new(self.me, self.nodes, self.now, &mut outbox, &mut self.rng);
        node.on_message(from, msg, &mut ctx);
        outbox
    }

    /// Ticks the node's clock; returns what the node sent, in order.
    pub fn tick<N: Node>(&mut self, node: &mut N) -> Vec<(NodeId, N::Msg)> {
        let mut outbox = Vec::new();
        let mut ctx = Ctx::new(self.me, self.nodes, self.now, &mut outbox, &mut self.rng);
        node.on_tick(&mut ctx);
        outbox
    }
}
