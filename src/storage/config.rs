//! Storage configuration, with Apache Kafka's topic config names and defaults
//! where Kafka has one.

use std::time::Duration;

use crate::record::TimestampType;

/// Per-topic log settings. Field names follow Kafka's topic configs
/// (`segment.bytes` is `segment_bytes`, and so on); units are in the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// segment.bytes: roll the active segment when it would exceed this.
    pub segment_bytes: u64,
    /// segment.ms: roll the active segment when its first append is older.
    pub segment_ms: i64,
    /// retention.ms: delete closed segments whose newest record is older
    /// (-1: keep forever).
    pub retention_ms: i64,
    /// retention.bytes: delete the oldest closed segments while the log is
    /// larger (-1: unlimited).
    pub retention_bytes: i64,
    /// max.message.bytes: largest batch accepted, log overhead included.
    pub max_message_bytes: usize,
    /// index.interval.bytes: bytes between offset and time index entries.
    pub index_interval_bytes: usize,
    /// flush.messages: start an fdatasync once this many records are
    /// unsynced. Kafka's default (Long.MAX_VALUE) leaves flushing to
    /// flush.ms and to acks=all producers.
    pub flush_messages: i64,
    /// flush.ms: an fdatasync runs at least this often while data is
    /// unsynced. Kafka's default is Long.MAX_VALUE because it relies on
    /// replicas; a single-node log gets a bounded window instead.
    pub flush_ms: i64,
    /// message.timestamp.type.
    pub timestamp_type: TimestampType,
    /// The largest step in which the active segment is fallocated ahead of
    /// its end; a partition's steps start at 64 KiB and double up to this.
    pub preallocate_bytes: u64,
    /// Unwritten bytes a partition may buffer before appends wait for the
    /// disk (the write buffers of one partition).
    pub write_buffer_bytes_max: usize,
}

/// Kafka's defaults, except flush.ms (see [`LogConfig::flush_ms`]).
impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            flush_messages: i64::MAX,
            flush_ms: 1000,
            timestamp_type: TimestampType::CreateTime,
            preallocate_bytes: 32 << 20,
            write_buffer_bytes_max: 8 << 20,
        }
    }
}

impl LogConfig {
    /// Whether records must be durable before consumers may see them: with
    /// flush.messages=1 every record is flushed before it is acknowledged
    /// to anyone, so the high watermark follows the durable offset.
    pub fn visible_only_when_durable(&self) -> bool {
        self.flush_messages <= 1
    }

    pub fn flush_interval(&self) -> Option<Duration> {
        (self.flush_ms >= 0 && self.flush_ms < i64::MAX)
            .then(|| Duration::from_millis(self.flush_ms as u64))
    }
}

/// A topic config key or value the storage engine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown topic config key {0:?}")]
    UnknownKey(String),
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: &'static str,
    },
}

fn parse_in_range(key: &str, value: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let invalid = |reason| ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason,
    };
    let v: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid("not an integer"))?;
    if v < min || v > max {
        return Err(invalid("out of range"));
    }
    Ok(v)
}

impl LogConfig {
    /// Sets one topic config by its Kafka name, with Kafka's validity
    /// ranges. Keys that are not storage settings are refused here; the
    /// server decides which other keys it accepts.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            // Kafka: segment.bytes >= 14 (a batch header); positions are
            // 32-bit so at most Int.MAX.
            "segment.bytes" => {
                self.segment_bytes = parse_in_range(key, value, 14, i32::MAX as i64)? as u64
            }
            "segment.ms" => self.segment_ms = parse_in_range(key, value, 1, i64::MAX)?,
            "retention.ms" => self.retention_ms = parse_in_range(key, value, -1, i64::MAX)?,
            "retention.bytes" => self.retention_bytes = parse_in_range(key, value, -1, i64::MAX)?,
            "max.message.bytes" => {
                self.max_message_bytes = parse_in_range(key, value, 0, i32::MAX as i64)? as usize
            }
            "index.interval.bytes" => {
                self.index_interval_bytes = parse_in_range(key, value, 0, i32::MAX as i64)? as usize
            }
            "flush.messages" => self.flush_messages = parse_in_range(key, value, 1, i64::MAX)?,
            "flush.ms" => self.flush_ms = parse_in_range(key, value, 0, i64::MAX)?,
            "message.timestamp.type" => {
                self.timestamp_type = match value {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => {
                        return Err(ConfigError::InvalidValue {
                            key: key.to_string(),
                            value: value.to_string(),
                            reason: "expected CreateTime or LogAppendTime",
                        })
                    }
                }
            }
            _ => return Err(ConfigError::UnknownKey(key.to_string())),
        }
        Ok(())
    }
}

