//! The lease exercise's cluster: a lock server (node 0) and holders (nodes 1..) that poll for
//! the lease, hold it for a few renewals and let it lapse, each on its own drifting clock. The
//! holder's bookkeeping is the learner's ([`Holder`]); this module drives it and records both
//! sides' views: when the server granted the lease to whom, and when each holder believed it held
//! it, both on the simulation's true clock.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::{Grant, LockServer, Msg};
use crate::cluster::{Cluster, Config, Ctx, Node, NodeId};
use crate::lab::{Table, bar_chart, percent};

/// The holder's side of a lease: what it sent, what it was granted, whether it may act now.
/// `now` is always the holder's own clock.
pub trait Holder: Clone + 'static {
    /// The holder sent acquire-or-renew request `req` at `now`.
    fn sent(&mut self, req: u64, now: Duration);
    /// The server granted request `grant.req`; the grant arrived at `now`.
    fn granted(&mut self, grant: &Grant, now: Duration);
    /// Whether the holder may act as the lease's holder at `now`.
    fn holds(&self, now: Duration) -> bool;
}

/// The shape of a run.
#[derive(Clone, Debug)]
pub struct Setup {
    pub holders: usize,
    /// The lease the server grants.
    pub ttl: Duration,
    /// How far apart the clocks run: over any span, a holder's clock measures between
    /// (1 − drift) and (1 + drift) of what the server's clock measures.
    pub drift: f64,
    pub loss: f64,
    pub duplicate: f64,
    pub duration: Duration,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            holders: 3,
            ttl: Duration::from_millis(200),
            drift: 0.05,
            loss: 0.1,
            duplicate: 0.1,
            duration: Duration::from_millis(1000),
        }
    }
}

/// What a run recorded, on the true clock.
#[derive(Clone, Debug, Default)]
pub struct Views {
    /// Every grant the server made (renewals too): (when, to whom).
    pub grants: Vec<(Duration, NodeId)>,
    /// Milliseconds each holder (index `holder - 1`) believed it held the lease.
    pub held_ms: Vec<u64>,
    /// Milliseconds someone believed it held the lease.
    pub any_held_ms: u64,
    /// Each millisecond at which a holder believed it held the lease while the server had
    /// granted it to another since its own last grant: (when, believer, the server's holder).
    pub conflicts: Vec<(Duration, NodeId, NodeId)>,
}

#[allow(clippy::large_enum_variant)] // one per simulated host: size does not matter
enum Member<H> {
    Server(LockServer),
    Holder(HolderNode<H>),
}

struct HolderNode<H> {
    lease: H,
    ttl: Duration,
    next_req: u64,
    last_sent: Option<Duration>,
    working: bool,
    renewals_left: u32,
    idle_until: Duration,
    rng: StdRng,
}

impl<H: Holder> HolderNode<H> {
    fn send(&mut self, ctx: &mut Ctx<'_, Msg>) {
        self.next_req += 1;
        let now = ctx.now();
        self.lease.sent(self.next_req, now);
        self.last_sent = Some(now);
        ctx.send(
            0,
            Msg::Acquire {
                req: self.next_req,
                key: 0,
            },
        );
    }
}

impl<H: Holder> Node for Member<H> {
    type Msg = Msg;

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match self {
            Member::Server(server) => server.on_message(from, msg, ctx),
            Member::Holder(node) => {
                if let Msg::Granted(grant) = msg {
                    node.lease.granted(&grant, ctx.now());
                    if !node.working && node.lease.holds(ctx.now()) {
                        node.working = true;
                        node.renewals_left = node.rng.random_range(0..=2);
                    }
                }
            }
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let Member::Holder(node) = self else {
            return;
        };
        let now = ctx.now();
        if node.lease.holds(now) {
            let due = node.last_sent.is_none_or(|t| now >= t + node.ttl / 3);
            if node.working && node.renewals_left > 0 && due {
                node.renewals_left -= 1;
                node.send(ctx);
            }
        } else {
            if node.working {
                // The job is over: stay away a while, so the others get their turn.
                node.working = false;
                node.idle_until = now + node.ttl.mul_f64(node.rng.random_range(0.0..1.0));
            }
            if now >= node.idle_until {
                node.send(ctx);
            }
        }
    }
}

