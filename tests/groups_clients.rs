//! Consumer groups with the other real clients, each member its own
//! process (`tests/clients/py_group_member.py`, `kafkajs_group_member.js`):
//! kafka-python 3 and Debian's 2.0.2, confluent-kafka 2.16 and Debian's
//! (librdkafka 2.0.2), aiokafka and KafkaJS. One scenario per client:
//!
//! 1. three members over six partitions take two each, never one
//!    partition owned by two members (checked over the members' own
//!    assign/revoke reports, in time order), and read what is produced
//!    exactly once, committing as they go;
//! 2. a member killed with SIGKILL loses its partitions to the others
//!    within the session timeout (plus the rebalance), and a member that
//!    closes hands them over at once;
//! 3. the broker is killed with -9 and restarted under the last member,
//!    which carries on with no gap and no re-read; a new member of the
//!    group after that starts exactly at the committed offsets;
//! 4. a second group reads the whole topic independently.
//!
//! Members use a 6 s session timeout (Kafka's smallest by default) and
//! their client's other defaults; the broker's initial rebalance delay is
//! shortened so the scenario does not idle.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::broker::{kill_process_group, wait_timeout, Broker, BrokerOptions};
use common::clients::ensure_installed;
use common::rdk;
use serde_json::Value;

const SESSION_TIMEOUT_MS: u64 = 6000;
const PARTITIONS: i32 = 6;
const TOPIC: &str = "members";
/// Bound on any one step (joins, reads, restarts).
const STEP: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
enum Client {
    KafkaPython,
    KafkaPython2,
    Confluent,
    OldLibrdkafka,
    Aiokafka,
    KafkaJs,
}

fn member_command(client: Client) -> Command {
    let c = ensure_installed();
    let python = |python: &PathBuf, name: &str| {
        let mut cmd = Command::new(python);
        cmd.arg(c.scripts.join("py_group_member.py"))
            .args(["--client", name])
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME");
        cmd
    };
    match client {
        Client::KafkaPython => python(&c.venv_python, "kafka-python"),
        Client::KafkaPython2 => python(&c.system_python, "kafka-python"),
        Client::Confluent => python(&c.venv_python, "confluent"),
        Client::OldLibrdkafka => python(&c.system_python, "confluent"),
        Client::Aiokafka => python(&c.venv_python, "aiokafka"),
        Client::KafkaJs => {
            let mut cmd = Command::new("node");
            cmd.arg(c.scripts.join("kafkajs_group_member.js"))
                .env("NODE_PATH", &c.node_modules);
            cmd
        }
    }
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
        * 1000.0
}

/// A member process and what it has reported.
struct Member {
    name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    events: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
    /// When it was killed: it owns nothing from then on.
    killed_at: Option<f64>,
}

