//! What one run does: the workload and every producer, consumer and output
//! option. Parsed from the command line by clap; tests build it with
//! [`Config::from_args`].

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Parser;
use shardlog_wire::batch::Compression;

/// The workload shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Producers only: publish latency and producer throughput.
    Produce,
    /// Consumers only: fetch throughput.
    Consume,
    /// Producers and consumers together: publish and end-to-end latency.
    E2e,
}

/// `--acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Acks {
    #[value(name = "0")]
    #[serde(rename = "0")]
    None,
    #[value(name = "1")]
    #[serde(rename = "1")]
    Leader,
    #[value(name = "all", alias = "-1")]
    #[serde(rename = "all")]
    All,
}

impl Acks {
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// `--key-distribution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyDistribution {
    /// No keys: the sticky partitioner fills one partition's batch, then
    /// moves to the next.
    None,
    /// Keys drawn uniformly from `--key-space`.
    Uniform,
    /// `--hot-key-fraction` of the records carry key 0, the rest are
    /// uniform.
    Hot,
}

/// `--from`, where a consume-only run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    Earliest,
    Latest,
}

/// Every option of a produce, consume or e2e run.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct Config {
    /// A broker of the cluster, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Topic to use.
    #[arg(long, default_value = "loadgen")]
    pub topic: String,
    /// Create the topic if it is missing.
    #[arg(long)]
    pub create: bool,
    /// Partitions of a created topic.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Replication factor of a created topic (-1: the broker's default).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub replication_factor: i16,
    /// Cores to pin the load generator's executors to, e.g. `1` or `2-5,8`;
    /// one executor per entry. Default: one unpinned executor.
    #[arg(long, value_parser = parse_cores, default_value = "")]
    pub cores: CoreList,
    /// For e2e: cores for the consumers (default: the consumers share the
    /// producers' cores).
    #[arg(long, value_parser = parse_cores, default_value = "")]
    pub consumer_cores: CoreList,

    /// Records per second over all producing cores, an open-loop schedule;
    /// 0: as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Value bytes per record (the payload; at least 8 for e2e, whose
    /// first 8 bytes carry the send time).
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Kafka's batch.size: the most bytes in one partition's batch.
    #[arg(long, default_value_t = 16384)]
    pub batch_bytes: usize,
    /// Kafka's linger.ms: how long a batch may wait to fill.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// 0, 1 or all.
    #[arg(long, value_enum, default_value = "all")]
    pub acks: Acks,
    /// Kafka's compression.type.
    #[arg(long, value_parser = compression_parser(), default_value = "none")]
    #[serde(serialize_with = "display")]
    pub compression: Compression,
    /// Requests awaiting an answer per connection.
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,
    #[arg(long, value_enum, default_value = "none")]
    pub key_distribution: KeyDistribution,
    /// Distinct keys for uniform and hot distributions.
    #[arg(long, default_value_t = 1_000_000)]
    pub key_space: u64,
    /// Share of records with the hot key.
    #[arg(long, default_value_t = 0.5)]
    pub hot_key_fraction: f64,
    /// Kafka's buffer.memory, per core: batches waiting to be sent; past it
    /// the schedule stalls (and the stall shows in the latency from the
    /// intended time).
    #[arg(long, default_value_t = 32 << 20)]
    pub buffer_memory: usize,
    /// Kafka's max.request.size: the most bytes in one Produce request.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_request_bytes: usize,
    /// Kafka's request.timeout.ms.
    #[arg(long, default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// Consumer fetch.max.wait.ms.
    #[arg(long, default_value_t = 500)]
    pub fetch_max_wait_ms: i32,
    /// Consumer fetch.min.bytes.
    #[arg(long, default_value_t = 1)]
    pub fetch_min_bytes: i32,
    /// Consumer fetch.max.bytes.
    #[arg(long, default_value_t = 52_428_800)]
    pub fetch_max_bytes: i32,
    /// Consumer max.partition.fetch.bytes.
    #[arg(long, default_value_t = 1_048_576)]
    pub partition_fetch_bytes: i32,
    /// Where a consume-only run starts.
    #[arg(long, value_enum, default_value = "earliest")]
    pub from: StartFrom,

    /// Unmeasured time before the measurement, e.g. 2s, 500ms.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    #[serde(serialize_with = "seconds")]
    pub warmup: Duration,
    /// Measured time, e.g. 20s, 1m.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,

    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write HdrHistogram percentile files (.hgrm) into this directory.
    #[arg(long)]
    pub hgrm: Option<PathBuf>,
    /// Write a self-contained HTML report to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Idle executors spin this long before sleeping: quicker wake-ups
    /// (lower latency) for a busier loadgen core.
    #[arg(long, default_value_t = 0)]
    pub spin_us: u64,
    /// At fixed rates the generator's timer ends this long before a batch
    /// is due and the generator turns the reactor until then: a wake-up
    /// from an idle CPU (tens of microseconds in a VM) does not make the
    /// schedule late. 0: timer only.
    #[arg(long, default_value_t = 100)]
    pub precise_wake_us: u64,
    /// No progress lines, only the summary.
    #[arg(long)]
    pub quiet: bool,
    /// client.id sent to the broker.
    #[arg(long, default_value = "loadgen")]
    pub client_id: String,

    /// Set by the caller: the workload to run.
    #[arg(skip = Workload::Produce)]
    pub workload: Workload,
    /// Set to true to stop the run early (Ctrl-C); the run then ends as if
    /// its duration were over.
    #[arg(skip)]
    #[serde(skip)]
    pub stop: Option<Arc<AtomicBool>>,
}

