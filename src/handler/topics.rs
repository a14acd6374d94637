//! CreateTopics and DeleteTopics, carried out by the controller (shard 0).

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
};

use super::admin_configs::topic_config_entries;
use super::errors::ToErrorCode;
use super::{str_bytes, topic_name};
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::controller::{refuse, AdminError, AdminFault, NewTopic};
use crate::shard::{Shard, CONTROLLER_SHARD};

pub async fn create(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: CreateTopicsRequest = req.decode()?;
    let mut seen = std::collections::HashSet::new();
    let mut duplicates = std::collections::HashSet::new();
    for t in &request.topics {
        if !seen.insert(t.name.to_string()) {
            duplicates.insert(t.name.to_string());
        }
    }
    // CREATE on the cluster, or on each topic.
    let may_create_any = auth.cluster(Operation::Create);
    let unauthorized: std::collections::HashSet<String> = request
        .topics
        .iter()
        .map(|t| t.name.to_string())
        .filter(|n| !may_create_any && !auth.topic(Operation::Create, n))
        .collect();
    let new_topics: Vec<NewTopic> = request
        .topics
        .iter()
        .filter(|t| !duplicates.contains(&t.name.to_string()))
        .filter(|t| !unauthorized.contains(&t.name.to_string()))
        .map(|t| NewTopic {
            name: t.name.to_string(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.iter().map(|b| b.0).collect(),
                    )
                })
                .collect(),
            configs: t
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect(),
        })
        .collect();
    let validate_only = request.validate_only;
    let results = shard
        .run_on(CONTROLLER_SHARD, move |s| async move {
            s.controller()
                .create_topics(&s, new_topics, validate_only)
                .await
        })
        .await
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    let mut results = results.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let name = t.name.to_string();
            let base = CreatableTopicResult::default().with_name(topic_name(name.clone()));
            if duplicates.contains(&name) {
                let message = format!(
                    "Create topics request from client contains multiple entries for topic {name}"
                );
                return with_error(
                    base,
                    refuse(AdminFault::InvalidRequest, message),
                    req.version,
                );
            }
            if unauthorized.contains(&name) {
                return with_error(
                    base,
                    refuse(AdminFault::TopicUnauthorized, "Authorization failed."),
                    req.version,
                );
            }
            match results.next().expect("one result per topic") {
                Ok(created) => {
                    let overrides = shard
                        .metadata()
                        .topics
                        .get(&name)
                        .map(|m| m.configs.clone())
                        .unwrap_or_else(|| {
                            t.configs
                                .iter()
                                .filter_map(|c| {
                                    Some((c.name.to_string(), c.value.as_ref()?.to_string()))
                                })
                                .collect()
                        });
                    let configs = topic_config_entries(shard, &overrides)
                        .into_iter()
                        .map(|e| {
                            CreatableTopicConfigs::default()
                                .with_name(str_bytes(e.name))
                                .with_value(e.value.map(str_bytes))
                                .with_read_only(e.read_only)
                                .with_is_sensitive(e.sensitive)
                                .with_config_source(e.source)
                        })
                        .collect();
                    if req.version < 5 {
                        return base;
                    }
                    let id = if req.version >= 7 {
                        uuid::Uuid::parse_str(&created.topic_id).unwrap_or_default()
                    } else {
                        uuid::Uuid::nil()
                    };
                    base.with_topic_id(id)
                        .with_num_partitions(created.num_partitions)
                        .with_replication_factor(created.replication_factor)
                        .with_configs(Some(configs))
                }
                Err(e) => with_error(base, e, req.version),
            }
        })
        .collect();
    req.respond(&CreateTopicsResponse::default().with_topics(topics))
}

fn with_error(base: CreatableTopicResult, error: AdminError, version: i16) -> CreatableTopicResult {
    let base = base
        .with_error_code(error.error_code().code())
        .with_error_message(Some(str_bytes(error.message)));
    if version >= 5 {
        base.with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_configs(None)
    } else {
        base
    }
}

pub async fn delete(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: DeleteTopicsRequest = req.decode()?;
    // v6 names topics by name or id; earlier versions by name.
    let md = shard.metadata();
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if req.version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let resolved: Vec<Result<(String, uuid::Uuid), AdminError>> = wanted
        .iter()
        .map(|(name, id)| match name {
            Some(n) if !auth.topic(Operation::Delete, n) => Err(refuse(
                AdminFault::TopicUnauthorized,
                "Authorization failed.",
            )),
            Some(n) => Ok((n.clone(), md.topics.get(n).map(|m| m.uuid()).unwrap_or(*id))),
            None => md
                .topics
                .iter()
                .find(|(_, m)| m.uuid() == *id)
                .map(|(n, m)| (n.clone(), m.uuid()))
                .ok_or(refuse(
                    AdminFault::UnknownTopicId,
                    format!("topic id {id} does not exist"),
                ))
                .and_then(|(n, id)| {
                    if auth.topic(Operation::Delete, &n) {
                        Ok((n, id))
                    } else {
                        Err(refuse(
                            AdminFault::TopicUnauthorized,
                            "Authorization failed.",
                        ))
                    }
                }),
        })
        .collect();
    let names: Vec<String> = resolved
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|(n, _)| n.clone()))
        .collect();
    let results = shard
        .run_on(CONTROLLER_SHARD, move |s| async move {
            s.controller().delete_topics(&s, names).await
        })
        .await
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    let version = req.version;
    let mut results = results.into_iter();
    let responses = resolved
        .into_iter()
        .zip(wanted)
        .map(|(r, (name, id))| {
            let outcome = match r {
                Ok((name, id)) => results
                    .next()
                    .expect("one result per name")
                    .map(|_| (name, id)),
                Err(e) => Err(e),
            };
            match outcome {
                Ok((name, id)) => DeletableTopicResult::default()
                    .with_name(Some(topic_name(name)))
                    .with_topic_id(if version >= 6 { id } else { uuid::Uuid::nil() }),
                Err(e) => DeletableTopicResult::default()
                    .with_name(name.map(topic_name))
                    .with_topic_id(if version >= 6 { id } else { uuid::Uuid::nil() })
                    .with_error_code(e.error_code().code())
                    .with_error_message((version >= 5).then(|| str_bytes(e.message))),
            }
        })
        .collect();
    req.respond(&DeleteTopicsResponse::default().with_responses(responses))
}
