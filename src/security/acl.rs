//! ACLs and the authorizer, with the semantics of Kafka's
//! `StandardAuthorizer`: bindings of a resource pattern (type, name,
//! LITERAL or PREFIXED) to a principal, a host, an operation and ALLOW or
//! DENY. A request is allowed for a super user; otherwise a matching DENY
//! wins, then a matching ALLOW (with Kafka's implications: READ, WRITE,
//! DELETE and ALTER imply DESCRIBE, ALTER_CONFIGS implies
//! DESCRIBE_CONFIGS, ALL implies everything); a resource no ACL matches
//! at all is allowed only with `allow.everyone.if.no.acl.found=true`.
//!
//! The bindings are part of the broker's metadata (`ClusterMetadata::acls`:
//! the metadata file on a single node, the metadata log in a cluster), so
//! a change is durable before it is answered and, in a cluster, applies on
//! every broker; the authorizer follows each metadata version. Every
//! change bumps a generation number, which is what connections check (one
//! atomic load) before trusting the decisions they cached: no lock and no
//! lookup by name on the produce/fetch path of a connection already
//! authorized.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// The only name of the CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The wildcard resource name of a LITERAL pattern and of host filters.
pub const WILDCARD: &str = "*";

/// The principal every user matches.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// The principal of a connection that did not authenticate.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

macro_rules! kafka_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident = $code:literal => $text:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($v = $code,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v,)*];

            /// The value for a code off the wire (`None`: UNKNOWN).
            pub fn from_code(code: i8) -> Option<Self> {
                match code { $($code => Some($name::$v),)* _ => None }
            }

            pub fn code(self) -> i8 {
                self as i8
            }

            /// Kafka's name (as `kafka-acls` prints it).
            pub fn name(self) -> &'static str {
                match self { $($name::$v => $text,)* }
            }

            pub fn from_name(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name().eq_ignore_ascii_case(s))
            }
        }
    };
}

kafka_enum!(
    /// Kafka's `ResourceType` (0 is UNKNOWN).
    ResourceType {
        Any = 1 => "ANY",
        Topic = 2 => "TOPIC",
        Group = 3 => "GROUP",
        Cluster = 4 => "CLUSTER",
        TransactionalId = 5 => "TRANSACTIONAL_ID",
        DelegationToken = 6 => "DELEGATION_TOKEN",
        User = 7 => "USER",
    }
);

kafka_enum!(
    /// Kafka's `PatternType` (0 is UNKNOWN). ANY and MATCH only filter.
    PatternType {
        Any = 1 => "ANY",
        Match = 2 => "MATCH",
        Literal = 3 => "LITERAL",
        Prefixed = 4 => "PREFIXED",
    }
);

kafka_enum!(
    /// Kafka's `AclOperation` (0 is UNKNOWN). ANY only filters.
    Operation {
        Any = 1 => "ANY",
        All = 2 => "ALL",
        Read = 3 => "READ",
        Write = 4 => "WRITE",
        Create = 5 => "CREATE",
        Delete = 6 => "DELETE",
        Alter = 7 => "ALTER",
        Describe = 8 => "DESCRIBE",
        ClusterAction = 9 => "CLUSTER_ACTION",
        DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
        AlterConfigs = 11 => "ALTER_CONFIGS",
        IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
        CreateTokens = 13 => "CREATE_TOKENS",
        DescribeTokens = 14 => "DESCRIBE_TOKENS",
    }
);

kafka_enum!(
    /// Kafka's `AclPermissionType` (0 is UNKNOWN). ANY only filters.
    Permission {
        Any = 1 => "ANY",
        Deny = 2 => "DENY",
        Allow = 3 => "ALLOW",
    }
);

impl Operation {
    /// Whether an ALLOW of `self` grants `asked` (Kafka's implications).
    fn grants(self, asked: Operation) -> bool {
        use Operation::*;
        self == All
            || self == asked
            || (asked == Describe && matches!(self, Read | Write | Delete | Alter))
            || (asked == DescribeConfigs && self == AlterConfigs)
    }

