//! Runs one workload: finds the cluster, starts one pinned glommio
//! executor per core, steps the phases (connect, warm-up, measure, stop),
//! gathers each core's statistics once a second, prints progress, and
//! returns the summary.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};

use crate::cluster::{self, Plan};
use crate::core::{
    epoch_now_us, Clock, CoreCtx, RunShared, PHASE_CONNECTING, PHASE_MEASURE, PHASE_STOP,
    PHASE_WARMUP,
};
use crate::report::{self, Summary};
use crate::stats::CoreStats;
use crate::{consumer, producer, Config, Error};

/// How often the coordinator looks at messages and the clock.
const TICK: Duration = Duration::from_millis(50);
/// How often a core reports its statistics.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// Executors preempt their task queues at least this often, so sockets are
/// polled while the generator is busy.
const PREEMPT_EVERY: Duration = Duration::from_micros(500);
/// Extra time, past the request timeout, that cores get to drain.
const DRAIN_SLACK: Duration = Duration::from_secs(15);

/// What a core tells the coordinator.
enum CoreMsg {
    Ready,
    Stats(usize, Box<CoreStats>),
    Failed(String),
    Done,
}

/// One executor and what it runs.
#[derive(Debug, Clone)]
struct Slot {
    /// The core it is pinned to; None: unpinned.
    core: Option<usize>,
    /// (index, total) among producer executors.
    producer: Option<(usize, usize)>,
    /// Partitions it consumes.
    consumes: Vec<i32>,
}

fn slots(cfg: &Config, plan: &Plan) -> Vec<Slot> {
    let cores: Vec<Option<usize>> = if cfg.cores.0.is_empty() {
        vec![None]
    } else {
        cfg.cores.0.iter().map(|&c| Some(c)).collect()
    };
    let mut slots: Vec<Slot> = Vec::new();
    if cfg.produces() {
        let n = cores.len();
        slots.extend(cores.iter().enumerate().map(|(i, &core)| Slot {
            core,
            producer: Some((i, n)),
            consumes: Vec::new(),
        }));
    }
    if cfg.consumes() {
        let first = if cfg.consumer_cores.0.is_empty() && cfg.produces() {
            0
        } else {
            let consumer_cores: Vec<Option<usize>> = if cfg.consumer_cores.0.is_empty() {
                cores.clone()
            } else {
                cfg.consumer_cores.0.iter().map(|&c| Some(c)).collect()
            };
            let first = slots.len();
            slots.extend(consumer_cores.into_iter().map(|core| Slot {
                core,
                producer: None,
                consumes: Vec::new(),
            }));
            first
        };
        let n = slots.len() - first;
        for p in 0..plan.partitions() {
            slots[first + p % n].consumes.push(p as i32);
        }
    }
    slots
}

/// Registered io_uring memory per executor: the load generator does no
/// file I/O, so a little suffices; kept under RLIMIT_MEMLOCK (glommio
/// registers it with three rings).
fn io_memory(executors: usize) -> usize {
    ((8usize << 20) / (3 * executors.max(1))).clamp(64 << 10, 1 << 20)
}

fn builder(placement: Placement, name: &str, executors: usize) -> LocalExecutorBuilder {
    LocalExecutorBuilder::new(placement)
        .name(name)
        .io_memory(io_memory(executors))
        .preempt_timer(PREEMPT_EVERY)
}

/// Every core asked for must be one this process may run on (glommio
/// pins without looking at the affinity mask taskset or a cpuset gave).
fn check_cores(cfg: &Config) -> Result<(), Error> {
    let usable: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if usable.is_empty() {
        return Ok(());
    }
    for &core in cfg.cores.0.iter().chain(&cfg.consumer_cores.0) {
        if !usable.contains(&core) {
            return Err(Error::Config(format!(
                "core {core} is not available to this process (usable: {usable:?})"
            )));
        }
    }
    Ok(())
}

