//! Faults, and plans of faults drawn from a seed.

use std::time::Duration;

use rand::RngExt;
use rand::rngs::StdRng;

use super::NodeId;

/// Something that goes wrong (or right again) in a cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// No message crosses between the two sides (in either direction) until [`Fault::Heal`].
    Partition(Vec<NodeId>, Vec<NodeId>),
    /// Every partition is repaired.
    Heal,
    /// The node stops: its memory is lost, what it persisted in its [`super::Disk`] is kept, and
    /// messages sent to it are dropped until it restarts.
    Crash(NodeId),
    /// A crashed node starts again, built afresh from its disk.
    Restart(NodeId),
    /// The node freezes (a stop-the-world GC pause, a VM migration) for the given time: it keeps
    /// its memory, handles nothing meanwhile, then handles what arrived, late.
    Pause(NodeId, Duration),
    /// Each message between these two nodes is lost with this probability (both directions);
    /// 0.0 makes the link reliable again.
    LossyLink(NodeId, NodeId, f64),
}

/// Faults at chosen times of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    events: Vec<(Duration, Fault)>,
}

impl FaultPlan {
    pub fn new() -> Self {
        FaultPlan::default()
    }

    /// Adds `fault` at `at` (time since the run started).
    pub fn at(mut self, at: Duration, fault: Fault) -> Self {
        self.events.push((at, fault));
        self.events.sort_by_key(|(t, _)| *t);
        self
    }

    /// The plan's events, in time order.
    pub fn events(&self) -> &[(Duration, Fault)] {
        &self.events
    }

    /// A random plan over `duration`: partitions that isolate a random minority (or split the
    /// cluster in two, so that no side has a majority, when `nodes` is even), each healed after a
    /// while, and, if `crashes`, crashed nodes that restart later. The last fifth of the run is
    /// always healed, with every node up, so a liveness check at the end is fair.
    pub fn random(rng: &mut StdRng, nodes: usize, duration: Duration, crashes: bool) -> Self {
        let mut plan = FaultPlan::new();
        let quiet_from = duration.mul_f64(0.8);
        let mut t = Duration::from_millis(rng.random_range(0..=duration.as_millis() as u64 / 5));
        while t < quiet_from {
            let length = Duration::from_millis(rng.random_range(50..=400));
            let end = (t + length).min(quiet_from);
            if crashes && rng.random_bool(0.4) {
                let node = rng.random_range(0..nodes);
                plan = plan.at(t, Fault::Crash(node)).at(end, Fault::Restart(node));
            } else {
                let (a, b) = random_split(rng, nodes);
                plan = plan.at(t, Fault::Partition(a, b)).at(end, Fault::Heal);
            }
            t = end + Duration::from_millis(rng.random_range(20..=300));
        }
        plan
    }
}

/// Splits `0..nodes` into two non-empty sides of random membership.
pub(crate) fn random_split(rng: &mut StdRng, nodes: usize) -> (Vec<NodeId>, Vec<NodeId>) {
    assert!(nodes >= 2, "a partition needs two nodes");
    let minority = rng.random_range(1..=nodes / 2);
    let mut order: Vec<NodeId> = (0..nodes).collect();
    for i in (1..nodes).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let mut small = order[..minority].to_vec();
    let mut large = order[minority..].to_vec();
    small.sort_unstable();
    large.sort_unstable();
    (small, large)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::seeded_rng;

    #[test]
    fn random_plans_heal_before_the_end_and_restart_whatever_they_crash() {
        for seed in 0..200 {
            let plan = FaultPlan::random(&mut seeded_rng(seed), 5, Duration::from_secs(3), true);
            let mut down = Vec::new();
            let mut partitioned = false;
            for (t, fault) in plan.events() {
                match fault {
                    Fault::Crash(n) => down.push(*n),
                    Fault::Restart(n) => down.retain(|d| d != n),
                    Fault::Partition(a, b) => {
                        assert!(!a.is_empty() && !b.is_empty() && a.len() <= b.len());
                        partitioned = true;
                    }
                    Fault::Heal => partitioned = false,
                    other => panic!("random plans draw no {other:?}"),
                }
                assert!(*t <= Duration::from_millis(2400), "seed {seed}: {t:?}");
            }
            assert!(down.is_empty() && !partitioned, "seed {seed} ends faulty");
        }
    }
}
