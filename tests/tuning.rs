//! The host tooling under tuning/: check.sh, tune.sh --dry-run and the
//! disk probe, run as a person would run them, on this host and on
//! made-up hosts (SHARDLOG_TUNING_ROOT points the scripts' /proc/sys, /sys
//! and /proc/irq reads at a directory tree). Nothing here changes the host:
//! tune.sh only ever runs with --dry-run.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Every item check.sh reports, in order (tuning/README.md documents each).
const ITEMS: [&str; 15] = [
    "cores",
    "io_uring",
    "memlock",
    "o_direct",
    "mount_times",
    "cpu_governor",
    "thp",
    "thp_defrag",
    "swappiness",
    "irq_affinity",
    "disk_scheduler",
    "nofile",
    "somaxconn",
    "tcp_rmem",
    "tcp_wmem",
];
const SEVERITIES: [&str; 4] = ["OK", "INFO", "WARN", "FAIL"];

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tuning")
        .join(name)
}

/// A directory on a real disk (tmpfs would make the O_DIRECT item a
/// warning), deleted when dropped.
fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("shardlog-tuning-")
        .tempdir_in(std::env::var_os("SHARDLOG_TEST_DIR").unwrap_or_else(|| "/var/tmp".into()))
        .expect("temp dir")
}

/// The first core this process may run on: a valid --cores value here.
fn first_allowed_core() -> usize {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list");
    let first: String = list
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    first.parse().unwrap()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.code().is_some(),
        "killed by a signal: {:?}",
        out.status
    );
    out
}

fn check(args: &[&str], root: Option<&Path>) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(script("check.sh")).args(args);
    match root {
        Some(r) => cmd.env("SHARDLOG_TUNING_ROOT", r),
        None => cmd.env_remove("SHARDLOG_TUNING_ROOT"),
    };
    run(&mut cmd)
}

fn tune_dry_run(args: &[&str], root: Option<&Path>) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(script("tune.sh")).arg("--dry-run").args(args);
    match root {
        Some(r) => cmd.env("SHARDLOG_TUNING_ROOT", r),
        None => cmd.env_remove("SHARDLOG_TUNING_ROOT"),
    };
    run(&mut cmd)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

fn rank(severity: &str) -> i32 {
    match severity {
        "WARN" => 1,
        "FAIL" => 2,
        _ => 0,
    }
}

/// check.sh --json's items by name, after checking the report's shape:
/// every item once, in order, valid severities, non-empty values, and an
/// exit code that is the worst severity's.
fn checked_report(out: &Output) -> Vec<(String, String, String)> {
    let stdout = text(&out.stdout);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("check.sh --json is not JSON ({e}): {stdout}"));
    let items = report["items"].as_array().expect("items array");
    let names: Vec<&str> = items.iter().map(|i| i["item"].as_str().unwrap()).collect();
    assert_eq!(names, ITEMS, "{stdout}");
    let mut worst = 0;
    let mut rows = Vec::new();
    for i in items {
        let severity = i["severity"].as_str().unwrap();
        assert!(SEVERITIES.contains(&severity), "{i}");
        let current = i["current"].as_str().unwrap();
        let recommended = i["recommended"].as_str().unwrap();
        assert!(!current.is_empty() && !recommended.is_empty(), "{i}");
        worst = worst.max(rank(severity));
        rows.push((
            i["item"].as_str().unwrap().to_string(),
            severity.to_string(),
            current.to_string(),
        ));
    }
    assert_eq!(report["exit_code"].as_i64(), Some(worst as i64), "{stdout}");
    assert_eq!(
        report["worst"].as_str(),
        Some(["OK", "WARN", "FAIL"][worst as usize])
    );
    assert_eq!(out.status.code(), Some(worst), "{stdout}");
    rows
}

fn severity_of<'a>(rows: &'a [(String, String, String)], item: &str) -> &'a str {
    &rows.iter().find(|r| r.0 == item).unwrap().1
}

