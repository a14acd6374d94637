//! Bounded memory and fair service under slow, idle and hostile clients, on
//! the real broker with real sockets: clients that never read their
//! responses, frames trickled a byte at a time, thousands of idle
//! connections, idle timeouts, connection limits, and the broker's cap on a
//! Fetch response. Each case prints the figures it measured (run with
//! `--nocapture` to see them).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::broker::{Broker, BrokerOptions};
use common::raw::{
    create_topic, encode_request, healthy_exchange, produce_request, rss_kb, str_bytes, topic_name,
    value_batch as batch, Conn, Watchdog,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse,
    ProduceResponse,
};

const MIB: usize = 1 << 20;

/// Produces `batches` batches on partition 0 of `topic` and waits for each.
fn fill(conn: &mut Conn, topic: &str, batches: usize, batch_bytes: usize) {
    let one = batch(batch_bytes / 1024, 1000);
    for _ in 0..batches {
        let resp: ProduceResponse = conn.call(
            ApiKey::Produce,
            9,
            &produce_request(topic, 0, one.clone(), 1),
        );
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "produce to {topic}");
    }
}

fn fetch_request(topic: &str, offset: i64, max_bytes: i32, max_wait_ms: i32) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = offset;
    p.partition_max_bytes = max_bytes;
    p.log_start_offset = -1;
    let mut t = FetchTopic::default();
    t.topic = topic_name(topic);
    t.partitions = vec![p];
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_topics(vec![t])
}

/// Bytes of records in a Fetch response's first partition.
fn fetched_bytes(resp: &FetchResponse) -> usize {
    resp.responses[0].partitions[0]
        .records
        .as_ref()
        .map_or(0, |r| r.len())
}

/// The broker's resident memory, sampled every 50 ms while `f` runs; the
/// highest sample.
fn peak_rss_while<T>(broker: &Broker, f: impl FnOnce() -> T) -> (T, u64) {
    let pid = broker.pid().expect("broker running");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let sampler = thread::spawn(move || {
        let mut peak = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let rss = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                peak = peak.max(rss);
            }
            thread::sleep(Duration::from_millis(50));
        }
        peak
    });
    let out = f();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    (out, sampler.join().expect("sampler"))
}

