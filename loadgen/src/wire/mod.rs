//! The Kafka wire, as the load generator speaks it.
//!
//! The data path (record batches, Produce requests, Produce and Fetch
//! responses) is hand-rolled over reused byte buffers, because it runs
//! millions of times a second; each hand-rolled codec is checked against the
//! kafka-protocol crate in its unit tests. The control plane (ApiVersions,
//! Metadata, CreateTopics, ListOffsets) uses kafka-protocol directly.

pub mod batch;
pub mod control;
pub mod fetch;
pub mod frame;
pub mod produce;

/// A malformed or unexpected response: the connection cannot be trusted
/// any further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed response: {0}")]
pub struct Malformed(pub &'static str);

/// Appends a zigzag varint (Kafka's `varint`/`varlong`).
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends an unsigned varint (the lengths of flexible versions).
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encoded size of a zigzag varint.
pub fn varint_len(v: i64) -> usize {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while u >= 0x80 {
        u >>= 7;
        n += 1;
    }
    n
}

/// A cursor over a response body. Every read is bounds-checked and fails
/// with [`Malformed`] rather than panicking.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.remaining() < n {
            return Err(Malformed("truncated"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), Malformed> {
        self.bytes(n).map(|_| ())
    }

    pub fn i8(&mut self) -> Result<i8, Malformed> {
        Ok(self.bytes(1)?[0] as i8)
    }

    pub fn i16(&mut self) -> Result<i16, Malformed> {
        Ok(i16::from_be_bytes(self.bytes(2)?.try_into().unwrap()))
    }

    pub fn i32(&mut self) -> Result<i32, Malformed> {
        Ok(i32::from_be_bytes(self.bytes(4)?.try_into().unwrap()))
    }

    pub fn i64(&mut self) -> Result<i64, Malformed> {
        Ok(i64::from_be_bytes(self.bytes(8)?.try_into().unwrap()))
    }

    pub fn uvarint(&mut self) -> Result<u64, Malformed> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.bytes(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Malformed("varint too long"))
    }

    pub fn varint(&mut self) -> Result<i64, Malformed> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// An array count: i32 in classic versions, uvarint N+1 in flexible
    /// ones. Null arrays read as empty.
    pub fn array_len(&mut self, flexible: bool) -> Result<usize, Malformed> {
        let n = if flexible {
            self.uvarint()? as i64 - 1
        } else {
            i64::from(self.i32()?)
        };
        // Each element takes at least one byte: a larger count is a lie.
        if n > self.remaining() as i64 {
            return Err(Malformed("array count exceeds the frame"));
        }
        Ok(n.max(0) as usize)
    }

    /// A (nullable) string or bytes field, skipped or returned.
    pub fn nullable_bytes(
        &mut self,
        flexible: bool,
        wide: bool,
    ) -> Result<Option<&'a [u8]>, Malformed> {
        let n = if flexible {
            self.uvarint()? as i64 - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        if n < 0 {
            return Ok(None);
        }
        self.bytes(n as usize).map(Some)
    }

    /// Skips a flexible version's tagged fields.
    pub fn skip_tagged(&mut self) -> Result<(), Malformed> {
        let n = self.uvarint()?;
        for _ in 0..n {
            self.uvarint()?;
            let len = self.uvarint()? as usize;
            self.skip(len)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves varints round-trip through the reader, including the sign
    // extremes, and varint_len matches what is written.
    #[test]
    fn varints_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            63,
            64,
            -65,
            300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut r = Reader::new(&out);
            assert_eq!(r.varint().unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
        let mut r = Reader::new(&[0x80, 0x80]);
        assert!(r.uvarint().is_err());
    }
}
