//! kcat (Debian's, on librdkafka 2.0.2) against the real broker: metadata
//! listings (`-L`, `-L -J`), producing keyed records with headers and null
//! keys and values (`-P -K -H -Z`) to each partition of an auto-created
//! topic, and consuming them back (`-C -o beginning -e -J`, and from an
//! offset inside a batch), compared field by field. Both listener modes; in
//! per-shard mode the metadata must list one broker node per shard, on its
//! own port, and every record must be served by its partition's leader.
//!
//! kcat is installed by `tests/clients/install.sh` on first use.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::broker::{Broker, BrokerOptions, ListenerMode};
use common::clients::{ensure_installed, run_with_input, Run};
use serde_json::Value;

const KCAT_TIMEOUT: Duration = Duration::from_secs(60);
const PARTITIONS: i32 = 3;

fn kcat(broker: &Broker, args: &[&str], stdin: Option<&[u8]>) -> Run {
    ensure_installed();
    let mut cmd = Command::new("kcat");
    cmd.args(["-b", &broker.bootstrap()])
        .args(["-X", "broker.address.family=v4"])
        .args(args);
    let run = run_with_input(cmd, stdin.map(<[u8]>::to_vec), KCAT_TIMEOUT);
    run.assert_success();
    run
}

/// One record as kcat handles it: text, null as `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TextRec {
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, String)>,
}

/// One kcat -P invocation: records for one partition, one header set.
struct Produce {
    partition: i32,
    headers: Vec<(String, String)>,
    records: Vec<TextRec>,
}

/// Per partition: a batch without headers, then one with two headers. Empty
/// keys and values become null (-Z).
fn produce_plan() -> Vec<Produce> {
    let mut plan = Vec::new();
    for round in 0..2 {
        for partition in 0..PARTITIONS {
            let headers: Vec<(String, String)> = if round == 0 {
                Vec::new()
            } else {
                vec![
                    ("trace".to_string(), format!("p{partition}-r{round}")),
                    ("kind".to_string(), "kcat=1".to_string()),
                ]
            };
            let records = (0..12)
                .map(|j| TextRec {
                    key: (j % 4 != 1).then(|| format!("k-{partition}-{round}-{j}")),
                    value: (j % 5 != 3)
                        .then(|| format!("value {partition}/{round}/{j} {}", "x".repeat(j * 11))),
                    headers: headers.clone(),
                })
                .collect();
            plan.push(Produce {
                partition,
                headers,
                records,
            });
        }
    }
    plan
}

fn produce(broker: &Broker, topic: &str, p: &Produce) {
    let mut input = String::new();
    for r in &p.records {
        input.push_str(r.key.as_deref().unwrap_or(""));
        input.push('\t');
        input.push_str(r.value.as_deref().unwrap_or(""));
        input.push('\n');
    }
    let partition = p.partition.to_string();
    let mut args = vec!["-P", "-t", topic, "-p", &partition, "-K", "\t", "-Z"];
    let header_args: Vec<String> = p.headers.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for h in &header_args {
        args.extend(["-H", h]);
    }
    let run = kcat(broker, &args, Some(input.as_bytes()));
    assert!(
        !run.stderr_text().to_lowercase().contains("fail"),
        "kcat reported a failure:\n{}",
        run.output_text()
    );
}

/// A record as kcat -J printed it.
#[derive(Debug)]
struct Consumed {
    partition: i32,
    offset: i64,
    broker: i64,
    rec: TextRec,
}

