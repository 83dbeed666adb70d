// leader_follower — ship a leader's log to followers; reads carry a log-position token.
//
// Every write goes to one leader, which appends it to its log and ships the log to followers;
// reads are spread over the followers. Followers lag (a slow link, a restart, a partition), so a
// user who just saved a profile and reloads from a follower may see the old one. PostgreSQL
// streaming replication and MySQL/MongoDB replica sets work this way; "read your writes" is
// offered with a token: the write returns its log position (an LSN, a GTID, an operationTime)
// and a read carries the highest position the client has seen.
//
// Build the replica (`Replica`'s `Node` handlers). The PROPERTY: every follower's state is a
// prefix of the leader's log, and it answers a read only from a state that includes the read's
// `at_least` (waiting until it does, never answering with an older state), saying which position
// it answered from. Lost, duplicated and reordered messages and restarted followers catch up.
//
// Lab: the same sessions with and without the token. Turn PARTITION_MS and LOSS up: without the
// token more reads go back in time; with it none do (those reads wait for the follower instead).

use std::collections::BTreeMap;

use sdlings_kit::cluster::{Ctx, Node, NodeId};
use sdlings_kit::replication::leader_follower::{Key, LEADER, LabKnobs, Msg, Pos, Value, lab};

// ---- Your part -------------------------------------------------------------------------------

/// One replica. Node `LEADER` takes the writes and ships its log; the others apply it in order
/// and serve reads. (A replica's memory is lost in a crash: a follower restarts empty.)
pub struct Replica {
    me: NodeId,
    /// The log: the entry at position p (counted from 1) is `log[p - 1]`.
    log: Vec<(Key, Value)>,
    /// The latest value of each key in `log`.
    state: BTreeMap<Key, Value>,
    /// Leader: how many entries each follower last said it holds (indexed by node id).
    acked: Vec<Pos>,
    /// Follower: reads waiting for the log to reach their token, as (client, req, key, at_least).
    parked: Vec<(NodeId, u64, Key, Pos)>,
}

impl Replica {
    pub fn new(me: NodeId, nodes: usize) -> Self {
        Replica {
            me,
            log: Vec::new(),
            state: BTreeMap::new(),
            acked: vec![0; nodes],
            parked: Vec::new(),
        }
    }

    /// How many entries of the leader's log this replica holds (and has applied).
    pub fn applied(&self) -> Pos {
        self.log.len() as Pos
    }

    /// Leader: sends `follower` every entry it has not acknowledged (all of them, again, until it
    /// does: that is the retry that survives loss).
    fn ship(&self, follower: NodeId, ctx: &mut Ctx<'_, Msg>) {
        let prev = self.acked[follower].min(self.applied());
        let entries = self.log[prev as usize..].to_vec();
        ctx.send(follower, Msg::Append { prev, entries });
    }

    /// Answers every parked read that the log now covers; keeps the others waiting.
    fn release(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let len = self.applied();
        let (ready, waiting): (Vec<_>, Vec<_>) =
            self.parked.drain(..).partition(|&(_, _, _, at)| at <= len);
        self.parked = waiting;
        for (client, req, key, _) in ready {
            let value = self.state.get(&key).copied();
            ctx.send(
                client,
                Msg::ReadOk {
                    req,
                    value,
                    pos: len,
                },
            );
        }
    }
}

