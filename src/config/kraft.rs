//! KRaft cluster settings with Kafka's key names: `process.roles`,
//! `controller.quorum.voters`, `controller.listener.names`, named
//! `listeners`, and the quorum's and broker lifecycle's timeouts.
//!
//! Keys are collected as they come (a properties file has no order) and
//! checked together by [`KraftConfig::resolve`], which also picks the
//! broker's own listener out of `listeners`. The checks and their messages
//! are Kafka's (`KafkaConfig.validateValues`, `QuorumConfig`), so a
//! mistake reads the same as it would on a stock broker; where shardlog is
//! stricter (duplicate voter ids), the message says why.

use std::collections::BTreeSet;
use std::fmt;

/// One entry of `listeners` or `advertised.listeners`: `NAME://HOST:PORT`
/// (a bare `HOST:PORT` is named PLAINTEXT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedListener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for NamedListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

/// One entry of `controller.quorum.voters`: `ID@HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

/// `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    pub broker: bool,
    pub controller: bool,
}

impl Roles {
    pub fn name(self) -> &'static str {
        match (self.broker, self.controller) {
            (true, true) => "broker,controller",
            (true, false) => "broker",
            (false, true) => "controller",
            (false, false) => "",
        }
    }
}

/// The KRaft keys as read, before [`KraftConfig::resolve`] checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KraftConfig {
    /// process.roles; `None`: not a KRaft node, the single-node broker.
    pub roles: Option<Roles>,
    /// controller.quorum.voters, in the order given.
    pub voters: Vec<Voter>,
    /// controller.listener.names.
    pub controller_listener_names: Vec<String>,
    /// listeners, every entry (broker and controller).
    pub listeners: Vec<NamedListener>,
    /// advertised.listeners, every entry; empty: not given.
    pub advertised: Vec<NamedListener>,
    /// node.id and broker.id as given (each may be absent).
    pub node_id_key: Option<i32>,
    pub broker_id_key: Option<i32>,
    /// broker.heartbeat.interval.ms (Kafka: 2000).
    pub broker_heartbeat_interval_ms: u64,
    /// broker.session.timeout.ms (Kafka: 9000).
    pub broker_session_timeout_ms: u64,
    /// controller.quorum.election.timeout.ms (Kafka: 1000).
    pub election_timeout_ms: u64,
    /// controller.quorum.fetch.timeout.ms (Kafka: 2000).
    pub fetch_timeout_ms: u64,
    /// controller.quorum.request.timeout.ms (Kafka: 2000).
    pub request_timeout_ms: u64,
    /// controller.quorum.bootstrap.servers, refused when set: dynamic
    /// quorums (KIP-853) are not supported.
    pub bootstrap_servers: Option<String>,
    /// broker.rack.
    pub rack: Option<String>,
    /// metadata.log.max.record.bytes.between.snapshots (Kafka: 20 MiB).
    pub snapshot_bytes: u64,
    /// listener.security.protocol.map: listener name -> security protocol.
    pub protocol_map: Vec<(String, String)>,
}

impl Default for KraftConfig {
    fn default() -> Self {
        KraftConfig {
            roles: None,
            voters: Vec::new(),
            controller_listener_names: Vec::new(),
            listeners: Vec::new(),
            advertised: Vec::new(),
            node_id_key: None,
            broker_id_key: None,
            broker_heartbeat_interval_ms: 2000,
            broker_session_timeout_ms: 9000,
            election_timeout_ms: 1000,
            fetch_timeout_ms: 2000,
            request_timeout_ms: 2000,
            bootstrap_servers: None,
            rack: None,
            snapshot_bytes: 20 << 20,
            protocol_map: parse_protocol_map(DEFAULT_PROTOCOL_MAP).expect("Kafka's default map"),
        }
    }
}

/// Kafka's default listener.security.protocol.map.
pub const DEFAULT_PROTOCOL_MAP: &str =
    "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT";

/// The security protocol of the client listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    /// SASL authentication over plain TCP.
    SaslPlaintext,
    /// TLS.
    Ssl,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

/// Parses `NAME:PROTOCOL,...` (listener.security.protocol.map).
pub fn parse_protocol_map(value: &str) -> Result<Vec<(String, String)>, KraftError> {
    let mut map = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, protocol)) = entry.split_once(':') else {
            return err(format!(
                "listener.security.protocol.map: {entry}: expected NAME:PROTOCOL"
            ));
        };
        let protocol = protocol.trim().to_ascii_uppercase();
        if !["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"].contains(&protocol.as_str()) {
            return err(format!(
                "listener.security.protocol.map: {entry}: No enum constant org.apache.kafka.common.security.auth.SecurityProtocol.{protocol}"
            ));
        }
        map.push((name.trim().to_ascii_uppercase(), protocol));
    }
    Ok(map)
}

