//! A bounds check of request bodies before kafka-protocol decodes them.
//!
//! kafka-protocol 0.18 decodes an array by calling `Vec::with_capacity(n)`
//! with the count `n` read off the wire, before it reads a single element: a
//! 4-byte count in a tiny frame can make it ask for hundreds of gigabytes and
//! abort the process. [`inspect_body`] walks a request body along the
//! exact wire layout the crate decodes for that (api key, version), without
//! allocating, and rejects any array whose count could not possibly fit in the
//! bytes that remain (count > remaining / smallest element size), any string
//! or bytes length past the end, null where the crate rejects null, malformed
//! varints and inconsistent tagged fields.
//!
//! What the guard accepts, the crate decodes with every preallocation
//! backed by input: an array of n elements takes at least n times its
//! smallest element on the wire. Decoded memory is still a multiple of the
//! body size (up to ~40x: an OffsetFetch v8 group is 120 bytes in memory and
//! can be 3 bytes on the wire; a compact string is 32 bytes and 1 byte), so
//! large frames should be limited by size or by
//! [`BodyStats::array_elements`]. The crate may still reject an accepted
//! body (invalid UTF-8 in a string, for example); that is an ordinary decode
//! error.
//!
//! The layouts live in `guard/layouts.rs` as static data, one table per message,
//! derived from the crate's generated decoders
//! (`src/messages/<name>_request.rs`); the tests in `tests/protocol_guard.rs`
//! check every (api key, version) against the crate's own encoder and decoder.
//!
//! Trailing bytes after the body are allowed, as the crate ignores them;
//! [`BodyStats::body_len`] tells where the body the crate reads ends.

pub mod layouts;

/// Why a request body was rejected. `field` is a path such as
/// `ProduceRequest.topic_data[0].partition_data[2].records`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// Not a request the broker serves (no layout guards it).
    #[error("unsupported api key {key} version {version}")]
    UnsupportedApi { key: i16, version: i16 },
    #[error("{field}: truncated, needs {needed} bytes, {remaining} left")]
    Truncated {
        field: String,
        needed: usize,
        remaining: usize,
    },
    #[error(
        "{field}: array of {count} elements cannot fit in the {remaining} bytes left \
         (each takes at least {min_element_size} bytes)"
    )]
    ArrayTooLong {
        field: String,
        count: u64,
        min_element_size: usize,
        remaining: usize,
    },
    #[error("{field}: length {length} is longer than the {remaining} bytes left")]
    LengthTooLong {
        field: String,
        length: u64,
        remaining: usize,
    },
    #[error("{field}: negative length {length}")]
    NegativeLength { field: String, length: i32 },
    #[error("{field}: null is not allowed here")]
    UnexpectedNull { field: String },
    #[error("{field}: malformed varint (more than 5 bytes)")]
    MalformedVarint { field: String },
    #[error("{field}: tagged field {tag} is not valid in version {version}")]
    TaggedFieldNotValid {
        field: String,
        tag: u32,
        version: i16,
    },
    #[error("{field}: tagged field {tag} declares {size} bytes but its value takes {used}")]
    TaggedFieldSize {
        field: String,
        tag: u32,
        size: usize,
        used: usize,
    },
}

/// What the guard learnt walking an accepted body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyStats {
    /// Bytes of the body the crate will read (the rest is trailing bytes).
    pub body_len: usize,
    /// Array elements in the body, all arrays together. The crate holds
    /// each as a struct of up to ~120 bytes (32 for a string), while one can
    /// take as little as 1 to 3 bytes on the wire: a caller that accepts
    /// large frames can bound decoded memory with a budget on this count.
    pub array_elements: u64,
    /// Tagged fields in the body. The crate keeps each unknown one in a
    /// `BTreeMap` entry (tens of bytes) while it can take 2 bytes on the wire.
    pub tagged_fields: u64,
}