/// Runs `cfg` once and returns its summary. Failed records do not make
/// this an error (they are in the summary); use [`Summary::check`].
pub fn run(cfg: &Config) -> Result<Summary, Error> {
    cfg.validate().map_err(Error::Config)?;
    check_cores(cfg)?;
    let cfg = Arc::new(cfg.clone());
    let plan = {
        let cfg = cfg.clone();
        builder(Placement::Unbound, "loadgen-setup", 1)
            .spawn(move || async move { cluster::prepare(&cfg).await })
            .map_err(|e| Error::Executor(e.to_string()))?
            .join()
            .map_err(|e| Error::Executor(e.to_string()))??
    };
    let plan = Arc::new(plan);
    let slots = slots(&cfg, &plan);
    let producers = slots.iter().filter(|s| s.producer.is_some()).count();
    let run = Arc::new(RunShared::default());
    let (tx, rx) = mpsc::channel::<CoreMsg>();
    let mut handles = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        let placement = match slot.core {
            Some(c) => Placement::Fixed(c),
            None => Placement::Unbound,
        };
        let (cfg_c, plan_c, run_c, tx_c, slot_c) = (
            cfg.clone(),
            plan.clone(),
            run.clone(),
            tx.clone(),
            slot.clone(),
        );
        let spawned =
            builder(placement, &format!("loadgen-{i}"), slots.len()).spawn(move || async move {
                core_main(i, slot_c, cfg_c, plan_c, run_c, producers, tx_c).await
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                run.phase.store(PHASE_STOP, Ordering::SeqCst);
                for h in handles {
                    let _ = h.join();
                }
                return Err(Error::Executor(format!("core {:?}: {e}", slot.core)));
            }
        }
    }
    drop(tx);
    let outcome = coordinate(&cfg, &plan, &slots, &run, &rx);
    run.phase.store(PHASE_STOP, Ordering::SeqCst);
    // Cores end on their own once stopped (bounded by their drain timeout).
    for h in handles {
        let _ = h.join();
    }
    outcome
}

struct Totals {
    all: CoreStats,
    per_slot: Vec<CoreStats>,
    /// Since the last progress line.
    interval: CoreStats,
}

fn absorb(totals: &mut Totals, msg: CoreMsg, done: &mut usize) -> Result<(), Error> {
    match msg {
        CoreMsg::Stats(slot, stats) => {
            totals.all.merge(&stats);
            totals.interval.merge(&stats);
            totals.per_slot[slot].merge(&stats);
        }
        CoreMsg::Done => *done += 1,
        CoreMsg::Ready => {}
        CoreMsg::Failed(e) => return Err(Error::Broker(e)),
    }
    Ok(())
}

fn coordinate(
    cfg: &Config,
    plan: &Plan,
    slots: &[Slot],
    run: &RunShared,
    rx: &mpsc::Receiver<CoreMsg>,
) -> Result<Summary, Error> {
    let mut totals = Totals {
        all: CoreStats::default(),
        per_slot: vec![CoreStats::default(); slots.len()],
        interval: CoreStats::default(),
    };
    let mut done = 0usize;
    // Every core connects first.
    let deadline = Instant::now() + cfg.request_timeout() + Duration::from_secs(5);
    let mut ready = 0;
    while ready < slots.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(CoreMsg::Ready) => ready += 1,
            Ok(msg) => absorb(&mut totals, msg, &mut done)?,
            Err(_) => {
                return Err(Error::Io(
                    "connecting".into(),
                    format!("{} of {} cores ready in time", ready, slots.len()),
                ))
            }
        }
    }
    let start = Instant::now();
    let warmup_end = start + cfg.warmup;
    let end = warmup_end + cfg.duration;
    let mut measure_start = start;
    if cfg.warmup.is_zero() {
        run.measure_start_epoch_us
            .store(epoch_now_us(), Ordering::SeqCst);
        run.phase.store(PHASE_MEASURE, Ordering::SeqCst);
    } else {
        run.phase.store(PHASE_WARMUP, Ordering::SeqCst);
    }
    let mut timeline = Vec::new();
    let mut next_line = start + REPORT_EVERY;
    let mut last_line = start;
    let stopped_early = loop {
        let now = Instant::now();
        let interrupted = cfg.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
        if interrupted || now >= end {
            break interrupted;
        }
        if run.phase() == PHASE_WARMUP && now >= warmup_end {
            measure_start = now;
            run.measure_start_epoch_us
                .store(epoch_now_us(), Ordering::SeqCst);
            run.phase.store(PHASE_MEASURE, Ordering::SeqCst);
        }
        match rx.recv_timeout(TICK) {
            Ok(msg) => absorb(&mut totals, msg, &mut done)?,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break false,
        }
        if Instant::now() >= next_line {
            let now = Instant::now();
            let secs = now.duration_since(last_line).as_secs_f64();
            let line = report::progress_line(
                cfg,
                now.duration_since(start),
                run.phase() == PHASE_WARMUP,
                secs,
                &totals.interval,
                &totals.all,
            );
            if !cfg.quiet {
                println!("{line}");
            }
            if run.phase() == PHASE_MEASURE {
                timeline.push(report::Second::of(
                    now.duration_since(measure_start).as_secs_f64(),
                    secs,
                    &totals.interval,
                ));
            }
            totals.interval = CoreStats::default();
            last_line = now;
            next_line += REPORT_EVERY;
        }
    };
    let stop_at = Instant::now();
    if run.phase() < PHASE_MEASURE {
        // Stopped during the warm-up: nothing was measured.
        measure_start = stop_at;
        run.measure_start_epoch_us
            .store(epoch_now_us(), Ordering::SeqCst);
    }
    run.stop_epoch_us.store(epoch_now_us(), Ordering::SeqCst);
    run.phase.store(PHASE_STOP, Ordering::SeqCst);
    if !cfg.quiet {
        println!(
            "{}; draining",
            if stopped_early {
                "interrupted"
            } else {
                "stopping"
            }
        );
    }
    let drain_deadline = Instant::now() + cfg.request_timeout() + DRAIN_SLACK;
    while done < slots.len() {
        let left = drain_deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            totals.all.error("core did not finish draining", 0);
            break;
        }
        match rx.recv_timeout(left.min(TICK)) {
            Ok(msg) => absorb(&mut totals, msg, &mut done)?,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let measured = stop_at.duration_since(measure_start);
    Ok(report::summarize(
        cfg,
        plan,
        measured,
        stopped_early,
        &totals.all,
        &slots.iter().map(|s| s.core).collect::<Vec<_>>(),
        &totals.per_slot,
        timeline,
    ))
}

