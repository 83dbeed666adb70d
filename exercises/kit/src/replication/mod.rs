//! Topic 11 (replication): the clusters, fakes and lab drivers its exercises share.
pub mod hinted_handoff;
pub mod leader_follower;
pub mod merkle_anti_entropy;
pub mod quorum_store;
pub mod version_vectors;
