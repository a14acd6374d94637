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

mod admin_configs;
pub mod api_versions;
mod create_partitions;
mod delete_groups;
pub mod delete_records;
mod describe_cluster;
mod describe_groups;
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
use crate::shard::routing_table::RouteError;
use crate::shard::Shard;

pub use admin_configs::incremental_alter as incremental_alter_configs;
pub use admin_configs::{alter as alter_configs, describe as describe_configs};
pub use create_partitions::handle as create_partitions;
pub use delete_groups::handle as delete_groups;
pub use describe_cluster::handle as describe_cluster;
pub use describe_groups::handle as describe_groups;
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
pub use sync_group::handle as sync_group;
pub use topics::{create as create_topics, delete as delete_topics};

/// A response frame as buffers to write in order (record batches are
/// referenced, not copied).
pub type Response = Vec<Bytes>;

/// One topic of a request or of its answer: the name as the client sent
/// it (a slice of the request frame) and its partitions in request order,
/// each with its share of the request or its answer.
#[derive(Debug, Clone)]
pub struct Topic<T> {
    pub name: TopicName,
    pub partitions: Vec<(i32, T)>,
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

/// An API whose request lists topics and partitions, whose work runs on
/// each partition's owning shard, and whose response mirrors the request.
pub trait PartitionApi: Sized + 'static {
    /// What the handler keeps of the request while its partitions are served.
    type Request;
    /// Request-wide values each owning shard needs (acks, limits).
    type Params: Copy + Send + 'static;
    /// One partition's share of the request.
    type Input: Clone + Send + 'static;
    /// One partition's answer.
    type Output: Send + 'static;

    fn decode(req: &RequestFrame) -> Result<Decoded<Self>, FrameError>;

    /// The work for one partition, on the shard that owns it.
    fn serve(
        partition: Rc<Partition>,
        params: Self::Params,
        input: Self::Input,
    ) -> impl Future<Output = Self::Output> + 'static;

    /// The answer for a partition the router could not reach.
    fn unrouted(error: RouteError) -> Self::Output;

    /// The response, from every partition's answer in request order.
    fn respond(
        req: &RequestFrame,
        request: Self::Request,
        answers: Vec<Topic<Self::Output>>,
    ) -> Result<Option<Response>, FrameError>;
}

/// A partition API that may wait for data before answering (Fetch).
pub trait LongPoll: PartitionApi {
    /// Settles a round of answers (limits applied in request order) and
    /// says until when to wait for more, or `None` to answer now.
    fn settle(request: &Self::Request, answers: &mut [Topic<Self::Output>]) -> Option<Instant>;

    /// Resolves when the partition has something new for `input`.
    fn data_beyond(
        partition: Rc<Partition>,
        input: Self::Input,
    ) -> impl Future<Output = ()> + 'static;
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
