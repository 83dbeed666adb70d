//! Topic 14 (Raft): the messages, clusters and lab drivers its exercises share.

pub mod checks;
pub mod election;
pub mod kv;
pub mod replication;
pub mod runs;
