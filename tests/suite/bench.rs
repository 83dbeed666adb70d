//! A benchmark of what a learner feels, not a test: it asserts nothing about time. Run it with
//!
//! ```sh
//! cargo test --release --test suite bench:: -- --ignored --nocapture
//! ```
//!
//! and read the one table it prints at the end: each figure next to its target, PASS or MISS.
//!
//! - save→verdict latency of the watcher on a typical exercise (01_caching/lru_cache), for a
//!   fail→pass and a pass→fail edit, against plain cargo doing the same work for the same edit
//!   (`cargo test --no-run` of that binary into the same build directory, then running the test
//!   binary): the watcher should add at most 10%;
//! - idle CPU and resident memory of a watcher over 30 s without edits;
//! - `sdlings verify --all` on a solved workbook against one plain `cargo test` of the exercises
//!   package (both warm): at most 20% more;
//! - start-up: from spawning a watcher to its first line of output.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{TempWorkbook, Watcher};

const NAME: &str = "lru_cache";
const EXERCISE: &str = "exercises/01_caching/lru_cache.rs";
const REPETITIONS: usize = 5;
const IDLE_WINDOW: Duration = Duration::from_secs(30);

/// The plausible mistake the pass→fail edit makes: forgetting to drop the evicted key from the
/// map (one deleted line, as a learner's edit would be).
const MISTAKE: &str = "        self.map.remove(&node.key);\n";

struct Row {
    figure: String,
    sdlings: String,
    baseline: String,
    target: String,
    /// `None`: informational, no target.
    met: Option<bool>,
}

fn row(figure: &str, sdlings: String, baseline: String, target: &str, met: Option<bool>) -> Row {
    Row {
        figure: figure.into(),
        sdlings,
        baseline,
        target: target.into(),
        met,
    }
}

#[test]
#[ignore = "a benchmark: cargo test --release --test suite bench:: -- --ignored --nocapture"]
fn benchmark() {
    let started = Instant::now();
    let wb = TempWorkbook::curriculum();
    wb.write(
        ".sdlings-state.toml",
        "format_version = 1\ncurrent = \"lru_cache\"\n\n\
         [exercises.welcome]\ndone = true\n\n\
         [exercises.reading_tests]\ndone = true\n\n\
         [exercises.hit_counter]\ndone = true\n",
    );
    let passing = wb.read("solutions/01_caching/lru_cache.rs");
    assert!(passing.contains(MISTAKE));
    let failing = passing.replacen(MISTAKE, "", 1);
    let mut rows = Vec::new();

    eprintln!("[bench] start-up");
    rows.push(startup(&wb));

    eprintln!("[bench] save→verdict latency, plain cargo");
    let raw = raw_latencies(&wb, &passing, &failing);
    eprintln!("[bench] save→verdict latency, watcher");
    let (watched, watcher) = watcher_latencies(&wb, &passing, &failing);
    for (figure, w, r) in [
        ("save→verdict, fail→pass edit", &watched.0, &raw.0),
        ("save→verdict, pass→fail edit", &watched.1, &raw.1),
    ] {
        let (w, r) = (median(w), median(r));
        let ratio = w.as_secs_f64() / r.as_secs_f64();
        rows.push(row(
            &format!("{figure} (median of {REPETITIONS})"),
            secs(w),
            secs(r),
            "",
            None,
        ));
        let extra = w.as_secs_f64() - r.as_secs_f64();
        rows.push(row(
            &format!("  watcher / plain cargo ({:+.0} ms)", extra * 1000.0),
            format!("{ratio:.3}"),
            String::new(),
            "≤ 1.10",
            Some(ratio <= 1.10),
        ));
    }

    eprintln!("[bench] idle watcher, {}s", IDLE_WINDOW.as_secs());
    rows.extend(idle(watcher, "idle"));
    eprintln!(
        "[bench] idle watcher with --poll, {}s",
        IDLE_WINDOW.as_secs()
    );
    let mut polling = wb.watcher(&["--poll"]);
    polling.expect("watching");
    wait_until_idle(&mut polling);
    rows.extend(idle(polling, "idle, --poll"));

    eprintln!("[bench] verify --all against cargo test");
    rows.extend(verify_all(&wb));

    print_table(&rows, started.elapsed());
}

// ------------------------------------------------------------------------------------------------
// Start-up.
// ------------------------------------------------------------------------------------------------

