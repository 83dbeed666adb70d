//! Machinery shared by the load balancing exercises (topic 04): the `Balancer` trait every
//! exercise implements, and the labs' simulators, baselines and drivers. The learner never edits
//! this; nothing here is one of the exercises' answers (the baselines are the algorithms each lab
//! compares *against*).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngExt;
use rand::rngs::StdRng;

use crate::backend::{self, Backend, Behaviour};
use crate::clock::Clock;
use crate::hashing::{fnv1a64, mix64};
use crate::lab::{Table, bar_chart, percent, quantile};
use crate::workload::seeded_rng;

/// Backends are identified by a number (think: an index into the fleet's address list).
pub type BackendId = usize;

/// What every balancer in this topic offers. `pick` chooses a backend for the next request, or
/// `None` when no backend can take it. The caller reports `on_start(id)` when it sends a request
/// to the backend it picked, and `on_finish(id)` when the request is over (answered or failed),
/// for balancers that count requests in flight; the others ignore both.
pub trait Balancer {
    fn pick(&mut self) -> Option<BackendId>;
    fn on_start(&mut self, _id: BackendId) {}
    fn on_finish(&mut self, _id: BackendId) {}
}

impl<B: Balancer + ?Sized> Balancer for Box<B> {
    fn pick(&mut self) -> Option<BackendId> {
        (**self).pick()
    }
    fn on_start(&mut self, id: BackendId) {
        (**self).on_start(id)
    }
    fn on_finish(&mut self, id: BackendId) {
        (**self).on_finish(id)
    }
}

fn letter(id: BackendId) -> char {
    char::from(b'a' + (id % 26) as u8)
}

// ---- weighted_round_robin's lab ------------------------------------------------------------

/// BASELINE FOR COMPARISON: classic weighted round robin, which serves each backend's whole
/// weight in one block before moving to the next.
pub struct BlockWeighted {
    weights: Vec<u32>,
    backend: usize,
    served_in_block: u32,
}

impl BlockWeighted {
    pub fn new(weights: &[u32]) -> Self {
        BlockWeighted {
            weights: weights.to_vec(),
            backend: 0,
            served_in_block: 0,
        }
    }
}

impl Balancer for BlockWeighted {
    fn pick(&mut self) -> Option<BackendId> {
        if self.weights.iter().all(|&w| w == 0) {
            return None;
        }
        while self.served_in_block >= self.weights[self.backend] {
            self.backend = (self.backend + 1) % self.weights.len();
            self.served_in_block = 0;
        }
        self.served_in_block += 1;
        Some(self.backend)
    }
}

struct WeightedRun {
    picks: Vec<BackendId>,
    counts: Vec<u64>,
    longest_run: Vec<usize>,
    /// The furthest each backend's pick count ever got from its exact share, in requests.
    worst_drift: Vec<f64>,
}

fn weighted_run(balancer: &mut dyn Balancer, weights: &[u32], requests: usize) -> WeightedRun {
    let n = weights.len();
    let total: u32 = weights.iter().sum();
    let (mut picks, mut counts) = (Vec::with_capacity(requests), vec![0u64; n]);
    let (mut longest_run, mut worst_drift) = (vec![0usize; n], vec![0f64; n]);
    let mut streak = 0;
    for i in 0..requests {
        let Some(id) = balancer.pick() else { break };
        counts[id] += 1;
        for (other, &weight) in weights.iter().enumerate() {
            let exact = (i + 1) as f64 * f64::from(weight) / f64::from(total);
            let drift = (counts[other] as f64 - exact).abs();
            worst_drift[other] = worst_drift[other].max(drift);
        }
        streak = if i > 0 && picks[i - 1] == id {
            streak + 1
        } else {
            1
        };
        longest_run[id] = longest_run[id].max(streak);
        picks.push(id);
    }
    WeightedRun {
        picks,
        counts,
        longest_run,
        worst_drift,
    }
}

/// weighted_round_robin's lab: `cycles` full cycles of `weights`, the block algorithm against
/// `smooth` (the learner's balancer, built with the same weights). Prints the first two cycles of
/// each, a table of shares, longest runs and worst drift, and a bar chart.
pub fn weighted_lab(weights: &[u32], cycles: usize, smooth: &mut dyn Balancer) {
    let total: u32 = weights.iter().sum();
    let requests = total as usize * cycles;
    println!(
        "weights {weights:?} (backend a, b, c, ...), {requests} requests = {cycles} cycles of \
         {total}\n"
    );
    let block = weighted_run(&mut BlockWeighted::new(weights), weights, requests);
    let smooth = weighted_run(smooth, weights, requests);
    let show = |r: &WeightedRun| -> String {
        let first: String = r
            .picks
            .iter()
            .take(2 * total as usize)
            .map(|&id| letter(id))
            .collect();
        let more = if r.picks.len() > 2 * total as usize {
            "..."
        } else {
            ""
        };
        format!("{first}{more}")
    };
    println!("first two cycles, block:  {}", show(&block));
    println!("first two cycles, smooth: {}\n", show(&smooth));
    let mut table = Table::new(&[
        "backend",
        "weight",
        "target share",
        "share (smooth)",
        "longest run: block / smooth",
        "worst drift: block / smooth",
    ]);
    for (id, &weight) in weights.iter().enumerate() {
        table.row(&[
            letter(id).to_string(),
            weight.to_string(),
            percent(u64::from(weight), u64::from(total)),
            percent(smooth.counts[id], smooth.picks.len() as u64),
            format!("{} / {}", block.longest_run[id], smooth.longest_run[id]),
            format!(
                "{:.2} / {:.2}",
                block.worst_drift[id], smooth.worst_drift[id]
            ),
        ]);
    }
    table.print();
    let bars: Vec<(String, f64)> = (0..weights.len())
        .map(|id| (format!("{} (smooth)", letter(id)), smooth.counts[id] as f64))
        .collect();
    println!("\nrequests per backend\n{}", bar_chart(&bars, 40));
}

