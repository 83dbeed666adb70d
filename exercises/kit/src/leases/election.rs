//! The election exercise's cluster: a versioned store (node 0, one key, like an etcd key with a
//! lease: every change bumps its version, and the key's lease expires on the store's clock) and
//! candidates (nodes 1..) that elect a leader through it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::cluster::{Cluster, Config, Ctx, Fault, FaultPlan, Node, NodeId};
use crate::lab::Table;

/// The store's address.
pub const STORE: NodeId = 0;

/// What the election key holds: who leads, in which term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leader {
    pub term: u64,
    pub node: NodeId,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    /// Read the key.
    Get,
    /// The key: the last leader written (kept after its lease expired, with `expired` set), and
    /// its version (0: never written). Every write and every expiry bumps the version.
    Got {
        leader: Option<Leader>,
        expired: bool,
        version: u64,
    },
    /// Compare-and-set: write `leader`, with a lease of `ttl`, only if the version is still
    /// `expected`.
    Cas {
        expected: u64,
        leader: Leader,
        ttl: Duration,
    },
    /// Unconditional write.
    Put { leader: Leader, ttl: Duration },
    /// The answer to a CAS or a put: whether it was written, and the key's version now.
    Written { ok: bool, version: u64 },
}

/// The store: one key with a version and a lease.
#[derive(Default)]
pub struct Store {
    leader: Option<Leader>,
    version: u64,
    expires: Duration,
    expired: bool,
}

impl Node for Store {
    type Msg = Msg;

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        let now = ctx.now();
        if self.leader.is_some() && !self.expired && now >= self.expires {
            self.expired = true;
            self.version += 1;
        }
        let write = |store: &mut Store, leader: Leader, ttl: Duration| {
            store.leader = Some(leader);
            store.expires = now + ttl;
            store.expired = false;
            store.version += 1;
        };
        let reply = match msg {
            Msg::Get => Msg::Got {
                leader: self.leader,
                expired: self.expired,
                version: self.version,
            },
            Msg::Cas {
                expected,
                leader,
                ttl,
            } => {
                let ok = expected == self.version;
                if ok {
                    write(self, leader, ttl);
                }
                Msg::Written {
                    ok,
                    version: self.version,
                }
            }
            Msg::Put { leader, ttl } => {
                write(self, leader, ttl);
                Msg::Written {
                    ok: true,
                    version: self.version,
                }
            }
            _ => return,
        };
        ctx.send(from, reply);
    }
}

/// A candidate, as the recorder sees it.
pub trait Elector: Node<Msg = Msg> {
    /// The term this node believes it leads, if any.
    fn leading(&self) -> Option<u64>;
}

enum Member<C> {
    Store(Store),
    Candidate(C),
}

impl<C: Elector> Node for Member<C> {
    type Msg = Msg;

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match self {
            Member::Store(s) => s.on_message(from, msg, ctx),
            Member::Candidate(c) => c.on_message(from, msg, ctx),
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Msg>) {
        if let Member::Candidate(c) = self {
            c.on_tick(ctx);
        }
    }
}

/// The shape of a run.
#[derive(Clone, Debug)]
pub struct Setup {
    pub candidates: usize,
    pub ttl: Duration,
    /// Crash one candidate at a random time (and restart it later), and pause another.
    pub faults: bool,
    pub loss: f64,
    pub duration: Duration,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            candidates: 3,
            ttl: Duration::from_millis(150),
            faults: true,
            loss: 0.05,
            duration: Duration::from_millis(1000),
        }
    }
}

/// Who believed it led which term, on the true clock.
#[derive(Clone, Debug, Default)]
pub struct Views {
    /// (when it started believing, node, term), one entry per node and term.
    pub reigns: Vec<(Duration, NodeId, u64)>,
}

impl Views {
    /// Terms led by more than one node, with those nodes.
    pub fn shared_terms(&self) -> Vec<(u64, Vec<NodeId>)> {
        let mut by_term: BTreeMap<u64, Vec<NodeId>> = BTreeMap::new();
        for &(_, node, term) in &self.reigns {
            by_term.entry(term).or_default().push(node);
        }
        by_term.into_iter().filter(|(_, n)| n.len() > 1).collect()
    }
}

