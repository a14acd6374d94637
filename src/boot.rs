//! Startup and shutdown: the command line, configuration, the data
//! directory lock, one pinned executor per shard, listeners, signals.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};
use tracing::{error, info, info_span, warn};

use crate::config::{BrokerConfig, ListenerMode};
use crate::net::quotas::ConnectionQuotas;
use crate::shard::metadata::{ClusterMetadata, METADATA_FILE};
use crate::shard::{clean_data_dir, Job, Shard};
use crate::storage::{fsutil, ShardStorage, ShardStorageConfig, SystemClock};

/// shardlog: a Kafka-wire-compatible, thread-per-core message broker.
/// Without a subcommand it runs the broker.
#[derive(Debug, Parser)]
#[command(name = "shardlog", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Address every shard accepts on (Kafka's `listeners`).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Address clients are told to use (Kafka's `advertised.listeners`);
    /// default 127.0.0.1 and the listen port.
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// Data directory (Kafka's `log.dirs`); default ./data.
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// Cores to pin shards to, one shard each: `0`, `0-3`, `1,3`; a core
    /// may repeat (several shards on it). Default: every available core.
    #[arg(long, value_name = "LIST")]
    pub cores: Option<String>,
    /// `single` (every shard behind one port) or `per-shard` (shard i also
    /// listens on port+1+i and is advertised as its own node).
    #[arg(long, value_name = "MODE")]
    pub listener_mode: Option<String>,
    /// A Kafka server.properties file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// KEY=VALUE config setting, applied after the file and the flags
    /// (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Log filter (error, warn, info, debug, trace, or a tracing
    /// EnvFilter); default: RUST_LOG, else info.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// Tools that talk to a running broker.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Consumer groups: state, members, assignments, committed offsets,
    /// log end offsets and lag.
    Groups(crate::admin::groups::GroupsArgs),
    /// Prepares a data directory before the first start, as Kafka's
    /// `kafka-storage format` does: `--add-scram` stores SCRAM credentials
    /// (Kafka's syntax, e.g. 'SCRAM-SHA-256=[name=admin,password=admin-secret]').
    Format(FormatArgs),
}

#[derive(Debug, clap::Args)]
pub struct FormatArgs {
    /// The data directory (log.dirs).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// A SCRAM credential to store; may be repeated.
    #[arg(long, value_name = "MECHANISM=[name=...,password=...]")]
    pub add_scram: Vec<String>,
}

fn format_main(args: FormatArgs) -> ExitCode {
    let entries: Result<Vec<_>, String> = args
        .add_scram
        .iter()
        .map(|a| crate::security::credentials::parse_add_scram(a))
        .collect();
    let done = entries.and_then(|e| {
        crate::security::credentials::add_scram(&args.data_dir, &e)?;
        Ok(e.len())
    });
    match done {
        Ok(n) => {
            println!(
                "Formatted {}: {n} SCRAM credential(s) stored",
                args.data_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shardlog format: {e}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => EnvFilter::new(l),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Builds the configuration from the command line: defaults, the file,
/// the flags, then the overrides.
pub fn build_config(cli: &Cli) -> Result<BrokerConfig, String> {
    let mut config = BrokerConfig::default();
    if let Some(path) = &cli.config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        config
            .apply_properties(&path.display().to_string(), &text)
            .map_err(|e| e.to_string())?;
    }
    let mut set = |k: &str, v: &str| config.set(k, v).map_err(|e| e.to_string());
    if let Some(v) = &cli.listen {
        set("listeners", v)?;
    }
    if let Some(v) = &cli.advertise {
        set("advertised.listeners", v)?;
    }
    if let Some(v) = &cli.data_dir {
        set("log.dirs", &v.display().to_string())?;
    }
    if let Some(v) = &cli.cores {
        set("shardlog.cores", v)?;
    }
    if let Some(v) = &cli.listener_mode {
        set("shardlog.listener.mode", v)?;
    }
    for o in &cli.overrides {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| format!("--override {o:?}: expected KEY=VALUE"))?;
        set(k.trim(), v.trim())?;
    }
    config.finish().map_err(|e| e.to_string())?;
    Ok(config)
}

/// The broker's entry point.
pub fn main() -> ExitCode {
    let mut cli = Cli::parse();
    match cli.command.take() {
        Some(Command::Groups(args)) => return crate::admin::groups::main(args),
        Some(Command::Format(args)) => return format_main(args),
        None => {}
    }
    init_logging(cli.log_level.as_deref());
    let config = match build_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shardlog: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("shardlog: {e}");
            ExitCode::from(1)
        }
    }
}

