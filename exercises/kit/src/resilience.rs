//! Machinery shared by the resilience exercises: lab drivers and simulators the learner never edits.

/// The `deadline_propagation` scaffolding: the `grpc-timeout` format's constants, the simulated
/// chain of hops (a network of tokio tasks on a paused clock) and the lab.
pub mod deadlines {
    use std::collections::HashMap;
    use std::fmt;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use rand::RngExt;
    use tokio::sync::Semaphore;
    use tokio::time::Instant;

    use crate::lab::{Table, bar_chart, percent};
    use crate::workload::seeded_rng;

    // ---- The grpc-timeout header -----------------------------------------------------------------
    //
    // Format (gRPC over HTTP/2): 1 to 8 ASCII digits, then one unit letter:
    //   H hours, M minutes, S seconds, m milliseconds, u microseconds, n nanoseconds.
    // "250m" is 250 ms, "1S" one second, "5M" five minutes. Note `S` vs `m`: case matters.

    /// The metadata key that carries the caller's remaining budget.
    pub const GRPC_TIMEOUT: &str = "grpc-timeout";
    /// The metadata key a client may set to tag its request in the network's log. Calls made while
    /// serving a request are tagged with the same id automatically (like tracing headers).
    pub const REQUEST_ID: &str = "x-request-id";

    /// The units, coarsest first.
    pub const UNITS: [(char, Duration); 6] = [
        ('H', Duration::from_secs(3600)),
        ('M', Duration::from_secs(60)),
        ('S', Duration::from_secs(1)),
        ('m', Duration::from_millis(1)),
        ('u', Duration::from_micros(1)),
        ('n', Duration::from_nanos(1)),
    ];

    /// At most 8 digits: the largest value is 99 999 999 of a unit.
    pub const MAX_DIGITS: usize = 8;
    pub const MAX_VALUE: u64 = 99_999_999;

