//! Broker configuration with Apache Kafka's `server.properties` key names,
//! and the topic configs with their broker-level synonyms.
//!
//! Sources, later ones winning: built-in defaults, the `--config` file,
//! command-line flags, `--override KEY=VALUE`. Unknown keys and bad values
//! stop startup with a message that names them. Keys of Kafka's that have
//! no meaning here (thread counts, ZooKeeper and KRaft settings, ...) are
//! accepted and ignored with a log line, so a stock `server.properties`
//! still starts.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::partition::PartitionConfig;
use crate::storage::{ConfigError, LogConfig};

pub mod group;
pub mod kraft;
pub mod registry;

use registry::registry;

/// How clients reach the shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerMode {
    /// Every shard accepts on the one listener; requests are split by the
    /// owning shard and forwarded across cores.
    Single,
    /// Additionally, shard i listens on its own port (listener port + 1 + i)
    /// and is advertised as broker node i leading the partitions it owns,
    /// so clients send each partition's requests straight to its core.
    PerShard,
}

impl ListenerMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "single" => Some(ListenerMode::Single),
            "per-shard" => Some(ListenerMode::PerShard),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ListenerMode::Single => "single",
            ListenerMode::PerShard => "per-shard",
        }
    }
}

/// A config key or value that stops startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerConfigError {
    #[error("unknown config key {0:?}")]
    UnknownKey(String),
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{file}:{line}: expected KEY=VALUE, got {text:?}")]
    Syntax {
        file: String,
        line: usize,
        text: String,
    },
    /// Keys that do not fit together, or a value refused for a reason
    /// that is not the value's own (Kafka's wording).
    #[error("{0}")]
    Cluster(String),
}

impl From<ConfigError> for BrokerConfigError {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::UnknownKey(k) => BrokerConfigError::UnknownKey(k),
            ConfigError::InvalidValue { key, value, reason } => BrokerConfigError::InvalidValue {
                key,
                value,
                reason: reason.to_string(),
            },
        }
    }
}

/// A topic config: its name, the broker key that sets its default (Kafka's
/// synonym), and Kafka's default.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub broker_key: &'static str,
    pub default: &'static str,
    /// Kafka's ConfigType name as DescribeConfigs v3+ reports it.
    pub kind: ConfigKind,
    pub doc: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl ConfigKind {
    /// DescribeConfigs v3+ `config_type`.
    pub fn wire(self) -> i8 {
        match self {
            ConfigKind::Boolean => 1,
            ConfigKind::String => 2,
            ConfigKind::Int => 3,
            ConfigKind::Short => 4,
            ConfigKind::Long => 5,
            ConfigKind::Double => 6,
            ConfigKind::List => 7,
            ConfigKind::Class => 8,
            ConfigKind::Password => 9,
        }
    }
}

/// The topic configs shardlog acts on, with Kafka's names and defaults
/// (flush.ms is the one deliberate deviation: see [`LogConfig::flush_ms`]).
/// [`topic_configs`] adds the rest of Kafka's topic keys.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        broker_key: "log.cleanup.policy",
        default: "delete",
        kind: ConfigKind::List,
        doc: "delete, compact, or both. delete: retention removes old segments. compact: every record needs a key (others are refused with INVALID_RECORD, KIP-467) and the log cleaner keeps the latest record per key. Without delete, retention and DeleteRecords do not apply.",
    },
    TopicConfigDef {
        name: "compression.type",
        broker_key: "compression.type",
        default: "producer",
        kind: ConfigKind::String,
        doc: "producer stores batches as the producer compressed them; uncompressed, gzip, snappy, lz4 or zstd recompresses every batch in another codec (gzip and zstd at compression.gzip.level and compression.zstd.level).",
    },
    TopicConfigDef {
        name: "compression.gzip.level",
        broker_key: "compression.gzip.level",
        default: "-1",
        kind: ConfigKind::Int,
        doc: "gzip level (1-9, or -1 for zlib's default) of batches a gzip topic recompresses.",
    },
    TopicConfigDef {
        name: "compression.zstd.level",
        broker_key: "compression.zstd.level",
        default: "3",
        kind: ConfigKind::Int,
        doc: "zstd level of batches a zstd topic recompresses.",
    },
    TopicConfigDef {
        name: "flush.messages",
        broker_key: "log.flush.interval.messages",
        default: "9223372036854775807",
        kind: ConfigKind::Long,
        doc: "Unsynced records that start an fdatasync; 1 makes every record durable before it is visible.",
    },
    TopicConfigDef {
        name: "flush.ms",
        broker_key: "log.flush.interval.ms",
        default: "1000",
        kind: ConfigKind::Long,
        doc: "Longest time written data stays unsynced.",
    },
    TopicConfigDef {
        name: "index.interval.bytes",
        broker_key: "log.index.interval.bytes",
        default: "4096",
        kind: ConfigKind::Int,
        doc: "Bytes between offset index entries.",
    },
    TopicConfigDef {
        name: "max.message.bytes",
        broker_key: "message.max.bytes",
        default: "1048588",
        kind: ConfigKind::Int,
        doc: "Largest record batch accepted.",
    },
    TopicConfigDef {
        name: "message.timestamp.after.max.ms",
        broker_key: "log.message.timestamp.after.max.ms",
        default: "3600000",
        kind: ConfigKind::Long,
        doc: "With CreateTime, a batch holding a record timestamped more than this after the broker's clock is refused with INVALID_TIMESTAMP.",
    },
    TopicConfigDef {
        name: "message.timestamp.before.max.ms",
        broker_key: "log.message.timestamp.before.max.ms",
        default: "9223372036854775807",
        kind: ConfigKind::Long,
        doc: "With CreateTime, a batch holding a record timestamped more than this before the broker's clock is refused with INVALID_TIMESTAMP.",
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        broker_key: "log.message.timestamp.type",
        default: "CreateTime",
        kind: ConfigKind::String,
        doc: "CreateTime or LogAppendTime.",
    },
    TopicConfigDef {
        name: "delete.retention.ms",
        broker_key: "log.cleaner.delete.retention.ms",
        default: "86400000",
        kind: ConfigKind::Long,
        doc: "How long a tombstone of a compacted topic stays after the cleaner first keeps it (KIP-534's delete horizon).",
    },
    TopicConfigDef {
        name: "min.cleanable.dirty.ratio",
        broker_key: "log.cleaner.min.cleanable.ratio",
        default: "0.5",
        kind: ConfigKind::Double,
        doc: "The cleaner cleans a compacted log once its uncleaned closed segments are this share of its closed segments' bytes.",
    },
    TopicConfigDef {
        name: "min.compaction.lag.ms",
        broker_key: "log.cleaner.min.compaction.lag.ms",
        default: "0",
        kind: ConfigKind::Long,
        doc: "Segments holding records younger than this are not cleaned.",
    },
    TopicConfigDef {
        name: "max.compaction.lag.ms",
        broker_key: "log.cleaner.max.compaction.lag.ms",
        default: "9223372036854775807",
        kind: ConfigKind::Long,
        doc: "A dirty segment older than this is cleaned whatever min.cleanable.dirty.ratio says.",
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        broker_key: "min.insync.replicas",
        default: "1",
        kind: ConfigKind::Int,
        doc: "acks=all produce fails with NOT_ENOUGH_REPLICAS above 1 (one replica).",
    },
    TopicConfigDef {
        name: "retention.bytes",
        broker_key: "log.retention.bytes",
        default: "-1",
        kind: ConfigKind::Long,
        doc: "Largest size of a partition before old segments are deleted.",
    },
    TopicConfigDef {
        name: "retention.ms",
        broker_key: "log.retention.ms",
        default: "604800000",
        kind: ConfigKind::Long,
        doc: "Age after which closed segments are deleted.",
    },
    TopicConfigDef {
        name: "segment.bytes",
        broker_key: "log.segment.bytes",
        default: "1073741824",
        kind: ConfigKind::Int,
        doc: "Size of a segment file.",
    },
    TopicConfigDef {
        name: "segment.ms",
        broker_key: "log.roll.ms",
        default: "604800000",
        kind: ConfigKind::Long,
        doc: "Age after which the active segment rolls.",
    },
];

/// Every topic config Kafka has, in Kafka's (alphabetical) order: those
/// shardlog acts on ([`TOPIC_CONFIGS`]) and the others, which are checked
/// as Kafka checks them, stored and described (each one's documentation
/// says why shardlog does not act on it).
pub fn topic_configs() -> &'static [TopicConfigDef] {
    static ALL: OnceLock<Vec<TopicConfigDef>> = OnceLock::new();
    ALL.get_or_init(|| {
        registry()
            .topic_keys()
            .iter()
            .map(|k| {
                TOPIC_CONFIGS
                    .iter()
                    .find(|d| d.name == k.name)
                    .copied()
                    .unwrap_or(TopicConfigDef {
                        name: k.name,
                        broker_key: k.synonym,
                        default: k.default.unwrap_or(""),
                        kind: k.kind,
                        doc: stored_only_note(k.name),
                    })
            })
            .collect()
    })
}

