//! Authors and installed copies: `dev new` scaffolds an exercise that `dev check` accepts once
//! written, `init` writes a fresh workbook from the built-in curriculum, completions print.

use crate::common;

use std::fs;

use crate::common::TempWorkbook;
use assert_cmd::Command;
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
            "cache_aside                  locked\n  - lfu_cache",
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
        .args(["dev", "check", "--repeat", "2"])
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
        "solutions/01_caching/lru_cache.rs",
        "sets/week1-caching.toml",
    ] {
        assert!(target.join(file).is_file(), "{file} is missing");
    }
    // Exercises are written as shipped.
    let repo = common::repo_root();
    assert_eq!(
        fs::read_to_string(target.join("exercises/01_caching/lru_cache.rs")).unwrap(),
        fs::read_to_string(repo.join("exercises/01_caching/lru_cache.rs")).unwrap()
    );
    assert!(!target.join("exercises/.originals").exists());
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

#[test]
fn dev_mutants_reports_survivors_broken_mutants_and_wrong_culprits() {
    let wb = TempWorkbook::new();
    let mutants = "solutions/02_rate_limiting/token_bucket.mutants.toml";
    let survivor = r#"
[[mutants]]
mistake = "a harmless edit of a comment"
replace = "// Whole seconds and fractions alike"
with = "// Seconds and fractions alike"
"#;
    let broken = r#"
[[mutants]]
mistake = "a typo the compiler catches"
replace = "return Acquire::TooLarge;"
with = "return Acquire::TooLargeTypo;"
"#;
    let misattributed = r#"
[[mutants]]
mistake = "strict comparison, blamed on the wrong test"
replace = "if self.tokens >= n {"
with = "if self.tokens > n {"
caught_by = ["a_request_larger_than_the_capacity_is_rejected_at_once_as_too_large"]
"#;
    // Mutants that compile are built together, as modules of one binary.
    wb.write(mutants, &format!("{survivor}{misattributed}"));
    wb.sdlings()
        .args(["dev", "mutants", "token_bucket"])
        .assert()
        .code(1)
        .stdout(contains(
            "token_bucket: a harmless edit of a comment — SURVIVED: all",
        ))
        .stdout(contains(
            "caught, but not by [\"a_request_larger_than_the_capacity_is_rejected_at_once_as_too_large\"] as `caught_by` says (failing: ",
        ))
        // Failing tests are named as in the file, without the batch's module.
        .stdout(contains("mutant_").not())
        .stdout(contains("2 of 2 mutants not rejected as they should be"));

    // One that does not compile sends its exercise's mutants to be built one by one, so the
    // broken one is named and the others are still judged.
    wb.write(mutants, &format!("{survivor}{broken}{misattributed}"));
    wb.sdlings()
        .args(["dev", "mutants", "token_bucket"])
        .assert()
        .code(1)
        .stdout(contains(
            "token_bucket: a harmless edit of a comment — SURVIVED: all",
        ))
        .stdout(contains(
            "token_bucket: a typo the compiler catches — does not compile",
        ))
        .stdout(contains(
            "caught, but not by [\"a_request_larger_than_the_capacity_is_rejected_at_once_as_too_large\"]",
        ))
        .stdout(contains("3 of 3 mutants not rejected as they should be"));
    // The workbook's own files are untouched: the mutants were built from copies.
    assert_eq!(
        wb.read("solutions/02_rate_limiting/token_bucket.rs"),
        fs::read_to_string(
            common::fixture_root().join("solutions/02_rate_limiting/token_bucket.rs")
        )
        .unwrap()
    );

    // An edit that does not pin down one place is refused before anything is built, by
    // `dev check` too.
    wb.write(
        mutants,
        "[[mutants]]\nmistake = \"vague\"\nreplace = \"self\"\nwith = \"this\"\n",
    );
    wb.sdlings()
        .args(["dev", "mutants", "token_bucket"])
        .assert()
        .failure()
        .stderr(contains("the text in `replace` occurs"))
        .stderr(contains("it must occur exactly once"));
    wb.sdlings()
        .args(["dev", "check", "--static"])
        .assert()
        .code(1)
        .stdout(contains("token_bucket: solutions/02_rate_limiting/token_bucket.mutants.toml, mutant 1 (\"vague\"): the text in `replace` occurs"));
}

