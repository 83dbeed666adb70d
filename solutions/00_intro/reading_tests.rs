// Reading a failing test: availability arithmetic, or "how many nines?"
//
// From here on, the specification is in the tests. The doc comments below are one line on
// purpose: to find out what to build, read what the watcher shows for the first failing test.
// Its *name* is a sentence saying what must hold (`two_three_nines_services_in_series_...`), and
// its *message* says what was expected, what your code returned, and why. A test marked
// `#[should_panic(expected = "...")]` passes only if your code panics with that text. Scroll
// down to `mod tests` whenever the message alone is not enough: the inputs are right there.
//
// The topic: an SLO of "99.9% available" is an error budget. Over a 30-day month it allows 43
// minutes of downtime; over a year, under 9 hours. And a request that needs several services
// succeeds only if *all* of them are up, so availabilities in series multiply: ten dependencies
// at 99.9% each leave you at about 99%. Redundancy works the other way: a request to a group
// of replicas fails only if *every* replica is down.
//
// Lab knobs: `DEPENDENCY_AVAILABILITY`, `MAX_DEPENDENCIES` and `REPLICAS`. Add dependencies and
// watch the monthly downtime grow; add a replica to each and watch most of it disappear.

use std::time::Duration;

use sdlings_kit::lab::{self, Table};

// ---------------------------------------------------------------------------------------------
// Your part. Availabilities are percentages, as on a status page: 99.9 means "three nines".
// ---------------------------------------------------------------------------------------------

/// The downtime an availability target allows over a period.
pub fn allowed_downtime(availability_percent: f64, period: Duration) -> Duration {
    assert!(
        (0.0..=100.0).contains(&availability_percent),
        "availability must be between 0 and 100 percent, got {availability_percent}"
    );
    // The unavailable share of the period. `mul_f64` keeps the sub-second part that whole-second
    // arithmetic would lose (four nines of a week is 60.48 s, not 60 s).
    period.mul_f64((100.0 - availability_percent) / 100.0)
}

/// The availability of a request that needs every one of these services.
pub fn serial_availability(availabilities_percent: &[f64]) -> f64 {
    // All must be up at once: the probabilities (as fractions) multiply. With no dependencies
    // the product is empty, i.e. 1: nothing can drag the request down.
    let all_up: f64 = availabilities_percent.iter().map(|a| a / 100.0).product();
    all_up * 100.0
}

/// The availability of a group of replicas, any one of which can serve the request.
pub fn redundant_availability(replicas_percent: &[f64]) -> f64 {
    // The group is down only when every replica is down at once (assuming they fail
    // independently, which shared racks, deploys and bugs often contradict).
    let all_down: f64 = replicas_percent.iter().map(|a| 1.0 - a / 100.0).product();
    (1.0 - all_down) * 100.0
}

// ---------------------------------------------------------------------------------------------
// The lab: the nines table every on-call engineer ends up memorising, and what dependencies do
// to it.
// ---------------------------------------------------------------------------------------------

/// Availability of each service our request depends on, in percent.
const DEPENDENCY_AVAILABILITY: f64 = 99.9;
/// The lab shows 1, 2, ... up to this many dependencies in series.
const MAX_DEPENDENCIES: usize = 10;
/// In the last columns, each dependency runs this many independent replicas.
const REPLICAS: usize = 2;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const WEEK: Duration = Duration::from_secs(7 * 24 * 60 * 60);
const MONTH: Duration = Duration::from_secs(30 * 24 * 60 * 60);
const YEAR: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// A duration the way a status page writes it: "8h 45m", "4m 19s", "864ms".
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if d >= DAY {
        format!("{}d {}h", s / 86_400, s % 86_400 / 3_600)
    } else if s >= 3_600 {
        format!("{}h {}m", s / 3_600, s % 3_600 / 60)
    } else if s >= 60 {
        format!("{}m {}s", s / 60, s % 60)
    } else if s >= 1 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn main() {
    println!("How much downtime does each target allow?\n");
    let mut nines = Table::new(&["availability", "per year", "per month (30d)", "per week"]);
    for target in [90.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999] {
        nines.row(&[
            format!("{target}%"),
            human(allowed_downtime(target, YEAR)),
            human(allowed_downtime(target, MONTH)),
            human(allowed_downtime(target, WEEK)),
        ]);
    }
    nines.print();

    println!(
        "\nA request that needs N services at {DEPENDENCY_AVAILABILITY}% each \
         (and the same with {REPLICAS} replicas of each service):\n"
    );
    let mut chain = Table::new(&[
        "dependencies",
        "in series",
        "downtime/month",
        &format!("{REPLICAS} replicas each"),
        "downtime/month",
    ]);
    let mut chart = Vec::new();
    for n in 1..=MAX_DEPENDENCIES {
        let plain = serial_availability(&vec![DEPENDENCY_AVAILABILITY; n]);
        let group = redundant_availability(&[DEPENDENCY_AVAILABILITY; REPLICAS]);
        let replicated = serial_availability(&vec![group; n]);
        let downtime = allowed_downtime(plain, MONTH);
        chain.row(&[
            n.to_string(),
            format!("{plain:.4}%"),
            human(downtime),
            format!("{replicated:.6}%"),
            human(allowed_downtime(replicated, MONTH)),
        ]);
        let minutes = (downtime.as_secs_f64() / 60.0 * 10.0).round() / 10.0;
        chart.push((format!("{n} deps"), minutes));
    }
    chain.print();
    println!("\nMinutes of downtime per month, in series:\n");
    println!("{}", lab::bar_chart(&chart, 40));
}

