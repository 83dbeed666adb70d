//! `quorum_store`: versions, the messages of a leaderless N/R/W store, clients that record what
//! they were told, the stale-read check, and the lab.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::cluster::{Client, Cluster, Config, Disk, Fault, FaultPlan, Node, NodeId};
use crate::hashing::mix64;
use crate::lab::{Table, bar_chart, percent, whole_millis};

pub type Key = u64;
pub type Value = u64;

/// A write's version: a timestamp (microseconds on the coordinator's clock), then the
/// coordinator's id to break ties. Versions compare field by field, so two different writers'
/// versions are never equal. `Version::default()` (0, 0) is "never written".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub stamp: u64,
    pub node: NodeId,
}

/// What a replica keeps on disk: each key's version and value.
pub type Data = BTreeMap<Key, (Version, Value)>;

/// What clients and replicas send each other. `req` is a client's request number; `op` a
/// coordinator's operation number (so it can match its replicas' answers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// Client → any node (the coordinator): write.
    Put { req: u64, key: Key, value: Value },
    /// Coordinator → client: W replicas hold the write, at this version.
    PutOk { req: u64, version: Version },
    /// Client → any node (the coordinator): read.
    Get { req: u64, key: Key },
    /// Coordinator → client: the newest of R replicas' answers (`None`, version default: never
    /// written).
    GetOk {
        req: u64,
        value: Option<Value>,
        version: Version,
    },
    /// Coordinator → replica: keep this version if it is newer than yours (a write, or a read
    /// repair), and say so.
    Store {
        op: u64,
        key: Key,
        value: Value,
        version: Version,
    },
    /// Replica → coordinator: I hold that version of the key, or a newer one.
    Stored { op: u64 },
    /// Coordinator → replica: what do you hold for `key`?
    Fetch { op: u64, key: Key },
    /// Replica → coordinator: this (`None`, version default: nothing).
    Fetched {
        op: u64,
        value: Option<Value>,
        version: Version,
    },
}

/// An operation a node coordinates, waiting for its replicas (the exercise's bookkeeping).
pub enum Pending {
    Put {
        client: NodeId,
        req: u64,
        version: Version,
        /// The replicas that hold the write (this node included).
        acks: BTreeSet<NodeId>,
    },
    Get {
        client: NodeId,
        req: u64,
        key: Key,
        /// Each replica's answer (this node's included).
        replies: BTreeMap<NodeId, (Option<Value>, Version)>,
    },
}

/// Short constructors, for tests that deliver messages by hand.
impl Msg {
    pub fn put(req: u64, key: Key, value: Value) -> Msg {
        Msg::Put { req, key, value }
    }
    pub fn store(op: u64, key: Key, value: Value, version: Version) -> Msg {
        Msg::Store {
            op,
            key,
            value,
            version,
        }
    }
    pub fn fetched(op: u64, value: Option<Value>, version: Version) -> Msg {
        Msg::Fetched { op, value, version }
    }
    pub fn get_ok(req: u64, value: Option<Value>, version: Version) -> Msg {
        Msg::GetOk {
            req,
            value,
            version,
        }
    }
}

/// One client operation and what came back (`None`: no answer within the timeout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuorumOp {
    Put {
        client: NodeId,
        key: Key,
        value: Value,
        invoked: Duration,
        acked: Option<(Duration, Version)>,
    },
    Get {
        client: NodeId,
        coordinator: NodeId,
        key: Key,
        invoked: Duration,
        answer: Option<(Duration, Option<Value>, Version)>,
    },
}

impl QuorumOp {
    /// Whether the client got an answer.
    pub fn answered(&self) -> bool {
        match self {
            QuorumOp::Put { acked, .. } => acked.is_some(),
            QuorumOp::Get { answer, .. } => answer.is_some(),
        }
    }
}

/// The clients of a run: each puts and gets a few keys at random coordinators.
#[derive(Clone, Debug)]
pub struct Workload {
    pub clients: usize,
    pub ops: usize,
    pub keys: u64,
    pub timeout: Duration,
    /// Longest pause between a client's operations.
    pub think: Duration,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            clients: 3,
            ops: 8,
            keys: 2,
            timeout: Duration::from_millis(150),
            think: Duration::from_millis(20),
        }
    }
}

