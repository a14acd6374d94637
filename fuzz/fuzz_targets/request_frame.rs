//! A raw request frame (request header + body, without the 4-byte size):
//! the header is decoded with kafka-protocol, the body goes through the
//! guard and only if the guard accepts it through the crate's decoder for
//! that api key. Any panic, abort or out-of-memory (libFuzzer's
//! -rss_limit_mb / -malloc_limit_mb) is a bug.
//!
//! The logic lives in the library (`shardlog::protocol::guard::
//! fuzz_request_frame`) so that the property tests run it on stable.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = shardlog::protocol::guard::fuzz_request_frame(data);
});
