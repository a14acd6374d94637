//! Authentication on SASL listeners (SASL_PLAINTEXT): Kafka's
//! SaslHandshake (v1) and SaslAuthenticate (v0-2) carrying PLAIN or
//! SCRAM-SHA-256/512 exchanges. A connection's [`SaslSession`] follows
//! the exchange; until it is done, the connection may send only
//! ApiVersions, SaslHandshake and SaslAuthenticate (anything else closes
//! it, as Kafka does).

pub mod acl;
pub mod authz;
pub mod credentials;
pub mod principal;
pub mod scram;
pub mod tls;

use std::sync::Arc;

use credentials::UserStore;
use scram::{ScramError, ScramExchange, ScramMechanism};

/// What every connection of a SASL listener shares.
#[derive(Debug)]
pub struct SaslConfig {
    /// sasl.enabled.mechanisms, in the order given.
    pub mechanisms: Vec<String>,
    pub users: Arc<UserStore>,
    /// connection.failed.authentication.delay.ms.
    pub failure_delay_ms: u64,
    /// connections.max.reauth.ms: the session lifetime clients are told to
    /// re-authenticate within (KIP-368); 0: sessions do not expire.
    pub reauth_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

impl Mechanism {
    fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
        }
    }
}

#[derive(Debug)]
enum State {
    /// Waiting for SaslHandshake.
    Handshake,
    /// The mechanism is chosen; waiting for its first token.
    Authenticate(Mechanism),
    /// SCRAM: server-first sent; waiting for client-final.
    ScramFinal(Box<ScramExchange>),
    /// Authenticated (see `SaslSession::principal`).
    Done,
    /// Failed: the connection closes.
    Failed,
}

/// Why a SASL step ends the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslRefusal {
    /// UNSUPPORTED_SASL_MECHANISM: the handshake named a mechanism not
    /// enabled.
    UnsupportedMechanism(String),
    /// ILLEGAL_SASL_STATE: a request out of the exchange's order.
    IllegalState(&'static str),
    /// SASL_AUTHENTICATION_FAILED; the detail is for the log only.
    Failed {
        mechanism: &'static str,
        detail: String,
    },
}

/// What a connection does with a request, given its SASL session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Serve it as usual.
    Serve,
    /// A step of the (re-)authentication exchange.
    Exchange,
    /// Close the connection: a request before authentication, or after the
    /// session expired (KIP-368).
    Close(&'static str),
}

/// One connection's SASL exchange, and its re-authentications (KIP-368).
#[derive(Debug)]
pub struct SaslSession {
    config: Arc<SaslConfig>,
    state: State,
    /// The authenticated user and mechanism; kept while re-authenticating.
    principal: Option<(String, Mechanism)>,
    /// When the session expires (connections.max.reauth.ms after the last
    /// authentication), if it does.
    expires_at: Option<std::time::Instant>,
}

impl SaslSession {
    pub fn new(config: Arc<SaslConfig>) -> Self {
        SaslSession {
            config,
            state: State::Handshake,
            principal: None,
            expires_at: None,
        }
    }

    /// The authenticated user, once an exchange succeeded.
    pub fn user(&self) -> Option<&str> {
        self.principal.as_ref().map(|(u, _)| u.as_str())
    }

    /// Where a request of `key` goes, at `now`.
    pub fn gate(&self, key: kafka_protocol::messages::ApiKey, now: std::time::Instant) -> Gate {
        use kafka_protocol::messages::ApiKey;
        let sasl = matches!(key, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate);
        if self.principal.is_none() {
            return match key {
                ApiKey::ApiVersions => Gate::Serve,
                _ if sasl => Gate::Exchange,
                _ => Gate::Close("a request before SASL authentication"),
            };
        }
        let reauthenticating = !matches!(self.state, State::Done);
        match key {
            ApiKey::SaslHandshake if self.config.reauth_ms > 0 => Gate::Exchange,
            ApiKey::SaslAuthenticate if reauthenticating => Gate::Exchange,
            _ if self.expires_at.is_some_and(|e| now >= e) => Gate::Close(
                "the SASL session expired (connections.max.reauth.ms) without re-authentication",
            ),
            _ => Gate::Serve,
        }
    }

    /// Whether the last exchange completed (and no other is under way).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The session lifetime to tell the client in a SaslAuthenticate
    /// answer that completes an exchange (0 otherwise).
    pub fn session_lifetime_ms(&self) -> i64 {
        if matches!(self.state, State::Done) {
            self.config.reauth_ms as i64
        } else {
            0
        }
    }

    /// An exchange succeeded as `user` with `m`: a re-authentication must
    /// keep the principal and mechanism (as Kafka requires).
    fn authenticated(&mut self, user: String, m: Mechanism) -> Result<(), SaslRefusal> {
        if let Some((before, before_m)) = &self.principal {
            if *before != user || *before_m != m {
                self.state = State::Failed;
                return Err(SaslRefusal::Failed {
                    mechanism: m.name(),
                    detail: format!(
                        "re-authentication as {user:?} with {} on a session of {before:?} with {}: principals and mechanisms cannot change",
                        m.name(),
                        before_m.name()
                    ),
                });
            }
        }
        self.principal = Some((user, m));
        self.state = State::Done;
        self.expires_at = (self.config.reauth_ms > 0).then(|| {
            std::time::Instant::now() + std::time::Duration::from_millis(self.config.reauth_ms)
        });
        Ok(())
    }

    pub fn enabled_mechanisms(&self) -> &[String] {
        &self.config.mechanisms
    }

    pub fn failure_delay_ms(&self) -> u64 {
        self.config.failure_delay_ms
    }

