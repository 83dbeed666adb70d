//! The CLI as a learner and an author meet it, verb by verb, in throw-away copies of the
//! workbook.

use crate::common;

use std::fs;

use crate::common::TempWorkbook;
use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

#[test]
fn every_verb_has_help() {
    for verb in [
        "watch",
        "list",
        "check",
        "hint",
        "run",
        "reset",
        "solution",
        "verify",
        "report",
        "set",
        "init",
        "completions",
        "dev",
    ] {
        Command::cargo_bin("sdlings")
            .unwrap()
            .args([verb, "--help"])
            .assert()
            .success()
            .stdout(contains("Usage: sdlings"));
    }
    Command::cargo_bin("sdlings")
        .unwrap()
        .args(["dev", "check", "--help"])
        .assert()
        .success()
        .stdout(contains("--repeat"));
    Command::cargo_bin("sdlings")
        .unwrap()
        .args(["report", "merge", "--help"])
        .assert()
        .success()
        .stdout(contains("--format <FORMAT>"));
}

#[test]
fn usage_errors_exit_with_2() {
    Command::cargo_bin("sdlings")
        .unwrap()
        .arg("frobnicate")
        .assert()
        .code(2);
}

#[test]
fn outside_a_workbook_says_where_to_run_it() {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("sdlings")
        .unwrap()
        .current_dir(dir.path())
        .arg("list")
        .assert()
        .code(2)
        .stderr(contains("is not inside an sdlings workbook"));
}

#[test]
fn list_shows_topics_statuses_and_progress() {
    let wb = TempWorkbook::new();
    wb.sdlings()
        .arg("list")
        .assert()
        .success()
        .stdout(contains("00_intro · Introduction 0/3"))
        .stdout(contains("welcome                      current"))
        .stdout(contains("reading_tests                pending"))
        .stdout(contains("lru_cache                    locked"))
        .stdout(contains(common::progress_bar(
            0,
            common::curriculum_size().0,
        )));
}

#[test]
fn a_scripted_learner_unlocks_the_next_topic_and_keeps_progress_across_restarts() {
    let wb = TempWorkbook::new();

    // The pristine exercise fails, with the failing test and its message.
    wb.sdlings()
        .arg("check")
        .assert()
        .code(1)
        .stdout(contains("✗ welcome: 3 of 3 tests fail"))
        .stdout(contains("not yet implemented"));

    // Saving a solution makes it pass, and the pass is recorded.
    wb.solve("00_intro", "welcome");
    wb.sdlings()
        .arg("check")
        .assert()
        .success()
        .stdout(contains("✓ welcome: all 3 tests pass"));
    wb.sdlings()
        .arg("list")
        .assert()
        .success()
        .stdout(contains("welcome                      done"))
        .stdout(contains("reading_tests                current"));

    // Finishing the intro unlocks caching.
    for name in ["reading_tests", "hit_counter"] {
        wb.solve("00_intro", name);
        wb.sdlings().args(["check", name]).assert().success();
    }
    // A fresh process (a restart) sees the same progress.
    wb.sdlings()
        .arg("list")
        .assert()
        .success()
        .stdout(contains("00_intro · Introduction 3/3"))
        .stdout(contains("lru_cache                    current"))
        .stdout(contains("ttl_cache                    pending"))
        .stdout(contains(common::progress_bar(
            3,
            common::curriculum_size().0,
        )));
    let state = wb.read(".sdlings-state.toml");
    assert!(
        state.contains("[exercises.hit_counter]\ndone = true"),
        "{state}"
    );

    // The solution of a done exercise is shown without --force.
    wb.sdlings()
        .args(["solution", "welcome"])
        .assert()
        .success()
        .stdout(contains("checkout-api"));

    // The lab of a done exercise runs.
    wb.sdlings()
        .args(["run", "welcome"])
        .assert()
        .success()
        .stdout(contains("checkout-api waits 500ms per call"));
}

#[test]
fn hints_are_revealed_one_at_a_time_and_remembered() {
    let wb = TempWorkbook::new();
    wb.sdlings()
        .arg("hint")
        .assert()
        .success()
        .stdout(contains("Hint 1/3:"))
        .stdout(contains("Hint 2/3:").not())
        .stdout(contains("2 more"));
    wb.sdlings()
        .args(["hint", "welcome"])
        .assert()
        .success()
        .stdout(contains("Hint 1/3:"))
        .stdout(contains("Hint 2/3:"));
    wb.sdlings().arg("hint").assert().success();
    wb.sdlings()
        .arg("hint")
        .assert()
        .success()
        .stdout(contains("Hint 3/3:"))
        .stdout(contains("That was the last hint"));
}

