// Raft election — terms, one vote per term, randomised timeouts: never two leaders in one term.
//
// Raft (etcd, Consul, CockroachDB, TiKV) replicates a log through one leader per *term*. When a
// follower hears no heartbeat for an election timeout, it starts a new term as a candidate and
// asks every peer for a vote; a majority makes it leader. If etcd's leader's machine dies, the
// cluster stops accepting writes until this election picks the next one, so it must be quick.
//
// Build `Raft`, a node as a state machine (the way etcd's raft and raft-rs are driven). The
// property: at most one leader per term, whatever the network does (partitions, loss, duplicated
// and reordered messages, crashes): a node votes at most once per term, even across a crash (its
// term and vote reach its `Disk` before its reply leaves), and a higher term seen anywhere makes
// a node a follower of that term. Liveness: once the network heals, one leader emerges soon and
// its heartbeats keep every follower from starting elections.
//
// Lab: 5 nodes, a cold start then the leader crashed. Compare fixed and randomised election
// timeouts in TIMEOUTS_MS: fixed ones split the vote again and again; widen the range, add LOSS.

#[allow(unused_imports)] // yours to use
use std::collections::BTreeSet;
use std::time::Duration;

#[allow(unused_imports)] // yours to use
use rand::RngExt;
use sdlings_kit::cluster::{Ctx, Disk, Node, NodeId};
use sdlings_kit::raft::election::{Elector, HardState, LabKnobs, Msg, Role, Timing, election_lab};

#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct Raft {
    /// Survives a crash: the current term and the vote cast in it. Keep it up to date.
    disk: Disk<HardState>,
    timing: Timing,
    /// The same as the disk's, kept in memory too.
    term: u64,
    voted_for: Option<NodeId>,
    role: Role,
    /// As a candidate: who voted for it in the current term, itself included.
    votes: BTreeSet<NodeId>,
    /// When (on its own clock) to stand for election, unless a leader is heard from first.
    election_deadline: Option<Duration>,
    /// As a leader: when to send the next heartbeats.
    next_heartbeat: Duration,
}

impl Elector for Raft {
    fn role(&self) -> Role {
        self.role
    }
    fn term(&self) -> u64 {
        self.term
    }
}

// ---- Your part -------------------------------------------------------------------------------
// Add the helper methods you want (persisting, resetting the timer, standing, stepping down).

impl Raft {
    /// A node starting (or restarting after a crash) with what is on its disk, as a follower.
    pub fn new(disk: Disk<HardState>, timing: Timing) -> Self {
        let _ = (disk, timing); // (only silences "unused variable" until you use them: delete it)
        todo!("restore the term and vote from the disk; start as a follower")
    }
}

impl Node for Raft {
    type Msg = Msg;

    /// Every tick of this node's clock (`ctx.now()`): the election timeout, the heartbeats.
    fn on_tick(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let _ = ctx; // (only silences "unused variable": delete it)
        todo!("stand for election when the timeout expires; as leader, heartbeat on time")
    }

    /// A RequestVote, a Vote or a Heartbeat arrived from `from`.
    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        let _ = (from, msg, ctx); // (only silences "unused variable": delete it)
        todo!("newer terms first; then vote once per term, count votes, follow the leader")
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const NODES: usize = 5;
const LOSS: f64 = 0.0;
const RUNS: u64 = 20;
/// Election timeouts (min, max) in ms, one row each; min == max is a fixed timeout.
const TIMEOUTS_MS: [(u64, u64); 4] = [(150, 150), (150, 160), (150, 300), (150, 600)];
const HEARTBEAT_MS: u64 = 30;

fn main() {
    let knobs = LabKnobs {
        nodes: NODES,
        loss: LOSS,
        runs: RUNS,
        timeouts_ms: TIMEOUTS_MS.to_vec(),
        heartbeat_ms: HEARTBEAT_MS,
        crash_at: Duration::from_millis(1_000),
        end: Duration::from_millis(2_500),
    };
    election_lab(&knobs, Raft::new);
}

#[cfg(test)]
mod tests {
    use sdlings_kit::cluster::Probe;
    use sdlings_kit::property::for_seeds;
    use sdlings_kit::raft::election::{Recorded, tick_until_sends};

    use super::*;

    const SEEDS: u64 = 100;
    /// The tests' timers: election timeouts of 150-300 ms, heartbeats every 30 ms.
    const TIMING: Timing = Timing::millis(150, 300, 30);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn fresh() -> (Disk<HardState>, Raft) {
        let disk = Disk::default();
        (disk.clone(), Raft::new(disk, TIMING))
    }

    fn on_disk(disk: &Disk<HardState>) -> (u64, Option<NodeId>) {
        disk.read(|d| (d.term, d.voted_for))
    }

