//! The write side of a connection. Responses are lists of buffers (a Fetch
//! response references cached record batches); they go out with one
//! `sendmsg` over all of them, so payload bytes are copied once, by the
//! kernel. Responses that are already complete when the writer gets to them
//! share that `sendmsg` (pipelined Produce acknowledgements, for example).
//!
//! glommio 0.9's `write_vectored` writes only its first buffer, so the
//! gather-send is made on the socket itself with MSG_DONTWAIT. When the
//! socket buffer is full it waits the glommio way: an awaited write of the
//! next unsent bytes, which parks until the socket is writable.
//!
//! The reading and the writing task each have their own handle to the
//! socket and neither locks anything to use it: the reader owns the
//! stream; the writer sends on the socket's descriptor, and only when the
//! socket buffer is full does it make itself a duplicate descriptor to
//! wait on (an idle connection keeps one descriptor, not two).

use std::io::{self, IoSlice};
use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use bytes::Bytes;
use futures_lite::io::AsyncWriteExt;
use glommio::net::TcpStream;

/// Buffers per `sendmsg` (Linux's IOV_MAX is 1024).
const IOVECS_PER_SEND_MAX: usize = 1024;

/// Bytes of completed responses gathered before they are sent.
pub const GATHER_BYTES_MAX: usize = 4 << 20;

/// Responses gathered before they are sent, in request order.
#[derive(Default)]
pub struct Gathered {
    pieces: Vec<Bytes>,
    bytes: usize,
}

impl Gathered {
    pub fn push(&mut self, response: Vec<Bytes>) {
        for piece in response {
            if !piece.is_empty() {
                self.bytes += piece.len();
                self.pieces.push(piece);
            }
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }
}

/// The write half of a connection: sends gathered responses.
pub struct ResponseWriter {
    /// The connection's socket; see [`ResponseWriter::new`].
    fd: RawFd,
    /// A duplicate of `fd` to wait on when the socket is full, made the
    /// first time it is.
    waiter: Option<TcpStream>,
}

impl ResponseWriter {
    /// A writer on the connection socket `fd`. The connection must keep
    /// the socket open for as long as this writer is used: `serve_connection`
    /// owns the stream and awaits (or, if it is dropped, first cancels) the
    /// writer's task before the stream is dropped.
    pub fn new(fd: RawFd) -> Self {
        ResponseWriter { fd, waiter: None }
    }

    /// Sends everything in `gathered` (which is left empty).
    pub async fn send(&mut self, gathered: &mut Gathered) -> io::Result<()> {
        let mut next = 0; // first piece not completely sent
        let mut offset = 0; // bytes of pieces[next] already sent
        let pieces = &gathered.pieces;
        while next < pieces.len() {
            let end = (next + IOVECS_PER_SEND_MAX).min(pieces.len());
            let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(end - next);
            slices.push(IoSlice::new(&pieces[next][offset..]));
            slices.extend(pieces[next + 1..end].iter().map(|p| IoSlice::new(p)));
            let sent = match self.send_now(&slices) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let waiter = match &mut self.waiter {
                        Some(w) => w,
                        None => self
                            .waiter
                            .insert(adopt(self.borrowed().try_clone_to_owned()?)),
                    };
                    waiter.write(&pieces[next][offset..]).await?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if sent == 0 {
                // Pieces are never empty, so nothing sent means the peer
                // is gone.
                return Err(io::ErrorKind::WriteZero.into());
            }
            advance(pieces, &mut next, &mut offset, sent);
        }
        gathered.pieces.clear();
        gathered.bytes = 0;
        Ok(())
    }

