//! ElectLeaders (`kafka-leader-election`, the admin clients'
//! `electLeaders`): preferred elections move a partition's leadership back
//! to its first replica where that one is live and in sync; unclean ones
//! give a partition without a leader one, from outside the ISR if need
//! be. In a cluster the elections go through the metadata quorum as one
//! `ElectLeaders` record and are answered once applied; a single node's
//! partitions always have their only replica leading.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};

use super::errors::ToErrorCode;
use super::{str_bytes, topic_name};
use crate::cluster::image::ElectPartition;
use crate::cluster::MetadataRecord;
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::replication::election::{ElectRefused, ElectionKind};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::{Shard, CONTROLLER_SHARD};

/// One partition's answer: success, or the error and its message.
type Outcome = Result<(), (ErrorCode, String)>;

/// The longest an election waits for the quorum, whatever the request's
/// timeout.
const MAX_WAIT: Duration = Duration::from_secs(60);

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: ElectLeadersRequest = req.decode()?;
    let asked: Option<Vec<(String, Vec<i32>)>> = request.topic_partitions.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.topic.to_string(), t.partitions.clone()))
            .collect()
    });
    let refuse_all = |code: ErrorCode, message: &str| {
        let results = asked
            .iter()
            .flatten()
            .map(|(t, ps)| {
                let outcomes = ps
                    .iter()
                    .map(|&p| (p, Err((code, message.to_string()))))
                    .collect();
                (t.clone(), outcomes)
            })
            .collect();
        respond(req, code, results)
    };
    if !auth.cluster(Operation::Alter) {
        return refuse_all(
            ErrorCode::ClusterAuthorizationFailed,
            "Cluster authorization failed.",
        );
    }
    // v0 knows preferred elections only.
    let kind = match (req.version, request.election_type) {
        (0, _) | (_, 0) => ElectionKind::Preferred,
        (_, 1) => ElectionKind::Unclean,
        (_, other) => {
            return refuse_all(
                ErrorCode::InvalidRequest,
                &format!("Unknown election type {other}"),
            )
        }
    };
    let wait = Duration::from_millis(request.timeout_ms.max(0) as u64).min(MAX_WAIT);
    let outcomes = shard
        .run_on(CONTROLLER_SHARD, move |s| async move {
            elect(&s, kind, asked, wait).await
        })
        .await
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    // Grouped by topic, in the order first named.
    let mut results: Vec<(String, Vec<(i32, Outcome)>)> = Vec::new();
    for (topic, p, outcome) in outcomes {
        match results.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, ps)) => ps.push((p, outcome)),
            None => results.push((topic, vec![(p, outcome)])),
        }
    }
    respond(req, ErrorCode::None, results)
}

