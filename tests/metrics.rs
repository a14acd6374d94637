//! The metrics endpoint against real tools: Prometheus's own `promtool`
//! checks the exposition, a real Prometheus server scrapes a broker under
//! load and answers PromQL queries whose results are checked against what
//! the clients did (records produced, bytes the broker stored as
//! DescribeLogDirs reports them, a group's committed offsets), headless
//! Chromium renders the status page (a screenshot lands in
//! `target/metrics-page.png`), and `/health` answers 503 with the reason on
//! a broker-only node that no quorum has registered. promtool, prometheus
//! and chromium are Debian packages `tests/clients/install.sh` installs on
//! first use.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::broker::{reserve_ports, Broker, BrokerOptions};
use common::clients::{ensure_installed, target_dir};
use common::raw::{topic_name, Conn};
use common::rdk;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// One HTTP GET (or another method): status, content type, body.
fn http(port: u16, method: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8(raw).expect("utf-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: "))
        .unwrap_or_default()
        .to_string();
    (status, content_type, body.to_string())
}

/// The samples of an exposition: `name{labels}` -> value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("name and value");
            (k.to_string(), v.parse().expect("a number"))
        })
        .collect()
}

/// A broker with its metrics endpoint on a reserved port.
fn broker_with_metrics() -> (Broker, u16, Vec<std::fs::File>) {
    let (port, locks) = reserve_ports(1);
    let broker = Broker::start(
        BrokerOptions::single()
            .with_override("shardlog.metrics.listen", format!("127.0.0.1:{port}"))
            .with_override("offsets.topic.num.partitions", 2),
    );
    (broker, port, locks)
}

/// Record batch bytes of `topic`'s partitions as DescribeLogDirs reports
/// them: what the broker stored, which is what producers sent.
fn stored_bytes(broker: &Broker, topic: &str, partitions: i32) -> i64 {
    let mut conn = Conn::open(&broker.bootstrap());
    let mut t = DescribableLogDirTopic::default();
    t.topic = topic_name(topic);
    t.partitions = (0..partitions).collect();
    let resp: DescribeLogDirsResponse = conn.call(
        ApiKey::DescribeLogDirs,
        1,
        &DescribeLogDirsRequest::default().with_topics(Some(vec![t])),
    );
    resp.results
        .iter()
        .flat_map(|d| &d.topics)
        .flat_map(|t| &t.partitions)
        .map(|p| p.partition_size)
        .sum()
}

/// Produces `count` records of 100 bytes to `topic`, all acknowledged.
fn produce(bootstrap: &str, topic: &str, partitions: i32, count: usize, tag: &str) {
    let p = rdk::producer(bootstrap, &[("compression.type", "none")]);
    let recs = rdk::records(
        tag,
        count,
        &(0..partitions).collect::<Vec<_>>(),
        rdk::now_ms(),
    );
    let acked = rdk::produce_all(&p, topic, &recs);
    assert_eq!(acked.len(), count);
}

/// Commits `offsets` (partition -> offset) for `group` as a consumer with
/// no subscription (Kafka's simple consumer), and returns the lag each
/// partition then has: high watermark minus committed offset.
fn commit(bootstrap: &str, group: &str, topic: &str, offsets: &[(i32, i64)]) -> BTreeMap<i32, i64> {
    let c: rdkafka::consumer::BaseConsumer = rdk::base_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for &(p, o) in offsets {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))
            .unwrap();
    }
    c.commit(&tpl, CommitMode::Sync).expect("commit");
    let committed = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    let partitions: Vec<i32> = offsets.iter().map(|(p, _)| *p).collect();
    let hw = rdk::high_watermarks(&c, topic, &partitions);
    committed
        .elements()
        .iter()
        .map(|e| {
            let Offset::Offset(o) = e.offset() else {
                panic!("no committed offset for {e:?}");
            };
            (e.partition(), hw[&e.partition()] - o)
        })
        .collect()
}

/// Reads every record of `topic` once (Fetch traffic for bytes_out).
fn consume_all(bootstrap: &str, topic: &str, partitions: i32, count: usize) {
    let c = rdk::consumer(bootstrap);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut got = 0;
    let start = Instant::now();
    while got < count && start.elapsed() < Duration::from_secs(30) {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            m.expect("a record");
            got += 1;
        }
    }
    assert_eq!(got, count, "records read back");
}

