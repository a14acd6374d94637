//! One core's consumers: per leader broker, a fetch loop over the
//! partitions this core owns. Batches are counted from their headers; in
//! an e2e run each record's value stamp is read as well, for end-to-end
//! latency. The next fetch is sent before the records of the last one are
//! walked, so the broker works while this core counts.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_lite::AsyncWriteExt;

use crate::core::{CoreCtx, PHASE_MEASURE, PHASE_STOP};
use crate::error::kafka_error_name;
use crate::wire::batch::{batch_headers, for_each_value, STAMP_BYTES};
use crate::wire::control::Connection;
use crate::wire::fetch::{
    encode_request, parse_response, FetchLimits, FetchPartition, API_KEY as FETCH_KEY,
    FETCH_VERSION,
};
use crate::Workload;

/// How long an e2e consumer keeps reading after the producers drained.
const CATCH_UP_MAX: Duration = Duration::from_secs(10);
const RECONNECT_BACKOFF: Duration = Duration::from_millis(250);

/// Runs the fetch loops for `partitions` until the run stops.
pub async fn run(ctx: Rc<CoreCtx>, partitions: Vec<i32>, producers: usize) {
    let mut by_node: BTreeMap<i32, Vec<FetchPartition>> = BTreeMap::new();
    for p in partitions {
        by_node
            .entry(ctx.plan.leaders[p as usize])
            .or_default()
            .push(FetchPartition {
                partition: p,
                offset: ctx.plan.start_offsets[p as usize],
            });
    }
    let tasks: Vec<_> = by_node
        .into_iter()
        .map(|(node, parts)| glommio::spawn_local(fetch_loop(ctx.clone(), node, parts, producers)))
        .collect();
    for t in tasks {
        t.await;
    }
}

/// Whether this consumer is finished: consume-only runs end with the run;
/// e2e consumers read until the producers drained and they are caught up.
fn finished(ctx: &CoreCtx, producers: usize, caught_up: bool, stop_seen_us: Option<u64>) -> bool {
    if ctx.run.phase() < PHASE_STOP {
        return false;
    }
    if ctx.cfg.workload == Workload::Consume {
        return true;
    }
    let drained = ctx.run.producers_done.load(Ordering::Acquire) >= producers;
    let late =
        stop_seen_us.is_some_and(|t| ctx.clock().now_us() > t + CATCH_UP_MAX.as_micros() as u64);
    (drained && caught_up) || late
}

