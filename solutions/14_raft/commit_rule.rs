// Commit rule — when may a Raft leader tell clients "your write is durable"?
//
// A leader acknowledges a write once it is committed: from then on it survives any crash or
// leader change, and etcd answers the Kubernetes API server, which answers kubectl. Committing too
// early is the worst bug a consensus system can have: an acknowledged write silently disappears.
// Build `advance_commit`, the leader's side: move the commit index to the highest index that is
// safe. The PROPERTY: an entry any node ever reported committed is never overwritten, on any node,
// in any later term (the Raft paper's figure 8 shows a leader that counted replicas of an entry
// of an older term, committed it, and lost it). The commit index never moves back.
//
// Lab: 5 nodes, a leader change every ~130 ms, partitions. Turn LOSSES up and compare commit
// latency with log_replication's rule (wait for every node): a majority does not wait for the
// slowest follower.

use sdlings_kit::cluster::NodeId;
use sdlings_kit::raft::replication::{AppendEntries, AppendReply, Raft, Rules};
use sdlings_kit::raft::runs::{self, Knobs};

/// The rules of a Raft leader and follower; the commit rule is yours.
pub struct CommitRule;

impl Rules<u64> for CommitRule {
    /// The leader (`raft.leader` is `Some`) advances `raft.commit` to the highest index that is
    /// safe to commit, given what it knows is replicated where (`matched`, its own entry
    /// included). Never move it back.
    fn advance_commit(raft: &mut Raft<u64>) {
        let Some(leader) = &raft.leader else {
            return;
        };
        // The highest index a majority holds: sort what each node matched, highest first, and
        // take the majority-th (the leader's own `matched` entry counts it once).
        let mut matched = leader.matched.clone();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let majority = raft.nodes / 2 + 1;
        let on_majority = matched[majority - 1];
        // Only an entry of the leader's own term is committed by counting (§5.4.2): an older
        // entry on a majority can still be overwritten (figure 8). Committing an entry of this
        // term commits every entry before it, by the log matching property.
        if on_majority > raft.commit && raft.term_at(on_majority) == Some(raft.term) {
            raft.commit = on_majority;
        }
    }

    // ---- Given: you wrote these in log_replication ----------------------------------------

    fn append_entries(raft: &mut Raft<u64>, req: AppendEntries<u64>) -> AppendReply {
        let mut reply = AppendReply {
            term: raft.term,
            success: false,
            match_index: 0,
            conflict_term: None,
            conflict_index: 0,
        };
        if req.term < raft.term {
            return reply;
        }
        (raft.term, raft.leader, reply.term) = (req.term, None, req.term);
        match raft.term_at(req.prev_index) {
            None => reply.conflict_index = raft.last_index() + 1,
            Some(term) if term != req.prev_term => {
                let first = raft.log.iter().position(|e| e.term == term).unwrap_or(0);
                (reply.conflict_term, reply.conflict_index) = (Some(term), first as u64 + 1);
            }
            Some(_) => reply.success = true,
        }
        if !reply.success {
            return reply;
        }
        reply.match_index = req.prev_index + req.entries.len() as u64;
        for (index, entry) in (req.prev_index + 1..).zip(req.entries) {
            if raft.term_at(index) != Some(entry.term) {
                raft.log.truncate(index as usize - 1);
                raft.log.push(entry);
            }
        }
        if req.leader_commit > raft.commit {
            raft.commit = req.leader_commit.min(reply.match_index).max(raft.commit);
        }
        reply
    }

