//! Raft's leader election (exercises `election` and `vote_restriction`): the timers, the roles,
//! the messages and disk of `election`, and the recorder that runs a cluster of election nodes
//! and writes down what a safety or liveness property is checked on — every leader of every
//! term, every vote cast (by a candidate for itself, in a granted reply, or on disk), every
//! granted vote that left before it was on disk.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use crate::cluster::{Cluster, Config, Ctx, Disk, Fault, FaultPlan, NetStats, Node, NodeId, Probe};
use rand::RngExt;
use rand::rngs::StdRng;

use crate::lab::{Table, bar_chart, whole_millis};

/// What a node is in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// A node's election timers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// A follower or candidate that hears from no leader for an election timeout drawn from this
    /// range (both ends included; equal ends make it fixed) starts an election.
    pub election: (Duration, Duration),
    /// A leader sends heartbeats this often.
    pub heartbeat: Duration,
}

impl Timing {
    /// Election timeouts drawn from `min_ms..=max_ms`, heartbeats every `heartbeat_ms`.
    pub const fn millis(min_ms: u64, max_ms: u64, heartbeat_ms: u64) -> Self {
        Timing {
            election: (Duration::from_millis(min_ms), Duration::from_millis(max_ms)),
            heartbeat: Duration::from_millis(heartbeat_ms),
        }
    }
}

/// The messages of `election`: RequestVote and its reply, and the leader's heartbeat (Raft's
/// AppendEntries with no entries). The sender is the `from` of `on_message`.
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    /// A candidate asks for a vote in `term`.
    RequestVote { term: u64 },
    /// A vote, or a refusal; `term` is the voter's current term, so a stale candidate learns it.
    Vote { term: u64, granted: bool },
    /// The leader of `term` is alive.
    Heartbeat { term: u64 },
}

/// What a node of `election` keeps on its disk: Raft's persistent `currentTerm` and `votedFor`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HardState {
    pub term: u64,
    pub voted_for: Option<NodeId>,
}

/// The tests' network: `nodes` on 10-30 ms links (stepped every 10 ms: half the cost of the
/// default network, same ratio of latency to timers), with `loss` and `duplicate` rates.
pub fn network(nodes: usize, loss: f64, duplicate: f64) -> Config {
    Config {
        nodes,
        loss,
        duplicate,
        step: Duration::from_millis(10),
        latency: (Duration::from_millis(10), Duration::from_millis(30)),
        ..Config::default()
    }
}

/// The messages of `vote_restriction`: `election`'s, with the position of the candidate's last
/// log entry in its request.
#[derive(Clone, Debug, PartialEq)]
pub enum LogMsg {
    /// A candidate asks for a vote in `term`; its log ends with entry `last_log_index` (0: empty),
    /// of term `last_log_term` (0: empty).
    RequestVote {
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
    },
    Vote {
        term: u64,
        granted: bool,
    },
    Heartbeat {
        term: u64,
    },
}

/// What a node of `vote_restriction` keeps on its disk: term and vote, its log (the term of each
/// entry: entry 1 is `log[0]`) and how much of it is known committed (as etcd's HardState does).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogState {
    pub term: u64,
    pub voted_for: Option<NodeId>,
    pub log: Vec<u64>,
    pub commit_index: u64,
}

impl Ballot for LogMsg {
    fn granted_vote(&self) -> Option<u64> {
        match self {
            LogMsg::Vote {
                term,
                granted: true,
            } => Some(*term),
            _ => None,
        }
    }
}

impl Durable for LogState {
    fn term_and_vote(&self) -> (u64, Option<NodeId>) {
        (self.term, self.voted_for)
    }
}

