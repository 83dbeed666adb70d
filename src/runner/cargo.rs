//! Building with cargo: one invocation builds any number of binaries, as test harnesses (what a
//! check runs) and as programs (the labs).
//!
//! Cargo's JSON messages tell us, per binary, either the executable's path or the compiler's
//! diagnostics (already rendered the way rustc prints them). `--keep-going` makes cargo build
//! every binary it can even when some fail to compile, so one invocation settles them all.
//! Cargo's own text on stderr is kept for the rare failure that is not a compile error (a broken
//! Cargo.toml, no network for a first download) and otherwise only reports progress.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::process::{Cancel, Supervised};

/// Test binaries (run by checks) or plain binaries (the labs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Artifact {
    Tests,
    Lab,
}

/// What to build, and where.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    /// The workspace (or scratch package) directory cargo runs in.
    pub dir: PathBuf,
    pub target_dir: PathBuf,
    /// The packages the binaries belong to.
    pub packages: Vec<String>,
    /// Binaries to build as test harnesses.
    pub tests: Vec<String>,
    /// Binaries to build as programs.
    pub labs: Vec<String>,
    /// Every test harness of `packages`, not only those named in `tests` (for whole-workbook
    /// checks, where it lets one invocation build tests and labs together).
    pub all_tests: bool,
    pub color: bool,
    /// Incremental compilation pays off for binaries rebuilt after small edits (the learner's);
    /// for binaries built once (mutants) it only fills the disk.
    pub incremental: bool,
}

/// A line of progress from cargo, e.g. "Compiling tokio v1.48.0".
pub type ProgressFn<'a> = &'a mut dyn FnMut(&str);

#[derive(Debug, Default)]
pub struct BuildOutcome {
    /// (binary name, artifact) → built executable.
    pub executables: HashMap<(String, Artifact), PathBuf>,
    /// Binary name → rendered compiler errors.
    pub compile_errors: HashMap<String, String>,
    /// Cargo's own stderr, for failures that are not compile errors.
    pub cargo_stderr: String,
    pub cancelled: bool,
}

impl BuildOutcome {
    pub fn executable(&self, bin: &str, artifact: Artifact) -> Option<&Path> {
        self.executables
            .get(&(bin.to_string(), artifact))
            .map(PathBuf::as_path)
    }

    /// Adds what a second build of other binaries produced (its cargo output after ours).
    pub fn absorb(&mut self, later: BuildOutcome) {
        self.executables.extend(later.executables);
        self.compile_errors.extend(later.compile_errors);
        self.cargo_stderr.push_str(&later.cargo_stderr);
        self.cancelled |= later.cancelled;
    }
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    executable: Option<PathBuf>,
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    message: Option<Diagnostic>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
}

#[derive(Deserialize)]
struct Profile {
    test: bool,
}

#[derive(Deserialize)]
struct Diagnostic {
    level: String,
    rendered: Option<String>,
}

enum Line {
    Json(String),
    Stderr(String),
}

