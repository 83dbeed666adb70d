// A first component: a hit counter for the last N seconds.
//
// "How many requests did we serve in the last 5 minutes?" Dashboards ask it, rate limiters ask
// it, auto-scalers ask it, and they ask it on every request, so the answer must be cheap and the
// memory must not grow with traffic. One timestamp per hit, at 50 000 requests per second, is 15
// million timestamps for a 5-minute window. Instead, keep one *bucket per second* in a ring:
// second `s` lives in bucket `s % window`, and when the ring comes round again the bucket still
// holds hits from a whole window ago, which must be thrown away before it is reused. Memory:
// `window` buckets, whatever the traffic.
//
// Granularity is one second: a hit at 12.7 s belongs to second 12, and with a 5-second window it
// is counted while the clock reads seconds 12 to 16 and forgotten when it reaches 17.0 s.
//
// Time comes from an injected `Clock`, never from `Instant::now()`: the tests move a
// `ManualClock` by hand, so "wait five minutes" takes no time and gives the same result on every
// run. Implement `hit` and `count`.
//
// Lab knob: `WINDOW_SECS` (try 3, then 30). A short window follows each burst closely and forgets
// it fast; a long one smooths bursts into a plateau and remembers them longer. Either way the
// memory is one bucket per second of window, and when traffic stops the count drains to zero.

use std::time::Duration;

use rand::RngExt;
use sdlings_kit::clock::{Clock, ManualClock};
use sdlings_kit::lab::{self, Table};
use sdlings_kit::workload::seeded_rng;

// ---------------------------------------------------------------------------------------------
// Given.
// ---------------------------------------------------------------------------------------------

/// The hits of one second.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which second (whole seconds since the clock's epoch) these hits belong to.
    second: u64,
    hits: u64,
}

/// Counts hits over a sliding window of whole seconds, in fixed memory.
pub struct HitCounter<C: Clock> {
    clock: C,
    /// One bucket per second of the window, reused as a ring: second `s` lives in
    /// `buckets[s % window]`. Allocated once in `new`, never resized.
    buckets: Vec<Bucket>,
}

impl<C: Clock> HitCounter<C> {
    /// A counter for the last `window_secs` seconds, reading time from `clock`.
    pub fn new(window_secs: u64, clock: C) -> Self {
        assert!(
            window_secs > 0,
            "a hit counter needs a window of at least 1 second"
        );
        HitCounter {
            clock,
            buckets: vec![Bucket::default(); window_secs as usize],
        }
    }

    /// The window, in seconds.
    pub fn window_secs(&self) -> u64 {
        self.buckets.len() as u64
    }

    /// The current second on the injected clock.
    fn current_second(&self) -> u64 {
        self.clock.now().as_secs()
    }

    // -----------------------------------------------------------------------------------------
    // Your part.
    // -----------------------------------------------------------------------------------------

    /// Records one hit at the current time.
    pub fn hit(&mut self) {
        let now = self.current_second();
        todo!("add a hit to the bucket for second {now}")
    }

    /// The number of hits in the last `window` seconds: the current second and the
    /// `window - 1` before it.
    pub fn count(&self) -> u64 {
        let now = self.current_second();
        todo!("add up the buckets still inside the window at second {now}")
    }
}

// ---------------------------------------------------------------------------------------------
// The lab: bursty traffic at seeded random times, then silence, on a simulated clock.
// ---------------------------------------------------------------------------------------------

/// The window of the counter, in seconds.
const WINDOW_SECS: u64 = 10;
/// How many seconds of traffic to simulate.
const DURATION_SECS: u64 = 40;
/// Steady traffic: each second gets 0 to 2 * BASE_RATE hits, BASE_RATE on average.
const BASE_RATE: u64 = 20;
/// Chance that a second carries a burst (a retry storm, a marketing email, a cron job).
const BURST_PERCENT: u64 = 10;
/// A burst adds between half and one and a half times this many hits.
const BURST_SIZE: u64 = 200;
/// Then traffic stops for this many seconds (the node was drained for a deploy).
const QUIET_SECS: u64 = 4;
/// Same seed, same traffic.
const SEED: u64 = 7;

