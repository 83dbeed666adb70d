//! Runs of the replication harness on the simulated cluster: leaders changed by the controller,
//! partitions, loss, duplication and reordering; a check called at every network step; the lab.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::replication::{Board, Index, Msg, Peer, Raft, Rules};
use crate::cluster::{Cluster, Config, FaultPlan, NetStats};
use crate::lab::{Table, percent};

/// The shape of one run.
#[derive(Clone, Debug)]
pub struct Knobs {
    pub nodes: usize,
    pub duration: Duration,
    pub loss: f64,
    pub duplicate: f64,
    /// Random partitions (a minority cut off, old leaders left running on it).
    pub partitions: bool,
    /// An election every this many milliseconds (drawn), in the first 60% of the run.
    pub elect_every_ms: (u64, u64),
    /// A client proposes a command this often, in the first 70% of the run: mostly to the newest
    /// leader, sometimes to an old one still running (whose entries must not survive).
    pub propose_every: Duration,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            nodes: 5,
            duration: Duration::from_millis(1000),
            loss: 0.05,
            duplicate: 0.05,
            partitions: true,
            elect_every_ms: (60, 200),
            propose_every: Duration::from_millis(10),
        }
    }
}

/// What a run did, for a lab.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub net: NetStats,
    pub elections: u64,
    pub proposed: u64,
    /// Entries committed at the end (the newest leader's commit index).
    pub committed: Index,
    /// For each committed entry: time from its proposal to the first node that reports it
    /// committed (at network-step resolution).
    pub commit_latencies: Vec<Duration>,
    /// Entries carried by AppendEntries, and AppendEntries refused by the consistency check.
    pub entries_sent: u64,
    pub refused: u64,
    /// Every node's state at the end.
    pub last: Vec<Raft<u64>>,
}

/// Runs the harness with the rules `R` and calls `check(now, nodes)` after every network step
/// (each node's whole state). Commands are the numbers 1, 2, 3, ... in proposal order.
pub fn run<R: Rules<u64>>(
    seed: u64,
    knobs: &Knobs,
    mut check: impl FnMut(Duration, &[Raft<u64>]),
) -> Outcome {
    let n = knobs.nodes;
    let mut rng = StdRng::seed_from_u64(seed);
    let config = Config {
        nodes: n,
        loss: knobs.loss,
        duplicate: knobs.duplicate,
        limit: knobs.duration,
        ..Config::default()
    };
    let step = config.step;
    let board = Board::new(n);
    let b = board.clone();
    let mut cluster = Cluster::new(config, seed, move |id| {
        Peer::<u64, R>::new(Raft::new(id, n), b.clone())
    });
    if knobs.partitions && n >= 2 {
        let span = knobs.duration.mul_f64(0.75);
        cluster.faults(FaultPlan::random(&mut rng, n, span, false));
    }
    let proposed: Rc<RefCell<Vec<Duration>>> = Rc::default();
    let record = Rc::clone(&proposed);
    let (every, stop, board_c) = (
        knobs.propose_every,
        knobs.duration.mul_f64(0.7),
        board.clone(),
    );
    let mut client_rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    cluster.client(move |client| async move {
        while client.now() < stop {
            client.sleep(every).await;
            let leaders = board_c.leaders();
            let to = match (board_c.newest_leader(), client_rng.random_bool(0.8)) {
                (Some(newest), true) => newest,
                _ if !leaders.is_empty() => leaders[client_rng.random_range(0..leaders.len())],
                _ => continue,
            };
            record.borrow_mut().push(client.now());
            let cmd = record.borrow().len() as u64;
            client.send(to, Msg::Propose(cmd));
        }
    });
    let elect_until = knobs.duration.mul_f64(0.6);
    let mut next_election = Duration::ZERO;
    let mut first_commit: BTreeMap<u64, Duration> = BTreeMap::new();
    let mut last: Vec<Raft<u64>> = Vec::new();
    let mut now = Duration::ZERO;
    while now < knobs.duration {
        if now >= next_election && now < elect_until {
            board.random_election(&mut rng);
            let (lo, hi) = knobs.elect_every_ms;
            next_election = now + Duration::from_millis(rng.random_range(lo..=hi));
        }
        now += step;
        cluster.run_until(now);
        last = (0..n)
            .map(|id| cluster.node(id, |p| p.raft.clone()).expect("no crashes"))
            .collect();
        for raft in &last {
            for e in raft.log.iter().take(raft.commit as usize) {
                first_commit.entry(e.cmd).or_insert(now);
            }
        }
        check(now, &last);
    }
    let proposed = proposed.borrow();
    let commit_latencies = first_commit
        .iter()
        .filter_map(|(&cmd, &t)| {
            let at = *proposed.get(cmd as usize - 1)?;
            Some(t.saturating_sub(at))
        })
        .collect();
    let (entries_sent, refused) = board.traffic();
    Outcome {
        net: cluster.stats(),
        elections: board.elections(),
        proposed: proposed.len() as u64,
        committed: last.iter().map(|r| r.commit).max().unwrap_or(0),
        commit_latencies,
        entries_sent,
        refused,
        last,
    }
}

/// The lab: one run per loss rate, on `knobs` otherwise; prints commit latency and traffic.
pub fn lab<R: Rules<u64>>(knobs: &Knobs, losses: &[f64], seed: u64) {
    let mut table = Table::new(&[
        "loss",
        "elections",
        "proposed",
        "committed",
        "commit p50",
        "commit p99",
        "entries sent",
        "refused",
        "messages",
    ]);
    for &loss in losses {
        let k = Knobs {
            loss,
            ..knobs.clone()
        };
        let out = run::<R>(seed, &k, |_, _| {});
        let mut lat = out.commit_latencies.clone();
        lat.sort();
        let pct = |q: f64| {
            lat.get(((lat.len() as f64 - 1.0) * q) as usize)
                .map_or("-".to_string(), |d| format!("{} ms", d.as_millis()))
        };
        table.row(&[
            format!("{:.0}%", loss * 100.0),
            out.elections.to_string(),
            out.proposed.to_string(),
            format!(
                "{} ({})",
                out.committed,
                percent(out.committed, out.proposed.max(1))
            ),
            pct(0.5),
            pct(0.99),
            format!(
                "{} ({:.1}/entry/follower)",
                out.entries_sent,
                out.entries_sent as f64
                    / (out.committed.max(1) * (k.nodes as u64 - 1).max(1)) as f64
            ),
            out.refused.to_string(),
            out.net.sent_by_nodes.to_string(),
        ]);
    }
    table.print();
}
