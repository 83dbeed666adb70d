//! Reading the output of a Rust test binary (libtest's human format, the only stable one).
//!
//! We want three things from it: how many tests passed and failed, and for each failure the
//! test's name and what it said (usually the assertion message). Lines look like
//! `test tests::evicts_lru ... FAILED`, and each failure's captured output follows later under a
//! `---- tests::evicts_lru stdout ----` heading.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The test's name without the `tests::` module prefix, so it reads as a sentence.
    pub test: String,
    /// What the test printed, panic message included, without libtest's boilerplate.
    pub message: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    pub failures: Vec<Failure>,
    /// The thread that overflowed its stack, if one did.
    pub stack_overflow_in: Option<String>,
}

const FAILURE_HEADING: &str = "---- ";
const FAILURE_HEADING_END: &str = " stdout ----";

pub fn parse(output: &str) -> Report {
    let mut report = Report::default();
    let mut current: Option<Failure> = None;
    // After the failure sections, libtest lists the failed names again under "failures:".
    let mut in_summary = false;
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("test ")
            && let Some((_, result)) = rest.rsplit_once(" ... ")
        {
            match result.trim() {
                "ok" => report.passed += 1,
                "FAILED" => report.failed += 1,
                _ => {}
            }
            continue;
        }
        if let Some(name) = line
            .strip_prefix(FAILURE_HEADING)
            .and_then(|l| l.strip_suffix(FAILURE_HEADING_END))
        {
            report.failures.extend(current.take().map(tidy));
            current = Some(Failure {
                test: short_name(name),
                message: String::new(),
            });
            continue;
        }
        if line == "failures:" {
            if current.is_some() {
                in_summary = true;
            }
            report.failures.extend(current.take().map(tidy));
            continue;
        }
        if line.starts_with("test result:") {
            in_summary = false;
            continue;
        }
        if let Some(failure) = current.as_mut()
            && !in_summary
        {
            failure.message.push_str(line);
            failure.message.push('\n');
        }
    }
    report.failures.extend(current.take().map(tidy));
    report.stack_overflow_in = overflowed_thread(output);
    report
}

/// The thread named in "thread 'tests::x' (1234) has overflowed its stack". That line comes from
/// stderr while other tests print on stdout, so another test's output may be spliced into it
/// ("thread 'FAILED\ntests::x' ..."): the name is the last line between the quotes.
fn overflowed_thread(output: &str) -> Option<String> {
    let end = output.find("has overflowed its stack")?;
    let before = &output[..end];
    let name = before
        .rfind("thread '")
        .and_then(|start| before[start + "thread '".len()..].rsplit_once('\''))
        .and_then(|(quoted, _)| quoted.lines().last())
        .filter(|name| !name.trim().is_empty())
        .unwrap_or("a test");
    Some(short_name(name.trim()))
}

fn short_name(name: &str) -> String {
    name.strip_prefix("tests::").unwrap_or(name).to_string()
}

/// Drops the lines every failure has and that tell the learner nothing.
fn tidy(mut failure: Failure) -> Failure {
    let kept: Vec<&str> = failure
        .message
        .lines()
        .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE=1`"))
        .map(drop_thread_name)
        .collect();
    failure.message = kept.join("\n").trim().to_string();
    failure
}

/// "thread 'tests::x' (1234) panicked at src.rs:1:2:" → "panicked at src.rs:1:2:": the test's
/// name is already the heading, and the thread id means nothing to the learner.
fn drop_thread_name(line: &str) -> &str {
    match line.find(" panicked at ") {
        Some(at) if line.starts_with("thread '") => &line[at + 1..],
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILING: &str = "
running 3 tests
test tests::gets_what_was_put ... ok
test tests::evicts_least_recently_used ... FAILED
test tests::capacity_zero_stores_nothing ... FAILED

failures:

---- tests::evicts_least_recently_used stdout ----
debug line from the learner

thread 'tests::evicts_least_recently_used' panicked at 01_caching/lru_cache.rs:120:9:
assertion `left == right` failed: key 2 was least recently used
  left: Some(2)
 right: None
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

---- tests::capacity_zero_stores_nothing stdout ----

thread 'tests::capacity_zero_stores_nothing' panicked at 01_caching/lru_cache.rs:40:9:
not yet implemented

failures:
    tests::evicts_least_recently_used
    tests::capacity_zero_stores_nothing

test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    #[test]
    fn counts_and_failures_are_read() {
        let r = parse(FAILING);
        assert_eq!((r.passed, r.failed), (1, 2));
        assert_eq!(r.failures.len(), 2);
        assert_eq!(r.failures[0].test, "evicts_least_recently_used");
        assert!(
            r.failures[0]
                .message
                .starts_with("debug line from the learner")
        );
        assert!(r.failures[0].message.ends_with(" right: None"));
        assert_eq!(r.failures[1].test, "capacity_zero_stores_nothing");
        assert!(r.failures[1].message.ends_with("not yet implemented"));
        assert!(
            r.failures[1]
                .message
                .starts_with("panicked at 01_caching/lru_cache.rs:40:9:")
        );
        assert_eq!(r.stack_overflow_in, None);
    }

    #[test]
    fn passing_run_has_no_failures() {
        let r =
            parse("running 1 test\ntest tests::a ... ok\n\ntest result: ok. 1 passed; 0 failed\n");
        assert_eq!((r.passed, r.failed, r.failures.len()), (1, 0, 0));
    }

    #[test]
    fn stack_overflow_is_noticed_even_when_other_output_is_spliced_in() {
        let r = parse(
            "running 3 tests\ntest tests::b ... \nthread 'FAILED\ntests::recurses' (27302) has overflowed its stack\nfatal runtime error: stack overflow, aborting\n",
        );
        assert_eq!(r.stack_overflow_in.as_deref(), Some("recurses"));
    }

    #[test]
    fn stack_overflow_is_noticed() {
        let r = parse(
            "running 1 test\n\nthread 'tests::recurses' (77) has overflowed its stack\nfatal runtime error: stack overflow\n",
        );
        assert_eq!(r.stack_overflow_in.as_deref(), Some("recurses"));
    }
}