/// The cores shards run on: the configured list (checked against the
/// cores this process may use) or every usable core.
fn choose_cores(config: &BrokerConfig) -> Result<Vec<usize>, String> {
    let usable: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if config.cores.is_empty() {
        if usable.is_empty() {
            return Ok(vec![0]);
        }
        return Ok(usable);
    }
    if let Some(bad) = config.cores.iter().find(|c| !usable.contains(c)) {
        return Err(format!(
            "core {bad} is not available to this process (usable cores: {usable:?})"
        ));
    }
    Ok(config.cores.clone())
}

/// Bytes of io_uring registered memory per shard: glommio registers it
/// with three rings, and without CAP_IPC_LOCK it must fit RLIMIT_MEMLOCK.
fn io_memory_per_shard(shards: usize) -> usize {
    const DEFAULT: usize = 8 << 20;
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false);
    if root {
        return DEFAULT;
    }
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max locked memory"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .and_then(|v| v.parse::<usize>().ok());
    match limit {
        Some(l) => (l / (3 * shards.max(1))).clamp(64 << 10, DEFAULT),
        None => DEFAULT,
    }
}

/// Fails if another process listens on `addr`: glommio binds with
/// SO_REUSEPORT, which would otherwise share the port silently with another
/// SO_REUSEPORT listener (a second shardlog). A live listener is found by
/// connecting to it; a socket bound without SO_REUSEPORT by a bind probe.
/// Connections of an earlier run lingering in TIME_WAIT count as neither.
fn check_port_free(addr: std::net::SocketAddr) -> Result<(), String> {
    use socket2::{Domain, Socket, Type};
    let mut target = addr;
    if target.ip().is_unspecified() {
        target.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    if std::net::TcpStream::connect_timeout(&target, Duration::from_millis(500)).is_ok() {
        return Err(format!(
            "cannot listen on {addr}: another process is listening on it"
        ));
    }
    let probe = || -> std::io::Result<()> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.bind(&addr.into())
    };
    probe().map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// Waits up to 5 s for `addr` to be free: the listening sockets of a
/// broker that was just killed linger for a moment while the kernel tears
/// down its rings.
fn wait_for_port(addr: std::net::SocketAddr) -> Result<(), String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match check_port_free(addr) {
            Ok(()) => return Ok(()),
            Err(e) if std::time::Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Set once shard 0 has moved this broker's leadership away at shutdown.
static HANDED_OFF: AtomicBool = AtomicBool::new(false);

/// Runs the broker until SIGINT or SIGTERM.
pub fn run(mut config: BrokerConfig) -> Result<(), String> {
    for key in &config.ignored {
        info!("config key {key} has no effect in shardlog; ignored");
    }
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("creating data directory {}: {e}", data_dir.display()))?;
    let lock_path = data_dir.join(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        return Err(format!(
            "data directory {} is in use by another shardlog process (lock {} is held)",
            data_dir.display(),
            lock_path.display()
        ));
    }

    let users = Arc::new(crate::security::credentials::UserStore::load(
        &data_dir,
        config.sasl_plain_users_file.as_deref(),
    )?);
    setup_listener_security(&mut config, &users)?;
    warn_unadvertised_listeners(&config);
    config.users = Some(users);
    raise_open_files_limit();
    crate::storage::log::cleaner::remember_process_cpus();
    let cores = choose_cores(&config)?;
    let shards = cores.len();
    let mut metadata = ClusterMetadata::load(&data_dir)?;
    if !config.authorizer_class_name.is_empty() {
        // The ACLs are part of the metadata; every later version is
        // followed by the controller (`Controller::install`).
        let authorizer = crate::security::acl::Authorizer::new(
            config.super_users.clone(),
            config.allow_everyone_if_no_acl_found,
        );
        authorizer.sync(&metadata.acls);
        info!(
            class = %config.authorizer_class_name,
            acls = authorizer.len(),
            super_users = %config.super_users.join(";"),
            allow_everyone_if_no_acl_found = config.allow_everyone_if_no_acl_found,
            "authorizer"
        );
        config.authorizer = Some(Arc::new(authorizer));
    }
    if metadata.fit_to_shards(shards) {
        warn!("partitions of shards beyond the {shards} configured were moved to the remaining shards");
    }
    clean_data_dir(&data_dir, &metadata)
        .map_err(|e| format!("cleaning {}: {e}", data_dir.display()))?;
    // A single node takes the credentials `shardlog format --add-scram`
    // left into its metadata now (a cluster node proposes them to the
    // quorum once it follows it: `controller::import_scram`).
    let users = config.users.clone().expect("loaded above");
    let pending = users.pending();
    let single = config.kraft.roles.is_none();
    if single && !pending.is_empty() {
        crate::security::credentials::apply_changes(&mut metadata.scram, &[], &pending);
    }
    fsutil::write_file_durably_blocking(&data_dir, METADATA_FILE, &metadata.encode())
        .map_err(|e| format!("writing {METADATA_FILE}: {e}"))?;
    if single && !pending.is_empty() {
        users.imported()?;
        info!(
            credentials = pending.len(),
            "formatted SCRAM credentials imported into the metadata"
        );
    }
    users.sync(&metadata.scram);
    config.groups.offsets_partitions =
        crate::group::resolve_offsets_partitions(&data_dir, config.groups.offsets_partitions)?;

    let quorum = quorum_config(&config, shards)?;
    if quorum.is_some() && !metadata.cluster && !metadata.topics.is_empty() {
        return Err(format!(
            "{} holds {} topic(s) of a single-node broker; a cluster node starts from an empty data directory (moving topics into a cluster is not supported yet)",
            data_dir.display(),
            metadata.topics.len()
        ));
    }
    check_client_ports(&config, shards)?;
    let mut addrs: Vec<std::net::SocketAddr> = client_addrs(&config, shards)
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    addrs.extend(quorum.as_ref().and_then(Membership::listen));
    for addr in addrs {
        wait_for_port(addr)?;
    }
    let quorum_status = quorum.as_ref().map(|q| {
        let ids: Vec<i32> = q.voters().iter().map(|v| v.node_id).collect();
        let status = crate::cluster::QuorumStatus::new(config.node_id, &ids);
        let image = crate::cluster::MetadataImage::new();
        (
            Arc::new(std::sync::RwLock::new(status)),
            Arc::new(std::sync::RwLock::new(image)),
        )
    });

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| format!("signal: {e}"))?;
    }

    let mut metrics_listener = bind_metrics(&config)?;
    let config = Arc::new(config);
    crate::net::keep_freed_memory_for_reuse();
    let io_memory = io_memory_per_shard(shards);
    let mesh: MeshBuilder<Job, _> = MeshBuilder::full(shards, 1024);
    let ready = Arc::new(AtomicUsize::new(0));
    let drained = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(shards);
    let quotas = ConnectionQuotas::new(&config);
    for (i, &core) in cores.iter().enumerate() {
        let config = config.clone();
        let quotas = quotas.clone();
        let metadata = metadata.clone();
        let mesh = mesh.clone();
        let quorum = quorum.clone();
        let quorum_status = quorum_status.clone();
        let (stop, ready, drained, failed) =
            (stop.clone(), ready.clone(), drained.clone(), failed.clone());
        // The metrics endpoint runs on the first shard.
        let metrics = if i == 0 {
            metrics_listener.take()
        } else {
            None
        };
        let mut builder = LocalExecutorBuilder::new(Placement::Fixed(core))
            .name(&format!("shard-{i}"))
            .io_memory(io_memory);
        if config.spin_before_park_us > 0 {
            builder = builder.spin_before_park(Duration::from_micros(config.spin_before_park_us));
        }
        let handle = builder
            .spawn(move || async move {
                let mesh = if shards > 1 {
                    match mesh.join().await {
                        Ok(m) => Some(m),
                        Err(e) => {
                            error!("joining the shard mesh failed: {e}");
                            failed.store(true, Ordering::SeqCst);
                            stop.store(true, Ordering::SeqCst);
                            return;
                        }
                    }
                } else {
                    None
                };
                let id = mesh.as_ref().map_or(0, |(s, _)| s.peer_id());
                let span = info_span!("shard", id);
                let _entered = span.enter();
                let cluster = ClusterRole {
                    quorum,
                    status: quorum_status,
                };
                if let Err(e) = shard_main(
                    id, core, config, metadata, mesh, quotas, cluster, &stop, &ready, &drained,
                    shards, metrics,
                )
                .await
                {
                    error!("shard {id} failed: {e}");
                    failed.store(true, Ordering::SeqCst);
                    stop.store(true, Ordering::SeqCst);
                    drained.fetch_add(1, Ordering::SeqCst);
                }
            })
            .map_err(|e| format!("starting the executor for core {core}: {e}"))?;
        handles.push(handle);
    }
    for h in handles {
        let _ = h.join();
    }
    drop(lock);
    if failed.load(Ordering::SeqCst) {
        return Err("a shard failed; see the log above".to_string());
    }
    info!("shut down cleanly");
    Ok(())
}

