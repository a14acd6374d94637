//! Consumer groups driven by librdkafka (the rdkafka crate) against the
//! real broker: subscribe()-style consumers sharing partitions with no
//! partition owned twice, members leaving and crashing, committed offsets
//! (with their metadata strings) surviving a broker kill -9, independent
//! groups, auto.offset.reset, cooperative-sticky assignment and static
//! membership. Consumers use Kafka's smallest default-allowed session
//! timeout (6 s) with librdkafka's other defaults; the broker's initial
//! rebalance delay is shortened so tests do not idle.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::broker::{Broker, BrokerOptions};
use common::rdk;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

const SESSION_TIMEOUT_MS: u64 = 6000;
const PARTITIONS: i32 = 6;
/// Bound on waiting for a group to settle.
const SETTLE: Duration = Duration::from_secs(40);

fn options(per_shard: bool) -> BrokerOptions {
    let o = if per_shard {
        BrokerOptions::per_shard(2)
    } else {
        BrokerOptions::single_shared(2)
    };
    o.with_override("auto.create.topics.enable", "false")
        .with_override("group.initial.rebalance.delay.ms", 300)
}

fn consumer(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c = rdk::base_config(bootstrap);
    c.set("group.id", group)
        .set("session.timeout.ms", SESSION_TIMEOUT_MS.to_string())
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    let c: BaseConsumer = c.create().expect("group consumer");
    c
}

fn subscribed(bootstrap: &str, group: &str, topic: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let c = consumer(bootstrap, group, extra);
    c.subscribe(&[topic]).expect("subscribe");
    c
}

/// A consumed record: partition, offset, value.
type Seen = (i32, i64, Vec<u8>);

/// A group member as the test drives it: its consumer and what it read.
struct Member {
    name: String,
    c: BaseConsumer,
    seen: Vec<Seen>,
}

impl Member {
    fn new(name: &str, c: BaseConsumer) -> Member {
        Member {
            name: name.to_string(),
            c,
            seen: Vec::new(),
        }
    }

    fn assigned(&self) -> BTreeSet<i32> {
        self.c
            .assignment()
            .expect("assignment")
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect()
    }

    /// Polls once; records a message, panics on a consumer error.
    fn poll(&mut self, wait: Duration) {
        match self.c.poll(wait) {
            None => {}
            Some(Ok(m)) => self.seen.push((
                m.partition(),
                m.offset(),
                m.payload().unwrap_or_default().to_vec(),
            )),
            Some(Err(e)) => eprintln!("{}: consumer error (retried): {e}", self.name),
        }
    }

    /// Commits the position reached in every partition read, synchronously,
    /// with a metadata string naming the partition and offset. A failure
    /// (the broker restarting) is reported; the next call retries.
    fn commit_with_metadata(&self, topic: &str) -> bool {
        let mut tpl = TopicPartitionList::new();
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for (p, o, _) in &self.seen {
            let e = next.entry(*p).or_insert(0);
            *e = (*e).max(o + 1);
        }
        for (p, o) in next {
            let mut e = tpl.add_partition(topic, p);
            e.set_offset(Offset::Offset(o)).expect("offset");
            e.set_metadata(metadata_for(p, o));
        }
        if tpl.count() == 0 {
            return true;
        }
        match self.c.commit(&tpl, CommitMode::Sync) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("{}: commit failed (retried): {e}", self.name);
                false
            }
        }
    }

    /// Commits until a commit succeeds (bounded).
    fn commit_until_done(&mut self, topic: &str) {
        let start = Instant::now();
        while !self.commit_with_metadata(topic) {
            assert!(
                start.elapsed() < SETTLE,
                "{}: no commit succeeded",
                self.name
            );
            self.poll(Duration::from_millis(100));
        }
    }
}

fn metadata_for(partition: i32, offset: i64) -> String {
    format!("checkpoint p{partition} o{offset} ✓")
}