    /// Whether a DENY of `self` refuses `asked` (no implications but ALL).
    fn refuses(self, asked: Operation) -> bool {
        self == Operation::All || self == asked
    }
}

/// One ACL: who may (or may not) do what to which resources, from where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclBinding {
    /// Kafka's checks of a new binding; the message is Kafka's.
    pub fn validate(&self) -> Result<(), String> {
        if matches!(self.resource_type, ResourceType::Any) {
            return Err("Invalid resourceType ANY".into());
        }
        if !matches!(self.pattern, PatternType::Literal | PatternType::Prefixed) {
            return Err(format!("Invalid patternType {}", self.pattern.name()));
        }
        if matches!(self.operation, Operation::Any) {
            return Err("Invalid operation ANY".into());
        }
        if matches!(self.permission, Permission::Any) {
            return Err("Invalid permissionType ANY".into());
        }
        if self.name.is_empty() {
            return Err("Resource name should not be empty".into());
        }
        if self.resource_type == ResourceType::Cluster && self.name != CLUSTER_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => {
                return Err(format!(
                    "Could not parse principal from `{}` (no colon is found separating the principal type from the principal name)",
                    self.principal
                ))
            }
        }
        if self.host.is_empty() {
            return Err("Invalid empty host".into());
        }
        Ok(())
    }

    /// Whether this binding's pattern covers resource `name` of `kind`
    /// (the definition [`covering`]'s range lookups are checked against).
    #[cfg(test)]
    fn covers(&self, kind: ResourceType, name: &str) -> bool {
        self.resource_type == kind
            && match self.pattern {
                PatternType::Literal => self.name == name || self.name == WILDCARD,
                PatternType::Prefixed => name.starts_with(self.name.as_str()),
                _ => false,
            }
    }

    /// Whether it applies to `principal` connecting from `host`.
    fn applies_to(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == WILDCARD_PRINCIPAL)
            && (self.host == WILDCARD || self.host == host)
    }
}

/// A DescribeAcls / DeleteAcls filter. `None` strings match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub name: Option<String>,
    pub pattern: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclFilter {
    /// Kafka's refusals of a filter (UNKNOWN codes are refused before).
    pub fn validate(&self) -> Result<(), String> {
        if self.pattern == PatternType::Match && self.name.is_none() {
            return Err("Cannot filter by MATCH without a resource name".into());
        }
        Ok(())
    }

    pub fn matches(&self, b: &AclBinding) -> bool {
        let kind = self.resource_type == ResourceType::Any || self.resource_type == b.resource_type;
        let pattern = match (self.pattern, &self.name) {
            (PatternType::Any, None) => true,
            (PatternType::Any, Some(n)) => b.name == *n,
            (PatternType::Match, Some(n)) => match b.pattern {
                PatternType::Literal => b.name == *n || b.name == WILDCARD,
                PatternType::Prefixed => n.starts_with(b.name.as_str()),
                _ => false,
            },
            (PatternType::Match, None) => false,
            (p, n) => p == b.pattern && n.as_ref().is_none_or(|n| b.name == *n),
        };
        let principal = self.principal.as_ref().is_none_or(|p| *p == b.principal);
        let host = self.host.as_ref().is_none_or(|h| *h == b.host);
        let op = self.operation == Operation::Any || self.operation == b.operation;
        let perm = self.permission == Permission::Any || self.permission == b.permission;
        kind && pattern && principal && host && op && perm
    }
}

/// The authorizer of a broker: its bindings, super users and default.
#[derive(Debug)]
pub struct Authorizer {
    acls: RwLock<BTreeSet<AclBinding>>,
    generation: AtomicU64,
    /// super.users, as principals (`User:admin`).
    super_users: Vec<String>,
    /// allow.everyone.if.no.acl.found.
    allow_if_none: bool,
}

