//! `sdlings dev mutants`: do the tests reject the mistakes learners really make?
//!
//! Next to each solution, `NAME.mutants.toml` lists plausible wrong implementations: a mistake
//! in words, and the edit of the solution that makes it. Each mutant is built as a binary of a
//! scratch package (in the build directory, never touching the workbook's files) and its tests
//! run: a mutant whose tests all pass has "survived", and the exercise's tests have a hole.
//! A mutant must compile: a mistake the compiler catches says nothing about the tests.
//! Most of the time goes to running, not building: a mutant first runs only the tests its entry
//! names (`caught_by`), see [`run_tests`].

mod list;
mod scratch;

pub use list::{Mutant, load, mutants_path};

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use colored::Colorize;

use crate::commands::Outcome;
use crate::info_file::ExerciseInfo;
use crate::runner::{self, Artifact, BuildOutcome, BuildPlan, Selection, TestRun, Verdict};
use crate::term::{self, StatusLine};
use crate::workbook::Workbook;
use scratch::Unit;

/// One mutant, built and judged.
struct Judged {
    exercise: String,
    mistake: String,
    problem: Option<String>,
    note: String,
}

/// One listed mistake, applied: the exercise, its number (from 1) and the mutated solution.
struct Planned<'a> {
    exercise: &'a ExerciseInfo,
    number: usize,
    mutant: Mutant,
    source: String,
}

pub fn run(workbook: &Workbook, names: &[String]) -> Result<Outcome> {
    let exercises: Vec<&ExerciseInfo> = if names.is_empty() {
        workbook.info.exercises.iter().collect()
    } else {
        names
            .iter()
            .map(|name| {
                workbook
                    .info
                    .exercises
                    .iter()
                    .find(|e| &e.name == name)
                    .with_context(|| format!("there is no exercise named `{name}` in info.toml"))
            })
            .collect::<Result<_>>()?
    };
    let mut planned = Vec::new();
    for exercise in &exercises {
        for (n, (mutant, source)) in load(workbook, exercise)?.into_iter().enumerate() {
            planned.push(Planned {
                exercise,
                number: n + 1,
                mutant,
                source,
            });
        }
    }

    let package_dir = scratch::package_dir(workbook);
    fs::create_dir_all(&package_dir)
        .with_context(|| format!("cannot create {}", package_dir.display()))?;
    let lock_path = package_dir.join(".lock");
    let lock = fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;

    eprintln!(
        "dev mutants: building {} mutants of {} exercise(s)…",
        planned.len(),
        exercises.len()
    );
    let mut status = StatusLine::new();
    let (built, solo) = build(workbook, &exercises, &planned, &mut |line| status.set(line))?;
    let mut progress = |line: &str| status.set(line);
    let verdicts = run_tests(workbook, &planned, &built, &solo, &mut progress)?;
    status.clear();
    let results: Vec<Judged> = planned
        .iter()
        .zip(&verdicts)
        .map(|(p, verdict)| judge(p, verdict))
        .collect();
    report(&results, &package_dir)
}

