//! SyncGroup: the leader hands in the assignment; every member waits for
//! its part. Runs on the group's coordinator shard.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::errors::ToErrorCode;
use super::{on_coordinator, str_bytes};
use crate::group::{GroupError, SyncParams, Synced};
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let r: SyncGroupRequest = req.decode()?;
    let v = req.version;
    let group_id = r.group_id.to_string();
    let params = SyncParams {
        group_id: group_id.clone(),
        generation_id: r.generation_id,
        member_id: r.member_id.to_string(),
        instance_id: r.group_instance_id.map(|s| s.to_string()),
        protocol_type: r.protocol_type.map(|s| s.to_string()),
        protocol_name: r.protocol_name.map(|s| s.to_string()),
        assignments: r
            .assignments
            .into_iter()
            .map(|a| {
                (
                    a.member_id.to_string(),
                    Bytes::copy_from_slice(&a.assignment),
                )
            })
            .collect(),
    };
    let result = if !auth.group(Operation::Read, &group_id) {
        Err(GroupError::Unauthorized)
    } else {
        on_coordinator(
            shard,
            &group_id,
            move |c| async move { c.sync(params).await },
        )
        .await
        .unwrap_or(Err(GroupError::CoordinatorGone))
    };
    // A refusal carries only its error.
    let (error, result) = match result {
        Ok(synced) => (Ok(()), synced),
        Err(e) => (
            Err(e),
            Synced {
                protocol_type: None,
                protocol_name: None,
                assignment: Bytes::new(),
            },
        ),
    };
    let response = SyncGroupResponse::default()
        .with_error_code(error.error_code().code())
        .with_protocol_type(result.protocol_type.filter(|_| v >= 5).map(str_bytes))
        .with_protocol_name(result.protocol_name.filter(|_| v >= 5).map(str_bytes))
        .with_assignment(result.assignment);
    req.respond(&response)
}
