//! Broker-only nodes (`process.roles=broker`): observers of the metadata
//! quorum, as Kafka's brokers are. An observer holds no vote and no Raft
//! state; it keeps a copy of the metadata image by fetching the committed
//! records from the quorum's leader over the CONTROLLER listener, and its
//! fetches are its heartbeats: the leader fences a broker whose fetches
//! stop for `broker.session.timeout.ms` and unfences it when they resume.
//!
//! The exchange ([`FetchRequest`], [`FetchReply`], JSON in frames of
//! [`super::transport`]): the observer asks for the records from the offset
//! after its image's; the leader answers with the records it has applied
//! from there (up to about [`REPLY_BYTES`]), waiting up to the asked time
//! when there are none yet, or with its whole image when the log before it
//! was dropped for a snapshot. A controller that does not lead says who
//! does. Records the observer proposes (its registration, admin changes
//! made through it) go to the leader on a second connection, without an
//! answer: the proposer sees the effect in the image, or proposes again.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::{future, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver};
use glommio::net::TcpStream;
use raft::{GetEntriesContext, Storage as _};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::image::{MetadataImage, MetadataRecord};
use super::quorum::{
    BrokerIdentity, Proposer, QuorumStatus, SharedImage, SharedStatus, VoterAddr, VoterState,
};
use super::snapshot::MetaStorage;
use super::transport::{self, FrameKind};
use crate::storage::waiters::OffsetWaiters;

/// Records per reply are cut at about this many bytes.
pub const REPLY_BYTES: u64 = 1 << 20;

/// An observer that has not fetched for this long leaves DescribeQuorum's
/// list (Kafka's observer session, 5 minutes).
pub const OBSERVER_SESSION: Duration = Duration::from_secs(300);

/// How long the leader holds a fetch that has nothing new.
pub const FETCH_WAIT: Duration = Duration::from_millis(500);

/// An observer's fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// The broker asking (its `node.id`): the fetch is its heartbeat.
    pub broker_id: i32,
    /// The offset of the first record wanted.
    pub next_offset: i64,
    pub max_wait_ms: u64,
}

/// The leader's view sent with every reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderView {
    pub leader_id: i32,
    pub epoch: i64,
    pub high_watermark: i64,
}

/// The answer to a fetch. Externally tagged: the image's maps have integer
/// keys, which an internally tagged enum cannot read back from JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FetchReply {
    /// This controller does not lead; `leader_id` does (-1: nobody yet).
    NotLeader { leader_id: i32, epoch: i64 },
    /// The records from `first_offset` on (`None`: an entry without a
    /// record, such as a new leader's empty entry).
    Records {
        view: LeaderView,
        first_offset: i64,
        records: Vec<Option<MetadataRecord>>,
    },
    /// The log at `next_offset` was dropped: the whole image instead.
    Image {
        view: LeaderView,
        image: Box<MetadataImage>,
    },
}

/// The leader's side: answers fetches from what this member has applied.
pub struct Server {
    pub node_id: i32,
    pub status: SharedStatus,
    pub image: SharedImage,
    pub store: MetaStorage,
    pub applied: Rc<OffsetWaiters<()>>,
    /// When each broker last fetched from this node while it led.
    pub contacts: Rc<RefCell<HashMap<i32, Instant>>>,
}

impl Server {
    fn view(&self) -> Result<LeaderView, FetchReply> {
        let status = self.status.read().expect("status lock");
        if status.leader_id != self.node_id {
            return Err(FetchReply::NotLeader {
                leader_id: status.leader_id,
                epoch: status.epoch,
            });
        }
        Ok(LeaderView {
            leader_id: status.leader_id,
            epoch: status.epoch,
            high_watermark: status.high_watermark,
        })
    }

    /// Shows the fetching broker among DescribeQuorum's observers: its log
    /// end is the offset it fetches from. Observers not heard from for
    /// [`OBSERVER_SESSION`] are dropped, as Kafka does.
    fn note_observer(&self, request: &FetchRequest) {
        let now = super::quorum::now_ms();
        let mut status = self.status.write().expect("status lock");
        let caught_up = request.next_offset >= status.log_end_offset;
        let cutoff = now - OBSERVER_SESSION.as_millis() as i64;
        status.observers.retain(|o| o.last_fetch_ms >= cutoff);
        let i = match status
            .observers
            .iter()
            .position(|o| o.node_id == request.broker_id)
        {
            Some(i) => i,
            None => {
                status.observers.push(VoterState {
                    node_id: request.broker_id,
                    log_end_offset: -1,
                    last_fetch_ms: -1,
                    last_caught_up_ms: -1,
                });
                status.observers.len() - 1
            }
        };
        let o = &mut status.observers[i];
        o.log_end_offset = request.next_offset;
        o.last_fetch_ms = now;
        if caught_up {
            o.last_caught_up_ms = now;
        }
    }

