//! `sdlings hint [NAME]`: reveal the next hint; the count is remembered.

use anyhow::Result;
use colored::Colorize;

use super::{Outcome, resolve};
use crate::state::State;
use crate::workbook::Workbook;

pub fn run(workbook: &Workbook, name: Option<&str>) -> Result<Outcome> {
    let index = resolve(workbook, name)?;
    let state = reveal_next(workbook, index)?;
    let exercise = &workbook.info.exercises[index];
    print!(
        "{}",
        hints_text(&exercise.hints, state.hints_revealed(&exercise.name))
    );
    Ok(Outcome::Success)
}

/// Records one more revealed hint of exercise `index` (up to the last), for `hint` and the
/// watcher's `h` alike; returns the state saved.
pub fn reveal_next(workbook: &Workbook, index: usize) -> Result<State> {
    let exercise = &workbook.info.exercises[index];
    let (state, _) = workbook.store.update(|s| {
        let record = s.record_mut(&exercise.name);
        record.hints_revealed = (record.hints_revealed + 1).min(exercise.hints.len());
    })?;
    Ok(state)
}

/// The first `revealed` hints, numbered, and whether more are left.
pub fn hints_text(hints: &[String], revealed: usize) -> String {
    if hints.is_empty() {
        return "This exercise has no hints.\n".to_string();
    }
    let mut out = String::new();
    let width = crate::term::width().min(100);
    for (i, hint) in hints.iter().take(revealed).enumerate() {
        let label = format!("Hint {}/{}:", i + 1, hints.len());
        // Wrap after the label, so the first line is as long as the others.
        let text = format!("{label} {}", hint.trim());
        let wrapped = textwrap::fill(&text, width);
        out.push_str(&format!(
            "{}{}\n\n",
            label.cyan().bold(),
            &wrapped[label.len()..]
        ));
    }
    if revealed < hints.len() {
        out.push_str(&format!(
            "({} more; ask again for the next one.)\n",
            hints.len() - revealed
        ));
    } else {
        out.push_str("(That was the last hint.)\n");
    }
    out
}
