// Per-client limiter — one token bucket per API key, in bounded memory, with Retry-After.
//
// Build `PerClientLimiter`: each client key (API key, IP) gets its own token bucket, created full
// on its first request, so one client's traffic never touches another's budget. `check` returns
// a `Decision`: allowed or not, whole requests left (`X-RateLimit-Remaining`) and, if rejected,
// how long to wait (`Retry-After`) ROUNDED UP to whole milliseconds, so that a client waiting
// exactly that long is admitted.
//
// Memory stays bounded whatever the clients do (a scan from a million IPs must not become a
// million entries), without handing anyone a free burst:
// - A client whose bucket has refilled to full is idle: a fresh bucket would be identical, so it
//   can be forgotten. `evict_idle` forgets them all.
// - At most `max_clients` are tracked. A NEW client at a full table triggers an idle sweep; if no
//   one is idle, the newcomer is rejected, Retry-After = when the first bucket is full again. A
//   partially drained client is NEVER dropped to make room: it would come back with a full
//   bucket — a free burst on demand for anyone who can spray requests from many keys.
//   Refusing newcomers has its own risk: an attacker who keeps MAX_CLIENTS keys mid-refill locks
//   every new client out. The other policy is to evict the least recently seen client to make
//   room (nginx frees its zone's oldest states when memory runs out): new clients always get in,
//   and the price is the free burst above. Which risk to take is a product decision.
//
// Lab (runs once the tests pass): a real HTTP front end on 127.0.0.1 applies your limiter before
// a backend; four clients, one abusive, send for two seconds over real sockets. Raise
// ABUSIVE_CLIENT_RPS: its 429s grow, its admitted count stays near BURST + RATE × 2 s, and the
// others do not notice. Part 2 (simulated) shows a scan of one-off clients held to MAX_CLIENTS.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sdlings_kit::backend::{self, Backend, Behaviour};
use sdlings_kit::clock::{Clock, ManualClock, SystemClock};
use sdlings_kit::lab::{Table, percent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Tokens added to each client's bucket per second: the rate a client may sustain.
    pub rate_per_sec: f64,
    /// Bucket capacity: the burst a client may send after being idle.
    pub burst: u32,
    /// The most clients tracked at once: the limiter's memory bound.
    pub max_clients: usize,
}

/// What the limiter tells the HTTP layer about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Whole requests the client could still make right now (`X-RateLimit-Remaining`).
    pub remaining: u32,
    /// When rejected: how long to wait before retrying, rounded up to whole milliseconds
    /// (`Retry-After`). `None` when allowed.
    pub retry_after: Option<Duration>,
}

/// Given: one client's token bucket (you built one in `token_bucket`), as plain state.
#[derive(Debug, Clone, PartialEq)]
struct Bucket {
    /// Tokens as of `updated`, between 0 and the burst.
    tokens: f64,
    updated: Duration,
}

impl Bucket {
    fn full(config: &Config, now: Duration) -> Bucket {
        Bucket {
            tokens: f64::from(config.burst),
            updated: now,
        }
    }

    /// Adds the tokens earned since `updated`, capped at the burst, and moves `updated` to `now`.
    fn refill(&mut self, config: &Config, now: Duration) {
        let elapsed = now.saturating_sub(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * config.rate_per_sec).min(f64::from(config.burst));
        self.updated = now;
    }

    /// Whether the bucket is full: a fresh bucket would be identical.
    fn is_full(&self, config: &Config) -> bool {
        self.tokens >= f64::from(config.burst)
    }

    /// How long after `updated` until the bucket holds `target` tokens (zero if it already
    /// does), rounded up to the nanosecond so that waiting this long is always enough.
    fn time_until(&self, config: &Config, target: f64) -> Duration {
        let missing = (target - self.tokens).max(0.0);
        Duration::from_nanos((missing / config.rate_per_sec * 1e9).ceil() as u64)
    }
}

// ---- Your part -------------------------------------------------------------------------------

