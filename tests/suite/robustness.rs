//! Learner code cannot take the watcher down. With one watcher running, the exercise is saved in
//! versions whose tests loop forever, deadlock, abort, overflow the stack, allocate without end,
//! exit early, print without end or panic with a huge message. Each must get a verdict naming the
//! problem, leave no process behind, and the watcher must stay alive and react to the next save;
//! the last save is the solution, which passes.

use crate::common;

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{TempWorkbook, Watcher};

const EXERCISE: &str = "exercises/00_intro/welcome.rs";
const NAME: &str = "welcome";

/// The body of `service_name` in the solution.
const NAME_BODY: &str = "\n    \"checkout-api\"\n";
/// The body of `request_timeout` in the solution ends with this expression.
const TIMEOUT_BODY: &str = "\n    Duration::from_millis(500)\n";

struct Case {
    what: &'static str,
    /// Replaces `NAME_BODY` or `TIMEOUT_BODY` of the solution.
    in_service_name: Option<&'static str>,
    in_request_timeout: Option<&'static str>,
    /// The verdict line must start with this.
    verdict: &'static str,
}

const CASES: &[Case] = &[
    Case {
        what: "an endless loop",
        in_service_name: Some("loop { std::hint::spin_loop() }"),
        in_request_timeout: None,
        verdict: "✗ welcome: stopped after the 2s time limit",
    },
    Case {
        what: "a deadlock: two mutexes taken in opposite orders by two threads",
        in_service_name: None,
        in_request_timeout: Some(
            "use std::sync::{Arc, Barrier, Mutex};
    let (a, b) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
    let both_hold_one = Arc::new(Barrier::new(2));
    let other = {
        let (a, b, both_hold_one) = (a.clone(), b.clone(), both_hold_one.clone());
        std::thread::spawn(move || {
            let _b = b.lock().unwrap();
            both_hold_one.wait();
            let _a = a.lock().unwrap();
        })
    };
    let _a = a.lock().unwrap();
    both_hold_one.wait();
    let _b = b.lock().unwrap();
    other.join().unwrap();
    Duration::from_millis(500)",
        ),
        verdict: "✗ welcome: stopped after the 2s time limit",
    },
    Case {
        what: "a deadlock: joining a thread that waits on a channel nobody sends on",
        in_service_name: None,
        in_request_timeout: Some(
            "let (_sender, receiver) = std::sync::mpsc::channel::<Duration>();
    std::thread::spawn(move || receiver.recv().unwrap()).join().unwrap()",
        ),
        verdict: "✗ welcome: stopped after the 2s time limit",
    },
    Case {
        what: "std::process::abort()",
        in_service_name: Some("std::process::abort()"),
        in_request_timeout: None,
        verdict: "✗ welcome: crashed: killed by signal 6 (SIGABRT: the process aborted)",
    },
    Case {
        what: "a stack overflow",
        in_service_name: Some(
            "fn deeper(n: u64) -> u64 {
        if n == u64::MAX { 0 } else { 1 + deeper(std::hint::black_box(n + 1)) }
    }
    if deeper(0) > 0 { \"checkout-api\" } else { \"checkout\" }",
        ),
        in_request_timeout: None,
        verdict: "✗ welcome: crashed: stack overflow in `",
    },
    Case {
        what: "allocating without end (without touching the pages)",
        in_service_name: Some(
            "let mut hoard = Vec::new();
    loop {
        hoard.push(vec![0u8; 1 << 20]);
    }",
        ),
        in_request_timeout: None,
        verdict: "✗ welcome: crashed: ran out of memory",
    },
    Case {
        what: "std::process::exit in a test",
        in_service_name: Some("std::process::exit(3)"),
        in_request_timeout: None,
        verdict: "✗ welcome: crashed: the test process exited with code 3",
    },
    Case {
        what: "printing without end, past libtest's capture",
        in_service_name: Some(
            "use std::io::Write;
    loop {
        let _ = std::io::stderr().write_all(b\"flood flood flood flood flood flood\\n\");
    }",
        ),
        in_request_timeout: None,
        verdict: "✗ welcome: stopped: printed more than 1024 KiB",
    },
];

fn version(solved: &str, case: &Case) -> String {
    let mut text = solved.to_string();
    if let Some(body) = case.in_service_name {
        assert!(text.contains(NAME_BODY));
        text = text.replacen(NAME_BODY, &format!("\n    {body}\n"), 1);
    }
    if let Some(body) = case.in_request_timeout {
        assert!(text.contains(TIMEOUT_BODY));
        text = text.replacen(TIMEOUT_BODY, &format!("\n    {body}\n"), 1);
    }
    text
}

/// The processes the watcher started and has not reaped (cargo, a test binary, a lab).
fn children(pid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        if let Ok(list) = fs::read_to_string(task.path().join("children")) {
            found.extend(list.split_whitespace().map(|c| {
                let cmd = fs::read_to_string(format!("/proc/{c}/cmdline")).unwrap_or_default();
                format!("{c} {}", cmd.replace('\0', " "))
            }));
        }
    }
    found
}

