//! The lock service: one node that grants leases on keys, each with a fencing token.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cluster::{Ctx, Node, NodeId};

/// The lock server's answer to an acquire or renew: the lease is yours for `ttl`, counted on the
/// server's clock from when the server handled the request.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    /// The request this answers.
    pub req: u64,
    pub key: u64,
    /// How long the lease lasts, from when the server handled the request.
    pub ttl: Duration,
    /// When the lease ends, as the SERVER's clock reads (another machine's clock).
    pub expires_at: Duration,
    /// The fencing token: grows with every new holder of the key (a renewal keeps it).
    pub token: u64,
}

/// What the lock server, its clients and the storage node say to each other.
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    /// Acquire `key`, or renew it if the sender holds it.
    Acquire {
        req: u64,
        key: u64,
    },
    Granted(Grant),
    /// Someone else holds the key.
    Refused {
        req: u64,
        key: u64,
    },
    /// A write to the storage node, under a lease's fencing token.
    Write {
        resource: u64,
        token: u64,
        value: u64,
    },
    /// The storage node's answer.
    WriteReply {
        resource: u64,
        token: u64,
        accepted: bool,
    },
}

/// A lock server (Chubby, ZooKeeper or etcd in one node): a key is granted to one client at a
/// time, for `ttl` of the server's clock, renewable by its holder; once it has expired, the next
/// request takes it, with a fencing token one higher.
pub struct LockServer {
    ttl: Duration,
    /// key → (holder, expiry on this server's clock, token).
    held: BTreeMap<u64, (NodeId, Duration, u64)>,
    tokens: BTreeMap<u64, u64>,
    /// Every grant made, in order: (holder, key, token). Renewals included.
    pub grants: Vec<(NodeId, u64, u64)>,
}

impl LockServer {
    pub fn new(ttl: Duration) -> Self {
        LockServer {
            ttl,
            held: BTreeMap::new(),
            tokens: BTreeMap::new(),
            grants: Vec::new(),
        }
    }
}

impl Node for LockServer {
    type Msg = Msg;

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        let Msg::Acquire { req, key } = msg else {
            return;
        };
        let now = ctx.now();
        let token = match self.held.get(&key) {
            Some(&(holder, expiry, token)) if now < expiry => {
                if holder != from {
                    ctx.send(from, Msg::Refused { req, key });
                    return;
                }
                token
            }
            _ => {
                let next = self.tokens.entry(key).or_insert(0);
                *next += 1;
                *next
            }
        };
        let expires_at = now + self.ttl;
        self.held.insert(key, (from, expires_at, token));
        self.grants.push((from, key, token));
        let ttl = self.ttl;
        ctx.send(
            from,
            Msg::Granted(Grant {
                req,
                key,
                ttl,
                expires_at,
                token,
            }),
        );
    }
}
