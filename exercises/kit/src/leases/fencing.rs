//! The fencing exercise's cluster: a lock server (node 0) grants leases with fencing tokens, a
//! storage node (node 1, the learner's rules inside) takes writes, and writers (nodes 2..) take
//! a lease, then write under its token. A writer decides it holds the lease when the grant
//! arrives and does not look again before each write, like a process that checked, then stopped
//! for a GC pause: its late writes carry an old token.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::{LockServer, Msg};
use crate::cluster::{Cluster, Config, Ctx, Fault, FaultPlan, Node, NodeId};
use crate::lab::{Table, bar_chart};

/// One write as the storage node received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write {
    /// Who sent it.
    pub writer: NodeId,
    pub resource: u64,
    /// The fencing token of the writer's lease on `resource`.
    pub token: u64,
    pub value: u64,
}

/// A write refused: a write with token `highest` was already accepted for its resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub highest: u64,
}

/// The storage node's rules: which writes to apply.
pub trait Storage: 'static {
    fn write(&mut self, write: Write) -> Result<(), Rejected>;
    /// The value of the last write applied to `resource`.
    fn read(&self, resource: u64) -> Option<u64>;
}

/// Storage without fencing: applies every write (for the lab's comparison).
#[derive(Default)]
pub struct Unfenced(BTreeMap<u64, u64>);

impl Storage for Unfenced {
    fn write(&mut self, write: Write) -> Result<(), Rejected> {
        self.0.insert(write.resource, write.value);
        Ok(())
    }

    fn read(&self, resource: u64) -> Option<u64> {
        self.0.get(&resource).copied()
    }
}

/// The lock server and the storage node's addresses; writers come after them.
pub const LOCK: NodeId = 0;
pub const STORAGE: NodeId = 1;

/// The shape of a run.
#[derive(Clone, Debug)]
pub struct Setup {
    pub writers: usize,
    /// Resources, each guarded by its own lease (key = resource).
    pub resources: u64,
    pub ttl: Duration,
    /// GC pauses per writer over the run, and their length range.
    pub pauses: usize,
    pub pause: (Duration, Duration),
    /// How many writes a writer makes under each lease (a range, drawn each time).
    pub writes: (u32, u32),
    pub duration: Duration,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            writers: 3,
            resources: 2,
            ttl: Duration::from_millis(150),
            pauses: 2,
            pause: (Duration::from_millis(100), Duration::from_millis(400)),
            writes: (1, 3),
            duration: Duration::from_millis(1000),
        }
    }
}

/// What the storage node saw, in order.
#[derive(Clone, Debug, Default)]
pub struct Log {
    /// Every write received, in the order the storage node handled them, and whether it was
    /// applied.
    pub writes: Vec<(Write, bool)>,
    /// What the storage node read for each resource at the end.
    pub last: BTreeMap<u64, Option<u64>>,
}

impl Log {
    /// Writes applied after a write with a higher token had been applied to the same resource:
    /// a stale lease holder overwrote the newer holder's work.
    pub fn conflicting(&self) -> usize {
        let mut highest = BTreeMap::new();
        let mut count = 0;
        for (w, applied) in self.writes.iter().filter(|(_, applied)| *applied) {
            let _ = applied;
            let top = highest.entry(w.resource).or_insert(0);
            count += usize::from(w.token < *top);
            *top = w.token.max(*top);
        }
        count
    }
}

#[allow(clippy::large_enum_variant)] // one per simulated host: size does not matter
enum Member<S> {
    Lock(LockServer),
    Storage(S, Vec<(Write, bool)>),
    Writer(Writer),
}

struct Writer {
    resources: u64,
    writes: (u32, u32),
    next_req: u64,
    /// (resource, token, writes left) while the writer believes it holds a lease.
    job: Option<(u64, u64, u32)>,
    waiting: bool,
    idle_until: Duration,
    rng: StdRng,
}

impl<S: Storage> Node for Member<S> {
    type Msg = Msg;

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match (self, msg) {
            (Member::Lock(lock), msg) => lock.on_message(from, msg, ctx),
            (
                Member::Storage(store, log),
                Msg::Write {
                    resource,
                    token,
                    value,
                },
            ) => {
                let write = Write {
                    writer: from,
                    resource,
                    token,
                    value,
                };
                let accepted = store.write(write).is_ok();
                log.push((write, accepted));
                ctx.send(
                    from,
                    Msg::WriteReply {
                        resource,
                        token,
                        accepted,
                    },
                );
            }
            (Member::Writer(w), Msg::Granted(grant)) if w.job.is_none() && w.waiting => {
                w.waiting = false;
                w.job = Some((
                    grant.key,
                    grant.token,
                    w.rng.random_range(w.writes.0..=w.writes.1),
                ));
            }
            (Member::Writer(w), Msg::Refused { .. }) => w.waiting = false,
            _ => {}
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let Member::Writer(w) = self else {
            return;
        };
        let now = ctx.now();
        match w.job {
            Some((resource, token, left)) => {
                let value = w.rng.random_range(0..1_000_000);
                ctx.send(
                    STORAGE,
                    Msg::Write {
                        resource,
                        token,
                        value,
                    },
                );
                w.job = (left > 1).then_some((resource, token, left - 1));
                if w.job.is_none() {
                    w.idle_until = now + Duration::from_millis(w.rng.random_range(0..100));
                }
            }
            None if now >= w.idle_until && !w.waiting => {
                w.next_req += 1;
                w.waiting = true;
                let key = w.rng.random_range(0..w.resources);
                ctx.send(
                    LOCK,
                    Msg::Acquire {
                        req: w.next_req,
                        key,
                    },
                );
            }
            None => {}
        }
    }
}

