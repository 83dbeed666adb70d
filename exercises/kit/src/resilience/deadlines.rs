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

// ---- The grpc-timeout header (the `grpc_timeout` exercise) -----------------------------------
//
// Format (gRPC over HTTP/2, PROTOCOL-HTTP2.md): 1 to 8 ASCII digits, then one unit letter:
//   H hours, M minutes, S seconds, m milliseconds, u microseconds, n nanoseconds.
// "250m" is 250 ms, "1S" one second, "5M" five minutes. Note `S` vs `m`: case matters.

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

/// The `grpc_timeout` lab: each of `timeouts` through the learner's `encode`, read back by the
/// learner's `parse`, with the time lost on the way; beside it, what sending whole milliseconds
/// (a common shortcut) would lose.
pub fn encodings_lab(
    timeouts: &[Duration],
    encode: fn(Duration) -> String,
    parse: fn(&str) -> Result<Duration, ParseError>,
) {
    /// Durations of an hour and more in hours, shorter ones as `Debug` prints them.
    fn human(d: Duration) -> String {
        match d {
            Duration::ZERO => "none".to_string(),
            d if d >= Duration::from_secs(3600) => format!("{:.3} h", d.as_secs_f64() / 3600.0),
            d => format!("{d:?}"),
        }
    }
    let mut table = Table::new(&[
        "budget",
        "grpc-timeout",
        "reads back as",
        "lost",
        "lost in whole ms",
    ]);
    for &timeout in timeouts {
        let encoded = encode(timeout);
        let (back, lost) = match parse(&encoded) {
            Ok(back) if back <= timeout => (human(back), human(timeout - back)),
            Ok(back) => (human(back), "MORE than sent".to_string()),
            Err(e) => (format!("error: {e}"), "-".to_string()),
        };
        let in_ms = Duration::from_millis(timeout.as_millis().min(u128::from(MAX_VALUE)) as u64);
        let row = [human(timeout), encoded, back, lost, human(timeout - in_ms)];
        table.row(&row);
    }
    table.print();
    println!(
        "\nWhole milliseconds lose a sub-millisecond budget entirely (\"0m\": the next hop refuses \
         at once) and cannot say more than 99999999m (27.8 hours) in 8 digits."
    );
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

/// A request as it travels between hops.
///
/// On a real wire the caller's remaining time travels as the `grpc-timeout` header (the
/// `grpc_timeout` exercise); the gRPC library decodes it before the handler runs. This network
/// does the same and hands your handler the `Duration` itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The time the caller has LEFT for this call; `None`: the caller set no deadline.
    pub timeout: Option<Duration>,
    /// The client request this call serves (the lab's log). Calls made while serving a request
    /// inherit its id, like tracing headers.
    id: Option<u64>,
}

impl Request {
    /// A request without a deadline.
    pub fn new() -> Self {
        Self::default()
    }

    /// A request whose caller has `timeout` left.
    pub fn with_timeout(timeout: Duration) -> Self {
        Request {
            timeout: Some(timeout),
            id: None,
        }
    }
}

/// A successful answer: the hops that served it, innermost first (`["C", "B", "A"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub served_by: Vec<&'static str>,
}

/// A failed answer, as a gRPC status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The budget ran out, or could not cover the work: give up, nobody is waiting any more.
    DeadlineExceeded,
}