    /// Why a `grpc-timeout` value was rejected.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ParseError {
        /// `""`.
        Empty,
        /// Digits without a unit: `"250"`.
        MissingUnit,
        /// The last character is not one of `H M S m u n`: `"5s"`, `"5x"`.
        UnknownUnit(char),
        /// A unit without digits: `"m"`.
        NoDigits,
        /// Something other than an ASCII digit before the unit: `"1.5S"`, `"+5m"`, `"-1S"`, `" 5m"`.
        NotADigit(char),
        /// More than 8 digits: `"123456789m"`.
        TooManyDigits(usize),
    }

    impl fmt::Display for ParseError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                ParseError::Empty => write!(f, "empty grpc-timeout"),
                ParseError::MissingUnit => write!(f, "grpc-timeout has no unit (H M S m u n)"),
                ParseError::UnknownUnit(c) => {
                    write!(f, "grpc-timeout unit {c:?} is not H M S m u n")
                }
                ParseError::NoDigits => write!(f, "grpc-timeout has no digits"),
                ParseError::NotADigit(c) => write!(f, "grpc-timeout value contains {c:?}"),
                ParseError::TooManyDigits(n) => {
                    write!(f, "grpc-timeout has {n} digits (at most 8)")
                }
            }
        }
    }

    // ---- The simulated chain ---------------------------------------------------------------------

    /// One service of the chain, as configured.
    #[derive(Debug, Clone)]
    pub struct Hop {
        pub name: &'static str,
        /// This hop's own timeout: the most it spends on a request, whatever the caller says, and
        /// its deadline when the caller sends none.
        pub timeout: Duration,
        /// Local work before calling downstream (parse, authenticate, read a cache...), as this hop
        /// expects it to take. The last hop does all its work here.
        pub work: Duration,
        /// Work after the downstream answered: building and sending this hop's own reply. The hop
        /// keeps this much back from the budget it passes down.
        pub reply: Duration,
    }

    /// A request as it travels between hops: its metadata (gRPC's headers).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Request {
        pub metadata: Vec<(String, String)>,
    }

    impl Request {
        pub fn new() -> Self {
            Self::default()
        }

        /// The same request with one more metadata entry.
        pub fn with(mut self, key: &str, value: &str) -> Self {
            self.metadata.push((key.to_string(), value.to_string()));
            self
        }

        /// The value of metadata `key`, if present.
        pub fn get(&self, key: &str) -> Option<&str> {
            self.metadata
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
    }

    /// A successful answer: the hops that served it, innermost first (`["C", "B", "A"]`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Reply {
        pub served_by: Vec<&'static str>,
    }

    /// A failed answer, as gRPC status codes.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Status {
        /// The budget ran out, or could not cover the work: give up, nobody is waiting any more.
        DeadlineExceeded,
        /// The request was malformed (a `grpc-timeout` that does not parse).
        InvalidArgument(ParseError),
    }

    /// What the network saw, for the tests and the lab. Times are since the network was created;
    /// `request` is the id of the client request it was for.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Event {
        /// `hop` received a request carrying this `grpc-timeout` (`None`: no deadline).
        Received {
            request: u64,
            hop: usize,
            at: Duration,
            timeout: Option<String>,
        },
        /// `hop` was busy from `from` to `to`; `finished` is false when the work was cut short.
        Worked {
            request: u64,
            hop: usize,
            from: Duration,
            to: Duration,
            finished: bool,
        },
        /// `hop` sent its answer.
        Answered {
            request: u64,
            hop: usize,
            at: Duration,
            ok: bool,
        },
    }

    tokio::task_local! {
        /// The id of the client request the current hop task is serving.
        static CURRENT_REQUEST: u64;
    }

    /// How a hop serves a request: the exercise's `serve`, boxed (see `Network::new`).
    pub type Serve = fn(Arc<Network>, usize, Request) -> BoxedAnswer;
    pub type BoxedAnswer = Pin<Box<dyn Future<Output = Result<Reply, Status>> + Send>>;

    /// The hops, wired A -> B -> C (hop i calls hop i + 1), plus what the network observed.
    pub struct Network {
        hops: Vec<Hop>,
        /// What each hop runs for a request.
        serve: Serve,
        /// Extra, unexpected local work per hop (a GC pause, a lock wait): the hop does not know.
        stalls: Vec<Duration>,
        /// The same, for one request only: (request id, hop) -> extra.
        request_stalls: HashMap<(u64, usize), Duration>,
        /// Per hop, the workers that do its local work (`None`: as many as needed). A request
        /// waits in the queue for a free worker; the wait is not work, but it is time spent.
        workers: Vec<Option<Arc<Semaphore>>>,
        /// Each machine's wall-clock error in ms (positive: its clock is ahead).
        skews_ms: Vec<i64>,
        /// `false` strips `grpc-timeout` from every request, like a proxy or client library that
        /// does not forward deadlines: each hop then falls back to its own timeout.
        propagate: bool,
        /// Per hop: `true` if it ignores the `grpc-timeout` it receives (an old server, a proxy that
        /// drops the header) and works on its own timeout instead.
        deaf: Vec<bool>,
        started: Instant,
        events: Mutex<Vec<Event>>,
        running: AtomicUsize,
    }

    impl Network {
        /// The chain `hops`, each hop running `serve` on the requests it receives.
        pub fn new(hops: Vec<Hop>, serve: Serve) -> Network {
            let n = hops.len();
            Network {
                hops,
                serve,
                stalls: vec![Duration::ZERO; n],
                request_stalls: HashMap::new(),
                workers: vec![None; n],
                skews_ms: vec![0; n],
                propagate: true,
                deaf: vec![false; n],
                started: Instant::now(),
                events: Mutex::new(Vec::new()),
                running: AtomicUsize::new(0),
            }
        }

        /// `hop`'s local work will take `extra` longer than it expects.
        pub fn with_stall(mut self, hop: usize, extra: Duration) -> Network {
            self.stalls[hop] = extra;
            self
        }

        /// `hop`'s local work will take `extra` longer than it expects, for `request` only.
        pub fn with_request_stall(mut self, request: u64, hop: usize, extra: Duration) -> Network {
            self.request_stalls.insert((request, hop), extra);
            self
        }

        /// `hop` has `workers` workers: at most that many requests do their local work at once.
        pub fn with_workers(mut self, hop: usize, workers: usize) -> Network {
            self.workers[hop] = Some(Arc::new(Semaphore::new(workers)));
            self
        }

        /// `hop`'s wall clock is off by `ms` milliseconds (positive: ahead).
        pub fn with_clock_skew(mut self, hop: usize, ms: i64) -> Network {
            self.skews_ms[hop] = ms;
            self
        }

        /// Nobody forwards `grpc-timeout`.
        pub fn without_propagation(mut self) -> Network {
            self.propagate = false;
            self
        }

        /// `hop` ignores the `grpc-timeout` it receives and falls back to its own timeout: its
        /// callers must still stop waiting for it at their own deadlines.
        pub fn ignoring_deadlines(mut self, hop: usize) -> Network {
            self.deaf[hop] = true;
            self
        }

        /// How many hops the chain has.
        pub fn len(&self) -> usize {
            self.hops.len()
        }

        pub fn is_empty(&self) -> bool {
            self.hops.is_empty()
        }

        pub fn hop(&self, hop: usize) -> &Hop {
            &self.hops[hop]
        }

        /// The hop that `hop` calls, if any.
        pub fn downstream(&self, hop: usize) -> Option<usize> {
            (hop + 1 < self.hops.len()).then_some(hop + 1)
        }

        /// Sends `request` to `hop` and returns its answer. The hop runs as its own task, like a
        /// server in another process: a caller that stops waiting (drops this future on a timeout)
        /// does NOT stop it. Only the deadline the hop was given can stop its work.
        pub fn call(
            self: &Arc<Self>,
            hop: usize,
            mut request: Request,
        ) -> impl Future<Output = Result<Reply, Status>> + Send + 'static {
            if !self.propagate || self.deaf[hop] {
                request.metadata.retain(|(key, _)| key != GRPC_TIMEOUT);
            }
            let id = request
                .get(REQUEST_ID)
                .and_then(|id| id.parse().ok())
                .or_else(|| CURRENT_REQUEST.try_with(|id| *id).ok())
                .unwrap_or(0);
            let net = Arc::clone(self);
            net.running.fetch_add(1, Ordering::SeqCst);
            let task = tokio::spawn(CURRENT_REQUEST.scope(id, async move {
                net.record(Event::Received {
                    request: id,
                    hop,
                    at: net.elapsed(),
                    timeout: request.get(GRPC_TIMEOUT).map(str::to_string),
                });
                let answer = (net.serve)(Arc::clone(&net), hop, request).await;
                net.record(Event::Answered {
                    request: id,
                    hop,
                    at: net.elapsed(),
                    ok: answer.is_ok(),
                });
                net.running.fetch_sub(1, Ordering::SeqCst);
                answer
            }));
            async move {
                task.await
                    .unwrap_or_else(|e| panic!("hop {hop} panicked: {e}"))
            }
        }

        /// `hop`'s local work: its `work`, plus any stall, on one of its workers (waiting for a free
        /// one first, if it has a limited number). If this future is dropped before the end (a
        /// timeout fired), the work, or the wait, stops there; cut work is logged as such.
        pub async fn work(&self, hop: usize) {
            let request = current_request();
            let _worker = match &self.workers[hop] {
                Some(workers) => Some(workers.acquire().await.expect("never closed")),
                None => None,
            };
            let stall = self.stalls[hop]
                + self
                    .request_stalls
                    .get(&(request, hop))
                    .copied()
                    .unwrap_or_default();
            self.busy(hop, self.hops[hop].work + stall).await
        }

        /// Building and sending `hop`'s reply once downstream has answered: its `reply` time.
        pub async fn build_reply(&self, hop: usize) {
            self.busy(hop, self.hops[hop].reply).await
        }

        /// What `hop`'s machine believes the time of day is (a Unix time): true time plus its clock
        /// error. Good for log lines; useless for deadlines, as the lab shows.
        pub fn wall_clock(&self, hop: usize) -> Duration {
            let true_time = Duration::from_secs(1_700_000_000) + self.elapsed();
            let skew = Duration::from_millis(self.skews_ms[hop].unsigned_abs());
            if self.skews_ms[hop] >= 0 {
                true_time + skew
            } else {
                true_time - skew
            }
        }

        /// The grpc-timeout each hop received, in hop order (`None`: never called; `Some(None)`:
        /// called without one). The last request each hop received, if several.
        pub fn received(&self) -> Vec<Option<Option<String>>> {
            let mut seen = vec![None; self.hops.len()];
            for event in self.events() {
                if let Event::Received { hop, timeout, .. } = event {
                    seen[hop] = Some(timeout);
                }
            }
            seen
        }

        /// Every stretch of work: (hop, from ms, to ms, finished).
        pub fn work_log(&self) -> Vec<(usize, u128, u128, bool)> {
            self.events()
                .into_iter()
                .filter_map(|event| match event {
                    Event::Worked {
                        hop,
                        from,
                        to,
                        finished,
                        ..
                    } => Some((hop, from.as_millis(), to.as_millis(), finished)),
                    _ => None,
                })
                .collect()
        }

        /// Everything that happened so far.
        pub fn events(&self) -> Vec<Event> {
            self.events.lock().expect("not poisoned").clone()
        }

        /// Waits until no hop is working any more (abandoned work included).
        pub async fn settle(&self) {
            while self.running.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }

        /// Time since the network was created.
        pub fn elapsed(&self) -> Duration {
            self.started.elapsed()
        }

        fn record(&self, event: Event) {
            self.events.lock().expect("not poisoned").push(event);
        }

        async fn busy(&self, hop: usize, length: Duration) {
            /// Logs the work when it ends, also when it is dropped half-way.
            struct Busy<'a> {
                net: &'a Network,
                request: u64,
                hop: usize,
                from: Duration,
                finished: bool,
            }
            impl Drop for Busy<'_> {
                fn drop(&mut self) {
                    self.net.record(Event::Worked {
                        request: self.request,
                        hop: self.hop,
                        from: self.from,
                        to: self.net.elapsed(),
                        finished: self.finished,
                    });
                }
            }
            let mut busy = Busy {
                net: self,
                request: current_request(),
                hop,
                from: self.elapsed(),
                finished: false,
            };
            tokio::time::sleep(length).await;
            busy.finished = true;
        }
    }

    /// The id of the request the current hop task serves (0 outside of one).
    pub fn current_request() -> u64 {
        CURRENT_REQUEST.try_with(|id| *id).unwrap_or(0)
    }

    // ---- Lab --------------------------------------------------------------------------------------

    /// The lab's knobs (the exercise's constants) and the learner's code it runs.
    pub struct Knobs {
        /// The client's budgets to try, in ms.
        pub client_budgets_ms: Vec<u64>,
        /// The hops: (name, local work ms, reply ms).
        pub hops: Vec<(&'static str, u64, u64)>,
        /// The last hop's workers (database connections).
        pub c_workers: usize,
        /// One client request every this long.
        pub arrival_every: Duration,
        /// Each hop's own timeout: its deadline when none is propagated.
        pub hop_timeout: Duration,
        /// Each hop, on each request, stalls with this probability...
        pub stall_probability: f64,
        /// ...for a random time up to this many ms.
        pub stall_max_ms: u64,
        pub requests: usize,
        pub seed: u64,
        pub serve: Serve,
        pub encode: fn(Duration) -> String,
        pub parse: fn(&str) -> Result<Duration, ParseError>,
    }

    #[derive(Default)]
    struct Figures {
        ok: usize,
        /// When each failed request's client learnt it had failed (its own timeout, at the latest).
        time_to_fail: Vec<Duration>,
        /// ms of work at C, and how much of it was for requests that failed.
        c_busy_ms: f64,
        c_wasted_ms: f64,
        /// ms of work, any hop, after the client had given up.
        after_giveup_ms: f64,
    }

    fn chain(k: &Knobs) -> Vec<Hop> {
        k.hops
            .iter()
            .map(|&(name, work, reply)| Hop {
                name,
                timeout: k.hop_timeout,
                work: Duration::from_millis(work),
                reply: Duration::from_millis(reply),
            })
            .collect()
    }

    /// `stalls[i][hop]`: how long request `i + 1` stalls at `hop`.
    async fn run_one(
        k: &Knobs,
        budget: Duration,
        propagate: bool,
        stalls: &[Vec<Duration>],
    ) -> Figures {
        let c = k.hops.len() - 1;
        let mut net = Network::new(chain(k), k.serve).with_workers(c, k.c_workers);
        for (i, request_stalls) in stalls.iter().enumerate() {
            for (hop, &stall) in request_stalls.iter().enumerate() {
                net = net.with_request_stall(i as u64 + 1, hop, stall);
            }
        }
        if !propagate {
            net = net.without_propagation();
        }
        let net = Arc::new(net);
        let every = k.arrival_every;
        let arrival = move |id: u64| every * (id - 1) as u32;
        let start = Instant::now();
        let mut clients = tokio::task::JoinSet::new();
        let encode = k.encode;
        for id in 1..=k.requests as u64 {
            let net = Arc::clone(&net);
            clients.spawn(async move {
                tokio::time::sleep_until(start + arrival(id)).await;
                let request = Request::new()
                    .with(REQUEST_ID, &id.to_string())
                    .with(GRPC_TIMEOUT, &encode(budget));
                let sent = Instant::now();
                let answer = tokio::time::timeout(budget, net.call(0, request)).await;
                (id, matches!(answer, Ok(Ok(_))), sent.elapsed())
            });
        }
        let outcomes = clients.join_all().await;
        net.settle().await;

        let mut figures = Figures::default();
        let mut succeeded = vec![false; k.requests + 1];
        for (id, ok, took) in outcomes {
            succeeded[id as usize] = ok;
            if ok {
                figures.ok += 1;
            } else {
                figures.time_to_fail.push(took);
            }
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        for event in net.events() {
            if let Event::Worked {
                request,
                hop,
                from,
                to,
                ..
            } = event
            {
                let gave_up = arrival(request) + budget;
                figures.after_giveup_ms += ms(to.saturating_sub(from.max(gave_up)));
                if hop == c {
                    figures.c_busy_ms += ms(to - from);
                    if !succeeded[request as usize] {
                        figures.c_wasted_ms += ms(to - from);
                    }
                }
            }
        }
        figures
    }

    /// Runs the lab: for each client budget, the same seeded requests and stalls through the chain
    /// with fixed per-hop timeouts and with propagated deadlines; then the clock-skew table.
    pub fn run(k: &Knobs) {
        let runtime = crate::lab::simulated_runtime();
        let mut rng = seeded_rng(k.seed);
        let stalls: Vec<Vec<Duration>> = (0..k.requests)
            .map(|_| {
                (0..k.hops.len())
                    .map(|_| {
                        if rng.random_bool(k.stall_probability) {
                            Duration::from_millis(rng.random_range(1..=k.stall_max_ms))
                        } else {
                            Duration::ZERO
                        }
                    })
                    .collect()
            })
            .collect();
        let needed: u64 = k.hops.iter().map(|(_, work, reply)| work + reply).sum();
        println!(
            "Chain A -> B -> C, work + reply per hop: {} ({needed} ms end to end). C has {} \
             workers. A request every {:?}, {} per row; each hop stalls on {:.0}% of requests (up to \
             {} ms). Hop timeout {:?}.\n",
            k.hops
                .iter()
                .map(|(n, w, r)| format!("{n} {w}+{r} ms"))
                .collect::<Vec<_>>()
                .join(", "),
            k.c_workers,
            k.arrival_every,
            k.requests,
            k.stall_probability * 100.0,
            k.stall_max_ms,
            k.hop_timeout,
        );
        let mut table = Table::new(&[
            "budget",
            "deadlines",
            "success",
            "failures: p50 time to fail",
            "C's work spent on failures",
            "work after give-up/req",
        ]);
        let mut chart = Vec::new();
        runtime.block_on(async {
            for &budget_ms in &k.client_budgets_ms {
                let budget = Duration::from_millis(budget_ms);
                for (mode, propagate) in [("fixed per hop", false), ("propagated", true)] {
                    let mut f = run_one(k, budget, propagate, &stalls).await;
                    f.time_to_fail.sort();
                    let p50 = match f
                        .time_to_fail
                        .get(f.time_to_fail.len().saturating_sub(1) / 2)
                    {
                        Some(d) => format!("{} ms", d.as_millis()),
                        None => "-".to_string(),
                    };
                    table.row(&[
                        format!("{budget_ms} ms"),
                        mode.to_string(),
                        percent(f.ok as u64, k.requests as u64),
                        p50,
                        percent(f.c_wasted_ms as u64, f.c_busy_ms as u64),
                        format!("{:.1} ms", f.after_giveup_ms / k.requests as f64),
                    ]);
                    chart.push((
                        format!("{budget_ms:>3} ms {mode:>13}"),
                        (f.ok as f64 * 1000.0 / k.requests as f64).round() / 10.0,
                    ));
                }
            }
        });
        table.print();
        println!("\nsuccess rate (%)\n{}", bar_chart(&chart, 40));

        // Why the header carries the time LEFT, not the instant: the hops' clocks disagree.
        let budget = Duration::from_millis(200);
        let skews_ms: [(&str, i64); 3] = [("A", 0), ("B", -80), ("C", 120)];
        println!(
            "\nWhy remaining time and not a timestamp. A's deadline is {} ms away. Sent as an \
             absolute time, or as grpc-timeout \"{}\", each hop would read (ignoring transit):\n",
            budget.as_millis(),
            (k.encode)(budget)
        );
        let mut skew = Table::new(&[
            "hop",
            "clock error",
            "budget from a timestamp",
            "budget from grpc-timeout",
        ]);
        for (name, error) in skews_ms {
            // A hop reading "deadline at T" computes T minus ITS now, which is off by `error`.
            let from_timestamp = budget.as_millis() as i64 - error;
            let from_header = (k.parse)(&(k.encode)(budget)).expect("our own encoding");
            skew.row(&[
                name.to_string(),
                format!("{error:+} ms"),
                format!("{from_timestamp} ms"),
                format!("{} ms", from_header.as_millis()),
            ]);
        }
        skew.print();
        println!(
            "\nA clock behind works past the real deadline; a clock ahead gives up early. Time \
             elapsed on one machine's monotonic clock is immune to both."
        );
    }
}

/// The `timeouts` lab: real HTTP backends on localhost (healthy, slow with a long tail, hung),
/// called without a timeout and through the learner's `with_timeout`; then 3-step requests with a
/// full timeout per step vs one budget for the whole request.
pub mod timeouts {
    use std::future::Future;
    use std::io;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use rand::RngExt;
    use tokio::time::Instant;

    use crate::backend::{self, Backend, Behaviour};
    use crate::lab::{Table, bar_chart, nearest_rank, percent, whole_millis};
    use crate::workload::seeded_rng;

    /// How a call ended, as the lab counts it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Verdict {
        Ok,
        TimedOut,
        Failed,
    }

    /// One GET to a backend, not started until first polled.
    pub type Work = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;
    /// A call (or a whole request) in progress, through the learner's code.
    pub type Pending = Pin<Box<dyn Future<Output = Verdict> + Send>>;

    pub struct Knobs {
        /// The caller's timeout (part 1), and the whole request's budget (part 2).
        pub timeout: Duration,
        /// The share of the slow backend's calls that hit its long tail...
        pub slow_fraction: f64,
        /// ...and how long they take: uniform in this range, in ms.
        pub tail_ms: (u64, u64),
        pub healthy_latency: Duration,
        pub calls: usize,
        pub call_every: Duration,
        /// "No timeout" still needs an end, or the lab would never finish against the hung
        /// backend: such calls give up after this much.
        pub safety_limit: Duration,
        /// Part 2: every sub-call to the degraded backend takes this long (uniform, in ms).
        pub degraded_ms: (u64, u64),
        pub sub_calls: Vec<&'static str>,
        pub seed: u64,
        /// `with_timeout(step, limit, work)`, as a verdict.
        pub call: fn(&'static str, Duration, Work) -> Pending,
        /// The sub-calls run in a row inside one budget of the given total, as a verdict.
        pub request: fn(Duration, Vec<(&'static str, Work)>) -> Pending,
    }

    /// Timer and scheduling slack when counting answers that came after the timeout.
    const SLACK: Duration = Duration::from_millis(1);

    /// Counts the calls open right now (each holds a socket and a task) and the peak.
    #[derive(Default)]
    struct Gauge {
        open: AtomicUsize,
        peak: AtomicUsize,
    }

    struct Held(Arc<Gauge>);

    impl Gauge {
        fn enter(self: &Arc<Self>) -> Held {
            let now = self.open.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            Held(Arc::clone(self))
        }
    }

    impl Drop for Held {
        fn drop(&mut self) {
            self.0.open.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Outcome {
        Ok,
        TimedOut,
        /// No timeout, and the call was still waiting at the safety limit.
        Stuck,
        Failed,
    }

    impl From<Verdict> for Outcome {
        fn from(v: Verdict) -> Outcome {
            match v {
                Verdict::Ok => Outcome::Ok,
                Verdict::TimedOut => Outcome::TimedOut,
                Verdict::Failed => Outcome::Failed,
            }
        }
    }

    struct Sample {
        latency: Duration,
        outcome: Outcome,
    }

    /// One GET whose socket is counted by `gauge` for as long as the future lives.
    fn get(addr: SocketAddr, path: String, gauge: &Arc<Gauge>, limit: Duration) -> Work {
        let gauge = Arc::clone(gauge);
        Box::pin(async move {
            // Counted from the first poll (the call starts) to the drop (finished or cancelled).
            let _held = gauge.enter();
            let response = backend::get(addr, &path, limit).await?;
            if response.status == 200 {
                Ok(())
            } else {
                Err(io::Error::other(format!("status {}", response.status)))
            }
        })
    }

    /// The path of one call to the slow backend: usually quick, sometimes in the tail.
    fn slow_path(k: &Knobs, rng: &mut rand::rngs::StdRng) -> String {
        let ms = if rng.random_bool(k.slow_fraction) {
            rng.random_range(k.tail_ms.0..=k.tail_ms.1)
        } else {
            rng.random_range(0..=10)
        };
        format!("/work?ms={ms}")
    }

    /// Part 1: `calls` calls to each backend, with or without the learner's timeout.
    async fn single_calls(
        k: &Knobs,
        backends: &[(&str, SocketAddr)],
        timeout: Option<Duration>,
    ) -> (Vec<Vec<Sample>>, usize) {
        let gauge = Arc::new(Gauge::default());
        let mut rng = seeded_rng(k.seed);
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..k.calls {
            for (b, &(name, addr)) in backends.iter().enumerate() {
                let path = if name.starts_with("slow") {
                    slow_path(k, &mut rng)
                } else {
                    "/work".to_string()
                };
                let work = get(addr, path, &gauge, k.safety_limit);
                let at = start + k.call_every * i as u32;
                let call = k.call;
                tasks.spawn(async move {
                    tokio::time::sleep_until(at).await;
                    let began = Instant::now();
                    let outcome = match timeout {
                        Some(limit) => call("GET", limit, work).await.into(),
                        None => match work.await {
                            Ok(()) => Outcome::Ok,
                            Err(e) if e.kind() == io::ErrorKind::TimedOut => Outcome::Stuck,
                            Err(_) => Outcome::Failed,
                        },
                    };
                    let latency = began.elapsed();
                    (b, Sample { latency, outcome })
                });
            }
        }
        let mut per_backend: Vec<Vec<Sample>> = backends.iter().map(|_| Vec::new()).collect();
        for (b, sample) in tasks.join_all().await {
            per_backend[b].push(sample);
        }
        (per_backend, gauge.peak.load(Ordering::SeqCst))
    }

    /// Part 2: requests of sub-calls in a row, each sub-call with its own full timeout (`budget
    /// = false`) or all of them inside one budget of that timeout.
    async fn multi_step(
        k: &Knobs,
        addr: SocketAddr,
        plan: &[Vec<String>],
        budget: bool,
    ) -> Vec<Sample> {
        let gauge = Arc::new(Gauge::default());
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, paths) in plan.iter().enumerate() {
            let works: Vec<(&'static str, Work)> = k
                .sub_calls
                .iter()
                .zip(paths)
                .map(|(&step, path)| (step, get(addr, path.clone(), &gauge, k.safety_limit)))
                .collect();
            let at = start + k.call_every * i as u32;
            let (call, request, timeout) = (k.call, k.request, k.timeout);
            tasks.spawn(async move {
                tokio::time::sleep_until(at).await;
                let began = Instant::now();
                let verdict = if budget {
                    request(timeout, works).await
                } else {
                    let mut verdict = Verdict::Ok;
                    for (step, work) in works {
                        verdict = call(step, timeout, work).await;
                        if verdict != Verdict::Ok {
                            break;
                        }
                    }
                    verdict
                };
                Sample {
                    latency: began.elapsed(),
                    outcome: verdict.into(),
                }
            });
        }
        tasks.join_all().await
    }

    /// Nearest-rank percentile of the latencies.
    fn pct(samples: &[Sample], p: f64) -> Duration {
        let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
        latencies.sort_unstable();
        nearest_rank(&latencies, p / 100.0).expect("at least one sample")
    }

    fn count(samples: &[Sample], outcome: Outcome) -> usize {
        samples.iter().filter(|s| s.outcome == outcome).count()
    }

    /// Runs both parts and prints their tables.
    pub fn run(k: &Knobs) {
        let runtime = crate::lab::runtime();
        runtime.block_on(async {
            let wall = std::time::Instant::now();
            let healthy = Behaviour::Healthy {
                latency: k.healthy_latency,
            };
            let fleet = [
                Backend::start("healthy", healthy.clone()).await,
                Backend::start("slow (long tail)", healthy).await,
                Backend::start("hung", Behaviour::Hung).await,
            ]
            .map(|b| b.expect("start a backend on 127.0.0.1"));
            let backends: Vec<(&str, SocketAddr)> =
                fleet.iter().map(|b| (b.name(), b.addr())).collect();

            println!(
                "Part 1. {} calls to each of 3 backends on 127.0.0.1, one every {:?}.\n\
                 The slow one answers in 0-10 ms, but {:.0}% of its calls take {}-{} ms; the hung \
                 one never answers.\n",
                k.calls,
                k.call_every,
                k.slow_fraction * 100.0,
                k.tail_ms.0,
                k.tail_ms.1
            );
            let mut table = Table::new(&[
                "backend / caller",
                "ok",
                "timed out",
                "p50",
                "p99",
                "max",
                "caller time stuck",
            ]);
            let mut peaks = Vec::new();
            // Both callers at the same time, against the same backends, with the same calls.
            let (without, with) = tokio::join!(
                single_calls(k, &backends, None),
                single_calls(k, &backends, Some(k.timeout))
            );
            for (label, (per_backend, peak)) in [
                ("no timeout*".to_string(), without),
                (format!("timeout {}", whole_millis(k.timeout)), with),
            ] {
                for ((name, _), samples) in backends.iter().zip(&per_backend) {
                    let timed_out =
                        count(samples, Outcome::TimedOut) + count(samples, Outcome::Stuck);
                    let stuck: Duration = samples.iter().map(|s| s.latency).sum();
                    table.row(&[
                        format!("{name} / {label}"),
                        percent(count(samples, Outcome::Ok) as u64, samples.len() as u64),
                        timed_out.to_string(),
                        whole_millis(pct(samples, 50.0)),
                        whole_millis(pct(samples, 99.0)),
                        whole_millis(pct(samples, 100.0)),
                        format!("{:.1} s", stuck.as_secs_f64()),
                    ]);
                }
                peaks.push((label.to_string(), peak as f64));
            }
            table.print();
            println!(
                "* bounded by a {} safety limit so that the lab ends: the hung backend's calls \
                 would otherwise wait forever.\n",
                whole_millis(k.safety_limit)
            );
            println!(
                "calls open at once at the peak (each holds a socket and a task)\n{}\nWithout a \
                 timeout they pile up for as long as the backend stays hung; with one they stop \
                 growing at about\n(calls per second) x TIMEOUT.\n",
                bar_chart(&peaks, 40)
            );

            // Part 2: the same random plan for both modes: exactly the same slow calls.
            let mut rng = seeded_rng(k.seed + 1);
            let plan: Vec<Vec<String>> = (0..k.calls)
                .map(|_| {
                    k.sub_calls
                        .iter()
                        .map(|_| {
                            let ms = rng.random_range(k.degraded_ms.0..=k.degraded_ms.1);
                            format!("/work?ms={ms}")
                        })
                        .collect()
                })
                .collect();
            let slow = fleet[1].addr();
            println!(
                "Part 2. The slow backend degrades: every call now takes {}-{} ms. {} requests, \
                 each {} sub-calls in a row\n({}). The request's own caller gives up after {}.\n",
                k.degraded_ms.0,
                k.degraded_ms.1,
                k.calls,
                k.sub_calls.len(),
                k.sub_calls.join(", "),
                whole_millis(k.timeout)
            );
            let mut table = Table::new(&[
                "timeouts",
                "ok in time",
                "ok too late",
                "timed out",
                "p50",
                "p99",
                "max",
                "caller time stuck",
            ]);
            let (per_step, budget) = tokio::join!(
                multi_step(k, slow, &plan, false),
                multi_step(k, slow, &plan, true)
            );
            for (label, samples) in [
                (
                    format!("{} per sub-call", whole_millis(k.timeout)),
                    per_step,
                ),
                (format!("one budget of {}", whole_millis(k.timeout)), budget),
            ] {
                // A little slack for the timer and the scheduler: "late" means really late.
                let late = samples
                    .iter()
                    .filter(|s| s.outcome == Outcome::Ok && s.latency > k.timeout + SLACK)
                    .count();
                let stuck: Duration = samples.iter().map(|s| s.latency).sum();
                table.row(&[
                    label,
                    (count(&samples, Outcome::Ok) - late).to_string(),
                    late.to_string(),
                    count(&samples, Outcome::TimedOut).to_string(),
                    whole_millis(pct(&samples, 50.0)),
                    whole_millis(pct(&samples, 99.0)),
                    whole_millis(pct(&samples, 100.0)),
                    format!("{:.1} s", stuck.as_secs_f64()),
                ]);
            }
            table.print();
            println!(
                "\n\"ok too late\": answered after the caller had given up ({}): work wasted. \
                 With a full timeout per sub-call\na request may run up to {} x {}; one budget \
                 ends every request by {}.\n(lab wall time {:.1} s)",
                whole_millis(k.timeout),
                k.sub_calls.len(),
                whole_millis(k.timeout),
                whole_millis(k.timeout),
                wall.elapsed().as_secs_f64()
            );
        });
    }
}

/// The `hedged_requests` scaffolding: the policy and answer types, the hedge budget (a token
/// bucket), the race of attempts in flight, and the lab on real backends.
pub mod hedging {
    use std::future::{Future, poll_fn};
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::Poll;
    use std::time::Duration;

    use rand::RngExt;
    use tokio::sync::Semaphore;

    use crate::backend::{self, Backend, Behaviour};
    use crate::lab::{Table, bar_chart, millis, nearest_rank, percent};
    use crate::workload::seeded_rng;

    /// When to hedge.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct HedgePolicy {
        /// How long to wait for an answer before sending the next attempt: around the p95 latency.
        pub hedge_after: Duration,
        /// At most this many extra attempts per request (gRPC's `maxAttempts` minus one).
        pub max_hedges: usize,
    }

    /// The winning answer.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Hedged<T> {
        pub value: T,
        /// The replica that answered (the index given to `call`).
        pub replica: usize,
        /// Attempts sent for this request, the first one included (1: no hedge was sent).
        pub attempts: usize,
    }

    /// How many hedges the client may send, shared by all its requests: a token bucket filled by
    /// requests. Every request adds `percent` hundredths of a token (up to `burst` tokens); a hedge
    /// takes one whole token. So over time at most `percent`% of requests are hedged, whatever the
    /// latency does: a global slowdown cannot double the load. (gRPC calls this retry throttling,
    /// Finagle a RetryBudget.)
    #[derive(Debug)]
    pub struct HedgeBudget {
        percent: u32,
        burst: u32,
        /// Hundredths of a token; starts full.
        tokens: Mutex<u32>,
    }

    impl HedgeBudget {
        /// Hedges for at most `percent`% of requests, with up to `burst` in a row. Starts full.
        pub fn new(percent: u32, burst: u32) -> Self {
            HedgeBudget {
                percent,
                burst,
                tokens: Mutex::new(burst.saturating_mul(100)),
            }
        }

        /// No limit at all (what hedging without a budget amounts to).
        pub fn unlimited() -> Self {
            HedgeBudget::new(100, u32::MAX / 100)
        }

        /// Call once per request (not per attempt): earns `percent` hundredths of a token.
        pub fn on_request(&self) {
            let mut tokens = self.tokens.lock().expect("not poisoned");
            *tokens = tokens
                .saturating_add(self.percent)
                .min(self.burst.saturating_mul(100));
        }

        /// Takes a token for one hedge, if there is one. Ask only when about to send the hedge.
        pub fn try_hedge(&self) -> bool {
            let mut tokens = self.tokens.lock().expect("not poisoned");
            if *tokens >= 100 {
                *tokens -= 100;
                true
            } else {
                false
            }
        }
    }

    /// The attempts in flight, raced against each other (what `futures::FuturesUnordered` does; the
    /// workbook has no `futures` crate). Dropping it drops, and so cancels, every attempt still in it.
    pub struct InFlight<Fut> {
        attempts: Vec<(usize, Pin<Box<Fut>>)>,
    }

    impl<Fut: Future> InFlight<Fut> {
        pub fn new() -> Self {
            InFlight {
                attempts: Vec::new(),
            }
        }

        /// Adds the attempt sent to `replica`.
        pub fn push(&mut self, replica: usize, attempt: Fut) {
            self.attempts.push((replica, Box::pin(attempt)));
        }

        pub fn len(&self) -> usize {
            self.attempts.len()
        }

        pub fn is_empty(&self) -> bool {
            self.attempts.is_empty()
        }

        /// Waits for the next attempt to finish and removes it: `(replica, its output)`. `None` at
        /// once if nothing is in flight. Cancel-safe: usable as a `tokio::select!` branch.
        pub async fn next(&mut self) -> Option<(usize, Fut::Output)> {
            if self.attempts.is_empty() {
                return None;
            }
            poll_fn(|cx| {
                for i in 0..self.attempts.len() {
                    if let Poll::Ready(output) = self.attempts[i].1.as_mut().poll(cx) {
                        let (replica, _) = self.attempts.swap_remove(i);
                        return Poll::Ready(Some((replica, output)));
                    }
                }
                Poll::Pending
            })
            .await
        }
    }

    impl<Fut: Future> Default for InFlight<Fut> {
        fn default() -> Self {
            Self::new()
        }
    }

    // ---- Lab --------------------------------------------------------------------------------------

    /// One attempt: the backend that answered, or what went wrong.
    pub type Attempt = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;
    /// `call(i)`: sends the request to replica `i`.
    pub type Call = Box<dyn FnMut(usize) -> Attempt + Send>;
    /// The learner's `hedged`, boxed.
    pub type Hedge = for<'a> fn(
        usize,
        HedgePolicy,
        &'a HedgeBudget,
        Call,
    ) -> Pin<
        Box<dyn Future<Output = Result<Hedged<String>, String>> + Send + 'a>,
    >;

    pub struct Knobs {
        /// Replicas of the service: HTTP backends.
        pub replicas: usize,
        /// A normal attempt: fast_ms plus up to 2 ms of jitter...
        pub fast_ms: u64,
        /// ...but this share of attempts hits the slow path...
        pub slow_fraction: f64,
        /// ...and takes this long.
        pub slow_ms: u64,
        /// Hedge after this percentile of the unhedged latencies (measured in the first run).
        pub hedge_percentile: f64,
        /// The hedge budget: at most this % of requests hedged, up to budget_burst in a row.
        pub budget_percent: u32,
        pub budget_burst: u32,
        /// In the slowdown scenario every attempt takes this much extra (an overloaded fleet).
        pub slowdown_ms: u64,
        pub requests: usize,
        pub in_flight: usize,
        pub call_timeout: Duration,
        pub seed: u64,
        pub hedged: Hedge,
    }

    async fn get(addr: SocketAddr, path: String, timeout: Duration) -> Result<String, String> {
        match backend::get(addr, &path, timeout).await {
            Ok(response) if response.status == 200 => Ok(response.backend.unwrap_or_default()),
            Ok(response) => Err(format!("status {}", response.status)),
            Err(error) => Err(error.to_string()),
        }
    }

    struct RunResult {
        /// Latencies of the requests, sorted.
        latencies: Vec<Duration>,
        failed: usize,
        hedged: usize,
        /// Requests the backends actually served (abandoned losers included).
        served: u64,
    }

    /// Runs the requests; `plan[r][i]` is how long attempt `i` of request `r` takes (ms).
    /// Request r prefers replica r % replicas, then the next ones.
    async fn run_one(
        k: &Knobs,
        fleet: &[Backend],
        plan: &[Vec<u64>],
        policy: HedgePolicy,
        budget: HedgeBudget,
    ) -> RunResult {
        let (replicas, hedged, call_timeout) = (k.replicas, k.hedged, k.call_timeout);
        let addrs: Arc<Vec<SocketAddr>> = Arc::new(fleet.iter().map(Backend::addr).collect());
        let served_before: u64 = fleet.iter().map(Backend::served).sum();
        let budget = Arc::new(budget);
        let gate = Arc::new(Semaphore::new(k.in_flight));
        let mut requests = tokio::task::JoinSet::new();
        for (r, attempt_ms) in plan.iter().cloned().enumerate() {
            let (addrs, budget, gate) =
                (Arc::clone(&addrs), Arc::clone(&budget), Arc::clone(&gate));
            requests.spawn(async move {
                let _permit = gate.acquire_owned().await.expect("never closed");
                let started = std::time::Instant::now();
                let call: Call = Box::new(move |i| {
                    let addr = addrs[(r + i) % replicas];
                    let path = format!("/work?ms={}", attempt_ms[i]);
                    Box::pin(get(addr, path, call_timeout))
                });
                let answer = hedged(replicas, policy, &budget, call).await;
                (started.elapsed(), answer)
            });
        }
        let mut result = RunResult {
            latencies: Vec::new(),
            failed: 0,
            hedged: 0,
            served: 0,
        };
        for (latency, answer) in requests.join_all().await {
            result.latencies.push(latency);
            match answer {
                Ok(answer) => result.hedged += usize::from(answer.attempts > 1),
                Err(_) => result.failed += 1,
            }
        }
        result.latencies.sort();
        // The losers were cancelled on our side, but a backend does not notice a closed connection
        // until it writes its answer: wait for it, then count what the fleet really did.
        while fleet.iter().any(|b| b.in_flight() > 0) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        result.served = fleet.iter().map(Backend::served).sum::<u64>() - served_before;
        result
    }

    /// Nearest-rank percentile (p from 0 to 100) of sorted latencies.
    fn pct(sorted: &[Duration], p: f64) -> Duration {
        nearest_rank(sorted, p / 100.0).expect("at least one request")
    }

    /// Runs the lab: no hedging, hedging at the measured percentile, hedging at once, then a global
    /// slowdown with and without the budget; and one request while a backend fails.
    pub fn run(k: &Knobs) {
        let runtime = crate::lab::runtime();
        let mut rng = seeded_rng(k.seed);
        let plan: Vec<Vec<u64>> = (0..k.requests)
            .map(|_| {
                (0..k.replicas)
                    .map(|_| {
                        if rng.random_bool(k.slow_fraction) {
                            k.slow_ms
                        } else {
                            k.fast_ms + rng.random_range(0..=2)
                        }
                    })
                    .collect()
            })
            .collect();
        let slowdown: Vec<Vec<u64>> = plan
            .iter()
            .map(|attempts| attempts.iter().map(|ms| ms + k.slowdown_ms).collect())
            .collect();
        runtime.block_on(async {
            let fleet = backend::start_fleet(k.replicas, Duration::ZERO)
                .await
                .expect("start the backends on 127.0.0.1");
            println!(
                "{} HTTP backends on 127.0.0.1. Each attempt takes {}-{} ms, or {} ms on {:.0}% of \
                 attempts. {} requests, {} in flight. Hedge budget: {}% of requests (burst {}).\n",
                k.replicas,
                k.fast_ms,
                k.fast_ms + 2,
                k.slow_ms,
                k.slow_fraction * 100.0,
                k.requests,
                k.in_flight,
                k.budget_percent,
                k.budget_burst,
            );
            let never = HedgePolicy {
                hedge_after: Duration::from_secs(3600),
                max_hedges: 0,
            };
            let baseline = run_one(k, &fleet, &plan, never, HedgeBudget::unlimited()).await;
            let p_hedge = pct(&baseline.latencies, k.hedge_percentile);
            let at_p = HedgePolicy {
                hedge_after: p_hedge,
                max_hedges: 1,
            };
            let at_zero = HedgePolicy {
                hedge_after: Duration::ZERO,
                max_hedges: 1,
            };
            let budget = || HedgeBudget::new(k.budget_percent, k.budget_burst);
            let runs = [
                ("normal", "no hedging".to_string(), baseline),
                (
                    "normal",
                    format!("hedge at p{} ({})", k.hedge_percentile, millis(p_hedge)),
                    run_one(k, &fleet, &plan, at_p, budget()).await,
                ),
                (
                    "normal",
                    "hedge at 0 ms".to_string(),
                    run_one(k, &fleet, &plan, at_zero, HedgeBudget::unlimited()).await,
                ),
                (
                    "slowdown",
                    "no hedging".to_string(),
                    run_one(k, &fleet, &slowdown, never, HedgeBudget::unlimited()).await,
                ),
                (
                    "slowdown",
                    format!("hedge at {}, no budget", millis(p_hedge)),
                    run_one(k, &fleet, &slowdown, at_p, HedgeBudget::unlimited()).await,
                ),
                (
                    "slowdown",
                    format!("hedge at {}, budget", millis(p_hedge)),
                    run_one(k, &fleet, &slowdown, at_p, budget()).await,
                ),
            ];
            let mut table = Table::new(&[
                "fleet",
                "strategy",
                "p50",
                "p95",
                "p99",
                "max",
                "hedged",
                "backend requests",
                "extra load",
                "failed",
            ]);
            let mut chart = Vec::new();
            for (fleet_state, strategy, r) in &runs {
                let extra = r.served.saturating_sub((k.requests - r.failed) as u64);
                table.row(&[
                    fleet_state.to_string(),
                    strategy.clone(),
                    millis(pct(&r.latencies, 50.0)),
                    millis(pct(&r.latencies, 95.0)),
                    millis(pct(&r.latencies, 99.0)),
                    millis(pct(&r.latencies, 100.0)),
                    percent(r.hedged as u64, k.requests as u64),
                    r.served.to_string(),
                    format!("+{}", percent(extra, k.requests as u64)),
                    r.failed.to_string(),
                ]);
                let p99 = pct(&r.latencies, 99.0).as_secs_f64() * 1000.0;
                chart.push((
                    format!("{fleet_state:>8}: {strategy}"),
                    (p99 * 10.0).round() / 10.0,
                ));
            }
            table.print();
            println!("\np99 latency (ms)\n{}", bar_chart(&chart, 40));
            println!(
                "\nhedged: requests that sent a hedge. extra load: what the backends served beyond one \
                 answer per request. The client drops each loser at once, but a backend that has \
                 already read the request finishes the work anyway (only a hedge dropped before it \
                 arrived is free).\nIn the slowdown every request is slower than the hedge delay: \
                 without a budget the load doubles, which on a fleet slow BECAUSE it is overloaded \
                 makes things worse; the budget holds it to about {}%.",
                k.budget_percent
            );
            // Keep the fleet alive until here; a failing backend shows what a hedge does on errors.
            fleet[0].set_behaviour(Behaviour::Failing {
                latency: Duration::ZERO,
            });
            let addrs: Vec<SocketAddr> = fleet.iter().map(Backend::addr).collect();
            let started = std::time::Instant::now();
            let call_timeout = k.call_timeout;
            let call: Call = Box::new(move |i| Box::pin(get(addrs[i], "/work?ms=5".into(), call_timeout)));
            let answer = (k.hedged)(k.replicas, at_p, &budget(), call).await;
            println!(
                "\nbackend-0 now answers 503: one request -> {:?} in {} (the 503 triggers the hedge \
                 at once, without waiting {}).",
                answer.map(|a| (a.value, a.attempts)),
                millis(started.elapsed()),
                millis(p_hedge),
            );
        });
    }
}

/// The `bulkhead` scaffolding: its plain types and the lab (a service with a fixed pool of
/// workers calling a fast and a slow backend over real sockets).
pub mod bulkheads {
    use std::fmt;
    use std::future::Future;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use rand::RngExt;
    use tokio::sync::Semaphore;

    use crate::backend::{self, Backend, Behaviour};
    use crate::lab::{Table, bar_chart, latency, millis, nearest_rank, percent};
    use crate::workload::seeded_rng;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Limits {
        /// Calls allowed to run at the same time (at least 1).
        pub max_concurrent: usize,
        /// Calls allowed to wait for a slot when all are taken; 0 rejects at once when full.
        pub max_waiting: usize,
    }

    /// The bulkhead was full (every slot taken, and the queue too): the call was not run.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Rejected;

    impl fmt::Display for Rejected {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "bulkhead full: call rejected")
        }
    }

    impl std::error::Error for Rejected {}

    /// What a dashboard shows for one bulkhead.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Stats {
        /// Calls running right now.
        pub in_flight: usize,
        /// Calls waiting for a slot right now.
        pub waiting: usize,
        /// The most calls that ever ran at the same time.
        pub peak_in_flight: usize,
        /// Calls rejected so far.
        pub rejected: u64,
    }

    // ---- Lab --------------------------------------------------------------------------------------

    /// A call to a dependency, as the lab makes it.
    pub type Call<'a> = Pin<Box<dyn Future<Output = Verdict> + Send + 'a>>;

    /// What the lab needs from a set of bulkheads, one per dependency.
    pub trait Guard: Send + Sync + 'static {
        /// Runs `call` through `dependency`'s bulkhead; `None` if it was rejected.
        fn run<'a>(
            &'a self,
            dependency: &'a str,
            call: Call<'a>,
        ) -> Pin<Box<dyn Future<Output = Option<Verdict>> + Send + 'a>>;
        fn stats(&self, dependency: &str) -> Stats;
    }

    pub struct Knobs {
        /// The service's request handlers (a thread pool, a connection pool...).
        pub workers: usize,
        /// Concurrent calls allowed to each dependency, and how many may queue for a slot.
        pub slow_limit: usize,
        pub fast_limit: usize,
        pub queue: usize,
        /// The dependencies' latencies.
        pub fast_ms: u64,
        pub slow_ms: u64,
        /// A request every `arrival_every` during `traffic`; `slow_share` of them need "slow".
        pub arrival_every: Duration,
        pub traffic: Duration,
        pub slow_share: f64,
        /// The client gives up after this (time waiting for a worker included).
        pub request_timeout: Duration,
        pub seed: u64,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Dependency {
        Fast,
        Slow,
    }

    /// How a request ended, as the lab counts it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Verdict {
        Ok,
        /// Turned away by the bulkhead: a fast failure (the service answers with a fallback).
        Rejected,
        /// The client gave up: no worker in time, or the call took too long.
        TimedOut,
        /// The backend answered badly or not at all.
        Failed,
    }

    struct Sample {
        dependency: Dependency,
        verdict: Verdict,
        /// From arrival to answer, as the client sees it (queueing for a worker included).
        latency: Duration,
    }

    /// Calls in flight to one backend right now, and the most there ever were (measured by the lab,
    /// the same way with or without bulkheads).
    #[derive(Default)]
    struct InFlight {
        now: AtomicUsize,
        peak: AtomicUsize,
    }

    async fn call_backend(addr: SocketAddr, in_flight: &InFlight, timeout: Duration) -> Verdict {
        let running = in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
        in_flight.peak.fetch_max(running, Ordering::SeqCst);
        let result = backend::get(addr, "/work", timeout).await;
        in_flight.now.fetch_sub(1, Ordering::SeqCst);
        match result {
            Ok(response) if response.status == 200 => Verdict::Ok,
            _ => Verdict::Failed,
        }
    }

    struct Run {
        samples: Vec<Sample>,
        peak: [usize; 2],
        peak_workers: usize,
        stats: Option<[Stats; 2]>,
    }

    async fn scenario<G: Guard>(k: &Knobs, bulkheads: Option<G>, plan: &[Dependency]) -> Run {
        let fast = Backend::start(
            "fast",
            Behaviour::Healthy {
                latency: Duration::from_millis(k.fast_ms),
            },
        );
        let slow = Backend::start(
            "slow",
            Behaviour::Healthy {
                latency: Duration::from_millis(k.slow_ms),
            },
        );
        let (fast, slow) = tokio::join!(fast, slow);
        let fast = fast.expect("start a backend on 127.0.0.1");
        let slow = slow.expect("start a backend on 127.0.0.1");
        let addrs = [fast.addr(), slow.addr()];
        let bulkheads = bulkheads.map(Arc::new);
        let workers = Arc::new(Semaphore::new(k.workers));
        let busy = Arc::new(InFlight::default());
        let in_flight = Arc::new([InFlight::default(), InFlight::default()]);
        let started = Instant::now();
        let mut requests = tokio::task::JoinSet::new();
        for (i, &dependency) in plan.iter().enumerate() {
            tokio::time::sleep_until((started + k.arrival_every * i as u32).into()).await;
            let (workers, busy, in_flight, bulkheads) = (
                Arc::clone(&workers),
                Arc::clone(&busy),
                Arc::clone(&in_flight),
                bulkheads.clone(),
            );
            let timeout = k.request_timeout;
            requests.spawn(async move {
                let arrived = Instant::now();
                let (index, name) = match dependency {
                    Dependency::Fast => (0, "fast"),
                    Dependency::Slow => (1, "slow"),
                };
                let handle = async {
                    let _worker = workers.acquire().await.expect("never closed");
                    let now = busy.now.fetch_add(1, Ordering::SeqCst) + 1;
                    busy.peak.fetch_max(now, Ordering::SeqCst);
                    let call = call_backend(addrs[index], &in_flight[index], timeout);
                    let verdict = if let Some(bulkheads) = &bulkheads {
                        bulkheads
                            .run(name, Box::pin(call))
                            .await
                            .unwrap_or(Verdict::Rejected)
                    } else {
                        call.await
                    };
                    busy.now.fetch_sub(1, Ordering::SeqCst);
                    verdict
                };
                let verdict = tokio::time::timeout(timeout, handle)
                    .await
                    .unwrap_or(Verdict::TimedOut);
                Sample {
                    dependency,
                    verdict,
                    latency: arrived.elapsed(),
                }
            });
        }
        let samples = requests.join_all().await;
        let stats = bulkheads
            .as_ref()
            .map(|b| [b.stats("fast"), b.stats("slow")]);
        Run {
            samples,
            peak: [
                in_flight[0].peak.load(Ordering::SeqCst),
                in_flight[1].peak.load(Ordering::SeqCst),
            ],
            peak_workers: busy.peak.load(Ordering::SeqCst),
            stats,
        }
    }

    /// Runs the same traffic twice, side by side: without bulkheads, and through `make(fast
    /// limits, slow limits)`.
    pub fn run<G: Guard>(k: &Knobs, make: impl Fn(Limits, Limits) -> G) {
        let runtime = crate::lab::runtime();
        let mut rng = seeded_rng(k.seed);
        let requests = (k.traffic.as_nanos() / k.arrival_every.as_nanos()) as usize;
        let limits = |max_concurrent| Limits {
            max_concurrent,
            max_waiting: k.queue,
        };
        let guarded = make(limits(k.fast_limit), limits(k.slow_limit));
        let plan: Vec<Dependency> = (0..requests)
            .map(|_| {
                if rng.random_bool(k.slow_share) {
                    Dependency::Slow
                } else {
                    Dependency::Fast
                }
            })
            .collect();
        runtime.block_on(async {
            println!(
                "A service with {} workers gets a request every {:?} for {}; {:.0}% of them call \
                 \"slow\" ({} ms), the rest \"fast\" ({} ms).\nBulkheads: slow {}, fast {} concurrent \
                 calls, queue {}. Clients give up after {}.\n",
                k.workers,
                k.arrival_every,
                millis(k.traffic),
                k.slow_share * 100.0,
                k.slow_ms,
                k.fast_ms,
                k.slow_limit,
                k.fast_limit,
                k.queue,
                millis(k.request_timeout),
            );
            let (plain, guarded) = tokio::join!(
                scenario::<G>(k, None, &plan),
                scenario(k, Some(guarded), &plan)
            );
            let mut table = Table::new(&[
                "run / dependency",
                "requests",
                "ok",
                "rejected",
                "timed out",
                "failed",
                "p50",
                "p99",
                "peak calls in flight",
            ]);
            let mut chart = Vec::new();
            for (name, run) in [("no bulkheads", &plain), ("bulkheads", &guarded)] {
                for (index, dependency) in [(0, Dependency::Fast), (1, Dependency::Slow)] {
                    let mine: Vec<&Sample> = run
                        .samples
                        .iter()
                        .filter(|s| s.dependency == dependency)
                        .collect();
                    let count = |v: Verdict| mine.iter().filter(|s| s.verdict == v).count();
                    let mut latencies: Vec<Duration> = mine.iter().map(|s| s.latency).collect();
                    latencies.sort_unstable();
                    let quantile = |q| nearest_rank(&latencies, q).unwrap_or_default();
                    let (p50, p99) = (quantile(0.5), quantile(0.99));
                    table.row(&[
                        format!("{name} / {dependency:?}").to_lowercase(),
                        mine.len().to_string(),
                        format!(
                            "{} ({})",
                            count(Verdict::Ok),
                            percent(count(Verdict::Ok) as u64, mine.len() as u64)
                        ),
                        count(Verdict::Rejected).to_string(),
                        count(Verdict::TimedOut).to_string(),
                        count(Verdict::Failed).to_string(),
                        latency(p50),
                        latency(p99),
                        run.peak[index].to_string(),
                    ]);
                    if dependency == Dependency::Fast {
                        let in_ms = |d: Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
                        chart.push((format!("{name}: p50"), in_ms(p50)));
                        chart.push((format!("{name}: p99"), in_ms(p99)));
                    }
                }
            }
            table.print();
            println!(
                "\npeak busy workers: {} without bulkheads, {} with (of {})",
                plain.peak_workers, guarded.peak_workers, k.workers
            );
            if let Some([fast, slow]) = guarded.stats {
                println!("your bulkheads' stats: fast {fast:?}\n                       slow {slow:?}");
            }
            println!(
                "\nlatency of the requests to \"fast\" (ms), as their clients see it\n{}",
                bar_chart(&chart, 40)
            );
            println!(
                "\nWithout bulkheads every call to \"slow\" gets through, slowly, and holds a worker \
                 while it does:\nthe requests to \"fast\" wait in line behind them. With bulkheads, \
                 \"slow\" serves what its SLOW_LIMIT\nslots can and turns the rest away in \
                 microseconds (the service answers with a fallback),\nand \"fast\" never notices."
            );
        });
    }
}

