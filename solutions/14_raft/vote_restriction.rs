// Raft's vote restriction — vote only for a candidate whose log is at least as up to date.
//
// An entry is committed once a majority stores it, and a client was told "done". The next leader
// must have every such entry, or it would overwrite it. Raft gets that from the voters: any two
// majorities share a node, so if each voter refuses a candidate whose log is behind its own, no
// candidate missing a committed entry can collect a majority. "Behind" is the subtle part: a
// long log is not a recent one. A node that slept through term 2 may have written many term-1
// entries that term 2 replaced.
//
// Build the up-to-date check, the candidate's request (with its last entry) and the vote. The
// property: a vote is granted only for the current term, once per term, and only to a candidate
// whose log is at least as up to date as the voter's; so over every run, whatever the network
// does, every leader holds every committed entry, and a longer log of an older last term loses.
//
// Lab: the diverged logs of a crashed term-2 leader's cluster; the stale node with the longest
// log never wins. Turn LOSS up or the timeouts down: elections get slower, never wrong.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::RngExt;
use sdlings_kit::cluster::{Ctx, Disk, Node, NodeId};
use sdlings_kit::raft::election::{
    Elector, LogMsg, LogState, RestrictionKnobs, Role, Timing, restriction_lab,
};

pub struct Raft {
    disk: Disk<LogState>,
    timing: Timing,
    term: u64,
    voted_for: Option<NodeId>,
    /// This node's log, as the term of each entry (entry 1 is `log[0]`). Nothing is replicated
    /// in this exercise: the log is what the node started with.
    log: Vec<u64>,
    /// How many entries of the log this node knows are committed (used once entries replicate).
    #[allow(dead_code)]
    commit_index: u64,
    role: Role,
    votes: BTreeSet<NodeId>,
    election_deadline: Option<Duration>,
    next_heartbeat: Duration,
}

// ---- Your part -------------------------------------------------------------------------------

/// Whether a candidate whose log ends with an entry of term `cand_last_term` at index
/// `cand_last_index` is at least as up to date as a voter whose log ends at `my_last_term`,
/// `my_last_index` (an empty log ends at term 0, index 0). Raft, section 5.4.1.
pub fn at_least_as_up_to_date(
    cand_last_term: u64,
    cand_last_index: u64,
    my_last_term: u64,
    my_last_index: u64,
) -> bool {
    // The later last term wins, however long the other log is; with equal last terms, the
    // longer log. Equal logs are up to date with each other.
    if cand_last_term != my_last_term {
        cand_last_term > my_last_term
    } else {
        cand_last_index >= my_last_index
    }
}

impl Raft {
    /// The RequestVote this node sends when it stands in its current term.
    fn request_vote(&self) -> LogMsg {
        LogMsg::RequestVote {
            term: self.term,
            last_log_index: self.log.len() as u64,
            last_log_term: self.log.last().copied().unwrap_or(0),
        }
    }

    /// A RequestVote from `from` (the term has already been brought up to date: a newer one was
    /// adopted). Reply with a Vote; persist a granted vote before replying.
    fn on_request_vote(
        &mut self,
        from: NodeId,
        (term, last_log_index, last_log_term): (u64, u64, u64),
        ctx: &mut Ctx<'_, LogMsg>,
    ) {
        let my_last_term = self.log.last().copied().unwrap_or(0);
        let my_last_index = self.log.len() as u64;
        let granted = term == self.term
            && self.voted_for.is_none_or(|v| v == from)
            && at_least_as_up_to_date(last_log_term, last_log_index, my_last_term, my_last_index);
        if granted {
            self.voted_for = Some(from);
            self.persist();
            self.reset_election_timer(ctx);
        }
        let term = self.term;
        ctx.send(from, LogMsg::Vote { term, granted });
    }
}

// ---- Given: you wrote this in `election` (with the log read from the disk too) --------------

impl Raft {
    pub fn new(disk: Disk<LogState>, timing: Timing) -> Self {
        let s = disk.read(|d| d.clone());
        Raft {
            disk,
            timing,
            term: s.term,
            voted_for: s.voted_for,
            log: s.log,
            commit_index: s.commit_index,
            role: Role::Follower,
            votes: BTreeSet::new(),
            election_deadline: None,
            next_heartbeat: Duration::ZERO,
        }
    }

    fn persist(&mut self) {
        let (term, voted_for) = (self.term, self.voted_for);
        self.disk
            .write(|d| (d.term, d.voted_for) = (term, voted_for));
    }

    fn reset_election_timer(&mut self, ctx: &mut Ctx<'_, LogMsg>) {
        let (min, max) = self.timing.election;
        self.election_deadline = Some(ctx.now() + ctx.rng().random_range(min..=max));
    }

