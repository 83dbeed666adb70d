//! Time as a dependency.
//!
//! Components that expire, refill or back off must not call `Instant::now()` directly: their tests
//! would need real sleeps and would be slow and flaky. Instead they take a [`Clock`]. Production
//! code passes a [`SystemClock`]; tests pass a [`ManualClock`] and move time by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock: `now()` is the time elapsed since the clock's own epoch, and never goes back.
pub trait Clock: Send + Sync {
    fn now(&self) -> Duration;
}

/// Real time, measured from the moment the clock was created.
#[derive(Debug, Clone)]
pub struct SystemClock {
    epoch: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock {
            epoch: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
}

/// A clock that only moves when told to. Clones share the same time, so a test can keep one
/// handle and give another to the component under test.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.nanos
            .fetch_add(duration_to_nanos(by), Ordering::SeqCst);
    }

    /// Sets the reading to `to`. Panics if that would move time backwards: a monotonic clock
    /// never does, and a test that tries has a bug.
    pub fn set(&self, to: Duration) {
        let to = duration_to_nanos(to);
        let before = self.nanos.swap(to, Ordering::SeqCst);
        assert!(
            to >= before,
            "ManualClock::set would move time backwards ({before} ns -> {to} ns)"
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

fn duration_to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).expect("a ManualClock covers about 584 years; that is enough")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let clock = ManualClock::new();
        let handle = clock.clone();
        assert_eq!(clock.now(), Duration::ZERO);
        handle.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), Duration::from_millis(1500));
        handle.set(Duration::from_secs(2));
        assert_eq!(clock.now(), Duration::from_secs(2));
    }

    #[test]
    #[should_panic(expected = "backwards")]
    fn manual_clock_refuses_to_go_backwards() {
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(5));
        clock.set(Duration::from_secs(1));
    }

    #[test]
    fn system_clock_is_monotonic() {
        let clock = SystemClock::new();
        let a = clock.now();
        let b = clock.now();
        assert!(b >= a);
    }
}
