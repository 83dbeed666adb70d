// Log replication — Raft's AppendEntries: a leader's log copied to followers, in order, over a
// network that loses, duplicates and reorders messages, with old leaders still talking.
//
// Every write to etcd (so every Kubernetes object), Consul or CockroachDB is an entry in a Raft
// log; a follower holds exactly the leader's entries, in the leader's order, or the state machines
// built on them drift apart. Build both halves: the follower's `append_entries` (refuse an older
// term; refuse unless its log holds the entry just before the new ones; cut a conflicting suffix,
// only that; learn the commit index) and the leader's `on_append_reply` (what it now knows is
// replicated, and where to resume after a refusal). The PROPERTY, over 100 seeds of partitions,
// loss, duplication and leader changes: two logs with an entry of the same index and term are
// identical up to it (log matching), a committed entry never changes, and the logs converge. A
// refusal says where the follower's log diverges, so a leader backs up a whole term per round trip.
//
// Lab: 5 nodes, a leader change every ~130 ms and partitions. Raise LOSSES and watch commit
// latency and the entries re-sent per follower grow.

use sdlings_kit::cluster::NodeId;
use sdlings_kit::raft::replication::{
    AppendEntries, AppendReply, Raft, Rules, commit_when_on_every_node,
};
use sdlings_kit::raft::runs::{self, Knobs};

/// The rules of log replication, called by the harness's nodes (`sdlings_kit::raft`).
pub struct Replication;

impl Rules<u64> for Replication {
    /// A node receives an AppendEntries. Refuse a request from an older term. Adopt a newer term
    /// (a node that was leading steps down). Refuse if the log has no entry at `prev_index` of
    /// `prev_term`, with the hint (`conflict_term`, `conflict_index`). Otherwise keep the entries,
    /// cutting the log only where an entry conflicts (same index, other term), and move the commit
    /// index up to `leader_commit`, but not past the last entry this request covered.
    fn append_entries(raft: &mut Raft<u64>, req: AppendEntries<u64>) -> AppendReply {
        let refuse = |raft: &Raft<u64>, conflict_term, conflict_index| AppendReply {
            term: raft.term,
            success: false,
            match_index: 0,
            conflict_term,
            conflict_index,
        };
        if req.term < raft.term {
            // A leader of an older term: it must learn it was deposed, and change nothing here.
            return refuse(raft, None, 0);
        }
        raft.term = req.term;
        raft.leader = None; // one leader per term: whoever sent this leads it
        match raft.term_at(req.prev_index) {
            None => return refuse(raft, None, raft.last_index() + 1),
            Some(term) if term != req.prev_term => {
                // Hint: the first index of the conflicting term, so that the leader skips the
                // whole term in one round trip instead of one entry per round trip.
                let first = raft.log.iter().position(|e| e.term == term).unwrap_or(0);
                return refuse(raft, Some(term), first as u64 + 1);
            }
            Some(_) => {}
        }
        let last_new = req.prev_index + req.entries.len() as u64;
        for (index, entry) in (req.prev_index + 1..).zip(req.entries) {
            match raft.term_at(index) {
                // Already there: a duplicate or a delayed request. Keep it, and what follows it.
                Some(term) if term == entry.term => {}
                // A conflict: this entry and everything after it came from a deposed leader.
                Some(_) => {
                    raft.log.truncate(index as usize - 1);
                    raft.log.push(entry);
                }
                None => raft.log.push(entry),
            }
        }
        if req.leader_commit > raft.commit {
            // Only what this request proved matching: entries past `last_new` are unchecked. And
            // never back: a delayed request may cover less than the commit index already is.
            raft.commit = req.leader_commit.min(last_new).max(raft.commit);
        }
        AppendReply {
            term: raft.term,
            success: true,
            match_index: last_new,
            conflict_term: None,
            conflict_index: 0,
        }
    }

