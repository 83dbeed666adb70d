// Broadcast — make every value a client hands to any node reach every node, over a network
// that loses messages and splits in two.
//
// Cluster membership, configuration changes, cache invalidations and chat rooms all need "tell
// everyone": Consul and Serf spread events by gossip, Cassandra spreads its ring state the same
// way. A node cannot wait for every peer (some are down or cut off), so it answers the client at
// once and takes the value from there: a few peers each round, and again until they confirm.
//
// Build `BroadcastNode`. The property: once partitions heal and the network is quiet a while,
// every node holds every value a client was told was accepted (fire-and-forget loses some to
// loss and partitions), and then the nodes go silent: no value is sent again to a peer known
// to hold it (gossip that never stops costs the network forever).
//
// Lab: turn NODES and FANOUTS; watch the rounds to reach everyone grow like log N (and shrink
// with the fanout) while the messages per value grow with N.

use std::collections::{BTreeMap, BTreeSet};

use rand::RngExt;
use sdlings_kit::cluster::{Ctx, Node, NodeId};
use sdlings_kit::gossip::broadcast::{Msg, SpreadKnobs, spread_lab};

// ---- Your part -------------------------------------------------------------------------------

pub struct BroadcastNode {
    /// How many peers to gossip to per tick.
    fanout: usize,
    /// Every value this node holds.
    values: BTreeSet<u64>,
    /// For each peer, the values it is known to hold: it acknowledged them, or sent them to us.
    known: BTreeMap<NodeId, BTreeSet<u64>>,
}

impl BroadcastNode {
    pub fn new(fanout: usize) -> Self {
        BroadcastNode {
            fanout,
            values: BTreeSet::new(),
            known: BTreeMap::new(),
        }
    }

    /// The values this node holds.
    pub fn values(&self) -> &BTreeSet<u64> {
        &self.values
    }
}

impl Node for BroadcastNode {
    type Msg = Msg;