/// Raises the soft limit on open files to the hard limit: every connection
/// takes a descriptor (two while its socket buffer is full), and the
/// default soft limit of many systems is far below what the hard limit
/// allows.
#[allow(unsafe_code)]
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed
    // by pointer, which lives on this stack frame for both calls.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
            && limit.rlim_cur < limit.rlim_max
            && {
                let wanted = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0
            }
    };
    if raised {
        info!(
            from = limit.rlim_cur,
            to = limit.rlim_max,
            "raised the open files limit"
        );
    }
}

/// With `advertised.listeners` set, a client listener it leaves out is
/// advertised at its own address; Kafka lists no broker to that
/// listener's clients instead (a Kafka configuration that relies on it is
/// a broken one), so this is said once at start.
fn warn_unadvertised_listeners(config: &BrokerConfig) {
    let advertised = &config.kraft.advertised;
    if advertised.is_empty() || config.client_listeners.len() == 1 {
        return;
    }
    for l in &config.client_listeners {
        if !advertised.iter().any(|a| a.name == l.name) {
            warn!(
                listener = %l.name,
                advertised = %format!("{}:{}", l.advertise.0, l.advertise.1),
                "advertised.listeners has no entry for this listener: its clients are told its own address (Kafka would list no broker to them)"
            );
        }
    }
}

