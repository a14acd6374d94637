//! The metadata quorum: raft-rs's `RawNode` driven by one task on shard 0
//! of each controller, with [`super::wal`] for its log and
//! [`super::transport`] for its messages.
//!
//! The loop: a peer message is stepped in, a tick is given every
//! [`TICK`]; after each, a `Ready` is handled in raft-rs's order (send what
//! needs no persistence, persist entries and hard state durably, then send
//! what depended on them, apply what is committed). The node's view
//! (leader, epoch, high watermark, each voter's log end) is published in a
//! [`SharedStatus`] every shard can read, for DescribeQuorum.
//!
//! Ids: Raft ids must be non-zero and Kafka's node ids start at 0, so a
//! voter's Raft id is its node id + 1, converted in this file only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_lite::future;
use glommio::channels::local_channel::{self, LocalReceiver};
use raft::eraftpb::{ConfState, Entry, EntryType, Message};
use raft::{Config, RawNode, StateRole, Storage as _};
use tracing::{info, warn};

use super::image::{Endpoint, MetadataImage, MetadataRecord};
use super::snapshot::{self, MetaStorage};
use super::transport::{self, Peer};
use super::wal::{Wal, WalError};
use crate::storage::ShardStorage;

/// One logical Raft tick.
pub const TICK: Duration = Duration::from_millis(100);

/// Messages from peers waiting to be stepped.
const INBOX: usize = 4096;

/// A voter as the quorum is configured.
#[derive(Debug, Clone)]
pub struct VoterAddr {
    pub node_id: i32,
    pub addr: SocketAddr,
}

/// What starts a quorum member.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    pub node_id: i32,
    pub voters: Vec<VoterAddr>,
    /// Where this node accepts its peers (the CONTROLLER listener).
    pub listen: SocketAddr,
    /// controller.quorum.fetch.timeout.ms: a follower that hears nothing
    /// from a leader this long starts an election, and a leader that hears
    /// from no majority this long steps down.
    pub fetch_timeout: Duration,
    /// controller.quorum.election.timeout.ms: the random spread added to
    /// the fetch timeout before a follower campaigns (so followers seldom
    /// campaign at once), as Kafka's candidates back off by a random part
    /// of it.
    pub election_timeout: Duration,
    /// controller.quorum.request.timeout.ms: connecting to a peer.
    pub request_timeout: Duration,
    /// broker.session.timeout.ms: the leader fences a broker it has not
    /// heard from this long.
    pub session_timeout: Duration,
    /// On a combined node, the broker this process registers.
    pub broker: Option<BrokerIdentity>,
    /// metadata.log.max.record.bytes.between.snapshots: record bytes
    /// applied after which a snapshot is taken and the log before it
    /// dropped.
    pub snapshot_bytes: u64,
    /// auto.leader.rebalance.enable with leader.imbalance.check.interval.seconds:
    /// how often the leader moves the leadership of partitions back to
    /// their preferred replicas where those are live and in sync; None:
    /// never.
    pub leader_rebalance: Option<Duration>,
}

/// What a broker process registers.
#[derive(Debug, Clone)]
pub struct BrokerIdentity {
    pub broker_id: i32,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
}

/// One voter (or observer) as DescribeQuorum shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VoterState {
    pub node_id: i32,
    /// The end of its log as the leader knows it (-1: unknown).
    pub log_end_offset: i64,
    /// Epoch ms of its last message to the leader (-1: unknown).
    pub last_fetch_ms: i64,
    /// Epoch ms when it was last caught up with the leader (-1: unknown).
    pub last_caught_up_ms: i64,
}

/// This node's view of the quorum.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumStatus {
    pub node_id: i32,
    /// The leader's node id, -1 while there is none.
    pub leader_id: i32,
    /// The Raft term: Kafka's leader epoch of `__cluster_metadata`.
    pub epoch: i64,
    /// Committed entries: Kafka's high watermark (the index of the last
    /// committed entry is its offset + 1).
    pub high_watermark: i64,
    /// The end of this node's own log.
    pub log_end_offset: i64,
    /// Entries applied to the metadata image.
    pub applied: i64,
    pub voters: Vec<VoterState>,
    /// On the leader: the broker-only nodes fetching the log from it.
    pub observers: Vec<VoterState>,
}