async fn fetch_loop(ctx: Rc<CoreCtx>, node: i32, mut parts: Vec<FetchPartition>, producers: usize) {
    let cfg = ctx.cfg.clone();
    let addr = ctx.plan.address(node).to_string();
    let limits = FetchLimits {
        max_wait_ms: cfg.fetch_max_wait_ms,
        min_bytes: cfg.fetch_min_bytes,
        max_bytes: cfg.fetch_max_bytes,
        partition_max_bytes: cfg.partition_fetch_bytes,
    };
    let e2e = cfg.workload == Workload::E2e;
    let mut req = Vec::new();
    let mut scratch = Vec::new();
    let mut stop_seen_us: Option<u64> = None;
    let mut correlation_id: i32 = 0;
    let mut first = true;
    let mut attempts = 0u64;
    'connection: loop {
        if finished(&ctx, producers, false, stop_seen_us) && cfg.workload == Workload::Consume {
            return;
        }
        // Every new connection after the first comes after a failure:
        // pause first, so a broker that keeps failing is not hammered.
        attempts += 1;
        if attempts > 1 {
            if ctx.run.phase() >= PHASE_STOP && attempts > 3 {
                return;
            }
            glommio::timer::sleep(RECONNECT_BACKOFF).await;
        }
        let conn = Connection::connect(&addr, &cfg.client_id, cfg.request_timeout())
            .await
            .and_then(|c| {
                c.version(FETCH_KEY, "Fetch", (FETCH_VERSION, FETCH_VERSION))
                    .map(|_| c)
            });
        let mut conn = match conn {
            Ok(c) => c,
            Err(e) => {
                if !cfg.quiet {
                    eprintln!("loadgen: consumer: {e}");
                }
                ctx.stats.borrow_mut().error("connect", 0);
                if ctx.run.phase() >= PHASE_STOP {
                    return;
                }
                continue;
            }
        };
        if std::mem::take(&mut first) {
            ctx.connected();
            ctx.wait_started().await;
        }
        let client_id = conn.client_id().to_string();
        req.clear();
        correlation_id = correlation_id.wrapping_add(1);
        encode_request(
            &mut req,
            correlation_id,
            &client_id,
            &cfg.topic,
            limits,
            &parts,
        );
        if let Err(e) = conn.stream.write_all(&req).await {
            ctx.stats.borrow_mut().error("disconnect", 0);
            if !cfg.quiet {
                eprintln!("loadgen: consumer {addr}: {e}");
            }
            continue;
        }
        loop {
            let frame = match conn.reader.next(&mut conn.stream).await {
                Ok(f) => f,
                Err(e) => {
                    let kind = if e.kind() == std::io::ErrorKind::TimedOut {
                        "timeout"
                    } else {
                        "disconnect"
                    };
                    ctx.stats.borrow_mut().error(kind, 0);
                    if ctx.run.phase() >= PHASE_STOP {
                        return;
                    }
                    continue 'connection;
                }
            };
            let receipt_us = ctx.clock().epoch_us(ctx.clock().now_us());
            let phase = ctx.run.phase();
            if phase >= PHASE_STOP && stop_seen_us.is_none() {
                stop_seen_us = Some(ctx.clock().now_us());
            }
            if frame.len() < 4
                || i32::from_be_bytes(frame[..4].try_into().unwrap()) != correlation_id
            {
                ctx.stats
                    .borrow_mut()
                    .error("disconnect (bad fetch response)", 0);
                continue 'connection;
            }
            // First pass: where each partition continues, and errors.
            let mut fetched: Vec<(i32, i64, &[u8])> = Vec::with_capacity(parts.len());
            let mut caught_up = true;
            let parsed = parse_response(&frame[4..], |fp| {
                if fp.error_code != 0 {
                    ctx.stats
                        .borrow_mut()
                        .error(&kafka_error_name(fp.error_code), 0);
                    fetched.push((fp.partition, -1, &[]));
                    return;
                }
                let Some(part) = parts.iter_mut().find(|p| p.partition == fp.partition) else {
                    return;
                };
                let from = part.offset;
                for h in batch_headers(fp.records).flatten() {
                    part.offset = part.offset.max(h.next_offset());
                }
                if part.offset < fp.high_watermark {
                    caught_up = false;
                }
                fetched.push((fp.partition, from, fp.records));
            });
            match parsed {
                Ok(0) => {}
                Ok(code) => {
                    ctx.stats.borrow_mut().error(&kafka_error_name(code), 0);
                }
                Err(e) => {
                    ctx.stats
                        .borrow_mut()
                        .error(&format!("disconnect ({e})"), 0);
                    continue 'connection;
                }
            }
            // Partitions that failed are not fetched again.
            for (partition, from, _) in &fetched {
                if *from < 0 {
                    parts.retain(|p| p.partition != *partition);
                }
            }
            let done = parts.is_empty() || finished(&ctx, producers, caught_up, stop_seen_us);
            if !done {
                req.clear();
                correlation_id = correlation_id.wrapping_add(1);
                encode_request(
                    &mut req,
                    correlation_id,
                    &client_id,
                    &cfg.topic,
                    limits,
                    &parts,
                );
                if conn.stream.write_all(&req).await.is_err() {
                    ctx.stats.borrow_mut().error("disconnect", 0);
                    continue 'connection;
                }
            }
            // Second pass: count (and for e2e, time) the new records.
            let window = (
                ctx.run.measure_start_epoch_us.load(Ordering::Relaxed),
                ctx.run.stop_epoch_us.load(Ordering::Relaxed),
            );
            let mut st = ctx.stats.borrow_mut();
            for (_, from, records) in fetched.iter().filter(|f| f.1 >= 0) {
                let mut pos = 0usize;
                for h in batch_headers(records) {
                    let Ok(h) = h else {
                        st.error("corrupt batch", 0);
                        break;
                    };
                    let batch = &records[pos..pos + h.total_bytes()];
                    pos += h.total_bytes();
                    if h.next_offset() <= *from {
                        continue;
                    }
                    if e2e {
                        let skip = (*from - h.base_offset).max(0) as u64;
                        let mut index = 0u64;
                        let mut counted = 0u64;
                        let walked = for_each_value(batch, &h, &mut scratch, |v| {
                            index += 1;
                            if index <= skip || v.len() < STAMP_BYTES {
                                return;
                            }
                            let stamp = u64::from_be_bytes(v[..STAMP_BYTES].try_into().unwrap());
                            let measured = stamp >= window.0 && (window.1 == 0 || stamp < window.1);
                            if measured && window.0 > 0 {
                                st.e2e.saturating_record(receipt_us.saturating_sub(stamp));
                                counted += 1;
                            }
                        });
                        if walked.is_err() {
                            st.error("corrupt batch", 0);
                        }
                        st.consumed += counted;
                        if counted > 0 {
                            st.consumed_bytes += h.total_bytes() as u64;
                        }
                    } else if phase == PHASE_MEASURE {
                        st.consumed += h.next_offset() as u64 - (*from).max(h.base_offset) as u64;
                        st.consumed_bytes += h.total_bytes() as u64;
                    }
                }
            }
            drop(st);
            if done {
                return;
            }
        }
    }
}
