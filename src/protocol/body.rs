//! A bounds-checked reader over a request body, for the hand-written
//! decoders of the hottest requests (Produce, Fetch). Every length and
//! count is checked against the bytes present before it is used, so these
//! decoders need no guard pass; faults are reported in the guard's terms
//! ([`GuardError`]), with the field's path.

use bytes::Bytes;
use kafka_protocol::protocol::StrBytes;

use super::guard::GuardError;
use super::FrameError;

pub(crate) struct BodyReader<'a> {
    body: &'a Bytes,
    pos: usize,
    /// Where the readable region ends: the body, or a tagged field's value.
    end: usize,
    flexible: bool,
    root: &'static str,
}

impl<'a> BodyReader<'a> {
    pub fn new(body: &'a Bytes, root: &'static str, flexible: bool) -> Self {
        BodyReader {
            body,
            pos: 0,
            end: body.len(),
            flexible,
            root,
        }
    }

    /// The path of field `what`, for errors.
    pub fn field(&self, what: &str) -> String {
        if what.is_empty() {
            self.root.to_string()
        } else {
            format!("{}.{what}", self.root)
        }
    }

    /// The error for a null where the protocol has none.
    pub fn null(&self, what: &str) -> GuardError {
        GuardError::UnexpectedNull {
            field: self.field(what),
        }
    }

    #[inline]
    pub fn remaining(&self) -> usize {
        self.end - self.pos
    }

