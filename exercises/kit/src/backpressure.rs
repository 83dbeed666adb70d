//! Machinery shared by the backpressure exercises: simulated queues, workloads and lab drivers.
//!
//! Everything here runs on simulated time (plain numbers or tokio's paused clock), so the labs
//! play minutes of traffic in a second and print the same figures on every run.

use std::convert::Infallible;

use rand::TryRng;

use crate::lab::{Table, bar_chart};

/// A small, fast, seeded random source (SplitMix64) for simulations that draw millions of
/// numbers: in a debug build it is many times faster than `StdRng`, so a long statistical test
/// stays cheap. Not for anything where randomness must be unpredictable.
#[derive(Debug, Clone)]
pub struct FastRng(u64);

impl FastRng {
    pub fn seeded(seed: u64) -> Self {
        FastRng(seed ^ 0x853c_49e6_748f_ea9b)
    }
}

impl TryRng for FastRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        // SplitMix64: a Weyl sequence through the same finaliser the hashing topic uses.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        Ok(crate::hashing::mix64(self.0))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

/// The queue_simulation lab: for each load, the simulated mean wait of M/M/1 and M/D/1 (with
/// μ = 1) next to the formulas. `mean_wait(rng, load, constant)` runs one simulation.
pub fn queueing_lab(
    loads: &[f64],
    jobs: usize,
    seed: u64,
    mut mean_wait: impl FnMut(&mut FastRng, f64, bool) -> f64,
) {
    let mut table = Table::new(&[
        "load ρ",
        "M/M/1 Wq sim",
        "ρ/(μ−λ)",
        "M/D/1 Wq sim",
        "ρ/(2μ(1−ρ))",
    ]);
    let mut bars = Vec::new();
    for (i, &load) in loads.iter().enumerate() {
        let mm1 = mean_wait(&mut FastRng::seeded(seed + 2 * i as u64), load, false);
        let md1 = mean_wait(&mut FastRng::seeded(seed + 2 * i as u64 + 1), load, true);
        let formula = load / (1.0 - load);
        table.row(&[
            format!("{load:.2}"),
            format!("{mm1:.2}"),
            format!("{formula:.2}"),
            format!("{md1:.2}"),
            format!("{:.2}", formula / 2.0),
        ]);
        bars.push((format!("ρ = {load:.2}"), (mm1 * 100.0).round() / 100.0));
    }
    println!("{jobs} jobs per run, times in mean service times (μ = 1)\n");
    table.print();
    println!(
        "\nM/M/1 mean wait in line, simulated:\n{}",
        bar_chart(&bars, 50)
    );
    println!(
        "\nThe wait grows as 1/(1−ρ): the last few percent of utilisation cost the most. Near \
         ρ = 1 the run is too short to settle, and the simulation falls short of the formula."
    );
}

pub mod overload {
    //! A single server under offered load, with a pluggable queue discipline: the codel lab and
    //! its scenario tests. Requests arrive as a Poisson process (seeded), the server takes
    //! `service` per request, and a request is *good* when it is answered within the deadline
    //! (its client has given up after that, so the work was wasted).

    use std::collections::VecDeque;
    use std::time::Duration;

    use rand::RngExt;

    use super::FastRng;
    use crate::lab::{Table, bar_chart};

    /// A queue in front of the server. `now` is the simulated time of the call.
    pub trait Discipline {
        /// Offers request `id`; `false` when the queue refuses it (it is shed at once).
        fn enqueue(&mut self, id: u64, now: Duration) -> bool;
        /// The next request to serve, or `None` when there is none (a discipline may drop
        /// requests here instead of serving them).
        fn dequeue(&mut self, now: Duration) -> Option<u64>;
    }

    /// First in, first out, with an optional limit on the queue length (beyond it: rejected).
    pub struct Fifo {
        queue: VecDeque<u64>,
        limit: Option<usize>,
    }

    impl Fifo {
        pub fn unbounded() -> Self {
            Fifo {
                queue: VecDeque::new(),
                limit: None,
            }
        }

        pub fn bounded(limit: usize) -> Self {
            Fifo {
                queue: VecDeque::new(),
                limit: Some(limit),
            }
        }
    }