    /// Answers one fetch (waiting up to its `max_wait_ms` for a record).
    pub async fn answer(&self, request: FetchRequest) -> FetchReply {
        if let Err(not_leader) = self.view() {
            return not_leader;
        }
        self.contacts
            .borrow_mut()
            .insert(request.broker_id, Instant::now());
        self.note_observer(&request);
        let applied = self.image.read().expect("image lock").offset;
        if request.next_offset > applied {
            let wait = Duration::from_millis(request.max_wait_ms).min(FETCH_WAIT * 4);
            future::or(
                async {
                    let _ = self.applied.wait_beyond(request.next_offset - 1).await;
                },
                glommio::timer::sleep(wait),
            )
            .await;
        }
        let view = match self.view() {
            Ok(v) => v,
            Err(not_leader) => return not_leader,
        };
        let image = self.image.read().expect("image lock");
        // Raft index i holds offset i - 1.
        let next_index = request.next_offset.max(0) as u64 + 1;
        let applied_index = (image.offset + 1) as u64;
        let first_index = self.store.first_index().unwrap_or(1);
        if next_index < first_index {
            return FetchReply::Image {
                view,
                image: Box::new(image.clone()),
            };
        }
        let entries = if next_index > applied_index {
            Vec::new()
        } else {
            self.store
                .entries(
                    next_index,
                    applied_index + 1,
                    REPLY_BYTES,
                    GetEntriesContext::empty(false),
                )
                .unwrap_or_default()
        };
        FetchReply::Records {
            view,
            first_offset: next_index as i64 - 1,
            records: entries
                .iter()
                .map(|e| MetadataRecord::decode(&e.data))
                .collect(),
        }
    }
}

/// Asks the controller at `addr` (`host:port` of its CONTROLLER listener)
/// for its view of the quorum, within `timeout` in all.
pub async fn describe(addr: &str, timeout: Duration) -> Result<QuorumStatus, String> {
    let exchange = async {
        let mut s = TcpStream::connect_timeout(addr, timeout)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let _ = s.set_nodelay(true);
        s.write_all(&transport::frame(FrameKind::Describe, &[]))
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        s.flush().await.map_err(|e| format!("{addr}: {e}"))?;
        let mut body = Vec::new();
        match transport::read_frame(&mut s, &mut body).await {
            Ok(Some(FrameKind::Described)) => serde_json::from_slice(&body)
                .map_err(|e| format!("{addr}: the quorum status does not decode: {e}")),
            Ok(Some(kind)) => Err(format!("{addr}: unexpected {kind:?} frame")),
            Ok(None) => Err(format!("{addr}: connection closed")),
            Err(e) => Err(format!("{addr}: {e}")),
        }
    };
    let expired = async {
        glommio::timer::sleep(timeout).await;
        Err(format!("{addr}: no answer within {timeout:?}"))
    };
    future::or(exchange, expired).await
}

/// What starts an observer.
#[derive(Debug, Clone)]
pub struct ObserverConfig {
    pub node_id: i32,
    pub voters: Vec<VoterAddr>,
    /// controller.quorum.request.timeout.ms: connecting and each fetch's
    /// answer beyond its wait.
    pub request_timeout: Duration,
    pub broker: BrokerIdentity,
}

/// A running observer.
pub struct Observer {
    proposer: Proposer,
    stop: Rc<Cell<bool>>,
}

impl Observer {
    pub fn proposer(&self) -> Proposer {
        self.proposer.clone()
    }

    pub fn stop(&self) {
        self.stop.set(true);
    }
}

/// Starts the observer's tasks on the current shard: the fetch loop, the
/// proposal sender and the broker's registration.
pub fn start(config: ObserverConfig, status: SharedStatus, image: SharedImage) -> Observer {
    let stop = Rc::new(Cell::new(false));
    let applied = Rc::new(OffsetWaiters::default());
    let (tx, rx) = local_channel::new_bounded(1024);
    let tx = Rc::new(tx);
    let proposer = Proposer::new(tx.clone(), applied.clone(), image.clone(), status.clone());
    let voters = Rc::new(config.voters);
    glommio::spawn_local(fetch_loop(
        config.broker.broker_id,
        voters.clone(),
        config.request_timeout,
        status.clone(),
        image.clone(),
        applied,
        stop.clone(),
    ))
    .detach();
    glommio::spawn_local(send_proposals(
        voters,
        config.request_timeout,
        status.clone(),
        rx,
    ))
    .detach();
    glommio::spawn_local(super::quorum::register(
        config.broker,
        image,
        status,
        tx,
        stop.clone(),
    ))
    .detach();
    Observer { proposer, stop }
}

