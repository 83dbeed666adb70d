//! Checking an exercise: build its test binary, run it under limits, and turn what happened into a
//! [`Verdict`] the learner can act on.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::cargo::{self, Artifact, Package, ProgressFn};
use crate::libtest::{self, Failure};
use crate::process::{self, Cancel, Ending, Limits};
use crate::workbook::Workbook;

/// How much a test binary may print before it is stopped. libtest captures each test's output
/// itself, so real output is small; this only guards against a runaway loop.
pub const TEST_OUTPUT_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed {
        tests: usize,
    },
    CompileError {
        diagnostics: String,
    },
    TestsFailed {
        passed: usize,
        failed: usize,
        failures: Vec<Failure>,
    },
    TimedOut {
        limit: Duration,
    },
    Crashed {
        what: String,
        output_tail: String,
    },
    OutputFlood {
        limit_bytes: usize,
    },
    /// The binary ran but contains no tests: an authoring mistake.
    NoTests,
    /// Cargo failed for a reason other than the exercise's code.
    BuildFailed {
        message: String,
    },
}

impl Verdict {
    /// libtest reports failures by name; show them in the order the author wrote the tests
    /// instead (behaviour first, then edge cases, then the plausible mistakes).
    pub fn order_failures_as_in(&mut self, source: &str) {
        if let Verdict::TestsFailed { failures, .. } = self {
            failures.sort_by_key(|f| {
                source
                    .find(&format!("fn {}(", f.test))
                    .unwrap_or(usize::MAX)
            });
        }
    }

    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Passed { .. })
    }

    /// A one-line summary, e.g. "2 of 7 tests fail" — used in lists, plain output and reports.
    pub fn summary(&self) -> String {
        match self {
            Verdict::Passed { tests } => format!("all {tests} tests pass"),
            Verdict::CompileError { .. } => "does not compile".into(),
            Verdict::TestsFailed { passed, failed, .. } => {
                format!("{failed} of {} tests fail", passed + failed)
            }
            Verdict::TimedOut { limit } => {
                format!("stopped after the {}s time limit", limit.as_secs())
            }
            Verdict::Crashed { what, .. } => format!("crashed: {what}"),
            Verdict::OutputFlood { limit_bytes } => {
                format!("stopped: printed more than {} KiB", limit_bytes / 1024)
            }
            Verdict::NoTests => "has no tests".into(),
            Verdict::BuildFailed { .. } => "cargo could not build it".into(),
        }
    }
}

/// Builds and runs the tests of exercise `index` from `package`. `None` means it was cancelled.
pub fn check(
    workbook: &Workbook,
    package: Package,
    index: usize,
    color: bool,
    cancel: &Cancel,
    progress: ProgressFn,
) -> Result<Option<Verdict>> {
    let exercise = &workbook.info.exercises[index];
    let bin = package.bin_name(&exercise.name);
    let mut built = cargo::build(
        workbook,
        package,
        std::slice::from_ref(&bin),
        Artifact::Tests,
        color,
        cancel,
        progress,
    )?;
    if built.cancelled {
        return Ok(None);
    }
    let verdict = match built.executables.get(&bin) {
        Some(exe) => run_tests(exe, &workbook.root, exercise.time_limit, cancel)?,
        None => Some(build_failure(&bin, &mut built)),
    };
    Ok(verdict.map(|v| in_source_order(workbook, package, index, v)))
}

fn in_source_order(
    workbook: &Workbook,
    package: Package,
    index: usize,
    mut verdict: Verdict,
) -> Verdict {
    let exercise = &workbook.info.exercises[index];
    let source_path = match package {
        Package::Exercises => workbook.exercise_path(exercise),
        Package::Solutions | Package::Mutants => workbook.solution_path(exercise),
    };
    if let Ok(source) = std::fs::read_to_string(source_path) {
        verdict.order_failures_as_in(&source);
    }
    verdict
}

/// The outcome of building an exercise's lab (its `fn main`).
pub enum LabBuild {
    Built(std::path::PathBuf),
    /// It did not build; the verdict says why.
    Failed(Verdict),
    Cancelled,
}

/// Builds the lab binary of exercise `index`.
pub fn build_lab(
    workbook: &Workbook,
    index: usize,
    color: bool,
    cancel: &Cancel,
    progress: ProgressFn,
) -> Result<LabBuild> {
    let bin = workbook.info.exercises[index].name.clone();
    let mut built = cargo::build(
        workbook,
        Package::Exercises,
        std::slice::from_ref(&bin),
        Artifact::Lab,
        color,
        cancel,
        progress,
    )?;
    Ok(if built.cancelled {
        LabBuild::Cancelled
    } else {
        match built.executables.get(&bin) {
            Some(exe) => LabBuild::Built(exe.clone()),
            None => LabBuild::Failed(build_failure(&bin, &mut built)),
        }
    })
}

