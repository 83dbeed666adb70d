// hinted_handoff — keep the writes a down replica missed, and hand them over when it returns.
//
// In a Dynamo-style store each key lives on N home replicas around a ring. When one is down, a
// "sloppy quorum" gives its write to a stand-in, the next node on the ring, with a hint saying
// whose it is; the stand-in hands it over when the home is back (Cassandra keeps hints on disk).
//
// Build `HandoffNode`: coordinator, home replica and stand-in. The PROPERTY: once the faults are
// over and the run is quiet, every acknowledged write (or a newer one) is on all its home
// replicas with the version its coordinator gave it (a handoff is the same write, late: twice, or
// after a newer write, it changes nothing), and no hint is left on any disk. A put is
// acknowledged once W nodes hold it: home replicas, or stand-ins with a hint for a home that did
// not answer within HANDOFF_AFTER.
//
// Lab: node 0 goes down for DOWN_MS under writes, with W = N: a strict quorum refuses the writes
// whose home includes node 0, the sloppy one takes them. Turn DOWN_MS and LOSS up.

use std::collections::BTreeSet;
use std::time::Duration;

use sdlings_kit::cluster::{Ctx, Disk, Node, NodeId};
#[allow(unused_imports)] // (Key, Value: yours to use)
use sdlings_kit::replication::hinted_handoff::{
    Durable, Key, LabKnobs, Msg, Pending, Value, Version, homes, lab, stand_in,
};

// ---- Your part -------------------------------------------------------------------------------

/// A home replica that has not acknowledged a write after this long gets a stand-in.
pub const HANDOFF_AFTER: Duration = Duration::from_millis(60);

pub struct HandoffNode {
    me: NodeId,
    nodes: usize,
    n: usize,
    w: usize,
    /// false: a strict quorum (no stand-ins), for the lab's comparison.
    sloppy: bool,
    disk: Disk<Durable>,
    last_stamp: u64,
    /// The puts this node coordinates, each kept until every home replica is covered (the tests
    /// read it to learn which versions were made).
    pending: Vec<Pending>,
}

impl HandoffNode {
    pub fn new(
        me: NodeId,
        nodes: usize,
        n: usize,
        w: usize,
        disk: Disk<Durable>,
        sloppy: bool,
    ) -> Self {
        assert!(
            nodes > n,
            "a stand-in needs a node beyond the N home replicas"
        );
        HandoffNode {
            me,
            nodes,
            n,
            w,
            sloppy,
            disk,
            last_stamp: 0,
            pending: Vec::new(),
        }
    }

    /// Given (you wrote it in quorum_store): a new version, never the same twice.
    fn mint(&mut self, now: Duration) -> Version {
        self.last_stamp = (now.as_micros() as u64).max(self.last_stamp + 1);
        Version {
            stamp: self.last_stamp,
            node: self.me,
        }
    }

    /// Home replica: keeps the write if it is newer than what this node holds.
    fn apply(&mut self, key: Key, value: Value, version: Version) {
        self.disk.write(|d| {
            if d.data.get(&key).is_none_or(|(held, _)| version > *held) {
                d.data.insert(key, (version, value));
            }
        });
    }

    /// Stand-in: keeps a hint for `home` (the newest, if it already keeps one for that key).
    fn keep_hint(&mut self, home: NodeId, key: Key, value: Value, version: Version) {
        self.disk.write(|d| {
            let hint = d.hints.entry((home, key)).or_insert((version, value));
            if version > hint.0 {
                *hint = (version, value);
            }
        });
    }

    /// Coordinator: answers the client once W nodes hold the write; forgets the put once every
    /// home replica is covered (holds it, or a stand-in keeps it for it).
    fn progress(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let (w, n) = (self.w, self.n);
        for p in &mut self.pending {
            if !p.answered && p.stored.len() + p.hinted.len() >= w {
                p.answered = true;
                ctx.send(
                    p.client,
                    Msg::PutOk {
                        req: p.req,
                        version: p.version,
                    },
                );
            }
        }
        self.pending
            .retain(|p| !(p.answered && p.stored.union(&p.hinted).count() == n));
    }
}

