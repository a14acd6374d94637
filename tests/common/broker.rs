//! A real `shardlog` broker process for integration tests.
//!
//! [`Broker::start`] picks free loopback ports, makes a temporary data
//! directory, starts the `shardlog` binary that cargo built for this test
//! run, and waits until every port it should listen on answers a Kafka
//! ApiVersions request. The broker's stdout and stderr go to a log file
//! beside the data directory; the log is printed, and the temporary
//! directory kept, when a test panics while it holds the fixture and
//! whenever the fixture itself fails (start-up timeout, unclean exit). The
//! process is killed on drop. [`Broker::kill9`] and [`Broker::terminate`]
//! return once the ports are free again, so [`Broker::restart`] can follow.
//!
//! The child gets `PR_SET_PDEATHSIG = SIGKILL`, so it dies with the thread
//! that started it: create, use and drop a `Broker` on one thread (as a test
//! function does).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long the broker gets to answer on every port.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a clean shutdown (SIGTERM) may take.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of the log's tail is printed on failure.
const LOG_TAIL_BYTES: u64 = 64 << 10;

/// `--listener-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerMode {
    /// Every shard accepts on the one listen port.
    Single,
    /// Shard i also listens on listen_port + 1 + i and is its own broker
    /// node in Metadata.
    PerShard,
}

impl ListenerMode {
    fn arg(self) -> &'static str {
        match self {
            ListenerMode::Single => "single",
            ListenerMode::PerShard => "per-shard",
        }
    }
}

/// How to start the broker.
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// `--cores`: one shard per entry; a repeated core runs several shards on
    /// it (`[0, 0]`: two shards on core 0, which works on any machine).
    pub cores: Vec<usize>,
    pub listener_mode: ListenerMode,
    /// `--override KEY=VALUE`, in order.
    pub overrides: Vec<(String, String)>,
    /// `--log-level`, when set.
    pub log_level: Option<String>,
    /// Further arguments, appended last.
    pub extra_args: Vec<String>,
    /// The broker's open-files limit (soft and hard), when set.
    pub open_files_max: Option<u64>,
    /// A command the broker runs under (`ip netns exec NS`), when set.
    pub wrapper: Vec<String>,
    /// Whether it serves clients (false for a controller-only cluster
    /// node: start-up then waits for its "shardlog ready" log line).
    pub clients: bool,
    /// Whether its clients speak TLS (start-up then waits for the log
    /// line too: a plaintext ApiVersions cannot tell it is ready).
    pub tls: bool,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            cores: vec![0],
            listener_mode: ListenerMode::Single,
            overrides: Vec::new(),
            log_level: None,
            extra_args: Vec::new(),
            open_files_max: None,
            wrapper: Vec::new(),
            clients: true,
            tls: false,
        }
    }
}

impl BrokerOptions {
    /// One shard on core 0, one listener.
    pub fn single() -> Self {
        Self::default()
    }

    /// `shards` shards, all on core 0, sharing one listener (requests for
    /// another shard's partitions cross shards).
    pub fn single_shared(shards: usize) -> Self {
        BrokerOptions {
            cores: vec![0; shards],
            ..Self::default()
        }
    }

    /// `shards` shards, all on core 0, each with its own listener.
    pub fn per_shard(shards: usize) -> Self {
        BrokerOptions {
            cores: vec![0; shards],
            listener_mode: ListenerMode::PerShard,
            ..Self::default()
        }
    }

    /// Adds `--override key=value`.
    pub fn with_override(mut self, key: &str, value: impl ToString) -> Self {
        self.overrides.push((key.to_string(), value.to_string()));
        self
    }

    pub fn with_log_level(mut self, level: &str) -> Self {
        self.log_level = Some(level.to_string());
        self
    }

    pub fn with_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn shards(&self) -> usize {
        self.cores.len()
    }

    fn cores_arg(&self) -> String {
        let cores: Vec<String> = self.cores.iter().map(|c| c.to_string()).collect();
        cores.join(",")
    }
}

