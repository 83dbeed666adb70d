//! Everything the watcher reacts to arrives as an [`Event`] on one channel: file changes from
//! notify, keys from the terminal (or lines from stdin when there is none), and results from the
//! worker thread. One channel keeps the main loop single-threaded and easy to reason about.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::thread;
use std::time::Duration;

use anyhow::{Result, anyhow};
use crossterm::event::{self as term_event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use notify::{EventKind, RecursiveMode, Watcher};

use super::worker::WorkResult;

/// How often `--poll` looks at the files.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Quiet time after the last file event of a save that did not say it was complete (a write
/// whose close is not reported) before checking. An editor's steps come within a millisecond or
/// two; a slower save's later events cancel a check started too early, so the verdict is still
/// that of the final file.
const EVENTS_SETTLE: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_and_wsl_mounts_are_recognised() {
        let mounts = "overlay / overlay rw 0 0\n\
                      drvfs /mnt/c 9p rw 0 0\n\
                      server:/home /home/me/net nfs4 rw 0 0\n";
        assert_eq!(
            eventless_in(mounts, Path::new("/mnt/c/Users/me/sdlings")),
            Some("9p".into())
        );
        assert_eq!(
            eventless_in(mounts, Path::new("/home/me/net/sdlings")),
            Some("nfs4".into())
        );
        assert_eq!(eventless_in(mounts, Path::new("/home/me/sdlings")), None);
    }
}

#[derive(Debug)]
pub enum Event {
    /// Something was written, created, renamed or removed at these paths. `settled`: the event
    /// marks the end of a save (the writer closed the file, or a finished file was renamed into
    /// place), so there is nothing to wait for.
    FilesChanged {
        paths: Vec<PathBuf>,
        settled: bool,
    },
    Input(Input),
    /// Standard input ended (plain mode only).
    InputClosed,
    /// A line of progress from the worker (e.g. "Compiling tokio").
    Progress {
        generation: u64,
        line: String,
    },
    Finished {
        generation: u64,
        result: WorkResult,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Hint,
    List,
    Next,
    Recheck,
    Quit,
    Up,
    Down,
    Enter,
    Back,
    /// Plain mode: `l NAME` jumps to an exercise.
    Jump(String),
    /// The terminal was resized.
    Redraw,
}

/// What the watcher watches for saves. Events: the whole `exercises/` directory, recursively,
/// which costs nothing while idle. Polling: only the directory of the current exercise, because
/// each round reads every polled file; it follows the learner from exercise to exercise.
pub struct FileWatch {
    watcher: Box<dyn Watcher + Send>,
    /// Polling mode only: the directory polled now.
    polled: Option<PathBuf>,
    polling: bool,
}

impl FileWatch {
    /// Watches `exercises_dir` with file events.
    pub fn events(exercises_dir: &Path, tx: Sender<Event>) -> Result<FileWatch> {
        let mut watcher =
            notify::recommended_watcher(forward_saves(tx)).map_err(|e| setup_error(None, &e))?;
        watcher
            .watch(exercises_dir, RecursiveMode::Recursive)
            .map_err(|e| setup_error(Some(exercises_dir), &e))?;
        Ok(FileWatch {
            watcher: Box::new(watcher),
            polled: None,
            polling: false,
        })
    }

    /// Polls `dir` (the current exercise's directory) every [`POLL_INTERVAL`].
    pub fn poll(dir: &Path, tx: Sender<Event>) -> Result<FileWatch> {
        let config = notify::Config::default()
            .with_poll_interval(POLL_INTERVAL)
            // notify's poller compares mtimes in whole seconds: compare contents too, so two
            // saves within one second are both seen.
            .with_compare_contents(true);
        let mut watch = FileWatch {
            watcher: Box::new(notify::PollWatcher::new(forward_saves(tx), config)?),
            polled: None,
            polling: true,
        };
        watch.follow(dir)?;
        Ok(watch)
    }

    /// How long a save must stay quiet before it is checked. The poller sees a save that spans
    /// two of its rounds as two changes a round apart: waiting a round and a bit more makes
    /// them one save (and one verdict), as with events.
    pub fn settle_time(&self) -> Duration {
        if self.polling {
            POLL_INTERVAL + POLL_INTERVAL / 2
        } else {
            EVENTS_SETTLE
        }
    }

    /// Polling mode: polls `dir` instead of the directory polled so far. With events, every
    /// directory is watched already and this does nothing.
    pub fn follow(&mut self, dir: &Path) -> Result<()> {
        if !self.polling || self.polled.as_deref() == Some(dir) {
            return Ok(());
        }
        if let Some(old) = self.polled.take() {
            let _ = self.watcher.unwatch(&old);
        }
        self.watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| setup_error(Some(dir), &e))?;
        self.polled = Some(dir.to_path_buf());
        Ok(())
    }
}

