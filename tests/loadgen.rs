//! The load generator (loadgen/) against the real `shardlog` binary, run
//! in-process through `loadgen::run` and the command-line entry point:
//!
//! - a bounded produce run: the records loadgen counted as acknowledged
//!   equal what the broker stored (librdkafka's ListOffsets watermarks),
//!   with one shard and with two shards each advertised as its own node
//!   (leader discovery, one connection per broker);
//! - an e2e run through the command line with `--json`: the summary has
//!   every documented key, the consumers saw the records, and the counts
//!   match the broker's;
//! - records bigger than the broker's `message.max.bytes`: the failures
//!   are counted, `Summary::check` fails and the command exits 1;
//! - a 500 ms broker stall (SIGSTOP) shows in the latency from the intended
//!   send time and not in the latency from the actual send (coordinated
//!   omission corrected);
//! - `sweep` and `compare` end to end.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::broker::{Broker, BrokerOptions};
use loadgen::{Config, Workload};
use rdkafka::consumer::Consumer;

const TIMEOUT: Duration = Duration::from_secs(10);

/// The records stored in each partition of `topic` (high minus low
/// watermark), via librdkafka's ListOffsets.
fn stored(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let c = common::rdk::consumer(bootstrap);
    (0..partitions)
        .map(|p| {
            let (low, high) = c
                .fetch_watermarks(topic, p, TIMEOUT)
                .unwrap_or_else(|e| panic!("watermarks {topic}/{p}: {e}"));
            (p, high - low)
        })
        .collect()
}

