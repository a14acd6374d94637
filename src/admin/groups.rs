//! `shardlog groups`: each consumer group's state, members and their
//! assignments, committed offsets, log end offsets and lag, gathered the
//! way Kafka's own tools do it: ListGroups, then for each group
//! FindCoordinator, DescribeGroups and OffsetFetch at its coordinator, and
//! Metadata plus ListOffsets (latest) at the partitions' leaders.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, ListGroupsRequest, ListGroupsResponse, ListOffsetsRequest,
    ListOffsetsResponse, MetadataRequest, MetadataResponse, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::client::Pool;
use crate::error_code::CodeName;
use crate::group::consumer_protocol::assigned_partitions;

/// `shardlog groups` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct GroupsArgs {
    /// A broker to start from.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Only this group (default: every group).
    #[arg(long, value_name = "ID")]
    pub group: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Time limit of each request, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberReport {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// (topic, partitions), decoded from the consumer protocol.
    pub assignment: Vec<(String, Vec<i32>)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionReport {
    pub topic: String,
    pub partition: i32,
    /// None: nothing committed.
    pub committed: Option<i64>,
    pub metadata: String,
    pub log_end: Option<i64>,
    pub lag: Option<i64>,
    /// The member it is assigned to.
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    pub group: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub coordinator: String,
    pub members: Vec<MemberReport>,
    pub partitions: Vec<PartitionReport>,
    /// Sum of the known lags.
    pub total_lag: i64,
    pub error: Option<String>,
}

const CLIENT_ID: &str = "shardlog-groups";

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// The subcommand's entry point.
pub fn main(args: GroupsArgs) -> ExitCode {
    match collect(&args) {
        Ok(reports) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&reports).expect("reports serialize")
                );
            } else {
                print!("{}", render(&reports));
            }
            if reports.iter().any(|r| r.error.is_some()) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("shardlog groups: {e}");
            ExitCode::from(1)
        }
    }
}

/// Gathers the reports of the groups asked for.
pub fn collect(args: &GroupsArgs) -> Result<Vec<GroupReport>, String> {
    let mut pool = Pool::new(Duration::from_millis(args.timeout_ms), CLIENT_ID);
    let groups = match &args.group {
        Some(g) => vec![g.clone()],
        None => list_groups(&mut pool, &args.bootstrap)?,
    };
    let mut reports = Vec::with_capacity(groups.len());
    for g in groups {
        reports.push(match describe(&mut pool, &args.bootstrap, &g) {
            Ok(r) => r,
            Err(e) => GroupReport {
                group: g,
                state: String::new(),
                protocol_type: String::new(),
                protocol: String::new(),
                coordinator: String::new(),
                members: Vec::new(),
                partitions: Vec::new(),
                total_lag: 0,
                error: Some(e),
            },
        });
    }
    Ok(reports)
}

fn list_groups(pool: &mut Pool, bootstrap: &str) -> Result<Vec<String>, String> {
    let resp: ListGroupsResponse =
        pool.get(bootstrap)?
            .call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())?;
    if resp.error_code != 0 {
        return Err(format!("ListGroups: {}", CodeName(resp.error_code)));
    }
    let mut names: Vec<String> = resp.groups.iter().map(|g| g.group_id.to_string()).collect();
    names.sort();
    Ok(names)
}

fn coordinator(pool: &mut Pool, bootstrap: &str, group: &str) -> Result<String, String> {
    let req = FindCoordinatorRequest::default()
        .with_key(str_bytes(group))
        .with_key_type(0);
    let resp: FindCoordinatorResponse =
        pool.get(bootstrap)?
            .call(ApiKey::FindCoordinator, 3, &req)?;
    if resp.error_code != 0 {
        return Err(format!("FindCoordinator: {}", CodeName(resp.error_code)));
    }
    Ok(format!("{}:{}", resp.host, resp.port))
}

fn describe(pool: &mut Pool, bootstrap: &str, group: &str) -> Result<GroupReport, String> {
    let coord = coordinator(pool, bootstrap, group)?;
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes(group))]);
    let resp: DescribeGroupsResponse = pool.get(&coord)?.call(ApiKey::DescribeGroups, 5, &req)?;
    let d = resp
        .groups
        .into_iter()
        .next()
        .ok_or("DescribeGroups: no group in the response")?;
    if d.error_code != 0 {
        return Err(format!("DescribeGroups: {}", CodeName(d.error_code)));
    }
    let consumer = d.protocol_type.as_str() == "consumer";
    let members: Vec<MemberReport> = d
        .members
        .iter()
        .map(|m| MemberReport {
            member_id: m.member_id.to_string(),
            instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
            client_id: m.client_id.to_string(),
            client_host: m.client_host.to_string(),
            assignment: if consumer {
                assigned_partitions(&m.member_assignment).unwrap_or_default()
            } else {
                Vec::new()
            },
        })
        .collect();
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_topics(None);
    let offsets: OffsetFetchResponse = pool.get(&coord)?.call(ApiKey::OffsetFetch, 7, &fetch)?;
    if offsets.error_code != 0 {
        return Err(format!("OffsetFetch: {}", CodeName(offsets.error_code)));
    }
    let mut parts: BTreeMap<(String, i32), PartitionReport> = BTreeMap::new();
    let blank = |topic: &str, partition: i32| PartitionReport {
        topic: topic.to_string(),
        partition,
        committed: None,
        metadata: String::new(),
        log_end: None,
        lag: None,
        owner: None,
    };
    for t in &offsets.topics {
        for p in &t.partitions {
            if p.committed_offset < 0 {
                continue;
            }
            let mut r = blank(&t.name, p.partition_index);
            r.committed = Some(p.committed_offset);
            r.metadata = p
                .metadata
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            parts.insert((t.name.to_string(), p.partition_index), r);
        }
    }
    for m in &members {
        for (topic, ps) in &m.assignment {
            for &p in ps {
                parts
                    .entry((topic.clone(), p))
                    .or_insert_with(|| blank(topic, p))
                    .owner = Some(m.member_id.clone());
            }
        }
    }
    let topics: BTreeSet<String> = parts.keys().map(|(t, _)| t.clone()).collect();
    let ends = log_end_offsets(pool, bootstrap, &topics)?;
    let mut total_lag = 0;
    for ((t, p), r) in parts.iter_mut() {
        r.log_end = ends.get(&(t.clone(), *p)).copied();
        if let (Some(end), Some(c)) = (r.log_end, r.committed) {
            let lag = (end - c).max(0);
            r.lag = Some(lag);
            total_lag += lag;
        }
    }
    Ok(GroupReport {
        group: group.to_string(),
        state: d.group_state.to_string(),
        protocol_type: d.protocol_type.to_string(),
        protocol: d.protocol_data.to_string(),
        coordinator: coord,
        members,
        partitions: parts.into_values().collect(),
        total_lag,
        error: None,
    })
}