impl Authorizer {
    pub fn new(super_users: Vec<String>, allow_if_none: bool) -> Self {
        Authorizer {
            acls: RwLock::new(BTreeSet::new()),
            generation: AtomicU64::new(1),
            super_users,
            allow_if_none,
        }
    }

    /// Bumped by every change: decisions cached under another generation
    /// are stale.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn is_super_user(&self, principal: &str) -> bool {
        self.super_users.iter().any(|s| s == principal)
    }

    pub fn len(&self) -> usize {
        self.acls.read().expect("acls").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the bindings of a metadata version (every change of ACLs is
    /// one); a version whose bindings are the same changes nothing.
    pub fn sync(&self, stored: &[StoredAcl]) {
        let next = to_set(stored);
        let mut acls = self.acls.write().expect("acls");
        if *acls != next {
            *acls = next;
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Adds bindings directly (tests and benchmarks; the broker's changes
    /// go through the metadata, see [`Authorizer::sync`]).
    pub fn create(&self, bindings: &[AclBinding]) {
        let mut acls = self.acls.write().expect("acls");
        acls.extend(bindings.iter().cloned());
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether `principal` from `host` may do `op` to resource `name` of
    /// type `kind`.
    pub fn authorize(
        &self,
        principal: &str,
        host: &str,
        op: Operation,
        kind: ResourceType,
        name: &str,
    ) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        let acls = self.acls.read().expect("acls");
        let mut any = false;
        let mut allowed = false;
        for b in covering(&acls, kind, name) {
            any = true;
            if !b.applies_to(principal, host) {
                continue;
            }
            match b.permission {
                Permission::Deny if b.operation.refuses(op) => return false,
                Permission::Allow if b.operation.grants(op) => allowed = true,
                _ => {}
            }
        }
        allowed || (!any && self.allow_if_none)
    }

    /// Whether `principal` may do `op` to some resource of type `kind`
    /// (Kafka's `authorizeByResourceType`, used where any topic's WRITE
    /// stands for IDEMPOTENT_WRITE): an ALLOW the principal's DENYs do not
    /// cover entirely.
    pub fn authorize_any(
        &self,
        principal: &str,
        host: &str,
        op: Operation,
        kind: ResourceType,
    ) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        let acls = self.acls.read().expect("acls");
        let mine = || {
            acls.iter()
                .filter(move |b| b.resource_type == kind && b.applies_to(principal, host))
        };
        let denied = |b: &AclBinding| {
            mine().any(|d| {
                d.permission == Permission::Deny
                    && d.operation.refuses(op)
                    && match d.pattern {
                        PatternType::Literal => {
                            d.name == WILDCARD
                                || (b.pattern == PatternType::Literal && d.name == b.name)
                        }
                        PatternType::Prefixed => b.name.starts_with(d.name.as_str()),
                        _ => false,
                    }
            })
        };
        if mine().any(|b| b.permission == Permission::Allow && b.operation.grants(op) && !denied(b))
        {
            return true;
        }
        self.allow_if_none && !acls.iter().any(|b| b.resource_type == kind)
    }

    /// The bindings `filter` matches, in a stable order.
    pub fn describe(&self, filter: &AclFilter) -> Vec<AclBinding> {
        let acls = self.acls.read().expect("acls");
        acls.iter().filter(|b| filter.matches(b)).cloned().collect()
    }
}

/// The bindings of a metadata version, as the authorizer holds them (a
/// stored binding that no longer validates is skipped with a log line).
pub fn to_set(stored: &[StoredAcl]) -> BTreeSet<AclBinding> {
    stored
        .iter()
        .filter_map(|s| {
            let b = s.binding();
            if b.is_none() {
                tracing::warn!(acl = ?s, "skipping a stored ACL that does not validate");
            }
            b
        })
        .collect()
}

/// The bindings as the metadata stores them, in the set's order.
pub fn to_stored(set: &BTreeSet<AclBinding>) -> Vec<StoredAcl> {
    set.iter().map(StoredAcl::from).collect()
}

/// Removes from `set` the bindings each filter matches; what each filter
/// removed, in filter order (a binding two filters match is reported by
/// both, as Kafka reports it).
pub fn delete_matching(
    set: &mut BTreeSet<AclBinding>,
    filters: &[AclFilter],
) -> Vec<Vec<AclBinding>> {
    let per_filter: Vec<Vec<AclBinding>> = filters
        .iter()
        .map(|f| set.iter().filter(|b| f.matches(b)).cloned().collect())
        .collect();
    for gone in &per_filter {
        for b in gone {
            set.remove(b);
        }
    }
    per_filter
}

/// The bindings whose pattern covers resource `name` of type `kind`, found
/// by range lookups in the ordered set (bindings sort by type, name and
/// pattern first): the literal name, the literal wildcard, and each prefix
/// of the name as a PREFIXED pattern. O(length of the name x log n), not a
/// scan of every binding.
fn covering<'a>(
    acls: &'a BTreeSet<AclBinding>,
    kind: ResourceType,
    name: &'a str,
) -> impl Iterator<Item = &'a AclBinding> + 'a {
    let literal = [name, WILDCARD]
        .into_iter()
        .enumerate()
        .filter(move |(i, n)| *i == 0 || *n != name)
        .map(|(_, n)| (n, PatternType::Literal));
    let prefixes = name
        .char_indices()
        .map(|(i, c)| &name[..i + c.len_utf8()])
        .map(|p| (p, PatternType::Prefixed));
    literal
        .chain(prefixes)
        .flat_map(move |(n, pattern)| pattern_range(acls, kind, n, pattern))
}

/// The bindings of exactly one resource pattern.
fn pattern_range<'a>(
    acls: &'a BTreeSet<AclBinding>,
    kind: ResourceType,
    name: &str,
    pattern: PatternType,
) -> impl Iterator<Item = &'a AclBinding> + 'a {
    let start = AclBinding {
        resource_type: kind,
        name: name.to_string(),
        pattern,
        principal: String::new(),
        host: String::new(),
        operation: Operation::Any,
        permission: Permission::Any,
    };
    let name = start.name.clone();
    acls.range(start..)
        .take_while(move |b| b.resource_type == kind && b.name == name && b.pattern == pattern)
}

/// A binding as the metadata stores it (Kafka's names, readable in the
/// file and in the metadata log's records).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredAcl {
    resource_type: String,
    name: String,
    pattern_type: String,
    principal: String,
    host: String,
    operation: String,
    permission_type: String,
}

