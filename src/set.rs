//! Exercise sets: a mentor's selection and order of exercises for a cohort ("week 1: caching").
//!
//! A set is a small TOML file, normally `sets/NAME.toml`. Its entries name exercises, whole topics
//! (every exercise of the topic, in curriculum order) or exercise files by path. Without an active
//! set the learner works through the whole workbook, which behaves exactly like a set listing
//! every topic. Progress is recorded per exercise, never per set, so switching sets loses nothing.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use toml::Spanned;

use crate::info_file::{FileError, InfoFile, Locator, toml_error};
use crate::workbook::EXERCISES_DIR;

pub const SETS_DIR: &str = "sets";
const SET_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unlock {
    /// A topic opens once the set's earlier topics are done (the workbook's usual gate).
    Sequential,
    /// Every exercise of the set is open from the start.
    Open,
}

#[derive(Debug, Clone)]
pub struct ExerciseSet {
    pub name: String,
    pub title: String,
    pub description: String,
    pub unlock: Unlock,
    /// Indices into `InfoFile::exercises`, in the order the learner takes them.
    pub exercises: Vec<usize>,
    /// The file it came from; `None` for the whole workbook.
    pub file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSet {
    format_version: Spanned<u32>,
    name: Spanned<String>,
    title: String,
    #[serde(default)]
    description: String,
    unlock: Unlock,
    exercises: Spanned<Vec<Spanned<String>>>,
}

impl ExerciseSet {
    /// Every exercise of the workbook, in curriculum order, with the topic gate.
    pub fn whole_workbook(info: &InfoFile) -> ExerciseSet {
        ExerciseSet {
            name: "workbook".into(),
            title: "The whole workbook".into(),
            description: String::new(),
            unlock: Unlock::Sequential,
            exercises: (0..info.exercises.len()).collect(),
            file: None,
        }
    }

    pub fn is_whole_workbook(&self) -> bool {
        self.file.is_none()
    }

    /// Parses a set file's text. `file_name` is used in messages.
    pub fn parse(text: &str, file_name: &str, info: &InfoFile) -> Result<ExerciseSet, FileError> {
        let raw: RawSet = toml::from_str(text).map_err(|e| toml_error(file_name, &e))?;
        let at = Locator { text, file_name };
        if *raw.format_version.get_ref() != SET_FORMAT_VERSION {
            return Err(at.error(
                raw.format_version.span(),
                "format_version",
                &format!(
                    "this sdlings understands set format_version {SET_FORMAT_VERSION}, not {}",
                    raw.format_version.get_ref()
                ),
            ));
        }
        let name = raw.name.get_ref();
        let valid_name = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid_name {
            return Err(at.error(
                raw.name.span(),
                "name",
                &format!("`{name}` is not a valid set name: use lowercase letters, digits, `-` and `_`, starting with a letter"),
            ));
        }
        if raw.exercises.get_ref().is_empty() {
            return Err(at.error(
                raw.exercises.span(),
                "exercises",
                "the set lists no exercises; name exercises, topics or exercise files",
            ));
        }
        let mut exercises = Vec::new();
        let mut seen = HashSet::new();
        for entry in raw.exercises.get_ref() {
            for index in resolve_entry(entry, info, &at)? {
                if !seen.insert(index) {
                    return Err(at.error(
                        entry.span(),
                        "exercises",
                        &format!(
                            "`{}` brings in exercise `{}` a second time; list each exercise once",
                            entry.get_ref(),
                            info.exercises[index].name
                        ),
                    ));
                }
                exercises.push(index);
            }
        }
        Ok(ExerciseSet {
            name: raw.name.into_inner(),
            title: raw.title,
            description: raw.description,
            unlock: raw.unlock,
            exercises,
            file: Some(PathBuf::from(file_name)),
        })
    }

    /// Loads the set `spec`: a name (looked up as `sets/NAME.toml`) or a path to a set file.
    pub fn load(root: &Path, spec: &str, info: &InfoFile) -> Result<ExerciseSet> {
        let path = locate(root, spec);
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read the set `{spec}` ({}); `sdlings set list` shows the sets of this workbook",
                path.display()
            )
        })?;
        let shown = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let set = ExerciseSet::parse(&text, &shown, info)?;
        if path.parent() == Some(root.join(SETS_DIR).as_path())
            && path.file_stem().is_some_and(|stem| *stem != *set.name)
        {
            bail!(
                "{shown}: field `name`: the set is called `{}` but its file is named differently; make them match so `sdlings set use {}` finds it",
                set.name,
                set.name
            );
        }
        Ok(set)
    }
}