/// Adds `w.clients` clients to `cluster` (of `nodes` nodes); returns what they did and were told.
pub fn clients<N: Node<Msg = Msg>>(
    cluster: &mut Cluster<N>,
    nodes: usize,
    w: &Workload,
    seed: u64,
) -> Rc<RefCell<Vec<QuorumOp>>> {
    let record = Rc::new(RefCell::new(Vec::new()));
    for k in 0..w.clients {
        let (record, w) = (Rc::clone(&record), w.clone());
        let mut rng = StdRng::seed_from_u64(mix64(seed ^ (k as u64 + 1) << 44));
        cluster.client(move |c| async move {
            for i in 0..w.ops {
                let req = i as u64;
                let key = rng.random_range(0..w.keys);
                let coordinator = rng.random_range(0..nodes);
                let invoked = c.now();
                if rng.random_bool(0.5) {
                    let value = c.id() as u64 * 1_000_000 + req;
                    c.send(coordinator, Msg::Put { req, key, value });
                    let acked = match answer(&c, req, w.timeout).await {
                        Some(Msg::PutOk { version, .. }) => Some((c.now(), version)),
                        _ => None,
                    };
                    let client = c.id();
                    record.borrow_mut().push(QuorumOp::Put {
                        client,
                        key,
                        value,
                        invoked,
                        acked,
                    });
                } else {
                    c.send(coordinator, Msg::Get { req, key });
                    let answer = match answer(&c, req, w.timeout).await {
                        Some(Msg::GetOk { value, version, .. }) => Some((c.now(), value, version)),
                        _ => None,
                    };
                    let client = c.id();
                    record.borrow_mut().push(QuorumOp::Get {
                        client,
                        coordinator,
                        key,
                        invoked,
                        answer,
                    });
                }
                let think = rng.random_range(0..=w.think.as_millis() as u64);
                c.sleep(Duration::from_millis(think)).await;
            }
        });
    }
    record
}

/// Runs the default workload on `nodes` nodes built by `build(id, disk)`, under `faults`, with
/// 3% loss and 10% duplicates if `lossy`; returns what the clients did and were told.
pub fn run_workload<N: Node<Msg = Msg>>(
    nodes: usize,
    seed: u64,
    faults: FaultPlan,
    lossy: bool,
    build: impl Fn(NodeId, Disk<Data>) -> N + 'static,
) -> Vec<QuorumOp> {
    let (loss, duplicate) = if lossy { (0.03, 0.1) } else { (0.0, 0.0) };
    let config = Config {
        nodes,
        loss,
        duplicate,
        ..Config::default()
    };
    let mut cluster = Cluster::with_disks(config, seed, build);
    cluster.faults(faults);
    let ops = clients(&mut cluster, nodes, &Workload::default(), seed);
    cluster.run();
    ops.borrow().clone()
}

async fn answer(c: &Client<Msg>, req: u64, timeout: Duration) -> Option<Msg> {
    let deadline = c.now() + timeout;
    loop {
        let left = deadline.checked_sub(c.now())?;
        match c.recv(left).await? {
            (_, msg @ (Msg::PutOk { req: r, .. } | Msg::GetOk { req: r, .. })) if r == req => {
                return Some(msg);
            }
            _ => {}
        }
    }
}

/// The reads that broke the promise of R + W > N: each read must return the newest write
/// acknowledged before the read began, or a newer one, and a version must come with the value
/// it was written with. One line per broken read.
pub fn stale_reads(ops: &[QuorumOp]) -> Vec<String> {
    let mut written: BTreeMap<Version, Value> = BTreeMap::new();
    for op in ops {
        if let QuorumOp::Put {
            value,
            acked: Some((_, version)),
            ..
        } = op
        {
            written.insert(*version, *value);
        }
    }
    let mut broken = Vec::new();
    for op in ops {
        let QuorumOp::Get {
            client,
            coordinator,
            key,
            invoked,
            answer: Some((_, value, version)),
        } = op
        else {
            continue;
        };
        let newest = ops
            .iter()
            .filter_map(|p| match p {
                QuorumOp::Put {
                    key: k,
                    acked: Some((at, v)),
                    value,
                    ..
                } if k == key && at < invoked => Some((*v, *value)),
                _ => None,
            })
            .max();
        if let Some((v, x)) = newest.filter(|(v, _)| version < v) {
            broken.push(format!(
                "client {client} read key {key} at {invoked:?} via node {coordinator} and got \
                 {value:?} at {version:?}, but {x} at {v:?} had been acknowledged before: a stale read"
            ));
        } else if let Some(x) = written.get(version).filter(|x| Some(**x) != *value) {
            broken.push(format!(
                "client {client} read key {key} = {value:?} at {version:?}, but that version was \
                 written with {x}"
            ));
        }
    }
    broken
}

