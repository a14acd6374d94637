//! Raw Kafka connections for tests: requests encoded with kafka-protocol
//! (or by hand where they must be malformed) on plain blocking sockets, a
//! well-behaved client on its own thread, and the broker's memory use.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use shardlog::record::records::BatchBuilder;

use super::broker::Broker;

/// Bound on every socket read or write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

const NONE: i16 = 0;

pub fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// The bytes of a whole request frame: size prefix, header, body.
pub fn encode_request<R: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Vec<u8> {
    let mut encoded = BytesMut::new();
    body.encode(&mut encoded, version).expect("encode body");
    frame_with_body(key, version, correlation_id, &encoded)
}

/// A frame with a hand-made body after a valid header.
pub fn frame_with_body(key: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(str_bytes("bad-input-test")));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, key.request_header_version(version))
        .expect("encode header");
    buf.put_slice(body);
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.to_vec()
}

pub struct Conn {
    pub stream: TcpStream,
    pub next_correlation: i32,
}

impl Conn {
    pub fn open(addr: &str) -> Conn {
        Conn::try_open(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    }

    pub fn try_open(addr: &str) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            next_correlation: 1,
        })
    }

    /// Writes bytes; the broker may already have closed the connection.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        assert!((0..64 << 20).contains(&size), "response frame size {size}");
        let mut body = vec![0u8; size as usize];
        self.stream.read_exact(&mut body)?;
        Ok(Bytes::from(body))
    }

    /// Sends a request and decodes its response.
    pub fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Resp {
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        self.send_raw(&encode_request(key, version, correlation, req))
            .unwrap_or_else(|e| panic!("send {key:?} v{version}: {e}"));
        let mut frame = self
            .read_frame()
            .unwrap_or_else(|e| panic!("response to {key:?} v{version}: {e}"));
        decode_response(key, version, correlation, &mut frame)
    }

    /// Waits until the broker closes the connection (EOF or reset); panics
    /// if it sends anything or keeps it open past IO_TIMEOUT.
    pub fn expect_closed(&mut self, what: &str) {
        let mut buf = [0u8; 4096];
        let start = Instant::now();
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => panic!(
                    "{what}: the broker answered {n} bytes instead of closing: {:?}",
                    &buf[..n.min(64)]
                ),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset
                            | ErrorKind::ConnectionAborted
                            | ErrorKind::BrokenPipe
                    ) =>
                {
                    return
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!(
                        "{what}: the connection is still open after {:?}",
                        start.elapsed()
                    )
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("{what}: read: {e}"),
            }
        }
    }

    /// Either the connection is closed, or a response frame to
    /// `correlation` comes back (and the connection then still works).
    pub fn expect_closed_or_answered(&mut self, what: &str) -> bool {
        match self.read_frame() {
            Ok(frame) => {
                assert!(frame.len() >= 4, "{what}: short response");
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof
                        | ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                ) =>
            {
                false
            }
            Err(e) => panic!("{what}: neither closed nor answered: {e}"),
        }
    }
}

pub fn decode_response<Resp: Decodable>(
    key: ApiKey,
    version: i16,
    correlation: i32,
    frame: &mut Bytes,
) -> Resp {
    let header = ResponseHeader::decode(frame, key.response_header_version(version))
        .unwrap_or_else(|e| panic!("{key:?} v{version} response header: {e}"));
    assert_eq!(
        header.correlation_id, correlation,
        "{key:?} v{version}: correlation id"
    );
    let resp =
        Resp::decode(frame, version).unwrap_or_else(|e| panic!("{key:?} v{version} response: {e}"));
    assert!(
        frame.is_empty(),
        "{key:?} v{version}: {} bytes left after the response",
        frame.len()
    );
    resp
}

/// ApiVersions + Metadata on `conn`; Err describes what went wrong.
pub fn healthy_exchange(conn: &mut Conn) -> Result<(), String> {
    let correlation = conn.next_correlation;
    conn.next_correlation += 2;
    let mut out = encode_request(
        ApiKey::ApiVersions,
        3,
        correlation,
        &ApiVersionsRequest::default()
            .with_client_software_name(str_bytes("watchdog"))
            .with_client_software_version(str_bytes("1")),
    );
    out.extend(encode_request(
        ApiKey::Metadata,
        12,
        correlation + 1,
        &MetadataRequest::default().with_topics(None),
    ));
    conn.send_raw(&out).map_err(|e| format!("send: {e}"))?;
    let mut f = conn
        .read_frame()
        .map_err(|e| format!("ApiVersions response: {e}"))?;
    let v: ApiVersionsResponse = decode_response(ApiKey::ApiVersions, 3, correlation, &mut f);
    if v.error_code != NONE || v.api_keys.is_empty() {
        return Err(format!("ApiVersions answered error {}", v.error_code));
    }
    let mut f = conn
        .read_frame()
        .map_err(|e| format!("Metadata response: {e}"))?;
    let m: MetadataResponse = decode_response(ApiKey::Metadata, 12, correlation + 1, &mut f);
    if m.brokers.is_empty() {
        return Err("Metadata lists no brokers".to_string());
    }
    Ok(())
}

