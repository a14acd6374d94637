//! The quorum's TCP transport on the CONTROLLER listener: Raft messages
//! (`eraftpb::Message`, protobuf) in frames of a 4-byte big-endian length
//! and the message.
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

/// Encodes a message as one frame.
pub fn encode_frame(m: &Message) -> Vec<u8> {
    let body = m
        .write_to_bytes()
        .expect("raft protobuf messages always encode");
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
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

/// Accepts peers on `addr` and hands their messages to `inbox`.
pub fn listen(
    addr: SocketAddr,
    me: u64,
    voters: Rc<Vec<u64>>,
    inbox: Rc<LocalSender<Message>>,
) -> std::io::Result<()> {
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
            glommio::spawn_local(read_peer(stream, peer, me, voters.clone(), inbox.clone()))
                .detach();
        }
    })
    .detach();
    Ok(())
}

async fn read_peer(
    mut stream: TcpStream,
    peer: Option<SocketAddr>,
    me: u64,
    voters: Rc<Vec<u64>>,
    inbox: Rc<LocalSender<Message>>,
) {
    let _ = stream.set_nodelay(true);
    let mut len = [0u8; 4];
    let mut body = Vec::new();
    loop {
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let n = u32::from_be_bytes(len) as usize;
        let refused = if n > FRAME_BYTES_MAX {
            Some(FrameRefused::TooLarge(n))
        } else {
            body.resize(n, 0);
            if stream.read_exact(&mut body).await.is_err() {
                return;
            }
            match decode_message(&body, me, &voters) {
                Ok(m) => {
                    if inbox.send(m).await.is_err() {
                        return;
                    }
                    None
                }
                Err(e) => Some(e),
            }
        };
        if let Some(e) = refused {
            warn!(peer = ?peer, "controller listener: closing a connection: {e}");
            return;
        }
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
        let back = decode_message(&frame[4..], 1, &[1, 2, 3]).unwrap();
        assert_eq!(back.term, 7);
        assert_eq!(
            decode_message(&frame[4..], 3, &[1, 2, 3]).unwrap_err(),
            FrameRefused::WrongTarget { to: 1, me: 3 }
        );
        assert_eq!(
            decode_message(&frame[4..], 1, &[1, 3]).unwrap_err(),
            FrameRefused::UnknownSender(2)
        );
        assert_eq!(
            decode_message(&[0xff, 0xff, 0xff], 1, &[1, 2]).unwrap_err(),
            FrameRefused::Undecodable
        );
    }
}
