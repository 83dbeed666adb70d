//! Drawing the watcher: a full-screen view on a terminal, plain lines otherwise.
//!
//! The full-screen view is redrawn from scratch on every change. That is simpler than tracking
//! what changed and costs nothing at this size; the terminal is in raw mode, so lines end in
//! "\r\n".

use std::io::{self, Write};

use colored::Colorize;
use crossterm::{cursor, execute, terminal};

/// Clears the screen and prints `text` at the top.
pub fn draw(text: &str) -> io::Result<()> {
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
pub fn fit(header: &str, body: &str, footer: &str) -> String {
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
pub fn keys_line(can_go_next: bool) -> String {
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