    fn on_append_reply(raft: &mut Raft<u64>, from: NodeId, reply: AppendReply) {
        if reply.term > raft.term {
            (raft.term, raft.leader) = (reply.term, None);
        }
        let last_of = |term| raft.log.iter().rposition(|e| e.term == term);
        let resume = match reply.conflict_term.and_then(last_of) {
            Some(position) => position as u64 + 2,
            None => reply.conflict_index,
        };
        let Some(leader) = raft.leader.as_mut().filter(|_| reply.term == raft.term) else {
            return;
        };
        if reply.success {
            leader.matched[from] = leader.matched[from].max(reply.match_index);
            leader.next[from] = leader.matched[from] + 1;
        } else {
            leader.next[from] = resume.max(leader.matched[from] + 1);
        }
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Nodes, run length, elections (ms between two, drawn) and message loss rates to compare.
const NODES: usize = 5;
const RUN_MS: u64 = 2_000;
const ELECT_EVERY_MS: (u64, u64) = (60, 200);
const LOSSES: [f64; 3] = [0.0, 0.05, 0.2];
const PARTITIONS: bool = true;
const SEED: u64 = 7;

fn main() {
    let knobs = Knobs {
        nodes: NODES,
        duration: std::time::Duration::from_millis(RUN_MS),
        partitions: PARTITIONS,
        elect_every_ms: ELECT_EVERY_MS,
        ..Knobs::default()
    };
    println!("{NODES} nodes, {RUN_MS} ms, a leader change every {ELECT_EVERY_MS:?} ms");
    runs::lab::<CommitRule>(&knobs, &LOSSES, SEED);
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use std::time::Duration;

    use sdlings_kit::raft::checks::{Safety, random_schedule, test_knobs};
    use sdlings_kit::raft::replication::{Entry, Script};

    use super::*;

    const SEEDS: u64 = 100;

    /// Leader 0 of `nodes` in `term`, whose log has entries of `terms`, with `matched` per node
    /// (its own included) and commit index `commit`; returns its commit index after the rule.
    fn commit_after(nodes: usize, term: u64, terms: &[u64], matched: &[u64], commit: u64) -> u64 {
        let mut raft = Raft::new(0, nodes);
        raft.log = terms.iter().map(|&term| Entry { term, cmd: 0 }).collect();
        raft.commit = commit;
        raft.become_leader(term);
        raft.leader.as_mut().unwrap().matched = matched.to_vec();
        CommitRule::advance_commit(&mut raft);
        raft.commit
    }

    #[test]
    fn the_leader_commits_the_highest_index_a_majority_holds_itself_included() {
        let log = [3; 6];
        assert_eq!(
            commit_after(5, 3, &log, &[6, 5, 3, 1, 0], 0),
            3,
            "indexes 1-3 are on 3 of 5 nodes (the leader, 1 and 2): a majority; 4 is on 2 only"
        );
        assert_eq!(
            commit_after(5, 3, &log, &[6, 6, 0, 0, 6], 0),
            6,
            "index 6 is on nodes 0, 1 and 4"
        );
        assert_eq!(commit_after(5, 3, &log, &[6, 2, 2, 1, 1], 0), 2);
        assert_eq!(
            commit_after(4, 3, &log, &[6, 5, 4, 0], 0),
            4,
            "4 nodes: a majority is 3, so index 4 (nodes 0, 1, 2)"
        );
    }

    #[test]
    fn a_single_node_commits_alone_and_two_nodes_need_both() {
        assert_eq!(
            commit_after(1, 2, &[2, 2], &[2], 0),
            2,
            "one node is its own majority"
        );
        assert_eq!(
            commit_after(2, 2, &[2, 2], &[2, 0], 0),
            0,
            "of 2 nodes a majority is 2: the leader alone is not enough"
        );
        assert_eq!(commit_after(2, 2, &[2, 2], &[2, 1], 0), 1);
        assert_eq!(
            commit_after(3, 2, &[2, 2], &[2, 0, 0], 0),
            0,
            "1 of 3 is not a majority"
        );
    }

    #[test]
    fn an_entry_of_an_older_term_is_never_committed_by_counting_replicas() {
        assert_eq!(
            commit_after(5, 4, &[1, 2, 4], &[3, 2, 2, 1, 1], 1),
            1,
            "figure 8 (c): index 2 (term 2) is on 3 of 5 nodes, but a term-3 log can still win \
             an election and overwrite it; only an entry of term 4 can be committed by counting"
        );
        assert_eq!(
            commit_after(3, 5, &[1, 3, 3], &[3, 3, 3], 0),
            0,
            "no entry of term 5 yet"
        );
    }

    #[test]
    fn an_entry_of_the_current_term_on_a_majority_commits_every_entry_before_it() {
        assert_eq!(
            commit_after(5, 4, &[1, 2, 4], &[3, 3, 3, 1, 1], 1),
            3,
            "figure 8 (e): index 3 (term 4) is on a majority, so 2 and 3 are committed"
        );
        assert_eq!(commit_after(5, 4, &[1, 2, 4, 4], &[4, 4, 3, 3, 0], 0), 3);
    }

    #[test]
    fn the_commit_index_never_moves_back() {
        assert_eq!(
            commit_after(5, 6, &[5, 5, 5, 6], &[4, 0, 0, 0, 0], 3),
            3,
            "a new leader that learned commit 3 and has no matches yet keeps 3"
        );
        assert_eq!(commit_after(3, 6, &[6, 6, 6, 6], &[4, 2, 1], 3), 3);
    }

    #[test]
    fn figure_8_the_entry_of_term_2_is_not_reported_committed_and_is_then_overwritten() {
        let mut s: Script<u64, CommitRule> = Script::new(5);
        s.elect(0, &[0, 1, 2]);
        s.propose(0, 10);
        for f in 1..5 {
            s.replicate(0, f);
        }
        s.tick(0);
        assert_eq!(s.raft(0).commit, 1, "term 1's entry is on every node");
        // (a) S1 leads term 2, its entry at index 2 reaches S2 only.
        s.elect(0, &[0, 1, 2]);
        s.propose(0, 20);
        s.replicate(0, 1);
        // (b) S5 leads term 3 with votes of S3, S4 and itself; its entry 2 reaches no one.
        s.elect(4, &[2, 3, 4]);
        s.propose(4, 30);
        // (c) S1 leads term 4 (votes of S1, S2, S3), hears S2 holds its entry of term 2 and
        // brings it to S3, then takes a command of term 4.
        s.elect(0, &[0, 1, 2]);
        s.replicate(0, 1);
        s.replicate(0, 2);
        s.propose(0, 40);
        s.tick(0);
        let on = |s: &Script<u64, CommitRule>, i: usize| s.raft(i).log.get(1).map(|e| e.term);
        assert_eq!(
            (on(&s, 0), on(&s, 1), on(&s, 2)),
            (Some(2), Some(2), Some(2)),
            "on 3 of 5 nodes"
        );
        assert_eq!(
            s.raft(0).commit,
            1,
            "figure 8 (c): index 2 is on a majority but of term 2, not the leader's term 4"
        );
        // (d) S5 wins term 5 (its last term 3 beats their 2) and overwrites index 2 everywhere.
        s.elect(4, &[1, 2, 3, 4]);
        for f in 0..4 {
            s.replicate(4, f);
        }
        assert!(
            (0..5).all(|i| on(&s, i) == Some(3)),
            "index 2 is now term 3's entry on every node"
        );
        s.propose(4, 50);
        for f in 0..4 {
            s.replicate(4, f);
        }
        s.tick(4);
        assert_eq!(
            s.raft(4).commit,
            3,
            "term 5's entry on a majority commits 1-3"
        );
    }

    #[test]
    fn figure_8_once_term_4s_entry_is_on_a_majority_index_2_is_committed_and_stays() {
        let mut s: Script<u64, CommitRule> = Script::new(5);
        s.elect(0, &[0, 1, 2]);
        s.propose(0, 10);
        for f in 1..5 {
            s.replicate(0, f);
        }
        s.elect(0, &[0, 1, 2]);
        s.propose(0, 20);
        s.replicate(0, 1);
        s.elect(4, &[2, 3, 4]);
        s.propose(4, 30);
        s.elect(0, &[0, 1, 2]);
        s.propose(0, 40);
        s.replicate(0, 1);
        s.replicate(0, 2);
        s.tick(0);
        assert_eq!(
            s.raft(0).commit,
            3,
            "figure 8 (e): index 3 (term 4) is on S1, S2 and S3"
        );
    }

    #[test]
    fn over_many_random_schedules_no_entry_reported_committed_is_ever_overwritten() {
        sdlings_kit::property::for_seeds(SEEDS, |rng| {
            let mut safety = Safety::default();
            let nodes = 3;
            let check = |nodes: &[Raft<u64>]| safety.check(Duration::ZERO, nodes);
            random_schedule::<CommitRule>(rng.random(), nodes, 400, check);
        });
    }

    #[test]
    fn over_many_seeds_no_entry_reported_committed_is_ever_overwritten() {
        sdlings_kit::property::for_seeds(SEEDS, |rng| {
            let mut safety = Safety::default();
            let check = |now, nodes: &[Raft<u64>]| safety.check(now, nodes);
            let out = runs::run::<CommitRule>(rng.random(), &test_knobs(), check);
            safety.converged(&out.last);
        });
    }
}
