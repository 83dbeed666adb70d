// Deadline propagation — pass the time that is LEFT down a call chain, so nobody keeps working for
// a caller that has already given up.
//
// A user request enters service A, which calls B, which calls C. If every hop has its own fixed
// timeout ("1 s per call"), A may give up after 200 ms while B and C go on working for seconds on
// an answer nobody will read: wasted capacity, at the worst moment (an overload is exactly when
// budgets run out). gRPC fixes this by propagating the deadline: the caller sends the time it has
// LEFT in the `grpc-timeout` header ("250m" = 250 ms), and each hop turns it back into a local
// deadline, tightens it with its own timeout if it wants, keeps a little back for building its
// own reply, and sends the rest on. It sends remaining time, not a timestamp, because the clocks
// of two machines disagree (by milliseconds with good NTP, by seconds after a VM pause).
//
// Build:
//   - `Deadline`: `remaining()`, `is_expired()`, `child(reserve)`, `capped(local_timeout)`;
//   - `encode_timeout` / `parse_timeout`: the `grpc-timeout` wire format (below);
//   - `serve`: one hop of the chain. It derives its deadline from the request, refuses at once
//     (DEADLINE_EXCEEDED) when the budget cannot cover its own work, stops its work at the
//     deadline, and calls downstream with the remaining budget, never the original one.
//
// Lab (simulated time: instant and repeatable): clients call A -> B -> C at a steady rate, C
// (a database with C_WORKERS workers) stalls now and then, for each of CLIENT_BUDGETS_MS, with
// grpc-timeout propagated and with fixed per-hop timeouts. Without propagation C's workers serve
// requests whose clients left long ago, its queue grows, and nearly everything times out; with
// it, abandoned requests leave the queue and C's capacity goes to live ones. Turn ARRIVAL_EVERY,
// C_WORKERS, STALL_PROBABILITY and HOPS (work, reply) and watch success and wasted work move.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use sdlings_kit::lab::{Table, bar_chart, percent};
use sdlings_kit::workload::seeded_rng;
use tokio::sync::Semaphore;
use tokio::time::Instant;

// ---- Deadlines -------------------------------------------------------------------------------

/// An absolute instant on THIS machine's monotonic clock (tokio's `Instant`, which tests pause
/// and move by hand). It never leaves the process: on the wire, only the remaining time travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// The deadline `budget` from now.
    pub fn after(budget: Duration) -> Deadline {
        let now = Instant::now();
        // An absurd budget ("99999999H") must not overflow the clock: 30 years is forever here.
        let at = now
            .checked_add(budget)
            .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 24 * 3600));
        Deadline { at }
    }

    /// The instant itself, for `tokio::time::timeout_at` and `sleep_until`.
    pub fn at(&self) -> Instant {
        self.at
    }
}

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
            ParseError::UnknownUnit(c) => write!(f, "grpc-timeout unit {c:?} is not H M S m u n"),
            ParseError::NoDigits => write!(f, "grpc-timeout has no digits"),
            ParseError::NotADigit(c) => write!(f, "grpc-timeout value contains {c:?}"),
            ParseError::TooManyDigits(n) => write!(f, "grpc-timeout has {n} digits (at most 8)"),
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

/// The hops, wired A -> B -> C (hop i calls hop i + 1), plus what the network observed.
pub struct Network {
    hops: Vec<Hop>,
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
    started: Instant,
    events: Mutex<Vec<Event>>,
    running: AtomicUsize,
}

