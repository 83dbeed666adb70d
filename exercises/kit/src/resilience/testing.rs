use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Runs `body` on a fresh single-threaded runtime with tokio's clock paused (for property
/// checks that run many async cases inside one `#[test]`).
pub fn paused(body: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime")
        .block_on(body)
}

/// Watches a piece of work: whether it was ever polled (started), whether it ran to the end,
/// and whether it was dropped (cancelled, or finished and cleaned up).
#[derive(Default)]
pub struct Watch {
    started: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
    dropped: Arc<AtomicBool>,
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Watch {
    /// `work`, watched.
    pub fn work<F>(&self, work: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
    {
        // Created outside the async block, so dropping the future unpolled drops it too.
        let guard = SetOnDrop(Arc::clone(&self.dropped));
        let (started, finished) = (Arc::clone(&self.started), Arc::clone(&self.finished));
        async move {
            let _guard = guard;
            started.store(true, Ordering::SeqCst);
            let output = work.await;
            finished.store(true, Ordering::SeqCst);
            output
        }
    }

    pub fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    pub fn dropped(&self) -> bool {
        self.dropped.load(Ordering::SeqCst)
    }
}

/// A fake dependency whose calls run until the test releases them, one by one (first come,
/// first released). It counts the calls inside it at once, independently of the code under
/// test, and a call that is cancelled leaves it.
pub struct Gated {
    started: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
    gate: Semaphore,
}

/// Counts a call out of `running` however it ends (the test may cancel it).
struct Leaving<'a>(&'a AtomicUsize);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gated {
    pub fn new() -> Arc<Self> {
        Arc::new(Gated {
            started: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            gate: Semaphore::new(0),
        })
    }

    /// One call: waits to be released, then answers `id`.
    pub async fn call(&self, id: usize) -> usize {
        self.started.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let _leaving = Leaving(&self.running);
        self.gate.acquire().await.expect("never closed").forget();
        id
    }

    /// Lets `n` running calls finish.
    pub fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }

    /// Calls that ever started.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Calls inside right now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// The most calls that were ever inside at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// Fake replicas: replica i answers `script[i]` after its latency. Records every call (which
/// replica, when) and whether each attempt completed or was dropped half-way.
#[derive(Clone)]
pub struct Replicas {
    script: Arc<Vec<(Duration, Result<&'static str, &'static str>)>>,
    calls: Arc<Mutex<Vec<(usize, Duration)>>>,
    completed: Arc<AtomicUsize>,
    cancelled: Arc<AtomicUsize>,
    epoch: Instant,
}

/// Counts an attempt as cancelled if it is dropped before it finishes.
struct Attempt {
    done: bool,
    completed: Arc<AtomicUsize>,
    cancelled: Arc<AtomicUsize>,
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let counter = if self.done {
            &self.completed
        } else {
            &self.cancelled
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

impl Replicas {
    pub fn new(script: &[(u64, Result<&'static str, &'static str>)]) -> Self {
        Replicas {
            script: Arc::new(
                script
                    .iter()
                    .map(|&(l, r)| (Duration::from_millis(l), r))
                    .collect(),
            ),
            calls: Arc::default(),
            completed: Arc::default(),
            cancelled: Arc::default(),
            epoch: Instant::now(),
        }
    }

    /// Replicas scripted as (latency ms, succeeds): replica i answers `Ok("r{i}")` or
    /// `Err("r{i} is down")` (at most 8 replicas).
    pub fn scripted(script: &[(u64, bool)]) -> Self {
        const UP: [&str; 8] = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"];
        const DOWN: [&str; 8] = [
            "r0 is down",
            "r1 is down",
            "r2 is down",
            "r3 is down",
            "r4 is down",
            "r5 is down",
            "r6 is down",
            "r7 is down",
        ];
        let script: Vec<_> = (script.iter().enumerate())
            .map(|(i, &(latency, up))| (latency, if up { Ok(UP[i]) } else { Err(DOWN[i]) }))
            .collect();
        Replicas::new(&script)
    }

    /// What replica `i` answers.
    pub fn answer(&self, i: usize) -> Result<&'static str, &'static str> {
        self.script[i].1
    }

    pub fn len(&self) -> usize {
        self.script.len()
    }

    pub fn is_empty(&self) -> bool {
        self.script.is_empty()
    }

    /// Attempts that ran to the end.
    pub fn completed(&self) -> usize {
        self.completed.load(Ordering::SeqCst)
    }

    /// Attempts dropped before the end.
    pub fn cancelled(&self) -> usize {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Sends the request to replica `i`.
    pub fn call(
        &self,
        i: usize,
    ) -> impl Future<Output = Result<&'static str, &'static str>> + Send + 'static {
        self.calls.lock().unwrap().push((i, self.epoch.elapsed()));
        let (latency, answer) = self.script[i];
        let attempt = Attempt {
            done: false,
            completed: Arc::clone(&self.completed),
            cancelled: Arc::clone(&self.cancelled),
        };
        async move {
            let mut attempt = attempt; // the whole guard lives in the future
            // Simulated latency on tokio's paused clock: deterministic, not synchronisation.
            tokio::time::sleep(latency).await;
            attempt.done = true;
            answer
        }
    }

    /// Every call so far: (replica, ms since the test began).
    pub fn calls(&self) -> Vec<(usize, u128)> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|&(i, at)| (i, at.as_millis()))
            .collect()
    }
}

/// A fake dependency for timeout tests, on tokio's paused clock: it answers `Ok(at)` after `at`
/// ms, fails with `Err("refused")` after `at` ms, or hangs (it would answer after a day: never,
/// at the scale of a test, and a caller that waits for it anyway fails instead of hanging).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fake {
    Answers(u64),
    Fails(u64),
    Hangs,
}

impl Fake {
    /// A random fake that often ends right at a boundary: at `around - 1`, `around` or
    /// `around + 1` ms, else anywhere in `0..=around + 30` ms; 1 in 10 hangs, 2 in 10 fail.
    pub fn random(rng: &mut rand::rngs::StdRng, around: u64) -> Fake {
        use rand::RngExt;
        let at = match rng.random_range(0..4) {
            0 => around.saturating_sub(1),
            1 => around,
            2 => around + 1,
            _ => rng.random_range(0..=around + 30),
        };
        match rng.random_range(0..10) {
            0 => Fake::Hangs,
            1 | 2 => Fake::Fails(at),
            _ => Fake::Answers(at),
        }
    }

    /// When it ends, if ever (ms after it is first polled).
    pub fn ends(self) -> Option<u64> {
        match self {
            Fake::Answers(at) | Fake::Fails(at) => Some(at),
            Fake::Hangs => None,
        }
    }

    /// What the call gives when it ends.
    pub fn outcome(self) -> Result<u64, &'static str> {
        match self {
            Fake::Answers(at) => Ok(at),
            Fake::Fails(_) => Err("refused"),
            Fake::Hangs => Err("answered after a day"),
        }
    }

    /// The call: nothing happens until it is first polled.
    pub async fn call(self) -> Result<u64, &'static str> {
        // Simulated latency on tokio's paused clock: deterministic, not synchronisation.
        let day = Duration::from_secs(24 * 3600);
        tokio::time::sleep(self.ends().map_or(day, Duration::from_millis)).await;
        self.outcome()
    }
}
