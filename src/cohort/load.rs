//! Reading learners' `verify --format json` reports, of this and earlier schema versions, with a
//! message naming the file for anything that is not one.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Result, bail};
use serde::Deserialize;

use crate::report::JSON_SCHEMA_VERSION;

/// The schema name every verify report carries.
const SCHEMA: &str = "sdlings-verify-report";

/// One learner's report, as read.
#[derive(Debug, Clone)]
pub struct LearnerReport {
    pub file: PathBuf,
    /// The report's `learner`, or (for reports made before it existed) the file's name.
    pub learner: String,
    pub named_after_file: bool,
    pub generated_at: String,
    pub generated: Option<SystemTime>,
    pub curriculum: Option<String>,
    pub set_title: String,
    pub exercises: Vec<ReportedExercise>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReportedExercise {
    pub name: String,
    pub topic: String,
    pub status: ReportedStatus,
    pub hints_revealed: usize,
    pub hints_total: usize,
    pub first_passed: Option<String>,
    pub tests_changed: bool,
}

/// Statuses of every schema version (version 1 had no `reverted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportedStatus {
    Passed,
    Failed,
    NotAttempted,
    Reverted,
}

#[derive(Deserialize)]
struct RawReport {
    generated_at: String,
    #[serde(default)]
    learner: Option<String>,
    #[serde(default)]
    curriculum: Option<String>,
    set: RawSet,
    exercises: Vec<ReportedExercise>,
}

#[derive(Deserialize)]
struct RawSet {
    title: String,
}

/// Reads one report; the error names the file and says what is wrong with it.
pub fn read(file: &Path) -> Result<LearnerReport> {
    let shown = file.display();
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => bail!("{shown}: cannot read it ({e})"),
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(e) => bail!(
            "{shown}: not JSON ({e}); merge the reports written by `sdlings verify --format json`"
        ),
    };
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(SCHEMA) => {}
        Some(other) => bail!("{shown}: not an sdlings verify report (its schema is `{other}`)"),
        None => bail!(
            "{shown}: not an sdlings verify report (it has no \"schema\": \"{SCHEMA}\"); merge the reports written by `sdlings verify --format json`"
        ),
    }
    let version = value
        .get("schema_version")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    if version == 0 || version > u64::from(JSON_SCHEMA_VERSION) {
        bail!(
            "{shown}: a report of schema version {version}, which this sdlings cannot read (it reads 1 to {JSON_SCHEMA_VERSION}); merge with the sdlings that made it, or a newer one"
        );
    }
    let raw: RawReport = match serde_json::from_value(value) {
        Ok(raw) => raw,
        Err(e) => bail!("{shown}: a damaged verify report ({e})"),
    };
    let named = raw
        .learner
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty());
    let named_after_file = named.is_none();
    let learner = named.unwrap_or_else(|| {
        file.file_stem()
            .map_or_else(|| shown.to_string(), |s| s.to_string_lossy().into_owned())
    });
    Ok(LearnerReport {
        file: file.to_path_buf(),
        learner,
        named_after_file,
        generated: humantime::parse_rfc3339_weak(&raw.generated_at).ok(),
        generated_at: raw.generated_at,
        curriculum: raw.curriculum,
        set_title: raw.set.title,
        exercises: raw.exercises,
    })
}
