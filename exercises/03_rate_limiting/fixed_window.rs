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
use sdlings_kit::lab::{Table, bar_chart};

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
    /// A limiter admitting `limit` requests per `window`.
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

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    // ---- Your part -------------------------------------------------------------------------

    /// Admits the request (returns `true`) if fewer than `limit` requests were admitted in the
    /// current window, counting it; otherwise returns `false` and counts nothing.
    pub fn try_acquire(&mut self) -> bool {
        todo!("admit or reject a request arriving at self.clock.now()")
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
/// The timeline shows two windows, in bars of a tenth of a window each.
const BARS: u32 = 20;

/// The most timestamps of `times` (sorted) that fall in any half-open span `[t, t + span)`.
fn worst_span(times: &[Duration], span: Duration) -> usize {
    let mut worst = 0;
    let mut first = 0;
    for (last, &t) in times.iter().enumerate() {
        while times[first] + span <= t {
            first += 1;
        }
        worst = worst.max(last - first + 1);
    }
    worst
}

/// Replays `arrivals` (sorted) against a fresh limiter; returns the admitted times.
fn replay(arrivals: &[Duration]) -> Vec<Duration> {
    let clock = ManualClock::new();
    let mut limiter = FixedWindow::new(LIMIT, WINDOW, clock.clone());
    let mut admitted = Vec::new();
    for &t in arrivals {
        clock.set(t);
        if limiter.try_acquire() {
            admitted.push(t);
        }
    }
    admitted
}

fn main() {
    assert!(
        BURST_SPREAD <= WINDOW,
        "the burst must fit around the boundary"
    );
    // The attack: REQUESTS_PER_BURST requests evenly spread over [w - spread, w + spread).
    let spread = BURST_SPREAD * 2;
    let burst: Vec<Duration> = (0..REQUESTS_PER_BURST)
        .map(|i| WINDOW - BURST_SPREAD + spread * i / REQUESTS_PER_BURST)
        .collect();
    // For comparison, the same number of requests spread evenly over two windows.
    let steady: Vec<Duration> = (0..REQUESTS_PER_BURST)
        .map(|i| WINDOW * 2 * i / REQUESTS_PER_BURST)
        .collect();

    println!(
        "Fixed window: {LIMIT} requests per {WINDOW:?}. Two clients send {REQUESTS_PER_BURST} \
         requests each: one evenly over two windows, one within ±{BURST_SPREAD:?} of the \
         boundary at {WINDOW:?}.\n"
    );
    let mut table = Table::new(&[
        "client",
        "requests sent",
        "admitted",
        "worst 1-window span",
        "vs limit",
    ]);
    for (name, arrivals) in [("steady", &steady), ("boundary burst", &burst)] {
        let admitted = replay(arrivals);
        let worst = worst_span(&admitted, WINDOW);
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
    let bar = WINDOW / (BARS / 2);
    println!("\nboundary burst: admitted requests per {bar:?} (| marks the start of a window)");
    let mut per_bar = vec![0u32; BARS as usize];
    for t in &admitted {
        per_bar[(t.as_nanos() / bar.as_nanos()) as usize] += 1;
    }
    let bars: Vec<(String, f64)> = per_bar
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let start = bar * i as u32;
            let mark = if (i as u32).is_multiple_of(BARS / 2) {
                "|"
            } else {
                " "
            };
            (format!("{mark}{:.2}s", start.as_secs_f64()), f64::from(n))
        })
        .collect();
    println!("{}", bar_chart(&bars, 40));
    let worst = worst_span(&admitted, WINDOW);
    if worst > LIMIT as usize {
        println!(
            "\nEach window admitted at most {LIMIT}, yet {worst} requests got through within \
             one window's length: the end of one window plus the start of the next."
        );
    }
}

#[cfg(test)]
mod tests {
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
    fn keeps_rejecting_until_the_window_ends() {
        let (clock, mut limiter) = limiter();
        assert_eq!(admitted(&mut limiter, LIMIT), LIMIT);
        for t in [1, 500, 999] {
            clock.set(ms(t));
            assert!(
                !limiter.try_acquire(),
                "at {t} ms the window [0 ms, 1000 ms) is still full, so the request is rejected"
            );
        }
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
    fn the_count_resets_in_every_new_window() {
        let (clock, mut limiter) = limiter();
        for window in 0..5u32 {
            clock.set(WINDOW * window + ms(10));
            assert_eq!(
                admitted(&mut limiter, LIMIT + 2),
                LIMIT,
                "window {window} must admit exactly {LIMIT} of {} requests",
                LIMIT + 2
            );
        }
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
}
