// Token bucket — a sustained rate with room for bursts, refilled lazily from an injected clock.
//
// Build `TokenBucket`: a bucket holds at most `capacity` tokens and gains `refill_per_sec`
// tokens per second, continuously. A request for n tokens succeeds if the bucket holds at least
// n, and takes them; otherwise it takes nothing. Nothing runs in the background: every call first
// brings the bucket up to date from the time elapsed since the last update (lazy refill), which is
// what makes one bucket per client cheap enough to keep millions of them. Tokens are fractional —
// at 50 tokens/s, 10 ms adds half a token, and that half must not be lost — and never exceed
// `capacity`, however long the bucket sat idle. A request for more than `capacity` tokens could
// never succeed: it is rejected at once as `Acquire::TooLarge`, so the caller does not wait
// forever.
//
// Why it matters: the token bucket is the most common limiter in production. `capacity` is the
// burst a client may send after being quiet, `refill_per_sec` the rate it may sustain. Envoy's
// local rate limit filter, Stripe's API limiter, AWS API Gateway throttling (rate + burst) and
// Guava's RateLimiter all use it, and nginx's `limit_req` is its mirror image, a leaky bucket.
//
// Lab (runs once the tests pass): a client that goes quiet, then bursts, then sends steadily
// faster than the rate. Watch the burst pass up to CAPACITY and the throughput settle at RATE.
// Turn CAPACITY up (bigger bursts after quiet periods) and RATE (higher sustained throughput).

use std::time::Duration;

use sdlings_kit::clock::{Clock, ManualClock};
use sdlings_kit::lab::{Table, bar_chart, percent};

/// The outcome of `try_acquire`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// The tokens were taken: go ahead.
    Granted,
    /// Not enough tokens right now; nothing was taken. Retrying later can succeed.
    Denied,
    /// More tokens than the bucket can ever hold: no amount of waiting helps.
    TooLarge,
}

pub struct TokenBucket<C: Clock> {
    clock: C,
    capacity: u32,
    refill_per_sec: f64,
    /// Tokens in the bucket as of `updated`: fractional, between 0 and `capacity`.
    tokens: f64,
    /// The clock reading `tokens` was last brought up to date at.
    updated: Duration,
}

