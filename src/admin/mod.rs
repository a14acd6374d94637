//! Admin subcommands of the `shardlog` binary. They speak the Kafka
//! protocol to a running broker (any Kafka-compatible broker), like any
//! other client; nothing here touches the broker's own state.

pub mod client;
pub mod groups;