/// Per-shard storage settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStorageConfig {
    /// Bytes of recently appended batches kept in memory for fetches, summed
    /// over all partitions of the shard.
    pub cache_bytes_max: usize,
    /// Bytes read from a segment file in one aligned read when serving
    /// older data.
    pub read_chunk_bytes: usize,
    /// Bytes the shard's logs may hold allocated ahead of their written
    /// data, summed over partitions (see `storage::preallocation`).
    pub preallocate_bytes_max: u64,
    /// Bytes a shard may hold read ahead for partitions read in sequence
    /// from disk, summed over partitions (see `storage::read_ahead`);
    /// 0 turns read-ahead off.
    pub read_ahead_bytes_max: usize,
    /// How far ahead of its data an active segment's allocated space is
    /// overwritten with zeros while the log has nothing else to write, so
    /// data writes land on written blocks (see `storage::log::zero_ahead`);
    /// 0 turns it off.
    pub zero_ahead_bytes: u64,
    /// How appends waited on for durability (acks=all, flush.messages=1)
    /// reach the disk's stable storage (see [`DurableWrites`]).
    pub durable_writes: DurableWrites,
}

/// How a log makes data durable for appends that wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurableWrites {
    /// O_DIRECT writes, then fdatasync of each file written (group
    /// commit: one sync serves every append written before it).
    Fdatasync,
    /// While appends wait for durability, write through a second
    /// descriptor opened O_DSYNC, so one write is one durable device round
    /// trip (a FUA write where the device has it); fdatasync remains for
    /// data written otherwise.
    Dsync,
    /// Whichever of the two a short probe at shard start finds faster on
    /// the data directory's device.
    Auto,
}

impl DurableWrites {
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "fdatasync" => Some(DurableWrites::Fdatasync),
            "dsync" => Some(DurableWrites::Dsync),
            "auto" => Some(DurableWrites::Auto),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DurableWrites::Fdatasync => "fdatasync",
            DurableWrites::Dsync => "dsync",
            DurableWrites::Auto => "auto",
        }
    }
}

impl Default for ShardStorageConfig {
    fn default() -> Self {
        ShardStorageConfig {
            cache_bytes_max: 256 << 20,
            read_chunk_bytes: 1 << 20,
            preallocate_bytes_max: 1 << 30,
            read_ahead_bytes_max: 64 << 20,
            zero_ahead_bytes: 4 << 20,
            durable_writes: DurableWrites::Auto,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves Kafka's key names set the matching fields and out-of-range or
    // unknown settings are refused with the key named.
    #[test]
    fn kafka_keys() {
        let mut c = LogConfig::default();
        c.set("segment.bytes", "1048576").unwrap();
        c.set("retention.ms", "-1").unwrap();
        c.set("message.timestamp.type", "LogAppendTime").unwrap();
        c.set("flush.messages", "1").unwrap();
        assert_eq!(c.segment_bytes, 1 << 20);
        assert_eq!(c.retention_ms, -1);
        assert_eq!(c.timestamp_type, TimestampType::LogAppendTime);
        assert!(c.visible_only_when_durable());
        assert!(matches!(
            c.set("segment.bytes", "4294967296"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            c.set("retention.ms", "-2"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            c.set("flush.ms", "soon"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert_eq!(
            c.set("segment.byte", "1").unwrap_err().to_string(),
            "unknown topic config key \"segment.byte\""
        );
    }
}
