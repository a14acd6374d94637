//! Group configs (KIP-848: DescribeConfigs and IncrementalAlterConfigs on
//! GROUP resources, `kafka-configs --entity-type groups`): Kafka 4.1's
//! keys with their types, defaults (the broker's `group.*` settings) and
//! the bounds Kafka checks them against (the broker's `group.*.min.*` and
//! `group.*.max.*` defaults). shardlog's groups use the classic protocol,
//! whose timeouts come from each member's JoinGroup; these settings are
//! validated, stored and described as Kafka does, for the tools and
//! clients that manage them.

use std::collections::BTreeMap;

use super::BrokerConfigError;

/// How a group config's value is checked.
#[derive(Debug, Clone, Copy)]
pub enum GroupCheck {
    /// An integer within the broker's bounds, named for the message.
    Range {
        min: i64,
        min_key: &'static str,
        max: i64,
        max_key: &'static str,
    },
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// `latest`, `earliest` or `by_duration:` and an ISO-8601 duration.
    AutoOffsetReset,
}

#[derive(Debug)]
pub struct GroupConfigDef {
    pub name: &'static str,
    /// The broker setting it defaults to (None: Kafka's fixed default).
    pub broker_key: Option<&'static str>,
    pub default: &'static str,
    pub check: GroupCheck,
    pub doc: &'static str,
}

impl GroupConfigDef {
    /// DescribeConfigs' config type: INT (3) or STRING (2).
    pub fn wire_type(&self) -> i8 {
        match self.check {
            GroupCheck::Range { .. } => 3,
            _ => 2,
        }
    }
}

const fn range(min: i64, min_key: &'static str, max: i64, max_key: &'static str) -> GroupCheck {
    GroupCheck::Range {
        min,
        min_key,
        max,
        max_key,
    }
}

/// Kafka 4.1's group configs.
pub const GROUP_CONFIGS: &[GroupConfigDef] = &[
    GroupConfigDef {
        name: "consumer.session.timeout.ms",
        broker_key: Some("group.consumer.session.timeout.ms"),
        default: "45000",
        check: range(
            45_000,
            "group.consumer.min.session.timeout.ms",
            60_000,
            "group.consumer.max.session.timeout.ms",
        ),
        doc: "The timeout to detect client failures when using the consumer group protocol.",
    },
    GroupConfigDef {
        name: "consumer.heartbeat.interval.ms",
        broker_key: Some("group.consumer.heartbeat.interval.ms"),
        default: "5000",
        check: range(
            5_000,
            "group.consumer.min.heartbeat.interval.ms",
            15_000,
            "group.consumer.max.heartbeat.interval.ms",
        ),
        doc: "The heartbeat interval given to the members of a consumer group.",
    },
    GroupConfigDef {
        name: "share.session.timeout.ms",
        broker_key: Some("group.share.session.timeout.ms"),
        default: "45000",
        check: range(
            45_000,
            "group.share.min.session.timeout.ms",
            60_000,
            "group.share.max.session.timeout.ms",
        ),
        doc: "The timeout to detect client failures when using the share group protocol.",
    },
    GroupConfigDef {
        name: "share.heartbeat.interval.ms",
        broker_key: Some("group.share.heartbeat.interval.ms"),
        default: "5000",
        check: range(
            5_000,
            "group.share.min.heartbeat.interval.ms",
            15_000,
            "group.share.max.heartbeat.interval.ms",
        ),
        doc: "The heartbeat interval given to the members of a share group.",
    },
    GroupConfigDef {
        name: "share.record.lock.duration.ms",
        broker_key: Some("group.share.record.lock.duration.ms"),
        default: "30000",
        check: range(
            15_000,
            "group.share.min.record.lock.duration.ms",
            60_000,
            "group.share.max.record.lock.duration.ms",
        ),
        doc: "The record acquisition lock duration in milliseconds for share groups.",
    },
    GroupConfigDef {
        name: "share.auto.offset.reset",
        broker_key: None,
        default: "latest",
        check: GroupCheck::AutoOffsetReset,
        doc: "The strategy to initialize the share-partition start offset.",
    },
    GroupConfigDef {
        name: "share.isolation.level",
        broker_key: None,
        default: "read_uncommitted",
        check: GroupCheck::OneOf(&["read_committed", "read_uncommitted"]),
        doc: "Controls how to read records written transactionally in share groups.",
    },
    GroupConfigDef {
        name: "streams.session.timeout.ms",
        broker_key: Some("group.streams.session.timeout.ms"),
        default: "45000",
        check: range(
            45_000,
            "group.streams.min.session.timeout.ms",
            60_000,
            "group.streams.max.session.timeout.ms",
        ),
        doc: "The timeout to detect client failures when using the streams group protocol.",
    },
    GroupConfigDef {
        name: "streams.heartbeat.interval.ms",
        broker_key: Some("group.streams.heartbeat.interval.ms"),
        default: "5000",
        check: range(
            5_000,
            "group.streams.min.heartbeat.interval.ms",
            15_000,
            "group.streams.max.heartbeat.interval.ms",
        ),
        doc: "The heartbeat interval given to the members of a streams group.",
    },
    GroupConfigDef {
        name: "streams.num.standby.replicas",
        broker_key: Some("group.streams.num.standby.replicas"),
        default: "0",
        check: range(0, "0", 2, "group.streams.max.standby.replicas"),
        doc: "The number of standby replicas for each task of a streams group.",
    },
];

