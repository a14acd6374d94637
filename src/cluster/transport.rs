//! The quorum's TCP transport on the CONTROLLER listener. Every frame is a
//! 4-byte big-endian length, a kind byte and a body: Raft messages
//! (`eraftpb::Message`, protobuf) between voters, and the observers'
//! frames (see [`super::observer`]): a broker-only node's metadata fetch
//! and the leader's reply (JSON), and records it proposes.
//!
//! One outgoing connection per peer voter, opened on demand and reopened
//! after an error; a message that cannot be sent is dropped, which Raft
//! tolerates (it retries by its own timers). Incoming connections are
//! accepted from anyone, but a message must name this node as its target
//! and a configured voter as its sender, or the connection is closed with a
//! log line.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::{TcpListener, TcpStream};
use protobuf::Message as _;
use raft::eraftpb::Message;
use tracing::{debug, info, warn};

/// Largest frame accepted: a Raft message carrying entries (appends are
/// bounded by `max_size_per_msg`) or a snapshot of the metadata image.
pub const FRAME_BYTES_MAX: usize = 256 << 20;

/// Messages queued for one peer before new ones are dropped.
const PEER_QUEUE: usize = 4096;

/// Pause between failed connection attempts, doubling up to the max.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What a frame carries (its fifth byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// A Raft message between voters.
    Raft = 0,
    /// An observer asks the leader for the records after an offset.
    Fetch = 1,
    /// The leader's answer to a fetch.
    Reply = 2,
    /// An observer proposes a metadata record (no answer).
    Propose = 3,
    /// Another node asks for this node's view of the quorum (to answer
    /// DescribeQuorum as its leader would).
    Describe = 4,
    /// The answer: the node's `QuorumStatus`.
    Described = 5,
}

impl FrameKind {
    fn of(byte: u8) -> Option<FrameKind> {
        Some(match byte {
            0 => FrameKind::Raft,
            1 => FrameKind::Fetch,
            2 => FrameKind::Reply,
            3 => FrameKind::Propose,
            4 => FrameKind::Describe,
            5 => FrameKind::Described,
            _ => return None,
        })
    }
}

/// Frames `body` as `kind`.
pub fn frame(kind: FrameKind, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + body.len());
    out.extend_from_slice(&(body.len() as u32 + 1).to_be_bytes());
    out.push(kind as u8);
    out.extend_from_slice(body);
    out
}

/// Encodes a Raft message as one frame.
pub fn encode_frame(m: &Message) -> Vec<u8> {
    let body = m
        .write_to_bytes()
        .expect("raft protobuf messages always encode");
    frame(FrameKind::Raft, &body)
}

/// Reads one frame's body into `body` and returns its kind, refusing one larger than
/// [`FRAME_BYTES_MAX`]. `Ok(None)`: the peer closed or the read failed.
pub async fn read_frame<S: futures_lite::AsyncRead + Unpin>(
    stream: &mut S,
    body: &mut Vec<u8>,
) -> Result<Option<FrameKind>, FrameRefused> {
    let mut header = [0u8; 5];
    if stream.read_exact(&mut header).await.is_err() {
        return Ok(None);
    }
    let n = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    if n > FRAME_BYTES_MAX {
        return Err(FrameRefused::TooLarge(n));
    }
    let kind = FrameKind::of(header[4])
        .filter(|_| n > 0)
        .ok_or(FrameRefused::UnknownKind(header[4]))?;
    body.resize(n - 1, 0);
    if stream.read_exact(body).await.is_err() {
        return Ok(None);
    }
    Ok(Some(kind))
}

/// Why an incoming frame was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameRefused {
    #[error("frame of {0} bytes is larger than {FRAME_BYTES_MAX}")]
    TooLarge(usize),
    #[error("not a raft message")]
    Undecodable,
    #[error("message for raft id {to}, this node is {me}")]
    WrongTarget { to: u64, me: u64 },
    #[error("message from raft id {0}, which is not a voter")]
    UnknownSender(u64),
    #[error("frame of unknown kind {0}")]
    UnknownKind(u8),
    #[error("a {0:?} frame is not expected here")]
    Unexpected(FrameKind),
    #[error("{0:?} frame does not decode: {1}")]
    BadBody(FrameKind, String),
}

/// Checks a received message body against this node and the voters.
pub fn decode_message(body: &[u8], me: u64, voters: &[u64]) -> Result<Message, FrameRefused> {
    let m = Message::parse_from_bytes(body).map_err(|_| FrameRefused::Undecodable)?;
    if m.to != me {
        return Err(FrameRefused::WrongTarget { to: m.to, me });
    }
    if !voters.contains(&m.from) || m.from == me {
        return Err(FrameRefused::UnknownSender(m.from));
    }
    Ok(m)
}

/// Where the CONTROLLER listener hands what it receives.
#[derive(Clone)]
pub struct Inbound {
    /// This node's Raft id and the voters' (messages from others are
    /// refused).
    pub me: u64,
    pub voters: Rc<Vec<u64>>,
    /// Raft messages, to the member.
    pub raft: Rc<LocalSender<Message>>,
    /// Records proposed by observers, to the member.
    pub proposals: Rc<LocalSender<Vec<u8>>>,
    /// Answers observers' fetches.
    pub observers: Rc<super::observer::Server>,
}

/// Accepts peers and observers on `addr`.
pub fn listen(addr: SocketAddr, inbound: Inbound) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    glommio::spawn_local(async move {
        loop {
            let stream = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    warn!("controller listener: accept failed: {e}");
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let peer = stream.peer_addr().ok();
            glommio::spawn_local(read_peer(stream, peer, inbound.clone())).detach();
        }
    })
    .detach();
    Ok(())
}