/// TLS and SASL for the client listeners that use them: a TLS
/// configuration per distinct keystore/truststore/client-auth set (one
/// watcher reloads them all, on file change or SIGHUP), the SASL
/// mechanisms and re-authentication period per listener, one user store.
fn setup_listener_security(
    config: &mut BrokerConfig,
    users: &Arc<crate::security::credentials::UserStore>,
) -> Result<(), String> {
    use crate::security::tls::{ClientAuth, TlsConfig};
    let mut built: Vec<(crate::config::ListenerSecurity, Arc<TlsConfig>)> = Vec::new();
    let failure_delay_ms = config.failed_authentication_delay_ms;
    for l in &mut config.client_listeners {
        if l.protocol.uses_tls() {
            let keystore = l.security.ssl_keystore_location.clone().ok_or_else(|| {
                format!(
                    "ssl.keystore.location is required on the TLS listener {}",
                    l.name
                )
            })?;
            let auth = ClientAuth::parse(&l.security.ssl_client_auth)
                .ok_or("ssl.client.auth: must be none, requested or required")?;
            let same = |s: &crate::config::ListenerSecurity| {
                s.ssl_keystore_location == l.security.ssl_keystore_location
                    && s.ssl_truststore_location == l.security.ssl_truststore_location
                    && s.ssl_client_auth == l.security.ssl_client_auth
            };
            let tls = match built.iter().find(|(s, _)| same(s)) {
                Some((_, tls)) => tls.clone(),
                None => {
                    let tls = Arc::new(TlsConfig::load(
                        &keystore,
                        l.security.ssl_truststore_location.as_deref(),
                        auth,
                    )?);
                    built.push((l.security.clone(), tls.clone()));
                    tls
                }
            };
            l.tls = Some(tls);
            info!(
                listener = %l.name,
                protocol = l.protocol.name(),
                client_auth = %l.security.ssl_client_auth,
                "TLS listener"
            );
        }
        if l.protocol.uses_sasl() {
            info!(
                listener = %l.name,
                mechanisms = %l.security.sasl_enabled_mechanisms.join(","),
                scram_users = users.read().scram_users().len(),
                protocol = l.protocol.name(),
                "SASL listener"
            );
            l.sasl = Some(Arc::new(crate::security::SaslConfig {
                mechanisms: l.security.sasl_enabled_mechanisms.clone(),
                users: users.clone(),
                failure_delay_ms,
                reauth_ms: l.security.connections_max_reauth_ms,
            }));
        }
    }
    if !built.is_empty() {
        let hup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
            .map_err(|e| format!("signal: {e}"))?;
        crate::security::tls::watch(built.into_iter().map(|(_, t)| t).collect(), hup);
    }
    Ok(())
}

