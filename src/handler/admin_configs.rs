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
use crate::config::registry::{registry, Mode};
use crate::config::{
    topic_config_def, topic_configs, topic_def_for_broker_key, ConfigKind, TopicConfigDef,
};
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::controller::{refuse, AdminError, AdminFault, ConfigOps, ConfigResource};
use crate::shard::{Shard, CONTROLLER_SHARD};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_GROUP: i8 = 32;

// Kafka's ConfigSource values.
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_DYNAMIC_GROUP: i8 = 8;

/// One config as DescribeConfigs and CreateTopics report it.
pub struct ConfigEntry {
    pub name: String,
    /// None: null (no value, or a password's).
    pub value: Option<String>,
    pub source: i8,
    pub kind: Option<ConfigKind>,
    pub read_only: bool,
    pub sensitive: bool,
    pub doc: Option<&'static str>,
    /// (value, source) from the most to the least specific.
    pub synonyms: Vec<(String, Option<String>, i8)>,
}

impl ConfigEntry {
    /// An entry whose value is its first synonym's (null with
    /// DEFAULT_CONFIG when it has none).
    fn from_synonyms(
        name: &str,
        kind: Option<ConfigKind>,
        synonyms: Vec<(String, Option<String>, i8)>,
    ) -> ConfigEntry {
        let sensitive = kind == Some(ConfigKind::Password);
        let (value, source) = synonyms
            .first()
            .map_or((None, SOURCE_DEFAULT), |(_, v, s)| (v.clone(), *s));
        ConfigEntry {
            name: name.to_string(),
            value: if sensitive { None } else { value },
            source,
            kind,
            read_only: false,
            sensitive,
            doc: None,
            synonyms: synonyms
                .into_iter()
                .map(|(n, v, s)| (n, if sensitive { None } else { v }, s))
                .collect(),
        }
    }
}

/// Every topic config of a topic with `overrides`, with where its value
/// comes from.
pub fn topic_config_entries(
    shard: &Shard,
    overrides: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    let md = shard.metadata();
    let node = md.node_configs.get(&shard.node_of_shard(shard.id));
    topic_configs()
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(def.name) {
                synonyms.push((def.name.to_string(), Some(v.clone()), SOURCE_DYNAMIC_TOPIC));
            }
            synonyms.extend(broker_synonyms(shard, node, &md.broker_configs, def));
            let mut e = ConfigEntry::from_synonyms(def.name, Some(def.kind), synonyms);
            if e.synonyms.is_empty() {
                // A topic key no broker key sets: Kafka's default, with no
                // synonyms listed (as Kafka lists them).
                e.value = Some(def.default.to_string());
            }
            e.doc = Some(def.doc);
            e
        })
        .collect()
}

/// The broker-level values of a topic config, most specific first, ending
/// with its default; none for a topic key no broker key sets.
fn broker_synonyms(
    shard: &Shard,
    node: Option<&BTreeMap<String, String>>,
    dynamic: &BTreeMap<String, String>,
    def: &TopicConfigDef,
) -> Vec<(String, Option<String>, i8)> {
    let mut out = Vec::new();
    if def.broker_key.is_empty() {
        return out;
    }
    let key = || def.broker_key.to_string();
    if let Some(v) = node.and_then(|n| n.get(def.name)) {
        out.push((key(), Some(v.clone()), SOURCE_DYNAMIC_BROKER));
    }
    if let Some(v) = dynamic.get(def.name) {
        out.push((key(), Some(v.clone()), SOURCE_DYNAMIC_DEFAULT_BROKER));
    }
    if let Some(v) = shard.config.topic_defaults.get(def.name) {
        out.push((key(), Some(v.clone()), SOURCE_STATIC_BROKER));
    }
    out.push((key(), Some(def.default.to_string()), SOURCE_DEFAULT));
    out
}

