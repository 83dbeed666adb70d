// Welcome to sdlings: a workbook where you learn system design by building the parts.
//
// How it works. Each exercise is one file like this one, with four parts: this header (what to
// build and why), the given scaffolding (types and constants you use as they are), your part
// (function bodies that are `todo!()` today), and `fn main()`, the *lab*. At the bottom, the
// `#[cfg(test)]` module holds the tests: they are the specification, and you do not edit them.
//
// The loop. Keep the watcher running in a terminal and this file open in your editor. On every
// save the watcher rebuilds and re-runs the tests, and shows what still fails. Press `h` for the
// next hint (they get more specific each time), `l` to list the exercises and your progress, and
// `n` to move on once the exercise passes. After a pass, the lab runs *your* code under a workload
// and prints figures; the knobs are `const`s at the top of the lab: change one, save, compare.
//
// This exercise: every service starts with a name and a timeout. The name ends up in logs,
// metrics and DNS, so it must be a valid DNS label. The timeout bounds how long we wait for a
// dependency: long enough for its slow-but-healthy calls, short enough that all our retries fit
// inside the deadline of whoever called us. Fill in `service_name` and `request_timeout`: both are
// `todo!()` now, which panics when a test calls it, and that is why all three tests fail. Replace
// each with a value, save, and read what the watcher says.
//
// Lab knob: `SLOW_CALLS_PERCENT`. The lab compares your timeout with a too-eager and a too-patient
// one. Raise the knob (try 10): the eager timeout fails more requests, the patient one answers
// more callers who have already given up, and yours should stay low on both.

use std::time::Duration;

use rand::RngExt;
use rand::rngs::StdRng;
use sdlings_kit::lab::{self, Table};
use sdlings_kit::workload::seeded_rng;

// ---------------------------------------------------------------------------------------------
// Given: what we know about our neighbours.
// ---------------------------------------------------------------------------------------------

/// 99% of calls to our dependency (say, the inventory service) answer within this time.
pub const DEPENDENCY_P99: Duration = Duration::from_millis(300);

/// Whoever calls us (the API gateway) gives up after this long, whatever we are doing.
pub const CALLER_DEADLINE: Duration = Duration::from_secs(2);

/// After a timed-out attempt we retry this many times, so there are up to `1 + MAX_RETRIES`
/// attempts per request.
pub const MAX_RETRIES: u32 = 2;

// ---------------------------------------------------------------------------------------------
// Your part.
// ---------------------------------------------------------------------------------------------

/// The service's name, as it appears in logs, metric labels and its DNS name
/// (`<name>.internal`). Pick any name you like, such as "checkout-api".
pub fn service_name() -> &'static str {
    // TODO: return a name, e.g. "checkout-api".
    todo!("name the service")
}

/// How long one attempt waits for the dependency before giving up.
pub fn request_timeout() -> Duration {
    // TODO: return a timeout, e.g. `Duration::from_secs(1)`, then let the tests tell you whether
    // it is sensible.
    todo!("choose a request timeout")
}

// ---------------------------------------------------------------------------------------------
// The lab: 10 000 requests against a simulated dependency, with three timeouts side by side.
// ---------------------------------------------------------------------------------------------

/// Share of dependency calls that hit a slow path (a GC pause, a cold cache, an overloaded node)
/// and take 0.3 to 5 seconds.
const SLOW_CALLS_PERCENT: f64 = 1.0;
/// How many requests to simulate.
const REQUESTS: u32 = 10_000;
/// Seed for the simulated latencies: same seed, same figures.
const SEED: u64 = 42;

/// One dependency call's latency: mostly fast, a few slow.
fn dependency_latency(rng: &mut StdRng) -> Duration {
    let ms = if rng.random_range(0.0..100.0) < SLOW_CALLS_PERCENT {
        rng.random_range(300..5_000)
    } else if rng.random_range(0..100) < 90 {
        rng.random_range(20..120)
    } else {
        rng.random_range(120..300)
    };
    Duration::from_millis(ms)
}

