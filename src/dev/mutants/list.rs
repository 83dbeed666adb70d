//! The mistakes listed beside a solution (`NAME.mutants.toml`), read and applied.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::info_file::ExerciseInfo;
use crate::workbook::Workbook;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MutantsFile {
    #[serde(default)]
    mutants: Vec<Mutant>,
}

/// One plausible wrong implementation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mutant {
    /// The mistake, in a learner's terms: "a success does not reset the failure count".
    pub mistake: String,
    /// Text of the solution to replace; it must occur exactly once.
    pub replace: String,
    /// What to put instead.
    pub with: String,
    /// Tests that must be among those failing (optional): the ones whose message points at it.
    #[serde(default)]
    pub caught_by: Vec<String>,
}

/// Where an exercise's mutants live: beside its solution, `NAME.mutants.toml`.
pub fn mutants_path(workbook: &Workbook, exercise: &ExerciseInfo) -> PathBuf {
    workbook
        .solution_path(exercise)
        .with_extension("mutants.toml")
}

/// Reads and applies an exercise's mutants to its solution: (mutant, mutated source) pairs.
/// Errors name the file and the mutant, for `dev check` and `dev mutants` alike.
pub fn load(workbook: &Workbook, exercise: &ExerciseInfo) -> Result<Vec<(Mutant, String)>> {
    let path = mutants_path(workbook, exercise);
    let shown = workbook.display_path(&path);
    let text = fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {shown}: every exercise lists at least one plausible wrong implementation there (see exercises/AUTHORING.md)"
        )
    })?;
    let file: MutantsFile =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{shown} is not valid: {e}"))?;
    if file.mutants.is_empty() {
        bail!("{shown} lists no [[mutants]]: write at least one plausible wrong implementation");
    }
    let solution_path = workbook.solution_path(exercise);
    let solution = fs::read_to_string(&solution_path)
        .with_context(|| format!("cannot read {}", workbook.display_path(&solution_path)))?;
    let mut applied = Vec::new();
    for (n, mutant) in file.mutants.into_iter().enumerate() {
        let which = format!("{shown}, mutant {} ({:?})", n + 1, mutant.mistake);
        if mutant.mistake.trim().is_empty() {
            bail!("{which}: say what the mistake is in `mistake`");
        }
        if mutant.replace.is_empty() {
            bail!("{which}: `replace` is empty");
        }
        let count = solution.matches(&mutant.replace).count();
        if count != 1 {
            bail!(
                "{which}: the text in `replace` occurs {count} times in the solution; it must occur exactly once (quote more of the line)"
            );
        }
        if mutant.replace == mutant.with {
            bail!("{which}: `with` is the same as `replace`, so nothing changes");
        }
        let mutated = solution.replacen(&mutant.replace, &mutant.with, 1);
        applied.push((mutant, mutated));
    }
    Ok(applied)
}