#[test]
fn check_reports_every_item_on_this_host_in_text_and_json() {
    // This host's report names every item once with a valid severity, the
    // text and JSON forms agree, and the exit code is the worst severity.
    let dir = temp_dir();
    let data = dir.path().to_str().unwrap();
    let core = first_allowed_core().to_string();
    let json = check(&["--data-dir", data, "--cores", &core, "--json"], None);
    assert!(json.stderr.is_empty(), "{}", text(&json.stderr));
    let rows = checked_report(&json);
    // The test directory is on a real disk and io_uring works here (the
    // storage tests rely on both).
    assert_eq!(severity_of(&rows, "o_direct"), "OK", "{rows:?}");
    assert_eq!(severity_of(&rows, "cores"), "OK", "{rows:?}");

    let plain = check(&["--data-dir", data, "--cores", &core], None);
    assert_eq!(plain.status.code(), json.status.code());
    let stdout = text(&plain.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), ITEMS.len() + 1, "{stdout}");
    for ((line, item), row) in lines.iter().zip(ITEMS).zip(&rows) {
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some(row.1.as_str()), "{line}");
        assert_eq!(words.next(), Some(item), "{line}");
        assert!(line.contains(" | recommended: "), "{line}");
    }
    assert!(lines[ITEMS.len()].starts_with("# worst: "), "{stdout}");
    // The O_DIRECT test file is gone.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn check_creates_no_data_dir_and_rejects_bad_arguments() {
    // A data dir that does not exist yet is judged by its parent and not
    // created; bad arguments exit 3.
    let dir = temp_dir();
    let data = dir.path().join("not-yet");
    let out = check(&["--data-dir", data.to_str().unwrap(), "--json"], None);
    let rows = checked_report(&out);
    assert_eq!(severity_of(&rows, "o_direct"), "OK");
    assert_eq!(
        severity_of(&rows, "cores"),
        "INFO",
        "no --cores: not judged"
    );
    assert!(!data.exists());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

    for args in [
        &["--cores", "x-y"][..],
        &["--frobnicate"][..],
        &["--cores"][..],
    ] {
        assert_eq!(check(args, None).status.code(), Some(3), "{args:?}");
        assert_eq!(tune_dry_run(args, None).status.code(), Some(3), "{args:?}");
    }
}

