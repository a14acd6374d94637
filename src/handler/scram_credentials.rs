//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554):
//! the broker's SCRAM users, with Kafka's per-user errors. Changes are
//! stored in the broker's metadata (in a cluster, the metadata log, so
//! every broker takes them) before they are answered and apply to the next
//! authentication.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};

use super::str_bytes;
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::security::credentials::{apply_changes, ScramEntry};
use crate::security::scram::{ScramCredential, ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS};
use crate::shard::{Shard, CONTROLLER_SHARD};

fn mechanism_of(kafka_type: i8) -> Option<ScramMechanism> {
    [ScramMechanism::Sha256, ScramMechanism::Sha512]
        .into_iter()
        .find(|m| m.kafka_type() == kafka_type)
}

pub fn describe(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: DescribeUserScramCredentialsRequest = req.decode()?;
    if !auth.cluster(Operation::Describe) {
        return req.respond(
            &DescribeUserScramCredentialsResponse::default()
                .with_error_code(ErrorCode::ClusterAuthorizationFailed.code()),
        );
    }
    let known: Vec<(String, ScramMechanism, u32)> = shard
        .config
        .users
        .as_ref()
        .map(|u| u.read().scram_users())
        .unwrap_or_default();
    let mut by_user: BTreeMap<String, Vec<CredentialInfo>> = BTreeMap::new();
    for (name, m, iterations) in &known {
        by_user.entry(name.clone()).or_default().push(
            CredentialInfo::default()
                .with_mechanism(m.kafka_type())
                .with_iterations(*iterations as i32),
        );
    }
    let asked: Option<Vec<String>> = request
        .users
        .filter(|u| !u.is_empty())
        .map(|u| u.into_iter().map(|n| n.name.to_string()).collect());
    let results = match asked {
        None => by_user
            .into_iter()
            .map(|(user, infos)| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(str_bytes(user))
                    .with_credential_infos(infos)
            })
            .collect(),
        Some(names) => {
            let mut count: HashMap<&str, usize> = HashMap::new();
            for n in &names {
                *count.entry(n.as_str()).or_default() += 1;
            }
            let mut seen = std::collections::HashSet::new();
            names
                .iter()
                .filter(|n| seen.insert(n.as_str()))
                .map(|n| {
                    let r = DescribeUserScramCredentialsResult::default().with_user(str_bytes(n.clone()));
                    if count[n.as_str()] > 1 {
                        r.with_error_code(ErrorCode::DuplicateResource.code())
                            .with_error_message(Some(str_bytes(format!(
                                "Cannot describe SCRAM credentials for the same user twice in a single request: {n}"
                            ))))
                    } else if let Some(infos) = by_user.get(n) {
                        r.with_credential_infos(infos.clone())
                    } else {
                        r.with_error_code(ErrorCode::ResourceNotFound.code())
                            .with_error_message(Some(str_bytes(format!(
                                "Attempt to describe a user credential that does not exist: {n}"
                            ))))
                    }
                })
                .collect()
        }
    };
    req.respond(&DescribeUserScramCredentialsResponse::default().with_results(results))
}

/// One user's change, or why it is refused.
enum Change {
    Delete(ScramMechanism),
    Upsert(ScramEntry),
}

/// A user's change, or Kafka's error code and message for it.
type Checked = Result<Change, (ErrorCode, String)>;

/// The checks deletions and upsertions share: a name, a known mechanism.
fn name_and_mechanism(name: &str, kafka_type: i8) -> Result<ScramMechanism, (ErrorCode, String)> {
    if name.is_empty() {
        return Err((
            ErrorCode::UnacceptableCredential,
            "Username must not be empty".to_string(),
        ));
    }
    mechanism_of(kafka_type).ok_or((
        ErrorCode::UnsupportedSaslMechanism,
        "Unknown SCRAM mechanism".to_string(),
    ))
}

fn refused(code: ErrorCode, message: &str) -> Checked {
    Err((code, message.to_string()))
}

