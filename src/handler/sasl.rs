//! SaslHandshake and SaslAuthenticate: the answers of a connection's SASL
//! exchange ([`exchange`], run by the connection before anything else is
//! served), and of SASL requests outside one (ILLEGAL_SASL_STATE, as
//! Kafka answers them on a PLAINTEXT listener or after authentication).

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};

use super::str_bytes;
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::{SaslRefusal, SaslSession};
use crate::shard::Shard;

fn enabled_mechanisms(shard: &Shard, listener: usize) -> Vec<kafka_protocol::protocol::StrBytes> {
    shard
        .config
        .client_listeners
        .get(listener)
        .and_then(|l| l.sasl.as_ref())
        .map(|s| s.mechanisms.iter().map(|m| str_bytes(m.clone())).collect())
        .unwrap_or_default()
}

/// SaslHandshake outside an exchange.
pub fn handshake_out_of_exchange(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &crate::security::authz::ConnAuth,
) -> Result<Bytes, FrameError> {
    let _: SaslHandshakeRequest = req.decode()?;
    req.respond(
        &SaslHandshakeResponse::default()
            .with_error_code(ErrorCode::IllegalSaslState.code())
            .with_mechanisms(enabled_mechanisms(shard, auth.listener)),
    )
}

/// SaslAuthenticate outside an exchange.
pub fn authenticate_out_of_exchange(
    _shard: &Rc<Shard>,
    req: &RequestFrame,
) -> Result<Bytes, FrameError> {
    let _: SaslAuthenticateRequest = req.decode()?;
    req.respond(
        &SaslAuthenticateResponse::default()
            .with_error_code(ErrorCode::IllegalSaslState.code())
            .with_error_message(Some(str_bytes(
                "SaslAuthenticate request received after successful authentication",
            ))),
    )
}

/// One step of a connection's SASL exchange.
pub struct Step {
    /// The answer to send.
    pub response: Result<Bytes, FrameError>,
    /// The exchange failed: the connection closes after the answer, which
    /// is held back `connection.failed.authentication.delay.ms` first when
    /// credentials were wrong.
    pub refusal: Option<SaslRefusal>,
}

/// Runs a SaslHandshake or SaslAuthenticate request of the exchange.
pub fn exchange(session: &mut SaslSession, req: &RequestFrame) -> Step {
    match req.api_key {
        ApiKey::SaslHandshake => {
            let request: SaslHandshakeRequest = match req.decode() {
                Ok(r) => r,
                Err(e) => return failed_decode(e),
            };
            let refusal = session.handshake(request.mechanism.as_str()).err();
            let code = match &refusal {
                None => ErrorCode::None,
                Some(SaslRefusal::UnsupportedMechanism(_)) => ErrorCode::UnsupportedSaslMechanism,
                Some(_) => ErrorCode::IllegalSaslState,
            };
            let mechanisms = session
                .enabled_mechanisms()
                .iter()
                .map(|m| str_bytes(m.clone()))
                .collect();
            Step {
                response: req.respond(
                    &SaslHandshakeResponse::default()
                        .with_error_code(code.code())
                        .with_mechanisms(mechanisms),
                ),
                refusal,
            }
        }
        _ => {
            let request: SaslAuthenticateRequest = match req.decode() {
                Ok(r) => r,
                Err(e) => return failed_decode(e),
            };
            match session.authenticate(&request.auth_bytes) {
                Ok(token) => Step {
                    response: req.respond(
                        &SaslAuthenticateResponse::default()
                            .with_auth_bytes(Bytes::from(token))
                            .with_session_lifetime_ms(session.session_lifetime_ms()),
                    ),
                    refusal: None,
                },
                Err(refusal) => {
                    let (code, message) = match &refusal {
                        SaslRefusal::Failed { mechanism, .. } => (
                            ErrorCode::SaslAuthenticationFailed,
                            format!(
                                "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
                            ),
                        ),
                        SaslRefusal::IllegalState(why) => {
                            (ErrorCode::IllegalSaslState, why.to_string())
                        }
                        SaslRefusal::UnsupportedMechanism(m) => (
                            ErrorCode::UnsupportedSaslMechanism,
                            format!("Unsupported SASL mechanism {m}"),
                        ),
                    };
                    Step {
                        response: req.respond(
                            &SaslAuthenticateResponse::default()
                                .with_error_code(code.code())
                                .with_error_message(Some(str_bytes(message))),
                        ),
                        refusal: Some(refusal),
                    }
                }
            }
        }
    }
}

/// A raw SASL token, after a v0 SaslHandshake: the client sends each
/// token as a size-prefixed frame without Kafka's request header, and the
/// server's token goes back the same way. A failure gets no answer (v0 has
/// no error field): the connection closes, as in Kafka.
pub fn raw_token(session: &mut SaslSession, token: &[u8]) -> Step {
    match session.authenticate(token) {
        Ok(server) => {
            let mut out = bytes::BytesMut::with_capacity(4 + server.len());
            out.extend_from_slice(&(server.len() as u32).to_be_bytes());
            out.extend_from_slice(&server);
            Step {
                response: Ok(out.freeze()),
                refusal: None,
            }
        }
        Err(refusal) => Step {
            response: Ok(Bytes::new()),
            refusal: Some(refusal),
        },
    }
}

fn failed_decode(e: FrameError) -> Step {
    Step {
        response: Err(e),
        refusal: Some(SaslRefusal::IllegalState("an undecodable SASL request")),
    }
}
