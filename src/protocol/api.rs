//! What the wire layer needs to know of a served API. The router's API
//! table (`crate::router::apis`) declares one [`ApiSpec`] per served API;
//! request parsing, the body guard, ApiVersions, dispatch, log names and
//! the fuzz target all read that one table.

use kafka_protocol::messages::ApiKey;

use super::guard::Layout;
use super::{FrameError, RequestFrame};

/// One served API.
#[derive(Debug)]
pub struct ApiSpec {
    pub key: ApiKey,
    /// Kafka's name for it, for logs.
    pub name: &'static str,
    /// The versions ApiVersions advertises.
    pub advertised: (i16, i16),
    /// The lowest version decoded and served; requests between the
    /// advertised minimum and this close the connection (Produce v0-2).
    pub min_served: i16,
    /// The body layout of the request, for the guard.
    pub layout: &'static Layout,
    /// Whether `parse_request` walks the body with the guard before the
    /// handler decodes it. `false` where the handler's decoder is written
    /// by hand and checks every length and count itself (Produce, Fetch): a
    /// guard walk would only read the body twice.
    pub guarded: bool,
    /// The decode the API's handler runs, without the work: the fuzz target
    /// and tests drive it to reach the real decode path.
    pub decode: fn(&RequestFrame) -> Result<(), FrameError>,
}

impl ApiSpec {
    /// Whether requests at `version` are decoded and answered.
    pub fn serves(&self, version: i16) -> bool {
        (self.min_served..=self.advertised.1).contains(&version)
    }
}

/// The spec of `key` in `table`.
pub fn find(table: &'static [ApiSpec], key: ApiKey) -> Option<&'static ApiSpec> {
    table.iter().find(|s| s.key == key)
}
