//! SASL on the client listener (SASL_PLAINTEXT), with Kafka's keys: the
//! listener named PLAINTEXT is mapped to SASL_PLAINTEXT through
//! `listener.security.protocol.map`, SCRAM credentials are stored before
//! the first start with `shardlog format --add-scram` (Kafka's syntax) and
//! PLAIN users come from `shardlog.sasl.plain.users.file`.
//!
//! Real clients authenticate with each mechanism and round-trip records:
//! confluent-kafka (librdkafka) with SCRAM-SHA-256, SCRAM-SHA-512 and
//! PLAIN, kafka-python with SCRAM-SHA-512, aiokafka with SCRAM-SHA-256,
//! the Java client's whole session and Kafka's kafka-topics (through its
//! --command-config) with SCRAM-SHA-512.
//! Raw connections check the refusals: a request before authentication
//! closes the connection, a mechanism not enabled gets
//! UNSUPPORTED_SASL_MECHANISM, wrong passwords and unknown users get
//! SASL_AUTHENTICATION_FAILED after `connection.failed.authentication.delay.ms`
//! and a closed connection, an exchange cut off halfway leaves the broker
//! serving others, and each failure is logged with the peer address and
//! never the password. On a PLAINTEXT listener a SaslHandshake gets
//! ILLEGAL_SASL_STATE, as Kafka answers it. SCRAM users are managed at
//! runtime with Kafka's kafka-configs, and sessions expire and are renewed
//! by re-authentication (KIP-368), by hand and by librdkafka itself.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use common::broker::{binary, Broker, BrokerOptions};
use common::clients::{mixed_records, ClientRun};
use common::raw::{healthy_exchange, str_bytes, Conn};
use hmac::{Hmac, Mac};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
    ApiVersionsRequest, ApiVersionsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse, MetadataRequest, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use sha2::{Digest, Sha256};

const PASSWORD: &str = "alice-secret";
/// A password no log line may show.
const WRONG_PASSWORD: &str = "not-the-password-42";
const FAILURE_DELAY_MS: u64 = 400;