/// Runs every mutant's tests. A mutant that names the tests which catch it (`caught_by`) runs
/// those alone first: when they all fail, the whole set fails too, and that is all the verdict
/// needs to know, at a fraction of the cost (most of a test binary's time goes to the tests the
/// mistake does not touch). Any other outcome is settled by running every test, so a report
/// names all the tests that fail.
fn run_tests(
    workbook: &Workbook,
    planned: &[Planned],
    built: &BuildOutcome,
    solo: &BTreeSet<String>,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Verdict>> {
    let first: Vec<TestRun> = planned
        .iter()
        .map(|p| test_run(p, built, solo, p.mutant.caught_by.is_empty()))
        .collect();
    let mut verdicts = runner::run_all(&workbook.root, &first, built, progress)?;
    let unsettled: Vec<usize> = (0..planned.len())
        .filter(|&i| !planned[i].mutant.caught_by.is_empty() && !settled(&planned[i], &verdicts[i]))
        .collect();
    let again: Vec<TestRun> = unsettled
        .iter()
        .map(|&i| test_run(&planned[i], built, solo, true))
        .collect();
    let rerun = runner::run_all(&workbook.root, &again, built, progress)?;
    for (i, verdict) in unsettled.into_iter().zip(rerun) {
        verdicts[i] = verdict;
    }
    Ok(verdicts)
}

/// The run of one mutant's tests: all of them, or only those its `caught_by` names.
fn test_run(
    planned: &Planned,
    built: &BuildOutcome,
    solo: &BTreeSet<String>,
    all: bool,
) -> TestRun {
    let name = &planned.exercise.name;
    // In a batch, mutant 3's tests are `mutant_3::tests::...`; a solo binary has only its own.
    let (bin, module) = if solo.contains(name) {
        (scratch::solo_bin(name, planned.number), None)
    } else {
        let module = format!("{}::", scratch::module(planned.number));
        (scratch::batch_bin(name), Some(module))
    };
    let selected = match (all, module) {
        (false, module) => {
            let prefix = module.unwrap_or_default();
            let names = planned.mutant.caught_by.iter();
            Selection::Named(names.map(|t| format!("{prefix}tests::{t}")).collect())
        }
        (true, Some(module)) => Selection::Containing(module),
        (true, None) => Selection::All,
    };
    TestRun {
        label: scratch::solo_bin(name, planned.number),
        exe: built.executable(&bin, Artifact::Tests).map(Into::into),
        bin,
        selected,
        time_limit: planned.exercise.time_limit,
        repeat: 1,
    }
}

/// Whether a run of only the `caught_by` tests already decides the mutant's fate: they all
/// failed, or the run was stopped (a hang or a crash in them stops the whole set's run as well).
fn settled(planned: &Planned, verdict: &Verdict) -> bool {
    match verdict {
        Verdict::TestsFailed { .. } => {
            let failing = failing_tests(planned, verdict);
            planned
                .mutant
                .caught_by
                .iter()
                .all(|t| failing.contains(&t.as_str()))
        }
        Verdict::TimedOut { .. } | Verdict::Crashed { .. } | Verdict::OutputFlood { .. } => true,
        _ => false,
    }
}

/// The failing tests of a verdict, named as in the exercise file (`tests::` and, in a batch,
/// `mutant_3::` taken off).
fn failing_tests<'v>(planned: &Planned, verdict: &'v Verdict) -> Vec<&'v str> {
    let Verdict::TestsFailed { failures, .. } = verdict else {
        return Vec::new();
    };
    let module = format!("{}::", scratch::module(planned.number));
    failures
        .iter()
        .map(|f| {
            let name = f.test.strip_prefix(&module).unwrap_or(&f.test);
            name.strip_prefix("tests::").unwrap_or(name)
        })
        .collect()
}

/// Builds every exercise's mutants as one batch; an exercise whose batch does not compile is
/// built again one mutant per binary, to name the broken mutant. Returns the builds and the
/// exercises built the second way.
fn build(
    workbook: &Workbook,
    exercises: &[&ExerciseInfo],
    planned: &[Planned],
    progress: &mut dyn FnMut(&str),
) -> Result<(BuildOutcome, BTreeSet<String>)> {
    let batch = |exercise: &ExerciseInfo| Unit::Batch {
        exercise: exercise.name.clone(),
        sources: planned
            .iter()
            .filter(|p| p.exercise.name == exercise.name)
            .map(|p| p.source.clone())
            .collect(),
    };
    let dir = scratch::package_dir(workbook);
    let mut units: Vec<Unit> = exercises.iter().map(|e| batch(e)).collect();
    let mut built = build_units(workbook, &units, progress)?;
    let solo: BTreeSet<String> = exercises
        .iter()
        .map(|e| e.name.clone())
        .filter(|name| {
            built
                .executable(&scratch::batch_bin(name), Artifact::Tests)
                .is_none()
        })
        .collect();
    if solo.is_empty() {
        return Ok((built, solo));
    }
    units.retain(|unit| !matches!(unit, Unit::Batch { exercise, .. } if solo.contains(exercise)));
    let solo_units: Vec<Unit> = planned
        .iter()
        .filter(|p| solo.contains(&p.exercise.name))
        .map(|p| Unit::Solo {
            exercise: p.exercise.name.clone(),
            number: p.number,
            source: p.source.clone(),
        })
        .collect();
    let solo_bins: Vec<String> = solo_units.iter().map(Unit::bin).collect();
    units.extend(solo_units);
    scratch::write(workbook, &dir, &units)?;
    let again = runner::build_counting(&plan(workbook, solo_bins), progress)?;
    built.absorb(again);
    Ok((built, solo))
}

