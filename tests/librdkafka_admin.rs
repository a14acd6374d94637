//! librdkafka's own admin test, 0081-admin.c, from the librdkafka the
//! rdkafka crate bundles (built with its test runner by
//! `tests/clients/librdkafka-tests.sh`), against the broker: one run of the
//! runner per group of subtests (its SUBTESTS filter), each of which must
//! pass and must have run.
//!
//! Not run: do_test_CreateAcls, do_test_DescribeAcls, do_test_DeleteAcls
//! (ACLs) and do_test_UserScramCredentials (SASL/SCRAM): shardlog has no
//! authorizer or SASL yet (the security issue).

mod common;

use std::process::Command;
use std::time::Duration;

use common::broker::{Broker, BrokerOptions};
use common::clients::{repo_dir, run_with_timeout, target_dir};

/// 0081's subtest groups that need no ACLs or SASL, by function name.
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
];

/// Building librdkafka and its ~150 test programs takes about five minutes
/// on two cores.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);
const GROUP_TIMEOUT: Duration = Duration::from_secs(300);

fn build_test_runner() -> std::path::PathBuf {
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
    let conf = dir.path().join("test.conf");
    std::fs::write(&conf, format!("bootstrap.servers={}\n", broker.bootstrap()))
        .expect("write test.conf");
    let lib = format!(
        "{}:{}",
        tests.join("../src").display(),
        tests.join("../src-cpp").display()
    );
    for group in GROUPS {
        let mut cmd = Command::new(tests.join("test-runner"));
        // -Q: once with a producer handle (the consumer-handle pass repeats
        // the same calls).
        cmd.arg("-Q")
            .current_dir(dir.path())
            .env("LD_LIBRARY_PATH", &lib)
            .env("RDKAFKA_TEST_CONF", &conf)
            .env("TESTS", "0081")
            .env("SUBTESTS", format!("do_test_{group}"))
            .env("TEST_KAFKA_VERSION", "4.1.1");
        let run = run_with_timeout(cmd, GROUP_TIMEOUT);
        let out = run.output_text();
        let passed = out
            .lines()
            .filter(|l| l.contains(&format!("do_test_{group}")) && l.contains(": PASS ("))
            .count();
        eprintln!(
            "0081 {group}: {passed} subtest(s) passed ({})",
            run.describe()
        );
        assert!(
            run.success() && out.contains("ALL TESTS PASSED") && passed > 0,
            "librdkafka 0081 {group}: {}\n{out}\n--- broker log ---\n{}",
            run.describe(),
            broker.log_tail()
        );
    }
}
