//! Topic 16 (observability): the workloads, fakes and lab drivers its exercises share.
//!
//! One service runs through the topic: it counts its requests (a counter that restarts with the
//! process), passes trace context to the services it calls, emits spans, and has an SLO. The
//! generators here produce its scrapes, its traces and its incidents, seeded, so labs and tests
//! see the same story every run.

pub mod counters;
pub mod slo;
pub mod traces;
pub mod tracing_lab;
