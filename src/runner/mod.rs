//! The one layer that builds and runs exercises, for every command: `check`, `verify`, `watch`,
//! `run`, `dev check` and `dev mutants` all come through here.
//!
//! - [`cargo`] builds binaries (test harnesses and labs), many per invocation;
//! - [`verdict`] runs a test binary under limits and says what happened;
//! - [`lab`] runs a lab, captured for the watcher or in the foreground for `sdlings run`;
//! - [`pool`] spreads many runs over the machine's cores;
//! - [`process`] supervises misbehaving children; [`libtest`] reads test output.

pub mod cargo;
pub mod lab;
pub mod libtest;
pub mod pool;
pub mod process;
pub mod verdict;

use std::path::Path;

use anyhow::Result;

use crate::info_file::ExerciseInfo;
use crate::workbook::{EXERCISES_DIR, SOLUTIONS_DIR, Workbook};
pub use cargo::{Artifact, BuildOutcome, BuildPlan, ProgressFn};
pub use process::Cancel;
pub use verdict::{Seeds, Selection, Verdict};

/// Which side of the workbook to build from: the learner's files or the solutions.
///
/// Each side is one Cargo package (`exercises`, `solutions`), plus one per package group: a topic
/// with heavy dependencies names a group in info.toml (`package = "services"`), and its exercises
/// are binaries of `exercises-services` (manifest `exercises/services/Cargo.toml`) and
/// `solutions-services` instead. A build names every package of its side and selects binaries,
/// and cargo compiles only what those binaries need: a group's dependencies wait until the learner
/// reaches its topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Package {
    Exercises,
    Solutions,
}

impl Package {
    /// The side's directory in the workbook, and the name of its main Cargo package.
    pub fn name(self) -> &'static str {
        match self {
            Package::Exercises => EXERCISES_DIR,
            Package::Solutions => SOLUTIONS_DIR,
        }
    }

    /// The Cargo binary name of an exercise in this package.
    pub fn bin_name(self, exercise: &str) -> String {
        match self {
            Package::Exercises => exercise.to_string(),
            Package::Solutions => format!("{exercise}_sol"),
        }
    }

    /// The Cargo package of this side for package group `group` (`None`: the main one).
    pub fn cargo_name(self, group: Option<&str>) -> String {
        match group {
            None => self.name().to_string(),
            Some(group) => format!("{}-{group}", self.name()),
        }
    }

    /// The directory of that package's manifest, relative to the workbook root.
    pub fn manifest_dir(self, group: Option<&str>) -> String {
        match group {
            None => self.name().to_string(),
            Some(group) => format!("{}/{group}", self.name()),
        }
    }

    /// Every Cargo package of this side, the main one first.
    pub fn cargo_names(self, workbook: &Workbook) -> Vec<String> {
        workbook
            .package_groups()
            .into_iter()
            .map(|group| self.cargo_name(group))
            .collect()
    }
}

/// A plan to build some of a workbook side's binaries into the workbook's build directory.
pub fn plan(workbook: &Workbook, package: Package, color: bool) -> BuildPlan {
    BuildPlan {
        dir: workbook.root.clone(),
        target_dir: workbook.build_dir(),
        packages: package.cargo_names(workbook),
        tests: Vec::new(),
        labs: Vec::new(),
        all_tests: false,
        color,
        incremental: true,
    }
}

/// Builds and runs the tests of exercise `index` from `package` (every seeded property on `seed`
/// alone if one is given). `None` means it was cancelled.
pub fn check(
    workbook: &Workbook,
    package: Package,
    index: usize,
    seed: Option<u64>,
    color: bool,
    cancel: &Cancel,
    progress: ProgressFn,
) -> Result<Option<Verdict>> {
    let exercise = &workbook.info.exercises[index];
    let bin = package.bin_name(&exercise.name);
    let mut plan = plan(workbook, package, color);
    plan.tests.push(bin.clone());
    let built = cargo::build(&plan, cancel, progress)?;
    if built.cancelled {
        return Ok(None);
    }
    let verdict = match built.executable(&bin, Artifact::Tests) {
        Some(exe) => {
            let seeds = seed.map_or(Seeds::Learner, Seeds::Only);
            verdict::run_tests(
                exe,
                &workbook.root,
                exercise.time_limit,
                &Selection::All,
                seeds,
                cancel,
            )?
        }
        None => Some(verdict::build_failure(&bin, &built)),
    };
    Ok(verdict.map(|v| in_source_order(workbook, package, index, v)))
}