/// Latest offsets of every partition of `topics`, asked of each
/// partition's leader.
fn log_end_offsets(
    pool: &mut Pool,
    bootstrap: &str,
    topics: &BTreeSet<String>,
) -> Result<BTreeMap<(String, i32), i64>, String> {
    let mut out = BTreeMap::new();
    if topics.is_empty() {
        return Ok(out);
    }
    let req = MetadataRequest::default().with_topics(Some(
        topics
            .iter()
            .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(str_bytes(t)))))
            .collect(),
    ));
    let md: MetadataResponse = pool.get(bootstrap)?.call(ApiKey::Metadata, 9, &req)?;
    let addr_of: BTreeMap<i32, String> = md
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
        .collect();
    // Partitions by leader address.
    let mut by_leader: BTreeMap<String, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
    for t in &md.topics {
        let Some(name) = &t.name else { continue };
        for p in &t.partitions {
            let addr = addr_of
                .get(&p.leader_id.0)
                .cloned()
                .unwrap_or_else(|| bootstrap.to_string());
            by_leader
                .entry(addr)
                .or_default()
                .entry(name.to_string())
                .or_default()
                .push(p.partition_index);
        }
    }
    for (addr, topics) in by_leader {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        ListOffsetsTopic::default()
                            .with_name(TopicName(str_bytes(&t)))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|p| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(p)
                                            .with_timestamp(-1)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let resp: ListOffsetsResponse = pool.get(&addr)?.call(ApiKey::ListOffsets, 5, &req)?;
        for t in resp.topics {
            for p in t.partitions {
                if p.error_code == 0 {
                    out.insert((t.name.to_string(), p.partition_index), p.offset);
                }
            }
        }
    }
    Ok(out)
}

/// Left-aligned columns.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The text report: a block per group.
pub fn render(reports: &[GroupReport]) -> String {
    let mut out = String::new();
    if reports.is_empty() {
        out.push_str("no consumer groups\n");
    }
    for r in reports {
        if let Some(e) = &r.error {
            let _ = writeln!(out, "GROUP {}: {e}\n", r.group);
            continue;
        }
        let protocol = if r.protocol.is_empty() {
            r.protocol_type.clone()
        } else {
            format!("{}/{}", r.protocol_type, r.protocol)
        };
        let _ = writeln!(
            out,
            "GROUP {}  state={}  protocol={}  members={}  coordinator={}  lag={}",
            r.group,
            r.state,
            if protocol.is_empty() { "-" } else { &protocol },
            r.members.len(),
            r.coordinator,
            r.total_lag
        );
        if !r.members.is_empty() {
            let mut rows = vec![vec![
                "MEMBER".to_string(),
                "INSTANCE".to_string(),
                "CLIENT-ID".to_string(),
                "HOST".to_string(),
                "ASSIGNMENT".to_string(),
            ]];
            for m in &r.members {
                let assignment = m
                    .assignment
                    .iter()
                    .map(|(t, ps)| {
                        let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
                        format!("{t}[{}]", ps.join(","))
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                rows.push(vec![
                    m.member_id.clone(),
                    m.instance_id.clone().unwrap_or_else(|| "-".into()),
                    m.client_id.clone(),
                    if m.client_host.is_empty() {
                        "-".into()
                    } else {
                        m.client_host.clone()
                    },
                    if assignment.is_empty() {
                        "-".into()
                    } else {
                        assignment
                    },
                ]);
            }
            out.push_str(&table(&rows));
        }
        if !r.partitions.is_empty() {
            let mut rows = vec![vec![
                "TOPIC".to_string(),
                "PARTITION".to_string(),
                "COMMITTED".to_string(),
                "LOG-END".to_string(),
                "LAG".to_string(),
                "OWNER".to_string(),
                "METADATA".to_string(),
            ]];
            for p in &r.partitions {
                rows.push(vec![
                    p.topic.clone(),
                    p.partition.to_string(),
                    opt(p.committed),
                    opt(p.log_end),
                    opt(p.lag),
                    p.owner.clone().unwrap_or_else(|| "-".into()),
                    if p.metadata.is_empty() {
                        "-".into()
                    } else {
                        p.metadata.clone()
                    },
                ]);
            }
            out.push_str(&table(&rows));
        }
        out.push('\n');
    }
    out
}
