//! A mentor's view of a whole cohort, merged from the learners' `verify` reports: what a mentor
//! would otherwise build in a spreadsheet.
//!
//! - [`load`] reads the reports (any schema version) and names the file of any that is unusable;
//! - this module merges them: one row per learner (the newest report wins), one column per
//!   exercise, the counts per exercise and where the cohort is stuck, and the notes a mentor must
//!   read before trusting the grid (edited tests, other curriculum versions, replaced reports);
//! - [`html`] and [`markdown`] draw it; JSON is the model itself, serialised.

pub mod html;
pub mod load;
pub mod markdown;

use std::collections::{BTreeMap, HashMap};

use anyhow::{Result, bail};
use serde::Serialize;

use load::{LearnerReport, ReportedExercise, ReportedStatus};

/// Bumped whenever a field of the JSON cohort view changes meaning or disappears.
pub const COHORT_SCHEMA_VERSION: u32 = 1;

/// How many exercises the "stuck" list names at most.
const STUCK_LIST_LEN: usize = 5;

/// One learner's result on one exercise, as the grid shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    Passed,
    Failing,
    NotAttempted,
    /// Back to its original text after passing once.
    Reverted,
    /// Its tests differ from the original's: whatever ran, it proves nothing.
    TestsEdited,
    /// Not in this learner's report (another set, or another curriculum version).
    Absent,
}

impl Cell {
    fn of(entry: Option<&ReportedExercise>) -> Cell {
        match entry {
            None => Cell::Absent,
            Some(e) if e.tests_changed => Cell::TestsEdited,
            Some(e) => match e.status {
                ReportedStatus::Passed => Cell::Passed,
                ReportedStatus::Failed => Cell::Failing,
                ReportedStatus::NotAttempted => Cell::NotAttempted,
                ReportedStatus::Reverted => Cell::Reverted,
            },
        }
    }

    /// A symbol that carries the meaning without colour, and its words.
    pub fn symbol(self) -> &'static str {
        match self {
            Cell::Passed => "✓",
            Cell::Failing => "✗",
            Cell::NotAttempted => "○",
            Cell::Reverted => "↺",
            Cell::TestsEdited => "⚠",
            Cell::Absent => "–",
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Cell::Passed => "passed",
            Cell::Failing => "failing",
            Cell::NotAttempted => "not attempted",
            Cell::Reverted => "reverted after passing",
            Cell::TestsEdited => "tests edited (does not count)",
            Cell::Absent => "not in this learner's report",
        }
    }

    /// Every kind of cell, in the legend's order.
    pub const ALL: [Cell; 6] = [
        Cell::Passed,
        Cell::Failing,
        Cell::NotAttempted,
        Cell::Reverted,
        Cell::TestsEdited,
        Cell::Absent,
    ];
}

