// Cache-aside — the read and write paths of the most common caching pattern, with many requests
// in flight at once.
//
// Build `CachedRepo`: a cache *beside* the database, shared by every request. A read checks the
// cache; on a miss it loads the row from the database and caches it — "no such row" too
// (negative caching), so a flood of unknown ids does not all reach the database. Errors are never
// cached. A write goes to the database and, once the database has answered, *deletes* the cache
// entry — even if the answer was an error (a timeout may still have committed). The order is the
// lesson: delete first, and a read that runs while the write is in flight reloads the old row and
// caches it, for good. Delete rather than update: two writers can refill the cache in the
// opposite order to their commits; a delete is idempotent, the next read loads what committed.
//
// Given, in `sdlings_kit::caching::cache_aside`: the `Database` trait and a `FakeDb`, and the
// shared `Cache` (get, set, delete: each one atomic step, like a Redis command).
//
// Why it matters: this is how most services put Redis or Memcached in front of PostgreSQL or
// MySQL (Facebook's memcache paper calls it a demand-filled look-aside cache). In production each
// entry also gets a TTL (previous exercise), a short one for negative entries, as a safety net.
//
// Lab (runs once the tests pass): turn WRITE_PERCENTS and CLIENTS. Every write throws an entry
// away, so the hit ratio and the database reads saved fall as writes grow. With one client
// nothing is ever stale. With many concurrent clients some stale reads remain even in the right
// order: between a write's commit and its delete, readers still hit the old entry; and a read
// that loaded the old row just before the commit can fill the cache just after the delete, where
// it stays wrong until the next write to that row. Closing that race takes leases or versions
// (see the README); a TTL bounds how long it lasts.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sdlings_kit::caching::cache_aside::{
    self as lab, Cache, CacheStats, Database, DbError, FakeDb, User,
};

pub struct CachedRepo<D: Database> {
    db: D,
    cache: Cache,
    /// Reads answered from the cache (a cached "missing" included).
    hits: AtomicU64,
    /// Reads that had to ask the database (failed ones included).
    misses: AtomicU64,
}

// ---- Your part -------------------------------------------------------------------------------

impl<D: Database> CachedRepo<D> {
    /// The user with this id: from the cache if it is there (a hit), else from the database (a
    /// miss), remembering the answer — "no such user" included — for next time. A database
    /// error is returned as is and nothing is cached.
    pub async fn get(&self, id: u64) -> Result<Option<User>, DbError> {
        todo!("look up user {id}")
    }

    /// Writes the user to the database, then, once it has answered, invalidates the user's cache
    /// entry (also when the write returned an error).
    pub async fn save(&self, user: User) -> Result<(), DbError> {
        todo!("save {user:?}")
    }

    /// Deletes the user from the database, then invalidates the user's cache entry (also when
    /// the delete returned an error).
    pub async fn delete(&self, id: u64) -> Result<(), DbError> {
        todo!("delete user {id}")
    }
}

// ---- Given -----------------------------------------------------------------------------------

impl<D: Database> CachedRepo<D> {
    pub fn new(db: D) -> Self {
        CachedRepo {
            db,
            cache: Cache::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn db(&self) -> &D {
        &self.db
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::SeqCst),
            misses: self.misses.load(Ordering::SeqCst),
        }
    }

    /// Whether the cache holds an entry (a row or a "missing") for `id`.
    pub fn is_cached(&self, id: u64) -> bool {
        self.cache.contains(id)
    }

