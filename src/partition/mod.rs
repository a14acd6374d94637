//! A partition: its log plus the state derived from it.
pub mod producer_state;
