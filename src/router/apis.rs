//! The one table of served APIs. Each entry declares an API's key, its
//! name, the versions advertised and served, the body layout the guard
//! walks, the request type its handler decodes and how it is served; from
//! it come ApiVersions, request parsing, the guard's choice of layout,
//! dispatch, log names and the fuzz target's decode path.
//!
//! Version notes. Produce is advertised from v0 because librdkafka turns
//! compression off against brokers whose Produce minimum is above 0, but
//! only v3+ (record batch v2) is served: older requests close the
//! connection, as Kafka 4 does. Produce and Fetch stop at v12 until topic
//! ids are supported in them. FindCoordinator is served because librdkafka
//! ties its LZ4 support to it. The consumer group APIs cover what the
//! tested clients send (librdkafka 2.0-2.16, kafka-python 2.0/3.0,
//! aiokafka, KafkaJS); OffsetCommit v0-1 (ZooKeeper-era) are not served.
//! DescribeLogDirs starts at v1, as in Kafka 4 (and kafka-protocol 0.18).
//! SaslHandshake v0 and v1 are served, as in Kafka 4 (after v0 the client
//! sends raw size-prefixed SASL tokens instead of SaslAuthenticate
//! requests; librdkafka before 2.x enables SASL only when v0 is
//! advertised); the exchange itself is run by the connection
//! (`crate::net`), and these entries answer SASL requests that arrive
//! outside one (on a PLAINTEXT listener, or after authentication) with
//! ILLEGAL_SASL_STATE, as Kafka does.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{self as m, ApiKey};
use kafka_protocol::protocol::{Decodable, Request};

use super::{scatter, RequestContext};
use crate::handler::{self, Limits, PartitionApi, Response};
use crate::protocol::api::find;
use crate::protocol::frame::{parse_request, Parsed};
use crate::protocol::guard::{inspect_body, layouts, BodyStats, GuardError};
use crate::protocol::{ApiSpec, FrameError, RequestFrame};
use crate::shard::Shard;

/// Declares the table and the dispatch from one list. Each entry:
/// `Key: "Name", advertised lo..=hi, served from v, bounds LAYOUT, RequestType, how`,
/// where `bounds` is `guard` (the guard walks the body along LAYOUT before
/// kafka-protocol decodes it) or `own` (the handler's hand-written decoder
/// bounds every length itself; LAYOUT still describes the body),
/// and `how` is `partitions(Type)` for partition APIs (the router
/// resolves and scatters), `handle(fn)` / `handle_now(fn)`
/// for async / plain handlers taking the shard and the request,
/// `handle_auth(fn)` / `handle_now_auth(fn)` for those that also take the
/// connection's authorization ([`crate::security::authz::ConnAuth`]), or
/// `table(fn)` for the one that lists the table itself (ApiVersions).
macro_rules! apis {
    ($( $key:ident: $name:literal, $lo:literal ..= $hi:literal, $served:literal,
        $bounds:ident $layout:ident, $req:ty, $how:ident($($h:tt)+); )*) => {
        /// Every served API, in one place.
        pub static APIS: &[ApiSpec] = &[$(
            ApiSpec {
                key: ApiKey::$key,
                name: $name,
                advertised: ($lo, $hi),
                min_served: $served,
                layout: &layouts::$layout,
                guarded: apis!(@guarded $bounds),
                decode: apis!(@decode $how($($h)+), $req),
            },
        )*];

        /// Runs the handler of a request `parse_request` accepted.
        pub async fn dispatch(
            shard: &Rc<Shard>,
            req: RequestFrame,
            ctx: RequestContext,
        ) -> Result<Option<Response>, FrameError> {
            match req.api_key {
                $( ApiKey::$key => apis!(@serve $how($($h)+), shard, req, ctx), )*
                // parse_request lets through only the APIs above.
                other => Err(FrameError::UnsupportedVersion {
                    key: other,
                    version: req.version,
                    advertised: "none".to_string(),
                }),
            }
        }
    };
    (@guarded guard) => { true };
    (@guarded own) => { false };
    (@decode partitions($h:ty), $req:ty) => {
        |r| <$h as PartitionApi>::decode(r, &Limits::default()).map(drop)
    };
    (@decode $how:ident($f:path), $req:ty) => { decode_as::<$req> };
    (@serve partitions($h:ty), $shard:ident, $req:ident, $ctx:ident) => {
        scatter::serve::<$h>($shard, $req, $ctx).await
    };
    (@serve handle($f:path), $shard:ident, $req:ident, $ctx:ident) => {
        one($f($shard, &$req).await)
    };
    (@serve handle_now($f:path), $shard:ident, $req:ident, $ctx:ident) => {
        one($f($shard, &$req))
    };
    (@serve handle_auth($f:path), $shard:ident, $req:ident, $ctx:ident) => {
        one($f($shard, &$req, &$ctx.auth).await)
    };
    (@serve handle_now_auth($f:path), $shard:ident, $req:ident, $ctx:ident) => {
        one($f($shard, &$req, &$ctx.auth))
    };
    (@serve table($f:path), $shard:ident, $req:ident, $ctx:ident) => {
        one($f(&$req, APIS))
    };
}

