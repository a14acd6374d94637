//! What the authorizer costs a request, with 10,000 ACLs loaded: the
//! produce/fetch path of a connection that is already authorized (a
//! cached topic decision: one atomic load and one integer-keyed lookup),
//! next to the same call without an authorizer (the baseline every
//! request already pays), and an uncached decision (Metadata, admin APIs,
//! a topic's first request on a connection: range lookups in the ordered
//! bindings). See benches/README.md.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use shardlog::security::acl::{
    AclBinding, Authorizer, Operation, PatternType, Permission, ResourceType,
};
use shardlog::security::authz::ConnAuth;

/// 10,000 bindings for 100 principals: literal WRITE grants on 5,000
/// topics, prefixed READ grants on 4,000 prefixes, 999 literal DENYs, and
/// the one the measured principal needs.
fn ten_thousand() -> Vec<AclBinding> {
    let acl = |name: String, pattern, principal: String, op, permission| AclBinding {
        resource_type: ResourceType::Topic,
        name,
        pattern,
        principal,
        host: "*".into(),
        operation: op,
        permission,
    };
    let mut out = Vec::with_capacity(10_000);
    for i in 0..5_000 {
        out.push(acl(
            format!("topic-{i}"),
            PatternType::Literal,
            format!("User:user-{}", i % 100),
            Operation::Write,
            Permission::Allow,
        ));
    }
    for i in 0..4_000 {
        out.push(acl(
            format!("team-{i}-"),
            PatternType::Prefixed,
            format!("User:user-{}", i % 100),
            Operation::Read,
            Permission::Allow,
        ));
    }
    for i in 0..999 {
        out.push(acl(
            format!("topic-{}", i * 5),
            PatternType::Literal,
            format!("User:user-{}", (i + 1) % 100),
            Operation::Write,
            Permission::Deny,
        ));
    }
    out.push(acl(
        "orders".into(),
        PatternType::Literal,
        "User:alice".into(),
        Operation::Write,
        Permission::Allow,
    ));
    out
}

fn authorizer(c: &mut Criterion) {
    let a = Arc::new(Authorizer::new(Vec::new(), false));
    a.create(&ten_thousand());
    assert_eq!(a.len(), 10_000);
    let conn = ConnAuth::new(Some(a.clone()), Some("alice"), "127.0.0.1".into());
    let open = ConnAuth::open();
    assert!(conn.topic_cached(1, 7, Operation::Write, "orders"));

    let mut g = c.benchmark_group("authorizer");
    g.bench_function("cached_10k_acls", |b| {
        b.iter(|| conn.topic_cached(black_box(1), black_box(7), Operation::Write, "orders"))
    });
    g.bench_function("no_authorizer_baseline", |b| {
        b.iter(|| open.topic_cached(black_box(1), black_box(7), Operation::Write, "orders"))
    });
    g.bench_function("uncached_10k_acls", |b| {
        b.iter(|| conn.topic(Operation::Write, black_box("orders")))
    });
    g.bench_function("uncached_10k_acls_prefixed_hit", |b| {
        let user = ConnAuth::new(Some(a.clone()), Some("user-42"), "127.0.0.1".into());
        b.iter(|| user.topic(Operation::Read, black_box("team-142-events")))
    });
    g.finish();
}

criterion_group!(benches, authorizer);
criterion_main!(benches);
