//! One core's producer: an open-loop generator filling per-partition
//! batches from the record template, and per leader broker a connection
//! whose writer sends Produce requests (up to `--max-in-flight` awaiting
//! answers) and whose reader matches the answers in order and records the
//! latencies.
//!
//! Every core produces to every partition through its own connections, as
//! independent producer clients would; the rate is split over the cores.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::io::{ReadHalf, WriteHalf};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use shardlog_wire::batch::Compression;
use shardlog_wire::murmur2::partition_for_key;

use crate::config::{Acks, KeyDistribution};
use crate::core::{CoreCtx, Signal, PHASE_MEASURE, PHASE_STOP};
use crate::error::kafka_error_name;
use crate::schedule::Schedule;
use crate::stats::record_from_intended;
use crate::wire::batch::{Template, KEY_BYTES};
use crate::wire::control::Connection;
use crate::wire::frame::FrameReader;
use crate::wire::produce::{
    parse_response, ProduceEncoder, API_KEY as PRODUCE_KEY, PRODUCE_VERSION_MAX,
    PRODUCE_VERSION_MIN,
};

/// Most records the generator appends before letting other tasks run.
const RECORDS_PER_TURN_MAX: usize = 16_384;
/// Busy generator turns (one batch each at --rate 0) between forced
/// reactor turns, so responses are read while the generator runs ahead.
const REACTOR_TURN_EVERY: u64 = 32;
/// Pause between reconnection attempts to a broker.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(250);

/// A batch ready to send: the template buffer its records were stamped
/// into, and their intended send times.
struct Sealed {
    partition: i32,
    buf: Vec<u8>,
    records: usize,
    timestamp_ms: i64,
    intended_us: Vec<u64>,
    /// Produced while measuring, or flushed at the end (counted), rather
    /// than in the warm-up.
    measured: bool,
    /// Uncompressed size, for buffer-memory accounting.
    bytes: usize,
}

/// A sent batch awaiting its answer.
struct SentBatch {
    partition: i32,
    records: usize,
    intended_us: Vec<u64>,
    measured: bool,
}

struct InFlight {
    correlation_id: i32,
    sent_us: u64,
    batches: Vec<SentBatch>,
}

/// One leader broker, as this core uses it.
struct Link {
    node: i32,
    addr: String,
    queue: RefCell<VecDeque<Sealed>>,
    inflight: RefCell<VecDeque<InFlight>>,
    /// The generator queued a batch, or the run is closing.
    work: Signal,
    /// The reader retired a request.
    progress: Signal,
    closing: Cell<bool>,
}

struct Producer {
    ctx: Rc<CoreCtx>,
    template: Template,
    links: Vec<Rc<Link>>,
    /// Link index of each partition's leader.
    link_of: Vec<usize>,
    queued_bytes: Cell<usize>,
    /// A writer took batches off a queue.
    space: Signal,
    buffers: RefCell<Vec<Vec<u8>>>,
    vecs: RefCell<Vec<Vec<u64>>>,
}

/// Connects to every leader, then runs the generator until the stop phase,
/// flushes, and waits (at most the request timeout) for every answer.
pub async fn run(ctx: Rc<CoreCtx>, producer_index: usize, producers: usize) {
    let cfg = ctx.cfg.clone();
    let plan = ctx.plan.clone();
    let mut links = Vec::new();
    let mut link_of = vec![0usize; plan.partitions()];
    for (&node, addr) in &plan.brokers {
        if !plan.leaders.contains(&node) {
            continue;
        }
        for (p, &leader) in plan.leaders.iter().enumerate() {
            if leader == node {
                link_of[p] = links.len();
            }
        }
        links.push(Rc::new(Link {
            node,
            addr: addr.clone(),
            queue: RefCell::new(VecDeque::new()),
            inflight: RefCell::new(VecDeque::new()),
            work: Signal::default(),
            progress: Signal::default(),
            closing: Cell::new(false),
        }));
    }
    let template = Template::new(
        cfg.record_size,
        cfg.key_distribution != KeyDistribution::None,
        cfg.batch_bytes,
    );
    let producer = Rc::new(Producer {
        ctx: ctx.clone(),
        template,
        links,
        link_of,
        queued_bytes: Cell::new(0),
        space: Signal::default(),
        buffers: RefCell::new(Vec::new()),
        vecs: RefCell::new(Vec::new()),
    });
    let mut supervisors = Vec::new();
    for link in &producer.links {
        supervisors.push(glommio::spawn_local(supervise(
            producer.clone(),
            link.clone(),
        )));
    }
    ctx.wait_started().await;
    let schedule = Schedule::split(cfg.rate, producers as u64, producer_index as u64);
    generate(&producer, schedule, producer_index).await;
    for link in &producer.links {
        link.closing.set(true);
        link.work.notify();
    }
    let drained = async {
        for s in supervisors {
            s.await;
        }
        true
    };
    let deadline = async {
        glommio::timer::sleep(cfg.request_timeout() + Duration::from_secs(1)).await;
        false
    };
    if !futures_lite::future::or(drained, deadline).await {
        let mut stats = ctx.stats.borrow_mut();
        for link in &producer.links {
            for f in link.inflight.borrow_mut().drain(..) {
                let n = f.batches.iter().map(|b| b.records as u64).sum();
                stats.error("timeout", n);
            }
            for b in link.queue.borrow_mut().drain(..) {
                stats.error("unsent at end", b.records as u64);
            }
        }
    }
}

