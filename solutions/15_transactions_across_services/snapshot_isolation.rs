// Snapshot isolation — MVCC with first-committer-wins, and the anomaly it still allows.
//
// PostgreSQL's REPEATABLE READ, Oracle's SERIALIZABLE and most "distributed SQL" stores give
// snapshot isolation: a transaction reads the database as it was when it began, whatever commits
// meanwhile, and readers never block writers because every write makes a new version. Two
// concurrent transactions that write the same key cannot both commit (the second gets "could not
// serialize access due to concurrent update"), so no update is lost. But two that read the same
// rows and write different ones both commit: write skew (two doctors both go off call).
//
// Build `MvccStore`. Properties: a read sees own writes first, else the latest version committed
// at or before the transaction's begin; writes are buffered until commit; commit fails, changing
// nothing, if another transaction that committed after this one began wrote one of its keys;
// otherwise all its writes become one new version at a new commit timestamp. A delete is a
// version too. Checked against a simple serial model over many seeded interleavings.
// Lab: concurrent read-modify-write transactions; raise HOT_KEYS contention and watch aborts.

use std::collections::{BTreeMap, HashMap};

// ---- Your part -------------------------------------------------------------------------------

/// A transaction in progress.
pub struct Tx {
    /// The snapshot: every commit with a timestamp at or below this is visible.
    start: u64,
    /// Buffered writes (`None` deletes), installed at commit.
    writes: BTreeMap<String, Option<i64>>,
}

/// Commit refused: `key` was written by a transaction that committed after this one began.
#[derive(Debug, PartialEq, Eq)]
pub struct Conflict {
    pub key: String,
}

#[derive(Default)]
pub struct MvccStore {
    /// key → versions (commit timestamp, value or `None` for a delete), oldest first.
    versions: HashMap<String, Vec<(u64, Option<i64>)>>,
    /// The timestamp of the latest commit.
    last_commit: u64,
}

impl MvccStore {
    pub fn begin(&self) -> Tx {
        Tx {
            start: self.last_commit,
            writes: BTreeMap::new(),
        }
    }

    pub fn read(&self, tx: &Tx, key: &str) -> Option<i64> {
        // Your own writes first: you must see what you wrote, even uncommitted.
        if let Some(own) = tx.writes.get(key) {
            return *own;
        }
        // Then the newest version your snapshot contains; later ones are invisible to you.
        self.versions
            .get(key)?
            .iter()
            .rev()
            .find(|(ts, _)| *ts <= tx.start)
            .and_then(|(_, value)| *value)
    }

    pub fn write(&self, tx: &mut Tx, key: &str, value: Option<i64>) {
        tx.writes.insert(key.to_string(), value);
    }

