//! A bounded big-endian reader over bytes that came from clients or from
//! disk: every read checks the bytes left and gives `None` past them, and
//! an array count is never trusted beyond what could fit. Shared by the
//! offsets-log records and the consumer protocol's metadata/assignments.

use bytes::Bytes;

pub(crate) struct Reader<'a> {
    pub buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    pub fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    pub fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    pub fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    /// A non-null int16-length string; invalid UTF-8 is replaced, not
    /// refused (topic names in client metadata).
    pub fn string_lossy(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        Some(String::from_utf8_lossy(self.take(len)?).into_owned())
    }
    /// An int16-length nullable string; invalid UTF-8 is refused.
    pub fn nullable_str(&mut self) -> Option<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Some(None);
        }
        let b = self.take(len as usize)?;
        Some(Some(String::from_utf8(b.to_vec()).ok()?))
    }
    /// An int16-length string that must not be null.
    pub fn str(&mut self) -> Option<String> {
        self.nullable_str()?
    }
    /// int32-length bytes; null reads as empty.
    pub fn bytes(&mut self) -> Option<Bytes> {
        let len = self.i32()?;
        if len < 0 {
            return Some(Bytes::new());
        }
        Some(Bytes::copy_from_slice(self.take(len as usize)?))
    }
    /// An array count, refused if even `min_element_bytes` per element
    /// would not fit in what is left; null reads as empty.
    pub fn count(&mut self, min_element_bytes: usize) -> Option<usize> {
        let n = self.i32()?;
        if n < 0 {
            return Some(0);
        }
        let n = n as usize;
        (n <= self.buf.len() / min_element_bytes).then_some(n)
    }
}
