//! `sdlings dev check`: everything an author must get right, checked at once.
//!
//! Static checks first (cheap, and they explain most mistakes), then the expensive ones: every
//! exercise must fail as shipped, and every solution must pass its tests `repeat` times in a row,
//! which is how flaky (non-deterministic) tests are caught before a learner meets them.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use colored::Colorize;
use serde::Deserialize;

use crate::cargo::Package;
use crate::check::{Verdict, check_many};
use crate::commands::Outcome;
use crate::dev::mutants;
use crate::dev::new::AUTHOR_TODO;
use crate::info_file::ExerciseInfo;
use crate::term::{self, StatusLine};
use crate::workbook::{EXERCISES_DIR, SOLUTIONS_DIR, Workbook, test_module};

/// The three layers every topic README must have, as second-level headings.
pub const README_LAYERS: [&str; 3] = [
    "## Core fundamentals",
    "## System design perspective",
    "## Practical implementation",
];

/// Hints starting with this are unwritten placeholders.
pub const HINT_PLACEHOLDER: &str = "TODO";

pub fn run(workbook: &Workbook, repeat: u32, update_originals: bool) -> Result<Outcome> {
    if update_originals {
        copy_exercises_to_originals(workbook)?;
    }
    let mut problems = static_problems(workbook)?;
    let count = workbook.info.exercises.len();
    let all: Vec<usize> = (0..count).collect();
    let color = term::color_enabled();
    let mut status = StatusLine::new();

    eprintln!("dev check: building and running the {count} exercises as shipped (each must fail)…");
    let unsolved = check_many(workbook, Package::Exercises, &all, 1, color, &mut |l| {
        status.set(l)
    })?;
    status.clear();
    for (exercise, verdict) in workbook.info.exercises.iter().zip(&unsolved) {
        let problem = match verdict {
            Verdict::TestsFailed { .. } => None,
            Verdict::Passed { .. } => {
                Some("passes as shipped: its tests do not test the learner's part".to_string())
            }
            Verdict::CompileError { diagnostics } => Some(format!(
                "does not compile as shipped (exercises must compile and fail their tests):\n{diagnostics}"
            )),
            other => Some(format!("as shipped it {}", other.summary())),
        };
        if let Some(p) = problem {
            problems.push(format!("{}: {p}", exercise.name));
        }
    }

    eprintln!("dev check: building the {count} solutions and running each one's tests {repeat}× …");
    let solved = check_many(
        workbook,
        Package::Solutions,
        &all,
        repeat,
        color,
        &mut |l| status.set(l),
    )?;
    status.clear();
    for (exercise, verdict) in workbook.info.exercises.iter().zip(&solved) {
        if !verdict.passed() {
            let detail = crate::present::verdict_text(&exercise.name, "", verdict);
            problems.push(format!(
                "{}: the solution does not pass every time: {detail}",
                exercise.name
            ));
        }
    }

    if problems.is_empty() {
        println!(
            "{} dev check: {count} exercises in {} topics are consistent; every exercise fails as shipped and every solution passed {repeat}× in a row.",
            "✓".green().bold(),
            workbook.info.topics.len()
        );
        Ok(Outcome::Success)
    } else {
        for p in &problems {
            println!("{} {}", "✗".red().bold(), p.trim_end());
        }
        println!("\ndev check: {} problem(s) found", problems.len());
        Ok(Outcome::Failure)
    }
}

