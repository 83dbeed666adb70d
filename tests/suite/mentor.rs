//! A mentor's workflow: write a set, hand it to a learner, collect reports that name exactly
//! what passed, failed and was not attempted, and catch edited tests.

use crate::common;

use std::fs;
use std::process::Command;

use crate::common::TempWorkbook;
use predicates::prelude::*;
use predicates::str::contains;

const SET: &str = r#"format_version = 1
name = "cohort-a"
title = "Cohort A, week 1"
description = "LRU and TTL, then the intro's hit counter."
unlock = "sequential"
exercises = ["lru_cache", "ttl_cache", "hit_counter", "cache_aside"]
"#;

#[test]
fn sets_are_listed_shown_used_and_cleared_without_losing_progress() {
    let wb = TempWorkbook::new();
    wb.write("sets/cohort-a.toml", SET);
    wb.sdlings()
        .args(["set", "list"])
        .assert()
        .success()
        .stdout(contains("cohort-a"))
        .stdout(contains("week1-caching"))
        .stdout(contains("No set is active"));
    wb.sdlings()
        .args(["set", "show", "cohort-a"])
        .assert()
        .success()
        .stdout(contains("LRU and TTL"))
        .stdout(contains("lru_cache                    current"));

    wb.sdlings()
        .args(["set", "use", "cohort-a"])
        .assert()
        .success();
    // The set's order and gate: caching comes first here, the intro's hit counter after it.
    wb.sdlings()
        .arg("list")
        .assert()
        .success()
        .stdout(contains("Set: cohort-a"))
        .stdout(contains("lru_cache                    current"))
        .stdout(contains("hit_counter                  locked"))
        .stdout(contains("welcome").not())
        .stdout(contains("0/4"));
    // `check` without a name follows the set.
    wb.solve("01_caching", "lru_cache");
    wb.sdlings()
        .arg("check")
        .assert()
        .success()
        .stdout(contains("✓ lru_cache"));

    // Switching away and back keeps the pass: progress is per exercise.
    wb.sdlings().args(["set", "clear"]).assert().success();
    wb.sdlings()
        .arg("list")
        .assert()
        .success()
        .stdout(contains("lru_cache                    done"));
    wb.sdlings()
        .args(["--set", "cohort-a", "list"])
        .assert()
        .success()
        .stdout(contains("lru_cache                    done"))
        .stdout(contains("ttl_cache                    current"));
}

#[test]
fn bad_sets_are_rejected_with_file_line_and_reason() {
    let wb = TempWorkbook::new();
    let cases = [
        (
            SET.replace("\"cache_aside\"", "\"lfu_cache\""),
            "sets/cohort-a.toml:6:",
            "`lfu_cache` is neither an exercise nor a topic",
        ),
        (
            SET.replace("\"cache_aside\"", "\"caching\""),
            "sets/cohort-a.toml:6:",
            "a second time",
        ),
        (
            SET.replace("\"cache_aside\"", "\"../../../etc/passwd.rs\""),
            "sets/cohort-a.toml:6:",
            "outside the workbook",
        ),
        (
            SET.replace("unlock = \"sequential\"", "unlock = \"sometimes\""),
            "sets/cohort-a.toml: TOML parse error at line 5",
            "unknown variant `sometimes`",
        ),
        (
            SET.replace("title =", "titel ="),
            "sets/cohort-a.toml: TOML parse error at line 3",
            "unknown field `titel`",
        ),
    ];
    for (text, place, reason) in cases {
        wb.write("sets/cohort-a.toml", &text);
        wb.sdlings()
            .args(["set", "use", "cohort-a"])
            .assert()
            .code(2)
            .stderr(contains(place))
            .stderr(contains(reason));
    }
    // The author's check finds a bad set too.
    wb.sdlings()
        .args(["dev", "check", "--repeat", "1"])
        .assert()
        .code(1)
        .stdout(contains("sets/cohort-a.toml:"));
}

