//! Progress is never lost or corrupted, whenever sdlings is killed. `sdlings hint` and
//! `sdlings check` are SIGKILLed at random moments (from a seeded generator, so a failure can be
//! replayed) while they read-modify-write `.sdlings-state.toml`; after each kill the file must
//! parse, and say exactly what the completed commands wrote, plus at most the killed one's change.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::common::TempWorkbook;

const STATE: &str = ".sdlings-state.toml";

/// SplitMix64: a tiny seeded generator, so the kill times of a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn sdlings(wb: &TempWorkbook) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("sdlings"));
    cmd.current_dir(wb.path())
        .env_remove("SDLINGS_TARGET_DIR")
        .env("NO_COLOR", "1")
        .env_remove("CARGO_TARGET_DIR");
    cmd
}

/// What a state file records, per exercise: (done, first_passed, hints_revealed).
type Records = BTreeMap<String, (bool, Option<String>, usize)>;

/// Reads the state file as the TOML it must be; `None` if there is none.
fn records(root: &Path) -> Option<Records> {
    let text = match fs::read_to_string(root.join(STATE)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot read the state file: {e}"),
    };
    let value: toml::Table = toml::from_str(&text)
        .unwrap_or_else(|e| panic!("the state file is not valid TOML: {e}\n{text}"));
    assert_eq!(value["format_version"].as_integer(), Some(1), "{text}");
    let mut records = Records::new();
    if let Some(exercises) = value.get("exercises") {
        for (name, record) in exercises.as_table().unwrap() {
            records.insert(
                name.clone(),
                (
                    record
                        .get("done")
                        .and_then(toml::Value::as_bool)
                        .unwrap_or(false),
                    record
                        .get("first_passed")
                        .and_then(toml::Value::as_str)
                        .map(str::to_string),
                    record
                        .get("hints_revealed")
                        .and_then(toml::Value::as_integer)
                        .unwrap_or(0) as usize,
                ),
            );
        }
    }
    Some(records)
}

fn hints_revealed(records: &Option<Records>, name: &str) -> usize {
    records
        .as_ref()
        .and_then(|r| r.get(name))
        .map_or(0, |r| r.2)
}

/// Every exercise with its number of hints, from the workbook's info.toml.
fn hint_counts(wb: &TempWorkbook) -> Vec<(String, usize)> {
    let info: toml::Table = toml::from_str(&wb.read("info.toml")).unwrap();
    info["exercises"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["hints"].as_array().unwrap().len(),
            )
        })
        .collect()
}

fn leftovers(root: &Path) -> usize {
    fs::read_dir(root)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".sdlings-state.toml.tmp-")
        })
        .count()
}

/// Starts `cmd` with stdout piped (for the caller) and stderr collected by a thread, so that the
/// child never blocks on a full pipe.
fn spawn(mut cmd: Command) -> (Child, JoinHandle<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let collector = thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    (child, collector)
}

/// Waits for a child that may have been killed; `true` if it exited on its own with success.
fn completed((mut child, stderr): (Child, JoinHandle<String>), what: &str) -> bool {
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    match status.code() {
        Some(0) => true,
        // Killed by our SIGKILL.
        None => false,
        Some(code) => panic!("{what} failed with exit code {code}:\n{stderr}"),
    }
}

