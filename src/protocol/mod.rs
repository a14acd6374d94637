//! The Kafka wire format as the broker uses it: the frames and headers of
//! requests, the advertised API versions, the bounds check every request
//! body passes before the kafka-protocol crate decodes it, and response
//! encoding.

pub mod api;
mod body;
pub mod client;
pub mod fetch_decode;
pub mod fetch_encode;
pub mod frame;
pub mod guard;
pub mod produce;

pub use api::ApiSpec;
pub use frame::{encode_response, FrameError, RequestFrame};
