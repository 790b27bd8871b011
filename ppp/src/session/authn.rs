//! The authentication phase of [`Session`], both roles: PAP (RFC 1334), CHAP-MD5 (RFC 1994)
//! and MS-CHAP-V2 (RFC 2759).
//!
//! | role | method | sends | retransmits | ends |
//! |---|---|---|---|---|
//! | server | PAP | Ack / Nak | answers repeated requests again | auth timeout |
//! | server | CHAP, MS-CHAP-V2 | Challenge, Success / Failure | Challenge every restart interval, Max-Configure times | auth timeout |
//! | client | PAP | Authenticate-Request | every restart interval, Max-Configure times | Ack / Nak |
//! | client | CHAP, MS-CHAP-V2 | Response | (answers every Challenge) | Success / Failure |

use super::{DownReason, Event, Phase, RoleState, Session};
use crate::auth::chap::{self, MsChapV2Response, ValueAndName};
use crate::auth::{
    AuthRequest, AuthenticatorResponse, Grant, Method, MppeKeys, Proof, Verdict, mschapv2, pap,
};
use crate::wire::{Packet, Protocol, write_packet};
use rand_core::CryptoRng;
use std::time::Instant;

use super::Discard;

/// Server-side authentication state.
#[derive(Debug)]
pub(super) enum ServerAuth {
    /// Not started (LCP not open) or finished without a pending exchange.
    Idle,
    /// PAP: waiting for an Authenticate-Request until `deadline`.
    AwaitPap { deadline: Instant },
    /// CHAP: a challenge is out.
    Challenged {
        method: Method,
        id: u8,
        challenge: [u8; 16],
        resend_at: Instant,
        resends_left: u8,
        deadline: Instant,
    },
    /// The user store is deciding; repeated responses are ignored.
    Pending {
        method: Method,
        id: u8,
        user: String,
    },
    /// Accepted; a repeated request or response gets the same answer again.
    Accepted {
        method: Method,
        id: u8,
        reply: Vec<u8>,
    },
    /// Rejected; LCP terminates at `Session::close_at`.
    Rejected { id: u8, reply: Vec<u8> },
}

/// Client-side authentication state.
#[derive(Debug)]
pub(super) enum ClientAuth {
    /// Nothing sent.
    Idle,
    /// Waiting for the server (a challenge, or an answer to our PAP request) until `deadline`.
    Waiting {
        deadline: Instant,
        retry: Option<Retry>,
    },
    /// Authenticated; `last` is the final request or response, repeated if a delayed
    /// retransmission of the same challenge arrives.
    Done { last: Option<Retry> },
}

/// MS-CHAP-V2 challenges whose expected authenticator response the client remembers: after an
/// LCP renegotiation a delayed challenge of the previous round may be answered too, and the
/// server's Success may be for either.
pub(super) const MAX_ANSWERED: usize = 4;

/// One answered MS-CHAP-V2 challenge: identifier, expected authenticator response, keys.
pub(super) type Answered = (u8, AuthenticatorResponse, MppeKeys);

/// Our PAP request or CHAP response and its retransmission schedule. The server answers a
/// repeated request or response again (RFC 1334 §2.2.1, RFC 1994 §4.2), so a lost Ack or
/// Success costs one restart interval, not the link.
#[derive(Debug, Clone, Copy)]
pub(super) struct Retry {
    id: u8,
    resend_at: Instant,
    resends_left: u8,
    /// The CHAP response value and its length; `None` for a PAP request.
    chap: Option<([u8; chap::MSCHAPV2_RESPONSE_LEN], usize)>,
    /// MD5 of the challenge value answered, to tell a retransmission from a new challenge
    /// that reuses the identifier.
    challenge_digest: [u8; 16],
}

fn digest(value: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    Md5::digest(value).into()
}

/// Longest message a verdict carries to the peer (a RADIUS Reply-Message is cut there).
pub(super) const MAX_MESSAGE: usize = 200;
const PAP_ACK_MESSAGE: &[u8] = b"Login ok";
const PAP_NAK_MESSAGE: &[u8] = b"Login incorrect";
const CHAP_SUCCESS_MESSAGE: &[u8] = b"Access granted";
const CHAP_FAILURE_MESSAGE: &[u8] = b"Access denied";

fn protocol_of(method: Method) -> Protocol {
    match method {
        Method::Pap => Protocol::PAP,
        Method::ChapMd5 | Method::MsChapV2 => Protocol::CHAP,
    }
}