/// Every broker config of node `node` as Kafka lists them: each of Kafka's
/// broker keys (and shardlog's own), from the node's dynamic configs, the
/// cluster-wide ones, server.properties and the defaults, in that order.
fn broker_config_entries(shard: &Shard, node: i32) -> Vec<ConfigEntry> {
    let md = shard.metadata();
    let own = md.node_configs.get(&node);
    let ours: BTreeMap<String, String> = shard.config.describe().into_iter().collect();
    let mut out = Vec::new();
    for key in registry().broker_keys() {
        if let Some(def) = topic_def_for_broker_key(key.name) {
            let synonyms = broker_synonyms(shard, own, &md.broker_configs, def);
            let mut e = ConfigEntry::from_synonyms(key.name, Some(key.kind), synonyms);
            e.read_only = key.mode == Mode::ReadOnly;
            e.doc = Some(def.doc);
            out.push(e);
            continue;
        }
        let mut synonyms = Vec::new();
        let name = || key.name.to_string();
        if let Some(v) = own.and_then(|n| n.get(key.name)) {
            synonyms.push((name(), Some(v.clone()), SOURCE_DYNAMIC_BROKER));
        }
        if let Some(v) = md.broker_configs.get(key.name) {
            synonyms.push((name(), Some(v.clone()), SOURCE_DYNAMIC_DEFAULT_BROKER));
        }
        let set = shard.config.set_keys.contains(key.name);
        let value = ours
            .get(key.name)
            .or_else(|| shard.config.kafka_static.get(key.name));
        match value {
            Some(v) if set => synonyms.push((name(), Some(v.clone()), SOURCE_STATIC_BROKER)),
            // shardlog's value of a key it reads, not set: its default.
            Some(v) => synonyms.push((name(), Some(v.clone()), SOURCE_DEFAULT)),
            None => {}
        }
        if let (Some(d), true) = (key.default, value.is_none() || set) {
            synonyms.push((name(), Some(d.to_string()), SOURCE_DEFAULT));
        }
        let mut e = ConfigEntry::from_synonyms(key.name, Some(key.kind), synonyms);
        e.read_only = key.mode == Mode::ReadOnly;
        out.push(e);
    }
    // Keys Kafka does not know that were set at runtime: listed as Kafka
    // lists them, sensitive (their values are not shown).
    let unknown = own
        .into_iter()
        .flat_map(|n| n.iter().map(|kv| (kv, SOURCE_DYNAMIC_BROKER)))
        .chain(
            md.broker_configs
                .iter()
                .map(|kv| (kv, SOURCE_DYNAMIC_DEFAULT_BROKER)),
        );
    let mut seen = std::collections::BTreeSet::new();
    for ((name, _), source) in unknown {
        if registry().broker_key(name).is_none()
            && topic_config_def(name).is_none()
            && seen.insert(name.clone())
        {
            let mut e = ConfigEntry::from_synonyms(name, None, vec![(name.clone(), None, source)]);
            e.read_only = true;
            e.sensitive = true;
            out.push(e);
        }
    }
    // shardlog's own keys (shardlog.listener.mode, ...).
    for (name, value) in ours {
        if registry().broker_key(&name).is_none() && topic_def_for_broker_key(&name).is_none() {
            let synonyms = vec![(name.clone(), Some(value), SOURCE_STATIC_BROKER)];
            let mut e = ConfigEntry::from_synonyms(&name, Some(ConfigKind::String), synonyms);
            e.read_only = true;
            out.push(e);
        }
    }
    out
}

/// The cluster-wide dynamic broker configs (BROKER resource ""), as Kafka
/// lists them: only those set, keys Kafka does not know as sensitive.
fn cluster_default_entries(shard: &Shard) -> Vec<ConfigEntry> {
    let md = shard.metadata();
    md.broker_configs
        .iter()
        .map(|(stored, value)| {
            let key = topic_config_def(stored)
                .filter(|d| !d.broker_key.is_empty())
                .map_or(stored.as_str(), |d| d.broker_key);
            let known = registry().broker_key(key);
            let synonyms = vec![(
                key.to_string(),
                Some(value.clone()),
                SOURCE_DYNAMIC_DEFAULT_BROKER,
            )];
            let mut e = ConfigEntry::from_synonyms(key, known.map(|k| k.kind), synonyms);
            match known {
                Some(k) => e.read_only = k.mode == Mode::ReadOnly,
                None => {
                    e.read_only = true;
                    e.sensitive = true;
                    e.value = None;
                }
            }
            e
        })
        .collect()
}

