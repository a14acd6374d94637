//! The shardlog load generator (see the load-generator issue for the full
//! tool). This crate starts with the piece every workload shares: the
//! open-loop send schedule and coordinated-omission-corrected latency.

pub mod schedule;
