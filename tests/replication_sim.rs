//! A deterministic simulation of Kafka's replication protocol as
//! `shardlog::replication` states it: three brokers replicating one
//! partition (RF=3, min.insync.replicas=2), a controller electing leaders
//! and committing ISR changes, a client producing with acks=all. A seeded
//! scheduler picks every step: deliver, drop or hold back any message in
//! flight (so messages are delayed and reordered arbitrarily), produce,
//! tick a broker, kill -9 a broker (its log survives, its memory does not;
//! the high watermark falls back to its last checkpoint; the controller
//! fences it when its session expires, or at once, as after a controlled
//! shutdown), restart it, cut it off the network or join it again, let time
//! pass. After every step:
//!
//! - every leader's log below its high watermark agrees with everything any
//!   leader ever exposed (so no acknowledged record is lost, and replicas
//!   never diverge below the high watermark);
//! - every replica's log below its own high watermark agrees with it too;
//! - every acknowledged record is there, at its offset;
//! - at most one broker ever leads a leader epoch;
//! - a leader's high watermark never goes back.
//!
//! Then the faults stop, everything heals, and the replicas must converge:
//! all in the ISR, logs identical, every acknowledged record present.
//!
//! `SIM_SEEDS` (default 300) seeds from `SIM_FIRST_SEED` (default 1); a
//! failure names its seed and prints the trace of its last steps, and
//! `SIM_FIRST_SEED=<seed> SIM_SEEDS=1` replays it exactly.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use shardlog::replication::election::{AlterRefused, PartitionState};
use shardlog::replication::epochs::EpochCache;
use shardlog::replication::follower::{truncation, Truncation};
use shardlog::replication::leader::{AlterIsr, Leader, LeaderConfig};
use shardlog::replication::{NodeId, NO_LEADER};

const NODES: [NodeId; 3] = [1, 2, 3];
const MIN_ISR: usize = 2;
/// replica.lag.time.max.ms, in simulated ms.
const LAG_MAX_MS: u64 = 200;
/// broker.session.timeout.ms, in simulated ms.
const SESSION_MS: u64 = 150;
/// An ISR change unanswered this long is proposed again.
const ALTER_RETRY_MS: u64 = 100;
/// A request unanswered this long is sent again.
const REQUEST_TIMEOUT_MS: u64 = 40;
/// Records per fetch answer.
const FETCH_MAX: usize = 4;
const STEPS: usize = 1500;
const SETTLE_STEPS: usize = 30_000;
const TRACE: usize = 60;

/// splitmix64: small, seedable, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `per_mille` times in a thousand.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rec {
    epoch: i32,
    value: u64,
}

#[derive(Debug, Clone)]
enum FetchError {
    /// Not the leader of that epoch (Kafka: NOT_LEADER_OR_FOLLOWER or
    /// FENCED_LEADER_EPOCH).
    Fenced,
    OutOfRange,
}

#[derive(Debug, Clone)]
enum Msg {
    /// The controller's state, and the incarnation of the recipient it
    /// has registered (a restarted broker acts on no metadata until its
    /// new registration is in, as a Kafka broker waits to be unfenced).
    Metadata {
        to: NodeId,
        state: PartitionState,
        registered: u64,
    },
    Heartbeat {
        from: NodeId,
        incarnation: u64,
    },
    EpochQuery {
        from: NodeId,
        to: NodeId,
        id: u64,
        current_epoch: i32,
        epoch: i32,
    },
    EpochAnswer {
        from: NodeId,
        to: NodeId,
        id: u64,
        answer: Result<(i32, i64), FetchError>,
    },
    Fetch {
        from: NodeId,
        to: NodeId,
        id: u64,
        current_epoch: i32,
        offset: i64,
    },
    FetchAnswer {
        from: NodeId,
        to: NodeId,
        id: u64,
        answer: Result<(i64, Vec<Rec>, i64), FetchError>,
    },
    Alter {
        from: NodeId,
        request: AlterIsr,
    },
    AlterAnswer {
        to: NodeId,
        leader_epoch: i32,
        answer: Result<PartitionState, AlterRefused>,
    },
}

