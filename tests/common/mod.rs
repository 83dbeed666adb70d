//! Test helpers: a throw-away copy of the workbook, and a way to run sdlings in it.

#![allow(dead_code)] // each test file uses a different part of this module

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The workbook in this repository.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies of the workbook share one build directory (building tokio once per copy would take
/// minutes), and cargo gives every copy's `exercises` package the same artifact paths. Two copies
/// building at once would overwrite each other's binaries, so copies take turns: each holds an
/// exclusive lock on this file for its lifetime. A file lock (not a mutex) so that test processes
/// running side by side take turns too.
fn take_turn() -> fs::File {
    let dir = shared_build_dir();
    fs::create_dir_all(&dir).unwrap();
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("tests.lock"))
        .unwrap();
    lock.lock().unwrap();
    lock
}

/// A temporary copy of the workbook (sources only), removed when dropped.
pub struct TempWorkbook {
    dir: tempfile::TempDir,
    _turn: fs::File,
}

impl TempWorkbook {
    pub fn new() -> TempWorkbook {
        let turn = take_turn();
        let dir = tempfile::Builder::new()
            .prefix("sdlings-test-")
            .tempdir()
            .unwrap();
        let root = repo_root();
        for file in ["Cargo.toml", "Cargo.lock", "info.toml"] {
            fs::copy(root.join(file), dir.path().join(file)).unwrap();
        }
        for sub in ["src", "exercises", "solutions", "sets"] {
            copy_dir(&root.join(sub), &dir.path().join(sub));
        }
        TempWorkbook { dir, _turn: turn }
    }

    /// A learner's fresh workbook, written by `sdlings init` from the built-in curriculum.
    pub fn init() -> TempWorkbook {
        let turn = take_turn();
        let dir = tempfile::Builder::new()
            .prefix("sdlings-init-")
            .tempdir()
            .unwrap();
        Command::cargo_bin("sdlings")
            .unwrap()
            .arg("init")
            .arg(dir.path().join("workbook"))
            .assert()
            .success();
        // Move the workbook's contents up so `path()` is its root.
        for entry in fs::read_dir(dir.path().join("workbook")).unwrap() {
            let entry = entry.unwrap();
            fs::rename(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        fs::remove_dir(dir.path().join("workbook")).unwrap();
        TempWorkbook { dir, _turn: turn }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `sdlings` run inside this workbook, building into the tests' shared build directory (so
    /// tokio and friends are compiled once for all tests, not once per test).
    pub fn sdlings(&self) -> Command {
        let mut cmd = Command::cargo_bin("sdlings").unwrap();
        cmd.current_dir(self.path())
            .env("SDLINGS_TARGET_DIR", shared_build_dir())
            .env("NO_COLOR", "1")
            .env_remove("CARGO_TARGET_DIR");
        cmd
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path().join(rel)).unwrap()
    }

    pub fn write(&self, rel: &str, text: &str) {
        fs::write(self.path().join(rel), text).unwrap();
    }

    /// Solves an exercise the way a learner would: by saving the solved text over the file.
    pub fn solve(&self, topic_dir: &str, name: &str) {
        let rel = format!("{topic_dir}/{name}.rs");
        let solved = self.read(&format!("solutions/{rel}"));
        self.write(&format!("exercises/{rel}"), &solved);
    }
}

/// How many exercises and topics the workbook has, read from its info.toml (so tests do not
/// break each time the curriculum grows).
pub fn curriculum_size() -> (usize, usize) {
    let info = fs::read_to_string(repo_root().join("info.toml")).unwrap();
    let count = |header: &str| info.lines().filter(|l| l.trim() == header).count();
    (count("[[exercises]]"), count("[[topics]]"))
}

/// The progress bar as `list` draws it (30 characters wide).
pub fn progress_bar(done: usize, total: usize) -> String {
    let filled = done * 30 / total;
    format!(
        "Progress: [{}{}] {done}/{total}",
        "#".repeat(filled),
        "-".repeat(30 - filled)
    )
}

pub fn shared_build_dir() -> PathBuf {
    repo_root().join("target").join("sdlings-tests")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}