impl Node for Replica {
    type Msg = Msg;

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::Write { req, key, value } if self.me == LEADER => {
                self.log.push((key, value));
                self.state.insert(key, value);
                ctx.send(
                    from,
                    Msg::Written {
                        req,
                        pos: self.applied(),
                    },
                );
                // Ship at once rather than wait for the next tick: less lag.
                for follower in ctx.peers().collect::<Vec<_>>() {
                    self.ship(follower, ctx);
                }
            }
            Msg::Append { prev, entries } => {
                // Entries from `prev + 1` on: skip those already held (a duplicate or a resend),
                // refuse a gap (an earlier Append was lost, or this follower restarted empty).
                if prev <= self.applied() {
                    let skip = (self.applied() - prev) as usize;
                    for &(key, value) in entries.iter().skip(skip) {
                        self.log.push((key, value));
                        self.state.insert(key, value);
                    }
                    self.release(ctx);
                }
                // Either way, say where this log ends: the leader resends from there.
                ctx.send(
                    from,
                    Msg::Ack {
                        len: self.applied(),
                    },
                );
            }
            // Not the larger of old and new: a follower that restarted empty says 0, and must
            // be sent everything again.
            Msg::Ack { len } => self.acked[from] = len,
            Msg::Read { req, key, at_least } => {
                self.parked.push((from, req, key, at_least));
                self.release(ctx);
            }
            _ => {}
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Msg>) {
        // Every follower, every tick, even one that is up to date (then the Append is empty, a
        // heartbeat): a follower that restarted empty says nothing until it hears from us.
        if self.me == LEADER {
            for follower in ctx.peers().collect::<Vec<_>>() {
                self.ship(follower, ctx);
            }
        }
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const FOLLOWERS: usize = 3;
/// Message latency is drawn from 5 ms to this.
const MAX_LATENCY_MS: u64 = 25;
const LOSS: f64 = 0.05;
/// Follower 1 is cut off from the leader for this long, 200 ms into the run.
const PARTITION_MS: u64 = 400;
const CLIENTS: usize = 4;
const OPS_PER_CLIENT: usize = 100;

fn main() {
    let knobs = LabKnobs {
        followers: FOLLOWERS,
        max_latency_ms: MAX_LATENCY_MS,
        loss: LOSS,
        partition_ms: PARTITION_MS,
        clients: CLIENTS,
        ops: OPS_PER_CLIENT,
    };
    lab(knobs, Replica::new, Replica::applied);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::RngExt;
    use sdlings_kit::cluster::{Cluster, Config, Fault, FaultPlan, Probe};
    use sdlings_kit::property::for_seeds;
    use sdlings_kit::replication::leader_follower::{
        SessionOp, Sessions, follower_faults, sessions,
    };

    use super::*;

    const SEEDS: u64 = 100;
    const CLIENT: NodeId = 9;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `key`'s value after the first `pos` entries of `log`.
    fn value_at(log: &[(Key, Value)], pos: Pos, key: Key) -> Option<Value> {
        log[..pos as usize]
            .iter()
            .rev()
            .find(|e| e.0 == key)
            .map(|e| e.1)
    }

    /// Checks every session against the leader's log: each write sits where the leader said; each
    /// read answered with what the log says at the position it names, and that position is not
    /// below the token the client sent (read your writes, monotonic reads).
    fn check_sessions(log: &[(Key, Value)], ops: &[SessionOp]) {
        for op in ops {
            match *op {
                SessionOp::Write {
                    key,
                    value,
                    pos: Some(pos),
                    ..
                } => assert!(
                    pos >= 1 && log.get(pos as usize - 1) == Some(&(key, value)),
                    "the leader said write {key}={value} is entry {pos}, but its log has {:?} there",
                    log.get((pos as usize).wrapping_sub(1))
                ),
                SessionOp::Read {
                    client,
                    node,
                    key,
                    token,
                    answer: Some((value, pos)),
                    ..
                } => {
                    assert!(
                        pos >= token,
                        "client {client} had seen position {token} and read key {key} at node \
                         {node}, which answered from position {pos}: an older state than the \
                         client has seen. Wait until the log reaches the read's at_least"
                    );
                    assert!(
                        pos <= log.len() as Pos && value_at(log, pos, key) == value,
                        "node {node} answered key {key} = {value:?} from position {pos}, but the \
                         leader's log says {:?} there: a follower's state must be exactly a \
                         prefix of the leader's log",
                        (pos <= log.len() as Pos).then(|| value_at(log, pos, key))
                    );
                }
                _ => {}
            }
        }
    }

    /// Runs client sessions on a cluster of `nodes` under `faults`; returns the leader's log and
    /// what the clients saw.
    fn run(
        config: Config,
        seed: u64,
        faults: FaultPlan,
        s: &Sessions,
    ) -> (Vec<(Key, Value)>, Vec<SessionOp>) {
        let nodes = config.nodes;
        let mut cluster = Cluster::new(config, seed, move |id| Replica::new(id, nodes));
        cluster.faults(faults);
        let ops = sessions(&mut cluster, nodes, s, seed);
        assert!(
            cluster.run(),
            "the clients finish (they give up on a request after a timeout)"
        );
        let log = cluster
            .node(LEADER, |n| n.log.clone())
            .expect("the leader never crashes");
        let ops = ops.borrow().clone();
        (log, ops)
    }

    fn lossy(nodes: usize) -> Config {
        Config {
            nodes,
            loss: 0.05,
            duplicate: 0.05,
            ..Config::default()
        }
    }

    #[test]
    fn the_leader_answers_a_write_with_its_position_and_ships_it() {
        let mut leader = Replica::new(LEADER, 3);
        let mut probe = Probe::new(LEADER, 3);
        probe.deliver(
            &mut leader,
            CLIENT,
            Msg::Write {
                req: 1,
                key: 7,
                value: 70,
            },
        );
        let sent = probe.deliver(
            &mut leader,
            CLIENT,
            Msg::Write {
                req: 2,
                key: 8,
                value: 80,
            },
        );
        assert!(
            sent.contains(&(CLIENT, Msg::Written { req: 2, pos: 2 })),
            "the second write is entry 2 of the log (positions count from 1), got {sent:?}"
        );
        let sent = probe.tick(&mut leader);
        let to_1 = Msg::Append {
            prev: 0,
            entries: vec![(7, 70), (8, 80)],
        };
        assert!(
            sent.contains(&(1, to_1)),
            "follower 1 has acknowledged nothing: each tick resends it the whole log, got {sent:?}"
        );
        probe.deliver(&mut leader, 1, Msg::Ack { len: 2 });
        let sent = probe.tick(&mut leader);
        let heartbeat = Msg::Append {
            prev: 2,
            entries: vec![],
        };
        assert!(
            sent.contains(&(1, heartbeat)) && sent.iter().any(|(to, _)| *to == 2),
            "follower 1 acknowledged both entries: send it nothing new (but still an empty \
             Append, so a follower that restarted can say it is empty); follower 2 gets \
             everything, got {sent:?}"
        );
    }

    #[test]
    fn a_follower_parks_a_read_ahead_of_its_log_and_answers_once_it_catches_up() {
        let mut follower = Replica::new(1, 3);
        let mut probe = Probe::new(1, 3);
        let mut sent = Vec::new();
        for (client, req) in [(CLIENT, 5), (CLIENT + 1, 1)] {
            let read = Msg::Read {
                req,
                key: 7,
                at_least: 2,
            };
            sent.extend(probe.deliver(&mut follower, client, read));
        }
        assert!(
            sent.is_empty(),
            "the follower holds 0 entries and the clients have seen 2: answering now would give \
             them an older state than they have seen; got {sent:?}"
        );
        let sent = probe.deliver(
            &mut follower,
            LEADER,
            Msg::Append {
                prev: 0,
                entries: vec![(7, 1)],
            },
        );
        assert_eq!(
            sent,
            vec![(LEADER, Msg::Ack { len: 1 })],
            "1 entry is not yet 2: keep waiting"
        );
        let sent = probe.deliver(
            &mut follower,
            LEADER,
            Msg::Append {
                prev: 1,
                entries: vec![(7, 2)],
            },
        );
        for (client, req) in [(CLIENT, 5), (CLIENT + 1, 1)] {
            let answer = Msg::ReadOk {
                req,
                value: Some(2),
                pos: 2,
            };
            assert!(
                sent.contains(&(client, answer)),
                "the log reached position 2: answer both parked reads from it (client {client}'s \
                 too), got {sent:?}"
            );
        }
        let sent = probe.deliver(
            &mut follower,
            LEADER,
            Msg::Append {
                prev: 2,
                entries: vec![(7, 3)],
            },
        );
        assert_eq!(
            sent,
            vec![(LEADER, Msg::Ack { len: 3 })],
            "a read is answered once"
        );
        let sent = probe.deliver(
            &mut follower,
            CLIENT,
            Msg::Read {
                req: 6,
                key: 8,
                at_least: 0,
            },
        );
        assert_eq!(
            sent,
            vec![(
                CLIENT,
                Msg::ReadOk {
                    req: 6,
                    value: None,
                    pos: 3
                }
            )],
            "a read the log covers is answered at once, with the position it was answered from"
        );
    }

    #[test]
    fn a_follower_skips_entries_it_holds_and_refuses_a_gap() {
        let mut follower = Replica::new(2, 3);
        let mut probe = Probe::new(2, 3);
        let append = |prev, entries: &[(Key, Value)]| Msg::Append {
            prev,
            entries: entries.to_vec(),
        };
        probe.deliver(&mut follower, LEADER, append(0, &[(1, 10), (2, 20)]));
        let sent = probe.deliver(&mut follower, LEADER, append(1, &[(2, 20), (1, 11)]));
        assert_eq!(
            (follower.log.clone(), sent),
            (
                vec![(1, 10), (2, 20), (1, 11)],
                vec![(LEADER, Msg::Ack { len: 3 })]
            ),
            "entries 2..3 overlap the 2 held: append only entry 3"
        );
        let sent = probe.deliver(&mut follower, LEADER, append(0, &[(1, 10)]));
        assert_eq!(
            (follower.log.clone(), sent),
            (
                vec![(1, 10), (2, 20), (1, 11)],
                vec![(LEADER, Msg::Ack { len: 3 })]
            ),
            "a late copy of an earlier Append (the network reorders) holds nothing new: the log \
             keeps its 3 entries (one leader, so entries never conflict)"
        );
        let sent = probe.deliver(&mut follower, LEADER, append(5, &[(3, 30)]));
        assert_eq!(
            (follower.log.len(), sent),
            (3, vec![(LEADER, Msg::Ack { len: 3 })]),
            "entries from 6 on, but this log ends at 3: a gap. Refuse, and say where the log ends"
        );
        assert_eq!(
            follower.state.get(&1),
            Some(&11),
            "the state is the log's latest values"
        );
        let mut restarted = Replica::new(2, 3);
        let sent = probe.deliver(&mut restarted, LEADER, append(3, &[]));
        assert_eq!(
            sent,
            vec![(LEADER, Msg::Ack { len: 0 })],
            "a follower that restarted empty gets a heartbeat (an empty Append) past its end: it \
             must say it holds 0 entries, or the leader never resends the log when no write comes"
        );
    }

    #[test]
    fn the_leader_resends_from_zero_to_a_follower_that_restarted_empty() {
        let mut leader = Replica::new(LEADER, 2);
        let mut probe = Probe::new(LEADER, 2);
        for (req, key) in [(1, 1), (2, 2)] {
            probe.deliver(
                &mut leader,
                CLIENT,
                Msg::Write {
                    req,
                    key,
                    value: key,
                },
            );
        }
        probe.deliver(&mut leader, 1, Msg::Ack { len: 2 });
        probe.deliver(&mut leader, 1, Msg::Ack { len: 0 });
        let sent = probe.tick(&mut leader);
        assert_eq!(
            sent,
            vec![(
                1,
                Msg::Append {
                    prev: 0,
                    entries: vec![(1, 1), (2, 2)]
                }
            )],
            "follower 1 said it holds 0 entries (it restarted): ship it everything again"
        );
    }

    #[test]
    fn a_read_after_a_write_at_a_cut_off_follower_waits_for_the_heal_not_the_old_value() {
        let mut cluster = Cluster::new(Config::default(), 1, |id| Replica::new(id, 3));
        cluster.faults(
            FaultPlan::new()
                .at(ms(0), Fault::Partition(vec![1], vec![LEADER]))
                .at(ms(300), Fault::Heal),
        );
        let got = std::rc::Rc::new(std::cell::RefCell::new(None));
        let out = got.clone();
        cluster.client(move |c| async move {
            c.send(
                LEADER,
                Msg::Write {
                    req: 1,
                    key: 4,
                    value: 44,
                },
            );
            let Some((_, Msg::Written { pos, .. })) = c.recv(ms(200)).await else {
                return;
            };
            c.send(
                1,
                Msg::Read {
                    req: 2,
                    key: 4,
                    at_least: pos,
                },
            );
            *out.borrow_mut() = Some((c.recv(ms(1000)).await, c.now()));
        });
        cluster.run();
        let (answer, at) = got.borrow().clone().expect("the write is acknowledged");
        assert_eq!(
            answer,
            Some((
                1,
                Msg::ReadOk {
                    req: 2,
                    value: Some(44),
                    pos: 1
                }
            )),
            "follower 1 is cut off from the leader until 300 ms: the read must wait and then \
             answer with the client's own write"
        );
        assert!(
            at >= ms(300),
            "answered at {at:?}, before the follower could have the write"
        );
    }

    #[test]
    fn sessions_read_their_writes_and_never_go_back_and_followers_catch_up_after_faults() {
        for_seeds(SEEDS, |rng| {
            let seed = rng.random();
            let nodes = rng.random_range(2..=4);
            let faults = follower_faults(rng, nodes, ms(300));
            let mut cluster = Cluster::new(lossy(nodes), seed, move |id| Replica::new(id, nodes));
            cluster.faults(faults);
            let ops = sessions(&mut cluster, nodes, &Sessions::default(), seed);
            cluster.run();
            let log = cluster
                .node(LEADER, |n| n.log.clone())
                .expect("the leader never crashes");
            check_sessions(&log, &ops.borrow());
            // The faults are over by 460 ms: give the followers 200 ms more to catch up.
            cluster.run_until(cluster.now().max(ms(460)) + ms(200));
            let log = cluster.node(LEADER, |n| n.log.clone()).unwrap();
            for f in 1..nodes {
                let theirs = cluster.node(f, |n| n.log.clone()).unwrap();
                assert_eq!(
                    theirs, log,
                    "200 ms after the last fault, follower {f} has caught up"
                );
            }
        });
    }

    #[test]
    fn on_a_healthy_network_every_read_is_answered() {
        for_seeds(SEEDS, |rng| {
            let seed = rng.random();
            let nodes = rng.random_range(2..=3);
            // Slow links (up to 60 ms): reads often reach a follower before the write does.
            let config = Config {
                nodes,
                latency: (ms(5), ms(60)),
                ..Config::default()
            };
            // One client that never resends a read: nothing else comes along to wake a parked
            // read up.
            let one = Sessions {
                clients: 1,
                ops: 16,
                resend_reads: false,
                ..Sessions::default()
            };
            let (log, ops) = run(config, seed, FaultPlan::new(), &one);
            check_sessions(&log, &ops);
            for op in &ops {
                assert!(
                    !matches!(
                        op,
                        SessionOp::Read { answer: None, .. } | SessionOp::Write { pos: None, .. }
                    ),
                    "no loss, no faults, and yet {op:?} got no answer in 250 ms: a parked read \
                     must be answered as soon as the log reaches its token"
                );
            }
        });
    }

    #[test]
    fn with_a_single_replica_the_leader_serves_everything() {
        let (log, ops) = run(
            Config {
                nodes: 1,
                ..Config::default()
            },
            3,
            FaultPlan::new(),
            &Sessions::default(),
        );
        check_sessions(&log, &ops);
        assert!(
            ops.iter().all(|op| !matches!(
                op,
                SessionOp::Read { answer: None, .. } | SessionOp::Write { pos: None, .. }
            )),
            "one node, no faults: every request is answered"
        );
    }
}
