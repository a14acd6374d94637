//! shardlog: a Kafka-wire-compatible, thread-per-core message broker.
//!
//! Modules follow the request path downwards; each imports only modules
//! below it:
//!
//! ```text
//! admin/       admin subcommands (`shardlog groups`): Kafka clients themselves
//! boot         command line, configuration, executors, listeners, signals
//! net/         listeners and connections: frames in, responses out in order
//! protocol/    request headers, advertised versions, response framing
//! handler/     one module per Kafka API
//! shard/       a shard's partitions and metadata; cross-shard jobs; controller
//! group/       the group coordinator: consumer groups, committed offsets
//! config       broker and topic configuration (Kafka key names)
//! partition/   a partition: its log plus idempotent-producer state
//! storage/     segments, indexes, the write path, cache, recovery, retention
//! record/      v2 record batches as raw bytes: validation and patching
//! error_code   Kafka error codes
//! ```
//!
//! Beneath all of them, the `shardlog-wire` crate holds the wire the broker
//! shares with the load generator: the batch layout and records codec,
//! compression, frame bounds, murmur2 and the error codes.

pub mod admin;
pub mod boot;
pub mod config;
pub mod error_code;
pub mod group;
pub mod handler;
pub mod net;
pub mod partition;
pub mod protocol;
pub mod record;
pub mod router;
pub mod shard;
pub mod storage;