async fn read_peer(mut stream: TcpStream, peer: Option<SocketAddr>, inbound: Inbound) {
    let _ = stream.set_nodelay(true);
    let mut body = Vec::new();
    loop {
        let refused = match read_frame(&mut stream, &mut body).await {
            Ok(None) => return,
            Err(e) => e,
            Ok(Some(FrameKind::Raft)) => match decode_message(&body, inbound.me, &inbound.voters) {
                Ok(m) => {
                    if inbound.raft.send(m).await.is_err() {
                        return;
                    }
                    continue;
                }
                Err(e) => e,
            },
            Ok(Some(FrameKind::Propose)) => {
                match super::image::MetadataRecord::decode(&body) {
                    Some(_) => {
                        // Dropped when the queue is full: the proposer
                        // proposes again when it sees no effect.
                        let _ = inbound.proposals.try_send(std::mem::take(&mut body));
                        continue;
                    }
                    None => FrameRefused::BadBody(
                        FrameKind::Propose,
                        "not a metadata record".to_string(),
                    ),
                }
            }
            Ok(Some(FrameKind::Fetch)) => match serde_json::from_slice(&body) {
                Ok(request) => {
                    let reply = inbound.observers.answer(request).await;
                    let out = frame(
                        FrameKind::Reply,
                        &serde_json::to_vec(&reply).expect("replies serialize"),
                    );
                    if stream.write_all(&out).await.is_err() || stream.flush().await.is_err() {
                        return;
                    }
                    continue;
                }
                Err(e) => FrameRefused::BadBody(FrameKind::Fetch, e.to_string()),
            },
            Ok(Some(FrameKind::Describe)) => {
                let status = inbound
                    .observers
                    .status
                    .read()
                    .expect("status lock")
                    .clone();
                let out = frame(
                    FrameKind::Described,
                    &serde_json::to_vec(&status).expect("statuses serialize"),
                );
                if stream.write_all(&out).await.is_err() || stream.flush().await.is_err() {
                    return;
                }
                continue;
            }
            Ok(Some(kind)) => FrameRefused::Unexpected(kind),
        };
        warn!(peer = ?peer, "controller listener: closing a connection: {refused}");
        return;
    }
}

/// The sending half towards one peer voter.
pub struct Peer {
    queue: LocalSender<Message>,
}

impl Peer {
    /// Starts the task that connects to `addr` and sends what is queued.
    pub fn start(node_id: i32, addr: SocketAddr, connect_timeout: Duration) -> Peer {
        let (queue, rx) = local_channel::new_bounded(PEER_QUEUE);
        glommio::spawn_local(send_loop(node_id, addr, connect_timeout, rx)).detach();
        Peer { queue }
    }

    /// Queues a message; drops it when the queue is full (the peer is slow
    /// or unreachable; Raft sends again).
    pub fn send(&self, m: Message) {
        if self.queue.try_send(m).is_err() {
            debug!("peer queue full; message dropped");
        }
    }
}

async fn send_loop(
    node_id: i32,
    addr: SocketAddr,
    connect_timeout: Duration,
    rx: LocalReceiver<Message>,
) {
    let mut stream: Option<TcpStream> = None;
    let mut backoff = BACKOFF_MIN;
    let mut retry_at = Instant::now();
    let mut unreachable_since: Option<Instant> = None;
    let mut frame = Vec::new();
    while let Some(m) = rx.recv().await {
        if stream.is_none() {
            if Instant::now() < retry_at {
                continue;
            }
            match TcpStream::connect_timeout(addr, connect_timeout).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    if let Some(since) = unreachable_since.take() {
                        info!(
                            voter = node_id,
                            %addr,
                            after_ms = since.elapsed().as_millis() as u64,
                            "reached voter again"
                        );
                    }
                    backoff = BACKOFF_MIN;
                    stream = Some(s);
                }
                Err(e) => {
                    if unreachable_since.is_none() {
                        warn!(voter = node_id, %addr, "cannot reach voter: {e}; retrying");
                        unreachable_since = Some(Instant::now());
                    }
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
        }
        frame.clear();
        frame.extend_from_slice(&encode_frame(&m));
        // Send what else is queued in the same write.
        while frame.len() < (1 << 20) {
            match futures_lite::future::poll_once(rx.recv()).await {
                Some(Some(next)) => frame.extend_from_slice(&encode_frame(&next)),
                _ => break,
            }
        }
        let s = stream.as_mut().expect("connected above");
        let written = async {
            s.write_all(&frame).await?;
            s.flush().await
        };
        if let Err(e) = written.await {
            debug!(voter = node_id, %addr, "send failed: {e}; reconnecting");
            stream = None;
            unreachable_since.get_or_insert_with(Instant::now);
            retry_at = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_strangers_are_refused() {
        let m = Message {
            from: 2,
            to: 1,
            term: 7,
            ..Default::default()
        };
        let frame = encode_frame(&m);
        assert_eq!(
            u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
            frame.len() - 4
        );
        assert_eq!(frame[4], FrameKind::Raft as u8);
        let body = &frame[5..];
        let back = decode_message(body, 1, &[1, 2, 3]).unwrap();
        assert_eq!(back.term, 7);
        assert_eq!(
            decode_message(body, 3, &[1, 2, 3]).unwrap_err(),
            FrameRefused::WrongTarget { to: 1, me: 3 }
        );
        assert_eq!(
            decode_message(body, 1, &[1, 3]).unwrap_err(),
            FrameRefused::UnknownSender(2)
        );
        assert_eq!(
            decode_message(&[0xff, 0xff, 0xff], 1, &[1, 2]).unwrap_err(),
            FrameRefused::Undecodable
        );
    }
}
