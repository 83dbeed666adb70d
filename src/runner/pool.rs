//! Many independent runs spread over the machine's cores. Test binaries and labs are mostly
//! single-threaded or waiting on timers, so running one per core (at least two) keeps a
//! whole-workbook check short without changing any verdict: each run is its own process with its
//! own limits.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

use anyhow::Result;

/// How many runs go at once.
pub fn workers() -> usize {
    thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// `work(index, item, note)` for every item, on [`workers`] threads; results in item order.
/// `note` sends a progress line, which reaches `progress` on the calling thread.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    progress: &mut dyn FnMut(&str),
    work: impl Fn(usize, &T, &dyn Fn(String)) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<R>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    let (tx, rx) = mpsc::channel::<String>();
    thread::scope(|scope| {
        for _ in 0..workers().min(items.len()) {
            let tx = tx.clone();
            let (next, results, work) = (&next, &results, &work);
            scope.spawn(move || {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(n) else { break };
                    let note = |line: String| {
                        let _ = tx.send(line);
                    };
                    let result = work(n, item, &note);
                    results.lock().expect("no worker panics holding it")[n] = Some(result);
                }
            });
        }
        drop(tx);
        // Progress is shown from here: the caller's closure need not be shared between threads.
        for line in rx {
            progress(&line);
        }
    });
    results
        .into_inner()
        .expect("no worker panicked")
        .into_iter()
        .map(|r| r.expect("every item was worked on"))
        .collect()
}
