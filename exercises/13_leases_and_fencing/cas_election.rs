// CAS election — elect a leader through compare-and-set on a versioned key.
//
// Kubernetes controllers, Patroni and many services built on etcd, Consul or ZooKeeper elect
// their leader the same way: a key says who leads in which term, it lives on a lease (it expires
// unless the leader renews it), and every change bumps its version. To take over, a node reads
// (leader, version) and writes itself as leader of the next term ONLY IF the version is still the
// one it read: of all the nodes that read the same version, one write wins. A read followed by an
// unconditional write lets two nodes both "win" the same term.
//
// Build `Candidate`, a state machine on the cluster (node 0 is the store). The property: over
// many runs with random delays, message loss, a crashed node and a paused node, no two nodes
// ever believe they lead the same term; a live leader is left alone; when the leader's lease
// expires (it crashed), another node is elected in a higher term.
//
// Lab: elections over many runs. Turn TTL_MS down: elections come faster after a crash, and more
// often for nothing (a lost renewal costs the lease).

use std::time::Duration;

use sdlings_kit::cluster::{Ctx, Node, NodeId};
use sdlings_kit::leases::election::{self, Elector, Leader, Msg, STORE, Setup};

// ---- Your part -------------------------------------------------------------------------------

#[allow(dead_code)] // (only silences "never read" until you use the fields: delete it)
pub struct Candidate {
    ttl: Duration,
    /// The leader record this node last asked the store to write, until the answer comes.
    proposed: Option<Leader>,
    /// While this node leads: (term, the key's version after our last write).
    leading: Option<(u64, u64)>,
    /// When (this node's clock) the leader last renewed.
    renewed_at: Duration,
}

impl Candidate {
    pub fn new(ttl: Duration) -> Self {
        Candidate {
            ttl,
            proposed: None,
            leading: None,
            renewed_at: Duration::ZERO,
        }
    }
}

impl Elector for Candidate {
    fn leading(&self) -> Option<u64> {
        self.leading.map(|(term, _)| term)
    }
}

impl Node for Candidate {
    type Msg = Msg;

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Msg>) {
        todo!(
            "a follower reads the key; a leader renews its lease (node {})",
            ctx.me()
        )
    }

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        todo!(
            "{msg:?} from {from} at {:?}: propose, win, lose or step down",
            ctx.now()
        )
    }
}

// ---- Lab -------------------------------------------------------------------------------------

const CANDIDATES: usize = 3;
const TTL_MS: u64 = 150;
const LOSS: f64 = 0.05;
const RUNS: u64 = 50;

fn main() {
    let setup = Setup {
        candidates: CANDIDATES,
        ttl: Duration::from_millis(TTL_MS),
        loss: LOSS,
        ..Setup::default()
    };
    election::lab(&setup, RUNS, Candidate::new);
}

#[cfg(test)]
mod tests {
    use sdlings_kit::cluster::Probe;

    use super::*;

    const SEEDS: u64 = 100;
    const TTL: Duration = Duration::from_millis(150);

    fn cas(expected: u64, term: u64, node: NodeId) -> Vec<(NodeId, Msg)> {
        let leader = Leader { term, node };
        vec![(
            STORE,
            Msg::Cas {
                expected,
                leader,
                ttl: TTL,
            },
        )]
    }

    fn got(leader: Option<(u64, NodeId)>, expired: bool, version: u64) -> Msg {
        let leader = leader.map(|(term, node)| Leader { term, node });
        Msg::Got {
            leader,
            expired,
            version,
        }
    }

    /// Node 2, elected in term 1 at version 1 at time 0.
    fn elected() -> (Probe, Candidate) {
        let (mut probe, mut c) = (Probe::new(2, 4), Candidate::new(TTL));
        probe.deliver(&mut c, STORE, got(None, false, 0));
        probe.deliver(
            &mut c,
            STORE,
            Msg::Written {
                ok: true,
                version: 1,
            },
        );
        assert_eq!(c.leading(), Some(1), "node 2 won term 1");
        (probe, c)
    }

    #[test]
    fn with_no_leader_a_candidate_reads_then_proposes_term_one_by_cas_on_the_version_read() {
        let (mut probe, mut c) = (Probe::new(2, 4), Candidate::new(TTL));
        assert_eq!(
            probe.tick(&mut c),
            vec![(STORE, Msg::Get)],
            "a follower reads the key"
        );
        assert_eq!(
            probe.deliver(&mut c, STORE, got(None, false, 0)),
            cas(0, 1, 2),
            "no leader yet: propose (term 1, node 2), only if the version is still 0"
        );
        assert_eq!(c.leading(), None, "sending a proposal is not winning");
        probe.deliver(
            &mut c,
            STORE,
            Msg::Written {
                ok: true,
                version: 1,
            },
        );
        assert_eq!(
            c.leading(),
            Some(1),
            "the store took our CAS: we lead term 1"
        );
    }

    #[test]
    fn an_expired_leader_is_replaced_in_the_next_term() {
        let (mut probe, mut c) = (Probe::new(3, 4), Candidate::new(TTL));
        assert_eq!(
            probe.deliver(&mut c, STORE, got(Some((6, 1)), true, 9)),
            cas(9, 7, 3),
            "node 1 led term 6 and its lease expired: propose term 7 on version 9"
        );
    }

    #[test]
    fn a_live_leader_is_followed_not_challenged() {
        let (mut probe, mut c) = (Probe::new(3, 4), Candidate::new(TTL));
        assert_eq!(
            probe.deliver(&mut c, STORE, got(Some((6, 1)), false, 9)),
            vec![],
            "node 1 leads term 6 and its lease is live: leave it alone"
        );
    }

