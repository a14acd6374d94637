//! ApiVersions: the served APIs and versions, as the router's API table
//! lists them (KIP-511 fallback for versions above ours).

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use super::errors::{Refusal, ToErrorCode};
use crate::protocol::frame::encode_response;
use crate::protocol::{ApiSpec, FrameError, RequestFrame};

fn response(refusal: Option<Refusal>, apis: &[ApiSpec]) -> ApiVersionsResponse {
    let api_keys = apis
        .iter()
        .map(|spec| {
            ApiVersion::default()
                .with_api_key(spec.key as i16)
                .with_min_version(spec.advertised.0)
                .with_max_version(spec.advertised.1)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(refusal.map_or(0, |r| r.error_code().code()))
        .with_api_keys(api_keys)
}

pub fn handle(req: &RequestFrame, apis: &[ApiSpec]) -> Result<Bytes, FrameError> {
    // The body carries the client's name and version (v3+); nothing in it
    // changes the answer, but it must decode.
    let _: ApiVersionsRequest = req.decode()?;
    req.respond(&response(None, apis))
}

/// The v0 answer to an ApiVersions request newer than we serve.
pub fn too_new(correlation_id: i32, apis: &[ApiSpec]) -> Result<Bytes, FrameError> {
    encode_response(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &response(Some(Refusal::ApiVersionsTooNew), apis),
    )
}
