//! A Redis-like single-node server (the commands a lock needs, with Redis's semantics), a client
//! connection for the cluster's clients, and the lock exercise's workload and lab.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::cluster::{Client, Cluster, Config, Ctx, Node, NodeId};
use crate::lab::{Table, bar_chart};

/// A command, as Redis has them.
#[derive(Clone, Debug, PartialEq)]
pub enum Cmd {
    /// `SET key value [NX] [PX ms]`: NX sets only if the key does not exist (a key whose time to
    /// live is over does not exist); PX gives the key a time to live. Reply: `Ok`, or `Nil` if NX
    /// found the key.
    Set {
        key: u64,
        value: u64,
        nx: bool,
        px: Option<Duration>,
    },
    /// `GET key`. Reply: `Value`.
    Get { key: u64 },
    /// `DEL key`. Reply: `Int(1)` if a key was deleted, else `Int(0)`.
    Del { key: u64 },
    /// Deletes the key only if it holds `value`, in one step: the Lua script of the Redis docs'
    /// lock pattern (`if redis.call("get",KEYS[1]) == ARGV[1] then return
    /// redis.call("del",KEYS[1])`), Valkey's `DELIFEQ`. Reply: `Int(1)` if deleted, else `Int(0)`.
    DelIfEq { key: u64, value: u64 },
}

/// A reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Ok,
    Nil,
    Value(Option<u64>),
    Int(u64),
}

#[derive(Clone, Debug, PartialEq)]
pub enum RedisMsg {
    Request { id: u64, cmd: Cmd },
    Response { id: u64, reply: Reply },
}

/// What the server saw happen to the keys.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// `client` set `key`; `over` is the client whose live entry it replaced, if any.
    Set {
        client: NodeId,
        key: u64,
        over: Option<NodeId>,
    },
    /// `client` asked to delete `key` (plain or compare-and-delete); `owner` set the live entry
    /// found there (if any); `deleted` says whether it went.
    Delete {
        client: NodeId,
        key: u64,
        owner: Option<NodeId>,
        deleted: bool,
    },
}

struct Entry {
    value: u64,
    expires: Option<Duration>,
    setter: NodeId,
}

/// The server: node 0 of the cluster. Keys expire on its clock.
#[derive(Default)]
pub struct RedisServer {
    data: BTreeMap<u64, Entry>,
    pub events: Vec<Event>,
}

impl RedisServer {
    fn live(&mut self, key: u64, now: Duration) -> Option<&Entry> {
        if self.data.get(&key)?.expires.is_some_and(|e| now >= e) {
            self.data.remove(&key);
        }
        self.data.get(&key)
    }
}

impl Node for RedisServer {
    type Msg = RedisMsg;

    fn on_message(&mut self, from: NodeId, msg: RedisMsg, ctx: &mut Ctx<'_, RedisMsg>) {
        let RedisMsg::Request { id, cmd } = msg else {
            return;
        };
        let now = ctx.now();
        let reply = match cmd {
            Cmd::Set { key, value, nx, px } => {
                let live = self.live(key, now).map(|e| e.setter);
                if nx && live.is_some() {
                    Reply::Nil
                } else {
                    let expires = px.map(|ttl| now + ttl);
                    let entry = Entry {
                        value,
                        expires,
                        setter: from,
                    };
                    self.data.insert(key, entry);
                    let over = live.filter(|&s| s != from);
                    self.events.push(Event::Set {
                        client: from,
                        key,
                        over,
                    });
                    Reply::Ok
                }
            }
            Cmd::Get { key } => Reply::Value(self.live(key, now).map(|e| e.value)),
            Cmd::Del { key } | Cmd::DelIfEq { key, .. } => {
                let found = self.live(key, now).map(|e| (e.setter, e.value));
                let matches = match cmd {
                    Cmd::DelIfEq { value, .. } => found.is_some_and(|(_, v)| v == value),
                    _ => found.is_some(),
                };
                if matches {
                    self.data.remove(&key);
                }
                self.events.push(Event::Delete {
                    client: from,
                    key,
                    owner: found.map(|(s, _)| s),
                    deleted: matches,
                });
                Reply::Int(u64::from(matches))
            }
        };
        ctx.send(from, RedisMsg::Response { id, reply });
    }
}

