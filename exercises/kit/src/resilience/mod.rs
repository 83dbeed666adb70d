//! Machinery shared by the resilience exercises: lab drivers and simulators the learner never edits.

/// The `grpc_timeout` format's constants, error type and encodings lab, and the
/// `deadline_propagation` scaffolding: the simulated chain of hops (a network of tokio tasks on a
/// paused clock, the time left travelling as a typed duration), its scripted chains and the lab.
pub mod deadlines;

/// The `timeouts` scaffolding: the `CallError` type and the lab (real HTTP backends on localhost:
/// healthy, slow with a long tail, hung), called without a timeout and through the learner's
/// `with_timeout`; then 3-step requests with a full timeout per step vs one budget.
pub mod timeouts;

/// The `hedged_requests` scaffolding: the policy and answer types, the hedge budget (a token
/// bucket), the race of attempts in flight, and the lab on real backends.
pub mod hedging;

/// The `bulkhead` scaffolding: its plain types, the counters behind its stats, a driver that runs
/// a scripted sequence of calls through it (for its tests), and the lab (a service with a fixed
/// pool of workers calling a fast and a slow backend over real sockets).
pub mod bulkheads;

/// The `circuit_breaker` scaffolding: its plain types, the scripted steps its tests play, and the
/// lab (two clients, one behind the learner's breaker, against backends that go down and come back).
pub mod breakers;

/// The `retry_backoff` scaffolding: its given types, a scripted dependency for its tests, and the
/// lab: retry strategies against a flaky backend with an outage, a synchronised burst of clients
/// during a restart without and with jitter, and a server shedding load with Retry-After.
pub mod retrying;

/// Fakes and helpers the resilience exercises' tests share: dependencies that misbehave on
/// command (gated, scripted replicas, answering late or never), and watches on work that must be
/// cancelled.
pub mod testing;
