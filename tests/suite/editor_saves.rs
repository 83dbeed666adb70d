//! Saves the way real editors make them, against a real watcher: atomic renames, in-place
//! rewrites in chunks, swap/backup/lock files beside the exercise, `sed -i`, bursts of writes.
//! Whatever the editor does, each save must lead to exactly one verdict, and that verdict must be
//! the one of the file as it is now.
//!
//! Every save writes one of a few contents whose verdicts differ ("3 of 3 tests fail", "2 of 3",
//! "1 of 3", "all 3 tests pass"), so a verdict for a stale or half-written file shows up as the
//! wrong line. At the end stdin is closed, the watcher exits once idle, and all its verdict lines
//! are counted: one for the start-up check plus one per save, no more.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::common::{TempWorkbook, Watcher, verdicts};

const EXERCISE: &str = "exercises/00_intro/welcome.rs";
const NAME: &str = "welcome";

const ALL_FAIL: &str = "✗ welcome: 3 of 3 tests fail";
const TWO_FAIL: &str = "✗ welcome: 2 of 3 tests fail";
const ONE_FAILS: &str = "✗ welcome: 1 of 3 tests fail";
const PASS: &str = "✓ welcome: all 3 tests pass";

/// The versions of welcome.rs the saves write.
struct Texts {
    /// As shipped: both functions are `todo!()`.
    original: String,
    solved: String,
    /// Solved, but the timeout is below the dependency's p99.
    one_fails: String,
    /// That, and the name is not a DNS label either.
    two_fail: String,
}

impl Texts {
    fn of(wb: &TempWorkbook) -> Texts {
        let original = wb.read(EXERCISE);
        let solved = wb.read("solutions/00_intro/welcome.rs");
        let one_fails = replace_once(
            &solved,
            "Duration::from_millis(500)",
            "Duration::from_millis(250)",
        );
        let two_fail = replace_once(
            &one_fails,
            "\n    \"checkout-api\"\n",
            "\n    \"Checkout_API\"\n",
        );
        Texts {
            original,
            solved,
            one_fails,
            two_fail,
        }
    }
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not found");
    text.replacen(from, to, 1)
}

/// One save: what the editor does, and the verdict it must lead to.
struct Save<'a> {
    how: &'a str,
    save: Box<dyn Fn(&Path) + 'a>,
    verdict: &'static str,
}

fn save<'a>(how: &'a str, verdict: &'static str, save: impl Fn(&Path) + 'a) -> Save<'a> {
    Save {
        how,
        save: Box::new(save),
        verdict,
    }
}

/// Runs a watcher (with `args`), makes the saves one after the other, each once the verdict of
/// the previous one is in, and checks every verdict and their total count.
fn session(wb: &TempWorkbook, args: &[&str], saves: &[Save]) {
    session_with_noise(wb, args, saves, |_| {});
}

/// [`session`], with `noise` made (and given time to reach the watcher) before the end.
fn session_with_noise(wb: &TempWorkbook, args: &[&str], saves: &[Save], noise: impl Fn(&Path)) {
    let path = wb.path().join(EXERCISE);
    let mut watcher = wb.watcher(args);
    watcher.expect("watching exercises/00_intro/welcome.rs");
    assert_eq!(watcher.next_verdict(NAME), ALL_FAIL);
    for step in saves {
        (step.save)(&path);
        let verdict = watcher.next_verdict(NAME);
        assert_eq!(
            verdict,
            step.verdict,
            "after a save by {}; the watcher printed:\n{}",
            step.how,
            watcher.seen().join("\n")
        );
        if verdict == PASS {
            // Let the lab finish, so the watcher is idle before the next save.
            watcher.expect("send n for the next exercise");
        }
    }
    noise(&path);
    finish_and_count(watcher, saves.len());
}

/// Closes stdin; the watcher exits once idle. Then there must be exactly one verdict for the
/// start-up check and one per save.
fn finish_and_count(watcher: Watcher, saves: usize) {
    let (status, seen) = watcher.finish();
    assert!(
        status.success(),
        "{status}; it printed:\n{}",
        seen.join("\n")
    );
    let verdicts = verdicts(&seen, NAME);
    assert_eq!(
        verdicts.len(),
        1 + saves,
        "expected one verdict at start-up and one per save; the watcher printed:\n{}",
        seen.join("\n")
    );
}

/// File events for paths other than the exercise travel from the kernel to the watcher in well
/// under a millisecond; this leaves them ample time to arrive before stdin is closed. It is no
/// synchronisation: a watcher that wrongly reacted to them is then busy and does not exit before
/// printing the verdict of the check they started, which the final count catches. (If they
/// arrived later than this, the test could only pass wrongly, never fail wrongly.)
fn let_events_arrive() {
    thread::sleep(Duration::from_millis(500));
}