impl<C: Clock> TokenBucket<C> {
    /// A full bucket of `capacity` tokens, refilled at `refill_per_sec` tokens per second.
    pub fn new(capacity: u32, refill_per_sec: f64, clock: C) -> Self {
        assert!(capacity > 0, "a bucket must hold at least one token");
        assert!(
            refill_per_sec > 0.0 && refill_per_sec.is_finite(),
            "the refill rate must be positive"
        );
        let updated = clock.now();
        TokenBucket {
            clock,
            capacity,
            refill_per_sec,
            tokens: f64::from(capacity),
            updated,
        }
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    pub fn refill_per_sec(&self) -> f64 {
        self.refill_per_sec
    }

    /// The tokens available right now (after refilling).
    pub fn available(&mut self) -> f64 {
        self.refill();
        self.tokens
    }

    // ---- Your part -------------------------------------------------------------------------

    /// Brings `tokens` up to date at `self.clock.now()`: adds the tokens earned since `updated`
    /// (fractions included), never beyond `capacity`, and moves `updated` to now.
    fn refill(&mut self) {
        let now = self.clock.now();
        // Whole seconds and fractions alike: `as_secs()` would throw away every sub-second
        // interval, and a client polling every 10 ms would never earn a token.
        let elapsed = now.saturating_sub(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill_per_sec).min(f64::from(self.capacity));
        // Always move `updated`, also when the bucket is full or the request is then denied:
        // the time up to now has been accounted for, and must never be counted twice.
        self.updated = now;
    }

    /// Takes `n` tokens if the bucket (refilled up to now) holds at least `n`. Otherwise takes
    /// nothing: `Denied` if waiting could help, `TooLarge` if `n` exceeds the capacity.
    pub fn try_acquire(&mut self, n: u32) -> Acquire {
        if n > self.capacity {
            return Acquire::TooLarge;
        }
        self.refill();
        let n = f64::from(n);
        if self.tokens >= n {
            self.tokens -= n;
            Acquire::Granted
        } else {
            Acquire::Denied
        }
    }
}

// ---- Lab -------------------------------------------------------------------------------------
// A simulated clock (a ManualClock moved by the lab): the run is instant and exactly repeatable.

/// Bucket size: the burst a client may send after a quiet period.
const CAPACITY: u32 = 20;
/// Tokens per second: the rate a client may sustain.
const RATE: f64 = 10.0;
/// The client's behaviour, phase by phase: (duration, requests per second it sends).
const PHASES: [(Duration, u32); 5] = [
    (Duration::from_millis(1000), 5),  // polite: under the rate
    (Duration::from_millis(1000), 0),  // quiet: the bucket refills
    (Duration::from_millis(200), 200), // a burst
    (Duration::from_millis(2000), 25), // steady, faster than the rate
    (Duration::from_millis(800), 0),   // quiet again
];
/// Width of one bar of the timeline.
const BAR: Duration = Duration::from_millis(250);

fn main() {
    let clock = ManualClock::new();
    let mut bucket = TokenBucket::new(CAPACITY, RATE, clock.clone());
    let total: Duration = PHASES.iter().map(|(d, _)| *d).sum();
    let bars = (total.as_nanos() / BAR.as_nanos()) as usize;
    let mut admitted_per_bar = vec![0u32; bars];
    let mut table = Table::new(&[
        "phase",
        "sends/s",
        "sent",
        "admitted",
        "admitted/s",
        "tokens at end",
    ]);
    let mut start = Duration::ZERO;
    let (mut sent_total, mut admitted_total) = (0u64, 0u64);
    for (i, &(length, rps)) in PHASES.iter().enumerate() {
        let (mut sent, mut admitted) = (0u64, 0u64);
        if rps > 0 {
            let gap = Duration::from_secs(1) / rps;
            let mut t = start;
            while t < start + length {
                clock.set(t);
                sent += 1;
                if bucket.try_acquire(1) == Acquire::Granted {
                    admitted += 1;
                    admitted_per_bar[(t.as_nanos() / BAR.as_nanos()) as usize] += 1;
                }
                t += gap;
            }
        }
        start += length;
        clock.set(start);
        table.row(&[
            format!("{} ({:.1}s)", i + 1, length.as_secs_f64()),
            rps.to_string(),
            sent.to_string(),
            admitted.to_string(),
            format!("{:.1}", admitted as f64 / length.as_secs_f64()),
            format!("{:.1}", bucket.available()),
        ]);
        sent_total += sent;
        admitted_total += admitted;
    }
    println!(
        "Token bucket: capacity {CAPACITY}, refill {RATE} tokens/s. One client, {} phases:\n",
        PHASES.len()
    );
    table.print();
    println!(
        "\n{admitted_total} of {sent_total} requests admitted ({}).",
        percent(admitted_total, sent_total)
    );
    println!("\nadmitted per {BAR:?}");
    let chart: Vec<(String, f64)> = admitted_per_bar
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let t = BAR * i as u32;
            (format!("{:.2}s", t.as_secs_f64()), f64::from(n))
        })
        .collect();
    println!("{}", bar_chart(&chart, 40));
    println!(
        "\nA batch of {} tokens: {:?} (it can never fit in a bucket of {CAPACITY}).",
        CAPACITY + 1,
        bucket.try_acquire(CAPACITY + 1)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPACITY: u32 = 10;
    const RATE: f64 = 5.0;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn bucket() -> (ManualClock, TokenBucket<ManualClock>) {
        let clock = ManualClock::new();
        (clock.clone(), TokenBucket::new(CAPACITY, RATE, clock))
    }

    /// Calls `try_acquire(1)` `n` times at the current time; returns how many were granted.
    fn granted(bucket: &mut TokenBucket<ManualClock>, n: u32) -> u32 {
        (0..n)
            .filter(|_| bucket.try_acquire(1) == Acquire::Granted)
            .count() as u32
    }

    fn assert_tokens(bucket: &mut TokenBucket<ManualClock>, expected: f64, why: &str) {
        let actual = bucket.available();
        assert!(
            (actual - expected).abs() < 1e-9,
            "the bucket holds {actual} tokens, expected {expected}: {why}"
        );
    }

    #[test]
    fn a_new_bucket_is_full_and_admits_a_burst_of_capacity() {
        let (_clock, mut bucket) = bucket();
        assert_eq!(
            granted(&mut bucket, CAPACITY),
            CAPACITY,
            "a new bucket starts full: the first {CAPACITY} requests are a permitted burst"
        );
        assert_eq!(
            bucket.try_acquire(1),
            Acquire::Denied,
            "the burst used every token and no time has passed"
        );
    }

    #[test]
    fn tokens_refill_at_the_configured_rate() {
        let (clock, mut bucket) = bucket();
        granted(&mut bucket, CAPACITY);
        clock.set(ms(200));
        assert_tokens(&mut bucket, 1.0, "200 ms at 5 tokens/s earns 1 token");
        assert_eq!(bucket.try_acquire(1), Acquire::Granted);
        assert_eq!(bucket.try_acquire(1), Acquire::Denied);
        clock.set(ms(1200));
        assert_tokens(&mut bucket, 5.0, "one more second at 5 tokens/s earns 5");
    }

    #[test]
    fn the_bucket_never_holds_more_than_its_capacity() {
        let (clock, mut bucket) = bucket();
        granted(&mut bucket, 3);
        clock.set(Duration::from_secs(3600));
        assert_tokens(
            &mut bucket,
            f64::from(CAPACITY),
            "an hour of refill is capped at the capacity",
        );
        assert_eq!(
            granted(&mut bucket, 1000),
            CAPACITY,
            "after an hour idle the client may burst {CAPACITY}, the capacity, not 18 000"
        );
    }

    #[test]
    fn no_time_passing_means_no_new_tokens() {
        let (_clock, mut bucket) = bucket();
        granted(&mut bucket, CAPACITY);
        assert_eq!(
            granted(&mut bucket, 1000),
            0,
            "1000 calls at the same instant: the bucket refills with elapsed time, not per call"
        );
        assert_tokens(&mut bucket, 0.0, "nothing refilled, nothing taken");
    }

    #[test]
    fn fractions_of_a_token_accumulate_over_many_small_intervals() {
        let clock = ManualClock::new();
        let mut bucket = TokenBucket::new(5, 50.0, clock.clone());
        granted(&mut bucket, 5);
        let mut admitted = 0;
        for step in 1..=100 {
            clock.set(ms(10 * step));
            admitted += granted(&mut bucket, 1);
        }
        assert!(
            (49..=51).contains(&admitted),
            "polling every 10 ms for 1 s at 50 tokens/s should admit about 50 requests (each \
             poll earns half a token), but admitted {admitted}. 0 means sub-second intervals are \
             truncated away (`as_secs()`, or integer tokens); far more than 50 means time is \
             counted twice (is `updated` moved on every refill, denied calls included?)"
        );
    }

    #[test]
    fn fractional_remainders_carry_over_between_refills() {
        let clock = ManualClock::new();
        let mut bucket = TokenBucket::new(3, 3.0, clock.clone());
        granted(&mut bucket, 3);
        let mut admitted = 0;
        for step in 1..=100 {
            clock.set(ms(100 * step));
            admitted += granted(&mut bucket, 1);
        }
        assert!(
            (29..=30).contains(&admitted),
            "10 s at 3 tokens/s is 30 tokens, polled every 100 ms (0.3 token each), but only \
             {admitted} requests were admitted: when a refill rounds down to whole tokens, the \
             remainder must be kept, not dropped"
        );
    }

    #[test]
    fn acquiring_several_tokens_is_all_or_nothing() {
        let (clock, mut bucket) = bucket();
        granted(&mut bucket, CAPACITY);
        clock.set(ms(600));
        assert_tokens(&mut bucket, 3.0, "600 ms at 5 tokens/s");
        assert_eq!(
            bucket.try_acquire(5),
            Acquire::Denied,
            "5 tokens are asked for and only 3 are there"
        );
        assert_tokens(
            &mut bucket,
            3.0,
            "a denied request must take nothing, not the 3 tokens that were there",
        );
        assert_eq!(bucket.try_acquire(3), Acquire::Granted);
        assert_tokens(&mut bucket, 0.0, "3 tokens were taken at once");
    }

    #[test]
    fn a_request_larger_than_the_capacity_is_rejected_at_once_as_too_large() {
        let (clock, mut bucket) = bucket();
        assert_eq!(
            bucket.try_acquire(CAPACITY + 1),
            Acquire::TooLarge,
            "the bucket can never hold {} tokens: say so, rather than Denied (which invites the \
             client to wait and retry forever)",
            CAPACITY + 1
        );
        assert_tokens(
            &mut bucket,
            f64::from(CAPACITY),
            "a too-large request takes nothing",
        );
        granted(&mut bucket, CAPACITY);
        clock.set(ms(100));
        assert_eq!(
            bucket.try_acquire(CAPACITY + 1),
            Acquire::TooLarge,
            "too large is too large, whether the bucket is full or empty"
        );
    }

    #[test]
    fn a_request_for_exactly_the_capacity_succeeds_on_a_full_bucket() {
        let (clock, mut bucket) = bucket();
        assert_eq!(bucket.try_acquire(CAPACITY), Acquire::Granted);
        clock.set(ms(1000));
        assert_eq!(
            bucket.try_acquire(CAPACITY),
            Acquire::Denied,
            "after 1 s only 5 of {CAPACITY} tokens are back"
        );
        clock.set(ms(2000));
        assert_eq!(
            bucket.try_acquire(CAPACITY),
            Acquire::Granted,
            "after 2 s the bucket is full again"
        );
    }

    #[test]
    fn sustained_throughput_equals_the_refill_rate() {
        let (clock, mut bucket) = bucket();
        let mut admitted = 0;
        // 100 requests per second for 10 s, against 5 tokens/s and a burst of 10.
        for step in 0..1000 {
            clock.set(ms(10 * step));
            admitted += granted(&mut bucket, 1);
        }
        assert!(
            (59..=60).contains(&admitted),
            "over 10 s a saturated bucket admits its capacity ({CAPACITY}) plus 10 s × {RATE} \
             tokens/s = 60, but admitted {admitted}"
        );
    }
}