/// The `circuit_breaker` scaffolding: its plain types and the lab (two clients, one behind the
/// learner's breaker, against backends that go down and come back).
pub mod breakers {
    use std::io;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use crate::backend::{self, Backend, Behaviour};
    use crate::lab::{Table, bar_chart, latency, millis, percent, quantile};

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct BreakerConfig {
        /// Consecutive failures, while closed, that trip the breaker open (at least 1).
        pub failure_threshold: u32,
        /// How long the breaker stays open, counted from the moment it opened.
        pub open_for: Duration,
        /// Trial calls admitted while half-open (at least 1). All of them must succeed to close.
        pub trial_calls: u32,
    }

    /// What the outside world sees (dashboards, metrics, tests).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum State {
        Closed,
        Open,
        HalfOpen,
    }

    /// How an admitted call went, as the caller judges it. A `404 Not Found` or a `400` caused by
    /// the caller's own input is a *success* for the breaker: the dependency is up and answering.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Outcome {
        Success,
        Failure,
    }

    /// Why `try_acquire` turned a call away. The dependency was not called.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Rejected {
        /// The breaker is open: a trial call will be admitted in `retry_in`.
        Open { retry_in: Duration },
        /// Half-open, and every trial call has been handed out already: wait for their verdict.
        TrialsInFlight,
    }

    // ---- Lab --------------------------------------------------------------------------------------

    /// What the lab needs from a breaker (implemented by the exercise for its `CircuitBreaker`).
    pub trait Breaker: Send + 'static {
        type Permit: Send;
        /// A permit, or `None` if the call is rejected.
        fn admit(&mut self) -> Option<Self::Permit>;
        fn report(&mut self, permit: Self::Permit, outcome: Outcome);
        /// Every state change so far: (time since the breaker was made, new state).
        fn state_changes(&self) -> Vec<(Duration, State)>;
    }

    pub struct Knobs {
        pub config: BreakerConfig,
        /// When the outage starts and how long it lasts.
        pub outage_start: Duration,
        pub outage: Duration,
        /// How the backend misbehaves during the outage.
        pub outage_behaviour: Behaviour,
        /// The whole run.
        pub run: Duration,
        /// A request every this long, from each client.
        pub request_every: Duration,
        /// The client's timeout on one call.
        pub call_timeout: Duration,
        pub backend_latency: Duration,
        /// Width of one bar of the timeline.
        pub bar: Duration,
    }

    struct Sample {
        sent_at: Duration,
        /// The call reached the backend (it was not rejected by the breaker).
        reached: bool,
        ok: bool,
        latency: Duration,
    }

    /// One call, through the breaker if there is one. The breaker lock is held only for the
    /// bookkeeping, never across the network call.
    async fn call<B: Breaker>(
        addr: SocketAddr,
        breaker: Option<&Mutex<B>>,
        timeout: Duration,
    ) -> (bool, bool) {
        let permit = match breaker {
            Some(breaker) => match breaker.lock().expect("not poisoned").admit() {
                Some(permit) => Some(permit),
                None => return (false, false), // fast fail: the backend is not called
            },
            None => None,
        };
        let result: io::Result<backend::Response> = backend::get(addr, "/work", timeout).await;
        let ok = matches!(&result, Ok(r) if r.status == 200);
        if let (Some(breaker), Some(permit)) = (breaker, permit) {
            let outcome = if ok {
                Outcome::Success
            } else {
                Outcome::Failure
            };
            breaker
                .lock()
                .expect("not poisoned")
                .report(permit, outcome);
        }
        (true, ok)
    }

    struct Run {
        samples: Vec<Sample>,
        transitions: Vec<(Duration, State)>,
    }

    async fn scenario<B: Breaker>(k: &Knobs, breaker: Option<B>) -> Run {
        let backend = Backend::start(
            "dependency",
            Behaviour::Healthy {
                latency: k.backend_latency,
            },
        )
        .await
        .expect("start a backend on 127.0.0.1");
        let backend = Arc::new(backend);
        // The breaker's clock starts with the run, so its transition times line up with the lab's.
        let breaker = breaker.map(|b| Arc::new(Mutex::new(b)));
        let started = Instant::now();

        // The outage, on its own schedule.
        let chaos = {
            let backend = Arc::clone(&backend);
            let (start, outage, behaviour, latency) = (
                k.outage_start,
                k.outage,
                k.outage_behaviour.clone(),
                k.backend_latency,
            );
            tokio::spawn(async move {
                tokio::time::sleep_until((started + start).into()).await;
                backend.set_behaviour(behaviour);
                tokio::time::sleep_until((started + start + outage).into()).await;
                backend.set_behaviour(Behaviour::Healthy { latency });
            })
        };

        let mut requests = tokio::task::JoinSet::new();
        let count = (k.run.as_nanos() / k.request_every.as_nanos()) as u32;
        for i in 0..count {
            let sent_at = k.request_every * i;
            tokio::time::sleep_until((started + sent_at).into()).await;
            let (addr, breaker, timeout) = (backend.addr(), breaker.clone(), k.call_timeout);
            requests.spawn(async move {
                let began = Instant::now();
                let (reached, ok) = call(addr, breaker.as_deref(), timeout).await;
                Sample {
                    sent_at,
                    reached,
                    ok,
                    latency: began.elapsed(),
                }
            });
        }
        let mut samples = requests.join_all().await;
        samples.sort_by_key(|s| s.sent_at);
        chaos.await.expect("the chaos task does not panic");
        let transitions = breaker.map_or_else(Vec::new, |b| {
            b.lock().expect("not poisoned").state_changes()
        });
        Run {
            samples,
            transitions,
        }
    }

    /// Runs the two clients side by side (one direct, one through `make(config)`'s breaker, made
    /// when the run starts) and prints the table, the transitions and the timeline.
    pub fn run<B: Breaker>(k: &Knobs, make: impl Fn(BreakerConfig) -> B) {
        let runtime = crate::lab::runtime();
        runtime.block_on(async {
            let (outage_start, recovery) = (k.outage_start, k.outage_start + k.outage);
            let c = k.config;
            println!(
                "A client sends GET /work every {:?} (timeout {:?}) to a backend on 127.0.0.1.\nThe \
                 backend is {:?} from t={} to t={}, healthy otherwise. Breaker: trip after {} failures \
                 in a row, open for {:?}, {} trial call(s).\n",
                k.request_every,
                k.call_timeout,
                k.outage_behaviour,
                millis(outage_start),
                millis(recovery),
                c.failure_threshold,
                c.open_for,
                c.trial_calls,
            );
            let (plain, guarded) = tokio::join!(scenario::<B>(k, None), scenario(k, Some(make(c))));

            let mut table = Table::new(&[
                "client",
                "requests",
                "reached backend in outage",
                "fast-failed",
                "failed",
                "outage p50",
                "outage p99",
                "time held by the dead backend",
                "first success after recovery",
            ]);
            for (name, run) in [("no breaker", &plain), ("your breaker", &guarded)] {
                let in_outage = |s: &&Sample| s.sent_at >= outage_start && s.sent_at < recovery;
                let mut outage_latencies: Vec<Duration> = run
                    .samples
                    .iter()
                    .filter(in_outage)
                    .map(|s| s.latency)
                    .collect();
                let first_success = run
                    .samples
                    .iter()
                    .filter(|s| s.ok && s.sent_at + s.latency >= recovery)
                    .map(|s| s.sent_at + s.latency - recovery)
                    .min()
                    .map_or("never".to_string(), |d| format!("+{}", latency(d)));
                let reached_in_outage: Vec<&Sample> = run
                    .samples
                    .iter()
                    .filter(in_outage)
                    .filter(|s| s.reached)
                    .collect();
                // Each call that reached the hung backend held a connection (in a thread-per-request
                // server: a thread) until its timeout.
                let held: Duration = reached_in_outage.iter().map(|s| s.latency).sum();
                table.row(&[
                    name.to_string(),
                    run.samples.len().to_string(),
                    reached_in_outage.len().to_string(),
                    run.samples
                        .iter()
                        .filter(|s| !s.reached)
                        .count()
                        .to_string(),
                    run.samples.iter().filter(|s| !s.ok).count().to_string(),
                    quantile(&mut outage_latencies, 0.5),
                    quantile(&mut outage_latencies, 0.99),
                    format!("{:.1} s", held.as_secs_f64()),
                    first_success,
                ]);
            }
            table.print();

            let failed = |run: &Run| run.samples.iter().filter(|s| !s.ok).count() as u64;
            println!(
                "\nBoth clients fail about as many requests ({} vs {}): the backend is down either \
                 way. The difference is\nwhat failing costs: how long each failure takes, and how \
                 hard the dying backend is hit. The breaker\nfails a few more after the recovery: it \
                 only finds out at its next trial, up to OPEN_FOR later.",
                percent(failed(&plain), plain.samples.len() as u64),
                percent(failed(&guarded), guarded.samples.len() as u64),
            );

            println!("\nyour breaker's transitions:");
            for (at, state) in &guarded.transitions {
                println!("  t={:>10}  {state:?}", millis(*at));
            }

            let bar = k.bar;
            let bars = (k.run.as_nanos() / bar.as_nanos()) as usize;
            let mut reached = vec![0u32; bars];
            for s in guarded.samples.iter().filter(|s| s.reached) {
                reached[((s.sent_at.as_nanos() / bar.as_nanos()) as usize).min(bars - 1)] += 1;
            }
            let chart: Vec<(String, f64)> = reached
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let from = bar * i as u32;
                    let down = from + bar > outage_start && from < recovery;
                    let label = format!("{}{}", millis(from), if down { " (down)" } else { "" });
                    (label, f64::from(n))
                })
                .collect();
            println!(
                "\ncalls that reached the backend per {bar:?}, with your breaker (without: {} per \
                 bar)\n{}",
                bar.as_nanos() / k.request_every.as_nanos(),
                bar_chart(&chart, 40)
            );
        });
    }
}