/// The client listeners' addresses, each with its listener's index: every
/// listener's shared port and, in per-shard mode, one per shard above it.
/// None on a controller-only node.
fn client_addrs(config: &BrokerConfig, shards: usize) -> Vec<(std::net::SocketAddr, usize)> {
    if config.kraft.roles.is_some_and(|r| !r.broker) {
        return Vec::new();
    }
    let mut addrs = Vec::new();
    for (i, l) in config.client_listeners.iter().enumerate() {
        addrs.push((l.listen, i));
        if config.listener_mode == ListenerMode::PerShard {
            addrs.extend((0..shards).map(|s| (l.per_shard_addr(s), i)));
        }
    }
    addrs
}

/// Whether two listening addresses take the same port (an unspecified
/// address takes it on every address).
fn same_port(a: std::net::SocketAddr, b: std::net::SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// The client listeners' ports must not meet: in per-shard mode each
/// listener takes its port and the `shards` ports above it.
fn check_client_ports(config: &BrokerConfig, shards: usize) -> Result<(), String> {
    if config.listener_mode == ListenerMode::PerShard {
        for l in &config.client_listeners {
            if usize::from(l.listen.port()) + shards > usize::from(u16::MAX) {
                return Err(format!(
                    "listeners: {}://{} has no room for its {shards} per-shard ports above it",
                    l.name, l.listen
                ));
            }
        }
    }
    let addrs = client_addrs(config, shards);
    for (i, &(a, la)) in addrs.iter().enumerate() {
        if let Some(&(b, lb)) = addrs[i + 1..].iter().find(|&&(b, _)| same_port(a, b)) {
            let (la, lb) = (&config.client_listeners[la], &config.client_listeners[lb]);
            return Err(format!(
                "listeners: {}://{} and {}://{} both need {} (per-shard listener mode gives each listener its port + 1 + shard for each of the {shards} shards: space the listeners' ports at least {} apart)",
                la.name,
                la.listen,
                lb.name,
                lb.listen,
                if a.port() == b.port() { a } else { b },
                shards + 1
            ));
        }
    }
    Ok(())
}

/// The node ids this process answers for: `node.id`, and in per-shard
/// mode one more per further shard.
fn own_node_ids(config: &BrokerConfig, shards: usize) -> std::ops::Range<i64> {
    let base = i64::from(config.node_id);
    match config.listener_mode {
        ListenerMode::PerShard => base..base + shards as i64,
        ListenerMode::Single => base..base + 1,
    }
}

/// How a node takes part in the metadata quorum.
#[derive(Clone)]
enum Membership {
    /// A controller: a voter.
    Voter(crate::cluster::QuorumConfig),
    /// A broker-only node: an observer.
    Observer(crate::cluster::observer::ObserverConfig),
}

impl Membership {
    fn voters(&self) -> &[crate::cluster::VoterAddr] {
        match self {
            Membership::Voter(q) => &q.voters,
            Membership::Observer(o) => &o.voters,
        }
    }

    /// The CONTROLLER listener, on a controller.
    fn listen(&self) -> Option<std::net::SocketAddr> {
        match self {
            Membership::Voter(q) => Some(q.listen),
            Membership::Observer(_) => None,
        }
    }
}

/// The voters of controller.quorum.voters with their hosts resolved.
fn resolve_voters(config: &BrokerConfig) -> Result<Vec<crate::cluster::VoterAddr>, String> {
    let mut voters = Vec::new();
    for v in &config.kraft.voters {
        use std::net::ToSocketAddrs;
        let addr = (v.host.as_str(), v.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                format!(
                    "controller.quorum.voters: cannot resolve the host {} of voter {}",
                    v.host, v.id
                )
            })?;
        voters.push(crate::cluster::VoterAddr {
            node_id: v.id,
            addr,
        });
    }
    Ok(voters)
}

