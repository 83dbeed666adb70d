//! The author's check on the real workbook: `cargo test` fails if any exercise passes as shipped,
//! any solution fails (or flakes) in 10 runs, or info.toml, the files and the Cargo bins disagree.

mod common;

use assert_cmd::Command;
use predicates::str::contains;

#[test]
fn dev_check_passes_on_the_workbook() {
    Command::cargo_bin("sdlings")
        .unwrap()
        .args(["dev", "check"])
        .current_dir(common::repo_root())
        .env("NO_COLOR", "1")
        .assert()
        .success()
        .stdout(contains("every solution passed 10× in a row"));
}

#[test]
fn the_tests_reject_every_plausible_mistake_listed_beside_the_solutions() {
    Command::cargo_bin("sdlings")
        .unwrap()
        .args(["dev", "mutants"])
        .current_dir(common::repo_root())
        .env("NO_COLOR", "1")
        .assert()
        .success()
        .stdout(contains("dev mutants: the tests reject all"));
}

#[test]
fn dev_mutants_reports_survivors_broken_mutants_and_wrong_culprits() {
    let wb = common::TempWorkbook::new();
    let mutants = "solutions/03_rate_limiting/token_bucket.mutants.toml";
    wb.write(
        mutants,
        r#"
[[mutants]]
mistake = "a harmless edit of a comment"
replace = "// Whole seconds and fractions alike"
with = "// Seconds and fractions alike"

[[mutants]]
mistake = "a typo the compiler catches"
replace = "return Acquire::TooLarge;"
with = "return Acquire::TooLargeTypo;"

[[mutants]]
mistake = "strict comparison, blamed on the wrong test"
replace = "if self.tokens >= n {"
with = "if self.tokens > n {"
caught_by = ["a_request_larger_than_the_capacity_is_rejected_at_once_as_too_large"]
"#,
    );
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
        wb.read("solutions/03_rate_limiting/token_bucket.rs"),
        std::fs::read_to_string(
            common::repo_root().join("solutions/03_rate_limiting/token_bucket.rs")
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
        .args(["dev", "check", "--repeat", "1"])
        .assert()
        .code(1)
        .stdout(contains("token_bucket: solutions/03_rate_limiting/token_bucket.mutants.toml, mutant 1 (\"vague\"): the text in `replace` occurs"));
}

#[test]
fn dev_check_finds_inconsistencies() {
    let wb = common::TempWorkbook::new();
    // A solution whose tests were weakened, a bin missing from a manifest, a stray file, a
    // placeholder hint and a README without its layers.
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
        &info.replacen("hints = [\n  \"\"\"", "hints = [\n  \"\"\"TODO: ", 1),
    );
    wb.write(
        "exercises/00_intro/README.md",
        "# Intro\n\n## Core fundamentals\n",
    );
    wb.sdlings()
        .args(["dev", "check", "--repeat", "1"])
        .assert()
        .code(1)
        .stdout(contains(
            "welcome: the tests of the exercise and of its solution differ",
        ))
        .stdout(contains("no [[bin]] `hit_counter_sol`"))
        .stdout(contains(
            "[[bin]] `hit_counter_solution` is not an exercise",
        ))
        .stdout(contains(
            "exercises/00_intro/stray.rs: not an exercise in info.toml",
        ))
        .stdout(contains("welcome: needs at least two written hints"))
        .stdout(contains("lacks the heading `## System design perspective`"));
}