/// The `retry_backoff` lab: retry strategies against a flaky backend with an outage, then a
/// synchronised burst of clients during a restart, without and with jitter.
pub mod retrying {
    use std::future::Future;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use rand::RngExt;
    use tokio::time::Instant;

    use crate::backend::{self, Backend, Behaviour};
    use crate::lab::{Table, bar_chart, percent, whole_millis};
    use crate::workload::seeded_rng;

    /// Why a call failed, as the backend client sees it (the exercise maps it to its `CallError`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Failure {
        Status(u16),
        TimedOut,
        ConnectionFailed,
    }

    /// One call to the backend, made again on every retry.
    pub type Op =
        Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>> + Send>;

    /// How one request ended.
    #[derive(Debug, Clone, Copy)]
    pub struct Attempted {
        pub succeeded: bool,
        pub out_of_budget: bool,
        /// The total time slept between attempts.
        pub waited: Duration,
    }

    /// The strategies the lab compares (the exercise builds each from its knobs).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Which {
        NoRetries,
        AtOnce,
        NoJitter,
        FullJitter,
        FullJitterAndBudget,
    }

    /// A retry strategy: runs one request's `op` with the learner's `retry` (its own rng seed).
    pub trait Strategy: Send + Sync + 'static {
        fn run(&self, seed: u64, op: Op) -> Pin<Box<dyn Future<Output = Attempted> + Send + '_>>;
    }

    pub struct Knobs {
        pub base: Duration,
        pub cap: Duration,
        pub max_attempts: u32,
        /// Retries allowed per 100 requests, and the retries a client can save up.
        pub budget_percent: u32,
        pub budget_reserve: u32,
        /// The share of time the backend answers 503 outside the outage (patches of flap_every).
        pub failure_rate: f64,
        pub flap_every: Duration,
        pub requests: usize,
        pub request_every: Duration,
        pub outage_from: Duration,
        pub outage_until: Duration,
        /// Part 2: clients sending at the same instant, while the backend restarts for this long.
        pub burst: usize,
        pub burst_restart: Duration,
        /// Width of a slot of part 2's chart.
        pub slot: Duration,
        pub call_timeout: Duration,
        pub seed: u64,
    }

    async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
        let mut out = Vec::new();
        let handles: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
        // Poll them all together: each run has its own backend and clock-driven schedule.
        let mut handles: Vec<Option<Pin<Box<F>>>> = handles.into_iter().map(Some).collect();
        let mut results: Vec<Option<F::Output>> = (0..handles.len()).map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (i, slot) in handles.iter_mut().enumerate() {
                if let Some(f) = slot {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => {
                            results[i] = Some(v);
                            *slot = None;
                        }
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        out.extend(results.into_iter().map(|r| r.expect("every run finished")));
        out
    }

    /// One attempt: when it was sent (time since `start`) and whether it was a retry.
    type Attempt = (Duration, bool);

    /// One call to the backend, logged so the lab can count the load per time slot.
    async fn call(
        addr: SocketAddr,
        start: Instant,
        retry: bool,
        log: Arc<Mutex<Vec<Attempt>>>,
        timeout: Duration,
    ) -> Result<(), Failure> {
        log.lock()
            .expect("not poisoned")
            .push((start.elapsed(), retry));
        match backend::get(addr, "/work", timeout).await {
            Ok(response) if response.status == 200 => Ok(()),
            Ok(response) => Err(Failure::Status(response.status)),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(Failure::TimedOut),
            Err(_) => Err(Failure::ConnectionFailed),
        }
    }

    struct Run {
        /// Per request, in arrival order: the outcome and the request's latency.
        outcomes: Vec<(Attempted, Duration)>,
        attempts: Vec<Attempt>,
    }

    /// Sends `arrivals.len()` requests (the i-th at `arrivals[i]` after start) through `retry`.
    async fn run_one(
        k: &Knobs,
        addr: SocketAddr,
        strategy: Box<dyn Strategy>,
        arrivals: Vec<Duration>,
        start: Instant,
    ) -> Run {
        let log = Arc::new(Mutex::new(Vec::new()));
        let strategy: Arc<dyn Strategy> = Arc::from(strategy);
        let mut tasks = tokio::task::JoinSet::new();
        for (i, at) in arrivals.into_iter().enumerate() {
            let (log, strategy, timeout, seed) = (
                Arc::clone(&log),
                Arc::clone(&strategy),
                k.call_timeout,
                k.seed,
            );
            tasks.spawn(async move {
                tokio::time::sleep_until(start + at).await;
                let began = Instant::now();
                let mut tries = 0;
                let op: Op = Box::new(move || {
                    tries += 1;
                    Box::pin(call(addr, start, tries > 1, Arc::clone(&log), timeout))
                });
                let outcome = strategy.run(seed + i as u64, op).await;
                (i, outcome, began.elapsed())
            });
        }
        // join_all gives completion order: put the outcomes back in the order the requests arrived.
        let mut finished = tasks.join_all().await;
        finished.sort_by_key(|(i, _, _)| *i);
        let outcomes = finished.into_iter().map(|(_, o, l)| (o, l)).collect();
        let attempts = log.lock().expect("not poisoned").clone();
        Run { outcomes, attempts }
    }

    /// Plays the backend's schedule: 503 during the outage and in a share of the flaky patches.
    async fn play_schedule(
        backend: Arc<Backend>,
        schedule: Vec<bool>,
        start: Instant,
        flap_every: Duration,
    ) {
        const LATENCY: Duration = Duration::from_millis(1);
        for (i, failing) in schedule.into_iter().enumerate() {
            tokio::time::sleep_until(start + flap_every * i as u32).await;
            backend.set_behaviour(if failing {
                Behaviour::Failing { latency: LATENCY }
            } else {
                Behaviour::Healthy { latency: LATENCY }
            });
        }
        backend.set_behaviour(Behaviour::Healthy { latency: LATENCY });
    }

    fn in_outage(k: &Knobs, t: Duration) -> bool {
        t >= k.outage_from && t < k.outage_until
    }

    /// Retries sent per slot.
    fn retries_per_slot(attempts: &[Attempt], slots: usize, slot_len: Duration) -> Vec<f64> {
        let mut counts = vec![0.0; slots];
        for (t, _) in attempts.iter().filter(|(_, retry)| *retry) {
            let slot = (t.as_nanos() / slot_len.as_nanos()) as usize;
            if slot < slots {
                counts[slot] += 1.0;
            }
        }
        counts
    }

    /// Runs both parts: four strategies against a flaky backend with an outage, then a synchronised
    /// burst without and with jitter. `make` builds a fresh strategy (and budget) for each run.
    pub fn run(k: &Knobs, make: impl Fn(Which) -> Box<dyn Strategy>) {
        const LATENCY: Duration = Duration::from_millis(1);
        let runtime = crate::lab::runtime();
        runtime.block_on(async {
            let wall = std::time::Instant::now();
            let strategies = [
                ("no retries", Which::NoRetries),
                ("retry at once", Which::AtOnce),
                ("backoff + full jitter", Which::FullJitter),
                ("full jitter + budget", Which::FullJitterAndBudget),
            ];

            // Part 1. The same schedule of flaky patches and outage for every strategy.
            let mut rng = seeded_rng(k.seed);
            let span = k.request_every * k.requests as u32 + k.cap * k.max_attempts;
            let schedule: Vec<bool> = (0..span.as_nanos() / k.flap_every.as_nanos())
                .map(|i| in_outage(k, k.flap_every * i as u32) || rng.random_bool(k.failure_rate))
                .collect();
            let arrivals: Vec<Duration> = (0..k.requests).map(|i| k.request_every * i as u32).collect();
            let in_outage_requests = arrivals.iter().filter(|t| in_outage(k, **t)).count();
            let outage_len = k.outage_until - k.outage_from;
            let start = Instant::now() + Duration::from_millis(20);
            let mut runs = Vec::new();
            let mut backends = Vec::new();
            for (index, &(_, which)) in strategies.iter().enumerate() {
                let backend = Arc::new(
                    Backend::start(
                        &format!("backend-{index}"),
                        Behaviour::Healthy { latency: LATENCY },
                    )
                    .await
                    .expect("start a backend on 127.0.0.1"),
                );
                tokio::spawn(play_schedule(
                    Arc::clone(&backend),
                    schedule.clone(),
                    start,
                    k.flap_every,
                ));
                let (addr, arrivals) = (backend.addr(), arrivals.clone());
                runs.push(run_one(k, addr, make(which), arrivals, start));
                let _ = index;
                backends.push(backend);
            }
            let mut results: Vec<(usize, Run)> = Vec::new();
            for (index, run) in join_all(runs).await.into_iter().enumerate() {
                results.push((index, run));
            }

            println!(
                "Part 1. {} requests, one every {:?}, to a backend on 127.0.0.1 that answers 503 \
                 {:.0}% of the time\nin short patches, and to everything from {} to {} (an outage). \
                 Retries: at most {} attempts, backoff base {}, cap {};\nbudget {}% of requests plus \
                 a reserve of {}.\n",
                k.requests,
                k.request_every,
                k.failure_rate * 100.0,
                whole_millis(k.outage_from),
                whole_millis(k.outage_until),
                k.max_attempts,
                whole_millis(k.base),
                whole_millis(k.cap),
                k.budget_percent,
                k.budget_reserve,
            );
            let mut table = Table::new(&[
                "strategy",
                "load on backend",
                "x requests",
                "x in the outage",
                "ok outside outage",
                "ok in outage",
                "p99 latency",
                "time waiting",
                "out of budget",
            ]);
            for ((name, _), (_, run)) in strategies.iter().zip(&results) {
                let requests = run.outcomes.len() as u64;
                let load = run.attempts.len() as u64;
                let outage_load = run.attempts.iter().filter(|(t, _)| in_outage(k, *t)).count();
                // Requests arrive in order, at a steady pace: outcome i arrived at arrivals[i].
                let ok = |outage: bool| {
                    let matching = run
                        .outcomes
                        .iter()
                        .zip(&arrivals)
                        .filter(|(_, at)| in_outage(k, **at) == outage);
                    let total = matching.clone().count() as u64;
                    let ok = matching
                        .filter(|((o, _), _)| o.succeeded)
                        .count() as u64;
                    percent(ok, total)
                };
                let mut latencies: Vec<Duration> = run.outcomes.iter().map(|(_, l)| *l).collect();
                latencies.sort_unstable();
                let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
                let waited: Duration = run.outcomes.iter().map(|(o, _)| o.waited).sum();
                let out_of_budget = run
                    .outcomes
                    .iter()
                    .filter(|(o, _)| o.out_of_budget)
                    .count();
                table.row(&[
                    name.to_string(),
                    load.to_string(),
                    format!("{:.2}", load as f64 / requests as f64),
                    format!("{:.2}", outage_load as f64 / in_outage_requests as f64),
                    ok(false),
                    ok(true),
                    whole_millis(p99),
                    format!("{:.2} s", waited.as_secs_f64()),
                    out_of_budget.to_string(),
                ]);
            }
            table.print();
            println!(
                "\n\"x in the outage\": attempts that reached the backend during the {} outage, per \
                 request that arrived in it.\nThe budget lets the requests in the outage fail fast \
                 (as without retries) and still retries the flaky\n503s outside it: the backend \
                 sees little more than its normal load when it can least take it.",
                whole_millis(outage_len)
            );

            // Part 2. A synchronised burst: everybody fails at once, during a restart.
            drop(backends);
            println!(
                "\nPart 2. {} clients send a request at the same instant; the backend answers 503 for \
                 the first {} (a restart).\nRetries reaching the backend per {} slot (first tries not \
                 counted):\n",
                k.burst,
                whole_millis(k.burst_restart),
                whole_millis(k.slot)
            );
            let slots = ((k.burst_restart + k.cap).as_nanos() / k.slot.as_nanos()) as usize;
            for (name, which) in [
                ("backoff, no jitter", Which::NoJitter),
                ("backoff + full jitter", Which::FullJitter),
            ] {
                let backend = Arc::new(
                    Backend::start("restarting", Behaviour::Failing { latency: LATENCY })
                        .await
                        .expect("start a backend on 127.0.0.1"),
                );
                let start = Instant::now() + Duration::from_millis(10);
                let restart = Arc::clone(&backend);
                let burst_restart = k.burst_restart;
                tokio::spawn(async move {
                    tokio::time::sleep_until(start + burst_restart).await;
                    restart.set_behaviour(Behaviour::Healthy { latency: LATENCY });
                });
                let run = run_one(
                    k,
                    backend.addr(),
                    make(which),
                    vec![Duration::ZERO; k.burst],
                    start,
                )
                .await;
                let counts = retries_per_slot(&run.attempts, slots, k.slot);
                let failed = run
                    .outcomes
                    .iter()
                    .filter(|(o, _)| !o.succeeded)
                    .count();
                println!(
                    "{name}: {} attempts in all, {failed} requests failed",
                    run.attempts.len()
                );
                let bars: Vec<(String, f64)> = counts
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| (format!("{:>3} ms", k.slot.as_millis() * i as u128), n))
                    .collect();
                println!("{}\n", bar_chart(&bars, 40));
            }
            println!(
                "Without jitter the clients come back together, in waves with idle gaps between them; \
                 full jitter spreads\nthe same retries out. It also waits half as long on average, \
                 so the same MAX_ATTEMPTS covers a shorter\noutage: raise MAX_ATTEMPTS or BASE if \
                 requests fail above.\n(lab wall time {:.1} s)",
                wall.elapsed().as_secs_f64()
            );
        });
    }
}

