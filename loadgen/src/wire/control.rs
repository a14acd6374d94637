//! The control plane: one request at a time over a connection, encoded and
//! decoded with kafka-protocol. Used for ApiVersions, Metadata,
//! CreateTopics and ListOffsets, never on the data path.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use kafka_protocol::messages::{ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use shardlog_wire::frame::{finish_frame, SIZE_PREFIX_BYTES};

use super::frame::FrameReader;
use crate::error::Error;

/// A connection to one broker, with that broker's ApiVersions table.
pub struct Connection {
    pub addr: String,
    pub stream: TcpStream,
    pub reader: FrameReader,
    correlation_id: i32,
    client_id: String,
    versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    /// Connects (TCP_NODELAY on) and reads the broker's ApiVersions, all
    /// within `timeout`.
    pub async fn connect(addr: &str, client_id: &str, timeout: Duration) -> Result<Self, Error> {
        within(timeout, addr, Self::connect_inner(addr, client_id, timeout)).await
    }

    async fn connect_inner(addr: &str, client_id: &str, timeout: Duration) -> Result<Self, Error> {
        let stream = TcpStream::connect_timeout(addr, timeout)
            .await
            .map_err(|e| Error::Io(format!("connect to {addr}"), e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Error::Io(format!("TCP_NODELAY on {addr}"), e.to_string()))?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| Error::Io(format!("read timeout on {addr}"), e.to_string()))?;
        let mut conn = Connection {
            addr: addr.to_string(),
            stream,
            reader: FrameReader::new(),
            correlation_id: 0,
            client_id: client_id.to_string(),
            versions: HashMap::new(),
        };
        // v0 is answered by every broker (later versions may get a v0
        // answer anyway, KIP-511).
        let resp = conn.call(&ApiVersionsRequest::default(), 0).await?;
        if resp.error_code != 0 {
            return Err(Error::Broker(format!(
                "ApiVersions from {addr}: error {}",
                resp.error_code
            )));
        }
        conn.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(conn)
    }

    /// The highest version of `api_key` both sides speak, within
    /// `ours` (inclusive).
    pub fn version(&self, api_key: i16, name: &str, ours: (i16, i16)) -> Result<i16, Error> {
        let (min, max) = self
            .versions
            .get(&api_key)
            .copied()
            .ok_or_else(|| Error::Broker(format!("{} does not support {name}", self.addr)))?;
        let v = max.min(ours.1);
        if v < min.max(ours.0) {
            return Err(Error::Broker(format!(
                "{} supports {name} v{min}-{max}; the load generator needs v{}-{}",
                self.addr, ours.0, ours.1
            )));
        }
        Ok(v)
    }

    pub fn next_correlation_id(&mut self) -> i32 {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        self.correlation_id
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Sends one request and waits (at most the read timeout) for its
    /// response.
    pub async fn call<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response, Error> {
        let timeout = self
            .stream
            .read_timeout()
            .unwrap_or(Duration::from_secs(30));
        let addr = self.addr.clone();
        within(timeout, &addr, self.call_inner(req, version)).await
    }

    async fn call_inner<R: Request>(
        &mut self,
        req: &R,
        version: i16,
    ) -> Result<R::Response, Error> {
        let correlation_id = self.next_correlation_id();
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = correlation_id;
        header.client_id = Some(StrBytes::from_string(self.client_id.clone()));
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0; SIZE_PREFIX_BYTES]);
        let encoded = header
            .encode(&mut buf, R::header_version(version))
            .and_then(|_| req.encode(&mut buf, version));
        encoded.map_err(|e| Error::Protocol(format!("encode API {} v{version}: {e}", R::KEY)))?;
        finish_frame(&mut buf, 0);
        let addr = self.addr.clone();
        self.stream
            .write_all(&buf)
            .await
            .map_err(|e| Error::Io(format!("send to {addr}"), e.to_string()))?;
        let frame = self
            .reader
            .next(&mut self.stream)
            .await
            .map_err(|e| Error::Io(format!("read from {addr}"), e.to_string()))?;
        let mut body = Bytes::copy_from_slice(frame);
        let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(|e| Error::Protocol(format!("response header from {addr}: {e}")))?;
        if header.correlation_id != correlation_id {
            return Err(Error::Protocol(format!(
                "{addr} answered correlation id {}, expected {correlation_id}",
                header.correlation_id
            )));
        }
        R::Response::decode(&mut body, version).map_err(|e| {
            Error::Protocol(format!("decode API {} v{version} from {addr}: {e}", R::KEY))
        })
    }
}

/// `fut`, or a timeout error once `timeout` has passed.
async fn within<T>(
    timeout: Duration,
    addr: &str,
    fut: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    futures_lite::future::or(fut, async {
        glommio::timer::sleep(timeout).await;
        Err(Error::Io(
            addr.to_string(),
            format!("no answer within {timeout:?}"),
        ))
    })
    .await
}
