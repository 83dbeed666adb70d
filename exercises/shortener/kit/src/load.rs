//! An open-loop load generator: requests leave on a fixed schedule (`rate` per second), whatever
//! the previous ones are doing, and each latency is measured from the request's *scheduled* time.
//!
//! A closed loop (each client waits for its answer before sending the next) slows down with the
//! server and so never sends the requests that would have waited: a stall of one second counts
//! as one slow request instead of the thousand queued behind it (Gil Tene's "coordinated
//! omission"). Real users do not wait for each other; an open loop does not either.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

/// What a load run saw.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Every request's latency from its scheduled time, sorted.
    pub latencies: Vec<Duration>,
    /// Requests whose closure returned `false` (an error or an unexpected status).
    pub errors: u64,
    /// From the first scheduled send to the last answer.
    pub elapsed: Duration,
}

impl LoadReport {
    pub fn sent(&self) -> u64 {
        self.latencies.len() as u64
    }

    /// The median latency (nearest rank).
    pub fn p50(&self) -> Duration {
        self.rank(0.50)
    }

    /// The 99th percentile latency (nearest rank).
    pub fn p99(&self) -> Duration {
        self.rank(0.99)
    }

    pub fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }

    fn rank(&self, q: f64) -> Duration {
        let n = self.latencies.len();
        if n == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.latencies[rank - 1]
    }
}

/// Sends `rate × duration` requests, request `i` at `start + i / rate`: `request(i)` makes the
/// request's future, which runs as its own task and returns whether it succeeded.
pub async fn open_loop<F, Fut>(rate: f64, duration: Duration, mut request: F) -> LoadReport
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    assert!(rate > 0.0, "a rate of requests per second above zero");
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..total {
        let scheduled = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(scheduled).await;
        let fut = request(i);
        tasks.spawn(async move {
            let ok = fut.await;
            (scheduled.elapsed(), ok)
        });
    }
    let mut latencies = Vec::with_capacity(total as usize);
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        let (latency, ok) = done.expect("a request task panicked");
        latencies.push(latency);
        errors += u64::from(!ok);
    }
    latencies.sort_unstable();
    LoadReport {
        latencies,
        errors,
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn latency_counts_from_the_schedule_not_from_the_send() {
        // A server that answers one request at a time, 20 ms each: requests every 10 ms queue up,
        // and the open loop sees the queue grow.
        let server = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        let report = open_loop(100.0, Duration::from_millis(100), |_| {
            let server = server.clone();
            async move {
                let _one_at_a_time = server.lock().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                true
            }
        })
        .await;
        assert_eq!(report.sent(), 10);
        assert_eq!(report.errors, 0);
        assert_eq!(report.latencies[0], Duration::from_millis(20));
        assert_eq!(
            report.max(),
            Duration::from_millis(110),
            "the 10th waited for 9 before it"
        );
        assert_eq!(report.p50(), Duration::from_millis(60));
    }
}