impl Msg {
    /// The brokers at either end (the controller is never cut off).
    fn ends(&self) -> (Option<NodeId>, Option<NodeId>) {
        match self {
            Msg::Metadata { to, .. } | Msg::AlterAnswer { to, .. } => (None, Some(*to)),
            Msg::Heartbeat { from, .. } | Msg::Alter { from, .. } => (Some(*from), None),
            Msg::EpochQuery { from, to, .. }
            | Msg::EpochAnswer { from, to, .. }
            | Msg::Fetch { from, to, .. }
            | Msg::FetchAnswer { from, to, .. } => (Some(*from), Some(*to)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Truncating,
    Fetching,
}

/// One broker's replica of the partition.
struct Replica {
    id: NodeId,
    up: bool,
    incarnation: u64,
    /// On disk: kept across kill -9.
    log: Vec<Rec>,
    epochs: EpochCache,
    hw_checkpoint: i64,
    /// In memory.
    hw: i64,
    known: Option<PartitionState>,
    leader: Option<Leader>,
    phase: Phase,
    outstanding: Option<(u64, u64)>,
    /// acks=all produces waiting: (end offset, offset, record).
    waiting: Vec<(i64, i64, Rec)>,
}

impl Replica {
    fn new(id: NodeId) -> Self {
        Replica {
            id,
            up: true,
            incarnation: 1,
            log: Vec::new(),
            epochs: EpochCache::default(),
            hw_checkpoint: 0,
            hw: 0,
            known: None,
            leader: None,
            phase: Phase::Truncating,
            outstanding: None,
            waiting: Vec::new(),
        }
    }

    fn log_end(&self) -> i64 {
        self.log.len() as i64
    }

    /// Cuts the log at `offset` and the epoch cache with it: epochs that
    /// start there go even when no record of theirs is cut (an epoch this
    /// node led without writing).
    fn truncate(&mut self, offset: i64) {
        if offset < self.log_end() {
            self.log.truncate(offset as usize);
        }
        self.epochs.truncate_from_end(offset);
        self.hw = self.hw.min(self.log_end());
    }

    fn crash(&mut self) {
        self.up = false;
        self.hw = self.hw_checkpoint.min(self.log_end());
        self.known = None;
        self.leader = None;
        self.phase = Phase::Truncating;
        self.outstanding = None;
        self.waiting.clear();
    }
}

struct Controller {
    state: PartitionState,
    last_heard: BTreeMap<NodeId, u64>,
    incarnation: BTreeMap<NodeId, u64>,
    fenced: BTreeSet<NodeId>,
}

struct Sim {
    rng: Rng,
    now: u64,
    next_id: u64,
    next_value: u64,
    nodes: BTreeMap<NodeId, Replica>,
    controller: Controller,
    net: Vec<Msg>,
    cut: BTreeSet<NodeId>,
    faults: bool,
    /// Per mille of steps that are faults (from calm seeds to stormy ones).
    storminess: u64,
    /// What leaders exposed below their high watermarks, in order.
    committed: Vec<Rec>,
    acked: BTreeMap<i64, Rec>,
    epoch_leaders: BTreeMap<i32, NodeId>,
    leader_hw: BTreeMap<(NodeId, i32), i64>,
    trace: VecDeque<String>,
    stats: Stats,
}

#[derive(Default, Debug, Clone, Copy)]
struct Stats {
    acked: u64,
    refused: u64,
    elections: u64,
    crashes: u64,
    truncated_records: u64,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng(seed);
        let storminess = 5 + rng.below(76) as u64;
        Sim {
            rng,
            now: 0,
            next_id: 1,
            next_value: 1,
            nodes: NODES.iter().map(|&n| (n, Replica::new(n))).collect(),
            controller: Controller {
                state: PartitionState::new(NODES.to_vec()),
                last_heard: NODES.iter().map(|&n| (n, 0)).collect(),
                incarnation: NODES.iter().map(|&n| (n, 1)).collect(),
                fenced: BTreeSet::new(),
            },
            net: Vec::new(),
            cut: BTreeSet::new(),
            faults: true,
            storminess,
            committed: Vec::new(),
            acked: BTreeMap::new(),
            epoch_leaders: BTreeMap::new(),
            leader_hw: BTreeMap::new(),
            trace: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    fn note(&mut self, line: String) {
        if self.trace.len() == TRACE {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("t={} {line}", self.now));
    }

    fn send(&mut self, m: Msg) {
        self.net.push(m);
    }

    fn metadata_for(&self, n: NodeId) -> Msg {
        Msg::Metadata {
            to: n,
            state: self.controller.state.clone(),
            registered: self.controller.incarnation[&n],
        }
    }

    fn broadcast_metadata(&mut self) {
        for n in NODES {
            let m = self.metadata_for(n);
            self.send(m);
        }
    }

    fn alive_set(&self) -> BTreeSet<NodeId> {
        NODES
            .iter()
            .copied()
            .filter(|n| !self.controller.fenced.contains(n))
            .collect()
    }

    // ---- the controller ----

    fn controller_fence(&mut self, n: NodeId) {
        self.controller.fenced.insert(n);
        let alive = self.alive_set();
        let before = self.controller.state.leader_epoch;
        if self
            .controller
            .state
            .on_fenced(n, &|r| alive.contains(&r), false)
        {
            if self.controller.state.leader_epoch != before {
                self.stats.elections += 1;
            }
            self.note(format!(
                "controller: fenced {n} -> {:?}",
                self.controller.state
            ));
            self.broadcast_metadata();
        }
    }

    fn controller_unfence(&mut self, n: NodeId) {
        self.controller.fenced.remove(&n);
        let alive = self.alive_set();
        if self
            .controller
            .state
            .on_unfenced(n, &|r| alive.contains(&r), false)
        {
            self.stats.elections += 1;
            self.note(format!(
                "controller: unfenced {n} -> {:?}",
                self.controller.state
            ));
            self.broadcast_metadata();
        }
    }

    fn controller_tick(&mut self) {
        for n in NODES {
            let heard = self.controller.last_heard[&n];
            if !self.controller.fenced.contains(&n) && self.now.saturating_sub(heard) > SESSION_MS {
                self.controller_fence(n);
            }
        }
    }

    fn on_heartbeat(&mut self, from: NodeId, incarnation: u64) {
        self.controller.last_heard.insert(from, self.now);
        let known = self.controller.incarnation[&from];
        if incarnation < known {
            return;
        }
        if incarnation > known {
            // A restarted broker registers again: fenced as the old
            // incarnation, then unfenced as the new one.
            self.controller.incarnation.insert(from, incarnation);
            self.controller_fence(from);
        }
        if self.controller.fenced.contains(&from) {
            self.controller_unfence(from);
        }
    }

    fn on_alter(&mut self, from: NodeId, request: AlterIsr) {
        let alive = self.alive_set();
        let answer = self
            .controller
            .state
            .alter_isr(&request, &|r| alive.contains(&r))
            .map(|()| self.controller.state.clone());
        self.note(format!(
            "controller: alter from {from} {request:?} -> {answer:?}"
        ));
        if answer.is_ok() {
            self.broadcast_metadata();
        }
        self.send(Msg::AlterAnswer {
            to: from,
            leader_epoch: request.leader_epoch,
            answer,
        });
    }

    // ---- brokers ----

    fn apply_metadata(&mut self, n: NodeId, state: PartitionState, registered: u64) {
        let now = self.now;
        let r = self.nodes.get_mut(&n).expect("node");
        if registered != r.incarnation
            || r.known
                .as_ref()
                .is_some_and(|k| k.partition_epoch >= state.partition_epoch)
        {
            return;
        }
        let same_epoch = r
            .known
            .as_ref()
            .is_some_and(|k| k.leader_epoch == state.leader_epoch && k.leader == state.leader);
        r.known = Some(state.clone());
        if state.leader == n {
            let leads_this_epoch = r
                .leader
                .as_ref()
                .is_some_and(|l| l.leader_epoch == state.leader_epoch);
            if leads_this_epoch {
                let end = r.log_end();
                r.leader.as_mut().expect("leads").on_isr_committed(
                    &state.isr,
                    state.partition_epoch,
                    end,
                );
            } else {
                let end = r.log_end();
                r.epochs.assign(state.leader_epoch, end);
                r.leader = Some(Leader::new(
                    n,
                    state.leader_epoch,
                    state.partition_epoch,
                    &state.replicas,
                    &state.isr,
                    end,
                    r.hw,
                    LeaderConfig {
                        min_isr: MIN_ISR,
                        replica_lag_max_ms: LAG_MAX_MS,
                        alter_retry_ms: ALTER_RETRY_MS,
                    },
                    now,
                ));
                r.waiting.clear();
                r.outstanding = None;
            }
        } else {
            r.leader = None;
            r.waiting.clear();
            if !same_epoch {
                r.phase = Phase::Truncating;
                r.outstanding = None;
            }
        }
        self.note(format!("node {n} applies {state:?}"));
        self.after_leader_change(n);
    }

    /// Answers acks=all produces the high watermark has passed, and checks
    /// the leader's high watermark never goes back.
    fn after_leader_change(&mut self, n: NodeId) {
        let r = self.nodes.get_mut(&n).expect("node");
        let Some(l) = r.leader.as_ref() else {
            return;
        };
        r.hw = r.hw.max(l.high_watermark());
        let key = (n, l.leader_epoch);
        let hw = l.high_watermark();
        let mut done = Vec::new();
        r.waiting
            .retain(|&(end, offset, rec)| match l.acks_all_done(end) {
                None => true,
                Some(result) => {
                    done.push((offset, rec, result.is_ok()));
                    false
                }
            });
        if let Some(&before) = self.leader_hw.get(&key) {
            assert!(
                hw >= before,
                "leader {n}'s high watermark went back from {before} to {hw}"
            );
        }
        self.leader_hw.insert(key, hw);
        for (offset, rec, ok) in done {
            if ok {
                self.acked.insert(offset, rec);
                self.stats.acked += 1;
            } else {
                self.stats.refused += 1;
            }
        }
    }

    fn produce(&mut self) {
        // Mostly to the leader the controller names (clients follow
        // metadata), sometimes to any node (stale metadata).
        let leader = self.controller.state.leader;
        let n = if leader != NO_LEADER && self.rng.chance(800) {
            leader
        } else {
            NODES[self.rng.below(NODES.len())]
        };
        let value = self.next_value;
        let r = self.nodes.get_mut(&n).expect("node");
        if !r.up {
            return;
        }
        let Some(l) = r.leader.as_mut() else {
            return;
        };
        if l.check_acks_all().is_err() {
            self.stats.refused += 1;
            return;
        }
        self.next_value += 1;
        let rec = Rec {
            epoch: l.leader_epoch,
            value,
        };
        let offset = r.log.len() as i64;
        r.log.push(rec);
        let end = offset + 1;
        l.update_high_watermark(end);
        r.waiting.push((end, offset, rec));
        self.note(format!("produce {value} to {n} at {offset}"));
        self.after_leader_change(n);
    }

    fn tick(&mut self, n: NodeId) {
        let now = self.now;
        let reachable = !self.cut.contains(&n);
        let id = self.next_id;
        let r = self.nodes.get_mut(&n).expect("node");
        if !r.up {
            return;
        }
        if reachable {
            let incarnation = r.incarnation;
            self.net.push(Msg::Heartbeat {
                from: n,
                incarnation,
            });
        }
        if let Some(l) = r.leader.as_mut() {
            if let Some(change) = l.isr_change(now) {
                self.net.push(Msg::Alter {
                    from: n,
                    request: change,
                });
            }
            return;
        }
        let Some(state) = r.known.clone() else {
            return;
        };
        if state.leader == NO_LEADER || state.leader == n {
            return;
        }
        if r.outstanding
            .is_some_and(|(_, at)| now.saturating_sub(at) < REQUEST_TIMEOUT_MS)
        {
            return;
        }
        self.next_id += 1;
        r.outstanding = Some((id, now));
        let m = match r.phase {
            Phase::Truncating => Msg::EpochQuery {
                from: n,
                to: state.leader,
                id,
                current_epoch: state.leader_epoch,
                epoch: r.epochs.latest_epoch(),
            },
            Phase::Fetching => Msg::Fetch {
                from: n,
                to: state.leader,
                id,
                current_epoch: state.leader_epoch,
                offset: r.log_end(),
            },
        };
        self.net.push(m);
    }

    fn deliver(&mut self, m: Msg) {
        let now = self.now;
        match m {
            Msg::Metadata {
                to,
                state,
                registered,
            } => self.apply_metadata(to, state, registered),
            Msg::Heartbeat { from, incarnation } => self.on_heartbeat(from, incarnation),
            Msg::Alter { from, request } => self.on_alter(from, request),
            Msg::AlterAnswer {
                to,
                leader_epoch,
                answer,
            } => {
                let r = self.nodes.get_mut(&to).expect("node");
                let end = r.log_end();
                let Some(l) = r.leader.as_mut().filter(|l| l.leader_epoch == leader_epoch) else {
                    return;
                };
                match answer {
                    Ok(state) => {
                        l.on_isr_committed(&state.isr, state.partition_epoch, end);
                        if r.known
                            .as_ref()
                            .is_none_or(|k| k.partition_epoch < state.partition_epoch)
                        {
                            r.known = Some(state);
                        }
                    }
                    Err(_) => l.on_isr_refused(),
                }
                self.after_leader_change(to);
            }
            Msg::EpochQuery {
                from,
                to,
                id,
                current_epoch,
                epoch,
            } => {
                let r = &self.nodes[&to];
                let answer = match &r.leader {
                    Some(l) if l.leader_epoch == current_epoch => {
                        Ok(r.epochs.end_offset_for(epoch, r.log_end()))
                    }
                    _ => Err(FetchError::Fenced),
                };
                self.send(Msg::EpochAnswer {
                    from: to,
                    to: from,
                    id,
                    answer,
                });
            }
            Msg::EpochAnswer { to, id, answer, .. } => {
                let r = self.nodes.get_mut(&to).expect("node");
                if r.outstanding.map(|(i, _)| i) != Some(id) || r.leader.is_some() {
                    return;
                }
                r.outstanding = None;
                let Ok((epoch, end)) = answer else {
                    return;
                };
                let before = r.log_end();
                match truncation(&r.epochs, r.log_end(), epoch, end) {
                    Truncation::To { offset, done } => {
                        r.truncate(offset);
                        if done {
                            r.phase = Phase::Fetching;
                        }
                    }
                    Truncation::Retry => {}
                }
                let cut = before - r.log_end();
                self.stats.truncated_records += cut as u64;
                self.note(format!(
                    "node {to} truncates by ({epoch}, {end}): {before} -> {}",
                    self.nodes[&to].log_end()
                ));
            }
            Msg::Fetch {
                from,
                to,
                id,
                current_epoch,
                offset,
            } => {
                let r = self.nodes.get_mut(&to).expect("node");
                let end = r.log_end();
                let answer = match r.leader.as_mut() {
                    Some(l) if l.leader_epoch == current_epoch => {
                        if offset > end {
                            Err(FetchError::OutOfRange)
                        } else {
                            l.on_fetch(from, offset, end, now);
                            let stop = (offset as usize + FETCH_MAX).min(r.log.len());
                            let records = r.log[offset as usize..stop].to_vec();
                            Ok((offset, records, l.high_watermark()))
                        }
                    }
                    _ => Err(FetchError::Fenced),
                };
                self.after_leader_change(to);
                self.send(Msg::FetchAnswer {
                    from: to,
                    to: from,
                    id,
                    answer,
                });
            }
            Msg::FetchAnswer { to, id, answer, .. } => {
                let r = self.nodes.get_mut(&to).expect("node");
                if r.outstanding.map(|(i, _)| i) != Some(id) || r.leader.is_some() {
                    return;
                }
                r.outstanding = None;
                match answer {
                    Ok((offset, records, hw)) => {
                        if offset != r.log_end() {
                            return;
                        }
                        for rec in records {
                            let at = r.log_end();
                            r.epochs.assign(rec.epoch, at);
                            r.log.push(rec);
                        }
                        r.hw = r.hw.max(hw.min(r.log_end()));
                    }
                    Err(FetchError::OutOfRange) => r.phase = Phase::Truncating,
                    Err(FetchError::Fenced) => {}
                }
            }
        }
    }

    fn step(&mut self) {
        self.now += self.rng.below(4) as u64;
        if self.faults && self.rng.chance(self.storminess) {
            self.fault();
            return;
        }
        let roll = self.rng.below(100);
        match roll {
            0..=39 if !self.net.is_empty() => {
                let i = self.rng.below(self.net.len());
                let m = self.net.swap_remove(i);
                let (a, b) = m.ends();
                let down = |n: Option<NodeId>| {
                    n.is_some_and(|n| !self.nodes[&n].up || self.cut.contains(&n))
                };
                if down(a) || down(b) || (self.faults && self.rng.chance(30)) {
                    return; // lost
                }
                self.deliver(m);
            }
            40..=59 => {
                let n = NODES[self.rng.below(NODES.len())];
                self.tick(n);
            }
            60..=74 => self.produce(),
            75..=84 => self.controller_tick(),
            85..=89 => {
                // Metadata sent again (as brokers fetch the metadata log).
                let n = NODES[self.rng.below(NODES.len())];
                let m = self.metadata_for(n);
                self.send(m);
            }
            90..=91 => {
                let n = NODES[self.rng.below(NODES.len())];
                let r = self.nodes.get_mut(&n).expect("node");
                r.hw_checkpoint = r.hw;
            }
            _ => {} // time passes
        }
    }

    fn fault(&mut self) {
        let n = NODES[self.rng.below(NODES.len())];
        match self.rng.below(10) {
            0 if self.nodes[&n].up => {
                self.stats.crashes += 1;
                self.nodes.get_mut(&n).expect("node").crash();
                // Its connections die with it: nothing in flight to it
                // arrives (what it sent may still).
                self.net.retain(|m| m.ends().1 != Some(n));
                self.note(format!("kill -9 node {n}"));
            }
            1..=3 if !self.nodes[&n].up => {
                let r = self.nodes.get_mut(&n).expect("node");
                r.up = true;
                r.incarnation += 1;
                self.note(format!("restart node {n}"));
            }
            4 if !self.cut.contains(&n) => {
                self.cut.insert(n);
                self.note(format!("cut node {n} off"));
            }
            5..=7 if self.cut.contains(&n) => {
                self.cut.remove(&n);
                self.note(format!("join node {n} again"));
            }
            8 if self.nodes[&n].up => {
                // kill -9 and the controller hears of it at once (as after
                // a controlled shutdown): elections follow each other
                // faster than followers catch up.
                self.stats.crashes += 1;
                self.nodes.get_mut(&n).expect("node").crash();
                self.net.retain(|m| m.ends().1 != Some(n));
                self.note(format!("kill -9 node {n}, fenced at once"));
                self.controller_fence(n);
            }
            _ => {}
        }
    }

    /// The invariants, after every step.
    fn check(&mut self) {
        // Leaders first: what they expose below their high watermarks
        // agrees with, and extends, what was exposed before.
        for n in NODES {
            let r = &self.nodes[&n];
            if !r.up {
                continue;
            }
            if let (Some(l), Some(k)) = (&r.leader, &r.known) {
                let previous = *self.epoch_leaders.entry(l.leader_epoch).or_insert(n);
                assert_eq!(
                    previous, n,
                    "two leaders of epoch {}: {previous} and {n}",
                    l.leader_epoch
                );
                assert_eq!(k.leader, n);
                let hw = l.high_watermark() as usize;
                assert!(
                    hw <= r.log.len(),
                    "leader {n}'s high watermark past its log"
                );
                let overlap = hw.min(self.committed.len());
                assert_eq!(
                    &r.log[..overlap],
                    &self.committed[..overlap],
                    "leader {n} exposes a log that differs below its high watermark"
                );
                if hw > self.committed.len() {
                    let more = r.log[self.committed.len()..hw].to_vec();
                    self.committed.extend(more);
                }
            }
        }
        // Every replica agrees below its own high watermark.
        for n in NODES {
            let r = &self.nodes[&n];
            let hw = (r.hw.max(0) as usize).min(r.log.len());
            let overlap = hw.min(self.committed.len());
            assert_eq!(
                &r.log[..overlap],
                &self.committed[..overlap],
                "replica {n} differs below its high watermark {hw}"
            );
        }
        // Nothing acknowledged is lost.
        for (&offset, rec) in &self.acked {
            assert_eq!(
                self.committed.get(offset as usize),
                Some(rec),
                "acknowledged record at {offset} lost"
            );
        }
    }

    /// Faults stop, every broker is up and reachable, and the cluster must
    /// converge: one leader, all in the ISR, identical logs.
    fn settle(&mut self) -> bool {
        self.faults = false;
        self.cut.clear();
        for n in NODES {
            let r = self.nodes.get_mut(&n).expect("node");
            if !r.up {
                r.up = true;
                r.incarnation += 1;
            }
        }
        for _ in 0..SETTLE_STEPS {
            self.step_settling();
            if self.converged() {
                return true;
            }
        }
        false
    }

    fn step_settling(&mut self) {
        self.now += 1;
        for n in NODES {
            self.tick(n);
        }
        self.controller_tick();
        if self.now.is_multiple_of(10) {
            self.broadcast_metadata();
        }
        self.check();
        // One message at a time, checked after each: a leader that
        // acknowledges and then steps down within one round must have its
        // high watermark seen.
        let pending = std::mem::take(&mut self.net);
        for m in pending {
            self.deliver(m);
            self.check();
        }
    }

    fn converged(&self) -> bool {
        let state = &self.controller.state;
        if state.leader == NO_LEADER || state.isr.len() != NODES.len() {
            return false;
        }
        let leader = &self.nodes[&state.leader];
        let Some(l) = &leader.leader else {
            return false;
        };
        l.high_watermark() == leader.log_end()
            && NODES.iter().all(|n| {
                let r = &self.nodes[n];
                r.log == leader.log && r.known.as_ref() == Some(state)
            })
    }
}

fn run(seed: u64) -> Stats {
    let mut sim = Sim::new(seed);
    sim.broadcast_metadata();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in 0..STEPS {
            sim.step();
            sim.check();
        }
        assert!(sim.settle(), "the replicas did not converge once healed");
        let leader = &sim.nodes[&sim.controller.state.leader];
        for (&offset, rec) in &sim.acked {
            assert_eq!(leader.log.get(offset as usize), Some(rec));
        }
    }));
    if let Err(e) = outcome {
        eprintln!("seed {seed} failed; its last steps:");
        for line in &sim.trace {
            eprintln!("  {line}");
        }
        eprintln!("controller: {:?}", sim.controller.state);
        for r in sim.nodes.values() {
            eprintln!(
                "  node {} up={} hw={} log_end={} epochs={:?} leader={:?}",
                r.id,
                r.up,
                r.hw,
                r.log_end(),
                r.epochs.entries(),
                r.leader.as_ref().map(|l| (l.leader_epoch, l.isr().clone()))
            );
        }
        eprintln!("replay: SIM_FIRST_SEED={seed} SIM_SEEDS=1 cargo test --test replication_sim");
        std::panic::resume_unwind(e);
    }
    sim.stats
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn seeded_runs_lose_no_acknowledged_record_and_converge() {
    let first = env("SIM_FIRST_SEED", 1);
    let seeds = env("SIM_SEEDS", 300);
    let mut total = Stats::default();
    for seed in first..first + seeds {
        let s = run(seed);
        total.acked += s.acked;
        total.refused += s.refused;
        total.elections += s.elections;
        total.crashes += s.crashes;
        total.truncated_records += s.truncated_records;
    }
    eprintln!("{seeds} seeds from {first}: {total:?}");
    // The faults must have bitten: elections, kill -9s and truncations
    // happened, and records were both acknowledged and refused.
    assert!(total.acked > 0 && total.refused > 0, "{total:?}");
    assert!(total.elections > 0 && total.crashes > 0, "{total:?}");
    assert!(total.truncated_records > 0, "{total:?}");
}

impl Sim {
    /// Delivers every message in flight that `pick` selects, in order,
    /// checking the invariants after each.
    fn deliver_where(&mut self, pick: impl Fn(&Msg) -> bool) {
        let (picked, rest): (Vec<Msg>, Vec<Msg>) = std::mem::take(&mut self.net)
            .into_iter()
            .partition(|m| pick(m));
        self.net = rest;
        for m in picked {
            self.deliver(m);
            self.check();
        }
    }

    /// Rounds of ticks and deliveries with no faults until `done`.
    fn rounds_until(&mut self, done: impl Fn(&Sim) -> bool) {
        for _ in 0..1000 {
            if done(self) {
                return;
            }
            self.step_settling();
        }
        panic!("not reached within 1000 rounds");
    }

    fn kill_and_fence(&mut self, n: NodeId) {
        self.nodes.get_mut(&n).expect("node").crash();
        self.net.retain(|m| m.ends().1 != Some(n));
        self.controller_fence(n);
    }
}

// KIP-101's first scenario, step by step: a record is acknowledged once
// both followers have it, but neither has yet heard the high watermark
// that covers it. The leader dies; a follower leads; the other follower
// must not cut the record when it truncates for the new leader (its high
// watermark still says it is uncommitted: truncating to it, as Kafka did
// before KIP-101, drops it), because the new leader may die next and leave
// it as the only replica.
#[test]
fn kip_101_an_acknowledged_record_survives_two_quick_leader_changes() {
    let mut sim = Sim::new(0);
    sim.faults = false;
    sim.broadcast_metadata();
    sim.rounds_until(|s| {
        NODES
            .iter()
            .all(|n| s.nodes[n].phase == Phase::Fetching || s.nodes[n].leader.is_some())
    });
    // Nothing in flight: every request answered.
    sim.deliver_where(|_| true);
    sim.deliver_where(|_| true);
    assert_eq!(sim.controller.state.leader, 1);
    // One record, produced to the leader; both followers fetch it, then
    // report its end, so the leader's high watermark covers it and
    // acknowledges it.
    let value = sim.next_value;
    {
        let r = sim.nodes.get_mut(&1).unwrap();
        let l = r.leader.as_mut().unwrap();
        let rec = Rec {
            epoch: l.leader_epoch,
            value,
        };
        r.log.push(rec);
        l.update_high_watermark(1);
        r.waiting.push((1, 0, rec));
    }
    sim.next_value += 1;
    // Fetch rounds: followers copy the record, then fetch again from its
    // end, which moves the leader's high watermark; their own high
    // watermarks stay at 0 until the answers to those fetches arrive.
    for follower in [2, 3] {
        sim.tick(follower);
    }
    sim.deliver_where(|m| matches!(m, Msg::Fetch { .. }));
    sim.deliver_where(|m| matches!(m, Msg::FetchAnswer { .. }));
    for follower in [2, 3] {
        sim.tick(follower);
        assert_eq!(sim.nodes[&follower].log.len(), 1);
    }
    sim.deliver_where(|m| matches!(m, Msg::Fetch { .. }));
    assert_eq!(sim.acked.len(), 1, "acknowledged once both have it");
    assert_eq!(sim.nodes[&3].hw, 0, "follower 3 has not heard of it yet");
    sim.net.clear(); // the answers carrying the high watermark are lost

    // The leader dies; node 2 leads epoch 1; node 3 truncates for it.
    sim.kill_and_fence(1);
    assert_eq!(sim.controller.state.leader, 2);
    sim.deliver_where(|m| matches!(m, Msg::Metadata { .. }));
    sim.tick(3);
    sim.deliver_where(|m| matches!(m, Msg::EpochQuery { .. }));
    sim.deliver_where(|m| matches!(m, Msg::EpochAnswer { .. }));
    assert_eq!(sim.nodes[&3].phase, Phase::Fetching);
    assert_eq!(
        sim.nodes[&3].log.len(),
        1,
        "truncation by leader epoch keeps the record its high watermark does not cover"
    );

    // Node 2 dies before node 3 fetches again: node 3 leads, and the
    // acknowledged record is still there.
    sim.net.clear();
    sim.kill_and_fence(2);
    assert_eq!(sim.controller.state.leader, 3);
    sim.deliver_where(|m| matches!(m, Msg::Metadata { .. }));
    assert!(sim.nodes[&3].leader.is_some());
    assert_eq!(sim.nodes[&3].log[0], Rec { epoch: 0, value });
    sim.check();
}
