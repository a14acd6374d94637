//! LeaveGroup: members leave at once (v0-2: one member by id; v3+: a batch,
//! static members by instance id). Runs on the group's coordinator shard.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::errors::ToErrorCode;
use super::{on_coordinator, str_bytes};
use crate::group::GroupError;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let r: LeaveGroupRequest = req.decode()?;
    let v = req.version;
    let group_id = r.group_id.to_string();
    let leaving: Vec<(String, Option<String>)> = if v >= 3 {
        r.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(r.member_id.to_string(), None)]
    };
    let gid = group_id.clone();
    let who = leaving.clone();
    let n = leaving.len();
    let outcome = if !auth.group(Operation::Read, &group_id) {
        Err(GroupError::Unauthorized)
    } else {
        on_coordinator(
            shard,
            &group_id,
            move |c| async move { c.leave(&gid, &who) },
        )
        .await
        .unwrap_or(Err(GroupError::CoordinatorGone))
    };
    // A refused request is every member's answer too.
    let (error, per_member) = match outcome {
        Ok(per_member) => (Ok(()), per_member),
        Err(e) => (Err(e), vec![Err(e); n]),
    };
    let response = if v >= 3 {
        let members = leaving
            .into_iter()
            .zip(per_member)
            .map(|((member_id, instance_id), e)| {
                MemberResponse::default()
                    .with_member_id(str_bytes(member_id))
                    .with_group_instance_id(instance_id.map(str_bytes))
                    .with_error_code(e.error_code().code())
            })
            .collect();
        LeaveGroupResponse::default()
            .with_error_code(error.error_code().code())
            .with_members(members)
    } else {
        // One member: its error is the response's.
        let e = error.and(per_member.first().copied().unwrap_or(Ok(())));
        LeaveGroupResponse::default().with_error_code(e.error_code().code())
    };
    req.respond(&response)
}
