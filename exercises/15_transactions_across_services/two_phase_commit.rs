// Two-phase commit — one transaction over several databases that all commit or all abort.
//
// An order writes to the orders database and the inventory database: both or neither. 2PC does
// it with a coordinator: phase one asks every participant to PREPARE (make its work durable and
// promise it can commit); phase two tells everyone the decision. Its famous weakness is the
// reason the protocol looks the way it does: a participant that voted yes has given up its right
// to decide, and if the coordinator crashes it must wait, "in doubt", holding its locks.
//
// Build `TxCoordinator` and `TxParticipant`. The properties, checked over many seeded runs with
// crashes inside handlers (the log write survives, some messages do not), messages reordered and
// duplicated: every participant reaches the same outcome; commit only if all voted yes; the
// coordinator logs its decision before anyone can learn it, so after a crash it recovers to it;
// a participant logs "prepared" before voting yes and from then on never decides on its own;
// timeouts resend until acknowledged: once all nodes are up, everyone decides and all goes quiet.
// Lab: crashes per transaction; watch "blocked steps" (participants in doubt) grow.

use sdlings_kit::transactions::two_phase::{
    self, Coordinator, CoordinatorRecord, Msg, Outcome, Participant, ParticipantRecord,
};

// ---- Your part -------------------------------------------------------------------------------

/// Add the fields you need: the coordinator's memory (lost in a crash; only its log survives).
#[allow(dead_code)] // (silences "never read" until you use the field: delete it)
pub struct TxCoordinator {
    participants: usize,
}

impl Coordinator for TxCoordinator {
    fn recover(participants: usize, log: &[CoordinatorRecord]) -> Self {
        todo!("rebuild a coordinator of {participants} participants from its log {log:?}")
    }

    fn begin(&mut self, log: &mut Vec<CoordinatorRecord>) -> Vec<(usize, Msg)> {
        todo!(
            "phase one: start the transaction ({} records logged)",
            log.len()
        )
    }

    fn on_message(
        &mut self,
        from: usize,
        msg: Msg,
        log: &mut Vec<CoordinatorRecord>,
    ) -> Vec<(usize, Msg)> {
        todo!(
            "handle {msg:?} from participant {from} ({} records logged)",
            log.len()
        )
    }

    fn on_timeout(&mut self, log: &mut Vec<CoordinatorRecord>) -> Vec<(usize, Msg)> {
        todo!("nothing arrived for a while ({} records logged)", log.len())
    }
}

/// Add the fields you need.
pub struct TxParticipant {}

impl Participant for TxParticipant {
    fn recover(id: usize, vote: bool, log: &[ParticipantRecord]) -> Self {
        todo!("rebuild participant {id} (can commit: {vote}) from its log {log:?}")
    }

    fn on_message(&mut self, msg: Msg, log: &mut Vec<ParticipantRecord>) -> Vec<Msg> {
        todo!(
            "handle {msg:?} from the coordinator ({} records logged)",
            log.len()
        )
    }

    fn on_timeout(&mut self, log: &mut Vec<ParticipantRecord>) -> Vec<Msg> {
        todo!("nothing arrived for a while ({} records logged)", log.len())
    }

