//! Apache Kafka's own command-line tools, run against the broker under
//! test: installed from Maven Central by `tuning/kafka.sh install` on first
//! use (into `<target>/kafka`), run through `tuning/kafka.sh tool NAME`.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::clients::{repo_dir, run_with_input, run_with_timeout, target_dir, Run};

/// A tool's JVM starts in about a second; the rest is the broker's answer.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(90);
/// Maven fetches ~100 jars on a fresh machine.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

fn script() -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_dir().join("tuning/kafka.sh"))
        .env("SHARDLOG_KAFKA_CACHE", target_dir().join("kafka"));
    cmd
}

/// Installs Kafka once per test process (the script itself serializes
/// processes and reuses a finished install).
pub fn ensure_installed() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        let mut cmd = script();
        cmd.arg("install");
        let run = run_with_timeout(cmd, INSTALL_TIMEOUT);
        if run.success() {
            Ok(())
        } else {
            Err(format!(
                "installing Apache Kafka (tuning/kafka.sh install) failed: {}\n{}",
                run.describe(),
                run.output_text()
            ))
        }
    });
    if let Err(msg) = result {
        panic!("{msg}");
    }
}

/// Runs Kafka's tool `name` (its script name, e.g. `kafka-topics`).
pub fn tool(name: &str, args: &[&str]) -> Run {
    tool_with_input(name, args, None)
}

/// [`tool`] with `input` on its stdin.
pub fn tool_with_input(name: &str, args: &[&str], input: Option<&str>) -> Run {
    ensure_installed();
    let mut cmd = script();
    cmd.arg("tool").arg(name).args(args);
    run_with_input(cmd, input.map(|s| s.as_bytes().to_vec()), TOOL_TIMEOUT)
}

/// [`tool`], asserting it exits 0; returns its stdout.
pub fn tool_ok(name: &str, args: &[&str]) -> String {
    let run = tool(name, args);
    run.assert_success();
    run.stdout_text()
}

/// Runs `tuning/kafka.sh ARGS` (start, stop, ...).
pub fn kafka_sh(args: &[&str]) -> Run {
    ensure_installed();
    let mut cmd = script();
    cmd.args(args);
    run_with_timeout(cmd, TOOL_TIMEOUT)
}

/// Runs `java` with Kafka's jars on the class path (`tuning/kafka.sh java`).
pub fn java(args: &[&str]) -> Run {
    kafka_sh(&[&["java"], args].concat())
}

/// A stock Apache Kafka broker (a combined KRaft node from
/// `tuning/kafka.sh start`, 1 GiB heap) on loopback, for answers compared
/// side by side with shardlog's; stopped when dropped.
pub struct StockKafka {
    dir: tempfile::TempDir,
    port: u16,
    _ports: Vec<std::fs::File>,
}

impl StockKafka {
    pub fn start() -> StockKafka {
        let dir = super::temp_dir();
        let (port, ports) = super::broker::reserve_ports(2);
        let run = kafka_sh(&[
            "start",
            "--dir",
            dir.path().to_str().unwrap(),
            "--port",
            &port.to_string(),
            "--controller-port",
            &(port + 1).to_string(),
        ]);
        if !run.success() {
            let log = std::fs::read_to_string(dir.path().join("kafka.log")).unwrap_or_default();
            let tail: String = log.lines().rev().take(40).collect::<Vec<_>>().join("\n");
            panic!(
                "starting stock Kafka failed: {}\n{}\n--- kafka.log (last lines, newest first) ---\n{tail}",
                run.describe(),
                run.output_text()
            );
        }
        StockKafka {
            dir,
            port,
            _ports: ports,
        }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for StockKafka {
    fn drop(&mut self) {
        let _ = kafka_sh(&["stop", "--dir", self.dir.path().to_str().unwrap()]);
    }
}

/// Records JavaClient.java produces per codec.
const RECORDS_PER_CODEC: &str = "300";

/// Runs JavaClient.java against `broker`, with every client's settings
/// from `properties` (a file) when given; asserts every step.
pub fn run_java_client(
    broker: &super::broker::Broker,
    topic: &str,
    properties: Option<&std::path::Path>,
) {
    let source = super::clients::repo_dir().join("tests/clients/JavaClient.java");
    let bootstrap = broker.bootstrap();
    let mut args = vec![
        source.to_str().unwrap(),
        &bootstrap,
        topic,
        RECORDS_PER_CODEC,
    ];
    if let Some(p) = properties {
        args.push(p.to_str().unwrap());
    }
    let run = java(&args);
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
