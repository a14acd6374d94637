//! shardlog: a Kafka-wire-compatible, thread-per-core message broker.
//!
//! A request travels `net/ -> protocol/ -> router/ -> handler/ ->
//! partition/ -> storage/ -> record/`: a connection reads a frame, the
//! protocol layer parses its header and bounds its body, the router picks
//! the API's handler and, for APIs that name partitions, resolves them once
//! and sends each owning shard its share; the handler's per-partition work
//! goes through the partition, the one door into its log.
//!
//! Imports run one way: each module imports only modules listed below it.
//!
//! ```text
//! boot         command line, configuration, executors, listeners, signals
//! admin/       admin subcommands (`shardlog groups`): Kafka clients themselves
//! metrics/     the HTTP endpoint: /metrics (Prometheus), /health, the status page;
//!              gathers every shard's stats by message
//! net/         listeners and connections: frames in, responses out in order
//! router/      the API table and dispatch; the door: partitions resolved once
//!              to compact ids, one scatter/gather over owning shards
//! handler/     one module per Kafka API; errors.rs, the one table of Kafka codes
//! shard/       a shard: its routing table, partitions, metadata copy, jobs;
//!              the controller
//! cluster/     the metadata quorum (raft-rs on shardlog's log storage, TCP
//!              between controllers)
//! group/       the group coordinator: membership state machine, timers,
//!              committed offsets, the offsets log
//! config       broker and topic configuration (Kafka key names)
//! partition/   a partition: produce, read, offsets, delete records, retention
//! storage/     segments, indexes, the write path, cache, recovery, retention
//! protocol/    request frames and headers, the body guard, hand-written
//!              Produce and Fetch codecs; no I/O
//! record/      v2 record batches as raw bytes: validation and patching
//! stats        shard-local counters and histograms (no atomics, no I/O)
//! error_code   Kafka error codes (from the wire crate)
//! ```
//!
//! Beneath all of them, the `shardlog-wire` crate holds the wire the broker
//! shares with the load generator: the batch layout and records codec,
//! compression, frame bounds, murmur2 and the error codes.

pub mod admin;
pub mod boot;
pub mod cluster;
pub mod config;
pub mod error_code;
pub mod group;
pub mod handler;
pub mod metrics;
pub mod net;
pub mod partition;
pub mod protocol;
pub mod record;
pub mod replication;
pub mod router;
pub mod security;
pub mod shard;
pub mod stats;
pub mod storage;
