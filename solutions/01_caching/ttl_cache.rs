// TTL cache — entries that expire, with time injected through a clock.
//
// Build `TtlCache<K, V, C>`: every entry gets a time-to-live (the cache's default, or its own).
// An entry written at time t with TTL d is live while now < t + d and expired from t + d on: at
// t + d exactly it is gone (so a TTL of zero is never served). `get` never returns an expired
// entry and removes the one it finds (lazy expiry); `purge_expired` sweeps the whole map (active
// expiry), because keys that are never read again would otherwise hold memory forever. Writing a
// key again restarts its TTL; reading it does not (this is a fixed TTL, not a sliding one).
//
// Why it matters: TTL is how most caches bound staleness when nobody tells them the data changed
// — DNS records, CDN objects (`Cache-Control: max-age`), session tokens, Redis `SET key v EX 60`.
// Redis expires keys in the same two ways: lazily when a key is touched, plus a periodic sweep
// (sampled, to bound its cost).
//
// Lab (runs once the tests pass): turn TTLS (and UPDATE_EVERY, how often the source data
// changes). A longer TTL raises the hit rate and cuts database loads, but serves older data: the
// share of stale reads grows and the oldest value served is as old as the TTL — the TTL *is* your
// staleness bound. Set PURGE_EVERY very high to see expired entries pile up in memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use sdlings_kit::clock::{Clock, ManualClock};
use sdlings_kit::lab::{Table, percent};
use sdlings_kit::workload::{ZipfKeys, seeded_rng};

use rand::RngExt;

struct Entry<V> {
    value: V,
    /// The deadline, not the write time: checking expiry is then a single comparison with `now`
    /// and the entry does not need to remember its TTL.
    expires_at: Duration,
}

pub struct TtlCache<K, V, C: Clock> {
    clock: C,
    default_ttl: Duration,
    entries: HashMap<K, Entry<V>>,
}

impl<K: Hash + Eq, V, C: Clock> TtlCache<K, V, C> {
    pub fn new(clock: C, default_ttl: Duration) -> Self {
        TtlCache {
            clock,
            default_ttl,
            entries: HashMap::new(),
        }
    }

    /// Inserts or replaces `key` with the default TTL.
    pub fn put(&mut self, key: K, value: V) {
        self.put_with_ttl(key, value, self.default_ttl);
    }

    /// Entries held in memory, live or expired-but-not-yet-removed. This is what costs RAM;
    /// `len` is what callers can actually read.
    pub fn stored_entries(&self) -> usize {
        self.entries.len()
    }

    // ---- Your part -------------------------------------------------------------------------

    /// Inserts or replaces `key`; it expires `ttl` from now. A huge TTL (even `Duration::MAX`)
    /// means "never expires" and must not overflow.
    pub fn put_with_ttl(&mut self, key: K, value: V, ttl: Duration) {
        let expires_at = self.clock.now().saturating_add(ttl);
        // `insert` replaces the whole entry, deadline included: a rewrite restarts the TTL.
        self.entries.insert(key, Entry { value, expires_at });
    }

