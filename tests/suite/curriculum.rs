//! The real curriculum, checked once per `cargo test`: each exercise and solution is built once
//! (into one build directory kept between runs) and each mutant once.
//!
//! - the kit's own tests (clocks, workloads, lab tables), built beside the exercises;
//! - `dev check --static`: info.toml, files, bins, hints, READMEs, mutants lists agree;
//! - `dev check`: every exercise fails as shipped, every solution passes 10× in a row, every
//!   solution's lab runs to its end;
//! - `dev mutants`: the tests reject every plausible mistake listed beside the solutions;
//! - a learner's journey: one watcher takes a learner through every topic gate of the real
//!   info.toml to the final message (with stand-in exercises, so it measures the gates, not the
//!   builds: the exercises themselves are the three checks above).
//!
//! The CLI's own behaviour is tested on the small fixture workbook (tests/fixture), not here.

use crate::common;

use std::fs;

use assert_cmd::Command;
use predicates::str::contains;
use serde::Deserialize;

fn sdlings_on_the_curriculum() -> Command {
    let mut cmd = Command::cargo_bin("sdlings").unwrap();
    cmd.current_dir(common::repo_root())
        .env("NO_COLOR", "1")
        .env("SDLINGS_TARGET_DIR", common::curriculum_build_dir())
        .envs(common::CURRICULUM_BUILD_ENV)
        .env_remove("CARGO_TARGET_DIR");
    cmd
}

#[test]
fn the_curriculum_files_agree_without_building_anything() {
    sdlings_on_the_curriculum()
        .args(["dev", "check", "--static"])
        .assert()
        .success()
        .stdout(contains("are consistent (static checks only)"));
}

#[test]
fn the_kit_passes_its_own_tests() {
    // The main kit and each package group's own kit (`exercises/GROUP/kit`, `sdlings-kit-GROUP`).
    let info = Info::of_the_curriculum();
    let mut kits = vec!["sdlings-kit".to_string()];
    for group in info.package_groups() {
        if common::repo_root()
            .join(format!("exercises/{group}/kit/Cargo.toml"))
            .exists()
        {
            kits.push(format!("sdlings-kit-{group}"));
        }
    }
    // In the curriculum's build directory: the kit's tokio and rand are the exercises' ones.
    let output = std::process::Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()))
        .args(["test", "--quiet"])
        .args(kits.iter().flat_map(|kit| ["--package", kit]))
        .arg("--target-dir")
        .arg(common::curriculum_build_dir())
        .current_dir(common::repo_root())
        .envs(common::CURRICULUM_BUILD_ENV)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the kit's tests failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_exercise_fails_as_shipped_every_solution_passes_ten_times_and_every_lab_ends() {
    sdlings_on_the_curriculum()
        .args(["dev", "check"])
        .assert()
        .success()
        .stdout(contains(
            "every solution passed 10× in a row and every lab ran to its end",
        ));
}

#[test]
fn the_tests_reject_every_plausible_mistake_listed_beside_the_solutions() {
    sdlings_on_the_curriculum()
        .args(["dev", "mutants"])
        .assert()
        .success()
        .stdout(contains("dev mutants: the tests reject all"));
}

#[derive(Deserialize)]
struct Info {
    final_message: String,
    topics: Vec<Topic>,
    exercises: Vec<Exercise>,
}

impl Info {
    fn of_the_curriculum() -> Info {
        toml::from_str(&fs::read_to_string(common::repo_root().join("info.toml")).unwrap()).unwrap()
    }

