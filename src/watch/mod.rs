//! `sdlings watch`: re-check the current exercise on every save.
//!
//! - [`events`]: file changes, keys and worker results, all on one channel;
//! - [`app`]: the state machine that reacts to them, one at a time;
//! - [`model`]: what the watcher knows and shows;
//! - [`face`] and [`screen`]: plain lines for pipes and CI, a full screen on a terminal;
//! - [`worker`]: the check and the lab, on a thread of their own.

mod app;
mod events;
mod face;
mod messages;
mod model;
mod screen;
mod worker;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::mpsc;

use anyhow::Result;

use crate::cli::WatchArgs;
use crate::commands::Outcome;
use crate::state::WatcherLock;
use crate::term;
use crate::workbook::{EXERCISES_DIR, Workbook};
use app::App;
use events::FileWatch;
use face::{Face, Plain};
use model::Model;

pub fn run(workbook: Workbook, args: &WatchArgs) -> Result<Outcome> {
    let _lock = WatcherLock::acquire(&workbook.root)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let (tx, rx) = mpsc::channel();
    let exercises_dir = workbook.root.join(EXERCISES_DIR);
    let eventless = if args.poll {
        None
    } else {
        events::eventless_file_system(&exercises_dir)
    };
    if let Some(fs_type) = &eventless {
        eprintln!(
            "The workbook is on a {fs_type} file system, where saves may send no file events: checking for changes by polling instead."
        );
    }
    let (state, set, _) = workbook.progress()?;
    let model = Model::new(Arc::new(workbook), set, state);
    // Set up before the terminal goes raw, so a failure is reported on a normal terminal.
    let files = if args.poll || eventless.is_some() {
        FileWatch::poll(&model.current_dir(), tx.clone())?
    } else {
        FileWatch::events(&exercises_dir, tx.clone())?
    };
    let (face, _raw): (Box<dyn Face>, _) = if interactive {
        events::read_keys(tx.clone());
        (Box::new(screen::Screen), Some(screen::RawMode::enter()?))
    } else {
        events::read_lines(tx.clone());
        (Box::new(Plain), None)
    };
    let mut app = App::new(model, face, files, term::color_enabled(), (tx, rx));
    let result = app.run();
    // A cancelled worker would stop its child on its next poll, but we are about to exit.
    crate::runner::process::stop_all_children();
    result.map(|()| Outcome::Success)
}
