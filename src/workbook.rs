//! A workbook on disk: where its files are, and what the learner's progress means for each
//! exercise (done, current, pending or locked behind an unfinished topic).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::info_file::{ExerciseInfo, InfoFile, Topic};
use crate::state::{PRIVATE_DIR, State, StateStore};

pub const INFO_FILE_NAME: &str = "info.toml";
pub const EXERCISES_DIR: &str = "exercises";
pub const SOLUTIONS_DIR: &str = "solutions";
/// Pristine copies of every exercise, never edited by the learner: `reset` restores from here.
pub const ORIGINALS_DIR: &str = "exercises/.originals";

#[derive(Debug)]
pub struct Workbook {
    pub root: PathBuf,
    pub info: InfoFile,
    pub store: StateStore,
}

impl Workbook {
    /// Finds the workbook containing the current directory (like cargo finds its manifest) and
    /// loads its info.toml.
    pub fn discover() -> Result<Workbook> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let root = cwd
            .ancestors()
            .find(|dir| dir.join(INFO_FILE_NAME).is_file() && dir.join(EXERCISES_DIR).is_dir())
            .with_context(|| {
                format!(
                    "{} is not inside an sdlings workbook (no {INFO_FILE_NAME} with an {EXERCISES_DIR}/ directory beside it here or above).\n\
                     Run sdlings from the root of the workbook you cloned.",
                    cwd.display()
                )
            })?;
        Self::open(root)
    }

    pub fn open(root: &Path) -> Result<Workbook> {
        let info_path = root.join(INFO_FILE_NAME);
        let text = fs::read_to_string(&info_path)
            .with_context(|| format!("cannot read {}", info_path.display()))?;
        let info = InfoFile::parse(&text, &info_path.display().to_string())?;
        Ok(Workbook {
            root: root.to_path_buf(),
            info,
            store: StateStore::new(root),
        })
    }

    pub fn exercise_path(&self, ex: &ExerciseInfo) -> PathBuf {
        self.root.join(EXERCISES_DIR).join(&ex.path)
    }

    pub fn solution_path(&self, ex: &ExerciseInfo) -> PathBuf {
        self.root.join(SOLUTIONS_DIR).join(&ex.path)
    }

    pub fn original_path(&self, ex: &ExerciseInfo) -> PathBuf {
        self.root.join(ORIGINALS_DIR).join(&ex.path)
    }

    pub fn topic_readme(&self, topic: &Topic) -> PathBuf {
        self.root
            .join(EXERCISES_DIR)
            .join(&topic.dir)
            .join("README.md")
    }

    /// The path as the learner would type it, relative to the workbook root.
    pub fn display_path(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Where sdlings builds exercises. Separate from `target/` so that rust-analyzer or a
    /// `cargo build` in the learner's editor never holds the lock the watcher needs.
    pub fn build_dir(&self) -> PathBuf {
        match std::env::var_os("SDLINGS_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => self.root.join("target").join("sdlings"),
        }
    }

    pub fn private_dir(&self) -> PathBuf {
        self.root.join(PRIVATE_DIR)
    }

    /// Looks an exercise up by name, with a helpful error listing near names.
    pub fn find(&self, name: &str) -> Result<usize> {
        if let Some(i) = self.info.exercise_index(name) {
            return Ok(i);
        }
        let near: Vec<&str> = self
            .info
            .exercises
            .iter()
            .map(|e| e.name.as_str())
            .filter(|n| n.contains(name) || name.contains(n))
            .collect();
        if near.is_empty() {
            bail!("there is no exercise named `{name}`; `sdlings list` shows them all")
        } else {
            bail!(
                "there is no exercise named `{name}`; did you mean {}?",
                near.iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Done,
    Current,
    Pending,
    Locked,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Current => "current",
            Status::Pending => "pending",
            Status::Locked => "locked",
        }
    }
}

/// What the state means for the curriculum: which topics are open, which exercise is current.
#[derive(Debug, Clone)]
pub struct Progress {
    pub done: Vec<bool>,
    /// The first topic that is still locked (topics before it are open), or `topics.len()`.
    pub first_locked_topic: usize,
    pub current: Option<usize>,
}

impl Progress {
    pub fn new(info: &InfoFile, state: &State) -> Progress {
        let done: Vec<bool> = info
            .exercises
            .iter()
            .map(|e| state.is_done(&e.name))
            .collect();
        // A topic opens once every exercise of every earlier topic is done.
        let mut first_locked_topic = info.topics.len();
        for topic in 0..info.topics.len() {
            if !info.topic_exercises(topic).all(|i| done[i]) {
                first_locked_topic = topic + 1;
                break;
            }
        }
        let unlocked = |i: usize| info.exercises[i].topic < first_locked_topic;
        let current = state
            .current
            .as_deref()
            .and_then(|name| info.exercise_index(name))
            .filter(|&i| unlocked(i))
            .or_else(|| (0..done.len()).find(|&i| !done[i] && unlocked(i)));
        Progress {
            done,
            first_locked_topic,
            current,
        }
    }

    pub fn is_unlocked(&self, info: &InfoFile, index: usize) -> bool {
        info.exercises[index].topic < self.first_locked_topic
    }

    pub fn status(&self, info: &InfoFile, index: usize) -> Status {
        if self.done[index] {
            Status::Done
        } else if Some(index) == self.current {
            Status::Current
        } else if self.is_unlocked(info, index) {
            Status::Pending
        } else {
            Status::Locked
        }
    }

    pub fn done_count(&self) -> usize {
        self.done.iter().filter(|d| **d).count()
    }

    pub fn all_done(&self) -> bool {
        self.done.iter().all(|d| *d)
    }

    /// The exercise to move to after `from`: the next unfinished, unlocked one in curriculum
    /// order, wrapping around to earlier ones the learner skipped.
    pub fn next_after(&self, info: &InfoFile, from: usize) -> Option<usize> {
        let n = self.done.len();
        (1..=n)
            .map(|step| (from + step) % n)
            .find(|&i| !self.done[i] && self.is_unlocked(info, i))
    }

    pub fn topic_done(&self, info: &InfoFile, topic: usize) -> bool {
        info.topic_exercises(topic).all(|i| self.done[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> InfoFile {
        let text = r#"
format_version = 1
welcome_message = ""
final_message = ""
[[topics]]
name = "a"
title = "A"
dir = "a"
[[topics]]
name = "b"
title = "B"
dir = "b"
[[exercises]]
name = "a1"
topic = "a"
path = "a/a1.rs"
hints = []
[[exercises]]
name = "a2"
topic = "a"
path = "a/a2.rs"
hints = []
[[exercises]]
name = "b1"
topic = "b"
path = "b/b1.rs"
hints = []
"#;
        InfoFile::parse(text, "info.toml").unwrap()
    }

    #[test]
    fn later_topics_stay_locked_until_the_earlier_ones_are_done() {
        let info = info();
        let mut state = State::default();
        let p = Progress::new(&info, &state);
        assert_eq!(p.current, Some(0));
        assert_eq!(p.status(&info, 1), Status::Pending);
        assert_eq!(p.status(&info, 2), Status::Locked);

        state.mark_done("a1");
        state.mark_done("a2");
        let p = Progress::new(&info, &state);
        assert_eq!(p.status(&info, 2), Status::Current);
        assert!(p.topic_done(&info, 0));
    }

    #[test]
    fn a_locked_current_exercise_falls_back_to_the_first_open_one() {
        let info = info();
        let state = State {
            current: Some("b1".into()),
            ..State::default()
        };
        assert_eq!(Progress::new(&info, &state).current, Some(0));
    }

    #[test]
    fn next_wraps_around_to_skipped_exercises() {
        let info = info();
        let mut state = State::default();
        state.mark_done("a2");
        let p = Progress::new(&info, &state);
        assert_eq!(p.next_after(&info, 1), Some(0));
        state.mark_done("a1");
        let p = Progress::new(&info, &state);
        assert_eq!(p.next_after(&info, 0), Some(2));
    }
}