/// A client's connection to the server.
pub struct Redis {
    client: Client<RedisMsg>,
    next_id: Cell<u64>,
}

/// How long [`Redis::call`] waits for a reply.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(100);

impl Redis {
    pub fn new(client: Client<RedisMsg>) -> Self {
        Redis {
            client,
            next_id: Cell::new(0),
        }
    }

    /// Sends `cmd` to the server and waits for its reply: `None` if none came within
    /// [`CALL_TIMEOUT`] (the command may or may not have run).
    pub async fn call(&self, cmd: Cmd) -> Option<Reply> {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        self.client.send(0, RedisMsg::Request { id, cmd });
        let deadline = self.client.now() + CALL_TIMEOUT;
        loop {
            let left = deadline.checked_sub(self.client.now())?;
            match self.client.recv(left).await? {
                (_, RedisMsg::Response { id: got, reply }) if got == id => return Some(reply),
                _ => {} // a late reply to an earlier call
            }
        }
    }

    /// This client's address.
    pub fn id(&self) -> NodeId {
        self.client.id()
    }

    /// Time since the run started.
    pub fn now(&self) -> Duration {
        self.client.now()
    }

    pub async fn sleep(&self, time: Duration) {
        self.client.sleep(time).await;
    }
}

/// A lock held on `key`: the value the holder stored there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lock {
    pub key: u64,
    pub value: u64,
}

/// A client-side lock recipe over [`Redis`].
#[allow(async_fn_in_trait)] // the cluster's clients run on one thread
pub trait DistLock: 'static {
    /// Takes the lock on `key` for `ttl`, in one attempt: `None` if someone holds it (or no
    /// reply came).
    async fn acquire(&mut self, key: u64, ttl: Duration) -> Option<Lock>;
    /// Releases `lock` if it is still ours; whether it was.
    async fn release(&mut self, lock: &Lock) -> bool;
    /// The connection underneath (for the workload's sleeps and clock).
    fn redis(&self) -> &Redis;
}

/// A cluster of one Redis server (node 0), for scripted clients; latency 1–10 ms, no loss.
pub fn cluster(seed: u64) -> Cluster<RedisServer> {
    let config = Config {
        nodes: 1,
        latency: (Duration::from_millis(1), Duration::from_millis(10)),
        limit: Duration::from_secs(5),
        ..Config::default()
    };
    Cluster::new(config, seed, |_| RedisServer::default())
}

/// The server's events of a cluster after its run.
pub fn events(cluster: &Cluster<RedisServer>) -> Vec<Event> {
    cluster
        .node(0, |server| server.events.clone())
        .expect("the server never crashes")
}

/// The shape of a contention run.
#[derive(Clone, Debug)]
pub struct Setup {
    pub clients: usize,
    pub ttl: Duration,
    /// Each holder works (or stalls in a GC pause) for a random time up to this many TTLs
    /// before it releases.
    pub max_work: f64,
    pub duration: Duration,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            clients: 3,
            ttl: Duration::from_millis(100),
            max_work: 1.5,
            duration: Duration::from_millis(1000),
        }
    }
}

/// What a contention run recorded.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// Server-side events, in order.
    pub events: Vec<Event>,
    /// Locks acquired, and releases that said the lock was still ours.
    pub acquired: u64,
    pub released: u64,
}

impl Record {
    /// Events where a client removed or replaced a lock another client had set and that had not
    /// expired.
    pub fn violations(&self) -> Vec<&Event> {
        let foreign = |e: &&Event| match e {
            Event::Set { over, .. } => over.is_some(),
            Event::Delete {
                client,
                owner,
                deleted,
                ..
            } => *deleted && *owner != Some(*client),
        };
        self.events.iter().filter(foreign).collect()
    }