fn build_units(
    workbook: &Workbook,
    units: &[Unit],
    progress: &mut dyn FnMut(&str),
) -> Result<BuildOutcome> {
    scratch::write(workbook, &scratch::package_dir(workbook), units)?;
    let bins = units.iter().map(Unit::bin).collect();
    runner::build_counting(&plan(workbook, bins), progress)
}

fn plan(workbook: &Workbook, bins: Vec<String>) -> BuildPlan {
    BuildPlan {
        dir: scratch::package_dir(workbook),
        target_dir: workbook.build_dir(),
        packages: vec!["mutants".to_string()],
        tests: bins,
        labs: Vec::new(),
        all_tests: false,
        color: term::color_enabled(),
        incremental: false,
    }
}

/// Whether the tests rejected the mutant, and how.
fn judge(planned: &Planned, verdict: &Verdict) -> Judged {
    let mutant = &planned.mutant;
    let (problem, note) = match verdict {
        Verdict::Passed { tests } => (
            Some(format!(
                "SURVIVED: all {tests} tests pass with this mistake; add a test that rejects it"
            )),
            String::new(),
        ),
        Verdict::TestsFailed { .. } => {
            let failing = failing_tests(planned, verdict);
            let missing: Vec<&String> = mutant
                .caught_by
                .iter()
                .filter(|t| !failing.contains(&t.as_str()))
                .collect();
            let note = format!(
                "caught by {}{}",
                failing.first().copied().unwrap_or("?"),
                match failing.len() {
                    0 | 1 => String::new(),
                    n => format!(" (+{} more)", n - 1),
                }
            );
            if missing.is_empty() {
                (None, note)
            } else {
                (
                    Some(format!(
                        "caught, but not by {:?} as `caught_by` says (failing: {})",
                        missing,
                        failing.join(", ")
                    )),
                    note,
                )
            }
        }
        Verdict::CompileError { diagnostics } => (
            Some(format!(
                "does not compile, so it says nothing about the tests; make it a mistake that compiles:\n{diagnostics}"
            )),
            String::new(),
        ),
        Verdict::BuildFailed { message } => {
            (Some(format!("cargo failed: {message}")), String::new())
        }
        Verdict::NoTests => (Some("the mutant has no tests".into()), String::new()),
        // Stopped or crashed: the learner would see a red verdict, so the mistake is caught.
        other => (None, other.summary()),
    };
    Judged {
        exercise: planned.exercise.name.clone(),
        mistake: mutant.mistake.clone(),
        problem,
        note,
    }
}

fn report(results: &[Judged], package_dir: &Path) -> Result<Outcome> {
    let mut problems = 0;
    for r in results {
        match &r.problem {
            None => println!(
                "{} {}: {} — {}",
                "✓".green().bold(),
                r.exercise,
                r.mistake,
                r.note.dimmed()
            ),
            Some(problem) => {
                problems += 1;
                println!(
                    "{} {}: {} — {}",
                    "✗".red().bold(),
                    r.exercise,
                    r.mistake,
                    problem.trim_end()
                );
            }
        }
    }
    if problems == 0 {
        println!(
            "\n{} dev mutants: the tests reject all {} plausible wrong implementations.",
            "✓".green().bold(),
            results.len()
        );
        Ok(Outcome::Success)
    } else {
        println!(
            "\ndev mutants: {problems} of {} mutants not rejected as they should be (the mutated sources are in {})",
            results.len(),
            package_dir.display()
        );
        Ok(Outcome::Failure)
    }
}