/// Partition-local batch being filled.
struct Accumulator {
    buf: Vec<u8>,
    records: usize,
    first_us: u64,
    intended_us: Vec<u64>,
}

/// xorshift64*: cheap and good enough for key choice.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

async fn generate(p: &Rc<Producer>, schedule: Schedule, producer_index: usize) {
    let cfg = &p.ctx.cfg;
    let clock = p.ctx.clock();
    let partitions = p.ctx.plan.partitions();
    let capacity = p.template.capacity();
    let linger_us = cfg.linger_ms * 1000;
    let rate = schedule.records_per_sec();
    let mut accs: Vec<Accumulator> = (0..partitions)
        .map(|_| Accumulator {
            buf: p.template.new_buffer(),
            records: 0,
            first_us: 0,
            intended_us: Vec::with_capacity(capacity),
        })
        .collect();
    let mut sticky = producer_index % partitions;
    let mut next: u64 = 0;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (producer_index as u64 + 1));
    let mut key_bytes = [0u8; KEY_BYTES];
    let mut turns: u64 = 0;
    loop {
        if p.ctx.run.phase() >= PHASE_STOP {
            break;
        }
        let now = clock.now_us();
        let due = if rate == 0 {
            next + (capacity - accs[sticky].records) as u64
        } else {
            schedule.due_by(Duration::from_micros(now))
        };
        let mut turn = 0;
        while next < due && turn < RECORDS_PER_TURN_MAX {
            let intended = if rate == 0 {
                now
            } else {
                schedule.intended_us(next)
            };
            let key = match cfg.key_distribution {
                KeyDistribution::None => None,
                KeyDistribution::Uniform => Some(rng.below(cfg.key_space)),
                KeyDistribution::Hot => Some(if rng.unit() < cfg.hot_key_fraction {
                    0
                } else {
                    rng.below(cfg.key_space)
                }),
            };
            let slot = match key {
                None => sticky,
                Some(k) => {
                    key_bytes.copy_from_slice(&k.to_be_bytes());
                    partition_for_key(&key_bytes, partitions as u32) as usize
                }
            };
            let acc = &mut accs[slot];
            if acc.records == 0 {
                acc.first_us = intended;
            }
            p.template
                .stamp(&mut acc.buf, acc.records, clock.epoch_us(intended), key);
            acc.intended_us.push(intended);
            acc.records += 1;
            if acc.records == capacity {
                // Due once its last record is: an ideal client hands a full
                // batch over at that moment.
                p.seal(slot, acc, (rate > 0).then_some(intended));
                if key.is_none() {
                    sticky = (sticky + 1) % partitions;
                }
            }
            next += 1;
            turn += 1;
        }
        // Linger: a batch waits at most linger.ms for more records.
        let now = clock.now_us();
        for (slot, acc) in accs.iter_mut().enumerate() {
            if acc.records > 0 && now >= acc.first_us + linger_us {
                let due = acc.first_us + linger_us;
                p.seal(slot, acc, (rate > 0).then_some(due));
                if slot == sticky && cfg.key_distribution == KeyDistribution::None {
                    sticky = (sticky + 1) % partitions;
                }
            }
        }
        // buffer.memory: past it the schedule stalls.
        while p.queued_bytes.get() > cfg.buffer_memory && p.ctx.run.phase() < PHASE_STOP {
            p.space.wait().await;
        }
        if rate == 0 || next < due {
            // Let the reactor turn now and then (a timer wait does that;
            // a plain yield would not poll the sockets).
            turns += 1;
            if turns.is_multiple_of(REACTOR_TURN_EVERY) {
                glommio::timer::sleep(Duration::from_micros(1)).await;
            } else {
                glommio::yield_if_needed().await;
            }
            continue;
        }
        // Sleep until the sticky batch fills (keyed: until 64 more records
        // are due), or a batch's linger ends, whichever is first.
        let ahead = match cfg.key_distribution {
            KeyDistribution::None => (capacity - accs[sticky].records) as u64,
            _ => 64,
        };
        let next_due_us = schedule.intended_us(next);
        let mut wake_us = schedule
            .intended_us(next + ahead - 1)
            .min(next_due_us + linger_us);
        for acc in &accs {
            if acc.records > 0 {
                wake_us = wake_us.min(acc.first_us + linger_us);
            }
        }
        // Wake at least every 10 ms to notice the end of the run.
        wake_us = wake_us.min(now + 10_000);
        clock.sleep_until(wake_us, cfg.precise_wake_us).await;
    }
    for (slot, acc) in accs.iter_mut().enumerate() {
        if acc.records > 0 {
            p.seal(slot, acc, None);
        }
    }
}

