//! TLS for SSL and SASL_SSL listeners: a rustls server configuration from
//! Kafka's keys (PEM key and certificate chain in `ssl.keystore.location`,
//! PEM CA certificates in `ssl.truststore.location`, `ssl.client.auth`),
//! TLS 1.2 and 1.3 with rustls's default cipher suites (all AEAD with
//! forward secrecy, which is what Kafka's default JDK policy negotiates).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// How client certificates are asked for (`ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

impl ClientAuth {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "none" => Some(ClientAuth::None),
            "requested" => Some(ClientAuth::Requested),
            "required" => Some(ClientAuth::Required),
            _ => None,
        }
    }
}

/// rustls on ring: its default provider, aws-lc-rs, would add a large C
/// build to every build of the broker. ring's provider has no
/// post-quantum key exchange (hence rustls's deprecation note); the JDK 17
/// a Kafka broker runs on has none either.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the server configuration. An error names the file and what is
/// wrong with it.
pub fn server_config(
    keystore: &Path,
    truststore: Option<&Path>,
    client_auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let at = |what: &str, e: &dyn std::fmt::Display| {
        format!("ssl.keystore.location {}: {what}: {e}", keystore.display())
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(keystore)
        .map_err(|e| at("reading certificates", &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| at("reading certificates", &e))?;
    if certs.is_empty() {
        return Err(at("no certificate", &"a PEM CERTIFICATE block is needed"));
    }
    let key =
        PrivateKeyDer::from_pem_file(keystore).map_err(|e| at("reading the private key", &e))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    let builder = match (client_auth, truststore) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(path)) => {
            let mut roots = rustls::RootCertStore::empty();
            let trusted = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("ssl.truststore.location {}: {e}", path.display()))?;
            for cert in trusted {
                let cert =
                    cert.map_err(|e| format!("ssl.truststore.location {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ssl.truststore.location {}: {e}", path.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("ssl.truststore.location {}: {e}", path.display()))?,
            )
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| at("the key does not fit the certificate", &e))?;
    Ok(Arc::new(config))
}

/// A file's modification time and size: what tells a changed file.
fn stamp(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

type Stamps = (
    Option<(std::time::SystemTime, u64)>,
    Option<(std::time::SystemTime, u64)>,
);

/// The TLS configuration new connections get, rebuilt when the keystore or
/// truststore file changes (or on demand, on SIGHUP); connections already
/// established keep their sessions.
#[derive(Debug)]
pub struct TlsConfig {
    keystore: std::path::PathBuf,
    truststore: Option<std::path::PathBuf>,
    client_auth: ClientAuth,
    current: std::sync::RwLock<Arc<rustls::ServerConfig>>,
    stamps: std::sync::Mutex<Stamps>,
}

impl TlsConfig {
    pub fn load(
        keystore: &Path,
        truststore: Option<&Path>,
        client_auth: ClientAuth,
    ) -> Result<Self, String> {
        let stamps = (stamp(keystore), truststore.and_then(stamp));
        Ok(TlsConfig {
            current: std::sync::RwLock::new(server_config(keystore, truststore, client_auth)?),
            keystore: keystore.to_path_buf(),
            truststore: truststore.map(Path::to_path_buf),
            client_auth,
            stamps: std::sync::Mutex::new(stamps),
        })
    }

    /// The configuration for a new connection.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Rebuilds the configuration when a file changed (always, with
    /// `force`). `Ok(true)` when it was replaced; an error leaves the
    /// previous one in place.
    pub fn reload(&self, force: bool) -> Result<bool, String> {
        let now = (
            stamp(&self.keystore),
            self.truststore.as_deref().and_then(stamp),
        );
        let mut stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        if !force && *stamps == now {
            return Ok(false);
        }
        *stamps = now;
        let fresh = server_config(&self.keystore, self.truststore.as_deref(), self.client_auth)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(true)
    }
}

/// Watches the files of `configs` (each listener's distinct TLS setup) on
/// a thread of its own: every second, and at once when `hup` is raised
/// (SIGHUP).
pub fn watch(configs: Vec<Arc<TlsConfig>>, hup: Arc<std::sync::atomic::AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("tls-reload".to_string())
        .spawn(move || {
            let mut waited = std::time::Duration::ZERO;
            let tick = std::time::Duration::from_millis(100);
            loop {
                std::thread::sleep(tick);
                waited += tick;
                let forced = hup.swap(false, std::sync::atomic::Ordering::Relaxed);
                if !forced && waited < std::time::Duration::from_secs(1) {
                    continue;
                }
                waited = std::time::Duration::ZERO;
                for config in &configs {
                    match config.reload(forced) {
                        Ok(true) => tracing::info!(
                            keystore = %config.keystore.display(),
                            trigger = if forced { "SIGHUP" } else { "file change" },
                            "TLS certificates reloaded; new connections use them"
                        ),
                        Ok(false) => {}
                        Err(e) => tracing::warn!(
                            keystore = %config.keystore.display(),
                            "TLS certificates not reloaded, the previous ones stay: {e}"
                        ),
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("TLS certificate reloading is off: {e}");
    }
}
