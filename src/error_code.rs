//! Kafka protocol error codes.
//!
//! The codes, their numbers and names live in shardlog-wire, shared with
//! the load generator and every other client here; this module keeps the
//! broker's path to them. Layers above convert their own error types into
//! an [`ErrorCode`] with an exhaustive `match` (in `handler::errors`), so a
//! new internal error cannot compile without someone deciding which Kafka
//! code a client sees for it.

pub use shardlog_wire::error::{CodeName, ErrorCode};
