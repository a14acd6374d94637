//! Real Kafka clients run as subprocesses: installing them
//! (`tests/clients/install.sh`), running one with a time limit, the records
//! they produce, and checking what they read back.
//!
//! The client scripts (`tests/clients/py_client.py`, `kafkajs_client.js`)
//! take a spec file of records (JSON, bytes in base64), produce them, read
//! every partition back from offset 0 by explicit assignment, and print JSON
//! lines: `delivered` (the offset each record's ack reported), `watermark`
//! (ListOffsets' high watermark) and `record` (what a fetch returned).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use super::broker::{kill_process_group, wait_timeout, Broker, BrokerOptions};

/// Longest a first installation may take (apt-get, pip, npm).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Longest one client run may take; the scripts give up on their own
/// `--timeout` before this.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// What the scripts are told (`--timeout`), in seconds.
pub const SCRIPT_TIMEOUT_S: u64 = 90;

/// Where the installed clients are.
#[derive(Debug, Clone)]
pub struct Clients {
    /// `<target>/client-env`.
    pub env_dir: PathBuf,
    /// The venv's Python: kafka-python 3, confluent-kafka 2 (its own recent
    /// librdkafka), aiokafka.
    pub venv_python: PathBuf,
    /// Debian's Python, with Debian's python3-confluent-kafka (librdkafka
    /// 2.0.2) and python3-kafka (kafka-python 2.0.2).
    pub system_python: PathBuf,
    /// For `NODE_PATH`: holds kafkajs.
    pub node_modules: PathBuf,
    /// tests/clients.
    pub scripts: PathBuf,
}

/// Installs the clients once per test process (and, through a lock file,
/// once at a time across concurrently running test processes). Panics with
/// the installer's output if it fails: these tests are never skipped.
pub fn ensure_installed() -> &'static Clients {
    static INSTALLED: OnceLock<Result<Clients, String>> = OnceLock::new();
    match INSTALLED.get_or_init(install) {
        Ok(clients) => clients,
        Err(msg) => panic!("{msg}"),
    }
}

pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo target directory this test binary was built in.
pub fn target_dir() -> PathBuf {
    // <target>/<profile>/deps/<test binary>
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            if dir.join("CACHEDIR.TAG").exists() {
                return dir.to_path_buf();
            }
        }
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo_dir().join("target"),
    }
}

fn install() -> Result<Clients, String> {
    let scripts = repo_dir().join("tests/clients");
    let env_dir = target_dir().join("client-env");
    std::fs::create_dir_all(&env_dir).map_err(|e| format!("create {}: {e}", env_dir.display()))?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(env_dir.join(".install.lock"))
        .map_err(|e| format!("open the install lock: {e}"))?;
    lock_exclusive(&lock)?;
    let started = Instant::now();
    let mut cmd = Command::new("bash");
    cmd.arg(scripts.join("install.sh")).arg(&env_dir);
    let run = run_with_timeout(cmd, INSTALL_TIMEOUT);
    drop(lock);
    if !run.success() {
        return Err(format!(
            "installing the test clients failed ({}; bash tests/clients/install.sh {}):\n{}",
            run.describe(),
            env_dir.display(),
            run.output_text()
        ));
    }
    let elapsed = started.elapsed();
    if elapsed > Duration::from_secs(2) {
        eprintln!(
            "test clients installed in {elapsed:?}:\n{}",
            run.stderr_text()
        );
    }
    Ok(Clients {
        venv_python: env_dir.join("venv/bin/python"),
        system_python: PathBuf::from("/usr/bin/python3"),
        node_modules: env_dir.join("node/node_modules"),
        env_dir,
        scripts,
    })
}

// `File::lock` is newer than the workspace's declared rust-version; this
// helper is only for tests, which the toolchain here builds.
#[allow(clippy::incompatible_msrv)]
fn lock_exclusive(file: &File) -> Result<(), String> {
    file.lock()
        .map_err(|e| format!("lock the client install lock file: {e}"))
}