// ---- power_of_two's lab ----------------------------------------------------------------------

/// A balancer that can be handed a load report (from a metrics feed or a control plane): it
/// replaces its whole view of the requests in flight, which may be out of date.
pub trait ObserveLoad: Balancer {
    fn observe(&mut self, loads: &[u64]);
}

/// BASELINE FOR COMPARISON: uniformly random, ignores load.
struct RandomPick {
    backends: usize,
    rng: StdRng,
}

impl Balancer for RandomPick {
    fn pick(&mut self) -> Option<BackendId> {
        (self.backends > 0).then(|| self.rng.random_range(0..self.backends))
    }
}

impl ObserveLoad for RandomPick {
    fn observe(&mut self, _loads: &[u64]) {}
}

/// BASELINE FOR COMPARISON: least connections with a full scan over the (possibly stale) view.
struct FullScan {
    view: Vec<u64>,
}

impl Balancer for FullScan {
    fn pick(&mut self) -> Option<BackendId> {
        (0..self.view.len()).min_by_key(|&id| self.view[id])
    }
    fn on_start(&mut self, id: BackendId) {
        self.view[id] += 1;
    }
}

impl ObserveLoad for FullScan {
    fn observe(&mut self, loads: &[u64]) {
        self.view.copy_from_slice(loads);
    }
}

/// power_of_two's lab: a tick-based simulation of a busy tier. `balancers` proxy instances (think:
/// one Envoy sidecar per client pod) share `backends` backends. Every tick `arrivals_per_tick`
/// requests arrive, spread over the instances; each keeps its backend busy for 5 to 15 ticks.
/// Every `refresh_every` ticks each instance receives a fresh load report; in between it only adds
/// the requests it sent itself.
pub struct StaleReportsLab {
    pub backends: usize,
    pub balancers: usize,
    pub arrivals_per_tick: usize,
    pub ticks: u32,
    pub refresh_every: u32,
    pub seed: u64,
}

struct TierOutcome {
    /// The busiest backend's in-flight count, averaged over ticks.
    mean_busiest: f64,
    /// The most requests ever in flight on one backend.
    peak: u64,
    /// The busiest backend's excess over the average, averaged over ticks.
    mean_excess: f64,
    /// Requests sent to each backend.
    sent: Vec<u64>,
}

impl StaleReportsLab {
    fn simulate(&self, mut balancers: Vec<Box<dyn ObserveLoad>>) -> TierOutcome {
        // The same arrivals and service times for every algorithm.
        let mut rng = seeded_rng(self.seed);
        let mut in_flight = vec![0u64; self.backends];
        // finishing[t % 16]: the backends whose requests finish at tick t.
        let mut finishing: Vec<Vec<BackendId>> = vec![Vec::new(); 16];
        let mut sent = vec![0u64; self.backends];
        let (mut busiest_sum, mut excess_sum, mut peak) = (0.0, 0.0, 0);
        for tick in 0..self.ticks {
            for id in std::mem::take(&mut finishing[tick as usize % 16]) {
                in_flight[id] -= 1;
            }
            if tick % self.refresh_every == 0 {
                for balancer in &mut balancers {
                    balancer.observe(&in_flight);
                }
            }
            for arrival in 0..self.arrivals_per_tick {
                let balancer = &mut balancers[arrival % self.balancers];
                let id = balancer.pick().expect("there are backends");
                balancer.on_start(id);
                in_flight[id] += 1;
                sent[id] += 1;
                let done = tick + rng.random_range(5..=15);
                finishing[done as usize % 16].push(id);
            }
            let busiest = *in_flight.iter().max().expect("backends");
            let average = in_flight.iter().sum::<u64>() as f64 / self.backends as f64;
            peak = peak.max(busiest);
            busiest_sum += busiest as f64;
            excess_sum += busiest as f64 - average;
        }
        TierOutcome {
            mean_busiest: busiest_sum / f64::from(self.ticks),
            peak,
            mean_excess: excess_sum / f64::from(self.ticks),
            sent,
        }
    }

