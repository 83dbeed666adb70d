//! The shape targets of an exercise (AUTHORING.md, "Anatomy of an exercise file"): the learner's
//! part on the first screen, files short enough to read, and enough plausible mistakes listed for
//! the tests to be worth trusting. `dev check` enforces them; an exercise that cannot meet them
//! yet is named in `solutions/anatomy.toml` with the reason, so the debt stays visible and an
//! exemption that is no longer needed is reported too. That file may also set other targets (the
//! CLI's small test workbook lists fewer mistakes per exercise).

use std::collections::BTreeMap;
use std::fs;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::workbook::{SOLUTIONS_DIR, Workbook};

/// The file, beside the solutions, that holds a workbook's targets and exemptions.
pub const POLICY_FILE: &str = "anatomy.toml";

/// The targets. A workbook without a policy file gets these defaults, the ones AUTHORING.md sets.
#[derive(Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Targets {
    /// The first `todo!()` within this many lines: the learner's part is on the first screen.
    first_todo_within: usize,
    /// No exercise file (tests included) longer than this.
    max_lines: usize,
    /// The median exercise file of a topic no longer than this.
    topic_median_lines: usize,
    /// At least this many plausible mistakes listed for the tests to reject.
    min_mutants: usize,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            first_todo_within: 80,
            max_lines: 550,
            topic_median_lines: 350,
            min_mutants: 8,
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Policy {
    targets: Targets,
    /// Exercise (or topic) name → why it does not meet the targets yet.
    exempt: BTreeMap<String, String>,
}

/// What one exercise file measures.
struct Measure {
    lines: usize,
    first_todo: Option<usize>,
}

fn measure(text: &str) -> Measure {
    Measure {
        lines: text.lines().count(),
        first_todo: text
            .lines()
            .position(|l| l.contains("todo!("))
            .map(|i| i + 1),
    }
}

fn policy(workbook: &Workbook) -> Result<Policy> {
    let path = workbook.root.join(SOLUTIONS_DIR).join(POLICY_FILE);
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(Policy::default());
    };
    toml::from_str(&text).with_context(|| {
        format!(
            "{} must hold a [targets] table and an [exempt] table of `name = \"reason\"` lines",
            workbook.display_path(&path)
        )
    })
}

/// Problems with the anatomy targets, for every exercise and topic not exempted; and exemptions
/// that name nothing, or something that now meets the targets. `mutant_counts` holds the length
/// of each exercise's mutants list that loaded (the mutants check has already read them all; a
/// list that did not load is its problem to report).
pub fn anatomy_problems(
    workbook: &Workbook,
    mutant_counts: &BTreeMap<&str, usize>,
) -> Result<Vec<String>> {
    let Policy { targets, exempt } = policy(workbook)?;
    let mut problems = Vec::new();
    let mut needed: Vec<&str> = Vec::new();
    for (index, topic) in workbook.info.topics.iter().enumerate() {
        let mut lengths = Vec::new();
        for exercise in workbook.info.exercises.iter().filter(|e| e.topic == index) {
            let Ok(text) = fs::read_to_string(workbook.exercise_path(exercise)) else {
                continue; // a missing file is reported by the file checks
            };
            let m = measure(&text);
            lengths.push(m.lines);
            let mutants = mutant_counts.get(exercise.name.as_str()).copied();
            let own = exercise_problems(&exercise.name, &m, mutants, &targets);
            if own.is_empty() {
                continue;
            }
            needed.push(&exercise.name);
            if !exempt.contains_key(&exercise.name) {
                problems.extend(own);
            }
        }
        if let Some(median) = median(&mut lengths)
            && median > targets.topic_median_lines
        {
            needed.push(&topic.name);
            if !exempt.contains_key(&topic.name) {
                problems.push(format!(
                    "topic {}: its median exercise file has {median} lines; the target is at most {} (move machinery into the kit)",
                    topic.name, targets.topic_median_lines
                ));
            }
        }
    }
    for name in exempt.keys() {
        if !needed.contains(&name.as_str()) {
            problems.push(format!(
                "{SOLUTIONS_DIR}/{POLICY_FILE}: `{name}` meets the anatomy targets (or is not an exercise or topic): remove its exemption"
            ));
        }
    }
    Ok(problems)
}

fn exercise_problems(
    name: &str,
    m: &Measure,
    mutants: Option<usize>,
    targets: &Targets,
) -> Vec<String> {
    let Targets {
        first_todo_within,
        max_lines,
        min_mutants,
        ..
    } = *targets;
    let mut problems = Vec::new();
    if m.lines > max_lines {
        problems.push(format!(
            "{name}: the exercise file has {} lines; at most {max_lines} (tests included): move machinery into the kit, or split the exercise",
            m.lines
        ));
    }
    if let Some(line) = m.first_todo
        && line > first_todo_within
    {
        problems.push(format!(
            "{name}: the first `todo!()` is on line {line}; put the learner's part right after the header, within {first_todo_within} lines"
        ));
    }
    if let Some(count) = mutants
        && count < min_mutants
    {
        problems.push(format!(
            "{name}: lists {count} plausible mistakes in its .mutants.toml; at least {min_mutants} (think like a learner in a hurry)"
        ));
    }
    problems
}

fn median(values: &mut [usize]) -> Option<usize> {
    values.sort_unstable();
    values.get(values.len().checked_sub(1)? / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_lines_and_the_first_todo() {
        let m = measure("// header\nfn f() {\n    todo!()\n}\nfn g() { todo!() }\n");
        assert_eq!((m.lines, m.first_todo), (5, Some(3)));
        assert_eq!(measure("fn f() {}\n").first_todo, None);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_lower_middle() {
        assert_eq!(median(&mut [400, 100, 300, 200]), Some(200));
        assert_eq!(median(&mut [5]), Some(5));
        assert_eq!(median(&mut []), None);
    }
}
