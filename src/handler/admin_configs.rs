//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics,
//! the broker and groups. Broker changes are the dynamic, cluster-wide
//! defaults of the topic configs (log.retention.ms, log.segment.bytes,
//! ...); group configs are Kafka 4.1's (see [`crate::config::group`]).

use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use super::errors::ToErrorCode;
use super::str_bytes;
use crate::config::{TopicConfigDef, TOPIC_CONFIGS};
use crate::protocol::{FrameError, RequestFrame};
use crate::shard::controller::{refuse, AdminError, AdminFault, ConfigOps, ConfigResource};
use crate::shard::{Shard, CONTROLLER_SHARD};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_GROUP: i8 = 32;

// Kafka's ConfigSource values.
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_DYNAMIC_GROUP: i8 = 8;

/// One config as DescribeConfigs and CreateTopics report it.
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    pub source: i8,
    pub def: Option<&'static TopicConfigDef>,
    /// (value, source) from the most to the least specific.
    pub synonyms: Vec<(String, String, i8)>,
}

/// Every topic config of a topic with `overrides`, with where its value
/// comes from.
pub fn topic_config_entries(
    shard: &Shard,
    overrides: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    let dynamic = shard.metadata().broker_configs.clone();
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(def.name) {
                synonyms.push((def.name.to_string(), v.clone(), SOURCE_DYNAMIC_TOPIC));
            }
            synonyms.extend(broker_synonyms(shard, &dynamic, def));
            let (_, value, source) = synonyms[0].clone();
            ConfigEntry {
                name: def.name.to_string(),
                value,
                source,
                def: Some(def),
                synonyms,
            }
        })
        .collect()
}

/// The broker-level values of a topic config, most specific first, ending
/// with Kafka's default.
fn broker_synonyms(
    shard: &Shard,
    dynamic: &BTreeMap<String, String>,
    def: &TopicConfigDef,
) -> Vec<(String, String, i8)> {
    let mut out = Vec::new();
    if let Some(v) = dynamic.get(def.name) {
        out.push((
            def.broker_key.to_string(),
            v.clone(),
            SOURCE_DYNAMIC_DEFAULT_BROKER,
        ));
    }
    if let Some(v) = shard.config.topic_defaults.get(def.name) {
        out.push((def.broker_key.to_string(), v.clone(), SOURCE_STATIC_BROKER));
    }
    out.push((
        def.broker_key.to_string(),
        def.default.to_string(),
        SOURCE_DEFAULT,
    ));
    out
}

fn broker_config_entries(shard: &Shard) -> Vec<ConfigEntry> {
    let dynamic = shard.metadata().broker_configs.clone();
    let mut out: Vec<ConfigEntry> = shard
        .config
        .describe()
        .into_iter()
        .filter(|(k, _)| !TOPIC_CONFIGS.iter().any(|d| d.broker_key == k))
        .map(|(name, value)| ConfigEntry {
            synonyms: vec![(name.clone(), value.clone(), SOURCE_STATIC_BROKER)],
            name,
            value,
            source: SOURCE_STATIC_BROKER,
            def: None,
        })
        .collect();
    for def in TOPIC_CONFIGS {
        let synonyms = broker_synonyms(shard, &dynamic, def);
        let (_, value, source) = synonyms[0].clone();
        out.push(ConfigEntry {
            name: def.broker_key.to_string(),
            value,
            source,
            def: Some(def),
            synonyms,
        });
    }
    out
}

/// Whether `name` addresses this broker: "" (cluster default) or one of
/// our node ids.
fn is_our_broker(shard: &Shard, name: &str) -> bool {
    name.is_empty()
        || name
            .parse::<i32>()
            .ok()
            .and_then(|n| shard.shard_of_node(n))
            .is_some()
}

