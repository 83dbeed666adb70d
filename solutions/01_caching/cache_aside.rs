// Cache-aside — the read and write paths of the most common caching pattern.
//
// Build `CachedRepo`: a cache *beside* the database. A read checks the cache; on a miss it loads
// the row from the database and caches it — "no such row" too (negative caching), so a flood of
// unknown ids does not all reach the database. Errors are never cached. A write goes to the
// database and then *deletes* the cache entry, even if the database returned an error (a timeout
// may still have committed). Why delete rather than update: two concurrent writers can refill
// the cache in the opposite order to their commits, leaving the older value cached for good; a
// delete is idempotent, the next read loads what actually committed, and rows that are written
// but rarely read stay out of the cache.
//
// Why it matters: this is how most services put Redis or Memcached in front of PostgreSQL or
// MySQL (Facebook's memcache paper calls it a look-aside cache). In production each entry also
// gets a TTL (previous exercise), a short one for negative entries, as a safety net.
//
// Lab (runs once the tests pass): turn WRITE_PERCENTS. Read-heavy traffic gets a high hit ratio
// and saves most database reads; every write throws an entry away, so the hit ratio and the
// savings fall as writes grow. Stale reads stay at 0 whatever the mix: that is what
// invalidation buys.

use std::collections::HashMap;
use std::time::Duration;

use sdlings_kit::lab::{Table, bar_chart};
use sdlings_kit::workload::{ZipfKeys, seeded_rng};

use rand::RngExt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbError {
    /// The call was refused: nothing happened.
    Unavailable,
    /// No answer in time: the operation may or may not have been applied.
    Timeout,
}

/// The storage the repository talks to (think: a SQL table of users).
pub trait Database {
    /// `Ok(None)` when no row has this id.
    fn find(&mut self, id: u64) -> Result<Option<User>, DbError>;
    /// Inserts or replaces the row with `user.id`.
    fn upsert(&mut self, user: User) -> Result<(), DbError>;
    fn delete(&mut self, id: u64) -> Result<(), DbError>;
}

/// Given: an in-memory database that counts its queries and can be told to fail.
#[derive(Debug, Default)]
pub struct FakeDb {
    rows: HashMap<u64, User>,
    queries: u64,
    writes: u64,
    /// Failures to inject into the next calls, in order.
    failures: Vec<DbError>,
}

impl FakeDb {
    /// What one query costs the caller waiting for it (the lab turns counts into latency).
    pub const QUERY_TIME: Duration = Duration::from_millis(5);

    pub fn with_rows(rows: impl IntoIterator<Item = User>) -> Self {
        FakeDb {
            rows: rows.into_iter().map(|u| (u.id, u)).collect(),
            ..FakeDb::default()
        }
    }

    /// Reads attempted (`find` calls), failed ones included.
    pub fn queries(&self) -> u64 {
        self.queries
    }

    /// Writes attempted (`upsert` and `delete` calls), failed ones included.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// The next call fails with `Unavailable` and changes nothing.
    pub fn fail_next_call(&mut self) {
        self.failures.push(DbError::Unavailable);
    }

    /// The next call is applied, but the caller gets `Timeout` (the reply was lost).
    pub fn time_out_next_call_after_applying_it(&mut self) {
        self.failures.push(DbError::Timeout);
    }

    fn injected_failure(&mut self) -> Option<DbError> {
        (!self.failures.is_empty()).then(|| self.failures.remove(0))
    }
}

impl Database for FakeDb {
    fn find(&mut self, id: u64) -> Result<Option<User>, DbError> {
        self.queries += 1;
        match self.injected_failure() {
            Some(DbError::Unavailable) => Err(DbError::Unavailable),
            Some(DbError::Timeout) => Err(DbError::Timeout),
            None => Ok(self.rows.get(&id).cloned()),
        }
    }

    fn upsert(&mut self, user: User) -> Result<(), DbError> {
        self.writes += 1;
        match self.injected_failure() {
            Some(DbError::Unavailable) => Err(DbError::Unavailable),
            failure => {
                self.rows.insert(user.id, user);
                failure.map_or(Ok(()), Err)
            }
        }
    }