/// Walks `body` (the request bytes after the request header) along
/// `layout` at `version`, and accepts it only if kafka-protocol can decode
/// it without preallocating more than the input can justify. Which layout
/// and versions apply to which API is the router's API table's to say.
pub fn inspect_body(layout: &Layout, version: i16, body: &[u8]) -> Result<BodyStats, GuardError> {
    let mut walker = Walker {
        buf: body,
        pos: 0,
        end: body.len(),
        version,
        flexible: version >= layout.flexible,
        elements: 0,
        tagged_fields: 0,
        path: Path::new(layout.body.name),
    };
    walker.walk_struct(layout.body)?;
    Ok(BodyStats {
        body_len: walker.pos,
        array_elements: walker.elements,
        tagged_fields: walker.tagged_fields,
    })
}

// ---------------------------------------------------------------------------
// Layout description (the tables are in `layouts`).

/// How one field is encoded. Strings, bytes and arrays are compact (varint
/// length + 1) in flexible versions, length-prefixed (i16 / i32) otherwise.
#[derive(Debug, Clone, Copy)]
enum Kind {
    I8,
    I16,
    I32,
    I64,
    #[allow(dead_code)] // part of the protocol's type set; no request here uses it
    U16,
    #[allow(dead_code)]
    U32,
    #[allow(dead_code)]
    F64,
    Bool,
    Uuid,
    String,
    NullableString,
    Bytes,
    #[allow(dead_code)]
    NullableBytes,
    /// A record set: nullable bytes, kept as raw bytes by the broker.
    Records,
    Array(&'static Elem),
    NullableArray(&'static Elem),
    /// A struct inline (used by known tagged fields).
    Struct(&'static Struct),
    /// A nullable struct: an i8 marker (1: present) and, if present, the
    /// struct.
    NullableStruct(&'static Struct),
}

/// The element of an array.
#[derive(Debug)]
enum Elem {
    Prim(Kind),
    Struct(&'static Struct),
}

#[derive(Debug)]
struct Field {
    name: &'static str,
    kind: Kind,
    /// Versions (inclusive) in which the field is on the wire.
    min: i16,
    max: i16,
}

/// A tagged field the crate decodes itself (instead of keeping raw bytes).
/// Outside `min..=max` the crate rejects the tag.
#[derive(Debug)]
struct Tagged {
    tag: u32,
    name: &'static str,
    kind: Kind,
    min: i16,
    max: i16,
}

#[derive(Debug)]
struct Struct {
    name: &'static str,
    fields: &'static [Field],
    /// Only read in flexible versions, after the fields.
    tagged: &'static [Tagged],
}

/// One request's body layout.
#[derive(Debug)]
pub struct Layout {
    /// First version with compact encodings and tagged fields.
    flexible: i16,
    body: &'static Struct,
}

impl Layout {
    /// First version with compact encodings and tagged fields (and, for the
    /// request header, a flexible header).
    pub fn flexible_from(&self) -> i16 {
        self.flexible
    }
}

const fn f(name: &'static str, kind: Kind, min: i16, max: i16) -> Field {
    Field {
        name,
        kind,
        min,
        max,
    }
}

const fn t(tag: u32, name: &'static str, kind: Kind, min: i16, max: i16) -> Tagged {
    Tagged {
        tag,
        name,
        kind,
        min,
        max,
    }
}

// ---------------------------------------------------------------------------
// Field paths for error messages, kept without allocating until an error.

const MAX_DEPTH: usize = 12;
const NO_INDEX: u32 = u32::MAX;

struct Path {
    root: &'static str,
    names: [&'static str; MAX_DEPTH],
    indexes: [u32; MAX_DEPTH],
    len: usize,
}

impl Path {
    fn new(root: &'static str) -> Self {
        Path {
            root,
            names: [""; MAX_DEPTH],
            indexes: [NO_INDEX; MAX_DEPTH],
            len: 0,
        }
    }

    fn push(&mut self, name: &'static str) {
        // The layouts nest at most a handful of levels; deeper paths are
        // only shortened in messages.
        if self.len < MAX_DEPTH {
            self.names[self.len] = name;
            self.indexes[self.len] = NO_INDEX;
        }
        self.len += 1;
    }

    fn set_index(&mut self, index: u32) {
        if let Some(slot) = self.len.checked_sub(1).filter(|&i| i < MAX_DEPTH) {
            self.indexes[slot] = index;
        }
    }

    fn pop(&mut self) {
        self.len -= 1;
    }

    fn render(&self) -> String {
        let mut s = String::from(self.root);
        for i in 0..self.len.min(MAX_DEPTH) {
            s.push('.');
            s.push_str(self.names[i]);
            if self.indexes[i] != NO_INDEX {
                s.push('[');
                s.push_str(&self.indexes[i].to_string());
                s.push(']');
            }
        }
        if self.len > MAX_DEPTH {
            s.push_str("...");
        }
        s
    }
}

// ---------------------------------------------------------------------------
// The walk.

struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    /// End of the readable region: the body, or a known tagged field's value.
    end: usize,
    version: i16,
    flexible: bool,
    /// Array elements seen so far.
    elements: u64,
    /// Tagged fields seen so far.
    tagged_fields: u64,
    path: Path,
}

impl Walker<'_> {
    #[inline]
    fn remaining(&self) -> usize {
        self.end - self.pos
    }

    #[inline]
    fn skip(&mut self, n: usize) -> Result<(), GuardError> {
        if n > self.remaining() {
            return Err(GuardError::Truncated {
                field: self.path.render(),
                needed: n,
                remaining: self.remaining(),
            });
        }
        self.pos += n;
        Ok(())
    }

    /// Skips `len` bytes of string or bytes data.
    #[inline]
    fn skip_data(&mut self, len: u64) -> Result<(), GuardError> {
        if len > self.remaining() as u64 {
            return Err(GuardError::LengthTooLong {
                field: self.path.render(),
                length: len,
                remaining: self.remaining(),
            });
        }
        self.pos += len as usize;
        Ok(())
    }

    #[inline]
    fn read_i16(&mut self) -> Result<i16, GuardError> {
        let p = self.pos;
        self.skip(2)?;
        Ok(i16::from_be_bytes([self.buf[p], self.buf[p + 1]]))
    }

    #[inline]
    fn read_i32(&mut self) -> Result<i32, GuardError> {
        let p = self.pos;
        self.skip(4)?;
        Ok(i32::from_be_bytes([
            self.buf[p],
            self.buf[p + 1],
            self.buf[p + 2],
            self.buf[p + 3],
        ]))
    }

    /// An unsigned varint as the crate reads it (at most 5 bytes, bits past
    /// 32 dropped); a continuation bit on the 5th byte is rejected, where the
    /// crate would stop there and misread what follows.
    #[inline]
    fn read_uvarint(&mut self) -> Result<u32, GuardError> {
        let mut value = 0u32;
        for i in 0..5 {
            if self.pos >= self.end {
                return Err(GuardError::Truncated {
                    field: self.path.render(),
                    needed: 1,
                    remaining: 0,
                });
            }
            let b = self.buf[self.pos];
            self.pos += 1;
            value |= u32::from(b & 0x7f) << (i * 7);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(GuardError::MalformedVarint {
            field: self.path.render(),
        })
    }

    /// Reads a length or count: i16/i32 in non-flexible versions, varint
    /// (value + 1, 0 = null) in flexible ones. `None` is null.
    #[inline]
    fn read_length(&mut self, wide: bool, nullable: bool) -> Result<Option<u64>, GuardError> {
        let len: Option<u64> = if self.flexible {
            match self.read_uvarint()? {
                0 => None,
                n => Some(u64::from(n - 1)),
            }
        } else {
            let n = if wide {
                self.read_i32()?
            } else {
                i32::from(self.read_i16()?)
            };
            match n {
                -1 => None,
                n if n >= 0 => Some(n as u64),
                n => {
                    return Err(GuardError::NegativeLength {
                        field: self.path.render(),
                        length: n,
                    })
                }
            }
        };
        if len.is_none() && !nullable {
            return Err(GuardError::UnexpectedNull {
                field: self.path.render(),
            });
        }
        Ok(len)
    }

    fn walk_struct(&mut self, s: &'static Struct) -> Result<(), GuardError> {
        // Runs of fixed-size fields are skipped in one step.
        let mut fixed = 0;
        let mut fixed_from = 0;
        for (i, field) in s.fields.iter().enumerate() {
            if !(field.min <= self.version && self.version <= field.max) {
                continue;
            }
            if let Some(size) = fixed_size(field.kind) {
                if fixed == 0 {
                    fixed_from = i;
                }
                fixed += size;
                continue;
            }
            if fixed > 0 {
                self.skip_fixed_run(s, fixed_from, fixed)?;
                fixed = 0;
            }
            self.path.push(field.name);
            self.walk_kind(field.kind)?;
            self.path.pop();
        }
        if fixed > 0 {
            self.skip_fixed_run(s, fixed_from, fixed)?;
        }
        if self.flexible {
            self.walk_tagged(s)?;
        }
        Ok(())
    }

    /// Skips `len` bytes of fixed-size fields starting at `s.fields[from]`;
    /// if they are not all there, names the first field cut short.
    #[inline]
    fn skip_fixed_run(
        &mut self,
        s: &'static Struct,
        from: usize,
        len: usize,
    ) -> Result<(), GuardError> {
        if len <= self.remaining() {
            self.pos += len;
            return Ok(());
        }
        for field in &s.fields[from..] {
            if !(field.min <= self.version && self.version <= field.max) {
                continue;
            }
            let Some(size) = fixed_size(field.kind) else {
                break;
            };
            self.path.push(field.name);
            self.skip(size)?;
            self.path.pop();
        }
        // Not reached: a run longer than what is left fails field by field.
        Err(GuardError::Truncated {
            field: self.path.render(),
            needed: len,
            remaining: self.remaining(),
        })
    }

    fn walk_kind(&mut self, kind: Kind) -> Result<(), GuardError> {
        match kind {
            Kind::I8 | Kind::Bool => self.skip(1),
            Kind::I16 | Kind::U16 => self.skip(2),
            Kind::I32 | Kind::U32 => self.skip(4),
            Kind::I64 | Kind::F64 => self.skip(8),
            Kind::Uuid => self.skip(16),
            Kind::String | Kind::NullableString => {
                let nullable = matches!(kind, Kind::NullableString);
                match self.read_length(false, nullable)? {
                    Some(len) => self.skip_data(len),
                    None => Ok(()),
                }
            }
            Kind::Bytes | Kind::NullableBytes | Kind::Records => {
                let nullable = !matches!(kind, Kind::Bytes);
                match self.read_length(true, nullable)? {
                    Some(len) => self.skip_data(len),
                    None => Ok(()),
                }
            }
            Kind::Array(elem) | Kind::NullableArray(elem) => {
                let nullable = matches!(kind, Kind::NullableArray(_));
                match self.read_length(true, nullable)? {
                    Some(count) => self.walk_array(elem, count),
                    None => Ok(()),
                }
            }
            Kind::Struct(s) => self.walk_struct(s),
            Kind::NullableStruct(s) => {
                let at = self.pos;
                self.skip(1)?;
                // As kafka-protocol reads it: present only when the marker
                // is 1 (Kafka's Java reads any non-negative marker as
                // present; the crate's rule decides what decodes here).
                if self.buf[at] == 1 {
                    self.walk_struct(s)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn walk_array(&mut self, elem: &'static Elem, count: u64) -> Result<(), GuardError> {
        let min = self.elem_min_size(elem);
        let remaining = self.remaining();
        // The crate preallocates `count` elements: allow no more than could
        // possibly be present in what is left.
        if count > (remaining / min) as u64 {
            return Err(GuardError::ArrayTooLong {
                field: self.path.render(),
                count,
                min_element_size: min,
                remaining,
            });
        }
        self.elements += count;
        match elem {
            Elem::Prim(k) => match fixed_size(*k) {
                // Within bounds by the check above.
                Some(size) => self.skip(count as usize * size),
                None => {
                    for i in 0..count {
                        self.path.set_index(i as u32);
                        self.walk_kind(*k)?;
                    }
                    Ok(())
                }
            },
            Elem::Struct(s) => {
                for i in 0..count {
                    self.path.set_index(i as u32);
                    self.walk_struct(s)?;
                }
                Ok(())
            }
        }
    }

    fn walk_tagged(&mut self, s: &'static Struct) -> Result<(), GuardError> {
        self.path.push("<tagged fields>");
        let count = self.read_uvarint()?;
        // Each entry takes at least 2 bytes (tag, size), so this loop ends
        // after at most remaining / 2 rounds.
        for _ in 0..count {
            let tag = self.read_uvarint()?;
            let size = self.read_uvarint()? as usize;
            self.tagged_fields += 1;
            if size > self.remaining() {
                return Err(GuardError::LengthTooLong {
                    field: self.path.render(),
                    length: size as u64,
                    remaining: self.remaining(),
                });
            }
            let Some(known) = s.tagged.iter().find(|k| k.tag == tag) else {
                self.pos += size;
                continue;
            };
            if !(known.min <= self.version && self.version <= known.max) {
                return Err(GuardError::TaggedFieldNotValid {
                    field: self.path.render(),
                    tag,
                    version: self.version,
                });
            }
            // The crate decodes a known tag's value from the stream without
            // looking at `size`: walk it inside its declared size and insist
            // it fills it exactly, so the crate and the guard stay in step.
            let start = self.pos;
            let outer_end = self.end;
            self.end = start + size;
            self.path.push(known.name);
            let walked = self.walk_kind(known.kind);
            self.path.pop();
            self.end = outer_end;
            walked?;
            if self.pos != start + size {
                return Err(GuardError::TaggedFieldSize {
                    field: self.path.render(),
                    tag,
                    size,
                    used: self.pos - start,
                });
            }
        }
        self.path.pop();
        Ok(())
    }

    /// The fewest bytes one array element can take on the wire (at least 1).
    fn elem_min_size(&self, elem: &Elem) -> usize {
        let size = match elem {
            Elem::Prim(k) => self.kind_min_size(*k),
            Elem::Struct(s) => self.struct_min_size(s),
        };
        size.max(1)
    }

    fn struct_min_size(&self, s: &Struct) -> usize {
        let mut size = 0;
        for field in s.fields {
            if field.min <= self.version && self.version <= field.max {
                size += self.kind_min_size(field.kind);
            }
        }
        if self.flexible {
            size += 1; // tagged field count
        }
        size
    }

    fn kind_min_size(&self, kind: Kind) -> usize {
        if let Some(size) = fixed_size(kind) {
            return size;
        }
        match kind {
            Kind::String | Kind::NullableString if !self.flexible => 2,
            Kind::Bytes
            | Kind::NullableBytes
            | Kind::Records
            | Kind::Array(_)
            | Kind::NullableArray(_)
                if !self.flexible =>
            {
                4
            }
            Kind::Struct(s) => self.struct_min_size(s),
            // The null marker; a compact length.
            _ => 1,
        }
    }
}

fn fixed_size(kind: Kind) -> Option<usize> {
    match kind {
        Kind::I8 | Kind::Bool => Some(1),
        Kind::I16 | Kind::U16 => Some(2),
        Kind::I32 | Kind::U32 => Some(4),
        Kind::I64 | Kind::F64 => Some(8),
        Kind::Uuid => Some(16),
        _ => None,
    }
}
