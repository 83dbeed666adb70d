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
