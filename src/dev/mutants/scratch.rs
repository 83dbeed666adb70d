//! The scratch package the mutants are built in, inside the build directory (the workbook's
//! files are never touched).
//!
//! Each exercise's mutants are modules of one binary, `NAME__mutants`: one rustc run and one link
//! per exercise instead of one per mutant (the fixed costs of each; the code of every mutant is
//! still compiled). The tests of mutant 3 are then the ones under `mutant_3::`. A batch that does
//! not compile cannot say which of its mutants is broken, so that exercise is built again with
//! one binary per mutant, `NAME__mutantN`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::runner::Package;
use crate::workbook::Workbook;

/// One binary of the scratch package.
pub enum Unit {
    /// All of one exercise's mutated solutions, one module each (`mutant_1`, `mutant_2`, ...).
    Batch {
        exercise: String,
        sources: Vec<String>,
    },
    /// One mutated solution on its own, numbered from 1 like the batch's modules.
    Solo {
        exercise: String,
        number: usize,
        source: String,
    },
}

impl Unit {
    pub fn bin(&self) -> String {
        match self {
            Unit::Batch { exercise, .. } => batch_bin(exercise),
            Unit::Solo {
                exercise, number, ..
            } => solo_bin(exercise, *number),
        }
    }
}

pub fn batch_bin(exercise: &str) -> String {
    format!("{exercise}__mutants")
}

pub fn solo_bin(exercise: &str, number: usize) -> String {
    format!("{exercise}__mutant{number}")
}

/// The module of mutant `number` in its exercise's batch; its tests' names start with this.
pub fn module(number: usize) -> String {
    format!("mutant_{number}")
}

/// The scratch package's directory. Always the same one: cargo identifies a package by its path
/// relative to its workspace, so a second scratch package elsewhere would share the first one's
/// build records and could be judged up to date from the wrong sources. Runs take turns through
/// a lock instead.
pub fn package_dir(workbook: &Workbook) -> PathBuf {
    workbook.build_dir().join("mutants")
}

/// Writes the package with exactly these units: the solutions packages' dependencies (path
/// dependencies made absolute), the workspace's profiles and lock file (same versions, same build
/// settings, so the dependencies already built for the workbook are reused).
pub fn write(workbook: &Workbook, dir: &Path, units: &[Unit]) -> Result<()> {
    let src = dir.join("src");
    fs::create_dir_all(&src).with_context(|| format!("cannot create {}", src.display()))?;
    write_if_changed(&dir.join("Cargo.toml"), &manifest(workbook, units)?)?;
    let lock = workbook.root.join("Cargo.lock");
    if lock.exists() {
        write_if_changed(&dir.join("Cargo.lock"), &fs::read_to_string(&lock)?)?;
    }

    let mut wanted = BTreeSet::new();
    for unit in units {
        match unit {
            Unit::Batch { exercise, sources } => {
                let bin = batch_bin(exercise);
                let unit_dir = src.join(&bin);
                fs::create_dir_all(&unit_dir)
                    .with_context(|| format!("cannot create {}", unit_dir.display()))?;
                let mut files = BTreeSet::new();
                let mut main = format!(
                    "// Written by `sdlings dev mutants`: each module is the solution of `{exercise}` with one\n\
                     // listed mistake in it.\n#![allow(warnings)]\n\n"
                );
                for (n, source) in sources.iter().enumerate() {
                    let module = module(n + 1);
                    main.push_str(&format!("mod {module};\n"));
                    write_if_changed(&unit_dir.join(format!("{module}.rs")), source)?;
                    files.insert(format!("{module}.rs"));
                }
                main.push_str("\nfn main() {}\n");
                write_if_changed(&unit_dir.join("main.rs"), &main)?;
                files.insert("main.rs".to_string());
                remove_unwanted(&unit_dir, &files)?;
                wanted.insert(bin);
            }
            Unit::Solo { source, .. } => {
                let file = format!("{}.rs", unit.bin());
                write_if_changed(&src.join(&file), source)?;
                wanted.insert(file);
            }
        }
    }
    remove_unwanted(&src, &wanted)
}

/// The dependencies of the solutions packages these units' exercises belong to (path
/// dependencies made absolute): only the main package's unless a unit is of a package group, so
/// checking one exercise's mistakes never builds another group's heavy dependencies.
fn dependencies(workbook: &Workbook, units: &[Unit]) -> Result<toml::Table> {
    let mut groups = BTreeSet::from([None]);
    for unit in units {
        let (Unit::Batch { exercise, .. } | Unit::Solo { exercise, .. }) = unit;
        if let Some(index) = workbook.info.exercise_index(exercise) {
            groups.insert(workbook.package_group(&workbook.info.exercises[index]));
        }
    }
    let mut dependencies = toml::Table::new();
    for group in groups {
        let dir = workbook.root.join(Package::Solutions.manifest_dir(group));
        let manifest: toml::Table = read_toml(&dir.join("Cargo.toml"))?;
        let listed = manifest.get("dependencies").and_then(|d| d.as_table());
        for (name, spec) in listed.into_iter().flatten() {
            let mut spec = spec.clone();
            if let Some(path) = spec.get_mut("path")
                && let Some(rel) = path.as_str()
            {
                *path = toml::Value::String(dir.join(rel).display().to_string());
            }
            dependencies.insert(name.clone(), spec);
        }
    }
    Ok(dependencies)
}

fn manifest(workbook: &Workbook, units: &[Unit]) -> Result<String> {
    let root: toml::Table = read_toml(&workbook.root.join("Cargo.toml"))?;
    let dependencies = dependencies(workbook, units)?;
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
    // The mutant binaries are built once each and never debugged: without debug info (their
    // own, and the dependencies' stripped at link time) each takes a tenth of the disk. Only
    // this package: the dependencies' builds stay shared with the workbook's.
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
    let bins: Vec<toml::Value> = units
        .iter()
        .map(|unit| {
            let bin = unit.bin();
            let path = match unit {
                Unit::Batch { .. } => format!("src/{bin}/main.rs"),
                Unit::Solo { .. } => format!("src/{bin}.rs"),
            };
            let mut entry = toml::Table::new();
            entry.insert("name".into(), bin.into());
            entry.insert("path".into(), path.into());
            entry.into()
        })
        .collect();
    manifest.insert("bin".into(), bins.into());
    Ok(format!(
        "# Written by `sdlings dev mutants`; rewritten on every run.\n{}",
        toml::to_string(&manifest)?
    ))
}

/// Removes the entries of `dir` (files or directories) not named in `wanted`: sources of
/// mutants no longer listed must not linger.
fn remove_unwanted(dir: &Path, wanted: &BTreeSet<String>) -> Result<()> {
    for entry in fs::read_dir(dir)?.flatten() {
        if wanted.contains(&*entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let _ = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
    }
    Ok(())
}

/// Leaves an unchanged file alone, so cargo reuses the build of a unit that did not change.
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