    fn outcome(&self) -> Option<Outcome> {
        todo!("the outcome this participant has decided, if any")
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const RUNS: u64 = 300;
const PARTICIPANTS: usize = 3;
/// Out of 100 steps, how many are timeouts (the rest deliver a message).
const TIMEOUT_PCT: u32 = 10;

fn main() {
    two_phase::lab::<TxCoordinator, TxParticipant>(RUNS, PARTICIPANTS, TIMEOUT_PCT);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdlings_kit::transactions::two_phase::{Crash, Node, Scenario, run};

    fn prepared_participant() -> (TxParticipant, Vec<ParticipantRecord>) {
        let mut log = Vec::new();
        let mut p = TxParticipant::recover(0, true, &log);
        assert_eq!(p.on_message(Msg::Prepare, &mut log), vec![Msg::Vote(true)]);
        (p, log)
    }

    #[test]
    fn all_yes_votes_commit_everywhere() {
        let (mut log, n) = (Vec::new(), 3);
        let mut c = TxCoordinator::recover(n, &log);
        let prepares = c.begin(&mut log);
        assert_eq!(
            prepares,
            vec![(0, Msg::Prepare), (1, Msg::Prepare), (2, Msg::Prepare)]
        );
        assert!(
            c.on_message(0, Msg::Vote(true), &mut log).is_empty(),
            "2 votes missing"
        );
        assert!(
            c.on_message(0, Msg::Vote(true), &mut log).is_empty(),
            "a duplicated vote is one voter"
        );
        assert!(
            c.on_message(2, Msg::Vote(true), &mut log).is_empty(),
            "1 vote missing"
        );
        let out = c.on_message(1, Msg::Vote(true), &mut log);
        assert_eq!(
            log,
            vec![CoordinatorRecord::Decided(Outcome::Commit)],
            "logged first"
        );
        for p in 0..n {
            assert!(
                out.contains(&(p, Msg::Decision(Outcome::Commit))),
                "tell participant {p}"
            );
        }
    }

    #[test]
    fn one_no_vote_aborts() {
        let mut log = Vec::new();
        let mut c = TxCoordinator::recover(2, &log);
        c.begin(&mut log);
        c.on_message(0, Msg::Vote(true), &mut log);
        let out = c.on_message(1, Msg::Vote(false), &mut log);
        assert_eq!(log, vec![CoordinatorRecord::Decided(Outcome::Abort)]);
        assert!(
            out.contains(&(0, Msg::Decision(Outcome::Abort))),
            "the yes voter must learn it"
        );
    }

    #[test]
    fn a_participant_logs_prepared_before_voting_yes() {
        let (p, log) = prepared_participant();
        assert_eq!(
            log,
            vec![ParticipantRecord::Prepared],
            "the promise is durable first"
        );
        assert_eq!(p.outcome(), None, "a yes vote is not a decision");
    }

    #[test]
    fn a_prepared_participant_never_aborts_on_its_own_and_keeps_asking() {
        let (mut p, mut log) = prepared_participant();
        for _ in 0..50 {
            assert_eq!(
                p.on_timeout(&mut log),
                vec![Msg::Query],
                "in doubt: ask the coordinator, again and again"
            );
            assert_eq!(
                p.outcome(),
                None,
                "a participant that voted yes cannot abort alone"
            );
        }
        let mut p = TxParticipant::recover(0, true, &log);
        assert_eq!(p.outcome(), None, "after a restart it is still in doubt");
        assert_eq!(p.on_timeout(&mut log), vec![Msg::Query]);
        assert_eq!(
            p.on_message(Msg::Decision(Outcome::Commit), &mut log),
            vec![Msg::Ack]
        );
        assert_eq!(p.outcome(), Some(Outcome::Commit));
        let p = TxParticipant::recover(0, true, &log);
        assert_eq!(
            p.outcome(),
            Some(Outcome::Commit),
            "the outcome is in the log"
        );
    }

    #[test]
    fn an_unprepared_participant_may_abort_on_timeout_and_then_votes_no() {
        let mut log = Vec::new();
        let mut p = TxParticipant::recover(0, true, &log);
        p.on_timeout(&mut log);
        assert_eq!(
            p.outcome(),
            Some(Outcome::Abort),
            "no promise yet: free to give up"
        );
        assert_eq!(p.on_message(Msg::Prepare, &mut log), vec![Msg::Vote(false)]);
    }

    #[test]
    fn a_participant_that_cannot_commit_votes_no() {
        let mut log = Vec::new();
        let mut p = TxParticipant::recover(0, false, &log);
        assert_eq!(p.on_message(Msg::Prepare, &mut log), vec![Msg::Vote(false)]);
        assert_ne!(p.outcome(), Some(Outcome::Commit));
    }

    #[test]
    fn a_coordinator_that_crashed_after_deciding_commit_recovers_and_commits_everywhere() {
        let mut log = Vec::new();
        let mut c = TxCoordinator::recover(2, &log);
        c.begin(&mut log);
        c.on_message(0, Msg::Vote(true), &mut log);
        c.on_message(1, Msg::Vote(true), &mut log);
        // It crashes now: nothing it returned was sent. Only its log survives.
        let mut c = TxCoordinator::recover(2, &log);
        assert_eq!(
            c.on_message(1, Msg::Query, &mut log),
            vec![(1, Msg::Decision(Outcome::Commit))],
            "the logged decision is the decision: a query gets Commit"
        );
        let resent = c.on_timeout(&mut log);
        assert!(
            resent.contains(&(0, Msg::Decision(Outcome::Commit))),
            "and a timeout resends it"
        );
        assert_eq!(
            log,
            vec![CoordinatorRecord::Decided(Outcome::Commit)],
            "decided once"
        );
    }

    #[test]
    fn a_coordinator_that_crashed_before_deciding_aborts() {
        let mut log = Vec::new();
        let mut c = TxCoordinator::recover(2, &log);
        c.begin(&mut log);
        c.on_message(0, Msg::Vote(true), &mut log);
        let mut c = TxCoordinator::recover(2, &log);
        let out = c.on_timeout(&mut log);
        assert_eq!(
            log,
            vec![CoordinatorRecord::Decided(Outcome::Abort)],
            "presumed abort"
        );
        assert!(out.contains(&(0, Msg::Decision(Outcome::Abort))));
    }

    #[test]
    fn the_decision_is_resent_only_until_acknowledged() {
        let mut log = Vec::new();
        let mut c = TxCoordinator::recover(2, &log);
        c.begin(&mut log);
        c.on_message(0, Msg::Vote(false), &mut log);
        c.on_message(0, Msg::Ack, &mut log);
        assert_eq!(
            c.on_timeout(&mut log),
            vec![(1, Msg::Decision(Outcome::Abort))]
        );
        c.on_message(1, Msg::Ack, &mut log);
        assert!(c.on_timeout(&mut log).is_empty(), "everyone has it: stop");
    }

    #[test]
    fn a_crash_right_after_the_commit_decision_still_commits_everywhere() {
        for n in 1..=4 {
            let scenario = Scenario {
                votes: vec![true; n],
                // The coordinator's handlers: begin, then one per vote; the last vote decides.
                crashes: vec![Crash {
                    node: Node::Coordinator,
                    handler: n,
                    keep: 0,
                    down: 30,
                }],
                // Timeouts only when no message is in flight: the n-th handler is the last vote.
                timeout_pct: 0,
                duplicate_pct: 0,
            };
            sdlings_kit::property::for_seeds(20, |rng| {
                let report = run::<TxCoordinator, TxParticipant>(&scenario, rng);
                assert_eq!(
                    report.outcome,
                    Some(Outcome::Commit),
                    "{n} participants all voted yes and the coordinator logged Commit before \
                     crashing: recovery must commit"
                );
            });
        }
    }

    #[test]
    fn every_participant_reaches_the_same_outcome_whatever_crashes() {
        sdlings_kit::property::for_seeds(300, |rng| {
            let scenario = Scenario::random(rng);
            run::<TxCoordinator, TxParticipant>(&scenario, rng);
        });
    }
}
