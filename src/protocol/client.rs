//! The client side of the wire, for the admin subcommands: a request frame
//! out, a response frame's body decoded. No I/O.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Largest response frame a client here accepts (a guard against a
/// misbehaving peer).
pub const RESPONSE_BYTES_MAX: usize = 256 << 20;

/// `req` as a whole request frame (size prefix included).
pub fn request_frame<Req: Encodable>(
    key: ApiKey,
    version: i16,
    correlation: i32,
    client_id: &str,
    req: &Req,
) -> Result<BytesMut, String> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, key.request_header_version(version))
        .map_err(|e| format!("encoding the {key:?} header: {e}"))?;
    req.encode(&mut buf, version)
        .map_err(|e| format!("encoding {key:?} v{version}: {e}"))?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf)
}

/// Checks a response frame's size prefix.
pub fn response_size(prefix: [u8; 4], key: ApiKey) -> Result<usize, String> {
    let size = i32::from_be_bytes(prefix);
    if size < 0 || size as usize > RESPONSE_BYTES_MAX {
        return Err(format!("{key:?} response of {size} bytes"));
    }
    Ok(size as usize)
}

/// Decodes a response frame's body (after the size prefix), checking that
/// it answers `correlation`.
pub fn decode_response<Resp: Decodable>(
    mut body: Bytes,
    key: ApiKey,
    version: i16,
    correlation: i32,
) -> Result<Resp, String> {
    let header = ResponseHeader::decode(&mut body, key.response_header_version(version))
        .map_err(|e| format!("{key:?} response header: {e}"))?;
    if header.correlation_id != correlation {
        return Err(format!(
            "{key:?}: response to request {} where {correlation} was expected",
            header.correlation_id
        ));
    }
    Resp::decode(&mut body, version).map_err(|e| format!("{key:?} v{version} response: {e}"))
}