/// What the network saw, for the tests and the lab. Times are since the network was created;
/// `request` is the id of the client request it was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `hop` received a request with this much time left (`None`: no deadline).
    Received {
        request: u64,
        hop: usize,
        at: Duration,
        timeout: Option<Duration>,
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
    /// `false` strips the deadline from every request, like a proxy or client library that does
    /// not forward `grpc-timeout`: each hop then falls back to its own timeout.
    propagate: bool,
    /// Per hop: `true` if it ignores the deadline it receives (an old server, a proxy that drops
    /// the header) and works on its own timeout instead.
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

    /// Nobody forwards deadlines.
    pub fn without_propagation(mut self) -> Network {
        self.propagate = false;
        self
    }

    /// `hop` ignores the deadline it receives and falls back to its own timeout: its
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
            request.timeout = None;
        }
        let id = request
            .id
            .or_else(|| CURRENT_REQUEST.try_with(|id| *id).ok())
            .unwrap_or(0);
        let net = Arc::clone(self);
        net.running.fetch_add(1, Ordering::SeqCst);
        let task = tokio::spawn(CURRENT_REQUEST.scope(id, async move {
            net.record(Event::Received {
                request: id,
                hop,
                at: net.elapsed(),
                timeout: request.timeout,
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

    /// Sends a request with `budget` (`None`: no deadline) to the first hop, as a client would,
    /// and returns its answer and how long it took, once every hop has finished (abandoned work
    /// included, so `received` and `work_log` are complete).
    pub async fn client_call(
        self: &Arc<Self>,
        budget: Option<Duration>,
    ) -> (Result<Reply, Status>, Duration) {
        let request = Request {
            timeout: budget,
            id: None,
        };
        let started = Instant::now();
        let answer = self.call(0, request).await;
        let took = started.elapsed();
        self.settle().await;
        (answer, took)
    }

    /// The time left each hop received, in hop order (`None`: never called; `Some(None)`: called
    /// without a deadline). The last request each hop received, if several.
    pub fn received(&self) -> Vec<Option<Option<Duration>>> {
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

/// One hop of a scripted chain, in whole ms: what the tests' reference model reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scripted {
    /// The hop's own timeout, local work and reply time (see `Hop`).
    pub timeout: u64,
    pub work: u64,
    pub reply: u64,
    /// Extra, unexpected local work (see `Network::with_stall`).
    pub stall: u64,
    /// It ignores the deadline it receives (see `Network::ignoring_deadlines`).
    pub deaf: bool,
}

impl Scripted {
    /// A random chain of 1 to 3 hops: timeouts 20..=300 ms, work 1..=30, reply 0..=10, a stall
    /// of 1..=80 ms on 30% of hops, 20% of hops deaf.
    pub fn random_chain(rng: &mut impl rand::Rng) -> Vec<Scripted> {
        let n = rng.random_range(1..=3);
        (0..n)
            .map(|_| Scripted {
                timeout: rng.random_range(20..=300),
                work: rng.random_range(1..=30),
                reply: rng.random_range(0..=10),
                stall: if rng.random_bool(0.3) {
                    rng.random_range(1..=80)
                } else {
                    0
                },
                deaf: rng.random_bool(0.2),
            })
            .collect()
    }
}

impl Network {
    /// The chain A -> B -> C (as many as `hops`) scripted by `hops`, each hop running `serve`.
    pub fn scripted(hops: &[Scripted], serve: Serve) -> Network {
        let ms = Duration::from_millis;
        let names = ["A", "B", "C", "D", "E", "F"];
        let chain = hops
            .iter()
            .zip(names)
            .map(|(h, name)| Hop {
                name,
                timeout: ms(h.timeout),
                work: ms(h.work),
                reply: ms(h.reply),
            })
            .collect();
        let mut net = Network::new(chain, serve);
        for (i, h) in hops.iter().enumerate() {
            net = net.with_stall(i, ms(h.stall));
            if h.deaf {
                net = net.ignoring_deadlines(i);
            }
        }
        net
    }
}

/// The id of the request the current hop task serves (0 outside of one).
pub fn current_request() -> u64 {
    CURRENT_REQUEST.try_with(|id| *id).unwrap_or(0)
}

// ---- Lab --------------------------------------------------------------------------------------

/// The lab's knobs: the exercise's constants, and defaults for the rest.
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
}

impl Default for Knobs {
    fn default() -> Knobs {
        Knobs {
            client_budgets_ms: vec![400, 250, 180, 140, 110],
            hops: vec![("A", 10, 5), ("B", 25, 5), ("C", 40, 5)],
            c_workers: 4,
            arrival_every: Duration::from_millis(12),
            hop_timeout: Duration::from_secs(1),
            stall_probability: 0.08,
            stall_max_ms: 300,
            requests: 300,
            seed: 7,
        }
    }
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
    serve: Serve,
    k: &Knobs,
    budget: Duration,
    propagate: bool,
    stalls: &[Vec<Duration>],
) -> Figures {
    let c = k.hops.len() - 1;
    let mut net = Network::new(chain(k), serve).with_workers(c, k.c_workers);
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
    for id in 1..=k.requests as u64 {
        let net = Arc::clone(&net);
        clients.spawn(async move {
            tokio::time::sleep_until(start + arrival(id)).await;
            let request = Request {
                timeout: Some(budget),
                id: Some(id),
            };
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
/// with fixed per-hop timeouts and with propagated deadlines, every hop running `serve`; then the
/// clock-skew table.
pub fn run(serve: Serve, k: &Knobs) {
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
                let mut f = run_one(serve, k, budget, propagate, &stalls).await;
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
         absolute time, or as the time left (grpc-timeout), each hop would read (ignoring \
         transit):\n",
        budget.as_millis(),
    );
    let mut skew = Table::new(&[
        "hop",
        "clock error",
        "budget from a timestamp",
        "budget from time left",
    ]);
    for (name, error) in skews_ms {
        // A hop reading "deadline at T" computes T minus ITS now, which is off by `error`.
        let from_timestamp = budget.as_millis() as i64 - error;
        skew.row(&[
            name.to_string(),
            format!("{error:+} ms"),
            format!("{from_timestamp} ms"),
            format!("{} ms", budget.as_millis()),
        ]);
    }
    skew.print();
    println!(
        "\nA clock behind works past the real deadline; a clock ahead gives up early. Time \
         elapsed on one machine's monotonic clock is immune to both."
    );
}