pub struct PerClientLimiter<C: Clock> {
    clock: C,
    config: Config,
    /// Each tracked client's bucket, by key.
    buckets: HashMap<String, Bucket>,
    /// No tracked bucket can be full before this instant, so a sweep before it would find
    /// nothing to evict. Lowered whenever a bucket is created; recomputed by every sweep.
    next_idle_at: Duration,
}

impl<C: Clock> PerClientLimiter<C> {
    pub fn new(config: Config, clock: C) -> Self {
        assert!(config.burst > 0, "a bucket must hold at least one token");
        assert!(
            config.rate_per_sec > 0.0 && config.rate_per_sec.is_finite(),
            "the refill rate must be positive"
        );
        assert!(
            config.max_clients > 0,
            "the limiter must track some clients"
        );
        PerClientLimiter {
            clock,
            config,
            buckets: HashMap::new(),
            next_idle_at: Duration::ZERO,
        }
    }

    pub fn config(&self) -> Config {
        self.config
    }

    /// Clients currently held in memory.
    pub fn tracked_clients(&self) -> usize {
        self.buckets.len()
    }

    /// Decides one request from `client` at `self.clock.now()`, taking one token if allowed.
    /// A known client is judged by its bucket; a new client gets a full bucket, unless the table
    /// is at `max_clients` and no tracked client is idle (see the header), in which case it is
    /// rejected without being tracked.
    pub fn check(&mut self, client: &str) -> Decision {
        let now = self.clock.now();
        let config = self.config;
        if let Some(bucket) = self.buckets.get_mut(client) {
            bucket.refill(&config, now);
            return take_one(bucket, &config);
        }
        if self.buckets.len() >= config.max_clients {
            // Sweeping costs a pass over the whole table; skip it while no bucket can be full
            // yet, or a flood of new clients would make every request O(max_clients).
            if now >= self.next_idle_at {
                self.evict_idle();
            }
            if self.buckets.len() >= config.max_clients {
                // `next_idle_at` is when the first bucket may be full: a lower bound, so at worst
                // the newcomer comes back a little early and is told again, more precisely.
                return Decision {
                    allowed: false,
                    remaining: 0,
                    retry_after: Some(round_up_to_millis(self.next_idle_at.saturating_sub(now))),
                };
            }
        }
        let mut bucket = Bucket::full(&config, now);
        let decision = take_one(&mut bucket, &config);
        let full_again_at = now + bucket.time_until(&config, f64::from(config.burst));
        self.next_idle_at = self.next_idle_at.min(full_again_at);
        self.buckets.insert(client.to_string(), bucket);
        decision
    }

    /// Forgets every client whose bucket has refilled to full by now, and returns how many.
    /// Clients with a partially drained bucket are kept.
    pub fn evict_idle(&mut self) -> usize {
        let now = self.clock.now();
        let config = self.config;
        let before = self.buckets.len();
        let mut next_idle_at = Duration::MAX;
        self.buckets.retain(|_, bucket| {
            bucket.refill(&config, now);
            if bucket.is_full(&config) {
                return false;
            }
            next_idle_at =
                next_idle_at.min(now + bucket.time_until(&config, f64::from(config.burst)));
            true
        });
        self.next_idle_at = next_idle_at;
        before - self.buckets.len()
    }
}

/// Takes one token from a refilled bucket if it has one, and says what the client should hear.
fn take_one(bucket: &mut Bucket, config: &Config) -> Decision {
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        Decision {
            allowed: true,
            remaining: bucket.tokens.floor() as u32,
            retry_after: None,
        }
    } else {
        Decision {
            allowed: false,
            remaining: 0,
            retry_after: Some(round_up_to_millis(bucket.time_until(config, 1.0))),
        }
    }
}

/// `wait` rounded UP to whole milliseconds: 333.3 ms becomes 334 ms. Rounding down (or to the
/// nearest) would tell the client to come back a fraction of a token too early, and be rejected
/// again.
fn round_up_to_millis(wait: Duration) -> Duration {
    Duration::from_millis(
        u64::try_from(wait.as_nanos().div_ceil(1_000_000))
            .expect("a wait of under 584 million years"),
    )
}

