//! Fetch: whole batches from each partition's owning shard, long-polling
//! until min_bytes are available or max_wait_ms passes, within max_bytes
//! and each partition's max_bytes by the KIP-74 rule (the first non-empty
//! partition returns at least one batch even if it is larger).
//!
//! Fetch sessions (KIP-227) are declined: the response's session id is 0,
//! so clients keep sending full fetch requests.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::FetchResponse;

use super::errors::{Failure, Refusal, ToErrorCode};
use super::{Access, Answers, Decoded, Limits, PartitionApi, Reply, Topic};
use crate::partition::{Partition, PartitionError};
use crate::protocol::fetch_decode::decode_fetch;
use crate::protocol::fetch_encode::{encode_fetch_response, FetchPartitionOut, FetchTopicOut};
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::shard::routing_table::RouteError;

pub struct Fetch;

/// One partition of a Fetch request.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    offset: i64,
    max_bytes: usize,
    current_leader_epoch: i32,
    /// The replica fetching (its node id), or -1 for a consumer.
    replica: i32,
    /// A follower's own log start (-1: not given).
    log_start_offset: i64,
    /// A consumer's fetch a follower replica may serve (v11+, KIP-392).
    replica_reads: bool,
}

/// What every partition of a Fetch needs of the request.
#[derive(Debug, Clone)]
pub struct Params {
    /// The response's max_bytes: no partition reads more.
    response_max: usize,
    /// The consumer's rack (KIP-392), when it gave one.
    client_rack: Option<std::sync::Arc<str>>,
}

/// What the handler keeps of the request.
pub struct Request {
    read_committed: bool,
    response_max: usize,
    min_bytes: usize,
    deadline: Instant,
    /// Sent by a replica (replica_id >= 0), not a consumer.
    follower: bool,
    /// A consumer's fetch at v11+: follower replicas may serve it.
    replica_reads: bool,
}

/// What a partition answers: its batches (or why none), with its offsets
/// whenever the partition was reached.
#[derive(Debug, Clone)]
pub struct Answer {
    batches: Result<Vec<Bytes>, Failure>,
    high_watermark: i64,
    log_start_offset: i64,
    /// The partition's max_bytes from the request.
    max_bytes: usize,
    /// The replica the consumer should read from instead (KIP-392), or -1.
    preferred_read_replica: i32,
}

impl From<RouteError> for Answer {
    fn from(error: RouteError) -> Self {
        Answer {
            batches: Err(error.into()),
            high_watermark: -1,
            log_start_offset: -1,
            max_bytes: 0,
            preferred_read_replica: -1,
        }
    }
}

impl PartitionApi for Fetch {
    type Request = Request;
    type Params = Params;
    type Input = Spec;
    type Output = Answer;

    /// A follower's fetch needs CLUSTER_ACTION, a consumer's READ.
    fn access(request: &Request) -> Access {
        if request.follower {
            Access::Cluster(Operation::ClusterAction)
        } else {
            Access::Topic(Operation::Read)
        }
    }

    fn replica_reads(request: &Request) -> bool {
        request.replica_reads
    }

