//! `sdlings solution NAME`: show the solution once the exercise is done.

use anyhow::{Context, Result, bail};

use super::Outcome;
use crate::workbook::Workbook;

pub fn run(workbook: &Workbook, name: &str, force: bool) -> Result<Outcome> {
    let index = workbook.find(name)?;
    let exercise = &workbook.info.exercises[index];
    let done = workbook.store.load()?.is_done(&exercise.name);
    if !done && !force {
        bail!(
            "`{name}` is not done yet, so its solution stays hidden: solving it is where the learning is.\n\
             Try `sdlings hint {name}` first, or pass --force to see the solution anyway."
        );
    }
    let path = workbook.solution_path(exercise);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the solution {}", path.display()))?;
    println!("// {}\n", workbook.display_path(&path));
    print!("{text}");
    Ok(Outcome::Success)
}
