// Least connections — send the next request where the fewest are in flight.
//
// Round robin assumes every backend is as fast as the others. When one turns slow (a noisy
// neighbour, a GC pause, a cold cache), round robin keeps sending it a quarter of the traffic and
// every one of those requests waits. Least connections uses what the balancer itself sees, the
// requests in flight per backend: a slow backend holds its requests longer, its count climbs,
// and it gets fewer new ones. It adapts without measuring latency at all.
//
// Build `LeastConnections`: `on_start(id)` / `on_finish(id)` count requests in flight, and `pick`
// returns the backend with the fewest. Two decisions, both checked by the tests:
// - Ties go round robin: among the least busy, take the first one *after* the last pick
//   (wrapping; the first pick scans from 0). "Lowest index wins" would send all light traffic,
//   where every count is 0, to backend 0.
// - A finish without a matching start (a double report) saturates at zero. The count must never
//   go negative or wrap around, and a balancer must not crash the proxy over it.
//
// Lab: real HTTP servers on localhost, one slow. Turn SLOW_BACKEND_LATENCY and CONCURRENCY:
// round robin sends the slow backend 25% of the requests, so its p95 and wall time follow it;
// least connections sends it a few percent and finishes far sooner. Part 2: a crashed backend
// *fails fast*, never has a request in flight, and least connections sends it nearly everything.
// That is why it needs health checks (the last exercise of this topic).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sdlings_kit::backend::{self, Backend, Behaviour};
use sdlings_kit::lab::{Table, bar_chart, percent, quantile};

/// Backends are numbered 0..n in the order they were configured.
pub type BackendId = usize;

/// What every balancer in this topic offers. `pick` chooses a backend for the next request, or
/// `None` when no backend can take it. The caller reports `on_start(id)` when it sends a request
/// to the backend it picked, and `on_finish(id)` when the request is over (answered or failed).
pub trait Balancer {
    fn pick(&mut self) -> Option<BackendId>;
    fn on_start(&mut self, _id: BackendId) {}
    fn on_finish(&mut self, _id: BackendId) {}
}

pub struct LeastConnections {
    /// Requests in flight on each backend (index = `BackendId`).
    active: Vec<u64>,
    /// The backend picked last: ties are broken starting right after it.
    last: Option<BackendId>,
}

impl LeastConnections {
    /// Balances over backends `0..backends`, none of them busy.
    pub fn new(backends: usize) -> Self {
        LeastConnections {
            active: vec![0; backends],
            last: None,
        }
    }

    /// Requests in flight on `id`.
    pub fn active(&self, id: BackendId) -> u64 {
        self.active[id]
    }
}

// ---- Your part -------------------------------------------------------------------------------

impl Balancer for LeastConnections {
    /// The backend with the fewest requests in flight. On a tie, the first of the tied backends
    /// after `last` (wrapping around), or from backend 0 if nothing was picked yet. `None` if
    /// there are no backends. Picking does not change any count: `on_start` does.
    fn pick(&mut self) -> Option<BackendId> {
        todo!("the least busy backend, ties broken round robin")
    }

    /// A request started on `id`.
    fn on_start(&mut self, id: BackendId) {
        todo!("count a request in flight on backend {id}")
    }

    /// A request on `id` is over. Never goes below zero.
    fn on_finish(&mut self, id: BackendId) {
        todo!("count a request on backend {id} as finished")
    }
}

// ---- Lab --------------------------------------------------------------------------------------
// Real HTTP/1.1 servers on 127.0.0.1 (sdlings_kit::backend), real requests through your balancer.
// CONCURRENCY clients each send requests back to back (pick, on_start, GET /work, on_finish).

const BACKENDS: usize = 4;
/// Latency of a healthy backend.
const BASE_LATENCY: Duration = Duration::from_millis(2);
/// Backend 1 answers this slowly in part 1. Try 10 ms, 200 ms.
const SLOW_BACKEND_LATENCY: Duration = Duration::from_millis(60);
const SLOW_BACKEND: BackendId = 1;
/// Requests per run, and how many clients send them concurrently. Try CONCURRENCY 4 and 32.
const REQUESTS: usize = 400;
const CONCURRENCY: usize = 16;
/// In part 2, backend 3 crashes when this many requests have been sent.
const CRASH_AFTER: usize = 100;
const CRASHING_BACKEND: BackendId = 3;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// BASELINE FOR COMPARISON: plain round robin over a fixed pool.
struct RoundRobin {
    backends: usize,
    next: usize,
}

