//! `sdlings report merge FILES...`: one cohort view from the learners' verify reports.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::Outcome;
use crate::cli::CohortFormat;
use crate::cohort::{self, html, load, markdown};

pub fn merge(files: &[PathBuf], format: CohortFormat, output: Option<&Path>) -> Result<Outcome> {
    // Every file is read before anything is written: one unusable report stops the merge with
    // all the problems named, and the previous page (if any) is left as it was.
    let mut reports = Vec::with_capacity(files.len());
    let mut problems = Vec::new();
    for file in files {
        match load::read(file) {
            Ok(report) => reports.push(report),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "{}\nnothing was written: fix or leave out the file(s) above",
            problems.join("\n")
        );
    }
    let cohort = cohort::merge(reports)?;
    let rendered = match format {
        CohortFormat::Html => html::render(&cohort),
        CohortFormat::Markdown => markdown::render(&cohort),
        CohortFormat::Json => {
            serde_json::to_string_pretty(&cohort).expect("a cohort always serialises") + "\n"
        }
    };
    match output {
        Some(path) => {
            write_atomically(path, &rendered)?;
            println!(
                "{} learners, {} exercises: cohort view written to {}",
                cohort.learners.len(),
                cohort.exercises.len(),
                path.display()
            );
            for note in &cohort.notes {
                println!("note: {note}");
            }
        }
        None => print!("{rendered}"),
    }
    Ok(Outcome::Success)
}

/// A page half-written (disk full, interrupted) never replaces the previous one.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    fs::write(&tmp, text)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            anyhow::anyhow!("cannot write {}: {e}", path.display())
        })
}
