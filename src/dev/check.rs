//! `sdlings dev check`: everything an author must get right, checked at once.
//!
//! Static checks first (cheap, and they explain most mistakes; `--static` stops there), then the
//! ones that need a build, all from one cargo invocation: every exercise must fail as shipped,
//! every solution must pass its tests `repeat` times in a row (how flaky, non-deterministic tests
//! are caught before a learner meets them), and every solution's lab must finish within the lab
//! time limit (a learner who passes must not meet a lab that hangs).

use anyhow::Result;
use colored::Colorize;

use crate::commands::Outcome;
use crate::dev::static_checks::static_problems;
use crate::present;
use crate::runner::lab::{self, LabRun};
use crate::runner::{self, Artifact, BuildOutcome, Cancel, Package, TestRun, Verdict, pool};
use crate::term::{self, StatusLine};
use crate::workbook::Workbook;

pub fn run(workbook: &Workbook, repeat: u32, static_only: bool) -> Result<Outcome> {
    let mut problems = static_problems(workbook)?;
    let count = workbook.info.exercises.len();
    let topics = workbook.info.topics.len();
    if static_only {
        return Ok(conclude(
            &problems,
            &format!("{count} exercises in {topics} topics are consistent (static checks only)."),
        ));
    }
    if !problems.is_empty() {
        // Building a workbook whose files disagree would only add noise to the problems above.
        return Ok(conclude(&problems, ""));
    }

    let mut status = StatusLine::new();
    eprintln!(
        "dev check: building the {count} exercises, their solutions and the solutions' labs…"
    );
    let mut plan = runner::plan(workbook, Package::Exercises, term::color_enabled());
    plan.packages
        .extend(Package::Solutions.cargo_names(workbook));
    plan.all_tests = true;
    plan.labs = bins(workbook, Package::Solutions);
    let built = runner::build_counting(&plan, &mut |l| status.set(l))?;
    status.clear();

    eprintln!(
        "dev check: running each exercise once (it must fail) and each solution {repeat}× (it must pass)…"
    );
    let mut runs = test_runs(workbook, &built, Package::Exercises, 1);
    runs.extend(test_runs(workbook, &built, Package::Solutions, repeat));
    let verdicts = runner::run_all(&workbook.root, &runs, &built, &mut |l| status.set(l))?;
    status.clear();
    let (unsolved, solved) = verdicts.split_at(count);
    for ((exercise, shipped), solution) in workbook.info.exercises.iter().zip(unsolved).zip(solved)
    {
        problems.extend(unsolved_problem(shipped).map(|p| format!("{}: {p}", exercise.name)));
        if !solution.passed() {
            let detail = present::verdict_text(&exercise.name, "", solution);
            problems.push(format!(
                "{}: the solution does not pass every time: {detail}",
                exercise.name
            ));
        }
    }

    eprintln!("dev check: running every solution's lab…");
    problems.extend(lab_problems(workbook, &built, &mut |l| status.set(l))?);
    status.clear();
    Ok(conclude(
        &problems,
        &format!(
            "{count} exercises in {topics} topics are consistent; every exercise fails as shipped, every solution passed {repeat}× in a row and every lab ran to its end."
        ),
    ))
}

fn bins(workbook: &Workbook, package: Package) -> Vec<String> {
    workbook
        .info
        .exercises
        .iter()
        .map(|e| package.bin_name(&e.name))
        .collect()
}

fn test_runs(
    workbook: &Workbook,
    built: &BuildOutcome,
    package: Package,
    repeat: u32,
) -> Vec<TestRun> {
    workbook
        .info
        .exercises
        .iter()
        .map(|exercise| TestRun {
            // Exercise and solution alike: name the binary, which tells them apart.
            label: package.bin_name(&exercise.name),
            ..TestRun::whole(exercise, package, built, repeat)
        })
        .collect()
}

/// What is wrong with an exercise's verdict as shipped: it must compile and fail its tests.
fn unsolved_problem(verdict: &Verdict) -> Option<String> {
    match verdict {
        Verdict::TestsFailed { .. } => None,
        Verdict::Passed { .. } => {
            Some("passes as shipped: its tests do not test the learner's part".to_string())
        }
        Verdict::CompileError { diagnostics } => Some(format!(
            "does not compile as shipped (exercises must compile and fail their tests):\n{diagnostics}"
        )),
        other => Some(format!("as shipped it {}", other.summary())),
    }
}

/// Runs every solution's lab; a lab that does not build, fails or hangs is a problem.
fn lab_problems(
    workbook: &Workbook,
    built: &BuildOutcome,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<String>> {
    let labs = bins(workbook, Package::Solutions);
    let total = labs.len();
    let outcomes = pool::map(&labs, progress, |n, bin, note| {
        note(format!("[{}/{total}] running the lab of {bin}", n + 1));
        let Some(exe) = built.executable(bin, Artifact::Lab) else {
            let verdict = runner::verdict::build_failure(bin, built);
            return Ok(Some(format!(
                "its lab does not build: {}",
                verdict.summary()
            )));
        };
        let run = lab::run_captured(exe, &workbook.root, &Cancel::new())?;
        Ok(match run {
            Some(LabRun { ok: true, .. }) => None,
            Some(LabRun { output, .. }) => Some(format!(
                "its lab did not end well:\n{}",
                present::indent(&last_lines(&output, 10), 2)
            )),
            None => unreachable!("nothing cancels these runs"),
        })
    })?;
    Ok(workbook
        .info
        .exercises
        .iter()
        .zip(outcomes)
        .filter_map(|(exercise, problem)| problem.map(|p| format!("{}: {p}", exercise.name)))
        .collect())
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Prints the problems (or the success line) and turns them into an outcome.
fn conclude(problems: &[String], success: &str) -> Outcome {
    if problems.is_empty() {
        println!("{} dev check: {success}", "✓".green().bold());
        Outcome::Success
    } else {
        for p in problems {
            println!("{} {}", "✗".red().bold(), p.trim_end());
        }
        println!("\ndev check: {} problem(s) found", problems.len());
        Outcome::Failure
    }
}
