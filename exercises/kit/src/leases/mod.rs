//! Topic 13 (leases and fencing): the clusters, fakes and lab drivers its exercises share.
//!
//! One story runs through the topic: a lock service hands out leases (with fencing tokens), clients
//! want exclusive use of a storage node, and every machine has a drifting clock and may stop for
//! a GC pause at the worst moment. The services (the lock server, a Redis-like server, a
//! versioned store like etcd's) are given here; the exercises write the parts that make them safe.

pub mod election;
pub mod fencing;
pub mod lease;
mod lock_server;
pub mod redis;

pub use lock_server::{Grant, LockServer, Msg};
