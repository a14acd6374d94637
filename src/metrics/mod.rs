//! The metrics endpoint: an HTTP listener on its own address
//! (`shardlog.metrics.listen`, default `0.0.0.0:9644`, empty to turn it
//! off) served by shard 0, with
//!
//! - `GET /metrics`: Prometheus's text format ([`exposition`]),
//! - `GET /health`: 200 when every shard serves and, in a cluster, the
//!   broker is registered and unfenced; 503 with the reason otherwise,
//! - `GET /`: a status page ([`page`]).
//!
//! Nothing is shared with the data path: every shard counts into its own
//! `Cell`s (`crate::stats`) and a scrape copies them out with one job per
//! shard ([`gather`]). Requests are parsed with `httparse`.

pub mod exposition;
pub mod gather;
pub mod http;
pub mod page;

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::shard::Shard;

/// How often each shard samples its executor's busy time.
pub const BUSY_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Keeps `shard.busy` current: once a second, the share of the last
/// interval the executor spent running tasks and polling I/O (glommio's
/// `total_runtime`, which excludes sleeping and spinning), and the running
/// total. Runs on every shard until shutdown.
pub async fn sample_busy(shard: Rc<Shard>) {
    // Each call hands back the time since the previous one and resets it.
    let _ = glommio::executor().executor_stats();
    let mut last = Instant::now();
    while !shard.is_shutting_down() {
        glommio::timer::sleep(BUSY_SAMPLE_INTERVAL).await;
        let ran = glommio::executor().executor_stats().total_runtime();
        let now = Instant::now();
        let wall = now.saturating_duration_since(last);
        last = now;
        let ratio = if wall.is_zero() {
            0.0
        } else {
            (ran.as_secs_f64() / wall.as_secs_f64()).min(1.0)
        };
        let (_, total) = shard.busy.get();
        shard.busy.set((ratio, total + ran));
    }
}