/// Problems that need no build: files, hints, bins, READMEs, identical tests.
pub fn static_problems(workbook: &Workbook) -> Result<Vec<String>> {
    let info = &workbook.info;
    let mut problems = Vec::new();
    for exercise in &info.exercises {
        let name = &exercise.name;
        let real_hints = exercise
            .hints
            .iter()
            .filter(|h| !h.trim().is_empty() && !h.trim_start().starts_with(HINT_PLACEHOLDER))
            .count();
        if real_hints < 2 || real_hints < exercise.hints.len() {
            problems.push(format!(
                "{name}: needs at least two written hints in info.toml (it has {real_hints} written of {})",
                exercise.hints.len()
            ));
        }
        let ex_path = workbook.exercise_path(exercise);
        let sol_path = workbook.solution_path(exercise);
        let orig_path = workbook.original_path(exercise);
        let ex_text = read_or_note(&ex_path, workbook, &mut problems);
        let sol_text = read_or_note(&sol_path, workbook, &mut problems);
        let orig_text = read_or_note(&orig_path, workbook, &mut problems);
        for (path, text) in [(&ex_path, &ex_text), (&sol_path, &sol_text)] {
            if text.as_deref().is_some_and(|t| t.contains(AUTHOR_TODO)) {
                problems.push(format!(
                    "{}: still has {AUTHOR_TODO} placeholders from `sdlings dev new`",
                    workbook.display_path(path)
                ));
            }
        }
        problems.extend(mutants_problem(workbook, exercise));
        if let (Some(ex), Some(orig)) = (&ex_text, &orig_text)
            && ex != orig
        {
            problems.push(format!(
                "{name}: {} differs from its pristine copy {} (used by `sdlings reset`); if you changed the exercise as its author, run `sdlings dev check --update-originals`",
                workbook.display_path(&ex_path),
                workbook.display_path(&orig_path)
            ));
        }
        if let (Some(ex), Some(sol)) = (&ex_text, &sol_text) {
            match (test_module(ex), test_module(sol)) {
                (Some(a), Some(b)) if a == b => {}
                (Some(_), Some(_)) => problems.push(format!(
                    "{name}: the tests of the exercise and of its solution differ (from `#[cfg(test)]` to the end of the file they must be identical)"
                )),
                _ => problems.push(format!("{name}: exercise and solution must both end with a `#[cfg(test)]` test module")),
            }
        }
    }
    problems.extend(bin_problems(workbook, Package::Exercises)?);
    problems.extend(bin_problems(workbook, Package::Solutions)?);
    problems.extend(stray_files(workbook));
    for file in crate::set::set_files(&workbook.root) {
        if let Err(e) = crate::set::ExerciseSet::load(
            &workbook.root,
            &file.display().to_string(),
            &workbook.info,
        ) {
            problems.push(format!("{e:#}"));
        }
    }
    for topic in &info.topics {
        let readme = workbook.topic_readme(topic);
        match fs::read_to_string(&readme) {
            Ok(text) => {
                if text.contains(AUTHOR_TODO) {
                    problems.push(format!(
                        "topic {}: {} still has {AUTHOR_TODO} placeholders",
                        topic.name,
                        workbook.display_path(&readme)
                    ));
                }
                for layer in README_LAYERS {
                    if !text.lines().any(|l| l.trim_end() == layer) {
                        problems.push(format!(
                            "topic {}: {} lacks the heading `{layer}`",
                            topic.name,
                            workbook.display_path(&readme)
                        ));
                    }
                }
            }
            Err(_) => problems.push(format!(
                "topic {}: {} is missing (every topic explains itself in three layers)",
                topic.name,
                workbook.display_path(&readme)
            )),
        }
    }
    Ok(problems)
}

/// The exercise's list of plausible wrong implementations must be written and apply cleanly to
/// its solution (whether the tests reject them is `dev mutants`' job: it needs a build each).
fn mutants_problem(workbook: &Workbook, exercise: &ExerciseInfo) -> Option<String> {
    let path = mutants::mutants_path(workbook, exercise);
    if fs::read_to_string(&path).is_ok_and(|text| text.contains(AUTHOR_TODO)) {
        return Some(format!(
            "{}: still has {AUTHOR_TODO} placeholders: list the mistakes a learner would really make",
            workbook.display_path(&path)
        ));
    }
    mutants::load(workbook, exercise)
        .err()
        .map(|e| format!("{}: {e:#}", exercise.name))
}

fn read_or_note(path: &Path, workbook: &Workbook, problems: &mut Vec<String>) -> Option<String> {
    match fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) => {
            problems.push(format!(
                "{}: cannot read it: {e}",
                workbook.display_path(path)
            ));
            None
        }
    }
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    bin: Vec<BinEntry>,
}

