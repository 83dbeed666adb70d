//! The watcher's face on a terminal: a full-screen view, redrawn from the model on every change.
//! That is simpler than tracking what changed and costs nothing at this size; the terminal is in
//! raw mode, so lines end in "\r\n".

use std::io::{self, Write};

use colored::Colorize;
use crossterm::{cursor, execute, terminal};

use super::face::{Change, Face};
use super::model::{Lab, Model, Phase, View};
use crate::commands::list::status_mark;
use crate::present;
use crate::term::progress_bar;

/// The full-screen face.
pub struct Screen;

impl Face for Screen {
    fn interactive(&self) -> bool {
        true
    }

    fn show(&mut self, model: &Model, _change: Change) {
        let text = match model.view {
            View::Exercise => exercise_screen(model),
            View::List { cursor } => list_screen(model, cursor),
        };
        // A terminal that went away cannot be drawn on; nothing useful to do about it here.
        let _ = draw(&text);
    }
}

fn exercise_screen(model: &Model) -> String {
    let info = &model.workbook.info;
    let exercise = &info.exercises[model.current];
    let topic = &info.topics[exercise.topic];
    let header = format!(
        "{}  {}\n{}\n\n",
        format!("sdlings · {} · {}", topic.dir, topic.title).bold(),
        exercise.name.bold().yellow(),
        model.current_path_shown().dimmed(),
    );

    // The body, most important first: it is cut from the bottom when the terminal is short.
    let mut body = String::new();
    let first_of_all = model.progress.order.first() == Some(&model.current);
    if first_of_all && model.progress.done_count() == 0 {
        body.push_str(info.welcome_message.trim());
        body.push_str("\n\n");
    }
    match &model.phase {
        Phase::Checking { line } => {
            body.push_str(&format!("Checking {}… {}\n", exercise.name, line.dimmed()));
        }
        Phase::Judged(verdict) => {
            body.push_str(&present::verdict_text(
                &exercise.name,
                &model.current_path_shown(),
                verdict,
            ));
        }
        Phase::Error(e) => body.push_str(&format!("{} {e}\n", "error:".red().bold())),
    }
    if let Some(message) = &model.message {
        body.push_str(&format!("\n{}\n", message.cyan()));
    }
    if model.show_hints {
        body.push('\n');
        body.push_str(&model.hints());
    }
    match &model.lab {
        Lab::None => {}
        Lab::Running => body.push_str(&format!("\n{}\n", "Running the lab…".dimmed())),
        Lab::Output(output) => {
            body.push_str(&format!("\n{}\n{output}\n", "── lab ──".bold()));
        }
    }

    let footer = format!(
        "\nProgress: {}\n{}",
        progress_bar(model.progress.done_count(), model.progress.total(), 30),
        keys_line(model.can_go_next())
    );
    fit(&header, &body, &footer)
}

fn list_screen(model: &Model, cursor: usize) -> String {
    let info = &model.workbook.info;
    let mut out = format!(
        "{}\n\n",
        "Exercises — ↑/↓ (or k/j) to move, Enter to open, Esc to go back".bold()
    );
    for (position, &i) in model.progress.order.iter().enumerate() {
        let exercise = &info.exercises[i];
        let status = model.progress.status(i);
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
    if let Some(message) = &model.message {
        out.push_str(&format!("\n{}\n", message.cyan()));
    }
    out
}

/// Clears the screen and prints `text` at the top.
fn draw(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    execute!(
        out,
        terminal::Clear(terminal::ClearType::All),
        terminal::Clear(terminal::ClearType::Purge),
        cursor::MoveTo(0, 0)
    )?;
    out.write_all(text.trim_end().replace('\n', "\r\n").as_bytes())?;
    out.flush()
}

/// Joins header, body and footer so that the whole fits the terminal: the body is cut from the
/// bottom, with a note, rather than letting the header scroll out of sight.
fn fit(header: &str, body: &str, footer: &str) -> String {
    let (width, height) =
        terminal::size().map_or((80, 24), |(w, h)| (usize::from(w), usize::from(h)));
    let rows = |text: &str| -> usize { text.lines().map(|l| rows_of(l, width)).sum() };
    let available = height.saturating_sub(rows(header) + rows(footer) + 1);
    let body_rows = rows(body);
    if body_rows <= available {
        return format!("{header}{body}{footer}");
    }
    let mut kept = String::new();
    let mut used = 0;
    let mut lines = body.lines();
    for line in lines.by_ref() {
        let needed = rows_of(line, width);
        // Keep one row for the note.
        if used + needed + 1 > available {
            break;
        }
        kept.push_str(line);
        kept.push('\n');
        used += needed;
    }
    let hidden = body.lines().count() - kept.lines().count();
    format!(
        "{header}{kept}{}\n{footer}",
        format!("… {hidden} more lines: make the terminal taller, or run `sdlings check` in another one to see them all").dimmed()
    )
}

/// How many terminal rows a line takes, ignoring colour codes.
fn rows_of(line: &str, width: usize) -> usize {
    let mut visible: usize = 0;
    let mut in_escape = false;
    for c in line.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => visible += 1,
        }
    }
    visible.div_ceil(width.max(1)).max(1)
}

/// The line of keys at the bottom of the screen; `n` appears only when it can be used.
fn keys_line(can_go_next: bool) -> String {
    let key = |k: &str, what: &str| format!("{} {what}", k.bold());
    let mut keys = vec![key("h", "hint"), key("l", "list")];
    if can_go_next {
        keys.push(key("n", "next"));
    }
    keys.extend([key("r", "re-check"), key("q", "quit")]);
    keys.join(" · ")
}

/// Puts the terminal into raw mode for single-key input and restores it when dropped — also
/// when the watcher returns early with an error, and (via the panic hook) when it panics.
pub struct RawMode;

impl RawMode {
    pub fn enter() -> io::Result<RawMode> {
        terminal::enable_raw_mode()?;
        execute!(io::stdout(), cursor::Hide)?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(io::stdout(), cursor::Show);
}