fn cluster<C: Elector>(
    setup: &Setup,
    seed: u64,
    make: impl Fn(Duration) -> C + 'static,
) -> (Cluster<Member<C>>, Rc<RefCell<Views>>) {
    let config = Config {
        nodes: 1 + setup.candidates,
        loss: setup.loss,
        limit: setup.duration,
        ..Config::default()
    };
    let ttl = setup.ttl;
    let mut cluster = Cluster::new(config, seed, move |id| match id {
        STORE => Member::Store(Store::default()),
        _ => Member::Candidate(make(ttl)),
    });
    let views = Rc::new(RefCell::new(Views::default()));
    let record = Rc::clone(&views);
    cluster.observe(move |id, node, now| {
        if let Member::Candidate(c) = node
            && let Some(term) = c.leading()
        {
            let mut views = record.borrow_mut();
            if !views.reigns.iter().any(|&(_, n, t)| n == id && t == term) {
                views.reigns.push((now, id, term));
            }
        }
    });
    (cluster, views)
}

/// One run from `seed`: with `faults`, one candidate crashes (and restarts 300 ms later) and
/// another pauses for longer than the lease, at random times.
pub fn run<C: Elector>(setup: &Setup, seed: u64, make: impl Fn(Duration) -> C + 'static) -> Views {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut cluster, views) = cluster(setup, seed, make);
    if setup.faults {
        let pick = |rng: &mut StdRng| rng.random_range(1..=setup.candidates);
        let (crash, pause) = (pick(&mut rng), pick(&mut rng));
        let at = |rng: &mut StdRng| Duration::from_millis(rng.random_range(150..600));
        let (t1, t2) = (at(&mut rng), at(&mut rng));
        let length = setup.ttl.mul_f64(rng.random_range(1.0..3.0));
        cluster.faults(
            FaultPlan::new()
                .at(t1, Fault::Crash(crash))
                .at(t1 + Duration::from_millis(300), Fault::Restart(crash))
                .at(t2, Fault::Pause(pause, length)),
        );
    }
    cluster.run();
    views.take()
}

/// Elect a leader, crash it at `crash_at`, and go on until the end of the run.
pub fn crash_the_leader<C: Elector>(
    setup: &Setup,
    seed: u64,
    crash_at: Duration,
    make: impl Fn(Duration) -> C + 'static,
) -> (Option<(NodeId, u64)>, Views) {
    let (mut cluster, views) = cluster(setup, seed, make);
    cluster.run_until(crash_at);
    let leader = (1..=setup.candidates).find_map(|id| {
        let term = cluster.node(id, |n| match n {
            Member::Candidate(c) => c.leading(),
            Member::Store(_) => None,
        });
        term.flatten().map(|t| (id, t))
    });
    if let Some((id, _)) = leader {
        cluster.inject(Fault::Crash(id));
    }
    cluster.run();
    (leader, views.take())
}

/// The lab: elections over `seeds` runs.
pub fn lab<C: Elector>(setup: &Setup, seeds: u64, make: impl Fn(Duration) -> C + Clone + 'static) {
    println!(
        "{} candidates, lease {} ms, loss {:.0}%, a crash and a pause per run, {seeds} runs of {} ms\n",
        setup.candidates,
        setup.ttl.as_millis(),
        setup.loss * 100.0,
        setup.duration.as_millis()
    );
    let (mut terms, mut shared, mut first) = (0, 0, Duration::ZERO);
    for seed in 0..seeds {
        let views = run(setup, seed, make.clone());
        terms += views.reigns.iter().map(|r| r.2).max().unwrap_or(0);
        shared += views.shared_terms().len();
        first += views.reigns.first().map_or(setup.duration, |r| r.0);
    }
    let mut table = Table::new(&[
        "terms (elections)",
        "per run",
        "terms with two leaders",
        "time to first leader",
    ]);
    table.row(&[
        terms.to_string(),
        format!("{:.1}", terms as f64 / seeds as f64),
        shared.to_string(),
        format!("{} ms", (first / seeds as u32).as_millis()),
    ]);
    table.print();
}
