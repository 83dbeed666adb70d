//! Machinery shared by the resilience exercises: lab drivers and simulators the learner never edits.

/// The `deadline_propagation` scaffolding: the `grpc-timeout` format's constants, the simulated
/// chain of hops (a network of tokio tasks on a paused clock) and the lab.
pub mod deadlines;

/// The `timeouts` lab: real HTTP backends on localhost (healthy, slow with a long tail, hung),
/// called without a timeout and through the learner's `with_timeout`; then 3-step requests with a
/// full timeout per step vs one budget for the whole request.
pub mod timeouts;

/// The `hedged_requests` scaffolding: the policy and answer types, the hedge budget (a token
/// bucket), the race of attempts in flight, and the lab on real backends.
pub mod hedging;

/// The `bulkhead` scaffolding: its plain types and the lab (a service with a fixed pool of
/// workers calling a fast and a slow backend over real sockets).
pub mod bulkheads;

/// The `circuit_breaker` scaffolding: its plain types and the lab (two clients, one behind the
/// learner's breaker, against backends that go down and come back).
pub mod breakers;

/// The `retry_backoff` lab: retry strategies against a flaky backend with an outage, then a
/// synchronised burst of clients during a restart, without and with jitter.
pub mod retrying;

/// Fakes and helpers the resilience exercises' tests share: dependencies that misbehave on
/// command, and watches on work that must be cancelled.
pub mod testing;
