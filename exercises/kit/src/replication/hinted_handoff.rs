//! `hinted_handoff`: the ring (home replicas and the stand-in of each key), the messages, what a
//! node keeps on disk, clients, a fault plan with one node down at a time, and the lab.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

pub use super::quorum_store::{Key, Value, Version};
use crate::cluster::{Cluster, Config, Disk, Fault, FaultPlan, Node, NodeId};
use crate::hashing::mix64;
use crate::lab::{Table, percent};

/// The key's N home replicas: the node `key % nodes` and the N - 1 after it on the ring.
pub fn homes(key: Key, nodes: usize, n: usize) -> Vec<NodeId> {
    (0..n).map(|i| (key as usize + i) % nodes).collect()
}

/// The node that stands in for the key's unreachable home replicas: the first one after them on
/// the ring (needs at least N + 1 nodes).
pub fn stand_in(key: Key, nodes: usize, n: usize) -> NodeId {
    (key as usize + n) % nodes
}

/// What a node keeps on disk (it survives a crash).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Durable {
    /// The node's own keys (it is one of their home replicas): version and value.
    pub data: BTreeMap<Key, (Version, Value)>,
    /// Writes kept for unreachable home replicas: (home, key) → version and value.
    pub hints: BTreeMap<(NodeId, Key), (Version, Value)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// Client → any node (the coordinator).
    Put { req: u64, key: Key, value: Value },
    /// Coordinator → client: W nodes (home replicas, or stand-ins holding a hint) have it.
    PutOk { req: u64, version: Version },
    /// Coordinator → home replica: keep this version if it is newer than yours.
    Store {
        key: Key,
        value: Value,
        version: Version,
    },
    /// Home replica → whoever sent a Store or a Handoff: I hold this version of the key, or newer.
    Stored { key: Key, version: Version },
    /// Coordinator → stand-in: keep this write for `home` until `home` has it.
    Hint {
        home: NodeId,
        key: Key,
        value: Value,
        version: Version,
    },
    /// Stand-in → coordinator: the hint for `home` is on my disk.
    HintKept {
        home: NodeId,
        key: Key,
        version: Version,
    },
    /// Stand-in → home replica: a write you missed (answered with `Stored`).
    Handoff {
        key: Key,
        value: Value,
        version: Version,
    },
}

/// A put a node coordinates (the exercise's bookkeeping).
pub struct Pending {
    pub client: NodeId,
    pub req: u64,
    pub key: Key,
    pub value: Value,
    pub version: Version,
    pub since: Duration,
    /// Home replicas that hold the write.
    pub stored: BTreeSet<NodeId>,
    /// Home replicas whose write a stand-in keeps as a hint.
    pub hinted: BTreeSet<NodeId>,
    pub answered: bool,
}

/// Short constructors, for tests that deliver messages by hand.
impl Msg {
    pub fn store(key: Key, value: Value, version: Version) -> Msg {
        Msg::Store {
            key,
            value,
            version,
        }
    }
    pub fn hint(home: NodeId, key: Key, value: Value, version: Version) -> Msg {
        Msg::Hint {
            home,
            key,
            value,
            version,
        }
    }
    pub fn stored(key: Key, version: Version) -> Msg {
        Msg::Stored { key, version }
    }
    pub fn hint_kept(home: NodeId, key: Key, version: Version) -> Msg {
        Msg::HintKept { home, key, version }
    }
    pub fn handoff(key: Key, value: Value, version: Version) -> Msg {
        Msg::Handoff {
            key,
            value,
            version,
        }
    }
}

/// The (value, version) pairs the coordinators made, as a test records them.
pub type Minted = Rc<RefCell<BTreeSet<(Value, Version)>>>;

/// Checks a quiet cluster (`disks`: every node's, in order; N = `n`): every acknowledged put, or
/// a newer one, is on each of its home replicas, with a version a coordinator made for that value
/// (a handoff delivers a write, never a new one); no hint is left anywhere.
pub fn check_settled(disks: &[Durable], puts: &[PutRecord], n: usize, minted: &Minted) {
    for (i, d) in disks.iter().enumerate() {
        assert!(
            d.hints.is_empty(),
            "node {i} still keeps hints {:?}: a hint goes once its home has it",
            d.hints
        );
    }
    for p in puts {
        let Some(version) = p.acked else { continue };
        for home in homes(p.key, disks.len(), n) {
            let held = disks[home].data.get(&p.key).copied();
            let Some((h, x)) = held.filter(|(h, _)| *h >= version) else {
                panic!(
                    "put {}={} was acknowledged at {version:?}, but its home replica {home} holds \
                     {held:?} once everything is quiet",
                    p.key, p.value
                );
            };
            assert!(
                minted.borrow().contains(&(x, h)),
                "home replica {home} holds {x} at {h:?}, but no coordinator made that version for \
                 {x}: a handoff delivers the write with its own version, not a new one"
            );
        }
    }
}

/// A client's put and what came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutRecord {
    pub key: Key,
    pub value: Value,
    pub acked: Option<Version>,
}

