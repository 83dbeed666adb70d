// Per-client limiter — one token bucket per API key, in bounded memory, with Retry-After.
//
// Build `PerClientLimiter`: each client key (API key, IP) gets its own token bucket, created full
// on its first request, so one client never touches another's budget. `check` returns a
// `Decision`: allowed or not, whole requests left (`X-RateLimit-Remaining`) and, if rejected, how
// long to wait (`Retry-After`) ROUNDED UP to whole milliseconds, so that waiting that long works.
//
// Memory stays bounded whatever the clients do (a scan from a million IPs must not become a
// million entries). A client whose bucket has refilled to full is idle: a fresh bucket would be
// identical, so forgetting it costs nothing. `evict_idle` forgets them all, and a NEW client
// arriving when `max_clients` are tracked first makes room that way. If no one is idle,
// `Config::when_full` decides, and each policy has a price. `RefuseNewcomers` (Retry-After = when
// the first tracked bucket is full again): nobody gets a free burst, but an attacker who keeps
// `max_clients` keys mid-refill locks every new client out. `EvictLeastRecentlySeen` (the client
// whose last request, admitted or not, is the oldest; nginx's `limit_req` drops its least
// recently used state when its zone is full): new clients always get in, but the forgotten one
// comes back to a full bucket — a free burst for anyone who can spray many keys.
//
// Lab: an HTTP front end on 127.0.0.1 applies your limiter; four clients, one abusive, send for
// two seconds. Raise ABUSIVE_CLIENT_RPS: its 429s grow, its admitted count stays near BURST +
// RATE × 2 s, and the others do not notice. Then, simulated: a scan of one-off clients held to
// MAX_CLIENTS, and the two `WhenFull` policies against an attacker rotating through many keys.

use std::collections::HashMap;
use std::time::Duration;

use sdlings_kit::clock::{Clock, SystemClock};
use sdlings_kit::rate_limiting::{self, KeyedLimiter};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Tokens added to each client's bucket per second: the rate a client may sustain.
    pub rate_per_sec: f64,
    /// Bucket capacity: the burst a client may send after being idle.
    pub burst: u32,
    /// The most clients tracked at once: the limiter's memory bound.
    pub max_clients: usize,
    /// What a new client gets when `max_clients` are tracked and none of them is idle.
    pub when_full: WhenFull,
}

/// The policy for a new client at a full table of clients that are not idle (see the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Reject the newcomer without tracking it; no tracked client is forgotten.
    RefuseNewcomers,
    /// Forget the tracked client whose last request is the oldest, and admit the newcomer.
    EvictLeastRecentlySeen,
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

// ---- Your part -------------------------------------------------------------------------------

pub struct PerClientLimiter<C: Clock> {
    clock: C,
    config: Config,
    /// Each tracked client's bucket, by key.
    buckets: HashMap<String, Bucket>,
    // TODO (optional): any other state you need; initialise it in `new`.
}

impl<C: Clock> PerClientLimiter<C> {
    /// Decides one request from `client` at `self.clock.now()`, taking one token if allowed.
    /// A known client is judged by its bucket; a new client gets a full bucket. If the table is
    /// at `max_clients` and no tracked client is idle, `config.when_full` decides (see the
    /// header): the newcomer is rejected without being tracked, or the least recently seen
    /// client is forgotten to make room.
    pub fn check(&mut self, client: &str) -> Decision {
        todo!("decide a request from {client}")
    }

    /// Forgets every client whose bucket has refilled to full by now, and returns how many.
    /// Clients with a partially drained bucket are kept.
    pub fn evict_idle(&mut self) -> usize {
        todo!("drop the idle clients")
    }

    pub fn new(config: Config, clock: C) -> Self {
        assert!(config.burst > 0, "a bucket must hold at least one token");
        assert!(
            config.rate_per_sec > 0.0 && config.rate_per_sec.is_finite(),
            "the refill rate must be positive"
        );
        assert!(config.max_clients > 0, "the table must hold a client");
        PerClientLimiter {
            clock,
            config,
            buckets: HashMap::new(),
        }
    }