/// Why a Kafka topic key that shardlog stores has no effect here.
fn stored_only_note(name: &str) -> &'static str {
    match name {
        "follower.replication.throttled.replicas"
        | "leader.replication.throttled.replicas"
        | "unclean.leader.election.enable" => {
            "Kafka's key, stored and described: partitions have one replica, so there is no replication to throttle and no leader election."
        }
        "local.retention.bytes"
        | "local.retention.ms"
        | "remote.log.copy.disable"
        | "remote.log.delete.on.disable" => {
            "Kafka's key, stored and described: tiered storage is not implemented."
        }
        "remote.storage.enable" => "Only false: tiered storage is not implemented.",
        "compression.lz4.level" => {
            "Kafka's key, stored and described: shardlog's lz4 encoder has one (fast) level."
        }
        "segment.jitter.ms" => "Kafka's key, stored and described: segments roll at segment.ms without jitter.",
        _ => "Kafka's key, stored and described; shardlog does not act on it.",
    }
}

pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    topic_configs().iter().find(|d| d.name == name)
}

pub fn topic_def_for_broker_key(key: &str) -> Option<&'static TopicConfigDef> {
    topic_configs()
        .iter()
        .find(|d| !d.broker_key.is_empty() && d.broker_key == key)
}

/// Checks one topic config value; shared by CreateTopics, AlterConfigs and
/// the broker-level synonyms.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), BrokerConfigError> {
    let invalid = |reason: &str| BrokerConfigError::InvalidValue {
        key: name.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let Some(key) = registry().topic_key(name) else {
        return Err(BrokerConfigError::UnknownKey(name.to_string()));
    };
    key.check(value).map_err(|reason| invalid(&reason))?;
    if TOPIC_CONFIGS.iter().all(|d| d.name != name) {
        if name == "remote.storage.enable" && value.trim().eq_ignore_ascii_case("true") {
            return Err(BrokerConfigError::Cluster(
                "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."
                    .to_string(),
            ));
        }
        return Ok(());
    }
    match name {
        "cleanup.policy" => {}
        "compression.type" => {
            parse_compression_type(value)?;
        }
        "min.insync.replicas"
        | "delete.retention.ms"
        | "min.cleanable.dirty.ratio"
        | "min.compaction.lag.ms"
        | "max.compaction.lag.ms"
        | "compression.gzip.level"
        | "compression.zstd.level"
        | "message.timestamp.after.max.ms"
        | "message.timestamp.before.max.ms" => {}
        _ => {
            let mut scratch = LogConfig::default();
            scratch.set(name, value)?;
        }
    }
    Ok(())
}

/// compression.type: `None` for `producer`, else the codec batches are
/// stored in (Kafka's values; `uncompressed` is no codec).
pub fn parse_compression_type(
    value: &str,
) -> Result<Option<crate::record::Compression>, BrokerConfigError> {
    use crate::record::Compression;
    Ok(Some(match value.trim() {
        "producer" => return Ok(None),
        "uncompressed" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => {
            return Err(BrokerConfigError::InvalidValue {
                key: "compression.type".to_string(),
                value: value.to_string(),
                reason: "must be one of uncompressed, zstd, lz4, snappy, gzip, producer"
                    .to_string(),
            })
        }
    }))
}

/// A partition's settings from its topic's overrides over the broker's
/// defaults (static, then dynamic).
pub fn partition_config_for(
    broker_defaults: &BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
) -> PartitionConfig {
    let mut config = PartitionConfig::default();
    for def in TOPIC_CONFIGS {
        let value = overrides
            .get(def.name)
            .or_else(|| broker_defaults.get(def.name));
        let Some(value) = value else { continue };
        match def.name {
            "cleanup.policy" => {
                config.cleanup = crate::partition::CleanupPolicy::parse(value);
            }
            "delete.retention.ms" => {
                config.cleaner.delete_retention_ms = value.trim().parse().unwrap_or(86_400_000)
            }
            "min.cleanable.dirty.ratio" => {
                config.cleaner.min_cleanable_dirty_ratio = value.trim().parse().unwrap_or(0.5)
            }
            "min.compaction.lag.ms" => {
                config.cleaner.min_compaction_lag_ms = value.trim().parse().unwrap_or(0)
            }
            "max.compaction.lag.ms" => {
                config.cleaner.max_compaction_lag_ms = value.trim().parse().unwrap_or(i64::MAX)
            }
            "compression.type" => {
                config.compression = parse_compression_type(value).unwrap_or(None);
            }
            "min.insync.replicas" => {
                config.min_insync_replicas = value.trim().parse().unwrap_or(1);
            }
            "compression.gzip.level" => config.gzip_level = value.trim().parse().unwrap_or(-1),
            "compression.zstd.level" => config.zstd_level = value.trim().parse().unwrap_or(3),
            "message.timestamp.after.max.ms" => {
                config.timestamp_after_max_ms = value.trim().parse().unwrap_or(i64::MAX)
            }
            "message.timestamp.before.max.ms" => {
                config.timestamp_before_max_ms = value.trim().parse().unwrap_or(i64::MAX)
            }
            // Values were validated when they were set.
            name => {
                let _ = config.log.set(name, value);
            }
        }
    }
    // KIP-354: a compacted log rolls its active segment at
    // max.compaction.lag.ms at the latest, so the cleaner can reach every
    // record within that bound (Kafka's LogConfig.maxSegmentMs).
    if config.cleanup.compact && config.cleaner.max_compaction_lag_ms > 0 {
        config.log.segment_ms = config
            .log
            .segment_ms
            .min(config.cleaner.max_compaction_lag_ms);
    }
    config
}

/// The authorizer classes shardlog's own authorizer answers for.
pub const AUTHORIZER_CLASSES: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
];

/// Keys of Kafka versions before 4.0 (ZooKeeper mode) that older
/// server.properties files still carry; accepted and logged. Every key of
/// the current Kafka is in [`registry`].
const LEGACY_KAFKA_KEYS: &[&str] = &[
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
    "offsets.commit.required.acks",
];

/// Consumer group coordinator settings, with Kafka's key names. Where the
/// default differs from Kafka's, the field says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// group.min.session.timeout.ms.
    pub min_session_timeout_ms: i32,
    /// group.max.session.timeout.ms.
    pub max_session_timeout_ms: i32,
    /// group.initial.rebalance.delay.ms: how long the first rebalance of an
    /// empty group waits for more members to join.
    pub initial_rebalance_delay_ms: i32,
    /// group.max.size: members (and members still being given an id) per
    /// group. Kafka's default is unbounded; here it bounds a group's memory.
    pub max_size: usize,
    /// offsets.topic.num.partitions: partitions of the internal offsets log.
    /// Fixed once the log exists (the first value written wins, as in Kafka).
    pub offsets_partitions: usize,
    /// offsets.topic.segment.bytes. Kafka's default is 100 MiB; compaction
    /// here copies the live state forward and drops whole segments behind
    /// it, so smaller segments free the space sooner.
    pub offsets_segment_bytes: u64,
    /// offsets.retention.minutes, in ms: committed offsets of a group that
    /// has been empty this long (or of a group-less commit this old) expire.
    pub offsets_retention_ms: i64,
    /// offsets.retention.check.interval.ms.
    pub offsets_retention_check_interval_ms: u64,
    /// offset.metadata.max.bytes: longest commit metadata string.
    pub offset_metadata_max_bytes: usize,
    /// shardlog.groups.max: groups per broker (each shard holds at most its
    /// share, rounded up). Kafka has no such limit.
    pub groups_max: usize,
    /// shardlog.group.metadata.max.bytes: the protocol metadata of a group's
    /// members together, and its stored record. Kafka's effective bound is
    /// its offsets topic's message.max.bytes (1 MiB).
    pub group_metadata_max_bytes: usize,
    /// shardlog.offsets.compaction.interval.ms: how often each offsets log
    /// is checked for compaction.
    pub offsets_compaction_interval_ms: u64,
    /// shardlog.offsets.compaction.min.bytes: an offsets log partition is
    /// compacted once the bytes appended since its last compaction exceed
    /// both this and the live state's size.
    pub offsets_compaction_min_bytes: u64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3000,
            max_size: 1000,
            offsets_partitions: 50,
            offsets_segment_bytes: 16 << 20,
            offsets_retention_ms: 10080 * 60_000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            groups_max: 100_000,
            group_metadata_max_bytes: 1 << 20,
            offsets_compaction_interval_ms: 10_000,
            offsets_compaction_min_bytes: 1 << 20,
        }
    }
}