/// Adds `clients` clients that each put `puts` unique values on `keys` keys at coordinators drawn
/// from `coordinators`, one every 15-40 ms; returns what they were told.
pub fn writers<N: Node<Msg = Msg>>(
    cluster: &mut Cluster<N>,
    coordinators: Vec<NodeId>,
    (clients, puts, keys): (usize, usize, u64),
    seed: u64,
) -> Rc<RefCell<Vec<PutRecord>>> {
    let record = Rc::new(RefCell::new(Vec::new()));
    for k in 0..clients {
        let (record, coordinators) = (Rc::clone(&record), coordinators.clone());
        let mut rng = StdRng::seed_from_u64(mix64(seed ^ (k as u64 + 1) << 48));
        cluster.client(move |c| async move {
            for req in 0..puts as u64 {
                let key = rng.random_range(0..keys);
                let value = c.id() as u64 * 1_000_000 + req;
                let to = coordinators[rng.random_range(0..coordinators.len())];
                c.send(to, Msg::Put { req, key, value });
                let deadline = c.now() + Duration::from_millis(200);
                let mut acked = None;
                while let Some(left) = deadline.checked_sub(c.now()) {
                    match c.recv(left).await {
                        Some((_, Msg::PutOk { req: r, version })) if r == req => {
                            acked = Some(version);
                            break;
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
                record.borrow_mut().push(PutRecord { key, value, acked });
                c.sleep(Duration::from_millis(rng.random_range(15..40)))
                    .await;
            }
        });
    }
    record
}

/// One node down at a time, over the first 70% of `duration`: a crash (its disk survives) and a
/// restart 100-300 ms later, then 150-300 ms with every node up.
pub fn one_down_at_a_time(rng: &mut StdRng, nodes: usize, duration: Duration) -> FaultPlan {
    let ms = Duration::from_millis;
    let mut plan = FaultPlan::new();
    let mut t = ms(rng.random_range(0..100));
    while t < duration.mul_f64(0.7) {
        let node = rng.random_range(0..nodes);
        let end = t + ms(rng.random_range(100..300));
        plan = plan.at(t, Fault::Crash(node)).at(end, Fault::Restart(node));
        t = end + ms(rng.random_range(150..300));
    }
    plan
}

/// The lab's knobs.
#[derive(Clone, Debug)]
pub struct LabKnobs {
    pub nodes: usize,
    pub n: usize,
    pub w: usize,
    /// Node 0 is down from 200 ms for this long.
    pub down_ms: u64,
    pub loss: f64,
}

/// Runs writers with node 0 down for a while, with the sloppy quorum (`build(.., true)`) and
/// without it (`false`: no hints, only home replicas count), and prints write availability,
/// hints and messages.
pub fn lab<N: Node<Msg = Msg>>(
    knobs: LabKnobs,
    build: impl Fn(NodeId, usize, usize, usize, Disk<Durable>, bool) -> N + Clone + 'static,
    disk_of: impl Fn(&N) -> Durable + Clone + 'static,
) {
    let ms = Duration::from_millis;
    println!(
        "{} nodes, N = {}, W = {}, loss {:.0}%; node 0 down from 200 ms for {} ms",
        knobs.nodes,
        knobs.n,
        knobs.w,
        knobs.loss * 100.0,
        knobs.down_ms
    );
    let mut table = Table::new(&[
        "quorum",
        "puts acked",
        "acked, keys on node 0",
        "peak hints held",
        "acked writes missing at home after",
        "messages",
    ]);
    for sloppy in [false, true] {
        let config = Config {
            nodes: knobs.nodes,
            loss: knobs.loss,
            limit: Duration::from_secs(60),
            ..Config::default()
        };
        let (b, (nodes, n, w)) = (build.clone(), (knobs.nodes, knobs.n, knobs.w));
        let mut cluster =
            Cluster::with_disks(config, 3, move |id, disk| b(id, nodes, n, w, disk, sloppy));
        let peak = Rc::new(RefCell::new((vec![0usize; nodes], 0usize)));
        let (seen, disk) = (Rc::clone(&peak), disk_of.clone());
        cluster.observe(move |id, node, _| {
            let (held, max) = &mut *seen.borrow_mut();
            held[id] = disk(node).hints.len();
            *max = (*max).max(held.iter().sum());
        });
        let down = ms(knobs.down_ms);
        cluster.faults(
            FaultPlan::new()
                .at(ms(200), Fault::Crash(0))
                .at(ms(200) + down, Fault::Restart(0)),
        );
        let puts = writers(&mut cluster, (1..nodes).collect(), (3, 60, 20), 3);
        cluster.run();
        let end = cluster.now().max(ms(200) + down) + ms(1000);
        cluster.run_until(end);
        let puts = puts.borrow();
        let acked = puts.iter().filter(|p| p.acked.is_some()).count() as u64;
        let mut missing = 0;
        for p in puts.iter() {
            let Some(version) = p.acked else { continue };
            for home in homes(p.key, nodes, n) {
                let held = cluster.node(home, |x| disk_of(x).data.get(&p.key).map(|e| e.0));
                missing += u64::from(held.flatten().is_none_or(|v| v < version));
            }
        }
        let label = if sloppy {
            "sloppy (hints)"
        } else {
            "strict (homes only)"
        };
        let on_node_0 = acked_on_node_0(&puts, nodes, n);
        table.row(&[
            label.to_string(),
            format!("{acked} of {}", puts.len()),
            on_node_0,
            peak.borrow().1.to_string(),
            missing.to_string(),
            cluster.stats().sent_by_nodes.to_string(),
        ]);
    }
    table.print();
    println!(
        "Watch: with W = N the strict quorum refuses every write whose home includes the down \
         node; the sloppy one accepts them, and the hints bring the home replica up to date."
    );
}

/// The share of acked puts among those whose home replicas include node 0.
fn acked_on_node_0(puts: &[PutRecord], nodes: usize, n: usize) -> String {
    let mine: Vec<_> = puts
        .iter()
        .filter(|p| homes(p.key, nodes, n).contains(&0))
        .collect();
    let acked = mine.iter().filter(|p| p.acked.is_some()).count() as u64;
    percent(acked, mine.len() as u64)
}