    /// A leader receives a reply from `from`. A reply from an older term is stale: ignore it. A
    /// newer term means this node was deposed: adopt it and step down. A success raises what is
    /// known to be replicated on `from` (never lowers it: replies arrive late and twice). A
    /// refusal moves `from`'s next index back, using the hint to skip the conflicting term.
    fn on_append_reply(raft: &mut Raft<u64>, from: NodeId, reply: AppendReply) {
        if reply.term > raft.term {
            raft.term = reply.term;
            raft.leader = None;
            return;
        }
        if reply.term < raft.term {
            return;
        }
        // The leader's last entry of the conflicting term, if it has that term at all.
        let last_of = |term| raft.log.iter().rposition(|e| e.term == term);
        let resume = match reply.conflict_term.and_then(last_of) {
            Some(position) => position as u64 + 2,
            None => reply.conflict_index,
        };
        let Some(leader) = raft.leader.as_mut() else {
            return;
        };
        if reply.success {
            leader.matched[from] = leader.matched[from].max(reply.match_index);
            leader.next[from] = leader.matched[from] + 1;
        } else {
            // Never behind what is known to match (a late refusal must not undo a success).
            leader.next[from] = resume.max(leader.matched[from] + 1);
        }
    }

    /// Given: commit what every node holds (commit_rule teaches the real rule).
    fn advance_commit(raft: &mut Raft<u64>) {
        commit_when_on_every_node(raft);
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
    runs::lab::<Replication>(&knobs, &LOSSES, SEED);
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::raft::checks::*;
    use sdlings_kit::raft::replication::Script;

    use super::*;

    const SEEDS: u64 = 100;

    #[test]
    fn a_follower_appends_entries_that_follow_a_matching_entry_and_learns_the_commit_index() {
        let mut f = follower(2, &[1, 1]);
        let reply = Replication::append_entries(&mut f, request(2, (2, 1), entries(&[2, 2], 3), 3));
        assert!(
            reply.success,
            "the follower holds index 2 of term 1: {reply:?}"
        );
        assert_eq!(reply.match_index, 4, "the request covered indexes 3 and 4");
        assert_eq!((reply.term, terms(&f)), (2, vec![1, 1, 2, 2]));
        assert_eq!(
            f.commit, 3,
            "the leader committed up to 3, and the follower holds it"
        );
    }

    #[test]
    fn a_request_from_an_older_term_is_refused_and_changes_nothing() {
        let mut f = follower(3, &[1, 3]);
        let before = f.clone();
        let reply = Replication::append_entries(&mut f, request(2, (1, 1), entries(&[2], 9), 2));
        assert!(!reply.success, "term 2 < 3: the sender was deposed");
        assert_eq!(
            reply.term, 3,
            "the reply carries the newer term, so the old leader learns it"
        );
        assert_eq!(
            f, before,
            "a deposed leader's request must not change the log or commit"
        );
    }

    #[test]
    fn a_newer_term_is_adopted_and_a_node_that_was_leading_steps_down() {
        let mut old = follower(2, &[1, 2]);
        old.become_leader(2);
        let reply = Replication::append_entries(&mut old, request(4, (5, 3), vec![], 0));
        assert!(!reply.success, "it has no index 5");
        assert_eq!(
            (old.term, reply.term),
            (4, 4),
            "the newer term is adopted, even on refusal"
        );
        assert!(
            old.leader.is_none(),
            "term 4 has another leader: this one steps down"
        );
    }

    #[test]
    fn the_consistency_check_refuses_a_gap_or_another_term_with_a_hint_and_keeps_the_log() {
        let mut short = follower(3, &[1, 1]);
        let reply =
            Replication::append_entries(&mut short, request(3, (5, 3), entries(&[3], 6), 0));
        assert!(
            !reply.success,
            "no entry at index 5: appending after a gap breaks the log"
        );
        assert_eq!(
            (reply.conflict_term, reply.conflict_index),
            (None, 3),
            "resume at 3"
        );
        assert_eq!(terms(&short), [1, 1]);
        let mut f = follower(5, &[1, 1, 2, 2, 2, 2]);
        let reply = Replication::append_entries(&mut f, request(5, (5, 4), entries(&[5], 6), 0));
        assert!(!reply.success, "index 5 is of term 2, not 4");
        assert_eq!(
            (reply.conflict_term, reply.conflict_index),
            (Some(2), 3),
            "the hint names the conflicting term and the follower's first index of it"
        );
        assert_eq!(
            terms(&f),
            [1, 1, 2, 2, 2, 2],
            "a refused request changes no entry"
        );
    }

    #[test]
    fn a_conflicting_suffix_is_cut_and_replaced_by_the_leaders_entries() {
        let mut f = follower(2, &[1, 1, 2, 2, 2]);
        let reply = Replication::append_entries(&mut f, request(3, (2, 1), entries(&[3], 3), 0));
        assert!(reply.success);
        assert_eq!(
            terms(&f),
            [1, 1, 3],
            "index 3 conflicts (term 2 vs 3): it and everything after it came from a deposed \
             leader and go; the leader's entry replaces them"
        );
    }

    #[test]
    fn a_delayed_older_request_does_not_cut_the_newer_entries_that_follow_it() {
        let mut f = follower(1, &[]);
        Replication::append_entries(&mut f, request(1, (0, 0), entries(&[1, 1, 1, 1], 1), 0));
        let reply = Replication::append_entries(&mut f, request(1, (0, 0), entries(&[1, 1], 1), 0));
        assert!(reply.success);
        assert_eq!(
            f.log.len(),
            4,
            "the older request (2 entries) arrived late: its entries are already here, none \
             conflicts, so nothing is cut (the leader may already count entries 3 and 4)"
        );
        assert_eq!(reply.match_index, 2, "it covered indexes 1 and 2 only");
        let reply = Replication::append_entries(&mut f, request(1, (1, 1), entries(&[1], 2), 0));
        assert!(
            reply.success && f.log.len() == 4,
            "a duplicate changes nothing either"
        );
        let reply = Replication::append_entries(&mut f, request(1, (0, 0), entries(&[1; 6], 1), 0));
        assert_eq!(
            (f.log.len(), reply.match_index),
            (6, 6),
            "entries 1-4 are already here; entries 5 and 6 that follow them are appended"
        );
    }

    #[test]
    fn the_commit_index_stops_at_the_last_entry_the_request_covered_and_never_goes_back() {
        let mut f = follower(2, &[1, 1, 1]);
        Replication::append_entries(&mut f, request(2, (2, 1), vec![], 5));
        assert_eq!(
            f.commit, 2,
            "only indexes 1-2 were checked against the leader; index 3 may be a deposed \
             leader's entry, so commit min(leader_commit 5, last index covered 2)"
        );
        Replication::append_entries(&mut f, request(2, (3, 1), vec![], 3));
        assert_eq!(f.commit, 3);
        Replication::append_entries(&mut f, request(2, (1, 1), vec![], 1));
        assert_eq!(
            f.commit, 3,
            "a delayed request with an older commit index moves nothing back"
        );
        Replication::append_entries(&mut f, request(2, (2, 1), vec![], 5));
        assert_eq!(
            f.commit, 3,
            "a delayed request that covered only up to 2 moves nothing back either, whatever its \
             leader_commit: min(5, 2) is below 3 (etcd's commitTo only ever raises it)"
        );
    }

    #[test]
    fn a_success_moves_match_and_next_forward_and_a_late_duplicate_moves_nothing_back() {
        let mut l = leader(3, &[1, 1, 3, 3, 3, 3]);
        Replication::on_append_reply(&mut l, 2, success(3, 5));
        let s = l.leader.clone().unwrap();
        assert_eq!(
            (s.matched[2], s.next[2]),
            (5, 6),
            "node 2 matches up to 5; send 6 next"
        );
        Replication::on_append_reply(&mut l, 2, success(3, 3));
        let s = l.leader.clone().unwrap();
        assert_eq!(
            (s.matched[2], s.next[2]),
            (5, 6),
            "an older success arriving late"
        );
        assert_eq!(s.matched[0], 6, "the leader's own entry is untouched");
    }

    #[test]
    fn a_stale_reply_is_ignored_and_a_newer_term_deposes_the_leader() {
        let mut l = leader(3, &[1, 1, 3]);
        let before = l.clone();
        Replication::on_append_reply(&mut l, 1, success(2, 3));
        assert_eq!(
            l, before,
            "a reply to this node's term-2 request says nothing about term 3"
        );
        Replication::on_append_reply(&mut l, 1, refusal(4, None, 0));
        assert!(
            l.leader.is_none() && l.term == 4,
            "a newer term exists: step down, adopt it"
        );
    }

    #[test]
    fn a_refusal_backs_up_past_the_conflicting_term_never_behind_a_known_match() {
        let next = |l: &Raft<u64>| l.leader.as_ref().unwrap().next[1];
        let mut l = leader(5, &[1, 1, 2, 2, 2, 5, 5]);
        Replication::on_append_reply(&mut l, 1, refusal(5, Some(3), 4));
        assert_eq!(next(&l), 4, "no term 3 here: resume at its first index");
        Replication::on_append_reply(&mut l, 1, refusal(5, Some(2), 3));
        assert_eq!(
            next(&l),
            6,
            "the leader has term 2 too, up to index 5: resume after its last entry of that term"
        );
        Replication::on_append_reply(&mut l, 1, refusal(5, None, 2));
        assert_eq!(next(&l), 2, "a short log: resume past its end");
        Replication::on_append_reply(&mut l, 1, success(5, 4));
        Replication::on_append_reply(&mut l, 1, refusal(5, None, 2));
        assert_eq!(next(&l), 5, "a late refusal: 1-4 are known to match");
    }

    /// Round trips for leader 0 (of `leader` terms, elected in `term`) to repair node 1's log.
    fn repair(term: u64, leader: &[u64], follower: &[u64]) -> usize {
        let mut s: Script<u64, Replication> = Script::new(3);
        s.peers[0].raft.log = entries(leader, 1);
        s.peers[1].raft.log = entries(follower, 1);
        s.peers[1].raft.term = *follower.last().unwrap_or(&0);
        s.peers[0].raft.term = term - 1;
        s.elect(0, &[0, 2]);
        let trips = s.replicate(0, 1);
        assert_eq!(
            s.raft(1).log,
            s.raft(0).log,
            "after repair the follower holds the leader's log"
        );
        trips
    }

    #[test]
    fn a_divergent_follower_is_repaired_in_a_round_trip_per_term_not_per_entry() {
        let long = |t: u64, n: usize| vec![t; n];
        let cases = [
            // A follower 60 entries behind, and one 60 entries of an old term ahead.
            ([long(1, 3), long(4, 60)].concat(), long(1, 2), 2),
            (
                [long(1, 5), long(4, 10)].concat(),
                [long(1, 5), long(2, 30), long(3, 30)].concat(),
                3,
            ),
            (
                [long(1, 5), long(2, 10), long(5, 10)].concat(),
                [long(1, 5), long(2, 15), long(3, 10)].concat(),
                4,
            ),
        ];
        for (leader, follower, most) in cases {
            let trips = repair(6, &leader, &follower);
            assert!(
                trips <= most,
                "{trips} round trips to repair a follower of terms {follower:?}: a refusal's hint \
                 lets the leader skip a whole term at once (at most {most} here), not one entry"
            );
        }
    }

    #[test]
    fn over_many_seeds_logs_match_committed_entries_stay_and_all_logs_converge() {
        sdlings_kit::property::for_seeds(SEEDS, |rng| {
            let mut safety = Safety::default();
            let check = |now, nodes: &[Raft<u64>]| safety.check(now, nodes);
            let out = runs::run::<Replication>(rng.random(), &test_knobs(), check);
            safety.converged(&out.last);
        });
    }
}
