//! Size-prefixed request frames off a socket, with memory taken as bytes
//! arrive.
//!
//! A frame's size is checked against socket.request.max.bytes as soon as
//! its prefix is in, but nothing is set aside for the announced size: the
//! read buffer grows, and the shard's request budget is drawn, only for
//! bytes actually read. So a peer announcing a large frame and trickling it
//! holds what it sent, not what it announced: bytes are held from the
//! budget as they come off the socket, and the next read waits until they
//! are. The framing itself (size checks, cutting frames out) is the wire
//! crate's.
//!
//! Two ways of reading. A connection that is quiet, or sends little, reads
//! through a small buffer inside its task and keeps no read buffer: an
//! idle connection costs a few hundred bytes, and small requests are
//! copied out exactly. Once a read fills that small buffer (a burst, or a
//! large frame), the connection reads straight into a growing read buffer
//! (from 64 KiB to 1 MiB per read) and frames of 16 KiB and more are cut
//! out of it without a copy. The sweeper sends it back to the lean way
//! after a second without bytes ([`super::conn::Verdict::Lean`]).

use std::rc::Rc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use futures_lite::future::or;
use futures_lite::AsyncReadExt;
use shardlog_wire::frame::{frame_size, split_frame, FrameError, SIZE_PREFIX_BYTES};

use super::conn::{Conn, Verdict};
use crate::shard::budget::{Account, Hold};

/// Bytes of the small buffer quiet connections read through.
const LEAN_READ_BYTES: usize = 512;

/// Bytes asked of the socket per read when reading into the read buffer,
/// doubled while reads come back full, up to [`READ_BYTES_MAX`].
const READ_BYTES_MIN: usize = 64 << 10;
const READ_BYTES_MAX: usize = 1 << 20;

/// Frames shorter than this are copied out of the read buffer, so a small
/// request that waits (a long poll) never pins a whole read buffer; longer
/// ones are cut out without a copy.
const COPY_FRAMES_BELOW_BYTES: usize = 16 << 10;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("request frame of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: i64, max: usize },
    #[error("negative request frame size {0}")]
    Negative(i32),
    #[error("connection closed in the middle of a request frame")]
    Truncated,
    #[error("no request for connections.max.idle.ms")]
    Idle,
    #[error("request frame still incomplete after shardlog.request.read.timeout.ms")]
    SlowFrame,
}

impl From<FrameError> for ReadError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Negative(size) => ReadError::Negative(size),
            FrameError::TooLarge { size, max } => ReadError::TooLarge {
                size: size as i64,
                max,
            },
        }
    }
}

/// What a wait for bytes ended with.
enum Woken<T> {
    Done(T),
    Verdict,
}

/// Awaits `f` unless the sweeper wakes the reader first.
async fn woken_by<T>(conn: &Conn, f: impl std::future::Future<Output = T>) -> Woken<T> {
    or(async { Woken::Done(f.await) }, async {
        conn.wake.wait().await;
        Woken::Verdict
    })
    .await
}

pub struct FrameReader<'s> {
    /// The connection's byte stream: the socket, or the TLS session over
    /// it.
    stream: &'s mut (dyn futures_lite::AsyncRead + Unpin),
    conn: Rc<Conn>,
    /// Bytes read and not yet cut into frames.
    buf: BytesMut,
    /// The request budget those bytes hold.
    held: Hold,
    budget: Account,
    /// Reading into `buf` (rather than through the small buffer).
    buffered: bool,
    read_bytes: usize,
}

impl<'s> FrameReader<'s> {
    pub fn new(
        stream: &'s mut (dyn futures_lite::AsyncRead + Unpin),
        conn: Rc<Conn>,
        budget: Account,
    ) -> Self {
        FrameReader {
            stream,
            conn,
            buf: BytesMut::new(),
            held: budget.empty(),
            budget,
            buffered: false,
            read_bytes: READ_BYTES_MIN,
        }
    }

    /// The next frame (without its size prefix) and the request budget it
    /// holds; `None` at a clean end of stream.
    pub async fn next(&mut self, max: usize) -> Result<Option<(Bytes, Hold)>, ReadError> {
        loop {
            if let Some(frame) = self.cut(max)? {
                return Ok(Some(frame));
            }
            let n = if self.buffered {
                self.read_buffered().await?
            } else {
                self.read_lean().await?
            };
            match n {
                Some(0) if self.buf.is_empty() => return Ok(None),
                Some(0) => return Err(ReadError::Truncated),
                Some(_) => {
                    let now = Instant::now();
                    self.conn.last_progress.set(now);
                    if self.conn.frame_started.get().is_none() {
                        self.conn.frame_started.set(Some(now));
                    }
                }
                None => self.obey()?,
            }
        }
    }