/// A finished (or timed-out and killed) subprocess.
#[derive(Debug)]
pub struct Run {
    pub program: String,
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
    pub elapsed: Duration,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Run {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    pub fn describe(&self) -> String {
        if self.timed_out {
            format!("timed out after {:?} and killed", self.elapsed)
        } else {
            match self.status {
                Some(s) => format!("{s} after {:?}", self.elapsed),
                None => "no exit status".to_string(),
            }
        }
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// stderr then stdout (long lines shortened), each cut to its last
    /// 32 KiB.
    pub fn output_text(&self) -> String {
        let stdout: Vec<String> = self
            .stdout_text()
            .lines()
            .map(|l| shorten(l, 300))
            .collect();
        format!(
            "--- stderr ---\n{}\n--- stdout ---\n{}\n--- end ---",
            tail(&self.stderr, 32 << 10),
            tail(stdout.join("\n").as_bytes(), 32 << 10)
        )
    }

    /// Panics with the command, its outcome and its output unless it exited 0.
    pub fn assert_success(&self) {
        assert!(
            self.success(),
            "{} failed: {}\n{}",
            self.program,
            self.describe(),
            self.output_text()
        );
    }
}

/// `s` cut to about `max` bytes, for messages.
fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...({} bytes)", &s[..end], s.len())
}

fn tail(bytes: &[u8], max: usize) -> String {
    let from = bytes.len().saturating_sub(max);
    let mut s = String::new();
    if from > 0 {
        s.push_str(&format!("(... first {from} bytes left out)\n"));
    }
    s.push_str(&String::from_utf8_lossy(&bytes[from..]));
    s
}

/// Runs `cmd` with no stdin, collecting stdout and stderr; kills it after
/// `timeout`.
pub fn run_with_timeout(cmd: Command, timeout: Duration) -> Run {
    run_with_input(cmd, None, timeout)
}

/// Runs `cmd` with `input` (if any) on its stdin, collecting stdout and
/// stderr; kills it (and its process group) after `timeout`.
pub fn run_with_input(mut cmd: Command, input: Option<Vec<u8>>, timeout: Duration) -> Run {
    let program = format!("{cmd:?}");
    let started = Instant::now();
    // Its own process group, so a time-out kills whatever it started too.
    cmd.process_group(0);
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        thread::spawn(move || {
            // A client that exits early closes the pipe: not our error.
            let _ = stdin.write_all(&input);
        });
    }
    let mut out = child.stdout.take().expect("stdout pipe");
    let mut err = child.stderr.take().expect("stderr pipe");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let (status, timed_out) = match wait_timeout(&mut child, timeout) {
        Some(status) => (Some(status), false),
        None => {
            kill_process_group(child.id());
            let _ = child.kill();
            (child.wait().ok(), true)
        }
    };
    Run {
        program,
        status,
        timed_out,
        elapsed: started.elapsed(),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

// --- Records ----------------------------------------------------------------

/// One record as produced and as it must come back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Rec {
    fn to_json(&self) -> Value {
        json!({
            "partition": self.partition,
            "key": self.key.as_deref().map(|b| B64.encode(b)),
            "value": self.value.as_deref().map(|b| B64.encode(b)),
            "headers": self
                .headers
                .iter()
                .map(|(k, v)| json!([k, v.as_deref().map(|b| B64.encode(b))]))
                .collect::<Vec<_>>(),
        })
    }

    /// Key, value and headers, shortened for a failure message.
    pub fn show(&self) -> String {
        format!(
            "key={} value={} headers=[{}]",
            show_bytes(self.key.as_deref()),
            show_bytes(self.value.as_deref()),
            self.headers
                .iter()
                .map(|(k, v)| format!("{k:?}: {}", show_bytes(v.as_deref())))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

pub fn show_bytes(b: Option<&[u8]>) -> String {
    match b {
        None => "null".to_string(),
        Some(b) if b.len() <= 48 => format!("b\"{}\"", b.escape_ascii()),
        Some(b) => format!("b\"{}\"...({} bytes)", b[..48].escape_ascii(), b.len()),
    }
}

/// A deterministic mix of records over `partitions` partitions: binary keys
/// and values (every byte value), null keys, null values (tombstones), empty
/// keys and values, headers with binary, empty, null and UTF-8 parts, a record of
/// 200 KiB, unevenly spread and interleaved across partitions. No record has
/// both a null key and a null value (aiokafka refuses to send one).
pub fn mixed_records(partitions: i32, count: usize) -> Vec<Rec> {
    (0..count)
        .map(|i| {
            let n = i as u32;
            let partition = ((i * 7 + i / 5) % partitions as usize) as i32;
            let mut key = match i % 9 {
                4 => None,
                _ if i % 17 == 8 => Some(Vec::new()),
                _ => {
                    let mut k = vec![n as u8, 0x00, 0xff, 0x80, b'\n'];
                    k.extend_from_slice(format!("key-{i}").as_bytes());
                    Some(k)
                }
            };
            let value = if i % 10 == 7 {
                None
            } else if i % 13 == 0 {
                Some(Vec::new())
            } else if i == count / 2 {
                Some(pattern(n, 200 << 10))
            } else {
                Some(pattern(n, (i * 131) % 3000 + 1))
            };
            if key.is_none() && value.is_none() {
                key = Some(format!("tombstone-{i}").into_bytes());
            }
            let headers = (0..i % 4)
                .map(|j| match j {
                    0 => (format!("h{j}"), Some(vec![0x00, 0xff, n as u8, j as u8])),
                    1 if i % 8 == 5 => ("null".to_string(), None),
                    1 => ("empty".to_string(), Some(Vec::new())),
                    _ => (
                        format!("clé-{i}-ключ"),
                        Some(format!("värde {i} ✓").into_bytes()),
                    ),
                })
                .collect();
            Rec {
                partition,
                key,
                value,
                headers,
            }
        })
        .collect()
}

fn pattern(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Writes the spec file the client scripts read.
pub fn write_spec(path: &Path, records: &[Rec]) {
    let spec = json!({ "records": records.iter().map(Rec::to_json).collect::<Vec<_>>() });
    std::fs::write(path, serde_json::to_vec(&spec).unwrap()).expect("write spec");
}

/// What a client script printed.
#[derive(Debug, Default)]
pub struct ClientOutput {
    pub client: Value,
    /// (spec index, partition, offset) per acknowledged record.
    pub delivered: Vec<(usize, i32, i64)>,
    /// (partition, high watermark).
    pub watermarks: Vec<(i32, i64)>,
    /// (offset, record) as read back, in the order read.
    pub records: Vec<(i64, Rec)>,
}

fn b64_field(v: &Value, name: &str, line: &str) -> Option<Vec<u8>> {
    match &v[name] {
        Value::Null => None,
        Value::String(s) => Some(
            B64.decode(s)
                .unwrap_or_else(|e| panic!("bad base64 in {name} of {line}: {e}")),
        ),
        other => panic!("bad {name} {other} in {line}"),
    }
}

pub fn parse_output(stdout: &str) -> ClientOutput {
    let mut out = ClientOutput::default();
    for full_line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let line = &shorten(full_line, 300);
        let v: Value = serde_json::from_str(full_line)
            .unwrap_or_else(|e| panic!("client printed a line that is not JSON ({e}): {line}"));
        let int = |name: &str| {
            v[name]
                .as_i64()
                .unwrap_or_else(|| panic!("no integer {name} in {line}"))
        };
        match v["type"].as_str() {
            Some("client") => out.client = v.clone(),
            Some("delivered") => out.delivered.push((
                int("index") as usize,
                int("partition") as i32,
                int("offset"),
            )),
            Some("watermark") => out.watermarks.push((int("partition") as i32, int("high"))),
            Some("record") => {
                let headers = v["headers"]
                    .as_array()
                    .unwrap_or_else(|| panic!("no headers in {line}"))
                    .iter()
                    .map(|h| {
                        let k = h[0]
                            .as_str()
                            .unwrap_or_else(|| panic!("bad header key in {line}"));
                        let hv = match &h[1] {
                            Value::Null => None,
                            Value::String(s) => Some(B64.decode(s).expect("header base64")),
                            other => panic!("bad header value {other} in {line}"),
                        };
                        (k.to_string(), hv)
                    })
                    .collect();
                out.records.push((
                    int("offset"),
                    Rec {
                        partition: int("partition") as i32,
                        key: b64_field(&v, "key", line),
                        value: b64_field(&v, "value", line),
                        headers,
                    },
                ));
            }
            _ => panic!("unknown line from the client: {line}"),
        }
    }
    out
}

/// Checks a round trip: every record acknowledged once, on its partition, at
/// offsets 0, 1, 2... per partition in the order produced; the high
/// watermarks equal the counts; and the records read back, per partition,
/// are exactly the produced ones at those offsets, byte for byte.
pub fn check_round_trip(spec: &[Rec], out: &ClientOutput) -> Result<(), String> {
    let partitions = spec.iter().map(|r| r.partition).max().unwrap_or(0) + 1;
    let mut errors = Vec::new();

    // Acks.
    let mut ack = vec![None; spec.len()];
    for &(index, partition, offset) in &out.delivered {
        if index >= spec.len() {
            errors.push(format!("ack for unknown record #{index}"));
        } else if ack[index].replace((partition, offset)).is_some() {
            errors.push(format!("record #{index} acknowledged twice"));
        }
    }
    for p in 0..partitions {
        let in_partition = spec.iter().enumerate().filter(|(_, r)| r.partition == p);
        for (next, (i, r)) in in_partition.enumerate() {
            let next = next as i64;
            match ack[i] {
                None => errors.push(format!("record #{i} (partition {p}) never acknowledged")),
                Some((ap, ao)) if ap != p || ao != next => errors.push(format!(
                    "record #{i}: acknowledged at partition {ap} offset {ao}, expected partition {p} offset {next}: {}",
                    r.show()
                )),
                Some(_) => {}
            }
        }
    }

    // High watermarks.
    for p in 0..partitions {
        let expected = spec.iter().filter(|r| r.partition == p).count() as i64;
        match out.watermarks.iter().find(|(wp, _)| *wp == p) {
            Some(&(_, high)) if high == expected => {}
            Some(&(_, high)) => errors.push(format!(
                "partition {p}: high watermark {high}, expected {expected}"
            )),
            None => errors.push(format!("partition {p}: no high watermark reported")),
        }
    }

    // Records read back.
    for p in 0..partitions {
        let expected: Vec<(usize, &Rec)> = spec
            .iter()
            .enumerate()
            .filter(|(_, r)| r.partition == p)
            .collect();
        let got: Vec<&(i64, Rec)> = out
            .records
            .iter()
            .filter(|(_, r)| r.partition == p)
            .collect();
        for (pos, (offset, rec)) in got.iter().enumerate() {
            if *offset != pos as i64 {
                errors.push(format!(
                    "partition {p}: read back offset {offset} in position {pos}: offsets are not contiguous from 0"
                ));
                break;
            }
            match expected.get(pos) {
                None => {
                    errors.push(format!(
                        "partition {p} offset {offset}: unexpected extra record {}",
                        rec.show()
                    ));
                    break;
                }
                Some((i, want)) if *want != rec => {
                    errors.push(format!(
                        "partition {p} offset {offset}: expected record #{i}\n      {}\n  got {}",
                        want.show(),
                        rec.show()
                    ));
                }
                Some(_) => {}
            }
        }
        if got.len() < expected.len() {
            errors.push(format!(
                "partition {p}: read back {} records, expected {}",
                got.len(),
                expected.len()
            ));
        }
    }

    if errors.is_empty() {
        Ok(())
    } else {
        let n = errors.len();
        errors.truncate(20);
        Err(format!(
            "{n} mismatches (first {}):\n  {}",
            errors.len(),
            errors.join("\n  ")
        ))
    }
}

// --- Running the scripts ----------------------------------------------------

/// Which client, and how it produces.
#[derive(Clone, Debug)]
pub struct ClientRun {
    /// The interpreter and script arguments up to the common ones.
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `--create admin|auto`.
    pub create: &'static str,
    /// `--idempotence default|on|off`.
    pub idempotence: &'static str,
    /// `--compression default|none|gzip|...`.
    pub compression: &'static str,
}

impl ClientRun {
    /// `py_client.py --client NAME` under the venv's Python.
    pub fn python(client: &str) -> ClientRun {
        let c = ensure_installed();
        Self::python_with(&c.venv_python, client)
    }

    /// `py_client.py --client NAME` under Debian's /usr/bin/python3 (Debian's
    /// python3-confluent-kafka with librdkafka 2.0.2, python3-kafka 2.0.2).
    pub fn debian_python(client: &str) -> ClientRun {
        let c = ensure_installed();
        Self::python_with(&c.system_python, client)
    }

    fn python_with(python: &Path, client: &str) -> ClientRun {
        let c = ensure_installed();
        ClientRun {
            program: python.to_path_buf(),
            args: vec![
                c.scripts.join("py_client.py").display().to_string(),
                "--client".to_string(),
                client.to_string(),
            ],
            env: vec![
                ("PYTHONUNBUFFERED".into(), "1".into()),
                ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
            ],
            create: "admin",
            idempotence: "default",
            compression: "default",
        }
    }

    /// `node kafkajs_client.js`.
    pub fn kafkajs() -> ClientRun {
        let c = ensure_installed();
        ClientRun {
            program: PathBuf::from("node"),
            args: vec![c.scripts.join("kafkajs_client.js").display().to_string()],
            env: vec![
                ("NODE_PATH".into(), c.node_modules.display().to_string()),
                ("KAFKAJS_NO_PARTITIONER_WARNING".into(), "1".into()),
            ],
            create: "admin",
            idempotence: "default",
            compression: "default",
        }
    }

    pub fn create(mut self, how: &'static str) -> Self {
        self.create = how;
        self
    }

    pub fn idempotence(mut self, on: bool) -> Self {
        self.idempotence = if on { "on" } else { "off" };
        self
    }

    pub fn compression(mut self, codec: &'static str) -> Self {
        self.compression = codec;
        self
    }

    /// Starts a broker with `options` for this client: with topic
    /// auto-creation (3 partitions) when the client relies on it
    /// (`create("auto")`), otherwise with auto-creation off, so that the
    /// topic must come from the client's CreateTopics. Runs
    /// [`ClientRun::round_trip`] with `records`, then stops the broker
    /// cleanly (exit status 0).
    pub fn round_trip_on_new_broker(&self, options: BrokerOptions, topic: &str, records: &[Rec]) {
        let mut broker = if self.create == "auto" {
            Broker::start_with_auto_create(options)
        } else {
            Broker::start(options.with_override("auto.create.topics.enable", "false"))
        };
        self.round_trip(&broker, topic, records);
        broker.terminate();
    }

    /// Produces `records` to `topic` through `broker`, reads them back, and
    /// asserts the round trip ([`check_round_trip`]). Panics with the
    /// client's output (and, through the fixture, the broker's log).
    pub fn round_trip(&self, broker: &Broker, topic: &str, records: &[Rec]) -> ClientOutput {
        let partitions = records.iter().map(|r| r.partition).max().unwrap_or(0) + 1;
        let spec_file = tempfile::NamedTempFile::new().expect("spec file");
        write_spec(spec_file.path(), records);
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .args(["--bootstrap", &broker.bootstrap()])
            .args(["--topic", topic])
            .arg("--spec")
            .arg(spec_file.path())
            .args(["--partitions", &partitions.to_string()])
            .args(["--create", self.create])
            .args(["--idempotence", self.idempotence])
            .args(["--compression", self.compression])
            .args(["--timeout", &SCRIPT_TIMEOUT_S.to_string()])
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let run = run_with_timeout(cmd, CLIENT_TIMEOUT);
        run.assert_success();
        let out = parse_output(&run.stdout_text());
        if let Err(msg) = check_round_trip(records, &out) {
            panic!(
                "round trip through {} ({}) on {}: {msg}\n{}",
                self.args.join(" "),
                out.client,
                broker.bootstrap(),
                run.output_text()
            );
        }
        eprintln!(
            "{}: {} records round-tripped in {:?}",
            out.client,
            records.len(),
            run.elapsed
        );
        out
    }
}

/// kcat (the Debian package) produces `n` keyed records to `topic` and
/// consumes them back, with the security settings in `settings` (`-X`
/// pairs); the records must come back as sent.
pub fn kcat_round_trip(addr: &str, topic: &str, settings: &[(&str, String)], n: usize) {
    ensure_installed();
    let kcat = |args: &[&str], input: Option<Vec<u8>>| {
        let mut cmd = std::process::Command::new("kcat");
        // cargo's library path would put the rdkafka crate's librdkafka
        // (built without OpenSSL) before the system's.
        cmd.env_remove("LD_LIBRARY_PATH");
        cmd.args(["-b", addr, "-X", "broker.address.family=v4"]);
        for (k, v) in settings {
            cmd.arg("-X").arg(format!("{k}={v}"));
        }
        cmd.args(args);
        let run = run_with_input(cmd, input, Duration::from_secs(60));
        run.assert_success();
        run.stdout_text()
    };
    let sent: Vec<String> = (0..n).map(|i| format!("key-{i}:value-{i}")).collect();
    kcat(
        &["-P", "-t", topic, "-K", ":"],
        Some(format!("{}\n", sent.join("\n")).into_bytes()),
    );
    let got = kcat(
        &[
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-c",
            &n.to_string(),
            "-f",
            "%k:%s\n",
        ],
        None,
    );
    let mut got: Vec<&str> = got.lines().collect();
    got.sort();
    let mut want: Vec<&str> = sent.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(got, want, "kcat round trip on {topic}");
}
