//! librdkafka's own admin test, 0081-admin.c, and its produce-batch test,
//! 0011-produce_batch.c (with its compacted-topic record failures), from
//! the librdkafka the rdkafka crate bundles (built with its test runner by
//! `tests/clients/librdkafka-tests.sh`), against the broker: one run of the
//! runner per group of subtests (its SUBTESTS filter), each of which must
//! pass and must have run.
//!
//! The ACL subtests (do_test_CreateAcls, DescribeAcls, DeleteAcls) and
//! those whose authorized-operations checks change ACLs when the client
//! authenticates (DescribeTopics, DescribeConsumerGroups, DescribeCluster)
//! run again against a broker with an authorizer and a SASL_PLAINTEXT
//! listener (PLAIN), configured as librdkafka's own test clusters are
//! (allow.everyone.if.no.acl.found=true).
//! do_test_UserScramCredentials runs with a runner built with OpenSSL
//! (it salts passwords client-side).

mod common;

use std::process::Command;
use std::time::Duration;

use common::broker::{Broker, BrokerOptions};
use common::clients::{repo_dir, run_with_timeout, target_dir};

/// 0081's subtest groups that need no ACLs, by function name.
const GROUPS: &[&str] = &[
    "unclean_destroy",
    "CreateTopics",
    "DeleteTopics",
    "CreatePartitions",
    "AlterConfigs",
    "IncrementalAlterConfigs",
    "DescribeConfigs",
    "DeleteRecords",
    "ListConsumerGroups",
    "DescribeConsumerGroups",
    "DescribeTopics",
    "DescribeCluster",
    "DeleteGroups",
    "DeleteConsumerGroupOffsets",
    "ListOffsets",
    "AlterConsumerGroupOffsets",
    "ListConsumerGroupOffsets",
    "UserScramCredentials",
];

/// Building librdkafka and its ~150 test programs takes about five minutes
/// on two cores.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);
const GROUP_TIMEOUT: Duration = Duration::from_secs(300);

/// The test runner's directory, built once per test process (the tests
/// run in parallel and must not build into the same directory at once).
fn build_test_runner() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_test_runner_once).clone()
}

fn build_test_runner_once() -> std::path::PathBuf {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_dir().join("tests/clients/librdkafka-tests.sh"))
        .arg(target_dir().join("librdkafka-tests"))
        .current_dir(repo_dir());
    let run = run_with_timeout(cmd, BUILD_TIMEOUT);
    assert!(
        run.success(),
        "building librdkafka's test runner: {}\n{}",
        run.describe(),
        run.output_text()
    );
    std::path::PathBuf::from(run.stdout_text().trim())
}

/// One run of librdkafka's test runner against `broker`: test `test`,
/// only the subtests matching `subtests` when given. Returns whether it
/// passed and its output.
fn run_librdkafka_test(
    tests: &std::path::Path,
    broker: &Broker,
    dir: &std::path::Path,
    test: &str,
    subtests: Option<&str>,
) -> (bool, String, String) {
    run_librdkafka_test_with(tests, broker, dir, test, subtests, "")
}

/// [`run_librdkafka_test`] with more client configuration lines.
fn run_librdkafka_test_with(
    tests: &std::path::Path,
    broker: &Broker,
    dir: &std::path::Path,
    test: &str,
    subtests: Option<&str>,
    more_conf: &str,
) -> (bool, String, String) {
    let conf = dir.join("test.conf");
    std::fs::write(
        &conf,
        format!("bootstrap.servers={}\n{more_conf}", broker.bootstrap()),
    )
    .expect("write test.conf");
    let lib = format!(
        "{}:{}",
        tests.join("../src").display(),
        tests.join("../src-cpp").display()
    );
    let mut cmd = Command::new(tests.join("test-runner"));
    // -Q: once with a producer handle (the consumer-handle pass repeats
    // the same calls).
    cmd.arg("-Q")
        .current_dir(dir)
        .env("LD_LIBRARY_PATH", &lib)
        .env("RDKAFKA_TEST_CONF", &conf)
        .env("TESTS", test)
        .env("TEST_KAFKA_VERSION", "4.1.1");
    if let Some(s) = subtests {
        cmd.env("SUBTESTS", s);
    }
    let run = run_with_timeout(cmd, GROUP_TIMEOUT);
    let out = run.output_text();
    (
        run.success() && out.contains("ALL TESTS PASSED"),
        out,
        run.describe(),
    )
}

