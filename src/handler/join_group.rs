//! JoinGroup: a member joins (or rejoins) a consumer group and waits for
//! the rebalance to complete; the leader gets the members' metadata. The
//! request runs on the group's coordinator shard.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use tracing::debug;

use super::errors::ToErrorCode;
use super::{on_coordinator, str_bytes};
use crate::group::{GroupError, JoinError, JoinParams, Joined};
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let r: JoinGroupRequest = req.decode()?;
    let v = req.version;
    let group_id = r.group_id.to_string();
    if let Some(reason) = &r.reason {
        debug!(group = %group_id, member = %r.member_id, "JoinGroup: {reason}");
    }
    let params = JoinParams {
        group_id: group_id.clone(),
        member_id: r.member_id.to_string(),
        instance_id: r.group_instance_id.map(|s| s.to_string()),
        client_id: req.client_id.as_deref().unwrap_or_default().to_string(),
        client_host: String::new(),
        session_timeout_ms: r.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if v >= 1 {
            r.rebalance_timeout_ms
        } else {
            r.session_timeout_ms
        },
        protocol_type: r.protocol_type.to_string(),
        // Copied so the group does not pin the request frame.
        protocols: r
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), Bytes::copy_from_slice(&p.metadata)))
            .collect(),
        require_known_member_id: v >= 4,
    };
    let member_id = params.member_id.clone();
    let result = if !auth.group(Operation::Read, &group_id) {
        Err(JoinError::new(GroupError::Unauthorized, &member_id))
    } else {
        on_coordinator(
            shard,
            &group_id,
            move |c| async move { c.join(params).await },
        )
        .await
        .unwrap_or_else(|| Err(JoinError::new(GroupError::CoordinatorGone, &member_id)))
    };
    // A refusal carries only its error and a member id.
    let (error, result) = match result {
        Ok(joined) => (Ok(()), joined),
        Err(e) => (
            Err(e.error),
            Joined {
                generation_id: -1,
                protocol_type: None,
                protocol_name: None,
                leader: String::new(),
                member_id: e.member_id,
                members: Vec::new(),
            },
        ),
    };
    let protocol_name = if v >= 7 {
        result.protocol_name.map(str_bytes)
    } else {
        // Not nullable before v7.
        Some(str_bytes(result.protocol_name.unwrap_or_default()))
    };
    let members = result
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(m.member_id))
                .with_group_instance_id(m.instance_id.filter(|_| v >= 5).map(str_bytes))
                .with_metadata(m.metadata)
        })
        .collect();
    let response = JoinGroupResponse::default()
        .with_error_code(error.error_code().code())
        .with_generation_id(result.generation_id)
        .with_protocol_type(result.protocol_type.filter(|_| v >= 7).map(str_bytes))
        .with_protocol_name(protocol_name)
        .with_leader(str_bytes(result.leader))
        .with_member_id(str_bytes(result.member_id))
        .with_members(members);
    req.respond(&response)
}
