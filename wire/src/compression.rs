//! The batch codecs, in the framings Kafka clients use.
//!
//! Compression writes what the Java client writes: gzip, an LZ4 frame,
//! zstd, and snappy in the xerial framing (which librdkafka and Kafka read
//! alongside raw snappy). Decompression reads both snappy framings, since
//! librdkafka writes raw snappy, and its output is bounded by a caller-given
//! limit, so a crafted batch (a decompression bomb) costs at most that much
//! memory.
//!
//! Both directions write into a buffer the caller owns and may reuse, so a
//! caller that keeps its buffers allocates nothing per batch once they have
//! grown.

use std::io::{Read, Write};

use crate::batch::Compression;

/// The 8-byte magic of the xerial snappy framing the Java client writes.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// The magic, then the framing's version and minimum compatible version
/// (both 1).
const XERIAL_HEADER_BYTES: usize = 16;
/// The block size of the Java client's `SnappyOutputStream`.
const XERIAL_BLOCK_BYTES: usize = 32 << 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    #[error("decompressed data exceeds the {0}-byte limit")]
    TooLarge(usize),
    #[error("malformed {codec:?} data: {reason}")]
    Malformed { codec: Compression, reason: String },
}

fn malformed(codec: Compression, reason: impl std::fmt::Display) -> DecompressError {
    DecompressError::Malformed {
        codec,
        reason: reason.to_string(),
    }
}

/// Appends `plain` (a batch's records section) to `out`, compressed with
/// `codec` in the framing Kafka's Java client uses.
pub fn compress_into(codec: Compression, plain: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    compress_into_level(codec, None, plain, out)
}

/// [`compress_into`] at a level in Kafka's terms (KIP-390's
/// compression.gzip.level and compression.zstd.level: gzip 1-9 or -1 for
/// zlib's default, zstd's own range); `None` is the fastest level, which
/// is what [`compress_into`] uses. lz4 and snappy have one level here.
pub fn compress_into_level(
    codec: Compression,
    level: Option<i32>,
    plain: &[u8],
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    match codec {
        Compression::None => out.extend_from_slice(plain),
        Compression::Gzip => {
            let level = match level {
                None => flate2::Compression::fast(),
                Some(l) if (1..=9).contains(&l) => flate2::Compression::new(l as u32),
                Some(_) => flate2::Compression::default(),
            };
            let mut e = flate2::write::GzEncoder::new(out, level);
            e.write_all(plain)?;
            e.finish()?;
        }
        Compression::Snappy => {
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for chunk in plain.chunks(XERIAL_BLOCK_BYTES) {
                let at = out.len();
                out.resize(at + 4 + snap::raw::max_compress_len(chunk.len()), 0);
                let n = enc
                    .compress(chunk, &mut out[at + 4..])
                    .map_err(std::io::Error::other)?;
                out.truncate(at + 4 + n);
                out[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
            }
        }
        Compression::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(out);
            e.write_all(plain)?;
            e.finish().map_err(std::io::Error::other)?;
        }
        Compression::Zstd => {
            let mut e = zstd::stream::write::Encoder::new(out, level.unwrap_or(1))?;
            e.write_all(plain)?;
            e.finish()?;
        }
    }
    Ok(())
}

/// Reads a decoder to its end into `out`, refusing output beyond `limit`
/// bytes in all.
fn read_bounded(
    codec: Compression,
    reader: impl Read,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecompressError> {
    let room = limit.saturating_sub(out.len());
    reader
        .take(room as u64 + 1)
        .read_to_end(out)
        .map_err(|e| malformed(codec, e))?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge(limit));
    }
    Ok(())
}

/// Appends one raw snappy block to `out`, keeping `out` within `limit`.
fn snappy_raw(data: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), DecompressError> {
    let len = snap::raw::decompress_len(data).map_err(|e| malformed(Compression::Snappy, e))?;
    if out.len() + len > limit {
        return Err(DecompressError::TooLarge(limit));
    }
    let start = out.len();
    out.resize(start + len, 0);
    snap::raw::Decoder::new()
        .decompress(data, &mut out[start..])
        .map_err(|e| malformed(Compression::Snappy, e))?;
    Ok(())
}