    impl Discipline for Fifo {
        fn enqueue(&mut self, id: u64, _now: Duration) -> bool {
            if self.limit.is_some_and(|l| self.queue.len() >= l) {
                return false;
            }
            self.queue.push_back(id);
            true
        }

        fn dequeue(&mut self, _now: Duration) -> Option<u64> {
            self.queue.pop_front()
        }
    }

    /// Last in, first out, unbounded: the newest request (whose client is surely still
    /// waiting) is served first.
    #[derive(Default)]
    pub struct Lifo(Vec<u64>);

    impl Discipline for Lifo {
        fn enqueue(&mut self, id: u64, _now: Duration) -> bool {
            self.0.push(id);
            true
        }

        fn dequeue(&mut self, _now: Duration) -> Option<u64> {
            self.0.pop()
        }
    }

    /// Facebook's CoDel for RPC queues ("Fail at Scale", 2015): when the queue has not been
    /// empty for the last `interval`, a request that has waited more than `target` is dropped
    /// at dequeue; otherwise one that has waited more than `interval` is. The kit's comparison
    /// point for the codel lab: it reacts at once, where RFC 8289's drop rate ramps up.
    pub struct RpcCoDel {
        queue: VecDeque<(Duration, u64)>,
        target: Duration,
        interval: Duration,
        last_empty: Duration,
    }

    impl RpcCoDel {
        pub fn new(target: Duration, interval: Duration) -> Self {
            RpcCoDel {
                queue: VecDeque::new(),
                target,
                interval,
                last_empty: Duration::ZERO,
            }
        }
    }

    impl Discipline for RpcCoDel {
        fn enqueue(&mut self, id: u64, now: Duration) -> bool {
            self.queue.push_back((now, id));
            true
        }

        fn dequeue(&mut self, now: Duration) -> Option<u64> {
            let limit = if now.saturating_sub(self.last_empty) > self.interval {
                self.target
            } else {
                self.interval
            };
            while let Some((at, id)) = self.queue.pop_front() {
                if self.queue.is_empty() {
                    self.last_empty = now;
                }
                if now - at <= limit {
                    return Some(id);
                }
            }
            self.last_empty = now;
            None
        }
    }

    /// What one run gave.
    #[derive(Debug, Clone, Default)]
    pub struct Outcome {
        pub offered: u64,
        pub served: u64,
        /// Served within the deadline.
        pub good: u64,
        /// Requests the server could have served in the run (duration / service).
        pub capacity: u64,
        /// Time in queue of the served requests, sorted.
        pub waits: Vec<Duration>,
        /// (served at, time in queue) of each served request, in the order served.
        pub timeline: Vec<(Duration, Duration)>,
    }

    impl Outcome {
        /// Good requests as a share of the server's capacity.
        pub fn goodput(&self) -> f64 {
            self.good as f64 / self.capacity as f64
        }

        /// Quantile `q` (0..=1) of the served requests' time in queue.
        pub fn wait_quantile(&self, q: f64) -> Duration {
            crate::lab::nearest_rank(&self.waits, q).unwrap_or_default()
        }

        /// A request served at `at` after `wait` in the queue: good if it ends within the deadline.
        fn record_served(&mut self, at: Duration, wait: Duration, l: &Load) {
            self.served += 1;
            if wait + l.service <= l.deadline {
                self.good += 1;
            }
            self.waits.push(wait);
            self.timeline.push((at, wait));
        }
    }

    /// The server and its load.
    #[derive(Debug, Clone, Copy)]
    pub struct Load {
        /// Offered load as a multiple of capacity (1.0: arrivals at exactly the service rate).
        pub load: f64,
        pub service: Duration,
        pub deadline: Duration,
        pub duration: Duration,
        pub seed: u64,
    }