impl Network {
    pub fn new(hops: Vec<Hop>) -> Network {
        let n = hops.len();
        Network {
            hops,
            stalls: vec![Duration::ZERO; n],
            request_stalls: HashMap::new(),
            workers: vec![None; n],
            skews_ms: vec![0; n],
            propagate: true,
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
        if !self.propagate {
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
            let answer = serve(Arc::clone(&net), hop, request).await;
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

    fn elapsed(&self) -> Duration {
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
fn current_request() -> u64 {
    CURRENT_REQUEST.try_with(|id| *id).unwrap_or(0)
}

// ---- Your part -------------------------------------------------------------------------------

impl Deadline {
    /// The time left until the deadline: zero once it has passed (never negative, never panics).
    pub fn remaining(&self) -> Duration {
        todo!("the time left until self.at, or zero")
    }

    /// True from the deadline instant on: no time left means expired.
    pub fn is_expired(&self) -> bool {
        todo!("has the deadline passed?")
    }

    /// The deadline to give a downstream call: `reserve` earlier than this one, keeping that
    /// much back for this hop's own reply. Never later than `self`; already expired if `reserve`
    /// is more than the time left.
    pub fn child(&self, reserve: Duration) -> Deadline {
        todo!("a deadline {reserve:?} earlier than this one")
    }

    /// This deadline tightened by a hop's own timeout: the earlier of `self` and
    /// `local_timeout` from now. A hop may shorten its caller's deadline, never extend it.
    pub fn capped(&self, local_timeout: Duration) -> Deadline {
        todo!("the earlier of this deadline and {local_timeout:?} from now")
    }
}

/// `timeout` in the `grpc-timeout` format. The rules:
/// - in the coarsest unit in which it is a whole number, if that fits in 8 digits:
///   250 ms -> "250m", 2 s -> "2S", 90 s -> "90S", 2 h -> "2H", 7 µs -> "7u";
/// - otherwise in the finest unit in which it fits in 8 digits, rounding DOWN:
///   123 456 789 ns -> "123456u". Never up: the receiver must not get more time than we have;
/// - beyond "99999999H" (11 000 years), "99999999H". Zero may be written in any unit.
pub fn encode_timeout(timeout: Duration) -> String {
    todo!("{timeout:?} as a grpc-timeout value")
}

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits then a unit letter. Checks, in order:
/// empty -> `Empty`; the last character is a digit -> `MissingUnit`; it is not a unit ->
/// `UnknownUnit`; nothing before it -> `NoDigits`; a character before it that is not an ASCII
/// digit -> `NotADigit` (the first one); more than 8 digits -> `TooManyDigits`.
pub fn parse_timeout(value: &str) -> Result<Duration, ParseError> {
    todo!("parse the grpc-timeout value {value:?}")
}

/// Serves one request at `hop` (this is the task `Network::call` runs):
/// 1. Its deadline: the request's `grpc-timeout` if present (a malformed one is
///    `InvalidArgument`), else this hop's own `timeout`; tightened by its own `timeout` anyway.
/// 2. If the time left cannot cover `work + reply`, refuse at once with `DeadlineExceeded`,
///    without doing any work: failing fast is cheaper for everybody than failing late.
/// 3. Do the local work (`net.work(hop)`), stopping at the deadline (`DeadlineExceeded`).
/// 4. With no downstream hop, the reply is `Reply { served_by: vec![] }`. Otherwise call it
///    with a child deadline that keeps `reply` back, sending what is left of it as
///    `grpc-timeout`; if that child deadline has already passed, do not call at all. Stop waiting
///    at the child deadline (`DeadlineExceeded`); pass a downstream error up unchanged.
/// 5. Build the reply (`net.build_reply(hop)`), add this hop's name to `served_by`.
pub async fn serve(net: Arc<Network>, hop: usize, request: Request) -> Result<Reply, Status> {
    todo!("serve {request:?} at hop {hop} of {} hops", net.hops.len())
}

// ---- Lab -------------------------------------------------------------------------------------
// The chain A -> B -> C on tokio's paused clock: simulated milliseconds, instant and repeatable.
// Clients send a request every ARRIVAL_EVERY, each with the same budget, and stop waiting when it
// runs out. C (the database) has C_WORKERS workers: a stalled or abandoned request that keeps
// one busy delays everybody queued behind it. The same requests, with the same stalls, run twice:
// with grpc-timeout propagated, and with it stripped (each hop on its own fixed timeout).

/// The client's budgets to try, in ms.
const CLIENT_BUDGETS_MS: [u64; 5] = [400, 250, 180, 140, 110];
/// The hops: (name, local work ms, reply ms). An API gateway, an order service, a database.
const HOPS: [(&str, u64, u64); 3] = [("A", 10, 5), ("B", 25, 5), ("C", 40, 5)];
/// C's workers (database connections). 4 workers x 40 ms: at most 100 requests/s.
const C_WORKERS: usize = 4;
/// One client request every 12 ms: about 83 requests/s.
const ARRIVAL_EVERY: Duration = Duration::from_millis(12);
/// Each hop's own timeout: its deadline when none is propagated.
const HOP_TIMEOUT: Duration = Duration::from_secs(1);
/// Each hop, on each request, stalls with this probability (a GC pause, a lock, a slow disk)...
const STALL_PROBABILITY: f64 = 0.08;
/// ...for a random time up to this.
const STALL_MAX_MS: u64 = 300;
const REQUESTS: usize = 300;
const SEED: u64 = 7;

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

fn chain() -> Vec<Hop> {
    HOPS.iter()
        .map(|&(name, work, reply)| Hop {
            name,
            timeout: HOP_TIMEOUT,
            work: Duration::from_millis(work),
            reply: Duration::from_millis(reply),
        })
        .collect()
}

/// `stalls[i][hop]`: how long request `i + 1` stalls at `hop`.
async fn run(budget: Duration, propagate: bool, stalls: &[Vec<Duration>]) -> Figures {
    let c = HOPS.len() - 1;
    let mut net = Network::new(chain()).with_workers(c, C_WORKERS);
    for (i, request_stalls) in stalls.iter().enumerate() {
        for (hop, &stall) in request_stalls.iter().enumerate() {
            net = net.with_request_stall(i as u64 + 1, hop, stall);
        }
    }
    if !propagate {
        net = net.without_propagation();
    }
    let net = Arc::new(net);
    let arrival = |id: u64| ARRIVAL_EVERY * (id - 1) as u32;
    let start = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for id in 1..=REQUESTS as u64 {
        let net = Arc::clone(&net);
        clients.spawn(async move {
            tokio::time::sleep_until(start + arrival(id)).await;
            let request = Request::new()
                .with(REQUEST_ID, &id.to_string())
                .with(GRPC_TIMEOUT, &encode_timeout(budget));
            let sent = Instant::now();
            let answer = tokio::time::timeout(budget, net.call(0, request)).await;
            (id, matches!(answer, Ok(Ok(_))), sent.elapsed())
        });
    }
    let outcomes = clients.join_all().await;
    net.settle().await;

    let mut figures = Figures::default();
    let mut succeeded = vec![false; REQUESTS + 1];
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

fn main() {
    let runtime = sdlings_kit::lab::simulated_runtime();
    let mut rng = seeded_rng(SEED);
    let stalls: Vec<Vec<Duration>> = (0..REQUESTS)
        .map(|_| {
            (0..HOPS.len())
                .map(|_| {
                    if rng.random_bool(STALL_PROBABILITY) {
                        Duration::from_millis(rng.random_range(1..=STALL_MAX_MS))
                    } else {
                        Duration::ZERO
                    }
                })
                .collect()
        })
        .collect();
    let needed: u64 = HOPS.iter().map(|(_, work, reply)| work + reply).sum();
    println!(
        "Chain A -> B -> C, work + reply per hop: {} ({needed} ms end to end). C has \
         {C_WORKERS} workers. A request every {ARRIVAL_EVERY:?}, {REQUESTS} per row; each hop \
         stalls on {:.0}% of requests (up to {STALL_MAX_MS} ms). Hop timeout {HOP_TIMEOUT:?}.\n",
        HOPS.iter()
            .map(|(n, w, r)| format!("{n} {w}+{r} ms"))
            .collect::<Vec<_>>()
            .join(", "),
        STALL_PROBABILITY * 100.0,
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
        for &budget_ms in &CLIENT_BUDGETS_MS {
            let budget = Duration::from_millis(budget_ms);
            for (mode, propagate) in [("fixed per hop", false), ("propagated", true)] {
                let mut f = run(budget, propagate, &stalls).await;
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
                    percent(f.ok as u64, REQUESTS as u64),
                    p50,
                    percent(f.c_wasted_ms as u64, f.c_busy_ms as u64),
                    format!("{:.1} ms", f.after_giveup_ms / REQUESTS as f64),
                ]);
                chart.push((
                    format!("{budget_ms:>3} ms {mode:>13}"),
                    (f.ok as f64 * 1000.0 / REQUESTS as f64).round() / 10.0,
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
        encode_timeout(budget)
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
        let from_header = parse_timeout(&encode_timeout(budget)).expect("our own encoding");
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

// ---- Tests -----------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use sdlings_kit::workload::seeded_rng;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A -> B -> C, each: timeout 1 s, work 20 ms, reply 5 ms. 75 ms end to end.
    fn three_hops() -> Vec<Hop> {
        ["A", "B", "C"]
            .into_iter()
            .map(|name| Hop {
                name,
                timeout: Duration::from_secs(1),
                work: ms(20),
                reply: ms(5),
            })
            .collect()
    }

    /// Sends a request to A with the given grpc-timeout (or none), as a client would; returns the
    /// answer and how long it took, after every hop has finished (abandoned work included).
    async fn send(net: &Arc<Network>, timeout: Option<&str>) -> (Result<Reply, Status>, Duration) {
        let request = match timeout {
            Some(value) => Request::new().with(GRPC_TIMEOUT, value),
            None => Request::new(),
        };
        let started = Instant::now();
        let answer = net.call(0, request).await;
        let took = started.elapsed();
        net.settle().await;
        (answer, took)
    }

    /// The grpc-timeout each hop received, in hop order (`None`: never called).
    fn received(net: &Network) -> Vec<Option<Option<String>>> {
        let mut seen = vec![None; net.hops.len()];
        for event in net.events() {
            if let Event::Received { hop, timeout, .. } = event {
                seen[hop] = Some(timeout);
            }
        }
        seen
    }

    fn header(value: &str) -> Option<Option<String>> {
        Some(Some(value.to_string()))
    }

    /// Every stretch of work: (hop, from ms, to ms, finished).
    fn work(net: &Network) -> Vec<(usize, u128, u128, bool)> {
        net.events()
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

    // --- Deadline ---

    #[tokio::test(start_paused = true)]
    async fn remaining_counts_down_with_the_clock_and_stops_at_zero() {
        let deadline = Deadline::after(ms(100));
        assert_eq!(deadline.remaining(), ms(100));
        tokio::time::advance(ms(30)).await;
        assert_eq!(
            deadline.remaining(),
            ms(70),
            "30 ms after a 100 ms deadline was set, 70 ms are left"
        );
        assert!(!deadline.is_expired());
        tokio::time::advance(ms(69)).await;
        assert!(!deadline.is_expired(), "1 ms is still left");
        tokio::time::advance(ms(1)).await;
        assert_eq!(deadline.remaining(), Duration::ZERO);
        assert!(
            deadline.is_expired(),
            "at the deadline instant no time is left: it is expired"
        );
        tokio::time::advance(ms(50)).await;
        assert_eq!(
            deadline.remaining(),
            Duration::ZERO,
            "50 ms past the deadline, remaining is zero (not negative, not a panic)"
        );
        assert!(deadline.is_expired());
    }

    #[tokio::test(start_paused = true)]
    async fn a_child_deadline_keeps_the_reserve_back_and_never_outlives_its_parent() {
        let parent = Deadline::after(ms(100));
        let child = parent.child(ms(30));
        assert_eq!(
            child.remaining(),
            ms(70),
            "a child of a 100 ms deadline that reserves 30 ms for our reply leaves 70 ms"
        );
        assert!(child <= parent, "a child never ends after its parent");
        assert_eq!(parent.child(Duration::ZERO), parent);
        let starved = parent.child(ms(150));
        assert!(
            starved.is_expired(),
            "reserving 150 ms out of 100 leaves nothing: the child is already expired"
        );
        assert_eq!(starved.remaining(), Duration::ZERO);
        assert!(starved <= parent);
        assert_eq!(
            parent.remaining(),
            ms(100),
            "the parent itself is unchanged"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_local_timeout_tightens_a_deadline_but_never_extends_it() {
        let generous = Deadline::after(ms(500));
        assert_eq!(
            generous.capped(ms(100)).remaining(),
            ms(100),
            "the caller allows 500 ms, this hop's own timeout is 100 ms: 100 ms"
        );
        let tight = Deadline::after(ms(50));
        assert_eq!(
            tight.capped(ms(100)).remaining(),
            ms(50),
            "the caller allows 50 ms: a 100 ms local timeout must not extend that"
        );
        let deadline = Deadline::after(ms(100));
        tokio::time::advance(ms(60)).await;
        assert_eq!(
            deadline.capped(ms(100)).remaining(),
            ms(40),
            "60 ms into a 100 ms deadline, a 100 ms cap counted from now changes nothing"
        );
    }

    // --- The grpc-timeout wire format ---

    #[test]
    fn encodes_in_the_coarsest_unit_that_is_exact() {
        let cases = [
            (ms(250), "250m"),
            (ms(100), "100m"),
            (Duration::from_secs(1), "1S"),
            (ms(1500), "1500m"),
            (Duration::from_secs(90), "90S"),
            (Duration::from_secs(120), "2M"),
            (Duration::from_secs(3 * 3600), "3H"),
            (Duration::from_secs(36 * 3600), "36H"),
            (Duration::from_micros(7), "7u"),
            (Duration::from_nanos(42), "42n"),
            (Duration::from_micros(2500), "2500u"),
        ];
        for (timeout, expected) in cases {
            assert_eq!(
                encode_timeout(timeout),
                expected,
                "{timeout:?} is a whole number of {expected:?}'s unit and of no coarser one"
            );
        }
    }

    #[test]
    fn values_too_precise_for_8_digits_are_rounded_down_never_up() {
        assert_eq!(
            encode_timeout(Duration::from_nanos(123_456_789)),
            "123456u",
            "123 456 789 ns needs 9 digits in ns; in µs it is 123456.789, written 123456u: \
             rounding to 123457u would hand the next hop 211 ns we do not have"
        );
        assert_eq!(
            encode_timeout(Duration::from_nanos(100_000_000_999)),
            "100000m",
            "100.000000999 s: too long for n or u in 8 digits; 100000.000999 ms -> 100000m \
             (not 100001m)"
        );
        assert_eq!(
            encode_timeout(Duration::from_secs(3600) + Duration::from_nanos(1)),
            "3600000m",
            "1 h + 1 ns is exact only in ns (13 digits): use the finest unit that fits, ms"
        );
    }

    #[test]
    fn a_timeout_beyond_99999999_hours_saturates() {
        assert_eq!(encode_timeout(Duration::MAX), "99999999H");
        assert_eq!(
            encode_timeout(Duration::from_secs(100_000_000 * 3600)),
            "99999999H"
        );
    }

    #[test]
    fn parses_every_unit() {
        let cases = [
            ("1H", Duration::from_secs(3600)),
            ("2M", Duration::from_secs(120)),
            ("3S", Duration::from_secs(3)),
            ("250m", ms(250)),
            ("5u", Duration::from_micros(5)),
            ("6n", Duration::from_nanos(6)),
            ("0m", Duration::ZERO),
            ("00000007S", Duration::from_secs(7)),
            ("99999999H", Duration::from_secs(99_999_999 * 3600)),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_timeout(value), Ok(expected), "parsing {value:?}");
        }
    }

    #[test]
    fn rejects_malformed_values_with_a_named_error() {
        use ParseError::*;
        let cases = [
            ("", Empty, "nothing at all"),
            ("250", MissingUnit, "digits without a unit"),
            (
                "5s",
                UnknownUnit('s'),
                "seconds are `S`; lowercase `s` is not a unit",
            ),
            ("5x", UnknownUnit('x'), "`x` is not a unit"),
            (
                "5µ",
                UnknownUnit('µ'),
                "micro is `u`, not `µ` (and this is not ASCII)",
            ),
            ("m", NoDigits, "a unit without a value"),
            ("1.5S", NotADigit('.'), "no fractions: send 1500m"),
            ("-1S", NotADigit('-'), "no negative budgets"),
            (
                "+5m",
                NotADigit('+'),
                "`str::parse::<u64>` accepts \"+5\": check the characters yourself",
            ),
            (" 5m", NotADigit(' '), "no spaces"),
            ("123456789m", TooManyDigits(9), "at most 8 digits"),
        ];
        for (value, expected, why) in cases {
            assert_eq!(
                parse_timeout(value),
                Err(expected),
                "{value:?} must be rejected: {why}"
            );
        }
    }

    #[test]
    fn encoding_then_parsing_never_gives_more_time_and_loses_almost_none() {
        let mut rng = seeded_rng(42);
        for _ in 0..5_000 {
            // Log-uniform from 1 ns to about 11 days.
            let exponent = rng.random_range(0.0..15.0_f64);
            let nanos = 10f64.powf(exponent) as u64;
            let timeout = Duration::from_nanos(nanos);
            let encoded = encode_timeout(timeout);
            assert!(
                encoded.len() <= MAX_DIGITS + 1,
                "{timeout:?} encoded as {encoded:?}: at most 8 digits and a unit"
            );
            let back = parse_timeout(&encoded)
                .unwrap_or_else(|e| panic!("{timeout:?} encoded as {encoded:?}: {e}"));
            assert!(
                back <= timeout,
                "{timeout:?} encoded as {encoded:?} reads back as {back:?}: MORE time than \
                 the sender had (rounded up)"
            );
            assert!(
                timeout - back <= timeout / 100_000,
                "{timeout:?} encoded as {encoded:?} reads back as {back:?}: too much \
                 precision lost; use the finest unit that fits in 8 digits"
            );
            if timeout < ms(100) {
                assert_eq!(back, timeout, "under 100 ms, nanoseconds fit: exact");
            }
        }
    }

    // --- The chain ---

    #[tokio::test(start_paused = true)]
    async fn a_request_with_enough_budget_is_served_by_every_hop() {
        let net = Arc::new(Network::new(three_hops()));
        let (answer, took) = send(&net, Some("200m")).await;
        assert_eq!(
            answer,
            Ok(Reply {
                served_by: vec!["C", "B", "A"]
            })
        );
        assert_eq!(
            took,
            ms(75),
            "3 x 20 ms of work, then 3 x 5 ms of replies, one after the other"
        );
        assert!(
            work(&net).iter().all(|&(_, _, _, finished)| finished),
            "nothing was cut short: {:?}",
            work(&net)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_hop_passes_down_what_is_left_not_what_it_was_given() {
        let net = Arc::new(Network::new(three_hops()));
        let _ = send(&net, Some("200m")).await;
        assert_eq!(
            received(&net),
            vec![header("200m"), header("175m"), header("150m")],
            "A got 200 ms, worked 20 and keeps 5 for its reply: B gets 175m. B does the same: \
             C gets 150m. Passing \"200m\" on restarts the clock at every hop; 180m means the \
             reply reserve was forgotten"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hop_without_an_incoming_deadline_uses_its_own_timeout() {
        let net = Arc::new(Network::new(three_hops()));
        let (answer, _) = send(&net, None).await;
        assert!(
            answer.is_ok(),
            "without a grpc-timeout each hop has its own 1 s: plenty, but got {answer:?}"
        );
        assert_eq!(
            received(&net),
            vec![Some(None), header("975m"), header("950m")],
            "no deadline came in: A uses its own 1 s timeout, and from there on it propagates"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hops_own_timeout_tightens_the_deadline_it_passes_on() {
        let mut hops = three_hops();
        hops[1].timeout = ms(100);
        let net = Arc::new(Network::new(hops));
        let _ = send(&net, Some("500m")).await;
        assert_eq!(
            received(&net),
            vec![header("500m"), header("475m"), header("75m")],
            "B may spend at most 100 ms whatever A allows: C gets 100 - 20 - 5 = 75m"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hops_own_timeout_never_extends_the_callers_deadline() {
        let net = Arc::new(Network::new(three_hops()));
        let _ = send(&net, Some("100m")).await;
        assert_eq!(
            received(&net),
            vec![header("100m"), header("75m"), header("50m")],
            "every hop's own timeout is 1 s, but the client allowed 100 ms: a 1 s cap must not \
             turn B's 75 ms into 1 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hop_refuses_at_once_when_the_budget_cannot_cover_its_own_work() {
        let net = Arc::new(Network::new(three_hops()));
        let (answer, took) = send(&net, Some("24m")).await;
        assert_eq!(
            answer,
            Err(Status::DeadlineExceeded),
            "24 ms cannot cover A's 20 ms of work and 5 ms of reply"
        );
        assert_eq!(
            took,
            Duration::ZERO,
            "A needs 20 ms of work + 5 ms of reply and has 24: fail fast, at once"
        );
        assert_eq!(work(&net), vec![], "a refused request costs no work at all");
        assert_eq!(received(&net)[1], None, "and B is never called");
    }

    #[tokio::test(start_paused = true)]
    async fn when_c_cannot_make_it_the_error_comes_back_early_and_c_does_no_work() {
        let net = Arc::new(Network::new(three_hops()));
        let (answer, took) = send(&net, Some("60m")).await;
        assert_eq!(answer, Err(Status::DeadlineExceeded));
        assert_eq!(
            received(&net)[2],
            header("10m"),
            "60 ms: A works 20 and keeps 5 (B gets 35m), B works 20 and keeps 5 (C gets 10m)"
        );
        assert!(
            work(&net).iter().all(|&(hop, ..)| hop != 2),
            "C needs 25 ms and got 10: it must refuse without starting, but worked: {:?}",
            work(&net)
        );
        assert_eq!(
            took,
            ms(40),
            "C's refusal travels straight back: the client knows at 40 ms, not at its 60 ms \
             deadline, and can retry elsewhere or degrade while it still has time"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_malformed_grpc_timeout_is_rejected_as_invalid_argument() {
        let net = Arc::new(Network::new(three_hops()));
        let (answer, _) = send(&net, Some("2s")).await;
        assert_eq!(
            answer,
            Err(Status::InvalidArgument(ParseError::UnknownUnit('s'))),
            "\"2s\" is not a grpc-timeout (seconds are `S`): reject the request; guessing, or \
             silently dropping the deadline, hides the caller's bug"
        );
        assert_eq!(work(&net), vec![], "and do no work for it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_hop_stops_working_at_its_deadline() {
        let net = Arc::new(Network::new(three_hops()).with_stall(2, ms(500)));
        let (answer, took) = send(&net, Some("200m")).await;
        assert_eq!(
            answer,
            Err(Status::DeadlineExceeded),
            "C stalls for 500 ms: the deadline passes before anybody can answer"
        );
        assert_eq!(
            received(&net)[2],
            header("150m"),
            "C is called with what is left: 200 - 2 x (20 + 5) = 150m"
        );
        let c_work: Vec<_> = work(&net).into_iter().filter(|w| w.0 == 2).collect();
        assert_eq!(
            c_work,
            vec![(2, 40, 190, false)],
            "C started at 40 ms with 150 ms left, then stalled: it must stop at its deadline \
             (190 ms), not grind on for 520 ms for a caller that is gone"
        );
        assert_eq!(
            took,
            ms(190),
            "B stops waiting at its child deadline (190 ms) and A passes the error on"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hop_whose_own_work_ran_long_does_not_call_downstream_with_nothing_left() {
        let net = Arc::new(Network::new(three_hops()).with_stall(0, ms(178)));
        let (answer, took) = send(&net, Some("200m")).await;
        assert_eq!(
            answer,
            Err(Status::DeadlineExceeded),
            "A's own work took 198 of its 200 ms: there is no time left to call B"
        );
        assert_eq!(
            took,
            ms(198),
            "A's work ended at 198 ms; it should answer then"
        );
        assert_eq!(
            received(&net)[1],
            None,
            "A's work ran until 198 ms, leaving 2 ms, less than its 5 ms reply reserve: the \
             child deadline has passed, so B must not be called at all"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_wall_clocks_of_the_hops_do_not_matter() {
        let net = Arc::new(
            Network::new(three_hops())
                .with_clock_skew(1, -300)
                .with_clock_skew(2, 250),
        );
        let (answer, took) = send(&net, Some("200m")).await;
        assert!(
            answer.is_ok(),
            "B's clock is 300 ms behind and C's 250 ms ahead; with 200 ms for 75 ms of work the \
             request must succeed as it does with synchronised clocks, but got {answer:?}"
        );
        assert_eq!(took, ms(75));
        assert_eq!(
            received(&net),
            vec![header("200m"), header("175m"), header("150m")],
            "B's clock is 300 ms behind and C's 250 ms ahead: deadlines must be measured as \
             time elapsed on each hop's own monotonic clock, never as a time of day"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn whatever_the_budget_nobody_works_after_the_client_gave_up() {
        type Setup = fn() -> Network;
        let setups: [(&str, Setup); 3] = [
            ("no stalls", || Network::new(three_hops())),
            ("B stalls 30 ms", || {
                Network::new(three_hops()).with_stall(1, ms(30))
            }),
            ("C stalls 1 s", || {
                Network::new(three_hops()).with_stall(2, Duration::from_secs(1))
            }),
        ];
        for (what, setup) in setups {
            // 2, 7, 12... ms: never a budget that fits exactly (75 ms without stalls), where
            // the last reply and the caller's timeout land on the same instant and either wins.
            for budget in (2..=152).step_by(5) {
                let net = Arc::new(setup());
                let (answer, took) = send(&net, Some(&format!("{budget}m"))).await;
                assert!(
                    took <= ms(budget),
                    "{what}, budget {budget} ms: A answered after {took:?}"
                );
                for (hop, from, to, _) in work(&net) {
                    assert!(
                        to <= u128::from(budget),
                        "{what}, budget {budget} ms: hop {hop} worked from {from} to {to} ms, \
                         after the client had given up"
                    );
                }
                if answer.is_err() {
                    let c_busy: u128 = work(&net)
                        .iter()
                        .filter(|w| w.0 == 2)
                        .map(|w| w.2 - w.1)
                        .sum();
                    assert!(
                        c_busy == 0 || what == "C stalls 1 s",
                        "{what}, budget {budget} ms: the request failed, yet C worked \
                         {c_busy} ms on it"
                    );
                }
            }
        }
    }
}