    fn start_election(&mut self, ctx: &mut Ctx<'_, LogMsg>) {
        (self.term, self.role, self.voted_for) = (self.term + 1, Role::Candidate, Some(ctx.me()));
        self.persist();
        self.votes = BTreeSet::from([ctx.me()]);
        self.reset_election_timer(ctx);
        for peer in ctx.peers() {
            ctx.send(peer, self.request_vote());
        }
        self.become_leader_if_majority(ctx);
    }

    fn become_leader_if_majority(&mut self, ctx: &mut Ctx<'_, LogMsg>) {
        if self.votes.len() > ctx.nodes().len() / 2 {
            (self.role, self.election_deadline) = (Role::Leader, None);
            self.send_heartbeats(ctx);
        }
    }

    fn send_heartbeats(&mut self, ctx: &mut Ctx<'_, LogMsg>) {
        for peer in ctx.peers() {
            ctx.send(peer, LogMsg::Heartbeat { term: self.term });
        }
        self.next_heartbeat = ctx.now() + self.timing.heartbeat;
    }
}

impl Node for Raft {
    type Msg = LogMsg;

    fn on_tick(&mut self, ctx: &mut Ctx<'_, LogMsg>) {
        match (self.role, self.election_deadline) {
            (Role::Leader, _) if ctx.now() >= self.next_heartbeat => self.send_heartbeats(ctx),
            (Role::Leader, _) => {}
            (_, None) => self.reset_election_timer(ctx),
            (_, Some(deadline)) if ctx.now() >= deadline => self.start_election(ctx),
            (_, Some(_)) => {}
        }
    }

    fn on_message(&mut self, from: NodeId, msg: LogMsg, ctx: &mut Ctx<'_, LogMsg>) {
        let (LogMsg::RequestVote { term, .. }
        | LogMsg::Vote { term, .. }
        | LogMsg::Heartbeat { term }) = msg;
        if term > self.term {
            (self.term, self.voted_for, self.role) = (term, None, Role::Follower);
            self.persist();
        }
        match msg {
            LogMsg::RequestVote {
                term,
                last_log_index,
                last_log_term,
            } => self.on_request_vote(from, (term, last_log_index, last_log_term), ctx),
            LogMsg::Vote { term, granted } => {
                if self.role == Role::Candidate && term == self.term && granted {
                    self.votes.insert(from);
                    self.become_leader_if_majority(ctx);
                }
            }
            LogMsg::Heartbeat { term } if term == self.term => {
                self.role = Role::Follower;
                self.reset_election_timer(ctx);
            }
            LogMsg::Heartbeat { .. } => {}
        }
    }
}