pub fn describe(shard: &Rc<Shard>, req: &RequestFrame) -> Result<Bytes, FrameError> {
    let request: DescribeConfigsRequest = req.decode()?;
    let md = shard.metadata();
    let results = request
        .resources
        .iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let entries = match r.resource_type {
                RESOURCE_TOPIC => match md.topics.get(&name) {
                    Some(t) => Ok(topic_config_entries(shard, &t.configs)),
                    None => Err(refuse(
                        AdminFault::UnknownTopic,
                        format!("Topic {name} does not exist"),
                    )),
                },
                RESOURCE_BROKER if is_our_broker(shard, &name) => Ok(broker_config_entries(shard)),
                RESOURCE_BROKER => Err(refuse(
                    AdminFault::InvalidRequest,
                    format!("Unexpected broker id {name}"),
                )),
                RESOURCE_GROUP if name.is_empty() => Err(refuse(
                    AdminFault::InvalidRequest,
                    "Group name must not be empty".to_string(),
                )),
                RESOURCE_GROUP => {
                    let keys: Option<Vec<String>> = r
                        .configuration_keys
                        .as_ref()
                        .map(|k| k.iter().map(|s| s.to_string()).collect());
                    let overrides = md.group_configs.get(&name).cloned().unwrap_or_default();
                    let configs = group_entries(&overrides, req.version, &request)
                        .into_iter()
                        .filter(|e| {
                            keys.as_ref()
                                .is_none_or(|k| k.contains(&e.name.to_string()))
                        })
                        .collect();
                    return base.with_configs(configs);
                }
                other => Err(refuse(
                    AdminFault::InvalidRequest,
                    format!("Unsupported resource type {other}"),
                )),
            };
            match entries {
                Err(e) => base
                    .with_error_code(e.error_code().code())
                    .with_error_message(Some(str_bytes(e.message))),
                Ok(entries) => {
                    let keys: Option<Vec<String>> = r
                        .configuration_keys
                        .as_ref()
                        .map(|k| k.iter().map(|s| s.to_string()).collect());
                    let configs = entries
                        .into_iter()
                        .filter(|e| keys.as_ref().is_none_or(|k| k.contains(&e.name)))
                        .map(|e| describe_entry(e, req.version, &request))
                        .collect();
                    base.with_configs(configs)
                }
            }
        })
        .collect();
    req.respond(&DescribeConfigsResponse::default().with_results(results))
}

fn describe_entry(
    e: ConfigEntry,
    version: i16,
    request: &DescribeConfigsRequest,
) -> DescribeConfigsResourceResult {
    let synonyms = if request.include_synonyms {
        e.synonyms
            .iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(name.clone()))
                    .with_value(Some(str_bytes(value.clone())))
                    .with_source(*source)
            })
            .collect()
    } else {
        Vec::new()
    };
    let kind = e.def.map_or(2, |d| d.kind.wire());
    let doc = (version >= 3 && request.include_documentation)
        .then(|| e.def.map(|d| str_bytes(d.doc)))
        .flatten();
    DescribeConfigsResourceResult::default()
        .with_name(str_bytes(e.name))
        .with_value(Some(str_bytes(e.value)))
        .with_read_only(e.def.is_none())
        .with_config_source(e.source)
        .with_is_sensitive(false)
        .with_synonyms(synonyms)
        .with_config_type(kind)
        .with_documentation(doc)
}