/// The broker's configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// node.id (broker.id): the node id of the broker; in per-shard mode
    /// shard i is node `node_id + i`.
    pub node_id: i32,
    /// listeners and advertised.listeners: the client listeners, every
    /// shard accepting on each (settled by `finish`; one PLAINTEXT
    /// listener on 0.0.0.0:9092 by default).
    pub client_listeners: Vec<ClientListener>,
    /// `listener.name.<name>.<key>` overrides of the security keys, by
    /// upper-case listener name, applied to that listener by `finish`.
    pub listener_overrides: BTreeMap<String, BTreeMap<String, String>>,
    /// log.dirs: the data directory.
    pub data_dir: PathBuf,
    /// num.partitions.
    pub num_partitions: i32,
    /// default.replication.factor (a single node has one replica: more
    /// fails topic creation, as in Kafka).
    pub default_replication_factor: i16,
    /// replica.lag.time.max.ms: a follower that has not caught up with
    /// the leader for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// replica.selector.class is Kafka's RackAwareReplicaSelector: a
    /// leader sends a consumer that gives its rack (KIP-392) to an in-sync
    /// replica in that rack (else, Kafka's default, every consumer reads
    /// from the leader).
    pub rack_aware_replica_selector: bool,
    /// auto.create.topics.enable.
    pub auto_create_topics: bool,
    /// delete.topic.enable.
    pub delete_topic_enable: bool,
    /// socket.request.max.bytes: largest request frame.
    pub socket_request_max_bytes: usize,
    /// queued.max.request.bytes: request bytes in flight per shard before
    /// the shard stops reading its sockets. Kafka's default is unbounded
    /// (-1); here it bounds memory per shard.
    pub queued_max_request_bytes: usize,
    /// max.connections: connections across the broker (every listener);
    /// past it the listeners stop accepting until one closes, as Kafka's.
    pub max_connections: usize,
    /// max.connections.per.ip: connections from one address; one more is
    /// accepted and closed at once.
    pub max_connections_per_ip: usize,
    /// max.connections.per.ip.overrides: per-address exceptions (IP
    /// addresses only; Kafka also takes host names).
    pub max_connections_per_ip_overrides: HashMap<IpAddr, usize>,
    /// connections.max.idle.ms: a connection with no request read and no
    /// response written this long, and nothing in flight, is closed.
    pub connections_max_idle_ms: u64,
    /// shardlog.request.read.timeout.ms: a request frame must arrive whole
    /// within this from its first byte, or the connection is closed. Kafka
    /// has no such bound; clients give up a request after their own
    /// request.timeout.ms (30 s by default) anyway.
    pub request_read_timeout_ms: u64,
    /// fetch.max.bytes: the most a Fetch response carries (at least one
    /// batch, KIP-74).
    pub fetch_max_bytes: usize,
    /// replica.fetch.response.max.bytes: the same for a follower's fetch
    /// (replica id >= 0).
    pub replica_fetch_response_max_bytes: usize,
    /// replica.fetch.max.bytes: the most a follower's fetch takes of one
    /// partition.
    pub replica_fetch_max_bytes: usize,
    /// shardlog.response.bytes.max: response bytes built and not yet
    /// written per shard; a Fetch waits for its share before reading.
    pub response_bytes_max: usize,
    /// shardlog.connection.response.bytes.max: the same per connection, so
    /// a client that does not read its socket holds at most this much.
    pub connection_response_bytes_max: usize,
    /// log.retention.check.interval.ms.
    pub retention_check_interval_ms: u64,
    /// Topic config defaults set through their broker synonyms, by topic
    /// config name.
    pub topic_defaults: BTreeMap<String, String>,
    /// shardlog.listener.mode.
    pub listener_mode: ListenerMode,
    /// shardlog.cores: cores to pin shards to; empty: every available core.
    pub cores: Vec<usize>,
    /// shardlog.cache.bytes: batch cache per shard.
    pub cache_bytes: usize,
    /// shardlog.preallocate.bytes.max: disk a shard's partitions may hold
    /// fallocated ahead of their written data, in all.
    pub preallocate_bytes_max: u64,
    /// shardlog.read.ahead.bytes: bytes a shard may hold read ahead for
    /// consumers reading partitions in sequence from disk; 0: off.
    pub read_ahead_bytes: usize,
    /// shardlog.zero.ahead.bytes: how far ahead of its data an active
    /// segment's allocated space is overwritten with zeros while the log is
    /// idle, so data writes are pure overwrites; 0: off.
    pub zero_ahead_bytes: u64,
    /// shardlog.durable.writes: how appends waited on for durability reach
    /// stable storage (auto, dsync or fdatasync; see
    /// [`crate::storage::DurableWrites`]).
    pub durable_writes: crate::storage::DurableWrites,
    /// shardlog.max.in.flight.requests.per.connection: requests read from a
    /// connection before its responses are written; then the shard stops
    /// reading that socket.
    pub max_in_flight_per_connection: usize,
    /// shardlog.spin.before.park.us: how long an idle shard spins before
    /// sleeping (cuts cross-shard latency at the cost of CPU).
    pub spin_before_park_us: u64,
    /// log.cleaner.enable, log.cleaner.backoff.ms,
    /// log.cleaner.dedupe.buffer.size (shared by the shards' cleaners) and
    /// log.cleaner.io.max.bytes.per.second (each shard's cleaner).
    pub cleaner_enable: bool,
    pub cleaner_backoff_ms: u64,
    pub cleaner_dedupe_buffer_bytes: u64,
    pub cleaner_io_bytes_per_second: f64,
    /// shardlog.metrics.listen: the metrics endpoint's address; None
    /// (empty value): no endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// sasl.enabled.mechanisms (Kafka's default GSSAPI is not served).
    pub sasl_enabled_mechanisms: Vec<String>,
    /// shardlog.sasl.plain.users.file: `name=password` lines for PLAIN
    /// (Kafka reads them from JAAS, which a non-JVM broker has not).
    pub sasl_plain_users_file: Option<PathBuf>,
    /// connection.failed.authentication.delay.ms.
    pub failed_authentication_delay_ms: u64,
    /// connections.max.reauth.ms (KIP-368): 0, sessions do not expire.
    pub connections_max_reauth_ms: u64,
    /// ssl.keystore.location: the server's private key and certificate
    /// chain in one PEM file (ssl.keystore.type=PEM, KIP-651).
    pub ssl_keystore_location: Option<PathBuf>,
    /// ssl.truststore.location: PEM certificates of the CAs client
    /// certificates are checked against.
    pub ssl_truststore_location: Option<PathBuf>,
    /// ssl.client.auth: none, requested or required.
    pub ssl_client_auth: String,
    /// ssl.principal.mapping.rules: client certificate subjects to
    /// principal names.
    pub ssl_principal_mapping: crate::security::principal::PrincipalMapper,
    /// The broker's SCRAM (and PLAIN) users, loaded at start.
    pub users: Option<Arc<crate::security::credentials::UserStore>>,
    /// authorizer.class.name: Kafka's StandardAuthorizer (or the older
    /// AclAuthorizer) turns shardlog's authorizer on; empty: none.
    pub authorizer_class_name: String,
    /// super.users: principals (`User:admin`) allowed everything.
    pub super_users: Vec<String>,
    /// allow.everyone.if.no.acl.found.
    pub allow_everyone_if_no_acl_found: bool,
    /// With an authorizer: the ACLs, loaded at start.
    pub authorizer: Option<Arc<crate::security::acl::Authorizer>>,
    /// shardlog.metrics.max.topics, .max.partitions, .max.groups: the most
    /// series of each kind the endpoint exports.
    pub metrics_max_topics: usize,
    pub metrics_max_partitions: usize,
    pub metrics_max_groups: usize,
    /// The group coordinator's settings.
    pub groups: GroupConfig,
    /// The KRaft keys (process.roles, controller.quorum.voters, ...) and
    /// every named listener, as given.
    pub kraft: kraft::KraftConfig,
    /// The controller listener's address, on a controller (set by
    /// [`BrokerConfig::finish`]).
    pub controller_listen: Option<SocketAddr>,
    /// Keys read but ignored (Kafka settings with no meaning here).
    pub ignored: Vec<String>,
    /// The values of those of Kafka's keys, as DescribeConfigs shows them.
    pub kafka_static: BTreeMap<String, String>,
    /// Every key set (file, flags, overrides): DescribeConfigs calls their
    /// values STATIC_BROKER_CONFIG, the others' DEFAULT_CONFIG.
    pub set_keys: std::collections::BTreeSet<String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 0,
            client_listeners: vec![ClientListener::plaintext(
                "0.0.0.0:9092".parse().expect("literal"),
                ("127.0.0.1".to_string(), 9092),
            )],
            listener_overrides: BTreeMap::new(),
            data_dir: PathBuf::from("./data"),
            num_partitions: 1,
            default_replication_factor: 1,
            replica_lag_time_max_ms: 30_000,
            rack_aware_replica_selector: false,
            auto_create_topics: true,
            delete_topic_enable: true,
            socket_request_max_bytes: 104_857_600,
            queued_max_request_bytes: 512 << 20,
            max_connections: i32::MAX as usize,
            max_connections_per_ip: i32::MAX as usize,
            max_connections_per_ip_overrides: HashMap::new(),
            connections_max_idle_ms: 600_000,
            request_read_timeout_ms: 30_000,
            fetch_max_bytes: 57_671_680,
            replica_fetch_response_max_bytes: 10_485_760,
            replica_fetch_max_bytes: 1_048_576,
            response_bytes_max: 512 << 20,
            connection_response_bytes_max: 64 << 20,
            retention_check_interval_ms: 300_000,
            topic_defaults: BTreeMap::new(),
            // Per-shard is the default: clients reach the owning core
            // directly, with no cross-shard hop (see the README's
            // benchmark table).
            listener_mode: ListenerMode::PerShard,
            cores: Vec::new(),
            cache_bytes: 256 << 20,
            preallocate_bytes_max: 1 << 30,
            read_ahead_bytes: 64 << 20,
            zero_ahead_bytes: 4 << 20,
            durable_writes: crate::storage::DurableWrites::Auto,
            max_in_flight_per_connection: 64,
            spin_before_park_us: 0,
            cleaner_enable: true,
            cleaner_backoff_ms: 15_000,
            cleaner_dedupe_buffer_bytes: 134_217_728,
            cleaner_io_bytes_per_second: f64::MAX,
            metrics_listen: Some("0.0.0.0:9644".parse().expect("literal")),
            sasl_enabled_mechanisms: vec!["GSSAPI".to_string()],
            sasl_plain_users_file: None,
            failed_authentication_delay_ms: 100,
            connections_max_reauth_ms: 0,
            ssl_keystore_location: None,
            ssl_truststore_location: None,
            ssl_client_auth: "none".to_string(),
            ssl_principal_mapping: Default::default(),
            authorizer_class_name: String::new(),
            super_users: Vec::new(),
            allow_everyone_if_no_acl_found: false,
            authorizer: None,
            users: None,
            metrics_max_topics: 1000,
            metrics_max_partitions: 10_000,
            metrics_max_groups: 1000,
            groups: GroupConfig::default(),
            kraft: kraft::KraftConfig::default(),
            controller_listen: None,
            ignored: Vec::new(),
            kafka_static: BTreeMap::new(),
            set_keys: Default::default(),
        }
    }
}

