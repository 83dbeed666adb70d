// Sliding window counter — the sliding log's accuracy, near enough, for the fixed window's memory.
//
// Build `SlidingWindowCounter`: two counters, the requests admitted in the current fixed window
// and in the previous one (windows aligned to the clock, as in `fixed_window`). To judge a request
// at `now`, estimate the admitted requests in the sliding window (now − w, now] by assuming the
// previous window's were spread evenly over it:
//
//     estimate = previous × (share of previous window still inside the sliding window) + current
//
// 25% into the current window, 75% of the previous one is still inside, so it counts for 75%. The
// request is admitted if `estimate + 1 <= limit` (counting it, the estimate stays within the
// limit); a rejected request is not counted. Moving into the next window, current becomes
// previous — but if more than one window has passed, the window just before now's was empty.
//
// Why it matters: Cloudflare described rate limiting millions of domains this way — two counters
// per client, no timestamps, a small error against an exact log — as do many Redis limiters.
//
// Lab (runs once the tests pass): the same traffic against an exact sliding window and your
// counter. Steady and random traffic are admitted within a few percent of exact, with 16 bytes of
// state instead of LIMIT timestamps; "front-loaded" and "bursty" show where the even-spread
// assumption errs (too strict, too lenient). At LOAD = 0.5 the error vanishes for steady clients.

use std::time::Duration;

use sdlings_kit::clock::{Clock, ManualClock};
use sdlings_kit::lab::{Table, percent};
use sdlings_kit::rate_limiting;

pub struct SlidingWindowCounter<C: Clock> {
    clock: C,
    limit: u32,
    window: Duration,
    /// Number of the current window: window k covers [k × window, (k + 1) × window).
    current_window: u64,
    /// Requests admitted in the current window.
    current_count: u32,
    /// Requests admitted in window `current_window - 1`.
    previous_count: u32,
}

impl<C: Clock> SlidingWindowCounter<C> {
    /// A limiter admitting about `limit` requests in any window of length `window`. A limit of
    /// 0 admits nothing.
    pub fn new(limit: u32, window: Duration, clock: C) -> Self {
        assert!(!window.is_zero(), "a rate-limit window must not be empty");
        SlidingWindowCounter {
            clock,
            limit,
            window,
            current_window: 0,
            current_count: 0,
            previous_count: 0,
        }
    }

    /// The number of the window containing `now`.
    fn window_of(&self, now: Duration) -> u64 {
        u64::try_from(now.as_nanos() / self.window.as_nanos()).expect("fits: now fits in u64 ns")
    }

    /// When window `index` starts.
    fn start_of(&self, index: u64) -> Duration {
        self.window * u32::try_from(index).expect("fewer than 4 billion windows")
    }

    // ---- Your part -------------------------------------------------------------------------

    /// Moves the counters forward so that `current_window` is the window containing `now`:
    /// - still the same window: nothing changes;
    /// - the next window: the current count becomes the previous one, and current starts at 0;
    /// - two or more windows later: both counts are 0 (the window just before `now`'s was empty).
    fn roll(&mut self, now: Duration) {
        todo!("make the current window the one containing {now:?}")
    }

    /// The estimated number of admitted requests in the sliding window (now − window, now],
    /// not counting a new one. Call it after `roll(now)`.
    fn estimate(&self, now: Duration) -> f64 {
        todo!("previous weighted by its overlap, plus current, at {now:?}")
    }

    /// Admits the request (returns `true`, counting it in the current window) if the estimate
    /// plus this request stays within the limit; otherwise returns `false` and counts nothing.
    pub fn try_acquire(&mut self) -> bool {
        todo!("admit or reject a request arriving at self.clock.now()")
    }
}

// ---- Lab -------------------------------------------------------------------------------------
// A simulated clock (a ManualClock moved by the lab): the run is instant and exactly repeatable.

/// Requests admitted per window.
const LIMIT: u32 = 50;
const WINDOW: Duration = Duration::from_secs(1);
/// Simulated duration of each traffic pattern.
const DURATION: Duration = Duration::from_secs(60);
/// Average request rate of the random patterns, as a multiple of the limit (1.5 = 50% too much).
const LOAD: f64 = 1.5;
const SEED: u64 = 2017;

/// BASELINE FOR COMPARISON, NOT AN ANSWER: exact counting by brute force over a list of every
/// admitted time (it never forgets anything, which is fine for a one-minute lab).
#[derive(Default)]
struct History {
    admitted: Vec<Duration>,
}