/// Fetches from the leader until stopped: from the voter last named as
/// leader, else from each voter in turn.
async fn fetch_loop(
    broker_id: i32,
    voters: Rc<Vec<VoterAddr>>,
    timeout: Duration,
    status: SharedStatus,
    image: SharedImage,
    applied: Rc<OffsetWaiters<()>>,
    stop: Rc<Cell<bool>>,
) {
    let mut target = 0;
    let mut stream: Option<TcpStream> = None;
    let mut body = Vec::new();
    let mut led_at = Instant::now();
    let mut warned = false;
    let mut backoff = Duration::from_millis(50);
    while !stop.get() {
        if !warned && led_at.elapsed() > Duration::from_secs(10) {
            warn!("no metadata quorum leader answered for 10 s: cannot reach the leader among controller.quorum.voters; still trying");
            warned = true;
        }
        let addr = voters[target].addr;
        let request = FetchRequest {
            broker_id,
            next_offset: image.read().expect("image lock").offset + 1,
            max_wait_ms: FETCH_WAIT.as_millis() as u64,
        };
        let exchange = async {
            if stream.is_none() {
                let s = TcpStream::connect_timeout(addr, timeout)
                    .await
                    .map_err(|e| format!("connecting: {e}"))?;
                let _ = s.set_nodelay(true);
                stream = Some(s);
            }
            let s = stream.as_mut().expect("connected above");
            let out = transport::frame(
                FrameKind::Fetch,
                &serde_json::to_vec(&request).expect("requests serialize"),
            );
            s.write_all(&out).await.map_err(|e| e.to_string())?;
            s.flush().await.map_err(|e| e.to_string())?;
            match transport::read_frame(s, &mut body).await {
                Ok(Some(FrameKind::Reply)) => {
                    serde_json::from_slice::<FetchReply>(&body).map_err(|e| {
                        warn!(%addr, "a metadata fetch reply does not decode: {e}");
                        e.to_string()
                    })
                }
                Ok(Some(kind)) => Err(format!("unexpected {kind:?} frame")),
                Ok(None) => Err("connection closed".to_string()),
                Err(e) => Err(e.to_string()),
            }
        };
        let expired = async {
            glommio::timer::sleep(FETCH_WAIT + timeout).await;
            Err("no answer in time".to_string())
        };
        let reply = future::or(exchange, expired).await;
        let next_voter = |t: usize| (t + 1) % voters.len();
        match reply {
            Err(e) => {
                debug!(voter = voters[target].node_id, %addr, "metadata fetch failed: {e}");
                stream = None;
                target = next_voter(target);
                glommio::timer::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Ok(FetchReply::NotLeader { leader_id, epoch }) => {
                {
                    let mut s = status.write().expect("status lock");
                    s.leader_id = leader_id;
                    s.epoch = s.epoch.max(epoch);
                }
                stream = None;
                match voters.iter().position(|v| v.node_id == leader_id) {
                    Some(i) if i != target => target = i,
                    _ => {
                        // An election is under way: ask around shortly.
                        target = next_voter(target);
                        glommio::timer::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    }
                }
            }
            Ok(reply) => {
                backoff = Duration::from_millis(50);
                led_at = Instant::now();
                if warned {
                    info!(
                        leader = voters[target].node_id,
                        "metadata quorum leader reached again"
                    );
                    warned = false;
                }
                let offset = take_reply(reply, &status, &image);
                applied.advance_to(offset);
            }
        }
    }
}

/// Applies a reply with records or an image; returns the image's offset.
fn take_reply(reply: FetchReply, status: &SharedStatus, image: &SharedImage) -> i64 {
    let mut img = image.write().expect("image lock");
    let view = match reply {
        FetchReply::NotLeader { .. } => return img.offset,
        FetchReply::Image { view, image } => {
            if image.offset > img.offset {
                info!(
                    offset = image.offset,
                    "metadata image taken from the leader's snapshot"
                );
                *img = *image;
            }
            view
        }
        FetchReply::Records {
            view,
            first_offset,
            records,
        } => {
            // Only what follows this image (a reply to an older request
            // cannot arrive: one request at a time per connection).
            if first_offset == img.offset + 1 {
                for (i, record) in records.iter().enumerate() {
                    let offset = first_offset + i as i64;
                    match record {
                        Some(r) => img.apply(offset, r),
                        None => img.skip(offset),
                    }
                }
            }
            view
        }
    };
    let mut s = status.write().expect("status lock");
    s.leader_id = view.leader_id;
    s.epoch = view.epoch;
    s.high_watermark = view.high_watermark;
    s.applied = img.offset + 1;
    s.log_end_offset = img.offset + 1;
    img.offset
}

/// Sends proposed records to the leader; drops those made while no leader
/// is known or that cannot be sent (the proposer proposes again).
async fn send_proposals(
    voters: Rc<Vec<VoterAddr>>,
    timeout: Duration,
    status: SharedStatus,
    rx: LocalReceiver<Vec<u8>>,
) {
    let mut open: Option<(i32, TcpStream)> = None;
    while let Some(record) = rx.recv().await {
        let leader = status.read().expect("status lock").leader_id;
        let Some(voter) = voters.iter().find(|v| v.node_id == leader) else {
            debug!("no quorum leader known; proposal dropped");
            continue;
        };
        if open.as_ref().is_none_or(|(id, _)| *id != leader) {
            open = match TcpStream::connect_timeout(voter.addr, timeout).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    Some((leader, s))
                }
                Err(e) => {
                    debug!(leader, "proposal dropped: connecting: {e}");
                    None
                }
            };
        }
        let Some((_, s)) = open.as_mut() else {
            continue;
        };
        let out = transport::frame(FrameKind::Propose, &record);
        let sent = future::or(
            async {
                s.write_all(&out).await?;
                s.flush().await
            },
            async {
                glommio::timer::sleep(timeout).await;
                Err(std::io::ErrorKind::TimedOut.into())
            },
        )
        .await;
        if let Err(e) = sent {
            debug!(leader, "proposal dropped: sending: {e}");
            open = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_round_trip_as_json() {
        let reply = FetchReply::Records {
            view: LeaderView {
                leader_id: 1,
                epoch: 3,
                high_watermark: 9,
            },
            first_offset: 7,
            records: vec![
                None,
                Some(MetadataRecord::FenceBroker {
                    broker_id: 4,
                    epoch: 2,
                }),
            ],
        };
        let bytes = serde_json::to_vec(&reply).unwrap();
        assert_eq!(serde_json::from_slice::<FetchReply>(&bytes).unwrap(), reply);
        // An image with brokers (a map keyed by broker id).
        let mut image = MetadataImage::new();
        image.apply(
            0,
            &MetadataRecord::RegisterBroker {
                broker_id: 4,
                incarnation: "a".into(),
                endpoints: Vec::new(),
                rack: Some("r1".into()),
                self_unfence: true,
            },
        );
        let reply = FetchReply::Image {
            view: LeaderView {
                leader_id: 1,
                epoch: 3,
                high_watermark: 1,
            },
            image: Box::new(image),
        };
        let bytes = serde_json::to_vec(&reply).unwrap();
        assert_eq!(serde_json::from_slice::<FetchReply>(&bytes).unwrap(), reply);
    }

    #[test]
    fn records_apply_only_where_they_follow_the_image() {
        let status: SharedStatus = std::sync::Arc::new(std::sync::RwLock::new(
            super::super::QuorumStatus::new(4, &[1]),
        ));
        let image: SharedImage = std::sync::Arc::new(std::sync::RwLock::new(MetadataImage::new()));
        let view = LeaderView {
            leader_id: 1,
            epoch: 2,
            high_watermark: 2,
        };
        let register = MetadataRecord::RegisterBroker {
            broker_id: 4,
            incarnation: "a".into(),
            endpoints: Vec::new(),
            rack: None,
            self_unfence: true,
        };
        // A gap (offset 5 after -1) is not applied.
        let gap = FetchReply::Records {
            view,
            first_offset: 5,
            records: vec![Some(register.clone())],
        };
        assert_eq!(take_reply(gap, &status, &image), -1);
        let next = FetchReply::Records {
            view,
            first_offset: 0,
            records: vec![None, Some(register)],
        };
        assert_eq!(take_reply(next, &status, &image), 1);
        assert_eq!(image.read().unwrap().brokers[&4].epoch, 1);
        let s = status.read().unwrap();
        assert_eq!((s.leader_id, s.epoch, s.applied), (1, 2, 2));
        drop(s);
        // An older image never replaces a newer one.
        let old = FetchReply::Image {
            view,
            image: Box::new(MetadataImage::new()),
        };
        assert_eq!(take_reply(old, &status, &image), 1);
    }
}