fn main() {
    let clock = ManualClock::new();
    let mut counter = HitCounter::new(WINDOW_SECS, clock.clone());
    let mut rng = seeded_rng(SEED);

    let mut per_second = Vec::new();
    let mut chart = Vec::new();
    let mut mismatches = 0;
    let end = DURATION_SECS + QUIET_SECS;
    for second in 0..end {
        let mut hits = 0;
        if second < DURATION_SECS {
            hits = rng.random_range(0..=2 * BASE_RATE);
            if rng.random_range(0..100) < BURST_PERCENT {
                hits += rng.random_range(BURST_SIZE / 2..=BURST_SIZE * 3 / 2);
            }
        }
        let mut offsets: Vec<u64> = (0..hits).map(|_| rng.random_range(0..1_000)).collect();
        offsets.sort_unstable();
        for ms in offsets {
            clock.set(Duration::from_millis(second * 1_000 + ms));
            counter.hit();
        }
        per_second.push(hits);

        // Read the counter at the very end of the second, as a dashboard scraping it would, and
        // check it against an exact recount from the full log (which a real system cannot keep).
        clock.set(Duration::from_millis(second * 1_000 + 999));
        let counted = counter.count();
        let first = (second + 1).saturating_sub(WINDOW_SECS) as usize;
        if counted != per_second[first..].iter().sum::<u64>() {
            mismatches += 1;
        }
        chart.push((format!("{second:>2}s +{hits:<3}"), counted as f64));
    }

    println!("count() at the end of each second (label: the second and its new hits):\n");
    println!("{}", lab::bar_chart(&chart, 50));

    let total: u64 = per_second.iter().sum();
    let peak = chart.iter().map(|(_, c)| *c as u64).max().unwrap_or(0);
    let bytes = counter.buckets.len() * std::mem::size_of::<Bucket>();
    let mut summary = Table::new(&["figure", "value"]);
    summary
        .row(&["window", &format!("{WINDOW_SECS}s")])
        .row(&["hits in total", &total.to_string()])
        .row(&["peak count()", &peak.to_string()])
        .row(&["peak as share of all hits", &lab::percent(peak, total)])
        .row(&["seconds where count() != recount", &mismatches.to_string()])
        .row(&[
            "memory",
            &format!("{} buckets, {bytes} bytes", counter.buckets.len()),
        ]);
    println!();
    summary.print();

    let now = end - 1;
    println!("\nThe ring at the end (second {now}):\n");
    let mut ring = Table::new(&["bucket", "holds second", "hits", "in window?"]);
    for (slot, bucket) in counter.buckets.iter().enumerate() {
        let live = now - bucket.second < WINDOW_SECS;
        ring.row(&[
            slot.to_string(),
            bucket.second.to_string(),
            bucket.hits.to_string(),
            (if live { "yes" } else { "stale" }).to_string(),
        ]);
    }
    ring.print();
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    /// Moves the shared clock to `ms` milliseconds after its epoch.
    fn at(clock: &ManualClock, ms: u64) {
        clock.set(Duration::from_millis(ms));
    }

    fn hits(counter: &mut HitCounter<ManualClock>, n: u64) {
        for _ in 0..n {
            counter.hit();
        }
    }

    #[test]
    fn counts_every_hit_in_the_first_second() {
        let clock = ManualClock::new();
        let mut counter = HitCounter::new(300, clock.clone());
        assert_eq!(counter.count(), 0, "a new counter has seen no hits");
        hits(&mut counter, 3);
        assert_eq!(
            counter.count(),
            3,
            "three hits at 0 s, read at 0 s, are all within the last 300 s"
        );
    }

    #[test]
    fn counts_hits_spread_over_the_last_five_minutes() {
        let clock = ManualClock::new();
        let mut counter = HitCounter::new(300, clock.clone());
        for second in [0, 10, 150, 299] {
            at(&clock, second * 1_000);
            counter.hit();
        }
        assert_eq!(
            counter.count(),
            4,
            "at 299 s a 300 s window covers seconds 0 to 299, so all four hits count"
        );
    }

    #[test]
    fn still_counts_a_hit_during_the_last_second_of_its_window() {
        let clock = ManualClock::new();
        let mut counter = HitCounter::new(5, clock.clone());
        counter.hit();
        at(&clock, 4_999);
        assert_eq!(
            counter.count(),
            1,
            "at 4.999 s (second 4) a 5 s window covers seconds 0..=4: the hit at second 0 counts \
             (is the window one second short?)"
        );
    }

    #[test]
    fn drops_a_hit_exactly_when_its_second_leaves_the_window() {
        let clock = ManualClock::new();
        let mut counter = HitCounter::new(5, clock.clone());
        counter.hit();
        at(&clock, 5_000);
        assert_eq!(
            counter.count(),
            0,
            "at 5.000 s (second 5) a 5 s window covers seconds 1..=5: the hit at second 0 is out \
             (a window of 5 seconds holds 5 buckets, not 6)"
        );
    }

    #[test]
    fn hits_are_grouped_by_whole_second() {
        let clock = ManualClock::new();
        let mut counter = HitCounter::new(5, clock.clone());
        at(&clock, 12_000);
        counter.hit();
        at(&clock, 12_700);
        counter.hit();
        at(&clock, 16_999);
        assert_eq!(
            counter.count(),
            2,
            "hits at 12.0 s and 12.7 s both belong to second 12, still in the window at second 16"
        );
        at(&clock, 17_000);
        assert_eq!(
            counter.count(),
            0,
            "at 17.0 s the window is seconds 13..=17: second 12 has left, with both its hits \
             (truncate to whole seconds, do not round)"
        );
    }

    #[test]
    fn the_count_slides_forward_one_second_at_a_time() {
        let clock = ManualClock::new();
        let mut counter = HitCounter::new(5, clock.clone());
        // Second k gets k + 1 hits, so every window has a distinct total.
        let per_second: Vec<u64> = (1..=12).collect();
        for (second, &n) in per_second.iter().enumerate() {
            at(&clock, second as u64 * 1_000 + 500);
            hits(&mut counter, n);
            let first = second.saturating_sub(4);
            let expected: u64 = per_second[first..=second].iter().sum();
            assert_eq!(
                counter.count(),
                expected,
                "at second {second} the window is seconds {first}..={second}"
            );
        }
        // Traffic stops: the window drains one second at a time.
        for second in 12..=16 {
            at(&clock, second * 1_000);
            let first = (second - 4) as usize;
            let expected: u64 = per_second[first.min(12)..].iter().sum();
            assert_eq!(
                counter.count(),
                expected,
                "at second {second} the window is seconds {first}..={second}, and the last hits \
                 were at second 11"
            );
        }
    }

    #[test]
    fn reusing_a_bucket_on_the_next_lap_of_the_ring_forgets_its_old_hits() {
        let clock = ManualClock::new();
        let mut counter = HitCounter::new(5, clock.clone());
        at(&clock, 1_000);
        hits(&mut counter, 2);
        // Second 6 lands in the same bucket as second 1 (6 % 5 == 1).
        at(&clock, 6_000);
        counter.hit();
        assert_eq!(
            counter.count(),
            1,
            "second 6 reuses second 1's bucket: its 2 old hits must be cleared before counting \
             the new one"
        );
    }

    #[test]
    fn old_hits_expire_even_when_no_new_hits_arrive() {
        let clock = ManualClock::new();
        let mut counter = HitCounter::new(5, clock.clone());
        hits(&mut counter, 10);
        at(&clock, 3_000);
        assert_eq!(
            counter.count(),
            10,
            "at 3 s the hits from 0 s are in the window"
        );
        at(&clock, 100_000);
        assert_eq!(
            counter.count(),
            0,
            "nothing happened in the last 5 s: count() must skip stale buckets even though no \
             hit() has come to clear them"
        );
    }

    #[test]
    fn after_a_long_quiet_spell_only_new_hits_count() {
        let clock = ManualClock::new();
        let mut counter = HitCounter::new(5, clock.clone());
        for second in 0..5 {
            at(&clock, second * 1_000);
            hits(&mut counter, 100);
        }
        // Many laps later, in the bucket that second 3 used.
        at(&clock, 1_000_003_000);
        counter.hit();
        assert_eq!(
            counter.count(),
            1,
            "after 11 days of silence, the other four buckets still hold 100 hits each from \
             long ago: they are stale and must not count"
        );
    }

    #[test]
    fn a_one_second_window_counts_only_the_current_second() {
        let clock = ManualClock::new();
        let mut counter = HitCounter::new(1, clock.clone());
        at(&clock, 500);
        hits(&mut counter, 3);
        at(&clock, 1_000);
        counter.hit();
        assert_eq!(
            counter.count(),
            1,
            "with a 1 s window, at second 1 only second 1's hit counts"
        );
    }

    #[test]
    fn memory_stays_fixed_however_many_hits_arrive() {
        let clock = ManualClock::new();
        let mut counter = HitCounter::new(60, clock.clone());
        // 100 hits per second for 1 000 seconds.
        for i in 0..100_000u64 {
            at(&clock, i * 10);
            counter.hit();
        }
        assert_eq!(
            counter.buckets.len(),
            60,
            "a 60 s window needs exactly 60 buckets, one per second, however many hits arrive: \
             reuse them as a ring instead of adding new ones"
        );
        assert_eq!(
            counter.count(),
            6_000,
            "100 hits per second over the last 60 s"
        );
    }

    #[test]
    fn matches_a_log_of_every_hit_for_any_window_and_any_pattern_of_traffic() {
        sdlings_kit::property::for_seeds(300, |rng| {
            // Small windows, whose edges the jumps below hit often, and windows of any width.
            let window = if rng.random_bool(0.5) {
                [1, 2, 3, 5, 7, 60][rng.random_range(0..6)]
            } else {
                rng.random_range(1..=100)
            };
            let clock = ManualClock::new();
            let mut counter = HitCounter::new(window, clock.clone());
            // The obviously correct model: the second of every hit, kept forever.
            let mut log: Vec<u64> = Vec::new();
            let mut now_ms = 0u64;
            let mut story = Vec::new();
            for _ in 0..40 {
                let second = now_ms / 1_000;
                // Jumps that land just before, on and just after the edges that matter: the
                // next second, the end of the window, a whole lap of the ring, many laps.
                now_ms = match rng.random_range(0..7) {
                    0 => now_ms,
                    1 => now_ms + rng.random_range(1..1_000),
                    2 => (second + 1) * 1_000,
                    3 => (second + window) * 1_000 - 1,
                    4 => (second + window) * 1_000,
                    5 => (second + window + 1) * 1_000 + rng.random_range(0..1_000),
                    _ => now_ms + rng.random_range(0..window * 5_000),
                };
                clock.set(Duration::from_millis(now_ms));
                let now = now_ms / 1_000;
                if rng.random_bool(0.6) {
                    let n = rng.random_range(1..=3);
                    hits(&mut counter, n);
                    log.extend(std::iter::repeat_n(now, n as usize));
                    story.push(format!("{n} hit(s) at {now_ms} ms"));
                } else {
                    let expected = log.iter().filter(|&&s| now - s < window).count() as u64;
                    story.push(format!("count() at {now_ms} ms"));
                    assert_eq!(
                        counter.count(),
                        expected,
                        "window {window} s, after: {}. At second {now} the window holds \
                         seconds {}..={now}",
                        story.join(", "),
                        (now + 1).saturating_sub(window)
                    );
                }
            }
        });
    }
}