pub async fn alter(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: AlterUserScramCredentialsRequest = req.decode()?;
    if !auth.cluster(Operation::Alter) {
        let mut users: Vec<String> = Vec::new();
        for name in request
            .deletions
            .iter()
            .map(|d| d.name.to_string())
            .chain(request.upsertions.iter().map(|u| u.name.to_string()))
        {
            if !users.contains(&name) {
                users.push(name);
            }
        }
        let results = users
            .into_iter()
            .map(|u| {
                AlterUserScramCredentialsResult::default()
                    .with_user(str_bytes(u))
                    .with_error_code(ErrorCode::ClusterAuthorizationFailed.code())
            })
            .collect();
        return req.respond(&AlterUserScramCredentialsResponse::default().with_results(results));
    }
    let store = shard.config.users.clone();
    let exists = |m: ScramMechanism, name: &str| {
        store
            .as_ref()
            .is_some_and(|s| s.read().scram(m, name).is_some())
    };
    // Per user, in request order: one change at most (Kafka refuses a user
    // named twice, deletions and upsertions together).
    let mut changes: Vec<(String, Checked)> = Vec::new();
    let mut add = |name: String, change: Checked| {
        if let Some((_, c)) = changes.iter_mut().find(|(n, _)| *n == name) {
            if c.is_ok() {
                *c = refused(
                    ErrorCode::DuplicateResource,
                    "A user credential cannot be altered twice in the same request",
                );
            }
        } else {
            changes.push((name, change));
        }
    };
    for d in &request.deletions {
        let name = d.name.to_string();
        let change = name_and_mechanism(&name, d.mechanism).and_then(|m| {
            if exists(m, &name) {
                Ok(Change::Delete(m))
            } else {
                refused(
                    ErrorCode::ResourceNotFound,
                    "Attempt to delete a user credential that does not exist",
                )
            }
        });
        add(name, change);
    }
    for u in &request.upsertions {
        let name = u.name.to_string();
        let change = name_and_mechanism(&name, u.mechanism).and_then(|m| {
            if u.iterations < MIN_ITERATIONS as i32 {
                refused(ErrorCode::UnacceptableCredential, "Too few iterations")
            } else if u.iterations > MAX_ITERATIONS as i32 {
                refused(ErrorCode::UnacceptableCredential, "Too many iterations")
            } else {
                Ok(Change::Upsert(ScramEntry {
                    mechanism: m.name().to_string(),
                    name: name.clone(),
                    credential: ScramCredential::from_salted_password(
                        m,
                        &u.salted_password,
                        &u.salt,
                        u.iterations as u32,
                    ),
                }))
            }
        });
        add(name, change);
    }
    let mut deletions = Vec::new();
    let mut upserts = Vec::new();
    for (name, c) in &changes {
        match c {
            Ok(Change::Delete(m)) => deletions.push((*m, name.clone())),
            Ok(Change::Upsert(e)) => upserts.push(e.clone()),
            Err(_) => {}
        }
    }
    let stored: Result<(), String> = if deletions.is_empty() && upserts.is_empty() {
        Ok(())
    } else {
        // Through the controller into the metadata (in a cluster, the
        // metadata log: every broker takes the change).
        let (d, u) = (deletions.clone(), upserts.clone());
        shard
            .run_on(CONTROLLER_SHARD, move |s| async move {
                s.controller()
                    .change_scram(&s, move |all| apply_changes(all, &d, &u))
                    .await
                    .map_err(|e| e.message)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
    };
    if let Err(e) = &stored {
        tracing::warn!("AlterUserScramCredentials: {e}");
    } else {
        for (m, n) in &deletions {
            tracing::info!(user = %n, mechanism = m.name(), "SCRAM credential deleted");
        }
        for e in &upserts {
            tracing::info!(user = %e.name, mechanism = %e.mechanism, "SCRAM credential stored");
        }
    }
    let results = changes
        .into_iter()
        .map(|(name, c)| {
            let r = AlterUserScramCredentialsResult::default().with_user(str_bytes(name));
            match (c, &stored) {
                (Err((code, message)), _) => r
                    .with_error_code(code.code())
                    .with_error_message(Some(str_bytes(message))),
                (Ok(_), Err(e)) => r
                    .with_error_code(ErrorCode::UnknownServerError.code())
                    .with_error_message(Some(str_bytes(e.clone()))),
                (Ok(_), Ok(())) => r,
            }
        })
        .collect();
    req.respond(&AlterUserScramCredentialsResponse::default().with_results(results))
}