    /// Node `me` of five standing for election: returns it as a candidate of term 1.
    fn candidate(me: NodeId) -> (Disk<HardState>, Raft, Probe) {
        let (disk, mut node) = fresh();
        let mut probe = Probe::new(me, 5);
        tick_until_sends(&mut probe, &mut node, 0);
        (disk, node, probe)
    }

    /// Node 0 of five, leader of term 1 (votes from 1 and 2).
    fn leader() -> (Disk<HardState>, Raft, Probe) {
        let (disk, mut node, mut probe) = candidate(0);
        probe.deliver(&mut node, 1, vote(1, true));
        probe.deliver(&mut node, 2, vote(1, true));
        assert_eq!(node.role(), Role::Leader, "3 votes of 5 make a leader");
        (disk, node, probe)
    }

    fn vote(term: u64, granted: bool) -> Msg {
        Msg::Vote { term, granted }
    }

    fn ask(term: u64) -> Msg {
        Msg::RequestVote { term }
    }

    fn beat(term: u64) -> Msg {
        Msg::Heartbeat { term }
    }

    #[test]
    fn a_follower_that_hears_no_leader_stands_for_the_next_term_and_asks_every_peer() {
        let (disk, mut node) = fresh();
        let mut probe = Probe::new(2, 5);
        let (at, sent) = tick_until_sends(&mut probe, &mut node, 0);
        assert!(
            (150..=300).contains(&at),
            "the first election starts one election timeout (150-300 ms) after the start, not \
             at {at} ms"
        );
        let asked = [0, 1, 3, 4].map(|p| (p, ask(1)));
        assert_eq!(sent, asked, "a candidate of term 1 asks each peer once");
        assert_eq!((node.role(), node.term()), (Role::Candidate, 1));
        assert_eq!(
            on_disk(&disk),
            (1, Some(2)),
            "a candidate votes for itself, and its term and vote are on disk"
        );
    }

    #[test]
    fn a_candidate_wins_with_a_majority_counting_itself_and_each_voter_once() {
        let (_, mut node, mut probe) = candidate(2);
        for (from, msg) in [(0, vote(1, true)), (0, vote(1, true)), (1, vote(1, false))] {
            assert!(probe.deliver(&mut node, from, msg).is_empty());
            assert_eq!(
                node.role(),
                Role::Candidate,
                "itself and node 0 (counted once, however often its vote arrives) are 2 of 5: \
                 not a majority"
            );
        }
        let sent = probe.deliver(&mut node, 4, vote(1, true));
        assert_eq!(node.role(), Role::Leader, "itself, 0 and 4: 3 of 5");
        let heartbeats = [0, 1, 3, 4].map(|p| (p, beat(1)));
        assert_eq!(sent, heartbeats, "a new leader tells every peer at once");
        let (_, mut node) = fresh();
        let mut probe = Probe::new(0, 4);
        tick_until_sends(&mut probe, &mut node, 0);
        probe.deliver(&mut node, 1, vote(1, true));
        assert_eq!(
            node.role(),
            Role::Candidate,
            "of 4 nodes, 2 are half, not a majority: another candidate could get the other 2"
        );
        probe.deliver(&mut node, 3, vote(1, true));
        assert_eq!(node.role(), Role::Leader, "3 of 4");
    }

    #[test]
    fn votes_for_an_earlier_term_do_not_count_in_a_later_election() {
        let (_, mut node, mut probe) = candidate(0);
        probe.deliver(&mut node, 1, vote(1, true));
        let (at, _) = tick_until_sends(&mut probe, &mut node, 301);
        assert_eq!(node.term(), 2, "no majority by {at} ms: it stands again");
        probe.deliver(&mut node, 1, vote(1, true));
        probe.deliver(&mut node, 2, vote(1, true));
        assert_eq!(
            node.role(),
            Role::Candidate,
            "votes granted in term 1, arriving late, are not votes for term 2"
        );
        probe.deliver(&mut node, 3, vote(2, true));
        assert_eq!(
            node.role(),
            Role::Candidate,
            "in term 2 only itself and node 3 voted for it (node 1's vote was for term 1): 2 of 5"
        );
        probe.deliver(&mut node, 4, vote(2, true));
        assert_eq!(node.role(), Role::Leader, "two votes of term 2 and its own");
    }