#[derive(Debug, Clone, Serialize)]
pub struct ExerciseColumn {
    pub name: String,
    pub topic: String,
    /// Learners whose report has this exercise.
    pub reported: usize,
    pub passed: usize,
    pub failing: usize,
    pub not_attempted: usize,
    pub tests_edited: usize,
    /// Median of the hints revealed, over the learners whose report has the exercise.
    pub median_hints: f64,
    pub hints_total: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct LearnerRow {
    pub name: String,
    pub report_file: String,
    pub report_generated_at: String,
    /// Exercises passed with their original tests, of the cohort's exercises.
    pub passed: usize,
    pub total: usize,
    /// The latest first pass of any exercise in the report (RFC 3339).
    pub last_passed: Option<String>,
    /// One per exercise column, in the columns' order.
    pub cells: Vec<Cell>,
    /// The report was made on another curriculum version than most.
    pub other_curriculum: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stuck {
    pub exercise: String,
    pub failing: usize,
    pub reported: usize,
    pub median_hints: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cohort {
    pub schema: &'static str,
    pub schema_version: u32,
    pub generated_at: String,
    /// The sets the reports were made for (usually one).
    pub sets: Vec<String>,
    pub exercises: Vec<ExerciseColumn>,
    pub learners: Vec<LearnerRow>,
    /// Most failing first, then most hints.
    pub stuck: Vec<Stuck>,
    /// What a mentor must know before trusting the grid.
    pub notes: Vec<String>,
}

/// Merges the reports into one view. Fails (naming the file) on a report from another workbook.
pub fn merge(reports: Vec<LearnerReport>) -> Result<Cohort> {
    check_same_workbook(&reports)?;
    let mut notes = Vec::new();
    let reports = newest_per_learner(reports, &mut notes);
    let columns = exercise_columns(&reports);
    let usual_curriculum = usual_curriculum(&reports, &mut notes);

    let mut learners: Vec<LearnerRow> = reports
        .iter()
        .map(|report| {
            let by_name: HashMap<&str, &ReportedExercise> = report
                .exercises
                .iter()
                .map(|e| (e.name.as_str(), e))
                .collect();
            let cells: Vec<Cell> = columns
                .iter()
                .map(|(name, _)| Cell::of(by_name.get(name.as_str()).copied()))
                .collect();
            let other_curriculum = match (&report.curriculum, &usual_curriculum) {
                (Some(this), Some(usual)) => this != usual,
                _ => false,
            };
            if report.named_after_file {
                notes.push(format!(
                    "{} has no learner name (it was made by an older sdlings): its row is named after the file",
                    report.file.display()
                ));
            }
            LearnerRow {
                name: report.learner.clone(),
                report_file: report.file.display().to_string(),
                report_generated_at: report.generated_at.clone(),
                passed: cells.iter().filter(|&&c| c == Cell::Passed).count(),
                total: columns.len(),
                last_passed: report
                    .exercises
                    .iter()
                    .filter_map(|e| e.first_passed.clone())
                    .max(),
                cells,
                other_curriculum,
            }
        })
        .collect();
    learners.sort_by_key(|row| row.name.to_lowercase());

    let exercises: Vec<ExerciseColumn> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, topic))| column_stats(name, topic, i, &learners, &reports))
        .collect();
    let edited: usize = exercises.iter().map(|e| e.tests_edited).sum();
    if edited > 0 {
        notes.push(format!(
            "{edited} result(s) come from exercises whose tests were edited (⚠): they count as not passed"
        ));
    }
    let mut sets: Vec<String> = reports.iter().map(|r| r.set_title.clone()).collect();
    sets.sort();
    sets.dedup();
    if sets.len() > 1 {
        notes.push(format!(
            "the reports were made for {} different sets: a learner's missing exercises show as –",
            sets.len()
        ));
    }
    Ok(Cohort {
        schema: "sdlings-cohort-report",
        schema_version: COHORT_SCHEMA_VERSION,
        generated_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        sets,
        stuck: stuck(&exercises),
        exercises,
        learners,
        notes,
    })
}

