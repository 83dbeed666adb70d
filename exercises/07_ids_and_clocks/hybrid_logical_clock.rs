// Hybrid logical clock — timestamps close to wall time that still respect causality.
//
// Ordering transactions by wall-clock time breaks when clocks disagree: a write made after reading
// another can get an earlier timestamp. Lamport clocks fix the order but drift arbitrarily far
// from real time. A hybrid logical clock (Kulkarni et al., 2014; CockroachDB, YugabyteDB) keeps
// both: `l` is the largest physical time the node has heard of, `c` orders events that share it.
//
// Build `Hlc::now` (a local event or send) and `Hlc::update` (a receive), as in the paper. The
// property: a node's timestamps strictly increase even when its physical clock steps back; a
// receive is stamped after the message; `l` never exceeds the largest physical time the node has
// read by more than `max_offset_ms`. A remote timestamp further ahead of the local physical clock
// than that is refused, leaving the clock unchanged (CockroachDB refuses beyond its max offset).
//
// Lab: skewed nodes exchange messages. Turn SKEW_MS and count receives that physical time stamps
// before their send (the HLC: none); ROGUE_AHEAD_MS > MAX_OFFSET_MS gets the rogue refused.

use sdlings_kit::ids_and_clocks::{HlcKnobs, StepClock, WallClock, hlc_lab};

/// A hybrid timestamp, ordered by `l`, then `c`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// The largest physical time (Unix ms) this event has heard of.
    pub l: u64,
    /// Orders the events that share `l`.
    pub c: u32,
}

/// A remote timestamp too far ahead of the local physical clock to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockOffsetError {
    pub remote: Timestamp,
    /// The local physical clock's reading.
    pub physical_ms: u64,
    pub max_offset_ms: u64,
}

// ---- Your part -------------------------------------------------------------------------------

#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct Hlc<C: WallClock> {
    clock: C,
    max_offset_ms: u64,
    /// The timestamp of the last event; (0, 0) before the first.
    last: Timestamp,
}

impl<C: WallClock> Hlc<C> {
    pub fn new(clock: C, max_offset_ms: u64) -> Self {
        Hlc {
            clock,
            max_offset_ms,
            last: Timestamp::default(),
        }
    }

    /// The timestamp of the last event.
    pub fn last(&self) -> Timestamp {
        self.last
    }

    /// A local event or a send: its timestamp.
    pub fn now(&mut self) -> Timestamp {
        todo!(
            "read the physical clock once; l and c after {:?}",
            self.last
        )
    }

