// Power of two random choices — almost as good as least connections, for two looks per pick.
//
// Least connections scans every backend on every pick and trusts its load figures completely. At
// scale both hurt: the scan costs with 1,000 backends, and 50 balancer instances sharing slightly
// old load reports all see the same "least loaded" backend and pile onto it (herding). Random
// picking never herds but leaves some backends much busier by bad luck. The classic fix: sample
// *two* backends at random and take the less loaded. That one extra look cuts the busiest
// backend's excess load from about log n / log log n to about log log n (balls into bins), and
// random candidates keep instances with the same stale view from agreeing.
//
// Build `sample_two` (two *distinct* backends, uniformly at random, drawn from the seeded
// `self.rng` so runs are repeatable) and `pick` (the less loaded of the two; on a tie the first
// sampled, so ties are random, not biased to low ids). One backend: return it without sampling.
// No backends: `None`. Envoy's LEAST_REQUEST policy (its default policy is ROUND_ROBIN),
// HAProxy's `balance random(2)` and nginx's `random two least_conn` all work this way.
//
// Lab: 20 balancer instances share a load report refreshed every REFRESH_EVERY ticks. The full
// scan herds even with fresh reports; power of two keeps the busiest backend much closer to the
// average than random, looking at 2 backends instead of 50. Turn REFRESH_EVERY up to 10 and 50:
// power of two degrades but stays ahead of the full scan; with very old reports even random
// catches up. Stale load information is dangerous, and randomness limits the damage.

use rand::RngExt;
use rand::rngs::StdRng;
use sdlings_kit::lab::{Table, bar_chart};
use sdlings_kit::workload::seeded_rng;

/// Backends are numbered 0..n in the order they were configured.
pub type BackendId = usize;

/// What every balancer in this topic offers. `pick` chooses a backend for the next request, or
/// `None` when no backend can take it. The caller reports `on_start(id)` when it sends a request
/// to the backend it picked, and `on_finish(id)` when the request is over.
pub trait Balancer {
    fn pick(&mut self) -> Option<BackendId>;
    fn on_start(&mut self, _id: BackendId) {}
    fn on_finish(&mut self, _id: BackendId) {}
}

pub struct PowerOfTwo {
    /// This balancer's view of the requests in flight on each backend (index = `BackendId`).
    active: Vec<u64>,
    /// The only source of randomness: seeded, so the same seed gives the same picks.
    rng: StdRng,
}

impl PowerOfTwo {
    /// Balances over backends `0..backends`; `seed` makes its random choices repeatable.
    pub fn new(backends: usize, seed: u64) -> Self {
        PowerOfTwo {
            active: vec![0; backends],
            rng: seeded_rng(seed),
        }
    }

    /// This balancer's idea of the requests in flight on `id`.
    pub fn active(&self, id: BackendId) -> u64 {
        self.active[id]
    }

    /// Replaces the whole load view with a load report (from a metrics feed or a control plane)
    /// that can be out of date. Requests started afterwards are counted on top of it.
    pub fn observe(&mut self, loads: &[u64]) {
        self.active.copy_from_slice(loads);
    }
}

// ---- Your part -------------------------------------------------------------------------------

impl PowerOfTwo {
    /// Two different backends, chosen uniformly at random with `self.rng`: every pair is equally
    /// likely, and so is the order within a pair. Only called with at least two backends.
    pub fn sample_two(&mut self) -> (BackendId, BackendId) {
        let n = self.active.len();
        debug_assert!(n >= 2, "sample_two needs at least two backends");
        let first = self.rng.random_range(0..n);
        // Draw the second from the n - 1 *other* backends: skip over `first` by shifting the
        // upper part down one. No retry loop, no bias, never the same backend twice.
        let mut second = self.rng.random_range(0..n - 1);
        if second >= first {
            second += 1;
        }
        (first, second)
    }
}

impl Balancer for PowerOfTwo {
    /// The less loaded of two randomly sampled backends (the first sampled on a tie); the only
    /// backend if there is one; `None` if there are none.
    fn pick(&mut self) -> Option<BackendId> {
        match self.active.len() {
            0 => None,
            1 => Some(0),
            _ => {
                let (a, b) = self.sample_two();
                // `<=`: a tie goes to the first sample, which is itself uniformly random.
                Some(if self.active[a] <= self.active[b] {
                    a
                } else {
                    b
                })
            }
        }
    }