impl History {
    /// How many of the recorded times lie in the sliding window (now − WINDOW, now].
    fn in_window(&self, now: Duration) -> usize {
        self.admitted
            .iter()
            .rev()
            .take_while(|&&t| t + WINDOW > now)
            .count()
    }

    /// The exact sliding-window limiter: admit if fewer than LIMIT are in the window.
    fn try_acquire(&mut self, now: Duration) -> bool {
        let admit = self.in_window(now) < LIMIT as usize;
        if admit {
            self.admitted.push(now);
        }
        admit
    }
}

fn main() {
    println!(
        "{LIMIT} requests per {WINDOW:?}; each pattern runs for {DURATION:?} of simulated time \
         (random ones at {LOAD}× the limit).\n"
    );
    let mut table = Table::new(&[
        "pattern",
        "requests",
        "exact admits",
        "counter admits",
        "difference",
        "admitted over the limit",
        "worst span (counter)",
    ]);
    for (name, arrivals) in rate_limiting::traffic_patterns(LIMIT, WINDOW, DURATION, LOAD, SEED) {
        let clock = ManualClock::new();
        let mut counter = SlidingWindowCounter::new(LIMIT, WINDOW, clock.clone());
        let mut exact = History::default();
        // The counter's own admissions, to judge each of its decisions against the truth.
        let mut judged = History::default();
        let mut over = 0u64;
        for &t in &arrivals {
            clock.set(t);
            exact.try_acquire(t);
            let had_room = judged.in_window(t) < LIMIT as usize;
            if counter.try_acquire() {
                over += u64::from(!had_room);
                judged.admitted.push(t);
            }
        }
        let total = arrivals.len() as u64;
        let (e, c) = (exact.admitted.len() as f64, judged.admitted.len() as f64);
        table.row(&[
            name.to_string(),
            total.to_string(),
            exact.admitted.len().to_string(),
            judged.admitted.len().to_string(),
            format!("{:+.1}%", (c - e) * 100.0 / e.max(1.0)),
            format!("{over} ({})", percent(over, total)),
            rate_limiting::worst_span(&judged.admitted, WINDOW).to_string(),
        ]);
    }
    table.print();
    println!(
        "\n\"admitted over the limit\": admitted although {LIMIT} requests were already in the \
         last {WINDOW:?}. Front-loaded windows still weigh a lot after their requests are gone \
         (the counter is too strict); clustered requests near the end of a window weigh too \
         little (too lenient: the worst span exceeds the limit)."
    );
    println!(
        "State per client: the exact log holds up to {LIMIT} timestamps ({} B); the counter \
         holds {} B whatever the limit.",
        LIMIT as usize * std::mem::size_of::<Duration>(),
        std::mem::size_of::<u64>() + 2 * std::mem::size_of::<u32>()
    );
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    const LIMIT: u32 = 10;
    const WINDOW: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn limiter() -> (ManualClock, SlidingWindowCounter<ManualClock>) {
        let clock = ManualClock::new();
        (
            clock.clone(),
            SlidingWindowCounter::new(LIMIT, WINDOW, clock),
        )
    }

    /// Calls `try_acquire` `n` times at the current time; returns how many were admitted.
    fn admitted(limiter: &mut SlidingWindowCounter<ManualClock>, n: u32) -> u32 {
        (0..n).filter(|_| limiter.try_acquire()).count() as u32
    }

    fn assert_close(actual: f64, expected: f64, why: &str) {
        assert!(
            (actual - expected).abs() < 1e-9,
            "estimate was {actual}, expected {expected}: {why}"
        );
    }

    #[test]
    fn admits_limit_requests_in_the_first_window_then_rejects() {
        let (_clock, mut limiter) = limiter();
        assert_eq!(
            admitted(&mut limiter, LIMIT),
            LIMIT,
            "with no previous window, the first {LIMIT} requests are all within the limit"
        );
        assert!(
            !limiter.try_acquire(),
            "request {} is over the limit",
            LIMIT + 1
        );
    }

    #[test]
    fn roll_moves_the_current_count_into_previous_at_the_next_window() {
        let (_clock, mut limiter) = limiter();
        limiter.current_count = 7;
        limiter.roll(ms(999));
        assert_eq!(
            (
                limiter.current_window,
                limiter.previous_count,
                limiter.current_count
            ),
            (0, 0, 7),
            "999 ms is still window 0: roll must change nothing"
        );
        limiter.roll(ms(1000));
        assert_eq!(
            (
                limiter.current_window,
                limiter.previous_count,
                limiter.current_count
            ),
            (1, 7, 0),
            "1000 ms starts window 1: the 7 requests of window 0 become the previous count"
        );
    }

    #[test]
    fn roll_forgets_both_counts_when_a_whole_window_passed_without_requests() {
        let (_clock, mut limiter) = limiter();
        limiter.previous_count = 4;
        limiter.current_count = 9;
        limiter.roll(ms(2250));
        assert_eq!(
            (
                limiter.current_window,
                limiter.previous_count,
                limiter.current_count
            ),
            (2, 0, 0),
            "at 2250 ms the current window is 2 and the previous one is window 1, which saw no \
             requests: the 9 requests of window 0 must not be carried over as 'previous'"
        );
    }

    #[test]
    fn estimate_weights_the_previous_window_by_its_overlap_with_the_sliding_window() {
        let (_clock, mut limiter) = limiter();
        limiter.current_window = 1;
        limiter.previous_count = 8;
        limiter.current_count = 2;
        assert_close(
            limiter.estimate(ms(1250)),
            8.0 * 0.75 + 2.0,
            "at 1250 ms the sliding window (250 ms, 1250 ms] still covers 75% of window 0, so its \
             8 requests count as 6, plus the 2 of the current window",
        );
        assert_close(
            limiter.estimate(ms(1750)),
            8.0 * 0.25 + 2.0,
            "at 1750 ms only the last 25% of window 0 is inside the sliding window",
        );
        assert_close(
            limiter.estimate(ms(1000)),
            8.0 + 2.0,
            "at the very start of window 1 the sliding window still covers all of window 0",
        );
    }

    #[test]
    fn a_full_previous_window_leaves_only_the_room_its_weight_frees() {
        let (clock, mut limiter) = limiter();
        assert_eq!(admitted(&mut limiter, LIMIT), LIMIT);
        clock.set(ms(1250));
        assert_eq!(
            admitted(&mut limiter, LIMIT),
            2,
            "at 1250 ms the previous window's {LIMIT} requests weigh 75%: 7.5, so 2 more fit \
             (8.5 and 9.5) and a third would make 10.5. A fixed window would admit {LIMIT}; \
             weighting by the elapsed share instead of the remaining one would admit 7"
        );
        clock.set(ms(1750));
        assert_eq!(
            admitted(&mut limiter, LIMIT),
            5,
            "at 1750 ms the previous window weighs 25% (2.5) and 2 requests are in the current \
             one: 4.5, so 5 more fit"
        );
    }

    #[test]
    fn smooths_the_boundary_burst_of_a_fixed_window() {
        let (clock, mut limiter) = limiter();
        clock.set(ms(750));
        assert_eq!(admitted(&mut limiter, LIMIT), LIMIT);
        clock.set(ms(1000));
        assert_eq!(
            admitted(&mut limiter, LIMIT),
            0,
            "right after the boundary the {LIMIT} requests from 750 ms still count in full: no \
             fresh budget at the boundary"
        );
        clock.set(ms(1250));
        assert_eq!(
            admitted(&mut limiter, LIMIT),
            2,
            "at 1250 ms window 0 weighs 75% (7.5), so only 2 fit"
        );
    }

    #[test]
    fn after_an_idle_gap_the_stale_previous_count_is_not_used() {
        let (clock, mut limiter) = limiter();
        assert_eq!(admitted(&mut limiter, LIMIT), LIMIT);
        clock.set(ms(2250));
        assert_eq!(
            admitted(&mut limiter, LIMIT + 1),
            LIMIT,
            "nothing was admitted in window 1, so at 2250 ms the last second holds no requests \
             and a full {LIMIT} fit; carrying window 0's count over as 'previous' would admit \
             only 2"
        );
    }

    #[test]
    fn rejected_requests_are_not_counted() {
        let (clock, mut limiter) = limiter();
        assert_eq!(admitted(&mut limiter, LIMIT), LIMIT);
        clock.set(ms(500));
        assert_eq!(admitted(&mut limiter, 100), 0, "window 0 is full");
        assert_eq!(
            limiter.current_count, LIMIT,
            "the 100 rejected requests must not be counted"
        );
        clock.set(ms(1500));
        assert_eq!(
            admitted(&mut limiter, LIMIT),
            5,
            "at 1500 ms window 0 weighs 50%: its {LIMIT} admitted requests count as 5, so 5 \
             more fit (had the rejected ones been counted, none would)"
        );
    }

    #[test]
    fn a_limit_of_zero_admits_nothing() {
        let clock = ManualClock::new();
        let mut limiter = SlidingWindowCounter::new(0, WINDOW, clock.clone());
        for t in [0, 1, 1_000, 2_500, 60_000] {
            clock.set(ms(t));
            assert!(
                !limiter.try_acquire(),
                "a limit of 0 admits nothing (at {t} ms)"
            );
        }
    }

    #[test]
    fn a_seven_second_window_weights_the_previous_one_by_what_remains_of_it() {
        let clock = ManualClock::new();
        let window = Duration::from_secs(7);
        let mut limiter = SlidingWindowCounter::new(4, window, clock.clone());
        clock.set(ms(6_000));
        assert_eq!(
            admitted(&mut limiter, 4),
            4,
            "window 0 = [0 s, 7 s) admits 4"
        );
        clock.set(ms(8_750));
        assert_eq!(
            admitted(&mut limiter, 4),
            1,
            "at 8.75 s, 1.75 s into window 1, the sliding window (1.75 s, 8.75 s] still covers \
             75% of window 0: its 4 requests weigh 3, so exactly 1 more fits"
        );
        clock.set(ms(12_250));
        assert_eq!(
            admitted(&mut limiter, 4),
            2,
            "at 12.25 s, 5.25 s into window 1, only 25% of window 0 remains: its 4 requests \
             weigh 1, plus the 1 admitted in window 1 makes 2, so 2 more fit"
        );
    }

    #[test]
    fn matches_the_weighted_count_of_the_admitted_history_for_any_window_and_limit() {
        sdlings_kit::property::for_seeds(300, |rng| {
            let window = rate_limiting::random_window(rng);
            let limit = rate_limiting::random_limit(rng, 30);
            let clock = ManualClock::new();
            let mut limiter = SlidingWindowCounter::new(limit, window, clock.clone());
            let w = window.as_nanos() as i128;
            // The reference: every admitted time, and the estimate recomputed from it in exact
            // integer nanoseconds. Window k = [k·w, (k+1)·w).
            let mut accepted: Vec<Duration> = Vec::new();
            let mut t = Duration::ZERO;
            for i in 0..80 {
                clock.set(t);
                let k = t.as_nanos() as i128 / w;
                let elapsed = t.as_nanos() as i128 - k * w;
                let in_window = |j: i128| {
                    accepted
                        .iter()
                        .filter(|a| a.as_nanos() as i128 / w == j)
                        .count()
                };
                let (previous, current) = (in_window(k - 1) as i128, in_window(k) as i128);
                // estimate + 1 <= limit, multiplied through by w:
                let left = previous * (w - elapsed) + current * w + w;
                let right = i128::from(limit) * w;
                let actual = limiter.try_acquire();
                // Within a millionth of a request of the limit, floating point may go either way.
                if (left - right).abs() > w / 1_000_000 {
                    let expected = left <= right;
                    assert_eq!(
                        actual,
                        expected,
                        "window {window:?}, limit {limit}: request {i} at {t:?} is {:.3} of the \
                         way into window {k}; window {} admitted {previous} and window {k} \
                         {current}, so the estimate is {previous} × {:.3} + {current} = {:.3}, \
                         and the request must be {}",
                        elapsed as f64 / w as f64,
                        k - 1,
                        1.0 - elapsed as f64 / w as f64,
                        (previous * (w - elapsed) + current * w) as f64 / w as f64,
                        if expected { "admitted" } else { "rejected" }
                    );
                }
                if actual {
                    accepted.push(t);
                }
                let next_boundary = Duration::from_nanos(((k + 1) * w) as u64);
                // Requests also arrive at arbitrary nanoseconds, not only at neat fractions of
                // the window, so the estimate can land anywhere between two whole numbers,
                // sometimes a hair from the limit: the elapsed share must be exact to the ns.
                let anywhere = |rng: &mut rand::rngs::StdRng| {
                    Duration::from_nanos(rng.random_range(0..w as u64))
                };
                t = match rng.random_range(0..11) {
                    0 | 1 => t,
                    2 | 3 => t + window / rng.random_range(3..20),
                    4 => next_boundary,
                    5 => next_boundary + Duration::from_nanos(1),
                    6 => next_boundary + window / rng.random_range(2..8),
                    7 => next_boundary + window + window / rng.random_range(2..8),
                    8 => t + anywhere(rng) / 4,
                    9 => next_boundary + anywhere(rng),
                    _ => t + window * rng.random_range(2..6),
                };
            }
        });
    }
}
