//! The watcher driven like a learner's editor would drive it, in plain mode (no terminal): saves
//! are real file writes, keys are lines on stdin, verdicts are lines on stdout.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use crate::common::TempWorkbook;

/// A generous bound for one step; only reached if the watcher is broken (the test then fails
/// with the output so far instead of hanging forever).
const STEP_LIMIT: Duration = Duration::from_secs(300);

struct Watcher {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Watcher {
    fn start(wb: &TempWorkbook) -> Watcher {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("sdlings"))
            .arg("watch")
            .current_dir(wb.path())
            .env_remove("SDLINGS_TARGET_DIR")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
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

    /// Waits for a line containing `text`, returning it.
    fn expect(&mut self, text: &str) -> String {
        loop {
            match self.lines.recv_timeout(STEP_LIMIT) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "the watcher never printed {text:?}; it printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin and waits for the watcher to exit on its own.
    fn finish(mut self) -> (std::process::ExitStatus, Vec<String>) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.try_iter());
        (status, self.seen)
    }
}

#[test]
fn saving_a_solution_passes_runs_the_lab_and_n_moves_on() {
    let wb = TempWorkbook::new();
    let mut watcher = Watcher::start(&wb);
    watcher.expect("watching exercises/00_intro/welcome.rs");
    watcher.expect("✗ welcome: 3 of 3 tests fail");

    wb.solve("00_intro", "welcome");
    watcher.expect("✓ welcome: all 3 tests pass");
    watcher.expect("lab output:");
    watcher.expect("send n for the next exercise");

    watcher.send("h");
    watcher.expect("Hint 1/3:");
    watcher.send("n");
    watcher.expect("now on reading_tests (exercises/00_intro/reading_tests.rs)");
    watcher.expect("✗ reading_tests");

    watcher.send("l lru_cache");
    watcher.expect("`lru_cache` is locked");

    // `n` is refused until the exercise passes.
    watcher.send("n");
    watcher.expect("Finish this exercise first");

    // Finishing the topic names the next one and unlocks it.
    wb.solve("00_intro", "reading_tests");
    watcher.expect("✓ reading_tests");
    watcher.expect("send n for the next exercise");
    watcher.send("n");
    watcher.expect("now on hit_counter");
    wb.solve("00_intro", "hit_counter");
    watcher.expect("✓ hit_counter");
    watcher.expect(
        "Topic 00_intro · Introduction is complete. Next topic: 01_caching · Caching — start with its README, exercises/01_caching/README.md.",
    );
    watcher.send("n");
    watcher.expect("now on lru_cache (exercises/01_caching/lru_cache.rs)");
    watcher.expect("✗ lru_cache");

    let (status, _) = watcher.finish();
    assert!(status.success());
    assert!(
        wb.read(".sdlings-state.toml")
            .contains("current = \"lru_cache\"")
    );
}

#[test]
fn a_burst_of_saves_leads_to_one_verdict_for_the_final_content() {
    let wb = TempWorkbook::new();
    let mut watcher = Watcher::start(&wb);
    watcher.expect("✗ welcome: 3 of 3 tests fail");

    // An editor that truncates, writes in pieces, and finally writes the real content.
    let rel = "exercises/00_intro/welcome.rs";
    let solved = wb.read("solutions/00_intro/welcome.rs");
    wb.write(rel, "");
    wb.write(rel, "fn main() {");
    wb.write(rel, &solved);
    watcher.expect("✓ welcome: all 3 tests pass");

    let (status, seen) = watcher.finish();
    assert!(status.success());
    let verdicts: Vec<&String> = seen
        .iter()
        .filter(|l| l.starts_with("✓ welcome") || l.starts_with("✗ welcome"))
        .collect();
    // One for the start-up check, one for the burst: the half-written states never got a
    // verdict of their own.
    assert_eq!(verdicts.len(), 2, "{seen:#?}");
}

#[test]
fn a_second_watcher_on_the_same_workbook_is_refused() {
    let wb = TempWorkbook::new();
    let mut first = Watcher::start(&wb);
    first.expect("watching");
    wb.sdlings()
        .arg("watch")
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "another sdlings watcher is already running in this workbook",
        ));
    let (status, _) = first.finish();
    assert!(status.success());
}