/// Raises this process's open-files limit as far as allowed (children
/// inherit it).
#[allow(unsafe_code)]
fn raise_open_files(want: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct on this stack
    // frame only.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        let hard = limit.rlim_max.max(want);
        // As root the hard limit can be raised; otherwise only the soft one.
        let wanted = libc::rlimit {
            rlim_cur: want.min(hard),
            rlim_max: hard,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
            let soft_only = libc::rlimit {
                rlim_cur: limit.rlim_max.min(want),
                rlim_max: limit.rlim_max,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &soft_only);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

// Proves that clients pipelining large fetches and never reading their
// socket hold no more than their connections' response budgets: the
// broker's memory stays bounded while they sit there, a well-behaved
// client keeps producing and fetching promptly, and the memory and budget
// come back once they leave.
#[test]
fn slow_fetchers_hold_only_their_response_budget() {
    let broker = Broker::start(
        BrokerOptions::single()
            // Reads come from disk, allocating as the incident's did.
            .with_override("shardlog.cache.bytes", 8 * MIB)
            .with_override("auto.create.topics.enable", "false"),
    );
    let addr = broker.bootstrap();
    let mut admin = Conn::open(&addr);
    create_topic(&mut admin, "big", 1);
    create_topic(&mut admin, "small", 1);
    fill(&mut admin, "big", 96, MIB);
    let before = rss_kb(&broker);

    // Three clients pipeline 50 fetches of up to 50 MB each and never read.
    let fetch = encode_request(
        ApiKey::Fetch,
        4,
        1,
        &fetch_request("big", 0, 50 * MIB as i32, 0),
    );
    let (latencies, peak) = peak_rss_while(&broker, || {
        let mut slow: Vec<TcpStream> = (0..3)
            .map(|_| {
                let s = TcpStream::connect(&addr).expect("connect");
                s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
                s
            })
            .collect();
        for s in &mut slow {
            for _ in 0..50 {
                s.write_all(&fetch).expect("pipeline a fetch");
            }
        }
        // Let the broker work on them for a while.
        thread::sleep(Duration::from_secs(3));
        // A well-behaved client: produce a small batch and fetch it back,
        // ten times.
        let mut good = Conn::open(&addr);
        let mut latencies = Vec::new();
        for i in 0..10 {
            let t = Instant::now();
            let resp: ProduceResponse = good.call(
                ApiKey::Produce,
                9,
                &produce_request("small", 0, batch(10, 100), 1),
            );
            assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
            let got: FetchResponse = good.call(
                ApiKey::Fetch,
                11,
                &fetch_request("small", i * 10, MIB as i32, 0),
            );
            assert!(fetched_bytes(&got) > 0, "the small batch comes back");
            latencies.push(t.elapsed());
        }
        drop(slow);
        latencies
    });
    let worst = latencies.iter().max().copied().unwrap_or_default();
    // Memory handed back once they are gone (the sweeper trims it).
    thread::sleep(Duration::from_secs(2));
    let after = rss_kb(&broker);
    // The budget came back: a new 50 MB fetch is answered.
    let mut again = Conn::open(&addr);
    let t = Instant::now();
    let resp: FetchResponse = again.call(
        ApiKey::Fetch,
        4,
        &fetch_request("big", 0, 50 * MIB as i32, 0),
    );
    let refetch = t.elapsed();
    println!(
        "slow fetchers: RSS before {before} kB, peak {peak} kB, after {after} kB; \
         well-behaved produce+fetch worst {worst:?}; a 50 MB fetch afterwards {refetch:?} \
         ({} bytes)",
        fetched_bytes(&resp)
    );
    assert!(fetched_bytes(&resp) > 40 * MIB, "the big fetch is answered");
    // Three connections at 64 MiB each, the 8 MiB cache, buffers: far below
    // the 2.3 GB per connection the unbounded broker reached.
    assert!(
        peak < 600 << 10,
        "broker RSS peaked at {peak} kB with three slow fetchers"
    );
    assert!(
        worst < Duration::from_secs(3),
        "well-behaved client waited {worst:?}"
    );
    assert!(
        after < before + (100 << 10),
        "RSS {after} kB after the slow clients left (before: {before} kB)"
    );
}

// Proves that hundreds of connections announcing large frames and
// trickling them hold only the bytes they sent: the shard's request budget
// is not exhausted by announcements, other clients keep being served, and
// the trickling connections are closed once their frames take longer than
// shardlog.request.read.timeout.ms.
#[test]
fn trickled_frames_neither_lock_out_others_nor_stay_open() {
    let mut broker = Broker::start(
        BrokerOptions::single()
            // 64 connections announcing 1 MiB would have filled this before.
            .with_override("queued.max.request.bytes", 64 * MIB)
            .with_override("shardlog.request.read.timeout.ms", 3000)
            .with_override("auto.create.topics.enable", "false"),
    );
    let addr = broker.bootstrap();
    let watchdog = Watchdog::start(addr.clone());
    watchdog.still_served("start");
    let mut admin = Conn::open(&addr);
    create_topic(&mut admin, "t", 1);

    let before = rss_kb(&broker);
    let mut trickle: Vec<TcpStream> = (0..520)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(&(MIB as i32).to_be_bytes())
                .expect("announce 1 MiB");
            s
        })
        .collect();
    let start = Instant::now();
    let mut rounds = 0;
    while start.elapsed() < Duration::from_millis(2000) {
        for s in &mut trickle {
            let _ = s.write_all(&[0]);
        }
        rounds += 1;
        thread::sleep(Duration::from_millis(500));
    }
    let during = rss_kb(&broker);
    // Others are served while 520 frames trickle in.
    watchdog.still_served("520 trickling frames");
    let resp: ProduceResponse = admin.call(
        ApiKey::Produce,
        9,
        &produce_request("t", 0, batch(10, 100), -1),
    );
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    // Past the read timeout every trickling connection is closed.
    let closed_by = Instant::now() + Duration::from_secs(8);
    let mut closed = 0;
    for s in &mut trickle {
        let mut buf = [0u8; 16];
        let left = closed_by.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => closed += 1,
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset) => closed += 1,
            Ok(n) => panic!("a trickling connection got {n} bytes of answer"),
            Err(e) => panic!("a trickling connection is still open: {e}"),
        }
    }
    println!(
        "trickled frames: 520 connections, {rounds} rounds of one byte each; RSS before \
         {before} kB, during {during} kB; all closed {:?} after the first byte",
        start.elapsed()
    );
    assert_eq!(closed, 520);
    assert!(broker.is_running());
    watchdog.still_served("the trickling connections were closed");
    assert!(
        during < before + (64 << 10),
        "520 trickling connections took {} kB",
        during.saturating_sub(before)
    );
}