#[test]
fn killing_hint_at_any_moment_never_loses_or_corrupts_hints() {
    let wb = TempWorkbook::new();
    let exercises = hint_counts(&wb);
    // A leftover from a writer killed long ago, which must never be read.
    fs::write(
        wb.path().join(format!("{STATE}.tmp-999999")),
        "format_version = 1\n[exercises.welcome\nhalf a file",
    )
    .unwrap();

    // What the file must say: every hint revealed by a command that completed.
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    let mut rng = Rng(0x5d1_1265);
    let (mut finished, mut killed_before, mut killed_after, mut resets) = (0, 0, 0, 0);
    let mut next = 0;
    for round in 0..200 {
        // Hints stop at the exercise's count, where a lost increment would go unnoticed: take
        // the exercises in turn, and when every one is at its count, start a fresh file.
        let open = |expected: &BTreeMap<String, usize>, (name, count): &(String, usize)| {
            expected.get(name).copied().unwrap_or(0) < *count
        };
        if !exercises.iter().any(|e| open(&expected, e)) {
            fs::remove_file(wb.path().join(STATE)).unwrap();
            expected.clear();
            resets += 1;
        }
        while !open(&expected, &exercises[next % exercises.len()]) {
            next += 1;
        }
        let (name, count) = &exercises[next % exercises.len()];
        next += 1;

        let before = expected.get(name).copied().unwrap_or(0);
        let mut cmd = sdlings(&wb);
        cmd.args(["hint", name]);
        let (mut child, stderr) = spawn(cmd);
        thread::sleep(Duration::from_micros(rng.below(20_001)));
        let _ = child.kill();
        let done = completed(
            (child, stderr),
            &format!("round {round}: sdlings hint {name}"),
        );

        let found = records(wb.path());
        let now = hints_revealed(&found, name);
        let incremented = (before + 1).min(*count);
        if done {
            finished += 1;
            assert_eq!(now, incremented, "round {round}: a completed hint was lost");
        } else {
            assert!(
                now == before || now == incremented,
                "round {round}: {name} had {before} hints revealed; after a killed hint the file says {now}"
            );
            if now == before {
                killed_before += 1;
            } else {
                killed_after += 1;
            }
        }
        expected.insert(name.clone(), now);
        // Nothing else changed, and nothing was lost.
        for (other, &revealed) in &expected {
            assert_eq!(
                hints_revealed(&found, other),
                revealed,
                "round {round}: the hints of {other} changed while {name}'s were revealed"
            );
        }
        if let Some(found) = &found {
            assert!(
                found.keys().all(|k| expected.contains_key(k)),
                "round {round}: unexpected records {found:?}"
            );
        } else {
            assert!(
                expected.values().all(|&v| v == 0),
                "round {round}: the file is gone"
            );
        }
    }
    eprintln!(
        "hint runs: {finished} completed, {killed_before} killed before saving, \
         {killed_after} killed after saving; {resets} fresh files; {} temporary files left by killed writers",
        leftovers(wb.path())
    );

    // Left-over temporary files do not disturb later runs.
    sdlings(&wb).arg("list").assert_ok();
    let before = hints_revealed(&records(wb.path()), "welcome");
    sdlings(&wb).args(["hint", "welcome"]).assert_ok();
    assert_eq!(
        hints_revealed(&records(wb.path()), "welcome"),
        (before + 1).min(3)
    );
}

#[test]
fn killing_check_while_it_records_a_pass_keeps_every_earlier_pass() {
    let wb = TempWorkbook::new();
    let solved = [
        ("00_intro", "welcome"),
        ("00_intro", "reading_tests"),
        ("00_intro", "hit_counter"),
        ("01_caching", "lru_cache"),
    ];
    for (topic, name) in solved {
        wb.solve(topic, name);
    }
    let mut rng = Rng(0xc0ffee);
    // Passes recorded so far, with the time of their first pass, which must never change.
    let mut recorded: BTreeMap<&str, Option<String>> = BTreeMap::new();
    let (mut finished, mut killed) = (0, 0);
    for round in 0..16 {
        let (_, name) = solved[round % solved.len()];
        let mut cmd = sdlings(&wb);
        cmd.args(["check", name]);
        let (mut child, stderr) = spawn(cmd);
        // `check` prints the verdict, then records the pass: kill it just then (give or take a
        // few milliseconds), while it locks, reads, writes, syncs and renames the state file.
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let headline = format!("✓ {name}: all ");
        let mut line = String::new();
        loop {
            line.clear();
            let read = stdout.read_line(&mut line).unwrap();
            assert!(
                read > 0,
                "round {round}: `check {name}` ended without a pass"
            );
            if line.starts_with(&headline) {
                break;
            }
        }
        thread::sleep(Duration::from_micros(rng.below(1_501)));
        let _ = child.kill();
        let done = completed(
            (child, stderr),
            &format!("round {round}: sdlings check {name}"),
        );

        let found = records(wb.path()).unwrap_or_default();
        for (earlier, first_passed) in &recorded {
            let record = found.get(*earlier);
            assert!(
                record.is_some_and(|r| r.0 && r.1 == *first_passed),
                "round {round}: killing `check {name}` changed the earlier pass of {earlier}: {record:?}"
            );
        }
        if done {
            finished += 1;
        } else {
            killed += 1;
        }
        match found.get(name) {
            Some((true, first_passed, _)) => {
                assert!(first_passed.is_some());
                recorded.entry(name).or_insert_with(|| first_passed.clone());
            }
            _ => assert!(
                !done,
                "round {round}: a completed check of {name} was not recorded"
            ),
        }
    }
    eprintln!("check runs: {finished} completed, {killed} killed after their verdict");
    // A pass killed before it was recorded is recorded by the next check, as it would be for a
    // learner who runs it again.
    for (_, name) in solved {
        sdlings(&wb).args(["check", name]).assert_ok();
    }
    let found = records(wb.path()).unwrap();
    for (_, name) in solved {
        assert!(found[name].0, "{name} is not recorded as done: {found:?}");
    }
    for (earlier, first_passed) in &recorded {
        assert_eq!(&found[*earlier].1, first_passed, "{earlier}");
    }
}

trait AssertOk {
    fn assert_ok(&mut self);
}

impl AssertOk for Command {
    fn assert_ok(&mut self) {
        let out = self.output().unwrap();
        assert!(
            out.status.success(),
            "{:?} failed: {}\n{}",
            self,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
