// Adaptive concurrency — find how many requests a server can take, from its latency alone.
//
// A fixed concurrency limit is wrong twice: too high and requests queue inside the server (the
// latency grows, nothing else does); too low and capacity sits idle. And the right value moves:
// a deploy, a cold cache or a noisy neighbour changes it. Netflix's concurrency-limits library
// learns it the way TCP learns a network's capacity: Little's law says the right limit is
// throughput × latency, so raise the limit while responses are fast, cut it when they are slow.
//
// Build `Aimd::on_response` (additive increase, multiplicative decrease, as Netflix's AIMDLimit
// and TCP Reno): a response slower than the SLO (or dropped) cuts the limit by BACKOFF, at most
// once per window (the requests already in flight when you cut were sent under the old limit
// and say nothing about the new one); fast responses add 1 per window of `limit` responses,
// only while the callers use at least half the limit. The property: after the server's speed
// steps, the limit settles near throughput × SLO and the server stays busy; the limit stays in
// [min, max]. Lab: turn SLO_MS down towards the knee, or BACKOFF to 0.5 (Reno), and watch.

use std::time::Duration;

use sdlings_kit::backpressure::concurrency::{Limiter, Phase, lab};

/// The limiter's settings.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub initial: usize,
    pub min: usize,
    pub max: usize,
    /// Multiply the limit by this on a slow response (e.g. 0.9), rounding down.
    pub backoff: f64,
    /// A response slower than this is slow.
    pub slo: Duration,
}

#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct Aimd {
    config: Config,
    limit: usize,
    /// Fast responses counted towards the next increase.
    acked: usize,
    /// When the limit was last cut.
    last_cut: Option<Duration>,
}

// ---- Your part -------------------------------------------------------------------------------

impl Aimd {
    /// Learns from one response: sent at `sent_at`, arrived at `now`, with `inflight` requests in
    /// flight when it arrived (itself included); `dropped` if the server refused it.
    pub fn on_response(
        &mut self,
        sent_at: Duration,
        now: Duration,
        inflight: usize,
        dropped: bool,
    ) {
        todo!(
            "a response sent at {sent_at:?}, back at {now:?} ({inflight} in flight, dropped: {dropped}): raise or cut the limit"
        )
    }
}

// ---- Given -----------------------------------------------------------------------------------

