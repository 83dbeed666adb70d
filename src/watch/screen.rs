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
    out.write_all(text.replace('\n', "\r\n").as_bytes())?;
    out.flush()
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
