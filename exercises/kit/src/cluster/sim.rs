//! The cluster: learner nodes as turmoil hosts, clients as tasks of one more host, and the loop
//! that steps the simulation and applies faults on time.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;
use turmoil::net::UdpSocket;

use super::faults::Fault;
use super::mailroom::Mailroom;
use super::{Ctx, FaultPlan, Node, NodeId};
use crate::hashing::mix64;

const NODE_PORT: u16 = 9000;
const FIRST_CLIENT_PORT: u16 = 10000;
const CLIENTS_HOST: &str = "clients";

/// The shape of a simulated cluster and its network.
#[derive(Clone, Debug)]
pub struct Config {
    /// How many nodes (addresses `0..nodes`).
    pub nodes: usize,
    /// How often each node's `on_tick` runs, on its own clock.
    pub tick: Duration,
    /// The network's time resolution: every latency is a multiple of it. Smaller is finer and
    /// slower to simulate (every host is polled once per step).
    pub step: Duration,
    /// Each message's delay is drawn from this range, independently, so messages reorder.
    pub latency: (Duration, Duration),
    /// The chance that any message is lost.
    pub loss: f64,
    /// The chance that a message is delivered twice.
    pub duplicate: f64,
    /// `run` stops here even if clients are still waiting.
    pub limit: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nodes: 3,
            tick: Duration::from_millis(20),
            step: Duration::from_millis(5),
            latency: (Duration::from_millis(5), Duration::from_millis(25)),
            loss: 0.0,
            duplicate: 0.0,
            limit: Duration::from_secs(10),
        }
    }
}

/// A node's durable storage: what it wrote here survives a crash (as if every write were
/// fsynced before the call returned); everything else the node held is lost.
pub struct Disk<D>(Rc<RefCell<D>>);

impl<D: Default> Default for Disk<D> {
    /// An empty disk of its own (for a node made outside a cluster, e.g. for a [`super::Probe`]).
    fn default() -> Self {
        Disk(Rc::new(RefCell::new(D::default())))
    }
}

impl<D> Clone for Disk<D> {
    fn clone(&self) -> Self {
        Disk(Rc::clone(&self.0))
    }
}

impl<D> Disk<D> {
    /// Reads from the disk.
    pub fn read<R>(&self, f: impl FnOnce(&D) -> R) -> R {
        f(&self.0.borrow())
    }

    /// Writes to the disk; durable once this returns.
    pub fn write<R>(&self, f: impl FnOnce(&mut D) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}

/// Messages counted by the network over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Messages handed to the network by nodes (not clients).
    pub sent_by_nodes: u64,
    /// Messages handed to the network by clients.
    pub sent_by_clients: u64,
    /// Messages the kit dropped for `loss` or a lossy link (partitions drop more, uncounted).
    pub dropped: u64,
}

type Observer<N> = Box<dyn FnMut(NodeId, &N, Duration)>;
type ClientTask = Pin<Box<dyn Future<Output = ()>>>;
type ClientFactory<M> = Box<dyn FnOnce(Client<M>) -> ClientTask>;

/// What the hosts share with the cluster (all in one thread: turmoil runs every host here).
struct Shared<N: Node> {
    config: Config,
    seed: u64,
    mail: Mailroom<N::Msg>,
    slots: Vec<RefCell<Option<N>>>,
    incarnations: Vec<Cell<u64>>,
    clocks: Vec<Cell<(Duration, f64)>>,
    paused_until: Vec<Cell<Duration>>,
    lossy_links: RefCell<BTreeMap<(NodeId, NodeId), f64>>,
    node_ips: RefCell<Vec<IpAddr>>,
    clients_ip: Cell<Option<IpAddr>>,
    net_rng: RefCell<StdRng>,
    stats: Cell<NetStats>,
    observer: RefCell<Option<Observer<N>>>,
}

impl<N: Node> Shared<N> {
    fn address(&self, to: NodeId) -> Option<SocketAddr> {
        let nodes = self.config.nodes;
        if to < nodes {
            Some(SocketAddr::new(self.node_ips.borrow()[to], NODE_PORT))
        } else {
            let port = u16::try_from(to - nodes)
                .ok()?
                .checked_add(FIRST_CLIENT_PORT)?;
            Some(SocketAddr::new(self.clients_ip.get()?, port))
        }
    }

    fn local_clock(&self, node: NodeId) -> Duration {
        let (offset, rate) = self.clocks[node].get();
        offset + sim_now().mul_f64(rate)
    }

    fn tick_period(&self, node: NodeId) -> Duration {
        self.config.tick.div_f64(self.clocks[node].get().1)
    }

    fn count(&self, f: impl FnOnce(&mut NetStats)) {
        let mut stats = self.stats.get();
        f(&mut stats);
        self.stats.set(stats);
    }

