//! The watcher's state machine: it owns the model and reacts to [`Event`]s one at a time.
//!
//! Editors write a file in several steps (truncate then write, write a temp file then rename,
//! touch a backup), so every event about the exercise makes the work in progress stale at once:
//! it is cancelled and its generation retired, once per save. A new check starts as soon as an
//! event marks the save as complete (the file closed after writing, or renamed into place), and
//! otherwise when the burst has been quiet for the file watch's settle time. The check reads the
//! file as it is *now*, so the verdict always belongs to the latest save.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::events::{Event, FileWatch, Input};
use super::face::{Change, Face};
use super::messages;
use super::model::{Lab, Model, Phase, View};
use super::worker::{self, Job, WorkResult};
use crate::commands::hint;
use crate::workbook::Progress;

pub struct App {
    pub model: Model,
    face: Box<dyn Face>,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    color: bool,
    job: Option<Job>,
    /// Results and progress of older generations are stale and ignored.
    generation: u64,
    /// Work is running or about to (a check, then possibly the lab).
    busy: bool,
    /// When the last file event of a save still in progress arrived.
    save_pending_since: Option<Instant>,
    input_closed: bool,
    files: FileWatch,
}

impl App {
    pub fn new(
        model: Model,
        face: Box<dyn Face>,
        files: FileWatch,
        color: bool,
        (tx, rx): (Sender<Event>, Receiver<Event>),
    ) -> App {
        App {
            model,
            face,
            tx,
            rx,
            color,
            job: None,
            generation: 0,
            busy: false,
            save_pending_since: None,
            input_closed: false,
            files,
        }
    }

    fn show(&mut self, change: Change) {
        self.face.show(&self.model, change);
    }

