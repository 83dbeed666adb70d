//! The watcher's two faces: a full screen on a terminal ([`super::screen::Screen`]) and plain
//! lines for pipes and CI ([`Plain`]). The state machine tells its face what changed; the screen
//! redraws itself from the model, the plain face prints a line for the changes worth a line.

use super::model::Model;
use crate::commands::list::list_text;
use crate::present;
use crate::runner::Verdict;

/// What just happened, for a face to show.
pub enum Change<'a> {
    /// The watcher started on the model's current exercise.
    Started,
    /// A check started, or reported progress.
    Checking,
    Verdict(&'a Verdict),
    /// The lab ended with this output.
    Lab(&'a str),
    Error(&'a str),
    /// A note for the learner (also kept in the model's `message`).
    Note(&'a str),
    /// The learner asked for the next hint.
    Hints,
    /// The learner asked for the list (plain mode prints it; the screen switches view).
    List,
    /// The learner moved to another exercise.
    MovedTo,
    /// Anything else that changes the screen (a key in the list, a resize).
    Other,
}

pub trait Face {
    /// Whether this face has a list view to move around in (the screen does).
    fn interactive(&self) -> bool;
    fn show(&mut self, model: &Model, change: Change);
}

/// Plain lines on stdout, one per event worth telling.
pub struct Plain;

impl Face for Plain {
    fn interactive(&self) -> bool {
        false
    }

    fn show(&mut self, model: &Model, change: Change) {
        match change {
            Change::Started => println!(
                "watching {} (send h, l, l NAME, n, r or q, one per line)",
                model.current_path_shown()
            ),
            Change::Verdict(verdict) => {
                println!("{}", present::headline(model.current_name(), verdict))
            }
            Change::Lab(output) => {
                println!("lab output:\n{}", present::indent(output, 2));
                if let Some(message) = &model.message {
                    println!("{message}");
                }
                println!("send n for the next exercise");
            }
            Change::Error(e) => println!("error: {e}"),
            Change::Note(message) => println!("{message}"),
            Change::Hints => print!("{}", model.hints()),
            Change::List => print!(
                "{}",
                list_text(&model.workbook, &model.set, &model.progress)
            ),
            Change::MovedTo => println!(
                "now on {} ({})",
                model.current_name(),
                model.current_path_shown()
            ),
            Change::Checking | Change::Other => {}
        }
    }
}