#[test]
fn reports_name_what_passed_failed_was_not_attempted_and_whose_tests_changed() {
    // The mentor hands the set to a learner with a fresh workbook made by `sdlings init`; the
    // learner solves part of it.
    let wb = TempWorkbook::new();
    wb.write("sets/cohort-a.toml", SET);
    wb.sdlings()
        .args(["set", "use", "cohort-a"])
        .assert()
        .success();
    wb.solve("01_caching", "lru_cache");
    // ttl_cache: attempted, still failing.
    let ttl = "exercises/01_caching/ttl_cache.rs";
    wb.write(ttl, &format!("// started\n{}", wb.read(ttl)));
    // hit_counter: solved, but the learner also deleted a test.
    wb.solve("00_intro", "hit_counter");
    let hc = "exercises/00_intro/hit_counter.rs";
    let edited = wb.read(hc).replacen("#[test]", "", 1);
    wb.write(hc, &edited);
    // cache_aside: untouched.

    wb.sdlings()
        .args(["verify", "--all", "--format", "json", "--output", "report.json"])
        .assert()
        .code(1)
        .stdout(contains(
            "1 passed, 1 failed, 1 not attempted, 1 with changed tests (report written to report.json)",
        ));
    let json: serde_json::Value = serde_json::from_str(&wb.read("report.json")).unwrap();
    assert_eq!(json["schema"], "sdlings-verify-report");
    assert_eq!(json["schema_version"], 2);
    assert_eq!(json["set"]["name"], "cohort-a");
    let by_name = |name: &str| {
        json["exercises"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("lru_cache")["status"], "passed");
    assert_eq!(by_name("lru_cache")["tests_changed"], false);
    assert!(by_name("lru_cache")["first_passed"].is_string());
    assert_eq!(by_name("ttl_cache")["status"], "failed");
    assert!(by_name("ttl_cache")["first_failure"]["test"].is_string());
    assert_eq!(by_name("cache_aside")["status"], "not_attempted");
    assert_eq!(by_name("hit_counter")["tests_changed"], true);
    assert_eq!(json["exercises"].as_array().unwrap().len(), 4);

    wb.sdlings()
        .args([
            "verify",
            "--all",
            "--format",
            "junit",
            "--output",
            "report.xml",
        ])
        .assert()
        .code(1);
    let xml = wb.read("report.xml");
    let doc = roxmltree::Document::parse(&xml).expect("JUnit report is well-formed XML");
    let cases: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 4);
    let case = |name: &str| {
        *cases
            .iter()
            .find(|c| c.attribute("name") == Some(name))
            .unwrap()
    };
    let child = |name: &str, tag: &str| case(name).children().find(|c| c.has_tag_name(tag));
    assert!(child("lru_cache", "failure").is_none());
    assert!(child("ttl_cache", "failure").is_some());
    assert!(child("cache_aside", "skipped").is_some());
    assert_eq!(
        child("hit_counter", "failure").unwrap().attribute("type"),
        Some("tests_changed")
    );
    let root = doc.root_element();
    assert_eq!(root.attribute("tests"), Some("4"));

    wb.sdlings()
        .args(["verify", "--all", "--format", "markdown"])
        .assert()
        .code(1)
        .stdout(contains(
            "| `cache_aside` | 01_caching | ⬜ not attempted |",
        ))
        .stdout(contains("⚠️ yes"));
}

#[test]
fn the_autograde_example_script_grades_a_workbook() {
    let wb = TempWorkbook::new();
    let script = fs::read_to_string(common::repo_root().join("sets/autograde.sh")).unwrap();
    wb.write("sets/autograde.sh", &script);
    wb.solve("01_caching", "lru_cache");
    let out = Command::new("bash")
        .arg("sets/autograde.sh")
        .arg("week1-caching")
        .arg("grades")
        .current_dir(wb.path())
        .env("PATH", path_with_sdlings())
        .env("SDLINGS_LEARNER", "ana-gh")
        .env_remove("SDLINGS_TARGET_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let json: serde_json::Value = serde_json::from_str(&wb.read("grades/report.json")).unwrap();
    assert_eq!(json["learner"], "ana-gh");
    assert_eq!(json["summary"]["passed"], 1);
    assert_eq!(json["summary"]["total"], 3);
    roxmltree::Document::parse(&wb.read("grades/report.xml")).unwrap();
    assert!(wb.read("grades/report.md").contains("| `lru_cache` |"));
}

/// PATH with the sdlings under test first, as if the learner had installed it.
fn path_with_sdlings() -> std::ffi::OsString {
    let bin_dir = assert_cmd::cargo::cargo_bin("sdlings")
        .parent()
        .unwrap()
        .to_path_buf();
    let mut paths = vec![bin_dir];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}