impl Aimd {
    pub fn new(config: Config) -> Self {
        assert!(config.min >= 1 && config.min <= config.initial && config.initial <= config.max);
        Aimd {
            config,
            limit: config.initial,
            acked: 0,
            last_cut: None,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl Limiter for Aimd {
    fn limit(&self) -> usize {
        self.limit
    }

    fn on_response(&mut self, sent_at: Duration, now: Duration, inflight: usize, dropped: bool) {
        Aimd::on_response(self, sent_at, now, inflight, dropped)
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// The latency objective, and the cut on a slow response.
const SLO_MS: u64 = 30;
const BACKOFF: f64 = 0.9;
/// The network's share of every request's latency, and the callers' demand.
const BASE_MS: u64 = 20;
const DEMAND: usize = 200;
/// The server takes 1 ms per request, then 2 ms from 2 s on, then 0.5 ms from 4 s on.
const PHASES_MS: [(u64, f64); 3] = [(0, 1.0), (2_000, 2.0), (4_000, 0.5)];

fn main() {
    let phases: Vec<Phase> = PHASES_MS
        .iter()
        .map(|&(from, ms)| Phase {
            from: Duration::from_millis(from),
            service: Duration::from_secs_f64(ms / 1000.0),
        })
        .collect();
    let config = Config {
        initial: 10,
        min: 1,
        max: 1_000,
        backoff: BACKOFF,
        slo: Duration::from_millis(SLO_MS),
    };
    let end = Duration::from_secs(6);
    let step = Duration::from_millis(500);
    lab(
        &mut Aimd::new(config),
        DEMAND,
        Duration::from_millis(BASE_MS),
        &phases,
        end,
        step,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use sdlings_kit::backpressure::concurrency::{drive, window};

    const SLO: Duration = Duration::from_millis(30);

    fn limiter(initial: usize, min: usize, max: usize) -> Aimd {
        Aimd::new(Config {
            initial,
            min,
            max,
            backoff: 0.9,
            slo: SLO,
        })
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A fast response (10 ms) sent at `at` with the limit in use.
    fn fast(a: &mut Aimd, at: u64) {
        let inflight = a.limit();
        a.on_response(ms(at), ms(at + 10), inflight, false);
    }

    #[test]
    fn fast_responses_add_one_per_window_of_limit_responses() {
        let mut a = limiter(10, 1, 100);
        for i in 0..9 {
            fast(&mut a, i);
        }
        assert_eq!(a.limit(), 10, "9 fast responses: not yet a window of 10");
        fast(&mut a, 9);
        assert_eq!(
            a.limit(),
            11,
            "10 fast responses at limit 10: +1 (additive increase)"
        );
        for i in 0..11 {
            fast(&mut a, 10 + i);
        }
        assert_eq!(
            a.limit(),
            12,
            "then 11 more at limit 11: +1 again, not +1 per response"
        );
    }

    #[test]
    fn a_slow_response_cuts_the_limit_once_per_window() {
        let mut a = limiter(20, 1, 100);
        a.on_response(ms(0), ms(40), 20, false);
        assert_eq!(
            a.limit(),
            18,
            "40 ms > 30 ms SLO: the limit is cut to 20 × 0.9"
        );
        for sent in 1..30 {
            a.on_response(ms(sent), ms(40 + sent), 20, false);
        }
        assert_eq!(
            a.limit(),
            18,
            "the other slow responses were sent before the cut (at 40 ms), under the old limit: \
             they say nothing new and are ignored (halving on each would collapse the limit)"
        );
        a.on_response(ms(41), ms(90), 18, false);
        assert_eq!(
            a.limit(),
            16,
            "a request sent after the cut is slow too: cut again (16.2)"
        );
    }

    #[test]
    fn a_response_of_exactly_the_slo_is_not_slow_and_a_dropped_one_is() {
        let mut a = limiter(1, 1, 100);
        a.on_response(ms(0), ms(30), 1, false);
        assert_eq!(
            a.limit(),
            2,
            "30 ms is within a 30 ms SLO: a fast response (+1 at limit 1)"
        );
        let mut a = limiter(50, 1, 100);
        a.on_response(ms(0), ms(1), 50, true);
        assert_eq!(
            a.limit(),
            45,
            "a dropped request is a congestion signal however fast"
        );
    }

    #[test]
    fn an_idle_client_does_not_grow_the_limit() {
        let mut a = limiter(40, 1, 100);
        for i in 0..500 {
            a.on_response(ms(i), ms(i + 5), 19, false);
        }
        assert_eq!(
            a.limit(),
            40,
            "with 19 of 40 in flight the callers do not use the limit: fast responses prove \
             nothing about 41, so it must not grow (or it grows without bound and protects \
             nothing when the load comes)"
        );
        for i in 0..40 {
            a.on_response(ms(i), ms(i + 5), 20, false);
        }
        assert_eq!(a.limit(), 41, "half the limit in use is enough");
    }

    #[test]
    fn the_limit_stays_between_min_and_max() {
        let mut a = limiter(3, 2, 4);
        for i in 0..10 {
            a.on_response(ms(100 * i), ms(100 * i + 50), 3, false);
        }
        assert_eq!(
            a.limit(),
            2,
            "never below min (2), however many slow windows"
        );
        let mut a = limiter(1, 1, 3);
        for i in 0..10 {
            a.on_response(ms(100 * i), ms(100 * i + 50), 1, true);
        }
        assert_eq!(
            a.limit(),
            1,
            "a limit of 1 cut by 0.9 stays 1: a limit of 0 sends nothing"
        );
        for i in 0..100 {
            fast(&mut a, 2_000 + i);
        }
        assert_eq!(a.limit(), 3, "never above max (3)");
    }

    #[test]
    fn learns_exactly_as_the_aimd_rules_say_over_random_responses() {
        sdlings_kit::property::for_seeds(200, |rng| {
            let (min, max) = (rng.random_range(1..4), rng.random_range(4..60));
            let backoff = [0.5, 0.7, 0.9][rng.random_range(0..3)];
            let config = Config {
                initial: rng.random_range(min..=max),
                min,
                max,
                backoff,
                slo: SLO,
            };
            let mut a = Aimd::new(config);
            let (mut limit, mut acked, mut cut): (usize, usize, Option<u64>) =
                (config.initial, 0, None);
            let mut now = 0;
            for step in 0..300 {
                now += rng.random_range(0..5);
                let sent = now - rng.random_range(0..now.min(60) + 1);
                let inflight = rng.random_range(1..=max + 1);
                let dropped = rng.random_range(0..20) == 0;
                if dropped || now - sent > 30 {
                    if cut.is_none_or(|c| sent > c) {
                        limit = ((limit as f64 * backoff) as usize).max(min);
                        (acked, cut) = (0, Some(now));
                    }
                } else if inflight * 2 >= limit {
                    acked += 1;
                    if acked >= limit {
                        (limit, acked) = ((limit + 1).min(max), 0);
                    }
                }
                a.on_response(ms(sent), ms(now), inflight, dropped);
                assert_eq!(
                    a.limit(),
                    limit,
                    "step {step}: sent {sent}, now {now}, {inflight} in flight, dropped {dropped}, {config:?}"
                );
            }
        });
    }

    fn phases(services: &[(u64, f64)]) -> Vec<Phase> {
        services
            .iter()
            .map(|&(from, s)| Phase {
                from: ms(from),
                service: Duration::from_secs_f64(s / 1e3),
            })
            .collect()
    }

    #[test]
    fn after_the_server_slows_down_the_limit_settles_near_throughput_times_slo() {
        // Network 20 ms; the server takes 1 ms per request, then 2 ms from 2 s on. Little's law
        // at the SLO: 1/ms × 30 ms = 30 in flight, then 0.5/ms × 30 ms = 15.
        let mut a = limiter(10, 1, 1_000);
        let samples = drive(
            &mut a,
            200,
            ms(20),
            &phases(&[(0, 1.0), (2_000, 2.0)]),
            ms(4_000),
        );
        for (from, to, capacity, little) in [(1_000, 2_000, 1.0, 30.0), (3_000, 4_000, 0.5, 15.0)] {
            let (rate, limit, p99) = window(&samples, ms(from), ms(to));
            assert!(
                (limit - little).abs() <= 0.2 * little,
                "{from}..{to} ms: the mean limit should be near throughput × SLO = {little}, \
                 got {limit:.1}"
            );
            assert!(
                rate >= 0.95 * capacity,
                "{from}..{to} ms: the server should stay busy ({capacity} req/ms), got {rate:.2}"
            );
            assert!(
                p99 <= ms(40),
                "{from}..{to} ms: latency near the 30 ms SLO, p99 {p99:?}"
            );
        }
    }
}
