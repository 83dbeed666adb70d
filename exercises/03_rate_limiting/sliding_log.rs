// Sliding log — an exact limit over the last window, at the price of one timestamp per request.
//
// Build `SlidingLog`: it keeps the times of the requests it admitted, oldest first, and admits a
// new request at time `now` only if fewer than `limit` of them lie in the last window, the
// half-open span (now − window, now]. A timestamp exactly `window` old has left the window, so a
// request admitted at t frees its slot at t + window exactly. Timestamps that have left the
// window are dropped from the log (not just skipped), so the log never holds more than `limit`
// entries. A rejected request is NOT recorded: it consumed nothing, and recording it would let a
// client that keeps hammering lock itself out forever.
//
// Why it matters: this is the exact answer to "at most N requests in any window of length w" —
// no boundary burst, unlike a fixed window — and is what a Redis sorted set per client gives you
// (ZADD now, ZREMRANGEBYSCORE to drop old entries, ZCARD to count). Its cost is memory: one
// timestamp per admitted request per client, so a limit of 10 000/hour keeps up to 10 000 entries
// for every busy client.
//
// Lab (runs once the tests pass): the boundary burst from `fixed_window` replayed against both
// algorithms. The sliding log's worst span never exceeds LIMIT. Raise LIMIT and watch the
// "memory per client" column grow with it, while the fixed window's stays constant.

use std::collections::VecDeque;
use std::time::Duration;

use sdlings_kit::clock::{Clock, ManualClock};
use sdlings_kit::rate_limiting;

pub struct SlidingLog<C: Clock> {
    clock: C,
    limit: u32,
    window: Duration,
    /// When each admitted request arrived, oldest at the front.
    log: VecDeque<Duration>,
}

impl<C: Clock> SlidingLog<C> {
    /// A limiter admitting at most `limit` requests in any window of length `window`. A limit
    /// of 0 admits nothing.
    pub fn new(limit: u32, window: Duration, clock: C) -> Self {
        assert!(!window.is_zero(), "a rate-limit window must not be empty");
        SlidingLog {
            clock,
            limit,
            window,
            log: VecDeque::with_capacity(limit as usize),
        }
    }

    /// Timestamps held in memory right now.
    pub fn log_len(&self) -> usize {
        self.log.len()
    }

    // ---- Your part -------------------------------------------------------------------------

    /// Drops from the front of the log every timestamp that is no longer in the window ending at
    /// `now`, i.e. every `t` with `t + window <= now`. Careful: `now - window` underflows (and
    /// panics) while `now` is smaller than the window.
    fn evict_expired(&mut self, now: Duration) {
        todo!("drop the timestamps that have left the window ending at {now:?}")
    }

    /// Admits the request (returns `true`, recording its time) if fewer than `limit` requests
    /// were admitted in the last window; otherwise returns `false` and records nothing.
    pub fn try_acquire(&mut self) -> bool {
        todo!("admit or reject a request arriving at self.clock.now()")
    }
}

// ---- Lab -------------------------------------------------------------------------------------
// A simulated clock (a ManualClock moved by the lab): the run is instant and exactly repeatable.

/// Requests admitted per window.
const LIMIT: u32 = 10;
const WINDOW: Duration = Duration::from_secs(1);
/// The client fires REQUESTS_PER_BURST requests within ±BURST_SPREAD of the boundary at WINDOW,
/// then STEADY_RPS requests a second until the end of the timeline (three windows).
const BURST_SPREAD: Duration = Duration::from_millis(50);
const REQUESTS_PER_BURST: u32 = 40;
const STEADY_RPS: u32 = 20;

/// BASELINE FOR COMPARISON: the fixed window from the previous exercise, in a few lines.
#[derive(Default)]
struct FixedWindowBaseline {
    window_index: u128,
    count: u32,
}

impl FixedWindowBaseline {
    fn try_acquire(&mut self, now: Duration) -> bool {
        let index = now.as_nanos() / WINDOW.as_nanos();
        if index != self.window_index {
            (self.window_index, self.count) = (index, 0);
        }
        let admit = self.count < LIMIT;
        self.count += u32::from(admit);
        admit
    }
}

