//! `sdlings set list|show|use|clear`: choose which exercises are in play.

use anyhow::Result;
use colored::Colorize;

use super::Outcome;
use super::list::list_text;
use crate::set::{self, ExerciseSet, Unlock};
use crate::workbook::{Progress, Workbook};

pub fn list(workbook: &Workbook) -> Result<Outcome> {
    let state = workbook.store.load()?;
    let files = set::set_files(&workbook.root);
    if files.is_empty() {
        println!("This workbook has no sets (sets/*.toml).");
        return Ok(Outcome::Success);
    }
    for file in files {
        let spec = file.display().to_string();
        match ExerciseSet::load(&workbook.root, &spec, &workbook.info) {
            Ok(s) => {
                let active = state.active_set.as_deref() == Some(s.name.as_str());
                println!(
                    "{} {:<24} {} ({} exercises, {})",
                    if active {
                        "▶".yellow().bold()
                    } else {
                        " ".normal()
                    },
                    s.name,
                    s.title,
                    s.exercises.len(),
                    unlock_label(s.unlock)
                );
            }
            Err(e) => println!("  {} {e:#}", "✗".red().bold()),
        }
    }
    if state.active_set.is_none() {
        println!("\nNo set is active: you are working through the whole workbook.");
    }
    Ok(Outcome::Success)
}

pub fn show(workbook: &Workbook, spec: &str) -> Result<Outcome> {
    let set = ExerciseSet::load(&workbook.root, spec, &workbook.info)?;
    let state = workbook.store.load()?;
    println!("{} — {}", set.name.bold(), set.title);
    if !set.description.trim().is_empty() {
        println!("\n{}", set.description.trim());
    }
    println!("\nUnlock: {}\n", unlock_label(set.unlock));
    let progress = Progress::new(&workbook.info, &set, &state);
    print!("{}", list_text(workbook, &set, &progress));
    Ok(Outcome::Success)
}

pub fn use_set(workbook: &Workbook, spec: &str) -> Result<Outcome> {
    let set = ExerciseSet::load(&workbook.root, spec, &workbook.info)?;
    // A set in sets/ is remembered by name; any other set file by its path.
    let remembered = if set::locate(&workbook.root, &set.name) == set::locate(&workbook.root, spec)
    {
        set.name.clone()
    } else {
        set::locate(&workbook.root, spec).display().to_string()
    };
    workbook.store.update(|s| {
        s.active_set = Some(remembered);
        s.current = None;
    })?;
    println!(
        "Now working on the set {} — {} ({} exercises). `sdlings set clear` goes back to the whole workbook.",
        set.name.bold(),
        set.title,
        set.exercises.len()
    );
    Ok(Outcome::Success)
}

pub fn clear(workbook: &Workbook) -> Result<Outcome> {
    workbook.store.update(|s| {
        s.active_set = None;
        s.current = None;
    })?;
    println!(
        "No set is active: you are working through the whole workbook. Your progress is kept."
    );
    Ok(Outcome::Success)
}

fn unlock_label(unlock: Unlock) -> &'static str {
    match unlock {
        Unlock::Sequential => "sequential: a topic opens when the earlier ones are done",
        Unlock::Open => "open: every exercise is available from the start",
    }
}
