//! Running a child process that may misbehave: learner code can loop forever, deadlock, print
//! without end or crash, and a build may become stale because the learner saved again.
//!
//! Every child runs in its own process group, so stopping it stops everything it started (a test
//! binary's threads, a lab's servers, cargo's rustc jobs). Waiting polls at a short interval,
//! which keeps the code simple and portable, and checks three reasons to stop early: the time
//! limit, an output limit, and cancellation by a newer save.

use std::collections::HashSet;
use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Short: the wait for a test binary's exit is part of every save→verdict, and a wake-up per
/// millisecond while a child runs costs nothing measurable.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// How much memory (address space) a test binary or lab may use. Beyond it, allocations fail and
/// the process aborts with "memory allocation ... failed" instead of exhausting the machine.
pub const MEMORY_LIMIT_BYTES: u64 = 4 << 30;

/// Process groups we started and have not reaped yet: on Ctrl-C (or SIGTERM) they are killed
/// before we exit, so no build or runaway exercise outlives sdlings.
static LIVE_GROUPS: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

/// Installs the Ctrl-C / SIGTERM handler that stops every child group, then exits with 130.
pub fn stop_children_on_interrupt() {
    let _ = ctrlc::set_handler(|| {
        stop_all_children();
        // Leave the terminal usable if the watcher had it in raw mode.
        let _ = crossterm::terminal::disable_raw_mode();
        std::process::exit(130);
    });
}

/// Kills every child group still running. For exits that do not wait for the worker threads
/// (Ctrl-C, quitting the watcher mid-check): a cancelled worker would stop its child on its next
/// poll, but the process may be gone by then and the child would run on, orphaned.
pub fn stop_all_children() {
    if let Ok(groups) = LIVE_GROUPS.lock()
        && let Some(groups) = groups.as_ref()
    {
        for &pid in groups {
            kill_process_group(pid);
        }
    }
}

fn track(pid: u32, live: bool) {
    if let Ok(mut groups) = LIVE_GROUPS.lock() {
        let groups = groups.get_or_insert_with(HashSet::new);
        if live {
            groups.insert(pid);
        } else {
            groups.remove(&pid);
        }
    }
}

fn kill_process_group(pid: u32) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}

/// Caps the address space of the command's process, so a runaway allocation fails inside it.
pub fn limit_memory(cmd: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs between fork and exec and calls only setrlimit(2), which is
        // async-signal-safe; it touches no memory shared with the parent.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: MEMORY_LIMIT_BYTES as libc::rlim_t,
                    rlim_max: MEMORY_LIMIT_BYTES as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(not(unix))]
    let _ = cmd;
}

/// Set by whoever wants the current work abandoned (e.g. the watcher, when a newer save arrives).
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(ExitStatus),
    TimedOut,
    /// The child printed more than the output limit and was stopped.
    OutputFlood,
    Cancelled,
}

/// What a finished (or stopped) child left behind.
#[derive(Debug)]
pub struct Finished {
    pub ending: Ending,
    /// stdout and stderr interleaved as they were written, up to the output limit.
    pub output: String,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub time: Duration,
    pub output_bytes: usize,
}

/// Runs `cmd` to completion or until a limit or `cancel` stops it; stdout and stderr are captured
/// together through one pipe so their order is kept.
pub fn run_captured(mut cmd: Command, limits: Limits, cancel: &Cancel) -> io::Result<Finished> {
    let (reader, writer) = io::pipe()?;
    cmd.stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    let started = Instant::now();
    let mut child = Supervised::spawn(&mut cmd)?;
    // Drop our copies of the write end (held inside `cmd`) so EOF arrives when the child exits.
    drop(cmd);
    let flooded = Arc::new(AtomicBool::new(false));
    let collector = collect(reader, limits.output_bytes, flooded.clone());
    let mut ending = child.wait(Some(started + limits.time), cancel, &flooded)?;
    let output = collector.join().unwrap_or_default();
    // A child may print past the limit and exit before the wait loop sees the flag: judge it by
    // what it did, not by which of the two the loop noticed first, so the verdict is repeatable.
    if flooded.load(Ordering::SeqCst) && matches!(ending, Ending::Exited(_)) {
        ending = Ending::OutputFlood;
    }
    Ok(Finished {
        ending,
        output: String::from_utf8_lossy(&output).into_owned(),
    })
}

/// Reads everything from `pipe`, keeping the first `limit` bytes; sets `flooded` past the limit
/// (and keeps draining, so the child is never blocked on a full pipe before it is stopped).
fn collect(
    mut pipe: impl Read + Send + 'static,
    limit: usize,
    flooded: Arc<AtomicBool>,
) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = limit.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    if n > room {
                        flooded.store(true, Ordering::SeqCst);
                    }
                }
            }
        }
        kept
    })
}

