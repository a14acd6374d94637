//! DescribeClientQuotas: shardlog enforces no client quotas (produce and
//! fetch byte rates, request rates), so every filter matches nothing; the
//! filter itself is checked as Kafka checks it. Served so that Kafka's
//! `kafka-configs --describe --entity-type users` (which asks for quotas
//! and SCRAM credentials together) works.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};

use super::str_bytes;
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::Shard;

/// Kafka's match types: EXACT, DEFAULT, ANY.
const MATCH_TYPES: std::ops::RangeInclusive<i8> = 0..=2;

pub fn describe(
    _shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: DescribeClientQuotasRequest = req.decode()?;
    if !auth.cluster(Operation::DescribeConfigs) {
        return req.respond(
            &DescribeClientQuotasResponse::default()
                .with_error_code(crate::error_code::ErrorCode::ClusterAuthorizationFailed.code())
                .with_entries(None),
        );
    }
    let mut seen = std::collections::HashSet::new();
    let mut refusal = None;
    for c in &request.components {
        if !MATCH_TYPES.contains(&c.match_type) {
            refusal = Some(format!("Unexpected match type: {}", c.match_type));
        } else if c.match_type == 0 && c._match.is_none() {
            refusal = Some("Unexpected null match string for EXACT match type".to_string());
        } else if !seen.insert(c.entity_type.to_string()) {
            refusal = Some(format!(
                "Duplicate entity type in filter: {}",
                c.entity_type
            ));
        }
        if refusal.is_some() {
            break;
        }
    }
    let response = match refusal {
        Some(message) => DescribeClientQuotasResponse::default()
            .with_error_code(ErrorCode::InvalidRequest.code())
            .with_error_message(Some(str_bytes(message)))
            .with_entries(None),
        None => DescribeClientQuotasResponse::default().with_entries(Some(Vec::new())),
    };
    req.respond(&response)
}