/// A group's configs as DescribeConfigs shows them, as Kafka 4.1 does: its
/// own values (DYNAMIC_GROUP_CONFIG), else the defaults (DEFAULT_CONFIG),
/// each with itself as its one synonym.
fn group_entries(
    overrides: &BTreeMap<String, String>,
    version: i16,
    request: &DescribeConfigsRequest,
) -> Vec<DescribeConfigsResourceResult> {
    crate::config::group::group_config_values(overrides)
        .into_iter()
        .map(|(def, value, own)| {
            let source = if own {
                SOURCE_DYNAMIC_GROUP
            } else {
                SOURCE_DEFAULT
            };
            let synonyms = [(def.name, value.clone(), source)];
            let synonyms = if request.include_synonyms {
                synonyms
                    .into_iter()
                    .map(|(name, value, source)| {
                        DescribeConfigsSynonym::default()
                            .with_name(str_bytes(name.to_string()))
                            .with_value(Some(str_bytes(value)))
                            .with_source(source)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            DescribeConfigsResourceResult::default()
                .with_name(str_bytes(def.name.to_string()))
                .with_value(Some(str_bytes(value)))
                .with_read_only(false)
                .with_config_source(source)
                .with_is_sensitive(false)
                .with_synonyms(synonyms)
                .with_config_type(def.wire_type())
                .with_documentation(
                    (version >= 3 && request.include_documentation).then(|| str_bytes(def.doc)),
                )
        })
        .collect()
}

fn resource_of(shard: &Shard, kind: i8, name: &str) -> Result<ConfigResource, AdminError> {
    match kind {
        RESOURCE_TOPIC => Ok(ConfigResource::Topic(name.to_string())),
        RESOURCE_GROUP if name.is_empty() => Err(refuse(
            AdminFault::InvalidRequest,
            "Group name must not be empty".to_string(),
        )),
        RESOURCE_GROUP => Ok(ConfigResource::Group(name.to_string())),
        RESOURCE_BROKER if is_our_broker(shard, name) => Ok(ConfigResource::Broker),
        RESOURCE_BROKER => Err(refuse(
            AdminFault::InvalidRequest,
            format!("Unexpected broker id {name}"),
        )),
        other => Err(refuse(
            AdminFault::InvalidRequest,
            format!("Unsupported resource type {other}"),
        )),
    }
}

/// Sends the valid changes to the controller; returns one result per
/// resource in request order.
async fn run_changes(
    shard: &Rc<Shard>,
    changes: Vec<Result<(ConfigResource, ConfigOps), AdminError>>,
    validate_only: bool,
) -> Result<Vec<Result<(), AdminError>>, FrameError> {
    let valid: Vec<(ConfigResource, ConfigOps)> = changes
        .iter()
        .filter_map(|c| c.as_ref().ok().cloned())
        .collect();
    let mut done = shard
        .run_on(CONTROLLER_SHARD, move |s| async move {
            s.controller().alter_configs(&s, valid, validate_only).await
        })
        .await
        .map_err(|e| FrameError::Encode(e.to_string()))?
        .into_iter();
    Ok(changes
        .into_iter()
        .map(|c| match c {
            Ok(_) => done.next().expect("one result per change"),
            Err(e) => Err(e),
        })
        .collect())
}

fn error_parts(r: &Result<(), AdminError>) -> (i16, Option<String>) {
    match r {
        Ok(()) => (0, None),
        Err(e) => (e.error_code().code(), Some(e.message.clone())),
    }
}

pub async fn alter(shard: &Rc<Shard>, req: &RequestFrame) -> Result<Bytes, FrameError> {
    let request: AlterConfigsRequest = req.decode()?;
    let changes = request
        .resources
        .iter()
        .map(|r| {
            let resource = resource_of(shard, r.resource_type, &r.resource_name)?;
            let entries = r
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect();
            Ok((resource, ConfigOps::Replace(entries)))
        })
        .collect();
    let results = run_changes(shard, changes, request.validate_only).await?;
    let responses = request
        .resources
        .iter()
        .zip(results)
        .map(|(r, result)| {
            let (code, message) = error_parts(&result);
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message.map(str_bytes))
        })
        .collect();
    req.respond(&AlterConfigsResponse::default().with_responses(responses))
}

pub async fn incremental_alter(shard: &Rc<Shard>, req: &RequestFrame) -> Result<Bytes, FrameError> {
    let request: IncrementalAlterConfigsRequest = req.decode()?;
    let changes = request
        .resources
        .iter()
        .map(|r| {
            let resource = resource_of(shard, r.resource_type, &r.resource_name)?;
            let entries = r
                .configs
                .iter()
                .map(|c| {
                    (
                        c.name.to_string(),
                        c.config_operation,
                        c.value.as_ref().map(|v| v.to_string()),
                    )
                })
                .collect();
            Ok((resource, ConfigOps::Incremental(entries)))
        })
        .collect();
    let results = run_changes(shard, changes, request.validate_only).await?;
    let responses = request
        .resources
        .iter()
        .zip(results)
        .map(|(r, result)| {
            let (code, message) = error_parts(&result);
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message.map(str_bytes))
        })
        .collect();
    req.respond(&IncrementalAlterConfigsResponse::default().with_responses(responses))
}
