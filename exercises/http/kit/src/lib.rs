//! Scaffolding for the package group `http` (topic 17, API design): real axum services on
//! localhost, a small HTTP client over hyper, and the labs' drivers.
//!
//! The learner writes the rules (what a page is, when a write is allowed, what a payload means,
//! whether a webhook is genuine); these modules wire them into a real HTTP service and drive it.
//! Nothing here solves an exercise.

pub mod client;
pub mod conditional;
pub mod pagination;
pub mod schemas;
pub mod webhooks;
