//! Grading reports: what `sdlings verify` found, as text for the learner, Markdown for a pull
//! request comment, JSON for scripts (a versioned schema, documented in sets/README.md) and JUnit
//! XML for CI test-report viewers.

use clap::ValueEnum;
use colored::Colorize;
use serde::Serialize;

/// Bumped whenever a field of the JSON report changes meaning or disappears.
pub const JSON_SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
    Junit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    /// The file is exactly as shipped: the learner has not started it.
    NotAttempted,
    /// The file is exactly as shipped again, after the exercise passed (`sdlings reset`, or the
    /// work was undone): it passed once but the work is not there now.
    Reverted,
}

#[derive(Debug, Clone, Serialize)]
pub struct FirstFailure {
    pub test: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    pub topic: String,
    pub status: Status,
    /// One line, e.g. "2 of 7 tests fail" or "does not compile".
    pub summary: String,
    pub first_failure: Option<FirstFailure>,
    pub hints_revealed: usize,
    pub hints_total: usize,
    /// RFC 3339, when the exercise first passed.
    pub first_passed: Option<String>,
    /// The exercise's test module differs from the original's: a pass proves nothing.
    pub tests_changed: bool,
}

impl Entry {
    /// Whether this exercise counts as passed for grading.
    pub fn counts_as_passed(&self) -> bool {
        self.status == Status::Passed && !self.tests_changed
    }