    /// Runs Poisson arrivals through `queue` and one server; see the module documentation.
    pub fn simulate(queue: &mut dyn Discipline, l: Load) -> Outcome {
        let mut rng = FastRng::seeded(l.seed);
        let mean_gap = l.service.as_secs_f64() / l.load;
        let mut gap = || Duration::from_secs_f64(-(1.0 - rng.random::<f64>()).ln() * mean_gap);
        let mut arrivals: Vec<Duration> = Vec::new();
        let mut out = Outcome {
            capacity: (l.duration.as_secs_f64() / l.service.as_secs_f64()) as u64,
            ..Outcome::default()
        };
        let mut next = gap();
        let mut free_at = Duration::ZERO;
        while next <= l.duration {
            // Serve what the queue gives until the next arrival.
            while free_at <= next {
                match queue.dequeue(free_at) {
                    Some(id) => {
                        out.record_served(free_at, free_at - arrivals[id as usize], &l);
                        free_at += l.service;
                    }
                    None => {
                        free_at = next;
                        break;
                    }
                }
            }
            let id = arrivals.len() as u64;
            arrivals.push(next);
            out.offered += 1;
            queue.enqueue(id, next);
            next += gap();
        }
        // Arrivals are over: serve what is left.
        while let Some(id) = queue.dequeue(free_at) {
            out.record_served(free_at, free_at - arrivals[id as usize], &l);
            free_at += l.service;
        }
        out.waits.sort_unstable();
        out
    }

    /// The codel lab: offered load swept over `loads` for each named discipline; a table of
    /// goodput and served p99, and bar charts of the p99 of the first and last disciplines.
    #[allow(clippy::type_complexity)]
    pub fn sweep_lab(
        loads: &[f64],
        base: Load,
        disciplines: &mut [(&str, &mut dyn FnMut() -> Box<dyn Discipline>)],
        charted: &[&str],
    ) {
        let mut header = vec!["load".to_string()];
        for (name, _) in disciplines.iter() {
            header.push(format!("{name} goodput"));
            header.push(format!("{name} p99"));
        }
        let mut table = Table::new(&header);
        let mut charts: Vec<Vec<(String, f64)>> = vec![Vec::new(); disciplines.len()];
        for &load in loads {
            let mut row = vec![format!("{load:.1}×")];
            for (i, (_, make)) in disciplines.iter_mut().enumerate() {
                let mut queue = make();
                let out = simulate(queue.as_mut(), Load { load, ..base });
                let p99 = out.wait_quantile(0.99) + base.service;
                row.push(format!("{:.0}%", out.goodput() * 100.0));
                row.push(crate::lab::whole_millis(p99));
                charts[i].push((format!("{load:.1}×"), (p99.as_secs_f64() * 1e3).round()));
            }
            table.row(&row);
        }
        println!(
            "one server, {} per request, Poisson arrivals for {:?}; goodput = answered within {:?}, \
             as a share of capacity; p99 = served requests' latency\n",
            crate::lab::millis(base.service),
            base.duration,
            base.deadline
        );
        table.print();
        for (i, (name, _)) in disciplines.iter().enumerate() {
            if !charted.contains(name) {
                continue;
            }
            println!(
                "\n{name}: served p99 latency (ms) by offered load\n{}",
                bar_chart(&charts[i], 50)
            );
        }
    }
}

pub mod shedding {
    //! A single server with a priority-aware queue, under Poisson load with a mix of priorities:
    //! the priority_shedding lab and scenario tests.

    use std::time::Duration;

    use rand::RngExt;

    use super::FastRng;
    use crate::lab::{Table, bar_chart};