/// A list of core ids (`--cores`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct CoreList(pub Vec<usize>);

#[derive(Parser)]
struct Standalone {
    #[command(flatten)]
    config: Config,
}

impl Config {
    /// Parses options as the command line would (without the program name
    /// or a subcommand), for `workload`.
    pub fn from_args<I, S>(workload: Workload, args: I) -> Result<Config, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        let argv = std::iter::once(std::ffi::OsString::from("loadgen"))
            .chain(args.into_iter().map(Into::into));
        let mut config = Standalone::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .config;
        config.workload = workload;
        Ok(config)
    }

    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.linger_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn produces(&self) -> bool {
        self.workload != Workload::Consume
    }

    pub fn consumes(&self) -> bool {
        self.workload != Workload::Produce
    }

    /// Checks the options against each other.
    pub fn validate(&self) -> Result<(), String> {
        if self.topic.is_empty() || self.topic.len() > 249 {
            return Err("--topic must be 1 to 249 characters".into());
        }
        if self.partitions < 1 {
            return Err("--partitions must be at least 1".into());
        }
        if self.record_size > 64 << 20 {
            return Err("--record-size is at most 64 MiB".into());
        }
        if self.workload == Workload::E2e && self.record_size < crate::wire::batch::STAMP_BYTES {
            return Err("e2e needs --record-size of at least 8 (the send-time stamp)".into());
        }
        if self.max_in_flight == 0 {
            return Err("--max-in-flight must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.hot_key_fraction) {
            return Err("--hot-key-fraction must be between 0 and 1".into());
        }
        if self.key_space == 0 {
            return Err("--key-space must be at least 1".into());
        }
        if self.duration.is_zero() {
            return Err("--duration must be more than 0".into());
        }
        if self.fetch_max_bytes < 1 || self.partition_fetch_bytes < 1 {
            return Err("fetch sizes must be positive".into());
        }
        Ok(())
    }
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn display<S: serde::Serializer>(v: &impl std::fmt::Display, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// `--compression`: Kafka's codec names, listed in `--help`.
fn compression_parser() -> impl TypedValueParser<Value = Compression> {
    PossibleValuesParser::new(Compression::ALL.map(Compression::name))
        .map(|name| name.parse().expect("a name the parser listed"))
}

/// Parses `5s`, `500ms`, `2m`, `1h`, `250us` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 5s, 500ms, 2m)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" => n / 1e6,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (us, ms, s, m, h)")),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `1`, `0,2`, `2-5,8`; empty means none given.
pub fn parse_cores(s: &str) -> Result<CoreList, String> {
    let mut cores = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("`{part}` is not a core or range of cores");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b || b - a > 4096 {
                    return Err(bad());
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(CoreList(cores))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves durations and core lists parse as documented and reject junk.
    #[test]
    fn parses_durations_and_cores() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("20").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
        assert_eq!(parse_cores("1").unwrap().0, vec![1]);
        assert_eq!(parse_cores("2-4,8").unwrap().0, vec![2, 3, 4, 8]);
        assert_eq!(parse_cores("").unwrap().0, Vec::<usize>::new());
        assert!(parse_cores("3-1").is_err());
        assert!(parse_cores("a").is_err());
    }

    // Proves the defaults are Kafka's producer and consumer defaults and
    // that options parse into the config.
    #[test]
    fn defaults_and_flags() {
        let c = Config::from_args(Workload::Produce, ["--rate", "1000"]).unwrap();
        assert_eq!(c.batch_bytes, 16384);
        assert_eq!(c.linger_ms, 5);
        assert_eq!(c.precise_wake_us, 100);
        assert_eq!(c.acks, Acks::All);
        assert_eq!(c.max_in_flight, 5);
        assert_eq!(c.rate, 1000);
        let c = Config::from_args(
            Workload::E2e,
            [
                "--acks",
                "1",
                "--compression",
                "zstd",
                "--cores",
                "1",
                "--warmup",
                "2s",
            ],
        )
        .unwrap();
        assert_eq!(c.acks.wire(), 1);
        assert_eq!(c.compression, Compression::Zstd);
        assert_eq!(c.cores.0, vec![1]);
        assert_eq!(c.warmup, Duration::from_secs(2));
        assert_eq!(c.workload, Workload::E2e);
        assert!(Config::from_args(Workload::Produce, ["--acks", "2"]).is_err());
        let mut small = c.clone();
        small.record_size = 4;
        assert!(small.validate().is_err());
    }
}
