//! Decompression of a batch's records section, for the rare paths that must
//! look inside compressed batches (lookup by timestamp). The data path never
//! decompresses: batches are stored and served exactly as producers sent
//! them.
//!
//! Output is bounded by a caller-given limit, so a crafted batch (a
//! decompression bomb) costs at most that much memory.

use std::io::Read;

use super::batch::Compression;

/// The 8-byte magic of the xerial snappy framing the Java client writes;
/// librdkafka writes plain (raw) snappy. Both appear in Kafka logs.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_BYTES: usize = 16;

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

/// Reads a decoder to its end, refusing output beyond `limit` bytes.
fn read_bounded(
    codec: Compression,
    reader: impl Read,
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| malformed(codec, e))?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge(limit));
    }
    Ok(out)
}

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

/// Decompresses `data` (a batch's records section) with `codec`, producing
/// at most `limit` bytes.
pub fn decompress(
    codec: Compression,
    data: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    match codec {
        Compression::None => {
            if data.len() > limit {
                return Err(DecompressError::TooLarge(limit));
            }
            Ok(data.to_vec())
        }
        Compression::Gzip => read_bounded(codec, flate2::read::GzDecoder::new(data), limit),
        Compression::Lz4 => read_bounded(codec, lz4_flex::frame::FrameDecoder::new(data), limit),
        Compression::Zstd => {
            let decoder =
                zstd::stream::read::Decoder::new(data).map_err(|e| malformed(codec, e))?;
            read_bounded(codec, decoder, limit)
        }
        Compression::Snappy => {
            let mut out = Vec::new();
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
                    snappy_raw(block, limit, &mut out)?;
                    rest = &rest[4 + len..];
                }
            } else {
                snappy_raw(data, limit, &mut out)?;
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    // Proves each codec round-trips and output beyond the limit is refused.
    #[test]
    fn codecs_round_trip_within_limits() {
        let plain: Vec<u8> = (0..10_000u32).flat_map(|i| (i % 7).to_be_bytes()).collect();
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&plain).unwrap();
            e.finish().unwrap()
        };
        let lz4 = {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(&plain).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::stream::encode_all(&plain[..], 1).unwrap();
        let raw_snappy = snap::raw::Encoder::new().compress_vec(&plain).unwrap();
        let mut xerial = XERIAL_MAGIC.to_vec();
        xerial.extend_from_slice(&1i32.to_be_bytes());
        xerial.extend_from_slice(&1i32.to_be_bytes());
        for chunk in plain.chunks(16_000) {
            let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            xerial.extend_from_slice(&(block.len() as u32).to_be_bytes());
            xerial.extend_from_slice(&block);
        }
        for (codec, data) in [
            (Compression::Gzip, &gz),
            (Compression::Lz4, &lz4),
            (Compression::Zstd, &zst),
            (Compression::Snappy, &raw_snappy),
            (Compression::Snappy, &xerial),
        ] {
            assert_eq!(
                decompress(codec, data, 1 << 20).unwrap(),
                plain,
                "{codec:?}"
            );
            assert_eq!(
                decompress(codec, data, plain.len() - 1),
                Err(DecompressError::TooLarge(plain.len() - 1)),
                "{codec:?}"
            );
        }
        assert!(decompress(Compression::Gzip, b"not gzip", 1 << 20).is_err());
    }
}
