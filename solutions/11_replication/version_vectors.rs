// Version vectors — concurrent writes to one key are both kept, until a write that saw both.
//
// Dynamo (Amazon's shopping cart) and Riak accept writes on any replica, even across a partition.
// Two clients that both read a cart and both write it back must not lose an item: the replicas
// keep both versions as siblings, the next read returns both, and the client's write, which
// carries the context of that read, replaces them. Ordering the writes by wall clock instead
// (last write wins) silently drops one, however well the clocks are synced.
//
// Build the version vector (compare, merge) and one key's sibling set, with dots (Riak 2.0's
// dotted version vectors). The property: a write replaces exactly the values its context saw;
// no acknowledged write is lost unless a write that saw it replaced it; replicas that synced in
// any order, any number of times, hold the same siblings. Lab: PARTITION and CLIENTS raise the
// siblings you keep and the writes last-write-wins loses; CLOCK_SKEW_MS picks LWW's winners.

use std::collections::BTreeMap;
use std::time::Duration;

use sdlings_kit::replication::version_vectors::{Knobs, Register, lab};

/// A replica's address.
pub type ReplicaId = usize;

/// How two version vectors relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Everything the first has seen, the second has too, and more.
    Before,
    After,
    Equal,
    /// Each has seen something the other has not.
    Concurrent,
}

/// Per replica, how many writes it coordinated that this vector has seen (missing: 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionVector {
    counts: BTreeMap<ReplicaId, u64>,
}

impl VersionVector {
    pub fn from_counts(counts: impl IntoIterator<Item = (ReplicaId, u64)>) -> Self {
        VersionVector {
            counts: counts.into_iter().collect(),
        }
    }

    pub fn get(&self, r: ReplicaId) -> u64 {
        self.counts.get(&r).copied().unwrap_or(0)
    }
}

/// One write's name: the `counter`-th write that `replica` coordinated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dot {
    pub replica: ReplicaId,
    pub counter: u64,
}

/// One key at one replica: the values kept (one per write not yet replaced, each with its dot)
/// and the context: every write this replica has seen, kept or replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Siblings {
    pub values: Vec<(Dot, u64)>,
    pub context: VersionVector,
}

// ---- Your part -------------------------------------------------------------------------------

impl VersionVector {
    /// How `self` relates to `other`.
    pub fn compare(&self, other: &VersionVector) -> Order {
        let replicas = self.counts.keys().chain(other.counts.keys());
        let (mut less, mut more) = (false, false);
        for &r in replicas {
            // Entry by entry: a missing entry is 0, so {a: 1} equals {a: 1, b: 0}.
            less |= self.get(r) < other.get(r);
            more |= self.get(r) > other.get(r);
        }
        match (less, more) {
            (false, false) => Order::Equal,
            (true, false) => Order::Before,
            (false, true) => Order::After,
            (true, true) => Order::Concurrent,
        }
    }

    /// Makes `self` the smallest vector that has seen everything both have seen.
    pub fn merge(&mut self, other: &VersionVector) {
        for (&r, &n) in &other.counts {
            let mine = self.counts.entry(r).or_insert(0);
            *mine = (*mine).max(n);
        }
    }

    /// Whether the write `dot` is among what this vector has seen.
    pub fn covers(&self, dot: Dot) -> bool {
        self.get(dot.replica) >= dot.counter
    }
}

impl Siblings {
    /// Replica `me` writes `value` for a client whose read returned `context`. Returns the
    /// write's dot.
    pub fn write(&mut self, me: ReplicaId, value: u64, context: &VersionVector) -> Dot {
        // The client saw these values and means to replace them; the others were written
        // concurrently with its read and stay, as siblings.
        self.values.retain(|&(dot, _)| !context.covers(dot));
        // A new name, from this replica's own count of the writes it coordinated (the client's
        // context may be stale: a name taken from it could be one already given out).
        let dot = Dot {
            replica: me,
            counter: self.context.get(me) + 1,
        };
        self.context.merge(context);
        self.context
            .merge(&VersionVector::from_counts([(dot.replica, dot.counter)]));
        self.values.push((dot, value));
        dot
    }

