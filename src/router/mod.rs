//! The router: between the wire and the shards.
//!
//! A parsed request comes here first. The API table ([`apis`]) says which
//! handler serves it. For the APIs whose requests name partitions, the
//! router is the door ([`scatter`]): it resolves every topic and partition
//! once against this shard's routing table (one lookup by topic name, then
//! compact [`PartitionId`]s), sends each owning shard its share in one job,
//! lets the owners work concurrently and puts the answers back in request
//! order, so handlers only say what to do with one partition. Nothing after
//! the door looks a partition up by name.
//!
//! Lives on every shard; all state it reads is the shard's own.
//!
//! [`PartitionId`]: crate::shard::routing_table::PartitionId

pub mod apis;
mod scatter;

use std::cell::RefCell;
use std::rc::Rc;

use crate::shard::budget::{Account, Hold};

pub use apis::{api_versions_too_new, dispatch, APIS};

/// What the router needs of the connection a request came on.
pub struct RequestContext {
    /// The connection's share of the shard's response budget: a response
    /// that may be large (Fetch) takes its bytes from it before any
    /// partition is read.
    pub responses: Rc<Account>,
    /// Where the router leaves that response's hold, for the connection
    /// to keep until the response is written.
    pub response_hold: Rc<RefCell<Option<Hold>>>,
    /// The connection's principal and cached authorization decisions.
    pub auth: Rc<crate::security::authz::ConnAuth>,
}
