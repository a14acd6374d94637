//! Size-prefixed response frames read into one reused buffer. The size
//! prefix is read and bounded by shardlog-wire's frame module; this file
//! adds the socket reads and the buffer management.

use futures_lite::{AsyncRead, AsyncReadExt};
use shardlog_wire::frame::{frame_size, SIZE_PREFIX_BYTES};

/// The largest response frame accepted (Kafka's default
/// `socket.request.max.bytes` plus room for a fetch at `fetch.max.bytes`).
pub const FRAME_BYTES_MAX: usize = 128 << 20;
const READ_CHUNK_BYTES: usize = 256 << 10;

/// Reads frames from a stream into a buffer that is allocated once and
/// grows only for a frame larger than any before it. Several small frames
/// (produce responses) usually arrive in one read.
///
/// The buffer is a plain `Vec` with a window of unread bytes rather than a
/// `BytesMut`: reads go straight into bytes initialised once, where a
/// `BytesMut` would have to zero its spare room before every read (safe code
/// cannot read into uninitialised memory).
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameReader {
    pub fn new() -> Self {
        FrameReader {
            buf: vec![0; READ_CHUNK_BYTES],
            start: 0,
            end: 0,
        }
    }

    /// Moves the unread bytes to the front of the buffer.
    fn compact(&mut self) {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }

    /// The next frame's body (without its size prefix). Errors on EOF, a
    /// read error, or a frame size that is negative or over
    /// [`FRAME_BYTES_MAX`].
    pub async fn next<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> std::io::Result<&[u8]> {
        loop {
            let size =
                frame_size(&self.buf[self.start..self.end], FRAME_BYTES_MAX).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("response {e}"))
                })?;
            if let Some(size) = size {
                let total = SIZE_PREFIX_BYTES + size;
                if self.end - self.start >= total {
                    let body = self.start + SIZE_PREFIX_BYTES..self.start + total;
                    self.start += total;
                    if self.start == self.end {
                        self.start = 0;
                        self.end = 0;
                    }
                    return Ok(&self.buf[body]);
                }
                // Make room for the rest of this frame.
                if self.start + total > self.buf.len() {
                    self.compact();
                    if total > self.buf.len() {
                        self.buf.resize(total, 0);
                    }
                }
            } else if self.start > 0 && self.buf.len() - self.start < SIZE_PREFIX_BYTES {
                self.compact();
            }
            if self.end == self.buf.len() {
                self.compact();
            }
            let n = r.read(&mut self.buf[self.end..]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.end += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its bytes a few at a time.
    struct Trickle(Vec<u8>, usize);

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let step = self.1;
            let n = step.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            std::task::Poll::Ready(Ok(n))
        }
    }

    // Proves frames come out whole and in order however the bytes arrive,
    // including frames larger than the initial buffer, and EOF is an error.
    #[test]
    fn frames_survive_any_split() {
        let sizes = [0usize, 1, 5, 300_000, 17, 600_000, 3];
        let mut wire = Vec::new();
        for (i, &s) in sizes.iter().enumerate() {
            wire.extend_from_slice(&(s as i32).to_be_bytes());
            wire.extend(std::iter::repeat_n(i as u8, s));
        }
        for step in [1usize, 7, 4096, 1 << 20] {
            let mut r = Trickle(wire.clone(), step);
            let mut fr = FrameReader::new();
            futures_lite::future::block_on(async {
                for (i, &s) in sizes.iter().enumerate() {
                    let f = fr.next(&mut r).await.unwrap();
                    assert_eq!(f.len(), s);
                    assert!(f.iter().all(|&b| b == i as u8));
                }
                assert!(fr.next(&mut r).await.is_err());
            });
        }
    }

    // Proves a negative or oversized size prefix is an error at once,
    // before any body bytes are waited for.
    #[test]
    fn bad_sizes_fail_at_once() {
        for size in [-1i32, FRAME_BYTES_MAX as i32 + 1] {
            let mut r = Trickle(size.to_be_bytes().to_vec(), 4);
            let mut fr = FrameReader::new();
            let err = futures_lite::future::block_on(fr.next(&mut r)).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{size}");
        }
    }
}