/// Ticks `node` through `probe` every millisecond from `from_ms` until it sends something (at
/// most 2 s); returns that millisecond and what it sent. For exact timer tests.
pub fn tick_until_sends<N: Node>(
    probe: &mut Probe,
    node: &mut N,
    from_ms: u64,
) -> (u64, Vec<(NodeId, N::Msg)>) {
    for t in from_ms..from_ms + 2_000 {
        let sent = probe.at(Duration::from_millis(t)).tick(node);
        if !sent.is_empty() {
            return (t, sent);
        }
    }
    panic!("the node sent nothing for 2 s after {from_ms} ms: no election timeout fired");
}

/// What the recorder needs to see of a node.
pub trait Elector: Node {
    fn role(&self) -> Role;
    fn term(&self) -> u64;
}

/// What the recorder reads of a message: the term of a granted vote.
pub trait Ballot {
    fn granted_vote(&self) -> Option<u64>;
}

/// What the recorder reads of a disk: the persisted term and vote.
pub trait Durable {
    fn term_and_vote(&self) -> (u64, Option<NodeId>);
}

impl Ballot for Msg {
    fn granted_vote(&self) -> Option<u64> {
        match self {
            Msg::Vote {
                term,
                granted: true,
            } => Some(*term),
            _ => None,
        }
    }
}

impl Durable for HardState {
    fn term_and_vote(&self) -> (u64, Option<NodeId>) {
        (self.term, self.voted_for)
    }
}

/// What happened over one recorded run.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// Every node that was leader, per term, with when it first was (true time).
    pub leaders: BTreeMap<u64, BTreeMap<NodeId, Duration>>,
    /// Every vote cast, per (voter, term): the candidates voted for (itself as a candidate, the
    /// candidates of its granted replies, what its disk says).
    pub votes: BTreeMap<(NodeId, u64), BTreeSet<NodeId>>,
    /// Granted votes (voter, term, candidate) sent while the voter's disk did not hold that vote.
    pub unpersisted: Vec<(NodeId, u64, NodeId)>,
    /// Every (term, node) that was a candidate.
    pub candidacies: BTreeSet<(u64, NodeId)>,
    /// At the end of the run, each node's role and term (`None`: crashed).
    pub end: Vec<Option<(Role, u64)>>,
    pub stats: NetStats,
}

impl Record {
    /// A term with more than one leader, and its leaders.
    pub fn two_leaders(&self) -> Option<(u64, Vec<NodeId>)> {
        self.leaders
            .iter()
            .find(|(_, who)| who.len() > 1)
            .map(|(term, who)| (*term, who.keys().copied().collect()))
    }

    /// A (voter, term) that voted for more than one candidate, and those candidates.
    pub fn double_vote(&self) -> Option<((NodeId, u64), Vec<NodeId>)> {
        self.votes
            .iter()
            .find(|(_, who)| who.len() > 1)
            .map(|(key, who)| (*key, who.iter().copied().collect()))
    }

