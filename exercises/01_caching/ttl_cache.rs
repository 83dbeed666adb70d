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

use sdlings_kit::caching::ttl;
use sdlings_kit::clock::{Clock, ManualClock};

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
        todo!()
    }

    /// The value for `key` if it is live. An expired entry found here is removed.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        todo!()
    }

    /// How long `key` stays live from now (like Redis `TTL`); `None` if absent or expired.
    pub fn ttl_remaining(&self, key: &K) -> Option<Duration> {
        todo!()
    }

    /// The number of live entries (expired ones that are still stored do not count).
    pub fn len(&self) -> usize {
        todo!()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every expired entry and returns how many were removed.
    pub fn purge_expired(&mut self) -> usize {
        todo!()
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// The TTLs to compare, in seconds. 0 means "cache nothing".
const TTLS: [u64; 6] = [0, 1, 5, 15, 60, 300];
/// Each key's value in the database changes once per this many seconds.
const UPDATE_EVERY: u64 = 30;
/// How often the active sweep (`purge_expired`) runs. Make it huge to watch dead entries pile up.
const PURGE_EVERY: Duration = Duration::from_secs(1);

fn main() {
    let knobs = ttl::Knobs {
        ttls: TTLS.to_vec(),
        update_every: UPDATE_EVERY,
        key_space: 1_000,
        skew: 1.0,
        requests: 100_000,
        mean_gap_ms: 10,
        purge_every: PURGE_EVERY,
        seed: 7,
    };
    ttl::run(&knobs, TtlCache::new);
}

/// The lab drives the cache through this trait (in the kit).
impl ttl::LabCache for TtlCache<u64, ttl::Loaded, ManualClock> {
    fn lookup(&mut self, key: u64) -> Option<ttl::Loaded> {
        self.get(&key).copied()
    }

    fn store(&mut self, key: u64, row: ttl::Loaded) {
        self.put(key, row);
    }

    fn purge(&mut self) {
        self.purge_expired();
    }

    fn entries_held(&self) -> usize {
        self.stored_entries()
    }
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);
    const NANO: Duration = Duration::from_nanos(1);

    fn cache(default_ttl: Duration) -> (ManualClock, TtlCache<&'static str, u32, ManualClock>) {
        let clock = ManualClock::new();
        (clock.clone(), TtlCache::new(clock, default_ttl))
    }

    #[test]
    fn get_serves_an_entry_until_exactly_write_time_plus_ttl() {
        let (clock, mut cache) = cache(10 * SEC);
        clock.advance(2 * SEC);
        cache.put("a", 1); // written at t = 2 s, expires at t = 12 s
        assert_eq!(cache.get(&"missing"), None);
        clock.set(12 * SEC - NANO);
        assert_eq!(cache.get(&"a"), Some(&1), "1 ns before t + ttl it is live");
        clock.set(12 * SEC);
        assert_eq!(
            cache.get(&"a"),
            None,
            "at exactly t + ttl the entry is expired: live means now < t + ttl"
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
        assert_eq!(cache.get(&"default"), Some(&3), "the 10 s default is not");
        clock.advance(10 * SEC);
        assert_eq!(
            cache.get(&"default"),
            None,
            "the 10 s default is over at 15 s"
        );
        assert_eq!(
            cache.get(&"long"),
            Some(&2),
            "a 60 s TTL is not over at 15 s"
        );
    }

    #[test]
    fn writing_a_key_again_replaces_the_value_and_restarts_its_ttl() {
        let (clock, mut cache) = cache(10 * SEC);
        cache.put("a", 1);
        clock.advance(8 * SEC);
        cache.put("a", 2); // now expires at t = 18 s, not 10 s
        clock.set(12 * SEC);
        assert_eq!(
            cache.get(&"a"),
            Some(&2),
            "a rewrite at 8 s restarts the TTL"
        );
        clock.set(18 * SEC);
        assert_eq!(cache.get(&"a"), None, "the rewrite expires at 8 s + 10 s");
        cache.put_with_ttl("b", 1, 60 * SEC);
        cache.put_with_ttl("b", 2, SEC);
        clock.advance(SEC);
        assert_eq!(
            cache.get(&"b"),
            None,
            "a rewrite's shorter TTL replaces the longer one"
        );
    }

    #[test]
    fn reading_does_not_extend_the_ttl() {
        let (clock, mut cache) = cache(10 * SEC);
        cache.put("a", 1);
        for second in 1..10 {
            clock.set(second * SEC);
            assert_eq!(cache.get(&"a"), Some(&1), "live at t = {second} s");
        }
        clock.set(10 * SEC);
        assert_eq!(
            cache.get(&"a"),
            None,
            "reads at 1..9 s must not push the deadline: a hot key must still be refreshed \
             from the source once per TTL, or it could be served stale forever"
        );
    }

    #[test]
    fn zero_ttl_is_never_served() {
        let (_clock, mut cache) = cache(10 * SEC);
        cache.put_with_ttl("a", 1, Duration::ZERO);
        assert_eq!(
            cache.get(&"a"),
            None,
            "written at t with ttl 0: expired at t"
        );
        assert_eq!(cache.len(), 0, "an entry with ttl 0 is never live");
    }

    #[test]
    fn len_counts_only_live_entries_and_removes_nothing() {
        let (clock, mut cache) = cache(10 * SEC);
        cache.put_with_ttl("a", 1, 5 * SEC);
        cache.put_with_ttl("b", 2, 10 * SEC);
        cache.put_with_ttl("c", 3, 20 * SEC);
        assert_eq!(cache.len(), 3, "all three are live at t = 0");
        clock.set(5 * SEC);
        assert_eq!(cache.len(), 2, "at t = 5 s, \"a\" (ttl 5 s) has expired");
        clock.set(10 * SEC);
        assert_eq!(cache.len(), 1, "at t = 10 s only \"c\" is live");
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
            "at t = 10 s \"a\" (expired at 5 s) and \"b\" (at exactly 10 s) go"
        );
        assert_eq!(
            cache.stored_entries(),
            1,
            "only the live entry is left in memory"
        );
        assert_eq!(cache.get(&"c"), Some(&3), "purge must keep live entries");
        assert_eq!(cache.purge_expired(), 0, "a second purge finds nothing");
    }

    #[test]
    fn ttl_remaining_counts_down_and_ends_at_the_deadline() {
        let (clock, mut cache) = cache(10 * SEC);
        cache.put("a", 1);
        assert_eq!(cache.ttl_remaining(&"a"), Some(10 * SEC), "just written");
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

    /// A deliberately simple model: each key's value and deadline in u128 nanoseconds (nothing
    /// overflows), compared with the clock on every question.
    #[derive(Default)]
    struct Reference(HashMap<u32, (u32, u128)>);

    impl Reference {
        fn get(&mut self, now: u128, key: u32) -> Option<u32> {
            let (value, deadline) = *self.0.get(&key)?;
            if deadline <= now {
                self.0.remove(&key);
                return None;
            }
            Some(value)
        }

        fn ttl_remaining(&self, now: u128, key: u32) -> Option<Duration> {
            let (_, deadline) = *self.0.get(&key)?;
            (deadline > now).then(|| Duration::from_nanos((deadline - now) as u64))
        }

        fn live(&self, now: u128) -> usize {
            self.0.values().filter(|e| e.1 > now).count()
        }
    }

    /// Random writes (TTL 0, 1 ns, ms, s), reads, sweeps and clock moves — many landing exactly
    /// on a deadline, 1 ns before or 1 ns after — checked against the model after every step.
    #[test]
    fn random_operations_match_a_simple_model_at_every_step() {
        fn random_ttl(rng: &mut impl RngExt) -> Duration {
            match rng.random_range(0..6) {
                0 => Duration::ZERO,
                1 => NANO,
                2 => SEC * rng.random_range(1..5),
                _ => Duration::from_millis(rng.random_range(1..4_000)),
            }
        }
        sdlings_kit::property::for_seeds(200, |rng| {
            let default_ttl = random_ttl(rng);
            let clock = ManualClock::new();
            let mut cache = TtlCache::new(clock.clone(), default_ttl);
            let mut model = Reference::default();
            let mut log = vec![format!("default ttl {default_ttl:?}")];
            for step in 0..80u32 {
                let (now, key) = (clock.now().as_nanos(), rng.random_range(0..5));
                match rng.random_range(0..12) {
                    0..=3 => {
                        let ttl = if step % 2 == 0 {
                            default_ttl
                        } else {
                            random_ttl(rng)
                        };
                        log.push(format!("put_with_ttl({key}, {ttl:?})"));
                        match ttl == default_ttl {
                            true => cache.put(key, step),
                            false => cache.put_with_ttl(key, step, ttl),
                        }
                        model.0.insert(key, (step, now + ttl.as_nanos()));
                    }
                    4..=6 => {
                        log.push(format!("get({key})"));
                        let expected = model.get(now, key);
                        assert_eq!(cache.get(&key).copied(), expected, "after {log:?}");
                    }
                    7 => {
                        log.push(format!("ttl_remaining({key})"));
                        let expected = model.ttl_remaining(now, key);
                        assert_eq!(cache.ttl_remaining(&key), expected, "after {log:?}");
                    }
                    8 => {
                        log.push("purge_expired()".to_string());
                        let before = model.0.len();
                        model.0.retain(|_, e| e.1 > now);
                        let removed = before - model.0.len();
                        assert_eq!(cache.purge_expired(), removed, "after {log:?}: removed");
                    }
                    _ => {
                        // Move the clock to a deadline exactly, 1 ns around it, or a bit on.
                        let deadlines: Vec<u128> = model.0.values().map(|e| e.1).collect();
                        let target = match deadlines.get(rng.random_range(0..=deadlines.len())) {
                            Some(&d) => (d + rng.random_range(0..3)).saturating_sub(1),
                            None => now + rng.random_range(0..2_000_000_000u128),
                        };
                        if target > now && target < now + 1_000 * SEC.as_nanos() {
                            log.push(format!("clock to {target} ns"));
                            clock.set(Duration::from_nanos(target as u64));
                        }
                    }
                }
                let now = clock.now().as_nanos();
                assert_eq!(
                    (cache.len(), cache.stored_entries()),
                    (model.live(now), model.0.len()),
                    "after {log:?}: (len: live entries, stored_entries: get and purge remove \
                     expired entries, nothing else removes anything)"
                );
            }
        });
    }
}