/// Stores alice's SCRAM credentials (both mechanisms) in `data_dir` with
/// `shardlog format`, and writes a PLAIN users file beside it.
fn format(data_dir: &Path) -> std::path::PathBuf {
    let out = Command::new(binary())
        .args(["format", "--data-dir"])
        .arg(data_dir)
        .args([
            "--add-scram",
            &format!("SCRAM-SHA-256=[name=alice,password={PASSWORD}]"),
            "--add-scram",
            &format!("SCRAM-SHA-512=[name=alice,password=\"{PASSWORD}\",iterations=8192]"),
        ])
        .output()
        .expect("run shardlog format");
    assert!(
        out.status.success(),
        "shardlog format: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let users = data_dir.parent().unwrap().join("plain-users");
    std::fs::write(&users, format!("alice={PASSWORD}\nbob=bob-secret\n")).unwrap();
    users
}

/// A broker whose client listener speaks SASL_PLAINTEXT with every
/// mechanism shardlog serves.
fn sasl_broker(options: BrokerOptions) -> (Broker, tempfile::TempDir) {
    let dir = common::temp_dir();
    let data = dir.path().join("data");
    let users = format(&data);
    let broker = Broker::start_with_data_dir(
        options
            .with_override("listener.security.protocol.map", "PLAINTEXT:SASL_PLAINTEXT")
            .with_override(
                "sasl.enabled.mechanisms",
                "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
            )
            .with_override("shardlog.sasl.plain.users.file", users.display())
            .with_override(
                "connection.failed.authentication.delay.ms",
                FAILURE_DELAY_MS,
            )
            .with_override("auto.create.topics.enable", "false"),
        &data,
    );
    (broker, dir)
}

fn sasl_client(client: &str, mechanism: &str) -> ClientRun {
    let mut run = ClientRun::python(client);
    run.args.extend([
        "--sasl".to_string(),
        format!("{mechanism}:alice:{PASSWORD}"),
    ]);
    run
}

// Proves real clients authenticate with every mechanism and then produce,
// create topics and fetch as usual, on one listener and on per-shard
// listeners.
#[test]
fn clients_authenticate_with_each_mechanism() {
    let (mut broker, _dir) = sasl_broker(BrokerOptions::single());
    let records = mixed_records(3, 60);
    for (client, mechanism) in [
        ("confluent", "SCRAM-SHA-256"),
        ("confluent", "SCRAM-SHA-512"),
        ("confluent", "PLAIN"),
        ("kafka-python", "SCRAM-SHA-512"),
        ("aiokafka", "SCRAM-SHA-256"),
    ] {
        let topic = format!("sasl-{client}-{}", mechanism.to_lowercase());
        sasl_client(client, mechanism).round_trip(&broker, &topic, &records);
    }
    let log = broker.log();
    assert!(
        log.contains("SASL authentication succeeded") && log.contains("alice"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD), "a password in the log");
    broker.terminate();

    let (mut broker, _dir) = sasl_broker(BrokerOptions::per_shard(2));
    sasl_client("confluent", "SCRAM-SHA-512").round_trip(&broker, "sasl-per-shard", &records);
    broker.terminate();
}

fn handshake(conn: &mut Conn, mechanism: &str) -> SaslHandshakeResponse {
    conn.call(
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(str_bytes(mechanism)),
    )
}

fn authenticate(conn: &mut Conn, version: i16, token: &[u8]) -> SaslAuthenticateResponse {
    conn.call(
        ApiKey::SaslAuthenticate,
        version,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token)),
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// A SCRAM-SHA-256 client-final for `password`, computed here the way
/// RFC 5802 says (independently of the broker's code).
fn scram_client_final(password: &str, client_first_bare: &str, server_first: &str) -> String {
    let field = |k: &str| {
        server_first
            .split(',')
            .find_map(|p| p.strip_prefix(k))
            .unwrap()
            .to_string()
    };
    let nonce = field("r=");
    let salt = B64.decode(field("s=")).unwrap();
    let iterations: u32 = field("i=").parse().unwrap();
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored = Sha256::digest(&client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hmac(&stored, auth.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    format!("{without_proof},p={}", B64.encode(proof))
}

// Proves the exchange on the wire: ApiVersions is answered before
// authentication and lists the SASL APIs; a SCRAM-SHA-256 exchange computed
// independently succeeds (server-final verifies) and then other requests
// are served; SaslHandshake after authentication gets ILLEGAL_SASL_STATE.
#[test]
fn scram_exchange_on_the_wire() {
    let (mut broker, _dir) = sasl_broker(BrokerOptions::single());
    let mut c = Conn::open(&broker.bootstrap());
    let versions: ApiVersionsResponse =
        c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(versions.error_code, 0);
    for key in [ApiKey::SaslHandshake, ApiKey::SaslAuthenticate] {
        assert!(
            versions.api_keys.iter().any(|k| k.api_key == key as i16),
            "{key:?} advertised"
        );
    }
    let hs = handshake(&mut c, "SCRAM-SHA-256");
    assert_eq!(hs.error_code, 0);
    let bare = "n=alice,r=fyko+d2lbbFgONRv9qkxdawL";
    let first = authenticate(&mut c, 2, format!("n,,{bare}").as_bytes());
    assert_eq!(first.error_code, 0, "{:?}", first.error_message);
    let server_first = String::from_utf8(first.auth_bytes.to_vec()).unwrap();
    assert!(
        server_first.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"),
        "{server_first}"
    );
    let last = authenticate(
        &mut c,
        2,
        scram_client_final(PASSWORD, bare, &server_first).as_bytes(),
    );
    assert_eq!(last.error_code, 0, "{:?}", last.error_message);
    assert!(last.auth_bytes.starts_with(b"v="));
    healthy_exchange(&mut c).expect("served once authenticated");
    let again = handshake(&mut c, "PLAIN");
    assert_eq!(
        again.error_code, 34,
        "ILLEGAL_SASL_STATE after authentication"
    );
    broker.terminate();
}

// Proves each refusal: a request before authentication, a mechanism not
// enabled, a wrong password (PLAIN and SCRAM), an unknown user, garbage
// instead of a SCRAM message, and an exchange cut off halfway; the failures
// are answered no sooner than the configured delay, the connection then
// closes, the log names the peer and never the password, and a client
// beside them is served throughout.
#[test]
fn refusals_and_failures() {
    let (mut broker, _dir) = sasl_broker(BrokerOptions::single());
    let addr = broker.bootstrap();
    let mut good = Conn::open(&addr);
    handshake(&mut good, "PLAIN");
    let ok = authenticate(&mut good, 1, format!("\0alice\0{PASSWORD}").as_bytes());
    assert_eq!(ok.error_code, 0);

    // Anything but ApiVersions and SASL before authentication.
    let mut c = Conn::open(&addr);
    c.send_raw(&common::raw::encode_request(
        ApiKey::Metadata,
        9,
        1,
        &MetadataRequest::default(),
    ))
    .unwrap();
    c.expect_closed("Metadata before authentication");

    // GSSAPI is not enabled.
    let mut c = Conn::open(&addr);
    let hs = handshake(&mut c, "GSSAPI");
    assert_eq!(hs.error_code, 33, "UNSUPPORTED_SASL_MECHANISM");
    let offered: Vec<String> = hs.mechanisms.iter().map(|m| m.to_string()).collect();
    assert_eq!(offered, ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]);
    c.expect_closed("after an unsupported mechanism");

    // SaslAuthenticate before SaslHandshake.
    let mut c = Conn::open(&addr);
    let r = authenticate(&mut c, 1, b"\0alice\0x");
    assert_eq!(r.error_code, 34, "ILLEGAL_SASL_STATE");
    c.expect_closed("after SaslAuthenticate before the handshake");

    let failures: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "PLAIN, wrong password",
            "PLAIN",
            format!("\0alice\0{WRONG_PASSWORD}").into_bytes(),
        ),
        (
            "PLAIN, unknown user",
            "PLAIN",
            format!("\0mallory\0{WRONG_PASSWORD}").into_bytes(),
        ),
        ("PLAIN, garbage", "PLAIN", vec![0xff, 0, 1, 2]),
        (
            "SCRAM, unknown user",
            "SCRAM-SHA-256",
            b"n,,n=mallory,r=abc".to_vec(),
        ),
        ("SCRAM, garbage", "SCRAM-SHA-256", b"hello".to_vec()),
    ];
    for (what, mechanism, token) in failures {
        let mut c = Conn::open(&addr);
        assert_eq!(handshake(&mut c, mechanism).error_code, 0, "{what}");
        let start = Instant::now();
        let r = authenticate(&mut c, 2, &token);
        assert_eq!(r.error_code, 58, "{what}: SASL_AUTHENTICATION_FAILED");
        assert_eq!(
            r.error_message.as_deref(),
            Some(
                format!(
                    "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
                )
                .as_str()
            ),
            "{what}"
        );
        assert!(
            start.elapsed() >= Duration::from_millis(FAILURE_DELAY_MS * 3 / 4),
            "{what}: answered after {:?}, before connection.failed.authentication.delay.ms",
            start.elapsed()
        );
        c.expect_closed(what);
    }

    // SCRAM with a wrong password: the proof fails at client-final.
    let mut c = Conn::open(&addr);
    handshake(&mut c, "SCRAM-SHA-256");
    let bare = "n=alice,r=0123456789";
    let first = authenticate(&mut c, 2, format!("n,,{bare}").as_bytes());
    let server_first = String::from_utf8(first.auth_bytes.to_vec()).unwrap();
    let r = authenticate(
        &mut c,
        2,
        scram_client_final(WRONG_PASSWORD, bare, &server_first).as_bytes(),
    );
    assert_eq!(r.error_code, 58);
    c.expect_closed("SCRAM with a wrong password");

    // Cut off after client-first.
    let mut c = Conn::open(&addr);
    handshake(&mut c, "SCRAM-SHA-512");
    authenticate(&mut c, 2, b"n,,n=alice,r=cutoff");
    drop(c);

    healthy_exchange(&mut good).expect("the authenticated client is still served");
    let log = broker.log();
    assert!(
        log.contains("SASL authentication failed") && log.contains("127.0.0.1"),
        "{log}"
    );
    assert!(
        log.contains("a request before SASL authentication"),
        "{log}"
    );
    assert!(!log.contains(WRONG_PASSWORD), "a password in the log");
    broker.terminate();
}

