//! `leader_follower`: the messages of log shipping, client sessions that read with a log-position
//! token (for the tests and the lab), follower faults, and the lab.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::cluster::{Client, Cluster, Config, Fault, FaultPlan, Node, NodeId};
use crate::hashing::mix64;
use crate::lab::{Table, percent, whole_millis};

/// The leader's address: it takes every write. (Choosing a new leader is topic 14's business.)
pub const LEADER: NodeId = 0;

pub type Key = u64;
pub type Value = u64;
/// A log position: how many entries a log holds, or the position of one entry counted from 1.
/// Position 0 is the empty log.
pub type Pos = u64;

/// What clients and replicas send each other. `req` is the client's request number, echoed in the
/// answer so the client can match it (and ignore a late answer to an earlier request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// Client → leader: write `value` under `key`.
    Write { req: u64, key: Key, value: Value },
    /// Leader → client: the write is entry `pos` of the log.
    Written { req: u64, pos: Pos },
    /// Client → any replica: read `key` from a state that includes at least the first
    /// `at_least` entries of the log (the client's token: the highest position it has seen).
    Read { req: u64, key: Key, at_least: Pos },
    /// Replica → client: `key`'s value after the replica's first `pos` entries.
    ReadOk {
        req: u64,
        value: Option<Value>,
        pos: Pos,
    },
    /// Leader → follower: `entries` are the log's entries from position `prev + 1` on.
    Append {
        prev: Pos,
        entries: Vec<(Key, Value)>,
    },
    /// Follower → leader: my log now holds `len` entries (the leader's, in order).
    Ack { len: Pos },
}

/// One operation of a client session, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionOp {
    /// A write, and the position the leader gave it (`None`: no answer came back).
    Write {
        client: NodeId,
        key: Key,
        value: Value,
        pos: Option<Pos>,
    },
    /// A read sent to `node` with the client's `token` (the highest position it had seen), and
    /// the answer (value, position) if one came back within the timeout, after `waited`.
    Read {
        client: NodeId,
        node: NodeId,
        key: Key,
        token: Pos,
        answer: Option<(Option<Value>, Pos)>,
        waited: Duration,
    },
}

/// What the clients of a run do.
#[derive(Clone, Debug)]
pub struct Sessions {
    pub clients: usize,
    /// Operations per client, about 40% writes.
    pub ops: usize,
    pub keys: u64,
    /// Whether reads carry the token (false: `at_least` 0, any state will do).
    pub use_token: bool,
    /// How long a client waits for an answer before giving up on that request.
    pub timeout: Duration,
    /// Whether a read without an answer is sent again every 100 ms (until the timeout).
    pub resend_reads: bool,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            clients: 3,
            ops: 8,
            keys: 3,
            use_token: true,
            timeout: Duration::from_millis(250),
            resend_reads: true,
        }
    }
}