/// Decompresses `data` (a batch's records section) with `codec` into `out`,
/// which is cleared first and holds at most `limit` bytes afterwards.
pub fn decompress_into(
    codec: Compression,
    data: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecompressError> {
    out.clear();
    match codec {
        Compression::None => {
            if data.len() > limit {
                return Err(DecompressError::TooLarge(limit));
            }
            out.extend_from_slice(data);
            Ok(())
        }
        Compression::Gzip => read_bounded(codec, flate2::read::GzDecoder::new(data), limit, out),
        Compression::Lz4 => {
            read_bounded(codec, lz4_flex::frame::FrameDecoder::new(data), limit, out)
        }
        Compression::Zstd => {
            let decoder =
                zstd::stream::read::Decoder::new(data).map_err(|e| malformed(codec, e))?;
            read_bounded(codec, decoder, limit, out)
        }
        Compression::Snappy => {
            if data.len() >= XERIAL_HEADER_BYTES && data[..8] == XERIAL_MAGIC {
                let mut rest = &data[XERIAL_HEADER_BYTES..];
                while !rest.is_empty() {
                    if rest.len() < 4 {
                        return Err(malformed(codec, "truncated xerial block length"));
                    }
                    let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
                    let block = rest
                        .get(4..4 + len)
                        .ok_or_else(|| malformed(codec, "truncated xerial block"))?;
                    snappy_raw(block, limit, out)?;
                    rest = &rest[4 + len..];
                }
                Ok(())
            } else {
                snappy_raw(data, limit, out)
            }
        }
    }
}

/// Decompresses `data` with `codec` into a new buffer of at most `limit`
/// bytes.
pub fn decompress(
    codec: Compression,
    data: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    decompress_into(codec, data, limit, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Vec<u8> {
        (0..10_000u32).flat_map(|i| (i % 7).to_be_bytes()).collect()
    }

    // Proves every codec round-trips through compress_into and
    // decompress_into, appending after what the output held, and output
    // beyond the limit is refused.
    #[test]
    fn codecs_round_trip_within_limits() {
        let plain = plain();
        for codec in Compression::ALL {
            let mut out = b"head".to_vec();
            compress_into(codec, &plain, &mut out).unwrap();
            assert_eq!(&out[..4], b"head");
            let data = &out[4..];
            assert_eq!(decompress(codec, data, 1 << 20).unwrap(), plain, "{codec}");
            let mut reused = vec![1, 2, 3];
            decompress_into(codec, data, plain.len(), &mut reused).unwrap();
            assert_eq!(reused, plain, "{codec}");
            assert_eq!(
                decompress(codec, data, plain.len() - 1),
                Err(DecompressError::TooLarge(plain.len() - 1)),
                "{codec}"
            );
        }
        assert!(decompress(Compression::Gzip, b"not gzip", 1 << 20).is_err());
        assert!(decompress(Compression::Snappy, &XERIAL_MAGIC, 1 << 20).is_err());
    }

    // Proves raw snappy, as librdkafka writes it, is read as well as the
    // xerial framing, and the xerial output has the Java client's header
    // and block size.
    #[test]
    fn both_snappy_framings() {
        let plain = plain();
        let raw = snap::raw::Encoder::new().compress_vec(&plain).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, 1 << 20).unwrap(),
            plain
        );
        let mut xerial = Vec::new();
        compress_into(Compression::Snappy, &plain, &mut xerial).unwrap();
        assert_eq!(
            &xerial[..XERIAL_HEADER_BYTES],
            b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"
        );
        // 40,000 bytes make two blocks: 32 KiB and the rest.
        let first = u32::from_be_bytes(xerial[16..20].try_into().unwrap()) as usize;
        let second_at = XERIAL_HEADER_BYTES + 4 + first;
        let second = u32::from_be_bytes(xerial[second_at..second_at + 4].try_into().unwrap());
        assert_eq!(second_at + 4 + second as usize, xerial.len());
    }
}
