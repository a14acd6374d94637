//! A connection's authorization: who it is (the principal it
//! authenticated as, and its host) and the decisions it has cached.
//!
//! Handlers ask [`ConnAuth`] whether an operation on a resource is
//! allowed. Topic decisions of the partition APIs (Produce, Fetch, ...)
//! are cached per connection, keyed by the topic's compact id in the
//! shard's routing table and the operation, and trusted while neither the
//! ACLs (the authorizer's generation) nor the topics (the routing table's
//! version) changed: an authorized connection's produce costs one atomic
//! load and one integer-keyed lookup, with no lock and no string lookup.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::acl::{Authorizer, Operation, ResourceType, ANONYMOUS, CLUSTER_NAME};

/// One connection's principal and cached decisions.
#[derive(Debug)]
pub struct ConnAuth {
    /// `User:<name>` (`User:ANONYMOUS` when it did not authenticate).
    pub principal: String,
    /// The peer's address, as ACL hosts name it.
    pub host: String,
    /// The client listener the connection came in on (an index into the
    /// config's): Metadata, FindCoordinator and DescribeCluster answer
    /// with that listener's addresses.
    pub listener: usize,
    authorizer: Option<Arc<Authorizer>>,
    cache: RefCell<TopicDecisions>,
}

#[derive(Debug, Default)]
struct TopicDecisions {
    acl_generation: u64,
    routing_version: u64,
    /// By `topic key << 8 | operation code`.
    decided: HashMap<u64, bool, BuildHasherDefault<KeyHasher>>,
}

/// A hasher for the cache's integer keys: a multiply and a fold (the
/// default SipHash is several times slower and guards against flooding
/// by keys a client chooses, which these are not: they are the broker's
/// own topic ids).
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let x = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = x ^ (x >> 29);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl ConnAuth {
    pub fn new(authorizer: Option<Arc<Authorizer>>, user: Option<&str>, host: String) -> Self {
        ConnAuth {
            principal: user.map_or_else(|| ANONYMOUS.to_string(), |u| format!("User:{u}")),
            host,
            listener: 0,
            authorizer,
            cache: RefCell::new(TopicDecisions::default()),
        }
    }

    /// The same, for a connection of client listener `listener`.
    pub fn on_listener(mut self, listener: usize) -> Self {
        self.listener = listener;
        self
    }

    /// No authorizer: everything is allowed (tools and tests).
    pub fn open() -> Self {
        ConnAuth::new(None, None, String::new())
    }

    /// Whether an authorizer is configured (`authorizer.class.name`).
    pub fn enabled(&self) -> bool {
        self.authorizer.is_some()
    }

    pub fn authorizer(&self) -> Option<&Arc<Authorizer>> {
        self.authorizer.as_ref()
    }

    /// Whether `op` on resource `name` of type `kind` is allowed.
    pub fn allows(&self, op: Operation, kind: ResourceType, name: &str) -> bool {
        self.authorizer
            .as_ref()
            .is_none_or(|a| a.authorize(&self.principal, &self.host, op, kind, name))
    }

    pub fn topic(&self, op: Operation, name: &str) -> bool {
        self.allows(op, ResourceType::Topic, name)
    }

    pub fn group(&self, op: Operation, id: &str) -> bool {
        self.allows(op, ResourceType::Group, id)
    }

    pub fn cluster(&self, op: Operation) -> bool {
        self.allows(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Whether `op` is allowed on some resource of type `kind` (Kafka's
    /// `authorizeByResourceType`).
    pub fn any_of(&self, op: Operation, kind: ResourceType) -> bool {
        self.authorizer
            .as_ref()
            .is_none_or(|a| a.authorize_any(&self.principal, &self.host, op, kind))
    }

    /// [`ConnAuth::topic`], cached under the topic's id `key` in the
    /// routing table of version `routing_version`.
    pub fn topic_cached(&self, routing_version: u64, key: u32, op: Operation, name: &str) -> bool {
        let Some(authorizer) = &self.authorizer else {
            return true;
        };
        let generation = authorizer.generation();
        let mut cache = self.cache.borrow_mut();
        if cache.acl_generation != generation || cache.routing_version != routing_version {
            cache.decided.clear();
            cache.acl_generation = generation;
            cache.routing_version = routing_version;
        }
        let slot = (u64::from(key) << 8) | op.code() as u8 as u64;
        *cache.decided.entry(slot).or_insert_with(|| {
            authorizer.authorize(&self.principal, &self.host, op, ResourceType::Topic, name)
        })
    }

    /// Kafka's authorized-operations bit field of a resource: each of
    /// `ops` allowed sets the bit at its code.
    pub fn operations(&self, kind: ResourceType, name: &str, ops: &[Operation]) -> i32 {
        ops.iter()
            .filter(|&&op| self.allows(op, kind, name))
            .fold(0, |bits, &op| bits | (1 << op.code()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::{AclBinding, PatternType, Permission};

    // Proves cached topic decisions follow ACL changes (the generation)
    // and topic changes (the routing version).
    #[test]
    fn cache_follows_changes() {
        let a = Arc::new(Authorizer::new(vec![], false));
        let conn = ConnAuth::new(Some(a.clone()), Some("alice"), "127.0.0.1".into());
        assert!(!conn.topic_cached(1, 0, Operation::Write, "t"));
        let grant = AclBinding {
            resource_type: ResourceType::Topic,
            name: "t".into(),
            pattern: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Write,
            permission: Permission::Allow,
        };
        a.create(std::slice::from_ref(&grant));
        assert!(conn.topic_cached(1, 0, Operation::Write, "t"));
        // Key 0 is another topic in routing version 2.
        assert!(!conn.topic_cached(2, 0, Operation::Write, "u"));
        assert!(ConnAuth::open().topic_cached(1, 0, Operation::Write, "t"));
    }
}