// ---- Lab -------------------------------------------------------------------------------------
// Part 1 runs over real sockets, in real time: figures vary a little from run to run.

/// Tokens per second in each client's bucket: the sustained rate a client may have.
const RATE: f64 = 5.0;
/// Bucket size: the burst a client may send after being idle.
const BURST: u32 = 10;
/// How fast the abusive client sends, ignoring every 429.
const ABUSIVE_CLIENT_RPS: u32 = 100;
/// How long the clients run.
const RUN_FOR: Duration = Duration::from_secs(2);
/// The limiter's memory bound (clients tracked at once).
const MAX_CLIENTS: usize = 1_000;
/// Part 2 (simulated): how many one-off clients (one request each) arrive, and how fast.
const ONE_OFF_CLIENTS: u32 = 10_000;
const ONE_OFF_PER_SEC: [u32; 3] = [1_000, 5_000, 20_000];

/// How a lab client behaves.
#[derive(Clone, Copy)]
struct Persona {
    key: &'static str,
    /// Requests per second it tries to send.
    rps: u32,
    /// Whether it waits for Retry-After after a 429 (a well-behaved SDK does).
    honours_retry_after: bool,
}

const PERSONAS: [Persona; 4] = [
    Persona {
        key: "alice",
        rps: 3,
        honours_retry_after: true,
    },
    Persona {
        key: "bob",
        rps: 12,
        honours_retry_after: false,
    },
    Persona {
        key: "polite-batch",
        rps: 40,
        honours_retry_after: true,
    },
    Persona {
        key: "mallory",
        rps: ABUSIVE_CLIENT_RPS,
        honours_retry_after: false,
    },
];

#[derive(Default)]
struct ClientReport {
    sent: u64,
    ok: u64,
    limited: u64,
    errors: u64,
    retry_after_ms: Vec<u64>,
}

/// Reads one request head (a GET has no body) and returns its target, e.g. `/api?key=alice`.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 8 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8(head).ok()?;
    let mut parts = head.lines().next()?.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.to_string()),
        _ => None,
    }
}

async fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The front end: identifies the client by its API key (`?key=`), asks the limiter, and either
/// answers 429 itself or forwards the request to the backend.
async fn serve_connection(
    mut stream: TcpStream,
    limiter: Arc<Mutex<PerClientLimiter<SystemClock>>>,
    upstream: SocketAddr,
) {
    let Some(target) = read_target(&mut stream).await else {
        return;
    };
    let key = target
        .split_once("key=")
        .map(|(_, rest)| rest.split('&').next().unwrap_or(""))
        .unwrap_or("anonymous")
        .to_string();
    // A std Mutex is fine: it is held for one `check`, never across an `.await`.
    let decision = limiter.lock().expect("not poisoned").check(&key);
    if let Some(wait) = decision.retry_after {
        // HTTP's Retry-After is in whole seconds: round up again. The exact wait goes in the body
        // (real APIs add a header such as `RateLimit-Reset` or `X-RateLimit-Reset-After`).
        let ms = wait.as_millis();
        let headers = format!(
            "Retry-After: {}\r\nX-RateLimit-Remaining: 0\r\n",
            ms.div_ceil(1000)
        );
        let body = format!("rate limited, retry after {ms} ms");
        respond(&mut stream, "429 Too Many Requests", &headers, &body).await;
        return;
    }
    let headers = format!("X-RateLimit-Remaining: {}\r\n", decision.remaining);
    match backend::get(upstream, "/work?ms=2", Duration::from_secs(1)).await {
        Ok(answer) if answer.status == 200 => {
            respond(&mut stream, "200 OK", &headers, &answer.body).await
        }
        _ => respond(&mut stream, "502 Bad Gateway", &headers, "upstream failed").await,
    }
}

