//! The Kafka wire, as the load generator speaks it.
//!
//! The data path (record batches, Produce requests, Produce and Fetch
//! responses) is hand-rolled over reused byte buffers, because it runs
//! millions of times a second; each hand-rolled codec is checked against the
//! kafka-protocol crate in its unit tests. The control plane (ApiVersions,
//! Metadata, CreateTopics, ListOffsets) uses kafka-protocol directly.
//!
//! What the broker speaks too (the batch layout and record encoding, the
//! codecs, varints, frame bounds, murmur2, error names) comes from
//! shardlog-wire; what is here is the load generator's own use of it.

use shardlog_wire::varint::{get_uvarint, unzigzag};

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
        get_uvarint(self.buf, &mut self.pos).ok_or(Malformed("truncated or overlong varint"))
    }

    pub fn varint(&mut self) -> Result<i64, Malformed> {
        self.uvarint().map(unzigzag)
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

    // Proves varints written by shardlog-wire read back through the
    // reader, including the sign extremes, and leave it at the end.
    #[test]
    fn varints_round_trip() {
        for v in [0i64, 1, -1, 63, 64, -65, 300, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            shardlog_wire::varint::put_varint(&mut out, v);
            let mut r = Reader::new(&out);
            assert_eq!(r.varint().unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
        let mut r = Reader::new(&[0x80, 0x80]);
        assert!(r.uvarint().is_err());
    }
}