/// The prefix of a listener's own keys: `listener.name.<name>.<key>`
/// (the name in lower case, as Kafka writes it).
pub const LISTENER_PREFIX: &str = "listener.name.";

/// The keys a listener may set for itself.
pub const LISTENER_KEYS: &[&str] = &[
    "sasl.enabled.mechanisms",
    "connections.max.reauth.ms",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.client.auth",
    "ssl.key.password",
    "ssl.keystore.password",
];

/// Kafka keys kept as given (in `kafka_static`) that shardlog reads where
/// it uses them, rather than ignores.
/// Kafka's replica selectors (KIP-392) by class name.
pub const RACK_AWARE_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";
pub const LEADER_SELECTOR: &str = "org.apache.kafka.common.replica.LeaderSelector";

const READ_FROM_STATIC: &[&str] = &[
    "inter.broker.listener.name",
    "controlled.shutdown.enable",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
];

/// A listener's security keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListenerSecurity {
    pub sasl_enabled_mechanisms: Vec<String>,
    pub connections_max_reauth_ms: u64,
    pub ssl_keystore_location: Option<PathBuf>,
    pub ssl_truststore_location: Option<PathBuf>,
    pub ssl_client_auth: String,
}

/// One client listener: every shard accepts on it (and, in per-shard
/// mode, on its own port above it), and a client that came in on it is
/// told the brokers' addresses on the listener of the same name.
#[derive(Debug, Clone)]
pub struct ClientListener {
    /// Its name in `listeners`.
    pub name: String,
    pub listen: SocketAddr,
    /// What Metadata, FindCoordinator and DescribeCluster tell its clients.
    pub advertise: (String, u16),
    pub protocol: kraft::SecurityProtocol,
    /// Its security keys.
    pub security: ListenerSecurity,
    /// On a TLS listener: the TLS configuration, built at start and
    /// reloaded when its files change.
    pub tls: Option<Arc<crate::security::tls::TlsConfig>>,
    /// On a SASL listener: the mechanisms and users, set at start.
    pub sasl: Option<Arc<crate::security::SaslConfig>>,
}

impl ClientListener {
    /// A PLAINTEXT listener named PLAINTEXT.
    pub fn plaintext(listen: SocketAddr, advertise: (String, u16)) -> Self {
        ClientListener {
            name: "PLAINTEXT".to_string(),
            listen,
            advertise,
            protocol: kraft::SecurityProtocol::Plaintext,
            security: ListenerSecurity::default(),
            tls: None,
            sasl: None,
        }
    }

    /// Its address for `shard` in per-shard mode: its port + 1 + shard.
    pub fn per_shard_addr(&self, shard: usize) -> SocketAddr {
        let mut a = self.listen;
        a.set_port(self.listen.port() + 1 + shard as u16);
        a
    }
}

fn parse_int(key: &str, value: &str, min: i64, max: i64) -> Result<i64, BrokerConfigError> {
    let invalid = |reason: &str| BrokerConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let v: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid("not an integer"))?;
    if v < min || v > max {
        return Err(invalid(&format!("must be between {min} and {max}")));
    }
    Ok(v)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, BrokerConfigError> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(BrokerConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: "expected true or false".to_string(),
        }),
    }
}

/// A listener's host as a socket address (empty: every address).
fn listener_addr(key: &str, l: &kraft::NamedListener) -> Result<SocketAddr, BrokerConfigError> {
    let host = if l.host.is_empty() {
        "0.0.0.0"
    } else {
        &l.host
    };
    format!("{host}:{}", l.port)
        .parse()
        .or_else(|_| format!("[{host}]:{}", l.port).parse())
        .map_err(|_| BrokerConfigError::InvalidValue {
            key: key.to_string(),
            value: l.to_string(),
            reason: "listener host must be an IP address".to_string(),
        })
}

/// `ip:count,ip:count` (max.connections.per.ip.overrides).
fn parse_ip_overrides(key: &str, value: &str) -> Result<HashMap<IpAddr, usize>, BrokerConfigError> {
    let invalid = |reason: String| BrokerConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason,
    };
    let mut out = HashMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, count) = entry
            .rsplit_once(':')
            .ok_or_else(|| invalid(format!("{entry}: expected ADDRESS:COUNT")))?;
        let ip: IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| invalid(format!("{host}: only IP addresses are supported")))?;
        let count = parse_int(key, count, 0, i32::MAX as i64)? as usize;
        out.insert(ip, count);
    }
    Ok(out)
}

/// `0`, `0-3`, `1,3`, `0,0` (a core may repeat: several shards share it).
pub fn parse_cores(value: &str) -> Result<Vec<usize>, String> {
    let mut cores = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("bad core list {value:?}: expected e.g. 0, 0-3 or 1,3");
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.trim().parse().map_err(|_| bad())?;
                let b: usize = b.trim().parse().map_err(|_| bad())?;
                if a > b || b - a > 4096 {
                    return Err(bad());
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.parse().map_err(|_| bad())?),
        }
    }
    if cores.is_empty() {
        return Err(format!("empty core list {value:?}"));
    }
    Ok(cores)
}