impl From<&AclBinding> for StoredAcl {
    fn from(b: &AclBinding) -> Self {
        StoredAcl {
            resource_type: b.resource_type.name().into(),
            name: b.name.clone(),
            pattern_type: b.pattern.name().into(),
            principal: b.principal.clone(),
            host: b.host.clone(),
            operation: b.operation.name().into(),
            permission_type: b.permission.name().into(),
        }
    }
}

impl StoredAcl {
    fn binding(&self) -> Option<AclBinding> {
        let b = AclBinding {
            resource_type: ResourceType::from_name(&self.resource_type)?,
            name: self.name.clone(),
            pattern: PatternType::from_name(&self.pattern_type)?,
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: Operation::from_name(&self.operation)?,
            permission: Permission::from_name(&self.permission_type)?,
        };
        b.validate().ok().map(|_| b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        kind: ResourceType,
        name: &str,
        pattern: PatternType,
        principal: &str,
        op: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: kind,
            name: name.into(),
            pattern,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation: op,
            permission,
        }
    }

    fn authorizer(acls: &[AclBinding], allow_if_none: bool) -> Authorizer {
        let a = Authorizer::new(vec!["User:admin".into()], allow_if_none);
        a.create(acls);
        a
    }

    use Operation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::*;

    // Proves Kafka's rules: implications of ALLOW (WRITE grants DESCRIBE,
    // not READ), DENY winning over ALLOW without implications, prefixed
    // and wildcard patterns, wildcard principals, hosts, super users and
    // the no-ACL default both ways.
    #[test]
    fn kafka_semantics() {
        let a = authorizer(
            &[
                acl(Topic, "orders", Literal, "User:alice", Write, Allow),
                acl(Topic, "logs-", Prefixed, "User:alice", Read, Allow),
                acl(Topic, "logs-secret", Literal, "User:alice", Read, Deny),
                acl(Topic, "logs-", Prefixed, "User:alice", Describe, Deny),
                acl(Topic, "*", Literal, "User:*", AlterConfigs, Allow),
                acl(Group, "g", Literal, "User:bob", All, Allow),
            ],
            false,
        );
        let ok = |p: &str, op, kind, name: &str| a.authorize(p, "10.0.0.1", op, kind, name);
        assert!(ok("User:alice", Write, Topic, "orders"));
        assert!(ok("User:alice", Describe, Topic, "orders"));
        assert!(!ok("User:alice", Read, Topic, "orders"));
        assert!(ok("User:alice", Read, Topic, "logs-app"));
        // A DENY of DESCRIBE does not refuse READ (no implications for DENY)...
        // ...but READ's implied DESCRIBE is refused by it.
        assert!(!ok("User:alice", Describe, Topic, "logs-app"));
        assert!(!ok("User:alice", Read, Topic, "logs-secret"));
        assert!(ok("User:carol", DescribeConfigs, Topic, "anything"));
        assert!(!ok("User:carol", Read, Topic, "anything"));
        assert!(ok("User:bob", Delete, Group, "g"));
        assert!(
            !ok("User:bob", Read, Group, "h"),
            "no ACL on h: denied by default"
        );
        assert!(ok("User:admin", Read, Group, "h"), "super user");
        let open = authorizer(&[acl(Topic, "t", Literal, "User:x", Read, Allow)], true);
        assert!(
            open.authorize("User:y", "h", Read, Group, "any"),
            "no ACL at all: allowed"
        );
        assert!(
            !open.authorize("User:y", "h", Read, Topic, "t"),
            "an ACL exists on t"
        );
        let hosts = authorizer(
            &[AclBinding {
                host: "10.0.0.2".into(),
                ..acl(Topic, "t", Literal, "User:x", Read, Allow)
            }],
            false,
        );
        assert!(hosts.authorize("User:x", "10.0.0.2", Read, Topic, "t"));
        assert!(!hosts.authorize("User:x", "10.0.0.3", Read, Topic, "t"));
    }

