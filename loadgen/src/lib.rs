//! loadgen: an open-loop load generator for Kafka-compatible brokers.
//!
//! It runs one glommio executor per chosen core and speaks the Kafka wire
//! itself: record batches are stamped into reused buffers from a template
//! (no per-record allocation or encoding), Produce requests are pipelined
//! up to `--max-in-flight` per connection, and latencies go into
//! HdrHistograms, from each record's intended send time (the
//! coordinated-omission-corrected figure) and from its actual send time.
//!
//! ```text
//! cli        command line: produce, consume, e2e, sweep, compare
//! runner     one run: executors per core, phases, progress, summary
//! sweep      highest rate that holds a p99 bound
//! compare    the same workload against two brokers, alternately
//! producer   per core: open-loop generator, per-broker writer and reader
//! consumer   per core: fetch loops, batch counting, end-to-end latency
//! cluster    Metadata, CreateTopics, ListOffsets (control plane)
//! report     progress line, text/JSON summary, .hgrm files, HTML page
//! stats      per-core counters and histograms, percentiles
//! schedule   the open-loop send schedule and CO-corrected latency
//! core       phases, clock and signals shared by a core's tasks
//! wire/      Kafka wire: batches, Produce, Fetch, frames, control calls
//! ```

pub mod cli;
pub mod cluster;
pub mod compare;
pub mod config;
pub mod consumer;
pub mod core;
pub mod error;
pub mod producer;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod stats;
pub mod sweep;
pub mod wire;

pub use config::{Config, Workload};
pub use error::Error;
pub use report::Summary;
pub use runner::run;
