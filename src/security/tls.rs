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
