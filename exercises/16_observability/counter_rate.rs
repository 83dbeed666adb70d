// counter_rate — how much did a counter grow, when the process behind it restarts?
//
// A service exports `http_requests_total`, a counter that only goes up, and Prometheus scrapes it
// every 15 s. When the process restarts, the counter starts again from zero: a dashboard that
// plots `last − first` over the last hour shows a huge negative number of requests right after a
// deploy. Prometheus's `increase()` and `rate()` treat any drop as a reset instead: the value
// read after a drop is what was counted since the restart, so it all counts as growth.
//
// Build `resets` (how many drops), `increase` (the growth over consecutive samples, resets
// included) and `rate` (per second, over the samples in a window). The property: across any
// number of restarts, `increase` is the sum of what each process counted between the first and
// the last sample; it is never negative; fewer than two samples say nothing about a rate.
//
// Lab: a service restarting during an hour, scraped every SCRAPE_INTERVAL seconds. Turn RESTARTS
// up and watch `last − first` go wrong while the reset-aware increase stays close to the truth.

use sdlings_kit::lab::Table;
use sdlings_kit::observability::counters::scrape;

// ---- Your part -------------------------------------------------------------------------------

/// One scrape: at `t` seconds, the counter read `value`. Samples come in increasing `t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t: f64,
    pub value: f64,
}

/// How many times the counter dropped (each drop is a restart) between consecutive samples.
pub fn resets(samples: &[Sample]) -> usize {
    todo!("count the drops in {} samples", samples.len())
}

/// The growth of the counter from the first sample to the last, counting across resets: after a
/// drop, the new value is what the restarted process counted from zero. 0 for fewer than two
/// samples.
pub fn increase(samples: &[Sample]) -> f64 {
    todo!(
        "the growth across {} samples, resets included",
        samples.len()
    )
}

/// The per-second rate over the window `(start, end]`: the increase across the samples with
/// `start < t <= end`, divided by the time between the first and the last of them. `None` when
/// the window holds fewer than two samples (one point has no slope).
pub fn rate(samples: &[Sample], start: f64, end: f64) -> Option<f64> {
    todo!(
        "the per-second rate over ({start}, {end}] of {} samples",
        samples.len()
    )
}

// ---- Lab -------------------------------------------------------------------------------------

/// Seconds between scrapes (Prometheus's default is 15 s or 1 min).
const SCRAPE_INTERVAL: f64 = 15.0;
/// Process restarts (deploys, crashes) during the hour.
const RESTARTS: usize = 4;
/// Requests per second the service serves.
const RPS: f64 = 200.0;
/// The window of each row, in seconds.
const WINDOW: f64 = 600.0;