/// Fakes and helpers the resilience exercises' tests share: dependencies that misbehave on
/// command, and watches on work that must be cancelled.
pub mod testing {
    use std::future::Future;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::sync::Semaphore;
    use tokio::time::Instant;

    /// Runs `body` on a fresh single-threaded runtime with tokio's clock paused (for property
    /// checks that run many async cases inside one `#[test]`).
    pub fn paused(body: impl Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime")
            .block_on(body)
    }

    /// Watches a piece of work: whether it was ever polled (started), whether it ran to the end,
    /// and whether it was dropped (cancelled, or finished and cleaned up).
    #[derive(Default)]
    pub struct Watch {
        started: Arc<AtomicBool>,
        finished: Arc<AtomicBool>,
        dropped: Arc<AtomicBool>,
    }

    struct SetOnDrop(Arc<AtomicBool>);

    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    impl Watch {
        /// `work`, watched.
        pub fn work<F>(&self, work: F) -> impl Future<Output = F::Output> + Send + 'static
        where
            F: Future + Send + 'static,
        {
            // Created outside the async block, so dropping the future unpolled drops it too.
            let guard = SetOnDrop(Arc::clone(&self.dropped));
            let (started, finished) = (Arc::clone(&self.started), Arc::clone(&self.finished));
            async move {
                let _guard = guard;
                started.store(true, Ordering::SeqCst);
                let output = work.await;
                finished.store(true, Ordering::SeqCst);
                output
            }
        }

        pub fn started(&self) -> bool {
            self.started.load(Ordering::SeqCst)
        }

        pub fn finished(&self) -> bool {
            self.finished.load(Ordering::SeqCst)
        }

        pub fn dropped(&self) -> bool {
            self.dropped.load(Ordering::SeqCst)
        }
    }

