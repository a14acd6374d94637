//! shardlog: a Kafka-wire-compatible, thread-per-core message broker.
//!
//! Modules follow the request path downwards; each imports only modules
//! below it:
//!
//! ```text
//! protocol/    request decoding: bounds checks before kafka-protocol decodes
//! partition/   a partition: its log plus idempotent-producer state
//! storage/     segments, indexes, the write path, cache, recovery, retention
//! record/      v2 record batches as raw bytes: validation and patching
//! error_code   Kafka error codes
//! ```

pub mod error_code;
pub mod partition;
pub mod protocol;
pub mod record;
pub mod storage;