fn main() {
    let scrapes = scrape(16, 3_600.0, SCRAPE_INTERVAL, RPS, RESTARTS);
    let samples: Vec<Sample> = scrapes
        .samples
        .iter()
        .map(|&(t, value)| Sample { t, value })
        .collect();
    let restarts: Vec<String> = scrapes
        .restarts
        .iter()
        .map(|t| format!("{t:.0}s"))
        .collect();
    println!(
        "{RPS} req/s for an hour, scraped every {SCRAPE_INTERVAL} s, restarts at {}",
        restarts.join(", ")
    );
    let mut table = Table::new(&[
        "window",
        "served",
        "last − first",
        "increase",
        "resets",
        "rate/s",
    ]);
    let mut start = 0.0;
    while start < 3_600.0 {
        let end = start + WINDOW;
        // Like Prometheus, the window's increase starts at the last sample before it.
        let inside: Vec<Sample> = samples
            .iter()
            .copied()
            .filter(|s| s.t > start - SCRAPE_INTERVAL && s.t <= end)
            .collect();
        let naive = match inside.as_slice() {
            [first, .., last] => last.value - first.value,
            _ => 0.0,
        };
        table.row(&[
            format!("{start:.0}–{end:.0}s"),
            format!("{:.0}", scrapes.served_in(start, end)),
            format!("{naive:.0}"),
            format!("{:.0}", increase(&inside)),
            resets(&inside).to_string(),
            rate(&samples, start - SCRAPE_INTERVAL, end).map_or("-".into(), |r| format!("{r:.1}")),
        ]);
        start = end;
    }
    table.print();
    println!(
        "whole hour: served {:.0}, increase {:.0} (what a process served after its last scrape \
         before a restart is lost to every scraper)",
        scrapes.served_in(0.0, 3_600.0),
        increase(&samples)
    );
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use rand::rngs::StdRng;
    use sdlings_kit::property::for_seeds;

    use super::*;

    fn series(points: &[(f64, f64)]) -> Vec<Sample> {
        points
            .iter()
            .map(|&(t, value)| Sample { t, value })
            .collect()
    }

    /// A counter's life told by its processes: each scrape adds `step` requests to the running
    /// process, or (a restart) the new process has counted `step` since starting, less than the
    /// last reading so the restart shows as a drop. The truth is the sum of what was counted.
    struct Story {
        samples: Vec<Sample>,
        counted: f64,
        restarts: usize,
    }

    fn story(rng: &mut StdRng) -> Story {
        let n = rng.random_range(2..60);
        let mut t = rng.random_range(0.0..1_000.0);
        let mut value = rng.random_range(0..10_000) as f64;
        let (mut samples, mut counted, mut restarts) = (vec![Sample { t, value }], 0.0, 0);
        for _ in 1..n {
            t += rng.random_range(1.0..60.0);
            if value > 0.0 && rng.random_bool(0.15) {
                value = rng.random_range(0..value as u64) as f64;
                counted += value;
                restarts += 1;
            } else {
                let step = if rng.random_bool(0.2) {
                    0
                } else {
                    rng.random_range(1..5_000)
                };
                value += step as f64;
                counted += step as f64;
            }
            samples.push(Sample { t, value });
        }
        Story {
            samples,
            counted,
            restarts,
        }
    }

    #[test]
    fn a_steady_counter_grows_by_last_minus_first() {
        let s = series(&[(0.0, 100.0), (15.0, 160.0), (30.0, 250.0), (45.0, 400.0)]);
        assert_eq!(increase(&s), 300.0, "no drop: 400 − 100");
        assert_eq!(resets(&s), 0);
        assert_eq!(
            rate(&s, -1.0, 45.0),
            Some(300.0 / 45.0),
            "300 requests over 45 s"
        );
    }

    #[test]
    fn a_restart_mid_window_counts_what_the_new_process_counted_from_zero() {
        let s = series(&[(0.0, 1_000.0), (15.0, 1_300.0), (30.0, 40.0), (45.0, 340.0)]);
        assert_eq!(
            increase(&s),
            640.0,
            "300 before the restart, then the new process counted 40 from zero, then 300 more: \
             1300 − 1000 + 40 + 340 − 40 (not 340 − 1000, and not ignoring the 40)"
        );
        assert_eq!(resets(&s), 1, "one drop, 1300 → 40");
        assert_eq!(rate(&s, -1.0, 45.0), Some(640.0 / 45.0));
    }

    #[test]
    fn every_reset_in_the_window_counts_not_just_the_first() {
        let s = series(&[
            (0.0, 50.0),
            (10.0, 80.0),
            (20.0, 5.0),
            (30.0, 25.0),
            (40.0, 3.0),
            (50.0, 9.0),
        ]);
        assert_eq!(
            increase(&s),
            30.0 + 5.0 + 20.0 + 3.0 + 6.0,
            "two restarts, each counts from zero"
        );
        assert_eq!(resets(&s), 2);
    }

    #[test]
    fn a_drop_to_zero_is_a_reset_and_a_flat_counter_is_not() {
        let s = series(&[
            (0.0, 7.0),
            (10.0, 7.0),
            (20.0, 0.0),
            (30.0, 0.0),
            (40.0, 4.0),
        ]);
        assert_eq!(
            increase(&s),
            4.0,
            "7 → 7 is no growth, 7 → 0 a restart that counted 0, then 4"
        );
        assert_eq!(
            resets(&s),
            1,
            "equal readings are not a reset: only 7 → 0 is"
        );
    }

    #[test]
    fn increase_matches_the_sum_of_what_each_process_counted_over_many_series() {
        for_seeds(500, |rng| {
            let st = story(rng);
            assert_eq!(
                increase(&st.samples),
                st.counted,
                "samples {:?}: each process's growth summed, a drop counting the new value",
                st.samples
            );
            assert_eq!(resets(&st.samples), st.restarts, "samples {:?}", st.samples);
            assert!(increase(&st.samples) >= 0.0, "a counter never shrinks");
        });
    }

    #[test]
    fn rate_uses_only_the_samples_inside_the_window_over_many_series() {
        for_seeds(500, |rng| {
            let st = story(rng);
            let s = &st.samples;
            let (lo, hi) = (s[0].t - 10.0, s[s.len() - 1].t + 10.0);
            let start = rng.random_range(lo..hi);
            let end = if rng.random_bool(0.3) {
                s[rng.random_range(0..s.len())].t // often exactly on a sample
            } else {
                rng.random_range(start..hi)
            };
            let start = if rng.random_bool(0.3) {
                s[rng.random_range(0..s.len())].t.min(end)
            } else {
                start
            };
            let inside: Vec<Sample> = s
                .iter()
                .copied()
                .filter(|x| x.t > start && x.t <= end)
                .collect();
            let want = match inside.as_slice() {
                [first, .., last] => Some(increase_model(&inside) / (last.t - first.t)),
                _ => None,
            };
            assert_eq!(
                rate(s, start, end),
                want,
                "window ({start}, {end}] of {s:?}: the samples with start < t <= end, increase \
                 over the time between the first and last of them"
            );
        });
    }

    fn increase_model(s: &[Sample]) -> f64 {
        let mut total = 0.0;
        for w in s.windows(2) {
            total += if w[1].value < w[0].value {
                w[1].value
            } else {
                w[1].value - w[0].value
            };
        }
        total
    }

    #[test]
    fn the_window_excludes_its_start_and_includes_its_end() {
        let s = series(&[(0.0, 0.0), (10.0, 100.0), (20.0, 300.0), (30.0, 600.0)]);
        assert_eq!(
            rate(&s, 10.0, 30.0),
            Some(300.0 / 10.0),
            "(10, 30] holds the samples at 20 and 30 only: a sample exactly at the start belongs \
             to the window before"
        );
        assert_eq!(
            rate(&s, 0.0, 20.0),
            Some(20.0),
            "(0, 20]: 10 and 20, 200 in 10 s"
        );
    }

    #[test]
    fn degenerate_windows_give_no_rate_or_zero() {
        let s = series(&[(0.0, 5.0), (10.0, 9.0), (20.0, 9.0), (30.0, 9.0)]);
        assert_eq!(increase(&[]), 0.0, "no samples, no growth");
        assert_eq!(increase(&s[..1]), 0.0, "one sample, no growth");
        assert_eq!(resets(&[]), 0);
        assert_eq!(rate(&[], 0.0, 100.0), None, "no samples: no rate");
        assert_eq!(
            rate(&s, 5.0, 15.0),
            None,
            "one sample in (5, 15]: a point has no slope"
        );
        assert_eq!(
            rate(&s, 40.0, 90.0),
            None,
            "the window is after every sample"
        );
        assert_eq!(
            rate(&s, 10.0, 30.0),
            Some(0.0),
            "all equal: a rate of zero, not none"
        );
        assert_eq!(
            rate(&s, 30.0, 10.0),
            None,
            "an empty window (end before start)"
        );
    }
}
