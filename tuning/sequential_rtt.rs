//! The round trip of a minimal sequential Kafka client, as a yardstick for
//! loadgen's low-load latency (issue: "publish-from-send p50 <= 1.5x the
//! round trip of a minimal sequential client"): librdkafka through the
//! rdkafka crate, linger.ms=0, acks=1, one 100-byte record produced and
//! its delivery report awaited, then the next, on one partition.
//!
//!     cargo run --release --example sequential-rtt -- \
//!         BOOTSTRAP TOPIC COUNT [RATE]
//!
//! RATE (records/s, default 0) spaces the sends on a schedule; 0 sends each
//! as soon as the last is acknowledged. Prints one JSON line of round-trip
//! percentiles in microseconds. The topic is created by the first send
//! (auto-creation) during 200 unmeasured warm-up records.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const WARMUP: usize = 200;
const TIMEOUT: Duration = Duration::from_secs(30);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: sequential-rtt BOOTSTRAP TOPIC COUNT [RATE]");
        std::process::exit(2);
    }
    let (bootstrap, topic) = (&args[0], &args[1]);
    let count: usize = args[2].parse().expect("COUNT is a number");
    let rate: u64 = args
        .get(3)
        .map_or(0, |r| r.parse().expect("RATE is a number"));
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        .set("acks", "1")
        .set("enable.idempotence", "false")
        .create()
        .expect("producer");
    let payload = vec![b'x'; 100];
    let send = |i: usize| {
        let key = i.to_be_bytes();
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(0)
                    .key(&key[..])
                    .payload(&payload),
            )
            .map_err(|(e, _)| e)
            .expect("send");
        // Wait for the delivery report by polling without a timeout: the
        // crate's poll is not woken by a delivery report (a 1 ms timeout
        // measures 1 ms, flush() 100 ms), so the yardstick spins and costs
        // its core, which adds nothing to the round trip.
        let deadline = Instant::now() + TIMEOUT;
        while producer.in_flight_count() > 0 {
            assert!(Instant::now() < deadline, "no delivery report");
            producer.poll(Duration::ZERO);
            std::hint::spin_loop();
        }
    };
    for i in 0..WARMUP {
        send(i);
    }
    let start = Instant::now();
    let mut rtt_us = Vec::with_capacity(count);
    for i in 0..count {
        if let Some(at_ns) = (i as u64 * 1_000_000_000).checked_div(rate) {
            let due = start + Duration::from_nanos(at_ns);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let t = Instant::now();
        send(WARMUP + i);
        rtt_us.push(t.elapsed().as_micros() as u64);
    }
    rtt_us.sort_unstable();
    let at = |q: f64| rtt_us[((rtt_us.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{{\"count\": {}, \"rate\": {rate}, \"p50_us\": {}, \"p90_us\": {}, \"p99_us\": {}, \"p999_us\": {}, \"max_us\": {}}}",
        rtt_us.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        at(1.0)
    );
}
