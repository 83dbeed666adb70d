// Replicated KV — a key-value store on the Raft log: what etcd and Consul are.
//
// Raft gives an ordered log of committed commands; a service turns it into a state machine every
// node computes alike. Clients retry (a reply was lost, a leader crashed), so the same request can
// reach the log twice: a retried "transfer 100" must not run twice. Build the state machine `Kv`:
// `on_request` (what a node does with a client's request) and `apply_committed` (apply what is
// newly committed). The PROPERTY, over 100 seeds of leader changes, partitions, crashes, loss and
// retries: the history of what clients were told is linearizable (cluster::History checks it); each
// request takes effect once, however often it was sent; a restarted node, which keeps only its
// term and log on disk, rebuilds the same map. Reads go through the log too: a deposed leader that
// does not know it yet would answer from a stale map.
//
// Lab: 3 nodes, crashes and partitions. Turn LOSSES up: latency and retries grow, every retry is
// answered once, and the history stays linearizable.

use std::collections::BTreeMap;

use sdlings_kit::cluster::{KvOp, KvRet, NodeId};
use sdlings_kit::raft::kv::{self, Answer, Command, KvKnobs, KvMachine};
use sdlings_kit::raft::replication::{AppendEntries, AppendReply, Index, Raft, Rules};

/// The key-value state machine: everything in it is derived from the applied log prefix.
#[derive(Default)]
pub struct Kv {
    map: BTreeMap<u64, u64>,
    /// Per client: the number of its last applied request, and that request's answer.
    sessions: BTreeMap<NodeId, (u64, KvRet)>,
    /// The index of the last entry applied.
    applied: Index,
}

impl KvMachine for Kv {
    /// A client's request (`cmd.client`, `cmd.seq`, `cmd.op`). A node that is not leading says so.
    /// A request already applied (a retry) gets its answer again. Anything else goes in the log
    /// (reads too); it is answered when applied.
    fn on_request(&mut self, raft: &mut Raft<Command>, cmd: Command) -> Option<Answer> {
        todo!("not leading? already applied? else into the log")
    }

    /// Applies the committed entries not applied yet, in log order, each once; returns each
    /// entry's index and answer. An entry whose request was applied before (a retry that reached
    /// the log twice) changes nothing and answers what the first one did.
    fn apply_committed(&mut self, raft: &Raft<Command>) -> Vec<(Index, KvRet)> {
        todo!("apply the newly committed entries, once each")
    }

    fn get(&self, key: u64) -> Option<u64> {
        self.map.get(&key).copied()
    }
}

/// Given: you wrote these in log_replication and commit_rule.
pub struct GivenRaft;