    /// A fake dependency whose calls run until the test releases them, one by one (first come,
    /// first released). It counts the calls inside it at once, independently of the code under
    /// test, and a call that is cancelled leaves it.
    pub struct Gated {
        started: AtomicUsize,
        running: AtomicUsize,
        peak: AtomicUsize,
        gate: Semaphore,
    }

    /// Counts a call out of `running` however it ends (the test may cancel it).
    struct Leaving<'a>(&'a AtomicUsize);

    impl Drop for Leaving<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl Gated {
        pub fn new() -> Arc<Self> {
            Arc::new(Gated {
                started: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                gate: Semaphore::new(0),
            })
        }

        /// One call: waits to be released, then answers `id`.
        pub async fn call(&self, id: usize) -> usize {
            self.started.fetch_add(1, Ordering::SeqCst);
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            let _leaving = Leaving(&self.running);
            self.gate.acquire().await.expect("never closed").forget();
            id
        }

        /// Lets `n` running calls finish.
        pub fn release(&self, n: usize) {
            self.gate.add_permits(n);
        }

        /// Calls that ever started.
        pub fn started(&self) -> usize {
            self.started.load(Ordering::SeqCst)
        }

        /// Calls inside right now.
        pub fn running(&self) -> usize {
            self.running.load(Ordering::SeqCst)
        }

        /// The most calls that were ever inside at once.
        pub fn peak(&self) -> usize {
            self.peak.load(Ordering::SeqCst)
        }
    }

    /// Fake replicas: replica i answers `script[i]` after its latency. Records every call (which
    /// replica, when) and whether each attempt completed or was dropped half-way.
    #[derive(Clone)]
    pub struct Replicas {
        script: Arc<Vec<(Duration, Result<&'static str, &'static str>)>>,
        calls: Arc<Mutex<Vec<(usize, Duration)>>>,
        completed: Arc<AtomicUsize>,
        cancelled: Arc<AtomicUsize>,
        epoch: Instant,
    }

    /// Counts an attempt as cancelled if it is dropped before it finishes.
    struct Attempt {
        done: bool,
        completed: Arc<AtomicUsize>,
        cancelled: Arc<AtomicUsize>,
    }

    impl Drop for Attempt {
        fn drop(&mut self) {
            let counter = if self.done {
                &self.completed
            } else {
                &self.cancelled
            };
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Replicas {
        pub fn new(script: &[(u64, Result<&'static str, &'static str>)]) -> Self {
            Replicas {
                script: Arc::new(
                    script
                        .iter()
                        .map(|&(l, r)| (Duration::from_millis(l), r))
                        .collect(),
                ),
                calls: Arc::default(),
                completed: Arc::default(),
                cancelled: Arc::default(),
                epoch: Instant::now(),
            }
        }

        pub fn len(&self) -> usize {
            self.script.len()
        }

        pub fn is_empty(&self) -> bool {
            self.script.is_empty()
        }

        /// Attempts that ran to the end.
        pub fn completed(&self) -> usize {
            self.completed.load(Ordering::SeqCst)
        }

        /// Attempts dropped before the end.
        pub fn cancelled(&self) -> usize {
            self.cancelled.load(Ordering::SeqCst)
        }

        /// Sends the request to replica `i`.
        pub fn call(
            &self,
            i: usize,
        ) -> impl Future<Output = Result<&'static str, &'static str>> + Send + 'static {
            self.calls.lock().unwrap().push((i, self.epoch.elapsed()));
            let (latency, answer) = self.script[i];
            let attempt = Attempt {
                done: false,
                completed: Arc::clone(&self.completed),
                cancelled: Arc::clone(&self.cancelled),
            };
            async move {
                let mut attempt = attempt; // the whole guard lives in the future
                // Simulated latency on tokio's paused clock: deterministic, not synchronisation.
                tokio::time::sleep(latency).await;
                attempt.done = true;
                answer
            }
        }

        /// Every call so far: (replica, ms since the test began).
        pub fn calls(&self) -> Vec<(usize, u128)> {
            self.calls
                .lock()
                .unwrap()
                .iter()
                .map(|&(i, at)| (i, at.as_millis()))
                .collect()
        }
    }
}
