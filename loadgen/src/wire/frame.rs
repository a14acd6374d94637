//! Size-prefixed response frames read into one reused buffer.

use futures_lite::{AsyncRead, AsyncReadExt};

/// The largest response frame accepted (Kafka's default
/// `socket.request.max.bytes` plus room for a fetch at `fetch.max.bytes`).
pub const FRAME_BYTES_MAX: usize = 128 << 20;
const READ_CHUNK_BYTES: usize = 256 << 10;

/// Reads frames from a stream into a buffer that is allocated once and
/// grows only for a frame larger than any before it. Several small frames
/// (produce responses) usually arrive in one read.
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

    /// Whether a complete frame is already buffered.
    pub fn has_frame(&self) -> bool {
        let avail = self.end - self.start;
        avail >= 4 && avail - 4 >= self.peek_size()
    }

    fn peek_size(&self) -> usize {
        i32::from_be_bytes(self.buf[self.start..self.start + 4].try_into().unwrap()).max(0) as usize
    }

    /// The next frame's body (without its size prefix). Errors on EOF, a
    /// read error, or a frame over [`FRAME_BYTES_MAX`].
    pub async fn next<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> std::io::Result<&[u8]> {
        loop {
            let avail = self.end - self.start;
            if avail >= 4 {
                let size = self.peek_size();
                if size > FRAME_BYTES_MAX {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("response frame of {size} bytes"),
                    ));
                }
                if avail - 4 >= size {
                    let body = self.start + 4..self.start + 4 + size;
                    self.start = body.end;
                    if self.start == self.end {
                        self.start = 0;
                        self.end = 0;
                    }
                    return Ok(&self.buf[body]);
                }
                // Make room for the rest of this frame.
                if self.start + 4 + size > self.buf.len() {
                    self.buf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                    if 4 + size > self.buf.len() {
                        self.buf.resize(4 + size, 0);
                    }
                }
            } else if self.start > 0 && self.buf.len() - self.start < 4 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
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
}