    // Given: the same bookkeeping as in least connections.
    fn on_start(&mut self, id: BackendId) {
        self.active[id] += 1;
    }

    fn on_finish(&mut self, id: BackendId) {
        self.active[id] = self.active[id].saturating_sub(1);
    }
}

// ---- Lab --------------------------------------------------------------------------------------
// A tick-based simulation of a busy tier: BALANCERS proxy instances (think: one Envoy sidecar per
// client pod) share BACKENDS backends. Every tick ARRIVALS_PER_TICK requests arrive, spread over
// the instances; each request keeps its backend busy for 5 to 15 ticks. Every REFRESH_EVERY ticks
// each instance receives a fresh load report; in between it only adds the requests it sent itself.

const BACKENDS: usize = 50;
const BALANCERS: usize = 20;
const ARRIVALS_PER_TICK: usize = 40;
const TICKS: u32 = 2_000;
/// How stale the shared load report gets. Try 1, 10, 50.
const REFRESH_EVERY: u32 = 2;
const SEED: u64 = 5;

/// BASELINE FOR COMPARISON: uniformly random, ignores load.
struct Random {
    backends: usize,
    rng: StdRng,
}

impl Balancer for Random {
    fn pick(&mut self) -> Option<BackendId> {
        (self.backends > 0).then(|| self.rng.random_range(0..self.backends))
    }
}

/// BASELINE FOR COMPARISON: least connections with a full scan over the (possibly stale) view.
struct FullScan {
    view: Vec<u64>,
}

impl Balancer for FullScan {
    fn pick(&mut self) -> Option<BackendId> {
        (0..self.view.len()).min_by_key(|&id| self.view[id])
    }
    fn on_start(&mut self, id: BackendId) {
        self.view[id] += 1;
    }
}

/// What the lab needs from each algorithm: a balancer, and a way to load a report into it.
trait LabBalancer: Balancer {
    fn observe_report(&mut self, loads: &[u64]);
}

impl LabBalancer for PowerOfTwo {
    fn observe_report(&mut self, loads: &[u64]) {
        self.observe(loads);
    }
}

impl LabBalancer for FullScan {
    fn observe_report(&mut self, loads: &[u64]) {
        self.view.copy_from_slice(loads);
    }
}

impl LabBalancer for Random {
    fn observe_report(&mut self, _loads: &[u64]) {}
}

struct Outcome {
    /// The busiest backend's in-flight count, averaged over ticks.
    mean_busiest: f64,
    /// The most requests ever in flight on one backend.
    peak: u64,
    /// The busiest backend's excess over the average, averaged over ticks.
    mean_excess: f64,
    /// Requests sent to each backend.
    sent: Vec<u64>,
}

fn simulate(mut balancers: Vec<Box<dyn LabBalancer>>) -> Outcome {
    // The same arrivals and service times for every algorithm.
    let mut rng = seeded_rng(SEED);
    let mut in_flight = vec![0u64; BACKENDS];
    // finishing[t % 16]: the backends whose requests finish at tick t.
    let mut finishing: Vec<Vec<BackendId>> = vec![Vec::new(); 16];
    let mut sent = vec![0u64; BACKENDS];
    let (mut busiest_sum, mut excess_sum, mut peak) = (0.0, 0.0, 0);
    for tick in 0..TICKS {
        for id in std::mem::take(&mut finishing[tick as usize % 16]) {
            in_flight[id] -= 1;
        }
        if tick % REFRESH_EVERY == 0 {
            for balancer in &mut balancers {
                balancer.observe_report(&in_flight);
            }
        }
        for arrival in 0..ARRIVALS_PER_TICK {
            let balancer = &mut balancers[arrival % BALANCERS];
            let id = balancer.pick().expect("there are backends");
            balancer.on_start(id);
            in_flight[id] += 1;
            sent[id] += 1;
            let done = tick + rng.random_range(5..=15);
            finishing[done as usize % 16].push(id);
        }
        let busiest = *in_flight.iter().max().expect("backends");
        let average = in_flight.iter().sum::<u64>() as f64 / BACKENDS as f64;
        peak = peak.max(busiest);
        busiest_sum += busiest as f64;
        excess_sum += busiest as f64 - average;
    }
    Outcome {
        mean_busiest: busiest_sum / f64::from(TICKS),
        peak,
        mean_excess: excess_sum / f64::from(TICKS),
        sent,
    }
}