/// Exchanges served so far and the failures seen, with a condition
/// variable signalled after each exchange.
pub type Shared = Arc<(Mutex<(u64, Vec<String>)>, Condvar)>;

/// A well-behaved client on its own thread: ApiVersions + Metadata
/// exchanges in a loop, on one long-lived connection and, every tenth
/// time, a fresh one.
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    served: Shared,
    handle: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(addr: String) -> Watchdog {
        let stop = Arc::new(AtomicBool::new(false));
        let served: Shared = Arc::default();
        let (stop2, served2) = (stop.clone(), served.clone());
        let handle = thread::spawn(move || {
            let connect = || Conn::try_open(&addr).map_err(|e| format!("connect: {e}"));
            let mut long_lived = connect();
            let mut i = 0u64;
            while !stop2.load(Ordering::SeqCst) {
                i += 1;
                let r = if i.is_multiple_of(10) {
                    connect().and_then(|mut c| healthy_exchange(&mut c))
                } else {
                    match &mut long_lived {
                        Ok(c) => healthy_exchange(c),
                        Err(e) => Err(e.clone()),
                    }
                };
                let (lock, cv) = &*served2;
                let mut s = lock.lock().expect("watchdog state");
                match r {
                    Ok(()) => s.0 += 1,
                    Err(e) => {
                        if s.1.len() < 20 {
                            s.1.push(e);
                        }
                        long_lived = connect();
                    }
                }
                cv.notify_all();
                drop(s);
                // Pacing, not synchronisation: leave the broker's one core
                // to the test's own requests.
                thread::sleep(Duration::from_millis(2));
            }
        });
        Watchdog {
            stop,
            served,
            handle: Some(handle),
        }
    }

    /// Waits for two more successful exchanges; panics if any failed.
    pub fn still_served(&self, after: &str) {
        let (lock, cv) = &*self.served;
        let mut s = lock.lock().expect("watchdog state");
        let want = s.0 + 2;
        let deadline = Instant::now() + IO_TIMEOUT;
        while s.0 < want && s.1.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = cv.wait_timeout(s, left).expect("watchdog state").0;
        }
        // Checked with the lock released, so that the watchdog thread is
        // not poisoned by the panic.
        let (served, errors) = (s.0, s.1.clone());
        drop(s);
        assert!(
            errors.is_empty(),
            "after {after}: the well-behaved client failed: {errors:?}"
        );
        assert!(
            served >= want,
            "after {after}: the well-behaved client was not served within {IO_TIMEOUT:?}"
        );
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let r = h.join();
            if r.is_err() && !thread::panicking() {
                panic!("the watchdog thread panicked");
            }
        }
    }
}

pub fn rss_kb(broker: &Broker) -> u64 {
    let pid = broker.pid().expect("broker running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// Creates a topic (CreateTopics v7) and checks it was created.
pub fn create_topic(conn: &mut Conn, name: &str, partitions: i32) {
    let mut t = CreatableTopic::default();
    t.name = topic_name(name);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    let resp: CreateTopicsResponse = conn.call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default()
            .with_topics(vec![t])
            .with_timeout_ms(60_000),
    );
    assert_eq!(resp.topics[0].error_code, 0, "create {name}");
}

/// An uncompressed batch of `records` values of `value_bytes` bytes each.
pub fn value_batch(records: usize, value_bytes: usize) -> Bytes {
    let mut b = BatchBuilder::new(1_700_000_000_000);
    let value = vec![b'v'; value_bytes];
    for i in 0..records {
        b.push_value(i as i64, &value);
    }
    Bytes::from(b.build())
}

/// A Fetch request (no waiting) for one partition from `offset`, at most
/// `max_bytes`, naming `current_leader_epoch` (-1: none).
pub fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    current_leader_epoch: i32,
    max_bytes: i32,
) -> kafka_protocol::messages::FetchRequest {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    kafka_protocol::messages::FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(max_bytes)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(current_leader_epoch)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(max_bytes)])])
}

/// A Produce request of one batch for one partition.
pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.index = partition;
    p.records = Some(records);
    let mut t = TopicProduceData::default();
    t.name = topic_name(topic);
    t.partition_data = vec![p];
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![t])
}

/// DeleteRecords of partition 0 of `topic` before `offset` (10 s
/// timeout): (error code, low watermark).
pub fn delete_records(conn: &mut Conn, topic: &str, offset: i64) -> (i16, i64) {
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
    let mut p = DeleteRecordsPartition::default();
    p.partition_index = 0;
    p.offset = offset;
    let mut t = DeleteRecordsTopic::default();
    t.name = topic_name(topic);
    t.partitions = vec![p];
    let resp: DeleteRecordsResponse = conn.call(
        ApiKey::DeleteRecords,
        2,
        &DeleteRecordsRequest::default()
            .with_topics(vec![t])
            .with_timeout_ms(10_000),
    );
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}
