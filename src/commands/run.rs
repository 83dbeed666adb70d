//! `sdlings run [NAME] [-- ARGS]`: build and run an exercise's lab in the foreground.

use anyhow::Result;

use super::{Outcome, resolve};
use crate::present;
use crate::runner::lab::{self, LabBuild};
use crate::runner::{Cancel, Package};
use crate::term::{self, StatusLine};
use crate::workbook::Workbook;

pub fn run(workbook: &Workbook, name: Option<&str>, args: &[String]) -> Result<Outcome> {
    let index = resolve(workbook, name)?;
    let exercise = &workbook.info.exercises[index];
    let mut status = StatusLine::new();
    status.set(&format!("Building the lab of {}…", exercise.name));
    let built = lab::build(
        workbook,
        Package::Exercises,
        index,
        term::color_enabled(),
        &Cancel::new(),
        &mut |line| status.set(&format!("Building the lab of {}: {line}", exercise.name)),
    )?;
    status.clear();
    let exe = match built {
        LabBuild::Built(exe) => exe,
        LabBuild::Failed(verdict) => {
            let path = workbook.display_path(&workbook.exercise_path(exercise));
            print!("{}", present::verdict_text(&exercise.name, &path, &verdict));
            return Ok(Outcome::Failure);
        }
        LabBuild::Cancelled => unreachable!("nothing cancels this build"),
    };
    Ok(
        if lab::run_foreground(&exe, args, &workbook.root, &exercise.name)? {
            Outcome::Success
        } else {
            Outcome::Failure
        },
    )
}
