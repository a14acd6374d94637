//! Kafka's replication protocol as sans-IO state machines: what a
//! partition's leader knows of its followers (the ISR, the high watermark,
//! when acks=all may answer: [`leader`]), how a follower cuts its log
//! before it fetches from a new leader ([`follower`], on the leader-epoch
//! cache of [`epochs`]), and how the controller elects leaders and accepts
//! ISR changes ([`election`]).
//!
//! Nothing here does I/O or reads a clock: callers pass the time and the
//! log ends in, and carry out what comes back. That keeps the rules
//! testable on their own and lets a seeded simulation
//! (`tests/replication_sim.rs`) drive them through crashes, partitions and
//! reordered messages, checking after every step that no acknowledged
//! record is lost and replicas never diverge below the high watermark.

pub mod election;
pub mod epochs;
pub mod fetcher;
pub mod follower;
pub mod leader;

/// A broker's node id.
pub type NodeId = i32;

/// No leader (Kafka's -1).
pub const NO_LEADER: NodeId = -1;

/// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_OFFSET: i64 = -1;

/// Milliseconds on a monotonic clock (since first asked), the time the
/// replication rules are given.
pub fn now_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}
