// The grpc-timeout header — write the time a caller has LEFT on the wire, and read it back.
//
// When a service calls another with a deadline, gRPC sends the time remaining in the
// `grpc-timeout` request header: 1 to 8 ASCII digits and one unit letter (H M S m u n: hours,
// minutes, seconds, milli-, micro-, nanoseconds), so "250m" is 250 ms and "1S" one second. Every
// gRPC client writes it on every call with a deadline; every server parses it before the handler
// runs (the next exercise, deadline_propagation, starts from the value it decodes). A value that
// reads back as MORE time than the sender had lets the next hop work past the real deadline; a
// unit too coarse throws budget away ("1S" for 1.9 s); a lax parser accepts what others reject.
//
// Build `encode_timeout` and `parse_timeout`. Properties (the unit is your choice): the encoding
// is valid, never reads back as more than the timeout, and loses less than one unit of the finest
// unit in which the timeout fits in 8 digits. The parser accepts exactly the valid values.
//
// Lab: TIMEOUTS, each encoded, read back by your parser, and what was lost (and what whole
// milliseconds, a common shortcut, would lose). Add your own: 1 ns, 100 s + 1 ns, 1 h + 1 ns.

use std::time::Duration;

// The format's units and limits, and the parser's errors.
#[allow(unused_imports)]
use sdlings_kit::resilience::deadlines::{self, MAX_DIGITS, MAX_VALUE, ParseError, UNITS};

// ---- Your part -------------------------------------------------------------------------------

/// `timeout` as a `grpc-timeout` value (the gRPC spec asks only for a valid one and leaves the
/// unit and the rounding to the sender; this one promises more):
/// - never MORE time than `timeout`, which would let the next hop work past the real deadline;
/// - less than one unit lost, in the finest unit in which `timeout` fits in 8 digits (123 456 789
///   ns arrives as 123 456 µs), and a timeout that is whole in a unit that fits arrives exactly;
/// - beyond "99999999H" (11 000 years), "99999999H".
pub fn encode_timeout(timeout: Duration) -> String {
    let nanos = timeout.as_nanos();
    // Exact and readable first: what an engineer would write in a config ("250m", "2S").
    for (unit, size) in UNITS {
        let size = size.as_nanos();
        if nanos.is_multiple_of(size) && nanos / size <= u128::from(MAX_VALUE) {
            return format!("{}{unit}", nanos / size);
        }
    }
    // Not exact in any unit that fits: lose the least precision, and lose it downwards. A budget
    // rounded up would let the next hop work past the real deadline.
    for (unit, size) in UNITS.iter().rev() {
        let value = nanos / size.as_nanos();
        if value <= u128::from(MAX_VALUE) {
            return format!("{value}{unit}");
        }
    }
    format!("{MAX_VALUE}H")
}

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits then a unit letter. The first problem, in
/// this order: empty -> `Empty`; the last character is a digit -> `MissingUnit`; it is not a unit
/// -> `UnknownUnit`; nothing before it -> `NoDigits`; a character before it that is not an ASCII
/// digit -> `NotADigit` (the first one); more than 8 digits -> `TooManyDigits`.
pub fn parse_timeout(value: &str) -> Result<Duration, ParseError> {
    let unit = value.chars().last().ok_or(ParseError::Empty)?;
    if unit.is_ascii_digit() {
        return Err(ParseError::MissingUnit);
    }
    let size = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, size)| *size)
        .ok_or(ParseError::UnknownUnit(unit))?;
    // The unit may be any character, up to 4 bytes long: cut at its boundary, not one byte back.
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() {
        return Err(ParseError::NoDigits);
    }
    // Check the characters ourselves: `str::parse::<u32>` would accept "+5".
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_digit()) {
        return Err(ParseError::NotADigit(c));
    }
    if digits.len() > MAX_DIGITS {
        return Err(ParseError::TooManyDigits(digits.len()));
    }
    let count: u32 = digits.parse().expect("1 to 8 ASCII digits fit in a u32");
    Ok(size * count)
}

// ---- Lab -------------------------------------------------------------------------------------

/// The budgets to encode.
const TIMEOUTS: [Duration; 8] = [
    Duration::from_millis(250),
    Duration::from_millis(1500),
    Duration::from_secs(90),
    Duration::from_micros(2500),
    Duration::from_nanos(123_456_789),
    Duration::from_nanos(750),
    Duration::from_secs(40 * 3600),
    Duration::MAX,
];

fn main() {
    deadlines::encodings_lab(&TIMEOUTS, encode_timeout, parse_timeout);
}

