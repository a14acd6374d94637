//! The endpoint's HTTP/1.1 server: one request per connection (answered
//! with `Connection: close`), headers parsed by `httparse`, at most
//! [`REQUEST_BYTES_MAX`] of request and [`CONNECTIONS_MAX`] connections at
//! once, each given [`READ_TIMEOUT`] to send its request. Runs on shard 0.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use super::exposition::{self, Caps, Dropped};
use super::{gather, page};
use crate::net::pause;
use crate::shard::Shard;

/// A request (line and headers) larger than this gets 431.
pub const REQUEST_BYTES_MAX: usize = 8 << 10;
/// Connections served at once; more wait in the listen backlog.
pub const CONNECTIONS_MAX: usize = 16;
/// Time a connection has to send its whole request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server keeps between requests.
struct Server {
    shard: Rc<Shard>,
    caps: Caps,
    /// Series the caps left out, summed over scrapes.
    dropped: Cell<Dropped>,
    open: Cell<usize>,
}

/// Serves `listener` on this shard until shutdown.
pub async fn serve(shard: Rc<Shard>, listener: TcpListener, caps: Caps) {
    let addr = listener.local_addr().ok();
    info!(addr = ?addr, "metrics endpoint listening (GET /metrics, /health, /)");
    let server = Rc::new(Server {
        shard,
        caps,
        dropped: Cell::new(Dropped::default()),
        open: Cell::new(0),
    });
    loop {
        while server.open.get() >= CONNECTIONS_MAX {
            if pause(&server.shard, Duration::from_millis(10)).await {
                return;
            }
        }
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            server.shard.shutdown.wait().await;
            None
        })
        .await;
        let stream = match accepted {
            None => return,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                warn!("metrics endpoint: accept failed: {e}");
                if pause(&server.shard, Duration::from_millis(100)).await {
                    return;
                }
                continue;
            }
        };
        server.open.set(server.open.get() + 1);
        let s = server.clone();
        glommio::spawn_local(async move {
            if let Err(e) = s.connection(stream).await {
                debug!("metrics endpoint connection: {e}");
            }
            s.open.set(s.open.get() - 1);
        })
        .detach();
    }
}

/// A parsed request: method and path.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Get { path: String, head: bool },
    Other { method: String },
}

/// Why a request could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum BadRequest {
    TooLarge,
    Malformed(String),
}

/// Parses a request head from `buf`: `Ok(None)` while incomplete.
pub fn parse(buf: &[u8]) -> Result<Option<Request>, BadRequest> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            let method = req.method.unwrap_or_default();
            let path = req.path.unwrap_or("/");
            // The query string does not choose the resource.
            let path = path.split('?').next().unwrap_or(path).to_string();
            Ok(Some(match method {
                "GET" => Request::Get { path, head: false },
                "HEAD" => Request::Get { path, head: true },
                m => Request::Other {
                    method: m.to_string(),
                },
            }))
        }
        Ok(httparse::Status::Partial) if buf.len() >= REQUEST_BYTES_MAX => {
            Err(BadRequest::TooLarge)
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(BadRequest::TooLarge),
        Err(e) => Err(BadRequest::Malformed(e.to_string())),
    }
}

/// An answer: status, content type, body.
struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
    allow: bool,
}

impl Answer {
    fn text(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            allow: false,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

impl Server {
    async fn connection(&self, mut stream: TcpStream) -> io::Result<()> {
        let request =
            futures_lite::future::or(async { Some(read_request(&mut stream).await) }, async {
                glommio::timer::sleep(READ_TIMEOUT).await;
                None
            })
            .await;
        let (answer, head) = match request {
            None => (Answer::text(408, "request not received in time\n"), false),
            Some(Err(e)) => return Err(e),
            Some(Ok(Err(BadRequest::TooLarge))) => {
                (Answer::text(431, "request head too large\n"), false)
            }
            Some(Ok(Err(BadRequest::Malformed(e)))) => {
                (Answer::text(400, format!("bad request: {e}\n")), false)
            }
            Some(Ok(Ok(Request::Other { method }))) => {
                let mut a = Answer::text(405, format!("method {method} not allowed\n"));
                a.allow = true;
                (a, false)
            }
            Some(Ok(Ok(Request::Get { path, head }))) => (self.answer(&path).await, head),
        };
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
            answer.status,
            reason(answer.status),
            answer.content_type,
            answer.body.len()
        );
        if answer.allow {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        if !head {
            out.push_str(&answer.body);
        }
        stream.write_all(out.as_bytes()).await?;
        stream.flush().await?;
        stream.close().await
    }

    async fn answer(&self, path: &str) -> Answer {
        match path {
            "/metrics" => {
                let view = gather::gather(&self.shard).await;
                let (text, dropped) = exposition::encode(&view, self.caps, &self.dropped.get());
                let before = self.dropped.get();
                self.dropped.set(Dropped {
                    topics: before.topics + dropped.topics,
                    partitions: before.partitions + dropped.partitions,
                    groups: before.groups + dropped.groups,
                });
                Answer {
                    status: 200,
                    content_type: exposition::CONTENT_TYPE,
                    body: text,
                    allow: false,
                }
            }
            "/health" => {
                let view = gather::gather(&self.shard).await;
                match view.unhealthy {
                    None => Answer::text(200, "ok\n"),
                    Some(why) => Answer::text(503, format!("unhealthy: {why}\n")),
                }
            }
            "/" | "/index.html" => {
                let view = gather::gather(&self.shard).await;
                Answer {
                    status: 200,
                    content_type: "text/html; charset=utf-8",
                    body: page::render(&view, self.caps),
                    allow: false,
                }
            }
            _ => Answer::text(404, "not found: try /metrics, /health or /\n"),
        }
    }
}

/// Reads until a whole request head has arrived (a body, if any, is not
/// read: GET and HEAD carry none that matters here).
async fn read_request(stream: &mut TcpStream) -> io::Result<Result<Request, BadRequest>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a whole request",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(request) = parse(&buf).transpose() {
            return Ok(request);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves the parser answers whole, partial, oversized and malformed
    // request heads as the server expects.
    #[test]
    fn parses_request_heads() {
        assert_eq!(
            parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Ok(Some(Request::Get {
                path: "/metrics".into(),
                head: false
            }))
        );
        assert_eq!(
            parse(b"HEAD / HTTP/1.0\r\n\r\n"),
            Ok(Some(Request::Get {
                path: "/".into(),
                head: true
            }))
        );
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\nHost"), Ok(None));
        assert_eq!(
            parse(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Ok(Some(Request::Other {
                method: "POST".into()
            }))
        );
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(REQUEST_BYTES_MAX, b'a');
        assert_eq!(parse(&big), Err(BadRequest::TooLarge));
        assert!(matches!(
            parse(b"\x01\x02 / HTTP/1.1\r\n\r\n"),
            Err(BadRequest::Malformed(_))
        ));
    }
}