/// A running (or stopped, between [`Broker::kill9`] / [`Broker::terminate`]
/// and [`Broker::restart`]) `shardlog` process.
pub struct Broker {
    options: BrokerOptions,
    /// The loopback address it listens on (127.0.0.1 unless a cluster
    /// fixture gave another).
    host: std::net::Ipv4Addr,
    port: u16,
    dir: Option<tempfile::TempDir>,
    data_dir: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    starts: u32,
    /// Held for the fixture's lifetime: no other test fixture, in this
    /// process or another, takes these ports meanwhile.
    _port_locks: Vec<File>,
}

impl Broker {
    /// Starts a broker and waits until it accepts connections on every port.
    pub fn start(options: BrokerOptions) -> Broker {
        let dir = super::temp_dir();
        let data_dir = dir.path().join("data");
        Broker::start_in(options, dir, data_dir)
    }

    /// Like [`Broker::start`], with the data directory at `data_dir` (a
    /// file system a test controls, say) instead of one in the fixture's
    /// temporary directory, which still holds the log.
    pub fn start_with_data_dir(options: BrokerOptions, data_dir: &Path) -> Broker {
        Broker::start_in(options, super::temp_dir(), data_dir.to_path_buf())
    }

    fn start_in(options: BrokerOptions, dir: tempfile::TempDir, data_dir: PathBuf) -> Broker {
        assert!(!options.cores.is_empty(), "at least one shard");
        let (port, port_locks) = reserve_ports(options.shards() as u16 + 2);
        Broker::start_on(
            options,
            dir,
            data_dir,
            [127, 0, 0, 1].into(),
            port,
            port_locks,
        )
    }

    /// Starts a broker on `host`:`port` (and the per-shard ports after it),
    /// ports the caller reserved; for cluster nodes on 127.0.0.2, .3.
    pub fn start_on(
        options: BrokerOptions,
        dir: tempfile::TempDir,
        data_dir: PathBuf,
        host: std::net::Ipv4Addr,
        port: u16,
        port_locks: Vec<File>,
    ) -> Broker {
        assert!(!options.cores.is_empty(), "at least one shard");
        let log_path = dir.path().join("broker.log");
        let mut broker = Broker {
            options,
            host,
            port,
            data_dir,
            log_path,
            dir: Some(dir),
            child: None,
            starts: 0,
            _port_locks: port_locks,
        };
        broker.spawn();
        broker
    }

    /// A broker with `options`' shards and listener mode, and auto-creation
    /// of 3-partition topics on.
    pub fn start_with_auto_create(options: BrokerOptions) -> Broker {
        Broker::start(
            options
                .with_override("auto.create.topics.enable", "true")
                .with_override("num.partitions", 3),
        )
    }

