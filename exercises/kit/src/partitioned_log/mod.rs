//! Machinery shared by the partitioned-log exercises (a small Kafka): records, fakes and the
//! lab's TCP broker and consumer group on localhost.

/// Record frames with CRC-32, segment files that count the bytes reads go through, a keyed log of
/// segments, and the labs of `segmented_log` and `log_compaction`.
pub mod storage;

/// Producers, consumer groups, crash points and the lab's broker over real sockets, for
/// `partitioner`, `group_assignment` and `delivery_semantics`.
pub mod clients;