fn main() {
    let burst = (BURST_SPREAD, REQUESTS_PER_BURST);
    let arrivals = rate_limiting::burst_then_steady(WINDOW, burst, STEADY_RPS, WINDOW * 3);
    let mut fixed = FixedWindowBaseline::default();
    let by_fixed: Vec<Duration> = arrivals
        .iter()
        .copied()
        .filter(|&t| fixed.try_acquire(t))
        .collect();
    let clock = ManualClock::new();
    let mut log = SlidingLog::new(LIMIT, WINDOW, clock.clone());
    let mut peak_log = 0;
    let by_log = rate_limiting::replay(&arrivals, &clock, || {
        let admitted = log.try_acquire();
        peak_log = peak_log.max(log.log_len());
        admitted
    });
    let fixed = (&by_fixed[..], std::mem::size_of::<FixedWindowBaseline>());
    rate_limiting::log_vs_fixed_lab(&arrivals, LIMIT, WINDOW, fixed, (&by_log, peak_log));
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    const LIMIT: u32 = 3;
    const WINDOW: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn limiter() -> (ManualClock, SlidingLog<ManualClock>) {
        let clock = ManualClock::new();
        (clock.clone(), SlidingLog::new(LIMIT, WINDOW, clock))
    }

    /// Calls `try_acquire` `n` times at the current time; returns how many were admitted.
    fn admitted(limiter: &mut SlidingLog<ManualClock>, n: u32) -> u32 {
        (0..n).filter(|_| limiter.try_acquire()).count() as u32
    }

    #[test]
    fn admits_limit_requests_then_rejects() {
        let (_clock, mut limiter) = limiter();
        for i in 1..=LIMIT {
            assert!(
                limiter.try_acquire(),
                "request {i} of {LIMIT} is within the limit and must be admitted"
            );
        }
        assert!(
            !limiter.try_acquire(),
            "request {} would make {} in the last second, over the limit of {LIMIT}",
            LIMIT + 1,
            LIMIT + 1
        );
    }

    #[test]
    fn evict_expired_drops_timestamps_exactly_one_window_old() {
        let (_clock, mut limiter) = limiter();
        limiter.log.extend([ms(0), ms(300), ms(600)]);
        limiter.evict_expired(ms(650));
        assert_eq!(
            limiter.log,
            [ms(0), ms(300), ms(600)],
            "at 650 ms nothing is a window old (and computing `now - window` would underflow)"
        );
        limiter.evict_expired(ms(999));
        assert_eq!(
            limiter.log,
            [ms(0), ms(300), ms(600)],
            "at 999 ms the request from 0 ms is still inside the last second (-1 ms, 999 ms]"
        );
        limiter.evict_expired(ms(1000));
        assert_eq!(
            limiter.log,
            [ms(300), ms(600)],
            "at 1000 ms the request from 0 ms is exactly one window old: it has left the window \
             (drop t when t + window <= now)"
        );
        limiter.evict_expired(ms(5000));
        assert!(
            limiter.log.is_empty(),
            "at 5000 ms every timestamp is long gone"
        );
    }

    #[test]
    fn a_slot_frees_exactly_one_window_after_the_request_that_used_it() {
        let (clock, mut limiter) = limiter();
        for t in [0, 300, 600] {
            clock.set(ms(t));
            assert!(
                limiter.try_acquire(),
                "request at {t} ms is within the limit"
            );
        }
        clock.set(ms(999));
        assert!(
            !limiter.try_acquire(),
            "at 999 ms the requests from 0, 300 and 600 ms are all within the last second"
        );
        clock.set(ms(1000));
        assert!(
            limiter.try_acquire(),
            "at 1000 ms the request from 0 ms has left the window, freeing one slot"
        );
        assert!(
            !limiter.try_acquire(),
            "only one slot was freed at 1000 ms: 300, 600 and 1000 ms are in the window"
        );
        clock.set(ms(1300));
        assert!(
            limiter.try_acquire(),
            "at 1300 ms the request from 300 ms leaves"
        );
    }

    #[test]
    fn there_is_no_boundary_burst() {
        let (clock, mut limiter) = limiter();
        clock.set(ms(900));
        assert_eq!(admitted(&mut limiter, LIMIT), LIMIT);
        for t in [1000, 1100, 1500, 1899] {
            clock.set(ms(t));
            assert!(
                !limiter.try_acquire(),
                "at {t} ms the {LIMIT} requests from 900 ms are still within the last second: \
                 a sliding window has no boundary to burst across"
            );
        }
        clock.set(ms(1900));
        assert_eq!(
            admitted(&mut limiter, LIMIT + 1),
            LIMIT,
            "at 1900 ms the burst from 900 ms has left the window"
        );
    }

    #[test]
    fn rejected_requests_do_not_consume_capacity() {
        let (clock, mut limiter) = limiter();
        assert_eq!(admitted(&mut limiter, LIMIT), LIMIT);
        clock.set(ms(500));
        assert_eq!(
            admitted(&mut limiter, 10),
            0,
            "the window is full at 500 ms"
        );
        assert_eq!(
            limiter.log_len(),
            LIMIT as usize,
            "the 10 rejected requests must not be recorded in the log"
        );
        clock.set(ms(1000));
        assert_eq!(
            admitted(&mut limiter, LIMIT),
            LIMIT,
            "at 1000 ms the admitted requests from 0 ms have left the window; the rejected ones \
             from 500 ms never used any capacity, so the client gets a full window again"
        );
    }

    #[test]
    fn a_limit_of_zero_admits_nothing() {
        let clock = ManualClock::new();
        let mut limiter = SlidingLog::new(0, WINDOW, clock.clone());
        for t in [0, 1, 1_000, 60_000] {
            clock.set(ms(t));
            assert!(
                !limiter.try_acquire(),
                "a limit of 0 admits nothing (at {t} ms)"
            );
        }
        assert_eq!(limiter.log_len(), 0, "nothing admitted, nothing recorded");
    }

    #[test]
    fn matches_a_count_of_admitted_requests_in_the_last_window_for_any_window_and_limit() {
        sdlings_kit::property::for_seeds(300, |rng| {
            let window = rate_limiting::random_window(rng);
            let limit = rate_limiting::random_limit(rng, 12);
            let clock = ManualClock::new();
            let mut limiter = SlidingLog::new(limit, window, clock.clone());
            // The reference: every admitted time; the last window is (now − window, now].
            let mut accepted: Vec<Duration> = Vec::new();
            let mut t = Duration::ZERO;
            for i in 0..80 {
                clock.set(t);
                let in_window: Vec<Duration> = accepted
                    .iter()
                    .copied()
                    .filter(|&a| a + window > t)
                    .collect();
                let expected = in_window.len() < limit as usize;
                assert_eq!(
                    limiter.try_acquire(),
                    expected,
                    "window {window:?}, limit {limit}: request {i} at {t:?} finds {} admitted \
                     requests in ({t:?} − {window:?}, {t:?}], at {in_window:?}, so it must be {}",
                    in_window.len(),
                    if expected { "admitted" } else { "rejected" }
                );
                if expected {
                    accepted.push(t);
                }
                let mut held: Vec<Duration> = accepted
                    .iter()
                    .copied()
                    .filter(|&a| a + window > t)
                    .collect();
                held.sort();
                assert_eq!(
                    Vec::from(limiter.log.clone()),
                    held,
                    "window {window:?}, limit {limit}: after the request at {t:?} the log must \
                     hold exactly the admitted times still in the window, oldest first"
                );
                // Next arrival: the same instant, soon after, exactly when the oldest admitted
                // request leaves the window (or a nanosecond either side), or after a long idle.
                let oldest_leaves = held.first().map(|&a| a + window);
                t = match (rng.random_range(0..8), oldest_leaves) {
                    (0 | 1, _) => t,
                    (2 | 3, _) => t + window / rng.random_range(2..20),
                    (4, Some(leaves)) => leaves,
                    (5, Some(leaves)) => leaves - Duration::from_nanos(1),
                    (6, Some(leaves)) => leaves + Duration::from_nanos(1),
                    _ => t + window * rng.random_range(1..4),
                };
            }
        });
    }
}