    /// `127.0.0.1:P`, the shared listener.
    pub fn bootstrap(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The shared listener's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// In per-shard mode, the address shard `shard` listens on and is
    /// advertised as.
    pub fn shard_address(&self, shard: usize) -> String {
        assert_eq!(self.options.listener_mode, ListenerMode::PerShard);
        assert!(shard < self.options.shards());
        format!("{}:{}", self.host, self.port as usize + 1 + shard)
    }

    pub fn options(&self) -> &BrokerOptions {
        &self.options
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process is still running (reaping it if it exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(child) => matches!(child.try_wait(), Ok(None)),
        }
    }

    /// SIGKILL, then reap, then wait until its ports are released.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.wait_ports_released();
        }
    }

    /// SIGSTOP: the process freezes with its sockets open (the kernel
    /// still completes handshakes and buffers bytes), as a long GC pause
    /// or a stalled VM would; [`Broker::resume`] continues it.
    pub fn pause(&mut self) {
        let pid = self.pid().expect("pause: the broker is not running");
        send_signal(pid, libc::SIGSTOP);
    }

    /// SIGCONT after [`Broker::pause`].
    pub fn resume(&mut self) {
        let pid = self.pid().expect("resume: the broker is not running");
        send_signal(pid, libc::SIGCONT);
    }

    /// Waits (bounded) until nothing accepts connections on the broker's
    /// ports. A listening socket can outlive its reaped process briefly:
    /// io_uring tears a dead process's ring (and the sockets its requests
    /// hold) down asynchronously, and meanwhile the kernel still completes
    /// handshakes into the dead listener's backlog.
    fn wait_ports_released(&mut self) {
        let start = Instant::now();
        loop {
            let open: Vec<u16> = self
                .expected_ports()
                .into_iter()
                .filter(|&port| {
                    let addr = SocketAddr::from((self.host, port));
                    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                })
                .collect();
            if open.is_empty() {
                return;
            }
            if start.elapsed() > STOP_TIMEOUT {
                self.fail(&format!(
                    "ports {open:?} still accept connections {STOP_TIMEOUT:?} after the broker exited"
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM, then waits (bounded) for the exit; panics, printing the log,
    /// unless the broker exits with status 0 in time.
    pub fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            panic!("terminate: the broker is not running");
        };
        if let Ok(Some(status)) = child.try_wait() {
            self.fail(&format!(
                "terminate: the broker had already exited ({status})"
            ));
        }
        send_signal(child.id(), libc::SIGTERM);
        let status = match wait_timeout(&mut child, STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                self.fail(&format!(
                    "terminate: no exit within {STOP_TIMEOUT:?} of SIGTERM; killed"
                ));
            }
        };
        if status.code() != Some(0) {
            self.fail(&format!(
                "terminate: exit {} after SIGTERM, wanted 0",
                describe(status)
            ));
        }
        self.wait_ports_released();
    }

    /// Starts the broker again with the same data directory, ports and
    /// options. A broker that is still running is first stopped cleanly
    /// ([`Broker::terminate`]); call [`Broker::kill9`] first for a crash.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.terminate();
        }
        self.spawn();
    }

    /// Starts the broker again on the same data directory and ports with
    /// other options (a different `--cores`, say); the shards must fit the
    /// ports reserved at the start. A running broker is stopped cleanly
    /// first, as in [`Broker::restart`].
    pub fn restart_with(&mut self, options: BrokerOptions) {
        assert!(
            options.shards() <= self.options.shards(),
            "restart_with: more shards than ports were reserved for"
        );
        if self.child.is_some() {
            self.terminate();
        }
        self.options = options;
        self.spawn();
    }

    fn args(&self) -> Vec<String> {
        let addr = self.bootstrap();
        let mut args = vec![
            "--listen".to_string(),
            addr.clone(),
            "--advertise".to_string(),
            addr,
            "--data-dir".to_string(),
            self.data_dir.display().to_string(),
            "--cores".to_string(),
            self.options.cores_arg(),
            "--listener-mode".to_string(),
            self.options.listener_mode.arg().to_string(),
        ];
        if let Some(level) = &self.options.log_level {
            args.push("--log-level".to_string());
            args.push(level.clone());
        }
        for (k, v) in &self.options.overrides {
            args.push("--override".to_string());
            args.push(format!("{k}={v}"));
        }
        args.extend(self.options.extra_args.iter().cloned());
        args
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "spawn: already running");
        self.starts += 1;
        let bin = binary();
        let args = self.args();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open broker log");
        writeln!(
            log,
            "=== start #{}: {} {}",
            self.starts,
            bin.display(),
            args.join(" ")
        )
        .expect("write broker log");
        let stderr = log.try_clone().expect("clone log handle");
        let mut cmd = match self.options.wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1");
        die_with_parent(&mut cmd);
        if let Some(max) = self.options.open_files_max {
            limit_open_files(&mut cmd, max);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn expected_ports(&self) -> Vec<u16> {
        if !self.options.clients {
            return Vec::new();
        }
        let mut ports = vec![self.port];
        if self.options.listener_mode == ListenerMode::PerShard {
            ports.extend((0..self.options.shards()).map(|i| self.port + 1 + i as u16));
        }
        ports
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        if !self.options.clients || self.options.tls {
            let starts = self.starts;
            while !self
                .log()
                .rsplit("=== start #")
                .next()
                .is_some_and(|l| l.starts_with(&starts.to_string()) && l.contains("shardlog ready"))
            {
                if self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                    .is_some()
                {
                    self.child = None;
                    self.fail("the broker exited during start-up");
                }
                if start.elapsed() > START_TIMEOUT {
                    self.kill9();
                    self.fail(&format!("no \"shardlog ready\" within {START_TIMEOUT:?}"));
                }
                thread::sleep(Duration::from_millis(25));
            }
            return;
        }
        let mut pending = self.expected_ports();
        while !pending.is_empty() {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait().ok().flatten(),
                None => None,
            };
            if let Some(status) = exited {
                self.child = None;
                self.fail(&format!(
                    "the broker exited during start-up ({})",
                    describe(status)
                ));
            }
            if start.elapsed() > START_TIMEOUT {
                self.kill9();
                self.fail(&format!(
                    "the broker did not accept connections on ports {pending:?} within {START_TIMEOUT:?}"
                ));
            }
            pending.retain(|&port| !answers_api_versions(self.host, port));
            if !pending.is_empty() {
                thread::sleep(Duration::from_millis(25));
            }
        }
    }

    /// The last `LOG_TAIL_BYTES` of the log.
    pub fn log_tail(&self) -> String {
        let Ok(mut f) = File::open(&self.log_path) else {
            return format!("(no log at {})", self.log_path.display());
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let from = len.saturating_sub(LOG_TAIL_BYTES);
        let _ = f.seek(SeekFrom::Start(from));
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        let mut out = String::new();
        if from > 0 {
            out.push_str(&format!("(... first {from} bytes left out)\n"));
        }
        out.push_str(&String::from_utf8_lossy(&buf));
        out
    }

    /// Prints the log tail and panics. Keeps the temporary directory.
    fn fail(&mut self, msg: &str) -> ! {
        self.keep_dir();
        panic!(
            "{msg}\n--- broker log {} ---\n{}\n--- end of broker log ---",
            self.log_path.display(),
            self.log_tail()
        );
    }

    fn keep_dir(&mut self) {
        if let Some(dir) = self.dir.take() {
            eprintln!("keeping the broker's directory {}", dir.path().display());
            let _ = dir.keep();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let was_running = self.is_running();
        self.kill9();
        if thread::panicking() {
            self.keep_dir();
            eprintln!(
                "--- broker log {} (the broker was {}) ---\n{}\n--- end of broker log ---",
                self.log_path.display(),
                if was_running { "running" } else { "stopped" },
                self.log_tail()
            );
        }
    }
}

/// Whether a Kafka broker on `host`:`port` answers an ApiVersions v0
/// request (a socket that merely accepts, such as a dying process's, does
/// not count).
fn answers_api_versions(host: std::net::Ipv4Addr, port: u16) -> bool {
    let addr = SocketAddr::from((host, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(1));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return false;
    }
    const CORRELATION_ID: i32 = 0x5348_4c47;
    let client_id = b"shardlog-test-ready";
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    body.extend_from_slice(&0i16.to_be_bytes()); // v0
    body.extend_from_slice(&CORRELATION_ID.to_be_bytes());
    body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    body.extend_from_slice(client_id);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    if stream.write_all(&frame).is_err() {
        return false;
    }
    // Size, correlation id, error code.
    let mut head = [0u8; 10];
    if stream.read_exact(&mut head).is_err() {
        return false;
    }
    let size = i32::from_be_bytes(head[0..4].try_into().unwrap());
    let correlation = i32::from_be_bytes(head[4..8].try_into().unwrap());
    let error = i16::from_be_bytes(head[8..10].try_into().unwrap());
    size >= 6 && correlation == CORRELATION_ID && error == 0
}

/// The `shardlog` binary cargo built alongside this test.
pub fn binary() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_shardlog") {
        Some(path) => PathBuf::from(path),
        None => panic!("this package has no `shardlog` binary target to test"),
    }
}