pub fn group_config_def(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks one group config's value, with Kafka's reasons.
pub fn validate_group_config(name: &str, value: &str) -> Result<(), BrokerConfigError> {
    let invalid = |reason: String| BrokerConfigError::InvalidValue {
        key: name.to_string(),
        value: value.to_string(),
        reason,
    };
    let def = group_config_def(name)
        .ok_or_else(|| invalid(format!("Unknown group config name: {name}")))?;
    let v = value.trim();
    match def.check {
        GroupCheck::Range {
            min,
            min_key,
            max,
            max_key,
        } => {
            let n: i64 = v
                .parse()
                .map_err(|_| invalid("Expected value to be a 32-bit integer".to_string()))?;
            // Kafka's messages name the broker setting, not its value.
            if n < min {
                return Err(invalid(format!(
                    "{name} must be greater than or equal to {min_key}"
                )));
            }
            if n > max {
                return Err(invalid(format!(
                    "{name} must be less than or equal to {max_key}"
                )));
            }
        }
        GroupCheck::OneOf(values) => {
            if !values.contains(&v) {
                return Err(invalid(format!(
                    "String must be one of: {}",
                    values.join(", ")
                )));
            }
        }
        GroupCheck::AutoOffsetReset => {
            let ok = v == "latest"
                || v == "earliest"
                || v.strip_prefix("by_duration:").is_some_and(iso_duration);
            if !ok {
                return Err(invalid(
                    "The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'."
                        .to_string(),
                ));
            }
        }
    }
    Ok(())
}

/// Whether `s` is a non-negative ISO-8601 duration as Java's
/// `Duration.parse` reads it: `P`, optional days, then optionally `T` with
/// hours, minutes and (possibly fractional) seconds, at least one part.
fn iso_duration(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('P').or_else(|| s.strip_prefix('p')) else {
        return false;
    };
    let (days, time) = match rest.find(['T', 't']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut parts = 0;
    if !days.is_empty() {
        let Some(n) = days.strip_suffix(['D', 'd']) else {
            return false;
        };
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        parts += 1;
    }
    if let Some(mut t) = time {
        if t.is_empty() {
            return false;
        }
        for unit in ['H', 'M', 'S'] {
            let lower = unit.to_ascii_lowercase();
            if let Some(i) = t.find([unit, lower]) {
                let n = &t[..i];
                let digits = if unit == 'S' {
                    n.splitn(2, '.')
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                } else {
                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                };
                if !digits {
                    return false;
                }
                t = &t[i + 1..];
                parts += 1;
            }
        }
        if !t.is_empty() {
            return false;
        }
    }
    parts > 0
}

/// Every group config of a group with `overrides`: (name, value, whether
/// it is the group's own).
pub fn group_config_values(
    overrides: &BTreeMap<String, String>,
) -> Vec<(&'static GroupConfigDef, String, bool)> {
    GROUP_CONFIGS
        .iter()
        .map(|def| match overrides.get(def.name) {
            Some(v) => (def, v.clone(), true),
            None => (def, def.default.to_string(), false),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_as_kafka_does() {
        assert!(validate_group_config("consumer.session.timeout.ms", "50000").is_ok());
        let e = validate_group_config("consumer.session.timeout.ms", "10000").unwrap_err();
        assert!(
            e.to_string()
                .contains("group.consumer.min.session.timeout.ms"),
            "{e}"
        );
        assert!(validate_group_config("consumer.session.timeout.ms", "70000").is_err());
        assert!(validate_group_config("consumer.session.timeout.ms", "soon").is_err());
        assert!(validate_group_config("streams.num.standby.replicas", "2").is_ok());
        assert!(validate_group_config("streams.num.standby.replicas", "3").is_err());
        assert!(validate_group_config("share.isolation.level", "read_committed").is_ok());
        assert!(validate_group_config("share.isolation.level", "dirty").is_err());
        for ok in [
            "latest",
            "earliest",
            "by_duration:PT1H",
            "by_duration:P1DT2H3M4.5S",
        ] {
            assert!(
                validate_group_config("share.auto.offset.reset", ok).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "by_duration:",
            "by_duration:P",
            "by_duration:1H",
            "by_duration:PT",
            "none",
        ] {
            assert!(
                validate_group_config("share.auto.offset.reset", bad).is_err(),
                "{bad}"
            );
        }
        assert!(validate_group_config("group.id", "x").is_err());
    }
}