/// One client listener as [`KraftConfig::resolve`] settled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientEndpoint {
    /// Its `listeners` entry.
    pub listener: NamedListener,
    /// Its `advertised.listeners` entry, when there is one.
    pub advertised: Option<NamedListener>,
    /// Its security protocol (listener.security.protocol.map).
    pub protocol: SecurityProtocol,
}

/// What [`KraftConfig::resolve`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The listeners clients use, in `listeners` order (none on a
    /// controller-only node).
    pub broker_listeners: Vec<ClientEndpoint>,
    /// The node's controller listener (on a controller).
    pub controller_listener: Option<NamedListener>,
}

/// A cluster config mistake: the message names the key, in Kafka's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KraftError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, KraftError> {
    Err(KraftError(msg.into()))
}

/// `process.roles`: `broker`, `controller` or both, comma separated.
pub fn parse_roles(value: &str) -> Result<Option<Roles>, KraftError> {
    let names: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    let mut roles = Roles::default();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    if unique.len() != names.len() {
        return err(format!(
            "Duplicate role names found in `process.roles`: {}",
            names.join(", ")
        ));
    }
    for n in names {
        match n {
            "broker" => roles.broker = true,
            "controller" => roles.controller = true,
            other => {
                return err(format!(
                "Unknown process role '{other}' (only 'broker' and 'controller' are allowed roles)"
            ))
            }
        }
    }
    Ok(Some(roles))
}

/// `controller.quorum.voters`: `{id}@{host}:{port}`, comma separated.
pub fn parse_voters(value: &str) -> Result<Vec<Voter>, KraftError> {
    const FORM: &str = "Each entry should be in the form `{id}@{host}:{port}`.";
    let mut voters = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((id, address)) = entry.split_once('@') else {
            return err(format!(
                "Invalid configuration value for controller.quorum.voters. {FORM}"
            ));
        };
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|_| KraftError(format!("Failed to parse voter ID as an integer from {id}")))?;
        if id < 0 {
            return err(format!(
                "Invalid voter id {id} in controller.quorum.voters: node ids are non-negative"
            ));
        }
        let Some((host, port)) = address.rsplit_once(':') else {
            return err(format!(
                "Failed to parse host name from entry {entry} for the configuration controller.quorum.voters. {FORM}"
            ));
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return err(format!(
                "Failed to parse host name from entry {entry} for the configuration controller.quorum.voters. {FORM}"
            ));
        }
        let port: u16 = port.parse().map_err(|_| {
            KraftError(format!(
                "Failed to parse host port from entry {entry} for the configuration controller.quorum.voters. {FORM}"
            ))
        })?;
        if voters.iter().any(|v: &Voter| v.id == id) {
            // Kafka lets a later entry win silently; a typo here splits the
            // quorum, so shardlog refuses it.
            return err(format!(
                "controller.quorum.voters names voter id {id} twice; each voter needs one entry"
            ));
        }
        if voters
            .iter()
            .any(|v: &Voter| v.host == host && v.port == port)
        {
            return err(format!(
                "controller.quorum.voters names the address {host}:{port} twice; each voter needs its own"
            ));
        }
        voters.push(Voter {
            id,
            host: host.to_string(),
            port,
        });
    }
    Ok(voters)
}

/// `listeners` / `advertised.listeners`: `NAME://HOST:PORT`, comma
/// separated; a bare `HOST:PORT` is PLAINTEXT. An empty host means every
/// address.
pub fn parse_listeners(key: &str, value: &str) -> Result<Vec<NamedListener>, KraftError> {
    let mut out: Vec<NamedListener> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, rest) = match entry.split_once("://") {
            Some((n, r)) => (n.trim().to_string(), r),
            None => ("PLAINTEXT".to_string(), entry),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return err(format!("{key}: bad listener name in {entry:?}"));
        }
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| KraftError(format!("{key}: {entry:?}: expected NAME://HOST:PORT")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| KraftError(format!("{key}: {entry:?}: bad port")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        out.push(NamedListener {
            name,
            host: host.to_string(),
            port,
        });
    }
    if out.is_empty() {
        return err(format!("{key}: no listener given"));
    }
    let names: BTreeSet<&str> = out.iter().map(|l| l.name.as_str()).collect();
    if names.len() != out.len() {
        return err(format!(
            "Each listener must have a different name, {key}: {value}"
        ));
    }
    if key == "listeners" {
        let ports: BTreeSet<u16> = out.iter().map(|l| l.port).collect();
        if ports.len() != out.len() {
            return err(format!(
                "Each listener must have a different port, {key}: {value}"
            ));
        }
    }
    Ok(out)
}

