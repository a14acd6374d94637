//! Kafka's framing: every request and response is a 4-byte big-endian size
//! followed by that many bytes. This module finds and bounds frames in
//! bytes already read; reading from and writing to sockets is the caller's.
//!
//! The size is checked against the caller's maximum before anything is set
//! aside for the frame, so a crafted 4-byte prefix cannot make a reader
//! reserve gigabytes.
//!
//! A reader typically calls [`frame_size`] as soon as four bytes are in, to
//! refuse an oversized frame early (and, in the broker, to wait for memory
//! budget), reads until the whole frame is buffered, and then cuts it out
//! with [`split_frame`] (a `BytesMut` buffer, zero-copy) or [`frame_body`]
//! (any byte slice).

use bytes::{Buf, Bytes, BytesMut};

/// Bytes of the size prefix.
pub const SIZE_PREFIX_BYTES: usize = 4;

/// Why a frame's size prefix cannot be honoured. Either way the stream can
/// no longer be trusted and the connection should close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("negative frame size {0}")]
    Negative(i32),
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
}

/// The body size declared by the frame starting at `buf`, checked against
/// `max`: `Ok(None)` while fewer than four bytes are buffered.
#[inline]
pub fn frame_size(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..SIZE_PREFIX_BYTES) else {
        return Ok(None);
    };
    let size = i32::from_be_bytes(prefix.try_into().expect("4-byte prefix"));
    let size = usize::try_from(size).map_err(|_| FrameError::Negative(size))?;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    Ok(Some(size))
}

/// The body of the complete frame starting at `buf`: `Ok(None)` while more
/// bytes are needed. The frame occupies `SIZE_PREFIX_BYTES + body.len()`
/// bytes of `buf`, which the caller then consumes.
#[inline]
pub fn frame_body(buf: &[u8], max: usize) -> Result<Option<&[u8]>, FrameError> {
    Ok(frame_size(buf, max)?.and_then(|size| buf.get(SIZE_PREFIX_BYTES..SIZE_PREFIX_BYTES + size)))
}

/// Cuts the first complete frame off the front of `buf` and returns its
/// body (without the size prefix) as a zero-copy `Bytes`: `Ok(None)`, with
/// `buf` untouched, while more bytes are needed.
#[inline]
pub fn split_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FrameError> {
    match frame_size(buf, max)? {
        Some(size) if buf.len() - SIZE_PREFIX_BYTES >= size => {
            buf.advance(SIZE_PREFIX_BYTES);
            Ok(Some(buf.split_to(size).freeze()))
        }
        _ => Ok(None),
    }
}

/// Starts a frame at the end of `out` with a placeholder size; returns
/// where the frame starts, for [`finish_frame`].
#[inline]
pub fn start_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; SIZE_PREFIX_BYTES]);
    start
}

/// Writes the size of the frame that starts at `start` and runs to the end
/// of `out`.
///
/// # Panics
/// If the frame is larger than `i32::MAX` bytes, which no Kafka peer reads.
#[inline]
pub fn finish_frame(out: &mut [u8], start: usize) {
    let size = i32::try_from(out.len() - start - SIZE_PREFIX_BYTES).expect("a frame under 2 GiB");
    out[start..start + SIZE_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(bodies: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for body in bodies {
            let start = start_frame(&mut out);
            out.extend_from_slice(body);
            finish_frame(&mut out, start);
        }
        out
    }

    // Proves frames come out whole and in order from any split of the
    // bytes, with None until a frame is complete and the buffer untouched
    // meanwhile.
    #[test]
    fn split_frames_from_any_split() {
        let bodies: [&[u8]; 4] = [b"", b"a", &[7; 300], b"xyz"];
        let wire = framed(&bodies);
        for step in [1, 3, 4, 5, 64, wire.len()] {
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(step) {
                buf.extend_from_slice(chunk);
                loop {
                    let before = buf.len();
                    match split_frame(&mut buf, 1000).unwrap() {
                        Some(frame) => got.push(frame),
                        None => {
                            assert_eq!(buf.len(), before);
                            break;
                        }
                    }
                }
            }
            assert!(buf.is_empty());
            assert_eq!(got, bodies.map(Bytes::copy_from_slice), "step {step}");
        }
    }

    // Proves the size is checked as soon as the prefix is in, before the
    // body: a negative or oversized size is an error, the maximum itself
    // is allowed.
    #[test]
    fn sizes_are_bounded_before_the_body() {
        assert_eq!(frame_size(&[0, 0, 0], 10), Ok(None));
        assert_eq!(frame_size(&[0, 0, 0, 10], 10), Ok(Some(10)));
        assert_eq!(
            frame_size(&[0, 0, 0, 11], 10),
            Err(FrameError::TooLarge { size: 11, max: 10 })
        );
        assert_eq!(
            frame_size(&(-1i32).to_be_bytes(), 10),
            Err(FrameError::Negative(-1))
        );
        let mut buf = BytesMut::from(&i32::MAX.to_be_bytes()[..]);
        assert!(split_frame(&mut buf, 100 << 20).is_err());
        assert_eq!(buf.len(), 4);
        let wire = framed(&[b"body", b"next"]);
        assert_eq!(frame_body(&wire, 4), Ok(Some(&b"body"[..])));
        assert_eq!(frame_body(&wire[..7], 4), Ok(None));
        assert_eq!(
            frame_body(&wire[8..], 3),
            Err(FrameError::TooLarge { size: 4, max: 3 })
        );
    }
}
