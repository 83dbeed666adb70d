//! `sdlings verify`: re-check the exercises in play (reached so far, or `--all`) and report.
//!
//! An exercise whose file is exactly as shipped is not built at all: "not attempted", or
//! "reverted" if it passed before. The others are built in one cargo invocation and run. Each
//! exercise's tests are compared with the reference compiled into sdlings (see `pristine`), so a
//! report cannot be fooled by deleting or weakening tests, whatever else is edited on disk.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use super::Outcome;
use crate::pristine::{self, Reference};
use crate::report::{self, Entry, FirstFailure, Format, Report, SetInfo, Status};
use crate::runner::{Package, Verdict, check_many};
use crate::term::{self, StatusLine};
use crate::workbook::{INFO_FILE_NAME, Workbook, test_module};

pub fn run(
    workbook: &Workbook,
    all: bool,
    format: Format,
    output: Option<&Path>,
    learner: Option<&str>,
) -> Result<Outcome> {
    let info = &workbook.info;
    let (state, set, progress) = workbook.progress()?;
    let reference = Reference::of(workbook);
    let indices: Vec<usize> = progress
        .order
        .iter()
        .copied()
        .filter(|&i| all || progress.is_unlocked(i))
        .collect();

    struct Files {
        attempted: bool,
        tests_changed: bool,
    }
    let files: Vec<Files> = indices
        .iter()
        .map(|&i| {
            let exercise = &info.exercises[i];
            let current = fs::read_to_string(workbook.exercise_path(exercise)).unwrap_or_default();
            let original = pristine::exercise_text(workbook, reference, exercise).ok();
            let reference_tests = reference.tests_of(workbook, exercise);
            Files {
                attempted: original.is_none_or(|o| o != current),
                tests_changed: reference_tests
                    .is_some_and(|tests| Some(tests.as_str()) != test_module(&current)),
            }
        })
        .collect();

    let attempted: Vec<usize> = indices
        .iter()
        .zip(&files)
        .filter(|(_, f)| f.attempted)
        .map(|(&i, _)| i)
        .collect();
    // Colour codes would end up in report files; only the terminal gets them.
    let color = output.is_none() && format == Format::Text && term::color_enabled();
    let mut status = StatusLine::new();
    let verdicts = check_many(
        workbook,
        Package::Exercises,
        &attempted,
        1,
        color,
        &mut |line| status.set(line),
    )?;
    status.clear();

    let mut verdicts = attempted.iter().copied().zip(verdicts);
    let entries: Vec<Entry> = indices
        .iter()
        .zip(&files)
        .map(|(&i, f)| {
            let verdict = if f.attempted {
                verdicts.next().map(|(_, v)| v)
            } else {
                None
            };
            entry(workbook, i, verdict.as_ref(), f.tests_changed, &state)
        })
        .collect();

    let honest_passes: Vec<String> = entries
        .iter()
        .filter(|e| e.counts_as_passed())
        .map(|e| e.name.clone())
        .collect();
    workbook.store.update(|s| {
        for name in &honest_passes {
            s.mark_done(name);
        }
    })?;

    // Re-read the state so first-pass times recorded just now appear in the report.
    let state = workbook.store.load()?;
    let entries = entries
        .into_iter()
        .map(|mut e| {
            e.first_passed = state
                .exercises
                .get(&e.name)
                .and_then(|r| r.first_passed.clone());
            e
        })
        .collect();
    let mut report = Report::new(
        SetInfo {
            name: set.name.clone(),
            title: set.title.clone(),
        },
        reference.describe(),
        entries,
    );
    report.learner = learner
        .map(str::to_string)
        .or_else(|| learner_from_git(&workbook.root));
    report.curriculum = fs::read_to_string(workbook.root.join(INFO_FILE_NAME))
        .ok()
        .map(|text| report::fingerprint(&text));
    let rendered = report.render(format);
    match output {
        Some(path) => {
            fs::write(path, rendered)
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
            println!(
                "{} (report written to {})",
                report.summary_line(),
                path.display()
            );
        }
        None => print!("{rendered}"),
    }
    if !all && indices.len() < progress.total() && format == Format::Text {
        println!(
            "({} locked exercises not checked; `sdlings verify --all` checks them too.)",
            progress.total() - indices.len()
        );
    }
    Ok(if report.all_passed() {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}

/// Whose work this is, as a mentor would name it: the author of the workbook's latest commit (on
/// CI, the learner who pushed; on a mentor's machine, still the learner), else git's `user.name`.
fn learner_from_git(root: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        (output.status.success() && !text.is_empty()).then_some(text)
    };
    git(&["log", "-1", "--format=%an"]).or_else(|| git(&["config", "user.name"]))
}

fn entry(
    workbook: &Workbook,
    index: usize,
    verdict: Option<&Verdict>,
    tests_changed: bool,
    state: &crate::state::State,
) -> Entry {
    let exercise = &workbook.info.exercises[index];
    let (status, summary, first_failure) = match verdict {
        None if state
            .exercises
            .get(&exercise.name)
            .is_some_and(|r| r.first_passed.is_some()) =>
        {
            (
                Status::Reverted,
                "back to its original text after passing".to_string(),
                None,
            )
        }
        None => (Status::NotAttempted, "not attempted".to_string(), None),
        Some(v) if v.passed() => (Status::Passed, v.summary(), None),
        Some(v) => {
            let first = match v {
                Verdict::TestsFailed { failures, .. } => failures.first().map(|f| FirstFailure {
                    test: f.test.clone(),
                    message: f.message.clone(),
                }),
                _ => None,
            };
            (Status::Failed, v.summary(), first)
        }
    };
    Entry {
        name: exercise.name.clone(),
        topic: workbook.info.topics[exercise.topic].dir.clone(),
        status,
        summary,
        first_failure,
        hints_revealed: state.hints_revealed(&exercise.name),
        hints_total: exercise.hints.len(),
        first_passed: None,
        tests_changed,
    }
}
