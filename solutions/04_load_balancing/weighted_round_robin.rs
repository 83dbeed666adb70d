// Weighted round robin, the smooth way (nginx's algorithm).
//
// Backends are rarely identical: instance sizes differ, a canary should get 5% of the traffic, a
// backend warming its caches should get a little more each minute. Weights say how many requests
// each backend gets per cycle: with a=5, b=1, c=1, out of every 7 requests a gets 5. The naive
// way serves them in blocks (a,a,a,a,a,b,c): right shares, but bursts on a while b and c idle.
//
// Build `SmoothWeighted::pick`, nginx's smooth weighted round robin. The property the tests
// check: every pick goes to the backend furthest behind its exact share (after n picks, backend
// i's exact share is n x weight_i / total), the lowest index on a tie. So any `total` consecutive
// picks hold each backend exactly `weight` times, and the light backends land *between* the heavy
// one's picks: weights 5,1,1 give a,a,b,a,c,a,a. Each backend keeps one running score `current`
// (starting at 0; the tests check it too): the hints give nginx's rule for updating it. Decisions:
// a weight-0 backend is never picked (that is how you drain one); no backend, or all weights 0,
// gives `None`.
//
// Why it matters: nginx's `upstream` uses exactly this for `weight=`; a burst of 100 requests on
// one node (weight 100 served in a block) is a latency spike on that node every cycle.
//
// Lab: turn WEIGHTS. Both algorithms give every backend its exact share per cycle, but compare
// "longest run" and "worst drift" (how far a backend ever gets from its exact share): the block
// algorithm's grow with the weights, smooth WRR's stay around one request. Try [10, 10, 10]
// (blocks of 10 versus a, b, c in turn), and [100, 1]: nothing avoids runs of 100 there, but b's
// request lands mid-cycle.

use sdlings_kit::balancing::{BackendId, Balancer, weighted_lab};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedBackend {
    /// Requests per cycle; 0 means "send nothing".
    pub weight: u32,
    /// Smooth weighted round robin's running score. Signed: the winner goes below zero.
    pub current: i64,
}

/// Smooth weighted round robin over backends `0..n`.
pub struct SmoothWeighted {
    backends: Vec<WeightedBackend>,
}

// ---- Your part -------------------------------------------------------------------------------

impl Balancer for SmoothWeighted {
    /// The backend furthest behind its exact share (lowest index on a tie), updating every
    /// backend's `current` score as nginx does. `None` when the total weight is 0 (no backends,
    /// or all drained): no score changes then.
    fn pick(&mut self) -> Option<BackendId> {
        let total = self.total_weight();
        if total == 0 {
            // Also covers "no backends at all". Without this check a pool of zero weights would
            // still "pick" backend 0, since every score stays tied at zero.
            return None;
        }
        for backend in &mut self.backends {
            backend.current += i64::from(backend.weight);
        }
        let mut best: Option<BackendId> = None;
        for (id, backend) in self.backends.iter().enumerate() {
            // A drained backend (weight 0) is never a candidate, even with a positive score left
            // over from before `set_weight(id, 0)`: that leftover could still be the highest.
            if backend.weight == 0 {
                continue;
            }
            // Strictly greater: on a tie the earlier (lower) index keeps the win.
            if best.is_none_or(|b| backend.current > self.backends[b].current) {
                best = Some(id);
            }
        }
        // The total weight is positive, so some backend has a positive weight.
        let best = best.expect("a backend with a positive weight");
        // The winner pays for its pick with the whole cycle's weight; everyone else keeps what
        // they accumulated. The scores always sum to zero after a pick, so nobody drifts away.
        self.backends[best].current -= total;
        Some(best)
    }
}

// ---- Given: construction and inspection ----------------------------------------------------

impl SmoothWeighted {
    /// Backend `i` gets weight `weights[i]`.
    pub fn new(weights: &[u32]) -> Self {
        SmoothWeighted {
            backends: weights
                .iter()
                .map(|&weight| WeightedBackend { weight, current: 0 })
                .collect(),
        }
    }

    /// Changes a backend's weight, e.g. to ramp a new backend up slowly or to drain one (0).
    /// Its `current` score is kept, so the change takes effect smoothly from the next pick.
    pub fn set_weight(&mut self, id: BackendId, weight: u32) {
        self.backends[id].weight = weight;
    }

    /// The sum of all weights: the length of one full cycle.
    pub fn total_weight(&self) -> i64 {
        self.backends.iter().map(|b| i64::from(b.weight)).sum()
    }

    /// Every backend's `current` score, in id order.
    pub fn currents(&self) -> Vec<i64> {
        self.backends.iter().map(|b| b.current).collect()
    }
}

// ---- Lab --------------------------------------------------------------------------------------

