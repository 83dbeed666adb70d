//! Property tests: whatever is in info.toml, the progress file or a set file — random text,
//! random bytes, or the real file with lines deleted, duplicated, bytes changed or cut short —
//! sdlings answers with a result or a clear error (exit 0 or 2), never a panic (exit 101).
//!
//! Each property runs a fixed number of cases from a fixed seed, so every run checks the same
//! inputs; set PROPTEST_RNG_SEED (and PROPTEST_CASES) to explore others.

use crate::common;

use std::process::Output;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

use crate::common::TempWorkbook;

const STATE: &str = ".sdlings-state.toml";

/// A progress file as sdlings writes it, with every kind of field.
const VALID_STATE: &str = r#"# sdlings progress: which exercises you finished and how many hints you revealed.
# Keep it in version control with your work. Written by sdlings; edit with care.
format_version = 1
current = "ttl_cache"
active_set = "week1-caching"

[exercises.hit_counter]
done = true
first_passed = "2026-11-20T10:02:03Z"
hints_revealed = 1

[exercises.lru_cache]
done = true
first_passed = "2026-11-21T08:15:00Z"
hints_revealed = 3

[exercises.reading_tests]
done = true
first_passed = "2026-11-20T09:40:41Z"
hints_revealed = 0

[exercises.ttl_cache]
done = false
hints_revealed = 2

[exercises.welcome]
done = true
first_passed = "2026-11-20T09:31:12Z"
hints_revealed = 3
"#;

fn runner() -> TestRunner {
    let defaults = Config::default();
    let from_env = |name: &str| std::env::var_os(name).is_some();
    TestRunner::new(Config {
        cases: if from_env("PROPTEST_CASES") {
            defaults.cases
        } else {
            64
        },
        rng_seed: if from_env("PROPTEST_RNG_SEED") {
            defaults.rng_seed
        } else {
            RngSeed::Fixed(0x5d1_1265)
        },
        // A failure prints its (shrunk) input; nothing is written next to the sources.
        failure_persistence: None,
        ..defaults
    })
}

// ------------------------------------------------------------------------------------------------
// Inputs.
// ------------------------------------------------------------------------------------------------

/// A position in something of any length: `at(pick, len)` is in `0..len`.
type Pick = u64;

fn at(pick: Pick, len: usize) -> usize {
    assert!(len > 0);
    ((len as u128 * pick as u128) >> 64) as usize
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(Pick),
    DuplicateLine(Pick),
    SwapLines(Pick, Pick),
    ChangeByte(Pick, u8),
    InsertByte(Pick, u8),
    Truncate(Pick),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Pick>().prop_map(Mutation::DeleteLine),
        any::<Pick>().prop_map(Mutation::DuplicateLine),
        (any::<Pick>(), any::<Pick>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<Pick>(), any::<u8>()).prop_map(|(i, b)| Mutation::ChangeByte(i, b)),
        // Mostly characters that mean something to TOML.
        (
            any::<Pick>(),
            prop_oneof![
                Just(b'"'),
                Just(b'['),
                Just(b']'),
                Just(b'='),
                Just(b'\n'),
                Just(b'#'),
                Just(b'.'),
                any::<u8>()
            ]
        )
            .prop_map(|(i, b)| Mutation::InsertByte(i, b)),
        any::<Pick>().prop_map(Mutation::Truncate),
    ]
}

/// One to four mutations, applied in turn.
fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..=4)
}

/// File content, shown as (lossy) text when a case fails.
#[derive(Clone)]
struct Content(Vec<u8>);

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