pub type SharedStatus = Arc<RwLock<QuorumStatus>>;

/// The metadata image every shard of a node reads.
pub type SharedImage = Arc<RwLock<MetadataImage>>;

impl QuorumStatus {
    pub fn new(node_id: i32, voters: &[i32]) -> Self {
        QuorumStatus {
            node_id,
            leader_id: -1,
            epoch: 0,
            high_watermark: 0,
            log_end_offset: 0,
            applied: 0,
            voters: voters
                .iter()
                .map(|&id| VoterState {
                    node_id: id,
                    log_end_offset: -1,
                    last_fetch_ms: -1,
                    last_caught_up_ms: -1,
                })
                .collect(),
            observers: Vec::new(),
        }
    }
}

fn raft_id(node_id: i32) -> u64 {
    node_id as u64 + 1
}

fn node_id(raft_id: u64) -> i32 {
    raft_id as i32 - 1
}

fn raft_error(e: raft::Error) -> WalError {
    WalError::Corrupt {
        offset: -1,
        what: format!("raft storage: {e}"),
    }
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// raft-rs logs through slog; its records go to `tracing` here.
struct SlogToTracing;

impl slog::Drain for SlogToTracing {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, record: &slog::Record, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        match record.level() {
            slog::Level::Critical | slog::Level::Error => {
                tracing::error!(target: "raft", "{}", record.msg())
            }
            slog::Level::Warning => tracing::warn!(target: "raft", "{}", record.msg()),
            slog::Level::Info => tracing::info!(target: "raft", "{}", record.msg()),
            slog::Level::Debug => tracing::debug!(target: "raft", "{}", record.msg()),
            slog::Level::Trace => tracing::trace!(target: "raft", "{}", record.msg()),
        }
        Ok(())
    }
}

/// Proposes records and waits for them to be applied, on the shard that
/// runs the member (shard 0).
#[derive(Clone)]
pub struct Proposer {
    tx: Rc<glommio::channels::local_channel::LocalSender<Vec<u8>>>,
    applied: Rc<crate::storage::waiters::OffsetWaiters<()>>,
    pub image: SharedImage,
    pub status: SharedStatus,
}

impl Proposer {
    pub(super) fn new(
        tx: Rc<glommio::channels::local_channel::LocalSender<Vec<u8>>>,
        applied: Rc<crate::storage::waiters::OffsetWaiters<()>>,
        image: SharedImage,
        status: SharedStatus,
    ) -> Self {
        Proposer {
            tx,
            applied,
            image,
            status,
        }
    }

    /// Hands a record to the member; it is dropped if there is no leader or
    /// the queue is full (the caller proposes again if it sees no effect).
    pub fn propose(&self, record: &MetadataRecord) {
        if self.tx.try_send(record.encode()).is_err() {
            tracing::debug!("proposal queue full; dropped");
        }
    }

    /// Resolves once the image has applied a record past `offset`.
    pub async fn applied_beyond(&self, offset: i64) {
        if self.image.read().expect("image lock").offset > offset {
            return;
        }
        let _ = self.applied.wait_beyond(offset).await;
    }
}

/// A running quorum member.
pub struct Quorum {
    proposer: Proposer,
    status: SharedStatus,
    image: SharedImage,
    stop: Rc<std::cell::Cell<bool>>,
    done: Rc<crate::storage::waiters::Signal>,
    finished: Rc<std::cell::Cell<bool>>,
}

impl Quorum {
    pub fn status(&self) -> SharedStatus {
        self.status.clone()
    }

    pub fn image(&self) -> SharedImage {
        self.image.clone()
    }

    pub fn proposer(&self) -> Proposer {
        self.proposer.clone()
    }

