// Deadline propagation — pass the time that is LEFT down a call chain, so nobody keeps working for
// a caller that has already given up.
//
// A user request enters service A, which calls B, which calls C. If every hop has its own fixed
// timeout ("1 s per call"), A may give up after 200 ms while B and C go on working for seconds on
// an answer nobody will read: wasted capacity, at the worst moment (an overload is exactly when
// budgets run out). gRPC fixes this by propagating the deadline: the caller sends the time it has
// LEFT in the `grpc-timeout` header ("250m" = 250 ms), and each hop turns it back into a local
// deadline, tightens it with its own timeout if it wants, keeps a little back for building its
// own reply, and sends the rest on. It sends remaining time, not a timestamp, because the clocks
// of two machines disagree (by milliseconds with good NTP, by seconds after a VM pause).
//
// Build:
//   - `Deadline`: `remaining()`, `is_expired()`, `child(reserve)`, `capped(local_timeout)`;
//   - `encode_timeout` / `parse_timeout`: the `grpc-timeout` wire format (below);
//   - `serve`: one hop of the chain. It derives its deadline from the request, refuses at once
//     (DEADLINE_EXCEEDED) when the budget cannot cover its own work, stops its work at the
//     deadline, and calls downstream with the remaining budget, never the original one.
//
// Lab (simulated time: instant and repeatable): clients call A -> B -> C at a steady rate, C
// (a database with C_WORKERS workers) stalls now and then, for each of CLIENT_BUDGETS_MS, with
// grpc-timeout propagated and with fixed per-hop timeouts. Without propagation C's workers serve
// requests whose clients left long ago, its queue grows, and nearly everything times out; with
// it, abandoned requests leave the queue and C's capacity goes to live ones. Turn ARRIVAL_EVERY,
// C_WORKERS, STALL_PROBABILITY and HOPS (work, reply) and watch success and wasted work move.

use std::sync::Arc;
use std::time::Duration;

// The chain's scaffolding (requests, statuses, the simulated network of hops) and the
// grpc-timeout format's constants: what your code and the tests build on.
#[allow(unused_imports)]
use sdlings_kit::resilience::deadlines::{
    self, GRPC_TIMEOUT, Hop, MAX_DIGITS, MAX_VALUE, Network, ParseError, Reply, Request, Status,
    UNITS,
};
use tokio::time::Instant;

// ---- Deadlines -------------------------------------------------------------------------------

/// An absolute instant on THIS machine's monotonic clock (tokio's `Instant`, which tests pause
/// and move by hand). It never leaves the process: on the wire, only the remaining time travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// The deadline `budget` from now.
    pub fn after(budget: Duration) -> Deadline {
        let now = Instant::now();
        // An absurd budget ("99999999H") must not overflow the clock: 30 years is forever here.
        let at = now
            .checked_add(budget)
            .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 24 * 3600));
        Deadline { at }
    }

    /// The instant itself, for `tokio::time::timeout_at` and `sleep_until`.
    pub fn at(&self) -> Instant {
        self.at
    }
}

// ---- Your part -------------------------------------------------------------------------------

impl Deadline {
    /// The time left until the deadline: zero once it has passed (never negative, never panics).
    pub fn remaining(&self) -> Duration {
        todo!("the time left until self.at, or zero")
    }

    /// True from the deadline instant on: no time left means expired.
    pub fn is_expired(&self) -> bool {
        todo!("has the deadline passed?")
    }

    /// The deadline to give a downstream call: `reserve` earlier than this one, keeping that
    /// much back for this hop's own reply. Never later than `self`; already expired if `reserve`
    /// is more than the time left.
    pub fn child(&self, reserve: Duration) -> Deadline {
        todo!("a deadline {reserve:?} earlier than this one")
    }

    /// This deadline tightened by a hop's own timeout: the earlier of `self` and
    /// `local_timeout` from now. A hop may shorten its caller's deadline, never extend it.
    pub fn capped(&self, local_timeout: Duration) -> Deadline {
        todo!("the earlier of this deadline and {local_timeout:?} from now")
    }
}

// The `grpc-timeout` format (gRPC over HTTP/2): 1 to 8 ASCII digits, then one unit letter:
// H hours, M minutes, S seconds, m milliseconds, u microseconds, n nanoseconds (`UNITS`).
// "250m" is 250 ms, "1S" one second, "5M" five minutes. Note `S` vs `m`: case matters.