    pub fn commit(&mut self, tx: Tx) -> Result<u64, Conflict> {
        // First committer wins: check every key before installing anything, so a refused
        // commit leaves no trace.
        for key in tx.writes.keys() {
            let newest = self.versions.get(key).and_then(|v| v.last());
            if newest.is_some_and(|(ts, _)| *ts > tx.start) {
                return Err(Conflict { key: key.clone() });
            }
        }
        self.last_commit += 1;
        for (key, value) in tx.writes {
            self.versions
                .entry(key)
                .or_default()
                .push((self.last_commit, value));
        }
        Ok(self.last_commit)
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const TRANSACTIONS: usize = 20_000;
/// How many transactions are open at once.
const CONCURRENT: usize = 8;

fn main() {
    use rand::RngExt;
    let mut table = sdlings_kit::lab::Table::new(&[
        "hot keys",
        "committed",
        "aborted",
        "abort rate",
        "lost updates",
    ]);
    for hot_keys in [1usize, 4, 16, 64, 256] {
        let mut rng = sdlings_kit::workload::seeded_rng(15);
        let mut store = MvccStore::default();
        let mut open: Vec<(Tx, String)> = Vec::new();
        let (mut committed, mut aborted) = (0u64, 0u64);
        for _ in 0..TRANSACTIONS {
            // Begin one increment, and commit a random open one when enough are open.
            let key = format!("k{}", rng.random_range(0..hot_keys));
            let mut tx = store.begin();
            let value = store.read(&tx, &key).unwrap_or(0);
            store.write(&mut tx, &key, Some(value + 1));
            open.push((tx, key));
            if open.len() >= CONCURRENT {
                let (tx, _) = open.swap_remove(rng.random_range(0..open.len()));
                match store.commit(tx) {
                    Ok(_) => committed += 1,
                    Err(_) => aborted += 1,
                }
            }
        }
        for (tx, _) in open.drain(..) {
            match store.commit(tx) {
                Ok(_) => committed += 1,
                Err(_) => aborted += 1,
            }
        }
        let total: i64 = (0..hot_keys)
            .map(|k| store.read(&store.begin(), &format!("k{k}")).unwrap_or(0))
            .sum();
        table.row(&[
            hot_keys.to_string(),
            committed.to_string(),
            aborted.to_string(),
            sdlings_kit::lab::percent(aborted, committed + aborted),
            (committed as i64 - total).to_string(),
        ]);
    }
    table.print();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(store: &mut MvccStore, writes: &[(&str, Option<i64>)]) {
        let mut tx = store.begin();
        for (k, v) in writes {
            store.write(&mut tx, k, *v);
        }
        store.commit(tx).expect("a lone transaction commits");
    }

    #[test]
    fn a_committed_write_is_read_by_a_later_transaction() {
        let mut store = MvccStore::default();
        assert_eq!(store.read(&store.begin(), "x"), None, "nothing written yet");
        committed(&mut store, &[("x", Some(1))]);
        assert_eq!(store.read(&store.begin(), "x"), Some(1));
        committed(&mut store, &[("x", Some(2))]);
        assert_eq!(
            store.read(&store.begin(), "x"),
            Some(2),
            "the newest version"
        );
    }

    #[test]
    fn a_transaction_reads_the_snapshot_taken_when_it_began() {
        let mut store = MvccStore::default();
        committed(&mut store, &[("x", Some(1)), ("y", Some(1))]);
        let reader = store.begin();
        committed(&mut store, &[("x", Some(2))]);
        committed(&mut store, &[("y", None)]);
        assert_eq!(
            store.read(&reader, "x"),
            Some(1),
            "x = 2 committed after the reader began"
        );
        assert_eq!(
            store.read(&reader, "y"),
            Some(1),
            "a later delete is invisible too"
        );
        assert_eq!(
            store.read(&store.begin(), "y"),
            None,
            "a new transaction sees the delete"
        );
    }

    #[test]
    fn own_writes_are_visible_to_oneself_and_to_no_one_else_before_commit() {
        let mut store = MvccStore::default();
        committed(&mut store, &[("x", Some(1))]);
        let mut tx = store.begin();
        store.write(&mut tx, "x", Some(5));
        store.write(&mut tx, "y", Some(6));
        assert_eq!(store.read(&tx, "x"), Some(5), "read your own write");
        let other = store.begin();
        assert_eq!(
            store.read(&other, "x"),
            Some(1),
            "uncommitted writes are invisible"
        );
        store.write(&mut tx, "x", None);
        assert_eq!(
            store.read(&tx, "x"),
            None,
            "your own delete hides the committed value"
        );
        store.commit(tx).unwrap();
        assert_eq!(
            store.read(&other, "y"),
            None,
            "committed after `other` began"
        );
    }

    #[test]
    fn two_concurrent_increments_cannot_both_commit_so_no_update_is_lost() {
        let mut store = MvccStore::default();
        committed(&mut store, &[("counter", Some(10))]);
        let (mut a, mut b) = (store.begin(), store.begin());
        for tx in [&mut a, &mut b] {
            let v = store.read(tx, "counter").unwrap();
            store.write(tx, "counter", Some(v + 1));
        }
        assert!(store.commit(a).is_ok(), "the first committer wins");
        assert_eq!(
            store.commit(b),
            Err(Conflict {
                key: "counter".into()
            }),
            "b read 10 before a committed 11: committing b's 11 would lose a's increment"
        );
        assert_eq!(store.read(&store.begin(), "counter"), Some(11));
    }

    #[test]
    fn a_refused_commit_installs_none_of_its_writes() {
        let mut store = MvccStore::default();
        let mut loser = store.begin();
        store.write(&mut loser, "a", Some(1));
        store.write(&mut loser, "z", Some(1));
        committed(&mut store, &[("z", Some(9))]);
        assert!(
            store.commit(loser).is_err(),
            "z was written after loser began"
        );
        committed(&mut store, &[("b", Some(1))]);
        assert_eq!(
            store.read(&store.begin(), "a"),
            None,
            "all or nothing: not even key a"
        );
    }

    #[test]
    fn a_write_committed_before_begin_is_no_conflict() {
        let mut store = MvccStore::default();
        committed(&mut store, &[("x", Some(1))]);
        let mut tx = store.begin();
        store.write(&mut tx, "x", Some(2));
        assert!(
            store.commit(tx).is_ok(),
            "x = 1 is in tx's snapshot: nothing concurrent"
        );
        let mut tx = store.begin();
        let other = store.begin();
        store.write(&mut tx, "y", Some(1));
        store.commit(tx).unwrap();
        assert!(
            store.commit(other).is_ok(),
            "a read-only transaction always commits"
        );
    }

    #[test]
    fn concurrent_writes_to_different_keys_both_commit() {
        let mut store = MvccStore::default();
        let (mut a, mut b) = (store.begin(), store.begin());
        store.write(&mut a, "x", Some(1));
        store.write(&mut b, "y", Some(2));
        assert!(store.commit(a).is_ok());
        assert!(store.commit(b).is_ok(), "no key in common: no conflict");
    }

    #[test]
    fn write_skew_is_allowed_two_doctors_both_go_off_call() {
        // The rule the application wants: at least one doctor on call. Snapshot isolation does
        // NOT enforce it; this test documents that (a serializable store would refuse one).
        let mut store = MvccStore::default();
        committed(&mut store, &[("alice", Some(1)), ("bob", Some(1))]);
        let (mut t1, mut t2) = (store.begin(), store.begin());
        for (tx, me) in [(&mut t1, "alice"), (&mut t2, "bob")] {
            let on_call = store.read(tx, "alice").unwrap() + store.read(tx, "bob").unwrap();
            assert_eq!(on_call, 2, "each sees two doctors on call in its snapshot");
            store.write(tx, me, Some(0));
        }
        assert!(store.commit(t1).is_ok());
        assert!(
            store.commit(t2).is_ok(),
            "t2 wrote only bob, which nobody else wrote: first-committer-wins checks write-write \
             conflicts only, so snapshot isolation lets the write skew through"
        );
        let now = store.begin();
        assert_eq!(
            (store.read(&now, "alice"), store.read(&now, "bob")),
            (Some(0), Some(0))
        );
    }

    #[test]
    fn random_interleavings_match_a_serial_model() {
        use rand::RngExt;
        sdlings_kit::property::for_seeds(200, |rng| {
            let mut store = MvccStore::default();
            // The model: the state after each commit, and each commit's write set.
            let mut states = vec![BTreeMap::<String, i64>::new()];
            let mut write_sets: Vec<Vec<String>> = vec![Vec::new()];
            let mut open: Vec<(Tx, usize, BTreeMap<String, Option<i64>>)> = Vec::new();
            let mut last_ts = 0;
            for step in 0..60 {
                let key = format!("k{}", rng.random_range(0..3));
                match rng.random_range(0..4) {
                    0 => open.push((store.begin(), states.len() - 1, BTreeMap::new())),
                    _ if open.is_empty() => {}
                    1 => {
                        let (tx, start, own) = &open[rng.random_range(0..open.len())];
                        let expected = match own.get(&key) {
                            Some(v) => *v,
                            None => states[*start].get(&key).copied(),
                        };
                        assert_eq!(store.read(tx, &key), expected, "step {step}: read {key}");
                    }
                    2 => {
                        let i = rng.random_range(0..open.len());
                        let v = (rng.random_range(0..4) > 0).then_some(step);
                        let (tx, _, own) = &mut open[i];
                        store.write(tx, &key, v);
                        own.insert(key, v);
                    }
                    _ => {
                        let (tx, start, own) = open.swap_remove(rng.random_range(0..open.len()));
                        let conflict = write_sets[start + 1..]
                            .iter()
                            .any(|ws| ws.iter().any(|k| own.contains_key(k)));
                        let result = store.commit(tx);
                        assert_eq!(result.is_err(), conflict, "step {step}: commit of {own:?}");
                        if let Ok(ts) = result {
                            assert!(ts > last_ts, "step {step}: commit timestamps only grow");
                            last_ts = ts;
                        }
                        if result.is_ok() && !own.is_empty() {
                            let mut state = states.last().unwrap().clone();
                            for (k, v) in &own {
                                match v {
                                    Some(v) => state.insert(k.clone(), *v),
                                    None => state.remove(k),
                                };
                            }
                            states.push(state);
                            write_sets.push(own.keys().cloned().collect());
                        }
                    }
                }
            }
        });
    }
}
