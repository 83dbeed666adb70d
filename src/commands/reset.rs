//! `sdlings reset NAME`: restore the original exercise text.
//!
//! The original comes from the curriculum compiled into sdlings (see `pristine`), never from a file
//! the learner edits, so a reset works however much the learner changed. The learner's version is
//! not thrown away: it is saved under `.sdlings/backups/` first.

use std::fs;
use std::io::{BufRead, IsTerminal, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use super::Outcome;
use crate::pristine;
use crate::workbook::Workbook;

pub fn run(workbook: &Workbook, name: &str, yes: bool) -> Result<Outcome> {
    let index = workbook.find(name)?;
    let exercise = &workbook.info.exercises[index];
    let path = workbook.exercise_path(exercise);
    let shown = workbook.display_path(&path);
    let reference = pristine::Reference::of(workbook);
    let original = pristine::exercise_text(workbook, reference, exercise).map_err(|why| {
        anyhow::anyhow!(
            "there is no original of `{name}` to reset to: {why}. Restore {shown} from your own copy of the workbook."
        )
    })?;
    let current = fs::read_to_string(&path).ok();
    if current.as_deref() == Some(original.as_str()) {
        println!("{shown} is already in its original state.");
        return Ok(Outcome::Success);
    }
    if !yes && !confirm(&format!("Reset {shown} to its original text? [y/N] "))? {
        println!("Nothing changed.");
        return Ok(Outcome::Success);
    }
    if let Some(current) = current {
        let backups = workbook.private_dir().join("backups");
        fs::create_dir_all(&backups)
            .with_context(|| format!("cannot create {}", backups.display()))?;
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let backup = backups.join(format!("{name}.{stamp}.rs"));
        fs::write(&backup, current)
            .with_context(|| format!("cannot save your version to {}", backup.display()))?;
        println!(
            "Your version was saved to {}.",
            workbook.display_path(&backup)
        );
    }
    fs::write(&path, original).with_context(|| format!("cannot write {shown}"))?;
    workbook
        .store
        .update(|s| s.current = Some(exercise.name.clone()))?;
    println!("{shown} is back to its original text.");
    Ok(Outcome::Success)
}

/// Asks a yes/no question on the terminal. Without one there is nobody to ask, so refuse rather
/// than guess: the caller must pass `--yes`.
fn confirm(question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "reset would overwrite your file and there is no terminal to confirm it; pass --yes to reset anyway"
        );
    }
    print!("{question}");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}