#[test]
fn check_fails_on_cores_the_broker_cannot_use() {
    // --cores naming a core outside this process's CPU set is a FAIL
    // (the broker refuses to start), and the exit code says so.
    let dir = temp_dir();
    let out = check(
        &[
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--cores",
            "4095",
            "--json",
        ],
        None,
    );
    let rows = checked_report(&out);
    assert_eq!(severity_of(&rows, "cores"), "FAIL");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_host_without_proc_sys_or_sys_files_gets_info_not_errors() {
    // With no /proc/sys, /sys or /proc/irq files at all (a locked-down
    // container), the items that need them are INFO and nothing errors.
    let dir = temp_dir();
    let root = temp_dir();
    let core = first_allowed_core().to_string();
    let out = check(
        &[
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--cores",
            &core,
            "--json",
        ],
        Some(root.path()),
    );
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let rows = checked_report(&out);
    for item in [
        "mount_times",
        "cpu_governor",
        "thp",
        "thp_defrag",
        "swappiness",
        "irq_affinity",
        "disk_scheduler",
        "somaxconn",
        "tcp_rmem",
        "tcp_wmem",
    ] {
        assert_eq!(severity_of(&rows, item), "INFO", "{item}: {rows:?}");
    }
    let tune = tune_dry_run(
        &["--data-dir", dir.path().to_str().unwrap(), "--cores", &core],
        Some(root.path()),
    );
    assert_eq!(tune.status.code(), Some(0));
    assert!(tune.stderr.is_empty(), "{}", text(&tune.stderr));
    let script = text(&tune.stdout);
    for item in ["cpu_governor", "thp", "irq_affinity", "somaxconn"] {
        assert!(
            script.contains(&format!("# {item}: INFO, nothing to do")),
            "{script}"
        );
    }
}

/// This host's mount table under `root`, every mount with `lazytime`
/// (`with`) or without it, and the mount point and file system type of
/// `path` as findmnt names them.
fn fake_mount_table(root: &Path, path: &Path, with: bool) -> (String, String) {
    let real = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut table = String::new();
    for line in real.lines() {
        // Fields: id parent dev root target options [optional...] - fstype source super-options.
        let mut fields: Vec<String> = line.split(' ').map(str::to_string).collect();
        let strip = |opts: &str| -> String {
            opts.split(',')
                .filter(|o| *o != "lazytime")
                .collect::<Vec<_>>()
                .join(",")
        };
        fields[5] = strip(&fields[5]);
        if with {
            fields[5].push_str(",lazytime");
        }
        let last = fields.len() - 1;
        fields[last] = strip(&fields[last]);
        table.push_str(&fields.join(" "));
        table.push('\n');
    }
    write(root, "proc/self/mountinfo", &table);
    let out = Command::new("findmnt")
        .args(["-n", "-r", "-o", "TARGET,FSTYPE", "-T"])
        .arg(path)
        .output()
        .expect("findmnt");
    let line = text(&out.stdout);
    let mut words = line.split_whitespace();
    let target = words.next().expect("mount point").to_string();
    let fstype = words.next().expect("fs type").to_string();
    (target, fstype)
}

/// File systems whose mount options check.sh judges for lazytime.
fn judges_times(fstype: &str) -> bool {
    ["ext4", "ext3", "xfs", "btrfs", "f2fs"].contains(&fstype)
}

fn write(root: &Path, path: &str, contents: &str) {
    let p = root.join(path);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, contents).unwrap();
}