impl Producer {
    /// Queues a partition's batch on its leader's link and gives the
    /// accumulator fresh buffers. `due_us`: when the schedule meant the
    /// batch to be handed over (its last record's intended time, or the
    /// end of its linger); how late this is counts as the generator's own
    /// lateness against its schedule.
    fn seal(&self, slot: usize, acc: &mut Accumulator, due_us: Option<u64>) {
        if let Some(due) = due_us {
            if self.ctx.run.phase() >= PHASE_MEASURE {
                let late = self.ctx.clock().now_us().saturating_sub(due);
                self.ctx
                    .stats
                    .borrow_mut()
                    .schedule_lateness
                    .saturating_record(late);
            }
        }
        let buf = self
            .buffers
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| self.template.new_buffer());
        let intended = self
            .vecs
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.template.capacity()));
        let records = acc.records;
        let bytes = self.template.batch_bytes(records);
        let sealed = Sealed {
            partition: slot as i32,
            buf: std::mem::replace(&mut acc.buf, buf),
            records,
            timestamp_ms: (self.ctx.clock().epoch_us(acc.first_us) / 1000) as i64,
            intended_us: std::mem::replace(&mut acc.intended_us, intended),
            measured: self.ctx.run.phase() >= PHASE_MEASURE,
            bytes,
        };
        acc.records = 0;
        self.queued_bytes.set(self.queued_bytes.get() + bytes);
        let link = &self.links[self.link_of[slot]];
        link.queue.borrow_mut().push_back(sealed);
        link.work.notify();
    }

    fn recycle_vec(&self, mut v: Vec<u64>) {
        v.clear();
        self.vecs.borrow_mut().push(v);
    }

    /// Records an answered (or, with acks=0, written) batch.
    fn account(&self, node: i32, b: SentBatch, sent_us: u64, done_us: u64, error_code: i16) {
        let mut st = self.ctx.stats.borrow_mut();
        let n = b.records as u64;
        if error_code != 0 {
            st.error(&kafka_error_name(error_code), n);
        } else if b.measured {
            let bytes = n * self.template.value_bytes() as u64;
            st.produced += n;
            st.produced_bytes += bytes;
            let e = st.per_node.entry(node).or_default();
            e.0 += n;
            e.1 += bytes;
            st.publish_sent
                .saturating_record_n(done_us.saturating_sub(sent_us), n);
            record_from_intended(&mut st.publish_intended, &b.intended_us, done_us);
        } else {
            st.warmup_acked += n;
        }
        drop(st);
        self.recycle_vec(b.intended_us);
    }

    /// Fails every request awaiting an answer on `link`.
    fn fail_inflight(&self, link: &Link, kind: &str) {
        let failed: Vec<InFlight> = link.inflight.borrow_mut().drain(..).collect();
        if failed.is_empty() {
            return;
        }
        let n = failed
            .iter()
            .flat_map(|f| f.batches.iter())
            .map(|b| b.records as u64)
            .sum();
        self.ctx.stats.borrow_mut().error(kind, n);
        for f in failed {
            for b in f.batches {
                self.recycle_vec(b.intended_us);
            }
        }
    }
}

