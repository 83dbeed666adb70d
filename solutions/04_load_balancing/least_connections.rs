// Least connections — send the next request where the fewest are in flight.
//
// Round robin assumes every backend is as fast as the others. When one turns slow (a noisy
// neighbour, a GC pause, a cold cache), round robin keeps sending it a quarter of the traffic and
// every one of those requests waits. Least connections uses what the balancer itself sees, the
// requests in flight per backend: a slow backend holds its requests longer, its count climbs,
// and it gets fewer new ones. It adapts without measuring latency at all.
//
// Build `LeastConnections`: `on_start(id)` / `on_finish(id)` count requests in flight, and `pick`
// returns the backend with the fewest. Two decisions, both checked by the tests:
// - Ties go round robin: among the least busy, take the first one *after* the last pick
//   (wrapping; the first pick scans from 0). "Lowest index wins" would send all light traffic,
//   where every count is 0, to backend 0.
// - A finish without a matching start (a double report) saturates at zero. The count must never
//   go negative or wrap around, and a balancer must not crash the proxy over it.
//
// Lab: real HTTP servers on localhost, one slow. Turn SLOW_BACKEND_LATENCY and CONCURRENCY:
// round robin sends the slow backend 25% of the requests, so its p95 and wall time follow it;
// least connections sends it a few percent and finishes far sooner. Part 2: a crashed backend
// *fails fast*, never has a request in flight, and least connections sends it nearly everything.
// That is why it needs health checks (the last exercise of this topic).

use std::time::Duration;

use sdlings_kit::balancing::{BackendId, Balancer, SlowBackendLab};

pub struct LeastConnections {
    /// Requests in flight on each backend (index = `BackendId`).
    active: Vec<u64>,
    /// The backend picked last: ties are broken starting right after it.
    last: Option<BackendId>,
}

// ---- Your part -------------------------------------------------------------------------------

impl Balancer for LeastConnections {
    /// The backend with the fewest requests in flight. On a tie, the first of the tied backends
    /// after `last` (wrapping around), or from backend 0 if nothing was picked yet. `None` if
    /// there are no backends. Picking does not change any count: `on_start` does.
    fn pick(&mut self) -> Option<BackendId> {
        let n = self.active.len();
        if n == 0 {
            return None;
        }
        let start = self.last.map_or(0, |last| (last + 1) % n);
        // Scan once around the ring starting after the last pick; strictly-less keeps the
        // earliest in scan order on a tie, which is what makes ties rotate.
        let mut best = start;
        for step in 1..n {
            let id = (start + step) % n;
            if self.active[id] < self.active[best] {
                best = id;
            }
        }
        self.last = Some(best);
        Some(best)
    }

    /// A request started on `id`.
    fn on_start(&mut self, id: BackendId) {
        self.active[id] += 1;
    }

    /// A request on `id` is over. Never goes below zero.
    fn on_finish(&mut self, id: BackendId) {
        // A finish with nothing in flight is someone else's bookkeeping bug; wrapping to u64::MAX
        // would exile this backend forever, and a signed -1 would make it win every pick.
        self.active[id] = self.active[id].saturating_sub(1);
    }
}

// ---- Given: construction and inspection ----------------------------------------------------

impl LeastConnections {
    /// Balances over backends `0..backends`, none of them busy.
    pub fn new(backends: usize) -> Self {
        LeastConnections {
            active: vec![0; backends],
            last: None,
        }
    }

    /// Requests in flight on `id`.
    pub fn active(&self, id: BackendId) -> u64 {
        self.active[id]
    }
}

// ---- Lab --------------------------------------------------------------------------------------
// Real HTTP/1.1 servers on 127.0.0.1, real requests through your balancer: CONCURRENCY clients
// each send requests back to back (pick, on_start, GET /work, on_finish). sdlings_kit runs it.

const BACKENDS: usize = 4;
/// Latency of a healthy backend.
const BASE_LATENCY: Duration = Duration::from_millis(2);
/// Backend 1 answers this slowly in part 1. Try 10 ms, 200 ms.
const SLOW_BACKEND_LATENCY: Duration = Duration::from_millis(60);
const SLOW_BACKEND: BackendId = 1;
/// Requests per run, and how many clients send them concurrently. Try CONCURRENCY 4 and 32.
const REQUESTS: usize = 400;
const CONCURRENCY: usize = 16;
/// In part 2, backend 3 crashes when this many requests have been sent.
const CRASH_AFTER: usize = 100;
const CRASHING_BACKEND: BackendId = 3;