    /// Terms in which some node stood as a candidate.
    pub fn elections(&self) -> usize {
        self.candidacies
            .iter()
            .map(|(t, _)| t)
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Elections that ended without a leader (split votes, lost requests, a newer term).
    pub fn split_votes(&self) -> usize {
        let terms: BTreeSet<u64> = self.candidacies.iter().map(|(t, _)| *t).collect();
        terms
            .iter()
            .filter(|t| !self.leaders.contains_key(t))
            .count()
    }

    /// The leader at the end of the run, if every running node agrees on it: exactly one leader,
    /// every other running node a follower in its term. Returns (leader, term, leader since).
    pub fn settled_leader(&self) -> Option<(NodeId, u64, Duration)> {
        let up: Vec<(NodeId, Role, u64)> = self
            .end
            .iter()
            .enumerate()
            .filter_map(|(id, s)| s.map(|(role, term)| (id, role, term)))
            .collect();
        let leaders: Vec<_> = up.iter().filter(|(_, r, _)| *r == Role::Leader).collect();
        let &&(leader, _, term) = leaders.first().filter(|_| leaders.len() == 1)?;
        let agreed = up
            .iter()
            .all(|&(id, role, t)| t == term && (id == leader || role == Role::Follower));
        agreed.then(|| (leader, term, self.leaders[&term][&leader]))
    }
}

/// A learner's node with a recorder around it: it sees every event's outcome.
struct Tap<N, D> {
    inner: N,
    disk: Disk<D>,
    record: Rc<RefCell<Record>>,
}

impl<N: Elector, D: Durable + 'static> Tap<N, D>
where
    N::Msg: Ballot,
{
    fn around(
        &mut self,
        ctx: &mut Ctx<'_, N::Msg>,
        event: impl FnOnce(&mut N, &mut Ctx<'_, N::Msg>),
    ) {
        let (me, now) = (ctx.me(), ctx.now());
        let mut out = Vec::new();
        {
            let nodes = ctx.nodes().len();
            let mut inner = Ctx::new(me, nodes, now, &mut out, ctx.rng());
            event(&mut self.inner, &mut inner);
        }
        let (role, term) = (self.inner.role(), self.inner.term());
        let (disk_term, disk_vote) = self.disk.read(|d| d.term_and_vote());
        let mut rec = self.record.borrow_mut();
        match role {
            Role::Leader => {
                rec.leaders
                    .entry(term)
                    .or_default()
                    .entry(me)
                    .or_insert(now);
            }
            Role::Candidate => {
                rec.candidacies.insert((term, me));
                rec.votes.entry((me, term)).or_default().insert(me);
            }
            Role::Follower => {}
        }
        if let Some(c) = disk_vote {
            rec.votes.entry((me, disk_term)).or_default().insert(c);
        }
        for (to, msg) in &out {
            if let Some(t) = msg.granted_vote() {
                rec.votes.entry((me, t)).or_default().insert(*to);
                if (disk_term, disk_vote) != (t, Some(*to)) {
                    rec.unpersisted.push((me, t, *to));
                }
            }
        }
        drop(rec);
        for (to, msg) in out {
            ctx.send(to, msg);
        }
    }
}

impl<N: Elector, D: Durable + 'static> Node for Tap<N, D>
where
    N::Msg: Ballot,
{
    type Msg = N::Msg;

    fn on_message(&mut self, from: NodeId, msg: N::Msg, ctx: &mut Ctx<'_, N::Msg>) {
        self.around(ctx, |n, c| n.on_message(from, msg, c));
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, N::Msg>) {
        self.around(ctx, |n, c| n.on_tick(c));
    }
}

/// A cluster of election nodes, recorded: build with [`Recorded::new`], run, then `finish`.
pub struct Recorded<N: Elector, D: Durable + Default + 'static>
where
    N::Msg: Ballot,
{
    cluster: Cluster<Tap<N, D>>,
    record: Rc<RefCell<Record>>,
    nodes: usize,
}

impl<N: Elector, D: Durable + Default + 'static> Recorded<N, D>
where
    N::Msg: Ballot,
{
    /// A cluster whose node `id` is `build(id, disk)`, at start and at every restart.
    pub fn new(config: Config, seed: u64, build: impl Fn(NodeId, Disk<D>) -> N + 'static) -> Self {
        let nodes = config.nodes;
        let record = Rc::new(RefCell::new(Record::default()));
        let shared = Rc::clone(&record);
        let cluster = Cluster::with_disks(config, seed, move |id, disk: Disk<D>| Tap {
            inner: build(id, disk.clone()),
            disk,
            record: Rc::clone(&shared),
        });
        Recorded {
            cluster,
            record,
            nodes,
        }
    }

    /// Five nodes on [`network`] with `loss` and `duplicate` rates, under random partitions and
    /// crashes until `faults_until` (then healed, every node up): seed and faults drawn from `rng`.
    pub fn random(
        rng: &mut StdRng,
        (loss, duplicate): (f64, f64),
        faults_until: Duration,
        build: impl Fn(NodeId, Disk<D>) -> N + 'static,
    ) -> Self {
        let seed = rng.random();
        let plan = FaultPlan::random(rng, 5, faults_until.mul_f64(1.25), true);
        let mut run = Self::new(network(5, loss, duplicate), seed, build);
        run.faults(plan);
        run
    }

    /// Schedules faults.
    pub fn faults(&mut self, plan: FaultPlan) -> &mut Self {
        self.cluster.faults(plan);
        self
    }

    /// Runs until `at` (time since the start).
    pub fn run_until(&mut self, at: Duration) -> &mut Self {
        self.cluster.run_until(at);
        self
    }

    /// Applies a fault now.
    pub fn inject(&mut self, fault: Fault) -> &mut Self {
        self.cluster.inject(fault);
        self
    }

    /// The running node that believes it leads the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        let end = self.end();
        (0..self.nodes)
            .filter_map(|id| end[id].map(|s| (s, id)))
            .filter(|((role, _), _)| *role == Role::Leader)
            .max_by_key(|((_, term), _)| *term)
            .map(|(_, id)| id)
    }

    /// Looks at node `id`'s own state (`None` while it is crashed).
    pub fn node<R>(&self, id: NodeId, look: impl FnOnce(&N) -> R) -> Option<R> {
        self.cluster.node(id, |tap| look(&tap.inner))
    }

    fn end(&self) -> Vec<Option<(Role, u64)>> {
        (0..self.nodes)
            .map(|id| self.cluster.node(id, |t| (t.inner.role(), t.inner.term())))
            .collect()
    }

    /// What was recorded so far, with each node's current role and term as its `end`.
    pub fn finish(&mut self) -> Record {
        let mut record = self.record.borrow().clone();
        record.end = self.end();
        record.stats = self.cluster.stats();
        record
    }
}

/// The election lab's knobs.
pub struct LabKnobs {
    pub nodes: usize,
    pub loss: f64,
    pub runs: u64,
    /// One row per election timeout range (min, max) in ms; min == max is a fixed timeout.
    pub timeouts_ms: Vec<(u64, u64)>,
    pub heartbeat_ms: u64,
    /// Each run: a cold start, the leader crashed at `crash_at`, the run ends at `end`.
    pub crash_at: Duration,
    pub end: Duration,
}

/// Runs each row's timing over `seeds` runs of a cold start and a leader crash, and prints the
/// elections, split votes, time to a leader and the runs that never settled.
pub fn election_lab<N: Elector<Msg = Msg>>(
    knobs: &LabKnobs,
    build: impl Fn(Disk<HardState>, Timing) -> N + Clone + 'static,
) {
    println!(
        "{} nodes, {:.0}% loss, {} runs per row: a cold start, the leader crashed at {}, until {}",
        knobs.nodes,
        knobs.loss * 100.0,
        knobs.runs,
        whole_millis(knobs.crash_at),
        whole_millis(knobs.end)
    );
    let mut table = Table::new(&[
        "election timeout",
        "elections/run",
        "split votes/run",
        "1st leader (mean)",
        "after crash (mean)",
        "no leader at end",
    ]);
    let mut bars = Vec::new();
    for &(min, max) in &knobs.timeouts_ms {
        let label = format!("{min}-{max} ms");
        let timing = Timing::millis(min, max, knobs.heartbeat_ms);
        let (mut elections, mut splits, mut unsettled) = (0, 0, 0);
        let (mut first, mut firsts, mut after, mut afters) = (Duration::ZERO, 0, Duration::ZERO, 0);
        for seed in 0..knobs.runs {
            let config = Config {
                nodes: knobs.nodes,
                loss: knobs.loss,
                ..Config::default()
            };
            let build = build.clone();
            let mut run = Recorded::new(config, seed, move |_, disk| build(disk, timing));
            run.run_until(knobs.crash_at);
            if let Some(leader) = run.leader() {
                run.inject(Fault::Crash(leader));
            }
            run.run_until(knobs.end);
            let record = run.finish();
            elections += record.elections();
            splits += record.split_votes();
            let mut since: Vec<Duration> = record
                .leaders
                .values()
                .flat_map(|who| who.values().copied())
                .collect();
            since.sort();
            if let Some(&t) = since.first() {
                first += t;
                firsts += 1;
            }
            if let Some(&t) = since.iter().find(|&&t| t > knobs.crash_at) {
                after += t - knobs.crash_at;
                afters += 1;
            }
            unsettled += u64::from(record.settled_leader().is_none());
        }
        let mean = |total: Duration, n: u32| match n {
            0 => "never".to_string(),
            n => whole_millis(total / n),
        };
        let per_run = |n: usize| format!("{:.1}", n as f64 / knobs.runs as f64);
        table.row(&[
            label.clone(),
            per_run(elections),
            per_run(splits),
            mean(first, firsts),
            mean(after, afters),
            format!("{unsettled} of {}", knobs.runs),
        ]);
        bars.push((label, splits as f64 / knobs.runs as f64));
    }
    table.print();
    println!("\nsplit votes per run:\n{}", bar_chart(&bars, 40));
}

/// Five logs after a leader of term 2 committed entry `committed.0` (of term 2) on a majority and
/// crashed: three `holders` have it (some with more term-2 entries after it); the `stale` node
/// missed term 2 but has a longer log of term-1 entries; the last node has a short term-1 log.
/// Which node plays which part is drawn from `rng`.
#[derive(Clone, Debug)]
pub struct Diverged {
    pub logs: Vec<Vec<u64>>,
    pub committed: (u64, u64),
    pub holders: Vec<NodeId>,
    pub stale: NodeId,
}

impl Diverged {
    pub fn draw(rng: &mut StdRng) -> Self {
        let ones = rng.random_range(1..=3);
        let twos = rng.random_range(1..=2);
        let prefix: Vec<u64> = [vec![1; ones], vec![2; twos]].concat();
        let mut order: Vec<NodeId> = (0..5).collect();
        for i in (1..5).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let mut logs = vec![Vec::new(); 5];
        for &h in &order[..3] {
            logs[h] = [prefix.clone(), vec![2; rng.random_range(0..=1)]].concat();
        }
        logs[order[3]] = vec![1; prefix.len() + rng.random_range(2..=4)];
        logs[order[4]] = vec![1; rng.random_range(0..=ones)];
        let mut holders = order[..3].to_vec();
        holders.sort_unstable();
        Diverged {
            logs,
            committed: (prefix.len() as u64, 2),
            holders,
            stale: order[3],
        }
    }

