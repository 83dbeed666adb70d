//! `sdlings dev update`: derive the `[[bin]]` lists of both workbook packages from info.toml.
//!
//! Every exercise is a binary of `exercises` (so rust-analyzer sees each file) and of `solutions`
//! (as `NAME_sol`). Those lists are pure consequences of info.toml, so they are written by this
//! command, never by hand; `dev check` rejects a manifest that disagrees (see [`bins_problems`]).
//! Everything above the generated part of a manifest (package, dependencies) is the author's and
//! is kept as it is.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::commands::Outcome;
use crate::runner::Package;
use crate::workbook::{EXERCISES_DIR, SOLUTIONS_DIR, Workbook};

/// The line that starts the generated part of a package manifest.
const GENERATED_MARK: &str = "# Generated from info.toml by `sdlings dev update`: one [[bin]] per exercise. Do not edit below.";

pub fn run(workbook: &Workbook) -> Result<Outcome> {
    let changed = write_bins(workbook)?;
    for path in &changed {
        println!("updated {}", workbook.display_path(path));
    }
    if changed.is_empty() {
        println!("the [[bin]] lists already match info.toml");
    }
    Ok(Outcome::Success)
}

/// Rewrites the manifests whose [[bin]] lists disagree with info.toml; returns those written.
pub fn write_bins(workbook: &Workbook) -> Result<Vec<PathBuf>> {
    let mut changed = Vec::new();
    for package in [Package::Exercises, Package::Solutions] {
        let path = manifest_path(workbook, package);
        let text = read(&path)?;
        let wanted = with_bins(&text, workbook, package);
        if wanted != text {
            fs::write(&path, wanted).with_context(|| format!("cannot write {}", path.display()))?;
            changed.push(path);
        }
    }
    Ok(changed)
}

/// A problem when `package`'s manifest is not what `dev update` would write.
pub fn bins_problem(workbook: &Workbook, package: Package) -> Result<Option<String>> {
    let path = manifest_path(workbook, package);
    let text = read(&path)?;
    Ok((with_bins(&text, workbook, package) != text).then(|| {
        format!(
            "{}: its [[bin]] list does not match info.toml; run `sdlings dev update`",
            workbook.display_path(&path)
        )
    }))
}

pub fn manifest_path(workbook: &Workbook, package: Package) -> PathBuf {
    let dir = match package {
        Package::Exercises => EXERCISES_DIR,
        Package::Solutions => SOLUTIONS_DIR,
    };
    workbook.root.join(dir).join("Cargo.toml")
}

fn read(path: &PathBuf) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The manifest `text` with its generated part replaced by the bins info.toml implies. A
/// manifest without the mark keeps everything up to its first `[[bin]]`.
fn with_bins(text: &str, workbook: &Workbook, package: Package) -> String {
    let end = text
        .find(GENERATED_MARK)
        .or_else(|| text.find("\n[[bin]]").map(|at| at + 1))
        .unwrap_or(text.len());
    let mut out = text[..end].trim_end().to_string();
    out.push_str("\n\n");
    out.push_str(GENERATED_MARK);
    out.push('\n');
    for exercise in &workbook.info.exercises {
        out.push_str(&format!(
            "\n[[bin]]\nname = \"{}\"\npath = \"{}\"\n",
            package.bin_name(&exercise.name),
            exercise.path
        ));
    }
    out
}
