//! Config answers side by side with stock Apache Kafka (the version
//! `tuning/kafka.sh` installs, the one `src/config/kafka_keys.tsv` was
//! written from): the same IncrementalAlterConfigs calls on the cluster
//! default, one broker and a topic, then DescribeConfigs of each, made by
//! the Java AdminClient (`tests/clients/JavaConfigs.java`) against a stock
//! Kafka broker and against shardlog, compared answer by answer: which
//! calls succeed, the exception and message of each refusal, and every
//! described entry's value, source, read-only and sensitive flags, type
//! and synonyms. The few differences allowed are listed with their reason.

mod common;

use std::collections::BTreeMap;

use common::broker::{Broker, BrokerOptions};
use common::clients::repo_dir;
use common::kafka::{java, StockKafka};

fn answers(bootstrap: &str) -> BTreeMap<String, String> {
    let source = repo_dir().join("tests/clients/JavaConfigs.java");
    let run = java(&[source.to_str().unwrap(), bootstrap]);
    run.assert_success();
    run.stdout_text()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The part of a described entry before its synonyms.
fn without_synonyms(answer: &str) -> &str {
    answer.split(" [").next().unwrap_or(answer)
}

// Proves shardlog answers AlterConfigs and DescribeConfigs as stock Kafka
// does for Kafka's own keys, values, levels and refusals.
#[test]
fn config_answers_match_stock_kafka() {
    let kafka = StockKafka::start();
    let theirs = answers(&kafka.bootstrap());
    drop(kafka);
    let broker = Broker::start(BrokerOptions::single());
    let ours = answers(&broker.bootstrap());

    // Reasons shardlog differs, by answer.
    // shardlog's own keys (shardlog.listener.mode, ...).
    let only_ours = |key: &str| key.starts_with("broker-key|shardlog.");
    // Kafka's storage format writes a cluster-wide min.insync.replicas=1.
    let only_theirs = ["cluster|min.insync.replicas"];
    let mut differing: BTreeMap<&str, &str> = BTreeMap::new();
    differing.insert("topic|min.insync.replicas", "format-time cluster default");
    differing.insert("topic|flush.ms", "shardlog's default is 1000 (DESIGN)");
    differing.insert("broker|log.dirs", "each broker's own directory");
    // Where Kafka's broker key has no default (log.retention.ms), Kafka
    // names another unit's key (log.retention.hours) or none as the
    // default synonym; shardlog names the key itself with its value.
    let synonyms_differ = [
        "topic|retention.ms",
        "topic|segment.ms",
        "topic|segment.jitter.ms",
        "broker|log.retention.ms",
    ];

    let mut mismatches = Vec::new();
    for (key, mine) in &ours {
        match theirs.get(key) {
            None if only_ours(key) => {}
            None => mismatches.push(format!("{key}: only shardlog answers {mine}")),
            Some(_) if differing.contains_key(key.as_str()) => {}
            Some(t) if synonyms_differ.contains(&key.as_str()) => {
                if without_synonyms(t) != without_synonyms(mine) {
                    mismatches.push(format!("{key}:\n  kafka    {t}\n  shardlog {mine}"));
                }
            }
            Some(t) if t != mine => {
                mismatches.push(format!("{key}:\n  kafka    {t}\n  shardlog {mine}"))
            }
            Some(_) => {}
        }
    }
    for (key, t) in &theirs {
        if !ours.contains_key(key) && !only_theirs.contains(&key.as_str()) {
            mismatches.push(format!("{key}: only Kafka answers {t}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} answers differ from stock Kafka's:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // The comparison covered every kind of answer.
    for prefix in ["alter|", "topic|", "broker-key|", "broker|", "cluster|"] {
        let n = ours.keys().filter(|k| k.starts_with(prefix)).count();
        assert!(n > 0, "no {prefix} answers");
    }
    assert!(
        ours.keys().filter(|k| k.starts_with("broker-key|")).count() > 300,
        "every Kafka broker key is described"
    );
    assert_eq!(ours["alter|topic|segment.index.bytes=2048"], "OK");
    assert!(ours["broker|log.dirs"].contains("STATIC_BROKER_CONFIG"));
    assert!(ours["topic|flush.ms"].starts_with("1000 DEFAULT_CONFIG"));
}