// Proves an idle connection costs a few kilobytes and that what 10,000 of
// them took is given back when they close.
#[test]
fn ten_thousand_idle_connections_cost_little() {
    const CONNECTIONS: usize = 10_000;
    // Each connection takes a descriptor here and one in the broker.
    let limit = raise_open_files(CONNECTIONS as u64 + 1000);
    if limit < CONNECTIONS as u64 + 200 {
        println!("skipped: the open-files limit is {limit}, and cannot be raised past it");
        return;
    }
    let broker = Broker::start(BrokerOptions::single());
    let addr = broker.bootstrap();
    let mut warm = Conn::open(&addr);
    healthy_exchange(&mut warm).expect("served");
    thread::sleep(Duration::from_millis(500));
    let before = rss_kb(&broker);

    let request = encode_request(
        ApiKey::ApiVersions,
        3,
        1,
        &ApiVersionsRequest::default()
            .with_client_software_name(str_bytes("idle"))
            .with_client_software_version(str_bytes("1")),
    );
    let t = Instant::now();
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        let mut c = Conn::try_open(&addr).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        // Each is used once, then sits idle: the common case of a client
        // that connected and went quiet.
        c.send_raw(&request).expect("send");
        conns.push(c);
    }
    for c in &mut conns {
        let mut frame = c.read_frame().expect("ApiVersions answered");
        let v: ApiVersionsResponse =
            common::raw::decode_response(ApiKey::ApiVersions, 3, 1, &mut frame);
        assert_eq!(v.error_code, 0);
    }
    let opened = t.elapsed();
    // The sweeper sends them back to lean reads within a second or so.
    thread::sleep(Duration::from_secs(2));
    let during = rss_kb(&broker);
    healthy_exchange(&mut warm).expect("still served with 10,000 idle connections");
    drop(conns);
    thread::sleep(Duration::from_secs(2));
    let after = rss_kb(&broker);
    let per_connection = during.saturating_sub(before) * 1024 / CONNECTIONS as u64;
    println!(
        "idle connections: {CONNECTIONS} opened and used once in {opened:?}; RSS before \
         {before} kB, with them {during} kB ({per_connection} bytes each), after they \
         closed {after} kB"
    );
    assert!(
        per_connection < 16 << 10,
        "an idle connection costs {per_connection} bytes"
    );
    assert!(
        after < before + (during.saturating_sub(before)) / 4 + (8 << 10),
        "RSS {after} kB after closing (before {before} kB, during {during} kB)"
    );
}

// Proves connections.max.idle.ms closes a connection that sends nothing,
// and not one that keeps sending requests.
#[test]
fn idle_connections_are_closed() {
    let broker =
        Broker::start(BrokerOptions::single().with_override("connections.max.idle.ms", 1500));
    let addr = broker.bootstrap();
    let mut idle = Conn::open(&addr);
    let mut busy = Conn::open(&addr);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(3500) {
        healthy_exchange(&mut busy).expect("a busy connection stays open");
        thread::sleep(Duration::from_millis(300));
    }
    idle.expect_closed("a connection idle for 3.5 s with connections.max.idle.ms=1500");
    assert!(broker.log().contains("closing idle connection"));
}

// Proves max.connections.per.ip closes connections past the limit from
// one address while other addresses still connect, and max.connections
// leaves new connections waiting until one closes.
#[test]
fn connection_limits() {
    let broker = Broker::start(
        BrokerOptions::single()
            .with_override("max.connections.per.ip", 2)
            .with_override("max.connections.per.ip.overrides", "127.0.0.3:0")
            .with_override("max.connections", 3),
    );
    let addr: SocketAddr = broker.bootstrap().parse().unwrap();
    // The fixture's readiness probe (from 127.0.0.1) must be gone before the
    // counting starts; the addresses below are all other ones.
    thread::sleep(Duration::from_millis(500));
    let from = |ip: &str| -> Conn {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::new(ip.parse().unwrap(), 0).into())
            .unwrap();
        s.connect(&addr.into()).unwrap();
        let stream: TcpStream = s.into();
        stream
            .set_read_timeout(Some(common::raw::IO_TIMEOUT))
            .unwrap();
        Conn {
            stream,
            next_correlation: 1,
        }
    };
    let mut a = from("127.0.0.5");
    let mut b = from("127.0.0.5");
    healthy_exchange(&mut a).unwrap();
    healthy_exchange(&mut b).unwrap();
    let mut over = from("127.0.0.5");
    over.expect_closed("a third connection from 127.0.0.5 with max.connections.per.ip=2");
    let mut zero = from("127.0.0.3");
    zero.expect_closed("127.0.0.3, whose override is 0");
    let mut c = from("127.0.0.6");
    healthy_exchange(&mut c).unwrap();
    // Three are open: a fourth (from yet another address) waits unanswered.
    let mut waiting = from("127.0.0.7");
    waiting
        .stream
        .set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    let result = healthy_exchange(&mut waiting);
    assert!(
        result.is_err(),
        "a fourth connection is served past max.connections=3"
    );
    drop(a);
    // Once one closes, the waiting connection is accepted; its request was
    // already sent and is answered.
    waiting
        .stream
        .set_read_timeout(Some(common::raw::IO_TIMEOUT))
        .unwrap();
    let mut frame = waiting.read_frame().expect("answered once a slot frees up");
    let v: ApiVersionsResponse =
        common::raw::decode_response(ApiKey::ApiVersions, 3, 1, &mut frame);
    assert_eq!(v.error_code, 0);
    assert!(broker.log().contains("too many connections from 127.0.0.5"));
}

