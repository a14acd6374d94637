//! Every broker and topic config key of Apache Kafka, with its type,
//! default, validity check and (broker keys) whether it can change at
//! runtime, read from `kafka_keys.tsv` (written from Kafka's own jars by
//! `tuning/kafka-configs/dump.sh`; its first line names the version).
//!
//! shardlog accepts and describes any of these keys so Kafka's tools,
//! Terraform providers and UIs work unchanged, checks values the way Kafka
//! does (type, range, allowed strings) with Kafka's messages, and refuses
//! only keys Kafka does not know or values Kafka would refuse. Which keys
//! shardlog acts on is decided in [`super`] (topic keys) and
//! [`super::BrokerConfig::set`] (broker keys); the rest are stored and
//! described.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::ConfigKind;

const TSV: &str = include_str!("kafka_keys.tsv");

/// Whether a broker key can be changed with AlterConfigs (Kafka's
/// DynamicBrokerConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ReadOnly,
    /// Only for one broker (resource name = its node id).
    PerBroker,
    /// For one broker or as the cluster-wide default (resource name "").
    ClusterWide,
}

/// Kafka's validator of a key, as far as a value's text decides it.
#[derive(Debug, Clone, PartialEq)]
enum Check {
    Any,
    /// `[min,...]` or `[min,...,max]`, optionally `or N`.
    Range {
        min: Option<f64>,
        max: Option<f64>,
        min_text: String,
        max_text: String,
        or: Option<f64>,
    },
    /// `[a, b, c]`: the value (each element of a list) is one of these.
    OneOf {
        values: Vec<&'static str>,
        case_insensitive: bool,
    },
    NonEmpty,
    /// `[partitionId]:[brokerId],...` or `*`.
    ThrottledReplicas,
}

#[derive(Debug, Clone)]
pub struct KafkaKey {
    pub name: &'static str,
    pub kind: ConfigKind,
    /// Kafka's default as DescribeConfigs shows it; None when it is null
    /// or the key has none (it must be set).
    pub default: Option<&'static str>,
    pub mode: Mode,
    /// Topic keys: the broker key that sets the default ("" when none).
    pub synonym: &'static str,
    check: Check,
}

pub struct Registry {
    broker: Vec<KafkaKey>,
    topic: Vec<KafkaKey>,
    broker_index: HashMap<&'static str, usize>,
    topic_index: HashMap<&'static str, usize>,
    pub kafka_version: &'static str,
}

pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::parse(TSV))
}

impl Registry {
    fn parse(text: &'static str) -> Registry {
        let mut r = Registry {
            broker: Vec::new(),
            topic: Vec::new(),
            broker_index: HashMap::new(),
            topic_index: HashMap::new(),
            kafka_version: "",
        };
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# Kafka ") {
                r.kafka_version = rest.split_whitespace().next().unwrap_or("");
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let f: Vec<&'static str> = line.split('\t').collect();
            assert_eq!(f.len(), 7, "kafka_keys.tsv: {line}");
            let key = KafkaKey {
                name: f[1],
                kind: kind_of(f[2]),
                default: match f[3] {
                    "\\N" | "\\N-required" => None,
                    d => Some(d),
                },
                mode: match f[5] {
                    "per-broker" => Mode::PerBroker,
                    "cluster-wide" => Mode::ClusterWide,
                    _ => Mode::ReadOnly,
                },
                synonym: f[6],
                check: parse_check(f[4]),
            };
            match f[0] {
                "broker" => {
                    r.broker_index.insert(key.name, r.broker.len());
                    r.broker.push(key);
                }
                "topic" => {
                    r.topic_index.insert(key.name, r.topic.len());
                    r.topic.push(key);
                }
                other => panic!("kafka_keys.tsv: scope {other}"),
            }
        }
        r
    }

    pub fn broker_keys(&self) -> &[KafkaKey] {
        &self.broker
    }

    pub fn topic_keys(&self) -> &[KafkaKey] {
        &self.topic
    }

    pub fn broker_key(&self, name: &str) -> Option<&KafkaKey> {
        self.broker_index.get(name).map(|&i| &self.broker[i])
    }

    pub fn topic_key(&self, name: &str) -> Option<&KafkaKey> {
        self.topic_index.get(name).map(|&i| &self.topic[i])
    }
}

