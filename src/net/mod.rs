//! Listeners and connections. Every shard accepts on the shared listener
//! (SO_REUSEPORT spreads connections over shards); in per-shard mode shard
//! i also accepts on its own port.
//!
//! A connection is two tasks. The reader takes size-prefixed frames off
//! the socket (see [`frames`]: memory and request budget are taken only
//! for bytes that arrive), parses the header and starts the request's
//! handler as its own task. The writer awaits those tasks in request order
//! and writes each response, so responses leave in request order while
//! requests are worked on concurrently. At most
//! `shardlog.max.in.flight.requests.per.connection` requests are
//! outstanding; past that, or when the shard's request budget is spent,
//! the reader stops reading the socket. A response keeps its share of the
//! shard's response budget until it is written, so a peer that does not
//! read its socket holds at most its connection's response limit.
//!
//! Limits: `max.connections` and `max.connections.per.ip` across the broker
//! ([`quotas`]), `connections.max.idle.ms` and
//! `shardlog.request.read.timeout.ms` per connection ([`conn`]).

mod conn;
mod frames;
pub mod quotas;
mod writer;

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::{TcpListener, TcpStream};
use glommio::Task;
use tracing::{debug, info, warn};

use crate::handler::Response;
use crate::protocol::frame::{parse_request, Parsed};
use crate::protocol::{FrameError, RequestFrame};
use crate::router::{self, RequestContext};
use crate::security::authz::ConnAuth;
use crate::security::{Gate, SaslRefusal, SaslSession};
use crate::shard::budget::{Account, Hold};
use crate::shard::Shard;
use crate::stats::{Outcome, RequestTimes};
pub use conn::keep_freed_memory_for_reuse;
use conn::{Conn, Connections};
use frames::{FrameReader, ReadError};
use kafka_protocol::messages::ApiKey;
use quotas::ConnectionQuotas;
use writer::{Gathered, ResponseWriter, Sink, GATHER_BYTES_MAX};

/// Accept errors for running out of descriptors back off from this...
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// ...doubling up to this.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Accept failures are logged at most once per this interval, with a
/// count.
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How often a listener that reached max.connections looks again.
const MAX_CONNECTIONS_RECHECK: Duration = Duration::from_millis(20);

/// Resolves once the shard starts shutting down.
pub async fn until_shutdown(shard: &Shard) {
    shard.shutdown.wait().await
}

/// A shard's listeners and the sweeper of its connections.
pub struct Network {
    tasks: Vec<Task<()>>,
}

impl Network {
    /// Resolves once every listener has stopped accepting (at shutdown).
    pub async fn stopped(self) {
        for t in self.tasks {
            t.await;
        }
    }
}

/// Binds `addrs` on this shard (SO_REUSEPORT), each for the client
/// listener of its index, and accepts until shutdown.
pub fn start(
    shard: &Rc<Shard>,
    addrs: &[(SocketAddr, usize)],
    quotas: Arc<ConnectionQuotas>,
) -> io::Result<Network> {
    let connections = Rc::new(Connections::default());
    let mut tasks = Vec::with_capacity(addrs.len() + 1);
    for &(addr, listener_index) in addrs {
        let listener = TcpListener::bind(addr).map_err(|e| {
            let e: io::Error = e.into();
            io::Error::new(e.kind(), format!("listening on {addr}: {e}"))
        })?;
        tasks.push(glommio::spawn_local(accept_loop(
            shard.clone(),
            listener,
            addr,
            listener_index,
            quotas.clone(),
            connections.clone(),
        )));
    }
    glommio::spawn_local(connections.sweep(shard.clone())).detach();
    Ok(Network { tasks })
}

/// Accept failures since they were last logged.
struct AcceptErrors {
    count: u64,
    logged_at: Option<Instant>,
    backoff: Duration,
}

impl AcceptErrors {
    /// Notes a failure and says how long to wait before accepting again;
    /// logs at most once per interval.
    fn failed(&mut self, addr: SocketAddr, e: &io::Error) -> Duration {
        self.count += 1;
        let now = Instant::now();
        if self
            .logged_at
            .is_none_or(|t| now.saturating_duration_since(t) >= ACCEPT_LOG_INTERVAL)
        {
            warn!(
                %addr,
                failures = self.count,
                "accept failed: {e}; backing off (raise the open-files limit for more connections)"
            );
            self.logged_at = Some(now);
            self.count = 0;
        }
        let out_of_descriptors = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
        self.backoff = if out_of_descriptors {
            (self.backoff * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX)
        } else {
            ACCEPT_BACKOFF_MIN
        };
        self.backoff
    }