impl Session {
    /// LCP opened with `method` negotiated.
    pub(super) fn start_auth(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRng,
        method: Option<Method>,
    ) {
        let Some(method) = method else {
            if let RoleState::Server { config, .. } = &self.role
                && !config.methods.is_empty()
            {
                // The peer made us drop authentication; never let an unauthenticated peer in.
                self.terminate(now, DownReason::NoCommonAuth);
                return;
            }
            self.enter_network(now, rng);
            return;
        };
        match &mut self.role {
            RoleState::Server { config, auth, .. } => {
                let deadline = now + config.auth_timeout;
                *auth = ServerAuth::AwaitPap { deadline };
                if method != Method::Pap {
                    self.send_challenge(now, rng, method, deadline);
                }
            }
            RoleState::Client { config, auth, .. } => {
                let deadline = now + config.auth_timeout;
                *auth = ClientAuth::Waiting {
                    deadline,
                    retry: None,
                };
                if method == Method::Pap {
                    let id = rng.next_u32().to_be_bytes()[0];
                    let resends_left = self.link.fsm.max_configure.saturating_sub(1);
                    let resend_at = now + self.link.fsm.restart;
                    if let RoleState::Client {
                        auth: ClientAuth::Waiting { retry, .. },
                        ..
                    } = &mut self.role
                    {
                        *retry = Some(Retry {
                            id,
                            resend_at,
                            resends_left,
                            chap: None,
                            challenge_digest: [0; 16],
                        });
                    }
                    self.send_pap_request(id);
                }
            }
        }
    }

    fn send_challenge(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRng,
        method: Method,
        deadline: Instant,
    ) {
        let mut challenge = [0u8; 16];
        rng.fill_bytes(&mut challenge);
        let fresh_id = rng.next_u32().to_be_bytes()[0];
        let RoleState::Server { config, auth, .. } = &mut self.role else {
            return;
        };
        // A re-challenge must not reuse the identifier the peer last answered.
        let id = match auth {
            ServerAuth::Accepted { id, .. } => id.wrapping_add(1),
            _ => fresh_id,
        };
        let resends_left = self.link.fsm.max_configure.saturating_sub(1);
        *auth = ServerAuth::Challenged {
            method,
            id,
            challenge,
            resend_at: now + self.link.fsm.restart,
            resends_left,
            deadline,
        };
        let name = config.name.as_bytes();
        self.out.push(|buf| {
            write_packet(buf, Protocol::CHAP, chap::CHALLENGE, id, |w| {
                ValueAndName {
                    value: &challenge,
                    name,
                }
                .write(w)
            })
        });
    }

    fn send_pap_request(&mut self, id: u8) {
        let RoleState::Client { config, .. } = &self.role else {
            return;
        };
        let request = pap::Request {
            peer_id: config.user.as_bytes(),
            password: config.password.expose(),
        };
        self.out
            .push(|buf| write_packet(buf, Protocol::PAP, pap::REQUEST, id, |w| request.write(w)));
    }

    fn send_chap_response(&mut self, id: u8, value: &[u8]) {
        let RoleState::Client { config, .. } = &self.role else {
            return;
        };
        let name = config.user.as_bytes();
        self.out.push(|buf| {
            write_packet(buf, Protocol::CHAP, chap::RESPONSE, id, |w| {
                ValueAndName { value, name }.write(w)
            })
        });
    }

    /// Forgets any exchange in progress (LCP went down or the link terminates).
    pub(super) fn reset_auth(&mut self) {
        match &mut self.role {
            RoleState::Server { auth, .. } => {
                if !matches!(auth, ServerAuth::Accepted { .. }) {
                    *auth = ServerAuth::Idle;
                }
            }
            RoleState::Client { auth, .. } => {
                if matches!(auth, ClientAuth::Waiting { .. }) {
                    *auth = ClientAuth::Idle;
                }
            }
        }
        if self.phase != Phase::Network
            && let RoleState::Server { auth, .. } = &mut self.role
        {
            *auth = ServerAuth::Idle;
        }
    }

    /// The earliest authentication deadline.
    pub(super) fn auth_timeout(&self) -> Option<Instant> {
        match &self.role {
            RoleState::Server { auth, .. } => match auth {
                ServerAuth::AwaitPap { deadline } => Some(*deadline),
                ServerAuth::Challenged {
                    resend_at,
                    deadline,
                    ..
                } => Some((*resend_at).min(*deadline)),
                ServerAuth::Idle
                | ServerAuth::Pending { .. }
                | ServerAuth::Accepted { .. }
                | ServerAuth::Rejected { .. } => None,
            },
            RoleState::Client { auth, .. } => match auth {
                ClientAuth::Waiting {
                    deadline, retry, ..
                } => Some(retry.map_or(*deadline, |r| r.resend_at.min(*deadline))),
                ClientAuth::Idle | ClientAuth::Done { .. } => None,
            },
        }
    }

