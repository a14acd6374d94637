//! One module per Kafka API: how its request is decoded, what it does, and
//! how its response is encoded. The router (`crate::router`) calls them.
//!
//! APIs whose requests name partitions (Produce, Fetch, ListOffsets,
//! DeleteRecords, OffsetForLeaderEpoch) implement [`PartitionApi`]: they
//! say how to split a request into one input per partition, what to do
//! with one partition on the shard that owns it, and how to answer from
//! the outputs in request order. Resolving names, sending work to owners
//! and putting answers back in order is the router's alone. The other
//! APIs are plain `handle` functions.
//!
//! `Ok(None)` means no response is sent (Produce with acks=0). An `Err`
//! closes the connection: the body did not decode.

mod acls;
mod admin_configs;
pub mod api_versions;
mod authorized;
mod client_quotas;
mod create_partitions;
mod delete_groups;
pub mod delete_records;
mod describe_cluster;
mod describe_groups;
mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
mod describe_topic_partitions;
mod elect_leaders;
pub mod errors;
pub mod fetch;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
pub mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl;
mod scram_credentials;
mod sync_group;
mod topics;

use std::future::Future;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::partition::Partition;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::shard::routing_table::RouteError;
use crate::shard::Shard;

pub use acls::{create as create_acls, delete as delete_acls, describe as describe_acls};
pub use admin_configs::incremental_alter as incremental_alter_configs;
pub use admin_configs::{alter as alter_configs, describe as describe_configs};
pub use client_quotas::describe as describe_client_quotas;
pub use create_partitions::handle as create_partitions;
pub use delete_groups::handle as delete_groups;
pub use describe_cluster::handle as describe_cluster;
pub use describe_groups::handle as describe_groups;
pub use describe_log_dirs::handle as describe_log_dirs;
pub use describe_quorum::handle as describe_quorum;
pub use describe_topic_partitions::handle as describe_topic_partitions;
pub use elect_leaders::handle as elect_leaders;
pub use find_coordinator::handle as find_coordinator;
pub use heartbeat::handle as heartbeat;
pub use init_producer_id::handle as init_producer_id;
pub use join_group::handle as join_group;
pub use leave_group::handle as leave_group;
pub use list_groups::handle as list_groups;
pub use metadata::handle as metadata;
pub use offset_commit::handle as offset_commit;
pub use offset_delete::handle as offset_delete;
pub use offset_fetch::handle as offset_fetch;
pub use scram_credentials::{
    alter as alter_user_scram_credentials, describe as describe_user_scram_credentials,
};
pub use sync_group::handle as sync_group;
pub use topics::{create as create_topics, delete as delete_topics};

/// A response frame as buffers to write in order (record batches are
/// referenced, not copied).
pub type Response = Vec<Bytes>;

/// What a handler gives back: the response, `None` for none (acks=0), or
/// an error that closes the connection.
pub type Reply = Result<Option<Response>, FrameError>;

/// A partition API's answers, in the request's shape.
pub type Answers<H> = Vec<Topic<<H as PartitionApi>::Output>>;

/// One topic of a request or of its answer: the name as the client sent
/// it (a slice of the request frame) and its partitions in request order,
/// each with its share of the request or its answer.
#[derive(Debug, Clone)]
pub struct Topic<T> {
    pub name: TopicName,
    pub partitions: Vec<(i32, T)>,
}

impl<T> Topic<T> {
    /// The topics of a decoded request: `split` takes a request topic
    /// apart into its name and partitions, `each` turns a partition into
    /// its index and its input.
    pub fn from_request<RT, RP>(
        topics: Vec<RT>,
        split: impl Fn(RT) -> (TopicName, Vec<RP>),
        each: impl Fn(RP) -> (i32, T),
    ) -> Vec<Topic<T>> {
        topics
            .into_iter()
            .map(|t| {
                let (name, partitions) = split(t);
                Topic {
                    name,
                    partitions: partitions.into_iter().map(&each).collect(),
                }
            })
            .collect()
    }

    /// The topics of a response, in request order: `each` builds a
    /// partition's response from its index and answer, `topic` a topic's
    /// from its name and partitions.
    pub fn to_response<RT, RP>(
        answers: Vec<Topic<T>>,
        each: impl Fn(i32, T) -> RP,
        topic: impl Fn(TopicName, Vec<RP>) -> RT,
    ) -> Vec<RT> {
        answers
            .into_iter()
            .map(|t| {
                let partitions = t.partitions.into_iter().map(|(i, a)| each(i, a)).collect();
                topic(t.name, partitions)
            })
            .collect()
    }
}