/// One client: sends at its rate for RUN_FOR, over a new connection per request.
async fn run_client(persona: Persona, front: SocketAddr) -> ClientReport {
    let report = Arc::new(Mutex::new(ClientReport::default()));
    let gap = Duration::from_secs(1) / persona.rps.max(1);
    let deadline = tokio::time::Instant::now() + RUN_FOR;
    let mut in_flight = JoinSet::new();
    let mut next = tokio::time::Instant::now();
    while next < deadline {
        tokio::time::sleep_until(next).await;
        next += gap;
        let report = Arc::clone(&report);
        let path = format!("/api?key={}", persona.key);
        let request = async move {
            let answer = backend::get(front, &path, Duration::from_secs(2)).await;
            let mut r = report.lock().expect("not poisoned");
            r.sent += 1;
            match answer {
                Ok(a) if a.status == 200 => r.ok += 1,
                Ok(a) if a.status == 429 => {
                    r.limited += 1;
                    let ms = a
                        .body
                        .split_whitespace()
                        .find_map(|w| w.parse::<u64>().ok())
                        .unwrap_or(0);
                    r.retry_after_ms.push(ms);
                    return Some(Duration::from_millis(ms));
                }
                _ => r.errors += 1,
            }
            None
        };
        if persona.honours_retry_after {
            // One request at a time; after a 429, wait as told before sending again.
            if let Some(wait) = request.await {
                next = next.max(tokio::time::Instant::now() + wait);
            }
        } else {
            // Fire and forget: the offered rate does not depend on the answers.
            in_flight.spawn(request);
        }
    }
    in_flight.join_all().await;
    Arc::try_unwrap(report)
        .ok()
        .expect("every request has finished")
        .into_inner()
        .expect("not poisoned")
}

async fn socket_lab() -> std::io::Result<()> {
    let backend = Backend::start(
        "api",
        Behaviour::Healthy {
            latency: Duration::from_millis(1),
        },
    )
    .await?;
    let config = Config {
        rate_per_sec: RATE,
        burst: BURST,
        max_clients: MAX_CLIENTS,
    };
    let limiter = Arc::new(Mutex::new(PerClientLimiter::new(
        config,
        SystemClock::new(),
    )));
    let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let front = listener.local_addr()?;
    let upstream = backend.addr();
    let server = {
        let limiter = Arc::clone(&limiter);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(stream, Arc::clone(&limiter), upstream));
            }
        })
    };

    println!(
        "Part 1 — real sockets: front end on {front} → backend on {upstream}. Each client gets \
         {BURST} burst + {RATE}/s; they send for {RUN_FOR:?}.\n"
    );
    let mut clients = JoinSet::new();
    for persona in PERSONAS {
        clients.spawn(async move { (persona, run_client(persona, front).await) });
    }
    let mut results = clients.join_all().await;
    results.sort_by_key(|(p, _)| p.rps);
    server.abort();

    let mut table = Table::new(&[
        "client",
        "sends/s",
        "honours Retry-After",
        "sent",
        "200 OK",
        "429",
        "errors",
        "admitted/s",
        "Retry-After seen (ms)",
    ]);
    for (persona, r) in &results {
        let seen = match (r.retry_after_ms.iter().min(), r.retry_after_ms.iter().max()) {
            (Some(lo), Some(hi)) => format!("{lo}..{hi}"),
            _ => "-".to_string(),
        };
        table.row(&[
            persona.key.to_string(),
            persona.rps.to_string(),
            if persona.honours_retry_after {
                "yes"
            } else {
                "no"
            }
            .to_string(),
            r.sent.to_string(),
            r.ok.to_string(),
            format!("{} ({})", r.limited, percent(r.limited, r.sent)),
            r.errors.to_string(),
            format!("{:.1}", r.ok as f64 / RUN_FOR.as_secs_f64()),
            seen,
        ]);
    }
    table.print();
    let sent: u64 = results.iter().map(|(_, r)| r.sent).sum();
    println!(
        "\nThe backend served {} of {sent} requests; the limiter answered the rest with 429 \
         before they cost the backend anything. Expected per client: at most {BURST} + {RATE} \
         × {:.0} s = {:.0} admitted.",
        backend.served(),
        RUN_FOR.as_secs_f64(),
        f64::from(BURST) + RATE * RUN_FOR.as_secs_f64()
    );
    Ok(())
}