/// Adds `sessions.clients` clients to `cluster` (of `nodes` nodes): each writes at the leader and
/// reads at random replicas (followers four times in five), and keeps as its token the highest
/// position it has been told. Returns what they did, filled in as the run goes.
pub fn sessions<N: Node<Msg = Msg>>(
    cluster: &mut Cluster<N>,
    nodes: usize,
    sessions: &Sessions,
    seed: u64,
) -> Rc<RefCell<Vec<SessionOp>>> {
    let record = Rc::new(RefCell::new(Vec::new()));
    for k in 0..sessions.clients {
        let (record, s) = (Rc::clone(&record), sessions.clone());
        let mut rng = StdRng::seed_from_u64(mix64(seed ^ (k as u64 + 1) << 40));
        cluster.client(move |c| async move {
            let mut token = 0;
            for i in 0..s.ops {
                let req = i as u64;
                let key = rng.random_range(0..s.keys);
                c.sleep(Duration::from_millis(rng.random_range(0..30)))
                    .await;
                if rng.random_bool(0.4) {
                    let value = (c.id() as u64) * 1_000_000 + req;
                    c.send(LEADER, Msg::Write { req, key, value });
                    // Writes are not retried (a retry would append the value twice).
                    let pos = match answer(&c, req, s.timeout.min(WRITE_TIMEOUT), None).await {
                        Some(Msg::Written { pos, .. }) => Some(pos),
                        _ => None,
                    };
                    token = token.max(pos.unwrap_or(0));
                    let client = c.id();
                    record.borrow_mut().push(SessionOp::Write {
                        client,
                        key,
                        value,
                        pos,
                    });
                } else {
                    let node = match nodes > 1 && rng.random_bool(0.8) {
                        true => rng.random_range(1..nodes),
                        false => LEADER,
                    };
                    let at_least = if s.use_token { token } else { 0 };
                    let start = c.now();
                    let read = Msg::Read { req, key, at_least };
                    c.send(node, read.clone());
                    let resend = s.resend_reads.then_some((node, read));
                    let answer = match answer(&c, req, s.timeout, resend).await {
                        Some(Msg::ReadOk { value, pos, .. }) => Some((value, pos)),
                        _ => None,
                    };
                    let waited = c.now() - start;
                    record.borrow_mut().push(SessionOp::Read {
                        client: c.id(),
                        node,
                        key,
                        token,
                        answer,
                        waited,
                    });
                    token = token.max(answer.map_or(0, |(_, pos)| pos));
                }
            }
        });
    }
    record
}

/// A write gives up after this long.
const WRITE_TIMEOUT: Duration = Duration::from_millis(200);
/// A read is sent again (the same request) after this long without an answer.
const READ_RETRY: Duration = Duration::from_millis(100);

/// The answer to request `req`, if it comes within `timeout` (answers to other requests are
/// skipped); `resend` is sent again every `READ_RETRY` meanwhile.
async fn answer(
    c: &Client<Msg>,
    req: u64,
    timeout: Duration,
    resend: Option<(NodeId, Msg)>,
) -> Option<Msg> {
    let deadline = c.now() + timeout;
    let mut retry_at = c.now() + READ_RETRY;
    loop {
        let now = c.now();
        if now >= deadline {
            return None;
        }
        if let Some((to, msg)) = resend.as_ref().filter(|_| now >= retry_at) {
            c.send(*to, msg.clone());
            retry_at = now + READ_RETRY;
        }
        let wait = deadline.min(if resend.is_some() { retry_at } else { deadline }) - now;
        match c.recv(wait).await {
            Some((_, msg @ (Msg::Written { req: r, .. } | Msg::ReadOk { req: r, .. })))
                if r == req =>
            {
                return Some(msg);
            }
            _ => {}
        }
    }
}

/// Faults that make followers lag, one at a time, over the first 70% of `duration`: a follower
/// cut off from the leader, crashed (it restarts with an empty log), or behind a lossy link.
pub fn follower_faults(rng: &mut StdRng, nodes: usize, duration: Duration) -> FaultPlan {
    let mut plan = FaultPlan::new();
    if nodes < 2 {
        return plan;
    }
    let ms = Duration::from_millis;
    let mut t = ms(rng.random_range(0..100));
    while t < duration.mul_f64(0.7) {
        let end = t + ms(rng.random_range(50..250));
        let f = rng.random_range(1..nodes);
        plan = match rng.random_range(0..3) {
            0 => plan
                .at(t, Fault::Partition(vec![f], vec![LEADER]))
                .at(end, Fault::Heal),
            1 => plan.at(t, Fault::Crash(f)).at(end, Fault::Restart(f)),
            _ => plan
                .at(t, Fault::LossyLink(LEADER, f, 0.5))
                .at(end, Fault::LossyLink(LEADER, f, 0.0)),
        };
        t = end + ms(rng.random_range(20..150));
    }
    plan
}

