//! The command-line tools of Apache Kafka 4.x (the distribution's own
//! classes, installed from Maven Central by `tuning/kafka.sh`), driving
//! shardlog as Kafka users type them: kafka-topics, kafka-configs,
//! kafka-console-producer/-consumer with keys and headers,
//! kafka-consumer-groups, kafka-get-offsets, kafka-delete-records,
//! kafka-log-dirs, kafka-broker-api-versions; and kafka-dump-log reading
//! the segments and indexes shardlog wrote, the on-disk format checked by
//! Kafka itself.

mod common;

use std::collections::BTreeMap;

use common::broker::{reserve_ports, Broker, BrokerOptions};
use common::clients::Run;
use common::kafka::{kafka_sh, tool, tool_ok, tool_with_input};

/// `topic:partition:offset` lines of kafka-get-offsets, as a map.
fn offsets(bootstrap: &str, topic: &str, time: &str) -> BTreeMap<i32, i64> {
    let out = tool_ok(
        "kafka-get-offsets",
        &[
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--time",
            time,
        ],
    );
    out.lines()
        .filter_map(|l| {
            let mut parts = l.rsplitn(3, ':');
            let offset = parts.next()?.trim().parse().ok()?;
            let partition = parts.next()?.parse().ok()?;
            (parts.next()? == topic).then_some((partition, offset))
        })
        .collect()
}

