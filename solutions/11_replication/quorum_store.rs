// quorum_store — a leaderless store: N replicas, writes wait for W of them, reads ask R.
//
// Dynamo, Cassandra and Riak keep each key on N replicas and let any node coordinate: a write is
// acknowledged once W replicas hold it, a read answers the newest of R replies. R + W > N makes
// every read quorum overlap every write quorum (Cassandra's QUORUM/QUORUM: 2 and 2 of 3).
//
// Build `QuorumNode`: coordinator, and replica of every key. The PROPERTY: with R + W > N every
// read returns the newest write acknowledged before it began, or a newer one, whatever
// partitions, crashes, loss and duplicates did; with R + W <= N stale reads happen. A version is
// (coordinator's clock in µs, its id), never issued twice; after answering a read, the
// coordinator repairs the replicas that answered with an older version.
//
// Lab: one row per (R, W) under a partition. Turn QUORUMS, N and PARTITION_MS: stale reads
// appear only where R + W <= N; bigger quorums lose availability on the minority side.

use std::collections::{BTreeMap, BTreeSet};

use sdlings_kit::cluster::{Ctx, Disk, Node, NodeId};
use sdlings_kit::replication::quorum_store::{
    Data, Key, LabKnobs, Msg, Pending, Value, Version, lab,
};

// ---- Your part -------------------------------------------------------------------------------

/// A node of an N/R/W store: N is the cluster's size (every node keeps every key).
pub struct QuorumNode {
    me: NodeId,
    r: usize,
    w: usize,
    /// The replica's data: survives a crash.
    data: Disk<Data>,
    last_stamp: u64,
    next_op: u64,
    pending: BTreeMap<u64, Pending>,
}

impl QuorumNode {
    pub fn new(me: NodeId, _n: usize, r: usize, w: usize, data: Disk<Data>) -> Self {
        QuorumNode {
            me,
            r,
            w,
            data,
            last_stamp: 0,
            next_op: 1,
            pending: BTreeMap::new(),
        }
    }

    /// Replica: keeps `version` of `key` if it is newer than what this replica holds.
    fn store(&mut self, key: Key, value: Value, version: Version) {
        self.data.write(|d| {
            if d.get(&key).is_none_or(|(held, _)| version > *held) {
                d.insert(key, (version, value));
            }
        });
    }

    /// Replica: what this replica holds for `key`.
    fn fetch(&self, key: Key) -> (Option<Value>, Version) {
        self.data
            .read(|d| d.get(&key).map(|&(v, x)| (Some(x), v)))
            .unwrap_or((None, Version::default()))
    }

    /// Coordinator: answers the client once enough replicas have answered, and forgets the op.
    fn try_finish(&mut self, op: u64, ctx: &mut Ctx<'_, Msg>) {
        let done = match self.pending.get(&op) {
            Some(Pending::Put { acks, .. }) => acks.len() >= self.w,
            Some(Pending::Get { replies, .. }) => replies.len() >= self.r,
            None => false,
        };
        if !done {
            return;
        }
        match self.pending.remove(&op) {
            Some(Pending::Put {
                client,
                req,
                version,
                ..
            }) => ctx.send(client, Msg::PutOk { req, version }),
            Some(Pending::Get {
                client,
                req,
                key,
                replies,
            }) => {
                // The newest version wins (versions are totally ordered: ties broken by node).
                let (value, version) = replies
                    .values()
                    .copied()
                    .max_by_key(|&(_, version)| version)
                    .expect("R >= 1 replies");
                ctx.send(
                    client,
                    Msg::GetOk {
                        req,
                        value,
                        version,
                    },
                );
                // Read repair: the replicas that answered with something older get the newest.
                if let Some(value) = value {
                    for (&node, &(_, held)) in &replies {
                        if held < version {
                            let store = Msg::Store {
                                op,
                                key,
                                value,
                                version,
                            };
                            match node == self.me {
                                true => self.store(key, value, version),
                                false => ctx.send(node, store),
                            }
                        }
                    }
                }
            }
            None => {}
        }
    }
}