    /// Folds in `other`, the same key's state at another replica.
    pub fn sync(&mut self, other: &Siblings) {
        match other.context.compare(&self.context) {
            // The other side has seen nothing this one has not: nothing to learn.
            Order::Before | Order::Equal => return,
            // It has seen everything this one has, and more: its state is the newer one.
            Order::After => {
                *self = other.clone();
                return;
            }
            Order::Concurrent => {}
        }
        // Keep a value of mine unless the other side saw it and no longer has it (replaced);
        // take a value of theirs unless I saw it already (kept or replaced).
        let theirs = |dot: Dot| other.values.iter().any(|&(d, _)| d == dot);
        self.values
            .retain(|&(dot, _)| theirs(dot) || !other.context.covers(dot));
        for &(dot, value) in &other.values {
            if !self.context.covers(dot) {
                self.values.push((dot, value));
            }
        }
        self.values.sort_unstable();
        self.context.merge(&other.context);
    }
}

// ---- Given: how the cluster drives your sibling sets -----------------------------------------

impl Siblings {
    /// What a client reads: the values, and the context to send back with its next write.
    pub fn read(&self) -> (Vec<u64>, VersionVector) {
        let values = self.values.iter().map(|&(_, v)| v).collect();
        (values, self.context.clone())
    }
}