impl Rules<Command> for GivenRaft {
    fn append_entries(raft: &mut Raft<Command>, req: AppendEntries<Command>) -> AppendReply {
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

    fn on_append_reply(raft: &mut Raft<Command>, from: NodeId, reply: AppendReply) {
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

    fn advance_commit(raft: &mut Raft<Command>) {
        let Some(leader) = &raft.leader else {
            return;
        };
        let mut matched = leader.matched.clone();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let on_majority = matched[raft.nodes / 2];
        if on_majority > raft.commit && raft.term_at(on_majority) == Some(raft.term) {
            raft.commit = on_majority;
        }
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Nodes, clients, run length, and the message loss rates to compare.
const NODES: usize = 3;
const CLIENTS: usize = 4;
const OPS_PER_CLIENT: usize = 40;
const RUN_MS: u64 = 4_000;
const CRASHES: bool = true;
const LOSSES: [f64; 3] = [0.0, 0.05, 0.2];
const SEED: u64 = 7;

fn main() {
    let knobs = KvKnobs {
        nodes: NODES,
        clients: CLIENTS,
        ops_per_client: OPS_PER_CLIENT,
        duration: std::time::Duration::from_millis(RUN_MS),
        crashes: CRASHES,
        ..KvKnobs::default()
    };
    println!("{NODES} nodes, {CLIENTS} clients x {OPS_PER_CLIENT} operations, crashes: {CRASHES}");
    kv::lab::<GivenRaft, Kv>(&knobs, &LOSSES, SEED);
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit::raft::replication::Entry;

    use super::*;

    const SEEDS: u64 = 100;

    fn put(client: NodeId, seq: u64, key: u64, value: u64) -> Command {
        let op = KvOp::Put(key, value);
        Command { client, seq, op }
    }

    fn get(client: NodeId, seq: u64, key: u64) -> Command {
        let op = KvOp::Get(key);
        Command { client, seq, op }
    }

    /// A node whose log holds `cmds` (term 1), committed up to `commit`.
    fn node_with(cmds: &[Command], commit: Index) -> Raft<Command> {
        let mut raft = Raft::new(0, 3);
        raft.term = 1;
        raft.log = cmds
            .iter()
            .map(|c| Entry {
                term: 1,
                cmd: c.clone(),
            })
            .collect();
        raft.commit = commit;
        raft
    }

    #[test]
    fn committed_entries_are_applied_in_order_once_each_with_their_answers() {
        let mut raft = node_with(&[put(7, 1, 1, 10), get(8, 1, 1), put(7, 2, 1, 20)], 2);
        let mut kv = Kv::default();
        let first = kv.apply_committed(&raft);
        assert_eq!(
            first,
            [(1, KvRet::Ok), (2, KvRet::Value(Some(10)))],
            "in log order"
        );
        assert_eq!(
            kv.apply_committed(&raft),
            [],
            "nothing newly committed: nothing applied"
        );
        assert_eq!(kv.get(1), Some(10), "index 3 is not committed: not applied");
        raft.commit = 3;
        assert_eq!(kv.apply_committed(&raft), [(3, KvRet::Ok)]);
        assert_eq!(kv.get(1), Some(20));
        assert_eq!(Kv::default().apply_committed(&node_with(&[], 0)), []);
    }

    #[test]
    fn a_request_that_reached_the_log_twice_takes_effect_once() {
        // Client 7's put reached the log, its answer was lost, it retried: the retry came after
        // client 8's put, and must not undo it.
        let raft = node_with(&[put(7, 1, 1, 10), put(8, 1, 1, 20), put(7, 1, 1, 10)], 3);
        let mut kv = Kv::default();
        let answers = kv.apply_committed(&raft);
        assert_eq!(
            answers[2],
            (3, KvRet::Ok),
            "the retry is answered as the first was"
        );
        assert_eq!(
            kv.get(1),
            Some(20),
            "client 7's put took effect once, before client 8's"
        );
        let raft = node_with(&[get(7, 1, 1), put(8, 1, 1, 5), get(7, 1, 1)], 3);
        let answers = Kv::default().apply_committed(&raft);
        assert_eq!(
            answers[2],
            (3, KvRet::Value(None)),
            "a retried read answers what the read returned when it took effect"
        );
        // Client 7's requests 1 and 2 each reached the log again later (delayed copies).
        let (a, b) = (put(7, 1, 1, 10), put(7, 2, 1, 20));
        let log = [a.clone(), b.clone(), a, put(8, 1, 1, 30), b];
        let mut kv = Kv::default();
        kv.apply_committed(&node_with(&log, 5));
        assert_eq!(
            kv.get(1),
            Some(30),
            "delayed copies of client 7's requests 1 and 2 must not run again: client 8's put stays"
        );
    }

    #[test]
    fn requests_are_told_apart_per_client_not_by_number_alone() {
        let raft = node_with(&[put(7, 1, 1, 10), put(8, 1, 2, 20), put(8, 2, 1, 30)], 3);
        let mut kv = Kv::default();
        kv.apply_committed(&raft);
        assert_eq!(
            (kv.get(1), kv.get(2)),
            (Some(30), Some(20)),
            "client 8's request 1 is not client 7's request 1"
        );
    }

    fn leader_with(cmds: &[Command], commit: Index) -> (Raft<Command>, Kv) {
        let mut raft = node_with(cmds, commit);
        raft.become_leader(2);
        let mut kv = Kv::default();
        kv.apply_committed(&raft);
        (raft, kv)
    }

    #[test]
    fn a_retry_of_an_applied_request_is_answered_again_without_a_new_entry() {
        let (mut raft, mut kv) = leader_with(&[put(7, 1, 1, 10), get(8, 1, 1)], 2);
        let answer = kv.on_request(&mut raft, put(7, 1, 1, 10));
        assert_eq!(
            answer,
            Some(Answer::Done(KvRet::Ok)),
            "request 1 of client 7 was applied"
        );
        let answer = kv.on_request(&mut raft, get(8, 1, 1));
        assert_eq!(answer, Some(Answer::Done(KvRet::Value(Some(10)))));
        assert_eq!(raft.log.len(), 2, "nothing new goes in the log");
        let answer = kv.on_request(&mut raft, get(9, 1, 1));
        assert_eq!(
            answer, None,
            "client 9's request 1 is new, whatever client 8's number"
        );
    }

    #[test]
    fn a_request_not_yet_applied_goes_in_the_log_even_when_sent_again() {
        let (mut raft, mut kv) = leader_with(&[put(7, 1, 1, 10)], 0);
        assert_eq!(kv.on_request(&mut raft, put(7, 1, 1, 10)), None);
        assert_eq!(
            raft.log.len(),
            2,
            "not applied yet (the first copy may be lost with a deposed leader): append again; \
             applying drops the duplicate"
        );
        assert_eq!(
            raft.log[1].term, 2,
            "appended as an entry of the leader's term"
        );
    }

    #[test]
    fn a_read_goes_through_the_log_not_the_leaders_map() {
        let (mut raft, mut kv) = leader_with(&[put(7, 1, 1, 10)], 1);
        assert_eq!(
            kv.on_request(&mut raft, get(8, 1, 1)),
            None,
            "a leader cannot know it is still the leader: a newer one may have committed writes \
             it has not seen. The read is answered when its entry is committed and applied"
        );
        assert_eq!(raft.log.len(), 2);
    }

    #[test]
    fn a_node_that_is_not_leading_says_so_and_appends_nothing() {
        let mut raft = node_with(&[put(7, 1, 1, 10)], 1);
        let mut kv = Kv::default();
        kv.apply_committed(&raft);
        assert_eq!(
            kv.on_request(&mut raft, put(8, 1, 1, 3)),
            Some(Answer::NotLeader)
        );
        assert_eq!(
            kv.on_request(&mut raft, get(8, 1, 1)),
            Some(Answer::NotLeader)
        );
        assert_eq!(raft.log.len(), 1);
    }

    #[test]
    fn over_many_seeds_clients_see_a_linearizable_store_through_crashes_and_retries() {
        sdlings_kit::property::for_seeds(SEEDS, |rng| {
            let seed = rng.random();
            let knobs = KvKnobs {
                ops_per_client: 8,
                ..KvKnobs::default()
            };
            let out = kv::run::<GivenRaft, Kv>(seed, &knobs);
            if let Err(e) = out.history.check_linearizable() {
                panic!("clients saw a history no single copy of the store could give: {e}");
            }
            for (commit, map) in &out.last {
                for (other_commit, other) in &out.last {
                    assert!(
                        commit != other_commit || map == other,
                        "two nodes applied the same {commit} entries but hold different maps: \
                         {map:?} vs {other:?}"
                    );
                }
            }
        });
    }
}