#[test]
fn dev_check_finds_inconsistencies_without_building() {
    let wb = TempWorkbook::new();
    // A solution whose tests were weakened, a bin edited by hand, a stray file, a placeholder
    // hint and a README without its layers.
    let sol = "solutions/00_intro/welcome.rs";
    wb.write(sol, &wb.read(sol).replace("assert!(", "debug_assert!("));
    let manifest = "solutions/Cargo.toml";
    wb.write(
        manifest,
        &wb.read(manifest).replace(
            "name = \"hit_counter_sol\"",
            "name = \"hit_counter_solution\"",
        ),
    );
    wb.write("exercises/00_intro/stray.rs", "fn main() {}\n");
    let info = wb.read("info.toml");
    wb.write(
        "info.toml",
        &info.replacen("\"First hint for welcome.\"", "\"TODO: a hint\"", 1),
    );
    wb.write(
        "exercises/00_intro/README.md",
        "# Intro\n\n## Core fundamentals\n",
    );
    wb.sdlings()
        .args(["dev", "check", "--static"])
        .assert()
        .code(1)
        .stdout(contains(
            "welcome: the tests of the exercise and of its solution differ",
        ))
        .stdout(contains(
            "solutions/Cargo.toml: its [[bin]] list does not match info.toml; run `sdlings dev update`",
        ))
        .stdout(contains(
            "exercises/00_intro/stray.rs: not an exercise in info.toml",
        ))
        .stdout(contains("welcome: needs at least two written hints"))
        .stdout(contains("lacks the heading `## System design perspective`"));
    // `dev update` repairs the bins; the full check refuses to build a workbook with problems.
    wb.sdlings().args(["dev", "update"]).assert().success();
    wb.sdlings()
        .args(["dev", "check", "--static"])
        .assert()
        .code(1)
        .stdout(contains("does not match info.toml").not());
}

/// ttl_cache's solution stops passing (entries expire at once) and welcome's lab exits with 3.
fn break_ttl_cache_solution_and_welcome_lab(wb: &TempWorkbook) {
    let ttl = "solutions/01_caching/ttl_cache.rs";
    wb.write(
        ttl,
        &wb.read(ttl)
            .replace("let expires = now + self.ttl;", "let expires = now;"),
    );
    let lab = "solutions/00_intro/welcome.rs";
    wb.write(
        lab,
        &wb.read(lab)
            .replace("fn main() {\n", "fn main() {\n    std::process::exit(3);\n"),
    );
}

#[test]
fn dev_check_builds_and_runs_every_exercise_solution_and_lab() {
    let wb = TempWorkbook::new();
    wb.sdlings()
        .args(["dev", "check", "--repeat", "3"])
        .assert()
        .success()
        .stdout(contains(
            "every solution passed 3× in a row and every lab ran to its end",
        ));
    // A solution that no longer passes, an exercise that passes as shipped, a lab that fails.
    wb.solve("00_intro", "reading_tests");
    break_ttl_cache_solution_and_welcome_lab(&wb);
    wb.sdlings()
        .args(["dev", "check", "--repeat", "2"])
        .assert()
        .code(1)
        .stdout(contains("reading_tests: passes as shipped"))
        .stdout(contains("ttl_cache: the solution does not pass every time"))
        .stdout(contains("welcome: its lab did not end well"))
        .stdout(contains("(The lab exited with code 3.)"));
}

#[test]
fn dev_check_of_some_exercises_builds_and_runs_only_those() {
    let wb = TempWorkbook::new();
    // Broken elsewhere: a solution that no longer passes, a lab that fails.
    break_ttl_cache_solution_and_welcome_lab(&wb);
    wb.sdlings()
        .args(["dev", "check", "--repeat", "2", "lru_cache", "token_bucket"])
        .assert()
        .success()
        .stdout(contains("of the 2 of its"))
        .stdout(contains("exercises checked, every one fails as shipped"));
    wb.sdlings()
        .args([
            "dev",
            "check",
            "--repeat",
            "1",
            "lru_cache",
            "ttl_cache",
            "welcome",
        ])
        .assert()
        .code(1)
        .stdout(contains("ttl_cache: the solution does not pass every time"))
        .stdout(contains("welcome: its lab did not end well"))
        .stdout(contains("lru_cache").not());
    wb.sdlings()
        .args(["dev", "check", "lru_cach"])
        .assert()
        .code(2)
        .stderr(contains(
            "there is no exercise named `lru_cach`; did you mean `lru_cache`?",
        ));
}