fn cluster<S: Storage>(
    setup: &Setup,
    seed: u64,
    make: impl Fn() -> S + 'static,
) -> Cluster<Member<S>> {
    let config = Config {
        nodes: 2 + setup.writers,
        limit: setup.duration,
        ..Config::default()
    };
    let (ttl, resources, writes) = (setup.ttl, setup.resources, setup.writes);
    Cluster::new(config, seed, move |id| match id {
        LOCK => Member::Lock(LockServer::new(ttl)),
        STORAGE => Member::Storage(make(), Vec::new()),
        _ => Member::Writer(Writer {
            resources,
            writes,
            next_req: 0,
            job: None,
            waiting: false,
            idle_until: Duration::ZERO,
            rng: StdRng::seed_from_u64(seed ^ (id as u64) << 40),
        }),
    })
}

fn finish<S: Storage>(mut cluster: Cluster<Member<S>>, setup: &Setup) -> Log {
    cluster.run();
    cluster
        .node(STORAGE, |node| match node {
            Member::Storage(store, log) => Log {
                writes: log.clone(),
                last: (0..setup.resources).map(|r| (r, store.read(r))).collect(),
            },
            _ => unreachable!("node 1 is the storage node"),
        })
        .expect("the storage node never crashes")
}

/// One run of `setup` from `seed`: writers pause for a GC at random moments.
pub fn run<S: Storage>(setup: &Setup, seed: u64, make: impl Fn() -> S + 'static) -> Log {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut plan = FaultPlan::new();
    for writer in 2..2 + setup.writers {
        for _ in 0..setup.pauses {
            let at = rng.random_range(0..setup.duration.as_millis() as u64 * 3 / 4);
            let length = rng.random_range(setup.pause.0..=setup.pause.1);
            plan = plan.at(Duration::from_millis(at), Fault::Pause(writer, length));
        }
    }
    let mut cluster = cluster(setup, seed, make);
    cluster.faults(plan);
    finish(cluster, setup)
}

/// The classic story, scripted: writer node 2 takes the only lease and is paused for `pause`
/// as soon as the grant arrives, before its three writes; writer node 3, which starts later,
/// takes the lease once it has expired and makes its three writes; then node 2 wakes up and
/// writes with its old token.
pub fn gc_pause_story<S: Storage>(
    seed: u64,
    pause: Duration,
    make: impl Fn() -> S + 'static,
) -> Log {
    let setup = Setup {
        writers: 2,
        resources: 1,
        writes: (3, 3),
        duration: Duration::from_millis(900),
        ..Setup::default()
    };
    let mut cluster = cluster(&setup, seed, make);
    cluster.inject(Fault::Pause(3, Duration::from_millis(100)));
    let has_lease = |c: &Cluster<Member<S>>| {
        c.node(2, |n| matches!(n, Member::Writer(w) if w.job.is_some())) == Some(true)
    };
    while !has_lease(&cluster) {
        let next = cluster.now() + Duration::from_millis(1);
        cluster.run_until(next);
    }
    cluster.inject(Fault::Pause(2, pause));
    finish(cluster, &setup)
}

/// The lab: `seeds` runs without fencing and with the learner's.
pub fn lab<S: Storage>(setup: &Setup, seeds: u64, make: impl Fn() -> S + Clone + 'static) {
    println!(
        "{} writers on {} resources, lease {} ms, {} GC pauses of {}–{} ms per writer, {seeds} runs\n",
        setup.writers,
        setup.resources,
        setup.ttl.as_millis(),
        setup.pauses,
        setup.pause.0.as_millis(),
        setup.pause.1.as_millis()
    );
    let mut table = Table::new(&[
        "storage",
        "writes",
        "rejected",
        "conflicting writes applied",
    ]);
    let mut bars = Vec::new();
    let mut row = |name: &str, logs: Vec<Log>| {
        let writes: usize = logs.iter().map(|l| l.writes.len()).sum();
        let rejected: usize = logs
            .iter()
            .map(|l| l.writes.iter().filter(|w| !w.1).count())
            .sum();
        let conflicting: usize = logs.iter().map(Log::conflicting).sum();
        table.row(&[
            name.to_string(),
            writes.to_string(),
            rejected.to_string(),
            conflicting.to_string(),
        ]);
        bars.push((name.to_string(), conflicting as f64));
    };
    row(
        "no fencing",
        (0..seeds)
            .map(|s| run(setup, s, Unfenced::default))
            .collect(),
    );
    row(
        "fencing tokens",
        (0..seeds).map(|s| run(setup, s, make.clone())).collect(),
    );
    table.print();
    println!("\nwrites of a stale lease holder applied over a newer holder's:");
    println!("{}", bar_chart(&bars, 40));
}