// Proves a PLAINTEXT listener answers SaslHandshake and SaslAuthenticate
// with ILLEGAL_SASL_STATE (as Kafka does) and keeps serving.
#[test]
fn plaintext_listener_has_no_sasl_exchange() {
    let mut broker = Broker::start(BrokerOptions::single());
    let mut c = Conn::open(&broker.bootstrap());
    assert_eq!(handshake(&mut c, "PLAIN").error_code, 34);
    assert_eq!(authenticate(&mut c, 2, b"\0a\0b").error_code, 34);
    healthy_exchange(&mut c).expect("still served");
    broker.terminate();
}

// Proves the Java client (kafka-clients 4.x) runs its whole session
// (admin, idempotent producer with every codec, group consumer) over
// SASL_PLAINTEXT with SCRAM-SHA-512, and Kafka's own kafka-topics
// authenticates with its --command-config.
#[test]
fn java_client_and_kafka_tools_over_scram() {
    let (mut broker, dir) = sasl_broker(BrokerOptions::single_shared(2));
    let props = dir.path().join("client.properties");
    std::fs::write(
        &props,
        format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \
             required username=\"alice\" password=\"{PASSWORD}\";\n"
        ),
    )
    .unwrap();
    common::kafka::run_java_client(&broker, "java-sasl", Some(&props));
    let bootstrap = broker.bootstrap();
    let props = props.to_str().unwrap();
    let base = ["--bootstrap-server", &bootstrap, "--command-config", props];
    common::kafka::tool_ok(
        "kafka-topics",
        &[
            &base[..],
            &["--create", "--topic", "cli-sasl", "--partitions", "2"],
        ]
        .concat(),
    );
    let list = common::kafka::tool_ok("kafka-topics", &[&base[..], &["--list"]].concat());
    assert!(list.lines().any(|l| l == "cli-sasl"), "{list}");
    broker.terminate();
}