impl Member {
    fn spawn(client: Client, broker: &Broker, group: &str, name: &str) -> Member {
        let mut cmd = member_command(client);
        cmd.args(["--bootstrap", &broker.bootstrap()])
            .args(["--group", group, "--topic", TOPIC, "--name", name])
            .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()])
            .args(["--timeout", "300"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr_pipe = child.stderr.take().expect("stderr");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (ev, who) = (events.clone(), name.to_string());
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => ev.lock().expect("events").push(v),
                    Err(e) => eprintln!("{who}: not JSON ({e}): {line}"),
                }
            }
        });
        let err = stderr.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut e = err.lock().expect("stderr");
                e.push_str(&String::from_utf8_lossy(&buf[..n]));
                if e.len() > 64 << 10 {
                    let cut = e.len() - (32 << 10);
                    let cut = (cut..e.len()).find(|&i| e.is_char_boundary(i)).unwrap_or(0);
                    e.drain(..cut);
                }
            }
        });
        Member {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child: Some(child),
            events,
            stderr,
            killed_at: None,
        }
    }

    fn events(&self) -> Vec<Value> {
        self.events.lock().expect("events").clone()
    }

    fn of_type(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["type"] == kind)
            .collect()
    }

    /// What it owns now, by its own reports.
    fn assignment(&self) -> BTreeSet<i32> {
        if self.killed_at.is_some() {
            return BTreeSet::new();
        }
        let mut owned = BTreeSet::new();
        for e in self.events() {
            match e["type"].as_str() {
                Some("assigned") => owned = partitions(&e),
                Some("revoked") => {
                    for p in partitions(&e) {
                        owned.remove(&p);
                    }
                }
                _ => {}
            }
        }
        owned
    }

    fn records(&self) -> Vec<(i32, i64, String)> {
        self.of_type("record")
            .iter()
            .map(|e| {
                (
                    e["partition"].as_i64().expect("partition") as i32,
                    e["offset"].as_i64().expect("offset"),
                    e["value"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// The highest committed position per partition.
    fn committed(&self) -> BTreeMap<i32, i64> {
        let mut out = BTreeMap::new();
        for e in self.of_type("committed") {
            let p = e["partition"].as_i64().expect("partition") as i32;
            let o = e["offset"].as_i64().expect("offset");
            let v = out.entry(p).or_insert(o);
            *v = (*v).max(o);
        }
        out
    }

    fn describe(&self) -> String {
        let events = self.events();
        let tail: Vec<String> = events
            .iter()
            .rev()
            .filter(|e| e["type"] != "record" && e["type"] != "committed")
            .take(12)
            .map(|e| e.to_string())
            .collect();
        format!(
            "--- {} ({} events; last non-record events, newest first) ---\n{}\n--- {} stderr ---\n{}",
            self.name,
            events.len(),
            tail.join("\n"),
            self.name,
            self.stderr.lock().expect("stderr")
        )
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_process_group(child.id());
            let _ = child.wait();
            self.killed_at = Some(now_ms());
        }
    }

    /// Asks it to close (leaving the group) and waits for a clean exit.
    fn stop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"stop\n");
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        let status = wait_timeout(&mut child, Duration::from_secs(30));
        match status {
            Some(s) if s.success() => {}
            other => {
                kill_process_group(child.id());
                let _ = child.wait();
                panic!(
                    "{} did not close cleanly ({other:?})\n{}",
                    self.name,
                    self.describe()
                );
            }
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_process_group(child.id());
            let _ = child.wait();
        }
    }
}

fn partitions(e: &Value) -> BTreeSet<i32> {
    e["partitions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_i64())
                .map(|p| p as i32)
                .collect()
        })
        .unwrap_or_default()
}

/// Replays every member's assign/revoke reports (and kills) in time order
/// and panics if a partition was ever owned by two members at once.
fn assert_never_shared(members: &[&Member]) {
    let mut timeline: Vec<(f64, usize, &str, BTreeSet<i32>)> = Vec::new();
    for (i, m) in members.iter().enumerate() {
        for e in m.events() {
            let kind = match e["type"].as_str() {
                Some("assigned") => "assigned",
                Some("revoked") => "revoked",
                _ => continue,
            };
            timeline.push((e["t"].as_f64().expect("t"), i, kind, partitions(&e)));
        }
        if let Some(t) = m.killed_at {
            timeline.push((t, i, "killed", BTreeSet::new()));
        }
    }
    timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut owner: BTreeMap<i32, usize> = BTreeMap::new();
    for (t, i, kind, ps) in timeline {
        match kind {
            "assigned" => {
                owner.retain(|_, o| *o != i);
                for p in ps {
                    if let Some(&other) = owner.get(&p) {
                        panic!(
                            "at {t:.0} ms partition {p} was assigned to {} while {} owned it",
                            members[i].name, members[other].name
                        );
                    }
                    owner.insert(p, i);
                }
            }
            "revoked" => owner.retain(|p, o| !(*o == i && ps.contains(p))),
            _ => owner.retain(|_, o| *o != i),
        }
    }
}