/// A notify handler that sends the changes that can mean "the learner saved".
fn forward_saves(tx: Sender<Event>) -> impl notify::EventHandler {
    move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res
            && is_write_like(&event.kind)
        {
            let _ = tx.send(Event::FilesChanged {
                settled: ends_a_save(&event.kind),
                paths: event.paths,
            });
        }
    }
}

fn setup_error(dir: Option<&Path>, e: &notify::Error) -> anyhow::Error {
    let what = dir.map_or_else(|| "the exercises".into(), |d| d.display().to_string());
    anyhow!(
        "cannot watch {what} for changes: {e}.\n\
         If the system ran out of file watches, raise the limit (on Linux: sysctl fs.inotify.max_user_watches=524288),\n\
         or run `sdlings watch --poll`, which checks the files periodically instead."
    )
}

/// File systems on which inotify does not see writes made by other machines or by the Windows
/// side of WSL: network mounts, VM shared folders, WSL's drvfs/9p mounts of Windows drives.
const EVENTLESS_FILE_SYSTEMS: &[&str] = &[
    "9p",
    "drvfs",
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "vboxsf",
    "fuse.sshfs",
    "fuse.rclone",
];

/// The file-system type of `dir` when it is one where file events may not arrive.
pub fn eventless_file_system(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    eventless_in(&mounts, &dir)
}

fn eventless_in(mounts: &str, dir: &Path) -> Option<String> {
    // The mount with the longest mount point containing `dir` is the one `dir` lives on.
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            let mount_point = fields.next()?.replace("\\040", " ");
            let fs_type = fields.next()?;
            dir.starts_with(&mount_point)
                .then(|| (mount_point.len(), fs_type.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, fs_type)| fs_type)
        .filter(|fs_type| EVENTLESS_FILE_SYSTEMS.contains(&fs_type.as_str()))
}

/// Reads are not saves: cargo and rustc open the exercise on every check, and reacting to that
/// would loop forever. Metadata-only changes (atime, permissions) are not saves either, except a
/// newer modification time, which is how the poller reports most saves.
fn is_write_like(kind: &EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::WriteTime)) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Other | EventKind::Any => false,
    }
}

/// A writer closing the file, or a complete file renamed over it (VS Code, JetBrains, `sed -i`):
/// the usual last step of a save. Other writes may be followed by more of the same save.
fn ends_a_save(kind: &EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
    )
}

/// Reads keys from the terminal (which must be in raw mode).
pub fn read_keys(tx: Sender<Event>) {
    thread::spawn(move || {
        while let Ok(event) = term_event::read() {
            let key = match event {
                term_event::Event::Key(key) => key,
                term_event::Event::Resize(..) => {
                    if tx.send(Event::Input(Input::Redraw)).is_err() {
                        break;
                    }
                    continue;
                }
                _ => continue,
            };
            if key.kind == KeyEventKind::Release {
                continue;
            }
            if let Some(input) = key_input(key)
                && tx.send(Event::Input(input)).is_err()
            {
                break;
            }
        }
    });
}

fn key_input(key: KeyEvent) -> Option<Input> {
    if key.modifiers.contains(KeyModifiers::CONTROL)
        && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('d'))
    {
        return Some(Input::Quit);
    }
    Some(match key.code {
        KeyCode::Char('h') => Input::Hint,
        KeyCode::Char('l') => Input::List,
        KeyCode::Char('n') => Input::Next,
        KeyCode::Char('r') => Input::Recheck,
        KeyCode::Char('q') => Input::Quit,
        KeyCode::Up | KeyCode::Char('k') => Input::Up,
        KeyCode::Down | KeyCode::Char('j') => Input::Down,
        KeyCode::Enter => Input::Enter,
        KeyCode::Esc => Input::Back,
        _ => return None,
    })
}

/// Plain mode: one command per line of standard input (`h`, `l`, `l NAME`, `n`, `r`, `q`).
pub fn read_lines(tx: Sender<Event>) {
    thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            let line = line.trim();
            let input = match line.split_once(char::is_whitespace) {
                Some(("l" | "list", name)) => Some(Input::Jump(name.trim().to_string())),
                _ => match line {
                    "h" | "hint" => Some(Input::Hint),
                    "l" | "list" => Some(Input::List),
                    "n" | "next" => Some(Input::Next),
                    "r" | "recheck" => Some(Input::Recheck),
                    "q" | "quit" => Some(Input::Quit),
                    _ => None,
                },
            };
            if let Some(input) = input
                && tx.send(Event::Input(input)).is_err()
            {
                return;
            }
        }
        let _ = tx.send(Event::InputClosed);
    });
}
