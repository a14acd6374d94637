//! Fetch: whole batches from each partition's owning shard, long-polling
//! until min_bytes are available or max_wait_ms passes, within max_bytes
//! and each partition's max_bytes by the KIP-74 rule (the first non-empty
//! partition returns at least one batch even if it is larger).
//!
//! Fetch sessions (KIP-227) are declined: the response's session id is 0,
//! so clients keep sending full fetch requests.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{FetchRequest, FetchResponse};

use super::errors::ToErrorCode;
use super::{check_leader_epoch, scatter};
use crate::error_code::ErrorCode;
use crate::protocol::fetch_encode::{encode_fetch_response, FetchPartitionOut, FetchTopicOut};
use crate::protocol::{FrameError, RequestFrame};
use crate::shard::Shard;
use crate::storage::waiters::Signal;
use crate::storage::ReadError;

#[derive(Debug, Clone, Copy)]
struct Spec {
    offset: i64,
    max_bytes: usize,
    current_leader_epoch: i32,
}

#[derive(Debug, Clone)]
struct Read {
    error: ErrorCode,
    high_watermark: i64,
    log_start_offset: i64,
    batches: Vec<Bytes>,
}

impl Read {
    fn error(error: ErrorCode) -> Self {
        Read {
            error,
            high_watermark: -1,
            log_start_offset: -1,
            batches: Vec::new(),
        }
    }
}

pub async fn handle(shard: &Rc<Shard>, req: &RequestFrame) -> Result<super::Response, FrameError> {
    let request: FetchRequest = req.decode()?;
    if req.version >= 7 && (request.session_id != 0 || request.session_epoch > 0) {
        // We never hand out a session id, so any named session is unknown.
        let response = FetchResponse::default()
            .with_error_code(ErrorCode::FetchSessionIdNotFound.code())
            .with_session_id(0);
        return Ok(vec![req.respond(&response)?]);
    }
    let read_committed = request.isolation_level == 1;
    let response_max = if request.max_bytes <= 0 {
        0
    } else {
        request.max_bytes as usize
    };
    let min_bytes = request.min_bytes.max(0) as usize;
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);

    let mut shape: Vec<(String, Vec<i32>)> = Vec::with_capacity(request.topics.len());
    let mut items: Vec<(String, i32, Spec)> = Vec::new();
    for topic in request.topics {
        let name = topic.topic.to_string();
        let mut parts = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            parts.push(p.partition);
            let spec = Spec {
                offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as usize,
                current_leader_epoch: p.current_leader_epoch,
            };
            items.push((name.clone(), p.partition, spec));
        }
        shape.push((name, parts));
    }

    let reads = loop {
        let reads: Vec<Read> = scatter(
            shard,
            items.clone(),
            move |s, batch| read_local(s, batch, response_max),
            Read::error,
        )
        .await;
        let (reads, bytes) = apply_limits(reads, &items, response_max);
        let errors = reads.iter().any(|r| r.error != ErrorCode::None);
        if bytes >= min_bytes || errors || Instant::now() >= deadline || shard.is_shutting_down() {
            break reads;
        }
        // Wait for new data on any of the partitions, then read again.
        let waits: Vec<(String, i32, i64)> = items
            .iter()
            .map(|(t, p, spec)| (t.clone(), *p, spec.offset))
            .collect();
        wait_for_data(shard, waits, deadline).await;
    };

    let mut reads = reads.into_iter();
    let topics: Vec<FetchTopicOut> = shape
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .into_iter()
                .map(|index| {
                    let r = reads.next().expect("one read per partition");
                    FetchPartitionOut {
                        partition_index: index,
                        error_code: r.error.code(),
                        high_watermark: r.high_watermark,
                        last_stable_offset: r.high_watermark,
                        log_start_offset: r.log_start_offset,
                        aborted_transactions: read_committed.then_some(()),
                        records: r.batches,
                    }
                })
                .collect();
            FetchTopicOut { name, partitions }
        })
        .collect();
    Ok(encode_fetch_response(
        req.version,
        req.correlation_id,
        0,
        0,
        &topics,
    ))
}

