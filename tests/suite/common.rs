//! Test helpers: a throw-away copy of the workbook, and a way to run sdlings in it.

#![allow(dead_code)] // each test file uses a different part of this module

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use assert_cmd::Command;

/// The workbook in this repository.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fixture workbook (tests/fixture): tiny std-only exercises in the curriculum's shape.
pub fn fixture_root() -> PathBuf {
    repo_root().join("tests").join("fixture")
}

/// A temporary workbook, removed when dropped. Each builds into its own `target/` (sdlings'
/// default build directory inside the workbook), so tests run side by side without sharing
/// anything; the fixture's exercises build in a fraction of a second.
pub struct TempWorkbook {
    dir: tempfile::TempDir,
}

impl TempWorkbook {
    /// A copy of the fixture workbook: what CLI and watcher tests run on.
    pub fn new() -> TempWorkbook {
        let dir = tempdir("sdlings-test-");
        copy_dir(&fixture_root(), dir.path());
        // Committed, as a mentor's own workbook would be: sdlings finds the exercises as handed
        // out in the git history (the fixture is not the curriculum built into sdlings).
        git(dir.path(), &["init", "-q"]);
        git(dir.path(), &["add", "."]);
        git(dir.path(), &["commit", "-q", "-m", "The fixture workbook"]);
        TempWorkbook { dir }
    }

    /// A copy of the real curriculum's sources, for tests about the curriculum itself (reset from
    /// the built-in copy, the benchmark). Building it compiles tokio: avoid in ordinary tests.
    pub fn curriculum() -> TempWorkbook {
        let dir = tempdir("sdlings-curriculum-");
        let root = repo_root();
        for file in ["Cargo.toml", "Cargo.lock", "info.toml"] {
            fs::copy(root.join(file), dir.path().join(file)).unwrap();
        }
        for sub in ["src", "exercises", "solutions", "sets"] {
            copy_dir(&root.join(sub), &dir.path().join(sub));
        }
        TempWorkbook { dir }
    }

    /// A workbook a test wrote itself.
    pub fn at(dir: tempfile::TempDir) -> TempWorkbook {
        TempWorkbook { dir }
    }

    /// A learner's fresh workbook, written by `sdlings init` from the built-in curriculum.
    pub fn init() -> TempWorkbook {
        let dir = tempdir("sdlings-init-");
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
        TempWorkbook { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `sdlings` run inside this workbook, building into the workbook's own build directory.
    pub fn sdlings(&self) -> Command {
        let mut cmd = Command::cargo_bin("sdlings").unwrap();
        cmd.current_dir(self.path())
            .env("NO_COLOR", "1")
            .env_remove("SDLINGS_TARGET_DIR")
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

    /// Sets `time_limit_secs` of exercise `name` in this copy's info.toml.
    pub fn set_time_limit(&self, name: &str, secs: u64) {
        let info = self.read("info.toml");
        let entry = info
            .find(&format!("\nname = \"{name}\"\n"))
            .unwrap_or_else(|| panic!("no exercise `{name}` in info.toml"));
        let topic_line = entry + info[entry..].find("\ntopic = ").expect("a topic line");
        let end = topic_line + 1 + info[topic_line + 1..].find('\n').expect("a line end");
        let mut edited = info.clone();
        edited.insert_str(end + 1, &format!("time_limit_secs = {secs}\n"));
        self.write("info.toml", &edited);
    }

    /// Starts the watcher in plain mode (stdin and stdout are pipes) with extra `args`.
    pub fn watcher(&self, args: &[&str]) -> Watcher {
        Watcher::start(self, args)
    }
}

/// A generous bound for one step of a watcher test; only reached if the watcher is broken (the
/// test then fails with the output so far instead of hanging forever).
pub const STEP_LIMIT: Duration = Duration::from_secs(300);

/// `sdlings watch` driven like a learner's editor would drive it, in plain mode: saves are real
/// file writes, keys are lines on stdin, verdicts are lines on stdout.
pub struct Watcher {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Lines of stdout with the moment each was read.
    lines: Receiver<(Instant, String)>,
    seen: Vec<String>,
}

impl Watcher {
    pub fn start(wb: &TempWorkbook, args: &[&str]) -> Watcher {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sdlings"))
            .arg("watch")
            .args(args)
            .current_dir(wb.path())
            .env("NO_COLOR", "1")
            .env_remove("SDLINGS_TARGET_DIR")
            .env_remove("CARGO_TARGET_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Watcher {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next line for which `wanted` holds, returning it and when it was read.
    pub fn expect_where(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> (Instant, String) {
        loop {
            match self.lines.recv_timeout(STEP_LIMIT) {
                Ok((at, line)) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return (at, line);
                    }
                }
                Err(_) => panic!(
                    "the watcher never printed {what}; it printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for a line containing `text`, returning it.
    pub fn expect(&mut self, text: &str) -> String {
        self.expect_where(&format!("{text:?}"), |l| l.contains(text))
            .1
    }

    /// Waits for the next verdict line about exercise `name` ("✓ name: ..." or "✗ name: ...").
    pub fn next_verdict(&mut self, name: &str) -> String {
        self.next_verdict_at(name).1
    }

    /// [`Watcher::next_verdict`], with the moment the line was read.
    pub fn next_verdict_at(&mut self, name: &str) -> (Instant, String) {
        self.expect_where(&format!("a verdict for {name}"), |l| is_verdict(l, name))
    }

    /// Everything printed so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Whether the watcher process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Closes stdin, waits for the watcher to exit on its own (it does once idle) and returns its
    /// exit status with everything it printed.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        // The reader thread ends at EOF, which follows the exit.
        while let Ok((_, line)) = self.lines.recv_timeout(STEP_LIMIT) {
            self.seen.push(line);
        }
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Only after a failed assertion: do not leave a watcher running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether `line` is the watcher's verdict line for exercise `name`.
pub fn is_verdict(line: &str, name: &str) -> bool {
    line.strip_prefix("✓ ")
        .or_else(|| line.strip_prefix("✗ "))
        .is_some_and(|rest| rest.starts_with(&format!("{name}: ")))
}

/// The verdict lines about exercise `name` among `lines`.
pub fn verdicts<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    lines
        .iter()
        .map(String::as_str)
        .filter(|l| is_verdict(l, name))
        .collect()
}

/// How many exercises and topics the fixture workbook has, read from its info.toml.
pub fn curriculum_size() -> (usize, usize) {
    let info = fs::read_to_string(fixture_root().join("info.toml")).unwrap();
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

/// Where the curriculum tests build the real workbook: one place, kept between runs, so a
/// re-run of `cargo test` rebuilds only what changed.
pub fn curriculum_build_dir() -> PathBuf {
    repo_root().join("target").join("sdlings-tests")
}

/// The environment of every build into `curriculum_build_dir`. Each of these binaries is built
/// once per run and never debugged (sdlings runs tests with `RUST_BACKTRACE=0`), so neither
/// incremental state nor the standard library's debug info is worth its disk: together they were
/// three quarters of the directory. All builds into it must agree, or the dependencies are built
/// twice.
pub const CURRICULUM_BUILD_ENV: [(&str, &str); 2] = [
    ("CARGO_INCREMENTAL", "0"),
    ("CARGO_PROFILE_DEV_STRIP", "debuginfo"),
];

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=sdlings tests",
            "-c",
            "user.email=tests@sdlings.invalid",
        ])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed in {}", dir.display());
}

fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_name() == "target" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}