    /// Cuts the first frame out of the buffer if it is complete.
    fn cut(&mut self, max: usize) -> Result<Option<(Bytes, Hold)>, ReadError> {
        let Some(size) = frame_size(&self.buf, max)? else {
            return Ok(None);
        };
        if self.buf.len() - SIZE_PREFIX_BYTES < size {
            return Ok(None);
        }
        let frame = if size < COPY_FRAMES_BELOW_BYTES {
            let frame =
                Bytes::copy_from_slice(&self.buf[SIZE_PREFIX_BYTES..SIZE_PREFIX_BYTES + size]);
            self.buf.advance(SIZE_PREFIX_BYTES + size);
            frame
        } else {
            split_frame(&mut self.buf, max)?.expect("the whole frame is buffered")
        };
        let hold = self.held.split_off(size as u64);
        // The size prefix's units go back; the rest stay with what is left.
        self.held.resize_now(self.buf.len() as u64);
        let now = Instant::now();
        self.conn.last_activity.set(now);
        self.conn
            .frame_started
            .set((!self.buf.is_empty()).then_some(now));
        Ok(Some((frame, hold)))
    }

    /// One read through the small buffer: its bytes are then held from the
    /// budget and appended. `None` when the sweeper woke us instead.
    async fn read_lean(&mut self) -> Result<Option<usize>, ReadError> {
        let mut small = [0u8; LEAN_READ_BYTES];
        let n = match woken_by(&self.conn, self.stream.read(&mut small)).await {
            Woken::Done(r) => r?,
            Woken::Verdict => return Ok(None),
        };
        if n > 0 {
            self.buf.extend_from_slice(&small[..n]);
            self.hold_read(n).await?;
            if n == LEAN_READ_BYTES {
                // More is coming: read into a buffer from now on.
                self.set_buffered(true);
            }
        }
        Ok(Some(n))
    }

    /// One read straight into the read buffer; the bytes read are then
    /// held from the budget (waiting for it, with them in hand, if need
    /// be). `None` when the sweeper woke us instead.
    async fn read_buffered(&mut self) -> Result<Option<usize>, ReadError> {
        let ask = self.read_bytes;
        let have = self.buf.len();
        self.buf.reserve(ask);
        self.buf.resize(have + ask, 0);
        let read = woken_by(&self.conn, self.stream.read(&mut self.buf[have..])).await;
        let n = match read {
            Woken::Done(Ok(n)) => n,
            Woken::Done(Err(e)) => {
                self.buf.truncate(have);
                return Err(e.into());
            }
            Woken::Verdict => {
                self.buf.truncate(have);
                return Ok(None);
            }
        };
        self.buf.truncate(have + n);
        self.read_bytes = if n == ask {
            (ask * 2).min(READ_BYTES_MAX)
        } else {
            READ_BYTES_MIN
        };
        self.hold_read(n).await?;
        Ok(Some(n))
    }

    /// Holds `n` bytes just read from the request budget. While waiting
    /// for it, only a verdict to close ends the wait.
    async fn hold_read(&mut self, n: usize) -> Result<(), ReadError> {
        if n == 0 {
            return Ok(());
        }
        let mut acquire = self.budget.acquire(n as u64);
        loop {
            match woken_by(&self.conn, &mut acquire).await {
                Woken::Done(hold) => {
                    self.held.absorb(hold);
                    return Ok(());
                }
                Woken::Verdict => match self.conn.take_verdict() {
                    Some(Verdict::CloseIdle) => return Err(ReadError::Idle),
                    Some(Verdict::CloseSlowFrame) => return Err(ReadError::SlowFrame),
                    // Bytes are in hand and unaccounted: keep the buffer.
                    Some(Verdict::Lean) | None => {}
                },
            }
        }
    }

    /// Carries out the sweeper's verdict.
    fn obey(&mut self) -> Result<(), ReadError> {
        match self.conn.take_verdict() {
            Some(Verdict::CloseIdle) => Err(ReadError::Idle),
            Some(Verdict::CloseSlowFrame) => Err(ReadError::SlowFrame),
            Some(Verdict::Lean) => {
                // Keep only what is buffered, in a buffer of its own size.
                self.buf = BytesMut::from(&self.buf[..]);
                self.set_buffered(false);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn set_buffered(&mut self, buffered: bool) {
        self.buffered = buffered;
        self.read_bytes = READ_BYTES_MIN;
        self.conn.buffered.set(buffered);
    }
}