fn describe_users(conn: &mut Conn, users: Option<&[&str]>) -> DescribeUserScramCredentialsResponse {
    let users = users.map(|u| {
        u.iter()
            .map(|n| UserName::default().with_name(str_bytes(n)))
            .collect()
    });
    conn.call(
        ApiKey::DescribeUserScramCredentials,
        0,
        &DescribeUserScramCredentialsRequest::default().with_users(users),
    )
}

fn alter_users(
    conn: &mut Conn,
    deletions: Vec<ScramCredentialDeletion>,
    upsertions: Vec<ScramCredentialUpsertion>,
) -> Vec<(String, i16)> {
    let r: AlterUserScramCredentialsResponse = conn.call(
        ApiKey::AlterUserScramCredentials,
        0,
        &AlterUserScramCredentialsRequest::default()
            .with_deletions(deletions)
            .with_upsertions(upsertions),
    );
    let mut out: Vec<(String, i16)> = r
        .results
        .iter()
        .map(|x| (x.user.to_string(), x.error_code))
        .collect();
    out.sort();
    out
}

fn upsertion(name: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
    ScramCredentialUpsertion::default()
        .with_name(str_bytes(name))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(Bytes::from_static(b"0123456789abcdef"))
        .with_salted_password(Bytes::from(vec![1u8; 32]))
}