// Proves fetch.max.bytes caps a Fetch response whatever the request asks,
// past it by at most one batch. (replica.fetch.max.bytes, the follower's
// cap, is proven on real followers in tests/cluster_replication.rs.)
#[test]
fn fetch_max_bytes_caps_responses() {
    let broker = Broker::start(
        BrokerOptions::single()
            .with_override("fetch.max.bytes", MIB)
            .with_override("auto.create.topics.enable", "false"),
    );
    let mut conn = Conn::open(&broker.bootstrap());
    create_topic(&mut conn, "capped", 1);
    fill(&mut conn, "capped", 40, 128 << 10);
    let resp: FetchResponse = conn.call(
        ApiKey::Fetch,
        11,
        &fetch_request("capped", 0, 50 * MIB as i32, 0),
    );
    let consumer = fetched_bytes(&resp);
    println!("fetch.max.bytes=1 MiB: a fetch asking for 50 MB got {consumer} bytes");
    assert!(consumer > 0);
    assert!(
        consumer <= MIB + (130 << 10),
        "{consumer} bytes past fetch.max.bytes"
    );
    // A fetch as replica 1, which holds no replica here: refused as Kafka
    // refuses a follower fetch from outside the replica set.
    let follower = fetch_request("capped", 0, 50 * MIB as i32, 0).with_replica_id(BrokerId(1));
    let resp: FetchResponse = conn.call(ApiKey::Fetch, 11, &follower);
    assert_eq!(resp.responses[0].partitions[0].error_code, 6);
    assert_eq!(fetched_bytes(&resp), 0);
}

// Proves long polls hold no response budget while they wait: twenty
// consumers long-polling with 50 MB fetches, on a shard whose response
// budget fits only two such fetches at once, all get a new batch promptly.
#[test]
fn long_polls_hold_no_response_budget_while_waiting() {
    let broker = Broker::start(
        BrokerOptions::single()
            .with_override("shardlog.response.bytes.max", 128 * MIB)
            .with_override("auto.create.topics.enable", "false"),
    );
    let addr = broker.bootstrap();
    let mut admin = Conn::open(&addr);
    create_topic(&mut admin, "polled", 1);
    let poll = encode_request(
        ApiKey::Fetch,
        11,
        1,
        &fetch_request("polled", 0, 50 * MIB as i32, 10_000),
    );
    let mut consumers: Vec<Conn> = (0..20)
        .map(|_| {
            let mut c = Conn::open(&addr);
            c.send_raw(&poll).expect("send a long poll");
            c
        })
        .collect();
    // Let every poll start waiting, then give them something to read.
    thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let resp: ProduceResponse = admin.call(
        ApiKey::Produce,
        9,
        &produce_request("polled", 0, batch(10, 100), 1),
    );
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    for c in &mut consumers {
        let mut frame = c.read_frame().expect("the long poll is answered");
        let got: FetchResponse = common::raw::decode_response(ApiKey::Fetch, 11, 1, &mut frame);
        assert!(fetched_bytes(&got) > 0, "the new batch is in the answer");
    }
    let answered = t.elapsed();
    println!("20 long polls of 50 MB on a 128 MiB response budget: all answered {answered:?} after the produce");
    assert!(
        answered < Duration::from_secs(5),
        "long polls waited {answered:?}: they held budget while waiting"
    );
}

// Proves that running out of descriptors makes the listeners back off and
// log once with a count rather than spin, and that they accept again once
// descriptors free up.
#[test]
fn out_of_descriptors_backs_off_and_recovers() {
    let broker = Broker::start(BrokerOptions {
        open_files_max: Some(96),
        ..BrokerOptions::single()
    });
    let addr: SocketAddr = broker.bootstrap().parse().unwrap();
    // More than the broker can hold; those it cannot accept wait in the
    // backlog (or time out connecting).
    let conns: Vec<TcpStream> = (0..160)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok())
        .collect();
    thread::sleep(Duration::from_millis(1500));
    let log = broker.log();
    let failures = log.matches("accept failed").count();
    println!(
        "out of descriptors: {} connections made; {failures} accept-failure log line(s)",
        conns.len()
    );
    assert!(failures >= 1, "running out of descriptors was not logged");
    assert!(
        failures <= 2,
        "accept failures logged {failures} times in 1.5 s: not rate-limited"
    );
    drop(conns);
    // Descriptors come back; the listener accepts again within its back-off.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ok = Conn::try_open(&broker.bootstrap())
            .ok()
            .and_then(|mut c| healthy_exchange(&mut c).ok())
            .is_some();
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broker did not accept again after descriptors freed up"
        );
        thread::sleep(Duration::from_millis(100));
    }
}
