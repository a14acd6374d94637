//! Request frames: header parsing and checks, and response framing.
//!
//! A frame is the bytes after the 4-byte size prefix. The connection has
//! already bounded its size by socket.request.max.bytes.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::api::{find, ApiSpec};
use super::guard::{inspect_body, GuardError};

/// Why a request frame was refused; the connection is closed and this is
/// logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is shorter than a request header")]
    TooShort(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("{key:?} v{version} is not supported (advertised: {advertised})")]
    UnsupportedVersion {
        key: ApiKey,
        version: i16,
        advertised: String,
    },
    #[error("bad request header: {0}")]
    BadHeader(String),
    #[error("request body rejected: {0}")]
    Guard(#[from] GuardError),
    #[error("request body rejected: {0}")]
    BadBody(String),
    #[error("encoding the response: {0}")]
    Encode(String),
}

/// A request whose header was parsed and whose API and version are
/// served; `body` is the rest of the frame, checked by the guard, not yet
/// decoded.
#[derive(Debug, Clone)]
pub struct RequestFrame {
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: Option<StrBytes>,
    pub body: Bytes,
}

/// What a frame holds.
#[derive(Debug)]
pub enum Parsed {
    Request(&'static ApiSpec, RequestFrame),
    /// An ApiVersions request above the versions served: answered with a
    /// v0 response carrying UNSUPPORTED_VERSION and the served versions
    /// (KIP-511), so the client can retry with one of them.
    ApiVersionsTooNew {
        correlation_id: i32,
    },
}

/// Parses a request frame's header, checks that `table` serves its API and
/// version, and runs the guard over its body.
pub fn parse_request(mut frame: Bytes, table: &'static [ApiSpec]) -> Result<Parsed, FrameError> {
    if frame.len() < 4 {
        return Err(FrameError::TooShort(frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(key).map_err(|_| FrameError::UnknownApiKey(key))?;
    if frame.len() < 8 {
        return Err(FrameError::TooShort(frame.len()));
    }
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let spec = find(table, api_key).filter(|s| s.serves(version));
    let Some(spec) = spec else {
        if api_key == ApiKey::ApiVersions && version > 0 {
            return Ok(Parsed::ApiVersionsTooNew { correlation_id });
        }
        let advertised = match find(table, api_key) {
            Some(s) => format!("{}-{}", s.advertised.0, s.advertised.1),
            None => "none".to_string(),
        };
        return Err(FrameError::UnsupportedVersion {
            key: api_key,
            version,
            advertised,
        });
    };
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| FrameError::BadHeader(e.to_string()))?;
    if !spec.guarded {
        // The handler's own decoder bounds every count and length.
        return Ok(Parsed::Request(
            spec,
            request_frame(header, api_key, version, correlation_id, frame),
        ));
    }
    // The crate preallocates arrays from counts on the wire: nothing
    // reaches it before every count and length is checked against the
    // bytes actually present.
    let stats = inspect_body(spec.layout, version, &frame)?;
    // Decoded structs take up to ~120 bytes per array element, which can be
    // a handful of bytes on the wire; bounding the element count keeps a
    // decoded request within ~16x its frame (plus 512 KiB) however it is
    // crafted. Real clients' requests are far below this.
    // Unknown tagged fields become map entries the same way.
    let max_elements = frame.len() as u64 / 8 + 4096;
    let elements = stats.array_elements + stats.tagged_fields;
    if elements > max_elements {
        return Err(FrameError::BadBody(format!(
            "{elements} array elements and tagged fields in a {}-byte body (at most {max_elements})",
            frame.len()
        )));
    }
    Ok(Parsed::Request(
        spec,
        request_frame(header, api_key, version, correlation_id, frame),
    ))
}

fn request_frame(
    header: RequestHeader,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: Bytes,
) -> RequestFrame {
    RequestFrame {
        api_key,
        version,
        correlation_id,
        client_id: header.client_id,
        body,
    }
}

impl RequestFrame {
    /// Decodes the body with the kafka-protocol crate.
    pub fn decode<T: Decodable>(&self) -> Result<T, FrameError> {
        let mut body = self.body.clone();
        T::decode(&mut body, self.version).map_err(|e| FrameError::BadBody(e.to_string()))
    }

    /// Frames a response to this request.
    pub fn respond<T: Encodable>(&self, body: &T) -> Result<Bytes, FrameError> {
        encode_response(self.api_key, self.version, self.correlation_id, body)
    }
}

/// Encodes a whole response frame: size prefix, header, body.
pub fn encode_response<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Bytes, FrameError> {
    let header_version = api_key.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header
        .compute_size(header_version)
        .map_err(|e| FrameError::Encode(e.to_string()))?
        + body
            .compute_size(version)
            .map_err(|e| FrameError::Encode(e.to_string()))?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    body.encode(&mut buf, version)
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    Ok(buf.freeze())
}
