//! `sdlings dev mutants`: do the tests reject the mistakes learners really make?
//!
//! Next to each solution, `NAME.mutants.toml` lists plausible wrong implementations: a mistake
//! in words, and the edit of the solution that makes it. Each mutant is built as a binary of a
//! scratch package (in the build directory, never touching the workbook's files) and its tests
//! run: a mutant whose tests all pass has "survived", and the exercise's tests have a hole.
//! A mutant must compile: a mistake the compiler catches says nothing about the tests.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use colored::Colorize;
use serde::Deserialize;

use crate::commands::Outcome;
use crate::info_file::ExerciseInfo;
use crate::runner::{self, Artifact, BuildPlan, TestRun, Verdict};
use crate::term::{self, StatusLine};
use crate::workbook::{SOLUTIONS_DIR, Workbook};

/// The scratch package the mutants are built in. Always the same directory: cargo identifies a
/// package by its path relative to its workspace, so a second scratch package elsewhere would
/// share the first one's build records and could be judged up to date from the wrong sources.
/// Runs take turns through a lock instead.
pub fn package_dir(workbook: &Workbook) -> PathBuf {
    workbook.build_dir().join("mutants")
}

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

/// One mutant, built and judged.
struct Judged {
    exercise: String,
    mistake: String,
    problem: Option<String>,
    note: String,
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

    // bin name -> (exercise, mutant)
    let mut mutants: BTreeMap<String, (&ExerciseInfo, Mutant)> = BTreeMap::new();
    let mut sources = Vec::new();
    for exercise in &exercises {
        for (n, (mutant, source)) in load(workbook, exercise)?.into_iter().enumerate() {
            let bin = format!("{}__mutant{}", exercise.name, n + 1);
            sources.push((bin.clone(), source));
            mutants.insert(bin, (exercise, mutant));
        }
    }
    let package_dir = package_dir(workbook);
    fs::create_dir_all(&package_dir)
        .with_context(|| format!("cannot create {}", package_dir.display()))?;
    let lock_path = package_dir.join(".lock");
    let lock = fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    write_scratch_package(workbook, &package_dir, &sources)?;

    let total = mutants.len();
    eprintln!(
        "dev mutants: building {total} mutants of {} exercise(s)…",
        exercises.len()
    );
    let mut status = StatusLine::new();
    let plan = BuildPlan {
        dir: package_dir.clone(),
        target_dir: workbook.build_dir(),
        packages: vec!["mutants".to_string()],
        tests: mutants.keys().cloned().collect(),
        labs: Vec::new(),
        all_tests: false,
        color: term::color_enabled(),
        incremental: false,
    };
    let built = runner::build_counting(&plan, &mut |line| status.set(line))?;
    let runs: Vec<TestRun> = mutants
        .iter()
        .map(|(bin, (exercise, _))| TestRun {
            label: bin.clone(),
            bin: bin.clone(),
            exe: built.executable(bin, Artifact::Tests).map(Into::into),
            filter: None,
            time_limit: exercise.time_limit,
            repeat: 1,
        })
        .collect();
    let verdicts = runner::run_all(&workbook.root, &runs, &built, &mut |l| status.set(l))?;
    status.clear();
    let results: Vec<Judged> = mutants
        .values()
        .zip(&verdicts)
        .map(|((exercise, mutant), verdict)| judge(exercise, mutant, verdict))
        .collect();
    report(&results, &package_dir)
}