fn apply(original: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = original.as_bytes().to_vec();
    for m in mutations {
        let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        match m {
            Mutation::DeleteLine(i) => {
                lines.remove(at(*i, lines.len()));
            }
            Mutation::DuplicateLine(i) => {
                let line = at(*i, lines.len());
                lines.insert(line, lines[line].clone());
            }
            Mutation::SwapLines(a, b) => {
                let (a, b) = (at(*a, lines.len()), at(*b, lines.len()));
                lines.swap(a, b);
            }
            Mutation::ChangeByte(..) | Mutation::InsertByte(..) | Mutation::Truncate(_)
                if bytes.is_empty() => {}
            Mutation::ChangeByte(i, b) => {
                let byte = at(*i, bytes.len());
                bytes[byte] = *b;
                continue;
            }
            Mutation::InsertByte(i, b) => {
                bytes.insert(at(*i, bytes.len() + 1), *b);
                continue;
            }
            Mutation::Truncate(i) => {
                bytes.truncate(at(*i, bytes.len()));
                continue;
            }
        }
        bytes = lines.join(&b'\n');
    }
    bytes
}

/// Random text: any Unicode, TOML-looking lines, or raw bytes (not always UTF-8).
fn arbitrary_content() -> impl Strategy<Value = Content> {
    let toml_line = prop_oneof![
        "[a-z_]{1,12} = (\"[^\"\n]{0,20}\"|[0-9-]{1,20}|true|false|\\[\\]|\\{\\})",
        "\\[{1,2}[a-z_.\"]{0,20}\\]{1,2}",
        "#[^\n]{0,30}",
        "(format_version|name|topic|path|dir|title|hints|time_limit_secs|done|hints_revealed|current|active_set|first_passed) = [^\n]{0,30}",
    ];
    prop_oneof![
        any::<String>().prop_map(|s| Content(s.into_bytes())),
        proptest::collection::vec(toml_line, 0..30)
            .prop_map(|l| Content(l.join("\n").into_bytes())),
        proptest::collection::vec(any::<u8>(), 0..2000).prop_map(Content),
    ]
}

// ------------------------------------------------------------------------------------------------
// What must hold.
// ------------------------------------------------------------------------------------------------

/// Exit 0 or 2, no panic; an error is a message.
fn answered(what: &str, out: &Output) -> Result<(), TestCaseError> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    prop_assert!(!stderr.contains("panicked"), "{what} panicked:\n{stderr}");
    let code = out.status.code();
    prop_assert!(
        code == Some(0) || code == Some(2),
        "{what} exited with {:?}:\n{stderr}",
        out.status
    );
    if code == Some(2) {
        prop_assert!(
            stderr.starts_with("error: ") && stderr.trim().len() > "error:".len() + 10,
            "{what} failed without saying why:\n{stderr}"
        );
    }
    Ok(())
}

fn list(wb: &TempWorkbook) -> Output {
    wb.sdlings().arg("list").output().unwrap()
}