/// Polls every member until `done` holds, asserting after each round that
/// no partition is assigned to two members. Returns the time it took.
fn pump(
    members: &mut [&mut Member],
    what: &str,
    done: impl Fn(&[&mut Member]) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        for m in members.iter_mut() {
            m.poll(Duration::from_millis(20));
        }
        assert_disjoint(members);
        if done(members) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < SETTLE,
            "{what}: not reached within {SETTLE:?}; assignments {:?}",
            members
                .iter()
                .map(|m| (m.name.clone(), m.assigned()))
                .collect::<Vec<_>>()
        );
    }
}

fn assert_disjoint(members: &[&mut Member]) {
    let mut owner: BTreeMap<i32, &str> = BTreeMap::new();
    for m in members {
        for p in m.assigned() {
            if let Some(other) = owner.insert(p, &m.name) {
                panic!("partition {p} is assigned to both {other} and {}", m.name);
            }
        }
    }
}

/// Every partition assigned, each member holding `per_member` of them.
fn balanced(members: &[&mut Member], per_member: &[usize]) -> bool {
    let all: BTreeSet<i32> = members.iter().flat_map(|m| m.assigned()).collect();
    all.len() == PARTITIONS as usize
        && members
            .iter()
            .zip(per_member)
            .all(|(m, n)| m.assigned().len() == *n)
}

fn create_topic(broker: &Broker, topic: &str) {
    let admin = rdk::admin(&broker.bootstrap());
    rdk::create_topic(&admin, topic, PARTITIONS, &[]);
}

/// Produces `per_partition` records to every partition; returns the
/// acknowledged records.
fn produce(broker: &Broker, topic: &str, tag: &str, per_partition: usize) -> Vec<rdk::Acked> {
    let p = rdk::producer(&broker.bootstrap(), &[]);
    let parts: Vec<i32> = (0..PARTITIONS).collect();
    let recs = rdk::records(
        tag,
        per_partition * PARTITIONS as usize,
        &parts,
        rdk::now_ms(),
    );
    rdk::produce_all(&p, topic, &recs)
}

fn total_seen(members: &[&mut Member]) -> usize {
    members.iter().map(|m| m.seen.len()).sum()
}

/// Every (partition, offset) in `acked` was read exactly once across
/// `members`, with the value that was produced.
fn assert_read_exactly_once(members: &[&mut Member], acked: &[rdk::Acked]) {
    let mut read: BTreeMap<(i32, i64), (&str, &Vec<u8>)> = BTreeMap::new();
    for m in members {
        for (p, o, v) in &m.seen {
            if let Some((first, _)) = read.insert((*p, *o), (&m.name, v)) {
                panic!("{p}/{o} read twice (by {first} and {})", m.name);
            }
        }
    }
    for a in acked {
        let (_, v) = read
            .get(&(a.rec.partition, a.offset))
            .unwrap_or_else(|| panic!("{}/{} never read", a.rec.partition, a.offset));
        assert_eq!(
            v.as_slice(),
            a.rec.value.as_deref().unwrap_or_default(),
            "value at {}/{}",
            a.rec.partition,
            a.offset
        );
    }
    assert_eq!(
        read.len(),
        acked.len(),
        "records read beyond those produced"
    );
}

// --- Three consumers, six partitions -----------------------------------------