    /// Hands `msg` to the network, applying loss and duplication.
    fn post(&self, sock: &UdpSocket, from: NodeId, to: NodeId, msg: N::Msg) {
        let nodes = self.config.nodes;
        self.count(|s| match from < nodes {
            true => s.sent_by_nodes += 1,
            false => s.sent_by_clients += 1,
        });
        let link = (from.min(to), from.max(to));
        let link_loss = self.lossy_links.borrow().get(&link).copied().unwrap_or(0.0);
        let (lost, twice) = {
            let mut rng = self.net_rng.borrow_mut();
            let lost = rng.random_bool(self.config.loss) || rng.random_bool(link_loss);
            (lost, rng.random_bool(self.config.duplicate))
        };
        if lost {
            self.count(|s| s.dropped += 1);
            return;
        }
        let Some(address) = self.address(to) else {
            return;
        };
        for _ in 0..if twice { 2 } else { 1 } {
            let ticket = self.mail.file(from, msg.clone());
            // A send to a crashed or unknown host is lost, as on a real network.
            let _ = sock.try_send_to(&ticket, address);
        }
    }

    /// Runs one event through the node and its observer.
    fn handle(
        &self,
        id: NodeId,
        ticket: Option<&[u8]>,
        outbox: &mut Vec<(NodeId, N::Msg)>,
        rng: &mut StdRng,
    ) {
        let delivered = match ticket {
            Some(ticket) => match self.mail.redeem(ticket) {
                Some(letter) => Some(letter),
                None => return,
            },
            None => None,
        };
        let mut slot = self.slots[id].borrow_mut();
        let node = slot.as_mut().expect("a running host has its node");
        let mut ctx = Ctx::new(id, self.config.nodes, self.local_clock(id), outbox, rng);
        match delivered {
            Some((from, msg)) => node.on_message(from, msg, &mut ctx),
            None => node.on_tick(&mut ctx),
        }
        if let Some(observe) = self.observer.borrow_mut().as_mut() {
            observe(id, node, sim_now());
        }
    }

    async fn wait_out_pause(&self, id: NodeId) {
        let until = self.paused_until[id].get();
        let now = sim_now();
        if until > now {
            tokio::time::sleep(until - now).await;
        }
    }
}

/// Time since the run started, on the simulation's (true) clock.
fn sim_now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

/// One node's host: build the node from its disk, then handle messages and ticks until crashed.
async fn serve<N: Node>(
    id: NodeId,
    shared: Rc<Shared<N>>,
    build: impl FnOnce() -> N,
) -> turmoil::Result {
    let incarnation = shared.incarnations[id].get();
    shared.incarnations[id].set(incarnation + 1);
    *shared.slots[id].borrow_mut() = Some(build());
    let mut rng =
        StdRng::seed_from_u64(mix64(shared.seed ^ mix64((id as u64) << 32 | incarnation)));
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, NODE_PORT)).await?;
    let period = shared.tick_period(id);
    // Nodes do not tick in lockstep: each starts at its own point of the period.
    let mut next_tick = Instant::now() + period.mul_f64(rng.random_range(0.0..1.0));
    let mut outbox = Vec::new();
    let mut buf = [0u8; 16];
    loop {
        let ticket = tokio::select! {
            biased;
            received = sock.recv_from(&mut buf) => Some(received?.0),
            _ = tokio::time::sleep_until(next_tick) => None,
        };
        shared.wait_out_pause(id).await;
        if ticket.is_none() {
            // After a pause a timer fires once, late; it does not replay every missed tick.
            next_tick = (next_tick + period).max(Instant::now());
        }
        shared.handle(id, ticket.map(|len| &buf[..len]), &mut outbox, &mut rng);
        for (to, msg) in outbox.drain(..) {
            shared.post(&sock, id, to, msg);
        }
    }
}

/// A client of the cluster: a task outside it that sends requests and waits for answers.
pub struct Client<M: Clone + std::fmt::Debug + 'static> {
    id: NodeId,
    sock: UdpSocket,
    office: Rc<dyn PostOffice<M>>,
}

/// The cluster's network as a client sees it (without the node type).
trait PostOffice<M> {
    fn post(&self, sock: &UdpSocket, from: NodeId, to: NodeId, msg: M);
    fn redeem(&self, ticket: &[u8]) -> Option<(NodeId, M)>;
}

impl<N: Node> PostOffice<N::Msg> for Shared<N> {
    fn post(&self, sock: &UdpSocket, from: NodeId, to: NodeId, msg: N::Msg) {
        Shared::post(self, sock, from, to, msg);
    }

    fn redeem(&self, ticket: &[u8]) -> Option<(NodeId, N::Msg)> {
        self.mail.redeem(ticket)
    }
}

