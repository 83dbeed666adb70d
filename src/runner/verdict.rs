//! Running a built test binary under limits, and turning what happened into a [`Verdict`] the
//! learner can act on.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use super::cargo::{self, BuildOutcome};
use super::libtest::{self, Failure};
use super::process::{self, Cancel, Ending, Limits};

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

/// The verdict for a binary that did not build.
pub fn build_failure(bin: &str, built: &BuildOutcome) -> Verdict {
    match built.compile_errors.get(bin) {
        Some(diagnostics) => Verdict::CompileError {
            diagnostics: diagnostics.clone(),
        },
        None => Verdict::BuildFailed {
            message: cargo::cargo_failure_text(&built.cargo_stderr),
        },
    }
}

/// Which seeds the kit's seeded properties run (`sdlings_kit::property::for_seeds` reads them from
/// the environment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seeds {
    /// The learner's check: seeds `0..cases` of each property.
    Learner,
    /// One seed only: the replay of a failure (`sdlings check --seed`).
    Only(u64),
    /// `cases` seeds from this one on: an author's check over more of the seed space.
    From(u64),
}

const SEED_VAR: &str = "SDLINGS_SEED";
const SEED_BASE_VAR: &str = "SDLINGS_SEED_BASE";

impl Seeds {
    fn apply(self, cmd: &mut Command) {
        // A variable left exported in the learner's shell must not change any other check.
        cmd.env_remove(SEED_VAR).env_remove(SEED_BASE_VAR);
        match self {
            Seeds::Learner => {}
            Seeds::Only(seed) => {
                cmd.env(SEED_VAR, seed.to_string());
            }
            Seeds::From(base) => {
                cmd.env(SEED_BASE_VAR, base.to_string());
            }
        }
    }
}

/// Which of a test binary's tests a run runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    All,
    /// The tests whose full names contain this text, e.g. `mutant_3::`.
    Containing(String),
    /// Exactly the tests with these full names, e.g. `mutant_3::tests::evicts_lru`.
    Named(Vec<String>),
}

impl Selection {
    fn apply(&self, cmd: &mut Command) {
        match self {
            Selection::All => {}
            Selection::Containing(text) => {
                cmd.arg(text);
            }
            Selection::Named(names) => {
                cmd.args(names).arg("--exact");
            }
        }
    }
}

/// Runs a built test binary under the exercise's time limit, the `selected` tests only, its
/// seeded properties on `seeds`. `None` means it was cancelled.
pub fn run_tests(
    exe: &Path,
    workdir: &Path,
    time_limit: Duration,
    selected: &Selection,
    seeds: Seeds,
    cancel: &Cancel,
) -> Result<Option<Verdict>> {
    let mut cmd = Command::new(exe);
    process::limit_memory(&mut cmd);
    seeds.apply(&mut cmd);
    selected.apply(&mut cmd);
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