fn main() {
    println!(
        "{BALANCERS} balancer instances, {BACKENDS} backends, {ARRIVALS_PER_TICK} requests per \
         tick lasting 5-15 ticks (about {} in flight per backend); load report every \
         {REFRESH_EVERY} ticks.\n",
        ARRIVALS_PER_TICK * 10 / BACKENDS
    );
    let random = simulate(
        (0..BALANCERS)
            .map(|i| {
                Box::new(Random {
                    backends: BACKENDS,
                    rng: seeded_rng(SEED + 100 + i as u64),
                }) as Box<dyn LabBalancer>
            })
            .collect(),
    );
    let full_scan = simulate(
        (0..BALANCERS)
            .map(|_| {
                Box::new(FullScan {
                    view: vec![0; BACKENDS],
                }) as Box<dyn LabBalancer>
            })
            .collect(),
    );
    let two = simulate(
        (0..BALANCERS)
            .map(|i| Box::new(PowerOfTwo::new(BACKENDS, SEED + 200 + i as u64)) as _)
            .collect(),
    );

    let mut table = Table::new(&[
        "algorithm",
        "backends looked at per pick",
        "busiest backend (mean)",
        "excess over average (mean)",
        "peak in flight",
    ]);
    for (name, looks, outcome) in [
        ("random", "0".to_string(), &random),
        ("least conns (full scan)", BACKENDS.to_string(), &full_scan),
        ("power of two (yours)", "2".to_string(), &two),
    ] {
        table.row(&[
            name.to_string(),
            looks,
            format!("{:.1}", outcome.mean_busiest),
            format!("{:.1}", outcome.mean_excess),
            outcome.peak.to_string(),
        ]);
    }
    table.print();
    let bars: Vec<(String, f64)> = [
        ("random", &random),
        ("least conns (full scan)", &full_scan),
        ("power of two (yours)", &two),
    ]
    .iter()
    .map(|(name, o)| (name.to_string(), (o.mean_excess * 10.0).round() / 10.0))
    .collect();
    println!(
        "\nbusiest backend's excess over the average, in requests in flight (lower is better)\n{}",
        bar_chart(&bars, 40)
    );
    let (min, max) = (
        two.sent.iter().min().expect("backends"),
        two.sent.iter().max().expect("backends"),
    );
    println!("\npower of two: requests per backend between {min} and {max}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts `n` requests on backend `id`.
    fn load(lb: &mut PowerOfTwo, id: BackendId, n: u64) {
        for _ in 0..n {
            lb.on_start(id);
        }
    }

    fn sequence(seed: u64) -> Vec<BackendId> {
        let mut lb = PowerOfTwo::new(5, seed);
        (0..300)
            .map(|i| {
                let id = lb.pick().expect("5 backends");
                lb.on_start(id);
                if i % 3 == 0 {
                    lb.on_finish(id);
                }
                id
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_picks() {
        assert_eq!(
            sequence(42),
            sequence(42),
            "two balancers with seed 42 must make exactly the same choices: draw every random \
             number from `self.rng`, never from an unseeded generator such as `rand::rng()`"
        );
        assert_ne!(
            sequence(42),
            sequence(43),
            "different seeds should give different choices: the picks must actually be random"
        );
    }

    #[test]
    fn sample_two_never_returns_the_same_backend_twice() {
        for n in [2, 3, 7] {
            let mut lb = PowerOfTwo::new(n, 1);
            for _ in 0..5_000 {
                let (a, b) = lb.sample_two();
                assert!(a < n && b < n, "({a}, {b}) out of range for {n} backends");
                assert_ne!(
                    a, b,
                    "sampled backend {a} twice: comparing a backend with itself wastes the \
                     second choice (and with 2 backends, picks the busy one half the time)"
                );
            }
        }
    }

    #[test]
    fn sample_two_makes_every_pair_and_every_order_equally_likely() {
        let mut lb = PowerOfTwo::new(4, 7);
        let mut pairs = [[0u32; 4]; 4];
        for _ in 0..24_000 {
            let (a, b) = lb.sample_two();
            pairs[a][b] += 1;
        }
        for (a, row) in pairs.iter().enumerate() {
            for (b, &count) in row.iter().enumerate() {
                if a == b {
                    continue;
                }
                assert!(
                    (1_600..=2_400).contains(&count),
                    "the ordered pair ({a}, {b}) came up {count} times in 24000 samples; each \
                     of the 12 ordered pairs should come up about 2000 times (all {pairs:?})"
                );
            }
        }
    }

    #[test]
    fn picks_the_less_loaded_of_the_two() {
        let mut lb = PowerOfTwo::new(2, 3);
        load(&mut lb, 0, 5);
        for _ in 0..1_000 {
            assert_eq!(
                lb.pick(),
                Some(1),
                "with two backends both are always sampled, so the idle one (1) must always \
                 win against the busy one (0, with 5 in flight)"
            );
        }
    }

    #[test]
    fn the_most_loaded_backend_never_wins_and_the_least_wins_most() {
        let mut lb = PowerOfTwo::new(4, 11);
        for id in 0..4 {
            load(&mut lb, id, id as u64); // in flight: [0, 1, 2, 3]
        }
        let mut wins = [0u32; 4];
        for _ in 0..12_000 {
            wins[lb.pick().unwrap()] += 1;
        }
        assert_eq!(
            wins[3], 0,
            "backend 3 is the busiest: it loses every comparison and must never be picked"
        );
        // Backend i wins when sampled with a busier one: 3 of the 6 pairs contain 0, 2 have 1
        // as the less loaded, 1 has 2: shares 1/2, 1/3, 1/6.
        for (id, expected) in [(0, 6_000), (1, 4_000), (2, 2_000)] {
            assert!(
                (expected * 85 / 100..=expected * 115 / 100).contains(&wins[id]),
                "backend {id} won {} of 12000 picks, expected about {expected} (the less loaded \
                 of two uniform random distinct backends): {wins:?}",
                wins[id]
            );
        }
    }

    #[test]
    fn ties_are_broken_at_random_not_in_favour_of_low_ids() {
        let mut lb = PowerOfTwo::new(4, 9);
        let mut wins = [0u32; 4];
        for _ in 0..8_000 {
            wins[lb.pick().unwrap()] += 1;
        }
        for (id, &count) in wins.iter().enumerate() {
            assert!(
                (1_700..=2_300).contains(&count),
                "all backends are idle, so every pick is a tie and each should win about 2000 \
                 of 8000; backend {id} won {count} ({wins:?}): breaking ties by lowest id \
                 favours backend 0, use the first sample instead"
            );
        }
    }

    #[test]
    fn a_single_backend_is_picked_without_sampling_and_none_means_none() {
        let mut lb = PowerOfTwo::new(1, 1);
        load(&mut lb, 0, 3);
        for _ in 0..10 {
            assert_eq!(
                lb.pick(),
                Some(0),
                "one backend: nothing to compare, and there is no second distinct backend to \
                 sample"
            );
        }
        let mut empty = PowerOfTwo::new(0, 1);
        assert_eq!(empty.pick(), None);
    }

    #[test]
    fn long_lived_requests_stay_evenly_spread() {
        // Balls into bins: 5000 requests that never finish, over 50 backends (100 on average).
        // Random picking leaves the busiest backend around 20-25 above the average; the power
        // of two choices keeps it within a few.
        let mut lb = PowerOfTwo::new(50, 2024);
        for _ in 0..5_000 {
            let id = lb.pick().unwrap();
            lb.on_start(id);
        }
        let loads: Vec<u64> = (0..50).map(|id| lb.active(id)).collect();
        let (min, max) = (*loads.iter().min().unwrap(), *loads.iter().max().unwrap());
        assert!(
            max <= 105 && min >= 90,
            "with two choices per request the loads should stay close to 100 (random picking \
             strays by 20 or more), got min {min}, max {max}: {loads:?}"
        );
    }
}
