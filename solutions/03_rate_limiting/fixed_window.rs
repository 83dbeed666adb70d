// Fixed window — at most N requests per window, counted in windows aligned to the clock.
//
// Build `FixedWindow::try_acquire`: time is cut into windows of length `window` aligned to the
// clock's epoch — [0, w), [w, 2w), [2w, 3w)... — and each window admits at most `limit` requests.
// A request at exactly k·w already belongs to the new window. Windows do NOT start at a client's
// first request: every client's window resets at the same instants, which is what lets a shared
// store keep one counter per (client, window number). A rejected request changes nothing.
//
// Why it matters: this is the cheapest limiter there is — one counter and one timestamp per
// client — and the one behind `INCR ratelimit:{client}:{minute}` + `EXPIRE` in Redis and behind
// hourly API quotas that report an `X-RateLimit-Reset` time, like GitHub's REST API. Its
// weakness is the boundary: a client can spend its whole budget just before a reset and a whole
// new one just after, so 2×limit requests pass within a few milliseconds.
//
// Lab (runs once the tests pass): two clients send the same requests, one evenly, one in a burst
// around a window boundary. Each window admits at most LIMIT, yet the burster's "worst 1-window
// span" reaches 2×LIMIT. Widen BURST_SPREAD: the spike spreads out on the timeline, but the worst
// span stays at 2×LIMIT while the client wants more than LIMIT on each side of the boundary. Set
// REQUESTS_PER_BURST to LIMIT and it drops back to LIMIT.

use std::time::Duration;

use sdlings_kit::clock::{Clock, ManualClock};
use sdlings_kit::lab::Table;
use sdlings_kit::rate_limiting;

pub struct FixedWindow<C: Clock> {
    clock: C,
    limit: u32,
    window: Duration,
    /// Start of the window that `count` belongs to. Starts at zero, the clock's epoch.
    window_start: Duration,
    /// Requests admitted in that window so far.
    count: u32,
}

impl<C: Clock> FixedWindow<C> {
    /// A limiter admitting `limit` requests per `window`. A limit of 0 admits nothing (a
    /// blocked client), also at the start of every new window.
    pub fn new(limit: u32, window: Duration, clock: C) -> Self {
        assert!(!window.is_zero(), "a rate-limit window must not be empty");
        FixedWindow {
            clock,
            limit,
            window,
            window_start: Duration::ZERO,
            count: 0,
        }
    }

    // ---- Your part -------------------------------------------------------------------------

    /// Admits the request (returns `true`) if fewer than `limit` requests were admitted in the
    /// current window, counting it; otherwise returns `false` and counts nothing.
    pub fn try_acquire(&mut self) -> bool {
        let now = self.clock.now();
        // The window containing `now`, aligned to the epoch: floor(now / window) × window.
        // Rounding down like this (rather than "the previous start + window") also lands in the
        // right window after an idle gap of several windows.
        let window_nanos = self.window.as_nanos();
        let index = now.as_nanos() / window_nanos;
        let start = Duration::from_nanos(
            u64::try_from(index * window_nanos).expect("a Duration from the clock fits in u64 ns"),
        );
        if start != self.window_start {
            self.window_start = start;
            self.count = 0;
        }
        if self.count < self.limit {
            self.count += 1;
            true
        } else {
            false
        }
    }
}

// ---- Lab -------------------------------------------------------------------------------------
// A simulated clock (a ManualClock moved by the lab): the run is instant and exactly repeatable.

/// Requests admitted per window.
const LIMIT: u32 = 10;
const WINDOW: Duration = Duration::from_secs(1);
/// The client bursts around the boundary at 1 × WINDOW: it fires from BURST_SPREAD before the
/// boundary to BURST_SPREAD after it. Try 400 ms to see the spike spread out.
const BURST_SPREAD: Duration = Duration::from_millis(50);
/// Requests the client fires during the burst.
const REQUESTS_PER_BURST: u32 = 40;