    fn decode(req: &RequestFrame, limits: &Limits) -> Result<Decoded<Self>, FrameError> {
        // One walk of the body, topic names left as slices of the frame.
        let request = decode_fetch(&req.body, req.version)?;
        if req.version >= 7 && (request.session_id != 0 || request.session_epoch > 0) {
            // We never hand out a session id, so any named session is unknown.
            let response = FetchResponse::default()
                .with_error_code(Refusal::UnknownFetchSession.error_code().code())
                .with_session_id(0);
            return Ok(Decoded::Answer(Some(vec![req.respond(&response)?])));
        }
        // fetch.max.bytes (replica.fetch.response.max.bytes for followers)
        // and the connection's response budget cap what one response may
        // take; replica.fetch.max.bytes caps a follower's partition (KIP-74:
        // still at least one batch).
        let follower = request.replica_id >= 0;
        let (response_cap, partition_cap) = if follower {
            (
                limits.replica_response_bytes_max,
                limits.replica_partition_bytes_max,
            )
        } else {
            (limits.response_bytes_max, usize::MAX)
        };
        let response_max = (request.max_bytes.max(0) as usize).min(response_cap);
        let replica = request.replica_id.max(-1);
        let replica_reads = !follower && req.version >= 11;
        let client_rack = (!follower && !request.rack_id.is_empty())
            .then(|| std::sync::Arc::from(request.rack_id.as_str()));
        let topics = Topic::from_request(
            request.topics,
            |t| t,
            |p| {
                let spec = Spec {
                    offset: p.fetch_offset,
                    max_bytes: (p.partition_max_bytes.max(0) as usize).min(partition_cap),
                    current_leader_epoch: p.current_leader_epoch,
                    replica,
                    log_start_offset: p.log_start_offset,
                    replica_reads,
                };
                (p.partition, spec)
            },
        );
        Ok(Decoded::Route {
            request: Request {
                read_committed: request.isolation_level == 1,
                response_max,
                min_bytes: request.min_bytes.max(0) as usize,
                deadline: Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64),
                follower,
                replica_reads,
            },
            params: Params {
                response_max,
                client_rack,
            },
            topics,
        })
    }

    async fn serve(p: Rc<Partition>, params: Params, spec: Spec) -> Answer {
        let response_max = params.response_max;
        let offsets = p.offsets();
        let mut answer = Answer {
            batches: Ok(Vec::new()),
            high_watermark: offsets.high_watermark,
            log_start_offset: offsets.log_start_offset,
            max_bytes: spec.max_bytes,
            preferred_read_replica: -1,
        };
        if let Err(e) = p.check_leader_epoch(spec.current_leader_epoch) {
            answer.batches = Err(e.into());
            return answer;
        }
        let max = spec.max_bytes.min(response_max).max(1);
        let read = if spec.replica >= 0 {
            // A follower: counted at its log end (the offset it asks
            // for), then given what is written, past the high watermark.
            if spec.offset <= offsets.log_end_offset
                && !p.on_replica_fetch(spec.replica, spec.offset, crate::replication::now_ms())
            {
                answer.batches = Err(PartitionError::NotLeader.into());
                return answer;
            }
            p.on_replica_log_start(spec.replica, spec.log_start_offset);
            p.replica_read(spec.offset, max).await
        } else if p.is_follower() && !spec.replica_reads {
            answer.batches = Err(PartitionError::NotLeader.into());
            return answer;
        } else {
            // A leader may send a consumer to a follower in its rack
            // (KIP-392): nothing is read here then.
            let preferred = params
                .client_rack
                .as_deref()
                .and_then(|rack| p.preferred_read_replica(rack, spec.offset));
            if let Some(node) = preferred {
                answer.preferred_read_replica = node;
                return answer;
            }
            // A follower reads up to its high watermark, the leader's.
            p.read(spec.offset, max).await
        };
        match read {
            Ok(read) => {
                answer.batches = Ok(read.batches);
                answer.high_watermark = read.high_watermark;
                answer.log_start_offset = read.log_start_offset;
            }
            Err(e) => {
                if let PartitionError::OffsetOutOfRange {
                    high_watermark,
                    log_start_offset,
                    ..
                } = e
                {
                    answer.high_watermark = high_watermark;
                    answer.log_start_offset = log_start_offset;
                }
                answer.batches = Err(e.into());
            }
        }
        answer
    }

    fn respond(req: &RequestFrame, request: Request, answers: Answers<Self>) -> Reply {
        let topics = Topic::to_response(
            answers,
            |index, a| {
                let (error_code, records) = match a.batches {
                    Ok(batches) => (0, batches),
                    Err(e) => (e.error_code().code(), Vec::new()),
                };
                FetchPartitionOut {
                    partition_index: index,
                    error_code,
                    high_watermark: a.high_watermark,
                    last_stable_offset: a.high_watermark,
                    log_start_offset: a.log_start_offset,
                    aborted_transactions: request.read_committed.then_some(()),
                    preferred_read_replica: a.preferred_read_replica,
                    records,
                }
            },
            |name, partitions| FetchTopicOut { name, partitions },
        );
        Ok(Some(encode_fetch_response(
            req.version,
            req.correlation_id,
            0,
            0,
            &topics,
        )))
    }

    /// Trims the reads to the response's max_bytes and each partition's
    /// max_bytes; only the first partition with data may exceed them, by
    /// its first batch (KIP-74). Then waits unless min_bytes are there, a
    /// partition failed, or the deadline passed.
    fn settle(request: &Request, answers: &mut [Topic<Answer>]) -> Option<Instant> {
        let mut remaining = request.response_max;
        let mut total = 0usize;
        let mut min_one = true;
        let mut failed = false;
        for (_, answer) in answers.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            // Sent to another replica (KIP-392): answered at once.
            if answer.preferred_read_replica >= 0 {
                failed = true;
            }
            let batches = match &mut answer.batches {
                Ok(b) => b,
                Err(_) => {
                    failed = true;
                    continue;
                }
            };
            if batches.is_empty() {
                continue;
            }
            let limit = remaining.min(answer.max_bytes);
            let mut kept = 0usize;
            let mut taken = 0usize;
            for b in batches.iter() {
                if kept + b.len() > limit && !(min_one && taken == 0) {
                    break;
                }
                kept += b.len();
                taken += 1;
            }
            batches.truncate(taken);
            if taken > 0 {
                min_one = false;
            }
            remaining = remaining.saturating_sub(kept);
            total += kept;
        }
        let done = total >= request.min_bytes || failed || Instant::now() >= request.deadline;
        (!done).then_some(request.deadline)
    }

    fn response_bytes(request: &Request) -> Option<usize> {
        Some(request.response_max)
    }

    async fn data_beyond(p: Rc<Partition>, spec: Spec) {
        if spec.replica >= 0 {
            let _ = p.wait_for_written_beyond(spec.offset).await;
        } else {
            let _ = p.wait_for_data_beyond(spec.offset).await;
        }
    }
}