/// Waits for the next verdict, checks it names the problem, and that the watcher is still alive
/// with nothing left running.
fn expect_verdict(watcher: &mut Watcher, what: &str, expected: &str) {
    let verdict = watcher.next_verdict(NAME);
    assert!(
        verdict.starts_with(expected),
        "after saving {what}: expected {expected:?}, got {verdict:?}"
    );
    assert!(
        watcher.is_running(),
        "the watcher died after {what}; it printed:\n{}",
        watcher.seen().join("\n")
    );
    // The verdict is printed after the test process was stopped and reaped.
    let left = children(watcher.pid());
    assert!(
        left.is_empty(),
        "after {what} the watcher still has children: {left:?}"
    );
}

#[test]
fn learner_code_cannot_take_the_watcher_down() {
    let wb = TempWorkbook::new();
    wb.set_time_limit(NAME, 2);
    let solved = wb.read("solutions/00_intro/welcome.rs");
    let mut watcher = wb.watcher(&[]);
    watcher.expect("watching exercises/00_intro/welcome.rs");
    assert_eq!(watcher.next_verdict(NAME), "✗ welcome: 3 of 3 tests fail");

    for case in CASES {
        wb.write(EXERCISE, &version(&solved, case));
        expect_verdict(&mut watcher, case.what, case.verdict);
    }

    // A test panicking with a 10 MB message: past the output limit, whether or not the process
    // exits before the limit is noticed. It is reported as such, and the watcher goes on.
    wb.write(
        EXERCISE,
        &solved.replacen(
            NAME_BODY,
            "\n    panic!(\"{}\", \"too long \".repeat((10 << 20) / 9))\n",
            1,
        ),
    );
    let verdict = watcher.next_verdict(NAME);
    assert_eq!(
        verdict, "✗ welcome: stopped: printed more than 1024 KiB",
        "after a 10 MB panic message"
    );
    assert!(watcher.is_running());

    wb.write(EXERCISE, &solved);
    assert_eq!(watcher.next_verdict(NAME), "✓ welcome: all 3 tests pass");
    watcher.expect("send n for the next exercise");

    let (status, seen) = watcher.finish();
    assert!(
        status.success(),
        "{status}; it printed:\n{}",
        seen.join("\n")
    );
    assert_eq!(
        common::verdicts(&seen, NAME).len(),
        CASES.len() + 3,
        "one verdict per save; it printed:\n{}",
        seen.join("\n")
    );
}

/// The test binary of `welcome` among the watcher's children, once it runs.
fn running_test_binary(watcher: &Watcher) -> Option<u32> {
    let pid = watcher.pid();
    fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .find(|child| is_welcome_tests(*child))
}

/// Whether `pid` is a live (not zombie) run of the welcome test binary.
fn is_welcome_tests(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat[stat.rfind(')').unwrap() + 2..].chars().next();
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    state != Some('Z')
        && exe
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("welcome-"))
}

#[test]
fn quitting_during_a_check_stops_the_learners_code() {
    let wb = TempWorkbook::new();
    let solved = wb.read("solutions/00_intro/welcome.rs");
    // An endless loop, under the default time limit (10 s).
    wb.write(
        EXERCISE,
        &solved.replacen(NAME_BODY, "\n    loop { std::hint::spin_loop() }\n", 1),
    );
    let mut watcher = wb.watcher(&[]);
    watcher.expect("watching");
    // Wait (polling /proc) until the check runs the test binary: cargo is done by then.
    let guard = Instant::now() + common::STEP_LIMIT;
    let tests = loop {
        if let Some(pid) = running_test_binary(&watcher) {
            break pid;
        }
        assert!(Instant::now() < guard, "the check never ran the tests");
        thread::sleep(Duration::from_millis(10));
    };
    watcher.send("q");
    let (status, _) = watcher.finish();
    assert!(status.success());
    // A SIGKILLed process dies at once; this bound only stops the test if it never does.
    let guard = Instant::now() + Duration::from_secs(30);
    while is_welcome_tests(tests) && Instant::now() < guard {
        thread::sleep(Duration::from_millis(10));
    }
    let survived = is_welcome_tests(tests);
    if survived {
        // SAFETY: kill(2) on the orphan we found; no memory involved.
        unsafe {
            libc::kill(tests as i32, libc::SIGKILL);
        }
    }
    assert!(
        !survived,
        "the looping test binary (pid {tests}) outlived the watcher by 30 s"
    );
}