    /// The receipt of a message stamped `remote`: the receive event's timestamp, or an error
    /// (and no change) if `remote.l` is more than `max_offset_ms` ahead of the physical clock.
    pub fn update(&mut self, remote: Timestamp) -> Result<Timestamp, ClockOffsetError> {
        todo!("check {remote:?} against the physical clock, then stamp the receive")
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Nodes; node i's clock is i × SKEW_MS behind true time.
const NODES: u32 = 4;
const SKEW_MS: u64 = 20;
/// How far node 0's clock steps back halfway through (an NTP correction).
const STEP_BACK_MS: u64 = 100;
/// The offset past which remote timestamps are refused (CockroachDB's default is 500 ms).
const MAX_OFFSET_MS: u64 = 250;
/// One more node whose clock is this far ahead of true time.
const ROGUE_AHEAD_MS: u64 = 400;
const DURATION_MS: u64 = 2_000;

fn main() {
    let knobs = HlcKnobs {
        nodes: NODES,
        skew_ms: SKEW_MS,
        step_back_ms: STEP_BACK_MS,
        max_offset_ms: MAX_OFFSET_MS,
        rogue_ahead_ms: ROGUE_AHEAD_MS,
        duration_ms: DURATION_MS,
    };
    let pair = |t: Timestamp| (t.l, t.c);
    hlc_lab(
        knobs,
        |clock: StepClock| Hlc::new(clock, MAX_OFFSET_MS),
        |hlc| pair(hlc.now()),
        |hlc, (l, c)| hlc.update(Timestamp { l, c }).map(pair).ok(),
    );
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    fn ts(l: u64, c: u32) -> Timestamp {
        Timestamp { l, c }
    }

    /// An HLC at physical time `pt` whose last event is (pt, c).
    fn hlc_at(pt: u64, c: u32, max_offset_ms: u64) -> (StepClock, Hlc<StepClock>) {
        let clock = StepClock::at(pt);
        let mut hlc = Hlc::new(clock.clone(), max_offset_ms);
        for _ in 0..=c {
            hlc.now();
        }
        assert_eq!(hlc.last(), ts(pt, c));
        (clock, hlc)
    }

    #[test]
    fn local_events_follow_the_physical_clock_and_count_within_a_millisecond() {
        let clock = StepClock::at(1_000);
        let mut hlc = Hlc::new(clock.clone(), 500);
        let stamps: Vec<_> = (0..3).map(|_| hlc.now()).collect();
        assert_eq!(stamps, [ts(1_000, 0), ts(1_000, 1), ts(1_000, 2)]);
        clock.advance(5);
        assert_eq!(
            hlc.now(),
            ts(1_005, 0),
            "the physical clock moved past l: c starts again"
        );
    }

    #[test]
    fn a_physical_clock_that_steps_back_does_not_take_the_timestamps_back() {
        let (clock, mut hlc) = hlc_at(1_000, 0, 500);
        clock.step_back(300);
        assert_eq!(
            hlc.now(),
            ts(1_000, 1),
            "l stays at 1000 and c counts: still increasing"
        );
        assert_eq!(hlc.now(), ts(1_000, 2));
        clock.set(1_001);
        assert_eq!(
            hlc.now(),
            ts(1_001, 0),
            "once the clock passes l again, it leads"
        );
    }

    #[test]
    fn a_receive_is_stamped_after_both_the_last_event_and_the_message() {
        // (local l, local c, physical time, message) -> the receive's timestamp: the paper's
        // four cases, by which of the three holds the largest l.
        let cases = [
            (
                (100, 3, 100),
                ts(100, 5),
                ts(100, 6),
                "all three equal: max(c, c_m) + 1",
            ),
            (
                (100, 5, 100),
                ts(100, 2),
                ts(100, 6),
                "all equal, local c larger",
            ),
            (
                (100, 3, 95),
                ts(90, 9),
                ts(100, 4),
                "local l largest: c + 1",
            ),
            (
                (100, 3, 95),
                ts(103, 7),
                ts(103, 8),
                "the message's l largest: c_m + 1",
            ),
            (
                (100, 3, 110),
                ts(99, 9),
                ts(110, 0),
                "the physical clock largest: c = 0",
            ),
            (
                (100, 3, 103),
                ts(103, 7),
                ts(103, 8),
                "message and physical clock tie: c_m + 1",
            ),
        ];
        for ((l, c, pt), message, expected, case) in cases {
            let (clock, mut hlc) = hlc_at(l, c, 500);
            clock.set(pt);
            assert_eq!(
                hlc.update(message),
                Ok(expected),
                "last event ({l}, {c}), physical clock {pt}, message {message:?}: {case}"
            );
        }
    }

    #[test]
    fn a_remote_timestamp_beyond_the_max_offset_is_refused_and_changes_nothing() {
        let (_clock, mut hlc) = hlc_at(1_000, 2, 500);
        assert_eq!(
            hlc.update(ts(1_501, 0)),
            Err(ClockOffsetError {
                remote: ts(1_501, 0),
                physical_ms: 1_000,
                max_offset_ms: 500
            }),
            "1501 is 501 ms ahead of the physical clock, past the 500 ms max offset"
        );
        assert_eq!(
            hlc.last(),
            ts(1_000, 2),
            "a refused timestamp must not move the clock"
        );
        assert_eq!(
            hlc.update(ts(1_500, 4)),
            Ok(ts(1_500, 5)),
            "exactly 500 ms ahead is allowed"
        );
    }

    #[test]
    fn with_a_zero_max_offset_nothing_ahead_of_the_physical_clock_is_accepted() {
        let (clock, mut hlc) = hlc_at(2_000, 0, 0);
        clock.step_back(10);
        assert_eq!(
            hlc.update(ts(1_990, 3)),
            Ok(ts(2_000, 1)),
            "not ahead: accepted"
        );
        assert!(
            hlc.update(ts(1_991, 0)).is_err(),
            "1 ms ahead of the physical clock"
        );
    }

    #[test]
    fn matches_the_papers_algorithm_with_skewed_and_backward_clocks() {
        sdlings_kit::property::for_seeds(150, |rng| {
            let n = rng.random_range(1..=4);
            let max_offset = [0, 5, 50, 500][rng.random_range(0..4)];
            let skew = [0, 3, 40, 800][rng.random_range(0..4)];
            let clocks: Vec<StepClock> = (0..n)
                .map(|_| StepClock::at(10_000 + rng.random_range(0..=skew)))
                .collect();
            let mut hlcs: Vec<_> = clocks
                .iter()
                .map(|c| Hlc::new(c.clone(), max_offset))
                .collect();
            // The reference: each node's (l, c) by the paper, and the largest pt it has read.
            let mut model = vec![(0u64, 0u32); n];
            let mut max_pt = vec![0u64; n];
            let mut in_flight: Vec<(usize, Timestamp)> = Vec::new();
            for step in 0..100 {
                let i = rng.random_range(0..n);
                let pt = clocks[i].now_ms();
                let (l0, c0) = model[i];
                let why = || {
                    format!(
                        "step {step}, node {i} of {n}, max offset {max_offset}, physical clock {pt}, last ({l0}, {c0})"
                    )
                };
                match rng.random_range(0..10) {
                    0..3 if !in_flight.is_empty() => {
                        let (to, m) = in_flight.swap_remove(rng.random_range(0..in_flight.len()));
                        let pt = clocks[to].now_ms();
                        max_pt[to] = max_pt[to].max(pt);
                        let (l0, c0) = model[to];
                        let got = hlcs[to].update(m);
                        let why = || {
                            format!(
                                "step {step}: node {to} (last ({l0}, {c0}), physical clock {pt}, max offset {max_offset}) receives {m:?}"
                            )
                        };
                        if m.l > pt + max_offset {
                            let err = ClockOffsetError {
                                remote: m,
                                physical_ms: pt,
                                max_offset_ms: max_offset,
                            };
                            assert_eq!(got, Err(err), "{}: too far ahead", why());
                            continue;
                        }
                        let l = l0.max(m.l).max(pt);
                        let c = match (l == l0, l == m.l) {
                            (true, true) => c0.max(m.c) + 1,
                            (true, false) => c0 + 1,
                            (false, true) => m.c + 1,
                            (false, false) => 0,
                        };
                        assert_eq!(got, Ok(ts(l, c)), "{}", why());
                        assert!(
                            ts(l, c) > m && ts(l, c) > ts(l0, c0),
                            "{}: causality",
                            why()
                        );
                        model[to] = (l, c);
                    }
                    0..7 => {
                        max_pt[i] = max_pt[i].max(pt);
                        let l = l0.max(pt);
                        let c = if l == l0 { c0 + 1 } else { 0 };
                        let got = hlcs[i].now();
                        assert_eq!(got, ts(l, c), "{}: a local event", why());
                        assert!(got > ts(l0, c0), "{}: timestamps strictly increase", why());
                        model[i] = (l, c);
                        if n > 1 && rng.random() {
                            in_flight.push(((i + rng.random_range(1..n)) % n, got));
                        }
                    }
                    7 | 8 => clocks
                        .iter()
                        .for_each(|c| c.advance(rng.random_range(0..3))),
                    _ => clocks[i].step_back(rng.random_range(1..=50)),
                }
                for (j, &(l, _)) in model.iter().enumerate() {
                    assert!(
                        l <= max_pt[j] + max_offset,
                        "{}: node {j}'s l = {l} ran more than {max_offset} ms ahead of the largest physical time it read ({})",
                        why(),
                        max_pt[j]
                    );
                }
            }
        });
    }
}
