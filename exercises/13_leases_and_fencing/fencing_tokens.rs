// Fencing tokens — the storage refuses the writes of a lease holder that has been replaced.
//
// A lease alone cannot stop a holder that has stopped: a process checks its lease, pauses for a
// GC (or its VM is migrated, or its packets sit in a queue), and writes after the lease has moved
// to someone else, who has written too. Kleppmann's fix ("How to do distributed locking", 2016):
// the lock service hands out a fencing token that grows with every new holder (Chubby calls it a
// sequencer; etcd's revision and ZooKeeper's zxid serve), every write carries it, and the
// STORAGE checks it. HBase lost data to exactly this story before it fenced its region servers.
//
// Build `FencedStore`, the storage node's rules. The property: for each resource, a write is
// applied only if no write with a higher token has been applied to that resource before it; a
// holder may write many times under its token; a refusal says which token it lost to and changes
// nothing. Over many runs with writers paused at random, no stale holder's write is applied.
//
// Lab: writers with GC pauses, without fencing and with yours. Turn PAUSE_MS below TTL_MS and
// watch the conflicts vanish even unfenced; turn it up and watch them grow.

use std::collections::BTreeMap;
use std::time::Duration;

use sdlings_kit::leases::fencing::{self, Rejected, Setup, Storage, Write};

// ---- Your part -------------------------------------------------------------------------------

#[derive(Default)]
#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct FencedStore {
    /// resource → the highest token of a write applied to it.
    highest: BTreeMap<u64, u64>,
    /// resource → the value of the last write applied to it.
    values: BTreeMap<u64, u64>,
}

impl Storage for FencedStore {
    fn write(&mut self, write: Write) -> Result<(), Rejected> {
        todo!("apply {write:?}, unless a newer lease holder has written to its resource")
    }