// ------------------------------------------------------------------------------------------------
// How editors write a file.
// ------------------------------------------------------------------------------------------------

fn sibling(path: &Path, name: &str) -> PathBuf {
    path.with_file_name(name)
}

fn write_synced(path: &Path, text: &str) {
    let mut file = File::create(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file.sync_all().unwrap();
}

/// Safe write: the new text goes to a temporary file in the same directory, which is then renamed
/// over the target (VS Code's and Emacs's atomic saves, vim with `backupcopy=no` and no backup).
fn rename_over(path: &Path, text: &str) {
    let tmp = sibling(path, ".welcome.rs.tmp-4711");
    write_synced(&tmp, text);
    fs::rename(&tmp, path).unwrap();
}

/// JetBrains IDEs' "safe write": write `NAME___jb_tmp___`, move the original to
/// `NAME___jb_old___`, move the new file in place, delete the old one.
fn jetbrains_safe_write(path: &Path, text: &str) {
    let tmp = sibling(path, "welcome.rs___jb_tmp___");
    let old = sibling(path, "welcome.rs___jb_old___");
    write_synced(&tmp, text);
    fs::rename(path, &old).unwrap();
    fs::rename(&tmp, path).unwrap();
    fs::remove_file(&old).unwrap();
}

/// vim with `backupcopy=no`: rename the original to the backup `NAME~`, write a new file under
/// the name, then delete the backup (`nobackup writebackup`). For a moment the file is missing.
fn vim_rename_backup(path: &Path, text: &str) {
    let backup = sibling(path, "welcome.rs~");
    fs::rename(path, &backup).unwrap();
    write_synced(path, text);
    fs::remove_file(&backup).unwrap();
}

/// In-place rewrite (vim with `backupcopy=yes`, nano, most simple editors): open with truncation
/// and write in several chunks, flushing each, so the file is seen empty and half-written.
fn in_place_chunks(path: &Path, text: &str) {
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    file.sync_data().unwrap();
    let bytes = text.as_bytes();
    let chunk = bytes.len().div_ceil(4).max(1);
    for piece in bytes.chunks(chunk) {
        file.write_all(piece).unwrap();
        file.flush().unwrap();
        file.sync_data().unwrap();
    }
}

/// What vim does around a save with its default settings (`backupcopy=auto`, `writebackup`, a
/// swap file): the swap file `.NAME.swp` (and `.NAME.swx` when `.swp` is taken) is written while
/// editing, `4913` probes whether the directory is writable, `NAME~` is a backup copy, and the
/// file itself is rewritten in place.
fn vim_save_with_swap_files(path: &Path, text: &str) {
    let swp = sibling(path, ".welcome.rs.swp");
    let swx = sibling(path, ".welcome.rs.swx");
    let probe = sibling(path, "4913");
    let backup = sibling(path, "welcome.rs~");
    write_synced(&swp, "b0VIM 9.1 swap\n");
    write_synced(&swx, "b0VIM 9.1 swap\n");
    append(&swp, "typed text\n");
    write_synced(&probe, "");
    fs::remove_file(&probe).unwrap();
    fs::copy(path, &backup).unwrap();
    in_place_chunks(path, text);
    fs::remove_file(&backup).unwrap();
    append(&swp, "saved\n");
    fs::remove_file(&swx).unwrap();
}

/// Emacs: a lock `.#NAME` (a dangling symlink) while the buffer is modified; on save the original
/// is renamed to the backup `NAME~` and the new text written under the name; the lock goes.
fn emacs_save(path: &Path, text: &str) {
    let lock = sibling(path, ".#welcome.rs");
    let backup = sibling(path, "welcome.rs~");
    std::os::unix::fs::symlink("learner@host.4242:1700000000", &lock).unwrap();
    fs::rename(path, &backup).unwrap();
    write_synced(path, text);
    fs::remove_file(&lock).unwrap();
    // Emacs keeps its backup; it is deleted here only to leave the directory clean.
    fs::remove_file(&backup).unwrap();
}

/// Swap, backup and lock files made, modified and deleted while the learner edits without
/// saving. None of them is the exercise.
fn editing_without_saving(path: &Path) {
    let swp = sibling(path, ".welcome.rs.swp");
    let swx = sibling(path, ".welcome.rs.swx");
    let probe = sibling(path, "4913");
    let backup = sibling(path, "welcome.rs~");
    let lock = sibling(path, ".#welcome.rs");
    write_synced(&swp, "b0VIM 9.1 swap\n");
    write_synced(&swx, "b0VIM 9.1 swap\n");
    std::os::unix::fs::symlink("learner@host.4242:1700000000", &lock).unwrap();
    for _ in 0..5 {
        append(&swp, "typed text\n");
    }
    write_synced(&probe, "");
    fs::copy(path, &backup).unwrap();
    append(&backup, "// an older version\n");
    for gone in [&probe, &backup, &lock, &swx, &swp] {
        fs::remove_file(gone).unwrap();
    }
}

fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file.sync_data().unwrap();
}

