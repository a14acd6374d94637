//! The official Java client, kafka-clients 4.x from the Apache Kafka
//! install (`tuning/kafka.sh`), against the broker: Admin (topics,
//! partitions, configs, offsets, deleteRecords, describeLogDirs, groups),
//! an idempotent acks=all producer with every compression codec, a
//! classic-protocol group consumer checking every key, value and header,
//! the cluster's authorized operations, group configs, and a transactional
//! producer refused at once (`tests/clients/JavaClient.java`, run in Java's
//! source-file mode).

mod common;

use common::broker::{Broker, BrokerOptions};
use common::kafka::run_java_client;

// Proves the Java client's admin, idempotent producer (every codec) and
// group consumer work against one listener.
#[test]
fn java_client_single_listener() {
    let broker = Broker::start(BrokerOptions::single_shared(2));
    run_java_client(&broker, "java-single", None);
}

// Proves the same with per-shard listeners, where Metadata names a node
// per shard and the client talks to each partition's own shard.
#[test]
fn java_client_per_shard_listeners() {
    let broker = Broker::start(BrokerOptions::per_shard(2));
    run_java_client(&broker, "java-per-shard", None);
}
