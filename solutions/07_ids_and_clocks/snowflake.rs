// Snowflake — unique 64-bit ids from many workers, with no coordination and no repeats.
//
// Twitter's Snowflake (2010) mints tweet ids on many machines at once: 1 unused sign bit, 41 bits
// of milliseconds since a custom epoch, 10 of worker id, 12 of sequence. Workers never talk to
// each other, ids fit a 64-bit column and sort roughly by time; Discord and Instagram use variants.
//
// Build `Snowflake::next_id`. The property: a generator never issues the same id twice and its
// ids strictly increase, whatever its clock does; each id carries the clock's reading. A
// millisecond has 4096 sequence numbers; the next request is refused until the next millisecond
// (wrapping would repeat an id). When the clock steps back (an NTP correction, a VM restored from
// a snapshot), it refuses until the clock has caught up. A refusal names the earliest millisecond
// at which an id can be made: `Err(Wait { until_ms })`.
//
// Lab: a fleet of workers with skewed clocks. Turn SKEW_MS up and watch the share of ids sorted
// out of true order grow; STEP_BACK_MS stalls the last worker that long; BURST stalls worker 0.

use sdlings_kit::ids_and_clocks::{FleetKnobs, StepClock, WallClock, fleet_lab};

/// Bits of milliseconds since the epoch, of worker id and of sequence (1 sign bit stays 0).
pub const TIMESTAMP_BITS: u32 = 41;
pub const WORKER_BITS: u32 = 10;
pub const SEQUENCE_BITS: u32 = 12;
/// Twitter's epoch: 2010-11-04T01:42:54.657Z, in Unix milliseconds.
pub const TWITTER_EPOCH_MS: u64 = 1_288_834_974_657;

/// No id can be made before `until_ms` (Unix ms, as the generator's clock reads): ask again then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub until_ms: u64,
}

/// The three fields of an id, the timestamp as Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub unix_ms: u64,
    pub worker: u16,
    pub sequence: u16,
}

// ---- Your part -------------------------------------------------------------------------------

pub struct Snowflake<C: WallClock> {
    clock: C,
    epoch_ms: u64,
    worker: u16,
    /// The (Unix ms, sequence) of the last id issued; `None` before the first.
    last: Option<(u64, u16)>,
}

impl<C: WallClock> Snowflake<C> {
    /// A generator for `worker`, counting time from `epoch_ms` (Unix ms). Panics if the worker id
    /// does not fit in `WORKER_BITS`, with a message that says "worker id".
    pub fn new(worker: u16, epoch_ms: u64, clock: C) -> Self {
        assert!(
            u32::from(worker) < 1 << WORKER_BITS,
            "worker id {worker} does not fit in {WORKER_BITS} bits"
        );
        Snowflake {
            clock,
            epoch_ms,
            worker,
            last: None,
        }
    }

    /// The next id, made at the clock's current reading, or the earliest millisecond at which
    /// one can be. Panics, with a message that says "41 bits", if the time since the epoch no
    /// longer fits in `TIMESTAMP_BITS`.
    pub fn next_id(&mut self) -> Result<u64, Wait> {
        const MAX_SEQUENCE: u16 = (1 << SEQUENCE_BITS) - 1;
        let now = self.clock.now_ms();
        if now < self.epoch_ms {
            return Err(Wait {
                until_ms: self.epoch_ms,
            });
        }
        let (ms, sequence) = match self.last {
            // A new millisecond (or the first id): the sequence starts again at 0.
            None => (now, 0),
            Some((last_ms, _)) if now > last_ms => (now, 0),
            // The same millisecond, with sequence numbers left.
            Some((last_ms, seq)) if now == last_ms && seq < MAX_SEQUENCE => (now, seq + 1),
            // Out of sequence numbers, or the clock is behind the last id: every id it could make
            // now was made already. The next free slot is the next sequence number of the last
            // millisecond, or the first of the one after it.
            Some((last_ms, seq)) => {
                let until_ms = if seq < MAX_SEQUENCE {
                    last_ms
                } else {
                    last_ms + 1
                };
                return Err(Wait { until_ms });
            }
        };
        let elapsed = ms - self.epoch_ms;
        assert!(
            elapsed < 1 << TIMESTAMP_BITS,
            "{elapsed} ms since the epoch does not fit in the timestamp's {TIMESTAMP_BITS} bits"
        );
        self.last = Some((ms, sequence));
        Ok(elapsed << (WORKER_BITS + SEQUENCE_BITS)
            | u64::from(self.worker) << SEQUENCE_BITS
            | u64::from(sequence))
    }
}