/// The real `sed -i`, which writes a temporary `sedXXXXXX` file and renames it over the target.
fn sed_in_place(path: &Path, script: &str) {
    let status = Command::new("sed")
        .arg("-i")
        .arg("-e")
        .arg(script)
        .arg(path)
        .status()
        .expect("sed is installed");
    assert!(status.success());
}

// ------------------------------------------------------------------------------------------------
// The tests.
// ------------------------------------------------------------------------------------------------

#[test]
fn atomic_renames_are_one_save_each() {
    let wb = TempWorkbook::new();
    let t = Texts::of(&wb);
    session(
        &wb,
        &[],
        &[
            save("a temp file renamed over it", ONE_FAILS, |p| {
                rename_over(p, &t.one_fails)
            }),
            save("JetBrains safe write", PASS, |p| {
                jetbrains_safe_write(p, &t.solved)
            }),
            save("vim renaming the original to a backup", TWO_FAIL, |p| {
                vim_rename_backup(p, &t.two_fail)
            }),
            save("vim renaming the original to a backup", PASS, |p| {
                vim_rename_backup(p, &t.solved)
            }),
            save("a temp file renamed over it", ALL_FAIL, |p| {
                rename_over(p, &t.original)
            }),
        ],
    );
}

#[test]
fn in_place_rewrites_in_chunks_are_one_save_each() {
    let wb = TempWorkbook::new();
    let t = Texts::of(&wb);
    session(
        &wb,
        &[],
        &[
            save("in place", TWO_FAIL, |p| in_place_chunks(p, &t.two_fail)),
            save("in place", PASS, |p| in_place_chunks(p, &t.solved)),
            save("in place", ONE_FAILS, |p| in_place_chunks(p, &t.one_fails)),
            save("in place", PASS, |p| in_place_chunks(p, &t.solved)),
        ],
    );
}

#[test]
fn swap_backup_and_lock_files_beside_the_exercise_trigger_no_check() {
    let wb = TempWorkbook::new();
    let t = Texts::of(&wb);
    session_with_noise(
        &wb,
        &[],
        &[
            save("editing without saving, then vim", PASS, |p| {
                editing_without_saving(p);
                let_events_arrive();
                vim_save_with_swap_files(p, &t.solved);
            }),
            save("editing without saving, then Emacs", ONE_FAILS, |p| {
                editing_without_saving(p);
                let_events_arrive();
                emacs_save(p, &t.one_fails);
            }),
            save("vim", TWO_FAIL, |p| {
                vim_save_with_swap_files(p, &t.two_fail)
            }),
        ],
        |p| {
            editing_without_saving(p);
            let_events_arrive();
        },
    );
}

