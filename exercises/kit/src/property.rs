//! Seeded property checks: run one test body over many random cases, each from its own seed, and
//! say which seed broke it.
//!
//! Why not a fresh random seed per run: a workbook's verdict must be the same every time the
//! learner saves, so the cases are fixed (seeds 0, 1, 2, ...). Why not one seed: one parameter
//! value is how a wrong answer slips through. A failing case prints its seed and the command that
//! replays exactly that case (`sdlings check NAME --seed N`, which sets `SDLINGS_SEED`): with the
//! variable set, every property runs that one seed only, so a debugger or a `println!` sees one
//! run.

use std::panic::{self, AssertUnwindSafe};

use rand::rngs::StdRng;

use crate::workload::seeded_rng;

/// The variable that narrows every property to one seed (set by `sdlings check --seed`).
pub const SEED_VAR: &str = "SDLINGS_SEED";

/// The variable that moves every property to the seeds from this one on (set by `sdlings dev
/// check` on its later runs of a solution, to try more seeds than a learner's check does).
pub const SEED_BASE_VAR: &str = "SDLINGS_SEED_BASE";

/// Runs `case` once per seed in `0..cases`, each with an RNG seeded by that number (only the seed
/// in `SDLINGS_SEED` when replaying; `cases` seeds from `SDLINGS_SEED_BASE` on for an author's
/// wider check). If a case panics, prints its seed and how to replay it, and fails with the
/// case's own message.
pub fn for_seeds(cases: u64, mut case: impl FnMut(&mut StdRng)) {
    let seeds = match (seed_from_env(SEED_VAR), seed_from_env(SEED_BASE_VAR)) {
        (Some(seed), _) => seed..seed + 1,
        (None, Some(base)) => base..base + cases,
        (None, None) => 0..cases,
    };
    for seed in seeds {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| case(&mut seeded_rng(seed))));
        if let Err(failure) = outcome {
            eprintln!(
                "property failed on case seed {seed}; replay exactly this case with:\n    {}",
                replay_command(seed)
            );
            panic::resume_unwind(failure);
        }
    }
}

/// Runs `case` once, with the RNG of `seed`: the case `for_seeds` reported as failing.
pub fn replay(seed: u64, mut case: impl FnMut(&mut StdRng)) {
    case(&mut seeded_rng(seed));
}

fn seed_from_env(var: &str) -> Option<u64> {
    let value = std::env::var(var).ok()?;
    match value.trim().parse() {
        Ok(seed) => Some(seed),
        Err(_) => panic!("{var}={value:?} is not a seed: give a whole number, e.g. {var}=17"),
    }
}

/// The one line that replays `seed`: `sdlings check` for a learner's exercise; cargo for an
/// author's solution (its binary ends in `_sol`), narrowed to the failing test.
fn replay_command(seed: u64) -> String {
    let exe = std::env::current_exe().ok();
    // Cargo names test binaries NAME-HASH.
    let name = exe
        .as_ref()
        .and_then(|p| p.file_stem())
        .and_then(|s| s.to_str())
        .map(|s| {
            s.rsplit_once('-')
                .map_or(s, |(name, _hash)| name)
                .to_string()
        })
        .unwrap_or_else(|| "NAME".to_string());
    match name.strip_suffix("_sol") {
        None => format!("sdlings check {name} --seed {seed}"),
        Some(_) => {
            // libtest names each test's thread after the test.
            let test = std::thread::current().name().unwrap_or("").to_string();
            format!("{SEED_VAR}={seed} cargo test -p solutions --bin {name} -- --exact {test}")
        }
    }
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
