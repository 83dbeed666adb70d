//! `sdlings check [NAME]`: check one exercise once.

use anyhow::Result;

use super::{Outcome, resolve};
use crate::present;
use crate::runner::{Cancel, Package, check};
use crate::term::{self, StatusLine};
use crate::workbook::Workbook;

pub fn run(workbook: &Workbook, name: Option<&str>, seed: Option<u64>) -> Result<Outcome> {
    let index = resolve(workbook, name)?;
    let exercise = &workbook.info.exercises[index];
    let mut status = StatusLine::new();
    status.set(&format!("Checking {}…", exercise.name));
    let verdict = check(
        workbook,
        Package::Exercises,
        index,
        seed,
        term::color_enabled(),
        &Cancel::new(),
        &mut |line| status.set(&format!("Checking {}: {line}", exercise.name)),
    )?
    .expect("nothing cancels a one-off check");
    status.clear();
    let path = workbook.display_path(&workbook.exercise_path(exercise));
    print!("{}", present::verdict_text(&exercise.name, &path, &verdict));
    if let Some(seed) = seed {
        println!(
            "(Replayed seed {seed} only: a pass on one seed is not recorded. Run `sdlings check {}` \
             to check every seed.)",
            exercise.name
        );
        return Ok(if verdict.passed() {
            Outcome::Success
        } else {
            Outcome::Failure
        });
    }
    if verdict.passed() {
        workbook.store.update(|s| s.mark_done(&exercise.name))?;
        Ok(Outcome::Success)
    } else {
        Ok(Outcome::Failure)
    }
}
