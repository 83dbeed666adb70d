// Lamport and vector clocks — ordering events by what could have caused what, not by wall time.
//
// Wall clocks on different machines disagree, so "which write came first?" needs another answer.
// Lamport (1978) defined happens-before: a → b if a came earlier on the same node, or a sent a
// message b received, or through a chain of both. If neither a → b nor b → a, they are
// concurrent: two replicas updating one key unaware of each other is a conflict to resolve
// (Dynamo and Riak keep both versions), not an order to trust.
//
// Build both clocks. Every event, send and receive included, advances its node's clock; a message
// carries the sender's clock. A Lamport clock is one number: a → b implies L(a) < L(b), never the
// converse. A vector clock counts per node (a missing node counts 0); `compare` says Before
// exactly when a → b, After when b → a, Equal for the same reading, Concurrent otherwise: [1, 0]
// and [0, 1] are concurrent. Lab: a random message history; turn NODES and SEND_SHARE and count
// the concurrent pairs that Lamport timestamps put in an order no message established.

use std::collections::BTreeMap;

use sdlings_kit::ids_and_clocks::{Causality, NodeId, Step, causality_lab, random_history};

/// A vector clock: a count of events per node. A node that is not in the map counts 0.
#[derive(Debug, Clone, Default)]
pub struct VectorClock {
    counts: BTreeMap<NodeId, u64>,
}

impl VectorClock {
    /// A clock with these counts (others 0), e.g. `[(1, 1), (2, 0)]`.
    pub fn from_counts(counts: impl IntoIterator<Item = (NodeId, u64)>) -> Self {
        VectorClock {
            counts: counts.into_iter().collect(),
        }
    }

    /// The count of `node` (0 if the clock has never heard of it).
    pub fn get(&self, node: NodeId) -> u64 {
        self.counts.get(&node).copied().unwrap_or(0)
    }

    /// How many nodes the clock stores a count for.
    pub fn entries(&self) -> usize {
        self.counts.len()
    }
}

// ---- Your part -------------------------------------------------------------------------------

/// A Lamport clock: one counter per node.
#[derive(Debug, Clone, Default)]
pub struct Lamport {
    time: u64,
}

impl Lamport {
    /// A local event or a send: returns the event's timestamp (a send attaches it to the message).
    pub fn tick(&mut self) -> u64 {
        self.time += 1;
        self.time
    }

    /// The receipt of a message stamped `remote`: returns the receive event's timestamp.
    pub fn receive(&mut self, remote: u64) -> u64 {
        // Later than everything this node has seen, and than everything the sender had seen.
        self.time = self.time.max(remote) + 1;
        self.time
    }
}

impl VectorClock {
    /// A local event or a send at `node` (this clock's owner).
    pub fn tick(&mut self, node: NodeId) {
        *self.counts.entry(node).or_insert(0) += 1;
    }

    /// `node` (this clock's owner) receives a message stamped `remote`.
    pub fn receive(&mut self, node: NodeId, remote: &VectorClock) {
        // Everything the sender knew of, this node now knows of too: the larger count per node,
        // including nodes only the sender had heard of.
        for (&other, &count) in &remote.counts {
            let mine = self.counts.entry(other).or_insert(0);
            *mine = (*mine).max(count);
        }
        self.tick(node);
    }