apis! {
    Produce: "Produce", 0..=12, 3, own PRODUCE, m::ProduceRequest,
        partitions(handler::produce::Produce);
    Fetch: "Fetch", 4..=12, 4, own FETCH, m::FetchRequest,
        partitions(handler::fetch::Fetch);
    ListOffsets: "ListOffsets", 1..=7, 1, guard LIST_OFFSETS, m::ListOffsetsRequest,
        partitions(handler::list_offsets::ListOffsets);
    Metadata: "Metadata", 0..=12, 0, guard METADATA, m::MetadataRequest,
        handle_auth(handler::metadata);
    OffsetCommit: "OffsetCommit", 2..=9, 2, guard OFFSET_COMMIT, m::OffsetCommitRequest,
        handle_auth(handler::offset_commit);
    OffsetFetch: "OffsetFetch", 1..=9, 1, guard OFFSET_FETCH, m::OffsetFetchRequest,
        handle_auth(handler::offset_fetch);
    FindCoordinator: "FindCoordinator", 0..=4, 0, guard FIND_COORDINATOR, m::FindCoordinatorRequest,
        handle_auth(handler::find_coordinator);
    JoinGroup: "JoinGroup", 0..=9, 0, guard JOIN_GROUP, m::JoinGroupRequest,
        handle_auth(handler::join_group);
    Heartbeat: "Heartbeat", 0..=4, 0, guard HEARTBEAT, m::HeartbeatRequest,
        handle_auth(handler::heartbeat);
    LeaveGroup: "LeaveGroup", 0..=5, 0, guard LEAVE_GROUP, m::LeaveGroupRequest,
        handle_auth(handler::leave_group);
    SyncGroup: "SyncGroup", 0..=5, 0, guard SYNC_GROUP, m::SyncGroupRequest,
        handle_auth(handler::sync_group);
    DescribeGroups: "DescribeGroups", 0..=5, 0, guard DESCRIBE_GROUPS, m::DescribeGroupsRequest,
        handle_auth(handler::describe_groups);
    ListGroups: "ListGroups", 0..=5, 0, guard LIST_GROUPS, m::ListGroupsRequest,
        handle_auth(handler::list_groups);
    ApiVersions: "ApiVersions", 0..=4, 0, guard API_VERSIONS, m::ApiVersionsRequest,
        table(handler::api_versions::handle);
    SaslHandshake: "SaslHandshake", 0..=1, 0, guard SASL_HANDSHAKE, m::SaslHandshakeRequest,
        handle_now_auth(handler::sasl::handshake_out_of_exchange);
    SaslAuthenticate: "SaslAuthenticate", 0..=2, 0, guard SASL_AUTHENTICATE,
        m::SaslAuthenticateRequest,
        handle_now(handler::sasl::authenticate_out_of_exchange);
    DescribeUserScramCredentials: "DescribeUserScramCredentials", 0..=0, 0,
        guard DESCRIBE_USER_SCRAM_CREDENTIALS, m::DescribeUserScramCredentialsRequest,
        handle_now_auth(handler::describe_user_scram_credentials);
    DescribeClientQuotas: "DescribeClientQuotas", 0..=1, 0, guard DESCRIBE_CLIENT_QUOTAS,
        m::DescribeClientQuotasRequest,
        handle_now_auth(handler::describe_client_quotas);
    AlterUserScramCredentials: "AlterUserScramCredentials", 0..=0, 0,
        guard ALTER_USER_SCRAM_CREDENTIALS, m::AlterUserScramCredentialsRequest,
        handle_auth(handler::alter_user_scram_credentials);
    CreateTopics: "CreateTopics", 2..=7, 2, guard CREATE_TOPICS, m::CreateTopicsRequest,
        handle_auth(handler::create_topics);
    DeleteTopics: "DeleteTopics", 1..=6, 1, guard DELETE_TOPICS, m::DeleteTopicsRequest,
        handle_auth(handler::delete_topics);
    DeleteRecords: "DeleteRecords", 0..=2, 0, guard DELETE_RECORDS, m::DeleteRecordsRequest,
        partitions(handler::delete_records::DeleteRecords);
    InitProducerId: "InitProducerId", 0..=4, 0, guard INIT_PRODUCER_ID, m::InitProducerIdRequest,
        handle_auth(handler::init_producer_id);
    OffsetForLeaderEpoch: "OffsetForLeaderEpoch", 2..=4, 2, guard OFFSET_FOR_LEADER_EPOCH,
        m::OffsetForLeaderEpochRequest,
        partitions(handler::offset_for_leader_epoch::OffsetForLeaderEpoch);
    DescribeConfigs: "DescribeConfigs", 1..=4, 1, guard DESCRIBE_CONFIGS, m::DescribeConfigsRequest,
        handle_now_auth(handler::describe_configs);
    AlterConfigs: "AlterConfigs", 0..=2, 0, guard ALTER_CONFIGS, m::AlterConfigsRequest,
        handle_auth(handler::alter_configs);
    CreatePartitions: "CreatePartitions", 0..=3, 0, guard CREATE_PARTITIONS, m::CreatePartitionsRequest,
        handle_auth(handler::create_partitions);
    DeleteGroups: "DeleteGroups", 0..=2, 0, guard DELETE_GROUPS, m::DeleteGroupsRequest,
        handle_auth(handler::delete_groups);
    IncrementalAlterConfigs: "IncrementalAlterConfigs", 0..=1, 0, guard INCREMENTAL_ALTER_CONFIGS,
        m::IncrementalAlterConfigsRequest,
        handle_auth(handler::incremental_alter_configs);
    OffsetDelete: "OffsetDelete", 0..=0, 0, guard OFFSET_DELETE, m::OffsetDeleteRequest,
        handle_auth(handler::offset_delete);
    ElectLeaders: "ElectLeaders", 0..=2, 0, guard ELECT_LEADERS, m::ElectLeadersRequest,
        handle_auth(handler::elect_leaders);
    DescribeCluster: "DescribeCluster", 0..=1, 0, guard DESCRIBE_CLUSTER, m::DescribeClusterRequest,
        handle_now_auth(handler::describe_cluster);
    DescribeLogDirs: "DescribeLogDirs", 1..=4, 1, guard DESCRIBE_LOG_DIRS, m::DescribeLogDirsRequest,
        handle_auth(handler::describe_log_dirs);
    DescribeQuorum: "DescribeQuorum", 0..=2, 0, guard DESCRIBE_QUORUM, m::DescribeQuorumRequest,
        handle_auth(handler::describe_quorum);
    DescribeProducers: "DescribeProducers", 0..=0, 0, guard DESCRIBE_PRODUCERS,
        m::DescribeProducersRequest,
        partitions(handler::describe_producers::DescribeProducers);
    DescribeTopicPartitions: "DescribeTopicPartitions", 0..=0, 0, guard DESCRIBE_TOPIC_PARTITIONS,
        m::DescribeTopicPartitionsRequest,
        handle_now_auth(handler::describe_topic_partitions);
    DescribeAcls: "DescribeAcls", 1..=3, 1, guard DESCRIBE_ACLS, m::DescribeAclsRequest,
        handle_now_auth(handler::describe_acls);
    CreateAcls: "CreateAcls", 1..=3, 1, guard CREATE_ACLS, m::CreateAclsRequest,
        handle_auth(handler::create_acls);
    DeleteAcls: "DeleteAcls", 1..=3, 1, guard DELETE_ACLS, m::DeleteAclsRequest,
        handle_auth(handler::delete_acls);
}