    fn succeeded(&mut self) {
        self.backoff = Duration::ZERO;
    }
}

async fn accept_loop(
    shard: Rc<Shard>,
    listener: TcpListener,
    addr: SocketAddr,
    listener_index: usize,
    quotas: Arc<ConnectionQuotas>,
    connections: Rc<Connections>,
) {
    let mut errors = AcceptErrors {
        count: 0,
        logged_at: None,
        backoff: Duration::ZERO,
    };
    let mut refused_logged_at: Option<Instant> = None;
    loop {
        // max.connections: leave new connections in the backlog until one
        // closes, as Kafka's acceptor does.
        while !quotas.has_room() {
            if pause(&shard, MAX_CONNECTIONS_RECHECK).await {
                return;
            }
        }
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            until_shutdown(&shard).await;
            None
        })
        .await;
        let stream = match accepted {
            None => return,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                let e: io::Error = e.into();
                let wait = errors.failed(addr, &e);
                if pause(&shard, wait).await {
                    return;
                }
                continue;
            }
        };
        errors.succeeded();
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        let admitted = match quotas.admit(peer.ip()) {
            Ok(a) => a,
            Err(refused) => {
                let now = Instant::now();
                if refused_logged_at
                    .is_none_or(|t| now.saturating_duration_since(t) >= ACCEPT_LOG_INTERVAL)
                {
                    warn!(%peer, "closing the new connection: {refused}");
                    refused_logged_at = Some(now);
                }
                continue;
            }
        };
        shard.connections.set(shard.connections.get() + 1);
        let s = shard.clone();
        let connections = connections.clone();
        glommio::spawn_local(async move {
            let conn = Conn::new(peer, listener_index);
            let _registered = connections.register(conn.clone());
            serve_connection(&s, stream, conn).await;
            s.connections.set(s.connections.get() - 1);
            drop(admitted);
        })
        .detach();
    }
}

/// Sleeps `d`, or until shutdown (then true).
pub async fn pause(shard: &Shard, d: Duration) -> bool {
    futures_lite::future::or(
        async {
            glommio::timer::sleep(d).await;
            false
        },
        async {
            until_shutdown(shard).await;
            true
        },
    )
    .await
}

/// A request being worked on, in request order: its handler task, the
/// request budget it holds until its response is written (or it is
/// dropped), and the response budget its handler may have taken.
struct InFlight {
    task: Task<Served>,
    _request: Hold,
    _response: Rc<RefCell<Option<Hold>>>,
    api: &'static str,
    key: i16,
}

/// A handler's result and when its request was read, started and answered.
type Served = (Result<Option<Response>, FrameError>, RequestTimes);

/// Runs `handler` as a request read at `read`, noting when it starts and
/// when its result is ready.
async fn timed(
    read: Instant,
    handler: impl std::future::Future<Output = Result<Option<Response>, FrameError>>,
) -> Served {
    let started = Instant::now();
    let result = handler.await;
    let built = Instant::now();
    (
        result,
        RequestTimes {
            read,
            started,
            built,
        },
    )
}

async fn serve_connection(shard: &Rc<Shard>, mut stream: TcpStream, conn: Rc<Conn>) {
    let peer = conn.peer;
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, "set_nodelay: {e}");
    }
    debug!(%peer, "connection opened");
    let tls = shard
        .config
        .client_listeners
        .get(conn.listener)
        .and_then(|l| l.tls.as_ref())
        .map(|t| t.current());
    if let Some(tls) = tls {
        serve_tls_connection(shard, stream, conn, tls).await;
        return;
    }
    // The writer sends on this connection's socket; `stream` outlives it:
    // the writer task is awaited in `serve_streams`, and if this future is
    // dropped first, the task (declared after `stream`) is dropped, and so
    // cancelled, before it.
    let out = Sink::Socket(ResponseWriter::new(stream.as_raw_fd()));
    serve_streams(shard, &mut stream, out, conn, None).await;
    debug!(%peer, "connection closed");
}

