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
// `self.rng` so runs are repeatable) and `pick` (the less loaded of the two `sample_two` gives;
// on a tie the first sampled, so ties are random, not biased to low ids). One backend: return it without sampling.
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
use sdlings_kit::balancing::{BackendId, Balancer, ObserveLoad, StaleReportsLab};
use sdlings_kit::workload::seeded_rng;

pub struct PowerOfTwo {
    /// This balancer's view of the requests in flight on each backend (index = `BackendId`).
    active: Vec<u64>,
    /// The only source of randomness: seeded, so the same seed gives the same picks.
    rng: StdRng,
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
    /// The less loaded of the two backends drawn by one call of `sample_two` (its only source of
    /// randomness; the first drawn wins a tie); the only backend if there is one, without
    /// sampling; `None` if there are none.
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

// ---- Given: construction and inspection ----------------------------------------------------

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
}

impl ObserveLoad for PowerOfTwo {
    /// Replaces the whole load view with a load report (from a metrics feed or a control plane)
    /// that can be out of date. Requests started afterwards are counted on top of it.
    fn observe(&mut self, loads: &[u64]) {
        self.active.copy_from_slice(loads);
    }
}

// ---- Lab --------------------------------------------------------------------------------------
// BALANCERS proxy instances share BACKENDS backends; each request lasts 5 to 15 ticks; every
// REFRESH_EVERY ticks each instance gets a fresh load report (sdlings_kit::balancing runs it).

const BACKENDS: usize = 50;
const BALANCERS: usize = 20;
const ARRIVALS_PER_TICK: usize = 40;
const TICKS: u32 = 2_000;
/// How stale the shared load report gets. Try 1, 10, 50.
const REFRESH_EVERY: u32 = 2;
const SEED: u64 = 5;

fn main() {
    let lab = StaleReportsLab {
        backends: BACKENDS,
        balancers: BALANCERS,
        arrivals_per_tick: ARRIVALS_PER_TICK,
        ticks: TICKS,
        refresh_every: REFRESH_EVERY,
        seed: SEED,
    };
    lab.run(|seed| Box::new(PowerOfTwo::new(BACKENDS, seed)));
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

    #[test]
    fn pick_takes_the_less_loaded_of_the_pair_sample_two_draws() {
        // A twin balancer with the same seed, which only calls `sample_two`, tells which pair
        // `pick` draws: the busier of the two must never win, and a tie goes to the first drawn.
        use rand::RngExt;
        sdlings_kit::property::for_seeds(200, |rng| {
            let n = rng.random_range(2..=8);
            let loads: Vec<u64> = (0..n).map(|_| rng.random_range(0..4)).collect();
            let seed = rng.random();
            let mut lb = PowerOfTwo::new(n, seed);
            let mut twin = PowerOfTwo::new(n, seed);
            lb.observe(&loads);
            for step in 0..40 {
                let (a, b) = twin.sample_two();
                let expected = if lb.active(a) <= lb.active(b) { a } else { b };
                let got = lb.pick();
                assert_eq!(
                    got,
                    Some(expected),
                    "step {step}: {n} backends, in flight {:?}; pick drew backends {a} (load {}) \
                     and {b} (load {}) with sample_two, so it must return {expected}: the less \
                     loaded one, the first drawn on a tie",
                    (0..n).map(|id| lb.active(id)).collect::<Vec<_>>(),
                    lb.active(a),
                    lb.active(b)
                );
                if rng.random_range(0..2) == 0 {
                    lb.on_start(expected);
                }
            }
        });
    }

    #[test]
    fn sample_two_is_uniform_over_ordered_pairs_for_every_pool_size() {
        for n in 2..=6 {
            let mut lb = PowerOfTwo::new(n, 100 + n as u64);
            let pairs = n * (n - 1);
            let per_pair = 1_500;
            let mut counts = vec![vec![0u32; n]; n];
            for _ in 0..pairs * per_pair {
                let (a, b) = lb.sample_two();
                assert!(a < n && b < n && a != b, "({a}, {b}) with {n} backends");
                counts[a][b] += 1;
            }
            for (a, row) in counts.iter().enumerate() {
                for (b, &count) in row.iter().enumerate() {
                    if a != b {
                        assert!(
                            (1_250..=1_750).contains(&count),
                            "{n} backends: the ordered pair ({a}, {b}) came up {count} times, \
                             expected about {per_pair}: every backend must be as likely as any \
                             other in either place (all counts {counts:?})"
                        );
                    }
                }
            }
        }
    }
}