    /// How much a request matters, lowest first (so `Low < Critical`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Priority {
        /// Prefetches, batch jobs, retries of retries.
        Low = 0,
        Normal = 1,
        High = 2,
        /// A user is waiting on it and nothing can replace it (a checkout, a login).
        Critical = 3,
    }

    impl Priority {
        /// Every priority, lowest first: `ALL[p as usize] == p`.
        pub const ALL: [Priority; 4] = [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Critical,
        ];
    }

    /// A queue in front of the server that decides what to shed.
    pub trait Shed {
        /// Offers request `id`: `None` if it was queued without shedding anything, else the
        /// request shed to make the decision (this one, or one already queued).
        fn offer(&mut self, priority: Priority, id: u64) -> Option<(Priority, u64)>;
        /// The next request to serve.
        fn next(&mut self) -> Option<(Priority, u64)>;
    }

    /// The load: its size as a multiple of capacity and its mix (weights per priority, in the
    /// order of `Priority::ALL`).
    #[derive(Debug, Clone, Copy)]
    pub struct Load {
        pub load: f64,
        pub mix: [f64; 4],
        pub service: Duration,
        pub duration: Duration,
        pub seed: u64,
    }

    /// Per priority: what one run gave.
    #[derive(Debug, Clone, Default)]
    pub struct ClassOutcome {
        pub offered: u64,
        pub served: u64,
        pub shed: u64,
        /// Time in queue of the served requests, sorted.
        pub waits: Vec<Duration>,
    }

    impl ClassOutcome {
        pub fn p99(&self) -> Duration {
            crate::lab::nearest_rank(&self.waits, 0.99).unwrap_or_default()
        }
    }

    /// Poisson arrivals with priorities drawn from the mix, one server taking `service` per
    /// request, through `queue`. After the last arrival the queue is drained.
    pub fn simulate(queue: &mut dyn Shed, l: Load) -> [ClassOutcome; 4] {
        let mut rng = FastRng::seeded(l.seed);
        let total: f64 = l.mix.iter().sum();
        let mean_gap = l.service.as_secs_f64() / l.load;
        let mut out: [ClassOutcome; 4] = Default::default();
        let mut arrivals: Vec<Duration> = Vec::new();
        let mut free_at = Duration::ZERO;
        let mut next = Duration::ZERO;
        let serve = |queue: &mut dyn Shed,
                     free_at: &mut Duration,
                     arrivals: &[Duration],
                     out: &mut [ClassOutcome; 4]| {
            match queue.next() {
                Some((p, id)) => {
                    let class = &mut out[p as usize];
                    class.served += 1;
                    class.waits.push(*free_at - arrivals[id as usize]);
                    *free_at += l.service;
                    true
                }
                None => false,
            }
        };
        loop {
            next += Duration::from_secs_f64(-(1.0 - rng.random::<f64>()).ln() * mean_gap);
            if next > l.duration {
                break;
            }
            while free_at <= next {
                if !serve(queue, &mut free_at, &arrivals, &mut out) {
                    free_at = next;
                    break;
                }
            }
            let mut pick = rng.random::<f64>() * total;
            let mut p = Priority::Critical;
            for (i, w) in l.mix.iter().enumerate() {
                if pick < *w {
                    p = Priority::ALL[i];
                    break;
                }
                pick -= w;
            }
            let id = arrivals.len() as u64;
            arrivals.push(next);
            out[p as usize].offered += 1;
            if let Some((shed, _)) = queue.offer(p, id) {
                out[shed as usize].shed += 1;
            }
        }
        while serve(queue, &mut free_at, &arrivals, &mut out) {}
        for class in &mut out {
            class.waits.sort_unstable();
        }
        out
    }

    /// The priority_shedding lab: loads swept, served share and p99 wait per priority.
    pub fn sweep_lab(loads: &[f64], base: Load, mut make: impl FnMut() -> Box<dyn Shed>) {
        let mut header = vec!["load".to_string()];
        for p in Priority::ALL.iter().rev() {
            header.push(format!("{p:?} served"));
            header.push(format!("{p:?} p99"));
        }
        let mut table = Table::new(&header);
        let mut bars = Vec::new();
        for &load in loads {
            let mut queue = make();
            let out = simulate(queue.as_mut(), Load { load, ..base });
            let mut row = vec![format!("{load:.1}×")];
            for p in Priority::ALL.iter().rev() {
                let c = &out[*p as usize];
                row.push(crate::lab::percent(c.served, c.offered));
                row.push(crate::lab::whole_millis(c.p99()));
            }
            table.row(&row);
            let shed: u64 = out.iter().map(|c| c.shed).sum();
            let offered: u64 = out.iter().map(|c| c.offered).sum();
            bars.push((
                format!("{load:.1}×"),
                (shed as f64 * 1000.0 / offered as f64).round() / 10.0,
            ));
        }
        println!(
            "one server, {} per request, for {:?}; mix (low, normal, high, critical) = {:?}\n",
            crate::lab::millis(base.service),
            base.duration,
            base.mix
        );
        table.print();
        println!(
            "\nshare of all requests shed (%), by offered load\n{}",
            bar_chart(&bars, 50)
        );
    }
}