fn main() {
    let lab = SlowBackendLab {
        backends: BACKENDS,
        base_latency: BASE_LATENCY,
        slow_backend: SLOW_BACKEND,
        slow_latency: SLOW_BACKEND_LATENCY,
        requests: REQUESTS,
        concurrency: CONCURRENCY,
        crash_after: CRASH_AFTER,
        crashing_backend: CRASHING_BACKEND,
        client_timeout: Duration::from_secs(2),
    };
    lab.run(|| Box::new(LeastConnections::new(BACKENDS)));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Picks a backend and starts a request on it, as a proxy does.
    fn send(lb: &mut LeastConnections) -> BackendId {
        let id = lb.pick().expect("there are backends");
        lb.on_start(id);
        id
    }

    #[test]
    fn picks_the_backend_with_the_fewest_requests_in_flight() {
        let mut lb = LeastConnections::new(3);
        lb.on_start(0);
        lb.on_start(0);
        lb.on_start(1);
        assert_eq!(
            lb.pick(),
            Some(2),
            "backend 0 has 2 requests in flight, backend 1 has 1, backend 2 has none"
        );
        lb.on_start(2);
        lb.on_start(2);
        assert_eq!(
            lb.pick(),
            Some(1),
            "now 2, 1, 2 in flight: backend 1 is the least busy"
        );
    }

    #[test]
    fn ties_rotate_so_light_traffic_spreads_over_every_backend() {
        let mut lb = LeastConnections::new(3);
        let mut sequence = Vec::new();
        for _ in 0..6 {
            let id = send(&mut lb);
            lb.on_finish(id);
            sequence.push(id);
        }
        assert_eq!(
            sequence,
            vec![0, 1, 2, 0, 1, 2],
            "one request at a time: every backend is always at 0 in flight, so every pick is a \
             tie; ties go to the next backend after the last pick, not always to backend 0"
        );
    }

    #[test]
    fn a_tie_goes_to_the_first_tied_backend_after_the_last_pick() {
        let mut lb = LeastConnections::new(4);
        lb.on_start(0);
        lb.on_start(2);
        // In flight: [1, 0, 1, 0].
        assert_eq!(
            send(&mut lb),
            1,
            "first pick: the scan starts at backend 0; backends 1 and 3 tie at 0, 1 comes first"
        );
        // [1, 1, 1, 0]
        assert_eq!(
            send(&mut lb),
            3,
            "backend 3 is the only one with 0 in flight"
        );
        // [1, 1, 1, 1]: a four-way tie, scanned from after backend 3, wrapping around.
        assert_eq!(
            send(&mut lb),
            0,
            "all tie at 1 and the last pick was backend 3: the scan wraps around to backend 0"
        );
        // [2, 1, 1, 1]
        assert_eq!(
            send(&mut lb),
            1,
            "backends 1, 2, 3 tie at 1; the last pick was 0, so 1 is the first after it"
        );
        // [2, 2, 1, 1]
        assert_eq!(send(&mut lb), 2);
        assert_eq!(send(&mut lb), 3);
        assert_eq!(
            (0..4).map(|id| lb.active(id)).collect::<Vec<_>>(),
            vec![2, 2, 2, 2]
        );
    }

    #[test]
    fn a_finish_without_a_start_saturates_at_zero() {
        let mut lb = LeastConnections::new(2);
        lb.on_start(1);
        lb.on_finish(1);
        lb.on_finish(1); // reported twice by mistake
        assert_eq!(
            lb.active(1),
            0,
            "a double finish must leave the count at zero, not below (and not wrapped around)"
        );
        let mut counts = [0u32; 2];
        for _ in 0..10 {
            let id = send(&mut lb);
            counts[id] += 1;
        }
        assert_eq!(
            counts,
            [5, 5],
            "after the double finish both backends must share new requests equally; a count \
             of -1 would make backend 1 look the least busy for ever"
        );
    }

    #[test]
    fn no_backends_means_none() {
        let mut lb = LeastConnections::new(0);
        assert_eq!(lb.pick(), None);
    }

    #[test]
    fn a_slow_backend_piles_up_requests_and_gets_fewer_new_ones() {
        // A tick-by-tick simulation: 4 requests arrive every tick; backends 0 and 1 answer in
        // 1 tick, backend 2 (slow) in 10. Round robin would send it a third of everything.
        const SERVICE: [u32; 3] = [1, 1, 10];
        let mut lb = LeastConnections::new(3);
        let mut in_flight: Vec<(BackendId, u32)> = Vec::new(); // (backend, finishes at tick)
        let mut sent = [0u32; 3];
        let mut peak = [0u64; 3];
        for tick in 0..500 {
            in_flight.retain(|&(id, done)| {
                if done <= tick {
                    lb.on_finish(id);
                    false
                } else {
                    true
                }
            });
            for _ in 0..4 {
                let id = send(&mut lb);
                sent[id] += 1;
                peak[id] = peak[id].max(lb.active(id));
                in_flight.push((id, tick + SERVICE[id]));
            }
        }
        let total: u32 = sent.iter().sum();
        let slow_share = f64::from(sent[2]) / f64::from(total);
        assert!(
            slow_share < 0.12,
            "the slow backend got {:.0}% of the requests: with least connections its requests \
             pile up, its count climbs, and it should get well under a third (sent: {sent:?})",
            slow_share * 100.0
        );
        assert!(
            sent[2] > 0,
            "the slow backend still gets some traffic, just less"
        );
        assert!(
            peak.iter().all(|&p| p <= 8),
            "no backend should pile up more than a handful of requests, got peaks {peak:?}"
        );
    }

    #[test]
    fn random_starts_finishes_and_picks_match_a_reference_model() {
        // The reference: a count per backend, and the last pick. A pick takes the smallest count;
        // among equals, the first one met walking the ring from just after the last pick (from 0
        // before any pick). Only on_start and on_finish change counts, never below zero.
        use rand::RngExt;
        sdlings_kit::property::for_seeds(300, |rng| {
            let n = rng.random_range(1..=6);
            let mut lb = LeastConnections::new(n);
            let mut counts = vec![0u64; n];
            let mut last: Option<BackendId> = None;
            let mut log = Vec::new();
            for step in 0..150 {
                match rng.random_range(0..10) {
                    0..=4 => {
                        let start = last.map_or(0, |l| (l + 1) % n);
                        let expected = (0..n)
                            .map(|k| (start + k) % n)
                            .min_by_key(|&id| counts[id])
                            .unwrap();
                        let got = lb.pick();
                        log.push(format!("pick -> {got:?}"));
                        assert_eq!(
                            got,
                            Some(expected),
                            "step {step}: in flight {counts:?}, last pick {last:?}: the least \
                             busy backend, ties going to the first after the last pick, is \
                             {expected} (ops so far: {log:?})"
                        );
                        last = Some(expected);
                        lb.on_start(expected);
                        counts[expected] += 1;
                        log.push(format!("on_start({expected})"));
                    }
                    5..=7 => {
                        let id = rng.random_range(0..n);
                        lb.on_finish(id);
                        counts[id] = counts[id].saturating_sub(1);
                        log.push(format!("on_finish({id})"));
                    }
                    _ => {
                        // A request started without a pick (a retry pinned to its backend).
                        let id = rng.random_range(0..n);
                        lb.on_start(id);
                        counts[id] += 1;
                        log.push(format!("on_start({id}) without a pick"));
                    }
                }
                let actual: Vec<u64> = (0..n).map(|id| lb.active(id)).collect();
                assert_eq!(
                    actual, counts,
                    "step {step}: each on_start adds one, each on_finish takes one away (never \
                     below zero), nothing else changes a count (ops so far: {log:?})"
                );
            }
        });
    }

    #[test]
    fn one_finish_frees_one_slot_not_all_of_them() {
        let mut lb = LeastConnections::new(2);
        for _ in 0..3 {
            lb.on_start(0);
        }
        lb.on_start(1);
        lb.on_finish(0);
        assert_eq!(
            lb.active(0),
            2,
            "3 requests were in flight on backend 0 and one finished: 2 are left"
        );
        assert_eq!(
            lb.pick(),
            Some(1),
            "2 in flight on backend 0, 1 on backend 1"
        );
    }
}