fn topic_list(bootstrap: &str) -> Vec<String> {
    tool_ok("kafka-topics", &["--bootstrap-server", bootstrap, "--list"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// kafka-topics --create TOPIC with PARTITIONS and `extra` arguments.
fn create_topic(bootstrap: &str, topic: &str, partitions: u32, extra: &[&str]) -> Run {
    let partitions = partitions.to_string();
    let mut args = vec![
        "--bootstrap-server",
        bootstrap,
        "--create",
        "--topic",
        topic,
        "--partitions",
        &partitions,
    ];
    args.extend_from_slice(extra);
    tool("kafka-topics", &args)
}

/// Produces `lines` with kafka-console-producer, parsing keys (`key:value`)
/// and, with `headers`, a header list before a tab.
fn console_produce(bootstrap: &str, topic: &str, lines: &[String], extra: &[&str]) {
    let mut args = vec![
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--property",
        "parse.key=true",
        "--property",
        "key.separator=:",
    ];
    args.extend_from_slice(extra);
    let input = lines.join("\n") + "\n";
    let run = tool_with_input("kafka-console-producer", &args, Some(&input));
    run.assert_success();
}

// Proves kafka-topics creates, describes, grows, lists and deletes topics;
// kafka-configs alters and describes a topic's config and describes the
// broker's; kafka-get-offsets and kafka-delete-records see and move the
// offsets; kafka-log-dirs lists the partitions with their sizes; and
// kafka-broker-api-versions reads the versions served.
#[test]
fn topics_configs_offsets_log_dirs_and_api_versions() {
    let broker = Broker::start(BrokerOptions::single());
    let b = broker.bootstrap();
    let b = b.as_str();

    let run = create_topic(b, "cli-t", 2, &[]);
    run.assert_success();
    assert!(
        run.stdout_text().contains("Created topic cli-t."),
        "{}",
        run.output_text()
    );
    let describe = || {
        tool_ok(
            "kafka-topics",
            &["--bootstrap-server", b, "--describe", "--topic", "cli-t"],
        )
    };
    assert!(describe().contains("PartitionCount: 2"), "{}", describe());
    tool_ok(
        "kafka-topics",
        &[
            "--bootstrap-server",
            b,
            "--alter",
            "--topic",
            "cli-t",
            "--partitions",
            "3",
        ],
    );
    let described = describe();
    assert!(described.contains("PartitionCount: 3"), "{described}");
    for p in 0..3 {
        assert!(
            described.contains(&format!("Partition: {p}\tLeader: 0\tReplicas: 0\tIsr: 0")),
            "{described}"
        );
    }
    assert!(topic_list(b).contains(&"cli-t".to_string()));

    let configs = |entity: &str, name: &str, action: &[&str]| {
        let mut args = vec![
            "--bootstrap-server",
            b,
            "--entity-type",
            entity,
            "--entity-name",
            name,
        ];
        args.extend_from_slice(action);
        tool_ok("kafka-configs", &args)
    };
    let out = configs(
        "topics",
        "cli-t",
        &["--alter", "--add-config", "retention.ms=3600000"],
    );
    assert!(
        out.contains("Completed updating config for topic cli-t."),
        "{out}"
    );
    let out = configs("topics", "cli-t", &["--describe"]);
    assert!(out.contains("retention.ms=3600000"), "{out}");
    let out = configs("brokers", "0", &["--describe"]);
    assert!(out.contains("configs for broker 0"), "{out}");

    let records: Vec<String> = (0..30).map(|i| format!("key-{i}:value-{i}")).collect();
    console_produce(b, "cli-t", &records, &[]);
    let ends = offsets(b, "cli-t", "-1");
    assert_eq!(ends.len(), 3, "{ends:?}");
    assert_eq!(ends.values().sum::<i64>(), 30, "{ends:?}");

    // Records before offset 1 of the fullest partition deleted.
    let (&p, _) = ends.iter().max_by_key(|(_, &e)| e).unwrap();
    let plan = std::env::temp_dir().join(format!(
        "shardlog-delete-records-{}.json",
        std::process::id()
    ));
    std::fs::write(
        &plan,
        format!(r#"{{"partitions":[{{"topic":"cli-t","partition":{p},"offset":1}}],"version":1}}"#),
    )
    .unwrap();
    let out = tool_ok(
        "kafka-delete-records",
        &[
            "--bootstrap-server",
            b,
            "--offset-json-file",
            plan.to_str().unwrap(),
        ],
    );
    let _ = std::fs::remove_file(&plan);
    assert!(
        out.contains(&format!("partition: cli-t-{p}\tlow_watermark: 1")),
        "{out}"
    );
    assert_eq!(
        offsets(b, "cli-t", "-2")[&p],
        1,
        "earliest offset after delete-records"
    );

    let out = tool_ok(
        "kafka-log-dirs",
        &[
            "--bootstrap-server",
            b,
            "--describe",
            "--topic-list",
            "cli-t",
        ],
    );
    let json = out
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON from kafka-log-dirs:\n{out}"));
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let dirs = v["brokers"][0]["logDirs"].as_array().expect("logDirs");
    assert_eq!(dirs.len(), 1, "{json}");
    assert!(dirs[0]["error"].is_null(), "{json}");
    let mut sizes = BTreeMap::new();
    for part in dirs[0]["partitions"].as_array().unwrap() {
        sizes.insert(
            part["partition"].as_str().unwrap().to_string(),
            part["size"].as_i64().unwrap(),
        );
    }
    assert_eq!(sizes.len(), 3, "{json}");
    for (p, end) in &ends {
        let size = sizes[&format!("cli-t-{p}")];
        assert_eq!(
            size > 0,
            *end > 0,
            "cli-t-{p}: size {size}, end offset {end}"
        );
    }

    let out = tool_ok("kafka-broker-api-versions", &["--bootstrap-server", b]);
    for line in [
        "Produce(0): 0 to 12",
        "Fetch(1): 4 to 12",
        "DescribeLogDirs(35): 1 to 4",
    ] {
        assert!(out.contains(line), "{line} missing:\n{out}");
    }

    tool_ok(
        "kafka-topics",
        &["--bootstrap-server", b, "--delete", "--topic", "cli-t"],
    );
    assert!(!topic_list(b).contains(&"cli-t".to_string()));
}

// Proves the console producer's keys and headers come back through the
// console consumer in a group, and kafka-consumer-groups lists the group,
// describes its committed offsets and lag, resets them and deletes it.
#[test]
fn console_clients_and_consumer_groups() {
    let broker = Broker::start(BrokerOptions::single());
    let b = broker.bootstrap();
    let b = b.as_str();
    create_topic(b, "cli-g", 3, &[]).assert_success();
    let records: Vec<String> = (0..6).map(|i| format!("h1:a{i},h2:b\tk{i}:v{i}")).collect();
    console_produce(b, "cli-g", &records, &["--property", "parse.headers=true"]);

    let run = tool(
        "kafka-console-consumer",
        &[
            "--bootstrap-server",
            b,
            "--topic",
            "cli-g",
            "--group",
            "cli-group",
            "--from-beginning",
            "--max-messages",
            "6",
            "--timeout-ms",
            "30000",
            "--property",
            "print.key=true",
            "--property",
            "print.headers=true",
        ],
    );
    run.assert_success();
    let mut got: Vec<String> = run.stdout_text().lines().map(str::to_string).collect();
    got.sort();
    let mut want: Vec<String> = (0..6)
        .map(|i| format!("h1:a{i},h2:b\tk{i}\tv{i}"))
        .collect();
    want.sort();
    assert_eq!(got, want);

    let list = tool_ok(
        "kafka-consumer-groups",
        &["--bootstrap-server", b, "--list"],
    );
    assert!(list.lines().any(|l| l == "cli-group"), "{list}");
    // (current offset, lag) summed over the group's partitions.
    let committed = || {
        let out = tool_ok(
            "kafka-consumer-groups",
            &[
                "--bootstrap-server",
                b,
                "--describe",
                "--group",
                "cli-group",
            ],
        );
        let mut sum = (0i64, 0i64);
        let mut rows = 0;
        for line in out.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() >= 6 && cols[0] == "cli-group" && cols[1] == "cli-g" {
                sum.0 += cols[3].parse::<i64>().unwrap_or(0);
                sum.1 += cols[5].parse::<i64>().unwrap_or(0);
                rows += 1;
            }
        }
        assert_eq!(rows, 3, "{out}");
        sum
    };
    assert_eq!(committed(), (6, 0));
    let out = tool_ok(
        "kafka-consumer-groups",
        &[
            "--bootstrap-server",
            b,
            "--reset-offsets",
            "--group",
            "cli-group",
            "--topic",
            "cli-g",
            "--to-earliest",
            "--execute",
        ],
    );
    assert!(out.contains("NEW-OFFSET"), "{out}");
    assert_eq!(committed(), (0, 6));
    let out = tool_ok(
        "kafka-consumer-groups",
        &["--bootstrap-server", b, "--delete", "--group", "cli-group"],
    );
    assert!(out.contains("was successful"), "{out}");
    let list = tool_ok(
        "kafka-consumer-groups",
        &["--bootstrap-server", b, "--list"],
    );
    assert!(!list.lines().any(|l| l == "cli-group"), "{list}");
}

// Proves Kafka's own kafka-dump-log reads every batch and record of a
// segment shardlog wrote (plain and zstd-compressed batches, deep
// iteration, every CRC valid) and finds its offset and time indexes
// consistent with it.
#[test]
fn kafka_dump_log_reads_shardlog_segments() {
    let mut broker = Broker::start(BrokerOptions::single());
    let b = broker.bootstrap();
    let b = b.as_str();
    // An index entry per batch, so the offset index is not empty.
    create_topic(b, "cli-dump", 1, &["--config", "index.interval.bytes=1"]).assert_success();
    let mut total = 0;
    for (round, codec) in ["none", "zstd", "none", "lz4"].iter().enumerate() {
        let records: Vec<String> = (0..5)
            .map(|i| format!("k{round}-{i}:payload-{round}-{i}"))
            .collect();
        total += records.len();
        console_produce(b, "cli-dump", &records, &["--compression-codec", codec]);
    }
    broker.terminate();

    let dir = broker.data_dir().join("cli-dump-0");
    let segment = dir.join("00000000000000000000.log");
    let out = tool_ok(
        "kafka-dump-log",
        &[
            "--files",
            segment.to_str().unwrap(),
            "--deep-iteration",
            "--print-data-log",
        ],
    );
    let batches: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("baseOffset:"))
        .collect();
    assert!(
        batches.len() >= 4,
        "one batch per producer run at least:\n{out}"
    );
    assert!(
        batches.iter().all(|l| l.contains("isvalid: true")),
        "a batch failed Kafka's checks:\n{out}"
    );
    assert!(
        batches.iter().any(|l| l.contains("compresscodec: zstd")),
        "{out}"
    );
    assert!(
        batches.iter().any(|l| l.contains("compresscodec: lz4")),
        "{out}"
    );
    let records: Vec<&str> = out.lines().filter(|l| l.starts_with("| offset:")).collect();
    assert_eq!(records.len(), total, "{out}");
    for (offset, line) in records.iter().enumerate() {
        assert!(line.starts_with(&format!("| offset: {offset} ")), "{line}");
    }
    for round in 0..4 {
        for i in 0..5 {
            let want = format!("key: k{round}-{i} payload: payload-{round}-{i}");
            assert!(out.contains(&want), "{want} missing:\n{out}");
        }
    }

    let index = dir.join("00000000000000000000.index");
    let time_index = dir.join("00000000000000000000.timeindex");
    let files = format!("{},{}", index.display(), time_index.display());
    let out = tool_ok(
        "kafka-dump-log",
        &["--files", &files, "--verify-index-only"],
    );
    assert!(!out.contains("Mismatches"), "{out}");
    let out = tool_ok("kafka-dump-log", &["--files", &files]);
    assert!(
        out.lines().filter(|l| l.starts_with("offset:")).count() >= 3,
        "offset index entries:\n{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("timestamp:")),
        "time index entries:\n{out}"
    );
}

/// The first CPU this process may run on.
fn first_allowed_cpu() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim();
    list.split([',', '-']).next().unwrap().to_string()
}

// Proves tuning/kafka.sh starts a stock Apache Kafka broker (KRaft, one
// node) pinned to the cores it is given and with the fixed heap it is
// given, that Kafka's own tools work against it, and that it stops by its
// PID.
#[test]
fn stock_kafka_starts_pinned_and_stops() {
    let (port, _locks) = reserve_ports(2);
    let dir = common::temp_dir();
    let cpu = first_allowed_cpu();
    let (port_s, cport_s) = (port.to_string(), (port + 1).to_string());
    let dir_s = dir.path().to_str().unwrap();
    // Stops the broker however the test ends.
    struct Stop<'a>(&'a str);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            if std::path::Path::new(self.0).join("kafka.pid").exists() {
                let _ = kafka_sh(&["stop", "--dir", self.0]);
            }
        }
    }
    let _stop = Stop(dir_s);
    let run = kafka_sh(&[
        "start",
        "--dir",
        dir_s,
        "--port",
        &port_s,
        "--controller-port",
        &cport_s,
        "--cores",
        &cpu,
        "--heap",
        "512m",
    ]);
    run.assert_success();
    let pid = std::fs::read_to_string(dir.path().join("kafka.pid")).unwrap();
    let pid = pid.trim();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();

    let bootstrap = format!("127.0.0.1:{port}");
    let created = create_topic(&bootstrap, "stock", 2, &[]);
    let stopped = kafka_sh(&["stop", "--dir", dir_s]);
    let gone = !std::path::Path::new(&format!("/proc/{pid}")).exists();

    assert_eq!(allowed, cpu, "the broker's CPUs");
    for flag in ["-Xms512m", "-Xmx512m"] {
        assert!(args.iter().any(|a| a == flag), "{flag} not in {args:?}");
    }
    assert!(args.iter().any(|a| a == "kafka.Kafka"), "{args:?}");
    created.assert_success();
    assert!(created.stdout_text().contains("Created topic stock."));
    stopped.assert_success();
    assert!(gone, "Kafka (pid {pid}) still running after stop");
    let props = std::fs::read_to_string(dir.path().join("server.properties")).unwrap();
    assert!(
        props.contains(&format!("listeners=PLAINTEXT://127.0.0.1:{port}")),
        "{props}"
    );
}
