//! CreateAcls, DescribeAcls and DeleteAcls: the authorizer's bindings,
//! with Kafka's answers. Without an authorizer (`authorizer.class.name`
//! unset) each answers SECURITY_DISABLED; a principal needs ALTER on the
//! cluster to change ACLs and DESCRIBE to list them. Changes are stored in
//! the broker's metadata by the controller (in a cluster, through the
//! metadata quorum: they apply on every broker) before they are answered,
//! and apply to the next request of every connection.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::{
    self, AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType,
};
use crate::security::authz::ConnAuth;
use crate::shard::{Shard, CONTROLLER_SHARD};

const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// Why a request cannot be served as a whole.
fn refusal(auth: &ConnAuth, op: Operation) -> Option<(ErrorCode, Option<String>)> {
    if auth.authorizer().is_none() {
        return Some((ErrorCode::SecurityDisabled, Some(NO_AUTHORIZER.into())));
    }
    if !auth.cluster(op) {
        return Some((ErrorCode::ClusterAuthorizationFailed, None));
    }
    None
}

fn code<T>(value: i8, what: &str, parse: fn(i8) -> Option<T>) -> Result<T, String> {
    parse(value).ok_or_else(|| format!("Invalid {what} code {value}"))
}

fn binding(c: &AclCreation) -> Result<AclBinding, String> {
    let b = AclBinding {
        resource_type: code(c.resource_type, "resourceType", ResourceType::from_code)?,
        name: c.resource_name.to_string(),
        pattern: code(
            c.resource_pattern_type,
            "patternType",
            PatternType::from_code,
        )?,
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation: code(c.operation, "operation", Operation::from_code)?,
        permission: code(c.permission_type, "permissionType", Permission::from_code)?,
    };
    b.validate()?;
    Ok(b)
}

#[allow(clippy::too_many_arguments)]
fn filter(
    resource_type: i8,
    name: &Option<StrBytes>,
    pattern: i8,
    principal: &Option<StrBytes>,
    host: &Option<StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, String> {
    let f = AclFilter {
        resource_type: code(resource_type, "resourceType", ResourceType::from_code)?,
        name: name.as_ref().map(|s| s.to_string()),
        pattern: code(pattern, "patternType", PatternType::from_code)?,
        principal: principal.as_ref().map(|s| s.to_string()),
        host: host.as_ref().map(|s| s.to_string()),
        operation: code(operation, "operation", Operation::from_code)?,
        permission: code(permission, "permissionType", Permission::from_code)?,
    };
    f.validate()?;
    Ok(f)
}

/// Runs an ACL change on this node's controller (shard 0).
async fn on_controller<R: Send + 'static>(
    shard: &Rc<Shard>,
    f: impl FnMut(&mut BTreeSet<AclBinding>) -> R + Send + 'static,
) -> Result<R, String> {
    shard
        .run_on(CONTROLLER_SHARD, move |s| async move {
            s.controller()
                .change_acls(&s, f)
                .await
                .map_err(|e| e.message)
        })
        .await
        .map_err(|e| e.to_string())?
}

pub async fn create(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: CreateAclsRequest = req.decode()?;
    let result = |code: ErrorCode, message: Option<String>| {
        AclCreationResult::default()
            .with_error_code(code.code())
            .with_error_message(message.map(str_bytes))
    };
    if let Some((code, message)) = refusal(auth, Operation::Alter) {
        let results = request
            .creations
            .iter()
            .map(|_| result(code, message.clone()))
            .collect();
        return req.respond(&CreateAclsResponse::default().with_results(results));
    }
    let checked: Vec<Result<AclBinding, String>> = request.creations.iter().map(binding).collect();
    let valid: Vec<AclBinding> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok().cloned())
        .collect();
    let stored = if valid.is_empty() {
        Ok(())
    } else {
        let v = valid.clone();
        on_controller(shard, move |set| set.extend(v.iter().cloned())).await
    };
    match &stored {
        Ok(()) => {
            for b in &valid {
                tracing::info!(principal = %auth.principal, acl = ?b, "ACL created");
            }
        }
        Err(e) => tracing::warn!("CreateAcls: {e}"),
    }
    let results = checked
        .into_iter()
        .map(|c| match (c, &stored) {
            (Err(why), _) => result(ErrorCode::InvalidRequest, Some(why)),
            (Ok(_), Err(e)) => result(ErrorCode::UnknownServerError, Some(e.clone())),
            (Ok(_), Ok(())) => result(ErrorCode::None, None),
        })
        .collect();
    req.respond(&CreateAclsResponse::default().with_results(results))
}