/// Keeps one broker connection up: connect, run writer and reader until
/// one fails, fail what was in flight, reconnect; ends once closing and
/// drained.
async fn supervise(p: Rc<Producer>, link: Rc<Link>) {
    let cfg = p.ctx.cfg.clone();
    let mut first = true;
    loop {
        let conn = Connection::connect(&link.addr, &cfg.client_id, cfg.request_timeout()).await;
        let conn = match conn.and_then(|c| {
            let v = c.version(
                PRODUCE_KEY,
                "Produce",
                (PRODUCE_VERSION_MIN, PRODUCE_VERSION_MAX),
            )?;
            Ok((c, v))
        }) {
            Ok(c) => c,
            Err(e) => {
                if !cfg.quiet {
                    eprintln!("loadgen: {}: {e}", link.addr);
                }
                p.ctx.stats.borrow_mut().error("connect", 0);
                if link.closing.get() {
                    let left: Vec<Sealed> = link.queue.borrow_mut().drain(..).collect();
                    let n = left.iter().map(|b| b.records as u64).sum();
                    p.ctx.stats.borrow_mut().error("unsent at end", n);
                    return;
                }
                glommio::timer::sleep(RECONNECT_BACKOFF).await;
                continue;
            }
        };
        let (conn, version) = conn;
        if std::mem::take(&mut first) {
            p.ctx.connected();
        }
        let encoder = ProduceEncoder::new(
            version,
            &cfg.client_id,
            cfg.acks.wire(),
            cfg.request_timeout_ms.min(i32::MAX as u64) as i32,
            &cfg.topic,
        );
        let (reader, writer) = futures_lite::io::split(conn.stream);
        let outcome = if cfg.acks == Acks::None {
            write_loop(&p, &link, writer, &encoder).await
        } else {
            futures_lite::future::or(
                write_loop(&p, &link, writer, &encoder),
                read_loop(&p, &link, reader, conn.reader, version),
            )
            .await
        };
        match outcome {
            Ok(()) => return,
            Err(kind) => {
                if !cfg.quiet {
                    eprintln!("loadgen: connection to {} lost: {kind}", link.addr);
                }
                p.fail_inflight(&link, &kind);
                if link.closing.get() && link.queue.borrow().is_empty() {
                    return;
                }
                glommio::timer::sleep(RECONNECT_BACKOFF).await;
            }
        }
    }
}

