//! A workbook on disk: where its files are, and what the learner's progress means for each
//! exercise (done, current, pending or locked behind an unfinished topic).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::info_file::{ExerciseInfo, InfoFile, Topic};
use crate::set::{ExerciseSet, Unlock};
use crate::state::{PRIVATE_DIR, State, StateStore};

pub const INFO_FILE_NAME: &str = "info.toml";
pub const EXERCISES_DIR: &str = "exercises";
pub const SOLUTIONS_DIR: &str = "solutions";

#[derive(Debug)]
pub struct Workbook {
    pub root: PathBuf,
    pub info: InfoFile,
    pub store: StateStore,
    /// `--set`: use this set instead of the active one, for this command only.
    pub set_override: Option<String>,
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
            set_override: None,
        })
    }

    /// The exercises in play: `--set`, else the active set, else the whole workbook.
    pub fn selection(&self, state: &State) -> Result<ExerciseSet> {
        if let Some(given) = self.set_given() {
            return given;
        }
        match state.active_set.as_deref() {
            Some(spec) => ExerciseSet::load(&self.root, spec, &self.info).with_context(|| {
                format!("the active set `{spec}` cannot be used; `sdlings set clear` goes back to the whole workbook")
            }),
            None => Ok(ExerciseSet::whole_workbook(&self.info)),
        }
    }

    /// The set given with `--set` for this command only, if one was.
    pub fn set_given(&self) -> Option<Result<ExerciseSet>> {
        let spec = self.set_override.as_deref()?;
        Some(
            ExerciseSet::load(&self.root, spec, &self.info)
                .with_context(|| format!("cannot use the set `{spec}`")),
        )
    }

    /// The saved state, the exercises in play and what the state means for them.
    pub fn progress(&self) -> Result<(State, ExerciseSet, Progress)> {
        let state = self.store.load()?;
        let set = self.selection(&state)?;
        let progress = Progress::new(&self.info, &set, &state);
        Ok((state, set, progress))
    }

    pub fn exercise_path(&self, ex: &ExerciseInfo) -> PathBuf {
        self.root.join(EXERCISES_DIR).join(&ex.path)
    }

    pub fn solution_path(&self, ex: &ExerciseInfo) -> PathBuf {
        self.root.join(SOLUTIONS_DIR).join(&ex.path)
    }

    /// The package groups of the workbook's topics: `None` (the main packages) first, then each
    /// group named in info.toml, in topic order.
    pub fn package_groups(&self) -> Vec<Option<&str>> {
        let mut groups = vec![None];
        for topic in &self.info.topics {
            let group = topic.package.as_deref();
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        groups
    }

    /// The package group of an exercise's topic.
    pub fn package_group(&self, ex: &ExerciseInfo) -> Option<&str> {
        self.info.topics[ex.topic].package.as_deref()
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

/// An exercise file's test module: from the `#[cfg(test)]` line to the end of the file. It must
/// be the same in the exercise and its solution; a learner who edits it is flagged.
pub fn test_module(source: &str) -> Option<&str> {
    let start = source.find("\n#[cfg(test)]")?;
    Some(&source[start + 1..])
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

/// What the state means for the exercises in play (the active set, or the whole workbook):
/// which are open, which one is current.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Indexed by exercise (the whole workbook): recorded as done.
    pub done: Vec<bool>,
    /// Indexed by exercise: open to the learner (always false outside the set).
    unlocked: Vec<bool>,
    /// The exercises in play, in the order the learner takes them.
    pub order: Vec<usize>,
    pub current: Option<usize>,
}

impl Progress {
    pub fn new(info: &InfoFile, set: &ExerciseSet, state: &State) -> Progress {
        let done: Vec<bool> = info
            .exercises
            .iter()
            .map(|e| state.is_done(&e.name))
            .collect();
        let mut unlocked = vec![false; done.len()];
        match set.unlock {
            Unlock::Open => set.exercises.iter().for_each(|&i| unlocked[i] = true),
            Unlock::Sequential => {
                // Topics open in the order the set meets them; one opens once every exercise
                // of the set's earlier topics is done.
                let mut open = true;
                let mut topic = None;
                for &i in &set.exercises {
                    let t = info.exercises[i].topic;
                    if topic != Some(t) {
                        topic = Some(t);
                        if open {
                            open = set
                                .exercises
                                .iter()
                                .take_while(|&&j| j != i)
                                .all(|&j| done[j]);
                        }
                    }
                    unlocked[i] = open;
                }
            }
        }
        let current = state
            .current
            .as_deref()
            .and_then(|name| info.exercise_index(name))
            .filter(|&i| unlocked[i])
            .or_else(|| {
                set.exercises
                    .iter()
                    .copied()
                    .find(|&i| !done[i] && unlocked[i])
            });
        Progress {
            done,
            unlocked,
            order: set.exercises.clone(),
            current,
        }
    }

    pub fn is_unlocked(&self, index: usize) -> bool {
        self.unlocked[index]
    }

    pub fn in_play(&self, index: usize) -> bool {
        self.order.contains(&index)
    }

    pub fn status(&self, index: usize) -> Status {
        if self.done[index] {
            Status::Done
        } else if Some(index) == self.current {
            Status::Current
        } else if self.unlocked[index] {
            Status::Pending
        } else {
            Status::Locked
        }
    }

    /// Done exercises among those in play.
    pub fn done_count(&self) -> usize {
        self.order.iter().filter(|&&i| self.done[i]).count()
    }

    pub fn total(&self) -> usize {
        self.order.len()
    }

    pub fn all_done(&self) -> bool {
        self.order.iter().all(|&i| self.done[i])
    }

    /// The exercise to move to after `from`: the next unfinished, unlocked one in play, wrapping
    /// around to earlier ones the learner skipped.
    pub fn next_after(&self, from: usize) -> Option<usize> {
        let position = self.order.iter().position(|&i| i == from).unwrap_or(0);
        let n = self.order.len();
        (1..=n)
            .map(|step| self.order[(position + step) % n])
            .find(|&i| !self.done[i] && self.unlocked[i])
    }

    /// Whether every exercise in play of `topic` is done.
    pub fn topic_done(&self, info: &InfoFile, topic: usize) -> bool {
        self.order
            .iter()
            .filter(|&&i| info.exercises[i].topic == topic)
            .all(|&i| self.done[i])
    }

    /// The topic that comes after `topic` in play, if any.
    pub fn next_topic(&self, info: &InfoFile, topic: usize) -> Option<usize> {
        let last_of_topic = self
            .order
            .iter()
            .rposition(|&i| info.exercises[i].topic == topic)?;
        self.order[last_of_topic + 1..]
            .iter()
            .map(|&i| info.exercises[i].topic)
            .find(|&t| t != topic)
    }

    /// The topics in play, in order, each with its exercises in play.
    pub fn topics(&self, info: &InfoFile) -> Vec<(usize, Vec<usize>)> {
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for &i in &self.order {
            let t = info.exercises[i].topic;
            match groups.iter_mut().find(|(topic, _)| *topic == t) {
                Some((_, members)) => members.push(i),
                None => groups.push((t, vec![i])),
            }
        }
        groups
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
    fn test_module_starts_at_cfg_test() {
        let src = "fn a() {}\n\n#[cfg(test)]\nmod tests {}\n";
        assert_eq!(test_module(src), Some("#[cfg(test)]\nmod tests {}\n"));
        assert_eq!(test_module("fn a() {}\n"), None);
    }

    #[test]
    fn later_topics_stay_locked_until_the_earlier_ones_are_done() {
        let info = info();
        let mut state = State::default();
        let p = Progress::new(&info, &ExerciseSet::whole_workbook(&info), &state);
        assert_eq!(p.current, Some(0));
        assert_eq!(p.status(1), Status::Pending);
        assert_eq!(p.status(2), Status::Locked);

        state.mark_done("a1");
        state.mark_done("a2");
        let p = Progress::new(&info, &ExerciseSet::whole_workbook(&info), &state);
        assert_eq!(p.status(2), Status::Current);
        assert!(p.topic_done(&info, 0));
        assert_eq!(p.next_topic(&info, 0), Some(1));
    }

    #[test]
    fn a_locked_current_exercise_falls_back_to_the_first_open_one() {
        let info = info();
        let state = State {
            current: Some("b1".into()),
            ..State::default()
        };
        assert_eq!(
            Progress::new(&info, &ExerciseSet::whole_workbook(&info), &state).current,
            Some(0)
        );
    }

    #[test]
    fn next_wraps_around_to_skipped_exercises() {
        let info = info();
        let mut state = State::default();
        state.mark_done("a2");
        let p = Progress::new(&info, &ExerciseSet::whole_workbook(&info), &state);
        assert_eq!(p.next_after(1), Some(0));
        state.mark_done("a1");
        let p = Progress::new(&info, &ExerciseSet::whole_workbook(&info), &state);
        assert_eq!(p.next_after(0), Some(2));
    }
}