// ---- Tests -----------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

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

    /// The properties every encoding must have, whatever unit it picks; returns what it reads
    /// back as.
    fn assert_well_encoded(timeout: Duration) -> Duration {
        let encoded = encode_timeout(timeout);
        let back = decode(&encoded).unwrap_or_else(|| {
            panic!(
                "{timeout:?} encoded as {encoded:?}: a grpc-timeout is 1 to 8 ASCII digits \
                 followed by one of H M S m u n"
            )
        });
        let what = format!("{timeout:?} encoded as {encoded:?} reads back as {back:?}");
        assert!(
            back <= timeout,
            "{what}: MORE time than the sender has (rounded up), so the next hop may work past \
             the real deadline"
        );
        match finest_unit_that_fits(timeout) {
            Some(unit) => assert!(
                timeout - back < unit,
                "{what}: {:?} lost. It fits in 8 digits in units of {unit:?}, so less than one \
                 of those may be lost (a unit too coarse throws away budget the next hop needed)",
                timeout - back
            ),
            None => assert_eq!(
                back,
                Duration::from_secs(MAX_VALUE * 3600),
                "{what}: beyond 99999999H, send the largest value there is"
            ),
        }
        back
    }

    #[test]
    fn a_budget_that_is_whole_in_some_unit_that_fits_arrives_exactly() {
        let (ms, s) = (Duration::from_millis, Duration::from_secs);
        let cases = [
            ms(250),
            ms(1),
            s(1),
            ms(1500),
            s(90),
            s(3 * 3600),
            s(36 * 3600),
            Duration::from_micros(7),
            Duration::from_nanos(42),
            Duration::from_micros(2500),
            ms(99_999_999),
            s(MAX_VALUE * 3600),
            Duration::ZERO,
        ];
        for timeout in cases {
            let encoded = encode_timeout(timeout);
            let why = "it can be written exactly in 8 digits, so it must arrive exactly";
            assert_eq!(assert_well_encoded(timeout), timeout, "{encoded:?}: {why}");
        }
    }

    #[test]
    fn values_too_precise_for_8_digits_are_rounded_down_never_up() {
        let cases = [
            (
                Duration::from_nanos(123_456_789),
                Duration::from_micros(123_456),
                "9 digits in ns; in µs it is 123456.789: 123456u. 123457u would hand the next \
                 hop 211 ns we do not have; 123m would throw 456 µs away",
            ),
            (
                Duration::from_nanos(100_000_000_999),
                Duration::from_millis(100_000),
                "100.000000999 s: too long for n or u in 8 digits; in ms it is 100000.000999",
            ),
            (
                Duration::from_secs(3600) + Duration::from_nanos(1),
                Duration::from_millis(3_600_000),
                "1 h + 1 ns is exact only in ns (13 digits): the finest unit that fits is ms",
            ),
            (
                Duration::new(17_279_999, 999_999_999),
                Duration::from_secs(17_279_999),
                "1 ns short of 200 days, too long for ms: in S it is 17279999.999999999 (through \
                 an f64 it becomes 17280000, 1 ns more than there is)",
            ),
            (
                Duration::from_micros(99_999_999_500),
                Duration::from_millis(99_999_999),
                "99999999.5 ms: 99999999m fits (8 digits, the most there are)",
            ),
        ];
        for (timeout, expected, why) in cases {
            let encoded = encode_timeout(timeout);
            assert_eq!(
                assert_well_encoded(timeout),
                expected,
                "{timeout:?} as {encoded:?}: {why}"
            );
        }
    }

    #[test]
    fn every_duration_is_encoded_validly_never_rounded_up_and_as_precisely_as_8_digits_allow() {
        let extremes = [Duration::MAX, Duration::from_secs(100_000_000 * 3600)];
        for timeout in extremes {
            assert_eq!(
                encode_timeout(timeout),
                "99999999H",
                "{timeout:?}: beyond 99999999H"
            );
        }
        sdlings_kit::property::for_seeds(5_000, |rng| {
            // Every magnitude of the whole Duration range, from 0 to u64::MAX seconds (past
            // 584 years of nanoseconds and past 99999999H), with and without a fraction.
            let secs = rng
                .random::<u64>()
                .checked_shr(rng.random_range(0..=64))
                .unwrap_or(0);
            let nanos = match rng.random_range(0..4) {
                0 => 0,
                1 => rng.random_range(0..1_000) * 1_000_000,
                2 => rng.random_range(0..1_000_000) * 1_000,
                _ => rng.random_range(0..1_000_000_000),
            };
            assert_well_encoded(Duration::new(secs, nanos));
        });
    }

    #[test]
    fn parses_every_unit() {
        let (ms, s) = (Duration::from_millis, Duration::from_secs);
        let cases = [
            ("1H", s(3600)),
            ("2M", s(120)),
            ("3S", s(3)),
            ("250m", ms(250)),
            ("5u", Duration::from_micros(5)),
            ("6n", Duration::from_nanos(6)),
            ("0m", Duration::ZERO),
            ("00000007S", s(7)),
            ("99999999H", s(99_999_999 * 3600)),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_timeout(value), Ok(expected), "parsing {value:?}");
        }
    }

    #[test]
    fn rejects_malformed_values_with_the_first_problem_named() {
        use ParseError::*;
        #[rustfmt::skip]
        let cases = [
            ("", Empty, "nothing at all"),
            ("250", MissingUnit, "digits without a unit"),
            ("5s", UnknownUnit('s'), "seconds are `S`; lowercase `s` is not a unit"),
            ("5x", UnknownUnit('x'), "`x` is not a unit"),
            ("5µ", UnknownUnit('µ'), "micro is `u`, not `µ` (2 bytes in UTF-8)"),
            ("1秒", UnknownUnit('秒'), "a 3-byte last character is one character, not a byte"),
            ("x", UnknownUnit('x'), "the unit is checked before the digits"),
            ("m", NoDigits, "a unit without a value"),
            ("1.5S", NotADigit('.'), "no fractions: send 1500m"),
            ("1.5s", UnknownUnit('s'), "the unit is checked first"),
            ("-1S", NotADigit('-'), "no negative budgets"),
            ("-1.5S", NotADigit('-'), "the first character that is not a digit"),
            ("+5m", NotADigit('+'), "`str::parse::<u32>` accepts \"+5\": check the characters"),
            (" 5m", NotADigit(' '), "no spaces"),
            ("٣m", NotADigit('٣'), "an Arabic-Indic three is numeric, but not an ASCII digit"),
            ("123456789m", TooManyDigits(9), "at most 8 digits"),
            ("000000001m", TooManyDigits(9), "at most 8 digits, leading zeros included"),
            ("+12345678m", NotADigit('+'), "NotADigit comes before TooManyDigits"),
        ];
        for (value, expected, why) in cases {
            assert_eq!(
                parse_timeout(value),
                Err(expected),
                "{value:?} must be rejected: {why}"
            );
        }
    }
}
