//! A deterministic step simulator for two-phase commit (`two_phase_commit`).
//!
//! One transaction, one coordinator, `n` participants. Every step either delivers one message in
//! flight, chosen at random (so messages are reordered; some are delivered twice), or fires a
//! timeout at a random node. A crash strikes a node *inside* one of its handlers: what the
//! handler wrote to its log stays, only some of the messages it returned are sent, the node's
//! memory is lost, and messages to it are dropped until it restarts from its log with
//! `recover`. After the planned crashes every node is up again and the run goes on until every
//! participant has an outcome.
//!
//! After every event the simulator checks: all outcomes agree with each other and with the
//! coordinator's logged decision; a participant that voted yes takes an outcome only once the
//! coordinator has logged it; nothing commits unless every participant voted yes; a participant
//! never forgets or changes its outcome, across restarts too. After healing, the run must also
//! go quiet: every participant decided and no message left in flight. A violation panics with
//! the story.

use std::fmt;

use rand::RngExt;
use rand::rngs::StdRng;

use crate::lab::Table;
use crate::workload::seeded_rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Commit,
    Abort,
}

/// The messages of the protocol. Participants only talk to the coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg {
    /// Coordinator → participant: can you commit?
    Prepare,
    /// Participant → coordinator: yes (`true`, and I am prepared) or no.
    Vote(bool),
    /// Coordinator → participant: the outcome.
    Decision(Outcome),
    /// Participant → coordinator: I have the decision, stop resending it.
    Ack,
    /// Participant → coordinator: I am prepared; what was decided?
    Query,
}

/// What the coordinator writes to its durable log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordinatorRecord {
    Decided(Outcome),
}

/// What a participant writes to its durable log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParticipantRecord {
    /// The local work is durable and can still be committed or aborted: a yes vote.
    Prepared,
    Decided(Outcome),
}

/// The coordinator's state machine. `log` is its durable log: it survives crashes, its memory
/// does not. Handlers return the messages to send, as (participant, message).
pub trait Coordinator {
    /// Rebuilds the coordinator from its log (empty on the very first start).
    fn recover(participants: usize, log: &[CoordinatorRecord]) -> Self;
    /// Starts the transaction (called once, on the very first start).
    fn begin(&mut self, log: &mut Vec<CoordinatorRecord>) -> Vec<(usize, Msg)>;
    fn on_message(
        &mut self,
        from: usize,
        msg: Msg,
        log: &mut Vec<CoordinatorRecord>,
    ) -> Vec<(usize, Msg)>;
    /// Nothing happened for a while.
    fn on_timeout(&mut self, log: &mut Vec<CoordinatorRecord>) -> Vec<(usize, Msg)>;
}

/// A participant's state machine; its messages all go to the coordinator.
pub trait Participant {
    /// Rebuilds participant `id` from its log. `vote` is whether its local work can commit.
    fn recover(id: usize, vote: bool, log: &[ParticipantRecord]) -> Self;
    fn on_message(&mut self, msg: Msg, log: &mut Vec<ParticipantRecord>) -> Vec<Msg>;
    fn on_timeout(&mut self, log: &mut Vec<ParticipantRecord>) -> Vec<Msg>;
    /// The outcome this participant has decided, if any.
    fn outcome(&self) -> Option<Outcome>;
}

/// A node of the simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    Coordinator,
    Participant(usize),
}

/// A crash: `node` crashes inside its `handler`-th handler call (0 = its first), after that
/// handler wrote its log, sending only the first `keep` of the messages it returned, and stays
/// down for `down` steps.
#[derive(Clone, Copy, Debug)]
pub struct Crash {
    pub node: Node,
    pub handler: usize,
    pub keep: usize,
    pub down: usize,
}

/// One simulated transaction.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Each participant's vote (can its local work commit?).
    pub votes: Vec<bool>,
    pub crashes: Vec<Crash>,
    /// Out of 100 steps, how many fire a timeout instead of delivering a message.
    pub timeout_pct: u32,
    /// Out of 100 deliveries, how many leave a copy of the message in flight.
    pub duplicate_pct: u32,
}