    /// One non-blocking gather-send.
    fn send_now(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        let fd = self.borrowed();
        let socket = socket2::SockRef::from(&fd);
        socket.send_vectored_with_flags(slices, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    }

    /// Shuts the socket down for writing once every response is out.
    pub fn close(&mut self) -> io::Result<()> {
        socket2::SockRef::from(&self.borrowed()).shutdown(std::net::Shutdown::Write)
    }

    #[allow(unsafe_code)]
    fn borrowed(&self) -> BorrowedFd<'_> {
        // SAFETY: `new`'s contract: the connection keeps the socket open
        // while this writer is in use. The descriptor is only borrowed for
        // socket calls (sendmsg, dup, shutdown), never closed here.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }
}

/// Bytes handed to a TLS session at once (four full TLS records).
const TLS_CHUNK_BYTES: usize = 64 << 10;

/// The write half of a TLS connection.
pub type TlsWriteHalf = futures_lite::io::WriteHalf<futures_rustls::server::TlsStream<TcpStream>>;

/// Where a connection's responses go: straight onto the socket (one
/// gather-send, the payload copied once, by the kernel), or through its TLS
/// session (which encrypts a copy).
pub enum Sink {
    Socket(ResponseWriter),
    Tls(TlsWriteHalf),
}

impl Sink {
    /// Sends everything in `gathered` (which is left empty).
    pub async fn send(&mut self, gathered: &mut Gathered) -> io::Result<()> {
        match self {
            Sink::Socket(w) => w.send(gathered).await,
            Sink::Tls(w) => {
                // Pieces are gathered into chunks before they reach the
                // session, which makes TLS records (and socket writes) of
                // each write it is given: small pieces one by one would
                // cost a record and a syscall each.
                let mut chunk: Vec<u8> = Vec::with_capacity(TLS_CHUNK_BYTES.min(gathered.bytes));
                for piece in &gathered.pieces {
                    if !chunk.is_empty() && chunk.len() + piece.len() > TLS_CHUNK_BYTES {
                        w.write_all(&chunk).await?;
                        chunk.clear();
                    }
                    if piece.len() >= TLS_CHUNK_BYTES {
                        w.write_all(piece).await?;
                    } else {
                        chunk.extend_from_slice(piece);
                    }
                }
                if !chunk.is_empty() {
                    w.write_all(&chunk).await?;
                }
                w.flush().await?;
                gathered.pieces.clear();
                gathered.bytes = 0;
                Ok(())
            }
        }
    }

    /// Ends the write side once every response is out (a TLS close_notify
    /// first).
    pub async fn close(&mut self) -> io::Result<()> {
        match self {
            Sink::Socket(w) => w.close(),
            Sink::Tls(w) => w.close().await,
        }
    }
}

/// A glommio stream over a connected socket descriptor this takes over.
#[allow(unsafe_code)]
fn adopt(fd: OwnedFd) -> TcpStream {
    // SAFETY: `fd` is an open TCP socket descriptor owned by nobody else
    // (a fresh duplicate); the stream takes it over and closes it on drop.
    unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) }
}

/// Moves the cursor (`next`, `offset`) forward by `n` bytes.
fn advance(pieces: &[Bytes], next: &mut usize, offset: &mut usize, mut n: usize) {
    while n > 0 && *next < pieces.len() {
        let left = pieces[*next].len() - *offset;
        if n < left {
            *offset += n;
            return;
        }
        n -= left;
        *next += 1;
        *offset = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_walks_across_pieces() {
        let pieces: Vec<Bytes> = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"de"),
            Bytes::from_static(b"fghij"),
        ];
        let (mut next, mut offset) = (0, 0);
        advance(&pieces, &mut next, &mut offset, 2);
        assert_eq!((next, offset), (0, 2));
        advance(&pieces, &mut next, &mut offset, 1);
        assert_eq!((next, offset), (1, 0));
        advance(&pieces, &mut next, &mut offset, 4);
        assert_eq!((next, offset), (2, 2));
        advance(&pieces, &mut next, &mut offset, 3);
        assert_eq!((next, offset), (3, 0));
    }

    #[test]
    fn gathered_skips_empty_pieces_and_counts_bytes() {
        let mut g = Gathered::default();
        g.push(vec![Bytes::new(), Bytes::from_static(b"xy")]);
        g.push(vec![Bytes::from_static(b"z")]);
        assert_eq!(g.bytes(), 3);
        assert_eq!(g.pieces.len(), 2);
    }
}