    #[test]
    fn a_node_grants_one_vote_per_term_and_writes_it_to_disk_before_replying() {
        let (disk, mut node) = fresh();
        let mut probe = Probe::new(0, 5);
        assert_eq!(probe.deliver(&mut node, 1, ask(1)), [(1, vote(1, true))]);
        assert_eq!(
            on_disk(&disk),
            (1, Some(1)),
            "the term and the vote are on disk when the reply leaves"
        );
        assert_eq!(
            probe.deliver(&mut node, 3, ask(1)),
            [(3, vote(1, false))],
            "it voted for 1 in term 1: a second candidate of term 1 is refused"
        );
        assert_eq!(
            probe.deliver(&mut node, 1, ask(1)),
            [(1, vote(1, true))],
            "the same candidate asking again (its reply was lost) gets the same answer"
        );
        assert_eq!(
            probe.deliver(&mut node, 3, ask(2)),
            [(3, vote(2, true))],
            "term 2 is a new term: a new vote"
        );
        assert_eq!(on_disk(&disk), (2, Some(3)));
    }

    #[test]
    fn a_request_from_an_older_term_is_refused_with_the_newer_term() {
        let disk: Disk<HardState> = Disk::default();
        disk.write(|d| d.term = 5);
        let mut node = Raft::new(disk.clone(), TIMING);
        let mut probe = Probe::new(0, 3);
        assert_eq!(
            probe.deliver(&mut node, 1, ask(3)),
            [(1, vote(5, false))],
            "a candidate of term 3 is stale for a node in term 5; the reply tells it term 5"
        );
        assert_eq!(on_disk(&disk), (5, None), "a refusal changes nothing");
        let granted = probe.deliver(&mut node, 2, ask(5));
        assert_eq!(granted, [(2, vote(5, true))], "no vote cast in term 5 yet");
    }

    #[test]
    fn a_restarted_node_remembers_its_term_and_the_vote_it_gave() {
        let (disk, mut node) = fresh();
        let mut probe = Probe::new(0, 5);
        probe.deliver(&mut node, 1, ask(3));
        let mut node = Raft::new(disk.clone(), TIMING); // the crash: only the disk is left
        assert_eq!((node.role(), node.term()), (Role::Follower, 3));
        assert_eq!(
            probe.deliver(&mut node, 2, ask(3)),
            [(2, vote(3, false))],
            "before the crash it voted for 1 in term 3: voting for 2 now would be two votes"
        );
        let (disk, _, _) = candidate(4);
        let mut node = Raft::new(disk, TIMING);
        let sent = Probe::new(4, 5).deliver(&mut node, 1, ask(1));
        assert_eq!(
            sent,
            [(1, vote(1, false))],
            "a candidate voted for itself: after a restart it still may not vote for another"
        );
    }

    #[test]
    fn a_higher_term_makes_a_leader_or_candidate_a_follower_of_that_term() {
        let (disk, mut node, mut probe) = leader();
        probe.deliver(&mut node, 3, beat(0));
        assert_eq!(
            node.role(),
            Role::Leader,
            "a stale heartbeat changes nothing"
        );
        probe.deliver(&mut node, 3, beat(4));
        assert_eq!(
            (node.role(), node.term(), on_disk(&disk)),
            (Role::Follower, 4, (4, None)),
            "a leader of term 4 exists: the leader of term 1 follows it, in term 4, on disk"
        );
        let (_, mut node, mut probe) = leader();
        let sent = probe.deliver(&mut node, 4, ask(2));
        assert_eq!(
            (node.role(), sent),
            (Role::Follower, vec![(4, vote(2, true))]),
            "a candidate of term 2: the leader of term 1 steps down and may vote for it"
        );
        let (_, mut node, mut probe) = leader();
        probe.deliver(&mut node, 4, vote(7, false));
        assert_eq!((node.role(), node.term()), (Role::Follower, 7));
        let (_, mut node, mut probe) = candidate(0);
        probe.deliver(&mut node, 3, beat(1));
        assert_eq!(
            (node.role(), node.term()),
            (Role::Follower, 1),
            "a candidate hearing from a leader of its own term lost the election: it follows"
        );
        probe.deliver(&mut node, 1, vote(1, true));
        probe.deliver(&mut node, 2, vote(1, true));
        assert_eq!(
            node.role(),
            Role::Follower,
            "node 3 leads term 1: late votes for a candidacy given up make no second leader of it"
        );
    }

    #[test]
    fn heartbeats_keep_a_follower_from_standing_and_it_stands_soon_after_they_stop() {
        let (_, mut node) = fresh();
        let mut probe = Probe::new(1, 3);
        for t in 0..3_000 {
            if t % 100 == 0 {
                probe.at(ms(t)).deliver(&mut node, 0, beat(1));
            }
            let sent = probe.at(ms(t)).tick(&mut node);
            assert!(
                sent.is_empty(),
                "a heartbeat every 100 ms, below the 150 ms minimum timeout: a follower that \
                 hears its leader never stands, but at {t} ms it sent {sent:?}"
            );
        }
        let (at, sent) = tick_until_sends(&mut probe, &mut node, 3_000);
        assert!(
            (2_900 + 150..=2_900 + 300).contains(&at),
            "the last heartbeat came at 2900 ms: it stands a timeout (150-300 ms) later, not at \
             {at} ms"
        );
        assert_eq!(sent[0], (0, ask(2)));
    }