/// Authenticates `conn` with SASL/SCRAM-SHA-256 as `user`; the error code
/// of the last SaslAuthenticate.
fn scram_login(conn: &mut Conn, user: &str, password: &str) -> i16 {
    assert_eq!(handshake(conn, "SCRAM-SHA-256").error_code, 0);
    let bare = format!("n={user},r=0123456789abcdef");
    let first = authenticate(conn, 2, format!("n,,{bare}").as_bytes());
    if first.error_code != 0 {
        return first.error_code;
    }
    let server_first = String::from_utf8(first.auth_bytes.to_vec()).unwrap();
    authenticate(
        conn,
        2,
        scram_client_final(password, &bare, &server_first).as_bytes(),
    )
    .error_code
}

// Proves SCRAM users are managed at runtime with Kafka's APIs: Kafka's
// kafka-configs adds a user (over a SCRAM-authenticated connection) and
// describes it (DescribeClientQuotas answers that no quotas exist), who
// then authenticates (and still does after a restart, the change being
// stored), DescribeUserScramCredentials lists users with their mechanisms
// and iterations, deleting the credential locks the user out, and each of
// Kafka's per-user refusals (a user twice, too few or too many iterations,
// an unknown mechanism, an empty name, deleting what does not exist,
// describing a user twice or an unknown one) comes back with its code.
#[test]
fn scram_users_are_managed_at_runtime() {
    let (mut broker, dir) = sasl_broker(BrokerOptions::single());
    let props = dir.path().join("client.properties");
    std::fs::write(
        &props,
        format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \
             required username=\"alice\" password=\"{PASSWORD}\";\n"
        ),
    )
    .unwrap();
    let bootstrap = broker.bootstrap();
    let props_arg = props.to_str().unwrap();
    common::kafka::tool_ok(
        "kafka-configs",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--command-config",
            props_arg,
            "--alter",
            "--add-config",
            "SCRAM-SHA-256=[iterations=8192,password=bob-secret]",
            "--entity-type",
            "users",
            "--entity-name",
            "bob",
        ],
    );
    let described = common::kafka::tool_ok(
        "kafka-configs",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--command-config",
            props_arg,
            "--describe",
            "--entity-type",
            "users",
            "--entity-name",
            "bob",
        ],
    );
    assert!(
        described.contains("SCRAM-SHA-256=iterations=8192"),
        "{described}"
    );
    let mut c = Conn::open(&bootstrap);
    assert_eq!(scram_login(&mut c, "bob", "bob-secret"), 0, "bob, added");
    let all = describe_users(&mut c, None);
    let listed: Vec<(String, Vec<(i8, i32)>)> = all
        .results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.credential_infos
                    .iter()
                    .map(|i| (i.mechanism, i.iterations))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("alice".to_string(), vec![(1, 4096), (2, 8192)]),
            ("bob".to_string(), vec![(1, 8192)])
        ]
    );
    let one = describe_users(&mut c, Some(&["bob", "nobody", "alice", "alice"]));
    let codes: Vec<(String, i16)> = one
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect();
    assert_eq!(
        codes,
        [
            ("bob".to_string(), 0),
            ("nobody".to_string(), 91),
            ("alice".to_string(), 92)
        ]
    );

    let refusals = alter_users(
        &mut c,
        vec![
            ScramCredentialDeletion::default()
                .with_name(str_bytes("carol"))
                .with_mechanism(1),
            ScramCredentialDeletion::default()
                .with_name(str_bytes("dave"))
                .with_mechanism(1),
        ],
        vec![
            upsertion("dave", 1, 4096),
            upsertion("erin", 1, 100),
            upsertion("frank", 2, 20_000),
            upsertion("grace", 7, 4096),
            upsertion("", 1, 4096),
        ],
    );
    assert_eq!(
        refusals,
        [
            ("".to_string(), 93),
            ("carol".to_string(), 91),
            ("dave".to_string(), 91),
            ("erin".to_string(), 93),
            ("frank".to_string(), 93),
            ("grace".to_string(), 33),
        ]
    );
    let twice = alter_users(
        &mut c,
        vec![],
        vec![upsertion("heidi", 1, 4096), upsertion("heidi", 2, 4096)],
    );
    assert_eq!(twice, [("heidi".to_string(), 92)]);
    let none_added = describe_users(&mut c, Some(&["heidi", "erin"]));
    assert!(none_added.results.iter().all(|r| r.error_code == 91));

    broker.restart();
    let mut c = Conn::open(&bootstrap);
    assert_eq!(
        scram_login(&mut c, "bob", "bob-secret"),
        0,
        "bob, after a restart"
    );
    let deleted = alter_users(
        &mut c,
        vec![ScramCredentialDeletion::default()
            .with_name(str_bytes("bob"))
            .with_mechanism(1)],
        vec![],
    );
    assert_eq!(deleted, [("bob".to_string(), 0)]);
    let mut c = Conn::open(&bootstrap);
    assert_eq!(scram_login(&mut c, "bob", "bob-secret"), 58, "bob, deleted");
    broker.terminate();
}

