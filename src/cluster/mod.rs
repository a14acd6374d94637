//! The cluster: the KRaft-style metadata quorum of the controllers.
//!
//! A node with `process.roles` containing `controller` runs a member of
//! the quorum on shard 0 ([`quorum`]): raft-rs (`raft`, TiKV's) as the
//! consensus library, its log kept in shardlog's own storage engine
//! ([`wal`]), its messages carried over the CONTROLLER listener
//! ([`transport`]). Broker registration, the metadata image and partition
//! placement build on it. A broker-only node (`process.roles=broker`)
//! follows the quorum as an observer ([`observer`]).

pub mod image;
pub mod observer;
pub mod quorum;
pub mod snapshot;
pub mod transport;
pub mod wal;

pub use image::{Endpoint, MetadataImage, MetadataRecord, TopicChange, TopicImage};
pub use quorum::{
    BrokerIdentity, Proposer, QuorumConfig, QuorumStatus, SharedImage, SharedStatus, VoterAddr,
    VoterState,
};
