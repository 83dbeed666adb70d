// Capacity estimates: from "100 million daily users" to servers, terabytes and gigabits
//
// Before building anything, engineers size it on the back of an envelope: requests a second at
// peak, requests in flight, disk a year, bandwidth, servers. Build `estimate`: stated assumptions
// in, estimates with their units out, and the small formulas it is made of. What must hold: a day
// is exactly 86 400 s (the "about 10^5" shortcut is for mental arithmetic) and a year 365 days;
// connections and servers are sized for the PEAK second, while the disk fills at the AVERAGE
// write rate; a server planned at 60% utilisation takes only 60% of its capacity, so a lower
// target means MORE servers; sizes are in bytes, bandwidth in bits per second, and prefixes are
// decimal (1 kB = 1000 B, 1 Gbps = 10^9 bit/s), as disks, network links and price sheets use.
//
// Lab: an estimate sheet for a URL shortener. Turn DAU, READS_PER_WRITE and PAYLOAD_BYTES:
// servers follow the peak read traffic, storage follows the writes and the payload, and a 10×
// jump in users is a 10× jump in everything.

use std::time::Duration;

use sdlings_kit::latency::{self, SheetFigures};

/// What you assume about the service. Every estimate is only as good as these: write them down.
#[derive(Debug, Clone, PartialEq)]
pub struct Assumptions {
    pub daily_active_users: u64,
    /// Reads and writes together, per user per day.
    pub requests_per_user_per_day: f64,
    /// How many reads for each write (100.0 means 100 reads to 1 write). 0.0: write-only.
    pub reads_per_write: f64,
    /// Busiest second of the day ÷ average second (2 to 10 for consumer traffic).
    pub peak_to_average: f64,
    /// New data stored by one write, before replication.
    pub bytes_per_write: u64,
    /// Response body sent back by one read.
    pub bytes_per_read: u64,
    /// Copies of each byte kept (3 is typical for a replicated database or object store).
    pub replication_factor: u32,
    /// Time one request spends inside the service (mean).
    pub latency: Duration,
    /// Requests a second one server handles at 100% CPU (from a load test).
    pub server_capacity_qps: f64,
    /// Fraction of that capacity you plan to use at peak, in (0, 1]: headroom for a server
    /// failing, a deploy, a burst, and to keep queueing delay low.
    pub target_utilisation: f64,
}

/// What the assumptions imply. Rates are per second.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimates {
    pub average_qps: f64,
    pub peak_qps: f64,
    pub average_write_qps: f64,
    pub peak_write_qps: f64,
    pub peak_read_qps: f64,
    /// Requests inside the service at once at peak (Little's law): connections, threads or
    /// tasks the fleet must hold.
    pub peak_in_flight: f64,
    /// Disk filled in a year, replicas included.
    pub storage_bytes_per_year: f64,
    /// Response traffic at peak, in bits per second.
    pub peak_egress_bits_per_sec: f64,
    pub servers_needed: u64,
}

// ---- Your part -------------------------------------------------------------------------------

// TODO: name the constants you need (seconds in a day, days in a year).

/// Average requests per second over a day.
pub fn average_qps(daily_active_users: u64, requests_per_user_per_day: f64) -> f64 {
    todo!("{daily_active_users} users × {requests_per_user_per_day} a day, per second")
}

/// Little's law: the number of requests in the system = arrival rate × time each spends in it.
pub fn in_flight(arrival_rate_qps: f64, latency: Duration) -> f64 {
    todo!("Little's law for {arrival_rate_qps} req/s, {latency:?} each")
}

/// Bytes written to disk in a 365-day year, counting every replica.
pub fn storage_bytes_per_year(
    average_write_qps: f64,
    bytes_per_write: u64,
    replication_factor: u32,
) -> f64 {
    todo!("{average_write_qps} writes/s × {bytes_per_write} B × {replication_factor} copies")
}

/// Servers needed so that at `peak_qps` each runs at `target_utilisation` of its capacity:
/// rounded up (half a server is a whole server). Panics unless 0 < target_utilisation <= 1 and
/// the capacity is positive.
pub fn servers_needed(peak_qps: f64, server_capacity_qps: f64, target_utilisation: f64) -> u64 {
    todo!("{peak_qps} / ({server_capacity_qps} × {target_utilisation})")
}