/// What this process registers as a broker: its client nodes.
fn broker_identity(config: &BrokerConfig, shards: usize) -> crate::cluster::BrokerIdentity {
    crate::cluster::BrokerIdentity {
        broker_id: config.node_id,
        endpoints: config
            .client_listeners
            .iter()
            .flat_map(|l| {
                crate::shard::local_nodes(config, l, shards)
                    .into_iter()
                    .map(|n| crate::cluster::Endpoint {
                        node_id: n.node_id,
                        host: n.host,
                        port: n.port as u16,
                        listener: l.name.clone(),
                    })
            })
            .collect(),
        rack: config.kraft.rack.clone(),
    }
}

/// The node's part in the quorum, after the checks that need the shard
/// count: the process's node ids (one per shard in per-shard mode) hold no
/// voter but its own, and a controller's port is none of the client
/// ports.
fn quorum_config(config: &BrokerConfig, shards: usize) -> Result<Option<Membership>, String> {
    let Some(roles) = config.kraft.roles else {
        return Ok(None);
    };
    let ids = own_node_ids(config, shards);
    if let Some(v) = config
        .kraft
        .voters
        .iter()
        .find(|v| v.id != config.node_id && ids.contains(&i64::from(v.id)))
    {
        return Err(format!(
            "controller.quorum.voters: voter id {} falls among this node's ids {}..={} (node.id={} and one id per shard in per-shard listener mode); give nodes node.id values at least the shard count apart, e.g. 1000, 2000, 3000",
            v.id,
            ids.start,
            ids.end - 1,
            config.node_id
        ));
    }
    let kraft = &config.kraft;
    let voters = resolve_voters(config)?;
    if !roles.controller {
        return Ok(Some(Membership::Observer(
            crate::cluster::observer::ObserverConfig {
                node_id: config.node_id,
                voters,
                request_timeout: Duration::from_millis(kraft.request_timeout_ms),
                broker: broker_identity(config, shards),
            },
        )));
    }
    let listen = config
        .controller_listen
        .ok_or("a controller needs a controller listener (controller.listener.names)")?;
    if let Some((a, _)) = client_addrs(config, shards)
        .into_iter()
        .find(|&(a, _)| same_port(a, listen))
    {
        return Err(format!(
            "listeners: the controller listener {listen} collides with the client listener {a} (per-shard listener mode uses the client port + 1 + shard for each shard)"
        ));
    }
    Ok(Some(Membership::Voter(crate::cluster::QuorumConfig {
        node_id: config.node_id,
        voters,
        listen,
        fetch_timeout: Duration::from_millis(kraft.fetch_timeout_ms),
        election_timeout: Duration::from_millis(kraft.election_timeout_ms),
        request_timeout: Duration::from_millis(kraft.request_timeout_ms),
        session_timeout: Duration::from_millis(kraft.broker_session_timeout_ms),
        broker: roles.broker.then(|| broker_identity(config, shards)),
        snapshot_bytes: kraft.snapshot_bytes,
        leader_rebalance: leader_rebalance(config)?,
    })))
}