impl<M: Clone + std::fmt::Debug + 'static> Client<M> {
    /// This client's address (after every node's).
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Sends `msg` to node `to`.
    pub fn send(&self, to: NodeId, msg: M) {
        self.office.post(&self.sock, self.id, to, msg);
    }

    /// The next message for this client, or `None` if nothing arrives within `timeout`.
    pub async fn recv(&self, timeout: Duration) -> Option<(NodeId, M)> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 16];
        loop {
            let (len, _) = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf))
                .await
                .ok()?
                .ok()?;
            if let Some(letter) = self.office.redeem(&buf[..len]) {
                return Some(letter);
            }
        }
    }

    /// Time since the run started (the simulation's true clock).
    pub fn now(&self) -> Duration {
        sim_now()
    }

    /// Waits `time` of simulated time.
    pub async fn sleep(&self, time: Duration) {
        tokio::time::sleep(time).await;
    }
}

/// A simulated cluster of `N` nodes: build it, add clients and faults, run it, inspect it.
pub struct Cluster<N: Node> {
    sim: turmoil::Sim<'static>,
    shared: Rc<Shared<N>>,
    clients: Vec<ClientFactory<N::Msg>>,
    plan: Vec<(Duration, Fault)>,
    clients_done: bool,
}

impl<N: Node> Cluster<N> {
    /// A cluster whose nodes keep nothing across a crash: `build(id)` makes node `id` at start
    /// and at every restart. `seed` decides every random choice of the run.
    pub fn new(config: Config, seed: u64, build: impl Fn(NodeId) -> N + 'static) -> Self {
        Self::with_disks(config, seed, move |id, _: Disk<()>| build(id))
    }