/// `value` with one decimal and the largest decimal prefix that keeps it at 1 or more:
/// `si(36.5e12, "B")` is "36.5 TB", `si(2.5e9, "bps")` is "2.5 Gbps", `si(999.0, "B")` is
/// "999.0 B". Prefixes go up to E (10^18); each step is 1000, never 1024.
pub fn si(value: f64, unit: &str) -> String {
    todo!("{value} {unit} with a decimal prefix")
}

/// Every estimate from the assumptions.
pub fn estimate(a: &Assumptions) -> Estimates {
    todo!("estimates for {} daily users", a.daily_active_users)
}

// ---- Lab: a URL shortener ---------------------------------------------------------------------

const DAU: u64 = 100_000_000;
/// Short links followed plus links created, per user per day.
const REQUESTS_PER_USER_PER_DAY: f64 = 5.0;
/// Links are created once and followed many times.
const READS_PER_WRITE: f64 = 100.0;
/// One stored link: the long URL, the short code, owner, timestamps.
const PAYLOAD_BYTES: u64 = 500;
/// One redirect response (a 301 with its headers).
const RESPONSE_BYTES: u64 = 400;
const PEAK_TO_AVERAGE: f64 = 3.0;
const REPLICATION: u32 = 3;
const LATENCY: Duration = Duration::from_millis(15);
/// One server's capacity from a load test, and the share of it to plan for at peak.
const SERVER_CAPACITY_QPS: f64 = 4_000.0;
const TARGET_UTILISATION: f64 = 0.6;

fn assumptions(dau: u64) -> Assumptions {
    Assumptions {
        daily_active_users: dau,
        requests_per_user_per_day: REQUESTS_PER_USER_PER_DAY,
        reads_per_write: READS_PER_WRITE,
        peak_to_average: PEAK_TO_AVERAGE,
        bytes_per_write: PAYLOAD_BYTES,
        bytes_per_read: RESPONSE_BYTES,
        replication_factor: REPLICATION,
        latency: LATENCY,
        server_capacity_qps: SERVER_CAPACITY_QPS,
        target_utilisation: TARGET_UTILISATION,
    }
}

/// The sheet for `dau` daily users, with the other assumptions above.
fn sheet(dau: u64) -> SheetFigures {
    let e = estimate(&assumptions(dau));
    SheetFigures {
        daily_active_users: dau,
        average_qps: e.average_qps,
        peak_qps: e.peak_qps,
        peak_write_qps: e.peak_write_qps,
        peak_read_qps: e.peak_read_qps,
        peak_in_flight: e.peak_in_flight,
        storage_per_year: si(e.storage_bytes_per_year, "B"),
        egress_at_peak: si(e.peak_egress_bits_per_sec, "bps"),
        servers: e.servers_needed,
    }
}

