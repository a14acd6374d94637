//! Kafka record batches (message format v2) handled as raw bytes.
//!
//! The broker never decodes records on the hot path: it reads the fixed
//! 61-byte batch header, validates it, and patches the few fields it owns
//! (base offset, partition leader epoch, and for LogAppendTime topics the
//! timestamp type and max timestamp). This module calls nothing above it.

pub mod batch;
pub mod compression;
pub mod records;

pub use batch::{
    patch_base_offset_and_epoch, set_log_append_time, split_batches, validate_producer_batch,
    validate_stored_batch, BatchError, BatchHeader, Compression, TimestampType,
};
