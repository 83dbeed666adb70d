//! What the replication tests check and build: Raft's safety properties over every step of a
//! run, and small states to put a rule in an exact situation.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::replication::{AppendEntries, AppendReply, Entry, Index, Raft, Rules, Script, Term};
use super::runs::Knobs;

/// The knobs of the tests' runs: 3 nodes, half a second, frequent elections and partitions.
pub fn test_knobs() -> Knobs {
    Knobs {
        nodes: 3,
        duration: Duration::from_millis(500),
        elect_every_ms: (40, 120),
        propose_every: Duration::from_millis(20),
        ..Knobs::default()
    }
}

/// A log with entries of these terms from `first_index` on; an entry's command is decided by its
/// index and term (so equal index and term mean equal entries, as in a real run).
pub fn entries(terms: &[Term], first_index: Index) -> Vec<Entry<u64>> {
    (first_index..)
        .zip(terms)
        .map(|(i, &term)| Entry {
            term,
            cmd: i * 100 + term,
        })
        .collect()
}

/// Node 1 of 5, a follower in `term`, whose log has entries of `terms`.
pub fn follower(term: Term, terms: &[Term]) -> Raft<u64> {
    let mut raft = Raft::new(1, 5);
    raft.term = term;
    raft.log = entries(terms, 1);
    raft
}

/// Node 0 of 5, just elected leader of `term`, whose log has entries of `terms`.
pub fn leader(term: Term, terms: &[Term]) -> Raft<u64> {
    let mut raft = follower(term, terms);
    raft.me = 0;
    raft.become_leader(term);
    raft
}

/// An AppendEntries from leader 0 of `term`: `entries` after `prev` = (index, term).
pub fn request(
    term: Term,
    prev: (Index, Term),
    entries: Vec<Entry<u64>>,
    commit: Index,
) -> AppendEntries<u64> {
    AppendEntries {
        term,
        leader: 0,
        prev_index: prev.0,
        prev_term: prev.1,
        entries,
        leader_commit: commit,
    }
}

/// A successful reply of `term` covering up to `match_index`.
pub fn success(term: Term, match_index: Index) -> AppendReply {
    AppendReply {
        term,
        success: true,
        match_index,
        conflict_term: None,
        conflict_index: 0,
    }
}

/// A refusal of `term` with the hint (`conflict_term`, `conflict_index`).
pub fn refusal(term: Term, conflict_term: Option<Term>, conflict_index: Index) -> AppendReply {
    AppendReply {
        term,
        success: false,
        match_index: 0,
        conflict_term,
        conflict_index,
    }
}

/// The terms of a log, in order.
pub fn terms(raft: &Raft<u64>) -> Vec<Term> {
    raft.log.iter().map(|e| e.term).collect()
}

/// Log matching: where two logs have an entry of the same index and term, they are identical up
/// to there.
pub fn log_matching(nodes: &[Raft<u64>]) -> Result<(), String> {
    for (k, a) in nodes.iter().enumerate() {
        for b in &nodes[k + 1..] {
            let common = a.log.len().min(b.log.len());
            let first_diff = (0..common)
                .find(|&i| a.log[i] != b.log[i])
                .unwrap_or(common);
            if let Some(i) = (first_diff..common).find(|&i| a.log[i].term == b.log[i].term) {
                return Err(format!(
                    "nodes {} and {} both have an entry of term {} at index {}, but their logs \
                     differ at index {}: {:?} vs {:?}",
                    a.me,
                    b.me,
                    a.log[i].term,
                    i + 1,
                    first_diff + 1,
                    a.log,
                    b.log
                ));
            }
        }
    }
    Ok(())
}

/// Raft's safety over a run, checked at every step: log matching; commit indexes never move
/// back nor past the log; an entry reported committed by any node is never committed differently
/// and never disappears from a node that held it.
#[derive(Default)]
pub struct Safety {
    committed: BTreeMap<Index, Entry<u64>>,
    before: Vec<Raft<u64>>,
}

impl Safety {
    /// Checks the nodes' states at `now` against everything seen before; panics on a violation.
    pub fn check(&mut self, now: Duration, nodes: &[Raft<u64>]) {
        if let Err(e) = log_matching(nodes) {
            panic!("at {now:?}, log matching is broken: {e}");
        }
        for (k, n) in nodes.iter().enumerate() {
            let before = self.before.get(k).map_or(0, |b| b.commit);
            assert!(n.commit >= before, "node {}'s commit index went back", n.me);
            assert!(
                n.commit <= n.last_index(),
                "node {} commits past its log",
                n.me
            );
            for (i, e) in (1..=n.commit).zip(&n.log) {
                let first = self.committed.entry(i).or_insert_with(|| e.clone());
                assert_eq!(
                    first, e,
                    "at {now:?}, node {} commits {e:?} at index {i}, where {first:?} was \
                     reported committed before: a committed entry changed",
                    n.me
                );
            }
        }
        for (old, new) in self.before.iter().zip(nodes) {
            for (&i, e) in &self.committed {
                assert!(
                    old.entry(i) != Some(e) || new.entry(i) == Some(e),
                    "at {now:?}, node {} lost {e:?} at index {i}, which was reported committed: \
                     its log is now {:?}",
                    new.me,
                    new.log
                );
            }
        }
        self.before = nodes.to_vec();
    }

    /// After the faults heal: every node holds and commits the leader's whole log, and it holds
    /// every entry ever reported committed.
    pub fn converged(&self, nodes: &[Raft<u64>]) {
        let leader = nodes
            .iter()
            .max_by_key(|n| (n.leader.is_some(), n.term))
            .expect("nodes");
        for n in nodes {
            assert_eq!(
                (&n.log, n.commit),
                (&leader.log, leader.last_index()),
                "after the faults heal, node {} must hold and commit the leader's whole log",
                n.me
            );
        }
        for (&i, e) in &self.committed {
            assert_eq!(
                leader.entry(i),
                Some(e),
                "committed entry {i} is lost at the end"
            );
        }
    }
}

/// A random schedule on a [`Script`] of `nodes` nodes: `steps` times, play an election, have a
/// leader (old ones too) take a command, replicate from a leader to one node, or run a leader's
/// commit rule; `check` sees every node after each step. Cheap (no network), and it reaches the
/// paper's figure 8 orders of events, where a leader's entry reaches some nodes and not others.
pub fn random_schedule<R: Rules<u64>>(
    seed: u64,
    nodes: usize,
    steps: usize,
    mut check: impl FnMut(&[Raft<u64>]),
) -> Vec<Raft<u64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut s: Script<u64, R> = Script::new(nodes);
    s.random_election(&mut rng);
    let mut cmd = 0;
    for _ in 0..steps {
        let leaders: Vec<usize> = (0..nodes).filter(|&i| s.raft(i).leader.is_some()).collect();
        // The leader of the highest term never steps down, so there is always one.
        let leader = leaders[rng.random_range(0..leaders.len())];
        match rng.random_range(0..10) {
            0..=2 => {
                s.random_election(&mut rng);
            }
            3..=4 => {
                cmd += 1;
                s.propose(leader, cmd);
            }
            5..=7 if nodes > 1 => {
                let to = (leader + rng.random_range(1..nodes)) % nodes;
                s.replicate(leader, to);
            }
            _ => s.tick(leader),
        }
        let states: Vec<Raft<u64>> = (0..nodes).map(|i| s.raft(i).clone()).collect();
        check(&states);
    }
    (0..nodes).map(|i| s.raft(i).clone()).collect()
}
