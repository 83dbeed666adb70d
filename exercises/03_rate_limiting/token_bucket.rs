// Token bucket — a sustained rate with room for bursts, from an injected clock.
//
// Build `TokenBucket::try_acquire(n)`: a client may send a burst of up to `capacity` tokens after
// a quiet period, and `refill_per_sec` tokens per second sustained. The property: over ANY
// interval of length t, the tokens granted never exceed capacity + refill_per_sec × t — however
// long the bucket sat idle before — and a request is granted whenever the tokens earned (a new
// bucket starts full; at most `capacity` saved up) minus those already granted cover it. Time
// earns tokens continuously, fractions included: at 50 tokens/s, 10 ms earns half a token, and
// that half must not be lost. A denied request costs nothing. A request for more than `capacity`
// tokens could never succeed: answer `Acquire::TooLarge` at once so the caller does not wait
// forever. A request for 0 tokens is granted and takes nothing.
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
use sdlings_kit::rate_limiting;

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

    /// The tokens available right now (after refilling).
    pub fn available(&mut self) -> f64 {
        self.refill();
        self.tokens
    }

    // ---- Your part -------------------------------------------------------------------------

    /// Brings `tokens` up to date at `self.clock.now()`: adds the tokens earned since `updated`
    /// (fractions included), never beyond `capacity`, and moves `updated` to now.
    fn refill(&mut self) {
        todo!("add the tokens earned since self.updated")
    }

    /// Takes `n` tokens if the bucket (refilled up to now) holds at least `n`. Otherwise takes
    /// nothing: `Denied` if waiting could help, `TooLarge` if `n` exceeds the capacity.
    pub fn try_acquire(&mut self, n: u32) -> Acquire {
        todo!("take {n} tokens, or say why not")
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
    println!(
        "Token bucket: capacity {CAPACITY}, refill {RATE} tokens/s. One client, {} phases:\n",
        PHASES.len()
    );
    let acquire = |bucket: &mut TokenBucket<ManualClock>| bucket.try_acquire(1) == Acquire::Granted;
    rate_limiting::phases_lab(&mut bucket, &clock, &PHASES, BAR, acquire, |b| {
        b.available()
    });
    println!(
        "\nA batch of {} tokens: {:?} (it can never fit in a bucket of {CAPACITY}).",
        CAPACITY + 1,
        bucket.try_acquire(CAPACITY + 1)
    );
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

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
    fn an_idle_bucket_saves_up_to_its_capacity_and_never_earns_the_idle_time_twice() {
        let (clock, mut bucket) = bucket();
        granted(&mut bucket, 3);
        clock.set(Duration::from_secs(1800));
        assert_tokens(
            &mut bucket,
            f64::from(CAPACITY),
            "half an hour of refill is capped at the capacity (cap after adding)",
        );
        clock.set(Duration::from_secs(3600));
        assert_eq!(
            granted(&mut bucket, 1000),
            CAPACITY,
            "after an hour idle the client may burst {CAPACITY}, the capacity, not 18 000: the \
             full bucket's idle time is accounted for on every refill, and never credited twice"
        );
        clock.set(Duration::from_secs(3600) + ms(1));
        assert_eq!(
            bucket.try_acquire(1),
            Acquire::Denied,
            "1 ms after draining, only 0.005 tokens are back: the idle hour was already \
             accounted for (and capped) when the burst came, and must not be credited again"
        );
        clock.set(Duration::from_secs(3600) + ms(200));
        assert_eq!(
            granted(&mut bucket, 10),
            1,
            "200 ms after draining, exactly one token is back"
        );
    }

    #[test]
    fn fractions_of_a_token_accumulate_over_many_small_intervals() {
        // (capacity, tokens/s, poll every (ms), admitted over 100 polls)
        for (capacity, rate, every, expected) in [(5, 50.0, 10, 49..=51), (3, 3.0, 100, 29..=30)] {
            let clock = ManualClock::new();
            let mut bucket = TokenBucket::new(capacity, rate, clock.clone());
            granted(&mut bucket, capacity);
            let mut admitted = 0;
            for step in 1..=100 {
                clock.set(ms(every * step));
                admitted += granted(&mut bucket, 1);
            }
            assert!(
                expected.contains(&admitted),
                "polling every {every} ms at {rate} tokens/s (each poll earns {} token) should \
                 admit {expected:?} requests, but admitted {admitted}. 0 means sub-second \
                 intervals are truncated away (`as_secs()`); too few means the fraction left by \
                 a refill is dropped (integer tokens); far too many means time is counted twice \
                 (is `updated` moved on every refill, denied calls included?)",
                rate * every as f64 / 1000.0
            );
        }
    }

    #[test]
    fn a_request_takes_all_its_tokens_or_none_and_is_too_large_only_above_the_capacity() {
        use Acquire::*;
        // (what is asked, tokens in the bucket (of CAPACITY = 10), tokens asked, answer, left)
        let cases = [
            ("all there is", 3, 3, Granted, 0),
            ("more than there is", 3, 5, Denied, 3),
            ("the capacity, when full", 10, 10, Granted, 0),
            ("the capacity, when half full", 5, 10, Denied, 5),
            ("nothing, when empty", 0, 0, Granted, 0),
            ("over the capacity, when full", 10, 11, TooLarge, 10),
            ("over the capacity, when empty", 0, 11, TooLarge, 0),
        ];
        for (case, tokens, n, expected, left) in cases {
            let (clock, mut bucket) = bucket();
            granted(&mut bucket, CAPACITY);
            clock.set(ms(200) * tokens); // at 5 tokens/s, one token per 200 ms
            assert_eq!(
                bucket.try_acquire(n),
                expected,
                "{case}: {n} asked of {tokens}. A request takes all its tokens or none; TooLarge \
                 says the bucket can never hold it (Denied would invite a retry forever)"
            );
            assert_tokens(&mut bucket, f64::from(left), case);
        }
    }

    #[test]
    fn grants_exactly_what_capacity_plus_rate_times_elapsed_time_allows() {
        // (numerator, denominator) of the refill rate in tokens per second.
        const RATES: [(i128, i128); 6] = [(3, 10), (5, 2), (1, 7), (5, 1), (50, 1), (1000, 1)];
        sdlings_kit::property::for_seeds(300, |rng| {
            let (num, den) = RATES[rng.random_range(0..RATES.len())];
            let rate = num as f64 / den as f64;
            let capacity = [1, 2, rng.random_range(3..=20), 1000][rng.random_range(0..4)];
            let clock = ManualClock::new();
            let mut t = Duration::from_nanos(rng.random_range(0..10_000_000_000));
            clock.set(t);
            let mut bucket = TokenBucket::new(capacity, rate, clock.clone());
            // The reference, in exact integers: one token is `unit`, and a nanosecond earns
            // `num` (a second earns num/den tokens). It starts full.
            let unit: i128 = den * 1_000_000_000;
            let tolerance = unit / 1_000_000; // a millionth of a token: floating-point noise
            let full = i128::from(capacity) * unit;
            let mut tokens = full;
            let mut last = t;
            for i in 0..100 {
                clock.set(t);
                tokens = (tokens + (t - last).as_nanos() as i128 * num).min(full);
                last = t;
                let n: u32 = match rng.random_range(0..6) {
                    0 => rng.random_range(0..=capacity + 1),
                    1 => capacity,
                    _ => 1,
                };
                let need = i128::from(n) * unit;
                let actual = bucket.try_acquire(n);
                let have = tokens as f64 / unit as f64;
                let why = format!(
                    "capacity {capacity}, {rate} tokens/s: request {i} for {n} at {t:?} finds \
                     {have:.6} tokens (the capacity, plus what the rate earned since, minus what \
                     was granted; never above the capacity)"
                );
                if n > capacity {
                    assert_eq!(
                        actual,
                        Acquire::TooLarge,
                        "{why}: more than the bucket holds"
                    );
                } else if (tokens - need).abs() <= tolerance {
                    // A tie within floating-point noise: either answer is right.
                    if actual == Acquire::Granted {
                        tokens -= need;
                    }
                } else if tokens > need {
                    assert_eq!(actual, Acquire::Granted, "{why}: enough, so it is granted");
                    tokens -= need;
                } else {
                    assert_eq!(
                        actual,
                        Acquire::Denied,
                        "{why}: not enough, so it is denied and takes nothing"
                    );
                }
                if rng.random_range(0..3) == 0 {
                    let available = bucket.available();
                    assert!(
                        (available - tokens as f64 / unit as f64).abs() <= 1e-6,
                        "{why}; after it the bucket must hold {:.6} tokens, not {available:.6}",
                        tokens as f64 / unit as f64
                    );
                }
                t += rate_limiting::next_refill_gap(rng, rate, capacity);
            }
        });
    }
}