impl Register for Siblings {
    type Context = VersionVector;
    fn read(&self) -> (Vec<u64>, VersionVector) {
        Siblings::read(self)
    }
    fn write(&mut self, me: ReplicaId, _now: Duration, value: u64, context: &VersionVector) {
        Siblings::write(self, me, value, context);
    }
    fn sync(&mut self, other: &Self) {
        Siblings::sync(self, other);
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Replicas, clients (each reads, thinks up to THINK_MS, then writes, ROUNDS times), a partition
/// of the replicas in two halves for the first PARTITION_MS, and how far apart the clocks are.
const NODES: usize = 3;
const CLIENTS: usize = 4;
const ROUNDS: usize = 5;
const THINK_MS: u64 = 40;
const PARTITION_MS: u64 = 200;
const CLOCK_SKEW_MS: u64 = 10;
const RUNS: u64 = 20;

fn main() {
    let knobs = Knobs {
        nodes: NODES,
        clients: CLIENTS,
        rounds: ROUNDS,
        think: Duration::from_millis(THINK_MS),
        partition: Duration::from_millis(PARTITION_MS),
        clock_skew: Duration::from_millis(CLOCK_SKEW_MS),
        runs: RUNS,
    };
    lab::<Siblings>("your sibling sets", knobs);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rand::RngExt;
    use sdlings_kit::property::for_seeds;
    use sdlings_kit::replication::version_vectors::{Run, simulate};

    use super::*;

    const SEEDS: u64 = 100;
    const A: ReplicaId = 0;
    const B: ReplicaId = 1;

    fn vv(counts: &[(ReplicaId, u64)]) -> VersionVector {
        VersionVector::from_counts(counts.iter().copied())
    }

    fn sorted(mut values: Vec<u64>) -> Vec<u64> {
        values.sort_unstable();
        values
    }

    /// A sibling set with its values in dot order: the order they are kept in is yours to choose.
    fn canonical(key: &Siblings) -> Siblings {
        let mut key = key.clone();
        key.values.sort_unstable();
        key
    }

    #[test]
    fn compare_orders_vectors_entry_by_entry_and_finds_concurrent_ones() {
        use Order::*;
        let cases = [
            (vv(&[]), vv(&[]), Equal, "two empty vectors"),
            (
                vv(&[(A, 1)]),
                vv(&[(A, 1), (B, 0)]),
                Equal,
                "a missing entry is 0",
            ),
            (
                vv(&[(A, 1)]),
                vv(&[(A, 2)]),
                Before,
                "fewer writes of A seen",
            ),
            (
                vv(&[(A, 1)]),
                vv(&[(A, 1), (B, 1)]),
                Before,
                "the other saw B's write too",
            ),
            (
                vv(&[(A, 2), (B, 1)]),
                vv(&[(A, 1)]),
                After,
                "saw more of A and B's write",
            ),
            (
                vv(&[(A, 1)]),
                vv(&[(B, 1)]),
                Concurrent,
                "[1, 0] and [0, 1]",
            ),
            (
                vv(&[(A, 2)]),
                vv(&[(A, 1), (B, 1)]),
                Concurrent,
                "equal sums, yet each saw a write the other did not",
            ),
            (
                vv(&[(A, 3), (B, 0)]),
                vv(&[(A, 1), (B, 1)]),
                Concurrent,
                "not before is not after: B's write is missing on the left",
            ),
        ];
        for (x, y, expected, why) in cases {
            assert_eq!(x.compare(&y), expected, "{x:?} vs {y:?}: {why}");
            let mirrored = match expected {
                Before => After,
                After => Before,
                other => other,
            };
            assert_eq!(y.compare(&x), mirrored, "{y:?} vs {x:?}: {why}, mirrored");
        }
    }

    #[test]
    fn merge_takes_the_larger_entry_of_each_replica_and_covers_what_either_saw() {
        let mut x = vv(&[(A, 3), (B, 1)]);
        x.merge(&vv(&[(B, 4), (2, 2)]));
        assert_eq!(x, vv(&[(A, 3), (B, 4), (2, 2)]), "per replica, the max");
        assert!(
            x.covers(Dot {
                replica: B,
                counter: 4
            }),
            "B's 4th write was seen"
        );
        assert!(
            x.covers(Dot {
                replica: B,
                counter: 1
            }),
            "and so were its earlier ones"
        );
        assert!(
            !x.covers(Dot {
                replica: B,
                counter: 5
            }),
            "B's 5th was not"
        );
        assert!(
            !x.covers(Dot {
                replica: 7,
                counter: 1
            }),
            "nothing of an unknown replica"
        );
    }

    #[test]
    fn a_write_replaces_what_its_client_read_and_keeps_concurrent_siblings() {
        let mut key = Siblings::default();
        let (_, empty) = key.read();
        key.write(A, 10, &empty);
        let (values, seen_10) = key.read();
        assert_eq!(values, [10]);
        key.write(A, 11, &empty);
        assert_eq!(
            sorted(key.read().0),
            [10, 11],
            "11's client read before 10 was written: 10 is a concurrent sibling, kept"
        );
        key.write(B, 12, &seen_10);
        assert_eq!(
            sorted(key.read().0),
            [11, 12],
            "12's client saw 10 (only): 10 is replaced, 11 stays"
        );
        let (_, seen_all) = key.read();
        key.write(A, 13, &seen_all);
        assert_eq!(
            key.read().0,
            [13],
            "a write that saw every sibling replaces them all"
        );
    }

    #[test]
    fn every_write_gets_a_new_dot_even_when_its_client_read_nothing() {
        let mut key = Siblings::default();
        let d1 = key.write(A, 1, &VersionVector::default());
        let d2 = key.write(A, 2, &VersionVector::default());
        let d3 = key.write(A, 3, &vv(&[(B, 5)]));
        assert_eq!(
            [d1, d2, d3].map(|d| (d.replica, d.counter)),
            [(A, 1), (A, 2), (A, 3)],
            "replica A names its writes 1, 2, 3 from its own count, whatever the client's \
             context says: two writes with one dot would be one write to every later merge"
        );
        assert_eq!(key.context, vv(&[(A, 3), (B, 5)]), "the context holds both");
    }

    #[test]
    fn sync_keeps_concurrent_siblings_from_both_sides_and_drops_what_the_other_replaced() {
        let (mut a, mut b) = (Siblings::default(), Siblings::default());
        a.write(A, 1, &VersionVector::default());
        b.sync(&a);
        assert_eq!(b.read().0, [1], "b learns a's write");
        let (_, saw_1) = b.read();
        b.write(B, 2, &saw_1);
        a.write(A, 3, &saw_1);
        let mut a2 = a.clone();
        a2.sync(&b);
        b.sync(&a);
        assert_eq!(
            sorted(b.read().0),
            [2, 3],
            "2 and 3 both replaced 1 without seeing each other: both stay, 1 is gone"
        );
        assert_eq!(
            canonical(&a2),
            canonical(&b),
            "both sides hold the same state, whichever synced first"
        );
        let before = b.clone();
        b.sync(&a2);
        b.sync(&a);
        assert_eq!(
            canonical(&b),
            canonical(&before),
            "syncing again, or with an older state, changes nothing"
        );
        let mut stale = Siblings::default();
        stale.write(A, 1, &VersionVector::default());
        stale.sync(&b);
        assert_eq!(
            canonical(&stale),
            canonical(&b),
            "a replica that only saw 1 takes the newer state whole"
        );
    }

    #[test]
    fn compare_and_merge_agree_with_an_entrywise_reference_over_random_vectors() {
        for_seeds(300, |rng| {
            let mut random = || {
                let entries: Vec<(ReplicaId, u64)> = (0..rng.random_range(0..4))
                    .map(|_| (rng.random_range(0..3), rng.random_range(0..3)))
                    .collect();
                vv(&entries)
            };
            let (x, y) = (random(), random());
            let le = |p: &VersionVector, q: &VersionVector| (0..3).all(|r| p.get(r) <= q.get(r));
            let expected = match (le(&x, &y), le(&y, &x)) {
                (true, true) => Order::Equal,
                (true, false) => Order::Before,
                (false, true) => Order::After,
                (false, false) => Order::Concurrent,
            };
            assert_eq!(x.compare(&y), expected, "{x:?} vs {y:?}");
            let mut m = x.clone();
            m.merge(&y);
            for r in 0..3 {
                assert_eq!(m.get(r), x.get(r).max(y.get(r)), "merge of {x:?} and {y:?}");
            }
        });
    }

    #[test]
    fn replicas_that_write_and_sync_in_any_order_keep_exactly_the_writes_no_write_saw() {
        for_seeds(300, |rng| {
            let n = rng.random_range(1..=3);
            let mut replicas = vec![Siblings::default(); n];
            // The reference: every write, and every value some write's client had read.
            let (mut written, mut seen) = (Vec::new(), BTreeSet::new());
            for step in 0..rng.random_range(1..20) {
                let (from, to) = (rng.random_range(0..n), rng.random_range(0..n));
                if rng.random_range(0..3) == 0 {
                    let other = replicas[from].clone();
                    replicas[to].sync(&other);
                } else {
                    let (values, context) = replicas[from].read();
                    seen.extend(values);
                    replicas[to].write(to, step, &context);
                    written.push(step);
                }
                for r in &replicas {
                    let values = r.read().0;
                    let unique: BTreeSet<u64> = values.iter().copied().collect();
                    assert_eq!(unique.len(), values.len(), "a value kept twice: {r:?}");
                }
            }
            // Sync everything with everything, twice over: every replica hears of every write.
            for _ in 0..2 {
                for i in 0..n {
                    for j in 0..n {
                        let other = replicas[j].clone();
                        replicas[i].sync(&other);
                    }
                }
            }
            let expected: Vec<u64> = written.into_iter().filter(|v| !seen.contains(v)).collect();
            for (i, r) in replicas.iter().enumerate() {
                assert_eq!(
                    sorted(r.read().0),
                    expected,
                    "replica {i} after full sync: every write that no later write's client had \
                     read must survive, every write that one had read must be gone ({r:?})"
                );
            }
        });
    }

    #[test]
    fn on_a_faulty_cluster_no_acknowledged_write_is_lost_unless_a_write_saw_it() {
        for_seeds(SEEDS, |rng| {
            let nodes = rng.random_range(1..=3);
            let run = Run::random(rng, nodes);
            let out = simulate::<Siblings>(&run, rng.random());
            let expected = out.unreplaced();
            for (id, values) in out.finals.iter().enumerate() {
                assert_eq!(
                    values, &expected,
                    "replica {id} after the partitions healed: the acknowledged writes no other \
                     write had read ({expected:?}) must all survive, as siblings, and nothing \
                     else (writes {:?})",
                    out.writes
                );
            }
        });
    }
}
