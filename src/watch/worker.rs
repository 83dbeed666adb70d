//! The watcher's background work: check the exercise, and after a pass run its lab. It runs on
//! its own thread so the screen and keys stay responsive, and can be cancelled when a newer save
//! makes it stale. Every message carries the generation it belongs to, so a late answer from a
//! cancelled run is recognised and ignored.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread;

use crate::runner::lab::{self, LabBuild};
use crate::runner::{self, Cancel, Package, Verdict};
use crate::workbook::Workbook;

use super::events::Event;

#[derive(Debug)]
pub enum WorkResult {
    Verdict(Verdict),
    Lab { output: String },
    Error(String),
}

/// A running piece of work; dropping the handle does not stop it, `cancel` does.
pub struct Job {
    cancel: Cancel,
}

impl Job {
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

pub fn start(
    workbook: Arc<Workbook>,
    index: usize,
    generation: u64,
    color: bool,
    tx: Sender<Event>,
) -> Job {
    let cancel = Cancel::new();
    let job = Job {
        cancel: cancel.clone(),
    };
    thread::spawn(move || {
        let send = |result| {
            let _ = tx.send(Event::Finished { generation, result });
        };
        let progress_tx = tx.clone();
        let mut progress = |line: &str| {
            let _ = progress_tx.send(Event::Progress {
                generation,
                line: line.to_string(),
            });
        };
        let verdict = match runner::check(
            &workbook,
            Package::Exercises,
            index,
            None,
            color,
            &cancel,
            &mut progress,
        ) {
            Ok(Some(v)) => v,
            Ok(None) => return,
            Err(e) => return send(WorkResult::Error(format!("{e:#}"))),
        };
        let passed = verdict.passed();
        send(WorkResult::Verdict(verdict));
        if passed {
            match run_lab(&workbook, index, color, &cancel, &mut progress) {
                Ok(Some(output)) => send(WorkResult::Lab { output }),
                Ok(None) => {}
                Err(e) => send(WorkResult::Error(format!("{e:#}"))),
            }
        }
    });
    job
}

/// Builds and runs the lab with its output captured for the screen. `None`: cancelled.
fn run_lab(
    workbook: &Workbook,
    index: usize,
    color: bool,
    cancel: &Cancel,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Option<String>> {
    progress("Building the lab…");
    let exe = match lab::build(workbook, Package::Exercises, index, color, cancel, progress)? {
        LabBuild::Built(exe) => exe,
        LabBuild::Cancelled => return Ok(None),
        LabBuild::Failed(verdict) => {
            return Ok(Some(format!(
                "The lab did not build: {}",
                verdict.summary()
            )));
        }
    };
    progress("Running the lab…");
    Ok(lab::run_captured(&exe, &workbook.root, cancel)?.map(|run| run.output))
}