pub mod concurrency {
    //! A closed-loop client and a server of known capacity, event by event on a simulated clock:
    //! the adaptive_concurrency lab and scenario tests.
    //!
    //! The server is a FIFO that takes `service` per request (its throughput is 1/service),
    //! and every response then spends `base` on the network. Callers always want `demand`
    //! requests in flight; the limiter caps how many are. Little's law: with L in flight the
    //! latency is about max(base + service, L × service), so the knee is at
    //! L = base/service + 1 and each extra request in flight only adds queueing.

    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::time::Duration;

    use crate::lab::{Table, bar_chart};

    /// A concurrency limit that learns from responses.
    pub trait Limiter {
        /// How many requests may be in flight now.
        fn limit(&self) -> usize;
        /// A response to a request sent at `sent_at` arrived at `now`; `inflight` requests were
        /// in flight when it arrived (itself included); `dropped` if the server refused it.
        fn on_response(&mut self, sent_at: Duration, now: Duration, inflight: usize, dropped: bool);
    }

    /// From `from` on, the server takes `service` per request.
    #[derive(Debug, Clone, Copy)]
    pub struct Phase {
        pub from: Duration,
        pub service: Duration,
    }

    /// One response as the client saw it, and the limit after it.
    #[derive(Debug, Clone, Copy)]
    pub struct Sample {
        pub at: Duration,
        pub latency: Duration,
        pub limit: usize,
    }

    /// Runs the closed loop until `end`; phases in order of `from` (the first from 0).
    pub fn drive(
        limiter: &mut dyn Limiter,
        demand: usize,
        base: Duration,
        phases: &[Phase],
        end: Duration,
    ) -> Vec<Sample> {
        let service_at = |t: Duration| {
            phases
                .iter()
                .rev()
                .find(|p| p.from <= t)
                .map_or(phases[0].service, |p| p.service)
        };
        // (response time, sent at), earliest first.
        let mut pending: BinaryHeap<Reverse<(Duration, Duration)>> = BinaryHeap::new();
        let mut server_free = Duration::ZERO;
        let mut samples = Vec::new();
        let mut now = Duration::ZERO;
        loop {
            while pending.len() < limiter.limit().min(demand) {
                let start = server_free.max(now);
                server_free = start + service_at(start);
                pending.push(Reverse((server_free + base, now)));
            }
            let Some(Reverse((at, sent))) = pending.pop() else {
                break;
            };
            if at > end {
                break;
            }
            now = at;
            limiter.on_response(sent, now, pending.len() + 1, false);
            samples.push(Sample {
                at,
                latency: at - sent,
                limit: limiter.limit(),
            });
        }
        samples
    }