    /// Runs random, full-scan least connections and `two_choices` (one instance per seed it is
    /// given) over the same arrivals, and prints how busy the busiest backend gets.
    pub fn run(&self, two_choices: impl Fn(u64) -> Box<dyn ObserveLoad>) {
        let (backends, instances, seed) = (self.backends, self.balancers, self.seed);
        println!(
            "{instances} balancer instances, {backends} backends, {} requests per tick lasting \
             5-15 ticks (about {} in flight per backend); load report every {} ticks.\n",
            self.arrivals_per_tick,
            self.arrivals_per_tick * 10 / backends,
            self.refresh_every
        );
        let random = self.simulate(
            (0..instances)
                .map(|i| {
                    Box::new(RandomPick {
                        backends,
                        rng: seeded_rng(seed + 100 + i as u64),
                    }) as Box<dyn ObserveLoad>
                })
                .collect(),
        );
        let full_scan = self.simulate(
            (0..instances)
                .map(|_| {
                    Box::new(FullScan {
                        view: vec![0; backends],
                    }) as Box<dyn ObserveLoad>
                })
                .collect(),
        );
        let two = self.simulate(
            (0..instances)
                .map(|i| two_choices(seed + 200 + i as u64))
                .collect(),
        );
        let mut table = Table::new(&[
            "algorithm",
            "backends looked at per pick",
            "busiest backend (mean)",
            "excess over average (mean)",
            "peak in flight",
        ]);
        let runs = [
            ("random", "0".to_string(), &random),
            ("least conns (full scan)", backends.to_string(), &full_scan),
            ("power of two (yours)", "2".to_string(), &two),
        ];
        for (name, looks, outcome) in &runs {
            table.row(&[
                name.to_string(),
                looks.clone(),
                format!("{:.1}", outcome.mean_busiest),
                format!("{:.1}", outcome.mean_excess),
                outcome.peak.to_string(),
            ]);
        }
        table.print();
        let bars: Vec<(String, f64)> = runs
            .iter()
            .map(|(name, _, o)| (name.to_string(), (o.mean_excess * 10.0).round() / 10.0))
            .collect();
        println!(
            "\nbusiest backend's excess over the average, in requests in flight (lower is \
             better)\n{}",
            bar_chart(&bars, 40)
        );
        let (min, max) = (
            two.sent.iter().min().expect("backends"),
            two.sent.iter().max().expect("backends"),
        );
        println!("\npower of two: requests per backend between {min} and {max}");
    }
}

// ---- round_robin's lab -----------------------------------------------------------------------

/// A pool whose membership changes: what round_robin's lab needs besides `pick`.
pub trait Pool: Balancer {
    /// Adds a backend at the end of the rotation; `false` if it was already there.
    fn add(&mut self, id: BackendId) -> bool;
    /// Takes a backend out for good; `false` if it was not there.
    fn remove(&mut self, id: BackendId) -> bool;
    /// Marks a member available or not (draining); `false` if it is not in the pool.
    fn set_available(&mut self, id: BackendId, available: bool) -> bool;
    /// The pool's backends, in rotation order.
    fn ids(&self) -> Vec<BackendId>;
    /// The backends that may take a request now, in rotation order.
    fn available_ids(&self) -> Vec<BackendId>;
}

/// round_robin's lab: a day in a Kubernetes-style deployment. Every `update_every` requests the
/// endpoint list changes (a pod restarts: it is removed, and re-added at the next update), and
/// backend `flapping` is drained (unavailable) for `flap_down` requests out of every
/// `flap_period`. For every request we note which backends could have taken it, and compare each
/// backend's load with its fair share, and its peak within any `window` consecutive requests.
pub struct EndpointChurnLab {
    pub backends: usize,
    pub requests: usize,
    pub update_every: usize,
    pub flapping: BackendId,
    pub flap_period: usize,
    pub flap_down: usize,
    pub window: usize,
    pub seed: u64,
}

#[derive(Default, Clone)]
struct ChurnStats {
    picks: u64,
    fair_share: f64,
    peak_in_window: u64,
    /// Picks among the last `window` requests.
    recent: u64,
}

struct ChurnOutcome {
    per_backend: Vec<ChurnStats>,
    misrouted: u64,
    refused: u64,
}

impl EndpointChurnLab {
    /// Replays the same seeded day of pool changes on `pool`, choosing with `choose`.
    fn day<P: Pool>(
        &self,
        pool: &mut P,
        mut choose: impl FnMut(&mut P) -> Option<BackendId>,
    ) -> ChurnOutcome {
        let mut rng = seeded_rng(self.seed);
        let mut stats = vec![ChurnStats::default(); self.backends];
        let mut history: Vec<Option<BackendId>> = Vec::with_capacity(self.requests);
        let mut restarting: Option<BackendId> = None;
        let (mut misrouted, mut refused) = (0, 0);
        for request in 0..self.requests {
            if request % self.update_every == 0 {
                if let Some(back) = restarting.take() {
                    pool.add(back);
                }
                let ids = pool.ids();
                let victim = ids[rng.random_range(0..ids.len())];
                pool.remove(victim);
                restarting = Some(victim);
            }
            pool.set_available(self.flapping, request % self.flap_period >= self.flap_down);
            let eligible = pool.available_ids();
            for &id in &eligible {
                stats[id].fair_share += 1.0 / eligible.len() as f64;
            }
            let picked = choose(pool);
            match picked {
                Some(id) if eligible.contains(&id) => {}
                Some(_) => misrouted += 1,
                None => refused += 1,
            }
            if let Some(id) = picked {
                stats[id].picks += 1;
                stats[id].recent += 1;
                stats[id].peak_in_window = stats[id].peak_in_window.max(stats[id].recent);
            }
            history.push(picked);
            if request >= self.window
                && let Some(old) = history[request - self.window]
            {
                stats[old].recent -= 1;
            }
        }
        ChurnOutcome {
            per_backend: stats,
            misrouted,
            refused,
        }
    }

