//! The cohort view as Markdown: for an issue, a wiki page or a pull-request comment.

use std::fmt::Write as _;

use super::{Cell, Cohort, hints_text, median_hints_phrase};
use crate::report::markdown_cell;

pub fn render(cohort: &Cohort) -> String {
    let mut out = format!(
        "# Cohort: {}\n\n{} learners · {} exercises · merged {}\n\n",
        markdown_cell(&cohort.sets.join("; ")),
        cohort.learners.len(),
        cohort.exercises.len(),
        cohort.generated_at
    );
    if !cohort.notes.is_empty() {
        out.push_str("## Read this first\n\n");
        for note in &cohort.notes {
            let _ = writeln!(out, "- ⚠ {}", markdown_cell(note));
        }
        out.push('\n');
    }

    out.push_str("## Where the cohort is stuck\n\n");
    if cohort.stuck.is_empty() {
        out.push_str("Nowhere: no exercise is failing and no hints were needed.\n");
    }
    for (n, s) in cohort.stuck.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}. `{}`: {} of {} failing, {}",
            n + 1,
            s.exercise,
            s.failing,
            s.reported,
            median_hints_phrase(s.median_hints)
        );
    }

    out.push_str("\n## Learners × exercises\n\n");
    let legend: Vec<String> = Cell::ALL
        .iter()
        .map(|c| format!("{} {}", c.symbol(), c.words()))
        .collect();
    let _ = writeln!(out, "{}\n", legend.join(" · "));
    out.push_str("| learner | passed |");
    for e in &cohort.exercises {
        let _ = write!(out, " `{}` |", e.name);
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(cohort.exercises.len()));
    out.push('\n');
    for l in &cohort.learners {
        let _ = write!(
            out,
            "| {} | {}/{} |",
            markdown_cell(&l.name),
            l.passed,
            l.total
        );
        for cell in &l.cells {
            let _ = write!(out, " {} |", cell.symbol());
        }
        out.push('\n');
    }

    out.push_str(
        "\n## Per exercise\n\n| exercise | topic | passed | failing | not attempted | tests edited | median hints |\n|---|---|---|---|---|---|---|\n",
    );
    for e in &cohort.exercises {
        let _ = writeln!(
            out,
            "| `{}` | {} | {}/{} | {} | {} | {} | {} of {} |",
            e.name,
            markdown_cell(&e.topic),
            e.passed,
            e.reported,
            e.failing,
            e.not_attempted,
            e.tests_edited,
            hints_text(e.median_hints),
            e.hints_total
        );
    }

    out.push_str(
        "\n## Per learner\n\n| learner | passed | last passed something | report |\n|---|---|---|---|\n",
    );
    for l in &cohort.learners {
        let _ = writeln!(
            out,
            "| {}{} | {}/{} | {} | {} of {} |",
            markdown_cell(&l.name),
            if l.other_curriculum {
                " (⚠ other curriculum version)"
            } else {
                ""
            },
            l.passed,
            l.total,
            l.last_passed.as_deref().unwrap_or("never"),
            markdown_cell(&l.report_file),
            l.report_generated_at
        );
    }
    out
}