    /// Stops the member and waits until its log is closed.
    pub async fn stop(&self) {
        self.stop.set(true);
        while !self.finished.get() {
            self.done.wait().await;
        }
    }
}

struct Node {
    raw: RawNode<MetaStorage>,
    /// The metadata log's directory (the snapshot file lives there).
    dir: std::path::PathBuf,
    conf_state: ConfState,
    snapshot_bytes: u64,
    /// Record bytes applied since the last snapshot.
    applied_bytes: u64,
    wal: Wal,
    peers: HashMap<u64, Peer>,
    status: SharedStatus,
    image: SharedImage,
    applied_waiters: Rc<crate::storage::waiters::OffsetWaiters<()>>,
    session_timeout: Duration,
    leader_rebalance: Option<Duration>,
    /// When this leader last looked for imbalanced partitions.
    rebalanced_at: Option<Instant>,
    /// Since when this node leads (for the fencing grace after a change).
    leading_since: Option<Instant>,
    /// Fence/unfence records proposed and not yet applied, with when.
    proposed: HashMap<(i32, i64, bool), Instant>,
    /// When each peer last sent this node a message.
    heard_from: HashMap<u64, Instant>,
    /// When each broker-only node last fetched from this node (as leader).
    contacts: Rc<std::cell::RefCell<HashMap<i32, Instant>>>,
    caught_up_at: HashMap<u64, i64>,
    leader: u64,
    applied: u64,
}