    /// Each package group once, in curriculum order (several topics may share one), as sdlings'
    /// own `Workbook::package_groups` lists them.
    fn package_groups(&self) -> Vec<&str> {
        let mut groups = Vec::new();
        for group in self.topics.iter().filter_map(|t| t.package.as_deref()) {
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        groups
    }
}

#[derive(Deserialize)]
struct Topic {
    name: String,
    title: String,
    dir: String,
    /// The package group whose bins hold this topic's exercises (`exercises-GROUP`), if any.
    package: Option<String>,
}

#[derive(Deserialize)]
struct Exercise {
    name: String,
    topic: String,
}

/// A stand-in for an exercise: one test, failing until `SOLVED` is true.
fn stand_in(name: &str, solved: bool) -> String {
    format!(
        "// A stand-in for `{name}`: the journey test walks the real topic gates, not the code.\n\
         pub const SOLVED: bool = {solved};\n\n\
         fn main() {{\n    println!(\"the lab of {name}\");\n}}\n\n\
         #[cfg(test)]\nmod tests {{\n    #[test]\n    fn is_solved() {{\n        assert!(super::SOLVED);\n    }}\n}}\n"
    )
}

/// The real info.toml with a stand-in for every exercise, its solution and the topics' READMEs.
fn stand_in_workbook(info: &Info) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("sdlings-journey-")
        .tempdir()
        .unwrap();
    let root = dir.path();
    let write = |rel: &str, text: &str| {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write(
        "info.toml",
        &fs::read_to_string(common::repo_root().join("info.toml")).unwrap(),
    );
    // A package group's stand-ins live in their own members, as the real workbook's do, so the
    // watcher builds what it builds for a learner.
    let mut members = Vec::new();
    for side in ["exercises", "solutions"] {
        let groups = info.package_groups().into_iter();
        let packages = std::iter::once((side.to_string(), side.to_string()))
            .chain(groups.map(|group| (format!("{side}/{group}"), format!("{side}-{group}"))));
        for (dir, package) in packages {
            write(
                &format!("{dir}/Cargo.toml"),
                &format!(
                    "[package]\nname = \"{package}\"\nversion = \"0.0.0\"\nedition = \"2024\"\nautobins = false\n"
                ),
            );
            members.push(dir);
        }
    }
    write(
        "Cargo.toml",
        // No debug info: the watcher builds a hundred stand-ins, and each link is shorter without.
        &format!(
            "[workspace]\nmembers = {members:?}\nresolver = \"3\"\n\n[profile.dev]\ndebug = false\n"
        ),
    );
    let topic = |name: &str| info.topics.iter().find(|t| t.name == name).unwrap();
    for exercise in &info.exercises {
        let rel = format!("{}/{}.rs", topic(&exercise.topic).dir, exercise.name);
        write(
            &format!("exercises/{rel}"),
            &stand_in(&exercise.name, false),
        );
        write(&format!("solutions/{rel}"), &stand_in(&exercise.name, true));
    }
    Command::cargo_bin("sdlings")
        .unwrap()
        .args(["dev", "update"])
        .current_dir(root)
        .assert()
        .success();
    dir
}

#[test]
fn a_learner_saves_their_way_through_every_topic_gate_to_the_final_message() {
    let info = Info::of_the_curriculum();
    let dir = stand_in_workbook(&info);
    let wb = common::TempWorkbook::at(dir);
    let topic = |name: &str| info.topics.iter().find(|t| t.name == name).unwrap();
    let mut watcher = wb.watcher(&[]);

    for (i, exercise) in info.exercises.iter().enumerate() {
        let dir = &topic(&exercise.topic).dir;
        let verdict = watcher.next_verdict(&exercise.name);
        assert!(
            verdict.starts_with('✗'),
            "{} should fail as shipped: {verdict}",
            exercise.name
        );
        wb.solve(dir, &exercise.name);
        let verdict = watcher.next_verdict(&exercise.name);
        assert!(
            verdict.starts_with('✓'),
            "{} should pass once its solution is saved: {verdict}",
            exercise.name
        );
        watcher.expect(&format!("the lab of {}", exercise.name));
        let Some(next) = info.exercises.get(i + 1) else {
            break;
        };
        if next.topic != exercise.topic {
            let (done, upcoming) = (topic(&exercise.topic), topic(&next.topic));
            watcher.expect(&format!(
                "Topic {} · {} is complete. Next topic: {} · {}",
                done.dir, done.title, upcoming.dir, upcoming.title
            ));
        }
        watcher.expect("send n for the next exercise");
        watcher.send("n");
        watcher.expect(&format!(
            "now on {} (exercises/{dir_next}/{}.rs)",
            next.name,
            next.name,
            dir_next = topic(&next.topic).dir
        ));
    }

    // The last pass of the workbook ends with the final message.
    let final_line = info.final_message.trim().lines().next().unwrap();
    watcher.expect(final_line);
    watcher.expect("send n for the next exercise");
    let (status, printed) = watcher.finish();
    assert!(status.success(), "{}", printed.join("\n"));

    let state = wb.read(".sdlings-state.toml");
    for exercise in &info.exercises {
        assert!(
            state.contains(&format!("[exercises.{}]\ndone = true", exercise.name)),
            "{} is not recorded as done:\n{state}",
            exercise.name
        );
    }
}