impl Elector for Raft {
    fn role(&self) -> Role {
        self.role
    }
    fn term(&self) -> u64 {
        self.term
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const RUNS: u64 = 40;
const LOSS: f64 = 0.0;
/// Election timeouts (min, max) and heartbeat interval, in ms.
const TIMING: Timing = Timing::millis(150, 300, 30);

fn main() {
    let knobs = RestrictionKnobs {
        runs: RUNS,
        loss: LOSS,
        timing: TIMING,
        until: Duration::from_millis(1_500),
    };
    restriction_lab(&knobs, Raft::new);
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use sdlings_kit::cluster::Probe;
    use sdlings_kit::property::for_seeds;
    use sdlings_kit::raft::election::{Diverged, Record, Recorded, tick_until_sends};

    use super::*;

    const SEEDS: u64 = 100;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A follower in `term` with `log` (`commit` entries known committed), as node 0 of five.
    fn node(term: u64, log: &[u64], commit: u64) -> (Disk<LogState>, Raft, Probe) {
        let (log, disk) = (log.to_vec(), Disk::default());
        disk.write(|d: &mut LogState| (d.term, d.log, d.commit_index) = (term, log, commit));
        let node = Raft::new(disk.clone(), Timing::millis(150, 300, 30));
        (disk, node, Probe::new(0, 5))
    }

    fn ask(term: u64, last_log_index: u64, last_log_term: u64) -> LogMsg {
        LogMsg::RequestVote {
            term,
            last_log_index,
            last_log_term,
        }
    }

    fn vote(term: u64, granted: bool) -> LogMsg {
        LogMsg::Vote { term, granted }
    }

    #[test]
    fn the_later_last_term_wins_and_with_equal_terms_the_longer_log() {
        // (candidate's last term, last index, voter's last term, last index, up to date?)
        let cases = [
            (
                2,
                1,
                1,
                5,
                true,
                "a later last term wins, however short the log",
            ),
            (
                1,
                5,
                2,
                1,
                false,
                "a longer log of an older last term loses",
            ),
            (2, 4, 2, 3, true, "same last term: the longer log wins"),
            (2, 2, 2, 3, false, "same last term: the shorter log loses"),
            (
                2,
                3,
                2,
                3,
                true,
                "equal logs are at least as up to date as each other",
            ),
            (0, 0, 0, 0, true, "two empty logs are equal"),
            (0, 0, 1, 1, false, "an empty log is behind any other"),
            (1, 1, 0, 0, true, "any log is ahead of an empty one"),
            (
                3,
                2,
                2,
                7,
                true,
                "term first: index 2 of term 3 is ahead of index 7 of term 2",
            ),
            (
                2,
                7,
                3,
                2,
                false,
                "term first: index 7 of term 2 is behind index 2 of term 3",
            ),
        ];
        for (ct, ci, mt, mi, expected, why) in cases {
            let got = at_least_as_up_to_date(ct, ci, mt, mi);
            assert_eq!(
                got, expected,
                "candidate (term {ct}, index {ci}) vs voter (term {mt}, index {mi}): {why}"
            );
        }
    }

    #[test]
    fn the_up_to_date_check_follows_section_5_4_1_on_every_small_case() {
        // The paper: "If the logs have last entries with different terms, then the log with the
        // later term is more up-to-date. If the logs end with the same term, then whichever log
        // is longer is more up-to-date." Ties count as up to date (the voter's log is no better).
        for (ct, ci, mt, mi) in (0..625u64).map(|n| (n % 5, n / 5 % 5, n / 25 % 5, n / 125)) {
            let expected = if ct != mt { ct > mt } else { ci >= mi };
            let got = at_least_as_up_to_date(ct, ci, mt, mi);
            assert_eq!(
                got, expected,
                "candidate (term {ct}, index {ci}) vs voter (term {mt}, index {mi})"
            );
        }
    }

    #[test]
    fn a_candidate_asks_with_the_term_and_index_of_its_last_entry() {
        for (log, commit, last) in [
            (vec![1, 1, 3, 3], 2, (4, 3)),
            (vec![], 0, (0, 0)),
            (vec![2], 1, (1, 2)),
        ] {
            let (_, mut raft, mut probe) = node(3, &log, commit);
            let (_, sent) = tick_until_sends(&mut probe, &mut raft, 0);
            let asked = [1, 2, 3, 4].map(|p| (p, ask(4, last.0, last.1))).to_vec();
            assert_eq!(
                sent, asked,
                "log {log:?}, {commit} committed: it asks in term 4 with its last entry (index, term) {last:?}, not its commit index"
            );
        }
    }

    #[test]
    fn a_longer_log_of_an_older_last_term_gets_no_vote_but_a_later_one_does() {
        let (disk, mut node, mut probe) = node(2, &[1, 1, 2], 0);
        let sent = probe.deliver(&mut node, 1, ask(3, 5, 1));
        assert_eq!(
            sent,
            [(1, vote(3, false))],
            "5 entries ending in term 1 are behind 3 ending in term 2"
        );
        assert_eq!(
            (
                node.role(),
                node.term(),
                disk.read(|d| (d.term, d.voted_for))
            ),
            (Role::Follower, 3, (3, None)),
            "the newer term is adopted (and persisted) even when the vote is refused"
        );
        let sent = probe.deliver(&mut node, 2, ask(3, 2, 2));
        assert_eq!(
            sent,
            [(2, vote(3, false))],
            "same last term, shorter log: behind"
        );
        let sent = probe.deliver(&mut node, 3, ask(3, 3, 2));
        assert_eq!(
            sent,
            [(3, vote(3, true))],
            "the same log: up to date, and no vote was cast yet in term 3 (a refusal does not use it up)"
        );
        assert_eq!(
            disk.read(|d| (d.term, d.voted_for)),
            (3, Some(3)),
            "on disk before the reply"
        );
        let sent = probe.deliver(&mut node, 3, ask(3, 3, 2));
        assert_eq!(
            sent,
            [(3, vote(3, true))],
            "the same candidate asking again (its reply was lost) gets the same answer"
        );
        let sent = probe.deliver(&mut node, 4, ask(3, 9, 3));
        assert_eq!(
            sent,
            [(4, vote(3, false))],
            "a better log still gets no second vote in term 3"
        );
    }

    #[test]
    fn a_stale_candidate_is_refused_however_good_its_log() {
        let (_, mut node, mut probe) = node(5, &[1], 0);
        let sent = probe.deliver(&mut node, 1, ask(3, 10, 4));
        assert_eq!(
            sent,
            [(1, vote(5, false))],
            "term 3 is over for a node in term 5: refuse, and tell it term 5"
        );
        let sent = probe.deliver(&mut node, 2, ask(5, 1, 1));
        assert_eq!(
            sent,
            [(2, vote(5, true))],
            "the vote of term 5 was not used up by the stale request"
        );
    }

    #[test]
    fn a_node_compares_the_candidates_log_with_its_own_last_entry_not_its_term() {
        // The node is in term 7 (it saw elections come and go) but its log ends in term 2.
        let (_, mut node, mut probe) = node(7, &[1, 2], 0);
        let sent = probe.deliver(&mut node, 1, ask(8, 3, 2));
        assert_eq!(
            sent,
            [(1, vote(8, true))],
            "a log ending at (index 3, term 2) is ahead of (2, 2), whatever the current terms"
        );
    }

    #[test]
    fn a_granted_vote_holds_off_the_voters_election_and_a_refused_one_does_not() {
        let (_, mut node, mut probe) = node(2, &[1, 2], 0);
        for t in 0..1_500 {
            if t % 100 == 0 {
                let (from, term) = (1 + t as usize / 100 % 2, 3 + t / 100);
                probe.at(ms(t)).deliver(&mut node, from, ask(term, 3, 2));
            }
            let sent = probe.at(ms(t)).tick(&mut node);
            assert!(
                sent.is_empty(),
                "it granted a vote every 100 ms, and a granted vote resets the election timer \
                 (that candidate is about to lead), but at {t} ms it sent {sent:?}"
            );
        }
        // The last vote was at 1400 ms. Now a stale node, its longer log ending in term 1, asks
        // every 50 ms in ever newer terms, and is refused each time.
        let stood = (1_500..2_000).find(|&t| {
            if t % 50 == 0 {
                probe.at(ms(t)).deliver(&mut node, 4, ask(t / 50, 9, 1));
            }
            let sent = probe.at(ms(t)).tick(&mut node);
            sent.iter()
                .any(|(_, m)| matches!(m, LogMsg::RequestVote { .. }))
        });
        assert!(
            stood.is_some_and(|t| t <= 1_700),
            "its last vote was at 1400 ms: it stands a timeout (150-300 ms) later; a refused \
             candidate must not hold it off (or a stale node keeps every up-to-date node from \
             standing); it stood at {stood:?} ms"
        );
    }

    /// The diverged logs of `Diverged::draw` on a stormy network, recorded until `until`.
    fn diverged(rng: &mut StdRng, faults_until: u64, until: u64) -> (Diverged, Record) {
        let scenario = Diverged::draw(rng);
        let build = scenario.starting(|disk| Raft::new(disk, Timing::millis(80, 160, 20)));
        let mut run = Recorded::random(rng, (0.05, 0.05), ms(faults_until), build);
        (scenario, run.run_until(ms(until)).finish())
    }

    #[test]
    fn every_leader_holds_the_committed_entry_and_every_vote_follows_the_rule_over_100_seeds() {
        for_seeds(SEEDS, |rng| {
            let (scenario, record) = diverged(rng, 700, 700);
            let Diverged {
                logs,
                committed,
                holders,
                ..
            } = &scenario;
            for (term, leaders) in &record.leaders {
                for id in leaders.keys() {
                    assert!(
                        holders.contains(id),
                        "node {id} led term {term} without the committed entry {committed:?} (index, term): the logs were {logs:?}"
                    );
                }
            }
            let last = |id: NodeId| (logs[id].last().copied().unwrap_or(0), logs[id].len() as u64);
            for (&(voter, term), candidates) in &record.votes {
                for &c in candidates.iter().filter(|&&c| c != voter) {
                    let ((ct, ci), (mt, mi)) = (last(c), last(voter));
                    let ok = if ct != mt { ct > mt } else { ci >= mi };
                    assert!(
                        ok,
                        "node {voter} voted in term {term} for node {c}, whose log {:?} is behind its own {:?}",
                        logs[c], logs[voter]
                    );
                }
            }
            assert_eq!(record.two_leaders(), None, "(term, leaders)");
        });
    }

    #[test]
    fn a_node_holding_the_committed_entry_is_elected_after_the_heal_over_100_seeds() {
        for_seeds(SEEDS, |rng| {
            let (scenario, record) = diverged(rng, 500, 1_000);
            let leader = record.settled_leader().map(|(id, _, _)| id);
            assert!(
                leader.is_some_and(|id| scenario.holders.contains(&id)),
                "500 ms after the heal, one of the nodes holding the committed entry, {:?}, leads \
                 (logs {:?}); at the end (role, term) per node: {:?}",
                scenario.holders,
                scenario.logs,
                record.end
            );
        });
    }
}
