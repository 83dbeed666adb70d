// SWIM — cluster membership that finds crashed nodes without declaring slow ones dead.
//
// Consul, Nomad and Serf keep their member lists with SWIM (HashiCorp's memberlist): each node
// pings one random member per protocol period, and a missing ack is checked through k other
// members before anyone is suspected. A suspect can answer back: it raises its incarnation
// number and announces itself alive. Every message carries the sender's view, so news spreads
// with the pings the detector sends anyway.
//
// Build `merge`, `on_message` and `on_tick`. The property: a live node behind one lossy link is
// never declared dead; a crashed node is declared dead by every live node within a bound; a
// suspicion older than the member's incarnation is ignored; a suspected live node refutes it.
//
// Lab: turn INDIRECT (k) and LOSSY_LINK; with k = 0 the node behind the lossy link is suspected
// and declared dead again and again, with k ≥ 2 it is not, and the crash is still found.

use std::collections::BTreeMap;
use std::time::Duration;

#[allow(unused_imports)] // (you will need it)
use rand::RngExt;
use sdlings_kit::cluster::{Ctx, Node, NodeId};
use sdlings_kit::gossip::swim::{Member, Msg, State, SwimKnobs, Timing, lab};

// ---- Your part -------------------------------------------------------------------------------

/// The member this node is probing in the current period.
#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
struct Probing {
    target: NodeId,
    seq: u64,
    started: Duration,
    asked_others: bool,
}

#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct SwimNode {
    me: NodeId,
    timing: Timing,
    incarnation: u64,
    /// Every other member: its state, its incarnation, and since when (this node's clock).
    members: BTreeMap<NodeId, (State, u64, Duration)>,
    /// The probe of this period; `None` once acked.
    probe: Option<Probing>,
    /// Pings sent for others: our seq → (who asked, their seq).
    relays: BTreeMap<u64, (NodeId, u64)>,
    next_seq: u64,
    next_period: Duration,
}

impl SwimNode {
    /// Takes in one entry of another node's view, at `now` (this node's clock). About itself: a
    /// suspicion (or death) at its incarnation or above is refuted. About others: dead is final;
    /// a suspicion wins over alive of the same or an older incarnation; alive wins over a
    /// suspicion only with a newer one; otherwise only newer incarnations count.
    pub fn merge(&mut self, update: Member, now: Duration) {
        todo!("take in {update:?} at {now:?}: refute it if about me, else apply the precedence")
    }

    /// Node `me` of a cluster of `nodes`, all alive at incarnation 0.
    pub fn new(me: NodeId, nodes: usize, timing: Timing) -> Self {
        let members = (0..nodes)
            .filter(|&n| n != me)
            .map(|n| (n, (State::Alive, 0, Duration::ZERO)))
            .collect();
        SwimNode {
            me,
            timing,
            incarnation: 0,
            members,
            probe: None,
            relays: BTreeMap::new(),
            next_seq: 0,
            next_period: Duration::ZERO,
        }
    }

    /// What this node believes of `node` (itself: alive at its own incarnation).
    pub fn state(&self, node: NodeId) -> (State, u64) {
        match self.members.get(&node) {
            Some(&(state, incarnation, _)) => (state, incarnation),
            None => (State::Alive, self.incarnation),
        }
    }

    /// This node's view, itself included: what every message carries.
    pub fn view(&self) -> Vec<Member> {
        let me = Member {
            node: self.me,
            state: State::Alive,
            incarnation: self.incarnation,
        };
        let others = self
            .members
            .iter()
            .map(|(&node, &(state, incarnation, _))| Member {
                node,
                state,
                incarnation,
            });
        std::iter::once(me).chain(others).collect()
    }

    #[allow(dead_code)] // (given: you may use it)
    fn members_except(&self, except: NodeId) -> Vec<NodeId> {
        self.members
            .iter()
            .filter(|&(&n, &(state, _, _))| n != except && state != State::Dead)
            .map(|(&n, _)| n)
            .collect()
    }

    #[allow(dead_code)] // (given: you may use it)
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
}

impl Node for SwimNode {
    type Msg = Msg;