/// Parses a list key (`controller.listener.names`).
pub fn parse_names(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl KraftConfig {
    /// Whether this node runs in a cluster (KRaft keys given).
    pub fn is_cluster(&self) -> bool {
        self.roles.is_some()
    }

    /// The node id as Kafka settles it: `node.id` and `broker.id` are
    /// synonyms; both set must agree.
    pub fn node_id(&self) -> Result<Option<i32>, KraftError> {
        match (self.node_id_key, self.broker_id_key) {
            (Some(a), Some(b)) if a != b => {
                err("You must set `node.id` to the same value as `broker.id`.")
            }
            (Some(a), _) | (None, Some(a)) => Ok(Some(a)),
            (None, None) => Ok(None),
        }
    }

    fn voter_set(&self) -> String {
        let ids: Vec<String> = self.voters.iter().map(|v| v.id.to_string()).collect();
        format!("Set({})", ids.join(", "))
    }

    fn is_controller_name(&self, name: &str) -> bool {
        self.controller_listener_names.iter().any(|n| n == name)
    }

    /// Checks the KRaft keys together and picks the broker's and the
    /// controller's listeners.
    pub fn resolve(&self) -> Result<Resolved, KraftError> {
        let node_id = self.node_id()?;
        let Some(roles) = self.roles else {
            return self.resolve_single_node();
        };
        let Some(node_id) = node_id else {
            return err("Missing configuration `node.id` which is required when `process.roles` is defined (i.e. when running in KRaft mode).");
        };
        if self.bootstrap_servers.is_some() {
            return err("controller.quorum.bootstrap.servers (dynamic quorums, KIP-853) is not supported; list the voters in controller.quorum.voters");
        }
        if self.voters.is_empty() {
            return err("If using process.roles, controller.quorum.voters must contain a parseable set of voters.");
        }
        let is_voter = self.voters.iter().any(|v| v.id == node_id);
        if roles.controller && !is_voter {
            return err(format!(
                "If process.roles contains the 'controller' role, the node id {node_id} must be included in the set of voters controller.quorum.voters={}",
                self.voter_set()
            ));
        }
        if !roles.controller && is_voter {
            return err(format!(
                "If process.roles contains just the 'broker' role, the node id {node_id} must not be included in the set of voters controller.quorum.voters={}",
                self.voter_set()
            ));
        }
        let controller_in_listeners = self
            .listeners
            .iter()
            .filter(|l| self.is_controller_name(&l.name))
            .count();
        if roles.controller {
            if controller_in_listeners == 0 {
                return err("controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role");
            }
            if self
                .controller_listener_names
                .iter()
                .any(|n| !self.listeners.iter().any(|l| &l.name == n))
            {
                return err("controller.listener.names must only contain values appearing in the 'listeners' configuration when running the KRaft controller role");
            }
        } else {
            if self.controller_listener_names.is_empty() {
                return err("controller.listener.names must contain at least one value when running KRaft with just the broker role");
            }
            if controller_in_listeners > 0 {
                return err("controller.listener.names must not contain a value appearing in the 'listeners' configuration when running KRaft with just the broker role");
            }
        }
        let broker_listeners: Vec<&NamedListener> = self
            .listeners
            .iter()
            .filter(|l| !self.is_controller_name(&l.name))
            .collect();
        if !roles.broker && !broker_listeners.is_empty() {
            return err("The listeners config must only contain KRaft controller listeners from controller.listener.names when process.roles=controller");
        }
        if roles.broker && broker_listeners.is_empty() {
            return err("There must be at least one broker advertised listener. Perhaps all listeners appear in controller.listener.names?");
        }
        let broker_listeners: Vec<NamedListener> = broker_listeners.into_iter().cloned().collect();
        let clients = if roles.broker {
            self.client_endpoints(&broker_listeners)?
        } else {
            Vec::new()
        };
        let controller_listener = if roles.controller {
            // The first controller name that `listeners` has is the one
            // this node's voter entry points at.
            let own = self
                .controller_listener_names
                .iter()
                .find_map(|n| self.listeners.iter().find(|l| &l.name == n))
                .cloned();
            if let (Some(own), Some(me)) = (&own, self.voters.iter().find(|v| v.id == node_id)) {
                if own.port != me.port {
                    return err(format!(
                        "controller.quorum.voters gives node {node_id} the port {}, but its controller listener {own} listens on {}",
                        me.port, own.port
                    ));
                }
            }
            own
        } else {
            None
        };
        Ok(Resolved {
            broker_listeners: clients,
            controller_listener,
        })
    }

    /// Without `process.roles`: every listener serves clients, and no
    /// quorum keys that would be silently ignored.
    fn resolve_single_node(&self) -> Result<Resolved, KraftError> {
        if !self.voters.is_empty() {
            return err("controller.quorum.voters is set but process.roles is not: set process.roles=broker,controller (or broker, or controller) to run in a cluster");
        }
        if !self.controller_listener_names.is_empty() {
            return err("controller.listener.names is set but process.roles is not: controller listeners exist only in a cluster");
        }
        let default;
        let listeners = if self.listeners.is_empty() {
            default = [NamedListener {
                name: "PLAINTEXT".to_string(),
                host: "0.0.0.0".to_string(),
                port: 9092,
            }];
            &default[..]
        } else {
            &self.listeners[..]
        };
        Ok(Resolved {
            broker_listeners: self.client_endpoints(listeners)?,
            controller_listener: None,
        })
    }
}

impl KraftConfig {
    /// Pairs each client listener with its advertised entry (by name; a
    /// lone listener and a lone advertised entry pair whatever their
    /// names, as `--listen` and `--advertise` give them) and its security
    /// protocol, which its advertised entry must share.
    fn client_endpoints(
        &self,
        listeners: &[NamedListener],
    ) -> Result<Vec<ClientEndpoint>, KraftError> {
        let lone = listeners.len() == 1 && self.advertised.len() == 1;
        if !lone {
            let unknown: Vec<&str> = self
                .advertised
                .iter()
                .filter(|a| !listeners.iter().any(|l| l.name == a.name))
                .filter(|a| !self.is_controller_name(&a.name))
                .map(|a| a.name.as_str())
                .collect();
            if !unknown.is_empty() {
                let found: Vec<&str> = self.advertised.iter().map(|a| a.name.as_str()).collect();
                let valid: Vec<&str> = self.listeners.iter().map(|l| l.name.as_str()).collect();
                return err(format!(
                    "advertised.listeners listener names must be equal to or a subset of the ones defined in listeners. Found {}. The valid options based on the current configuration are {}",
                    found.join(","),
                    valid.join(",")
                ));
            }
        }
        let mut out = Vec::with_capacity(listeners.len());
        for l in listeners {
            let advertised = if lone {
                self.advertised.first().cloned()
            } else {
                self.advertised.iter().find(|a| a.name == l.name).cloned()
            };
            if let Some(a) = &advertised {
                if a.host == "0.0.0.0" || a.host == "::" {
                    return err("advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a routable IP address.");
                }
            }
            let protocol = self.client_protocol(l)?;
            if let Some(a) = &advertised {
                if self.client_protocol(a)? != protocol {
                    return err(format!(
                        "advertised.listeners: {a} does not match the listener {l}"
                    ));
                }
            }
            out.push(ClientEndpoint {
                listener: l.clone(),
                advertised,
                protocol,
            });
        }
        Ok(out)
    }

    /// The security protocol of a client listener, from
    /// listener.security.protocol.map.
    fn client_protocol(&self, l: &NamedListener) -> Result<SecurityProtocol, KraftError> {
        let Some((_, protocol)) = self.protocol_map.iter().find(|(n, _)| *n == l.name) else {
            return err(format!(
                "No security protocol defined for listener {}",
                l.name
            ));
        };
        match protocol.as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            other => err(format!("listeners: {l}: unknown security protocol {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combined(node: i32) -> KraftConfig {
        KraftConfig {
            roles: parse_roles("broker,controller").unwrap(),
            voters: parse_voters("1@127.0.0.1:19193,2@127.0.0.2:19193,3@127.0.0.3:19193").unwrap(),
            controller_listener_names: parse_names("CONTROLLER"),
            listeners: parse_listeners(
                "listeners",
                "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19193",
            )
            .unwrap(),
            advertised: parse_listeners("advertised.listeners", "PLAINTEXT://127.0.0.1:19092")
                .unwrap(),
            node_id_key: Some(node),
            ..KraftConfig::default()
        }
    }

    #[test]
    fn stock_combined_node_resolves() {
        let r = combined(1).resolve().unwrap();
        assert_eq!(r.broker_listeners.len(), 1);
        assert_eq!(r.broker_listeners[0].listener.port, 19092);
        assert_eq!(r.controller_listener.unwrap().port, 19193);
        assert_eq!(
            r.broker_listeners[0].advertised.as_ref().unwrap().host,
            "127.0.0.1"
        );
    }

    #[test]
    fn several_client_listeners() {
        let mut node = combined(1);
        node.listeners = parse_listeners(
            "listeners",
            "INTERNAL://127.0.0.1:19092,EXTERNAL://0.0.0.0:19094,CONTROLLER://127.0.0.1:19193",
        )
        .unwrap();
        node.protocol_map =
            parse_protocol_map("INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL,CONTROLLER:PLAINTEXT")
                .unwrap();
        node.advertised = parse_listeners(
            "advertised.listeners",
            "INTERNAL://127.0.0.1:19092,EXTERNAL://broker1.example:9094",
        )
        .unwrap();
        let r = node.resolve().unwrap();
        let names: Vec<&str> = r
            .broker_listeners
            .iter()
            .map(|c| c.listener.name.as_str())
            .collect();
        assert_eq!(names, ["INTERNAL", "EXTERNAL"]);
        assert_eq!(r.broker_listeners[1].protocol, SecurityProtocol::SaslSsl);
        assert_eq!(
            r.broker_listeners[1].advertised.as_ref().unwrap().host,
            "broker1.example"
        );
        // An advertised name that no listener has, as Kafka words it.
        node.advertised =
            parse_listeners("advertised.listeners", "OUTSIDE://broker1.example:9094").unwrap();
        let e = node.resolve().unwrap_err().0;
        assert!(e.starts_with("advertised.listeners listener names must be equal to or a subset of the ones defined in listeners. Found OUTSIDE."), "{e}");
        // One listener without an advertised entry is advertised as it
        // listens (the broker settles the host).
        node.advertised =
            parse_listeners("advertised.listeners", "EXTERNAL://broker1.example:9094").unwrap();
        let r = node.resolve().unwrap();
        assert!(r.broker_listeners[0].advertised.is_none());
        // Without process.roles too.
        let single = KraftConfig {
            listeners: parse_listeners("listeners", "SSL://:9093,PLAINTEXT://:9092").unwrap(),
            ..KraftConfig::default()
        };
        let r = single.resolve().unwrap();
        assert_eq!(r.broker_listeners.len(), 2);
        assert_eq!(r.broker_listeners[0].protocol, SecurityProtocol::Ssl);
        assert_eq!(r.broker_listeners[1].protocol, SecurityProtocol::Plaintext);
    }

    #[test]
    fn kafka_messages_for_inconsistent_roles() {
        let e = combined(4).resolve().unwrap_err().0;
        assert!(e.starts_with("If process.roles contains the 'controller' role, the node id 4 must be included in the set of voters controller.quorum.voters=Set(1, 2, 3)"), "{e}");
        let mut broker = combined(1);
        broker.roles = parse_roles("broker").unwrap();
        let e = broker.resolve().unwrap_err().0;
        assert!(
            e.contains("must not be included in the set of voters"),
            "{e}"
        );
        broker.node_id_key = Some(4);
        let e = broker.resolve().unwrap_err().0;
        assert!(
            e.contains("must not contain a value appearing in the 'listeners'"),
            "{e}"
        );
        broker.listeners = parse_listeners("listeners", "PLAINTEXT://:19092").unwrap();
        assert!(broker.resolve().unwrap().controller_listener.is_none());
        broker.controller_listener_names.clear();
        let e = broker.resolve().unwrap_err().0;
        assert!(
            e.contains(
                "must contain at least one value when running KRaft with just the broker role"
            ),
            "{e}"
        );

        let mut c = combined(1);
        c.controller_listener_names = parse_names("CONTROLLER,OTHER");
        let e = c.resolve().unwrap_err().0;
        assert!(
            e.contains("must only contain values appearing in the 'listeners'"),
            "{e}"
        );
        c.controller_listener_names.clear();
        let e = c.resolve().unwrap_err().0;
        assert!(
            e.contains("must contain at least one value appearing in the 'listeners'"),
            "{e}"
        );

        let mut controller_only = combined(1);
        controller_only.roles = parse_roles("controller").unwrap();
        let e = controller_only.resolve().unwrap_err().0;
        assert!(
            e.contains("must only contain KRaft controller listeners"),
            "{e}"
        );
        controller_only.listeners =
            parse_listeners("listeners", "CONTROLLER://127.0.0.1:19193").unwrap();
        let r = controller_only.resolve().unwrap();
        assert!(r.broker_listeners.is_empty() && r.controller_listener.is_some());

        let mut only_controller_listener = combined(1);
        only_controller_listener.listeners =
            parse_listeners("listeners", "CONTROLLER://127.0.0.1:19193").unwrap();
        let e = only_controller_listener.resolve().unwrap_err().0;
        assert!(e.contains("at least one broker advertised listener"), "{e}");

        let mut port = combined(1);
        port.voters = parse_voters("1@127.0.0.1:19194").unwrap();
        let e = port.resolve().unwrap_err().0;
        assert!(
            e.contains("controller.quorum.voters gives node 1 the port 19194"),
            "{e}"
        );
    }

    #[test]
    fn node_id_rules() {
        let mut c = combined(1);
        c.node_id_key = None;
        let e = c.resolve().unwrap_err().0;
        assert!(e.contains("Missing configuration `node.id`"), "{e}");
        c.broker_id_key = Some(1);
        assert!(c.resolve().is_ok());
        c.node_id_key = Some(2);
        let e = c.resolve().unwrap_err().0;
        assert!(e.contains("same value as `broker.id`"), "{e}");
    }

    #[test]
    fn voter_parsing() {
        let v = parse_voters("1@h:1, 2@[::1]:2").unwrap();
        assert_eq!(v[1].host, "::1");
        assert!(parse_voters("1h:1")
            .unwrap_err()
            .0
            .contains("{id}@{host}:{port}"));
        assert!(parse_voters("x@h:1").unwrap_err().0.contains("voter ID"));
        assert!(parse_voters("1@h").unwrap_err().0.contains("host name"));
        assert!(parse_voters("1@h:p").unwrap_err().0.contains("host port"));
        assert!(parse_voters("1@h:1,1@g:1")
            .unwrap_err()
            .0
            .contains("voter id 1 twice"));
        assert!(parse_voters("1@h:1,2@h:1")
            .unwrap_err()
            .0
            .contains("h:1 twice"));
        assert!(parse_roles("broker,broker")
            .unwrap_err()
            .0
            .contains("Duplicate"));
        assert!(parse_roles("zk")
            .unwrap_err()
            .0
            .contains("Unknown process role 'zk'"));
        assert_eq!(parse_roles(" ").unwrap(), None);
    }

    #[test]
    fn listener_lists() {
        let l = parse_listeners("listeners", "127.0.0.1:9092").unwrap();
        assert_eq!(l[0].name, "PLAINTEXT");
        assert!(parse_listeners("listeners", "A://:1,A://:2")
            .unwrap_err()
            .0
            .contains("different name"));
        assert!(parse_listeners("listeners", "A://:1,B://:1")
            .unwrap_err()
            .0
            .contains("different port"));
        let mut single = KraftConfig {
            listeners: l,
            ..KraftConfig::default()
        };
        assert!(single.resolve().is_ok());
        single.voters = parse_voters("1@h:1").unwrap();
        assert!(single
            .resolve()
            .unwrap_err()
            .0
            .contains("process.roles is not"));
        single.voters.clear();
        single.listeners = parse_listeners("listeners", "SSL://:9093").unwrap();
        assert_eq!(
            single.resolve().unwrap().broker_listeners[0].protocol,
            SecurityProtocol::Ssl
        );
        single.listeners = parse_listeners("listeners", "SASL_PLAINTEXT://:9093").unwrap();
        assert_eq!(
            single.resolve().unwrap().broker_listeners[0].protocol,
            SecurityProtocol::SaslPlaintext
        );
        single.listeners = parse_listeners("listeners", "CLIENT://:9093").unwrap();
        assert!(single
            .resolve()
            .unwrap_err()
            .0
            .contains("No security protocol defined for listener CLIENT"));
        single.protocol_map = parse_protocol_map("CLIENT:SASL_PLAINTEXT").unwrap();
        assert_eq!(
            single.resolve().unwrap().broker_listeners[0].protocol,
            SecurityProtocol::SaslPlaintext
        );
        assert!(parse_protocol_map("A:TLS").is_err());
    }
}
