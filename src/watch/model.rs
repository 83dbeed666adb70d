//! What the watcher knows and shows: the workbook, the learner's progress, the exercise on screen
//! and what happened to it. The state machine (`app`) changes it; the faces only read it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::commands::hint::hints_text;
use crate::runner::Verdict;
use crate::set::ExerciseSet;
use crate::state::State;
use crate::workbook::{Progress, Workbook};

pub enum View {
    Exercise,
    List { cursor: usize },
}

pub enum Phase {
    Checking { line: String },
    Judged(Verdict),
    Error(String),
}

pub enum Lab {
    None,
    Running,
    Output(String),
}

pub struct Model {
    pub workbook: Arc<Workbook>,
    pub set: ExerciseSet,
    pub state: State,
    pub progress: Progress,
    /// The exercise on screen (an index into info.toml's exercises).
    pub current: usize,
    pub view: View,
    pub phase: Phase,
    pub lab: Lab,
    pub show_hints: bool,
    /// A note for the learner: "topic complete", "finish this one first", ...
    pub message: Option<String>,
}

impl Model {
    pub fn new(workbook: Arc<Workbook>, set: ExerciseSet, state: State) -> Model {
        let progress = Progress::new(&workbook.info, &set, &state);
        let current = progress
            .current
            .or(set.exercises.first().copied())
            .unwrap_or(0);
        Model {
            workbook,
            set,
            state,
            progress,
            current,
            view: View::Exercise,
            phase: Phase::Checking {
                line: String::new(),
            },
            lab: Lab::None,
            show_hints: false,
            message: None,
        }
    }

    pub fn current_path(&self) -> PathBuf {
        self.workbook
            .exercise_path(&self.workbook.info.exercises[self.current])
    }

    /// The directory of the current exercise's file.
    pub fn current_dir(&self) -> PathBuf {
        let path = self.current_path();
        path.parent().map_or(path.clone(), Path::to_path_buf)
    }

    pub fn current_path_shown(&self) -> String {
        self.workbook.display_path(&self.current_path())
    }

    pub fn current_name(&self) -> &str {
        &self.workbook.info.exercises[self.current].name
    }

    /// The current exercise passes now, or passed before: `n` may move on.
    pub fn can_go_next(&self) -> bool {
        matches!(&self.phase, Phase::Judged(v) if v.passed()) || self.progress.done[self.current]
    }

    pub fn hints(&self) -> String {
        let exercise = &self.workbook.info.exercises[self.current];
        hints_text(&exercise.hints, self.state.hints_revealed(&exercise.name))
    }
}