    /// Merge the view the message carries; answer a `Ping` with an `Ack`; ping a `PingReq`'s
    /// target with a seq of our own; an `Ack` ends our probe or is passed back to whoever asked.
    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        todo!(
            "node {}: merge the view of {msg:?} from {from}, then answer or relay",
            ctx.me()
        )
    }

    /// Suspicions that timed out become deaths; a probe unanswered after the ack timeout is
    /// retried through k others; at the end of a period an unanswered target is suspected and
    /// the next member is pinged.
    fn on_tick(&mut self, ctx: &mut Ctx<'_, Msg>) {
        todo!(
            "node {} at {:?}: expire suspicions, ask others, end the period",
            ctx.me(),
            ctx.now()
        )
    }
}

// ---- Lab -------------------------------------------------------------------------------------

/// Cluster size, loss on every link, loss on the link between nodes 0 and 1.
const NODES: usize = 8;
const LOSS: f64 = 0.02;
const LOSSY_LINK: f64 = 0.9;
/// The indirect fanouts k to compare, and the protocol's clocks.
const INDIRECT: [usize; 3] = [0, 1, 3];
const PERIOD_MS: u64 = 100;
const SUSPICION_MS: u64 = 500;
const RUNS: u64 = 5;

fn main() {
    let timing = Timing {
        period: Duration::from_millis(PERIOD_MS),
        ack_timeout: Duration::from_millis(PERIOD_MS * 2 / 5),
        suspicion: Duration::from_millis(SUSPICION_MS),
        indirect: 0,
    };
    let knobs = SwimKnobs {
        nodes: NODES,
        loss: LOSS,
        lossy_link: LOSSY_LINK,
        indirect: &INDIRECT,
        timing,
        seeds: RUNS,
    };
    lab(knobs, SwimNode::new, |n, other| n.state(other).0);
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use sdlings_kit::cluster::{Cluster, Config, Fault, FaultPlan, Probe};

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    const TIMING: Timing = Timing {
        period: Duration::from_millis(100),
        ack_timeout: Duration::from_millis(40),
        suspicion: Duration::from_millis(500),
        indirect: 2,
    };

    fn member(node: NodeId, state: State, incarnation: u64) -> Member {
        Member {
            node,
            state,
            incarnation,
        }
    }

    fn ping_with(view: Vec<Member>) -> Msg {
        Msg::Ping { seq: 99, view }
    }

    /// The one ping sent by a tick that starts a period: (target, seq).
    fn the_ping(out: &[(NodeId, Msg)]) -> (NodeId, u64) {
        let [(target, Msg::Ping { seq, .. })] = out else {
            panic!("a new period: one ping, to one member, got {out:?}");
        };
        (*target, *seq)
    }

    #[test]
    fn a_ping_is_answered_with_an_ack_of_the_same_seq_carrying_the_view() {
        let (mut node, mut probe) = (SwimNode::new(2, 3, TIMING), Probe::new(2, 3));
        let out = probe.deliver(&mut node, 0, ping_with(vec![]));
        assert_eq!(
            out,
            vec![(
                0,
                Msg::Ack {
                    seq: 99,
                    view: node.view()
                }
            )]
        );
        assert_eq!(
            node.view()[0],
            member(2, State::Alive, 0),
            "the view starts with itself"
        );
    }

    #[test]
    fn an_unanswered_ping_goes_through_k_others_then_suspicion_then_death() {
        let (mut node, mut probe) = (SwimNode::new(0, 5, TIMING), Probe::new(0, 5));
        let known = (1..5).map(|n| member(n, State::Alive, 3)).collect();
        probe.deliver(&mut node, 1, ping_with(known));
        let (target, seq) = the_ping(&probe.at(ms(0)).tick(&mut node));
        assert!(
            probe.at(ms(20)).tick(&mut node).is_empty(),
            "before the ack timeout: wait"
        );
        let out = probe.at(ms(40)).tick(&mut node);
        let mut helpers: Vec<NodeId> = out
            .iter()
            .map(|(to, m)| match m {
                Msg::PingReq {
                    seq: s, target: t, ..
                } if *s == seq && *t == target => *to,
                other => panic!("after the ack timeout only ping-reqs for {target}: {other:?}"),
            })
            .collect();
        helpers.sort();
        helpers.dedup();
        assert!(
            helpers.len() == 2 && !helpers.contains(&target) && !helpers.contains(&0),
            "no ack within 40 ms: ask k = 2 other members to ping {target}, got {helpers:?}"
        );
        assert_eq!(
            node.state(target),
            (State::Alive, 3),
            "no ack yet, but others may still reach {target}: suspect only when the period ends"
        );
        assert!(
            probe.at(ms(60)).tick(&mut node).is_empty(),
            "ping-reqs go once per probe"
        );
        probe.at(ms(100)).tick(&mut node);
        assert_eq!(
            node.state(target),
            (State::Suspect, 3),
            "no ack, direct or indirect, by the end of the period: suspected (not dead), at \
             the incarnation we knew (3)"
        );
        probe.at(ms(590)).tick(&mut node);
        assert_ne!(
            node.state(target).0,
            State::Dead,
            "suspected 490 ms ago: not yet dead"
        );
        probe.at(ms(600)).tick(&mut node);
        assert_eq!(
            node.state(target).0,
            State::Dead,
            "suspected for 500 ms: dead"
        );
    }

    #[test]
    fn an_ack_relayed_by_a_helper_keeps_the_target_alive() {
        let (mut node, mut probe) = (SwimNode::new(0, 4, TIMING), Probe::new(0, 4));
        let (target, seq) = the_ping(&probe.at(ms(0)).tick(&mut node));
        let out = probe.at(ms(40)).tick(&mut node);
        let helper = out[0].0;
        probe
            .at(ms(70))
            .deliver(&mut node, helper, Msg::Ack { seq, view: vec![] });
        probe.at(ms(100)).tick(&mut node);
        assert_eq!(
            node.state(target),
            (State::Alive, 0),
            "the ack came back through helper {helper}: {target} answered, it is alive"
        );
    }

    #[test]
    fn a_ping_req_is_relayed_with_our_own_seq_and_the_ack_passed_back_with_theirs() {
        let (mut node, mut probe) = (SwimNode::new(1, 3, TIMING), Probe::new(1, 3));
        let out = probe.deliver(
            &mut node,
            0,
            Msg::PingReq {
                seq: 7,
                target: 2,
                view: vec![member(0, State::Alive, 5)],
            },
        );
        let [(2, Msg::Ping { seq: ours, .. })] = out.as_slice() else {
            panic!("a ping-req for 2: ping 2 ourselves, got {out:?}");
        };
        let out = probe.deliver(
            &mut node,
            2,
            Msg::Ack {
                seq: *ours,
                view: vec![member(2, State::Alive, 2)],
            },
        );
        assert!(
            matches!(out.as_slice(), [(0, Msg::Ack { seq: 7, .. })]),
            "2 answered our ping: pass the ack back to 0 with 0's seq 7, got {out:?}"
        );
        assert_eq!(
            (node.state(0), node.state(2)),
            ((State::Alive, 5), (State::Alive, 2)),
            "a ping-req and an ack carry their sender's view too: merge it, as for a ping"
        );
    }

    #[test]
    fn a_stale_suspicion_is_ignored_and_only_a_newer_alive_clears_a_suspicion() {
        let (mut node, mut probe) = (SwimNode::new(0, 3, TIMING), Probe::new(0, 3));
        probe.deliver(&mut node, 1, ping_with(vec![member(2, State::Alive, 3)]));
        probe.deliver(&mut node, 1, ping_with(vec![member(2, State::Suspect, 2)]));
        assert_eq!(
            node.state(2),
            (State::Alive, 3),
            "2 is alive at incarnation 3: a suspicion of incarnation 2 is older news, ignored"
        );
        probe.deliver(&mut node, 1, ping_with(vec![member(2, State::Suspect, 3)]));
        assert_eq!(
            node.state(2),
            (State::Suspect, 3),
            "a suspicion at incarnation 3 counts"
        );
        probe.deliver(&mut node, 1, ping_with(vec![member(2, State::Alive, 3)]));
        assert_eq!(
            node.state(2),
            (State::Suspect, 3),
            "alive at the same incarnation is stale: only 2 itself can clear it, with 4"
        );
        probe.deliver(&mut node, 1, ping_with(vec![member(2, State::Alive, 4)]));
        assert_eq!(
            node.state(2),
            (State::Alive, 4),
            "alive at a newer incarnation clears it"
        );
        probe.deliver(&mut node, 1, ping_with(vec![member(2, State::Suspect, 6)]));
        assert_eq!(
            node.state(2),
            (State::Suspect, 6),
            "2 refuted again since (we missed it) and is suspected at 6: newer than alive at 4"
        );
        probe.deliver(&mut node, 1, ping_with(vec![member(2, State::Suspect, 8)]));
        assert_eq!(
            node.state(2),
            (State::Suspect, 8),
            "a suspicion of a newer incarnation replaces an older suspicion"
        );
        probe.deliver(&mut node, 1, ping_with(vec![member(2, State::Dead, 4)]));
        probe.deliver(&mut node, 1, ping_with(vec![member(2, State::Alive, 9)]));
        assert_eq!(node.state(2).0, State::Dead, "dead is final");
    }

    #[test]
    fn a_suspected_node_refutes_with_a_higher_incarnation() {
        let (mut node, mut probe) = (SwimNode::new(2, 3, TIMING), Probe::new(2, 3));
        let out = probe.deliver(&mut node, 0, ping_with(vec![member(2, State::Suspect, 0)]));
        let Msg::Ack { view, .. } = &out[0].1 else {
            panic!("expected an ack: {out:?}")
        };
        assert_eq!(
            view[0],
            member(2, State::Alive, 1),
            "suspected at incarnation 0: announce itself alive at incarnation 1, which beats it"
        );
        probe.deliver(&mut node, 0, ping_with(vec![member(2, State::Suspect, 0)]));
        assert_eq!(
            node.view()[0].incarnation,
            1,
            "an old suspicion again: already refuted"
        );
        probe.deliver(&mut node, 0, ping_with(vec![member(2, State::Alive, 1)]));
        assert_eq!(
            node.view()[0].incarnation,
            1,
            "hearing itself alive is no suspicion: nothing to refute"
        );
    }

    #[test]
    fn ping_reqs_go_to_live_members_other_than_the_target_and_the_dead_are_not_probed() {
        let (mut node, mut probe) = (SwimNode::new(0, 4, TIMING), Probe::new(0, 4));
        probe.deliver(&mut node, 1, ping_with(vec![member(3, State::Dead, 0)]));
        for period in 0..4 {
            let (target, _) = the_ping(&probe.at(ms(period * 100)).tick(&mut node));
            assert_ne!(target, 3, "period {period}: 3 is dead, do not probe it");
            let other = 3 - target;
            let out = probe.at(ms(period * 100 + 40)).tick(&mut node);
            let asked: Vec<NodeId> = out.iter().map(|(to, _)| *to).collect();
            assert!(
                asked == [other] || (period > 0 && asked.is_empty()),
                "period {period}: k = 2, but of 1, 2 and the dead 3 only {other} can ping \
                 {target} for us (asking {target} to ping itself proves nothing): one ping-req, \
                 to {other} (or none once {other} is suspected, if you ask only live ones), \
                 got {out:?}"
            );
        }
    }

    #[test]
    fn with_one_member_nobody_is_asked_and_its_suspicion_runs_out_although_it_is_pinged_again() {
        let (mut node, mut probe) = (SwimNode::new(0, 2, TIMING), Probe::new(0, 2));
        for t in (0..=600).step_by(20) {
            let out = probe.at(ms(t)).tick(&mut node);
            assert!(
                out.iter()
                    .all(|(to, m)| *to == 1 && matches!(m, Msg::Ping { .. })),
                "at {t} ms: 1 is the only member, and nobody can ping it for us: only pings, \
                 got {out:?}"
            );
        }
        assert_eq!(
            node.state(1).0,
            State::Dead,
            "1 never answered: suspected at 100 ms, dead at 600 ms; a probe of a member already \
             suspected must not restart its suspicion, or a member probed every period never dies"
        );
    }

    #[test]
    fn a_helper_passes_back_only_the_targets_ack_not_one_for_its_own_probe() {
        let (mut node, mut probe) = (SwimNode::new(1, 4, TIMING), Probe::new(1, 4));
        let (mine, seq) = the_ping(&probe.at(ms(0)).tick(&mut node));
        let mut others = [0, 2, 3].into_iter().filter(|&n| n != mine);
        let (asker, target) = (others.next().unwrap(), others.next().unwrap());
        let view = vec![];
        probe.deliver(&mut node, asker, Msg::PingReq { seq, target, view });
        let out = probe.deliver(&mut node, mine, Msg::Ack { seq, view: vec![] });
        assert!(
            out.is_empty(),
            "{mine} answered node 1's own ping {seq}; {target} has not answered the ping asked \
             for by {asker} (whose number happens to be {seq} too): nothing goes to {asker}. \
             Ping a ping-req's target with a number of your own. Got {out:?}"
        );
    }

    #[test]
    fn a_late_ack_of_an_earlier_probe_does_not_answer_the_current_one() {
        let (mut node, mut probe) = (SwimNode::new(0, 4, TIMING), Probe::new(0, 4));
        let (first, old) = the_ping(&probe.at(ms(0)).tick(&mut node));
        probe.at(ms(40)).tick(&mut node);
        let (second, current) = the_ping(&probe.at(ms(100)).tick(&mut node));
        let view = vec![];
        probe
            .at(ms(110))
            .deliver(&mut node, first, Msg::Ack { seq: old, view });
        let out = probe.at(ms(140)).tick(&mut node);
        assert!(
            out.iter()
                .any(|(_, m)| matches!(m, Msg::PingReq { seq, target, .. }
                if *seq == current && *target == second)),
            "the ack of ping {old} (the previous period's) came late; ping {current} to \
             {second} is still unanswered at its ack timeout: ask others, got {out:?}"
        );
    }

    #[test]
    fn a_lossy_link_kills_nobody_and_a_crash_is_known_dead_by_all_soon_after() {
        let (mut runs, mut late) = (0, Vec::new());
        sdlings_kit::property::for_seeds(100, |rng| {
            runs += 1;
            let seed: u64 = rng.random();
            let config = Config {
                nodes: 5,
                loss: 0.03,
                tick: ms(10),
                latency: (ms(5), ms(15)),
                limit: ms(1200),
                ..Config::default()
            };
            let mut cluster = Cluster::new(config, seed, |id| SwimNode::new(id, 5, TIMING));
            let a = rng.random_range(0..5);
            let b = (a + rng.random_range(1..5)) % 5;
            let crashed = (0..5).find(|n| *n != a && *n != b).unwrap();
            cluster.faults(
                FaultPlan::new()
                    .at(ms(0), Fault::LossyLink(a, b, 0.95))
                    .at(ms(100), Fault::Crash(crashed)),
            );
            let deaths: Rc<RefCell<Vec<(NodeId, NodeId, Duration)>>> = Rc::default();
            let log = Rc::clone(&deaths);
            cluster.observe(move |id, node, now| {
                for other in (0..5).filter(|&o| o != crashed && o != id) {
                    if node.state(other).0 == State::Dead {
                        log.borrow_mut().push((id, other, now));
                    }
                }
            });
            cluster.run_until(ms(1200));
            if let Some((by, whom, at)) = deaths.borrow().first() {
                panic!(
                    "seed {seed}: node {by} declared node {whom} dead at {at:?}, but {whom} never \
                     crashed (the link {a}–{b} loses 95%, the others 3%): probe through others, \
                     suspect before declaring dead, and let the suspect refute"
                );
            }
            let still: Vec<String> = (0..5)
                .filter(|&n| n != crashed)
                .map(|n| (n, cluster.node(n, |node| node.state(crashed)).unwrap()))
                .filter(|(_, state)| state.0 != State::Dead)
                .map(|(n, state)| format!("node {n} holds {crashed} {state:?}"))
                .collect();
            if !still.is_empty() {
                late.push(format!("seed {seed}: {}", still.join(", ")));
            }
        });
        // Loss can delay a detection past the bound now and then; it must be rare.
        assert!(
            late.len() * 20 <= runs,
            "a node crashed at 100 ms should be dead for every live node 1.1 s later in all but a \
             few runs: an unanswered probe leads to suspicion, and a suspicion that stands for the \
             timeout to death. Late in {} of {runs} runs: {:?}",
            late.len(),
            late.iter().take(2).collect::<Vec<_>>()
        );
    }
}