#[test]
fn reset_restores_the_original_and_keeps_a_backup() {
    let wb = TempWorkbook::new();
    let rel = "exercises/00_intro/welcome.rs";
    let original = wb.read(rel);
    wb.write(rel, "my half-finished work");

    // Without a terminal to confirm on, reset refuses and changes nothing.
    wb.sdlings()
        .args(["reset", "welcome"])
        .assert()
        .code(2)
        .stderr(contains("pass --yes"));
    assert_eq!(wb.read(rel), "my half-finished work");

    wb.sdlings()
        .args(["reset", "welcome", "--yes"])
        .assert()
        .success()
        .stdout(contains("back to its original text"))
        .stdout(contains(
            "Your version was saved to .sdlings/backups/welcome.",
        ));
    assert_eq!(wb.read(rel), original);
    let backups: Vec<_> = fs::read_dir(wb.path().join(".sdlings/backups"))
        .unwrap()
        .map(|e| fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(backups, vec!["my half-finished work".to_string()]);
}

#[test]
fn reset_takes_the_original_from_the_curriculum_built_into_sdlings_not_from_any_file() {
    // In a clone of the real curriculum, the original comes from the copy compiled into sdlings:
    // whatever the learner edits on disk (the exercise, its solution) cannot change it.
    let wb = TempWorkbook::curriculum();
    let rel = "exercises/01_caching/lru_cache.rs";
    let original = wb.read(rel);
    wb.write(rel, &original.replace("todo!(", "unimplemented!("));
    let sol = "solutions/01_caching/lru_cache.rs";
    wb.write(sol, &wb.read(sol).replace("todo!(", "unimplemented!("));
    wb.sdlings()
        .args(["reset", "lru_cache", "-y"])
        .assert()
        .success();
    assert_eq!(wb.read(rel), original);
}

#[test]
fn reset_in_a_workbook_of_ones_own_takes_the_first_committed_version() {
    // The fixture is not the built-in curriculum: its originals are what git first recorded.
    let wb = TempWorkbook::new();
    let rel = "exercises/01_caching/lru_cache.rs";
    let original = wb.read(rel);
    wb.write(
        rel,
        "fn main() {}
",
    );
    git_commit(&wb, "my work");
    wb.sdlings()
        .args(["reset", "lru_cache", "-y"])
        .assert()
        .success();
    assert_eq!(wb.read(rel), original);

    // Without git there is nothing to go back to: say so, change nothing.
    fs::remove_dir_all(wb.path().join(".git")).unwrap();
    wb.write(rel, "fn main() {}\n");
    wb.sdlings()
        .args(["reset", "lru_cache", "-y"])
        .assert()
        .code(2)
        .stderr(contains("there is no original of `lru_cache` to reset to"));
    assert_eq!(wb.read(rel), "fn main() {}\n");
}

fn git_commit(wb: &TempWorkbook, message: &str) {
    for args in [&["add", "."][..], &["commit", "-q", "-m", message]] {
        let status = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
            .args(args)
            .current_dir(wb.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

#[test]
fn solution_is_hidden_until_the_exercise_is_done() {
    let wb = TempWorkbook::new();
    wb.sdlings()
        .args(["solution", "welcome"])
        .assert()
        .code(2)
        .stderr(contains("not done yet"));
    wb.sdlings()
        .args(["solution", "welcome", "--force"])
        .assert()
        .success()
        .stdout(contains("// solutions/00_intro/welcome.rs"))
        .stdout(contains("checkout-api"));
}

#[test]
fn unknown_exercise_names_suggest_near_ones() {
    let wb = TempWorkbook::new();
    wb.sdlings()
        .args(["check", "lru"])
        .assert()
        .code(2)
        .stderr(contains("did you mean `lru_cache`?"));
}

#[test]
fn verify_checks_what_was_reached_and_summarises() {
    let wb = TempWorkbook::new();
    wb.solve("00_intro", "welcome");
    wb.sdlings()
        .arg("verify")
        .assert()
        .code(1)
        .stdout(contains("✓ welcome: all 3 tests pass"))
        .stdout(contains("○ reading_tests: not attempted"))
        .stdout(contains("1 passed, 0 failed, 2 not attempted"))
        .stdout(contains(format!(
            "{} locked exercises not checked",
            common::curriculum_size().0 - 3
        )));
    wb.sdlings()
        .arg("list")
        .assert()
        .stdout(contains("welcome                      done"));
}

#[test]
fn a_malformed_info_toml_names_file_line_and_field() {
    let wb = TempWorkbook::new();
    let info = wb.read("info.toml");
    wb.write(
        "info.toml",
        &info.replacen("topic = \"caching\"", "topic = \"cachng\"", 1),
    );
    wb.sdlings()
        .arg("list")
        .assert()
        .code(2)
        .stderr(contains("info.toml:"))
        .stderr(contains("field `exercises.topic`"))
        .stderr(contains("`cachng`"));

    wb.write("info.toml", &info.replacen("topic = ", "topik = ", 1));
    wb.sdlings()
        .arg("list")
        .assert()
        .code(2)
        .stderr(contains("info.toml: TOML parse error at line"))
        .stderr(contains("topik"));

    wb.write(
        "info.toml",
        &info.replacen(
            "topic = \"intro\"\n",
            "topic = \"intro\"\npath = \"../../../etc/passwd\"\n",
            1,
        ),
    );
    wb.sdlings()
        .arg("list")
        .assert()
        .code(2)
        .stderr(contains("must be a relative path inside the workbook"));
}

#[test]
fn a_damaged_state_file_gets_a_clear_message_and_is_left_alone() {
    let wb = TempWorkbook::new();
    wb.write(
        ".sdlings-state.toml",
        "format_version = 1\n[exercises.welcome\n",
    );
    wb.sdlings()
        .arg("list")
        .assert()
        .code(2)
        .stderr(contains("the progress file"))
        .stderr(contains("is damaged"))
        .stderr(contains(
            "mv .sdlings-state.toml .sdlings-state.toml.damaged",
        ))
        .stderr(contains("sdlings verify --all"));
    assert_eq!(
        wb.read(".sdlings-state.toml"),
        "format_version = 1\n[exercises.welcome\n"
    );
}

#[test]
fn an_exercise_that_loops_forever_is_stopped_at_its_time_limit() {
    let wb = TempWorkbook::new();
    wb.set_time_limit("welcome", 1);
    let rel = "exercises/00_intro/welcome.rs";
    wb.write(
        rel,
        &wb.read(rel).replacen(
            "todo!(\"name the service\")",
            "loop { std::hint::spin_loop() }",
            1,
        ),
    );
    wb.sdlings()
        .arg("check")
        .assert()
        .code(1)
        .stdout(contains("welcome: stopped after the 1s time limit"))
        .stdout(contains("Look for a loop that never ends"));
}

#[test]
fn a_stack_overflow_is_reported_as_such() {
    let wb = TempWorkbook::new();
    let rel = "exercises/00_intro/welcome.rs";
    wb.write(
        rel,
        &wb.read(rel).replacen(
            "todo!(\"name the service\")",
            "fn deeper(n: u64) -> u64 { if n == u64::MAX { 0 } else { 1 + deeper(std::hint::black_box(n + 1)) } }\n    if deeper(0) > 0 { \"x\" } else { \"y\" }",
            1,
        ),
    );
    wb.sdlings()
        .arg("check")
        .assert()
        .code(1)
        .stdout(contains("crashed: stack overflow in `"));
}

#[test]
fn an_exercise_that_allocates_without_end_is_stopped_and_reported() {
    let wb = TempWorkbook::new();
    let rel = "exercises/00_intro/welcome.rs";
    wb.write(
        rel,
        &wb.read(rel).replacen(
            "todo!(\"name the service\")",
            "let mut hoard = Vec::new(); loop { hoard.push(vec![0u8; 1 << 20]); }",
            1,
        ),
    );
    wb.sdlings()
        .arg("check")
        .assert()
        .code(1)
        .stdout(contains("crashed: ran out of memory"));
}

#[test]
fn compile_errors_are_shown_as_rustc_renders_them() {
    let wb = TempWorkbook::new();
    let rel = "exercises/00_intro/welcome.rs";
    wb.write(
        rel,
        &wb.read(rel)
            .replacen("todo!(\"name the service\")", "42", 1),
    );
    wb.sdlings()
        .arg("check")
        .assert()
        .code(1)
        .stdout(contains("welcome: does not compile"))
        .stdout(contains("error[E0308]: mismatched types"))
        .stdout(contains("--> exercises/00_intro/welcome.rs:"))
        .stdout(contains("Compiling").not());
}

#[test]
fn check_with_a_seed_replays_only_that_seed_and_records_nothing() {
    let wb = TempWorkbook::new();
    wb.solve("00_intro", "welcome");
    // A test that sees exactly what a seeded property would: the replay seed, and never a window.
    let rel = "exercises/00_intro/welcome.rs";
    let probe = "#[test]\n    fn sees_only_the_seed_sdlings_was_asked_for() {\n        \
                 let seed = std::env::var(\"SDLINGS_SEED\").ok();\n        \
                 assert!(seed.is_none() || seed.as_deref() == Some(\"7\"), \"saw {seed:?}\");\n        \
                 assert!(std::env::var(\"SDLINGS_SEED_BASE\").is_err());\n    }\n\n    #[test]\n    \
                 fn service_name_is";
    wb.write(
        rel,
        &wb.read(rel)
            .replacen("#[test]\n    fn service_name_is", probe, 1),
    );
    assert!(wb.read(rel).contains("sees_only_the_seed"));

    wb.sdlings()
        .args(["check", "welcome", "--seed", "7"])
        .env("SDLINGS_SEED_BASE", "5000000")
        .assert()
        .success()
        .stdout(contains("welcome: all 4 tests pass"))
        .stdout(contains(
            "Replayed seed 7 only: a pass on one seed is not recorded",
        ));
    wb.sdlings()
        .arg("list")
        .assert()
        .stdout(contains("welcome                      current"));

    // A variable left exported in the learner's shell does not narrow a real check.
    wb.sdlings()
        .args(["check", "welcome"])
        .env("SDLINGS_SEED", "3")
        .env("SDLINGS_SEED_BASE", "5000000")
        .assert()
        .success();
    wb.sdlings()
        .arg("list")
        .assert()
        .stdout(contains("welcome                      done"));
}