    /// SaslHandshake with `mechanism`.
    pub fn handshake(&mut self, mechanism: &str) -> Result<(), SaslRefusal> {
        if matches!(self.state, State::Done) && self.config.reauth_ms > 0 {
            // A re-authentication (KIP-368) starts.
            self.state = State::Handshake;
        }
        if !matches!(self.state, State::Handshake) {
            self.state = State::Failed;
            return Err(SaslRefusal::IllegalState("a second SaslHandshake"));
        }
        let enabled = self.config.mechanisms.iter().any(|m| m == mechanism);
        let m = match (enabled, mechanism) {
            (true, "PLAIN") => Mechanism::Plain,
            (true, other) => match ScramMechanism::from_name(other) {
                Some(s) => Mechanism::Scram(s),
                None => {
                    self.state = State::Failed;
                    return Err(SaslRefusal::UnsupportedMechanism(mechanism.to_string()));
                }
            },
            (false, _) => {
                self.state = State::Failed;
                return Err(SaslRefusal::UnsupportedMechanism(mechanism.to_string()));
            }
        };
        self.state = State::Authenticate(m);
        Ok(())
    }

    /// SaslAuthenticate with the client's token; the server's token back.
    pub fn authenticate(&mut self, token: &[u8]) -> Result<Vec<u8>, SaslRefusal> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let fail = |m: Mechanism, detail: String| SaslRefusal::Failed {
            mechanism: m.name(),
            detail,
        };
        match state {
            State::Authenticate(Mechanism::Plain) => {
                let (user, password) =
                    parse_plain(token).map_err(|why| fail(Mechanism::Plain, why.to_string()))?;
                if !self.config.users.read().plain_matches(&user, &password) {
                    return Err(fail(
                        Mechanism::Plain,
                        format!("invalid username or password for user {user:?}"),
                    ));
                }
                self.authenticated(user, Mechanism::Plain)?;
                Ok(Vec::new())
            }
            State::Authenticate(Mechanism::Scram(m)) => {
                let users = &self.config.users;
                let (exchange, server_first) =
                    ScramExchange::start(m, token, |user| users.read().scram(m, user))
                        .map_err(|e| scram_failure(Mechanism::Scram(m), e, None))?;
                self.state = State::ScramFinal(Box::new(exchange));
                Ok(server_first.into_bytes())
            }
            State::ScramFinal(exchange) => {
                let m = Mechanism::Scram(exchange.mechanism());
                let server_final = exchange
                    .finish(token)
                    .map_err(|e| scram_failure(m, e, Some(&exchange.user)))?;
                self.authenticated(exchange.user.clone(), m)?;
                Ok(server_final.into_bytes())
            }
            State::Handshake => Err(SaslRefusal::IllegalState(
                "SaslAuthenticate before SaslHandshake",
            )),
            State::Done | State::Failed => Err(SaslRefusal::IllegalState(
                "SaslAuthenticate after the exchange ended",
            )),
        }
    }
}

fn scram_failure(m: Mechanism, e: ScramError, user: Option<&str>) -> SaslRefusal {
    SaslRefusal::Failed {
        mechanism: m.name(),
        detail: match user {
            Some(u) => format!("{e} (user {u:?})"),
            None => e.to_string(),
        },
    }
}

/// PLAIN's message: `[authzid] NUL authcid NUL password` (RFC 4616).
fn parse_plain(token: &[u8]) -> Result<(String, String), &'static str> {
    let text = std::str::from_utf8(token).map_err(|_| "the PLAIN message is not UTF-8")?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the PLAIN message is not authzid NUL user NUL password");
    };
    if user.is_empty() || password.is_empty() {
        return Err("an empty user name or password");
    }
    if !authzid.is_empty() && authzid != user {
        return Err("the authorization id differs from the user name");
    }
    Ok((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(mechanisms: &[&str]) -> SaslSession {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        std::fs::write(&users, "alice=alice-secret\n# comment\n").unwrap();
        SaslSession::new(Arc::new(SaslConfig {
            mechanisms: mechanisms.iter().map(|m| m.to_string()).collect(),
            users: Arc::new(UserStore::load(dir.path(), Some(&users)).unwrap()),
            failure_delay_ms: 0,
            reauth_ms: 0,
        }))
    }

    // Proves PLAIN accepts the right password and refuses a wrong one, an
    // unknown user and a malformed message, and that the exchange's order
    // is enforced (no authenticate before the handshake, no mechanism that
    // is not enabled).
    #[test]
    fn plain_and_order() {
        let mut s = session(&["PLAIN"]);
        assert!(s.handshake("PLAIN").is_ok());
        assert_eq!(s.authenticate(b"\0alice\0alice-secret").unwrap(), b"");
        assert_eq!(s.user(), Some("alice"));
        for token in [
            &b"\0alice\0wrong"[..],
            b"\0bob\0alice-secret",
            b"alice-secret",
            b"carol\0alice\0alice-secret",
        ] {
            let mut s = session(&["PLAIN"]);
            s.handshake("PLAIN").unwrap();
            assert!(matches!(
                s.authenticate(token),
                Err(SaslRefusal::Failed { .. })
            ));
            assert_eq!(s.user(), None);
        }
        let mut s = session(&["PLAIN"]);
        assert!(matches!(
            s.authenticate(b"\0alice\0alice-secret"),
            Err(SaslRefusal::IllegalState(_))
        ));
        let mut s = session(&["PLAIN"]);
        assert_eq!(
            s.handshake("SCRAM-SHA-256"),
            Err(SaslRefusal::UnsupportedMechanism("SCRAM-SHA-256".into()))
        );
    }
}