struct Outcome {
    attempts_timed_out: u32,
    requests_failed: u32,
    outlived_caller: u32,
    slowest: Duration,
}

/// Sends every request with up to `1 + MAX_RETRIES` attempts of at most `timeout` each.
fn simulate(timeout: Duration) -> Outcome {
    let mut rng = seeded_rng(SEED);
    let mut out = Outcome {
        attempts_timed_out: 0,
        requests_failed: 0,
        outlived_caller: 0,
        slowest: Duration::ZERO,
    };
    for _ in 0..REQUESTS {
        let mut elapsed = Duration::ZERO;
        let mut answered = false;
        for _ in 0..=MAX_RETRIES {
            let latency = dependency_latency(&mut rng);
            if latency <= timeout {
                elapsed += latency;
                answered = true;
                break;
            }
            elapsed += timeout;
            out.attempts_timed_out += 1;
        }
        if !answered {
            out.requests_failed += 1;
        }
        if elapsed > CALLER_DEADLINE {
            out.outlived_caller += 1;
        }
        out.slowest = out.slowest.max(elapsed);
    }
    out
}

fn main() {
    println!(
        "service {:?}: {REQUESTS} requests, up to {} attempts each, caller deadline {:?}, {SLOW_CALLS_PERCENT}% slow calls\n",
        service_name(),
        1 + MAX_RETRIES,
        CALLER_DEADLINE,
    );
    let mut table = Table::new(&[
        "choice",
        "timeout",
        "attempts timed out",
        "requests failed",
        "slowest request",
        "caller already gone",
    ]);
    let candidates = [
        ("too eager", Duration::from_millis(100)),
        ("yours", request_timeout()),
        ("too patient", Duration::from_secs(10)),
    ];
    for (label, timeout) in candidates {
        let o = simulate(timeout);
        table.row(&[
            label.to_string(),
            format!("{timeout:?}"),
            o.attempts_timed_out.to_string(),
            lab::percent(o.requests_failed.into(), REQUESTS.into()),
            format!("{:.2}s", o.slowest.as_secs_f64()),
            lab::percent(o.outlived_caller.into(), REQUESTS.into()),
        ]);
    }
    table.print();
    println!(
        "\n\"caller already gone\": the answer came after the caller's deadline, so the work was wasted."
    );
}

// ---------------------------------------------------------------------------------------------
// The tests: the specification. Read a failing test's name and message to see what is expected.
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_name_is_a_valid_dns_label() {
        let name = service_name();
        assert!(
            !name.is_empty() && name.len() <= 63,
            "a DNS label has 1 to 63 characters; {name:?} has {}",
            name.len()
        );
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "a DNS label uses only lowercase letters, digits and '-' (like \"checkout-api\"); \
             {name:?} does not"
        );
        assert!(
            name.starts_with(|c: char| c.is_ascii_lowercase()) && !name.ends_with('-'),
            "a service's DNS label starts with a letter and does not end with '-'; {name:?} does not"
        );
    }

    #[test]
    fn request_timeout_is_longer_than_the_dependencys_p99() {
        let timeout = request_timeout();
        assert!(
            timeout > DEPENDENCY_P99,
            "a timeout of {timeout:?} would cut off more than 1% of perfectly healthy calls: \
             the dependency's p99 is {DEPENDENCY_P99:?}, so wait longer than that"
        );
    }

    #[test]
    fn every_retry_fits_inside_the_callers_deadline() {
        let timeout = request_timeout();
        let attempts = 1 + MAX_RETRIES;
        let worst_case = timeout * attempts;
        assert!(
            worst_case <= CALLER_DEADLINE,
            "{attempts} attempts of {timeout:?} can take {worst_case:?}, but the caller gives up \
             after {CALLER_DEADLINE:?}: the last retries would answer nobody. Choose a timeout of \
             at most {:?}",
            CALLER_DEADLINE / attempts
        );
    }
}