    #[test]
    fn a_candidate_that_loses_the_cas_does_not_lead_and_reads_again() {
        let (mut probe, mut c) = (Probe::new(2, 4), Candidate::new(TTL));
        probe.deliver(&mut c, STORE, got(None, false, 0));
        assert_eq!(
            probe.deliver(
                &mut c,
                STORE,
                Msg::Written {
                    ok: false,
                    version: 1
                }
            ),
            vec![],
            "someone else's write came first: do not retry blindly on the new version"
        );
        assert_eq!(c.leading(), None);
        assert_eq!(probe.tick(&mut c), vec![(STORE, Msg::Get)], "read who won");
    }

    #[test]
    fn the_leader_renews_its_lease_by_cas_on_the_version_it_wrote() {
        let (mut probe, mut c) = elected();
        probe.at(TTL / 2);
        assert_eq!(
            probe.tick(&mut c),
            cas(1, 1, 2),
            "renew (term 1, node 2) on version 1, the version our write made"
        );
        probe.deliver(
            &mut c,
            STORE,
            Msg::Written {
                ok: true,
                version: 2,
            },
        );
        assert_eq!(c.leading(), Some(1), "renewed: still term 1");
        probe.at(TTL);
        assert_eq!(
            probe.tick(&mut c),
            cas(2, 1, 2),
            "the next renewal is on version 2"
        );
    }

    #[test]
    fn a_leader_whose_renewal_fails_steps_down() {
        let (mut probe, mut c) = elected();
        probe.at(TTL / 2);
        probe.tick(&mut c);
        probe.deliver(
            &mut c,
            STORE,
            Msg::Written {
                ok: false,
                version: 3,
            },
        );
        assert_eq!(
            c.leading(),
            None,
            "the key changed since our write (our lease expired, another leads): step down"
        );
    }

    #[test]
    fn a_leader_whose_renewal_gets_no_answer_does_not_wait_for_it_forever() {
        let (mut probe, mut c) = elected();
        probe.at(TTL / 2);
        let renewal = cas(1, 1, 2);
        assert_eq!(probe.tick(&mut c), renewal, "the first renewal");
        // It is lost: no answer ever comes. Tick on, every 20 ms, until two TTLs have passed.
        let mut again = false;
        for t in (95..=300).step_by(20) {
            probe.at(Duration::from_millis(t));
            again |= probe.tick(&mut c) == renewal;
        }
        assert!(
            again || c.leading().is_none(),
            "the renewal sent at 75 ms was lost: by 300 ms the leader must renew again (on version \
             1: the answer tells it whether it still leads) or step down, not wait forever"
        );
    }

    #[test]
    fn a_candidate_whose_proposal_gets_no_answer_asks_the_store_again() {
        let (mut probe, mut c) = (Probe::new(2, 4), Candidate::new(TTL));
        probe.tick(&mut c);
        assert_eq!(
            probe.deliver(&mut c, STORE, got(None, false, 0)),
            cas(0, 1, 2)
        );
        // The CAS, or its answer, is lost. Tick on, every 20 ms, for a TTL.
        let mut sent = Vec::new();
        for t in (20..=150).step_by(20) {
            probe.at(Duration::from_millis(t));
            sent.extend(probe.tick(&mut c));
        }
        assert!(
            sent.iter().any(|(to, _)| *to == STORE),
            "the proposal or its answer was lost: the candidate must ask the store again (read \
             who leads now), or it never takes part in an election again"
        );
        assert_eq!(c.leading(), None, "no answer is not a win");
    }

    #[test]
    fn no_two_nodes_ever_lead_the_same_term_over_delays_loss_crashes_and_pauses() {
        sdlings_kit::property::for_seeds(SEEDS, |rng| {
            let seed = rand::RngExt::random(rng);
            let views = election::run(&Setup::default(), seed, Candidate::new);
            if let Some((term, nodes)) = views.shared_terms().first() {
                panic!(
                    "nodes {nodes:?} all believed they led term {term}: only one write per \
                     version may win. Reigns (time, node, term): {:?}",
                    views.reigns
                );
            }
            assert!(!views.reigns.is_empty(), "some node is elected");
        });
    }

    #[test]
    fn a_healthy_leader_keeps_its_term_for_the_whole_run() {
        let setup = Setup {
            faults: false,
            loss: 0.0,
            ..Setup::default()
        };
        for seed in 0..10 {
            let views = election::run(&setup, seed, Candidate::new);
            assert_eq!(
                views.reigns.len(),
                1,
                "seed {seed}: no faults, so one election and one leader renewing its lease: {:?}",
                views.reigns
            );
        }
    }

    #[test]
    fn when_the_leader_crashes_another_is_elected_in_a_higher_term() {
        let setup = Setup {
            faults: false,
            loss: 0.0,
            ..Setup::default()
        };
        for seed in 0..10 {
            let (crashed, views) = election::crash_the_leader(
                &setup,
                seed,
                Duration::from_millis(300),
                Candidate::new,
            );
            let (node, term) = crashed.expect("a leader by 300 ms");
            assert!(
                views.reigns.iter().any(|&(_, n, t)| n != node && t > term),
                "seed {seed}: node {node} led term {term} and crashed; its lease expires and \
                 another node must take term {} or later: {:?}",
                term + 1,
                views.reigns
            );
        }
    }
}
