//! Size-prefixed request frames off a socket, through one read buffer: a
//! frame's size is checked against socket.request.max.bytes before any
//! memory is set aside for it, and the frame is handed out as a `Bytes`
//! slice of the buffer (no copy). The framing itself (size checks, cutting
//! frames out) is the wire crate's; this module does the reading.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncReadExt};
use shardlog_wire::frame::{frame_size, split_frame, FrameError, SIZE_PREFIX_BYTES};

use super::Budget;
use crate::storage::waiters::FifoSpace;

/// Bytes asked of the socket per read when frames are small.
const READ_CHUNK: usize = 64 << 10;

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

pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::new(),
        }
    }

    /// The next frame (without its size prefix) and the budget it holds;
    /// `None` at a clean end of stream.
    pub async fn next(
        &mut self,
        max: usize,
        budget: &Rc<FifoSpace>,
    ) -> Result<Option<(Bytes, Budget)>, ReadError> {
        if !self.fill(SIZE_PREFIX_BYTES).await? {
            return if self.buf.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Truncated)
            };
        }
        let size = frame_size(&self.buf, max)?.expect("the size prefix is buffered");
        let units = budget.acquire(size as u64).await.unwrap_or(0);
        let held = Budget {
            space: budget.clone(),
            units,
        };
        if !self.fill(SIZE_PREFIX_BYTES + size).await? {
            return Err(ReadError::Truncated);
        }
        let frame = split_frame(&mut self.buf, max)?.expect("the whole frame is buffered");
        Ok(Some((frame, held)))
    }

    /// Reads until at least `want` bytes are buffered; false at end of
    /// stream.
    async fn fill(&mut self, want: usize) -> Result<bool, ReadError> {
        while self.buf.len() < want {
            let have = self.buf.len();
            let ask = (want - have).max(READ_CHUNK);
            self.buf.reserve(ask);
            self.buf.resize(have + ask, 0);
            let n = match self.inner.read(&mut self.buf[have..]).await {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(have);
                    return Err(e.into());
                }
            };
            self.buf.truncate(have + n);
            if n == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