    pub fn run(&mut self) -> Result<()> {
        self.show(Change::Started);
        if self.model.progress.all_done() {
            self.model.message = Some(self.model.workbook.info.final_message.clone());
        }
        self.start_check();
        let settle = self.files.settle_time();
        loop {
            let wait = match self.save_pending_since {
                Some(since) => settle.saturating_sub(since.elapsed()),
                None => Duration::from_secs(3600),
            };
            match self.rx.recv_timeout(wait) {
                Ok(Event::FilesChanged { paths, settled }) => {
                    self.on_files_changed(&paths, settled)
                }
                Ok(Event::Input(input)) => {
                    if !self.on_input(input)? {
                        break;
                    }
                }
                Ok(Event::InputClosed) => self.input_closed = true,
                Ok(Event::Progress { generation, line }) if generation == self.generation => {
                    if let Phase::Checking { line: shown } = &mut self.model.phase {
                        *shown = line;
                        self.show(Change::Checking);
                    }
                }
                Ok(Event::Finished { generation, result }) if generation == self.generation => {
                    self.on_result(result)?;
                }
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self
                .save_pending_since
                .is_some_and(|since| since.elapsed() >= settle)
            {
                self.save_pending_since = None;
                self.start_check();
            }
            if self.input_closed && !self.busy && self.save_pending_since.is_none() {
                break;
            }
        }
        self.retire_work();
        Ok(())
    }

    /// Notify reports paths under the directory we watch, which is where `current_path` points
    /// too; a workbook reached through a symlink may still report the real path, so fall back to
    /// comparing canonical paths (only when both exist: a removed file is not a save to check).
    fn is_current_file(&self, path: &Path) -> bool {
        let target = self.model.current_path();
        if path == target {
            return true;
        }
        match (path.canonicalize(), target.canonicalize()) {
            (Ok(path), Ok(target)) => path == target,
            _ => false,
        }
    }

    fn on_files_changed(&mut self, paths: &[std::path::PathBuf], settled: bool) {
        if !paths.iter().any(|p| self.is_current_file(p)) {
            return;
        }
        if settled {
            // The save is complete: check now rather than wait on every save. Should more
            // events follow after all, they cancel this check like any other.
            self.save_pending_since = None;
            self.start_check();
        } else {
            // The running check is about an older version of the file: stop it now, and wait
            // for the save to settle.
            self.retire_work();
            self.busy = true;
            self.save_pending_since = Some(Instant::now());
        }
    }

    /// Cancels the work in progress; whatever it still sends belongs to an older file.
    fn retire_work(&mut self) {
        if let Some(job) = self.job.take() {
            job.cancel();
        }
        self.generation += 1;
    }

    fn start_check(&mut self) {
        self.retire_work();
        self.busy = true;
        self.model.phase = Phase::Checking {
            line: String::new(),
        };
        self.model.lab = Lab::None;
        self.show(Change::Checking);
        self.job = Some(worker::start(
            Arc::clone(&self.model.workbook),
            self.model.current,
            self.generation,
            self.color,
            self.tx.clone(),
        ));
    }

    fn on_result(&mut self, result: WorkResult) -> Result<()> {
        // The model changes first; then the face shows the change once, from the model.
        match result {
            WorkResult::Verdict(verdict) => {
                let passed = verdict.passed();
                self.model.phase = Phase::Judged(verdict);
                if passed {
                    self.record_pass()?;
                    self.model.show_hints = false;
                    self.model.lab = Lab::Running;
                } else {
                    self.busy = false;
                }
                if let Phase::Judged(verdict) = &self.model.phase {
                    self.face.show(&self.model, Change::Verdict(verdict));
                }
            }
            WorkResult::Lab { output } => {
                self.busy = false;
                self.model.lab = Lab::Output(output);
                if let Lab::Output(output) = &self.model.lab {
                    self.face.show(&self.model, Change::Lab(output));
                }
            }
            WorkResult::Error(e) => {
                self.busy = false;
                self.model.phase = Phase::Error(e);
                if let Phase::Error(e) = &self.model.phase {
                    self.face.show(&self.model, Change::Error(e));
                }
            }
        }
        Ok(())
    }

    fn record_pass(&mut self) -> Result<()> {
        let model = &mut self.model;
        let index = model.current;
        let name = model.current_name().to_string();
        let was_done = model.progress.done[index];
        let (state, _) = model.workbook.store.update(|s| s.mark_done(&name))?;
        model.state = state;
        model.progress = Progress::new(&model.workbook.info, &model.set, &model.state);
        let info = &model.workbook.info;
        let topic = info.exercises[index].topic;
        if model.progress.all_done() {
            model.message = Some(info.final_message.clone());
        } else if !was_done && model.progress.topic_done(info, topic) {
            let next = model.progress.next_topic(info, topic);
            model.message = Some(messages::topic_complete(info, topic, next));
        }
        Ok(())
    }

    /// Handles one key; returns `false` to quit.
    fn on_input(&mut self, input: Input) -> Result<bool> {
        if let View::List { cursor } = self.model.view {
            self.on_list_input(input, cursor);
            return Ok(true);
        }
        match input {
            Input::Quit => return Ok(false),
            Input::Hint => {
                self.model.state = hint::reveal_next(&self.model.workbook, self.model.current)?;
                self.model.show_hints = true;
                self.show(Change::Hints);
            }
            Input::List if self.face.interactive() => {
                let progress = &self.model.progress;
                let cursor = progress
                    .order
                    .iter()
                    .position(|&i| i == self.model.current)
                    .unwrap_or(0);
                self.model.view = View::List { cursor };
            }
            Input::List => self.show(Change::List),
            Input::Jump(name) => match self.model.workbook.info.exercise_index(&name) {
                Some(i) => self.jump_to(i),
                None => self.note(messages::no_such_exercise(&name)),
            },
            Input::Next => self.next(),
            Input::Recheck => self.start_check(),
            Input::Up | Input::Down | Input::Enter | Input::Back | Input::Redraw => {}
        }
        self.show(Change::Other);
        Ok(true)
    }

    fn on_list_input(&mut self, input: Input, cursor: usize) {
        let count = self.model.progress.order.len();
        match input {
            Input::Up => {
                self.model.view = View::List {
                    cursor: cursor.saturating_sub(1),
                }
            }
            Input::Down => {
                self.model.view = View::List {
                    cursor: (cursor + 1).min(count - 1),
                }
            }
            Input::Enter => {
                self.model.view = View::Exercise;
                self.jump_to(self.model.progress.order[cursor]);
            }
            Input::Back | Input::List | Input::Quit => self.model.view = View::Exercise,
            _ => {}
        }
        self.show(Change::Other);
    }

    fn jump_to(&mut self, index: usize) {
        let name = self.model.workbook.info.exercises[index].name.clone();
        if !self.model.progress.in_play(index) {
            self.note(messages::not_in_set(&name, &self.model.set.name));
        } else if !self.model.progress.is_unlocked(index) {
            self.note(messages::locked(&name));
        } else {
            self.switch_to(index);
        }
    }

    fn next(&mut self) {
        if !self.model.can_go_next() {
            self.note(messages::FINISH_FIRST.into());
            return;
        }
        match self.model.progress.next_after(self.model.current) {
            Some(next) => self.switch_to(next),
            None => self.note(self.model.workbook.info.final_message.clone()),
        }
    }

    fn switch_to(&mut self, index: usize) {
        let model = &mut self.model;
        model.current = index;
        model.show_hints = false;
        model.message = None;
        if let Err(e) = self.files.follow(&model.current_dir()) {
            model.message = Some(format!("{e:#}"));
        }
        let name = model.current_name().to_string();
        match model.workbook.store.update(|s| s.current = Some(name)) {
            Ok((state, _)) => model.state = state,
            Err(e) => model.message = Some(format!("{e:#}")),
        }
        self.show(Change::MovedTo);
        self.start_check();
    }

    fn note(&mut self, message: String) {
        self.show(Change::Note(&message));
        self.model.message = Some(message);
    }
}
