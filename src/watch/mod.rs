//! `sdlings watch`: re-check the current exercise on every save.
//!
//! The main loop owns all state and reacts to [`Event`]s one at a time. Editors write a file in
//! several steps (truncate then write, write a temp file then rename, touch a backup), so every
//! event about the exercise cancels any running check at once. A new check starts as soon as an
//! event marks the save as complete (the file closed after writing, or renamed into place), and
//! otherwise when the burst has been quiet for [`DEBOUNCE`]. The check reads the file as it is
//! *now*, so the verdict always belongs to the latest save.

mod events;
mod screen;
mod worker;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::Result;
use colored::Colorize;

use crate::cli::WatchArgs;
use crate::commands::Outcome;
use crate::commands::hint::hints_text;
use crate::commands::list::{list_text, status_mark};
use crate::present;
use crate::runner::Verdict;
use crate::set::ExerciseSet;
use crate::state::{State, WatcherLock};
use crate::term::{self, progress_bar};
use crate::workbook::{EXERCISES_DIR, Progress, Workbook};
use events::{Event, FileWatch, Input};
use worker::{Job, WorkResult};

/// Quiet time after the last file event of a save that did not say it was complete (the poller's
/// events; a write whose close is not reported) before checking. An editor's steps come within a
/// millisecond or two; a slower save's later events cancel a check started too early, so the
/// verdict is still that of the final file.
const DEBOUNCE: Duration = Duration::from_millis(20);

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
    let mut app = App::new(Arc::new(workbook), set, state, interactive, tx.clone(), rx);
    // Set up before the terminal goes raw, so a failure is reported on a normal terminal.
    let files = if args.poll || eventless.is_some() {
        FileWatch::poll(&app.current_dir(), tx.clone())?
    } else {
        FileWatch::events(&exercises_dir, tx.clone())?
    };
    app.files = Some(files);
    let _raw = if interactive {
        events::read_keys(tx);
        Some(screen::RawMode::enter()?)
    } else {
        events::read_lines(tx);
        None
    };
    app.run()?;
    Ok(Outcome::Success)
}

enum View {
    Exercise,
    List { cursor: usize },
}

enum Phase {
    Checking { line: String },
    Judged(Verdict),
    Error(String),
}

enum Lab {
    None,
    Running,
    Output(String),
}

struct App {
    workbook: Arc<Workbook>,
    set: ExerciseSet,
    state: State,
    progress: Progress,
    interactive: bool,
    color: bool,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    current: usize,
    view: View,
    phase: Phase,
    lab: Lab,
    show_hints: bool,
    /// A note for the learner: "topic complete", "finish this one first", ...
    message: Option<String>,
    job: Option<Job>,
    generation: u64,
    /// Work is running or about to (a check, then possibly the lab).
    busy: bool,
    /// When the last file event of a save in progress arrived.
    save_pending_since: Option<Instant>,
    input_closed: bool,
    /// Keeps the file watch alive; `None` only while starting.
    files: Option<FileWatch>,
}

impl App {
    fn new(
        workbook: Arc<Workbook>,
        set: ExerciseSet,
        state: State,
        interactive: bool,
        tx: Sender<Event>,
        rx: Receiver<Event>,
    ) -> App {
        let progress = Progress::new(&workbook.info, &set, &state);
        let current = progress
            .current
            .or(set.exercises.first().copied())
            .unwrap_or(0);
        App {
            workbook,
            set,
            state,
            progress,
            interactive,
            color: term::color_enabled(),
            tx,
            rx,
            current,
            view: View::Exercise,
            phase: Phase::Checking {
                line: String::new(),
            },
            lab: Lab::None,
            show_hints: false,
            message: None,
            job: None,
            generation: 0,
            busy: false,
            save_pending_since: None,
            input_closed: false,
            files: None,
        }
    }