    /// A node builder for a cluster: node `id` starts (the first time) with [`Diverged::disk`].
    pub fn starting<N>(
        &self,
        build: impl Fn(Disk<LogState>) -> N + 'static,
    ) -> impl Fn(NodeId, Disk<LogState>) -> N + 'static {
        let start = self.clone();
        move |id, disk| {
            disk.write(|d| {
                if d.term == 0 {
                    *d = start.disk(id);
                }
            });
            build(disk)
        }
    }

    /// The disk node `id` starts with: its log, term 2, the committed index if it holds it.
    pub fn disk(&self, id: NodeId) -> LogState {
        LogState {
            term: 2,
            voted_for: None,
            log: self.logs[id].clone(),
            commit_index: if self.holders.contains(&id) {
                self.committed.0
            } else {
                0
            },
        }
    }
}

/// The vote_restriction lab's knobs.
pub struct RestrictionKnobs {
    pub runs: u64,
    pub loss: f64,
    pub timing: Timing,
    pub until: Duration,
}

/// Runs the diverged-logs scenario `runs` times and prints, per part a node plays, how often it
/// won an election and how many votes it got.
pub fn restriction_lab<N: Elector<Msg = LogMsg>>(
    knobs: &RestrictionKnobs,
    build: impl Fn(Disk<LogState>, Timing) -> N + Clone + 'static,
) {
    let parts = ["holds the commit", "stale, longer log", "short log"];
    let (mut won, mut votes, mut firsts, mut lost) = ([0u64; 3], [0u64; 3], Vec::new(), 0);
    for seed in 0..knobs.runs {
        let scenario = Diverged::draw(&mut crate::workload::seeded_rng(seed));
        let part = |id: NodeId| match id {
            id if scenario.holders.contains(&id) => 0,
            id if id == scenario.stale => 1,
            _ => 2,
        };
        let config = Config {
            nodes: 5,
            loss: knobs.loss,
            ..Config::default()
        };
        let (build, timing) = (build.clone(), knobs.timing);
        let mut run = Recorded::new(config, seed, scenario.starting(move |d| build(d, timing)));
        let record = run.run_until(knobs.until).finish();
        for who in record.leaders.values() {
            for &id in who.keys() {
                won[part(id)] += 1;
            }
        }
        let first = record.leaders.values().flat_map(|who| who.values()).min();
        firsts.extend(first.copied());
        for ((voter, _), candidates) in &record.votes {
            for &c in candidates.iter().filter(|&&c| c != *voter) {
                votes[part(c)] += 1;
            }
        }
        lost += u64::from(record.two_leaders().is_some());
    }
    println!(
        "{} runs of 5 nodes after a crashed leader of term 2 committed an entry on 3 of them",
        knobs.runs
    );
    let mut table = Table::new(&["node's part", "nodes", "elections won", "votes received"]);
    for (i, name) in parts.iter().enumerate() {
        let nodes = if i == 0 { 3 * knobs.runs } else { knobs.runs };
        table.row(&[
            name.to_string(),
            nodes.to_string(),
            won[i].to_string(),
            votes[i].to_string(),
        ]);
    }
    table.print();
    firsts.sort();
    let median = firsts.get(firsts.len() / 2).copied().unwrap_or_default();
    println!(
        "median time to the first leader: {}; runs with two leaders in a term: {lost}",
        whole_millis(median)
    );
    let bars: Vec<(&str, f64)> = parts.iter().zip(won).map(|(p, w)| (*p, w as f64)).collect();
    println!("\nelections won:\n{}", bar_chart(&bars, 40));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::seeded_rng;

    #[test]
    fn diverged_logs_put_the_committed_entry_on_a_majority_and_a_longer_older_log_elsewhere() {
        for seed in 0..200 {
            let d = Diverged::draw(&mut seeded_rng(seed));
            let (index, term) = d.committed;
            assert_eq!(d.holders.len(), 3);
            for (id, log) in d.logs.iter().enumerate() {
                let holds = log.get(index as usize - 1) == Some(&term);
                assert_eq!(holds, d.holders.contains(&id), "seed {seed}: {d:?}");
                if !d.holders.contains(&id) {
                    assert!(log.iter().all(|&t| t == 1), "seed {seed}: {d:?}");
                }
            }
            let longest_holder = d.holders.iter().map(|&h| d.logs[h].len()).max().unwrap();
            assert!(d.logs[d.stale].len() > index as usize, "seed {seed}: {d:?}");
            assert!(d.logs[d.stale].len() > longest_holder, "seed {seed}: {d:?}");
        }
    }

    #[test]
    fn a_record_counts_split_votes_and_knows_a_settled_leader() {
        let mut r = Record {
            candidacies: BTreeSet::from([(1, 0), (1, 1), (2, 1)]),
            ..Record::default()
        };
        r.leaders
            .entry(2)
            .or_default()
            .insert(1, Duration::from_millis(40));
        r.end = vec![Some((Role::Follower, 2)), Some((Role::Leader, 2)), None];
        assert_eq!((r.elections(), r.split_votes()), (2, 1));
        assert_eq!(r.settled_leader(), Some((1, 2, Duration::from_millis(40))));
        r.end[0] = Some((Role::Candidate, 3));
        assert_eq!(
            r.settled_leader(),
            None,
            "a node in another term: not settled"
        );
        r.votes.insert((0, 1), BTreeSet::from([0, 1]));
        assert_eq!(r.double_vote(), Some(((0, 1), vec![0, 1])));
    }
}
