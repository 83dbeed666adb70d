//! `sdlings verify [--all]`: re-check every exercise reached so far (or all) and summarise.

use anyhow::Result;

use super::Outcome;
use crate::cargo::Package;
use crate::check::check_many;
use crate::present;
use crate::term::{self, StatusLine};
use crate::workbook::{Progress, Workbook};

pub fn run(workbook: &Workbook, all: bool) -> Result<Outcome> {
    let info = &workbook.info;
    let state = workbook.store.load()?;
    let progress = Progress::new(info, &state);
    let indices: Vec<usize> = (0..info.exercises.len())
        .filter(|&i| all || progress.is_unlocked(info, i))
        .collect();
    let mut status = StatusLine::new();
    let verdicts = check_many(
        workbook,
        Package::Exercises,
        &indices,
        1,
        term::color_enabled(),
        &mut |line| status.set(line),
    )?;
    status.clear();

    let mut passed = Vec::new();
    for (&i, verdict) in indices.iter().zip(&verdicts) {
        let name = &info.exercises[i].name;
        println!("{}", present::headline(name, verdict));
        if verdict.passed() {
            passed.push(name.clone());
        }
    }
    workbook.store.update(|s| {
        for name in &passed {
            s.mark_done(name);
        }
    })?;
    let failed = indices.len() - passed.len();
    println!("\n{} passed, {failed} failed", passed.len());
    if !all && indices.len() < info.exercises.len() {
        println!(
            "({} locked exercises not checked; `sdlings verify --all` checks them too.)",
            info.exercises.len() - indices.len()
        );
    }
    Ok(if failed == 0 {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}