/// Whether the tests rejected the mutant, and how.
fn judge(exercise: &ExerciseInfo, mutant: &Mutant, verdict: &Verdict) -> Judged {
    let (problem, note) = match verdict {
        Verdict::Passed { tests } => (
            Some(format!(
                "SURVIVED: all {tests} tests pass with this mistake; add a test that rejects it"
            )),
            String::new(),
        ),
        Verdict::TestsFailed { failures, .. } => {
            let failing: Vec<&str> = failures.iter().map(|f| f.test.as_str()).collect();
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
        exercise: exercise.name.clone(),
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

/// Writes the scratch package: the solutions package's dependencies (path dependencies made
/// absolute), the workspace's profiles and lock file (same versions, same build settings, so
/// the dependencies already built for the workbook are reused) and one bin per mutant.
fn write_scratch_package(
    workbook: &Workbook,
    dir: &Path,
    sources: &[(String, String)],
) -> Result<()> {
    let src = dir.join("src");
    fs::create_dir_all(&src).with_context(|| format!("cannot create {}", src.display()))?;

    let solutions_dir = workbook.root.join(SOLUTIONS_DIR);
    let solutions: toml::Table = read_toml(&solutions_dir.join("Cargo.toml"))?;
    let root: toml::Table = read_toml(&workbook.root.join("Cargo.toml"))?;
    let mut dependencies = solutions
        .get("dependencies")
        .and_then(|d| d.as_table())
        .cloned()
        .unwrap_or_default();
    for (_, spec) in dependencies.iter_mut() {
        if let Some(path) = spec.get_mut("path")
            && let Some(rel) = path.as_str()
        {
            *path = toml::Value::String(solutions_dir.join(rel).display().to_string());
        }
    }
    let mut manifest = toml::Table::new();
    let mut package = toml::Table::new();
    package.insert("name".into(), "mutants".into());
    package.insert("version".into(), "0.0.0".into());
    package.insert("edition".into(), "2024".into());
    package.insert("publish".into(), false.into());
    package.insert("autobins".into(), false.into());
    manifest.insert("package".into(), package.into());
    // An empty workspace table: the scratch package is its own workspace.
    manifest.insert("workspace".into(), toml::Table::new().into());
    manifest.insert("dependencies".into(), dependencies.into());
    let mut profile = root
        .get("profile")
        .and_then(|p| p.as_table())
        .cloned()
        .unwrap_or_default();
    // Hundreds of mutant binaries are built once each and never debugged: without debug info
    // (their own, and the dependencies' stripped at link time) each takes a tenth of the disk.
    // Only this package: the dependencies' builds stay shared with the workbook's.
    let mut mutants_profile = toml::Table::new();
    mutants_profile.insert("debug".into(), false.into());
    mutants_profile.insert("strip".into(), "debuginfo".into());
    let dev = profile
        .entry("dev")
        .or_insert_with(|| toml::Table::new().into());
    if let Some(dev) = dev.as_table_mut() {
        let packages = dev
            .entry("package")
            .or_insert_with(|| toml::Table::new().into());
        if let Some(packages) = packages.as_table_mut() {
            packages.insert("mutants".into(), mutants_profile.into());
        }
    }
    manifest.insert("profile".into(), profile.into());
    let bins: Vec<toml::Value> = sources
        .iter()
        .map(|(bin, _)| {
            let mut entry = toml::Table::new();
            entry.insert("name".into(), bin.clone().into());
            entry.insert("path".into(), format!("src/{bin}.rs").into());
            entry.into()
        })
        .collect();
    manifest.insert("bin".into(), bins.into());
    let text = format!(
        "# Written by `sdlings dev mutants`; rewritten on every run.\n{}",
        toml::to_string(&manifest)?
    );
    write_if_changed(&dir.join("Cargo.toml"), &text)?;
    let lock = workbook.root.join("Cargo.lock");
    if lock.exists() {
        write_if_changed(&dir.join("Cargo.lock"), &fs::read_to_string(&lock)?)?;
    }
    let wanted: Vec<String> = sources.iter().map(|(bin, _)| format!("{bin}.rs")).collect();
    for entry in fs::read_dir(&src)?.flatten() {
        if !wanted.contains(&entry.file_name().to_string_lossy().into_owned()) {
            let _ = fs::remove_file(entry.path());
        }
    }
    for (bin, source) in sources {
        write_if_changed(&src.join(format!("{bin}.rs")), source)?;
    }
    Ok(())
}

/// Leaves an unchanged file alone, so cargo reuses the build of a mutant that did not change.
fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn read_toml(path: &Path) -> Result<toml::Table> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))
}