// ---------------------------------------------------------------------------------------------
// The tests: the specification. Start with the first failing one.
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(60 * 60);

    /// Percentages are floating point: compare them with a small tolerance.
    fn assert_percent(actual: f64, expected: f64, why: &str) {
        assert!(
            (actual - expected).abs() < 1e-6,
            "expected {expected}%, got {actual}%: {why}"
        );
    }

    /// Durations computed from floating point may be a few nanoseconds off: allow a millisecond.
    fn assert_about(actual: Duration, expected: Duration, why: &str) {
        let diff = actual.abs_diff(expected);
        assert!(
            diff < Duration::from_millis(1),
            "expected {expected:?}, got {actual:?}: {why}"
        );
    }

    // --- allowed_downtime -------------------------------------------------------------------

    #[test]
    fn three_nines_allow_8h_45m_36s_of_downtime_per_year() {
        assert_about(
            allowed_downtime(99.9, YEAR),
            8 * HOUR + Duration::from_secs(45 * 60 + 36),
            "99.9% available leaves 0.1% of 365 days unavailable",
        );
    }

    #[test]
    fn four_nines_allow_about_4m_19s_per_30_day_month() {
        assert_about(
            allowed_downtime(99.99, MONTH),
            Duration::from_millis(259_200),
            "99.99% leaves 0.01% of 30 days = 259.2 s; keep the fraction of a second",
        );
    }

    #[test]
    fn availability_is_a_percentage_so_99_allows_a_hundredth_of_the_period() {
        assert_about(
            allowed_downtime(99.0, DAY),
            Duration::from_secs(864),
            "99 means 99 percent, not 99 times the period: 1% of a day is 14 minutes 24 seconds",
        );
    }

    #[test]
    fn a_hundred_percent_allows_no_downtime_and_zero_percent_allows_the_whole_period() {
        assert_about(
            allowed_downtime(100.0, WEEK),
            Duration::ZERO,
            "a 100% target has no error budget at all",
        );
        assert_about(
            allowed_downtime(0.0, WEEK),
            WEEK,
            "a 0% target allows the service to be down for the whole week",
        );
    }

    #[test]
    #[should_panic(expected = "availability must be between 0 and 100")]
    fn an_availability_above_100_percent_is_a_bug_and_panics() {
        allowed_downtime(100.5, YEAR);
    }

    #[test]
    #[should_panic(expected = "availability must be between 0 and 100")]
    fn a_negative_availability_is_a_bug_and_panics_too() {
        allowed_downtime(-1.0, YEAR);
    }

    #[test]
    fn the_downtime_of_a_short_period_keeps_its_milliseconds() {
        assert_about(
            allowed_downtime(90.0, Duration::from_millis(1_500)),
            Duration::from_millis(150),
            "10% of 1.5 s is 150 ms: work with the whole period, not just its whole seconds",
        );
    }

    // --- serial_availability ----------------------------------------------------------------

    #[test]
    fn two_three_nines_services_in_series_give_99_8001_percent() {
        assert_percent(
            serial_availability(&[99.9, 99.9]),
            99.8001,
            "both must be up, so multiply the probabilities: 0.999 * 0.999 = 0.998001",
        );
    }

    #[test]
    fn every_dependency_in_series_lowers_availability_even_below_the_weakest_one() {
        assert_percent(
            serial_availability(&[99.99, 99.9, 99.95]),
            99.840_064_995,
            "a chain is weaker than its weakest link: 0.9999 * 0.999 * 0.9995, not min(...)",
        );
        assert_percent(
            serial_availability(&[99.9; 10]),
            99.004_488_020_974_9,
            "ten dependencies at 99.9% leave the request at 0.999^10, about 99.0%",
        );
    }

    #[test]
    fn a_request_with_no_dependencies_is_not_dragged_down() {
        assert_percent(
            serial_availability(&[]),
            100.0,
            "with nothing to depend on, nothing can fail (the empty product is 1)",
        );
    }

    // --- redundant_availability -------------------------------------------------------------

    #[test]
    fn two_99_percent_replicas_give_four_nines() {
        assert_percent(
            redundant_availability(&[99.0, 99.0]),
            99.99,
            "the group is down only if both replicas are down: 1 - 0.01 * 0.01 = 0.9999",
        );
    }

    #[test]
    fn a_single_replica_is_exactly_as_available_as_itself() {
        assert_percent(
            redundant_availability(&[95.0]),
            95.0,
            "one replica down 5% of the time makes the group down 5% of the time",
        );
    }

    #[test]
    fn a_spare_replica_makes_the_group_better_than_its_best_member() {
        assert_percent(
            redundant_availability(&[90.0, 50.0]),
            95.0,
            "down only when both are down: 1 - 0.1 * 0.5 = 0.95, better than the best (90%)",
        );
    }

    #[test]
    fn three_replicas_are_down_only_when_all_three_are() {
        assert_percent(
            redundant_availability(&[90.0, 90.0, 90.0]),
            99.9,
            "each replica is down 10% of the time: all three at once 0.1 × 0.1 × 0.1 = 0.1%",
        );
        assert_percent(
            redundant_availability(&[99.0, 50.0, 80.0]),
            99.9,
            "down together: 0.01 × 0.5 × 0.2 = 0.001, so up 99.9% (every replica counts, whatever \
             its order)",
        );
    }

    #[test]
    fn a_group_with_no_replicas_can_never_serve() {
        assert_percent(
            redundant_availability(&[]),
            0.0,
            "with no replica at all, every request fails",
        );
    }

    // --- putting them together --------------------------------------------------------------

    #[test]
    fn a_load_balancer_in_front_of_two_replicas_reaches_99_98_percent() {
        let replicas = redundant_availability(&[99.0, 99.0]);
        assert_percent(
            serial_availability(&[99.99, replicas]),
            99.980_001,
            "the load balancer (99.99%) and the replica group (99.99%) are in series",
        );
    }
}