    /// A client's `Broadcast` (answer `BroadcastOk`, every time: the client may be retrying a
    /// lost answer), a peer's `Gossip` (answer `GossipOk` with its values) or a peer's `GossipOk`.
    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::Broadcast(value) => {
                self.values.insert(value);
                ctx.send(from, Msg::BroadcastOk(value));
            }
            Msg::Gossip(values) => {
                self.values.extend(&values);
                // The sender holds what it sent: no need to send it back.
                self.known.entry(from).or_default().extend(&values);
                // Acknowledge all of them, old ones too: the sender is waiting for exactly that.
                ctx.send(from, Msg::GossipOk(values));
            }
            Msg::GossipOk(values) => self.known.entry(from).or_default().extend(values),
            Msg::BroadcastOk(_) => {}
        }
    }

    /// Each tick: send up to `fanout` peers, picked at random among those that may miss some
    /// values, every value they are not known to hold. Unacknowledged values go again next tick.
    fn on_tick(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let mut behind: Vec<(NodeId, Vec<u64>)> = ctx
            .peers()
            .map(|peer| {
                let known = self.known.get(&peer);
                let missing = self
                    .values
                    .iter()
                    .filter(|v| known.is_none_or(|k| !k.contains(v)))
                    .copied()
                    .collect();
                (peer, missing)
            })
            .filter(|(_, missing): &(NodeId, Vec<u64>)| !missing.is_empty())
            .collect();
        // At random, not the first ones: a peer cut off by a partition must not block the rest.
        for _ in 0..self.fanout.min(behind.len()) {
            let pick = ctx.rng().random_range(0..behind.len());
            let (peer, missing) = behind.swap_remove(pick);
            ctx.send(peer, Msg::Gossip(missing));
        }
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Cluster sizes and fanouts to compare, the network's loss, and the values broadcast per run.
const NODES: [usize; 3] = [4, 8, 16];
const FANOUTS: [usize; 2] = [1, 3];
const LOSS: f64 = 0.05;
const VALUES: u64 = 10;
/// One gossip round.
const TICK_MS: u64 = 20;

fn main() {
    let knobs = SpreadKnobs {
        nodes: &NODES,
        fanouts: &FANOUTS,
        loss: LOSS,
        values: VALUES,
        tick: std::time::Duration::from_millis(TICK_MS),
        seed: 1,
    };
    spread_lab(knobs, BroadcastNode::new, |n, v| n.values().contains(&v));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sdlings_kit::cluster::{Cluster, Config, Fault, FaultPlan, Probe};
    use sdlings_kit::gossip::broadcast::submit;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn gossip_to(out: &[(NodeId, Msg)]) -> Vec<(NodeId, Vec<u64>)> {
        let mut sent: Vec<(NodeId, Vec<u64>)> = out
            .iter()
            .filter_map(|(to, m)| match m {
                Msg::Gossip(vs) => Some((*to, vs.clone())),
                _ => None,
            })
            .collect();
        sent.sort();
        sent
    }

    #[test]
    fn a_client_broadcast_is_acknowledged_every_time_it_is_sent() {
        let (mut node, mut probe) = (BroadcastNode::new(1), Probe::new(0, 2));
        for attempt in 1..=2 {
            assert_eq!(
                probe.deliver(&mut node, 5, Msg::Broadcast(7)),
                vec![(5, Msg::BroadcastOk(7))],
                "attempt {attempt}: the client retries when an answer is lost, and a value the \
                 node already holds must be acknowledged again, or the client waits forever"
            );
        }
        assert_eq!(node.values(), &BTreeSet::from([7]));
    }

    #[test]
    fn a_gossip_is_acknowledged_with_all_its_values_old_and_new() {
        let (mut node, mut probe) = (BroadcastNode::new(1), Probe::new(1, 3));
        probe.deliver(&mut node, 5, Msg::Broadcast(1));
        assert_eq!(
            probe.deliver(&mut node, 0, Msg::Gossip(vec![1, 2])),
            vec![(0, Msg::GossipOk(vec![1, 2]))],
            "node 0 waits for an acknowledgement of 1 and 2: acknowledging only the new value 2 \
             makes it resend 1 forever"
        );
        assert_eq!(node.values(), &BTreeSet::from([1, 2]));
    }

    #[test]
    fn a_value_is_resent_each_tick_until_the_peer_acknowledges_it_then_never_again() {
        let (mut node, mut probe) = (BroadcastNode::new(1), Probe::new(0, 2));
        probe.deliver(&mut node, 5, Msg::Broadcast(7));
        for tick in 1..=2 {
            assert_eq!(
                gossip_to(&probe.tick(&mut node)),
                vec![(1, vec![7])],
                "tick {tick}: peer 1 has not acknowledged 7, so 7 goes again (the last one may \
                 have been lost)"
            );
        }
        probe.deliver(&mut node, 1, Msg::GossipOk(vec![7]));
        for _ in 0..3 {
            assert_eq!(
                probe.tick(&mut node),
                vec![],
                "peer 1 acknowledged 7 and nothing else is new: a quiet node sends nothing"
            );
        }
        probe.deliver(&mut node, 5, Msg::Broadcast(8));
        assert_eq!(
            gossip_to(&probe.tick(&mut node)),
            vec![(1, vec![8])],
            "a new value 8: peer 1 gets 8 only, not the 7 it already acknowledged"
        );
    }

    #[test]
    fn a_peer_that_sent_a_value_is_not_sent_it_back() {
        let (mut node, mut probe) = (BroadcastNode::new(2), Probe::new(0, 3));
        probe.deliver(&mut node, 1, Msg::Gossip(vec![4]));
        assert_eq!(
            gossip_to(&probe.tick(&mut node)),
            vec![(2, vec![4])],
            "peer 1 gave us 4, so it holds it: only peer 2 may miss it"
        );
    }

    #[test]
    fn one_peers_acknowledgement_does_not_count_for_the_others() {
        let (mut node, mut probe) = (BroadcastNode::new(2), Probe::new(0, 3));
        probe.deliver(&mut node, 5, Msg::Broadcast(9));
        probe.deliver(&mut node, 1, Msg::GossipOk(vec![9]));
        assert_eq!(
            gossip_to(&probe.tick(&mut node)),
            vec![(2, vec![9])],
            "peer 1 acknowledged 9, peer 2 did not: 9 still goes to peer 2"
        );
    }

    #[test]
    fn an_acknowledgement_covers_only_the_values_it_lists() {
        let (mut node, mut probe) = (BroadcastNode::new(1), Probe::new(0, 2));
        probe.deliver(&mut node, 5, Msg::Broadcast(7));
        assert_eq!(gossip_to(&probe.tick(&mut node)), vec![(1, vec![7])]);
        // 8 arrives while the gossip of 7 is on its way; then peer 1 acknowledges 7.
        probe.deliver(&mut node, 5, Msg::Broadcast(8));
        probe.deliver(&mut node, 1, Msg::GossipOk(vec![7]));
        assert_eq!(
            gossip_to(&probe.tick(&mut node)),
            vec![(1, vec![8])],
            "peer 1 acknowledged 7 only: it never saw 8, which must still go to it"
        );
        probe.deliver(&mut node, 1, Msg::GossipOk(vec![8]));
        assert_eq!(
            probe.tick(&mut node),
            vec![],
            "peer 1 has now acknowledged 7 and then 8: it holds both (an acknowledgement adds \
             to what the peer is known to hold, it does not replace it)"
        );
    }

    #[test]
    fn each_tick_gossips_to_fanout_different_peers_among_those_that_miss_values() {
        let (mut node, mut probe) = (BroadcastNode::new(2), Probe::new(0, 4));
        probe.deliver(&mut node, 5, Msg::Broadcast(7));
        for tick in 1..=4 {
            let sent = gossip_to(&probe.tick(&mut node));
            let peers: BTreeSet<NodeId> = sent.iter().map(|(peer, _)| *peer).collect();
            assert!(
                sent.len() == 2 && peers.len() == 2 && sent.iter().all(|(_, vs)| vs == &[7]),
                "tick {tick}: fanout 2, and peers 1, 2 and 3 all miss 7: send 7 to exactly two \
                 different peers, got {sent:?}"
            );
        }
        probe.deliver(&mut node, 1, Msg::GossipOk(vec![7]));
        for tick in 1..=4 {
            assert_eq!(
                gossip_to(&probe.tick(&mut node)),
                vec![(2, vec![7]), (3, vec![7])],
                "tick {tick}: fanout 2, and only peers 2 and 3 still miss 7: both get it, once \
                 each (a turn given to peer 1, which holds everything, is a turn lost)"
            );
        }
        probe.deliver(&mut node, 2, Msg::GossipOk(vec![7]));
        assert_eq!(
            gossip_to(&probe.tick(&mut node)),
            vec![(3, vec![7])],
            "only peer 3 misses 7: it alone gets a gossip"
        );
    }

    #[test]
    fn gossip_routes_around_unreachable_peers_during_a_partition() {
        sdlings_kit::property::for_seeds(20, |rng| {
            let seed = rng.random();
            let config = Config {
                nodes: 5,
                ..Config::default()
            };
            let mut cluster = Cluster::new(config, seed, |_| BroadcastNode::new(2));
            // Node 0's first two peers are cut off; 3 and 4 are on its side.
            cluster.faults(FaultPlan::new().at(ms(0), Fault::Partition(vec![1, 2], vec![0, 3, 4])));
            cluster.client(|c| async move {
                c.send(0, Msg::Broadcast(42));
                c.recv(ms(100)).await;
            });
            cluster.run_until(ms(300));
            for n in [3, 4] {
                assert_eq!(
                    cluster.node(n, |node| node.values().contains(&42)),
                    Some(true),
                    "seed {seed}: node {n} is on node 0's side of the partition and should hold \
                     42 after 15 rounds; pick peers at random, or the unreachable ones take \
                     every turn"
                );
            }
        });
    }

    #[test]
    fn after_partitions_heal_every_acknowledged_value_is_everywhere_and_the_network_goes_quiet() {
        sdlings_kit::property::for_seeds(100, |rng| {
            let seed: u64 = rng.random();
            let fanout = rng.random_range(1..=3);
            let config = Config {
                nodes: 5,
                loss: 0.2,
                duplicate: 0.05,
                step: ms(10),
                latency: (ms(10), ms(30)),
                limit: ms(1000),
                ..Config::default()
            };
            let mut cluster = Cluster::new(config, seed, move |_| BroadcastNode::new(fanout));
            // Partitions until 320 ms (the plan is healed for its last fifth); values until 250.
            cluster.faults(FaultPlan::random(rng, 5, ms(400), false));
            let mut acked = Vec::new();
            for client in 0..2 {
                let mut values: Vec<(Duration, u64)> = (0..4)
                    .map(|i| (ms(rng.random_range(0..250)), client * 100 + i))
                    .collect();
                values.sort();
                acked.push(submit(&mut cluster, 5, rng.random(), values, ms(40)));
            }
            assert!(
                cluster.run(),
                "seed {seed}: every broadcast is acknowledged within 1 s"
            );
            // The last value was acknowledged now; the last partition healed by 320 ms.
            let settle = cluster.now().max(ms(320)) + ms(300);
            cluster.run_until(settle);
            let acked: BTreeSet<u64> = acked.iter().flat_map(|a| a.borrow().clone()).collect();
            assert_eq!(
                acked.len(),
                8,
                "seed {seed}: every broadcast is acknowledged"
            );
            for n in 0..5 {
                let held = cluster.node(n, |node| node.values().clone()).unwrap();
                assert!(
                    acked.is_subset(&held),
                    "seed {seed}, fanout {fanout}: 300 ms after the last partition healed and the \
                     last broadcast was acknowledged, node {n} holds {held:?} but the clients \
                     were told {acked:?} were accepted: a value is resent until the peer \
                     acknowledges it"
                );
            }
            let before = cluster.stats().sent_by_nodes;
            cluster.run_until(settle + ms(100));
            let sent = cluster.stats().sent_by_nodes - before;
            assert_eq!(
                sent, 0,
                "seed {seed}, fanout {fanout}: every node holds every value and every peer has \
                 acknowledged them, yet the nodes sent {sent} messages in the next 100 ms: \
                 nothing is sent to a peer known to hold it"
            );
        });
    }
}
