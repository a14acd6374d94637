//! A shardlog cluster for tests: three combined nodes
//! (`process.roles=broker,controller`) or any mix of roles, each its own
//! process with its own data directory, on 127.0.0.1, .2, .3 ..., or each
//! in its own network namespace on a bridge (so a node can be cut off for
//! real); Kafka's KRaft keys; quick quorum timeouts. Helpers ask nodes what they see:
//! DescribeQuorum, Metadata (librdkafka), partition leaders.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use rdkafka::consumer::Consumer;

use super::broker::{reserve_ports, Broker, BrokerOptions};
use super::raw::{str_bytes, Conn};
use super::rdk;

/// `process.roles` values.
pub const COMBINED: &str = "broker,controller";
pub const CONTROLLER: &str = "controller";
pub const BROKER: &str = "broker";

pub const NONE: i16 = 0;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
/// How long an election may take here: controller.quorum.fetch.timeout.ms
/// is 1000 in these tests, so a follower waits 1-2 s before it campaigns;
/// a loaded 2-core CI machine gets ample slack on top.
pub const ELECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Overrides of one node's own, given its id, host and client port (the
/// shard's is the next, CONTROLLER the one after).
pub type PerNode<'a> = &'a dyn Fn(i32, Ipv4Addr, u16) -> Vec<(String, String)>;

pub struct Cluster {
    /// Node i+1 is `nodes[i]`, on `hosts[i]`.
    pub nodes: Vec<Broker>,
    hosts: Vec<Ipv4Addr>,
    /// Every node's client port; its shard listens on the next, and its
    /// CONTROLLER listener on the one after.
    pub port: u16,
    /// The network namespaces the nodes run in, when they do.
    net: Option<Namespaces>,
}

fn node_options(node: i32, h: Ipv4Addr, port: u16, voters: &str) -> BrokerOptions {
    BrokerOptions::per_shard(1)
        .with_override("process.roles", "broker,controller")
        .with_override("node.id", node)
        .with_override("controller.quorum.voters", voters)
        .with_override(
            "listeners",
            format!("PLAINTEXT://{h}:{port},CONTROLLER://{h}:{}", port + 2),
        )
        .with_override("advertised.listeners", format!("PLAINTEXT://{h}:{port}"))
        .with_override("controller.listener.names", "CONTROLLER")
        .with_override("controller.quorum.fetch.timeout.ms", 1000)
        .with_override("broker.session.timeout.ms", 2000)
}

impl Cluster {
    /// Three combined nodes sharing the port numbers P (clients), P+1 (the
    /// one shard's own listener) and P+2 (CONTROLLER), each on its own
    /// loopback address (127.0.0.1, .2, .3).
    pub fn start() -> Cluster {
        Cluster::start_with(&[])
    }

    /// Like [`Cluster::start`], with more overrides on every node.
    pub fn start_with(extra: &[(&str, &str)]) -> Cluster {
        Cluster::start_roles(&[COMBINED; 3], extra)
    }

    /// Like [`Cluster::start`], with node `node` controller-only
    /// (`process.roles=controller`, no client listener).
    pub fn start_with_controller_only(node: i32) -> Cluster {
        let mut roles = [COMBINED; 3];
        roles[node as usize - 1] = CONTROLLER;
        Cluster::start_roles(&roles, &[])
    }

    /// Node n (from 1) with `process.roles` = `roles[n - 1]`, on 127.0.0.n;
    /// the controllers are the voters.
    pub fn start_roles(roles: &[&str], extra: &[(&str, &str)]) -> Cluster {
        Cluster::start_each(roles, extra, &|_, _, _| Vec::new())
    }

    /// Like [`Cluster::start_roles`], with overrides of node n's own on
    /// top: `per_node(n, its host, the client port)`.
    pub fn start_each(roles: &[&str], extra: &[(&str, &str)], per_node: PerNode) -> Cluster {
        let (port, locks) = reserve_ports(3);
        let hosts = (1..=roles.len() as u8)
            .map(|n| Ipv4Addr::new(127, 0, 0, n))
            .collect();
        Cluster::start_on(hosts, port, locks, None, extra, roles, per_node)
    }

