//! Building exercises with cargo.
//!
//! One cargo invocation builds the test binaries of any number of exercises; its JSON messages
//! tell us, per binary, either the executable's path or the compiler's diagnostics (already
//! rendered the way rustc prints them). Cargo's own text on stderr is kept for the rare failure
//! that is not a compile error (a broken Cargo.toml, no network for a first download) and is
//! otherwise only used to report progress.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::process::{Cancel, Supervised};
use crate::workbook::Workbook;

/// Which of the two workbook packages to build from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Package {
    Exercises,
    Solutions,
    /// The scratch package `sdlings dev mutants` writes in the build directory.
    Mutants,
}

impl Package {
    pub fn name(self) -> &'static str {
        match self {
            Package::Exercises => "exercises",
            Package::Solutions => "solutions",
            Package::Mutants => "mutants",
        }
    }

    /// The Cargo binary name of an exercise in this package.
    pub fn bin_name(self, exercise: &str) -> String {
        match self {
            Package::Exercises | Package::Mutants => exercise.to_string(),
            Package::Solutions => format!("{exercise}_sol"),
        }
    }
}

/// Test binaries (run by checks) or plain binaries (the labs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    Tests,
    Lab,
}

/// A line of progress from cargo, e.g. "Compiling tokio v1.48.0".
pub type ProgressFn<'a> = &'a mut dyn FnMut(&str);

#[derive(Debug, Default)]
pub struct BuildOutcome {
    /// Binary name → built executable.
    pub executables: HashMap<String, PathBuf>,
    /// Binary name → rendered compiler errors.
    pub compile_errors: HashMap<String, String>,
    /// Cargo's own stderr, for failures that are not compile errors.
    pub cargo_stderr: String,
    pub cancelled: bool,
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    executable: Option<PathBuf>,
    #[serde(default)]
    message: Option<Diagnostic>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
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

/// Builds `bins` of `package`, continuing past binaries that fail to compile so that every one
/// of them ends up either built or with its errors (cargo itself stops at the first failure).
pub fn build(
    workbook: &Workbook,
    package: Package,
    bins: &[String],
    artifact: Artifact,
    color: bool,
    cancel: &Cancel,
    progress: ProgressFn,
) -> Result<BuildOutcome> {
    let mut outcome = BuildOutcome::default();
    let mut remaining: Vec<String> = bins.to_vec();
    while !remaining.is_empty() {
        let round = build_once(
            workbook, package, &remaining, artifact, color, cancel, progress,
        )?;
        outcome.cancelled = round.cancelled;
        outcome.cargo_stderr = round.cargo_stderr;
        outcome.executables.extend(round.executables);
        outcome.compile_errors.extend(round.compile_errors);
        if outcome.cancelled {
            break;
        }
        let before = remaining.len();
        remaining.retain(|b| {
            !outcome.executables.contains_key(b) && !outcome.compile_errors.contains_key(b)
        });
        // No progress means cargo failed before compiling anything of ours: report as it is.
        if remaining.len() == before {
            break;
        }
    }
    Ok(outcome)
}

fn build_once(
    workbook: &Workbook,
    package: Package,
    bins: &[String],
    artifact: Artifact,
    color: bool,
    cancel: &Cancel,
    progress: ProgressFn,
) -> Result<BuildOutcome> {
    let mut cmd = Command::new(cargo_program());
    match artifact {
        Artifact::Tests => cmd.args(["test", "--no-run"]),
        Artifact::Lab => cmd.arg("build"),
    };
    cmd.args(["--package", package.name()]);
    if package == Package::Mutants {
        // Its own workspace, outside the workbook's: see dev::mutants.
        cmd.arg("--manifest-path")
            .arg(crate::dev::mutants::package_dir(workbook).join("Cargo.toml"))
            // Each mutant is compiled once: incremental state would only fill the disk.
            .env("CARGO_INCREMENTAL", "0");
    }
    for bin in bins {
        cmd.args(["--bin", bin]);
    }
    let format = if color {
        "json-diagnostic-rendered-ansi"
    } else {
        "json"
    };
    cmd.arg(format!("--message-format={format}"))
        .arg("--target-dir")
        .arg(workbook.build_dir())
        .current_dir(&workbook.root)
        .env("CARGO_TERM_COLOR", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

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
                let note = format!("built {}", target.name);
                outcome.executables.insert(target.name, exe);
                return Some(note);
            }
        }
        "compiler-message" => {
            if let Some(diag) = msg.message
                && diag.level.starts_with("error")
                && let Some(rendered) = diag.rendered
            {
                outcome
                    .compile_errors
                    .entry(target.name)
                    .or_default()
                    .push_str(&rendered);
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
