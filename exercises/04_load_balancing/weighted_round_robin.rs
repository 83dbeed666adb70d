// Weighted round robin, the smooth way (nginx's algorithm).
//
// Backends are rarely identical: instance sizes differ, a canary should get 5% of the traffic, a
// backend warming its caches should get a little more each minute. Weights say how many requests
// each backend gets per cycle: with a=5, b=1, c=1, out of every 7 requests a gets 5. The naive
// way serves them in blocks (a,a,a,a,a,b,c): right shares, but bursts on a while b and c idle.
//
// Build `SmoothWeighted::pick`. Each backend carries a score `current` (starting at 0). On every
// pick: add each backend's weight to its `current`; pick the highest `current`; subtract the total
// weight from the winner's. Weights 5,1,1 then give a,a,b,a,c,a,a: same shares, spread out.
// Decisions the tests check: on a tie the lowest index wins; a weight-0 backend is never picked
// (that is how you drain one); no backend, or all weights 0, gives `None`.
//
// Why it matters: nginx's `upstream` uses exactly this for `weight=`; a burst of 100 requests on
// one node (weight 100 served in a block) is a latency spike on that node every cycle.
//
// Lab: turn WEIGHTS. Both algorithms give every backend its exact share per cycle, but compare
// "longest run" and "worst drift" (how far a backend ever gets from its exact share): the block
// algorithm's grow with the weights, smooth WRR's drift stays under one request. Try [10, 10, 10]
// (blocks of 10 versus a, b, c in turn), and [100, 1]: nothing avoids runs of 100 there, but b's
// request lands mid-cycle.

use sdlings_kit::lab::{Table, bar_chart, percent};

/// Backends are numbered 0..n in the order they were configured.
pub type BackendId = usize;

/// What every balancer in this topic offers. `pick` chooses a backend for the next request, or
/// `None` when no backend can take it. `on_start`/`on_finish` report a request starting and
/// finishing on a backend, for balancers that count connections (this one does not).
pub trait Balancer {
    fn pick(&mut self) -> Option<BackendId>;
    fn on_start(&mut self, _id: BackendId) {}
    fn on_finish(&mut self, _id: BackendId) {}
}

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

// ---- Your part -------------------------------------------------------------------------------

impl Balancer for SmoothWeighted {
    /// Adds each backend's weight to its `current`, picks the highest `current` (lowest index on
    /// a tie), and subtracts the total weight from the winner's. `None` when the total weight is
    /// 0 (no backends, or all drained).
    fn pick(&mut self) -> Option<BackendId> {
        todo!("add weights, pick the highest current, subtract the total")
    }
}

// ---- Lab --------------------------------------------------------------------------------------

/// Backend i's weight (a, b, c, ...). Try [5, 1, 1] (nginx's example), [10, 10, 10], [100, 1].
const WEIGHTS: [u32; 5] = [8, 4, 2, 1, 0];
/// Full cycles to run.
const CYCLES: usize = 1_000;

/// BASELINE FOR COMPARISON: classic weighted round robin, which serves each backend's whole
/// weight in one block before moving to the next.
struct BlockWeighted {
    weights: Vec<u32>,
    backend: usize,
    served_in_block: u32,
}

impl Balancer for BlockWeighted {
    fn pick(&mut self) -> Option<BackendId> {
        if self.weights.iter().all(|&w| w == 0) {
            return None;
        }
        while self.served_in_block >= self.weights[self.backend] {
            self.backend = (self.backend + 1) % self.weights.len();
            self.served_in_block = 0;
        }
        self.served_in_block += 1;
        Some(self.backend)
    }
}

fn letter(id: BackendId) -> char {
    char::from(b'a' + (id % 26) as u8)
}

struct Run {
    picks: Vec<BackendId>,
    counts: Vec<u64>,
    longest_run: Vec<usize>,
    /// The furthest each backend's pick count ever got from its exact share, in requests.
    worst_drift: Vec<f64>,
}

fn run(balancer: &mut dyn Balancer, requests: usize) -> Run {
    let mut picks = Vec::with_capacity(requests);
    let mut counts = vec![0u64; WEIGHTS.len()];
    let mut longest_run = vec![0usize; WEIGHTS.len()];
    let mut worst_drift = vec![0f64; WEIGHTS.len()];
    let total: u32 = WEIGHTS.iter().sum();
    let mut streak = 0;
    for i in 0..requests {
        let Some(id) = balancer.pick() else { break };
        counts[id] += 1;
        for (other, &weight) in WEIGHTS.iter().enumerate() {
            let exact = (i + 1) as f64 * f64::from(weight) / f64::from(total);
            let drift = (counts[other] as f64 - exact).abs();
            worst_drift[other] = worst_drift[other].max(drift);
        }
        streak = if i > 0 && picks[i - 1] == id {
            streak + 1
        } else {
            1
        };
        longest_run[id] = longest_run[id].max(streak);
        picks.push(id);
    }
    Run {
        picks,
        counts,
        longest_run,
        worst_drift,
    }
}

