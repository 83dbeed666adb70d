//! Topic 12 (gossip and membership): the clusters, fakes and lab drivers its exercises share.

pub mod broadcast;
pub mod crdt_counters;
pub mod phi_accrual_detector;
pub mod swim;
