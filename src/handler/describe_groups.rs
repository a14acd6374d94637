//! DescribeGroups: state, protocol, members (with metadata and assignment
//! once Stable) of each group, from its coordinator shard. An unknown group
//! is reported Dead, as Kafka does before v6.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};

use super::errors::ToErrorCode;
use super::{on_coordinator, str_bytes};
use crate::group::{GroupDescription, GroupError};
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let r: DescribeGroupsRequest = req.decode()?;
    let v = req.version;
    let with_ops = v >= 3 && r.include_authorized_operations;
    let mut groups = Vec::with_capacity(r.groups.len());
    for g in r.groups {
        let group_id = g.to_string();
        let gid = group_id.clone();
        let described = if !auth.group(Operation::Describe, &group_id) {
            Err(GroupError::Unauthorized)
        } else {
            on_coordinator(shard, &group_id, move |c| async move { c.describe(&gid) })
                .await
                .unwrap_or(Err(GroupError::CoordinatorGone))
        };
        let ops = if with_ops {
            super::authorized::group(auth, &group_id)
        } else {
            super::authorized::NOT_REQUESTED
        };
        // A group that could not be described is reported Dead.
        let (error, d) = match described {
            Ok(d) => (Ok(()), d),
            Err(e) => (Err(e), GroupDescription::unknown(&group_id)),
        };
        let members = d
            .members
            .into_iter()
            .map(|m| {
                DescribedGroupMember::default()
                    .with_member_id(str_bytes(m.member_id))
                    .with_group_instance_id(m.instance_id.filter(|_| v >= 4).map(str_bytes))
                    .with_client_id(str_bytes(m.client_id))
                    .with_client_host(str_bytes(m.client_host))
                    .with_member_metadata(m.metadata)
                    .with_member_assignment(m.assignment)
            })
            .collect();
        groups.push(
            DescribedGroup::default()
                .with_error_code(error.error_code().code())
                .with_group_id(GroupId(str_bytes(d.group_id)))
                .with_group_state(str_bytes(d.state))
                .with_protocol_type(str_bytes(d.protocol_type))
                .with_protocol_data(str_bytes(d.protocol))
                .with_members(members)
                .with_authorized_operations(ops),
        );
    }
    req.respond(&DescribeGroupsResponse::default().with_groups(groups))
}