    pub(super) fn handle_auth_timeout(&mut self, now: Instant, rng: &mut dyn CryptoRng) {
        match &mut self.role {
            RoleState::Server { auth, config, .. } => match *auth {
                ServerAuth::AwaitPap { deadline } | ServerAuth::Challenged { deadline, .. }
                    if deadline <= now =>
                {
                    self.terminate(now, DownReason::AuthTimeout);
                }
                ServerAuth::Challenged {
                    method,
                    id,
                    challenge,
                    resend_at,
                    resends_left,
                    deadline,
                } if resend_at <= now => {
                    if resends_left == 0 {
                        self.terminate(now, DownReason::AuthTimeout);
                        return;
                    }
                    // RFC 1994 §4.1: a retransmitted challenge keeps its identifier and value.
                    *auth = ServerAuth::Challenged {
                        method,
                        id,
                        challenge,
                        resend_at: now + self.link.fsm.restart,
                        resends_left: resends_left - 1,
                        deadline,
                    };
                    let name = config.name.as_bytes();
                    self.out.push(|buf| {
                        write_packet(buf, Protocol::CHAP, chap::CHALLENGE, id, |w| {
                            ValueAndName {
                                value: &challenge,
                                name,
                            }
                            .write(w)
                        })
                    });
                }
                _ => {}
            },
            RoleState::Client { auth, .. } => {
                let ClientAuth::Waiting {
                    deadline, retry, ..
                } = auth
                else {
                    return;
                };
                if *deadline <= now {
                    self.terminate(now, DownReason::AuthTimeout);
                    return;
                }
                if let Some(r) = retry.as_mut().filter(|r| r.resend_at <= now) {
                    if r.resends_left == 0 {
                        self.terminate(now, DownReason::AuthTimeout);
                        return;
                    }
                    r.resends_left -= 1;
                    r.resend_at = now + self.link.fsm.restart;
                    match *r {
                        Retry { id, chap: None, .. } => self.send_pap_request(id),
                        Retry {
                            id,
                            chap: Some((value, len)),
                            ..
                        } => self.send_chap_response(id, &value[..len]),
                    }
                }
            }
        }
        // CHAP re-challenge during the network phase (RFC 1994 §2.3).
        if self.rechallenge_at.is_some_and(|at| at <= now) {
            self.rechallenge_at = None;
            if let RoleState::Server {
                config,
                auth: ServerAuth::Accepted { method, .. },
                ..
            } = &self.role
                && self.phase == Phase::Network
                && *method != Method::Pap
            {
                let (method, deadline) = (*method, now + config.auth_timeout);
                self.send_challenge(now, rng, method, deadline);
            }
        }
    }

    /// A PAP or CHAP packet while LCP is open.
    pub(super) fn on_auth(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRng,
        protocol: Protocol,
        information: &[u8],
    ) -> Result<(), Discard> {
        let packet = Packet::parse(information)?;
        let method = self
            .lcp
            .negotiator()
            .auth_method()
            .ok_or(Discard::UnexpectedAuth)?;
        if protocol_of(method) != protocol {
            return Err(Discard::UnexpectedAuth);
        }
        match self.role {
            RoleState::Server { .. } => self.server_packet(now, rng, method, &packet),
            RoleState::Client { .. } => self.client_packet(now, rng, method, &packet),
        }
    }

