//! Scaffolding shared by the sdlings exercises.
//!
//! Everything here is *given*: the things a real system gets from its platform (a clock, a random
//! source, a way to print figures), so each exercise can focus on its one idea. Nothing in this
//! crate solves an exercise.
//!
//! The first modules serve every topic; the topic modules below them hold what one topic's labs
//! and tests share (simulators, lab drivers, fakes), so exercise files keep only the learner's part.

pub mod backend;
pub mod clock;
pub mod lab;
pub mod property;
pub mod workload;

pub mod backpressure;
pub mod balancing;
pub mod caching;
pub mod cluster;
pub mod gossip;
pub mod hashing;
pub mod ids_and_clocks;
pub mod latency;
pub mod leases;
pub mod observability;
pub mod partitioned_log;
pub mod raft;
pub mod rate_limiting;
pub mod replication;
pub mod resilience;
pub mod storage_engines;
pub mod transactions;
