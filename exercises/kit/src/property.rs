//! Seeded property checks: run one test body over many random cases, each from its own seed, and
//! say which seed broke it.
//!
//! Why not a fresh random seed per run: a workbook's verdict must be the same every time the
//! learner saves, so the cases are fixed (seeds 0, 1, 2, ...). Why not one seed: one parameter
//! value is how a wrong answer slips through. A failing case names its seed; `replay(seed, ...)`
//! runs just that one while you debug.

use std::panic::{self, AssertUnwindSafe};

use rand::rngs::StdRng;

use crate::workload::seeded_rng;

/// Runs `case` once per seed in `0..cases`, each with an RNG seeded by that number. If a case
/// panics, prints its seed (and how to replay it) and fails with the case's own message.
pub fn for_seeds(cases: u64, mut case: impl FnMut(&mut StdRng)) {
    for seed in 0..cases {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| case(&mut seeded_rng(seed))));
        if let Err(failure) = outcome {
            eprintln!(
                "property failed on case seed {seed} of {cases}; to run only that case, call \
                 `sdlings_kit::property::replay({seed}, ...)` with the same body"
            );
            panic::resume_unwind(failure);
        }
    }
}

/// Runs `case` once, with the RNG of `seed`: the case `for_seeds` reported as failing.
pub fn replay(seed: u64, mut case: impl FnMut(&mut StdRng)) {
    case(&mut seeded_rng(seed));
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    #[test]
    fn every_seed_is_tried_in_order_and_each_case_gets_its_own_stream() {
        let mut firsts = Vec::new();
        for_seeds(5, |rng| firsts.push(rng.random::<u64>()));
        let expected: Vec<u64> = (0..5).map(|s| seeded_rng(s).random::<u64>()).collect();
        assert_eq!(firsts, expected);
    }

    #[test]
    fn a_failing_case_fails_the_whole_check() {
        let result = panic::catch_unwind(|| {
            for_seeds(10, |rng| assert!(rng.random_range(0..4) != 3, "drew a 3"));
        });
        assert!(result.is_err(), "some seed below 10 draws a 3");
    }
}
