//! `info.toml`: the curriculum, and the single source of truth for which exercises exist, in which
//! order, under which topic, with which hints.
//!
//! Parsing happens in two steps: serde reads the raw shape (so a missing field or a wrong type is
//! reported by `toml` with line and column), then [`InfoFile::validate`] checks what serde cannot
//! (unknown topics, duplicates, paths that escape the workbook), naming the line of the offending
//! value via `toml::Spanned`.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use crate::toml_file::{FileError, Locator, is_identifier, toml_error};
use crate::toml_file::{check_identifier, check_relative_path};

/// The only `format_version` this build understands.
pub const FORMAT_VERSION: u32 = 1;

/// The time limit for running an exercise's tests when info.toml sets none.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(10);

/// The longest per-exercise time limit an info.toml may ask for.
const MAX_TIME_LIMIT_SECS: u64 = 600;

#[derive(Debug, Clone)]
pub struct InfoFile {
    pub welcome_message: String,
    pub final_message: String,
    pub topics: Vec<Topic>,
    pub exercises: Vec<ExerciseInfo>,
}

#[derive(Debug, Clone)]
pub struct Topic {
    pub name: String,
    pub title: String,
    /// Directory under `exercises/` (and `solutions/`), e.g. `01_caching`.
    pub dir: String,
    /// The package group of a topic whose dependencies are heavy (`package = "services"` in
    /// info.toml): its exercises are binaries of `exercises-services` and `solutions-services`
    /// instead of `exercises` and `solutions`, so no one builds those dependencies before reaching it.
    pub package: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ExerciseInfo {
    pub name: String,
    /// Index into [`InfoFile::topics`].
    pub topic: usize,
    /// Path relative to `exercises/` (and to `solutions/`), e.g. `01_caching/lru_cache.rs`:
    /// `TOPIC_DIR/NAME.rs` unless info.toml says otherwise.
    pub path: String,
    pub hints: Vec<String>,
    pub time_limit: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInfo {
    format_version: Spanned<u32>,
    welcome_message: String,
    final_message: String,
    topics: Vec<RawTopic>,
    exercises: Vec<RawExercise>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    name: Spanned<String>,
    title: String,
    dir: Spanned<String>,
    package: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExercise {
    name: Spanned<String>,
    topic: Spanned<String>,
    /// Optional: derived from the topic's directory and the name.
    path: Option<Spanned<String>>,
    hints: Spanned<Vec<String>>,
    time_limit_secs: Option<Spanned<u64>>,
}

impl InfoFile {
    /// Parses and validates the text of an info.toml; `file_name` is used in error messages.
    pub fn parse(text: &str, file_name: &str) -> Result<InfoFile, FileError> {
        let raw: RawInfo = toml::from_str(text).map_err(|e| toml_error(file_name, &e))?;
        Self::validate(raw, &Locator { text, file_name })
    }

    fn validate(raw: RawInfo, at: &Locator) -> Result<InfoFile, FileError> {
        if *raw.format_version.get_ref() != FORMAT_VERSION {
            return Err(at.error(
                raw.format_version.span(),
                "format_version",
                &format!(
                    "this sdlings understands format_version {FORMAT_VERSION}, not {}; update sdlings or the file",
                    raw.format_version.get_ref()
                ),
            ));
        }
        if raw.topics.is_empty() {
            return Err(at.plain("the file lists no [[topics]]; add at least one"));
        }

        let topics = validate_topics(raw.topics, at)?;
        let mut exercises: Vec<ExerciseInfo> = Vec::with_capacity(raw.exercises.len());
        let mut names = HashSet::new();
        let mut paths = HashSet::new();
        for e in raw.exercises {
            check_identifier(&e.name, "exercises.name", at)?;
            if !names.insert(e.name.get_ref().clone()) {
                return Err(at.error(
                    e.name.span(),
                    "exercises.name",
                    &format!("exercise `{}` is listed twice", e.name.get_ref()),
                ));
            }
            let topic = exercise_topic(&e, &topics, exercises.last(), at)?;
            let path = exercise_path(&e, &topics[topic], at)?;
            if !paths.insert(path.clone()) {
                return Err(match &e.path {
                    Some(given) => at.error(
                        given.span(),
                        "exercises.path",
                        &format!("`{path}` is used by two exercises"),
                    ),
                    None => at.error(
                        e.name.span(),
                        "exercises.name",
                        &format!("`{path}` (this exercise's file) is used by another exercise"),
                    ),
                });
            }
            let time_limit = time_limit(e.time_limit_secs.as_ref(), at)?;
            exercises.push(ExerciseInfo {
                name: e.name.into_inner(),
                topic,
                path,
                hints: e.hints.into_inner(),
                time_limit,
            });
        }

        for (i, topic) in topics.iter().enumerate() {
            if !exercises.iter().any(|e| e.topic == i) {
                return Err(at.plain(&format!(
                    "topic `{}` has no exercises; add one or remove the topic",
                    topic.name
                )));
            }
        }

        Ok(InfoFile {
            welcome_message: raw.welcome_message,
            final_message: raw.final_message,
            topics,
            exercises,
        })
    }

    pub fn exercise_index(&self, name: &str) -> Option<usize> {
        self.exercises.iter().position(|e| e.name == name)
    }

    /// Indices of the exercises of topic `topic`, in order.
    pub fn topic_exercises(&self, topic: usize) -> impl Iterator<Item = usize> + '_ {
        self.exercises
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.topic == topic)
            .map(|(i, _)| i)
    }
}

fn validate_topics(raw: Vec<RawTopic>, at: &Locator) -> Result<Vec<Topic>, FileError> {
    let mut topics = Vec::with_capacity(raw.len());
    let mut names = HashSet::new();
    for t in raw {
        check_identifier(&t.name, "topics.name", at)?;
        if !names.insert(t.name.get_ref().clone()) {
            return Err(at.error(
                t.name.span(),
                "topics.name",
                &format!("topic `{}` is listed twice", t.name.get_ref()),
            ));
        }
        check_relative_path(&t.dir, "topics.dir", at)?;
        if let Some(package) = &t.package {
            check_package_group(package, at)?;
        }
        topics.push(Topic {
            name: t.name.into_inner(),
            title: t.title,
            dir: t.dir.into_inner(),
            package: t.package.map(Spanned::into_inner),
        });
    }
    Ok(topics)
}

/// A package group names a directory beside the topics' (`exercises/GROUP/Cargo.toml`): a plain
/// name, and not the kit's.
fn check_package_group(group: &Spanned<String>, at: &Locator) -> Result<(), FileError> {
    check_identifier(group, "topics.package", at)?;
    if group.get_ref() == "kit" {
        return Err(at.error(
            group.span(),
            "topics.package",
            "`kit` is the shared kit's directory; name the package group otherwise",
        ));
    }
    Ok(())
}

/// The exercise's topic: defined, and not before the topic of the exercise above it.
fn exercise_topic(
    e: &RawExercise,
    topics: &[Topic],
    previous: Option<&ExerciseInfo>,
    at: &Locator,
) -> Result<usize, FileError> {
    let topic = topics
        .iter()
        .position(|t| t.name == *e.topic.get_ref())
        .ok_or_else(|| {
            at.error(
                e.topic.span(),
                "exercises.topic",
                &format!(
                    "exercise `{}` names topic `{}`, which no [[topics]] entry defines",
                    e.name.get_ref(),
                    e.topic.get_ref()
                ),
            )
        })?;
    if let Some(previous) = previous
        && previous.topic > topic
    {
        return Err(at.error(
            e.topic.span(),
            "exercises.topic",
            &format!(
                "exercise `{}` belongs to topic `{}`, which comes before topic `{}` of the exercise above it; list exercises in topic order",
                e.name.get_ref(),
                topics[topic].name,
                topics[previous.topic].name
            ),
        ));
    }
    Ok(topic)
}

/// The exercise's file: given, or derived from the topic's directory and the name.
fn exercise_path(e: &RawExercise, topic: &Topic, at: &Locator) -> Result<String, FileError> {
    match &e.path {
        Some(path) => {
            check_relative_path(path, "exercises.path", at)?;
            check_inside_topic(path, topic, at)?;
            Ok(path.get_ref().clone())
        }
        None => Ok(format!("{}/{}.rs", topic.dir, e.name.get_ref())),
    }
}

fn time_limit(secs: Option<&Spanned<u64>>, at: &Locator) -> Result<Duration, FileError> {
    match secs {
        None => Ok(DEFAULT_TIME_LIMIT),
        Some(secs) if (1..=MAX_TIME_LIMIT_SECS).contains(secs.get_ref()) => {
            Ok(Duration::from_secs(*secs.get_ref()))
        }
        Some(secs) => Err(at.error(
            secs.span(),
            "exercises.time_limit_secs",
            &format!("must be between 1 and {MAX_TIME_LIMIT_SECS} seconds"),
        )),
    }
}

/// An exercise's file lives in its topic's directory and is a `.rs` file.
fn check_inside_topic(
    path: &Spanned<String>,
    topic: &Topic,
    at: &Locator,
) -> Result<(), FileError> {
    let text = path.get_ref();
    if text.starts_with(&format!("{}/", topic.dir)) && text.ends_with(".rs") {
        Ok(())
    } else {
        Err(at.error(
            path.span(),
            "exercises.path",
            &format!(
                "`{text}` must be a `.rs` file inside its topic's directory `{}`",
                topic.dir
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
format_version = 1
welcome_message = "hi"
final_message = "bye"

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
hints = ["a", "b"]

[[exercises]]
name = "lru_cache"
topic = "caching"
path = "01_caching/lru_cache.rs"
hints = ["a", "b"]
time_limit_secs = 20
"#;

    fn parse_err(text: &str) -> String {
        InfoFile::parse(text, "info.toml").unwrap_err().message
    }

    #[test]
    fn parses_a_good_file() {
        let info = InfoFile::parse(GOOD, "info.toml").unwrap();
        assert_eq!(info.topics.len(), 2);
        assert_eq!(info.exercises[1].topic, 1);
        assert_eq!(info.exercises[0].time_limit, DEFAULT_TIME_LIMIT);
        assert_eq!(info.exercises[1].time_limit, Duration::from_secs(20));
        assert_eq!(info.topic_exercises(1).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn missing_field_names_the_field_and_line() {
        let text = GOOD.replace("topic = \"intro\"\n", "");
        let err = parse_err(&text);
        assert!(
            err.starts_with("info.toml: TOML parse error at line"),
            "{err}"
        );
        assert!(err.contains("missing field `topic`"), "{err}");
    }

    #[test]
    fn unknown_topic_names_line_and_field() {
        let text = GOOD.replace("topic = \"caching\"", "topic = \"cachng\"");
        let err = parse_err(&text);
        assert!(
            err.starts_with("info.toml:24:9: field `exercises.topic`"),
            "{err}"
        );
        assert!(err.contains("`cachng`"), "{err}");
    }

    #[test]
    fn paths_cannot_escape_the_workbook() {
        for bad in ["../../etc/passwd", "/etc/passwd", "01_caching/../../x.rs"] {
            let text = GOOD.replace("01_caching/lru_cache.rs", bad);
            let err = parse_err(&text);
            assert!(err.contains("field `exercises.path`"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_topic_may_name_a_package_group_with_a_plain_name() {
        let grouped = GOOD.replace(
            "dir = \"01_caching\"\n",
            "dir = \"01_caching\"\npackage = \"services\"\n",
        );
        let info = InfoFile::parse(&grouped, "info.toml").unwrap();
        assert_eq!(info.topics[0].package, None);
        assert_eq!(info.topics[1].package.as_deref(), Some("services"));
        for bad in ["kit", "../x", "Services", ""] {
            let text = grouped.replace("package = \"services\"", &format!("package = {bad:?}"));
            assert!(
                parse_err(&text).contains("field `topics.package`"),
                "{bad}: {}",
                parse_err(&text)
            );
        }
    }

    #[test]
    fn path_must_be_inside_its_topic_dir() {
        let text = GOOD.replace("01_caching/lru_cache.rs", "00_intro/lru_cache.rs");
        assert!(parse_err(&text).contains("inside its topic's directory"));
    }

    #[test]
    fn duplicates_and_bad_names_are_rejected() {
        let text = GOOD.replace("name = \"lru_cache\"", "name = \"welcome\"");
        assert!(parse_err(&text).contains("listed twice"));
        let text = GOOD.replace("name = \"lru_cache\"", "name = \"LRU cache\"");
        assert!(parse_err(&text).contains("not a valid name"));
    }

    #[test]
    fn wrong_version_and_time_limit_are_rejected() {
        let text = GOOD.replace("format_version = 1", "format_version = 9");
        assert!(parse_err(&text).contains("format_version 1, not 9"));
        let text = GOOD.replace("time_limit_secs = 20", "time_limit_secs = 0");
        assert!(parse_err(&text).contains("time_limit_secs"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = GOOD.replace("hints = [\"a\", \"b\"]\ntime", "hint = [\"a\"]\ntime");
        assert!(parse_err(&text).contains("unknown field `hint`"));
    }

    #[test]
    fn the_path_is_derived_from_topic_and_name_unless_given() {
        let text = GOOD.replace("path = \"00_intro/welcome.rs\"\n", "");
        let info = InfoFile::parse(&text, "info.toml").unwrap();
        assert_eq!(info.exercises[0].path, "00_intro/welcome.rs");
        let text = GOOD.replace("01_caching/lru_cache.rs", "01_caching/lru.rs");
        let info = InfoFile::parse(&text, "info.toml").unwrap();
        assert_eq!(info.exercises[1].path, "01_caching/lru.rs");
    }
}