/// A connection of a TLS listener: the handshake (bounded by
/// `shardlog.request.read.timeout.ms`), then requests over the session.
async fn serve_tls_connection(
    shard: &Rc<Shard>,
    stream: TcpStream,
    conn: Rc<Conn>,
    tls: Arc<rustls::ServerConfig>,
) {
    let peer = conn.peer;
    let acceptor = futures_rustls::TlsAcceptor::from(tls);
    let limit = Duration::from_millis(shard.config.request_read_timeout_ms);
    let handshake =
        futures_lite::future::or(async { Some(acceptor.accept(stream).await) }, async {
            glommio::timer::sleep(limit).await;
            None
        })
        .await;
    let session = match handshake {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            warn!(%peer, "closing connection: TLS handshake failed: {e}");
            return;
        }
        None => {
            warn!(%peer, "closing connection: no TLS handshake within {limit:?}");
            return;
        }
    };
    // A client certificate names the principal (its subject, mapped by
    // ssl.principal.mapping.rules), as in Kafka.
    let certificate_user = {
        let (_, server) = session.get_ref();
        let subject = server
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|cert| crate::security::principal::subject_dn(cert));
        debug!(
            %peer,
            version = ?server.protocol_version(),
            cipher = ?server.negotiated_cipher_suite().map(|c| c.suite()),
            client_certificate = ?subject,
            "TLS session established"
        );
        match subject {
            None => None,
            Some(None) => {
                warn!(%peer, "closing connection: the client certificate's subject could not be read");
                return;
            }
            Some(Some(dn)) => match shard.config.ssl_principal_mapping.map(&dn) {
                Some(name) => Some(name),
                None => {
                    warn!(%peer, subject = %dn, "closing connection: no ssl.principal.mapping.rules rule applies to the client certificate");
                    return;
                }
            },
        }
    };
    let (mut reader, writer) = futures_lite::io::split(session);
    serve_streams(
        shard,
        &mut reader,
        Sink::Tls(writer),
        conn,
        certificate_user,
    )
    .await;
    debug!(%peer, "connection closed");
}

/// Reads requests from `input` and writes their responses to `out`, in
/// order, until either side ends.
async fn serve_streams(
    shard: &Rc<Shard>,
    input: &mut (dyn futures_lite::AsyncRead + Unpin),
    out: Sink,
    conn: Rc<Conn>,
    certificate_user: Option<String>,
) {
    let (tx, rx) = local_channel::new_bounded(shard.config.max_in_flight_per_connection);
    let writer = glommio::spawn_local(write_loop(shard.clone(), out, rx, conn.clone()));
    let requests = shard.request_budget.account(u64::MAX);
    let responses = Rc::new(
        shard
            .response_budget
            .account(shard.config.connection_response_bytes_max as u64),
    );
    let frames = FrameReader::new(input, conn.clone(), requests);
    if read_loop(shard, frames, tx, &conn, responses, certificate_user).await == ReadEnd::PeerGone {
        conn.reader_done.notify();
    }
    writer.await;
}

/// Why a connection stopped reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    /// The peer closed or the socket failed: nobody is left to answer.
    PeerGone,
    /// The broker is shutting down: what was read is still answered.
    Shutdown,
    /// The connection was closed for a fault of its own (bad frame, idle,
    /// too slow); what was read before is still answered.
    Refused,
}