/// Reserves `count` consecutive loopback ports P..P+count: each was free to
/// bind when checked, and they are locked against the other fixtures, in
/// this process and in concurrently running test processes, through lock
/// files for slots of `PORT_SLOT` ports (so at most a few thousand files).
pub fn reserve_ports(count: u16) -> (u16, Vec<File>) {
    // Below Linux's ephemeral range (32768..), so outgoing connections do not
    // take them meanwhile.
    const LOW: u16 = 20_000;
    const HIGH: u16 = 32_000;
    const PORT_SLOT: u16 = 8;
    const SLOTS: u64 = ((HIGH - LOW) / PORT_SLOT) as u64;
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let lock_dir = std::env::temp_dir().join("shardlog-test-ports");
    std::fs::create_dir_all(&lock_dir).expect("create the port lock directory");
    let slots = count.div_ceil(PORT_SLOT) as u64;
    let mut seed = ((std::process::id() as u64) << 32)
        ^ SEQ
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    for _ in 0..500 {
        // xorshift64*
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let first = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) % (SLOTS - slots + 1);
        let locks: Option<Vec<File>> = (first..first + slots)
            .map(|slot| lock_slot(&lock_dir, slot))
            .collect();
        let Some(locks) = locks else { continue };
        let base = LOW + first as u16 * PORT_SLOT;
        if (base..base + count).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()) {
            return (base, locks);
        }
    }
    panic!("found no {count} consecutive free loopback ports in {LOW}..{HIGH}");
}