    fn server_packet(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRng,
        method: Method,
        packet: &Packet<'_>,
    ) -> Result<(), Discard> {
        let RoleState::Server { auth, .. } = &mut self.role else {
            return Ok(());
        };
        // A repeated request or response after the verdict gets the same answer again
        // (RFC 1334 §2.2.2, RFC 1994 §4.2).
        let accepted = matches!(auth, ServerAuth::Accepted { .. });
        if let ServerAuth::Accepted { id, reply, .. } | ServerAuth::Rejected { id, reply, .. } =
            auth
        {
            let is_request = matches!(
                (method, packet.code),
                (Method::Pap, pap::REQUEST) | (_, chap::RESPONSE)
            );
            // A response to an older challenge (one sent before an LCP renegotiation, say) gets
            // the answer of the challenge that was verified, under that challenge's identifier:
            // the peer remembers what it answered and can still check an MS-CHAP-V2 Success.
            if is_request {
                let code = match (accepted, method) {
                    (true, Method::Pap) => pap::ACK,
                    (false, Method::Pap) => pap::NAK,
                    (true, _) => chap::SUCCESS,
                    (false, _) => chap::FAILURE,
                };
                let id = if method == Method::Pap {
                    packet.identifier
                } else {
                    *id
                };
                let reply = reply.clone();
                self.out.push(|buf| {
                    write_packet(buf, protocol_of(method), code, id, |w| w.put_slice(&reply))
                });
                return Ok(());
            }
            return Err(Discard::UnexpectedAuth);
        }
        let (user, proof) = match (method, &*auth) {
            (Method::Pap, ServerAuth::AwaitPap { .. }) if packet.code == pap::REQUEST => {
                let request = pap::Request::parse(packet.data)?;
                let proof = Proof::Pap {
                    password: crate::auth::Password::new(request.password),
                };
                (request.peer_id, proof)
            }
            (Method::ChapMd5 | Method::MsChapV2, ServerAuth::Challenged { id, challenge, .. })
                if packet.code == chap::RESPONSE && packet.identifier == *id =>
            {
                let response = ValueAndName::parse(packet.data)?;
                let proof = if method == Method::ChapMd5 {
                    let response: [u8; 16] = response
                        .value
                        .try_into()
                        .map_err(|_| Discard::UnexpectedAuth)?;
                    Proof::ChapMd5 {
                        identifier: *id,
                        challenge: *challenge,
                        response,
                    }
                } else {
                    let value = MsChapV2Response::parse(response.value)?;
                    Proof::MsChapV2 {
                        identifier: *id,
                        authenticator_challenge: *challenge,
                        peer_challenge: value.peer_challenge,
                        nt_response: value.nt_response,
                    }
                };
                (response.name, proof)
            }
            _ => return Err(Discard::UnexpectedAuth),
        };
        let Ok(user) = String::from_utf8(user.to_vec()) else {
            // A name that is not UTF-8 cannot match any configured user.
            self.server_verdict_for(
                now,
                rng,
                method,
                packet.identifier,
                Verdict::Reject,
                None,
                None,
            );
            return Ok(());
        };
        *auth = ServerAuth::Pending {
            method,
            id: packet.identifier,
            user: user.clone(),
        };
        self.emit(Event::AuthRequest(AuthRequest { user, proof }));
        Ok(())
    }

    pub(super) fn server_verdict(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRng,
        verdict: Verdict,
        message: Option<&str>,
        error: Option<u32>,
    ) {
        let RoleState::Server {
            auth: ServerAuth::Pending { method, id, .. },
            ..
        } = &self.role
        else {
            return;
        };
        let (method, id) = (*method, *id);
        self.server_verdict_for(now, rng, method, id, verdict, message, error);
    }