async fn read_loop(
    shard: &Rc<Shard>,
    mut frames: FrameReader<'_>,
    tx: LocalSender<InFlight>,
    conn: &Rc<Conn>,
    responses: Rc<Account>,
    certificate_user: Option<String>,
) -> ReadEnd {
    let peer = conn.peer;
    let max = shard.config.socket_request_max_bytes;
    // On a SASL listener, the exchange comes first.
    let mut sasl = shard
        .config
        .client_listeners
        .get(conn.listener)
        .and_then(|l| l.sasl.clone())
        .map(SaslSession::new);
    // Who the connection is, for the authorizer: built at its first
    // served request, and again once SASL has named the user (a SASL user
    // comes before a client certificate's).
    let mut auth: Option<Rc<ConnAuth>> = None;
    let mut auth_final = false;
    // After a v0 SaslHandshake the exchange goes on in raw tokens.
    let mut raw_tokens = false;
    loop {
        let next = futures_lite::future::or(async { Some(frames.next(max).await) }, async {
            until_shutdown(shard).await;
            None
        })
        .await;
        let (frame, budget) = match next {
            None => return ReadEnd::Shutdown,
            Some(Ok(Some(f))) => f,
            Some(Ok(None)) => return ReadEnd::PeerGone,
            Some(Err(ReadError::Io(e))) => {
                debug!(%peer, "read: {e}");
                return ReadEnd::PeerGone;
            }
            Some(Err(ReadError::Truncated)) => {
                debug!(%peer, "peer closed in the middle of a request frame");
                return ReadEnd::PeerGone;
            }
            Some(Err(ReadError::Idle)) => {
                info!(%peer, "closing idle connection (connections.max.idle.ms)");
                return ReadEnd::Refused;
            }
            Some(Err(e)) => {
                warn!(%peer, "closing connection: {e}");
                return ReadEnd::Refused;
            }
        };
        let response_hold = Rc::new(RefCell::new(None));
        let read = Instant::now();
        let mut close_after = false;
        if raw_tokens {
            let session = sasl.as_mut().expect("raw tokens follow a SASL handshake");
            let step = crate::handler::sasl::raw_token(session, &frame);
            let (task, close) = sasl_answer(session, step, read, peer, true);
            raw_tokens = !close && !session.is_done();
            conn.in_flight.set(conn.in_flight.get() + 1);
            let item = InFlight {
                task,
                _request: budget,
                _response: response_hold,
                api: "SaslAuthenticate (raw token)",
                key: ApiKey::SaslAuthenticate as i16,
            };
            if tx.send(item).await.is_err() {
                return ReadEnd::PeerGone;
            }
            if close {
                return ReadEnd::Refused;
            }
            continue;
        }
        let (task, api, key) = match parse_request(frame, router::APIS) {
            Ok(Parsed::Request(spec, req))
                if sasl
                    .as_ref()
                    .is_some_and(|s| s.gate(spec.key, read) != Gate::Serve) =>
            {
                let session = sasl.as_mut().expect("checked");
                match session.gate(spec.key, read) {
                    Gate::Close(why) => {
                        warn!(%peer, api = spec.name, "closing connection: {why}");
                        return ReadEnd::Refused;
                    }
                    _ => {
                        let (task, close) = sasl_step(session, &req, read, peer);
                        close_after = close;
                        raw_tokens =
                            !close && req.api_key == ApiKey::SaslHandshake && req.version == 0;
                        (task, spec.name, spec.key as i16)
                    }
                }
            }
            Ok(Parsed::Request(spec, req)) => {
                if !auth_final {
                    let sasl_user = sasl.as_ref().and_then(|s| s.user());
                    auth_final = sasl.is_none() || sasl_user.is_some();
                    auth = Some(Rc::new(
                        ConnAuth::new(
                            shard.config.authorizer.clone(),
                            sasl_user.or(certificate_user.as_deref()),
                            peer.ip().to_string(),
                        )
                        .on_listener(conn.listener),
                    ));
                }
                let ctx = RequestContext {
                    responses: responses.clone(),
                    response_hold: response_hold.clone(),
                    auth: auth.clone().expect("set above"),
                };
                (
                    dispatch_task(shard, read, req, ctx),
                    spec.name,
                    spec.key as i16,
                )
            }
            Ok(Parsed::ApiVersionsTooNew { correlation_id }) => (
                glommio::spawn_local(timed(read, async move {
                    router::api_versions_too_new(correlation_id)
                })),
                "ApiVersions",
                kafka_protocol::messages::ApiKey::ApiVersions as i16,
            ),
            Err(e) => {
                warn!(%peer, "closing connection: {e}");
                return ReadEnd::Refused;
            }
        };
        conn.in_flight.set(conn.in_flight.get() + 1);
        let item = InFlight {
            task,
            _request: budget,
            _response: response_hold,
            api,
            key,
        };
        if tx.send(item).await.is_err() {
            return ReadEnd::PeerGone;
        }
        if close_after {
            return ReadEnd::Refused;
        }
    }
}

/// The task running a request's handler.
fn dispatch_task(
    shard: &Rc<Shard>,
    read: Instant,
    req: RequestFrame,
    ctx: RequestContext,
) -> Task<Served> {
    let s = shard.clone();
    glommio::spawn_local(timed(
        read,
        async move { router::dispatch(&s, req, ctx).await },
    ))
}

