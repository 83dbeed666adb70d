//! The shared allocator of topic 19's `code_allocation`: one counter key in a versioned store
//! (etcd, ZooKeeper, a database row with a version column), read by every shortener server and
//! changed only through compare-and-set, as in topic 13's `cas_election`.
//!
//! The key holds the first id nobody has leased yet. A server leases the range
//! `[value, value + n)` by writing `value + n` on the version it read. [`CounterStore::with_rival`]
//! adds another server (not yours) that leases ranges too, sometimes between your read and your
//! write, so a write that is not conditional on the version collides with it.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use rand::RngExt;
use rand::rngs::StdRng;

/// The key's value and its version (1 when the store starts, +1 on every write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versioned {
    pub value: u64,
    pub version: u64,
}

/// After this many failed compare-and-sets in a row on one version the store stops the program:
/// that version is gone for good, and the caller must read again.
const STALE_RETRIES: u64 = 100;

#[derive(Debug)]
pub struct CounterStore {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    key: Versioned,
    writes: u64,
    stale: (u64, u64),
    rival: Option<Rival>,
}

#[derive(Debug)]
struct Rival {
    rng: StdRng,
    share: f64,
    lease: u64,
    armed: bool,
    ranges: Vec<Range<u64>>,
}

impl CounterStore {
    /// A store whose counter starts at `start` (version 1).
    pub fn new(start: u64) -> Arc<Self> {
        Self::build(start, None)
    }

    /// A store shared with a rival server that, after a share `share` of your reads, leases
    /// `lease` ids for itself before your next write lands. Its ranges: [`Self::rival_ranges`].
    pub fn with_rival(start: u64, rng: StdRng, share: f64, lease: u64) -> Arc<Self> {
        let rival = Rival {
            rng,
            share,
            lease,
            armed: false,
            ranges: Vec::new(),
        };
        Self::build(start, Some(rival))
    }

    fn build(start: u64, rival: Option<Rival>) -> Arc<Self> {
        Arc::new(CounterStore {
            inner: Mutex::new(Inner {
                key: Versioned {
                    value: start,
                    version: 1,
                },
                writes: 0,
                stale: (0, 0),
                rival,
            }),
        })
    }

    /// Reads the key: its value and version.
    pub fn read(&self) -> Versioned {
        let mut inner = self.inner.lock().unwrap();
        if let Some(rival) = inner.rival.as_mut() {
            rival.armed = rival.rng.random_bool(rival.share);
        }
        inner.key
    }

    /// Writes `value` only if the key's version is still `expected_version`. `Ok` holds the key
    /// after the write; `Err` holds the key as it is now (someone else wrote since), unchanged.
    pub fn compare_and_set(
        &self,
        expected_version: u64,
        value: u64,
    ) -> Result<Versioned, Versioned> {
        let mut inner = self.inner.lock().unwrap();
        inner.rival_moves();
        if inner.key.version != expected_version {
            let (version, count) = inner.stale;
            inner.stale = (
                expected_version,
                if version == expected_version {
                    count + 1
                } else {
                    1
                },
            );
            assert!(
                inner.stale.1 < STALE_RETRIES,
                "{STALE_RETRIES} compare-and-sets in a row expected version {expected_version}, \
                 which the key left long ago (it is at {}): a failed compare-and-set means \
                 read again (or use the key it returned), never retry the same version",
                inner.key.version
            );
            return Err(inner.key);
        }
        Ok(inner.write(value))
    }

    /// Writes `value` whatever the version (a plain `SET`). Real stores have it; a lease taken
    /// with it can overwrite a lease someone else took since you read.
    pub fn put(&self, value: u64) -> Versioned {
        let mut inner = self.inner.lock().unwrap();
        inner.rival_moves();
        inner.write(value)
    }

    /// Successful writes so far (compare-and-sets that won, and puts).
    pub fn writes(&self) -> u64 {
        self.inner.lock().unwrap().writes
    }

    /// The ranges the rival server leased, in order.
    pub fn rival_ranges(&self) -> Vec<Range<u64>> {
        let inner = self.inner.lock().unwrap();
        inner
            .rival
            .as_ref()
            .map_or_else(Vec::new, |r| r.ranges.clone())
    }

    /// The key as it is now (for tests and labs: no rival move).
    pub fn peek(&self) -> Versioned {
        self.inner.lock().unwrap().key
    }
}

impl Inner {
    fn write(&mut self, value: u64) -> Versioned {
        self.key = Versioned {
            value,
            version: self.key.version + 1,
        };
        self.writes += 1;
        self.key
    }

    /// If the rival was armed by the last read, it leases its range now, before the caller's write.
    fn rival_moves(&mut self) {
        let Some(rival) = self.rival.as_mut() else {
            return;
        };
        if !std::mem::take(&mut rival.armed) {
            return;
        }
        let start = self.key.value;
        let end = start + rival.lease;
        rival.ranges.push(start..end);
        self.key = Versioned {
            value: end,
            version: self.key.version + 1,
        };
    }
}

#[cfg(test)]
mod tests {
    use sdlings_kit::workload::seeded_rng;

    use super::*;

    #[test]
    fn compare_and_set_wins_once_per_version() {
        let store = CounterStore::new(100);
        let v = store.read();
        assert_eq!(
            v,
            Versioned {
                value: 100,
                version: 1
            }
        );
        assert_eq!(
            store.compare_and_set(1, 200),
            Ok(Versioned {
                value: 200,
                version: 2
            })
        );
        assert_eq!(
            store.compare_and_set(1, 300),
            Err(Versioned {
                value: 200,
                version: 2
            })
        );
        assert_eq!(store.put(5).version, 3);
        assert_eq!(store.writes(), 2);
    }

    #[test]
    fn the_rival_leases_between_a_read_and_the_next_write() {
        let store = CounterStore::with_rival(0, seeded_rng(1), 1.0, 10);
        let v = store.read();
        assert_eq!(
            store.compare_and_set(v.version, 5),
            Err(Versioned {
                value: 10,
                version: 2
            })
        );
        assert_eq!(store.rival_ranges(), vec![0..10]);
    }

    #[test]
    #[should_panic(expected = "read again")]
    fn retrying_a_dead_version_forever_is_stopped() {
        let store = CounterStore::new(0);
        store.put(1);
        for _ in 0..STALE_RETRIES {
            let _ = store.compare_and_set(1, 2);
        }
    }
}