impl Node for HandoffNode {
    type Msg = Msg;

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::Put { req, key, value } => {
                let version = self.mint(ctx.now());
                let mut stored = BTreeSet::new();
                for home in homes(key, self.nodes, self.n) {
                    if home == self.me {
                        self.apply(key, value, version);
                        stored.insert(home);
                    } else {
                        ctx.send(
                            home,
                            Msg::Store {
                                key,
                                value,
                                version,
                            },
                        );
                    }
                }
                let since = ctx.now();
                let hinted = BTreeSet::new();
                let answered = false;
                let p = Pending {
                    client: from,
                    req,
                    key,
                    value,
                    version,
                    since,
                    stored,
                    hinted,
                    answered,
                };
                self.pending.push(p);
                self.progress(ctx);
            }
            Msg::Store {
                key,
                value,
                version,
            }
            | Msg::Handoff {
                key,
                value,
                version,
            } => {
                self.apply(key, value, version);
                ctx.send(from, Msg::Stored { key, version });
            }
            Msg::Stored { key, version } => {
                // As coordinator: one more home replica holds the write.
                for p in &mut self.pending {
                    if p.key == key && p.version == version {
                        p.stored.insert(from);
                    }
                }
                // As stand-in: the home replica has this version (or newer); a newer hint stays.
                self.disk.write(|d| {
                    if d.hints
                        .get(&(from, key))
                        .is_some_and(|(v, _)| *v <= version)
                    {
                        d.hints.remove(&(from, key));
                    }
                });
                self.progress(ctx);
            }
            Msg::Hint {
                home,
                key,
                value,
                version,
            } => {
                self.keep_hint(home, key, value, version);
                ctx.send(from, Msg::HintKept { home, key, version });
            }
            Msg::HintKept { home, key, version } => {
                for p in &mut self.pending {
                    if p.key == key && p.version == version {
                        p.hinted.insert(home);
                    }
                }
                self.progress(ctx);
            }
            Msg::PutOk { .. } => {}
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Msg>) {
        // Coordinator: every home replica still silent after HANDOFF_AFTER gets a stand-in;
        // resend each tick until the stand-in (or the home replica itself) answers.
        let mut hints = Vec::new();
        for p in &self.pending {
            if !self.sloppy || ctx.now() < p.since + HANDOFF_AFTER {
                continue;
            }
            for home in homes(p.key, self.nodes, self.n) {
                if !p.stored.contains(&home) && !p.hinted.contains(&home) {
                    hints.push((home, p.key, p.value, p.version));
                }
            }
        }
        for (home, key, value, version) in hints {
            let to = stand_in(key, self.nodes, self.n);
            match to == self.me {
                true => {
                    self.keep_hint(home, key, value, version);
                    self.on_message(to, Msg::HintKept { home, key, version }, ctx);
                }
                false => ctx.send(
                    to,
                    Msg::Hint {
                        home,
                        key,
                        value,
                        version,
                    },
                ),
            }
        }
        // Stand-in: offer every hint to its home replica, with the version it was written with,
        // until the home replica says it holds it.
        let held = self.disk.read(|d| d.hints.clone());
        for ((home, key), (version, value)) in held {
            ctx.send(
                home,
                Msg::Handoff {
                    key,
                    value,
                    version,
                },
            );
        }
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const NODES: usize = 5;
const N: usize = 3;
const W: usize = 3;
/// Node 0 is down for this long, 200 ms into the run.
const DOWN_MS: u64 = 800;
const LOSS: f64 = 0.02;

fn main() {
    let knobs = LabKnobs {
        nodes: NODES,
        n: N,
        w: W,
        down_ms: DOWN_MS,
        loss: LOSS,
    };
    lab(knobs, HandoffNode::new, |node: &HandoffNode| {
        node.disk.read(|d| d.clone())
    });
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::cluster::{Cluster, Config, Fault, FaultPlan, Probe};
    use sdlings_kit::property::for_seeds;
    use sdlings_kit::replication::hinted_handoff::{
        Minted, PutRecord, check_settled, one_down_at_a_time, writers,
    };

    use super::*;

    const SEEDS: u64 = 100;
    const CLIENT: NodeId = 9;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn v(stamp: u64, node: NodeId) -> Version {
        Version { stamp, node }
    }

    fn node(me: NodeId, w: usize) -> HandoffNode {
        HandoffNode::new(me, 5, 3, w, Disk::default(), true)
    }

    fn hints(node: &HandoffNode) -> Vec<((NodeId, Key), (Version, Value))> {
        node.disk.read(|d| d.hints.clone().into_iter().collect())
    }

    /// Writers (N = 3) under `faults`, 250 ms of quiet after `quiet_from`, then check_settled.
    fn run_and_check(
        (nodes, w, loss, seed): (usize, usize, f64, u64),
        faults: FaultPlan,
        coordinators: Vec<NodeId>,
        quiet_from: Duration,
    ) -> Vec<PutRecord> {
        let config = Config {
            nodes,
            loss,
            duplicate: 0.05,
            ..Config::default()
        };
        let build = move |id, disk| HandoffNode::new(id, nodes, 3, w, disk, true);
        let mut cluster = Cluster::with_disks(config, seed, build);
        cluster.faults(faults);
        let minted = Minted::default();
        let seen = minted.clone();
        cluster.observe(move |_, node, _| {
            seen.borrow_mut()
                .extend(node.pending.iter().map(|p| (p.value, p.version)));
        });
        let puts = writers(&mut cluster, coordinators, (2, 6, 4), seed);
        cluster.run();
        cluster.run_until(cluster.now().max(quiet_from) + ms(250));
        let disks: Vec<Durable> = (0..nodes)
            .map(|i| cluster.node(i, |x| x.disk.read(|d| d.clone())).unwrap())
            .collect();
        check_settled(&disks, &puts.borrow(), 3, &minted);
        for i in 0..nodes {
            let left = cluster.node(i, |x| x.pending.len()).unwrap();
            assert_eq!(
                left, 0,
                "node {i} still tracks {left} puts once everything is quiet: a put is done once \
                 every home replica holds it or a stand-in keeps it for it"
            );
        }
        puts.take()
    }

    #[test]
    fn a_home_replica_keeps_the_newest_version_and_acknowledges_what_it_holds() {
        let (mut home, mut probe) = (node(1, 2), Probe::new(1, 5));
        probe.deliver(&mut home, 0, Msg::store(1, 20, v(200, 0)));
        let sent = probe.deliver(&mut home, 4, Msg::handoff(1, 10, v(100, 3)));
        assert_eq!(sent, vec![(4, Msg::stored(1, v(100, 3)))]);
        let held = home.disk.read(|d| d.data.get(&1).copied());
        assert_eq!(
            held,
            Some((v(200, 0), 20)),
            "a late handoff of an older write changes nothing"
        );
    }

    #[test]
    fn a_stand_in_keeps_the_hint_on_disk_offers_it_every_tick_and_drops_it_once_acknowledged() {
        let (mut stand_in, mut probe) = (node(3, 2), Probe::new(3, 5));
        let sent = probe.deliver(&mut stand_in, 1, Msg::hint(0, 0, 7, v(50, 1)));
        assert_eq!(sent, vec![(1, Msg::hint_kept(0, 0, v(50, 1)))]);
        let own = stand_in.disk.read(|d| d.data.get(&0).copied());
        assert_eq!(own, None, "a hint is not the stand-in's own data");
        for _ in 0..2 {
            let sent = probe.at(ms(500)).tick(&mut stand_in);
            let handoff = vec![(0, Msg::handoff(0, 7, v(50, 1)))];
            assert_eq!(
                sent, handoff,
                "the same write, same version, until acknowledged"
            );
        }
        probe.deliver(&mut stand_in, 0, Msg::stored(0, v(50, 1)));
        let left = (hints(&stand_in), probe.tick(&mut stand_in));
        assert_eq!(left, (vec![], vec![]), "delivered: drop it");
    }

    #[test]
    fn an_acknowledgement_of_an_older_version_leaves_a_newer_hint_in_place() {
        let (mut stand_in, mut probe) = (node(3, 2), Probe::new(3, 5));
        probe.deliver(&mut stand_in, 1, Msg::hint(0, 0, 7, v(50, 1)));
        probe.deliver(&mut stand_in, 2, Msg::hint(0, 0, 8, v(90, 2)));
        probe.deliver(&mut stand_in, 1, Msg::hint(0, 0, 7, v(50, 1)));
        probe.deliver(&mut stand_in, 0, Msg::stored(0, v(50, 1)));
        assert_eq!(
            hints(&stand_in),
            vec![((0, 0), (v(90, 2), 8))],
            "home 0 has the write of 50, not the newer one of 90: keep that hint"
        );
    }

    #[test]
    fn a_silent_home_replica_gets_a_stand_in_and_the_hint_counts_towards_w() {
        let (mut coordinator, mut probe) = (node(1, 3), Probe::new(1, 5));
        // Key 0: home replicas 0, 1 and 2; stand-in 3.
        let put = Msg::Put {
            req: 1,
            key: 0,
            value: 5,
        };
        let sent = probe.at(ms(10)).deliver(&mut coordinator, CLIENT, put);
        let version = v(10_000, 1);
        let stores = vec![
            (0, Msg::store(0, 5, version)),
            (2, Msg::store(0, 5, version)),
        ];
        assert_eq!(
            sent, stores,
            "Stores to homes 0 and 2; the coordinator is home 1"
        );
        probe.deliver(&mut coordinator, 2, Msg::Stored { key: 0, version });
        assert!(
            probe.at(ms(30)).tick(&mut coordinator).is_empty(),
            "home 0 has 60 ms to answer"
        );
        let hint = vec![(3, Msg::hint(0, 0, 5, version))];
        assert_eq!(probe.at(ms(80)).tick(&mut coordinator), hint);
        assert_eq!(
            probe.at(ms(100)).tick(&mut coordinator),
            hint,
            "no answer yet: again"
        );
        let sent = probe.deliver(
            &mut coordinator,
            3,
            Msg::HintKept {
                home: 0,
                key: 0,
                version,
            },
        );
        assert_eq!(
            sent,
            vec![(CLIENT, Msg::PutOk { req: 1, version })],
            "W = 3: homes 1 and 2 hold it, and the stand-in holds it for home 0"
        );
        assert!(
            probe.at(ms(200)).tick(&mut coordinator).is_empty(),
            "every home is covered"
        );
        assert!(
            coordinator.pending.is_empty(),
            "every home replica holds the put or has a stand-in keeping it: the coordinator is \
             done with it (kept for ever, its pending puts grow without end)"
        );
    }

    #[test]
    fn writes_stay_available_with_w_equal_n_while_a_home_replica_is_down() {
        let plan = FaultPlan::new().at(ms(0), Fault::Crash(0));
        let faults = plan.at(ms(700), Fault::Restart(0));
        let puts = run_and_check((5, 3, 0.0, 4), faults, vec![1, 2, 3, 4], ms(700));
        assert!(
            puts.iter().all(|p| p.acked.is_some()),
            "node 0 is down, but a stand-in takes its writes: every put is acknowledged: {puts:?}"
        );
    }

    #[test]
    fn every_acknowledged_write_reaches_its_home_replicas_once_after_crashes_or_loss() {
        for_seeds(SEEDS, |rng| {
            let seed = rng.random();
            let (nodes, w) = (rng.random_range(4..=5), rng.random_range(1..=3));
            let crashes = rng.random_bool(0.5);
            let loss = if crashes { 0.0 } else { 0.15 };
            let mut faults = FaultPlan::new();
            if crashes {
                faults = one_down_at_a_time(rng, nodes, ms(400));
            }
            run_and_check(
                (nodes, w, loss, seed),
                faults,
                (0..nodes).collect(),
                ms(580),
            );
        });
    }
}