fn lock_slot(lock_dir: &Path, slot: u64) -> Option<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_dir.join(format!("slot-{slot}.lock")))
        .ok()?;
    lock_port_file(&file)?;
    Some(file)
}

// `File::try_lock` is newer than the workspace's declared rust-version; this
// helper is only for tests, which the toolchain here builds.
#[allow(clippy::incompatible_msrv)]
fn lock_port_file(file: &File) -> Option<()> {
    file.try_lock().ok()
}

/// `PR_SET_PDEATHSIG`: the broker gets SIGKILL if the test thread that
/// started it goes away (a crashed or killed test process leaves no broker
/// behind).
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes
    // the async-signal-safe prctl system call.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sets the broker's open-files limit, soft and hard, so it cannot raise it.
#[allow(unsafe_code)]
fn limit_open_files(cmd: &mut Command, max: u64) {
    // SAFETY: the closure runs in the forked child before exec and only makes
    // the async-signal-safe setrlimit system call on a struct it owns.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: max,
                rlim_max: max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[allow(unsafe_code)]
fn send_signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid, which we have not reaped yet,
    // so it cannot have been reused.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// SIGKILL to the process group `pgid` (a child started with
/// `process_group(0)`, whose group id is its pid), while it is not reaped.
#[allow(unsafe_code)]
pub fn kill_process_group(pgid: u32) {
    // SAFETY: kill(2) with a negative pid signals that process group; the
    // group leader is our unreaped child, so the id cannot have been reused.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), libc::SIGKILL);
    }
}

/// Waits for `child` to exit, at most `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if start.elapsed() >= timeout => return None,
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("wait for child {}: {e}", child.id()),
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// Runs the binary with `overrides` and returns its exit code and stderr;
/// it must exit within a few seconds (a configuration error).
pub fn start_fails(overrides: &[(&str, String)]) -> (Option<i32>, String) {
    let dir = super::temp_dir();
    let mut cmd = Command::new(binary());
    cmd.arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--cores", "0"]);
    for (k, v) in overrides {
        cmd.arg("--override").arg(format!("{k}={v}"));
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run shardlog");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