    #[test]
    fn a_granted_vote_holds_off_an_election_and_a_stale_heartbeat_does_not() {
        let (_, mut node) = fresh();
        let mut probe = Probe::new(1, 3);
        for t in 0..2_000 {
            if t % 100 == 0 {
                let (from, term) = (t as usize / 100 % 2 * 2, t / 100 + 1);
                probe.at(ms(t)).deliver(&mut node, from, ask(term));
            }
            let sent = probe.at(ms(t)).tick(&mut node);
            assert!(
                sent.is_empty(),
                "it granted a vote every 100 ms, and granting a vote resets the election timer \
                 (the candidate it voted for is about to lead), but at {t} ms it sent {sent:?}"
            );
        }
        // Node 2, which it voted for last, leads term 20; node 0, deposed, still sends term 19.
        probe.at(ms(2_000)).deliver(&mut node, 2, beat(20));
        let stood = (2_001..2_600).find(|&t| {
            if t % 50 == 0 {
                probe.at(ms(t)).deliver(&mut node, 0, beat(19));
            }
            !probe.at(ms(t)).tick(&mut node).is_empty()
        });
        assert!(
            stood.is_some_and(|t| t <= 2_300),
            "node 2's last heartbeat came at 2000 ms: it stands a timeout (150-300 ms) later, \
             whatever a deposed leader of term 19 sends; it stood at {stood:?} ms"
        );
    }

    #[test]
    fn election_timeouts_are_drawn_afresh_from_the_whole_range() {
        let (_, mut node) = fresh();
        let mut probe = Probe::new(0, 3);
        let mut stood = vec![tick_until_sends(&mut probe, &mut node, 0).0];
        while stood.len() < 80 {
            let last = *stood.last().unwrap();
            stood.push(tick_until_sends(&mut probe, &mut node, last + 1).0);
        }
        let gaps: Vec<u64> = stood.windows(2).map(|w| w[1] - w[0]).collect();
        let distinct: BTreeSet<u64> = gaps.iter().copied().collect();
        assert!(
            gaps.iter().all(|g| (150..=300).contains(g)),
            "a candidate no one answers stands again one timeout (150-300 ms) after it last \
             stood; the gaps were {gaps:?}"
        );
        assert!(
            distinct.len() > 20 && distinct.first() < Some(&180) && distinct.last() > Some(&270),
            "each timeout is drawn afresh from the whole 150-300 ms range (a fixed or a \
             once-drawn timeout lets candidates collide at every election); the gaps were \
             {gaps:?}"
        );
    }

    #[test]
    fn a_cluster_of_one_elects_itself_at_its_first_timeout() {
        let (_, mut node) = fresh();
        let mut probe = Probe::new(0, 1);
        for t in 0..=300 {
            probe.at(ms(t)).tick(&mut node);
        }
        assert_eq!(
            (node.role(), node.term()),
            (Role::Leader, 1),
            "alone, its own vote is a majority of one: no reply will ever come to count"
        );
    }

    #[test]
    fn no_term_has_two_leaders_and_no_node_votes_twice_over_100_seeds_of_partitions_and_crashes() {
        for_seeds(SEEDS, |rng| {
            // 10% loss, 10% duplicates and tight timers: many elections, many of them contested.
            let timing = Timing::millis(60, 120, 20);
            let mut run =
                Recorded::random(rng, (0.1, 0.1), ms(800), move |_, d| Raft::new(d, timing));
            let record = run.run_until(ms(800)).finish();
            let (elections, leaders) = (record.elections(), record.two_leaders());
            assert_eq!(
                leaders, None,
                "(term, leaders) of {elections} elections: two leaders of one term would both accept writes"
            );
            assert_eq!(
                record.double_vote(),
                None,
                "((voter, term), candidates): one vote per node per term, across crashes too"
            );
            assert_eq!(
                record.unpersisted,
                [],
                "(voter, term, candidate): votes granted while the disk did not say so"
            );
        });
    }

    #[test]
    fn after_the_last_heal_one_leader_settles_within_600_ms_over_100_seeds() {
        for_seeds(SEEDS, |rng| {
            let mut run = Recorded::random(rng, (0.02, 0.0), ms(600), |_, d| Raft::new(d, TIMING));
            let record = run.run_until(ms(1_200)).finish();
            assert!(
                record.settled_leader().is_some(),
                "600 ms after the network healed, one node leads and every other follows it in \
                 its term; at the end (role, term) per node: {:?}, {} elections",
                record.end,
                record.elections()
            );
        });
    }
}
