// TTL cache — entries that expire, with time injected through a clock.
//
// Build `TtlCache<K, V, C>`: each entry lives for a TTL (the cache's default, or its own). Written
// at time t with TTL d, it is live while now < t + d: at t + d exactly it is gone (a TTL of zero
// is never served). `get` never returns an expired entry and removes the one it finds (lazy
// expiry); `purge_expired` sweeps the map (active expiry), or keys never read again would hold
// memory forever. Writing a key again restarts its TTL; reading it does not (a fixed TTL).
//
// Why it matters: TTL is how most caches bound staleness when nobody tells them the data changed
// — DNS records, CDN objects (`Cache-Control: max-age`), sessions, Redis `SET key v EX 60`. Redis
// expires keys both ways too: lazily when touched, plus a periodic sampled sweep.
//
// Lab (runs once the tests pass): turn TTLS and UPDATE_EVERY (how often the data changes). A longer
// TTL raises the hit rate and cuts database loads but serves older data: the oldest value served
// is as old as the TTL, which *is* your staleness bound. A huge PURGE_EVERY piles up dead entries.

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
        clock.set(12 * SEC - NANO);
        assert_eq!(cache.get(&"a"), Some(&1), "1 ns before t + ttl it is live");
        assert_eq!(cache.ttl_remaining(&"a"), Some(NANO), "with 1 ns to go");
        clock.set(12 * SEC);
        let expired = "at exactly t + ttl the entry is expired: live means now < t + ttl";
        assert_eq!(cache.ttl_remaining(&"a"), None, "{expired}");
        assert_eq!(cache.get(&"a"), None, "{expired}");
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
        let fixed = "reads must not push the deadline: a hot key must still be refreshed from the \
                     source once per TTL, or it could be served stale forever";
        assert_eq!(cache.get(&"a"), None, "{fixed}");
    }

    #[test]
    fn expired_entries_leave_memory_when_read_or_purged_and_len_counts_live_ones() {
        let (clock, mut cache) = cache(10 * SEC);
        cache.put_with_ttl("a", 1, 5 * SEC);
        cache.put_with_ttl("b", 2, 10 * SEC);
        cache.put_with_ttl("c", 3, 20 * SEC);
        cache.put_with_ttl("zero", 4, Duration::ZERO);
        assert_eq!(cache.len(), 3, "at t = 0 all but the TTL-0 entry are live");
        clock.set(10 * SEC);
        assert_eq!(
            cache.len(),
            1,
            "at t = 10 s only \"c\" is live; len removes nothing"
        );
        assert_eq!(cache.get(&"a"), None);
        let lazy = "get found \"a\" expired and removes it (lazy expiry); others wait for a purge";
        assert_eq!(cache.stored_entries(), 3, "{lazy}");
        let active = "\"b\" (expired at exactly 10 s) and \"zero\" go; \"c\" is live and stays";
        assert_eq!(cache.purge_expired(), 2, "{active}");
        assert_eq!(
            (cache.stored_entries(), cache.get(&"c")),
            (1, Some(&3)),
            "{active}"
        );
    }

    #[test]
    fn a_huge_ttl_means_never_expires_and_does_not_overflow() {
        let (clock, mut cache) = cache(10 * SEC);
        clock.advance(5 * SEC);
        cache.put_with_ttl("forever", 1, Duration::MAX);
        clock.advance(Duration::from_secs(100 * 365 * 24 * 3600));
        let never = "now + Duration::MAX overflows: saturate instead of panicking";
        assert_eq!(cache.get(&"forever"), Some(&1), "{never}");
        assert_eq!(cache.purge_expired(), 0, "a never-expiring entry stays");
    }

    /// A deliberately simple model: each key's value and deadline (saturating: `Duration::MAX`
    /// means never), compared with the clock on every question.
    #[derive(Default)]
    struct Reference(HashMap<u32, (u32, Duration)>);

    impl Reference {
        fn get(&mut self, now: Duration, key: u32) -> Option<u32> {
            let (value, deadline) = *self.0.get(&key)?;
            let live = deadline > now;
            if !live {
                self.0.remove(&key);
            }
            live.then_some(value)
        }

        fn ttl_remaining(&self, now: Duration, key: u32) -> Option<Duration> {
            let (_, deadline) = *self.0.get(&key)?;
            (deadline > now).then(|| deadline - now)
        }
    }

    /// Random writes (TTL 0, 1 ns, ms, s, forever), reads, sweeps and clock moves (many landing
    /// exactly on a deadline, 1 ns before or 1 ns after), checked against the model at every step.
    #[test]
    fn random_operations_match_a_simple_model_at_every_step() {
        fn random_ttl(rng: &mut impl RngExt) -> Duration {
            match rng.random_range(0..7) {
                0 => Duration::ZERO,
                1 => NANO,
                2 => SEC * rng.random_range(1..5),
                3 => Duration::MAX,
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
                let (now, key) = (clock.now(), rng.random_range(0..5));
                match rng.random_range(0..12) {
                    0..=3 => {
                        let ttl = [default_ttl, random_ttl(rng)][step as usize % 2];
                        log.push(format!("put_with_ttl({key}, {ttl:?})"));
                        match ttl == default_ttl {
                            true => cache.put(key, step),
                            false => cache.put_with_ttl(key, step, ttl),
                        }
                        model.0.insert(key, (step, now.saturating_add(ttl)));
                    }
                    4..=6 => {
                        log.push(format!("get({key})"));
                        let value = model.get(now, key);
                        assert_eq!(cache.get(&key).copied(), value, "after {log:?}");
                    }
                    7 => {
                        log.push(format!("ttl_remaining({key})"));
                        let left = model.ttl_remaining(now, key);
                        assert_eq!(cache.ttl_remaining(&key), left, "after {log:?}");
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
                        let far = now + 1_000 * SEC;
                        let deadlines: Vec<_> = model.0.values().map(|e| e.1.min(far)).collect();
                        let target = match deadlines.get(rng.random_range(0..=deadlines.len())) {
                            Some(&d) => (d + NANO * rng.random_range(0..3)).saturating_sub(NANO),
                            None => now + Duration::from_millis(rng.random_range(0..2_000)),
                        };
                        if target > now && target < far {
                            log.push(format!("clock to {target:?}"));
                            clock.set(target);
                        }
                    }
                }
                let live = model.0.values().filter(|e| e.1 > clock.now()).count();
                assert_eq!(
                    (cache.len(), cache.stored_entries()),
                    (live, model.0.len()),
                    "after {log:?}: (len: live entries, stored_entries: get and purge remove \
                     expired entries, nothing else removes anything)"
                );
            }
        });
    }
}
