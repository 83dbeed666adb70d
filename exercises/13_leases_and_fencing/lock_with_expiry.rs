// Lock with expiry — the Redis recipe: SET key value NX PX ttl, and release by compare-and-delete.
//
// A lock in Redis is a key: whoever sets it first holds the lock, and a time to live frees it if
// the holder crashes. The trap is the release. A holder that stalled (a GC pause, a slow call)
// past the TTL has lost the lock, someone else has taken it, and a plain `DEL` now deletes THEIR
// lock: a third client walks in, and two do the "exclusive" work at once. The Redis docs' answer:
// store a value unique to this acquisition, and delete the key only if it still holds that value,
// in one step on the server (their Lua script; Valkey's DELIFEQ; here `Cmd::DelIfEq`).
//
// Build `Locker::acquire` (one attempt) and `Locker::release`. The property: over many runs of
// clients that sometimes hold the lock longer than its TTL, no client deletes or replaces a lock
// that another client set and that has not expired; `release` says whether the lock was still
// ours; a crashed holder's lock frees itself after the TTL.
//
// Lab: clients contend for one lock. Turn the longest hold past 1.0 × TTL and watch how many
// releases find another client's lock — each would have been freed by a plain DEL.

use std::time::Duration;

#[allow(unused_imports)] // yours to use
use rand::RngExt;
use rand::rngs::StdRng;
#[allow(unused_imports)] // yours to use
use sdlings_kit::leases::redis::{self, Cmd, DistLock, Lock, Redis, Reply, Setup};

// ---- Your part -------------------------------------------------------------------------------

#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct Locker {
    redis: Redis,
    /// This client's random source (seeded: same seed, same run).
    rng: StdRng,
}

impl Locker {
    pub fn new(redis: Redis, rng: StdRng) -> Self {
        Locker { redis, rng }
    }
}

impl DistLock for Locker {
    async fn acquire(&mut self, key: u64, ttl: Duration) -> Option<Lock> {
        todo!("one attempt to take the lock on key {key} for {ttl:?}")
    }

    async fn release(&mut self, lock: &Lock) -> bool {
        todo!("release {lock:?} if it is still ours, and say whether it was")
    }

