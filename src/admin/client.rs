//! A minimal blocking Kafka client for the admin subcommands: one TCP
//! connection per broker address, requests encoded and responses decoded
//! with the kafka-protocol crate, one request at a time.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Largest response accepted (a guard against a misbehaving peer).
const RESPONSE_BYTES_MAX: usize = 256 << 20;

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
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, key.request_header_version(version))
            .map_err(|e| format!("encoding the {key:?} header: {e}"))?;
        req.encode(&mut buf, version)
            .map_err(|e| format!("encoding {key:?} v{version}: {e}"))?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream
            .write_all(&buf)
            .map_err(|e| format!("sending {key:?}: {e}"))?;
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .map_err(|e| format!("reading the {key:?} response: {e}"))?;
        let size = i32::from_be_bytes(size);
        if size < 0 || size as usize > RESPONSE_BYTES_MAX {
            return Err(format!("{key:?} response of {size} bytes"));
        }
        let mut body = vec![0u8; size as usize];
        self.stream
            .read_exact(&mut body)
            .map_err(|e| format!("reading the {key:?} response: {e}"))?;
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, key.response_header_version(version))
            .map_err(|e| format!("{key:?} response header: {e}"))?;
        if header.correlation_id != correlation {
            return Err(format!(
                "{key:?}: response to request {} where {correlation} was expected",
                header.correlation_id
            ));
        }
        Resp::decode(&mut body, version).map_err(|e| format!("{key:?} v{version} response: {e}"))
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
