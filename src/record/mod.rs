//! Kafka record batches (message format v2) handled as raw bytes.
//!
//! The broker never decodes records on the hot path: it reads the fixed
//! 61-byte batch header, validates it, and patches the few fields it owns
//! (base offset, partition leader epoch, and for LogAppendTime topics the
//! timestamp type and max timestamp). The layout, the records codec and the
//! compression codecs come from shardlog-wire, which the load generator
//! shares; this module adds validation and patching. It calls nothing above
//! it.

pub mod batch;
pub mod clean;

/// The records inside a batch (builder, walker, decoder): shardlog-wire's,
/// for the rare paths that look inside a batch (lookups by timestamp, the
/// offsets log) and for tests and benches.
pub use shardlog_wire::records;

pub use batch::{
    patch_base_offset_and_epoch, recompress, set_log_append_time, split_batches,
    validate_producer_batch, validate_stored_batch, BatchError, BatchHeader, Compression,
    TimestampType,
};
