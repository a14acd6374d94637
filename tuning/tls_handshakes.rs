//! TLS handshakes per second against a broker's SSL listener: THREADS
//! client threads each open a connection, complete a full handshake (no
//! session resumption) and one ApiVersions exchange, close it, and start
//! over, for SECONDS. Prints one JSON line: handshakes, seconds, per
//! second, failures.
//!
//!   cargo run --release --example tls-handshakes -- BOOTSTRAP CA_PEM SECONDS THREADS

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// ApiVersions v0 with correlation id 1: header and empty body.
fn api_versions_request() -> Vec<u8> {
    let client_id = b"tls-handshakes";
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    body.extend_from_slice(client_id);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

fn one(addr: &str, config: &Arc<rustls::ClientConfig>, request: &[u8]) -> std::io::Result<()> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::try_from("127.0.0.1").expect("an IP name");
    let session =
        rustls::ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(session, tcp);
    tls.write_all(request)?;
    let mut size = [0u8; 4];
    tls.read_exact(&mut size)?;
    let mut body = vec![0u8; i32::from_be_bytes(size).max(0) as usize];
    tls.read_exact(&mut body)?;
    Ok(())
}

#[allow(deprecated)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: tls-handshakes BOOTSTRAP CA_PEM SECONDS THREADS");
        std::process::exit(2);
    }
    let (addr, ca) = (args[1].clone(), &args[2]);
    let seconds: u64 = args[3].parse().expect("SECONDS");
    let threads: usize = args[4].parse().expect("THREADS");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("CA_PEM") {
        roots.add(cert.expect("a certificate")).expect("a CA");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    let config = Arc::new(config);
    let request = Arc::new(api_versions_request());
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (addr, config, request) = (addr.clone(), config.clone(), request.clone());
            let (done, failed) = (done.clone(), failed.clone());
            std::thread::spawn(move || {
                while Instant::now() < until {
                    match one(&addr, &config, &request) {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a worker");
    }
    let secs = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "{{\"handshakes\":{n},\"seconds\":{secs:.2},\"per_second\":{:.0},\"failures\":{}}}",
        n as f64 / secs,
        failed.load(Ordering::Relaxed)
    );
}