    /// Answers the peer. `message` replaces our text in the Ack, Nak, Success or Failure
    /// message (a RADIUS Reply-Message); it is cut to [`MAX_MESSAGE`] octets.
    #[expect(
        clippy::too_many_arguments,
        reason = "the verdict and its wording, as the three public verdict inputs give them"
    )]
    fn server_verdict_for(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRng,
        method: Method,
        id: u8,
        verdict: Verdict,
        message: Option<&str>,
        error: Option<u32>,
    ) {
        let mut failure_challenge = [0u8; 16];
        rng.fill_bytes(&mut failure_challenge);
        let RoleState::Server {
            auth,
            user: accepted_user,
            config,
            ..
        } = &mut self.role
        else {
            return;
        };
        let user = match auth {
            ServerAuth::Pending { user, .. } => core::mem::take(user),
            _ => String::new(),
        };
        let grant = match verdict {
            Verdict::Accept(grant)
                if method != Method::MsChapV2 || grant.authenticator_response.is_some() =>
            {
                Some(grant)
            }
            Verdict::Accept(_) => {
                tracing::warn!(
                    "MS-CHAP-V2 acceptance without an authenticator response; rejecting"
                );
                None
            }
            Verdict::Reject => None,
        };
        let message = message.map(|m| {
            let mut end = m.len().min(MAX_MESSAGE);
            while !m.is_char_boundary(end) {
                end -= 1;
            }
            &m[..end]
        });
        let text = |default: &'static [u8]| message.map_or(default, str::as_bytes);
        let mut reply = Vec::with_capacity(64);
        let code = match (&grant, method) {
            (Some(_), Method::Pap) => {
                let m = text(PAP_ACK_MESSAGE);
                reply.push(u8::try_from(m.len()).unwrap_or(0));
                reply.extend_from_slice(m);
                pap::ACK
            }
            (None, Method::Pap) => {
                let m = text(PAP_NAK_MESSAGE);
                reply.push(u8::try_from(m.len()).unwrap_or(0));
                reply.extend_from_slice(m);
                pap::NAK
            }
            (Some(_), Method::ChapMd5) => {
                reply.extend_from_slice(text(CHAP_SUCCESS_MESSAGE));
                chap::SUCCESS
            }
            (None, Method::ChapMd5) => {
                reply.extend_from_slice(text(CHAP_FAILURE_MESSAGE));
                chap::FAILURE
            }
            (
                Some(Grant {
                    authenticator_response: Some(s),
                    ..
                }),
                Method::MsChapV2,
            ) => {
                // RFC 2759 §5: "S=<authenticator response> M=<message>".
                reply.extend_from_slice(&s.0);
                reply.extend_from_slice(b" M=");
                reply.extend_from_slice(text(CHAP_SUCCESS_MESSAGE));
                chap::SUCCESS
            }
            (_, Method::MsChapV2) => {
                let mut buf = [0u8; 128 + MAX_MESSAGE];
                let mut w = codec::Writer::new(&mut buf);
                let _ = chap::write_mschapv2_failure(
                    &mut w,
                    error.unwrap_or(chap::ERROR_AUTHENTICATION_FAILURE),
                    &failure_challenge,
                    message.unwrap_or("Authentication failure"),
                );
                reply.extend_from_slice(w.written());
                chap::FAILURE
            }
        };
        let data = reply.clone();
        self.out
            .push(|buf| write_packet(buf, protocol_of(method), code, id, |w| w.put_slice(&data)));
        let was_network = self.phase == Phase::Network;
        if let Some(grant) = grant {
            *auth = ServerAuth::Accepted { method, id, reply };
            self.rechallenge_at = config
                .rechallenge
                .filter(|_| method != Method::Pap)
                .map(|i| now + i);
            if !was_network {
                *accepted_user = Some(user.clone());
                self.emit(Event::Authenticated {
                    user,
                    method,
                    mppe: grant.mppe,
                });
                self.enter_network(now, rng);
            }
        } else {
            *auth = ServerAuth::Rejected { id, reply };
            self.down_reason.get_or_insert(DownReason::AuthFailed);
            // Brute-force damping: the failure goes out now, the link closes later.
            self.close_at = Some(now + config.failure_delay);
            self.echo_at = None;
        }
    }

    fn client_packet(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRng,
        method: Method,
        packet: &Packet<'_>,
    ) -> Result<(), Discard> {
        match (method, packet.code) {
            (Method::Pap, pap::ACK | pap::NAK) => {
                let RoleState::Client {
                    auth: ClientAuth::Waiting { retry: Some(r), .. },
                    ..
                } = &self.role
                else {
                    return Err(Discard::UnexpectedAuth);
                };
                if packet.identifier != r.id {
                    return Err(Discard::UnexpectedAuth);
                }
                if packet.code == pap::ACK {
                    self.client_authenticated(now, rng, method, None);
                } else {
                    tracing::debug!(message = ?String::from_utf8_lossy(pap::parse_message(packet.data)), "PAP rejected");
                    self.terminate(now, DownReason::AuthFailed);
                }
                Ok(())
            }
            (Method::ChapMd5 | Method::MsChapV2, chap::CHALLENGE) => {
                let challenge = ValueAndName::parse(packet.data)?;
                self.answer_challenge(now, rng, method, packet.identifier, challenge.value)
            }
            (Method::ChapMd5 | Method::MsChapV2, chap::SUCCESS) => {
                let RoleState::Client { auth, answered, .. } = &mut self.role else {
                    return Ok(());
                };
                match auth {
                    ClientAuth::Waiting { .. } if method == Method::MsChapV2 => {
                        let mut candidates = answered
                            .iter()
                            .filter(|e| e.0 == packet.identifier)
                            .peekable();
                        if candidates.peek().is_none() {
                            return Err(Discard::UnexpectedAuth);
                        }
                        // RFC 2759 §5: the peer must check the authenticator response.
                        let success = chap::mschapv2_success(packet.data);
                        let proven = candidates.find(|e| success.is_some_and(|s| s.matches(&e.1)));
                        let Some((_, _, keys)) = proven else {
                            self.terminate(now, DownReason::ServerNotAuthenticated);
                            return Ok(());
                        };
                        let keys = keys.clone();
                        self.client_authenticated(now, rng, method, Some(keys));
                        Ok(())
                    }
                    ClientAuth::Waiting { .. } if method == Method::ChapMd5 => {
                        self.client_authenticated(now, rng, method, None);
                        Ok(())
                    }
                    // A repeated Success after a re-challenge or a duplicate.
                    ClientAuth::Done { .. } => Ok(()),
                    _ => Err(Discard::UnexpectedAuth),
                }
            }
            (Method::ChapMd5 | Method::MsChapV2, chap::FAILURE) => {
                tracing::debug!(code = ?chap::mschapv2_failure_code(packet.data), "CHAP failure");
                self.terminate(now, DownReason::AuthFailed);
                Ok(())
            }
            _ => Err(Discard::UnexpectedAuth),
        }
    }

    fn answer_challenge(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRng,
        method: Method,
        id: u8,
        value: &[u8],
    ) -> Result<(), Discard> {
        // A retransmitted challenge gets the very same response: the server may already have
        // verified the first one, and an MS-CHAP-V2 Success answers exactly that one.
        if let RoleState::Client {
            auth: ClientAuth::Waiting { retry: Some(r), .. } | ClientAuth::Done { last: Some(r) },
            ..
        } = &self.role
            && r.id == id
            && r.challenge_digest == digest(value)
            && let Some((response, len)) = r.chap
        {
            self.send_chap_response(id, &response[..len]);
            return Ok(());
        }
        let mut peer_challenge = [0u8; 16];
        rng.fill_bytes(&mut peer_challenge);
        let RoleState::Client {
            config,
            auth,
            nt_hash,
            answered,
        } = &mut self.role
        else {
            return Ok(());
        };
        let user = config.user.as_bytes();
        let mut response = [0u8; chap::MSCHAPV2_RESPONSE_LEN];
        let (len, expected) = match method {
            Method::ChapMd5 => {
                response[..16].copy_from_slice(&chap::md5_response(id, &config.password, value));
                (16, None)
            }
            _ => {
                let authenticator_challenge: [u8; 16] =
                    value.try_into().map_err(|_| Discard::UnexpectedAuth)?;
                let Some(hash) = nt_hash.as_ref() else {
                    return Err(Discard::UnexpectedAuth);
                };
                let nt_response = mschapv2::generate_nt_response(
                    &authenticator_challenge,
                    &peer_challenge,
                    user,
                    hash,
                );
                let expected = mschapv2::authenticator_response(
                    hash,
                    &nt_response,
                    &peer_challenge,
                    &authenticator_challenge,
                    user,
                );
                let keys = MppeKeys::derive(mschapv2::Side::Client, hash, &nt_response);
                response = MsChapV2Response {
                    peer_challenge,
                    nt_response,
                    flags: 0,
                }
                .to_bytes();
                (chap::MSCHAPV2_RESPONSE_LEN, Some((id, expected, keys)))
            }
        };
        // A new challenge shows the server is working on us: it gets a full auth timeout from
        // here (its LCP may have opened long after ours on a lossy link).
        let deadline = now + config.auth_timeout;
        if let Some(entry) = expected {
            if answered.len() >= MAX_ANSWERED {
                answered.remove(0);
            }
            answered.push(entry);
        }
        let retry = Retry {
            id,
            resend_at: now + self.link.fsm.restart,
            resends_left: self.link.fsm.max_configure.saturating_sub(1),
            chap: Some((response, len)),
            challenge_digest: digest(value),
        };
        *auth = ClientAuth::Waiting {
            deadline,
            retry: Some(retry),
        };
        self.send_chap_response(id, &response[..len]);
        Ok(())
    }

    fn client_authenticated(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRng,
        method: Method,
        mppe: Option<MppeKeys>,
    ) {
        let RoleState::Client { auth, config, .. } = &mut self.role else {
            return;
        };
        let last = match auth {
            ClientAuth::Waiting { retry, .. } => *retry,
            ClientAuth::Done { last } => *last,
            ClientAuth::Idle => None,
        };
        *auth = ClientAuth::Done { last };
        if self.phase == Phase::Authenticate {
            let user = config.user.clone();
            self.emit(Event::Authenticated { user, method, mppe });
            self.enter_network(now, rng);
        }
    }
}