    /// Responses per ms, mean limit and p99 latency of the samples in `[from, to)`.
    pub fn window(samples: &[Sample], from: Duration, to: Duration) -> (f64, f64, Duration) {
        let w: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at >= from && s.at < to)
            .collect();
        if w.is_empty() {
            return (0.0, 0.0, Duration::ZERO);
        }
        let per_ms = w.len() as f64 / (to - from).as_secs_f64() / 1000.0;
        let mean_limit = w.iter().map(|s| s.limit as f64).sum::<f64>() / w.len() as f64;
        let mut lat: Vec<Duration> = w.iter().map(|s| s.latency).collect();
        lat.sort_unstable();
        (
            per_ms,
            mean_limit,
            crate::lab::nearest_rank(&lat, 0.99).expect("the window is not empty"),
        )
    }

    /// The adaptive_concurrency lab: the limit over time through the phases, per step of
    /// `step`, with throughput and p99 latency.
    pub fn lab(
        limiter: &mut dyn Limiter,
        demand: usize,
        base: Duration,
        phases: &[Phase],
        end: Duration,
        step: Duration,
    ) {
        let samples = drive(limiter, demand, base, phases, end);
        let mut table = Table::new(&["time", "server", "knee", "limit", "req/ms", "p99"]);
        let mut bars = Vec::new();
        let mut t = Duration::ZERO;
        while t < end {
            let service = phases
                .iter()
                .rev()
                .find(|p| p.from <= t)
                .map_or(phases[0].service, |p| p.service);
            let (rate, limit, p99) = window(&samples, t, t + step);
            let knee = base.as_secs_f64() / service.as_secs_f64() + 1.0;
            table.row(&[
                format!("{:.1} s", t.as_secs_f64()),
                format!("{} /req", crate::lab::millis(service)),
                format!("{knee:.0}"),
                format!("{limit:.1}"),
                format!("{rate:.2}"),
                crate::lab::whole_millis(p99),
            ]);
            bars.push((
                format!("{:.1} s", t.as_secs_f64()),
                (limit * 10.0).round() / 10.0,
            ));
            t += step;
        }
        println!(
            "{demand} callers, network {}, server capacity 1/service; knee = base/service + 1\n",
            crate::lab::millis(base)
        );
        table.print();
        println!(
            "\nmean concurrency limit over time\n{}",
            bar_chart(&bars, 50)
        );
    }
}

pub mod flow {
    //! A producer and a sink around a pipeline, on tokio's paused clock: the bounded_pipeline
    //! lab and its memory test. The producer offers an item every `produce_every` (waiting when
    //! the pipeline's input is full); the sink takes one every `sink_every`.

    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::sync::mpsc;
    use tokio::time::{Instant, sleep};

    use crate::lab::{Table, bar_chart};

    /// What a run through a pipeline gave.
    #[derive(Debug, Clone, Default)]
    pub struct Flow {
        /// The items as the sink received them.
        pub received: Vec<u64>,
        /// The most items ever sent by the producer and not yet taken by the sink.
        pub peak_in_flight: u64,
        /// When the producer's last send completed, and when the sink took the last item.
        pub producer_done: Duration,
        pub sink_done: Duration,
        /// From send to sink, mean and max.
        pub mean_latency: Duration,
        pub max_latency: Duration,
    }

    #[derive(Default)]
    struct Counts {
        sent: u64,
        received: u64,
        peak: u64,
        sent_at: Vec<Instant>,
    }

    /// Sends `items` (0, 1, 2...) into a channel of capacity `input_capacity` that `pipeline`
    /// turns into an output, and drains the output with a slow sink. Dropping the producer's
    /// sender when done is how the pipeline learns the input has ended.
    pub async fn run(
        items: u64,
        input_capacity: usize,
        produce_every: Duration,
        sink_every: Duration,
        pipeline: impl FnOnce(mpsc::Receiver<u64>) -> mpsc::Receiver<u64>,
    ) -> Flow {
        let start = Instant::now();
        let (tx, rx) = mpsc::channel(input_capacity);
        let mut output = pipeline(rx);
        let counts = Arc::new(Mutex::new(Counts::default()));
        let producer = {
            let counts = counts.clone();
            tokio::spawn(async move {
                for i in 0..items {
                    if tx.send(i).await.is_err() {
                        break;
                    }
                    {
                        let mut c = counts.lock().unwrap();
                        c.sent += 1;
                        c.sent_at.push(Instant::now());
                        c.peak = c.peak.max(c.sent - c.received);
                    }
                    sleep(produce_every).await;
                }
                start.elapsed()
            })
        };
        let mut flow = Flow::default();
        let mut total = Duration::ZERO;
        while let Some(item) = output.recv().await {
            let latency = {
                let mut c = counts.lock().unwrap();
                c.received += 1;
                c.sent_at
                    .get(item as usize)
                    .map_or(Duration::ZERO, |t| t.elapsed())
            };
            total += latency;
            flow.max_latency = flow.max_latency.max(latency);
            flow.received.push(item);
            flow.sink_done = start.elapsed();
            sleep(sink_every).await;
        }
        flow.producer_done = producer.await.expect("the producer does not panic");
        flow.peak_in_flight = counts.lock().unwrap().peak;
        if !flow.received.is_empty() {
            flow.mean_latency = total / flow.received.len() as u32;
        }
        flow
    }

