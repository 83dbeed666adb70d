//! `sdlings run [NAME] [-- ARGS]`: build and run an exercise's lab in the foreground.

use std::process::Command;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};

use super::{Outcome, resolve};
use crate::check::{LabBuild, build_lab};
use crate::present;
use crate::process::{self, Cancel, Ending, Supervised};
use crate::term::{self, StatusLine};
use crate::workbook::Workbook;

pub fn run(workbook: &Workbook, name: Option<&str>, args: &[String]) -> Result<Outcome> {
    let index = resolve(workbook, name)?;
    let exercise = &workbook.info.exercises[index];
    let mut status = StatusLine::new();
    status.set(&format!("Building the lab of {}…", exercise.name));
    let built = build_lab(
        workbook,
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
    let mut cmd = Command::new(exe);
    cmd.args(args).current_dir(&workbook.root);
    // In the foreground, so Ctrl-C stops the lab; no time limit: the learner is watching it.
    let mut child = Supervised::spawn_in_foreground(&mut cmd).context("cannot start the lab")?;
    let ending = child.wait(None, &Cancel::new(), &AtomicBool::new(false))?;
    match ending {
        Ending::Exited(status) if status.success() => Ok(Outcome::Success),
        Ending::Exited(status) => {
            eprintln!(
                "The lab of `{}` {}.",
                exercise.name,
                process::describe_signal(status)
                    .unwrap_or_else(|| format!("exited with code {}", status.code().unwrap_or(-1)))
            );
            Ok(Outcome::Failure)
        }
        _ => Ok(Outcome::Failure),
    }
}