impl Node for QuorumNode {
    type Msg = Msg;

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::Put { req, key, value } => {
                // Never the same version twice, even for two puts in the same microsecond.
                let stamp = (ctx.now().as_micros() as u64).max(self.last_stamp + 1);
                self.last_stamp = stamp;
                let version = Version {
                    stamp,
                    node: self.me,
                };
                let op = self.next_op;
                self.next_op += 1;
                // This node is one of the N replicas: store locally, count it once.
                self.store(key, value, version);
                let acks = BTreeSet::from([self.me]);
                let put = Pending::Put {
                    client: from,
                    req,
                    version,
                    acks,
                };
                self.pending.insert(op, put);
                for peer in ctx.peers().collect::<Vec<_>>() {
                    ctx.send(
                        peer,
                        Msg::Store {
                            op,
                            key,
                            value,
                            version,
                        },
                    );
                }
                self.try_finish(op, ctx);
            }
            Msg::Get { req, key } => {
                let op = self.next_op;
                self.next_op += 1;
                let replies = BTreeMap::from([(self.me, self.fetch(key))]);
                let get = Pending::Get {
                    client: from,
                    req,
                    key,
                    replies,
                };
                self.pending.insert(op, get);
                for peer in ctx.peers().collect::<Vec<_>>() {
                    ctx.send(peer, Msg::Fetch { op, key });
                }
                self.try_finish(op, ctx);
            }
            Msg::Store {
                op,
                key,
                value,
                version,
            } => {
                self.store(key, value, version);
                ctx.send(from, Msg::Stored { op });
            }
            Msg::Fetch { op, key } => {
                let (value, version) = self.fetch(key);
                ctx.send(from, Msg::Fetched { op, value, version });
            }
            // Count replicas, not messages: a duplicated answer is the same replica again.
            Msg::Stored { op } => {
                if let Some(Pending::Put { acks, .. }) = self.pending.get_mut(&op) {
                    acks.insert(from);
                }
                self.try_finish(op, ctx);
            }
            Msg::Fetched { op, value, version } => {
                if let Some(Pending::Get { replies, .. }) = self.pending.get_mut(&op) {
                    replies.insert(from, (value, version));
                }
                self.try_finish(op, ctx);
            }
            Msg::PutOk { .. } | Msg::GetOk { .. } => {}
        }
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const N: usize = 3;
/// The (R, W) pairs to compare, one row each.
const QUORUMS: [(usize, usize); 4] = [(1, 1), (2, 1), (2, 2), (1, 3)];
const LOSS: f64 = 0.02;
const MAX_LATENCY_MS: u64 = 25;
/// A minority of the nodes is cut off for this long, 300 ms into the run.
const PARTITION_MS: u64 = 800;