/// Runs a step of the connection's SASL exchange; the task answers it
/// (held back `connection.failed.authentication.delay.ms` when the
/// credentials were wrong), and `true` when the connection closes after.
fn sasl_step(
    session: &mut SaslSession,
    req: &RequestFrame,
    read: Instant,
    peer: std::net::SocketAddr,
) -> (Task<Served>, bool) {
    let step = crate::handler::sasl::exchange(session, req);
    let authenticate = req.api_key == ApiKey::SaslAuthenticate;
    sasl_answer(session, step, read, peer, authenticate)
}

/// The task answering a SASL step, held back after wrong credentials, and
/// whether the connection closes after it.
fn sasl_answer(
    session: &SaslSession,
    step: crate::handler::sasl::Step,
    read: Instant,
    peer: std::net::SocketAddr,
    authenticate: bool,
) -> (Task<Served>, bool) {
    let mut delay = Duration::ZERO;
    match &step.refusal {
        Some(SaslRefusal::Failed { mechanism, detail }) => {
            warn!(%peer, mechanism, "SASL authentication failed: {detail}");
            delay = Duration::from_millis(session.failure_delay_ms());
        }
        Some(other) => warn!(%peer, "closing connection: SASL {other:?}"),
        None => {
            if authenticate && session.is_done() {
                if let Some(user) = session.user() {
                    info!(%peer, user, "SASL authentication succeeded");
                }
            }
        }
    }
    let response = step.response;
    let task = glommio::spawn_local(timed(read, async move {
        if !delay.is_zero() {
            glommio::timer::sleep(delay).await;
        }
        response.map(|b| Some(vec![b]))
    }));
    (task, step.refusal.is_some())
}

async fn write_loop(shard: Rc<Shard>, mut out: Sink, rx: LocalReceiver<InFlight>, conn: Rc<Conn>) {
    let peer = conn.peer;
    let stats = &shard.requests;
    let mut gathered = Gathered::default();
    // Requests whose responses are gathered but not yet sent: they keep
    // their budgets until the bytes are out.
    let mut sending: Vec<(InFlight, Outcome, RequestTimes)> = Vec::new();
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
        // Once the peer has gone, work still in progress is only wasted:
        // it is dropped, and its budgets come back at once.
        let finished = futures_lite::future::or(async { Some((&mut item.task).await) }, async {
            conn.reader_done.wait().await;
            None
        })
        .await;
        let Some((mut result, mut times)) = finished else {
            debug!(%peer, "peer gone; dropping the requests in flight");
            stats.finished(item.key, item.api, Outcome::Abandoned, None);
            break;
        };
        loop {
            let outcome = match result {
                Ok(Some(pieces)) => {
                    gathered.push(pieces);
                    Outcome::Answered
                }
                Ok(None) => Outcome::NoResponse,
                Err(e) => {
                    warn!(%peer, api = item.api, "closing connection: {e}");
                    closing = true;
                    Outcome::Refused
                }
            };
            sending.push((item, outcome, times));
            if closing || gathered.bytes() >= GATHER_BYTES_MAX {
                break;
            }
            // Gather the responses that are already complete.
            let Some(Some(mut queued)) = futures_lite::future::poll_once(rx.recv()).await else {
                break;
            };
            match futures_lite::future::poll_once(&mut queued.task).await {
                Some((r, t)) => {
                    result = r;
                    times = t;
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
                for (item, _, _) in sending.drain(..) {
                    stats.finished(item.key, item.api, Outcome::Abandoned, None);
                }
                break;
            }
        }
        conn.in_flight
            .set(conn.in_flight.get().saturating_sub(sending.len()));
        let written = Instant::now();
        conn.last_activity.set(written);
        for (item, outcome, times) in sending.drain(..) {
            let served = (outcome != Outcome::Refused).then_some((times, written));
            stats.finished(item.key, item.api, outcome, served);
        }
    }
    // Dropping the receiver drops the requests still queued (cancelling
    // their tasks, returning their budgets) and fails the reader's next
    // send.
    if let Some(item) = &next {
        stats.finished(item.key, item.api, Outcome::Abandoned, None);
    }
    drop(next);
    drop(rx);
    let _ = out.close().await;
}
