// Change data capture — a cache fed by the database's change stream, converging by version.
//
// Debezium reads a database's log (the MySQL binlog, PostgreSQL's WAL) and publishes one event
// per row change; a cache, a search index or another service applies them. The stream is at
// least once and, across partitions or retries, not always in order. Each event carries the
// row's version (an LSN, a row version column): apply an event only if it is newer than what
// you hold, and a delete must leave a versioned tombstone, or a late, older insert brings the
// row back to life. The same rule closes topic 01's cache-aside race: a read that loaded an old
// row fills the cache with its version, and the fill loses to anything newer already there.
//
// Build `VersionedCache`. The property: per key, the cache holds what the newest version it has
// been offered (by `apply` or by `fill`) says, whatever the order and however many duplicates;
// a deleted key reads as absent and stays deleted until a newer version arrives. Checked against
// a model over many seeded shuffled streams.
// Lab: REORDER_WINDOW and DUPLICATE_PCT; compare stale keys with a cache that applies in arrival.

use std::collections::HashMap;

// ---- Your part -------------------------------------------------------------------------------

/// One row change from the database's log. `value: None` is a delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub version: u64,
    pub value: Option<String>,
}

#[derive(Default)]
pub struct VersionedCache {
    /// key → (newest version seen, its value; `None` is a tombstone).
    entries: HashMap<String, (u64, Option<String>)>,
}

impl VersionedCache {
    /// Applies an event from the change stream; returns whether it changed the cache.
    pub fn apply(&mut self, change: &Change) -> bool {
        let _ = &self.entries;
        todo!("apply {change:?} if it is newer than what the cache holds")
    }