pub fn describe(
    _shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: DescribeAclsRequest = req.decode()?;
    let fail = |code: ErrorCode, message: Option<String>| {
        req.respond(
            &DescribeAclsResponse::default()
                .with_error_code(code.code())
                .with_error_message(message.map(str_bytes)),
        )
    };
    if auth.authorizer().is_none() {
        return fail(ErrorCode::SecurityDisabled, Some(NO_AUTHORIZER.into()));
    }
    if !auth.cluster(Operation::Describe) {
        return fail(ErrorCode::ClusterAuthorizationFailed, None);
    }
    let f = match filter(
        request.resource_type_filter,
        &request.resource_name_filter,
        request.pattern_type_filter,
        &request.principal_filter,
        &request.host_filter,
        request.operation,
        request.permission_type,
    ) {
        Ok(f) => f,
        Err(why) => return fail(ErrorCode::InvalidRequest, Some(why)),
    };
    let found = auth.authorizer().expect("checked").describe(&f);
    let mut by_resource: BTreeMap<(ResourceType, String, PatternType), Vec<AclDescription>> =
        BTreeMap::new();
    for b in found {
        by_resource
            .entry((b.resource_type, b.name, b.pattern))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(str_bytes(b.principal))
                    .with_host(str_bytes(b.host))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code()),
            );
    }
    let resources = by_resource
        .into_iter()
        .map(|((kind, name, pattern), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(kind.code())
                .with_resource_name(str_bytes(name))
                .with_pattern_type(pattern.code())
                .with_acls(acls)
        })
        .collect();
    req.respond(&DescribeAclsResponse::default().with_resources(resources))
}

pub async fn delete(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: DeleteAclsRequest = req.decode()?;
    let result = |code: ErrorCode, message: Option<String>| {
        DeleteAclsFilterResult::default()
            .with_error_code(code.code())
            .with_error_message(message.map(str_bytes))
    };
    if let Some((code, message)) = refusal(auth, Operation::Alter) {
        let results = request
            .filters
            .iter()
            .map(|_| result(code, message.clone()))
            .collect();
        return req.respond(&DeleteAclsResponse::default().with_filter_results(results));
    }
    let checked: Vec<Result<AclFilter, String>> = request
        .filters
        .iter()
        .map(|f| {
            filter(
                f.resource_type_filter,
                &f.resource_name_filter,
                f.pattern_type_filter,
                &f.principal_filter,
                &f.host_filter,
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclFilter> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok().cloned())
        .collect();
    let removed = if valid.is_empty() {
        Ok(Vec::new())
    } else {
        on_controller(shard, move |set| acl::delete_matching(set, &valid)).await
    };
    if let Err(e) = &removed {
        tracing::warn!("DeleteAcls: {e}");
    }
    let mut removed_each = match &removed {
        Ok(r) => r.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    let results = checked
        .into_iter()
        .map(|c| match (c, &removed) {
            (Err(why), _) => result(ErrorCode::InvalidRequest, Some(why)),
            (Ok(_), Err(e)) => result(ErrorCode::UnknownServerError, Some(e.clone())),
            (Ok(_), Ok(_)) => {
                let gone = removed_each.next().unwrap_or_default();
                for b in &gone {
                    tracing::info!(principal = %auth.principal, acl = ?b, "ACL deleted");
                }
                result(ErrorCode::None, None).with_matching_acls(
                    gone.into_iter()
                        .map(|b| {
                            DeleteAclsMatchingAcl::default()
                                .with_resource_type(b.resource_type.code())
                                .with_resource_name(str_bytes(b.name))
                                .with_pattern_type(b.pattern.code())
                                .with_principal(str_bytes(b.principal))
                                .with_host(str_bytes(b.host))
                                .with_operation(b.operation.code())
                                .with_permission_type(b.permission.code())
                        })
                        .collect(),
                )
            }
        })
        .collect();
    req.respond(&DeleteAclsResponse::default().with_filter_results(results))
}