// Proves three members split six partitions two each, never sharing one,
// and read every record produced exactly once.
fn three_share_six(per_shard: bool) {
    let broker = Broker::start(options(per_shard));
    let topic = "share";
    create_topic(&broker, topic);
    let b = broker.bootstrap();
    let mut m1 = Member::new("c1", subscribed(&b, "g-share", topic, &[]));
    let mut m2 = Member::new("c2", subscribed(&b, "g-share", topic, &[]));
    let mut m3 = Member::new("c3", subscribed(&b, "g-share", topic, &[]));
    let mut members = [&mut m1, &mut m2, &mut m3];
    let took = pump(
        &mut members,
        "three members with two partitions each",
        |ms| balanced(ms, &[2, 2, 2]),
    );
    eprintln!("three members settled in {took:?}");
    let acked = produce(&broker, topic, "share", 50);
    pump(&mut members, "every record read", |ms| {
        total_seen(ms) >= acked.len()
    });
    // A little longer: nothing more arrives, and nothing is read twice.
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_millis(500) {
        for m in members.iter_mut() {
            m.poll(Duration::from_millis(20));
        }
    }
    assert_read_exactly_once(&members, &acked);
    for m in &members {
        let owned = m.assigned();
        assert!(
            m.seen.iter().all(|(p, _, _)| owned.contains(p)),
            "{} read a partition it does not own",
            m.name
        );
    }
}

#[test]
fn three_consumers_share_six_partitions_single_listener() {
    three_share_six(false);
}

#[test]
fn three_consumers_share_six_partitions_per_shard_listeners() {
    three_share_six(true);
}

// --- A member leaves; a member crashes -----------------------------------------

// Proves a member that closes (LeaveGroup) hands its partitions over
// without waiting for the session timeout.
#[test]
fn leaving_member_hands_its_partitions_over_at_once() {
    let broker = Broker::start(options(false));
    let topic = "leave";
    create_topic(&broker, topic);
    let b = broker.bootstrap();
    let mut m1 = Member::new("c1", subscribed(&b, "g-leave", topic, &[]));
    let mut m2 = Member::new("c2", subscribed(&b, "g-leave", topic, &[]));
    let m3 = Member::new("c3", subscribed(&b, "g-leave", topic, &[]));
    let mut m3 = Some(m3);
    {
        let mut members: Vec<&mut Member> = vec![&mut m1, &mut m2];
        members.push(m3.as_mut().expect("c3"));
        pump(&mut members, "three members settled", |ms| {
            balanced(ms, &[2, 2, 2])
        });
    }
    // Dropping the consumer closes it: librdkafka sends LeaveGroup.
    drop(m3.take());
    let mut members = [&mut m1, &mut m2];
    let took = pump(&mut members, "two members own all six", |ms| {
        balanced(ms, &[3, 3])
    });
    eprintln!("partitions moved {took:?} after the member left");
    assert!(
        took < Duration::from_millis(SESSION_TIMEOUT_MS),
        "a leave must not wait for the session timeout ({took:?})"
    );
}

