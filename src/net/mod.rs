//! Listeners and connections. Every shard accepts on the shared listener
//! (SO_REUSEPORT spreads connections over shards); in per-shard mode shard
//! i also accepts on its own port.
//!
//! A connection is two tasks. The reader takes size-prefixed frames off
//! the socket (refusing any over socket.request.max.bytes before allocating
//! it), waits for the shard's request-memory budget, parses the header and
//! starts the request's handler as its own task. The writer awaits those
//! tasks in request order and writes each response, so responses leave in
//! request order while requests are worked on concurrently. At most
//! `max_in_flight_per_connection` requests are outstanding; past that, or
//! when the shard's budget is spent, the reader stops reading the socket.

mod frames;
mod writer;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::{TcpListener, TcpStream};
use glommio::Task;
use tracing::{debug, warn};

use crate::handler::Response;
use crate::protocol::frame::{parse_request, Parsed};
use crate::protocol::FrameError;
use crate::router;
use crate::shard::Shard;
use crate::storage::waiters::FifoSpace;
use frames::{FrameReader, ReadError};
use writer::{Gathered, ResponseWriter, GATHER_BYTES_MAX};

/// Resolves once the shard starts shutting down.
pub async fn until_shutdown(shard: &Shard) {
    shard.shutdown.wait().await
}

/// Binds `addr` on this shard (SO_REUSEPORT) and accepts until shutdown.
pub fn listen(shard: Rc<Shard>, addr: SocketAddr) -> std::io::Result<Task<()>> {
    let listener = TcpListener::bind(addr)?;
    Ok(glommio::spawn_local(async move {
        loop {
            let accepted =
                futures_lite::future::or(async { Some(listener.accept().await) }, async {
                    until_shutdown(&shard).await;
                    None
                })
                .await;
            let stream = match accepted {
                None => return,
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    warn!("accept on {addr}: {e}");
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            if shard.connections.get() >= shard.config.max_connections {
                warn!(%peer, "max.connections reached; closing the new connection");
                continue;
            }
            shard.connections.set(shard.connections.get() + 1);
            let s = shard.clone();
            glommio::spawn_local(async move {
                serve_connection(&s, stream, &peer).await;
                s.connections.set(s.connections.get() - 1);
            })
            .detach();
        }
    }))
}

/// A request being worked on, in request order: its handler task and the
/// budget it holds until its response is written (or it is dropped).
struct InFlight {
    task: Task<Result<Option<Response>, FrameError>>,
    _budget: Budget,
    api: &'static str,
}

/// Request-memory budget held by one request; returned on drop.
pub struct Budget {
    space: Rc<FifoSpace>,
    units: u64,
}

impl Drop for Budget {
    fn drop(&mut self) {
        self.space.release(self.units);
    }
}

async fn serve_connection(shard: &Rc<Shard>, stream: TcpStream, peer: &str) {
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, "set_nodelay: {e}");
    }
    debug!(%peer, "connection opened");
    // Each half owns its handle to the socket: no lock between them.
    let out = match ResponseWriter::for_stream(&stream) {
        Ok(out) => out,
        Err(e) => {
            warn!(%peer, "closing connection: duplicating the socket: {e}");
            return;
        }
    };
    let (tx, rx) = local_channel::new_bounded(shard.config.max_in_flight_per_connection);
    let peer_w = peer.to_string();
    let writer = glommio::spawn_local(async move { write_loop(out, rx, &peer_w).await });
    read_loop(shard, FrameReader::new(stream), tx, peer).await;
    writer.await;
    debug!(%peer, "connection closed");
}

async fn read_loop<R: futures_lite::AsyncRead + Unpin>(
    shard: &Rc<Shard>,
    mut frames: FrameReader<R>,
    tx: LocalSender<InFlight>,
    peer: &str,
) {
    let max = shard.config.socket_request_max_bytes;
    loop {
        let next = futures_lite::future::or(
            async { Some(frames.next(max, &shard.request_budget).await) },
            async {
                until_shutdown(shard).await;
                None
            },
        )
        .await;
        let (frame, budget) = match next {
            None => return,
            Some(Ok(Some(f))) => f,
            Some(Ok(None)) => return,
            Some(Err(ReadError::Io(e))) => {
                debug!(%peer, "read: {e}");
                return;
            }
            Some(Err(e)) => {
                warn!(%peer, "closing connection: {e}");
                return;
            }
        };
        let (task, api) = match parse_request(frame, router::APIS) {
            Ok(Parsed::Request(spec, req)) => {
                let s = shard.clone();
                (
                    glommio::spawn_local(async move { router::dispatch(&s, req).await }),
                    spec.name,
                )
            }
            Ok(Parsed::ApiVersionsTooNew { correlation_id }) => (
                glommio::spawn_local(async move { router::api_versions_too_new(correlation_id) }),
                "ApiVersions",
            ),
            Err(e) => {
                warn!(%peer, "closing connection: {e}");
                return;
            }
        };
        let item = InFlight {
            task,
            _budget: budget,
            api,
        };
        if tx.send(item).await.is_err() {
            return;
        }
    }
}

async fn write_loop(mut out: ResponseWriter, rx: LocalReceiver<InFlight>, peer: &str) {
    let mut gathered = Gathered::default();
    // Requests whose responses are gathered but not yet sent: they keep
    // their budget until the bytes are out.
    let mut sending: Vec<InFlight> = Vec::new();
    let mut next: Option<InFlight> = None;
    let mut closing = false;
    while !closing {
        let mut item = match next.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => break,
            },
        };
        let mut result = (&mut item.task).await;
        loop {
            match result {
                Ok(Some(pieces)) => gathered.push(pieces),
                Ok(None) => {}
                Err(e) => {
                    warn!(%peer, api = item.api, "closing connection: {e}");
                    closing = true;
                }
            }
            sending.push(item);
            if closing || gathered.bytes() >= GATHER_BYTES_MAX {
                break;
            }
            // Gather the responses that are already complete.
            let Some(Some(mut queued)) = futures_lite::future::poll_once(rx.recv()).await else {
                break;
            };
            match futures_lite::future::poll_once(&mut queued.task).await {
                Some(r) => {
                    result = r;
                    item = queued;
                }
                None => {
                    next = Some(queued);
                    break;
                }
            }
        }
        if !gathered.is_empty() {
            if let Err(e) = out.send(&mut gathered).await {
                debug!(%peer, "write: {e}");
                break;
            }
        }
        sending.clear();
    }
    // Dropping the receiver drops the requests still queued (cancelling
    // their tasks, returning their budget) and fails the reader's next send.
    drop(next);
    drop(rx);
    let _ = out.close().await;
}
