//! `sdlings dev new TOPIC/NAME`: scaffold an exercise — its file, its solution, its pristine copy,
//! its info.toml entry (with hint placeholders `dev check` refuses until written) and both
//! packages' bins — so an author starts from a consistent, checkable state.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::commands::Outcome;
use crate::dev::update;
use crate::info_file::{InfoFile, is_identifier};
use crate::workbook::{EXERCISES_DIR, INFO_FILE_NAME, SOLUTIONS_DIR, Workbook};

/// Text an author must replace; `dev check` refuses any file that still contains it.
pub const AUTHOR_TODO: &str = "TODO(author)";

pub fn run(workbook: &Workbook, spec: &str) -> Result<Outcome> {
    let Some((topic_spec, name)) = spec.split_once('/') else {
        bail!(
            "expected TOPIC/NAME, e.g. `sdlings dev new 01_caching/lfu_cache` (TOPIC: a topic's directory or name; a new directory like 07_queues creates a topic)"
        );
    };
    let info = &workbook.info;
    if info.exercise_index(name).is_some() {
        bail!("an exercise named `{name}` already exists");
    }
    if !is_identifier(name) {
        bail!(
            "`{name}` is not a valid exercise name: use lowercase letters, digits and `_`, starting with a letter"
        );
    }
    let existing = info
        .topics
        .iter()
        .position(|t| t.dir == topic_spec || t.name == topic_spec);
    let (topic_name, topic_dir) = match existing {
        Some(t) => (info.topics[t].name.clone(), info.topics[t].dir.clone()),
        None => new_topic_names(topic_spec)?,
    };
    let rel = format!("{topic_dir}/{name}.rs");
    let mutants_rel = format!("{topic_dir}/{name}.mutants.toml");
    let root = &workbook.root;
    for path in [
        root.join(EXERCISES_DIR).join(&rel),
        root.join(SOLUTIONS_DIR).join(&rel),
        root.join(SOLUTIONS_DIR).join(&mutants_rel),
    ] {
        if path.exists() {
            bail!("{} already exists", path.display());
        }
    }

    // Edit the three manifests in memory first and check the result parses, so a failure leaves
    // every file as it was.
    let info_path = root.join(INFO_FILE_NAME);
    let mut info_text = fs::read_to_string(&info_path)?;
    let last_of_topic = existing.and_then(|t| info.topic_exercises(t).last());
    if existing.is_none() {
        let block = format!(
            "\n[[topics]]\nname = \"{topic_name}\"\ntitle = \"{}\"\ndir = \"{topic_dir}\"\n",
            title_from(&topic_name)
        );
        let last_topic = &info.topics.last().expect("info.toml has topics").name;
        info_text = insert_after_block(&info_text, "[[topics]]", last_topic, &block)?;
    }
    let entry = format!(
        "\n[[exercises]]\nname = \"{name}\"\ntopic = \"{topic_name}\"\nhints = [\n  \"\"\"TODO: a nudge towards the idea.\"\"\",\n  \"\"\"TODO: close to the approach (the data structure or invariant), never the code.\"\"\",\n]\n"
    );
    info_text = match last_of_topic {
        Some(i) => {
            insert_after_block(&info_text, "[[exercises]]", &info.exercises[i].name, &entry)?
        }
        None => format!("{}\n{}", info_text.trim_end(), entry),
    };
    InfoFile::parse(&info_text, INFO_FILE_NAME).map_err(|e| {
        anyhow::anyhow!("the scaffolded info.toml would not be valid ({e}); nothing was changed")
    })?;

    let exercise = template(name, false);
    write_new(&root.join(EXERCISES_DIR).join(&rel), &exercise)?;
    write_new(&root.join(SOLUTIONS_DIR).join(&rel), &template(name, true))?;
    write_new(
        &root.join(SOLUTIONS_DIR).join(&mutants_rel),
        &mutants_template(name),
    )?;
    if existing.is_none() {
        let readme = root.join(EXERCISES_DIR).join(&topic_dir).join("README.md");
        if !readme.exists() {
            write_new(&readme, &readme_template(&topic_name))?;
        }
    }
    fs::write(&info_path, info_text)
        .with_context(|| format!("cannot write {}", info_path.display()))?;
    update::write_bins(&Workbook::open(root)?)?;

    println!(
        "Scaffolded `{name}` in topic {topic_dir}:\n  exercises/{rel}      the learner's file (todo!() in the learner's part)\n  solutions/{rel}      the solved file (identical tests)\n  solutions/{mutants_rel}      plausible wrong implementations the tests must reject\n  info.toml               an entry with two placeholder hints\n  exercises/Cargo.toml, solutions/Cargo.toml   the bins `{name}` and `{name}_sol`\n\nNext: write the exercise, its solution and its hints (replace every {AUTHOR_TODO} and TODO), then run\n  sdlings dev check\nwhich checks everything."
    );
    Ok(Outcome::Success)
}

/// `07_queues` → (`queues`, `07_queues`).
fn new_topic_names(dir: &str) -> Result<(String, String)> {
    let name = dir
        .split_once('_')
        .filter(|(num, _)| !num.is_empty() && num.chars().all(|c| c.is_ascii_digit()))
        .map(|(_, rest)| rest)
        .unwrap_or("");
    if !is_identifier(name) {
        bail!(
            "`{dir}` is not an existing topic; to create one, name its directory NN_name (e.g. 07_queues)"
        );
    }
    Ok((name.to_string(), dir.to_string()))
}

