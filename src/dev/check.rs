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

pub fn run(
    workbook: &Workbook,
    repeat: u32,
    static_only: bool,
    names: &[String],
) -> Result<Outcome> {
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
    let chosen = chosen(workbook, names)?;
    let whole = chosen.len() == count;

    let mut status = StatusLine::new();
    eprintln!(
        "dev check: building {} exercise(s), their solutions and the solutions' labs…",
        chosen.len()
    );
    let built = build(workbook, &chosen, whole, &mut |l| status.set(l))?;
    status.clear();

    eprintln!(
        "dev check: running each exercise once (it must fail) and each solution {repeat}× (it must pass)…"
    );
    let mut runs = test_runs(workbook, &chosen, &built, Package::Exercises, 1);
    runs.extend(test_runs(
        workbook,
        &chosen,
        &built,
        Package::Solutions,
        repeat,
    ));
    let verdicts = runner::run_all(&workbook.root, &runs, &built, &mut |l| status.set(l))?;
    status.clear();
    let (unsolved, solved) = verdicts.split_at(chosen.len());
    for ((&index, shipped), solution) in chosen.iter().zip(unsolved).zip(solved) {
        let exercise = &workbook.info.exercises[index];
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
    problems.extend(lab_problems(workbook, &chosen, &built, &mut |l| {
        status.set(l)
    })?);
    status.clear();
    let checked = if whole {
        format!("{count} exercises in {topics} topics are consistent; every exercise")
    } else {
        format!(
            "the workbook is consistent; of the {} of its {count} exercises checked, every one",
            chosen.len()
        )
    };
    Ok(conclude(
        &problems,
        &format!(
            "{checked} fails as shipped, every solution passed {repeat}× in a row and every lab ran to its end."
        ),
    ))
}

/// The exercises to build and run: those named, else those of the set given with `--set`, else
/// all (an active set does not narrow an author's check of the workbook).
fn chosen(workbook: &Workbook, names: &[String]) -> Result<Vec<usize>> {
    if !names.is_empty() {
        let mut chosen = names
            .iter()
            .map(|name| workbook.find(name))
            .collect::<Result<Vec<_>>>()?;
        chosen.sort_unstable();
        chosen.dedup();
        return Ok(chosen);
    }
    match workbook.set_given() {
        Some(set) => {
            let mut chosen = set?.exercises;
            chosen.sort_unstable();
            Ok(chosen)
        }
        None => Ok((0..workbook.info.exercises.len()).collect()),
    }
}

/// Builds the chosen exercises' and solutions' test harnesses and the solutions' labs: the whole
/// workbook in one cargo invocation, a few exercises in two (cargo's `--tests` would take every
/// test harness along with the labs).
fn build(
    workbook: &Workbook,
    chosen: &[usize],
    whole: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<BuildOutcome> {
    let mut plan = runner::plan(workbook, Package::Exercises, term::color_enabled());
    plan.packages
        .extend(Package::Solutions.cargo_names(workbook));
    // A solution's test harness and its lab are two builds of the same binary, `NAME_sol`.
    let solutions = bins(workbook, chosen, Package::Solutions);
    if whole {
        plan.all_tests = true;
        plan.labs = solutions;
        return runner::build_counting(&plan, progress);
    }
    plan.tests = bins(workbook, chosen, Package::Exercises);
    plan.tests.extend(solutions.iter().cloned());
    let mut built = runner::build_counting(&plan, progress)?;
    plan.tests.clear();
    plan.labs = solutions;
    let labs_built = runner::build_counting(&plan, progress)?;
    built.absorb(labs_built);
    Ok(built)
}

fn bins(workbook: &Workbook, chosen: &[usize], package: Package) -> Vec<String> {
    chosen
        .iter()
        .map(|&i| package.bin_name(&workbook.info.exercises[i].name))
        .collect()
}

fn test_runs(
    workbook: &Workbook,
    chosen: &[usize],
    built: &BuildOutcome,
    package: Package,
    repeat: u32,
) -> Vec<TestRun> {
    chosen
        .iter()
        .map(|&i| &workbook.info.exercises[i])
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
    chosen: &[usize],
    built: &BuildOutcome,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<String>> {
    let labs = bins(workbook, chosen, Package::Solutions);
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
    Ok(chosen
        .iter()
        .zip(outcomes)
        .filter_map(|(&i, problem)| {
            problem.map(|p| format!("{}: {p}", workbook.info.exercises[i].name))
        })
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
