//! DeleteGroups: deletes empty groups and their committed offsets
//! (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP otherwise), each on its
//! coordinator shard.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};

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
    let r: DeleteGroupsRequest = req.decode()?;
    let mut results = Vec::with_capacity(r.groups_names.len());
    for g in r.groups_names {
        let group_id = g.to_string();
        let gid = group_id.clone();
        let error = if !auth.group(Operation::Delete, &group_id) {
            Err(GroupError::Unauthorized)
        } else {
            on_coordinator(
                shard,
                &group_id,
                move |c| async move { c.delete(&gid).await },
            )
            .await
            .unwrap_or(Err(GroupError::CoordinatorGone))
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(GroupId(str_bytes(group_id)))
                .with_error_code(error.error_code().code()),
        );
    }
    req.respond(&DeleteGroupsResponse::default().with_results(results))
}