/// A handler's single response buffer as a response.
fn one(response: Result<Bytes, FrameError>) -> Result<Option<Response>, FrameError> {
    response.map(|b| Some(vec![b]))
}

/// The decode of handlers that decode their body with kafka-protocol.
fn decode_as<T: Decodable>(req: &RequestFrame) -> Result<(), FrameError> {
    req.decode::<T>().map(drop)
}

/// The v0 answer to an ApiVersions request newer than any served.
pub fn api_versions_too_new(correlation_id: i32) -> Result<Option<Response>, FrameError> {
    one(handler::api_versions::too_new(correlation_id, APIS))
}

/// The spec of a served API.
pub fn spec(key: ApiKey) -> Option<&'static ApiSpec> {
    find(APIS, key)
}

// Lookups by key, for tests, benches and tools that check the guard and
// the decode path API by API.

/// Every served API with the versions its requests are decoded at, as
/// (key, lowest, highest).
pub fn supported_apis() -> impl Iterator<Item = (i16, i16, i16)> {
    APIS.iter()
        .map(|s| (s.key as i16, s.min_served, s.advertised.1))
}

/// The versions requests of `key` are decoded at, as (lowest, highest).
pub fn supported_versions(key: i16) -> Option<(i16, i16)> {
    let key = ApiKey::try_from(key).ok()?;
    spec(key).map(|s| (s.min_served, s.advertised.1))
}