impl Scenario {
    /// A random scenario: 2..=4 participants, a no vote in one run out of five, up to 3 crashes.
    pub fn random(rng: &mut StdRng) -> Self {
        let n = rng.random_range(2..=4usize);
        let mut votes = vec![true; n];
        if rng.random_range(0..5) == 0 {
            votes[rng.random_range(0..n)] = false;
        }
        let crashes = (0..rng.random_range(0..=3))
            .map(|_| Crash {
                node: if rng.random_range(0..2) == 0 {
                    Node::Coordinator
                } else {
                    Node::Participant(rng.random_range(0..n))
                },
                handler: rng.random_range(0..2 * n),
                keep: rng.random_range(0..=n),
                down: rng.random_range(1..40),
            })
            .collect();
        Scenario {
            votes,
            crashes,
            timeout_pct: rng.random_range(5..30),
            duplicate_pct: 5,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub outcome: Option<Outcome>,
    /// Steps spent prepared without an outcome, summed over participants ("blocked").
    pub in_doubt_steps: u64,
    pub longest_in_doubt: u64,
    pub messages: u64,
    pub steps: u64,
}

struct Sim<C, P> {
    scenario: Scenario,
    coordinator: Option<C>,
    coordinator_log: Vec<CoordinatorRecord>,
    participants: Vec<Option<P>>,
    logs: Vec<Vec<ParticipantRecord>>,
    handlers: Vec<usize>,
    down_until: Vec<u64>,
    voted_yes: Vec<bool>,
    seen: Vec<Option<Outcome>>,
    doubt_since: Vec<Option<u64>>,
    net: Vec<(Node, Node, Msg)>,
    trace: Vec<String>,
    report: Report,
}

fn index(node: Node) -> usize {
    match node {
        Node::Coordinator => 0,
        Node::Participant(i) => i + 1,
    }
}

impl<C: Coordinator, P: Participant> Sim<C, P> {
    fn fail(&self, what: String) -> ! {
        let tail: Vec<&String> = self.trace.iter().rev().take(12).rev().collect();
        panic!(
            "{what}\n  scenario: {:?}\n  last events:\n    {}",
            self.scenario,
            tail.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n    ")
        );
    }

    fn decided(&self) -> Option<Outcome> {
        let mut decided = None;
        for CoordinatorRecord::Decided(o) in &self.coordinator_log {
            if decided.is_some_and(|d| d != *o) {
                self.fail(format!(
                    "the coordinator logged both {:?} and {o:?}",
                    decided.unwrap()
                ));
            }
            decided = Some(*o);
        }
        decided
    }

    /// Runs one handler of `node` (which is up), applying a planned crash.
    fn handle(&mut self, node: Node, event: Option<(Node, Msg)>) {
        let i = index(node);
        let nth = self.handlers[i];
        self.handlers[i] += 1;
        let mut out: Vec<(Node, Node, Msg)> = match node {
            Node::Coordinator => {
                let c = self.coordinator.as_mut().unwrap();
                let log = &mut self.coordinator_log;
                let sent = match event {
                    None if nth == 0 => c.begin(log),
                    None => c.on_timeout(log),
                    Some((Node::Participant(p), msg)) => c.on_message(p, msg, log),
                    Some((Node::Coordinator, _)) => unreachable!(),
                };
                for (to, _) in &sent {
                    if *to >= self.logs.len() {
                        self.fail(format!(
                            "the coordinator sent to participant {to}, which does not exist"
                        ));
                    }
                }
                sent.into_iter()
                    .map(|(to, m)| (node, Node::Participant(to), m))
                    .collect()
            }
            Node::Participant(p) => {
                let part = self.participants[p].as_mut().unwrap();
                let log = &mut self.logs[p];
                let sent = match event {
                    None => part.on_timeout(log),
                    Some((_, msg)) => part.on_message(msg, log),
                };
                if sent.contains(&Msg::Vote(true)) {
                    self.voted_yes[p] = true;
                }
                sent.into_iter()
                    .map(|m| (node, Node::Coordinator, m))
                    .collect()
            }
        };
        self.trace.push(format!(
            "{node:?} handled {} and sent {:?}",
            event.map_or("a timeout".to_string(), |(f, m)| format!(
                "{m:?} from {f:?}"
            )),
            out.iter().map(|(_, to, m)| (to, m)).collect::<Vec<_>>()
        ));
        let crash = self
            .scenario
            .crashes
            .iter()
            .find(|c| c.node == node && c.handler == nth)
            .copied();
        if let Some(crash) = crash {
            out.truncate(crash.keep);
            self.trace.push(format!(
                "{node:?} CRASHED in that handler: only {:?} went out",
                out.iter().map(|(_, to, m)| (to, m)).collect::<Vec<_>>()
            ));
            self.down_until[i] = self.report.steps + crash.down as u64;
            match node {
                Node::Coordinator => self.coordinator = None,
                Node::Participant(p) => self.participants[p] = None,
            }
        }
        self.report.messages += out.len() as u64;
        self.net.extend(out);
    }

    fn restart_due(&mut self, all: bool) {
        let now = self.report.steps;
        if self.coordinator.is_none() && (all || self.down_until[0] <= now) {
            self.trace.push("Coordinator restarted from its log".into());
            self.coordinator = Some(C::recover(self.logs.len(), &self.coordinator_log));
        }
        for p in 0..self.logs.len() {
            if self.participants[p].is_none() && (all || self.down_until[p + 1] <= now) {
                self.trace
                    .push(format!("Participant({p}) restarted from its log"));
                self.participants[p] = Some(P::recover(p, self.scenario.votes[p], &self.logs[p]));
            }
        }
    }

    fn check(&mut self) {
        let decided = self.decided();
        if decided == Some(Outcome::Commit)
            && let Some(p) = (0..self.logs.len()).find(|&p| !self.voted_yes[p])
        {
            self.fail(format!(
                "the coordinator logged Commit, but participant {p} never voted yes"
            ));
        }
        for p in 0..self.logs.len() {
            let Some(part) = &self.participants[p] else {
                continue;
            };
            let now = part.outcome();
            if let Some(before) = self.seen[p]
                && now != Some(before)
            {
                self.fail(format!(
                    "participant {p} had decided {before:?} and now says {now:?}: an outcome \
                     is forever, and must be in the log before it is acted on"
                ));
            }
            if let Some(o) = now {
                if self.voted_yes[p] && decided != Some(o) {
                    self.fail(format!(
                        "participant {p} voted yes and then decided {o:?} on its own (the \
                         coordinator's log says {decided:?}): once prepared, only the \
                         coordinator decides"
                    ));
                }
                if o == Outcome::Commit && !self.scenario.votes[p] {
                    self.fail(format!(
                        "participant {p} committed work that could not commit"
                    ));
                }
                if let Some(q) =
                    (0..self.logs.len()).find(|&q| self.seen[q].is_some_and(|x| x != o))
                {
                    self.fail(format!("participants {p} and {q} decided differently"));
                }
                if let Some(since) = self.doubt_since[p].take() {
                    let blocked = self.report.steps - since;
                    self.report.in_doubt_steps += blocked;
                    self.report.longest_in_doubt = self.report.longest_in_doubt.max(blocked);
                }
            } else if self.voted_yes[p] && self.doubt_since[p].is_none() {
                self.doubt_since[p] = Some(self.report.steps);
            }
            self.seen[p] = now;
        }
    }

    fn step(&mut self, rng: &mut StdRng) {
        self.report.steps += 1;
        if !self.net.is_empty() && rng.random_range(0..100) >= self.scenario.timeout_pct {
            let k = rng.random_range(0..self.net.len());
            let (from, to, msg) = if rng.random_range(0..100) < self.scenario.duplicate_pct {
                self.net[k]
            } else {
                self.net.swap_remove(k)
            };
            let up = match to {
                Node::Coordinator => self.coordinator.is_some(),
                Node::Participant(p) => self.participants[p].is_some(),
            };
            if up {
                self.handle(to, Some((from, msg)));
            } else {
                self.trace
                    .push(format!("{msg:?} to {to:?} lost: it is down"));
            }
        } else {
            let n = self.logs.len();
            let k = rng.random_range(0..=n);
            let node = if k == n {
                Node::Coordinator
            } else {
                Node::Participant(k)
            };
            let up = match node {
                Node::Coordinator => self.coordinator.is_some(),
                Node::Participant(p) => self.participants[p].is_some(),
            };
            if up && !(node == Node::Coordinator && self.handlers[0] == 0) {
                self.handle(node, None);
            }
        }
        self.check();
    }
}

/// Runs one transaction of `scenario` with the learner's coordinator and participants; panics
/// (with the last events) if a rule of 2PC is broken or the run does not finish.
pub fn run<C: Coordinator, P: Participant>(scenario: &Scenario, rng: &mut StdRng) -> Report {
    let n = scenario.votes.len();
    let mut sim: Sim<C, P> = Sim {
        scenario: scenario.clone(),
        coordinator: Some(C::recover(n, &[])),
        coordinator_log: Vec::new(),
        participants: (0..n)
            .map(|p| Some(P::recover(p, scenario.votes[p], &[])))
            .collect(),
        logs: vec![Vec::new(); n],
        handlers: vec![0; n + 1],
        down_until: vec![0; n + 1],
        voted_yes: vec![false; n],
        seen: vec![None; n],
        doubt_since: vec![None; n],
        net: Vec::new(),
        trace: Vec::new(),
        report: Report::default(),
    };
    sim.handle(Node::Coordinator, None);
    sim.check();
    // The stormy part: crashes as planned, restarts when due.
    for _ in 0..300 {
        sim.restart_due(false);
        sim.step(rng);
    }
    // Healed: everyone up, no more crashes, until every participant has an outcome.
    sim.scenario.crashes.clear();
    sim.restart_due(true);
    let mut quiet = false;
    for _ in 0..3000 {
        if sim.seen.iter().all(Option::is_some) && sim.net.is_empty() {
            quiet = true;
            break;
        }
        sim.step(rng);
    }
    if let Some(p) = sim.seen.iter().position(Option::is_none) {
        sim.fail(format!(
            "every node has been up for 3000 steps and participant {p} still has no outcome: \
             timeouts must resend what was lost (a decision, a query, a prepare)"
        ));
    }
    // Quiet for good: a further stretch of timeouts sends nothing.
    let sent = sim.report.messages;
    for _ in 0..200 {
        if !quiet {
            break;
        }
        sim.step(rng);
        quiet = sim.net.is_empty();
    }
    if !quiet || sim.report.messages != sent {
        sim.fail(
            "every node is up and every participant has decided, but messages still flow: the \
             coordinator resends the decision until each participant acknowledges it, so every \
             copy of a decision must be acknowledged, and once all are, nothing more is sent"
                .to_string(),
        );
    }
    sim.report.outcome = sim.decided().or(sim.seen[0]);
    sim.report.clone()
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The lab: `runs` transactions of `participants` each, at several crash counts; prints commits,
/// how long prepared participants were blocked, and messages per transaction.
pub fn lab<C: Coordinator, P: Participant>(runs: u64, participants: usize, timeout_pct: u32) {
    let mut table = Table::new(&[
        "crashes per tx",
        "runs",
        "committed",
        "blocked steps per tx",
        "longest block",
        "messages per tx",
    ]);
    for crashes in [0usize, 1, 2, 4] {
        let (mut committed, mut blocked, mut longest, mut messages) = (0, 0, 0, 0);
        for seed in 0..runs {
            let mut rng = seeded_rng(seed);
            let scenario = Scenario {
                votes: vec![true; participants],
                crashes: (0..crashes)
                    .map(|_| Crash {
                        node: if rng.random_range(0..2) == 0 {
                            Node::Coordinator
                        } else {
                            Node::Participant(rng.random_range(0..participants))
                        },
                        handler: rng.random_range(0..2 * participants),
                        keep: rng.random_range(0..=participants),
                        down: rng.random_range(10..60),
                    })
                    .collect(),
                timeout_pct,
                duplicate_pct: 0,
            };
            let report = run::<C, P>(&scenario, &mut rng);
            committed += u64::from(report.outcome == Some(Outcome::Commit));
            blocked += report.in_doubt_steps;
            longest = longest.max(report.longest_in_doubt);
            messages += report.messages;
        }
        table.row(&[
            crashes.to_string(),
            runs.to_string(),
            crate::lab::percent(committed, runs),
            format!("{:.1}", blocked as f64 / runs as f64),
            longest.to_string(),
            format!("{:.1}", messages as f64 / runs as f64),
        ]);
    }
    table.print();
}
