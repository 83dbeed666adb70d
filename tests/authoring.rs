//! Authors and installed copies: `dev new` scaffolds an exercise that `dev check` accepts once
//! written, `init` writes a fresh workbook from the built-in curriculum, completions print.

mod common;

use std::fs;

use assert_cmd::Command;
use common::TempWorkbook;
use predicates::prelude::*;
use predicates::str::contains;

#[test]
fn a_scaffolded_exercise_is_refused_until_written_then_passes_dev_check() {
    let (exercises, topics) = common::curriculum_size();
    let wb = TempWorkbook::new();
    wb.sdlings()
        .args(["dev", "new", "01_caching/lfu_cache"])
        .assert()
        .success()
        .stdout(contains("Scaffolded `lfu_cache` in topic 01_caching"));
    wb.sdlings()
        .args(["dev", "new", "07_message_queues/log_queue"])
        .assert()
        .success();
    // The new exercises take their place in the curriculum, after the topic's last exercise.
    wb.sdlings()
        .arg("list")
        .assert()
        .success()
        .stdout(contains(
            "stampede                     locked\n  - lfu_cache",
        ))
        .stdout(contains("07_message_queues · Message Queues 0/1"));

    wb.sdlings()
        .args(["dev", "check", "--repeat", "1"])
        .assert()
        .code(1)
        .stdout(contains("lfu_cache: needs at least two written hints"))
        .stdout(contains(
            "exercises/01_caching/lfu_cache.rs: still has TODO(author) placeholders",
        ))
        .stdout(contains(
            "exercises/07_message_queues/README.md still has TODO(author)",
        ))
        .stdout(contains(
            "solutions/01_caching/lfu_cache.mutants.toml: still has TODO(author) placeholders",
        ));

    // The author writes the exercise, its solution, the README and the hints.
    for rel in [
        "exercises/01_caching/lfu_cache.rs",
        "solutions/01_caching/lfu_cache.rs",
        "solutions/01_caching/lfu_cache.mutants.toml",
        "exercises/07_message_queues/log_queue.rs",
        "solutions/07_message_queues/log_queue.rs",
        "solutions/07_message_queues/log_queue.mutants.toml",
        "exercises/07_message_queues/README.md",
    ] {
        wb.write(rel, &wb.read(rel).replace("TODO(author)", "Written"));
    }
    wb.write(
        "info.toml",
        &wb.read("info.toml")
            .replace("TODO: a nudge", "A nudge")
            .replace("TODO: close to", "Close to"),
    );
    wb.sdlings()
        .args(["dev", "check", "--update-originals", "--repeat", "2"])
        .assert()
        .success()
        .stdout(contains(format!(
            "{} exercises in {} topics are consistent",
            exercises + 2,
            topics + 1
        )));
    // The scaffolded mutant, once written, is a mistake the scaffolded test rejects.
    wb.sdlings()
        .args(["dev", "mutants", "lfu_cache", "log_queue"])
        .assert()
        .success()
        .stdout(
            contains("lfu_cache: Written: a mistake").and(contains("caught by gives_the_answer")),
        )
        .stdout(contains(
            "the tests reject all 2 plausible wrong implementations",
        ));
}

#[test]
fn dev_new_refuses_bad_names_and_existing_exercises() {
    let wb = TempWorkbook::new();
    let info = wb.read("info.toml");
    wb.sdlings()
        .args(["dev", "new", "01_caching/lru_cache"])
        .assert()
        .code(2)
        .stderr(contains("already exists"));
    wb.sdlings()
        .args(["dev", "new", "queues/x"])
        .assert()
        .code(2)
        .stderr(contains("name its directory NN_name"));
    wb.sdlings()
        .args(["dev", "new", "lfu_cache"])
        .assert()
        .code(2)
        .stderr(contains("expected TOPIC/NAME"));
    assert_eq!(
        wb.read("info.toml"),
        info,
        "a refused scaffold changes nothing"
    );
}

#[test]
fn init_writes_a_fresh_workbook_from_the_built_in_curriculum() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("my-workbook");
    Command::cargo_bin("sdlings")
        .unwrap()
        .args(["init"])
        .arg(&target)
        .assert()
        .success()
        .stdout(contains("A fresh sdlings workbook is ready"));
    for file in [
        "info.toml",
        "Cargo.toml",
        "Cargo.lock",
        ".gitignore",
        "exercises/Cargo.toml",
        "exercises/kit/src/lib.rs",
        "exercises/00_intro/README.md",
        "exercises/01_caching/lru_cache.rs",
        "exercises/.originals/01_caching/lru_cache.rs",
        "solutions/01_caching/lru_cache.rs",
        "sets/week1-caching.toml",
    ] {
        assert!(target.join(file).is_file(), "{file} is missing");
    }
    // Exercises are written pristine, from the original copies.
    let repo = common::repo_root();
    assert_eq!(
        fs::read_to_string(target.join("exercises/01_caching/lru_cache.rs")).unwrap(),
        fs::read_to_string(repo.join("exercises/.originals/01_caching/lru_cache.rs")).unwrap()
    );
    // The progress file is kept in version control; build output and half-written progress
    // files (left by a killed sdlings) are not.
    let gitignore = fs::read_to_string(target.join(".gitignore")).unwrap();
    assert!(gitignore.lines().any(|l| l == "/target"), "{gitignore}");
    assert!(
        gitignore.lines().any(|l| l == "/.sdlings-state.toml.tmp-*"),
        "{gitignore}"
    );
    assert!(
        !gitignore.lines().any(
            |l| l.trim_end_matches('*') == "/.sdlings-state.toml" || l == ".sdlings-state.toml"
        ),
        "the progress file itself must not be ignored:\n{gitignore}"
    );

    // The new workbook works: its local info.toml is used.
    Command::cargo_bin("sdlings")
        .unwrap()
        .current_dir(&target)
        .arg("list")
        .assert()
        .success()
        .stdout(contains("welcome                      current"));

    // Never over existing work.
    Command::cargo_bin("sdlings")
        .unwrap()
        .args(["init"])
        .arg(&target)
        .assert()
        .code(2)
        .stderr(contains("is not empty"));
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_sdlings()"),
        ("zsh", "#compdef sdlings"),
        ("fish", "complete -c sdlings"),
    ] {
        Command::cargo_bin("sdlings")
            .unwrap()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(contains(marker))
            .stdout(contains("verify"));
    }
    Command::cargo_bin("sdlings")
        .unwrap()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(contains("invalid value").and(contains("bash")));
}