fn main() {
    let burst = rate_limiting::boundary_burst(WINDOW, BURST_SPREAD, REQUESTS_PER_BURST);
    let steady = rate_limiting::evenly(REQUESTS_PER_BURST, WINDOW * 2);
    let replay = |arrivals: &[Duration]| {
        let clock = ManualClock::new();
        let mut limiter = FixedWindow::new(LIMIT, WINDOW, clock.clone());
        rate_limiting::replay(arrivals, &clock, || limiter.try_acquire())
    };
    println!(
        "Fixed window: {LIMIT} requests per {WINDOW:?}. Two clients send {REQUESTS_PER_BURST} \
         requests each: one evenly over two windows, one within ±{BURST_SPREAD:?} of the \
         boundary at {WINDOW:?}.\n"
    );
    let mut table = Table::new(&[
        "client",
        "sent",
        "admitted",
        "worst 1-window span",
        "vs limit",
    ]);
    for (name, arrivals) in [("steady", &steady), ("boundary burst", &burst)] {
        let admitted = replay(arrivals);
        let worst = rate_limiting::worst_span(&admitted, WINDOW);
        table.row(&[
            name.to_string(),
            arrivals.len().to_string(),
            admitted.len().to_string(),
            worst.to_string(),
            format!("{:.1}×", worst as f64 / f64::from(LIMIT)),
        ]);
    }
    table.print();
    let admitted = replay(&burst);
    println!("\nboundary burst: admitted per 100 ms (| marks the start of a window)");
    println!(
        "{}",
        rate_limiting::timeline(&admitted, WINDOW / 10, 20, WINDOW)
    );
    println!(
        "\nEach window admitted at most {LIMIT}, yet {} got through within one window's length: \
         the end of one window plus the start of the next.",
        rate_limiting::worst_span(&admitted, WINDOW)
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::RngExt;

    use super::*;

    const LIMIT: u32 = 3;
    const WINDOW: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn limiter() -> (ManualClock, FixedWindow<ManualClock>) {
        let clock = ManualClock::new();
        (clock.clone(), FixedWindow::new(LIMIT, WINDOW, clock))
    }

    /// Calls `try_acquire` `n` times at the current time; returns how many were admitted.
    fn admitted(limiter: &mut FixedWindow<ManualClock>, n: u32) -> u32 {
        (0..n).filter(|_| limiter.try_acquire()).count() as u32
    }

    #[test]
    fn admits_exactly_limit_requests_in_a_window() {
        let (_clock, mut limiter) = limiter();
        for i in 1..=LIMIT {
            assert!(
                limiter.try_acquire(),
                "request {i} of {LIMIT} is within the limit and must be admitted"
            );
        }
        assert!(
            !limiter.try_acquire(),
            "request {} is over the limit of {LIMIT} per window and must be rejected (is the \
             check `count <= limit` instead of `count < limit`?)",
            LIMIT + 1
        );
    }

    #[test]
    fn a_new_window_starts_exactly_at_the_boundary() {
        let (clock, mut limiter) = limiter();
        assert_eq!(admitted(&mut limiter, LIMIT), LIMIT);
        clock.set(WINDOW);
        assert!(
            limiter.try_acquire(),
            "at exactly 1000 ms the window [1000 ms, 2000 ms) begins and has room: a request at \
             the boundary belongs to the new window (compare with `>=`, not `>`)"
        );
    }

    #[test]
    fn windows_are_aligned_to_the_clock_not_to_the_first_request() {
        let (clock, mut limiter) = limiter();
        clock.set(ms(700));
        assert_eq!(admitted(&mut limiter, LIMIT), LIMIT);
        clock.set(ms(1000));
        assert_eq!(
            admitted(&mut limiter, LIMIT),
            LIMIT,
            "the first request came at 700 ms, but windows are aligned to the clock: the window \
             [0, 1000 ms) ended at 1000 ms, not at 1700 ms"
        );
        clock.set(ms(1700));
        assert!(
            !limiter.try_acquire(),
            "1700 ms is still in the window [1000 ms, 2000 ms), which is already full; a window \
             that starts at each client's first request would have reset here"
        );
        clock.set(ms(2000));
        assert!(limiter.try_acquire(), "2000 ms starts the next window");
    }

    #[test]
    fn a_limiter_created_mid_window_uses_the_clocks_windows() {
        let clock = ManualClock::new();
        clock.set(ms(5_300));
        let mut limiter = FixedWindow::new(LIMIT, WINDOW, clock.clone());
        assert_eq!(admitted(&mut limiter, LIMIT + 1), LIMIT);
        clock.set(ms(6_000));
        assert!(
            limiter.try_acquire(),
            "the first request at 5300 ms falls in the window [5000 ms, 6000 ms), so 6000 ms \
             starts a new one"
        );
    }

    #[test]
    fn after_a_long_idle_gap_the_window_is_the_current_one() {
        let (clock, mut limiter) = limiter();
        assert_eq!(admitted(&mut limiter, LIMIT), LIMIT);
        clock.set(ms(10_500));
        assert_eq!(
            admitted(&mut limiter, LIMIT + 5),
            LIMIT,
            "after 10 idle windows, the window [10 s, 11 s) admits exactly {LIMIT}; stepping the \
             window start by one window per call leaves it in the past, and every call then \
             looks like a fresh window"
        );
        clock.set(ms(10_999));
        assert!(
            !limiter.try_acquire(),
            "10 999 ms is still in the full window [10 s, 11 s)"
        );
        clock.set(ms(11_000));
        assert!(limiter.try_acquire(), "11 s starts the next window");
    }

    #[test]
    fn rejected_requests_do_not_count_against_the_next_window() {
        let (clock, mut limiter) = limiter();
        assert_eq!(admitted(&mut limiter, LIMIT + 20), LIMIT);
        clock.set(ms(1_000));
        assert_eq!(
            admitted(&mut limiter, LIMIT),
            LIMIT,
            "the 20 rejected requests in the first window must not eat into the next one"
        );
    }

    #[test]
    fn admits_twice_the_limit_across_a_boundary_which_is_the_known_weakness() {
        let (clock, mut limiter) = limiter();
        clock.set(ms(999));
        let before = admitted(&mut limiter, LIMIT);
        clock.set(ms(1_000));
        let after = admitted(&mut limiter, LIMIT);
        assert_eq!(
            before + after,
            2 * LIMIT,
            "a fixed window admits {LIMIT} at 999 ms and {LIMIT} more at 1000 ms: 2×limit \
             within 1 ms. That is the algorithm's contract (and its weakness), not a bug"
        );
    }

    #[test]
    fn a_limit_of_zero_admits_nothing_in_any_window() {
        let clock = ManualClock::new();
        let mut limiter = FixedWindow::new(0, WINDOW, clock.clone());
        for t in [0, 1, 999, 1_000, 1_001, 7_000, 3_600_000] {
            clock.set(ms(t));
            assert!(
                !limiter.try_acquire(),
                "a limit of 0 admits nothing, also as the first request of a new window (at \
                 {t} ms)"
            );
        }
    }

    #[test]
    fn short_windows_end_exactly_on_their_boundaries() {
        let clock = ManualClock::new();
        let mut limiter = FixedWindow::new(1, ms(100), clock.clone());
        for k in 0..50u64 {
            clock.set(ms(100 * k));
            assert!(
                limiter.try_acquire(),
                "{} ms is exactly the start of window {k} of 100 ms, which is empty: the \
                 window number is an exact integer division of the time by the window (a \
                 division of f64 seconds gives 2.9999… for 300 ms / 100 ms)",
                100 * k
            );
            clock.set(ms(100 * k + 99));
            assert!(
                !limiter.try_acquire(),
                "{} ms is still in window {k} of 100 ms, which already admitted its 1 request",
                100 * k + 99
            );
        }
    }

    #[test]
    fn an_hourly_quota_of_a_thousand_resets_on_the_hour() {
        let clock = ManualClock::new();
        let hour = Duration::from_secs(3600);
        let mut limiter = FixedWindow::new(1000, hour, clock.clone());
        for i in 0..1000u64 {
            clock.set(Duration::from_secs(3 * i));
            assert!(
                limiter.try_acquire(),
                "request {} of 1000 in the first hour is within the quota",
                i + 1
            );
        }
        clock.set(Duration::from_secs(3599));
        assert!(
            !limiter.try_acquire(),
            "the 1001st request of the hour [0 s, 3600 s) is over the quota"
        );
        clock.set(hour);
        assert_eq!(
            admitted(&mut limiter, 1001),
            1000,
            "at 3600 s a new hour begins with a fresh quota of 1000"
        );
    }

    #[test]
    fn matches_a_count_per_window_number_for_any_window_and_limit() {
        sdlings_kit::property::for_seeds(300, |rng| {
            let window = rate_limiting::random_window(rng);
            let limit = rate_limiting::random_limit(rng, 20);
            // The limiter may be created at any time, not only at the clock's epoch.
            let clock = ManualClock::new();
            let mut t = Duration::from_nanos(rng.random_range(0..=3 * window.as_nanos() as u64));
            clock.set(t);
            let mut limiter = FixedWindow::new(limit, window, clock.clone());
            // The reference: requests admitted per window number, window k = [k·w, (k+1)·w).
            let mut per_window: HashMap<u128, u32> = HashMap::new();
            for i in 0..80 {
                clock.set(t);
                let k = t.as_nanos() / window.as_nanos();
                let count = per_window.entry(k).or_default();
                let expected = *count < limit;
                *count += u32::from(expected);
                assert_eq!(
                    limiter.try_acquire(),
                    expected,
                    "window {window:?}, limit {limit}: request {i} at {t:?} falls in window \
                     number {k} = [{:?}, {:?}), which had admitted {} before it, so it must \
                     be {}",
                    window * k as u32,
                    window * (k as u32 + 1),
                    *count - u32::from(expected),
                    if expected { "admitted" } else { "rejected" }
                );
                t = rate_limiting::next_arrival(rng, t, window);
            }
        });
    }
}