// Proves librdkafka's own admin test passes against shardlog: topics,
// partitions, configs (broker and topic, incremental and not), records,
// groups, offsets, topic and cluster descriptions with authorized
// operations.
#[test]
fn librdkafka_0081_admin() {
    let tests = build_test_runner();
    let broker =
        Broker::start(BrokerOptions::single().with_override("group.initial.rebalance.delay.ms", 0));
    let dir = common::temp_dir();
    for group in GROUPS {
        let subtest = format!("do_test_{group}");
        let (mut ok, mut out, mut how) =
            run_librdkafka_test(&tests, &broker, dir.path(), "0081", Some(&subtest));
        if !ok && group_race(group, &out) {
            eprintln!("0081 {group}: lost its own race of a 6 s sleep against the 6 s session timeout; running it again");
            (ok, out, how) =
                run_librdkafka_test(&tests, &broker, dir.path(), "0081", Some(&subtest));
        }
        let passed = out
            .lines()
            .filter(|l| l.contains(&subtest) && l.contains(": PASS ("))
            .count();
        eprintln!("0081 {group}: {passed} subtest(s) passed ({how})");
        assert!(
            ok && passed > 0,
            "librdkafka 0081 {group}: {how}\n{out}\n--- broker log ---\n{}",
            broker.log_tail()
        );
    }
}

/// Whether a failed run of `group` lost the race built into librdkafka's
/// do_test_DescribeConsumerGroups: it closes static members (which send no
/// LeaveGroup), sleeps 6 s ("session timeout + 1s" for the 5 s it sets,
/// which its consumer helper then overrides with 6 s) and deletes their
/// groups, which are empty only once the sessions expire 6 s after the
/// members' last requests (their commits at close): a few milliseconds
/// either way on a loaded machine. Such a run is repeated once.
fn group_race(group: &str, out: &str) -> bool {
    group == "DescribeConsumerGroups"
        && out.contains("Failed to delete groups: Broker: The group is not empty")
}

/// 0081's subtest groups run against a broker with an authorizer.
const AUTH_GROUPS: &[&str] = &[
    "CreateAcls",
    "DescribeAcls",
    "DeleteAcls",
    "DescribeTopics",
    "DescribeConsumerGroups",
    "DescribeCluster",
];

// Proves librdkafka's ACL admin subtests pass against shardlog's
// authorizer, and its authorized-operations checks too: authenticated
// with SASL PLAIN, the client creates ACLs for itself and sees its
// authorized operations on topics, groups and the cluster follow them.
#[test]
fn librdkafka_0081_acls() {
    let tests = build_test_runner();
    let dir = common::temp_dir();
    let users = dir.path().join("plain-users");
    std::fs::write(&users, "testuser=testpass\n").unwrap();
    let broker = Broker::start(
        BrokerOptions::single()
            .with_override("group.initial.rebalance.delay.ms", 0)
            .with_override("listener.security.protocol.map", "PLAINTEXT:SASL_PLAINTEXT")
            .with_override("sasl.enabled.mechanisms", "PLAIN")
            .with_override("shardlog.sasl.plain.users.file", users.display())
            .with_override(
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            )
            .with_override("allow.everyone.if.no.acl.found", "true"),
    );
    let conf = "security.protocol=sasl_plaintext\nsasl.mechanism=PLAIN\n\
                sasl.username=testuser\nsasl.password=testpass\n";
    for group in AUTH_GROUPS {
        let subtest = format!("do_test_{group}");
        let (mut ok, mut out, mut how) =
            run_librdkafka_test_with(&tests, &broker, dir.path(), "0081", Some(&subtest), conf);
        if !ok && group_race(group, &out) {
            eprintln!("0081 with an authorizer, {group}: lost its own race of a 6 s sleep against the 6 s session timeout; running it again");
            (ok, out, how) =
                run_librdkafka_test_with(&tests, &broker, dir.path(), "0081", Some(&subtest), conf);
        }
        let passed = out
            .lines()
            .filter(|l| l.contains(&subtest) && l.contains(": PASS ("))
            .count();
        eprintln!("0081 with an authorizer, {group}: {passed} subtest(s) passed ({how})");
        assert!(
            ok && passed > 0,
            "librdkafka 0081 {group} with an authorizer: {how}\n{out}\n--- broker log ---\n{}",
            broker.log_tail()
        );
    }
}

// Proves librdkafka's produce-batch test passes, including its record
// failure subtests: a compacted topic refuses keyless records with
// INVALID_RECORD and KIP-467 record errors, which the producer reports per
// message.
#[test]
fn librdkafka_0011_produce_batch() {
    let tests = build_test_runner();
    let broker = Broker::start(BrokerOptions::single());
    let dir = common::temp_dir();
    let (ok, out, how) = run_librdkafka_test(&tests, &broker, dir.path(), "0011", None);
    let record_fail = out
        .lines()
        .filter(|l| {
            l.contains("test_message_single_partition_record_fail") && l.contains(": PASS (")
        })
        .count();
    assert!(
        ok && record_fail > 0,
        "librdkafka 0011: {how}\n{out}\n--- broker log ---\n{}",
        broker.log_tail()
    );
}