/// Opens the metadata log, replays it and starts the member's tasks on the
/// current shard. Fails when the log cannot be read or the listener cannot
/// be bound.
pub async fn start(
    config: QuorumConfig,
    data_dir: &std::path::Path,
    storage: &ShardStorage,
    status: SharedStatus,
    image: SharedImage,
) -> Result<Quorum, String> {
    let stop = Rc::new(std::cell::Cell::new(false));
    let wal = Wal::open(data_dir, storage)
        .await
        .map_err(|e| e.to_string())?;
    let replayed = wal.replay().await.map_err(|e| e.to_string())?;
    let dir = super::wal::wal_dir(data_dir);
    let voter_ids: Vec<u64> = config.voters.iter().map(|v| raft_id(v.node_id)).collect();
    let conf_state = ConfState::from((voter_ids.clone(), vec![]));
    let store = MetaStorage::new(conf_state.clone());
    let snap = snapshot::read(&dir).await?;
    let mut applied = 0;
    let mut hard_state = replayed.hard_state.clone();
    let mut entries = replayed.entries;
    if let Some(marker) = &replayed.snapshot {
        if snap
            .as_ref()
            .is_none_or(|s| s.get_metadata().index < marker.index)
        {
            return Err(format!(
                "metadata log: it starts after a snapshot at index {} that {} does not hold",
                marker.index,
                dir.join(snapshot::SNAPSHOT_FILE).display()
            ));
        }
    }
    if let Some(snap) = snap {
        let meta = snap.get_metadata();
        let mut voters: Vec<u64> = meta.get_conf_state().voters.clone();
        voters.sort_unstable();
        let mut configured = voter_ids.clone();
        configured.sort_unstable();
        if voters != configured {
            let ids = |v: &[u64]| {
                v.iter()
                    .map(|&r| node_id(r).to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            return Err(format!(
                "controller.quorum.voters: the configured voter set [{}] is different from the voter set [{}] in the metadata snapshot; changing voters is not supported",
                ids(&configured),
                ids(&voters)
            ));
        }
        applied = meta.index;
        entries.retain(|e| e.index > meta.index);
        if entries.first().is_some_and(|e| e.index != meta.index + 1) {
            return Err(format!(
                "metadata log: entries resume at index {} after the snapshot at {}",
                entries[0].index, meta.index
            ));
        }
        hard_state = snapshot::hard_state_after(hard_state, &snap);
        let restored: MetadataImage = serde_json::from_slice(&snap.data)
            .map_err(|e| format!("metadata snapshot does not decode: {e}"))?;
        *image.write().expect("image lock") = restored;
        store
            .install(snap)
            .map_err(|e| format!("metadata log: installing the snapshot: {e}"))?;
    }
    {
        let mut core = store.mem.wl();
        if !entries.is_empty() {
            core.append(&entries)
                .map_err(|e| format!("metadata log: replaying entries: {e}"))?;
        }
        core.set_hardstate(hard_state.clone());
    }
    info!(
        records = replayed.records,
        snapshot_index = applied,
        entries = entries.len(),
        term = hard_state.term,
        commit = hard_state.commit,
        "metadata log replayed"
    );
    let ticks = (config.fetch_timeout.as_millis() / TICK.as_millis()).max(4) as usize;
    let spread = (config.election_timeout.as_millis() / TICK.as_millis()).max(1) as usize;
    let raft_config = Config {
        id: raft_id(config.node_id),
        election_tick: ticks,
        // raft-rs campaigns after a random [min, max) ticks without a
        // leader (its default, [election, 2 x election), waited up to
        // twice the fetch timeout).
        min_election_tick: ticks,
        max_election_tick: ticks + spread,
        heartbeat_tick: (ticks / 10).max(1),
        check_quorum: true,
        pre_vote: true,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        applied,
        ..Config::default()
    };
    raft_config
        .validate()
        .map_err(|e| format!("quorum settings: {e}"))?;
    let logger = slog::Logger::root(slog::Fuse(SlogToTracing), slog::o!());
    let raw = RawNode::new(&raft_config, store.clone(), &logger)
        .map_err(|e| format!("starting the quorum member: {e}"))?;

    let (inbox_tx, inbox_rx) = local_channel::new_bounded(INBOX);
    let (propose_tx, propose_rx) = local_channel::new_bounded(INBOX);
    let propose_tx = Rc::new(propose_tx);
    let applied_waiters = Rc::new(crate::storage::waiters::OffsetWaiters::default());
    let proposer = Proposer::new(
        propose_tx.clone(),
        applied_waiters.clone(),
        image.clone(),
        status.clone(),
    );
    let contacts = Rc::new(std::cell::RefCell::new(HashMap::new()));
    let observers = super::observer::Server {
        node_id: config.node_id,
        status: status.clone(),
        image: image.clone(),
        store,
        applied: applied_waiters.clone(),
        contacts: contacts.clone(),
    };
    transport::listen(
        config.listen,
        transport::Inbound {
            me: raft_id(config.node_id),
            voters: Rc::new(voter_ids),
            raft: Rc::new(inbox_tx),
            proposals: propose_tx.clone(),
            observers: Rc::new(observers),
        },
    )
    .map_err(|e| format!("controller listener {}: {e}", config.listen))?;
    let peers = config
        .voters
        .iter()
        .filter(|v| v.node_id != config.node_id)
        .map(|v| {
            (
                raft_id(v.node_id),
                Peer::start(v.node_id, v.addr, config.request_timeout),
            )
        })
        .collect();
    let node = Node {
        raw,
        dir,
        conf_state,
        snapshot_bytes: config.snapshot_bytes,
        applied_bytes: 0,
        wal,
        peers,
        status: status.clone(),
        image: image.clone(),
        applied_waiters: applied_waiters.clone(),
        session_timeout: config.session_timeout,
        leader_rebalance: config.leader_rebalance,
        rebalanced_at: None,
        leading_since: None,
        proposed: HashMap::new(),
        heard_from: HashMap::new(),
        contacts,
        caught_up_at: HashMap::new(),
        leader: 0,
        applied,
    };
    let done = Rc::new(crate::storage::waiters::Signal::default());
    let finished = Rc::new(std::cell::Cell::new(false));
    let (task_stop, task_done, task_finished) = (stop.clone(), done.clone(), finished.clone());
    glommio::spawn_local(async move {
        if let Err(e) = node.run(inbox_rx, propose_rx, task_stop).await {
            // The log failed: this member stops taking part rather than
            // acknowledge what it could not persist.
            tracing::error!("metadata quorum member stopped: {e}");
        }
        task_finished.set(true);
        task_done.notify();
    })
    .detach();
    if let Some(broker) = config.broker {
        glommio::spawn_local(register(
            broker,
            image.clone(),
            status.clone(),
            propose_tx,
            stop.clone(),
        ))
        .detach();
    }
    Ok(Quorum {
        proposer,
        status,
        image,
        stop,
        done,
        finished,
    })
}

/// This process's broker incarnation (one per start).
static INCARNATION: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Whether `image` holds this process's registration of `broker_id`: it
/// is caught up past the record that fenced the previous incarnation.
pub fn registered_in(image: &super::MetadataImage, broker_id: i32) -> bool {
    INCARNATION.get().is_some_and(|own| {
        image
            .brokers
            .get(&broker_id)
            .is_some_and(|b| &b.incarnation == own)
    })
}

/// Registers this process's broker with the quorum and registers it again
/// whenever the image does not hold this incarnation (until it does, a
/// proposal may be lost: one made on a follower is forwarded to a leader
/// that may be gone).
pub(super) async fn register(
    broker: BrokerIdentity,
    image: SharedImage,
    status: SharedStatus,
    proposals: Rc<glommio::channels::local_channel::LocalSender<Vec<u8>>>,
    stop: Rc<std::cell::Cell<bool>>,
) {
    let incarnation = INCARNATION
        .get_or_init(|| uuid::Uuid::new_v4().to_string())
        .clone();
    let record = MetadataRecord::RegisterBroker {
        broker_id: broker.broker_id,
        incarnation: incarnation.clone(),
        endpoints: broker.endpoints,
        rack: broker.rack,
        self_unfence: true,
    }
    .encode();
    let mut registered = false;
    let mut asked_at: Option<Instant> = None;
    while !stop.get() {
        let current = image
            .read()
            .expect("image lock")
            .brokers
            .get(&broker.broker_id)
            .map(|b| {
                (
                    b.incarnation == incarnation,
                    b.fenced && !b.shutting_down,
                    b.epoch,
                )
            });
        match current {
            Some((true, fenced, epoch)) => {
                if !registered {
                    info!(
                        broker = broker.broker_id,
                        "broker registered with the metadata quorum"
                    );
                    registered = true;
                }
                // Fenced (new, or its session expired while it was
                // paused or cut off) and alive: it asks to be unfenced
                // itself, for its own registration, as Kafka's broker
                // heartbeat does. The quorum leader never unfences on
                // liveness alone: it cannot tell this process from the
                // previous incarnation of the same broker id.
                let leader_known = status.read().expect("status lock").leader_id >= 0;
                let due =
                    asked_at.is_none_or(|t: Instant| t.elapsed() >= Duration::from_millis(500));
                if fenced && leader_known && due {
                    let unfence = MetadataRecord::UnfenceBroker {
                        broker_id: broker.broker_id,
                        epoch,
                    };
                    if proposals.try_send(unfence.encode()).is_err() {
                        break;
                    }
                    asked_at = Some(Instant::now());
                }
                if !fenced {
                    asked_at = None;
                }
            }
            _ => {
                registered = false;
                // Without a leader a proposal would only be dropped.
                let leader_known = status.read().expect("status lock").leader_id >= 0;
                if leader_known && proposals.try_send(record.clone()).is_err() {
                    break;
                }
            }
        }
        // Quick to see its registration and unfencing applied; the
        // proposals themselves are repeated at most twice a second.
        glommio::timer::sleep(Duration::from_millis(if registered { 100 } else { 500 })).await;
    }
}

enum Event {
    Message(Option<Message>),
    Proposal(Option<Vec<u8>>),
    Tick,
}

impl Node {
    async fn run(
        mut self,
        inbox: LocalReceiver<Message>,
        proposals: LocalReceiver<Vec<u8>>,
        stop: Rc<std::cell::Cell<bool>>,
    ) -> Result<(), WalError> {
        let mut next_tick = Instant::now() + TICK;
        let mut no_leader_since = Some(Instant::now());
        let mut warned_no_leader = false;
        while !stop.get() {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let event = future::or(
                future::or(async { Event::Message(inbox.recv().await) }, async {
                    Event::Proposal(proposals.recv().await)
                }),
                async {
                    glommio::timer::sleep(wait).await;
                    Event::Tick
                },
            )
            .await;
            match event {
                Event::Message(Some(m)) => self.step(m),
                Event::Proposal(Some(data)) => self.propose(data),
                Event::Message(None) | Event::Proposal(None) => break,
                Event::Tick => {
                    self.raw.tick();
                    next_tick += TICK;
                    if next_tick < Instant::now() {
                        next_tick = Instant::now() + TICK;
                    }
                }
            }
            // Step whatever else has arrived before persisting once.
            while let Some(Some(m)) = future::poll_once(inbox.recv()).await {
                self.step(m);
            }
            self.handle_ready().await?;
            self.publish();
            self.check_brokers();
            // A node that cannot find a leader says so, once per outage.
            if self.leader == 0 {
                let since = *no_leader_since.get_or_insert_with(Instant::now);
                if !warned_no_leader && since.elapsed() > Duration::from_secs(10) {
                    warn!("no metadata quorum leader for 10 s: cannot reach a majority of controller.quorum.voters; still trying");
                    warned_no_leader = true;
                }
            } else {
                no_leader_since = None;
                warned_no_leader = false;
            }
        }
        self.wal.close().await?;
        Ok(())
    }

    fn step(&mut self, m: Message) {
        self.heard_from.insert(m.from, Instant::now());
        if let Err(e) = self.raw.step(m) {
            tracing::debug!("raft step: {e}");
        }
    }

    fn propose(&mut self, data: Vec<u8>) {
        // Dropped without a leader; the proposer tries again.
        if let Err(e) = self.raw.propose(Vec::new(), data) {
            tracing::debug!("proposal dropped: {e}");
        }
    }

    /// On the leader: fences brokers not heard from within the session
    /// timeout. A broker asks to be unfenced itself once it holds its
    /// registration (see [`register`]); only one registered by an older
    /// version, which does not, is unfenced here when heard from again.
    fn check_brokers(&mut self) {
        if self.raw.raft.state != StateRole::Leader {
            self.leading_since = None;
            self.rebalanced_at = None;
            self.proposed.clear();
            return;
        }
        self.maybe_rebalance();
        let since = *self.leading_since.get_or_insert_with(Instant::now);
        let me = node_id(self.raw.raft.id);
        // A broker in controlled shutdown stays fenced until it registers
        // again, however alive it looks; one that asks to be unfenced
        // itself is never unfenced here.
        let brokers: Vec<(i32, i64, bool)> = self
            .image
            .read()
            .expect("image lock")
            .brokers
            .values()
            .filter(|b| !b.fenced || (!b.shutting_down && !b.self_unfence))
            .map(|b| (b.broker_id, b.epoch, b.fenced))
            .collect();
        let now = Instant::now();
        self.proposed
            .retain(|_, at| now.duration_since(*at) < Duration::from_secs(1));
        for (broker, epoch, fenced) in brokers {
            // A combined node is heard from through its Raft messages, a
            // broker-only node through its metadata fetches; one not heard
            // from since this node leads gets one session's grace.
            let heard = self
                .heard_from
                .get(&raft_id(broker))
                .copied()
                .max(self.contacts.borrow().get(&broker).copied());
            let alive = broker == me
                || heard.map_or(since, |t| t.max(since)).elapsed() < self.session_timeout;
            if alive != fenced {
                continue;
            }
            let key = (broker, epoch, !alive);
            if self.proposed.contains_key(&key) {
                continue;
            }
            let record = if alive {
                // Registered by an older version: back on liveness.
                MetadataRecord::UnfenceBroker {
                    broker_id: broker,
                    epoch,
                }
            } else {
                info!(
                    broker,
                    "fencing a broker not heard from within broker.session.timeout.ms"
                );
                MetadataRecord::FenceBroker {
                    broker_id: broker,
                    epoch,
                }
            };
            self.proposed.insert(key, now);
            self.propose(record.encode());
        }
    }

    /// On the leader, every leader.imbalance.check.interval.seconds (the
    /// first time one interval after it took the lead): elects the
    /// preferred replica of every partition it can lead but does not
    /// (Kafka's automatic leader rebalancing, as its KRaft controller
    /// does it: no per-broker threshold).
    fn maybe_rebalance(&mut self) {
        let Some(every) = self.leader_rebalance else {
            return;
        };
        let now = Instant::now();
        let last = *self.rebalanced_at.get_or_insert(now);
        if now.duration_since(last) < every {
            return;
        }
        self.rebalanced_at = Some(now);
        let partitions = self.image.read().expect("image lock").imbalanced();
        if partitions.is_empty() {
            return;
        }
        info!(
            partitions = partitions.len(),
            "leader rebalance: electing the preferred replicas of partitions they do not lead"
        );
        // Bounded records: a large cluster's rebalance goes out in parts.
        for part in partitions.chunks(1000) {
            let record = MetadataRecord::ElectLeaders {
                election: crate::replication::election::ElectionKind::Preferred,
                partitions: part.to_vec(),
            };
            self.propose(record.encode());
        }
    }

    fn send(&self, messages: Vec<Message>) {
        for m in messages {
            if let Some(peer) = self.peers.get(&m.to) {
                peer.send(m);
            }
        }
    }

    async fn handle_ready(&mut self) -> Result<(), WalError> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        if let Some(ss) = ready.ss() {
            if ss.leader_id != self.leader {
                self.leader = ss.leader_id;
                let term = self.raw.raft.term;
                if ss.leader_id == 0 {
                    info!(term, "metadata quorum: no leader");
                } else {
                    info!(
                        leader = node_id(ss.leader_id),
                        term,
                        role = ?ss.raft_state,
                        "metadata quorum: new leader"
                    );
                }
            }
        }
        // Messages a leader sends need not wait for its own log write.
        self.send(ready.take_messages());
        if !ready.snapshot().is_empty() {
            self.install_snapshot(ready.snapshot().clone()).await?;
        }
        let entries = ready.take_entries();
        let hard_state = ready.hs().cloned();
        if !entries.is_empty() || hard_state.is_some() {
            self.wal.append(&entries, hard_state.as_ref()).await?;
            let mut core = self.raw.store().mem.wl();
            if !entries.is_empty() {
                core.append(&entries).expect("entries follow the log");
            }
            if let Some(hs) = hard_state {
                core.set_hardstate(hs);
            }
        }
        self.apply(ready.take_committed_entries());
        self.send(ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.raw
                .store()
                .mem
                .wl()
                .mut_hard_state()
                .set_commit(commit);
        }
        self.send(light.take_messages());
        self.apply(light.take_committed_entries());
        self.raw.advance_apply();
        if self.applied_bytes >= self.snapshot_bytes {
            self.take_snapshot().await?;
        }
        Ok(())
    }

    /// Snapshots the image at the applied index, then drops the log before
    /// it (in memory and on disk).
    async fn take_snapshot(&mut self) -> Result<(), WalError> {
        let index = self.applied;
        let store = self.raw.store().clone();
        if index <= store.latest().get_metadata().index {
            return Ok(());
        }
        let term = store.term(index).map_err(raft_error)?;
        let data = serde_json::to_vec(&*self.image.read().expect("image lock"))
            .expect("the image serializes");
        let snap = snapshot::build(index, term, self.conf_state.clone(), data);
        snapshot::write(&self.dir, &snap)
            .await
            .map_err(|e| crate::storage::StorageError::io("writing the metadata snapshot", e))?;
        store.compact(snap.clone()).map_err(raft_error)?;
        let after = store.entries_after(index).map_err(raft_error)?;
        let hard_state = store.mem.rl().hard_state().clone();
        self.wal
            .rebase(snap.get_metadata(), &after, &hard_state)
            .await?;
        self.applied_bytes = 0;
        let (start, end) = self.wal.offsets();
        info!(
            index,
            term,
            bytes = snap.data.len(),
            log_start = start,
            log_end = end,
            "metadata snapshot taken; the log before it dropped"
        );
        Ok(())
    }

    /// Installs a snapshot the leader sent: the file first, then the log is
    /// rebased on it and the image replaced.
    async fn install_snapshot(&mut self, snap: raft::eraftpb::Snapshot) -> Result<(), WalError> {
        let meta = snap.get_metadata().clone();
        let restored: MetadataImage =
            serde_json::from_slice(&snap.data).map_err(|e| WalError::Corrupt {
                offset: meta.index as i64 - 1,
                what: format!("snapshot from the leader does not decode: {e}"),
            })?;
        snapshot::write(&self.dir, &snap)
            .await
            .map_err(|e| crate::storage::StorageError::io("writing the metadata snapshot", e))?;
        let store = self.raw.store().clone();
        store.install(snap).map_err(raft_error)?;
        let hard_state = store.mem.rl().hard_state().clone();
        self.wal.rebase(&meta, &[], &hard_state).await?;
        let offset = restored.offset;
        *self.image.write().expect("image lock") = restored;
        self.applied_waiters.advance_to(offset);
        self.applied = meta.index;
        self.applied_bytes = 0;
        info!(
            index = meta.index,
            term = meta.term,
            "installed a metadata snapshot from the leader"
        );
        Ok(())
    }

    /// Applies committed entries to the metadata image. Configuration
    /// changes do not occur (the voter set is static).
    fn apply(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut image = self.image.write().expect("image lock");
        for e in entries {
            // Raft index i is metadata log offset i - 1.
            let offset = e.index as i64 - 1;
            let record = (e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty())
                .then(|| MetadataRecord::decode(&e.data))
                .flatten();
            self.applied_bytes += e.data.len() as u64;
            tracing::debug!(offset, ?record, "metadata record applied");
            match record {
                Some(r) => image.apply(offset, &r),
                None => {
                    if !e.data.is_empty() {
                        warn!(offset, "metadata record does not decode; skipped");
                    }
                    image.skip(offset);
                }
            }
            self.applied = e.index;
        }
        let offset = image.offset;
        drop(image);
        self.applied_waiters.advance_to(offset);
    }

    fn publish(&mut self) {
        let raft = &self.raw.raft;
        let last_index = raft.raft_log.last_index();
        let is_leader = raft.state == StateRole::Leader;
        let now = now_ms();
        let mut status = self.status.write().expect("status lock");
        status.leader_id = if raft.leader_id == 0 {
            -1
        } else {
            node_id(raft.leader_id)
        };
        status.epoch = raft.term as i64;
        status.high_watermark = raft.raft_log.committed as i64;
        status.log_end_offset = last_index as i64;
        status.applied = self.applied as i64;
        for v in status.voters.iter_mut() {
            let id = raft_id(v.node_id);
            if id == raft.id {
                v.log_end_offset = last_index as i64;
                // Kafka shows -1 / now for the leader itself.
                v.last_fetch_ms = -1;
                v.last_caught_up_ms = if is_leader { now } else { -1 };
                continue;
            }
            let progress = if is_leader {
                raft.prs().get(id).map(|p| p.matched)
            } else {
                None
            };
            match progress {
                Some(matched) => {
                    v.log_end_offset = matched as i64;
                    let heard = self
                        .heard_from
                        .get(&id)
                        .map(|t| now - t.elapsed().as_millis() as i64);
                    v.last_fetch_ms = heard.unwrap_or(-1);
                    if matched >= last_index {
                        if let Some(h) = heard {
                            self.caught_up_at.insert(id, h);
                        }
                    }
                    v.last_caught_up_ms = self.caught_up_at.get(&id).copied().unwrap_or(-1);
                }
                None => {
                    v.log_end_offset = -1;
                    v.last_fetch_ms = -1;
                    v.last_caught_up_ms = -1;
                }
            }
        }
    }
}