/// The lab's knobs.
#[derive(Clone, Debug)]
pub struct LabKnobs {
    pub n: usize,
    /// The (R, W) pairs to compare.
    pub quorums: Vec<(usize, usize)>,
    pub loss: f64,
    pub max_latency_ms: u64,
    /// A minority of the nodes is cut off from the rest for this long, from 300 ms in.
    pub partition_ms: u64,
}

/// Runs the same workload for each (R, W) and prints stale reads and availability.
pub fn lab<N: Node<Msg = Msg>>(
    knobs: LabKnobs,
    build: impl Fn(NodeId, usize, usize, usize, Disk<Data>) -> N + Clone + 'static,
) {
    let ms = Duration::from_millis;
    let (n, part) = (knobs.n, ms(knobs.partition_ms));
    let minority: Vec<NodeId> = (0..(n.saturating_sub(1)) / 2).collect();
    let majority: Vec<NodeId> = (minority.len()..n).collect();
    println!(
        "N = {n}, latency 5-{} ms, loss {:.0}%; nodes {minority:?} cut off from {majority:?} \
         from 300 ms for {} ms",
        knobs.max_latency_ms,
        knobs.loss * 100.0,
        knobs.partition_ms
    );
    let mut table = Table::new(&[
        "R, W",
        "R + W > N",
        "stale reads",
        "puts acked (partition)",
        "gets answered (partition)",
        "mean put",
        "mean get",
    ]);
    let mut chart = Vec::new();
    for &(r, w) in &knobs.quorums {
        let config = Config {
            nodes: n,
            loss: knobs.loss,
            latency: (ms(5), ms(knobs.max_latency_ms.max(5))),
            limit: Duration::from_secs(60),
            ..Config::default()
        };
        let b = build.clone();
        let mut cluster = Cluster::with_disks(config, 11, move |id, disk| b(id, n, r, w, disk));
        if part > Duration::ZERO && !minority.is_empty() {
            cluster.faults(
                FaultPlan::new()
                    .at(
                        ms(300),
                        Fault::Partition(minority.clone(), majority.clone()),
                    )
                    .at(ms(300) + part, Fault::Heal),
            );
        }
        let work = Workload {
            clients: 4,
            ops: 150,
            keys: 5,
            timeout: ms(200),
            think: ms(10),
        };
        let ops = clients(&mut cluster, n, &work, 11);
        cluster.run();
        let ops = ops.borrow();
        let during = |t: &Duration| *t >= ms(300) && *t < ms(300) + part;
        let (mut puts, mut acked, mut gets, mut answered) = (0, 0, 0, 0);
        let (mut put_time, mut get_time, mut reads) = (Duration::ZERO, Duration::ZERO, 0);
        let (mut writes_done, mut all_gets) = (0u32, 0u64);
        for op in ops.iter() {
            match op {
                QuorumOp::Put {
                    invoked, acked: a, ..
                } => {
                    if let Some((t, _)) = a {
                        put_time += *t - *invoked;
                        writes_done += 1;
                    }
                    if during(invoked) {
                        puts += 1;
                        acked += u64::from(a.is_some());
                    }
                }
                QuorumOp::Get {
                    invoked, answer, ..
                } => {
                    all_gets += 1;
                    if let Some((t, _, _)) = answer {
                        get_time += *t - *invoked;
                        reads += 1;
                    }
                    if during(invoked) {
                        gets += 1;
                        answered += u64::from(answer.is_some());
                    }
                }
            }
        }
        let stale = stale_reads(&ops).len() as u64;
        table.row(&[
            format!("{r}, {w}"),
            (r + w > n).to_string(),
            format!("{stale} ({})", percent(stale, all_gets)),
            percent(acked, puts),
            percent(answered, gets),
            whole_millis(put_time / writes_done.max(1)),
            whole_millis(get_time / reads.max(1)),
        ]);
        chart.push((format!("R={r} W={w} stale reads"), stale as f64));
    }
    table.print();
    println!("{}", bar_chart(&chart, 40));
    println!(
        "Watch: stale reads appear only where R + W <= N; larger quorums cost latency and, during \
         the partition, availability on the minority side."
    );
}
