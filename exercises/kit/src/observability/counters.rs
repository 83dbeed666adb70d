//! A request counter scraped at a fixed interval, from a process that restarts now and then.

use rand::RngExt;

use crate::workload::seeded_rng;

/// What the lab's scraper saw, and what really happened.
#[derive(Debug, Clone)]
pub struct Scrapes {
    /// `(t seconds, counter value)`, one per scrape, in time order.
    pub samples: Vec<(f64, f64)>,
    /// `(t seconds, requests served since the previous scrape)`: the truth the scrapes measure.
    pub served: Vec<(f64, f64)>,
    /// When the process restarted (its counter back to zero).
    pub restarts: Vec<f64>,
}

impl Scrapes {
    /// The requests really served in the window `(start, end]` of scrape times.
    pub fn served_in(&self, start: f64, end: f64) -> f64 {
        self.served
            .iter()
            .filter(|&&(t, _)| t > start && t <= end)
            .map(|&(_, n)| n)
            .sum()
    }
}

/// A service serving about `rps` requests a second for `duration` seconds, scraped every
/// `interval` seconds (the first scrape at `interval`), restarting `restarts` times at random
/// moments. Requests served between the last scrape and a restart are lost to the scraper.
pub fn scrape(seed: u64, duration: f64, interval: f64, rps: f64, restarts: usize) -> Scrapes {
    let mut rng = seeded_rng(seed);
    let mut restart_at: Vec<f64> = (0..restarts)
        .map(|_| rng.random_range(0.0..duration))
        .collect();
    restart_at.sort_by(f64::total_cmp);
    let (mut samples, mut served) = (Vec::new(), Vec::new());
    let (mut counter, mut t, mut next_restart) = (0.0, 0.0, 0);
    while t + interval <= duration + 1e-9 {
        let end = t + interval;
        let mut here = 0.0;
        // Serve request by request-second, restarting where a restart falls in this interval.
        let mut from = t;
        while next_restart < restart_at.len() && restart_at[next_restart] < end {
            let at = restart_at[next_restart];
            let n = (rps * (at - from) * rng.random_range(0.8..1.2)).round();
            here += n;
            counter = 0.0; // the process died: everything since the last scrape is gone
            from = at;
            next_restart += 1;
        }
        let n = (rps * (end - from) * rng.random_range(0.8..1.2)).round();
        counter += n;
        here += n;
        samples.push((end, counter));
        served.push((end, here));
        t = end;
    }
    Scrapes {
        samples,
        served,
        restarts: restart_at,
    }
}
