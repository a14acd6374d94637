//! ApiVersions: the served APIs and versions (KIP-511 fallback for
//! versions above ours).

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use crate::error_code::ErrorCode;
use crate::protocol::frame::encode_response;
use crate::protocol::versions::SUPPORTED;
use crate::protocol::{FrameError, RequestFrame};

fn response(error: ErrorCode) -> ApiVersionsResponse {
    let api_keys = SUPPORTED
        .iter()
        .map(|&(key, lo, hi)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(lo)
                .with_max_version(hi)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error.code())
        .with_api_keys(api_keys)
}

pub fn handle(req: &RequestFrame) -> Result<Bytes, FrameError> {
    // The body carries the client's name and version (v3+); nothing in it
    // changes the answer, but it must decode.
    let _: ApiVersionsRequest = req.decode()?;
    req.respond(&response(ErrorCode::None))
}

/// The v0 answer to an ApiVersions request newer than we serve.
pub fn api_versions_too_new(correlation_id: i32) -> Result<super::Response, FrameError> {
    Ok(vec![encode_response(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &response(ErrorCode::UnsupportedVersion),
    )?])
}
