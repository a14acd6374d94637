//! ListGroups: every group of every shard, optionally filtered by state
//! (v4+) and type (v5+; all groups here are "classic").

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::errors::ToErrorCode;
use super::str_bytes;
use crate::group::GroupError;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::Shard;

/// The group type of classic-protocol groups (KIP-848 names).
const CLASSIC: &str = "classic";

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let r: ListGroupsRequest = req.decode()?;
    let v = req.version;
    let states: Vec<String> = r.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = r.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let mut error = Ok(());
    let mut listed = Vec::new();
    for target in 0..shard.shard_count {
        match shard
            .run_on(target, |s| async move { s.groups.list() })
            .await
        {
            Ok(groups) => listed.extend(groups),
            Err(_) => error = Err(GroupError::CoordinatorGone),
        }
    }
    // DESCRIBE on the cluster lists every group; otherwise only the groups
    // the principal may describe (Kafka's rule).
    let all = auth.cluster(Operation::Describe);
    let groups = listed
        .into_iter()
        .filter(|g| all || auth.group(Operation::Describe, &g.group_id))
        .filter(|g| states.is_empty() || states.contains(&g.state.to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == CLASSIC))
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type))
                .with_group_state(str_bytes(if v >= 4 { g.state } else { "" }))
                .with_group_type(str_bytes(if v >= 5 { CLASSIC } else { "" }))
        })
        .collect();
    let response = ListGroupsResponse::default()
        .with_error_code(error.error_code().code())
        .with_groups(groups);
    req.respond(&response)
}
