// CRDT counters — a count every replica updates alone, that still adds up once they gossip.
//
// A "likes" counter is bumped in every data centre at once: a round trip to one master per like
// is too slow, and a partition would stop the likes. Riak's counters, Redis Enterprise's
// Active-Active counters and Akka's Distributed Data use the counters of Shapiro et al. (2011):
// each replica updates its own state and ships the whole state to peers, in any order, any
// number of times.
//
// Build a grow-only counter (G-counter) and a counter that also goes down (PN-counter). The
// property: merging states is commutative, associative and idempotent, so replicas that have
// heard the same updates (through duplicated, reordered, lost gossip) show the same value, the
// true total; a state merged twice counts once. Lab: turn DUPLICATE and LOSS up: your counters
// stay exact while a counter that adds the deltas it is sent drifts; FANOUT trades messages for
// time to converge.

use std::collections::BTreeMap;

use sdlings_kit::gossip::crdt_counters::{Counter, Knobs, lab};

/// A replica's address.
pub type ReplicaId = usize;

/// A grow-only counter: how much each replica has added, as far as this replica knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GCounter {
    counts: BTreeMap<ReplicaId, u64>,
}

impl GCounter {
    /// What this counter knows replica `r` has added (0 if nothing).
    pub fn count_of(&self, r: ReplicaId) -> u64 {
        self.counts.get(&r).copied().unwrap_or(0)
    }
}

// ---- Your part -------------------------------------------------------------------------------

impl GCounter {
    /// Replica `me` (this counter's owner) adds `n`.
    pub fn increment(&mut self, me: ReplicaId, n: u64) {
        // Only the owner writes its own entry, so the entry only grows and a larger entry is
        // always the newer news about that replica.
        *self.counts.entry(me).or_insert(0) += n;
    }

    /// The counter's value: everything every replica has added.
    pub fn value(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Folds in `other`, a state another replica sent (perhaps stale, perhaps for the second time).
    pub fn merge(&mut self, other: &GCounter) {
        // Per replica, the larger count has heard everything the smaller one has: take it. Max
        // is commutative, associative and idempotent, and so is this merge.
        for (&r, &count) in &other.counts {
            let mine = self.counts.entry(r).or_insert(0);
            *mine = (*mine).max(count);
        }
    }
}

/// A counter that goes up and down: what each replica has added and what it has taken away,
/// kept apart, so that each part only grows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PNCounter {
    increments: GCounter,
    decrements: GCounter,
}

impl PNCounter {
    /// Replica `me` adds `n`.
    pub fn increment(&mut self, me: ReplicaId, n: u64) {
        self.increments.increment(me, n);
    }

    /// Replica `me` takes `n` away; the value may go below zero.
    pub fn decrement(&mut self, me: ReplicaId, n: u64) {
        // A decrement is an increment of the other grow-only counter: lowering an entry would
        // look, to a merge, like old news, and the max would bring the old entry back.
        self.decrements.increment(me, n);
    }

    /// Everything added minus everything taken away, across all replicas.
    pub fn value(&self) -> i64 {
        self.increments.value() as i64 - self.decrements.value() as i64
    }

    /// Folds in another replica's state.
    pub fn merge(&mut self, other: &PNCounter) {
        self.increments.merge(&other.increments);
        self.decrements.merge(&other.decrements);
    }
}

// ---- Given: how the cluster drives your counters ---------------------------------------------

impl Counter for GCounter {
    fn update(&mut self, me: ReplicaId, delta: i64) {
        self.increment(me, delta.try_into().expect("a G-counter only grows"));
    }
    fn merge_from(&mut self, other: &Self) {
        self.merge(other);
    }
    fn read(&self) -> i64 {
        self.value() as i64
    }
}

