//! A raw request frame (request header + body, without the 4-byte size)
//! through the broker's own path: `parse_request` with the router's API
//! table (header, version, guard, element budget), then the decode the
//! API's handler runs. Any panic, abort or out-of-memory (libFuzzer's
//! -rss_limit_mb / -malloc_limit_mb) is a bug.
//!
//! The logic lives in the library (`shardlog::router::apis::
//! fuzz_request_frame`) so that the property tests run it on stable.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = shardlog::router::apis::fuzz_request_frame(data);
});
