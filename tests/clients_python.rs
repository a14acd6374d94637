//! Python Kafka clients against the real broker: kafka-python 3,
//! confluent-kafka 2 (its bundled, recent librdkafka) and aiokafka from
//! PyPI, and Debian's python3-confluent-kafka (librdkafka 2.0.2, which
//! speaks older protocol versions, e.g. Metadata v4) and python3-kafka
//! (kafka-python 2.0.2). Each produces a mixed set of records (binary keys
//! and values, null keys, tombstones, empty keys and values, headers, one
//! 200 KiB value) to three partitions explicitly, reads every partition back
//! from offset 0 by explicit assignment, and the test compares everything
//! byte for byte, offsets included. Both listener modes: one listener with
//! one shard (and, for some clients, with two shards, so requests cross
//! shards), and a listener per shard with two shards on one core.
//!
//! The clients are installed by `tests/clients/install.sh` on first use.

mod common;

use common::broker::BrokerOptions;
use common::clients::{mixed_records, ClientRun};

const RECORDS: usize = 150;

fn round_trip(options: BrokerOptions, client: ClientRun, topic: &str) {
    client.round_trip_on_new_broker(options, topic, &mixed_records(3, RECORDS));
}

fn single() -> BrokerOptions {
    BrokerOptions::single()
}

fn per_shard() -> BrokerOptions {
    BrokerOptions::per_shard(2)
}

// kafka-python 3: idempotent producer by default.

#[test]
fn kafka_python_single_listener() {
    round_trip(single(), ClientRun::python("kafka-python"), "kafka-python");
}

#[test]
fn kafka_python_per_shard_listeners() {
    round_trip(
        per_shard(),
        ClientRun::python("kafka-python"),
        "kafka-python",
    );
}

#[test]
fn kafka_python_single_listener_two_shards() {
    let options = BrokerOptions::single_shared(2);
    round_trip(options, ClientRun::python("kafka-python"), "kafka-python");
}

#[test]
fn kafka_python_plain_gzip() {
    let client = ClientRun::python("kafka-python")
        .idempotence(false)
        .compression("gzip");
    round_trip(single(), client, "kafka-python-gzip");
}

// confluent-kafka 2 with its bundled librdkafka 2.1x.

#[test]
fn confluent_single_listener() {
    round_trip(single(), ClientRun::python("confluent"), "confluent");
}

#[test]
fn confluent_per_shard_listeners() {
    round_trip(per_shard(), ClientRun::python("confluent"), "confluent");
}

#[test]
fn confluent_single_listener_two_shards() {
    let options = BrokerOptions::single_shared(2);
    round_trip(options, ClientRun::python("confluent"), "confluent");
}

#[test]
fn confluent_idempotent_lz4_single_listener() {
    let client = ClientRun::python("confluent")
        .idempotence(true)
        .compression("lz4");
    round_trip(single(), client, "confluent-idem-lz4");
}

#[test]
fn confluent_idempotent_zstd_per_shard_listeners() {
    let client = ClientRun::python("confluent")
        .idempotence(true)
        .compression("zstd");
    round_trip(per_shard(), client, "confluent-idem-zstd");
}

#[test]
fn confluent_auto_created_topic() {
    let client = ClientRun::python("confluent").create("auto");
    round_trip(single(), client, "confluent-auto");
}

// aiokafka.

#[test]
fn aiokafka_single_listener() {
    round_trip(single(), ClientRun::python("aiokafka"), "aiokafka");
}

#[test]
fn aiokafka_per_shard_listeners() {
    round_trip(per_shard(), ClientRun::python("aiokafka"), "aiokafka");
}

// Debian's python3-confluent-kafka 1.7 on librdkafka 2.0.2.

#[test]
fn old_librdkafka_single_listener() {
    round_trip(
        single(),
        ClientRun::debian_python("confluent"),
        "old-librdkafka",
    );
}

#[test]
fn old_librdkafka_per_shard_listeners() {
    round_trip(
        per_shard(),
        ClientRun::debian_python("confluent"),
        "old-librdkafka",
    );
}

#[test]
fn old_librdkafka_idempotent_snappy() {
    let client = ClientRun::debian_python("confluent")
        .idempotence(true)
        .compression("snappy");
    round_trip(single(), client, "old-librdkafka-idem-snappy");
}

// Debian's python3-kafka: kafka-python 2.0.2 (old protocol versions, no
// idempotent producer).

#[test]
fn kafka_python2_single_listener() {
    round_trip(
        single(),
        ClientRun::debian_python("kafka-python"),
        "kafka-python2",
    );
}

#[test]
fn kafka_python2_per_shard_listeners() {
    round_trip(
        per_shard(),
        ClientRun::debian_python("kafka-python"),
        "kafka-python2",
    );
}