/// auto.leader.rebalance.enable (default true) and
/// leader.imbalance.check.interval.seconds (default 300, at least 1).
fn leader_rebalance(config: &BrokerConfig) -> Result<Option<Duration>, String> {
    let get = |k: &str| config.kafka_static.get(k).map(|v| v.trim());
    let enabled = match get("auto.leader.rebalance.enable") {
        None => true,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(format!(
                "auto.leader.rebalance.enable: expected true or false, got {v:?}"
            ))
        }
    };
    let every = match get("leader.imbalance.check.interval.seconds") {
        None => 300,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(format!(
                    "leader.imbalance.check.interval.seconds: expected a whole number of seconds >= 1, got {v:?}"
                ))
            }
        },
    };
    Ok(enabled.then(|| Duration::from_secs(every)))
}

/// What a shard does for the cluster: shard 0 of a controller runs the
/// quorum member (or observer); every shard of a cluster node can read its
/// status and image.
struct ClusterRole {
    quorum: Option<Membership>,
    status: Option<(crate::cluster::SharedStatus, crate::cluster::SharedImage)>,
}

/// Binds the metrics endpoint's address, without SO_REUSEPORT (a second
/// broker on the same host must not share it). An address set in the
/// configuration that cannot be bound stops startup; the default one only
/// logs a warning (another broker on the host may hold it).
fn bind_metrics(config: &BrokerConfig) -> Result<Option<std::net::TcpListener>, String> {
    let Some(addr) = config.metrics_listen else {
        return Ok(None);
    };
    match std::net::TcpListener::bind(addr).and_then(|l| l.set_nonblocking(true).map(|()| l)) {
        Ok(l) => Ok(Some(l)),
        Err(e) if !config.set_keys.contains("shardlog.metrics.listen") => {
            warn!("metrics endpoint off: cannot listen on {addr} (the default shardlog.metrics.listen): {e}; set shardlog.metrics.listen to another address, or empty to silence this");
            Ok(None)
        }
        Err(e) => Err(format!(
            "cannot listen on {addr} (shardlog.metrics.listen): {e}"
        )),
    }
}

/// A listener bound by [`bind_metrics`] as glommio's, on the shard that
/// serves it.
#[allow(unsafe_code)]
fn glommio_listener(listener: std::net::TcpListener) -> glommio::net::TcpListener {
    use std::os::fd::{FromRawFd, IntoRawFd};
    // SAFETY: the descriptor comes from a listening socket this function
    // owns and gives up; glommio's listener takes sole ownership of it.
    unsafe { glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd()) }
}