    fn delete(&mut self, id: u64) -> Result<(), DbError> {
        self.writes += 1;
        match self.injected_failure() {
            Some(DbError::Unavailable) => Err(DbError::Unavailable),
            failure => {
                self.rows.remove(&id);
                failure.map_or(Ok(()), Err)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads answered from the cache (a cached "missing" included).
    pub hits: u64,
    /// Reads that had to ask the database (failed ones included).
    pub misses: u64,
}

impl CacheStats {
    /// hits / (hits + misses); 0.0 before the first read.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

pub struct CachedRepo<D: Database> {
    db: D,
    /// `Some(user)`: the row. `None`: the database said there is no such row (negative entry).
    cache: HashMap<u64, Option<User>>,
    stats: CacheStats,
}

impl<D: Database> CachedRepo<D> {
    pub fn new(db: D) -> Self {
        CachedRepo {
            db,
            cache: HashMap::new(),
            stats: CacheStats::default(),
        }
    }

    pub fn db(&self) -> &D {
        &self.db
    }

    pub fn db_mut(&mut self) -> &mut D {
        &mut self.db
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Whether the cache holds an entry (a row or a "missing") for `id`.
    pub fn is_cached(&self, id: u64) -> bool {
        self.cache.contains_key(&id)
    }

    // ---- Your part -------------------------------------------------------------------------

    /// The user with this id: from the cache if it is there (a hit), else from the database (a
    /// miss), remembering the answer — "no such user" included — for next time. A database
    /// error is returned as is and nothing is cached.
    pub fn get(&mut self, id: u64) -> Result<Option<User>, DbError> {
        if let Some(cached) = self.cache.get(&id) {
            self.stats.hits += 1;
            return Ok(cached.clone());
        }
        self.stats.misses += 1;
        // `?` returns the error before anything is cached: caching a failure as "missing" would
        // hide a row that exists until the next write to it.
        let row = self.db.find(id)?;
        self.cache.insert(id, row.clone());
        Ok(row)
    }

    /// Writes the user to the database, then invalidates its cache entry (also when the write
    /// returned an error).
    pub fn save(&mut self, user: User) -> Result<(), DbError> {
        let id = user.id;
        let result = self.db.upsert(user);
        // After the write, not before: deleting first would let a read slip in between and
        // cache the old row again. And whatever the result: a timeout may have committed.
        self.cache.remove(&id);
        result
    }

    /// Deletes the user from the database, then invalidates its cache entry (also when the
    /// delete returned an error).
    pub fn delete(&mut self, id: u64) -> Result<(), DbError> {
        let result = self.db.delete(id);
        self.cache.remove(&id);
        result
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Share of operations that are writes, one run per value.
const WRITE_PERCENTS: [u64; 6] = [0, 1, 5, 10, 25, 50];
const KEY_SPACE: usize = 2_000;
const SKEW: f64 = 1.0;
const OPERATIONS: usize = 50_000;
/// A cache round trip (an in-process map is ~0; Redis over the network is ~0.2 ms).
const CACHE_TIME: Duration = Duration::from_micros(200);
const SEED: u64 = 11;

fn user(id: u64, version: u64) -> User {
    User {
        id,
        name: format!("user {id} v{version}"),
    }
}

fn main() {
    println!(
        "Cache-aside over a database: {OPERATIONS} operations on {KEY_SPACE} ids (skew {SKEW:.1}; \
         every 10th id has no row); a query costs {:?}, a cache lookup {:?}\n",
        FakeDb::QUERY_TIME,
        CACHE_TIME
    );
    let mut table = Table::new(&[
        "writes",
        "reads",
        "hit ratio",
        "DB reads",
        "DB reads saved",
        "stale reads",
        "mean read latency",
    ]);
    let mut bars = Vec::new();
    for &write_percent in &WRITE_PERCENTS {
        // The truth: what the database holds, kept by the lab to check every answer.
        let mut truth: HashMap<u64, User> = (0..KEY_SPACE as u64)
            .filter(|id| id % 10 != 9)
            .map(|id| (id, user(id, 0)))
            .collect();
        let mut repo = CachedRepo::new(FakeDb::with_rows(truth.values().cloned()));
        let mut keys = ZipfKeys::new(KEY_SPACE, SKEW, SEED);
        let mut mix = seeded_rng(SEED + 1);
        let (mut reads, mut stale) = (0u64, 0u64);
        for version in 1..=OPERATIONS as u64 {
            let id = keys.next_key();
            if mix.random_range(0..100) < write_percent {
                let new = user(id, version);
                repo.save(new.clone())
                    .expect("the lab's database never fails");
                truth.insert(id, new);
            } else {
                reads += 1;
                let got = repo.get(id).expect("the lab's database never fails");
                if got.as_ref() != truth.get(&id) {
                    stale += 1;
                }
            }
        }
        let db_reads = repo.db().queries();
        // Every read pays the cache lookup; misses also pay the query.
        let latency = CACHE_TIME.as_secs_f64()
            + FakeDb::QUERY_TIME.as_secs_f64() * db_reads as f64 / reads.max(1) as f64;
        table.row(&[
            format!("{write_percent}%"),
            reads.to_string(),
            format!("{:.1}%", repo.stats().hit_ratio() * 100.0),
            db_reads.to_string(),
            (reads - db_reads).to_string(),
            stale.to_string(),
            format!("{:.2} ms", latency * 1000.0),
        ]);
        let ratio = (repo.stats().hit_ratio() * 1000.0).round() / 10.0;
        bars.push((format!("{write_percent}% writes"), ratio));
    }
    table.print();
    println!("\nhit ratio (%) by write share\n{}", bar_chart(&bars, 40));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with_users(ids: &[u64]) -> CachedRepo<FakeDb> {
        CachedRepo::new(FakeDb::with_rows(ids.iter().map(|&id| user(id, 0))))
    }

    #[test]
    fn first_read_is_a_miss_that_loads_from_the_database() {
        let mut repo = repo_with_users(&[1, 2]);
        assert_eq!(repo.get(1), Ok(Some(user(1, 0))));
        assert_eq!(
            repo.db().queries(),
            1,
            "an empty cache must ask the database"
        );
        assert_eq!(
            repo.stats(),
            CacheStats { hits: 0, misses: 1 },
            "the first read of a key is a miss"
        );
        assert!(repo.is_cached(1), "a miss fills the cache for next time");
    }

    #[test]
    fn repeated_reads_are_hits_that_never_reach_the_database() {
        let mut repo = repo_with_users(&[1]);
        for _ in 0..100 {
            assert_eq!(repo.get(1), Ok(Some(user(1, 0))));
        }
        assert_eq!(
            repo.db().queries(),
            1,
            "100 reads of one key should cost one database query: the first one"
        );
        assert_eq!(
            repo.stats(),
            CacheStats {
                hits: 99,
                misses: 1
            },
            "one miss to load, then 99 hits"
        );
    }

    #[test]
    fn stats_count_every_hit_and_miss_exactly() {
        let mut repo = repo_with_users(&[1, 2, 3]);
        for id in [1, 1, 2, 1, 2, 3] {
            repo.get(id).unwrap();
        }
        assert_eq!(
            repo.stats(),
            CacheStats { hits: 3, misses: 3 },
            "reads 1,1,2,1,2,3: the first read of each id is a miss, the rest are hits"
        );
        assert_eq!(repo.stats().hit_ratio(), 0.5, "3 hits out of 6 reads");
        assert_eq!(CacheStats::default().hit_ratio(), 0.0, "no reads, no ratio");
    }

    #[test]
    fn a_read_after_a_write_returns_the_new_value() {
        let mut repo = repo_with_users(&[1]);
        repo.get(1).unwrap(); // cached: v0
        repo.save(user(1, 1)).unwrap();
        assert_eq!(
            repo.get(1),
            Ok(Some(user(1, 1))),
            "v0 was cached before the write: a write must invalidate it, or reads stay stale"
        );
    }

    #[test]
    fn a_write_deletes_the_cache_entry_instead_of_updating_it() {
        let mut repo = repo_with_users(&[1]);
        repo.get(1).unwrap();
        repo.save(user(1, 1)).unwrap();
        assert!(
            !repo.is_cached(1),
            "after a write the entry must be gone, not overwritten: only a read refills it"
        );
        repo.save(user(2, 0)).unwrap();
        assert!(!repo.is_cached(2), "writes never fill the cache");
        assert_eq!(repo.db().writes(), 2, "every write goes to the database");
        let queries = repo.db().queries();
        repo.get(1).unwrap();
        assert_eq!(
            repo.db().queries(),
            queries + 1,
            "the read after a write is a miss and loads the committed row"
        );
    }

    #[test]
    fn a_deleted_row_is_not_served_from_the_cache() {
        let mut repo = repo_with_users(&[1]);
        repo.get(1).unwrap();
        repo.delete(1).unwrap();
        assert_eq!(
            repo.get(1),
            Ok(None),
            "the row was deleted; the cached copy must go too"
        );
    }

    #[test]
    fn a_missing_row_is_cached_as_missing() {
        let mut repo = repo_with_users(&[1]);
        assert_eq!(repo.get(404), Ok(None), "no user 404 in the database");
        assert_eq!(repo.get(404), Ok(None), "still no user 404");
        assert_eq!(
            repo.db().queries(),
            1,
            "the second lookup of an unknown id should be answered by the cache (negative \
             caching), or a flood of bad ids all reaches the database"
        );
        assert_eq!(
            repo.stats(),
            CacheStats { hits: 1, misses: 1 },
            "a cached \"missing\" answers the read: it is a hit"
        );
    }

    #[test]
    fn creating_a_row_invalidates_its_cached_absence() {
        let mut repo = repo_with_users(&[]);
        assert_eq!(repo.get(7), Ok(None), "user 7 does not exist yet");
        repo.save(user(7, 1)).unwrap();
        assert_eq!(
            repo.get(7),
            Ok(Some(user(7, 1))),
            "\"missing\" was cached before the row was created; the write must invalidate it"
        );
    }

    #[test]
    fn database_errors_are_returned_and_never_cached() {
        let mut repo = repo_with_users(&[1]);
        repo.db_mut().fail_next_call();
        assert_eq!(
            repo.get(1),
            Err(DbError::Unavailable),
            "the caller must see the error"
        );
        assert!(
            !repo.is_cached(1),
            "an error is not an answer: caching it (e.g. as \"missing\") would hide a row that \
             exists"
        );
        assert_eq!(
            repo.get(1),
            Ok(Some(user(1, 0))),
            "the next read retries the database"
        );
        assert_eq!(repo.db().queries(), 2, "the failed read and the retry");
        assert_eq!(
            repo.stats(),
            CacheStats { hits: 0, misses: 2 },
            "a read that failed still went past the cache: it is a miss"
        );
    }

    #[test]
    fn a_write_that_times_out_may_have_committed_so_it_still_invalidates() {
        let mut repo = repo_with_users(&[1]);
        repo.get(1).unwrap();
        repo.db_mut().time_out_next_call_after_applying_it();
        assert_eq!(
            repo.save(user(1, 1)),
            Err(DbError::Timeout),
            "the error is returned"
        );
        assert_eq!(
            repo.get(1),
            Ok(Some(user(1, 1))),
            "the write committed but its reply was lost; keeping v0 cached would serve it \
             forever. Invalidate whatever the result"
        );
    }

    #[test]
    fn a_refused_write_changes_nothing_but_is_reported() {
        let mut repo = repo_with_users(&[1]);
        repo.get(1).unwrap();
        repo.db_mut().fail_next_call();
        assert_eq!(
            repo.save(user(1, 1)),
            Err(DbError::Unavailable),
            "the error is returned"
        );
        assert_eq!(
            repo.get(1),
            Ok(Some(user(1, 0))),
            "the database still holds v0"
        );
    }

    #[test]
    fn a_delete_that_times_out_still_invalidates() {
        let mut repo = repo_with_users(&[1]);
        repo.get(1).unwrap();
        repo.db_mut().time_out_next_call_after_applying_it();
        assert_eq!(
            repo.delete(1),
            Err(DbError::Timeout),
            "the error is returned"
        );
        assert_eq!(
            repo.get(1),
            Ok(None),
            "the delete committed; the row must not be served"
        );
    }
}