// Proves KIP-368 re-authentication with connections.max.reauth.ms: the
// exchange's last answer tells the session lifetime; re-authenticating on
// the same connection within it extends the session while other requests
// are served; a request after the session expired without
// re-authentication closes the connection with a log line; and
// re-authenticating as another user fails and closes the connection.
#[test]
fn sessions_expire_and_clients_reauthenticate() {
    let (mut broker, _dir) =
        sasl_broker(BrokerOptions::single().with_override("connections.max.reauth.ms", 1500));
    let addr = broker.bootstrap();
    let login = |c: &mut Conn, user: &str, password: &str| {
        assert_eq!(handshake(c, "PLAIN").error_code, 0);
        authenticate(c, 2, format!("\0{user}\0{password}").as_bytes())
    };
    let mut c = Conn::open(&addr);
    let first = login(&mut c, "alice", PASSWORD);
    assert_eq!(first.error_code, 0);
    assert_eq!(first.session_lifetime_ms, 1500);
    std::thread::sleep(Duration::from_millis(800));
    healthy_exchange(&mut c).expect("served within the session");
    let again = login(&mut c, "alice", PASSWORD);
    assert_eq!((again.error_code, again.session_lifetime_ms), (0, 1500));
    // 1.6 s after the first authentication, 0.8 s after the second.
    std::thread::sleep(Duration::from_millis(800));
    healthy_exchange(&mut c).expect("served: the re-authentication extended the session");
    std::thread::sleep(Duration::from_millis(1000));
    c.send_raw(&common::raw::encode_request(
        ApiKey::Metadata,
        9,
        99,
        &MetadataRequest::default(),
    ))
    .unwrap();
    c.expect_closed("a request after the session expired");

    let mut c = Conn::open(&addr);
    assert_eq!(login(&mut c, "alice", PASSWORD).error_code, 0);
    let other = login(&mut c, "bob", "bob-secret");
    assert_eq!(other.error_code, 58, "re-authentication as another user");
    c.expect_closed("after re-authenticating as another user");
    let log = broker.log();
    assert!(log.contains("the SASL session expired"), "{log}");
    assert!(
        log.contains("principals and mechanisms cannot change"),
        "{log}"
    );
    broker.terminate();
}

// Proves a real client (librdkafka, through the rdkafka crate, SASL PLAIN)
// re-authenticates on its own when the broker gives sessions a lifetime:
// records sent over 4 s with connections.max.reauth.ms=1000 are all
// delivered, the broker logs repeated authentications, and no connection
// is closed for an expired session.
#[test]
fn librdkafka_reauthenticates_by_itself() {
    use rdkafka::producer::{BaseRecord, Producer};
    let (mut broker, _dir) =
        sasl_broker(BrokerOptions::single().with_override("connections.max.reauth.ms", 1000));
    let bootstrap = broker.bootstrap();
    {
        let mut c = Conn::open(&bootstrap);
        handshake(&mut c, "PLAIN");
        authenticate(&mut c, 2, format!("\0alice\0{PASSWORD}").as_bytes());
        common::raw::create_topic(&mut c, "reauth", 1);
    }
    let producer = common::rdk::producer(
        &bootstrap,
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "alice"),
            ("sasl.password", PASSWORD),
        ],
    );
    for i in 0..40usize {
        producer
            .send(
                BaseRecord::with_opaque_to("reauth", Box::new(i))
                    .payload("x")
                    .key("k"),
            )
            .unwrap_or_else(|(e, _)| panic!("send {i}: {e}"));
        producer.poll(Duration::from_millis(100));
    }
    producer.flush(Duration::from_secs(20)).expect("flush");
    let reports = producer.context().reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 40);
    assert!(reports.iter().all(|(_, r)| r.is_ok()), "{reports:?}");
    let log = broker.log();
    let authentications = log.matches("SASL authentication succeeded").count();
    assert!(
        authentications >= 4,
        "{authentications} authentications in 4 s of 1 s sessions:\n{log}"
    );
    assert!(!log.contains("the SASL session expired"), "{log}");
    broker.terminate();
}

