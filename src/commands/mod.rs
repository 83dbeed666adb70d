//! One module per verb. Each returns an [`Outcome`]; errors (exit code 2) propagate as `anyhow`.

pub mod check;
pub mod hint;
pub mod init;
pub mod list;
pub mod report;
pub mod reset;
pub mod run;
pub mod set;
pub mod solution;
pub mod verify;

use anyhow::Result;

use crate::workbook::Workbook;

/// How a command ended, as far as the exit code is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit code 0.
    Success,
    /// Exit code 1: an exercise (or a lab) failed.
    Failure,
}

/// The exercise a command is about: the one named, or the current one.
pub fn resolve(workbook: &Workbook, name: Option<&str>) -> Result<usize> {
    match name {
        Some(name) => workbook.find(name),
        None => {
            let (_, _, progress) = workbook.progress()?;
            progress.current.ok_or_else(|| {
                anyhow::anyhow!(
                    "every exercise is done, so there is no current one; name one (`sdlings list` shows them)"
                )
            })
        }
    }
}