    fn run(&mut self) -> Result<()> {
        if !self.interactive {
            println!(
                "watching {} (send h, l, l NAME, n, r or q, one per line)",
                self.current_path_shown()
            );
        }
        if self.progress.all_done() {
            self.message = Some(self.workbook.info.final_message.clone());
        }
        self.start_check();
        loop {
            let wait = match self.save_pending_since {
                Some(since) => DEBOUNCE.saturating_sub(since.elapsed()),
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
                    if let Phase::Checking { line: shown } = &mut self.phase {
                        *shown = line;
                        self.redraw();
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
                .is_some_and(|since| since.elapsed() >= DEBOUNCE)
            {
                self.save_pending_since = None;
                self.start_check();
            }
            if self.input_closed && !self.busy && self.save_pending_since.is_none() {
                break;
            }
        }
        if let Some(job) = &self.job {
            job.cancel();
        }
        // The worker thread would stop its child on its next poll, but we are about to exit.
        crate::runner::process::stop_all_children();
        Ok(())
    }

    fn current_path(&self) -> PathBuf {
        self.workbook
            .exercise_path(&self.workbook.info.exercises[self.current])
    }

    /// The directory of the current exercise's file.
    fn current_dir(&self) -> PathBuf {
        let path = self.current_path();
        path.parent().map_or(path.clone(), Path::to_path_buf)
    }

    fn current_path_shown(&self) -> String {
        self.workbook.display_path(&self.current_path())
    }

    fn current_name(&self) -> &str {
        &self.workbook.info.exercises[self.current].name
    }

    /// Notify reports paths under the directory we watch, which is where `current_path` points
    /// too; a workbook reached through a symlink may still report the real path, so fall back to
    /// comparing canonical paths (only when both exist: a removed file is not a save to check).
    fn is_current_file(&self, path: &Path) -> bool {
        let target = self.current_path();
        if path == target {
            return true;
        }
        match (path.canonicalize(), target.canonicalize()) {
            (Ok(path), Ok(target)) => path == target,
            _ => false,
        }
    }

    fn on_files_changed(&mut self, paths: &[PathBuf], settled: bool) {
        if paths.iter().any(|p| self.is_current_file(p)) {
            // The running check is about an older version of the file: stop it now.
            if let Some(job) = self.job.take() {
                job.cancel();
            }
            // A result the cancelled job still sends belongs to the old file: ignore it.
            self.generation += 1;
            self.busy = true;
            if settled {
                // The save is complete: check now rather than pay the debounce on every save.
                // Should more events follow after all, they cancel this check like any other.
                self.save_pending_since = None;
                self.start_check();
            } else {
                self.save_pending_since = Some(Instant::now());
            }
        }
    }

    fn start_check(&mut self) {
        if let Some(job) = self.job.take() {
            job.cancel();
        }
        self.generation += 1;
        self.busy = true;
        self.phase = Phase::Checking {
            line: String::new(),
        };
        self.lab = Lab::None;
        self.redraw();
        self.job = Some(worker::start(
            self.workbook.clone(),
            self.current,
            self.generation,
            self.color,
            self.tx.clone(),
        ));
    }

    fn on_result(&mut self, result: WorkResult) -> Result<()> {
        match result {
            WorkResult::Verdict { index, verdict } => {
                let passed = verdict.passed();
                if !self.interactive {
                    println!(
                        "{}",
                        present::headline(&self.workbook.info.exercises[index].name, &verdict)
                    );
                }
                self.phase = Phase::Judged(verdict);
                if passed {
                    self.record_pass(index)?;
                    self.show_hints = false;
                    self.lab = Lab::Running;
                } else {
                    self.busy = false;
                }
            }
            WorkResult::Lab { output } => {
                self.busy = false;
                if !self.interactive {
                    println!("lab output:\n{}", present::indent(&output, 2));
                    if let Some(message) = &self.message {
                        println!("{message}");
                    }
                    println!("send n for the next exercise");
                }
                self.lab = Lab::Output(output);
            }
            WorkResult::Error(e) => {
                self.busy = false;
                if !self.interactive {
                    println!("error: {e}");
                }
                self.phase = Phase::Error(e);
            }
        }
        self.redraw();
        Ok(())
    }

    fn record_pass(&mut self, index: usize) -> Result<()> {
        let name = self.workbook.info.exercises[index].name.clone();
        let was_done = self.progress.done[index];
        let (state, _) = self.workbook.store.update(|s| s.mark_done(&name))?;
        self.state = state;
        self.progress = Progress::new(&self.workbook.info, &self.set, &self.state);
        let info = &self.workbook.info;
        let topic = info.exercises[index].topic;
        if self.progress.all_done() {
            self.message = Some(info.final_message.clone());
        } else if !was_done && self.progress.topic_done(info, topic) {
            self.message = Some(
                match self
                    .progress
                    .next_topic(info, topic)
                    .map(|t| &info.topics[t])
                {
                    Some(next) => format!(
                        "Topic {} · {} is complete. Next topic: {} · {} — start with its README, {}/{}/README.md. Press n to begin.",
                        info.topics[topic].dir,
                        info.topics[topic].title,
                        next.dir,
                        next.title,
                        EXERCISES_DIR,
                        next.dir
                    ),
                    None => format!("Topic {} is complete.", info.topics[topic].title),
                },
            );
        }
        Ok(())
    }

    /// Handles one key; returns `false` to quit.
    fn on_input(&mut self, input: Input) -> Result<bool> {
        if let View::List { cursor } = self.view {
            return Ok(self.on_list_input(input, cursor));
        }
        match input {
            Input::Quit => return Ok(false),
            Input::Hint => self.reveal_hint()?,
            Input::List => {
                if self.interactive {
                    let cursor = self
                        .progress
                        .order
                        .iter()
                        .position(|&i| i == self.current)
                        .unwrap_or(0);
                    self.view = View::List { cursor };
                } else {
                    print!("{}", list_text(&self.workbook, &self.set, &self.progress));
                }
            }
            Input::Jump(name) => match self.workbook.info.exercise_index(&name) {
                Some(i) => self.jump_to(i),
                None => self.note(format!("there is no exercise named `{name}`")),
            },
            Input::Next => self.next(),
            Input::Recheck => self.start_check(),
            Input::Up | Input::Down | Input::Enter | Input::Back | Input::Redraw => {}
        }
        self.redraw();
        Ok(true)
    }

    fn on_list_input(&mut self, input: Input, cursor: usize) -> bool {
        let count = self.progress.order.len();
        match input {
            Input::Up => {
                self.view = View::List {
                    cursor: cursor.saturating_sub(1),
                }
            }
            Input::Down => {
                self.view = View::List {
                    cursor: (cursor + 1).min(count - 1),
                }
            }
            Input::Enter => {
                self.view = View::Exercise;
                self.jump_to(self.progress.order[cursor]);
            }
            Input::Back | Input::List | Input::Quit => self.view = View::Exercise,
            _ => {}
        }
        self.redraw();
        true
    }

    fn jump_to(&mut self, index: usize) {
        let name = &self.workbook.info.exercises[index].name;
        if !self.progress.in_play(index) {
            self.note(format!(
                "`{name}` is not in the set `{}`; `sdlings set clear` goes back to the whole workbook",
                self.set.name
            ));
            return;
        }
        if !self.progress.is_unlocked(index) {
            self.note(format!(
                "`{name}` is locked: finish every exercise of the earlier topics first"
            ));
            return;
        }
        self.switch_to(index);
    }

    fn next(&mut self) {
        let passed_now = matches!(&self.phase, Phase::Judged(v) if v.passed());
        if !passed_now && !self.progress.done[self.current] {
            self.note("Finish this exercise first: `n` moves on once its tests pass.".into());
            return;
        }
        match self.progress.next_after(self.current) {
            Some(next) => self.switch_to(next),
            None => self.note(self.workbook.info.final_message.clone()),
        }
    }

    fn switch_to(&mut self, index: usize) {
        self.current = index;
        self.show_hints = false;
        self.message = None;
        let dir = self.current_dir();
        if let Some(files) = &mut self.files
            && let Err(e) = files.follow(&dir)
        {
            self.message = Some(format!("{e:#}"));
        }
        let name = self.current_name().to_string();
        match self.workbook.store.update(|s| s.current = Some(name)) {
            Ok((state, _)) => self.state = state,
            Err(e) => self.message = Some(format!("{e:#}")),
        }
        if !self.interactive {
            println!(
                "now on {} ({})",
                self.current_name(),
                self.current_path_shown()
            );
        }
        self.start_check();
    }

    fn reveal_hint(&mut self) -> Result<()> {
        let exercise = &self.workbook.info.exercises[self.current];
        let total = exercise.hints.len();
        let (state, _) = self.workbook.store.update(|s| {
            let record = s.record_mut(&exercise.name);
            record.hints_revealed = (record.hints_revealed + 1).min(total);
        })?;
        self.state = state;
        self.show_hints = true;
        if !self.interactive {
            print!("{}", self.hints());
        }
        Ok(())
    }

    fn hints(&self) -> String {
        let exercise = &self.workbook.info.exercises[self.current];
        hints_text(&exercise.hints, self.state.hints_revealed(&exercise.name))
    }

    fn note(&mut self, message: String) {
        if !self.interactive {
            println!("{message}");
        }
        self.message = Some(message);
    }

    fn redraw(&self) {
        if !self.interactive {
            return;
        }
        let text = match self.view {
            View::Exercise => self.exercise_screen(),
            View::List { cursor } => self.list_screen(cursor),
        };
        // A terminal that went away cannot be drawn on; nothing useful to do about it here.
        let _ = screen::draw(&text);
    }

    fn exercise_screen(&self) -> String {
        let info = &self.workbook.info;
        let exercise = &info.exercises[self.current];
        let topic = &info.topics[exercise.topic];
        let header = format!(
            "{}  {}\n{}\n\n",
            format!("sdlings · {} · {}", topic.dir, topic.title).bold(),
            exercise.name.bold().yellow(),
            self.current_path_shown().dimmed(),
        );

        // The body, most important first: it is cut from the bottom when the terminal is short.
        let mut body = String::new();
        let first_of_all = self.progress.order.first() == Some(&self.current);
        if first_of_all && self.progress.done_count() == 0 {
            body.push_str(info.welcome_message.trim());
            body.push_str("\n\n");
        }
        match &self.phase {
            Phase::Checking { line } => {
                body.push_str(&format!("Checking {}… {}\n", exercise.name, line.dimmed()));
            }
            Phase::Judged(verdict) => {
                body.push_str(&present::verdict_text(
                    &exercise.name,
                    &self.current_path_shown(),
                    verdict,
                ));
            }
            Phase::Error(e) => body.push_str(&format!("{} {e}\n", "error:".red().bold())),
        }
        if let Some(message) = &self.message {
            body.push_str(&format!("\n{}\n", message.cyan()));
        }
        if self.show_hints {
            body.push('\n');
            body.push_str(&self.hints());
        }
        match &self.lab {
            Lab::None => {}
            Lab::Running => body.push_str(&format!("\n{}\n", "Running the lab…".dimmed())),
            Lab::Output(output) => {
                body.push_str(&format!("\n{}\n{output}\n", "── lab ──".bold()));
            }
        }

        let can_go_next = matches!(&self.phase, Phase::Judged(v) if v.passed())
            || self.progress.done[self.current];
        let footer = format!(
            "\nProgress: {}\n{}",
            progress_bar(self.progress.done_count(), self.progress.total(), 30),
            screen::keys_line(can_go_next)
        );
        screen::fit(&header, &body, &footer)
    }

    fn list_screen(&self, cursor: usize) -> String {
        let info = &self.workbook.info;
        let mut out = format!(
            "{}\n\n",
            "Exercises — ↑/↓ (or k/j) to move, Enter to open, Esc to go back".bold()
        );
        for (position, &i) in self.progress.order.iter().enumerate() {
            let exercise = &info.exercises[i];
            let status = self.progress.status(i);
            let pointer = if position == cursor { "›" } else { " " };
            let line = format!(
                "{pointer} {} {:<28} {:<8} {}",
                status_mark(status),
                exercise.name,
                status.label(),
                info.topics[exercise.topic].dir.dimmed()
            );
            out.push_str(&if position == cursor {
                line.reversed().to_string()
            } else {
                line
            });
            out.push('\n');
        }
        if let Some(message) = &self.message {
            out.push_str(&format!("\n{}\n", message.cyan()));
        }
        out
    }
}