/// A report that shares no exercise with any other comes from another workbook.
fn check_same_workbook(reports: &[LearnerReport]) -> Result<()> {
    if reports.len() < 2 {
        return Ok(());
    }
    for (i, report) in reports.iter().enumerate() {
        let shares = report.exercises.iter().any(|e| {
            reports
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && other.exercises.iter().any(|o| o.name == e.name))
        });
        if !shares && !report.exercises.is_empty() {
            let names: Vec<&str> = report
                .exercises
                .iter()
                .take(3)
                .map(|e| e.name.as_str())
                .collect();
            bail!(
                "{}: from another workbook: none of its exercises ({}{}) is in the other reports; merge the reports of one workbook at a time",
                report.file.display(),
                names.join(", "),
                if report.exercises.len() > 3 {
                    ", …"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

/// One report per learner: the newest (by its time, then by its place on the command line).
fn newest_per_learner(reports: Vec<LearnerReport>, notes: &mut Vec<String>) -> Vec<LearnerReport> {
    let mut by_learner: BTreeMap<String, Vec<LearnerReport>> = BTreeMap::new();
    for report in reports {
        by_learner
            .entry(report.learner.to_lowercase())
            .or_default()
            .push(report);
    }
    by_learner
        .into_values()
        .map(|mut same| {
            // Stable: of two equally new reports, the later one given wins.
            same.sort_by_key(|r| r.generated);
            let newest = same.pop().expect("each group has a report");
            if !same.is_empty() {
                let older: Vec<String> =
                    same.iter().map(|r| r.file.display().to_string()).collect();
                notes.push(format!(
                    "{} has {} reports: the newest ({}, of {}) is shown; not used: {}",
                    newest.learner,
                    same.len() + 1,
                    newest.file.display(),
                    newest.generated_at,
                    older.join(", ")
                ));
            }
            newest
        })
        .collect()
}

/// The exercises of all reports, each once, in the order the reports list them.
fn exercise_columns(reports: &[LearnerReport]) -> Vec<(String, String)> {
    let mut columns: Vec<(String, String)> = Vec::new();
    let mut longest_first: Vec<&LearnerReport> = reports.iter().collect();
    longest_first.sort_by_key(|r| std::cmp::Reverse(r.exercises.len()));
    for report in longest_first {
        for e in &report.exercises {
            if !columns.iter().any(|(name, _)| *name == e.name) {
                columns.push((e.name.clone(), e.topic.clone()));
            }
        }
    }
    columns
}

/// The curriculum fingerprint most reports share; notes the reports made on another.
fn usual_curriculum(reports: &[LearnerReport], notes: &mut Vec<String>) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for print in reports.iter().filter_map(|r| r.curriculum.as_deref()) {
        *counts.entry(print).or_default() += 1;
    }
    let usual = counts
        .iter()
        .max_by_key(|(_, count)| **count)
        .map(|(print, _)| print.to_string());
    if let Some(usual) = &usual {
        let others: Vec<&str> = reports
            .iter()
            .filter(|r| r.curriculum.as_ref().is_some_and(|c| c != usual))
            .map(|r| r.learner.as_str())
            .collect();
        if !others.is_empty() {
            notes.push(format!(
                "made on another version of the curriculum than the others (exercises may differ): {}",
                others.join(", ")
            ));
        }
    }
    let unknown = reports.iter().filter(|r| r.curriculum.is_none()).count();
    if unknown > 0 && reports.len() > 1 {
        notes.push(format!(
            "{unknown} report(s) were made by an older sdlings that does not record the curriculum version"
        ));
    }
    usual
}

fn column_stats(
    name: &str,
    topic: &str,
    column: usize,
    learners: &[LearnerRow],
    reports: &[LearnerReport],
) -> ExerciseColumn {
    let count = |cell| learners.iter().filter(|l| l.cells[column] == cell).count();
    let entries: Vec<&ReportedExercise> = reports
        .iter()
        .filter_map(|r| r.exercises.iter().find(|e| e.name == name))
        .collect();
    let mut hints: Vec<usize> = entries.iter().map(|e| e.hints_revealed).collect();
    ExerciseColumn {
        name: name.to_string(),
        topic: topic.to_string(),
        reported: entries.len(),
        passed: count(Cell::Passed),
        failing: count(Cell::Failing),
        not_attempted: count(Cell::NotAttempted),
        tests_edited: count(Cell::TestsEdited),
        median_hints: median(&mut hints),
        hints_total: entries.iter().map(|e| e.hints_total).max().unwrap_or(0),
    }
}

fn median(values: &mut [usize]) -> f64 {
    values.sort_unstable();
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2] as f64,
        n => (values[n / 2 - 1] + values[n / 2]) as f64 / 2.0,
    }
}

/// The exercises where learners fail or lean on hints: most failing first, then most hints.
fn stuck(exercises: &[ExerciseColumn]) -> Vec<Stuck> {
    let mut stuck: Vec<Stuck> = exercises
        .iter()
        .filter(|e| e.failing > 0 || e.median_hints > 0.0)
        .map(|e| Stuck {
            exercise: e.name.clone(),
            failing: e.failing,
            reported: e.reported,
            median_hints: e.median_hints,
        })
        .collect();
    stuck.sort_by(|a, b| {
        b.failing
            .cmp(&a.failing)
            .then(b.median_hints.total_cmp(&a.median_hints))
    });
    stuck.truncate(STUCK_LIST_LEN);
    stuck
}

/// "1.5" or "2": a median as a person writes it.
pub fn hints_text(median: f64) -> String {
    if median.fract() == 0.0 {
        format!("{median:.0}")
    } else {
        format!("{median:.1}")
    }
}

/// "median 1 hint", "median 1.5 hints".
pub fn median_hints_phrase(median: f64) -> String {
    let noun = if median == 1.0 { "hint" } else { "hints" };
    format!("median {} {noun}", hints_text(median))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_between_the_middle_two() {
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [3, 1, 2]), 2.0);
        assert_eq!(median(&mut [4, 1, 2, 3]), 2.5);
        assert_eq!(median_hints_phrase(1.0), "median 1 hint");
        assert_eq!(median_hints_phrase(1.5), "median 1.5 hints");
    }

    #[test]
    fn the_stuck_list_ranks_failures_before_hints_and_leaves_out_the_easy() {
        let column = |name: &str, failing, median_hints| ExerciseColumn {
            name: name.into(),
            topic: "t".into(),
            reported: 4,
            passed: 0,
            failing,
            not_attempted: 0,
            tests_edited: 0,
            median_hints,
            hints_total: 3,
        };
        let ranked = stuck(&[
            column("easy", 0, 0.0),
            column("hinted", 0, 3.0),
            column("failing", 2, 0.0),
            column("worst", 2, 1.0),
        ]);
        let names: Vec<&str> = ranked.iter().map(|s| s.exercise.as_str()).collect();
        assert_eq!(names, ["worst", "failing", "hinted"]);
    }
}