    fn redis(&self) -> &Redis {
        &self.redis
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const CLIENTS: usize = 3;
const TTL_MS: u64 = 100;
/// The longest hold in the table's last row, in TTLs.
const LONGEST_HOLD: f64 = 2.0;
const RUNS: u64 = 40;

fn main() {
    let setup = Setup {
        clients: CLIENTS,
        ttl: Duration::from_millis(TTL_MS),
        ..Setup::default()
    };
    let holds = [0.5, 1.0, 1.5, LONGEST_HOLD];
    redis::lab(&setup, &holds, RUNS, Locker::new);
}

#[cfg(test)]
mod tests {
    use sdlings_kit::cluster::{Fault, FaultPlan};
    use sdlings_kit::workload::seeded_rng;

    use super::*;

    const SEEDS: u64 = 100;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Client `c`'s locker, its random values seeded with `k`.
    fn locker(k: u64, c: sdlings_kit::cluster::Client<redis::RedisMsg>) -> Locker {
        Locker::new(Redis::new(c), seeded_rng(k))
    }

    async fn get(lock: &Locker, key: u64) -> Option<u64> {
        match lock.redis().call(Cmd::Get { key }).await {
            Some(Reply::Value(v)) => v,
            other => panic!("GET answers a value, got {other:?}"),
        }
    }

    #[test]
    fn one_client_holds_the_lock_until_it_releases_it() {
        let mut cluster = redis::cluster(1);
        cluster.client(|c| async move {
            let mut a = locker(1, c);
            let held = a.acquire(5, ms(1_000)).await.expect("key 5 is free");
            assert_eq!(held.key, 5);
            assert_eq!(
                get(&a, 5).await,
                Some(held.value),
                "the lock is the key, with our value"
            );
            a.redis().sleep(ms(100)).await;
            assert!(
                a.release(&held).await,
                "the lock was still ours: release says so"
            );
            assert_eq!(get(&a, 5).await, None, "and the key is gone");
        });
        cluster.client(|c| async move {
            let mut b = locker(2, c);
            b.redis().sleep(ms(40)).await;
            assert_eq!(b.acquire(5, ms(1_000)).await, None, "client 1 holds key 5");
            b.redis().sleep(ms(160)).await;
            let held = b.acquire(5, ms(1_000)).await;
            assert!(held.is_some(), "released: the next client takes it");
        });
        assert!(cluster.run(), "the clients finish");
    }

    #[test]
    fn a_crashed_holders_lock_frees_itself_after_the_ttl() {
        let mut cluster = redis::cluster(2);
        let taken = std::rc::Rc::new(std::cell::Cell::new(None));
        let set = std::rc::Rc::clone(&taken);
        cluster.client(|c| async move {
            let mut a = locker(1, c);
            a.acquire(1, ms(100)).await.expect("free");
            set.set(Some(a.redis().now()));
            // ... and never releases it.
        });
        cluster.client(|c| async move {
            let mut b = locker(2, c);
            b.redis().sleep(ms(40)).await;
            assert_eq!(b.acquire(1, ms(100)).await, None, "held for 100 ms");
            // The server set the key before client 1's acquire returned: 100 ms after that
            // return, the key has surely expired.
            let at = taken.get().expect("client 1 took the lock within 40 ms") + ms(100);
            b.redis().sleep(at.saturating_sub(b.redis().now())).await;
            assert!(
                b.acquire(1, ms(100)).await.is_some(),
                "the holder vanished: its lock must expire after the TTL it asked for (PX), \
                 or nobody gets it again in time; it was set before {:?}, asked again at {at:?}",
                at - ms(100)
            );
        });
        assert!(cluster.run());
    }

    #[test]
    fn an_acquire_that_gets_no_answer_is_not_a_lock() {
        let mut cluster = redis::cluster(6);
        // The server stops for 300 ms (a GC pause), longer than a call waits for its reply.
        let pause = Fault::Pause(0, ms(300));
        cluster.faults(FaultPlan::new().at(Duration::ZERO, pause));
        cluster.client(|c| async move {
            let mut a = locker(1, c);
            assert_eq!(
                a.acquire(3, ms(1_000)).await,
                None,
                "no reply came: the SET may or may not have run, so the lock is not ours to use \
                 (if it was set, it expires)"
            );
        });
        assert!(cluster.run());
    }

    #[test]
    fn a_client_whose_lock_expired_cannot_release_the_new_owners_lock() {
        let mut cluster = redis::cluster(3);
        cluster.client(|c| async move {
            let mut a = locker(1, c);
            let held = a.acquire(0, ms(100)).await.expect("free");
            a.redis().sleep(ms(250)).await; // a GC pause, longer than the TTL
            assert!(
                !a.release(&held).await,
                "our lock expired and client 2 took it: release must report false"
            );
        });
        cluster.client(|c| async move {
            let mut b = locker(2, c);
            b.redis().sleep(ms(150)).await;
            let held = b
                .acquire(0, ms(1_000))
                .await
                .expect("client 1's lock expired");
            b.redis().sleep(ms(200)).await;
            assert_eq!(
                get(&b, 0).await,
                Some(held.value),
                "client 1's late release must leave client 2's lock alone"
            );
            assert!(b.release(&held).await);
        });
        assert!(cluster.run());
    }

    #[test]
    fn a_late_release_of_an_old_lock_does_not_free_the_same_clients_new_lock() {
        let mut cluster = redis::cluster(4);
        cluster.client(|c| async move {
            let mut a = locker(1, c);
            let old = a.acquire(0, ms(100)).await.expect("free");
            a.redis().sleep(ms(150)).await;
            let new = a.acquire(0, ms(1_000)).await.expect("the old lock expired");
            assert_ne!(
                old.value, new.value,
                "each acquisition stores its own value"
            );
            assert!(!a.release(&old).await, "the old lock is gone");
            assert_eq!(
                get(&a, 0).await,
                Some(new.value),
                "releasing the old lock must not free the new one (a value per client would)"
            );
        });
        assert!(cluster.run());
    }

    #[test]
    fn random_values_differ_between_clients_and_acquisitions() {
        let mut cluster = redis::cluster(5);
        let values = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        for k in 0..3 {
            let values = std::rc::Rc::clone(&values);
            cluster.client(move |c| async move {
                // All three at once, on keys of their own.
                let mut l = locker(k, c);
                for key in 0..3 {
                    let held = l.acquire(key + 10 * k, ms(50)).await.expect("free keys");
                    values.borrow_mut().push(held.value);
                    assert!(l.release(&held).await);
                }
            });
        }
        assert!(cluster.run());
        let mut values = values.borrow().clone();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), 9, "nine acquisitions, nine different values");
    }

    #[test]
    fn no_client_frees_or_replaces_another_clients_live_lock_under_contention() {
        sdlings_kit::property::for_seeds(SEEDS, |rng| {
            let seed = rng.random();
            let record = redis::contend(&Setup::default(), seed, Locker::new);
            if let Some(event) = record.violations().first() {
                panic!(
                    "{event:?}: a client deleted or overwrote a lock set by another client that \
                     had not expired. Set only if absent, and delete only if the key still holds \
                     your own value, in one command. All events: {:?}",
                    record.events
                );
            }
            assert!(record.acquired >= 5, "the lock changes hands: {record:?}");
            assert!(
                record.released > 0,
                "holds shorter than the TTL end with a release that finds the lock: {record:?}"
            );
        });
    }
}
