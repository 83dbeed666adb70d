//! (filled in by saga_with_outbox)