    /// When it first passed, for an exercise that does not pass now (failing or reverted): the
    /// report says the learner got there once.
    fn earlier_pass(&self) -> Option<&str> {
        match self.status {
            Status::Failed | Status::Reverted => self.first_passed.as_deref(),
            Status::Passed | Status::NotAttempted => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SetInfo {
    pub name: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub total: usize,
    /// Passed with the original tests.
    pub passed: usize,
    pub failed: usize,
    pub not_attempted: usize,
    pub reverted: usize,
    /// Whatever their run found: their tests differ from the original.
    pub tests_changed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub schema_version: u32,
    pub sdlings_version: &'static str,
    pub generated_at: String,
    /// Whose workbook this is (`verify --learner`, else the author of the workbook's latest
    /// commit, else git's `user.name`), for a mentor merging a cohort's reports.
    pub learner: Option<String>,
    /// A fingerprint of the workbook's info.toml: reports with different ones were made on
    /// different versions of the curriculum.
    pub curriculum: Option<String>,
    /// What the tests were compared with to say `tests_changed`.
    pub reference: &'static str,
    pub set: SetInfo,
    pub summary: Summary,
    pub exercises: Vec<Entry>,
}

impl Report {
    pub fn new(set: SetInfo, reference: &'static str, exercises: Vec<Entry>) -> Report {
        // Exclusive buckets that add up to the total: an exercise with changed tests counts only
        // as that, whatever its run found, since its verdict proves nothing.
        let count = |status| {
            exercises
                .iter()
                .filter(|e| !e.tests_changed && e.status == status)
                .count()
        };
        let summary = Summary {
            total: exercises.len(),
            passed: count(Status::Passed),
            failed: count(Status::Failed),
            not_attempted: count(Status::NotAttempted),
            reverted: count(Status::Reverted),
            tests_changed: exercises.iter().filter(|e| e.tests_changed).count(),
        };
        Report {
            schema: "sdlings-verify-report",
            schema_version: JSON_SCHEMA_VERSION,
            sdlings_version: env!("CARGO_PKG_VERSION"),
            generated_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string(),
            learner: None,
            curriculum: None,
            reference,
            set,
            summary,
            exercises,
        }
    }

    pub fn all_passed(&self) -> bool {
        self.exercises.iter().all(Entry::counts_as_passed)
    }

    /// "5 passed, 2 failed, 1 not attempted" (and tests changed, when any were).
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        let mut line = format!(
            "{} passed, {} failed, {} not attempted",
            s.passed, s.failed, s.not_attempted
        );
        if s.reverted > 0 {
            line.push_str(&format!(", {} reverted after passing", s.reverted));
        }
        if s.tests_changed > 0 {
            line.push_str(&format!(", {} with changed tests", s.tests_changed));
        }
        line
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => self.text(),
            Format::Markdown => self.markdown(),
            Format::Json => {
                let mut json =
                    serde_json::to_string_pretty(self).expect("a report always serialises");
                json.push('\n');
                json
            }
            Format::Junit => self.junit(),
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for e in &self.exercises {
            let (mark, what) = match e.status {
                Status::Passed => ("✓".green().bold(), e.summary.clone()),
                Status::Failed => ("✗".red().bold(), e.summary.clone()),
                Status::NotAttempted => ("○".dimmed().bold(), "not attempted".to_string()),
                Status::Reverted => ("↺".yellow().bold(), e.summary.clone()),
            };
            out.push_str(&format!("{mark} {}: {what}", e.name));
            if let Some(when) = e.earlier_pass() {
                out.push_str(&format!(" (passed earlier, on {when})"));
            }
            if let Some(f) = &e.first_failure {
                out.push_str(&format!(" (first failing test: {})", f.test));
            }
            if e.tests_changed {
                out.push_str(&format!(" {}", "— its tests were changed".yellow()));
            }
            out.push('\n');
        }
        out.push_str(&format!("\n{}\n", self.summary_line()));
        out
    }

    fn markdown(&self) -> String {
        let whose = self
            .learner
            .as_deref()
            .map_or(String::new(), |name| format!(" — {}", markdown_cell(name)));
        let mut out = format!(
            "## sdlings report: {}{whose}\n\n{}\n\n| exercise | topic | result | first failing test | hints | first passed | tests changed |\n|---|---|---|---|---|---|---|\n",
            markdown_cell(&self.set.title),
            self.summary_line()
        );
        for e in &self.exercises {
            let result = match e.status {
                Status::Passed => "✅ passed".to_string(),
                Status::Failed => format!("❌ {}", e.summary),
                Status::NotAttempted => "⬜ not attempted".to_string(),
                Status::Reverted => format!("↩️ {}", e.summary),
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {}/{} | {} | {} |\n",
                e.name,
                e.topic,
                markdown_cell(&result),
                e.first_failure
                    .as_ref()
                    .map_or(String::new(), |f| format!("`{}`", f.test)),
                e.hints_revealed,
                e.hints_total,
                e.first_passed.as_deref().unwrap_or(""),
                if e.tests_changed { "⚠️ yes" } else { "no" }
            ));
        }
        out
    }

    fn junit(&self) -> String {
        let s = &self.summary;
        let failures = self
            .exercises
            .iter()
            .filter(|e| {
                matches!(e.status, Status::Failed | Status::Reverted)
                    || (e.tests_changed && e.status == Status::Passed)
            })
            .count();
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"sdlings\" tests=\"{}\" failures=\"{failures}\" skipped=\"{}\">\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{}\" timestamp=\"{}\">\n",
            s.total,
            s.not_attempted,
            xml(&self.set.name),
            s.total,
            s.not_attempted,
            xml(&self.generated_at),
        );
        for e in &self.exercises {
            out.push_str(&format!(
                "    <testcase classname=\"sdlings.{}\" name=\"{}\">\n",
                xml(&e.topic),
                xml(&e.name)
            ));
            if e.tests_changed {
                out.push_str(&format!(
                    "      <failure type=\"tests_changed\" message=\"the exercise's tests were changed from the original\">{}</failure>\n",
                    xml(&e.summary)
                ));
            } else if e.status == Status::Failed {
                let detail = e
                    .first_failure
                    .as_ref()
                    .map_or(String::new(), |f| format!("{}\n{}", f.test, f.message));
                out.push_str(&format!(
                    "      <failure type=\"failed\" message=\"{}\">{}</failure>\n",
                    xml(&e.summary),
                    xml(&detail)
                ));
            } else if e.status == Status::NotAttempted {
                out.push_str("      <skipped message=\"not attempted\"/>\n");
            } else if e.status == Status::Reverted {
                out.push_str(
                    "      <failure type=\"reverted\" message=\"back to its original text after passing\"/>\n",
                );
            }
            out.push_str(&format!(
                "      <system-out>hints revealed: {}/{}; first passed: {}</system-out>\n    </testcase>\n",
                e.hints_revealed,
                e.hints_total,
                xml(e.first_passed.as_deref().unwrap_or("never"))
            ));
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

/// A fingerprint of a curriculum file's text (64-bit FNV-1a, in hex): equal texts, equal prints.
pub fn fingerprint(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

pub fn markdown_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Escapes text for XML attributes and content, dropping characters XML 1.0 cannot carry
/// (control characters, e.g. from terminal colour codes).
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, status: Status, tests_changed: bool) -> Entry {
        Entry {
            name: name.into(),
            topic: "01_caching".into(),
            status,
            summary: match status {
                Status::Passed => "all 3 tests pass".into(),
                Status::Failed => "1 of 3 tests fail".into(),
                Status::NotAttempted => "not attempted".into(),
                Status::Reverted => "back to its original text after passing".into(),
            },
            first_failure: (status == Status::Failed).then(|| FirstFailure {
                test: "evicts_lru".into(),
                message: "expected <a> & got \"b\"\u{1b}[0m".into(),
            }),
            hints_revealed: 1,
            hints_total: 3,
            first_passed: None,
            tests_changed,
        }
    }

    fn report() -> Report {
        Report::new(
            SetInfo {
                name: "week1".into(),
                title: "Week 1".into(),
            },
            "the curriculum built into this sdlings",
            vec![
                entry("lru_cache", Status::Passed, false),
                entry("ttl_cache", Status::Failed, false),
                entry("cache_aside", Status::NotAttempted, false),
                entry("stampede", Status::Passed, true),
            ],
        )
    }

    #[test]
    fn summary_and_grading_count_changed_tests_as_not_passed() {
        let r = report();
        assert_eq!(
            r.summary_line(),
            "1 passed, 1 failed, 1 not attempted, 1 with changed tests"
        );
        assert!(!r.all_passed());
    }

    #[test]
    fn json_has_a_versioned_schema() {
        let json: serde_json::Value = serde_json::from_str(&report().render(Format::Json)).unwrap();
        assert_eq!(json["schema"], "sdlings-verify-report");
        assert_eq!(json["schema_version"], 2);
        assert_eq!(json["summary"]["not_attempted"], 1);
        assert_eq!(json["exercises"][1]["status"], "failed");
        assert_eq!(json["exercises"][1]["first_failure"]["test"], "evicts_lru");
        assert_eq!(json["exercises"][3]["tests_changed"], true);
    }

    #[test]
    fn junit_escapes_and_classifies() {
        let xml = report().render(Format::Junit);
        assert!(
            xml.contains("tests=\"4\" failures=\"2\" skipped=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("expected &lt;a&gt; &amp; got &quot;b&quot;[0m"),
            "{xml}"
        );
        assert!(xml.contains("<failure type=\"tests_changed\""), "{xml}");
        assert!(
            xml.contains("<skipped message=\"not attempted\"/>"),
            "{xml}"
        );
    }

    #[test]
    fn markdown_is_a_table() {
        let md = report().render(Format::Markdown);
        assert!(
            md.contains("| `ttl_cache` | 01_caching | ❌ 1 of 3 tests fail | `evicts_lru` | 1/3 |"),
            "{md}"
        );
    }
}