/// libtest reports failures by name; show them in the order the author wrote the tests.
fn in_source_order(
    workbook: &Workbook,
    package: Package,
    index: usize,
    mut verdict: Verdict,
) -> Verdict {
    let exercise = &workbook.info.exercises[index];
    let source_path = match package {
        Package::Exercises => workbook.exercise_path(exercise),
        Package::Solutions => workbook.solution_path(exercise),
    };
    if let Ok(source) = std::fs::read_to_string(source_path) {
        verdict.order_failures_as_in(&source);
    }
    verdict
}

/// Builds the test binaries of many exercises in one cargo invocation (much faster than one
/// each), then runs each `repeat` times (an exercise stops at its first run that does not pass),
/// spread over the cores. `progress` hears what is happening, e.g. "[3/12] running lru_cache".
pub fn check_many(
    workbook: &Workbook,
    package: Package,
    indices: &[usize],
    repeat: u32,
    color: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Verdict>> {
    let exercises = &workbook.info.exercises;
    let mut plan = plan(workbook, package, color);
    plan.tests = indices
        .iter()
        .map(|&i| package.bin_name(&exercises[i].name))
        .collect();
    let built = build_counting(&plan, progress)?;
    let runs: Vec<TestRun> = indices
        .iter()
        .map(|&index| TestRun::whole(&exercises[index], package, &built, repeat))
        .collect();
    let verdicts = run_all(&workbook.root, &runs, &built, progress)?;
    Ok(indices
        .iter()
        .zip(verdicts)
        .map(|(&index, v)| in_source_order(workbook, package, index, v))
        .collect())
}

/// Builds `plan`, reporting "[built/total]" progress.
pub fn build_counting(plan: &BuildPlan, progress: &mut dyn FnMut(&str)) -> Result<BuildOutcome> {
    let total = plan.tests.len() + plan.labs.len();
    let mut built_count = 0;
    cargo::build(plan, &Cancel::new(), &mut |line| {
        if line.starts_with("built ") {
            built_count += 1;
        }
        progress(&format!("[{built_count}/{total} built] {line}"));
    })
}

/// The seeds of a repeated run's attempt: the first is the learner's check; each later one moves
/// every seeded property to a window of seeds of its own, so that ten runs of a property of 100
/// cases try 1,000 seeds (a solution must hold beyond the seeds its learners will see).
fn seeds_of_attempt(attempt: u32) -> Seeds {
    const WINDOW: u64 = 1_000_000;
    match attempt {
        0 | 1 => Seeds::Learner,
        later => Seeds::From(u64::from(later - 1) * WINDOW),
    }
}

/// One test binary to run (perhaps only some of its tests), `repeat` times.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// What progress lines call it.
    pub label: String,
    /// The binary's name, to find its compile errors when `exe` is `None`.
    pub bin: String,
    pub exe: Option<std::path::PathBuf>,
    pub selected: Selection,
    pub time_limit: std::time::Duration,
    pub repeat: u32,
}

impl TestRun {
    /// All the tests of one exercise's binary in `package`, `repeat` times.
    pub fn whole(
        exercise: &ExerciseInfo,
        package: Package,
        built: &BuildOutcome,
        repeat: u32,
    ) -> TestRun {
        let bin = package.bin_name(&exercise.name);
        TestRun {
            label: exercise.name.clone(),
            exe: built
                .executable(&bin, Artifact::Tests)
                .map(Path::to_path_buf),
            bin,
            selected: Selection::All,
            time_limit: exercise.time_limit,
            repeat,
        }
    }
}

/// Runs every [`TestRun`] on the pool; a run that did not build gets its build failure.
pub fn run_all(
    workdir: &Path,
    runs: &[TestRun],
    built: &BuildOutcome,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Verdict>> {
    let total = runs.len();
    pool::map(runs, progress, |n, run, note| {
        let Some(exe) = &run.exe else {
            return Ok(verdict::build_failure(&run.bin, built));
        };
        let mut last = None;
        for attempt in 1..=run.repeat {
            let times = if run.repeat > 1 {
                format!(" (run {attempt}/{})", run.repeat)
            } else {
                String::new()
            };
            note(format!("[{}/{total}] running {}{times}", n + 1, run.label));
            let verdict = verdict::run_tests(
                exe,
                workdir,
                run.time_limit,
                &run.selected,
                seeds_of_attempt(attempt),
                &Cancel::new(),
            )?
            .expect("nothing cancels these runs");
            let passed = verdict.passed();
            last = Some(verdict);
            if !passed {
                break;
            }
        }
        Ok(last.expect("repeat >= 1"))
    })
}