    /// The read path's fill (cache-aside): the reader loaded `value` at `version` from the
    /// database; returns whether the cache took it.
    pub fn fill(&mut self, key: &str, version: u64, value: Option<String>) -> bool {
        todo!("fill {key} = {value:?} (v{version}) unless the cache holds something newer")
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        todo!("the cached value of {key}, if it exists")
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const KEYS: u64 = 100;
const UPDATES: u64 = 50_000;
/// An event may be delivered up to this many positions late.
const REORDER_WINDOW: usize = 20;
const DUPLICATE_PCT: u32 = 5;
/// Out of 100 updates, how many are deletes.
const DELETE_PCT: u32 = 10;

fn main() {
    use rand::RngExt;
    let mut rng = sdlings_kit::workload::seeded_rng(15);
    let mut versions = vec![0u64; KEYS as usize];
    let mut latest: HashMap<String, Option<String>> = HashMap::new();
    let mut stream = Vec::new();
    for u in 0..UPDATES {
        let k = rng.random_range(0..KEYS);
        versions[k as usize] += 1;
        let value = (rng.random_range(0..100) >= DELETE_PCT).then(|| format!("v{u}"));
        let change = Change {
            key: format!("k{k}"),
            version: versions[k as usize],
            value,
        };
        latest.insert(change.key.clone(), change.value.clone());
        stream.push(change.clone());
        if rng.random_range(0..100) < DUPLICATE_PCT {
            stream.push(change);
        }
    }
    // Deliver with bounded reordering: each event may swap with one up to REORDER_WINDOW later.
    for i in 0..stream.len() {
        let j = (i + rng.random_range(0..=REORDER_WINDOW)).min(stream.len() - 1);
        stream.swap(i, j);
    }
    let mut naive: HashMap<String, String> = HashMap::new();
    let mut cache = VersionedCache::default();
    for change in &stream {
        match &change.value {
            Some(v) => naive.insert(change.key.clone(), v.clone()),
            None => naive.remove(&change.key),
        };
        cache.apply(change);
    }
    let stale =
        |get: &dyn Fn(&str) -> Option<String>| latest.iter().filter(|(k, v)| get(k) != **v).count();
    let mut table =
        sdlings_kit::lab::Table::new(&["cache", "events", "keys", "stale keys at the end"]);
    let naive_stale = stale(&|k| naive.get(k).cloned());
    let versioned_stale = stale(&|k| cache.get(k).map(str::to_string));
    table.row(&[
        "apply in arrival order".to_string(),
        stream.len().to_string(),
        latest.len().to_string(),
        naive_stale.to_string(),
    ]);
    table.row(&[
        "versioned, with tombstones".to_string(),
        stream.len().to_string(),
        latest.len().to_string(),
        versioned_stale.to_string(),
    ]);
    table.print();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str, version: u64, value: Option<&str>) -> Change {
        Change {
            key: key.into(),
            version,
            value: value.map(str::to_string),
        }
    }

    #[test]
    fn events_in_order_leave_the_latest_value() {
        let mut cache = VersionedCache::default();
        assert_eq!(cache.get("x"), None, "empty cache");
        assert!(cache.apply(&change("x", 1, Some("a"))));
        assert!(cache.apply(&change("x", 2, Some("b"))));
        assert_eq!(cache.get("x"), Some("b"));
        assert_eq!(cache.get("y"), None);
    }

    #[test]
    fn an_older_event_arriving_late_is_ignored() {
        let mut cache = VersionedCache::default();
        cache.apply(&change("x", 3, Some("c")));
        assert!(
            !cache.apply(&change("x", 2, Some("b"))),
            "version 2 is older than 3"
        );
        assert_eq!(
            cache.get("x"),
            Some("c"),
            "a late event must not roll the value back"
        );
    }

    #[test]
    fn a_duplicated_event_changes_nothing() {
        let mut cache = VersionedCache::default();
        cache.apply(&change("x", 1, Some("a")));
        cache.apply(&change("x", 2, Some("b")));
        assert!(
            !cache.apply(&change("x", 1, Some("a"))),
            "a redelivered old event"
        );
        assert!(
            !cache.apply(&change("x", 2, Some("b"))),
            "the same version again"
        );
        assert_eq!(cache.get("x"), Some("b"));
    }

    #[test]
    fn versions_are_compared_per_key() {
        let mut cache = VersionedCache::default();
        cache.apply(&change("x", 9, Some("x9")));
        assert!(
            cache.apply(&change("y", 1, Some("y1"))),
            "y's version 1 is y's newest so far"
        );
        assert_eq!(
            cache.get("y"),
            Some("y1"),
            "x's versions say nothing about y"
        );
    }

    #[test]
    fn a_delete_leaves_a_tombstone_so_a_late_older_insert_cannot_resurrect_the_row() {
        let mut cache = VersionedCache::default();
        cache.apply(&change("x", 2, None));
        assert_eq!(cache.get("x"), None, "deleted");
        assert!(
            !cache.apply(&change("x", 1, Some("a"))),
            "the insert (v1) arrived after its delete (v2)"
        );
        assert_eq!(
            cache.get("x"),
            None,
            "the row was deleted at version 2: it must stay deleted"
        );
        assert!(
            cache.apply(&change("x", 3, Some("again"))),
            "a newer insert brings it back"
        );
        assert_eq!(cache.get("x"), Some("again"));
    }

    #[test]
    fn the_cache_aside_race_cannot_leave_a_stale_entry() {
        // Topic 01's race: a reader loads x = old (v1) from the database; a writer commits
        // x = new (v2) and its change event reaches the cache; then the reader fills.
        let mut cache = VersionedCache::default();
        cache.apply(&change("x", 2, Some("new")));
        assert!(
            !cache.fill("x", 1, Some("old".into())),
            "the fill carries v1, the cache holds v2"
        );
        assert_eq!(cache.get("x"), Some("new"), "the stale fill must lose");
        // The same when the write was a delete (the event invalidates with a tombstone).
        let mut cache = VersionedCache::default();
        cache.apply(&change("y", 2, None));
        assert!(!cache.fill("y", 1, Some("old".into())));
        assert_eq!(
            cache.get("y"),
            None,
            "invalidated at v2: the v1 fill must not come back"
        );
    }

    #[test]
    fn a_fill_before_the_event_is_taken_and_then_replaced() {
        let mut cache = VersionedCache::default();
        assert!(
            cache.fill("x", 1, Some("old".into())),
            "an empty cache takes a fill"
        );
        assert!(
            cache.apply(&change("x", 2, Some("new"))),
            "the later event is newer"
        );
        assert_eq!(cache.get("x"), Some("new"));
        assert!(
            cache.fill("x", 3, Some("newest".into())),
            "a fill newer than the cache wins"
        );
        cache.apply(&change("z", 4, None));
        assert!(
            cache.fill("z", 5, Some("back".into())),
            "a fill newer than a tombstone wins too"
        );
        assert_eq!(cache.get("z"), Some("back"));
    }

    #[test]
    fn shuffled_duplicated_streams_and_fills_match_the_newest_version_offered() {
        use rand::RngExt;
        sdlings_kit::property::for_seeds(300, |rng| {
            // Versions are log positions: they start anywhere (0 included, or past u32::MAX)
            // and leave gaps, since other rows' changes take positions in between.
            let base = [0, 1, u64::from(u32::MAX) - 3, u64::MAX - 1000][rng.random_range(0..4)];
            let keys = rng.random_range(1..4);
            let mut history: Vec<Vec<(u64, Option<String>)>> = vec![vec![]; keys];
            let mut position = base;
            for _ in 0..rng.random_range(0..25) {
                let k = rng.random_range(0..keys);
                let value = (rng.random_range(0..4) > 0).then(|| format!("k{k}@{position}"));
                history[k].push((position, value));
                position += rng.random_range(1..4);
            }
            let mut offers: Vec<(bool, usize, usize)> = Vec::new();
            for (k, versions) in history.iter().enumerate() {
                for i in 0..versions.len() {
                    for _ in 0..rng.random_range(1..3) {
                        offers.push((rng.random_range(0..3) == 0, k, i));
                    }
                }
            }
            for i in (1..offers.len()).rev() {
                offers.swap(i, rng.random_range(0..=i));
            }
            let mut cache = VersionedCache::default();
            // Per key, the index in its history of the newest version offered so far.
            let mut newest: Vec<Option<usize>> = vec![None; keys];
            for (is_fill, k, i) in offers {
                let (key, (version, value)) = (format!("k{k}"), history[k][i].clone());
                let took = if is_fill {
                    cache.fill(&key, version, value)
                } else {
                    cache.apply(&Change {
                        key: key.clone(),
                        version,
                        value,
                    })
                };
                let newer = newest[k].is_none_or(|n| i > n);
                assert_eq!(
                    took,
                    newer,
                    "{key} v{version} offered after v{:?}: taken only if strictly newer",
                    newest[k].map(|n| history[k][n].0)
                );
                if newer {
                    newest[k] = Some(i);
                }
                for (j, n) in newest.iter().enumerate() {
                    let expected = n.and_then(|n| history[j][n].1.clone());
                    assert_eq!(
                        cache.get(&format!("k{j}")),
                        expected.as_deref(),
                        "k{j}: the newest version offered so far is v{:?}",
                        n.map(|n| history[j][n].0)
                    );
                }
            }
        });
    }
}