/// Part 2, simulated time: ONE_OFF_CLIENTS distinct keys, one request each (a scan, or a botnet
/// rotating IPs), arriving at `per_sec`.
fn one_off_scan(per_sec: u32) -> (usize, u64, u64) {
    let clock = ManualClock::new();
    let config = Config {
        rate_per_sec: RATE,
        burst: BURST,
        max_clients: MAX_CLIENTS,
    };
    let mut limiter = PerClientLimiter::new(config, clock.clone());
    let gap = Duration::from_secs(1) / per_sec;
    let (mut peak, mut admitted, mut turned_away) = (0, 0u64, 0u64);
    for i in 0..ONE_OFF_CLIENTS {
        clock.set(gap * i);
        if limiter
            .check(&format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255))
            .allowed
        {
            admitted += 1;
        } else {
            turned_away += 1;
        }
        peak = peak.max(limiter.tracked_clients());
    }
    (peak, admitted, turned_away)
}

fn main() {
    let runtime = sdlings_kit::lab::runtime();
    if let Err(e) = runtime.block_on(socket_lab()) {
        println!("the socket lab could not run: {e}");
    }

    println!(
        "\nPart 2 — simulated: {ONE_OFF_CLIENTS} one-off clients (one request each); a drained \
         token comes back after {:.0} ms, then the client is idle.\n",
        1000.0 / RATE
    );
    let mut table = Table::new(&[
        "new clients/s",
        "max tracked",
        "peak tracked",
        "admitted",
        "turned away (table full)",
    ]);
    for per_sec in ONE_OFF_PER_SEC {
        let (peak, admitted, turned_away) = one_off_scan(per_sec);
        table.row(&[
            per_sec.to_string(),
            MAX_CLIENTS.to_string(),
            peak.to_string(),
            admitted.to_string(),
            format!(
                "{turned_away} ({})",
                percent(turned_away, u64::from(ONE_OFF_CLIENTS))
            ),
        ]);
    }
    table.print();
    println!(
        "\nMemory stays bounded by MAX_CLIENTS. When more clients are mid-refill than the table \
         holds, newcomers wait (429 + Retry-After) instead of an active client being forgotten."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn limiter(
        rate_per_sec: f64,
        burst: u32,
        max_clients: usize,
    ) -> (ManualClock, PerClientLimiter<ManualClock>) {
        let clock = ManualClock::new();
        let config = Config {
            rate_per_sec,
            burst,
            max_clients,
        };
        (clock.clone(), PerClientLimiter::new(config, clock))
    }

    /// Sends `n` requests from `client` at the current time; returns how many were allowed.
    fn allowed(limiter: &mut PerClientLimiter<ManualClock>, client: &str, n: u32) -> u32 {
        (0..n).filter(|_| limiter.check(client).allowed).count() as u32
    }

    fn rejected_with(wait: Duration) -> Decision {
        Decision {
            allowed: false,
            remaining: 0,
            retry_after: Some(wait),
        }
    }

    #[test]
    fn round_up_to_millis_never_rounds_down() {
        assert_eq!(round_up_to_millis(Duration::ZERO), Duration::ZERO);
        assert_eq!(round_up_to_millis(Duration::from_nanos(1)), ms(1));
        assert_eq!(round_up_to_millis(ms(250)), ms(250), "already whole");
        assert_eq!(
            round_up_to_millis(Duration::from_nanos(333_333_334)),
            ms(334),
            "333.33 ms rounds UP to 334 ms: at 333 ms the token is not back yet"
        );
        assert_eq!(
            round_up_to_millis(Duration::from_nanos(1_000_000_001)),
            ms(1001)
        );
    }

    #[test]
    fn a_new_client_may_burst_and_hears_how_many_requests_remain() {
        let (_clock, mut limiter) = limiter(4.0, 4, 10);
        for remaining in (0..4).rev() {
            assert_eq!(
                limiter.check("alice"),
                Decision {
                    allowed: true,
                    remaining,
                    retry_after: None
                },
                "a new client starts with a full bucket of 4; after this request {remaining} \
                 remain"
            );
        }
        assert!(
            !limiter.check("alice").allowed,
            "the burst of 4 is spent and no time has passed"
        );
    }

    #[test]
    fn a_rejection_says_how_long_until_a_token_is_back() {
        let (clock, mut limiter) = limiter(4.0, 4, 10);
        allowed(&mut limiter, "alice", 4);
        assert_eq!(
            limiter.check("alice"),
            rejected_with(ms(250)),
            "at 4 tokens/s the next token is back in 250 ms"
        );
        clock.set(ms(249));
        assert!(!limiter.check("alice").allowed, "249 ms is too early");
        clock.set(ms(250));
        assert!(
            limiter.check("alice").allowed,
            "retrying after exactly Retry-After must succeed"
        );
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_milliseconds() {
        let (clock, mut limiter) = limiter(3.0, 1, 10);
        assert!(limiter.check("alice").allowed);
        let decision = limiter.check("alice");
        assert_eq!(
            decision,
            rejected_with(ms(334)),
            "at 3 tokens/s a token takes 333.33 ms: Retry-After must round UP to 334 ms (333 ms \
             would send the client back too early, to be rejected again)"
        );
        clock.set(ms(333));
        assert!(
            !limiter.check("alice").allowed,
            "at 333 ms the bucket holds 0.999 tokens"
        );
        clock.set(ms(334));
        assert!(
            limiter.check("alice").allowed,
            "retrying after exactly Retry-After must succeed"
        );
    }

    #[test]
    fn retry_after_counts_the_fraction_of_a_token_already_earned() {
        let (clock, mut limiter) = limiter(3.0, 1, 10);
        assert!(limiter.check("bob").allowed);
        clock.set(ms(100));
        assert_eq!(
            limiter.check("bob"),
            rejected_with(ms(234)),
            "100 ms after draining, 0.3 tokens are back; the missing 0.7 takes 233.33 ms, \
             rounded up to 234 ms"
        );
        clock.set(ms(334));
        assert!(
            limiter.check("bob").allowed,
            "retrying after exactly Retry-After must succeed"
        );
    }

    #[test]
    fn one_clients_traffic_does_not_touch_another_clients_budget() {
        let (clock, mut limiter) = limiter(4.0, 4, 10);
        assert_eq!(allowed(&mut limiter, "mallory", 100), 4);
        assert_eq!(
            allowed(&mut limiter, "alice", 4),
            4,
            "alice has her own full bucket, whatever mallory did"
        );
        clock.set(ms(500));
        assert_eq!(
            allowed(&mut limiter, "mallory", 100),
            2,
            "in 500 ms mallory earned 2 tokens, no more"
        );
        assert_eq!(
            allowed(&mut limiter, "alice", 100),
            2,
            "and alice earned her own 2"
        );
    }

    #[test]
    fn evict_idle_forgets_clients_whose_buckets_are_full_again() {
        let (clock, mut limiter) = limiter(4.0, 4, 10);
        for client in ["a", "b", "c"] {
            assert_eq!(allowed(&mut limiter, client, 1), 1);
        }
        assert_eq!(limiter.tracked_clients(), 3);
        clock.set(ms(100));
        assert_eq!(
            limiter.evict_idle(),
            0,
            "at 100 ms each bucket is still 0.6 token short of full"
        );
        assert_eq!(limiter.tracked_clients(), 3);
        clock.set(ms(250));
        assert_eq!(
            limiter.evict_idle(),
            3,
            "at 250 ms each bucket has refilled its one token: a fresh bucket would be \
             identical, so nothing is lost by forgetting them"
        );
        assert_eq!(limiter.tracked_clients(), 0);
    }

    #[test]
    fn evict_idle_keeps_a_client_whose_bucket_is_still_partially_drained() {
        let (clock, mut limiter) = limiter(4.0, 4, 10);
        assert_eq!(allowed(&mut limiter, "mallory", 4), 4);
        assert_eq!(allowed(&mut limiter, "alice", 1), 1);
        clock.set(ms(300));
        assert_eq!(
            limiter.evict_idle(),
            1,
            "alice is full again, mallory is not"
        );
        assert_eq!(limiter.tracked_clients(), 1);
        assert_eq!(
            allowed(&mut limiter, "mallory", 10),
            1,
            "mallory drained her bucket 300 ms ago and has earned 1.2 tokens: forgetting her \
             would hand her a fresh burst of 4"
        );
    }

    #[test]
    fn many_one_off_clients_never_grow_the_table_beyond_max_clients() {
        let (clock, mut limiter) = limiter(4.0, 4, 100);
        for i in 0..10_000u64 {
            clock.set(ms(10 * i));
            let client = format!("scanner-{i}");
            assert!(
                limiter.check(&client).allowed,
                "{client} is new and has a full bucket; the table only ever holds about 25 \
                 clients that are not idle (each is idle 250 ms after its one request), so idle \
                 ones can always make room"
            );
            assert!(
                limiter.tracked_clients() <= 100,
                "after {} one-off clients the table holds {}, over max_clients = 100: memory \
                 must stay bounded",
                i + 1,
                limiter.tracked_clients()
            );
        }
    }

    #[test]
    fn a_full_table_of_active_clients_turns_a_new_client_away_instead_of_forgetting_one() {
        let (clock, mut limiter) = limiter(4.0, 4, 2);
        assert_eq!(allowed(&mut limiter, "mallory", 4), 4);
        assert_eq!(allowed(&mut limiter, "bob", 4), 4);
        clock.set(ms(100));
        assert_eq!(
            limiter.check("carol"),
            rejected_with(ms(900)),
            "the table holds 2 clients, both mid-refill: carol must wait until the first bucket \
             is full again, at 1000 ms, 900 ms from now"
        );
        assert_eq!(
            limiter.tracked_clients(),
            2,
            "a rejected newcomer is not tracked"
        );
        assert_eq!(
            allowed(&mut limiter, "mallory", 10),
            0,
            "mallory drained her bucket 100 ms ago (0.4 tokens back): she must not have been \
             evicted to make room for carol, or she would get a fresh burst"
        );
        clock.set(ms(500));
        assert_eq!(
            allowed(&mut limiter, "bob", 10),
            2,
            "tracked clients keep being served while the table is full"
        );
        clock.set(ms(1000));
        assert!(
            limiter.check("carol").allowed,
            "at 1000 ms mallory's bucket is full again, so she is idle and can make room"
        );
    }

    #[test]
    fn a_newcomer_at_a_full_table_makes_room_by_evicting_idle_clients() {
        let (clock, mut limiter) = limiter(4.0, 4, 3);
        for client in ["a", "b", "c"] {
            assert_eq!(allowed(&mut limiter, client, 1), 1);
        }
        clock.set(ms(250));
        assert!(
            limiter.check("d").allowed,
            "the table is full, but a, b and c are idle again: they must be evicted to make room"
        );
        assert!(limiter.tracked_clients() <= 3);
    }

    #[test]
    fn clients_that_arrive_after_a_sweep_can_still_be_swept_out_once_idle() {
        let (clock, mut limiter) = limiter(4.0, 4, 2);
        for client in ["a", "b"] {
            assert_eq!(allowed(&mut limiter, client, 1), 1);
        }
        clock.set(ms(250));
        assert_eq!(limiter.evict_idle(), 2, "a and b are full again");
        clock.set(ms(300));
        for client in ["c", "d"] {
            assert_eq!(allowed(&mut limiter, client, 1), 1);
        }
        clock.set(ms(550));
        assert!(
            limiter.check("e").allowed,
            "at 550 ms c and d have refilled their one token and are idle, so e at the full \
             table must sweep them out. If you skip sweeps until 'the earliest a bucket can be \
             full', a bucket created after the last sweep must move that time earlier"
        );
    }
}
