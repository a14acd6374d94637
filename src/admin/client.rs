//! A minimal blocking Kafka client for the admin subcommands: one TCP
//! connection per broker address, requests encoded and responses decoded
//! with the kafka-protocol crate, one request at a time.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::protocol::client;

/// One connection to one broker.
pub struct Connection {
    stream: TcpStream,
    next_correlation: i32,
    client_id: String,
}

impl Connection {
    pub fn open(addr: &str, timeout: Duration, client_id: &str) -> Result<Self, String> {
        let target = addr
            .to_socket_addrs()
            .map_err(|e| format!("{addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("{addr}: no address"))?;
        let stream =
            TcpStream::connect_timeout(&target, timeout).map_err(|e| format!("{addr}: {e}"))?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|_| stream.set_write_timeout(Some(timeout)))
            .and_then(|_| stream.set_nodelay(true))
            .map_err(|e| format!("{addr}: {e}"))?;
        Ok(Connection {
            stream,
            next_correlation: 1,
            client_id: client_id.to_string(),
        })
    }

    /// Sends `req` as `key` v`version` and decodes the response.
    pub fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Result<Resp, String> {
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let frame = client::request_frame(key, version, correlation, &self.client_id, req)?;
        self.stream
            .write_all(&frame)
            .map_err(|e| format!("sending {key:?}: {e}"))?;
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .map_err(|e| format!("reading the {key:?} response: {e}"))?;
        let mut body = vec![0u8; client::response_size(size, key)?];
        self.stream
            .read_exact(&mut body)
            .map_err(|e| format!("reading the {key:?} response: {e}"))?;
        client::decode_response(Bytes::from(body), key, version, correlation)
    }
}

/// Connections by broker address, opened on first use.
pub struct Pool {
    timeout: Duration,
    client_id: String,
    connections: HashMap<String, Connection>,
}

impl Pool {
    pub fn new(timeout: Duration, client_id: &str) -> Self {
        Pool {
            timeout,
            client_id: client_id.to_string(),
            connections: HashMap::new(),
        }
    }

    pub fn get(&mut self, addr: &str) -> Result<&mut Connection, String> {
        if !self.connections.contains_key(addr) {
            let c = Connection::open(addr, self.timeout, &self.client_id)?;
            self.connections.insert(addr.to_string(), c);
        }
        Ok(self.connections.get_mut(addr).expect("inserted"))
    }
}
