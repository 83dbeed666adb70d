//! Machinery shared by the storage-engine exercises: a simulated file system that loses what was
//! not fsynced when a crash is injected (and the same interface on real files, for labs), and the
//! in-memory indexes' counted pages and runs.

/// The crash-injecting simulated file system and the `Storage` trait (for the whole topic; the
/// same trait on real files in a temporary directory), and the labs of `write_ahead_log` and
/// `bitcask`.
pub mod durable;

/// The in-memory index scaffolding of `bloom_filter`, `lsm_tree` and `b_plus_tree`: the hash,
/// counted keys, runs and pages, the B+ tree invariant checker, and their labs.
pub mod indexes;