fn info_toml_property(strategy: impl Strategy<Value = Content>) {
    let wb = TempWorkbook::new();
    let result = runner().run(&strategy, |Content(content)| {
        std::fs::write(wb.path().join("info.toml"), &content).unwrap();
        let out = list(&wb);
        answered("`sdlings list`", &out)?;
        if out.status.code() == Some(2) {
            let stderr = String::from_utf8_lossy(&out.stderr);
            prop_assert!(
                stderr.contains("info.toml"),
                "the error does not name info.toml:\n{stderr}"
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Beyond `list`: `hint` (which writes the file) must never overwrite a file it cannot read, and
/// never drop a finished exercise from one it can.
fn state_property(strategy: impl Strategy<Value = Content>) {
    let wb = TempWorkbook::new();
    let path = wb.path().join(STATE);
    let result = runner().run(&strategy, |Content(content)| {
        std::fs::write(&path, &content).unwrap();
        let listed = list(&wb);
        answered("`sdlings list`", &listed)?;
        let parsed = std::str::from_utf8(&content)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok());
        if parsed.is_none() {
            let stderr = String::from_utf8_lossy(&listed.stderr);
            prop_assert_eq!(listed.status.code(), Some(2));
            // Not UTF-8: see `a_progress_file_that_is_not_utf8_gets_the_way_out` below.
            let utf8 = std::str::from_utf8(&content).is_ok();
            prop_assert!(
                (stderr.contains("is damaged") && stderr.contains("mv .sdlings-state.toml"))
                    || (!utf8 && stderr.contains(".sdlings-state.toml")),
                "an unreadable progress file without the way out:\n{stderr}"
            );
        }

        let hinted = wb.sdlings().args(["hint", "welcome"]).output().unwrap();
        answered("`sdlings hint welcome`", &hinted)?;
        let after = std::fs::read(&path).unwrap();
        if hinted.status.code() == Some(2) {
            prop_assert!(
                after == content,
                "a failed `hint` changed the progress file"
            );
        } else {
            let done_before = done_exercises(parsed.as_ref());
            let after: toml::Table = String::from_utf8(after).unwrap().parse().unwrap();
            let done_after = done_exercises(Some(&after));
            for name in &done_before {
                prop_assert!(
                    done_after.contains(name),
                    "`hint` lost the pass of {}",
                    name
                );
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn done_exercises(state: Option<&toml::Table>) -> Vec<String> {
    state
        .and_then(|s| s.get("exercises"))
        .and_then(toml::Value::as_table)
        .map(|exercises| {
            exercises
                .iter()
                .filter(|(_, r)| r.get("done").and_then(toml::Value::as_bool) == Some(true))
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------------------------------------------
// The properties.
// ------------------------------------------------------------------------------------------------

#[test]
fn list_survives_an_arbitrary_info_toml() {
    info_toml_property(arbitrary_content());
}

#[test]
fn list_survives_a_mutated_info_toml() {
    let original = std::fs::read_to_string(common::repo_root().join("info.toml")).unwrap();
    info_toml_property(mutations().prop_map(move |m| Content(apply(&original, &m))));
}

#[test]
fn list_and_hint_survive_an_arbitrary_progress_file() {
    state_property(arbitrary_content());
}

#[test]
fn list_and_hint_survive_a_mutated_progress_file() {
    state_property(mutations().prop_map(|m| Content(apply(VALID_STATE, &m))));
}

#[test]
fn a_progress_file_that_is_not_utf8_gets_the_way_out() {
    let wb = TempWorkbook::new();
    let mut content = VALID_STATE.as_bytes().to_vec();
    content[VALID_STATE.find("ttl_cache").unwrap()] = 0xff;
    std::fs::write(wb.path().join(STATE), &content).unwrap();
    let out = list(&wb);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("is damaged"), "{stderr}");
    assert!(stderr.contains("mv .sdlings-state.toml"), "{stderr}");
    assert_eq!(std::fs::read(wb.path().join(STATE)).unwrap(), content);
}

#[test]
fn list_survives_a_mutated_set_file() {
    let wb = TempWorkbook::new();
    wb.write(
        STATE,
        "format_version = 1\nactive_set = \"week1-caching\"\n",
    );
    let set = wb.path().join("sets/week1-caching.toml");
    let original = std::fs::read_to_string(&set).unwrap();
    let result = runner().run(&mutations(), |m| {
        std::fs::write(&set, apply(&original, &m)).unwrap();
        answered("`sdlings list`", &list(&wb))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn mutations_do_what_they_say() {
    let text = "a = 1\nb = 2\nc = 3";
    let last = Pick::MAX;
    assert_eq!(apply(text, &[Mutation::DeleteLine(0)]), b"b = 2\nc = 3");
    assert_eq!(apply(text, &[Mutation::DeleteLine(last)]), b"a = 1\nb = 2");
    assert_eq!(
        apply(text, &[Mutation::DuplicateLine(0)]),
        b"a = 1\na = 1\nb = 2\nc = 3"
    );
    assert_eq!(
        apply(text, &[Mutation::SwapLines(0, last)]),
        b"c = 3\nb = 2\na = 1"
    );
    assert_eq!(
        apply(text, &[Mutation::ChangeByte(0, b'x')]),
        b"x = 1\nb = 2\nc = 3"
    );
    assert_eq!(
        apply(text, &[Mutation::InsertByte(last, b'x')]),
        b"a = 1\nb = 2\nc = 3x"
    );
    assert_eq!(apply(text, &[Mutation::Truncate(0)]), b"");
    assert_eq!(
        apply(
            text,
            &[Mutation::Truncate(0), Mutation::ChangeByte(0, b'x')]
        ),
        b""
    );
}