/// `major:minor` of the device holding `path`, decoded as glibc does.
fn dev_major_minor(path: &Path) -> (u64, u64) {
    let dev = fs::metadata(path).unwrap().dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// A badly tuned host with cores 0..=max(3, shard_core) online: io_uring
/// disabled, THP always, swap with swappiness 60, small somaxconn and TCP
/// buffers, powersave governors, a NIC whose IRQ 40 may run on every core
/// and IRQ 41 only on a core other than `shard_core`, and the data dir's
/// disk an NVMe drive on bfq. Returns the online cores and whether the
/// disk could be faked (the data dir is on a block device).
fn bad_host(root: &Path, data_dir: &Path, shard_core: usize) -> (Vec<usize>, bool) {
    let online: Vec<usize> = (0..=shard_core.max(3)).collect();
    let other = if shard_core == 0 { 1 } else { 0 };
    write(root, "proc/sys/kernel/io_uring_disabled", "2\n");
    write(
        root,
        "sys/kernel/mm/transparent_hugepage/enabled",
        "[always] madvise never\n",
    );
    write(
        root,
        "sys/kernel/mm/transparent_hugepage/defrag",
        "[always] defer defer+madvise madvise never\n",
    );
    write(root, "proc/sys/vm/swappiness", "60\n");
    write(
        root,
        "proc/swaps",
        "Filename Type Size Used Priority\n/swapfile file 1048572 0 -2\n",
    );
    write(root, "proc/sys/net/core/somaxconn", "128\n");
    write(root, "proc/sys/net/core/rmem_max", "212992\n");
    write(root, "proc/sys/net/core/wmem_max", "212992\n");
    write(
        root,
        "proc/sys/net/ipv4/tcp_rmem",
        "4096\t131072\t6291456\n",
    );
    write(root, "proc/sys/net/ipv4/tcp_wmem", "4096\t16384\t4194304\n");
    write(
        root,
        "sys/devices/system/cpu/online",
        &format!("0-{}\n", online.len() - 1),
    );
    for &cpu in &online {
        let d = format!("sys/devices/system/cpu/cpu{cpu}/cpufreq");
        write(root, &format!("{d}/scaling_governor"), "powersave\n");
        write(
            root,
            &format!("{d}/scaling_available_governors"),
            "performance powersave\n",
        );
    }
    let pci = "sys/devices/pci0000:00/0000:00:03.0";
    write(root, &format!("{pci}/msi_irqs/40"), "msix\n");
    write(root, &format!("{pci}/msi_irqs/41"), "msix\n");
    fs::create_dir_all(root.join("sys/class/net/eth9")).unwrap();
    std::os::unix::fs::symlink(
        "../../../devices/pci0000:00/0000:00:03.0",
        root.join("sys/class/net/eth9/device"),
    )
    .unwrap();
    write(
        root,
        "proc/irq/40/smp_affinity_list",
        &format!("0-{}\n", online.len() - 1),
    );
    write(root, "proc/irq/41/smp_affinity_list", &format!("{other}\n"));

    let (major, minor) = dev_major_minor(data_dir);
    if major == 0 {
        return (online, false);
    }
    let disk = "sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1";
    write(
        root,
        &format!("{disk}/queue/scheduler"),
        "[bfq] none mq-deadline kyber\n",
    );
    write(root, &format!("{disk}/queue/rotational"), "0\n");
    fs::create_dir_all(root.join("sys/dev/block")).unwrap();
    std::os::unix::fs::symlink(
        format!("../../{}", disk.strip_prefix("sys/").unwrap()),
        root.join(format!("sys/dev/block/{major}:{minor}")),
    )
    .unwrap();
    (online, true)
}

/// Every file under `root` with its contents, to show nothing changed.
fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                out.push((p.clone(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_badly_tuned_host_gets_warnings_and_the_exact_fixes() {
    // On a made-up host with every knob wrong, check.sh flags each item
    // and tune.sh --dry-run prints the command that fixes it (a valid
    // shell script), touching nothing.
    let dir = temp_dir();
    let root = temp_dir();
    let core = first_allowed_core();
    let (online, faked_disk) = bad_host(root.path(), dir.path(), core);
    let (target, fstype) = fake_mount_table(root.path(), dir.path(), false);
    let data = dir.path().to_str().unwrap();
    let core_arg = core.to_string();
    let args = ["--data-dir", data, "--cores", &core_arg];

    let out = check(&[&args[..], &["--json"]].concat(), Some(root.path()));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let rows = checked_report(&out);
    assert_eq!(severity_of(&rows, "io_uring"), "FAIL");
    assert_eq!(out.status.code(), Some(2));
    let mut warned = vec![
        "cpu_governor",
        "thp",
        "thp_defrag",
        "swappiness",
        "irq_affinity",
        "somaxconn",
        "tcp_rmem",
        "tcp_wmem",
    ];
    if faked_disk {
        warned.push("disk_scheduler");
    }
    if judges_times(&fstype) {
        warned.push("mount_times");
    }
    for item in &warned {
        assert_eq!(severity_of(&rows, item), "WARN", "{item}: {rows:?}");
    }
    let irq = rows.iter().find(|r| r.0 == "irq_affinity").unwrap();
    assert!(
        irq.2.contains(&format!("eth9:40->0-{}", online.len() - 1)),
        "{irq:?}"
    );
    let free: Vec<String> = online
        .iter()
        .filter(|&&c| c != core)
        .map(|c| c.to_string())
        .collect();
    let irq_fix = format!("echo {} > /proc/irq/40/smp_affinity_list", free.join(","));
    let governor_fix =
        format!("echo performance > /sys/devices/system/cpu/cpu{core}/cpufreq/scaling_governor");
    let cpupower_fix = format!("cpupower -c {core} frequency-set -g performance");

    let before = snapshot(root.path());
    let tune = tune_dry_run(&args, Some(root.path()));
    assert_eq!(tune.status.code(), Some(0), "{}", text(&tune.stderr));
    let script = text(&tune.stdout);
    let commands: BTreeSet<&str> = script.lines().filter(|l| !l.starts_with('#')).collect();
    let mut expected = vec![
        "sysctl -w kernel.io_uring_disabled=0",
        "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled",
        "echo madvise > /sys/kernel/mm/transparent_hugepage/defrag",
        "sysctl -w vm.swappiness=1",
        "sysctl -w net.core.somaxconn=4096",
        "sysctl -w net.core.rmem_max=16777216",
        "sysctl -w net.ipv4.tcp_rmem='4096 131072 16777216'",
        "sysctl -w net.core.wmem_max=16777216",
        "sysctl -w net.ipv4.tcp_wmem='4096 16384 16777216'",
        // IRQ 40 may run on the shard core; IRQ 41 is left alone.
        irq_fix.as_str(),
    ];
    if faked_disk {
        expected.push("echo none > /sys/block/nvme0n1/queue/scheduler");
    }
    let remount = format!("mount -o remount,lazytime {target}");
    if judges_times(&fstype) {
        expected.push(remount.as_str());
    }
    for cmd in &expected {
        assert!(commands.contains(cmd), "missing {cmd:?} in:\n{script}");
    }
    assert!(
        commands.contains(governor_fix.as_str()) || commands.contains(cpupower_fix.as_str()),
        "{script}"
    );
    assert!(!script.contains("/proc/irq/41/"), "{script}");
    let governor_lines = script
        .lines()
        .filter(|l| l.contains("scaling_governor"))
        .count();
    assert!(
        governor_lines <= 1,
        "only the shard core's governor: {script}"
    );
    // Every non-comment line is one of the fixes above (plus the limits
    // files for this host's memlock/nofile, if it needs them).
    for cmd in &commands {
        assert!(
            expected.contains(cmd)
                || cmd.contains("scaling_governor")
                || cmd.starts_with("cpupower ")
                || cmd.contains("/etc/security/limits.d/90-shardlog-"),
            "unexpected command {cmd:?}"
        );
    }
    let syntax = run(Command::new("bash").args(["-n", "-c", &script]));
    assert!(syntax.status.success(), "{}", text(&syntax.stderr));
    assert_eq!(
        snapshot(root.path()),
        before,
        "a dry run changed the fake host"
    );
}

#[test]
fn a_well_tuned_host_needs_nothing() {
    // When every judged knob is at its recommended value, tune.sh
    // --dry-run prints only comments for them.
    let dir = temp_dir();
    let root = temp_dir();
    let r = root.path();
    write(r, "proc/sys/kernel/io_uring_disabled", "0\n");
    write(
        r,
        "sys/kernel/mm/transparent_hugepage/enabled",
        "always [madvise] never\n",
    );
    write(
        r,
        "sys/kernel/mm/transparent_hugepage/defrag",
        "always defer defer+madvise [madvise] never\n",
    );
    write(r, "proc/sys/vm/swappiness", "1\n");
    write(r, "proc/sys/net/core/somaxconn", "4096\n");
    write(r, "proc/sys/net/core/rmem_max", "16777216\n");
    write(r, "proc/sys/net/core/wmem_max", "16777216\n");
    write(r, "proc/sys/net/ipv4/tcp_rmem", "4096 131072 16777216\n");
    write(r, "proc/sys/net/ipv4/tcp_wmem", "4096 16384 16777216\n");
    let (_, fstype) = fake_mount_table(r, dir.path(), true);
    let core = first_allowed_core();
    write(
        r,
        &format!("sys/devices/system/cpu/cpu{core}/cpufreq/scaling_governor"),
        "performance\n",
    );
    let core_arg = core.to_string();
    let args = [
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--cores",
        &core_arg,
    ];
    let rows = checked_report(&check(&[&args[..], &["--json"]].concat(), Some(r)));
    for item in [
        "io_uring",
        "cpu_governor",
        "thp",
        "thp_defrag",
        "swappiness",
        "somaxconn",
        "tcp_rmem",
        "tcp_wmem",
    ] {
        assert_eq!(severity_of(&rows, item), "OK", "{item}: {rows:?}");
    }
    let times = if judges_times(&fstype) { "OK" } else { "INFO" };
    assert_eq!(severity_of(&rows, "mount_times"), times, "{rows:?}");
    let script = text(&tune_dry_run(&args, Some(r)).stdout);
    for item in ["io_uring", "cpu_governor", "thp", "swappiness", "tcp_rmem"] {
        assert!(
            script.contains(&format!("# {item}: OK, nothing to do")),
            "{script}"
        );
    }
    assert!(!script.contains("sysctl -w"), "{script}");
}

fn probe(args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_shardlog-disk-probe")).args(args))
}

fn positive(v: &Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x > 0.0, "{what} = {x}");
    x
}

/// p50 <= p99 <= p99.9 <= max, all positive.
fn ordered_percentiles(v: &Value, what: &str) {
    let p: Vec<f64> = ["p50", "p99", "p99_9", "max"]
        .iter()
        .map(|k| positive(&v[k], &format!("{what}.{k}")))
        .collect();
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "{what}: {v}");
}

#[test]
fn disk_probe_measures_writes_and_fdatasync_and_cleans_up() {
    // A small probe run gives positive bandwidths for each write size and
    // ordered fdatasync percentiles, and leaves no file behind.
    let dir = temp_dir();
    let data = dir.path().to_str().unwrap();
    let out = probe(&[
        "--data-dir",
        data,
        "--write-sizes",
        "64k,4k",
        "--max-mib",
        "4",
        "--sync-write-size",
        "16k",
        "--syncs-max",
        "20",
        "--seconds",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).expect("probe JSON");
    let writes = report["write"].as_array().unwrap();
    assert_eq!(writes.len(), 2, "{stdout}");
    for (w, size) in writes.iter().zip([64 << 10, 4 << 10]) {
        assert_eq!(w["write_bytes"].as_u64(), Some(size), "{w}");
        let n = w["writes"].as_u64().unwrap();
        assert!(n >= 1 && n * size <= 4 << 20, "{w}");
        assert_eq!(w["bytes"].as_u64(), Some(n * size));
        positive(&w["mb_per_s"], "mb_per_s");
        positive(&w["seconds"], "seconds");
        ordered_percentiles(&w["latency_us"], "write latency");
    }
    let sync = &report["fdatasync"];
    assert_eq!(sync["write_bytes"].as_u64(), Some(16 << 10));
    let samples = sync["samples"].as_u64().unwrap();
    assert!((1..=20).contains(&samples), "{sync}");
    ordered_percentiles(&sync["latency_us"], "fdatasync latency");
    ordered_percentiles(&sync["write_latency_us"], "write latency");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "probe files left"
    );

    let plain = probe(&[
        "--data-dir",
        data,
        "--write-sizes",
        "4k",
        "--max-mib",
        "1",
        "--syncs-max",
        "5",
        "--seconds",
        "1",
    ]);
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let stdout = text(&plain.stdout);
    assert!(
        stdout.contains("MB/s") && stdout.contains("fdatasync after a 16 KiB write"),
        "{stdout}"
    );
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "probe files left"
    );
}

#[test]
fn disk_probe_refuses_bad_input() {
    // A missing directory is an error (exit 1), a size O_DIRECT cannot
    // write is a usage error (exit 2); neither writes anything.
    let dir = temp_dir();
    let missing = dir.path().join("missing");
    let out = probe(&["--data-dir", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a directory"));
    let data = dir.path().to_str().unwrap();
    for bad in [
        &["--write-sizes", "5k"][..],
        &["--sync-write-size", "100"][..],
    ] {
        let out = probe(&[&["--data-dir", data][..], bad].concat());
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}
