//! The checks of `sdlings dev check` that need no build: info.toml, the files, the bins, the
//! hints, the READMEs and the mutants lists agree, and every exercise has the shape AUTHORING.md
//! asks for (`anatomy`). They explain most authoring mistakes, take a
//! fraction of a second, and are all `dev check --static` runs.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::Result;

use crate::dev::new::AUTHOR_TODO;
use crate::dev::update;
use crate::dev::{anatomy, mutants};
use crate::info_file::{ExerciseInfo, Topic};
use crate::workbook::{EXERCISES_DIR, SOLUTIONS_DIR, Workbook, test_module};

/// The three layers every topic README must have, as second-level headings.
pub const README_LAYERS: [&str; 3] = [
    "## Core fundamentals",
    "## System design perspective",
    "## Practical implementation",
];

/// Hints starting with this are unwritten placeholders.
pub const HINT_PLACEHOLDER: &str = "TODO";

/// Problems that need no build: files, hints, bins, READMEs, identical tests.
pub fn static_problems(workbook: &Workbook) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut mutant_counts = BTreeMap::new();
    for exercise in &workbook.info.exercises {
        problems.extend(hint_problem(exercise));
        problems.extend(file_problems(workbook, exercise));
        match mutants_count(workbook, exercise) {
            Ok(count) => {
                mutant_counts.insert(exercise.name.as_str(), count);
            }
            Err(problem) => problems.push(problem),
        }
    }
    problems.extend(update::bins_problems(workbook)?);
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
    for topic in &workbook.info.topics {
        problems.extend(readme_problems(workbook, topic));
    }
    problems.extend(anatomy::anatomy_problems(workbook, &mutant_counts)?);
    Ok(problems)
}

/// At least two hints, every one written.
fn hint_problem(exercise: &ExerciseInfo) -> Option<String> {
    let real_hints = exercise
        .hints
        .iter()
        .filter(|h| !h.trim().is_empty() && !h.trim_start().starts_with(HINT_PLACEHOLDER))
        .count();
    (real_hints < 2 || real_hints < exercise.hints.len()).then(|| {
        format!(
            "{}: needs at least two written hints in info.toml (it has {real_hints} written of {})",
            exercise.name,
            exercise.hints.len()
        )
    })
}

/// Exercise and solution exist, have no placeholders left, and end with the same tests.
fn file_problems(workbook: &Workbook, exercise: &ExerciseInfo) -> Vec<String> {
    let mut problems = Vec::new();
    let ex_path = workbook.exercise_path(exercise);
    let sol_path = workbook.solution_path(exercise);
    let ex_text = read_or_note(&ex_path, workbook, &mut problems);
    let sol_text = read_or_note(&sol_path, workbook, &mut problems);
    for (path, text) in [(&ex_path, &ex_text), (&sol_path, &sol_text)] {
        if text.as_deref().is_some_and(|t| t.contains(AUTHOR_TODO)) {
            problems.push(format!(
                "{}: still has {AUTHOR_TODO} placeholders from `sdlings dev new`",
                workbook.display_path(path)
            ));
        }
    }
    let name = &exercise.name;
    if let (Some(ex), Some(sol)) = (&ex_text, &sol_text) {
        match (test_module(ex), test_module(sol)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(_), Some(_)) => problems.push(format!(
                "{name}: the tests of the exercise and of its solution differ (from `#[cfg(test)]` to the end of the file they must be identical)"
            )),
            _ => problems.push(format!(
                "{name}: exercise and solution must both end with a `#[cfg(test)]` test module"
            )),
        }
    }
    problems
}

/// The topic's README exists, has its three layers and no placeholders.
fn readme_problems(workbook: &Workbook, topic: &Topic) -> Vec<String> {
    let readme = workbook.topic_readme(topic);
    let shown = workbook.display_path(&readme);
    let Ok(text) = fs::read_to_string(&readme) else {
        return vec![format!(
            "topic {}: {shown} is missing (every topic explains itself in three layers)",
            topic.name
        )];
    };
    let mut problems = Vec::new();
    if text.contains(AUTHOR_TODO) {
        problems.push(format!(
            "topic {}: {shown} still has {AUTHOR_TODO} placeholders",
            topic.name
        ));
    }
    for layer in README_LAYERS {
        if !text.lines().any(|l| l.trim_end() == layer) {
            problems.push(format!(
                "topic {}: {shown} lacks the heading `{layer}`",
                topic.name
            ));
        }
    }
    problems
}

/// The exercise's list of plausible wrong implementations must be written and apply cleanly to
/// its solution (whether the tests reject them is `dev mutants`' job: it needs a build each).
/// Its length, or the problem with it.
fn mutants_count(workbook: &Workbook, exercise: &ExerciseInfo) -> Result<usize, String> {
    let path = mutants::mutants_path(workbook, exercise);
    if fs::read_to_string(&path).is_ok_and(|text| text.contains(AUTHOR_TODO)) {
        return Err(format!(
            "{}: still has {AUTHOR_TODO} placeholders: list the mistakes a learner would really make",
            workbook.display_path(&path)
        ));
    }
    mutants::load(workbook, exercise)
        .map(|list| list.len())
        .map_err(|e| format!("{}: {e:#}", exercise.name))
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
