//! KafkaJS 2 against the real broker: the same mixed records as the Python
//! clients' tests, produced to three partitions explicitly, read back by
//! Fetch requests that KafkaJS itself encodes and decodes (KafkaJS's consumer
//! always joins a group, so the read-back uses its cluster and broker
//! classes), compared byte for byte. Both listener modes.
//!
//! KafkaJS is installed by `tests/clients/install.sh` on first use.

mod common;

use common::broker::BrokerOptions;
use common::clients::{mixed_records, ClientRun};

const RECORDS: usize = 150;

fn round_trip(options: BrokerOptions, client: ClientRun, topic: &str) {
    client.round_trip_on_new_broker(options, topic, &mixed_records(3, RECORDS));
}

#[test]
fn kafkajs_single_listener() {
    round_trip(BrokerOptions::single(), ClientRun::kafkajs(), "kafkajs");
}

#[test]
fn kafkajs_single_listener_two_shards() {
    let options = BrokerOptions::single_shared(2);
    round_trip(options, ClientRun::kafkajs(), "kafkajs");
}

#[test]
fn kafkajs_per_shard_listeners() {
    round_trip(BrokerOptions::per_shard(2), ClientRun::kafkajs(), "kafkajs");
}

#[test]
fn kafkajs_idempotent_gzip() {
    let client = ClientRun::kafkajs().idempotence(true).compression("gzip");
    round_trip(BrokerOptions::single(), client, "kafkajs-idem-gzip");
}

#[test]
fn kafkajs_auto_created_topic_per_shard_listeners() {
    let client = ClientRun::kafkajs().create("auto");
    round_trip(BrokerOptions::per_shard(2), client, "kafkajs-auto");
}