#[test]
fn sed_in_place_edits_are_seen() {
    let wb = TempWorkbook::new();
    session(
        &wb,
        &[],
        &[
            save("sed -i", TWO_FAIL, |p| {
                sed_in_place(p, r#"s/todo!("name the service")/"checkout-api"/"#)
            }),
            save("sed -i", PASS, |p| {
                sed_in_place(
                    p,
                    r#"s/todo!("choose a request timeout")/Duration::from_millis(500)/"#,
                )
            }),
            save("sed -i", ONE_FAILS, |p| {
                sed_in_place(p, "s/from_millis(500)/from_millis(250)/")
            }),
        ],
    );
    assert!(wb.read(EXERCISE).contains("Duration::from_millis(250)"));
}

#[test]
fn a_burst_of_twenty_saves_gets_one_verdict_for_the_last() {
    let wb = TempWorkbook::new();
    let t = Texts::of(&wb);
    let half = &t.solved[..t.solved.len() / 2];
    session(
        &wb,
        &[],
        &[save("20 saves in a few milliseconds", PASS, |p| {
            // Twenty saves as fast as the file system takes them, in every style and with
            // contents that fail, do not compile, or are empty; only the last is solved.
            let contents = [
                t.one_fails.as_str(),
                "",
                half,
                t.two_fail.as_str(),
                t.original.as_str(),
            ];
            for i in 0..19 {
                let text = contents[i % contents.len()];
                match i % 3 {
                    0 => fs::write(p, text).unwrap(),
                    1 => rename_over(p, text),
                    _ => in_place_chunks(p, text),
                }
            }
            fs::write(p, &t.solved).unwrap();
        })],
    );
}

#[test]
fn alternating_failing_and_passing_saves_get_alternating_verdicts() {
    let wb = TempWorkbook::new();
    let t = Texts::of(&wb);
    session(
        &wb,
        &[],
        &[
            save("a plain write", ONE_FAILS, |p| {
                fs::write(p, &t.one_fails).unwrap()
            }),
            save("a plain write", PASS, |p| fs::write(p, &t.solved).unwrap()),
            save("a plain write", ONE_FAILS, |p| {
                fs::write(p, &t.one_fails).unwrap()
            }),
            save("a plain write", PASS, |p| fs::write(p, &t.solved).unwrap()),
            save("a plain write", TWO_FAIL, |p| {
                fs::write(p, &t.two_fail).unwrap()
            }),
        ],
    );
}

#[test]
fn polling_sees_atomic_renames_and_in_place_rewrites() {
    let wb = TempWorkbook::new();
    let t = Texts::of(&wb);
    session(
        &wb,
        &["--poll"],
        &[
            save("a temp file renamed over it", ONE_FAILS, |p| {
                rename_over(p, &t.one_fails)
            }),
            save("in place", PASS, |p| in_place_chunks(p, &t.solved)),
            save("JetBrains safe write", TWO_FAIL, |p| {
                jetbrains_safe_write(p, &t.two_fail)
            }),
            save("vim renaming the original to a backup", PASS, |p| {
                vim_rename_backup(p, &t.solved)
            }),
            save("in place", ONE_FAILS, |p| in_place_chunks(p, &t.one_fails)),
        ],
    );
}

#[test]
fn polling_ignores_swap_files_and_sees_one_save_per_burst() {
    let wb = TempWorkbook::new();
    let t = Texts::of(&wb);
    session_with_noise(
        &wb,
        &["--poll"],
        &[
            save("editing without saving, then vim", PASS, |p| {
                editing_without_saving(p);
                vim_save_with_swap_files(p, &t.solved);
            }),
            save("a burst of in-place writes", ONE_FAILS, |p| {
                for text in [&t.two_fail, &t.original, &t.solved, &t.one_fails] {
                    in_place_chunks(p, text);
                }
            }),
        ],
        |p| {
            // The poller looks every 250 ms, so files that live shorter than that may never be
            // seen: keep each state of the swap and backup files for several looks.
            let swp = sibling(p, ".welcome.rs.swp");
            let backup = sibling(p, "welcome.rs~");
            write_synced(&swp, "b0VIM 9.1 swap\n");
            fs::copy(p, &backup).unwrap();
            let_events_arrive();
            append(&swp, "typed text\n");
            append(&backup, "// an older version\n");
            let_events_arrive();
            fs::remove_file(&swp).unwrap();
            fs::remove_file(&backup).unwrap();
            let_events_arrive();
        },
    );
}

#[test]
fn polling_follows_the_learner_into_the_next_topic() {
    // Polling watches only the current exercise's directory: moving on to an exercise in
    // another directory must move the polling with it.
    let wb = TempWorkbook::new();
    wb.write(
        ".sdlings-state.toml",
        "format_version = 1\ncurrent = \"hit_counter\"\n\n\
         [exercises.welcome]\ndone = true\n\n\
         [exercises.reading_tests]\ndone = true\n",
    );
    let mut watcher = wb.watcher(&["--poll"]);
    watcher.expect("watching exercises/00_intro/hit_counter.rs");
    assert!(
        watcher
            .next_verdict("hit_counter")
            .starts_with("✗ hit_counter")
    );
    wb.solve("00_intro", "hit_counter");
    assert!(
        watcher
            .next_verdict("hit_counter")
            .starts_with("✓ hit_counter"),
        "the save in 00_intro was missed:\n{}",
        watcher.seen().join("\n")
    );
    watcher.expect("send n for the next exercise");
    watcher.send("n");
    watcher.expect("now on lru_cache (exercises/01_caching/lru_cache.rs)");
    assert!(watcher.next_verdict("lru_cache").starts_with("✗ lru_cache"));
    wb.solve("01_caching", "lru_cache");
    assert!(
        watcher.next_verdict("lru_cache").starts_with("✓ lru_cache"),
        "the save in 01_caching was missed after moving on:\n{}",
        watcher.seen().join("\n")
    );
    watcher.expect("send n for the next exercise");
    let (status, _) = watcher.finish();
    assert!(status.success());
}
