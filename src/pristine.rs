//! The curriculum as shipped, compiled into sdlings by build.rs: the one reference that does not
//! live in a file the learner can edit.
//!
//! - `init` writes a fresh workbook from it;
//! - `reset` restores an exercise's original text from it;
//! - `verify` compares each exercise's test module with it, so a pass with edited tests is
//!   flagged whatever the learner changed on disk.
//!
//! It applies to a workbook whose info.toml is the one built in (a clone of this repository, or
//! a workbook made by `sdlings init`). For any other workbook (a mentor's own curriculum, an older
//! or newer version of this one) the reference is the workbook's own solutions, and reset falls
//! back to the file as first committed to the workbook's git history.

use std::fs;
use std::process::Command;

use crate::info_file::ExerciseInfo;
use crate::workbook::{EXERCISES_DIR, INFO_FILE_NAME, SOLUTIONS_DIR, Workbook, test_module};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// Every embedded file: (path in the workbook, contents).
pub fn files() -> &'static [(&'static str, &'static [u8])] {
    embedded::FILES
}

fn embedded_text(rel: &str) -> Option<&'static str> {
    files()
        .iter()
        .find(|(path, _)| *path == rel)
        .and_then(|(_, bytes)| std::str::from_utf8(bytes).ok())
}

/// Where the reference for a workbook's tests comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// The curriculum compiled into this sdlings: nothing on disk can change it.
    BuiltIn,
    /// The workbook's own `solutions/` (its curriculum is not the one built in).
    WorkbookSolutions,
}

impl Reference {
    pub fn of(workbook: &Workbook) -> Reference {
        let on_disk = fs::read_to_string(workbook.root.join(INFO_FILE_NAME)).ok();
        if on_disk.is_some() && on_disk.as_deref() == embedded_text(INFO_FILE_NAME) {
            Reference::BuiltIn
        } else {
            Reference::WorkbookSolutions
        }
    }

    /// How reports name it.
    pub fn describe(self) -> &'static str {
        match self {
            Reference::BuiltIn => "the curriculum built into this sdlings",
            Reference::WorkbookSolutions => {
                "the workbook's own solutions/ (its info.toml is not the curriculum built into this sdlings)"
            }
        }
    }

    /// The test module the exercise must have, if known.
    pub fn tests_of(self, workbook: &Workbook, exercise: &ExerciseInfo) -> Option<String> {
        let solution = match self {
            Reference::BuiltIn => {
                embedded_text(&format!("{SOLUTIONS_DIR}/{}", exercise.path))?.to_string()
            }
            Reference::WorkbookSolutions => {
                fs::read_to_string(workbook.solution_path(exercise)).ok()?
            }
        };
        test_module(&solution).map(str::to_string)
    }
}

/// The exercise's text as shipped, from `reference` (found once per command with
/// [`Reference::of`]); `Err` says why there is none.
pub fn exercise_text(
    workbook: &Workbook,
    reference: Reference,
    exercise: &ExerciseInfo,
) -> Result<String, String> {
    let rel = format!("{EXERCISES_DIR}/{}", exercise.path);
    if reference == Reference::BuiltIn
        && let Some(text) = embedded_text(&rel)
    {
        return Ok(text.to_string());
    }
    first_committed(workbook, &rel).ok_or_else(|| {
            format!(
                "this workbook's curriculum is not the one built into this sdlings, and git has no committed version of {rel}"
            )
        })
}

/// The file as in the commit that added it: for a workbook of one's own, that is the exercise as
/// its author handed it out.
fn first_committed(workbook: &Workbook, rel: &str) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(&workbook.root)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let commits = git(&["log", "--diff-filter=A", "--format=%H", "--", rel])?;
    let first = commits.lines().last()?.trim().to_string();
    git(&["show", &format!("{first}:{rel}")])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workbook whose info.toml is the built-in one, with one exercise and its solution
    /// edited on disk the way a learner hiding a weakened test would.
    fn tampered_workbook() -> (tempfile::TempDir, Workbook) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(
            root.join(INFO_FILE_NAME),
            embedded_text(INFO_FILE_NAME).unwrap(),
        )
        .unwrap();
        fs::create_dir_all(root.join(EXERCISES_DIR)).unwrap();
        let workbook = Workbook::open(root).unwrap();
        let exercise = &workbook.info.exercises[0];
        for base in [EXERCISES_DIR, SOLUTIONS_DIR] {
            let rel = format!("{base}/{}", exercise.path);
            let weakened = embedded_text(&rel)
                .unwrap()
                .replace("assert", "debug_assert");
            let path = root.join(&rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, weakened).unwrap();
        }
        (dir, workbook)
    }

    #[test]
    fn the_built_in_reference_ignores_every_file_on_disk() {
        let (_dir, workbook) = tampered_workbook();
        let exercise = &workbook.info.exercises[0];
        assert_eq!(Reference::of(&workbook), Reference::BuiltIn);
        let reference = Reference::BuiltIn.tests_of(&workbook, exercise).unwrap();
        let shipped = embedded_text(&format!("{EXERCISES_DIR}/{}", exercise.path)).unwrap();
        assert_eq!(Some(reference.as_str()), test_module(shipped));
        let on_disk = fs::read_to_string(workbook.exercise_path(exercise)).unwrap();
        assert_ne!(Some(reference.as_str()), test_module(&on_disk));
        let original = exercise_text(&workbook, Reference::BuiltIn, exercise).unwrap();
        assert_eq!(original, shipped);
    }

    #[test]
    fn another_curriculum_is_compared_with_its_own_solutions() {
        let (dir, _) = tampered_workbook();
        let info = fs::read_to_string(dir.path().join(INFO_FILE_NAME)).unwrap();
        fs::write(dir.path().join(INFO_FILE_NAME), format!("# mine\n{info}")).unwrap();
        let workbook = Workbook::open(dir.path()).unwrap();
        assert_eq!(Reference::of(&workbook), Reference::WorkbookSolutions);
    }
}