    /// Three nodes, each in its own network namespace on a bridge, so one
    /// can be cut off for real ([`Cluster::isolate`]). `None` (with the
    /// reason printed) where namespaces cannot be made (not root, no
    /// bridge support).
    pub fn start_in_namespaces(extra: &[(&str, &str)]) -> Option<Cluster> {
        let net = match Namespaces::create(3) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("SKIPPED: network namespaces unavailable here: {e}");
                return None;
            }
        };
        let hosts = (1..=3).map(|n| net.address(n)).collect();
        Some(Cluster::start_on(
            hosts,
            19092,
            Vec::new(),
            Some(net),
            extra,
            &[COMBINED; 3],
            &|_, _, _| Vec::new(),
        ))
    }

    fn start_on(
        hosts: Vec<Ipv4Addr>,
        port: u16,
        locks: Vec<std::fs::File>,
        net: Option<Namespaces>,
        extra: &[(&str, &str)],
        roles: &[&str],
        per_node: PerNode,
    ) -> Cluster {
        let voters: Vec<String> = (1..=roles.len())
            .filter(|&n| roles[n - 1].contains("controller"))
            .map(|n| format!("{n}@{}:{}", hosts[n - 1], port + 2))
            .collect();
        let voters = voters.join(",");
        let mut locks = Some(locks);
        let nodes = (1..=roles.len() as i32)
            .map(|n| {
                let dir = super::temp_dir();
                let data = dir.path().join("data");
                let h = hosts[n as usize - 1];
                let mut options = node_options(n, h, port, &voters);
                let role = roles[n as usize - 1];
                options = options.with_override("process.roles", role);
                if role == CONTROLLER {
                    options = options
                        .with_override("listeners", format!("CONTROLLER://{h}:{}", port + 2));
                    options
                        .overrides
                        .retain(|(k, _)| k != "advertised.listeners");
                    options.clients = false;
                } else if role == BROKER {
                    options = options.with_override("listeners", format!("PLAINTEXT://{h}:{port}"));
                }
                for (k, v) in extra {
                    options = options.with_override(k, v);
                }
                for (k, v) in per_node(n, h, port) {
                    options = options.with_override(&k, v);
                }
                if let Some(net) = &net {
                    options.wrapper = net.wrapper(n);
                }
                Broker::start_on(
                    options,
                    dir,
                    data,
                    h,
                    port,
                    locks.take().unwrap_or_default(),
                )
            })
            .collect();
        Cluster {
            nodes,
            hosts,
            port,
            net,
        }
    }

    pub fn host(&self, node: i32) -> Ipv4Addr {
        self.hosts[node as usize - 1]
    }

    /// Node `node`'s client listener.
    pub fn bootstrap(&self, node: i32) -> String {
        format!("{}:{}", self.host(node), self.port)
    }

    /// Node `node`'s one shard's own listener.
    pub fn shard_address(&self, node: i32) -> String {
        format!("{}:{}", self.host(node), self.port + 1)
    }

    pub fn node(&mut self, id: i32) -> &mut Broker {
        &mut self.nodes[id as usize - 1]
    }

    pub fn live(&mut self) -> Vec<i32> {
        (1..=self.nodes.len() as i32)
            .filter(|&n| self.node(n).is_running())
            .collect()
    }

    /// Cuts node `node` off the network (its link to the bridge down), or
    /// joins it again.
    pub fn isolate(&self, node: i32, cut: bool) {
        self.net
            .as_ref()
            .expect("a cluster in network namespaces")
            .set_link(node, !cut);
    }

    pub fn describe(&self, node: i32) -> Option<DescribeQuorumResponse> {
        let addr = self.bootstrap(node);
        let mut conn = Conn::try_open(&addr).ok()?;
        let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(str_bytes("__cluster_metadata")))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
        Some(conn.call(ApiKey::DescribeQuorum, 2, &request))
    }

    /// Waits until every node in `nodes` names the same leader, at an
    /// epoch above `min_epoch`, the leader answers with no error and
    /// every voter in `caught_up` has its log end at the leader's; returns
    /// the leader's answer.
    pub fn agreed_leader(&self, nodes: &[i32], min_epoch: i32, caught_up: &[i32]) -> Agreed {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < ELECTION_TIMEOUT {
            let views: Vec<Option<(i32, i32, i16)>> = nodes
                .iter()
                .map(|&n| {
                    self.describe(n).map(|r| {
                        let p = &r.topics[0].partitions[0];
                        (p.leader_id.0, p.leader_epoch, p.error_code)
                    })
                })
                .collect();
            last = format!("{views:?}");
            if let Some(Some((leader, epoch, _))) = views.first() {
                let agree = views
                    .iter()
                    .all(|v| matches!(v, Some((l, e, _)) if l == leader && e == epoch));
                if agree && *epoch > min_epoch && nodes.contains(leader) {
                    let r = self.describe(*leader).expect("the leader answers");
                    let p = &r.topics[0].partitions[0];
                    assert_eq!(
                        p.error_code, NONE,
                        "the leader answers without error: {r:?}"
                    );
                    let leader_leo = p
                        .current_voters
                        .iter()
                        .find(|v| v.replica_id.0 == *leader)
                        .map(|v| v.log_end_offset)
                        .expect("the leader is among the voters");
                    let caught = caught_up.iter().all(|id| {
                        p.current_voters
                            .iter()
                            .any(|v| v.replica_id.0 == *id && v.log_end_offset == leader_leo)
                    });
                    if caught && p.high_watermark == leader_leo {
                        // A follower relays the leader's answer, or says
                        // it is not the leader where it cannot forward
                        // (the leader's broker not registered yet).
                        for (&n, v) in nodes.iter().zip(&views) {
                            let code = v.expect("answered").2;
                            assert!(
                                code == NONE || (n != *leader && code == NOT_LEADER_OR_FOLLOWER),
                                "node {n}'s answer: {views:?}"
                            );
                        }
                        return Agreed {
                            leader: *leader,
                            epoch: *epoch,
                            high_watermark: p.high_watermark,
                        };
                    }
                    last = format!("{views:?}; leader's view {p:?}");
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no agreed leader among nodes {nodes:?} within {ELECTION_TIMEOUT:?}; last seen {last}"
        );
    }
}

impl Cluster {
    /// The broker nodes node `asked`'s Metadata lists (id, host:port).
    pub fn metadata_nodes(&self, asked: i32) -> Vec<(i32, String)> {
        rdk::metadata_brokers(&self.bootstrap(asked))
    }

    /// Every node in `asked` lists exactly the brokers `live` (each one
    /// node, on its shard's port), within the timeout.
    pub fn wait_listed(&self, asked: &[i32], live: &[i32]) -> Duration {
        let want: Vec<(i32, String)> = live.iter().map(|&n| (n, self.shard_address(n))).collect();
        let start = Instant::now();
        loop {
            let seen: Vec<Vec<(i32, String)>> =
                asked.iter().map(|&n| self.metadata_nodes(n)).collect();
            if seen.iter().all(|s| *s == want) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < ELECTION_TIMEOUT,
                "Metadata from nodes {asked:?} should list {want:?}; saw {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Cluster {
    /// Waits until node `n`'s log holds `text`.
    pub fn wait_log(&mut self, n: i32, text: &str) {
        let start = Instant::now();
        while !self.node(n).log().contains(text) {
            assert!(
                start.elapsed() < ELECTION_TIMEOUT,
                "node {n} should log {text:?}:\n{}",
                self.node(n).log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Agreed {
    pub leader: i32,
    pub epoch: i32,
    pub high_watermark: i64,
}

/// The Status column of Kafka's `kafka-metadata-quorum describe
/// --replication` through `bootstrap` (Leader, Follower, Observer).
pub fn replication_statuses(bootstrap: &str) -> (Vec<String>, String) {
    let out = super::kafka::tool_ok(
        "kafka-metadata-quorum",
        &["--bootstrap-server", bootstrap, "describe", "--replication"],
    );
    let statuses = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last())
        .map(str::to_string)
        .collect();
    (statuses, out)
}

pub fn leaders(cluster: &Cluster, asked: i32, topic: &str) -> Vec<i32> {
    let c = rdk::consumer(&cluster.bootstrap(asked));
    let md = c
        .fetch_metadata(Some(topic), rdk::TIMEOUT)
        .expect("metadata");
    let t = &md.topics()[0];
    let mut out: Vec<(i32, i32)> = t
        .partitions()
        .iter()
        .map(|p| (p.id(), p.leader()))
        .collect();
    out.sort();
    out.into_iter().map(|(_, l)| l).collect()
}

/// Network namespaces `<prefix>n1..` joined by a bridge `<prefix>b`, the
/// root namespace on it at .254; removed on drop.
struct Namespaces {
    prefix: String,
    subnet: u8,
    count: i32,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Namespaces {
    fn create(count: i32) -> Result<Namespaces, String> {
        // Names unique per test process and fixture; interface names stay
        // within 15 bytes.
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = (std::process::id() % 10_000) * 10 + seq % 10;
        let net = Namespaces {
            prefix: format!("sl{id}"),
            subnet: (10 + (id % 200)) as u8,
            count: 0,
        };
        let mut net = net;
        let bridge = format!("{}b", net.prefix);
        ip(&["link", "add", "name", &bridge, "type", "bridge"])?;
        net.count = -1; // the bridge exists: drop removes it
        ip(&[
            "addr",
            "add",
            &format!("10.99.{}.254/24", net.subnet),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        for n in 1..=count {
            let ns = net.namespace(n);
            ip(&["netns", "add", &ns])?;
            net.count = n;
            let outer = net.link(n);
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &outer, "master", &bridge])?;
            ip(&["link", "set", &outer, "up"])?;
            let addr = format!("{}/24", net.address(n));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    fn namespace(&self, n: i32) -> String {
        format!("{}n{n}", self.prefix)
    }

    fn link(&self, n: i32) -> String {
        format!("{}v{n}", self.prefix)
    }

    fn address(&self, n: i32) -> Ipv4Addr {
        Ipv4Addr::new(10, 99, self.subnet, n as u8)
    }

    fn wrapper(&self, n: i32) -> Vec<String> {
        vec![
            "ip".to_string(),
            "netns".to_string(),
            "exec".to_string(),
            self.namespace(n),
        ]
    }

    fn set_link(&self, n: i32, up: bool) {
        ip(&["link", "set", &self.link(n), if up { "up" } else { "down" }])
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in 1..=self.count.max(0) {
            let _ = ip(&["link", "del", &self.link(n)]);
            let _ = ip(&["netns", "del", &self.namespace(n)]);
        }
        let _ = ip(&["link", "del", &format!("{}b", self.prefix)]);
    }
}