/// One executor's life: connect, report ready, run its producer and
/// consumers once started, report statistics every second and at the end.
async fn core_main(
    slot_index: usize,
    slot: Slot,
    cfg: Arc<Config>,
    plan: Arc<Plan>,
    run: Arc<RunShared>,
    producers: usize,
    tx: mpsc::Sender<CoreMsg>,
) {
    let mut connections = 0;
    if slot.producer.is_some() {
        let mut leaders = plan.leaders.clone();
        leaders.sort_unstable();
        leaders.dedup();
        connections += leaders.len();
    }
    let mut consumer_nodes: Vec<i32> = slot
        .consumes
        .iter()
        .map(|&p| plan.leaders[p as usize])
        .collect();
    consumer_nodes.sort_unstable();
    consumer_nodes.dedup();
    connections += consumer_nodes.len();
    let ctx = Rc::new(CoreCtx {
        cfg: cfg.clone(),
        plan,
        run: run.clone(),
        slot: slot_index,
        clock: Cell::new(Clock::start()),
        stats: RefCell::new(CoreStats::default()),
        pending_connections: Cell::new(connections),
        started: Cell::new(false),
    });
    let mut tasks = Vec::new();
    if let Some((index, total)) = slot.producer {
        let ctx = ctx.clone();
        tasks.push(glommio::spawn_local(async move {
            producer::run(ctx.clone(), index, total).await;
            ctx.run.producers_done.fetch_add(1, Ordering::AcqRel);
        }));
    }
    if !slot.consumes.is_empty() {
        tasks.push(glommio::spawn_local(consumer::run(
            ctx.clone(),
            slot.consumes.clone(),
            producers,
        )));
    }
    // Ready once every connection is up (or give up after the timeout).
    let deadline = Instant::now() + cfg.request_timeout();
    while ctx.pending_connections.get() > 0 {
        if Instant::now() > deadline || run.phase() >= PHASE_STOP {
            let _ = tx.send(CoreMsg::Failed(format!(
                "core {slot_index}: could not connect to every broker it needs"
            )));
            run.phase.store(PHASE_STOP, Ordering::SeqCst);
            ctx.clock.set(Clock::start());
            ctx.started.set(true);
            break;
        }
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    let _ = tx.send(CoreMsg::Ready);
    while run.phase() == PHASE_CONNECTING {
        glommio::timer::sleep(Duration::from_micros(100)).await;
    }
    ctx.clock.set(Clock::start());
    ctx.started.set(true);
    let finished = Rc::new(Cell::new(false));
    let ticker = {
        let (ctx, tx, finished) = (ctx.clone(), tx.clone(), finished.clone());
        glommio::spawn_local(async move {
            while !finished.get() {
                glommio::timer::sleep(REPORT_EVERY).await;
                let stats = ctx.stats.borrow_mut().take();
                let _ = tx.send(CoreMsg::Stats(slot_index, Box::new(stats)));
            }
        })
    };
    for t in tasks {
        t.await;
    }
    finished.set(true);
    drop(ticker);
    let stats = ctx.stats.borrow_mut().take();
    let _ = tx.send(CoreMsg::Stats(slot_index, Box::new(stats)));
    let _ = tx.send(CoreMsg::Done);
}