// Proves /metrics passes promtool's checks and its values match what the
// clients did: records and stored bytes in, lag as the committed offsets
// say, requests counted with their durations; and the endpoint's other
// answers (/health, 404, 405, HEAD).
#[test]
fn metrics_pass_promtool_and_match_the_clients() {
    ensure_installed();
    let (broker, port, _locks) = broker_with_metrics();
    let bootstrap = broker.bootstrap();
    let admin = rdk::admin(&bootstrap);
    rdk::create_topic(&admin, "metered", 3, &[]);
    produce(&bootstrap, "metered", 3, 600, "m");
    consume_all(&bootstrap, "metered", 3, 600);
    let lag = commit(
        &bootstrap,
        "lagging",
        "metered",
        &[(0, 10), (1, 0), (2, 50)],
    );

    let (status, content_type, text) = http(port, "GET", "/metrics");
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (Debian's prometheus package)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let s = samples(&text);
    let get = |k: &str| *s.get(k).unwrap_or_else(|| panic!("no sample {k}\n{text}"));
    assert_eq!(
        get(r#"shardlog_topic_messages_in_total{topic="metered"}"#),
        600.0
    );
    let stored = stored_bytes(&broker, "metered", 3);
    assert!(stored > 0);
    assert_eq!(
        get(r#"shardlog_topic_bytes_in_total{topic="metered"}"#),
        stored as f64
    );
    assert_eq!(
        get(r#"shardlog_topic_bytes_out_total{topic="metered"}"#),
        stored as f64,
        "each record read once"
    );
    let mut hw_sum = 0.0;
    for p in 0..3 {
        let hw = get(&format!(
            r#"shardlog_partition_high_watermark{{topic="metered",partition="{p}"}}"#
        ));
        hw_sum += hw;
        assert_eq!(
            get(&format!(
                r#"shardlog_consumer_group_lag{{group="lagging",topic="metered",partition="{p}"}}"#
            )),
            lag[&p] as f64,
            "lag of partition {p}"
        );
    }
    assert_eq!(hw_sum, 600.0);
    assert_eq!(
        get(r#"shardlog_consumer_group_members{group="lagging"}"#),
        0.0
    );
    let produced = get(r#"shardlog_requests_total{api="Produce",outcome="answered"}"#);
    assert!(produced >= 1.0);
    assert_eq!(
        get(r#"shardlog_request_duration_seconds_count{api="Produce",phase="total"}"#),
        produced
    );
    assert_eq!(
        get(r#"shardlog_request_duration_seconds_count{api="Produce",phase="queue"}"#),
        produced
    );
    assert!(get(r#"shardlog_storage_write_duration_seconds_count{shard="0"}"#) >= 1.0);
    assert!(
        get(r#"shardlog_cache_hits_total{shard="0"}"#)
            + get(r#"shardlog_cache_misses_total{shard="0"}"#)
            >= 1.0
    );
    assert_eq!(get(r#"shardlog_shard_up{shard="0"}"#), 1.0);
    assert_eq!(get("shardlog_health"), 1.0);
    assert_eq!(
        get(r#"shardlog_request_memory_limit_bytes{shard="0"}"#),
        (512u64 << 20) as f64
    );

    assert_eq!(
        http(port, "GET", "/health"),
        (200, "text/plain; charset=utf-8".into(), "ok\n".into())
    );
    assert_eq!(http(port, "GET", "/nope").0, 404);
    assert_eq!(http(port, "POST", "/metrics").0, 405);
    let (status, _, body) = http(port, "HEAD", "/metrics");
    assert_eq!((status, body.as_str()), (200, ""));
}

// Proves the caps bound the exported series and count what they leave out.
#[test]
fn caps_bound_the_series_and_count_the_rest() {
    let (port, _locks) = reserve_ports(1);
    let broker = Broker::start(
        BrokerOptions::single()
            .with_override("shardlog.metrics.listen", format!("127.0.0.1:{port}"))
            .with_override("shardlog.metrics.max.topics", 1)
            .with_override("shardlog.metrics.max.partitions", 2),
    );
    let admin = rdk::admin(&broker.bootstrap());
    rdk::create_topic(&admin, "capped-a", 2, &[]);
    rdk::create_topic(&admin, "capped-b", 3, &[]);
    let s = samples(&http(port, "GET", "/metrics").2);
    let topics: Vec<_> = s
        .keys()
        .filter(|k| k.starts_with("shardlog_topic_messages_in_total"))
        .collect();
    assert_eq!(
        topics,
        [r#"shardlog_topic_messages_in_total{topic="capped-a"}"#]
    );
    let partitions = s
        .keys()
        .filter(|k| k.starts_with("shardlog_partition_high_watermark"))
        .count();
    assert_eq!(partitions, 2);
    assert_eq!(
        s[r#"shardlog_metrics_dropped_series_total{kind="topic"}"#],
        1.0
    );
    assert_eq!(
        s[r#"shardlog_metrics_dropped_series_total{kind="partition"}"#],
        3.0
    );
    // Counted again on the next scrape.
    let s = samples(&http(port, "GET", "/metrics").2);
    assert_eq!(
        s[r#"shardlog_metrics_dropped_series_total{kind="topic"}"#],
        2.0
    );
}

/// A Prometheus server scraping `targets` every second, on its own port,
/// its data in `dir`.
struct Prometheus {
    child: Child,
    port: u16,
    _locks: Vec<std::fs::File>,
}

impl Prometheus {
    fn start(dir: &Path, target: u16) -> Prometheus {
        let (port, locks) = reserve_ports(1);
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: shardlog\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run prometheus (Debian's prometheus package)");
        Prometheus {
            child,
            port,
            _locks: locks,
        }
    }

    /// An instant query's JSON answer.
    fn answer(&self, promql: &str) -> Option<serde_json::Value> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        let body = raw.split_once("\r\n\r\n")?.1;
        // Prometheus answers small bodies whole, large ones chunked.
        let json = &body[body.find('{')?..=body.rfind('}')?];
        serde_json::from_str(json).ok()
    }

    /// The value of an instant PromQL query with one result, if it has one.
    fn query(&self, promql: &str) -> Option<f64> {
        let v = self.answer(promql)?;
        let result = v["data"]["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits up to 60 s for `promql` to equal `want`; returns the last value.
    fn wait_for(&self, promql: &str, want: f64) -> Option<f64> {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < Duration::from_secs(60) {
            last = self.query(promql);
            if last == Some(want) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        last
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// Proves a real Prometheus server scrapes the broker while it takes load,
// and PromQL over what it stored gives the records and bytes produced and
// the lag a group's committed offsets imply.
#[test]
fn prometheus_scrapes_the_broker_under_load() {
    ensure_installed();
    let (broker, port, _locks) = broker_with_metrics();
    let bootstrap = broker.bootstrap();
    let dir = common::temp_dir();
    let prometheus = Prometheus::start(dir.path(), port);
    let admin = rdk::admin(&bootstrap);
    rdk::create_topic(&admin, "scraped", 4, &[]);
    // Prometheus has seen the topic empty before the load starts...
    let empty = prometheus.wait_for(
        r#"sum(shardlog_topic_messages_in_total{topic="scraped"})"#,
        0.0,
    );
    assert_eq!(empty, Some(0.0), "the empty topic scraped");
    // ...and scrapes while batches arrive over a few seconds.
    for round in 0..5 {
        produce(&bootstrap, "scraped", 4, 2000, &format!("r{round}"));
        std::thread::sleep(Duration::from_millis(700));
    }
    let lag = commit(
        &bootstrap,
        "scrape-group",
        "scraped",
        &[(0, 100), (1, 7), (2, 0), (3, 1999)],
    );
    let want_lag: i64 = lag.values().sum();
    let stored = stored_bytes(&broker, "scraped", 4);

    let records = prometheus.wait_for(
        r#"sum(shardlog_topic_messages_in_total{topic="scraped"})"#,
        10_000.0,
    );
    let bytes = prometheus.wait_for(
        r#"sum(shardlog_topic_bytes_in_total{topic="scraped"})"#,
        stored as f64,
    );
    let lags = prometheus.wait_for(
        r#"sum(shardlog_consumer_group_lag{group="scrape-group",topic="scraped"})"#,
        want_lag as f64,
    );
    let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    assert_eq!(records, Some(10_000.0), "records produced\n{log}");
    assert_eq!(bytes, Some(stored as f64), "bytes stored\n{log}");
    assert_eq!(lags, Some(want_lag as f64), "lag {lag:?}\n{log}");
    assert_eq!(prometheus.query(r#"up{job="shardlog"}"#), Some(1.0));
    // Every query of the Grafana dashboard is valid PromQL over these
    // series, and every metric it names is one the broker exports.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/shardlog-grafana.json"),
        )
        .expect("the dashboard"),
    )
    .expect("dashboard JSON");
    let exported = http(port, "GET", "/metrics").2;
    let mut exprs = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let Some(expr) = target["expr"].as_str() else {
                continue;
            };
            exprs += 1;
            let promql = expr.replace("$instance", ".*");
            let answer = prometheus.answer(&promql).expect("an answer");
            assert_eq!(answer["status"], "success", "{promql}: {answer}");
            for name in promql
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("shardlog_"))
            {
                let family = name.trim_end_matches("_bucket");
                assert!(
                    exported.contains(&format!("# TYPE {family} ")),
                    "the dashboard's {name} is not exported"
                );
            }
        }
    }
    assert!(exprs >= 20, "{exprs} dashboard queries");
    // Samples taken during the load: some lie strictly between empty and
    // done.
    let between = prometheus
        .query(r#"count_over_time((sum(shardlog_topic_messages_in_total{topic="scraped"}) > 0 < 10000)[5m:1s])"#);
    assert!(
        between.is_some_and(|n| n >= 1.0),
        "samples during the load: {between:?}"
    );
}

fn chromium() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|c| {
            Command::new("sh")
                .args(["-c", &format!("command -v {c}")])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        })
        .expect("chromium (Debian's chromium package)")
}

/// Headless Chromium on `url` with `args`; returns its stdout.
fn headless(profile: &Path, url: &str, args: &[String]) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .env("HOME", profile)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// Proves the status page renders in a real browser and lists the topic,
// its partitions and the group with its lag; leaves a screenshot for
// people to look at.
#[test]
fn status_page_renders_in_chromium() {
    ensure_installed();
    let (broker, port, _locks) = broker_with_metrics();
    let bootstrap = broker.bootstrap();
    let admin = rdk::admin(&bootstrap);
    rdk::create_topic(&admin, "shown-topic", 2, &[]);
    produce(&bootstrap, "shown-topic", 2, 300, "s");
    commit(&bootstrap, "shown-group", "shown-topic", &[(0, 1), (1, 2)]);
    let profile = common::temp_dir();
    let url = format!("http://127.0.0.1:{port}/");
    let dom = headless(profile.path(), &url, &["--dump-dom".to_string()]);
    for want in [
        "shown-topic",
        "shown-group",
        "healthy",
        "<h2>Partitions</h2>",
        "<h2>Consumer groups</h2>",
    ] {
        assert!(dom.contains(want), "{want} not on the page:\n{dom}");
    }
    let shot = target_dir().join("metrics-page.png");
    let _ = std::fs::remove_file(&shot);
    headless(
        profile.path(),
        &url,
        &[format!("--screenshot={}", shot.display())],
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(
        png.len() > 5_000,
        "a page, not a blank image: {} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}

// Proves /health answers 503 with the reason while a broker-only node has
// no quorum to register with, and the status page and shardlog_health say
// the same.
#[test]
fn health_is_unavailable_until_the_broker_registers() {
    let (mport, _mlocks) = reserve_ports(1);
    let (port, locks) = reserve_ports(4);
    let dir = common::temp_dir();
    let data = dir.path().join("data");
    // The voter's CONTROLLER port has no listener.
    let options = BrokerOptions::per_shard(1)
        .with_override("process.roles", "broker")
        .with_override("node.id", 2)
        .with_override(
            "controller.quorum.voters",
            format!("1@127.0.0.1:{}", port + 3),
        )
        .with_override("listeners", format!("PLAINTEXT://127.0.0.1:{port}"))
        .with_override(
            "advertised.listeners",
            format!("PLAINTEXT://127.0.0.1:{port}"),
        )
        .with_override("controller.listener.names", "CONTROLLER")
        .with_override("shardlog.metrics.listen", format!("127.0.0.1:{mport}"));
    let _broker = Broker::start_on(options, dir, data, [127, 0, 0, 1].into(), port, locks);
    let (status, _, body) = http(mport, "GET", "/health");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not registered"), "{body}");
    let s = samples(&http(mport, "GET", "/metrics").2);
    assert_eq!(s["shardlog_health"], 0.0);
    assert!(http(mport, "GET", "/")
        .2
        .contains("unhealthy: the broker is not registered"));
}
