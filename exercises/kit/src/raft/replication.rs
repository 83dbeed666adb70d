//! Raft's log replication as a harness: the log, the AppendEntries messages, a node that drives
//! the rules the learner writes ([`Rules`]), and a controller that plays the elections.
//!
//! The exercises log_replication, commit_rule and replicated_kv need leaders but not the election
//! code (topic 14's first two exercises teach that). So the controller *plays* the elections: it
//! picks a majority of voters and, among them, a candidate whose log is at least as up to date as
//! every voter's (the outcome a real election can have, Raft §5.4.1), and hands out the new term to
//! the voters and the leadership to the candidate at once, as the votes would. One leader per
//! term by construction, terms rising; old leaders are not told and keep running, which is the
//! dangerous case the rules must survive. Everything here is plumbing: the rules are the learner's.

use std::cell::RefCell;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::cluster::{Ctx, Node, NodeId};

/// A term: Raft's logical clock; at most one leader per term.
pub type Term = u64;
/// A position in the log, from 1; 0 means "before the first entry".
pub type Index = u64;

/// Entries sent in one AppendEntries at most.
pub const MAX_BATCH: usize = 64;

/// One log entry: the term of the leader that created it, and the client's command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<C> {
    pub term: Term,
    pub cmd: C,
}

/// The leader's request (Raft figure 2): "here are `entries`, which follow the entry at
/// `prev_index` of term `prev_term` in my log; everything up to `leader_commit` is committed".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendEntries<C> {
    pub term: Term,
    pub leader: NodeId,
    pub prev_index: Index,
    pub prev_term: Term,
    pub entries: Vec<Entry<C>>,
    pub leader_commit: Index,
}

/// The follower's answer. On success, `match_index` is the index of the last entry the request
/// covered (`prev_index` + its entries): the follower's log now matches the leader's up to there.
/// On a failed consistency check, the hint of §5.3 (end) for skipping back fast: `conflict_term`
/// is the term of the follower's entry at `prev_index` (`None` if its log is shorter than that),
/// and `conflict_index` the first index it holds of that term (or its last index + 1 if short).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendReply {
    pub term: Term,
    pub success: bool,
    pub match_index: Index,
    pub conflict_term: Option<Term>,
    pub conflict_index: Index,
}

/// What a leader keeps per node (itself included: `matched[me]` is its own last index, kept up to
/// date by the harness when it appends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderState {
    /// The index of the next entry to send to each node.
    pub next: Vec<Index>,
    /// The highest index known to be replicated on each node (its log matches the leader's there).
    pub matched: Vec<Index>,
}

/// One node's Raft state: what the rules read and change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Raft<C> {
    pub me: NodeId,
    pub nodes: usize,
    /// The latest term this node has seen.
    pub term: Term,
    /// The log: `log[0]` is index 1.
    pub log: Vec<Entry<C>>,
    /// The highest index known to be committed.
    pub commit: Index,
    /// `Some` while this node is the leader of `term`.
    pub leader: Option<LeaderState>,
}

impl<C: Clone> Raft<C> {
    /// A follower with an empty log in term 0.
    pub fn new(me: NodeId, nodes: usize) -> Self {
        Raft {
            me,
            nodes,
            term: 0,
            log: Vec::new(),
            commit: 0,
            leader: None,
        }
    }

    /// The index of the last entry (0 if the log is empty).
    pub fn last_index(&self) -> Index {
        self.log.len() as Index
    }

    /// The term of the entry at `index`: `Some(0)` for index 0, `None` past the end of the log.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        match index {
            0 => Some(0),
            i => self.log.get(i as usize - 1).map(|e| e.term),
        }
    }

    /// The entry at `index` (from 1).
    pub fn entry(&self, index: Index) -> Option<&Entry<C>> {
        (index >= 1)
            .then(|| self.log.get(index as usize - 1))
            .flatten()
    }

    /// Becomes the leader of `term`: next index past the end for everyone, nothing matched yet
    /// except its own log.
    pub fn become_leader(&mut self, term: Term) {
        self.term = term;
        let last = self.last_index();
        let mut matched = vec![0; self.nodes];
        matched[self.me] = last;
        self.leader = Some(LeaderState {
            next: vec![last + 1; self.nodes],
            matched,
        });
    }

    /// Appends a client's command as a leader (nothing if not the leader); returns its index.
    pub fn propose(&mut self, cmd: C) -> Option<Index> {
        let term = self.term;
        let leader = self.leader.as_mut()?;
        self.log.push(Entry { term, cmd });
        let last = self.log.len() as Index;
        leader.matched[self.me] = last;
        Some(last)
    }

    /// The AppendEntries a leader sends `peer`: from its next index on, up to [`MAX_BATCH`]
    /// entries (none: a heartbeat that still checks consistency).
    pub fn request_for(&self, peer: NodeId) -> Option<AppendEntries<C>> {
        let leader = self.leader.as_ref()?;
        let next = leader.next[peer].clamp(1, self.last_index() + 1);
        let prev_index = next - 1;
        let prev_term = self
            .term_at(prev_index)
            .expect("prev_index is within the log");
        let from = prev_index as usize;
        let to = (from + MAX_BATCH).min(self.log.len());
        Some(AppendEntries {
            term: self.term,
            leader: self.me,
            prev_index,
            prev_term,
            entries: self.log[from..to].to_vec(),
            leader_commit: self.commit,
        })
    }
}

