//! The terminal: whether to use colour, and a one-line progress indicator for long work.

use std::io::{IsTerminal, Write};

use crate::cli::ColorChoice;

/// Decides once, at start-up, whether output is coloured, and tells `colored` so.
pub fn init_color(choice: ColorChoice) -> bool {
    let on = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    colored::control::set_override(on);
    on
}

pub fn color_enabled() -> bool {
    colored::control::SHOULD_COLORIZE.should_colorize()
}

/// A status line on stderr that rewrites itself ("Compiling tokio...", "[3/12] lru_cache") on a
/// terminal, and prints nothing otherwise, so pipes and CI logs stay clean.
pub struct StatusLine {
    enabled: bool,
    shown: bool,
}

impl StatusLine {
    pub fn new() -> Self {
        StatusLine {
            enabled: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    pub fn set(&mut self, text: &str) {
        if self.enabled {
            let text: String = text.chars().take(width().saturating_sub(1)).collect();
            eprint!("\r\x1b[2K{text}");
            let _ = std::io::stderr().flush();
            self.shown = true;
        }
    }

    pub fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
            self.shown = false;
        }
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The terminal's width in columns, or 80 without a terminal.
pub fn width() -> usize {
    crossterm::terminal::size().map_or(80, |(w, _)| usize::from(w).max(20))
}

/// A progress bar such as `[#####-----] 5/10`.
pub fn progress_bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width).checked_div(total).unwrap_or(0);
    format!(
        "[{}{}] {done}/{total}",
        "#".repeat(filled),
        "-".repeat(width - filled)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_bar_fills_proportionally() {
        assert_eq!(super::progress_bar(0, 4, 8), "[--------] 0/4");
        assert_eq!(super::progress_bar(1, 4, 8), "[##------] 1/4");
        assert_eq!(super::progress_bar(4, 4, 8), "[########] 4/4");
    }
}