    /// What the cache holds for `id`, without counting a read (for inspection only).
    pub fn cached(&self, id: u64) -> Option<Option<User>> {
        self.cache.get(id)
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Share of operations that are writes, one run per value.
const WRITE_PERCENTS: [u64; 4] = [1, 5, 10, 25];
/// Clients sending requests at the same time, one run per value: 1 is a strictly serial world.
const CLIENTS: [usize; 2] = [1, 50];

fn main() {
    let knobs = lab::Knobs {
        write_percents: WRITE_PERCENTS.to_vec(),
        clients: CLIENTS.to_vec(),
        key_space: 1_000,
        skew: 1.0,
        operations: 10_000,
        // Each leg of a database round trip takes a random 0..=5 ms: 5 ms per query on average.
        one_way: Duration::from_millis(5),
        // A cache round trip (an in-process map is ~0; Redis over the network is ~0.2 ms).
        cache_time: Duration::from_micros(200),
        think_time: Duration::from_millis(5),
        seed: 11,
    };
    lab::run_lab(&knobs, CachedRepo::new);
}

/// The lab drives the repository through this trait (in the kit).
impl lab::LabRepo for CachedRepo<FakeDb> {
    fn read(&self, id: u64) -> impl Future<Output = Result<Option<User>, DbError>> + Send {
        self.get(id)
    }

    fn write(&self, user: User) -> impl Future<Output = Result<(), DbError>> + Send {
        self.save(user)
    }

    fn stats(&self) -> CacheStats {
        CachedRepo::stats(self)
    }

    fn peek(&self, id: u64) -> Option<Option<User>> {
        self.cached(id)
    }

    fn database(&self) -> &FakeDb {
        &self.db
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};

    use rand::RngExt;
    use sdlings_kit::caching::cache_aside::user;
    use sdlings_kit::caching::within;

    use super::*;

    fn repo_with_users(ids: &[u64]) -> CachedRepo<FakeDb> {
        CachedRepo::new(FakeDb::with_rows(ids.iter().map(|&id| user(id, 0))))
    }

    #[tokio::test]
    async fn first_read_is_a_miss_that_loads_from_the_database() {
        let repo = repo_with_users(&[1, 2]);
        assert_eq!(repo.get(1).await, Ok(Some(user(1, 0))));
        let why = "an empty cache must ask the database";
        assert_eq!(repo.db().queries(), 1, "{why}");
        let why = "the first read of a key is a miss";
        assert_eq!(repo.stats(), CacheStats { hits: 0, misses: 1 }, "{why}");
        assert!(repo.is_cached(1), "a miss fills the cache for next time");
    }

    #[tokio::test]
    async fn repeated_reads_are_hits_that_never_reach_the_database() {
        let repo = repo_with_users(&[1]);
        for _ in 0..100 {
            assert_eq!(repo.get(1).await, Ok(Some(user(1, 0))));
        }
        let why = "100 reads of one key should cost one database query: the first one";
        assert_eq!(repo.db().queries(), 1, "{why}");
        assert_eq!(
            repo.stats(),
            CacheStats {
                hits: 99,
                misses: 1
            },
            "one miss to load, then 99 hits"
        );
    }

    #[tokio::test]
    async fn stats_count_every_hit_and_miss_exactly() {
        let repo = repo_with_users(&[1, 2, 3]);
        for id in [1, 1, 2, 1, 2, 3] {
            repo.get(id).await.unwrap();
        }
        let why = "reads 1,1,2,1,2,3: the first read of each id is a miss, the rest are hits";
        assert_eq!(repo.stats(), CacheStats { hits: 3, misses: 3 }, "{why}");
        assert_eq!(repo.stats().hit_ratio(), 0.5, "3 hits out of 6 reads");
        assert_eq!(CacheStats::default().hit_ratio(), 0.0, "no reads, no ratio");
    }

    #[tokio::test]
    async fn a_write_deletes_the_cache_entry_instead_of_updating_it() {
        let repo = repo_with_users(&[1]);
        repo.get(1).await.unwrap();
        repo.save(user(1, 1)).await.unwrap();
        assert!(
            !repo.is_cached(1),
            "after a write the entry must be gone, not overwritten: only a read refills it"
        );
        repo.save(user(2, 0)).await.unwrap();
        assert!(!repo.is_cached(2), "writes never fill the cache");
        assert_eq!(repo.db().writes(), 2, "every write goes to the database");
        let queries = repo.db().queries();
        assert_eq!(
            repo.get(1).await,
            Ok(Some(user(1, 1))),
            "v0 was cached before the write: the write must invalidate it, or reads stay stale"
        );
        let why = "the read after a write is a miss and loads the committed row";
        assert_eq!(repo.db().queries(), queries + 1, "{why}");
    }

    #[tokio::test]
    async fn a_deleted_row_is_not_served_from_the_cache() {
        let repo = repo_with_users(&[1]);
        repo.get(1).await.unwrap();
        repo.delete(1).await.unwrap();
        assert_eq!(repo.db().row(1), None, "delete must delete the row");
        let why = "the row was deleted; the cached copy must go too";
        assert_eq!(repo.get(1).await, Ok(None), "{why}");
    }

    #[tokio::test]
    async fn a_missing_row_is_cached_as_missing() {
        let repo = repo_with_users(&[1]);
        assert_eq!(repo.get(404).await, Ok(None), "no user 404 in the database");
        assert_eq!(repo.get(404).await, Ok(None), "still no user 404");
        assert_eq!(
            repo.db().queries(),
            1,
            "the second lookup of an unknown id should be answered by the cache (negative \
             caching), or a flood of bad ids all reaches the database"
        );
        let why = "a cached \"missing\" answers the read: it is a hit";
        assert_eq!(repo.stats(), CacheStats { hits: 1, misses: 1 }, "{why}");
    }

    #[tokio::test]
    async fn creating_a_row_invalidates_its_cached_absence() {
        let repo = repo_with_users(&[]);
        assert_eq!(repo.get(7).await, Ok(None), "user 7 does not exist yet");
        repo.save(user(7, 1)).await.unwrap();
        let why = "\"missing\" was cached before the row was created; the write must invalidate it";
        assert_eq!(repo.get(7).await, Ok(Some(user(7, 1))), "{why}");
    }

    #[tokio::test]
    async fn database_errors_are_returned_and_never_cached() {
        let repo = repo_with_users(&[1]);
        repo.db().fail_next_call();
        let why = "the caller must see the error";
        assert_eq!(repo.get(1).await, Err(DbError::Unavailable), "{why}");
        assert!(
            !repo.is_cached(1),
            "an error is not an answer: caching it (e.g. as \"missing\") would hide a row that \
             exists"
        );
        let why = "the next read retries the database";
        assert_eq!(repo.get(1).await, Ok(Some(user(1, 0))), "{why}");
        assert_eq!(repo.db().queries(), 2, "the failed read and the retry");
        let why = "a read that failed still went past the cache: it is a miss";
        assert_eq!(repo.stats(), CacheStats { hits: 0, misses: 2 }, "{why}");
    }

    #[tokio::test]
    async fn a_write_that_times_out_may_have_committed_so_it_still_invalidates() {
        let repo = repo_with_users(&[1]);
        repo.get(1).await.unwrap();
        repo.db().time_out_next_call_after_applying_it();
        let why = "the error is returned";
        assert_eq!(repo.save(user(1, 1)).await, Err(DbError::Timeout), "{why}");
        assert_eq!(
            repo.get(1).await,
            Ok(Some(user(1, 1))),
            "the write committed but its reply was lost; keeping v0 cached would serve it \
             forever. Invalidate whatever the result"
        );
    }

    #[tokio::test]
    async fn a_refused_write_changes_nothing_but_is_reported() {
        let repo = repo_with_users(&[1]);
        repo.get(1).await.unwrap();
        repo.db().fail_next_call();
        assert_eq!(
            repo.save(user(1, 1)).await,
            Err(DbError::Unavailable),
            "the error is returned"
        );
        let why = "the database still holds v0";
        assert_eq!(repo.get(1).await, Ok(Some(user(1, 0))), "{why}");
    }

    #[tokio::test]
    async fn a_delete_that_times_out_still_invalidates() {
        let repo = repo_with_users(&[1]);
        repo.get(1).await.unwrap();
        repo.db().time_out_next_call_after_applying_it();
        let why = "the error is returned";
        assert_eq!(repo.delete(1).await, Err(DbError::Timeout), "{why}");
        let why = "the delete committed; the row must not be served";
        assert_eq!(repo.get(1).await, Ok(None), "{why}");
    }

    // --- order: a read that runs while a write is in flight ---

    #[tokio::test(start_paused = true)]
    async fn a_read_during_a_write_cannot_put_the_old_row_back_so_invalidate_after_the_write() {
        let repo = repo_with_users(&[1]);
        repo.get(1).await.unwrap(); // v0 cached
        let mut held = repo.db().hold_next_write();
        let (saved, during) = tokio::join!(repo.save(user(1, 1)), async {
            within("the write to reach the database", held.arrived()).await;
            // The write is in flight: it reached the database, not yet applied.
            let during = repo.get(1).await;
            held.release();
            during
        });
        assert_eq!(saved, Ok(()));
        let why = "while the write was in flight the database still held v0";
        assert_eq!(during, Ok(Some(user(1, 0))), "{why}");
        assert_eq!(
            repo.get(1).await,
            Ok(Some(user(1, 1))),
            "a read ran while the write was in flight; deleting the cache entry before the \
             write let that read reload v0 and cache it after the delete, so v0 is served \
             until the next write. Delete the entry once the database has answered"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_during_a_delete_cannot_put_the_deleted_row_back() {
        let repo = repo_with_users(&[1]);
        repo.get(1).await.unwrap(); // v0 cached
        let mut held = repo.db().hold_next_write();
        let (deleted, _) = tokio::join!(repo.delete(1), async {
            within("the delete to reach the database", held.arrived()).await;
            let during = repo.get(1).await;
            held.release();
            during
        });
        assert_eq!(deleted, Ok(()));
        assert_eq!(
            repo.get(1).await,
            Ok(None),
            "a read ran while the delete was in flight; invalidating before the delete let it \
             cache the row again, so a deleted user is served until the next write. \
             Invalidate once the database has answered"
        );
    }

    // --- sequences ---

    /// The simplest model of a correct cache-aside repository, one call at a time: the
    /// database's rows, the cache's entries and the failures still to inject.
    #[derive(Default)]
    struct Model {
        rows: HashMap<u64, User>,
        cache: HashMap<u64, Option<User>>,
        failures: VecDeque<DbError>,
        stats: CacheStats,
    }

    /// Random reads, writes, deletes and injected failures, one at a time: every answer, the
    /// statistics and the database queries must match the model, and a read never returns a
    /// row other than the one the database holds (in a serial world nothing is ever stale).
    #[tokio::test]
    async fn random_serial_operations_match_the_model_and_never_serve_a_stale_row() {
        let mut seeds = Vec::new();
        sdlings_kit::property::for_seeds(200, |rng| {
            let ops: Vec<(u32, u64)> = (0..40)
                .map(|_| (rng.random_range(0..10), rng.random_range(0..4)))
                .collect();
            seeds.push(ops);
        });
        for (case, ops) in seeds.into_iter().enumerate() {
            let repo = repo_with_users(&[0, 1]);
            let mut model = Model::default();
            model.rows = [(0, user(0, 0)), (1, user(1, 0))].into_iter().collect();
            let mut log = Vec::new();
            for (step, (op, id)) in ops.into_iter().enumerate() {
                let version = step as u64 + 1;
                match op {
                    0..=3 => {
                        log.push(format!("get({id})"));
                        let expected = match model.cache.get(&id) {
                            Some(cached) => {
                                model.stats.hits += 1;
                                Ok(cached.clone())
                            }
                            None => {
                                model.stats.misses += 1;
                                match model.failures.pop_front() {
                                    Some(error) => Err(error),
                                    None => {
                                        let row = model.rows.get(&id).cloned();
                                        model.cache.insert(id, row.clone());
                                        Ok(row)
                                    }
                                }
                            }
                        };
                        let got = repo.get(id).await;
                        if let Ok(row) = &got {
                            assert_eq!(
                                row.as_ref(),
                                repo.db().row(id).as_ref(),
                                "case {case}, after {log:?}: one call at a time, a read must \
                                 return what the database holds"
                            );
                        }
                        assert_eq!(got, expected, "case {case}, after {log:?}");
                    }
                    4..=5 => {
                        log.push(format!("save(user({id}, v{version}))"));
                        let failure = model.failures.pop_front();
                        if failure != Some(DbError::Unavailable) {
                            model.rows.insert(id, user(id, version));
                        }
                        model.cache.remove(&id);
                        assert_eq!(
                            repo.save(user(id, version)).await,
                            failure.map_or(Ok(()), Err),
                            "case {case}, after {log:?}: save returns the database's answer"
                        );
                    }
                    6 => {
                        log.push(format!("delete({id})"));
                        let failure = model.failures.pop_front();
                        if failure != Some(DbError::Unavailable) {
                            model.rows.remove(&id);
                        }
                        model.cache.remove(&id);
                        assert_eq!(
                            repo.delete(id).await,
                            failure.map_or(Ok(()), Err),
                            "case {case}, after {log:?}: delete returns the database's answer"
                        );
                    }
                    7 => {
                        log.push("fail_next_call".to_string());
                        model.failures.push_back(DbError::Unavailable);
                        repo.db().fail_next_call();
                    }
                    8 => {
                        log.push("time_out_next_call".to_string());
                        model.failures.push_back(DbError::Timeout);
                        repo.db().time_out_next_call_after_applying_it();
                    }
                    _ => {
                        log.push(format!("is_cached({id})"));
                        assert_eq!(
                            repo.is_cached(id),
                            model.cache.contains_key(&id),
                            "case {case}, after {log:?}: a read fills the cache (a missing row \
                             too), a write or delete empties it, an error leaves it empty"
                        );
                    }
                }
                assert_eq!(
                    repo.stats(),
                    model.stats,
                    "case {case}, after {log:?}: hits and misses"
                );
            }
        }
    }
}
