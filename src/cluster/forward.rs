//! Requests a broker sends another broker of the cluster (DescribeQuorum to
//! the quorum's leader, as Kafka's brokers forward it to the active
//! controller): one connection per call, bounded by a timeout.

use std::time::Duration;

use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::protocol::client;

/// The client id of forwarded requests: a node that receives one answers
/// it itself, never forwards it again.
pub const FORWARD_CLIENT_ID: &str = "shardlog-forward";

/// Sends `req` to `addr` (`host:port`) and decodes the answer, within
/// `timeout` in all.
pub async fn call<Req: Encodable, Resp: Decodable>(
    addr: &str,
    key: ApiKey,
    version: i16,
    req: &Req,
    timeout: Duration,
) -> Result<Resp, String> {
    let frame = client::request_frame(key, version, 1, FORWARD_CLIENT_ID, req)?;
    let exchange = async {
        let mut stream = TcpStream::connect_timeout(addr, timeout)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        stream
            .write_all(&frame)
            .await
            .map_err(|e| format!("{addr}: sending {key:?}: {e}"))?;
        let mut size = [0u8; 4];
        stream
            .read_exact(&mut size)
            .await
            .map_err(|e| format!("{addr}: reading the {key:?} response: {e}"))?;
        let mut body = vec![0u8; client::response_size(size, key)?];
        stream
            .read_exact(&mut body)
            .await
            .map_err(|e| format!("{addr}: reading the {key:?} response: {e}"))?;
        client::decode_response(Bytes::from(body), key, version, 1)
    };
    let expired = async {
        glommio::timer::sleep(timeout).await;
        Err(format!("{addr}: no {key:?} answer within {timeout:?}"))
    };
    futures_lite::future::or(exchange, expired).await
}