impl Counter for PNCounter {
    fn update(&mut self, me: ReplicaId, delta: i64) {
        match delta >= 0 {
            true => self.increment(me, delta.unsigned_abs()),
            false => self.decrement(me, delta.unsigned_abs()),
        }
    }
    fn merge_from(&mut self, other: &Self) {
        self.merge(other);
    }
    fn read(&self) -> i64 {
        self.value()
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Nodes, peers each node gossips its state to per tick (20 ms), and the network's faults.
const NODES: usize = 5;
const FANOUT: usize = 1;
const LOSS: f64 = 0.1;
const DUPLICATE: f64 = 0.2;
/// Updates (random deltas from -3 to 5) each of the two clients sends to random nodes.
const UPDATES_PER_CLIENT: usize = 60;
const SEED: u64 = 7;

fn main() {
    let knobs = Knobs {
        nodes: NODES,
        fanout: FANOUT,
        loss: LOSS,
        duplicate: DUPLICATE,
        updates_per_client: UPDATES_PER_CLIENT,
    };
    lab::<PNCounter>("your PN-counter", knobs, SEED);
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::gossip::crdt_counters::{Run, simulate};
    use sdlings_kit::property::for_seeds;

    use super::*;

    const SEEDS: u64 = 100;

    fn g(counts: &[(ReplicaId, u64)]) -> GCounter {
        let mut c = GCounter::default();
        for &(r, n) in counts {
            c.increment(r, n);
        }
        c
    }

    #[test]
    fn an_increment_counts_in_the_replicas_own_entry() {
        let mut c = GCounter::default();
        assert_eq!(c.value(), 0, "a new counter is 0");
        c.increment(2, 3);
        c.increment(2, 4);
        c.increment(0, 1);
        assert_eq!(
            (c.count_of(0), c.count_of(1), c.count_of(2)),
            (1, 0, 7),
            "each replica adds to its own entry, and only to its own"
        );
        assert_eq!(c.value(), 8, "the value is the sum over every replica");
    }

    #[test]
    fn merge_takes_each_replicas_larger_entry_so_a_state_heard_twice_counts_once() {
        let mut a = g(&[(0, 5), (1, 2)]);
        let b = g(&[(1, 4), (2, 3)]);
        a.merge(&b);
        assert_eq!(
            (a.count_of(0), a.count_of(1), a.count_of(2)),
            (5, 4, 3),
            "per replica the larger count is the newer news: 5 of replica 0 (only a has it), 4 of \
             replica 1 (b heard more), 3 of replica 2 (only b has it)"
        );
        assert_eq!(a.value(), 12);
        a.merge(&b);
        a.merge(&a.clone());
        assert_eq!(
            a.value(),
            12,
            "the same state again adds nothing: a gossip duplicate"
        );
        let mut stale = g(&[(0, 1), (1, 1)]);
        a.merge(&stale);
        assert_eq!(
            a.value(),
            12,
            "an older state (a late, reordered message) adds nothing"
        );
        stale.merge(&a);
        assert_eq!(
            stale, a,
            "and the stale side catches up to exactly the same state"
        );
    }

    #[test]
    fn merging_with_an_empty_counter_changes_nothing_either_way() {
        let mut a = g(&[(3, 9)]);
        a.merge(&GCounter::default());
        assert_eq!(a, g(&[(3, 9)]));
        let mut empty = GCounter::default();
        empty.merge(&a);
        assert_eq!(
            empty.value(),
            9,
            "an empty replica learns everything it merges"
        );
    }

    #[test]
    fn a_pn_counter_goes_below_zero_and_decrements_survive_a_merge() {
        let mut a = PNCounter::default();
        a.increment(0, 2);
        a.decrement(0, 5);
        assert_eq!(
            a.value(),
            -3,
            "2 up, 5 down: -3 (a counter may go below zero)"
        );
        let mut b = PNCounter::default();
        b.increment(1, 10);
        b.decrement(1, 1);
        b.merge(&a);
        a.merge(&b);
        assert_eq!(
            (a.value(), b.value()),
            (6, 6),
            "-3 from a and +9 from b, on both sides"
        );
        a.increment(0, 4);
        b.merge(&a);
        assert_eq!(
            b.value(),
            10,
            "replica 0 first went down 5, then up 4 more: a merge must not bring back its \
             earlier state (a decrement is not a lowered entry)"
        );
        a.decrement(0, 1);
        let before = b.value();
        b.merge(&a);
        b.merge(&a);
        assert_eq!(
            b.value(),
            before - 1,
            "one decrement heard twice is one decrement"
        );
    }

    /// A replica's whole history: the updates it made, and the snapshot of its own counter after
    /// each. A state of the system is then "what each replica has heard of every other": a prefix
    /// of each replica's history; a merge of states keeps the longer prefix per replica.
    fn histories(
        rng: &mut impl RngExt,
        replicas: usize,
        signed: bool,
    ) -> Vec<Vec<(PNCounter, i64)>> {
        (0..replicas)
            .map(|r| {
                let mut own = PNCounter::default();
                let mut out = vec![(own.clone(), 0)];
                let mut total = 0;
                for _ in 0..rng.random_range(0..6) {
                    let delta = match signed {
                        true => rng.random_range(-4..=4i64),
                        false => rng.random_range(0..=4i64),
                    };
                    own.update(r, delta);
                    total += delta;
                    out.push((own.clone(), total));
                }
                out
            })
            .collect()
    }

    #[test]
    fn any_order_and_any_repetition_of_merges_gives_the_reference_value() {
        for_seeds(500, |rng| {
            let replicas = rng.random_range(1..5);
            let signed = rng.random();
            let hist = histories(rng, replicas, signed);
            // Merge random snapshots into one counter, in a random order, some more than once.
            let mut merged = PNCounter::default();
            let mut grow_only = GCounter::default();
            let mut heard = vec![0usize; replicas];
            for _ in 0..rng.random_range(0..12) {
                let r = rng.random_range(0..replicas);
                let k = rng.random_range(0..hist[r].len());
                merged.merge(&hist[r][k].0);
                heard[r] = heard[r].max(k);
                if !signed {
                    let mut g = GCounter::default();
                    g.increment(r, hist[r][k].1 as u64);
                    grow_only.merge(&g);
                }
            }
            let expected: i64 = (0..replicas).map(|r| hist[r][heard[r]].1).sum();
            assert_eq!(
                merged.value(),
                expected,
                "merging snapshots in any order, repeated or stale, must count each replica's \
                 updates up to the newest snapshot heard, once (histories {hist:?})"
            );
            if !signed {
                assert_eq!(
                    grow_only.value() as i64,
                    expected,
                    "the same for a G-counter"
                );
            }
            // Two replicas that heard the same states in different orders agree exactly.
            let mut other = PNCounter::default();
            for r in (0..replicas).rev() {
                other.merge(&hist[r][heard[r]].0);
                other.merge(&hist[r][0].0);
            }
            assert_eq!(
                other, merged,
                "same states heard, different order: the same state"
            );
        });
    }

    fn converges<C: Counter>(run: &Run, seed: u64, what: &str) {
        let out = simulate::<C>(run, seed);
        let total = run.total();
        assert!(
            out.values.iter().all(|&v| v == total),
            "{what}: every update was acknowledged and the network healed, so after gossiping \
             every replica must show the true total {total}, not {:?} (duplicated and reordered \
             states must not count twice)",
            out.values
        );
    }

    #[test]
    fn g_counters_on_a_gossiping_cluster_converge_to_the_true_total() {
        for_seeds(SEEDS, |rng| {
            let nodes = rng.random_range(2..5);
            let run = Run::random(rng, nodes, 5, (1, 4));
            converges::<GCounter>(&run, rng.random(), "G-counter");
        });
    }

    #[test]
    fn pn_counters_on_a_gossiping_cluster_converge_to_the_true_total() {
        for_seeds(SEEDS, |rng| {
            let nodes = rng.random_range(2..5);
            let run = Run::random(rng, nodes, 5, (-4, 4));
            converges::<PNCounter>(&run, rng.random(), "PN-counter");
        });
    }

    #[test]
    fn a_g_counter_replica_never_shows_a_smaller_value_than_it_showed_before() {
        for_seeds(SEEDS / 2, |rng| {
            let run = Run::random(rng, 3, 5, (1, 3));
            let out = simulate::<GCounter>(&run, rng.random());
            for (id, seen) in out.seen.iter().enumerate() {
                assert!(
                    seen.is_sorted(),
                    "replica {id} showed {seen:?}: a grow-only counter read twice must never \
                     go down (a merge must not replace newer news with older)"
                );
            }
        });
    }

    #[test]
    fn a_single_replica_counts_its_own_updates() {
        let mut rng = sdlings_kit::workload::seeded_rng(3);
        let run = Run::random(&mut rng, 1, 6, (-2, 3));
        converges::<PNCounter>(&run, 1, "one node");
    }
}
