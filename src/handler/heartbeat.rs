//! Heartbeat: keeps a member's session alive and tells it when to rejoin
//! (REBALANCE_IN_PROGRESS). Runs on the group's coordinator shard.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::errors::ToErrorCode;
use super::on_coordinator;
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
    let r: HeartbeatRequest = req.decode()?;
    let group_id = r.group_id.to_string();
    let generation = r.generation_id;
    let member_id = r.member_id.to_string();
    let instance_id = r.group_instance_id.map(|s| s.to_string());
    let gid = group_id.clone();
    let error = if !auth.group(Operation::Read, &group_id) {
        Err(GroupError::Unauthorized)
    } else {
        on_coordinator(shard, &group_id, move |c| async move {
            c.heartbeat(&gid, generation, &member_id, instance_id.as_deref())
        })
        .await
        .unwrap_or(Err(GroupError::CoordinatorGone))
    };
    req.respond(&HeartbeatResponse::default().with_error_code(error.error_code().code()))
}