/// The lab's knobs.
#[derive(Clone, Debug)]
pub struct LabKnobs {
    pub followers: usize,
    pub max_latency_ms: u64,
    pub loss: f64,
    /// Follower 1 is cut off from the leader for this long, from 200 ms in.
    pub partition_ms: u64,
    pub clients: usize,
    pub ops: usize,
}

/// Runs the same sessions twice on `build`'s replicas, reads with and without the token, and
/// prints stale reads, read latency and how far followers lagged (`applied` reads a replica's
/// log length).
pub fn lab<N: Node<Msg = Msg>>(
    knobs: LabKnobs,
    build: impl Fn(NodeId, usize) -> N + Clone + 'static,
    applied: impl Fn(&N) -> Pos + Clone + 'static,
) {
    let nodes = knobs.followers + 1;
    println!(
        "{} followers, latency 5-{} ms, loss {:.0}%, follower 1 cut off for {} ms; {} clients x {} ops",
        knobs.followers,
        knobs.max_latency_ms,
        knobs.loss * 100.0,
        knobs.partition_ms,
        knobs.clients,
        knobs.ops
    );
    let mut table = Table::new(&[
        "reads",
        "answered",
        "stale (older than the session saw)",
        "mean wait",
        "p99 wait",
        "max follower lag",
    ]);
    for use_token in [false, true] {
        let config = Config {
            nodes,
            loss: knobs.loss,
            latency: (
                Duration::from_millis(5),
                Duration::from_millis(knobs.max_latency_ms.max(5)),
            ),
            limit: Duration::from_secs(60),
            ..Config::default()
        };
        let b = build.clone();
        let mut cluster = Cluster::new(config, 7, move |id| b(id, nodes));
        let lag = Rc::new(RefCell::new((vec![0; nodes], 0u64)));
        let (seen, len) = (Rc::clone(&lag), applied.clone());
        cluster.observe(move |id, node, _| {
            let (lens, max) = &mut *seen.borrow_mut();
            lens[id] = len(node);
            let behind = lens[LEADER].saturating_sub(*lens[1..].iter().min().unwrap_or(&0));
            *max = (*max).max(behind);
        });
        if knobs.partition_ms > 0 && nodes > 1 {
            let ms = Duration::from_millis;
            cluster.faults(
                FaultPlan::new()
                    .at(ms(200), Fault::Partition(vec![1], vec![LEADER]))
                    .at(ms(200 + knobs.partition_ms), Fault::Heal),
            );
        }
        let s = Sessions {
            clients: knobs.clients,
            ops: knobs.ops,
            keys: 5,
            use_token,
            // Long enough for a read parked at the cut-off follower to be answered after the heal.
            timeout: Duration::from_millis(knobs.partition_ms + 300),
            resend_reads: true,
        };
        let ops = sessions(&mut cluster, nodes, &s, 7);
        cluster.run();
        let mut waits = Vec::new();
        let (mut reads, mut stale) = (0, 0);
        for op in ops.borrow().iter() {
            if let SessionOp::Read {
                token,
                answer,
                waited,
                ..
            } = op
            {
                reads += 1;
                if let Some((_, pos)) = answer {
                    waits.push(*waited);
                    stale += u64::from(pos < token);
                }
            }
        }
        waits.sort();
        let mean = waits.iter().sum::<Duration>() / waits.len().max(1) as u32;
        let p99 = waits
            .get((waits.len() * 99 / 100).min(waits.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default();
        let label = if use_token {
            "with the token"
        } else {
            "without (at_least = 0)"
        };
        table.row(&[
            label.to_string(),
            format!("{}", waits.len()),
            format!("{stale} ({})", percent(stale, reads)),
            whole_millis(mean),
            whole_millis(p99),
            format!("{} entries", lag.borrow().1),
        ]);
    }
    table.print();
    println!(
        "Watch: without the token some reads go back in time; with it none do, and the reads that \
         hit the cut-off follower wait for it instead (p99)."
    );
}