impl Balancer for RoundRobin {
    fn pick(&mut self) -> Option<BackendId> {
        let id = self.next % self.backends;
        self.next += 1;
        Some(id)
    }
}

struct Sample {
    /// The request's number, in the order requests were sent.
    seq: usize,
    backend: BackendId,
    latency: Duration,
    ok: bool,
}

struct RunReport {
    samples: Vec<Sample>,
    wall: Duration,
}

/// Sends REQUESTS requests from CONCURRENCY clients through `balancer` to `fleet`. If `crash`
/// is set, that backend crashes when the CRASH_AFTER-th request is about to be sent.
async fn run(
    balancer: Box<dyn Balancer + Send>,
    fleet: Arc<Vec<Backend>>,
    crash: Option<BackendId>,
) -> RunReport {
    let balancer = Arc::new(Mutex::new(balancer));
    let addrs: Arc<Vec<SocketAddr>> = Arc::new(fleet.iter().map(Backend::addr).collect());
    let sent = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (balancer, addrs, sent, fleet) = (
            Arc::clone(&balancer),
            Arc::clone(&addrs),
            Arc::clone(&sent),
            Arc::clone(&fleet),
        );
        clients.spawn(async move {
            let mut samples = Vec::new();
            loop {
                let n = sent.fetch_add(1, Ordering::SeqCst);
                if n >= REQUESTS {
                    return samples;
                }
                if let Some(victim) = crash
                    && n == CRASH_AFTER
                {
                    fleet[victim].crash();
                }
                let id = {
                    let mut b = balancer.lock().expect("not poisoned");
                    let Some(id) = b.pick() else { continue };
                    b.on_start(id);
                    id
                };
                let began = Instant::now();
                let result = backend::get(addrs[id], "/work", CLIENT_TIMEOUT).await;
                let latency = began.elapsed();
                balancer.lock().expect("not poisoned").on_finish(id);
                samples.push(Sample {
                    seq: n,
                    backend: id,
                    latency,
                    ok: matches!(result, Ok(ref r) if r.status == 200),
                });
            }
        });
    }
    let samples = clients.join_all().await.into_iter().flatten().collect();
    RunReport {
        samples,
        wall: started.elapsed(),
    }
}