    /// Runs the day with the pool's own `pick`, then with uniformly random picks among the
    /// available members (the baseline), and prints loads against fair shares and peaks.
    pub fn run<P: Pool>(&self, new_pool: impl Fn(Vec<BackendId>) -> P) {
        let (backends, window) = (self.backends, self.window);
        println!(
            "{backends} backends, {} requests; a pod restarts every {} requests (removed, \
             re-added at the next update); backend {} is drained {} of every {} requests.\n",
            self.requests, self.update_every, self.flapping, self.flap_down, self.flap_period
        );
        let ours = self.day(&mut new_pool((0..backends).collect()), |pool| pool.pick());
        let mut rng = seeded_rng(self.seed + 1);
        let random = self.day(&mut new_pool((0..backends).collect()), |pool| {
            let ids = pool.available_ids();
            (!ids.is_empty()).then(|| ids[rng.random_range(0..ids.len())])
        });
        let mut table = Table::new(&[
            "backend".to_string(),
            "picks".to_string(),
            "load / fair share".to_string(),
            format!("peak in {window} (yours)"),
            "load / fair (random)".to_string(),
            format!("peak in {window} (random)"),
        ]);
        for id in 0..backends {
            let (mine, theirs) = (&ours.per_backend[id], &random.per_backend[id]);
            table.row(&[
                format!("backend {id}"),
                mine.picks.to_string(),
                format!("{:.2}", mine.picks as f64 / mine.fair_share),
                mine.peak_in_window.to_string(),
                format!("{:.2}", theirs.picks as f64 / theirs.fair_share),
                theirs.peak_in_window.to_string(),
            ]);
        }
        table.print();
        println!(
            "\nrouted to a removed or drained backend: yours {}, random {}; refused (None): {}",
            ours.misrouted, random.misrouted, ours.refused
        );
        let bars: Vec<(String, f64)> = ours
            .per_backend
            .iter()
            .enumerate()
            .map(|(id, s)| (format!("backend {id}"), s.picks as f64))
            .collect();
        println!("\nrequests per backend (yours)\n{}", bar_chart(&bars, 40));
    }
}

// ---- least_connections's lab -----------------------------------------------------------------

/// BASELINE FOR COMPARISON: plain round robin over a fixed pool (no churn, no draining).
pub struct PlainRoundRobin {
    backends: usize,
    next: usize,
}

impl PlainRoundRobin {
    pub fn new(backends: usize) -> Self {
        PlainRoundRobin { backends, next: 0 }
    }
}

impl Balancer for PlainRoundRobin {
    fn pick(&mut self) -> Option<BackendId> {
        if self.backends == 0 {
            return None;
        }
        let id = self.next % self.backends;
        self.next += 1;
        Some(id)
    }
}

/// least_connections's lab, on real HTTP servers on 127.0.0.1 (`crate::backend`). `concurrency`
/// clients each send requests back to back (pick, on_start, GET /work, on_finish). Part 1: backend
/// `slow_backend` answers in `slow_latency`, the others in `base_latency`. Part 2: all healthy,
/// but backend `crashing_backend` crashes after `crash_after` requests and then fails fast.
pub struct SlowBackendLab {
    pub backends: usize,
    pub base_latency: Duration,
    pub slow_backend: BackendId,
    pub slow_latency: Duration,
    pub requests: usize,
    pub concurrency: usize,
    pub crash_after: usize,
    pub crashing_backend: BackendId,
    pub client_timeout: Duration,
}

struct Sample {
    /// The request's number, in the order requests were sent.
    seq: usize,
    backend: BackendId,
    latency: Duration,
    ok: bool,
}

struct SocketRun {
    samples: Vec<Sample>,
    wall: Duration,
}

type SharedBalancer = Box<dyn Balancer + Send>;