/// Splits `id` (made with epoch `epoch_ms`) into its fields.
pub fn decode(id: u64, epoch_ms: u64) -> Parts {
    Parts {
        unix_ms: (id >> (WORKER_BITS + SEQUENCE_BITS)) + epoch_ms,
        worker: ((id >> SEQUENCE_BITS) & ((1 << WORKER_BITS) - 1)) as u16,
        sequence: (id & ((1 << SEQUENCE_BITS) - 1)) as u16,
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Workers in the fleet; worker w's clock runs w × SKEW_MS ahead of true time.
const WORKERS: u16 = 4;
const SKEW_MS: u64 = 3;
/// How far the last worker's clock steps back halfway through.
const STEP_BACK_MS: u64 = 40;
/// Requests per worker per millisecond, and worker 0's one-off burst.
const IDS_PER_MS: u32 = 100;
const BURST: u32 = 20_000;
const DURATION_MS: u64 = 1_000;

fn main() {
    let knobs = FleetKnobs {
        workers: WORKERS,
        skew_ms: SKEW_MS,
        step_back_ms: STEP_BACK_MS,
        ids_per_ms: IDS_PER_MS,
        burst: BURST,
        duration_ms: DURATION_MS,
    };
    let make = |worker, clock| Snowflake::new(worker, TWITTER_EPOCH_MS, clock);
    let next = |g: &mut Snowflake<StepClock>| g.next_id().map_err(|w| w.until_ms);
    fleet_lab(knobs, make, next, |id| decode(id, TWITTER_EPOCH_MS).unix_ms);
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::RngExt;

    use super::*;

    const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
    const T: u64 = TWITTER_EPOCH_MS + 1_000;

    fn generator(worker: u16, at: u64) -> (StepClock, Snowflake<StepClock>) {
        let clock = StepClock::at(at);
        (
            clock.clone(),
            Snowflake::new(worker, TWITTER_EPOCH_MS, clock),
        )
    }

    fn parts(id: u64) -> (u64, u16, u16) {
        let p = decode(id, TWITTER_EPOCH_MS);
        (p.unix_ms, p.worker, p.sequence)
    }

    #[test]
    fn an_id_packs_41_bits_of_time_10_of_worker_and_12_of_sequence() {
        let (_clock, mut sf) = generator(5, T);
        let expected = 1_000 << 22 | 5 << 12;
        assert_eq!(
            sf.next_id(),
            Ok(expected),
            "1000 ms after the epoch, worker 5, sequence 0"
        );
        assert_eq!(parts(expected), (T, 5, 0), "decode undoes the packing");
        // Discord's documentation: this id is 2016-04-30T11:18:25.796Z, worker 1 / process 0 (its
        // two 5-bit halves of our 10-bit worker id, so 32), increment 7.
        let discord = Parts {
            unix_ms: 1_462_015_105_796,
            worker: 32,
            sequence: 7,
        };
        assert_eq!(decode(175_928_847_299_117_063, DISCORD_EPOCH_MS), discord);
        let mut sf = Snowflake::new(32, DISCORD_EPOCH_MS, StepClock::at(discord.unix_ms));
        assert_eq!(
            sf.next_id(),
            Ok(175_928_847_299_117_063 - 7),
            "Discord's epoch, worker 32, at that millisecond: sequence 0. The epoch is a parameter"
        );
    }

    #[test]
    fn ids_in_one_millisecond_count_up_the_sequence() {
        let (_clock, mut sf) = generator(7, T);
        let ids: Vec<u64> = (0..3).map(|_| sf.next_id().unwrap()).collect();
        let seqs: Vec<u16> = ids.iter().map(|&id| parts(id).2).collect();
        assert_eq!(
            seqs,
            [0, 1, 2],
            "one millisecond, three ids: sequence 0, 1, 2"
        );
        assert!(ids.is_sorted(), "and the ids increase");
    }

    #[test]
    fn the_4097th_id_in_a_millisecond_waits_for_the_next_millisecond_instead_of_wrapping() {
        let (clock, mut sf) = generator(1, T);
        let ids: Vec<u64> = (0..4096).map(|_| sf.next_id().unwrap()).collect();
        assert_eq!(
            parts(ids[4095]),
            (T, 1, 4095),
            "4096 ids fit in one millisecond"
        );
        for _ in 0..2 {
            assert_eq!(
                sf.next_id(),
                Err(Wait { until_ms: T + 1 }),
                "the sequence is used up: wrapping to 0 would repeat the first id, so the \
                 request must wait for the next millisecond (and keeps being refused until then)"
            );
        }
        clock.advance(1);
        let next = sf.next_id().unwrap();
        assert_eq!(
            parts(next),
            (T + 1, 1, 0),
            "a new millisecond starts the sequence at 0"
        );
        assert!(next > ids[4095]);
    }

    #[test]
    fn a_clock_that_steps_back_is_refused_until_it_catches_up_and_nothing_repeats() {
        let (clock, mut sf) = generator(3, T);
        let a = sf.next_id().unwrap();
        let b = sf.next_id().unwrap();
        clock.step_back(10);
        assert_eq!(
            sf.next_id(),
            Err(Wait { until_ms: T }),
            "the clock went back 10 ms: ids of that time could collide with ids already issued \
             (or break the order), so refuse until the clock reads the last id's millisecond"
        );
        clock.advance(9);
        assert_eq!(sf.next_id(), Err(Wait { until_ms: T }), "still 1 ms behind");
        clock.advance(1);
        let c = sf.next_id().unwrap();
        assert_eq!(
            parts(c),
            (T, 3, 2),
            "back at the last id's millisecond: the sequence goes on"
        );
        assert!(a < b && b < c);
        // Out of sequence numbers when the clock steps back: the first free slot is a ms later.
        for _ in 3..4096 {
            sf.next_id().unwrap();
        }
        clock.step_back(5);
        assert_eq!(
            sf.next_id(),
            Err(Wait { until_ms: T + 1 }),
            "no sequence left at {T}"
        );
    }

    #[test]
    fn after_an_idle_gap_a_burst_gets_a_whole_millisecond_of_sequence() {
        let (clock, mut sf) = generator(9, T);
        for _ in 0..100 {
            sf.next_id().unwrap();
        }
        clock.advance(40);
        for seq in 0..4096 {
            let id = sf
                .next_id()
                .expect("a new millisecond has all 4096 sequence numbers");
            assert_eq!(
                parts(id),
                (T + 40, 9, seq),
                "the sequence restarts at 0 in a new ms"
            );
        }
    }

    #[test]
    fn the_highest_worker_id_fits_and_reaches_the_id() {
        let (_clock, mut sf) = generator(1023, T);
        assert_eq!(parts(sf.next_id().unwrap()), (T, 1023, 0));
    }

    #[test]
    #[should_panic(expected = "worker id")]
    fn a_worker_id_of_1024_does_not_fit_in_10_bits() {
        generator(1024, T);
    }

    #[test]
    fn a_clock_before_the_epoch_waits_for_the_epoch() {
        let (clock, mut sf) = generator(0, TWITTER_EPOCH_MS - 5);
        assert_eq!(
            sf.next_id(),
            Err(Wait {
                until_ms: TWITTER_EPOCH_MS
            })
        );
        clock.set(TWITTER_EPOCH_MS);
        assert_eq!(
            sf.next_id(),
            Ok(0),
            "at the epoch, worker 0, sequence 0: the id is 0"
        );
    }

    #[test]
    #[should_panic(expected = "41 bits")]
    fn time_past_the_41_bit_range_is_an_error_not_a_wrapped_id() {
        // 2^41 ms is about 69.7 years: Twitter's ids run out in 2080.
        generator(0, TWITTER_EPOCH_MS + (1 << 41)).1.next_id().ok();
    }

    #[test]
    fn issues_exactly_what_a_reference_generator_does_over_random_clocks() {
        const EPOCHS: [u64; 4] = [0, TWITTER_EPOCH_MS, DISCORD_EPOCH_MS, 1_700_000_000_000];
        sdlings_kit::property::for_seeds(100, |rng| {
            let epoch = EPOCHS[rng.random_range(0..4)];
            let worker: u16 = if rng.random() {
                rng.random_range(0..1024)
            } else {
                1023
            };
            let clock = StepClock::at(epoch + rng.random_range(0..3));
            let mut sf = Snowflake::new(worker, epoch, clock.clone());
            // The reference: the (ms, sequence) of the last id issued.
            let mut last: Option<(u64, u16)> = None;
            let (mut seen, mut last_id) = (HashSet::new(), None);
            // One case in five has a burst that uses up a millisecond's sequence numbers.
            let burst_at = if rng.random_range(0..5) == 0 {
                rng.random_range(0..60)
            } else {
                60
            };
            for step in 0..60 {
                match rng.random_range(0..10) {
                    0..4 => clock.advance(rng.random_range(1..3)),
                    4 => clock.advance(rng.random_range(10..1_000)),
                    5 => clock.step_back(rng.random_range(1..4).min(clock.now_ms() - epoch)),
                    _ => {}
                }
                let calls = if step == burst_at {
                    4_100
                } else {
                    rng.random_range(1..6)
                };
                for _ in 0..calls {
                    let now = clock.now_ms();
                    let expected = match last {
                        Some((ms, 4095)) if now <= ms => Err(Wait { until_ms: ms + 1 }),
                        Some((ms, _)) if now < ms => Err(Wait { until_ms: ms }),
                        Some((ms, seq)) if now == ms => Ok((now, seq + 1)),
                        _ => Ok((now, 0)),
                    };
                    let actual = sf.next_id();
                    let why = || {
                        format!(
                            "epoch {epoch}, worker {worker}, step {step}: last id (ms, seq) {last:?}, clock {now}"
                        )
                    };
                    match expected {
                        Err(wait) => assert_eq!(actual, Err(wait), "{}", why()),
                        Ok((ms, seq)) => {
                            let id = actual.unwrap_or_else(|w| panic!("{}: refused {w:?}", why()));
                            let want = Parts {
                                unix_ms: ms,
                                worker,
                                sequence: seq,
                            };
                            assert_eq!(decode(id, epoch), want, "{}", why());
                            assert!(seen.insert(id), "{}: {id} was issued before", why());
                            assert!(last_id < Some(id), "{}: ids must increase", why());
                            (last, last_id) = (Some((ms, seq)), Some(id));
                        }
                    }
                }
            }
        });
    }
}