/// `sets/NAME.toml` for a bare name, otherwise the path as given (relative to the workbook).
pub fn locate(root: &Path, spec: &str) -> PathBuf {
    let looks_like_path = spec.contains('/') || spec.contains('\\') || spec.ends_with(".toml");
    if looks_like_path {
        let path = Path::new(spec);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|cwd| cwd.join(path))
                .unwrap_or_else(|_| root.join(path))
        }
    } else {
        root.join(SETS_DIR).join(format!("{spec}.toml"))
    }
}

/// The `.toml` files in `sets/`, sorted by name.
pub fn set_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root.join(SETS_DIR))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|ext| ext == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// One entry of a set: an exercise name, a topic name (all its exercises) or an exercise file
/// path such as `exercises/01_caching/lru_cache.rs`.
fn resolve_entry(
    entry: &Spanned<String>,
    info: &InfoFile,
    at: &Locator,
) -> Result<Vec<usize>, FileError> {
    let text = entry.get_ref().trim();
    if let Some(index) = info.exercise_index(text) {
        return Ok(vec![index]);
    }
    if let Some(topic) = info
        .topics
        .iter()
        .position(|t| t.name == text || t.dir == text)
    {
        return Ok(info.topic_exercises(topic).collect());
    }
    if text.contains('/') {
        let inside = Path::new(text)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside {
            return Err(at.error(
                entry.span(),
                "exercises",
                &format!("`{text}` is a path outside the workbook; name exercises by their name or their path under {EXERCISES_DIR}/"),
            ));
        }
        let relative = text
            .strip_prefix(&format!("{EXERCISES_DIR}/"))
            .unwrap_or(text);
        if let Some(index) = info.exercises.iter().position(|e| e.path == relative) {
            return Ok(vec![index]);
        }
    }
    Err(at.error(
        entry.span(),
        "exercises",
        &format!(
            "`{text}` is neither an exercise nor a topic of this workbook (`sdlings list` shows them)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> InfoFile {
        let text = r#"
format_version = 1
welcome_message = ""
final_message = ""
[[topics]]
name = "intro"
title = "Intro"
dir = "00_intro"
[[topics]]
name = "caching"
title = "Caching"
dir = "01_caching"
[[exercises]]
name = "welcome"
topic = "intro"
path = "00_intro/welcome.rs"
hints = []
[[exercises]]
name = "lru_cache"
topic = "caching"
path = "01_caching/lru_cache.rs"
hints = []
[[exercises]]
name = "ttl_cache"
topic = "caching"
path = "01_caching/ttl_cache.rs"
hints = []
"#;
        InfoFile::parse(text, "info.toml").unwrap()
    }

    fn set(entries: &str) -> Result<ExerciseSet, FileError> {
        let text = format!(
            "format_version = 1\nname = \"week1\"\ntitle = \"Week 1\"\nunlock = \"open\"\nexercises = [{entries}]\n"
        );
        ExerciseSet::parse(&text, "sets/week1.toml", &info())
    }

    #[test]
    fn entries_are_exercises_topics_or_paths_in_the_order_given() {
        let s = set(r#""ttl_cache", "intro", "exercises/01_caching/lru_cache.rs""#).unwrap();
        assert_eq!(s.exercises, vec![2, 0, 1]);
        assert_eq!(s.unlock, Unlock::Open);
    }

    #[test]
    fn unknown_entries_name_the_line_and_field() {
        let err = set(r#""lru_cache", "lfu_cache""#).unwrap_err().message;
        assert!(
            err.starts_with("sets/week1.toml:5:27: field `exercises`"),
            "{err}"
        );
        assert!(err.contains("`lfu_cache` is neither"), "{err}");
    }

    #[test]
    fn duplicates_are_rejected_even_through_a_topic() {
        let err = set(r#""caching", "lru_cache""#).unwrap_err().message;
        assert!(err.contains("a second time"), "{err}");
    }

    #[test]
    fn paths_outside_the_workbook_are_rejected() {
        let err = set(r#""../../etc/passwd""#).unwrap_err().message;
        assert!(err.contains("outside the workbook"), "{err}");
    }

    #[test]
    fn wrong_fields_are_rejected() {
        let text = "format_version = 1\nname = \"w\"\ntitle = \"W\"\nunlock = \"whenever\"\nexercises = [\"welcome\"]\n";
        let err = ExerciseSet::parse(text, "sets/w.toml", &info())
            .unwrap_err()
            .message;
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("unknown variant `whenever`"), "{err}");
    }
}