fn kind_of(name: &str) -> ConfigKind {
    match name {
        "BOOLEAN" => ConfigKind::Boolean,
        "INT" => ConfigKind::Int,
        "SHORT" => ConfigKind::Short,
        "LONG" => ConfigKind::Long,
        "DOUBLE" => ConfigKind::Double,
        "LIST" => ConfigKind::List,
        "CLASS" => ConfigKind::Class,
        "PASSWORD" => ConfigKind::Password,
        _ => ConfigKind::String,
    }
}

fn parse_check(text: &'static str) -> Check {
    let text = text.trim();
    if text.is_empty() {
        return Check::Any;
    }
    if text.starts_with("non-empty") || text == "non-null string" {
        return Check::NonEmpty;
    }
    if text.starts_with("[partitionId]") {
        return Check::ThrottledReplicas;
    }
    let (case_insensitive, text) = match text.strip_prefix("(case insensitive) ") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (body, or) = match text.split_once("] or ") {
        Some((body, or)) => (format!("{body}]"), or.trim().parse().ok()),
        None => (text.to_string(), None),
    };
    let Some(inner) = body.strip_prefix('[').and_then(|b| b.strip_suffix(']')) else {
        return Check::Any;
    };
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    if parts.get(1) == Some(&"...") {
        let bound = |s: Option<&&str>| s.and_then(|s| s.parse::<f64>().ok());
        return Check::Range {
            min: bound(parts.first()),
            max: bound(parts.get(2)),
            min_text: parts.first().unwrap_or(&"").to_string(),
            max_text: parts.get(2).unwrap_or(&"").to_string(),
            or,
        };
    }
    // The validator text lives as long as the registry.
    let inner: &'static str = &text[text.find('[').unwrap_or(0) + 1..text.rfind(']').unwrap_or(0)];
    Check::OneOf {
        values: inner.split(',').map(str::trim).collect(),
        case_insensitive,
    }
}