    /// Releases that found another client's live lock on the key: a plain `DEL` would have
    /// freed it.
    pub fn found_foreign(&self) -> usize {
        let found = |e: &&Event| matches!(e, Event::Delete { client, owner: Some(owner), .. } if owner != client);
        self.events.iter().filter(found).count()
    }
}

/// `setup.clients` clients contend for key 0 from `seed`: each takes the lock (retrying every
/// 10 ms), holds it for a random time up to `max_work` TTLs, releases it, rests and starts again.
pub fn contend<L: DistLock>(
    setup: &Setup,
    seed: u64,
    make: impl Fn(Redis, StdRng) -> L + 'static,
) -> Record {
    let config = Config {
        nodes: 1,
        limit: setup.duration + Duration::from_secs(1),
        ..Config::default()
    };
    let mut cluster = Cluster::new(config, seed, |_| RedisServer::default());
    let counts = Rc::new(RefCell::new((0, 0)));
    let make = Rc::new(make);
    for k in 0..setup.clients {
        let (make, counts, setup) = (Rc::clone(&make), Rc::clone(&counts), setup.clone());
        cluster.client(move |c| async move {
            let mut rng = StdRng::seed_from_u64(seed ^ (k as u64 + 1) << 48);
            let mut lock = make(Redis::new(c), StdRng::seed_from_u64(rng.random()));
            while lock.redis().now() < setup.duration {
                let Some(held) = lock.acquire(0, setup.ttl).await else {
                    lock.redis().sleep(Duration::from_millis(10)).await;
                    continue;
                };
                counts.borrow_mut().0 += 1;
                let work = setup.ttl.mul_f64(rng.random_range(0.0..setup.max_work));
                lock.redis().sleep(work).await;
                if lock.release(&held).await {
                    counts.borrow_mut().1 += 1;
                }
                let rest = Duration::from_millis(rng.random_range(0..30));
                lock.redis().sleep(rest).await;
            }
        });
    }
    cluster.run();
    let (acquired, released) = *counts.borrow();
    Record {
        events: events(&cluster),
        acquired,
        released,
    }
}

/// The lab: contention runs for each longest-work knob, with the learner's recipe.
pub fn lab<L: DistLock>(
    setup: &Setup,
    works: &[f64],
    seeds: u64,
    make: impl Fn(Redis, StdRng) -> L + Clone + 'static,
) {
    println!(
        "{} clients contend for one lock, TTL {} ms, {seeds} runs of {} ms\n",
        setup.clients,
        setup.ttl.as_millis(),
        setup.duration.as_millis()
    );
    let mut table = Table::new(&[
        "longest hold",
        "locks taken",
        "released ok",
        "expired first",
        "found another's lock",
        "wrongly freed",
    ]);
    let mut bars = Vec::new();
    for &max_work in works {
        let setup = Setup {
            max_work,
            ..setup.clone()
        };
        let records: Vec<Record> = (0..seeds)
            .map(|s| contend(&setup, s, make.clone()))
            .collect();
        let acquired: u64 = records.iter().map(|r| r.acquired).sum();
        let released: u64 = records.iter().map(|r| r.released).sum();
        let foreign: usize = records.iter().map(Record::found_foreign).sum();
        let wrong: usize = records.iter().map(|r| r.violations().len()).sum();
        let label = format!("{max_work:.1} × TTL");
        table.row(&[
            label.clone(),
            acquired.to_string(),
            released.to_string(),
            (acquired - released).to_string(),
            foreign.to_string(),
            wrong.to_string(),
        ]);
        bars.push((label, foreign as f64));
    }
    table.print();
    println!("\nreleases that found another client's lock (a plain DEL would have freed it):");
    println!("{}", bar_chart(&bars, 40));
}