fn main() {
    let total: u32 = WEIGHTS.iter().sum();
    let requests = total as usize * CYCLES;
    println!(
        "weights {WEIGHTS:?} (backend a, b, c, ...), {requests} requests = {CYCLES} cycles of \
         {total}\n"
    );
    let mut block = BlockWeighted {
        weights: WEIGHTS.to_vec(),
        backend: 0,
        served_in_block: 0,
    };
    let mut smooth = SmoothWeighted::new(&WEIGHTS);
    let block = run(&mut block, requests);
    let smooth = run(&mut smooth, requests);

    let show = |r: &Run| -> String {
        let first: String = r
            .picks
            .iter()
            .take(2 * total as usize)
            .map(|&id| letter(id))
            .collect();
        if r.picks.len() > 2 * total as usize {
            format!("{first}...")
        } else {
            first
        }
    };
    println!("first two cycles, block:  {}", show(&block));
    println!("first two cycles, smooth: {}\n", show(&smooth));

    let mut table = Table::new(&[
        "backend",
        "weight",
        "target share",
        "share (smooth)",
        "longest run: block / smooth",
        "worst drift: block / smooth",
    ]);
    for (id, &weight) in WEIGHTS.iter().enumerate() {
        table.row(&[
            letter(id).to_string(),
            weight.to_string(),
            percent(u64::from(weight), u64::from(total)),
            percent(smooth.counts[id], smooth.picks.len() as u64),
            format!("{} / {}", block.longest_run[id], smooth.longest_run[id]),
            format!(
                "{:.2} / {:.2}",
                block.worst_drift[id], smooth.worst_drift[id]
            ),
        ]);
    }
    table.print();
    let bars: Vec<(String, f64)> = WEIGHTS
        .iter()
        .enumerate()
        .map(|(id, _)| (format!("{} (smooth)", letter(id)), smooth.counts[id] as f64))
        .collect();
    println!("\nrequests per backend\n{}", bar_chart(&bars, 40));
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

    fn longest_run_of(sequence: &[BackendId], id: BackendId) -> usize {
        let mut longest = 0;
        let mut run = 0;
        for &picked in sequence {
            run = if picked == id { run + 1 } else { 0 };
            longest = longest.max(run);
        }
        longest
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
    fn the_sequence_repeats_every_cycle_of_total_weight_picks() {
        let mut swrr = SmoothWeighted::new(&[5, 1, 1]);
        let first = picks(&mut swrr, 7);
        assert_eq!(
            swrr.currents(),
            vec![0, 0, 0],
            "after a full cycle every score is back to zero: the algorithm has no drift"
        );
        assert_eq!(
            picks(&mut swrr, 7),
            first,
            "the second cycle repeats the first"
        );
    }

    #[test]
    fn each_backend_gets_exactly_its_weight_in_every_full_cycle() {
        let weights = [3, 2, 7, 1, 4];
        let total: u32 = weights.iter().sum();
        let mut swrr = SmoothWeighted::new(&weights);
        for cycle in 0..5 {
            let mut counts = [0u32; 5];
            for id in picks(&mut swrr, total as usize) {
                counts[id] += 1;
            }
            assert_eq!(
                counts, weights,
                "cycle {cycle}: in each cycle of {total} picks, backend i is picked weights[i] \
                 times"
            );
        }
    }

    #[test]
    fn heavy_backends_are_interleaved_not_served_in_blocks() {
        let mut swrr = SmoothWeighted::new(&[8, 4, 2, 1]);
        let sequence = picks(&mut swrr, 45);
        assert!(
            longest_run_of(&sequence, A) <= 2,
            "a (weight 8 of 15) was picked {} times in a row: smooth WRR never sends it more \
             than 2 in a row here (the block algorithm sends 8); sequence {sequence:?}",
            longest_run_of(&sequence, A)
        );
        let mut swrr = SmoothWeighted::new(&[5, 5, 1]);
        let sequence = picks(&mut swrr, 33);
        for id in [A, B] {
            assert_eq!(
                longest_run_of(&sequence, id),
                1,
                "with weights 5,5,1, a and b alternate (a,b,a,b,c,a,b,...): backend {id} must \
                 never be picked twice in a row; sequence {sequence:?}"
            );
        }
    }

    #[test]
    fn every_prefix_stays_within_one_pick_of_the_exact_share() {
        // Smoothness, stated precisely: after n picks, backend i has been picked within one of
        // n * w_i / W times, for every n. Blocks break this as soon as one weight is above 2.
        for weights in [
            vec![5, 1, 1],
            vec![3, 2, 7, 1, 4],
            vec![10, 9, 1],
            vec![1, 8],
        ] {
            let total: u32 = weights.iter().sum();
            let mut swrr = SmoothWeighted::new(&weights);
            let mut counts = vec![0f64; weights.len()];
            for n in 1..=3 * total {
                counts[swrr.pick().unwrap()] += 1.0;
                for (id, &w) in weights.iter().enumerate() {
                    let exact = f64::from(n) * f64::from(w) / f64::from(total);
                    assert!(
                        (counts[id] - exact).abs() < 1.0 + 1e-9,
                        "weights {weights:?}: after {n} picks backend {id} had {} picks, but \
                         its exact share is {exact:.2}: the picks are bunched up",
                        counts[id]
                    );
                }
            }
        }
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

    #[test]
    fn large_weights_keep_exact_shares() {
        let weights = [1_000, 999, 1];
        let mut swrr = SmoothWeighted::new(&weights);
        let mut counts = [0u32; 3];
        for id in picks(&mut swrr, 2_000 * 2) {
            counts[id] += 1;
        }
        assert_eq!(counts, [2_000, 1_998, 2], "two full cycles of 2000 picks");
    }
}