#[allow(clippy::too_many_arguments)]
async fn shard_main(
    id: usize,
    core: usize,
    config: Arc<BrokerConfig>,
    metadata: ClusterMetadata,
    mesh: Option<(
        glommio::channels::channel_mesh::Senders<Job>,
        glommio::channels::channel_mesh::Receivers<Job>,
    )>,
    quotas: Arc<ConnectionQuotas>,
    cluster: ClusterRole,
    stop: &AtomicBool,
    ready: &AtomicUsize,
    drained: &AtomicUsize,
    shards: usize,
    metrics: Option<std::net::TcpListener>,
) -> Result<(), String> {
    let storage_config = ShardStorageConfig {
        cache_bytes_max: config.cache_bytes,
        preallocate_bytes_max: config.preallocate_bytes_max,
        read_ahead_bytes_max: config.read_ahead_bytes,
        zero_ahead_bytes: config.zero_ahead_bytes,
        durable_writes: config.durable_writes,
        ..ShardStorageConfig::default()
    };
    let storage = ShardStorage::start(
        &config.data_dir,
        id,
        storage_config,
        std::rc::Rc::new(SystemClock),
    )
    .await
    .map_err(|e| e.to_string())?;
    let shard = Shard::start(config.clone(), storage, metadata, mesh)
        .await
        .map_err(|e| format!("opening partitions: {e}"))?;
    let mut quorum = None;
    let mut observing = None;
    if let Some((status, image)) = cluster.status {
        let _ = shard.quorum.set(status.clone());
        let _ = shard.image.set(image.clone());
        // Groups are coordinated where the image places their offsets
        // partition: this shard's node.
        let own_node = shard.node_of_shard(shard.id);
        let leads_image = image.clone();
        shard.groups.set_leads(std::rc::Rc::new(move |p| {
            let image = leads_image.read().expect("image lock");
            image.offsets_owners.get(p) == Some(&own_node)
        }));
        let proposer = match (id, cluster.quorum) {
            (0, Some(Membership::Voter(q))) => {
                let member = crate::cluster::quorum::start(
                    q,
                    &config.data_dir,
                    &shard.storage,
                    status,
                    image,
                )
                .await?;
                let proposer = member.proposer();
                quorum = Some(member);
                Some(proposer)
            }
            (0, Some(Membership::Observer(o))) => {
                let observer = crate::cluster::observer::start(o, status, image);
                let proposer = observer.proposer();
                observing = Some(observer);
                Some(proposer)
            }
            _ => None,
        };
        if let Some(proposer) = proposer {
            let _ = shard.proposer.set(proposer.clone());
            glommio::spawn_local(crate::shard::controller::Controller::follow_image(
                shard.clone(),
                proposer,
            ))
            .detach();
        }
    }
    // Every shard has opened its partitions before any accepts clients: a
    // request routed to a shard still opening would find no partition
    // there (NOT_LEADER_OR_FOLLOWER). `ready` counts to `shards` here and
    // to twice that once every shard serves.
    ready.fetch_add(1, Ordering::SeqCst);
    while ready.load(Ordering::SeqCst) < shards && !stop.load(Ordering::SeqCst) {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    let mut addrs = Vec::new();
    if config.kraft.roles.is_none_or(|r| r.broker) {
        for (i, l) in config.client_listeners.iter().enumerate() {
            addrs.push((l.listen, i));
            if config.listener_mode == ListenerMode::PerShard {
                addrs.push((l.per_shard_addr(id), i));
            }
        }
    }
    let network = crate::net::start(&shard, &addrs, quotas).map_err(|e| e.to_string())?;
    shard.serving.set(true);
    glommio::spawn_local(crate::metrics::sample_busy(shard.clone())).detach();
    let caps = crate::metrics::exposition::Caps {
        topics: config.metrics_max_topics,
        partitions: config.metrics_max_partitions,
        groups: config.metrics_max_groups,
    };
    let metrics = metrics.map(|listener| {
        glommio::spawn_local(crate::metrics::http::serve(
            shard.clone(),
            glommio_listener(listener),
            caps,
        ))
    });
    let n = ready.fetch_add(1, Ordering::SeqCst) + 1;
    info!(core, "shard ready");
    if n == 2 * shards {
        info!(
            listeners = %config
                .client_listeners
                .iter()
                .map(|l| format!("{}://{}", l.name, l.listen))
                .collect::<Vec<_>>()
                .join(","),
            advertised = %config
                .client_listeners
                .iter()
                .map(|l| format!("{}://{}:{}", l.name, l.advertise.0, l.advertise.1))
                .collect::<Vec<_>>()
                .join(","),
            mode = config.listener_mode.name(),
            shards,
            data_dir = %config.data_dir.display(),
            "shardlog ready"
        );
    }
    while !stop.load(Ordering::SeqCst) {
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
    // Kafka's controlled shutdown: leadership moves to the other in-sync
    // replicas (shard 0 asks the quorum, the others keep serving until
    // it is done) before this node stops serving.
    if shard.id == crate::shard::CONTROLLER_SHARD {
        crate::shard::controller::controlled_shutdown(&shard).await;
        HANDED_OFF.store(true, Ordering::SeqCst);
    } else {
        let deadline = std::time::Instant::now() + crate::shard::controller::HAND_OFF_TIMEOUT;
        while !HANDED_OFF.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
    }
    info!("shutting down: no new connections; finishing requests in flight");
    shard.begin_shutdown();
    network.stopped().await;
    if let Some(m) = metrics {
        m.await;
    }
    // Connections finish what they have read, bounded by the longest
    // long-poll a client may ask for.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while shard.connections.get() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    // Every shard stops serving before any closes its partitions: requests
    // forwarded from other shards must still find them.
    drained.fetch_add(1, Ordering::SeqCst);
    while drained.load(Ordering::SeqCst) < shards {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    shard.close_partitions().await;
    if let Some(o) = observing {
        o.stop();
    }
    if let Some(q) = quorum {
        q.stop().await;
    }
    info!("partitions closed");
    Ok(())
}
