//! The learner's progress: one small TOML file at the workbook root.
//!
//! Progress is precious and the process that writes it may be killed at any moment (Ctrl-C, a
//! closed terminal, `kill -9`), so every write goes to a temporary file that is fsynced and then
//! renamed over the old one: a reader sees the old file or the new one, never half of each.
//! Several sdlings processes may run at once (a watcher and a `sdlings check` in another terminal),
//! so each change is a read-modify-write under an advisory file lock.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub const STATE_FILE_NAME: &str = ".sdlings-state.toml";
/// Lock files live here; the directory is git-ignored.
pub const PRIVATE_DIR: &str = ".sdlings";
const STATE_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format_version: u32,
    /// The exercise the watcher shows; `None` means "the first one not done".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// The exercise set in use (`sdlings set use`): a name from `sets/` or a path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_set: Option<String>,
    /// One record per exercise, by name. Records of exercises that info.toml no longer lists are
    /// kept, so switching curricula never loses work.
    #[serde(default)]
    pub exercises: BTreeMap<String, ExerciseRecord>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExerciseRecord {
    #[serde(default)]
    pub done: bool,
    /// When the exercise first passed, as an RFC 3339 UTC timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_passed: Option<String>,
    #[serde(default)]
    pub hints_revealed: usize,
}

impl Default for State {
    fn default() -> Self {
        State {
            format_version: STATE_FORMAT_VERSION,
            current: None,
            active_set: None,
            exercises: BTreeMap::new(),
        }
    }
}

impl State {
    pub fn is_done(&self, name: &str) -> bool {
        self.exercises.get(name).is_some_and(|r| r.done)
    }

    pub fn hints_revealed(&self, name: &str) -> usize {
        self.exercises.get(name).map_or(0, |r| r.hints_revealed)
    }

    pub fn record_mut(&mut self, name: &str) -> &mut ExerciseRecord {
        self.exercises.entry(name.to_string()).or_default()
    }

    /// Records a pass; the first pass keeps its timestamp.
    pub fn mark_done(&mut self, name: &str) {
        let record = self.record_mut(name);
        record.done = true;
        if record.first_passed.is_none() {
            record.first_passed =
                Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string());
        }
    }
}

/// Reads and writes the state file of one workbook.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
    lock_path: PathBuf,
}

impl StateStore {
    pub fn new(root: &Path) -> Self {
        StateStore {
            path: root.join(STATE_FILE_NAME),
            lock_path: root.join(PRIVATE_DIR).join("state.lock"),
        }
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state, or a fresh one if there is no file yet.
    pub fn load(&self) -> Result<State> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        let text = String::from_utf8(bytes)
            .map_err(|e| self.damaged(&format!("it is not UTF-8 text ({e})")))?;
        let state: State = toml::from_str(&text).map_err(|e| self.damaged(&e.to_string()))?;
        if state.format_version != STATE_FORMAT_VERSION {
            return Err(self.damaged(&format!(
                "format_version {} is not the {STATE_FORMAT_VERSION} this sdlings writes (was it written by a newer sdlings?)",
                state.format_version
            )));
        }
        Ok(state)
    }

    /// Applies `change` to the state on disk and saves it, holding the lock throughout so that
    /// concurrent sdlings processes never overwrite each other's progress.
    pub fn update<R>(&self, change: impl FnOnce(&mut State) -> R) -> Result<(State, R)> {
        let _lock = self.lock()?;
        let mut state = self.load()?;
        let result = change(&mut state);
        self.write_atomically(&state)?;
        Ok((state, result))
    }

    fn lock(&self) -> Result<File> {
        let lock = open_lock_file(&self.lock_path)?;
        lock.lock()
            .with_context(|| format!("cannot lock {}", self.lock_path.display()))?;
        Ok(lock)
    }

    fn write_atomically(&self, state: &State) -> Result<()> {
        let text = format!(
            "# sdlings progress: which exercises you finished and how many hints you revealed.\n\
             # Keep it in version control with your work. Written by sdlings; edit with care.\n{}",
            toml::to_string(state).context("cannot serialise the progress state")?
        );
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!("{STATE_FILE_NAME}.tmp-{}", std::process::id()));
        let write = || -> io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            // The rename is durable only once the directory entry is on disk too.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            anyhow::anyhow!(
                "cannot save progress to {}: {e}; your previous progress file is unchanged",
                self.path.display()
            )
        })
    }

    fn damaged(&self, reason: &str) -> anyhow::Error {
        let name = self
            .path
            .file_name()
            .map_or_else(|| STATE_FILE_NAME.into(), |n| n.to_string_lossy());
        anyhow::anyhow!(
            "the progress file {} is damaged: {}\n\
             \n\
             Your exercise files are untouched; only the record of your progress could not be read,\n\
             and sdlings will not overwrite it. To continue, move it aside:\n\
             \n    mv {name} {name}.damaged\n\n\
             then run `sdlings verify --all`: it re-checks every exercise and records each one that\n\
             passes, so finished work counts again. (Revealed-hint counts start from zero.)",
            self.path.display(),
            reason.trim_end()
        )
    }
}

/// Held by a running watcher, so that a second one on the same workbook is refused instead of both
/// fighting over the terminal and the build directory. The OS releases the lock when the process
/// ends, however it ends.
pub struct WatcherLock {
    _file: File,
}

impl WatcherLock {
    pub fn acquire(root: &Path) -> Result<WatcherLock> {
        let path = root.join(PRIVATE_DIR).join("watch.lock");
        let mut file = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                bail!(
                    "another sdlings watcher is already running in this workbook{}.\n\
                     Use that one, or quit it (press `q` in its terminal) and start again.",
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" (process {holder})")
                    }
                );
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        file.set_len(0)?;
        write!(file, "{}", std::process::id())?;
        Ok(WatcherLock { _file: file })
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        assert_eq!(store.load().unwrap(), State::default());
    }

    #[test]
    fn update_round_trips_and_keeps_the_first_pass_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        store
            .update(|s| {
                s.mark_done("lru_cache");
                s.record_mut("ttl_cache").hints_revealed = 2;
                s.current = Some("ttl_cache".into());
            })
            .unwrap();
        let first = store.load().unwrap().exercises["lru_cache"]
            .first_passed
            .clone();
        store.update(|s| s.mark_done("lru_cache")).unwrap();
        let state = store.load().unwrap();
        assert!(state.is_done("lru_cache"));
        assert_eq!(state.exercises["lru_cache"].first_passed, first);
        assert_eq!(state.hints_revealed("ttl_cache"), 2);
        assert_eq!(state.current.as_deref(), Some("ttl_cache"));
    }

    #[test]
    fn damaged_file_gives_a_way_out_and_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        fs::write(store.path(), "format_version = 1\n[exercises.x\n").unwrap();
        let err = store.update(|s| s.mark_done("x")).unwrap_err().to_string();
        assert!(err.contains("is damaged"), "{err}");
        assert!(err.contains("mv .sdlings-state.toml"), "{err}");
        assert_eq!(
            fs::read_to_string(store.path()).unwrap(),
            "format_version = 1\n[exercises.x\n"
        );
    }

    #[test]
    fn second_watcher_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = WatcherLock::acquire(dir.path()).unwrap();
        let err = WatcherLock::acquire(dir.path()).err().unwrap().to_string();
        assert!(err.contains("already running"), "{err}");
    }
}
