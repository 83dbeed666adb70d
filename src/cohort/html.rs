//! The cohort view as one self-contained HTML page: no network, no scripts, no external fonts.
//!
//! It must work where mentors read it: on a phone (the grid scrolls sideways under a fixed
//! column of names), on paper (a print style without the scrolling), and for people who do not
//! see colour (every cell carries a symbol; colour only repeats it).

use std::fmt::Write as _;

use super::{Cell, Cohort, hints_text, median_hints_phrase};

const STYLE: &str = r#"
:root { color-scheme: light; font-family: system-ui, sans-serif; line-height: 1.4; }
body { margin: 0 auto; padding: 1rem; max-width: 72rem; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 1.75rem 0 .5rem; }
.meta { color: #555; margin: 0; }
.notes { border-left: 4px solid #b26b00; background: #fff6e5; padding: .5rem 1rem; }
.notes li { margin: .25rem 0; }
.scroll { overflow-x: auto; border: 1px solid #ddd; }
table { border-collapse: separate; border-spacing: 0; }
th, td { border: solid #ddd; border-width: 0 1px 1px 0; padding: .25rem .5rem; text-align: left; }
tr > :first-child { border-left-width: 1px; }
thead tr > *, table > tbody:first-child tr:first-child > * { border-top-width: 1px; }
.grid th[scope=col].ex { vertical-align: bottom; padding: .5rem .25rem; }
.grid th[scope=col].ex span { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; font-weight: 500; }
.grid th[scope=row] { position: sticky; left: 0; background: #fff; white-space: nowrap; }
.grid td { text-align: center; min-width: 1.6rem; font-size: 1.1rem; }
td.passed { background: #e3f4e1; color: #1e6b1a; }
td.failing { background: #fde4e1; color: #a3160b; font-weight: 700; }
td.not_attempted { color: #777; }
td.reverted { background: #fff3cd; color: #7a5a00; }
td.tests_edited { background: #fff3cd; color: #7a5a00; font-weight: 700; }
td.absent { color: #aaa; }
.legend span { white-space: nowrap; margin-right: 1rem; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: .95em; }
@media (max-width: 40rem) { body { padding: .5rem; } h1 { font-size: 1.25rem; } }
@media print {
  @page { size: landscape; margin: 1cm; }
  body { max-width: none; padding: 0; font-size: 9pt; }
  .scroll { overflow: visible; border: 0; }
  .grid th[scope=row] { position: static; }
  td, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; }
  tr { break-inside: avoid; }
}
"#;

pub fn render(cohort: &Cohort) -> String {
    let title = format!("Cohort: {}", cohort.sets.join("; "));
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n<h1>{}</h1>\n\
         <p class=\"meta\">{} learners · {} exercises · merged {}</p>\n</header>\n",
        esc(&title),
        esc(&title),
        cohort.learners.len(),
        cohort.exercises.len(),
        esc(&cohort.generated_at)
    );
    notes(&mut out, cohort);
    stuck(&mut out, cohort);
    grid(&mut out, cohort);
    per_exercise(&mut out, cohort);
    per_learner(&mut out, cohort);
    out.push_str("</body>\n</html>\n");
    out
}

fn notes(out: &mut String, cohort: &Cohort) {
    if cohort.notes.is_empty() {
        return;
    }
    out.push_str("<section class=\"notes\" id=\"notes\">\n<h2>Read this first</h2>\n<ul>\n");
    for note in &cohort.notes {
        let _ = writeln!(out, "<li>⚠ {}</li>", esc(note));
    }
    out.push_str("</ul>\n</section>\n");
}

fn stuck(out: &mut String, cohort: &Cohort) {
    out.push_str("<section id=\"stuck\">\n<h2>Where the cohort is stuck</h2>\n");
    if cohort.stuck.is_empty() {
        out.push_str("<p>Nowhere: no exercise is failing and no hints were needed.</p>\n");
    } else {
        out.push_str("<ol>\n");
        for s in &cohort.stuck {
            let _ = writeln!(
                out,
                "<li><code>{}</code>: {} of {} failing, {}</li>",
                esc(&s.exercise),
                s.failing,
                s.reported,
                median_hints_phrase(s.median_hints)
            );
        }
        out.push_str("</ol>\n");
    }
    out.push_str("</section>\n");
}

fn grid(out: &mut String, cohort: &Cohort) {
    out.push_str("<section id=\"grid\">\n<h2>Learners × exercises</h2>\n<p class=\"legend\">");
    for cell in Cell::ALL {
        let _ = write!(out, "<span>{} {}</span> ", cell.symbol(), esc(cell.words()));
    }
    out.push_str(
        "</p>\n<div class=\"scroll\">\n<table class=\"grid\">\n<thead>\n<tr><th scope=\"col\">learner</th><th scope=\"col\">passed</th>",
    );
    for e in &cohort.exercises {
        let _ = write!(
            out,
            "<th scope=\"col\" class=\"ex\" title=\"{}\"><span>{}</span></th>",
            esc(&e.topic),
            esc(&e.name)
        );
    }
    out.push_str("</tr>\n</thead>\n<tbody>\n");
    for l in &cohort.learners {
        let flag = if l.other_curriculum {
            " <abbr title=\"made on another curriculum version\">⚠</abbr>"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}{flag}</th><td class=\"num\">{}/{}</td>",
            esc(&l.name),
            l.passed,
            l.total
        );
        for (cell, e) in l.cells.iter().zip(&cohort.exercises) {
            let words = format!("{}: {}", e.name, cell.words());
            let _ = write!(
                out,
                "<td class=\"{}\" title=\"{}\"><span role=\"img\" aria-label=\"{}\">{}</span></td>",
                class(*cell),
                esc(&words),
                esc(&words),
                cell.symbol()
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n</section>\n");
}

fn per_exercise(out: &mut String, cohort: &Cohort) {
    out.push_str(
        "<section id=\"exercises\">\n<h2>Per exercise</h2>\n<div class=\"scroll\">\n<table>\n<thead><tr><th>exercise</th><th>topic</th><th>passed</th><th>failing</th><th>not attempted</th><th>tests edited</th><th>median hints</th></tr></thead>\n<tbody>\n",
    );
    for e in &cohort.exercises {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}/{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} of {}</td></tr>",
            esc(&e.name),
            esc(&e.topic),
            e.passed,
            e.reported,
            e.failing,
            e.not_attempted,
            e.tests_edited,
            hints_text(e.median_hints),
            e.hints_total
        );
    }
    out.push_str("</tbody>\n</table>\n</div>\n</section>\n");
}

fn per_learner(out: &mut String, cohort: &Cohort) {
    out.push_str(
        "<section id=\"learners\">\n<h2>Per learner</h2>\n<div class=\"scroll\">\n<table>\n<thead><tr><th>learner</th><th>passed</th><th>last passed something</th><th>report</th></tr></thead>\n<tbody>\n",
    );
    for l in &cohort.learners {
        let flag = if l.other_curriculum {
            " <strong>⚠ other curriculum version</strong>"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">{}{flag}</th><td class=\"num\">{}/{}</td><td>{}</td><td>{} of {}</td></tr>",
            esc(&l.name),
            l.passed,
            l.total,
            esc(l.last_passed.as_deref().unwrap_or("never")),
            esc(&l.report_file),
            esc(&l.report_generated_at)
        );
    }
    out.push_str("</tbody>\n</table>\n</div>\n</section>\n");
}

fn class(cell: Cell) -> &'static str {
    match cell {
        Cell::Passed => "passed",
        Cell::Failing => "failing",
        Cell::NotAttempted => "not_attempted",
        Cell::Reverted => "reverted",
        Cell::TestsEdited => "tests_edited",
        Cell::Absent => "absent",
    }
}

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