/// A naive but safe commit rule, given in log_replication (commit_rule teaches the real one):
/// commit up to the highest index that *every* node has matched. An entry on every node is in
/// every future leader's log, whatever its term; the price is that one slow node stalls commits.
pub fn commit_when_on_every_node<C: Clone>(raft: &mut Raft<C>) {
    if let Some(leader) = &raft.leader {
        let everywhere = leader.matched.iter().copied().min().unwrap_or(0);
        raft.commit = raft.commit.max(everywhere.min(raft.last_index()));
    }
}

/// The rules of log replication: the learner's part, as a trait the harness calls.
pub trait Rules<C>: 'static {
    /// A follower (or any node) receives an AppendEntries; returns the reply to send back.
    fn append_entries(raft: &mut Raft<C>, req: AppendEntries<C>) -> AppendReply;
    /// A leader receives `reply` from `from`.
    fn on_append_reply(raft: &mut Raft<C>, from: NodeId, reply: AppendReply);
    /// A leader advances its commit index (after each reply and tick).
    fn advance_commit(raft: &mut Raft<C>);
}

/// The messages of the harness's cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg<C> {
    Append(AppendEntries<C>),
    Reply(AppendReply),
    /// A client's command, for the leader to append (ignored by a node that is not leading).
    Propose(C),
}

/// What the controller sees of each node (published after every event), and what it assigned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct View {
    pub term: Term,
    pub last_index: Index,
    pub last_term: Term,
    pub commit: Index,
    pub leading: bool,
}

#[derive(Default)]
struct BoardInner {
    views: Vec<View>,
    up: Vec<bool>,
    /// Terms handed out by the controller, not yet picked up: (term, lead?).
    assigned: Vec<Option<(Term, bool)>>,
    max_term: Term,
    elections: u64,
    entries_sent: u64,
    refused: u64,
}

/// The controller's blackboard, shared (one thread) by the nodes and the test or lab driving them.
#[derive(Clone, Default)]
pub struct Board(Rc<RefCell<BoardInner>>);

impl Board {
    pub fn new(nodes: usize) -> Self {
        Board(Rc::new(RefCell::new(BoardInner {
            views: vec![View::default(); nodes],
            up: vec![true; nodes],
            assigned: vec![None; nodes],
            ..BoardInner::default()
        })))
    }

    /// What node `id` last published.
    pub fn view(&self, id: NodeId) -> View {
        self.0.borrow().views[id]
    }

    /// The node leading the highest term, if any still thinks it leads.
    pub fn newest_leader(&self) -> Option<NodeId> {
        let b = self.0.borrow();
        (0..b.views.len())
            .filter(|&i| b.views[i].leading && b.up[i])
            .max_by_key(|&i| b.views[i].term)
    }

    /// Every node that thinks it leads (old leaders included), in order.
    pub fn leaders(&self) -> Vec<NodeId> {
        let b = self.0.borrow();
        (0..b.views.len())
            .filter(|&i| b.views[i].leading && b.up[i])
            .collect()
    }

    /// Elections played so far.
    pub fn elections(&self) -> u64 {
        self.0.borrow().elections
    }

    /// Entries carried by AppendEntries so far, and replies that refused one.
    pub fn traffic(&self) -> (u64, u64) {
        let b = self.0.borrow();
        (b.entries_sent, b.refused)
    }

    /// Marks a node crashed or running (a crashed node neither votes nor leads).
    pub fn set_up(&self, id: NodeId, up: bool) {
        self.0.borrow_mut().up[id] = up;
    }