/// `timeout` in the `grpc-timeout` format. The gRPC spec asks only for a valid value (1 to 8
/// digits, one unit) and leaves the unit and the rounding to the sender. This hop asks more:
/// - never MORE time than `timeout`: a budget rounded up lets the next hop work past the real
///   deadline (gRPC's C core allows itself to round up; here we don't);
/// - as precise as 8 digits allow: less than one unit lost, in the finest unit in which
///   `timeout` fits in 8 digits (250 ms arrives as 250 ms; 123 456 789 ns as 123 456 µs);
/// - beyond "99999999H" (11 000 years), "99999999H".
/// Which unit to write is yours to choose. A readable choice, the one a person would write in a
/// config: the coarsest unit in which the value is whole ("250m", "2S", "90S").
pub fn encode_timeout(timeout: Duration) -> String {
    todo!("{timeout:?} as a grpc-timeout value")
}

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits then a unit letter. Checks, in order:
/// empty -> `Empty`; the last character is a digit -> `MissingUnit`; it is not a unit ->
/// `UnknownUnit`; nothing before it -> `NoDigits`; a character before it that is not an ASCII
/// digit -> `NotADigit` (the first one); more than 8 digits -> `TooManyDigits`.
pub fn parse_timeout(value: &str) -> Result<Duration, ParseError> {
    todo!("parse the grpc-timeout value {value:?}")
}

/// Serves one request at `hop` (this is the task `Network::call` runs):
/// 1. Its deadline: the request's `grpc-timeout` if present (a malformed one is
///    `InvalidArgument`), else this hop's own `timeout`; tightened by its own `timeout` anyway.
/// 2. If the time left cannot cover `work + reply`, refuse at once with `DeadlineExceeded`,
///    without doing any work: failing fast is cheaper for everybody than failing late.
/// 3. Do the local work (`net.work(hop)`), stopping at the deadline (`DeadlineExceeded`).
/// 4. With no downstream hop, the reply is `Reply { served_by: vec![] }`. Otherwise call it
///    with a child deadline that keeps `reply` back, sending what is left of it as
///    `grpc-timeout`; if that child deadline has already passed, do not call at all. Stop waiting
///    at the child deadline (`DeadlineExceeded`); pass a downstream error up unchanged.
/// 5. Build the reply (`net.build_reply(hop)`), add this hop's name to `served_by`.
pub async fn serve(net: Arc<Network>, hop: usize, request: Request) -> Result<Reply, Status> {
    todo!("serve {request:?} at hop {hop} of {} hops", net.len())
}

// ---- Lab -------------------------------------------------------------------------------------
// The chain A -> B -> C on tokio's paused clock: simulated milliseconds, instant and repeatable.
// Clients send a request every ARRIVAL_EVERY, each with the same budget, and stop waiting when it
// runs out. C (the database) has C_WORKERS workers: a stalled or abandoned request that keeps
// one busy delays everybody queued behind it. The same requests, with the same stalls, run twice:
// with grpc-timeout propagated, and with it stripped (each hop on its own fixed timeout).

/// The client's budgets to try, in ms.
const CLIENT_BUDGETS_MS: [u64; 5] = [400, 250, 180, 140, 110];
/// The hops: (name, local work ms, reply ms). An API gateway, an order service, a database.
const HOPS: [(&str, u64, u64); 3] = [("A", 10, 5), ("B", 25, 5), ("C", 40, 5)];
/// C's workers (database connections). 4 workers x 40 ms: at most 100 requests/s.
const C_WORKERS: usize = 4;
/// One client request every 12 ms: about 83 requests/s.
const ARRIVAL_EVERY: Duration = Duration::from_millis(12);
/// Each hop's own timeout: its deadline when none is propagated.
const HOP_TIMEOUT: Duration = Duration::from_secs(1);
/// Each hop, on each request, stalls with this probability (a GC pause, a lock, a slow disk)...
const STALL_PROBABILITY: f64 = 0.08;
/// ...for a random time up to this.
const STALL_MAX_MS: u64 = 300;
const REQUESTS: usize = 300;
const SEED: u64 = 7;