impl SlowBackendLab {
    /// Sends `requests` requests from `concurrency` clients through `balancer` to `fleet`; if
    /// `crash` is set, that backend crashes when the `crash_after`-th request is about to be sent.
    async fn send_all(
        &self,
        balancer: SharedBalancer,
        fleet: Arc<Vec<Backend>>,
        crash: Option<BackendId>,
    ) -> SocketRun {
        let balancer = Arc::new(Mutex::new(balancer));
        let addrs: Arc<Vec<SocketAddr>> = Arc::new(fleet.iter().map(Backend::addr).collect());
        let sent = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut clients = tokio::task::JoinSet::new();
        let (requests, crash_after, timeout) =
            (self.requests, self.crash_after, self.client_timeout);
        for _ in 0..self.concurrency {
            let (balancer, addrs, sent, fleet) = (
                Arc::clone(&balancer),
                Arc::clone(&addrs),
                Arc::clone(&sent),
                Arc::clone(&fleet),
            );
            clients.spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let n = sent.fetch_add(1, Ordering::SeqCst);
                    if n >= requests {
                        return samples;
                    }
                    if let Some(victim) = crash
                        && n == crash_after
                    {
                        fleet[victim].crash();
                    }
                    let id = {
                        let mut b = balancer.lock().expect("not poisoned");
                        let Some(id) = b.pick() else { continue };
                        b.on_start(id);
                        id
                    };
                    let began = Instant::now();
                    let result = backend::get(addrs[id], "/work", timeout).await;
                    let latency = began.elapsed();
                    balancer.lock().expect("not poisoned").on_finish(id);
                    samples.push(Sample {
                        seq: n,
                        backend: id,
                        latency,
                        ok: matches!(result, Ok(ref r) if r.status == 200),
                    });
                }
            });
        }
        let samples = clients.join_all().await.into_iter().flatten().collect();
        SocketRun {
            samples,
            wall: started.elapsed(),
        }
    }

    async fn fleet(&self, slow: bool) -> Arc<Vec<Backend>> {
        let fleet = backend::start_fleet(self.backends, self.base_latency)
            .await
            .expect("start the backends on 127.0.0.1");
        if slow {
            fleet[self.slow_backend].set_behaviour(Behaviour::Healthy {
                latency: self.slow_latency,
            });
        }
        Arc::new(fleet)
    }

    /// Runs both parts with plain round robin and with `yours` (a fresh balancer per run), and
    /// prints per-backend and summary tables.
    pub fn run(&self, yours: impl Fn() -> SharedBalancer) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(async {
            self.part_one(&yours).await;
            self.part_two(&yours).await;
        });
    }

    fn contenders(
        &self,
        yours: &impl Fn() -> SharedBalancer,
    ) -> [(&'static str, SharedBalancer); 2] {
        [
            ("round robin", Box::new(PlainRoundRobin::new(self.backends))),
            ("least conns", yours()),
        ]
    }

    async fn part_one(&self, yours: &impl Fn() -> SharedBalancer) {
        println!(
            "Part 1: {} backends on 127.0.0.1, backend {} answers in {:?} (the others in {:?}); \
             {} requests from {} concurrent clients.\n",
            self.backends,
            self.slow_backend,
            self.slow_latency,
            self.base_latency,
            self.requests,
            self.concurrency
        );
        let mut per_backend = Table::new(&[
            "balancer / backend",
            "requests",
            "errors",
            "p50",
            "p99",
            "served (server count)",
        ]);
        let mut summary = Table::new(&[
            "balancer",
            "requests",
            "to slow backend",
            "mean",
            "p50",
            "p95",
            "p99",
            "wall time",
            "throughput",
        ]);
        let mut bars = Vec::new();
        for (name, balancer) in self.contenders(yours) {
            let fleet = self.fleet(true).await;
            let report = self.send_all(balancer, Arc::clone(&fleet), None).await;
            for (id, server) in fleet.iter().enumerate() {
                let mine: Vec<&Sample> =
                    report.samples.iter().filter(|s| s.backend == id).collect();
                let mut latencies: Vec<Duration> = mine.iter().map(|s| s.latency).collect();
                per_backend.row(&[
                    format!("{name} / {}", server.name()),
                    mine.len().to_string(),
                    mine.iter().filter(|s| !s.ok).count().to_string(),
                    quantile(&mut latencies, 0.5),
                    quantile(&mut latencies, 0.99),
                    server.served().to_string(),
                ]);
                bars.push((format!("{name} / {}", server.name()), mine.len() as f64));
            }
            let mut all: Vec<Duration> = report.samples.iter().map(|s| s.latency).collect();
            let to_slow = report
                .samples
                .iter()
                .filter(|s| s.backend == self.slow_backend)
                .count();
            let mean = all.iter().sum::<Duration>() / all.len().max(1) as u32;
            summary.row(&[
                name.to_string(),
                report.samples.len().to_string(),
                percent(to_slow as u64, report.samples.len() as u64),
                format!("{:.1} ms", mean.as_secs_f64() * 1000.0),
                quantile(&mut all, 0.5),
                quantile(&mut all, 0.95),
                quantile(&mut all, 0.99),
                format!("{:.0} ms", report.wall.as_secs_f64() * 1000.0),
                format!("{:.0} req/s", all.len() as f64 / report.wall.as_secs_f64()),
            ]);
        }
        per_backend.print();
        println!("\nrequests per backend\n{}\n", bar_chart(&bars, 40));
        summary.print();
    }

    async fn part_two(&self, yours: &impl Fn() -> SharedBalancer) {
        println!(
            "\nPart 2: all backends healthy, but backend {} crashes after {} requests \
             (connections refused at once: it fails fast).\n",
            self.crashing_backend, self.crash_after
        );
        let mut crash_table = Table::new(&[
            "balancer",
            "requests",
            "errors",
            "error rate after the crash",
            "after the crash, sent to the dead backend",
        ]);
        for (name, balancer) in self.contenders(yours) {
            let fleet = self.fleet(false).await;
            let report = self
                .send_all(balancer, Arc::clone(&fleet), Some(self.crashing_backend))
                .await;
            let errors = report.samples.iter().filter(|s| !s.ok).count();
            let after: Vec<&Sample> = report
                .samples
                .iter()
                .filter(|s| s.seq >= self.crash_after)
                .collect();
            let errors_after = after.iter().filter(|s| !s.ok).count();
            let to_dead = after
                .iter()
                .filter(|s| s.backend == self.crashing_backend)
                .count();
            crash_table.row(&[
                name.to_string(),
                report.samples.len().to_string(),
                errors.to_string(),
                percent(errors_after as u64, after.len() as u64),
                percent(to_dead as u64, after.len() as u64),
            ]);
        }
        crash_table.print();
        println!(
            "\nA dead backend that refuses connections fails \"instantly\": it never has a request \
             in flight,\nso least connections keeps choosing it. Health checks (or passive \
             outlier detection) must eject it."
        );
    }
}

// ---- sticky_sessions's lab -------------------------------------------------------------------