    /// Plays an election: `voters` (a majority, candidate included) adopt a new term, and
    /// `candidate` leads it. Panics if the candidate's log is less up to date than a voter's
    /// (a real election could not have that outcome).
    pub(crate) fn elect(&self, candidate: NodeId, voters: &[NodeId]) -> Term {
        let mut b = self.0.borrow_mut();
        assert!(2 * voters.len() > b.views.len(), "a majority must vote");
        let key = |v: &View| (v.last_term, v.last_index);
        for &v in voters {
            assert!(
                key(&b.views[candidate]) >= key(&b.views[v]),
                "node {v} would not vote for {candidate}: its log is more up to date"
            );
        }
        let term = b.max_term + 1;
        b.max_term = term;
        b.elections += 1;
        for &v in voters {
            b.assigned[v] = Some((term, false));
        }
        b.assigned[candidate] = Some((term, true));
        term
    }

    /// Plays a random election among the running nodes: a random majority votes for one of its
    /// most up-to-date members. Returns the new leader, or `None` without a running majority.
    pub(crate) fn random_election(&self, rng: &mut StdRng) -> Option<NodeId> {
        let (mut up, nodes): (Vec<NodeId>, usize) = {
            let b = self.0.borrow();
            ((0..b.up.len()).filter(|&i| b.up[i]).collect(), b.up.len())
        };
        let majority = nodes / 2 + 1;
        if up.len() < majority {
            return None;
        }
        for i in (1..up.len()).rev() {
            up.swap(i, rng.random_range(0..=i));
        }
        let size = rng.random_range(majority..=up.len());
        let voters = &up[..size];
        let key = |i: NodeId| {
            let v = self.view(i);
            (v.last_term, v.last_index)
        };
        let best = voters.iter().map(|&i| key(i)).max()?;
        let tied: Vec<NodeId> = voters.iter().copied().filter(|&i| key(i) == best).collect();
        let candidate = tied[rng.random_range(0..tied.len())];
        self.elect(candidate, voters);
        Some(candidate)
    }

    /// Picks up a term handed to `raft` by the controller (at the start of each of its events).
    pub fn sync<C: Clone>(&self, raft: &mut Raft<C>) {
        let assigned = self.0.borrow_mut().assigned[raft.me].take();
        if let Some((term, lead)) = assigned
            && term > raft.term
        {
            raft.term = term;
            raft.leader = None;
            if lead {
                raft.become_leader(term);
            }
        }
    }

    /// Publishes `raft`'s state for the controller (after each of its events).
    pub fn publish<C: Clone>(&self, raft: &Raft<C>) {
        let mut b = self.0.borrow_mut();
        b.max_term = b.max_term.max(raft.term);
        b.views[raft.me] = View {
            term: raft.term,
            last_index: raft.last_index(),
            last_term: raft.term_at(raft.last_index()).unwrap_or(0),
            commit: raft.commit,
            leading: raft.leader.is_some(),
        };
    }
}

/// A Raft node driven by the rules `R`: answers AppendEntries, and as a leader sends them on
/// every tick (entries from each node's next index, or a heartbeat), and again at once after a
/// refusal (to retry further back).
pub struct Peer<C, R> {
    pub raft: Raft<C>,
    board: Board,
    rules: PhantomData<R>,
}

impl<C: Clone, R: Rules<C>> Peer<C, R> {
    pub fn new(raft: Raft<C>, board: Board) -> Self {
        Peer {
            raft,
            board,
            rules: PhantomData,
        }
    }

    /// The controller's board this peer reads its terms from.
    pub fn board(&self) -> &Board {
        &self.board
    }

    fn send_to(&self, peer: NodeId, ctx: &mut Ctx<'_, Msg<C>>) {
        if let Some(req) = self.raft.request_for(peer) {
            self.board.0.borrow_mut().entries_sent += req.entries.len() as u64;
            ctx.send(peer, Msg::Append(req));
        }
    }

    /// Handles one message without the board (a step of a [`Script`] or of a cluster event).
    pub fn step(&mut self, from: NodeId, msg: Msg<C>, ctx: &mut Ctx<'_, Msg<C>>) {
        match msg {
            Msg::Append(req) => {
                let reply = R::append_entries(&mut self.raft, req);
                ctx.send(from, Msg::Reply(reply));
            }
            Msg::Reply(reply) if self.raft.leader.is_some() => {
                let retry = !reply.success;
                self.board.0.borrow_mut().refused += u64::from(retry);
                R::on_append_reply(&mut self.raft, from, reply);
                if self.raft.leader.is_some() {
                    R::advance_commit(&mut self.raft);
                    if retry {
                        self.send_to(from, ctx);
                    }
                }
            }
            Msg::Reply(_) => {}
            Msg::Propose(cmd) => {
                self.raft.propose(cmd);
            }
        }
    }
}

