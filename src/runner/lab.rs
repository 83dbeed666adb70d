//! Labs: an exercise's `fn main`, run after a pass. The watcher captures a lab's output for its
//! screen (under a time and output limit); `sdlings run` runs it in the foreground, where the
//! learner watches it and Ctrl-C stops it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};

use super::cargo::{self, Artifact, ProgressFn};
use super::process::{self, Cancel, Ending, Limits, Supervised};
use super::verdict::{self, Verdict};
use super::{Package, plan};
use crate::workbook::Workbook;

/// A lab is a demo, not a test; give it time, but not forever.
pub const TIME_LIMIT: Duration = Duration::from_secs(60);
pub const OUTPUT_LIMIT: usize = 256 * 1024;

/// The outcome of building an exercise's lab.
pub enum LabBuild {
    Built(PathBuf),
    /// It did not build; the verdict says why.
    Failed(Verdict),
    Cancelled,
}

/// Builds the lab binary of exercise `index` of `package`.
pub fn build(
    workbook: &Workbook,
    package: Package,
    index: usize,
    color: bool,
    cancel: &Cancel,
    progress: ProgressFn,
) -> Result<LabBuild> {
    let bin = package.bin_name(&workbook.info.exercises[index].name);
    let mut plan = plan(workbook, package, color);
    plan.labs.push(bin.clone());
    let built = cargo::build(&plan, cancel, progress)?;
    Ok(if built.cancelled {
        LabBuild::Cancelled
    } else {
        match built.executable(&bin, Artifact::Lab) {
            Some(exe) => LabBuild::Built(exe.to_path_buf()),
            None => LabBuild::Failed(verdict::build_failure(&bin, &built)),
        }
    })
}

/// A captured lab run: its output, with a note when it did not end well.
pub struct LabRun {
    pub output: String,
    /// Whether it exited successfully within its limits.
    pub ok: bool,
}

/// Runs a built lab with its output captured. `None`: cancelled.
pub fn run_captured(exe: &Path, workdir: &Path, cancel: &Cancel) -> Result<Option<LabRun>> {
    let mut cmd = Command::new(exe);
    process::limit_memory(&mut cmd);
    cmd.current_dir(workdir);
    let limits = Limits {
        time: TIME_LIMIT,
        output_bytes: OUTPUT_LIMIT,
    };
    let finished = process::run_captured(cmd, limits, cancel)?;
    let note = match finished.ending {
        Ending::Cancelled => return Ok(None),
        Ending::Exited(status) if status.success() => None,
        Ending::Exited(status) => Some(format!("The lab {}.", describe_exit(status))),
        Ending::TimedOut => Some(format!(
            "The lab was stopped after {}s.",
            TIME_LIMIT.as_secs()
        )),
        Ending::OutputFlood => Some(format!(
            "The lab was stopped after printing {} KiB.",
            OUTPUT_LIMIT / 1024
        )),
    };
    let output = finished.output.trim_end().to_string();
    Ok(Some(match note {
        None => LabRun { output, ok: true },
        Some(note) => LabRun {
            output: format!("{output}\n({note})"),
            ok: false,
        },
    }))
}

/// Runs a built lab in the foreground with `args`, without a time limit: the learner is
/// watching it. Returns whether it exited successfully.
pub fn run_foreground(exe: &Path, args: &[String], workdir: &Path, name: &str) -> Result<bool> {
    let mut cmd = Command::new(exe);
    cmd.args(args).current_dir(workdir);
    let mut child = Supervised::spawn_in_foreground(&mut cmd).context("cannot start the lab")?;
    match child.wait(None, &Cancel::new(), &AtomicBool::new(false))? {
        Ending::Exited(status) if status.success() => Ok(true),
        Ending::Exited(status) => {
            eprintln!("The lab of `{name}` {}.", describe_exit(status));
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// "exited with code 3", "was killed by signal 9 (SIGKILL)"...
fn describe_exit(status: ExitStatus) -> String {
    process::describe_signal(status)
        .unwrap_or_else(|| format!("exited with code {}", status.code().unwrap_or(-1)))
}