/// Backend i's weight (a, b, c, ...). Try [5, 1, 1] (nginx's example), [10, 10, 10], [100, 1].
const WEIGHTS: [u32; 5] = [8, 4, 2, 1, 0];
/// Full cycles to run.
const CYCLES: usize = 1_000;

fn main() {
    // The block algorithm against yours: runs, drift and shares (sdlings_kit::balancing).
    weighted_lab(&WEIGHTS, CYCLES, &mut SmoothWeighted::new(&WEIGHTS));
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: BackendId = 0;
    const B: BackendId = 1;
    const C: BackendId = 2;

    fn picks(balancer: &mut SmoothWeighted, n: usize) -> Vec<BackendId> {
        (0..n)
            .map(|i| {
                balancer
                    .pick()
                    .unwrap_or_else(|| panic!("pick {i} returned None with non-zero weights"))
            })
            .collect()
    }

    #[test]
    fn weights_5_1_1_give_the_smooth_sequence_a_a_b_a_c_a_a() {
        let mut swrr = SmoothWeighted::new(&[5, 1, 1]);
        assert_eq!(
            picks(&mut swrr, 7),
            vec![A, A, B, A, C, A, A],
            "smooth WRR interleaves the light backends between the heavy one's picks; \
             a,a,a,a,a,b,c is the block (naive) algorithm, and a,a,c,a,b,a,a breaks the \
             b/c tie in favour of the higher index"
        );
    }

    #[test]
    fn the_scores_follow_the_add_weight_pick_max_subtract_total_rule() {
        let mut swrr = SmoothWeighted::new(&[5, 1, 1]);
        swrr.pick();
        assert_eq!(
            swrr.currents(),
            vec![-2, 1, 1],
            "after one pick: every backend gained its weight (5, 1, 1), and the winner (a) \
             paid the total weight 7"
        );
        swrr.pick();
        assert_eq!(swrr.currents(), vec![-4, 2, 2]);
        swrr.pick();
        assert_eq!(
            swrr.currents(),
            vec![1, -4, 3],
            "third pick: b and c tie at 3, b (the lower index) wins and pays 7"
        );
    }

    #[test]
    fn ties_are_won_by_the_lowest_index() {
        let mut swrr = SmoothWeighted::new(&[1, 1, 1]);
        assert_eq!(
            picks(&mut swrr, 6),
            vec![0, 1, 2, 0, 1, 2],
            "equal weights tie on every first pick: lowest index first makes it plain round \
             robin in id order"
        );
        let mut swrr = SmoothWeighted::new(&[2, 2]);
        assert_eq!(picks(&mut swrr, 4), vec![0, 1, 0, 1]);
    }

    #[test]
    fn a_backend_with_weight_zero_is_never_picked() {
        let mut swrr = SmoothWeighted::new(&[0, 2, 0, 1]);
        let sequence = picks(&mut swrr, 30);
        assert!(
            !sequence.contains(&0) && !sequence.contains(&2),
            "backends 0 and 2 have weight 0 (drained): they must get nothing, got {sequence:?}"
        );
        assert_eq!(&sequence[..3], &[1, 3, 1]);
    }

    #[test]
    fn no_backends_or_all_weights_zero_returns_none() {
        let mut empty = SmoothWeighted::new(&[]);
        assert_eq!(empty.pick(), None, "no backends: nothing to pick");
        let mut drained = SmoothWeighted::new(&[0, 0, 0]);
        assert_eq!(
            drained.pick(),
            None,
            "every backend has weight 0: None, not backend 0 by default"
        );
        assert_eq!(drained.currents(), vec![0, 0, 0]);
    }

    #[test]
    fn a_weight_change_takes_effect_from_the_next_pick() {
        let mut swrr = SmoothWeighted::new(&[1, 1]);
        picks(&mut swrr, 3);
        swrr.set_weight(0, 3);
        let mut counts = [0u32; 2];
        for id in picks(&mut swrr, 400) {
            counts[id] += 1;
        }
        assert!(
            (298..=302).contains(&counts[0]),
            "backend 0's weight went from 1 to 3 (of a total of 4): it should get about 300 of \
             the next 400 picks, got {}; is the total weight computed once and kept?",
            counts[0]
        );
        swrr.set_weight(1, 0);
        let after_drain = picks(&mut swrr, 10);
        assert!(
            after_drain.iter().all(|&id| id == 0),
            "backend 1 was drained (weight 0): everything goes to backend 0, got {after_drain:?}"
        );
    }

    /// Random weights for a property case: 1 to 7 backends, a few of them drained (weight 0).
    fn random_weights(rng: &mut rand::rngs::StdRng) -> Vec<u32> {
        use rand::RngExt;
        const CHOICES: [u32; 10] = [0, 0, 1, 2, 3, 5, 7, 10, 20, 50];
        let n = rng.random_range(1..=7);
        (0..n)
            .map(|_| CHOICES[rng.random_range(0..CHOICES.len())])
            .collect()
    }

    #[test]
    fn every_pick_goes_to_the_backend_furthest_behind_its_exact_share() {
        // The reference model: before pick number n (counting from 1), backend i's exact share is
        // n * w_i / W; it has been picked c_i times. The pick goes to the largest n * w_i - W * c_i
        // (the share scaled by W, to stay in integers), the lowest index on a tie.
        sdlings_kit::property::for_seeds(200, |rng| {
            let weights = random_weights(rng);
            let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
            let mut swrr = SmoothWeighted::new(&weights);
            if total == 0 {
                assert_eq!(
                    swrr.pick(),
                    None,
                    "weights {weights:?}: all drained, so None"
                );
                return;
            }
            let mut picked = vec![0i64; weights.len()];
            for n in 1..=2 * total {
                let behind = |i: usize| n * i64::from(weights[i]) - total * picked[i];
                let expected = (0..weights.len())
                    .fold(0, |best, i| if behind(i) > behind(best) { i } else { best });
                let got = swrr.pick();
                assert_eq!(
                    got,
                    Some(expected),
                    "weights {weights:?}, pick {n}: backend {expected} is furthest behind its \
                     exact share (picks so far {picked:?}), so it must be picked (lowest index on \
                     a tie); scores now {:?}",
                    swrr.currents()
                );
                picked[expected] += 1;
            }
            assert!(
                swrr.currents().iter().all(|&c| c == 0),
                "weights {weights:?}: after two full cycles every score is back to 0, got {:?}",
                swrr.currents()
            );
        });
    }

    #[test]
    fn any_window_of_total_weight_picks_holds_each_backend_exactly_its_weight() {
        sdlings_kit::property::for_seeds(200, |rng| {
            let weights = random_weights(rng);
            let total: u32 = weights.iter().sum();
            if total == 0 {
                return;
            }
            let mut swrr = SmoothWeighted::new(&weights);
            let sequence = picks(&mut swrr, 3 * total as usize);
            for start in 0..=2 * total as usize {
                let mut counts = vec![0u32; weights.len()];
                for &id in &sequence[start..start + total as usize] {
                    counts[id] += 1;
                }
                assert_eq!(
                    counts,
                    weights,
                    "weights {weights:?}: picks {start}..{} (any {total} in a row) must hold \
                     backend i exactly weights[i] times",
                    start + total as usize
                );
            }
        });
    }

    #[test]
    fn a_backend_drained_mid_cycle_is_never_picked_again() {
        let mut swrr = SmoothWeighted::new(&[1, 1]);
        assert_eq!(picks(&mut swrr, 1), vec![A]);
        swrr.set_weight(B, 0);
        assert_eq!(
            picks(&mut swrr, 4),
            vec![A; 4],
            "backend 1 was drained (weight 0) while its score was the highest ({:?} now): a \
             drained backend gets nothing, whatever score it kept",
            swrr.currents()
        );
        // The same at every point of a cycle, for any weights and any backends drained.
        sdlings_kit::property::for_seeds(200, |rng| {
            use rand::RngExt;
            let weights = random_weights(rng);
            let mut swrr = SmoothWeighted::new(&weights);
            let before = rng.random_range(0..=2 * swrr.total_weight() as usize);
            for _ in 0..before {
                swrr.pick();
            }
            let mut drained = Vec::new();
            for id in 0..weights.len() {
                if rng.random_range(0..3) == 0 {
                    swrr.set_weight(id, 0);
                    drained.push(id);
                }
            }
            let scores = swrr.currents();
            let total = swrr.total_weight() as usize;
            if total == 0 {
                assert_eq!(swrr.pick(), None, "weights {weights:?}, all drained: None");
                return;
            }
            let after = picks(&mut swrr, 2 * total);
            assert!(
                after.iter().all(|id| !drained.contains(id)),
                "weights {weights:?}, {before} picks, then backends {drained:?} drained (scores \
                 then {scores:?}): a drained backend must get nothing, got {after:?}"
            );
        });
    }

    #[test]
    fn a_single_backend_gets_every_pick_and_its_score_stays_at_zero() {
        let mut swrr = SmoothWeighted::new(&[3]);
        assert_eq!(picks(&mut swrr, 4), vec![0, 0, 0, 0]);
        assert_eq!(
            swrr.currents(),
            vec![0],
            "one backend of weight 3 gains 3 and pays the total, 3, on every pick"
        );
        let mut lonely_drained = SmoothWeighted::new(&[0]);
        assert_eq!(
            lonely_drained.pick(),
            None,
            "the only backend is drained (weight 0): None, not backend 0"
        );
    }
}
