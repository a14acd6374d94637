//! Creates a topic (1 partition) through any of the given brokers, trying
//! again (under a new name: an attempt the client gave up on may still have
//! succeeded) every 50 ms until a CreateTopics succeeds, and prints the
//! milliseconds that took: `tuning/cluster-failover.sh` runs it right after
//! killing the metadata quorum's leader, so the figure is the time from the
//! kill to the next successful CreateTopics.
//!
//!     cargo run --release --example create-until -- BOOTSTRAP TOPIC [TIMEOUT_S]

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: create-until BOOTSTRAP TOPIC [TIMEOUT_S]");
        std::process::exit(2);
    }
    let (bootstrap, topic) = (&args[0], &args[1]);
    let limit = Duration::from_secs(args.get(2).map_or(60, |s| s.parse().expect("TIMEOUT_S")));
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    // Long enough for the broker's own answer (it gives a change 15 s to
    // commit before REQUEST_TIMED_OUT).
    let options = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(20)))
        .operation_timeout(Some(Duration::from_secs(20)));
    let start = Instant::now();
    let mut attempts = 0;
    while start.elapsed() < limit {
        attempts += 1;
        let name = format!("{topic}-{attempts}");
        let new = NewTopic::new(&name, 1, TopicReplication::Fixed(1));
        let result = futures_lite::future::block_on(admin.create_topics([&new], &options));
        match result.as_deref() {
            Ok([Ok(_)]) => {
                println!("{}", start.elapsed().as_millis());
                eprintln!("created {name} after {attempts} attempt(s)");
                return;
            }
            other => {
                eprintln!("attempt {attempts}: {other:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    eprintln!("no CreateTopics succeeded within {limit:?}");
    std::process::exit(1);
}