/// The verdict for a binary that did not build.
pub fn build_failure(bin: &str, built: &mut cargo::BuildOutcome) -> Verdict {
    match built.compile_errors.remove(bin) {
        Some(diagnostics) => Verdict::CompileError { diagnostics },
        None => Verdict::BuildFailed {
            message: cargo::cargo_failure_text(&built.cargo_stderr),
        },
    }
}

/// Runs a built test binary under the exercise's time limit. `None` means it was cancelled.
pub fn run_tests(
    exe: &Path,
    workdir: &Path,
    time_limit: Duration,
    cancel: &Cancel,
) -> Result<Option<Verdict>> {
    let mut cmd = Command::new(exe);
    process::limit_memory(&mut cmd);
    cmd.current_dir(workdir)
        .arg("--color=never")
        // Backtraces would bury the assertion message the learner needs.
        .env("RUST_BACKTRACE", "0");
    let limits = Limits {
        time: time_limit,
        output_bytes: TEST_OUTPUT_LIMIT,
    };
    let finished = process::run_captured(cmd, limits, cancel)?;
    Ok(judge(finished.ending, &finished.output, limits))
}

fn judge(ending: Ending, output: &str, limits: Limits) -> Option<Verdict> {
    let report = libtest::parse(output);
    let verdict = match ending {
        Ending::Cancelled => return None,
        Ending::TimedOut => Verdict::TimedOut { limit: limits.time },
        Ending::OutputFlood => Verdict::OutputFlood {
            limit_bytes: limits.output_bytes,
        },
        Ending::Exited(status) => {
            if let Some(thread) = report.stack_overflow_in {
                Verdict::Crashed {
                    what: format!("stack overflow in `{thread}` (unbounded recursion?)"),
                    output_tail: tail(output),
                }
            } else if output.contains("memory allocation of") && output.contains("failed") {
                Verdict::Crashed {
                    what: format!(
                        "ran out of memory: it tried to use more than the {} GiB limit (a collection that grows without end?)",
                        process::MEMORY_LIMIT_BYTES >> 30
                    ),
                    output_tail: tail(output),
                }
            } else if let Some(signal) = process::describe_signal(status) {
                Verdict::Crashed {
                    what: signal,
                    output_tail: tail(output),
                }
            } else if status.success() {
                if report.passed == 0 {
                    Verdict::NoTests
                } else {
                    Verdict::Passed {
                        tests: report.passed,
                    }
                }
            } else if report.failed > 0 {
                Verdict::TestsFailed {
                    passed: report.passed,
                    failed: report.failed,
                    failures: report.failures,
                }
            } else {
                Verdict::Crashed {
                    what: format!(
                        "the test process exited with code {} before the tests finished (does the code call std::process::exit?)",
                        status.code().unwrap_or(-1)
                    ),
                    output_tail: tail(output),
                }
            }
        }
    };
    Some(verdict)
}

/// The last lines of some output, for context when a process died.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Builds the test binaries of many exercises in one cargo invocation (much faster than one
/// each), then runs each `repeat` times, stopping an exercise at its first non-passing run.
/// `progress` hears what is happening, e.g. "[3/12] running lru_cache".
pub fn check_many(
    workbook: &Workbook,
    package: Package,
    indices: &[usize],
    repeat: u32,
    color: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Verdict>> {
    let exercises = &workbook.info.exercises;
    let bins: Vec<String> = indices
        .iter()
        .map(|&i| package.bin_name(&exercises[i].name))
        .collect();
    let cancel = Cancel::new();
    let mut built_count = 0;
    let total = bins.len();
    let mut built = cargo::build(
        workbook,
        package,
        &bins,
        Artifact::Tests,
        color,
        &cancel,
        &mut |line| {
            if line.starts_with("built ") {
                built_count += 1;
            }
            progress(&format!("[{built_count}/{total} built] {line}"));
        },
    )?;
    let mut verdicts = Vec::with_capacity(total);
    for (n, (&index, bin)) in indices.iter().zip(&bins).enumerate() {
        let exercise = &exercises[index];
        let verdict = match built.executables.get(bin) {
            Some(exe) => {
                let mut last = None;
                for run in 1..=repeat {
                    let note = if repeat > 1 {
                        format!(" (run {run}/{repeat})")
                    } else {
                        String::new()
                    };
                    progress(&format!(
                        "[{}/{total}] running {}{note}",
                        n + 1,
                        exercise.name
                    ));
                    let verdict = run_tests(exe, &workbook.root, exercise.time_limit, &cancel)?
                        .expect("nothing cancels this");
                    let passed = verdict.passed();
                    last = Some(verdict);
                    if !passed {
                        break;
                    }
                }
                last.expect("repeat >= 1")
            }
            None => build_failure(bin, &mut built),
        };
        verdicts.push(in_source_order(workbook, package, index, verdict));
    }
    Ok(verdicts)
}