fn command(plan: &BuildPlan) -> Command {
    let mut cmd = Command::new(cargo_program());
    if plan.labs.is_empty() && !plan.all_tests {
        cmd.args(["test", "--no-run"]);
    } else {
        cmd.args(["build", "--keep-going"]);
        if plan.all_tests || !plan.tests.is_empty() {
            // Test harnesses of every bin of the packages, beside the programs named below.
            cmd.arg("--tests");
        }
    }
    for package in &plan.packages {
        cmd.args(["--package", package]);
    }
    let named = if plan.labs.is_empty() {
        &plan.tests
    } else {
        &plan.labs
    };
    for bin in named {
        cmd.args(["--bin", bin]);
    }
    let format = if plan.color {
        "json-diagnostic-rendered-ansi"
    } else {
        "json"
    };
    if !plan.incremental {
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    cmd.arg(format!("--message-format={format}"))
        .arg("--target-dir")
        .arg(&plan.target_dir)
        .current_dir(&plan.dir)
        .env("CARGO_TERM_COLOR", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs the build; `progress` hears cargo's lines and a "built NAME" per binary of ours.
///
/// `cargo test --no-run` stops at the first binary that fails to compile (it has no
/// `--keep-going`), so the binaries it did not reach are built again, without those that
/// failed, until every one is either built or has its errors.
pub fn build(plan: &BuildPlan, cancel: &Cancel, progress: ProgressFn) -> Result<BuildOutcome> {
    let mut outcome = BuildOutcome::default();
    let mut round = plan.clone();
    loop {
        let result = build_once(&round, cancel, progress)?;
        outcome.cancelled = result.cancelled;
        outcome.cargo_stderr = result.cargo_stderr;
        outcome.executables.extend(result.executables);
        outcome.compile_errors.extend(result.compile_errors);
        if outcome.cancelled || !round.labs.is_empty() || round.all_tests {
            // `cargo build --keep-going` settled everything in one go.
            return Ok(outcome);
        }
        let before = round.tests.len();
        round.tests.retain(|bin| {
            outcome.executable(bin, Artifact::Tests).is_none()
                && !outcome.compile_errors.contains_key(bin)
        });
        // Done, or no progress: cargo failed before compiling anything of ours.
        if round.tests.is_empty() || round.tests.len() == before {
            return Ok(outcome);
        }
    }
}

fn build_once(plan: &BuildPlan, cancel: &Cancel, progress: ProgressFn) -> Result<BuildOutcome> {
    let mut cmd = command(plan);
    let mut child = Supervised::spawn(&mut cmd).context("cannot run cargo; is Rust installed?")?;
    let (tx, rx) = mpsc::channel();
    let stdout = child.child_mut().stdout.take().expect("piped");
    let stderr = child.child_mut().stderr.take().expect("piped");
    let tx_err = tx.clone();
    let readers = [
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(Line::Json(line));
            }
        }),
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx_err.send(Line::Stderr(line));
            }
        }),
    ];

    let mut outcome = BuildOutcome::default();
    let mut handle = |line: Line, outcome: &mut BuildOutcome| match line {
        Line::Json(json) => {
            if let Some(done) = record_message(&json, outcome) {
                progress(&done);
            }
        }
        Line::Stderr(text) => {
            let trimmed = text.trim();
            if !trimmed.is_empty() {
                progress(trimmed);
            }
            outcome.cargo_stderr.push_str(&text);
            outcome.cargo_stderr.push('\n');
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(line) => handle(line, &mut outcome),
            // Both readers finished: cargo closed its output, so it has exited.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if cancel.is_cancelled() {
            child.kill_group();
            outcome.cancelled = true;
            break;
        }
    }
    for reader in readers {
        let _ = reader.join();
    }
    // Messages that arrived between the last receive and the readers' end.
    while let Ok(line) = rx.try_recv() {
        handle(line, &mut outcome);
    }
    let _ = child.child_mut().wait();
    Ok(outcome)
}

/// Records one JSON message; returns a progress note when a binary of ours got built.
fn record_message(json: &str, outcome: &mut BuildOutcome) -> Option<String> {
    let msg = serde_json::from_str::<Message>(json).ok()?;
    let target = msg.target?;
    match msg.reason.as_str() {
        "compiler-artifact" => {
            if let Some(exe) = msg.executable {
                let artifact = match msg.profile {
                    Some(Profile { test: true }) => Artifact::Tests,
                    _ => Artifact::Lab,
                };
                let note = format!("built {}", target.name);
                outcome.executables.insert((target.name, artifact), exe);
                return Some(note);
            }
        }
        "compiler-message" => {
            if let Some(diag) = msg.message
                && diag.level.starts_with("error")
                && let Some(rendered) = diag.rendered
            {
                let errors = outcome.compile_errors.entry(target.name).or_default();
                // The test harness and the program report the same error: show it once.
                if !errors.contains(&rendered) {
                    errors.push_str(&rendered);
                }
            }
        }
        _ => {}
    }
    None
}

/// The cargo that built us when run through `cargo run`, else the one on PATH.
pub fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The part of cargo's stderr worth showing when a build failed without compile errors: its
/// `error:` lines and what follows them, not the "Compiling ..." chatter.
pub fn cargo_failure_text(stderr: &str) -> String {
    let start = stderr.find("error").unwrap_or(0);
    stderr[start..].trim_end().to_string()
}