fn config(workload: Workload, broker: &Broker, topic: &str, extra: &[&str]) -> Config {
    let mut args = vec![
        "--bootstrap".to_string(),
        broker.bootstrap(),
        "--topic".to_string(),
        topic.to_string(),
        "--create".to_string(),
        "--quiet".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Config::from_args(workload, args).expect("loadgen options")
}

/// Runs a 2 s produce of 4 partitions at acks=1 with a warm-up and checks
/// the acknowledged count against the broker.
fn produce_matches_broker(options: BrokerOptions, topic: &str) -> loadgen::Summary {
    let broker = Broker::start(options);
    let cfg = config(
        Workload::Produce,
        &broker,
        topic,
        &[
            "--partitions",
            "4",
            "--acks",
            "1",
            "--rate",
            "20000",
            "--warmup",
            "500ms",
            "--duration",
            "2s",
            "--linger-ms",
            "2",
        ],
    );
    let s = loadgen::run(&cfg).expect("loadgen run");
    assert_eq!(s.errors, 0, "{:?}", s.error_kinds);
    assert_eq!(s.failed_records, 0);
    s.check().expect("no failures");
    // 2 s at 20,000/s, give or take the schedule's edges (and a generator
    // that falls behind on a busy machine).
    assert!(
        (30_000..=42_000).contains(&s.records),
        "measured {} records",
        s.records
    );
    assert!(s.warmup_records > 0);
    let stored = stored(&broker.bootstrap(), topic, 4);
    let total: i64 = stored.values().sum();
    assert_eq!(
        total as u64,
        s.records + s.warmup_records,
        "broker holds {stored:?}"
    );
    assert!(
        stored.values().all(|&n| n > 0),
        "every partition got records: {stored:?}"
    );
    assert!(s.publish_latency_us.count == s.records && s.publish_latency_us.p50 > 0);
    assert!(s.publish_latency_us.p99 >= s.publish_latency_from_send_us.p99 / 2);
    // Loadgen's own lateness is measured at a fixed rate, once per batch
    // handed over while measuring: at least one, at most one per record.
    let late = s.schedule_lateness_us;
    assert!(
        late.count > 0 && late.count <= s.records,
        "{late:?} for {} records",
        s.records
    );
    s
}

// Proves the acknowledged count equals what one shard stored.
#[test]
fn produce_counts_match_the_broker() {
    let s = produce_matches_broker(BrokerOptions::single(), "lg-produce");
    assert_eq!(s.per_broker.len(), 1);
}

// Proves leader discovery: with two shards advertised as two nodes, every
// partition's batches go to its leader (no errors) and both nodes get some.
#[test]
fn produce_to_per_shard_leaders_matches_the_broker() {
    let s = produce_matches_broker(BrokerOptions::per_shard(2), "lg-per-shard");
    assert_eq!(s.per_broker.len(), 2, "{:?}", s.per_broker);
    assert!(s.per_broker.iter().all(|b| b.records > 0));
}

// Proves an e2e run through the command line writes a JSON summary with
// every documented key, measures end-to-end latency on consumed records,
// and counts exactly what the broker stored.
#[test]
fn e2e_json_summary_has_the_documented_keys() {
    let broker = Broker::start(BrokerOptions::single());
    let dir = common::temp_dir();
    let json = dir.path().join("summary.json");
    let hgrm = dir.path().join("hgrm");
    let html = dir.path().join("report.html");
    let bootstrap = broker.bootstrap();
    let args = [
        "loadgen",
        "e2e",
        "--bootstrap",
        &bootstrap,
        "--topic",
        "lg-e2e",
        "--create",
        "--partitions",
        "2",
        "--rate",
        "5000",
        "--duration",
        "2s",
        "--linger-ms",
        "1",
        "--quiet",
        "--json",
        json.to_str().unwrap(),
        "--hgrm",
        hgrm.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ];
    assert_eq!(loadgen::cli::main_with_args(args, Default::default()), 0);
    let text = std::fs::read_to_string(&json).expect("JSON written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    for key in ["records", "duration_s", "msg_per_s", "mb_per_s", "errors"] {
        assert!(v[key].is_number(), "{key} in {text}");
    }
    let core = &v["per_core"][0];
    for key in ["core", "msg_per_s", "mb_per_s"] {
        assert!(core.get(key).is_some(), "per_core.{key} in {text}");
    }
    for latency in ["publish_latency_us", "e2e_latency_us"] {
        for key in ["p50", "p90", "p99", "p999", "p9999", "max"] {
            assert!(v[latency][key].is_u64(), "{latency}.{key} in {text}");
        }
    }
    let records = v["records"].as_u64().unwrap();
    assert!((7_000..=11_000).contains(&records), "{records}");
    assert_eq!(v["errors"].as_u64(), Some(0));
    assert!(v["e2e_latency_us"]["p50"].as_u64().unwrap() > 0);
    // The consumers saw (nearly) every measured record: records produced at
    // the very edges of the window may be classified differently.
    let consumed = v["consumed_records"].as_u64().unwrap();
    assert!(
        consumed + 50 >= records && consumed <= records + 50,
        "{consumed} vs {records}"
    );
    let stored: i64 = stored(&bootstrap, "lg-e2e", 2).values().sum();
    assert_eq!(
        stored as u64,
        records + v["warmup_records"].as_u64().unwrap()
    );
    assert!(hgrm.join("end-to-end.hgrm").exists());
    assert!(hgrm.join("publish-from-intended.hgrm").exists());
    let page = std::fs::read_to_string(&html).expect("HTML written");
    assert!(page.contains("<svg") && page.contains("Latency by percentile"));
}

// Proves broker errors are counted, never ignored: records larger than
// message.max.bytes all fail with MESSAGE_TOO_LARGE, the summary says so,
// check() fails and the command exits 1.
#[test]
fn rejected_records_are_counted_and_fail_the_run() {
    let broker = Broker::start(BrokerOptions::single().with_override("message.max.bytes", 1000));
    let cfg = config(
        Workload::Produce,
        &broker,
        "lg-too-large",
        &[
            "--record-size",
            "2000",
            "--rate",
            "200",
            "--duration",
            "1s",
            "--acks",
            "1",
        ],
    );
    let s = loadgen::run(&cfg).expect("the run itself completes");
    assert_eq!(s.records, 0);
    assert!(s.failed_records >= 100, "{} failed", s.failed_records);
    assert!(s.errors > 0);
    assert!(
        s.error_kinds
            .keys()
            .any(|k| k.starts_with("MESSAGE_TOO_LARGE")),
        "{:?}",
        s.error_kinds
    );
    assert!(matches!(s.check(), Err(loadgen::Error::RecordsFailed(..))));
    let bootstrap = broker.bootstrap();
    let code = loadgen::cli::main_with_args(
        [
            "loadgen",
            "produce",
            "--bootstrap",
            &bootstrap,
            "--topic",
            "lg-too-large",
            "--record-size",
            "2000",
            "--rate",
            "100",
            "--duration",
            "500ms",
            "--quiet",
        ],
        Default::default(),
    );
    assert_eq!(code, 1);
    assert_eq!(stored(&bootstrap, "lg-too-large", 1)[&0], 0);
}

// Proves the coordinated-omission correction on a real stall: the broker
// is stopped (SIGSTOP) for 500 ms during a 2,000 records/s run. The
// records that fell due during the stall are charged it from their
// intended send time (p90 well above 100 ms), while latency from the
// actual send barely moves, because the requests were sent after the
// stall.
#[test]
fn a_broker_stall_shows_in_latency_from_the_intended_time() {
    let broker = Broker::start(BrokerOptions::single());
    let pid = broker.pid().expect("broker running").to_string();
    let cfg = config(
        Workload::Produce,
        &broker,
        "lg-stall",
        &[
            "--rate",
            "2000",
            "--duration",
            "3s",
            "--acks",
            "1",
            "--linger-ms",
            "1",
        ],
    );
    let stall = std::thread::spawn(move || {
        let signal = |sig: &str| {
            let ok = std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .expect("run kill")
                .success();
            assert!(ok, "kill {sig} {pid}");
        };
        std::thread::sleep(Duration::from_millis(1000));
        signal("-STOP");
        std::thread::sleep(Duration::from_millis(500));
        signal("-CONT");
    });
    let s = loadgen::run(&cfg).expect("loadgen run");
    stall.join().expect("stall thread");
    s.check().expect("a stall is not a failure");
    let intended = s.publish_latency_us;
    let sent = s.publish_latency_from_send_us;
    assert!(intended.max >= 400_000, "{intended:?}");
    assert!(intended.p90 >= 100_000, "from intended: {intended:?}");
    assert!(
        sent.p90 * 3 < intended.p90,
        "from send {sent:?} vs from intended {intended:?}"
    );
}

// Proves `sweep` doubles the rate while the bound holds and stops at
// --max-rate, reporting every trial and the best rate in its JSON.
#[test]
fn sweep_finds_the_highest_rate_within_the_bound() {
    let broker = Broker::start(BrokerOptions::single());
    let dir = common::temp_dir();
    let json = dir.path().join("sweep.json");
    let bootstrap = broker.bootstrap();
    let code = loadgen::cli::main_with_args(
        [
            "loadgen",
            "sweep",
            "--p99-ms",
            "2000",
            "--start-rate",
            "500",
            "--max-rate",
            "2000",
            "--bootstrap",
            &bootstrap,
            "--topic",
            "lg-sweep",
            "--create",
            "--duration",
            "500ms",
            "--acks",
            "1",
            "--json",
            json.to_str().unwrap(),
        ],
        Default::default(),
    );
    assert_eq!(code, 0);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rates: Vec<u64> = v["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["rate"].as_u64().unwrap())
        .collect();
    assert_eq!(rates, vec![500, 1000, 2000], "{v}");
    assert_eq!(v["best_rate"].as_u64(), Some(2000));
    assert!(v["trials"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["held"] == true));
}

// Proves `compare` runs the workload against both brokers and reports
// ratios near 1 for two identical brokers at a fixed rate, and writes the
// side-by-side page with both brokers' curves.
#[test]
fn compare_reports_ratios_between_two_brokers() {
    let a = Broker::start(BrokerOptions::single());
    let b = Broker::start(BrokerOptions::single());
    let dir = common::temp_dir();
    let json = dir.path().join("compare.json");
    let html = dir.path().join("compare.html");
    let (a_addr, b_addr) = (a.bootstrap(), b.bootstrap());
    let code = loadgen::cli::main_with_args(
        [
            "loadgen",
            "compare",
            "--bootstrap",
            &a_addr,
            "--other",
            &b_addr,
            "--rounds",
            "1",
            "--topic",
            "lg-compare",
            "--create",
            "--rate",
            "2000",
            "--duration",
            "500ms",
            "--acks",
            "1",
            "--json",
            json.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
        Default::default(),
    );
    assert_eq!(code, 0);
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<polyline").count(), 2, "one curve per broker");
    assert!(page.contains(&format!("A {a_addr}")) && page.contains(&format!("B {b_addr}")));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["runs_a"].as_array().unwrap().len(), 1);
    assert_eq!(v["runs_b"].as_array().unwrap().len(), 1);
    let ratio = v["ratio_b_over_a"]["msg_per_s"].as_f64().unwrap();
    assert!((0.9..1.1).contains(&ratio), "{v}");
    // Both brokers got the workload.
    assert!(stored(&a_addr, "lg-compare", 1)[&0] > 500);
    assert!(stored(&b_addr, "lg-compare", 1)[&0] > 500);
}