async fn fleet_with(behaviour_of: impl Fn(BackendId) -> Duration) -> Arc<Vec<Backend>> {
    let fleet = backend::start_fleet(BACKENDS, BASE_LATENCY)
        .await
        .expect("start the backends on 127.0.0.1");
    for (id, b) in fleet.iter().enumerate() {
        b.set_behaviour(Behaviour::Healthy {
            latency: behaviour_of(id),
        });
    }
    Arc::new(fleet)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        println!(
            "Part 1: {BACKENDS} backends on 127.0.0.1, backend {SLOW_BACKEND} answers in {:?} \
             (the others in {:?}); {REQUESTS} requests from {CONCURRENCY} concurrent clients.\n",
            SLOW_BACKEND_LATENCY, BASE_LATENCY
        );
        let slow = |id| {
            if id == SLOW_BACKEND {
                SLOW_BACKEND_LATENCY
            } else {
                BASE_LATENCY
            }
        };
        let mut per_backend = Table::new(&[
            "balancer / backend",
            "requests",
            "errors",
            "p50",
            "p99",
            "served (server count)",
        ]);
        let mut summary = Table::new(&[
            "balancer",
            "requests",
            "to slow backend",
            "mean",
            "p50",
            "p95",
            "p99",
            "wall time",
            "throughput",
        ]);
        let mut bars = Vec::new();
        let runs: [(&str, Box<dyn Balancer + Send>); 2] = [
            (
                "round robin",
                Box::new(RoundRobin {
                    backends: BACKENDS,
                    next: 0,
                }),
            ),
            ("least conns", Box::new(LeastConnections::new(BACKENDS))),
        ];
        for (name, balancer) in runs {
            let fleet = fleet_with(slow).await;
            let report = run(balancer, Arc::clone(&fleet), None).await;
            for (id, server) in fleet.iter().enumerate() {
                let mine: Vec<&Sample> =
                    report.samples.iter().filter(|s| s.backend == id).collect();
                let mut latencies: Vec<Duration> = mine.iter().map(|s| s.latency).collect();
                per_backend.row(&[
                    format!("{name} / {}", server.name()),
                    mine.len().to_string(),
                    mine.iter().filter(|s| !s.ok).count().to_string(),
                    quantile(&mut latencies, 0.5),
                    quantile(&mut latencies, 0.99),
                    server.served().to_string(),
                ]);
                bars.push((format!("{name} / {}", server.name()), mine.len() as f64));
            }
            let mut all: Vec<Duration> = report.samples.iter().map(|s| s.latency).collect();
            let to_slow = report
                .samples
                .iter()
                .filter(|s| s.backend == SLOW_BACKEND)
                .count();
            let mean = all.iter().sum::<Duration>() / all.len().max(1) as u32;
            summary.row(&[
                name.to_string(),
                report.samples.len().to_string(),
                percent(to_slow as u64, report.samples.len() as u64),
                format!("{:.1} ms", mean.as_secs_f64() * 1000.0),
                quantile(&mut all, 0.5),
                quantile(&mut all, 0.95),
                quantile(&mut all, 0.99),
                format!("{:.0} ms", report.wall.as_secs_f64() * 1000.0),
                format!("{:.0} req/s", all.len() as f64 / report.wall.as_secs_f64()),
            ]);
        }
        per_backend.print();
        println!("\nrequests per backend\n{}\n", bar_chart(&bars, 40));
        summary.print();

        println!(
            "\nPart 2: all backends healthy, but backend {CRASHING_BACKEND} crashes after \
             {CRASH_AFTER} requests (connections refused at once: it fails fast).\n"
        );
        let mut crash_table = Table::new(&[
            "balancer",
            "requests",
            "errors",
            "error rate after the crash",
            "after the crash, sent to the dead backend",
        ]);
        let runs: [(&str, Box<dyn Balancer + Send>); 2] = [
            (
                "round robin",
                Box::new(RoundRobin {
                    backends: BACKENDS,
                    next: 0,
                }),
            ),
            ("least conns", Box::new(LeastConnections::new(BACKENDS))),
        ];
        for (name, balancer) in runs {
            let fleet = fleet_with(|_| BASE_LATENCY).await;
            let report = run(balancer, Arc::clone(&fleet), Some(CRASHING_BACKEND)).await;
            let errors = report.samples.iter().filter(|s| !s.ok).count();
            let after: Vec<&Sample> = report
                .samples
                .iter()
                .filter(|s| s.seq >= CRASH_AFTER)
                .collect();
            let errors_after = after.iter().filter(|s| !s.ok).count();
            let to_dead = after
                .iter()
                .filter(|s| s.backend == CRASHING_BACKEND)
                .count();
            crash_table.row(&[
                name.to_string(),
                report.samples.len().to_string(),
                errors.to_string(),
                percent(errors_after as u64, after.len() as u64),
                percent(to_dead as u64, after.len() as u64),
            ]);
        }
        crash_table.print();
        println!(
            "\nA dead backend that refuses connections fails \"instantly\": it never has a request \
             in flight,\nso least connections keeps choosing it. Health checks (or passive \
             outlier detection) must eject it."
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Picks a backend and starts a request on it, as a proxy does.
    fn send(lb: &mut LeastConnections) -> BackendId {
        let id = lb.pick().expect("there are backends");
        lb.on_start(id);
        id
    }

    #[test]
    fn picks_the_backend_with_the_fewest_requests_in_flight() {
        let mut lb = LeastConnections::new(3);
        lb.on_start(0);
        lb.on_start(0);
        lb.on_start(1);
        assert_eq!(
            lb.pick(),
            Some(2),
            "backend 0 has 2 requests in flight, backend 1 has 1, backend 2 has none"
        );
        lb.on_start(2);
        lb.on_start(2);
        assert_eq!(
            lb.pick(),
            Some(1),
            "now 2, 1, 2 in flight: backend 1 is the least busy"
        );
    }

    #[test]
    fn on_start_counts_each_request_and_pick_alone_counts_nothing() {
        let mut lb = LeastConnections::new(2);
        for _ in 0..3 {
            lb.on_start(1);
        }
        assert_eq!(lb.active(1), 3, "three requests started on backend 1");
        lb.pick();
        lb.pick();
        assert_eq!(
            (lb.active(0), lb.active(1)),
            (0, 3),
            "pick only chooses; the caller reports the start with on_start"
        );
    }

    #[test]
    fn a_finished_request_frees_its_slot() {
        let mut lb = LeastConnections::new(2);
        for _ in 0..3 {
            lb.on_start(0);
        }
        lb.on_start(1);
        lb.on_start(1);
        assert_eq!(
            lb.pick(),
            Some(1),
            "3 in flight on backend 0, 2 on backend 1"
        );
        for _ in 0..3 {
            lb.on_finish(0);
        }
        assert_eq!(lb.active(0), 0, "all three requests on backend 0 finished");
        assert_eq!(
            lb.pick(),
            Some(0),
            "backend 0's requests finished: it has 0 in flight against backend 1's 2, so it \
             must be picked (forgetting to decrement makes a backend look busy forever)"
        );
    }

    #[test]
    fn ties_rotate_so_light_traffic_spreads_over_every_backend() {
        let mut lb = LeastConnections::new(3);
        let mut sequence = Vec::new();
        for _ in 0..6 {
            let id = send(&mut lb);
            lb.on_finish(id);
            sequence.push(id);
        }
        assert_eq!(
            sequence,
            vec![0, 1, 2, 0, 1, 2],
            "one request at a time: every backend is always at 0 in flight, so every pick is a \
             tie; ties go to the next backend after the last pick, not always to backend 0"
        );
    }

    #[test]
    fn a_tie_goes_to_the_first_tied_backend_after_the_last_pick() {
        let mut lb = LeastConnections::new(4);
        lb.on_start(0);
        lb.on_start(2);
        // In flight: [1, 0, 1, 0].
        assert_eq!(
            send(&mut lb),
            1,
            "first pick: the scan starts at backend 0; backends 1 and 3 tie at 0, 1 comes first"
        );
        // [1, 1, 1, 0]
        assert_eq!(
            send(&mut lb),
            3,
            "backend 3 is the only one with 0 in flight"
        );
        // [1, 1, 1, 1]: a four-way tie, scanned from after backend 3, wrapping around.
        assert_eq!(
            send(&mut lb),
            0,
            "all tie at 1 and the last pick was backend 3: the scan wraps around to backend 0"
        );
        // [2, 1, 1, 1]
        assert_eq!(
            send(&mut lb),
            1,
            "backends 1, 2, 3 tie at 1; the last pick was 0, so 1 is the first after it"
        );
        // [2, 2, 1, 1]
        assert_eq!(send(&mut lb), 2);
        assert_eq!(send(&mut lb), 3);
        assert_eq!(
            (0..4).map(|id| lb.active(id)).collect::<Vec<_>>(),
            vec![2, 2, 2, 2]
        );
    }

    #[test]
    fn a_finish_without_a_start_saturates_at_zero() {
        let mut lb = LeastConnections::new(2);
        lb.on_start(1);
        lb.on_finish(1);
        lb.on_finish(1); // reported twice by mistake
        assert_eq!(
            lb.active(1),
            0,
            "a double finish must leave the count at zero, not below (and not wrapped around)"
        );
        let mut counts = [0u32; 2];
        for _ in 0..10 {
            let id = send(&mut lb);
            counts[id] += 1;
        }
        assert_eq!(
            counts,
            [5, 5],
            "after the double finish both backends must share new requests equally; a count \
             of -1 would make backend 1 look the least busy for ever"
        );
    }

    #[test]
    fn no_backends_means_none() {
        let mut lb = LeastConnections::new(0);
        assert_eq!(lb.pick(), None);
    }

    #[test]
    fn a_slow_backend_piles_up_requests_and_gets_fewer_new_ones() {
        // A tick-by-tick simulation: 4 requests arrive every tick; backends 0 and 1 answer in
        // 1 tick, backend 2 (slow) in 10. Round robin would send it a third of everything.
        const SERVICE: [u32; 3] = [1, 1, 10];
        let mut lb = LeastConnections::new(3);
        let mut in_flight: Vec<(BackendId, u32)> = Vec::new(); // (backend, finishes at tick)
        let mut sent = [0u32; 3];
        let mut peak = [0u64; 3];
        for tick in 0..500 {
            in_flight.retain(|&(id, done)| {
                if done <= tick {
                    lb.on_finish(id);
                    false
                } else {
                    true
                }
            });
            for _ in 0..4 {
                let id = send(&mut lb);
                sent[id] += 1;
                peak[id] = peak[id].max(lb.active(id));
                in_flight.push((id, tick + SERVICE[id]));
            }
        }
        let total: u32 = sent.iter().sum();
        let slow_share = f64::from(sent[2]) / f64::from(total);
        assert!(
            slow_share < 0.12,
            "the slow backend got {:.0}% of the requests: with least connections its requests \
             pile up, its count climbs, and it should get well under a third (sent: {sent:?})",
            slow_share * 100.0
        );
        assert!(
            sent[2] > 0,
            "the slow backend still gets some traffic, just less"
        );
        assert!(
            peak.iter().all(|&p| p <= 8),
            "no backend should pile up more than a handful of requests, got peaks {peak:?}"
        );
    }
}