fn main() {
    println!(
        "URL shortener: {} daily users × {REQUESTS_PER_USER_PER_DAY} requests, {READS_PER_WRITE} \
         reads per write, {PAYLOAD_BYTES} B per link, {RESPONSE_BYTES} B per redirect, peak \
         {PEAK_TO_AVERAGE}× average, {REPLICATION} replicas, {LATENCY:?} per request, \
         {SERVER_CAPACITY_QPS} req/s per server planned at {:.0}%\n",
        latency::millions(DAU),
        TARGET_UTILISATION * 100.0
    );
    latency::print_estimate_sheet(&sheet(DAU));
    latency::print_growth(&[1, 10, 100].map(|factor| sheet(DAU / 10 * factor)));
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    fn assert_close(actual: f64, expected: f64, what: &str) {
        assert!(
            (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
            "{what}: expected {expected}, got {actual}"
        );
    }

    /// 8.64 M users × 10 requests a day is exactly 1000 requests a second on average.
    fn example() -> Assumptions {
        Assumptions {
            daily_active_users: 8_640_000,
            requests_per_user_per_day: 10.0,
            reads_per_write: 9.0,
            peak_to_average: 3.0,
            bytes_per_write: 500,
            bytes_per_read: 2_000,
            replication_factor: 3,
            latency: Duration::from_millis(20),
            server_capacity_qps: 400.0,
            target_utilisation: 0.6,
        }
    }

    #[test]
    fn average_qps_spreads_a_days_requests_over_86_400_seconds() {
        for (users, per_user, expected) in [
            (86_400, 1.0, 1.0),
            (1_000_000, 50.0, 578.703_703_703_703_7),
            (0, 50.0, 0.0),
        ] {
            let why = format!("{users} users × {per_user} a day ÷ 86 400 s (24 × 60 × 60)");
            assert_close(average_qps(users, per_user), expected, &why);
        }
    }

    #[test]
    fn littles_law_multiplies_arrival_rate_by_time_in_the_system() {
        for (rate, latency, expected) in [
            (1_000.0, Duration::from_millis(50), 50.0),
            (200.0, Duration::from_secs(2), 400.0),
            (10_000.0, Duration::from_micros(250), 2.5),
        ] {
            let why = format!(
                "{rate} req/s, each inside for {latency:?}: {expected} in flight. Convert the \
                 latency to seconds, the unit of the rate"
            );
            assert_close(in_flight(rate, latency), expected, &why);
        }
    }

    #[test]
    fn storage_per_year_counts_365_days_and_every_replica() {
        assert_close(
            storage_bytes_per_year(10.0, 1_000, 1),
            315_360_000_000.0,
            "10 writes/s × 1000 B × 86 400 s × 365 days = 315.36 GB",
        );
        assert_close(
            storage_bytes_per_year(10.0, 1_000, 3),
            946_080_000_000.0,
            "three replicas store three copies of each byte",
        );
    }

    #[test]
    fn servers_divide_the_peak_by_the_usable_share_of_each_server_and_round_up() {
        for (peak, capacity, utilisation, expected) in [
            (10_000.0, 1_000.0, 0.7, 15),
            (3_000.0, 400.0, 0.6, 13),
            (5_000.0, 1_000.0, 1.0, 5),
            (1.0, 1_000.0, 0.5, 1),
            (0.0, 1_000.0, 0.5, 0),
        ] {
            assert_eq!(
                servers_needed(peak, capacity, utilisation),
                expected,
                "{peak} req/s, each server taking {utilisation} × {capacity} req/s: {expected} \
                 servers, rounded up (a part of a server is a whole server, a whole number is \
                 not rounded up). Multiplying by the utilisation instead of dividing by it \
                 plans to run each server ABOVE capacity"
            );
        }
    }

    #[test]
    fn si_uses_decimal_prefixes_stepping_by_1000() {
        for (value, unit, expected) in [
            (0.0, "B", "0.0 B"),
            (999.0, "B", "999.0 B"),
            (1_500.0, "B", "1.5 kB"),
            (1_000_000.0, "B", "1.0 MB"),
            (36.5e12, "B", "36.5 TB"),
            (2.5e9, "bps", "2.5 Gbps"),
            (43.2e6, "bps", "43.2 Mbps"),
            (7.0e15, "B", "7.0 PB"),
            (5.0e18, "B", "5.0 EB"),
            (2.0e21, "B", "2000.0 EB"),
        ] {
            assert_eq!(
                si(value, unit),
                expected,
                "si({value}, {unit:?}): decimal prefixes, 1 k = 1000 (1024 is for RAM, KiB)"
            );
        }
    }

    #[test]
    fn estimate_of_a_worked_example() {
        let e = estimate(&example());
        for (got, expected, why) in [
            (e.average_qps, 1_000.0, "8.64 M users × 10 ÷ 86 400"),
            (e.peak_qps, 3_000.0, "peak = average × 3"),
            (e.average_write_qps, 100.0, "9 reads per write: 1 in 10"),
            (e.peak_write_qps, 300.0, "writes at peak"),
            (e.peak_read_qps, 2_700.0, "reads at peak"),
            (e.peak_in_flight, 60.0, "3000 req/s × 0.02 s"),
            (
                e.storage_bytes_per_year,
                4.7304e12,
                "100 writes/s × 500 B × 3 replicas × 31 536 000 s",
            ),
            (
                e.peak_egress_bits_per_sec,
                43.2e6,
                "2700 reads/s × 2000 B × 8 bits = 43.2 Mbps",
            ),
        ] {
            assert_close(got, expected, why);
        }
        assert_eq!(e.servers_needed, 13, "3000 / (400 × 0.6) = 12.5 → 13");
    }

    #[test]
    fn the_read_write_ratio_splits_the_traffic() {
        // 1000 requests a second on average, 3000 at peak.
        for (reads_per_write, average_writes) in [(0.0, 1_000.0), (1.0, 500.0), (99.0, 10.0)] {
            let e = estimate(&Assumptions {
                reads_per_write,
                ..example()
            });
            let why = format!(
                "{reads_per_write} reads per write: 1 request in {} is a write (0: write-only)",
                reads_per_write + 1.0
            );
            assert_close(e.average_write_qps, average_writes, &why);
            assert_close(e.peak_write_qps, 3.0 * average_writes, &why);
            assert_close(e.peak_read_qps, 3_000.0 - 3.0 * average_writes, &why);
        }
    }

    #[test]
    fn egress_is_in_bits_per_second() {
        let e = estimate(&Assumptions {
            bytes_per_read: 125_000,
            ..example()
        });
        assert_close(
            e.peak_egress_bits_per_sec,
            2.7e9,
            "2700 reads/s × 125 kB = 337.5 MB/s = 2.7 Gbps: network links are sold in bits",
        );
        assert_eq!(si(e.peak_egress_bits_per_sec, "bps"), "2.7 Gbps");
    }

    #[test]
    #[should_panic]
    fn a_target_utilisation_of_zero_is_a_bug_and_panics() {
        // Planning to use none of each server would need infinitely many servers.
        servers_needed(1_000.0, 400.0, 0.0);
    }

    #[test]
    #[should_panic]
    fn a_target_utilisation_above_one_is_a_bug_and_panics() {
        // 120% of a server's capacity is a plan to overload every server.
        servers_needed(1_000.0, 400.0, 1.2);
    }

    #[test]
    #[should_panic]
    fn a_server_that_handles_nothing_is_a_bug_and_panics() {
        servers_needed(1_000.0, 0.0, 0.5);
    }

    #[test]
    fn every_estimate_follows_from_the_assumptions_for_any_service() {
        sdlings_kit::property::for_seeds(300, |rng| {
            let a = Assumptions {
                daily_active_users: rng.random_range(0..2_000_000_000),
                requests_per_user_per_day: rng.random_range(0.1..200.0),
                reads_per_write: [0.0, 1.0, rng.random_range(0.0..1_000.0)][rng.random_range(0..3)],
                peak_to_average: rng.random_range(1.0..10.0),
                bytes_per_write: rng.random_range(1..5_000_000),
                bytes_per_read: rng.random_range(1..5_000_000),
                replication_factor: rng.random_range(1..=5),
                latency: Duration::from_micros(rng.random_range(1..5_000_000)),
                server_capacity_qps: rng.random_range(10.0..100_000.0),
                target_utilisation: [1.0, rng.random_range(0.05..1.0)][rng.random_range(0..2)],
            };
            let e = estimate(&a);
            let per_day = a.daily_active_users as f64 * a.requests_per_user_per_day;
            let replicas = f64::from(a.replication_factor);
            let year = e.average_write_qps * a.bytes_per_write as f64 * replicas * 86_400.0 * 365.0;
            for (got, expected, why) in [
                (
                    e.average_qps,
                    per_day / 86_400.0,
                    "average QPS = requests a day ÷ 86 400 s",
                ),
                (
                    e.peak_qps,
                    e.average_qps * a.peak_to_average,
                    "peak = average × factor",
                ),
                (
                    e.peak_write_qps * (1.0 + a.reads_per_write),
                    e.peak_qps,
                    "with r reads per write, one request in r + 1 is a write",
                ),
                (
                    e.peak_write_qps + e.peak_read_qps,
                    e.peak_qps,
                    "reads + writes = all requests",
                ),
                (
                    e.average_write_qps * a.peak_to_average,
                    e.peak_write_qps,
                    "writes peak by the same factor",
                ),
                (
                    e.peak_in_flight,
                    e.peak_qps * a.latency.as_secs_f64(),
                    "Little's law at the PEAK rate (the busiest second needs the most \
                     connections), with the latency in seconds",
                ),
                (
                    e.storage_bytes_per_year,
                    year,
                    "365 days of AVERAGE writes × bytes × replicas: the peak factor changes how \
                     fast you must write, not how much a day brings, so the disk fills at the \
                     average rate",
                ),
                (
                    e.peak_egress_bits_per_sec,
                    e.peak_read_qps * a.bytes_per_read as f64 * 8.0,
                    "egress: peak reads × response bytes × 8 bits",
                ),
            ] {
                assert_close(got, expected, &format!("{why}; {a:?}"));
            }
            let usable = a.server_capacity_qps * a.target_utilisation;
            let servers = e.servers_needed as f64;
            assert!(
                servers * usable >= e.peak_qps * (1.0 - 1e-9)
                    && (servers - 1.0) * usable < e.peak_qps * (1.0 + 1e-9),
                "{servers} servers for a peak of {} req/s at {} req/s × {} utilisation: the \
                 fewest servers whose usable capacity covers the PEAK (sized for the average, \
                 the fleet falls over every evening)",
                e.peak_qps,
                a.server_capacity_qps,
                a.target_utilisation
            );
        });
    }
}
