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
use common::clients::repo_dir;
use common::kafka::java;

const RECORDS_PER_CODEC: &str = "300";

fn run_java_client(broker: &Broker, topic: &str) {
    let source = repo_dir().join("tests/clients/JavaClient.java");
    let run = java(&[
        source.to_str().unwrap(),
        &broker.bootstrap(),
        topic,
        RECORDS_PER_CODEC,
    ]);
    run.assert_success();
    let out = run.stdout_text();
    eprintln!("{out}");
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        assert!(
            out.contains(&format!(
                "producer: {RECORDS_PER_CODEC} idempotent acks=all records, compression {codec}"
            )),
            "{codec}:\n{out}"
        );
    }
    assert!(out.contains("consumer: 1500 records"), "{out}");
    assert!(out.contains("group and topic deleted"), "{out}");
    assert!(
        out.contains("admin: cluster authorized operations 7"),
        "{out}"
    );
    assert!(
        out.contains("admin: group configs set, described (10 keys), refused out of bounds with InvalidConfigurationException, deleted"),
        "{out}"
    );
    // Fatal for the producer: it gives up at once with the broker's
    // reason (a retriable error would block for max.block.ms, 60 s).
    assert!(
        out.contains("transactions: initTransactions refused after")
            && out.contains("TransactionalIdAuthorizationException"),
        "{out}"
    );
}

// Proves the Java client's admin, idempotent producer (every codec) and
// group consumer work against one listener.
#[test]
fn java_client_single_listener() {
    let broker = Broker::start(BrokerOptions::single_shared(2));
    run_java_client(&broker, "java-single");
}

// Proves the same with per-shard listeners, where Metadata names a node
// per shard and the client talks to each partition's own shard.
#[test]
fn java_client_per_shard_listeners() {
    let broker = Broker::start(BrokerOptions::per_shard(2));
    run_java_client(&broker, "java-per-shard");
}