    #[inline]
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], GuardError> {
        if self.remaining() < n {
            return Err(GuardError::Truncated {
                field: self.field(what),
                needed: n,
                remaining: self.remaining(),
            });
        }
        let at = self.pos;
        self.pos += n;
        let body: &'a Bytes = self.body;
        Ok(&body[at..at + n])
    }

    #[inline]
    pub fn i8(&mut self, what: &str) -> Result<i8, GuardError> {
        Ok(self.take(1, what)?[0] as i8)
    }

    #[inline]
    pub fn i16(&mut self, what: &str) -> Result<i16, GuardError> {
        Ok(i16::from_be_bytes(
            self.take(2, what)?.try_into().expect("2 bytes"),
        ))
    }

    #[inline]
    pub fn i32(&mut self, what: &str) -> Result<i32, GuardError> {
        Ok(i32::from_be_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }

    #[inline]
    pub fn i64(&mut self, what: &str) -> Result<i64, GuardError> {
        Ok(i64::from_be_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }

    /// An unsigned varint of at most five bytes (as the guard requires).
    #[inline]
    pub fn uvarint(&mut self, what: &str) -> Result<u32, GuardError> {
        // Lengths and counts are almost always one byte.
        if let Some(&b) = self.body[..self.end].get(self.pos) {
            if b & 0x80 == 0 {
                self.pos += 1;
                return Ok(u32::from(b));
            }
        }
        self.uvarint_slow(what)
    }

    #[cold]
    fn uvarint_slow(&mut self, what: &str) -> Result<u32, GuardError> {
        let mut value = 0u32;
        for i in 0..5 {
            let b = self.take(1, what)?[0];
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(GuardError::MalformedVarint {
            field: self.field(what),
        })
    }

    /// A length or count: `None` for null (-1, or 0 in compact form);
    /// `wide` for i32 lengths (bytes, arrays), else i16 (strings).
    #[inline]
    pub fn length(&mut self, wide: bool, what: &str) -> Result<Option<usize>, GuardError> {
        if self.flexible {
            return Ok(match self.uvarint(what)? {
                0 => None,
                n => Some(n as usize - 1),
            });
        }
        let n = if wide {
            self.i32(what)?
        } else {
            i32::from(self.i16(what)?)
        };
        match n {
            -1 => Ok(None),
            n if n >= 0 => Ok(Some(n as usize)),
            length => Err(GuardError::NegativeLength {
                field: self.field(what),
                length,
            }),
        }
    }

    /// `len` bytes as a slice of the body.
    #[inline]
    pub fn slice(&mut self, len: usize, what: &str) -> Result<Bytes, GuardError> {
        if self.remaining() < len {
            return Err(GuardError::LengthTooLong {
                field: self.field(what),
                length: len as u64,
                remaining: self.remaining(),
            });
        }
        let at = self.pos;
        self.pos += len;
        Ok(self.body.slice(at..at + len))
    }

    /// A nullable string, as a slice of the body.
    pub fn string(&mut self, what: &str) -> Result<Option<StrBytes>, FrameError> {
        let Some(len) = self.length(false, what)? else {
            return Ok(None);
        };
        let bytes = self.slice(len, what)?;
        StrBytes::from_utf8(bytes)
            .map(Some)
            .map_err(|_| FrameError::BadBody(format!("{}: not UTF-8", self.field(what))))
    }

    /// A string that may not be null.
    pub fn required_string(&mut self, what: &str) -> Result<StrBytes, FrameError> {
        self.string(what)?.ok_or_else(|| self.null(what).into())
    }

    /// Nullable bytes, as a slice of the body.
    #[inline]
    pub fn bytes(&mut self, what: &str) -> Result<Option<Bytes>, GuardError> {
        match self.length(true, what)? {
            Some(len) => self.slice(len, what).map(Some),
            None => Ok(None),
        }
    }

    /// An array's element count, bounded by what the remaining bytes can
    /// hold at `min_element` bytes each.
    #[inline]
    pub fn count(&mut self, min_element: usize, what: &str) -> Result<usize, GuardError> {
        let n = self.length(true, what)?.ok_or_else(|| self.null(what))?;
        if n > self.remaining() / min_element {
            return Err(GuardError::ArrayTooLong {
                field: self.field(what),
                count: n as u64,
                min_element_size: min_element,
                remaining: self.remaining(),
            });
        }
        Ok(n)
    }

    /// Skips the tagged fields of a struct with no known tags.
    pub fn tagged_fields(&mut self, what: &str) -> Result<(), FrameError> {
        self.tagged_fields_with(what, |_, _| Ok(false))
    }

    /// Reads the tagged fields of a struct (flexible versions only): for
    /// each, `known` gets the tag and a reader confined to its value and
    /// says whether it read it (then the value must be consumed exactly,
    /// as the crate reads a known tag without regard for its size);
    /// unknown tags are skipped.
    pub fn tagged_fields_with(
        &mut self,
        what: &str,
        mut known: impl FnMut(u32, &mut BodyReader<'a>) -> Result<bool, FrameError>,
    ) -> Result<(), FrameError> {
        if !self.flexible {
            return Ok(());
        }
        // Paths are only formatted for errors: this runs once per struct.
        let n = self.uvarint(what)?;
        for _ in 0..n {
            let tag = self.uvarint(what)?;
            let size = self.uvarint(what)? as usize;
            if size > self.remaining() {
                return Err(GuardError::LengthTooLong {
                    field: self.field(what),
                    length: size as u64,
                    remaining: self.remaining(),
                }
                .into());
            }
            let mut value = BodyReader {
                body: self.body,
                pos: self.pos,
                end: self.pos + size,
                flexible: self.flexible,
                root: self.root,
            };
            if known(tag, &mut value)? && value.remaining() != 0 {
                return Err(GuardError::TaggedFieldSize {
                    field: self.field(what),
                    tag,
                    size,
                    used: size - value.remaining(),
                }
                .into());
            }
            self.pos += size;
        }
        Ok(())
    }
}

/// Damaged copies of a valid body for the decoders' tests: cut at `cut`,
/// and with bytes overwritten at `flips`.
#[cfg(test)]
pub(crate) fn damaged(
    body: &Bytes,
    cut: proptest::sample::Index,
    flips: &[(proptest::sample::Index, u8)],
) -> [Bytes; 2] {
    let truncated = body.slice(..cut.index(body.len() + 1));
    let mut mutated = body.to_vec();
    if !mutated.is_empty() {
        for (at, b) in flips {
            let i = at.index(mutated.len());
            mutated[i] = *b;
        }
    }
    [truncated, Bytes::from(mutated)]
}