    /// Clients currently held in memory.
    pub fn tracked_clients(&self) -> usize {
        self.buckets.len()
    }
}

/// `wait` rounded UP to whole milliseconds: 333.3 ms becomes 334 ms. Rounding down (or to the
/// nearest) would tell the client to come back a fraction of a token too early, and be rejected
/// again.
fn round_up_to_millis(wait: Duration) -> Duration {
    todo!("round {wait:?} up to whole milliseconds")
}

// ---- Given: one client's token bucket -----------------------------------------------------

/// Given: one client's token bucket (you built one in `token_bucket`), as plain state.
#[derive(Debug, Clone, PartialEq)]
struct Bucket {
    /// Tokens as of `updated`, between 0 and the burst.
    tokens: f64,
    /// When `tokens` was last brought up to date (by any refill, sweeps included).
    updated: Duration,
    /// When this client last sent a request, admitted or not. Refills do not move it.
    last_seen: Duration,
}

impl Bucket {
    fn full(config: &Config, now: Duration) -> Bucket {
        Bucket {
            tokens: f64::from(config.burst),
            updated: now,
            last_seen: now,
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

// ---- Lab -------------------------------------------------------------------------------------
// Part 1 runs over real sockets, in real time: figures vary a little from run to run. Parts 2 and
// 3 are simulated; their workloads are set in `sdlings_kit::rate_limiting`.

/// Each client's bucket: RATE tokens a second, at most BURST.
const RATE: f64 = 5.0;
const BURST: u32 = 10;
/// How fast the abusive client sends, ignoring every 429, for RUN_FOR.
const ABUSIVE_CLIENT_RPS: u32 = 100;
const RUN_FOR: Duration = Duration::from_secs(2);
/// The limiter's memory bound (clients tracked at once).
const MAX_CLIENTS: usize = 1_000;

fn lab_limiter<C: Clock>(when_full: WhenFull, clock: C) -> PerClientLimiter<C> {
    let (rate_per_sec, burst, max_clients) = (RATE, BURST, MAX_CLIENTS);
    let config = Config {
        rate_per_sec,
        burst,
        max_clients,
        when_full,
    };
    PerClientLimiter::new(config, clock)
}

impl<C: Clock> KeyedLimiter for PerClientLimiter<C> {
    fn check(&mut self, client: &str) -> (bool, u32, Option<Duration>) {
        let decision = PerClientLimiter::check(self, client);
        (decision.allowed, decision.remaining, decision.retry_after)
    }

    fn tracked_clients(&self) -> usize {
        PerClientLimiter::tracked_clients(self)
    }
}

fn main() {
    let refusing = lab_limiter(WhenFull::RefuseNewcomers, SystemClock::new());
    rate_limiting::socket_lab(refusing, RATE, BURST, ABUSIVE_CLIENT_RPS, RUN_FOR);
    let policies = [WhenFull::RefuseNewcomers, WhenFull::EvictLeastRecentlySeen];
    rate_limiting::one_off_lab(policies[0], lab_limiter, MAX_CLIENTS, RATE);
    rate_limiting::key_rotation_lab(&policies, lab_limiter, MAX_CLIENTS, RATE, BURST);
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::clock::ManualClock;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    type Limiter = PerClientLimiter<ManualClock>;

    fn limiter(when_full: WhenFull, rate: f64, burst: u32, max: usize) -> (ManualClock, Limiter) {
        let clock = ManualClock::new();
        let (rate_per_sec, max_clients) = (rate, max);
        let config = Config {
            rate_per_sec,
            burst,
            max_clients,
            when_full,
        };
        (clock.clone(), PerClientLimiter::new(config, clock))
    }

    /// Sends `n` requests from `client` at the current time; returns how many were allowed.
    fn allowed(limiter: &mut Limiter, client: &str, n: u32) -> u32 {
        (0..n).filter(|_| limiter.check(client).allowed).count() as u32
    }

    fn admitted(remaining: u32) -> Decision {
        Decision {
            allowed: true,
            remaining,
            retry_after: None,
        }
    }

    fn rejected_with(wait: Duration) -> Decision {
        Decision {
            allowed: false,
            remaining: 0,
            retry_after: Some(wait),
        }
    }

    #[test]
    fn a_new_client_may_burst_and_hears_how_many_requests_remain() {
        let (_clock, mut limiter) = limiter(WhenFull::RefuseNewcomers, 4.0, 4, 10);
        for remaining in (0..4).rev() {
            assert_eq!(
                limiter.check("alice"),
                admitted(remaining),
                "a new client's bucket holds 4; after this request {remaining} remain"
            );
        }
        assert!(
            !limiter.check("alice").allowed,
            "the burst of 4 is spent and no time has passed"
        );
    }

    #[test]
    fn round_up_to_millis_never_rounds_down() {
        let nanos = [0, 1, 250_000_000, 333_333_334, 1_000_000_001];
        assert_eq!(
            nanos.map(|n| round_up_to_millis(Duration::from_nanos(n))),
            [0, 1, 250, 334, 1001].map(ms),
            "{nanos:?} ns rounded UP to whole ms: any less and the client comes back too early"
        );
    }

    #[test]
    fn retry_after_is_the_wait_for_the_missing_fraction_of_a_token_rounded_up() {
        let (clock, mut limiter) = limiter(WhenFull::RefuseNewcomers, 3.0, 1, 10);
        assert!(limiter.check("alice").allowed);
        assert_eq!(
            limiter.check("alice"),
            rejected_with(ms(334)),
            "at 3 tokens/s a token takes 333.33 ms: Retry-After must round UP to 334 ms (333 ms \
             would send the client back too early, to be rejected again)"
        );
        clock.set(ms(100));
        assert_eq!(
            limiter.check("alice"),
            rejected_with(ms(234)),
            "100 ms after draining, 0.3 tokens are back; the missing 0.7 takes 233.33 ms, \
             rounded up to 234 ms (not a whole token's 334 ms)"
        );
        clock.set(ms(333));
        assert!(!limiter.check("alice").allowed, "at 333 ms: 0.999 tokens");
        clock.set(ms(334));
        assert!(
            limiter.check("alice").allowed,
            "retrying after exactly Retry-After must succeed"
        );
    }

    #[test]
    fn evict_idle_forgets_clients_whose_buckets_are_full_again() {
        let (clock, mut limiter) = limiter(WhenFull::RefuseNewcomers, 4.0, 4, 10);
        for client in ["a", "b", "c"] {
            assert_eq!(allowed(&mut limiter, client, 1), 1);
        }
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
    fn many_one_off_clients_never_grow_the_table_beyond_max_clients() {
        let (clock, mut limiter) = limiter(WhenFull::RefuseNewcomers, 4.0, 4, 100);
        for i in 0..10_000u64 {
            clock.set(ms(10 * i));
            let client = format!("scanner-{i}");
            assert!(
                limiter.check(&client).allowed,
                "{client} is new; the table only ever holds about 25 clients that are not idle \
                 (each is idle 250 ms after its one request), so idle ones can make room"
            );
            assert!(
                limiter.tracked_clients() <= 100,
                "after {} one-off clients the table holds {}, over max_clients = 100",
                i + 1,
                limiter.tracked_clients()
            );
        }
    }

    #[test]
    fn a_full_table_of_active_clients_turns_a_new_client_away_instead_of_forgetting_one() {
        let (clock, mut limiter) = limiter(WhenFull::RefuseNewcomers, 4.0, 4, 2);
        assert_eq!(allowed(&mut limiter, "mallory", 4), 4);
        assert_eq!(allowed(&mut limiter, "bob", 4), 4);
        clock.set(ms(100));
        assert_eq!(
            limiter.check("carol"),
            rejected_with(ms(900)),
            "the table holds 2 clients, both mid-refill: carol must wait until the first bucket \
             is full again, at 1000 ms, 900 ms from now"
        );
        assert_eq!(limiter.tracked_clients(), 2, "carol is not tracked");
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
    fn evicting_forgets_the_least_recently_seen_client_who_then_gets_a_free_burst() {
        let (clock, mut limiter) = limiter(WhenFull::EvictLeastRecentlySeen, 1.0, 4, 3);
        for (at, client) in [(0, "a"), (10, "b"), (20, "c")] {
            clock.set(ms(at));
            assert_eq!(allowed(&mut limiter, client, 4), 4);
        }
        clock.set(ms(30));
        assert!(
            !limiter.check("a").allowed,
            "a drained its bucket 30 ms ago; this rejected request still counts as a being seen"
        );
        clock.set(ms(40));
        assert_eq!(
            limiter.check("d"),
            admitted(3),
            "the table is full of active clients and the policy is to evict: the newcomer d \
             gets in, with a full bucket of 4"
        );
        assert_eq!(limiter.tracked_clients(), 3, "one client made room for d");
        clock.set(ms(50));
        assert!(
            !limiter.check("a").allowed && !limiter.check("c").allowed,
            "a was created first but was seen at 30 ms (a rejected request is still a request); \
             the least recently seen is b (10 ms), so b is the one forgotten, and a and c keep \
             their drained buckets"
        );
        clock.set(ms(70));
        assert_eq!(
            allowed(&mut limiter, "b", 10),
            4,
            "b was forgotten 30 ms after draining its bucket, so it comes back as a new client \
             with a full bucket of 4: the free burst that is the price of this policy"
        );
        clock.set(ms(80));
        assert_eq!(
            allowed(&mut limiter, "d", 10),
            4,
            "b's return evicted the least recently seen client: d (seen at 40 ms; a and c at \
             50 ms). So d is new again, with a full bucket"
        );
    }

    #[test]
    fn evicting_still_makes_room_with_idle_clients_first() {
        let (clock, mut limiter) = limiter(WhenFull::EvictLeastRecentlySeen, 4.0, 4, 2);
        assert_eq!(allowed(&mut limiter, "mallory", 4), 4);
        clock.set(ms(10));
        assert_eq!(allowed(&mut limiter, "bob", 1), 1);
        clock.set(ms(300));
        assert!(limiter.check("carol").allowed, "carol is new and gets in");
        assert_eq!(
            allowed(&mut limiter, "mallory", 10),
            1,
            "at 300 ms bob's bucket is full again (idle), so forgetting him costs nothing; \
             mallory is the least recently seen but still mid-refill (1.2 tokens): evicting her \
             instead would hand her a fresh burst of 4"
        );
    }

    /// The reference's answer for a refilled bucket: one token if there is one; else the wait
    /// for one, rounded up to the millisecond.
    fn reference_take_one(bucket: &mut Bucket, config: &Config) -> Decision {
        if bucket.tokens < 1.0 {
            return rejected_with(reference_ceil_millis(bucket.time_until(config, 1.0)));
        }
        bucket.tokens -= 1.0;
        admitted(bucket.tokens as u32)
    }

    fn reference_ceil_millis(wait: Duration) -> Duration {
        let whole = ms(wait.as_millis() as u64);
        if whole == wait { whole } else { whole + ms(1) }
    }

    #[test]
    fn matches_a_table_of_buckets_under_both_policies() {
        const RATES: [f64; 5] = [0.5, 1.25, 3.0, 4.0, 10.0];
        // 1/512 s: with these rates every refill is exact in floating point.
        const TICK: Duration = Duration::from_nanos(1_953_125);
        const POLICIES: [WhenFull; 2] =
            [WhenFull::RefuseNewcomers, WhenFull::EvictLeastRecentlySeen];
        sdlings_kit::property::for_seeds(150, |rng| {
            let when_full = POLICIES[rng.random_range(0..2)];
            let rate = RATES[rng.random_range(0..RATES.len())];
            let burst = [1, 2, 3, 4, 10][rng.random_range(0..5)];
            let (clock, mut limiter) = limiter(when_full, rate, burst, rng.random_range(1..=5));
            let config = limiter.config;
            // The reference: the given `Bucket` per tracked client, swept of idle ones whenever
            // a newcomer finds the table full.
            let mut table: HashMap<String, Bucket> = HashMap::new();
            let mut now = Duration::ZERO;
            for step in 0..100 {
                clock.set(now);
                let client = &format!("c{}", rng.random_range(0..config.max_clients + 3));
                let actual = limiter.check(client);
                let before: Vec<&String> = table.keys().collect();
                let why = format!(
                    "{config:?}, step {step} at {now:?}: {client} (tracked by the reference: \
                     {before:?})"
                );
                if let Some(bucket) = table.get_mut(client) {
                    bucket.last_seen = now;
                    bucket.refill(&config, now);
                    let expected = reference_take_one(bucket, &config);
                    assert_eq!(
                        actual, expected,
                        "{why}: a tracked client is judged by its bucket"
                    );
                } else {
                    if table.len() >= config.max_clients {
                        table.retain(|_, bucket| {
                            bucket.refill(&config, now);
                            !bucket.is_full(&config)
                        });
                    }
                    let full = table.len() >= config.max_clients;
                    if full && when_full == WhenFull::RefuseNewcomers {
                        let first_full = table
                            .values()
                            .map(|b| b.time_until(&config, f64::from(config.burst)))
                            .min();
                        let longest = reference_ceil_millis(first_full.expect("the table is full"));
                        let wait = actual.retry_after.unwrap_or_default();
                        assert!(
                            actual == rejected_with(wait)
                                && (ms(1)..=longest).contains(&wait)
                                && wait == reference_ceil_millis(wait),
                            "{why}: a newcomer at a table full of active clients is refused with \
                             Retry-After in whole ms, at most {longest:?} (when the first bucket \
                             is full again), but got {actual:?}"
                        );
                        // Not tracked: the steps below check nothing else changed.
                    } else {
                        if full {
                            let oldest = table.values().map(|b| b.last_seen).min();
                            // Clients last seen at the same instant: either may go.
                            let victim = table
                                .iter()
                                .filter(|(_, b)| Some(b.last_seen) == oldest)
                                .map(|(k, _)| k.clone())
                                .max_by_key(|k| !limiter.buckets.contains_key(k));
                            table.remove(&victim.expect("the table is full"));
                        }
                        let mut bucket = Bucket::full(&config, now);
                        let expected = reference_take_one(&mut bucket, &config);
                        table.insert(client.clone(), bucket);
                        assert_eq!(actual, expected, "{why}: a new client gets a full bucket");
                    }
                }
                let tracked = limiter.tracked_clients();
                assert!(
                    tracked <= config.max_clients,
                    "{why}: {tracked} clients tracked, over max_clients"
                );
                // Every client that is not idle must be tracked by both, or neither.
                let active = |bucket: Option<&Bucket>| {
                    let mut bucket = bucket
                        .cloned()
                        .unwrap_or_else(|| Bucket::full(&config, now));
                    bucket.refill(&config, now);
                    !bucket.is_full(&config)
                };
                for name in (0..config.max_clients + 3).map(|i| format!("c{i}")) {
                    assert_eq!(
                        active(limiter.buckets.get(&name)),
                        active(table.get(&name)),
                        "{why}: after this request, is {name} tracked with a bucket that is not \
                         full? (the least recently seen active client is the one to evict, and \
                         only under EvictLeastRecentlySeen)"
                    );
                }
                now += TICK * rate_limiting::idle_or_burst_ticks(rng);
            }
        });
    }
}