impl KafkaKey {
    /// Checks `value` as Kafka would (its type, then its validator);
    /// Err is Kafka's reason ("Value must be at least 4").
    pub fn check(&self, value: &str) -> Result<(), String> {
        let v = value.trim();
        let number: Option<f64> = match self.kind {
            ConfigKind::Int => Some(
                v.parse::<i32>()
                    .map_err(|_| "Not a number of type INT".to_string())? as f64,
            ),
            ConfigKind::Short => Some(
                v.parse::<i16>()
                    .map_err(|_| "Not a number of type SHORT".to_string())? as f64,
            ),
            ConfigKind::Long => Some(
                v.parse::<i64>()
                    .map_err(|_| "Not a number of type LONG".to_string())? as f64,
            ),
            ConfigKind::Double => Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite())
                    .ok_or_else(|| "Not a number of type DOUBLE".to_string())?,
            ),
            ConfigKind::Boolean => {
                if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                    return Err("Expected value to be either true or false".to_string());
                }
                None
            }
            _ => None,
        };
        match &self.check {
            Check::Any => Ok(()),
            Check::NonEmpty => {
                if v.is_empty() {
                    Err("String may not be empty".to_string())
                } else {
                    Ok(())
                }
            }
            Check::Range {
                min,
                max,
                min_text,
                max_text,
                or,
            } => {
                let Some(n) = number else { return Ok(()) };
                if or.is_some_and(|o| o == n) {
                    return Ok(());
                }
                if let Some(o) = or {
                    if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                        return Err(format!(
                            "Value must be between {min_text} and {max_text} or equal to {o}"
                        ));
                    }
                }
                if min.is_some_and(|m| n < m) {
                    return Err(format!("Value must be at least {min_text}"));
                }
                if max.is_some_and(|m| n > m) {
                    return Err(format!("Value must be no more than {max_text}"));
                }
                Ok(())
            }
            Check::OneOf {
                values,
                case_insensitive,
            } => {
                let ok = |s: &str| {
                    values.iter().any(|a| {
                        if *case_insensitive {
                            a.eq_ignore_ascii_case(s)
                        } else {
                            *a == s
                        }
                    })
                };
                let bad = if self.kind == ConfigKind::List {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .find(|s| !ok(s))
                } else {
                    (!ok(v)).then_some(v)
                };
                match bad {
                    None => Ok(()),
                    Some(_) if *case_insensitive => Err(format!(
                        "String must be one of (case insensitive): {}",
                        values.join(", ")
                    )),
                    Some(_) => Err(format!("String must be one of: {}", values.join(", "))),
                }
            }
            Check::ThrottledReplicas => {
                let ok = v == "*"
                    || v.is_empty()
                    || v.split(',').map(str::trim).all(|e| {
                        e.split_once(':').is_some_and(|(p, b)| {
                            p.parse::<u32>().is_ok() && b.parse::<u32>().is_ok()
                        })
                    });
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "{} must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...",
                        self.name
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_holds_kafkas_keys() {
        let r = registry();
        assert!(r.kafka_version.starts_with('4'), "{}", r.kafka_version);
        assert!(r.broker_keys().len() > 300);
        assert_eq!(r.topic_keys().len(), 33);
        let k = r
            .broker_key("sasl.kerberos.min.time.before.relogin")
            .unwrap();
        assert_eq!((k.kind, k.mode), (ConfigKind::Long, Mode::PerBroker));
        assert_eq!(
            r.broker_key("num.io.threads").unwrap().mode,
            Mode::ClusterWide
        );
        assert_eq!(r.broker_key("log.dirs").unwrap().mode, Mode::ReadOnly);
        assert_eq!(
            r.topic_key("segment.index.bytes").unwrap().synonym,
            "log.index.size.max.bytes"
        );
        assert!(r.broker_key("bogus.key").is_none());
    }

    #[test]
    fn values_are_checked_with_kafkas_messages() {
        let r = registry();
        let topic = |k: &str, v: &str| r.topic_key(k).unwrap().check(v);
        assert_eq!(
            topic("segment.index.bytes", "2").unwrap_err(),
            "Value must be at least 4"
        );
        assert!(topic("segment.index.bytes", "2048").is_ok());
        assert_eq!(
            topic("preallocate", "yes").unwrap_err(),
            "Expected value to be either true or false"
        );
        assert!(topic("preallocate", "TRUE").is_ok());
        assert_eq!(
            topic("compression.gzip.level", "0").unwrap_err(),
            "Value must be between 1 and 9 or equal to -1"
        );
        assert!(topic("compression.gzip.level", "-1").is_ok());
        assert!(topic("compression.zstd.level", "-5").is_ok());
        assert_eq!(
            topic("min.cleanable.dirty.ratio", "1.5").unwrap_err(),
            "Value must be no more than 1"
        );
        assert_eq!(
            topic("retention.ms", "abc").unwrap_err(),
            "Not a number of type LONG"
        );
        assert!(topic("cleanup.policy", "compact,delete").is_ok());
        assert!(topic("cleanup.policy", "compact,bogus").is_err());
        assert!(topic("follower.replication.throttled.replicas", "0:1,1:2").is_ok());
        assert!(topic("follower.replication.throttled.replicas", "*").is_ok());
        assert!(topic("follower.replication.throttled.replicas", "bad").is_err());
        let broker = |k: &str, v: &str| r.broker_key(k).unwrap().check(v);
        assert_eq!(
            broker("background.threads", "0").unwrap_err(),
            "Value must be at least 1"
        );
        assert!(broker("group.consumer.migration.policy", "upgrade").is_ok());
        assert!(broker("ssl.client.auth", "Required").is_err());
        assert!(broker("num.io.threads", "2147483648").is_err());
    }
}