fn startup(wb: &TempWorkbook) -> Row {
    let mut times = Vec::new();
    for _ in 0..=REPETITIONS {
        let spawned = Instant::now();
        let mut watcher = wb.watcher(&[]);
        let (at, _) = watcher.expect_where("the `watching` line", |l| l.starts_with("watching "));
        times.push(at - spawned);
        // Let the start-up check end before quitting: a watcher that quits while it starts a
        // check can leave a child holding its lock for a moment, so the next start is refused
        // (and its children outlive it: see robustness.rs).
        wait_until_idle(&mut watcher);
        let (status, _) = watcher.finish();
        assert!(status.success());
    }
    // The first start pays for loading the binary from disk.
    times.remove(0);
    let t = median(&times);
    row(
        &format!("start-up to first output (median of {REPETITIONS})"),
        millis(t),
        String::new(),
        "< 300 ms",
        Some(t < Duration::from_millis(300)),
    )
}

// ------------------------------------------------------------------------------------------------
// Save→verdict.
// ------------------------------------------------------------------------------------------------

type Latencies = (Vec<Duration>, Vec<Duration>);

/// What plain cargo takes for the same edits: build the test binary, run it.
fn raw_latencies(wb: &TempWorkbook, passing: &str, failing: &str) -> Latencies {
    let (mut fail_to_pass, mut pass_to_fail) = (Vec::new(), Vec::new());
    // The first round warms up (and is not counted).
    for round in 0..=REPETITIONS {
        let start = Instant::now();
        wb.write(EXERCISE, failing);
        assert!(!raw_check(wb.path()), "the failing version passed");
        let pass_to_fail_time = start.elapsed();
        let start = Instant::now();
        wb.write(EXERCISE, passing);
        assert!(raw_check(wb.path()), "the solution failed");
        let fail_to_pass_time = start.elapsed();
        if round > 0 {
            pass_to_fail.push(pass_to_fail_time);
            fail_to_pass.push(fail_to_pass_time);
        }
    }
    (fail_to_pass, pass_to_fail)
}

/// `cargo test --no-run` of the exercise into the shared build directory, then its test binary
/// run directly; whether the tests passed.
fn raw_check(root: &Path) -> bool {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["test", "--no-run", "-p", "exercises", "--bin", NAME])
        .arg("--message-format=json")
        .arg("--target-dir")
        .arg(root.join("target").join("sdlings"))
        .current_dir(root)
        .env("CARGO_TERM_COLOR", "never")
        .env_remove("CARGO_TARGET_DIR")
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo test --no-run failed");
    let exe = test_executable(&String::from_utf8_lossy(&out.stdout));
    Command::new(exe)
        .arg("--color=never")
        .current_dir(root)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn test_executable(json_lines: &str) -> PathBuf {
    json_lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["name"] == NAME
                && m["profile"]["test"] == true
        })
        .and_then(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo named the test executable")
}

fn watcher_latencies(wb: &TempWorkbook, passing: &str, failing: &str) -> (Latencies, Watcher) {
    let mut watcher = wb.watcher(&[]);
    watcher.expect("watching exercises/01_caching/lru_cache.rs");
    wait_until_idle(&mut watcher);
    let (mut fail_to_pass, mut pass_to_fail) = (Vec::new(), Vec::new());
    for round in 0..=REPETITIONS {
        let start = Instant::now();
        wb.write(EXERCISE, failing);
        let (at, verdict) = watcher.next_verdict_at(NAME);
        assert!(verdict.starts_with("✗ lru_cache: "), "{verdict}");
        let pass_to_fail_time = at - start;
        let start = Instant::now();
        wb.write(EXERCISE, passing);
        let (at, verdict) = watcher.next_verdict_at(NAME);
        assert!(verdict.starts_with("✓ lru_cache: "), "{verdict}");
        let fail_to_pass_time = at - start;
        // The lab runs after a pass; the next edit waits for it, as a learner reading it would.
        watcher.expect("send n for the next exercise");
        if round > 0 {
            pass_to_fail.push(pass_to_fail_time);
            fail_to_pass.push(fail_to_pass_time);
        }
    }
    ((fail_to_pass, pass_to_fail), watcher)
}

/// Waits for the start-up check (and the lab, after a pass).
fn wait_until_idle(watcher: &mut Watcher) {
    let verdict = watcher.next_verdict(NAME);
    if verdict.starts_with('✓') {
        watcher.expect("send n for the next exercise");
    }
}

// ------------------------------------------------------------------------------------------------
// Idle cost.
// ------------------------------------------------------------------------------------------------