fn respond(
    req: &RequestFrame,
    error: ErrorCode,
    results: Vec<(String, Vec<(i32, Outcome)>)>,
) -> Result<Bytes, FrameError> {
    let results = results
        .into_iter()
        .map(|(topic, ps)| {
            let partition_result = ps
                .into_iter()
                .map(|(p, outcome)| {
                    let base = PartitionResult::default().with_partition_id(p);
                    match outcome {
                        Ok(()) => base.with_error_message(None),
                        Err((code, message)) => base
                            .with_error_code(code.code())
                            .with_error_message(Some(str_bytes(message))),
                    }
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(topic_name(topic))
                .with_partition_result(partition_result)
        })
        .collect();
    req.respond(
        &ElectLeadersResponse::default()
            .with_error_code(error.code())
            .with_replica_election_results(results),
    )
}

fn refused(e: ElectRefused) -> (ErrorCode, String) {
    let message = match e {
        ElectRefused::NotNeeded => "Leader election not needed for topic partition.",
        ElectRefused::PreferredNotAvailable => "The preferred leader was not available.",
        ElectRefused::EligibleNotAvailable => "Eligible topic partition leaders are not available.",
    };
    (e.error_code(), message.to_string())
}

fn unknown(topic: &str, partition: i32) -> (ErrorCode, String) {
    (
        ErrorCode::UnknownTopicOrPartition,
        format!("No such topic partition as {topic}-{partition}"),
    )
}

/// Runs the elections on the controller shard: (topic, partition,
/// outcome) for each partition asked, or with `asked` None for every
/// partition that needed one (as Kafka, those that did not are left out).
async fn elect(
    shard: &Rc<Shard>,
    kind: ElectionKind,
    asked: Option<Vec<(String, Vec<i32>)>>,
    wait: Duration,
) -> Vec<(String, i32, Outcome)> {
    let Some(proposer) = shard.proposer.get() else {
        // A single node: each partition's only replica leads.
        let md = shard.metadata();
        return asked
            .into_iter()
            .flatten()
            .flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p)))
            .map(|(t, p)| {
                let known = md
                    .topics
                    .get(&t)
                    .is_some_and(|m| p >= 0 && (p as usize) < m.partitions.len());
                let outcome = if known {
                    Err(refused(ElectRefused::NotNeeded))
                } else {
                    Err(unknown(&t, p))
                };
                (t, p, outcome)
            })
            .collect();
    };
    let mut out: Vec<(String, i32, Outcome)> = Vec::new();
    let mut pending: Vec<ElectPartition> = Vec::new();
    {
        let image = proposer.image.read().expect("image lock");
        let named: Vec<(String, i32)> = match &asked {
            Some(list) => list
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |&p| (t.clone(), p)))
                .collect(),
            None => image
                .topics
                .iter()
                .flat_map(|(t, ti)| (0..ti.partitions.len() as i32).map(move |p| (t.clone(), p)))
                .collect(),
        };
        for (t, p) in named {
            match image.try_elect(kind, &t, p) {
                None => out.push((t.clone(), p, Err(unknown(&t, p)))),
                Some(Ok(())) => pending.push(ElectPartition {
                    topic_id: image.topics[&t].id.clone(),
                    topic: t,
                    partition: p,
                }),
                Some(Err(ElectRefused::NotNeeded)) if asked.is_none() => {}
                Some(Err(e)) => out.push((t, p, Err(refused(e)))),
            }
        }
    }
    if pending.is_empty() {
        return out;
    }
    let record = MetadataRecord::ElectLeaders {
        election: kind,
        partitions: pending.clone(),
    };
    let deadline = Instant::now() + wait;
    let mut proposed_at: Option<Instant> = None;
    loop {
        // Elected: the election is no longer needed. Refused meanwhile
        // (the preferred replica fell out of sync): that error.
        let offset = {
            let image = proposer.image.read().expect("image lock");
            pending.retain(|e| match image.try_elect(kind, &e.topic, e.partition) {
                Some(Ok(())) => true,
                Some(Err(ElectRefused::NotNeeded)) => {
                    out.push((e.topic.clone(), e.partition, Ok(())));
                    false
                }
                Some(Err(r)) => {
                    out.push((e.topic.clone(), e.partition, Err(refused(r))));
                    false
                }
                None => {
                    out.push((
                        e.topic.clone(),
                        e.partition,
                        Err(unknown(&e.topic, e.partition)),
                    ));
                    false
                }
            });
            image.offset
        };
        if pending.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            for e in pending.drain(..) {
                out.push((
                    e.topic,
                    e.partition,
                    Err((
                        ErrorCode::RequestTimedOut,
                        "The metadata quorum did not apply the election in time.".to_string(),
                    )),
                ));
            }
            break;
        }
        // Proposed again while unanswered: a proposal made without a
        // quorum leader is lost.
        if proposed_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            proposer.propose(&record);
            proposed_at = Some(Instant::now());
        }
        futures_lite::future::or(proposer.applied_beyond(offset), async {
            glommio::timer::sleep(Duration::from_millis(50)).await;
        })
        .await;
    }
    shard.controller().adopt_latest(shard).await;
    out
}