impl BrokerConfig {
    /// Sets one key. `advertise_explicit` tracks whether the advertised
    /// address was given, so a listener change moves its default.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), BrokerConfigError> {
        self.set_key(key, value)?;
        self.set_keys.insert(key.to_string());
        Ok(())
    }

    fn set_key(&mut self, key: &str, value: &str) -> Result<(), BrokerConfigError> {
        let invalid = |reason: &str| BrokerConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        match key {
            "node.id" | "broker.id" => {
                let id = parse_int(key, value, 0, i32::MAX as i64 - 1024)? as i32;
                self.node_id = id;
                if key == "node.id" {
                    self.kraft.node_id_key = Some(id);
                } else {
                    self.kraft.broker_id_key = Some(id);
                }
            }
            "listeners" => {
                let list = kraft::parse_listeners(key, value).map_err(|e| invalid(&e.0))?;
                for l in &list {
                    listener_addr(key, l)?;
                }
                // The client listeners are settled by `finish`, once the
                // controller listener names are known.
                self.kraft.listeners = list;
            }
            "advertised.listeners" => {
                let list = kraft::parse_listeners(key, value).map_err(|e| invalid(&e.0))?;
                self.kraft.advertised = list;
            }
            "process.roles" => {
                self.kraft.roles = kraft::parse_roles(value).map_err(|e| invalid(&e.0))?
            }
            "controller.quorum.voters" => {
                self.kraft.voters = kraft::parse_voters(value).map_err(|e| invalid(&e.0))?
            }
            "controller.listener.names" => {
                self.kraft.controller_listener_names = kraft::parse_names(value)
            }
            "broker.rack" => {
                self.kraft.rack = Some(value.trim().to_string()).filter(|v| !v.is_empty())
            }
            "metadata.log.max.record.bytes.between.snapshots" => {
                self.kraft.snapshot_bytes = parse_int(key, value, 1, i64::MAX)? as u64
            }
            "controller.quorum.bootstrap.servers" => {
                self.kraft.bootstrap_servers =
                    Some(value.trim().to_string()).filter(|v| !v.is_empty())
            }
            "broker.heartbeat.interval.ms" => {
                self.kraft.broker_heartbeat_interval_ms =
                    parse_int(key, value, 1, i32::MAX as i64)? as u64
            }
            "broker.session.timeout.ms" => {
                self.kraft.broker_session_timeout_ms =
                    parse_int(key, value, 1, i32::MAX as i64)? as u64
            }
            "controller.quorum.election.timeout.ms" => {
                self.kraft.election_timeout_ms = parse_int(key, value, 1, i32::MAX as i64)? as u64
            }
            "controller.quorum.fetch.timeout.ms" => {
                self.kraft.fetch_timeout_ms = parse_int(key, value, 1, i32::MAX as i64)? as u64
            }
            "controller.quorum.request.timeout.ms" => {
                self.kraft.request_timeout_ms = parse_int(key, value, 1, i32::MAX as i64)? as u64
            }
            "log.dirs" | "log.dir" => {
                if value.contains(',') {
                    return Err(invalid("only one data directory is supported"));
                }
                self.data_dir = PathBuf::from(value.trim());
            }
            "num.partitions" => self.num_partitions = parse_int(key, value, 1, 100_000)? as i32,
            "default.replication.factor" => {
                self.default_replication_factor = parse_int(key, value, 1, i16::MAX as i64)? as i16
            }
            "auto.create.topics.enable" => self.auto_create_topics = parse_bool(key, value)?,
            "delete.topic.enable" => self.delete_topic_enable = parse_bool(key, value)?,
            "socket.request.max.bytes" => {
                self.socket_request_max_bytes =
                    parse_int(key, value, 1024, i32::MAX as i64)? as usize
            }
            "queued.max.request.bytes" => {
                let v = parse_int(key, value, -1, i64::MAX)?;
                self.queued_max_request_bytes = if v <= 0 { usize::MAX } else { v as usize };
            }
            "max.connections" => {
                self.max_connections = parse_int(key, value, 1, i32::MAX as i64)? as usize
            }
            "max.connections.per.ip" => {
                self.max_connections_per_ip = parse_int(key, value, 0, i32::MAX as i64)? as usize
            }
            "max.connections.per.ip.overrides" => {
                self.max_connections_per_ip_overrides = parse_ip_overrides(key, value)?
            }
            "connections.max.idle.ms" => {
                self.connections_max_idle_ms = parse_int(key, value, 1, i64::MAX)? as u64
            }
            "shardlog.request.read.timeout.ms" => {
                self.request_read_timeout_ms = parse_int(key, value, 1, i64::MAX)? as u64
            }
            "fetch.max.bytes" => {
                self.fetch_max_bytes = parse_int(key, value, 1024, i32::MAX as i64)? as usize
            }
            "replica.fetch.response.max.bytes" => {
                self.replica_fetch_response_max_bytes =
                    parse_int(key, value, 0, i32::MAX as i64)? as usize
            }
            "replica.lag.time.max.ms" => {
                self.replica_lag_time_max_ms = parse_int(key, value, 1, i64::MAX)? as u64
            }
            "replica.selector.class" => {
                self.rack_aware_replica_selector = match value.trim() {
                    "" | LEADER_SELECTOR => false,
                    RACK_AWARE_SELECTOR => true,
                    _ => {
                        return Err(BrokerConfigError::InvalidValue {
                            key: key.to_string(),
                            value: value.to_string(),
                            reason: format!(
                                "must be {RACK_AWARE_SELECTOR} or {LEADER_SELECTOR} (other selector classes cannot be loaded here)"
                            ),
                        })
                    }
                }
            }
            "replica.fetch.max.bytes" => {
                self.replica_fetch_max_bytes = parse_int(key, value, 0, i32::MAX as i64)? as usize
            }
            "shardlog.response.bytes.max" => {
                self.response_bytes_max = parse_int(key, value, 1 << 20, i64::MAX)? as usize
            }
            "shardlog.connection.response.bytes.max" => {
                self.connection_response_bytes_max =
                    parse_int(key, value, 1 << 20, i64::MAX)? as usize
            }
            "log.retention.check.interval.ms" => {
                self.retention_check_interval_ms = parse_int(key, value, 1, i64::MAX)? as u64
            }
            // Kafka's coarser synonyms, converted to the ms key.
            "log.retention.hours" | "log.retention.minutes" | "log.roll.hours" => {
                let unit = if key.ends_with("hours") {
                    3_600_000
                } else {
                    60_000
                };
                let v = parse_int(key, value, -1, i64::MAX / unit)?;
                let ms = if v < 0 { -1 } else { v * unit };
                let target = if key.starts_with("log.roll") {
                    "segment.ms"
                } else {
                    "retention.ms"
                };
                validate_topic_config(target, &ms.to_string())?;
                self.topic_defaults
                    .insert(target.to_string(), ms.to_string());
            }
            "shardlog.listener.mode" => {
                self.listener_mode = ListenerMode::parse(value.trim())
                    .ok_or_else(|| invalid("single or per-shard"))?
            }
            "shardlog.cores" => self.cores = parse_cores(value).map_err(|e| invalid(&e))?,
            "shardlog.cache.bytes" => {
                self.cache_bytes = parse_int(key, value, 0, i64::MAX)? as usize
            }
            "shardlog.preallocate.bytes.max" => {
                self.preallocate_bytes_max = parse_int(key, value, 0, i64::MAX)? as u64
            }
            "shardlog.read.ahead.bytes" => {
                self.read_ahead_bytes = parse_int(key, value, 0, i64::MAX)? as usize
            }
            "shardlog.durable.writes" => {
                self.durable_writes = crate::storage::DurableWrites::parse(value)
                    .ok_or_else(|| invalid("must be auto, dsync or fdatasync"))?
            }
            "shardlog.zero.ahead.bytes" => {
                self.zero_ahead_bytes = parse_int(key, value, 0, 1 << 30)? as u64
            }
            "shardlog.max.in.flight.requests.per.connection" => {
                self.max_in_flight_per_connection = parse_int(key, value, 1, 1 << 20)? as usize
            }
            "shardlog.spin.before.park.us" => {
                self.spin_before_park_us = parse_int(key, value, 0, 1_000_000)? as u64
            }
            "log.cleaner.enable" => {
                self.cleaner_enable = match value.trim().to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("Expected value to be either true or false")),
                }
            }
            "log.cleaner.backoff.ms" => {
                self.cleaner_backoff_ms = parse_int(key, value, 0, i64::MAX)? as u64
            }
            "log.cleaner.dedupe.buffer.size" => {
                self.cleaner_dedupe_buffer_bytes = parse_int(key, value, 0, i64::MAX)? as u64
            }
            "log.cleaner.io.max.bytes.per.second" => {
                self.cleaner_io_bytes_per_second = value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| *v > 0.0)
                    .ok_or_else(|| invalid("a positive number"))?
            }
            "listener.security.protocol.map" => {
                self.kraft.protocol_map =
                    kraft::parse_protocol_map(value).map_err(|e| invalid(&e.0))?;
            }
            "sasl.enabled.mechanisms" => {
                self.sasl_enabled_mechanisms = value
                    .split(',')
                    .map(|m| m.trim().to_string())
                    .filter(|m| !m.is_empty())
                    .collect();
            }
            "shardlog.sasl.plain.users.file" => {
                let v = value.trim();
                self.sasl_plain_users_file = (!v.is_empty()).then(|| PathBuf::from(v));
            }
            "ssl.keystore.type" | "ssl.truststore.type" => {
                if value.trim() != "PEM" {
                    return Err(invalid(
                        "only PEM is supported (KIP-651: key and certificates in PEM files)",
                    ));
                }
            }
            "ssl.keystore.location" => {
                let v = value.trim();
                self.ssl_keystore_location = (!v.is_empty()).then(|| PathBuf::from(v));
            }
            "ssl.truststore.location" => {
                let v = value.trim();
                self.ssl_truststore_location = (!v.is_empty()).then(|| PathBuf::from(v));
            }
            "ssl.client.auth" => {
                let v = value.trim().to_ascii_lowercase();
                if !["none", "requested", "required"].contains(&v.as_str()) {
                    return Err(invalid("must be one of none, requested, required"));
                }
                self.ssl_client_auth = v;
            }
            "ssl.key.password" | "ssl.keystore.password" if !value.is_empty() => {
                return Err(invalid(
                    "encrypted private keys are not supported: give ssl.keystore.location an unencrypted PEM key",
                ));
            }
            "ssl.principal.mapping.rules" => {
                self.ssl_principal_mapping =
                    crate::security::principal::PrincipalMapper::parse(value)
                        .map_err(|e| invalid(&e))?;
            }
            "authorizer.class.name" => {
                let v = value.trim();
                if !v.is_empty() && !AUTHORIZER_CLASSES.contains(&v) {
                    return Err(invalid(
                        "shardlog's authorizer stands in for org.apache.kafka.metadata.authorizer.StandardAuthorizer (or kafka.security.authorizer.AclAuthorizer); other classes cannot be loaded",
                    ));
                }
                self.authorizer_class_name = v.to_string();
            }
            "super.users" => {
                let users: Vec<String> = value
                    .split(';')
                    .map(|u| u.trim().to_string())
                    .filter(|u| !u.is_empty())
                    .collect();
                if let Some(bad) = users.iter().find(|u| !u.contains(':')) {
                    return Err(invalid(&format!(
                        "{bad} is not a principal: write Type:name, e.g. User:admin"
                    )));
                }
                self.super_users = users;
            }
            "allow.everyone.if.no.acl.found" => {
                self.allow_everyone_if_no_acl_found = parse_bool(key, value)?
            }
            "connections.max.reauth.ms" => {
                self.connections_max_reauth_ms = parse_int(key, value, 0, i64::MAX)? as u64
            }
            "connection.failed.authentication.delay.ms" => {
                self.failed_authentication_delay_ms =
                    parse_int(key, value, 0, i32::MAX as i64)? as u64
            }
            "shardlog.metrics.listen" => {
                let v = value.trim();
                self.metrics_listen = if v.is_empty() {
                    None
                } else {
                    Some(v.parse().map_err(|_| {
                        invalid("an address as IP:PORT (e.g. 0.0.0.0:9644), or empty to turn the endpoint off")
                    })?)
                }
            }
            "shardlog.metrics.max.topics" => {
                self.metrics_max_topics = parse_int(key, value, 0, i32::MAX as i64)? as usize
            }
            "shardlog.metrics.max.partitions" => {
                self.metrics_max_partitions = parse_int(key, value, 0, i32::MAX as i64)? as usize
            }
            "shardlog.metrics.max.groups" => {
                self.metrics_max_groups = parse_int(key, value, 0, i32::MAX as i64)? as usize
            }
            "group.min.session.timeout.ms" => {
                self.groups.min_session_timeout_ms =
                    parse_int(key, value, 1, i32::MAX as i64)? as i32
            }
            "group.max.session.timeout.ms" => {
                self.groups.max_session_timeout_ms =
                    parse_int(key, value, 1, i32::MAX as i64)? as i32
            }
            "group.initial.rebalance.delay.ms" => {
                self.groups.initial_rebalance_delay_ms =
                    parse_int(key, value, 0, i32::MAX as i64)? as i32
            }
            "group.max.size" => {
                self.groups.max_size = parse_int(key, value, 1, i32::MAX as i64)? as usize
            }
            "offsets.topic.num.partitions" => {
                self.groups.offsets_partitions = parse_int(key, value, 1, 1000)? as usize
            }
            "offsets.topic.segment.bytes" => {
                // At least one largest group record, at most 31-bit positions.
                self.groups.offsets_segment_bytes =
                    parse_int(key, value, 1 << 20, i32::MAX as i64)? as u64
            }
            "offsets.retention.minutes" => {
                self.groups.offsets_retention_ms =
                    parse_int(key, value, 1, i64::MAX / 60_000)? * 60_000
            }
            "offsets.retention.check.interval.ms" => {
                self.groups.offsets_retention_check_interval_ms =
                    parse_int(key, value, 1, i64::MAX)? as u64
            }
            "offset.metadata.max.bytes" => {
                // Stored as a 16-bit-length string, as in Kafka's records.
                self.groups.offset_metadata_max_bytes =
                    parse_int(key, value, 0, i16::MAX as i64)? as usize
            }
            "shardlog.groups.max" => {
                self.groups.groups_max = parse_int(key, value, 1, i32::MAX as i64)? as usize
            }
            "shardlog.group.metadata.max.bytes" => {
                self.groups.group_metadata_max_bytes =
                    parse_int(key, value, 1024, 64 << 20)? as usize
            }
            "shardlog.offsets.compaction.min.bytes" => {
                self.groups.offsets_compaction_min_bytes =
                    parse_int(key, value, 0, i64::MAX)? as u64
            }
            "shardlog.offsets.compaction.interval.ms" => {
                self.groups.offsets_compaction_interval_ms =
                    parse_int(key, value, 1, i64::MAX)? as u64
            }
            _ if key.starts_with(LISTENER_PREFIX) => self.set_listener_key(key, value)?,
            _ => {
                if let Some(def) = topic_def_for_broker_key(key) {
                    validate_topic_config(def.name, value)?;
                    self.topic_defaults
                        .insert(def.name.to_string(), value.trim().to_string());
                } else if let Some(k) = registry().broker_key(key) {
                    k.check(value)
                        .map_err(|reason| BrokerConfigError::InvalidValue {
                            key: key.to_string(),
                            value: value.to_string(),
                            reason,
                        })?;
                    if !READ_FROM_STATIC.contains(&key) {
                        self.ignored.push(key.to_string());
                    }
                    self.kafka_static
                        .insert(key.to_string(), value.trim().to_string());
                } else if LEGACY_KAFKA_KEYS.contains(&key) {
                    self.ignored.push(key.to_string());
                } else {
                    return Err(BrokerConfigError::UnknownKey(key.to_string()));
                }
            }
        }
        Ok(())
    }

    /// Settles what depends on several keys, once every source is applied:
    /// the KRaft keys are checked together, the client and controller
    /// listeners picked out of `listeners`, and the advertised address
    /// defaults to the client listener's (127.0.0.1 when it listens on
    /// every address).
    pub fn finish(&mut self) -> Result<(), BrokerConfigError> {
        let resolved = self
            .kraft
            .resolve()
            .map_err(|e| BrokerConfigError::Cluster(e.0))?;
        if let Some(name) = self.listener_overrides.keys().find(|n| {
            !resolved
                .broker_listeners
                .iter()
                .any(|c| &c.listener.name == *n)
        }) {
            return Err(BrokerConfigError::InvalidValue {
                key: format!("{LISTENER_PREFIX}{}.*", name.to_ascii_lowercase()),
                value: String::new(),
                reason: format!("no client listener is named {name} in listeners"),
            });
        }
        let mut listeners = Vec::with_capacity(resolved.broker_listeners.len());
        for c in &resolved.broker_listeners {
            let listen = listener_addr("listeners", &c.listener)?;
            let advertise = match &c.advertised {
                Some(a) => (a.host.clone(), a.port),
                None if listen.ip().is_unspecified() => ("127.0.0.1".to_string(), listen.port()),
                None => (listen.ip().to_string(), listen.port()),
            };
            let security = self.listener_security(&c.listener.name)?;
            self.check_listener(&c.listener.name, c.protocol, &security)?;
            listeners.push(ClientListener {
                name: c.listener.name.clone(),
                listen,
                advertise,
                protocol: c.protocol,
                security,
                tls: None,
                sasl: None,
            });
        }
        if let Some(name) = self.kafka_static.get("inter.broker.listener.name") {
            if !listeners.is_empty() && !listeners.iter().any(|l| &l.name == name) {
                let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
                return Err(BrokerConfigError::Cluster(format!(
                    "inter.broker.listener.name must be a listener name defined in advertised.listeners. The valid options based on currently configured listeners are {}",
                    names.join(",")
                )));
            }
        }
        self.client_listeners = listeners;
        self.controller_listen = resolved
            .controller_listener
            .map(|l| listener_addr("listeners", &l))
            .transpose()?;
        Ok(())
    }

    /// A listener's security keys: the broker-wide ones with its
    /// `listener.name.<name>.` overrides.
    fn listener_security(&self, name: &str) -> Result<ListenerSecurity, BrokerConfigError> {
        let mut security = ListenerSecurity {
            sasl_enabled_mechanisms: self.sasl_enabled_mechanisms.clone(),
            connections_max_reauth_ms: self.connections_max_reauth_ms,
            ssl_keystore_location: self.ssl_keystore_location.clone(),
            ssl_truststore_location: self.ssl_truststore_location.clone(),
            ssl_client_auth: self.ssl_client_auth.clone(),
        };
        for (key, value) in self.listener_overrides.get(name).into_iter().flatten() {
            let mut scratch = BrokerConfig::default();
            scratch.set(key, value)?;
            match key.as_str() {
                "sasl.enabled.mechanisms" => {
                    security.sasl_enabled_mechanisms = scratch.sasl_enabled_mechanisms
                }
                "connections.max.reauth.ms" => {
                    security.connections_max_reauth_ms = scratch.connections_max_reauth_ms
                }
                "ssl.keystore.location" => {
                    security.ssl_keystore_location = scratch.ssl_keystore_location
                }
                "ssl.truststore.location" => {
                    security.ssl_truststore_location = scratch.ssl_truststore_location
                }
                "ssl.client.auth" => security.ssl_client_auth = scratch.ssl_client_auth,
                _ => {}
            }
        }
        Ok(security)
    }

    /// One client listener's keys: a SASL listener serves only mechanisms
    /// shardlog has (PLAIN only with a users file); a TLS listener has a
    /// keystore, and a truststore when it asks for client certificates.
    fn check_listener(
        &self,
        name: &str,
        protocol: kraft::SecurityProtocol,
        security: &ListenerSecurity,
    ) -> Result<(), BrokerConfigError> {
        let key = |k: &str| {
            if self
                .listener_overrides
                .get(name)
                .is_some_and(|o| o.contains_key(k))
            {
                format!("{LISTENER_PREFIX}{}.{k}", name.to_ascii_lowercase())
            } else {
                k.to_string()
            }
        };
        let invalid = |key: String, value: String, reason: String| {
            BrokerConfigError::InvalidValue { key, value, reason }
        };
        let listener = format!("the {} listener {name}", protocol.name());
        if protocol.uses_sasl() {
            let mechanisms = security.sasl_enabled_mechanisms.join(",");
            if security.sasl_enabled_mechanisms.is_empty() {
                return Err(invalid(
                    key("sasl.enabled.mechanisms"),
                    mechanisms,
                    format!("{listener} needs at least one mechanism"),
                ));
            }
            for m in &security.sasl_enabled_mechanisms {
                if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&m.as_str()) {
                    return Err(invalid(
                        key("sasl.enabled.mechanisms"),
                        mechanisms,
                        format!("{m} is not supported (Kafka's default is GSSAPI); shardlog serves PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512"),
                    ));
                }
            }
            if security
                .sasl_enabled_mechanisms
                .iter()
                .any(|m| m == "PLAIN")
                && self.sasl_plain_users_file.is_none()
            {
                return Err(invalid(
                    "shardlog.sasl.plain.users.file".to_string(),
                    String::new(),
                    format!("PLAIN is enabled on {listener}: name the file of its users (name=password lines)"),
                ));
            }
        }
        if protocol.uses_tls() {
            if security.ssl_keystore_location.is_none() {
                return Err(invalid(
                    key("ssl.keystore.location"),
                    String::new(),
                    format!("{listener} needs the server's key and certificate chain (a PEM file)"),
                ));
            }
            if security.ssl_client_auth != "none" && security.ssl_truststore_location.is_none() {
                return Err(invalid(
                    key("ssl.truststore.location"),
                    String::new(),
                    format!(
                        "ssl.client.auth={} on {listener} needs the CA certificates client certificates are checked against",
                        security.ssl_client_auth
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `listener.name.<name>.<key>`: one of the security keys a listener
    /// may set for itself (checked as the broker-wide key is), or a JAAS
    /// key, which a non-JVM broker stores and ignores like the
    /// broker-wide one.
    fn set_listener_key(&mut self, key: &str, value: &str) -> Result<(), BrokerConfigError> {
        let rest = &key[LISTENER_PREFIX.len()..];
        let Some((name, sub)) = rest.split_once('.') else {
            return Err(BrokerConfigError::UnknownKey(key.to_string()));
        };
        if sub.ends_with("sasl.jaas.config") {
            self.ignored.push(key.to_string());
            return Ok(());
        }
        if !LISTENER_KEYS.contains(&sub) {
            return Err(BrokerConfigError::InvalidValue {
                key: key.to_string(),
                value: value.to_string(),
                reason: format!(
                    "shardlog takes these keys per listener: {}",
                    LISTENER_KEYS.join(", ")
                ),
            });
        }
        // Checked as the broker-wide key, and the message names this one.
        BrokerConfig::default()
            .set(sub, value)
            .map_err(|e| match e {
                BrokerConfigError::InvalidValue { reason, .. } => BrokerConfigError::InvalidValue {
                    key: key.to_string(),
                    value: value.to_string(),
                    reason,
                },
                other => other,
            })?;
        self.listener_overrides
            .entry(name.to_ascii_uppercase())
            .or_default()
            .insert(sub.to_string(), value.to_string());
        Ok(())
    }

    /// Applies a `server.properties` file's text.
    pub fn apply_properties(&mut self, file: &str, text: &str) -> Result<(), BrokerConfigError> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((k, v)) = line.split_once('=').or_else(|| line.split_once(':')) else {
                return Err(BrokerConfigError::Syntax {
                    file: file.to_string(),
                    line: i + 1,
                    text: line.to_string(),
                });
            };
            self.set(k.trim(), v.trim())?;
        }
        Ok(())
    }

    /// Whether shardlog reads broker key `key` itself (at startup), as
    /// opposed to the topic defaults it applies at runtime and the Kafka
    /// keys it stores without acting on them.
    pub fn reads_key(key: &str) -> bool {
        if topic_def_for_broker_key(key).is_some() {
            return false;
        }
        let value = registry()
            .broker_key(key)
            .and_then(|k| k.default)
            .unwrap_or("");
        let mut scratch = BrokerConfig::default();
        match scratch.set(key, value) {
            Err(BrokerConfigError::UnknownKey(_)) => false,
            _ => !scratch.ignored.iter().any(|k| k == key),
        }
    }

    /// The value of a broker key as DescribeConfigs shows it, for the keys
    /// this broker knows (topic synonyms included).
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("node.id".to_string(), self.node_id.to_string()),
            (
                "listeners".to_string(),
                self.client_listeners
                    .iter()
                    .map(|l| format!("{}://{}", l.name, l.listen))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "advertised.listeners".to_string(),
                self.client_listeners
                    .iter()
                    .map(|l| format!("{}://{}:{}", l.name, l.advertise.0, l.advertise.1))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("log.dirs".to_string(), self.data_dir.display().to_string()),
            (
                "num.partitions".to_string(),
                self.num_partitions.to_string(),
            ),
            (
                "default.replication.factor".to_string(),
                self.default_replication_factor.to_string(),
            ),
            (
                "replica.lag.time.max.ms".to_string(),
                self.replica_lag_time_max_ms.to_string(),
            ),
            (
                "auto.create.topics.enable".to_string(),
                self.auto_create_topics.to_string(),
            ),
            (
                "delete.topic.enable".to_string(),
                self.delete_topic_enable.to_string(),
            ),
            (
                "socket.request.max.bytes".to_string(),
                self.socket_request_max_bytes.to_string(),
            ),
            (
                "log.retention.check.interval.ms".to_string(),
                self.retention_check_interval_ms.to_string(),
            ),
            (
                "shardlog.listener.mode".to_string(),
                self.listener_mode.name().to_string(),
            ),
            (
                "shardlog.durable.writes".to_string(),
                self.durable_writes.name().to_string(),
            ),
            (
                "shardlog.metrics.listen".to_string(),
                self.metrics_listen
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
            ),
            (
                "shardlog.metrics.max.topics".to_string(),
                self.metrics_max_topics.to_string(),
            ),
            (
                "shardlog.metrics.max.partitions".to_string(),
                self.metrics_max_partitions.to_string(),
            ),
            (
                "shardlog.metrics.max.groups".to_string(),
                self.metrics_max_groups.to_string(),
            ),
        ];
        let g = &self.groups;
        for (k, v) in [
            (
                "group.min.session.timeout.ms",
                g.min_session_timeout_ms.to_string(),
            ),
            (
                "group.max.session.timeout.ms",
                g.max_session_timeout_ms.to_string(),
            ),
            (
                "group.initial.rebalance.delay.ms",
                g.initial_rebalance_delay_ms.to_string(),
            ),
            ("group.max.size", g.max_size.to_string()),
            (
                "offsets.topic.num.partitions",
                g.offsets_partitions.to_string(),
            ),
            (
                "offsets.topic.segment.bytes",
                g.offsets_segment_bytes.to_string(),
            ),
            (
                "offsets.retention.minutes",
                (g.offsets_retention_ms / 60_000).to_string(),
            ),
            (
                "offset.metadata.max.bytes",
                g.offset_metadata_max_bytes.to_string(),
            ),
        ] {
            out.push((k.to_string(), v));
        }
        for def in TOPIC_CONFIGS {
            let v = self
                .topic_defaults
                .get(def.name)
                .map(String::as_str)
                .unwrap_or(def.default);
            out.push((def.broker_key.to_string(), v.to_string()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_keys_and_synonyms() {
        let mut c = BrokerConfig::default();
        c.apply_properties(
            "server.properties",
            "# comment\nnum.partitions=3\nlog.retention.hours=1\nlog.segment.bytes=1048576\n\
             num.network.threads=3\nlisteners=PLAINTEXT://127.0.0.1:19092\nmessage.max.bytes=2000000\n",
        )
        .unwrap();
        assert_eq!(c.num_partitions, 3);
        c.finish().unwrap();
        assert_eq!(c.client_listeners.len(), 1);
        assert_eq!(
            c.client_listeners[0].listen,
            "127.0.0.1:19092".parse().unwrap()
        );
        assert_eq!(c.client_listeners[0].advertise, ("127.0.0.1".into(), 19092));
        assert_eq!(c.topic_defaults["retention.ms"], "3600000");
        assert_eq!(c.topic_defaults["segment.bytes"], "1048576");
        assert_eq!(c.topic_defaults["max.message.bytes"], "2000000");
        assert_eq!(c.ignored, vec!["num.network.threads"]);
        let log = partition_config_for(&c.topic_defaults, &BTreeMap::new()).log;
        assert_eq!(log.retention_ms, 3_600_000);
        assert_eq!(log.segment_bytes, 1 << 20);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let mut c = BrokerConfig::default();
        let e = c.set("num.partitons", "3").unwrap_err();
        assert!(e.to_string().contains("num.partitons"), "{e}");
        let e = c.set("num.partitions", "zero").unwrap_err();
        assert!(e.to_string().contains("num.partitions"), "{e}");
        let e = c.set("log.segment.bytes", "10").unwrap_err();
        assert!(e.to_string().contains("segment.bytes"), "{e}");
        assert!(c.set("default.replication.factor", "0").is_err());
        c.set("default.replication.factor", "3").unwrap();
        c.set("listeners", "SSL://0.0.0.0:9093").unwrap();
        let e = c.clone().finish().unwrap_err();
        assert!(e.to_string().contains("ssl.keystore.location"), "{e}");
        let mut tls = c.clone();
        tls.set("ssl.keystore.location", "/etc/shardlog/server.pem")
            .unwrap();
        tls.set("ssl.client.auth", "required").unwrap();
        let e = tls.clone().finish().unwrap_err();
        assert!(e.to_string().contains("ssl.truststore.location"), "{e}");
        assert!(tls.set("ssl.keystore.type", "JKS").is_err());
        assert!(tls.set("ssl.key.password", "secret").is_err());
        tls.set("ssl.truststore.location", "/etc/shardlog/ca.pem")
            .unwrap();
        tls.finish().unwrap();
        let mut sasl = c.clone();
        sasl.set("listeners", "SASL_PLAINTEXT://0.0.0.0:9093")
            .unwrap();
        let e = sasl.clone().finish().unwrap_err();
        assert!(e.to_string().contains("GSSAPI"), "{e}");
        sasl.set("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512")
            .unwrap();
        let e = sasl.clone().finish().unwrap_err();
        assert!(
            e.to_string().contains("shardlog.sasl.plain.users.file"),
            "{e}"
        );
        sasl.set("sasl.enabled.mechanisms", "SCRAM-SHA-512")
            .unwrap();
        sasl.finish().unwrap();
        let e = c
            .apply_properties("f", "num.partitions=2\nbogus line\n")
            .unwrap_err();
        assert!(e.to_string().contains("f:2"), "{e}");
    }

    #[test]
    fn listeners_with_keys_of_their_own() {
        let mut c = BrokerConfig::default();
        c.apply_properties(
            "server.properties",
            "listeners=SASL_SSL://0.0.0.0:9092,SSL://0.0.0.0:9093,PLAINTEXT://127.0.0.1:9094\n\
             advertised.listeners=SASL_SSL://broker.example:9092,SSL://broker.example:9093\n\
             sasl.enabled.mechanisms=SCRAM-SHA-512\n\
             ssl.keystore.location=/etc/shardlog/server.pem\n\
             listener.name.ssl.ssl.client.auth=required\n\
             listener.name.ssl.ssl.truststore.location=/etc/shardlog/ca.pem\n\
             listener.name.sasl_ssl.connections.max.reauth.ms=60000\n\
             listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=ignored\n",
        )
        .unwrap();
        c.finish().unwrap();
        let by_name = |n: &str| c.client_listeners.iter().find(|l| l.name == n).unwrap();
        let sasl_ssl = by_name("SASL_SSL");
        assert_eq!(sasl_ssl.protocol, kraft::SecurityProtocol::SaslSsl);
        assert_eq!(sasl_ssl.advertise, ("broker.example".into(), 9092));
        assert_eq!(sasl_ssl.security.connections_max_reauth_ms, 60_000);
        assert_eq!(sasl_ssl.security.ssl_client_auth, "none");
        let ssl = by_name("SSL");
        assert_eq!(ssl.security.ssl_client_auth, "required");
        assert_eq!(ssl.security.connections_max_reauth_ms, 0);
        let plain = by_name("PLAINTEXT");
        assert_eq!(plain.advertise, ("127.0.0.1".into(), 9094));
        assert!(c.describe().iter().any(|(k, v)| k == "listeners"
            && v == "SASL_SSL://0.0.0.0:9092,SSL://0.0.0.0:9093,PLAINTEXT://127.0.0.1:9094"));

        // A listener's own value is checked as the broker-wide key is, and
        // a failed check names the listener's key.
        let e = c
            .set("listener.name.ssl.ssl.client.auth", "always")
            .unwrap_err();
        assert!(
            e.to_string().contains("listener.name.ssl.ssl.client.auth"),
            "{e}"
        );
        let e = c.set("listener.name.ssl.num.partitions", "3").unwrap_err();
        assert!(e.to_string().contains("per listener"), "{e}");
        // An override for a listener that does not exist.
        let mut stray = c.clone();
        stray
            .set("listener.name.external.ssl.client.auth", "required")
            .unwrap();
        let e = stray.finish().unwrap_err();
        assert!(e.to_string().contains("EXTERNAL"), "{e}");
        // Each TLS listener needs its truststore when it asks for
        // certificates.
        let mut no_trust = c.clone();
        no_trust
            .listener_overrides
            .get_mut("SSL")
            .unwrap()
            .remove("ssl.truststore.location");
        let e = no_trust.finish().unwrap_err();
        assert!(
            e.to_string().contains("ssl.truststore.location")
                && e.to_string().contains("the SSL listener SSL"),
            "{e}"
        );
        // A SASL listener's own mechanisms.
        let mut plain_here = c.clone();
        plain_here
            .set("listener.name.sasl_ssl.sasl.enabled.mechanisms", "PLAIN")
            .unwrap();
        let e = plain_here.finish().unwrap_err();
        assert!(
            e.to_string().contains("shardlog.sasl.plain.users.file"),
            "{e}"
        );
    }

    #[test]
    fn core_lists() {
        assert_eq!(parse_cores("0").unwrap(), vec![0]);
        assert_eq!(parse_cores("0-3").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse_cores("1,3").unwrap(), vec![1, 3]);
        assert_eq!(parse_cores("0,0").unwrap(), vec![0, 0]);
        assert!(parse_cores("3-1").is_err());
        assert!(parse_cores("x").is_err());
    }

    #[test]
    fn topic_overrides_win_over_broker_defaults() {
        let mut broker = BTreeMap::new();
        broker.insert("retention.ms".to_string(), "1000".to_string());
        let mut topic = BTreeMap::new();
        topic.insert("retention.ms".to_string(), "2000".to_string());
        topic.insert("min.insync.replicas".to_string(), "2".to_string());
        let config = partition_config_for(&broker, &topic);
        assert_eq!(config.log.retention_ms, 2000);
        assert_eq!(config.min_insync_replicas, 2);
        assert!(validate_topic_config("cleanup.policy", "compact").is_ok());
        assert!(validate_topic_config("cleanup.policy", "compact, delete").is_ok());
        assert!(validate_topic_config("cleanup.policy", "compact,bogus").is_err());
        let mut compact = BTreeMap::new();
        compact.insert("cleanup.policy".to_string(), "compact".to_string());
        let config = partition_config_for(&broker, &compact);
        assert!(config.cleanup.compact && !config.cleanup.delete);
        compact.insert("max.compaction.lag.ms".to_string(), "5000".to_string());
        assert_eq!(partition_config_for(&broker, &compact).log.segment_ms, 5000);
        compact.insert("cleanup.policy".to_string(), "delete".to_string());
        assert_eq!(
            partition_config_for(&broker, &compact).log.segment_ms,
            LogConfig::default().segment_ms
        );
        assert!(partition_config_for(&broker, &topic).cleanup.delete);
        assert!(validate_topic_config("compression.type", "brotli").is_err());
        assert!(validate_topic_config("compression.type", "zstd").is_ok());
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
        assert!(validate_topic_config("nope", "1").is_err());
    }
}