fn main() {
    deadlines::run(&deadlines::Knobs {
        client_budgets_ms: CLIENT_BUDGETS_MS.to_vec(),
        hops: HOPS.to_vec(),
        c_workers: C_WORKERS,
        arrival_every: ARRIVAL_EVERY,
        hop_timeout: HOP_TIMEOUT,
        stall_probability: STALL_PROBABILITY,
        stall_max_ms: STALL_MAX_MS,
        requests: REQUESTS,
        seed: SEED,
        serve: |net, hop, request| Box::pin(serve(net, hop, request)),
        encode: encode_timeout,
        parse: parse_timeout,
    });
}

// ---- Tests -----------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use sdlings_kit::resilience::testing::paused;
    use sdlings_kit::workload::seeded_rng;

    /// A chain of `hops` in which every hop runs your `serve`.
    fn network(hops: Vec<Hop>) -> Network {
        Network::new(hops, |net, hop, request| Box::pin(serve(net, hop, request)))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A -> B -> C, each: timeout 1 s, work 20 ms, reply 5 ms. 75 ms end to end.
    fn three_hops() -> Vec<Hop> {
        ["A", "B", "C"]
            .into_iter()
            .map(|name| Hop {
                name,
                timeout: Duration::from_secs(1),
                work: ms(20),
                reply: ms(5),
            })
            .collect()
    }

    /// Sends a request to A with the given grpc-timeout (or none), as a client would; returns the
    /// answer and how long it took, after every hop has finished (abandoned work included).
    async fn send(net: &Arc<Network>, timeout: Option<&str>) -> (Result<Reply, Status>, Duration) {
        let request = match timeout {
            Some(value) => Request::new().with(GRPC_TIMEOUT, value),
            None => Request::new(),
        };
        let started = Instant::now();
        let answer = net.call(0, request).await;
        let took = started.elapsed();
        net.settle().await;
        (answer, took)
    }

    fn header(value: &str) -> Option<Option<String>> {
        Some(Some(value.to_string()))
    }

    // --- Deadline ---

    #[tokio::test(start_paused = true)]
    async fn remaining_counts_down_with_the_clock_and_stops_at_zero() {
        let deadline = Deadline::after(ms(100));
        assert_eq!(deadline.remaining(), ms(100));
        tokio::time::advance(ms(30)).await;
        assert_eq!(
            deadline.remaining(),
            ms(70),
            "30 ms after a 100 ms deadline was set, 70 ms are left"
        );
        assert!(!deadline.is_expired());
        tokio::time::advance(ms(69)).await;
        assert!(!deadline.is_expired(), "1 ms is still left");
        tokio::time::advance(ms(1)).await;
        assert_eq!(deadline.remaining(), Duration::ZERO);
        assert!(
            deadline.is_expired(),
            "at the deadline instant no time is left: it is expired"
        );
        tokio::time::advance(ms(50)).await;
        assert_eq!(
            deadline.remaining(),
            Duration::ZERO,
            "50 ms past the deadline, remaining is zero (not negative, not a panic)"
        );
        assert!(deadline.is_expired());
    }

    #[tokio::test(start_paused = true)]
    async fn a_child_deadline_keeps_the_reserve_back_and_never_outlives_its_parent() {
        let parent = Deadline::after(ms(100));
        let child = parent.child(ms(30));
        assert_eq!(
            child.remaining(),
            ms(70),
            "a child of a 100 ms deadline that reserves 30 ms for our reply leaves 70 ms"
        );
        assert!(child <= parent, "a child never ends after its parent");
        assert_eq!(parent.child(Duration::ZERO), parent);
        let starved = parent.child(ms(150));
        assert!(
            starved.is_expired(),
            "reserving 150 ms out of 100 leaves nothing: the child is already expired"
        );
        assert_eq!(starved.remaining(), Duration::ZERO);
        assert!(starved <= parent);
        assert_eq!(
            parent.remaining(),
            ms(100),
            "the parent itself is unchanged"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_local_timeout_tightens_a_deadline_but_never_extends_it() {
        let generous = Deadline::after(ms(500));
        assert_eq!(
            generous.capped(ms(100)).remaining(),
            ms(100),
            "the caller allows 500 ms, this hop's own timeout is 100 ms: 100 ms"
        );
        let tight = Deadline::after(ms(50));
        assert_eq!(
            tight.capped(ms(100)).remaining(),
            ms(50),
            "the caller allows 50 ms: a 100 ms local timeout must not extend that"
        );
        let deadline = Deadline::after(ms(100));
        tokio::time::advance(ms(60)).await;
        assert_eq!(
            deadline.capped(ms(100)).remaining(),
            ms(40),
            "60 ms into a 100 ms deadline, a 100 ms cap counted from now changes nothing"
        );
    }

    // --- The grpc-timeout wire format ---

    /// The test's own reading of a `grpc-timeout` value (so the encoder is checked on its own):
    /// `None` unless it is 1 to 8 ASCII digits followed by one unit letter.
    fn decode(value: &str) -> Option<Duration> {
        let unit = value.chars().last()?;
        let size = UNITS.iter().find(|(u, _)| *u == unit)?.1;
        let digits = &value[..value.len() - unit.len_utf8()];
        let well_formed =
            (1..=MAX_DIGITS).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        well_formed.then(|| size * digits.parse::<u32>().expect("8 digits fit"))
    }

    /// The finest unit in which `timeout` fits in 8 digits (`None`: not even in hours).
    fn finest_unit_that_fits(timeout: Duration) -> Option<Duration> {
        UNITS
            .iter()
            .rev()
            .map(|&(_, size)| size)
            .find(|size| timeout.as_nanos() / size.as_nanos() <= u128::from(MAX_VALUE))
    }

    /// The properties every encoding must have, whatever unit it picks.
    fn assert_well_encoded(timeout: Duration) -> Duration {
        let encoded = encode_timeout(timeout);
        let back = decode(&encoded).unwrap_or_else(|| {
            panic!(
                "{timeout:?} encoded as {encoded:?}: a grpc-timeout is 1 to 8 ASCII digits \
                 followed by one of H M S m u n"
            )
        });
        assert!(
            back <= timeout,
            "{timeout:?} encoded as {encoded:?} reads back as {back:?}: MORE time than the \
             sender has (rounded up), so the next hop may work past the real deadline"
        );
        match finest_unit_that_fits(timeout) {
            Some(unit) => assert!(
                timeout - back < unit,
                "{timeout:?} encoded as {encoded:?} reads back as {back:?}: {:?} lost. It fits \
                 in 8 digits in units of {unit:?}, so less than one of those may be lost (a unit \
                 too coarse throws away budget the next hop needed)",
                timeout - back
            ),
            None => assert_eq!(
                back,
                Duration::from_secs(u64::from(MAX_VALUE) * 3600),
                "{timeout:?} is beyond 99999999H: send the largest value there is"
            ),
        }
        back
    }

    #[test]
    fn a_budget_that_is_whole_in_some_unit_arrives_exactly() {
        let cases = [
            ms(250),
            ms(100),
            ms(1),
            Duration::from_secs(1),
            ms(1500),
            Duration::from_secs(90),
            Duration::from_secs(120),
            Duration::from_secs(3 * 3600),
            Duration::from_secs(36 * 3600),
            Duration::from_micros(7),
            Duration::from_nanos(42),
            Duration::from_micros(2500),
            Duration::from_millis(99_999_999),
            Duration::ZERO,
        ];
        for timeout in cases {
            assert_eq!(
                assert_well_encoded(timeout),
                timeout,
                "{timeout:?} can be written exactly in 8 digits (encoded as {:?}): it must \
                 arrive exactly, not a little less",
                encode_timeout(timeout)
            );
        }
    }

    #[test]
    fn values_too_precise_for_8_digits_are_rounded_down_never_up() {
        let cases = [
            (
                Duration::from_nanos(123_456_789),
                Duration::from_micros(123_456),
                "123 456 789 ns needs 9 digits in ns; in µs it is 123456.789: 123456u. 123457u \
                 would hand the next hop 211 ns we do not have; 123m would throw 456 µs away",
            ),
            (
                Duration::from_nanos(100_000_000_999),
                ms(100_000),
                "100.000000999 s: too long for n or u in 8 digits; in ms it is 100000.000999",
            ),
            (
                Duration::from_secs(3600) + Duration::from_nanos(1),
                ms(3_600_000),
                "1 h + 1 ns is exact only in ns (13 digits): the finest unit that fits is ms",
            ),
        ];
        for (timeout, expected, why) in cases {
            assert_eq!(
                assert_well_encoded(timeout),
                expected,
                "{timeout:?} encoded as {:?}: {why}",
                encode_timeout(timeout)
            );
        }
    }

    #[test]
    fn every_budget_is_encoded_validly_never_rounded_up_and_as_precisely_as_8_digits_allow() {
        let mut rng = seeded_rng(42);
        for _ in 0..5_000 {
            // Log-uniform from 1 ns to about 30 years, so every unit is needed somewhere.
            let exponent = rng.random_range(0.0..18.0_f64);
            assert_well_encoded(Duration::from_nanos(10f64.powf(exponent) as u64));
        }
    }

    #[test]
    fn a_timeout_beyond_99999999_hours_saturates() {
        assert_eq!(encode_timeout(Duration::MAX), "99999999H");
        assert_eq!(
            encode_timeout(Duration::from_secs(100_000_000 * 3600)),
            "99999999H",
            "more than 99999999H cannot be written: send the most there is"
        );
    }

    #[test]
    fn parses_every_unit() {
        let cases = [
            ("1H", Duration::from_secs(3600)),
            ("2M", Duration::from_secs(120)),
            ("3S", Duration::from_secs(3)),
            ("250m", ms(250)),
            ("5u", Duration::from_micros(5)),
            ("6n", Duration::from_nanos(6)),
            ("0m", Duration::ZERO),
            ("00000007S", Duration::from_secs(7)),
            ("99999999H", Duration::from_secs(99_999_999 * 3600)),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_timeout(value), Ok(expected), "parsing {value:?}");
        }
    }

    #[test]
    fn rejects_malformed_values_with_a_named_error() {
        use ParseError::*;
        let cases = [
            ("", Empty, "nothing at all"),
            ("250", MissingUnit, "digits without a unit"),
            (
                "5s",
                UnknownUnit('s'),
                "seconds are `S`; lowercase `s` is not a unit",
            ),
            ("5x", UnknownUnit('x'), "`x` is not a unit"),
            (
                "5µ",
                UnknownUnit('µ'),
                "micro is `u`, not `µ` (and this is not ASCII)",
            ),
            ("m", NoDigits, "a unit without a value"),
            ("1.5S", NotADigit('.'), "no fractions: send 1500m"),
            ("-1S", NotADigit('-'), "no negative budgets"),
            (
                "+5m",
                NotADigit('+'),
                "`str::parse::<u64>` accepts \"+5\": check the characters yourself",
            ),
            (" 5m", NotADigit(' '), "no spaces"),
            ("123456789m", TooManyDigits(9), "at most 8 digits"),
        ];
        for (value, expected, why) in cases {
            assert_eq!(
                parse_timeout(value),
                Err(expected),
                "{value:?} must be rejected: {why}"
            );
        }
    }

    // --- The chain ---

    #[tokio::test(start_paused = true)]
    async fn a_request_with_enough_budget_is_served_by_every_hop() {
        let net = Arc::new(network(three_hops()));
        let (answer, took) = send(&net, Some("200m")).await;
        assert_eq!(
            answer,
            Ok(Reply {
                served_by: vec!["C", "B", "A"]
            })
        );
        assert_eq!(
            took,
            ms(75),
            "3 x 20 ms of work, then 3 x 5 ms of replies, one after the other"
        );
        assert!(
            net.work_log().iter().all(|&(_, _, _, finished)| finished),
            "nothing was cut short: {:?}",
            net.work_log()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_hop_passes_down_what_is_left_not_what_it_was_given() {
        let net = Arc::new(network(three_hops()));
        let _ = send(&net, Some("200m")).await;
        assert_eq!(
            net.received(),
            vec![header("200m"), header("175m"), header("150m")],
            "A got 200 ms, worked 20 and keeps 5 for its reply: B gets 175m. B does the same: \
             C gets 150m. Passing \"200m\" on restarts the clock at every hop; 180m means the \
             reply reserve was forgotten"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hop_without_an_incoming_deadline_uses_its_own_timeout() {
        let net = Arc::new(network(three_hops()));
        let (answer, _) = send(&net, None).await;
        assert!(
            answer.is_ok(),
            "without a grpc-timeout each hop has its own 1 s: plenty, but got {answer:?}"
        );
        assert_eq!(
            net.received(),
            vec![Some(None), header("975m"), header("950m")],
            "no deadline came in: A uses its own 1 s timeout, and from there on it propagates"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hops_own_timeout_tightens_the_deadline_it_passes_on() {
        let mut hops = three_hops();
        hops[1].timeout = ms(100);
        let net = Arc::new(network(hops));
        let _ = send(&net, Some("500m")).await;
        assert_eq!(
            net.received(),
            vec![header("500m"), header("475m"), header("75m")],
            "B may spend at most 100 ms whatever A allows: C gets 100 - 20 - 5 = 75m"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hops_own_timeout_never_extends_the_callers_deadline() {
        let net = Arc::new(network(three_hops()));
        let _ = send(&net, Some("100m")).await;
        assert_eq!(
            net.received(),
            vec![header("100m"), header("75m"), header("50m")],
            "every hop's own timeout is 1 s, but the client allowed 100 ms: a 1 s cap must not \
             turn B's 75 ms into 1 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hop_refuses_at_once_when_the_budget_cannot_cover_its_own_work() {
        let net = Arc::new(network(three_hops()));
        let (answer, took) = send(&net, Some("24m")).await;
        assert_eq!(
            answer,
            Err(Status::DeadlineExceeded),
            "24 ms cannot cover A's 20 ms of work and 5 ms of reply"
        );
        assert_eq!(
            took,
            Duration::ZERO,
            "A needs 20 ms of work + 5 ms of reply and has 24: fail fast, at once"
        );
        assert_eq!(
            net.work_log(),
            vec![],
            "a refused request costs no work at all"
        );
        assert_eq!(net.received()[1], None, "and B is never called");
    }

    #[tokio::test(start_paused = true)]
    async fn when_c_cannot_make_it_the_error_comes_back_early_and_c_does_no_work() {
        let net = Arc::new(network(three_hops()));
        let (answer, took) = send(&net, Some("60m")).await;
        assert_eq!(answer, Err(Status::DeadlineExceeded));
        assert_eq!(
            net.received()[2],
            header("10m"),
            "60 ms: A works 20 and keeps 5 (B gets 35m), B works 20 and keeps 5 (C gets 10m)"
        );
        assert!(
            net.work_log().iter().all(|&(hop, ..)| hop != 2),
            "C needs 25 ms and got 10: it must refuse without starting, but worked: {:?}",
            net.work_log()
        );
        assert_eq!(
            took,
            ms(40),
            "C's refusal travels straight back: the client knows at 40 ms, not at its 60 ms \
             deadline, and can retry elsewhere or degrade while it still has time"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_malformed_grpc_timeout_is_rejected_as_invalid_argument() {
        let net = Arc::new(network(three_hops()));
        let (answer, _) = send(&net, Some("2s")).await;
        assert_eq!(
            answer,
            Err(Status::InvalidArgument(ParseError::UnknownUnit('s'))),
            "\"2s\" is not a grpc-timeout (seconds are `S`): reject the request; guessing, or \
             silently dropping the deadline, hides the caller's bug"
        );
        assert_eq!(net.work_log(), vec![], "and do no work for it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_hop_stops_working_at_its_deadline() {
        let net = Arc::new(network(three_hops()).with_stall(2, ms(500)));
        let (answer, took) = send(&net, Some("200m")).await;
        assert_eq!(
            answer,
            Err(Status::DeadlineExceeded),
            "C stalls for 500 ms: the deadline passes before anybody can answer"
        );
        assert_eq!(
            net.received()[2],
            header("150m"),
            "C is called with what is left: 200 - 2 x (20 + 5) = 150m"
        );
        let c_work: Vec<_> = net.work_log().into_iter().filter(|w| w.0 == 2).collect();
        assert_eq!(
            c_work,
            vec![(2, 40, 190, false)],
            "C started at 40 ms with 150 ms left, then stalled: it must stop at its deadline \
             (190 ms), not grind on for 520 ms for a caller that is gone"
        );
        assert_eq!(
            took,
            ms(190),
            "B stops waiting at its child deadline (190 ms) and A passes the error on"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hop_whose_own_work_ran_long_does_not_call_downstream_with_nothing_left() {
        let net = Arc::new(network(three_hops()).with_stall(0, ms(178)));
        let (answer, took) = send(&net, Some("200m")).await;
        assert_eq!(
            answer,
            Err(Status::DeadlineExceeded),
            "A's own work took 198 of its 200 ms: there is no time left to call B"
        );
        assert_eq!(
            took,
            ms(198),
            "A's work ended at 198 ms; it should answer then"
        );
        assert_eq!(
            net.received()[1],
            None,
            "A's work ran until 198 ms, leaving 2 ms, less than its 5 ms reply reserve: the \
             child deadline has passed, so B must not be called at all"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_wall_clocks_of_the_hops_do_not_matter() {
        let net = Arc::new(
            network(three_hops())
                .with_clock_skew(1, -300)
                .with_clock_skew(2, 250),
        );
        let (answer, took) = send(&net, Some("200m")).await;
        assert!(
            answer.is_ok(),
            "B's clock is 300 ms behind and C's 250 ms ahead; with 200 ms for 75 ms of work the \
             request must succeed as it does with synchronised clocks, but got {answer:?}"
        );
        assert_eq!(took, ms(75));
        assert_eq!(
            net.received(),
            vec![header("200m"), header("175m"), header("150m")],
            "B's clock is 300 ms behind and C's 250 ms ahead: deadlines must be measured as \
             time elapsed on each hop's own monotonic clock, never as a time of day"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn whatever_the_budget_nobody_works_after_the_client_gave_up() {
        type Setup = fn() -> Network;
        let setups: [(&str, Setup); 3] = [
            ("no stalls", || network(three_hops())),
            ("B stalls 30 ms", || {
                network(three_hops()).with_stall(1, ms(30))
            }),
            ("C stalls 1 s", || {
                network(three_hops()).with_stall(2, Duration::from_secs(1))
            }),
        ];
        for (what, setup) in setups {
            // 2, 7, 12... ms: never a budget that fits exactly (75 ms without stalls), where
            // the last reply and the caller's timeout land on the same instant and either wins.
            for budget in (2..=152).step_by(5) {
                let net = Arc::new(setup());
                let (answer, took) = send(&net, Some(&format!("{budget}m"))).await;
                assert!(
                    took <= ms(budget),
                    "{what}, budget {budget} ms: A answered after {took:?}"
                );
                for (hop, from, to, _) in net.work_log() {
                    assert!(
                        to <= u128::from(budget),
                        "{what}, budget {budget} ms: hop {hop} worked from {from} to {to} ms, \
                         after the client had given up"
                    );
                }
                if answer.is_err() {
                    let c_busy: u128 = net
                        .work_log()
                        .iter()
                        .filter(|w| w.0 == 2)
                        .map(|w| w.2 - w.1)
                        .sum();
                    assert!(
                        c_busy == 0 || what == "C stalls 1 s",
                        "{what}, budget {budget} ms: the request failed, yet C worked \
                         {c_busy} ms on it"
                    );
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_budget_that_exactly_covers_a_hops_work_and_reply_is_enough() {
        let net = Arc::new(network(three_hops()));
        let started = Instant::now();
        let answer = net.call(2, Request::new().with(GRPC_TIMEOUT, "25m")).await;
        assert_eq!(
            answer,
            Ok(Reply {
                served_by: vec!["C"]
            }),
            "C needs 20 ms of work and 5 ms of reply and was given exactly 25 ms: that is \
             enough (refuse only when the time left is LESS than work + reply)"
        );
        assert_eq!(started.elapsed(), ms(25));
    }

    #[tokio::test(start_paused = true)]
    async fn a_downstream_that_ignores_the_deadline_is_still_cut_off() {
        // C ignores grpc-timeout (an old server): it works on its own 1 s timeout, and stalls.
        let net = Arc::new(
            network(three_hops())
                .ignoring_deadlines(2)
                .with_stall(2, ms(500)),
        );
        let (answer, took) = send(&net, Some("200m")).await;
        assert_eq!(answer, Err(Status::DeadlineExceeded));
        assert_eq!(
            took,
            ms(190),
            "C ignores the deadline and works on until 560 ms, but B gave C only until 190 ms \
             (200 - 2 x 5 ms of replies): B must stop WAITING at that child deadline, whatever \
             C does, and A passes the error on at once. Trusting the downstream to honour the \
             header is not enough"
        );
    }

    /// One hop's part of the model: (timeout, work, reply) in ms, its unexpected stall, and
    /// whether it ignores grpc-timeout.
    #[derive(Debug, Clone, Copy)]
    struct ModelHop {
        timeout: u64,
        work: u64,
        reply: u64,
        stall: u64,
        deaf: bool,
    }

    /// What the chain must do, computed in whole ms: the grpc-timeout each hop received (`None`:
    /// never called), whether the client got a reply and when. `None` if two events land on the
    /// same instant and either order is allowed.
    struct Model {
        received: Vec<Option<Option<u64>>>,
        tie: bool,
    }

    impl Model {
        /// Hop `i` gets a request at `now` carrying `header`; returns (ok, when it answers).
        fn visit(
            &mut self,
            hops: &[ModelHop],
            i: usize,
            now: u64,
            header: Option<u64>,
        ) -> (bool, u64) {
            let hop = hops[i];
            let header = if hop.deaf { None } else { header };
            self.received[i] = Some(header);
            let deadline = now + header.unwrap_or(hop.timeout).min(hop.timeout);
            if deadline - now < hop.work + hop.reply {
                return (false, now); // refused at once
            }
            let work_done = now + hop.work + hop.stall;
            if work_done >= deadline {
                self.tie |= work_done == deadline;
                return (false, deadline); // work cut at the deadline
            }
            if i + 1 == hops.len() {
                return (true, work_done + hop.reply);
            }
            let child = deadline - hop.reply;
            if child <= work_done {
                return (false, work_done); // nothing left for downstream: do not call
            }
            let (ok, answered) = self.visit(hops, i + 1, work_done, Some(child - work_done));
            if answered > child {
                return (false, child); // stopped waiting at the child deadline
            }
            self.tie |= ok && answered == child;
            if ok {
                (true, answered + hop.reply)
            } else {
                (false, answered)
            }
        }
    }

    #[test]
    fn the_chain_matches_a_model_over_random_hops_budgets_stalls_and_deaf_hops() {
        let mut checked = 0;
        sdlings_kit::property::for_seeds(300, |rng| {
            let n = rng.random_range(1..=3);
            let hops: Vec<ModelHop> = (0..n)
                .map(|_| ModelHop {
                    timeout: rng.random_range(20..=300),
                    work: rng.random_range(1..=30),
                    reply: rng.random_range(0..=10),
                    stall: if rng.random_bool(0.3) {
                        rng.random_range(1..=80)
                    } else {
                        0
                    },
                    deaf: rng.random_bool(0.2),
                })
                .collect();
            let budget = rng.random_bool(0.85).then(|| rng.random_range(0..=250_u64));
            let mut model = Model {
                received: vec![None; n],
                tie: false,
            };
            let (ok, at) = model.visit(&hops, 0, 0, budget);
            if model.tie {
                return;
            }
            checked += 1;
            let what = format!("hops {hops:?}, client budget {budget:?} ms");
            paused(async {
                let names = ["A", "B", "C"];
                let mut net = network(
                    hops.iter()
                        .zip(names)
                        .map(|(h, name)| Hop {
                            name,
                            timeout: ms(h.timeout),
                            work: ms(h.work),
                            reply: ms(h.reply),
                        })
                        .collect(),
                );
                for (i, h) in hops.iter().enumerate() {
                    net = net.with_stall(i, ms(h.stall));
                    if h.deaf {
                        net = net.ignoring_deadlines(i);
                    }
                }
                let net = Arc::new(net);
                let header = budget.map(|b| format!("{b}m"));
                let (answer, took) = send(&net, header.as_deref()).await;
                let got: Vec<Option<Option<u64>>> = net
                    .received()
                    .into_iter()
                    .map(|hop| {
                        hop.map(|header| {
                            header.map(|value| {
                                let d = decode(&value).unwrap_or_else(|| {
                                    panic!("{what}: a hop sent the malformed {value:?}")
                                });
                                d.as_millis() as u64
                            })
                        })
                    })
                    .collect();
                assert_eq!(
                    got, model.received,
                    "{what}: the grpc-timeout each hop received, in ms (None: not called). Each \
                     hop's deadline is the earlier of the header and its own timeout; it \
                     refuses when that cannot cover work + reply, cuts its work at the \
                     deadline, and sends on its deadline minus its reply, minus the time spent"
                );
                let expected: Result<Reply, Status> = if ok {
                    Ok(Reply {
                        served_by: names[..n].iter().rev().copied().collect(),
                    })
                } else {
                    Err(Status::DeadlineExceeded)
                };
                assert_eq!(answer, expected, "{what}: the client's answer");
                assert_eq!(took, ms(at), "{what}: when the client got its answer");
            });
        });
        assert!(
            checked > 200,
            "only {checked} cases without ties were checked"
        );
    }
}