/// How much `backend` "wants" `session`: a stable 64-bit hash of the pair (the same on every run
/// and machine). Rendezvous hashing sends a session to the backend with the highest score.
pub fn score(session: &str, backend: BackendId) -> u64 {
    // FNV-1a over the session id, mixed with the backend id through splitmix64's finaliser.
    mix64(fnv1a64(session.as_bytes()) ^ (backend as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// What sticky_sessions's lab needs from a router: routing a session, and being told which
/// backends are up.
pub trait SessionRouter {
    fn set_up(&mut self, id: BackendId, up: bool);
    fn route(&mut self, session: &str) -> Option<BackendId>;
}

/// BASELINE FOR COMPARISON: hash(session) % (number of live backends), over the live ones.
struct ModN {
    up: Vec<bool>,
}

impl SessionRouter for ModN {
    fn set_up(&mut self, id: BackendId, up: bool) {
        self.up[id] = up;
    }
    fn route(&mut self, session: &str) -> Option<BackendId> {
        let live: Vec<BackendId> = (0..self.up.len()).filter(|&id| self.up[id]).collect();
        // Any stable hash will do; reuse `score` with a fixed "backend".
        (!live.is_empty()).then(|| live[(score(session, 0) % live.len() as u64) as usize])
    }
}

/// sticky_sessions's lab, on real HTTP servers on 127.0.0.1. `GET /session?id=S` answers
/// "<backend> <count>": how many requests of session S *this backend process* has seen. A known
/// session whose request comes back with count 1 has lost its state (it landed on a backend that
/// never saw it, or on a restarted process). Phase 1: all backends up. Phase 2: backend
/// `crashing` crashes (and is marked down). Phase 3: it is restarted (a new, empty process) and
/// marked up. Each phase, every known session sends `requests_per_phase` requests and
/// `new_sessions_per_phase` new sessions arrive.
pub struct SessionAffinityLab {
    pub backends: usize,
    pub crashing: BackendId,
    pub sessions: usize,
    pub new_sessions_per_phase: usize,
    pub requests_per_phase: usize,
    pub concurrency: usize,
    pub client_timeout: Duration,
}

#[derive(Default)]
struct PhaseStats {
    requests: u64,
    errors: u64,
    /// Known sessions that found no state (count 1) on their first request of the phase.
    lost_state: u64,
    per_backend: Vec<u64>,
}

impl SessionAffinityLab {
    /// One phase: every session in `sessions` sends `requests_per_phase` requests, in rounds.
    async fn phase(
        &self,
        router: &mut dyn SessionRouter,
        addrs: &[SocketAddr],
        sessions: &[String],
        known: &[bool],
    ) -> PhaseStats {
        let mut stats = PhaseStats {
            per_backend: vec![0; self.backends],
            ..PhaseStats::default()
        };
        for round in 0..self.requests_per_phase {
            let routed: Vec<(usize, Option<BackendId>)> = sessions
                .iter()
                .enumerate()
                .map(|(i, s)| (i, router.route(s)))
                .collect();
            for chunk in routed.chunks(self.concurrency) {
                let mut requests = tokio::task::JoinSet::new();
                for &(i, id) in chunk {
                    let Some(id) = id else {
                        stats.errors += 1;
                        continue;
                    };
                    let (addr, path) = (addrs[id], format!("/session?id={}", sessions[i]));
                    let timeout = self.client_timeout;
                    requests
                        .spawn(async move { (i, id, backend::get(addr, &path, timeout).await) });
                }
                for (i, id, result) in requests.join_all().await {
                    stats.requests += 1;
                    stats.per_backend[id] += 1;
                    match result {
                        Ok(r) if r.status == 200 => {
                            let count = r.body.rsplit(' ').next().unwrap_or("0");
                            if round == 0 && known[i] && count == "1" {
                                stats.lost_state += 1;
                            }
                        }
                        _ => stats.errors += 1,
                    }
                }
            }
        }
        stats
    }

    async fn scenario(&self, router: &mut dyn SessionRouter) -> Vec<PhaseStats> {
        let mut fleet: Vec<Backend> = backend::start_fleet(self.backends, Duration::from_millis(1))
            .await
            .expect("start the backends on 127.0.0.1");
        let mut sessions: Vec<String> = (0..self.sessions).map(|i| format!("user{i}")).collect();
        let mut known = vec![false; self.sessions];
        let mut results = Vec::new();
        for phase_no in 0..3 {
            if phase_no == 1 {
                fleet[self.crashing].crash();
                router.set_up(self.crashing, false);
            } else if phase_no == 2 {
                let latency = Duration::from_millis(1);
                fleet[self.crashing] = Backend::start(
                    &format!("backend-{}", self.crashing),
                    Behaviour::Healthy { latency },
                )
                .await
                .expect("restart the backend");
                router.set_up(self.crashing, true);
            }
            sessions.extend((0..self.new_sessions_per_phase).map(|i| format!("new{phase_no}-{i}")));
            known.resize(sessions.len(), false);
            let addrs: Vec<SocketAddr> = fleet.iter().map(Backend::addr).collect();
            results.push(self.phase(router, &addrs, &sessions, &known).await);
            known.iter_mut().for_each(|k| *k = true);
        }
        results
    }

    /// Runs the scenario with hash mod N, with `sticky(0)` (placement alone) and with
    /// `sticky(table_capacity)`, and prints the sessions that lost their state.
    pub fn run(&self, table_capacity: usize, sticky: impl Fn(usize) -> Box<dyn SessionRouter>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let crashing = self.crashing;
        println!(
            "{} backends on 127.0.0.1; {} sessions (+{} new per phase), {} requests per session per \
             phase.\nPhase 2: backend-{crashing} crashes. Phase 3: backend-{crashing} is restarted \
             (empty) and marked up.\n",
            self.backends, self.sessions, self.new_sessions_per_phase, self.requests_per_phase
        );
        let strategies: [(&str, Box<dyn SessionRouter>); 3] = [
            (
                "hash mod N (baseline)",
                Box::new(ModN {
                    up: vec![true; self.backends],
                }),
            ),
            ("rendezvous, no table", sticky(0)),
            ("rendezvous + table (yours)", sticky(table_capacity)),
        ];
        let mut table = Table::new(&[
            "strategy".to_string(),
            "lost state: crash".to_string(),
            "lost state: restart".to_string(),
            "errors".to_string(),
            format!("backend-{crashing} share, phase 3"),
        ]);
        let mut bars = Vec::new();
        runtime.block_on(async {
            for (name, mut router) in strategies {
                let phases = self.scenario(router.as_mut()).await;
                let (crash, restart) = (&phases[1], &phases[2]);
                table.row(&[
                    name.to_string(),
                    crash.lost_state.to_string(),
                    restart.lost_state.to_string(),
                    (crash.errors + restart.errors).to_string(),
                    percent(restart.per_backend[crashing], restart.requests),
                ]);
                bars.push((
                    name.to_string(),
                    (crash.lost_state + restart.lost_state) as f64,
                ));
            }
        });
        table.print();
        println!(
            "\nsessions that lost their state (of {} known sessions, over both events)\n{}",
            self.sessions + self.new_sessions_per_phase,
            bar_chart(&bars, 40)
        );
    }
}

// ---- health_checks's lab and fakes ------------------------------------------------------------

/// One health probe of one backend, e.g. `GET /health` with a short timeout: `true` if it passed.
pub trait Probe {
    fn check(&mut self, id: BackendId) -> bool;
}

/// A change of health, reported when it happens (and only then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Ejected,
    Readmitted,
}

/// What health_checks's lab needs from a health-checked pool besides `pick`.
pub trait HealthChecked: Balancer {
    /// The backends due for a probe now; each is rescheduled.
    fn due(&mut self) -> Vec<BackendId>;
    /// Records one probe result and returns the transition it caused, if any.
    fn record(&mut self, id: BackendId, ok: bool) -> Option<Transition>;
}

/// A fake fleet for tests: each backend is dead during the given time ranges of `clock`; every
/// probe is logged as (time, backend).
pub struct ScriptedProbe {
    clock: Arc<dyn Clock>,
    dead: HashMap<BackendId, Vec<(Duration, Duration)>>,
    pub probes: Vec<(Duration, BackendId)>,
}

impl ScriptedProbe {
    /// `dead`: for each backend, the `[from, until)` ranges in which its probes fail.
    pub fn new(
        clock: Arc<dyn Clock>,
        dead: impl IntoIterator<Item = (BackendId, Vec<(Duration, Duration)>)>,
    ) -> Self {
        ScriptedProbe {
            clock,
            dead: dead.into_iter().collect(),
            probes: Vec::new(),
        }
    }
}

impl Probe for ScriptedProbe {
    fn check(&mut self, id: BackendId) -> bool {
        let now = self.clock.now();
        self.probes.push((now, id));
        let dead = self.dead.get(&id).is_some_and(|ranges| {
            ranges
                .iter()
                .any(|&(from, until)| now >= from && now < until)
        });
        !dead
    }
}

/// health_checks's lab, on real HTTP servers on 127.0.0.1. A request arrives every
/// `request_every` and goes to the backend the pool picks (GET /work). A checker task probes GET
/// /health on the schedule the pool's `due()` gives and feeds the results to `record()`. Backend
/// `crashing` crashes at request `crash_at_request`; backend `failing` answers 503 between
/// requests `failing_from` and `failing_until`. The scenario runs twice: without health checks
/// (nobody runs the checker) and with them.
pub struct HealthLab {
    pub backends: usize,
    pub requests: usize,
    pub request_every: Duration,
    pub crashing: BackendId,
    pub crash_at_request: usize,
    pub failing: BackendId,
    pub failing_from: usize,
    pub failing_until: usize,
    /// The checker's settings, for the printout (the pool holds the real ones).
    pub check_interval: Duration,
    pub fall: u32,
    pub rise: u32,
    pub probe_timeout: Duration,
    pub latency: Duration,
    pub client_timeout: Duration,
}

struct HealthSample {
    seq: usize,
    backend: Option<BackendId>,
    latency: Duration,
    ok: bool,
}

struct HealthRun {
    samples: Vec<HealthSample>,
    /// (ms since start, backend, transition)
    transitions: Vec<(u128, BackendId, Transition)>,
}

impl HealthLab {
    async fn scenario<P: HealthChecked + Send + 'static>(
        &self,
        pool: P,
        health_checks: bool,
    ) -> HealthRun {
        let fleet: Arc<Vec<Backend>> = Arc::new(
            backend::start_fleet(self.backends, self.latency)
                .await
                .expect("start the backends on 127.0.0.1"),
        );
        let pool = Arc::new(Mutex::new(pool));
        let started = Instant::now();
        let transitions = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(tokio::sync::Notify::new());
        let probe_timeout = self.probe_timeout;

        // The checker: wakes up often, probes whatever `due()` says, records the results.
        let checker = health_checks.then(|| {
            let (pool, fleet, transitions, done) = (
                Arc::clone(&pool),
                Arc::clone(&fleet),
                Arc::clone(&transitions),
                Arc::clone(&done),
            );
            tokio::spawn(async move {
                loop {
                    let due = pool.lock().expect("not poisoned").due();
                    let mut probes = tokio::task::JoinSet::new();
                    for id in due {
                        let addr = fleet[id].addr();
                        probes.spawn(async move {
                            let result = backend::get(addr, "/health", probe_timeout).await;
                            (id, matches!(result, Ok(r) if r.status == 200))
                        });
                    }
                    for (id, ok) in probes.join_all().await {
                        if let Some(t) = pool.lock().expect("not poisoned").record(id, ok) {
                            let at = started.elapsed().as_millis();
                            transitions.lock().expect("not poisoned").push((at, id, t));
                        }
                    }
                    tokio::select! {
                        _ = done.notified() => return,
                        _ = tokio::time::sleep(Duration::from_millis(2)) => {}
                    }
                }
            })
        });

        let mut requests = tokio::task::JoinSet::new();
        for seq in 0..self.requests {
            tokio::time::sleep_until((started + self.request_every * seq as u32).into()).await;
            if seq == self.crash_at_request {
                fleet[self.crashing].crash();
            }
            if seq == self.failing_from {
                fleet[self.failing].set_behaviour(Behaviour::Failing {
                    latency: self.latency,
                });
            }
            if seq == self.failing_until {
                fleet[self.failing].set_behaviour(Behaviour::Healthy {
                    latency: self.latency,
                });
            }
            let picked = pool.lock().expect("not poisoned").pick();
            let (fleet, timeout) = (Arc::clone(&fleet), self.client_timeout);
            requests.spawn(async move {
                let began = Instant::now();
                let ok = match picked {
                    Some(id) => matches!(
                        backend::get(fleet[id].addr(), "/work", timeout).await,
                        Ok(r) if r.status == 200
                    ),
                    None => false,
                };
                HealthSample {
                    seq,
                    backend: picked,
                    latency: began.elapsed(),
                    ok,
                }
            });
        }
        let samples = requests.join_all().await;
        done.notify_one();
        if let Some(checker) = checker {
            let _ = checker.await;
        }
        let transitions = transitions.lock().expect("not poisoned").clone();
        HealthRun {
            samples,
            transitions,
        }
    }

    /// Runs the scenario without checks and with them (a fresh pool from `new_pool` each time),
    /// and prints failures per backend, the transitions logged and the detection delay.
    pub fn run<P: HealthChecked + Send + 'static>(&self, new_pool: impl Fn() -> P) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let (crashing, failing) = (self.crashing, self.failing);
        let ms = |seq: usize| (self.request_every * seq as u32).as_millis();
        println!(
            "{} backends on 127.0.0.1, a request every {:?} ({} in all).\nbackend-{crashing} \
             crashes at t={} ms; backend-{failing} answers 503 from t={} ms to t={} ms.\nChecker: \
             every {:?}, eject after {} failures, readmit after {} successes.\n",
            self.backends,
            self.request_every,
            self.requests,
            ms(self.crash_at_request),
            ms(self.failing_from),
            ms(self.failing_until),
            self.check_interval,
            self.fall,
            self.rise,
        );
        let mut per_backend = Table::new(&["run / backend", "requests", "errors", "p50", "p99"]);
        let mut summary = Table::new(&[
            "run".to_string(),
            "requests".to_string(),
            "failed".to_string(),
            format!("failed on backend-{crashing}"),
            format!("failed on backend-{failing}"),
        ]);
        let mut bars = Vec::new();
        for (name, checks) in [("no checks", false), ("your checks", true)] {
            let report = runtime.block_on(self.scenario(new_pool(), checks));
            for id in 0..self.backends {
                let mine: Vec<&HealthSample> = report
                    .samples
                    .iter()
                    .filter(|s| s.backend == Some(id))
                    .collect();
                let mut latencies: Vec<Duration> = mine.iter().map(|s| s.latency).collect();
                per_backend.row(&[
                    format!("{name} / backend-{id}"),
                    mine.len().to_string(),
                    mine.iter().filter(|s| !s.ok).count().to_string(),
                    quantile(&mut latencies, 0.5),
                    quantile(&mut latencies, 0.99),
                ]);
                if checks {
                    bars.push((format!("backend-{id}"), mine.len() as f64));
                }
            }
            let failed_on = |id| {
                report
                    .samples
                    .iter()
                    .filter(|s| s.backend == Some(id) && !s.ok)
                    .count()
            };
            summary.row(&[
                name.to_string(),
                report.samples.len().to_string(),
                report.samples.iter().filter(|s| !s.ok).count().to_string(),
                failed_on(crashing).to_string(),
                failed_on(failing).to_string(),
            ]);
            if checks {
                println!("health transitions (your checker):");
                for (at, id, t) in &report.transitions {
                    println!("  t={at:>4} ms  backend-{id}  {t:?}");
                }
                let after_crash = report
                    .samples
                    .iter()
                    .filter(|s| s.seq >= self.crash_at_request && s.backend == Some(crashing))
                    .count();
                let ejected_at = report
                    .transitions
                    .iter()
                    .find(|(_, id, t)| *id == crashing && *t == Transition::Ejected)
                    .map_or("never".to_string(), |(at, _, _)| {
                        format!(
                            "{} ms after the crash",
                            at.saturating_sub(ms(self.crash_at_request))
                        )
                    });
                println!(
                    "  backend-{crashing} ejected {ejected_at}; requests sent to it in between: \
                     {after_crash}\n"
                );
            }
        }
        per_backend.print();
        println!();
        summary.print();
        println!(
            "\nrequests per backend, with your checks\n{}",
            bar_chart(&bars, 40)
        );
    }
}