/// The broker's limits on a request, from its configuration and the
/// connection it came on.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most one response may take: fetch.max.bytes and the
    /// connection's response budget, whichever is less.
    pub response_bytes_max: usize,
    /// The same for a follower's fetch (replica.fetch.response.max.bytes).
    pub replica_response_bytes_max: usize,
    /// The most a follower's fetch takes of one partition
    /// (replica.fetch.max.bytes).
    pub replica_partition_bytes_max: usize,
}

impl Default for Limits {
    /// No limit (tools and tests that decode without a connection).
    fn default() -> Self {
        Limits {
            response_bytes_max: usize::MAX,
            replica_response_bytes_max: usize::MAX,
            replica_partition_bytes_max: usize::MAX,
        }
    }
}

/// What a partition API's request needs of the authorizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The operation on each topic it names.
    Topic(Operation),
    /// The operation on the cluster (a follower's request).
    Cluster(Operation),
}

/// What decoding a partition API's request gives the router.
pub enum Decoded<H: PartitionApi> {
    /// Serve each partition on its owning shard, then answer.
    Route {
        /// What the handler keeps for its answer.
        request: H::Request,
        /// What every owning shard needs besides its partitions' inputs.
        params: H::Params,
        topics: Vec<Topic<H::Input>>,
    },
    /// Answered without touching a partition (a request refused as a whole).
    Answer(Option<Response>),
}

impl<H: PartitionApi<Request = (), Params = ()>> Decoded<H> {
    /// A request that is only its partitions.
    pub fn partitions(topics: Vec<Topic<H::Input>>) -> Self {
        Decoded::Route {
            request: (),
            params: (),
            topics,
        }
    }
}

/// An API whose request lists topics and partitions, whose work runs on
/// each partition's owning shard, and whose response mirrors the request.
pub trait PartitionApi: Sized + 'static {
    /// What the handler keeps of the request while its partitions are served.
    type Request;
    /// Request-wide values each owning shard needs (acks, limits).
    type Params: Clone + Send + 'static;
    /// One partition's share of the request.
    type Input: Clone + Send + 'static;
    /// One partition's answer; a partition the router could not reach
    /// answers with the routing error.
    type Output: From<RouteError> + Send + 'static;

    fn decode(req: &RequestFrame, limits: &Limits) -> Result<Decoded<Self>, FrameError>;

    /// What the request needs of the authorizer (Kafka's table of
    /// operations per API); a partition it is refused for answers
    /// TOPIC_AUTHORIZATION_FAILED without being touched.
    fn access(request: &Self::Request) -> Access;

    /// Whether a follower replica may serve the request's partitions
    /// (a consumer's Fetch v11+, KIP-392); otherwise a partition another
    /// broker leads answers NOT_LEADER_OR_FOLLOWER.
    fn replica_reads(_request: &Self::Request) -> bool {
        false
    }

    /// The most bytes the response may take, for APIs whose responses can
    /// be large (Fetch): the router takes that much of the connection's
    /// response budget before serving, and keeps what the response really
    /// takes until it is written.
    fn response_bytes(_request: &Self::Request) -> Option<usize> {
        None
    }

    /// The work for one partition, on the shard that owns it.
    fn serve(
        partition: Rc<Partition>,
        params: Self::Params,
        input: Self::Input,
    ) -> impl Future<Output = Self::Output> + 'static;

    /// The response, from every partition's answer in request order.
    fn respond(req: &RequestFrame, request: Self::Request, answers: Answers<Self>) -> Reply;

    /// Long polling (Fetch): settles a round of answers (limits applied in
    /// request order) and says until when to wait for more, or `None` to
    /// answer now, which is what every other API does.
    fn settle(_request: &Self::Request, _answers: &mut [Topic<Self::Output>]) -> Option<Instant> {
        None
    }

    /// Resolves when the partition has something new for `input`; only
    /// awaited while [`PartitionApi::settle`] asks to wait.
    fn data_beyond(
        _partition: Rc<Partition>,
        _input: Self::Input,
    ) -> impl Future<Output = ()> + 'static {
        std::future::pending()
    }
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub(crate) fn topic_name(s: impl Into<String>) -> TopicName {
    TopicName(str_bytes(s))
}

/// Runs `f` with the group coordinator of the shard that coordinates
/// `group_id` (this one or another); `None` if that shard has stopped.
pub(crate) async fn on_coordinator<T, F, Fut>(shard: &Rc<Shard>, group_id: &str, f: F) -> Option<T>
where
    F: FnOnce(Rc<crate::group::Coordinator>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    let target = shard.group_coordinator_shard(group_id);
    shard
        .run_on(target, move |s| f(s.groups.clone()))
        .await
        .ok()
}