fn parse_consumed(run: &Run) -> Vec<Consumed> {
    run.stdout_text()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("kcat -J printed non-JSON ({e}): {line}"));
            let text = |name: &str| match &v[name] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => panic!("bad {name} {other} in {line}"),
            };
            let headers = match &v["headers"] {
                Value::Null => Vec::new(),
                Value::Array(flat) => flat
                    .chunks(2)
                    .map(|kv| {
                        (
                            kv[0].as_str().expect("header key").to_string(),
                            kv.get(1)
                                .and_then(Value::as_str)
                                .expect("header value")
                                .to_string(),
                        )
                    })
                    .collect(),
                other => panic!("bad headers {other} in {line}"),
            };
            Consumed {
                partition: v["partition"].as_i64().expect("partition") as i32,
                offset: v["offset"].as_i64().expect("offset"),
                broker: v["broker"].as_i64().unwrap_or(-1),
                rec: TextRec {
                    key: text("key"),
                    value: text("payload"),
                    headers,
                },
            }
        })
        .collect()
}

/// Topic metadata from `kcat -L -J`: broker id -> name, partition -> leader.
struct Metadata {
    brokers: BTreeMap<i64, String>,
    leaders: BTreeMap<i32, i64>,
}

fn metadata(broker: &Broker, topic: &str) -> Metadata {
    let run = kcat(broker, &["-L", "-J", "-t", topic], None);
    let v: Value = serde_json::from_str(run.stdout_text().trim())
        .unwrap_or_else(|e| panic!("kcat -L -J printed non-JSON ({e}):\n{}", run.output_text()));
    let brokers = v["brokers"]
        .as_array()
        .unwrap_or_else(|| panic!("no brokers in {v}"))
        .iter()
        .map(|b| {
            (
                b["id"].as_i64().expect("broker id"),
                b["name"].as_str().expect("broker name").to_string(),
            )
        })
        .collect();
    let topics = v["topics"].as_array().expect("topics");
    assert_eq!(topics.len(), 1, "one topic asked for: {v}");
    let t = &topics[0];
    assert_eq!(t["topic"], topic, "{v}");
    assert!(t.get("error").is_none(), "topic error: {v}");
    let leaders = t["partitions"]
        .as_array()
        .unwrap_or_else(|| panic!("no partitions in {v}"))
        .iter()
        .map(|p| {
            assert!(p.get("error").is_none(), "partition error: {v}");
            (
                p["partition"].as_i64().expect("partition") as i32,
                p["leader"].as_i64().expect("leader"),
            )
        })
        .collect();
    Metadata { brokers, leaders }
}

fn check_metadata(broker: &Broker, md: &Metadata) {
    match broker.options().listener_mode {
        ListenerMode::Single => {
            let names: Vec<&String> = md.brokers.values().collect();
            assert_eq!(
                names,
                vec![&broker.bootstrap()],
                "single listener: one broker, advertised at the listen address"
            );
        }
        ListenerMode::PerShard => {
            let expected: BTreeMap<i64, String> = (0..broker.options().shards())
                .map(|i| (i as i64, broker.shard_address(i)))
                .collect();
            assert_eq!(
                md.brokers, expected,
                "per-shard listeners: node i is shard i on listen port + 1 + i"
            );
        }
    }
    assert_eq!(
        md.leaders.keys().copied().collect::<Vec<_>>(),
        (0..PARTITIONS).collect::<Vec<_>>(),
        "partitions of the auto-created topic"
    );
    for (p, leader) in &md.leaders {
        assert!(
            md.brokers.contains_key(leader),
            "partition {p}: leader {leader} is not among the brokers {:?}",
            md.brokers
        );
    }
}