    /// The bounded_pipeline lab: the same producer, stages and slow sink for each capacity.
    pub fn lab(
        capacities: &[usize],
        stages: usize,
        items: u64,
        produce_every: Duration,
        sink_every: Duration,
        pipeline: impl Fn(mpsc::Receiver<u64>, usize) -> mpsc::Receiver<u64>,
    ) {
        let rt = crate::lab::simulated_runtime();
        let mut table = Table::new(&[
            "capacity",
            "peak in flight",
            "producer done",
            "sink done",
            "mean latency",
            "max latency",
        ]);
        let mut bars = Vec::new();
        for &capacity in capacities {
            let flow = rt.block_on(run(items, capacity, produce_every, sink_every, |rx| {
                pipeline(rx, capacity)
            }));
            assert_eq!(flow.received.len() as u64, items, "every item arrives");
            table.row(&[
                capacity.to_string(),
                flow.peak_in_flight.to_string(),
                crate::lab::whole_millis(flow.producer_done),
                crate::lab::whole_millis(flow.sink_done),
                crate::lab::whole_millis(flow.mean_latency),
                crate::lab::whole_millis(flow.max_latency),
            ]);
            bars.push((format!("capacity {capacity}"), flow.peak_in_flight as f64));
        }
        println!(
            "{items} items, produced every {}, {stages} stages, sink takes {} per item \
             (simulated time)\n",
            crate::lab::millis(produce_every),
            crate::lab::millis(sink_every)
        );
        table.print();
        println!("\npeak items in flight (memory)\n{}", bar_chart(&bars, 50));
        println!(
            "\nThe sink sets the pace whatever the buffers: bigger ones only hold more items, \
             each waiting longer. An unbounded queue is the last row without a limit."
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::RngExt;

    use super::overload::{Discipline, Fifo, Lifo, Load, RpcCoDel, simulate};
    use super::*;

    #[test]
    fn fast_rng_is_seeded_and_roughly_uniform() {
        let a: Vec<u64> = (0..5)
            .map(|_| 0)
            .scan(FastRng::seeded(3), |r, _: u64| Some(r.random::<u64>()))
            .collect();
        let b: Vec<u64> = (0..5)
            .map(|_| 0)
            .scan(FastRng::seeded(3), |r, _: u64| Some(r.random::<u64>()))
            .collect();
        assert_eq!(a, b, "same seed, same sequence");
        let mut r = FastRng::seeded(4);
        let mean = (0..10_000).map(|_| r.random::<f64>()).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "uniform on [0, 1): mean {mean}");
    }

    #[test]
    fn the_kit_disciplines_keep_their_order_and_limits() {
        let mut f = Fifo::bounded(2);
        assert!(f.enqueue(1, Duration::ZERO) && f.enqueue(2, Duration::ZERO));
        assert!(!f.enqueue(3, Duration::ZERO), "full: rejected");
        assert_eq!(f.dequeue(Duration::ZERO), Some(1));
        let mut l = Lifo::default();
        l.enqueue(1, Duration::ZERO);
        l.enqueue(2, Duration::ZERO);
        assert_eq!(l.dequeue(Duration::ZERO), Some(2));
        let ms = Duration::from_millis;
        let mut c = RpcCoDel::new(ms(5), ms(100));
        c.enqueue(1, ms(0));
        assert_eq!(
            c.dequeue(ms(50)),
            Some(1),
            "queue empty recently: up to 100 ms allowed"
        );
    }

    #[test]
    fn below_capacity_a_fifo_serves_everything_within_the_deadline() {
        let l = Load {
            load: 0.5,
            service: Duration::from_millis(1),
            deadline: Duration::from_millis(100),
            duration: Duration::from_secs(2),
            seed: 1,
        };
        let out = simulate(&mut Fifo::unbounded(), l);
        assert_eq!(out.served, out.offered);
        assert_eq!(out.good, out.served);
        assert!(
            (out.offered as f64 - 1_000.0).abs() < 100.0,
            "λ = 0.5/ms for 2 s"
        );
    }
}