/// One run of `setup` from `seed`, with holders made by `make`.
pub fn run<H: Holder>(setup: &Setup, seed: u64, make: impl Fn() -> H + 'static) -> Views {
    let mut rng = StdRng::seed_from_u64(seed);
    let config = Config {
        nodes: 1 + setup.holders,
        loss: setup.loss,
        duplicate: setup.duplicate,
        limit: setup.duration,
        ..Config::default()
    };
    // Every node's clock: the server's runs within 1% of true time; each holder's runs at a
    // ratio of the server's within the drift bound, often at its very edge.
    let mut clocks = vec![(
        Duration::from_millis(rng.random_range(0..5_000)),
        rng.random_range(0.99..1.01),
    )];
    for _ in 0..setup.holders {
        let ratio = match rng.random_range(0..3) {
            0 => 1.0 - setup.drift,
            1 => 1.0 + setup.drift,
            _ => rng.random_range(1.0 - setup.drift..=1.0 + setup.drift),
        };
        let offset = Duration::from_millis(rng.random_range(0..5_000));
        clocks.push((offset, clocks[0].1 * ratio));
    }
    let ttl = setup.ttl;
    let node_seed: u64 = rng.random();
    let mut cluster = Cluster::new(config, seed, move |id| match id {
        0 => Member::Server(LockServer::new(ttl)),
        _ => Member::Holder(HolderNode {
            lease: make(),
            ttl,
            next_req: 0,
            last_sent: None,
            working: false,
            renewals_left: 0,
            idle_until: Duration::ZERO,
            rng: StdRng::seed_from_u64(node_seed ^ id as u64),
        }),
    });
    for (id, &(offset, rate)) in clocks.iter().enumerate() {
        cluster.set_clock(id, offset, rate);
    }
    type Snapshots<H> = Vec<Vec<(Duration, H)>>;
    let snapshots: Rc<RefCell<Snapshots<H>>> =
        Rc::new(RefCell::new(vec![Vec::new(); setup.holders]));
    let grants = Rc::new(RefCell::new(Vec::new()));
    let (snaps, seen) = (Rc::clone(&snapshots), Rc::clone(&grants));
    cluster.observe(move |id, node, now| match node {
        Member::Server(server) => {
            let mut seen = seen.borrow_mut();
            for &(holder, _, _) in &server.grants[seen.len()..] {
                seen.push((now, holder));
            }
        }
        Member::Holder(h) => snaps.borrow_mut()[id - 1].push((now, h.lease.clone())),
    });
    cluster.run();
    let grants: Vec<(Duration, NodeId)> = grants.borrow().clone();
    let owner_at = |t: Duration| {
        let i = grants.partition_point(|&(at, _)| at <= t);
        (i > 0).then(|| grants[i - 1].1)
    };
    let end_ms = setup.duration.as_millis() as u64;
    let mut views = Views {
        held_ms: vec![0; setup.holders],
        ..Views::default()
    };
    let mut any = vec![false; end_ms as usize];
    for (k, snaps) in snapshots.borrow().iter().enumerate() {
        let (offset, rate) = clocks[k + 1];
        for (i, (from, lease)) in snaps.iter().enumerate() {
            let to = snaps.get(i + 1).map_or(setup.duration, |s| s.0);
            let first = from.as_millis() as u64;
            let last = (to.as_millis() as u64).min(end_ms);
            for ms in first..last {
                let t = Duration::from_millis(ms);
                if t < *from || !lease.holds(offset + t.mul_f64(rate)) {
                    continue;
                }
                views.held_ms[k] += 1;
                any[ms as usize] = true;
                match owner_at(t) {
                    Some(owner) if owner == k + 1 => {}
                    Some(owner) => views.conflicts.push((t, k + 1, owner)),
                    None => views.conflicts.push((t, k + 1, 0)),
                }
            }
        }
    }
    views.any_held_ms = any.iter().filter(|&&b| b).count() as u64;
    views.grants = grants;
    views
}

/// The lab: runs `seeds` seeds of `setup` for each safety margin the holder assumes, and shows
/// how long someone held the lease and how long two believed they did.
pub fn lab<H: Holder>(
    setup: &Setup,
    margins: &[f64],
    seeds: u64,
    make: impl Fn(f64) -> H + Clone + 'static,
) {
    println!(
        "{} holders, lease {} ms, clocks apart by up to {:.1}%, loss {:.0}%, {seeds} runs of {} ms each\n",
        setup.holders,
        setup.ttl.as_millis(),
        setup.drift * 100.0,
        setup.loss * 100.0,
        setup.duration.as_millis()
    );
    let mut table = Table::new(&[
        "margin assumed",
        "lease held",
        "ms of two holders",
        "runs with two",
    ]);
    let mut bars = Vec::new();
    for &margin in margins {
        let (mut held, mut overlap, mut bad) = (0, 0, 0);
        for seed in 0..seeds {
            let make = make.clone();
            let views = run(setup, seed, move || make(margin));
            held += views.any_held_ms;
            overlap += views.conflicts.len() as u64;
            bad += u64::from(!views.conflicts.is_empty());
        }
        let label = format!("{:.1}%", margin * 100.0);
        let total = seeds * setup.duration.as_millis() as u64;
        table.row(&[
            label.clone(),
            percent(held, total),
            overlap.to_string(),
            format!("{bad}/{seeds}"),
        ]);
        bars.push((label, overlap as f64));
    }
    table.print();
    println!("\nms during which a holder acted on a lease the server had given to another:");
    println!("{}", bar_chart(&bars, 40));
}