/// kcat in balanced-consumer mode: a librdkafka group member in another
/// process, to be killed with SIGKILL.
fn kcat_member(bootstrap: &str, group: &str, topic: &str) -> Child {
    common::clients::ensure_installed();
    Command::new("kcat")
        .args(["-b", bootstrap, "-G", group, topic, "-q", "-o", "beginning"])
        .args(["-X", &format!("session.timeout.ms={SESSION_TIMEOUT_MS}")])
        .args(["-X", "broker.address.family=v4"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kcat")
}

// Proves the partitions of a member killed with SIGKILL move to the
// others within the session timeout (plus one heartbeat and the rebalance).
fn crashed_member(per_shard: bool) {
    let broker = Broker::start(options(per_shard));
    let topic = "crash";
    create_topic(&broker, topic);
    let b = broker.bootstrap();
    let mut m1 = Member::new("c1", subscribed(&b, "g-crash", topic, &[]));
    let mut m2 = Member::new("c2", subscribed(&b, "g-crash", topic, &[]));
    let mut kcat = kcat_member(&b, "g-crash", topic);
    let mut members = [&mut m1, &mut m2];
    // kcat holds the two partitions the others do not.
    pump(&mut members, "two members with two partitions each", |ms| {
        ms.iter().all(|m| m.assigned().len() == 2)
    });
    let settled = Instant::now();
    pump(&mut members, "assignment stays put", |_| {
        settled.elapsed() > Duration::from_secs(1)
    });
    assert!(members.iter().all(|m| m.assigned().len() == 2));
    kcat.kill().expect("kill kcat");
    kcat.wait().expect("reap kcat");
    let took = pump(&mut members, "the survivors own all six", |ms| {
        balanced(ms, &[3, 3])
    });
    eprintln!("partitions moved {took:?} after the member was killed");
    let bound = Duration::from_millis(SESSION_TIMEOUT_MS) + Duration::from_secs(4);
    assert!(
        took < bound,
        "partitions of a crashed member moved after {took:?}, beyond {bound:?}"
    );
}

#[test]
fn crashed_member_partitions_move_within_the_session_timeout_single_listener() {
    crashed_member(false);
}

#[test]
fn crashed_member_partitions_move_within_the_session_timeout_per_shard_listeners() {
    crashed_member(true);
}

// --- Committed offsets across kill -9 -------------------------------------------------

// Proves commits (with metadata) survive a broker kill -9: the member
// carries on with no gap and no re-read, and a new member after a second
// crash starts at the committed offsets.
fn offsets_survive_kill9(per_shard: bool) {
    let mut broker = Broker::start(options(per_shard));
    let topic = "durable";
    create_topic(&broker, topic);
    let b = broker.bootstrap();
    let first = produce(&broker, topic, "before", 40);
    let mut m = Member::new("c1", subscribed(&b, "g-durable", topic, &[]));
    // Read about half, committing (with metadata) after every poll.
    {
        let mut members = [&mut m];
        pump(&mut members, "half the records read", |ms| {
            ms[0].commit_with_metadata(topic);
            total_seen(ms) >= first.len() / 2
        });
    }
    m.commit_until_done(topic);
    let committed_before: BTreeMap<i32, i64> = committed(&m.c, topic);
    broker.kill9();
    broker.restart();
    // The same consumer carries on through the restart: it must neither
    // skip nor re-read anything.
    let second = produce(&broker, topic, "after", 20);
    let all: Vec<rdk::Acked> = first.iter().chain(second.iter()).cloned().collect();
    {
        let mut members = [&mut m];
        pump(&mut members, "every record read once", |ms| {
            ms[0].commit_with_metadata(topic);
            total_seen(ms) >= all.len()
        });
        assert_read_exactly_once(&members, &all);
    }
    m.commit_until_done(topic);
    // What was committed before the crash was there after it, metadata
    // included.
    let tpl =
        m.c.committed_offsets(
            {
                let mut t = TopicPartitionList::new();
                for p in 0..PARTITIONS {
                    t.add_partition(topic, p);
                }
                t
            },
            rdk::TIMEOUT,
        )
        .expect("committed");
    for e in tpl.elements() {
        let Offset::Offset(o) = e.offset() else {
            panic!("partition {} has no committed offset", e.partition())
        };
        assert_eq!(o, 60, "partition {}: committed offset", e.partition());
        assert_eq!(e.metadata(), metadata_for(e.partition(), o), "metadata");
    }
    assert!(
        !committed_before.is_empty(),
        "something was committed before the crash"
    );
    drop(m);
    // A new member of the group after a second crash starts exactly at the
    // committed offsets: it reads only what is produced now.
    broker.kill9();
    broker.restart();
    let third = produce(&broker, topic, "third", 5);
    let mut fresh = Member::new("c2", subscribed(&b, "g-durable", topic, &[]));
    let mut members = [&mut fresh];
    pump(&mut members, "the new member reads the new records", |ms| {
        total_seen(ms) >= third.len()
    });
    assert_read_exactly_once(&members, &third);
}

fn committed(c: &BaseConsumer, topic: &str) -> BTreeMap<i32, i64> {
    let mut t = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        t.add_partition(topic, p);
    }
    c.committed_offsets(t, rdk::TIMEOUT)
        .expect("committed")
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

#[test]
fn committed_offsets_survive_kill9_single_listener() {
    offsets_survive_kill9(false);
}

#[test]
fn committed_offsets_survive_kill9_per_shard_listeners() {
    offsets_survive_kill9(true);
}

// --- Independent groups, auto.offset.reset -------------------------------------------

// Proves two groups read one topic independently of each other's commits.
#[test]
fn two_groups_read_one_topic_independently() {
    let broker = Broker::start(options(false));
    let topic = "two-groups";
    create_topic(&broker, topic);
    let b = broker.bootstrap();
    let acked = produce(&broker, topic, "two", 20);
    let mut a = Member::new("a", subscribed(&b, "g-a", topic, &[]));
    let mut members = [&mut a];
    pump(&mut members, "group a reads everything", |ms| {
        total_seen(ms) >= acked.len()
    });
    assert_read_exactly_once(&members, &acked);
    a.commit_until_done(topic);
    // Group b starts from the beginning regardless of a's commits.
    let mut b1 = Member::new("b1", subscribed(&b, "g-b", topic, &[]));
    let mut b2 = Member::new("b2", subscribed(&b, "g-b", topic, &[]));
    let mut members = [&mut b1, &mut b2];
    pump(&mut members, "group b reads everything", |ms| {
        total_seen(ms) >= acked.len()
    });
    assert_read_exactly_once(&members, &acked);
    assert!(
        committed(&b1.c, topic).is_empty(),
        "group b committed nothing"
    );
    assert_eq!(committed(&a.c, topic).len(), PARTITIONS as usize);
}

// Proves auto.offset.reset=latest for a group without commits starts at
// the end.
#[test]
fn auto_offset_reset_latest_reads_only_new_records() {
    let broker = Broker::start(options(false));
    let topic = "latest";
    create_topic(&broker, topic);
    let b = broker.bootstrap();
    let old = produce(&broker, topic, "old", 10);
    assert!(!old.is_empty());
    let mut m = Member::new(
        "c1",
        subscribed(&b, "g-latest", topic, &[("auto.offset.reset", "latest")]),
    );
    let mut members = [&mut m];
    pump(&mut members, "all six assigned", |ms| {
        ms[0].assigned().len() == PARTITIONS as usize
    });
    // The positions are resolved once fetching starts; give it a moment.
    let t = Instant::now();
    pump(&mut members, "settled", |_| {
        t.elapsed() > Duration::from_secs(2)
    });
    let new = produce(&broker, topic, "new", 3);
    pump(&mut members, "new records read", |ms| {
        total_seen(ms) >= new.len()
    });
    assert_read_exactly_once(&members, &new);
}

// --- cooperative-sticky ---------------------------------------------------------------

// Proves librdkafka's cooperative-sticky assignor works: the group agrees
// on it, and when a member leaves the others keep what they had.
#[test]
fn cooperative_sticky_moves_only_what_it_must() {
    let broker = Broker::start(options(true));
    let topic = "coop";
    create_topic(&broker, topic);
    let b = broker.bootstrap();
    let coop = [("partition.assignment.strategy", "cooperative-sticky")];
    let mut m1 = Member::new("c1", subscribed(&b, "g-coop", topic, &coop));
    let mut m2 = Member::new("c2", subscribed(&b, "g-coop", topic, &coop));
    let m3 = Member::new("c3", subscribed(&b, "g-coop", topic, &coop));
    let mut m3 = Some(m3);
    {
        let mut members: Vec<&mut Member> = vec![&mut m1, &mut m2];
        members.push(m3.as_mut().expect("c3"));
        pump(&mut members, "three cooperative members settled", |ms| {
            balanced(ms, &[2, 2, 2])
        });
    }
    let groups =
        m1.c.fetch_group_list(Some("g-coop"), rdk::TIMEOUT)
            .expect("describe group");
    let g = &groups.groups()[0];
    assert_eq!(g.protocol(), "cooperative-sticky");
    assert_eq!(g.state(), "Stable");
    assert_eq!(g.members().len(), 3);
    let before1 = m1.assigned();
    let before2 = m2.assigned();
    drop(m3.take());
    let acked = produce(&broker, topic, "coop", 10);
    let mut members = [&mut m1, &mut m2];
    pump(&mut members, "two members own all six", |ms| {
        balanced(ms, &[3, 3])
    });
    // Sticky: each survivor kept what it had.
    assert!(m1.assigned().is_superset(&before1), "c1 lost a partition");
    assert!(m2.assigned().is_superset(&before2), "c2 lost a partition");
    let mut members = [&mut m1, &mut m2];
    pump(&mut members, "every record read", |ms| {
        total_seen(ms) >= acked.len()
    });
    assert_read_exactly_once(&members, &acked);
}

// --- Static membership ---------------------------------------------------------------

// Proves a static member (group.instance.id) that restarts gets its
// partitions back without disturbing the other members.
#[test]
fn static_member_rejoins_without_a_rebalance() {
    let broker = Broker::start(options(false));
    let topic = "static";
    create_topic(&broker, topic);
    let b = broker.bootstrap();
    let stat = |i: &str| {
        subscribed(
            &b,
            "g-static",
            topic,
            &[("group.instance.id", i), ("session.timeout.ms", "10000")],
        )
    };
    let mut m1 = Member::new("s1", stat("instance-1"));
    let mut m2 = Member::new("s2", stat("instance-2"));
    let m3 = Member::new("s3", stat("instance-3"));
    let mut m3 = Some(m3);
    {
        let mut members: Vec<&mut Member> = vec![&mut m1, &mut m2];
        members.push(m3.as_mut().expect("s3"));
        pump(&mut members, "three static members settled", |ms| {
            balanced(ms, &[2, 2, 2])
        });
    }
    let owned3 = m3.as_ref().expect("s3").assigned();
    let (owned1, owned2) = (m1.assigned(), m2.assigned());
    // A static member's close does not leave the group; its replacement
    // with the same instance id takes its place.
    drop(m3.take());
    let mut m3 = Member::new("s3'", stat("instance-3"));
    let mut members = [&mut m1, &mut m2, &mut m3];
    pump(
        &mut members,
        "the new instance owns the old partitions",
        |ms| ms[2].assigned() == owned3,
    );
    // The others were never disturbed, and stay undisturbed.
    let t = Instant::now();
    pump(&mut members, "no rebalance follows", |ms| {
        assert_eq!(ms[0].assigned(), owned1, "s1's assignment changed");
        assert_eq!(ms[1].assigned(), owned2, "s2's assignment changed");
        t.elapsed() > Duration::from_secs(3)
    });
    let groups =
        m1.c.fetch_group_list(Some("g-static"), rdk::TIMEOUT)
            .expect("describe group");
    assert_eq!(groups.groups()[0].state(), "Stable");
    assert_eq!(groups.groups()[0].members().len(), 3);
}

// --- The `shardlog groups` subcommand ------------------------------------------------

fn groups_command(broker: &Broker, extra: &[&str]) -> String {
    let out = Command::new(common::broker::binary())
        .args(["groups", "--bootstrap", &broker.bootstrap()])
        .args(extra)
        .output()
        .expect("run shardlog groups");
    assert!(
        out.status.success(),
        "shardlog groups failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

// Proves `shardlog groups` reports the members with their assignments, the
// committed offsets with their metadata, the log end offsets and the lag,
// through the coordinator of a per-shard broker.
#[test]
fn groups_subcommand_reports_members_offsets_and_lag() {
    let broker = Broker::start(options(true));
    let topic = "report";
    create_topic(&broker, topic);
    let b = broker.bootstrap();
    let acked = produce(&broker, topic, "report", 10);
    let mut m1 = Member::new("c1", subscribed(&b, "g-report", topic, &[]));
    let mut m2 = Member::new("c2", subscribed(&b, "g-report", topic, &[]));
    let mut members = [&mut m1, &mut m2];
    pump(&mut members, "everything read", |ms| {
        balanced(ms, &[3, 3]) && total_seen(ms) >= acked.len()
    });
    m1.commit_until_done(topic);
    m2.commit_until_done(topic);
    // Five more records per partition: a lag of 30.
    produce(&broker, topic, "later", 5);
    let json: serde_json::Value =
        serde_json::from_str(&groups_command(&broker, &["--json"])).expect("JSON report");
    let groups = json.as_array().expect("array of groups");
    assert_eq!(groups.len(), 1, "{json}");
    let g = &groups[0];
    assert_eq!(g["group"], "g-report");
    assert_eq!(g["state"], "Stable");
    assert_eq!(g["protocol_type"], "consumer");
    assert_eq!(g["members"].as_array().unwrap().len(), 2);
    let mut assigned: Vec<i64> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| {
            let a = m["assignment"].as_array().unwrap();
            assert_eq!(a.len(), 1, "one topic per member: {m}");
            assert_eq!(a[0][0], topic);
            a[0][1].as_array().unwrap().clone()
        })
        .map(|p| p.as_i64().unwrap())
        .collect();
    assigned.sort();
    assert_eq!(
        assigned,
        (0..6).collect::<Vec<_>>(),
        "every partition assigned once"
    );
    let parts = g["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 6);
    for p in parts {
        let n = p["partition"].as_i64().unwrap() as i32;
        assert_eq!(p["committed"], 10, "{p}");
        assert_eq!(p["log_end"], 15, "{p}");
        assert_eq!(p["lag"], 5, "{p}");
        assert_eq!(p["metadata"], metadata_for(n, 10), "{p}");
        assert!(p["owner"].is_string(), "{p}");
    }
    assert_eq!(g["total_lag"], 30);
    // The table form says the same.
    let text = groups_command(&broker, &["--group", "g-report"]);
    assert!(
        text.contains("GROUP g-report  state=Stable  protocol=consumer/range  members=2"),
        "{text}"
    );
    assert!(text.contains("lag=30"), "{text}");
    assert!(
        text.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.get(..5) == Some(&["report", "0", "10", "15", "5"][..])
        }),
        "{text}"
    );
}

// --- Clean shutdown with members connected ------------------------------------------

// Proves a broker stopped with SIGTERM while a group is active exits
// promptly (waiting JoinGroup/SyncGroup requests are answered), and that
// after the restart the group carries on with no gap and no re-read.
#[test]
fn sigterm_with_an_active_group_then_the_group_resumes() {
    let mut broker = Broker::start(options(false));
    let topic = "sigterm";
    create_topic(&broker, topic);
    let b = broker.bootstrap();
    let first = produce(&broker, topic, "first", 10);
    let mut m1 = Member::new("c1", subscribed(&b, "g-sigterm", topic, &[]));
    let mut m2 = Member::new("c2", subscribed(&b, "g-sigterm", topic, &[]));
    {
        let mut members = [&mut m1, &mut m2];
        pump(&mut members, "everything read and committed", |ms| {
            ms.iter().for_each(|m| {
                m.commit_with_metadata(topic);
            });
            balanced(ms, &[3, 3]) && total_seen(ms) >= first.len()
        });
    }
    m1.commit_until_done(topic);
    m2.commit_until_done(topic);
    let t = Instant::now();
    broker.terminate();
    let stop = t.elapsed();
    eprintln!("clean shutdown with an active group took {stop:?}");
    assert!(stop < Duration::from_secs(10), "shutdown took {stop:?}");
    broker.restart();
    let second = produce(&broker, topic, "second", 5);
    let all: Vec<rdk::Acked> = first.iter().chain(second.iter()).cloned().collect();
    let mut members = [&mut m1, &mut m2];
    pump(&mut members, "every record read once", |ms| {
        ms.iter().for_each(|m| {
            m.commit_with_metadata(topic);
        });
        total_seen(ms) >= all.len()
    });
    assert_read_exactly_once(&members, &all);
}