/// A raw SASL token frame (after a v0 SaslHandshake): size, then token.
fn raw_token(conn: &mut Conn, token: &[u8]) -> std::io::Result<Bytes> {
    let mut frame = (token.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(token);
    conn.send_raw(&frame)?;
    conn.read_frame()
}

// Proves SaslHandshake v0 as Kafka serves it: after it the exchange goes
// on in raw size-prefixed tokens (PLAIN: one token, an empty answer; SCRAM:
// client-first and client-final, with server-first and server-final back,
// the latter verifying), then Kafka requests are served; a wrong password
// gets no answer and a closed connection, logged. kcat from Debian
// (librdkafka 2.0, which enables SASL only when v0 is advertised)
// authenticates with PLAIN and round-trips records.
#[test]
fn handshake_v0_raw_tokens() {
    let (mut broker, _dir) = sasl_broker(BrokerOptions::single());
    let addr = broker.bootstrap();
    let v0 = |c: &mut Conn, mechanism: &str| -> SaslHandshakeResponse {
        c.call(
            ApiKey::SaslHandshake,
            0,
            &SaslHandshakeRequest::default().with_mechanism(str_bytes(mechanism)),
        )
    };
    let mut c = Conn::open(&addr);
    assert_eq!(v0(&mut c, "PLAIN").error_code, 0);
    let answer = raw_token(&mut c, format!("\0alice\0{PASSWORD}").as_bytes()).unwrap();
    assert!(answer.is_empty(), "PLAIN's empty server token");
    healthy_exchange(&mut c).expect("served after a raw PLAIN exchange");

    let mut c = Conn::open(&addr);
    assert_eq!(v0(&mut c, "SCRAM-SHA-256").error_code, 0);
    let bare = "n=alice,r=rawnonce123";
    let first = raw_token(&mut c, format!("n,,{bare}").as_bytes()).unwrap();
    let server_first = String::from_utf8(first.to_vec()).unwrap();
    assert!(server_first.starts_with("r=rawnonce123"), "{server_first}");
    let last = raw_token(
        &mut c,
        scram_client_final(PASSWORD, bare, &server_first).as_bytes(),
    )
    .unwrap();
    assert!(last.starts_with(b"v="), "server-final");
    healthy_exchange(&mut c).expect("served after a raw SCRAM exchange");

    let mut c = Conn::open(&addr);
    assert_eq!(v0(&mut c, "PLAIN").error_code, 0);
    let token = format!("\0alice\0{WRONG_PASSWORD}");
    let mut frame = (token.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(token.as_bytes());
    c.send_raw(&frame).unwrap();
    c.expect_closed("a wrong raw PLAIN token");

    // kcat from Debian, built on librdkafka 2.0.
    common::clients::ensure_installed();
    let kcat = |args: &[&str], input: Option<Vec<u8>>| {
        let mut cmd = Command::new("kcat");
        // cargo's library path would put the rdkafka crate's librdkafka
        // before the system's.
        cmd.env_remove("LD_LIBRARY_PATH");
        cmd.args(["-b", &addr, "-X", "broker.address.family=v4"]);
        cmd.args([
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanisms=PLAIN",
        ]);
        cmd.args([
            "-X",
            "sasl.username=alice",
            "-X",
            &format!("sasl.password={PASSWORD}"),
        ]);
        cmd.args(args);
        let run = common::clients::run_with_input(cmd, input, Duration::from_secs(60));
        run.assert_success();
        run.stdout_text()
    };
    let mut admin = Conn::open(&addr);
    handshake(&mut admin, "PLAIN");
    authenticate(&mut admin, 2, format!("\0alice\0{PASSWORD}").as_bytes());
    common::raw::create_topic(&mut admin, "kcat-v0", 1);
    kcat(
        &["-P", "-t", "kcat-v0"],
        Some(b"one\ntwo\nthree\n".to_vec()),
    );
    let got = kcat(
        &["-C", "-t", "kcat-v0", "-o", "beginning", "-e", "-c", "3"],
        None,
    );
    assert_eq!(got.lines().collect::<Vec<_>>(), ["one", "two", "three"]);
    let log = broker.log();
    assert!(log.contains("SASL authentication failed"), "{log}");
    assert!(!log.contains(WRONG_PASSWORD), "a password in the log");
    broker.terminate();
}

/// Polls `f` until it returns `want` (bounded).
fn eventually<T: PartialEq + std::fmt::Debug>(what: &str, want: T, mut f: impl FnMut() -> T) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = f();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The SCRAM users node `addr` lists (DescribeUserScramCredentials).
fn listed_users(addr: &str) -> Vec<String> {
    match Conn::try_open(addr) {
        Ok(mut c) => {
            let mut users: Vec<String> = describe_users(&mut c, None)
                .results
                .iter()
                .filter(|r| r.error_code == 0)
                .map(|r| r.user.to_string())
                .collect();
            users.sort();
            users
        }
        Err(_) => Vec::new(),
    }
}

// Proves SCRAM credentials live in the cluster's metadata log: a user
// added through node 1 is listed by every node and a deletion through
// node 3 reaches them all; credentials formatted onto one node before a
// restart (`shardlog format --add-scram`) are taken into the log and then
// listed by the others; the formatted file is moved aside once imported.
#[test]
fn scram_credentials_apply_on_every_broker_of_a_cluster() {
    let mut cluster = common::cluster::Cluster::start();
    cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    let mut one = Conn::open(&cluster.bootstrap(1));
    assert_eq!(
        alter_users(&mut one, vec![], vec![upsertion("carol", 1, 8192)]),
        [("carol".to_string(), 0)]
    );
    for node in 1..=3 {
        let addr = cluster.bootstrap(node);
        eventually(
            &format!("node {node} lists carol"),
            vec!["carol".to_string()],
            || listed_users(&addr),
        );
    }
    let mut three = Conn::open(&cluster.bootstrap(3));
    assert_eq!(
        alter_users(
            &mut three,
            vec![ScramCredentialDeletion::default()
                .with_name(str_bytes("carol"))
                .with_mechanism(1)],
            vec![]
        ),
        [("carol".to_string(), 0)]
    );
    for node in 1..=3 {
        let addr = cluster.bootstrap(node);
        eventually(
            &format!("node {node} dropped carol"),
            Vec::<String>::new(),
            || listed_users(&addr),
        );
    }
    // Formatted onto node 2 while it is down.
    cluster.node(2).terminate();
    let data = cluster.node(2).data_dir().to_path_buf();
    let out = Command::new(binary())
        .args(["format", "--data-dir"])
        .arg(&data)
        .args([
            "--add-scram",
            "SCRAM-SHA-512=[name=dave,password=dave-secret]",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cluster.node(2).restart();
    for node in [1, 3, 2] {
        let addr = cluster.bootstrap(node);
        eventually(
            &format!("node {node} lists dave"),
            vec!["dave".to_string()],
            || listed_users(&addr),
        );
    }
    eventually("the formatted file is moved aside", true, || {
        data.join("scram-credentials.json.imported").exists()
            && !data.join("scram-credentials.json").exists()
    });
}