/// Waits until `done` holds, checking meanwhile that no partition is
/// shared; panics with every member's reports after `STEP`.
fn wait_for(members: &[&Member], what: &str, done: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        assert_never_shared(members);
        if done() {
            return start.elapsed();
        }
        if start.elapsed() > STEP {
            let reports: Vec<String> = members.iter().map(|m| m.describe()).collect();
            panic!(
                "{what}: not reached within {STEP:?}; assignments {:?}\n{}",
                members
                    .iter()
                    .map(|m| (m.name.clone(), m.assignment()))
                    .collect::<Vec<_>>(),
                reports.join("\n")
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Produces `per_partition` records to each partition, values
/// `"{tag}-{partition}-{i}"`; returns (partition, offset, value).
fn produce(broker: &Broker, tag: &str, per_partition: usize) -> Vec<(i32, i64, String)> {
    let p = rdk::producer(&broker.bootstrap(), &[]);
    let mut recs = Vec::new();
    for i in 0..per_partition {
        for part in 0..PARTITIONS {
            recs.push(rdk::Rec {
                partition: part,
                timestamp: rdk::now_ms(),
                key: None,
                value: Some(format!("{tag}-{part}-{i}").into_bytes()),
                headers: Vec::new(),
            });
        }
    }
    rdk::produce_all(&p, TOPIC, &recs)
        .into_iter()
        .map(|a| {
            let v = String::from_utf8(a.rec.value.clone().unwrap_or_default()).expect("utf-8");
            (a.rec.partition, a.offset, v)
        })
        .collect()
}

fn read_by(members: &[&Member]) -> usize {
    members.iter().map(|m| m.records().len()).sum()
}

/// Every produced record was read exactly once by the members together,
/// with its value.
fn assert_exactly_once(members: &[&Member], produced: &[(i32, i64, String)]) {
    let mut read: BTreeMap<(i32, i64), (String, String)> = BTreeMap::new();
    for m in members {
        for (p, o, v) in m.records() {
            if let Some((first, _)) = read.insert((p, o), (m.name.clone(), v)) {
                panic!("{p}/{o} read twice: by {first} and {}", m.name);
            }
        }
    }
    for (p, o, v) in produced {
        match read.get(&(*p, *o)) {
            Some((_, got)) => assert_eq!(got, v, "value at {p}/{o}"),
            None => panic!("{p}/{o} ({v}) never read"),
        }
    }
    assert_eq!(
        read.len(),
        produced.len(),
        "records read that were not produced"
    );
}

fn committed_everywhere(members: &[&Member], upto: i64) -> bool {
    let mut max: BTreeMap<i32, i64> = BTreeMap::new();
    for m in members {
        for (p, o) in m.committed() {
            let v = max.entry(p).or_insert(o);
            *v = (*v).max(o);
        }
    }
    (0..PARTITIONS).all(|p| max.get(&p).copied().unwrap_or(0) >= upto)
}

// Proves the four steps of the module documentation for one client.
fn scenario(client: Client, options: BrokerOptions) {
    let mut broker = Broker::start(
        options
            .with_override("auto.create.topics.enable", "false")
            .with_override("group.initial.rebalance.delay.ms", 300),
    );
    let admin = rdk::admin(&broker.bootstrap());
    rdk::create_topic(&admin, TOPIC, PARTITIONS, &[]);
    let g = "group-one";
    let m1 = Member::spawn(client, &broker, g, "m1");
    let mut m2 = Member::spawn(client, &broker, g, "m2");
    let mut m3 = Member::spawn(client, &broker, g, "m3");

    // 1. Three members, two partitions each; what is produced is read once.
    {
        let all = [&m1, &m2, &m3];
        let took = wait_for(&all, "three members with two partitions each", || {
            all.iter().all(|m| m.assignment().len() == 2)
        });
        eprintln!("{client:?}: three members settled in {took:?}");
    }
    let mut produced = produce(&broker, "a", 10);
    {
        let all = [&m1, &m2, &m3];
        wait_for(&all, "batch a read and committed", || {
            read_by(&all) >= produced.len() && committed_everywhere(&all, 10)
        });
        assert_exactly_once(&all, &produced);
    }

    // 2. A crash: its partitions move within the session timeout.
    m3.kill9();
    {
        let all = [&m1, &m2, &m3];
        let took = wait_for(&all, "two members own all six after a crash", || {
            m1.assignment().len() + m2.assignment().len() == 6 && m1.assignment().len() == 3
        });
        eprintln!("{client:?}: partitions moved {took:?} after a member was killed");
        let bound = Duration::from_millis(SESSION_TIMEOUT_MS) + Duration::from_secs(6);
        assert!(
            took < bound,
            "{client:?}: took {took:?}, more than {bound:?}"
        );
    }
    //    A clean close: they move at once.
    m2.stop();
    {
        let all = [&m1, &m2, &m3];
        let took = wait_for(&all, "the last member owns all six", || {
            m1.assignment().len() == 6
        });
        eprintln!("{client:?}: partitions moved {took:?} after a member left");
        assert!(
            took < Duration::from_millis(SESSION_TIMEOUT_MS),
            "{client:?}: a leave waited {took:?}"
        );
    }
    produced.extend(produce(&broker, "b", 10));
    {
        let all = [&m1, &m2, &m3];
        wait_for(&all, "batch b read and committed", || {
            read_by(&all) >= produced.len() && committed_everywhere(&all, 20)
        });
    }

    // 3. The broker crashes under the last member, which carries on.
    broker.kill9();
    broker.restart();
    produced.extend(produce(&broker, "c", 10));
    {
        let all = [&m1, &m2, &m3];
        wait_for(&all, "batch c read and committed after the restart", || {
            read_by(&all) >= produced.len() && committed_everywhere(&all, 30)
        });
        assert_exactly_once(&all, &produced);
    }
    let mut m1 = m1;
    m1.stop();
    //    A new member starts where the group's commits say.
    let m4 = Member::spawn(client, &broker, g, "m4");
    {
        let all = [&m1, &m2, &m3, &m4];
        wait_for(&all, "the new member owns all six", || {
            m4.assignment().len() == 6
        });
    }
    produced.extend(produce(&broker, "d", 1));
    {
        let all = [&m1, &m2, &m3, &m4];
        wait_for(&all, "batch d read by the new member", || {
            read_by(&all) >= produced.len()
        });
        assert_exactly_once(&all, &produced);
        assert_eq!(
            m4.records().len(),
            PARTITIONS as usize,
            "m4 re-read something"
        );
    }

    // 4. Another group reads everything on its own.
    let other = Member::spawn(client, &broker, "group-two", "other");
    wait_for(&[&other], "the other group reads everything", || {
        other.records().len() >= produced.len()
    });
    assert_exactly_once(&[&other], &produced);
    drop(m4);
}

fn single() -> BrokerOptions {
    BrokerOptions::single_shared(2)
}

fn per_shard() -> BrokerOptions {
    BrokerOptions::per_shard(2)
}

#[test]
fn kafka_python_group_single_listener() {
    scenario(Client::KafkaPython, single());
}

#[test]
fn kafka_python_group_per_shard_listeners() {
    scenario(Client::KafkaPython, per_shard());
}

#[test]
fn kafka_python2_group_single_listener() {
    scenario(Client::KafkaPython2, single());
}

#[test]
fn confluent_group_single_listener() {
    scenario(Client::Confluent, single());
}

#[test]
fn confluent_group_per_shard_listeners() {
    scenario(Client::Confluent, per_shard());
}

#[test]
fn old_librdkafka_group_single_listener() {
    scenario(Client::OldLibrdkafka, single());
}

#[test]
fn aiokafka_group_single_listener() {
    scenario(Client::Aiokafka, single());
}

#[test]
fn aiokafka_group_per_shard_listeners() {
    scenario(Client::Aiokafka, per_shard());
}

#[test]
fn kafkajs_group_single_listener() {
    scenario(Client::KafkaJs, single());
}

#[test]
fn kafkajs_group_per_shard_listeners() {
    scenario(Client::KafkaJs, per_shard());
}