/// Trims the reads to the response's max_bytes and each partition's
/// max_bytes; only the first partition with data may exceed them, by its
/// first batch (KIP-74). Returns the reads and the bytes kept.
fn apply_limits(
    mut reads: Vec<Read>,
    items: &[(String, i32, Spec)],
    response_max: usize,
) -> (Vec<Read>, usize) {
    let mut remaining = response_max;
    let mut total = 0usize;
    let mut min_one = true;
    for (read, (_, _, spec)) in reads.iter_mut().zip(items) {
        if read.batches.is_empty() {
            continue;
        }
        let limit = remaining.min(spec.max_bytes);
        let mut kept = 0usize;
        let mut taken = 0usize;
        for b in &read.batches {
            if kept + b.len() > limit && !(min_one && taken == 0) {
                break;
            }
            kept += b.len();
            taken += 1;
        }
        read.batches.truncate(taken);
        if taken > 0 {
            min_one = false;
        }
        remaining = remaining.saturating_sub(kept);
        total += kept;
    }
    (reads, total)
}

async fn read_local(
    shard: Rc<Shard>,
    items: Vec<(String, i32, Spec)>,
    response_max: usize,
) -> Vec<Read> {
    let mut out = Vec::with_capacity(items.len());
    for (topic, index, spec) in items {
        let Some(p) = shard.local_partition(&topic, index) else {
            out.push(Read::error(ErrorCode::NotLeaderOrFollower));
            continue;
        };
        let log = p.partition.log();
        let offsets = log.offsets();
        let mut read = Read {
            error: check_leader_epoch(spec.current_leader_epoch),
            high_watermark: offsets.high_watermark,
            log_start_offset: offsets.log_start_offset,
            batches: Vec::new(),
        };
        if read.error == ErrorCode::None {
            let max = spec.max_bytes.min(response_max).max(1);
            match log.read(spec.offset, max).await {
                Ok(r) => read.batches = r.batches,
                Err(ReadError::OffsetOutOfRange {
                    high_watermark,
                    log_start_offset,
                    ..
                }) => {
                    read.error = ErrorCode::OffsetOutOfRange;
                    read.high_watermark = high_watermark;
                    read.log_start_offset = log_start_offset;
                }
                Err(e) => read.error = e.error_code(),
            }
        }
        out.push(read);
    }
    out
}

/// Resolves when any of the partitions has data past its fetch offset, or
/// at the deadline.
async fn wait_for_data(shard: &Rc<Shard>, items: Vec<(String, i32, i64)>, deadline: Instant) {
    let (groups, _) = super::group_by_owner(shard, items);
    let woke = Rc::new(Signal::default());
    let mut tasks = Vec::with_capacity(groups.len());
    for (owner, group) in groups {
        let waits: Vec<(String, i32, i64)> =
            group.into_iter().map(|(_, t, p, o)| (t, p, o)).collect();
        let s = shard.clone();
        let woke = woke.clone();
        tasks.push(glommio::spawn_local(async move {
            let _ = s
                .run_on(owner, move |target| wait_local(target, waits, deadline))
                .await;
            woke.notify();
        }));
    }
    let timeout = deadline.saturating_duration_since(Instant::now());
    let stop = async {
        futures_lite::future::or(glommio::timer::sleep(timeout), shard.shutdown.wait()).await
    };
    futures_lite::future::or(woke.wait(), stop).await;
    // Dropping the tasks cancels what is left of them here; each owner's
    // wait ends by the deadline on its own.
    drop(tasks);
}

async fn wait_local(shard: Rc<Shard>, items: Vec<(String, i32, i64)>, deadline: Instant) {
    let mut waits: Vec<Pin<Box<dyn Future<Output = ()>>>> = Vec::with_capacity(items.len() + 1);
    for (topic, index, offset) in items {
        let Some(p) = shard.local_partition(&topic, index) else {
            return;
        };
        waits.push(Box::pin(async move {
            let _ = p.partition.log().wait_for_data_beyond(offset).await;
        }));
    }
    let timeout = deadline.saturating_duration_since(Instant::now());
    waits.push(Box::pin(glommio::timer::sleep(timeout)));
    first_of(waits).await;
}

/// Resolves when the first of `futures` does.
async fn first_of(mut futures: Vec<Pin<Box<dyn Future<Output = ()>>>>) {
    std::future::poll_fn(|cx| {
        for f in futures.iter_mut() {
            if f.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}
