//! The watcher's notes to the learner, in one place.

use crate::info_file::InfoFile;
use crate::workbook::EXERCISES_DIR;

pub const FINISH_FIRST: &str = "Finish this exercise first: `n` moves on once its tests pass.";

/// After the last exercise of `topic` passed.
pub fn topic_complete(info: &InfoFile, topic: usize, next: Option<usize>) -> String {
    let done = &info.topics[topic];
    match next.map(|t| &info.topics[t]) {
        Some(next) => format!(
            "Topic {} · {} is complete. Next topic: {} · {} — start with its README, {EXERCISES_DIR}/{}/README.md. Press n to begin.",
            done.dir, done.title, next.dir, next.title, next.dir
        ),
        None => format!("Topic {} is complete.", done.title),
    }
}

pub fn not_in_set(name: &str, set: &str) -> String {
    format!(
        "`{name}` is not in the set `{set}`; `sdlings set clear` goes back to the whole workbook"
    )
}

pub fn locked(name: &str) -> String {
    format!("`{name}` is locked: finish every exercise of the earlier topics first")
}

pub fn no_such_exercise(name: &str) -> String {
    format!("there is no exercise named `{name}`")
}