/// A child process in its own process group, killed as a group.
pub struct Supervised {
    child: Child,
    own_group: bool,
}

impl Supervised {
    pub fn spawn(cmd: &mut Command) -> io::Result<Supervised> {
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd.spawn()?;
        track(child.id(), true);
        Ok(Supervised {
            child,
            own_group: cfg!(unix),
        })
    }

    /// Spawns `cmd` in our own process group, for a child the user watches in the foreground:
    /// Ctrl-C in the terminal then reaches it as well as us.
    pub fn spawn_in_foreground(cmd: &mut Command) -> io::Result<Supervised> {
        Ok(Supervised {
            child: cmd.spawn()?,
            own_group: false,
        })
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the child to exit, stopping it (and its whole group) at `deadline`, on
    /// `cancel`, or when `stop` is raised.
    pub fn wait(
        &mut self,
        deadline: Option<Instant>,
        cancel: &Cancel,
        stop: &AtomicBool,
    ) -> io::Result<Ending> {
        let ending = loop {
            if let Some(status) = self.child.try_wait()? {
                break Ending::Exited(status);
            }
            if cancel.is_cancelled() {
                break Ending::Cancelled;
            }
            if stop.load(Ordering::SeqCst) {
                break Ending::OutputFlood;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Ending::TimedOut;
            }
            thread::sleep(POLL_INTERVAL);
        };
        // Also after a normal exit: a grandchild left running would hold the output pipe open.
        self.kill_group();
        let _ = self.child.wait();
        track(self.child.id(), false);
        Ok(ending)
    }

    /// Stops the child and, when it has a group of its own, everything it started.
    pub fn kill_group(&mut self) {
        if self.own_group {
            // The group id is the child's pid (process_group(0) above).
            kill_process_group(self.child.id());
        }
        let _ = self.child.kill();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill_group();
            let _ = self.child.wait();
        }
        if self.own_group {
            track(self.child.id(), false);
        }
    }
}

/// A human description of how a process ended abnormally, e.g. "killed by signal 6 (SIGABRT)".
pub fn describe_signal(status: ExitStatus) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        let signal = status.signal()?;
        let name = match signal {
            libc::SIGABRT => "SIGABRT: the process aborted",
            libc::SIGSEGV => "SIGSEGV: invalid memory access",
            libc::SIGBUS => "SIGBUS: invalid memory access",
            libc::SIGILL => "SIGILL: illegal instruction",
            libc::SIGFPE => "SIGFPE: arithmetic error",
            libc::SIGKILL => "SIGKILL: killed, possibly for using too much memory",
            _ => "",
        };
        Some(if name.is_empty() {
            format!("killed by signal {signal}")
        } else {
            format!("killed by signal {signal} ({name})")
        })
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        None
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    const LIMITS: Limits = Limits {
        time: Duration::from_secs(5),
        output_bytes: 1 << 20,
    };

    #[test]
    fn captures_output_and_exit_status() {
        let done =
            run_captured(sh("echo out; echo err >&2; exit 3"), LIMITS, &Cancel::new()).unwrap();
        assert!(matches!(done.ending, Ending::Exited(s) if s.code() == Some(3)));
        assert_eq!(done.output, "out\nerr\n");
    }

    #[test]
    fn a_hanging_child_and_its_children_are_stopped_at_the_time_limit() {
        let limits = Limits {
            time: Duration::from_millis(200),
            ..LIMITS
        };
        // The inner sleep keeps the pipe open: without killing the whole group, we would hang.
        let done = run_captured(sh("sleep 30 & sleep 30"), limits, &Cancel::new()).unwrap();
        assert_eq!(done.ending, Ending::TimedOut);
    }

    #[test]
    fn endless_output_is_cut_off() {
        let limits = Limits {
            output_bytes: 10_000,
            ..LIMITS
        };
        let done = run_captured(sh("yes flood"), limits, &Cancel::new()).unwrap();
        assert_eq!(done.ending, Ending::OutputFlood);
        assert_eq!(done.output.len(), 10_000);
    }

    #[test]
    fn cancel_stops_the_child() {
        let cancel = Cancel::new();
        cancel.cancel();
        let done = run_captured(sh("sleep 30"), LIMITS, &cancel).unwrap();
        assert_eq!(done.ending, Ending::Cancelled);
    }

    #[test]
    fn signals_are_described() {
        let done = run_captured(sh("kill -ABRT $$"), LIMITS, &Cancel::new()).unwrap();
        let Ending::Exited(status) = done.ending else {
            panic!("expected an exit")
        };
        assert!(describe_signal(status).unwrap().contains("SIGABRT"));
    }
}
