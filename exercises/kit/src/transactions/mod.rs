//! Topic 15, transactions across services: the fakes and simulators its exercises share.
//!
//! - [`gateway`]: a fake payment gateway that counts charges and can hold or fail a call, for
//!   `idempotency_keys`.
//! - [`two_phase`]: a deterministic step simulator for two-phase commit (messages reordered,
//!   crashes mid-broadcast, restarts from the durable log), for `two_phase_commit`.
//! - [`orders`]: an order service's database with an outbox, a broker, crash points, and the
//!   topic lab that compares dual write, outbox and saga, for `saga_with_outbox`.

pub mod gateway;
pub mod orders;
pub mod two_phase;
