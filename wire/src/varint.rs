//! Kafka's variable-length integers: unsigned LEB128 (`uvarint`, the lengths
//! of flexible versions) and zigzag-encoded signed values (`varint` and
//! `varlong`, the fields of records inside a v2 batch).

/// The longest encoding of a 64-bit value: ten groups of seven bits.
pub const VARINT_BYTES_MAX: usize = 10;

/// Maps a signed value to an unsigned one so that small magnitudes of
/// either sign encode short.
#[inline]
pub const fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline]
pub const fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Appends an unsigned varint.
#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a zigzag varint.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

/// Encoded size of an unsigned varint.
#[inline]
pub const fn uvarint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Encoded size of a zigzag varint.
#[inline]
pub const fn varint_len(v: i64) -> usize {
    uvarint_len(zigzag(v))
}

/// Reads an unsigned varint at `*at`, advancing past it. `None` if the
/// buffer ends first or the encoding runs past ten bytes; `*at` is then
/// left wherever reading stopped.
#[inline]
pub fn get_uvarint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Reads a zigzag varint at `*at`, advancing past it (see [`get_uvarint`]).
#[inline]
pub fn get_varint(buf: &[u8], at: &mut usize) -> Option<i64> {
    get_uvarint(buf, at).map(unzigzag)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves varints round-trip, including the sign extremes, the encoded
    // lengths match what is written, and truncated or overlong input is
    // refused.
    #[test]
    fn varints_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            300,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            assert!(out.len() <= VARINT_BYTES_MAX);
            let mut at = 0;
            assert_eq!(get_varint(&out, &mut at), Some(v));
            assert_eq!(at, out.len());
            assert_eq!(get_varint(&out[..out.len() - 1], &mut 0), None);
        }
        for u in [0u64, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut out = Vec::new();
            put_uvarint(&mut out, u);
            assert_eq!(out.len(), uvarint_len(u));
            assert_eq!(get_uvarint(&out, &mut 0), Some(u));
        }
        // Kafka's examples: 1 is 0x02, -1 is 0x01, 300 is 0xd8 0x04.
        let mut out = Vec::new();
        put_varint(&mut out, 1);
        put_varint(&mut out, -1);
        put_varint(&mut out, 300);
        assert_eq!(out, [0x02, 0x01, 0xd8, 0x04]);
        assert_eq!(get_uvarint(&[0x80; 11], &mut 0), None);
    }
}
