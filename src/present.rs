//! Turning verdicts into text for the learner. Shared by `check`, `verify` and the watcher, so an
//! exercise reads the same wherever it is checked.

use colored::Colorize;

use crate::runner::Verdict;

/// How many failing tests are shown in full; the rest are named only.
const FAILURES_SHOWN: usize = 3;
/// How many lines of one failure's message are shown.
const MESSAGE_LINES: usize = 12;

/// The headline: "✓ lru_cache: all 7 tests pass" or "✗ lru_cache: 2 of 7 tests fail".
pub fn headline(name: &str, verdict: &Verdict) -> String {
    if verdict.passed() {
        format!("{} {name}: {}", "✓".green().bold(), verdict.summary())
    } else {
        format!("{} {name}: {}", "✗".red().bold(), verdict.summary())
    }
}

/// The headline followed by what the learner needs to fix it.
pub fn verdict_text(name: &str, path: &str, verdict: &Verdict) -> String {
    let mut out = headline(name, verdict);
    out.push('\n');
    match verdict {
        Verdict::Passed { .. } => {}
        Verdict::CompileError { diagnostics } => {
            out.push_str(&format!("\n{}\n", diagnostics.trim_end()));
        }
        Verdict::TestsFailed { failures, .. } => {
            for failure in failures.iter().take(FAILURES_SHOWN) {
                out.push_str(&format!("\n{} {}\n", "──".dimmed(), failure.test.bold()));
                let lines: Vec<&str> = failure.message.lines().collect();
                for line in lines.iter().take(MESSAGE_LINES) {
                    out.push_str(&format!("   {line}\n"));
                }
                if lines.len() > MESSAGE_LINES {
                    out.push_str(&format!("   … ({} more lines)\n", lines.len() - MESSAGE_LINES));
                }
            }
            if failures.len() > FAILURES_SHOWN {
                let rest: Vec<&str> = failures[FAILURES_SHOWN..]
                    .iter()
                    .map(|f| f.test.as_str())
                    .collect();
                out.push_str(&format!("\nAlso failing: {}\n", rest.join(", ")));
            }
            if failures
                .iter()
                .any(|f| f.message.contains("not yet implemented"))
            {
                out.push_str(&format!(
                    "\n{} `todo!()` marks the parts for you to write in {path}.\n",
                    "tip:".cyan()
                ));
            }
        }
        Verdict::TimedOut { limit } => out.push_str(&format!(
            "\nThe tests ran for more than {}s and were stopped. Look for a loop that never ends, or a\n\
             deadlock: a lock taken twice, or a wait on a channel or task that never answers.\n",
            limit.as_secs()
        )),
        Verdict::Crashed { what, output_tail } => {
            out.push_str(&format!("\nThe test process crashed: {what}.\n"));
            if !output_tail.trim().is_empty() {
                out.push_str(&format!("Its last output:\n{}\n", indent(output_tail, 3)));
            }
        }
        Verdict::OutputFlood { limit_bytes } => out.push_str(&format!(
            "\nThe tests printed more than {} KiB and were stopped. Look for a print inside a loop\n\
             that never ends.\n",
            limit_bytes / 1024
        )),
        Verdict::NoTests => out.push_str(
            "\nThe file has no tests, so there is nothing to check. If you removed the `mod tests`\n\
             block, `sdlings reset` brings the original back.\n",
        ),
        Verdict::BuildFailed { message } => {
            out.push_str(&format!("\ncargo failed:\n{}\n", indent(message, 3)));
        }
    }
    out
}

/// Every line of `text`, indented by `by` spaces.
pub fn indent(text: &str, by: usize) -> String {
    text.lines()
        .map(|l| format!("{:by$}{l}", ""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::libtest::Failure;

    #[test]
    fn failures_show_name_message_and_todo_tip() {
        colored::control::set_override(false);
        let verdict = Verdict::TestsFailed {
            passed: 1,
            failed: 1,
            failures: vec![Failure {
                test: "evicts_lru".into(),
                message: "thread panicked at x.rs:1:1:\nnot yet implemented".into(),
            }],
        };
        let text = verdict_text("lru_cache", "exercises/01_caching/lru_cache.rs", &verdict);
        assert!(
            text.starts_with("✗ lru_cache: 1 of 2 tests fail\n"),
            "{text}"
        );
        assert!(text.contains("── evicts_lru\n   thread panicked"), "{text}");
        assert!(text.contains("`todo!()` marks the parts"), "{text}");
    }
}