fn idle(watcher: Watcher, label: &str) -> Vec<Row> {
    let pid = watcher.pid();
    let ticks_per_second = clock_ticks();
    let before = cpu_ticks(pid);
    let start = Instant::now();
    thread::sleep(IDLE_WINDOW);
    let used = (cpu_ticks(pid) - before) as f64 / ticks_per_second;
    let share = used / start.elapsed().as_secs_f64() * 100.0;
    let rss_kib = vm_rss_kib(pid);
    let (status, _) = watcher.finish();
    assert!(status.success());
    vec![
        row(
            &format!(
                "CPU, {label} for {}s (% of one core)",
                IDLE_WINDOW.as_secs()
            ),
            format!("{share:.3}%"),
            String::new(),
            "< 0.5%",
            Some(share < 0.5),
        ),
        row(
            &format!("resident memory, {label} (VmRSS)"),
            format!("{:.1} MB", rss_kib as f64 / 1024.0),
            String::new(),
            "< 30 MB",
            Some(rss_kib < 30 * 1024),
        ),
    ]
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(ticks > 0);
    ticks as f64
}

/// utime + stime of a process, in clock ticks (its children are not counted: an idle watcher
/// has none).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) may contain spaces; the fields after it are plain.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the whole line are 12 and 13 after the name (which is field 2).
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

// ------------------------------------------------------------------------------------------------
// verify --all against cargo test.
// ------------------------------------------------------------------------------------------------

fn verify_all(wb: &TempWorkbook) -> Vec<Row> {
    copy_solutions(&wb.path().join("solutions"), &wb.path().join("exercises"));
    let verify = || {
        let start = Instant::now();
        let out = wb.sdlings().args(["verify", "--all"]).output().unwrap();
        (start.elapsed(), out.status.code())
    };
    let cargo_test = || {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let start = Instant::now();
        let status = Command::new(cargo)
            .args(["test", "-p", "exercises", "--no-fail-fast", "--target-dir"])
            .arg(wb.path().join("target").join("sdlings"))
            .current_dir(wb.path())
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("CARGO_TARGET_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        (start.elapsed(), status.code())
    };
    // Warm both: build everything once.
    let (_, verify_code) = verify();
    let (_, cargo_code) = cargo_test();
    let (mut sdlings_times, mut cargo_times) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        sdlings_times.push(verify().0);
        cargo_times.push(cargo_test().0);
    }
    let (s, c) = (median(&sdlings_times), median(&cargo_times));
    let ratio = s.as_secs_f64() / c.as_secs_f64();
    let exercises = common::curriculum_size().0;
    vec![
        row(
            &format!(
                "verify --all, {exercises} solved exercises, warm (median of 3; exit {} / {})",
                code(verify_code),
                code(cargo_code)
            ),
            secs(s),
            secs(c),
            "",
            None,
        ),
        row(
            "  verify / cargo test",
            format!("{ratio:.3}"),
            String::new(),
            "≤ 1.20",
            Some(ratio <= 1.2),
        ),
    ]
}

fn code(code: Option<i32>) -> String {
    code.map_or_else(|| "signal".into(), |c| c.to_string())
}

/// Every solution file over its exercise (the Cargo.toml of each package stays).
fn copy_solutions(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_solutions(&path, &target);
        } else if path.extension().is_some_and(|e| e == "rs") {
            fs::copy(&path, &target).unwrap();
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Figures.
// ------------------------------------------------------------------------------------------------

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn print_table(rows: &[Row], took: Duration) {
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "sdlings benchmark — {} build, {cores} cores, load average {} — took {:.0} s",
        if cfg!(debug_assertions) {
            "DEBUG (use --release)"
        } else {
            "release"
        },
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        took.as_secs_f64()
    );
    let headers = ["figure", "sdlings", "plain cargo", "target", "result"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.figure.clone(),
                r.sdlings.clone(),
                r.baseline.clone(),
                r.target.clone(),
                match r.met {
                    Some(true) => "PASS".into(),
                    Some(false) => "MISS".into(),
                    None => String::new(),
                },
            ]
        })
        .collect();
    let width = |i: usize| {
        cells
            .iter()
            .map(|c| c[i].chars().count())
            .chain([headers[i].len()])
            .max()
            .unwrap()
    };
    let widths: Vec<usize> = (0..5).map(width).collect();
    let line = |c: &[String]| {
        let mut out = String::new();
        for (i, cell) in c.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i == 0 {
                out.push_str(&format!("{cell}{}", " ".repeat(pad)));
            } else {
                out.push_str(&format!("  {}{cell}", " ".repeat(pad)));
            }
        }
        println!("{}", out.trim_end());
    };
    line(&headers.map(String::from));
    line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for c in &cells {
        line(c);
    }
    println!();
}