/// The guard's walk of a request body for API `key` at `version`, with the
/// layout the table names.
pub fn inspect_request_body(key: i16, version: i16, body: &[u8]) -> Result<BodyStats, GuardError> {
    let spec = ApiKey::try_from(key)
        .ok()
        .and_then(spec)
        .filter(|s| s.serves(version))
        .ok_or(GuardError::UnsupportedApi { key, version })?;
    inspect_body(spec.layout, version, body)
}

/// Whether kafka-protocol can decode `body` as request `key` at `version`
/// without preallocating more than the input justifies.
pub fn check_request_body(key: i16, version: i16, body: &[u8]) -> Result<(), GuardError> {
    inspect_request_body(key, version, body).map(drop)
}

/// Like [`check_request_body`], returning how many bytes the crate reads.
pub fn checked_body_len(key: i16, version: i16, body: &[u8]) -> Result<usize, GuardError> {
    inspect_request_body(key, version, body).map(|s| s.body_len)
}

/// Checks `body` with the guard, then decodes it as `R` with kafka-protocol.
/// Zero-copy for strings and records: they stay slices of `body`.
pub fn decode_checked<R: Request>(version: i16, body: &mut Bytes) -> Result<R, FrameError> {
    check_request_body(R::KEY, version, body)?;
    R::decode(body, version).map_err(|e| FrameError::BadBody(format!("{e:#}")))
}

/// The fuzz target's body (`fuzz/fuzz_targets/request_frame.rs`), also run
/// by the property tests: a raw frame (request header and body, without the
/// size) through the broker's own path, `parse_request` (header, version,
/// guard) and then the decode the API's handler runs. Returns the api key
/// on success. Must never panic nor allocate beyond the input's bounds.
pub fn fuzz_request_frame(data: &[u8]) -> Result<i16, FrameError> {
    match parse_request(Bytes::copy_from_slice(data), APIS)? {
        Parsed::Request(spec, req) => {
            (spec.decode)(&req)?;
            Ok(spec.key as i16)
        }
        Parsed::ApiVersionsTooNew { .. } => Ok(ApiKey::ApiVersions as i16),
    }
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};

    use super::*;

    /// A Metadata v1 frame (header v1) naming `n` empty topic names: two
    /// wire bytes per array element.
    fn metadata_with_empty_names(n: usize) -> Bytes {
        let mut f = BytesMut::new();
        f.put_i16(ApiKey::Metadata as i16);
        f.put_i16(1);
        f.put_i32(9);
        f.put_i16(-1); // null client id
        f.put_i32(n as i32);
        for _ in 0..n {
            f.put_i16(0);
        }
        f.freeze()
    }

    // Proves the element budget refuses a frame whose decoded form would
    // be far larger than the frame.
    #[test]
    fn element_budget_bounds_decoded_size() {
        assert!(matches!(
            parse_request(metadata_with_empty_names(100), APIS),
            Ok(Parsed::Request(..))
        ));
        let err = parse_request(metadata_with_empty_names(200_000), APIS).unwrap_err();
        assert!(err.to_string().contains("array elements"), "{err}");
    }

    // Proves an ApiVersions above the served versions gets the KIP-511
    // fallback instead of a closed connection.
    #[test]
    fn api_versions_above_ours_gets_the_fallback() {
        let mut f = BytesMut::new();
        f.put_i16(ApiKey::ApiVersions as i16);
        f.put_i16(99);
        f.put_i32(1234);
        assert!(matches!(
            parse_request(f.freeze(), APIS),
            Ok(Parsed::ApiVersionsTooNew {
                correlation_id: 1234
            })
        ));
    }

    // Proves unknown API keys and Produce below v3 are refused.
    #[test]
    fn unknown_keys_and_old_produce_are_refused() {
        let mut f = BytesMut::new();
        f.put_i16(999);
        f.put_i16(0);
        f.put_i32(1);
        assert!(matches!(
            parse_request(f.freeze(), APIS),
            Err(FrameError::UnknownApiKey(999))
        ));
        let mut f = BytesMut::new();
        f.put_i16(ApiKey::Produce as i16);
        f.put_i16(2);
        f.put_i32(1);
        assert!(matches!(
            parse_request(f.freeze(), APIS),
            Err(FrameError::UnsupportedVersion { .. })
        ));
    }

    // Proves every advertised range is one the codec can decode, and the
    // table lists each API once.
    #[test]
    fn advertised_versions_are_decodable_by_the_codec() {
        for spec in APIS {
            let range = spec.key.valid_versions();
            assert!(
                range.min <= spec.min_served && spec.advertised.1 <= range.max,
                "{}",
                spec.name
            );
            assert!(spec.advertised.0 <= spec.min_served, "{}", spec.name);
            assert_eq!(APIS.iter().filter(|s| s.key == spec.key).count(), 1);
        }
    }
}