#[test]
fn dev_check_holds_exercises_to_the_anatomy_targets_unless_exempted_with_a_reason() {
    let wb = TempWorkbook::new();
    let policy = "solutions/anatomy.toml";
    // Targets this workbook's tiny files cannot all meet: token_bucket is the longest file
    // (80 lines), welcome has one mistake listed.
    wb.write(
        policy,
        "[targets]\nmax_lines = 70\nfirst_todo_within = 8\nmin_mutants = 2\ntopic_median_lines = 49\n",
    );
    wb.sdlings()
        .args(["dev", "check", "--static"])
        .assert()
        .code(1)
        .stdout(contains(
            "token_bucket: the exercise file has 80 lines; at most 70",
        ))
        .stdout(contains("welcome: the first `todo!()` is on line 9"))
        .stdout(contains(
            "welcome: lists 1 plausible mistakes in its .mutants.toml; at least 2",
        ))
        .stdout(contains("topic caching: its median exercise file has"));
    // An exemption names the debt; one that is no longer needed is reported.
    wb.write(
        policy,
        "[targets]\nmax_lines = 70\nmin_mutants = 1\n\n[exempt]\ntoken_bucket = \"split pending\"\nwelcome = \"already fine\"\n",
    );
    wb.sdlings()
        .args(["dev", "check", "--static"])
        .assert()
        .code(1)
        .stdout(contains("token_bucket: the exercise file").not())
        .stdout(contains(
            "solutions/anatomy.toml: `welcome` meets the anatomy targets",
        ));
    wb.write(policy, "[targets]\nmax_line = 70\n");
    wb.sdlings()
        .args(["dev", "check", "--static"])
        .assert()
        .failure()
        .stderr(contains(
            "solutions/anatomy.toml must hold a [targets] table",
        ));
}

#[test]
fn a_package_group_keeps_its_dependencies_out_of_the_earlier_topics_builds() {
    let wb = TempWorkbook::new();
    let info = wb.read("info.toml");
    wb.write(
        "info.toml",
        &info.replacen(
            "dir = \"02_rate_limiting\"\n",
            "dir = \"02_rate_limiting\"\npackage = \"extra\"\n",
            1,
        ),
    );
    wb.sdlings()
        .args(["dev", "check", "--static"])
        .assert()
        .code(1)
        .stdout(contains("exercises/extra/Cargo.toml: missing"))
        .stdout(contains("solutions/extra/Cargo.toml: missing"));

    // The group's packages, with a dependency that only they use.
    let manifest = |name: &str, heavy: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\
             autobins = false\n\n[dependencies]\nheavy = {{ path = \"{heavy}\" }}\n"
        )
    };
    fs::create_dir_all(wb.path().join("exercises/extra/heavy/src")).unwrap();
    fs::create_dir_all(wb.path().join("solutions/extra")).unwrap();
    wb.write(
        "exercises/extra/heavy/Cargo.toml",
        "[package]\nname = \"heavy\"\nversion = \"0.0.0\"\nedition = \"2024\"\n",
    );
    wb.write(
        "exercises/extra/heavy/src/lib.rs",
        "pub const WEIGHT: u32 = 7;\n",
    );
    wb.write(
        "exercises/extra/Cargo.toml",
        &manifest("exercises-extra", "heavy"),
    );
    wb.write(
        "solutions/extra/Cargo.toml",
        &manifest("solutions-extra", "../../exercises/extra/heavy"),
    );
    let root = wb.read("Cargo.toml");
    wb.write(
        "Cargo.toml",
        &root.replace(
            "members = [\"exercises\", \"solutions\"]",
            "members = [\"exercises\", \"solutions\", \"exercises/extra\", \"solutions/extra\"]",
        ),
    );
    wb.sdlings()
        .args(["dev", "update"])
        .assert()
        .success()
        .stdout(contains("updated exercises/Cargo.toml"))
        .stdout(contains("updated exercises/extra/Cargo.toml"))
        .stdout(contains("updated solutions/extra/Cargo.toml"));
    assert!(!wb.read("exercises/Cargo.toml").contains("token_bucket"));
    assert!(
        wb.read("solutions/extra/Cargo.toml").contains(
            "name = \"token_bucket_sol\"\npath = \"../02_rate_limiting/token_bucket.rs\""
        )
    );
    wb.sdlings()
        .args(["dev", "check", "--static"])
        .assert()
        .success();

    // An exercise before the group builds without the group's dependency...
    let heavy_built = || {
        fs::read_dir(wb.path().join("target/sdlings/debug/deps"))
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("libheavy-"))
            })
            .unwrap_or(false)
    };
    let shipped = wb.read("exercises/00_intro/welcome.rs");
    wb.solve("00_intro", "welcome");
    wb.sdlings().args(["check", "welcome"]).assert().success();
    assert!(
        !heavy_built(),
        "checking welcome built the group's dependency"
    );
    wb.write("exercises/00_intro/welcome.rs", &shipped);

    // ...and the whole workbook, group included, is checked and its mistakes judged as before.
    wb.sdlings()
        .args(["dev", "check", "--repeat", "1"])
        .assert()
        .success();
    assert!(heavy_built());
    wb.sdlings()
        .args(["dev", "mutants", "token_bucket"])
        .assert()
        .success()
        .stdout(contains(
            "the tests reject all 2 plausible wrong implementations",
        ));
}