#[derive(Deserialize)]
struct BinEntry {
    name: String,
    path: String,
}

/// The package's `[[bin]]` list must be exactly info.toml's exercises, in order.
fn bin_problems(workbook: &Workbook, package: Package) -> Result<Vec<String>> {
    let dir = match package {
        Package::Exercises => EXERCISES_DIR,
        Package::Solutions => SOLUTIONS_DIR,
        Package::Mutants => unreachable!("the mutants package is generated, not authored"),
    };
    let manifest_path = workbook.root.join(dir).join("Cargo.toml");
    let text = fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let manifest: Manifest = toml::from_str(&text)
        .map_err(|e| crate::info_file::toml_error(&workbook.display_path(&manifest_path), &e))?;
    let shown = workbook.display_path(&manifest_path);
    let expected: Vec<(String, &str)> = workbook
        .info
        .exercises
        .iter()
        .map(|e| (package.bin_name(&e.name), e.path.as_str()))
        .collect();
    let actual: BTreeMap<&str, &str> = manifest
        .bin
        .iter()
        .map(|b| (b.name.as_str(), b.path.as_str()))
        .collect();
    let mut problems = Vec::new();
    for (bin, path) in &expected {
        match actual.get(bin.as_str()) {
            None => problems.push(format!(
                "{shown}: no [[bin]] `{bin}` (add `[[bin]]\\nname = \"{bin}\"\\npath = \"{path}\"`)"
            )),
            Some(p) if p != path => problems.push(format!(
                "{shown}: [[bin]] `{bin}` has path `{p}`, but info.toml says `{path}`"
            )),
            Some(_) => {}
        }
    }
    for bin in &manifest.bin {
        if !expected.iter().any(|(b, _)| *b == bin.name) {
            problems.push(format!(
                "{shown}: [[bin]] `{}` is not an exercise in info.toml",
                bin.name
            ));
        }
    }
    let order: Vec<&str> = manifest.bin.iter().map(|b| b.name.as_str()).collect();
    let wanted: Vec<&str> = expected.iter().map(|(b, _)| b.as_str()).collect();
    if problems.is_empty() && order != wanted {
        problems.push(format!("{shown}: list the [[bin]]s in info.toml's order"));
    }
    Ok(problems)
}

/// `.rs` files in a topic directory that info.toml does not list: forgotten, or a typo.
fn stray_files(workbook: &Workbook) -> Vec<String> {
    let mut problems = Vec::new();
    for base in [EXERCISES_DIR, SOLUTIONS_DIR] {
        for topic in &workbook.info.topics {
            let dir = workbook.root.join(base).join(&topic.dir);
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                // A solution's mutants belong to the exercise of the same name.
                let source = match file.strip_suffix(".mutants.toml") {
                    Some(stem) if base == SOLUTIONS_DIR => format!("{stem}.rs"),
                    _ if file.ends_with(".rs") => file.clone(),
                    _ => continue,
                };
                let rel = format!("{}/{source}", topic.dir);
                if !workbook.info.exercises.iter().any(|e| e.path == rel) {
                    problems.push(format!(
                        "{base}/{}/{file}: not an exercise in info.toml (add it, or remove the file)",
                        topic.dir
                    ));
                }
            }
        }
    }
    problems
}

fn copy_exercises_to_originals(workbook: &Workbook) -> Result<()> {
    for exercise in &workbook.info.exercises {
        let from = workbook.exercise_path(exercise);
        let to = workbook.original_path(exercise);
        if let Some(dir) = to.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        fs::copy(&from, &to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }
    eprintln!("dev check: updated the pristine copies in exercises/.originals");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_module_starts_at_cfg_test() {
        let src = "fn a() {}\n\n#[cfg(test)]\nmod tests {}\n";
        assert_eq!(
            super::test_module(src),
            Some("#[cfg(test)]\nmod tests {}\n")
        );
        assert_eq!(super::test_module("fn a() {}\n"), None);
    }
}