fn title_from(name: &str) -> String {
    let words: Vec<String> = name
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
        })
        .collect();
    words.join(" ")
}

/// Inserts `block` after the `header` block (`[[exercises]]`, `[[bin]]`...) whose `name` is
/// `name`: before the next `[[` header, or at the end.
fn insert_after_block(text: &str, header: &str, name: &str, block: &str) -> Result<String> {
    let needle = format!("name = \"{name}\"");
    let mut offset = 0;
    let mut current_header = "";
    let mut found = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with("[[") {
            if found {
                let (before, after) = text.split_at(offset);
                return Ok(format!(
                    "{}\n\n{}\n\n{after}",
                    before.trim_end(),
                    block.trim()
                ));
            }
            current_header = trimmed;
        } else if trimmed == needle && current_header == header {
            found = true;
        }
        offset += line.len();
    }
    if found {
        Ok(format!("{}\n\n{}\n", text.trim_end(), block.trim()))
    } else {
        bail!("cannot find the {header} block of `{name}` to add the new entry after")
    }
}

fn write_new(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn template(name: &str, solved: bool) -> String {
    let body = if solved {
        "    // TODO(author): the solution, commented where a real engineer would want the reasoning.\n    42"
    } else {
        "    // TODO(author): leave the learner's part as todo!() with a short hint of what to do.\n    todo!(\"compute the answer\")"
    };
    format!(
        r#"// {name} — TODO(author): one line saying what to build.
//
// TODO(author): a few lines: what to build, why it matters in a real system (one concrete
// example), and which lab knob to turn after passing and what to expect.

// ---------------------------------------------------------------------------------------------
// Your part.
// ---------------------------------------------------------------------------------------------

/// TODO(author): the component's real interface, with fixed signatures the tests compile against.
pub fn answer() -> u64 {{
{body}
}}

// ---------------------------------------------------------------------------------------------
// The lab: runs once the tests pass. Knobs are the constants below.
// ---------------------------------------------------------------------------------------------

/// TODO(author): a workload knob.
const REQUESTS: u64 = 1_000;

fn main() {{
    // TODO(author): the figures that matter; sdlings_kit::lab draws tables and charts.
    println!("requests: {{REQUESTS}}, answer: {{}}", answer());
}}

// ---------------------------------------------------------------------------------------------
// The tests: behaviour first, then edge cases, then the plausible mistakes.
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {{
    use super::*;

    #[test]
    fn gives_the_answer() {{
        // TODO(author): tests whose names read as sentences the learner can act on.
        assert_eq!(answer(), 42, "the answer is 42");
    }}
}}
"#
    )
}

fn mutants_template(name: &str) -> String {
    format!(
        r#"# Plausible wrong implementations of `{name}`: the mistakes learners really make. Each edits
# the solution (`replace` must occur in it exactly once) and must compile; `sdlings dev mutants
# {name}` checks that the tests reject every one. `caught_by` (optional) names tests that must fail.

[[mutants]]
mistake = "TODO(author): a mistake a learner would really make (one [[mutants]] entry each)"
replace = """
    42
}}"""
with = """
    41
}}"""
caught_by = ["gives_the_answer"]
"#
    )
}

fn readme_template(topic: &str) -> String {
    format!(
        "# {}\n\nTODO(author): one paragraph on what this topic is about.\n\n## Core fundamentals\n\nTODO(author): what it is, why, which problem it solves.\n\n## System design perspective\n\nTODO(author): where it sits in a real architecture, the trade-offs, what real systems do.\n\n## Practical implementation\n\nTODO(author): what each exercise builds, what its lab shows, the failure modes to watch.\n",
        title_from(topic)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_after_the_named_block() {
        let text =
            "[[bin]]\nname = \"a\"\npath = \"a.rs\"\n\n[[bin]]\nname = \"b\"\npath = \"b.rs\"\n";
        let out = insert_after_block(
            text,
            "[[bin]]",
            "a",
            "\n[[bin]]\nname = \"n\"\npath = \"n.rs\"\n",
        )
        .unwrap();
        assert_eq!(
            out,
            "[[bin]]\nname = \"a\"\npath = \"a.rs\"\n\n[[bin]]\nname = \"n\"\npath = \"n.rs\"\n\n[[bin]]\nname = \"b\"\npath = \"b.rs\"\n"
        );
        let out = insert_after_block(text, "[[bin]]", "b", "\n[[bin]]\nname = \"n\"\n").unwrap();
        assert!(
            out.ends_with("path = \"b.rs\"\n\n[[bin]]\nname = \"n\"\n"),
            "{out}"
        );
        assert!(insert_after_block(text, "[[exercises]]", "a", "x").is_err());
    }

    #[test]
    fn new_topics_need_a_numbered_directory() {
        assert_eq!(
            new_topic_names("07_message_queues").unwrap(),
            (
                "message_queues".to_string(),
                "07_message_queues".to_string()
            )
        );
        assert!(new_topic_names("queues").is_err());
        assert_eq!(title_from("message_queues"), "Message Queues");
    }
}