/// Everything in partition order as kcat reads it back from the beginning,
/// checked against `plan`; `leaders` must have served each partition.
fn consume_all(broker: &Broker, topic: &str, plan: &[Produce], leaders: &BTreeMap<i32, i64>) {
    let run = kcat(
        broker,
        &["-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"],
        None,
    );
    let consumed = parse_consumed(&run);
    let mut errors = Vec::new();
    for partition in 0..PARTITIONS {
        let expected: Vec<&TextRec> = plan
            .iter()
            .filter(|p| p.partition == partition)
            .flat_map(|p| &p.records)
            .collect();
        let got: Vec<&Consumed> = consumed
            .iter()
            .filter(|c| c.partition == partition)
            .collect();
        if got.len() != expected.len() {
            errors.push(format!(
                "partition {partition}: {} records read back, expected {}",
                got.len(),
                expected.len()
            ));
        }
        for (i, (c, want)) in got.iter().zip(&expected).enumerate() {
            if c.offset != i as i64 {
                errors.push(format!(
                    "partition {partition}: offset {} at position {i}",
                    c.offset
                ));
            }
            if &c.rec != *want {
                errors.push(format!(
                    "partition {partition} offset {}: expected {want:?}, got {:?}",
                    c.offset, c.rec
                ));
            }
            if c.broker != leaders[&partition] {
                errors.push(format!(
                    "partition {partition} offset {}: served by broker {}, its leader is {}",
                    c.offset, c.broker, leaders[&partition]
                ));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "kcat round trip: {} mismatches:\n  {}\n{}",
        errors.len(),
        errors[..errors.len().min(20)].join("\n  "),
        run.output_text()
    );
}

fn kcat_round_trip(options: BrokerOptions) {
    let mut broker = Broker::start_with_auto_create(options);
    let topic = "kcat-topic";
    let plan = produce_plan();
    for p in &plan {
        produce(&broker, topic, p);
    }

    let md = metadata(&broker, topic);
    check_metadata(&broker, &md);
    let listing = kcat(&broker, &["-L"], None).stdout_text();
    assert!(
        listing.contains(&format!("topic \"{topic}\" with {PARTITIONS} partitions")),
        "kcat -L:\n{listing}"
    );

    consume_all(&broker, topic, &plan, &md.leaders);

    // From an offset inside a batch: records before it are not returned.
    let run = kcat(
        &broker,
        &[
            "-C", "-t", topic, "-p", "1", "-o", "5", "-c", "4", "-e", "-J", "-q",
        ],
        None,
    );
    let got = parse_consumed(&run);
    let offsets: Vec<i64> = got.iter().map(|c| c.offset).collect();
    assert_eq!(offsets, vec![5, 6, 7, 8], "{}", run.output_text());
    let expected: Vec<&TextRec> = plan
        .iter()
        .filter(|p| p.partition == 1)
        .flat_map(|p| &p.records)
        .skip(5)
        .take(4)
        .collect();
    let got: Vec<&TextRec> = got.iter().map(|c| &c.rec).collect();
    assert_eq!(got, expected);

    broker.terminate();
}

#[test]
fn kcat_single_listener() {
    kcat_round_trip(BrokerOptions::single());
}

#[test]
fn kcat_single_listener_two_shards() {
    kcat_round_trip(BrokerOptions::single_shared(2));
}

#[test]
fn kcat_per_shard_listeners() {
    kcat_round_trip(BrokerOptions::per_shard(2));
}

/// Acknowledged records survive a clean restart and a SIGKILL, the topic
/// keeps its partitions and leaders, and offsets go on where they stopped.
#[test]
fn kcat_records_survive_restarts() {
    let mut broker = Broker::start_with_auto_create(BrokerOptions::per_shard(2));
    let topic = "kcat-restarts";
    let plan = produce_plan();
    let (first, second) = plan.split_at(PARTITIONS as usize);
    for p in first {
        produce(&broker, topic, p);
    }
    let md = metadata(&broker, topic);
    check_metadata(&broker, &md);

    broker.terminate();
    broker.restart();
    let after_clean = metadata(&broker, topic);
    assert_eq!(
        after_clean.leaders, md.leaders,
        "leaders after a clean restart"
    );
    consume_all(&broker, topic, first, &md.leaders);

    for p in second {
        produce(&broker, topic, p);
    }
    broker.kill9();
    broker.restart();
    let after_kill = metadata(&broker, topic);
    assert_eq!(after_kill.leaders, md.leaders, "leaders after SIGKILL");
    consume_all(&broker, topic, &plan, &md.leaders);

    broker.terminate();
}