    fn read(&self, resource: u64) -> Option<u64> {
        todo!("the value of the last write applied to resource {resource}")
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const WRITERS: usize = 3;
const TTL_MS: u64 = 150;
/// The longest GC pause; pauses last between a third of it and all of it.
const PAUSE_MS: u64 = 400;
const PAUSES_PER_WRITER: usize = 2;
const RUNS: u64 = 50;

fn main() {
    let setup = Setup {
        writers: WRITERS,
        ttl: Duration::from_millis(TTL_MS),
        pauses: PAUSES_PER_WRITER,
        pause: (
            Duration::from_millis(PAUSE_MS / 3),
            Duration::from_millis(PAUSE_MS),
        ),
        ..Setup::default()
    };
    fencing::lab(&setup, RUNS, FencedStore::default);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDS: u64 = 100;

    fn write(writer: usize, resource: u64, token: u64, value: u64) -> Write {
        Write {
            writer,
            resource,
            token,
            value,
        }
    }

    #[test]
    fn the_first_write_to_a_resource_is_applied_and_read_back() {
        let mut store = FencedStore::default();
        assert_eq!(store.read(7), None, "nothing written yet");
        assert_eq!(store.write(write(2, 7, 1, 70)), Ok(()));
        assert_eq!(store.read(7), Some(70));
        assert_eq!(store.read(8), None, "resource 8 was not written");
    }

    #[test]
    fn a_lower_token_than_one_applied_is_rejected_and_changes_nothing() {
        let mut store = FencedStore::default();
        assert_eq!(store.write(write(3, 0, 2, 20)), Ok(()));
        assert_eq!(
            store.write(write(2, 0, 1, 10)),
            Err(Rejected { highest: 2 }),
            "token 1's lease was replaced by token 2's: its write is stale, and the refusal \
             names the token it lost to"
        );
        assert_eq!(
            store.read(0),
            Some(20),
            "the stale write must not be applied"
        );
    }

    #[test]
    fn a_holder_may_write_several_times_under_the_same_token() {
        let mut store = FencedStore::default();
        for value in [1, 2, 3] {
            assert_eq!(
                store.write(write(2, 0, 5, value)),
                Ok(()),
                "the holder of token 5 writes again: equal tokens are the same lease"
            );
        }
        assert_eq!(store.read(0), Some(3));
    }

    #[test]
    fn a_newer_token_takes_over_and_the_older_one_is_locked_out() {
        let mut store = FencedStore::default();
        assert_eq!(store.write(write(2, 0, 1, 10)), Ok(()));
        assert_eq!(
            store.write(write(3, 0, 2, 20)),
            Ok(()),
            "a newer lease writes"
        );
        assert_eq!(store.write(write(4, 0, 9, 90)), Ok(()), "tokens may skip");
        assert_eq!(
            store.write(write(3, 0, 2, 21)),
            Err(Rejected { highest: 9 })
        );
        assert_eq!(store.read(0), Some(90));
    }

    #[test]
    fn tokens_are_compared_per_resource_not_across_resources() {
        let mut store = FencedStore::default();
        assert_eq!(store.write(write(2, 0, 9, 90)), Ok(()));
        assert_eq!(
            store.write(write(3, 1, 2, 20)),
            Ok(()),
            "resource 1 has its own lease and tokens: token 9 on resource 0 says nothing here"
        );
        assert_eq!(
            store.write(write(3, 0, 3, 30)),
            Err(Rejected { highest: 9 })
        );
        assert_eq!(
            store.write(write(4, 1, 1, 10)),
            Err(Rejected { highest: 2 }),
            "on resource 1 token 1 lost to token 2: the refusal names resource 1's highest token"
        );
        assert_eq!((store.read(0), store.read(1)), (Some(90), Some(20)));
    }

    #[test]
    fn tokens_are_compared_per_resource_not_per_writer() {
        let mut store = FencedStore::default();
        assert_eq!(store.write(write(2, 0, 3, 30)), Ok(()));
        assert_eq!(store.write(write(3, 0, 4, 40)), Ok(()));
        assert_eq!(
            store.write(write(2, 0, 3, 31)),
            Err(Rejected { highest: 4 }),
            "writer 2 wrote with token 3 before, but writer 3 has written with token 4 since: \
             writer 2's lease is gone"
        );
        assert_eq!(store.read(0), Some(40));
    }

    #[test]
    fn a_rejected_write_does_not_lower_the_bar() {
        let mut store = FencedStore::default();
        assert_eq!(store.write(write(2, 0, 5, 50)), Ok(()));
        assert_eq!(
            store.write(write(3, 0, 3, 30)),
            Err(Rejected { highest: 5 })
        );
        assert_eq!(
            store.write(write(4, 0, 4, 40)),
            Err(Rejected { highest: 5 }),
            "token 5 is still the highest applied: the rejected token 3 must not replace it"
        );
        assert_eq!(store.read(0), Some(50));
    }

    #[test]
    fn a_paused_old_holders_late_writes_are_rejected() {
        let log = fencing::gc_pause_story(1, Duration::from_millis(400), FencedStore::default);
        let first_new = log
            .writes
            .iter()
            .position(|(w, _)| w.writer == 3)
            .expect("node 3 takes the expired lease and writes");
        for (w, applied) in &log.writes[first_new..] {
            let expected = w.writer == 3;
            assert_eq!(
                *applied, expected,
                "{w:?}: node 2 (token {}) paused 400 ms, longer than its lease; node 3 took the \
                 lease with a higher token and wrote, so node 2's late writes must be rejected \
                 and node 3's applied. Writes: {:?}",
                log.writes[0].0.token, log.writes
            );
        }
        assert!(
            log.writes[first_new..].iter().any(|(w, _)| w.writer == 2),
            "node 2 writes after waking up: {:?}",
            log.writes
        );
        let last_new = log
            .writes
            .iter()
            .rev()
            .find(|(w, _)| w.writer == 3)
            .unwrap();
        assert_eq!(
            log.last[&0],
            Some(last_new.0.value),
            "node 3's last write stays"
        );
    }

    #[test]
    fn no_stale_write_is_applied_when_writers_pause_at_random() {
        sdlings_kit::property::for_seeds(SEEDS, |rng| {
            let seed = rand::RngExt::random(rng);
            let log = fencing::run(&Setup::default(), seed, FencedStore::default);
            // The reference: per resource, the highest token applied so far, and the last value.
            let mut highest: BTreeMap<u64, u64> = BTreeMap::new();
            let mut values = BTreeMap::new();
            for (i, (w, applied)) in log.writes.iter().enumerate() {
                let top = highest.entry(w.resource).or_insert(0);
                let expected = w.token >= *top;
                assert_eq!(
                    *applied,
                    expected,
                    "write {i} {w:?}: the highest token applied to resource {} before it was \
                     {top}, so it should be {}",
                    w.resource,
                    if expected { "applied" } else { "rejected" }
                );
                if expected {
                    *top = w.token;
                    values.insert(w.resource, w.value);
                }
            }
            for (resource, value) in &log.last {
                assert_eq!(
                    *value,
                    values.get(resource).copied(),
                    "resource {resource} reads the last applied write's value"
                );
            }
        });
    }
}
