//! `sdlings dev update`: derive the `[[bin]]` lists of the workbook packages from info.toml.
//!
//! Every exercise is a binary of `exercises` (so rust-analyzer sees each file) and of `solutions`
//! (as `NAME_sol`), or of `exercises-GROUP` and `solutions-GROUP` if its topic names a package
//! group. Those lists are pure consequences of info.toml, so they are written by this
//! command, never by hand; `dev check` rejects a manifest that disagrees (see [`bins_problems`]).
//! Everything above the generated part of a manifest (package, dependencies) is the author's and
//! is kept as it is.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::commands::Outcome;
use crate::runner::Package;
use crate::workbook::Workbook;

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
    for (package, group) in manifests(workbook) {
        let path = manifest_path(workbook, package, group);
        let text = read(&path)?;
        let wanted = with_bins(&text, workbook, package, group);
        if wanted != text {
            fs::write(&path, wanted).with_context(|| format!("cannot write {}", path.display()))?;
            changed.push(path);
        }
    }
    Ok(changed)
}

/// A problem for each manifest that is not what `dev update` would write.
pub fn bins_problems(workbook: &Workbook) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for (package, group) in manifests(workbook) {
        let path = manifest_path(workbook, package, group);
        let Ok(text) = fs::read_to_string(&path) else {
            problems.push(format!(
                "{}: missing; topics of package group `{}` need it (a package `{}` whose [[bin]] list `sdlings dev update` writes)",
                workbook.display_path(&path),
                group.unwrap_or_default(),
                package.cargo_name(group)
            ));
            continue;
        };
        if with_bins(&text, workbook, package, group) != text {
            problems.push(format!(
                "{}: its [[bin]] list does not match info.toml; run `sdlings dev update`",
                workbook.display_path(&path)
            ));
        }
    }
    Ok(problems)
}

/// Every package manifest the curriculum implies: both sides of every package group.
fn manifests(workbook: &Workbook) -> Vec<(Package, Option<&str>)> {
    let groups = workbook.package_groups();
    [Package::Exercises, Package::Solutions]
        .into_iter()
        .flat_map(|package| groups.iter().map(move |&group| (package, group)))
        .collect()
}

fn manifest_path(workbook: &Workbook, package: Package, group: Option<&str>) -> PathBuf {
    workbook
        .root
        .join(package.manifest_dir(group))
        .join("Cargo.toml")
}

fn read(path: &PathBuf) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The manifest `text` with its generated part replaced by the bins info.toml implies for the
/// exercises of package group `group`. A manifest without the mark keeps everything up to its
/// first `[[bin]]`.
fn with_bins(text: &str, workbook: &Workbook, package: Package, group: Option<&str>) -> String {
    let end = text
        .find(GENERATED_MARK)
        .or_else(|| text.find("\n[[bin]]").map(|at| at + 1))
        .unwrap_or(text.len());
    let mut out = text[..end].trim_end().to_string();
    out.push_str("\n\n");
    out.push_str(GENERATED_MARK);
    out.push('\n');
    // Exercise paths are relative to the side's directory; a group's manifest is one below it.
    let up = if group.is_some() { "../" } else { "" };
    for exercise in &workbook.info.exercises {
        if workbook.package_group(exercise) == group {
            out.push_str(&format!(
                "\n[[bin]]\nname = \"{}\"\npath = \"{up}{}\"\n",
                package.bin_name(&exercise.name),
                exercise.path
            ));
        }
    }
    out
}
