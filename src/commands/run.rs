//! `sdlings run [NAME] [-- ARGS]`: build and run an exercise's lab in the foreground.

use std::process::Command;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};

use super::{Outcome, resolve};
use crate::cargo::{self, Artifact, Package};
use crate::check::{Verdict, build_failure};
use crate::present;
use crate::process::{self, Cancel, Ending, Supervised};
use crate::term::{self, StatusLine};
use crate::workbook::Workbook;

pub fn run(workbook: &Workbook, name: Option<&str>, args: &[String]) -> Result<Outcome> {
    let index = resolve(workbook, name)?;
    let exercise = &workbook.info.exercises[index];
    let exe = match build_lab(workbook, index, &mut StatusLine::new())? {
        Ok(exe) => exe,
        Err(verdict) => {
            let path = workbook.display_path(&workbook.exercise_path(exercise));
            print!("{}", present::verdict_text(&exercise.name, &path, &verdict));
            return Ok(Outcome::Failure);
        }
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

/// Builds the lab binary of exercise `index`; a build failure comes back as its verdict.
pub fn build_lab(
    workbook: &Workbook,
    index: usize,
    status: &mut StatusLine,
) -> Result<Result<std::path::PathBuf, Verdict>> {
    let exercise = &workbook.info.exercises[index];
    let bin = exercise.name.clone();
    status.set(&format!("Building the lab of {bin}…"));
    let built = cargo::build(
        workbook,
        Package::Exercises,
        std::slice::from_ref(&bin),
        Artifact::Lab,
        term::color_enabled(),
        &Cancel::new(),
        &mut |line| status.set(&format!("Building the lab of {bin}: {line}")),
    )?;
    status.clear();
    Ok(match built.executables.get(&bin) {
        Some(exe) => Ok(exe.clone()),
        None => Err(build_failure(&bin, built)),
    })
}