    // Proves authorize_any: an ALLOW anywhere counts unless a DENY covers
    // it (the literal resource, a prefix of it or the wildcard).
    #[test]
    fn by_resource_type() {
        let a = authorizer(&[acl(Topic, "t", Literal, "User:x", Write, Allow)], false);
        assert!(a.authorize_any("User:x", "h", Write, Topic));
        assert!(!a.authorize_any("User:y", "h", Write, Topic));
        let denied = authorizer(
            &[
                acl(Topic, "t", Literal, "User:x", Write, Allow),
                acl(Topic, "*", Literal, "User:x", Write, Deny),
            ],
            false,
        );
        assert!(!denied.authorize_any("User:x", "h", Write, Topic));
    }

    // Proves filters: ANY, MATCH (what would apply to a name) and exact
    // pattern filters, and that delete removes only what matched and bumps
    // the generation.
    #[test]
    fn filters_and_delete() {
        let a = authorizer(
            &[
                acl(Topic, "t", Literal, "User:x", Read, Allow),
                acl(Topic, "*", Literal, "User:x", Read, Allow),
                acl(Topic, "t-", Prefixed, "User:x", Read, Allow),
                acl(Group, "t", Literal, "User:x", Read, Allow),
            ],
            false,
        );
        let f = |kind, name: Option<&str>, pattern| AclFilter {
            resource_type: kind,
            name: name.map(String::from),
            pattern,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        };
        assert_eq!(
            a.describe(&f(ResourceType::Any, None, PatternType::Any))
                .len(),
            4
        );
        assert_eq!(a.describe(&f(Topic, Some("t-1"), Match)).len(), 2);
        assert_eq!(a.describe(&f(Topic, Some("t"), Match)).len(), 2);
        assert_eq!(a.describe(&f(Topic, None, Prefixed)).len(), 1);
        assert_eq!(
            a.describe(&f(ResourceType::Any, Some("t"), PatternType::Any))
                .len(),
            2
        );
        let before = a.generation();
        let mut set = a.acls.read().unwrap().clone();
        let gone = delete_matching(
            &mut set,
            &[
                f(Topic, Some("t"), Literal),
                f(Group, None, PatternType::Any),
            ],
        );
        assert_eq!(gone.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1]);
        a.sync(&to_stored(&set));
        assert_eq!(a.len(), 2);
        assert!(a.generation() > before);
        let unchanged = a.generation();
        a.sync(&to_stored(&set));
        assert_eq!(
            a.generation(),
            unchanged,
            "the same bindings change nothing"
        );
    }

    // Proves the stored form round-trips through JSON (as the metadata
    // file and the metadata log carry it) into the same bindings.
    #[test]
    fn stored_and_reloaded() {
        let b = acl(Topic, "t-", Prefixed, "User:x", Write, Deny);
        let json = serde_json::to_string(&to_stored(&BTreeSet::from([b.clone()]))).unwrap();
        assert!(json.contains("\"PREFIXED\""), "{json}");
        let again = Authorizer::new(vec![], false);
        again.sync(&serde_json::from_str::<Vec<StoredAcl>>(&json).unwrap());
        assert_eq!(
            again.describe(&AclFilter {
                resource_type: ResourceType::Any,
                name: None,
                pattern: PatternType::Any,
                principal: None,
                host: None,
                operation: Operation::Any,
                permission: Permission::Any,
            }),
            vec![b]
        );
    }

    // Proves the indexed lookup finds exactly the bindings a scan with the
    // definition finds, over random sets of bindings whose names share
    // prefixes (literal, wildcard and prefixed patterns, several types).
    #[test]
    fn indexed_lookup_equals_the_scan() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let names = ["a", "ab", "abc", "abd", "b", "*", "ab-c", "é", "éa"];
        let kinds = [Topic, Group, TransactionalId];
        for _ in 0..200 {
            let mut set = BTreeSet::new();
            for _ in 0..next(40) {
                set.insert(AclBinding {
                    resource_type: kinds[next(3) as usize],
                    name: names[next(names.len() as u64) as usize].to_string(),
                    pattern: if next(2) == 0 { Literal } else { Prefixed },
                    principal: format!("User:u{}", next(3)),
                    host: WILDCARD.into(),
                    operation: [Read, Write, All][next(3) as usize],
                    permission: if next(4) == 0 { Deny } else { Allow },
                });
            }
            for kind in kinds {
                for name in names.iter().chain(&["abcd", "x", ""]) {
                    let indexed: BTreeSet<&AclBinding> = covering(&set, kind, name).collect();
                    let scanned: BTreeSet<&AclBinding> =
                        set.iter().filter(|b| b.covers(kind, name)).collect();
                    assert_eq!(indexed, scanned, "{kind:?} {name:?}");
                }
            }
        }
    }

    #[test]
    fn validation_messages() {
        let good = acl(Cluster, CLUSTER_NAME, Literal, "User:x", Alter, Allow);
        assert!(good.validate().is_ok());
        let bad_cluster = acl(Cluster, "c", Literal, "User:x", Alter, Allow);
        assert!(bad_cluster
            .validate()
            .unwrap_err()
            .contains("kafka-cluster"));
        let bad_principal = acl(Topic, "t", Literal, "alice", Read, Allow);
        assert!(bad_principal.validate().unwrap_err().contains("principal"));
        let bad_pattern = acl(Topic, "t", Match, "User:a", Read, Allow);
        assert!(bad_pattern.validate().is_err());
    }
}