fn main() {
    let knobs = LabKnobs {
        n: N,
        quorums: QUORUMS.to_vec(),
        loss: LOSS,
        max_latency_ms: MAX_LATENCY_MS,
        partition_ms: PARTITION_MS,
    };
    lab(knobs, QuorumNode::new);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::RngExt;
    use sdlings_kit::cluster::{FaultPlan, Probe};
    use sdlings_kit::property::for_seeds;
    use sdlings_kit::replication::quorum_store::{QuorumOp, run_workload, stale_reads};

    use super::*;

    const SEEDS: u64 = 100;
    const CLIENT: NodeId = 7;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn v(stamp: u64, node: NodeId) -> Version {
        Version { stamp, node }
    }

    fn node(me: NodeId, n: usize, r: usize, w: usize) -> QuorumNode {
        QuorumNode::new(me, n, r, w, Disk::default())
    }

    fn op_of(sent: &[(NodeId, Msg)]) -> u64 {
        match sent.first() {
            Some((_, Msg::Store { op, .. } | Msg::Fetch { op, .. })) => *op,
            other => panic!("expected the coordinator to ask its replicas, got {other:?}"),
        }
    }

    #[test]
    fn a_put_is_acknowledged_once_w_replicas_counting_the_coordinator_hold_it() {
        let (mut coordinator, mut probe) = (node(0, 3, 2, 2), Probe::new(0, 3));
        let sent = probe
            .at(ms(5))
            .deliver(&mut coordinator, CLIENT, Msg::put(1, 4, 40));
        let (op, version) = (op_of(&sent), v(5_000, 0));
        let stores = vec![
            (1, Msg::store(op, 4, 40, version)),
            (2, Msg::store(op, 4, 40, version)),
        ];
        assert_eq!(
            sent, stores,
            "store locally, send the others the write, versioned (clock in µs, coordinator id)"
        );
        let sent = probe.deliver(&mut coordinator, 1, Msg::Stored { op });
        let ok = vec![(CLIENT, Msg::PutOk { req: 1, version })];
        assert_eq!(
            sent, ok,
            "W = 2: the coordinator itself and replica 1 hold it"
        );
        let sent = probe.deliver(&mut coordinator, 2, Msg::Stored { op });
        assert!(sent.is_empty(), "the put was answered already: {sent:?}");
    }

    #[test]
    fn a_duplicated_ack_is_the_same_replica_and_counts_once() {
        let (mut coordinator, mut probe) = (node(0, 3, 1, 3), Probe::new(0, 3));
        let op = op_of(&probe.deliver(&mut coordinator, CLIENT, Msg::put(1, 4, 40)));
        for _ in 0..2 {
            let sent = probe.deliver(&mut coordinator, 1, Msg::Stored { op });
            assert!(
                sent.is_empty(),
                "W = 3, and only the coordinator and replica 1 hold the write: a duplicated ack \
                 from replica 1 is not a third replica"
            );
        }
        let sent = probe.deliver(&mut coordinator, 2, Msg::Stored { op });
        assert!(
            matches!(sent[..], [(CLIENT, Msg::PutOk { req: 1, .. })]),
            "{sent:?}"
        );
    }

    #[test]
    fn a_get_answers_the_highest_version_of_r_replies_and_repairs_the_older_ones() {
        let (mut coordinator, mut probe) = (node(0, 3, 3, 1), Probe::new(0, 3));
        coordinator.store(9, 1, v(100, 2));
        let op = op_of(&probe.deliver(&mut coordinator, CLIENT, Msg::Get { req: 3, key: 9 }));
        let newest = Msg::fetched(op, Some(3), v(300, 1));
        assert!(
            probe.deliver(&mut coordinator, 1, newest).is_empty(),
            "R = 3: wait"
        );
        let sent = probe.deliver(&mut coordinator, 2, Msg::fetched(op, Some(2), v(200, 0)));
        let answer = (CLIENT, Msg::get_ok(3, Some(3), v(300, 1)));
        assert_eq!(
            sent.first(),
            Some(&answer),
            "the newest of the three replies, not the first"
        );
        assert_eq!(
            sent[1..],
            [(2, Msg::store(op, 9, 3, v(300, 1)))],
            "read repair: replica 2 answered an older version, send it the newest (replica 1 is \
             up to date)"
        );
        let held = coordinator.fetch(9);
        assert_eq!(
            held,
            (Some(3), v(300, 1)),
            "the coordinator repairs itself too"
        );
    }

    #[test]
    fn a_get_asks_every_replica_and_breaks_a_stamp_tie_by_node_id_as_the_replicas_do() {
        let (mut coordinator, mut probe) = (node(0, 3, 2, 2), Probe::new(0, 3));
        coordinator.store(9, 7, v(300, 2));
        let sent = probe.deliver(&mut coordinator, CLIENT, Msg::Get { req: 4, key: 9 });
        let mut asked: Vec<NodeId> = sent.iter().map(|(to, _)| *to).collect();
        asked.sort_unstable();
        let why = "ask every other replica: any R will do, so one that is down costs nothing";
        assert_eq!(asked, [1, 2], "{why}");
        let reply = Msg::fetched(op_of(&sent), Some(6), v(300, 1));
        let sent = probe.deliver(&mut coordinator, 2, reply);
        assert_eq!(
            sent.first(),
            Some(&(CLIENT, Msg::get_ok(4, Some(7), v(300, 2)))),
            "R = 2: the coordinator and replica 2 answered (replica 1 may be down), with the same \
             stamp: node 2's version is the newer (ties go to the higher node id, as everywhere)"
        );
    }

    #[test]
    fn two_clients_puts_at_one_coordinator_are_told_apart_even_with_the_same_request_number() {
        let (mut coordinator, mut probe) = (node(0, 3, 2, 2), Probe::new(0, 3));
        let a = op_of(&probe.deliver(&mut coordinator, CLIENT, Msg::put(1, 4, 40)));
        let b = op_of(&probe.deliver(&mut coordinator, CLIENT + 1, Msg::put(1, 5, 50)));
        for (op, client) in [(a, CLIENT), (b, CLIENT + 1)] {
            let sent = probe.deliver(&mut coordinator, 1, Msg::Stored { op });
            assert!(
                matches!(sent[..], [(c, Msg::PutOk { req: 1, .. })] if c == client),
                "replica 1 acknowledged client {client}'s put: answer that client (both number \
                 their requests from 1: the coordinator needs its own op numbers), got {sent:?}"
            );
        }
    }

    #[test]
    fn a_replica_keeps_the_newer_version_whatever_order_writes_arrive_in_and_ties_go_to_the_node() {
        let (mut replica, mut probe) = (node(1, 3, 2, 2), Probe::new(1, 3));
        probe.deliver(&mut replica, 0, Msg::store(1, 5, 20, v(200, 0)));
        let sent = probe.deliver(&mut replica, 2, Msg::store(1, 5, 10, v(100, 2)));
        assert_eq!(
            sent,
            vec![(2, Msg::Stored { op: 1 })],
            "acknowledge even an older write"
        );
        assert_eq!(
            replica.fetch(5),
            (Some(20), v(200, 0)),
            "a late, older write must not win"
        );
        probe.deliver(&mut replica, 2, Msg::store(1, 5, 21, v(200, 2)));
        assert_eq!(
            replica.fetch(5),
            (Some(21), v(200, 2)),
            "same stamp: the higher node id breaks the tie, so every replica picks the same"
        );
        let sent = probe.deliver(&mut replica, 0, Msg::Fetch { op: 8, key: 6 });
        let never = Msg::fetched(8, None, Version::default());
        assert_eq!(sent, vec![(0, never)], "a key never written");
    }

    #[test]
    fn two_puts_in_the_same_microsecond_get_different_increasing_versions() {
        let (mut coordinator, mut probe) = (node(0, 1, 1, 1), Probe::new(0, 1));
        let a = probe
            .at(ms(3))
            .deliver(&mut coordinator, CLIENT, Msg::put(1, 1, 10));
        let b = probe.deliver(&mut coordinator, CLIENT, Msg::put(2, 1, 11));
        let version = |sent: &[(NodeId, Msg)]| match sent {
            [(_, Msg::PutOk { version, .. })] => *version,
            other => panic!("N = W = 1: the put is answered at once, got {other:?}"),
        };
        let (first, second) = (version(&a), version(&b));
        assert!(
            first < second,
            "the second put must win: {first:?} then {second:?}"
        );
        let sent = probe.deliver(&mut coordinator, CLIENT, Msg::Get { req: 3, key: 1 });
        let answer = (CLIENT, Msg::get_ok(3, Some(11), second));
        assert_eq!(sent, [answer], "the get sees the second put");
    }

    #[test]
    fn with_r_plus_w_above_n_no_read_is_stale_under_partitions_crashes_loss_and_duplicates() {
        let (mut done, mut total) = (0, 0);
        for_seeds(SEEDS, |rng| {
            let seed = rng.random();
            let n = if rng.random_bool(0.7) { 3 } else { 5 };
            let w = rng.random_range(1..=n);
            let r = rng.random_range(n + 1 - w..=n);
            let faults = FaultPlan::random(rng, n, ms(500), true);
            let build = move |id, d| QuorumNode::new(id, n, r, w, d);
            let ops = run_workload(n, seed, faults, true, build);
            let stale = stale_reads(&ops);
            let why = stale.join("\n");
            assert!(stale.is_empty(), "N = {n}, R = {r}, W = {w}:\n{why}");
            total += ops.len();
            done += ops.iter().filter(|op| op.answered()).count();
        });
        // Liveness: a store that never answers reads nothing stale. About 70% of the requests
        // are answered (the rest hit the minority side of a partition, a crash, or a loss).
        assert!(
            done * 2 >= total,
            "only {done} of {total} requests were answered: a put needs W replicas and a get \
             R, so outside the minority side of a partition most requests should succeed"
        );
    }

    #[test]
    fn with_r_plus_w_at_most_n_stale_reads_do_happen_and_writes_stay_available() {
        let (mut stale_seeds, mut puts, mut acked) = (0, 0, 0);
        for_seeds(SEEDS, |rng| {
            let seed = rng.random();
            let n = rng.random_range(3..=4);
            let (r, w) = (1, n / 2);
            let faults = FaultPlan::random(rng, n, ms(500), false);
            let build = move |id, d| QuorumNode::new(id, n, r, w, d);
            let ops = run_workload(n, seed, faults, false, build);
            stale_seeds += u64::from(!stale_reads(&ops).is_empty());
            for op in &ops {
                if let QuorumOp::Put { acked: a, .. } = op {
                    puts += 1;
                    acked += u64::from(a.is_some());
                }
            }
        });
        assert!(
            stale_seeds >= SEEDS / 5,
            "with R = 1 and W = N / 2 (R + W <= N) reads and writes can miss each other: stale \
             reads should show up on many seeds, but only {stale_seeds} of {SEEDS} had any. \
             Wait for R and W replies, not more"
        );
        assert!(
            acked * 10 >= puts * 9,
            "W <= N / 2: a put needs only a minority, so even the minority side of a partition \
             writes; only {acked} of {puts} puts were acknowledged"
        );
    }

    #[test]
    fn a_single_node_store_answers_everything_itself() {
        let build = |id, d| QuorumNode::new(id, 1, 1, 1, d);
        let ops = run_workload(1, 5, FaultPlan::new(), false, build);
        assert!(stale_reads(&ops).is_empty());
        assert!(
            ops.iter().all(QuorumOp::answered),
            "N = R = W = 1: every request is answered by the coordinator alone"
        );
    }
}