    /// A cluster whose nodes persist `D` across crashes: `build(id, disk)` makes node `id` at
    /// start (with an empty `D::default()` disk) and at every restart (with what it wrote).
    pub fn with_disks<D: Default + 'static>(
        config: Config,
        seed: u64,
        build: impl Fn(NodeId, Disk<D>) -> N + 'static,
    ) -> Self {
        assert!(config.nodes >= 1, "a cluster needs at least one node");
        let nodes = config.nodes;
        let mut sim = turmoil::Builder::new()
            .simulation_duration(Duration::from_secs(24 * 3600))
            .tick_duration(config.step)
            .min_message_latency(config.latency.0)
            .max_message_latency(config.latency.1)
            .udp_capacity(1 << 16)
            .rng_seed(seed)
            .enable_random_order()
            .build();
        let shared = Rc::new(Shared {
            seed,
            mail: Mailroom::new(),
            slots: (0..nodes).map(|_| RefCell::new(None)).collect(),
            incarnations: (0..nodes).map(|_| Cell::new(0)).collect(),
            clocks: (0..nodes)
                .map(|_| Cell::new((Duration::ZERO, 1.0)))
                .collect(),
            paused_until: (0..nodes).map(|_| Cell::new(Duration::ZERO)).collect(),
            lossy_links: RefCell::new(BTreeMap::new()),
            node_ips: RefCell::new(Vec::new()),
            clients_ip: Cell::new(None),
            net_rng: RefCell::new(StdRng::seed_from_u64(mix64(seed ^ 0x006e_6574_776f_726b))),
            stats: Cell::new(NetStats::default()),
            observer: RefCell::new(None),
            config,
        });
        let build = Rc::new(build);
        for id in 0..nodes {
            let disk = Disk(Rc::new(RefCell::new(D::default())));
            let (shared, build) = (Rc::clone(&shared), Rc::clone(&build));
            sim.host(node_name(id), move || {
                let (build, disk) = (Rc::clone(&build), disk.clone());
                serve(id, Rc::clone(&shared), move || build(id, disk))
            });
        }
        *shared.node_ips.borrow_mut() = (0..nodes).map(|id| sim.lookup(node_name(id))).collect();
        Cluster {
            sim,
            shared,
            clients: Vec::new(),
            plan: Vec::new(),
            clients_done: false,
        }
    }

    /// Adds a client: `task` runs from the start of the run; `run` returns once every client's
    /// task has finished. Clients are never partitioned from nodes, crashed or paused.
    pub fn client<F: Future<Output = ()> + 'static>(
        &mut self,
        task: impl FnOnce(Client<N::Msg>) -> F + 'static,
    ) -> &mut Self {
        self.clients
            .push(Box::new(move |client| Box::pin(task(client))));
        self
    }

    /// Schedules the faults of `plan` (times since the start of the run).
    pub fn faults(&mut self, plan: FaultPlan) -> &mut Self {
        self.plan.extend(plan.events().iter().cloned());
        self.plan.sort_by_key(|(t, _)| *t);
        self
    }

    /// Calls `observe(id, node, now)` after node `id` handles each message or tick: the place to
    /// record what a property is checked on (who is leader in which term, what was applied).
    pub fn observe(&mut self, observe: impl FnMut(NodeId, &N, Duration) + 'static) -> &mut Self {
        *self.shared.observer.borrow_mut() = Some(Box::new(observe));
        self
    }

    /// Sets node `id`'s clock: `offset` ahead of true time, running `rate` times as fast (1.0:
    /// exact; 1.001: gains a millisecond a second).
    pub fn set_clock(&mut self, id: NodeId, offset: Duration, rate: f64) -> &mut Self {
        assert!(rate > 0.0, "a clock runs forward");
        self.shared.clocks[id].set((offset, rate));
        self
    }

    /// Runs until every client has finished (with no clients: until `Config::limit`), applying
    /// faults on time. Returns whether the clients finished (false: the limit came first).
    pub fn run(&mut self) -> bool {
        self.start_clients();
        while !self.clients_done && self.sim.elapsed() < self.shared.config.limit {
            self.step();
        }
        self.clients_done
    }

    /// Runs until `at` (time since the start), whether or not the clients have finished; can be
    /// called again to go on.
    pub fn run_until(&mut self, at: Duration) {
        self.start_clients();
        while self.sim.elapsed() < at {
            self.step();
        }
    }

    fn step(&mut self) {
        self.apply_due_faults();
        let finished = self
            .sim
            .step()
            .unwrap_or_else(|e| panic!("the simulation failed: {e}"));
        self.clients_done |= finished && !self.clients.is_empty();
    }

    /// Applies a fault now.
    pub fn inject(&mut self, fault: Fault) {
        let nodes = self.shared.config.nodes;
        match fault {
            Fault::Partition(a, b) => {
                for &x in &a {
                    for &y in &b {
                        self.sim.partition(node_name(x), node_name(y));
                    }
                }
            }
            Fault::Heal => {
                for x in 0..nodes {
                    for y in x + 1..nodes {
                        self.sim.repair(node_name(x), node_name(y));
                    }
                }
            }
            Fault::Crash(id) => {
                self.sim.crash(node_name(id));
                self.shared.slots[id].replace(None);
            }
            Fault::Restart(id) => {
                if !self.is_up(id) {
                    self.sim.bounce(node_name(id));
                }
            }
            Fault::Pause(id, time) => self.shared.paused_until[id].set(self.sim.elapsed() + time),
            Fault::LossyLink(a, b, p) => {
                self.shared
                    .lossy_links
                    .borrow_mut()
                    .insert((a.min(b), a.max(b)), p);
            }
        }
    }

    /// Whether node `id` is running (not crashed).
    pub fn is_up(&self, id: NodeId) -> bool {
        self.shared.slots[id].borrow().is_some()
    }

    /// Looks at node `id` (`None` while it is crashed).
    pub fn node<R>(&self, id: NodeId, look: impl FnOnce(&N) -> R) -> Option<R> {
        self.shared.slots[id].borrow().as_ref().map(look)
    }

    /// Time since the start of the run.
    pub fn now(&self) -> Duration {
        self.sim.elapsed()
    }

    /// What the network counted so far.
    pub fn stats(&self) -> NetStats {
        self.shared.stats.get()
    }

    fn apply_due_faults(&mut self) {
        let now = self.sim.elapsed();
        let due = self.plan.iter().take_while(|(t, _)| *t <= now).count();
        for (_, fault) in self.plan.drain(..due).collect::<Vec<_>>() {
            self.inject(fault);
        }
    }

    fn start_clients(&mut self) {
        if self.clients.is_empty() || self.shared.clients_ip.get().is_some() {
            return;
        }
        let factories: Vec<_> = self.clients.drain(..).collect();
        // Kept non-empty so `run_until` knows clients exist; the factories are spent.
        self.clients.push(Box::new(|_| Box::pin(async {})));
        let nodes = self.shared.config.nodes;
        let shared = Rc::clone(&self.shared);
        self.sim.client(CLIENTS_HOST, async move {
            let local = tokio::task::LocalSet::new();
            let mut tasks = Vec::new();
            for (k, factory) in factories.into_iter().enumerate() {
                let port = FIRST_CLIENT_PORT + k as u16;
                let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).await?;
                let id = nodes + k;
                let client = Client {
                    id,
                    sock,
                    office: Rc::clone(&shared) as Rc<dyn PostOffice<N::Msg>>,
                };
                tasks.push(local.spawn_local(factory(client)));
            }
            local
                .run_until(async move {
                    for task in tasks {
                        if let Err(e) = task.await {
                            std::panic::resume_unwind(e.into_panic());
                        }
                    }
                })
                .await;
            Ok(())
        });
        self.shared
            .clients_ip
            .set(Some(self.sim.lookup(CLIENTS_HOST)));
    }
}

fn node_name(id: NodeId) -> String {
    format!("node{id}")
}