/// Sends queued batches, at most one per partition and `--max-request-bytes`
/// per request, keeping at most `--max-in-flight` requests unanswered.
/// Returns Ok once closing with nothing queued or in flight.
async fn write_loop(
    p: &Producer,
    link: &Link,
    mut w: WriteHalf<TcpStream>,
    enc: &ProduceEncoder,
) -> Result<(), String> {
    let cfg = &p.ctx.cfg;
    let acks_none = cfg.acks == Acks::None;
    let mut req: Vec<u8> = Vec::with_capacity(cfg.max_request_bytes + (64 << 10));
    let mut sealed = Vec::new();
    let mut taken: Vec<Sealed> = Vec::new();
    let mut correlation_id: i32 = 1000;
    loop {
        while link.queue.borrow().is_empty() {
            if link.closing.get() {
                while !link.inflight.borrow().is_empty() {
                    link.progress.wait().await;
                }
                return Ok(());
            }
            link.work.wait().await;
        }
        if !acks_none {
            while link.inflight.borrow().len() >= cfg.max_in_flight {
                link.progress.wait().await;
            }
        }
        {
            let mut q = link.queue.borrow_mut();
            let mut size = 0;
            while let Some(b) = q.front() {
                let repeat = taken.iter().any(|t| t.partition == b.partition);
                let full = !taken.is_empty() && size + b.bytes > cfg.max_request_bytes;
                if repeat || full || taken.len() >= enc.partitions_max() {
                    break;
                }
                size += b.bytes;
                taken.push(q.pop_front().expect("front exists"));
            }
        }
        correlation_id = correlation_id.wrapping_add(1);
        req.clear();
        let mut frame = enc.begin(&mut req, correlation_id);
        let mut batches = Vec::with_capacity(taken.len());
        let mut freed = 0;
        for b in taken.drain(..) {
            let codec = cfg.compression;
            if codec == Compression::None {
                // The size is known up front: seal straight into the request.
                let records_bytes = p.template.batch_bytes(b.records);
                enc.partition(&mut req, &mut frame, b.partition, records_bytes);
                p.template
                    .seal_into(&b.buf, b.records, b.timestamp_ms, codec, &mut req)
                    .map_err(|e| format!("seal: {e}"))?;
            } else {
                // The compressed size is known only after compressing.
                sealed.clear();
                p.template
                    .seal_into(&b.buf, b.records, b.timestamp_ms, codec, &mut sealed)
                    .map_err(|e| format!("compress: {e}"))?;
                enc.partition(&mut req, &mut frame, b.partition, sealed.len());
                req.extend_from_slice(&sealed);
            }
            enc.end_partition(&mut req);
            freed += b.bytes;
            p.buffers.borrow_mut().push(b.buf);
            batches.push(SentBatch {
                partition: b.partition,
                records: b.records,
                intended_us: b.intended_us,
                measured: b.measured,
            });
        }
        enc.finish(&mut req, frame);
        p.queued_bytes.set(p.queued_bytes.get() - freed);
        p.space.notify();
        let clock = p.ctx.clock();
        let sent_us = clock.now_us();
        if acks_none {
            let written = w.write_all(&req).await;
            let done_us = clock.now_us();
            if let Err(e) = written {
                let n = batches.iter().map(|b| b.records as u64).sum();
                p.ctx.stats.borrow_mut().error("disconnect", n);
                return Err(format!("write: {e}"));
            }
            for b in batches {
                p.account(link.node, b, sent_us, done_us, 0);
            }
        } else {
            link.inflight.borrow_mut().push_back(InFlight {
                correlation_id,
                sent_us,
                batches,
            });
            w.write_all(&req)
                .await
                .map_err(|e| format!("disconnect (write: {e})"))?;
        }
    }
}

/// Reads Produce responses, matching each to the oldest request in flight.
/// A response that does not arrive within the request timeout fails the
/// connection.
async fn read_loop(
    p: &Producer,
    link: &Link,
    mut r: ReadHalf<TcpStream>,
    mut frames: FrameReader,
    version: i16,
) -> Result<(), String> {
    let timeout_us = p.ctx.cfg.request_timeout_ms * 1000;
    loop {
        let frame = match frames.next(&mut r).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                let oldest = link.inflight.borrow().front().map(|f| f.sent_us);
                match oldest {
                    Some(sent) if p.ctx.clock().now_us() - sent >= timeout_us => {
                        return Err("timeout".to_string())
                    }
                    _ => continue,
                }
            }
            Err(e) => return Err(format!("disconnect (read: {e})")),
        };
        let done_us = p.ctx.clock().now_us();
        if frame.len() < 4 {
            return Err("disconnect (short response)".into());
        }
        let correlation_id = i32::from_be_bytes(frame[..4].try_into().unwrap());
        let Some(entry) = link.inflight.borrow_mut().pop_front() else {
            return Err("disconnect (response with nothing in flight)".into());
        };
        if entry.correlation_id != correlation_id {
            link.inflight.borrow_mut().push_front(entry);
            return Err(format!(
                "disconnect (correlation id {correlation_id} out of order)"
            ));
        }
        let mut batches: Vec<Option<SentBatch>> = entry.batches.into_iter().map(Some).collect();
        let parsed = parse_response(&frame[4..], version, |res| {
            if let Some(slot) = batches
                .iter_mut()
                .find(|b| b.as_ref().is_some_and(|b| b.partition == res.partition))
            {
                let b = slot.take().expect("found above");
                p.account(link.node, b, entry.sent_us, done_us, res.error_code);
            }
        });
        // A batch the response leaves out has failed too.
        let missing: u64 = batches.iter().flatten().map(|b| b.records as u64).sum();
        if missing > 0 {
            p.ctx
                .stats
                .borrow_mut()
                .error("missing from response", missing);
        }
        link.progress.notify();
        if let Err(e) = parsed {
            return Err(format!("disconnect ({e})"));
        }
    }
}