    /// The value for `key` if it is live. An expired entry found here is removed.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        let now = self.clock.now();
        // Two lookups keep the borrow checker happy: the first decides, the second borrows.
        if self.entries.get(key)?.expires_at <= now {
            self.entries.remove(key);
            return None;
        }
        self.entries.get(key).map(|entry| &entry.value)
    }

    /// How long `key` stays live from now (like Redis `TTL`); `None` if absent or expired.
    pub fn ttl_remaining(&self, key: &K) -> Option<Duration> {
        let now = self.clock.now();
        let entry = self.entries.get(key)?;
        (entry.expires_at > now).then(|| entry.expires_at - now)
    }

    /// The number of live entries (expired ones that are still stored do not count).
    pub fn len(&self) -> usize {
        let now = self.clock.now();
        self.entries.values().filter(|e| e.expires_at > now).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every expired entry and returns how many were removed.
    pub fn purge_expired(&mut self) -> usize {
        let now = self.clock.now();
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires_at > now);
        before - self.entries.len()
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// The TTLs to compare, in seconds. 0 means "cache nothing".
const TTLS: [u64; 6] = [0, 1, 5, 15, 60, 300];
/// Each key's value in the database changes once per this many seconds.
const UPDATE_EVERY: u64 = 30;
const KEY_SPACE: usize = 1_000;
const SKEW: f64 = 1.0;
const REQUESTS: usize = 100_000;
/// Requests arrive every 0..2×MEAN_GAP_MS milliseconds (seeded), so 100k requests ≈ 17 minutes.
const MEAN_GAP_MS: u64 = 10;
/// How often the active sweep (`purge_expired`) runs. Make it huge to watch dead entries pile up.
const PURGE_EVERY: Duration = Duration::from_secs(1);
const SEED: u64 = 7;

/// What the cache stores: which version of the row was loaded, and when.
#[derive(Clone, Copy)]
struct Loaded {
    version: u64,
    loaded_at: Duration,
}

fn main() {
    println!(
        "TTL cache in front of a database: {REQUESTS} reads over {KEY_SPACE} keys (skew \
         {SKEW:.1}); each row changes every {UPDATE_EVERY} s\n"
    );
    // Each key changes on its own schedule: a seeded phase shift per key.
    let mut rng = seeded_rng(SEED);
    let period = Duration::from_secs(UPDATE_EVERY).as_nanos();
    let phases: Vec<u128> = (0..KEY_SPACE)
        .map(|_| rng.random_range(0..period))
        .collect();
    let db_version = |key: u64, now: Duration| (now.as_nanos() + phases[key as usize]) / period;

    let mut table = Table::new(&[
        "TTL",
        "hit rate",
        "DB loads",
        "stale reads",
        "oldest value served",
        "peak entries held",
    ]);
    for &ttl in &TTLS {
        let clock = ManualClock::new();
        let mut cache: TtlCache<u64, Loaded, _> =
            TtlCache::new(clock.clone(), Duration::from_secs(ttl));
        let mut keys = ZipfKeys::new(KEY_SPACE, SKEW, SEED);
        let mut gaps = seeded_rng(SEED + 1);
        let (mut hits, mut loads, mut stale) = (0u64, 0u64, 0u64);
        let mut oldest = Duration::ZERO;
        let mut next_purge = PURGE_EVERY;
        let mut peak_held = 0;
        for _ in 0..REQUESTS {
            clock.advance(Duration::from_millis(gaps.random_range(0..2 * MEAN_GAP_MS)));
            let now = clock.now();
            if now >= next_purge {
                cache.purge_expired();
                next_purge += PURGE_EVERY;
            }
            let key = keys.next_key();
            let current = db_version(key, now) as u64;
            match cache.get(&key).copied() {
                Some(served) => {
                    hits += 1;
                    oldest = oldest.max(now - served.loaded_at);
                    if served.version != current {
                        stale += 1;
                    }
                }
                None => {
                    loads += 1;
                    let row = Loaded {
                        version: current,
                        loaded_at: now,
                    };
                    cache.put(key, row);
                }
            }
            peak_held = peak_held.max(cache.stored_entries());
        }
        table.row(&[
            format!("{ttl} s"),
            percent(hits, REQUESTS as u64),
            loads.to_string(),
            percent(stale, REQUESTS as u64),
            format!("{:.1} s", oldest.as_secs_f64()),
            peak_held.to_string(),
        ]);
    }
    table.print();
    println!(
        "\nstale reads: served a version the database had already replaced (share of all reads)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);
    const NANO: Duration = Duration::from_nanos(1);

    fn cache(default_ttl: Duration) -> (ManualClock, TtlCache<&'static str, u32, ManualClock>) {
        let clock = ManualClock::new();
        (clock.clone(), TtlCache::new(clock, default_ttl))
    }

    #[test]
    fn get_returns_a_fresh_entry() {
        let (clock, mut cache) = cache(10 * SEC);
        cache.put("a", 1);
        clock.advance(3 * SEC);
        assert_eq!(
            cache.get(&"a"),
            Some(&1),
            "3 s into a 10 s TTL the entry is live"
        );
        assert_eq!(cache.get(&"missing"), None);
    }

    #[test]
    fn entry_expires_exactly_at_write_time_plus_ttl() {
        let (clock, mut cache) = cache(10 * SEC);
        clock.advance(2 * SEC);
        cache.put("a", 1); // written at t = 2 s, expires at t = 12 s
        clock.set(12 * SEC - NANO);
        assert_eq!(
            cache.get(&"a"),
            Some(&1),
            "one nanosecond before t + ttl the entry is still live"
        );
        clock.set(12 * SEC);
        assert_eq!(
            cache.get(&"a"),
            None,
            "at exactly t + ttl the entry is expired (live means now < t + ttl, so compare with \
             >= when checking expiry)"
        );
    }

    #[test]
    fn per_entry_ttl_overrides_the_default() {
        let (clock, mut cache) = cache(10 * SEC);
        cache.put_with_ttl("short", 1, 2 * SEC);
        cache.put_with_ttl("long", 2, 60 * SEC);
        cache.put("default", 3);
        clock.advance(5 * SEC);
        assert_eq!(cache.get(&"short"), None, "a 2 s TTL is over after 5 s");
        assert_eq!(
            cache.get(&"default"),
            Some(&3),
            "the 10 s default is not over"
        );
        clock.advance(10 * SEC);
        assert_eq!(
            cache.get(&"default"),
            None,
            "the 10 s default is over after 15 s"
        );
        assert_eq!(
            cache.get(&"long"),
            Some(&2),
            "a 60 s TTL is not over after 15 s"
        );
    }

    #[test]
    fn writing_a_key_again_replaces_the_value_and_restarts_its_ttl() {
        let (clock, mut cache) = cache(10 * SEC);
        cache.put("a", 1);
        clock.advance(8 * SEC);
        cache.put("a", 2); // now expires at t = 18 s, not 10 s
        clock.advance(4 * SEC);
        assert_eq!(
            cache.get(&"a"),
            Some(&2),
            "at t = 12 s the rewrite from t = 8 s is live: a rewrite restarts the TTL"
        );
        clock.set(18 * SEC);
        assert_eq!(cache.get(&"a"), None, "the rewrite expires at 8 s + 10 s");
    }

    #[test]
    fn a_shorter_ttl_on_rewrite_replaces_the_longer_one() {
        let (clock, mut cache) = cache(10 * SEC);
        cache.put_with_ttl("a", 1, 60 * SEC);
        cache.put_with_ttl("a", 2, SEC);
        clock.advance(SEC);
        assert_eq!(
            cache.get(&"a"),
            None,
            "the rewrite's 1 s TTL wins over the old 60 s"
        );
    }

    #[test]
    fn reading_does_not_extend_the_ttl() {
        let (clock, mut cache) = cache(10 * SEC);
        cache.put("a", 1);
        for second in 1..10 {
            clock.set(second * SEC);
            assert_eq!(cache.get(&"a"), Some(&1), "live at t = {second:?} s");
        }
        clock.set(10 * SEC);
        assert_eq!(
            cache.get(&"a"),
            None,
            "reads at 1..9 s must not push the deadline: a hot key must still be refreshed from \
             the source once per TTL, or it could be served stale forever"
        );
    }

    #[test]
    fn zero_ttl_is_never_served() {
        let (_clock, mut cache) = cache(10 * SEC);
        cache.put_with_ttl("a", 1, Duration::ZERO);
        assert_eq!(
            cache.get(&"a"),
            None,
            "written at t with ttl 0, expired at t"
        );
        assert_eq!(cache.len(), 0, "an entry with ttl 0 is never live");
    }

    #[test]
    fn len_counts_only_live_entries() {
        let (clock, mut cache) = cache(10 * SEC);
        cache.put_with_ttl("a", 1, 5 * SEC);
        cache.put_with_ttl("b", 2, 10 * SEC);
        cache.put_with_ttl("c", 3, 20 * SEC);
        assert_eq!(cache.len(), 3, "all three are live at t = 0");
        clock.set(5 * SEC);
        assert_eq!(cache.len(), 2, "at t = 5 s, \"a\" (ttl 5 s) has expired");
        clock.set(10 * SEC);
        assert_eq!(
            cache.len(),
            1,
            "at t = 10 s only \"c\" is live; expired entries still in memory do not count"
        );
        assert_eq!(cache.stored_entries(), 3, "len must not remove anything");
        clock.set(20 * SEC);
        assert!(cache.is_empty(), "at t = 20 s nothing is live");
    }

    #[test]
    fn get_removes_the_expired_entry_it_finds() {
        let (clock, mut cache) = cache(10 * SEC);
        cache.put("a", 1);
        cache.put("b", 2);
        clock.advance(10 * SEC);
        assert_eq!(cache.get(&"a"), None, "\"a\" expired at t = 10 s");
        assert_eq!(
            cache.stored_entries(),
            1,
            "get found \"a\" expired and should have removed it (lazy expiry); \"b\" was not \
             touched and stays until a purge"
        );
    }

    #[test]
    fn purge_removes_expired_entries_and_keeps_live_ones() {
        let (clock, mut cache) = cache(10 * SEC);
        cache.put_with_ttl("a", 1, 5 * SEC);
        cache.put_with_ttl("b", 2, 10 * SEC);
        cache.put_with_ttl("c", 3, 20 * SEC);
        clock.set(10 * SEC);
        assert_eq!(
            cache.purge_expired(),
            2,
            "at t = 10 s \"a\" (expired at 5 s) and \"b\" (expired at exactly 10 s) go"
        );
        assert_eq!(
            cache.stored_entries(),
            1,
            "only the live entry is left in memory"
        );
        assert_eq!(cache.get(&"c"), Some(&3), "purge must keep live entries");
        assert_eq!(
            cache.purge_expired(),
            0,
            "a second purge finds nothing to remove"
        );
    }

    #[test]
    fn keys_never_read_again_are_freed_only_by_a_purge() {
        let (clock, mut cache) = cache(SEC);
        for key in ["a", "b", "c", "d"] {
            cache.put(key, 0);
        }
        clock.advance(SEC);
        assert_eq!(cache.len(), 0, "all four expired at t = 1 s");
        assert_eq!(
            cache.stored_entries(),
            4,
            "nothing read them, so nothing removed them yet"
        );
        cache.purge_expired();
        assert_eq!(cache.stored_entries(), 0, "the sweep frees their memory");
    }

    #[test]
    fn ttl_remaining_counts_down_and_ends_at_the_deadline() {
        let (clock, mut cache) = cache(10 * SEC);
        cache.put("a", 1);
        assert_eq!(cache.ttl_remaining(&"a"), Some(10 * SEC), "just written");
        clock.advance(3 * SEC);
        assert_eq!(cache.ttl_remaining(&"a"), Some(7 * SEC), "3 s later");
        clock.set(10 * SEC - NANO);
        assert_eq!(
            cache.ttl_remaining(&"a"),
            Some(NANO),
            "1 ns before the deadline"
        );
        clock.set(10 * SEC);
        assert_eq!(cache.ttl_remaining(&"a"), None, "expired at the deadline");
        assert_eq!(cache.ttl_remaining(&"missing"), None);
    }

    #[test]
    fn a_huge_ttl_means_never_expires_and_does_not_overflow() {
        let (clock, mut cache) = cache(10 * SEC);
        clock.advance(5 * SEC);
        cache.put_with_ttl("forever", 1, Duration::MAX);
        clock.advance(Duration::from_secs(100 * 365 * 24 * 3600));
        assert_eq!(
            cache.get(&"forever"),
            Some(&1),
            "now + Duration::MAX overflows: saturate instead of panicking"
        );
        assert_eq!(
            cache.purge_expired(),
            0,
            "a never-expiring entry is not purged"
        );
    }
}