    /// How the event stamped `self` relates to the event stamped `other`.
    pub fn compare(&self, other: &VectorClock) -> Causality {
        let (mut less, mut greater) = (false, false);
        // Every node either clock knows: a missing entry is 0, not "skip it".
        for node in self.counts.keys().chain(other.counts.keys()) {
            let (mine, theirs) = (self.get(*node), other.get(*node));
            less |= mine < theirs;
            greater |= mine > theirs;
        }
        match (less, greater) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::Before,
            (false, true) => Causality::After,
            (true, true) => Causality::Concurrent,
        }
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Nodes in the history, events in it, and the chance that an event is a send.
const NODES: u32 = 4;
const EVENTS: usize = 400;
const SEND_SHARE: f64 = 0.1;

/// Plays `history` through a Lamport clock and a vector clock per node: each event's timestamps.
pub fn stamp(history: &[Step]) -> Vec<(u64, VectorClock)> {
    let mut lamport: BTreeMap<NodeId, Lamport> = BTreeMap::new();
    let mut vector: BTreeMap<NodeId, VectorClock> = BTreeMap::new();
    let mut messages: BTreeMap<usize, (u64, VectorClock)> = BTreeMap::new();
    let mut stamps = Vec::new();
    for step in history {
        let node = step.node();
        let (l, v) = (
            lamport.entry(node).or_default(),
            vector.entry(node).or_default(),
        );
        let time = match *step {
            Step::Receive { msg, .. } => {
                let (remote_l, remote_v) = &messages[&msg];
                v.receive(node, remote_v);
                l.receive(*remote_l)
            }
            _ => {
                v.tick(node);
                l.tick()
            }
        };
        if let Step::Send { msg, .. } = *step {
            messages.insert(msg, (time, v.clone()));
        }
        stamps.push((time, v.clone()));
    }
    stamps
}

fn main() {
    let nodes: Vec<NodeId> = (1..=NODES).collect();
    let history = random_history(
        &mut sdlings_kit::workload::seeded_rng(1),
        &nodes,
        EVENTS,
        SEND_SHARE,
    );
    let stamps = stamp(&history);
    let lamport: Vec<u64> = stamps.iter().map(|s| s.0).collect();
    causality_lab(
        &history,
        &lamport,
        |e| stamps[e].1.entries(),
        |a, b| stamps[a].1.compare(&stamps[b].1),
    );
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;
    use Causality::*;

    fn vc(counts: &[(NodeId, u64)]) -> VectorClock {
        VectorClock::from_counts(counts.iter().copied())
    }

    #[test]
    fn lamport_counts_events_and_a_receive_takes_the_max_plus_one() {
        let mut clock = Lamport::default();
        assert_eq!(
            (clock.tick(), clock.tick()),
            (1, 2),
            "every event advances the clock by one"
        );
        assert_eq!(clock.receive(7), 8, "a message stamped 7: later than 7");
        assert_eq!(
            clock.receive(3),
            9,
            "a message stamped 3: later than this node's own 8"
        );
        assert_eq!(clock.receive(9), 10, "a tie: still one more than both");
        assert_eq!(clock.tick(), 11);
    }

    #[test]
    fn one_zero_and_zero_one_are_concurrent_not_before_or_after() {
        let (a, b) = (vc(&[(1, 1), (2, 0)]), vc(&[(1, 0), (2, 1)]));
        assert_eq!(
            a.compare(&b),
            Concurrent,
            "[1,0] vs [0,1]: each saw an event the other did not"
        );
        assert_eq!(b.compare(&a), Concurrent);
        let later = vc(&[(1, 1), (2, 1)]);
        assert_eq!(
            a.compare(&later),
            Before,
            "[1,0] <= [1,1] in every entry, and differs"
        );
        assert_eq!(later.compare(&a), After);
        assert_eq!(later.compare(&later.clone()), Equal);
    }

    #[test]
    fn a_smaller_lamport_timestamp_does_not_mean_happened_before() {
        let (mut p, mut q) = (Lamport::default(), Lamport::default());
        let (mut vp, mut vq) = (VectorClock::default(), VectorClock::default());
        let q1 = q.tick();
        vq.tick(2);
        let p2 = (p.tick(), p.tick()).1;
        vp.tick(1);
        vp.tick(1);
        assert!(q1 < p2, "L = {q1} at node 2, L = {p2} at node 1");
        assert_eq!(
            vq.compare(&vp),
            Concurrent,
            "no message links the two events, so they are concurrent whatever Lamport says"
        );
    }

    #[test]
    fn a_node_missing_from_a_clock_counts_zero() {
        let cases: [(&[(NodeId, u64)], &[(NodeId, u64)], Causality); 7] = [
            (&[(1, 1)], &[(1, 1), (2, 0)], Equal),
            (&[], &[(5, 0)], Equal),
            (&[(1, 1)], &[(1, 1), (2, 1)], Before),
            (&[], &[(9, 1)], Before),
            (&[(1, 2), (3, 1)], &[(1, 2)], After),
            (&[(2, 1)], &[(1, 1)], Concurrent),
            (&[(1, 1), (2, 5)], &[(1, 2), (3, 1)], Concurrent),
        ];
        for (a, b, expected) in cases {
            assert_eq!(
                vc(a).compare(&vc(b)),
                expected,
                "{a:?} vs {b:?}: compare over the nodes either clock knows, a missing one as 0"
            );
        }
    }

    #[test]
    fn a_receive_takes_the_larger_count_per_node_then_counts_its_own_event() {
        let mut clock = vc(&[(1, 2), (2, 1)]);
        clock.receive(1, &vc(&[(1, 1), (2, 3), (3, 1)]));
        let counts: Vec<u64> = (1..=3).map(|n| clock.get(n)).collect();
        assert_eq!(
            counts,
            [3, 3, 1],
            "max(2, 1) + 1 for the receiver, max(1, 3), and node 3's 1"
        );
        clock.tick(1);
        assert_eq!(clock.get(1), 4);
    }

    #[test]
    fn vector_clocks_agree_with_happens_before_over_random_histories() {
        sdlings_kit::property::for_seeds(100, |rng| {
            let node_count = rng.random_range(1..=4);
            let nodes: Vec<NodeId> = (0..node_count)
                .map(|i| i * 100 + rng.random_range(0..100))
                .collect();
            let (steps, send_share) = (rng.random_range(1..=40), rng.random_range(0.1..0.7));
            let history = random_history(rng, &nodes, steps, send_share);
            let stamps = stamp(&history);
            // The reference: before[e] holds the events that happen before e, the transitive
            // closure of program order and send -> receive, built in the history's order.
            let mut before: Vec<u128> = Vec::new();
            let mut last_at: BTreeMap<NodeId, usize> = BTreeMap::new();
            let mut sent_by: BTreeMap<usize, usize> = BTreeMap::new();
            for (e, step) in history.iter().enumerate() {
                let mut set = 0u128;
                let mut edge = |p: usize| set |= before[p] | 1 << p;
                if let Some(&p) = last_at.get(&step.node()) {
                    edge(p);
                }
                match *step {
                    Step::Send { msg, .. } => _ = sent_by.insert(msg, e),
                    Step::Receive { msg, .. } => edge(sent_by[&msg]),
                    Step::Local(_) => {}
                }
                before.push(set);
                last_at.insert(step.node(), e);
            }
            let hb = |a: usize, b: usize| before[b] >> a & 1 == 1;
            for (b, (lb, vb)) in stamps.iter().enumerate() {
                for node in &nodes {
                    let seen =
                        (0..=b).filter(|&a| history[a].node() == *node && (a == b || hb(a, b)));
                    assert_eq!(
                        vb.get(*node),
                        seen.count() as u64,
                        "{history:?}\nevent {b}: its count for node {node} is the number of events at {node} that happened before it (or are it)"
                    );
                }
                for (a, (la, va)) in stamps.iter().enumerate() {
                    let expected = match (a == b, hb(a, b), hb(b, a)) {
                        (true, _, _) => Equal,
                        (_, true, _) => Before,
                        (_, _, true) => After,
                        _ => Concurrent,
                    };
                    assert_eq!(va.compare(vb), expected, "{history:?}\nevents {a} and {b}");
                    if hb(a, b) {
                        assert!(
                            la < lb,
                            "{history:?}\nevent {a} -> {b}, so L({a}) = {la} < L({b}) = {lb}"
                        );
                    }
                }
            }
            // And Lamport's rule exactly: one more than the node's last event or the message.
            let mut reference: BTreeMap<NodeId, u64> = BTreeMap::new();
            for (e, step) in history.iter().enumerate() {
                let mine = reference.entry(step.node()).or_default();
                *mine = match *step {
                    Step::Receive { msg, .. } => {
                        let sent = history
                            .iter()
                            .position(|s| matches!(*s, Step::Send { msg: m, .. } if m == msg));
                        (*mine).max(stamps[sent.unwrap()].0) + 1
                    }
                    _ => *mine + 1,
                };
                assert_eq!(
                    stamps[e].0, *mine,
                    "{history:?}\nthe Lamport timestamp of event {e}"
                );
            }
        });
    }
}