impl<C: Clone + Debug + 'static, R: Rules<C>> Node for Peer<C, R> {
    type Msg = Msg<C>;

    fn on_message(&mut self, from: NodeId, msg: Msg<C>, ctx: &mut Ctx<'_, Msg<C>>) {
        self.board.sync(&mut self.raft);
        self.step(from, msg, ctx);
        self.board.publish(&self.raft);
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Msg<C>>) {
        self.board.sync(&mut self.raft);
        if self.raft.leader.is_some() {
            R::advance_commit(&mut self.raft);
            for peer in ctx.peers().collect::<Vec<_>>() {
                self.send_to(peer, ctx);
            }
        }
        self.board.publish(&self.raft);
    }
}

/// A scripted cluster without a network: the test says which leader sends to whom and when, as
/// in the paper's figures. Every message is delivered at once (or dropped, if the test says so).
pub struct Script<C, R> {
    pub peers: Vec<Peer<C, R>>,
    board: Board,
}

impl<C: Clone + Debug + 'static, R: Rules<C>> Script<C, R> {
    pub fn new(nodes: usize) -> Self {
        let board = Board::new(nodes);
        let peers = (0..nodes)
            .map(|id| Peer::new(Raft::new(id, nodes), board.clone()))
            .collect();
        Script { peers, board }
    }

    /// Node `id`'s state.
    pub fn raft(&self, id: NodeId) -> &Raft<C> {
        &self.peers[id].raft
    }

    /// Plays an election: `voters` (a majority, candidate included) adopt a new term and
    /// `candidate` leads it; the nodes pick it up at once. Panics if the candidate's log is less
    /// up to date than a voter's (a real election could not have that outcome).
    pub fn elect(&mut self, candidate: NodeId, voters: &[NodeId]) -> Term {
        for p in &self.peers {
            self.board.publish(&p.raft);
        }
        let term = self.board.elect(candidate, voters);
        for p in &mut self.peers {
            self.board.sync(&mut p.raft);
        }
        term
    }

    /// Plays a random election: a random majority of the nodes votes for one of its most
    /// up-to-date members; returns the new leader.
    pub fn random_election(&mut self, rng: &mut StdRng) -> Option<NodeId> {
        for p in &self.peers {
            self.board.publish(&p.raft);
        }
        let leader = self.board.random_election(rng);
        for p in &mut self.peers {
            self.board.sync(&mut p.raft);
        }
        leader
    }

    /// The leader `leader` appends `cmd`.
    pub fn propose(&mut self, leader: NodeId, cmd: C) -> Index {
        self.peers[leader]
            .raft
            .propose(cmd)
            .expect("only a leader takes proposals")
    }

    /// `leader` sends `to` its AppendEntries, and the answers go back and forth until the leader
    /// has nothing more to send `to` right away. Returns the round trips made.
    pub fn replicate(&mut self, leader: NodeId, to: NodeId) -> usize {
        let nodes = self.peers.len();
        let mut rng = StdRng::seed_from_u64(0);
        let mut pending: Vec<Msg<C>> = self.peers[leader]
            .raft
            .request_for(to)
            .map(Msg::Append)
            .into_iter()
            .collect();
        let mut trips = 0;
        loop {
            let leader_state = self.peers[leader].raft.leader.as_ref();
            let behind =
                leader_state.is_some_and(|l| l.next[to] <= self.peers[leader].raft.last_index());
            if pending.is_empty() && behind {
                pending.extend(self.peers[leader].raft.request_for(to).map(Msg::Append));
            }
            let Some(req) = pending.pop() else {
                break;
            };
            trips += 1;
            assert!(
                trips <= 10_000,
                "replication from {leader} to {to} never ends"
            );
            let mut replies = Vec::new();
            let mut ctx = Ctx::new(to, nodes, Duration::ZERO, &mut replies, &mut rng);
            self.peers[to].step(leader, req, &mut ctx);
            for (_, reply) in replies {
                let mut sent = Vec::new();
                let mut ctx = Ctx::new(leader, nodes, Duration::ZERO, &mut sent, &mut rng);
                self.peers[leader].step(to, reply, &mut ctx);
                pending.extend(sent.into_iter().map(|(_, m)| m));
            }
        }
        trips
    }

    /// The leader runs its commit rule (as it does on every tick).
    pub fn tick(&mut self, leader: NodeId) {
        if self.peers[leader].raft.leader.is_some() {
            R::advance_commit(&mut self.peers[leader].raft);
        }
    }
}