/// The node `name` addresses: one of our node ids (None for "", the
/// cluster default), or an error naming it.
fn our_node(shard: &Shard, name: &str) -> Result<Option<i32>, AdminError> {
    if name.is_empty() {
        return Ok(None);
    }
    name.parse::<i32>()
        .ok()
        .filter(|&n| shard.shard_of_node(n).is_some())
        .map(Some)
        .ok_or_else(|| {
            refuse(
                AdminFault::InvalidRequest,
                format!("Unexpected broker id {name}"),
            )
        })
}

pub fn describe(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
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
            if let Err(e) = config_access(auth, r.resource_type, &name, Operation::DescribeConfigs)
            {
                return base
                    .with_error_code(e.error_code().code())
                    .with_error_message(Some(str_bytes(e.message)));
            }
            let entries = match r.resource_type {
                RESOURCE_TOPIC => match md.topics.get(&name) {
                    Some(t) => Ok(topic_config_entries(shard, &t.configs)),
                    None => Err(refuse(
                        AdminFault::UnknownTopic,
                        format!("Topic {name} does not exist"),
                    )),
                },
                RESOURCE_BROKER => our_node(shard, &name).map(|node| match node {
                    Some(node) => broker_config_entries(shard, node),
                    None => cluster_default_entries(shard),
                }),
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
                    .with_value(value.clone().map(str_bytes))
                    .with_source(*source)
            })
            .collect()
    } else {
        Vec::new()
    };
    // Kafka's ConfigType: UNKNOWN (0) for keys it does not know.
    let kind = e.kind.map_or(0, ConfigKind::wire);
    let doc = (version >= 3 && request.include_documentation)
        .then(|| e.doc.map(str_bytes))
        .flatten();
    DescribeConfigsResourceResult::default()
        .with_name(str_bytes(e.name))
        .with_value(e.value.map(str_bytes))
        .with_read_only(e.read_only)
        .with_config_source(e.source)
        .with_is_sensitive(e.sensitive)
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

/// DESCRIBE_CONFIGS or ALTER_CONFIGS on a config resource: a topic, a
/// group, or the cluster for brokers (Kafka's rules).
fn config_access(auth: &ConnAuth, kind: i8, name: &str, op: Operation) -> Result<(), AdminError> {
    let (allowed, fault) = match kind {
        RESOURCE_TOPIC => (auth.topic(op, name), AdminFault::TopicUnauthorized),
        RESOURCE_GROUP => (auth.group(op, name), AdminFault::GroupUnauthorized),
        _ => (auth.cluster(op), AdminFault::ClusterUnauthorized),
    };
    if allowed {
        Ok(())
    } else {
        Err(refuse(fault, "Authorization failed."))
    }
}

fn resource_of(shard: &Shard, kind: i8, name: &str) -> Result<ConfigResource, AdminError> {
    match kind {
        RESOURCE_TOPIC => Ok(ConfigResource::Topic(name.to_string())),
        RESOURCE_GROUP if name.is_empty() => Err(refuse(
            AdminFault::InvalidRequest,
            "Group name must not be empty".to_string(),
        )),
        RESOURCE_GROUP => Ok(ConfigResource::Group(name.to_string())),
        RESOURCE_BROKER => Ok(match our_node(shard, name)? {
            Some(node) => ConfigResource::Node(node),
            None => ConfigResource::Broker,
        }),
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

pub async fn alter(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: AlterConfigsRequest = req.decode()?;
    let changes = request
        .resources
        .iter()
        .map(|r| {
            config_access(
                auth,
                r.resource_type,
                &r.resource_name,
                Operation::AlterConfigs,
            )?;
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

pub async fn incremental_alter(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: IncrementalAlterConfigsRequest = req.decode()?;
    let changes = request
        .resources
        .iter()
        .map(|r| {
            config_access(
                auth,
                r.resource_type,
                &r.resource_name,
                Operation::AlterConfigs,
            )?;
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
